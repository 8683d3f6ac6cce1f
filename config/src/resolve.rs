//! From the environment and the config file to an effective configuration,
//! with a diagnostic for everything that is not accepted.
//!
//! Precedence, per setting: `KEEPALIVE_SHIM_*`, then libkeepalive's
//! variables, then libdontdie's, then libkeepalive-ng's (the row's
//! `aliases`, in order), then the config file, then the default. An invalid
//! value is reported and the next source is used, as if it were unset; so is
//! an alias that asks for the system default (libkeepalive-ng's `0`). A
//! filter or program list with an invalid entry is kept, marked invalid: it
//! then applies to nothing (see [`crate::filter`]).

use crate::config::{Config, Source};
use crate::diagnostic::{Diagnostic, Origin};
use crate::settings::SETTINGS;
use crate::settings::{setting, AliasMeaning, Key, Kind, Setting};
use crate::sources::{EnvView, FileView};
use crate::value::Value;

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
            // Read by the caller (`EnvView::config_path`), which falls back
            // to the default file for a value that is not a path: say so.
            if let Some(value) = env.get(s.key, 0).filter(|_| !secure) {
                let origin = Origin::Env;
                if let Parsed::Invalid = parse_reporting(
                    s,
                    AliasMeaning::Same,
                    s.var.as_bytes(),
                    value,
                    origin,
                    report,
                ) {
                    reject(&mut c, index, Source::Env(s.var), value);
                }
            }
            continue;
        }
        let names = core::iter::once((s.var, AliasMeaning::Same))
            .chain(s.aliases.iter().map(|a| (a.name, a.meaning)));
        let mut chosen = false;
        for (i, (name, meaning)) in names.enumerate() {
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
            if meaning.leaves_default(value) {
                continue;
            }
            let source = Source::Env(name);
            let origin = Origin::Env;
            match parse_reporting(s, meaning, name.as_bytes(), value, origin, report) {
                Parsed::Value(v) => {
                    c.set(s.key, v);
                    set_source(&mut c, index, source);
                    chosen = true;
                    break;
                }
                Parsed::Invalid => reject(&mut c, index, source, value),
                Parsed::Empty => {}
            }
        }
        if chosen {
            continue;
        }
        let from_file = file.and_then(|f| Some((f.path, f.values.get(index).copied().flatten()?)));
        if let Some((path, (value, line))) = from_file {
            let origin = Origin::File { path, line };
            let source = Source::File(line);
            match parse_reporting(
                s,
                AliasMeaning::Same,
                s.var.as_bytes(),
                value,
                origin,
                report,
            ) {
                Parsed::Value(v) => {
                    c.set(s.key, v);
                    set_source(&mut c, index, source);
                }
                Parsed::Invalid => reject(&mut c, index, source, value),
                Parsed::Empty => {}
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

/// Records the first rejected value of a setting, for `check`'s row.
fn reject<'a>(c: &mut Config<'a>, index: usize, source: Source, value: &'a [u8]) {
    if let Some(slot @ None) = c.rejected.get_mut(index) {
        *slot = Some((source, value));
    }
}

// Lives briefly on the stack, like `Value`.
#[allow(clippy::large_enum_variant)]
enum Parsed<'a> {
    Value(Value<'a>),
    /// An empty list: the same as unset, silently.
    Empty,
    /// Reported; the next source is used.
    Invalid,
}

fn parse_reporting<'a>(
    s: &'static Setting,
    meaning: AliasMeaning,
    name: &'a [u8],
    value: &'a [u8],
    origin: Origin<'a>,
    report: &mut dyn FnMut(Diagnostic<'a>),
) -> Parsed<'a> {
    let is_list = matches!(s.kind, Kind::Destinations | Kind::Programs);
    if is_list && value.trim_ascii().is_empty() {
        return Parsed::Empty;
    }
    let parsed = Value::parse_alias(meaning, s.kind, value, &mut |entry| {
        report(Diagnostic::BadEntry {
            setting: s,
            entry,
            origin,
        })
    });
    match parsed {
        Some(v) => Parsed::Value(v),
        None => {
            report(Diagnostic::Invalid {
                setting: s,
                name,
                value,
                origin,
            });
            Parsed::Invalid
        }
    }
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
// Tests may panic: a failed unwrap or index is a failed test.
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::message::put_value;
    use crate::net::SockAddr;
    use crate::settings::{setting_by_var, Level, Mode, UserTimeout};
    use crate::settings::{DEFAULT_CONFIG_FILE, VAR_PREFIX};
    use crate::sources::NAMES;
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

    #[test]
    fn table_has_every_key_once_and_defaults_parse() {
        assert_eq!(SETTINGS.len(), Key::ALL.len());
        for &key in Key::ALL {
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
            // Each alias's meaning fits its setting's kind: a mispaired
            // entry would reject every value of that alias.
            for a in s.aliases {
                let fits = match a.meaning {
                    AliasMeaning::Same => true,
                    AliasMeaning::Integer => {
                        matches!(s.kind, Kind::Seconds { .. } | Kind::Number { .. })
                    }
                    AliasMeaning::MillisOrAuto => matches!(s.kind, Kind::UserTimeout { .. }),
                };
                assert!(fits, "{}: {}", s.var, a.name);
                assert!(setting_by_var(a.name.as_bytes()).is_none(), "{}", a.name);
            }
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
    fn libkeepalive_ng_variables() {
        // Alone: plain seconds, a count, milliseconds.
        let (c, d) = run(&[
            ("TCP_KEEPIDLE", "33"),
            ("TCP_KEEPINTVL", "7"),
            ("TCP_KEEPCNT", "4"),
            ("TCP_USER_TIMEOUT", "25000"),
        ]);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!((c.idle_s, c.interval_s, c.count), (33, 7, 4));
        assert_eq!(c.user_timeout_ms(), Some(25_000));
        assert_eq!(c.source(Key::Idle), Source::Env("TCP_KEEPIDLE"));
        assert_eq!(c.source(Key::UserTimeout), Source::Env("TCP_USER_TIMEOUT"));
        // -1 is auto, from the effective values.
        let (c, _) = run(&[("TCP_KEEPIDLE", "20"), ("TCP_USER_TIMEOUT", "-1")]);
        assert_eq!(c.user_timeout, UserTimeout::Auto);
        assert_eq!(c.user_timeout_ms(), Some((20 + 10 * 6) * 1000));
        // 0 leaves the system default: the next source is used, silently.
        let (c, d) = run_with_file(
            &[
                ("TCP_KEEPIDLE", "0"),
                ("TCP_KEEPCNT", "0"),
                ("TCP_USER_TIMEOUT", "0"),
            ],
            Some("KEEPALIVE_SHIM_IDLE=44\nKEEPALIVE_SHIM_USER_TIMEOUT=9s\n"),
            false,
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!((c.idle_s, c.count), (44, 6));
        assert_eq!(c.source(Key::Idle), Source::File(1));
        assert_eq!(c.source(Key::Count), Source::Default);
        assert_eq!(c.user_timeout_ms(), Some(9000));
        // Last in the chain of environment variables, before the file.
        let (c, _) = run(&[
            ("TCP_KEEPIDLE", "33"),
            ("DD_TCP_KEEPALIVE_TIME", "22"),
            ("TCP_KEEPINTVL", "7"),
            ("KEEPINTVL", "5"),
            ("TCP_USER_TIMEOUT", "1234"),
            ("KEEPALIVE_SHIM_USER_TIMEOUT", "off"),
        ]);
        assert_eq!((c.idle_s, c.interval_s, c.user_timeout_ms()), (22, 5, None));
        // Their own syntax only: no units, no words; invalid falls through.
        for (var, value) in [
            ("TCP_KEEPIDLE", "30s"),
            ("TCP_KEEPIDLE", "32768"),
            ("TCP_KEEPCNT", "128"),
            ("TCP_KEEPCNT", "-1"),
            ("TCP_USER_TIMEOUT", "auto"),
            ("TCP_USER_TIMEOUT", "5s"),
            ("TCP_USER_TIMEOUT", "-2"),
            ("TCP_USER_TIMEOUT", "2147483648"),
        ] {
            let (c, d) = run(&[(var, value), ("KEEPALIVE_SHIM_LOG", "info")]);
            assert_eq!(d.len(), 1, "{var}={value}");
            let key = SETTINGS
                .iter()
                .find(|s| s.aliases.iter().any(|a| a.name == var))
                .unwrap()
                .key;
            assert_eq!(c.source(key), Source::Default, "{var}={value}");
            assert_eq!(c.rejected(key), Some((Source::Env(var), value.as_bytes())));
            let text = message(&d[0], &c);
            assert!(text.contains(", 0 = not set); using the default"), "{text}");
        }
        let (c, d) = run(&[("TCP_USER_TIMEOUT", "x")]);
        assert_eq!(
            message(&d[0], &c),
            "TCP_USER_TIMEOUT=\"x\" is not valid (accepted: a whole number from 1 to \
             2147483647 ms, -1 = auto, 0 = not set); using the default off (not set)"
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
        // check's rows: the rejected COUNT, and where.
        assert_eq!(c.rejected(Key::Count), Some((Source::File(7), &b"0"[..])));
        assert_eq!(c.rejected(Key::Idle), None);
        let texts: Vec<String> = d.iter().map(|d| message(d, &c)).collect();
        assert_eq!(d.len(), 5, "{texts:#?}");
        assert!(texts[0].starts_with("/etc/ks.conf line 5: not a KEY=value line"));
        assert!(texts[1].starts_with("/etc/ks.conf line 6: KEEPALIVE_SHIM_TYPO is not"));
        assert!(texts[2].starts_with("KEEPALIVE_SHIM_CONFIG is ignored"));
        assert!(
            texts[3].starts_with("/etc/ks.conf line 7: KEEPALIVE_SHIM_COUNT=\"0\" is not valid")
        );
        assert!(
            texts[4].contains("entry \"bogus\" is not valid")
                && texts[4].ends_with(
                    "no socket gets the options while an INCLUDE or EXCLUDE entry is invalid"
                ),
            "{}",
            texts[4]
        );
        assert!(c.include.is_invalid());
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
        // Any invalid entry: no destination gets the options, whatever the
        // valid entries say, with one warning per invalid entry.
        for (var, value) in [
            ("KEEPALIVE_SHIM_INCLUDE", "junk, also junk"),
            ("KEEPALIVE_SHIM_INCLUDE", "[::1]/128:99999"),
            ("KEEPALIVE_SHIM_INCLUDE", "192.168.0.0/16, 10.0.0.0/33"),
            ("KEEPALIVE_SHIM_EXCLUDE", "10.9.0.0/16, :0"),
        ] {
            let (c, d) = run(&[(var, value)]);
            assert!(
                !d.is_empty() && d.iter().all(|d| matches!(d, Diagnostic::BadEntry { .. })),
                "{value}: {d:?}"
            );
            assert!(c.has_filters(), "{value}");
            assert!(!c.decide(&addr("192.168.1.1:80")).applies, "{value}");
            let key = setting_by_var(var.as_bytes()).unwrap().key;
            assert!(c.is_invalid_list(key));
            assert_eq!(c.source(key), Source::Env(var));
            let mut shown = LineBuf::<128>::new();
            put_value(&mut shown, &c, key);
            assert_eq!(shown.as_bytes(), b"no socket (an entry is invalid)");
        }
        // An invalid list in the environment is not replaced by the file's.
        let (c, _) = run_with_file(
            &[("KEEPALIVE_SHIM_INCLUDE", "fd00::/8, bogus")],
            Some("KEEPALIVE_SHIM_INCLUDE=0.0.0.0/0\n"),
            false,
        );
        assert!(!c.decide(&addr("10.0.0.1:80")).applies);
        // The new IPv6 spellings are valid entries.
        let (c, d) = run(&[("KEEPALIVE_SHIM_INCLUDE", "::1, fd00::/8, [fe80::]/10:22")]);
        assert!(d.is_empty(), "{d:?}");
        assert!(c.decide(&addr("[::1]:80")).applies);
        assert!(c.decide(&addr("[fe80::1]:22")).applies);
        assert!(!c.decide(&addr("127.0.0.1:80")).applies);
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
        // An invalid name: no socket in any program gets the options, the
        // valid names' included; the hooks stay armed to print the warning.
        let dest = SockAddr {
            ip: crate::net::Ip::V4([10, 0, 0, 1]),
            port: 80,
        };
        for list in ["/usr/bin/curl", "curl, /usr/bin/wget"] {
            let (c, d) = run(&[("KEEPALIVE_SHIM_PROGRAMS", list)]);
            assert_eq!(d.len(), 1);
            assert!(c.programs.is_set() && c.programs.is_invalid());
            assert!(c.program_allowed(&[b"curl"]) && c.program_allowed(&[b"anything"]));
            assert!(c.has_filters() && c.filters().is_invalid());
            assert!(!c.decide(&dest).applies);
        }
    }
}
