//! The table of settings. Everything user-visible about a variable is here.

use crate::text::Sink;

/// Every variable starts with this; unknown ones with this prefix are typos.
pub const VAR_PREFIX: &str = "KEEPALIVE_SHIM";

/// Which setting a row of [`SETTINGS`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Enabled,
    Idle,
    Interval,
    Count,
    UserTimeout,
    LogLevel,
    LogFile,
    Library,
}

/// How a value is written and which values are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `on`/`off`, `1`/`0`, `true`/`false`.
    Switch,
    /// A duration in whole seconds: `90`, `90s`, `2m`, `1h`.
    Seconds { min: u32, max: u32 },
    /// A plain count.
    Number { min: u32, max: u32 },
    /// `auto`, `off`, or a duration that may be in milliseconds.
    UserTimeout { min_ms: u32, max_ms: u32 },
    /// A log level.
    Level,
    /// An absolute path.
    Path,
}

/// `TCP_USER_TIMEOUT`'s value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserTimeout {
    /// (idle + interval x count) seconds, from the effective values.
    Auto,
    /// Not set by the shim.
    Off,
    Millis(u32),
}

/// Log levels, in increasing verbosity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Off,
        Level::Error,
        Level::Warn,
        Level::Info,
        Level::Debug,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    pub fn from_u8(n: u8) -> Level {
        match n {
            0 => Level::Off,
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            _ => Level::Debug,
        }
    }
}

/// One variable.
#[derive(Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: Key,
    /// The environment variable.
    pub var: &'static str,
    /// The socket option it sets, or its role in parentheses.
    pub target: &'static str,
    pub kind: Kind,
    /// The default, written as a value the parser accepts ("" = unset).
    pub default: &'static str,
    /// How the default reads in docs, when it is not self-explanatory.
    pub default_doc: &'static str,
    /// The accepted values, as the README and warnings state them.
    pub accepted: &'static str,
    /// `keepalive-shim run --FLAG`, if the wrapper has one.
    pub flag: Option<&'static str>,
    /// Placeholder for the flag's value in `--help`.
    pub value_name: &'static str,
    pub help: &'static str,
}

const MAX_SECONDS: u32 = 32767; // the kernel's MAX_TCP_KEEPIDLE / MAX_TCP_KEEPINTVL
const MAX_COUNT: u32 = 127; // the kernel's MAX_TCP_KEEPCNT
const MAX_USER_TIMEOUT_MS: u32 = i32::MAX as u32; // the kernel takes a non-negative int

