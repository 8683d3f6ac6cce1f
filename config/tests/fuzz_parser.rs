//! Fuzzing of the configuration parsers: well over 1,000,000
//! generated inputs through the crate's public API, asserting no panic and
//! the invariants the preload library relies on.
//!
//! No dependencies: a xorshift64* generator with fixed seeds makes every run
//! identical (set `FUZZ_SEED` to explore others, `FUZZ_SCALE` to run longer).
//! The full count runs in a release build (~6 s); a debug build, as in
//! `cargo test --workspace`, runs an eighth of it.
//! Inputs are structured (digits, units, words, signs, whitespace, huge
//! numbers, address syntax, list separators) mixed with random bytes, and
//! whole random `NAME=value` environments and config files.
//!
//!     cargo test -p keepalive-shim-config --release --test fuzz_parser
// A test crate: a panic is how a test fails, and its indexing and arithmetic
// work on small values the test chose. (clippy.toml relaxes `#[test]`
// functions only; these cover the helpers too.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use keepalive_shim_config::{
    parse_count, parse_duration_ms, parse_ipv4, parse_ipv6, parse_level, parse_switch, put_value,
    resolve, resolve_env, Config, Diagnostic, EnvView, FileView, Ip, Key, Kind, LineBuf, RuleList,
    SockAddr, UserTimeout, Value, MAX_RULES, SETTINGS,
};

// --- the generator ----------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const UNITS: &[&str] = &[
    "", "", "s", "m", "h", "ms", "S", "MS", "Ms", "sec", "d", "us", "µs", "mss", "hm",
];
const WORDS: &[&str] = &[
    "on", "off", "ON", "Off", "oN", "auto", "AUTO", "Auto", "true", "false", "TRUE", "yes", "no",
    "1", "0", "respect", "force", "FORCE", "warn", "info", "debug", "error", "trace", "none",
    "verbose", "",
];
const SEPS: &[&str] = &[
    ",", ", ", " ,", "/", ":", "-", ".", "::", "[", "]", "%", "=", "#", "\"", "*",
];
const SPACE: &[&[u8]] = &[
    b" ",
    b"\t",
    b"\n",
    b"\r",
    b"\x0b",
    b"\x0c",
    b"\0",
    b"\xa0",
    b"\xc2\xa0",
];

fn digits(rng: &mut Rng, out: &mut Vec<u8>) {
    let len = match rng.below(10) {
        0 => 0,
        1..=6 => 1 + rng.below(5),
        7 => 10 + rng.below(12), // around u32/u64 overflow
        _ => 1 + rng.below(40),  // huge
    };
    if rng.chance(10) {
        let zeros = rng.below(5);
        out.resize(out.len() + zeros, b'0'); // leading zeros
    }
    for i in 0..len {
        let d = if i == 0 && rng.chance(50) {
            b'1' + rng.below(9) as u8
        } else {
            b'0' + rng.below(10) as u8
        };
        out.push(d);
    }
}

fn edge_number(rng: &mut Rng) -> String {
    let edges: [u64; 16] = [
        0,
        1,
        59,
        60,
        127,
        128,
        32767,
        32768,
        65535,
        65536,
        2147483647,
        2147483648,
        4294967295,
        4294967296,
        18446744073709551615,
        18446744073709551614,
    ];
    let n = *rng.pick(&edges);
    match rng.below(4) {
        0 => n.to_string(),
        1 => (n / 1000).to_string(),
        2 => n.wrapping_add(1).to_string(),
        _ => format!("{n}0"), // one digit more: overflow
    }
}

fn ipv4(rng: &mut Rng) -> String {
    let octet = |rng: &mut Rng| match rng.below(8) {
        0 => "256".to_string(),
        1 => "00".to_string(),
        2 => "999999".to_string(),
        3 => String::new(),
        _ => rng.below(256).to_string(),
    };
    let parts = if rng.chance(85) { 4 } else { 1 + rng.below(6) };
    (0..parts).map(|_| octet(rng)).collect::<Vec<_>>().join(".")
}

