/* Parallel map, for and reduce (weft/map.h) on threads: every item run
 * exactly once at any worker count, worker limit and batch size; strides,
 * missing input or output; ordered output and unordered delivery; the
 * error policies; cancellation; progress; reductions; nested maps; a
 * billion items in bounded memory; bad options; calls from several
 * threads at once and from workers. Isolated mode is in
 * test_map_isolated.c. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "test_map_util.h"

#define NELEM(a) (sizeof(a) / sizeof *(a))

/* The worker limit a map may use: opts.workers as documented in map.h. */
static int limit_of(int lim, int rt_workers)
{
    if (lim == 0 || lim == -1)
        return rt_workers;
    if (lim > 0)
        return lim < rt_workers ? lim : rt_workers;
    int w = rt_workers + lim + 1;
    return w > 1 ? w : 1;
}

/* --- every item exactly once ---------------------------------------------- */

/* What the counting bodies share: a hit per item (index - begin), the
 * most items that ran at once, and anything out of place. */
struct once {
    struct hits h;
    size_t begin;
    _Atomic int active, peak;
    _Atomic int bad; /* index out of range, not on a worker */
};

/* Count one more item running at once in *active, raising *peak. */
static void active_enter(_Atomic int *active, _Atomic int *peak)
{
    int a = atomic_fetch_add(active, 1) + 1;
    int p = atomic_load(peak);
    while (a > p && !atomic_compare_exchange_weak(peak, &p, a))
        ;
}

static int once_note(struct once *o, size_t i)
{
    if (i < o->begin || i - o->begin >= o->h.n || weft_worker_index() < 0) {
        atomic_fetch_add(&o->bad, 1);
        return -ERANGE;
    }
    active_enter(&o->active, &o->peak);
    hit(&o->h, i - o->begin);
    atomic_fetch_sub(&o->active, 1);
    return 0;
}

static int once_for(size_t i, void *ctx) { return once_note(ctx, i); }

static int once_map(size_t i, const void *in, void *out, void *ctx)
{
    if (in || out)
        return -EFAULT;
    return once_note(ctx, i);
}

struct once_case {
    int rt_workers, lim;
    size_t batch, n;
    int use_map;
};

static void once_check(struct once *o, const struct once_case *k, int rc,
                       const weft_map_report *rep)
{
    char what[160];
    snprintf(what, sizeof what, "%s: runtime %d workers, opts.workers %d, "
             "batch %zu, %zu items", k->use_map ? "weft_map" : "weft_for",
             k->rt_workers, k->lim, k->batch, k->n);
    if (rc != 0 || atomic_load(&o->bad))
        fail_msg("%s: returned %d, %d bad calls", what, rc,
                 atomic_load(&o->bad));
    hits_expect_once(&o->h, k->n, what);
    report_expect_clean(rep, k->n, what);
    /* the limit is on workers at once; over the map more may take part */
    int limit = limit_of(k->lim, k->rt_workers);
    int peak = atomic_load(&o->peak);
    if (peak > limit || rep->workers > k->rt_workers ||
        (k->n && rep->workers < 1))
        fail_msg("%s: %d items at once (limit %d), report says %d workers",
                 what, peak, limit, rep->workers);
    if (k->n == 0)
        return;
    if (rep->batch_mean < 1 || rep->batch_mean > rep->batch_max)
        fail_msg("%s: batch sizes %zu..%zu", what, rep->batch_mean,
                 rep->batch_max);
    size_t cap = k->batch ? k->batch : k->n / (4 * (size_t)limit);
    if (rep->batch_max > (cap ? cap : 1))
        fail_msg("%s: largest batch %zu, above %zu", what, rep->batch_max,
                 cap ? cap : 1);
    if (k->batch && rep->batches < (k->n + k->batch - 1) / k->batch)
        fail_msg("%s: %zu batches of at most %zu for %zu items", what,
                 rep->batches, k->batch, k->n);
}

static void once_run(weft_runtime *rt, struct once *o,
                     const struct once_case *k)
{
    hits_clear(&o->h);
    atomic_store(&o->peak, 0);
    o->begin = k->use_map ? 0 : 5;
    weft_map_opts opts = map_opts(k->lim, 0, k->batch);
    weft_map_report rep = report_poisoned();
    int rc = k->use_map
        ? weft_map(rt, k->n, NULL, 8, NULL, 8, once_map, o, &opts, &rep)
        : weft_for(rt, o->begin, o->begin + k->n, once_for, o, &opts, &rep);
    once_check(o, k, rc, &rep);
}

static void test_exactly_once(void **s)
{
    (void)s;
    static const int rtw[] = { 1, 2, 3, 4, 8 };
    static const int lims[] = { 1, 2, -1, -2, 0 };
    static const size_t batches[] = { 0, 1, 7, 1000 };
    static const size_t ns[] = { 0, 1, 2, 3, 1000, 100003 };
    struct once o = { .h = hits_new(100003) };
    for (size_t r = 0; r < NELEM(rtw); r++) {
        weft_runtime *rt = test_runtime(rtw[r], NULL);
        assert_non_null(rt);
        for (size_t l = 0; l < NELEM(lims); l++)
            for (size_t b = 0; b < NELEM(batches); b++)
                for (size_t i = 0; i < NELEM(ns); i++)
                    for (int m = 0; m < 2; m++) {
                        struct once_case k = { rtw[r], lims[l], batches[b],
                                               ns[i], m };
                        once_run(rt, &o, &k);
                    }
        weft_runtime_destroy(&rt);
    }
    hits_free(&o.h);
}

/* Slow items, so every allowed worker gets some: never more of them at
 * once than opts.workers allows. */
struct conc {
    _Atomic int active, peak;
};

static int conc_item(size_t i, void *ctx)
{
    (void)i;
    struct conc *c = ctx;
    active_enter(&c->active, &c->peak);
    spin_us(20);
    atomic_fetch_sub(&c->active, 1);
    return 0;
}

static void test_workers_limit(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(4, NULL);
    assert_non_null(rt);
    static const int lims[] = { 1, 2, 3, -2, -3, -1, 0, 100000,
                                -WEFT_MAX_WORKERS };
    for (size_t l = 0; l < NELEM(lims); l++) {
        struct conc c = { 0 };
        weft_map_opts opts = map_opts(lims[l], 0, 1);
        weft_map_report rep;
        assert_int_equal(weft_for(rt, 0, 2000, conc_item, &c, &opts, &rep),
                         0);
        int limit = limit_of(lims[l], 4);
        if (atomic_load(&c.peak) > limit)
            fail_msg("opts.workers %d: %d items at once, limit %d", lims[l],
                     atomic_load(&c.peak), limit);
        report_expect_clean(&rep, 2000, "workers limit");
    }
    weft_runtime_destroy(&rt);
}

/* --- weft_for_range ------------------------------------------------------- */

struct ranges {
    struct hits h;
    size_t begin, end;
    _Atomic size_t calls;
    _Atomic int bad;
};

static int range_hits(size_t lo, size_t hi, void *ctx)
{
    struct ranges *r = ctx;
    if (lo >= hi || lo < r->begin || hi > r->end) {
        atomic_fetch_add(&r->bad, 1);
        return -ERANGE;
    }
    for (size_t i = lo; i < hi; i++)
        hit(&r->h, i - r->begin);
    atomic_fetch_add(&r->calls, 1);
    return 0;
}

static void range_case(weft_runtime *rt, struct ranges *r, size_t begin,
                       size_t n, int lim, size_t batch)
{
    char what[128];
    snprintf(what, sizeof what, "range [%zu, +%zu) opts.workers %d batch "
             "%zu", begin, n, lim, batch);
    hits_clear(&r->h);
    r->begin = begin;
    r->end = begin + n;
    atomic_store(&r->calls, 0);
    weft_map_opts opts = map_opts(lim, 0, batch);
    weft_map_report rep = report_poisoned();
    int rc = weft_for_range(rt, begin, begin + n, range_hits, r, &opts, &rep);
    if (rc || atomic_load(&r->bad))
        fail_msg("%s: returned %d, %d bad sub-ranges", what, rc,
                 atomic_load(&r->bad));
    hits_expect_once(&r->h, n, what);
    if (rep.failed || rep.skipped || rep.first_index != SIZE_MAX)
        fail_msg("%s: report failed %zu skipped %zu first_index %zu", what,
                 rep.failed, rep.skipped, rep.first_index);
    if (batch && n && atomic_load(&r->calls) < (n + batch - 1) / batch)
        fail_msg("%s: %zu calls, sub-ranges longer than the batch", what,
                 atomic_load(&r->calls));
}

