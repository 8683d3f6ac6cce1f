//! The table of settings. Everything user-visible about a variable is here.

use crate::text::Sink;

/// Every variable starts with this; unknown ones with this prefix are typos.
pub const VAR_PREFIX: &str = "KEEPALIVE_SHIM";

/// Declares [`Key`] and [`Key::ALL`] from one list, so that the list of
/// every key cannot miss a variant.
macro_rules! keys {
    ($($name:ident),+ $(,)?) => {
        /// Which setting a row of [`SETTINGS`] is.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Key {
            $($name,)+
        }

        impl Key {
            /// Every key, in declaration order.
            pub const ALL: &'static [Key] = &[$(Key::$name,)+];
        }
    };
}

keys! {
    Enabled,
    Idle,
    Interval,
    Count,
    UserTimeout,
    Mode,
    Include,
    Exclude,
    Programs,
    LogLevel,
    LogFile,
    ConfigFile,
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
    /// `respect` or `force`.
    Mode,
    /// A comma-separated list of destination filters.
    Destinations,
    /// A comma-separated list of executable names.
    Programs,
}

/// Who wins when the program sets one of the shim's options itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The program's own setting stands (per option).
    Respect,
    /// The shim's value stands.
    Force,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Respect => "respect",
            Mode::Force => "force",
        }
    }
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

impl UserTimeout {
    /// The `auto` value for one socket, in milliseconds: (idle + interval x
    /// count) seconds from the socket's *effective* keepalive values (the
    /// program's own where it set them), capped at `i32::MAX` (the kernel
    /// takes a non-negative `int`). A user timeout shorter than the socket's
    /// own probing period would abort a healthy connection after one lost
    /// probe ACK.
    pub fn auto_ms(idle_s: u32, interval_s: u32, count: u32) -> u32 {
        let s = u64::from(interval_s)
            .saturating_mul(u64::from(count))
            .saturating_add(u64::from(idle_s));
        let ms = s.saturating_mul(1000).min(MAX_USER_TIMEOUT_MS as u64);
        u32::try_from(ms).unwrap_or(MAX_USER_TIMEOUT_MS)
    }
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
}

/// How another tool's variable writes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasMeaning {
    /// As the setting's own variable.
    Same,
    /// libkeepalive-ng's plain integers: whole seconds for a duration, a
    /// count for a count; `0` leaves the system default, so the next source
    /// is used.
    Integer,
    /// libkeepalive-ng's `TCP_USER_TIMEOUT`: milliseconds; `-1` is `auto`;
    /// `0` leaves the system default, so the next source is used.
    MillisOrAuto,
}

/// Another tool's variable, honoured for a setting so that replacing that
/// tool needs only the library path.
#[derive(Debug, PartialEq, Eq)]
pub struct Alias {
    pub name: &'static str,
    pub meaning: AliasMeaning,
}

impl AliasMeaning {
    /// True if `v` asks for the system default: the alias is then as good
    /// as unset and the next source is used.
    pub fn leaves_default(self, v: &[u8]) -> bool {
        self != AliasMeaning::Same && v == b"0"
    }
}

impl Alias {
    const fn same(name: &'static str) -> Alias {
        Alias {
            name,
            meaning: AliasMeaning::Same,
        }
    }

    const fn integer(name: &'static str) -> Alias {
        Alias {
            name,
            meaning: AliasMeaning::Integer,
        }
    }
}

