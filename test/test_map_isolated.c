/* Isolated mode of weft_map and weft_for (WEFT_MAP_ISOLATED): items run
 * in forked worker processes. Results with input and output copied
 * (strides), ctx copied when ctx_size is set, other memory as of the fork;
 * items that crash (SIGSEGV, abort) or hang past timeout_ms are reported
 * with their index and signal while the rest of the map completes;
 * retries; processes reused across calls and replaced after
 * weft_map_isolated_reset(); cancellation; calls from several threads and
 * from a worker.
 *
 * What the children do is observed through MAP_SHARED memory (hits,
 * attempt counters, cancel flags) mapped before the runtime's first
 * isolated call, so the forked processes share it.
 *
 * The crash tests run under the sanitizers too (nothing is skipped): the
 * library gives its children default signal handlers, and crash_segv()
 * is exempt from UBSan's null check, so a crash still ends the child with
 * its signal; time limits are longer there (hang_limit_ms()). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_map_util.h"

#define NELEM(a) (sizeof(a) / sizeof *(a))

static weft_map_opts iso_opts(int workers, unsigned flags)
{
    return map_opts(workers, WEFT_MAP_ISOLATED | flags, 0);
}

/* The time limit of the tests with a hanging item: 200 ms, longer under
 * sanitizers, where a fresh process can be slow enough on its first items
 * to run past 200 ms of wall time. */
static unsigned hang_limit_ms(void)
{
    return 200u * (unsigned)test_scale();
}

/* --- results through shared memory ---------------------------------------- */

struct iso_in {
    int64_t v;
    char pad[24];
};

struct iso_out {
    int64_t y;
    int32_t pid;   /* the process that ran the item */
    uint32_t keep; /* never written by the item */
};

#define ISO_OUT_STRIDE (sizeof(struct iso_out) + 16) /* a gap after each */

/* y = v * v + *ctx (ctx: an int64_t, or NULL for 0); v = i with no
 * input. */
static int sq_item(size_t i, const void *in, void *out, void *ctx)
{
    const struct iso_in *x = in;
    int64_t v = x ? x->v : (int64_t)i;
    struct iso_out *o = out;
    if (!o)
        return 0;
    o->y = v * v + (ctx ? *(const int64_t *)ctx : 0);
    o->pid = getpid();
    return 0;
}

static struct iso_in *iso_inputs(size_t n)
{
    struct iso_in *in = calloc(n ? n : 1, sizeof *in);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i].v = (int64_t)i * 3 - 7;
    return in;
}

static char *iso_outputs(size_t n)
{
    return gapped_outputs(n, ISO_OUT_STRIDE, offsetof(struct iso_out, keep));
}

static const struct iso_out *iso_slot(const char *out, size_t i)
{
    return (const void *)(out + i * ISO_OUT_STRIDE);
}

/* Outputs of items [0, n) when input i held v(i) and ctx added add; every
 * item ran in another process; what the items do not write is kept. */
static void iso_expect(const char *out, size_t n, int with_in, int64_t add,
                       const char *what)
{
    for (size_t i = 0; i < n; i++) {
        const struct iso_out *o = iso_slot(out, i);
        int64_t v = with_in ? (int64_t)i * 3 - 7 : (int64_t)i;
        if (o->y != v * v + add || o->pid == getpid() || o->pid <= 0)
            fail_msg("%s: out[%zu] = %lld from pid %d, want %lld from a "
                     "child of %d", what, i, (long long)o->y, (int)o->pid,
                     (long long)(v * v + add), (int)getpid());
        if (o->keep != KEEP_WORD)
            fail_msg("%s: out[%zu].keep, never written by the item, became "
                     "%#x", what, i, o->keep);
        const unsigned char *gap = (const void *)(o + 1);
        for (size_t b = 0; b < ISO_OUT_STRIDE - sizeof *o; b++)
            if (gap[b] != GAP_BYTE)
                fail_msg("%s: byte %zu after out[%zu] was overwritten", what,
                         b, i);
    }
}

static void iso_results_case(weft_runtime *rt, size_t n, int with_in)
{
    char what[64];
    snprintf(what, sizeof what, "isolated, %zu items, input %s", n,
             with_in ? "strided" : "NULL");
    struct iso_in *in = iso_inputs(n);
    char *out = iso_outputs(n);
    weft_map_opts opts = iso_opts(2, 0);
    weft_map_report rep = report_poisoned();
    int rc = weft_map(rt, n, with_in ? in : NULL, sizeof *in, out,
                      ISO_OUT_STRIDE, sq_item, NULL, &opts, &rep);
    if (rc)
        fail_msg("%s: returned %d", what, rc);
    report_expect_clean(&rep, n, what);
    iso_expect(out, n, with_in, 0, what);
    free(in);
    free(out);
}

static void test_iso_results(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    static const size_t ns[] = { 0, 1, 2, 1000, 100003 };
    for (size_t i = 0; i < NELEM(ns); i++)
        for (int with_in = 0; with_in < 2; with_in++)
            iso_results_case(rt, ns[i], with_in);
    weft_runtime_destroy(&rt);
}

/* ctx_size set: each call copies ctx as it is at the call. */
struct big_ctx {
    int64_t add;
    char filler[8192];
};

static void test_iso_ctx_copy(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    size_t n = 500;
    struct big_ctx *ctx = calloc(1, sizeof *ctx);
    char *out = iso_outputs(n);
    assert_non_null(ctx);
    weft_map_opts opts = iso_opts(2, 0);
    opts.ctx_size = sizeof *ctx;
    static const int64_t adds[] = { 3, 5, -11 };
    for (size_t k = 0; k < NELEM(adds); k++) {
        ctx->add = adds[k];
        weft_map_report rep;
        assert_int_equal(weft_map(rt, n, NULL, 0, out, ISO_OUT_STRIDE,
                                  sq_item, ctx, &opts, &rep), 0);
        report_expect_clean(&rep, n, "ctx copied");
        iso_expect(out, n, 0, adds[k], "ctx copied");
    }
    free(ctx);
    free(out);
    weft_runtime_destroy(&rt);
}

/* A ctx over the 64 MiB isolated maps accept: refused before anything is
 * copied or run, and the pool still works afterwards. */
static void test_iso_ctx_too_big(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    size_t big = (64u << 20) + 1, n = 50;
    char *ctx = calloc(1, big);
    char *out = iso_outputs(n);
    assert_non_null(ctx);
    weft_map_opts opts = iso_opts(2, 0);
    opts.ctx_size = big;
    weft_map_report rep;
    assert_int_equal(weft_map(rt, n, NULL, 0, out, ISO_OUT_STRIDE, sq_item,
                              ctx, &opts, &rep), -E2BIG);
    assert_int_equal(rep.done, 0);
    struct big_ctx small = { .add = 7 };
    opts.ctx_size = sizeof small;
    assert_int_equal(weft_map(rt, n, NULL, 0, out, ISO_OUT_STRIDE, sq_item,
                              &small, &opts, &rep), 0);
    iso_expect(out, n, 0, 7, "after a refused ctx");
    free(ctx);
    free(out);
    weft_runtime_destroy(&rt);
}

