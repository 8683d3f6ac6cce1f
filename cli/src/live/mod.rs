//! Running processes: see (`status`) and set (`apply`) the keepalive options
//! of the TCP sockets they already hold, without restarting or stopping them.
//!
//! How: the socket inodes of a process come from `/proc/PID/fd`; the
//! kernel's view of each socket (addresses, state, timer) from a sock_diag
//! (`inet_diag`) dump taken inside the process's network namespace; the
//! option values from `getsockopt` on a duplicate of the process's
//! descriptor (`pidfd_open` + `pidfd_getfd`, Linux 5.6+). A duplicate is the
//! same socket, so `setsockopt` on it changes the program's socket; it is
//! closed right after. Nothing here needs the preload library, so static
//! and Go binaries are covered.
//!
//! Library entry point (also used by `attach` for the connections that
//! already exist in its cgroup): build an [`ApplyPlan`] from the same flags
//! ([`plan_args`] + [`ApplyPlan::from_matches`]) or from a [`Config`], then
//! call [`apply_to_process`] once per PID (or [`apply_to_processes`] for
//! many, sharing one sock_diag dump per network namespace) and print each
//! [`ProcessReport`].

pub mod apply;
mod diag;
mod procs;
pub mod status;
mod sys;

use std::fmt;
use std::net::SocketAddr;

use clap::{Arg, ArgAction, ArgMatches, Command};
use keepalive_shim_config::{resolve_env, setting, Config, Filters, Key, Mode, UserTimeout};

pub use apply::{apply_to_process, apply_to_processes};
// The CLI's sink for config-crate text; the one place live/ names it.
use crate::text::Text;

/// The settings `apply` (and `attach`) take as flags, in `--help` order.
pub const PLAN_KEYS: [Key; 7] = [
    Key::Idle,
    Key::Interval,
    Key::Count,
    Key::UserTimeout,
    Key::Mode,
    Key::Include,
    Key::Exclude,
];

/// The flags of [`PLAN_KEYS`] (`--idle`, `--interval`, `--count`,
/// `--user-timeout`, `--mode`, `--include`, `--exclude`), generated from the
/// settings table exactly as `run`'s flags are; read them back with
/// [`ApplyPlan::from_matches`].
pub fn plan_args() -> Vec<Arg> {
    PLAN_KEYS
        .iter()
        .filter_map(|&k| {
            let s = setting(k);
            // These flags set no variable: say which one they mirror.
            Some(crate::setting_arg(s)?.help(format!("{} As {}", s.help, s.var)))
        })
        .collect()
}

/// "Defaults: --idle 60 s, ...", from the settings table.
fn plan_defaults() -> String {
    flag_defaults(&PLAN_KEYS)
}

/// "Defaults: --idle 60 s, ..." for these settings' flags (`apply`'s and
/// `attach`'s help).
pub fn flag_defaults(keys: &[Key]) -> String {
    let items: Vec<String> = keys
        .iter()
        .filter_map(|&k| {
            let s = setting(k);
            Some(format!("--{} {}", s.flag?, crate::plain(s.default_doc)))
        })
        .collect();
    format!("Defaults: {}.", items.join(", "))
}

/// What `apply` sets, and when it leaves an option alone.
#[derive(Clone, Copy, Debug)]
pub struct ApplyPlan {
    /// TCP_KEEPIDLE, seconds (1..=32767).
    pub idle_s: u32,
    /// TCP_KEEPINTVL, seconds (1..=32767).
    pub interval_s: u32,
    /// TCP_KEEPCNT (1..=127).
    pub count: u32,
    /// TCP_USER_TIMEOUT: off (the default), milliseconds, or `auto`,
    /// computed per socket by [`UserTimeout::auto_ms`] from its effective
    /// values. Never set on a socket that already has one.
    pub user_timeout: UserTimeout,
    /// Respect: an option whose value differs from the kernel default of
    /// the socket's network namespace is the program's own and stands.
    /// Force: the plan's value stands.
    pub mode: Mode,
    /// Destination filters; a connection is matched on its peer address,
    /// an accepted connection or a listener on its local address.
    pub filters: Filters,
}