fn ipv6(rng: &mut Rng) -> String {
    let mut groups: Vec<String> = (0..1 + rng.below(9))
        .map(|_| match rng.below(10) {
            0 => String::new(),
            1 => "fffff".into(),
            2 => "g".into(),
            _ => format!("{:x}", rng.next() as u16),
        })
        .collect();
    if rng.chance(40) {
        let at = rng.below(groups.len() + 1);
        groups.insert(at, String::new());
    }
    let mut s = groups.join(":");
    if rng.chance(15) {
        s.push(':');
        s.push_str(&ipv4(rng));
    }
    if rng.chance(10) {
        s = format!("::ffff:{}", ipv4(rng));
    }
    s
}

fn address_entry(rng: &mut Rng) -> String {
    let mut s = match rng.below(4) {
        0 => String::new(),
        1 | 2 => ipv4(rng),
        _ => format!("[{}]", ipv6(rng)),
    };
    if rng.chance(40) {
        s = match rng.below(3) {
            0 => format!("{s}/{}", rng.below(140)),
            1 if s.starts_with('[') => format!("{}/{}]", &s[..s.len() - 1], rng.below(140)),
            _ => format!("{s}/{}", edge_number(rng)),
        };
    }
    if rng.chance(50) || s.is_empty() {
        s.push(':');
        s.push_str(&edge_number(rng));
        if rng.chance(40) {
            s.push('-');
            s.push_str(&rng.below(70000).to_string());
        }
    }
    s
}

/// One value: a mix of structured pieces and random bytes.
fn value(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    let most = if rng.chance(80) { 2 } else { 12 };
    let pieces = 1 + rng.below(most);
    for _ in 0..pieces {
        match rng.below(20) {
            0..=5 => {
                digits(rng, &mut out);
                out.extend_from_slice(rng.pick(UNITS).as_bytes());
            }
            6 => out.extend_from_slice(edge_number(rng).as_bytes()),
            7..=9 => out.extend_from_slice(rng.pick(WORDS).as_bytes()),
            10 => out.extend_from_slice(rng.pick(&["+", "-", "--", "+-"]).as_bytes()),
            11 => out.extend_from_slice(rng.pick::<&[u8]>(SPACE)),
            12 => out.extend_from_slice(rng.pick(SEPS).as_bytes()),
            13 | 14 => {
                let n = 1 + rng.below(MAX_RULES + 5);
                let list: Vec<String> = (0..n).map(|_| address_entry(rng)).collect();
                let sep: &str = rng.pick::<&str>(&[",", ", ", ",,", " , "]);
                out.extend_from_slice(list.join(sep).as_bytes());
            }
            15 => {
                let n = 1 + rng.below(20);
                let names: Vec<&str> = (0..n)
                    .map(|_| *rng.pick(&["python3", "curl", "", "a/b", "java", " x "]))
                    .collect();
                out.extend_from_slice(names.join(",").as_bytes());
            }
            16 => out.extend_from_slice(
                rng.pick(&["/tmp/x.log", "/", "relative", "/a\0b", "//", "/dev/null"])
                    .as_bytes(),
            ),
            17 => {
                let n = 1 + rng.below(24);
                out.extend((0..n).map(|_| rng.next() as u8));
            }
            18 => {
                // very long
                let n = 100 + rng.below(6000);
                let b = *rng.pick(&[b'1', b'9', b'/', b'a', b',', 0xff]);
                out.resize(out.len() + n, b);
            }
            _ => {}
        }
    }
    out
}

