//! The text of diagnostics and of effective values, as users read them in
//! warnings and in `keepalive-shim check`.

use crate::config::{Config, Source};
use crate::diagnostic::{Diagnostic, Origin};
use crate::file::{ReadError, MAX_CONFIG_FILE_BYTES};
use crate::filter::RuleList;
use crate::settings::{setting, AliasMeaning, Key, Kind, UserTimeout};
use crate::text::{put_escaped, put_u64, Sink};

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
                match setting.aliases.iter().find(|a| a.name.as_bytes() == name) {
                    Some(alias) if alias.meaning != AliasMeaning::Same => {
                        put_alias_accepted(out, alias.meaning, setting.kind)
                    }
                    _ => put_plain(out, setting.accepted),
                }
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
                out.put(b"\" is not valid (accepted: ");
                put_plain(out, setting.accepted);
                out.put(b"); ");
                out.put(match setting.kind {
                    Kind::Programs => {
                        b"no socket in any program gets the options while an entry is invalid"
                    }
                    _ => b"no socket gets the options while an INCLUDE or EXCLUDE entry is invalid",
                });
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
            Diagnostic::FileIgnored { path, why } => {
                out.put(b"cannot read the config file ");
                put_escaped(out, path, 256);
                match why {
                    ReadError::NotFound => out.put(b" (no such file)"),
                    ReadError::TooLarge => {
                        out.put(b" (over ");
                        put_u64(out, (MAX_CONFIG_FILE_BYTES / 1024) as u64);
                        out.put(b" KiB)");
                    }
                    ReadError::NotRegular => out.put(b" (not a regular file)"),
                    ReadError::Os(13) => out.put(b" (permission denied)"),
                    ReadError::Os(errno) => {
                        out.put(b": errno ");
                        put_u64(out, u64::from(errno.unsigned_abs()));
                    }
                }
                out.put(b"; it is ignored, as if it did not exist");
            }
            Diagnostic::Ignored { name, why } => {
                put_escaped(out, name, 64);
                out.put(b" is ignored: ");
                out.put(why.as_bytes());
            }
        }
    }
}

/// What an alias with its own meaning accepts, e.g. `whole seconds from 1
/// to 32767; 0 = not set`.
fn put_alias_accepted(out: &mut impl Sink, meaning: AliasMeaning, kind: Kind) {
    let (min, max, unit): (u32, u32, &[u8]) = match kind {
        Kind::Seconds { min, max } => (min, max, b" s"),
        Kind::Number { min, max } => (min, max, b""),
        Kind::UserTimeout { min_ms, max_ms } => (min_ms, max_ms, b" ms"),
        _ => (0, 0, b""),
    };
    out.put(b"a whole number from ");
    put_u64(out, u64::from(min));
    out.put(b" to ");
    put_u64(out, u64::from(max));
    out.put(unit);
    if meaning == AliasMeaning::MillisOrAuto {
        out.put(b", -1 = auto");
    }
    out.put(b", 0 = not set");
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
    if c.is_invalid_list(key) {
        // What the list's entries were no longer matters: it matches nothing.
        out.put(match key {
            Key::Programs => b"no program (an entry is invalid)",
            _ => b"no socket (an entry is invalid)",
        });
        return;
    }
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
