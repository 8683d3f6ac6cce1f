//! `keepalive-shim check [--to ADDR:PORT] [--program NAME]`: the effective
//! configuration of this environment (and config file), where each value
//! came from, the kernel's defaults, and the worst-case time to detect a
//! dead peer. With `--to`/`--program`, the first line is exactly
//! `applies: yes` or `applies: no`. Exit 0 if valid, 1 if not.

use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use clap::ArgMatches;
use keepalive_shim_config::{
    put_source, put_value, resolve, Config, Diagnostic, EnvView, FileView, Ip, Key, Rule, SockAddr,
    SETTINGS,
};

use crate::text::Text;

pub fn check(m: &ArgMatches) -> ExitCode {
    let vars: Vec<(Vec<u8>, Vec<u8>)> = std::env::vars_os()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let mut diagnostics: Vec<Diagnostic<'_>> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let env = EnvView::collect(
        vars.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        &mut |d| diagnostics.push(d),
    );
    // The same file, with the same precedence, as the library reads.
    let (path, explicit) = env.config_path(false);
    let path_text = String::from_utf8_lossy(path).into_owned();
    let contents = match std::fs::read(&path_text) {
        Ok(c) => Some(c),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => None,
        Err(e) => {
            notes.push(format!(
                "cannot read the config file {path_text}: {e}; it is ignored"
            ));
            None
        }
    };
    let file = contents
        .as_deref()
        .map(|c| FileView::parse(path, c, &mut |d| diagnostics.push(d)));
    let config = resolve(&env, file.as_ref(), false, &mut |d| diagnostics.push(d));
    for d in &diagnostics {
        let mut t = Text::default();
        d.write(&config, &mut t);
        notes.push(t.0);
    }

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
    out += &report(&config, &kernel_defaults());
    print!("{out}");
    for n in &notes {
        eprintln!("keepalive-shim: warning: {n}");
    }
    if notes.is_empty() {
        println!("configuration: valid");
        ExitCode::SUCCESS
    } else {
        println!(
            "configuration: INVALID ({} problem(s), see above)",
            notes.len()
        );
        ExitCode::from(1)
    }
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
        if names.is_empty() {
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

fn report(c: &Config<'_>, kernel: &[(&str, Option<u64>); 3]) -> String {
    let mut out = String::new();
    for s in SETTINGS {
        let mut value = Text::default();
        put_value(&mut value, c, s.key);
        out += &format!(
            "{:<28} {:<22} ({})\n",
            s.var,
            value.0,
            source_text(c, s.key)
        );
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