/// A value meant to be valid for `kind` (or just outside its range).
fn plausible(rng: &mut Rng, kind: Kind) -> Vec<u8> {
    let near = |rng: &mut Rng, min: u32, max: u32| -> u64 {
        match rng.below(4) {
            0 => u64::from(min),
            1 => u64::from(max),
            2 => u64::from(max) + 1,
            _ => u64::from(min) + rng.next() % u64::from(max - min + 1),
        }
    };
    let s = match kind {
        Kind::Seconds { min, max } => {
            let secs = near(rng, min, max);
            match rng.below(4) {
                0 if secs % 3600 == 0 => format!("{}h", secs / 3600),
                1 if secs % 60 == 0 => format!("{}m", secs / 60),
                2 => format!("{secs}s"),
                _ => secs.to_string(),
            }
        }
        Kind::Number { min, max } => near(rng, min, max).to_string(),
        Kind::UserTimeout { min_ms, max_ms } => match rng.below(4) {
            0 => "auto".into(),
            1 => "off".into(),
            2 => format!("{}ms", near(rng, min_ms, max_ms)),
            _ => format!("{}s", near(rng, min_ms, max_ms) / 1000),
        },
        Kind::Switch => (*rng.pick(&["on", "off", "1", "0", "true", "FALSE"])).into(),
        Kind::Level => (*rng.pick(&["off", "error", "warn", "info", "debug"])).into(),
        Kind::Mode => (*rng.pick(&["respect", "force"])).into(),
        Kind::Path => format!("/tmp/ks-fuzz-{}", rng.below(1000)),
        Kind::Destinations => (0..1 + rng.below(4))
            .map(|_| address_entry(rng))
            .collect::<Vec<_>>()
            .join(","),
        Kind::Programs => (*rng.pick(&["python3", "curl,python3", "java"])).into(),
        #[allow(unreachable_patterns)]
        _ => String::new(),
    };
    s.into_bytes()
}

/// One `NAME=value` pair: mostly a setting's name (or alias), with a value
/// that is plausible for it or junk.
fn var(rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let setting = rng.pick(SETTINGS);
    let v = if rng.chance(45) {
        plausible(rng, setting.kind)
    } else {
        value(rng)
    };
    (name_for(rng, setting), v)
}

fn name_for(rng: &mut Rng, setting: &keepalive_shim_config::Setting) -> Vec<u8> {
    match rng.below(12) {
        0..=5 => setting.var.as_bytes().to_vec(),
        6 | 7 if !setting.aliases.is_empty() => rng.pick(setting.aliases).name.as_bytes().to_vec(),
        8 => setting.var.to_ascii_lowercase().into_bytes(),
        9 => {
            let mut n = b"KEEPALIVE_SHIM_".to_vec();
            n.extend((0..rng.below(8)).map(|_| rng.next() as u8));
            n
        }
        10 => rng
            .pick(&[
                "KEEPALIVE_SHIM",
                "KEEPALIVE_SHIM_",
                "KEEPALIVE_SHIMX",
                "KEEPALIVE_SHIM__IDLE",
                "PATH",
                "HOME",
                "",
            ])
            .as_bytes()
            .to_vec(),
        _ => {
            let mut n = setting.var.as_bytes().to_vec();
            n.push(*rng.pick(b"S_ 1"));
            n
        }
    }
}

// --- reference implementations (differential checks) ---------------------------------

fn ref_number(v: &[u8]) -> Option<(u64, &[u8])> {
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let n = std::str::from_utf8(&v[..digits])
        .ok()?
        .parse::<u64>()
        .ok()?;
    Some((n, &v[digits..]))
}

fn ref_duration_ms(v: &[u8], allow_ms: bool) -> Option<u64> {
    let (n, unit) = ref_number(v)?;
    let scale = match unit {
        b"" | b"s" => 1000,
        b"m" => 60_000,
        b"h" => 3_600_000,
        b"ms" if allow_ms => 1,
        _ => return None,
    };
    n.checked_mul(scale)
}

// --- invariants ------------------------------------------------------------------------

