//! What happens to a socket: classify it, apply the options, log the change.
//!
//! Called by the hooks after (or, for `connect`, before) the real call. It
//! never fails, and it restores errno around anything that could change it,
//! so the program sees exactly the result and errno of its own call.
//!
//! Policy: the options go on when the socket is created, so that whatever
//! the program sets afterwards stands ("the program's choice wins"). A TCP
//! socket that reaches `connect()` without passing through our `socket()`
//! (inherited, or created before the library loaded) gets them at
//! `connect()`, minus any the program already set through `setsockopt()`.

use core::ffi::c_int;

use core::sync::atomic::{AtomicBool, Ordering};

use keepalive_shim_config::{resolve, Config, Level, LineBuf, Sink, SockAddr};

use crate::fd_table;
use crate::log::{self, Line};
use crate::once::InitOnce;
use crate::options::{Opt, OptSet};
use crate::sys::{self, Destination, ErrnoGuard};

/// The configuration as the hooks need it, fixed at load.
struct Plan {
    /// The value of each [`Opt`], by index; `None`: the shim leaves it alone.
    values: [Option<c_int>; 5],
}

impl Plan {
    fn new(c: &Config<'_>) -> Plan {
        let secs = |s: u32| c_int::try_from(s).ok();
        Plan {
            values: [
                Some(1),
                secs(c.idle_s),
                secs(c.interval_s),
                secs(c.count),
                c.user_timeout_ms().and_then(|ms| c_int::try_from(ms).ok()),
            ],
        }
    }

    fn value(&self, opt: Opt) -> Option<c_int> {
        self.values.get(opt as usize).copied().flatten()
    }
}

/// Set at load when the shim is on; `None` means pass every call through.
static PLAN: InitOnce<Plan> = InitOnce::new();

/// Configuration warnings, formatted at load (the environment they quote
/// may be overwritten later, e.g. by setproctitle) and printed when the
/// process opens its first TCP socket. Processes that never do, such as the
/// shell and helper processes a program spawns, stay quiet; a child forked
/// after the warning does not repeat it.
static WARNINGS: InitOnce<LineBuf<2048>> = InitOnce::new();
static WARNED: AtomicBool = AtomicBool::new(false);

/// Reads the configuration (once: this runs in the constructor) and arms
/// the hooks.
pub fn load(env: impl Iterator<Item = (&'static [u8], &'static [u8])>, secure: bool) {
    let mut warnings = LineBuf::<2048>::new();
    let config = resolve(env, &mut |d| {
        d.write(&mut warnings);
        warnings.put(b"\n");
    });
    // A privileged program must not be made to append to an arbitrary file.
    let log_file = if secure { None } else { config.log_file };
    if secure && config.log_file.is_some() {
        warnings
            .put(b"KEEPALIVE_SHIM_LOG_FILE is ignored in a setuid/setgid program; using stderr\n");
    }
    log::init(config.log_level, log_file);
    if !warnings.is_empty() {
        WARNINGS.set(warnings);
    }
    if config.enabled {
        PLAN.set(Plan::new(&config));
    }
}

/// Prints the configuration warnings, the first time a TCP socket is seen.
fn warn_once() {
    let Some(text) = WARNINGS.get() else { return };
    if WARNED.load(Ordering::Relaxed) || WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    for warning in text
        .as_bytes()
        .split(|&b| b == b'\n')
        .filter(|w| !w.is_empty())
    {
        log::line(Level::Warn, |b| b.put(warning));
    }
}

fn is_tcp(domain: c_int, ty: c_int, protocol: c_int) -> bool {
    matches!(domain, libc::AF_INET | libc::AF_INET6)
        && ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) == libc::SOCK_STREAM
        && (protocol == 0 || protocol == libc::IPPROTO_TCP)
}

/// After a successful or failed `socket()`.
pub fn socket_created(fd: c_int, domain: c_int, ty: c_int, protocol: c_int) {
    let Some(plan) = PLAN.get() else { return };
    if fd < 0 {
        return;
    }
    if !is_tcp(domain, ty, protocol) {
        fd_table::set_not_tcp(fd);
        return;
    }
    let _errno = ErrnoGuard::save();
    warn_once();
    let applied = apply(plan, fd, OptSet::EMPTY);
    fd_table::reset_configured(fd, applied);
    if fd_table::get(fd).is_none() {
        // No slot to defer the line to connect(): log it now, without a peer.
        log_configured(plan, fd, None, applied, OptSet::EMPTY);
    }
}

