/* Runtime life cycle: configuration, start-up, weft_run from any thread,
 * and an orderly shutdown. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "internal.h"

#define DEFAULT_STACK (8u << 20)
#define DEFAULT_SPIN_US 50
/* Slots per byte of stack: a frame embedding a weft_task takes at least
 * 16 bytes of its task's stack, so the deque fills only for frames kept
 * elsewhere (and then spawn runs the child at once). */
#define MIN_SLOTS 4096u

weft_config weft_config_default(void)
{
    weft_config c;
    memset(&c, 0, sizeof c);
    c.pin = 1;
    return c;
}

const char *weft_version(void) { return WEFT_VERSION_STRING; }

/* Parse a whole decimal integer in [lo, hi]; anything else is -EINVAL. */
static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Bytes, with an optional K, M or G suffix (binary); 0 allowed. */
static int parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -EINVAL;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift)
        end++;
    if (*end || v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

static int apply_env(weft_config *c)
{
    const char *s = getenv("WEFT_WORKERS");
    long v;
    if (s) {
        if (parse_int(s, 0, WEFT_MAX_WORKERS, &v)) {
            weft__log("WEFT_WORKERS='%s' is not a number of workers "
                      "(0..%d)", s, WEFT_MAX_WORKERS);
            return -EINVAL;
        }
        c->workers = (int)v;
    }
    s = getenv("WEFT_HOLD");
    if (s && *s) {
        if (parse_int(s, -1, WEFT__HOLD_MAX, &v)) {
            weft__log("WEFT_HOLD='%s' is not a number of frames (-1..%d)",
                      s, WEFT__HOLD_MAX);
            return -EINVAL;
        }
        c->hold = (int)v;
    }
    s = getenv("WEFT_TOPOLOGY");
    if (s && *s)
        c->topology = s;
    s = getenv("WEFT_STORE_CAPACITY");
    if (s && *s && parse_bytes(s, &c->store_capacity)) {
        weft__log("WEFT_STORE_CAPACITY='%s' is not a size in bytes (a "
                  "number, optionally with K, M or G)", s);
        return -EINVAL;
    }
    return 0;
}

static int check_config(const weft_config *c)
{
    if (c->workers < 0 || c->workers > WEFT_MAX_WORKERS) {
        weft__log("config.workers=%d is out of range (0..%d)", c->workers,
                  WEFT_MAX_WORKERS);
        return -EINVAL;
    }
    if (c->pin != 0 && c->pin != 1) {
        weft__log("config.pin=%d must be 0 or 1", c->pin);
        return -EINVAL;
    }
    if (c->stack_size && (c->stack_size < (64u << 10) ||
                          c->stack_size > ((size_t)1 << 32))) {
        weft__log("config.stack_size=%zu is out of range (64 KiB..4 GiB)",
                  c->stack_size);
        return -EINVAL;
    }
    if (c->store_capacity && (c->store_capacity < (64u << 10) ||
                              c->store_capacity > ((uint64_t)1 << 46))) {
        weft__log("config.store_capacity=%llu is out of range (0, or "
                  "64 KiB..64 TiB)", (unsigned long long)c->store_capacity);
        return -EINVAL;
    }
    if (c->hold < -1 || c->hold > WEFT__HOLD_MAX) {
        weft__log("config.hold=%d is out of range (-1..%d)", c->hold,
                  WEFT__HOLD_MAX);
        return -EINVAL;
    }
    if (c->spin_us < -1 || c->spin_us > 10000000) {
        weft__log("config.spin_us=%d is out of range (-1..10^7)",
                  c->spin_us);
        return -EINVAL;
    }
    return 0;
}

static void free_worker(weft_runtime *rt, weft__worker *w)
{
    if (!w)
        return;
    weft__free_on_node(w->dq, (size_t)w->cap * sizeof *w->dq);
    weft__free_on_node(w->dqfn, (size_t)w->cap * sizeof *w->dqfn);
    weft__free_on_node(w->state, (size_t)w->cap * sizeof *w->state);
    weft__free(w->victims);
    weft__free(w->lvl_end);
    weft__free(w->grain);
    weft__free_on_node(w, sizeof *w);
    (void)rt;
}

static void free_runtime(weft_runtime *rt)
{
    weft__jobs_fini(rt);
    for (int i = 0; rt->workers && i < rt->nworkers; i++)
        free_worker(rt, rt->workers[i]);
    weft__free(rt->workers);
    for (int n = 0; rt->nodes && n < rt->nnodes; n++) {
        pthread_mutex_destroy(&rt->nodes[n].idle_lock);
        for (int p = 0; p < WEFT__PRIO_LEVELS; p++)
            pthread_mutex_destroy(&rt->nodes[n].jq[p].lock);
    }
    weft__aligned_free(rt->nodes);
    if (rt->topo)
        hwloc_topology_destroy(rt->topo);
    pthread_mutex_destroy(&rt->inject_lock);
    pthread_mutex_destroy(&rt->ext_lock);
    weft__aligned_free(rt);
}

/* Workers are first allocated where they will run (after placement), so
 * placement uses a temporary array of stubs for the PU and node. */
static int make_workers(weft_runtime *rt)
{
    rt->workers = weft__calloc((size_t)rt->nworkers, sizeof *rt->workers);
    weft__worker *stub = weft__calloc((size_t)rt->nworkers, sizeof *stub);
    if (!rt->workers || !stub) {
        weft__free(stub);
        return -ENOMEM;
    }
    for (int i = 0; i < rt->nworkers; i++)
        rt->workers[i] = &stub[i];
    int rc = weft__topo_place(rt);
    uint32_t cap = (uint32_t)(rt->stack_size / 32);
    cap = cap < MIN_SLOTS ? MIN_SLOTS : cap;
    for (int i = 0; rc == 0 && i < rt->nworkers; i++) {
        weft__worker *w = weft__alloc_on_node(rt, sizeof *w, stub[i].numa);
        rt->workers[i] = w;
        if (!w) {
            rc = -ENOMEM;
            break;
        }
        w->index = i;
        w->pu = stub[i].pu;
        w->numa = stub[i].numa;
        w->cpu = stub[i].cpu;
        w->rt = rt;
        w->cap = cap;
        w->rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        w->dq = weft__alloc_on_node(rt, cap * sizeof *w->dq, w->numa);
        w->dqfn = weft__alloc_on_node(rt, cap * sizeof *w->dqfn, w->numa);
        w->state = weft__alloc_on_node(rt, cap * sizeof *w->state, w->numa);
        if (!w->dq || !w->dqfn || !w->state)
            rc = -ENOMEM;
    }
    for (int i = 0; rc == 0 && i < rt->nworkers; i++) {
        weft__worker *w = rt->workers[i];
        w->grain = weft__calloc((size_t)rt->nworkers, sizeof *w->grain);
        rc = w->grain ? weft__topo_victims(rt, w) : -ENOMEM;
    }
    if (rc) /* free_runtime must not see stubs */
        for (int i = 0; i < rt->nworkers; i++)
            if (rt->workers[i] >= stub && rt->workers[i] < stub + rt->nworkers)
                rt->workers[i] = NULL;
    weft__free(stub);
    return rc;
}

static int make_nodes(weft_runtime *rt)
{
    int n = 1;
    for (int i = 0; i < rt->nworkers; i++)
        if (rt->workers[i]->numa >= n)
            n = rt->workers[i]->numa + 1;
    rt->nodes = weft__aligned_alloc(WEFT__CACHELINE, n * sizeof *rt->nodes);
    if (!rt->nodes)
        return -ENOMEM;
    memset(rt->nodes, 0, n * sizeof *rt->nodes);
    /* (A node queue's lock is only ever tried, by takers: submitters
     * push without it, see weft__jqueue.) */
    for (int i = 0; i < n; i++) {
        pthread_mutex_init(&rt->nodes[i].idle_lock, NULL);
        for (int p = 0; p < WEFT__PRIO_LEVELS; p++) {
            pthread_mutex_init(&rt->nodes[i].jq[p].lock, NULL);
            rt->nodes[i].jq[p].stamped = n > 1;
        }
    }
    rt->nnodes = n;
    return 0;
}

static void stop_workers(weft_runtime *rt, int nstarted)
{
    weft__store_seqcst(&rt->stopping, 2);
    if (rt->nodes)
        weft__wake_all(rt);
    for (int i = 0; i < nstarted; i++)
        pthread_join(rt->workers[i]->thread, NULL);
}

static int start_workers(weft_runtime *rt)
{
    pthread_attr_t attr;
    if (pthread_attr_init(&attr))
        return -ENOMEM;
    pthread_attr_setstacksize(&attr, rt->stack_size);
    int i = 0, rc = 0;
    for (; i < rt->nworkers; i++) {
        weft__worker *w = rt->workers[i];
        if (weft__thread_create(&w->thread, &attr, weft__worker_main, w)) {
            weft__log("could not start worker thread %d of %d", i,
                      rt->nworkers);
            rc = -EAGAIN;
            break;
        }
    }
    pthread_attr_destroy(&attr);
    if (rc) {
        weft__store_release(&rt->start_failed, 1);
        stop_workers(rt, i);
        return rc;
    }
    while (weft__load_acquire(&rt->started) < rt->nworkers)
        sched_yield();
    return 0;
}

static int setup(weft_runtime *rt, const weft_config *c)
{
    int rc = weft__topo_load(rt, c->topology);
    if (rc)
        return rc;
    int ncores;
    if ((rc = weft__topo_count_cores(rt, &ncores)))
        return rc;
    rt->nworkers = c->workers ? c->workers : ncores;
    if (rt->nworkers > WEFT_MAX_WORKERS)
        rt->nworkers = WEFT_MAX_WORKERS;
    rt->pinned = c->pin && !rt->synthetic && rt->nworkers <= ncores;
    rt->stack_size = c->stack_size ? c->stack_size : DEFAULT_STACK;
    rt->store_capacity = c->store_capacity;
    rt->hold = c->hold == 0 ? WEFT__HOLD_DEFAULT
               : c->hold < 0 ? WEFT__HOLD_MAX + 1 : c->hold;
    rt->spin_us = c->spin_us == 0 ? DEFAULT_SPIN_US
                  : c->spin_us < 0 ? 0 : c->spin_us;
    if ((rc = make_workers(rt)) || (rc = make_nodes(rt)) ||
        (rc = weft__jobs_init(rt)))
        return rc;
    return start_workers(rt);
}

int weft_runtime_create(weft_runtime **out, const weft_config *cfg)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    weft_config c = cfg ? *cfg : weft_config_default();
    int rc = apply_env(&c);
    if (rc || (rc = check_config(&c)))
        return rc;
    if ((rc = weft__watch_forks()))
        return rc;
    size_t size = (sizeof(weft_runtime) + WEFT__CACHELINE - 1) &
                  ~(size_t)(WEFT__CACHELINE - 1);
    weft_runtime *rt = weft__aligned_alloc(WEFT__CACHELINE, size);
    if (!rt)
        return -ENOMEM;
    memset(rt, 0, sizeof *rt);
    pthread_mutex_init(&rt->inject_lock, NULL);
    pthread_mutex_init(&rt->ext_lock, NULL);
    if ((rc = setup(rt, &c))) {
        free_runtime(rt);
        return rc;
    }
    rt->created_ns = weft__now_ns();
    rt->pid = getpid();
    weft__publish_start(rt);
    *out = rt;
    return 0;
}

