/* weft fork-join tasks: spawn and sync on frames the caller owns.
 *
 *   struct fib { weft_task task; int n; long r; };
 *   static void fib_task(weft_task *t)
 *   { struct fib *f = (struct fib *)t; f->r = fib(f->n); }
 *   static long fib(int n)
 *   {
 *       if (n < 2) return n;
 *       struct fib a = { .n = n - 1 };
 *       weft_spawn(&a.task, fib_task);
 *       long b = fib(n - 2);
 *       weft_sync_fn(&a.task, fib_task);    (or the generic weft_sync(&a.task))
 *       return a.r + b;
 *   }
 *
 * The frame (here `a`) usually lives on the spawning task's stack. Between
 * weft_spawn() and the matching sync the runtime owns the `task` member and
 * the child may run on another worker at any moment; the caller may read the
 * child's results only after the sync. Syncs must match spawns in reverse
 * order (LIFO), like nested parentheses, and every spawn must be synced
 * before the spawning task returns.
 *
 * Cost: a spawn and its sync are a handful of instructions and allocate
 * nothing when no thief took the child. A sync whose child was stolen runs
 * other tasks (first from the thief) until the child is done; it never
 * blocks the worker.
 *
 * Misuse, defined so that it cannot corrupt the runtime:
 *  - Outside a task (a thread that is not a weft worker), weft_spawn() runs
 *    the child at once and the sync does nothing: the code runs serially.
 *  - Syncing a frame that is not the most recent unsynced spawn first syncs
 *    every later spawn, then it (Cilk's "sync all" semantics).
 *  - Syncing a frame that was never spawned, or twice, does nothing and
 *    counts a misuse in the worker's statistics (weft_stats: misuses).
 *
 * The head-passing form, the fastest: the same code with the deque's head
 * carried in the caller's own arguments (Lace's trick), so that a spawn
 * does not wait for the head the previous spawn just stored:
 *
 *   static long fib(weft_head h, int n)
 *   {
 *       if (n < 2) return n;
 *       struct fib a = { .n = n - 1 };
 *       weft_head h2 = weft_spawn_at(h, &a.task, fib_task);
 *       long b = fib(h2, n - 2);
 *       weft_sync_at(h2, &a.task, fib_task);
 *       return a.r + b;
 *   }
 *   static void fib_task(weft_task *t)
 *   { struct fib *f = (struct fib *)t; f->r = fib(weft_head_now(), f->n); }
 *
 * It is exactly as safe as the forms above: the head passed in is only
 * checked against the real one (which spawn and sync keep current), and
 * any mismatch takes the generic path, so a stale or wrong head costs
 * speed, never correctness; other weft calls may come in between.
 *
 * Writing fast task code: the sync of these forms calls the function it
 * names directly, so the compiler can inline it there. Keep the task
 * function small, a leaf test and a call, and put a node's expansion
 * (its frames and spawn/sync loops) in a separate, not inlined function:
 * then a child with no work of its own costs a compare at the sync, not a
 * call (bench/fj/fj_weft.c's UTS; bench/RESULTS.md, "UTS: the children
 * hashed where the node expands"). Measure it: for fib, whose leaves do
 * no work, the same split was slower.
 *
 * This header's inline functions are C11 (they use <stdatomic.h>). */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stdatomic.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_task weft_task;
typedef void (*weft_task_fn)(weft_task *task);

/* The runtime's header inside a caller-owned frame: 16 bytes. Its content
 * belongs to the runtime from spawn to sync; it need not be initialised. */
struct weft_task {
    weft_task_fn fn;
    void *weft__reserved;
};

/* Internal: the calling worker's view of its own deque. Public only because
 * the inline spawn/sync below need its layout. Do not use its fields.
 *
 * A spawn makes one bound check, head < lim, and nothing else: lim is the
 * deque's end while the fast path may push; NULL while the owner must
 * republish (every shared task was stolen); the deque's start once a
 * thief asked the owner to share more. So a thief's request costs the
 * spawns no separate flag to test, and no spawn writes a counter: a
 * counter in memory, even one owner-only increment, made fib(35) 30 %
 * slower (bench/RESULTS.md, "one compare per spawn"). */
typedef struct weft__cursor {
    weft_task **head;  /* next free slot; owner only */
    weft_task **split; /* slots below split may be stolen; owner only */
    _Atomic(weft_task **) lim; /* owner, and thieves asking to share */
} weft__cursor;

extern WEFT_API _Thread_local weft__cursor weft__cur;

#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN 1
#endif
#endif

