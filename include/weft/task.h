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
 *       weft_sync(&a.task);
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
 * has three 8-byte words beside its slot in its worker's shared array:
 * the frame, its function and its steal state; 40 bytes in all). A sync whose child was stolen runs other tasks (first from
 * the thief) until the child is done; it never blocks the worker.
 *
 * When thieves are hungry, a worker hands them its oldest frames at its
 * next spawn or sync; a spawn with nothing older to hand over hands over
 * its own frame, so that in spawn(A); B; sync(A) A runs in parallel with
 * B even when B makes no weft call. Otherwise a spawn is one test (ask)
 * and two or three stores.
 *
 * Children that run at their spawn (the generic weft_spawn only). Once a
 * worker keeps `hold` children waiting on its list for thieves (4 by
 * default: weft_config.hold, WEFT_HOLD), a weft_spawn made by code that a
 * spawn or a sync called runs its child at once, as a plain call that the
 * compiler can inline, and the matching sync only clears a mark: fib(35)
 * on one worker 19-21 ms against 38-40 ms when every child waited for
 * its sync, which called it through the frame (bench/RESULTS.md,
 * "Children that run at their spawn"). Thieves still find the oldest,
 * largest frames, the ones kept; a task that the worker started itself
 * (weft_run's root, a stolen frame) never runs children at their spawns,
 * so its loops of spawns stay open to thieves as before; and a child so
 * run that returns to find a thief waiting (a long child that made no
 * weft call) makes the worker keep four times as many (at most 64) until
 * it next starts a task of its own (weft_stats: starved). What this asks
 * of the code is what fork-join always asked: a child may run before the
 * code after its spawn, so it must not wait for that code, or for a
 * sibling spawned after it (or before it: that one may be waiting on the
 * list behind it). A hold of -1 keeps every child on the list.
 *
 * Misuse of the generic form and of weft_sync_fn, defined so that it
 * cannot corrupt the runtime:
 *  - Outside a task (a thread that is not a weft worker), each child runs
 *    at its sync: the code runs serially.
 *  - Syncing a frame that is not the most recent unsynced spawn first syncs
 *    every later spawn, then it (Cilk's "sync all" semantics).
 *  - Syncing a frame that was never spawned, or twice, does nothing and
 *    counts a misuse in the worker's statistics (weft_stats: misuses).
 *    A child that ran at its spawn is complete from the start: a sync of
 *    it after an older frame's sync (which synced it, by the rule above)
 *    is its first and is not counted; a second sync of its own is.
 *
 * The head-passing form, the fastest: the newest frame travels in the
 * caller's own variables (Lace's trick with its deque's head), so a spawn
 * and its sync touch the frame and nothing else (the generic form also
 * reads and writes weft__cur.top, a thread-local):
 *
 *   static long fib_node(weft_head h, int n);
 *   static inline long fib(weft_head h, int n)
 *   { return n < 2 ? n : fib_node(h, n); }
 *   static void fib_task(weft_task *t)
 *   { struct fib *f = (struct fib *)t; f->r = fib(weft_head_of(t), f->n); }
 *   static inline long fib_node(weft_head h, int n)
 *   {
 *       struct fib a = { .n = n - 1 };
 *       weft_head h2 = weft_spawn_at(h, &a.task, fib_task);
 *       long b = fib(h2, n - 2);
 *       h2 = weft_sync_at(h2, &a.task, fib_task);
 *       return a.r + b;
 *   }
 *
 * Its one rule: pass the head that the previous call of this code returned
 * (weft_spawn_at, weft_sync_at), or weft_head_of(t) at the start of t's
 * task function, or weft_head_now() anywhere (always valid; it only
 * leaves the frames below out of what thieves are offered). A frame
 * spawned with weft_spawn_at is synced with weft_sync_at, and the other
 * forms' frames with theirs. Both calls' results must be used (assign
 * them, even after the last sync): the compiler warns where one is
 * dropped, which is how a stale head is made by mistake. A head kept
 * from earlier, after the frames it names were synced, is like a
 * dangling pointer and is not checked at run time (a child may run
 * twice): a thread-local copy to check it against, as this form used
 * to keep, cost fib(35) on one worker 25.0 against 21.7 ms, and marking
 * each synced frame 5 % (bench/RESULTS.md, "the head in a register").
 * Typed tasks (<weft/taskdef.h>: WEFT_TASK_n, WEFT_SPAWN, WEFT_SYNC) are
 * this form with the head hidden where no code but theirs can reach it:
 * as safe as the generic form, at this form's speed, and the way to write
 * it unless the head must cross code that the macros cannot describe.
 * The generic form is as safe, at about 1.1x. Within that rule,
 * the misuses above are defined for this form too: out of order syncs all
 * later ones first, a frame not found (synced already, or never spawned)
 * is counted and ignored, and a wrong fn runs the frame's own. Generic calls (weft_spawn, weft_sync, futures)
 * may come between a head-passing spawn and its sync.
 *
 * Writing fast task code: the sync of these forms calls the function it
 * names directly, and a generic spawn that runs its child calls the
 * function it was given, so the compiler can inline it there. Keep the leaf
 * test in a small inline function and the node's expansion (its frames
 * and spawn/sync) in another, so that a child with no work of its own
 * costs a compare at the sync, not a call: fib(35) on one worker took
 * 21.7 ms written in one function, 17.7 ms split as above (bench/fj). Most
 * of a recursive task's speed comes from the compiler inlining it into
 * itself; gcc decides that by size estimates that a few more
 * instructions can tip, and declaring the expansion `inline` raises its
 * limit. -fopt-info-inline says what it decided.
 *
 * The generic weft_sync calls a child that waited on the list through
 * its frame, which nothing inlines; so few children wait there (see
 * "Children that run at their spawn") that the task function is best
 * written for the spawn's direct call, whole, as above.
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
 * A worker's frames that no thief can see yet are linked newest first
 * through the frames' own headers (weft__link); only the owner touches
 * them, with plain loads and stores. The generic form keeps its newest
 * frame in top; the head-passing form keeps it in the caller's own
 * variables (weft_head), which the compiler holds in registers, so that a
 * spawn and its sync touch no memory but the frame (bench/RESULTS.md,
 * "the head in a register"). A thief that finds nothing to steal sets
 * ask; the owner's next spawn or sync sees it and moves its oldest frames
 * into the shared array (lib/core/deque.c), where each one's fn is
 * replaced by weft__sync_shared: that is how a sync tells a shared frame
 * from a private one without looking anywhere else. Threads that are not
 * workers keep ask set. */
typedef struct weft__cursor {
    weft_task *top;    /* newest frame of the generic form; owner only */
    _Atomic int ask;   /* nonzero: the next spawn or sync serves thieves */
    /* The generic list's private frames minus how many the worker keeps
     * for thieves (its hold): at 0 or more, a generic spawn runs its
     * child at once. Owner only. */
    int budget;
    /* Nonzero while the running code was called by a spawn or a sync:
     * only there does a spawn run its child at once, never in a task the
     * worker started itself (a root, a stolen frame), whose wide loops
     * of spawns must stay open to thieves. Owner only. */
    int nest;
} weft__cursor;

extern WEFT_API _Thread_local weft__cursor weft__cur;
/* The inline code names weft__cur itself, never through a pointer: gcc 12
 * with -fsanitize=null tests a pointer to a thread-local for NULL and, at
 * some sites, branched on flags that a lea had not set, so UBSan reported
 * a null cursor that was not (test_forkjoin's misuse test, CI of 9fbb61a).
 * A variable named directly has no null test to get wrong. */

#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN 1
#endif
#endif

/* Internal: the test of ask, a relaxed load (ask is a hint to take the
 * slow path; what a thief may take is published by the shared array's
 * own atomics there). On x86-64 it is written as the one mov that the
 * relaxed load compiles to anyway: gcc's inliner prices an atomic load
 * like a call, and that alone kept it from inlining recursive task code
 * into itself. Under ThreadSanitizer the atomic load stays, so that it
 * sees the accesses. */
static inline WEFT__ALWAYS_INLINE int weft__ask(void)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(WEFT__TSAN)
    int v;
    __asm__("movl %1, %0" : "=r"(v) : "m"(weft__cur.ask));
    return v;
#else
    return atomic_load_explicit(&weft__cur.ask, memory_order_relaxed);
#endif
}

