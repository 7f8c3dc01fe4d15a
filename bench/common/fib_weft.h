/* fib on weft frames, a spawn per call and no cutoff: the fork-join
 * benchmark's (bench/fj/fj_weft.c) and weft-scale's fib are this one code,
 * so their figures measure the same thing. Uses <weft.h> only.
 *
 * FIB_SYNC(t, fn) joins the child: weft_sync_fn() unless the includer
 * defines it first (fj-weft-generic measures plain weft_sync()). The
 * frame lives on the spawning task's stack, its first member the
 * weft_task, so the task function recovers it with a cast. */
#ifndef BENCH_FIB_WEFT_H
#define BENCH_FIB_WEFT_H

#include <weft.h>

#ifndef FIB_SYNC
#define FIB_SYNC(t, fn) weft_sync_fn((t), (fn))
#endif

struct fib_frame {
    weft_task task;
    int n;
    long r;
};

static long fib(int n);

static void fib_task(weft_task *t)
{
    struct fib_frame *f = (struct fib_frame *)t;
    f->r = fib(f->n);
}

/* Spawn fib(n-1), compute fib(n-2) inline. The frame is not zeroed:
 * weft_spawn() sets up the task and the child writes r before the join. */
static long fib(int n)
{
    if (n < 2)
        return n;
    struct fib_frame a;
    a.n = n - 1;
    weft_spawn(&a.task, fib_task);
    long b = fib(n - 2);
    FIB_SYNC(&a.task, fib_task);
    return a.r + b;
}

#endif
