/* A multithreaded parent forks while its threads open sockets.
 *
 *   fork_storm THREADS FORKS IDLE INTVL CNT UTO
 * THREADS threads connect to a loopback listener in a loop (through the
 * hooks) while the main thread forks FORKS times; each child connects once
 * through the hooks, checks its socket's options and _exits. The parent
 * waits for each child for at most 10 s, then kills it and counts it hung.
 * Prints: forks=N hung=H bad_children=B thread_connects=T thread_configured=C thread_failed=F
 * Children exit 0 (connected and configured), 3 (not configured) or
 * 4 (socket or connect failed).
 */
#include "stress_common.h"

#include <sys/wait.h>
#include <time.h>

static struct sockaddr_in addr;
static struct expected want;
static volatile int stop;
static struct tally threads_total;

static void *churn(void *arg) {
    (void)arg;
    struct tally t = {0};
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) connect_checked(&addr, &want, &t);
    tally_add(&threads_total, &t);
    return NULL;
}

/* Only async-signal-safe calls between fork() and _exit(). */
static void child(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr)) _exit(4);
    int ok = configured(fd, &want);
    close_reset(fd);
    _exit(ok ? 0 : 3);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s THREADS FORKS IDLE INTVL CNT UTO\n", argv[0]);
        return 2;
    }
    int nthreads = atoi(argv[1]), forks = atoi(argv[2]);
    parse_expected(argv + 3, &want);
    int lfd = raw_listener(&addr);
    pthread_t acc = start_acceptor(&lfd);
    pthread_t *t = calloc((size_t)nthreads, sizeof *t);
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&t[i], NULL, churn, NULL)) die("pthread_create");
    int hung = 0, bad = 0;
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) child();
        double deadline = now() + 10.0;
        int st = 0;
        pid_t got;
        while ((got = waitpid(pid, &st, WNOHANG)) == 0 && now() < deadline) {
            struct timespec nap = {0, 200000};
            nanosleep(&nap, NULL);
        }
        if (got == 0) {
            hung++;
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        } else if (got != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            bad++;
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
    stop_acceptor(acc, lfd);
    printf("forks=%d hung=%d bad_children=%d thread_connects=%ld thread_configured=%ld thread_failed=%ld\n", forks,
           hung, bad, threads_total.connects, threads_total.configured, threads_total.failed);
    return 0;
}
