/* The owner's half of the split deque: the slow paths of weft_spawn and
 * weft_sync (the fast paths are inline in <weft/task.h>).
 *
 * A worker's unsynced frames are split in two by age:
 *   - the older ones sit in the shared array w->dq, slots [0, w->split):
 *     [tail, split) may be stolen, [0, tail) were stolen and wait for
 *     their syncs (w->state says by whom and whether they are done);
 *   - the newer ones are private, on the list c->top -> ... -> NULL
 *     through the frames' weft__link, newest first; only the owner sees
 *     them, so spawn and sync touch them with plain loads and stores.
 * Every frame in the array is older than every frame on the list: frames
 * move to the array oldest first (share), and come back (reclaim) only
 * when the list is empty.
 *
 * ts packs (tail, split) for the thieves; w->split mirrors its split half
 * (only the owner changes it). allstolen <=> the list is empty and every
 * frame in the array was stolen; then ask is set and the next spawn (onto
 * the empty list: weft__spawn_first) or sync shares at once, since the
 * thieves that emptied the array are hungry.
 *
 * One frame may briefly be in both places: the one weft__spawn_first
 * shared, which the inline spawn still links as the list's bottom. It is
 * w->dual, and ask stays set until the next serve takes it off the list
 * (settle), so no fast path pops it meanwhile. */
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
 * clear for the next thief to ask again. */
static void clear_ask(weft__worker *w)
{
    weft__store_relaxed(&w->cur->ask, 0);
    weft__store_relaxed(&w->split_req, 0);
}

/* Move the k oldest private frames (of n on the list) to the array, in
 * age order, and return how many moved: fewer when the array is full.
 * The caller publishes them. */
static uint32_t move_oldest(weft__worker *w, uint32_t n, uint32_t k)
{
    weft__cursor *c = w->cur;
    if (k > w->cap - w->split)
        k = w->cap - w->split;
    if (k == 0)
        return 0;
    /* the newest frame that stays private, if any, gets the cut */
    weft_task *keep = NULL, *f = c->top;
    for (uint32_t i = 0; i < n - k; i++) {
        keep = f;
        f = f->weft__link;
    }
    for (uint32_t i = k; i-- > 0;) { /* f: the newest of the k oldest */
        w->dq[w->split + i] = f;
        f = f->weft__link;
    }
    if (keep)
        keep->weft__link = NULL;
    else
        c->top = NULL;
    return k;
}

