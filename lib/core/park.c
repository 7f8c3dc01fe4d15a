/* Parking idle workers on a futex, and waking exactly one when work
 * appears.
 *
 * Protocol (a Dekker handshake, every step seq_cst):
 *   worker going to sleep        publisher of new work
 *   seq = my.park_seq            make the work visible (seq_cst RMW/store)
 *   push me on node's idle stack if searching == 0 && sleepers > 0:
 *   node.sleepers++                  pick the nearest node with sleepers,
 *   sleepers++                       pop its most recent sleeper w:
 *   if work visible: undo, run       w.park_seq++, futex_wake(w)
 *   futex_wait(my.park_seq, seq)
 * Either the publisher sees the sleeper and wakes it, or the sleeper's
 * re-check sees the work; futex_wait returns at once if park_seq moved
 * after the sleeper read it. A wake that pops a worker which saw the
 * work and stayed awake is not lost: that worker is searching. A worker
 * that is searching (spinning on steals) will find the work itself, so
 * publishers skip the wake-up then; when the last searcher finds work
 * and more is left, it hands the search on (wakes one), so a burst of
 * work fans out over the sleepers one by one. Sleepers are listed on
 * their NUMA node's idle stack and publishers wake their own node first,
 * so that the thief that wakes is one that steals from nearby. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

uint64_t weft__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void weft__futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    weft__before_wait();
    /* EINTR and EAGAIN are normal: callers re-check their condition. */
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL,
            NULL, 0);
}

/* Like weft__futex_wait, but gives up at deadline_ns (CLOCK_MONOTONIC;
 * 0 = never). Returns -ETIMEDOUT once the deadline has passed, else 0.
 * shared: addr is in memory other processes map (a private futex is
 * only woken from its own process). */
int weft__futex_wait_until_in(_Atomic uint32_t *addr, uint32_t val,
                              uint64_t deadline_ns, bool shared)
{
    if (!deadline_ns && !shared) {
        weft__futex_wait(addr, val); /* which runs the wait hook */
        return 0;
    }
    weft__before_wait();
    if (deadline_ns && weft__now_ns() >= deadline_ns)
        return -ETIMEDOUT;
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u),
                          (long)(deadline_ns % 1000000000u)};
    /* BITSET takes an absolute CLOCK_MONOTONIC deadline, so retries after
     * EINTR do not stretch the wait */
    syscall(SYS_futex, (uint32_t *)addr,
            shared ? FUTEX_WAIT_BITSET : FUTEX_WAIT_BITSET_PRIVATE, val,
            deadline_ns ? &ts : NULL, NULL, FUTEX_BITSET_MATCH_ANY);
    return 0;
}

int weft__futex_wait_until(_Atomic uint32_t *addr, uint32_t val,
                           uint64_t deadline_ns)
{
    return weft__futex_wait_until_in(addr, val, deadline_ns, false);
}

