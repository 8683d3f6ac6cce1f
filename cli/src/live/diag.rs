//! The kernel's list of TCP sockets of one network namespace, through
//! sock_diag (`inet_diag`, the interface `ss` uses): addresses, state,
//! inode and the timer that `ss -o` shows.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{AF_INET, AF_INET6, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
    SockDiagMessage,
};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr as NlAddr};

use super::{sys, KernelDefaults};

/// A socket's timer, as `ss -o` prints it: `timer:(KIND,EXPIRES,N)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Timer {
    /// `on` (retransmission), `keepalive`, `timewait` or `persist` (zero
    /// window probe): `ss`'s names.
    pub kind: &'static str,
    /// Milliseconds until it fires (`idiag_expires`).
    pub expires_ms: u64,
    /// `idiag_retrans`: retransmissions for `on`, keepalive probes sent and
    /// unanswered for `keepalive`.
    pub retrans: u8,
}

impl std::fmt::Display for Timer {
    /// `timer:(keepalive,1min59sec,0)`, as `ss -o` writes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "timer:({},", self.kind)?;
        let (mut secs, ms) = (self.expires_ms / 1000, self.expires_ms % 1000);
        if secs >= 60 {
            write!(f, "{}min", secs / 60)?;
            secs %= 60;
        }
        match (secs, ms) {
            (0, 0) if self.expires_ms == 0 => f.write_str("0ms")?,
            (0, 0) => {}
            (0, ms) => write!(f, "{ms}ms")?,
            (s, 0) => write!(f, "{s}sec")?,
            (s, ms) => write!(f, "{s}.{ms:03}sec")?,
        }
        write!(f, ",{})", self.retrans)
    }
}

/// One socket of the dump.
#[derive(Clone, Debug)]
pub struct DiagSocket {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub state: u8,
    pub timer: Option<Timer>,
}

/// What one namespace's dump tells: its TCP sockets by inode, its
/// listening ports, and its keepalive sysctls.
pub struct NetnsView {
    pub sockets: HashMap<u64, DiagSocket>,
    /// (address, port) of every listener; an unspecified address stands
    /// for every local address.
    listeners: HashSet<(IpAddr, u16)>,
    pub defaults: KernelDefaults,
}

impl NetnsView {
    /// True if a connection with this local address was accepted from a
    /// listener of this namespace (a listener on its port and address, or
    /// on the unspecified address of either family).
    pub fn is_accepted(&self, local: &SocketAddr) -> bool {
        let port = local.port();
        let unmapped = match local.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(local.ip(), IpAddr::V4),
            ip => ip,
        };
        [
            local.ip(),
            unmapped,
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        ]
        .iter()
        .any(|ip| self.listeners.contains(&(*ip, port)))
    }
}

/// TCP state names as `ss` prints them, by the kernel's number.
pub fn state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN-SENT",
        3 => "SYN-RECV",
        4 => "FIN-WAIT-1",
        5 => "FIN-WAIT-2",
        6 => "TIME-WAIT",
        7 => "UNCONN",
        8 => "CLOSE-WAIT",
        9 => "LAST-ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "UNKNOWN",
    }
}

pub const TCP_LISTEN: u8 = 10;

/// Dumps the TCP sockets of the network namespace `ns` (`/proc/PID/ns/net`),
/// or of our own when `ns` is `None`. Another namespace is entered by a
/// short-lived thread of its own (setns applies to one thread), which opens
/// the netlink socket and reads the sysctls there.
pub fn read_netns(ns: Option<File>) -> io::Result<NetnsView> {
    match ns {
        None => read_here(),
        Some(ns) => std::thread::Builder::new()
            .name("netns".into())
            .spawn(move || {
                sys::enter_netns(ns.as_fd())
                    .map_err(|e| io::Error::new(e.kind(), format!("setns: {e}")))?;
                read_here()
            })?
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the netns thread panicked"))),
    }
}

fn read_here() -> io::Result<NetnsView> {
    let defaults = read_defaults()?;
    let mut view = NetnsView {
        sockets: HashMap::new(),
        listeners: HashSet::new(),
        defaults,
    };
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&NlAddr::new(0, 0))?;
    for family in [AF_INET, AF_INET6] {
        dump(&socket, family, &mut view)?;
    }
    Ok(view)
}

/// `net.ipv4.tcp_keepalive_{time,intvl,probes}` of the calling thread's
/// namespace.
fn read_defaults() -> io::Result<KernelDefaults> {
    let read = |name: &str| -> io::Result<u32> {
        let path = format!("/proc/sys/net/ipv4/{name}");
        std::fs::read_to_string(&path)?
            .trim()
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {e}")))
    };
    Ok(KernelDefaults {
        idle_s: read("tcp_keepalive_time")?,
        interval_s: read("tcp_keepalive_intvl")?,
        count: read("tcp_keepalive_probes")?,
    })
}

