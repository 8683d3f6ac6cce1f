//! From the environment and the config file to an effective configuration,
//! with a diagnostic for everything that is not accepted.
//!
//! Precedence, per setting: `KEEPALIVE_SHIM_*`, then libkeepalive's
//! variables, then libdontdie's (the row's `aliases`, in order), then the
//! config file, then the default. An invalid value is reported and the next
//! source is used, as if it were unset.

use crate::filter::{Decision, Filters, RuleList};
use crate::net::SockAddr;
use crate::parse::{parse_count, parse_duration_ms, parse_level, parse_switch};
use crate::settings::{setting, Key, Kind, Level, Mode, Setting, UserTimeout};
use crate::settings::{DEFAULT_CONFIG_FILE, SETTINGS, VAR_PREFIX};
use crate::text::{put_escaped, put_u64, Sink};

const N: usize = SETTINGS.len();
/// Names per setting: the variable and up to two aliases.
const NAMES: usize = 3;

/// Where an effective value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    /// An environment variable: the setting's own or another tool's.
    Env(&'static str),
    /// A line of the config file.
    File(u32),
}

/// Where a rejected value was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    Env,
    File { path: &'a [u8], line: u32 },
}

/// The executable names `KEEPALIVE_SHIM_PROGRAMS` allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramList<'a> {
    names: [&'a [u8]; 16],
    len: usize,
}

impl<'a> ProgramList<'a> {
    pub const EMPTY: ProgramList<'static> = ProgramList {
        names: [&[]; 16],
        len: 0,
    };

    pub fn names(&self) -> &[&'a [u8]] {
        self.names.get(..self.len).unwrap_or(&[])
    }

    fn parse(list: &'a [u8], bad: &mut dyn FnMut(&'a [u8])) -> ProgramList<'a> {
        let mut out = ProgramList {
            names: [&[]; 16],
            len: 0,
        };
        for name in list.split(|&b| b == b',').map(|n| n.trim_ascii()) {
            if name.is_empty() {
                continue;
            }
            let ok = name.len() <= 255 && !name.contains(&b'/');
            match (ok, out.names.get_mut(out.len)) {
                (true, Some(slot)) => {
                    *slot = name;
                    out.len = out.len.saturating_add(1);
                }
                _ => bad(name),
            }
        }
        out
    }
}

