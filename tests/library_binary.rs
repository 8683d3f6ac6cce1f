//! Properties of the built library that the build must guarantee. Run after
//! `cargo build --release` (scripts/test.sh does that first).
// A test crate: a panic is how a test fails, and its indexing and arithmetic
// work on small values the test chose. (clippy.toml relaxes `#[test]`
// functions only; these cover the helpers too.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::path::PathBuf;
use std::process::Command;

fn library() -> PathBuf {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/release/libkeepalive_shim.so"
    ));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release` first",
        path.display()
    );
    path
}

fn tool(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .arg(library())
        .output()
        .unwrap_or_else(|e| panic!("{cmd} (binutils) is needed: {e}"));
    assert!(out.status.success(), "{cmd} {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// With `panic = "abort"` a panic would kill the host. The library is built
/// with LTO, so if no code path can panic, the panic handler and every
/// `core::panicking` function are dropped. Their absence from the symbol
/// table (kept: the release profile strips debug info only) is the proof.
#[test]
fn library_has_no_panic_path() {
    let symbols = tool("nm", &["--demangle"]);
    assert!(
        symbols.lines().count() > 10,
        "the symbol table is missing; the check would prove nothing"
    );
    let panicky: Vec<&str> = symbols
        .lines()
        .filter(|l| l.contains("panic") || l.contains("rust_begin_unwind"))
        .collect();
    assert!(
        panicky.is_empty(),
        "panic machinery in the library: {panicky:#?}"
    );
    // The panic handler is the only caller of abort().
    let imports = tool("nm", &["-D", "--undefined-only"]);
    assert!(
        !imports.contains(" abort"),
        "abort() is imported: a panic path survived"
    );
}

#[test]
fn library_exports_only_the_hooks() {
    let exports = tool("nm", &["-D", "--defined-only"]);
    let mut names: Vec<&str> = exports
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "accept",
            "accept4",
            "close",
            "connect",
            "getsockopt",
            "listen",
            "sendmmsg",
            "sendmsg",
            "sendto",
            "setsockopt",
            "socket"
        ]
    );
}

/// libc only: no libgcc_s (no unwinder), no libdl.so.2 (`dlsym` is a weak
/// reference, see src/sys.rs): every extra library costs every exec.
#[test]
fn library_needs_only_libc() {
    let dynamic = tool("readelf", &["-d"]);
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1))
        .map(|l| l.trim_end_matches(']'))
        .collect();
    assert_eq!(needed, ["libc.so.6"]);
}

/// The newest glibc symbol version the library needs. A host whose glibc is
/// older than this does not start at all, so it may only go down. RHEL 8
/// (glibc 2.28) is the oldest target.
const GLIBC_FLOOR: (u32, u32) = (2, 16);

#[test]
fn library_loads_on_old_glibc() {
    let table = tool("objdump", &["-T"]);
    let newest = table
        .split(|c: char| c == '(' || c == ')' || c.is_whitespace())
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .max()
        .expect("the library imports versioned glibc symbols");
    assert!(
        newest <= GLIBC_FLOOR,
        "the library now needs GLIBC_{}.{} (recorded floor GLIBC_{}.{})",
        newest.0,
        newest.1,
        GLIBC_FLOOR.0,
        GLIBC_FLOOR.1
    );
}

#[test]
fn library_is_small() {
    let size = std::fs::metadata(library()).unwrap().len();
    assert!(size < 100 * 1024, "library is {size} bytes");
}
