//! The command's few direct libc calls, each with its `// SAFETY:` reason
//! (everything else goes through safe wrappers: std, rustix, aya).
//!
//! `keepalive-shim run` must hand the command the signal dispositions it
//! was given. Rust's runtime sets SIGPIPE to ignored before `main`, and
//! `exec` through `std::process::Command` resets it to the default, so a
//! command started with SIGPIPE ignored (systemd does that for services)
//! would die of SIGPIPE where it expects EPIPE. The disposition is read in
//! a constructor, before the runtime changes it, and put back just before
//! `exec`.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

static SIGPIPE_IGNORED_AT_START: AtomicBool = AtomicBool::new(false);

extern "C" fn read_sigpipe_disposition() {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `old`,
    // a zeroed, writable `struct sigaction`.
    let rc = unsafe { libc::sigaction(libc::SIGPIPE, std::ptr::null(), old.as_mut_ptr()) };
    // SAFETY: zeroed, then filled by the kernel when rc == 0.
    let ignored = rc == 0 && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN;
    SIGPIPE_IGNORED_AT_START.store(ignored, Ordering::Relaxed);
}

// Runs before Rust's runtime sets SIGPIPE to ignored.
#[used]
#[link_section = ".init_array"]
static READ_SIGPIPE: extern "C" fn() = read_sigpipe_disposition;

/// Makes `cmd`'s `exec` keep SIGPIPE ignored if it was when this process
/// started (std resets it to the default first).
pub fn keep_inherited_sigpipe(cmd: &mut Command) {
    if !SIGPIPE_IGNORED_AT_START.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: the closure runs in this process right before execve (no
    // fork: `exec` replaces this process) and only calls signal(2), which
    // is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            Ok(())
        });
    }
}