static void test_for_range(void **s)
{
    (void)s;
    static const size_t begins[] = { 1000, 12345, SIZE_MAX - 5000 };
    static const size_t ns[] = { 0, 1, 2, 3, 1000, 5000, 100003 };
    static const int lims[] = { 0, 1, 2 };
    static const size_t batches[] = { 0, 1, 7, 1000 };
    struct ranges r = { .h = hits_new(100003) };
    weft_runtime *rt = test_runtime(3, NULL);
    assert_non_null(rt);
    for (size_t b = 0; b < NELEM(begins); b++)
        for (size_t i = 0; i < NELEM(ns); i++) {
            if (ns[i] > SIZE_MAX - begins[b])
                continue;
            for (size_t l = 0; l < NELEM(lims); l++)
                for (size_t k = 0; k < NELEM(batches); k++)
                    range_case(rt, &r, begins[b], ns[i], lims[l],
                               batches[k]);
        }
    weft_runtime_destroy(&rt);
    hits_free(&r.h);
}

/* --- strides, NULL input or output, ordered output ------------------------ */

struct rec_in {
    double x;
    char pad[20];
    int32_t k;
};

struct rec_out {
    int64_t y;
    uint32_t keep; /* the item never writes it */
};

#define OUT_STRIDE (2 * sizeof(struct rec_out)) /* a gap after each slot */

/* Where the items must find their input and output. */
struct layout {
    const char *in;
    size_t in_stride;
    char *out;
    _Atomic int bad;
};

static int64_t rec_f(size_t i) { return 8 * (int64_t)i - 3; }

static int rec_item(size_t i, const void *in, void *out, void *ctx)
{
    struct layout *l = ctx;
    const void *want_in = l->in ? l->in + i * l->in_stride : NULL;
    void *want_out = l->out ? l->out + i * OUT_STRIDE : NULL;
    if (in != want_in || out != want_out) {
        atomic_fetch_add(&l->bad, 1);
        return -EFAULT;
    }
    if (out) {
        const struct rec_in *r = in;
        /* with no input, the item makes up what it would have read */
        int64_t y = r ? (int64_t)(r->x * 2) + r->k : rec_f(i);
        ((struct rec_out *)out)->y = y;
    }
    return 0;
}

static struct rec_in *rec_inputs(size_t n)
{
    struct rec_in *in = calloc(n ? n : 1, sizeof *in);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++) {
        in[i].x = (double)i * 0.5;
        in[i].k = (int32_t)(7 * (int64_t)i - 3);
    }
    return in;
}

static char *rec_outputs(size_t n)
{
    return gapped_outputs(n, OUT_STRIDE, offsetof(struct rec_out, keep));
}

static void rec_check(const char *out, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        const struct rec_out *o = (const void *)(out + i * OUT_STRIDE);
        if (o->y != rec_f(i) || o->keep != KEEP_WORD)
            fail_msg("%s: out[%zu] = {%lld, %#x}, want {%lld, 0xc0ffee}",
                     what, i, (long long)o->y, o->keep,
                     (long long)rec_f(i));
        const unsigned char *gap = (const void *)(o + 1);
        for (size_t b = 0; b < OUT_STRIDE - sizeof *o; b++)
            if (gap[b] != GAP_BYTE)
                fail_msg("%s: byte %zu after out[%zu] was overwritten",
                         what, b, i);
    }
}

static void strides_case(weft_runtime *rt, size_t n, int with_in,
                         int with_out)
{
    char what[96];
    snprintf(what, sizeof what, "%zu items, input %s, output %s", n,
             with_in ? "strided" : "NULL", with_out ? "strided" : "NULL");
    struct rec_in *in = rec_inputs(n);
    char *out = rec_outputs(n);
    struct layout l = { with_in ? (const char *)in : NULL, sizeof *in,
                        with_out ? out : NULL, 0 };
    weft_map_report rep;
    int rc = weft_map(rt, n, l.in, sizeof *in, l.out, OUT_STRIDE, rec_item,
                      &l, NULL, &rep);
    if (rc || atomic_load(&l.bad))
        fail_msg("%s: returned %d, %d items saw the wrong pointers", what,
                 rc, atomic_load(&l.bad));
    report_expect_clean(&rep, n, what);
    if (with_out)
        rec_check(out, n, what);
    free(in);
    free(out);
}

static void test_strides(void **s)
{
    (void)s;
    static const int rtw[] = { 1, 3 };
    static const size_t ns[] = { 0, 1, 1000, 100003 };
    for (size_t r = 0; r < NELEM(rtw); r++) {
        weft_runtime *rt = test_runtime(rtw[r], NULL);
        assert_non_null(rt);
        for (size_t i = 0; i < NELEM(ns); i++)
            for (int in = 0; in < 2; in++)
                for (int out = 0; out < 2; out++)
                    strides_case(rt, ns[i], in, out);
        weft_runtime_destroy(&rt);
    }
}

/* in_stride 0: every item reads the same input. */
static int same_in(size_t i, const void *in, void *out, void *ctx)
{
    (void)ctx;
    *(int64_t *)out = *(const int64_t *)in + (int64_t)i;
    return 0;
}

static void test_stride_zero(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    enum { N = 5000 };
    int64_t base = 1000000, *out = calloc(N, sizeof *out);
    assert_non_null(out);
    assert_int_equal(weft_map(rt, N, &base, 0, out, sizeof *out, same_in,
                              NULL, NULL, NULL), 0);
    for (size_t i = 0; i < N; i++)
        if (out[i] != base + (int64_t)i)
            fail_msg("out[%zu] = %lld, want %lld", i, (long long)out[i],
                     (long long)(base + (int64_t)i));
    free(out);
    weft_runtime_destroy(&rt);
}

/* --- unordered delivery --------------------------------------------------- */

struct dl {
    size_t n, fail_mod; /* items with i % fail_mod == 1 fail (0: none) */
    const char *out;    /* the map's output, or NULL (scratch) */
    size_t stride;
    struct hits got;
    _Atomic int inside, overlap, bad_ptr, bad_val, bad_thread;
};

static uint64_t dl_val(size_t i) { return (uint64_t)i * 2654435761u + 1; }

static int dl_item(size_t i, const void *in, void *out, void *ctx)
{
    const struct dl *d = ctx;
    if (in || !out)
        return -EFAULT;
    if (d->fail_mod && i % d->fail_mod == 1)
        return -EIO;
    uint64_t *o = out;
    o[0] = dl_val(i);
    o[1] = ~o[0];
    return 0;
}

static void dl_deliver(size_t i, void *result, void *ctx)
{
    struct dl *d = ctx;
    if (atomic_exchange(&d->inside, 1))
        atomic_fetch_add(&d->overlap, 1);
    if (weft_worker_index() < 0)
        atomic_fetch_add(&d->bad_thread, 1);
    if (i >= d->n || (d->out && result != d->out + i * d->stride)) {
        atomic_fetch_add(&d->bad_ptr, 1);
    } else {
        const uint64_t *r = result;
        if (!r || r[0] != dl_val(i) || r[1] != ~dl_val(i))
            atomic_fetch_add(&d->bad_val, 1);
        hit(&d->got, i);
    }
    if (i % 16 == 0)
        spin_us(1); /* widen the window an overlap would show in */
    atomic_store(&d->inside, 0);
}

static void dl_expect(struct dl *d, int rc, const weft_map_report *rep,
                      const char *what)
{
    if (atomic_load(&d->overlap) || atomic_load(&d->bad_ptr) ||
        atomic_load(&d->bad_val) || atomic_load(&d->bad_thread))
        fail_msg("%s: %d overlapping calls, %d wrong pointers, %d wrong "
                 "values, %d off the workers", what, atomic_load(&d->overlap),
                 atomic_load(&d->bad_ptr), atomic_load(&d->bad_val),
                 atomic_load(&d->bad_thread));
    size_t failed = 0;
    for (size_t i = 0; i < d->n; i++) {
        int bad = d->fail_mod && i % d->fail_mod == 1;
        failed += bad;
        if (hits_of(&d->got, i) != (bad ? 0u : 1u))
            fail_msg("%s: item %zu delivered %u times, want %d", what, i,
                     hits_of(&d->got, i), !bad);
    }
    assert_int_equal(rc, failed ? -EIO : 0);
    report_expect_sums(rep, d->n, what);
    if (rep->done != d->n - failed || rep->failed != failed)
        fail_msg("%s: done %zu failed %zu, want %zu and %zu", what,
                 rep->done, rep->failed, d->n - failed, failed);
}

