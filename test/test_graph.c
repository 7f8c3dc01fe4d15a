/* Task graphs: nodes added by name in any order, or by id; seal checks
 * (-ENOENT, -ELOOP, -EEXIST at add, -EPERM after seal); runs repeat with
 * identical results, from several threads at once; only the ancestors of
 * the requested outputs run; failures reach the outputs with their root
 * cause; a graph may be destroyed while a run is in flight. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_future_util.h"

static _Atomic long dtors;

/* A node: value = k, then for each dependency in order v = v * 31 +
 * dep (mod 2^32), so both the inputs and their order show in the result. */
struct node {
    long k;
    _Atomic long calls;
    int fail;          /* status to fail with, 0 = succeed */
    int fail_attempts; /* the first attempts fail with -EAGAIN */
    struct gate *gate; /* wait at this gate first, when set */
    int seen[4];       /* RUN_ANYWAY nodes: the statuses of their deps */
};

static long mix(long v, long d) { return (v * 31 + d) & 0xffffffffl; }

static int node_fn(weft_job *job, void *arg)
{
    struct node *n = arg;
    atomic_fetch_add(&n->calls, 1);
    if (n->gate && gate_wait_open(n->gate))
        return -ETIMEDOUT;
    if (weft_job_attempt(job) < n->fail_attempts)
        return -EAGAIN;
    if (n->fail)
        return n->fail;
    long v = n->k;
    for (size_t i = 0; i < weft_job_ndeps(job); i++) {
        void *p = NULL;
        if (weft_job_dep(job, i, &p) != 0 || !p)
            return -EPROTO;
        v = mix(v, val_of(p));
    }
    return set_val(job, v, &dtors);
}

static int anyway_fn(weft_job *job, void *arg)
{
    struct node *n = arg;
    atomic_fetch_add(&n->calls, 1);
    for (size_t i = 0; i < weft_job_ndeps(job) && i < 4; i++)
        n->seen[i] = weft_job_dep(job, i, NULL);
    return set_val(job, n->k, &dtors);
}

static int add(weft_graph *g, const char *name, struct node *n,
               const char *const *deps, size_t ndeps)
{
    return weft_graph_add(g, name, node_fn, n, deps, ndeps, NULL);
}

static long out_val(weft_future *f)
{
    void *v = NULL;
    assert_int_equal(weft_future_get(f, -1, &v), 0);
    return val_of(v);
}

/* d <- (b, c); c <- (a, b); b <- a; added dependants first. */
struct diamond { struct node a, b, c, d; weft_graph *g; };

static void build_diamond(struct diamond *x)
{
    memset(x, 0, sizeof *x);
    x->a.k = 2;
    x->b.k = 3;
    x->c.k = 5;
    x->d.k = 7;
    assert_int_equal(weft_graph_create(&x->g), 0);
    const char *dd[] = { "b", "c" }, *dc[] = { "a", "b" }, *db[] = { "a" };
    assert_int_equal(add(x->g, "d", &x->d, dd, 2), 0);
    assert_int_equal(add(x->g, "c", &x->c, dc, 2), 1);
    assert_int_equal(add(x->g, "b", &x->b, db, 1), 2);
    assert_int_equal(add(x->g, "a", &x->a, NULL, 0), 3);
    assert_int_equal(weft_graph_seal(x->g), 0);
}

static long diamond_b(void) { return mix(3, 2); }
static long diamond_c(void) { return mix(mix(5, 2), diamond_b()); }
static long diamond_d(void) { return mix(mix(7, diamond_b()), diamond_c()); }

static void test_build_and_run(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&dtors, 0);
    struct diamond x;
    build_diamond(&x);
    assert_int_equal(weft_graph_seal(x.g), 0); /* twice is fine */
    assert_int_equal(weft_graph_size(x.g), 4);
    assert_int_equal(weft_graph_find(x.g, "d"), 0);
    assert_int_equal(weft_graph_find(x.g, "a"), 3);
    assert_int_equal(weft_graph_find(x.g, "zz"), -ENOENT);
    int runs = 200 / test_scale();
    for (int r = 0; r < runs; r++) {
        const char *want[] = { "d", "c" };
        weft_future *outs[2] = { NULL, NULL }, *all = NULL;
        assert_int_equal(weft_graph_run(x.g, rt, want, 2, outs, &all), 0);
        assert_int_equal(out_val(outs[0]), diamond_d());
        assert_int_equal(out_val(outs[1]), diamond_c());
        assert_int_equal(weft_future_get(all, -1, NULL), 0);
        weft_future_release(outs[0]);
        weft_future_release(outs[1]);
        weft_future_release(all);
    }
    assert_int_equal(atomic_load(&x.a.calls), runs);
    assert_int_equal(atomic_load(&x.b.calls), runs);
    assert_int_equal(atomic_load(&x.c.calls), runs);
    assert_int_equal(atomic_load(&x.d.calls), runs);
    weft_graph_destroy(&x.g);
    assert_null(x.g);
    weft_runtime_destroy(&rt);
    /* every node's result freed exactly once */
    assert_int_equal(atomic_load(&dtors), 4l * runs);
}

