//! One process as `status` and `apply` see it: a pidfd, its socket
//! descriptors (`/proc/PID/fd`), its network namespace, whether the
//! preload library is mapped (`/proc/PID/maps`).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use procfs::process::{MMapPath, Process};
use procfs::ProcError;
use rustix::io::Errno;

use super::diag::{self, NetnsView};
use super::{sys, ProcessError, Role, SocketInfo};

/// The library's file name starts with this (`libkeepalive_shim.so`).
pub const LIBRARY_NAME: &str = "libkeepalive_shim";

/// A process we hold a pidfd on, and the socket descriptors it had when
/// `/proc/PID/fd` was read.
pub struct Target {
    pub pid: i32,
    pub command: Option<String>,
    /// Without a pidfd, values cannot be read; the error says why.
    pidfd: Result<OwnedFd, ProcessError>,
    proc: Process,
    /// (fd, socket inode), in descriptor order.
    pub socket_fds: Vec<(i32, u64)>,
    /// `(st_dev, st_ino)` of `/proc/PID/ns/net`.
    pub netns: (u64, u64),
}

fn errno_is(e: &io::Error, errno: Errno) -> bool {
    e.raw_os_error() == Some(errno.raw_os_error())
}

fn from_proc(e: ProcError, what: &str) -> ProcessError {
    match e {
        ProcError::PermissionDenied(_) => ProcessError::PermissionDenied(what.to_owned()),
        ProcError::NotFound(_) => ProcessError::Exited,
        other => ProcessError::Other(format!("{what}: {other}")),
    }
}

/// A failed system call on the process, as a process error.
pub fn from_io(e: &io::Error, what: &str) -> ProcessError {
    if errno_is(e, Errno::SRCH) || errno_is(e, Errno::NOENT) {
        ProcessError::Exited
    } else if errno_is(e, Errno::PERM) || errno_is(e, Errno::ACCESS) {
        ProcessError::PermissionDenied(what.to_owned())
    } else {
        ProcessError::Other(format!("{what}: {e}"))
    }
}

/// Why one socket was not duplicated.
pub enum DupError {
    /// The whole process is lost (exited, or no permission).
    Process(ProcessError),
    /// This descriptor was closed, or reused for something else, after
    /// `/proc/PID/fd` was read.
    Gone,
}

impl Target {
    /// Opens `pid`: a pidfd first (it pins the process, so that a reused
    /// PID cannot be mistaken for it later), then `/proc/PID/fd`. On error
    /// the name, if it could be read, comes back too.
    pub fn open(pid: i32) -> Result<Target, (Option<String>, ProcessError)> {
        let pidfd = match sys::pidfd_open(pid) {
            Ok(fd) => Ok(fd),
            Err(e) if errno_is(&e, Errno::SRCH) => return Err((None, ProcessError::NoSuchProcess)),
            // A thread's ID rather than its process's: ENOENT (Linux 6.9+)
            // or EINVAL (before).
            Err(e) if errno_is(&e, Errno::NOENT) || errno_is(&e, Errno::INVAL) => {
                let tgid = Process::new(pid).and_then(|p| p.status()).map(|s| s.tgid);
                let e = match tgid {
                    Ok(tgid) if tgid != pid => ProcessError::Other(format!(
                        "{pid} is a thread of process {tgid}: give the process's PID"
                    )),
                    Err(ProcError::NotFound(_)) => ProcessError::NoSuchProcess,
                    _ => from_io(&e, "pidfd_open"),
                };
                return Err((None, e));
            }
            Err(e) => Err(from_io(&e, "pidfd_open")),
        };
        let proc = match Process::new(pid) {
            Ok(p) => p,
            Err(ProcError::NotFound(_)) => return Err((None, ProcessError::NoSuchProcess)),
            Err(e) => return Err((None, from_proc(e, "/proc/PID"))),
        };
        let command = proc.stat().ok().map(|s| s.comm);
        let netns = match sys::file_id(&format!("/proc/{pid}/ns/net")) {
            Ok(id) => id,
            Err(e) => return Err((command, from_io(&e, "reading /proc/PID/ns/net"))),
        };
        let mut socket_fds = match sys::socket_fds(pid) {
            Ok(fds) => fds,
            Err(e) => return Err((command, from_io(&e, "reading /proc/PID/fd"))),
        };
        socket_fds.sort_unstable();
        Ok(Target {
            pid,
            command,
            pidfd,
            proc,
            socket_fds,
            netns,
        })
    }

