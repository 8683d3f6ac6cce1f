/* THREADS threads each make CONNECTS loopback connections through the
 * preloaded hooks (socket(), connect(), setsockopt(SO_LINGER), close() from
 * libc) and read back every socket's options from the kernel.
 *
 *   thread_storm THREADS CONNECTS IDLE INTVL CNT UTO
 * Prints: connects=N configured=C failed=F port=P
 * (failed: a socket() or connect() that returned an error).
 */
#include "stress_common.h"

static struct sockaddr_in addr;
static struct expected want;
static long per_thread;
static struct tally total;

static void *worker(void *arg) {
    (void)arg;
    struct tally t = {0};
    for (long i = 0; i < per_thread; i++) connect_checked(&addr, &want, &t);
    tally_add(&total, &t);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s THREADS CONNECTS IDLE INTVL CNT UTO\n", argv[0]);
        return 2;
    }
    int nthreads = atoi(argv[1]);
    per_thread = atol(argv[2]);
    parse_expected(argv + 3, &want);
    int lfd = raw_listener(&addr);
    pthread_t acc = start_acceptor(&lfd);
    pthread_t *t = calloc((size_t)nthreads, sizeof *t);
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&t[i], NULL, worker, NULL)) die("pthread_create");
    for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
    stop_acceptor(acc, lfd);
    printf("connects=%ld configured=%ld failed=%ld port=%d\n", total.connects, total.configured, total.failed,
           ntohs(addr.sin_port));
    return 0;
}