static void test_build_errors(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(1, NULL);
    assert_non_null(rt);
    struct node n[8];
    memset(n, 0, sizeof n);
    assert_int_equal(weft_graph_create(NULL), -EINVAL);
    weft_graph *g;
    assert_int_equal(weft_graph_create(&g), 0);
    assert_int_equal(weft_graph_size(g), 0);
    const char *da[] = { "a" };
    assert_int_equal(add(g, NULL, &n[0], NULL, 0), -EINVAL);
    assert_int_equal(weft_graph_add(g, "x", NULL, NULL, NULL, 0, NULL),
                     -EINVAL);
    assert_int_equal(add(g, "x", &n[0], NULL, 2), -EINVAL);
    weft_submit_opts o = weft_submit_opts_default();
    o.max_retries = -1;
    assert_int_equal(weft_graph_add(g, "x", node_fn, &n[0], NULL, 0, &o),
                     -EINVAL);
    o = weft_submit_opts_default();
    o.priority = 7;
    assert_int_equal(weft_graph_add(g, "x", node_fn, &n[0], NULL, 0, &o),
                     -EINVAL);
    assert_int_equal(weft_graph_add(NULL, "x", node_fn, &n[0], NULL, 0, NULL),
                     -EINVAL);
    assert_int_equal(weft_graph_size(g), 0);

    /* names are copied */
    char name[16];
    strcpy(name, "b");
    assert_int_equal(add(g, name, &n[1], da, 1), 0); /* "a" comes later */
    strcpy(name, "zz");
    assert_int_equal(weft_graph_find(g, "b"), 0);
    assert_int_equal(add(g, "b", &n[2], NULL, 0), -EEXIST);
    assert_int_equal(weft_graph_size(g), 1);

    /* missing dependency: -ENOENT, the graph stays open and can be fixed */
    assert_int_equal(weft_graph_seal(g), -ENOENT);
    const char *want[] = { "b" };
    weft_future *out = (weft_future *)1;
    assert_int_equal(weft_graph_run(g, rt, want, 1, &out, NULL), -EPERM);
    assert_int_equal(add(g, "a", &n[0], NULL, 0), 1);
    assert_int_equal(weft_graph_seal(g), 0);
    assert_int_equal(add(g, "c", &n[3], NULL, 0), -EPERM);
    assert_int_equal(weft_graph_add_ids(g, "c", node_fn, &n[3], NULL, 0, NULL),
                     -EPERM);
    assert_int_equal(weft_graph_size(g), 2);

    /* run errors */
    const char *nowhere[] = { "nowhere" };
    assert_int_equal(weft_graph_run(g, rt, nowhere, 1, &out, NULL), -ENOENT);
    assert_int_equal(weft_graph_run(NULL, rt, want, 1, &out, NULL), -EINVAL);
    assert_int_equal(weft_graph_run(g, NULL, want, 1, &out, NULL), -EINVAL);
    assert_int_equal(weft_graph_run(g, rt, NULL, 1, &out, NULL), -EINVAL);
    assert_int_equal(weft_graph_run(g, rt, want, 1, &out, NULL), 0);
    assert_int_equal(weft_future_get(out, -1, NULL), 0);
    weft_future_release(out);
    assert_int_equal(atomic_load(&n[0].calls), 1);
    assert_int_equal(atomic_load(&n[1].calls), 1);
    assert_int_equal(atomic_load(&n[2].calls), 0);
    assert_int_equal(weft_graph_destroy(&g), 0);
    assert_null(g);
    assert_int_equal(weft_graph_destroy(&g), 0);  /* *g NULL */
    assert_int_equal(weft_graph_destroy(NULL), 0);

    /* cycles: a 3-cycle, then a self-loop; both stay unsealed */
    assert_int_equal(weft_graph_create(&g), 0);
    const char *dx[] = { "z" }, *dy[] = { "x" }, *dz[] = { "y" };
    assert_int_equal(add(g, "x", &n[0], dx, 1), 0);
    assert_int_equal(add(g, "y", &n[1], dy, 1), 1);
    assert_int_equal(add(g, "free", &n[2], NULL, 0), 2);
    assert_int_equal(add(g, "z", &n[3], dz, 1), 3);
    assert_int_equal(weft_graph_seal(g), -ELOOP);
    assert_int_equal(weft_graph_seal(g), -ELOOP);
    const char *wf[] = { "free" };
    assert_int_equal(weft_graph_run(g, rt, wf, 1, &out, NULL), -EPERM);
    weft_graph_destroy(&g);
    assert_int_equal(weft_graph_create(&g), 0);
    const char *self[] = { "s" };
    assert_int_equal(add(g, "s", &n[0], self, 1), 0);
    assert_int_equal(weft_graph_seal(g), -ELOOP);
    weft_graph_destroy(&g);
    /* a 2-cycle */
    assert_int_equal(weft_graph_create(&g), 0);
    const char *dp[] = { "q" }, *dq[] = { "p" };
    assert_int_equal(add(g, "p", &n[0], dp, 1), 0);
    assert_int_equal(add(g, "q", &n[1], dq, 1), 1);
    assert_int_equal(weft_graph_seal(g), -ELOOP);
    weft_graph_destroy(&g);

    /* by name after by id: an unnamed node is "#<id>" */
    assert_int_equal(weft_graph_create(&g), 0);
    n[4].k = 10;
    n[5].k = 20;
    assert_int_equal(weft_graph_add_ids(g, NULL, node_fn, &n[4], NULL, 0,
                                        NULL), 0);
    const char *d0[] = { "#0" };
    assert_int_equal(add(g, "top", &n[5], d0, 1), 1);
    assert_int_equal(weft_graph_find(g, "#0"), 0);
    assert_int_equal(weft_graph_seal(g), 0);
    const char *wt[] = { "top" };
    assert_int_equal(weft_graph_run(g, rt, wt, 1, &out, NULL), 0);
    assert_int_equal(out_val(out), mix(20, 10));
    weft_future_release(out);
    weft_graph_destroy(&g);

    /* an empty graph seals and runs */
    assert_int_equal(weft_graph_create(&g), 0);
    assert_int_equal(weft_graph_seal(g), 0);
    weft_future *all = NULL;
    assert_int_equal(weft_graph_run(g, rt, NULL, 0, NULL, &all), 0);
    assert_int_equal(weft_future_get(all, -1, NULL), 0);
    weft_future_release(all);
    weft_graph_destroy(&g);
    weft_runtime_destroy(&rt);
}