static int ctx_null_for(size_t i, void *ctx)
{
    (void)i, (void)ctx;
    return 0;
}

/* ctx_size set with no ctx to copy is refused (-EINVAL) before anything
 * runs, from weft_map and weft_for: it used to be copied from NULL,
 * which crashed the caller, the process isolated mode is there to keep
 * alive. */
static void test_iso_ctx_null(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    size_t n = 50;
    char *out = iso_outputs(n);
    weft_map_opts opts = iso_opts(2, 0);
    opts.ctx_size = sizeof(int64_t);
    weft_map_report rep = report_poisoned();
    assert_int_equal(weft_map(rt, n, NULL, 0, out, ISO_OUT_STRIDE, sq_item,
                              NULL, &opts, &rep), -EINVAL);
    assert_int_equal(weft_for(rt, 0, n, ctx_null_for, NULL, &opts, &rep),
                     -EINVAL);
    int64_t add = 4;
    assert_int_equal(weft_map(rt, n, NULL, 0, out, ISO_OUT_STRIDE, sq_item,
                              &add, &opts, &rep), 0);
    iso_expect(out, n, 0, 4, "after a NULL ctx");
    free(out);
    weft_runtime_destroy(&rt);
}

/* Stride 0 gives an item no size, so isolated mode (which copies items)
 * refuses it for an input or output it has, before anything runs: it used
 * to ask the store for an empty object, whose data is the next block's
 * header, read heap metadata as input and let the children write over
 * it, so later isolated maps failed, even after a reset. Strides past the
 * store are -E2BIG (their sum must not wrap to a small size), but only
 * those of an input or output the map has. */
static void test_iso_stride0(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    size_t n = 100;
    struct iso_in one = { .v = 5 };
    char *out = iso_outputs(n);
    struct iso_out same;
    weft_map_opts opts = iso_opts(2, 0);
    weft_map_report rep;
    assert_int_equal(weft_map(rt, n, &one, 0, out, ISO_OUT_STRIDE, sq_item,
                              NULL, &opts, &rep), -EINVAL);
    assert_int_equal(weft_map(rt, n, NULL, 0, &same, 0, sq_item, NULL, &opts,
                              &rep), -EINVAL);
    assert_int_equal(weft_map(rt, n, &one, 0, &same, 0, sq_item, NULL, &opts,
                              &rep), -EINVAL);
    size_t huge = SIZE_MAX / 2 + 1; /* two of them sum to 0 */
    assert_int_equal(weft_map(rt, n, &one, huge, out, huge, sq_item, NULL,
                              &opts, &rep), -E2BIG);
    assert_int_equal(weft_map_isolated_reset(rt), 0);
    for (int k = 0; k < 2; k++)
        iso_results_case(rt, n, k);
    /* no input and no output: strides do not matter */
    assert_int_equal(weft_map(rt, n, NULL, 0, NULL, 0, sq_item, NULL, &opts,
                              &rep), 0);
    report_expect_clean(&rep, n, "isolated, no input, no output");
    /* not even one past the store: the stride of an input or output the
     * map has not stores nothing (it used to be -E2BIG) */
    assert_int_equal(weft_map(rt, n, NULL, huge, NULL, huge, sq_item, NULL,
                              &opts, &rep), 0);
    report_expect_clean(&rep, n, "isolated, no input, no output, huge");
    free(out);
    out = iso_outputs(n);
    assert_int_equal(weft_map(rt, n, NULL, huge, out, ISO_OUT_STRIDE,
                              sq_item, NULL, &opts, &rep), 0);
    report_expect_clean(&rep, n, "isolated, no input, huge in_stride");
    iso_expect(out, n, 0, 0, "isolated, no input, huge in_stride");
    free(out);
    weft_runtime_destroy(&rt);
}

/* Progress in isolated mode comes from the calling thread: calls never
 * overlap, done never goes back, and the last call reports every item. */
struct iso_prog {
    pthread_t caller;
    int calls, wrong_thread;
    size_t last_done, total;
    int went_back;
};

static void iso_progress(const weft_map_progress *p, void *ctx)
{
    struct iso_prog *g = ctx;
    g->calls++;
    g->wrong_thread += !pthread_equal(pthread_self(), g->caller);
    g->went_back += p->done < g->last_done;
    g->last_done = p->done;
    g->total = p->total;
}

static int slow_map_item(size_t i, const void *in, void *out, void *ctx)
{
    (void)in, (void)ctx;
    struct timespec ts = { 0, 2000000 }; /* 2 ms */
    nanosleep(&ts, NULL);
    memcpy(out, &i, sizeof i);
    return 0;
}

static void test_iso_progress(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    size_t n = 200; /* 200 x 2 ms on 2 processes: about 200 ms */
    char *out = iso_outputs(n);
    struct iso_prog g = { .caller = pthread_self() };
    weft_map_opts opts = iso_opts(2, 0);
    opts.progress = iso_progress;
    opts.progress_ctx = &g;
    opts.progress_ms = 20;
    assert_int_equal(weft_map(rt, n, NULL, 0, out, ISO_OUT_STRIDE, slow_map_item,
                              NULL, &opts, NULL), 0);
    if (g.calls < 2 || g.wrong_thread || g.went_back || g.last_done != n ||
        g.total != n)
        fail_msg("progress: %d calls, %d from another thread, %d went back, "
                 "last %zu of %zu (want %zu)", g.calls, g.wrong_thread,
                 g.went_back, g.last_done, g.total, n);
    free(out);
    weft_runtime_destroy(&rt);
}

/* Delivery in isolated mode: every item that succeeded exactly once, with
 * its own result, from the calling thread; with an output array and
 * without one (results straight from the store). */
struct iso_dlv {
    pthread_t caller;
    unsigned char *seen; /* per index */
    int wrong_thread, wrong_value;
};

static int sq_or_fail(size_t i, const void *in, void *out, void *ctx)
{
    (void)in, (void)ctx;
    if (i % 10 == 3)
        return -EIO;
    uint64_t v = (uint64_t)i * i;
    memcpy(out, &v, sizeof v);
    return 0;
}

static void iso_deliver(size_t i, void *result, void *ctx)
{
    struct iso_dlv *d = ctx;
    uint64_t v;
    memcpy(&v, result, sizeof v);
    d->seen[i]++;
    d->wrong_thread += !pthread_equal(pthread_self(), d->caller);
    d->wrong_value += v != (uint64_t)i * i;
}

