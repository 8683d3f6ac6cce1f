//! The BPF side of `attach`: the embedded object, the configuration it is
//! loaded with, loading and attaching, and the ring buffer's events.
//!
//! The byte layouts here mirror `struct config`, `struct rule` and
//! `struct event` in `cli/bpf/keepalive.bpf.c` (whose static assertions pin
//! their sizes). The configuration goes into the object's read-only
//! `CONFIG` global before loading, so the verifier treats it as constants.

use std::fmt::Write as _;
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};

use aya::maps::{MapData, RingBuf};
use aya::programs::{CgroupAttachMode, CgroupSockopt, SockOps};
use aya::{Ebpf, EbpfLoader};
use keepalive_shim_config::{Config, Level, Mode, Net, Rule, RuleList, UserTimeout, MAX_RULES};

/// The compiled object (empty when the build had no clang; see build.rs).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/keepalive.bpf.o"));

/// Why the object is empty, from build.rs ("" when it is not).
const MISSING: &str = env!("KEEPALIVE_SHIM_BPF_MISSING");

/// `None` if this build carries the BPF programs, else what is missing and
/// how to get it.
pub fn missing_object() -> Option<String> {
    if !OBJECT.is_empty() {
        return None;
    }
    Some(format!(
        "this keepalive-shim was built without its BPF programs ({}). \
         Install clang and libbpf-dev (Debian/Ubuntu: apt-get install clang libbpf-dev) \
         and rebuild (cargo build --release)",
        if MISSING.is_empty() {
            "no object"
        } else {
            MISSING
        }
    ))
}

const RULE_SIZE: usize = 40;
const HEADER_SIZE: usize = 40;
/// `sizeof(struct config)` in the C program.
pub const CONFIG_SIZE: usize = HEADER_SIZE + 2 * MAX_RULES * RULE_SIZE;
/// `sizeof(struct event)` in the C program.
pub const EVENT_SIZE: usize = 84;

const UT_OFF: u32 = 0;
const UT_AUTO: u32 = 1;
const UT_FIXED: u32 = 2;

/// The five options in the order of the C program's `OPT_*` bits.
pub const OPTION_NAMES: [&str; 5] = [
    "SO_KEEPALIVE",
    "TCP_KEEPIDLE",
    "TCP_KEEPINTVL",
    "TCP_KEEPCNT",
    "TCP_USER_TIMEOUT",
];

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}

/// The first `prefix` bits set, as bytes in network order (an IPv4 mask
/// fills the first four).
fn mask_bytes(prefix: u8) -> [u8; 16] {
    let host_bits = 128u32.saturating_sub(u32::from(prefix));
    u128::MAX.checked_shl(host_bits).unwrap_or(0).to_be_bytes()
}

fn put_rule(out: &mut Vec<u8>, rule: &Rule) {
    let (family, addr, mask) = match rule.net {
        None => (0u8, [0u8; 16], [0u8; 16]),
        Some(Net::V4 { addr, prefix }) => {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&addr.to_be_bytes());
            (4, a, mask_bytes(prefix))
        }
        Some(Net::V6 { addr, prefix }) => (6, addr, mask_bytes(prefix)),
    };
    out.push(family);
    out.push(0);
    out.extend_from_slice(&rule.ports.0.to_ne_bytes());
    out.extend_from_slice(&rule.ports.1.to_ne_bytes());
    out.extend_from_slice(&[0, 0]);
    // Addresses stay in network byte order, as the kernel hands them over.
    out.extend_from_slice(&addr);
    out.extend_from_slice(&mask);
}

fn put_rules(out: &mut Vec<u8>, list: &RuleList) {
    let rules = list.rules();
    for rule in rules {
        put_rule(out, rule);
    }
    let unused = MAX_RULES.saturating_sub(rules.len());
    out.resize(
        out.len().saturating_add(unused.saturating_mul(RULE_SIZE)),
        0,
    );
}

