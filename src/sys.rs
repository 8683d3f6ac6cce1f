//! Every FFI call of the library lives here, with its `// SAFETY:` reason.
//!
//! The real libc functions that the hooks wrap are resolved once at load
//! with `dlsym(RTLD_NEXT, ...)` into one table of atomics ([`real_functions`],
//! invoked in `crate::hooks`). If a hook runs before that (another library's
//! constructor calling `socket()`), or the lookup failed, the call goes
//! straight to the kernel with `syscall()`, which is what those libc
//! functions do anyway.
//!
//! The library's own socket calls (options, addresses, its log writes) are
//! raw syscalls, never the exported symbols, which would land in its own
//! hooks.

use core::ffi::{c_char, c_int, c_long, c_void, CStr};

use keepalive_shim_config::{Ip, SockAddr};
use libc::{sockaddr, socklen_t};

// `dlsym` as a *weak, unversioned* reference, read through a hidden data
// word so that an unresolved symbol is a null value rather than a call to
// address 0. glibc >= 2.34 and musl have it in libc; older glibc in
// libdl.so.2, which many programs do not load: there the word is null and
// the hooks make the raw syscalls instead of calling the next library's
// function (loading libdl.so.2 in every process would cost more start-up
// time than everything else the library does).
//
// Unversioned, because glibc before 2.30 refuses to load a library whose
// weak reference names a version the named file does not define (as
// `dlsym@GLIBC_2.2.5` in libc.so.6 before 2.34). The reference stays
// unversioned only if the link sees no versioned `dlsym` in libc.so.6: the
// release build links against glibc 2.17's stubs (`scripts/build.sh`), and
// `tests/library_binary.rs` checks the result.
core::arch::global_asm!(
    ".weak dlsym",
    ".pushsection .data.rel.ro.keepalive_shim_dlsym, \"aw\"",
    ".p2align 3",
    ".globl keepalive_shim_dlsym",
    ".hidden keepalive_shim_dlsym",
    "keepalive_shim_dlsym:",
    ".quad dlsym",
    ".popsection",
);

// The `libc` crate links libc.so.6 only while its `std` feature is off, and
// Cargo turns that feature on for the whole build when another workspace
// member's dependency asks for it (the command-line tool's netlink crates
// do): then nothing would link libc.so.6 and `dlsym@GLIBC_2.2.5` would be
// undefined. The library states its one dependency itself.
#[link(name = "c")]
extern "C" {}

extern "C" {
    /// The address of `dlsym`, or 0 where the running glibc has none loaded.
    static keepalive_shim_dlsym: usize;
}

type DlsymFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;

/// `dlsym(RTLD_NEXT, name)`, or null where `dlsym` is not available.
pub fn next_symbol(name: &CStr) -> *mut c_void {
    // SAFETY: a word of read-only data, filled in by the dynamic linker.
    let address = unsafe { core::ptr::read_volatile(&raw const keepalive_shim_dlsym) };
    if address == 0 {
        return core::ptr::null_mut();
    }
    // SAFETY: a non-zero value is the address of glibc's `dlsym`, of this type.
    let dlsym: DlsymFn = unsafe { core::mem::transmute::<usize, DlsymFn>(address) };
    // SAFETY: `name` is NUL-terminated; RTLD_NEXT is a valid pseudo-handle.
    unsafe { dlsym(libc::RTLD_NEXT, name.as_ptr()) }
}

