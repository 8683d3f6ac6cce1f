/* W3: process start. posix_spawn("/bin/true") and wait, in a loop.
 *
 *   w3_spawn ROUNDS BLOCK NAME ENV [NAME ENV ...]
 * ENV is a space-separated list of NAME=VALUE entries given to the child on
 * top of PATH=/usr/bin:/bin (e.g. "LD_PRELOAD=/path/lib.so"; "" for none).
 * This program itself preloads nothing. Each round runs BLOCK spawns of every
 * variant, in a rotated order, so that all variants share the same moment.
 * Prints per variant: the median over rounds of the us per spawn, the median
 * over rounds of the ratio to the first variant in the same round, and the
 * child's minor page faults (from wait4's rusage; the same in every run).
 */
#include "bench.h"
#include <spawn.h>
#include <sys/wait.h>

enum { MAXV = 12, MAXE = 16 };

int main(int argc, char **argv) {
    if (argc < 5 || (argc - 3) % 2) {
        fprintf(stderr, "usage: %s ROUNDS BLOCK NAME ENV [NAME ENV ...]\n", argv[0]);
        return 2;
    }
    int rounds = atoi(argv[1]), block = atoi(argv[2]), nv = (argc - 3) / 2;
    if (nv > MAXV) return 2;
    char *envs[MAXV][MAXE + 2];
    const char *names[MAXV];
    for (int v = 0; v < nv; v++) {
        names[v] = argv[3 + 2 * v];
        int n = 0;
        envs[v][n++] = "PATH=/usr/bin:/bin";
        char *spec = strdup(argv[4 + 2 * v]);
        for (char *tok = strtok(spec, " "); tok && n < MAXE; tok = strtok(NULL, " ")) envs[v][n++] = tok;
        envs[v][n] = NULL;
    }
    char *child_argv[] = {"true", NULL};
    double *t[MAXV], *ratio[MAXV];
    long faults[MAXV] = {0};
    for (int v = 0; v < nv; v++) {
        t[v] = calloc((size_t)rounds, sizeof(double));
        ratio[v] = calloc((size_t)rounds, sizeof(double));
    }
    for (int r = -1; r < rounds; r++) { /* round -1: warm-up, not recorded */
        for (int k = 0; k < nv; k++) {
            int v = (k + (r < 0 ? 0 : r)) % nv;
            uint64_t s = now_ns();
            for (int i = 0; i < block; i++) {
                pid_t pid;
                int st;
                struct rusage ru;
                if (posix_spawn(&pid, "/bin/true", NULL, NULL, child_argv, envs[v])) die("posix_spawn");
                if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
                    fprintf(stderr, "variant %s: /bin/true failed (status %d)\n", names[v], st);
                    return 1;
                }
                faults[v] = ru.ru_minflt;
            }
            if (r >= 0) t[v][r] = (double)(now_ns() - s) / block / 1000.0;
        }
        if (r >= 0)
            for (int v = 0; v < nv; v++) ratio[v][r] = t[v][r] / t[0][r];
    }
    for (int v = 0; v < nv; v++)
        printf("%s us_per_spawn=%.1f paired_ratio=%.4f minor_faults=%ld\n", names[v],
               median(t[v], rounds), median(ratio[v], rounds), faults[v]);
    return 0;
}
