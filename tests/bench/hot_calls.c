/* The cost of the hooks on calls every program makes, whether or not they
 * concern the shim: getsockopt(SO_TYPE), sendto() and sendmsg() without
 * MSG_FASTOPEN (on a UNIX datagram pair), each against the same work done
 * with raw syscall()s in alternating blocks of one process, so that drift
 * cancels; and dlopen() of a library already loaded (no syscall to compare
 * with: the absolute time).
 *
 *   hot_calls BLOCKS CALLS_PER_BLOCK
 *
 * Prints "name libc_minus_raw_ns" (median over block pairs) and
 * "dlopen ns_per_call". Run with and without the library preloaded: the
 * difference of the two runs is the hook's own cost.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int pair[2], tcp;
static char byte = 'x', sink[16];
static struct iovec iov = {&byte, 1};
static struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

static void one(int which, int raw) {
    int v;
    socklen_t l = sizeof v;
    switch (which) {
    case 0:
        if (raw) syscall(SYS_getsockopt, tcp, SOL_SOCKET, SO_TYPE, &v, &l);
        else getsockopt(tcp, SOL_SOCKET, SO_TYPE, &v, &l);
        break;
    case 1:
        if (raw) syscall(SYS_sendto, pair[0], &byte, 1, 0, NULL, 0);
        else sendto(pair[0], &byte, 1, 0, NULL, 0);
        syscall(SYS_recvfrom, pair[1], sink, sizeof sink, 0, NULL, NULL);
        break;
    default:
        if (raw) syscall(SYS_sendmsg, pair[0], &msg, 0);
        else sendmsg(pair[0], &msg, 0);
        syscall(SYS_recvfrom, pair[1], sink, sizeof sink, 0, NULL, NULL);
        break;
    }
}

int main(int argc, char **argv) {
    int blocks = argc > 1 ? atoi(argv[1]) : 41, calls = argc > 2 ? atoi(argv[2]) : 5000;
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, pair)) return 2;
    tcp = socket(AF_INET, SOCK_STREAM, 0);
    double *d = calloc(blocks, sizeof *d);
    const char *names[] = {"getsockopt", "sendto", "sendmsg"};
    for (int which = 0; which < 3; which++) {
        for (int b = 0; b < blocks; b++) {
            double t[2];
            for (int raw = 0; raw <= 1; raw++) {
                int order = b % 2 ? !raw : raw; /* alternate which goes first */
                double start = now_ns();
                for (int i = 0; i < calls; i++) one(which, order);
                t[order] = (now_ns() - start) / calls;
            }
            d[b] = t[0] - t[1];
        }
        qsort(d, blocks, sizeof *d, cmp);
        printf("%s %.1f\n", names[which], d[blocks / 2]);
    }
    for (int b = 0; b < blocks; b++) {
        double start = now_ns();
        for (int i = 0; i < calls; i++) dlclose(dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD));
        d[b] = (now_ns() - start) / calls;
    }
    qsort(d, blocks, sizeof *d, cmp);
    printf("dlopen %.1f\n", d[blocks / 2]);
    return 0;
}
