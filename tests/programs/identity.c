/* A descriptor number that changes identity without close(): the old socket
 * on the number goes away through a call the close() hook never sees, and a
 * TCP socket made by a raw syscall (as code that bypasses libc does) takes
 * its number. That socket is then connected through libc's connect().
 *
 *     identity MODE OLD MAIN_PORT OTHER_PORT
 *
 * MODE: how the old socket goes away
 *   close_range  close_range(old, ~0U, 0), as glibc 2.34+ programs and
 *                OpenSSH do; the raw socket then gets the lowest free number
 *   closefrom    closefrom(old)
 *   dup2, dup3   the raw socket is made elsewhere and dup2()/dup3()'d onto
 *                the old number, which closes the old socket implicitly
 *   fclose       fclose() of an fdopen() stream over the old socket: libc
 *                closes the descriptor internally
 * OLD: what the old socket was, made and connected through libc to
 *      127.0.0.1:OTHER_PORT
 *   udp          a connected UDP socket
 *   tcp          a TCP socket (the test decides with KEEPALIVE_SHIM_EXCLUDE
 *                whether the shim configured it or left it alone)
 *
 * Prints `fd=N port=LOCAL_PORT SO_KEEPALIVE=.. TCP_KEEPIDLE=.. ...`, the
 * new socket's options read with raw getsockopt syscalls, so nothing of the
 * library is between the kernel and what is printed. Exit 0, or 2 with a
 * message if a step fails. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "identity: %s: %s\n", what, strerror(errno));
    exit(2);
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

#ifndef __GLIBC__
/* musl has neither wrapper: what they do, as musl programs do it. */
static int close_range(unsigned first, unsigned last, int flags) {
    return (int)syscall(SYS_close_range, first, last, flags);
}
static void closefrom(int lowfd) { close_range((unsigned)lowfd, ~0U, 0); }
#endif

static int raw_tcp_socket(void) {
    return (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
}

static int raw_get(int fd, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    if (syscall(SYS_getsockopt, fd, level, name, &v, &len) != 0) die("getsockopt");
    return v;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: identity MODE udp|tcp MAIN_PORT OTHER_PORT\n");
        return 2;
    }
    const char *mode = argv[1], *old_kind = argv[2];
    struct sockaddr_in main_addr = loopback(atoi(argv[3]));
    struct sockaddr_in other_addr = loopback(atoi(argv[4]));

    int old = socket(AF_INET, strcmp(old_kind, "udp") == 0 ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (old < 0) die("socket");
    if (connect(old, (struct sockaddr *)&other_addr, sizeof other_addr) != 0) die("connect old");

    int fd;
    if (strcmp(mode, "close_range") == 0) {
        if (close_range((unsigned)old, ~0U, 0) != 0) die("close_range");
        fd = raw_tcp_socket();
    } else if (strcmp(mode, "closefrom") == 0) {
        closefrom(old);
        fd = raw_tcp_socket();
    } else if (strcmp(mode, "dup2") == 0 || strcmp(mode, "dup3") == 0) {
        int s = raw_tcp_socket();
        if (s < 0) die("raw socket");
        int r = mode[3] == '2' ? dup2(s, old) : dup3(s, old, O_CLOEXEC);
        if (r != old) die("dup onto the old number");
        if (close(s) != 0) die("close");
        fd = old;
    } else if (strcmp(mode, "fclose") == 0) {
        FILE *f = fdopen(old, "r+");
        if (!f) die("fdopen");
        if (fclose(f) != 0) die("fclose");
        fd = raw_tcp_socket();
    } else {
        fprintf(stderr, "identity: unknown mode %s\n", mode);
        return 2;
    }
    if (fd < 0) die("raw socket");
    if (fd != old) {
        fprintf(stderr, "identity: the new socket got fd %d, not the old number %d\n", fd, old);
        return 2;
    }
    if (connect(fd, (struct sockaddr *)&main_addr, sizeof main_addr) != 0) die("connect");

    struct sockaddr_in local;
    socklen_t len = sizeof local;
    if (getsockname(fd, (struct sockaddr *)&local, &len) != 0) die("getsockname");
    printf("fd=%d port=%d SO_KEEPALIVE=%d TCP_KEEPIDLE=%d TCP_KEEPINTVL=%d TCP_KEEPCNT=%d "
           "TCP_USER_TIMEOUT=%d\n",
           fd, ntohs(local.sin_port), raw_get(fd, SOL_SOCKET, SO_KEEPALIVE),
           raw_get(fd, IPPROTO_TCP, TCP_KEEPIDLE), raw_get(fd, IPPROTO_TCP, TCP_KEEPINTVL),
           raw_get(fd, IPPROTO_TCP, TCP_KEEPCNT), raw_get(fd, IPPROTO_TCP, TCP_USER_TIMEOUT));
    fflush(stdout);
    if (close(fd) != 0) die("close");
    return 0;
}
