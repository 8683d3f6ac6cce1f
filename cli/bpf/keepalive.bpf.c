// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// keepalive-shim attach: the kernel side.
//
// Two programs, attached to one cgroup v2 by `keepalive-shim attach`:
//
// - `keepalive_sockops` (sock_ops): when a TCP connection of a process in the
//   cgroup is established (ACTIVE_ESTABLISHED: the process connected;
//   PASSIVE_ESTABLISHED: a listener of the cgroup accepted), it decides the
//   destination filters and sets SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL,
//   TCP_KEEPCNT and TCP_USER_TIMEOUT with bpf_setsockopt.
// - `keepalive_setsockopt` (cgroup/setsockopt): runs on every setsockopt()
//   the processes of the cgroup make. It records in socket storage which of
//   the five options the program set itself (respect mode skips those); in
//   force mode it rewrites the program's value on a connection this program
//   already configured, and in respect mode it keeps an `auto` user timeout
//   in step with the program's own later idle/interval/count.
//   bpf_setsockopt does not pass through this hook, so the record holds
//   only the program's own calls.
//
// The configuration is a read-only global that userspace fills before
// loading, so the verifier sees it as constants (an empty filter list costs
// nothing). Its layout is mirrored in cli/src/attach/bpf.rs.

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10
#define SOL_SOCKET 1
#define SO_KEEPALIVE 9
#define SOL_TCP 6
#define IPPROTO_TCP 6
#define TCP_KEEPIDLE 4
#define TCP_KEEPINTVL 5
#define TCP_KEEPCNT 6
#define TCP_USER_TIMEOUT 18

// Option bits, in this order everywhere (log lines, values[]).
#define OPT_KEEPALIVE 0
#define OPT_IDLE 1
#define OPT_INTVL 2
#define OPT_CNT 3
#define OPT_USER_TIMEOUT 4
#define N_OPTS 5

#define MAX_RULES 32

#define UT_OFF 0
#define UT_AUTO 1
#define UT_FIXED 2

#define MODE_RESPECT 0
#define MODE_FORCE 1

#define LOG_INFO 3
#define LOG_DEBUG 4

// A filter entry. family 0: any address (ports only); 4 or 6: addr/mask are
// four 32-bit words in network byte order (IPv4 uses word 0).
struct rule {
	__u8 family;
	__u8 pad;
	__u16 port_lo;
	__u16 port_hi;
	__u16 pad2;
	__u32 addr[4];
	__u32 mask[4];
};

struct config {
	__u32 idle;
	__u32 intvl;
	__u32 cnt;
	__u32 user_timeout_mode;
	__u32 user_timeout_ms;
	__u32 mode;
	__u32 log_level;
	__u32 n_include;
	__u32 n_exclude;
	__u32 self_tgid;	// attach itself: its setsockopt() calls are not the program's
	struct rule include[MAX_RULES];
	struct rule exclude[MAX_RULES];
};

_Static_assert(sizeof(struct rule) == 40, "mirrored in cli/src/attach/bpf.rs");
_Static_assert(sizeof(struct config) == 2600, "mirrored in cli/src/attach/bpf.rs");

volatile const struct config CONFIG = {};

// Per socket: which options the program set itself, and what this program
// did to the connection.
struct sk_state {
	__u32 program_set;
	__u32 flags;
};

// The connection was configured here (force mode then guards it).
#define ST_MANAGED 1

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct sk_state);
} SK_STATE SEC(".maps");

#define EV_ACTIVE 1
#define EV_PASSIVE 2
#define EV_FORCE 3

// One log line. Addresses in network byte order, ports in host order.
struct event {
	__u32 kind;
	__u32 family;
	__u32 local_ip[4];
	__u32 remote_ip[4];
	__u32 local_port;
	__u32 remote_port;
	__u32 shim_set;		// options this program set
	__u32 program_set;	// options the program had set itself
	__s32 values[N_OPTS];	// effective values after the change
	__u32 option;		// EV_FORCE: which option
	__s32 program_value;	// EV_FORCE: the value the program asked for
};

