//! What the shim knows about each descriptor, one `AtomicU64` per fd.
//!
//! Fixed size (512 KiB of zeroed .bss; a page is only touched when a fd in
//! it is used), so lookups never allocate or lock. Descriptors at or above
//! [`TRACKED_FDS`] have no state: they get the options at `socket()`
//! (respect mode, no filters), but no connect-time decision, no force-mode
//! override and no log line with a peer. With destination filters set, a
//! socket above the bound is left alone, since its decision cannot wait for
//! `connect()`.
//!
//! A descriptor number can change identity without any hook seeing it:
//! `close_range()`, `closefrom()`, `dup2()` onto an open number, libc's own
//! closes (`fclose()` of a stream over a socket), then a socket made by a
//! raw syscall, received with `SCM_RIGHTS` or made by a library that binds
//! straight to libc. So each slot also holds the socket's inode number, and
//! [`current`] compares it with `fstat()` before a hook trusts the slot: a
//! slot whose inode is not the descriptor's is stale and starts afresh.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::options::{Opt, OptSet};
use crate::sys;

pub const TRACKED_FDS: usize = 65536;

static TABLE: [AtomicU64; TRACKED_FDS] = [const { AtomicU64::new(0) }; TRACKED_FDS];
/// One past the highest descriptor ever stored: bounds [`twin`]'s scan.
static HIGH: AtomicUsize = AtomicUsize::new(0);

// Bit layout of a slot: the state in the low 32 bits, the socket's inode
// number (sockfs numbers are 32-bit) in the high 32 bits; 0 = not known.
const SEEN: u64 = 1 << 0; // classified: we know whether it is TCP
const TCP: u64 = 1 << 1;
const DECIDED: u64 = 1 << 2; // the options were applied, or deliberately not
const LOG_PENDING: u64 = 1 << 3; // the info line is still due
const LATE: u64 = 1 << 4; // a listener configured after it was already listening
const APPLIED_SHIFT: u32 = 8; // one bit per Opt: options the shim set
const PROGRAM_SHIFT: u32 = 16; // one bit per Opt: options the program set itself
const OPT_MASK: u64 = (1 << Opt::ALL.len()) - 1;
const INODE_SHIFT: u32 = 32;
const STATE_MASK: u64 = (1 << INODE_SHIFT) - 1;

// The option sets must fit their 8-bit fields.
const _: () = assert!(Opt::ALL.len() <= 8);

/// A snapshot of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdState(u64);

impl FdState {
    /// A descriptor the shim knows nothing about yet, with its inode.
    pub fn unseen(inode: u32) -> FdState {
        FdState(u64::from(inode) << INODE_SHIFT)
    }

    /// This slot, classified as not TCP.
    pub fn as_not_tcp(self) -> FdState {
        FdState((self.0 & !STATE_MASK) | SEEN)
    }

    /// This slot, classified as a TCP socket not decided yet (program-set
    /// bits are kept).
    pub fn as_undecided_tcp(self) -> FdState {
        FdState((self.0 | SEEN | TCP) & !DECIDED)
    }

    /// This slot, as a TCP socket whose options are settled; its log line
    /// is due.
    pub fn as_decided(self, applied: OptSet, program: OptSet) -> FdState {
        FdState(
            (self.0 & !STATE_MASK)
                | SEEN
                | TCP
                | DECIDED
                | LOG_PENDING
                | bits(applied, APPLIED_SHIFT)
                | bits(program, PROGRAM_SHIFT),
        )
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
    pub fn log_pending(self) -> bool {
        self.0 & LOG_PENDING != 0
    }
    pub fn applied(self) -> OptSet {
        OptSet(((self.0 >> APPLIED_SHIFT) & OPT_MASK) as u8)
    }
    pub fn program_set(self) -> OptSet {
        OptSet(((self.0 >> PROGRAM_SHIFT) & OPT_MASK) as u8)
    }
    /// The socket's inode number (0: not known).
    pub fn inode(self) -> u32 {
        (self.0 >> INODE_SHIFT) as u32
    }
}

fn bits(set: OptSet, shift: u32) -> u64 {
    (u64::from(set.0) & OPT_MASK) << shift
}

fn slot(fd: i32) -> Option<&'static AtomicU64> {
    usize::try_from(fd).ok().and_then(|i| TABLE.get(i))
}

/// The slot of a socket descriptor, checked against the socket it names
/// now (one `fstat()`): a stale slot is replaced by a fresh, unseen one.
/// `None` for a descriptor beyond the table, closed, or not a socket.
pub fn current(fd: i32) -> Option<FdState> {
    let s = slot(fd)?;
    let inode = sys::socket_inode(fd)?;
    let state = FdState(s.load(Ordering::Relaxed));
    if state.inode() == inode {
        return Some(state);
    }
    let fresh = FdState::unseen(inode);
    s.store(fresh.0, Ordering::Relaxed);
    Some(fresh)
}

