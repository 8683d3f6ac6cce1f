//! From `NAME=value` pairs to an effective configuration, with a diagnostic
//! for every value that is not accepted.

use crate::parse::{parse_count, parse_duration_ms, parse_level, parse_switch};
use crate::settings::{setting, setting_by_var, Key, Kind, Level, Setting, UserTimeout};
use crate::settings::{SETTINGS, VAR_PREFIX};
use crate::text::{put_escaped, put_u64, Sink};

/// Where an effective value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    Environment,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Environment => "environment",
        }
    }
}

/// A parsed value of some [`Kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Switch(bool),
    Seconds(u32),
    Number(u32),
    UserTimeout(UserTimeout),
    Level(Level),
    Path(&'a [u8]),
}

impl<'a> Value<'a> {
    /// Parses `v` as a value of `kind`, range included.
    pub fn parse(kind: Kind, v: &'a [u8]) -> Option<Value<'a>> {
        let in_range =
            |n: u64, min: u32, max: u32| u32::try_from(n).ok().filter(|n| (min..=max).contains(n));
        match kind {
            Kind::Switch => parse_switch(v).map(Value::Switch),
            Kind::Level => parse_level(v).map(Value::Level),
            Kind::Number { min, max } => in_range(parse_count(v)?, min, max).map(Value::Number),
            Kind::Seconds { min, max } => {
                let secs = parse_duration_ms(v, false)? / 1000;
                in_range(secs, min, max).map(Value::Seconds)
            }
            Kind::UserTimeout { min_ms, max_ms } => {
                if v.eq_ignore_ascii_case(b"auto") {
                    Some(Value::UserTimeout(UserTimeout::Auto))
                } else if v.eq_ignore_ascii_case(b"off") {
                    Some(Value::UserTimeout(UserTimeout::Off))
                } else {
                    let ms = in_range(parse_duration_ms(v, true)?, min_ms, max_ms)?;
                    Some(Value::UserTimeout(UserTimeout::Millis(ms)))
                }
            }
            Kind::Path => match v {
                [b'/', ..] if v.len() < 4096 => Some(Value::Path(v)),
                _ => None,
            },
        }
    }
}

/// The effective configuration.
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    pub enabled: bool,
    pub idle_s: u32,
    pub interval_s: u32,
    pub count: u32,
    pub user_timeout: UserTimeout,
    pub log_level: Level,
    pub log_file: Option<&'a [u8]>,
    pub library: Option<&'a [u8]>,
    sources: [Source; SETTINGS.len()],
}

impl<'a> Config<'a> {
    /// Every setting at its default, parsed from the table.
    pub fn defaults() -> Config<'a> {
        let mut c = Config {
            enabled: true,
            idle_s: 0,
            interval_s: 0,
            count: 0,
            user_timeout: UserTimeout::Auto,
            log_level: Level::Warn,
            log_file: None,
            library: None,
            sources: [Source::Default; SETTINGS.len()],
        };
        for s in SETTINGS {
            // Every non-empty default parses (a test checks it).
            if let Some(v) = Value::parse(s.kind, s.default.as_bytes()) {
                c.set(s.key, v);
            }
        }
        c
    }

    fn set(&mut self, key: Key, value: Value<'a>) {
        match (key, value) {
            (Key::Enabled, Value::Switch(on)) => self.enabled = on,
            (Key::Idle, Value::Seconds(s)) => self.idle_s = s,
            (Key::Interval, Value::Seconds(s)) => self.interval_s = s,
            (Key::Count, Value::Number(n)) => self.count = n,
            (Key::UserTimeout, Value::UserTimeout(t)) => self.user_timeout = t,
            (Key::LogLevel, Value::Level(l)) => self.log_level = l,
            (Key::LogFile, Value::Path(p)) => self.log_file = Some(p),
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

    /// `TCP_USER_TIMEOUT` in milliseconds, or `None` when it is off. `auto`
    /// is (idle + interval x count) s from the effective values, capped at
    /// the kernel's maximum.
    pub fn user_timeout_ms(&self) -> Option<u32> {
        match self.user_timeout {
            UserTimeout::Off => None,
            UserTimeout::Millis(ms) => Some(ms),
            UserTimeout::Auto => {
                let secs = u64::from(self.interval_s)
                    .saturating_mul(u64::from(self.count))
                    .saturating_add(u64::from(self.idle_s));
                let ms = secs.saturating_mul(1000).min(i32::MAX as u64);
                u32::try_from(ms).ok()
            }
        }
    }

    /// Worst-case seconds from the last data to a dead idle peer being
    /// detected by keepalive probes: idle + interval x count.
    pub fn detection_s(&self) -> u64 {
        u64::from(self.interval_s)
            .saturating_mul(u64::from(self.count))
            .saturating_add(u64::from(self.idle_s))
    }
}

fn key_index(key: Key) -> usize {
    SETTINGS.iter().position(|s| s.key == key).unwrap_or(0)
}

/// Something wrong with the environment. Each is reported once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diagnostic<'a> {
    /// The value is not accepted; the setting keeps its default.
    Invalid {
        setting: &'static Setting,
        value: &'a [u8],
    },
    /// A `KEEPALIVE_SHIM_*` variable that is not a setting: probably a typo.
    Unknown { var: &'a [u8] },
}

impl Diagnostic<'_> {
    /// The message, without a prefix or newline.
    pub fn write(&self, out: &mut impl Sink) {
        match *self {
            Diagnostic::Invalid { setting, value } => {
                out.put(setting.var.as_bytes());
                out.put(b"=\"");
                put_escaped(out, value, 64);
                out.put(b"\" is not valid (accepted: ");
                put_plain(out, setting.accepted);
                out.put(b"); using the default ");
                put_plain(out, setting.default_doc);
            }
            Diagnostic::Unknown { var } => {
                put_escaped(out, var, 64);
                out.put(b" is not a keepalive-shim setting (a typo?); ignored. ");
                out.put(b"Settings: keepalive-shim --help");
            }
        }
    }
}

