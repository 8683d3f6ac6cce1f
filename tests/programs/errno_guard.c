/* errno after hooked calls, with every setsockopt failing.
 *
 * A seccomp filter makes setsockopt(2) fail with EACCES, so that the shim's
 * own option calls fail inside the hooks. The program then checks that a
 * successful socket() and connect() leave errno exactly as it set it, and
 * that a failing connect() reports the kernel's errno, not the shim's.
 * Prints one line per check: "name ok" or "name FAIL got=N want=N".
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failures;

static void expect(const char *name, int got, int want) {
    if (got == want) {
        printf("%s ok\n", name);
    } else {
        printf("%s FAIL got=%d want=%d\n", name, got, want);
        failures++;
    }
}

static void deny_setsockopt(void) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setsockopt, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EACCES & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("seccomp");
        exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s OPEN_PORT CLOSED_PORT\n", argv[0]);
        return 2;
    }
    struct sockaddr_in open_addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in closed_addr = open_addr;
    closed_addr.sin_port = htons(atoi(argv[2]));
    deny_setsockopt();

    /* Proof that the filter works: our own setsockopt fails. */
    int one = 1, probe = socket(AF_INET, SOCK_STREAM, 0);
    expect("filter_active", setsockopt(probe, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) == -1 && errno == EACCES, 1);
    close(probe);

    errno = 4242;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    expect("socket_returns_fd", fd >= 0, 1);
    expect("socket_keeps_errno", errno, 4242);

    errno = 4343;
    int rc = connect(fd, (struct sockaddr *)&open_addr, sizeof open_addr);
    expect("connect_returns_0", rc, 0);
    expect("connect_keeps_errno", errno, 4343);
    close(fd);

    /* A socket the socket() hook never saw: the shim applies options at connect(). */
    fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
    errno = 4444;
    rc = connect(fd, (struct sockaddr *)&open_addr, sizeof open_addr);
    expect("fallback_connect_returns_0", rc, 0);
    expect("fallback_connect_keeps_errno", errno, 4444);
    close(fd);

    fd = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    rc = connect(fd, (struct sockaddr *)&closed_addr, sizeof closed_addr);
    expect("refused_returns_-1", rc, -1);
    expect("refused_errno", errno, ECONNREFUSED);
    close(fd);

    errno = 4545;
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    expect("unix_keeps_errno", errno, 4545);
    close(fd);
    return failures ? 1 : 0;
}