/// `struct config` for `config`.
pub fn config_bytes(config: &Config<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(CONFIG_SIZE);
    let (ut_mode, ut_ms) = match config.user_timeout {
        UserTimeout::Off => (UT_OFF, 0),
        UserTimeout::Auto => (UT_AUTO, 0),
        UserTimeout::Millis(ms) => (UT_FIXED, ms),
    };
    for v in [
        config.idle_s,
        config.interval_s,
        config.count,
        ut_mode,
        ut_ms,
        match config.mode {
            Mode::Respect => 0,
            Mode::Force => 1,
        },
        config.log_level as u32,
        config.include.rules().len() as u32,
        config.exclude.rules().len() as u32,
        // `self_tgid`: this process's own setsockopt() calls on the
        // cgroup's sockets (the start-up step for existing connections)
        // are not the program's. bpf_get_current_pid_tgid() gives the
        // initial namespace's pid, which this is when attach runs on the
        // host (in another pid namespace they differ, and the start-up
        // step's options would count as the program's own).
        std::process::id(),
    ] {
        put_u32(&mut out, v);
    }
    put_rules(&mut out, &config.include);
    put_rules(&mut out, &config.exclude);
    debug_assert_eq!(out.len(), CONFIG_SIZE);
    out
}

/// The loaded programs, attached to one cgroup. Dropping it detaches them
/// (the links are file descriptors of this process).
pub struct Attached {
    ebpf: Ebpf,
}

/// Loads the object with `config` and attaches both programs to `cgroup`.
pub fn load_and_attach(config: &Config<'_>, cgroup: &File) -> Result<Attached, String> {
    let bytes = config_bytes(config);
    let mut ebpf = EbpfLoader::new()
        .override_global("CONFIG", bytes.as_slice(), true)
        .load(OBJECT)
        .map_err(|e| format!("cannot load the BPF programs: {}", chain(&e)))?;
    let setsockopt: &mut CgroupSockopt = ebpf
        .program_mut("keepalive_setsockopt")
        .ok_or("the BPF object has no keepalive_setsockopt program")?
        .try_into()
        .map_err(|e| format!("keepalive_setsockopt: {}", chain(&e)))?;
    setsockopt.load().map_err(|e| {
        format!(
            "the kernel refused the cgroup/setsockopt program: {}",
            chain(&e)
        )
    })?;
    // Attached before sock_ops, so that no connection can be configured
    // before the program's own settings are recorded.
    setsockopt
        .attach(cgroup, CgroupAttachMode::Single)
        .map_err(|e| format!("cannot attach the cgroup/setsockopt program: {}", chain(&e)))?;
    let sockops: &mut SockOps = ebpf
        .program_mut("keepalive_sockops")
        .ok_or("the BPF object has no keepalive_sockops program")?
        .try_into()
        .map_err(|e| format!("keepalive_sockops: {}", chain(&e)))?;
    sockops
        .load()
        .map_err(|e| format!("the kernel refused the sock_ops program: {}", chain(&e)))?;
    sockops
        .attach(cgroup, CgroupAttachMode::Single)
        .map_err(|e| format!("cannot attach the sock_ops program: {}", chain(&e)))?;
    Ok(Attached { ebpf })
}

impl Attached {
    /// The ring buffer of log events.
    pub fn events(&mut self) -> Result<RingBuf<MapData>, String> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .ok_or("the BPF object has no EVENTS map")?;
        RingBuf::try_from(map).map_err(|e| format!("EVENTS: {}", chain(&e)))
    }
}

/// An error and its sources, on one line (the kernel's errno is usually in
/// the innermost one), and what the usual errnos mean here.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let _ = write!(s, ": {inner}");
        source = inner.source();
    }
    let hint = if s.contains("(os error 38)") {
        " (this kernel has no bpf() system call: it was built without CONFIG_BPF_SYSCALL, \
         or a seccomp filter hides it)"
    } else if s.contains("(os error 1)") {
        " (BPF is not permitted here: kernel lockdown, a seccomp filter, or a container \
         without CAP_BPF and CAP_NET_ADMIN)"
    } else {
        ""
    };
    s + hint
}

