/* The map workloads on weft's parallel map (weft/map.h), as a weft user
 * writes them.
 *
 * Built twice from this file. map-weft runs the uniform and skewed items
 * with weft_for_range (one call per batch; the loop over the batch is
 * ours and inlined); map-weft-for (BENCH_WEFT_PER_ITEM) with weft_for, one
 * indirect call per item, so the table shows what the range form buys.
 * Both sum the items' results into a per-worker slot (weft_for has no
 * per-worker accumulator of its own). The seed workloads are the same in
 * both: weft_map_reduce for pi, wordcount (a hash table per worker) and
 * json, and for the join weft_for_range over chunks of rows, then
 * weft_map over the partitions.
 *
 * -b BATCH fixes the items per batch of every map call (0, the default:
 * adaptive), so run.py can sweep fixed batches against the adaptive one.
 * Each RESULT line adds what the run's last map call reported: batches
 * run, ranges split off, and the smallest and largest batch. */
#include "map_work.h" /* first: bench.h sets the feature macros */
#include "bench_weft.h"
#include "map_seeds_weft.h"

#include <weft.h>

#ifdef BENCH_WEFT_PER_ITEM
#define IMPL "weft-for"
#else
#define IMPL "weft"
#endif

static weft_runtime *rt;
static size_t batch;           /* -b; 0 = adaptive */
static weft_map_report report; /* of the last map call */

/* A partial sum per worker, a cache line each, so that the workers never
 * write the same line. */
static struct slot {
    uint64_t sum;
    char pad[56];
} *slots;
static int nslots;

static weft_map_opts map_opts(void)
{
    weft_map_opts o = weft_map_opts_default();
    o.batch = batch;
    o.flags = WEFT_MAP_QUIET; /* no progress bar inside a benchmark */
    return o;
}

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "map-" IMPL ": %s failed: %s\n", what, strerror(-rc));
        exit(1);
    }
}

/* ---- uniform and skewed items: sum over [0, n) into the slots */

static inline uint64_t *my_slot(void)
{
    return &slots[weft_worker_index()].sum;
}

static int uniform_range(size_t lo, size_t hi, void *steps)
{
    *my_slot() += mk_uniform_range(lo, hi, *(const uint32_t *)steps);
    return 0;
}

static int uniform_item(size_t i, void *steps)
{
    *my_slot() += mk_spin(i, *(const uint32_t *)steps);
    return 0;
}

static int pareto_range(size_t lo, size_t hi, void *ctx)
{
    (void)ctx;
    *my_slot() += mk_pareto_range(lo, hi);
    return 0;
}

static int pareto_item(size_t i, void *ctx)
{
    (void)ctx;
    *my_slot() += mk_pareto_item(i);
    return 0;
}

/* Run [0, n) in the range or the per-item form; the slots' total. */
static uint64_t slot_sum(long n, weft_range_fn range, weft_for_fn item,
                         void *ctx)
{
    weft_map_opts o = map_opts();
    for (int w = 0; w < nslots; w++)
        slots[w].sum = 0;
#ifdef BENCH_WEFT_PER_ITEM
    (void)range;
    check(weft_for(rt, 0, (size_t)n, item, ctx, &o, &report), "weft_for");
#else
    (void)item;
    check(weft_for_range(rt, 0, (size_t)n, range, ctx, &o, &report),
          "weft_for_range");
#endif
    uint64_t s = 0;
    for (int w = 0; w < nslots; w++)
        s += slots[w].sum;
    return s;
}

static bench_check map_uniform(long n, uint32_t steps)
{
    return slot_sum(n, uniform_range, uniform_item, &steps);
}

static bench_check map_pareto(long n)
{
    return slot_sum(n, pareto_range, pareto_item, NULL);
}

/* ---- the seed workloads (map_seeds_weft.h) */

static bench_check map_pi(long n)
{
    weft_map_opts o = map_opts();
    uint64_t hits;
    check(mw_pi(rt, (size_t)n, &o, &report, &hits), "weft_map_reduce");
    return hits;
}

static bench_check map_wordcount(long n)
{
    weft_map_opts o = map_opts();
    uint64_t answer;
    check(mw_wordcount(rt, &map_lines, (size_t)n, &o, &report, &answer),
          "weft_map_reduce");
    return answer;
}

static bench_check map_json(long n)
{
    weft_map_opts o = map_opts();
    json_acc a;
    check(mw_json(rt, &map_lines, (size_t)n, &o, &report, &a),
          "weft_map_reduce");
    return json_answer(&a);
}

static bench_check map_join(long n)
{
    weft_map_opts o = map_opts();
    uint64_t answer;
    (void)n; /* the tables were made for it */
    check(mw_join(rt, &o, &report, &answer), "the join");
    return answer;
}

/* ---- the program */

static const char *extra(void)
{
    static char buf[160];
    snprintf(buf, sizeof buf, "batches=%zu splits=%zu batch_mean=%zu "
             "batch_max=%zu", report.batches, report.splits,
             report.batch_mean, report.batch_max);
    return buf;
}

static int set_batch(const char *value)
{
    long b;
    if (bench_parse_long(value, 0, &b) != 0)
        return -1;
    batch = (size_t)b;
    return 0;
}

static int setup(int workers)
{
    weft_config cfg = weft_config_default();
    cfg.workers = workers;
    int rc = bench_weft_create("map-" IMPL, &rt, &cfg);
    if (rc != 0)
        return rc;
    nslots = weft_runtime_workers(rt);
    slots = (struct slot *)aligned_alloc(64, (size_t)nslots * sizeof *slots);
    return slots != NULL ? 0 : -ENOMEM;
}

static void teardown(int verbose)
{
    if (verbose)
        bench_weft_print_stats(rt);
    weft_runtime_destroy(&rt);
    free(slots);
}

int main(int argc, char **argv)
{
    static const bench_impl impl = { IMPL, 0, setup, teardown };
    static const bench_option opts[] = { { 'b', "BATCH", set_batch } };
    return map_main(argc, argv, &impl, extra, opts, 1);
}