static void dl_case(weft_runtime *rt, size_t n, int scratch, size_t fail_mod,
                    size_t batch)
{
    char what[96];
    snprintf(what, sizeof what, "deliver %zu items, %s output, fail_mod "
             "%zu, batch %zu", n, scratch ? "scratch" : "array", fail_mod,
             batch);
    size_t stride = 3 * sizeof(uint64_t);
    char *out = scratch ? NULL : calloc(n ? n : 1, stride);
    assert_true(scratch || out);
    struct dl d = { .n = n, .fail_mod = fail_mod, .out = out,
                    .stride = stride, .got = hits_new(n ? n : 1) };
    weft_map_opts opts = map_opts(0, fail_mod ? WEFT_MAP_COLLECT : 0, batch);
    opts.deliver = dl_deliver;
    opts.deliver_ctx = &d;
    weft_map_report rep;
    int rc = weft_map(rt, n, NULL, 0, out, stride, dl_item, &d, &opts, &rep);
    dl_expect(&d, rc, &rep, what);
    for (size_t i = 0; out && i < n; i++)
        if (!(fail_mod && i % fail_mod == 1) &&
            ((uint64_t *)(out + i * stride))[0] != dl_val(i))
            fail_msg("%s: out[%zu] wrong", what, i);
    hits_free(&d.got);
    free(out);
}

static void test_deliver(void **s)
{
    (void)s;
    static const int rtw[] = { 1, 4 };
    static const size_t ns[] = { 0, 1, 3, 20011 };
    for (size_t r = 0; r < NELEM(rtw); r++) {
        weft_runtime *rt = test_runtime(rtw[r], NULL);
        assert_non_null(rt);
        for (size_t i = 0; i < NELEM(ns); i++)
            for (int scratch = 0; scratch < 2; scratch++) {
                dl_case(rt, ns[i], scratch, 0, 0);
                dl_case(rt, ns[i], scratch, 10, 0);
                dl_case(rt, ns[i], scratch, 0, 1);
                dl_case(rt, ns[i], scratch, 7, 13);
            }
        weft_runtime_destroy(&rt);
    }
}

/* A delivery callback that calls into weft: a nested weft_for on the same
 * runtime, whose worker may run batches of the delivering map meanwhile
 * (when its join finds them to steal). That used to deadlock, the
 * callback running under the map's lock, which those batches take (for a
 * slot, a failure, their own delivery); test_deliver_no_wait below shows
 * that lock deterministically. Now their results are queued for the
 * delivering thread: still one call at a time, each item once. */
struct dn {
    weft_runtime *rt;
    struct dl d;
    struct hits inner;
    _Atomic int nested_bad;
};

#define DN_INNER 64 /* items of each nested map */

static int dn_item(size_t i, const void *in, void *out, void *ctx)
{
    struct dn *n = ctx;
    return dl_item(i, in, out, &n->d);
}

static int dn_inner(size_t j, void *ctx)
{
    struct dn *n = ctx;
    hit(&n->inner, j);
    spin_us(1);
    return 0;
}

static void dn_deliver(size_t i, void *result, void *ctx)
{
    struct dn *n = ctx;
    dl_deliver(i, result, &n->d);
    if (i % 8)
        return;
    /* not inside dl_deliver's window: a queued batch delivered by this
     * thread right after is not an overlap */
    weft_map_report rep;
    size_t lo = (i / 8) * DN_INNER;
    int rc = weft_for(n->rt, lo, lo + DN_INNER, dn_inner, n, NULL, &rep);
    if (rc || rep.done != DN_INNER)
        atomic_fetch_add(&n->nested_bad, 1);
}

static void test_deliver_nested(void **s)
{
    (void)s;
    size_t n = 4000, stride = 3 * sizeof(uint64_t);
    weft_runtime *rt = test_runtime(4, NULL);
    assert_non_null(rt);
    for (int scratch = 0; scratch < 2; scratch++) {
        char *out = scratch ? NULL : calloc(n, stride);
        assert_true(scratch || out);
        struct dn x = { .rt = rt, .inner = hits_new(n / 8 * DN_INNER) };
        x.d = (struct dl){ .n = n, .out = out, .stride = stride,
                           .got = hits_new(n) };
        weft_map_opts opts = map_opts(0, 0, 0);
        opts.deliver = dn_deliver;
        opts.deliver_ctx = &x;
        weft_map_report rep;
        int rc = weft_map(rt, n, NULL, 0, out, stride, dn_item, &x, &opts,
                          &rep);
        dl_expect(&x.d, rc, &rep, scratch ? "nested in delivery, scratch"
                                          : "nested in delivery, array");
        assert_int_equal(atomic_load(&x.nested_bad), 0);
        hits_expect_once(&x.inner, n / 8 * DN_INNER, "the nested maps");
        hits_free(&x.inner);
        hits_free(&x.d.got);
        free(out);
    }
    weft_runtime_destroy(&rt);
}

/* No worker waits for the delivery callback, and the callback runs under
 * no lock of the map: while the first call waits (for at most LONG_WAIT)
 * until another worker has run an item after one of its own failed (so
 * that worker finished a batch, queued its delivery and recorded a
 * failure), the map goes on. It used to hold the map's lock across the
 * callback, which other workers take to deliver or record a failure: the
 * callback waited in vain. */
struct dw {
    struct dl d;
    _Atomic int first, progressed, timed_out;
};

static _Thread_local int dw_failed_here; /* a failure on this thread */

static int dw_item(size_t i, const void *in, void *out, void *ctx)
{
    struct dw *w = ctx;
    if (dw_failed_here)
        atomic_store(&w->progressed, 1);
    int rc = dl_item(i, in, out, &w->d);
    dw_failed_here |= rc != 0;
    return rc;
}

static void dw_deliver(size_t i, void *result, void *ctx)
{
    struct dw *w = ctx;
    if (!atomic_exchange(&w->first, 1)) {
        int64_t end = now_ns() + LONG_WAIT;
        while (!atomic_load(&w->progressed) && now_ns() < end)
            sleep_ns(100000);
        atomic_store(&w->timed_out, !atomic_load(&w->progressed));
    }
    dl_deliver(i, result, &w->d);
}

static void test_deliver_no_wait(void **s)
{
    (void)s;
    size_t n = 1000, stride = 3 * sizeof(uint64_t);
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    for (int scratch = 0; scratch < 2; scratch++) {
        char *out = scratch ? NULL : calloc(n, stride);
        assert_true(scratch || out);
        struct dw w = { .d = { .n = n, .fail_mod = 2, .out = out,
                               .stride = stride, .got = hits_new(n) } };
        weft_map_opts opts = map_opts(0, WEFT_MAP_COLLECT, 1);
        opts.deliver = dw_deliver;
        opts.deliver_ctx = &w;
        weft_map_report rep;
        int rc = weft_map(rt, n, NULL, 0, out, stride, dw_item, &w, &opts,
                          &rep);
        if (atomic_load(&w.timed_out))
            fail_msg("%s: the map stood still while delivery ran",
                     scratch ? "scratch" : "array");
        dl_expect(&w.d, rc, &rep, scratch ? "deliver, no waiting, scratch"
                                          : "deliver, no waiting, array");
        hits_free(&w.d.got);
        free(out);
    }
    weft_runtime_destroy(&rt);
}

/* --- errors --------------------------------------------------------------- */

/* Items listed in a set fail with a status that names them. */
struct failing {
    struct hits h;
    size_t mod, rem; /* items with i % mod == rem fail */
    int positive;    /* status +7 instead of -(100000 + i) */
};

static int fail_status(const struct failing *f, size_t i)
{
    return f->positive ? 7 : -(int)(100000 + i);
}

static int fails(const struct failing *f, size_t i)
{
    return f->mod && i % f->mod == f->rem;
}

static int failing_for(size_t i, void *ctx)
{
    struct failing *f = ctx;
    hit(&f->h, i);
    return fails(f, i) ? fail_status(f, i) : 0;
}

