//! Socket addresses as plain data, and how log lines print them.

use crate::text::{put_u64, Sink};

/// An IP address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ip {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// An IP address and port, as `connect()` was given it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockAddr {
    pub ip: Ip,
    pub port: u16,
}

impl SockAddr {
    /// `1.2.3.4:80` or `[2001:db8::1]:443`.
    pub fn write(&self, out: &mut impl Sink) {
        match self.ip {
            Ip::V4(_) => self.write_ip(out),
            Ip::V6(_) => {
                out.put(b"[");
                self.write_ip(out);
                out.put(b"]");
            }
        }
        out.put(b":");
        put_u64(out, u64::from(self.port));
    }

    /// The address alone: `1.2.3.4` or `2001:db8::1`.
    pub fn write_ip(&self, out: &mut impl Sink) {
        match self.ip {
            Ip::V4(a) => put_ipv4(out, a),
            Ip::V6(a) => put_ipv6(out, a),
        }
    }
}

fn put_ipv4(out: &mut impl Sink, a: [u8; 4]) {
    for (i, octet) in a.into_iter().enumerate() {
        if i > 0 {
            out.put(b".");
        }
        put_u64(out, u64::from(octet));
    }
}

/// RFC 5952 text: lowercase hex, the longest run (2+) of zero groups as
/// `::`, IPv4-mapped addresses as `::ffff:1.2.3.4`.
fn put_ipv6(out: &mut impl Sink, a: [u8; 16]) {
    let mut groups = [0u16; 8];
    for (g, pair) in groups.iter_mut().zip(a.chunks_exact(2)) {
        if let [hi, lo] = *pair {
            *g = u16::from_be_bytes([hi, lo]);
        }
    }
    if let [0, 0, 0, 0, 0, 0xffff, _, _] = groups {
        out.put(b"::ffff:");
        let [.., w, x, y, z] = a;
        put_ipv4(out, [w, x, y, z]);
        return;
    }
    // Longest run of zero groups, first one on ties.
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let (mut run_start, mut run_len) = (0usize, 0usize);
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            if run_len == 0 {
                run_start = i;
            }
            run_len = run_len.saturating_add(1);
            if run_len > best_len {
                (best_start, best_len) = (run_start, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    let skip = if best_len >= 2 {
        best_start..best_start.saturating_add(best_len)
    } else {
        0..0
    };
    let mut need_colon = false;
    for (i, &g) in groups.iter().enumerate() {
        if skip.contains(&i) {
            if i == skip.start {
                out.put(b"::");
                need_colon = false;
            }
            continue;
        }
        if need_colon {
            out.put(b":");
        }
        put_hex16(out, g);
        need_colon = true;
    }
}

fn put_hex16(out: &mut impl Sink, g: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut started = false;
    for shift in [12u16, 8, 4, 0] {
        let nibble = (g >> shift) & 0xf;
        if nibble != 0 || started || shift == 0 {
            started = true;
            out.put(&[HEX.get(usize::from(nibble)).copied().unwrap_or(b'?')]);
        }
    }
}

#[cfg(test)]
// Tests may panic: a failed unwrap or index is a failed test.
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::text::LineBuf;

    fn text(a: SockAddr) -> std::string::String {
        let mut b = LineBuf::<64>::new();
        a.write(&mut b);
        std::string::String::from_utf8(b.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn formats_like_std() {
        let cases = [
            "127.0.0.1:8080",
            "[::1]:443",
            "[::]:1",
            "[2001:db8::1]:80",
            "[fd00:0:1:0:2::]:5432",
            "[1:0:0:2:0:0:0:3]:1",
            "[::ffff:10.1.2.3]:5432",
            "[fe80::1:2:3:4]:9",
            "[1:2:3:4:5:6:7:8]:65535",
        ];
        for c in cases {
            let std_addr: std::net::SocketAddr = c.parse().unwrap();
            let ip = match std_addr.ip() {
                std::net::IpAddr::V4(v4) => Ip::V4(v4.octets()),
                std::net::IpAddr::V6(v6) => Ip::V6(v6.octets()),
            };
            let ours = text(SockAddr {
                ip,
                port: std_addr.port(),
            });
            assert_eq!(ours, std::string::ToString::to_string(&std_addr), "{c}");
        }
    }
}
