/* A plugin that opens its own TCP connection (as libcurl inside PHP's curl
 * extension does) and reports the kernel's keepalive options; built with
 * -DNO_SOCKETS it imports no socket function at all. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int plugin_run(int port) {
#ifdef NO_SOCKETS
    (void)port;
    printf("plugin: no sockets\n");
    return 0;
#else
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) return -1;
    int ka = 0, idle = 0;
    socklen_t l = sizeof ka;
    getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, &l);
    l = sizeof idle;
    getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &l);
    printf("plugin: SO_KEEPALIVE=%d TCP_KEEPIDLE=%d\n", ka, idle);
    return fd;
#endif
}