/* Internal, out of line (lib/core/deque.c). They are declared cold: one
 * more call that gcc took for a hot one stopped it inlining fib into
 * itself (fib(35) on one worker 46 against 23.7 ms). */
WEFT_API WEFT__COLD void weft__spawn_slow(weft_task *below, weft_task *t,
                                          weft_task_fn fn);
WEFT_API WEFT__COLD weft_task *weft__sync_slow(weft_task *top, weft_task *t,
                                               weft_task_fn fn);
WEFT_API WEFT__COLD void weft__spawn_slow_g(weft_task *t, weft_task_fn fn);
WEFT_API WEFT__COLD void weft__sync_slow_g(weft_task *t, weft_task_fn fn);
WEFT_API WEFT__COLD void weft__ran_starved(void);
WEFT_API void weft__sync_shared(weft_task *t);

/* Internal: link frame t above below. When thieves asked, the out-of-line
 * path does it and serves them, sharing t itself if nothing older is
 * private: so in spawn(A); B; sync(A) A reaches a hungry thief while B
 * runs, even when B makes no weft call. The common case is two stores. */
static inline WEFT__ALWAYS_INLINE void weft__link_frame(weft_task *below,
                                                        weft_task *t,
                                                        weft_task_fn fn)
{
    if (WEFT_UNLIKELY(weft__ask())) {
        weft__spawn_slow(below, t, fn);
    } else {
        t->fn = fn;
        t->weft__link = below;
    }
}