/// Writes docs text without Markdown backticks.
fn put_plain(out: &mut impl Sink, s: &str) {
    for part in s.as_bytes().split(|&b| b == b'`') {
        out.put(part);
    }
}

/// Writes `key`'s effective value as a user would type it.
pub fn put_value(out: &mut impl Sink, c: &Config<'_>, key: Key) {
    match key {
        Key::Enabled => out.put(if c.enabled { b"on" } else { b"off" }),
        Key::Idle => put_secs(out, c.idle_s),
        Key::Interval => put_secs(out, c.interval_s),
        Key::Count => put_u64(out, u64::from(c.count)),
        Key::UserTimeout => match (c.user_timeout, c.user_timeout_ms()) {
            (UserTimeout::Off, _) | (_, None) => out.put(b"off"),
            (t, Some(ms)) => {
                if t == UserTimeout::Auto {
                    out.put(b"auto = ");
                }
                put_u64(out, u64::from(ms));
                out.put(b" ms");
            }
        },
        Key::LogLevel => out.put(c.log_level.name().as_bytes()),
        Key::LogFile | Key::Library => {
            let path = if key == Key::LogFile {
                c.log_file
            } else {
                c.library
            };
            match path {
                Some(p) => put_escaped(out, p, 4096),
                None => put_plain(out, setting(key).default_doc),
            }
        }
    }
}

fn put_secs(out: &mut impl Sink, s: u32) {
    put_u64(out, u64::from(s));
    out.put(b" s");
}