/* Only the ancestors of the requested outputs run, each once per run. */
static void test_culling(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    /* a <- b <- c;  a <- d;  e;  f <- (c, e) */
    struct node n[6];
    memset(n, 0, sizeof n);
    weft_graph *g;
    assert_int_equal(weft_graph_create(&g), 0);
    const char *fa[] = { "c", "e" }, *ca[] = { "b" }, *ba[] = { "a" },
               *da[] = { "a" };
    assert_int_equal(add(g, "f", &n[5], fa, 2), 0);
    assert_int_equal(add(g, "c", &n[2], ca, 1), 1);
    assert_int_equal(add(g, "e", &n[4], NULL, 0), 2);
    assert_int_equal(add(g, "b", &n[1], ba, 1), 3);
    assert_int_equal(add(g, "d", &n[3], da, 1), 4);
    assert_int_equal(add(g, "a", &n[0], NULL, 0), 5);
    assert_int_equal(weft_graph_seal(g), 0);

    struct { const char *out[2]; size_t nout; long calls[6]; } cases[] = {
        { { "c" }, 1, { 1, 1, 1, 0, 0, 0 } },
        { { "d" }, 1, { 1, 0, 0, 1, 0, 0 } },
        { { "b", "d" }, 2, { 1, 1, 0, 1, 0, 0 } },
        { { "e" }, 1, { 0, 0, 0, 0, 1, 0 } },
        { { "f", "c" }, 2, { 1, 1, 1, 0, 1, 1 } },
        { { NULL }, 0, { 1, 1, 1, 1, 1, 1 } }, /* all */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        long before[6];
        for (int i = 0; i < 6; i++)
            before[i] = atomic_load(&n[i].calls);
        weft_future *outs[2] = { NULL, NULL }, *all = NULL;
        assert_int_equal(weft_graph_run(g, rt, cases[c].out, cases[c].nout,
                                        outs, &all), 0);
        assert_int_equal(weft_future_get(all, -1, NULL), 0);
        for (size_t i = 0; i < cases[c].nout; i++) {
            assert_int_equal(weft_future_get(outs[i], -1, NULL), 0);
            weft_future_release(outs[i]);
        }
        weft_future_release(all);
        for (int i = 0; i < 6; i++)
            if (atomic_load(&n[i].calls) - before[i] != cases[c].calls[i])
                fail_msg("case %zu: node %c ran %ld times, not %ld", c,
                         'a' + i, atomic_load(&n[i].calls) - before[i],
                         cases[c].calls[i]);
    }
    /* the same output twice: refused (as graph.h says), with outs or
     * without (without, it used to run) */
    const char *twice[] = { "e", "e" };
    weft_future *o2[2] = { NULL, NULL }, *a2 = NULL;
    long e_before = atomic_load(&n[4].calls);
    assert_int_equal(weft_graph_run(g, rt, twice, 2, o2, &a2), -EINVAL);
    assert_null(o2[0]);
    assert_null(a2);
    assert_int_equal(weft_graph_run(g, rt, twice, 2, NULL, &a2), -EINVAL);
    assert_null(a2);
    assert_int_equal(weft_graph_run(g, rt, twice, 2, NULL, NULL), -EINVAL);
    assert_int_equal(atomic_load(&n[4].calls), e_before);
    /* without any future to wait on: destroy finishes the run */
    const char *want[] = { "c" };
    assert_int_equal(weft_graph_run(g, rt, want, 1, NULL, NULL), 0);
    weft_graph_destroy(&g);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&n[2].calls), 4); /* 3 cases + this */
}