static int failing_map(size_t i, const void *in, void *out, void *ctx)
{
    (void)in;
    (void)out;
    return failing_for(i, ctx);
}

/* The listed errors: at most max, each a failing item with its status,
 * no index twice. */
static void errors_expect(const struct failing *f, const weft_map_error *e,
                          size_t max, const weft_map_report *rep,
                          const char *what)
{
    size_t want = rep->failed < max ? rep->failed : max;
    if (rep->nerrors != want)
        fail_msg("%s: %zu errors listed, want min(failed %zu, max %zu)",
                 what, rep->nerrors, rep->failed, max);
    for (size_t k = 0; k < rep->nerrors; k++) {
        if (e[k].index >= f->h.n || !fails(f, e[k].index) ||
            e[k].status != fail_status(f, e[k].index) || e[k].signal != 0)
            fail_msg("%s: error %zu lists item %zu status %d signal %d",
                     what, k, e[k].index, e[k].status, e[k].signal);
        for (size_t j = 0; j < k; j++)
            if (e[j].index == e[k].index)
                fail_msg("%s: item %zu listed twice", what, e[k].index);
    }
}

/* The first failure as the report and the return value give it. */
static void first_expect(const struct failing *f, int rc,
                         const weft_map_report *rep, const char *what)
{
    if (rep->failed < 1 || rep->first_index >= f->h.n ||
        !fails(f, rep->first_index) ||
        rep->first_status != fail_status(f, rep->first_index) ||
        rep->first_signal != 0 || rc != rep->first_status)
        fail_msg("%s: returned %d, failed %zu, first index %zu status %d "
                 "signal %d", what, rc, rep->failed, rep->first_index,
                 rep->first_status, rep->first_signal);
}

/* Items that ran are the done and failed ones; each ran at most once. */
static void ran_expect(const struct failing *f, const weft_map_report *rep,
                       const char *what)
{
    size_t ran = 0;
    for (size_t i = 0; i < f->h.n; i++) {
        if (hits_of(&f->h, i) > 1)
            fail_msg("%s: item %zu ran %u times", what, i, hits_of(&f->h, i));
        ran += hits_of(&f->h, i);
    }
    if (ran != rep->done + rep->failed)
        fail_msg("%s: %zu items ran, report done %zu + failed %zu", what,
                 ran, rep->done, rep->failed);
}

/* Stop at the first error: one worker, batches of one, item 0 fails:
 * nothing else may start. */
static void test_stop_first_serial(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct failing f = { .h = hits_new(1000), .mod = 1000, .rem = 0 };
    weft_map_opts opts = map_opts(1, 0, 1);
    weft_map_report rep;
    int rc = weft_for(rt, 0, 1000, failing_for, &f, &opts, &rep);
    first_expect(&f, rc, &rep, "serial stop");
    assert_int_equal(rep.first_index, 0);
    assert_int_equal(rep.done, 0);
    assert_int_equal(rep.failed, 1);
    assert_int_equal(rep.skipped, 999);
    assert_int_equal(hits_sum(&f.h), 1);
    hits_free(&f.h);
    weft_runtime_destroy(&rt);
}

/* Stop at the first error, in parallel: one failing item among many. */
static void test_stop_first_parallel(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(4, NULL);
    assert_non_null(rt);
    size_t n = 1000000;
    struct failing f = { .h = hits_new(n), .mod = n, .rem = 500 };
    for (int api = 0; api < 2; api++) {
        const char *what = api ? "weft_map stop" : "weft_for stop";
        hits_clear(&f.h);
        weft_map_report rep;
        int rc = api ? weft_map(rt, n, NULL, 0, NULL, 0, failing_map, &f,
                                NULL, &rep)
                     : weft_for(rt, 0, n, failing_for, &f, NULL, &rep);
        first_expect(&f, rc, &rep, what);
        assert_int_equal(rep.first_index, 500);
        assert_int_equal(rep.failed, 1);
        assert_true(rep.skipped > 0);
        report_expect_sums(&rep, n, what);
        ran_expect(&f, &rep, what);
    }
    hits_free(&f.h);
    weft_runtime_destroy(&rt);
}

/* Stop at the first error with many failing, statuses positive or not,
 * and a short error list. */
static void test_stop_first_many(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(3, NULL);
    assert_non_null(rt);
    size_t n = 100003;
    struct failing f = { .h = hits_new(n), .mod = 97, .rem = 13 };
    for (f.positive = 0; f.positive < 2; f.positive++) {
        const char *what = f.positive ? "status 7" : "status -(100000+i)";
        hits_clear(&f.h);
        weft_map_error errs[4];
        weft_map_opts opts = map_opts(0, 0, 0);
        opts.errors = errs;
        opts.max_errors = NELEM(errs);
        weft_map_report rep;
        int rc = weft_for(rt, 0, n, failing_for, &f, &opts, &rep);
        first_expect(&f, rc, &rep, what);
        report_expect_sums(&rep, n, what);
        ran_expect(&f, &rep, what);
        errors_expect(&f, errs, NELEM(errs), &rep, what);
    }
    hits_free(&f.h);
    weft_runtime_destroy(&rt);
}

static void collect_case(weft_runtime *rt, struct failing *f, int api,
                         size_t max)
{
    char what[64];
    snprintf(what, sizeof what, "collect, %s, max_errors %zu",
             api ? "weft_map" : "weft_for", max);
    size_t n = f->h.n, nfail = 0;
    for (size_t i = 0; i < n; i++)
        nfail += (size_t)fails(f, i);
    hits_clear(&f->h);
    weft_map_error *errs = max ? calloc(max, sizeof *errs) : NULL;
    assert_true(!max || errs);
    weft_map_opts opts = map_opts(0, WEFT_MAP_COLLECT, 0);
    opts.errors = errs;
    opts.max_errors = max;
    weft_map_report rep;
    int rc = api ? weft_map(rt, n, NULL, 0, NULL, 0, failing_map, f, &opts,
                            &rep)
                 : weft_for(rt, 0, n, failing_for, f, &opts, &rep);
    hits_expect_once(&f->h, n, what);
    first_expect(f, rc, &rep, what);
    if (rep.failed != nfail || rep.done != n - nfail || rep.skipped)
        fail_msg("%s: done %zu failed %zu skipped %zu, want %zu/%zu/0", what,
                 rep.done, rep.failed, rep.skipped, n - nfail, nfail);
    errors_expect(f, errs, max, &rep, what);
    free(errs);
}

/* WEFT_MAP_COLLECT: every item runs, every error counted and listed up
 * to the list's capacity. */
static void test_collect(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(3, NULL);
    assert_non_null(rt);
    struct failing f = { .h = hits_new(10007), .mod = 10, .rem = 3 };
    static const size_t maxes[] = { 0, 1, 5, 1001, 100000 };
    for (int api = 0; api < 2; api++)
        for (size_t m = 0; m < NELEM(maxes); m++)
            collect_case(rt, &f, api, maxes[m]);
    hits_free(&f.h);
    weft_runtime_destroy(&rt);
}

/* Range forms: the first index of a failure is the failing range's lo. */
struct range_fail {
    size_t bad;                      /* the range holding it fails */
    _Atomic size_t fail_lo, fail_hi; /* that range */
    _Atomic size_t items_ok;         /* items of ranges that returned 0 */
};

static int range_failing(size_t lo, size_t hi, void *ctx)
{
    struct range_fail *r = ctx;
    if (lo <= r->bad && r->bad < hi) {
        atomic_store(&r->fail_lo, lo);
        atomic_store(&r->fail_hi, hi);
        return -EIO;
    }
    atomic_fetch_add(&r->items_ok, hi - lo);
    return 0;
}

static void test_range_error(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    for (unsigned flags = 0; flags <= WEFT_MAP_COLLECT; flags++) {
        struct range_fail r = { .bad = 777777 };
        weft_map_opts opts = map_opts(0, flags, 0);
        weft_map_report rep;
        int rc = weft_for_range(rt, 10, 1000010, range_failing, &r, &opts,
                                &rep);
        assert_int_equal(rc, -EIO);
        assert_true(rep.failed >= 1); /* items: test_range_report */
        assert_int_equal(rep.first_status, -EIO);
        assert_int_equal(rep.first_index, atomic_load(&r.fail_lo));
        if (!(flags & WEFT_MAP_COLLECT))
            continue;
        /* collecting: every other range ran */
        assert_int_equal(rep.skipped, 0);
        assert_int_equal(atomic_load(&r.items_ok),
                         1000000 - (atomic_load(&r.fail_hi) -
                                    atomic_load(&r.fail_lo)));
    }
    weft_runtime_destroy(&rt);
}

