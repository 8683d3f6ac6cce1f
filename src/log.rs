//! The library's logger: lock-free, allocation-free, one `write()` per line.
//!
//! A line goes either to the log file (opened, appended to and closed for
//! each line, so no descriptor of ours lingers in the program) or to the
//! stderr the process had when the library loaded. Before each write to fd 2
//! the logger checks that fd 2 is still that same file and not a socket: a
//! daemon that closed fd 2 may have a client connection there now, and a log
//! line must never enter someone else's byte stream.
//!
//! The host program's `RUST_LOG` and the like are never read.

use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use keepalive_shim_config::{put_u64, Level, LineBuf, Sink};

use crate::once::InitOnce;
use crate::sys;

/// Enough for the longest line the shim writes (an IPv6 peer and every
/// option with its value); longer lines are truncated, never split.
pub type Line = LineBuf<512>;

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);
static STDERR_OK: AtomicBool = AtomicBool::new(false);
static STDERR_DEV: AtomicU64 = AtomicU64::new(0);
static STDERR_INO: AtomicU64 = AtomicU64::new(0);

/// The log file's path (kept by the caller for the process's lifetime).
static LOG_FILE: InitOnce<&'static CStr> = InitOnce::new();

/// Sets the level and destination. Called once, from the constructor.
pub fn init(level: Level, log_file: Option<&'static CStr>) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    if let Some(path) = log_file {
        LOG_FILE.set(path);
    }
    if let Some((dev, ino, is_socket)) = sys::file_identity(2) {
        if !is_socket {
            STDERR_DEV.store(dev, Ordering::Relaxed);
            STDERR_INO.store(ino, Ordering::Relaxed);
            STDERR_OK.store(true, Ordering::Release);
        }
    }
}

pub fn enabled(level: Level) -> bool {
    level != Level::Off && level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line at `level`: `keepalive-shim[PID]: ` then what `body`
/// writes, then a newline, in a single `write()`.
pub fn line(level: Level, body: impl FnOnce(&mut Line)) {
    if !enabled(level) {
        return;
    }
    let mut buf = Line::new();
    buf.put(b"keepalive-shim[");
    put_u64(&mut buf, u64::try_from(sys::getpid()).unwrap_or(0));
    buf.put(b"]: ");
    if level <= Level::Warn {
        buf.put(if level == Level::Error {
            b"error: "
        } else {
            b"warning: "
        });
    }
    body(&mut buf);
    write_line(buf.finish_line());
}

fn write_line(bytes: &[u8]) {
    if let Some(path) = LOG_FILE.get() {
        if let Some(fd) = sys::open_append(path) {
            sys::write_once(fd, bytes);
            sys::close(fd);
        }
        return;
    }
    if stderr_is_still_ours() {
        sys::write_once(2, bytes);
    }
}

fn stderr_is_still_ours() -> bool {
    if !STDERR_OK.load(Ordering::Acquire) {
        return false;
    }
    match sys::file_identity(2) {
        Some((dev, ino, false)) => {
            dev == STDERR_DEV.load(Ordering::Relaxed) && ino == STDERR_INO.load(Ordering::Relaxed)
        }
        _ => false,
    }
}
