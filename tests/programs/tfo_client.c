/* A TCP Fast Open client: it never calls connect(). Its first data goes out
 * with the SYN, through sendto() or sendmsg() with MSG_FASTOPEN, as TFO
 * clients do (curl --tcp-fastopen, Chromium's TFO path).
 *
 *     tfo_client sendto|sendmsg|sendmmsg PORT
 *
 * Sends "hello" to 127.0.0.1:PORT, waits (at most 5 s) for the server's
 * 2-byte reply, which proves the connection was made, then prints
 * `port=LOCAL_PORT SO_KEEPALIVE=.. TCP_KEEPIDLE=.. ...`, read with raw
 * getsockopt syscalls. Exit 0, or 2 with a message if a step fails. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "tfo_client: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int raw_get(int fd, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    if (syscall(SYS_getsockopt, fd, level, name, &v, &len) != 0) die("getsockopt");
    return v;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: tfo_client sendto|sendmsg|sendmmsg PORT\n");
        return 2;
    }
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons((unsigned short)atoi(argv[2]));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    char hello[] = "hello";
    ssize_t n;
    if (strcmp(argv[1], "sendto") == 0) {
        n = sendto(fd, hello, 5, MSG_FASTOPEN, (struct sockaddr *)&to, sizeof to);
    } else {
        struct iovec iov = {.iov_base = hello, .iov_len = 5};
        struct mmsghdr m;
        memset(&m, 0, sizeof m);
        m.msg_hdr.msg_name = &to;
        m.msg_hdr.msg_namelen = sizeof to;
        m.msg_hdr.msg_iov = &iov;
        m.msg_hdr.msg_iovlen = 1;
        if (strcmp(argv[1], "sendmsg") == 0) {
            n = sendmsg(fd, &m.msg_hdr, MSG_FASTOPEN);
        } else {
            n = sendmmsg(fd, &m, 1, MSG_FASTOPEN) == 1 ? (ssize_t)m.msg_len : -1;
        }
    }
    if (n != 5) die("send with MSG_FASTOPEN");

    struct timeval tv = {.tv_sec = 5};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) die("SO_RCVTIMEO");
    char reply[2];
    if (recv(fd, reply, sizeof reply, MSG_WAITALL) != 2) die("recv the reply");

    struct sockaddr_in local;
    socklen_t len = sizeof local;
    if (getsockname(fd, (struct sockaddr *)&local, &len) != 0) die("getsockname");
    printf("port=%d SO_KEEPALIVE=%d TCP_KEEPIDLE=%d TCP_KEEPINTVL=%d TCP_KEEPCNT=%d "
           "TCP_USER_TIMEOUT=%d\n",
           ntohs(local.sin_port), raw_get(fd, SOL_SOCKET, SO_KEEPALIVE),
           raw_get(fd, IPPROTO_TCP, TCP_KEEPIDLE), raw_get(fd, IPPROTO_TCP, TCP_KEEPINTVL),
           raw_get(fd, IPPROTO_TCP, TCP_KEEPCNT), raw_get(fd, IPPROTO_TCP, TCP_USER_TIMEOUT));
    fflush(stdout);
    if (close(fd) != 0) die("close");
    return 0;
}
