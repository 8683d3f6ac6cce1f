/* Every hooked function called with invalid pointers and lengths.
 *
 * Prints one line per call, "name rc=N errno=E", so that a run without the
 * library and a run with it (in any mode) can be compared line by line: the
 * library must give exactly the real call's answer and never fault. An
 * address that ends in an unreadable page tests a read that starts valid and
 * runs off the mapping. Sockets made by raw syscalls are included: the
 * library has never seen them, so it must classify them without touching
 * the program's memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BAD ((void *)-1)

static void show(const char *name, long rc) {
    printf("%s rc=%ld errno=%d\n", name, rc, rc < 0 ? errno : 0);
    fflush(stdout);
}

/* A page followed by an inaccessible one: `edge(n)` is n bytes before the
 * unreadable page. */
static char *page;
static void *edge(size_t n) { return page + 4096 - n; }

static int tcp(int raw) {
    return raw ? (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0) : socket(AF_INET, SOCK_STREAM, 0);
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* connect() with every kind of bad address, on a fresh socket each time. */
static void connects(const char *tag, int raw, int port) {
    char name[64];
    struct sockaddr_in ok = loopback(port);
    struct {
        const char *what;
        const void *addr;
        socklen_t len;
    } cases[] = {
        {"minus1", BAD, sizeof ok},
        {"null", NULL, sizeof ok},
        {"null0", NULL, 0},
        {"short", &ok, 1},
        {"family-only", &ok, 2},
        {"truncated-in", &ok, sizeof ok - 4},
        {"huge-len", &ok, 0x7fffffff},
        {"edge-half", NULL, sizeof ok},  /* set below: half readable */
        {"edge-family", NULL, sizeof ok}, /* only the family readable */
        {"misaligned", NULL, sizeof ok},
    };
    size_t n = sizeof cases / sizeof cases[0];
    memcpy(edge(8), &ok, 8);
    cases[7].addr = edge(8);
    memcpy(edge(2), &ok, 2);
    cases[8].addr = edge(2);
    static char buf[64];
    memcpy(buf + 1, &ok, sizeof ok);
    cases[9].addr = buf + 1;
    for (size_t i = 0; i < n; i++) {
        int fd = tcp(raw);
        snprintf(name, sizeof name, "%s connect %s", tag, cases[i].what);
        show(name, connect(fd, cases[i].addr, cases[i].len));
        close(fd);
    }
}

static void options(const char *tag, int raw) {
    char name[64];
    int one = 1;
    int levels[][2] = {{SOL_SOCKET, SO_KEEPALIVE}, {IPPROTO_TCP, TCP_KEEPIDLE},
                       {IPPROTO_TCP, TCP_USER_TIMEOUT}, {SOL_SOCKET, SO_ERROR}};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        int fd = tcp(raw);
        snprintf(name, sizeof name, "%s setsockopt %d/%d minus1", tag, levels[i][0], levels[i][1]);
        show(name, setsockopt(fd, levels[i][0], levels[i][1], BAD, sizeof one));
        snprintf(name, sizeof name, "%s setsockopt %d/%d null", tag, levels[i][0], levels[i][1]);
        show(name, setsockopt(fd, levels[i][0], levels[i][1], NULL, sizeof one));
        snprintf(name, sizeof name, "%s setsockopt %d/%d short", tag, levels[i][0], levels[i][1]);
        show(name, setsockopt(fd, levels[i][0], levels[i][1], &one, 1));
        snprintf(name, sizeof name, "%s setsockopt %d/%d edge", tag, levels[i][0], levels[i][1]);
        show(name, setsockopt(fd, levels[i][0], levels[i][1], edge(2), sizeof one));
        socklen_t len = sizeof one;
        int v;
        snprintf(name, sizeof name, "%s getsockopt %d/%d value-minus1", tag, levels[i][0], levels[i][1]);
        show(name, getsockopt(fd, levels[i][0], levels[i][1], BAD, &len));
        snprintf(name, sizeof name, "%s getsockopt %d/%d len-minus1", tag, levels[i][0], levels[i][1]);
        show(name, getsockopt(fd, levels[i][0], levels[i][1], &v, BAD));
        snprintf(name, sizeof name, "%s getsockopt %d/%d len-null", tag, levels[i][0], levels[i][1]);
        show(name, getsockopt(fd, levels[i][0], levels[i][1], &v, NULL));
        close(fd);
    }
}

