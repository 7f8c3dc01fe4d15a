/* Worker threads: the idle loop (injection queue, then stealing nearest
 * victims first, then parking) and the thief's half of the split deque.
 *
 * The deque (after Lace's split deque, van Dijk & van de Pol 2014, on
 * caller-owned frames): shared frames sit in an array, slots [tail, split),
 * and thieves take them one at a time with a CAS on the packed (tail,
 * split) word; newer frames are private to the owner, on a list through
 * their own headers, pushed and popped with plain stores and no fence
 * (deque.c). Thieves that find nothing shared set a flag asking the owner
 * to share the older half of its private frames at its next spawn or
 * sync (or, when its list is empty, to share that spawn at once). That
 * keeps the owner's spawn/sync free of atomics, the property that
 * Chase-Lev's pop (a seq_cst fence per pop) cannot offer. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"

WEFT__TLS _Thread_local weft__worker *weft__self;
WEFT__TLS _Thread_local void (*weft__wait_hook)(bool waits);
/* ask starts set; outside a worker the slow spawn only links, and
 * each child runs at its sync (deque.c, sync_outside) */
WEFT_API WEFT__TLS _Thread_local weft__cursor weft__cur = {NULL, 1,
                                                        INT_MIN / 2, 0};

#ifdef WEFT__TSAN
char weft__ring_token; /* see weft__ring_opened (internal.h) */
#endif

void weft__log(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "weft: %s\n", buf);
}

uint32_t weft__rand(weft__worker *w)
{
    /* xorshift64: victim selection needs speed, not quality */
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return (uint32_t)(x >> 32);
}

typedef struct steal {
    weft__worker *victim;
    uint32_t idx;
    weft_task *task; /* a fork-join frame, or NULL when job is set */
    weft_task_fn fn; /* the frame's function (its own fn says shared) */
    weft__job *job;
} steal;

enum { STEAL_NONE, STEAL_ASKED, STEAL_WON };

/* Ask v's owner to share more: its next spawn or sync takes the slow path
 * (ask, see <weft/task.h>), which publishes. Writes only when no request
 * is pending, so idle thieves polling v keep reading a line the owner
 * rarely writes; split_req before ask, against the owner's clear_ask
 * (deque.c). Returns whether v may have private work to share. */
static bool request_split(weft__worker *v)
{
    if (weft__load_relaxed(&v->allstolen_pub))
        return false;
    if (!weft__load_relaxed(&v->split_req)) {
        /* seq_cst, the owner's clear_ask says why */
        weft__store_seqcst(&v->split_req, 1);
        weft__store_seqcst(&v->cur->ask, 1);
    }
    return true;
}

static void count_steal(weft__worker *me, weft__worker *v)
{
    weft__stat_add(&me->steals_won, 1);
    if (v->numa == me->numa)
        weft__stat_add(&me->steals_near, 1);
}

/* Take a job from v's job deque; while searching (not while waiting),
 * not during the visits that its grain says to skip. */
static int try_steal_job(weft__worker *me, weft__worker *v, steal *s)
{
    struct weft__grain *g = &me->grain[v->index];
    if (me->searching && g->skip) {
        g->skip--;
        return STEAL_NONE;
    }
    weft__job *j = weft__job_steal(v);
    if (!j)
        return STEAL_NONE;
    s->victim = v;
    s->task = NULL;
    s->job = j;
    count_steal(me, v);
    return STEAL_WON;
}

/* A fork-join frame from v's shared region first (older frames are the
 * bigger pieces of work), else a job, else ask v to share. */
static int try_steal(weft__worker *me, weft__worker *v, steal *s)
{
    /* acquire pairs with the owner's seq_cst publication of ts, which
     * follows its writes of the slot and the frame */
    uint64_t ts = weft__load_acquire(&v->ts);
    uint32_t tail = weft__ts_tail(ts);
    if (tail >= weft__ts_split(ts)) {
        if (try_steal_job(me, v, s) == STEAL_WON)
            return STEAL_WON;
        return request_split(v) ? STEAL_ASKED : STEAL_NONE;
    }
    weft__stat_add(&me->steals_tried, 1);
    if (!weft__cas_acqrel(&v->ts, &ts, ts + 1))
        return STEAL_NONE; /* another thief or the owner won */
    s->victim = v;
    s->idx = tail;
    s->task = v->dq[tail];
    s->fn = v->dqfn[tail];
    s->job = NULL;
    count_steal(me, v);
    return STEAL_WON;
}