/// Declares the table of real functions the hooks wrap (invoked once, in
/// `crate::hooks`, next to the hooks): a typed caller per function, with
/// the raw syscall as fallback, and `resolve_real_functions()`, which finds
/// them all with `dlsym(RTLD_NEXT)`. `RTLD_NEXT` never finds the calling
/// library's own symbols, so a hook never calls itself.
macro_rules! real_functions {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty = $sysno:expr; )*) => {
        struct RealFunctions { $( $name: core::sync::atomic::AtomicPtr<core::ffi::c_void>, )* }

        static REAL: RealFunctions = RealFunctions {
            $( $name: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()), )*
        };

        /// Resolves every real function. Called once, from the constructor.
        pub fn resolve_real_functions() {
            $(
                // A null result is handled by the syscall fallback.
                let found = $crate::sys::next_symbol(
                    // SAFETY: the literal ends with its only NUL.
                    unsafe { core::ffi::CStr::from_bytes_with_nul_unchecked(concat!(stringify!($name), "\0").as_bytes()) },
                );
                REAL.$name.store(found, core::sync::atomic::Ordering::Release);
            )*
        }

        /// The real libc functions (or their raw syscalls).
        pub mod real {
            use super::*;
            $(
                /// # Safety
                /// The same contract as the libc function of this name.
                pub unsafe fn $name($($arg: $ty),*) -> $ret {
                    let f = REAL.$name.load(core::sync::atomic::Ordering::Acquire);
                    if f.is_null() {
                        // SAFETY: the caller upholds the syscall's contract;
                        // `syscall` sets errno and returns -1 on failure.
                        return unsafe { libc::syscall($sysno, $($arg as core::ffi::c_long),*) } as $ret;
                    }
                    // SAFETY: `f` is what the dynamic linker bound to this
                    // libc name, whose C signature is the one given here.
                    let f: unsafe extern "C" fn($($ty),*) -> $ret = unsafe { core::mem::transmute(f) };
                    // SAFETY: the caller upholds the function's contract.
                    unsafe { f($($arg),*) }
                }
            )*
        }
    };
}
pub(crate) use real_functions;

/// Which end of a connection [`socket_address`] asks for.
#[derive(Clone, Copy)]
pub enum End {
    /// `getsockname()`.
    Local,
    /// `getpeername()`.
    Peer,
}

/// The local or remote address of a socket.
pub fn socket_address(fd: c_int, end: End) -> Option<SockAddr> {
    let mut storage = core::mem::MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = core::mem::size_of::<libc::sockaddr_storage>() as socklen_t;
    let addr = storage.as_mut_ptr().cast::<sockaddr>();
    let call = match end {
        End::Local => libc::SYS_getsockname,
        End::Peer => libc::SYS_getpeername,
    };
    // SAFETY: `addr` points to a sockaddr_storage of `len` bytes.
    let rc = unsafe { libc::syscall(call, fd as c_long, addr, &raw mut len) };
    if rc != 0 {
        return None;
    }
    // SAFETY: zeroed, then (partly) written by the kernel: every byte is initialised.
    parse_sockaddr(unsafe { &storage.assume_init() }, len)
}

/// Reads a whole small regular file into `buf`. `path_buf` is scratch
/// space for the NUL-terminated path. `Err(errno)` if it cannot be read,
/// `Err(EFBIG)` if it does not fit, `Err(EINVAL)` if it is not a regular
/// file: a FIFO or a terminal would block the program's start, and
/// `/dev/stdin` would swallow its input.
pub fn read_file<'b>(
    path: &[u8],
    path_buf: &mut [u8],
    buf: &'b mut [u8],
) -> Result<&'b [u8], c_int> {
    let fd = with_c_path(path, path_buf, |path| {
        // SAFETY: `path` is NUL-terminated. O_NONBLOCK: opening a FIFO
        // does not wait for a writer. openat: aarch64 has no SYS_open.
        unsafe {
            libc::syscall(
                libc::SYS_openat,
                libc::AT_FDCWD as c_long,
                path.as_ptr(),
                OPEN_READ as c_long,
            )
        }
    })?;
    let fd = c_int::try_from(fd).map_err(|_| libc::EBADF)?;
    let result = match file_type(fd) {
        Some(libc::S_IFREG) => read_all(fd, buf),
        Some(_) => Err(libc::EINVAL),
        None => Err(errno()),
    };
    close_own(fd);
    let filled = result?;
    Ok(buf.get(..filled).unwrap_or(&[]))
}

/// Reads until end of file; `Err(EFBIG)` if the file is larger than `buf`.
fn read_all(fd: c_int, buf: &mut [u8]) -> Result<usize, c_int> {
    let mut filled = 0usize;
    loop {
        let mut probe = [0u8; 1];
        // A full buffer: one more byte tells a file of exactly its size
        // from a larger one.
        let rest = match buf.get_mut(filled..) {
            Some(rest) if !rest.is_empty() => rest,
            _ => &mut probe[..],
        };
        let room = rest.len();
        // SAFETY: `rest` is a writable slice of the stated length.
        let n = unsafe { libc::syscall(libc::SYS_read, fd as c_long, rest.as_mut_ptr(), room) };
        match usize::try_from(n) {
            Ok(0) => return Ok(filled),
            Ok(_) if filled >= buf.len() => return Err(libc::EFBIG),
            Ok(n) => filled = filled.saturating_add(n),
            Err(_) if errno() == libc::EINTR => continue,
            Err(_) => return Err(errno()),
        }
    }
}

