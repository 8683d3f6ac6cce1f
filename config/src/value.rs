//! Parsed values: what one setting's text means, range checked.

use crate::filter::RuleList;
use crate::parse::{parse_count, parse_duration_ms, parse_level, parse_switch};
use crate::settings::{AliasMeaning, Kind, Level, Mode, UserTimeout};

/// The executable names `KEEPALIVE_SHIM_PROGRAMS` allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramList<'a> {
    names: [&'a [u8]; 16],
    len: usize,
    invalid: bool,
}

impl<'a> ProgramList<'a> {
    pub const EMPTY: ProgramList<'static> = ProgramList {
        names: [&[]; 16],
        len: 0,
        invalid: false,
    };

    pub fn names(&self) -> &[&'a [u8]] {
        self.names.get(..self.len).unwrap_or(&[])
    }

    /// True if a name was not valid (or there were more than 16): the
    /// shim is then inert in every program.
    pub fn is_invalid(&self) -> bool {
        self.invalid
    }

    /// True if the list was given: it has names, or is invalid.
    pub fn is_set(&self) -> bool {
        !self.names().is_empty() || self.invalid
    }

    fn parse(list: &'a [u8], bad: &mut dyn FnMut(&'a [u8])) -> ProgramList<'a> {
        let mut out: ProgramList<'a> = ProgramList::EMPTY;
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
                _ => {
                    out.invalid = true;
                    bad(name)
                }
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
    /// Parses `v` as a value of `kind`, range included. A list with an
    /// invalid entry is kept, marked invalid (it then applies to nothing);
    /// invalid entries go to `bad_entry`. An empty list is `None`.
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
                list.is_set().then_some(Value::Destinations(list))
            }
            Kind::Programs => {
                let list = ProgramList::parse(v, bad_entry);
                list.is_set().then_some(Value::Programs(list))
            }
        }
    }

    /// Parses another tool's variable, written as `meaning` says, as a
    /// value of `kind`. Call [`AliasMeaning::leaves_default`] first: `0` is
    /// not a value here.
    pub fn parse_alias(
        meaning: AliasMeaning,
        kind: Kind,
        v: &'a [u8],
        bad_entry: &mut dyn FnMut(&'a [u8]),
    ) -> Option<Value<'a>> {
        let in_range =
            |n: u64, min: u32, max: u32| u32::try_from(n).ok().filter(|n| (min..=max).contains(n));
        match (meaning, kind) {
            (AliasMeaning::Same, _) => Value::parse_list(kind, v, bad_entry),
            (AliasMeaning::Integer, Kind::Seconds { min, max }) => {
                in_range(parse_count(v)?, min, max).map(Value::Seconds)
            }
            (AliasMeaning::Integer, Kind::Number { min, max }) => {
                in_range(parse_count(v)?, min, max).map(Value::Number)
            }
            (AliasMeaning::MillisOrAuto, Kind::UserTimeout { min_ms, max_ms }) => {
                if v == b"-1" {
                    return Some(Value::UserTimeout(UserTimeout::Auto));
                }
                let ms = in_range(parse_count(v)?, min_ms, max_ms)?;
                Some(Value::UserTimeout(UserTimeout::Millis(ms)))
            }
            // A table entry pairing a meaning with a kind it cannot have.
            _ => None,
        }
    }

    pub(crate) fn seconds(self) -> Option<u32> {
        match self {
            Value::Seconds(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn destinations(self) -> Option<crate::filter::RuleList> {
        match self {
            Value::Destinations(l) => Some(l),
            _ => None,
        }
    }

    pub(crate) fn path(self) -> Option<Option<&'a [u8]>> {
        match self {
            Value::Path(p) => Some(Some(p)),
            _ => None,
        }
    }

    /// [`Value::parse_list`] that rejects a list with any invalid entry.
    pub fn parse(kind: Kind, v: &'a [u8]) -> Option<Value<'a>> {
        let mut any_bad = false;
        let value = Value::parse_list(kind, v, &mut |_| any_bad = true)?;
        (!any_bad).then_some(value)
    }
}