impl ApplyPlan {
    /// The plan of an effective configuration (its keepalive values, user
    /// timeout, mode and filters; the rest is not used).
    pub fn from_config(c: &Config<'_>) -> ApplyPlan {
        ApplyPlan {
            idle_s: c.idle_s,
            interval_s: c.interval_s,
            count: c.count,
            user_timeout: c.user_timeout,
            mode: c.mode,
            filters: c.filters(),
        }
    }

    /// The plan of the [`plan_args`] flags given on a command line, over the
    /// table's defaults (the `KEEPALIVE_SHIM_*` environment and the config
    /// file are not read: what is applied to a running process is what the
    /// command line says). Values were validated by the flags' parser; the
    /// error case is only reached when a caller bypasses it.
    pub fn from_matches(m: &ArgMatches) -> Result<ApplyPlan, String> {
        let pairs: Vec<(&'static str, String)> = PLAN_KEYS
            .iter()
            .map(|&k| setting(k).var)
            .filter_map(|var| Some((var, m.try_get_one::<String>(var).ok()??.clone())))
            .collect();
        let mut problems = Vec::new();
        let config = resolve_env(
            pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
            &mut |d| {
                let mut t = Text::default();
                d.write(&Config::defaults(), &mut t);
                problems.push(t.0);
            },
        );
        if problems.is_empty() {
            Ok(ApplyPlan::from_config(&config))
        } else {
            Err(problems.join("; "))
        }
    }
}

impl Default for ApplyPlan {
    /// The table's defaults.
    fn default() -> ApplyPlan {
        ApplyPlan::from_config(&Config::defaults())
    }
}

/// `f` over `items`, in order, on up to one thread per CPU (at most 4) once
/// there are enough items for threads to pay off. Per socket the work is a
/// handful of system calls on distinct sockets, which run in parallel.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const MIN_PER_THREAD: usize = 512;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cpus.min(4).min(items.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part),
                // A panic in `f` is a bug; let it surface as it would have
                // without threads.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// One of the five options (the config crate's definition, shared with
/// the library).
pub use keepalive_shim_config::Opt;

/// The five values of one socket, as `getsockopt` returns them: SO_KEEPALIVE
/// 0/1, TCP_KEEPIDLE and TCP_KEEPINTVL in seconds (the namespace's sysctl
/// when the socket has none of its own), TCP_KEEPCNT, TCP_USER_TIMEOUT in
/// milliseconds (0 = none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Options {
    #[serde(rename = "SO_KEEPALIVE")]
    pub keepalive: u32,
    #[serde(rename = "TCP_KEEPIDLE")]
    pub idle_s: u32,
    #[serde(rename = "TCP_KEEPINTVL")]
    pub interval_s: u32,
    #[serde(rename = "TCP_KEEPCNT")]
    pub count: u32,
    #[serde(rename = "TCP_USER_TIMEOUT")]
    pub user_timeout_ms: u32,
}

impl Options {
    pub fn get(&self, opt: Opt) -> u32 {
        match opt {
            Opt::KeepAlive => self.keepalive,
            Opt::Idle => self.idle_s,
            Opt::Interval => self.interval_s,
            Opt::Count => self.count,
            Opt::UserTimeout => self.user_timeout_ms,
        }
    }

    pub fn set(&mut self, opt: Opt, v: u32) {
        match opt {
            Opt::KeepAlive => self.keepalive = v,
            Opt::Idle => self.idle_s = v,
            Opt::Interval => self.interval_s = v,
            Opt::Count => self.count = v,
            Opt::UserTimeout => self.user_timeout_ms = v,
        }
    }
}

impl fmt::Display for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, opt) in Opt::ALL.into_iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}={}", opt.name(), self.get(opt))?;
        }
        Ok(())
    }
}

