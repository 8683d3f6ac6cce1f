//! `keepalive-shim check [--to ADDR:PORT] [--program NAME]`: the effective
//! configuration of this environment (and config file), where each value
//! came from, the kernel's defaults, and the worst-case time to detect a
//! dead peer. With `--to`/`--program`, the first line is exactly
//! `applies: yes` or `applies: no`. The report names every problem itself
//! (stdout holds the whole answer). Exit 0 if valid, 1 if not.
//!
//! It reaches the library's conclusions by the library's own code: the same
//! resolution, and the same config file policy ([`file_verdict`]).

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

use clap::ArgMatches;
use keepalive_shim_config::{
    file_verdict, put_source, put_value, resolve, Config, Diagnostic, EnvView, FileVerdict,
    FileView, Ip, Key, ReadError, Rule, SockAddr, Source, MAX_CONFIG_FILE_BYTES, SETTINGS,
};

use crate::text::Text;

pub fn check(m: &ArgMatches) -> ExitCode {
    let vars: Vec<(Vec<u8>, Vec<u8>)> = std::env::vars_os()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let mut diagnostics: Vec<Diagnostic<'_>> = Vec::new();
    let env = EnvView::collect(
        vars.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        &mut |d| diagnostics.push(d),
    );
    // The same file, read the same way, judged by the same policy as the
    // library's.
    let (path, explicit) = env.config_path(false);
    let read = read_config_file(path);
    let mut file_ignored = false;
    let file = match file_verdict(path, explicit, read.as_deref().map_err(|e| *e)) {
        FileVerdict::Use(contents) => Some(FileView::parse(path, contents, &mut |d| {
            diagnostics.push(d)
        })),
        FileVerdict::Absent => None,
        FileVerdict::Ignored(problem) => {
            diagnostics.push(problem);
            file_ignored = true;
            None
        }
    };
    let config = resolve(&env, file.as_ref(), false, &mut |d| diagnostics.push(d));
    let notes: Vec<String> = diagnostics
        .iter()
        .map(|d| {
            let mut t = Text::default();
            d.write(&config, &mut t);
            t.0
        })
        .collect();
    let config_row = ConfigRow {
        path: String::from_utf8_lossy(path).into_owned(),
        explicit,
        ignored: file_ignored,
    };

    let mut out = String::new();
    let to = m.get_one::<String>("to");
    let program = m.get_one::<String>("program");
    if to.is_some() || program.is_some() {
        let dest = match to.map(|t| parse_destination(t)).transpose() {
            Ok(d) => d,
            Err(msg) => {
                eprintln!("keepalive-shim: {msg}");
                return ExitCode::from(2);
            }
        };
        out += &applies(&config, dest.as_ref(), program.map(String::as_str));
    }
    out += &report(&config, &config_row, &kernel_defaults());
    if !notes.is_empty() {
        out += "\nproblems (each as the library warns of it):\n";
        for n in &notes {
            out += &format!("  {n}\n");
        }
    }
    print!("{out}");
    if notes.is_empty() {
        println!("configuration: valid");
        ExitCode::SUCCESS
    } else {
        let s = if notes.len() == 1 { "" } else { "s" };
        println!(
            "configuration: INVALID ({} problem{s}, listed above)",
            notes.len()
        );
        ExitCode::from(1)
    }
}

/// Reads the config file as the library does: `O_NONBLOCK` (a FIFO never
/// blocks the open), a regular file only, at most one byte more than the
/// limit (enough to tell that it is over).
fn read_config_file(path: &[u8]) -> Result<Vec<u8>, ReadError> {
    let errno = |e: std::io::Error| match e.raw_os_error() {
        Some(libc::ENOENT) => ReadError::NotFound,
        Some(n) => ReadError::Os(n),
        None => ReadError::Os(libc::EIO),
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(std::ffi::OsStr::from_bytes(path))
        .map_err(errno)?;
    if !file.metadata().map_err(errno)?.file_type().is_file() {
        return Err(ReadError::NotRegular);
    }
    let mut contents = Vec::new();
    let limit = u64::try_from(MAX_CONFIG_FILE_BYTES).unwrap_or(u64::MAX);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut contents)
        .map_err(errno)?;
    if contents.len() > MAX_CONFIG_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(contents)
}