/* One pass over the victims, nearest level first, starting at a random
 * victim within each level so thieves spread out. A running owner shares
 * at its next spawn or sync after being asked, so when a near victim was
 * asked the level is polled a little longer before going farther: that
 * is what makes steals stay on the node on a machine where every worker
 * runs. */
#define NEAR_RETRIES 8

static bool steal_level(weft__worker *me, uint32_t lo, uint32_t hi,
                        steal *s)
{
    weft_runtime *rt = me->rt;
    uint32_t n = hi - lo;
    for (int tries = 0; tries < NEAR_RETRIES; tries++) {
        bool asked = false;
        uint32_t start = weft__rand(me) % n;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t j = lo + (start + k) % n;
            int r = try_steal(me, rt->workers[me->victims[j]], s);
            if (r == STEAL_WON)
                return true;
            asked |= r == STEAL_ASKED;
        }
        if (!asked)
            return false;
        for (int i = 0; i < 16; i++)
            weft__cpu_relax();
    }
    return false;
}

static bool steal_round(weft__worker *me, steal *s)
{
    uint32_t lo = 0;
    for (uint32_t l = 0; l < me->nlevels; l++) {
        if (steal_level(me, lo, me->lvl_end[l], s))
            return true;
        lo = me->lvl_end[l];
    }
    return false;
}

void weft__count_job(void)
{
    weft__worker *w = weft__self;
    if (w)
        weft__stat_add(&w->jobs, 1);
}

/* Run a stolen task on the thief. The state store after the task
 * (release) pairs with the owner's acquire load in its sync. */
static void run_stolen(weft__worker *me, steal *s)
{
    if (s->job) { /* counts itself (weft__count_job) if it runs */
        s->job->run(s->job);
        return;
    }
    _Atomic uintptr_t *st = &s->victim->state[s->idx];
    weft__store_relaxed(st, (uintptr_t)me->index + 1);
    s->fn(s->task);
    weft__store_release(st, WEFT__STOLEN_DONE);
}

/* Jobs nearest first: high priority anywhere, our own deque, our node's
 * queue. Stealing and other nodes' queues come after, in the callers. */
static weft__job *near_job(weft__worker *w)
{
    weft_runtime *rt = w->rt;
    weft__job *j = weft__job_take_high(rt, w->numa);
    if (!j && !(j = weft__job_pop(w)))
        j = weft__job_take_node(rt, w->numa);
    return j;
}

static weft__root *inject_pop(weft_runtime *rt)
{
    if (weft__load_relaxed(&rt->inject_len) == 0)
        return NULL;
    pthread_mutex_lock(&rt->inject_lock);
    weft__root *r = rt->inject_head;
    if (r) {
        rt->inject_head = r->next;
        if (!r->next)
            rt->inject_tail = NULL;
        weft__sub_seqcst(&rt->inject_len, 1);
    }
    pthread_mutex_unlock(&rt->inject_lock);
    return r;
}

/* A task from outside: run it on an empty deque, then wake its caller if
 * it went to sleep. After the exchange the caller may return and free r,
 * so r is not touched again (the wake only names the address). */
static void run_root(weft__worker *w, weft__root *r)
{
    weft__enter_allstolen(w);
    weft__stat_add(&w->roots, 1);
    r->rc = r->fn(r->arg);
    if (w->cur->top) { /* their frames are gone with the task's stack */
        weft__stat_add(&w->misuses, 1);
        weft__log("a task returned with unsynced spawns");
        w->cur->top = NULL;
    }
    weft__hold_reset(w);
    _Atomic uint32_t *done = &r->done;
    if (weft__xchg_acqrel(done, 1) == 2)
        weft__futex_wake(done, 1);
}

typedef struct work {
    weft__root *root; /* a task from outside, or NULL: then s */
    steal s;          /* a stolen frame, or any job (s.job) */
} work;

/* Find one piece of work: prefer's deque first (when not NULL), then near
 * jobs, tasks from outside (only with roots), stealing, other nodes'
 * jobs. */