/// What the kernel gives a socket that has no value of its own:
/// `net.ipv4.tcp_keepalive_{time,intvl,probes}` of one network namespace
/// (SO_KEEPALIVE and TCP_USER_TIMEOUT default to 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelDefaults {
    pub idle_s: u32,
    pub interval_s: u32,
    pub count: u32,
}

impl KernelDefaults {
    pub fn get(&self, opt: Opt) -> u32 {
        match opt {
            Opt::KeepAlive | Opt::UserTimeout => 0,
            Opt::Idle => self.idle_s,
            Opt::Interval => self.interval_s,
            Opt::Count => self.count,
        }
    }
}

/// A socket's place in its connection: what the destination filters match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A connection this process opened: matched on its peer address.
    Connected,
    /// A connection accepted from a listener of the same namespace (its
    /// local port is a listening port): matched on its local address.
    Accepted,
    /// A listening socket: matched on its local address. Connections it
    /// accepts later inherit its options.
    Listener,
}

/// One TCP socket of a process, as the kernel describes it.
#[derive(Clone, Debug)]
pub struct SocketInfo {
    pub fd: i32,
    pub inode: u64,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// `ESTABLISHED`, `LISTEN`, ... (as `ss` names them).
    pub state: &'static str,
    pub role: Role,
    pub timer: Option<diag::Timer>,
}

impl SocketInfo {
    /// The address the destination filters match (see [`Role`]).
    pub fn filter_address(&self) -> SocketAddr {
        match self.role {
            Role::Connected => self.peer,
            Role::Accepted | Role::Listener => self.local,
        }
    }
}

impl fmt::Display for SocketInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.role {
            Role::Listener => write!(f, "fd {} {} {}", self.fd, self.state, self.local),
            Role::Connected => write!(
                f,
                "fd {} {} {} -> {}",
                self.fd, self.state, self.local, self.peer
            ),
            Role::Accepted => write!(
                f,
                "fd {} {} {} <- {} (accepted)",
                self.fd, self.state, self.local, self.peer
            ),
        }
    }
}

/// Why a whole process could not be handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessError {
    /// No process has this PID (never had, or exited before we looked).
    NoSuchProcess,
    /// It exited while we were reading it.
    Exited,
    /// Not root and no ptrace right over it; the text says which step.
    PermissionDenied(String),
    /// Anything else, with the step that failed.
    Other(String),
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::NoSuchProcess => f.write_str("no such process"),
            ProcessError::Exited => f.write_str("the process exited meanwhile"),
            ProcessError::PermissionDenied(what) => write!(
                f,
                "permission denied ({what}): needs root, or CAP_SYS_PTRACE, or ptrace rights over the process"
            ),
            ProcessError::Other(what) => f.write_str(what),
        }
    }
}

/// What [`apply_to_process`] did to one process.
#[derive(Clone, Debug)]
pub struct ProcessReport {
    pub pid: i32,
    /// `/proc/PID/comm`, if readable.
    pub command: Option<String>,
    /// Set when the process could not be handled at all (or only in part:
    /// `sockets` then holds what was done before).
    pub error: Option<ProcessError>,
    pub sockets: Vec<apply::SocketReport>,
    pub dry_run: bool,
}

impl ProcessReport {
    /// True when the process was read and every change it needed was made.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.sockets.iter().all(|s| s.error.is_none())
    }
}

impl fmt::Display for ProcessReport {
    /// One line per socket, or one line for the process when it failed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.command.as_deref().unwrap_or("?");
        for s in &self.sockets {
            writeln!(f, "pid {} ({name}) {s}", self.pid)?;
        }
        if let Some(e) = &self.error {
            writeln!(f, "pid {} ({name}): {e}", self.pid)?;
        } else if self.sockets.is_empty() {
            writeln!(f, "pid {} ({name}): no TCP sockets", self.pid)?;
        }
        Ok(())
    }
}

