//! The symbols the library exports in place of libc's. Each hook makes the
//! real call and hands the socket to [`crate::shim`]; it returns exactly what
//! the real call returned. `shim` restores errno around its own work, and
//! never dereferences a pointer the program passed: an invalid one gets the
//! real call's answer (EFAULT), never a fault inside the library.

use core::ffi::{c_char, c_int, c_uint, c_void};

use libc::{mmsghdr, msghdr, sockaddr, socklen_t, ssize_t};

use crate::shim;
use crate::sys::{real_functions, ProgramAddress};

// Every hooked function: its C signature and the syscall that stands in for
// it until (or where) the real one is found. Adding a hook is a line here
// and its exported function below.
real_functions! {
    socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int = libc::SYS_socket;
    connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int = libc::SYS_connect;
    setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: socklen_t) -> c_int
        = libc::SYS_setsockopt;
    getsockopt(fd: c_int, level: c_int, name: c_int, value: *mut c_void, len: *mut socklen_t) -> c_int
        = libc::SYS_getsockopt;
    listen(fd: c_int, backlog: c_int) -> c_int = libc::SYS_listen;
    accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int = libc::SYS_accept;
    accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int
        = libc::SYS_accept4;
    close(fd: c_int) -> c_int = libc::SYS_close;
    sendto(fd: c_int, buf: *const c_void, n: usize, flags: c_int, addr: *const sockaddr, len: socklen_t)
        -> ssize_t = libc::SYS_sendto;
    sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t = libc::SYS_sendmsg;
    sendmmsg(fd: c_int, msgs: *mut mmsghdr, count: c_uint, flags: c_int) -> c_int = libc::SYS_sendmmsg;
}

/// `socket(2)`.
///
/// # Safety
/// The contract of libc's `socket`.
#[no_mangle]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let fd = unsafe { real::socket(domain, ty, protocol) };
    shim::socket_created(fd, domain, ty, protocol);
    fd
}

/// `connect(2)`: options are applied before the real call sends the SYN.
///
/// # Safety
/// The contract of libc's `connect`: `addr` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let to = ProgramAddress::Sockaddr(addr, len);
    // SAFETY: the caller's arguments, passed on unchanged.
    connecting(
        fd,
        to,
        || unsafe { real::connect(fd, addr, len) },
        |rc| rc == 0,
    )
}

/// The call that connects, between [`shim::before_connect`] (options in
/// place before the SYN) and [`shim::after_connect`]; its result unchanged.
fn connecting<R: Copy>(
    fd: c_int,
    to: ProgramAddress,
    call: impl FnOnce() -> R,
    ok: impl FnOnce(R) -> bool,
) -> R {
    let c = shim::before_connect(fd, to);
    let rc = call();
    shim::after_connect(fd, c, ok(rc), to);
    rc
}

/// `sendto(2)`: with `MSG_FASTOPEN` it is the call that connects (TCP Fast
/// Open), and is treated as `connect`; any other send passes straight
/// through after one bit test.
///
/// # Safety
/// The contract of libc's `sendto`.
#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: usize,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    if flags & libc::MSG_FASTOPEN == 0 {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real::sendto(fd, buf, n, flags, addr, len) };
    }
    let to = ProgramAddress::Sockaddr(addr, len);
    // SAFETY: the caller's arguments, passed on unchanged.
    connecting(
        fd,
        to,
        || unsafe { real::sendto(fd, buf, n, flags, addr, len) },
        |rc| rc >= 0,
    )
}

/// `sendmsg(2)`: as `sendto`, the destination being the message's name.
///
/// # Safety
/// The contract of libc's `sendmsg`.
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    if flags & libc::MSG_FASTOPEN == 0 {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real::sendmsg(fd, msg, flags) };
    }
    let to = ProgramAddress::Msghdr(msg);
    // SAFETY: the caller's arguments, passed on unchanged.
    connecting(
        fd,
        to,
        || unsafe { real::sendmsg(fd, msg, flags) },
        |rc| rc >= 0,
    )
}

/// `sendmmsg(2)`: as `sendmsg`, the destination being the first message's.
///
/// # Safety
/// The contract of libc's `sendmmsg`.
#[no_mangle]
pub unsafe extern "C" fn sendmmsg(
    fd: c_int,
    msgs: *mut mmsghdr,
    count: c_uint,
    flags: c_int,
) -> c_int {
    // No message, no data, no connection.
    if flags & libc::MSG_FASTOPEN == 0 || count == 0 {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real::sendmmsg(fd, msgs, count, flags) };
    }
    // The first mmsghdr starts with its msghdr.
    let to = ProgramAddress::Msghdr(msgs.cast_const().cast());
    // SAFETY: the caller's arguments, passed on unchanged.
    connecting(
        fd,
        to,
        || unsafe { real::sendmmsg(fd, msgs, count, flags) },
        |rc| rc >= 0,
    )
}

