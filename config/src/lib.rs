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
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

#[cfg(test)]
extern crate std;

mod net;
mod parse;
mod resolve;
mod settings;
mod text;

pub use net::{Ip, SockAddr};
pub use parse::{parse_count, parse_duration_ms, parse_level, parse_switch};
pub use resolve::{put_value, resolve, Config, Diagnostic, Source, Value};
pub use settings::{
    markdown_table, setting, setting_by_var, Key, Kind, Level, Setting, UserTimeout, SETTINGS,
    VAR_PREFIX,
};
pub use text::{put_escaped, put_u64, LineBuf, Sink};
