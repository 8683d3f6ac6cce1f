//! What the shim knows about each descriptor, one `AtomicU16` per fd.
//!
//! Fixed size (128 KiB of zeroed .bss; a page is only touched when a fd in
//! it is used), so lookups never allocate or lock, and the cost per call is
//! one atomic load or read-modify-write, with no syscall. Descriptors at or
//! above [`TRACKED_FDS`] have no state: they get the options at `socket()`
//! (respect mode, no filters), but no connect-time decision, no force-mode
//! override and no log line with a peer. With destination filters set, a
//! socket above the bound is left alone, since its decision cannot wait for
//! `connect()`.
//!
//! A slot is cleared by `close()` and overwritten by each new socket from the
//! `socket()` hook (and by `accept()`), so the state of a closed descriptor
//! does not leak into the next socket that gets its number. (A descriptor
//! closed without libc's `close`, or replaced by `dup2`, keeps a stale slot
//! until its number is reused by one of those hooks.)

use core::sync::atomic::{AtomicU16, Ordering};

use crate::options::OptSet;

pub const TRACKED_FDS: usize = 65536;

static TABLE: [AtomicU16; TRACKED_FDS] = [const { AtomicU16::new(0) }; TRACKED_FDS];

// Bit layout of a slot.
const SEEN: u16 = 1 << 0; // set by our socket()/connect()/accept(); 0 = unknown fd
const TCP: u16 = 1 << 1;
const DECIDED: u16 = 1 << 2; // the options were applied, or deliberately not
const LOG_PENDING: u16 = 1 << 3; // the info line is still due
const APPLIED_SHIFT: u16 = 4; // 5 bits: options the shim set
const PROGRAM_SHIFT: u16 = 9; // 5 bits: options the program set itself
const OPT_MASK: u16 = 0x1f;
const LATE: u16 = 1 << 14; // a listener configured after it was already listening

/// A snapshot of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdState(u16);

impl FdState {
    pub const NOT_TCP: FdState = FdState(SEEN);
    pub const UNDECIDED_TCP: FdState = FdState(SEEN | TCP);

    /// A TCP socket whose options are settled; its log line is due.
    pub fn decided(applied: OptSet, program: OptSet) -> FdState {
        FdState(
            SEEN | TCP
                | DECIDED
                | LOG_PENDING
                | bits(applied, APPLIED_SHIFT)
                | bits(program, PROGRAM_SHIFT),
        )
    }

    /// This slot, now known to be a TCP socket not decided yet (a socket
    /// our socket() hook never saw; program-set bits are kept).
    pub fn as_undecided_tcp(self) -> FdState {
        FdState((self.0 | SEEN | TCP) & !DECIDED)
    }

    pub fn is_late(self) -> bool {
        self.0 & LATE != 0
    }

    pub fn seen(self) -> bool {
        self.0 & SEEN != 0
    }
    pub fn tcp(self) -> bool {
        self.0 & TCP != 0
    }
    pub fn is_decided(self) -> bool {
        self.0 & DECIDED != 0
    }
    pub fn applied(self) -> OptSet {
        OptSet(((self.0 >> APPLIED_SHIFT) & OPT_MASK) as u8)
    }
    pub fn program_set(self) -> OptSet {
        OptSet(((self.0 >> PROGRAM_SHIFT) & OPT_MASK) as u8)
    }
}

fn bits(set: OptSet, shift: u16) -> u16 {
    (u16::from(set.0) & OPT_MASK) << shift
}

fn slot(fd: i32) -> Option<&'static AtomicU16> {
    usize::try_from(fd).ok().and_then(|i| TABLE.get(i))
}

/// `None` for a descriptor beyond the table.
pub fn get(fd: i32) -> Option<FdState> {
    slot(fd).map(|s| FdState(s.load(Ordering::Relaxed)))
}

/// Replaces whatever the slot held (a new socket got this number).
pub fn store(fd: i32, state: FdState) {
    if let Some(s) = slot(fd) {
        s.store(state.0, Ordering::Relaxed);
    }
}

/// Forgets the descriptor. Writes only if there is something to forget, so
/// closing files never touches the table's pages.
pub fn forget(fd: i32) {
    if let Some(s) = slot(fd) {
        if s.load(Ordering::Relaxed) != 0 {
            s.store(0, Ordering::Relaxed);
        }
    }
}

/// Settles an undecided TCP socket, keeping the program-set bits recorded
/// so far (atomically: a concurrent `setsockopt` on the fd is not lost).
pub fn decide(fd: i32, applied: OptSet) {
    if let Some(s) = slot(fd) {
        s.fetch_or(
            SEEN | TCP | DECIDED | LOG_PENDING | bits(applied, APPLIED_SHIFT),
            Ordering::Relaxed,
        );
    }
}

/// Marks a listener that got the options only after it was listening:
/// connections already in its backlog did not inherit them.
pub fn mark_late(fd: i32) {
    if let Some(s) = slot(fd) {
        s.fetch_or(LATE, Ordering::Relaxed);
    }
}

/// The program set some of our options itself on `fd`.
pub fn mark_program_set(fd: i32, opts: OptSet) {
    if let Some(s) = slot(fd) {
        s.fetch_or(bits(opts, PROGRAM_SHIFT), Ordering::Relaxed);
    }
}

/// Clears the pending log line; true for exactly one caller per socket.
pub fn take_log_pending(fd: i32) -> bool {
    slot(fd).is_some_and(|s| s.fetch_and(!LOG_PENDING, Ordering::Relaxed) & LOG_PENDING != 0)
}
