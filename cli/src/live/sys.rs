//! Every system call `status` and `apply` make on another process's
//! sockets, through rustix (safe wrappers: no `unsafe` here or elsewhere in
//! the CLI).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::net::sockopt;
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags};

use super::{Opt, Options};

/// `pidfd_open(pid, 0)`: a handle that stays bound to this process even if
/// the PID is reused. ESRCH: no such process.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc_esrch()))?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
}

/// `pidfd_getfd(pidfd, fd, 0)`: our own descriptor for the process's `fd`
/// (Linux 5.6+; needs PTRACE_MODE_ATTACH_REALCREDS over the process). The
/// process is not stopped or otherwise disturbed.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: i32) -> io::Result<OwnedFd> {
    Ok(rustix::process::pidfd_getfd(
        pidfd,
        fd,
        PidfdGetfdFlags::empty(),
    )?)
}

/// The inode of an open file (a socket's is what sock_diag reports).
pub fn inode(fd: impl AsFd) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_ino)
}

/// (st_dev, st_ino) of a path: identifies a namespace file like
/// `/proc/PID/ns/net`.
pub fn file_id(path: &str) -> io::Result<(u64, u64)> {
    let st = rustix::fs::stat(path)?;
    Ok((st.st_dev, st.st_ino))
}

/// The socket descriptors of process `pid` as `(fd, socket inode)`, from
/// `/proc/PID/fd`: one `readlinkat` per descriptor, as `ss -p` does (the
/// procfs crate also opens and stats each one, 4 system calls, which
/// dominates with thousands of connections). Needs ptrace read access.
pub fn socket_fds(pid: i32) -> io::Result<Vec<(i32, u64)>> {
    use rustix::fs::{Mode, OFlags};
    let dir = rustix::fs::open(
        format!("/proc/{pid}/fd"),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    let mut link = Vec::with_capacity(64);
    for entry in rustix::fs::Dir::read_from(&dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(fd) = name.to_str().ok().and_then(|n| n.parse::<i32>().ok()) else {
            continue; // "." and ".."
        };
        link = match rustix::fs::readlinkat(&dir, name, std::mem::take(&mut link)) {
            Ok(l) => l.into_bytes(),
            Err(_) => continue, // closed meanwhile
        };
        if let Some(inode) = link
            .strip_prefix(b"socket:[")
            .and_then(|rest| rest.strip_suffix(b"]"))
            .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok())
        {
            out.push((fd, inode));
        }
        link.clear();
    }
    Ok(out)
}

/// The five values, one `getsockopt` each.
pub fn read_options(fd: BorrowedFd<'_>) -> io::Result<Options> {
    Ok(Options {
        keepalive: u32::from(sockopt::socket_keepalive(fd)?),
        idle_s: secs(sockopt::tcp_keepidle(fd)?),
        interval_s: secs(sockopt::tcp_keepintvl(fd)?),
        count: sockopt::tcp_keepcnt(fd)?,
        user_timeout_ms: sockopt::tcp_user_timeout(fd)?,
    })
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// One `setsockopt`. `value` is in the option's unit (seconds for idle and
/// interval, ms for the user timeout).
pub fn set_option(fd: BorrowedFd<'_>, opt: Opt, value: u32) -> io::Result<()> {
    let secs = || Duration::from_secs(u64::from(value));
    match opt {
        Opt::KeepAlive => sockopt::set_socket_keepalive(fd, value != 0)?,
        Opt::Idle => sockopt::set_tcp_keepidle(fd, secs())?,
        Opt::Interval => sockopt::set_tcp_keepintvl(fd, secs())?,
        Opt::Count => sockopt::set_tcp_keepcnt(fd, value)?,
        Opt::UserTimeout => sockopt::set_tcp_user_timeout(fd, value)?,
    }
    Ok(())
}

/// `setns(fd, CLONE_NEWNET)` for the calling thread only: sockets it
/// creates afterwards, and what it reads under `/proc/sys/net`, belong to
/// that namespace. Needs CAP_SYS_ADMIN.
pub fn enter_netns(ns: BorrowedFd<'_>) -> io::Result<()> {
    rustix::thread::move_into_link_name_space(
        ns,
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    Ok(())
}

fn libc_esrch() -> i32 {
    rustix::io::Errno::SRCH.raw_os_error()
}