/// `fstat(2)` by raw syscall: glibc only exports `fstat` since 2.33.
fn fstat(fd: c_int) -> Option<libc::stat> {
    let mut st = core::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `st` is a writable `struct stat` for the kernel to fill.
    let rc = unsafe { libc::syscall(libc::SYS_fstat, fd as c_long, st.as_mut_ptr()) };
    // SAFETY: zeroed, then filled by the kernel on success.
    (rc == 0).then(|| unsafe { st.assume_init() })
}

/// The `S_IFMT` bits of an open descriptor's mode.
fn file_type(fd: c_int) -> Option<u32> {
    fstat(fd).map(|st| st.st_mode & libc::S_IFMT)
}

const OPEN_READ: c_int = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
// O_NONBLOCK: a FIFO as log file fails to open (ENXIO) instead of
// blocking until a reader comes, and a full one drops the line.
const OPEN_APPEND: c_int = libc::O_WRONLY
    | libc::O_APPEND
    | libc::O_CREAT
    | libc::O_CLOEXEC
    | libc::O_NOCTTY
    | libc::O_NONBLOCK;

/// Calls `f` with `path` as a NUL-terminated string, copied into `buf`
/// (the default config path needs no copy). `Err(ENAMETOOLONG)` if it does
/// not fit; `Err(errno)` if `f` returns a negative value.
fn with_c_path(
    path: &[u8],
    buf: &mut [u8],
    f: impl FnOnce(&CStr) -> c_long,
) -> Result<c_long, c_int> {
    const DEFAULT: &CStr = c"/etc/keepalive-shim.conf";
    let c_path = if path == DEFAULT.to_bytes() {
        DEFAULT
    } else {
        nul_terminated(path, buf).ok_or(libc::ENAMETOOLONG)?
    };
    let rc = f(c_path);
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc)
    }
}

/// `path` copied into `buf` with a NUL after it; `None` if it does not fit
/// or contains a NUL.
pub fn nul_terminated<'b>(path: &[u8], buf: &'b mut [u8]) -> Option<&'b CStr> {
    let dst = buf.get_mut(..=path.len())?;
    let (text, nul) = dst.split_at_mut(path.len());
    text.copy_from_slice(path);
    nul.fill(0);
    CStr::from_bytes_with_nul(dst).ok()
}

