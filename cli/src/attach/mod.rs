//! `keepalive-shim attach (--cgroup PATH | --unit NAME | --pid PID) [FLAGS]`:
//! a sock_ops program on a cgroup v2 sets the keepalive options on every new
//! TCP connection of every process in it (Go, static, setuid and io_uring
//! programs included, which no preload reaches), and a cgroup/setsockopt
//! program records which options a program set itself, for respect mode.
//!
//! It runs in the foreground and holds the BPF links; they detach when it
//! exits (SIGTERM or SIGINT: exit 0). Exit 1 when a requirement is missing
//! (BPF programs in this build, kernel, cgroup v2, privileges), 2 on a usage
//! error.

mod bpf;
mod cgroup;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Command};
use keepalive_shim_config::{resolve_env, setting, Config, Key, Level, UserTimeout};
use rustix::event::{poll, PollFd, PollFlags};

use crate::live::{self, ApplyPlan};
use crate::text::Text;
use cgroup::Target;

/// The oldest kernel whose bpf_getsockopt reads the TCP keepalive options
/// from sock_ops (the 6.0 rework of bpf_{get,set}sockopt); everything else
/// the programs use (cgroup BPF links, ring buffer, socket storage with
/// BPF_F_CLONE, cgroup/setsockopt) is older.
const MIN_KERNEL: (u8, u8) = (6, 0);

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

pub fn command() -> Command {
    // The flags of `apply`, plus --log, from the settings table.
    // attach sets no variable: the flag mirrors one.
    let s = setting(Key::LogLevel);
    let log = crate::setting_arg(s).map(|a| a.help(format!("{} As {}", s.help, s.var)));
    let flags = live::plan_args().into_iter().chain(log);
    Command::new("attach")
        .about(
            "Set the options on every new TCP connection of a cgroup's processes with eBPF \
             (Go and static binaries too); runs until SIGTERM or SIGINT",
        )
        .arg(
            Arg::new("cgroup")
                .long("cgroup")
                .value_name("PATH")
                .value_parser(clap::value_parser!(PathBuf))
                .help(
                    "A cgroup v2 directory: absolute, or relative to the v2 mount as \
                     /proc/PID/cgroup prints it (e.g. /system.slice/worker.service)",
                ),
        )
        .arg(
            Arg::new("unit")
                .long("unit")
                .value_name("NAME.service")
                .help("The cgroup of a systemd unit"),
        )
        .arg(
            Arg::new("pid")
                .long("pid")
                .value_name("PID")
                .value_parser(clap::value_parser!(i32).range(1..))
                .help("The cgroup of a running process (never the root cgroup)"),
        )
        .group(
            ArgGroup::new("target")
                .args(["cgroup", "unit", "pid"])
                .required(true),
        )
        .args(flags)
        .arg(
            Arg::new("new-only")
                .long("new-only")
                .action(ArgAction::SetTrue)
                .help("Leave connections that exist at start alone (default: apply to them too, as `apply` does)"),
        )
        .after_help(format!(
            "{} Prints one line on stdout once attached (`keepalive-shim: attached to ...`); at \
             --log info, one line per configured connection on stderr. SIGTERM or SIGINT \
             detaches and exits 0; a missing requirement exits 1 with what is missing, a usage \
             error 2. Needs Linux 6.0 or newer, cgroup v2, and root or CAP_BPF + CAP_NET_ADMIN \
             (CAP_SYS_PTRACE too for existing connections), and a build with clang and \
             libbpf-dev. Like `apply`, it reads no KEEPALIVE_SHIM_* variable and no config \
             file: its flags and the defaults are all it uses.",
            defaults()
        ))
}

/// The settings `attach` takes as flags: `apply`'s, and --log.
fn keys() -> Vec<Key> {
    live::PLAN_KEYS.into_iter().chain([Key::LogLevel]).collect()
}

/// "Defaults: --idle 60 s, ...", from the settings table.
fn defaults() -> String {
    crate::live::flag_defaults(&keys())
}

/// The effective configuration: the flags over the settings table's
/// defaults, through the library's own resolver. As with `apply`, the
/// `KEEPALIVE_SHIM_*` environment and the config file are not read: what
/// attach does is what its command line says.
fn configuration(m: &ArgMatches) -> Config<'_> {
    let pairs: Vec<(&'static str, &str)> = keys()
        .into_iter()
        .map(|k| setting(k).var)
        .filter_map(|var| Some((var, m.try_get_one::<String>(var).ok()??.as_str())))
        .collect();
    // The flags' parser has validated every value already.
    resolve_env(
        pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        &mut |_| {},
    )
}