static void test_iso_deliver(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    size_t n = 1000;
    uint64_t *out = calloc(n, sizeof *out);
    struct iso_dlv d = { .caller = pthread_self(), .seen = calloc(n, 1) };
    assert_non_null(out);
    assert_non_null(d.seen);
    for (int with_out = 0; with_out < 2; with_out++) {
        memset(d.seen, 0, n);
        weft_map_opts opts = iso_opts(2, WEFT_MAP_COLLECT);
        opts.deliver = iso_deliver;
        opts.deliver_ctx = &d;
        weft_map_report rep;
        assert_int_equal(weft_map(rt, n, NULL, 0, with_out ? out : NULL,
                                  sizeof *out, sq_or_fail, NULL, &opts,
                                  &rep), -EIO);
        assert_int_equal(rep.failed, n / 10);
        for (size_t i = 0; i < n; i++)
            if (d.seen[i] != (i % 10 != 3))
                fail_msg("with_out %d: item %zu delivered %d times",
                         with_out, i, d.seen[i]);
    }
    if (d.wrong_thread || d.wrong_value)
        fail_msg("%d deliveries from another thread, %d wrong values",
                 d.wrong_thread, d.wrong_value);
    free(d.seen);
    free(out);
    weft_runtime_destroy(&rt);
}

/* The distinct pids found in outputs [0, n), at most max of them;
 * returns how many (max + 1 when there were more). */
static size_t iso_pids(const char *out, size_t n, pid_t *pids, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        pid_t p = iso_slot(out, i)->pid;
        size_t j = 0;
        while (j < k && pids[j] != p)
            j++;
        if (j < k)
            continue;
        if (k == max)
            return max + 1;
        pids[k++] = p;
    }
    return k;
}

static int pid_in(pid_t p, const pid_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == p)
            return 1;
    return 0;
}

/* Runs n items on at most 2 processes and adds their pids to set (of
 * *nset); ctx_size 0, ctx a pointer into the memory as of the fork. */
static void iso_run_pids(weft_runtime *rt, const int64_t *ctx, int64_t add,
                         pid_t *set, size_t *nset, const char *what)
{
    size_t n = 2000;
    char *out = iso_outputs(n);
    weft_map_opts opts = iso_opts(2, 0);
    assert_int_equal(weft_map(rt, n, NULL, 0, out, ISO_OUT_STRIDE, sq_item,
                              (void *)ctx, &opts, NULL), 0);
    iso_expect(out, n, 0, add, what);
    pid_t pids[3];
    size_t k = iso_pids(out, n, pids, 2);
    if (k > 2)
        fail_msg("%s: more than 2 processes ran items", what);
    for (size_t i = 0; i < k; i++)
        if (!pid_in(pids[i], set, *nset))
            set[(*nset)++] = pids[i];
    free(out);
}

/* A process that the runtime stopped is gone and reaped. */
static void expect_gone(const pid_t *pids, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (kill(pids[i], 0) == 0 || errno != ESRCH)
            fail_msg("%s: worker process %d still exists (or is a zombie)",
                     what, (int)pids[i]);
}

static int64_t g_snap; /* read by items through a plain ctx pointer */

/* Processes are reused across calls and see memory as of their fork;
 * after weft_map_isolated_reset() fresh ones see it as it is now. */
static void test_iso_reuse(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    pid_t first[8], later[8];
    size_t nfirst = 0, nlater = 0;
    g_snap = 7;
    iso_run_pids(rt, &g_snap, 7, first, &nfirst, "first call");
    g_snap = 8; /* the processes keep seeing 7 */
    iso_run_pids(rt, &g_snap, 7, first, &nfirst, "second call");
    if (nfirst > 2)
        fail_msg("two calls used %zu processes, not reused", nfirst);
    assert_int_equal(weft_map_isolated_reset(rt), 0);
    expect_gone(first, nfirst, "after reset");
    iso_run_pids(rt, &g_snap, 8, later, &nlater, "after reset");
    for (size_t i = 0; i < nlater; i++)
        if (pid_in(later[i], first, nfirst))
            fail_msg("after reset, pid %d ran items again", (int)later[i]);
    assert_int_equal(weft_map_isolated_reset(rt), 0);
    assert_int_equal(weft_map_isolated_reset(rt), 0); /* none: no-op */
    iso_run_pids(rt, &g_snap, 8, later, &nlater, "after two resets");
    weft_runtime_destroy(&rt);
    expect_gone(later, nlater, "after destroy");
}

/* A worker process that dies while idle (between two calls here; the OOM
 * killer, a timer or a thread an item left behind can do it any time) is
 * replaced before it is handed a chunk, and no item is blamed for it. It
 * used to be handed the next call's first chunk all the same, whose first
 * item then failed with -ECHILD (signal SIGKILL) without ever running,
 * which stopped the map. */
static void test_iso_idle_death(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    pid_t first[8], later[8];
    size_t nfirst = 0, nlater = 0;
    g_snap = 5;
    iso_run_pids(rt, &g_snap, 5, first, &nfirst, "before the kill");
    assert_true(nfirst > 0);
    for (size_t i = 0; i < nfirst; i++) {
        /* dead, not reaped (that is the runtime's to do): its pidfd is
         * readable */
        int fd = (int)syscall(SYS_pidfd_open, first[i], 0);
        assert_true(fd >= 0);
        assert_int_equal(kill(first[i], SIGKILL), 0);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        assert_int_equal(poll(&p, 1, -1), 1);
        close(fd);
    }
    iso_run_pids(rt, &g_snap, 5, later, &nlater, "after the kill");
    for (size_t i = 0; i < nlater; i++)
        if (pid_in(later[i], first, nfirst))
            fail_msg("pid %d, killed, ran items", (int)later[i]);
    weft_runtime_destroy(&rt);
}

/* The worker processes keep none of the caller's descriptors but stdin,
 * stdout and stderr: a pipe whose only write end the caller closes is at
 * EOF at once, not when the processes end (at reset or destroy). */
static void test_iso_fds_closed(void **s)
{
    (void)s;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_map_opts opts = iso_opts(2, 0);
    weft_map_report rep;
    assert_int_equal(weft_map(rt, 8, NULL, 0, NULL, 0, sq_item, NULL, &opts,
                              &rep), 0);
    close(pfd[1]);
    struct pollfd p = { .fd = pfd[0], .events = POLLIN };
    assert_int_equal(poll(&p, 1, 0), 1);
    assert_true(p.revents & POLLHUP);
    /* the processes still work */
    assert_int_equal(weft_map(rt, 8, NULL, 0, NULL, 0, sq_item, NULL, &opts,
                              &rep), 0);
    close(pfd[0]);
    weft_runtime_destroy(&rt);
}

/* An item of an isolated map that calls weft on the caller's runtime gets
 * -ENOTSUP at once: the runtime's workers are threads of the caller, not
 * of the worker process. It used to wait for ever (until timeout_ms, set
 * here so that the old behaviour fails rather than hangs). */
static weft_runtime *g_iso_rt;

static int nop_for(size_t i, void *ctx)
{
    (void)i, (void)ctx;
    return 0;
}

static int nop_root(void *arg)
{
    (void)arg;
    return 0;
}

static int nested_item(size_t i, void *ctx)
{
    (void)ctx;
    weft_map_opts iso = iso_opts(1, 0);
    if (i % 3 == 0)
        return weft_for(g_iso_rt, 0, 10, nop_for, NULL, NULL, NULL);
    if (i % 3 == 1)
        return weft_run(g_iso_rt, nop_root, NULL) == -ENOTSUP ? -ENOTSUP
                                                           : -EPROTO;
    return weft_for(g_iso_rt, 0, 10, nop_for, NULL, &iso, NULL);
}

