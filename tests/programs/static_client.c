/* A client built with `gcc -static`: no dynamic loader, so no preload can
 * reach it. Connects to 127.0.0.1:PORT, prints "connected LOCAL_PORT", then
 * for each line on stdin prints the options its socket has, as it reads
 * them itself:
 *   SO_KEEPALIVE=1 TCP_KEEPIDLE=17 TCP_KEEPINTVL=4 TCP_KEEPCNT=3 TCP_USER_TIMEOUT=0
 * Exits when stdin closes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int get(int fd, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len) != 0) return -1;
    return v;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        return 1;
    }
    struct sockaddr_in local;
    socklen_t len = sizeof local;
    getsockname(fd, (struct sockaddr *)&local, &len);
    printf("connected %d\n", ntohs(local.sin_port));
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        printf("SO_KEEPALIVE=%d TCP_KEEPIDLE=%d TCP_KEEPINTVL=%d TCP_KEEPCNT=%d TCP_USER_TIMEOUT=%d\n",
               get(fd, SOL_SOCKET, SO_KEEPALIVE), get(fd, IPPROTO_TCP, TCP_KEEPIDLE),
               get(fd, IPPROTO_TCP, TCP_KEEPINTVL), get(fd, IPPROTO_TCP, TCP_KEEPCNT),
               get(fd, IPPROTO_TCP, TCP_USER_TIMEOUT));
        fflush(stdout);
    }
    return 0;
}
