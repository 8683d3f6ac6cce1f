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

    /// Stores a parsed value; false if its type is not the key's (a table
    /// row whose `Kind` does not fit: a test checks every row). The match
    /// is over every key, so a new key that is not stored anywhere fails
    /// to compile.
    pub(crate) fn set(&mut self, key: Key, value: Value<'a>) -> bool {
        match key {
            Key::Enabled => store(&mut self.enabled, value, |v| match v {
                Value::Switch(on) => Some(on),
                _ => None,
            }),
            Key::Idle => store(&mut self.idle_s, value, Value::seconds),
            Key::Interval => store(&mut self.interval_s, value, Value::seconds),
            Key::Count => store(&mut self.count, value, |v| match v {
                Value::Number(n) => Some(n),
                _ => None,
            }),
            Key::UserTimeout => store(&mut self.user_timeout, value, |v| match v {
                Value::UserTimeout(t) => Some(t),
                _ => None,
            }),
            Key::Mode => store(&mut self.mode, value, |v| match v {
                Value::Mode(m) => Some(m),
                _ => None,
            }),
            Key::Include => store(&mut self.include, value, Value::destinations),
            Key::Exclude => store(&mut self.exclude, value, Value::destinations),
            Key::Programs => store(&mut self.programs, value, |v| match v {
                Value::Programs(p) => Some(p),
                _ => None,
            }),
            Key::LogLevel => store(&mut self.log_level, value, |v| match v {
                Value::Level(l) => Some(l),
                _ => None,
            }),
            Key::LogFile => store(&mut self.log_file, value, Value::path),
            Key::ConfigFile => store(&mut self.config_file, value, Value::path),
            Key::Library => store(&mut self.library, value, Value::path),
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

/// `*field = get(value)` if the value has the field's type.
fn store<'a, T>(field: &mut T, value: Value<'a>, get: impl FnOnce(Value<'a>) -> Option<T>) -> bool {
    match get(value) {
        Some(v) => {
            *field = v;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row's default, and every row's kind, is stored by `set`: a row
    /// added with a kind its field does not take fails here.
    #[test]
    fn every_row_is_stored() {
        for s in SETTINGS {
            let sample: &[u8] = match s.kind {
                crate::settings::Kind::Path => b"/x",
                _ if !s.default.is_empty() => s.default.as_bytes(),
                crate::settings::Kind::Destinations => b"10.0.0.0/8",
                crate::settings::Kind::Programs => b"python3",
                _ => continue,
            };
            let value = Value::parse(s.kind, sample).expect("the sample parses");
            assert!(
                Config::defaults().set(s.key, value),
                "{} is not stored",
                s.var
            );
        }
    }
}
