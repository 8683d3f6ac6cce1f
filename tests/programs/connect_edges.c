/* Connect calls at the edges of what a connect is, each on loopback.
 *
 *   connect_edges MODE
 *
 * unspec    connect(AF_UNSPEC) first (a disconnect), then a real connect
 * v6len24   IPv6 connect with the 24-byte sockaddr_in6 of RFC 2133
 * mmsg0     sendmmsg(fd, msgs, 0, MSG_FASTOPEN): no message, no connection
 * soerr1    non-blocking connect, then getsockopt(SO_ERROR) with optlen 1
 *
 * Prints "port=P" for each listener, then "KA=k IDLE=i" of the socket the
 * mode is about (raw getsockopt), and "connected=0|1".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int listener(int family, int *port) {
    int l = socket(family, SOCK_STREAM, 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    }
    bind(l, (struct sockaddr *)&ss, len);
    listen(l, 8);
    getsockname(l, (struct sockaddr *)&ss, &len);
    *port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                     : ((struct sockaddr_in *)&ss)->sin_port);
    printf("port=%d\n", *port);
    return l;
}

static struct sockaddr_in v4(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void report(int fd) {
    int ka = -1, idle = -1;
    socklen_t l = sizeof ka;
    syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_KEEPALIVE, &ka, &l);
    l = sizeof idle;
    syscall(SYS_getsockopt, fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &l);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    printf("KA=%d IDLE=%d\nconnected=%d\n", ka, idle, getpeername(fd, (struct sockaddr *)&ss, &sl) == 0);
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "";
    int port;
    if (!strcmp(m, "unspec")) {
        listener(AF_INET, &port);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr u = {.sa_family = AF_UNSPEC};
        connect(s, &u, sizeof u);
        struct sockaddr_in a = v4(port);
        connect(s, (struct sockaddr *)&a, sizeof a);
        report(s);
    } else if (!strcmp(m, "v6len24")) {
        listener(AF_INET6, &port);
        int s = socket(AF_INET6, SOCK_STREAM, 0);
        struct sockaddr_in6 a;
        memset(&a, 0, sizeof a);
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        a.sin6_addr = in6addr_loopback;
        if (connect(s, (struct sockaddr *)&a, 24)) perror("connect");
        report(s);
    } else if (!strcmp(m, "mmsg0")) {
        listener(AF_INET, &port);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = v4(port);
        struct mmsghdr mm;
        memset(&mm, 0, sizeof mm);
        mm.msg_hdr.msg_name = &a;
        mm.msg_hdr.msg_namelen = sizeof a;
        printf("rc=%d\n", sendmmsg(s, &mm, 0, MSG_FASTOPEN));
        report(s);
    } else if (!strcmp(m, "soerr1")) {
        listener(AF_INET, &port);
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = v4(port);
        connect(s, (struct sockaddr *)&a, sizeof a);
        struct pollfd p = {.fd = s, .events = POLLOUT};
        poll(&p, 1, 5000);
        unsigned char b[4] = {0, 7, 7, 7};
        socklen_t n = 1;
        printf("getsockopt=%d n=%u b0=%d\n", getsockopt(s, SOL_SOCKET, SO_ERROR, b, &n), n, b[0]);
        report(s);
    } else {
        fprintf(stderr, "unknown mode\n");
        return 2;
    }
    return 0;
}
