/* The owner's half of the split deque: the slow paths of weft_spawn and
 * weft_sync (the fast paths are inline in <weft/task.h>).
 *
 * Invariants, with indices counted from w->dq:
 *   tail <= split <= head;  [tail, split) shared;  [split, head) private.
 *   c->split mirrors the split half of w->ts (only the owner changes it).
 *   allstolen <=> every task below head was stolen; then c->split ==
 *   head, c->lim is NULL, and the next spawn republishes from scratch.
 *   c->lim is the deque's end otherwise, or its start while a thief's
 *   request to share more (split_req) is pending: see <weft/task.h>. */
#include <sched.h>

#include "internal.h"

/* A frame run at spawn time (outside a worker, or on a full deque) carries
 * this mark, derived from its own address so stale memory cannot fake it,
 * until its sync clears it. */
static void *inline_mark(weft_task *t)
{
    return (void *)((uintptr_t)t ^ (uintptr_t)0x5745465449u);
}

static void run_inline(weft_task *t)
{
    t->weft__reserved = inline_mark(t);
    t->fn(t);
}

void weft__enter_allstolen(weft__worker *w, weft_task **h)
{
    weft__cursor *c = w->cur;
    c->split = h;
    weft__store_relaxed(&c->lim, NULL);
    w->allstolen = true;
    if (!weft__load_relaxed(&w->allstolen_pub))
        weft__store_relaxed(&w->allstolen_pub, 1);
}

/* Reopen the spawns' fast path and take down a thief's request. In this
 * order, against the thief's (split_req, then lim; worker.c
 * request_split): whatever the interleaving, a request is either seen by
 * a spawn or leaves split_req clear for the next thief to ask again. */
static void clear_split_request(weft__worker *w)
{
    weft__store_relaxed(&w->cur->lim, w->dq + w->cap);
    weft__store_relaxed(&w->split_req, 0);
}

/* Every shared task was stolen and t was just pushed at slot h: share it
 * at once, since the thieves that emptied the deque are hungry. The
 * seq_cst store publishes the slot and the frame (thieves load-acquire
 * ts) and is the publisher's half of the parking handshake. */
static void publish_reset(weft__worker *w, weft_task **h)
{
    weft__before_share(); /* see publish_grow */
    weft__cursor *c = w->cur;
    uint32_t i = (uint32_t)(h - w->dq);
    clear_split_request(w);
    weft__store_seqcst(&w->ts, weft__ts_make(i, i + 1));
    c->split = h + 1;
    w->allstolen = false;
    weft__stat_add(&w->published, 1);
    weft__store_relaxed(&w->allstolen_pub, 0);
    weft__wake_for_work(w->rt, w->numa);
}

/* A thief asked for work: share the older half of the private part. */
static void publish_grow(weft__worker *w)
{
    /* the tasks shared may run elsewhere at once: a receive's held sends
     * go first, so that the tasks' own sends do not overtake them */
    weft__before_share();
    weft__cursor *c = w->cur;
    clear_split_request(w);
    ptrdiff_t priv = c->head - c->split;
    if (priv <= 0)
        return;
    uint32_t diff = (uint32_t)(priv + 1) / 2;
    weft__add_seqcst(&w->ts, (uint64_t)diff << 32);
    c->split += diff;
    weft__stat_add(&w->published, diff);
    weft__wake_for_work(w->rt, w->numa);
}

void weft__spawn_slow(weft_task *t)
{
    weft__worker *w = weft__self;
    if (!w) { /* not inside a task: run serially */
        run_inline(t);
        return;
    }
    weft__cursor *c = w->cur;
    weft_task **h = c->head;
    if (h >= w->dq + w->cap) { /* full: running the child now is legal */
        run_inline(t);
        return;
    }
    *h = t;
    c->head = h + 1;
    if (w->allstolen)
        publish_reset(w, h);
    else
        publish_grow(w);
}

/* Take back part of the shared region so the top task (slot h-1) becomes
 * private again. Returns false when the thieves already took it. */