/// The slot as it is, unchecked: only right after [`current`] in the same
/// hook.
pub fn get(fd: i32) -> Option<FdState> {
    slot(fd).map(|s| FdState(s.load(Ordering::Relaxed)))
}

/// Replaces whatever the slot held (a new socket got this number).
pub fn store(fd: i32, state: FdState) {
    if let Some(s) = slot(fd) {
        s.store(state.0, Ordering::Relaxed);
        let end = usize::try_from(fd).map_or(0, |i| i.saturating_add(1));
        if HIGH.load(Ordering::Relaxed) < end {
            HIGH.fetch_max(end, Ordering::Relaxed);
        }
    }
}

/// The state of another descriptor for the same socket (`dup()`,
/// `fcntl(F_DUPFD)`, inetd's fds 0-2), classified already; without its
/// pending log line, which belongs to the number it was made on. A scan of
/// the table up to the highest number used, made only the first time a
/// hook meets a socket it has no state for.
pub fn twin(fd: i32, state: FdState) -> Option<FdState> {
    let inode = state.inode();
    if inode == 0 {
        return None;
    }
    let me = usize::try_from(fd).ok()?;
    let high = HIGH.load(Ordering::Relaxed).min(TRACKED_FDS);
    TABLE.get(..high)?.iter().enumerate().find_map(|(i, s)| {
        let other = FdState(s.load(Ordering::Relaxed));
        (i != me && other.inode() == inode && other.seen())
            .then_some(FdState(other.0 & !LOG_PENDING))
    })
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

/// Undoes [`decide`]: a filtered decision whose connect failed at once.
pub fn undecide(fd: i32) {
    if let Some(s) = slot(fd) {
        s.fetch_and(
            !(DECIDED | LOG_PENDING | bits(OptSet(u8::MAX), APPLIED_SHIFT)),
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

/// The program set `opt` itself on `fd`; returns the slot as it was
/// before, so the caller can tell a first setting from a repeat.
pub fn mark_program_set(fd: i32, opt: Opt) -> Option<FdState> {
    let s = slot(fd)?;
    let before = s.fetch_or(
        bits(OptSet::EMPTY.with(opt), PROGRAM_SHIFT),
        Ordering::Relaxed,
    );
    Some(FdState(before))
}

/// The values a program set itself in force mode, where the shim then put
/// its own back, so that the debug line can show what the program wanted.
/// Only force mode touches these pages (zeroed .bss: 0 = not known; a
/// value v, never negative once the kernel has it, is kept as v + 1).
static PROGRAM_VALUES: [[AtomicU32; Opt::ALL.len()]; TRACKED_FDS] =
    [const { [const { AtomicU32::new(0) }; Opt::ALL.len()] }; TRACKED_FDS];

fn program_cell(fd: i32, opt: Opt) -> Option<&'static AtomicU32> {
    usize::try_from(fd)
        .ok()
        .and_then(|i| PROGRAM_VALUES.get(i))
        .and_then(|v| v.get(opt as usize))
}

/// Remembers the value the program set for `opt` (force mode).
pub fn record_program_value(fd: i32, opt: Opt, value: Option<i32>) {
    if let Some(cell) = program_cell(fd, opt) {
        let kept = value
            .and_then(|v| u32::try_from(v).ok())
            .and_then(|v| v.checked_add(1))
            .unwrap_or(0);
        cell.store(kept, Ordering::Relaxed);
    }
}

/// The value [`record_program_value`] kept for `opt`, if any.
pub fn program_value(fd: i32, opt: Opt) -> Option<i32> {
    let kept = program_cell(fd, opt)?.load(Ordering::Relaxed);
    kept.checked_sub(1).and_then(|v| i32::try_from(v).ok())
}

/// Clears the pending log line; true for exactly one caller per socket.
pub fn take_log_pending(fd: i32) -> bool {
    slot(fd).is_some_and(|s| s.fetch_and(!LOG_PENDING, Ordering::Relaxed) & LOG_PENDING != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_keep_the_inode_and_the_program_bits() {
        let s = FdState::unseen(0xdead_beef);
        assert!(!s.seen());
        let p = OptSet::EMPTY.with(Opt::Idle);
        let t = FdState(s.0 | bits(p, PROGRAM_SHIFT)).as_undecided_tcp();
        assert!(t.seen() && t.tcp() && !t.is_decided());
        assert_eq!(t.program_set(), p);
        assert_eq!(t.inode(), 0xdead_beef);
        let a = OptSet::EMPTY.with(Opt::KeepAlive).with(Opt::UserTimeout);
        let d = t.as_decided(a, p);
        assert!(d.is_decided() && d.log_pending());
        assert_eq!(
            (d.applied(), d.program_set(), d.inode()),
            (a, p, 0xdead_beef)
        );
        assert!(!d.as_not_tcp().tcp());
        assert_eq!(d.as_not_tcp().inode(), 0xdead_beef);
    }
}
