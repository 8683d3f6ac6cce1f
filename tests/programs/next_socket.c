/* A second preloaded library, after keepalive-shim in LD_PRELOAD: proves that
 * the shim calls the *next* socket() (dlsym(RTLD_NEXT)), not the kernel
 * directly, so it composes with other preload libraries. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <unistd.h>

int socket(int domain, int type, int protocol) {
    static int (*next)(int, int, int);
    if (!next) next = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
    static const char msg[] = "next-socket called\n";
    (void)!write(2, msg, sizeof msg - 1);
    return next(domain, type, protocol);
}