static int nested_iso_all(void *arg)
{
    weft_map_opts opts = iso_opts(2, WEFT_MAP_COLLECT);
    opts.timeout_ms = hang_limit_ms();
    weft_map_error errs[6];
    opts.errors = errs;
    opts.max_errors = NELEM(errs);
    weft_map_report rep;
    int rc = weft_for(g_iso_rt, 0, 6, nested_item, NULL, &opts, &rep);
    if (rc != -ENOTSUP || rep.failed != 6 || rep.nerrors != 6)
        return rc ? rc : -EPROTO;
    for (size_t k = 0; k < 6; k++)
        if (errs[k].status != -ENOTSUP)
            return errs[k].status;
    return *(int *)arg = 1, 0;
}

static void test_iso_nested_refused(void **s)
{
    (void)s;
    g_iso_rt = test_runtime(2, NULL);
    assert_non_null(g_iso_rt);
    int ok = 0;
    assert_int_equal(nested_iso_all(&ok), 0); /* from this thread */
    assert_int_equal(weft_map_isolated_reset(g_iso_rt), 0);
    assert_int_equal(weft_run(g_iso_rt, nested_iso_all, &ok), 0); /* worker */
    assert_int_equal(ok, 1);
    weft_runtime_destroy(&g_iso_rt);
}

/* --- crashes, hangs, errors ----------------------------------------------- */

/* What item i of a crash test does, and what counts its runs. */
struct crashy {
    struct hits h;      /* runs of each item (shared) */
    size_t segv, abrt, hang, eio; /* indexes (SIZE_MAX: none) */
    size_t once;        /* crashes on its first run only */
    size_t hang_once;   /* hangs on its first run only */
};

/* Not checked by UBSan (which would end the process itself, with no
 * signal): the write must reach the MMU. */
__attribute__((no_sanitize("undefined"))) static void crash_segv(void)
{
    /* both volatile: the compiler may neither see that p is NULL nor drop
     * the store (GCC 12 drops a plain store through a volatile NULL) */
    volatile int *volatile p = NULL;
    *p = 1;
}

static void hang(void)
{
    /* long past any timeout of these tests, short enough that a missing
     * time limit fails the test (-EDEADLK) rather than hanging it */
    sleep_ns(5000 * MS);
}

static int crashy_run(const struct crashy *c, size_t i, unsigned run)
{
    if (i == c->segv || (i == c->once && run == 0))
        crash_segv();
    if (i == c->abrt)
        abort();
    if (i == c->hang || (i == c->hang_once && run == 0)) {
        hang();
        return -EDEADLK;
    }
    if (i == c->eio)
        return -EIO;
    return 0;
}

static int crashy_item(size_t i, const void *in, void *out, void *ctx)
{
    (void)in;
    const struct crashy *c = ctx;
    unsigned run = atomic_fetch_add(&c->h.c[i], 1);
    int rc = crashy_run(c, i, run);
    if (out)
        *(int64_t *)out = (int64_t)i * 11;
    return rc;
}

static struct crashy crashy_new(size_t n)
{
    return (struct crashy){ .h = hits_new(n), .segv = SIZE_MAX,
                            .abrt = SIZE_MAX, .hang = SIZE_MAX,
                            .eio = SIZE_MAX, .once = SIZE_MAX,
                            .hang_once = SIZE_MAX };
}

/* The report's counts and listed errors, for a failure message. */
static void report_print(const weft_map_report *r, const weft_map_error *e,
                         const char *what)
{
    print_message("%s: done %zu failed %zu skipped %zu, first %zu (status "
                  "%d signal %d), listed:", what, r->done, r->failed,
                  r->skipped, r->first_index, r->first_status,
                  r->first_signal);
    for (size_t k = 0; k < r->nerrors; k++)
        print_message(" [%zu %d %d]", e[k].index, e[k].status, e[k].signal);
    print_message("\n");
}

/* The listed error for item i: its status and signal. */
static void listed_expect(const weft_map_error *e, size_t ne, size_t i,
                          int status, int sig)
{
    for (size_t k = 0; k < ne; k++)
        if (e[k].index == i) {
            if (e[k].status != status || e[k].signal != sig)
                fail_msg("item %zu: listed status %d signal %d, want %d and "
                         "%d", i, e[k].status, e[k].signal, status, sig);
            return;
        }
    fail_msg("item %zu (status %d, signal %d) is not listed", i, status, sig);
}

static void test_iso_crashes_collect(void **s)
{
    (void)s;
    size_t n = 40;
    struct crashy c = crashy_new(n);
    c.segv = 3, c.abrt = 7, c.hang = 11, c.eio = 17;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    int64_t out[40];
    weft_map_error errs[8];
    weft_map_opts opts = iso_opts(2, WEFT_MAP_COLLECT);
    opts.timeout_ms = hang_limit_ms();
    opts.errors = errs;
    opts.max_errors = NELEM(errs);
    weft_map_report rep;
    int64_t t0 = now_ns();
    int rc = weft_map(rt, n, NULL, 0, out, sizeof *out, crashy_item, &c,
                      &opts, &rep);
    int64_t ms = (now_ns() - t0) / MS;
    if (rep.failed != 4)
        report_print(&rep, errs, "crashes, collecting");
    assert_int_equal(rep.failed, 4);
    assert_int_equal(rep.done, n - 4);
    assert_int_equal(rep.skipped, 0);
    assert_int_equal(rep.nerrors, 4);
    assert_int_equal(rc, rep.first_status);
    listed_expect(errs, rep.nerrors, 3, -ECHILD, SIGSEGV);
    listed_expect(errs, rep.nerrors, 7, -ECHILD, SIGABRT);
    listed_expect(errs, rep.nerrors, 11, -ETIMEDOUT, SIGKILL);
    listed_expect(errs, rep.nerrors, 17, -EIO, 0);
    hits_expect_once(&c.h, n, "crashes, collecting");
    for (size_t i = 0; i < n; i++)
        if (i != 3 && i != 7 && i != 11 && out[i] != (int64_t)i * 11)
            fail_msg("out[%zu] = %lld, want %lld", i, (long long)out[i],
                     (long long)i * 11);
    if (ms > 4000)
        fail_msg("took %lld ms: the %u ms time limit did not cut the "
                 "hanging item short", (long long)ms, hang_limit_ms());
    hits_free(&c.h);
    weft_runtime_destroy(&rt);
}

/* --- an item that calls exit() ------------------------------------------ */

/* This test process's atexit handler: in any other process (a worker
 * process forked from this one, which inherited it) it leaves a mark. */
static pid_t exit_owner;
static char exit_mark[64];

static void exit_handler(void)
{
    if (getpid() == exit_owner || !exit_mark[0])
        return;
    FILE *f = fopen(exit_mark, "w");
    if (f)
        fclose(f);
}

static int exiting_item(size_t i, const void *in, void *out, void *ctx)
{
    (void)in;
    (void)ctx;
    if (i == 5)
        exit(7);
    *(int64_t *)out = (int64_t)i * 11;
    return 0;
}

