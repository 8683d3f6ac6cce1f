//! Destination filters: `KEEPALIVE_SHIM_INCLUDE` / `KEEPALIVE_SHIM_EXCLUDE`.
//!
//! Grammar of one entry (entries are comma-separated):
//!
//! ```text
//! entry := ":" ports
//!        | ipv4 ["/" len] [":" ports]
//!        | ipv6 ["/" len]                       (bare: no port)
//!        | "[" ipv6 ["/" len] "]" [":" ports]
//!        | "[" ipv6 "]" "/" len [":" ports]
//! ports := port ["-" port]          (1..=65535, low <= high)
//! ```
//!
//! A list with any invalid entry (or more than [`MAX_RULES`]) is *invalid*:
//! which connections the user meant is unknown, so an invalid list matches
//! no destination and [`Filters::decide`] applies to none.
//!
//! A bare IPv6 address never carries a port: `fd00::1:443` is an address.
//! An address without a length means /32 or /128. IPv4-mapped IPv6 destinations
//! (`::ffff:10.1.2.3`) are matched as IPv4. Lists live in fixed-size arrays so
//! that matching, which runs inside `connect()`, never allocates.

use crate::net::{Ip, SockAddr};
use crate::text::{put_u64, Sink};

/// The most entries one list keeps; a longer list is invalid.
pub const MAX_RULES: usize = 32;

/// An address block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    V4 { addr: u32, prefix: u8 },
    // Bytes, not u128: a u128 would align every rule to 16 bytes, and the
    // lists are copied on the library's small constructor stack.
    V6 { addr: [u8; 16], prefix: u8 },
}

/// One entry: an optional address block and a port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub net: Option<Net>,
    pub ports: (u16, u16),
}

const ANY_PORT: (u16, u16) = (0, u16::MAX);

impl Rule {
    pub fn matches(&self, dest: &SockAddr) -> bool {
        let (lo, hi) = self.ports;
        if dest.port < lo || dest.port > hi {
            return false;
        }
        match (self.net, unmap(dest.ip)) {
            (None, _) => true,
            (Some(Net::V4 { addr, prefix }), Ip::V4(ip)) => same_prefix(
                u128::from(addr),
                u128::from(u32::from_be_bytes(ip)),
                prefix,
                32,
            ),
            (Some(Net::V6 { addr, prefix }), Ip::V6(ip)) => same_prefix(
                u128::from_be_bytes(addr),
                u128::from_be_bytes(ip),
                prefix,
                128,
            ),
            _ => false,
        }
    }

    /// The entry in canonical form, e.g. `10.16.0.0/16:8000-8999`.
    pub fn write(&self, out: &mut impl Sink) {
        match self.net {
            None => {}
            Some(Net::V4 { addr, prefix }) => {
                SockAddr {
                    ip: Ip::V4(addr.to_be_bytes()),
                    port: 0,
                }
                .write_ip(out);
                if prefix != 32 {
                    out.put(b"/");
                    put_u64(out, u64::from(prefix));
                }
            }
            Some(Net::V6 { addr, prefix }) => {
                out.put(b"[");
                SockAddr {
                    ip: Ip::V6(addr),
                    port: 0,
                }
                .write_ip(out);
                if prefix != 128 {
                    out.put(b"/");
                    put_u64(out, u64::from(prefix));
                }
                out.put(b"]");
            }
        }
        if self.ports != ANY_PORT {
            out.put(b":");
            put_u64(out, u64::from(self.ports.0));
            if self.ports.1 != self.ports.0 {
                out.put(b"-");
                put_u64(out, u64::from(self.ports.1));
            }
        }
    }
}

/// `::ffff:a.b.c.d` is `a.b.c.d`.
fn unmap(ip: Ip) -> Ip {
    match ip {
        Ip::V6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]) => Ip::V4([a, b, c, d]),
        other => other,
    }
}

fn same_prefix(a: u128, b: u128, prefix: u8, bits: u32) -> bool {
    let host_bits = bits.saturating_sub(u32::from(prefix));
    a.checked_shr(host_bits).unwrap_or(0) == b.checked_shr(host_bits).unwrap_or(0)
}

