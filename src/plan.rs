//! The configuration as the hooks use it: fixed at load, read lock-free.

use core::ffi::c_int;

use keepalive_shim_config::{Config, Filters, Level, Mode, SockAddr, UserTimeout};

use crate::once::InitOnce;
use crate::options::{Opt, OptSet};

/// The configuration as the hooks need it, fixed at load.
pub struct Plan {
    /// The value of each [`Opt`], by index; `None`: the shim leaves it alone
    /// (or, for `TCP_USER_TIMEOUT` with `auto_user_timeout`, computes it per
    /// socket).
    values: [Option<c_int>; Opt::ALL.len()],
    /// `KEEPALIVE_SHIM_USER_TIMEOUT=auto`: (idle + interval x count) s from
    /// each socket's effective values.
    pub auto_user_timeout: bool,
    pub mode: Mode,
    filters: Filters,
}

impl Plan {
    pub fn new(c: &Config<'_>) -> Plan {
        let int = |s: u32| c_int::try_from(s).ok();
        let mut values = [None; Opt::ALL.len()];
        for (slot, opt) in values.iter_mut().zip(Opt::ALL) {
            *slot = match opt {
                Opt::KeepAlive => Some(1),
                Opt::Idle => int(c.idle_s),
                Opt::Interval => int(c.interval_s),
                Opt::Count => int(c.count),
                Opt::UserTimeout => match c.user_timeout {
                    UserTimeout::Millis(ms) => int(ms),
                    UserTimeout::Off | UserTimeout::Auto => None,
                },
            };
        }
        Plan {
            values,
            auto_user_timeout: c.user_timeout == UserTimeout::Auto,
            mode: c.mode,
            filters: c.filters(),
        }
    }

    /// The fixed value the shim sets for `opt`, if any.
    pub fn value(&self, opt: Opt) -> Option<c_int> {
        self.values.get(opt as usize).copied().flatten()
    }

    /// Whether accepted connections need a state of their own even where
    /// they just inherit the listener's options: force mode overrides the
    /// program on them, `auto` follows the program's changes, and `info`
    /// logs them.
    pub fn tracks_connections(&self) -> bool {
        self.mode == Mode::Force || self.auto_user_timeout || crate::log::enabled(Level::Info)
    }

    pub fn has_filters(&self) -> bool {
        self.filters.is_set()
    }

    /// Whether the filters let a socket with this address have the options.
    /// An unknown address (not IP) passes only when there are no filters.
    pub fn applies_to(&self, addr: Option<SockAddr>) -> bool {
        match addr {
            None => !self.has_filters(),
            Some(a) => self.filters.decide(&a).applies,
        }
    }

    /// Options the shim must not touch on a socket where the program set `program`.
    pub fn skip(&self, program: OptSet) -> OptSet {
        match self.mode {
            Mode::Respect => program,
            Mode::Force => OptSet::EMPTY,
        }
    }
}

/// Set at load when the shim is on (and the program is allowed); `None`
/// means every call passes straight through.
static PLAN: InitOnce<Plan> = InitOnce::new();

/// The plan, or `None` before load, when the shim is off, or in a program
/// that `KEEPALIVE_SHIM_PROGRAMS` leaves out.
pub fn get() -> Option<&'static Plan> {
    PLAN.get()
}

/// Arms the hooks. Called once, from the constructor.
pub fn set(plan: Plan) {
    PLAN.set(plan);
}

#[cfg(test)]
mod tests {
    use super::*;
    use keepalive_shim_config::resolve_env;

    fn plan(env: &[(&'static str, &'static str)]) -> Plan {
        let c = resolve_env(
            env.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
            &mut |_| {},
        );
        Plan::new(&c)
    }

    #[test]
    fn values_follow_the_configuration_by_option() {
        let p = plan(&[
            ("KEEPALIVE_SHIM_IDLE", "7"),
            ("KEEPALIVE_SHIM_INTERVAL", "3"),
            ("KEEPALIVE_SHIM_COUNT", "4"),
            ("KEEPALIVE_SHIM_USER_TIMEOUT", "2500ms"),
        ]);
        let got: [Option<c_int>; 5] = Opt::ALL.map(|o| p.value(o));
        assert_eq!(got, [Some(1), Some(7), Some(3), Some(4), Some(2500)]);
        assert!(!p.auto_user_timeout);
    }

    #[test]
    fn user_timeout_is_off_by_default_and_auto_is_per_socket() {
        assert_eq!(plan(&[]).value(Opt::UserTimeout), None);
        assert!(!plan(&[]).auto_user_timeout);
        let auto = plan(&[("KEEPALIVE_SHIM_USER_TIMEOUT", "auto")]);
        assert_eq!(auto.value(Opt::UserTimeout), None);
        assert!(auto.auto_user_timeout);
    }

    #[test]
    fn filters_decide_and_unknown_addresses_pass_only_without_filters() {
        assert!(plan(&[]).applies_to(None));
        let f = plan(&[("KEEPALIVE_SHIM_INCLUDE", "10.0.0.0/8")]);
        assert!(!f.applies_to(None));
        let a = |ip: [u8; 4]| {
            Some(SockAddr {
                ip: keepalive_shim_config::Ip::V4(ip),
                port: 80,
            })
        };
        assert!(f.applies_to(a([10, 1, 2, 3])));
        assert!(!f.applies_to(a([192, 168, 0, 1])));
        assert_eq!(
            f.skip(OptSet::EMPTY.with(Opt::Idle)),
            OptSet::EMPTY.with(Opt::Idle)
        );
    }
}
