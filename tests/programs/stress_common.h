/* Shared by the robustness test programs (tests/test_robustness.py).
 *
 * The harness side of every connection (listener, accept, close) uses raw
 * syscalls, so that only the code under test goes through the preloaded
 * hooks: socket(), connect(), setsockopt() and close() from libc.
 */
#ifndef KS_STRESS_COMMON_H
#define KS_STRESS_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef TCP_USER_TIMEOUT
#define TCP_USER_TIMEOUT 18
#endif

/* The values every socket must carry: the test passes them as arguments
 * and sets the same values in KEEPALIVE_SHIM_*. */
struct expected {
    int idle, intvl, cnt, uto;
};

static inline void die(const char *what) {
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(2);
}

/* A loopback listener made with raw syscalls. */
static inline int raw_listener(struct sockaddr_in *addr) {
    int fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("listener");
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof *addr;
    if (syscall(SYS_bind, fd, addr, len) || syscall(SYS_listen, fd, 4096) ||
        syscall(SYS_getsockname, fd, addr, &len))
        die("bind/listen");
    return fd;
}

/* Accepts and closes connections until the listener is shut down. Blocks
 * every signal, so that signals meant for the test go to its own threads. */
static void *acceptor(void *arg) {
    int lfd = *(int *)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        int c = (int)syscall(SYS_accept4, lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0) {
            syscall(SYS_close, c);
        } else if (errno != EINTR && errno != ECONNABORTED) {
            return NULL; /* shut down */
        }
    }
}

static inline pthread_t start_acceptor(int *lfd) {
    pthread_t t;
    if (pthread_create(&t, NULL, acceptor, lfd)) die("pthread_create");
    return t;
}

static inline void stop_acceptor(pthread_t t, int lfd) {
    syscall(SYS_shutdown, lfd, SHUT_RDWR);
    pthread_join(t, NULL);
    syscall(SYS_close, lfd);
}

/* Closes a client socket with a RST (SO_LINGER {1, 0}, set through libc,
 * i.e. through the setsockopt hook): no TIME_WAIT, so hundreds of thousands
 * of connections never run out of ephemeral ports. The acceptor closes its
 * side gracefully, so a connect() never sees a reset. */
static inline void close_reset(int fd) {
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static inline int get_int(int fd, int level, int name) {
    int v = -1;
    socklen_t l = sizeof v;
    if (syscall(SYS_getsockopt, fd, level, name, &v, &l)) return -1;
    return v;
}

/* 1 if the socket carries every expected option (read back from the kernel). */
static inline int configured(int fd, const struct expected *e) {
    return get_int(fd, SOL_SOCKET, SO_KEEPALIVE) == 1 && get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE) == e->idle &&
           get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL) == e->intvl &&
           get_int(fd, IPPROTO_TCP, TCP_KEEPCNT) == e->cnt &&
           get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == e->uto;
}

static inline void parse_expected(char **argv, struct expected *e) {
    e->idle = atoi(argv[0]);
    e->intvl = atoi(argv[1]);
    e->cnt = atoi(argv[2]);
    e->uto = atoi(argv[3]);
}


/* Connection counters of one worker thread. */
struct tally {
    long connects, configured, failed;
};

/* One socket() + connect() through the hooks, checked and closed. */
static inline void connect_checked(const struct sockaddr_in *addr, const struct expected *want,
                                   struct tally *t) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        t->failed++;
        return;
    }
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr)) {
        if (++t->failed <= 3) fprintf(stderr, "connect: %s\n", strerror(errno));
        close(fd);
        return;
    }
    t->connects++;
    t->configured += configured(fd, want);
    close_reset(fd);
}

/* Adds a worker's tally to the totals. */
static inline void tally_add(struct tally *total, const struct tally *t) {
    __atomic_add_fetch(&total->connects, t->connects, __ATOMIC_RELAXED);
    __atomic_add_fetch(&total->configured, t->configured, __ATOMIC_RELAXED);
    __atomic_add_fetch(&total->failed, t->failed, __ATOMIC_RELAXED);
}

/* Monotonic seconds. */
static inline double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