fn range_of(key: Key) -> (u32, u32) {
    let s = SETTINGS
        .iter()
        .find(|s| s.key == key)
        .expect("every key has a row");
    match s.kind {
        Kind::Seconds { min, max } | Kind::Number { min, max } => (min, max),
        Kind::UserTimeout { min_ms, max_ms } => (min_ms, max_ms),
        _ => (0, u32::MAX),
    }
}

/// A value that parses is within its kind's range.
fn check_value(kind: Kind, input: &[u8], v: &Value<'_>) {
    match (kind, v) {
        (Kind::Seconds { min, max }, Value::Seconds(s))
        | (Kind::Number { min, max }, Value::Number(s)) => {
            assert!(
                (min..=max).contains(s),
                "{s} outside {min}..={max} from {input:?}"
            )
        }
        (Kind::UserTimeout { min_ms, max_ms }, Value::UserTimeout(UserTimeout::Millis(ms))) => {
            assert!(
                (min_ms..=max_ms).contains(ms),
                "{ms} ms outside {min_ms}..={max_ms} from {input:?}"
            )
        }
        (Kind::UserTimeout { .. }, Value::UserTimeout(_)) => {}
        (Kind::Path, Value::Path(p)) => {
            assert!(
                p.first() == Some(&b'/') && p.len() < 4096 && !p.contains(&0),
                "path {input:?}"
            )
        }
        (Kind::Destinations, Value::Destinations(list)) => {
            assert!(
                list.is_set() && list.rules().len() <= MAX_RULES,
                "{input:?}"
            );
        }
        (Kind::Programs, Value::Programs(p)) => {
            for n in p.names() {
                assert!(
                    !n.is_empty() && !n.contains(&b'/') && n.len() <= 255,
                    "program {n:?} from {input:?}"
                );
            }
        }
        (Kind::Switch, Value::Switch(_))
        | (Kind::Level, Value::Level(_))
        | (Kind::Mode, Value::Mode(_)) => {}
        (kind, v) => panic!("{kind:?} parsed {input:?} as {v:?}"),
    }
}

/// The effective values are always usable as socket options.
fn check_config(c: &Config<'_>, what: &dyn std::fmt::Debug) {
    for (key, got) in [
        (Key::Idle, c.idle_s),
        (Key::Interval, c.interval_s),
        (Key::Count, c.count),
    ] {
        let (min, max) = range_of(key);
        assert!(
            (min..=max).contains(&got),
            "{key:?} = {got} outside {min}..={max}: {what:?}"
        );
    }
    if let UserTimeout::Millis(ms) = c.user_timeout {
        let (min, max) = range_of(Key::UserTimeout);
        assert!((min..=max).contains(&ms), "user timeout {ms}: {what:?}");
    }
    match (c.user_timeout, c.user_timeout_ms()) {
        (UserTimeout::Off, t) => assert_eq!(t, None),
        (UserTimeout::Auto, Some(ms)) => {
            assert!(ms <= i32::MAX as u32, "auto user timeout {ms}: {what:?}");
            let want = c.detection_s().saturating_mul(1000).min(i32::MAX as u64);
            assert_eq!(u64::from(ms), want, "{what:?}");
        }
        (UserTimeout::Millis(ms), Some(got)) => assert_eq!(ms, got),
        (t, None) => panic!("{t:?} gave no user timeout: {what:?}"),
    }
    if let Some(ms) = c.user_timeout_ms() {
        assert!(ms <= i32::MAX as u32, "{what:?}");
    }
    if let Some(p) = c.log_file {
        assert_eq!(p.first(), Some(&b'/'), "{what:?}");
    }
    // Printing every setting never panics, and never breaks a line.
    for s in SETTINGS {
        let mut out = LineBuf::<8192>::new();
        put_value(&mut out, c, s.key);
        assert!(
            !out.as_bytes().contains(&b'\n'),
            "{:?}: {:?}",
            s.var,
            String::from_utf8_lossy(out.as_bytes())
        );
    }
}