/// The basename of `/proc/self/exe`, in `buf`.
pub fn executable_name(buf: &mut [u8]) -> Option<&[u8]> {
    // SAFETY: the path is NUL-terminated; `buf` is writable for its length.
    // readlinkat: aarch64 has no SYS_readlink.
    let n = unsafe {
        libc::syscall(
            libc::SYS_readlinkat,
            libc::AT_FDCWD as c_long,
            c"/proc/self/exe".as_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    let full = buf.get(..usize::try_from(n).ok()?)?;
    Some(basename(full))
}

extern "C" {
    /// The process's environment block. Both glibc and musl set it before
    /// any constructor runs; until the program calls `setenv`, it is the
    /// initial block on the stack.
    static environ: *const *const c_char;
    /// `argv[0]`, as glibc and musl keep it (a GNU extension both define).
    static program_invocation_name: *const c_char;
}

/// The basename of `argv[0]`, from `program_invocation_name`.
pub fn arg0_name() -> Option<&'static [u8]> {
    // SAFETY: a word of libc's data, written before constructors run.
    let arg0 = unsafe { core::ptr::read_volatile(&raw const program_invocation_name) };
    if arg0.is_null() {
        return None;
    }
    // SAFETY: argv strings are NUL-terminated and live for the process;
    // only read during the constructor.
    Some(basename(unsafe { CStr::from_ptr(arg0) }.to_bytes()))
}

fn basename(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// Sets an `int` socket option (raw syscall).
/// `Err(errno)` on failure; errno itself is left for the caller to restore.
pub fn set_int_option(fd: c_int, level: c_int, name: c_int, value: c_int) -> Result<(), c_int> {
    let len = core::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: `value` lives on the stack for the whole call and `len` is its size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_setsockopt,
            fd as c_long,
            level as c_long,
            name as c_long,
            &raw const value,
            len as c_long,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Reads an `int` socket option.
pub fn get_int_option(fd: c_int, level: c_int, name: c_int) -> Option<c_int> {
    let mut value: c_int = 0;
    let mut len = core::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: both out-pointers point at live stack variables of the stated size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_getsockopt,
            fd as c_long,
            level as c_long,
            name as c_long,
            &raw mut value,
            &raw mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// The calling thread's errno.
pub fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

/// Saves errno and puts it back when dropped, so that whatever the shim does
/// between the two, the program sees the errno of its own call.
pub struct ErrnoGuard(c_int);

impl ErrnoGuard {
    pub fn save() -> ErrnoGuard {
        ErrnoGuard(errno())
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        // SAFETY: as in `errno()`.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

/// True when the process runs in secure-execution mode (setuid, setgid,
/// file capabilities): its environment may come from an attacker.
pub fn secure_execution() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// An auxiliary vector entry (0 if absent).
pub fn auxv(kind: libc::c_ulong) -> usize {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(kind) as usize }
}

pub fn getpid() -> c_int {
    // SAFETY: no preconditions.
    unsafe { libc::syscall(libc::SYS_getpid) as c_int }
}

/// Opens a NUL-terminated path for appending, close-on-exec.
pub fn open_append(path: &CStr) -> Option<c_int> {
    // SAFETY: `path` is NUL-terminated; flags and mode are plain integers.
    // openat: aarch64 has no SYS_open.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD as c_long,
            path.as_ptr(),
            OPEN_APPEND as c_long,
            0o644 as c_long,
        )
    };
    c_int::try_from(fd).ok().filter(|fd| *fd >= 0)
}

/// Closes a descriptor this library opened itself (raw syscall: never
/// through our own `close` hook).
pub fn close_own(fd: c_int) {
    // SAFETY: only called on a descriptor this library opened itself.
    let _ = unsafe { libc::syscall(libc::SYS_close, fd as c_long) };
}

/// `(device, inode, S_IFMT bits)` of an open descriptor.
pub fn file_identity(fd: c_int) -> Option<(u64, u64, u32)> {
    let st = fstat(fd)?;
    Some((st.st_dev, st.st_ino, st.st_mode & libc::S_IFMT))
}

/// Terminates the process with SIGABRT. Only the panic handler calls it,
/// and the build proves the panic handler unreachable.
#[cfg(not(test))]
pub fn abort_on_impossible_panic() -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// The process's initial environment, as `NAME=value` byte pairs.
pub struct Environment {
    next: *const *const c_char,
}

impl Environment {
    /// The environment as the constructor finds it in `environ` (null is
    /// treated as empty).
    pub fn initial() -> Environment {
        // SAFETY: a word of libc's data, written before constructors run. The
        // array it points to is null-terminated, and its strings outlive
        // the constructor, the only place the iterator is used.
        let envp = unsafe { core::ptr::read_volatile(&raw const environ) };
        Environment { next: envp }
    }
}

impl Iterator for Environment {
    type Item = (&'static [u8], &'static [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.next.is_null() {
                return None;
            }
            // SAFETY: `next` points into the null-terminated array (see `initial`).
            let entry = unsafe { *self.next };
            if entry.is_null() {
                return None;
            }
            // SAFETY: not past the terminating null, so the next slot exists.
            self.next = unsafe { self.next.add(1) };
            // SAFETY: each entry is a NUL-terminated string. The initial
            // environment block is never freed; the shim only reads it during
            // the constructor and copies what it keeps.
            let bytes = unsafe { CStr::from_ptr(entry) }.to_bytes();
            // An entry without '=' is not a variable; skip it.
            if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
                let (name, value) = bytes.split_at(eq);
                return Some((name, value.get(1..).unwrap_or(&[])));
            }
        }
    }
}

/// The result of a raw `syscall()`: `Err(errno)` for -1, the value otherwise.
fn check(rc: c_long) -> Result<c_long, c_int> {
    if rc == -1 {
        Err(errno())
    } else {
        Ok(rc)
    }
}

/// The inode number of the socket `fd` names now (one `fstat()`), or
/// `None` if it is closed or not a socket. Socket inode numbers are 32-bit
/// (sockfs takes them from `get_next_ino()`), never 0, and unique among
/// live sockets.
pub fn socket_inode(fd: c_int) -> Option<u32> {
    let st = fstat(fd)?;
    (st.st_mode & libc::S_IFMT == libc::S_IFSOCK).then_some(st.st_ino as u32)
}

/// Copies `len` bytes at the program's address `src` into `dst`, without
/// ever faulting: `process_vm_readv(2)` on our own process reports an
/// unmapped or unreadable source as an error (EFAULT) instead of a SIGSEGV.
/// `false` if any byte could not be read, or if the call is not allowed
/// here (a seccomp filter); the caller then treats the value as unknown.
pub fn copy_from_program(dst: &mut [u8], src: *const c_void) -> bool {
    if src.is_null() {
        return false;
    }
    let local = libc::iovec {
        iov_base: dst.as_mut_ptr().cast(),
        iov_len: dst.len(),
    };
    let remote = libc::iovec {
        iov_base: src.cast_mut(),
        iov_len: dst.len(),
    };
    // The current pid, never a cached one: after fork() a cached pid would
    // name the parent.
    let pid = getpid();
    // SAFETY: `local` describes our own writable stack buffer; the kernel
    // checks `remote` and fails with EFAULT rather than touching it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_process_vm_readv,
            pid as c_long,
            &raw const local,
            1 as c_long,
            &raw const remote,
            1 as c_long,
            0 as c_long,
        )
    };
    usize::try_from(rc).is_ok_and(|n| n == dst.len())
}