/// A parsed value of some [`Kind`].
// A filter list is large, but values only live briefly on the stack during
// parsing, and the library has no allocator to box it.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Switch(bool),
    Seconds(u32),
    Number(u32),
    UserTimeout(UserTimeout),
    Level(Level),
    Path(&'a [u8]),
    Mode(Mode),
    Destinations(RuleList),
    Programs(ProgramList<'a>),
}

impl<'a> Value<'a> {
    /// Parses `v` as a value of `kind`, range included. A list is valid if
    /// at least one entry is; invalid entries go to `bad_entry`.
    pub fn parse_list(
        kind: Kind,
        v: &'a [u8],
        bad_entry: &mut dyn FnMut(&'a [u8]),
    ) -> Option<Value<'a>> {
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
                [b'/', ..] if v.len() < 4096 && !v.contains(&0) => Some(Value::Path(v)),
                _ => None,
            },
            Kind::Mode => [Mode::Respect, Mode::Force]
                .into_iter()
                .find(|m| m.name().as_bytes().eq_ignore_ascii_case(v))
                .map(Value::Mode),
            Kind::Destinations => {
                let list = RuleList::parse(v, bad_entry);
                (!list.is_empty()).then_some(Value::Destinations(list))
            }
            Kind::Programs => {
                let list = ProgramList::parse(v, bad_entry);
                (!list.names().is_empty()).then_some(Value::Programs(list))
            }
        }
    }

    /// [`Value::parse_list`] that rejects a list with any invalid entry.
    pub fn parse(kind: Kind, v: &'a [u8]) -> Option<Value<'a>> {
        let mut any_bad = false;
        let value = Value::parse_list(kind, v, &mut |_| any_bad = true)?;
        (!any_bad).then_some(value)
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
    pub mode: Mode,
    pub include: RuleList,
    pub exclude: RuleList,
    pub programs: ProgramList<'a>,
    pub log_level: Level,
    pub log_file: Option<&'a [u8]>,
    /// The config file that was read, if any.
    pub config_file: Option<&'a [u8]>,
    pub library: Option<&'a [u8]>,
    sources: [Source; N],
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

    /// The destination filters.
    pub fn filters(&self) -> Filters {
        Filters {
            include: self.include,
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

    /// Whether the shim is active in a program known by these names
    /// (basenames of the executable and of argv[0]).
    pub fn program_allowed(&self, names: &[&[u8]]) -> bool {
        let allowed = self.programs.names();
        allowed.is_empty() || allowed.iter().any(|a| names.contains(a))
    }
}

fn key_index(key: Key) -> usize {
    SETTINGS.iter().position(|s| s.key == key).unwrap_or(0)
}

/// Something wrong with the configuration. Each is reported once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diagnostic<'a> {
    /// The value is not accepted; the next source (or the default) is used.
    Invalid {
        setting: &'static Setting,
        name: &'a [u8],
        value: &'a [u8],
        origin: Origin<'a>,
    },
    /// One entry of a list is not accepted and is skipped.
    BadEntry {
        setting: &'static Setting,
        entry: &'a [u8],
        origin: Origin<'a>,
    },
    /// A `KEEPALIVE_SHIM_*` name that is not a setting: probably a typo.
    Unknown { name: &'a [u8], origin: Origin<'a> },
    /// A config file line that is not `KEY=value`.
    Malformed { path: &'a [u8], line: u32 },
    /// A variable that is ignored where it was found, and why.
    Ignored { name: &'a [u8], why: &'static str },
}

impl Diagnostic<'_> {
    /// The message, without a prefix or newline. `config` is the final
    /// configuration, to say which value is used instead.
    pub fn write(&self, config: &Config<'_>, out: &mut impl Sink) {
        let put_origin = |out: &mut _, origin: &Origin<'_>| {
            if let Origin::File { path, line } = *origin {
                put_file_line(out, path, line);
            }
        };
        match *self {
            Diagnostic::Invalid {
                setting,
                name,
                value,
                origin,
            } => {
                put_origin(out, &origin);
                put_escaped(out, name, 64);
                out.put(b"=\"");
                put_escaped(out, value, 64);
                out.put(b"\" is not valid (accepted: ");
                put_plain(out, setting.accepted);
                out.put(b"); using ");
                match config.source(setting.key) {
                    Source::Default => {
                        out.put(b"the default ");
                        put_plain(out, setting.default_doc);
                    }
                    source => {
                        put_value(out, config, setting.key);
                        out.put(b" from ");
                        put_source(out, config, source);
                    }
                }
            }
            Diagnostic::BadEntry {
                setting,
                entry,
                origin,
            } => {
                put_origin(out, &origin);
                out.put(setting.var.as_bytes());
                out.put(b": entry \"");
                put_escaped(out, entry, 64);
                out.put(b"\" is not valid and is skipped (accepted: ");
                put_plain(out, setting.accepted);
                out.put(b")");
            }
            Diagnostic::Unknown { name, origin } => {
                put_origin(out, &origin);
                put_escaped(out, name, 64);
                out.put(b" is not a keepalive-shim setting (a typo?); ignored. ");
                out.put(b"Settings: keepalive-shim --help");
            }
            Diagnostic::Malformed { path, line } => {
                put_file_line(out, path, line);
                out.put(b"not a KEY=value line; ignored");
            }
            Diagnostic::Ignored { name, why } => {
                put_escaped(out, name, 64);
                out.put(b" is ignored: ");
                out.put(why.as_bytes());
            }
        }
    }
}

fn put_file_line(out: &mut impl Sink, path: &[u8], line: u32) {
    put_escaped(out, path, 256);
    out.put(b" line ");
    put_u64(out, u64::from(line));
    out.put(b": ");
}

/// Writes docs text without Markdown backticks.
fn put_plain(out: &mut impl Sink, s: &str) {
    for part in s.as_bytes().split(|&b| b == b'`') {
        out.put(part);
    }
}

/// Writes where a value came from: `default`, a variable name, or a file line.
pub fn put_source(out: &mut impl Sink, config: &Config<'_>, source: Source) {
    match source {
        Source::Default => out.put(b"default"),
        Source::Env(name) => out.put(name.as_bytes()),
        Source::File(line) => {
            put_escaped(out, config.config_file.unwrap_or(b"config file"), 256);
            out.put(b" line ");
            put_u64(out, u64::from(line));
        }
    }
}

/// Writes `key`'s effective value as a user would type it.
pub fn put_value(out: &mut impl Sink, c: &Config<'_>, key: Key) {
    let put_rules = |out: &mut _, list: &RuleList| {
        for (i, r) in list.rules().iter().enumerate() {
            if i > 0 {
                Sink::put(out, b",");
            }
            r.write(out);
        }
    };
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
        Key::Mode => out.put(c.mode.name().as_bytes()),
        Key::Include | Key::Exclude => {
            let list = if key == Key::Include {
                &c.include
            } else {
                &c.exclude
            };
            if list.is_empty() {
                put_plain(out, setting(key).default_doc);
            } else {
                put_rules(out, list);
            }
        }
        Key::Programs => {
            if c.programs.names().is_empty() {
                put_plain(out, setting(key).default_doc);
            }
            for (i, name) in c.programs.names().iter().enumerate() {
                if i > 0 {
                    out.put(b",");
                }
                put_escaped(out, name, 255);
            }
        }
        Key::LogLevel => out.put(c.log_level.name().as_bytes()),
        Key::LogFile | Key::ConfigFile | Key::Library => {
            let path = match key {
                Key::LogFile => c.log_file,
                Key::ConfigFile => c.config_file,
                _ => c.library,
            };
            match path {
                Some(p) => put_escaped(out, p, 4096),
                None if key == Key::ConfigFile => out.put(b"none"),
                None => put_plain(out, setting(key).default_doc),
            }
        }
    }
}

