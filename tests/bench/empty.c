/* W3/W4 baseline: a preloaded library that does nothing at all, so that the
 * dynamic loader's own cost of one more library can be told apart from
 * anything keepalive-shim does. */
void ks_bench_empty(void) {}
