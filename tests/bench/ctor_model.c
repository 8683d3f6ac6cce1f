/* W3 attribution: a preloaded C library that does nothing but imitate, at
 * load, selected traits of keepalive-shim's start-up, so that their cost can
 * be measured one by one against the empty library (scripts/bench.sh builds
 * it several times with different -D options and link flags):
 *   -DSTACK_KIB=N        the constructor zero-fills N KiB of stack (as large
 *                        buffers in a constructor do, page by page)
 *   -DOPEN_PATH="..."    the constructor opens (and closes) this path, and
 *                        fstat()s fd 2
 *   NEEDED libraries are added by the link command (e.g. -l:libdl.so.2).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((constructor)) static void ks_model_init(void) {
#if defined(STACK_KIB) && STACK_KIB > 0
    volatile char buf[STACK_KIB * 1024];
    memset((char *)buf, 0, sizeof buf);
    buf[0] = buf[sizeof buf - 1];
#endif
#ifdef OPEN_PATH
    int fd = open(OPEN_PATH, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) close(fd);
    struct stat st;
    fstat(2, &st);
#endif
}
