//! `keepalive-shim status [PID...] [--all] [--json]`: each TCP socket of
//! running processes, its five option values, the kernel's timer and a
//! verdict.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;

use clap::ArgMatches;
use serde::Serialize;

use super::diag::Timer;
use super::procs::{DupError, Namespaces, Target};
use super::{parallel_map, sys, Options, ProcessError, Role, SocketInfo};

/// The `--json` document. Its shape is documented in the README and
/// checked by tests; fields are only ever added.
#[derive(Serialize)]
pub struct StatusDoc {
    /// Shape version: 1.
    pub version: u32,
    /// True when every process asked about could be read.
    pub ok: bool,
    pub processes: Vec<ProcessStatus>,
}

#[derive(Serialize)]
pub struct ProcessStatus {
    pub pid: i32,
    /// `/proc/PID/comm`; null if unreadable.
    pub command: Option<String>,
    /// Whether `libkeepalive_shim*.so` is mapped; null if unreadable.
    pub library_loaded: Option<bool>,
    /// Inode of `/proc/PID/ns/net`; null if unreadable.
    pub netns: Option<u64>,
    /// Why the process could not be read (fully); null when it could.
    pub error: Option<String>,
    pub sockets: Vec<SocketStatus>,
}

#[derive(Serialize)]
pub struct SocketStatus {
    pub fd: i32,
    /// As `ss` names it: `ESTABLISHED`, `LISTEN`, `CLOSE-WAIT`, ...
    pub state: &'static str,
    /// `connected`, `accepted` or `listener`.
    pub role: Role,
    /// `ADDR:PORT` or `[ADDR]:PORT`.
    pub local: String,
    /// null for a listener.
    pub peer: Option<String>,
    /// The five values; null when they could not be read.
    pub options: Option<Options>,
    /// The kernel's timer (`ss -o`); null when none runs.
    pub timer: Option<Timer>,
    /// `no-keepalive`, `keepalive`, `listener` or `unknown`.
    pub verdict: &'static str,
    /// The verdict in a sentence.
    pub detail: String,
}

/// The verdict on one socket.
pub fn verdict(s: &SocketInfo, o: Option<&Options>) -> (&'static str, String) {
    let Some(o) = o else {
        return match s.timer {
            Some(t) if t.kind == "keepalive" => (
                "keepalive",
                "keepalive timer running; option values unreadable".into(),
            ),
            _ => ("unknown", "option values unreadable".into()),
        };
    };
    let detect = u64::from(o.interval_s)
        .saturating_mul(u64::from(o.count))
        .saturating_add(u64::from(o.idle_s));
    let data = if o.user_timeout_ms == 0 {
        "unacknowledged data: ~15 min of retransmissions (no TCP_USER_TIMEOUT)".to_owned()
    } else {
        format!(
            "unacknowledged data: fails after {} ms (TCP_USER_TIMEOUT)",
            o.user_timeout_ms
        )
    };
    if s.role == Role::Listener {
        let ka = if o.keepalive == 0 {
            "without keepalive".to_owned()
        } else {
            format!("with keepalive (a vanished peer found after {detect} s idle)")
        };
        return (
            "listener",
            format!("listener: connections it accepts from now on start {ka}"),
        );
    }
    if o.keepalive == 0 {
        return (
            "no-keepalive",
            "no keepalive: if this peer vanishes, this process waits forever".into(),
        );
    }
    (
        "keepalive",
        format!(
            "keepalive: a vanished peer is found after {detect} s idle ({} + {} x {}); {data}",
            o.idle_s, o.interval_s, o.count
        ),
    )
}

fn read_process(pid: i32, ns: &mut Namespaces, listing_all: bool) -> ProcessStatus {
    let mut p = ProcessStatus {
        pid,
        command: None,
        library_loaded: None,
        netns: None,
        error: None,
        sockets: Vec::new(),
    };
    let target = match Target::open(pid) {
        Ok(t) => t,
        Err((command, e)) => {
            p.command = command;
            p.error = Some(e.to_string());
            return p;
        }
    };
    p.command = target.command.clone();
    p.netns = Some(target.netns.1);
    if target.socket_fds.is_empty() && listing_all {
        return p; // not listed: spare reading its maps
    }
    p.library_loaded = target.library_loaded();
    if target.socket_fds.is_empty() {
        return p;
    }
    let view = match ns.view(&target) {
        Ok(v) => v,
        Err(e) => {
            p.error = Some(e.to_string());
            return p;
        }
    };
    let sockets = target.tcp_sockets(&view);
    // One duplicate and five getsockopt per socket: spread over the CPUs.
    let reads = parallel_map(&sockets, |s| match target.duplicate(s) {
        Ok(dup) => Ok(sys::read_options(dup.as_fd()).ok()),
        Err(e) => Err(e),
    });
    let mut lost: Option<ProcessError> = None;
    for (s, read) in sockets.into_iter().zip(reads) {
        let options = match read {
            Ok(options) => options,
            Err(DupError::Gone) => continue,
            Err(DupError::Process(ProcessError::Exited)) => {
                p.error = Some(ProcessError::Exited.to_string());
                return p;
            }
            Err(DupError::Process(e)) => {
                // Show what sock_diag still tells about every socket.
                lost = Some(e);
                None
            }
        };
        let (verdict, mut detail) = verdict(&s, options.as_ref());
        if s.state == "CLOSE-WAIT" {
            // Keepalive is beside the point there: the peer is gone on purpose.
            detail += "; the peer has closed its end and this process has not (CLOSE-WAIT)";
        }
        p.sockets.push(SocketStatus {
            fd: s.fd,
            state: s.state,
            role: s.role,
            local: s.local.to_string(),
            peer: (s.role != Role::Listener).then(|| s.peer.to_string()),
            options,
            timer: s.timer,
            verdict,
            detail,
        });
    }
    if let Some(e) = lost {
        p.error = Some(format!("option values not read: {e}"));
    }
    p
}