/// Every setting, in the order docs and `check` list them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: Key::Enabled,
        var: "KEEPALIVE_SHIM",
        target: "(master switch)",
        kind: Kind::Switch,
        default: "on",
        default_doc: "`on`",
        accepted: "`on`/`off` (also `1`/`0`, `true`/`false`); `off` means pure pass-through",
        flag: None,
        value_name: "on|off",
        help: "Turn the shim on or off; off leaves every socket exactly as the program made it.",
    },
    Setting {
        key: Key::Idle,
        var: "KEEPALIVE_SHIM_IDLE",
        target: "TCP_KEEPIDLE",
        kind: Kind::Seconds {
            min: 1,
            max: MAX_SECONDS,
        },
        default: "60",
        default_doc: "60 s",
        accepted: "1 to 32767 s (`90`, `90s`, `2m`, `1h`)",
        flag: Some("idle"),
        value_name: "DURATION",
        help: "Idle time before the first keepalive probe.",
    },
    Setting {
        key: Key::Interval,
        var: "KEEPALIVE_SHIM_INTERVAL",
        target: "TCP_KEEPINTVL",
        kind: Kind::Seconds {
            min: 1,
            max: MAX_SECONDS,
        },
        default: "10",
        default_doc: "10 s",
        accepted: "1 to 32767 s (`90`, `90s`, `2m`, `1h`)",
        flag: Some("interval"),
        value_name: "DURATION",
        help: "Time between unanswered keepalive probes.",
    },
    Setting {
        key: Key::Count,
        var: "KEEPALIVE_SHIM_COUNT",
        target: "TCP_KEEPCNT",
        kind: Kind::Number {
            min: 1,
            max: MAX_COUNT,
        },
        default: "6",
        default_doc: "6",
        accepted: "1 to 127",
        flag: Some("count"),
        value_name: "N",
        help: "Unanswered probes before the connection is declared dead.",
    },
    Setting {
        key: Key::UserTimeout,
        var: "KEEPALIVE_SHIM_USER_TIMEOUT",
        target: "TCP_USER_TIMEOUT",
        kind: Kind::UserTimeout {
            min_ms: 1,
            max_ms: MAX_USER_TIMEOUT_MS,
        },
        default: "auto",
        default_doc: "`auto` = (idle + interval × count) s, set in ms",
        accepted: "`auto`, `off`, or a duration from 1 ms to 2147483647 ms (`5000ms`, `30s`, `2m`)",
        flag: Some("user-timeout"),
        value_name: "DURATION|auto|off",
        help: "How long sent data may stay unacknowledged before the connection is dropped.",
    },
    Setting {
        key: Key::LogLevel,
        var: "KEEPALIVE_SHIM_LOG",
        target: "(logging)",
        kind: Kind::Level,
        default: "warn",
        default_doc: "`warn`",
        accepted: "`off`, `error`, `warn`, `info`, `debug`",
        flag: Some("log"),
        value_name: "LEVEL",
        help: "info: one line per socket changed; debug: also the options the program set itself.",
    },
    Setting {
        key: Key::LogFile,
        var: "KEEPALIVE_SHIM_LOG_FILE",
        target: "(logging)",
        kind: Kind::Path,
        default: "",
        default_doc: "stderr",
        accepted: "an absolute path, appended to; ignored in setuid/setgid programs",
        flag: Some("log-file"),
        value_name: "PATH",
        help: "Append log lines to this file instead of stderr.",
    },
    Setting {
        key: Key::Library,
        var: "KEEPALIVE_SHIM_LIBRARY",
        target: "(wrapper)",
        kind: Kind::Path,
        default: "",
        default_doc: "beside the `keepalive-shim` executable, then `../lib/`",
        accepted: "an absolute path to `libkeepalive_shim.so`; read by `keepalive-shim run` only",
        flag: None,
        value_name: "PATH",
        help: "The library `keepalive-shim run` preloads.",
    },
];

/// The row for `key`. Every key has exactly one row (checked by a test).
pub fn setting(key: Key) -> &'static Setting {
    // The fallback is unreachable while the table has every key (a test checks).
    SETTINGS.iter().find(|s| s.key == key).unwrap_or(&FALLBACK)
}

const FALLBACK: Setting = Setting {
    key: Key::Enabled,
    var: "KEEPALIVE_SHIM",
    target: "",
    kind: Kind::Switch,
    default: "on",
    default_doc: "",
    accepted: "",
    flag: None,
    value_name: "",
    help: "",
};

/// The row whose variable is `var`, if any.
pub fn setting_by_var(var: &[u8]) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.var.as_bytes() == var)
}

/// The README's variable table, exactly.
pub fn markdown_table(out: &mut impl Sink) {
    out.put(b"| variable | socket option | default | accepted values | meaning |\n");
    out.put(b"|---|---|---|---|---|\n");
    for s in SETTINGS {
        out.put(b"| `");
        out.put(s.var.as_bytes());
        out.put(b"` | ");
        if s.target.starts_with('(') {
            out.put(s.target.as_bytes());
        } else {
            out.put(b"`");
            out.put(s.target.as_bytes());
            out.put(b"`");
        }
        out.put(b" | ");
        out.put(s.default_doc.as_bytes());
        out.put(b" | ");
        out.put(s.accepted.as_bytes());
        out.put(b" | ");
        out.put(s.help.as_bytes());
        out.put(b" |\n");
    }
}
