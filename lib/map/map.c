/* Parallel map, for and reduce (see <weft/map.h>): lazy binary splitting
 * on the fork-join deque, with batches sized from measured costs.
 *
 * A worker runs its range batch by batch. Before each batch it asks its
 * deque whether a thief would find anything there (weft__deque_starved);
 * only when not does it spawn the upper half of what is left, so the pool
 * sees about log2(items) splits per worker and a thief always takes half
 * of a remaining range. The spawned frame lives on the splitting worker's
 * stack; recursion depth is bounded by log2(items / batch) < 64. */
#include <errno.h>
#include <limits.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "alloc.h"
#include "map.h"

/* Batches aim at overhead per batch <= OVERHEAD of the batch's item time:
 * 2% leaves room under the 5% the issue allows for what the fit cannot
 * see (splits, progress reports). */
#define OVERHEAD 0.02
/* And batches last at least this many ticks (25-100 us at a 1-4 GHz
 * counter): the gap between batches is all the fit measures of b, and a
 * batch call has costs no timer brackets (loop set-up in the body, a cold
 * line, the two counter reads themselves: about 60 ns a batch on the
 * 2-core VM, from the fixed-batch sweep). At 40000 ticks the Pareto map
 * ran 4335 batches a worker, 0.3 % of its time, and stayed 0.5 % behind
 * oneTBB; at 100000, level with it (alternating processes, 2 workers). The
 * tail this adds is at most one batch: lazy splitting hands the rest of a
 * range to an idle worker. */
#define MIN_BATCH_TICKS 100000.0
/* Items per batch when results are delivered: bounds the scratch buffer
 * and the failure mask of one batch. */
#define DELIVER_MAX 256
#define PROGRESS_DEFAULT_MS 200
#define BAR_DELAY_NS 500000000ull

static const unsigned KNOWN_FLAGS =
    WEFT_MAP_COLLECT | WEFT_MAP_QUIET | WEFT_MAP_ISOLATED;

weft_map_opts weft_map_opts_default(void)
{
    weft_map_opts o;
    memset(&o, 0, sizeof o);
    return o;
}

/* ---- clocks ---------------------------------------------------------- */

/* The batch fit needs only ratios of durations measured on one core, so
 * the cycle counter is enough where there is one (a few ns, against ~20
 * for clock_gettime on a VM). */
static inline uint64_t ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    return weft__now_ns();
#endif
}

static uint64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- slots ----------------------------------------------------------- */

static size_t acc_stride(const map_run *m)
{
    return m->red ? (m->red->size + WEFT__CACHELINE - 1) /
                        WEFT__CACHELINE * WEFT__CACHELINE
                  : 0;
}

/* The primary slot of the calling worker (always one of m's runtime:
 * map code runs only there), where progress is counted. */
static map_slot *slot_home(map_run *m)
{
    return &m->slots[weft__self->index];
}

/* The calling worker's slot, or a fresh one when its slot is inside an
 * item function further up this stack (see map_slot). NULL: no memory. */
/* A slot's own buffers: the reduction's accumulator, and for delivery
 * without an output array the scratch its results go to. -ENOMEM leaves
 * what was made for the caller to free. */
static int slot_bufs(map_run *m, map_slot *s)
{
    s->next = 1;
    if (m->red &&
        !(s->acc = weft__aligned_alloc(WEFT__CACHELINE, acc_stride(m))))
        return -ENOMEM;
    if (m->o.deliver && !m->out &&
        !(s->scratch = weft__malloc(DELIVER_MAX * m->out_stride)))
        return -ENOMEM;
    return 0;
}

static map_slot *slot_get(map_run *m)
{
    map_slot *s = slot_home(m);
    if (!s->in_body)
        return s;
    map_slot *x = weft__aligned_alloc(WEFT__CACHELINE, sizeof *x);
    if (!x)
        return NULL;
    memset(x, 0, sizeof *x);
    if (slot_bufs(m, x)) {
        weft__aligned_free(x->acc);
        weft__free(x->scratch);
        weft__aligned_free(x);
        return NULL;
    }
    pthread_mutex_lock(&m->lock);
    x->next_extra = m->extra;
    m->extra = x;
    pthread_mutex_unlock(&m->lock);
    return x;
}

/* ---- errors and stopping --------------------------------------------- */

