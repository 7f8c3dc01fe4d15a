/* The owner's half of the split deque: the slow paths of spawn and sync
 * (the fast paths are inline in <weft/task.h>).
 *
 * A worker's unsynced frames are split in two by age:
 *   - the older ones sit in the shared array w->dq, slots [0, w->split):
 *     [tail, split) may be stolen, [0, tail) were stolen and wait for
 *     their syncs (w->state says by whom and whether they are done);
 *   - the newer ones are private: linked newest first through the
 *     frames' weft__link, from a top that the caller holds (the generic
 *     form's weft__cur.top, or the head-passing form's weft_head). Only
 *     the owner sees them, so spawn and sync touch them with plain loads
 *     and stores, and the runtime sees a list only when a spawn or sync
 *     hands it the top (serving a thief, or a sync off the fast path).
 *
 * A shared frame's fn is weft__sync_shared and its link NULL; its real fn
 * is in w->dqfn beside its slot. So a walk down a list stops at the first
 * shared frame, a fast-path sync (which compares fn) misses a shared
 * frame, and the generic sync, which calls t->fn, lands in
 * weft__sync_shared. Frames move to the array oldest first along the
 * list that a top gives, and syncs are LIFO, so the array is a stack in
 * sync order: the frame a sync of a shared frame wants is the newest one,
 * slot split-1. A frame comes back from the array only to be synced
 * (reclaim_one), one at a time.
 *
 * Children that run at their spawn (<weft/task.h>) never reach a list:
 * their frame's link points at itself until the sync clears it. The
 * cursor's budget (private frames minus the worker's hold) is kept by
 * the inline code on its fast paths and recounted here whenever the list
 * changes off them (weft__recount).
 *
 * ts packs (tail, split) for the thieves; w->split mirrors its split half
 * (only the owner changes it). allstolen: every frame in the array was
 * stolen; then ask is set, so that the next spawn or sync shares, since
 * the thieves that emptied the array are hungry. */
#include <limits.h>
#include <sched.h>

#include "internal.h"

void weft__enter_allstolen(weft__worker *w)
{
    w->allstolen = true;
    weft__store_relaxed(&w->cur->ask, 1);
    if (!weft__load_relaxed(&w->allstolen_pub))
        weft__store_relaxed(&w->allstolen_pub, 1);
}

/* Take down ask and a thief's request. In this order, against the
 * thief's (split_req, then ask; worker.c request_split): whatever the
 * interleaving, a request is either seen by a spawn or leaves split_req
 * clear for the next thief to ask again. That needs one order of all four
 * stores that both threads agree on, hence seq_cst: with relaxed stores a
 * weakly ordered CPU may show the thief's ask=1 before our ask=0 and its
 * split_req=1 after our split_req=0, leaving a request that nobody sees
 * and that keeps every later thief from asking. (On x86 stores already
 * appear in one order.) Sharing is the slow path: the fences cost
 * nothing that matters. */
static void clear_ask(weft__worker *w)
{
    weft__store_seqcst(&w->cur->ask, 0);
    weft__store_seqcst(&w->split_req, 0);
}

static bool is_shared(const weft_task *f)
{
    return f->fn == weft__sync_shared;
}

/* The private frames from top down, at most limit of them: the first
 * shared one ends them. */
static int private_upto(weft_task *top, int limit)
{
    int n = 0;
    for (weft_task *f = top; n < limit && f && !is_shared(f);
         f = f->weft__link)
        n++;
    return n;
}

static uint32_t private_count(weft_task *top)
{
    return (uint32_t)private_upto(top, INT_MAX);
}

/* Set the cursor's budget for the generic list at top. A hold above
 * WEFT__HOLD_MAX means "never": no walk, and no count of spawns reaches
 * a budget of 0. */
void weft__recount(weft__worker *w, weft_task *top)
{
    if (w->hold > WEFT__HOLD_MAX)
        w->cur->budget = INT_MIN / 2;
    else
        w->cur->budget = private_upto(top, w->hold) - w->hold;
}

