/* The cost per connection under `keepalive-shim attach`, measured in pairs
 * (scripts/bench-attach.sh): two processes, A and B, each in its own
 * cgroup, take turns doing blocks of TCP socket() + connect() to a
 * loopback listener + close(). On a busy machine the speed of the loopback
 * path drifts by tens of percent over seconds; blocks taken back to back
 * see the same drift, so the ratio of each B block to the mean of the A
 * blocks around it is steady where per-process medians are not.
 *
 *   attach_pair CGROUP_PROCS_A MODE_A CGROUP_PROCS_B MODE_B BLOCKS WARMUP
 *
 * Each process creates its listener before moving itself into its cgroup
 * (writing its pid to CGROUP_PROCS_x): a socket's cgroup is fixed when it
 * is created and accepted sockets take their listener's, so only the
 * connecting sockets belong to the measured cgroup.
 *   MODE: plain | floor4 | floor5 (the program sets the options itself)
 * A block is 100 connects; WARMUP blocks each are not recorded.
 * Prints: a_ns=N b_ns=N ratio=R (medians: ns per connect of A and of B,
 * B block / mean of the A blocks before and after it), then, per side,
 * the last socket's SO_KEEPALIVE TCP_KEEPCNT TCP_USER_TIMEOUT:
 * a_opts=K,C,U b_opts=K,C,U.
 */
#include "bench.h"

#include <sys/wait.h>

enum { BLOCK = 100 };

static int mode_options(const char *mode) {
    if (strcmp(mode, "floor5") == 0) return 5;
    if (strcmp(mode, "floor4") == 0) return 4;
    if (strcmp(mode, "plain") == 0) return 0;
    fprintf(stderr, "unknown mode %s\n", mode);
    exit(2);
}

static void join_cgroup(const char *procs) {
    FILE *f = fopen(procs, "w");
    if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) die(procs);
}

/* One block of connects; ns per connect. `opts` gets the last socket's. */
static double block(int lfd, const struct sockaddr_in *addr, int nopts, int opts[3]) {
    uint64_t t = now_ns();
    for (int i = 0; i < BLOCK; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        if (nopts) own_options(fd, nopts, 0);
        if (connect(fd, (const struct sockaddr *)addr, sizeof *addr)) die("connect");
        int a = raw_accept(lfd);
        if (i == BLOCK - 1) {
            static const int which[3][2] = {
                {SOL_SOCKET, SO_KEEPALIVE}, {IPPROTO_TCP, TCP_KEEPCNT}, {IPPROTO_TCP, TCP_USER_TIMEOUT}};
            for (int k = 0; k < 3; k++) {
                socklen_t l = sizeof opts[k];
                getsockopt(fd, which[k][0], which[k][1], &opts[k], &l);
            }
        }
        syscall(SYS_close, a);
        close(fd);
    }
    return (double)(now_ns() - t) / BLOCK;
}

static void xwrite(int fd, const void *buf, size_t n) {
    if (write(fd, buf, n) != (ssize_t)n) die("pipe write");
}

static void xread(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0) die("pipe read");
        got += (size_t)r;
    }
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s PROCS_A MODE_A PROCS_B MODE_B BLOCKS WARMUP\n", argv[0]);
        return 2;
    }
    int na = mode_options(argv[2]), nb = mode_options(argv[4]);
    int blocks = atoi(argv[5]), warm = atoi(argv[6]);
    if (blocks < 2 || warm < 0) return 2;
    int to_b[2], to_a[2];
    if (pipe(to_b) || pipe(to_a)) die("pipe");
    struct sockaddr_in addr;
    int lfd = raw_listener(&addr, 64);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) { /* B: waits for its turn, runs a block, hands the turn back */
        syscall(SYS_close, lfd);
        lfd = raw_listener(&addr, 64);
        join_cgroup(argv[3]);
        int opts[3] = {-1, -1, -1};
        for (int i = -warm; i < blocks; i++) {
            char token;
            xread(to_b[0], &token, 1);
            double ns = block(lfd, &addr, nb, opts);
            xwrite(to_a[1], &ns, sizeof ns);
        }
        xwrite(to_a[1], opts, sizeof opts);
        _exit(0);
    }
    join_cgroup(argv[1]);
    double *a = calloc((size_t)blocks + 1, sizeof *a), *b = calloc((size_t)blocks, sizeof *b);
    double *ratio = calloc((size_t)blocks, sizeof *ratio);
    int opts_a[3] = {-1, -1, -1}, opts_b[3];
    /* A, B, A, B, ..., A: every B block has an A block on each side. */
    for (int i = -warm; i <= blocks; i++) {
        double ns = block(lfd, &addr, na, opts_a);
        if (i >= 0) a[i] = ns;
        if (i == blocks) break;
        xwrite(to_b[1], "t", 1);
        xread(to_a[0], &ns, sizeof ns);
        if (i >= 0) b[i] = ns;
    }
    xread(to_a[0], opts_b, sizeof opts_b);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) die("child");
    for (int i = 0; i < blocks; i++) ratio[i] = b[i] / ((a[i] + a[i + 1]) / 2);
    double r = median(ratio, blocks), mb = median(b, blocks), ma = median(a, blocks + 1);
    printf("a_ns=%.1f b_ns=%.1f ratio=%.4f a_opts=%d,%d,%d b_opts=%d,%d,%d\n", ma, mb, r, opts_a[0], opts_a[1],
           opts_a[2], opts_b[0], opts_b[1], opts_b[2]);
    return 0;
}