/// A destination the program passed, as far as the library can tell.
#[derive(Clone, Copy)]
pub enum Dest {
    /// An IPv4 or IPv6 address and port.
    Ip(SockAddr),
    /// Not one: `AF_UNSPEC` (a disconnect), another family, or too short
    /// for its family (the kernel refuses those).
    NotIp,
    /// The memory could not be read (the call itself will fail with
    /// EFAULT), or the process may not read itself (a seccomp filter).
    Unknown,
}

impl Dest {
    pub fn ip(self) -> Option<SockAddr> {
        match self {
            Dest::Ip(a) => Some(a),
            Dest::NotIp | Dest::Unknown => None,
        }
    }
}

/// A socket address the program passed (to `connect()`, `sendto()`, ...),
/// read without trusting the pointer.
pub fn program_sockaddr(addr: *const sockaddr, len: socklen_t) -> Dest {
    let mut storage = [0u8; core::mem::size_of::<libc::sockaddr_storage>()];
    let n = (len as usize).min(storage.len());
    let Some(head) = storage.get_mut(..n) else {
        return Dest::Unknown;
    };
    if n < core::mem::size_of::<libc::sa_family_t>() {
        return Dest::NotIp;
    }
    if !copy_from_program(head, addr.cast()) {
        return Dest::Unknown;
    }
    // SAFETY: sockaddr_storage is plain data; every byte is initialised.
    let st: libc::sockaddr_storage = unsafe { core::ptr::read_unaligned(storage.as_ptr().cast()) };
    parse_sockaddr(&st, n as socklen_t).map_or(Dest::NotIp, Dest::Ip)
}

/// A `socklen_t` the program's pointer points at, read without trusting
/// the pointer.
pub fn program_len(len: *const socklen_t) -> Option<socklen_t> {
    let mut raw = [0u8; core::mem::size_of::<socklen_t>()];
    copy_from_program(&mut raw, len.cast()).then(|| socklen_t::from_ne_bytes(raw))
}

/// An `int` the program's pointer points at (an option value), read
/// without trusting the pointer.
pub fn program_int(value: *const c_int) -> Option<c_int> {
    let mut raw = [0u8; core::mem::size_of::<c_int>()];
    copy_from_program(&mut raw, value.cast()).then(|| c_int::from_ne_bytes(raw))
}