const EV_ACTIVE: u32 = 1;
const EV_PASSIVE: u32 = 2;
const EV_FORCE: u32 = 3;

/// `struct event` as 32-bit words: 0 kind, 1 family, 2-5 local address,
/// 6-9 remote address, 10 local port, 11 remote port, 12 options set, 13
/// options the program had set, 14-18 values, 19 option (force), 20 the
/// program's value (force).
fn words(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .filter_map(|c| <[u8; 4]>::try_from(c).ok())
        .map(u32::from_ne_bytes)
        .collect()
}

fn addr(words: &[u32], first: usize, family: u32, port: u32) -> String {
    let bytes: Vec<u8> = (first..first.saturating_add(4))
        .flat_map(|i| words.get(i).copied().unwrap_or(0).to_ne_bytes())
        .collect();
    let ip: [u8; 16] = bytes.try_into().unwrap_or([0; 16]);
    if family == 4 {
        format!("{}:{port}", Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))
    } else {
        format!("[{}]:{port}", Ipv6Addr::from(ip))
    }
}

/// One log line for one ring-buffer event, or `None` if there is nothing to
/// say at `level`.
pub fn event_line(b: &[u8], level: Level) -> Option<String> {
    if b.len() < EVENT_SIZE {
        return None;
    }
    let w = words(b);
    let word = |i: usize| w.get(i).copied().unwrap_or(0);
    let family = word(1);
    let local = addr(&w, 2, family, word(10));
    let remote = addr(&w, 6, family, word(11));
    let shim_set = word(12);
    let program_set = word(13);
    let value = |opt: usize| word(opt.saturating_add(14)) as i32;
    let kind = word(0);
    let mut line = match kind {
        EV_ACTIVE => format!("peer={remote} local={local}"),
        EV_PASSIVE => format!("accepted={remote} local={local}"),
        EV_FORCE => {
            let opt = word(19) as usize;
            let name = OPTION_NAMES.get(opt)?;
            let asked = word(20) as i32;
            return Some(format!(
                "peer={remote} local={local} force: kept {name}={} (the program set {asked})",
                value(opt)
            ));
        }
        _ => return None,
    };
    for (i, name) in OPTION_NAMES.iter().enumerate() {
        if shim_set & (1 << i) != 0 {
            let _ = write!(line, " {name}={}", value(i));
        }
    }
    if shim_set == 0 {
        line += " (nothing to change)";
    }
    if level >= Level::Debug && program_set != 0 {
        line += " program-set:";
        for (i, name) in OPTION_NAMES.iter().enumerate() {
            if program_set & (1 << i) != 0 {
                let _ = write!(line, " {name}={}", value(i));
            }
        }
    }
    Some(line)
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use keepalive_shim_config::resolve_env;

    fn u32_at(b: &[u8], offset: usize) -> u32 {
        u32::from_ne_bytes(b[offset..offset + 4].try_into().unwrap())
    }

    fn config(env: &[(&'static str, &'static str)]) -> Config<'static> {
        resolve_env(
            env.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
            &mut |_| {},
        )
    }

    #[test]
    fn config_layout() {
        let c = config(&[
            ("KEEPALIVE_SHIM_IDLE", "20"),
            ("KEEPALIVE_SHIM_INTERVAL", "5"),
            ("KEEPALIVE_SHIM_COUNT", "3"),
            ("KEEPALIVE_SHIM_USER_TIMEOUT", "7s"),
            ("KEEPALIVE_SHIM_MODE", "force"),
            ("KEEPALIVE_SHIM_INCLUDE", "10.1.0.0/16:80-90, [fd00::/8]"),
            ("KEEPALIVE_SHIM_EXCLUDE", ":5432"),
        ]);
        let b = config_bytes(&c);
        assert_eq!(b.len(), CONFIG_SIZE);
        let words: Vec<u32> = (0..10).map(|i| u32_at(&b, 4 * i)).collect();
        assert_eq!(
            words,
            // The last word is `self_tgid`: this process.
            [
                20,
                5,
                3,
                UT_FIXED,
                7000,
                1,
                Level::Warn as u32,
                2,
                1,
                std::process::id()
            ]
        );
        let r0 = &b[HEADER_SIZE..HEADER_SIZE + RULE_SIZE];
        assert_eq!(r0[0], 4);
        assert_eq!(u16::from_ne_bytes([r0[2], r0[3]]), 80);
        assert_eq!(u16::from_ne_bytes([r0[4], r0[5]]), 90);
        assert_eq!(&r0[8..12], &[10, 1, 0, 0]);
        assert_eq!(&r0[24..28], &[255, 255, 0, 0]);
        assert_eq!(&r0[28..40], &[0; 12]);
        let r1 = &b[HEADER_SIZE + RULE_SIZE..HEADER_SIZE + 2 * RULE_SIZE];
        assert_eq!(r1[0], 6);
        assert_eq!(u16::from_ne_bytes([r1[4], r1[5]]), u16::MAX);
        assert_eq!(r1[8], 0xfd);
        assert_eq!(&r1[24..26], &[0xff, 0]);
        let ex = HEADER_SIZE + MAX_RULES * RULE_SIZE;
        assert_eq!(b[ex], 0);
        assert_eq!(u16::from_ne_bytes([b[ex + 2], b[ex + 3]]), 5432);
    }

    #[test]
    fn masks() {
        assert_eq!(mask_bytes(0), [0; 16]);
        assert_eq!(mask_bytes(32)[..5], [255, 255, 255, 255, 0]);
        assert_eq!(mask_bytes(9)[..4], [255, 128, 0, 0]);
        assert_eq!(mask_bytes(128), [255; 16]);
    }

    #[test]
    fn user_timeout_modes() {
        let auto = config(&[("KEEPALIVE_SHIM_USER_TIMEOUT", "auto")]);
        assert_eq!(u32_at(&config_bytes(&auto), 12), UT_AUTO);
        let off = config(&[]);
        assert_eq!(u32_at(&config_bytes(&off), 12), UT_OFF);
    }

    fn event(kind: u32, shim: u32, program: u32, values: [i32; 5]) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [kind, 4] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&[127, 0, 0, 1]);
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&[10, 0, 0, 2]);
        b.extend_from_slice(&[0; 12]);
        for v in [40000u32, 80, shim, program] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        for v in values {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&1u32.to_ne_bytes());
        b.extend_from_slice(&60i32.to_ne_bytes());
        b
    }

    #[test]
    fn lines() {
        let b = event(EV_ACTIVE, 0b01101, 0b00010, [1, 60, 5, 3, 0]);
        assert_eq!(b.len(), EVENT_SIZE);
        assert_eq!(
            event_line(&b, Level::Info).unwrap(),
            "peer=10.0.0.2:80 local=127.0.0.1:40000 SO_KEEPALIVE=1 TCP_KEEPINTVL=5 TCP_KEEPCNT=3"
        );
        assert!(event_line(&b, Level::Debug)
            .unwrap()
            .ends_with(" program-set: TCP_KEEPIDLE=60"));
        let f = event(EV_FORCE, 0, 0, [0, 20, 0, 0, 0]);
        assert_eq!(
            event_line(&f, Level::Info).unwrap(),
            "peer=10.0.0.2:80 local=127.0.0.1:40000 force: kept TCP_KEEPIDLE=20 (the program set 60)"
        );
        assert_eq!(event_line(&b[..10], Level::Info), None);
    }
}
