/* Loads a plugin with dlopen and lets it connect to 127.0.0.1:PORT.
 *
 *   dl_main PORT PLUGIN deep|plain
 *
 * PLUGIN is passed to dlopen as given: a bare name is found through this
 * program's RUNPATH ($ORIGIN/plugins), which glibc takes from dlopen's
 * caller, so a preloaded dlopen that is not a pure trampoline breaks it.
 * Prints the plugin's report and "loaded ok".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int flags = RTLD_NOW | (strcmp(argv[3], "deep") == 0 ? RTLD_DEEPBIND : 0);
    void *h = dlopen(argv[2], flags);
    if (!h) {
        printf("dlopen failed: %s\n", dlerror());
        return 1;
    }
    printf("loaded ok\n");
    int (*run)(int) = (int (*)(int))dlsym(h, "plugin_run");
    fflush(stdout);
    return run(atoi(argv[1])) < 0;
}
