//! `keepalive-shim apply PID... [FLAGS] [--dry-run]`: the options of the
//! library, set on the TCP sockets running processes already hold.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::process::ExitCode;

use clap::ArgMatches;
use keepalive_shim_config::{Decision, Ip, Mode, Rule, SockAddr, UserTimeout};

use super::procs::{DupError, Namespaces, Target};
use super::{
    sys, ApplyPlan, KernelDefaults, Opt, Options, ProcessError, ProcessReport, SocketInfo,
};

/// What happened to one option of one socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Set from `from` to `to` (or would be, in a dry run).
    Set { opt: Opt, from: u32, to: u32 },
    /// Left at `value`, for `why`.
    Kept { opt: Opt, value: u32, why: Kept },
}

/// Why an option was left alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// It already has the plan's value.
    Already,
    /// Respect mode: it differs from the namespace's kernel default, so the
    /// program (or an earlier `apply`, or the library) set it.
    ProgramsOwn { default: u32 },
    /// TCP_USER_TIMEOUT is never replaced once a socket has one.
    HasUserTimeout,
}

/// One socket's line.
#[derive(Clone, Debug)]
pub struct SocketReport {
    pub socket: SocketInfo,
    /// Options before, when they could be read.
    pub before: Option<Options>,
    pub actions: Vec<Action>,
    /// Set when the filters left the whole socket alone: which entry decided.
    pub filtered_out: Option<String>,
    /// The descriptor was closed or reused between listing and duplicating.
    pub gone: bool,
    /// A `getsockopt`/`setsockopt` that failed.
    pub error: Option<String>,
    pub dry_run: bool,
}

impl fmt::Display for SocketReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.socket)?;
        if self.gone {
            return f.write_str("left alone: the descriptor was closed meanwhile");
        }
        if let Some(why) = &self.filtered_out {
            return write!(f, "left alone: {why}");
        }
        let set: Vec<String> = self
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Set { opt, from, to } => Some(format!("{}={to} (was {from})", opt.name())),
                Action::Kept { .. } => None,
            })
            .collect();
        let kept: Vec<String> = self
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Kept { opt, value, why } => Some(format!(
                    "{}={value} ({})",
                    opt.name(),
                    match why {
                        Kept::Already => "already".to_owned(),
                        Kept::ProgramsOwn { default } => {
                            format!("not the kernel default {default}: the program's own")
                        }
                        Kept::HasUserTimeout => "the socket has one already".to_owned(),
                    }
                )),
                Action::Set { .. } => None,
            })
            .collect();
        let verb = if self.dry_run { "would set" } else { "set" };
        match (set.is_empty(), kept.is_empty()) {
            (true, _) => write!(f, "unchanged")?,
            (false, _) => write!(f, "{verb} {}", set.join(" "))?,
        }
        if !kept.is_empty() {
            write!(f, "; kept {}", kept.join(" "))?;
        }
        if let Some(e) = &self.error {
            write!(f, "; FAILED: {e}")?;
        }
        Ok(())
    }
}

fn sock_addr(a: &SocketAddr) -> SockAddr {
    let ip = match a.ip() {
        std::net::IpAddr::V4(v) => Ip::V4(v.octets()),
        std::net::IpAddr::V6(v) => Ip::V6(v.octets()),
    };
    SockAddr { ip, port: a.port() }
}

fn rule_text(r: &Rule) -> String {
    let mut t = super::Text::default();
    r.write(&mut t);
    t.0
}

/// `None` if the filters let the socket have the options, else why not.
fn filtered_out(plan: &ApplyPlan, s: &SocketInfo) -> Option<String> {
    if !plan.filters.is_set() {
        return None;
    }
    let addr = s.filter_address();
    let d: Decision = plan.filters.decide(&sock_addr(&addr));
    if d.applies {
        return None;
    }
    let what = match s.role {
        super::Role::Connected => "peer",
        _ => "local address",
    };
    Some(match d.excluded_by {
        Some(r) => format!("{what} {addr} matches EXCLUDE entry {}", rule_text(&r)),
        None => format!("{what} {addr} matches no INCLUDE entry"),
    })
}

