//! What happens to a socket: classify it, decide, apply the options, log.
//!
//! Called by the hooks after (or, for `connect`/`listen`, before) the real
//! call. It never fails, and it restores errno around anything that could
//! change it, so the program sees exactly the result and errno of its own
//! call.
//!
//! When the options go on:
//! - No destination filters: at `socket()`, so that whatever the program sets
//!   afterwards stands ("respect" mode).
//! - With `KEEPALIVE_SHIM_INCLUDE`/`EXCLUDE`: at `connect()`, matched on the
//!   destination, minus the options the program already set through
//!   `setsockopt()` in respect mode.
//! - A TCP socket that reaches `connect()` without passing through our
//!   `socket()` (inherited, or opened before the library loaded) is
//!   classified and handled there, once.
//! - Servers: without filters, the listening socket has the options from
//!   `socket()` and accepted connections inherit them (Linux copies them);
//!   `accept()` only records that, for logging and force mode. With filters,
//!   each accepted connection is decided at `accept()` on the local address
//!   the client reached. A listening socket the shim never saw (socket
//!   activation) is classified at `listen()` or its first `accept()`.
//!
//! In force mode, a program's `setsockopt()` of a managed option succeeds as
//! usual, and the shim then sets its own value again.

use core::ffi::c_int;

use keepalive_shim_config::{Level, Mode, Sink, SockAddr};

use crate::fd_table::{self, FdState};
use crate::load;
use crate::log::{self, Line};
use crate::options::{Opt, OptSet};
use crate::plan::{self, Plan};
use crate::sys::{self, Destination, ErrnoGuard, OptionValue};

fn is_tcp(domain: c_int, ty: c_int, protocol: c_int) -> bool {
    matches!(domain, libc::AF_INET | libc::AF_INET6)
        && ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) == libc::SOCK_STREAM
        && (protocol == 0 || protocol == libc::IPPROTO_TCP)
}

/// After `socket()`.
pub fn socket_created(fd: c_int, domain: c_int, ty: c_int, protocol: c_int) {
    let Some(plan) = plan::get() else { return };
    if fd < 0 {
        return;
    }
    if !is_tcp(domain, ty, protocol) {
        return fd_table::store(fd, FdState::NOT_TCP);
    }
    let _errno = ErrnoGuard::save();
    load::warn_once();
    if plan.has_filters() {
        // The destination decides, at connect() or listen().
        return fd_table::store(fd, FdState::UNDECIDED_TCP);
    }
    let applied = apply(plan, fd, OptSet::EMPTY);
    fd_table::store(fd, FdState::decided(applied, OptSet::EMPTY));
    if fd_table::get(fd).is_none() {
        // No slot to keep the line for connect(): log it now, without a peer.
        log_socket(plan, fd, Role::Unknown, applied, OptSet::EMPTY);
    }
}

/// What a log line says about the socket's other end.
#[derive(Clone, Copy)]
enum Role {
    Peer(Option<SockAddr>),
    Listen(Option<SockAddr>),
    Accepted(Option<SockAddr>),
    /// Closed without connect() or listen().
    Unconnected,
    /// Beyond the descriptor table: logged at socket(), before any peer.
    Unknown,
}

/// Before the real `connect()`, so that the options are in place before
/// the SYN leaves.
pub fn before_connect(fd: c_int, dest: Destination) {
    let Some(plan) = plan::get() else { return };
    let Some(mut state) = fd_table::get(fd) else {
        return;
    };
    if !state.seen() {
        // Not created through our socket(): find out what it is, once.
        match dest.family() {
            Some(libc::AF_INET | libc::AF_INET6) => {}
            Some(_) => return fd_table::store(fd, FdState::NOT_TCP),
            None => return,
        }
        let _errno = ErrnoGuard::save();
        if !socket_is_tcp(fd) {
            return fd_table::store(fd, FdState::NOT_TCP);
        }
        load::warn_once();
        state = state.as_undecided_tcp();
    }
    if !state.tcp() {
        return;
    }
    settle(plan, fd, state, || dest.read(), Role::Peer);
}