void weft__futex_wake_in(_Atomic uint32_t *addr, int n, bool shared)
{
    syscall(SYS_futex, (uint32_t *)addr,
            shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

void weft__futex_wake(_Atomic uint32_t *addr, int n)
{
    weft__futex_wake_in(addr, n, false);
}

/* Asymmetric barriers across processes (membarrier(2)): whether this
 * process may take part, registered so that another's
 * weft__membarrier_global() covers its threads. */
bool weft__membarrier_register(void)
{
    long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (q < 0 || !(q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) ||
        !(q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
        return false;
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
                   0, 0) == 0;
}

/* A full memory barrier on every running thread of every registered
 * process (and this one): 0, or -errno. */
int weft__membarrier_global(void)
{
    return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0)
               ? -errno
               : 0;
}

/* Is there anything a sleeping worker of NUMA node `node` (-1: any) could
 * take? Reads every deque's ts, the injection count and the job queues
 * with seq_cst loads (the sleeper's half of the handshake). wake_at (may
 * be NULL): see weft__jobs_visible. */
bool weft__work_visible(weft_runtime *rt, int node, uint64_t *wake_at)
{
    if (wake_at)
        *wake_at = 0;
    if (weft__load_seqcst(&rt->inject_len) > 0)
        return true;
    for (int i = 0; i < rt->nworkers; i++) {
        uint64_t ts = weft__load_seqcst(&rt->workers[i]->ts);
        if (weft__ts_tail(ts) < weft__ts_split(ts))
            return true;
    }
    if (weft__load_seqcst(&rt->stopping) == 2)
        return true;
    return weft__jobs_visible(rt, node, wake_at);
}

/* Wake up to count parked workers of n, the most recent first. The
 * workers taken off the stack are remembered in a local batch, not
 * chained through their idle_next: a taken worker whose timed park ran
 * out may park again at once and rewrite its idle_next under the lock,
 * and a chain through it would then lead into the stack, so the rest of
 * the chain (off the stack, asleep) would never be woken. */
enum { WAKE_BATCH = 16 };

static void wake_node(weft__node *n, int count)
{
    while (count > 0) {
        weft__worker *batch[WAKE_BATCH];
        int k = 0;
        pthread_mutex_lock(&n->idle_lock);
        for (; k < WAKE_BATCH && count > 0 && n->idle_top; k++, count--) {
            weft__worker *w = n->idle_top;
            n->idle_top = w->idle_next;
            w->idle_listed = false;
            batch[k] = w;
        }
        pthread_mutex_unlock(&n->idle_lock);
        for (int i = 0; i < k; i++) {
            weft__add_seqcst(&batch[i]->park_seq, 1);
            weft__futex_wake(&batch[i]->park_seq, 1);
        }
        if (k < WAKE_BATCH)
            return; /* the stack is empty, or count is done */
    }
}

/* Called after new work was made visible with a seq_cst operation, by a
 * worker of NUMA node `node` (0 for outside threads). */
void weft__wake_for_work(weft_runtime *rt, int node)
{
    /* sleepers first: it changes only when a worker parks, while
     * searching changes every time one looks for work, so the common
     * "nobody sleeps" case reads a line that stays in our cache */
    if (weft__load_seqcst(&rt->sleepers) == 0 ||
        weft__load_seqcst(&rt->searching) != 0)
        return;
    for (int i = 0; i < rt->nnodes; i++) {
        weft__node *n = &rt->nodes[(node + i) % rt->nnodes];
        if (weft__load_seqcst(&n->sleepers) > 0) {
            wake_node(n, 1);
            return;
        }
    }
}

/* Work meant for one node (a job queued there): wake a sleeper of that
 * node unless one of its workers is already searching, even when workers
 * of other nodes search (they would take it only as a last resort). */
void weft__wake_on_node(weft_runtime *rt, int node)
{
    weft__node *n = &rt->nodes[node];
    if (weft__load_seqcst(&rt->sleepers) == 0)
        return; /* nobody to wake, anywhere */
    if (weft__load_seqcst(&n->sleepers) > 0 &&
        weft__load_seqcst(&n->searching) == 0)
        wake_node(n, 1);
    else
        weft__wake_for_work(rt, node);
}

void weft__wake_all(weft_runtime *rt)
{
    for (int i = 0; i < rt->nnodes; i++)
        wake_node(&rt->nodes[i], INT_MAX);
}

static void idle_push(weft__node *n, weft__worker *w)
{
    pthread_mutex_lock(&n->idle_lock);
    w->idle_next = n->idle_top;
    n->idle_top = w;
    w->idle_listed = true;
    pthread_mutex_unlock(&n->idle_lock);
}

/* Leave the idle stack if no waker took us off it. */
static void idle_remove(weft__node *n, weft__worker *w)
{
    pthread_mutex_lock(&n->idle_lock);
    if (w->idle_listed) {
        weft__worker **p = &n->idle_top;
        while (*p != w)
            p = &(*p)->idle_next;
        *p = w->idle_next;
        w->idle_listed = false;
    }
    pthread_mutex_unlock(&n->idle_lock);
}

void weft__park(weft_runtime *rt, weft__worker *w)
{
    weft__node *n = &rt->nodes[w->numa];
    uint32_t seq = weft__load_seqcst(&w->park_seq);
    /* listed before counted: a publisher that sees the count finds us
     * on the stack; node count before the global one, so that it also
     * sees which node to wake */
    idle_push(n, w);
    weft__add_seqcst(&n->sleepers, 1);
    weft__add_seqcst(&rt->sleepers, 1);
    uint64_t wake_at;
    if (!weft__work_visible(rt, w->numa, &wake_at)) {
        uint64_t t0 = weft__now_ns();
        weft__stat_add(&w->parks, 1);
        weft__store_relaxed(&w->parked_since, t0);
        /* until woken, or until a job queued for another node has waited
         * out its grace and becomes ours to take */
        weft__futex_wait_until(&w->park_seq, seq, wake_at);
        weft__store_relaxed(&w->parked_since, 0);
        weft__stat_add(&w->parked_ns, weft__now_ns() - t0);
    }
    weft__sub_seqcst(&rt->sleepers, 1);
    weft__sub_seqcst(&n->sleepers, 1);
    idle_remove(n, w);
}