/// The destination in a `msghdr` the program passed to `sendmsg()`, read
/// without trusting any pointer.
pub fn program_msghdr_name(msg: *const libc::msghdr) -> Dest {
    let mut raw = [0u8; core::mem::size_of::<libc::msghdr>()];
    if !copy_from_program(&mut raw, msg.cast()) {
        return Dest::Unknown;
    }
    // SAFETY: msghdr is plain data (pointers and integers); all bytes set.
    let m: libc::msghdr = unsafe { core::ptr::read_unaligned(raw.as_ptr().cast()) };
    program_sockaddr(m.msg_name.cast_const().cast(), m.msg_namelen)
}

/// `offsetof(struct sockaddr_in6, sin6_scope_id)`.
const SOCKADDR_IN6_V1: usize = 24;

/// An IPv4/IPv6 socket address of `len` valid bytes.
fn parse_sockaddr(st: &libc::sockaddr_storage, len: socklen_t) -> Option<SockAddr> {
    let len = len as usize;
    let p = (st as *const libc::sockaddr_storage).cast::<u8>();
    match c_int::from(st.ss_family) {
        libc::AF_INET if len >= core::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: `st` holds at least a whole sockaddr_in.
            let sin = unsafe { core::ptr::read_unaligned(p.cast::<libc::sockaddr_in>()) };
            Some(SockAddr {
                ip: Ip::V4(sin.sin_addr.s_addr.to_ne_bytes()),
                port: u16::from_be(sin.sin_port),
            })
        }
        // RFC 2133's 24-byte sockaddr_in6 (no sin6_scope_id) is accepted by
        // the kernel too; the rest of `st` is zeros.
        libc::AF_INET6 if len >= SOCKADDR_IN6_V1 => {
            // SAFETY: `st` is a whole sockaddr_storage.
            let sin6 = unsafe { core::ptr::read_unaligned(p.cast::<libc::sockaddr_in6>()) };
            Some(SockAddr {
                ip: Ip::V6(sin6.sin6_addr.s6_addr),
                port: u16::from_be(sin6.sin6_port),
            })
        }
        _ => None,
    }
}

/// Whether a socket is listening (`SO_ACCEPTCONN`).
pub fn is_listening(fd: c_int) -> bool {
    get_int_option(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Some(1)
}

/// What the library's own writes can raise: SIGPIPE (a pipe or FIFO whose
/// reader is gone), SIGXFSZ (a file at RLIMIT_FSIZE), SIGTTOU (a background
/// process writing to a terminal with `tostop`).
const WRITE_SIGNALS: [c_int; 3] = [libc::SIGPIPE, libc::SIGXFSZ, libc::SIGTTOU];

/// The kernel's `sigset_t` is 64 bits on Linux; libc's is larger.
type KernelSigset = u64;

fn sig_bit(sig: c_int) -> KernelSigset {
    u32::try_from(sig.wrapping_sub(1))
        .ok()
        .and_then(|n| 1u64.checked_shl(n))
        .unwrap_or(0)
}

fn sigprocmask(how: c_int, set: *const KernelSigset, old: *mut KernelSigset) -> bool {
    // SAFETY: both pointers are null or point at a live 8-byte sigset, the
    // size the kernel is told.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how as c_long,
            set,
            old,
            core::mem::size_of::<KernelSigset>() as c_long,
        )
    };
    rc == 0
}

fn sigpending() -> KernelSigset {
    let mut set: KernelSigset = 0;
    // SAFETY: `set` is a live 8-byte sigset, the size the kernel is told.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigpending,
            &raw mut set,
            core::mem::size_of::<KernelSigset>() as c_long,
        )
    };
    if rc == 0 {
        set
    } else {
        0
    }
}

/// Takes one pending, blocked `sig` off the thread, without waiting.
fn discard_pending(sig: c_int) {
    let set = sig_bit(sig);
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `set` and `zero` are live; a null siginfo is allowed.
    let _ = unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &raw const set,
            core::ptr::null_mut::<libc::siginfo_t>(),
            &raw const zero,
            core::mem::size_of::<KernelSigset>() as c_long,
        )
    };
}