/// `listen(2)`: a server socket gets the options before it accepts
/// connections, which inherit them.
///
/// # Safety
/// The contract of libc's `listen`.
#[no_mangle]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    shim::before_listen(fd);
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { real::listen(fd, backlog) }
}

/// `accept(2)`: records that the new connection inherited the options.
///
/// # Safety
/// The contract of libc's `accept`.
#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let conn = unsafe { real::accept(fd, addr, len) };
    shim::accepted(fd, conn);
    conn
}

/// `accept4(2)`: as `accept`.
///
/// # Safety
/// The contract of libc's `accept4`.
#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let conn = unsafe { real::accept4(fd, addr, len, flags) };
    shim::accepted(fd, conn);
    conn
}

/// `setsockopt(2)`: records which of the shim's options the program sets
/// (and, in force mode, puts the shim's value back).
///
/// # Safety
/// The contract of libc's `setsockopt`.
#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
) -> c_int {
    let derived = shim::user_timeout_is_derived(fd, level, name);
    // SAFETY: the caller's arguments, passed on unchanged.
    let rc = unsafe { real::setsockopt(fd, level, name, value, len) };
    if rc == 0 {
        shim::program_set_option(fd, level, name, derived);
    }
    rc
}

/// `getsockopt(2)`: `SO_ERROR` tells whether a non-blocking connect
/// succeeded, which is when its log line is due.
///
/// # Safety
/// The contract of libc's `getsockopt`.
#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let rc = unsafe { real::getsockopt(fd, level, name, value, len) };
    if rc == 0 {
        shim::program_got_option(fd, level, name, value.cast_const().cast(), len.cast_const());
    }
    rc
}

/// `close(2)`: forgets what the shim knew about the descriptor, so that a
/// socket the `socket()` hook never sees (created by a raw syscall, or by
/// code that bypasses libc) cannot inherit a closed socket's state.
///
/// # Safety
/// The contract of libc's `close`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    // Before the real close: once it returns, another thread may get `fd`
    // for a new socket, whose state must not be erased.
    shim::closing(fd);
    // SAFETY: the caller's argument, passed on unchanged.
    unsafe { real::close(fd) }
}

/// `dlopen(3)`: a trampoline, not a wrapper. glibc resolves `$ORIGIN` and
/// the caller's `RUNPATH` from `dlopen`'s return address, so the real
/// `dlopen` must see the program's: for a `RTLD_DEEPBIND` load the
/// trampoline notes where the loader's object list ended (see
/// [`crate::deepbind`]), then jumps, arguments and return address intact.
///
/// # Safety
/// The contract of libc's `dlopen`.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dlopen(_file: *const c_char, _flags: c_int) -> *mut c_void {
    core::arch::naked_asm!(
        "test esi, {deep}",
        "jz 2f",
        // rdi/rsi saved; 2 pushes + 8 keep the stack 16-byte aligned.
        "push rdi",
        "push rsi",
        "sub rsp, 8",
        "call {note}",
        "add rsp, 8",
        "pop rsi",
        "pop rdi",
        "2:",
        "mov rax, qword ptr [rip + {real}]",
        "test rax, rax",
        "jz 3f",
        "jmp rax",
        "3:",
        "push rdi",
        "push rsi",
        "sub rsp, 8",
        "call {resolve}",
        "add rsp, 8",
        "pop rsi",
        "pop rdi",
        "test rax, rax",
        "jz 4f",
        "jmp rax",
        "4:",
        "ret",
        deep = const libc::RTLD_DEEPBIND,
        note = sym crate::deepbind::note_deepbind_load,
        real = sym crate::deepbind::REAL_DLOPEN,
        resolve = sym crate::deepbind::resolve_dlopen,
    )
}

/// `dlopen(3)`, as above, for aarch64 (the return address is in x30).
///
/// # Safety
/// The contract of libc's `dlopen`.
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dlopen(_file: *const c_char, _flags: c_int) -> *mut c_void {
    core::arch::naked_asm!(
        "tst w1, #{deep}",
        "b.eq 2f",
        "stp x29, x30, [sp, #-32]!",
        "stp x0, x1, [sp, #16]",
        "bl {note}",
        "ldp x0, x1, [sp, #16]",
        "ldp x29, x30, [sp], #32",
        "2:",
        "adrp x16, {real}",
        "ldr x16, [x16, :lo12:{real}]",
        "cbz x16, 3f",
        "br x16",
        "3:",
        "stp x29, x30, [sp, #-32]!",
        "stp x0, x1, [sp, #16]",
        "bl {resolve}",
        "mov x16, x0",
        "ldp x0, x1, [sp, #16]",
        "ldp x29, x30, [sp], #32",
        "cbz x16, 4f",
        "br x16",
        "4:",
        "mov x0, #0",
        "ret",
        deep = const libc::RTLD_DEEPBIND,
        note = sym crate::deepbind::note_deepbind_load,
        real = sym crate::deepbind::REAL_DLOPEN,
        resolve = sym crate::deepbind::resolve_dlopen,
    )
}
