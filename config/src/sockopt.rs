//! The five socket options keepalive-shim manages: one definition for the
//! preload library and the command (names as `setsockopt(2)`, `tcp(7)` and
//! `socket(7)` give them, and the Linux values of their level and name).

use core::ffi::c_int;

/// One option. The discriminant is its index in [`Opt::ALL`] (the library
/// keeps one bit per option in its per-descriptor state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Opt {
    KeepAlive = 0,
    Idle = 1,
    Interval = 2,
    Count = 3,
    UserTimeout = 4,
}

impl Opt {
    pub const ALL: [Opt; 5] = [
        Opt::KeepAlive,
        Opt::Idle,
        Opt::Interval,
        Opt::Count,
        Opt::UserTimeout,
    ];

    /// `(level, optname)` for `setsockopt`.
    pub fn sockopt(self) -> (c_int, c_int) {
        match self {
            Opt::KeepAlive => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            Opt::Idle => (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
            Opt::Interval => (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
            Opt::Count => (libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
            Opt::UserTimeout => (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
        }
    }

    /// The option a `setsockopt()`/`getsockopt()` call names, if it is one
    /// of the five.
    pub fn from_sockopt(level: c_int, name: c_int) -> Option<Opt> {
        Opt::ALL.into_iter().find(|o| o.sockopt() == (level, name))
    }

    /// Its name, as log lines, `check` and `status` print it.
    pub fn name(self) -> &'static str {
        match self {
            Opt::KeepAlive => "SO_KEEPALIVE",
            Opt::Idle => "TCP_KEEPIDLE",
            Opt::Interval => "TCP_KEEPINTVL",
            Opt::Count => "TCP_KEEPCNT",
            Opt::UserTimeout => "TCP_USER_TIMEOUT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_names_and_sockopts_are_distinct() {
        for (i, opt) in Opt::ALL.into_iter().enumerate() {
            assert_eq!(opt as usize, i);
            let (level, name) = opt.sockopt();
            assert_eq!(Opt::from_sockopt(level, name), Some(opt));
        }
        let mut names = Opt::ALL.map(Opt::name);
        names.sort_unstable();
        assert!(names.windows(2).all(|w| w[0] != w[1]));
    }
}