fn write_text(out: &mut impl Write, p: &ProcessStatus) -> io::Result<()> {
    let lib = match p.library_loaded {
        Some(true) => "loaded",
        Some(false) => "not loaded",
        None => "unknown",
    };
    write!(
        out,
        "pid {} ({}): libkeepalive_shim {lib}",
        p.pid,
        p.command.as_deref().unwrap_or("?")
    )?;
    if let Some(ns) = p.netns {
        write!(out, ", netns net:[{ns}]")?;
    }
    if p.sockets.is_empty() && p.error.is_none() {
        write!(out, ", no TCP sockets")?;
    }
    writeln!(out)?;
    if let Some(e) = &p.error {
        writeln!(out, "  ERROR: {e}")?;
    }
    for s in &p.sockets {
        write!(out, "  fd {} {} {}", s.fd, s.state, s.local)?;
        match s.role {
            Role::Listener => {}
            Role::Connected => write!(out, " -> {}", s.peer.as_deref().unwrap_or("?"))?,
            Role::Accepted => write!(out, " <- {} (accepted)", s.peer.as_deref().unwrap_or("?"))?,
        }
        match &s.options {
            Some(o) => write!(out, " {o}")?,
            None => write!(out, " options=?")?,
        }
        match &s.timer {
            Some(t) => write!(out, " {t}")?,
            None => write!(out, " timer:(none)")?,
        }
        writeln!(out, ": {}", s.detail)?;
    }
    Ok(())
}

/// The `status` command.
pub fn status(m: &ArgMatches) -> ExitCode {
    let all = m.get_flag("all");
    let json = m.get_flag("json");
    let mut ns = Namespaces::default();
    let mut processes = Vec::new();
    let mut ok = true;
    let mut unreadable = Vec::new();
    if all {
        let me = std::process::id();
        let pids: Vec<i32> = match procfs::process::all_processes() {
            Ok(iter) => iter
                .filter_map(|p| p.ok().map(|p| p.pid()))
                .filter(|&pid| u32::try_from(pid).ok() != Some(me))
                .collect(),
            Err(e) => {
                eprintln!("keepalive-shim: cannot list /proc: {e}");
                return ExitCode::from(1);
            }
        };
        for pid in pids {
            let p = read_process(pid, &mut ns, true);
            let gone = matches!(
                p.error.as_deref(),
                Some(e) if e == ProcessError::Exited.to_string()
                    || e == ProcessError::NoSuchProcess.to_string()
            );
            if gone || (p.sockets.is_empty() && p.error.is_none()) {
                continue; // exited meanwhile, or holds no TCP socket
            }
            if p.error.is_some() && p.sockets.is_empty() {
                unreadable.push(pid);
            }
            ok &= p.error.is_none();
            processes.push(p);
        }
    } else {
        for &pid in m.get_many::<u32>("pid").into_iter().flatten() {
            let p = read_process(i32::try_from(pid).unwrap_or(i32::MAX), &mut ns, false);
            ok &= p.error.is_none();
            processes.push(p);
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let written = if json {
        let doc = StatusDoc {
            version: 1,
            ok,
            processes,
        };
        serde_json::to_writer_pretty(&mut out, &doc)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        // With --all, processes that could not be read at all are only
        // counted (below): without root they are most of the system.
        processes
            .iter()
            .filter(|p| !(all && p.error.is_some() && p.sockets.is_empty()))
            .try_for_each(|p| write_text(&mut out, p))
    };
    if !unreadable.is_empty() {
        eprintln!(
            "keepalive-shim: {} process(es) could not be read (pids {}): reading another process's sockets needs ptrace permission on it (root with CAP_SYS_PTRACE, or the same user with ptrace allowed)",
            unreadable.len(),
            unreadable
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if written.and_then(|()| out.flush()).is_err() {
        return ExitCode::from(1);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