_Static_assert(sizeof(struct event) == 84, "mirrored in cli/src/attach/bpf.rs");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} EVENTS SEC(".maps");

// Waking the reader for every event costs more than the event itself; it
// reads every 250 ms anyway, and is woken early only when events pile up.
#define WAKEUP_BYTES (64 * sizeof(struct event))

static __always_inline __u64 wakeup_flag(void)
{
	return bpf_ringbuf_query(&EVENTS, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
									      : BPF_RB_NO_WAKEUP;
}

static __always_inline int rule_matches(const volatile struct rule *r, __u32 family,
					 const __u32 ip[4], __u32 port)
{
	if (port < r->port_lo || port > r->port_hi)
		return 0;
	if (r->family == 0)
		return 1;
	if (r->family != family)
		return 0;
	if ((ip[0] ^ r->addr[0]) & r->mask[0])
		return 0;
	if (family == 4)
		return 1;
	if ((ip[1] ^ r->addr[1]) & r->mask[1])
		return 0;
	if ((ip[2] ^ r->addr[2]) & r->mask[2])
		return 0;
	return !((ip[3] ^ r->addr[3]) & r->mask[3]);
}

static __always_inline int list_matches(const volatile struct rule *rules, __u32 n, __u32 family,
					 const __u32 ip[4], __u32 port)
{
	for (__u32 i = 0; i < MAX_RULES; i++) {
		if (i >= n)
			break;
		if (rule_matches(&rules[i], family, ip, port))
			return 1;
	}
	return 0;
}

// EXCLUDE wins over INCLUDE; an empty INCLUDE matches everything.
static __always_inline int applies(__u32 family, const __u32 ip[4], __u32 port)
{
	__u32 n_inc = CONFIG.n_include, n_exc = CONFIG.n_exclude;

	if (n_exc && list_matches(CONFIG.exclude, n_exc, family, ip, port))
		return 0;
	return !n_inc || list_matches(CONFIG.include, n_inc, family, ip, port);
}

static __always_inline int opt_level(__u32 opt)
{
	return opt == OPT_KEEPALIVE ? SOL_SOCKET : SOL_TCP;
}

static __always_inline int opt_name(__u32 opt)
{
	switch (opt) {
	case OPT_KEEPALIVE:
		return SO_KEEPALIVE;
	case OPT_IDLE:
		return TCP_KEEPIDLE;
	case OPT_INTVL:
		return TCP_KEEPINTVL;
	case OPT_CNT:
		return TCP_KEEPCNT;
	default:
		return TCP_USER_TIMEOUT;
	}
}

static __always_inline int get_int(struct bpf_sock_ops *skops, __u32 opt)
{
	int v = 0;

	if (bpf_getsockopt(skops, opt_level(opt), opt_name(opt), &v, sizeof(v)))
		return -1;
	return v;
}

static __always_inline int set_int(struct bpf_sock_ops *skops, __u32 opt, int v)
{
	return bpf_setsockopt(skops, opt_level(opt), opt_name(opt), &v, sizeof(v));
}

// The same formula as keepalive_shim_config::UserTimeout::auto_ms: (idle +
// interval x count) s in ms, capped at INT_MAX (checked against it by a
// test of the CLI).
static __always_inline __u32 auto_ms(__u32 idle, __u32 intvl, __u32 cnt)
{
	__u64 s = (__u64)intvl * cnt + idle;
	__u64 ms = s * 1000;

	return ms > 0x7fffffff ? 0x7fffffff : (__u32)ms;
}

// Context and socket fields are read with one instruction each, base
// register plus constant offset: otherwise clang may merge two branches'
// loads into one load from a computed pointer, which the verifier rejects
// ("dereference of modified ctx ptr", "pointer arithmetic on sock").
#define LOAD32(ptr, type, field)                                                   \
	({                                                                         \
		__u32 __v;                                                         \
		asm volatile("%0 = *(u32 *)(%1 + %2)"                              \
			     : "=r"(__v)                                           \
			     : "r"(ptr), "i"(__builtin_offsetof(type, field)));    \
		__v;                                                               \
	})
#define CTX(field) LOAD32(skops, struct bpf_sock_ops, field)

static __always_inline void configure(struct bpf_sock_ops *skops, __u32 kind)
{
	__u32 family, ip[4] = {}, port;
	__u32 local_ip[4] = {}, remote_ip[4] = {};

	if (CTX(family) == AF_INET) {
		family = 4;
		local_ip[0] = CTX(local_ip4);
		remote_ip[0] = CTX(remote_ip4);
	} else if (CTX(family) == AF_INET6) {
		family = 6;
		local_ip[0] = CTX(local_ip6[0]);
		local_ip[1] = CTX(local_ip6[1]);
		local_ip[2] = CTX(local_ip6[2]);
		local_ip[3] = CTX(local_ip6[3]);
		remote_ip[0] = CTX(remote_ip6[0]);
		remote_ip[1] = CTX(remote_ip6[1]);
		remote_ip[2] = CTX(remote_ip6[2]);
		remote_ip[3] = CTX(remote_ip6[3]);
	} else {
		return;
	}
	// Clients are filtered on the peer they reached, servers on the local
	// address and port their client reached (as the preload library does).
	if (kind == EV_ACTIVE) {
		ip[0] = remote_ip[0];
		ip[1] = remote_ip[1];
		ip[2] = remote_ip[2];
		ip[3] = remote_ip[3];
		port = bpf_ntohl(CTX(remote_port)) & 0xffff;
	} else {
		ip[0] = local_ip[0];
		ip[1] = local_ip[1];
		ip[2] = local_ip[2];
		ip[3] = local_ip[3];
		port = CTX(local_port);
	}
	// ::ffff:a.b.c.d is matched as a.b.c.d.
	if (family == 6 && ip[0] == 0 && ip[1] == 0 && ip[2] == bpf_htonl(0xffff)) {
		family = 4;
		ip[0] = ip[3];
	}
	if (!applies(family, ip, port))
		return;

	struct bpf_sock *sk = skops->sk;
	if (!sk)
		return;
	__u32 respect = CONFIG.mode == MODE_RESPECT;
	__u32 ut_mode = CONFIG.user_timeout_mode;
	// A socket the program never called setsockopt() on has no storage.
	// Respect mode only reads it; force mode marks the connection as
	// configured, which needs it (an allocation per connection, measured
	// at about 0.6 us).
	struct sk_state *st =
		bpf_sk_storage_get(&SK_STATE, sk, 0, respect ? 0 : BPF_SK_STORAGE_GET_F_CREATE);
	__u32 program_set = st ? st->program_set : 0;
	__u32 shim_set = 0;

	if (st)
		st->flags |= ST_MANAGED;
	// The timers first and SO_KEEPALIVE last: each of them re-arms the
	// keepalive timer when keepalive is already on.
	if (!(respect && (program_set & (1 << OPT_IDLE))) && !set_int(skops, OPT_IDLE, CONFIG.idle))
		shim_set |= 1 << OPT_IDLE;
	if (!(respect && (program_set & (1 << OPT_INTVL))) && !set_int(skops, OPT_INTVL, CONFIG.intvl))
		shim_set |= 1 << OPT_INTVL;
	if (!(respect && (program_set & (1 << OPT_CNT))) && !set_int(skops, OPT_CNT, CONFIG.cnt))
		shim_set |= 1 << OPT_CNT;
	if (!(respect && (program_set & (1 << OPT_KEEPALIVE))) && !set_int(skops, OPT_KEEPALIVE, 1))
		shim_set |= 1 << OPT_KEEPALIVE;

	// A program's own TCP_USER_TIMEOUT always stands, in force mode too.
	if (ut_mode != UT_OFF && !(program_set & (1 << OPT_USER_TIMEOUT))) {
		__u32 ms = CONFIG.user_timeout_ms;

		if (ut_mode == UT_AUTO) {
			// From the socket's effective values: the program's own
			// where it set them and they stand.
			int idle = get_int(skops, OPT_IDLE);
			int intvl = get_int(skops, OPT_INTVL);
			int cnt = get_int(skops, OPT_CNT);

			if (idle < 0 || intvl < 0 || cnt < 0)
				ms = 0;
			else
				ms = auto_ms(idle, intvl, cnt);
		}
		if (ms && !set_int(skops, OPT_USER_TIMEOUT, ms))
			shim_set |= 1 << OPT_USER_TIMEOUT;
	}

	if (CONFIG.log_level < LOG_INFO)
		return;
	struct event *ev = bpf_ringbuf_reserve(&EVENTS, sizeof(*ev), 0);
	if (!ev)
		return;
	ev->kind = kind;
	ev->family = CTX(family) == AF_INET ? 4 : 6;
	for (int i = 0; i < 4; i++) {
		ev->local_ip[i] = local_ip[i];
		ev->remote_ip[i] = remote_ip[i];
	}
	ev->local_port = CTX(local_port);
	ev->remote_port = bpf_ntohl(CTX(remote_port)) & 0xffff;
	ev->shim_set = shim_set;
	ev->program_set = program_set;
	ev->values[OPT_KEEPALIVE] = get_int(skops, OPT_KEEPALIVE);
	ev->values[OPT_IDLE] = get_int(skops, OPT_IDLE);
	ev->values[OPT_INTVL] = get_int(skops, OPT_INTVL);
	ev->values[OPT_CNT] = get_int(skops, OPT_CNT);
	ev->values[OPT_USER_TIMEOUT] = get_int(skops, OPT_USER_TIMEOUT);
	ev->option = 0;
	ev->program_value = 0;
	bpf_ringbuf_submit(ev, wakeup_flag());
}

SEC("sockops")
int keepalive_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		configure(skops, EV_ACTIVE);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		configure(skops, EV_PASSIVE);
		break;
	}
	return 1;
}

