/* Fault injection for scripts/test-sanitizers.sh: LD_PRELOADed, malloc refuses any single
 * request above MBVR_FAIL_MALLOC_ABOVE bytes (returns NULL, as a full machine would), so
 * that the addon's out-of-memory path can be tested without exhausting memory. calloc
 * (JS ArrayBuffers) and mmap (V8's heap) are untouched. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdlib.h>

extern void* __libc_malloc(size_t size);

void* malloc(size_t size) {
  static size_t limit = 0;
  if (limit == 0) {
    const char* env = getenv("MBVR_FAIL_MALLOC_ABOVE");
    limit = env ? (size_t)strtoull(env, NULL, 10) : (size_t)-1;
    if (limit == 0) limit = (size_t)-1;
  }
  return size > limit ? NULL : __libc_malloc(size);
}