    /// Whether `libkeepalive_shim*.so` is mapped; `None` if the maps are
    /// not readable.
    pub fn library_loaded(&self) -> Option<bool> {
        let maps = self.proc.maps().ok()?;
        Some(maps.iter().any(|m| {
            match &m.pathname {
                MMapPath::Path(p) => p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(LIBRARY_NAME)),
                _ => false,
            }
        }))
    }

    /// The process's TCP sockets: its socket descriptors that the
    /// namespace's dump knows, with their role for the filters.
    pub fn tcp_sockets(&self, view: &NetnsView) -> Vec<SocketInfo> {
        self.socket_fds
            .iter()
            .filter_map(|&(fd, inode)| {
                let d = view.sockets.get(&inode)?;
                let role = if d.state == diag::TCP_LISTEN {
                    Role::Listener
                } else if view.is_accepted(&d.local) {
                    Role::Accepted
                } else {
                    Role::Connected
                };
                Some(SocketInfo {
                    fd,
                    inode,
                    local: d.local,
                    peer: d.peer,
                    state: diag::state_name(d.state),
                    role,
                    timer: d.timer,
                })
            })
            .collect()
    }

    /// Our own descriptor for the socket `s` of the process, checked to be
    /// the same socket (same inode) that `/proc/PID/fd` showed.
    pub fn duplicate(&self, s: &SocketInfo) -> Result<OwnedFd, DupError> {
        let pidfd = match &self.pidfd {
            Ok(fd) => fd,
            Err(e) => return Err(DupError::Process(e.clone())),
        };
        let dup = match sys::pidfd_getfd(pidfd.as_fd(), s.fd) {
            Ok(fd) => fd,
            Err(e) if errno_is(&e, Errno::BADF) => return Err(DupError::Gone),
            Err(e) => return Err(DupError::Process(from_io(&e, "pidfd_getfd"))),
        };
        match sys::inode(&dup) {
            Ok(inode) if inode == s.inode => Ok(dup),
            _ => Err(DupError::Gone),
        }
    }
}

/// Namespace views, one dump per namespace however many processes share it.
#[derive(Default)]
pub struct Namespaces {
    own: Option<(u64, u64)>,
    views: HashMap<(u64, u64), Result<Rc<NetnsView>, ProcessError>>,
}

impl Namespaces {
    /// The view of `t`'s namespace: ours is dumped directly, another one
    /// from a thread that enters it (needs CAP_SYS_ADMIN).
    pub fn view(&mut self, t: &Target) -> Result<Rc<NetnsView>, ProcessError> {
        if self.own.is_none() {
            self.own = sys::file_id("/proc/self/ns/net").ok();
        }
        let own = self.own;
        self.views
            .entry(t.netns)
            .or_insert_with(|| {
                let ns = if own == Some(t.netns) {
                    None
                } else {
                    let path = format!("/proc/{}/ns/net", t.pid);
                    Some(File::open(&path).map_err(|e| from_io(&e, "opening /proc/PID/ns/net"))?)
                };
                diag::read_netns(ns)
                    .map(Rc::new)
                    .map_err(|e| from_io(&e, "reading the network namespace's sockets"))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_call_errors_become_process_errors() {
        let e = |errno: Errno| io::Error::from_raw_os_error(errno.raw_os_error());
        assert_eq!(from_io(&e(Errno::SRCH), "x"), ProcessError::Exited);
        assert_eq!(from_io(&e(Errno::NOENT), "x"), ProcessError::Exited);
        assert_eq!(
            from_io(&e(Errno::PERM), "pidfd_getfd"),
            ProcessError::PermissionDenied("pidfd_getfd".into())
        );
        assert_eq!(
            from_io(&e(Errno::ACCESS), "x"),
            ProcessError::PermissionDenied("x".into())
        );
        assert!(
            matches!(from_io(&e(Errno::NOMEM), "x"), ProcessError::Other(m) if m.starts_with("x: "))
        );
    }
}