static uint32_t private_count(weft__cursor *c)
{
    uint32_t n = 0;
    for (weft_task *f = c->top; f; f = f->weft__link)
        n++;
    return n;
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

/* The frame weft__spawn_first put in the array is still the bottom of
 * the list (the inline spawn linked it there after the call): take it
 * off, so that it is shared only, as share() would have left it. Runs
 * before anything else reads the list: ask stays set until it has. */
static void settle(weft__worker *w)
{
    weft_task *t = w->dual;
    weft__cursor *c = w->cur;
    w->dual = NULL;
    if (c->top == t) {
        c->top = NULL;
        return;
    }
    for (weft_task *f = c->top; f; f = f->weft__link)
        if (f->weft__link == t) {
            f->weft__link = NULL;
            return;
        }
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

/* Share the oldest private frames (share_count): a thief asked, or every
 * shared frame was stolen. */
static void share(weft__worker *w)
{
    if (w->dual)
        settle(w);
    /* the frames shared may run elsewhere at once: a receive's held sends
     * go first, so that the tasks' own sends do not overtake them */
    weft__before_share();
    uint32_t n = private_count(w->cur);
    uint32_t k = n ? move_oldest(w, n, share_count(w, n)) : 0;
    clear_ask(w);
    if (k > 0)
        publish(w, k);
}

/* A spawn onto an empty list (<weft/task.h>, weft__push): if thieves
 * are asking, the child goes to the array at once, so that they can take
 * it while the parent runs serial code up to its sync; otherwise it would
 * wait there for the parent's next spawn or sync. t->fn is set; the
 * inline spawn then links t onto the list as usual (which keeps its fast
 * path free of anything this call did), and ask stays set, so that the
 * next sync, or a spawn after a thief asked again, or a share, first
 * takes it back off the list (settle). The request is served: split_req
 * is cleared. Outside a worker, with nobody asking or with the array
 * full, the frame just stays private. */
void weft__spawn_first(weft_task *t)
{
    weft__worker *w = weft__self;
    if (!w || !weft__load_relaxed(&w->cur->ask) || w->split == w->cap)
        return;
    weft__before_share();
    w->dq[w->split] = t;
    w->dual = t;
    weft__store_relaxed(&w->split_req, 0);
    publish(w, 1);
}

/* Serve hungry thieves (ask was seen): share the calling worker's oldest
 * private frames, if it has any. A spawn or sync saw ask (a thief asked,
 * or every shared frame was stolen), or lazy splitting (lib/map) just
 * spawned for a hungry thief, which keeping the frame private would only
 * make ask first. With nothing private, ask stays set for the next spawn
 * or sync; outside a worker it always is, and there is nothing to do.
 *
 * A frame that weft__spawn_first shared (dual) comes off the list first.
 * At a sync, the parent's other frames are then shared as the first sync
 * of a task always did (a thief that asked again while the parent runs
 * its first child would otherwise wait for that child), or, with none,
 * ask comes down, which no share would do. At a spawn (before it links
 * its frame) the dual frame stands until the first sync, so that a loop
 * of spawns hands its children to all idle workers at once, unless a
 * thief asks again before; and with nothing private, ask stays set, so
 * that the frame being spawned goes to the thief (weft__spawn_first). */
static void serve(weft__worker *w, bool at_spawn)
{
    if (w->dual) {
        if (at_spawn && !weft__load_relaxed(&w->split_req))
            return;
        settle(w);
        if (!w->cur->top) {
            if (!at_spawn)
                clear_ask(w);
            return;
        }
    }
    if (w->cur->top)
        share(w);
}

void weft__serve(void)
{
    weft__worker *w = weft__self;
    if (w)
        serve(w, false);
}

void weft__serve_spawn(void)
{
    weft__worker *w = weft__self;
    if (w)
        serve(w, true);
}

/* Take the newest shared frame (slot split-1) back from the thieves, with
 * the older half of the shared region above tail, so that the syncs that
 * follow find their frames on the list. Returns false when a thief
 * already took it. */
static bool reclaim(weft__worker *w)
{
    uint32_t s = w->split - 1;
    uint64_t ts = weft__load_acquire(&w->ts);
    uint32_t ns;
    for (;;) {
        uint32_t tail = weft__ts_tail(ts);
        if (tail > s)
            return false;
        ns = (tail + w->split) / 2; /* tail <= ns <= s */
        /* seq_cst CAS: after it no thief can take a slot >= ns */
        if (weft__cas_seqcst(&w->ts, &ts, weft__ts_make(tail, ns)))
            break;
    }
    /* slots [ns, s) go back on the (empty) list, oldest at the bottom */
    weft__cursor *c = w->cur;
    for (uint32_t i = ns; i < s; i++) {
        w->dq[i]->weft__link = c->top;
        c->top = w->dq[i];
    }
    w->split = ns;
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

/* Sync the newest shared frame (the list is empty), wherever it is. */
static void sync_shared_top(weft__worker *w)
{
    weft_task *t = w->dq[w->split - 1];
    if (!w->allstolen && reclaim(w)) {
        t->fn(t);
        return;
    }
    wait_stolen(w, w->split - 1);
}

static bool on_list(weft__cursor *c, weft_task *t)
{
    for (weft_task *f = c->top; f; f = f->weft__link)
        if (f == t)
            return true;
    return false;
}

static bool in_array(weft__worker *w, weft_task *t)
{
    for (uint32_t i = w->split; i > 0; i--)
        if (w->dq[i - 1] == t)
            return true;
    return false;
}

/* Run private frames newest first, as their syncs would, until t has run
 * (true) or the list is empty (false). */
static bool run_private_until(weft__cursor *c, weft_task *t)
{
    while (c->top) {
        weft_task *f = c->top;
        c->top = f->weft__link;
        f->fn(f);
        if (f == t)
            return true;
    }
    return false;
}

/* t is not the newest frame, or it is but was synced naming another fn:
 * sync everything newer first, then t through its own fn (Cilk's
 * semantics). A frame found nowhere is counted as a misuse.
 *
 * Each step syncs the newest frame, which is newer than t until t itself
 * is the newest. Where t is may change on the way: a frame run here may
 * share (moving t, if private, to the array) or a sync may reclaim (moving
 * it back), so nothing about its place is remembered between steps. */
static void sync_misplaced(weft__worker *w, weft_task *t)
{
    weft__cursor *c = w->cur;
    if (!on_list(c, t) && !in_array(w, t)) {
        if (weft__load_relaxed(&w->misuses) == 0)
            weft__log("weft_sync on a frame that was not spawned "
                      "(or was already synced): ignored");
        weft__stat_add(&w->misuses, 1);
        return;
    }
    /* the list runs first: all of it is newer than t, if t is not on it */
    while (!run_private_until(c, t)) {
        bool last = w->dq[w->split - 1] == t;
        sync_shared_top(w);
        if (last)
            return;
    }
}

/* Outside a worker every frame is on the thread's list: run the newer
 * ones, then t; a frame not there was synced already (or never spawned). */
static void sync_outside(weft__cursor *c, weft_task *t)
{
    if (on_list(c, t))
        run_private_until(c, t);
}

void weft__sync_slow(weft_task *t)
{
    weft__worker *w = weft__self;
    if (!w) {
        sync_outside(&weft__cur, t);
        return;
    }
    if (!w->cur->top && w->split > 0 && w->dq[w->split - 1] == t)
        sync_shared_top(w);
    else
        sync_misplaced(w, t);
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
    if (w->cur->top) {
        if (weft__load_relaxed(&w->split_req))
            share(w);
        return false;
    }
    if (w->allstolen)
        return true;
    /* relaxed: a stale tail only delays or hastens one split */
    uint64_t ts = weft__load_relaxed(&w->ts);
    return weft__ts_tail(ts) >= weft__ts_split(ts);
}