/* The item's exit() ends its process as a crash would (-ECHILD, signal 0:
 * it exited), and neither runs the caller's atexit handlers there nor
 * writes the caller's unflushed stdio buffer a second time. Before the
 * fix the handler ran in the worker process (the mark existed) and the
 * buffered line came out twice. */
static void test_iso_item_exits(void **s)
{
    (void)s;
    exit_owner = getpid();
    snprintf(exit_mark, sizeof exit_mark, "/tmp/weft-test-exit-%d",
             (int)getpid());
    unlink(exit_mark);
    static bool registered;
    if (!registered)
        assert_int_equal(atexit(exit_handler), 0);
    registered = true;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    /* stdout buffered into a pipe, one unflushed line in it: a child that
     * flushes its copy writes the line once more */
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(pipefd[1], STDOUT_FILENO) >= 0);
    close(pipefd[1]);
    static char buf[BUFSIZ];
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    printf("unflushed\n");

    size_t n = 12;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    int64_t out[12];
    weft_map_error errs[4];
    weft_map_opts opts = iso_opts(2, WEFT_MAP_COLLECT);
    opts.errors = errs;
    opts.max_errors = NELEM(errs);
    weft_map_report rep;
    int rc = weft_map(rt, n, NULL, 0, out, sizeof *out, exiting_item, NULL,
                      &opts, &rep);
    weft_runtime_destroy(&rt); /* its processes are gone after this */

    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    setvbuf(stdout, NULL, _IOLBF, 0);
    char got[256];
    ssize_t len = read(pipefd[0], got, sizeof got - 1);
    close(pipefd[0]);
    got[len > 0 ? len : 0] = 0;
    bool marked = access(exit_mark, F_OK) == 0;
    unlink(exit_mark);

    if (rep.failed != 1)
        report_print(&rep, errs, "an item exits");
    assert_int_equal(rep.failed, 1);
    assert_int_equal(rep.done, n - 1);
    assert_int_equal(rc, -ECHILD);
    listed_expect(errs, rep.nerrors, 5, -ECHILD, 0);
    for (size_t i = 0; i < n; i++)
        if (i != 5 && out[i] != (int64_t)i * 11)
            fail_msg("out[%zu] = %lld, want %lld", i, (long long)out[i],
                     (long long)i * 11);
    if (marked)
        fail_msg("the caller's atexit handler ran in the worker process");
    if (strcmp(got, "unflushed\n") != 0)
        fail_msg("the caller's stdout carried \"%s\", want the line once",
                 got);
}

/* One process: after the hanging item is killed, the items after it run
 * in the process that replaces it, with time limits of their own. */
static void test_iso_timeout_then_more(void **s)
{
    (void)s;
    size_t n = 10;
    struct crashy c = crashy_new(n);
    c.hang = 1;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_map_error errs[10];
    weft_map_opts opts = iso_opts(1, WEFT_MAP_COLLECT);
    opts.timeout_ms = hang_limit_ms();
    opts.errors = errs;
    opts.max_errors = NELEM(errs);
    weft_map_report rep;
    int rc = weft_map(rt, n, NULL, 0, NULL, 0, crashy_item, &c, &opts, &rep);
    if (rep.failed != 1)
        report_print(&rep, errs, "one process, item 1 hangs");
    assert_int_equal(rc, -ETIMEDOUT);
    assert_int_equal(rep.failed, 1);
    assert_int_equal(rep.done, n - 1);
    listed_expect(errs, rep.nerrors, 1, -ETIMEDOUT, SIGKILL);
    hits_expect_once(&c.h, n, "one process, item 1 hangs");
    hits_free(&c.h);
    weft_runtime_destroy(&rt);
}

/* A time limit only ever stops items that run past it: many short calls
 * of quick items with a limit set, fresh and reused processes, none may
 * fail. */
static void test_iso_timeout_quick_items(void **s)
{
    (void)s;
    size_t n = 2000;
    struct crashy c = crashy_new(n);
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_map_error errs[4];
    weft_map_opts opts = iso_opts(2, WEFT_MAP_COLLECT);
    opts.timeout_ms = hang_limit_ms();
    opts.errors = errs;
    opts.max_errors = NELEM(errs);
    for (int round = 0; round < 60; round++) {
        weft_map_report rep;
        int rc = weft_map(rt, n, NULL, 0, NULL, 0, crashy_item, &c, &opts,
                          &rep);
        if (rc || rep.failed) {
            report_print(&rep, errs, "quick items");
            fail_msg("round %d: returned %d, %zu quick items failed under a "
                     "%u ms limit", round, rc, rep.failed, opts.timeout_ms);
        }
        if (round % 2)
            assert_int_equal(weft_map_isolated_reset(rt), 0);
    }
    hits_free(&c.h);
    weft_runtime_destroy(&rt);
}

/* lib/map/isolated.c's test hooks: in a child before a chunk's first
 * item, and in the parent between claiming a process for its time limit
 * and the kill. */
extern void (*weft__iso_chunk_hook)(size_t lo);
extern void (*weft__iso_kill_hook)(void);

static _Atomic int *g_stall; /* shared: stall_chunk0 armed */

static void stall_chunk0(size_t lo)
{
    if (lo == 0 && atomic_load(g_stall))
        hang(); /* before item 0: the item itself never starts */
}

static int count_item(size_t i, void *ctx)
{
    hit(ctx, i);
    return 0;
}

/* The time limit covers a process that holds a chunk and never gets to
 * its first item (here: stuck before it reads its chunk): timed from the
 * chunk's sending, it is killed as a hanging item is, and the item it
 * holds up (the chunk's first) is reported. The processes are started by
 * a first map, so the one that stalls is not a fresh one (which has
 * longer to start, see START_NS in isolated.c). */
static void test_iso_timeout_before_first_item(void **s)
{
    (void)s;
    size_t n = 8;
    struct hits h = hits_new(n);
    g_stall = shared_alloc(sizeof *g_stall);
    assert_non_null(g_stall);
    weft__iso_chunk_hook = stall_chunk0; /* before the runtime forks */
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_map_error errs[4];
    weft_map_opts opts = iso_opts(2, WEFT_MAP_COLLECT);
    opts.timeout_ms = hang_limit_ms();
    opts.errors = errs;
    opts.max_errors = NELEM(errs);
    weft_map_report rep;
    assert_int_equal(weft_for(rt, 0, n, nop_for, NULL, &opts, &rep), 0);
    atomic_store(g_stall, 1);
    int rc = weft_for(rt, 0, n, count_item, &h, &opts, &rep);
    weft_runtime_destroy(&rt);
    weft__iso_chunk_hook = NULL;
    shared_free(g_stall, sizeof *g_stall);
    if (rep.failed != 1)
        report_print(&rep, errs, "stuck before the first item");
    assert_int_equal(rc, -ETIMEDOUT);
    assert_int_equal(rep.failed, 1);
    assert_int_equal(rep.done, n - 1);
    listed_expect(errs, rep.nerrors, 0, -ETIMEDOUT, SIGKILL);
    assert_int_equal(hits_of(&h, 0), 0);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(hits_of(&h, i), 1);
    hits_free(&h);
}

