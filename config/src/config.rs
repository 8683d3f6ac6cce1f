//! The effective configuration, and where each of its values came from.

use crate::filter::{Decision, Filters, RuleList};
use crate::net::SockAddr;
use crate::settings::{Key, Level, Mode, UserTimeout, SETTINGS};
use crate::value::{ProgramList, Value};

/// The number of settings.
pub(crate) const N: usize = SETTINGS.len();

/// Where an effective value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    /// An environment variable: the setting's own or another tool's.
    Env(&'static str),
    /// A line of the config file.
    File(u32),
}

/// The effective configuration.
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    pub enabled: bool,
    pub idle_s: u32,
    pub interval_s: u32,
    pub count: u32,
    pub user_timeout: UserTimeout,
    pub mode: Mode,
    pub include: RuleList,
    pub exclude: RuleList,
    pub programs: ProgramList<'a>,
    pub log_level: Level,
    pub log_file: Option<&'a [u8]>,
    /// The config file that was read, if any.
    pub config_file: Option<&'a [u8]>,
    pub library: Option<&'a [u8]>,
    pub(crate) sources: [Source; N],
    /// Per setting, the first value that was rejected, and where it was.
    pub(crate) rejected: [Option<(Source, &'a [u8])>; N],
}

impl<'a> Config<'a> {
    /// Every setting at its default, parsed from the table.
    pub fn defaults() -> Config<'a> {
        let mut c = Config {
            enabled: true,
            idle_s: 0,
            interval_s: 0,
            count: 0,
            user_timeout: UserTimeout::Off,
            mode: Mode::Respect,
            include: RuleList::EMPTY,
            exclude: RuleList::EMPTY,
            programs: ProgramList::EMPTY,
            log_level: Level::Warn,
            log_file: None,
            config_file: None,
            library: None,
            sources: [Source::Default; N],
            rejected: [None; N],
        };
        for s in SETTINGS {
            // Every non-empty default parses (a test checks it).
            if let Some(v) = Value::parse(s.kind, s.default.as_bytes()) {
                c.set(s.key, v);
            }
        }
        c
    }

    pub(crate) fn set(&mut self, key: Key, value: Value<'a>) {
        match (key, value) {
            (Key::Enabled, Value::Switch(on)) => self.enabled = on,
            (Key::Idle, Value::Seconds(s)) => self.idle_s = s,
            (Key::Interval, Value::Seconds(s)) => self.interval_s = s,
            (Key::Count, Value::Number(n)) => self.count = n,
            (Key::UserTimeout, Value::UserTimeout(t)) => self.user_timeout = t,
            (Key::Mode, Value::Mode(m)) => self.mode = m,
            (Key::Include, Value::Destinations(l)) => self.include = l,
            (Key::Exclude, Value::Destinations(l)) => self.exclude = l,
            (Key::Programs, Value::Programs(p)) => self.programs = p,
            (Key::LogLevel, Value::Level(l)) => self.log_level = l,
            (Key::LogFile, Value::Path(p)) => self.log_file = Some(p),
            (Key::ConfigFile, Value::Path(p)) => self.config_file = Some(p),
            (Key::Library, Value::Path(p)) => self.library = Some(p),
            _ => {}
        }
    }

    /// Where `key`'s effective value came from.
    pub fn source(&self, key: Key) -> Source {
        self.sources
            .get(key_index(key))
            .copied()
            .unwrap_or(Source::Default)
    }

    /// The first value of `key` that was not valid, and where it was: the
    /// effective value then came from a later source (or the default).
    pub fn rejected(&self, key: Key) -> Option<(Source, &'a [u8])> {
        self.rejected.get(key_index(key)).copied().flatten()
    }

    /// True if `key` holds a list with an invalid entry: it applies to
    /// nothing (no destination, or no program).
    pub fn is_invalid_list(&self, key: Key) -> bool {
        match key {
            Key::Include => self.include.is_invalid(),
            Key::Exclude => self.exclude.is_invalid(),
            Key::Programs => self.programs.is_invalid(),
            _ => false,
        }
    }

    /// `TCP_USER_TIMEOUT` in milliseconds, or `None` when it is off. `auto`
    /// is (idle + interval x count) s from the effective values, capped at
    /// the kernel's maximum.
    pub fn user_timeout_ms(&self) -> Option<u32> {
        match self.user_timeout {
            UserTimeout::Off => None,
            UserTimeout::Millis(ms) => Some(ms),
            UserTimeout::Auto => Some(UserTimeout::auto_ms(
                self.idle_s,
                self.interval_s,
                self.count,
            )),
        }
    }

    /// Worst-case seconds from the last data to a dead idle peer being
    /// detected by keepalive probes: idle + interval x count.
    pub fn detection_s(&self) -> u64 {
        u64::from(self.interval_s)
            .saturating_mul(u64::from(self.count))
            .saturating_add(u64::from(self.idle_s))
    }

    /// The destination filters. An invalid `KEEPALIVE_SHIM_PROGRAMS` makes
    /// them invalid too: the library stays armed (so that its warning is
    /// seen) but applies to nothing.
    pub fn filters(&self) -> Filters {
        let include = if self.programs.is_invalid() {
            RuleList::INVALID
        } else {
            self.include
        };
        Filters {
            include,
            exclude: self.exclude,
        }
    }

    /// True if destination filters are set: decisions wait for `connect()`.
    pub fn has_filters(&self) -> bool {
        self.filters().is_set()
    }

    /// Whether a connection to `dest` (a server: its local address) gets
    /// the options.
    pub fn decide(&self, dest: &SockAddr) -> Decision {
        self.filters().decide(dest)
    }

    /// Whether the library arms its hooks in a program known by these
    /// names (basenames of the executable and of argv[0]). An invalid list
    /// arms them everywhere, only to warn: [`Config::filters`] then applies
    /// to no socket.
    pub fn program_allowed(&self, names: &[&[u8]]) -> bool {
        let allowed = self.programs.names();
        self.programs.is_invalid()
            || allowed.is_empty()
            || allowed.iter().any(|a| names.contains(a))
    }
}

pub(crate) fn key_index(key: Key) -> usize {
    SETTINGS.iter().position(|s| s.key == key).unwrap_or(0)
}