/// Resolves the configuration from `NAME=value` pairs (the environment).
///
/// As with `getenv`, the first occurrence of a name counts. Each invalid or
/// unknown variable is passed to `report` once; an invalid value leaves that
/// one setting at its default.
pub fn resolve<'a, I>(vars: I, report: &mut dyn FnMut(Diagnostic<'a>)) -> Config<'a>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let mut c = Config::defaults();
    let mut seen = [false; SETTINGS.len()];
    for (name, value) in vars {
        let Some(tail) = name.strip_prefix(VAR_PREFIX.as_bytes()) else {
            continue;
        };
        let Some(s) = setting_by_var(name) else {
            if tail.first() == Some(&b'_') {
                report(Diagnostic::Unknown { var: name });
            }
            continue;
        };
        let index = key_index(s.key);
        match seen.get_mut(index) {
            Some(true) | None => continue,
            Some(first) => *first = true,
        }
        match Value::parse(s.kind, value) {
            Some(v) => {
                c.set(s.key, v);
                if let Some(src) = c.sources.get_mut(index) {
                    *src = Source::Environment;
                }
            }
            None => report(Diagnostic::Invalid { setting: s, value }),
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::LineBuf;
    use std::vec::Vec;

    fn run(env: &[(&'static str, &'static str)]) -> (Config<'static>, Vec<Diagnostic<'static>>) {
        let mut diags = Vec::new();
        let c = resolve(
            env.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
            &mut |d| diags.push(d),
        );
        (c, diags)
    }

    fn message(d: &Diagnostic<'_>) -> std::string::String {
        let mut b = LineBuf::<512>::new();
        d.write(&mut b);
        std::string::String::from_utf8(b.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn table_has_every_key_once_and_defaults_parse() {
        for key in [
            Key::Enabled,
            Key::Idle,
            Key::Interval,
            Key::Count,
            Key::UserTimeout,
            Key::LogLevel,
            Key::LogFile,
            Key::Library,
        ] {
            assert_eq!(
                SETTINGS.iter().filter(|s| s.key == key).count(),
                1,
                "{key:?}"
            );
            assert_eq!(setting(key).key, key);
        }
        for s in SETTINGS {
            assert!(s.var.starts_with(VAR_PREFIX), "{}", s.var);
            if !s.default.is_empty() {
                assert!(
                    Value::parse(s.kind, s.default.as_bytes()).is_some(),
                    "{}",
                    s.var
                );
            }
            // The accepted-range text states the numeric range the parser enforces.
            match s.kind {
                Kind::Seconds { min, max } | Kind::Number { min, max } => {
                    let text = std::format!("{min} to {max}");
                    assert!(s.accepted.starts_with(&text), "{}: {}", s.var, s.accepted);
                }
                Kind::UserTimeout { min_ms, max_ms } => {
                    let text = std::format!("from {min_ms} ms to {max_ms} ms");
                    assert!(s.accepted.contains(&text), "{}: {}", s.var, s.accepted);
                }
                _ => {}
            }
        }
    }

    #[test]
    fn defaults() {
        let (c, d) = run(&[]);
        assert!(d.is_empty());
        assert!(c.enabled);
        assert_eq!((c.idle_s, c.interval_s, c.count), (60, 10, 6));
        assert_eq!(c.user_timeout, UserTimeout::Auto);
        assert_eq!(c.user_timeout_ms(), Some(120_000));
        assert_eq!(c.log_level, Level::Warn);
        assert_eq!(c.log_file, None);
        assert_eq!(c.source(Key::Idle), Source::Default);
    }

    #[test]
    fn every_variable_good_values() {
        let (c, d) = run(&[
            ("KEEPALIVE_SHIM", "off"),
            ("KEEPALIVE_SHIM_IDLE", "2m"),
            ("KEEPALIVE_SHIM_INTERVAL", "7s"),
            ("KEEPALIVE_SHIM_COUNT", "3"),
            ("KEEPALIVE_SHIM_USER_TIMEOUT", "4500ms"),
            ("KEEPALIVE_SHIM_LOG", "debug"),
            ("KEEPALIVE_SHIM_LOG_FILE", "/tmp/ks.log"),
            ("KEEPALIVE_SHIM_LIBRARY", "/opt/ks/libkeepalive_shim.so"),
        ]);
        assert!(d.is_empty(), "{d:?}");
        assert!(!c.enabled);
        assert_eq!((c.idle_s, c.interval_s, c.count), (120, 7, 3));
        assert_eq!(c.user_timeout_ms(), Some(4500));
        assert_eq!(c.log_level, Level::Debug);
        assert_eq!(c.log_file, Some(&b"/tmp/ks.log"[..]));
        assert_eq!(c.library, Some(&b"/opt/ks/libkeepalive_shim.so"[..]));
        for s in SETTINGS {
            assert_eq!(c.source(s.key), Source::Environment, "{}", s.var);
        }
    }

    #[test]
    fn edges_of_ranges() {
        let (c, d) = run(&[
            ("KEEPALIVE_SHIM_IDLE", "1"),
            ("KEEPALIVE_SHIM_INTERVAL", "32767"),
            ("KEEPALIVE_SHIM_COUNT", "127"),
            ("KEEPALIVE_SHIM_USER_TIMEOUT", "1ms"),
        ]);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!((c.idle_s, c.interval_s, c.count), (1, 32767, 127));
        assert_eq!(c.user_timeout_ms(), Some(1));
        let (c, d) = run(&[("KEEPALIVE_SHIM_USER_TIMEOUT", "2147483647ms")]);
        assert!(d.is_empty());
        assert_eq!(c.user_timeout_ms(), Some(i32::MAX as u32));
    }

    #[test]
    fn bad_values_fall_back_one_by_one() {
        let cases: &[(&str, &[&str])] = &[
            ("KEEPALIVE_SHIM", &["", "maybe", "2", "yes"]),
            (
                "KEEPALIVE_SHIM_IDLE",
                &[
                    "",
                    "0",
                    "-1",
                    "32768",
                    "abc",
                    "1500ms",
                    "9999999999999999999999",
                    "10 s",
                    "1.5",
                ],
            ),
            ("KEEPALIVE_SHIM_INTERVAL", &["0", "32768", "x", "1d"]),
            ("KEEPALIVE_SHIM_COUNT", &["0", "128", "-3", "6s", ""]),
            (
                "KEEPALIVE_SHIM_USER_TIMEOUT",
                &["0", "0ms", "2147483648ms", "never", "", "-5"],
            ),
            ("KEEPALIVE_SHIM_LOG", &["", "trace", "verbose"]),
            ("KEEPALIVE_SHIM_LOG_FILE", &["", "relative.log"]),
        ];
        let default = Config::defaults();
        for (var, values) in cases {
            for value in values.iter() {
                let (c, d) = run(&[(var, value), ("KEEPALIVE_SHIM_COUNT_OK_NEIGHBOUR", "1")]);
                let invalid: Vec<_> = d
                    .iter()
                    .filter(|d| matches!(d, Diagnostic::Invalid { .. }))
                    .collect();
                assert_eq!(invalid.len(), 1, "{var}={value:?}: {d:?}");
                let key = setting_by_var(var.as_bytes()).unwrap().key;
                assert_eq!(c.source(key), Source::Default, "{var}={value:?}");
                assert_eq!(c.enabled, default.enabled);
                assert_eq!((c.idle_s, c.interval_s, c.count), (60, 10, 6));
                assert_eq!(c.user_timeout, UserTimeout::Auto);
                assert_eq!(c.log_level, Level::Warn);
                assert_eq!(c.log_file, None);
            }
        }
    }

    #[test]
    fn a_bad_value_does_not_spoil_the_others() {
        let (c, d) = run(&[
            ("KEEPALIVE_SHIM_IDLE", "junk"),
            ("KEEPALIVE_SHIM_INTERVAL", "3"),
            ("KEEPALIVE_SHIM_COUNT", "4"),
        ]);
        assert_eq!(d.len(), 1);
        // auto is computed from the effective values, after the fallback.
        assert_eq!((c.idle_s, c.interval_s, c.count), (60, 3, 4));
        assert_eq!(c.user_timeout_ms(), Some((60 + 3 * 4) * 1000));
    }

    #[test]
    fn warning_text_names_variable_value_and_range() {
        let (_, d) = run(&[("KEEPALIVE_SHIM_IDLE", "0")]);
        assert_eq!(
            message(&d[0]),
            "KEEPALIVE_SHIM_IDLE=\"0\" is not valid (accepted: 1 to 32767 s (90, 90s, 2m, 1h)); \
             using the default 60 s"
        );
        let (_, d) = run(&[("KEEPALIVE_SHIM_COUNT", "1\n2")]);
        assert!(message(&d[0]).starts_with("KEEPALIVE_SHIM_COUNT=\"1\\x0a2\""));
    }

    #[test]
    fn unknown_variables_are_reported_and_others_are_not_ours() {
        let (_, d) = run(&[
            ("KEEPALIVE_SHIM_IDEL", "5"),
            ("KEEPALIVE_SHIMMER", "1"),
            ("KEEPALIVE", "off"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(
            d,
            [Diagnostic::Unknown {
                var: b"KEEPALIVE_SHIM_IDEL"
            }]
        );
        assert!(message(&d[0]).starts_with("KEEPALIVE_SHIM_IDEL is not a keepalive-shim setting"));
    }

    #[test]
    fn first_occurrence_wins_like_getenv() {
        let (c, d) = run(&[("KEEPALIVE_SHIM_IDLE", "5"), ("KEEPALIVE_SHIM_IDLE", "7")]);
        assert!(d.is_empty());
        assert_eq!(c.idle_s, 5);
        let (c, d) = run(&[("KEEPALIVE_SHIM_IDLE", "x"), ("KEEPALIVE_SHIM_IDLE", "7")]);
        assert_eq!(d.len(), 1);
        assert_eq!(c.idle_s, 60);
    }

    #[test]
    fn auto_user_timeout_is_capped() {
        let (c, _) = run(&[
            ("KEEPALIVE_SHIM_IDLE", "32767"),
            ("KEEPALIVE_SHIM_INTERVAL", "32767"),
            ("KEEPALIVE_SHIM_COUNT", "127"),
        ]);
        assert_eq!(c.user_timeout_ms(), Some(i32::MAX as u32));
        let (c, _) = run(&[("KEEPALIVE_SHIM_USER_TIMEOUT", "off")]);
        assert_eq!(c.user_timeout_ms(), None);
    }
}