/* An item that ends just as the parent decides it ran out of time: the
 * kill must blame it, the item that ran past the limit, and not the one
 * its process went on to (nor let the chunk end as if nothing happened).
 * The kill hook holds the parent between its decision and the kill, lets
 * item RACE_AT end, and waits (a bounded while) for the next item to
 * start: a process claimed for its limit must not start it. */
#define RACE_AT 5
struct race {
    struct hits h;
    _Atomic int may_end, next_started;
};
static struct race *g_race;

static int race_item(size_t i, void *ctx)
{
    struct race *r = ctx;
    hit(&r->h, i);
    if (i == RACE_AT)
        while (!atomic_load(&r->may_end))
            sleep_ns(MS / 10);
    if (i == RACE_AT + 1)
        atomic_store(&r->next_started, 1);
    return 0;
}

static void race_kill_hook(void)
{
    atomic_store(&g_race->may_end, 1);
    for (int k = 0; k < 200 && !atomic_load(&g_race->next_started); k++)
        sleep_ns(MS);
}

static void test_iso_timeout_blames_running(void **s)
{
    (void)s;
    size_t n = 16;
    struct race *r = shared_alloc(sizeof *r);
    assert_non_null(r);
    r->h = hits_new(n);
    g_race = r;
    weft__iso_kill_hook = race_kill_hook;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_map_error errs[4];
    weft_map_opts opts = iso_opts(1, WEFT_MAP_COLLECT);
    opts.timeout_ms = hang_limit_ms();
    opts.errors = errs;
    opts.max_errors = NELEM(errs);
    weft_map_report rep;
    int rc = weft_for(rt, 0, n, race_item, r, &opts, &rep);
    weft_runtime_destroy(&rt);
    weft__iso_kill_hook = NULL;
    if (rep.failed != 1 || rep.first_index != RACE_AT)
        report_print(&rep, errs, "an item ending as it is killed");
    assert_int_equal(rc, -ETIMEDOUT);
    assert_int_equal(rep.failed, 1);
    assert_int_equal(rep.done, n - 1);
    listed_expect(errs, rep.nerrors, RACE_AT, -ETIMEDOUT, SIGKILL);
    hits_expect_once(&r->h, n, "an item ending as it is killed");
    hits_free(&r->h);
    shared_free(r, sizeof *r);
}

/* A delivery or progress callback (on the calling thread, under the
 * isolated pool's lock) that starts another isolated map on the same
 * runtime gets -EDEADLK instead of waiting for itself; on another
 * runtime it works. */
struct reenter {
    weft_runtime *rt, *other;
    int same_rc, other_rc;
    int calls;
};

static int i64_item(size_t i, const void *in, void *out, void *ctx)
{
    (void)in, (void)ctx;
    *(int64_t *)out = (int64_t)i;
    return 0;
}

static void reenter_try(struct reenter *x)
{
    if (x->calls++)
        return;
    weft_map_opts o = iso_opts(1, 0);
    x->same_rc = weft_for(x->rt, 0, 4, nop_for, NULL, &o, NULL);
    x->other_rc = weft_for(x->other, 0, 4, nop_for, NULL, &o, NULL);
}

static void reenter_deliver(size_t i, void *result, void *ctx)
{
    (void)i;
    (void)result;
    reenter_try(ctx);
}

static void reenter_progress(const weft_map_progress *p, void *ctx)
{
    (void)p;
    reenter_try(ctx);
}

static void test_iso_callback_reenters(void **s)
{
    (void)s;
    struct reenter x = { .rt = test_runtime(2, NULL),
                         .other = test_runtime(1, NULL) };
    assert_non_null(x.rt);
    assert_non_null(x.other);
    int64_t out[8];
    alarm(60); /* the deadlock it was: a failure, not a hang */
    for (int progress = 0; progress < 2; progress++) {
        x.calls = 0;
        x.same_rc = x.other_rc = 1;
        weft_map_opts o = iso_opts(2, 0);
        if (progress) {
            o.progress = reenter_progress;
            o.progress_ctx = &x;
            o.progress_ms = 1;
        } else {
            o.deliver = reenter_deliver;
            o.deliver_ctx = &x;
        }
        assert_int_equal(weft_map(x.rt, 8, NULL, 0, out, sizeof *out,
                                  i64_item, NULL, &o, NULL), 0);
        assert_true(x.calls > 0);
        assert_int_equal(x.same_rc, -EDEADLK);
        assert_int_equal(x.other_rc, 0);
        /* and the pool is usable again afterwards */
        o = iso_opts(2, 0);
        assert_int_equal(weft_for(x.rt, 0, 4, nop_for, NULL, &o, NULL), 0);
    }
    alarm(0);
    weft_runtime_destroy(&x.rt);
    weft_runtime_destroy(&x.other);
}

/* Stop at the first error: a crash stops the map like an error. */
static void test_iso_crash_stops(void **s)
{
    (void)s;
    static const struct { int kind, status, sig; } k[] = {
        { 0, -ECHILD, SIGSEGV }, { 1, -ECHILD, SIGABRT },
        { 2, -ETIMEDOUT, SIGKILL },
    };
    for (size_t j = 0; j < NELEM(k); j++) {
        size_t n = 2000;
        struct crashy c = crashy_new(n);
        *(k[j].kind == 0 ? &c.segv : k[j].kind == 1 ? &c.abrt : &c.hang) =
            500;
        weft_runtime *rt = test_runtime(2, NULL);
        assert_non_null(rt);
        weft_map_error errs[8];
        weft_map_opts opts = iso_opts(2, 0);
        opts.timeout_ms = hang_limit_ms();
        opts.errors = errs;
        opts.max_errors = NELEM(errs);
        weft_map_report rep;
        int rc = weft_map(rt, n, NULL, 0, NULL, 0, crashy_item, &c, &opts,
                          &rep);
        if (rep.failed != 1)
            report_print(&rep, errs, "isolated stop");
        if (rc != k[j].status || rep.first_index != 500 ||
            rep.first_status != k[j].status ||
            rep.first_signal != k[j].sig || rep.failed != 1)
            fail_msg("crash kind %d: returned %d, first index %zu status %d "
                     "signal %d, failed %zu", k[j].kind, rc, rep.first_index,
                     rep.first_status, rep.first_signal, rep.failed);
        report_expect_sums(&rep, n, "isolated stop");
        if (hits_sum(&c.h) != rep.done + rep.failed)
            fail_msg("crash kind %d: %zu runs, done %zu failed %zu",
                     k[j].kind, hits_sum(&c.h), rep.done, rep.failed);
        weft_runtime_destroy(&rt);
        hits_free(&c.h);
    }
}

/* max_retries: items that crash or hang only on their first run succeed
 * on the second; one that always crashes is run 1 + max_retries times. */