/* Spawn fn(t) as a child of the running task. Never fails, never
 * allocates. When the worker already keeps enough private frames for
 * thieves, and the running code was called by a spawn or a sync, the
 * child runs here and now, as a plain call that the compiler can inline,
 * and its sync does nothing: see "Children that run at their spawn" at
 * the top of this file. A child so run that leaves a thief waiting (ask
 * set when it returns) makes the worker keep more frames before it does
 * that again (weft__ran_starved). */
static inline void weft_spawn(weft_task *t, weft_task_fn fn)
{
    if (WEFT_UNLIKELY(weft__ask())) {
        weft__spawn_slow_g(t, fn);
    } else if (weft__cur.budget >= 0 && weft__cur.nest) {
        t->weft__link = t; /* ran at its spawn: its sync only clears this */
        fn(t);
        if (WEFT_UNLIKELY(weft__ask()))
            weft__ran_starved();
    } else {
        t->fn = fn;
        t->weft__link = weft__cur.top;
        weft__cur.top = t;
        weft__cur.budget++;
    }
}

/* Wait for the child spawned in t and make its effects visible. The generic
 * form: when the child was not stolen it is called through t->fn (a
 * shared frame's fn is weft__sync_shared, which waits for it or takes it
 * back). The syncs below spell out their fast paths rather than share a
 * helper: written with one, gcc stopped inlining fib into itself (fib(35)
 * 45.9 against 24.5 ms on one worker). */
static inline void weft_sync(weft_task *t)
{
    if (t->weft__link == t) { /* ran at its spawn */
        t->weft__link = (weft_task *)0; /* a second sync is a misuse */
    } else if (WEFT_LIKELY(!weft__ask() && weft__cur.top == t)) {
        weft__cur.top = t->weft__link;
        weft__cur.budget--;
        weft__cur.nest++;
        t->fn(t);
        weft__cur.nest--;
    } else {
        weft__sync_slow_g(t, (weft_task_fn)0);
    }
}

/* weft_sync(t), for code written when the generic sync called every
 * child through its frame and this one, given the function, called it
 * directly. Most children now run at their spawn, and naming fn again at
 * the sync only doubled the inlined code: fib(35) on one worker 24.6
 * against 18.8 ms (bench/RESULTS.md, "Children that run at their
 * spawn"). fn is not used; t's own function runs, as before when fn was
 * wrong. */
static inline void weft_sync_fn(weft_task *t, weft_task_fn fn)
{
    (void)fn;
    weft_sync(t);
}

/* ---- the head-passing form (see the top of this file) ---- */

/* The newest frame of the calling task's head-passing code, carried in
 * its own variables and arguments. A value to pass along, not to look
 * into. */
typedef struct weft_head {
    weft_task *weft__p;
} weft_head;

/* The head at the start of task t's function, when t was spawned with
 * weft_spawn_at: the frames below t, or none if t was stolen. The
 * fastest start: every frame below stays visible to thieves asking. */
static inline weft_head weft_head_of(const weft_task *t)
{
    weft_head h = {t->weft__link};
    return h;
}

/* The head anywhere else: in a root task, in code that uses the generic
 * form, or where no head is at hand. Always valid. */
static inline weft_head weft_head_now(void)
{
    weft_head h = {weft__cur.top};
    return h;
}

/* weft_spawn(t, fn) at head h, which must be current: what the last
 * weft_spawn_at or weft_sync_at of this code returned, or weft_head_of /
 * weft_head_now where it starts. Returns the head for the code that
 * follows. */
static inline WEFT__MUST_USE weft_head weft_spawn_at(weft_head h,
                                                     weft_task *t,
                                                     weft_task_fn fn)
{
    weft__link_frame(h.weft__p, t, fn);
    h.weft__p = t;
    return h;
}

/* weft_sync_fn(t, fn) at head h, the head weft_spawn_at returned for t or
 * what later calls returned. Returns the head for the code that follows:
 * assign it even after the last sync (h = weft_sync_at(h, ...)); the
 * compiler warns where a result is dropped, which is how a stale head is
 * made by mistake. */
static inline WEFT__MUST_USE weft_head weft_sync_at(weft_head h,
                                                    weft_task *t,
                                                    weft_task_fn fn)
{
    if (WEFT_LIKELY(!weft__ask() && h.weft__p == t &&
                    t->fn == fn)) {
        h.weft__p = t->weft__link;
        fn(t);
    } else {
        h.weft__p = weft__sync_slow(h.weft__p, t, fn);
    }
    return h;
}

#ifdef __cplusplus
}
#endif

#endif