/* A failing node fails the outputs that need it, with its status as the
 * cause; other outputs succeed; retries and RUN_ANYWAY per node. */
static void test_failure(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    /* bad <- mid <- top; ok; out <- (ok, top); flaky (2 retries);
     * any <- (ok, bad) with RUN_ANYWAY */
    struct node bad = { .fail = -EIO }, mid = { 0 }, top = { 0 },
                ok = { .k = 1 }, out = { 0 },
                flaky = { .k = 9, .fail_attempts = 2 }, any = { .k = 4 };
    weft_graph *g;
    assert_int_equal(weft_graph_create(&g), 0);
    const char *dm[] = { "bad" }, *dt[] = { "mid" }, *dout[] = { "ok", "top" },
               *dany[] = { "ok", "bad" };
    assert_int_equal(add(g, "bad", &bad, NULL, 0), 0);
    assert_int_equal(add(g, "mid", &mid, dm, 1), 1);
    assert_int_equal(add(g, "top", &top, dt, 1), 2);
    assert_int_equal(add(g, "ok", &ok, NULL, 0), 3);
    assert_int_equal(add(g, "out", &out, dout, 2), 4);
    weft_submit_opts o = weft_submit_opts_default();
    o.max_retries = 2;
    assert_int_equal(weft_graph_add(g, "flaky", node_fn, &flaky, NULL, 0, &o),
                     5);
    o = weft_submit_opts_default();
    o.flags = WEFT_RUN_ANYWAY;
    assert_int_equal(weft_graph_add(g, "any", anyway_fn, &any, dany, 2, &o),
                     6);
    assert_int_equal(weft_graph_seal(g), 0);
    int runs = 20;
    for (int r = 0; r < runs; r++) {
        const char *want[] = { "out", "ok", "flaky", "any", "mid" };
        weft_future *outs[5], *all;
        assert_int_equal(weft_graph_run(g, rt, want, 5, outs, &all), 0);
        assert_int_equal(weft_future_get(outs[0], -1, NULL),
                         WEFT_STATUS_DEP_FAILED(1));
        assert_int_equal(weft_future_cause(outs[0]), -EIO);
        assert_int_equal(out_val(outs[1]), 1);
        assert_int_equal(out_val(outs[2]), 9);
        /* the node's function, retries included (was 0: not counted) */
        assert_int_equal(weft_future_attempts(outs[2]), 3);
        assert_int_equal(weft_future_attempts(outs[1]), 1);
        assert_int_equal(weft_future_attempts(outs[0]), 0); /* never ran */
        assert_int_equal(out_val(outs[3]), 4);
        assert_int_equal(weft_future_get(outs[4], -1, NULL),
                         WEFT_STATUS_DEP_FAILED(0));
        assert_int_equal(weft_future_cause(outs[4]), -EIO);
        int st = weft_future_get(all, -1, NULL);
        assert_int_not_equal(st, 0);
        assert_int_equal(weft_future_cause(all), -EIO);
        assert_int_equal(any.seen[0], 0);
        assert_int_equal(any.seen[1], -EIO);
        for (int i = 0; i < 5; i++)
            weft_future_release(outs[i]);
        weft_future_release(all);
    }
    assert_int_equal(atomic_load(&bad.calls), runs);
    assert_int_equal(atomic_load(&mid.calls), 0);
    assert_int_equal(atomic_load(&top.calls), 0);
    assert_int_equal(atomic_load(&out.calls), 0);
    assert_int_equal(atomic_load(&flaky.calls), 3 * runs); /* per run anew */
    assert_int_equal(atomic_load(&any.calls), runs);
    weft_graph_destroy(&g);
    weft_runtime_destroy(&rt);
}

