//! What the shim knows about each descriptor, one `AtomicU16` per fd.
//!
//! Fixed size (128 KiB of zeroed .bss; a page is only touched when a fd in
//! it is used), so lookups never allocate or lock. Descriptors at or above
//! [`TRACKED_FDS`] have no state: they get the options at `socket()` like any
//! other, but no connect-time logging or fallback.
//!
//! A slot is overwritten by each new socket from the `socket()` hook, so the
//! state of a closed descriptor cannot leak into the next socket that gets it.

use core::sync::atomic::{AtomicU16, Ordering};

use crate::options::OptSet;

pub const TRACKED_FDS: usize = 65536;

static TABLE: [AtomicU16; TRACKED_FDS] = [const { AtomicU16::new(0) }; TRACKED_FDS];

/// Bit layout of a slot.
const SEEN: u16 = 1 << 0; // the state below was set by our socket() or connect()
const TCP: u16 = 1 << 1;
const LOG_PENDING: u16 = 1 << 2; // the info line is written at connect()
const APPLIED_SHIFT: u16 = 3; // 5 bits: options the shim set
const PROGRAM_SHIFT: u16 = 8; // 5 bits: options the program set itself

/// A snapshot of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdState(u16);

impl FdState {
    pub fn seen(self) -> bool {
        self.0 & SEEN != 0
    }
    pub fn tcp(self) -> bool {
        self.0 & TCP != 0
    }
    pub fn applied(self) -> OptSet {
        OptSet((self.0 >> APPLIED_SHIFT) as u8 & 0x1f)
    }
    pub fn program_set(self) -> OptSet {
        OptSet((self.0 >> PROGRAM_SHIFT) as u8 & 0x1f)
    }
}

fn slot(fd: i32) -> Option<&'static AtomicU16> {
    usize::try_from(fd).ok().and_then(|i| TABLE.get(i))
}

pub fn get(fd: i32) -> Option<FdState> {
    slot(fd).map(|s| FdState(s.load(Ordering::Relaxed)))
}

/// A new socket that is not TCP: the shim never touches it.
pub fn set_not_tcp(fd: i32) {
    if let Some(s) = slot(fd) {
        s.store(SEEN, Ordering::Relaxed);
    }
}

/// A TCP socket the shim has configured; its log line is still due.
/// Keeps program-set bits recorded so far (a socket that reached connect()
/// without our socket() hook may have them).
pub fn set_configured(fd: i32, applied: OptSet) {
    if let Some(s) = slot(fd) {
        let program = s.load(Ordering::Relaxed) & (0x1f << PROGRAM_SHIFT);
        let bits = SEEN | TCP | LOG_PENDING | (u16::from(applied.0) << APPLIED_SHIFT);
        s.store(bits | program, Ordering::Relaxed);
    }
}

/// A new TCP socket from the socket() hook: forget the previous owner of fd.
pub fn reset_configured(fd: i32, applied: OptSet) {
    if let Some(s) = slot(fd) {
        s.store(
            SEEN | TCP | LOG_PENDING | (u16::from(applied.0) << APPLIED_SHIFT),
            Ordering::Relaxed,
        );
    }
}

/// The program set some of our options itself on `fd`.
pub fn mark_program_set(fd: i32, opts: OptSet) {
    if let Some(s) = slot(fd) {
        s.fetch_or(u16::from(opts.0) << PROGRAM_SHIFT, Ordering::Relaxed);
    }
}

/// Clears the pending log line; true for exactly one caller per socket.
pub fn take_log_pending(fd: i32) -> bool {
    slot(fd).is_some_and(|s| s.fetch_and(!LOG_PENDING, Ordering::Relaxed) & LOG_PENDING != 0)
}