/// Before the real `listen()`. Without filters the listening socket has had
/// the options since `socket()`, and the connections it accepts inherit
/// them. With filters, each accepted connection is decided on its own (see
/// [`accepted`]), so the listening socket itself is left alone.
pub fn before_listen(fd: c_int) {
    let Some(plan) = plan::get() else { return };
    let Some(state) = fd_table::get(fd) else {
        return;
    };
    let state = if state.seen() {
        state
    } else {
        // Inherited, or created before the library loaded: classify it once.
        let _errno = ErrnoGuard::save();
        if !socket_is_tcp(fd) {
            return fd_table::store(fd, FdState::NOT_TCP);
        }
        load::warn_once();
        let state = state.as_undecided_tcp();
        fd_table::store(fd, state);
        state
    };
    if !state.tcp() {
        return;
    }
    if plan.has_filters() {
        return log_per_connection(fd);
    }
    settle(
        plan,
        fd,
        state,
        || sys::socket_address(fd, false),
        Role::Listen,
    );
}

fn log_per_connection(fd: c_int) {
    if log::enabled(Level::Debug) {
        let _errno = ErrnoGuard::save();
        let local = sys::socket_address(fd, false);
        log::line(Level::Debug, |b| {
            put_fd(b, fd);
            if let Some(a) = local {
                b.put(b" listen=");
                a.write(b);
            }
            b.put(b" filters: decided per accepted connection, on the address it was reached at");
        });
    }
}

/// Decides and applies (if not done yet) and writes the socket's one line.
fn settle(
    plan: &Plan,
    fd: c_int,
    state: FdState,
    address: impl Fn() -> Option<SockAddr>,
    role: fn(Option<SockAddr>) -> Role,
) {
    // The common case (decided at socket(), not logging) makes no call at all.
    let (applied, program) = if state.is_decided() {
        (state.applied(), state.program_set())
    } else {
        let _errno = ErrnoGuard::save();
        let program = state.program_set();
        let applied = if plan.applies_to(address()) {
            apply(plan, fd, plan.skip(program))
        } else {
            OptSet::EMPTY
        };
        fd_table::decide(fd, applied);
        (applied, program)
    };
    if log::enabled(Level::Info) && fd_table::take_log_pending(fd) {
        let _errno = ErrnoGuard::save();
        log_socket(plan, fd, role(address()), applied, program);
    }
}

/// After `accept()`/`accept4()`.
///
/// Without filters the connection inherited the listening socket's options
/// (Linux copies them), and this only records that. With filters it is
/// decided here on its local address and port, the address the client
/// reached (a server bound to `0.0.0.0` is reached at a real address), and
/// the options are applied to it directly.
pub fn accepted(listener: c_int, conn: c_int) {
    let Some(plan) = plan::get() else { return };
    if conn < 0 {
        return;
    }
    let Some(mut state) = fd_table::get(listener) else {
        return;
    };
    let _errno = ErrnoGuard::save();
    if !state.seen() {
        // A listening socket handed over already listening (socket
        // activation, exec-based restarts): classify it once.
        if !socket_is_tcp(listener) {
            fd_table::store(listener, FdState::NOT_TCP);
            return fd_table::store(conn, FdState::NOT_TCP);
        }
        load::warn_once();
        state = state.as_undecided_tcp();
        fd_table::store(listener, state);
        if !plan.has_filters() {
            // Configure the listener for the connections still to come; this
            // one was created without the options, so it gets them directly.
            let applied = apply(plan, listener, plan.skip(state.program_set()));
            fd_table::decide(listener, applied);
            fd_table::mark_late(listener);
            if log::enabled(Level::Info) && fd_table::take_log_pending(listener) {
                let local = sys::socket_address(listener, false);
                log_socket(
                    plan,
                    listener,
                    Role::Listen(local),
                    applied,
                    state.program_set(),
                );
            }
            return configure_connection(plan, conn, state.program_set(), true);
        }
    }
    if !state.tcp() {
        return fd_table::store(conn, FdState::NOT_TCP);
    }
    if plan.has_filters() {
        let applies = plan.applies_to(sys::socket_address(conn, false));
        return configure_connection(plan, conn, state.program_set(), applies);
    }
    // Inherited: what the listener had from the shim, the connection has too;
    // options the program set on the listener are the program's on it too.
    let (applied, program) = (state.applied(), state.program_set());
    if state.is_late() && sys::get_int_option(conn, libc::SOL_SOCKET, libc::SO_KEEPALIVE) == Some(0)
    {
        // Completed its handshake before the listener was configured.
        return configure_connection(plan, conn, program, true);
    }
    record_connection(plan, conn, applied, program);
}

