/* W1 inside one process: the hook's own cost, in ns per connect.
 *
 * Run under a preloaded library. Three arms alternate in blocks, in a
 * shuffled order each cycle, so that drift and neighbours hit them alike:
 *   hook: libc socket() + connect() + close()   (through the preloaded hooks)
 *   raw:  syscall(socket) + the same NOPTS setsockopt syscalls + syscall(connect)
 *         + syscall(close) (what the hook has to do, with no hook: the floor)
 *   bare: syscall(socket) + syscall(connect) + syscall(close) (no options)
 * each with the same accept() and close() of the other end (raw syscalls).
 *
 *   w1_inproc NOPTS CYCLES [BLOCK]
 * Prints medians of the per-block ns/connect of each arm, and the median of
 * the per-cycle differences hook-raw (the hook's overhead beyond its syscalls).
 */
#include "bench.h"

enum { HOOK, RAW, BARE, ARMS };
static const char *names[ARMS] = {"hook", "raw", "bare"};

static int lfd, nopts;
static struct sockaddr_in addr;

static void one(int arm) {
    int fd;
    if (arm == HOOK) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) die("connect");
    } else {
        fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("raw socket");
        if (arm == RAW) own_options(fd, nopts, 1);
        if (syscall(SYS_connect, fd, &addr, sizeof addr)) die("raw connect");
    }
    int a = raw_accept(lfd);
    syscall(SYS_close, a);
    if (arm == HOOK)
        close(fd);
    else
        syscall(SYS_close, fd);
}

static uint64_t rng = 88172645463325252ull;
static unsigned next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 32);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s NOPTS CYCLES [BLOCK]\n", argv[0]);
        return 2;
    }
    nopts = atoi(argv[1]);
    int cycles = atoi(argv[2]);
    int block = argc > 3 ? atoi(argv[3]) : 50;
    lfd = raw_listener(&addr, 64);

    /* Did the preloaded library configure a hooked socket? */
    int probe = socket(AF_INET, SOCK_STREAM, 0), ka = 0, n = 0;
    socklen_t l = sizeof ka;
    getsockopt(probe, SOL_SOCKET, SO_KEEPALIVE, &ka, &l);
    int kinds[] = {TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_USER_TIMEOUT};
    int dflt[] = {7200, 75, 9, 0};
    for (int i = 0; i < 4; i++) {
        int v = 0;
        l = sizeof v;
        getsockopt(probe, IPPROTO_TCP, kinds[i], &v, &l);
        n += v != dflt[i];
    }
    close(probe);

    for (int i = 0; i < 2000; i++) one(i % ARMS); /* warm-up */
    double *t[ARMS], *diff = calloc((size_t)cycles, sizeof(double));
    for (int a = 0; a < ARMS; a++) t[a] = calloc((size_t)cycles, sizeof(double));
    for (int c = 0; c < cycles; c++) {
        int order[ARMS] = {HOOK, RAW, BARE};
        for (int i = ARMS - 1; i > 0; i--) {
            int j = (int)(next_rand() % (unsigned)(i + 1)), x = order[i];
            order[i] = order[j];
            order[j] = x;
        }
        for (int k = 0; k < ARMS; k++) {
            int arm = order[k];
            uint64_t s = now_ns();
            for (int i = 0; i < block; i++) one(arm);
            t[arm][c] = (double)(now_ns() - s) / block;
        }
        diff[c] = t[HOOK][c] - t[RAW][c];
    }
    printf("options_set_by_library=%d\n", ka + n);
    for (int a = 0; a < ARMS; a++) printf("%s_ns=%.1f\n", names[a], median(t[a], cycles));
    printf("hook_minus_raw_ns=%.1f\n", median(diff, cycles));
    return 0;
}