fn target(m: &ArgMatches) -> Target {
    if let Some(p) = m.get_one::<PathBuf>("cgroup") {
        Target::Path(p.clone())
    } else if let Some(u) = m.get_one::<String>("unit") {
        Target::Unit(u.clone())
    } else {
        Target::Pid(m.get_one::<i32>("pid").copied().unwrap_or(0))
    }
}

fn err(msg: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr(), "keepalive-shim: {}", msg.as_ref());
}

pub fn attach(m: &ArgMatches) -> ExitCode {
    let config = configuration(m);
    match run(m, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            err(format!("attach: {msg}"));
            ExitCode::from(1)
        }
    }
}

fn run(m: &ArgMatches, config: &Config<'_>) -> Result<(), String> {
    if let Some(why) = bpf::missing_object() {
        return Err(why);
    }
    check_kernel()?;
    check_privileges()?;
    let mount = cgroup::v2_mount()?;
    let dir = cgroup::resolve(&target(m), &mount)?;
    let cgroup_fd = File::open(&dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;

    // Registered before attaching, so that a signal from here on detaches
    // cleanly instead of killing the process mid-way.
    let (mut signals, signal_writer) =
        UnixStream::pair().map_err(|e| format!("cannot create the signal pipe: {e}"))?;
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let w = signal_writer
            .try_clone()
            .map_err(|e| format!("cannot create the signal pipe: {e}"))?;
        signal_hook::low_level::pipe::register(sig, w)
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }

    let mut attached = bpf::load_and_attach(config, &cgroup_fd)?;
    let logging = config.log_level >= Level::Info;
    let mut events = if logging {
        Some(attached.events()?)
    } else {
        None
    };
    let existing = if m.get_flag("new-only") {
        "existing connections left alone (--new-only)".to_owned()
    } else {
        apply_existing(&dir, config)
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}; {existing}", ready_line(&dir, config));
        let _ = out.flush();
    }

    loop {
        let mut fds = vec![PollFd::new(&signals, PollFlags::IN)];
        if let Some(ring) = &events {
            fds.push(PollFd::new(ring, PollFlags::IN));
        }
        // The BPF side wakes the reader only when events pile up; otherwise
        // their lines come out within this interval.
        let interval = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 250_000_000,
        };
        let timeout = events.as_ref().map(|_| &interval);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let signalled = fds.first().is_some_and(|f| !f.revents().is_empty());
        drop(fds);
        if let Some(ring) = events.as_mut() {
            drain(ring, config.log_level);
        }
        if signalled {
            let mut byte = [0u8; 16];
            let _ = signals.read(&mut byte);
            break;
        }
    }
    drop(events);
    drop(attached);
    if logging {
        err(format!("detached from {}", dir.display()));
    }
    Ok(())
}

fn drain(ring: &mut aya::maps::RingBuf<aya::maps::MapData>, level: Level) {
    let mut err_out = std::io::stderr().lock();
    while let Some(item) = ring.next() {
        if let Some(line) = bpf::event_line(&item, level) {
            let _ = writeln!(err_out, "keepalive-shim: {line}");
        }
    }
}

/// Connections that exist already: `apply` on every process of the cgroup
/// and of the cgroups below it, except this one. Each socket gets one line
/// at `--log info`; a process that cannot be handled gets a warning (one
/// that exited meanwhile needs none). Returns the ready line's summary.
fn apply_existing(dir: &Path, config: &Config<'_>) -> String {
    let plan = ApplyPlan::from_config(config);
    let me = std::process::id() as i32;
    let (mut processes, mut changed, mut failed) = (0u32, 0u32, 0u32);
    let pids: Vec<i32> = cgroup::procs_recursive(dir)
        .into_iter()
        .filter(|&pid| pid != me)
        .collect();
    // One sock_diag dump per network namespace, not per process.
    for report in live::apply_to_processes(&pids, &plan, false) {
        let pid = report.pid;
        let name = report.command.as_deref().unwrap_or("?");
        match &report.error {
            Some(live::ProcessError::NoSuchProcess | live::ProcessError::Exited) => continue,
            Some(e) => {
                failed = failed.saturating_add(1);
                err(format!(
                    "warning: existing connections of pid {pid} ({name}): {e}"
                ));
            }
            None => processes = processes.saturating_add(1),
        }
        for s in &report.sockets {
            if s.actions
                .iter()
                .any(|a| matches!(a, live::apply::Action::Set { .. }))
            {
                changed = changed.saturating_add(1);
            }
            if s.error.is_some() || config.log_level >= Level::Info {
                err(format!("existing: pid {pid} ({name}) {s}"));
            }
        }
    }
    let mut summary =
        format!("{changed} existing connection(s) changed in {processes} process(es)");
    if failed > 0 {
        summary += &format!(", {failed} process(es) could not be read");
    }
    summary
}