/* Internal: the fast path's bound, a relaxed load (lim is a hint to take
 * the slow path; what a thief may take is published by the deque's own
 * atomics there). On x86-64 it is written as the one mov that the relaxed
 * load compiles to anyway: gcc's inliner prices an atomic load like a
 * call, and that alone kept it from inlining recursive task code into
 * itself as it does serial code (fib(35) 52.8 against 46.1 ms on one
 * worker). Under ThreadSanitizer the atomic load stays, so that it sees
 * the accesses. */
static inline WEFT__ALWAYS_INLINE weft_task **weft__lim(weft__cursor *c)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(WEFT__TSAN)
    weft_task **v;
    __asm__("movq %1, %0" : "=r"(v) : "m"(c->lim));
    return v;
#else
    return atomic_load_explicit(&c->lim, memory_order_relaxed);
#endif
}

WEFT_API void weft__spawn_slow(weft_task *t);
WEFT_API void weft__sync_slow(weft_task *t);

/* Internal: run the child t at its sync, directly through fn when fn is
 * what t was spawned with (so the compiler can inline it), else through
 * t->fn: a wrong fn costs speed, never correctness. */
static inline WEFT__ALWAYS_INLINE void weft__run_child(weft_task *t, weft_task_fn fn)
{
    if (WEFT_LIKELY(t->fn == fn))
        fn(t);
    else
        t->fn(t);
}

/* Spawn fn(t) as a child of the running task. Callable only from inside a
 * task (see above for what happens outside). Never fails, never allocates:
 * when the deque is full the child runs at once, which fork-join semantics
 * allow. */
static inline void weft_spawn(weft_task *t, weft_task_fn fn)
{
    weft__cursor *c = &weft__cur;
    weft_task **h = c->head;
    t->fn = fn;
    if (WEFT_LIKELY(h < weft__lim(c))) {
        *h = t;
        c->head = h + 1;
        return;
    }
    weft__spawn_slow(t);
}

/* Wait for the child spawned in t and make its effects visible. The generic
 * form: when the child was not stolen it is called through t->fn. */
static inline void weft_sync(weft_task *t)
{
    weft__cursor *c = &weft__cur;
    weft_task **h = c->head;
    if (WEFT_LIKELY(h > c->split && h[-1] == t)) {
        c->head = h - 1;
        t->fn(t);
        return;
    }
    weft__sync_slow(t);
}

/* The fast form: the same as weft_sync(t), but the caller names the
 * function it spawned, so the compiler calls (or inlines) it directly.
 * If fn is not what t was spawned with, t->fn is called instead, so a
 * wrong fn costs speed, never correctness. */
static inline void weft_sync_fn(weft_task *t, weft_task_fn fn)
{
    weft__cursor *c = &weft__cur;
    weft_task **h = c->head;
    if (WEFT_LIKELY(h > c->split && h[-1] == t)) {
        c->head = h - 1;
        weft__run_child(t, fn);
        return;
    }
    weft__sync_slow(t);
}

/* ---- the head-passing form (see the top of this file) ---- */

/* Where the calling task's next spawn goes. A value to pass along, not to
 * look into; stale values are harmless (see above). */
typedef struct weft_head {
    weft_task **weft__p;
} weft_head;

/* The calling thread's current head: at the start of a task function, or
 * wherever a head is not at hand. Outside a task it is a null head, and
 * the calls below then run the code serially, as weft_spawn does. */
static inline weft_head weft_head_now(void)
{
    weft_head h = {weft__cur.head};
    return h;
}

/* weft_spawn(t, fn) at head h (the current one: weft_head_now() or what
 * the last weft_spawn_at or weft_sync_at of this task returned). Returns
 * the head for the code that follows the spawn. */
static inline weft_head weft_spawn_at(weft_head h, weft_task *t,
                                      weft_task_fn fn)
{
    weft__cursor *c = &weft__cur;
    weft_task **p = h.weft__p;
    t->fn = fn;
    /* the head is addressed through p, a register, and only compared with
     * c->head: a predicted branch, not a load the store waits for */
    if (WEFT_LIKELY(p == c->head && p < weft__lim(c))) {
        *p = t;
        c->head = p + 1;
        h.weft__p = p + 1;
        return h;
    }
    weft__spawn_slow(t);
    return weft_head_now();
}

/* weft_sync_fn(t, fn) where h is the head weft_spawn_at returned for t
 * (later spawns synced since). Returns the head after the join. */
static inline weft_head weft_sync_at(weft_head h, weft_task *t,
                                     weft_task_fn fn)
{
    weft__cursor *c = &weft__cur;
    weft_task **p = h.weft__p;
    if (WEFT_LIKELY(p == c->head && p > c->split && p[-1] == t)) {
        c->head = p - 1;
        h.weft__p = p - 1;
        weft__run_child(t, fn);
        return h;
    }
    weft__sync_slow(t);
    return weft_head_now();
}

#ifdef __cplusplus
}
#endif

#endif
