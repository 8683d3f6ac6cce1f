/* A TCP client and server in one process, in plain C for any libc and
 * architecture: listens on 127.0.0.1 (an ephemeral port), connects to
 * itself, accepts, and prints the kernel's keepalive options of the
 * connecting, listening and accepted sockets, one line each:
 *   connect SO_KEEPALIVE=1 TCP_KEEPIDLE=7 TCP_KEEPINTVL=3 TCP_KEEPCNT=4 TCP_USER_TIMEOUT=0
 * Exit status 0, or 1 with a message on stderr if a call fails. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int get(int fd, int level, int name) {
    int value = -1;
    socklen_t len = sizeof value;
    if (getsockopt(fd, level, name, &value, &len) != 0) return -1;
    return value;
}

static void show(const char *what, int fd) {
    printf("%s SO_KEEPALIVE=%d TCP_KEEPIDLE=%d TCP_KEEPINTVL=%d TCP_KEEPCNT=%d TCP_USER_TIMEOUT=%d\n",
           what, get(fd, SOL_SOCKET, SO_KEEPALIVE), get(fd, IPPROTO_TCP, TCP_KEEPIDLE),
           get(fd, IPPROTO_TCP, TCP_KEEPINTVL), get(fd, IPPROTO_TCP, TCP_KEEPCNT),
           get(fd, IPPROTO_TCP, TCP_USER_TIMEOUT));
}

static int fail(const char *call) {
    perror(call);
    return 1;
}

int main(void) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;

    int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (server < 0) return fail("socket");
    if (bind(server, (struct sockaddr *)&addr, sizeof addr) != 0) return fail("bind");
    if (listen(server, 1) != 0) return fail("listen");
    if (getsockname(server, (struct sockaddr *)&addr, &len) != 0) return fail("getsockname");

    int client = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (client < 0) return fail("socket");
    if (connect(client, (struct sockaddr *)&addr, sizeof addr) != 0) return fail("connect");
    int accepted = accept(server, NULL, NULL);
    if (accepted < 0) return fail("accept");

    show("connect", client);
    show("listen", server);
    show("accept", accepted);
    fflush(stdout);
    close(accepted);
    close(client);
    close(server);
    return 0;
}