/// What `check` knows of the config file beyond the configuration.
struct ConfigRow {
    path: String,
    /// Named by `KEEPALIVE_SHIM_CONFIG`.
    explicit: bool,
    /// It exists but is ignored (the problem is listed).
    ignored: bool,
}

fn parse_destination(s: &str) -> Result<SockAddr, String> {
    let a: SocketAddr = s
        .parse()
        .map_err(|_| format!("--to takes ADDR:PORT or [IPV6]:PORT, got {s:?}"))?;
    let ip = match a.ip() {
        std::net::IpAddr::V4(v) => Ip::V4(v.octets()),
        std::net::IpAddr::V6(v) => Ip::V6(v.octets()),
    };
    Ok(SockAddr { ip, port: a.port() })
}

fn rule_text(r: &Rule) -> String {
    let mut t = Text::default();
    r.write(&mut t);
    t.0
}

/// `applies: yes|no`, then why, then with which values.
fn applies(c: &Config<'_>, dest: Option<&SockAddr>, program: Option<&str>) -> String {
    let mut why = Vec::new();
    let mut yes = true;
    if !c.enabled {
        yes = false;
        why.push(format!(
            "the shim is off ({})",
            source_text(c, Key::Enabled)
        ));
    }
    if let Some(p) = program {
        let allowed = c.program_allowed(&[p.as_bytes()]);
        let names = c.programs.names();
        if c.programs.is_invalid() {
            yes = false;
            why.push(format!(
                "program {p}: KEEPALIVE_SHIM_PROGRAMS has an invalid entry, so the shim is inert in every program"
            ));
        } else if names.is_empty() {
            why.push(format!(
                "program {p}: KEEPALIVE_SHIM_PROGRAMS is unset, every program"
            ));
        } else if allowed {
            why.push(format!("program {p} is in KEEPALIVE_SHIM_PROGRAMS"));
        } else {
            yes = false;
            why.push(format!(
                "program {p} is not in KEEPALIVE_SHIM_PROGRAMS: the shim is inert in it"
            ));
        }
    }
    if let Some(d) = dest {
        let mut t = Text::default();
        d.write(&mut t);
        let decision = c.decide(d);
        match (decision.included_by, decision.excluded_by) {
            _ if c.programs.is_invalid() => why.push(format!(
                "{}: KEEPALIVE_SHIM_PROGRAMS has an invalid entry, so no socket gets the options",
                t.0
            )),
            _ if c.filters().is_invalid() => why.push(format!(
                "{}: an INCLUDE or EXCLUDE entry is invalid, so no socket gets the options",
                t.0
            )),
            (_, Some(ex)) => why.push(format!("{}: EXCLUDE entry {} matches", t.0, rule_text(&ex))),
            (Some(inc), None) => why.push(format!(
                "{}: INCLUDE entry {} matches",
                t.0,
                rule_text(&inc)
            )),
            (None, None) if !c.include.is_empty() => {
                why.push(format!("{}: no INCLUDE entry matches", t.0))
            }
            (None, None) => why.push(format!("{}: no filters, every TCP connection", t.0)),
        }
        yes &= decision.applies;
    }
    let mut out = format!("applies: {}\n", if yes { "yes" } else { "no" });
    for w in why {
        out += &format!("why: {w}\n");
    }
    if yes {
        let uto = c
            .user_timeout_ms()
            .map_or("off".to_owned(), |ms| ms.to_string());
        out += &format!(
            "with: SO_KEEPALIVE=1 TCP_KEEPIDLE={} TCP_KEEPINTVL={} TCP_KEEPCNT={} TCP_USER_TIMEOUT={} ({} mode)\n",
            c.idle_s,
            c.interval_s,
            c.count,
            uto,
            c.mode.name()
        );
    }
    out + "\n"
}