/// The actions for a socket with values `cur` in a namespace with
/// `defaults`, in `Opt::ALL` order.
pub fn plan_actions(plan: &ApplyPlan, cur: &Options, defaults: &KernelDefaults) -> Vec<Action> {
    let mut out = Vec::new();
    let mut after = *cur;
    let wanted = [
        (Opt::KeepAlive, 1),
        (Opt::Idle, plan.idle_s),
        (Opt::Interval, plan.interval_s),
        (Opt::Count, plan.count),
    ];
    for (opt, ours) in wanted {
        let value = cur.get(opt);
        let default = defaults.get(opt);
        let action = if value == ours {
            Action::Kept {
                opt,
                value,
                why: Kept::Already,
            }
        } else if plan.mode == Mode::Respect && value != default {
            Action::Kept {
                opt,
                value,
                why: Kept::ProgramsOwn { default },
            }
        } else {
            after.set(opt, ours);
            Action::Set {
                opt,
                from: value,
                to: ours,
            }
        };
        out.push(action);
    }
    let target = match plan.user_timeout {
        UserTimeout::Off => None,
        UserTimeout::Millis(ms) => Some(ms),
        // From the values the socket has once this is done: the program's
        // own where they stand.
        UserTimeout::Auto => Some(UserTimeout::auto_ms(
            after.idle_s,
            after.interval_s,
            after.count,
        )),
    };
    if let Some(to) = target {
        let value = cur.user_timeout_ms;
        out.push(if value == to {
            Action::Kept {
                opt: Opt::UserTimeout,
                value,
                why: Kept::Already,
            }
        } else if value != 0 {
            Action::Kept {
                opt: Opt::UserTimeout,
                value,
                why: Kept::HasUserTimeout,
            }
        } else {
            Action::Set {
                opt: Opt::UserTimeout,
                from: 0,
                to,
            }
        });
    }
    out
}

/// Sets `plan` on every TCP socket (connections and listeners) that
/// process `pid` holds, or only says what it would set when `dry_run`.
///
/// Per socket: filters first (a connection on its peer address, an
/// accepted connection or a listener on its local address), then per
/// option: already at the plan's value, the program's own (respect mode:
/// it differs from the kernel default of the process's network namespace),
/// or set. TCP_USER_TIMEOUT is set only when the plan has one and the
/// socket has none; `auto` is computed from the socket's effective values.
///
/// Errors: a PID that does not exist, a process that exits meanwhile, or
/// one we have no right over (root, CAP_SYS_PTRACE or ptrace rights are
/// needed; CAP_SYS_ADMIN too for another network namespace) end up in
/// [`ProcessReport::error`]; a failed `setsockopt` in that socket's
/// [`SocketReport::error`]. The process is never stopped or signalled.
pub fn apply_to_process(pid: i32, plan: &ApplyPlan, dry_run: bool) -> ProcessReport {
    apply_with(pid, plan, dry_run, &mut Namespaces::default())
}

/// [`apply_to_process`] for several processes, in order, with one
/// sock_diag dump per network namespace instead of one per process (for a
/// cgroup or a service with many processes).
pub fn apply_to_processes(pids: &[i32], plan: &ApplyPlan, dry_run: bool) -> Vec<ProcessReport> {
    let mut ns = Namespaces::default();
    pids.iter()
        .map(|&pid| apply_with(pid, plan, dry_run, &mut ns))
        .collect()
}