static void retry_case(unsigned retries)
{
    char what[48];
    snprintf(what, sizeof what, "max_retries %u", retries);
    size_t n = 30;
    struct crashy c = crashy_new(n);
    c.once = 4, c.hang_once = 9, c.segv = 20;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    int64_t out[30];
    weft_map_error errs[4];
    weft_map_opts opts = iso_opts(2, WEFT_MAP_COLLECT);
    opts.timeout_ms = hang_limit_ms();
    opts.max_retries = retries;
    opts.errors = errs;
    opts.max_errors = NELEM(errs);
    weft_map_report rep;
    int rc = weft_map(rt, n, NULL, 0, out, sizeof *out, crashy_item, &c,
                      &opts, &rep);
    size_t fails = retries ? 1 : 3;
    if (rep.failed != fails)
        report_print(&rep, errs, what);
    if (rep.failed != fails || rep.done != n - fails || rc != -ECHILD)
        fail_msg("%s: returned %d, done %zu failed %zu; want -ECHILD, %zu "
                 "failed", what, rc, rep.done, rep.failed, fails);
    listed_expect(errs, rep.nerrors, 20, -ECHILD, SIGSEGV);
    for (size_t i = 0; i < n; i++) {
        unsigned want = i == 20 ? 1 + retries
                      : (i == 4 || i == 9) && retries ? 2 : 1;
        if (hits_of(&c.h, i) != want)
            fail_msg("%s: item %zu ran %u times, want %u", what, i,
                     hits_of(&c.h, i), want);
        if ((i == 4 || i == 9) && retries && out[i] != (int64_t)i * 11)
            fail_msg("%s: retried item %zu gave %lld", what, i,
                     (long long)out[i]);
    }
    hits_free(&c.h);
    weft_runtime_destroy(&rt);
}

static void test_iso_retries(void **s)
{
    (void)s;
    retry_case(0);
    retry_case(1);
    retry_case(2);
}

/* weft_for in isolated mode: ctx copied (a struct holding the address of
 * the shared counters), begin not 0, a crash among them. */
struct for_ctx {
    struct hits h;
    size_t begin, crash;
};

static int iso_for_item(size_t i, void *ctx)
{
    const struct for_ctx *f = ctx;
    hit(&f->h, i - f->begin);
    if (i == f->crash)
        crash_segv();
    return 0;
}

static void test_iso_for(void **s)
{
    (void)s;
    size_t n = 5000;
    struct for_ctx f = { .h = hits_new(n), .begin = 100, .crash = SIZE_MAX };
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_map_opts opts = iso_opts(-1, WEFT_MAP_COLLECT);
    opts.ctx_size = sizeof f;
    weft_map_report rep;
    assert_int_equal(weft_for(rt, 100, 100 + n, iso_for_item, &f, &opts,
                              &rep), 0);
    report_expect_clean(&rep, n, "isolated weft_for");
    hits_expect_once(&f.h, n, "isolated weft_for");
    hits_clear(&f.h);
    f.crash = 100 + 1234;
    assert_int_equal(weft_for(rt, 100, 100 + n, iso_for_item, &f, &opts,
                              &rep), -ECHILD);
    assert_int_equal(rep.failed, 1);
    assert_int_equal(rep.done, n - 1);
    assert_int_equal(rep.first_index, 100 + 1234);
    assert_int_equal(rep.first_signal, SIGSEGV);
    hits_expect_once(&f.h, n, "isolated weft_for with a crash");
    hits_free(&f.h);
    weft_runtime_destroy(&rt);
}

/* --- cancellation, busy reset, threads ------------------------------------ */

/* Items sleep; the one at index `trip` sets the shared cancel flag. */
struct slow {
    struct hits h;
    _Atomic int *flag; /* shared memory */
    size_t trip;
    int64_t sleep;
};

static int slow_item(size_t i, void *ctx)
{
    const struct slow *w = ctx;
    hit(&w->h, i);
    if (i == w->trip)
        atomic_store(w->flag, 1);
    sleep_ns(w->sleep);
    return 0;
}

/* A failure that stopped the map stays its result when the cancel flag
 * is set afterwards, as on the pool; the dispatcher used to overwrite it
 * with -ECANCELED. The flag is the status of the first listed error: it
 * becomes nonzero exactly when the failure is recorded, so the order is
 * certain. */
static int fail_at_3(size_t i, void *ctx)
{
    (void)ctx;
    return i == 3 ? -EIO : 0;
}

static void test_iso_fail_then_cancel(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_map_error errs[1] = { { 0 } };
    weft_map_opts opts = iso_opts(2, 0);
    opts.errors = errs;
    opts.max_errors = 1;
    opts.cancel = (const _Atomic int *)&errs[0].status;
    weft_map_report rep;
    assert_int_equal(weft_for(rt, 0, 40, fail_at_3, NULL, &opts, &rep),
                     -EIO);
    assert_int_equal(rep.failed, 1);
    assert_int_equal(rep.first_index, 3);
    weft_runtime_destroy(&rt);
}

static void test_iso_cancel(void **s)
{
    (void)s;
    size_t n = 400;
    struct slow w = { .h = hits_new(n), .flag = shared_alloc(sizeof(int)),
                      .trip = 10, .sleep = MS };
    assert_non_null(w.flag);
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_map_opts opts = iso_opts(2, 0);
    opts.cancel = w.flag;
    opts.ctx_size = sizeof w;
    weft_map_report rep;
    int rc = weft_for(rt, 0, n, slow_item, &w, &opts, &rep);
    if (rc != -ECANCELED || rep.skipped == 0 || rep.failed)
        fail_msg("cancelled by an item: returned %d, skipped %zu failed %zu",
                 rc, rep.skipped, rep.failed);
    report_expect_sums(&rep, n, "isolated cancel");
    assert_int_equal(hits_sum(&w.h), rep.done);
    /* already set: nothing runs */
    hits_clear(&w.h);
    assert_int_equal(weft_for(rt, 0, n, slow_item, &w, &opts, &rep),
                     -ECANCELED);
    assert_int_equal(hits_sum(&w.h), 0);
    assert_int_equal(rep.skipped, n);
    weft_runtime_destroy(&rt);
    shared_free(w.flag, sizeof(int));
    hits_free(&w.h);
}

struct bg_map { weft_runtime *rt; struct slow *w; int rc; };

static void *bg_map_run(void *a)
{
    struct bg_map *b = a;
    weft_map_opts opts = iso_opts(2, 0);
    opts.ctx_size = sizeof *b->w;
    b->rc = weft_for(b->rt, 0, b->w->h.n, slow_item, b->w, &opts, NULL);
    return NULL;
}

/* Reset while an isolated map runs: -EBUSY, and the map is unharmed. */
static void test_iso_reset_busy(void **s)
{
    (void)s;
    struct slow w = { .h = hits_new(40), .flag = shared_alloc(sizeof(int)),
                      .trip = SIZE_MAX, .sleep = 20 * MS };
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct bg_map b = { rt, &w, -1 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bg_map_run, &b), 0);
    int64_t end = now_ns() + LONG_WAIT;
    while (hits_sum(&w.h) == 0 && now_ns() < end)
        sleep_ns(MS);
    assert_true(hits_sum(&w.h) > 0);
    assert_int_equal(weft_map_isolated_reset(rt), -EBUSY);
    pthread_join(t, NULL);
    assert_int_equal(b.rc, 0);
    hits_expect_once(&w.h, w.h.n, "map during a refused reset");
    assert_int_equal(weft_map_isolated_reset(rt), 0);
    weft_runtime_destroy(&rt);
    shared_free(w.flag, sizeof(int));
    hits_free(&w.h);
}