/// A diagnostic is one line: the library splits its warnings on '\n', so an
/// unescaped newline from a value would become a line without the prefix.
fn check_diagnostic(d: &Diagnostic<'_>, c: &Config<'_>) {
    let mut out = LineBuf::<8192>::new();
    d.write(c, &mut out);
    let text = out.as_bytes();
    assert!(!text.is_empty());
    assert!(
        !text.contains(&b'\n') && !text.contains(&b'\r') && !text.contains(&0),
        "{:?}",
        String::from_utf8_lossy(text)
    );
}

fn random_addr(rng: &mut Rng) -> SockAddr {
    let ip = match rng.below(3) {
        0 => Ip::V4((rng.next() as u32).to_be_bytes()),
        1 => Ip::V4([127, 0, 0, rng.below(3) as u8]),
        _ => {
            let mut b = (u128::from(rng.next()) << 64 | u128::from(rng.next())).to_be_bytes();
            if rng.chance(30) {
                b[..12].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
                // v4-mapped
            }
            Ip::V6(b)
        }
    };
    SockAddr {
        ip,
        port: rng.next() as u16,
    }
}

/// How many inputs a test runs: `base` in a release build (over 1,000,000
/// in all), an eighth in a debug build (`cargo test --workspace` in
/// scripts/test.sh, where the full count would take ~40 s); `FUZZ_SCALE`
/// multiplies either.
fn count(base: usize) -> usize {
    let scale: usize = std::env::var("FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let base = if cfg!(debug_assertions) {
        base / 8
    } else {
        base
    };
    base * scale
}

fn seed(base: u64) -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
        ^ base
}

// --- the tests -------------------------------------------------------------------------

/// 700,000 values through the scalar parsers and `Value::parse` of every
/// kind in the table, checked against a reference parser and the ranges.
#[test]
fn values() {
    let mut rng = Rng::new(seed(1));
    let n = count(700_000);
    let mut parsed = 0usize;
    for _ in 0..n {
        let s = rng.pick(SETTINGS);
        let v = if rng.chance(30) {
            plausible(&mut rng, s.kind)
        } else {
            value(&mut rng)
        };
        for allow_ms in [false, true] {
            assert_eq!(
                parse_duration_ms(&v, allow_ms),
                ref_duration_ms(&v, allow_ms),
                "{v:?} allow_ms={allow_ms}"
            );
        }
        let count = ref_number(&v)
            .filter(|(_, rest)| rest.is_empty())
            .map(|(n, _)| n);
        assert_eq!(parse_count(&v), count, "{v:?}");
        if let Some(on) = parse_switch(&v) {
            let w = v.to_ascii_lowercase();
            assert_eq!(on, matches!(&w[..], b"on" | b"1" | b"true"), "{v:?}");
            assert!(
                matches!(&w[..], b"on" | b"1" | b"true" | b"off" | b"0" | b"false"),
                "{v:?}"
            );
        }
        if let Some(level) = parse_level(&v) {
            assert!(level.name().as_bytes().eq_ignore_ascii_case(&v));
        }
        if let Some(parsed_value) = Value::parse(s.kind, &v) {
            check_value(s.kind, &v, &parsed_value);
            parsed += 1;
        }
        let mut bad = 0;
        if let Some(listed) = Value::parse_list(s.kind, &v, &mut |_| bad += 1) {
            check_value(s.kind, &v, &listed);
        }
    }
    // The generator reaches valid values too, not only junk.
    eprintln!("values: {parsed} of {n} parsed as their setting's kind");
    assert!(parsed > n / 50, "only {parsed} of {n} values parsed");
}

