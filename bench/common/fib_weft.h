/* fib on weft frames, a spawn per call and no cutoff: the fork-join
 * benchmark's (bench/fj/fj_weft.c) and weft-scale's fib are this one code,
 * so their figures measure the same thing. Uses <weft.h> only.
 *
 * The head-passing form (weft_spawn_at / weft_sync_at, the fastest) unless
 * the includer defines FIB_GENERIC first: then weft_spawn and the generic
 * weft_sync (fj-weft-generic); or FIB_SYNC_FN: weft_spawn and weft_sync_fn
 * (fj-weft-syncfn). The frame lives on the spawning task's
 * stack, its first member the weft_task, so the task function recovers it
 * with a cast. fib(n) is the entry for a root task. */
#ifndef BENCH_FIB_WEFT_H
#define BENCH_FIB_WEFT_H

#include <weft.h>

struct fib_frame {
    weft_task task;
    int n;
    long r;
};

static long fib_node(weft_head h, int n);

/* The leaf test, inlined at every call: a call is made only for a node
 * that spawns (<weft/task.h>, "Writing fast task code"). */
static inline long fib_at(weft_head h, int n)
{
    return n < 2 ? n : fib_node(h, n);
}

static void fib_task(weft_task *t)
{
    struct fib_frame *f = (struct fib_frame *)t;
    f->r = fib_at(weft_head_of(t), f->n);
}

/* Spawn fib(n-1), compute fib(n-2) inline. The frame is not zeroed:
 * the spawn sets up the task and the child writes r before the join.
 * Declared inline: gcc then inlines the recursion a few levels deep
 * (bench/RESULTS.md, "the head in a register"). */
static inline long fib_node(weft_head h, int n)
{
    struct fib_frame a;
    a.n = n - 1;
#if defined(FIB_GENERIC)
    weft_spawn(&a.task, fib_task);
    long b = fib_at(h, n - 2);
    weft_sync(&a.task);
#elif defined(FIB_SYNC_FN)
    weft_spawn(&a.task, fib_task);
    long b = fib_at(h, n - 2);
    weft_sync_fn(&a.task, fib_task);
#else
    weft_head h2 = weft_spawn_at(h, &a.task, fib_task);
    long b = fib_at(h2, n - 2);
    h2 = weft_sync_at(h2, &a.task, fib_task);
#endif
    return a.r + b;
}

static inline long fib(int n)
{
    return fib_at(weft_head_now(), n);
}

#endif
