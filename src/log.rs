//! The library's logger: lock-free, allocation-free, one `write()` per line.
//!
//! A line goes either to the log file (opened, appended to and closed for
//! each line, so no descriptor of ours lingers in the program) or to the
//! stderr the process had when the library loaded. Before each write to fd 2
//! the logger checks that fd 2 is still that same file: a daemon that closed
//! fd 2 may have a client connection there now, and a log line must never
//! enter someone else's byte stream. A socket as fd 2 is only written to
//! when it is systemd's journal stream, which systemd names in
//! `JOURNAL_STREAM=DEV:INODE` (systemd.exec(5)); an inetd-style service has
//! its client there instead.
//!
//! A write never changes the program's fate: no signal (see
//! [`sys::write_quietly`], [`sys::send_quietly`]), no blocking on a full
//! pipe, and errno as it was. The host program's `RUST_LOG` and the like are
//! never read.

use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

use keepalive_shim_config::{put_escaped, put_u64, Level, LineBuf, Sink};

use crate::once::InitOnce;
use crate::sys::{self, ErrnoGuard};

/// Enough for the longest line the shim writes (an IPv6 peer and every
/// option with its value); longer lines are truncated, never split.
pub type Line = LineBuf<512>;

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);
static STDERR_OK: AtomicBool = AtomicBool::new(false);
static STDERR_DEV: AtomicU64 = AtomicU64::new(0);
static STDERR_INO: AtomicU64 = AtomicU64::new(0);
static STDERR_TYPE: AtomicU32 = AtomicU32::new(0);
/// The first failure to open the log file has been reported.
static LOG_FILE_FAILED: AtomicBool = AtomicBool::new(false);

/// The log file's path (kept by the caller for the process's lifetime).
static LOG_FILE: InitOnce<&'static CStr> = InitOnce::new();

/// Sets the level and destination. Called once, from the constructor.
/// `journal` is `JOURNAL_STREAM`'s `(device, inode)`, if it is set.
pub fn init(level: Level, log_file: Option<&'static CStr>, journal: Option<(u64, u64)>) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    if let Some(path) = log_file {
        LOG_FILE.set(path);
    }
    if let Some((dev, ino, kind)) = sys::file_identity(2) {
        if kind != libc::S_IFSOCK || journal == Some((dev, ino)) {
            STDERR_DEV.store(dev, Ordering::Relaxed);
            STDERR_INO.store(ino, Ordering::Relaxed);
            STDERR_TYPE.store(kind, Ordering::Relaxed);
            STDERR_OK.store(true, Ordering::Release);
        }
    }
}

pub fn enabled(level: Level) -> bool {
    level != Level::Off && level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line at `level`: `keepalive-shim[PID]: ` then what `body`
/// writes, then a newline, in a single `write()`. errno is left as it was.
pub fn line(level: Level, body: impl FnOnce(&mut Line)) {
    if !enabled(level) {
        return;
    }
    let _errno = ErrnoGuard::save();
    let mut buf = Line::new();
    start(&mut buf, level);
    body(&mut buf);
    let bytes = buf.finish_line();
    match LOG_FILE.get() {
        Some(path) => to_log_file(path, bytes),
        None => to_stderr(bytes),
    }
}

fn start(buf: &mut Line, level: Level) {
    buf.put(b"keepalive-shim[");
    put_u64(buf, u64::try_from(sys::getpid()).unwrap_or(0));
    buf.put(b"]: ");
    if level <= Level::Warn {
        buf.put(if level == Level::Error {
            b"error: "
        } else {
            b"warning: "
        });
    }
}

fn to_log_file(path: &CStr, bytes: &[u8]) {
    match sys::open_append(path) {
        Some(fd) => {
            // Opened O_NONBLOCK: a FIFO without room fails instead of blocking.
            sys::write_quietly(fd, bytes);
            sys::close_own(fd);
        }
        None => {
            // Typically a file a root parent created that its unprivileged
            // workers cannot append to: say so once per process, on stderr.
            if !LOG_FILE_FAILED.swap(true, Ordering::Relaxed) {
                let errno = sys::errno();
                let mut buf = Line::new();
                start(&mut buf, Level::Warn);
                buf.put(b"cannot open the log file ");
                put_escaped(&mut buf, path.to_bytes(), 256);
                buf.put(b": errno ");
                put_u64(&mut buf, u64::try_from(errno).unwrap_or(0));
                buf.put(b"; this process's lines are lost (the file must be writable by every user the program runs as)");
                to_stderr(buf.finish_line());
            }
        }
    }
}

fn to_stderr(bytes: &[u8]) {
    if !STDERR_OK.load(Ordering::Acquire) {
        return;
    }
    let Some((dev, ino, kind)) = sys::file_identity(2) else {
        return;
    };
    if dev != STDERR_DEV.load(Ordering::Relaxed)
        || ino != STDERR_INO.load(Ordering::Relaxed)
        || kind != STDERR_TYPE.load(Ordering::Relaxed)
    {
        return;
    }
    match kind {
        libc::S_IFSOCK => sys::send_quietly(2, bytes),
        libc::S_IFREG => sys::write_quietly(2, bytes),
        // A pipe, FIFO or terminal can block a write (full, or output
        // stopped): written through a non-blocking open file description
        // of its own, or not at all.
        libc::S_IFIFO | libc::S_IFCHR => {
            // /dev/null needs no line; reopening a pty master (/dev/ptmx)
            // would make a new terminal.
            if matches!(sys::char_device(2), Some(DEV_NULL | DEV_PTMX)) {
                return;
            }
            match sys::reopen_nonblocking(2, dev, ino) {
                Ok(fd) => {
                    sys::write_quietly(fd, bytes);
                    sys::close_own(fd);
                }
                // Another user's pipe (the program changed its uid): write
                // to fd 2 itself if the line fits now.
                Err(libc::EACCES | libc::EPERM)
                    if kind == libc::S_IFIFO && sys::pipe_has_room(2, bytes.len()) =>
                {
                    sys::write_quietly(2, bytes)
                }
                Err(_) => {}
            }
        }
        // Directories, block devices: nothing a log line belongs in.
        _ => {}
    }
}

/// `makedev(1, 3)` and `makedev(5, 2)`: /dev/null and /dev/ptmx.
const DEV_NULL: u64 = (1 << 8) | 3;
const DEV_PTMX: u64 = (5 << 8) | 2;

/// Configuration warnings, formatted at load (the environment they quote
/// may be overwritten later, e.g. by setproctitle) and printed when the
/// process opens its first TCP socket. Processes that never do, such as the
/// shell and helper processes a program spawns, stay quiet; a child forked
/// after the warning does not repeat it.
static WARNINGS: InitOnce<&'static [u8]> = InitOnce::new();
static WARNED: AtomicBool = AtomicBool::new(false);

/// Keeps the warnings' text (lines ending in `\n`) for [`warn_once`].
pub fn keep_warnings(text: &'static [u8]) {
    WARNINGS.set(text);
}

/// Prints the configuration warnings, the first time a TCP socket is seen.
pub fn warn_once() {
    let Some(text) = WARNINGS.get() else { return };
    if WARNED.load(Ordering::Relaxed) || WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    for warning in text.split(|&b| b == b'\n').filter(|w| !w.is_empty()) {
        line(Level::Warn, |b| b.put(warning));
    }
}

/// A signed decimal.
pub fn put_int(b: &mut impl Sink, n: i32) {
    if n < 0 {
        b.put(b"-");
    }
    put_u64(b, u64::from(n.unsigned_abs()));
}