static __always_inline int sk_get_int(struct bpf_sock *sk, int optname)
{
	int v = -1;

	if (bpf_getsockopt(sk, SOL_TCP, optname, &v, sizeof(v)))
		return -1;
	return v;
}

// Respect mode, `auto` user timeout: the program is changing its idle time,
// interval or count (to the value in ctx->optval, which the kernel applies
// after this program). If the socket's user timeout is the `auto` value of
// its current idle, interval and count (set here: the program never set
// one, and a socket without one has 0), it follows, from the new value and
// the two others, as the preload library does. Telling it this way costs
// four getsockopt here, in a rare call, instead of socket storage for
// every connection.
static __always_inline void refresh_auto_user_timeout(struct bpf_sockopt *ctx, struct bpf_sock *sk,
						     __u32 opt)
{
	int *optval = ctx->optval;
	if ((void *)(optval + 1) > ctx->optval_end)
		return;
	int v = *optval;
	int max = opt == OPT_CNT ? 127 : 32767;
	if (v < 1 || v > max)
		return; // the kernel refuses it: nothing changes
	int idle = sk_get_int(sk, TCP_KEEPIDLE);
	int intvl = sk_get_int(sk, TCP_KEEPINTVL);
	int cnt = sk_get_int(sk, TCP_KEEPCNT);
	int ut = sk_get_int(sk, TCP_USER_TIMEOUT);
	if (idle < 0 || intvl < 0 || cnt < 0 || ut <= 0 || (__u32)ut != auto_ms(idle, intvl, cnt))
		return;
	if (opt == OPT_IDLE)
		idle = v;
	else if (opt == OPT_INTVL)
		intvl = v;
	else
		cnt = v;
	int ms = auto_ms(idle, intvl, cnt);
	bpf_setsockopt(sk, SOL_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
}

SEC("cgroup/setsockopt")
int keepalive_setsockopt(struct bpf_sockopt *ctx)
{
	__u32 opt, value;
	struct bpf_sock *sk = ctx->sk;

	if (!sk || sk->protocol != IPPROTO_TCP)
		return 1;
	// attach's own start-up step (existing connections, through
	// pidfd_getfd) sets options on the cgroup's sockets: not the program.
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) == CONFIG.self_tgid)
		return 1;
	if (ctx->level == SOL_SOCKET && ctx->optname == SO_KEEPALIVE)
		opt = OPT_KEEPALIVE;
	else if (ctx->level == SOL_TCP && ctx->optname == TCP_KEEPIDLE)
		opt = OPT_IDLE;
	else if (ctx->level == SOL_TCP && ctx->optname == TCP_KEEPINTVL)
		opt = OPT_INTVL;
	else if (ctx->level == SOL_TCP && ctx->optname == TCP_KEEPCNT)
		opt = OPT_CNT;
	else if (ctx->level == SOL_TCP && ctx->optname == TCP_USER_TIMEOUT)
		opt = OPT_USER_TIMEOUT;
	else
		return 1;

	struct sk_state *st = bpf_sk_storage_get(&SK_STATE, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return 1;
	st->program_set |= 1 << opt;
	if (opt == OPT_USER_TIMEOUT)
		return 1; // the program's own, in either mode
	if (CONFIG.mode != MODE_FORCE) {
		if (CONFIG.user_timeout_mode == UT_AUTO && opt != OPT_KEEPALIVE &&
		    !(st->program_set & (1 << OPT_USER_TIMEOUT)))
			refresh_auto_user_timeout(ctx, sk, opt);
		return 1;
	}
	if (!(st->flags & ST_MANAGED))
		return 1;

	// Force mode on a connection this program configured: the program's
	// setsockopt() runs and returns as usual, with this program's value.
	int *optval = ctx->optval;
	if ((void *)(optval + 1) > ctx->optval_end)
		return 1;
	switch (opt) {
	case OPT_KEEPALIVE:
		value = 1;
		break;
	case OPT_IDLE:
		value = CONFIG.idle;
		break;
	case OPT_INTVL:
		value = CONFIG.intvl;
		break;
	default:
		value = CONFIG.cnt;
		break;
	}
	int asked = *optval;
	if ((__u32)asked == value)
		return 1;
	*optval = value;
	ctx->optlen = sizeof(int);

	if (CONFIG.log_level < LOG_INFO)
		return 1;
	struct event *ev = bpf_ringbuf_reserve(&EVENTS, sizeof(*ev), 0);
	if (!ev)
		return 1;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->kind = EV_FORCE;
#define SK(field) LOAD32(sk, struct bpf_sock, field)
	if (SK(family) == AF_INET) {
		ev->family = 4;
		ev->local_ip[0] = SK(src_ip4);
		ev->remote_ip[0] = SK(dst_ip4);
	} else {
		ev->family = 6;
		ev->local_ip[0] = SK(src_ip6[0]);
		ev->local_ip[1] = SK(src_ip6[1]);
		ev->local_ip[2] = SK(src_ip6[2]);
		ev->local_ip[3] = SK(src_ip6[3]);
		ev->remote_ip[0] = SK(dst_ip6[0]);
		ev->remote_ip[1] = SK(dst_ip6[1]);
		ev->remote_ip[2] = SK(dst_ip6[2]);
		ev->remote_ip[3] = SK(dst_ip6[3]);
	}
	ev->local_port = SK(src_port);
	// dst_port: network byte order in the low 16 bits of its word.
	ev->remote_port = bpf_ntohs((__u16)SK(dst_port));
	ev->option = opt;
	ev->program_value = asked;
	ev->values[opt] = value;
	bpf_ringbuf_submit(ev, wakeup_flag());
	return 1;
}

// MIT, as the rest of the project; GPL too, so the kernel lets a later
// version use any helper.
char LICENSE[] SEC("license") = "Dual MIT/GPL";
