/* The four seed workloads of map_seeds.h on weft's parallel map, as a
 * weft user writes them: pi, word count and json as weft_map_reduce with
 * an accumulator per worker (a word count table per worker, merged at the
 * end), the join as weft_for_range over chunks of rows, then weft_map
 * over the partitions. Shared by bench/map/map_weft.c and
 * tools/weft-scale; <weft.h> only.
 *
 * Each mw_* call returns what the weft call returned (0, or a negative
 * errno) and leaves the answer in *out on success. The text workloads take
 * their lines as an argument: line i >= l->n reads line i mod l->n, so
 * that weft-scale can grow a problem beyond the lines it generated (the
 * benchmarks never ask for more lines than they made). */
#ifndef BENCH_MAP_SEEDS_WEFT_H
#define BENCH_MAP_SEEDS_WEFT_H

#include "map_seeds.h"

#include <errno.h>

#include <weft.h>

/* ---- lines read around the end of the buffer */

typedef int (*mw_piece_fn)(void *acc, const mg_lines *l, size_t lo,
                           size_t hi);

/* fn over the pieces of [lo, hi) that are contiguous in l's buffer. */
static inline int mw_lines(void *acc, const mg_lines *l, size_t lo,
                           size_t hi, mw_piece_fn fn)
{
    if (l->n == 0)
        return lo < hi ? -EINVAL : 0;
    while (lo < hi) {
        size_t base = lo - lo % l->n;
        size_t end = hi - base < l->n ? hi : base + l->n;
        int rc = fn(acc, l, lo - base, end - base);
        if (rc != 0)
            return rc;
        lo = end;
    }
    return 0;
}

/* ---- pi: a reduction of a 64-bit count */

static int mw_u64_init(void *acc, void *ctx)
{
    (void)ctx;
    *(uint64_t *)acc = 0;
    return 0;
}

static int mw_u64_combine(void *into, const void *from, void *ctx)
{
    (void)ctx;
    *(uint64_t *)into += *(const uint64_t *)from;
    return 0;
}

static int mw_pi_body(void *acc, size_t lo, size_t hi, void *ctx)
{
    (void)ctx;
    *(uint64_t *)acc += mk_pi_range(lo, hi);
    return 0;
}

/* Points [0, n) of Monte Carlo pi: *hits inside the quarter circle. */
static inline int mw_pi(weft_runtime *rt, size_t n, const weft_map_opts *o,
                        weft_map_report *rep, uint64_t *hits)
{
    static const weft_reducer r = { sizeof(uint64_t), mw_u64_init,
                                    mw_pi_body, mw_u64_combine, NULL };
    return weft_map_reduce(rt, 0, n, &r, NULL, hits, o, rep);
}

/* ---- wordcount: the accumulator is a pointer to the worker's table;
 * fini frees the workers' tables once merged. */

static int mw_wc_init(void *acc, void *ctx)
{
    (void)ctx;
    *(wc_table **)acc = wc_new();
    return *(wc_table **)acc ? 0 : -ENOMEM;
}

static void mw_wc_fini(void *acc, void *ctx)
{
    (void)ctx;
    wc_free(*(wc_table **)acc);
}

static int mw_wc_piece(void *acc, const mg_lines *l, size_t lo, size_t hi)
{
    return wc_count_lines((wc_table *)acc, l, lo, hi) == 0 ? 0 : -ENOMEM;
}

static int mw_wc_body(void *acc, size_t lo, size_t hi, void *ctx)
{
    wc_table *t = *(wc_table **)acc;
    return t != NULL ? mw_lines(t, (const mg_lines *)ctx, lo, hi,
                                mw_wc_piece)
                     : -ENOMEM;
}

/* The accumulator holds a pointer: the worker's table itself is not
 * const, and wc_absorb() may leave it empty (fini frees it either way). */
static int mw_wc_combine(void *into, const void *from, void *ctx)
{
    (void)ctx;
    return wc_absorb(*(wc_table **)into, *(wc_table *const *)from)
               ? -ENOMEM : 0;
}

/* Word count of lines [0, n) of l: *answer is wc_answer() of the merged
 * table. */
static inline int mw_wordcount(weft_runtime *rt, const mg_lines *l,
                               size_t n, const weft_map_opts *o,
                               weft_map_report *rep, uint64_t *answer)
{
    static const weft_reducer r = { sizeof(wc_table *), mw_wc_init,
                                    mw_wc_body, mw_wc_combine, mw_wc_fini };
    wc_table *t = NULL; /* made by init, even when the map fails */
    int rc = weft_map_reduce(rt, 0, n, &r, (void *)l, &t, o, rep);
    if (rc == 0)
        *answer = wc_answer(t);
    wc_free(t);
    return rc;
}

/* ---- json: sums per worker */

static int mw_json_init(void *acc, void *ctx)
{
    (void)ctx;
    memset(acc, 0, sizeof(json_acc));
    return 0;
}

static int mw_json_piece(void *acc, const mg_lines *l, size_t lo, size_t hi)
{
    json_lines((json_acc *)acc, l, lo, hi);
    return 0;
}

static int mw_json_body(void *acc, size_t lo, size_t hi, void *ctx)
{
    return mw_lines(acc, (const mg_lines *)ctx, lo, hi, mw_json_piece);
}

static int mw_json_merge(void *into, const void *from, void *ctx)
{
    (void)ctx;
    json_combine((json_acc *)into, (const json_acc *)from);
    return 0;
}

/* The records [0, n) of l, summed into *acc (json_answer() reads it). */
static inline int mw_json(weft_runtime *rt, const mg_lines *l, size_t n,
                          const weft_map_opts *o, weft_map_report *rep,
                          json_acc *acc)
{
    static const weft_reducer r = { sizeof(json_acc), mw_json_init,
                                    mw_json_body, mw_json_merge, NULL };
    return weft_map_reduce(rt, 0, n, &r, (void *)l, acc, o, rep);
}

/* ---- join: chunks with weft_for_range, partitions with weft_map */

static int mw_hist_range(size_t lo, size_t hi, void *ctx)
{
    (void)ctx;
    for (size_t c = lo; c < hi; c++)
        join_hist(c);
    return 0;
}

static int mw_scatter_range(size_t lo, size_t hi, void *ctx)
{
    (void)ctx;
    for (size_t c = lo; c < hi; c++)
        join_scatter(c);
    return 0;
}

static int mw_partition_item(size_t p, const void *in, void *out, void *ctx)
{
    (void)in;
    (void)ctx;
    *(join_result *)out = join_partition(p);
    return 0;
}

/* The join of the tables join_prepare() made: *answer is join_answer().
 * rep, when not NULL, reports the last of the three map calls. */
static inline int mw_join(weft_runtime *rt, const weft_map_opts *o,
                          weft_map_report *rep, uint64_t *answer)
{
    join_result res[JOIN_PARTS];
    int rc = weft_for_range(rt, 0, JOIN_CHUNKS, mw_hist_range, NULL, o, rep);
    if (rc != 0)
        return rc;
    join_offsets(); /* small and serial: on the calling thread */
    rc = weft_for_range(rt, 0, JOIN_CHUNKS, mw_scatter_range, NULL, o, rep);
    if (rc == 0)
        rc = weft_map(rt, JOIN_PARTS, NULL, 0, res, sizeof res[0],
                      mw_partition_item, NULL, o, rep);
    if (rc == 0)
        *answer = join_answer(res);
    return rc;
}

#endif
