//! What happens to a socket: classify it, decide, apply the options, log.
//!
//! Called by the hooks around the real call. It never fails, never reads
//! memory through a pointer the program passed (addresses are copied with
//! [`sys::ProgramAddress`], which cannot fault), and restores errno around
//! anything that could change it, so the program sees exactly the result
//! and errno of its own call.
//!
//! When the options go on:
//! - No destination filters: at `socket()`, so that whatever the program sets
//!   afterwards stands ("respect" mode).
//! - With `KEEPALIVE_SHIM_INCLUDE`/`EXCLUDE`: in the call that connects
//!   (`connect()`, or `sendto()`/`sendmsg()` with `MSG_FASTOPEN`), matched on
//!   the destination, minus the options the program already set in respect
//!   mode.
//! - A TCP socket the `socket()` hook never saw (a raw syscall, inherited,
//!   or on a descriptor number that changed identity without `close()`) is
//!   classified in the first hook that sees it, once.
//! - Connected sockets a parent handed over (inetd, systemd `Accept=yes`,
//!   `LISTEN_FDS`): at load, see [`inherited`].
//! - Servers: without filters, the listening socket has the options from
//!   `socket()` and accepted connections inherit them (Linux copies them);
//!   `accept()` only records that, for logging and force mode. With filters,
//!   each accepted connection is decided at `accept()` on the local address
//!   the client reached.
//!
//! `TCP_USER_TIMEOUT=auto` is computed per socket from its effective idle,
//! interval and count, the program's own included, and recomputed when the
//! program changes one of them later; a program's own `TCP_USER_TIMEOUT`
//! always stands.
//!
//! Log lines state the socket's options as the kernel reports them when the
//! line is written. A line is written once the connection is on its way
//! (the connect succeeded, or is in progress); a refused connect gets none.

use core::ffi::c_int;

use keepalive_shim_config::{Level, Mode, Sink, SockAddr, UserTimeout};

use crate::deepbind;
use crate::fd_table::{self, FdState};
use crate::log::{self, put_int, Line};
use crate::options::{Opt, OptSet};
use crate::plan::{self, Plan};
use crate::sys::{self, Dest, ErrnoGuard, ProgramAddress};

fn is_tcp(domain: c_int, ty: c_int, protocol: c_int) -> bool {
    matches!(domain, libc::AF_INET | libc::AF_INET6)
        && ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) == libc::SOCK_STREAM
        && (protocol == 0 || protocol == libc::IPPROTO_TCP)
}