static void sends(const char *tag, int raw, int port) {
    char name[64];
    struct sockaddr_in ok = loopback(port);
    const char data[] = "x";
    int fd = tcp(raw);
    snprintf(name, sizeof name, "%s sendto fastopen addr-minus1", tag);
    show(name, sendto(fd, data, 1, MSG_FASTOPEN, BAD, sizeof ok));
    close(fd);
    fd = tcp(raw);
    snprintf(name, sizeof name, "%s sendto fastopen addr-edge", tag);
    memcpy(edge(4), &ok, 4);
    show(name, sendto(fd, data, 1, MSG_FASTOPEN, edge(4), sizeof ok));
    close(fd);
    fd = tcp(raw);
    snprintf(name, sizeof name, "%s sendto fastopen buf-minus1", tag);
    show(name, sendto(fd, BAD, 1, MSG_FASTOPEN | MSG_DONTWAIT, (struct sockaddr *)&ok, sizeof ok));
    close(fd);
    fd = tcp(raw);
    snprintf(name, sizeof name, "%s sendmsg fastopen msg-minus1", tag);
    show(name, sendmsg(fd, BAD, MSG_FASTOPEN));
    close(fd);
    fd = tcp(raw);
    snprintf(name, sizeof name, "%s sendmsg fastopen msg-edge", tag);
    show(name, sendmsg(fd, edge(8), MSG_FASTOPEN));
    close(fd);
    fd = tcp(raw);
    struct iovec iov = {(void *)data, 1};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_name = BAD;
    m.msg_namelen = sizeof ok;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    snprintf(name, sizeof name, "%s sendmsg fastopen name-minus1", tag);
    show(name, sendmsg(fd, &m, MSG_FASTOPEN));
    close(fd);
    fd = tcp(raw);
    snprintf(name, sizeof name, "%s sendmmsg fastopen vec-minus1", tag);
    show(name, sendmmsg(fd, BAD, 1, MSG_FASTOPEN));
    close(fd);
    fd = tcp(raw);
    snprintf(name, sizeof name, "%s sendto plain addr-minus1", tag);
    show(name, sendto(fd, data, 1, 0, BAD, sizeof ok));
    close(fd);
}

/* accept() with bad address buffers, each with a connection waiting. */
static void accepts(const char *tag, int raw) {
    char name[64];
    int lfd = tcp(raw);
    struct sockaddr_in a = loopback(0);
    socklen_t alen = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 16) ||
        getsockname(lfd, (struct sockaddr *)&a, &alen)) {
        perror("listener");
        exit(2);
    }
    for (int i = 0; i < 6; i++) {
        int c = tcp(0);
        if (connect(c, (struct sockaddr *)&a, sizeof a)) {
            perror("connect");
            exit(2);
        }
        socklen_t len = sizeof a;
        struct sockaddr_in peer;
        long rc;
        switch (i) {
        case 0: snprintf(name, sizeof name, "%s accept addr-minus1", tag); rc = accept(lfd, BAD, &len); break;
        case 1: snprintf(name, sizeof name, "%s accept len-minus1", tag); rc = accept(lfd, (struct sockaddr *)&peer, BAD); break;
        case 2: snprintf(name, sizeof name, "%s accept4 addr-minus1", tag); rc = accept4(lfd, BAD, &len, SOCK_CLOEXEC); break;
        case 3: snprintf(name, sizeof name, "%s accept4 len-minus1", tag); rc = accept4(lfd, (struct sockaddr *)&peer, BAD, 0); break;
        case 4: snprintf(name, sizeof name, "%s accept4 bad-flags", tag); rc = accept4(lfd, NULL, NULL, -1); break;
        default: snprintf(name, sizeof name, "%s accept null-null", tag); rc = accept(lfd, NULL, NULL); break;
        }
        show(name, rc);
        if (rc >= 0) close((int)rc);
        close(c);
    }
    snprintf(name, sizeof name, "%s listen bad-fd", tag);
    show(name, listen(-5, 1));
    close(lfd);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 9;
    page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED || mprotect(page + 4096, 4096, PROT_NONE)) {
        perror("mmap");
        return 2;
    }
    for (int raw = 0; raw <= 1; raw++) {
        const char *tag = raw ? "raw" : "libc";
        connects(tag, raw, port);
        options(tag, raw);
        sends(tag, raw, port);
        accepts(tag, raw);
    }
    show("close bad-fd", close(-7));
    show("connect bad-fd", connect(-7, BAD, 16));
    show("socket bad-domain", socket(-1, SOCK_STREAM, 0));
    printf("done\n");
    return 0;
}
