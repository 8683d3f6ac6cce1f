/* A small client for memcheck: every path of the hooks, once or a few times.
 *
 *   valgrind_client IDLE INTVL CNT UTO
 * - TCP over IPv4 and IPv6 through socket()/connect() (options at socket());
 * - a TCP socket made with the raw syscall, connected through connect()
 *   (the connect-time fallback), on a fresh descriptor number and on one
 *   that hooked sockets used before (close() hook);
 * - the program's own setsockopt() of a managed option before connect();
 * - connect() to a closed port (an error path);
 * - a listening socket through listen() and accept();
 * - UDP and AF_UNIX sockets (left alone), a UDP connect().
 * Prints one line per check ("name ok" / "name FAIL ...") and "result=ok" or
 * "result=FAIL". The harness listeners are made with raw syscalls.
 */
#include "stress_common.h"

#include <sys/un.h>

static int failures;
static struct expected want;

static void check(const char *name, int ok) {
    printf("%s %s\n", name, ok ? "ok" : "FAIL");
    failures += !ok;
}

static int raw_listener6(struct sockaddr_in6 *a) {
    int fd = (int)syscall(SYS_socket, AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    memset(a, 0, sizeof *a);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    socklen_t len = sizeof *a;
    if (syscall(SYS_bind, fd, a, len) || syscall(SYS_listen, fd, 16) || syscall(SYS_getsockname, fd, a, &len)) {
        syscall(SYS_close, fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s IDLE INTVL CNT UTO\n", argv[0]);
        return 2;
    }
    parse_expected(argv + 1, &want);
    struct sockaddr_in addr;
    int lfd = raw_listener(&addr);

    { /* created with the raw syscall: options at connect(). First, on a
         * descriptor number no hooked socket has used yet. */
        int fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
        check("fallback_connect", connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
        check("fallback_configured", configured(fd, &want));
        int a = (int)syscall(SYS_accept4, lfd, NULL, NULL, 0);
        syscall(SYS_close, a);
        close(fd);
    }

    for (int i = 0; i < 3; i++) { /* IPv4, through socket() */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        check("tcp4_connect", connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
        check("tcp4_configured", configured(fd, &want));
        int a = (int)syscall(SYS_accept4, lfd, NULL, NULL, 0);
        syscall(SYS_close, a);
        close(fd);
    }

    { /* the same, on a descriptor number hooked sockets used (and closed) */
        int fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
        check("fallback_reused_connect", connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
        check("fallback_reused_configured", configured(fd, &want));
        int a = (int)syscall(SYS_accept4, lfd, NULL, NULL, 0);
        syscall(SYS_close, a);
        close(fd);
    }

    struct sockaddr_in6 addr6;
    int lfd6 = raw_listener6(&addr6);
    if (lfd6 >= 0) { /* no IPv6 on this host: skipped */
        int fd = socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP);
        check("tcp6_connect", connect(fd, (struct sockaddr *)&addr6, sizeof addr6) == 0);
        check("tcp6_configured", configured(fd, &want));
        int a = (int)syscall(SYS_accept4, lfd6, NULL, NULL, 0);
        syscall(SYS_close, a);
        close(fd);
        syscall(SYS_close, lfd6);
    }

    { /* the program sets one option itself first: its value stands */
        int fd = socket(AF_INET, SOCK_STREAM, 0), mine = want.idle + 1;
        check("own_setsockopt", setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &mine, sizeof mine) == 0);
        check("own_connect", connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
        check("own_value_stands", get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE) == mine);
        int a = (int)syscall(SYS_accept4, lfd, NULL, NULL, 0);
        syscall(SYS_close, a);
        close(fd);
    }

    { /* connect() to a port nobody listens on */
        struct sockaddr_in closed;
        int holder = raw_listener(&closed); /* bound and listening ... */
        syscall(SYS_close, holder);         /* ... then closed: refused */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        errno = 0;
        int rc = connect(fd, (struct sockaddr *)&closed, sizeof closed);
        check("refused", rc == -1 && errno == ECONNREFUSED);
        close(fd);
    }

    { /* a server: listen() and accept() through libc */
        int srv = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof sa;
        check("server_bind", bind(srv, (struct sockaddr *)&sa, len) == 0 &&
                                 getsockname(srv, (struct sockaddr *)&sa, &len) == 0);
        check("server_listen", listen(srv, 4) == 0);
        int c = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
        check("server_peer_connect", syscall(SYS_connect, c, &sa, sizeof sa) == 0);
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        int a = accept(srv, (struct sockaddr *)&peer, &plen);
        check("server_accept", a >= 0);
        check("server_accepted_keepalive", get_int(a, SOL_SOCKET, SO_KEEPALIVE) == 1);
        close(a);
        int a4 = -1, c2 = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
        if (syscall(SYS_connect, c2, &sa, sizeof sa) == 0) a4 = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
        check("server_accept4", a4 >= 0);
        close(a4);
        syscall(SYS_close, c);
        syscall(SYS_close, c2);
        close(srv);
    }

    { /* sockets the shim leaves alone */
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        check("udp_connect", connect(u, (struct sockaddr *)&addr, sizeof addr) == 0);
        check("udp_untouched", get_int(u, SOL_SOCKET, SO_KEEPALIVE) == 0);
        close(u);
        int x = socket(AF_UNIX, SOCK_STREAM, 0);
        check("unix_untouched", get_int(x, SOL_SOCKET, SO_KEEPALIVE) == 0);
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        strcpy(un.sun_path + 1, "ks-valgrind-nobody"); /* abstract, unbound */
        check("unix_connect_fails", connect(x, (struct sockaddr *)&un, sizeof un) == -1);
        close(x);
    }

    syscall(SYS_close, lfd);
    printf("result=%s\n", failures ? "FAIL" : "ok");
    return failures != 0;
}