/* Under the default policy a failure stops the map. */
static void fail_stop(map_run *m)
{
    if (m->o.flags & WEFT_MAP_COLLECT)
        return;
    int running = MAPRUN_GOING;
    /* relaxed: stop is a hint to skip work; the results are read only
     * after the whole map has joined */
    atomic_compare_exchange_strong_explicit(&m->stop, &running,
        MAPRUN_FAILED, memory_order_relaxed, memory_order_relaxed);
}

void weft__map_fail(map_run *m, size_t index, int status, int signal)
{
    pthread_mutex_lock(&m->lock);
    if (m->first_index == SIZE_MAX) {
        m->first_index = index;
        m->first_status = status;
        m->first_signal = signal;
    }
    if (m->nerrors < m->o.max_errors)
        m->o.errors[m->nerrors++] =
            (weft_map_error){.index = index, .status = status,
                             .signal = signal};
    pthread_mutex_unlock(&m->lock);
    fail_stop(m);
}

/* The map itself failed (status: a negative errno): it stops as at an
 * item's failure, and the call returns status unless an item failed
 * first. */
static void map_fail_all(map_run *m, int status)
{
    pthread_mutex_lock(&m->lock);
    if (m->first_index == SIZE_MAX && !m->map_status)
        m->map_status = status;
    pthread_mutex_unlock(&m->lock);
    fail_stop(m);
}

static bool stopped(map_run *m)
{
    if (weft__load_relaxed(&m->stop) != MAPRUN_GOING)
        return true;
    if (m->o.cancel && atomic_load_explicit(m->o.cancel,
                                            memory_order_relaxed)) {
        int running = MAPRUN_GOING;
        atomic_compare_exchange_strong_explicit(&m->stop, &running,
            MAPRUN_CANCELLED, memory_order_relaxed, memory_order_relaxed);
        return true;
    }
    return false;
}

/* ---- the four batch functions ---------------------------------------- */

static unsigned char *out_slot(map_run *m, map_slot *s, size_t i, size_t lo)
{
    if (m->out)
        return m->out + i * m->out_stride;
    if (s->scratch)
        return s->scratch + (i - lo) * m->out_stride;
    return NULL;
}

/* ---- delivery ---------------------------------------------------------
 *
 * One thread at a time makes the callback's calls, and no lock is held
 * while it does: a callback may call into weft, and the nested map's
 * worker may then run batches of this map (whose delivery would wait for
 * itself) or need a worker that is waiting to deliver. So a batch that
 * finishes while another thread (or this one, further up its stack)
 * delivers is queued, and the delivering thread makes its calls before
 * it stops, oldest batch first: completion order, never two calls at
 * once, and no worker ever waits for the callback. */

/* A batch waiting to be delivered. */
typedef struct map_dlv {
    struct map_dlv *next;
    size_t lo, hi;
    uint64_t mask[DELIVER_MAX / 64];
    /* with no output array, a copy of the scratch results from lo,
     * aligned as the scratch is (else they are in the map's output) */
    alignas(max_align_t) unsigned char res[];
} map_dlv;

/* The calls for the items of [lo, hi) that did not fail (not in mask);
 * res: item lo's result, the next ones every out_stride bytes. */
static void deliver_run(map_run *m, size_t lo, size_t hi,
                        const uint64_t *mask, unsigned char *res)
{
    for (size_t i = lo; i < hi; i++)
        if (!(mask[(i - lo) / 64] >> ((i - lo) % 64) & 1))
            m->o.deliver(i, res + (i - lo) * m->out_stride,
                         m->o.deliver_ctx);
}

static void deliver_queued(map_run *m, map_dlv *d)
{
    deliver_run(m, d->lo, d->hi, d->mask,
                m->out ? m->out + d->lo * m->out_stride : d->res);
}

/* The delivering thread: the batches queued meanwhile (also by its own
 * callbacks), until none is left; then it stops delivering. */
static void deliver_drain(map_run *m)
{
    for (;;) {
        pthread_mutex_lock(&m->lock);
        map_dlv *d = m->dq_head;
        m->dq_head = NULL;
        m->dq_tail = &m->dq_head;
        m->delivering = d != NULL;
        pthread_mutex_unlock(&m->lock);
        if (!d)
            return;
        while (d) {
            map_dlv *next = d->next;
            deliver_queued(m, d);
            weft__free(d);
            d = next;
        }
    }
}

