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
#include "map_work.h"
#include "weft_stats.h"

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

/* ---- pi: a reduction of a 64-bit count */

static int u64_init(void *acc, void *ctx)
{
    (void)ctx;
    *(uint64_t *)acc = 0;
    return 0;
}

static int u64_combine(void *into, const void *from, void *ctx)
{
    (void)ctx;
    *(uint64_t *)into += *(const uint64_t *)from;
    return 0;
}

static int pi_body(void *acc, size_t lo, size_t hi, void *ctx)
{
    (void)ctx;
    *(uint64_t *)acc += mk_pi_range(lo, hi);
    return 0;
}

static bench_check map_pi(long n)
{
    static const weft_reducer r = { sizeof(uint64_t), u64_init, pi_body,
                                    u64_combine, NULL };
    weft_map_opts o = map_opts();
    uint64_t hits;
    check(weft_map_reduce(rt, 0, (size_t)n, &r, NULL, &hits, &o, &report),
          "weft_map_reduce");
    return hits;
}

/* ---- wordcount: the accumulator is a pointer to the worker's table;
 * fini frees the workers' tables once merged. */

static int wc_init(void *acc, void *ctx)
{
    (void)ctx;
    *(wc_table **)acc = wc_new();
    return *(wc_table **)acc ? 0 : -ENOMEM;
}

static void wc_fini(void *acc, void *ctx)
{
    (void)ctx;
    wc_free(*(wc_table **)acc);
}

static int wc_body(void *acc, size_t lo, size_t hi, void *ctx)
{
    wc_table *t = *(wc_table **)acc;
    (void)ctx;
    return t != NULL && wc_count_lines(t, &map_lines, lo, hi) == 0
               ? 0 : -ENOMEM;
}

static int wc_combine(void *into, const void *from, void *ctx)
{
    (void)ctx;
    return wc_merge(*(wc_table **)into, *(wc_table *const *)from) ? -ENOMEM
                                                                  : 0;
}

static bench_check map_wordcount(long n)
{
    static const weft_reducer r = { sizeof(wc_table *), wc_init, wc_body,
                                    wc_combine, wc_fini };
    weft_map_opts o = map_opts();
    wc_table *t = NULL;
    check(weft_map_reduce(rt, 0, (size_t)n, &r, NULL, &t, &o, &report),
          "weft_map_reduce");
    uint64_t answer = wc_answer(t);
    wc_free(t);
    return answer;
}

/* ---- json: sums per worker */

static int json_init(void *acc, void *ctx)
{
    (void)ctx;
    memset(acc, 0, sizeof(json_acc));
    return 0;
}

static int json_body(void *acc, size_t lo, size_t hi, void *ctx)
{
    (void)ctx;
    json_lines((json_acc *)acc, &map_lines, lo, hi);
    return 0;
}

static int json_merge(void *into, const void *from, void *ctx)
{
    (void)ctx;
    json_combine((json_acc *)into, (const json_acc *)from);
    return 0;
}

static bench_check map_json(long n)
{
    static const weft_reducer r = { sizeof(json_acc), json_init, json_body,
                                    json_merge, NULL };
    weft_map_opts o = map_opts();
    json_acc a;
    check(weft_map_reduce(rt, 0, (size_t)n, &r, NULL, &a, &o, &report),
          "weft_map_reduce");
    return json_answer(&a);
}

/* ---- join: chunks with weft_for_range, partitions with weft_map */

static int hist_range(size_t lo, size_t hi, void *ctx)
{
    (void)ctx;
    for (size_t c = lo; c < hi; c++)
        join_hist(c);
    return 0;
}

static int scatter_range(size_t lo, size_t hi, void *ctx)
{
    (void)ctx;
    for (size_t c = lo; c < hi; c++)
        join_scatter(c);
    return 0;
}

static int partition_item(size_t p, const void *in, void *out, void *ctx)
{
    (void)in;
    (void)ctx;
    *(join_result *)out = join_partition(p);
    return 0;
}

static bench_check map_join(long n)
{
    weft_map_opts o = map_opts();
    join_result res[JOIN_PARTS];
    (void)n; /* the tables were made for it */
    check(weft_for_range(rt, 0, JOIN_CHUNKS, hist_range, NULL, &o, &report),
          "weft_for_range");
    join_offsets();
    check(weft_for_range(rt, 0, JOIN_CHUNKS, scatter_range, NULL, &o,
                         &report), "weft_for_range");
    check(weft_map(rt, JOIN_PARTS, NULL, 0, res, sizeof res[0],
                   partition_item, NULL, &o, &report), "weft_map");
    return join_answer(res);
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
    int rc = weft_runtime_create(&rt, &cfg);
    if (rc != 0)
        return rc;
    nslots = weft_runtime_workers(rt);
    if (nslots != workers) /* WEFT_WORKERS overrides cfg.workers */
        fprintf(stderr, "map-" IMPL ": asked for %d workers, runtime has %d "
                        "(WEFT_WORKERS set?)\n", workers, nslots);
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
