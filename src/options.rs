//! The socket options the shim manages, and small sets of them.

use core::ffi::c_int;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

    pub fn from_sockopt(level: c_int, name: c_int) -> Option<Opt> {
        Opt::ALL.into_iter().find(|o| o.sockopt() == (level, name))
    }

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

/// A set of [`Opt`]s, as 5 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OptSet(pub u8);

impl OptSet {
    pub const EMPTY: OptSet = OptSet(0);

    pub fn with(self, o: Opt) -> OptSet {
        OptSet(self.0 | (1 << o as u8))
    }

    pub fn contains(self, o: Opt) -> bool {
        self.0 & (1 << o as u8) != 0
    }

    pub fn without(self, other: OptSet) -> OptSet {
        OptSet(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_has_its_index_and_a_distinct_sockopt() {
        // `Plan::value` and the state word index options by `opt as usize`.
        for (i, opt) in Opt::ALL.into_iter().enumerate() {
            assert_eq!(opt as usize, i);
            assert_eq!(
                Opt::from_sockopt(opt.sockopt().0, opt.sockopt().1),
                Some(opt)
            );
        }
        let set = Opt::ALL.into_iter().fold(OptSet::EMPTY, OptSet::with);
        assert!(Opt::ALL.into_iter().all(|o| set.contains(o)));
        assert!(set.without(set).is_empty());
    }
}