/* Queues a batch whose items cannot be delivered now, or delivers it
 * when the delivering thread stopped meanwhile. Scratch results are
 * copied: the slot's next batch reuses the scratch. With no memory for
 * that, the batch's items fail with -ENOMEM (they are in the report, as
 * failed items are, instead of delivered). */
static void deliver_later(map_run *m, map_slot *s, size_t lo, size_t hi,
                          const uint64_t *mask, const unsigned char *res)
{
    size_t copy = m->out ? 0 : (hi - lo) * m->out_stride;
    map_dlv *d = weft__malloc(sizeof *d + copy);
    if (!d) {
        for (size_t i = lo; i < hi; i++)
            if (!(mask[(i - lo) / 64] >> ((i - lo) % 64) & 1)) {
                s->ok--;
                s->failed++;
                weft__map_fail(m, i, -ENOMEM, 0);
            }
        return;
    }
    *d = (map_dlv){.lo = lo, .hi = hi};
    memcpy(d->mask, mask, sizeof d->mask);
    memcpy(d->res, res, copy);
    /* queued in any case: while nobody delivers the queue is empty, so a
     * thread that takes over delivers d first */
    pthread_mutex_lock(&m->lock);
    bool mine = !m->delivering;
    m->delivering = true;
    *m->dq_tail = d;
    m->dq_tail = &d->next;
    pthread_mutex_unlock(&m->lock);
    if (mine)
        deliver_drain(m);
}

/* Hand a batch's results to the delivery callback (see above); failed
 * items (bits of mask) are skipped. */
static void deliver(map_run *m, map_slot *s, size_t lo, size_t hi,
                    const uint64_t *mask)
{
    unsigned char *res = out_slot(m, s, lo, lo);
    pthread_mutex_lock(&m->lock);
    bool mine = !m->delivering;
    m->delivering = true;
    pthread_mutex_unlock(&m->lock);
    if (!mine) {
        deliver_later(m, s, lo, hi, mask, res);
        return;
    }
    deliver_run(m, lo, hi, mask, res);
    deliver_drain(m);
}

static void batch_map(map_run *m, map_slot *s, size_t lo, size_t hi)
{
    uint64_t mask[DELIVER_MAX / 64] = {0};
    size_t i = lo;
    for (; i < hi; i++) {
        const void *in = m->in ? m->in + i * m->in_stride : NULL;
        int rc = m->map_fn(i, in, out_slot(m, s, i, lo), m->ctx);
        if (WEFT_LIKELY(rc == 0)) {
            s->ok++;
            continue;
        }
        s->failed++;
        weft__map_fail(m, i, rc, 0);
        if (m->o.deliver)
            mask[(i - lo) / 64] |= 1ull << ((i - lo) % 64);
        if (!(m->o.flags & WEFT_MAP_COLLECT)) {
            i++;
            break;
        }
    }
    if (m->o.deliver)
        deliver(m, s, lo, i, mask);
}

static void batch_for(map_run *m, map_slot *s, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++) {
        int rc = m->for_fn(i, m->ctx);
        if (WEFT_LIKELY(rc == 0)) {
            s->ok++;
            continue;
        }
        s->failed++;
        weft__map_fail(m, i, rc, 0);
        if (!(m->o.flags & WEFT_MAP_COLLECT))
            return;
    }
}

/* A failing range call fails all its items: which of them went wrong is
 * the body's to say. */
static void range_result(map_run *m, map_slot *s, size_t lo, size_t hi,
                         int rc)
{
    if (WEFT_LIKELY(rc == 0)) {
        s->ok += hi - lo;
        return;
    }
    s->failed += hi - lo;
    weft__map_fail(m, lo, rc, 0);
}

static void batch_range(map_run *m, map_slot *s, size_t lo, size_t hi)
{
    range_result(m, s, lo, hi, m->range_fn(lo, hi, m->ctx));
}

static void batch_reduce(map_run *m, map_slot *s, size_t lo, size_t hi)
{
    if (!s->acc_ready) {
        int rc = m->red->init(s->acc, m->ctx);
        if (rc) {
            range_result(m, s, lo, hi, rc);
            return;
        }
        s->acc_ready = true;
    }
    range_result(m, s, lo, hi, m->red->body(s->acc, lo, hi, m->ctx));
}

/* ---- adaptive batch size --------------------------------------------- */