/// A parsed list of entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleList {
    rules: [Rule; MAX_RULES],
    len: usize,
    invalid: bool,
}

impl RuleList {
    pub const EMPTY: RuleList = RuleList {
        rules: [Rule {
            net: None,
            ports: ANY_PORT,
        }; MAX_RULES],
        len: 0,
        invalid: false,
    };

    /// A list that had an invalid entry, and matches nothing.
    pub const INVALID: RuleList = RuleList {
        invalid: true,
        ..RuleList::EMPTY
    };

    /// True if the list has no valid entry (it may still be invalid).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if an entry was not valid, or there were too many.
    pub fn is_invalid(&self) -> bool {
        self.invalid
    }

    /// True if the list was given: it has entries, or is invalid.
    pub fn is_set(&self) -> bool {
        !self.is_empty() || self.invalid
    }

    pub fn rules(&self) -> &[Rule] {
        self.rules.get(..self.len).unwrap_or(&[])
    }

    /// The first entry that matches `dest`.
    pub fn find(&self, dest: &SockAddr) -> Option<&Rule> {
        self.rules().iter().find(|r| r.matches(dest))
    }

    fn push(&mut self, rule: Rule) -> bool {
        match self.rules.get_mut(self.len) {
            Some(slot) => {
                *slot = rule;
                self.len = self.len.saturating_add(1);
                true
            }
            None => false,
        }
    }

    /// Parses a comma-separated list. Each invalid entry (or one past
    /// [`MAX_RULES`]) is passed to `bad`, and makes the list invalid.
    pub fn parse<'a>(list: &'a [u8], bad: &mut dyn FnMut(&'a [u8])) -> RuleList {
        let mut out = RuleList::EMPTY;
        for entry in list.split(|&b| b == b',').map(|e| e.trim_ascii()) {
            if entry.is_empty() {
                continue;
            }
            match parse_rule(entry) {
                Some(rule) if out.push(rule) => {}
                _ => {
                    out.invalid = true;
                    bad(entry)
                }
            }
        }
        out
    }
}

/// INCLUDE and EXCLUDE together: the one place that decides whether a
/// destination gets the options (the library's hooks and `check --to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filters {
    pub include: RuleList,
    pub exclude: RuleList,
}

/// Whether a destination gets the options, and which entries decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub applies: bool,
    /// The INCLUDE entry that matched (`None` with no INCLUDE list).
    pub included_by: Option<Rule>,
    /// The EXCLUDE entry that matched.
    pub excluded_by: Option<Rule>,
}

impl Filters {
    /// True if any filter is set (an invalid one included): decisions
    /// wait for the destination.
    pub fn is_set(&self) -> bool {
        self.include.is_set() || self.exclude.is_set()
    }

    /// True if either list is invalid: no destination gets the options.
    pub fn is_invalid(&self) -> bool {
        self.include.is_invalid() || self.exclude.is_invalid()
    }

    /// EXCLUDE wins over INCLUDE; an empty INCLUDE matches everything; an
    /// invalid list in either applies to nothing.
    pub fn decide(&self, dest: &SockAddr) -> Decision {
        if self.is_invalid() {
            return Decision {
                applies: false,
                included_by: None,
                excluded_by: None,
            };
        }
        let included_by = self.include.find(dest).copied();
        let excluded_by = self.exclude.find(dest).copied();
        let included = self.include.is_empty() || included_by.is_some();
        Decision {
            applies: included && excluded_by.is_none(),
            included_by,
            excluded_by,
        }
    }
}

