/* W4: peak memory of a small program that opens and connects one TCP socket
 * (so the hooks run), as the kernel accounts it.
 *   w4_rss
 * Prints: hwm_kb=N (VmHWM, the peak RSS of this image) anon_kb=N (RssAnon:
 *         private pages, e.g. a library's written data and the stack)
 *         stack_kb=N (resident pages of [stack]: the deepest stack use so
 *         far, e.g. large buffers in a constructor) SO_KEEPALIVE=K
 * (getrusage's ru_maxrss is not used: Linux carries it over from the image
 * before execve, e.g. the `env` that started this program.)
 */
#include "bench.h"

/* Rss of the [stack] mapping, from /proc/self/smaps (read after the other
 * measurements: the buffer is static, and touching it adds anonymous pages). */
static long stack_rss_kb(void) {
    static char buf[1 << 18];
    int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)n;
    close(fd);
    buf[len] = 0;
    char *stack = strstr(buf, "[stack]");
    char *rss = stack ? strstr(stack, "\nRss:") : NULL;
    return rss ? strtol(rss + 5, NULL, 10) : -1;
}

int main(void) {
    struct sockaddr_in addr;
    int lfd = raw_listener(&addr, 4);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) die("connect");
    int a = raw_accept(lfd), ka = -1;
    socklen_t l = sizeof ka;
    getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, &l);
    syscall(SYS_close, a);
    close(fd);
    long hwm = proc_status_kb("VmHWM"), anon = proc_status_kb("RssAnon"), stk = stack_rss_kb();
    printf("hwm_kb=%ld anon_kb=%ld stack_kb=%ld SO_KEEPALIVE=%d\n", hwm, anon, stk, ka);
    return 0;
}
