/* Helpers shared by the parallel map tests (test_map.c and
 * test_map_isolated.c): per-item hit counters in memory that forked
 * worker processes share with the test, option builders and report
 * checks. Include <cmocka.h> first. Public API only. */
#ifndef WEFT_TEST_MAP_UTIL_H
#define WEFT_TEST_MAP_UTIL_H

#ifndef CMOCKA_H_
#error "include <cmocka.h> before test_map_util.h"
#endif

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <weft/map.h>

#include "test_future_util.h"

/* Memory shared with forked children (MAP_SHARED), zeroed; NULL on
 * failure. Isolated-mode items see it only when it was mapped before the
 * runtime forked its worker processes. */
static inline void *shared_alloc(size_t size)
{
    void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static inline void shared_free(void *p, size_t size)
{
    if (p)
        munmap(p, size ? size : 1);
}

/* One counter per item, bumped each time the item runs. */
struct hits {
    size_t n;
    _Atomic unsigned *c;
};

static inline struct hits hits_new(size_t n)
{
    struct hits h = { n, shared_alloc(n * sizeof(_Atomic unsigned)) };
    assert_non_null(h.c);
    return h;
}

static inline void hits_free(struct hits *h)
{
    shared_free((void *)h->c, h->n * sizeof *h->c);
    h->c = NULL;
}

static inline void hits_clear(struct hits *h)
{
    for (size_t i = 0; i < h->n; i++)
        atomic_store_explicit(&h->c[i], 0, memory_order_relaxed);
}

static inline void hit(const struct hits *h, size_t i)
{
    atomic_fetch_add_explicit(&h->c[i], 1, memory_order_relaxed);
}

static inline unsigned hits_of(const struct hits *h, size_t i)
{
    return atomic_load_explicit(&h->c[i], memory_order_relaxed);
}

static inline size_t hits_sum(const struct hits *h)
{
    size_t s = 0;
    for (size_t i = 0; i < h->n; i++)
        s += hits_of(h, i);
    return s;
}

/* Fail, naming the case (what) and the first item that did not run
 * exactly once. */
static inline void hits_expect_once(const struct hits *h, size_t n,
                                    const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (hits_of(h, i) != 1)
            fail_msg("%s: item %zu ran %u times (want exactly 1)", what, i,
                     hits_of(h, i));
}

static inline weft_map_opts map_opts(int workers, unsigned flags,
                                     size_t batch)
{
    weft_map_opts o = weft_map_opts_default();
    o.workers = workers;
    o.flags = flags;
    o.batch = batch;
    return o;
}

/* A report that will show whether the call filled it in. */
static inline weft_map_report report_poisoned(void)
{
    weft_map_report r;
    memset(&r, 0xa5, sizeof r);
    return r;
}

/* Every item is done, failed or skipped, each once. */
static inline void report_expect_sums(const weft_map_report *r, size_t n,
                                      const char *what)
{
    if (r->done + r->failed + r->skipped != n)
        fail_msg("%s: done %zu + failed %zu + skipped %zu != %zu items",
                 what, r->done, r->failed, r->skipped, n);
    if (r->failed == 0 && r->first_index != SIZE_MAX)
        fail_msg("%s: nothing failed but first_index is %zu", what,
                 r->first_index);
    if (r->failed > 0 && r->first_index == SIZE_MAX)
        fail_msg("%s: %zu failed but first_index is SIZE_MAX", what,
                 r->failed);
}

/* A report of a map where every one of n items succeeded. */
static inline void report_expect_clean(const weft_map_report *r, size_t n,
                                       const char *what)
{
    report_expect_sums(r, n, what);
    if (r->done != n || r->failed || r->skipped || r->nerrors)
        fail_msg("%s: done %zu failed %zu skipped %zu nerrors %zu, want "
                 "%zu/0/0/0", what, r->done, r->failed, r->skipped,
                 r->nerrors, n);
}

/* Output slots with a gap after each: the gap bytes and a field of every
 * slot that no item writes (keep) start known, so a check catches an item
 * that writes past its slot or over the field. */
#define GAP_BYTE 0xee
#define KEEP_WORD 0xc0ffee

/* n slots of `stride` bytes, all GAP_BYTE but the uint32_t keep field at
 * keep_off of each, which is KEEP_WORD. */
static inline char *gapped_outputs(size_t n, size_t stride, size_t keep_off)
{
    char *out = malloc(n ? n * stride : 1);
    assert_non_null(out);
    memset(out, GAP_BYTE, n * stride);
    for (size_t i = 0; i < n; i++)
        *(uint32_t *)(out + i * stride + keep_off) = KEEP_WORD;
    return out;
}

/* Busy-wait about us microseconds (items that take a while without
 * sleeping, so workers stay busy). */
static inline void spin_us(int us)
{
    int64_t end = now_ns() + (int64_t)us * 1000;
    while (now_ns() < end)
        ;
}

#endif
