/* A client that never writes to stderr: connects to 127.0.0.1:PORT, then
 * reports on stdout what a program could notice of the library's logging.
 *
 *   quiet_client PORT [own-sigpipe]
 *
 * With `own-sigpipe` it first blocks SIGPIPE and raises one for itself, so
 * that it is pending: the library must not take it away. It then checks
 * that its signal mask, its pending signals and errno are unchanged by the
 * hooked calls, and prints "mask ok" / "pending ok" / "errno ok" (or FAIL).
 * Exit status 0 unless a check failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int port = atoi(argv[1]);
    int own = argc > 2 && strcmp(argv[2], "own-sigpipe") == 0;
    sigset_t before, after, pend_before, pend_after;
    if (own) {
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        sigprocmask(SIG_BLOCK, &pipe, NULL);
        raise(SIGPIPE);
    }
    sigprocmask(SIG_BLOCK, NULL, &before);
    sigpending(&pend_before);

    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int failures = 0;
    for (int i = 0; i < 3; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        errno = 4242;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            printf("connect failed: %s\n", strerror(errno));
            return 2;
        }
        if (errno != 4242) {
            printf("errno FAIL %d\n", errno);
            failures++;
        }
        close(fd);
    }
    sigprocmask(SIG_BLOCK, NULL, &after);
    sigpending(&pend_after);
    int mask_same = 1, pending_same = 1;
    for (int s = 1; s < NSIG; s++) {
        if (sigismember(&before, s) != sigismember(&after, s)) mask_same = 0;
        if (sigismember(&pend_before, s) != sigismember(&pend_after, s)) pending_same = 0;
    }
    printf("mask %s\n", mask_same ? "ok" : "FAIL");
    printf("pending %s\n", pending_same ? "ok" : "FAIL");
    if (own) printf("own-sigpipe %s\n", sigismember(&pend_after, SIGPIPE) ? "ok" : "FAIL");
    if (!failures) printf("errno ok\n");
    failures += !mask_same + !pending_same + (own && !sigismember(&pend_after, SIGPIPE));
    return failures ? 1 : 0;
}