/// 150,000 destination lists: rules are bounded, matching never panics, a
/// rule's canonical form parses back to the same rule, and addresses
/// round-trip through std's formatting.
#[test]
fn destinations_and_addresses() {
    let mut rng = Rng::new(seed(2));
    let n = count(150_000);
    let (mut rules_seen, mut v4_ok, mut v6_ok) = (0usize, 0usize, 0usize);
    for _ in 0..n {
        let most = if rng.chance(90) { 3 } else { MAX_RULES + 8 };
        let entries = 1 + rng.below(most);
        let text: Vec<String> = (0..entries).map(|_| address_entry(&mut rng)).collect();
        let mut text = text.join(",").into_bytes();
        if rng.chance(20) {
            text.extend(value(&mut rng));
        }
        let mut bad = 0usize;
        let list = RuleList::parse(&text, &mut |_| bad += 1);
        assert!(list.rules().len() <= MAX_RULES);
        for rule in list.rules() {
            rules_seen += 1;
            let mut canon = LineBuf::<256>::new();
            rule.write(&mut canon);
            let again = RuleList::parse(canon.as_bytes(), &mut |e| {
                panic!(
                    "canonical {:?} rejected ({e:?})",
                    String::from_utf8_lossy(canon.as_bytes())
                )
            });
            assert_eq!(
                again.rules(),
                [*rule],
                "{:?}",
                String::from_utf8_lossy(canon.as_bytes())
            );
            for _ in 0..4 {
                let a = random_addr(&mut rng);
                let _ = rule.matches(&a);
            }
        }
        let a = random_addr(&mut rng);
        if let Some(r) = list.find(&a) {
            assert!(r.matches(&a));
        }
        // Addresses alone, against std.
        let v4 = ipv4(&mut rng);
        if let Some(b) = parse_ipv4(v4.as_bytes()) {
            v4_ok += 1;
            let shown = std::net::Ipv4Addr::from(b).to_string();
            assert_eq!(parse_ipv4(shown.as_bytes()), Some(b), "{v4}");
        }
        let v6 = ipv6(&mut rng);
        if let Some(b) = parse_ipv6(v6.as_bytes()) {
            v6_ok += 1;
            let shown = std::net::Ipv6Addr::from(b).to_string();
            assert_eq!(
                parse_ipv6(shown.as_bytes()),
                Some(b),
                "{v6} shown as {shown}"
            );
            if let Ok(std_addr) = v6.parse::<std::net::Ipv6Addr>() {
                assert_eq!(std_addr.octets(), b, "{v6}");
            }
        } else if let Ok(std_addr) = v6.parse::<std::net::Ipv6Addr>() {
            // Whatever std accepts in plain form, the crate should too.
            if !v6.contains('.') {
                panic!("{v6} ({std_addr}) rejected");
            }
        }
    }
    eprintln!(
        "destinations: {rules_seen} rules, {v4_ok} IPv4 and {v6_ok} IPv6 addresses accepted of {n}"
    );
    assert!(rules_seen > n / 10, "only {rules_seen} rules in {n} lists");
    assert!(
        v4_ok > n / 10 && v6_ok > n / 100,
        "{v4_ok} IPv4, {v6_ok} IPv6 of {n}"
    );
}