// Offset of `idiag_retrans` in a response: after the 16-byte netlink header,
// `idiag_family`, `idiag_state`, `idiag_timer`. The crate keeps it only for
// the retransmission timer; for keepalive it is the number of probes sent.
const RETRANS_OFFSET: usize = 16 + 3;

fn dump(socket: &Socket, family: u8, view: &mut NetnsView) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    // Sockets in TIME-WAIT and SYN-RECV belong to no descriptor.
    let states = StateFlags::all().difference(StateFlags::TIME_WAIT | StateFlags::SYN_RECV);
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states,
            socket_id: if family == AF_INET {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            },
        })
        .into(),
    );
    packet.finalize();
    let mut request = vec![0; packet.buffer_len()];
    packet.serialize(&mut request);
    socket.send(&request, 0)?;

    let mut buf = vec![0u8; 1 << 20];
    loop {
        let size = socket.recv(&mut &mut buf[..], 0)?;
        let mut offset = 0;
        while offset < size {
            let Some(bytes) = buf.get(offset..size) else {
                break;
            };
            let msg = <NetlinkMessage<SockDiagMessage>>::deserialize(bytes).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag: {e}"))
            })?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(e) => {
                    return Err(io::Error::new(
                        e.to_io().kind(),
                        format!("sock_diag: {}", e.to_io()),
                    ))
                }
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    let h = &r.header;
                    let retrans = bytes.get(RETRANS_OFFSET).copied().unwrap_or(0);
                    let timer = h.timer.as_ref().map(|t| timer_of(t, retrans));
                    let id = &h.socket_id;
                    let local = SocketAddr::new(id.source_address, id.source_port);
                    let peer = SocketAddr::new(id.destination_address, id.destination_port);
                    if h.state == TCP_LISTEN {
                        view.listeners.insert((local.ip(), local.port()));
                    }
                    if h.inode != 0 {
                        view.sockets.insert(
                            u64::from(h.inode),
                            DiagSocket {
                                local,
                                peer,
                                state: h.state,
                                timer,
                            },
                        );
                    }
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset = offset.saturating_add(len);
        }
    }
}

fn timer_of(t: &netlink_packet_sock_diag::inet::Timer, retrans: u8) -> Timer {
    use netlink_packet_sock_diag::inet::Timer as T;
    let ms = |d: &std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    match t {
        T::Retransmit(d, n) => Timer {
            kind: "on",
            expires_ms: ms(d),
            retrans: *n,
        },
        T::KeepAlive(d) => Timer {
            kind: "keepalive",
            expires_ms: ms(d),
            retrans,
        },
        T::TimeWait => Timer {
            kind: "timewait",
            expires_ms: 0,
            retrans: 0,
        },
        T::Probe(d) => Timer {
            kind: "persist",
            expires_ms: ms(d),
            retrans,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_means_a_listener_on_the_local_port() {
        let view = |listeners: &[&str]| NetnsView {
            sockets: HashMap::new(),
            listeners: listeners
                .iter()
                .map(|l| {
                    let a: SocketAddr = l.parse().unwrap();
                    (a.ip(), a.port())
                })
                .collect(),
            defaults: KernelDefaults {
                idle_s: 7200,
                interval_s: 75,
                count: 9,
            },
        };
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(view(&["10.0.0.1:80"]).is_accepted(&at("10.0.0.1:80")));
        assert!(!view(&["10.0.0.1:80"]).is_accepted(&at("10.0.0.2:80")));
        assert!(!view(&["10.0.0.1:80"]).is_accepted(&at("10.0.0.1:81")));
        assert!(view(&["0.0.0.0:80"]).is_accepted(&at("10.0.0.2:80")));
        // A dual-stack listener, and an IPv4 client of it seen as mapped.
        assert!(view(&["[::]:80"]).is_accepted(&at("[::ffff:10.0.0.2]:80")));
        assert!(view(&["10.0.0.2:80"]).is_accepted(&at("[::ffff:10.0.0.2]:80")));
    }

    #[test]
    fn timer_text_matches_ss() {
        let t = |ms, kind| {
            Timer {
                kind,
                expires_ms: ms,
                retrans: 0,
            }
            .to_string()
        };
        assert_eq!(
            t(7_199_500, "keepalive"),
            "timer:(keepalive,119min59.500sec,0)"
        );
        assert_eq!(t(1_234, "keepalive"), "timer:(keepalive,1.234sec,0)");
        assert_eq!(t(120_000, "keepalive"), "timer:(keepalive,2min,0)");
        assert_eq!(t(250, "on"), "timer:(on,250ms,0)");
        assert_eq!(t(0, "on"), "timer:(on,0ms,0)");
    }
}