/// One `write()` of a log line to a descriptor that is not a socket, in a
/// way the program cannot notice: the signals a write can raise are
/// blocked around it, and a signal that our write raised is taken back
/// before the mask is restored, unless the thread already had that signal
/// pending (standard signals do not queue: then the program's and ours are
/// one). A short or failed write is dropped (a log line is not worth
/// retrying inside someone else's program). `fd` must not block (a regular
/// file, or a descriptor opened `O_NONBLOCK`, see [`reopen_nonblocking`]).
/// errno is the caller's to restore.
pub fn write_quietly(fd: c_int, bytes: &[u8]) {
    let block = WRITE_SIGNALS.iter().fold(0, |set, &s| set | sig_bit(s));
    let mut old: KernelSigset = 0;
    if !sigprocmask(libc::SIG_BLOCK, &raw const block, &raw mut old) {
        return; // cannot make the write silent: skip it
    }
    // Pending for the process or the thread; only where one of ours is
    // already pending does it matter which (see `thread_pending`).
    let before = sigpending();
    let mine_before = if before & block != 0 {
        thread_pending()
    } else {
        0
    };
    // SAFETY: the pointer and length describe a live slice.
    let rc = unsafe { libc::syscall(libc::SYS_write, fd as c_long, bytes.as_ptr(), bytes.len()) };
    if rc < 0 {
        let now = sigpending();
        for sig in WRITE_SIGNALS {
            let bit = sig_bit(sig);
            // Our write's signal is thread-directed, and rt_sigtimedwait
            // takes a thread-directed one before a process-directed one.
            let ours = now & bit != 0
                && mine_before & bit == 0
                && (before & bit == 0 || thread_pending() & bit != 0);
            if ours {
                discard_pending(sig);
            }
        }
    }
    sigprocmask(libc::SIG_SETMASK, &raw const old, core::ptr::null_mut());
}

/// The signals pending for this thread alone (`SigPnd` of
/// `/proc/thread-self/status`; `rt_sigpending` also reports the process's).
/// Read only when one of the write signals is already pending.
fn thread_pending() -> KernelSigset {
    let mut buf = [0u8; 4096];
    let mut path = [0u8; 32];
    let Ok(status) = read_file(b"/proc/thread-self/status", &mut path, &mut buf) else {
        return 0;
    };
    status
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"SigPnd:"))
        .and_then(|hex| {
            hex.iter()
                .filter(|b| !b.is_ascii_whitespace())
                .try_fold(0u64, |n, &b| {
                    let digit = char::from(b).to_digit(16)?;
                    n.checked_mul(16)?.checked_add(u64::from(digit))
                })
        })
        .unwrap_or(0)
}

/// Opens the file `fd` names again, for writing, with `O_NONBLOCK` on the
/// new open file description only, so that a write to it can never block
/// (a terminal whose output is stopped or not drained, a pipe whose slots
/// are full), without touching the program's own description's flags. The
/// same file, checked by device and inode; `Err(errno)` if it cannot be
/// opened so (a FIFO without a reader: ENXIO; another user's pipe: EACCES),
/// `Err(0)` if it is another file now.
pub fn reopen_nonblocking(fd: c_int, dev: u64, ino: u64) -> Result<c_int, c_int> {
    let mut name = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    let (head, tail) = name.split_at_mut(prefix.len());
    head.copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let mut n = u32::try_from(fd).map_err(|_| libc::EBADF)?;
    let mut len = 0usize;
    for slot in digits.iter_mut() {
        *slot = b'0'.saturating_add((n % 10) as u8);
        len = len.saturating_add(1);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (slot, d) in tail
        .iter_mut()
        .zip(digits.get(..len).unwrap_or(&[]).iter().rev())
    {
        *slot = *d;
    }
    // The rest of `name` is zeros: NUL-terminated.
    let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: `name` is NUL-terminated; flags are plain integers.
    let new = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD as c_long,
            name.as_ptr(),
            flags as c_long,
        )
    };
    let new = c_int::try_from(check(new)?).map_err(|_| libc::EBADF)?;
    match file_identity(new) {
        Some((d, i, _)) if d == dev && i == ino => Ok(new),
        _ => {
            close_own(new);
            Err(0)
        }
    }
}