/* A child run at its spawn returned with ask set: a thief waited while
 * it ran, for frames that the spawns it held back would have given. Keep
 * four times as many before the next such run (up to WEFT__HOLD_MAX),
 * until this worker next starts a task of its own (weft__hold_reset). */
void weft__ran_starved(void)
{
    weft__worker *w = weft__self;
    if (!w)
        return;
    weft__stat_add(&w->starved, 1);
    if (w->hold <= WEFT__HOLD_MAX / 4)
        w->hold *= 4;
    else if (w->hold < WEFT__HOLD_MAX)
        w->hold = WEFT__HOLD_MAX;
    weft__recount(w, w->cur->top);
}

/* A task of the worker's own begins, on an empty list (weft_run's root,
 * or a steal from the idle loop): back to the runtime's hold. */
void weft__hold_reset(weft__worker *w)
{
    w->hold = w->rt->hold;
    weft__recount(w, NULL);
    w->cur->nest = 0;
}

/* Move the k oldest of the n private frames from top into the array, in
 * age order, and return how many moved: fewer when the array is full. The
 * newest frame that stays private gets the cut (its link NULL: nothing
 * private below it). The caller publishes them. */
static uint32_t move_oldest(weft__worker *w, weft_task *top, uint32_t n,
                            uint32_t k)
{
    if (k > w->cap - w->split)
        k = w->cap - w->split;
    if (k == 0)
        return 0;
    weft_task *keep = NULL, *f = top;
    for (uint32_t i = 0; i < n - k; i++) {
        keep = f;
        f = f->weft__link;
    }
    for (uint32_t i = k; i-- > 0;) { /* f: the newest of the k oldest */
        weft_task *below = f->weft__link;
        w->dq[w->split + i] = f;
        w->dqfn[w->split + i] = f->fn;
        f->fn = weft__sync_shared;
        f->weft__link = NULL; /* a thief's weft_head_of(f): nothing */
        f = below;
    }
    if (keep)
        keep->weft__link = NULL;
    return k;
}

/* Hand thieves the k frames just written to slots [split, split+k). */
static void publish(weft__worker *w, uint32_t k)
{
    /* seq_cst: publishes the slots and the frames (thieves load-acquire
     * ts) and is the publisher's half of the parking handshake */
    if (w->allstolen) {
        /* every earlier slot was stolen: tail == split, start afresh */
        weft__store_seqcst(&w->ts, weft__ts_make(w->split, w->split + k));
        w->allstolen = false;
        weft__store_relaxed(&w->allstolen_pub, 0);
    } else {
        weft__add_seqcst(&w->ts, (uint64_t)k << 32);
    }
    w->split += k;
    weft__stat_add(&w->published, k);
    weft__wake_for_work(w->rt, w->numa);
}

/* How many of n private frames to share: the oldest half (at least one),
 * as Lace does, which suits recursive work whose frames split further
 * where they land; but as many as there are idle workers (searching or
 * parked), keeping the newest, when that is more. A task that spawned a
 * loop of children that do not split (then syncs them newest first) would
 * otherwise feed p idle workers in log2(p) rounds of one child's length:
 * 16 children of 10 ms at 16 workers took 41 ms, not 10. */
static uint32_t share_count(weft__worker *w, uint32_t n)
{
    uint32_t k = (n + 1) / 2;
    if (n > 2) {
        int idle = weft__load_relaxed(&w->rt->searching) +
                   weft__load_relaxed(&w->rt->sleepers);
        if (idle > 0 && (uint32_t)idle > k)
            k = (uint32_t)idle < n - 1 ? (uint32_t)idle : n - 1;
    }
    return k;
}

/* Serve hungry thieves: share the oldest private frames below top
 * (share_count). At a sync (keep_top), top is the frame about to be
 * synced, which is not worth sharing: with nothing else private, ask stays
 * set for the next spawn, whose frame then goes. At a spawn, top is the
 * new frame, shared itself when it is the only one. */
static void serve(weft__worker *w, weft_task *top, bool keep_top)
{
    uint32_t n = private_count(top);
    uint32_t k = n ? share_count(w, n) : 0;
    if (keep_top && k >= n)
        k = n - (n > 0);
    if (k == 0)
        return;
    /* the frames shared may run elsewhere at once: a receive's held sends
     * go first, so that the tasks' own sends do not overtake them */
    weft__before_share();
    k = move_oldest(w, top, n, k);
    clear_ask(w);
    if (k > 0)
        publish(w, k);
}

