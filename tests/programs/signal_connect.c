/* connect() from a signal handler while the main thread is inside the hooks.
 *
 *   signal_connect SECONDS INTERVAL_US IDLE INTVL CNT UTO
 * An interval timer sends SIGALRM every INTERVAL_US microseconds; the
 * handler opens, connects and checks a socket (through the hooks: socket(),
 * connect(), setsockopt(), close() are async-signal-safe). Meanwhile the main
 * thread loops in socket(), connect(), setsockopt() (one of the shim's own
 * options, to the same value) through the hooks for SECONDS seconds. A
 * watchdog thread exits with status 3 ("deadlock") if the main thread makes
 * no progress for 5 s.
 * Prints: main=N main_configured=M handler=H handler_configured=K failed=F calls=C
 * (calls: connect() calls made, successful or not: the shim logs one line
 * for each at info).
 */
#include "stress_common.h"

#include <sys/time.h>
#include <time.h>

static struct sockaddr_in addr;
static struct expected want;
static volatile long progress;
static volatile long handler_runs, handler_ok, failed;
static volatile long calls; /* connect() calls, from main and the handler */

static void on_alarm(int sig) {
    (void)sig;
    int saved = errno;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0) {
        __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
            handler_runs++;
            handler_ok += configured(fd, &want);
            close_reset(fd);
        } else {
            failed++;
            close(fd);
        }
    } else {
        failed++;
    }
    errno = saved;
}

static void *watchdog(void *arg) {
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    long last = -1;
    for (;;) {
        sleep(5);
        long now = __atomic_load_n(&progress, __ATOMIC_RELAXED);
        if (now == last) {
            static const char msg[] = "deadlock: no progress for 5 s\n";
            if (write(2, msg, sizeof msg - 1)) {}
            _exit(3);
        }
        last = now;
    }
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s SECONDS INTERVAL_US IDLE INTVL CNT UTO\n", argv[0]);
        return 2;
    }
    double seconds = atof(argv[1]);
    long interval = atol(argv[2]);
    parse_expected(argv + 3, &want);
    int lfd = raw_listener(&addr);
    pthread_t acc = start_acceptor(&lfd), wd;
    if (pthread_create(&wd, NULL, watchdog, NULL)) die("pthread_create");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL)) die("sigaction");
    struct itimerval it = {{0, interval}, {0, interval}};
    if (setitimer(ITIMER_REAL, &it, NULL)) die("setitimer");
    long main_runs = 0, main_ok = 0;
    double end = now() + seconds;
    while (now() < end) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            if (errno != EINTR) failed++;
            continue;
        }
        __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
            if (errno != EINTR) failed++;
            close(fd);
            continue;
        }
        int v = want.idle;
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v);
        main_runs++;
        main_ok += configured(fd, &want);
        close_reset(fd);
        __atomic_add_fetch(&progress, 1, __ATOMIC_RELAXED);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    stop_acceptor(acc, lfd);
    printf("main=%ld main_configured=%ld handler=%ld handler_configured=%ld failed=%ld calls=%ld\n", main_runs,
           main_ok, handler_runs, handler_ok, failed, calls);
    return 0;
}
