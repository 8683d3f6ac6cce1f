/* errno as main() finds it: what the loader and every constructor left. */
#include <errno.h>
#include <stdio.h>

int main(void) {
    printf("errno=%d\n", errno);
    return 0;
}