fn parse_rule(s: &[u8]) -> Option<Rule> {
    // `:PORTS`, but not `::1`.
    if let Some(ports) = s.strip_prefix(b":").filter(|p| !p.contains(&b':')) {
        return Some(Rule {
            net: None,
            ports: parse_ports(ports)?,
        });
    }
    let (net, rest) = if let Some(inner) = s.strip_prefix(b"[") {
        // `[ADDR]`, `[ADDR/LEN]` or `[ADDR]/LEN`, then `:PORTS` or nothing.
        let close = inner.iter().position(|&b| b == b']')?;
        let (block, rest) = inner.split_at(close);
        let rest = rest.get(1..).unwrap_or(&[]);
        let (addr, inner_len) = split_prefix(block, 128)?;
        let (prefix, rest) = match rest.strip_prefix(b"/") {
            // One prefix length, inside or outside the brackets.
            Some(_) if block.contains(&b'/') => return None,
            Some(after) => {
                let end = after.iter().position(|&b| b == b':').unwrap_or(after.len());
                let (len, rest) = after.split_at(end);
                (u8::try_from(parse_small(len, 128)?).ok()?, rest)
            }
            None => (inner_len, rest),
        };
        (v6_net(parse_ipv6(addr)?, prefix), rest)
    } else if s.iter().filter(|&&b| b == b':').count() >= 2 {
        // A bare IPv6 address or prefix: its colons leave no room for a
        // port (brackets are needed for one).
        let (addr, prefix) = split_prefix(s, 128)?;
        (v6_net(parse_ipv6(addr)?, prefix), &[][..])
    } else {
        let end = s.iter().position(|&b| b == b':').unwrap_or(s.len());
        let (block, rest) = s.split_at(end);
        let (addr, prefix) = split_prefix(block, 32)?;
        (
            Net::V4 {
                addr: u32::from_be_bytes(parse_ipv4(addr)?),
                prefix,
            },
            rest,
        )
    };
    let ports = match rest {
        [] => ANY_PORT,
        [b':', ports @ ..] => parse_ports(ports)?,
        _ => return None,
    };
    Some(Rule {
        net: Some(net),
        ports,
    })
}

/// An IPv6 block; an IPv4-mapped one (`::ffff:10.1.2.3`, `::ffff:0:0/96`)
/// is the IPv4 block it maps, since mapped destinations are matched as
/// IPv4 (the form the log prints is then one that matches).
fn v6_net(addr: [u8; 16], prefix: u8) -> Net {
    let (head, v4) = addr.split_at(12);
    match (head, <[u8; 4]>::try_from(v4), prefix.checked_sub(96)) {
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], Ok(v4), Some(v4_prefix)) => Net::V4 {
            addr: u32::from_be_bytes(v4),
            prefix: v4_prefix,
        },
        _ => Net::V6 { addr, prefix },
    }
}

/// `addr[/len]` -> (addr, len), len defaulting to `max`.
fn split_prefix(block: &[u8], max: u8) -> Option<(&[u8], u8)> {
    match block.iter().position(|&b| b == b'/') {
        None => Some((block, max)),
        Some(slash) => {
            let (addr, len) = block.split_at(slash);
            let len = parse_small(len.get(1..)?, u32::from(max))?;
            Some((addr, u8::try_from(len).ok()?))
        }
    }
}

fn parse_ports(s: &[u8]) -> Option<(u16, u16)> {
    let (lo, hi) = match s.iter().position(|&b| b == b'-') {
        None => (s, s),
        Some(dash) => {
            let (lo, hi) = s.split_at(dash);
            (lo, hi.get(1..)?)
        }
    };
    let lo = u16::try_from(parse_small(lo, 65535)?).ok()?;
    let hi = u16::try_from(parse_small(hi, 65535)?).ok()?;
    (lo >= 1 && lo <= hi).then_some((lo, hi))
}

/// A decimal number of at most 5 digits, at most `max`.
fn parse_small(s: &[u8], max: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = s.iter().fold(0u32, |n, &d| {
        n.saturating_mul(10)
            .saturating_add(u32::from(d.wrapping_sub(b'0')))
    });
    (n <= max).then_some(n)
}

pub fn parse_ipv4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split(|&b| b == b'.');
    for slot in out.iter_mut() {
        let part = parts.next()?;
        if part.len() > 3 {
            return None;
        }
        *slot = u8::try_from(parse_small(part, 255)?).ok()?;
    }
    parts.next().is_none().then_some(out)
}

