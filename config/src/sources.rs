//! The two places settings come from: the environment and the config file,
//! each gathered once into a view that [`crate::resolve`] reads.

use crate::config::{key_index, N};
use crate::diagnostic::{Diagnostic, Origin};
use crate::settings::{Key, Kind, DEFAULT_CONFIG_FILE, SETTINGS, VAR_PREFIX};
use crate::value::Value;

/// Names per setting: the variable and its aliases, at most.
pub(crate) const NAMES: usize = max_names();

// Only evaluated at compile time, where a panic is a build error.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const fn max_names() -> usize {
    let mut most = 0;
    let mut i = 0;
    while i < SETTINGS.len() {
        let n = SETTINGS[i].aliases.len() + 1;
        if n > most {
            most = n;
        }
        i += 1;
    }
    most
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
                let names = core::iter::once(s.var).chain(s.aliases.iter().map(|a| a.name));
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

    pub(crate) fn get(&self, key: Key, name_index: usize) -> Option<&'a [u8]> {
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
    pub(crate) path: &'a [u8],
    pub(crate) values: [Option<(&'a [u8], u32)>; N],
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
                Some(i) => match view.values.get_mut(i) {
                    Some(slot @ None) => *slot = Some((value, number)),
                    // Shell and systemd `EnvironmentFile=` let the last
                    // one win; here the first does, as with `getenv`: say so.
                    Some(Some(_)) => report(Diagnostic::Ignored {
                        name: key,
                        why: "its second setting in the config file (the first line counts)",
                    }),
                    None => {}
                },
                None => report(Diagnostic::Unknown { name: key, origin }),
            }
        }
        view
    }
}
