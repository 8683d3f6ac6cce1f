//! Value parsers. Strict: no whitespace, no sign, no clamping, overflow is an
//! error. Words are ASCII case-insensitive.

use crate::settings::Level;

/// `on`/`off`, `1`/`0`, `true`/`false`.
pub fn parse_switch(v: &[u8]) -> Option<bool> {
    const ON: [&[u8]; 3] = [b"on", b"1", b"true"];
    const OFF: [&[u8]; 3] = [b"off", b"0", b"false"];
    if ON.iter().any(|w| w.eq_ignore_ascii_case(v)) {
        Some(true)
    } else if OFF.iter().any(|w| w.eq_ignore_ascii_case(v)) {
        Some(false)
    } else {
        None
    }
}

pub fn parse_level(v: &[u8]) -> Option<Level> {
    Level::ALL
        .into_iter()
        .find(|l| l.name().as_bytes().eq_ignore_ascii_case(v))
}

/// Leading decimal digits as a number, and the rest. `None` if there are no
/// digits or the number overflows.
fn split_number(v: &[u8]) -> Option<(u64, &[u8])> {
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let (num, rest) = v.split_at_checked(digits)?;
    let mut n: u64 = 0;
    for &b in num {
        n = n
            .checked_mul(10)?
            .checked_add(u64::from(b.wrapping_sub(b'0')))?;
    }
    Some((n, rest))
}

/// A plain decimal count.
pub fn parse_count(v: &[u8]) -> Option<u64> {
    match split_number(v)? {
        (n, b"") => Some(n),
        _ => None,
    }
}

/// A duration in milliseconds: a number with no unit (seconds), or with `s`,
/// `m`, `h`, or (only if `allow_ms`) `ms`.
pub fn parse_duration_ms(v: &[u8], allow_ms: bool) -> Option<u64> {
    let (n, unit) = split_number(v)?;
    let scale: u64 = match unit {
        b"" | b"s" => 1000,
        b"m" => 60_000,
        b"h" => 3_600_000,
        b"ms" if allow_ms => 1,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_words() {
        for v in ["on", "ON", "1", "true", "True"] {
            assert_eq!(parse_switch(v.as_bytes()), Some(true), "{v}");
        }
        for v in ["off", "Off", "0", "false", "FALSE"] {
            assert_eq!(parse_switch(v.as_bytes()), Some(false), "{v}");
        }
        for v in ["", "yes", "2", " on", "on ", "o"] {
            assert_eq!(parse_switch(v.as_bytes()), None, "{v:?}");
        }
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level(b"info"), Some(Level::Info));
        assert_eq!(parse_level(b"DEBUG"), Some(Level::Debug));
        assert_eq!(parse_level(b"off"), Some(Level::Off));
        assert_eq!(parse_level(b"trace"), None);
        assert_eq!(parse_level(b""), None);
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count(b"0"), Some(0));
        assert_eq!(parse_count(b"127"), Some(127));
        assert_eq!(parse_count(b"007"), Some(7));
        assert_eq!(parse_count(b"18446744073709551615"), Some(u64::MAX));
        for v in [
            "",
            "-1",
            "+1",
            "1.5",
            "1s",
            "abc",
            " 1",
            "18446744073709551616",
        ] {
            assert_eq!(parse_count(v.as_bytes()), None, "{v:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms(b"90", false), Some(90_000));
        assert_eq!(parse_duration_ms(b"90s", false), Some(90_000));
        assert_eq!(parse_duration_ms(b"2m", false), Some(120_000));
        assert_eq!(parse_duration_ms(b"1h", false), Some(3_600_000));
        assert_eq!(parse_duration_ms(b"1500ms", true), Some(1500));
        assert_eq!(parse_duration_ms(b"1500ms", false), None);
        for v in [
            "",
            "s",
            "-5",
            "5x",
            "5 s",
            "5S5",
            "1.5s",
            "5sec",
            "99999999999999999999",
        ] {
            assert_eq!(parse_duration_ms(v.as_bytes(), true), None, "{v:?}");
        }
        // Overflow of the scaled value is an error, not a wrap.
        assert_eq!(parse_duration_ms(b"18446744073709551h", true), None);
    }
}