fn source_text(c: &Config<'_>, key: Key) -> String {
    let mut t = Text::default();
    put_source(&mut t, c, c.source(key));
    t.0
}

/// `net.ipv4.tcp_keepalive_{time,intvl,probes}`, if readable.
fn kernel_defaults() -> [(&'static str, Option<u64>); 3] {
    [
        "tcp_keepalive_time",
        "tcp_keepalive_intvl",
        "tcp_keepalive_probes",
    ]
    .map(|name| {
        let v = std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        (name, v)
    })
}

/// One setting's row: the effective value and its source, or INVALID.
fn row(c: &Config<'_>, file: &ConfigRow, key: Key) -> (String, String) {
    let mut value = Text::default();
    put_value(&mut value, c, key);
    let value = value.0;
    if key == Key::ConfigFile && c.rejected(key).is_none() {
        let source = if file.explicit {
            "KEEPALIVE_SHIM_CONFIG"
        } else {
            "default"
        };
        return if file.ignored {
            (format!("INVALID: {} is ignored", file.path), source.into())
        } else {
            (value, source.into())
        };
    }
    if c.is_invalid_list(key) {
        return (format!("INVALID: {value}"), source_text(c, key));
    }
    match c.rejected(key) {
        Some((rejected_at, text)) => {
            let mut at = Text::default();
            put_source(&mut at, c, rejected_at);
            let used = match c.source(key) {
                Source::Default => format!("using {value}, the default"),
                _ => format!("using {value} from {}", source_text(c, key)),
            };
            (
                format!("INVALID {:?}", String::from_utf8_lossy(text)),
                format!("{}; {used}", at.0),
            )
        }
        None => (value, source_text(c, key)),
    }
}

fn report(c: &Config<'_>, file: &ConfigRow, kernel: &[(&str, Option<u64>); 3]) -> String {
    let mut out = String::new();
    for s in SETTINGS {
        let (value, source) = row(c, file, s.key);
        out += &format!("{:<28} {:<22} ({})\n", s.var, value, source);
    }
    out += "\nkernel defaults (only for sockets that turn keepalive on themselves):\n";
    for (name, v) in kernel {
        let v = v.map_or("unknown".to_owned(), |v| v.to_string());
        out += &format!("  net.ipv4.{name:<22} {v}\n");
    }
    out += "\nworst case to detect a dead peer:\n";
    if !c.enabled {
        out +=
            "  the shim is off (KEEPALIVE_SHIM=off): every socket stays as the program made it\n";
        return out;
    }
    if c.filters().is_invalid() {
        out += "  no socket gets the options: an entry of KEEPALIVE_SHIM_INCLUDE, \
                KEEPALIVE_SHIM_EXCLUDE or KEEPALIVE_SHIM_PROGRAMS is invalid\n";
        return out;
    }
    out += &format!(
        "  idle connection:     {} s (idle {} s + interval {} s x count {})\n",
        c.detection_s(),
        c.idle_s,
        c.interval_s,
        c.count
    );
    match c.user_timeout_ms() {
        Some(ms) => {
            out += &format!(
                "  unacknowledged data: {} (TCP_USER_TIMEOUT)\n",
                seconds_text(u64::from(ms))
            )
        }
        None => {
            out += "  unacknowledged data: no bound from the shim (TCP_USER_TIMEOUT off): \
                    the kernel retransmits for ~15 min (tcp_retries2)\n"
        }
    }
    if let [(_, Some(time)), (_, Some(intvl)), (_, Some(probes))] = kernel {
        out += &format!(
            "  without the shim:    never, or {} s for a program that sets only SO_KEEPALIVE\n",
            time.saturating_add(intvl.saturating_mul(*probes))
        );
    }
    out
}

fn seconds_text(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{}.{:03} s", ms / 1000, ms % 1000)
    }
}
