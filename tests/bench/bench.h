/* Shared helpers for the keepalive-shim benchmarks (scripts/bench.sh).
 *
 * Every helper that must stay invisible to a preloaded library (the
 * listener, the raw "floor" calls) uses syscall() directly: the shim hooks
 * libc's socket functions (socket, connect, listen, accept, setsockopt, close
 * and more: the list is src/hooks.rs), never the raw syscall.
 */
#ifndef KS_BENCH_H
#define KS_BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef TCP_USER_TIMEOUT
#define TCP_USER_TIMEOUT 18
#endif

/* The values the shim uses by default, given to every variant. */
#define KS_IDLE 60
#define KS_INTVL 10
#define KS_CNT 6
#define KS_UTO 120000 /* (60 + 10 x 6) s, the shim's "auto" */

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void die(const char *what) {
    fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* A loopback listener created and configured with raw syscalls, so no hook
 * sees it. SO_LINGER {1, 0} is inherited by every accepted socket: closing
 * the accepted side first sends a RST, so neither side enters TIME_WAIT and
 * millions of connects never exhaust the ephemeral ports. */
static inline int raw_listener(struct sockaddr_in *addr, int backlog) {
    int fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("listener socket");
    struct linger lg = {1, 0};
    if (syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg)) die("SO_LINGER");
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (syscall(SYS_bind, fd, addr, sizeof *addr)) die("bind");
    if (syscall(SYS_listen, fd, backlog)) die("listen");
    socklen_t len = sizeof *addr;
    if (syscall(SYS_getsockname, fd, addr, &len)) die("getsockname");
    return fd;
}

/* accept() with the raw syscall: the harness's side of a connection never
 * goes through a hook (the library may hook accept). */
static inline int raw_accept(int lfd) {
    int fd = (int)syscall(SYS_accept4, lfd, NULL, NULL, 0);
    if (fd < 0) die("accept");
    return fd;
}

/* The options the shim sets, in its order, made by the program itself:
 * `n` = 5 (all), 4 (no TCP_USER_TIMEOUT) or 0. `raw`: syscall() instead of
 * the libc function (which a preloaded library could hook). */
static inline void own_options(int fd, int n, int raw) {
    static const int opts[5][3] = {
        {SOL_SOCKET, SO_KEEPALIVE, 1},
        {IPPROTO_TCP, TCP_KEEPIDLE, KS_IDLE},
        {IPPROTO_TCP, TCP_KEEPINTVL, KS_INTVL},
        {IPPROTO_TCP, TCP_KEEPCNT, KS_CNT},
        {IPPROTO_TCP, TCP_USER_TIMEOUT, KS_UTO},
    };
    for (int i = 0; i < n; i++) {
        int v = opts[i][2];
        long rc = raw ? syscall(SYS_setsockopt, fd, opts[i][0], opts[i][1], &v, sizeof v)
                      : setsockopt(fd, opts[i][0], opts[i][1], &v, sizeof v);
        if (rc) die("setsockopt");
    }
}

/* Raises RLIMIT_NOFILE (hard limit too, if we may) to at least `want`. */
static inline void raise_nofile(rlim_t want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) die("getrlimit");
    if (rl.rlim_cur >= want) return;
    if (rl.rlim_max < want) rl.rlim_max = want;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl)) die("setrlimit RLIMIT_NOFILE (needs a hard limit this high, or CAP_SYS_RESOURCE)");
}

/* A field of /proc/self/status, in kB (VmRSS, VmHWM, RssAnon, ...). Reads
 * with open/read into a stack buffer: no allocation that would itself show. */
static inline long proc_status_kb(const char *field) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    size_t len = strlen(field);
    for (char *line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
        if (strncmp(line, field, len) == 0 && line[len] == ':') return strtol(line + len + 1, NULL, 10);
    return -1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
