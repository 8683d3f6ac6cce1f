//! Compiles the `attach` command's BPF programs (`bpf/keepalive.bpf.c`) with
//! clang into `$OUT_DIR/keepalive.bpf.o`, which the CLI embeds.
//!
//! Without clang or the libbpf headers the CLI still builds: the object is
//! left empty, `KEEPALIVE_SHIM_BPF_MISSING` says why, and `attach` prints
//! that reason and how to get a full build. `CLANG` names another compiler.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = "bpf/keepalive.bpf.c";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-env-changed=CLANG");
    // Cargo always sets OUT_DIR for a build script.
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let object = out_dir.join("keepalive.bpf.o");
    let missing = match compile(&object) {
        Ok(()) => String::new(),
        Err(why) => {
            println!("cargo:warning=keepalive-shim attach is built without its BPF program: {why}");
            if let Err(e) = fs::write(&object, b"") {
                // The CLI embeds this file: without it nothing can build.
                println!("cargo:warning=cannot write {}: {e}", object.display());
                std::process::exit(1);
            }
            // A path that never exists: cargo then runs this script on every
            // build, so installing clang and rebuilding is enough.
            println!(
                "cargo:rerun-if-changed={}",
                out_dir.join("retry-until-clang-works").display()
            );
            why
        }
    };
    println!("cargo:rustc-env=KEEPALIVE_SHIM_BPF_MISSING={missing}");
}

fn compile(object: &Path) -> Result<(), String> {
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let headers = ["/usr/include/bpf/bpf_helpers.h", "/usr/include/linux/bpf.h"];
    if let Some(h) = headers.iter().find(|h| !Path::new(h).exists()) {
        return Err(format!("{h} is missing (package libbpf-dev)"));
    }
    let mut cmd = Command::new(&clang);
    // The BPF target has no multiarch include path of its own: asm/types.h
    // lives under a triplet directory on Debian and Ubuntu. Any will do (the
    // BPF programs use only fixed-width types), so a cross build for
    // another architecture uses the host's.
    if let Some(dir) = multiarch_include() {
        cmd.arg("-I").arg(dir);
    }
    // BPF code runs in the target's kernel: its byte order, not the host's.
    let bpf = match env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() {
        Ok("big") => "bpfeb",
        _ => "bpfel",
    };
    cmd.args([
        "-O2", "-g", "-target", bpf, "-Wall", "-Werror", "-c", SOURCE, "-o",
    ])
    .arg(object);
    match cmd.output() {
        Err(e) => Err(format!("cannot run {clang}: {e}")),
        Ok(out) if !out.status.success() => Err(format!(
            "{clang} failed on {SOURCE}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )),
        Ok(_) => Ok(()),
    }
}

fn multiarch_include() -> Option<PathBuf> {
    let triplet = |var: &str| {
        let t = env::var(var).ok()?;
        let mut parts = t.split('-');
        let arch = parts.next()?;
        let env_ = parts.next_back()?;
        Some(format!("{arch}-linux-{env_}").replace("-linux-musl", "-linux-gnu"))
    };
    let candidates = [triplet("TARGET"), triplet("HOST")];
    let named = candidates
        .into_iter()
        .flatten()
        .map(|t| PathBuf::from("/usr/include").join(t));
    let any = fs::read_dir("/usr/include")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path());
    named
        .chain(any)
        .find(|dir| dir.join("asm/types.h").is_file())
}