/* The report of the range forms counts items (map.h: a failing call
 * fails every item of its range), so done + failed + skipped == n. */
static void test_range_report(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct ranges r = { .h = hits_new(100000), .begin = 0, .end = 100000 };
    weft_map_opts opts = map_opts(0, 0, 1000);
    weft_map_report ok, bad;
    int rc_ok = weft_for_range(rt, 0, 100000, range_hits, &r, &opts, &ok);
    struct range_fail f = { .bad = 50000 };
    opts.flags = WEFT_MAP_COLLECT;
    int rc_bad = weft_for_range(rt, 0, 100000, range_failing, &f, &opts,
                                &bad);
    hits_free(&r.h);
    weft_runtime_destroy(&rt);
    assert_int_equal(rc_ok, 0);
    assert_int_equal(rc_bad, -EIO);
    if (ok.done != 100000 || ok.failed || ok.skipped)
        fail_msg("100000 items in %zu calls, report done %zu failed %zu "
                 "skipped %zu", atomic_load(&r.calls), ok.done, ok.failed,
                 ok.skipped);
    size_t width = atomic_load(&f.fail_hi) - atomic_load(&f.fail_lo);
    if (bad.failed != width || bad.done != 100000 - width || bad.skipped)
        fail_msg("one failing range call of %zu items, report done %zu "
                 "failed %zu skipped %zu", width, bad.done, bad.failed,
                 bad.skipped);
}

/* --- cancellation --------------------------------------------------------- */

struct canc {
    struct hits h;
    _Atomic int flag;
    _Atomic size_t started;
    size_t after; /* an item sets the flag when this many started */
    int item_us;  /* each item spins this long */
};

static int canc_item(size_t i, void *ctx)
{
    struct canc *c = ctx;
    hit(&c->h, i);
    if (atomic_fetch_add(&c->started, 1) + 1 == c->after)
        atomic_store(&c->flag, 1);
    if (c->item_us)
        spin_us(c->item_us);
    return 0;
}

static void canc_expect(struct canc *c, int rc, const weft_map_report *rep,
                        const char *what)
{
    size_t n = c->h.n;
    if (rc != -ECANCELED || rep->skipped == 0 || rep->failed)
        fail_msg("%s: returned %d, skipped %zu, failed %zu; want "
                 "-ECANCELED, some skipped, none failed", what, rc,
                 rep->skipped, rep->failed);
    report_expect_sums(rep, n, what);
    size_t ran = hits_sum(&c->h);
    if (ran != rep->done || ran < c->after)
        fail_msg("%s: %zu items ran, report done %zu, cancelled after %zu",
                 what, ran, rep->done, c->after);
}

static void test_cancel_by_item(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(4, NULL);
    assert_non_null(rt);
    struct canc c = { .h = hits_new(1000000), .after = 1000 };
    static const size_t batches[] = { 0, 1, 64 };
    for (size_t b = 0; b < NELEM(batches); b++) {
        hits_clear(&c.h);
        atomic_store(&c.flag, 0);
        atomic_store(&c.started, 0);
        weft_map_opts opts = map_opts(0, 0, batches[b]);
        opts.cancel = &c.flag;
        weft_map_report rep;
        int rc = weft_for(rt, 0, c.h.n, canc_item, &c, &opts, &rep);
        canc_expect(&c, rc, &rep, batches[b] ? "fixed batch" : "adaptive");
    }
    hits_free(&c.h);
    weft_runtime_destroy(&rt);
}

struct later { _Atomic int *flag; int64_t delay_ns; };

static void *set_later(void *a)
{
    struct later *l = a;
    sleep_ns(l->delay_ns);
    atomic_store(l->flag, 1);
    return NULL;
}

static void test_cancel_by_thread(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    /* two million items of 5 us: ten seconds of work if never cancelled */
    struct canc c = { .h = hits_new(2000000), .item_us = 5 };
    weft_map_opts opts = map_opts(0, 0, 0);
    opts.cancel = &c.flag;
    struct later l = { &c.flag, 30 * MS };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, set_later, &l), 0);
    weft_map_report rep;
    int rc = weft_for(rt, 0, c.h.n, canc_item, &c, &opts, &rep);
    pthread_join(t, NULL);
    canc_expect(&c, rc, &rep, "cancelled by a thread");
    hits_free(&c.h);
    weft_runtime_destroy(&rt);
}

/* The flag already set: nothing runs, in every form. */
static int range_count(size_t lo, size_t hi, void *ctx)
{
    atomic_fetch_add((_Atomic size_t *)ctx, hi - lo);
    return 0;
}

static void test_cancel_before(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct canc c = { .h = hits_new(1000), .flag = 1 };
    weft_map_opts opts = map_opts(0, 0, 0);
    opts.cancel = &c.flag;
    weft_map_report rep;
    assert_int_equal(weft_for(rt, 0, 1000, canc_item, &c, &opts, &rep),
                     -ECANCELED);
    assert_int_equal(rep.done, 0);
    assert_int_equal(rep.skipped, 1000);
    assert_int_equal(hits_sum(&c.h), 0);
    _Atomic size_t items = 0;
    assert_int_equal(weft_for_range(rt, 0, 1000, range_count, &items, &opts,
                                    &rep), -ECANCELED);
    assert_int_equal(atomic_load(&items), 0);
    hits_free(&c.h);
    weft_runtime_destroy(&rt);
}

/* --- progress ------------------------------------------------------------- */

struct prog {
    size_t n;
    pthread_t caller;
    _Atomic int inside, overlap, calls;
    /* written only inside the callback, which never overlaps itself */
    size_t last_done, last_total;
    int backwards, bad, last_on_caller;
};

static void prog_cb(const weft_map_progress *p, void *ctx)
{
    struct prog *g = ctx;
    if (atomic_exchange(&g->inside, 1))
        atomic_fetch_add(&g->overlap, 1);
    if (p->total != g->n || p->done > p->total || p->elapsed < 0 ||
        (p->eta < 0 && p->eta != -1) || (p->rate < 0 && p->rate != -1))
        g->bad++;
    if (p->done < g->last_done)
        g->backwards++;
    g->last_done = p->done;
    g->last_total = p->total;
    g->last_on_caller = pthread_equal(pthread_self(), g->caller);
    atomic_fetch_add(&g->calls, 1);
    atomic_store(&g->inside, 0);
}

/* Item i fails when i % 100 == 99 and the map collects; every item spins
 * 100 us. */
static int prog_item(size_t i, void *ctx)
{
    int collect = *(const int *)ctx;
    spin_us(100);
    return collect && i % 100 == 99 ? -EIO : 0;
}

static void prog_case(weft_runtime *rt, int collect)
{
    const char *what = collect ? "progress, collecting" : "progress";
    struct prog g = { .n = 2000, .caller = pthread_self() };
    weft_map_opts opts = map_opts(0, collect ? WEFT_MAP_COLLECT : 0, 0);
    opts.progress = prog_cb;
    opts.progress_ctx = &g;
    opts.progress_ms = 10;
    weft_map_report rep;
    int64_t t0 = now_ns();
    int rc = weft_for(rt, 0, g.n, prog_item, &collect, &opts, &rep);
    int64_t ms = (now_ns() - t0) / MS;
    assert_int_equal(rc, collect ? -EIO : 0);
    int calls = atomic_load(&g.calls);
    if (atomic_load(&g.overlap) || g.bad || g.backwards)
        fail_msg("%s: %d overlapping calls, %d bad reports, %d went "
                 "backwards", what, atomic_load(&g.overlap), g.bad,
                 g.backwards);
    /* a map of 20 periods or more reports during the run, not only at the
     * end, and no more often than every period */
    if (calls < 2 || calls > ms / 10 + 3)
        fail_msg("%s: %d calls in %lld ms at a 10 ms period", what, calls,
                 (long long)ms);
    if (!g.last_on_caller || g.last_done != g.n || g.last_total != g.n ||
        g.last_done != rep.done + rep.failed)
        fail_msg("%s: last call %s the caller, done %zu of %zu; report done "
                 "%zu failed %zu", what, g.last_on_caller ? "from" : "not "
                 "from", g.last_done, g.last_total, rep.done, rep.failed);
}

