//! Finding the cgroup v2 directory `attach` works on: the v2 mount (from
//! `/proc/self/mountinfo`, wherever it is: `/sys/fs/cgroup` on a unified
//! host, `/sys/fs/cgroup/unified` on a hybrid one), and a target given as a
//! path, a systemd unit or a process.

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use procfs::process::Process;

/// `statfs` f_type of cgroup2 (linux/magic.h).
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// What the user named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A cgroup directory: absolute, or relative to the v2 mount (as
    /// `/proc/PID/cgroup` prints it, leading `/` and all).
    Path(PathBuf),
    /// A systemd unit, e.g. `worker.service`.
    Unit(String),
    /// The cgroup of a running process.
    Pid(i32),
}

/// The mount point of the cgroup v2 hierarchy.
pub fn v2_mount() -> Result<PathBuf, String> {
    let infos = Process::myself()
        .and_then(|p| p.mountinfo())
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    infos
        .into_iter()
        .find(|m| m.fs_type == "cgroup2")
        .map(|m| m.mount_point)
        .ok_or_else(|| {
            "no cgroup v2 hierarchy is mounted (no cgroup2 line in /proc/self/mountinfo); \
             attach needs one: boot with systemd.unified_cgroup_hierarchy=1, or mount it, \
             e.g. mount -t cgroup2 none /sys/fs/cgroup/unified"
                .to_owned()
        })
}

/// The v2 path of a process's cgroup, relative to the mount (`/` for the
/// root cgroup).
pub fn of_pid(pid: i32) -> Result<String, String> {
    let groups = Process::new(pid)
        .and_then(|p| p.cgroups())
        .map_err(|e| format!("cannot read /proc/{pid}/cgroup: {e}"))?;
    groups
        .into_iter()
        .find(|g| g.hierarchy == 0 && g.controllers.is_empty())
        .map(|g| g.pathname)
        .ok_or_else(|| format!("process {pid} has no cgroup v2 entry in /proc/{pid}/cgroup"))
}

/// The cgroup systemd created for `unit`.
fn of_unit(unit: &str) -> Result<String, String> {
    let out = Command::new("systemctl")
        .args(["show", "--property=ControlGroup", "--value", "--", unit])
        .output()
        .map_err(|e| format!("cannot run systemctl to find the cgroup of {unit}: {e}"))?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        return Err(format!(
            "systemctl show {unit} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if path.is_empty() {
        return Err(format!(
            "{unit} has no cgroup (is it running? systemctl status {unit})"
        ));
    }
    Ok(path)
}

/// Resolves `target` to an existing cgroup v2 directory under `mount`.
pub fn resolve(target: &Target, mount: &Path) -> Result<PathBuf, String> {
    let (relative, what) = match target {
        Target::Path(p) if p.starts_with(mount) => {
            return check_dir(p.clone(), mount, &p.display().to_string())
        }
        Target::Path(p) => (p.display().to_string(), p.display().to_string()),
        Target::Unit(u) => (of_unit(u)?, format!("{u}'s cgroup")),
        Target::Pid(pid) => {
            let rel = of_pid(*pid)?;
            if rel == "/" {
                return Err(format!(
                    "process {pid} is in the root cgroup: attaching there would cover every \
                     process of the host; to mean that, say --cgroup /"
                ));
            }
            (rel, format!("the cgroup of process {pid}"))
        }
    };
    let mut path = mount.to_path_buf();
    for c in Path::new(&relative).components() {
        match c {
            Component::Normal(part) => path.push(part),
            Component::RootDir | Component::CurDir => {}
            _ => return Err(format!("{relative}: '..' is not allowed in a cgroup path")),
        }
    }
    check_dir(path, mount, &what)
}

fn check_dir(path: PathBuf, mount: &Path, what: &str) -> Result<PathBuf, String> {
    let path = path
        .canonicalize()
        .map_err(|e| format!("{what}: no such cgroup ({}: {e})", path.display()))?;
    if !path.starts_with(mount) {
        return Err(format!(
            "{what}: {} is not under the cgroup v2 mount {}",
            path.display(),
            mount.display()
        ));
    }
    let fs = rustix::fs::statfs(&path).map_err(|e| format!("statfs {}: {e}", path.display()))?;
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    if fs.f_type as u64 != CGROUP2_SUPER_MAGIC || !path.join("cgroup.procs").is_file() {
        return Err(format!(
            "{what}: {} is not a cgroup v2 directory",
            path.display()
        ));
    }
    Ok(path)
}

/// The processes of `dir` and of every cgroup below it. Processes that
/// move or exit meanwhile are the caller's concern.
pub fn procs_recursive(dir: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(text) = fs::read_to_string(d.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        if let Ok(entries) = fs::read_dir(&d) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_and_own_cgroup() {
        // Every Linux this runs on has a v2 hierarchy somewhere, or says
        // clearly that it has none.
        let Ok(mount) = v2_mount() else { return };
        let me = of_pid(std::process::id() as i32).unwrap();
        assert!(me.starts_with('/'), "{me}");
        let dir = resolve(&Target::Path(PathBuf::from(&me)), &mount).unwrap();
        assert!(dir.starts_with(&mount));
        assert!(procs_recursive(&dir).contains(&(std::process::id() as i32)));
    }

    #[test]
    fn rejects_outside_paths() {
        let Ok(mount) = v2_mount() else { return };
        let err = resolve(&Target::Path("/../..".into()), &mount).unwrap_err();
        assert!(err.contains("'..'"), "{err}");
        let err = resolve(&Target::Path("/no-such-cgroup-here".into()), &mount).unwrap_err();
        assert!(err.contains("no such cgroup"), "{err}");
        let err = resolve(&Target::Pid(i32::MAX), &mount).unwrap_err();
        assert!(err.contains("cannot read /proc/"), "{err}");
    }
}
