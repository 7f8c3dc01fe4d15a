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
 * nothing when no thief took the child: the runtime's bookkeeping is the
 * 16-byte weft_task inside the frame (a frame that thieves may take also
 * has an 8-byte slot in its worker's shared array). A sync whose child was
 * stolen runs other tasks (first from the thief) until the child is done;
 * it never blocks the worker.
 *
 * When thieves are hungry, a worker hands them its oldest frames at its
 * next spawn or sync; a frame spawned onto an empty list goes to them at
 * once, so that in spawn(A); B; sync(A) A runs in parallel with B even
 * when B makes no weft call. Otherwise a spawn is two tests (ask, and
 * whether the list was empty) and three stores.
 *
 * Misuse, defined so that it cannot corrupt the runtime:
 *  - Outside a task (a thread that is not a weft worker), each child runs
 *    at its sync: the code runs serially.
 *  - Syncing a frame that is not the most recent unsynced spawn first syncs
 *    every later spawn, then it (Cilk's "sync all" semantics).
 *  - Syncing a frame that was never spawned, or twice, does nothing and
 *    counts a misuse in the worker's statistics (weft_stats: misuses).
 *
 * The head-passing form: the same code with the newest frame carried in
 * the caller's own arguments (Lace's trick with its deque's head), which
 * tells the compiler at each spawn where the list stands; on fib it
 * measured fastest of the three forms (bench/RESULTS.md):
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
 * no work, the same split was slower. Most of a recursive task's speed
 * comes from the compiler inlining it into itself; gcc decides that by
 * size estimates that a few more instructions can tip. If yours is not
 * inlined (-fopt-info-inline says why), declaring the recursive function
 * `inline` raises gcc's limit: in bench/RESULTS.md's case, a fib that
 * gcc stopped inlining ran 46 ms, the same declared inline 23.6 ms.
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
    weft_task *weft__link; /* runtime-private */
};

/* Internal: the calling thread's view of its own frames. Public only
 * because the inline spawn/sync below need its layout. Do not use it.
 *
 * A worker's frames that no thief can see yet form a list, newest first,
 * through the frames' own headers: top is the newest. Only the owner
 * touches the list, with plain loads and stores, so the compiler may keep
 * top in a register across inlined calls and drop stores that a later
 * store overwrites, as it does with serial code: that is what lets it
 * inline recursive task code into itself (bench/RESULTS.md, "private
 * frames on a list"). A thief that finds nothing to steal sets ask; the
 * owner's next spawn or sync sees it and moves the oldest half of its
 * list into the shared array (lib/core/deque.c). Threads that are not
 * workers keep ask set. */
typedef struct weft__cursor {
    weft_task *top;    /* newest private frame, NULL if none; owner only */
    _Atomic int ask;   /* nonzero: the next spawn or sync serves thieves */
} weft__cursor;

extern WEFT_API _Thread_local weft__cursor weft__cur;

#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN 1
#endif
#endif

/* Internal: the sync's test of ask, a relaxed load (ask is a hint to
 * take the slow path; what a thief may take is published by the shared
 * array's own atomics there). On x86-64 it is written as the one mov that
 * the relaxed load compiles to anyway: gcc's inliner prices an atomic
 * load like a call, and that alone kept it from inlining recursive task
 * code into itself. Under ThreadSanitizer the atomic load stays, so that
 * it sees the accesses. */
static inline WEFT__ALWAYS_INLINE int weft__ask(weft__cursor *c)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(WEFT__TSAN)
    int v;
    __asm__("movl %1, %0" : "=r"(v) : "m"(c->ask));
    return v;
#else
    return atomic_load_explicit(&c->ask, memory_order_relaxed);
#endif
}

WEFT_API WEFT__COLD void weft__serve(void);
WEFT_API WEFT__COLD void weft__serve_spawn(void);
WEFT_API WEFT__COLD void weft__spawn_first(weft_task *t);
WEFT_API WEFT__COLD void weft__sync_slow(weft_task *t);

/* Internal: serve hungry thieves first (ask); the first step of a sync.
 * The three syncs below spell out the rest of their fast path rather than
 * share a helper that also compares fn: written that way, gcc stopped
 * inlining fib into itself (fib(35) 45.9 against 24.5 ms on one worker). */
static inline WEFT__ALWAYS_INLINE void weft__serve_asked(weft__cursor *c)
{
    if (WEFT_UNLIKELY(weft__ask(c)))
        weft__serve();
}

/* Internal: the same, the first step of a spawn. It costs fib(35) about
 * 3 % on one worker; without it a parent that spawns as it goes, with
 * serial work between the spawns, shares nothing before its first sync
 * (bench/fj/spawnloop_weft.c -b). */
