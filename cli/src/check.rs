//! `keepalive-shim check`: the effective configuration of this environment,
//! where each value came from, the kernel's defaults, and the worst-case
//! time to detect a dead peer. Exit 0 if valid, 1 if not.

use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use keepalive_shim_config::{put_value, resolve, Config, Diagnostic, SETTINGS};

use crate::Text;

pub fn check() -> ExitCode {
    let vars: Vec<(Vec<u8>, Vec<u8>)> = std::env::vars_os()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let mut problems: Vec<String> = Vec::new();
    let config = resolve(
        vars.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        &mut |d: Diagnostic<'_>| {
            let mut t = Text::default();
            d.write(&mut t);
            problems.push(t.0);
        },
    );
    print!("{}", report(&config, &kernel_defaults()));
    for p in &problems {
        eprintln!("keepalive-shim: warning: {p}");
    }
    if problems.is_empty() {
        println!("configuration: valid");
        ExitCode::SUCCESS
    } else {
        println!(
            "configuration: INVALID ({} problem(s), see above)",
            problems.len()
        );
        ExitCode::from(1)
    }
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
            c.source(s.key).name()
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
            time + intvl * probes
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
