/* The suite's fork-join workloads: fib with a spawn per call, and the
 * unbalanced binomial tree of bench/common/uts.h (UTS T3-like: every node
 * but the root has 8 children with probability 0.124875, so most subtrees
 * die at once and a few run thousands of levels deep). Frames live on the
 * worker's stack, at most a block of them per node, so no frame array
 * grows with the root's fan-out (see "the unbalanced tree"). */
#include <math.h>
#include <stdio.h>

#include "fib_weft.h"
#include "suite.h"
#include "uts.h"

/* Sizes at factor 1: a few tenths of a second each on one core. */
#define FIB_CALLS 48.3e6 /* fib(36) */
#define UTS_ROOT_CHILDREN 3000.0

/* ---- the weft_run root of both workloads: body(p) on a worker */

struct fj_job {
    uint64_t (*body)(long p);
    long p;
    uint64_t r;
};

static int fj_root(void *arg)
{
    struct fj_job *j = arg;
    j->r = j->body(j->p);
    return 0;
}

/* *r is 0 when weft_run fails. */
static int fj_run(weft_runtime *rt, uint64_t (*body)(long), long p,
                  uint64_t *r)
{
    struct fj_job j = { body, p, 0 };
    int rc = weft_run(rt, fj_root, &j);
    *r = j.r;
    return rc;
}

/* ---- fib (bench/common/fib_weft.h) */

/* The serial twin: the same recursion, no spawn (the compiler may inline
 * and unroll it as it likes, as in bench/fj/fj_serial.c). */
static long fib_plain(int n)
{
    return n < 2 ? n : fib_plain(n - 1) + fib_plain(n - 2);
}

/* Calls fib(n) makes, itself included: 2 F(n+1) - 1. */
static double fib_calls(long n)
{
    double a = 0, b = 1; /* F(0), F(1) */
    for (long i = 0; i < n; i++) {
        double c = a + b;
        a = b;
        b = c;
    }
    return 2 * b - 1;
}

/* The n whose call count is nearest (in ratio) to FIB_CALLS * f: fib's
 * work grows by the golden ratio per step, so sizes are approximate and
 * runs count the calls they made. */
static long fib_param(double f)
{
    double want = log(FIB_CALLS * f);
    long best = 1;
    for (long n = 2; n <= 60; n++)
        if (fabs(log(fib_calls(n)) - want) <
            fabs(log(fib_calls(best)) - want))
            best = n;
    return best;
}

static void fib_label(long n, char *buf, size_t len)
{
    snprintf(buf, len, "fib(%ld)", n);
}

static uint64_t fib_body(long n)
{
    return (uint64_t)fib((int)n);
}

static int fib_serial(long n, scale_answer *out)
{
    *out = (scale_answer){ (uint64_t)fib_plain((int)n), fib_calls(n) };
    return 0;
}

static int fib_parallel(weft_runtime *rt, long n, scale_answer *out)
{
    uint64_t r;
    int rc = fj_run(rt, fib_body, n, &r);
    *out = (scale_answer){ r, fib_calls(n) };
    return rc;
}

const scale_workload scale_fib = {
    "fib", "fork-join, a spawn per call", "calls", fib_param, fib_label,
    scale_no_prepare, fib_serial, fib_parallel, scale_no_release,
};

/* ---- the unbalanced tree: the answer is the number of nodes
 *
 * As in bench/fj (bench/common/uts.h, "Traversal"): a node hashes its
 * children's states as it spawns them, a task per child, in blocks of at
 * most UTS_BLOCK frames on the stack, so that the siblings' independent
 * hash chains overlap; a fan-out beyond one block (the root's) is split
 * in halves first, so no array grows with it. A block is out of line, so
 * the task function stays a leaf test and a call, which the sync inlines
 * (<weft/task.h>, "Writing fast task code"). The serial twin does the
 * same without the spawns. */

#define UTS_BLOCK 64

#define NOINLINE __attribute__((noinline))