/// 250,000 random environments through `resolve_env`, and 50,000
/// environment + config file pairs through `EnvView`/`FileView`/`resolve`,
/// secure or not: the effective configuration is always in range, and every
/// diagnostic is a single line.
#[test]
fn environments_and_config_files() {
    let mut rng = Rng::new(seed(3));
    let n = count(250_000);
    let (mut changed, mut diagnostics) = (0usize, 0usize);
    for i in 0..n {
        let vars: Vec<(Vec<u8>, Vec<u8>)> = (0..rng.below(10)).map(|_| var(&mut rng)).collect();
        let mut diags = Vec::new();
        let c = resolve_env(vars.iter().map(|(k, v)| (&k[..], &v[..])), &mut |d| {
            diags.push(d)
        });
        check_config(&c, &vars);
        for d in &diags {
            check_diagnostic(d, &c);
        }
        diagnostics += diags.len();
        let d = Config::defaults();
        changed += usize::from(
            (c.idle_s, c.interval_s, c.count, c.user_timeout)
                != (d.idle_s, d.interval_s, d.count, d.user_timeout),
        );
        if i % 5 == 0 {
            let a = random_addr(&mut rng);
            let d = c.decide(&a);
            let included = c.include.is_empty() || d.included_by.is_some();
            let invalid =
                c.include.is_invalid() || c.exclude.is_invalid() || c.programs.is_invalid();
            assert_eq!(d.applies, !invalid && included && d.excluded_by.is_none());
            let _ = c.program_allowed(&[b"python3", b"curl"]);
        }
    }
    eprintln!("environments: {changed} of {n} changed a timer, {diagnostics} diagnostics");
    assert!(
        changed > n / 20 && diagnostics > n / 2,
        "{changed} changed, {diagnostics} diagnostics of {n}"
    );
    let files = count(50_000);
    for _ in 0..files {
        let vars: Vec<(Vec<u8>, Vec<u8>)> = (0..rng.below(6)).map(|_| var(&mut rng)).collect();
        let mut contents = Vec::new();
        for _ in 0..rng.below(12) {
            match rng.below(8) {
                0 => contents.extend_from_slice(b"# a comment"),
                1 => contents.extend(value(&mut rng)),
                2 => {
                    let (k, v) = var(&mut rng);
                    contents.extend(k);
                    contents.extend_from_slice(b" = \"");
                    contents.extend(v);
                    contents.push(b'"');
                }
                _ => {
                    let (k, v) = var(&mut rng);
                    contents.extend(k);
                    let eq: &[u8] = rng.pick::<&[u8]>(&[b"=", b" = ", b"==", b"\t=\t"]);
                    contents.extend_from_slice(eq);
                    contents.extend(v);
                }
            }
            let end: &[u8] = rng.pick::<&[u8]>(&[b"\n", b"\r\n", b"\n\n", b""]);
            contents.extend_from_slice(end);
        }
        let secure = rng.chance(20);
        let mut diags = Vec::new();
        let env = EnvView::collect(vars.iter().map(|(k, v)| (&k[..], &v[..])), &mut |d| {
            diags.push(d)
        });
        let _ = env.config_path(secure);
        let file = FileView::parse(b"/etc/keepalive-shim.conf", &contents, &mut |d| {
            diags.push(d)
        });
        let c = resolve(&env, Some(&file), secure, &mut |d| diags.push(d));
        check_config(&c, &(&vars, String::from_utf8_lossy(&contents)));
        for d in &diags {
            check_diagnostic(d, &c);
        }
    }
}

/// Fixed edge cases that must hold whatever the generator finds.
#[test]
fn edges() {
    let (imin, imax) = range_of(Key::Idle);
    let idle = SETTINGS.iter().find(|s| s.key == Key::Idle).unwrap().kind;
    assert_eq!(
        Value::parse(idle, imin.to_string().as_bytes()),
        Some(Value::Seconds(imin))
    );
    assert_eq!(
        Value::parse(idle, imax.to_string().as_bytes()),
        Some(Value::Seconds(imax))
    );
    assert_eq!(Value::parse(idle, (imax + 1).to_string().as_bytes()), None);
    assert_eq!(Value::parse(idle, b"18446744073709551616"), None);
    assert_eq!(parse_duration_ms(b"18446744073709551615", true), None); // x1000 overflows
    assert_eq!(
        parse_duration_ms(b"18446744073709551615ms", true),
        Some(u64::MAX)
    );
    let mut diags = Vec::new();
    let max = [
        (&b"KEEPALIVE_SHIM_IDLE"[..], &b"32767"[..]),
        (b"KEEPALIVE_SHIM_INTERVAL", b"32767"),
        (b"KEEPALIVE_SHIM_COUNT", b"127"),
        (b"KEEPALIVE_SHIM_USER_TIMEOUT", b"auto"),
    ];
    let c = resolve_env(max.iter().copied(), &mut |d| diags.push(d));
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(c.user_timeout_ms(), Some(i32::MAX as u32));
    check_config(&c, &"max");
}
