//! What can be wrong with a configuration, as data; [`crate::message`]
//! turns it into text.

use crate::file::ReadError;
use crate::settings::Setting;

/// Where a rejected value was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    Env,
    File { path: &'a [u8], line: u32 },
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
    /// The config file is ignored whole (see [`crate::file_verdict`]).
    FileIgnored { path: &'a [u8], why: ReadError },
}