/// One variable.
#[derive(Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: Key,
    /// The environment variable (and the key in the config file).
    pub var: &'static str,
    /// Variables of other tools honoured when `var` is unset, in order of
    /// precedence: libkeepalive's, then libdontdie's, then libkeepalive-ng's.
    pub aliases: &'static [Alias],
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
        aliases: &[Alias::same("KEEPALIVE"), Alias::same("DD_USE_KEEPALIVE")],
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
        aliases: &[
            Alias::same("KEEPIDLE"),
            Alias::same("DD_TCP_KEEPALIVE_TIME"),
            Alias::integer("TCP_KEEPIDLE"),
        ],
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
        aliases: &[
            Alias::same("KEEPINTVL"),
            Alias::same("DD_TCP_KEEPALIVE_INTVL"),
            Alias::integer("TCP_KEEPINTVL"),
        ],
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
        aliases: &[
            Alias::same("KEEPCNT"),
            Alias::same("DD_TCP_KEEPALIVE_PROBES"),
            Alias::integer("TCP_KEEPCNT"),
        ],
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
        aliases: &[Alias {
            name: "TCP_USER_TIMEOUT",
            meaning: AliasMeaning::MillisOrAuto,
        }],
        target: "TCP_USER_TIMEOUT",
        kind: Kind::UserTimeout {
            min_ms: 1,
            max_ms: MAX_USER_TIMEOUT_MS,
        },
        default: "off",
        default_doc: "`off` (not set)",
        accepted: "`off`; `auto` = (idle + interval × count) s from each socket's effective values, in ms; or a duration from 1 ms to 2147483647 ms (`5000ms`, `30s`, `2m`)",
        flag: Some("user-timeout"),
        value_name: "DURATION|auto|off",
        help: "Opt-in. Sent data unacknowledged this long fails the connection (bounded, instead of ~15 min of retransmissions); but a live peer that keeps its receive window closed this long is disconnected too.",
    },
    Setting {
        key: Key::Mode,
        var: "KEEPALIVE_SHIM_MODE",
        aliases: &[],
        target: "(policy)",
        kind: Kind::Mode,
        default: "respect",
        default_doc: "`respect`",
        accepted: "`respect` (an option the program sets itself stands) or `force` (the shim's values stand)",
        flag: Some("mode"),
        value_name: "respect|force",
        help: "Who wins, per option, when the program sets keepalive options itself.",
    },
    Setting {
        key: Key::Include,
        var: "KEEPALIVE_SHIM_INCLUDE",
        aliases: &[],
        target: "(filter)",
        kind: Kind::Destinations,
        default: "",
        default_doc: "every destination",
        accepted: "comma-separated `IPV4[/LEN][:PORT[-PORT]]`, `IPV6[/LEN]` (no port), `[IPV6]/LEN[:PORT[-PORT]]` or `[IPV6[/LEN]][:PORT[-PORT]]`, `:PORT[-PORT]`",
        flag: Some("include"),
        value_name: "LIST",
        help: "Only connections to these destinations (servers: their local address) get the options; none do while an entry of INCLUDE or EXCLUDE is invalid.",
    },
    Setting {
        key: Key::Exclude,
        var: "KEEPALIVE_SHIM_EXCLUDE",
        aliases: &[],
        target: "(filter)",
        kind: Kind::Destinations,
        default: "",
        default_doc: "none",
        accepted: "same as `KEEPALIVE_SHIM_INCLUDE`; wins over it",
        flag: Some("exclude"),
        value_name: "LIST",
        help: "Connections to these destinations are left alone (all are while an entry is invalid).",
    },
    Setting {
        key: Key::Programs,
        var: "KEEPALIVE_SHIM_PROGRAMS",
        aliases: &[],
        target: "(filter)",
        kind: Kind::Programs,
        default: "",
        default_doc: "every program",
        accepted: "comma-separated executable names (basename of the executable or of argv[0])",
        flag: None,
        value_name: "LIST",
        help: "The shim is active only in these programs; inert in any other; no socket anywhere gets the options while a name is invalid.",
    },
    Setting {
        key: Key::LogLevel,
        var: "KEEPALIVE_SHIM_LOG",
        aliases: &[],
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
        aliases: &[],
        target: "(logging)",
        kind: Kind::Path,
        default: "",
        default_doc: "stderr",
        accepted: "an absolute path, appended to; from the environment, ignored in setuid/setgid programs",
        flag: Some("log-file"),
        value_name: "PATH",
        help: "Append log lines to this file instead of stderr.",
    },
    Setting {
        key: Key::ConfigFile,
        var: "KEEPALIVE_SHIM_CONFIG",
        aliases: &[],
        target: "(config file)",
        kind: Kind::Path,
        default: "",
        default_doc: "`/etc/keepalive-shim.conf`, if it exists",
        accepted: "an absolute path to a file of `KEY=value` lines; ignored in setuid/setgid programs",
        flag: None,
        value_name: "PATH",
        help: "Settings file; the environment overrides it.",
    },
    Setting {
        key: Key::Library,
        var: "KEEPALIVE_SHIM_LIBRARY",
        aliases: &[],
        target: "(wrapper)",
        kind: Kind::Path,
        default: "",
        default_doc: "beside the `keepalive-shim` executable, then `../lib/`, `../lib/<multiarch>/`, `../lib/keepalive-shim/`",
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
    aliases: &[],
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

/// Where the config file is looked for when `KEEPALIVE_SHIM_CONFIG` is unset.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/keepalive-shim.conf";

/// How an alias's values differ from its setting's (Markdown, after its
/// name); nothing when they are the same.
pub fn put_alias_meaning(out: &mut impl Sink, meaning: AliasMeaning, kind: Kind) {
    match (meaning, kind) {
        (AliasMeaning::Same, _) => {}
        (AliasMeaning::Integer, Kind::Seconds { .. }) => {
            out.put(b" in whole seconds with `0` = not set")
        }
        (AliasMeaning::Integer, _) => out.put(b" with `0` = not set"),
        (AliasMeaning::MillisOrAuto, _) => out.put(b" in ms with `-1` = `auto`, `0` = not set"),
    }
}

/// The README's variable table, exactly.
pub fn markdown_table(out: &mut impl Sink) {
    out.put(b"| variable | socket option | default | accepted values | meaning |\n");
    out.put(b"|---|---|---|---|---|\n");
    for s in SETTINGS {
        out.put(b"| `");
        out.put(s.var.as_bytes());
        out.put(b"`");
        for (i, alias) in s.aliases.iter().enumerate() {
            out.put(if i == 0 { b" (or `" } else { b", `" });
            out.put(alias.name.as_bytes());
            out.put(b"`");
            put_alias_meaning(out, alias.meaning, s.kind);
        }
        if !s.aliases.is_empty() {
            out.put(b")");
        }
        out.put(b" | ");
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