/* --- a random DAG built by ids ----------------------------------------- */

enum { NN = 300, MAXD = 4 };

struct dag {
    weft_graph *g;
    struct node n[NN];
    int deps[NN][MAXD];
    int ndeps[NN];
    long expect[NN];
    int is_sink[NN];
    char names[NN][16];
    const char *sinks[NN];
    int nsinks;
};

static void build_dag(struct dag *d, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    assert_int_equal(weft_graph_create(&d->g), 0);
    for (int i = 0; i < NN; i++)
        d->is_sink[i] = 1;
    for (int i = 0; i < NN; i++) {
        d->n[i].k = (long)(xrand(&seed) % 1000);
        d->ndeps[i] = i ? (int)(xrand(&seed) % (MAXD + 1)) : 0;
        long v = d->n[i].k;
        for (int j = 0; j < d->ndeps[i]; j++) {
            int dep = (int)(xrand(&seed) % (uint64_t)i);
            d->deps[i][j] = dep;
            d->is_sink[dep] = 0;
            v = mix(v, d->expect[dep]);
        }
        d->expect[i] = v;
        const char *name = NULL;
        if (i % 3) { /* every third node goes unnamed: "#<id>" */
            snprintf(d->names[i], sizeof d->names[i], "n%d", i);
            name = d->names[i];
        } else {
            snprintf(d->names[i], sizeof d->names[i], "#%d", i);
        }
        assert_int_equal(weft_graph_add_ids(d->g, name, node_fn, &d->n[i],
                                            d->deps[i], (size_t)d->ndeps[i],
                                            NULL), i);
    }
    /* dependencies by id must exist already */
    int fwd[1] = { NN + 5 }, neg[1] = { -1 };
    assert_true(weft_graph_add_ids(d->g, "fwd", node_fn, &d->n[0], fwd, 1,
                                   NULL) < 0);
    assert_true(weft_graph_add_ids(d->g, "neg", node_fn, &d->n[0], neg, 1,
                                   NULL) < 0);
    assert_int_equal(weft_graph_add_ids(d->g, "x", node_fn, &d->n[0], NULL, 2,
                                        NULL), -EINVAL);
    assert_int_equal(weft_graph_add_ids(d->g, "n1", node_fn, &d->n[0], NULL,
                                        0, NULL), -EEXIST);
    /* "#3" names node 3: taken (or, '#' being reserved, refused) */
    int rc = weft_graph_add(d->g, "#3", node_fn, &d->n[0], NULL, 0, NULL);
    assert_true(rc == -EEXIST || rc == -EINVAL);
    assert_int_equal(weft_graph_size(d->g), NN);
    assert_int_equal(weft_graph_seal(d->g), 0);
    for (int i = 0; i < NN; i++) {
        assert_int_equal(weft_graph_find(d->g, d->names[i]), i);
        if (d->is_sink[i])
            d->sinks[d->nsinks++] = d->names[i];
    }
}

/* Run the DAG for its sinks and check every sink's value; 0 or -1. */
static int run_dag(struct dag *d, weft_runtime *rt)
{
    weft_future *outs[NN], *all;
    if (weft_graph_run(d->g, rt, d->sinks, (size_t)d->nsinks, outs, &all))
        return -1;
    int bad = 0;
    for (int i = 0, k = 0; i < NN; i++) {
        if (!d->is_sink[i])
            continue;
        void *v = NULL;
        if (weft_future_get(outs[k], -1, &v) != 0 || val_of(v) != d->expect[i])
            bad = 1;
        weft_future_release(outs[k++]);
    }
    if (weft_future_get(all, -1, NULL) != 0)
        bad = 1;
    weft_future_release(all);
    return bad ? -1 : 0;
}

static void test_dag_by_ids(void **s)
{
    (void)s;
    struct dag *d = malloc(sizeof *d);
    assert_non_null(d);
    build_dag(d, 0xfeedull);
    for (int w = 1; w <= 2; w++) {
        weft_runtime *rt = test_runtime(w, NULL);
        assert_non_null(rt);
        for (int r = 0; r < 30 / test_scale() + 2; r++)
            assert_int_equal(run_dag(d, rt), 0);
        weft_runtime_destroy(&rt);
    }
    weft_graph_destroy(&d->g);
    free(d);
}

/* Several threads run one sealed graph at once, on one runtime and on
 * two. */