/// `keepalive-shim status`.
pub fn status_command() -> Command {
    Command::new("status")
        .about("Show the keepalive options, kernel timer and a verdict for each TCP socket of running processes; exit 0 if every process could be read")
        .arg(
            Arg::new("pid")
                .value_name("PID")
                .num_args(1..)
                // pid_t: a larger number names no process.
                .value_parser(clap::value_parser!(u32).range(1..=i64::from(i32::MAX)))
                .required_unless_present("all")
                .help("Processes to show"),
        )
        .arg(
            Arg::new("all")
                .long("all")
                .action(ArgAction::SetTrue)
                .conflicts_with("pid")
                .help("Every process that holds a TCP socket"),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .help("One JSON document (the shape is in the README)"),
        )
        .after_help(
            "Needs root (or ptrace rights over each process) to read option values; \
             a process in another network namespace is read inside its namespace.",
        )
}

/// `keepalive-shim apply`.
pub fn apply_command() -> Command {
    Command::new("apply")
        .about("Set keepalive options on the existing TCP connections of running processes (pidfd_getfd; the process is never stopped); one line per socket; exit 0 if every PID was done")
        .arg(
            Arg::new("pid")
                .value_name("PID")
                .num_args(1..)
                .required(true)
                // pid_t: a larger number names no process.
                .value_parser(clap::value_parser!(u32).range(1..=i64::from(i32::MAX)))
                .help("Processes to change"),
        )
        .args(plan_args())
        .arg(
            Arg::new("dry-run")
                .long("dry-run")
                .action(ArgAction::SetTrue)
                .help("Print what would change; change nothing"),
        )
        .after_help(format!(
            "{} The KEEPALIVE_SHIM_* environment and config file are not read. In respect mode an \
             option whose value differs from the kernel default of the process's network namespace \
             is the program's own and stands; TCP_USER_TIMEOUT is never changed on a socket that \
             has one. A connection is matched by the filters on its peer address, an accepted one \
             or a listener on its local address. Needs root, or CAP_SYS_PTRACE, or ptrace rights \
             over each process (and CAP_SYS_ADMIN for another network namespace).",
            plan_defaults()
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> ApplyPlan {
        let m = apply_command()
            .try_get_matches_from(["apply", "1"].iter().chain(args))
            .expect("valid flags");
        ApplyPlan::from_matches(&m).expect("a plan")
    }

    #[test]
    fn flags_become_a_plan_over_the_table_defaults() {
        let p = plan(&[]);
        let d = Config::defaults();
        assert_eq!(
            (p.idle_s, p.interval_s, p.count),
            (d.idle_s, d.interval_s, d.count)
        );
        assert_eq!((p.user_timeout, p.mode), (UserTimeout::Off, Mode::Respect));
        assert!(!p.filters.is_set());

        let p = plan(&[
            "--idle",
            "2m",
            "--interval",
            "5",
            "--count",
            "3",
            "--user-timeout",
            "auto",
            "--mode",
            "force",
            "--exclude",
            "10.0.0.0/8:5432",
        ]);
        assert_eq!((p.idle_s, p.interval_s, p.count), (120, 5, 3));
        assert_eq!((p.user_timeout, p.mode), (UserTimeout::Auto, Mode::Force));
        assert!(!p.filters.include.is_empty() || !p.filters.exclude.is_empty());
    }

    #[test]
    fn invalid_flags_are_usage_errors() {
        for bad in [
            ["--idle", "0"],
            ["--count", "128"],
            ["--mode", "maybe"],
            ["--include", "10.0.0.0/33"],
        ] {
            let r = apply_command().try_get_matches_from(["apply", "1"].iter().chain(&bad));
            assert!(r.is_err(), "{bad:?} accepted");
        }
        assert!(apply_command().try_get_matches_from(["apply"]).is_err());
        assert!(apply_command()
            .try_get_matches_from(["apply", "0"])
            .is_err());
    }
}