/* one child, its state hashed by the parent */
struct uts_frame {
    weft_task task;
    uint64_t s;
    uts_count r;
};

/* children [lo, hi) of the node of state s, not hashed yet */
struct uts_span {
    weft_task task;
    uint64_t s;
    int lo, hi;
    uts_count r;
};

static uts_count uts_span_run(uint64_t s, int lo, int hi);

/* A node of state s with nc children, itself included. */
static uts_count uts_node(uint64_t s, int nc)
{
    return nc == 0 ? 1 : 1 + uts_span_run(s, 0, nc);
}

static void uts_task(weft_task *t)
{
    struct uts_frame *f = (struct uts_frame *)t;
    f->r = uts_node(f->s, uts_bin_children(f->s));
}

static void uts_span_task(weft_task *t)
{
    struct uts_span *f = (struct uts_span *)t;
    f->r = uts_span_run(f->s, f->lo, f->hi);
}

static NOINLINE uts_count uts_block(uint64_t s, int lo, int hi)
{
    struct uts_frame kid[hi - lo];
    for (int i = lo; i < hi; i++) /* all hashed, then spawned: bench/common/uts.h */
        kid[i - lo].s = uts_child(s, i);
    for (int i = 0; i < hi - lo; i++)
        weft_spawn(&kid[i].task, uts_task);
    uts_count count = 0;
    for (int i = hi - lo - 1; i >= 0; i--) {
        weft_sync_fn(&kid[i].task, uts_task);
        count += kid[i].r;
    }
    return count;
}

static uts_count uts_span_run(uint64_t s, int lo, int hi)
{
    if (hi - lo <= UTS_BLOCK)
        return uts_block(s, lo, hi);
    struct uts_span a = { .s = s, .lo = lo, .hi = lo + (hi - lo) / 2 };
    weft_spawn(&a.task, uts_span_task);
    uts_count b = uts_span_run(s, a.hi, hi);
    weft_sync_fn(&a.task, uts_span_task);
    return a.r + b;
}

/* The serial twin: the same blocks, visited in order. */
static uts_count uts_plain(uint64_t s, int nc);

static NOINLINE uts_count uts_plain_block(uint64_t s, int lo, int hi)
{
    uint64_t kid[UTS_BLOCK];
    for (int i = lo; i < hi; i++)
        kid[i - lo] = uts_child(s, i);
    uts_count count = 0;
    for (int i = 0; i < hi - lo; i++)
        count += uts_plain(kid[i], uts_bin_children(kid[i]));
    return count;
}

static uts_count uts_plain(uint64_t s, int nc)
{
    uts_count count = 1;
    for (int lo = 0; lo < nc; lo += UTS_BLOCK)
        count += uts_plain_block(s, lo,
                                 nc - lo < UTS_BLOCK ? nc : lo + UTS_BLOCK);
    return count;
}

/* Root children: an int, as the tree's child indices are. */
static long uts_param(double f)
{
    long b0 = scale_count(UTS_ROOT_CHILDREN, f);
    return b0 < 1000000000 ? b0 : 1000000000;
}

static void uts_label(long b0, char *buf, size_t len)
{
    snprintf(buf, len, "binomial tree, %ld root children", b0);
}

static uint64_t uts_body(long b0)
{
    return uts_node(uts_root(UTS_BIN_SEED), (int)b0);
}

static int uts_serial(long b0, scale_answer *out)
{
    uts_count n = uts_plain(uts_root(UTS_BIN_SEED), (int)b0);
    *out = (scale_answer){ n, (double)n };
    return 0;
}

static int uts_parallel(weft_runtime *rt, long b0, scale_answer *out)
{
    uint64_t r;
    int rc = fj_run(rt, uts_body, b0, &r);
    *out = (scale_answer){ r, (double)r };
    return rc;
}

const scale_workload scale_uts = {
    "uts", "unbalanced tree search (UTS)", "nodes", uts_param, uts_label,
    scale_no_prepare, uts_serial, uts_parallel, scale_no_release,
};