/* Size of the next batch of s, at most rest. */
static size_t batch_size(map_run *m, map_slot *s, size_t rest)
{
    size_t b = m->o.batch ? m->o.batch : s->next;
    return b < rest ? b : rest;
}

/* Fit t(s) = a + b/s per item from the batch just run (n items in
 * [t0, t1], gap ticks of overhead since the previous batch ended, 0 when
 * unknown) and pick the next size: b/s <= OVERHEAD * a, growing at most
 * twice per batch so one noisy sample cannot jump far. */
static void adapt(map_run *m, map_slot *s, size_t n, uint64_t t0,
                  uint64_t t1, uint64_t gap)
{
    double a = (double)(t1 - t0) / (double)n;
    s->a = s->batches == 1 ? a : s->a + (a - s->a) * 0.25;
    if (gap) {
        double g = (double)gap;
        if (s->b > 0 && g > 4 * s->b)
            g = 4 * s->b; /* a preemption or a report is not overhead */
        s->b = s->b > 0 ? s->b + (g - s->b) * 0.25 : g;
    }
    double want = s->b > 0 && s->a > 0 ? s->b / (OVERHEAD * s->a) : 2.0 * n;
    if (s->a > 0 && want * s->a < MIN_BATCH_TICKS)
        want = MIN_BATCH_TICKS / s->a;
    double grow = 2.0 * (double)n;
    if (want > grow)
        want = grow;
    size_t next = want < 1 ? 1 : (size_t)want;
    s->next = next < m->cap ? next : m->cap;
}

static void count_batch(map_slot *s, size_t n)
{
    s->batches++;
    if (n > s->bmax)
        s->bmax = n;
}

/* ---- progress -------------------------------------------------------- */

static size_t progress_done(map_run *m)
{
    size_t done = 0;
    for (int i = 0; i < m->nslots; i++)
        done += weft__load_relaxed(&m->slots[i].done);
    return done;
}