int weft_runtime_destroy(weft_runtime **rtp)
{
    if (!rtp || !*rtp)
        return 0;
    weft_runtime *rt = *rtp;
    /* a forked child's copy: its workers, store, statistics segment and
     * isolated processes are the parent's, not to be stopped from here */
    if (weft__foreign(rt))
        return -ENOTSUP;
    /* a worker of rt, or a callback that a call on rt runs on this
     * thread: destroy would wait for that call, which waits for it */
    if ((weft__self && weft__self->rt == rt) || weft__holds(rt))
        return -EDEADLK;
    /* One destroy: a second one, from another thread or from a callback
     * the first runs (an actor's fini), overlaps it like any other call,
     * and going on would join the stopped workers and free rt twice.
     * seq_cst, as the store it replaces: pairs with the load after the
     * inflight increment in weft__enter and weft_run. */
    int idle = 0;
    if (!weft__cas_seqcst(&rt->stopping, &idle, 1))
        return -ESHUTDOWN;
    /* every weft_run in flight finishes; its caller's last access to rt
     * is the decrement, so polling (not a futex on rt) is what is safe */
    struct timespec nap = {0, 50000};
    while (weft__load_acquire(&rt->inflight) > 0)
        nanosleep(&nap, NULL);
    weft__jobs_quiesce(rt); /* queued futures and graph runs finish too */
    weft__publish_stop(rt); /* its last snapshot counts all of that */
    stop_workers(rt, rt->nworkers);
    /* A call that counted itself in after the wait above sees stopping
     * and backs out; its decrement is its last access to rt, so wait for
     * it before rt goes. This narrows, and cannot close, the window in
     * which a call races the free: the header asks callers not to. */
    while (weft__load_acquire(&rt->inflight) > 0)
        nanosleep(&nap, NULL);
    free_runtime(rt);
    *rtp = NULL;
    return 0;
}