/// Applies the options (if `applies`) to an accepted connection itself.
fn configure_connection(plan: &Plan, conn: c_int, program: OptSet, applies: bool) {
    let applied = if applies {
        apply(plan, conn, plan.skip(program))
    } else {
        OptSet::EMPTY
    };
    record_connection(plan, conn, applied, program);
}

/// Stores an accepted connection's state and writes its one line.
fn record_connection(plan: &Plan, conn: c_int, applied: OptSet, program: OptSet) {
    fd_table::store(conn, FdState::decided(applied, program));
    if log::enabled(Level::Info) && fd_table::take_log_pending(conn) {
        let peer = sys::socket_address(conn, true);
        log_socket(plan, conn, Role::Accepted(peer), applied, program);
    }
}

/// Before `close()`. A socket the shim changed that never connected or
/// listened gets its one line now.
pub fn closing(fd: c_int) {
    let Some(plan) = plan::get() else { return };
    if log::enabled(Level::Info) && fd_table::take_log_pending(fd) {
        if let Some(state) = fd_table::get(fd) {
            let _errno = ErrnoGuard::save();
            log_socket(
                plan,
                fd,
                Role::Unconnected,
                state.applied(),
                state.program_set(),
            );
        }
    }
    fd_table::forget(fd);
}

/// After a successful `setsockopt()` by the program.
pub fn program_set_option(fd: c_int, level: c_int, name: c_int, value: OptionValue) {
    let Some(plan) = plan::get() else { return };
    let Some(opt) = Opt::from_sockopt(level, name) else {
        return;
    };
    fd_table::mark_program_set(fd, OptSet::EMPTY.with(opt));
    if plan.mode != Mode::Force {
        return;
    }
    let Some(state) = fd_table::get(fd) else {
        return;
    };
    let Some(ours) = plan.value(opt) else { return };
    // Only sockets the shim manages; before the decision, connect() applies
    // every option anyway.
    if !(state.is_decided() && state.applied().contains(opt)) {
        return;
    }
    let theirs = value.read();
    if theirs == Some(ours) {
        return;
    }
    let _errno = ErrnoGuard::save();
    let (level, name) = opt.sockopt();
    if sys::set_int_option(fd, level, name, ours).is_ok() {
        log::line(Level::Info, |b| {
            put_fd(b, fd);
            b.put(b" force: kept ");
            put_option(b, opt, ours);
            b.put(b" (the program set ");
            match theirs {
                Some(v) => put_int(b, v),
                None => b.put(b"?"),
            }
            b.put(b")");
        });
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

/// The one line per socket: at info if the shim changed something, else at
/// debug (every option failed, was the program's, or a filter left the
/// socket alone).
fn log_socket(plan: &Plan, fd: c_int, role: Role, applied: OptSet, program: OptSet) {
    let ours = match plan.mode {
        Mode::Respect => applied.without(program),
        Mode::Force => applied,
    };
    let level = if ours.is_empty() {
        Level::Debug
    } else {
        Level::Info
    };
    log::line(level, |b| {
        put_fd(b, fd);
        let (label, addr): (&[u8], _) = match role {
            Role::Peer(a) => (b" peer=", a),
            Role::Listen(a) => (b" listen=", a),
            Role::Accepted(a) => (b" accepted=", a),
            Role::Unconnected => {
                b.put(b" unconnected");
                (b"", None)
            }
            Role::Unknown => (b"", None),
        };
        if let Some(a) = addr {
            b.put(label);
            a.write(b);
        }
        if applied.is_empty() && plan.has_filters() {
            b.put(b" left alone (filters)");
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

pub fn put_int(b: &mut impl Sink, n: c_int) {
    if n < 0 {
        b.put(b"-");
    }
    keepalive_shim_config::put_u64(b, u64::from(n.unsigned_abs()));
}