/* A spawn that saw ask: link t as the inline spawn would, then serve. */
void weft__spawn_slow(weft_task *below, weft_task *t, weft_task_fn fn)
{
    t->fn = fn;
    t->weft__link = below;
    weft__worker *w = weft__self;
    if (w)
        serve(w, t, false);
}

/* The generic spawn, off its fast path: thieves asked (or the thread is
 * no worker). Link t on the generic list and serve. */
void weft__spawn_slow_g(weft_task *t, weft_task_fn fn)
{
    weft__spawn_slow(weft__cur.top, t, fn);
    weft__cur.top = t;
    weft__worker *w = weft__self;
    if (w)
        weft__recount(w, t);
}

/* The generic syncs (weft_sync, weft_sync_fn) off their fast path: t did
 * not run at its spawn (they test that first). */
void weft__sync_slow_g(weft_task *t, weft_task_fn fn)
{
    weft_task *top = weft__sync_slow(weft__cur.top, t, fn);
    weft__cur.top = top;
    weft__worker *w = weft__self;
    if (w)
        weft__recount(w, top);
}

/* Take the newest shared frame (slot split-1) back from the thieves, to
 * run it here. Returns false when a thief already took it. */
static bool reclaim_one(weft__worker *w)
{
    uint32_t s = w->split - 1;
    uint64_t ts = weft__load_acquire(&w->ts);
    for (;;) {
        if (weft__ts_tail(ts) > s)
            return false;
        /* seq_cst CAS: after it no thief can take slot s */
        if (weft__cas_seqcst(&w->ts, &ts,
                             weft__ts_make(weft__ts_tail(ts), s)))
            break;
    }
    w->split = s;
    return true;
}

/* Wait for the stolen frame in slot s, running other tasks meanwhile:
 * first from its thief (whose deque holds the child's own children), then
 * from anyone. split stays above s so that frames shared meanwhile go
 * above the awaited slot and never touch its state. */
static void wait_stolen(weft__worker *w, uint32_t s)
{
    weft_runtime *rt = w->rt;
    _Atomic uintptr_t *st = &w->state[s];
    uint64_t idle_since = 0;
    for (unsigned fails = 0;;) {
        /* acquire pairs with the thief's release store after the task */
        uintptr_t v = weft__load_acquire(st);
        if (v == WEFT__STOLEN_DONE)
            break;
        weft__worker *thief = v ? rt->workers[v - 1] : NULL;
        if (weft__help(w, thief)) {
            if (idle_since)
                weft__stat_add(&w->wait_ns, weft__now_ns() - idle_since);
            idle_since = 0;
            fails = 0;
            continue;
        }
        if (!idle_since)
            idle_since = weft__now_ns();
        if (++fails % 32 == 0)
            sched_yield();
        else
            weft__cpu_relax();
    }
    if (idle_since)
        weft__stat_add(&w->wait_ns, weft__now_ns() - idle_since);
    weft__store_relaxed(st, 0);
    w->split = s;
    /* a thief took s, so it took every slot below it too */
    weft__enter_allstolen(w);
}

/* Run frame f through fn at a sync, as the inline syncs do: the generic
 * form's top is the frame below f while it runs (its generic children
 * link there, never to f or above), then what it was. */
static void run_frame(weft_task *f, weft_task_fn fn, weft_task *below)
{
    weft_task *top = weft__cur.top;
    int budget = weft__cur.budget;
    weft__cur.top = below;
    weft__worker *w = weft__self;
    if (w)
        weft__recount(w, below);
    weft__cur.nest++;
    fn(f);
    weft__cur.nest--;
    weft__cur.top = top;
    weft__cur.budget = budget;
}

/* Sync the newest shared frame, wherever it is. */
static void sync_shared_top(weft__worker *w)
{
    uint32_t s = w->split - 1;
    weft_task *t = w->dq[s];
    if (!w->allstolen && reclaim_one(w)) {
        run_frame(t, w->dqfn[s], NULL); /* nothing private below it */
        return;
    }
    wait_stolen(w, s);
}