static bool reclaim(weft__worker *w, weft_task **h)
{
    uint32_t i = (uint32_t)(h - 1 - w->dq);
    uint64_t ts = weft__load_acquire(&w->ts);
    for (;;) {
        uint32_t tail = weft__ts_tail(ts), split = weft__ts_split(ts);
        if (tail > i) {
            weft__enter_allstolen(w, h);
            return false;
        }
        /* keep the older half shared: tail <= ns <= i */
        uint32_t ns = (tail + split) / 2;
        /* seq_cst CAS: after it no thief can take a slot >= ns */
        if (weft__cas_seqcst(&w->ts, &ts, weft__ts_make(tail, ns))) {
            w->cur->split = w->dq + ns;
            return true;
        }
    }
}

/* Wait for the stolen task in slot h-1, running other tasks meanwhile:
 * first from its thief (whose deque holds the child's own children), then
 * from anyone. head stays at h so that tasks run here push above the
 * awaited slot and never touch its state. */
static void wait_stolen(weft__worker *w, weft_task **h)
{
    weft_runtime *rt = w->rt;
    uint32_t i = (uint32_t)(h - 1 - w->dq);
    _Atomic uintptr_t *st = &w->state[i];
    uint64_t idle_since = 0;
    for (unsigned fails = 0;;) {
        /* acquire pairs with the thief's release store after the task */
        uintptr_t s = weft__load_acquire(st);
        if (s == WEFT__STOLEN_DONE)
            break;
        weft__worker *thief = s ? rt->workers[s - 1] : NULL;
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
    w->cur->head = h - 1;
    weft__enter_allstolen(w, h - 1);
}

/* Sync the top task (slot h-1), wherever it is. */
static void sync_top(weft__worker *w, weft_task **h)
{
    weft__cursor *c = w->cur;
    weft_task *t = h[-1];
    if (h > c->split || (!w->allstolen && reclaim(w, h))) {
        c->head = h - 1;
        t->fn(t);
        return;
    }
    wait_stolen(w, h);
}

/* t is not the newest spawn: sync everything newer first, then t (Cilk's
 * semantics). A frame not in the deque at all is counted as a misuse. */
static void sync_misplaced(weft__worker *w, weft_task *t)
{
    weft__cursor *c = w->cur;
    weft_task **p = c->head;
    while (p > w->dq && p[-1] != t)
        p--;
    if (p == w->dq) {
        if (weft__load_relaxed(&w->misuses) == 0)
            weft__log("weft_sync on a frame that was not spawned "
                      "(or was already synced): ignored");
        weft__stat_add(&w->misuses, 1);
        return;
    }
    while (c->head >= p)
        sync_top(w, c->head);
}

void weft__sync_slow(weft_task *t)
{
    weft__worker *w = weft__self;
    weft_task **h = w ? w->cur->head : NULL;
    if (h && h > w->dq && h[-1] == t) {
        sync_top(w, h);
    } else if (t->weft__reserved == inline_mark(t)) { /* ran at spawn */
        t->weft__reserved = NULL;
    } else if (w) {
        sync_misplaced(w, t);
    } /* outside a task nothing is ever deferred */
}

/* For loops that split their range lazily (lib/map): true when a thief
 * would find nothing to steal from the calling worker's deque, so handing
 * the pool half of the loop's range is worth a spawn. A thief's pending
 * request to share private frames is served here, because such a loop
 * does not spawn again while it has a frame of its own pending. Owner
 * only; false outside workers. */
bool weft__deque_starved(void)
{
    weft__worker *w = weft__self;
    if (!w)
        return false;
    weft__cursor *c = w->cur;
    if (c->head > c->split) {
        if (weft__load_relaxed(&w->split_req))
            publish_grow(w);
        return false;
    }
    if (w->allstolen)
        return true;
    /* relaxed: a stale tail only delays or hastens one split */
    uint64_t ts = weft__load_relaxed(&w->ts);
    return weft__ts_tail(ts) >= weft__ts_split(ts);
}

/* Make the frame just spawned stealable at once (lazy splitting spawns
 * exactly when a thief is hungry, so keeping it private would only make
 * the thief ask first). Owner only. */
void weft__deque_share(void)
{
    weft__worker *w = weft__self;
    if (w && w->cur->head > w->cur->split)
        publish_grow(w);
}