fn put_secs(out: &mut impl Sink, s: u32) {
    put_u64(out, u64::from(s));
    out.put(b" s");
}

/// The environment's values for every known name, gathered in one pass.
pub struct EnvView<'a> {
    values: [[Option<&'a [u8]>; NAMES]; N],
}

impl<'a> EnvView<'a> {
    /// Collects `NAME=value` pairs. As with `getenv`, the first occurrence of
    /// a name counts. Unknown `KEEPALIVE_SHIM_*` names are reported.
    pub fn collect<I>(vars: I, report: &mut dyn FnMut(Diagnostic<'a>)) -> EnvView<'a>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let mut view = EnvView {
            values: [[None; NAMES]; N],
        };
        for (name, value) in vars {
            let mut known = false;
            for (row, s) in view.values.iter_mut().zip(SETTINGS) {
                let names = core::iter::once(s.var).chain(s.aliases.iter().copied());
                for (slot, candidate) in row.iter_mut().zip(names) {
                    if candidate.as_bytes() == name {
                        known = true;
                        if slot.is_none() {
                            *slot = Some(value);
                        }
                    }
                }
            }
            let ours = name
                .strip_prefix(VAR_PREFIX.as_bytes())
                .is_some_and(|t| t.first() == Some(&b'_'));
            if !known && ours {
                report(Diagnostic::Unknown {
                    name,
                    origin: Origin::Env,
                });
            }
        }
        view
    }

    fn get(&self, key: Key, name_index: usize) -> Option<&'a [u8]> {
        self.values
            .get(key_index(key))?
            .get(name_index)
            .copied()
            .flatten()
    }

    /// The config file to read: `KEEPALIVE_SHIM_CONFIG` unless `secure`,
    /// else the default path. The flag says whether it was asked for
    /// explicitly (a missing default file is normal; a missing named one is
    /// worth a warning).
    pub fn config_path(&self, secure: bool) -> (&'a [u8], bool) {
        match self.get(Key::ConfigFile, 0) {
            Some(p) if !secure && Value::parse(Kind::Path, p).is_some() => (p, true),
            _ => (DEFAULT_CONFIG_FILE.as_bytes(), false),
        }
    }
}

/// A config file's `KEY=value` lines.
pub struct FileView<'a> {
    path: &'a [u8],
    values: [Option<(&'a [u8], u32)>; N],
}

impl<'a> FileView<'a> {
    /// Parses the file's contents: `KEY=value` lines, blank lines and `#`
    /// comments; whitespace around keys and values and one pair of double
    /// quotes around a value are removed. Keys are `KEEPALIVE_SHIM_*` names.
    pub fn parse(
        path: &'a [u8],
        contents: &'a [u8],
        report: &mut dyn FnMut(Diagnostic<'a>),
    ) -> FileView<'a> {
        let mut view = FileView {
            path,
            values: [None; N],
        };
        let mut number: u32 = 0;
        for line in contents.split(|&b| b == b'\n') {
            number = number.saturating_add(1);
            let line = line.trim_ascii();
            if line.is_empty() || line.first() == Some(&b'#') {
                continue;
            }
            let Some(eq) = line.iter().position(|&b| b == b'=') else {
                report(Diagnostic::Malformed { path, line: number });
                continue;
            };
            let (key, value) = line.split_at(eq);
            let key = key.trim_ascii();
            let value = value.get(1..).unwrap_or(&[]).trim_ascii();
            let value = match value {
                [b'"', inner @ .., b'"'] => inner,
                _ => value,
            };
            let origin = Origin::File { path, line: number };
            match SETTINGS.iter().position(|s| s.var.as_bytes() == key) {
                Some(i) if SETTINGS.get(i).is_some_and(|s| s.key == Key::ConfigFile) => {
                    report(Diagnostic::Ignored {
                        name: key,
                        why: "it has no effect inside the config file",
                    })
                }
                Some(i) => {
                    if let Some(slot @ None) = view.values.get_mut(i) {
                        *slot = Some((value, number));
                    }
                }
                None => report(Diagnostic::Unknown { name: key, origin }),
            }
        }
        view
    }
}

/// Resolves the configuration. In secure-execution mode (`secure`), the log
/// file and config path from the environment are ignored.
pub fn resolve<'a>(
    env: &EnvView<'a>,
    file: Option<&FileView<'a>>,
    secure: bool,
    report: &mut dyn FnMut(Diagnostic<'a>),
) -> Config<'a> {
    let mut c = Config::defaults();
    if let Some(f) = file {
        c.config_file = Some(f.path);
    }
    for (index, s) in SETTINGS.iter().enumerate() {
        if s.key == Key::ConfigFile {
            continue; // decided by the caller, who read the file
        }
        let names = core::iter::once(s.var).chain(s.aliases.iter().copied());
        let mut chosen = false;
        for (i, name) in names.enumerate() {
            let Some(value) = env.get(s.key, i) else {
                continue;
            };
            if secure && s.key == Key::LogFile {
                report(Diagnostic::Ignored {
                    name: name.as_bytes(),
                    why: "setuid/setgid program",
                });
                continue;
            }
            let origin = Origin::Env;
            if let Some(v) = parse_reporting(s, name.as_bytes(), value, origin, report) {
                c.set(s.key, v);
                set_source(&mut c, index, Source::Env(name));
                chosen = true;
                break;
            }
        }
        if chosen {
            continue;
        }
        let from_file = file.and_then(|f| Some((f.path, f.values.get(index).copied().flatten()?)));
        if let Some((path, (value, line))) = from_file {
            let origin = Origin::File { path, line };
            if let Some(v) = parse_reporting(s, s.var.as_bytes(), value, origin, report) {
                c.set(s.key, v);
                set_source(&mut c, index, Source::File(line));
            }
        }
    }
    if secure {
        if let Some(name) = env
            .get(Key::ConfigFile, 0)
            .map(|_| setting(Key::ConfigFile).var)
        {
            report(Diagnostic::Ignored {
                name: name.as_bytes(),
                why: "setuid/setgid program",
            });
        }
    }
    c
}

fn set_source(c: &mut Config<'_>, index: usize, source: Source) {
    if let Some(slot) = c.sources.get_mut(index) {
        *slot = source;
    }
}

fn parse_reporting<'a>(
    s: &'static Setting,
    name: &'a [u8],
    value: &'a [u8],
    origin: Origin<'a>,
    report: &mut dyn FnMut(Diagnostic<'a>),
) -> Option<Value<'a>> {
    let is_list = matches!(s.kind, Kind::Destinations | Kind::Programs);
    if is_list && value.trim_ascii().is_empty() {
        return None; // an empty list is the same as an unset one
    }
    let mut bad_entries = false;
    let parsed = Value::parse_list(s.kind, value, &mut |entry| {
        bad_entries = true;
        report(Diagnostic::BadEntry {
            setting: s,
            entry,
            origin,
        })
    });
    // A list whose entries were all reported needs no second warning.
    if parsed.is_none() && !bad_entries {
        report(Diagnostic::Invalid {
            setting: s,
            name,
            value,
            origin,
        });
    }
    parsed
}