/// Before the real `connect()`, so that any options are in place before
/// the SYN leaves.
pub fn before_connect(fd: c_int, dest: Destination) {
    let Some(plan) = PLAN.get() else { return };
    let Some(state) = fd_table::get(fd) else {
        return; // beyond the table: configured (and logged) at socket()
    };
    if state.seen() {
        if state.tcp() && log::enabled(Level::Info) && fd_table::take_log_pending(fd) {
            log_configured(plan, fd, dest.read(), state.applied(), state.program_set());
        }
        return;
    }
    // Not created through our socket(): find out what it is, once.
    match dest.family() {
        Some(libc::AF_INET | libc::AF_INET6) => {}
        Some(_) => return fd_table::set_not_tcp(fd),
        None => return,
    }
    let _errno = ErrnoGuard::save();
    if !socket_is_tcp(fd) {
        return fd_table::set_not_tcp(fd);
    }
    warn_once();
    let program_set = state.program_set();
    let applied = apply(plan, fd, program_set);
    fd_table::set_configured(fd, applied);
    if log::enabled(Level::Info) && fd_table::take_log_pending(fd) {
        log_configured(plan, fd, dest.read(), applied, program_set);
    }
}

/// After a successful `setsockopt()` by the program: remember which of our
/// options it chose itself.
pub fn program_set_option(fd: c_int, level: c_int, name: c_int) {
    if PLAN.get().is_none() {
        return;
    }
    if let Some(opt) = Opt::from_sockopt(level, name) {
        fd_table::mark_program_set(fd, OptSet::EMPTY.with(opt));
    }
}

fn socket_is_tcp(fd: c_int) -> bool {
    let get = |name| sys::get_int_option(fd, libc::SOL_SOCKET, name);
    match (
        get(libc::SO_DOMAIN),
        get(libc::SO_TYPE),
        get(libc::SO_PROTOCOL),
    ) {
        (Some(domain), Some(ty), Some(protocol)) => is_tcp(domain, ty, protocol),
        _ => false,
    }
}

/// Sets every planned option not in `skip`; returns those that took.
/// The caller restores errno.
fn apply(plan: &Plan, fd: c_int, skip: OptSet) -> OptSet {
    let mut applied = OptSet::EMPTY;
    for opt in Opt::ALL {
        let Some(value) = plan.value(opt) else {
            continue;
        };
        if skip.contains(opt) {
            continue;
        }
        let (level, name) = opt.sockopt();
        match sys::set_int_option(fd, level, name, value) {
            Ok(()) => applied = applied.with(opt),
            Err(errno) => log::line(Level::Debug, |b| {
                put_fd(b, fd);
                b.put(b" could not set ");
                put_option(b, opt, value);
                b.put(b": errno ");
                put_int(b, errno);
            }),
        }
    }
    applied
}

/// The one info line per configured socket. A socket on which the shim
/// changed nothing (every option failed, or was the program's) is only
/// logged at debug.
fn log_configured(
    plan: &Plan,
    fd: c_int,
    peer: Option<SockAddr>,
    applied: OptSet,
    program: OptSet,
) {
    let ours = applied.without(program);
    let level = if ours.is_empty() {
        Level::Debug
    } else {
        Level::Info
    };
    log::line(level, |b| {
        put_fd(b, fd);
        if let Some(peer) = peer {
            b.put(b" peer=");
            peer.write(b);
        }
        for opt in Opt::ALL {
            if let (true, Some(value)) = (ours.contains(opt), plan.value(opt)) {
                b.put(b" ");
                put_option(b, opt, value);
            }
        }
        if log::enabled(Level::Debug) && !program.is_empty() {
            b.put(b" program-set:");
            for opt in Opt::ALL.into_iter().filter(|&o| program.contains(o)) {
                let (level, name) = opt.sockopt();
                b.put(b" ");
                match sys::get_int_option(fd, level, name) {
                    Some(v) => put_option(b, opt, v),
                    None => b.put(opt.name().as_bytes()),
                }
            }
        }
    });
}

fn put_fd(b: &mut Line, fd: c_int) {
    b.put(b"fd=");
    put_int(b, fd);
}

fn put_option(b: &mut Line, opt: Opt, value: c_int) {
    b.put(opt.name().as_bytes());
    b.put(b"=");
    put_int(b, value);
}

fn put_int(b: &mut Line, n: c_int) {
    if n < 0 {
        b.put(b"-");
    }
    keepalive_shim_config::put_u64(b, u64::from(n.unsigned_abs()));
}
