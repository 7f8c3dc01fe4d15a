/* The future workloads (future_common.h) on weft, written only against
 * <weft.h>: weft_submit, weft_future_get, weft_future_release.
 *
 * An "empty" task returns 0 and sets no result (the tree's tasks carry
 * their count in the result pointer itself: no allocation). The runtime
 * is made for the workload before the runs: spin_us = -1 for rt-parked,
 * 1000000 for rt-spin, the default (50 us) otherwise. */
#include "bench.h"
#include "future_common.h"

#include <weft.h>

#include "bench_weft.h"

#define PROG "future-weft"

static weft_runtime *rt;

static void die(const char *what, int rc)
{
    fprintf(stderr, PROG ": %s failed: %s (%d)\n", what, strerror(-rc), rc);
    exit(1);
}

static int empty(weft_job *job, void *arg)
{
    (void)job;
    (void)arg;
    return 0;
}

/* Submit n empty tasks on r in batches, collect every status; returns how
 * many succeeded. */
static long flat(weft_runtime *r, long n)
{
    weft_future *f[BATCH];
    long ok = 0;
    for (long done = 0; done < n; done += BATCH) {
        int b = n - done < BATCH ? (int)(n - done) : BATCH;
        for (int i = 0; i < b; i++) {
            int rc = weft_submit(r, empty, NULL, NULL, &f[i]);
            if (rc != 0)
                die("weft_submit", rc);
        }
        for (int i = 0; i < b; i++) {
            ok += weft_future_get(f[i], -1, NULL) == 0;
            weft_future_release(f[i]);
        }
    }
    return ok;
}

/* ---- inside-flat, inside-tree: from a root task */

struct root {
    long n;
    long result;
};

static int flat_root(void *arg)
{
    struct root *r = arg;
    r->result = flat(weft_current_runtime(), r->n);
    return 0;
}

static int tree_fn(weft_job *job, void *arg);

/* Submit a subtree of c tasks; NULL when c is 0. */
static weft_future *tree_submit(weft_runtime *r, long c)
{
    weft_future *f = NULL;
    if (c > 0) {
        int rc = weft_submit(r, tree_fn, (void *)(intptr_t)c, NULL, &f);
        if (rc != 0)
            die("weft_submit", rc);
    }
    return f;
}

/* The count a subtree's future reports (0 for none, or on failure). */
static long tree_collect(weft_future *f)
{
    if (f == NULL)
        return 0;
    void *v = NULL;
    int st = weft_future_get(f, -1, &v);
    weft_future_release(f);
    return st == 0 ? (long)(intptr_t)v : 0;
}

static int tree_fn(weft_job *job, void *arg)
{
    long c = (long)(intptr_t)arg, left, right;
    tree_split(c, &left, &right);
    weft_runtime *r = weft_job_runtime(job);
    weft_future *a = tree_submit(r, left);
    weft_future *b = tree_submit(r, right);
    long count = 1 + tree_collect(a) + tree_collect(b);
    return weft_job_set_result(job, (void *)(intptr_t)count, NULL);
}

static int tree_root(void *arg)
{
    struct root *r = arg;
    r->result = tree_collect(tree_submit(weft_current_runtime(), r->n));
    return 0;
}

static bench_check run_root(int (*fn)(void *), long n)
{
    struct root r = { n, 0 };
    int rc = weft_run(rt, fn, &r);
    if (rc != 0)
        die("weft_run", rc);
    return (bench_check)r.result;
}

static bench_check run_inside_flat(long n) { return run_root(flat_root, n); }
static bench_check run_inside_tree(long n) { return run_root(tree_root, n); }

/* ---- outside: from the main thread */

static bench_check run_outside(long n) { return (bench_check)flat(rt, n); }

/* ---- round trips */

static bench_check round_trips(long n, int parked)
{
    long ok = 0;
    for (long i = 0; i < n; i++) {
        weft_future *f;
        if (parked)
            rt_pause();
        double t0 = bench_now();
        int rc = weft_submit(rt, empty, NULL, NULL, &f);
        if (rc != 0)
            die("weft_submit", rc);
        int st = weft_future_get(f, -1, NULL);
        double t1 = bench_now();
        weft_future_release(f);
        ok += st == 0;
        rtl.lat[i] = t1 - t0;
    }
    rtl.n = n;
    return (bench_check)ok;
}

static bench_check run_rt_parked(long n) { return round_trips(n, 1); }
static bench_check run_rt_spin(long n) { return round_trips(n, 0); }

/* ---- set-up */

static int prepare(const char *workload, long size, int workers)
{
    weft_config cfg = weft_config_default();
    cfg.workers = workers;
    if (strcmp(workload, "rt-parked") == 0)
        cfg.spin_us = -1;
    else if (strcmp(workload, "rt-spin") == 0)
        cfg.spin_us = 1000000;
    int rc = bench_weft_create(PROG, &rt, &cfg);
    if (rc != 0)
        return rc;
    return is_rt(workload) ? rt_prepare(size) : 0;
}

static void teardown(int verbose)
{
    if (verbose)
        bench_weft_print_stats(rt);
    weft_runtime_destroy(&rt);
}

static const bench_workload workloads[] = {
    { "inside-flat", run_inside_flat }, { "inside-tree", run_inside_tree },
    { "outside", run_outside },         { "rt-parked", run_rt_parked },
    { "rt-spin", run_rt_spin },
};

int main(int argc, char **argv)
{
    static const bench_impl impl = { "weft", 0, NULL, teardown };
    static const bench_hooks hooks = { prepare, NULL, rt_extra, NULL };
    return bench_main_hooks(argc, argv, &impl, workloads,
                            (int)(sizeof workloads / sizeof workloads[0]),
                            &hooks);
}