static bool on_list(weft_task *top, const weft_task *t)
{
    for (weft_task *f = top; f && !is_shared(f); f = f->weft__link)
        if (f == t)
            return true;
    return false;
}

static bool in_array(const weft__worker *w, const weft_task *t)
{
    for (uint32_t i = w->split; i > 0; i--)
        if (w->dq[i - 1] == t)
            return true;
    return false;
}

static void count_misuse(weft__worker *w)
{
    if (weft__load_relaxed(&w->misuses) == 0)
        weft__log("weft_sync on a frame that was not spawned (or was "
                  "already synced): ignored");
    weft__stat_add(&w->misuses, 1);
}

/* Sync t, which is not the newest frame (or is, and is shared): sync
 * everything newer first, newest first, then t (Cilk's semantics), and
 * return the top below t. A frame found nowhere is a misuse: nothing
 * runs and top stays.
 *
 * The private frames run first: all of them are newer than any shared
 * one. A frame run here may share the next ones (so the walk re-reads
 * each frame's state) but never one above it. */
static weft_task *sync_misplaced(weft__worker *w, weft_task *top,
                                 weft_task *t)
{
    if (!on_list(top, t) && !in_array(w, t)) {
        count_misuse(w);
        return top;
    }
    for (weft_task *f = top; f && !is_shared(f);) {
        weft_task *below = f->weft__link;
        run_frame(f, f->fn, below);
        if (f == t)
            return below;
        f = below;
    }
    while (w->split > 0) {
        bool last = w->dq[w->split - 1] == t;
        sync_shared_top(w);
        if (last)
            break;
    }
    return NULL;
}

/* A shared frame's fn: the generic sync called it through t->fn. */
void weft__sync_shared(weft_task *t)
{
    weft__worker *w = weft__self;
    if (!w) /* nothing is shared outside a worker: a frame never spawned */
        return;
    if (w->split > 0 && w->dq[w->split - 1] == t)
        sync_shared_top(w);
    else
        sync_misplaced(w, NULL, t);
    weft__recount(w, weft__cur.top); /* the inline sync counted t as private */
}

/* Outside a worker every frame is private: run the newer ones, then t;
 * a frame not there was synced already (or never spawned). */
static weft_task *sync_outside(weft_task *top, weft_task *t)
{
    if (!on_list(top, t))
        return top;
    for (weft_task *f = top;;) {
        weft_task *below = f->weft__link;
        run_frame(f, f->fn, below);
        if (f == t)
            return below;
        f = below;
    }
}

/* A sync off the fast path: thieves asked, or t is not top, or it is
 * shared, or fn (NULL from the generic sync) is not the one t was spawned
 * with. Returns the top below t. */
weft_task *weft__sync_slow(weft_task *top, weft_task *t, weft_task_fn fn)
{
    weft__worker *w = weft__self;
    if (!w)
        return sync_outside(top, t);
    if (weft__load_relaxed(&w->cur->ask))
        serve(w, top, top == t);
    if (top != t || is_shared(t))
        return sync_misplaced(w, top == t ? NULL : top, t);
    weft_task *below = t->weft__link;
    run_frame(t, fn && fn == t->fn ? fn : t->fn, below);
    return below;
}

/* For loops that split their range lazily (lib/map): true when a thief
 * would find nothing to steal from the calling worker, so handing the
 * pool half of the loop's range is worth a spawn. A thief's pending
 * request is served here, because such a loop does not sync while it has
 * a frame of its own pending. Owner only; false outside workers. */
bool weft__deque_starved(void)
{
    weft__worker *w = weft__self;
    if (!w)
        return false;
    weft_task *top = w->cur->top;
    if (private_count(top) > 0) {
        if (weft__load_relaxed(&w->split_req))
            serve(w, top, false);
        return false;
    }
    if (w->allstolen)
        return true;
    /* relaxed: a stale tail only delays or hastens one split */
    uint64_t ts = weft__load_relaxed(&w->ts);
    return weft__ts_tail(ts) >= weft__ts_split(ts);
}
