//! A value written once at load and read lock-free afterwards (a minimal,
//! `no_std` `OnceLock` without blocking: a reader that comes too early sees
//! `None` and the hook passes the call through).

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU8, Ordering};

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;

pub struct InitOnce<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written by exactly one thread (the one that wins the
// EMPTY -> WRITING exchange) before READY is published with Release, and only
// read after READY is observed with Acquire; it is never written again.
unsafe impl<T: Sync + Send> Sync for InitOnce<T> {}

impl<T> InitOnce<T> {
    pub const fn new() -> Self {
        InitOnce {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Stores `value` if nothing was stored yet; later calls do nothing.
    pub fn set(&self, value: T) {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: winning the exchange gives this thread exclusive access;
            // no reader touches the cell before READY.
            unsafe { (*self.value.get()).write(value) };
            self.state.store(READY, Ordering::Release);
        }
    }

    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) == READY {
            // SAFETY: READY means the value was fully written and is immutable.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }
}

/// A value handed out mutably exactly once: the constructor's scratch
/// buffers live here, in zeroed .bss, instead of on the stack. Every 4 KiB
/// of a stack frame costs a stack-probe page fault in every process that
/// starts; an untouched .bss page costs nothing.
#[repr(C)] // the flag first: next to the other small statics, not 20 KiB on
pub struct ClaimOnce<T> {
    claimed: AtomicU8,
    value: UnsafeCell<T>,
}

// SAFETY: only the one caller that wins the swap ever gets a reference.
unsafe impl<T: Send> Sync for ClaimOnce<T> {}

impl<T> ClaimOnce<T> {
    pub const fn new(value: T) -> Self {
        ClaimOnce {
            claimed: AtomicU8::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, the first time only.
    // A `&mut` from `&self` is this type's purpose: the swap makes it unique.
    #[allow(clippy::mut_from_ref)]
    pub fn claim(&'static self) -> Option<&'static mut T> {
        if self.claimed.swap(1, Ordering::AcqRel) != 0 {
            return None;
        }
        // SAFETY: the swap above succeeds for exactly one caller, so this
        // mutable reference is unique for the rest of the program.
        Some(unsafe { &mut *self.value.get() })
    }
}