pub fn parse_ipv6(s: &[u8]) -> Option<[u8; 16]> {
    // Split at "::" (at most once) into a head and a tail of groups.
    let (head, tail) = match s.windows(2).position(|w| w == b"::") {
        Some(i) => (s.get(..i)?, Some(s.get(i.checked_add(2)?..)?)),
        None => (s, None),
    };
    let mut groups = [0u16; 8];
    let mut head_n = 0usize;
    let mut tail_groups = [0u16; 8];
    let mut tail_n = 0usize;
    let fill =
        |part: &[u8], dst: &mut [u16; 8], n: &mut usize, last_may_be_v4: bool| -> Option<()> {
            if part.is_empty() {
                return Some(());
            }
            let count = part
                .iter()
                .filter(|&&b| b == b':')
                .count()
                .saturating_add(1);
            for (i, g) in part.split(|&b| b == b':').enumerate() {
                if last_may_be_v4 && i.saturating_add(1) == count && g.contains(&b'.') {
                    let [a, b, c, d] = parse_ipv4(g)?;
                    *dst.get_mut(*n)? = u16::from_be_bytes([a, b]);
                    *dst.get_mut(n.checked_add(1)?)? = u16::from_be_bytes([c, d]);
                    *n = n.checked_add(2)?;
                    continue;
                }
                if g.is_empty() || g.len() > 4 || !g.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let v = g.iter().fold(0u16, |v, &h| {
                    let d = match h {
                        b'0'..=b'9' => h.wrapping_sub(b'0'),
                        b'a'..=b'f' => h.wrapping_sub(b'a').wrapping_add(10),
                        _ => h.wrapping_sub(b'A').wrapping_add(10),
                    };
                    v.wrapping_shl(4) | u16::from(d)
                });
                *dst.get_mut(*n)? = v;
                *n = n.checked_add(1)?;
            }
            Some(())
        };
    fill(head, &mut groups, &mut head_n, tail.is_none())?;
    match tail {
        None => {
            if head_n != 8 {
                return None;
            }
        }
        Some(tail) => {
            fill(tail, &mut tail_groups, &mut tail_n, true)?;
            if head_n.checked_add(tail_n)? > 7 {
                return None;
            }
            let start = 8usize.checked_sub(tail_n)?;
            for (dst, src) in groups.get_mut(start..)?.iter_mut().zip(tail_groups.iter()) {
                *dst = *src;
            }
        }
    }
    let mut out = [0u8; 16];
    for (pair, g) in out.chunks_exact_mut(2).zip(groups) {
        pair.copy_from_slice(&g.to_be_bytes());
    }
    Some(out)
}

