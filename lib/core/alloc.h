/* Runtime allocation: mimalloc when the build has it (the default), the C
 * library otherwise. Sanitizer builds use the C library so that
 * AddressSanitizer sees every block and LeakSanitizer every leak.
 *
 * Every allocation of the runtime goes through these macros, so that a
 * build with -Dalloc_faults=true (the sanitizer builds of tools/dev) can
 * make any one of them fail on a test's request (lib/core/fault.c,
 * test/test_alloc_faults.c): each failure path is then run, under
 * AddressSanitizer, instead of being trusted. Other builds pay nothing. */
#ifndef WEFT_ALLOC_H
#define WEFT_ALLOC_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef WEFT_ALLOC_FAULTS
/* True when the test armed a failure and this allocation is the one. */
bool weft__alloc_fault(void);
/* For tests: fail `count` allocations (any thread's) from the nth from
 * now on; disarm returns how many failed. */
void weft__fault_arm(long nth, long count);
long weft__fault_disarm(void);
#define WEFT__MAYFAIL(expr) (weft__alloc_fault() ? NULL : (expr))
#define weft__fault_here() weft__alloc_fault()
#else
#define WEFT__MAYFAIL(expr) (expr)
#define weft__fault_here() false
#endif

#ifdef WEFT_HAVE_MIMALLOC
#include <mimalloc.h>
#define weft__malloc(n) WEFT__MAYFAIL(mi_malloc(n))
#define weft__calloc(n, s) WEFT__MAYFAIL(mi_calloc((n), (s)))
#define weft__realloc(p, n) WEFT__MAYFAIL(mi_realloc((p), (n)))
#define weft__free(p) mi_free(p)
#define weft__aligned_alloc(a, n) WEFT__MAYFAIL(mi_malloc_aligned((n), (a)))
#define weft__aligned_free(p) mi_free(p)
#else
#define weft__malloc(n) WEFT__MAYFAIL(malloc(n))
#define weft__calloc(n, s) WEFT__MAYFAIL(calloc((n), (s)))
#define weft__realloc(p, n) WEFT__MAYFAIL(realloc((p), (n)))
#define weft__free(p) free(p)
#define weft__aligned_alloc(a, n) WEFT__MAYFAIL(aligned_alloc((a), (n)))
#define weft__aligned_free(p) free(p)
#endif

/* Threads and processes take memory too (a stack, page tables), and can
 * be refused for want of it: they fail like allocations when a test arms
 * a fault, so that the sweep runs those failure paths as well. Same
 * returns as pthread_create (an errno) and fork (-1, errno set). */
static inline int weft__thread_create(pthread_t *th, const pthread_attr_t *a,
                                      void *(*fn)(void *), void *arg)
{
    return weft__fault_here() ? EAGAIN : pthread_create(th, a, fn, arg);
}

static inline pid_t weft__fork(void)
{
    if (weft__fault_here()) {
        errno = EAGAIN;
        return -1;
    }
    return fork();
}

/* A copy of s from weft__malloc (free it with weft__free), or NULL. */
static inline char *weft__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = weft__malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

#endif
