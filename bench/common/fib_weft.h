/* fib on weft frames, a spawn per call and no cutoff: the fork-join
 * benchmark's (bench/fj/fj_weft.c) and weft-scale's fib are this one code,
 * so their figures measure the same thing. Uses <weft.h> only.
 *
 * The fast form, typed tasks (<weft/taskdef.h>: the head-passing form
 * with the head hidden), unless the includer defines FIB_GENERIC first:
 * then weft_spawn and the generic weft_sync (fj-weft-generic); or
 * FIB_SYNC_FN: weft_spawn and weft_sync_fn (fj-weft-syncfn). Each is
 * written as that form is best written (<weft/task.h>, "Writing fast task
 * code"): the leaf test apart from the node's expansion. fib(n) is the
 * entry for a root task. */
#ifndef BENCH_FIB_WEFT_H
#define BENCH_FIB_WEFT_H

#include <weft.h>

#if defined(FIB_GENERIC) || defined(FIB_SYNC_FN)

struct fib_frame {
    weft_task task;
    int n;
    long r;
};

static long fib_node(int n);

/* The leaf test, inlined at every call: a call is made only for a node
 * that spawns. */
static inline long fib_at(int n)
{
    return n < 2 ? n : fib_node(n);
}

/* The leaf test inlined into the task function: weft_sync_fn calls it
 * directly, and weft_spawn may too (a child run at its spawn), so the
 * compiler inlines it there. Before spawns could run their children, the
 * generic form wanted the opposite shape, the expansion a noinline
 * function that the task function tail-called: its sync called every
 * child through the frame (fib(35) on one worker 38.6 against 41.3 ms
 * then; bench/RESULTS.md, "Children that run at their spawn"). */
static void fib_task(weft_task *t)
{
    struct fib_frame *f = (struct fib_frame *)t;
    f->r = fib_at(f->n);
}

/* Spawn fib(n-1), compute fib(n-2) inline. The frame is not zeroed:
 * the spawn sets up the task and the child writes r before the join.
 * Declared inline: gcc then inlines the recursion a few levels deep. */
static inline long fib_node(int n)
{
    struct fib_frame a;
    a.n = n - 1;
    weft_spawn(&a.task, fib_task);
    long b = fib_at(n - 2);
#if defined(FIB_GENERIC)
    weft_sync(&a.task);
#else
    weft_sync_fn(&a.task, fib_task);
#endif
    return a.r + b;
}

static inline long fib(int n)
{
    return fib_at(n);
}

#else /* typed tasks */

WEFT_TASK_DECL_1(long, fib_node, int, n);

/* The leaf test: a call is made only for a node that spawns. */
WEFT_TASK_1(long, fib, int, n)
{
    return n < 2 ? n : WEFT_CALL(fib_node, n);
}

/* Spawn fib(n-1), compute fib(n-2) here. The frame is not zeroed: the
 * spawn fills it and the child writes its result before the sync. */
WEFT_TASK_1(long, fib_node, int, n)
{
    fib_frame a;
    WEFT_SPAWN(fib, &a, n - 1);
    long b = WEFT_CALL(fib, n - 2);
    return WEFT_SYNC(fib, &a) + b;
}

#endif

#endif