static bool take_work(weft__worker *w, weft__worker *prefer, bool roots,
                      work *out)
{
    out->root = NULL;
    out->s.victim = NULL; /* stays NULL unless a steal wins */
    if (prefer && try_steal(w, prefer, &out->s) == STEAL_WON)
        return true;
    if ((out->s.job = near_job(w)))
        return true;
    if (roots && (out->root = inject_pop(w->rt)))
        return true;
    if (steal_round(w, &out->s))
        return true;
    return (out->s.job = weft__job_take_far(w->rt, w->numa)) != NULL;
}

/* Run one piece of work while waiting for something (a stolen child, a
 * future): the waiter's own stack grows by what it runs, so tasks that
 * came from outside (which expect an empty deque) are not taken here.
 * prefer (may be NULL) is tried first: the thief of the awaited child,
 * whose deque holds that child's own children. */
bool weft__help(weft__worker *w, weft__worker *prefer)
{
    weft__before_wait();
    work k;
    if (!take_work(w, prefer, false, &k))
        return false;
    /* The task starts with no generic frames: the waiter's private frames
     * (the generic form's below a head-passing sync) stay out of its
     * reach, so that it cannot share them into slots above the awaited
     * one, which the wait's end gives up (deque.c wait_stolen). */
    weft__cursor *c = w->cur;
    weft_task *top = c->top;
    int budget = c->budget, nest = c->nest;
    c->top = NULL;
    weft__recount(w, NULL);
    c->nest = 0;
    run_stolen(w, &k.s);
    c->top = top;
    c->budget = budget;
    c->nest = nest;
    return true;
}

/* Stolen empty futures run in under 250 ns, the random DAG's 240 ns
 * nodes in 500 ns to 4 us (2-core VM and the 16-core machine of
 * bench/RESULTS.md): GRAIN_NS lies between. */
#define GRAIN_NS 300
#define GRAIN_MAX 6

/* A job stolen from a worker's deque costs its owner cache misses (the
 * deque's top, the job's state and reference count), a few hundred ns
 * whoever runs it. A job that ends sooner than that (GRAIN_NS) moved no
 * useful work: a producer of tiny jobs that collects them runs them
 * faster itself than with a dozen thieves taking them one by one. The
 * same goes for a stale entry (a future its getter already ran in
 * place), unless the victim's last live job was worth taking: a busy
 * submitter that also collects old results (a dynamic DAG) leaves stale
 * entries between jobs that are well worth stealing. So after a short
 * job, or a stale entry from a victim whose jobs were short, the thief
 * skips that victim's job deque on its next 2^k - 1 visits, k growing by
 * one each time up to GRAIN_MAX; a long job sets k back to 0. A waiting
 * worker (which helps) never skips: it has nothing better to do. */
static void grain_after(weft__worker *w, const work *k, uint64_t ns,
                        uint64_t jobs0)
{
    if (k->root || !k->s.job || !k->s.victim) /* not a stolen job */
        return;
    struct weft__grain *g = &w->grain[k->s.victim->index];
    if (weft__load_relaxed(&w->jobs) == jobs0) { /* stale: nothing ran */
        if (g->worth)
            return;
    } else if (ns >= GRAIN_NS) {
        g->shift = 0;
        g->worth = 1;
        return;
    } else {
        g->worth = 0;
    }
    if (g->shift < GRAIN_MAX)
        g->shift++;
    g->skip = (uint8_t)((1u << g->shift) - 1);
}

/* t0: now, as the search that found k last read the clock (one read
 * less between finding work and running it) */
static void run_work(weft__worker *w, work *k, uint64_t t0)
{
    weft__store_relaxed(&w->busy_since, t0); /* for live statistics */
    uint64_t jobs0 = weft__load_relaxed(&w->jobs);
    weft__hold_reset(w);
    if (k->root) {
        run_root(w, k->root);
    } else {
        weft__enter_allstolen(w);
        run_stolen(w, &k->s);
    }
    /* Jobs it left on our own deque (a graph's or a future's successors)
     * run next, here: going back through the search would cost its
     * bookkeeping and clock reads per job. */
    weft__job *j;
    while ((j = near_job(w)))
        j->run(j);
    /* busy_since first: a reader may briefly miss this piece of work,
     * never count it twice. The clock is read before, so that the window
     * is two stores wide, not a clock read (long under a sanitizer). */
    uint64_t ns = weft__now_ns() - t0;
    weft__store_relaxed(&w->busy_since, 0);
    weft__stat_add(&w->busy_ns, ns);
    grain_after(w, k, ns, jobs0);
}