fn ready_line(dir: &Path, c: &Config<'_>) -> String {
    let ut = match c.user_timeout {
        UserTimeout::Off => "off".to_owned(),
        UserTimeout::Auto => "auto".to_owned(),
        UserTimeout::Millis(ms) => ms.to_string(),
    };
    let mut line = format!(
        "keepalive-shim: attached to {}: new TCP connections get SO_KEEPALIVE=1 \
         TCP_KEEPIDLE={} TCP_KEEPINTVL={} TCP_KEEPCNT={} TCP_USER_TIMEOUT={ut} (mode {}",
        dir.display(),
        c.idle_s,
        c.interval_s,
        c.count,
        c.mode.name()
    );
    for (name, list) in [("include", &c.include), ("exclude", &c.exclude)] {
        if !list.is_empty() {
            let mut t = Text::default();
            for (i, r) in list.rules().iter().enumerate() {
                if i > 0 {
                    t.0.push(',');
                }
                r.write(&mut t);
            }
            line += &format!(", {name} {}", t.0);
        }
    }
    line += ")";
    line
}

fn check_kernel() -> Result<(), String> {
    let v = procfs::sys::kernel::Version::current()
        .map_err(|e| format!("cannot read the kernel version: {e}"))?;
    if (v.major, v.minor) < MIN_KERNEL {
        return Err(format!(
            "attach needs Linux {}.{} or newer (bpf_getsockopt of the TCP keepalive options \
             in sock_ops); this kernel is {}.{}.{}. Use `apply` or the preload library instead",
            MIN_KERNEL.0, MIN_KERNEL.1, v.major, v.minor, v.patch
        ));
    }
    Ok(())
}

fn check_privileges() -> Result<(), String> {
    let status = procfs::process::Process::myself()
        .and_then(|p| p.status())
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let has = |cap: u32| status.capeff & (1u64 << cap) != 0;
    let bpf = has(CAP_BPF) || has(CAP_SYS_ADMIN);
    let net = has(CAP_NET_ADMIN) || has(CAP_SYS_ADMIN);
    if bpf && net {
        return Ok(());
    }
    let missing: Vec<&str> = [(bpf, "CAP_BPF"), (net, "CAP_NET_ADMIN")]
        .iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, name)| *name)
        .collect();
    Err(format!(
        "attach needs root, or the capabilities CAP_BPF and CAP_NET_ADMIN (missing: {}); \
         e.g. sudo keepalive-shim attach ..., or AmbientCapabilities=CAP_BPF CAP_NET_ADMIN \
         in a systemd unit",
        missing.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ArgMatches, clap::Error> {
        command().try_get_matches_from(std::iter::once("attach").chain(args.iter().copied()))
    }

    #[test]
    fn exactly_one_target() {
        assert!(parse(&["--idle", "20"]).is_err());
        assert!(parse(&["--cgroup", "/x", "--pid", "1"]).is_err());
        assert!(parse(&["--pid", "0"]).is_err());
        let m = parse(&["--cgroup", "/x", "--new-only"]).unwrap();
        assert_eq!(target(&m), Target::Path("/x".into()));
        assert!(m.get_flag("new-only"));
        let m = parse(&["--unit", "w.service"]).unwrap();
        assert_eq!(target(&m), Target::Unit("w.service".into()));
    }

    #[test]
    fn flags_use_the_library_parser() {
        assert!(parse(&["--pid", "1", "--idle", "0"]).is_err());
        assert!(parse(&["--pid", "1", "--include", "10.0.0.0/33"]).is_err());
        let m = parse(&[
            "--pid",
            "1",
            "--idle",
            "2m",
            "--count",
            "3",
            "--user-timeout",
            "auto",
            "--mode",
            "force",
            "--exclude",
            ":22",
        ])
        .unwrap();
        let c = configuration(&m);
        assert_eq!((c.idle_s, c.count), (120, 3));
        assert_eq!(c.user_timeout, UserTimeout::Auto);
        let line = ready_line(Path::new("/sys/fs/cgroup/x"), &c);
        assert!(line.contains("TCP_KEEPIDLE=120 "), "{line}");
        assert!(line.contains("mode force, exclude :22)"), "{line}");
    }
}
