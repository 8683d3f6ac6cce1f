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

mod config;
mod diagnostic;
mod file;
mod filter;
mod message;
mod net;
mod parse;
mod resolve;
mod settings;
mod sockopt;
mod sources;
mod text;
mod value;

pub use config::{Config, Source};
pub use diagnostic::{Diagnostic, Origin};
pub use file::{file_verdict, FileVerdict, ReadError, MAX_CONFIG_FILE_BYTES};
pub use filter::{parse_ipv4, parse_ipv6, Decision, Filters, Net, Rule, RuleList, MAX_RULES};
pub use message::{put_source, put_value};
pub use net::{Ip, SockAddr};
pub use parse::{parse_count, parse_duration_ms, parse_level, parse_switch};
pub use resolve::{resolve, resolve_env};
pub use settings::{
    markdown_table, put_alias_meaning, setting, setting_by_var, Alias, AliasMeaning, Key, Kind,
    Level, Mode, Setting, UserTimeout, DEFAULT_CONFIG_FILE, SETTINGS, VAR_PREFIX,
};
pub use sockopt::Opt;
pub use sources::{EnvView, FileView};
pub use text::{put_escaped, put_u64, LineBuf, Sink};
pub use value::{ProgramList, Value};