fn apply_with(pid: i32, plan: &ApplyPlan, dry_run: bool, ns: &mut Namespaces) -> ProcessReport {
    let mut report = ProcessReport {
        pid,
        command: None,
        error: None,
        sockets: Vec::new(),
        dry_run,
    };
    let target = match Target::open(pid) {
        Ok(t) => t,
        Err((command, e)) => {
            report.command = command;
            report.error = Some(e);
            return report;
        }
    };
    report.command = target.command.clone();
    let view = match ns.view(&target) {
        Ok(v) => v,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let sockets = target.tcp_sockets(&view);
    let defaults = view.defaults;
    let results = super::parallel_map(&sockets, |s| {
        apply_to_socket(&target, s, plan, &defaults, dry_run)
    });
    for result in results {
        match result {
            Ok(r) => report.sockets.push(r),
            // The first one says why (the process exited, or no permission);
            // sockets other threads finished are still reported.
            Err(e) => {
                report.error.get_or_insert(e);
            }
        }
    }
    report
}

/// One socket: filters, then read, decide and (unless `dry_run`) set.
fn apply_to_socket(
    target: &Target,
    s: &SocketInfo,
    plan: &ApplyPlan,
    defaults: &KernelDefaults,
    dry_run: bool,
) -> Result<SocketReport, ProcessError> {
    let mut r = SocketReport {
        socket: s.clone(),
        before: None,
        actions: Vec::new(),
        filtered_out: filtered_out(plan, s),
        gone: false,
        error: None,
        dry_run,
    };
    if r.filtered_out.is_some() {
        return Ok(r);
    }
    let dup = match target.duplicate(s) {
        Ok(fd) => fd,
        Err(DupError::Gone) => {
            r.gone = true;
            return Ok(r);
        }
        Err(DupError::Process(e)) => return Err(e),
    };
    let cur = match sys::read_options(dup.as_fd()) {
        Ok(o) => o,
        Err(e) => {
            r.error = Some(format!("getsockopt: {e}"));
            return Ok(r);
        }
    };
    r.before = Some(cur);
    r.actions = plan_actions(plan, &cur, defaults);
    if !dry_run {
        let failed: Vec<String> = r
            .actions
            .iter()
            .filter_map(|a| match *a {
                Action::Set { opt, to, .. } => sys::set_option(dup.as_fd(), opt, to)
                    .err()
                    .map(|e| format!("{}={to}: {e}", opt.name())),
                Action::Kept { .. } => None,
            })
            .collect();
        if !failed.is_empty() {
            r.error = Some(failed.join(", "));
        }
    }
    // `dup` is closed here; the process's own descriptor stays open.
    Ok(r)
}

/// The `apply` command.
pub fn apply(m: &ArgMatches) -> ExitCode {
    let plan = match ApplyPlan::from_matches(m) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("keepalive-shim: {e}");
            return ExitCode::from(2);
        }
    };
    let dry_run = m.get_flag("dry-run");
    let mut ok = true;
    let mut ns = Namespaces::default();
    let stdout = io::stdout();
    for &pid in m.get_many::<u32>("pid").into_iter().flatten() {
        let pid = i32::try_from(pid).unwrap_or(i32::MAX);
        let report = apply_with(pid, &plan, dry_run, &mut ns);
        ok &= report.ok();
        let mut out = io::BufWriter::new(stdout.lock());
        for s in &report.sockets {
            let _ = writeln!(
                out,
                "pid {pid} ({}) {s}",
                report.command.as_deref().unwrap_or("?")
            );
        }
        if report.error.is_none() && report.sockets.is_empty() {
            let _ = writeln!(out, "pid {pid}: no TCP sockets");
        }
        let _ = out.flush();
        drop(out);
        if let Some(e) = &report.error {
            eprintln!("keepalive-shim: pid {pid}: {e}");
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KERNEL: KernelDefaults = KernelDefaults {
        idle_s: 7200,
        interval_s: 75,
        count: 9,
    };
    const FRESH: Options = Options {
        keepalive: 0,
        idle_s: 7200,
        interval_s: 75,
        count: 9,
        user_timeout_ms: 0,
    };

    fn plan(mode: Mode, ut: UserTimeout) -> ApplyPlan {
        ApplyPlan {
            idle_s: 17,
            interval_s: 4,
            count: 3,
            user_timeout: ut,
            mode,
            ..ApplyPlan::default()
        }
    }

    fn sets(actions: &[Action]) -> Vec<(Opt, u32)> {
        actions
            .iter()
            .filter_map(|a| match *a {
                Action::Set { opt, to, .. } => Some((opt, to)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn fresh_socket_gets_everything() {
        let a = plan_actions(&plan(Mode::Respect, UserTimeout::Off), &FRESH, &KERNEL);
        assert_eq!(
            sets(&a),
            [
                (Opt::KeepAlive, 1),
                (Opt::Idle, 17),
                (Opt::Interval, 4),
                (Opt::Count, 3)
            ]
        );
    }

    #[test]
    fn respect_keeps_values_that_differ_from_the_namespace_default() {
        let cur = Options {
            idle_s: 30,
            ..FRESH
        };
        let a = plan_actions(&plan(Mode::Respect, UserTimeout::Auto), &cur, &KERNEL);
        assert!(a.contains(&Action::Kept {
            opt: Opt::Idle,
            value: 30,
            why: Kept::ProgramsOwn { default: 7200 }
        }));
        // auto from the effective values: the program's 30 s idle, ours for the rest.
        assert!(sets(&a).contains(&(Opt::UserTimeout, (30 + 4 * 3) * 1000)));
        // Another namespace with a different default: 30 is the default there.
        let ns = KernelDefaults {
            idle_s: 30,
            ..KERNEL
        };
        let a = plan_actions(&plan(Mode::Respect, UserTimeout::Off), &cur, &ns);
        assert!(sets(&a).contains(&(Opt::Idle, 17)));
    }

    #[test]
    fn force_overrides_but_never_a_user_timeout() {
        let cur = Options {
            keepalive: 1,
            idle_s: 30,
            user_timeout_ms: 9000,
            ..FRESH
        };
        let a = plan_actions(&plan(Mode::Force, UserTimeout::Millis(5000)), &cur, &KERNEL);
        assert_eq!(
            sets(&a),
            [(Opt::Idle, 17), (Opt::Interval, 4), (Opt::Count, 3)]
        );
        assert!(a.contains(&Action::Kept {
            opt: Opt::UserTimeout,
            value: 9000,
            why: Kept::HasUserTimeout
        }));
    }

    #[test]
    fn user_timeout_off_is_not_mentioned() {
        let a = plan_actions(&plan(Mode::Force, UserTimeout::Off), &FRESH, &KERNEL);
        assert!(a.iter().all(|a| !matches!(
            a,
            Action::Set {
                opt: Opt::UserTimeout,
                ..
            } | Action::Kept {
                opt: Opt::UserTimeout,
                ..
            }
        )));
    }
}
