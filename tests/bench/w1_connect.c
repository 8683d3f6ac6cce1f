/* W1, one variant per process: TCP socket() + connect() to a loopback
 * listener + close(), through the libc functions (which a preloaded library
 * hooks). The accepted side is closed first with a RST (see raw_listener),
 * so no TIME_WAIT piles up.
 *
 *   w1_connect MODE ITERATIONS WARMUP
 * The time is measured in blocks of 100 connects; the result is the median
 * block (robust against a neighbour stealing the CPU for a moment).
 *   MODE: plain  - no options (run it bare, or under a preload)
 *         floor5 - the program sets the shim's 5 options itself (the floor)
 *         floor4 - the same without TCP_USER_TIMEOUT (libkeepalive's 4)
 * Prints: ns_per_op=N SO_KEEPALIVE=K TCP_KEEPCNT=C TCP_USER_TIMEOUT=U
 * (the options of the last socket, to prove the variant did its job).
 */
#include "bench.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s plain|floor5|floor4 ITERATIONS WARMUP\n", argv[0]);
        return 2;
    }
    int nopts = strcmp(argv[1], "floor5") == 0 ? 5 : strcmp(argv[1], "floor4") == 0 ? 4 : 0;
    if (nopts == 0 && strcmp(argv[1], "plain") != 0) {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    long iters = atol(argv[2]), warm = atol(argv[3]);
    struct sockaddr_in addr;
    int lfd = raw_listener(&addr, 64);
    int ka = -1, cnt = -1, uto = -1;
    enum { BLOCK = 100 };
    long nblocks = iters / BLOCK;
    if (nblocks < 1) nblocks = 1;
    iters = nblocks * BLOCK;
    double *blocks = calloc((size_t)nblocks, sizeof *blocks);
    uint64_t start = 0;
    for (long i = -warm; i < iters; i++) {
        if (i >= 0 && i % BLOCK == 0) {
            uint64_t t = now_ns();
            if (i > 0) blocks[i / BLOCK - 1] = (double)(t - start) / BLOCK;
            start = t;
        }
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        if (nopts) own_options(fd, nopts, 0);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) die("connect");
        int a = raw_accept(lfd);
        if (i == iters - 1) {
            socklen_t l = sizeof ka;
            getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, &l);
            l = sizeof cnt;
            getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, &l);
            l = sizeof uto;
            getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, &l);
        }
        syscall(SYS_close, a); /* the harness's end */
        close(fd);             /* the workload's: through a close() hook, if any */
    }
    blocks[nblocks - 1] = (double)(now_ns() - start) / BLOCK;
    double ns = median(blocks, (int)nblocks);
    printf("ns_per_op=%.1f SO_KEEPALIVE=%d TCP_KEEPCNT=%d TCP_USER_TIMEOUT=%d\n", ns, ka, cnt, uto);
    return 0;
}
