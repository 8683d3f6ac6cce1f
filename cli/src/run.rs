//! `keepalive-shim run [FLAGS] -- CMD [ARGS...]`: set the environment, put
//! the library first in `LD_PRELOAD`, and `exec` CMD so that its exit status
//! and signals are the wrapper's own.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::ArgMatches;
use keepalive_shim_config::{setting, Key, Value, SETTINGS};

pub const LIBRARY_FILE: &str = "libkeepalive_shim.so";

pub fn run(m: &ArgMatches) -> ExitCode {
    let library = match find_library() {
        Ok(path) => path,
        Err(msg) => {
            eprintln!("keepalive-shim: {msg}");
            return ExitCode::from(2);
        }
    };
    let mut argv = m
        .get_many::<OsString>("command")
        .into_iter()
        .flatten()
        .cloned();
    let Some(program) = argv.next() else {
        eprintln!("keepalive-shim: no command given");
        return ExitCode::from(2);
    };
    let mut cmd = Command::new(&program);
    cmd.args(argv);
    for s in SETTINGS {
        if let Some(value) = m.get_one::<String>(s.var) {
            cmd.env(s.var, value);
        }
    }
    cmd.env(
        "LD_PRELOAD",
        preload_with(&library, std::env::var_os("LD_PRELOAD")),
    );
    crate::sys::keep_inherited_sigpipe(&mut cmd);
    let err = cmd.exec();
    eprintln!(
        "keepalive-shim: cannot run {}: {err}",
        program.to_string_lossy()
    );
    ExitCode::from(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}

/// Debian's multiarch directory name for this architecture: the .deb puts
/// the library in `/usr/lib/<this>/`, where secure-mode preloading (setuid
/// programs, `/etc/ld.so.preload`) finds it.
const MULTIARCH: &str = if cfg!(target_arch = "aarch64") {
    "aarch64-linux-gnu"
} else {
    "x86_64-linux-gnu"
};

/// `KEEPALIVE_SHIM_LIBRARY`, then beside this executable, then under
/// `../lib/`: directly (a tarball unpacked under a prefix), in the multiarch
/// directory (the .deb), or in `keepalive-shim/` (the Python wheel, whose
/// data lands in the virtualenv's `lib/keepalive-shim/`). Never the current
/// directory.
fn find_library() -> Result<PathBuf, String> {
    let var = setting(Key::Library).var;
    if let Some(path) = std::env::var_os(var) {
        if Value::parse(setting(Key::Library).kind, path.as_bytes()).is_none() {
            return Err(format!("{var} must be an absolute path, got {path:?}"));
        }
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{var}={} does not exist", path.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let candidates = [
        dir.join(LIBRARY_FILE),
        dir.join("../lib").join(LIBRARY_FILE),
        dir.join("../lib").join(MULTIARCH).join(LIBRARY_FILE),
        dir.join("../lib/keepalive-shim").join(LIBRARY_FILE),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
        .ok_or_else(|| {
            let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            format!(
                "cannot find {LIBRARY_FILE} (tried {}); set {var}",
                tried.join(", ")
            )
        })
}

/// `library` first, then the existing entries (ld.so separates them with
/// colons or spaces), without a second copy of the library: the same file,
/// or another copy of it (an image's `ENV LD_PRELOAD=/usr/local/lib/...`
/// while this command comes from the .deb or a wheel), which would hook
/// every call twice and write every line twice.
pub fn preload_with(library: &Path, existing: Option<OsString>) -> OsString {
    let ours = library.as_os_str().as_bytes();
    let same_file = |entry: &[u8]| {
        entry == ours
            || Path::new(OsStr::from_bytes(entry)).file_name() == library.file_name()
            || Path::new(OsStr::from_bytes(entry))
                .canonicalize()
                .is_ok_and(|p| library.canonicalize().is_ok_and(|l| l == p))
    };
    let mut out = ours.to_vec();
    let existing = existing.map(OsStringExt::into_vec).unwrap_or_default();
    for entry in existing.split(|&b| b == b':' || b == b' ' || b == b'\t') {
        if entry.is_empty() || same_file(entry) {
            continue;
        }
        out.push(b':');
        out.extend_from_slice(entry);
    }
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(existing: Option<&str>) -> String {
        preload_with(
            Path::new("/opt/ks/libkeepalive_shim.so"),
            existing.map(OsString::from),
        )
        .into_string()
        .unwrap()
    }

    #[test]
    fn preload_list() {
        assert_eq!(pre(None), "/opt/ks/libkeepalive_shim.so");
        assert_eq!(pre(Some("")), "/opt/ks/libkeepalive_shim.so");
        assert_eq!(pre(Some("/a.so")), "/opt/ks/libkeepalive_shim.so:/a.so");
        assert_eq!(
            pre(Some("/a.so /opt/ks/libkeepalive_shim.so:/b.so")),
            "/opt/ks/libkeepalive_shim.so:/a.so:/b.so"
        );
        // Another copy of the library, under another directory.
        assert_eq!(
            pre(Some("/usr/local/lib/libkeepalive_shim.so:/b.so")),
            "/opt/ks/libkeepalive_shim.so:/b.so"
        );
    }
}