/// Whether a pipe has room for `len` more bytes now (a write of up to
/// PIPE_BUF bytes that fits does not block). Counts bytes, not the pipe's
/// slots: the fallback where a pipe cannot be opened again (one made by
/// another user, after the program changed its uid).
pub fn pipe_has_room(fd: c_int, len: usize) -> bool {
    // SAFETY: F_GETPIPE_SZ takes no argument.
    let size =
        unsafe { libc::syscall(libc::SYS_fcntl, fd as c_long, libc::F_GETPIPE_SZ as c_long) };
    let mut queued: c_int = 0;
    // SAFETY: FIONREAD writes one int to the live `queued`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_ioctl,
            fd as c_long,
            libc::FIONREAD as c_long,
            &raw mut queued,
        )
    };
    match (usize::try_from(size), usize::try_from(queued)) {
        (Ok(size), Ok(queued)) if rc == 0 => size.saturating_sub(queued) >= len,
        _ => false,
    }
}

/// The device number of a character device open as `fd`.
pub fn char_device(fd: c_int) -> Option<u64> {
    let st = fstat(fd)?;
    (st.st_mode & libc::S_IFMT == libc::S_IFCHR).then_some(st.st_rdev)
}

/// One non-blocking `send()` of a log line to a stream socket (the journal):
/// `MSG_NOSIGNAL`, so a closed peer raises no SIGPIPE, and `MSG_DONTWAIT`,
/// so a full socket drops the line instead of blocking the program.
pub fn send_quietly(fd: c_int, bytes: &[u8]) {
    // SAFETY: the pointer and length describe a live slice; no address.
    let _ = unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd as c_long,
            bytes.as_ptr(),
            bytes.len(),
            (libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) as c_long,
            core::ptr::null::<sockaddr>(),
            0 as c_long,
        )
    };
}

/// A fresh TCP socket's option values in this network namespace: what
/// `getsockopt()` returns for an option nobody set (the sysctls
/// `net.ipv4.tcp_keepalive_*`, and 0 for the others). One short-lived
/// socket made by raw syscall, never through our hooks.
pub fn kernel_defaults(out: &mut [c_int], opts: impl Iterator<Item = (c_int, c_int)>) -> bool {
    // SAFETY: plain integer arguments.
    let Ok(fd) = check(unsafe {
        libc::syscall(
            libc::SYS_socket,
            libc::AF_INET as c_long,
            (libc::SOCK_STREAM | libc::SOCK_CLOEXEC) as c_long,
            0 as c_long,
        )
    }) else {
        return false;
    };
    let fd = fd as c_int;
    let mut ok = true;
    for (slot, (level, name)) in out.iter_mut().zip(opts) {
        match get_int_option(fd, level, name) {
            Some(v) => *slot = v,
            None => ok = false,
        }
    }
    close_own(fd);
    ok
}

/// A plain-data value of type `T` at `src`, read without ever faulting
/// (see [`copy_from_program`]).
///
/// # Safety
/// Every bit pattern of `size_of::<T>()` bytes must be a valid `T` (integers,
/// raw pointers and `#[repr(C)]` structs of them).
pub unsafe fn read_plain<T: Copy>(src: *const T) -> Option<T> {
    let mut value = core::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: a byte view of our own zeroed local, as long as a `T`.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(value.as_mut_ptr().cast::<u8>(), core::mem::size_of::<T>())
    };
    if !copy_from_program(bytes, src.cast()) {
        return None;
    }
    // SAFETY: fully written, and any bit pattern is a valid `T` (contract).
    Some(unsafe { value.assume_init() })
}

/// A destination address as the program passed it: the pointers are only
/// ever read through [`program_sockaddr`], which cannot fault.
#[derive(Clone, Copy)]
pub enum ProgramAddress {
    /// `connect()`, `sendto()`: a `sockaddr` and its length.
    Sockaddr(*const sockaddr, socklen_t),
    /// `sendmsg()`: the `msg_name` of a `msghdr`.
    Msghdr(*const libc::msghdr),
}

impl ProgramAddress {
    /// The destination, if readable.
    pub fn read(self) -> Dest {
        match self {
            ProgramAddress::Sockaddr(addr, len) => program_sockaddr(addr, len),
            ProgramAddress::Msghdr(msg) => program_msghdr_name(msg),
        }
    }
}
