/* The fork-join workloads on weft, written only against <weft.h>.
 *
 * Built three times from this file: fj-weft with the head-passing form
 * (weft_spawn_at / weft_sync_at: the head travels in the recursion's
 * arguments and the compiler sees the child's function at the sync),
 * fj-weft-generic with weft_spawn and weft_sync (the list in a
 * thread-local; most children run at their spawn, a direct call, and the
 * ones kept on the list are called through the frame at the sync) and
 * fj-weft-syncfn with weft_spawn and weft_sync_fn (now the same code as
 * weft_sync: kept so that old tables stay comparable). Everything else is the same code: in
 * the generic builds the head argument is carried along unused.
 *
 * Frames are structs on the spawning task's stack whose first member is
 * the weft_task, so a task function recovers its frame with a cast. */
#include "bench.h"
#include "bench_weft.h"
#include "kernels.h"
#include "uts.h"

#include <weft.h>

#define NOINLINE __attribute__((noinline))
#define ALWAYS_INLINE __attribute__((always_inline))

#if defined(BENCH_WEFT_GENERIC) || defined(BENCH_WEFT_SYNCFN)
/* the generic forms carry the head along unused */
static inline weft_head spawn_generic(weft_head h, weft_task *t,
                                      weft_task_fn fn)
{
    weft_spawn(t, fn);
    return h;
}
static inline weft_head sync_generic(weft_head h, weft_task *t,
                                     weft_task_fn fn)
{
#ifdef BENCH_WEFT_GENERIC
    (void)fn;
    weft_sync(t);
#else
    weft_sync_fn(t, fn);
#endif
    return h;
}
#define SPAWN(h, t, fn) spawn_generic((h), (t), (fn))
#define SYNC(h, t, fn) sync_generic((h), (t), (fn))
#endif

#if defined(BENCH_WEFT_GENERIC)
#define IMPL "weft-generic"
#define FIB_GENERIC
#elif defined(BENCH_WEFT_SYNCFN)
#define IMPL "weft-syncfn"
#define FIB_SYNC_FN
#else
#define IMPL "weft"
#define SPAWN(h, t, fn) weft_spawn_at((h), (t), (fn))
#define SYNC(h, t, fn) weft_sync_at((h), (t), (fn))
#endif

#include "fib_weft.h" /* ---- fib */

/* ---- nqueens: one child per queen that fits in the next row. */

struct nq_frame {
    weft_task task;
    int n, row;
    long r;
    char board[NQ_MAX];
};

static long nqueens(weft_head h, int n, int row, const char *board);

static void nq_task(weft_task *t)
{
    struct nq_frame *f = (struct nq_frame *)t;
    f->r = nqueens(weft_head_of(t), f->n, f->row, f->board);
}

static long nqueens(weft_head h, int n, int row, const char *board)
{
    if (row == n)
        return 1;
    struct nq_frame kids[NQ_MAX];
    int k = 0;
    for (int col = 0; col < n; col++) {
        if (!nq_ok(board, row, col))
            continue;
        struct nq_frame *c = &kids[k++];
        memcpy(c->board, board, (size_t)row);
        c->board[row] = (char)col;
        c->n = n;
        c->row = row + 1;
        h = SPAWN(h, &c->task, nq_task);
    }
    long s = 0;
    while (k-- > 0) { /* syncs in reverse order of the spawns */
        h = SYNC(h, &kids[k].task, nq_task);
        s += kids[k].r;
    }
    return s;
}

/* ---- UTS: one child task per tree node. A node hashes its children's
 * states as it spawns them (uts.h, "Traversal"); a child task gets its
 * state ready made. */

struct uts_frame {
    weft_task task;
    uint64_t s;
    int depth, max_depth;
    uts_count r;
};

static uts_count uts_geo(weft_head h, uint64_t s, int depth, int max_depth);
static uts_count uts_bin(weft_head h, uint64_t s, int nc);

static void geo_task(weft_task *t)
{
    struct uts_frame *f = (struct uts_frame *)t;
    f->r = uts_geo(weft_head_of(t), f->s, f->depth, f->max_depth);
}

/* A binomial node needs only its state: its frame is the task header
 * and one word, which holds the state until the child runs and its count
 * after. */
struct bin_frame {
    weft_task task;
    union { uint64_t s; uts_count r; } v;
};

static void bin_task(weft_task *t)
{
    struct bin_frame *f = (struct bin_frame *)t;
    uint64_t s = f->v.s;
    f->v.r = uts_bin(weft_head_of(t), s, uts_bin_children(s));
}

/* Spawn the nc children of node s (frames in kids[]) and sum their counts
 * into the node's own. */
static inline ALWAYS_INLINE uts_count uts_fork(
    weft_head h, struct uts_frame *kids, int nc, uint64_t s, int depth,
    int max_depth, weft_task_fn fn)
{
    for (int i = 0; i < nc; i++) {
        kids[i].s = uts_child(s, i);
        kids[i].depth = depth + 1;
        kids[i].max_depth = max_depth;
    }
    for (int i = 0; i < nc; i++)
        h = SPAWN(h, &kids[i].task, fn);
    uts_count count = 1;
    for (int i = nc - 1; i >= 0; i--) {
        h = SYNC(h, &kids[i].task, fn);
        count += kids[i].r;
    }
    return count;
}

/* An inner node's expansion, out of line: that keeps the task functions
 * small (a leaf test and this call) and free of the frames' array, so a
 * sync inlines them and a leaf child costs a compare, not a call that
 * saves every register. */