static void test_progress(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    prog_case(rt, 0);
    prog_case(rt, 1);
    weft_runtime_destroy(&rt);
}

/* A cancelled map's last progress report counts the items that finished. */
static void test_progress_cancelled(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct canc c = { .h = hits_new(100000), .after = 50, .item_us = 10 };
    struct prog g = { .n = c.h.n, .caller = pthread_self() };
    weft_map_opts opts = map_opts(0, 0, 0);
    opts.cancel = &c.flag;
    opts.progress = prog_cb;
    opts.progress_ctx = &g;
    opts.progress_ms = 1;
    weft_map_report rep;
    int rc = weft_for(rt, 0, c.h.n, canc_item, &c, &opts, &rep);
    canc_expect(&c, rc, &rep, "progress, cancelled");
    assert_int_equal(atomic_load(&g.overlap), 0);
    assert_true(g.last_on_caller);
    assert_int_equal(g.last_done, rep.done + rep.failed);
    assert_int_equal(g.last_total, c.h.n);
    hits_free(&c.h);
    weft_runtime_destroy(&rt);
}

/* --- reduce --------------------------------------------------------------- */

struct acc {
    uint64_t sum, count, min, max;
};

struct red {
    _Atomic int inits, combines;
    size_t bad;                      /* a body fails on the range holding it */
    _Atomic size_t fail_lo, fail_hi; /* that range */
    _Atomic uint64_t ok_sum, ok_count; /* what bodies that succeeded saw */
};

static int acc_init(void *a, void *ctx)
{
    struct red *r = ctx;
    atomic_fetch_add(&r->inits, 1);
    *(struct acc *)a = (struct acc){ 0, 0, UINT64_MAX, 0 };
    return 0;
}

static int acc_body(void *a, size_t lo, size_t hi, void *ctx)
{
    struct red *r = ctx;
    struct acc *x = a;
    if (lo <= r->bad && r->bad < hi) {
        atomic_store(&r->fail_lo, lo);
        atomic_store(&r->fail_hi, hi);
        return -EIO;
    }
    uint64_t s = 0;
    for (size_t i = lo; i < hi; i++)
        s += i;
    x->sum += s;
    x->count += hi - lo;
    x->min = lo < x->min ? lo : x->min;
    x->max = hi - 1 > x->max ? hi - 1 : x->max;
    atomic_fetch_add(&r->ok_sum, s);
    atomic_fetch_add(&r->ok_count, hi - lo);
    return 0;
}

static int acc_combine(void *into, const void *from, void *ctx)
{
    struct red *r = ctx;
    atomic_fetch_add(&r->combines, 1);
    struct acc *a = into;
    const struct acc *b = from;
    a->sum += b->sum;
    a->count += b->count;
    a->min = b->min < a->min ? b->min : a->min;
    a->max = b->max > a->max ? b->max : a->max;
    return 0;
}

static const weft_reducer acc_reducer = { sizeof(struct acc), acc_init,
                                          acc_body, acc_combine, NULL };

/* sum of i over [b, e) modulo 2^64: n (2b + n - 1) / 2, halving the
 * even factor before multiplying */
static uint64_t sum_range(uint64_t b, uint64_t e)
{
    uint64_t n = e - b;
    if (n % 2 == 0)
        return (n / 2) * (2 * b + n - 1);
    return n * (b + (n - 1) / 2);
}

static void reduce_case(weft_runtime *rt, size_t b, size_t e, int lim)
{
    char what[96];
    snprintf(what, sizeof what, "reduce [%zu, %zu), opts.workers %d", b, e,
             lim);
    struct red r = { .bad = SIZE_MAX };
    struct acc res;
    memset(&res, 0xab, sizeof res);
    weft_map_opts opts = map_opts(lim, 0, 0);
    weft_map_report rep;
    int rc = weft_map_reduce(rt, b, e, &acc_reducer, &r, &res, &opts, &rep);
    struct acc want = { sum_range(b, e), e - b, b < e ? b : UINT64_MAX,
                        b < e ? e - 1 : 0 };
    if (rc || memcmp(&res, &want, sizeof want))
        fail_msg("%s: returned %d, sum %llu count %llu min %llu max %llu; "
                 "want sum %llu", what, rc, (unsigned long long)res.sum,
                 (unsigned long long)res.count, (unsigned long long)res.min,
                 (unsigned long long)res.max, (unsigned long long)want.sum);
    /* result and every accumulator made by init, all merged into one */
    if (atomic_load(&r.inits) != atomic_load(&r.combines) + 1)
        fail_msg("%s: %d inits, %d combines", what, atomic_load(&r.inits),
                 atomic_load(&r.combines));
    if (rep.failed || rep.skipped || rep.first_index != SIZE_MAX)
        fail_msg("%s: report failed %zu skipped %zu", what, rep.failed,
                 rep.skipped);
}

static void test_reduce(void **s)
{
    (void)s;
    static const int rtw[] = { 1, 2, 3, 4 };
    static const int lims[] = { 0, 1, -2 };
    static const size_t ns[] = { 0, 1, 1000, 1000003 };
    static const size_t begins[] = { 0, 7, SIZE_MAX - 2000000 };
    for (size_t w = 0; w < NELEM(rtw); w++) {
        weft_runtime *rt = test_runtime(rtw[w], NULL);
        assert_non_null(rt);
        for (size_t l = 0; l < NELEM(lims); l++)
            for (size_t b = 0; b < NELEM(begins); b++)
                for (size_t i = 0; i < NELEM(ns); i++)
                    reduce_case(rt, begins[b], begins[b] + ns[i], lims[l]);
        weft_runtime_destroy(&rt);
    }
}

/* A failing body: the result holds exactly what the others reduced. */
static void test_reduce_error(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    for (unsigned flags = 0; flags <= WEFT_MAP_COLLECT; flags++) {
        struct red r = { .bad = 500000 };
        struct acc res;
        weft_map_opts opts = map_opts(0, flags, 0);
        weft_map_report rep;
        assert_int_equal(weft_map_reduce(rt, 0, 1000000, &acc_reducer, &r,
                                         &res, &opts, &rep), -EIO);
        /* a failing call fails every item of its range */
        assert_int_equal(rep.failed, atomic_load(&r.fail_hi) -
                                     atomic_load(&r.fail_lo));
        assert_int_equal(rep.first_status, -EIO);
        assert_int_equal(rep.first_index, atomic_load(&r.fail_lo));
        assert_int_equal(res.count, atomic_load(&r.ok_count));
        assert_int_equal(res.sum, atomic_load(&r.ok_sum));
        if (flags & WEFT_MAP_COLLECT) /* every other range was reduced */
            assert_int_equal(res.count, 1000000 - (atomic_load(&r.fail_hi) -
                                                   atomic_load(&r.fail_lo)));
        else
            assert_true(res.count < 1000000);
    }
    weft_runtime_destroy(&rt);
}

/* --- nested maps ---------------------------------------------------------- */

struct nest {
    weft_runtime *rt;
    struct hits h; /* 64 x 1000 inner items */
    _Atomic int bad;
};

static int nest_inner(size_t j, void *ctx)
{
    struct nest *n = ctx;
    hit(&n->h, j);
    return 0;
}

static int nest_outer(size_t i, const void *in, void *out, void *ctx)
{
    (void)in;
    struct nest *n = ctx;
    if (weft_current_runtime() != n->rt)
        atomic_fetch_add(&n->bad, 1);
    weft_map_report rep;
    int rc = weft_for(n->rt, i * 1000, i * 1000 + 1000, nest_inner, n, NULL,
                      &rep);
    if (rc || rep.done != 1000)
        return rc ? rc : -EPROTO;
    struct red r = { .bad = SIZE_MAX };
    struct acc a;
    rc = weft_map_reduce(n->rt, 0, i * 100 + 1, &acc_reducer, &r, &a, NULL,
                         NULL);
    *(uint64_t *)out = a.sum;
    return rc;
}

