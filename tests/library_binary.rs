//! Properties of the built library that the build must guarantee. Run after
//! `scripts/build.sh` (scripts/test.sh does that first), which puts the
//! library linked against glibc 2.17's stubs at `target/release/`.
//! `KEEPALIVE_SHIM_TEST_LIBRARY=/path/libkeepalive_shim.so` checks another
//! build (scripts/test-packages.sh checks each packaged library, both
//! architectures).
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
    let path = match std::env::var_os("KEEPALIVE_SHIM_TEST_LIBRARY") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/release/libkeepalive_shim.so"
        )),
    };
    assert!(
        path.is_file(),
        "{} is missing: run `scripts/build.sh` first",
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
            "dlopen",
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

/// The oldest glibc the library must load in: 2.17 (RHEL 7, and the first
/// glibc for aarch64). A host whose glibc is older than a version the
/// library requires does not start at all.
const GLIBC_FLOOR: (u32, u32) = (2, 17);

/// `GLIBC_2.17` -> (2, 17).
fn glibc_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v
        .strip_prefix("GLIBC_")?
        .split('.')
        .map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

/// The dynamic symbols: (binding, undefined, name, version if any).
fn dynamic_symbols() -> Vec<(String, bool, String, Option<String>)> {
    tool("readelf", &["-W", "--dyn-syms"])
        .lines()
        .filter_map(|l| {
            // Num: Value Size Type Bind Vis Ndx Name [(version index)]
            let f: Vec<&str> = l.split_whitespace().collect();
            let (bind, ndx, name) = (f.get(4)?, f.get(6)?, f.get(7)?);
            if !f.first()?.ends_with(':') || name.is_empty() {
                return None;
            }
            let (name, version) = match name.split_once('@') {
                Some((n, v)) => (n, Some(v.trim_start_matches('@').to_owned())),
                None => (*name, None),
            };
            Some((bind.to_string(), *ndx == "UND", name.to_owned(), version))
        })
        .collect()
}

#[test]
fn library_loads_on_old_glibc() {
    let symbols = dynamic_symbols();
    let versions: Vec<(u32, u32)> = symbols
        .iter()
        .filter_map(|(_, _, _, v)| glibc_version(v.as_deref()?))
        .collect();
    assert!(
        !versions.is_empty(),
        "the library imports no versioned glibc symbol: is readelf working?"
    );
    let newest = versions.iter().max().copied().unwrap_or_default();
    assert!(
        newest <= GLIBC_FLOOR,
        "the library now needs GLIBC_{}.{} (floor GLIBC_{}.{})",
        newest.0,
        newest.1,
        GLIBC_FLOOR.0,
        GLIBC_FLOOR.1
    );
}

/// glibc before 2.30 aborts the load (exit 127, "relocation error ...
/// with link time reference") when a weak undefined symbol carries a
/// version that the named file does not define, weak or not: the version
/// numbers alone cannot show it. A weak reference must therefore be
/// unversioned, or one that the floor's libc.so.6 itself defines.
/// `__cxa_finalize` (added by the toolchain) has been in libc.so.6 since
/// its first version on each architecture; `dlsym` only moved there in
/// 2.34, so `dlsym@GLIBC_2.2.5` fails on 2.17 to 2.29.
#[test]
fn weak_references_load_on_old_glibc() {
    let defined_by_floor_libc = [
        ("__cxa_finalize", "GLIBC_2.2.5"), // x86_64's base version
        ("__cxa_finalize", "GLIBC_2.17"),  // aarch64's base version
    ];
    let bad: Vec<String> = dynamic_symbols()
        .into_iter()
        .filter(|(bind, und, _, _)| bind == "WEAK" && *und)
        .filter_map(|(_, _, name, version)| {
            let version = version?;
            (!defined_by_floor_libc.contains(&(name.as_str(), version.as_str())))
                .then(|| format!("{name}@{version}"))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "weak versioned references that glibc < 2.30 cannot load: {bad:?} \
         (link against glibc 2.17's stubs: scripts/build.sh)"
    );
}

#[test]
fn library_is_small() {
    let size = std::fs::metadata(library()).unwrap().len();
    // ~75 KiB of code (11 hooks, the RTLD_DEEPBIND check, the config
    // parser) plus page alignment; a jump past 128 KiB means something
    // (an unwinder, a formatting machinery) crept in.
    assert!(size < 128 * 1024, "library is {size} bytes");
}