static void inject(weft_runtime *rt, weft__root *r)
{
    pthread_mutex_lock(&rt->inject_lock);
    if (rt->inject_tail)
        rt->inject_tail->next = r;
    else
        rt->inject_head = r;
    rt->inject_tail = r;
    weft__add_seqcst(&rt->inject_len, 1); /* publication for parkers */
    pthread_mutex_unlock(&rt->inject_lock);
    weft__wake_for_work(rt, 0);
}

/* Spin briefly (a short task's answer comes back in well under the cost
 * of a sleep), then sleep on the futex. After the first few microseconds
 * the spin yields every 16 rounds: the task's own workers may want this
 * CPU. With as many workers as cores, a worker woken for the task (a
 * map's second worker, woken by the first split) whose core this thread
 * spun on waited for the whole spin: a map's second worker started
 * ~65 us late on the 2-core VM, 2-18 us with the yields; an answer within
 * the pure spin comes back as fast as before. The yielding part ends
 * after WAIT_ROOT_YIELD_NS: when a worker holds this core, each yield can
 * last until the scheduler's next tick, and 64 of them kept an 80 ms
 * map's caller waking every 4 ms, preempting a worker each time. acquire
 * pairs with the worker's exchange in run_root. */
#define WAIT_ROOT_YIELD_NS 50000u
static void wait_root(weft__root *r)
{
    uint64_t until = 0;
    for (int i = 0; i < 1536; i++) {
        if (weft__load_acquire(&r->done) == 1)
            return;
        if (i < 512 || i % 16 != 15) {
            weft__cpu_relax();
            continue;
        }
        uint64_t now = weft__now_ns();
        if (!until)
            until = now + WAIT_ROOT_YIELD_NS;
        else if (now >= until)
            break;
        sched_yield();
    }
    uint32_t expect = 0;
    atomic_compare_exchange_strong_explicit(&r->done, &expect, 2,
                                            memory_order_acq_rel,
                                            memory_order_acquire);
    while (weft__load_acquire(&r->done) != 1)
        weft__futex_wait(&r->done, 2);
}