struct runner { struct dag *d; weft_runtime *rt; int runs; int bad; };

static void *dag_runner(void *a)
{
    struct runner *r = a;
    for (int i = 0; i < r->runs; i++)
        if (run_dag(r->d, r->rt))
            r->bad++;
    return NULL;
}

static void test_concurrent_runs(void **s)
{
    (void)s;
    struct dag *d = malloc(sizeof *d);
    assert_non_null(d);
    build_dag(d, 0xabcdull);
    weft_runtime *rt[2] = { test_runtime(2, NULL), test_runtime(1, NULL) };
    assert_non_null(rt[0]);
    assert_non_null(rt[1]);
    enum { T = 4 };
    pthread_t th[T];
    struct runner r[T];
    int runs = 20 / test_scale() + 1;
    /* first all threads on one runtime, then spread over both */
    for (int phase = 0; phase < 2; phase++) {
        for (int i = 0; i < T; i++) {
            r[i] = (struct runner){ d, rt[phase ? i % 2 : 0], runs, 0 };
            assert_int_equal(pthread_create(&th[i], NULL, dag_runner, &r[i]),
                             0);
        }
        for (int i = 0; i < T; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(r[i].bad, 0);
        }
    }
    /* every node ran once per run */
    for (int i = 0; i < NN; i++)
        if (atomic_load(&d->n[i].calls) != 2l * T * runs)
            fail_msg("node %d ran %ld times, not %d", i,
                     atomic_load(&d->n[i].calls), 2 * T * runs);
    weft_runtime_destroy(&rt[0]);
    weft_runtime_destroy(&rt[1]);
    weft_graph_destroy(&d->g);
    free(d);
}

/* Runs from inside a task (the worker helps while it waits). */
struct inside { struct dag *d; weft_runtime *rt; };

static int run_inside(void *a)
{
    struct inside *in = a;
    return run_dag(in->d, in->rt);
}

static void test_run_inside_task(void **s)
{
    (void)s;
    struct dag *d = malloc(sizeof *d);
    assert_non_null(d);
    build_dag(d, 0x5eedull);
    weft_runtime *rt = test_runtime(1, NULL);
    assert_non_null(rt);
    struct inside in = { d, rt };
    for (int i = 0; i < 5; i++)
        assert_int_equal(weft_run(rt, run_inside, &in), 0);
    weft_runtime_destroy(&rt);
    weft_graph_destroy(&d->g);
    free(d);
}

/* The graph goes while a run waits at a gate; the run finishes right. */
static void test_destroy_in_flight(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&dtors, 0);
    for (int rep = 0; rep < 10; rep++) {
        struct gate gt = { 0 };
        struct node a = { .k = 1, .gate = &gt }, b = { .k = 2 }, c = { .k = 3 };
        weft_graph *g;
        assert_int_equal(weft_graph_create(&g), 0);
        char name[8];
        strcpy(name, "a");
        const char *db[] = { "a" }, *dc[] = { "b", "a" };
        assert_int_equal(add(g, "c", &c, dc, 2), 0);
        assert_int_equal(add(g, name, &a, NULL, 0), 1);
        assert_int_equal(add(g, "b", &b, db, 1), 2);
        assert_int_equal(weft_graph_seal(g), 0);
        const char *want[] = { "c" };
        weft_future *out, *all;
        assert_int_equal(weft_graph_run(g, rt, want, 1, &out, &all), 0);
        assert_int_equal(weft_graph_destroy(&g), 0);
        assert_null(g);
        memset(name, 'x', sizeof name - 1); /* the graph copied its names */
        if (rep % 2)
            sleep_ns(1 * MS);
        gate_open(&gt);
        assert_int_equal(out_val(out), mix(mix(3, mix(2, 1)), 1));
        assert_int_equal(weft_future_get(all, -1, NULL), 0);
        weft_future_release(out);
        weft_future_release(all);
    }
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&dtors), 30);
}

/* Taking an output's result makes it the caller's: take waits until the
 * rest of the run no longer reads it (b reads a; b waits on a gate that
 * another thread opens 20 ms later), so the caller may free it at once
 * (ASan: no use after free) and b saw the right value. */