/* --- destroy while an isolated map runs ------------------------------------ */

/* Shared with the children: item 0 says it started, then holds the map
 * until the test releases it. */
struct held {
    _Atomic int started, release;
};

static int held_item(size_t i, void *ctx)
{
    struct held *h = ctx;
    if (i != 0)
        return 0;
    atomic_store(&h->started, 1);
    int64_t end = now_ns() + LONG_WAIT;
    while (!atomic_load(&h->release) && now_ns() < end)
        sleep_ns(MS);
    return atomic_load(&h->release) ? 0 : -ETIMEDOUT;
}

struct held_map { weft_runtime *rt; struct held *h; int rc; size_t done; };

static void *held_map_run(void *a)
{
    struct held_map *b = a;
    weft_map_opts opts = iso_opts(2, 0);
    weft_map_report rep = report_poisoned();
    b->rc = weft_for(b->rt, 0, 2, held_item, b->h, &opts, &rep);
    b->done = rep.done;
    return NULL;
}

static int noop_root(void *arg)
{
    (void)arg;
    return 0;
}

/* Waits until destroy began (weft_run refuses), then checks that an
 * isolated map is refused too, and releases the held map. rt stays valid
 * meanwhile: the held map keeps destroy waiting. */
struct releaser { weft_runtime *rt; struct held *h; int run_rc, iso_rc; };

static void *releaser_run(void *a)
{
    struct releaser *r = a;
    int64_t end = now_ns() + LONG_WAIT;
    while ((r->run_rc = weft_run(r->rt, noop_root, NULL)) == 0 &&
           now_ns() < end)
        sleep_ns(MS);
    if (r->run_rc == -ESHUTDOWN) {
        weft_map_opts opts = iso_opts(2, 0);
        weft_map_report rep = report_poisoned();
        r->iso_rc = weft_for(r->rt, 0, 2, held_item, r->h, &opts, &rep);
        if (rep.skipped != 2 || rep.first_index != SIZE_MAX)
            r->iso_rc = -EPROTO; /* the report was not filled in */
    }
    atomic_store(&r->h->release, 1);
    return NULL;
}

/* weft_runtime_destroy waits for an isolated map in flight, as for any
 * other call, and refuses new ones with -ESHUTDOWN. It used not to count
 * them: destroy stopped the processes under the map (which reported its
 * items as crashed), both reaped the same process, and destroy could hang
 * in waitpid. */
static void test_iso_destroy_waits(void **s)
{
    (void)s;
    struct held *h = shared_alloc(sizeof *h);
    assert_non_null(h);
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct held_map b = { rt, h, -1, 0 };
    struct releaser r = { rt, h, -1, -1 };
    pthread_t tb, tr;
    assert_int_equal(pthread_create(&tb, NULL, held_map_run, &b), 0);
    int64_t end = now_ns() + LONG_WAIT;
    while (!atomic_load(&h->started) && now_ns() < end)
        sleep_ns(MS);
    assert_true(atomic_load(&h->started));
    assert_int_equal(pthread_create(&tr, NULL, releaser_run, &r), 0);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
    pthread_join(tr, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(r.run_rc, -ESHUTDOWN);
    assert_int_equal(r.iso_rc, -ESHUTDOWN);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.done, 2);
    shared_free(h, sizeof *h);
}

struct iso_caller { weft_runtime *rt; int64_t add; int bad; };

static int add_item(size_t i, const void *in, void *out, void *ctx)
{
    (void)in;
    *(int64_t *)out = (int64_t)i * 2 + *(const int64_t *)ctx;
    return 0;
}

/* Isolated maps of 1000 items with ctx copied; counts wrong results. */
static int iso_caller_maps(struct iso_caller *c, int rounds)
{
    size_t n = 1000;
    int64_t *out = malloc(n * sizeof *out);
    if (!out)
        return -ENOMEM;
    weft_map_opts opts = iso_opts(2, 0);
    opts.ctx_size = sizeof c->add;
    for (int r = 0; r < rounds; r++) {
        int64_t add = c->add + r;
        memset(out, 0, n * sizeof *out);
        int rc = weft_map(c->rt, n, NULL, 0, out, sizeof *out, add_item,
                          &add, &opts, NULL);
        for (size_t i = 0; i < n; i++)
            c->bad += rc || out[i] != (int64_t)i * 2 + add;
    }
    free(out);
    return 0;
}

static void *iso_caller_thread(void *a)
{
    struct iso_caller *c = a;
    if (iso_caller_maps(c, 5))
        c->bad++;
    return NULL;
}

static void test_iso_threads(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct iso_caller c[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        c[i] = (struct iso_caller){ rt, 1000 * (i + 1), 0 };
        assert_int_equal(pthread_create(&t[i], NULL, iso_caller_thread,
                                        &c[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        if (c[i].bad)
            fail_msg("thread %d: %d wrong results", i, c[i].bad);
    }
    weft_runtime_destroy(&rt);
}

static int iso_from_worker(void *arg)
{
    return iso_caller_maps(arg, 2);
}

static void test_iso_from_worker(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct iso_caller c = { rt, 77, 0 };
    assert_int_equal(weft_run(rt, iso_from_worker, &c), 0);
    assert_int_equal(c.bad, 0);
    weft_runtime_destroy(&rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso_results),
        cmocka_unit_test(test_iso_ctx_copy),
        cmocka_unit_test(test_iso_ctx_too_big),
        cmocka_unit_test(test_iso_ctx_null),
        cmocka_unit_test(test_iso_stride0),
        cmocka_unit_test(test_iso_progress),
        cmocka_unit_test(test_iso_deliver),
        cmocka_unit_test(test_iso_reuse),
        cmocka_unit_test(test_iso_idle_death),
        cmocka_unit_test(test_iso_fds_closed),
        cmocka_unit_test(test_iso_nested_refused),
        cmocka_unit_test(test_iso_crashes_collect),
        cmocka_unit_test(test_iso_item_exits),
        cmocka_unit_test(test_iso_timeout_then_more),
        cmocka_unit_test(test_iso_timeout_quick_items),
        cmocka_unit_test(test_iso_timeout_before_first_item),
        cmocka_unit_test(test_iso_timeout_blames_running),
        cmocka_unit_test(test_iso_callback_reenters),
        cmocka_unit_test(test_iso_crash_stops),
        cmocka_unit_test(test_iso_retries),
        cmocka_unit_test(test_iso_for),
        cmocka_unit_test(test_iso_cancel),
        cmocka_unit_test(test_iso_fail_then_cancel),
        cmocka_unit_test(test_iso_reset_busy),
        cmocka_unit_test(test_iso_destroy_waits),
        cmocka_unit_test(test_iso_threads),
        cmocka_unit_test(test_iso_from_worker),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