/// After `socket()`.
pub fn socket_created(fd: c_int, domain: c_int, ty: c_int, protocol: c_int) {
    let Some(plan) = plan::get() else { return };
    deepbind::check_pending();
    if fd < 0 {
        return;
    }
    if !is_tcp(domain, ty, protocol) {
        // Whatever the number held before is gone; what it is now is
        // checked if it ever reaches connect().
        return fd_table::forget(fd);
    }
    let _errno = ErrnoGuard::save();
    log::warn_once();
    let fresh = sys::socket_inode(fd).map_or(FdState::unseen(0), FdState::unseen);
    if plan.has_filters() {
        // The destination decides, in the call that connects.
        return fd_table::store(fd, fresh.as_undecided_tcp());
    }
    let applied = apply(plan, fd, OptSet::EMPTY, OptSet::EMPTY);
    fd_table::store(fd, fresh.as_decided(applied, OptSet::EMPTY));
    if fd_table::current(fd).is_none() {
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
    /// Handed over by the parent, already connected.
    Inherited(Option<SockAddr>),
    /// Closed without connect() or listen().
    Unconnected,
    /// Beyond the descriptor table: logged at socket(), before any peer.
    Unknown,
}

/// The slot of a socket a hook sees, classified if no hook has seen it
/// before (a raw syscall, inherited, or a number that changed identity):
/// `None` unless it is a TCP socket.
fn tcp_state(fd: c_int, state: FdState) -> Option<FdState> {
    if state.seen() {
        return state.tcp().then_some(state);
    }
    // Another number for a socket the shim knows (dup(), F_DUPFD, inetd's
    // fds 0-2): the same socket, so the same state.
    if let Some(twin) = fd_table::twin(fd, state) {
        fd_table::store(fd, twin);
        return twin.tcp().then_some(twin);
    }
    let _errno = ErrnoGuard::save();
    if !socket_is_tcp(fd) {
        fd_table::store(fd, state.as_not_tcp());
        return None;
    }
    log::warn_once();
    let state = state.as_undecided_tcp();
    fd_table::store(fd, state);
    Some(state)
}

/// What [`before_connect`] leaves for [`after_connect`].
#[derive(Clone, Copy)]
pub struct Connecting {
    tcp: bool,
    dest: Option<SockAddr>,
    /// Decided in this call, with filters: what to put back if the call
    /// fails at once, so that the socket's next attempt is decided afresh
    /// (options the shim set, and their values before).
    undo: Option<(OptSet, [c_int; Opt::ALL.len()])>,
}

/// Before the call that connects (`connect()`, or a `sendto()`/`sendmsg()`
/// with `MSG_FASTOPEN`), so that the options are in place before the SYN.
/// With filters, the destination decides; a call that connects nothing
/// (`AF_UNSPEC`, a disconnect) decides nothing.
pub fn before_connect(fd: c_int, address: ProgramAddress) -> Connecting {
    let none = Connecting {
        tcp: false,
        dest: None,
        undo: None,
    };
    let Some(plan) = plan::get() else { return none };
    deepbind::check_pending();
    let Some(state) = fd_table::current(fd).and_then(|s| tcp_state(fd, s)) else {
        return none;
    };
    let mut c = Connecting {
        tcp: true,
        dest: None,
        undo: None,
    };
    if state.is_decided() {
        return c;
    }
    let _errno = ErrnoGuard::save();
    let program = state.program_set();
    if !plan.has_filters() {
        // Undecided without filters: a socket no hook saw being made.
        let applied = apply(plan, fd, plan.skip(program), program);
        fd_table::decide(fd, applied);
        return c;
    }
    let dest = match address.read() {
        Dest::Ip(a) => Some(a),
        Dest::NotIp => return c,
        // Unreadable: which destination is unknown, so the filters cannot
        // let it have the options.
        Dest::Unknown => None,
    };
    c.dest = dest;
    let mut before = [0; Opt::ALL.len()];
    let applied = if plan.applies_to(dest) {
        for (slot, opt) in before.iter_mut().zip(Opt::ALL) {
            let (level, name) = opt.sockopt();
            *slot = sys::get_int_option(fd, level, name).unwrap_or(0);
        }
        apply(plan, fd, plan.skip(program), program)
    } else {
        OptSet::EMPTY
    };
    fd_table::decide(fd, applied);
    c.undo = Some((applied, before));
    c
}

/// After the call that connects; `ok` is its success. The socket's line is
/// written once its connection is established (`getpeername()` answers),
/// never for an attempt that failed: a non-blocking connect or a TCP Fast
/// Open send still on its way gets its line when the program learns the
/// outcome (`getsockopt(SO_ERROR)`, see [`program_got_option`], or a later
/// `connect()` that reports EISCONN), or at `close()` if it was connected
/// by then. A filtered decision made by an attempt that failed at once is
/// undone, so that the socket's next attempt is decided on its own
/// destination.
pub fn after_connect(fd: c_int, c: Connecting, ok: bool, address: ProgramAddress) {
    if !c.tcp {
        return;
    }
    let Some(plan) = plan::get() else { return };
    let errno = sys::errno();
    let on_its_way = ok
        || matches!(
            errno,
            libc::EISCONN | libc::EINPROGRESS | libc::EALREADY | libc::EINTR
        );
    if !on_its_way {
        let _errno = ErrnoGuard::save();
        if let Some((applied, before)) = c.undo {
            for (opt, value) in Opt::ALL.into_iter().zip(before) {
                if applied.contains(opt) {
                    let (level, name) = opt.sockopt();
                    let _ = sys::set_int_option(fd, level, name, value);
                }
            }
            fd_table::undecide(fd);
        }
        connect_failed(fd, errno);
        return;
    }
    if log::enabled(Level::Info) && (ok || errno == libc::EISCONN) {
        let _errno = ErrnoGuard::save();
        let dest = c.dest.or_else(|| address.read().ip());
        log_connected(plan, fd, dest);
    }
}

/// The socket's line, if still due, once it is connected: `getpeername()`
/// answers only for an established connection (not during a TCP Fast Open
/// handshake, nor after `AF_UNSPEC`).
fn log_connected(plan: &Plan, fd: c_int, dest: Option<SockAddr>) {
    let Some(peer) = peer_address(fd) else {
        return;
    };
    if fd_table::take_log_pending(fd) {
        if let Some(state) = fd_table::get(fd) {
            log_state(plan, fd, Role::Peer(dest.or(Some(peer))), state);
        }
    }
}

fn connect_failed(fd: c_int, errno: c_int) {
    log::line(Level::Debug, |b| {
        put_fd(b, fd);
        b.put(b" connect failed: errno ");
        put_int(b, errno);
        b.put(b"; no line for this attempt");
    });
}

/// After a successful `getsockopt()` by the program: `SO_ERROR` is how a
/// program learns whether its non-blocking connect worked. The value is
/// copied from the program's buffer without trusting the pointer (reading
/// `SO_ERROR` ourselves would clear it).
pub fn program_got_option(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_int,
    len: *const libc::socklen_t,
) {
    if level != libc::SOL_SOCKET || name != libc::SO_ERROR || !log::enabled(Level::Info) {
        return;
    }
    let Some(plan) = plan::get() else { return };
    let _errno = ErrnoGuard::save();
    let Some(state) = fd_table::current(fd) else {
        return;
    };
    if !(state.tcp() && state.log_pending()) {
        return;
    }
    // A shorter buffer holds only part of the value: no conclusion.
    let whole = sys::program_len(len).is_some_and(|n| n as usize >= core::mem::size_of::<c_int>());
    match sys::program_int(value).filter(|_| whole) {
        Some(0) => log_connected(plan, fd, None),
        Some(errno) => connect_failed(fd, errno),
        None => {}
    }
}

/// Before the real `listen()`. Without filters the listening socket has had
/// the options since `socket()`, and the connections it accepts inherit
/// them. With filters, each accepted connection is decided on its own (see
/// [`accepted`]), so the listening socket itself is left alone.
pub fn before_listen(fd: c_int) {
    let Some(plan) = plan::get() else { return };
    let Some(state) = fd_table::current(fd).and_then(|s| tcp_state(fd, s)) else {
        return;
    };
    if plan.has_filters() {
        return log_per_connection(fd);
    }
    let _errno = ErrnoGuard::save();
    if !state.is_decided() {
        let program = state.program_set();
        let applied = apply(plan, fd, plan.skip(program), program);
        fd_table::decide(fd, applied);
    }
    if log::enabled(Level::Info) && fd_table::take_log_pending(fd) {
        if let Some(state) = fd_table::get(fd) {
            log_state(plan, fd, Role::Listen(local_address(fd)), state);
        }
    }
}

fn log_per_connection(fd: c_int) {
    if log::enabled(Level::Debug) {
        let _errno = ErrnoGuard::save();
        let local = local_address(fd);
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
    let Some(before) = fd_table::current(listener) else {
        return;
    };
    let _errno = ErrnoGuard::save();
    let Some(state) = tcp_state(listener, before) else {
        return;
    };
    if !plan.has_filters() && state.is_decided() && !state.is_late() && !plan.tracks_connections() {
        // The connection inherited the listener's options, and nothing
        // (force mode, auto, a log line) will need its state: no syscall.
        return fd_table::forget(conn);
    }
    let Some(fresh) = fd_table::current(conn) else {
        return;
    };
    if plan.has_filters() {
        let applies = plan.applies_to(local_address(conn));
        return configure_connection(plan, conn, fresh, state.program_set(), applies);
    }
    if !state.is_decided() {
        // A listening socket handed over already listening (socket
        // activation, exec-based restarts): configure it for the
        // connections still to come; this one and any already queued were
        // created without the options, so they get them directly.
        let program = state.program_set();
        let applied = apply(plan, listener, plan.skip(program), program);
        fd_table::decide(listener, applied);
        fd_table::mark_late(listener);
        if log::enabled(Level::Info) && fd_table::take_log_pending(listener) {
            if let Some(state) = fd_table::get(listener) {
                log_state(plan, listener, Role::Listen(local_address(listener)), state);
            }
        }
        return configure_connection(plan, conn, fresh, program, true);
    }
    // Inherited: what the listener had from the shim, the connection has too;
    // options the program set on the listener are the program's on it too.
    let (applied, program) = (state.applied(), state.program_set());
    if state.is_late() && sys::get_int_option(conn, libc::SOL_SOCKET, libc::SO_KEEPALIVE) == Some(0)
    {
        // Completed its handshake before the listener was configured.
        return configure_connection(plan, conn, fresh, program, true);
    }
    record_connection(
        plan,
        conn,
        fresh.as_decided(applied, program),
        Role::Accepted,
    );
}

/// Applies the options (if `applies`) to a connection itself.
fn configure_connection(plan: &Plan, conn: c_int, fresh: FdState, program: OptSet, applies: bool) {
    let applied = if applies {
        apply(plan, conn, plan.skip(program), program)
    } else {
        OptSet::EMPTY
    };
    record_connection(
        plan,
        conn,
        fresh.as_decided(applied, program),
        Role::Accepted,
    );
}

/// Stores a connection's state and writes its one line.
fn record_connection(plan: &Plan, conn: c_int, state: FdState, role: fn(Option<SockAddr>) -> Role) {
    fd_table::store(conn, state);
    if log::enabled(Level::Info) && fd_table::take_log_pending(conn) {
        log_state(plan, conn, role(peer_address(conn)), state);
    }
}

/// At load: connected TCP sockets the parent handed over in `fds` (inetd's
/// and systemd `Accept=yes`'s fds 0-2, the `LISTEN_FDS` range) are
/// configured now, since no hook will ever see them connect. Filters decide
/// them on their local address, as accepted connections. In respect mode an
/// option whose value differs from a fresh socket's counts as the
/// program's own. Listening sockets there are configured too.
pub fn inherited(fds: core::ops::Range<c_int>) {
    let Some(plan) = plan::get() else { return };
    let mut defaults: Option<[c_int; Opt::ALL.len()]> = None;
    for fd in fds {
        // One fstat() per descriptor: most are terminals, pipes or files.
        let Some(state) = fd_table::current(fd).and_then(|s| tcp_state(fd, s)) else {
            continue;
        };
        if state.is_decided() {
            // inetd hands one connection over as fds 0, 1 and 2: the first
            // number was configured and logged, the others share its state
            // (see `tcp_state`).
            continue;
        }
        if sys::is_listening(fd) {
            if plan.has_filters() {
                continue;
            }
            let program = state.program_set();
            let applied = apply(plan, fd, plan.skip(program), program);
            fd_table::store(fd, state.as_decided(applied, program));
            fd_table::mark_late(fd);
            if log::enabled(Level::Info) && fd_table::take_log_pending(fd) {
                if let Some(state) = fd_table::get(fd) {
                    log_state(plan, fd, Role::Listen(local_address(fd)), state);
                }
            }
            continue;
        }
        let Some(peer) = peer_address(fd) else {
            continue; // not connected
        };
        let defaults = defaults.get_or_insert_with(|| {
            let mut d = [0; Opt::ALL.len()];
            if !sys::kernel_defaults(&mut d, Opt::ALL.into_iter().map(Opt::sockopt)) {
                // Unknown defaults: only SO_KEEPALIVE and TCP_USER_TIMEOUT
                // (both 0 on a fresh socket) can be judged.
                d = [0, -1, -1, -1, 0];
            }
            d
        });
        let mut program = state.program_set();
        for (opt, &default) in Opt::ALL.iter().zip(defaults.iter()) {
            let (level, name) = opt.sockopt();
            if default >= 0 && sys::get_int_option(fd, level, name).is_some_and(|v| v != default) {
                program = program.with(*opt);
            }
        }
        let applies = plan.applies_to(local_address(fd));
        let applied = if applies {
            apply(plan, fd, plan.skip(program), program)
        } else {
            OptSet::EMPTY
        };
        let state = state.as_decided(applied, program);
        fd_table::store(fd, state);
        if log::enabled(Level::Info) && fd_table::take_log_pending(fd) {
            log_state(plan, fd, Role::Inherited(Some(peer)), state);
        }
    }
}

/// Before `close()`. A socket whose line is still due gets it now: as a
/// connection if it is connected (a non-blocking connect whose outcome the
/// shim did not see), else at debug level as one that never connected.
///
/// The slot itself is kept: the socket may live on under another number
/// (`dup()` then `close()` of the original, or a `vfork()` child's close in
/// the parent's memory), and that number finds its state by inode (see
/// `tcp_state`); a number reused by another socket is recognised as such.
pub fn closing(fd: c_int) {
    let Some(plan) = plan::get() else { return };
    deepbind::check_pending();
    if log::enabled(Level::Info) {
        if let Some(state) = fd_table::get(fd).filter(|s| s.tcp() && s.log_pending()) {
            let _errno = ErrnoGuard::save();
            if fd_table::current(fd) == Some(state) {
                if peer_address(fd).is_some() {
                    log_connected(plan, fd, None);
                } else if fd_table::take_log_pending(fd) {
                    log_state(plan, fd, Role::Unconnected, state);
                }
            }
        }
    }
}

/// After a successful `setsockopt()` by the program. The value it set is
/// read back from the kernel, never through the program's pointer.
pub fn program_set_option(fd: c_int, level: c_int, name: c_int, derived: bool) {
    let Some(plan) = plan::get() else { return };
    let Some(opt) = Opt::from_sockopt(level, name) else {
        return;
    };
    // A socket no hook has seen yet (another number for a known one, or
    // one made by a raw syscall) is classified first, so that the option is
    // recorded on the state the other hooks will read.
    let Some(state) = fd_table::current(fd).and_then(|s| tcp_state(fd, s)) else {
        return;
    };
    let Some(before) = fd_table::mark_program_set(fd, opt) else {
        return;
    };
    let _errno = ErrnoGuard::save();
    let (level, name) = opt.sockopt();
    let theirs = sys::get_int_option(fd, level, name);
    let first = !before.program_set().contains(opt);
    if plan.mode == Mode::Force {
        fd_table::record_program_value(fd, opt, theirs);
    }
    // Before the decision, the call that connects takes the program's
    // options into account.
    if !(state.tcp() && state.is_decided()) {
        if derived {
            // A connection whose state this process does not have (handed
            // over across exec, say) but whose user timeout was derived
            // from its timers: it follows them, as an `auto` one would.
            refresh_auto_user_timeout(plan, fd);
        }
        return;
    }
    match plan.mode {
        Mode::Force => {
            let Some(ours) = plan.value(opt) else {
                // Not ours to keep: an `auto` user timeout gives way to the
                // program's own.
                return;
            };
            if !state.applied().contains(opt) || theirs == Some(ours) {
                return;
            }
            if sys::set_int_option(fd, level, name, ours).is_ok() && first {
                log::line(Level::Info, |b| {
                    put_fd(b, fd);
                    b.put(b" force: kept ");
                    put_option(b, opt, ours);
                    b.put(b" (the program set ");
                    put_value(b, theirs);
                    b.put(b")");
                });
            }
        }
        Mode::Respect => {
            let ours = state.applied().without(state.program_set());
            if first && ours.contains(opt) && !before.log_pending() && theirs != plan.value(opt) {
                // The socket's line already claimed this option as ours,
                // with another value.
                log::line(Level::Info, |b| {
                    put_fd(b, fd);
                    b.put(b" the program set ");
                    b.put(opt.name().as_bytes());
                    b.put(b"=");
                    put_value(b, theirs);
                    b.put(b" itself; its value stands");
                });
            }
            if matches!(opt, Opt::Idle | Opt::Interval | Opt::Count)
                && plan.auto_user_timeout
                && ours.contains(Opt::UserTimeout)
            {
                refresh_auto_user_timeout(plan, fd);
            }
        }
    }
}

/// Before the program's `setsockopt()` of idle, interval or count, with
/// `auto`, on a socket the shim has no settled state for: whether its
/// `TCP_USER_TIMEOUT` is (idle + interval x count) of its values *before*
/// the change, i.e. derived from them (by this library in another process,
/// or by the program itself), and so must follow the change. A few
/// `getsockopt()`s, only in that case.
pub fn user_timeout_is_derived(fd: c_int, level: c_int, name: c_int) -> bool {
    let Some(plan) = plan::get() else {
        return false;
    };
    if !plan.auto_user_timeout
        || !matches!(
            Opt::from_sockopt(level, name),
            Some(Opt::Idle | Opt::Interval | Opt::Count)
        )
    {
        return false;
    }
    if fd_table::current(fd).is_some_and(|s| s.tcp() && s.is_decided()) {
        return false; // the state says whose it is
    }
    let _errno = ErrnoGuard::save();
    let (level, name) = Opt::UserTimeout.sockopt();
    match sys::get_int_option(fd, level, name) {
        Some(0) | None => false,
        current => current == auto_user_timeout(plan, fd, OptSet::EMPTY),
    }
}

/// Sets `TCP_USER_TIMEOUT` again from the socket's effective values, after
/// the program changed one of them.
fn refresh_auto_user_timeout(plan: &Plan, fd: c_int) {
    let Some(ms) = auto_user_timeout(plan, fd, OptSet::EMPTY) else {
        return;
    };
    let (level, name) = Opt::UserTimeout.sockopt();
    if sys::get_int_option(fd, level, name) != Some(ms)
        && sys::set_int_option(fd, level, name, ms).is_ok()
    {
        log::line(Level::Debug, |b| {
            put_fd(b, fd);
            b.put(b" auto: ");
            put_option(b, Opt::UserTimeout, ms);
            b.put(b" from the socket's idle, interval and count");
        });
    }
}

/// `auto`: (idle + interval x count) s in ms, from what the socket has now:
/// the shim's value where it just set one (`applied`), else the socket's.
fn auto_user_timeout(plan: &Plan, fd: c_int, applied: OptSet) -> Option<c_int> {
    let get = |opt: Opt| {
        let value = match plan.value(opt) {
            Some(v) if applied.contains(opt) => Some(v),
            _ => {
                let (level, name) = opt.sockopt();
                sys::get_int_option(fd, level, name)
            }
        };
        value.and_then(|v| u32::try_from(v).ok())
    };
    let ms = UserTimeout::auto_ms(get(Opt::Idle)?, get(Opt::Interval)?, get(Opt::Count)?);
    c_int::try_from(ms).ok()
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

/// Sets every planned option not in `skip`; returns those that took. An
/// `auto` user timeout comes last, from the socket's effective values, and
/// never where the program set its own (`program`). The caller restores
/// errno.
fn apply(plan: &Plan, fd: c_int, skip: OptSet, program: OptSet) -> OptSet {
    let mut applied = OptSet::EMPTY;
    for opt in Opt::ALL {
        let Some(value) = plan.value(opt) else {
            continue;
        };
        if !skip.contains(opt) && set(fd, opt, value) {
            applied = applied.with(opt);
        }
    }
    if plan.auto_user_timeout && !program.contains(Opt::UserTimeout) {
        if let Some(ms) = auto_user_timeout(plan, fd, applied) {
            if set(fd, Opt::UserTimeout, ms) {
                applied = applied.with(Opt::UserTimeout);
            }
        }
    }
    applied
}

fn set(fd: c_int, opt: Opt, value: c_int) -> bool {
    let (level, name) = opt.sockopt();
    match sys::set_int_option(fd, level, name, value) {
        Ok(()) => true,
        Err(errno) => {
            log::line(Level::Debug, |b| {
                put_fd(b, fd);
                b.put(b" could not set ");
                put_option(b, opt, value);
                b.put(b": errno ");
                put_int(b, errno);
            });
            false
        }
    }
}

fn local_address(fd: c_int) -> Option<SockAddr> {
    sys::socket_address(fd, sys::End::Local)
}

fn peer_address(fd: c_int) -> Option<SockAddr> {
    sys::socket_address(fd, sys::End::Peer)
}

fn log_state(plan: &Plan, fd: c_int, role: Role, state: FdState) {
    log_socket(plan, fd, role, state.applied(), state.program_set());
}

/// The one line per socket: at info if the shim changed something, else at
/// debug (every option failed, was the program's, or a filter left the
/// socket alone). Sockets that never carried a connection are debug only.
/// Values are the kernel's, read back now.
fn log_socket(plan: &Plan, fd: c_int, role: Role, applied: OptSet, program: OptSet) {
    let ours = match plan.mode {
        Mode::Respect => applied.without(program),
        Mode::Force => applied,
    };
    let level = if ours.is_empty() || matches!(role, Role::Unconnected) {
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
            Role::Inherited(a) => (b" inherited peer=", a),
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
        for opt in Opt::ALL.into_iter().filter(|&o| ours.contains(o)) {
            let (level, name) = opt.sockopt();
            b.put(b" ");
            b.put(opt.name().as_bytes());
            b.put(b"=");
            put_value(b, sys::get_int_option(fd, level, name));
        }
        if log::enabled(Level::Debug) && !program.is_empty() {
            b.put(b" program-set:");
            for opt in Opt::ALL.into_iter().filter(|&o| program.contains(o)) {
                let value = match plan.mode {
                    // The kernel holds the program's value...
                    Mode::Respect => {
                        let (level, name) = opt.sockopt();
                        sys::get_int_option(fd, level, name)
                    }
                    // ...or, where force mode put ours back, it was kept.
                    Mode::Force => fd_table::program_value(fd, opt).or_else(|| {
                        let (level, name) = opt.sockopt();
                        sys::get_int_option(fd, level, name).filter(|_| !applied.contains(opt))
                    }),
                };
                b.put(b" ");
                b.put(opt.name().as_bytes());
                b.put(b"=");
                put_value(b, value);
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

fn put_value(b: &mut Line, value: Option<c_int>) {
    match value {
        Some(v) => put_int(b, v),
        None => b.put(b"?"),
    }
}