static void test_take_output(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&dtors, 0);
    for (int rep = 0; rep < 10; rep++) {
        struct gate gt = { 0 };
        struct node a = { .k = 5 }, hold = { .k = 1, .gate = &gt },
                    b = { .k = 2 };
        weft_graph *g;
        assert_int_equal(weft_graph_create(&g), 0);
        const char *db[] = { "a", "hold" };
        assert_int_equal(add(g, "a", &a, NULL, 0), 0);
        assert_int_equal(add(g, "hold", &hold, NULL, 0), 1);
        assert_int_equal(add(g, "b", &b, db, 2), 2);
        assert_int_equal(weft_graph_seal(g), 0);
        const char *want[] = { "a", "b" };
        weft_future *outs[2], *all;
        assert_int_equal(weft_graph_run(g, rt, want, 2, outs, &all), 0);
        pthread_t th;
        struct opener o = { &gt, 20 * MS };
        assert_int_equal(pthread_create(&th, NULL, open_later, &o), 0);
        void *v = NULL;
        assert_int_equal(weft_future_take(outs[0], &v), 0);
        assert_int_equal(weft_future_done(outs[1]), 1); /* b is done */
        assert_int_equal(val_of(v), 5);
        val_dtor(v); /* ours */
        pthread_join(th, NULL);
        assert_int_equal(out_val(outs[1]), mix(mix(2, 5), 1));
        assert_int_equal(weft_future_get(all, -1, NULL), 0);
        void *again = (void *)1;
        assert_int_equal(weft_future_take(outs[0], &again), 0);
        assert_null(again);
        weft_future_release(outs[0]);
        weft_future_release(outs[1]);
        weft_future_release(all);
        weft_graph_destroy(&g);
    }
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&dtors), 30); /* a (by us), hold, b */
}

/* A run that ends while weft_graph_run is still starting it: one cheap
 * root (id 0) is the only node needed, and many nodes after it are not;
 * the caller's thread must not touch the run once its last node is done
 * (ASan: heap-use-after-free; TSan: a race with the free). */
static void test_run_ends_during_start(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&dtors, 0);
    static struct node root, rest;
    memset(&root, 0, sizeof root);
    memset(&rest, 0, sizeof rest);
    root.k = 3;
    weft_graph *g;
    assert_int_equal(weft_graph_create(&g), 0);
    assert_int_equal(add(g, "root", &root, NULL, 0), 0);
    int zero[1] = { 0 };
    for (int i = 1; i < 20000; i++)
        assert_int_equal(weft_graph_add_ids(g, NULL, node_fn, &rest, zero, 1,
                                            NULL), i);
    assert_int_equal(weft_graph_seal(g), 0);
    int runs = 200 / test_scale();
    const char *want[] = { "root" };
    for (int r = 0; r < runs; r++) {
        weft_future *all = NULL;
        if (r % 2) {
            assert_int_equal(weft_graph_run(g, rt, want, 1, NULL, &all), 0);
            assert_int_equal(weft_future_get(all, -1, NULL), 0);
            weft_future_release(all);
        } else {
            assert_int_equal(weft_graph_run(g, rt, want, 1, NULL, NULL), 0);
        }
    }
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&root.calls), runs);
    assert_int_equal(atomic_load(&rest.calls), 0);
    assert_int_equal(atomic_load(&dtors), runs);
    weft_graph_destroy(&g);
}

/* Output futures nobody released: destroying the runtime finishes the
 * runs and frees their results (the count here; LeakSanitizer for the
 * memory). */
static void test_unreleased_outputs(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&dtors, 0);
    struct diamond x;
    build_diamond(&x);
    int runs = 50;
    for (int r = 0; r < runs; r++) {
        const char *want[] = { "d", "b" };
        weft_future *outs[2], *all;
        assert_int_equal(weft_graph_run(x.g, rt, want, 2, outs, &all), 0);
        if (r % 2 == 0) { /* half of them awaited, none released */
            assert_int_equal(out_val(outs[0]), diamond_d());
            assert_int_equal(weft_future_get(all, -1, NULL), 0);
        }
    }
    weft_graph_destroy(&x.g);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&x.d.calls), runs);
    assert_int_equal(atomic_load(&dtors), 4l * runs);
}

/* Cancelling an output cancels its node as weft_future_cancel does a
 * task. a waits behind hold (a gate), so a's output is cancelled before
 * a starts: cancel says 0, a never runs, its output is -ECANCELED and b,
 * which reads a's result, fails instead of reading a value destroyed
 * under it (ASan: heap-use-after-free when a ran and its output refused
 * the result). A running node's output cancel is -EINPROGRESS and the
 * node sees it. */
static int see_cancel_fn(weft_job *job, void *arg)
{
    struct gate *gt = arg;
    atomic_fetch_add(&gt->entered, 1);
    while (!weft_job_cancelled(job))
        sched_yield();
    return -EINTR;
}