int weft_run(weft_runtime *rt, int (*fn)(void *arg), void *arg)
{
    if (!rt || !fn)
        return -EINVAL;
    if (weft__foreign(rt))
        return -ENOTSUP;
    if (weft__self && weft__self->rt == rt)
        return fn(arg);
    weft__add_seqcst(&rt->inflight, 1);
    if (weft__load_seqcst(&rt->stopping)) {
        weft__sub_release(&rt->inflight, 1);
        return -ESHUTDOWN;
    }
    weft__root r = {.fn = fn, .arg = arg};
    inject(rt, &r);
    wait_root(&r);
    int rc = r.rc;
    weft__sub_release(&rt->inflight, 1);
    return rc;
}

int weft_runtime_workers(const weft_runtime *rt)
{
    return rt ? rt->nworkers : -EINVAL;
}

int weft_worker_index(void)
{
    return weft__self ? weft__self->index : -1;
}

weft_runtime *weft_current_runtime(void)
{
    return weft__self ? weft__self->rt : NULL;
}

/* A period's total plus the part of it now under way (see busy_since). */
static uint64_t live(_Atomic uint64_t *total, _Atomic uint64_t *since,
                     uint64_t now)
{
    uint64_t t = weft__load_relaxed(total);
    uint64_t s = weft__load_relaxed(since);
    return s && now > s ? t + (now - s) : t;
}

/* Busy time including the piece of work running now, so a long task
 * shows as busy while it runs, not only once it ends; waits excluded. */