static void fmt_time(char *buf, size_t len, double sec)
{
    if (sec < 0) {
        snprintf(buf, len, "?");
        return;
    }
    unsigned long t = (unsigned long)(sec + 0.5);
    snprintf(buf, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
}

/* 1234567 -> "1.23M", as progress bars print rates. */
static void fmt_rate(char *buf, size_t len, double r)
{
    static const char unit[] = " kMGT";
    int u = 0;
    while (r >= 1000 && u < 4) {
        r /= 1000;
        u++;
    }
    snprintf(buf, len, u ? "%.3g%c" : "%.3g", r, unit[u]);
}

/* One line on stderr, redrawn in place; written with one write() so it
 * does not interleave with other output mid-line. */
static void draw_bar(map_run *m, const weft_map_progress *p, bool last)
{
    enum { WIDTH = 30 };
    char bar[WIDTH + 1], eta[32], rate[16], line[160];
    size_t fill = p->total ? p->done * WIDTH / p->total : WIDTH;
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = 0;
    fmt_time(eta, sizeof eta, last ? p->elapsed : p->eta);
    fmt_rate(rate, sizeof rate, p->rate);
    int len = snprintf(line, sizeof line,
        "\r[%s] %zu/%zu %3.0f%% %s it/s %s %s%s", bar, p->done, p->total,
        p->total ? 100.0 * (double)p->done / (double)p->total : 100.0,
        rate, last ? "in" : "ETA", eta, last ? "\n" : "");
    if (len > 0 && write(STDERR_FILENO, line, (size_t)len) < 0)
        return; /* a progress bar that cannot be drawn is not an error */
    m->bar_drawn = true;
}

static void report(map_run *m, size_t done, uint64_t now, bool last)
{
    weft_map_progress p = {.done = done, .total = m->end - m->begin};
    p.elapsed = (double)(now - m->t_start) / 1e9;
    p.rate = p.elapsed > 0 ? (double)done / p.elapsed : 0;
    p.eta = p.rate > 0 ? (double)(p.total - done) / p.rate : -1;
    if (m->o.progress)
        m->o.progress(&p, m->o.progress_ctx);
    else if (m->bar && (m->bar_drawn || now - m->t_start >= BAR_DELAY_NS))
        draw_bar(m, &p, last);
}

/* Report when the interval has passed, one caller at a time. done() is
 * asked only then: summing the workers' counters is not free. */
static void progress_due(map_run *m, size_t (*done)(map_run *m))
{
    if (!m->progress_on)
        return;
    uint64_t now = coarse_ns();
    if (now < weft__load_relaxed(&m->next_report))
        return;
    /* acquire pairs with the release below: one report at a time, and the
     * next reporter sees the bar state the last one left */
    if (atomic_exchange_explicit(&m->reporting, 1, memory_order_acquire))
        return;
    unsigned ms = m->o.progress_ms ? m->o.progress_ms : PROGRESS_DEFAULT_MS;
    weft__store_relaxed(&m->next_report, now + ms * 1000000ull);
    report(m, done(m), now, false);
    weft__store_release(&m->reporting, 0);
}

/* After a batch: count it (for this map, and for the runtime's live
 * statistics), and report if due. */
static void progress_tick(map_run *m, size_t n)
{
    weft__stat_add(&slot_home(m)->done, n);
    weft__stat_add(&weft__self->map_items, n);
    progress_due(m, progress_done);
}

void weft__map_progress(map_run *m, size_t (*done)(map_run *m))
{
    progress_due(m, done);
}

/* ---- lazy splitting -------------------------------------------------- */

typedef struct split_frame {
    weft_task task;
    map_run *m;
    size_t lo, hi;
    int spawner;
} split_frame;

static void run_range(map_run *m, map_slot *s, size_t lo, size_t hi,
                      uint64_t *last_end);

/* With a worker limit, tokens count workers in the map plus frames
 * spawned and not yet started; a split needs a free token. */
static bool split_take(map_run *m)
{
    if (!m->limited)
        return true;
    int t = weft__load_relaxed(&m->tokens);
    while (t < m->limit)
        if (atomic_compare_exchange_weak_explicit(&m->tokens, &t, t + 1,
                memory_order_relaxed, memory_order_relaxed))
            return true;
    return false;
}

static void split_put(map_run *m)
{
    if (m->limited)
        atomic_fetch_sub_explicit(&m->tokens, 1, memory_order_relaxed);
}

/* A half handed to the pool. Run by its spawner (nobody stole it) its
 * token goes back at once, since no new worker joined; run by a thief,
 * when the thief is done with it. */
static void split_task(weft_task *t)
{
    split_frame *f = (split_frame *)t;
    map_run *m = f->m;
    bool stolen = weft__self->index != f->spawner;
    if (!stolen)
        split_put(m);
    map_slot *s = slot_get(m);
    uint64_t last_end = 0;
    if (s) {
        s->used = true;
        run_range(m, s, f->lo, f->hi, &last_end);
    } else {
        /* its items are skipped, which no item's status accounts for */
        map_fail_all(m, -ENOMEM);
    }
    if (stolen)
        split_put(m);
}

static bool want_split(map_run *m, size_t rest, size_t batch)
{
    return rest >= 2 * batch && rest >= 2 && weft__deque_starved() &&
           split_take(m);
}

/* Spawn [mid, hi), run [lo, mid) here, then join. */
static void split(map_run *m, map_slot *s, size_t lo, size_t hi,
                  uint64_t *last_end)
{
    split_frame f = {.m = m, .lo = lo + (hi - lo) / 2, .hi = hi,
                     .spawner = weft__self->index};
    s->splits++;
    /* the thief is hungry: link the frame and share it now (never run
     * at the spawn, which weft_spawn may do) */
    weft__spawn_slow_g(&f.task, split_task);
    run_range(m, s, lo, f.lo, last_end);
    weft_sync_fn(&f.task, split_task);
    *last_end = 0; /* the join may have run anything: no gap sample */
}

static void run_batch(map_run *m, map_slot *s, size_t lo, size_t n,
                      uint64_t *last_end)
{
    size_t before = s->ok + s->failed;
    uint64_t t0 = ticks();
    s->in_body = true;
    m->batch(m, s, lo, lo + n);
    s->in_body = false;
    uint64_t t1 = ticks();
    count_batch(s, n);
    if (!m->o.batch)
        adapt(m, s, n, t0, t1, *last_end ? t0 - *last_end : 0);
    /* what ran: a batch stopped at a failing item skips the rest */
    progress_tick(m, s->ok + s->failed - before);
    /* the next gap starts here, so it covers this bookkeeping too */
    *last_end = t1;
}

static void run_range(map_run *m, map_slot *s, size_t lo, size_t hi,
                      uint64_t *last_end)
{
    while (lo < hi && !stopped(m)) {
        size_t n = batch_size(m, s, hi - lo);
        if (want_split(m, hi - lo, n)) {
            split(m, s, lo, hi, last_end);
            return;
        }
        run_batch(m, s, lo, n, last_end);
        lo += n;
    }
}

static int map_root(void *arg)
{
    map_run *m = arg;
    map_slot *s = slot_get(m);
    if (!s)
        return -ENOMEM;
    uint64_t last_end = 0;
    s->used = true;
    run_range(m, s, m->begin, m->end, &last_end);
    return 0;
}

/* ---- set-up, validation, results ------------------------------------- */

static int check_opts(const weft_map_opts *o)
{
    if (o->flags & ~KNOWN_FLAGS)
        return -EINVAL;
    if (o->workers < -WEFT_MAX_WORKERS)
        return -EINVAL;
    if (!o->errors && o->max_errors)
        return -EINVAL;
    return 0;
}

/* joblib's n_jobs: 0 and -1 all, -k all but k - 1, never below 1. */
static int resolve_workers(int want, int have)
{
    int n = want > 0 ? want : want == 0 ? have : have + 1 + want;
    if (n > have)
        n = have;
    return n < 1 ? 1 : n;
}

static bool bar_wanted(const weft_map_opts *o)
{
    if (o->progress || (o->flags & WEFT_MAP_QUIET))
        return false;
    const char *env = getenv("WEFT_PROGRESS");
    if (env && strcmp(env, "0") == 0)
        return false;
    return isatty(STDERR_FILENO);
}

static size_t batch_cap(const map_run *m)
{
    size_t cap = (m->end - m->begin) / (4 * (size_t)m->limit);
    if (m->o.deliver && cap > DELIVER_MAX)
        cap = DELIVER_MAX;
    return cap ? cap : 1;
}

static int alloc_slots(map_run *m)
{
    size_t n = (size_t)m->nslots;
    /* a batch's scratch: DELIVER_MAX * out_stride must not wrap (to a
     * small buffer that items would then overrun) */
    if (m->o.deliver && !m->out && m->out_stride > SIZE_MAX / DELIVER_MAX)
        return -ENOMEM;
    m->slots = weft__aligned_alloc(WEFT__CACHELINE, n * sizeof *m->slots);
    if (!m->slots)
        return -ENOMEM;
    memset(m->slots, 0, n * sizeof *m->slots);
    for (size_t i = 0; i < n; i++)
        if (slot_bufs(m, &m->slots[i]))
            return -ENOMEM; /* free_slots frees what was made */
    return 0;
}

static void free_slots(map_run *m)
{
    for (map_slot *x = m->extra, *nx; x; x = nx) {
        nx = x->next_extra;
        weft__aligned_free(x->acc);
        weft__free(x->scratch);
        weft__aligned_free(x);
    }
    if (!m->slots)
        return;
    for (int i = 0; i < m->nslots; i++) {
        weft__aligned_free(m->slots[i].acc);
        weft__free(m->slots[i].scratch);
    }
    weft__aligned_free(m->slots);
}

static int map_init(map_run *m, weft_runtime *rt, size_t begin, size_t end,
                    const weft_map_opts *o)
{
    int have = weft_runtime_workers(rt);
    if (have < 0)
        return have;
    m->rt = rt;
    m->o = o ? *o : weft_map_opts_default();
    int rc = check_opts(&m->o);
    if (rc)
        return rc;
    m->begin = begin;
    m->end = end;
    m->limit = resolve_workers(m->o.workers, have);
    m->limited = m->limit < have;
    m->first_index = SIZE_MAX;
    m->nslots = have;
    if (m->o.deliver && m->o.batch > DELIVER_MAX)
        m->o.batch = DELIVER_MAX;
    m->progress_on = m->o.progress || bar_wanted(&m->o);
    m->bar = !m->o.progress && m->progress_on;
    return 0;
}

/* What every form shares once its own arguments are checked. */
static int map_start(map_run *m)
{
    m->cap = batch_cap(m);
    weft__store_relaxed(&m->tokens, 1);
    pthread_mutex_init(&m->lock, NULL);
    m->dq_tail = &m->dq_head;
    int rc = alloc_slots(m);
    if (rc == 0)
        m->t_start = weft__now_ns();
    return rc;
}

static void add_slot(weft_map_report *rep, const map_slot *s, size_t *ok,
                     size_t *failed)
{
    *ok += s->ok;
    *failed += s->failed;
    rep->batches += s->batches;
    rep->splits += s->splits;
    if (s->bmax > rep->batch_max)
        rep->batch_max = s->bmax;
}

static void fill_report(map_run *m, weft_map_report *rep, size_t *ok,
                        size_t *failed)
{
    memset(rep, 0, sizeof *rep);
    for (int i = 0; i < m->nslots; i++) {
        rep->workers += m->slots[i].used;
        add_slot(rep, &m->slots[i], ok, failed);
    }
    for (map_slot *x = m->extra; x; x = x->next_extra)
        add_slot(rep, x, ok, failed);
}

/* Merge (and finish) one accumulator; keeps the first error in *rc. */
static void reduce_one(map_run *m, map_slot *s, void *result, int *rc)
{
    if (!s->acc_ready)
        return;
    int c = result ? m->red->combine(result, s->acc, m->ctx) : 0;
    if (c && !*rc)
        *rc = c;
    if (m->red->fini)
        m->red->fini(s->acc, m->ctx);
    s->acc_ready = false;
}

/* Merge every accumulator into result (NULL: only finish them). */
static int reduce_finish(map_run *m, void *result)
{
    int rc = 0;
    for (int i = 0; i < m->nslots; i++)
        reduce_one(m, &m->slots[i], result, &rc);
    for (map_slot *x = m->extra; x; x = x->next_extra)
        reduce_one(m, x, result, &rc);
    return rc;
}

int weft__map_end(map_run *m, int run_rc, size_t ok, size_t failed,
                  weft_map_report *rep)
{
    rep->done = ok;
    rep->failed = failed;
    rep->skipped = m->end - m->begin - ok - failed;
    rep->nerrors = m->nerrors;
    rep->first_index = m->first_index;
    rep->first_status = m->first_status;
    rep->first_signal = m->first_signal;
    rep->seconds = (double)(weft__now_ns() - m->t_start) / 1e9;
    weft__add_relaxed(&m->rt->maps, 1);
    if (m->progress_on)
        report(m, ok + failed, weft__now_ns(), true);
    if (run_rc)
        return run_rc;
    if (m->map_status)
        return m->map_status;
    if (weft__load_relaxed(&m->stop) == MAPRUN_CANCELLED)
        return -ECANCELED;
    return failed ? m->first_status : 0;
}

/* The pool's counters into the report, then the common end. */
static int map_finish(map_run *m, int run_rc, weft_map_report *rep)
{
    weft_map_report local;
    rep = rep ? rep : &local;
    size_t ok = 0, failed = 0;
    fill_report(m, rep, &ok, &failed);
    rep->batch_mean = rep->batches ? (ok + failed) / rep->batches : 0;
    return weft__map_end(m, run_rc, ok, failed, rep);
}

/* Fills rep for a call refused before anything ran. */
static void report_refused(const map_run *m, weft_map_report *rep)
{
    if (rep)
        *rep = (weft_map_report){.skipped = m->end - m->begin,
                                 .first_index = SIZE_MAX};
}

/* The call holds rt from start to end, not only for its weft_run: after
 * the run, the reduce's init and combine run here, and weft__map_end
 * counts the map on rt; a destroy that waited only for the run freed rt
 * under them. */
static int map_go(map_run *m, weft_map_report *rep, void *result)
{
    int rc = weft__enter(m->rt);
    if (rc) {
        report_refused(m, rep);
        return rc;
    }
    rc = map_start(m);
    if (rc == 0 && m->end > m->begin)
        rc = weft_run(m->rt, map_root, m);
    int red_rc = 0;
    if (m->red && m->slots) {
        red_rc = rc == 0 ? m->red->init(result, m->ctx) : rc;
        int c = reduce_finish(m, red_rc == 0 ? result : NULL);
        red_rc = red_rc ? red_rc : c;
    }
    if (m->slots && m->t_start)
        rc = map_finish(m, rc, rep);
    else
        report_refused(m, rep);
    rc = rc ? rc : red_rc;
    free_slots(m);
    pthread_mutex_destroy(&m->lock);
    weft__leave(m->rt);
    return rc;
}

/* ---- the public calls ------------------------------------------------ */

/* The call holds rt like every other entry from outside (weft_run does it
 * for the pool): destroy waits for it, and refuses it once begun, instead
 * of stopping the processes under it. */
static int isolated_go(map_run *m, weft_map_report *rep)
{
    /* ctx_size bytes of ctx are copied to the store: from NULL, that
     * would crash the caller (argument checks: rep stays untouched) */
    if (m->o.ctx_size && !m->ctx)
        return -EINVAL;
    int rc = weft__enter(m->rt);
    if (rc) {
        if (rep)
            *rep = (weft_map_report){.skipped = m->end - m->begin,
                                     .first_index = SIZE_MAX};
        return rc;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->t_start = weft__now_ns();
    rc = weft__map_isolated(m, rep);
    pthread_mutex_destroy(&m->lock);
    weft__leave(m->rt);
    return rc;
}

/* Isolated or on the pool, once the form's own fields are set. */
static int map_run_call(map_run *m, weft_map_report *rep, void *result)
{
    if (m->o.flags & WEFT_MAP_ISOLATED)
        return isolated_go(m, rep);
    return map_go(m, rep, result);
}

/* The checks the index forms (for, for_range, map_reduce) share. */
static int index_init(map_run *m, weft_runtime *rt, size_t begin,
                      size_t end, const weft_map_opts *opts,
                      bool isolated_ok)
{
    if (begin > end)
        return -EINVAL;
    int rc = map_init(m, rt, begin, end, opts);
    if (rc)
        return rc;
    if (m->o.deliver)
        return -EINVAL;
    if ((m->o.flags & WEFT_MAP_ISOLATED) && !isolated_ok)
        return -ENOTSUP;
    return 0;
}

int weft_map(weft_runtime *rt, size_t n, const void *in, size_t in_stride,
             void *out, size_t out_stride, weft_map_fn fn, void *ctx,
             const weft_map_opts *opts, weft_map_report *rep)
{
    map_run m = {0};
    if (!rt || !fn)
        return -EINVAL;
    int rc = map_init(&m, rt, 0, n, opts);
    if (rc)
        return rc;
    if (m.o.deliver && !out_stride)
        return -EINVAL;
    /* an isolated item's input and output are copied, and with stride 0
     * nothing says how many bytes an item has */
    if ((m.o.flags & WEFT_MAP_ISOLATED) &&
        ((in && !in_stride) || (out && !out_stride)))
        return -EINVAL;
    m.batch = batch_map;
    m.map_fn = fn;
    m.ctx = ctx;
    m.in = in;
    m.out = out;
    m.in_stride = in_stride;
    m.out_stride = out_stride;
    return map_run_call(&m, rep, NULL);
}

int weft_for(weft_runtime *rt, size_t begin, size_t end, weft_for_fn fn,
             void *ctx, const weft_map_opts *opts, weft_map_report *rep)
{
    map_run m = {0};
    if (!rt || !fn)
        return -EINVAL;
    int rc = index_init(&m, rt, begin, end, opts, true);
    if (rc)
        return rc;
    m.batch = batch_for;
    m.for_fn = fn;
    m.ctx = ctx;
    return map_run_call(&m, rep, NULL);
}

int weft_for_range(weft_runtime *rt, size_t begin, size_t end,
                   weft_range_fn fn, void *ctx, const weft_map_opts *opts,
                   weft_map_report *rep)
{
    map_run m = {0};
    if (!rt || !fn)
        return -EINVAL;
    int rc = index_init(&m, rt, begin, end, opts, false);
    if (rc)
        return rc;
    m.batch = batch_range;
    m.range_fn = fn;
    m.ctx = ctx;
    return map_run_call(&m, rep, NULL);
}

int weft_map_reduce(weft_runtime *rt, size_t begin, size_t end,
                    const weft_reducer *r, void *ctx, void *result,
                    const weft_map_opts *opts, weft_map_report *rep)
{
    map_run m = {0};
    if (!rt || !r || !r->size || !r->init || !r->body || !r->combine ||
        !result)
        return -EINVAL;
    int rc = index_init(&m, rt, begin, end, opts, false);
    if (rc)
        return rc;
    m.batch = batch_reduce;
    m.red = r;
    m.ctx = ctx;
    return map_run_call(&m, rep, result);
}
