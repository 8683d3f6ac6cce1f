/* The cost per connection under `keepalive-shim attach` (scripts/bench-attach.sh):
 * TCP socket() + connect() to a loopback listener + close(), with the
 * connecting side in a cgroup and the listening side outside it.
 *
 *   attach_connect CGROUP_PROCS MODE ITERATIONS WARMUP
 *
 * The listener is created first, in the cgroup the program starts in; then
 * the program moves itself into the cgroup whose cgroup.procs file is
 * CGROUP_PROCS. A socket's cgroup is fixed when it is created (accepted
 * sockets take their listener's), so only the connecting sockets belong to
 * the measured cgroup: one configured connection per iteration.
 *   MODE: plain | floor4 | floor5 (the program sets the options itself)
 * Prints: ns_per_op=N SO_KEEPALIVE=K TCP_KEEPCNT=C TCP_USER_TIMEOUT=U
 * (the options of the last socket, proof that the variant did its job).
 */
#include "bench.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s CGROUP_PROCS plain|floor5|floor4 ITERATIONS WARMUP\n", argv[0]);
        return 2;
    }
    int nopts = strcmp(argv[2], "floor5") == 0 ? 5 : strcmp(argv[2], "floor4") == 0 ? 4 : 0;
    if (nopts == 0 && strcmp(argv[2], "plain") != 0) {
        fprintf(stderr, "unknown mode %s\n", argv[2]);
        return 2;
    }
    long iters = atol(argv[3]), warm = atol(argv[4]);
    struct sockaddr_in addr;
    int lfd = raw_listener(&addr, 64);
    FILE *procs = fopen(argv[1], "w");
    if (!procs || fprintf(procs, "%d\n", (int)getpid()) < 0 || fclose(procs) != 0) die(argv[1]);
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
        syscall(SYS_close, a);
        close(fd);
    }
    blocks[nblocks - 1] = (double)(now_ns() - start) / BLOCK;
    printf("ns_per_op=%.1f SO_KEEPALIVE=%d TCP_KEEPCNT=%d TCP_USER_TIMEOUT=%d\n",
           median(blocks, (int)nblocks), ka, cnt, uto);
    return 0;
}