/* Search for work for up to spin_us, yielding now and then so that an
 * oversubscribed machine runs the workers that have work. Between two
 * fruitless looks the worker waits a little longer each time, doubling
 * from one pause up to one per other worker: every look reads lines that
 * busy workers and submitters write, so n thieves that look back to back
 * turn each of those writes into an invalidation of n copies. With the
 * cap scaled by the thieves, the pool as a whole still looks about once
 * per pause. On 16 cores (bench/RESULTS.md): the round trip to a spinning
 * pool 3.6 -> 2.8 us, chameneos 290 -> 188 ms, fork-join and map level. */
static bool search(weft__worker *w, work *k, uint64_t *end)
{
    weft_runtime *rt = w->rt;
    uint64_t t0 = weft__now_ns(), limit = (uint64_t)rt->spin_us * 1000;
    weft__store_relaxed(&w->spin_since, t0);
    w->searching = true;
    bool got = false;
    unsigned backoff = 0, most = (unsigned)rt->nworkers - 1;
    for (unsigned round = 1;; round++) {
        if ((got = take_work(w, NULL, true, k)))
            break;
        if (weft__load_relaxed(&rt->stopping) == 2)
            break;
        if (limit == 0)
            break; /* spin_us -1: one look, then park (16 rounds of
                    * looking kept a worker that shares its core with
                    * the thread it answers from parking, and so that
                    * thread from running) */
        if (round % 16 == 0) {
            if (weft__now_ns() - t0 >= limit)
                break;
            sched_yield();
        } else {
            backoff = backoff * 2 + 1;
            if (backoff > most)
                backoff = most;
            for (unsigned i = 0; i <= backoff; i++)
                weft__cpu_relax();
        }
    }
    w->searching = false;
    weft__store_relaxed(&w->spin_since, 0);
    *end = weft__now_ns();
    weft__stat_add(&w->spin_ns, *end - t0);
    return got;
}

static void idle_loop(weft__worker *w)
{
    weft_runtime *rt = w->rt;
    work k;
    while (weft__load_acquire(&rt->stopping) != 2) {
        weft__node *node = &rt->nodes[w->numa];
        weft__add_seqcst(&node->searching, 1);
        weft__add_seqcst(&rt->searching, 1);
        uint64_t now;
        bool got = search(w, &k, &now);
        int left = weft__sub_seqcst(&rt->searching, 1) - 1;
        weft__sub_seqcst(&node->searching, 1);
        if (got) {
            /* hand the search on, when there is more to find: a burst
             * then fans out over the sleepers one by one, while a single
             * job wakes a single worker (nobody asleep: no scan for more,
             * whose loads sat between finding this job and running it) */
            if (left == 0 && weft__load_seqcst(&rt->sleepers) > 0 &&
                weft__work_visible(rt, -1, NULL))
                weft__wake_for_work(rt, w->numa);
            run_work(w, &k, now);
        } else {
            weft__park(rt, w);
        }
    }
}

void *weft__worker_main(void *arg)
{
    weft__worker *w = arg;
    weft_runtime *rt = w->rt;
    weft__topo_bind(rt, w);
    weft__self = w;
    w->cur = &weft__cur;
    w->cur->top = NULL;
    weft__hold_reset(w);
    w->split = 0;
    weft__enter_allstolen(w);
    weft__add_seqcst(&rt->started, 1);
    /* thieves dereference each other's cursors: start only when all are
     * set (or start-up failed and the runtime is being torn down) */
    while (weft__load_acquire(&rt->started) < rt->nworkers &&
           !weft__load_acquire(&rt->start_failed))
        sched_yield();
    if (!weft__load_acquire(&rt->start_failed)) {
        idle_loop(w);
        /* Thieves write each other's cursors (request_split), and a
         * cursor is thread-local memory that the thread's exit frees: stay
         * until every worker has left its idle loop. Found by ASan as a
         * write to freed TLS while 16 workers on 2 cores stopped. The
         * seq_cst increment after our last steal attempt, and the acquire
         * loads: nobody leaves before every steal attempt is over. */
        weft__add_seqcst(&rt->finished, 1);
        while (weft__load_acquire(&rt->finished) < rt->nworkers)
            sched_yield();
    }
    weft__self = NULL;
    return NULL;
}
