/* W5: N simultaneous loopback TCP connections held open by one process.
 *
 *   w5_hold N plain|floor5
 * The process opens N connections (libc socket() + connect(), so a preloaded
 * shim sees every one; floor5: the program sets the 5 options itself) and
 * keeps them all open. A forked child accepts and holds the other ends, so
 * the measured process holds N descriptors (RLIMIT_NOFILE is raised to fit).
 * At each quarter of N it prints its resident memory (VmRSS) and the memory
 * added per connection since the start, measured after one warm-up
 * connection and with the descriptor array already allocated and touched:
 *   conns=N rss_kb=R anon_kb=A heap_bytes=H per_conn_bytes=B anon_per_conn_bytes=B2 us_per_conn=T
 * (RssAnon is the heap, stack and .bss: where any per-connection state of a
 * preloaded library would live; VmRSS also counts pages of mapped files;
 * heap_bytes is malloc's bytes in use, from mallinfo2.)
 * At the end the child closes its ends first (RST, see raw_listener), then
 * the parent closes its own: no TIME_WAIT is left behind.
 */
#include "bench.h"
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>

static void server(int lfd, long n, int ctl) {
    int *fds = calloc((size_t)n + 1, sizeof(int));
    for (long i = 0; i <= n; i++) { /* the warm-up connection, then N */
        fds[i] = raw_accept(lfd);
        if (i == 0) close(fds[0]);
    }
    char c;
    if (read(ctl, &c, 1) != 1) _exit(1); /* the parent is done measuring */
    for (long i = 1; i <= n; i++) close(fds[i]);
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s N plain|floor5\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    int nopts = strcmp(argv[2], "floor5") == 0 ? 5 : 0;
    raise_nofile((rlim_t)(n + 64));
    struct sockaddr_in addr;
    int lfd = raw_listener(&addr, 4096);
    int ctl[2];
    if (pipe(ctl)) die("pipe");
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        close(ctl[1]);
        server(lfd, n, ctl[0]);
    }
    close(ctl[0]);
    close(lfd);
    int *fds = calloc((size_t)n, sizeof(int));
    memset(fds, 0xff, (size_t)n * sizeof(int)); /* touch it now */
    { /* warm-up: every code path runs once before the baseline */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("warm-up socket");
        if (nopts) own_options(fd, nopts, 0);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) die("warm-up connect");
        close(fd);
    }
    /* stdio's first formatted output allocates (~300 KB here): before the baseline. */
    printf("conns=0 per_conn_bytes=%.1f us_per_conn=%.2f\n", 0.0, 0.0);
    fflush(stdout);
    long base = proc_status_kb("VmRSS"), base_anon = proc_status_kb("RssAnon");
    printf("conns=0 rss_kb=%ld anon_kb=%ld heap_bytes=%zu\n", base, base_anon, mallinfo2().uordblks);
    uint64_t start = now_ns();
    for (long i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        if (nopts) own_options(fd, nopts, 0);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) die("connect");
        fds[i] = fd;
        if ((i + 1) % (n / 4 ? n / 4 : 1) == 0 || i + 1 == n) {
            long rss = proc_status_kb("VmRSS"), anon = proc_status_kb("RssAnon");
            printf("conns=%ld rss_kb=%ld anon_kb=%ld heap_bytes=%zu per_conn_bytes=%.1f "
                   "anon_per_conn_bytes=%.1f us_per_conn=%.2f\n", i + 1, rss, anon, mallinfo2().uordblks,
                   (double)(rss - base) * 1024.0 / (double)(i + 1),
                   (double)(anon - base_anon) * 1024.0 / (double)(i + 1),
                   (double)(now_ns() - start) / 1000.0 / (double)(i + 1));
        }
    }
    int ka = -1;
    socklen_t l = sizeof ka;
    getsockopt(fds[n - 1], SOL_SOCKET, SO_KEEPALIVE, &ka, &l);
    printf("last_SO_KEEPALIVE=%d\n", ka);
    fflush(stdout);
    if (write(ctl[1], "x", 1) != 1) die("write");
    int st;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, "bench: the accepting child failed\n");
        return 1;
    }
    for (long i = 0; i < n; i++) close(fds[i]);
    return 0;
}