static inline WEFT__ALWAYS_INLINE void weft__serve_at_spawn(weft__cursor *c)
{
    if (WEFT_UNLIKELY(weft__ask(c)))
        weft__serve_spawn();
}

/* Internal: the spawn's second test. A frame linked onto an empty list (a
 * task's first spawn, or the first after its earlier children were all
 * synced or stolen) goes to hungry thieves at once (weft__spawn_first),
 * else spawn(A); B; sync(A) with a B that makes no weft call would keep A
 * until its sync. Lace shares such a spawn too. The call comes after
 * t->fn is set and before the link and top are, and moves neither, so
 * that after it the compiler knows the list as it does on the fast path;
 * inlined into a task's own recursion, the test of a top it just stored
 * folds away. The slow paths are declared cold: without that, this one
 * call made gcc stop inlining fib into itself (fib(35) on one worker 46
 * against 23.7 ms). */
static inline WEFT__ALWAYS_INLINE void weft__push(weft__cursor *c,
                                                  weft_task *t,
                                                  weft_task_fn fn,
                                                  weft_task *below)
{
    t->fn = fn;
    if (WEFT_UNLIKELY(!below))
        weft__spawn_first(t);
    t->weft__link = below;
    c->top = t;
}

/* Spawn fn(t) as a child of the running task: serve thieves that asked,
 * then link the frame (and share it at once, if it is the only one and
 * thieves are asking). Never fails, never allocates. */
static inline void weft_spawn(weft_task *t, weft_task_fn fn)
{
    weft__cursor *c = &weft__cur;
    weft__serve_at_spawn(c);
    weft__push(c, t, fn, c->top);
}

/* Wait for the child spawned in t and make its effects visible. The generic
 * form: when the child was not stolen it is called through t->fn. */
static inline void weft_sync(weft_task *t)
{
    weft__cursor *c = &weft__cur;
    weft__serve_asked(c);
    if (WEFT_LIKELY(c->top == t)) {
        c->top = t->weft__link;
        t->fn(t);
    } else {
        weft__sync_slow(t);
    }
}

/* The fast form: the same as weft_sync(t), but the caller names the
 * function it spawned, so the compiler calls (or inlines) it directly.
 * If fn is not what t was spawned with, t->fn is called instead (by the
 * out-of-line path, which keeps the inlined code small), so a wrong fn
 * costs speed, never correctness. */
static inline void weft_sync_fn(weft_task *t, weft_task_fn fn)
{
    weft__cursor *c = &weft__cur;
    weft__serve_asked(c);
    if (WEFT_LIKELY(c->top == t && t->fn == fn)) {
        c->top = t->weft__link;
        fn(t);
    } else {
        weft__sync_slow(t);
    }
}

/* ---- the head-passing form (see the top of this file) ---- */

/* The calling task's newest private frame, carried in the caller's own
 * arguments. A value to pass along, not to look into; stale values are
 * harmless (see above). */
typedef struct weft_head {
    weft_task *weft__p;
} weft_head;

/* The calling thread's current head: at the start of a task function, or
 * wherever a head is not at hand. */
static inline weft_head weft_head_now(void)
{
    weft_head h = {weft__cur.top};
    return h;
}

/* weft_spawn(t, fn) at head h (the current one: weft_head_now() or what
 * the last weft_spawn_at or weft_sync_at of this task returned). Returns
 * the head for the code that follows the spawn. */
static inline weft_head weft_spawn_at(weft_head h, weft_task *t,
                                      weft_task_fn fn)
{
    weft__cursor *c = &weft__cur;
    weft__serve_at_spawn(c);
    weft_task *top = h.weft__p;
    /* the link is stored from h, a register, once compared with the real
     * top (a stale h costs speed only). Written as a plain load of top,
     * the same spawn made gcc compile fib(35) 28.7 instead of 23.3 ms on
     * one worker (bench/fj, fj-weft -k fib -w 1). */
    if (WEFT_UNLIKELY(top != c->top))
        top = c->top;
    weft__push(c, t, fn, top);
    h.weft__p = t;
    return h;
}

/* weft_sync_fn(t, fn) where h is the head weft_spawn_at returned for t
 * (later spawns synced since). Returns the head after the join. */
static inline weft_head weft_sync_at(weft_head h, weft_task *t,
                                     weft_task_fn fn)
{
    weft__cursor *c = &weft__cur;
    weft__serve_asked(c);
    if (WEFT_LIKELY(c->top == t && t->fn == fn)) {
        h.weft__p = t->weft__link;
        c->top = h.weft__p;
        fn(t);
        return h;
    }
    weft__sync_slow(t);
    return weft_head_now();
}

#ifdef __cplusplus
}
#endif

#endif