static uint64_t live_busy(weft__worker *w, uint64_t wait, uint64_t now)
{
    uint64_t busy = live(&w->busy_ns, &w->busy_since, now);
    uint64_t v = busy > wait ? busy - wait : 0;
    /* v dips when a piece of work ends (busy_since cleared before busy_ns
     * grows) or a sync's wait is subtracted: report a high-water mark */
    uint64_t seen = weft__load_relaxed(&w->busy_shown);
    while (v > seen && !atomic_compare_exchange_weak_explicit(
                           &w->busy_shown, &seen, v, memory_order_relaxed,
                           memory_order_relaxed))
        ;
    return v > seen ? v : seen;
}

/* Frames a thief could take plus jobs on its job deque, read racily: a
 * gauge, not an exact count. */
static uint64_t queued(weft__worker *w)
{
    uint64_t ts = weft__load_relaxed(&w->ts);
    int64_t frames = (int64_t)weft__ts_split(ts) - (int64_t)weft__ts_tail(ts);
    int64_t jobs = weft__load_relaxed(&w->jbot) - weft__load_relaxed(&w->jtop);
    return (uint64_t)(frames > 0 ? frames : 0) + (uint64_t)(jobs > 0 ? jobs : 0);
}

int weft_stats_workers(const weft_runtime *rt, weft_worker_stats *out, int n)
{
    if (!rt || !out || n < 0)
        return -EINVAL;
    int k = n < rt->nworkers ? n : rt->nworkers;
    for (int i = 0; i < k; i++) {
        weft__worker *w = rt->workers[i];
        weft_worker_stats *s = &out[i];
        memset(s, 0, sizeof *s);
        s->worker = i;
        s->cpu = w->cpu;
        s->numa_node = w->numa;
        s->published = weft__load_relaxed(&w->published);
        s->steals_tried = weft__load_relaxed(&w->steals_tried);
        s->steals_won = weft__load_relaxed(&w->steals_won);
        s->steals_near = weft__load_relaxed(&w->steals_near);
        s->roots = weft__load_relaxed(&w->roots);
        s->parks = weft__load_relaxed(&w->parks);
        uint64_t wait = weft__load_relaxed(&w->wait_ns);
        uint64_t now = weft__now_ns();
        s->spin_ns = live(&w->spin_ns, &w->spin_since, now) + wait;
        s->parked_ns = live(&w->parked_ns, &w->parked_since, now);
        s->misuses = weft__load_relaxed(&w->misuses);
        s->starved = weft__load_relaxed(&w->starved);
        s->jobs = weft__load_relaxed(&w->jobs);
        s->busy_ns = live_busy(w, wait, now);
        s->queued = queued(w);
    }
    return k;
}

/* Actor counters (lib/actor): summed racily, so the backlog (sent minus
 * handled minus dropped) is a gauge, clamped at 0. */
static void actor_stats(const weft_runtime *rt, weft_runtime_stats *out)
{
    uint64_t sent = weft__load_relaxed(&rt->actor_sent_ext), handled = 0;
    for (int i = 0; i < rt->nworkers; i++) {
        sent += weft__load_relaxed(&rt->workers[i]->actor_sent);
        handled += weft__load_relaxed(&rt->workers[i]->actor_handled);
    }
    uint64_t gone = handled + weft__load_relaxed(&rt->actor_dropped);
    out->actors = weft__load_relaxed(&rt->actors);
    out->messages_sent = sent;
    out->messages_handled = handled;
    out->actor_restarts = weft__load_relaxed(&rt->actor_restarts);
    out->mailbox_backlog = sent > gone ? sent - gone : 0;
}

int weft_stats_runtime(const weft_runtime *rt, weft_runtime_stats *out)
{
    if (!rt || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->uptime_ns = weft__now_ns() - rt->created_ns;
    out->workers = rt->nworkers;
    out->maps = weft__load_relaxed(&rt->maps);
    out->map_items = weft__load_relaxed(&rt->map_items);
    for (int i = 0; i < rt->nworkers; i++) /* live: counted per batch */
        out->map_items += weft__load_relaxed(&rt->workers[i]->map_items);
    actor_stats(rt, out);
    int64_t peers = weft__load_relaxed(&rt->peers);
    out->peers = peers > 0 ? (uint64_t)peers : 0;
    /* fields of higher layers (the store's), from the hooks they
     * registered; acquire pairs with weft__ext_make's release */
    for (int i = 0; i < WEFT__EXT_MAX; i++) {
        void *e = weft__load_acquire(&((weft_runtime *)rt)->ext[i]);
        if (e && rt->ext_stats[i])
            rt->ext_stats[i](e, out);
    }
    return 0;
}