static void test_nested(void **s)
{
    (void)s;
    for (int w = 1; w <= 4; w *= 2) {
        struct nest n = { .rt = test_runtime(w, NULL), .h = hits_new(64000) };
        assert_non_null(n.rt);
        uint64_t out[64];
        weft_map_report rep;
        assert_int_equal(weft_map(n.rt, 64, NULL, 0, out, sizeof *out,
                                  nest_outer, &n, NULL, &rep), 0);
        assert_int_equal(atomic_load(&n.bad), 0);
        report_expect_clean(&rep, 64, "nested");
        hits_expect_once(&n.h, 64000, "nested weft_for");
        for (size_t i = 0; i < 64; i++)
            assert_int_equal(out[i], sum_range(0, i * 100 + 1));
        hits_free(&n.h);
        weft_runtime_destroy(&n.rt);
    }
}

/* --- a billion items in bounded memory ------------------------------------ */

static long maxrss_kib(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

static int trivial(size_t i, void *ctx)
{
    (void)i;
    (void)ctx;
    return 0;
}

static int sum_body(void *a, size_t lo, size_t hi, void *ctx)
{
    (void)ctx;
    uint64_t s = 0;
    for (size_t i = lo; i < hi; i++)
        s += i;
    *(uint64_t *)a += s;
    return 0;
}

static int u64_zero(void *a, void *ctx)
{
    (void)ctx;
    *(uint64_t *)a = 0;
    return 0;
}

static int u64_add(void *into, const void *from, void *ctx)
{
    (void)ctx;
    *(uint64_t *)into += *(const uint64_t *)from;
    return 0;
}

static void test_billion(void **s)
{
    (void)s;
    size_t n = test_scale() > 1 ? 100000000 : 1000000000;
    weft_runtime *rt = test_runtime(0, NULL);
    assert_non_null(rt);
    assert_int_equal(weft_for(rt, 0, 1000, trivial, NULL, NULL, NULL), 0);
    long before = maxrss_kib();
    weft_reducer r = { sizeof(uint64_t), u64_zero, sum_body, u64_add, NULL };
    uint64_t sum = 1;
    weft_map_report rep;
    int64_t t0 = now_ns();
    assert_int_equal(weft_map_reduce(rt, 0, n, &r, NULL, &sum, NULL, &rep), 0);
    int64_t t1 = now_ns();
    assert_int_equal(sum, sum_range(0, n));
    assert_int_equal(weft_for(rt, 0, n, trivial, NULL, NULL, &rep), 0);
    int64_t t2 = now_ns();
    report_expect_clean(&rep, n, "a billion weft_for items");
    long grew = maxrss_kib() - before;
    print_message("%zu items: reduce %.2f s, weft_for %.2f s (%zu batches, "
                  "%zu..%zu), max RSS grew %ld KiB\n", n, (t1 - t0) / 1e9,
                  (t2 - t1) / 1e9, rep.batches, rep.batch_mean, rep.batch_max,
                  grew);
    if (grew >= 16 * 1024)
        fail_msg("max RSS grew %ld KiB over %zu items", grew, n);
    weft_runtime_destroy(&rt);
}

/* --- options -------------------------------------------------------------- */

static void test_opts_default(void **s)
{
    (void)s;
    weft_map_opts o = weft_map_opts_default();
    assert_true(o.workers == 0 || o.workers == -1);
    assert_int_equal(o.flags, 0);
    assert_int_equal(o.batch, 0);
    assert_null(o.progress);
    assert_null(o.deliver);
    assert_null(o.cancel);
    assert_null(o.errors);
    assert_int_equal(o.max_errors, 0);
    assert_int_equal(o.timeout_ms, 0);
    assert_int_equal(o.max_retries, 0);
    assert_int_equal(o.ctx_size, 0);
}

static _Atomic int g_ran; /* calls made by a map that should not have run */

static int ran_map(size_t i, const void *in, void *out, void *ctx)
{
    (void)i, (void)in, (void)out, (void)ctx;
    atomic_fetch_add(&g_ran, 1);
    return 0;
}

static int ran_for(size_t i, void *ctx)
{
    (void)i, (void)ctx;
    atomic_fetch_add(&g_ran, 1);
    return 0;
}

static int ran_range(size_t lo, size_t hi, void *ctx)
{
    (void)lo, (void)hi, (void)ctx;
    atomic_fetch_add(&g_ran, 1);
    return 0;
}

static int ran_init(void *a, void *ctx)
{
    (void)ctx;
    *(uint64_t *)a = 0;
    atomic_fetch_add(&g_ran, 1);
    return 0;
}

static int ran_body(void *a, size_t lo, size_t hi, void *ctx)
{
    (void)a, (void)lo, (void)hi, (void)ctx;
    atomic_fetch_add(&g_ran, 1);
    return 0;
}

static int ran_combine(void *into, const void *from, void *ctx)
{
    (void)into, (void)from, (void)ctx;
    atomic_fetch_add(&g_ran, 1);
    return 0;
}

static void ran_deliver(size_t i, void *r, void *ctx)
{
    (void)i, (void)r, (void)ctx;
    atomic_fetch_add(&g_ran, 1);
}


/* weft_map and weft_for with options each call must refuse. */
static void bad_map_opts(weft_runtime *rt)
{
    uint64_t out[16];
    struct { weft_map_opts o; int rc; const char *what; } k[] = {
        { map_opts(0, 1u << 20, 0), -EINVAL, "unknown flag" },
        { map_opts(0, ~0u, 0), -EINVAL, "all flags" },
        { map_opts(-WEFT_MAX_WORKERS - 1, 0, 0), -EINVAL, "workers" },
        { map_opts(INT_MIN, 0, 0), -EINVAL, "workers INT_MIN" },
        { map_opts(0, 0, 0), -EINVAL, "errors NULL, max_errors 3" },
    };
    k[4].o.max_errors = 3;
    for (size_t i = 0; i < NELEM(k); i++) {
        int a = weft_map(rt, 16, NULL, 0, out, 8, ran_map, NULL, &k[i].o,
                         NULL);
        int b = weft_for(rt, 0, 16, ran_for, NULL, &k[i].o, NULL);
        if (a != k[i].rc || b != k[i].rc)
            fail_msg("%s: weft_map %d, weft_for %d, want %d", k[i].what, a,
                     b, k[i].rc);
    }
}

static void bad_deliver_opts(weft_runtime *rt)
{
    uint64_t out[16];
    weft_map_opts o = map_opts(0, 0, 0);
    o.deliver = ran_deliver;
    assert_int_equal(weft_map(rt, 16, NULL, 0, NULL, 0, ran_map, NULL, &o,
                              NULL), -EINVAL);
    assert_int_equal(weft_map(rt, 16, NULL, 0, out, 0, ran_map, NULL, &o,
                              NULL), -EINVAL);
    /* scratch of 256 results of 2^56 bytes: no such memory (the size
     * used to wrap to 0, and the item wrote past a malloc(0)) */
    weft_map_report rep = report_poisoned();
    int before = atomic_load(&g_ran);
    assert_int_equal(weft_map(rt, 1, NULL, 0, NULL, (size_t)1 << 56, ran_map,
                              NULL, &o, &rep), -ENOMEM);
    assert_int_equal(atomic_load(&g_ran), before);
    assert_int_equal(rep.skipped, 1);
}

static void bad_range_args(weft_runtime *rt)
{
    weft_map_opts iso = map_opts(0, WEFT_MAP_ISOLATED, 0);
    weft_map_opts flag = map_opts(0, 1u << 30, 0);
    assert_int_equal(weft_for(rt, 5, 4, ran_for, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(weft_for(NULL, 0, 4, ran_for, NULL, NULL, NULL),
                     -EINVAL);
    assert_int_equal(weft_for(rt, 0, 4, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(weft_for_range(rt, 5, 4, ran_range, NULL, NULL, NULL),
                     -EINVAL);
    assert_int_equal(weft_for_range(NULL, 0, 4, ran_range, NULL, NULL, NULL),
                     -EINVAL);
    assert_int_equal(weft_for_range(rt, 0, 4, NULL, NULL, NULL, NULL),
                     -EINVAL);
    assert_int_equal(weft_for_range(rt, 0, 4, ran_range, NULL, &flag, NULL),
                     -EINVAL);
    assert_int_equal(weft_for_range(rt, 0, 4, ran_range, NULL, &iso, NULL),
                     -ENOTSUP);
}

static void bad_reduce_args(weft_runtime *rt)
{
    uint64_t res;
    weft_map_opts iso = map_opts(0, WEFT_MAP_ISOLATED, 0);
    weft_reducer ok = { sizeof res, ran_init, ran_body, ran_combine, NULL };
    weft_reducer bad[4] = { ok, ok, ok, ok };
    bad[0].size = 0;
    bad[1].init = NULL;
    bad[2].body = NULL;
    bad[3].combine = NULL;
    for (int i = 0; i < 4; i++)
        if (weft_map_reduce(rt, 0, 4, &bad[i], NULL, &res, NULL, NULL) !=
            -EINVAL)
            fail_msg("reducer %d with a field missing was accepted", i);
    assert_int_equal(weft_map_reduce(NULL, 0, 4, &ok, NULL, &res, NULL, NULL),
                     -EINVAL);
    assert_int_equal(weft_map_reduce(rt, 0, 4, NULL, NULL, &res, NULL, NULL),
                     -EINVAL);
    assert_int_equal(weft_map_reduce(rt, 5, 4, &ok, NULL, &res, NULL, NULL),
                     -EINVAL);
    assert_int_equal(weft_map_reduce(rt, 0, 4, &ok, NULL, &res, &iso, NULL),
                     -ENOTSUP);
}

static void test_bad_options(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&g_ran, 0);
    uint64_t out[4];
    assert_int_equal(weft_map(NULL, 4, NULL, 0, out, 8, ran_map, NULL, NULL,
                              NULL), -EINVAL);
    assert_int_equal(weft_map(rt, 4, NULL, 0, out, 8, NULL, NULL, NULL,
                              NULL), -EINVAL);
    bad_map_opts(rt);
    bad_deliver_opts(rt);
    bad_range_args(rt);
    bad_reduce_args(rt);
    assert_int_equal(weft_map_isolated_reset(NULL), -EINVAL);
    assert_int_equal(atomic_load(&g_ran), 0);
    weft_runtime_destroy(&rt);
}

/* Options at the edges of what is allowed. */
static void test_edge_options(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_map_error errs[1];
    weft_map_opts k[] = {
        map_opts(-WEFT_MAX_WORKERS, 0, 0), map_opts(INT_MAX, 0, 0),
        map_opts(0, 0, SIZE_MAX), map_opts(0, WEFT_MAP_QUIET, 0),
        map_opts(0, WEFT_MAP_COLLECT | WEFT_MAP_QUIET, 1),
        map_opts(0, 0, 0),
    };
    k[5].errors = errs; /* a list with no room: allowed, nothing listed */
    for (size_t i = 0; i < NELEM(k); i++) {
        atomic_store(&g_ran, 0);
        weft_map_report rep;
        if (weft_for(rt, 3, 1003, ran_for, NULL, &k[i], &rep) != 0 ||
            atomic_load(&g_ran) != 1000)
            fail_msg("options %zu: refused or ran %d of 1000", i,
                     atomic_load(&g_ran));
        report_expect_clean(&rep, 1000, "edge options");
    }
    assert_int_equal(weft_map_isolated_reset(rt), 0); /* none started */
    assert_int_equal(weft_for(rt, 0, 100, ran_for, NULL, NULL, NULL), 0);
    weft_runtime_destroy(&rt);
}

/* --- zero and one item ---------------------------------------------------- */

static void test_zero_one(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    for (size_t n = 0; n < 2; n++) {
        atomic_store(&g_ran, 0);
        weft_map_report rep = report_poisoned();
        assert_int_equal(weft_map(rt, n, NULL, 0, NULL, 0, ran_map, NULL,
                                  NULL, &rep), 0);
        report_expect_clean(&rep, n, n ? "one item" : "no items");
        assert_true(rep.seconds >= 0);
        assert_int_equal(atomic_load(&g_ran), (int)n);
        assert_int_equal(weft_for(rt, 9, 9 + n, ran_for, NULL, NULL, &rep),
                         0);
        assert_int_equal(weft_for_range(rt, 9, 9 + n, ran_range, NULL, NULL,
                                        &rep), 0);
        assert_int_equal(rep.done, n);
        assert_int_equal(atomic_load(&g_ran), (int)(3 * n));
    }
    /* an empty reduce gives init's value */
    struct red r = { .bad = SIZE_MAX };
    struct acc res;
    memset(&res, 0xab, sizeof res);
    assert_int_equal(weft_map_reduce(rt, 5, 5, &acc_reducer, &r, &res, NULL,
                                     NULL), 0);
    assert_int_equal(res.sum, 0);
    assert_int_equal(res.count, 0);
    assert_int_equal(res.min, UINT64_MAX);
    assert_int_equal(res.max, 0);
    assert_int_equal(atomic_load(&r.inits), atomic_load(&r.combines) + 1);
    weft_runtime_destroy(&rt);
}

/* --- calls from several threads and from workers -------------------------- */

struct caller {
    weft_runtime *rt;
    int id, bad;
};

static int caller_item(size_t i, const void *in, void *out, void *ctx)
{
    *(uint64_t *)out = *(const uint64_t *)in * 3 + (uint64_t)(intptr_t)ctx;
    (void)i;
    return 0;
}

/* Maps of 20000 items on c->rt; counts the wrong results. */
static int caller_maps(struct caller *c, int rounds)
{
    enum { N = 20000 };
    uint64_t *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
    if (!in || !out) {
        free(in);
        free(out);
        return -ENOMEM;
    }
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < N; i++)
            in[i] = i + (uint64_t)r;
        int rc = weft_map(c->rt, N, in, sizeof *in, out, sizeof *out,
                          caller_item, (void *)(intptr_t)c->id, NULL, NULL);
        for (size_t i = 0; i < N; i++)
            c->bad += rc || out[i] != (i + (uint64_t)r) * 3 + (uint64_t)c->id;
    }
    free(in);
    free(out);
    return 0;
}

static void *caller_thread(void *a)
{
    struct caller *c = a;
    if (caller_maps(c, 20 / test_scale() + 1))
        c->bad++;
    return NULL;
}

static void test_many_callers(void **s)
{
    (void)s;
    for (int w = 1; w <= 2; w++) {
        weft_runtime *rt = test_runtime(w, NULL);
        assert_non_null(rt);
        struct caller c[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            c[i] = (struct caller){ rt, i + 1, 0 };
            assert_int_equal(pthread_create(&t[i], NULL, caller_thread,
                                            &c[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            if (c[i].bad)
                fail_msg("runtime of %d workers, thread %d: %d wrong results",
                         w, i, c[i].bad);
        }
        weft_runtime_destroy(&rt);
    }
}

/* From inside weft_run: on the worker's own runtime and on another. */
static int maps_from_worker(void *arg)
{
    struct caller *c = arg;
    return caller_maps(c, 3);
}

static void test_from_worker(void **s)
{
    (void)s;
    for (int w = 1; w <= 3; w++) {
        weft_runtime *rt = test_runtime(w, NULL);
        weft_runtime *other = test_runtime(2, NULL);
        assert_non_null(rt);
        assert_non_null(other);
        struct caller own = { rt, 5, 0 }, foreign = { other, 6, 0 };
        assert_int_equal(weft_run(rt, maps_from_worker, &own), 0);
        assert_int_equal(own.bad, 0);
        assert_int_equal(weft_run(rt, maps_from_worker, &foreign), 0);
        assert_int_equal(foreign.bad, 0);
        weft_runtime_destroy(&other);
        weft_runtime_destroy(&rt);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first, so that its high-water mark of memory starts low */
        cmocka_unit_test(test_billion),
        cmocka_unit_test(test_opts_default),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_edge_options),
        cmocka_unit_test(test_zero_one),
        cmocka_unit_test(test_exactly_once),
        cmocka_unit_test(test_workers_limit),
        cmocka_unit_test(test_for_range),
        cmocka_unit_test(test_strides),
        cmocka_unit_test(test_stride_zero),
        cmocka_unit_test(test_deliver),
        cmocka_unit_test(test_deliver_nested),
        cmocka_unit_test(test_deliver_no_wait),
        cmocka_unit_test(test_stop_first_serial),
        cmocka_unit_test(test_stop_first_parallel),
        cmocka_unit_test(test_stop_first_many),
        cmocka_unit_test(test_collect),
        cmocka_unit_test(test_range_error),
        cmocka_unit_test(test_range_report),
        cmocka_unit_test(test_cancel_by_item),
        cmocka_unit_test(test_cancel_by_thread),
        cmocka_unit_test(test_cancel_before),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_progress_cancelled),
        cmocka_unit_test(test_reduce),
        cmocka_unit_test(test_reduce_error),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_many_callers),
        cmocka_unit_test(test_from_worker),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