#[cfg(test)]
// Tests may panic: a failed unwrap or index is a failed test.
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::text::LineBuf;
    use std::vec::Vec;

    fn addr(s: &str) -> SockAddr {
        let a: std::net::SocketAddr = s.parse().unwrap();
        let ip = match a.ip() {
            std::net::IpAddr::V4(v) => Ip::V4(v.octets()),
            std::net::IpAddr::V6(v) => Ip::V6(v.octets()),
        };
        SockAddr { ip, port: a.port() }
    }

    fn list(s: &str) -> (RuleList, Vec<std::string::String>) {
        let mut bad = Vec::new();
        let l = RuleList::parse(s.as_bytes(), &mut |e| {
            bad.push(std::string::String::from_utf8_lossy(e).into_owned())
        });
        (l, bad)
    }

    fn matches(l: &str, dest: &str) -> bool {
        let (l, bad) = list(l);
        assert!(bad.is_empty(), "{bad:?}");
        l.find(&addr(dest)).is_some()
    }

    #[test]
    fn every_entry_form_of_the_issue() {
        assert!(matches("10.16.0.0/16", "10.16.200.1:80"));
        assert!(!matches("10.16.0.0/16", "10.17.0.1:80"));
        assert!(matches("10.16.6.104:8529", "10.16.6.104:8529"));
        assert!(!matches("10.16.6.104:8529", "10.16.6.104:8530"));
        assert!(!matches("10.16.6.104:8529", "10.16.6.105:8529"));
        assert!(matches(":5432", "10.1.1.1:5432"));
        assert!(matches(":5432", "[2001:db8::1]:5432"));
        assert!(!matches(":5432", "10.1.1.1:5433"));
        assert!(matches(":8000-8999", "127.0.0.1:8000"));
        assert!(matches(":8000-8999", "127.0.0.1:8999"));
        assert!(!matches(":8000-8999", "127.0.0.1:9000"));
        assert!(matches("[fd00::/8]:443", "[fd12:3456::1]:443"));
        assert!(!matches("[fd00::/8]:443", "[fd12:3456::1]:80"));
        assert!(!matches("[fd00::/8]:443", "[fe80::1]:443"));
        assert!(matches("[::1]", "[::1]:1"));
        assert!(!matches("[::1]", "[::2]:1"));
        assert!(matches("10.0.0.1", "10.0.0.1:9")); // bare address = /32
        assert!(!matches("10.0.0.1", "10.0.0.2:9"));
    }

    #[test]
    fn ipv6_spellings_people_write() {
        // Bare address or prefix, without a port.
        for spelling in ["::1", "::1/128", "[::1]", "[::1/128]", "[::1]/128"] {
            assert!(matches(spelling, "[::1]:80"), "{spelling}");
            assert!(!matches(spelling, "[::2]:80"), "{spelling}");
            assert!(!matches(spelling, "127.0.0.1:80"), "{spelling}");
        }
        assert!(matches("fd00::/8", "[fd12::1]:443"));
        assert!(!matches("fd00::/8", "[fe80::1]:443"));
        // The length outside the brackets, with and without ports.
        assert!(matches("[fd00::]/8:443", "[fd12::1]:443"));
        assert!(!matches("[fd00::]/8:443", "[fd12::1]:80"));
        assert!(matches("[fd00::]/8:440-450", "[fd12::1]:445"));
        assert!(matches("[fd00::/8]:440-450", "[fd12::1]:445"));
        assert!(!matches("[fd00::/8]:440-450", "[fe80::1]:445"));
        // A bare address's last group is part of the address, not a port.
        assert!(matches("fd00::1:443", "[fd00::1:443]:1"));
        assert!(!matches("fd00::1:443", "[fd00::1]:443"));
        // IPv4 spellings are unchanged.
        assert!(matches("10.0.0.0/8:22", "10.9.9.9:22"));
        assert!(!matches("10.0.0.0/8:22", "10.9.9.9:23"));
        for bad in [
            "[::1/128]/128",
            "[::1]/129",
            "::1/129",
            "::1/128:80",
            "[::1]/",
            "[::1]/8x",
            "[::1]:",
            "fd00::/8]",
            "::1]",
            "1::2::3",
        ] {
            let (l, bad_entries) = list(bad);
            assert!(l.is_empty() && bad_entries.len() == 1, "{bad}");
        }
    }

    #[test]
    fn ipv4_mapped_entries_are_their_ipv4_blocks() {
        assert!(matches("::ffff:127.0.0.1", "127.0.0.1:80"));
        assert!(matches("[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.1]:80"));
        assert!(matches("::ffff:0:0/96", "10.1.2.3:1"));
        assert!(matches(
            "[::ffff:10.0.0.0]/104:5432",
            "[::ffff:10.9.8.7]:5432"
        ));
        assert!(!matches(
            "[::ffff:10.0.0.0]/104:5432",
            "[::ffff:11.9.8.7]:5432"
        ));
    }

    #[test]
    fn ipv4_mapped_destinations_match_as_ipv4() {
        assert!(matches("10.1.0.0/16", "[::ffff:10.1.2.3]:5432"));
        assert!(matches("10.1.2.3:5432", "[::ffff:10.1.2.3]:5432"));
        assert!(!matches("[::/0]", "[::ffff:10.1.2.3]:5432"));
        assert!(!matches("10.1.0.0/16", "[::1]:5432"));
        assert!(!matches("[::/0]", "10.1.2.3:80")); // families never mix otherwise
    }

    #[test]
    fn prefix_edges() {
        assert!(matches("0.0.0.0/0", "1.2.3.4:5"));
        assert!(matches("[::/0]", "[1::]:5"));
        assert!(matches("10.16.5.9/16", "10.16.0.1:1")); // host bits are ignored
        assert!(matches("[2001:db8::/32]", "[2001:db8:ffff::1]:1"));
        assert!(!matches("[2001:db8::/33]", "[2001:db8:ffff::1]:1"));
    }

    #[test]
    fn invalid_entries_are_reported_and_skipped() {
        let (l, bad) = list(
            " 10.0.0.0/8 , junk, :0, :70000, :9-8, 10.0.0.0/33, [fd00::/129], \
                              [fd00::1/64]/64, [fd00::1, 1.2.3, 1.2.3.4.5, 256.1.1.1, [::1]x, 1.2.3.4:, :, \
                              [::1]:443",
        );
        assert_eq!(l.rules().len(), 2);
        assert_eq!(bad.len(), 14, "{bad:?}");
        assert!(bad.contains(&"junk".into()));
        assert!(l.is_invalid() && l.is_set());
        let (l, bad) = list("10.0.0.0/8, :443");
        assert!(bad.is_empty() && !l.is_invalid());
        let (l, _) = list("junk");
        assert!(l.is_empty() && l.is_invalid() && l.is_set());
    }

    #[test]
    fn list_is_bounded() {
        let many: Vec<std::string::String> = (1..=40).map(|p| std::format!(":{p}")).collect();
        let (l, bad) = list(&many.join(","));
        assert_eq!(l.rules().len(), MAX_RULES);
        assert_eq!(bad.len(), 40 - MAX_RULES);
        assert!(l.is_invalid()); // entries the user wrote were dropped
    }

    #[test]
    fn an_invalid_list_applies_to_nothing() {
        let filters = |include: &str, exclude: &str| Filters {
            include: list(include).0,
            exclude: list(exclude).0,
        };
        let dest = addr("10.1.2.3:80");
        // The valid part alone would apply; with an invalid entry, nothing does.
        assert!(filters("10.0.0.0/8", "").decide(&dest).applies);
        for (include, exclude) in [
            ("10.0.0.0/8, [::1]/200", ""),
            ("bogus", ""),
            ("", "bogus"),
            ("", ":5432, :99999"),
            ("10.0.0.0/8", "192.168.0.0/16, 1.2.3"),
        ] {
            let f = filters(include, exclude);
            assert!(f.is_set() && f.is_invalid(), "{include} / {exclude}");
            let d = f.decide(&dest);
            assert!(!d.applies, "{include} / {exclude}");
            assert_eq!((d.included_by, d.excluded_by), (None, None));
        }
        let unset = filters("", "");
        assert!(!unset.is_set() && !unset.is_invalid() && unset.decide(&dest).applies);
    }

    #[test]
    fn ipv6_parser_agrees_with_std() {
        for s in [
            "::",
            "::1",
            "1::",
            "fd00::",
            "2001:db8::8a2e:370:7334",
            "1:2:3:4:5:6:7:8",
            "::ffff:10.1.2.3",
            "64:ff9b::192.0.2.33",
            "fe80::1:2:3:4:5:6",
            "1:2:3:4:5:6:1.2.3.4",
        ] {
            let std: std::net::Ipv6Addr = s.parse().unwrap();
            assert_eq!(parse_ipv6(s.as_bytes()), Some(std.octets()), "{s}");
        }
        for s in [
            "",
            ":",
            ":::",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::",
            "g::",
            "1:2:3:4:5:6:7::8",
            "::1.2.3.4.5",
            "1.2.3.4::",
        ] {
            assert_eq!(parse_ipv6(s.as_bytes()), None, "{s}");
            assert!(s.parse::<std::net::Ipv6Addr>().is_err(), "{s}");
        }
    }

    #[test]
    fn canonical_text() {
        let (l, _) = list("10.16.0.0/16:8000-8999, [fd00::/8]:443, :5432, 10.1.2.3, [::1]");
        let texts: Vec<std::string::String> = l
            .rules()
            .iter()
            .map(|r| {
                let mut b = LineBuf::<64>::new();
                r.write(&mut b);
                std::string::String::from_utf8(b.as_bytes().to_vec()).unwrap()
            })
            .collect();
        assert_eq!(
            texts,
            [
                "10.16.0.0/16:8000-8999",
                "[fd00::/8]:443",
                ":5432",
                "10.1.2.3",
                "[::1]"
            ]
        );
    }
}
