/* W2: sockets the shim must leave alone cost nothing.
 *
 *   w2_socket udp|unix CYCLES [BLOCK]
 * Alternates, in blocks and in a shuffled order each cycle:
 *   libc: socket() + close()                   (through preloaded hooks)
 *   raw:  syscall(socket) + syscall(close)     (never hooked)
 * for UDP (AF_INET, SOCK_DGRAM) or AF_UNIX (SOCK_STREAM) sockets.
 * Prints the median ns per socket+close of each arm and the median of the
 * per-cycle differences libc-raw. Across processes, compare libc_ns of a
 * run without preload to that of a run with one.
 */
#include "bench.h"

static int domain, type;

static void one(int raw) {
    int fd = raw ? (int)syscall(SYS_socket, domain, type, 0) : socket(domain, type, 0);
    if (fd < 0) die("socket");
    if (raw)
        syscall(SYS_close, fd);
    else
        close(fd);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s udp|unix CYCLES [BLOCK]\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "udp") == 0) {
        domain = AF_INET;
        type = SOCK_DGRAM;
    } else if (strcmp(argv[1], "unix") == 0) {
        domain = AF_UNIX;
        type = SOCK_STREAM;
    } else {
        fprintf(stderr, "unknown kind %s\n", argv[1]);
        return 2;
    }
    int cycles = atoi(argv[2]);
    int block = argc > 3 ? atoi(argv[3]) : 200;
    double *t[2], *diff = calloc((size_t)cycles, sizeof(double));
    t[0] = calloc((size_t)cycles, sizeof(double));
    t[1] = calloc((size_t)cycles, sizeof(double));
    for (int i = 0; i < 5000; i++) one(i & 1);
    uint64_t r = 0x9E3779B97F4A7C15ull;
    for (int c = 0; c < cycles; c++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        int first = (int)(r >> 63);
        for (int k = 0; k < 2; k++) {
            int arm = k ^ first;
            uint64_t s = now_ns();
            for (int i = 0; i < block; i++) one(arm);
            t[arm][c] = (double)(now_ns() - s) / block;
        }
        diff[c] = t[0][c] - t[1][c];
    }
    printf("libc_ns=%.1f\nraw_ns=%.1f\nlibc_minus_raw_ns=%.1f\n", median(t[0], cycles),
           median(t[1], cycles), median(diff, cycles));
    return 0;
}