static void test_cancel_output(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&dtors, 0);
    struct gate gt = { 0 }, seen = { 0 };
    struct node hold = { .k = 1, .gate = &gt }, a = { .k = 5 },
                b = { .k = 2 };
    weft_graph *g;
    assert_int_equal(weft_graph_create(&g), 0);
    const char *da[] = { "hold" }, *db[] = { "a" };
    assert_int_equal(add(g, "hold", &hold, NULL, 0), 0);
    assert_int_equal(add(g, "a", &a, da, 1), 1);
    assert_int_equal(add(g, "b", &b, db, 1), 2);
    assert_int_equal(weft_graph_add(g, "spin", see_cancel_fn, &seen, NULL, 0,
                                    NULL), 3);
    assert_int_equal(weft_graph_seal(g), 0);
    const char *want[] = { "a", "b", "spin" };
    weft_future *outs[3], *all;
    assert_int_equal(weft_graph_run(g, rt, want, 3, outs, &all), 0);
    assert_int_equal(weft_future_cancel(outs[0]), 0);
    assert_int_equal(weft_future_get(outs[0], 0, NULL), -ECANCELED);
    gate_open(&gt);
    assert_int_equal(weft_future_get(outs[1], LONG_WAIT, NULL),
                     WEFT_STATUS_DEP_FAILED(0));
    assert_int_equal(weft_future_cause(outs[1]), -ECANCELED);
    assert_int_equal(gate_wait_entered(&seen, 1), 0);
    assert_int_equal(weft_future_cancel(outs[2]), -EINPROGRESS);
    assert_int_equal(weft_future_get(outs[2], LONG_WAIT, NULL), -EINTR);
    assert_int_not_equal(weft_future_get(all, LONG_WAIT, NULL), 0);
    assert_int_equal(atomic_load(&a.calls), 0);
    assert_int_equal(atomic_load(&b.calls), 0);
    for (int i = 0; i < 3; i++)
        weft_future_release(outs[i]);
    weft_future_release(all);
    weft_graph_destroy(&g);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&dtors), 1); /* hold's */
}

/* Cancelling *all while the run goes: the running node sees the cancel
 * (weft_future_cancel says -EINPROGRESS, as for a running task), the
 * nodes not started yet do not run, and *all completes only when the
 * run's last node is done, so a caller that waited for it may free what
 * the nodes use. first waits at a gate; second needs first. Before, the
 * cancel returned 0 and completed *all at once, while first still ran. */
struct noter {
    struct gate gt;
    int saw_cancel;   /* weft_job_cancelled once through the gate */
    _Atomic int done; /* set just before the function returns */
};

static int note_cancel_fn(weft_job *job, void *arg)
{
    struct noter *n = arg;
    atomic_fetch_add(&n->gt.entered, 1);
    int rc = gate_wait_open(&n->gt) ? -ETIMEDOUT : 0;
    n->saw_cancel = weft_job_cancelled(job);
    atomic_store(&n->done, 1);
    return rc;
}

static void test_cancel_run(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&dtors, 0);
    struct noter first = { 0 };
    struct node second = { .k = 2 };
    weft_graph *g;
    assert_int_equal(weft_graph_create(&g), 0);
    const char *d2[] = { "first" };
    assert_int_equal(weft_graph_add(g, "first", note_cancel_fn, &first, NULL,
                                    0, NULL), 0);
    assert_int_equal(add(g, "second", &second, d2, 1), 1);
    assert_int_equal(weft_graph_seal(g), 0);
    weft_future *all;
    assert_int_equal(weft_graph_run(g, rt, NULL, 0, NULL, &all), 0);
    assert_int_equal(gate_wait_entered(&first.gt, 1), 0);
    assert_int_equal(weft_future_cancel(all), -EINPROGRESS);
    assert_int_equal(weft_future_done(all), 0); /* first is still running */
    assert_int_equal(weft_future_cancel(all), -EINPROGRESS);
    gate_open(&first.gt);
    assert_int_equal(weft_future_get(all, LONG_WAIT, NULL), -ECANCELED);
    assert_int_equal(atomic_load(&first.done), 1);
    assert_int_equal(first.saw_cancel, 1);
    assert_int_equal(atomic_load(&second.calls), 0);
    assert_int_equal(weft_future_cancel(all), -EALREADY);
    weft_future_release(all);
    weft_graph_destroy(&g);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&dtors), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_run),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_culling),
        cmocka_unit_test(test_failure),
        cmocka_unit_test(test_dag_by_ids),
        cmocka_unit_test(test_concurrent_runs),
        cmocka_unit_test(test_run_inside_task),
        cmocka_unit_test(test_destroy_in_flight),
        cmocka_unit_test(test_take_output),
        cmocka_unit_test(test_run_ends_during_start),
        cmocka_unit_test(test_unreleased_outputs),
        cmocka_unit_test(test_cancel_output),
        cmocka_unit_test(test_cancel_run),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
