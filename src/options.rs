//! The socket options the shim manages (defined once, in the config crate,
//! for the library and the command), and small sets of them.

pub use keepalive_shim_config::Opt;

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
