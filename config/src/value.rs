//! Parsed values: what one setting's text means, range checked.

use crate::filter::RuleList;
use crate::parse::{parse_count, parse_duration_ms, parse_level, parse_switch};
use crate::settings::{Kind, Level, Mode, UserTimeout};

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
