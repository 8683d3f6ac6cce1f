//! keepalive-shim: an `LD_PRELOAD` library that turns on TCP keepalive (and
//! `TCP_USER_TIMEOUT`) for the TCP sockets of an unmodified program.
//!
//! Layout (read in this order):
//! - [`hooks`]: the exported `socket`, `connect`, `listen`, `accept`,
//!   `accept4`, `setsockopt`, `close`; each is the real call plus one call
//!   into `shim`.
//! - [`shim`]: what happens to a socket: classify, decide, apply, log.
//! - [`load`]: the constructor's work: environment, config file, warnings.
//! - [`plan`]: the configuration as the hooks use it.
//! - [`options`]: the socket options the shim manages.
//! - [`fd_table`]: per-descriptor state, in atomics.
//! - [`log`]: lock-free, allocation-free logging that only writes to the
//!   stderr the process started with, or to its own log file.
//! - [`sys`]: the real libc functions and every FFI call.
//! - [`once`]: the write-once cell that holds the configuration, and the
//!   claim-once cell for the constructor's scratch buffers.
//!
//! The configuration table itself is the `keepalive-shim-config` crate,
//! shared with the `keepalive-shim` command.
//!
//! The library is `no_std` (core + libc): it adds no libgcc_s and almost no
//! start-up cost to every process that loads it. It is built with
//! `panic = "abort"`, so it must never panic; the workspace lints (root
//! `Cargo.toml`) keep panicking constructs out, and a test checks that the
//! release build contains no panic machinery at all.
#![cfg_attr(not(test), no_std)]
// The unit-test binary runs no constructor: the load path is unused there.
#![cfg_attr(test, allow(dead_code))]

mod deepbind;
mod fd_table;
pub mod hooks;
mod load;
mod log;
mod once;
mod options;
mod plan;
mod shim;
mod sys;

/// Runs when the library is loaded, before `main`: resolves the real libc
/// functions and reads the configuration, once.
///
/// It takes no arguments: glibc passes `.init_array` entries argc, argv and
/// envp, but musl passes nothing, so those registers hold garbage there.
/// The environment and the program name come from the `environ` and
/// `program_invocation_name` globals instead, which both libcs set before
/// any constructor runs.
extern "C" fn on_load() {
    // The program's `main` must find errno as the loader left it (a missing
    // config file is ENOENT in here).
    let _errno = sys::ErrnoGuard::save();
    hooks::resolve_real_functions();
    deepbind::resolve_dlopen();
    let env = sys::Environment::initial();
    load::load(env, sys::arg0_name(), sys::secure_execution());
}

// Not in unit-test builds: the test binary is not a preloaded host.
#[cfg(not(test))]
#[used]
#[link_section = ".init_array"]
static LOAD: extern "C" fn() = on_load;

/// At exit: a `RTLD_DEEPBIND` load whose libraries no hooked call came
/// after is still reported.
extern "C" fn on_exit() {
    let _errno = sys::ErrnoGuard::save();
    deepbind::check_pending();
}

#[cfg(not(test))]
#[used]
#[link_section = ".fini_array"]
static EXIT: extern "C" fn() = on_exit;

/// Never reached: the library contains no panicking code, and the release
/// build is checked to contain no reference to this handler. Should that
/// check ever be bypassed, do the least harmful thing available: stop this
/// thread's work without unwinding into the host.
#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    sys::abort_on_impossible_panic()
}
