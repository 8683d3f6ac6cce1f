//! The single source of truth for keepalive-shim's settings.
//!
//! [`SETTINGS`] is the one table of every variable: its name, the socket
//! option it drives, its default, its accepted range and its help text. The
//! preload library parses its environment with [`resolve`], the command-line
//! tool builds its flags, `--help` and `check` output from the same table, and
//! a test keeps the README's table identical to [`markdown_table`].
//!
//! The crate is `no_std` and panic-free so that the preload library (which is
//! built with `panic = "abort"`) can use it inside a host process.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod filter;
mod net;
mod parse;
mod resolve;
mod settings;
mod text;

pub use filter::{parse_ipv4, parse_ipv6, Decision, Filters, Net, Rule, RuleList, MAX_RULES};
pub use net::{Ip, SockAddr};
pub use parse::{parse_count, parse_duration_ms, parse_level, parse_switch};
pub use resolve::{
    put_source, put_value, resolve, resolve_env, Config, Diagnostic, EnvView, FileView, Origin,
    ProgramList, Source, Value,
};
pub use settings::{
    markdown_table, setting, setting_by_var, Key, Kind, Level, Mode, Setting, UserTimeout,
    DEFAULT_CONFIG_FILE, SETTINGS, VAR_PREFIX,
};
pub use text::{put_escaped, put_u64, LineBuf, Sink};