/// Resolves from the environment alone (no config file, not secure).
pub fn resolve_env<'a, I>(vars: I, report: &mut dyn FnMut(Diagnostic<'a>)) -> Config<'a>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let env = EnvView::collect(vars, report);
    resolve(&env, None, false, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::setting_by_var;
    use crate::text::LineBuf;
    use std::string::String;
    use std::vec::Vec;

    type Diags = Vec<Diagnostic<'static>>;

    fn run(env: &[(&'static str, &'static str)]) -> (Config<'static>, Diags) {
        run_with_file(env, None, false)
    }

    fn run_with_file(
        env: &[(&'static str, &'static str)],
        file: Option<&'static str>,
        secure: bool,
    ) -> (Config<'static>, Diags) {
        let mut diags = Vec::new();
        let view = EnvView::collect(
            env.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
            &mut |d| diags.push(d),
        );
        let file =
            file.map(|f| FileView::parse(b"/etc/ks.conf", f.as_bytes(), &mut |d| diags.push(d)));
        let c = resolve(&view, file.as_ref(), secure, &mut |d| diags.push(d));
        (c, diags)
    }

    fn message(d: &Diagnostic<'_>, c: &Config<'_>) -> String {
        let mut b = LineBuf::<512>::new();
        d.write(c, &mut b);
        String::from_utf8(b.as_bytes().to_vec()).unwrap()
    }

    const ALL_KEYS: [Key; 13] = [
        Key::Enabled,
        Key::Idle,
        Key::Interval,
        Key::Count,
        Key::UserTimeout,
        Key::Mode,
        Key::Include,
        Key::Exclude,
        Key::Programs,
        Key::LogLevel,
        Key::LogFile,
        Key::ConfigFile,
        Key::Library,
    ];

    #[test]
    fn table_has_every_key_once_and_defaults_parse() {
        assert_eq!(SETTINGS.len(), ALL_KEYS.len());
        for key in ALL_KEYS {
            assert_eq!(
                SETTINGS.iter().filter(|s| s.key == key).count(),
                1,
                "{key:?}"
            );
            assert_eq!(setting(key).key, key);
        }
        for s in SETTINGS {
            assert!(s.var.starts_with(VAR_PREFIX), "{}", s.var);
            assert!(s.aliases.len() < NAMES);
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
        // Off by default: a user timeout can end a live connection whose
        // reader keeps its window closed.
        assert_eq!(c.user_timeout, UserTimeout::Off);
        assert_eq!(c.user_timeout_ms(), None);
        assert_eq!(c.mode, Mode::Respect);
        assert!(!c.has_filters());
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
            ("KEEPALIVE_SHIM_MODE", "force"),
            ("KEEPALIVE_SHIM_INCLUDE", "10.0.0.0/8"),
            ("KEEPALIVE_SHIM_EXCLUDE", ":5432"),
            ("KEEPALIVE_SHIM_PROGRAMS", "python3, curl"),
            ("KEEPALIVE_SHIM_LOG", "debug"),
            ("KEEPALIVE_SHIM_LOG_FILE", "/tmp/ks.log"),
            ("KEEPALIVE_SHIM_CONFIG", "/etc/other.conf"),
            ("KEEPALIVE_SHIM_LIBRARY", "/opt/ks/libkeepalive_shim.so"),
        ]);
        assert!(d.is_empty(), "{d:?}");
        assert!(!c.enabled);
        assert_eq!((c.idle_s, c.interval_s, c.count), (120, 7, 3));
        assert_eq!(c.user_timeout_ms(), Some(4500));
        assert_eq!(c.mode, Mode::Force);
        assert_eq!(c.include.rules().len(), 1);
        assert_eq!(c.exclude.rules().len(), 1);
        assert_eq!(c.programs.names(), [&b"python3"[..], b"curl"]);
        assert_eq!(c.log_level, Level::Debug);
        assert_eq!(c.log_file, Some(&b"/tmp/ks.log"[..]));
        assert_eq!(c.library, Some(&b"/opt/ks/libkeepalive_shim.so"[..]));
        for s in SETTINGS.iter().filter(|s| s.key != Key::ConfigFile) {
            assert_eq!(c.source(s.key), Source::Env(s.var), "{}", s.var);
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
            ("KEEPALIVE_SHIM_MODE", &["", "strict", "forced"]),
            ("KEEPALIVE_SHIM_LOG", &["", "trace", "verbose"]),
            ("KEEPALIVE_SHIM_LOG_FILE", &["", "relative.log"]),
        ];
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
                assert!(c.enabled);
                assert_eq!((c.idle_s, c.interval_s, c.count), (60, 10, 6));
                assert_eq!(c.user_timeout, UserTimeout::Off);
                assert_eq!(c.mode, Mode::Respect);
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
            ("KEEPALIVE_SHIM_USER_TIMEOUT", "auto"),
        ]);
        assert_eq!(d.len(), 1);
        // auto is computed from the effective values, after the fallback.
        assert_eq!((c.idle_s, c.interval_s, c.count), (60, 3, 4));
        assert_eq!(c.user_timeout_ms(), Some((60 + 3 * 4) * 1000));
    }

    #[test]
    fn warning_text_names_variable_value_and_range() {
        let (c, d) = run(&[("KEEPALIVE_SHIM_IDLE", "0")]);
        assert_eq!(
            message(&d[0], &c),
            "KEEPALIVE_SHIM_IDLE=\"0\" is not valid (accepted: 1 to 32767 s (90, 90s, 2m, 1h)); \
             using the default 60 s"
        );
        let (c, d) = run(&[("KEEPALIVE_SHIM_COUNT", "1\n2")]);
        assert!(message(&d[0], &c).starts_with("KEEPALIVE_SHIM_COUNT=\"1\\x0a2\""));
    }

    #[test]
    fn unknown_variables_are_reported_and_others_are_not_ours() {
        let (c, d) = run(&[
            ("KEEPALIVE_SHIM_IDEL", "5"),
            ("KEEPALIVE_SHIMMER", "1"),
            ("KEEPALIVE", "off"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(
            d,
            [Diagnostic::Unknown {
                name: b"KEEPALIVE_SHIM_IDEL",
                origin: Origin::Env
            }]
        );
        assert!(
            message(&d[0], &c).starts_with("KEEPALIVE_SHIM_IDEL is not a keepalive-shim setting")
        );
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
            ("KEEPALIVE_SHIM_USER_TIMEOUT", "auto"),
        ]);
        assert_eq!(c.user_timeout_ms(), Some(i32::MAX as u32));
        let (c, _) = run(&[("KEEPALIVE_SHIM_USER_TIMEOUT", "off")]);
        assert_eq!(c.user_timeout_ms(), None);
    }

    #[test]
    fn compatibility_variables_and_precedence() {
        // libkeepalive's variables alone.
        let (c, d) = run(&[
            ("KEEPIDLE", "20"),
            ("KEEPINTVL", "4"),
            ("KEEPCNT", "3"),
            ("KEEPALIVE_SHIM_USER_TIMEOUT", "auto"),
        ]);
        assert!(d.is_empty());
        assert_eq!((c.idle_s, c.interval_s, c.count), (20, 4, 3));
        assert_eq!(c.user_timeout_ms(), Some(32_000)); // compat values feed auto
        assert_eq!(c.source(Key::Idle), Source::Env("KEEPIDLE"));
        // libdontdie's alone; what they do not set comes from our defaults.
        let (c, _) = run(&[
            ("DD_TCP_KEEPALIVE_TIME", "30"),
            ("DD_TCP_KEEPALIVE_PROBES", "2"),
        ]);
        assert_eq!((c.idle_s, c.interval_s, c.count), (30, 10, 2));
        assert_eq!(c.source(Key::Count), Source::Env("DD_TCP_KEEPALIVE_PROBES"));
        // Ours, then libkeepalive's, then libdontdie's, then the file.
        let file = "KEEPALIVE_SHIM_IDLE=40\nKEEPALIVE_SHIM_INTERVAL=5\nKEEPALIVE_SHIM_COUNT=9\n";
        let (c, d) = run_with_file(
            &[
                ("DD_TCP_KEEPALIVE_TIME", "30"),
                ("KEEPIDLE", "20"),
                ("KEEPALIVE_SHIM_IDLE", "11"),
                ("DD_TCP_KEEPALIVE_INTVL", "3"),
                ("KEEPINTVL", "2"),
            ],
            Some(file),
            false,
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!((c.idle_s, c.interval_s, c.count), (11, 2, 9));
        assert_eq!(c.source(Key::Interval), Source::Env("KEEPINTVL"));
        assert_eq!(c.source(Key::Count), Source::File(3));
        // The switches.
        assert!(!run(&[("KEEPALIVE", "off")]).0.enabled);
        assert!(!run(&[("DD_USE_KEEPALIVE", "0")]).0.enabled);
        assert!(
            run(&[("KEEPALIVE_SHIM", "on"), ("KEEPALIVE", "off")])
                .0
                .enabled
        );
    }

    #[test]
    fn an_invalid_value_falls_through_to_the_next_source() {
        let (c, d) = run(&[("KEEPALIVE_SHIM_IDLE", "junk"), ("KEEPIDLE", "25")]);
        assert_eq!(c.idle_s, 25);
        assert_eq!(d.len(), 1);
        assert!(
            message(&d[0], &c).ends_with("using 25 s from KEEPIDLE"),
            "{}",
            message(&d[0], &c)
        );
    }

    #[test]
    fn config_file_lines() {
        let file =
            "# comment\n\n  KEEPALIVE_SHIM_IDLE = 45 \nKEEPALIVE_SHIM_LOG=\"info\"\nnot a line\n\
                    KEEPALIVE_SHIM_TYPO=1\nKEEPALIVE_SHIM_COUNT=0\nKEEPALIVE_SHIM_CONFIG=/x\n\
                    KEEPALIVE_SHIM_INCLUDE=10.0.0.0/8, bogus\n";
        let (c, d) = run_with_file(&[("KEEPALIVE_SHIM_LOG", "error")], Some(file), false);
        assert_eq!(c.idle_s, 45);
        assert_eq!(c.source(Key::Idle), Source::File(3));
        assert_eq!(c.log_level, Level::Error); // the environment overrides the file
        assert_eq!(c.count, 6);
        assert_eq!(c.include.rules().len(), 1);
        assert_eq!(c.config_file, Some(&b"/etc/ks.conf"[..]));
        let texts: Vec<String> = d.iter().map(|d| message(d, &c)).collect();
        assert_eq!(d.len(), 5, "{texts:#?}");
        assert!(texts[0].starts_with("/etc/ks.conf line 5: not a KEY=value line"));
        assert!(texts[1].starts_with("/etc/ks.conf line 6: KEEPALIVE_SHIM_TYPO is not"));
        assert!(texts[2].starts_with("KEEPALIVE_SHIM_CONFIG is ignored"));
        assert!(
            texts[3].starts_with("/etc/ks.conf line 7: KEEPALIVE_SHIM_COUNT=\"0\" is not valid")
        );
        assert!(
            texts[4].contains("entry \"bogus\" is not valid and is skipped"),
            "{}",
            texts[4]
        );
    }

    #[test]
    fn secure_mode_ignores_log_file_and_config_path_from_the_environment() {
        let env = [
            ("KEEPALIVE_SHIM_LOG_FILE", "/tmp/evil.log"),
            ("KEEPALIVE_SHIM_CONFIG", "/tmp/evil.conf"),
            ("KEEPALIVE_SHIM_IDLE", "9"),
        ];
        let mut diags = Vec::new();
        let view = EnvView::collect(
            env.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
            &mut |d| diags.push(d),
        );
        assert_eq!(
            view.config_path(true),
            (DEFAULT_CONFIG_FILE.as_bytes(), false)
        );
        assert_eq!(view.config_path(false), (&b"/tmp/evil.conf"[..], true));
        let c = resolve(&view, None, true, &mut |d| diags.push(d));
        assert_eq!(c.log_file, None);
        assert_eq!(c.idle_s, 9); // keepalive values are harmless and honoured
        assert_eq!(diags.len(), 2, "{diags:?}");
        // The file's own log path is trusted (the file is root's).
        let (c, _) = run_with_file(&[], Some("KEEPALIVE_SHIM_LOG_FILE=/var/log/ks.log"), true);
        assert_eq!(c.log_file, Some(&b"/var/log/ks.log"[..]));
    }

    #[test]
    fn filters_decide() {
        let addr = |s: &str| {
            let a: std::net::SocketAddr = s.parse().unwrap();
            let ip = match a.ip() {
                std::net::IpAddr::V4(v) => crate::net::Ip::V4(v.octets()),
                std::net::IpAddr::V6(v) => crate::net::Ip::V6(v.octets()),
            };
            SockAddr { ip, port: a.port() }
        };
        let (c, d) = run(&[
            ("KEEPALIVE_SHIM_INCLUDE", "10.0.0.0/8"),
            ("KEEPALIVE_SHIM_EXCLUDE", "10.1.0.0/16"),
        ]);
        assert!(d.is_empty());
        assert!(c.decide(&addr("10.2.3.4:80")).applies);
        assert!(!c.decide(&addr("10.1.3.4:80")).applies); // exclude wins
        assert!(!c.decide(&addr("192.168.1.1:80")).applies);
        assert!(c.decide(&addr("[::ffff:10.2.3.4]:80")).applies);
        // An INCLUDE without a valid entry behaves as unset.
        let (c, d) = run(&[("KEEPALIVE_SHIM_INCLUDE", "junk, also junk")]);
        assert_eq!(d.len(), 2);
        assert!(c.include.is_empty());
        assert!(c.decide(&addr("192.168.1.1:80")).applies);
        // An empty list is unset, silently.
        let (c, d) = run(&[("KEEPALIVE_SHIM_EXCLUDE", "")]);
        assert!(d.is_empty() && !c.has_filters());
    }

    #[test]
    fn programs() {
        let (c, _) = run(&[("KEEPALIVE_SHIM_PROGRAMS", "python3,curl")]);
        assert!(c.program_allowed(&[b"python3.11", b"python3"]));
        assert!(c.program_allowed(&[b"curl", b"curl"]));
        assert!(!c.program_allowed(&[b"bash", b"sh"]));
        let (c, d) = run(&[("KEEPALIVE_SHIM_PROGRAMS", "/usr/bin/curl")]);
        assert_eq!(d.len(), 1);
        assert!(c.program_allowed(&[b"anything"]));
    }
}