static NOINLINE uts_count geo_fork(weft_head h, uint64_t s, int nc,
                                   int depth, int max_depth)
{
    struct uts_frame kids[nc];
    return uts_fork(h, kids, nc, s, depth, max_depth, geo_task);
}

static NOINLINE uts_count bin_fork(weft_head h, uint64_t s, int nc)
{
    struct bin_frame kids[nc];
    for (int i = 0; i < nc; i++)
        kids[i].v.s = uts_child(s, i);
    for (int i = 0; i < nc; i++)
        h = SPAWN(h, &kids[i].task, bin_task);
    uts_count count = 1;
    for (int i = nc - 1; i >= 0; i--) {
        h = SYNC(h, &kids[i].task, bin_task);
        count += kids[i].v.r;
    }
    return count;
}

static uts_count uts_geo(weft_head h, uint64_t s, int depth, int max_depth)
{
    int nc = uts_geo_children(s, depth, max_depth);
    return nc == 0 ? 1 : geo_fork(h, s, nc, depth, max_depth);
}

/* The node with state s has nc children (the root b0, the others
 * uts_bin_children()). */
static uts_count uts_bin(weft_head h, uint64_t s, int nc)
{
    return nc == 0 ? 1 : bin_fork(h, s, nc);
}

/* ---- skew: split the range in halves down to SKEW_GRAIN iterations. */

struct skew_frame {
    weft_task task;
    long lo, hi, n;
    uint64_t r;
};

static uint64_t skew(weft_head h, long lo, long hi, long n);

static void skew_task(weft_task *t)
{
    struct skew_frame *f = (struct skew_frame *)t;
    f->r = skew(weft_head_of(t), f->lo, f->hi, f->n);
}

static uint64_t skew(weft_head h, long lo, long hi, long n)
{
    if (hi - lo <= SKEW_GRAIN)
        return skew_range(lo, hi, n);
    struct skew_frame a;
    a.lo = lo;
    a.hi = lo + (hi - lo) / 2;
    a.n = n;
    weft_head h2 = SPAWN(h, &a.task, skew_task);
    uint64_t b = skew(h2, a.hi, hi, n);
    h2 = SYNC(h2, &a.task, skew_task);
    return a.r + b;
}

/* ---- the driver: each run is one root task submitted with weft_run. */

static weft_runtime *rt;

struct job {
    long size;
    bench_check result;
};

static int fib_root(void *arg)
{
    struct job *j = arg;
    j->result = (bench_check)fib((int)j->size);
    return 0;
}

static int nq_root(void *arg)
{
    struct job *j = arg;
    char board[NQ_MAX];
    j->result = j->size > NQ_MAX ? 0 : (bench_check)nqueens(
        weft_head_now(), (int)j->size, 0, board);
    return 0;
}

static int geo_root(void *arg)
{
    struct job *j = arg;
    j->result =
        uts_geo(weft_head_now(), uts_root(UTS_GEO_SEED), 0, (int)j->size);
    return 0;
}

static int bin_root(void *arg)
{
    struct job *j = arg;
    j->result = uts_bin(weft_head_now(), uts_root(UTS_BIN_SEED), (int)j->size);
    return 0;
}

static int skew_root(void *arg)
{
    struct job *j = arg;
    j->result = skew(weft_head_now(), 0, j->size, j->size);
    return 0;
}

static bench_check run_root(int (*root)(void *), long size)
{
    struct job j = { size, 0 };
    int rc = weft_run(rt, root, &j);
    if (rc != 0) {
        fprintf(stderr, "fj-" IMPL ": weft_run failed: %s\n", strerror(-rc));
        exit(1);
    }
    return j.result;
}

static bench_check run_fib(long n) { return run_root(fib_root, n); }
static bench_check run_nqueens(long n) { return run_root(nq_root, n); }
static bench_check run_uts_geo(long d) { return run_root(geo_root, d); }
static bench_check run_uts_bin(long b0) { return run_root(bin_root, b0); }
static bench_check run_skew(long n) { return run_root(skew_root, n); }

static int setup(int workers)
{
    weft_config cfg = weft_config_default();
    cfg.workers = workers;
    return bench_weft_create("fj-" IMPL, &rt, &cfg);
}

/* -v: what each worker did over all runs, to explain a surprising time. */
static void print_stats(void)
{
    weft_worker_stats st[64];
    int n = weft_stats_workers(rt, st, 64);
    for (int i = 0; i < n; i++)
        fprintf(stderr,
                "STATS worker=%d cpu=%d published=%llu steals=%llu/%llu "
                "parks=%llu busy_ms=%.1f spin_ms=%.1f parked_ms=%.1f "
                "misuses=%llu\n",
                st[i].worker, st[i].cpu, (unsigned long long)st[i].published,
                (unsigned long long)st[i].steals_won,
                (unsigned long long)st[i].steals_tried,
                (unsigned long long)st[i].parks, st[i].busy_ns / 1e6,
                st[i].spin_ns / 1e6, st[i].parked_ns / 1e6,
                (unsigned long long)st[i].misuses);
}

static void teardown(int verbose)
{
    if (verbose)
        print_stats();
    weft_runtime_destroy(&rt);
}

static const bench_workload workloads[] = {
    { "fib", run_fib },         { "nqueens", run_nqueens },
    { "uts-geo", run_uts_geo }, { "uts-bin", run_uts_bin },
    { "skew", run_skew },
};

int main(int argc, char **argv)
{
    static const bench_impl impl = { IMPL, 0, setup, teardown };
    return bench_main(argc, argv, &impl, workloads,
                      (int)(sizeof workloads / sizeof workloads[0]));
}
