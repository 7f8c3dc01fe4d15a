/* The map workloads on OpenMP worksharing loops, as a gcc user writes them:
 * `#pragma omp parallel for` over the items with a reduction, one per-item
 * loop body, the schedule chosen at build time.
 *
 * Built three times from this file, with BENCH_OMP_SCHED static, dynamic
 * and guided (map-omp-static, -dynamic, -guided), each with its default
 * chunk: static cuts [0, n) into one block per thread; dynamic hands out
 * one item at a time; guided hands out blocks that shrink from n / threads
 * down to one item. (OpenMP expands macros after `#pragma omp`, so the
 * schedule is a macro.) The team is made once, by an empty region in
 * setup; libgomp keeps its threads between regions. */
#include "map_work.h"

#include <omp.h>

#ifndef BENCH_OMP_SCHED
#define BENCH_OMP_SCHED static
#endif
#define STR_(x) #x
#define STR(x) STR_(x)
#define IMPL "omp-" STR(BENCH_OMP_SCHED)

static bench_check map_uniform(long n, uint32_t steps)
{
    uint64_t s = 0;
#pragma omp parallel for schedule(BENCH_OMP_SCHED) reduction(+ : s)
    for (long i = 0; i < n; i++)
        s += mk_spin((uint64_t)i, steps);
    return s;
}

static bench_check map_pareto(long n)
{
    uint64_t s = 0;
#pragma omp parallel for schedule(BENCH_OMP_SCHED) reduction(+ : s)
    for (long i = 0; i < n; i++)
        s += mk_pareto_item((uint64_t)i);
    return s;
}

static bench_check map_pi(long n)
{
    uint64_t hits = 0;
#pragma omp parallel for schedule(BENCH_OMP_SCHED) reduction(+ : hits)
    for (long i = 0; i < n; i++)
        hits += mk_pi_hit((uint64_t)i);
    return hits;
}

/* A table per thread, merged under a critical section at the end. */
static bench_check map_wordcount(long n)
{
    wc_table *total = wc_new();
    int lost = total == NULL;
#pragma omp parallel reduction(+ : lost)
    {
        wc_table *t = wc_new();
        lost += t == NULL;
#pragma omp for schedule(BENCH_OMP_SCHED) nowait
        for (long i = 0; i < n; i++)
            if (t != NULL && wc_count_lines(t, &map_lines, (size_t)i,
                                            (size_t)i + 1) != 0)
                lost++;
#pragma omp critical
        lost += t != NULL && total != NULL && wc_absorb(total, t) != 0;
        wc_free(t);
    }
    if (lost > 0)
        map_oom("wordcount");
    uint64_t answer = wc_answer(total);
    wc_free(total);
    return answer;
}

/* The accumulator as an OpenMP user-defined reduction (private copies
 * start zeroed, as objects of static storage do). */
#pragma omp declare reduction(json : json_acc : \
    json_combine(&omp_out, &omp_in))

static bench_check map_json(long n)
{
    json_acc a = { 0, 0, 0 };
#pragma omp parallel for schedule(BENCH_OMP_SCHED) reduction(json : a)
    for (long i = 0; i < n; i++)
        json_lines(&a, &map_lines, (size_t)i, (size_t)i + 1);
    return json_answer(&a);
}

static bench_check map_join(long n)
{
    join_result res[JOIN_PARTS];
    (void)n; /* the tables were made for it */
#pragma omp parallel for schedule(BENCH_OMP_SCHED)
    for (long c = 0; c < JOIN_CHUNKS; c++)
        join_hist((size_t)c);
    join_offsets();
#pragma omp parallel for schedule(BENCH_OMP_SCHED)
    for (long c = 0; c < JOIN_CHUNKS; c++)
        join_scatter((size_t)c);
#pragma omp parallel for schedule(BENCH_OMP_SCHED)
    for (long p = 0; p < JOIN_PARTS; p++)
        res[p] = join_partition((size_t)p);
    return join_answer(res);
}

static int setup(int workers)
{
    omp_set_dynamic(0);
    omp_set_num_threads(workers);
#pragma omp parallel
    {
        /* start the team now, not inside the first timed run */
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const bench_impl impl = { IMPL, 0, setup, NULL };
    return map_main(argc, argv, &impl, NULL, NULL, 0);
}
