/* What every map program (map-IMPL, bench/map) shares besides the
 * kernels: the workloads' table, their inputs (made once per process
 * before the timed runs, bench_hooks.prepare) and main(). C11, also C++.
 *
 *   uniform-10ns .. uniform-100us   -n items of one fixed cost each
 *   pareto                          -n items of Pareto-distributed cost
 *   pi                              -n points of Monte Carlo pi
 *   wordcount                       -n lines of text
 *   json                            -n person records
 *   join                            R of -n rows joined with S of 4n
 *
 * A program defines the six map_* functions declared below: the same
 * workloads, scheduled its way. Every one returns the workload's answer,
 * which must be the same for all programs. */
#ifndef BENCH_MAP_WORK_H
#define BENCH_MAP_WORK_H

#include "bench.h"
#include "map_seeds.h"
#include "mapkern.h"

#include <errno.h>

static bench_check map_uniform(long n, uint32_t steps);
static bench_check map_pareto(long n);
static bench_check map_pi(long n);
static bench_check map_wordcount(long n);
static bench_check map_json(long n);
static bench_check map_join(long n);

/* wordcount: the text; json: the records. One line per item. */
static mg_lines map_lines;

/* The cost of a uniform item, set by map_prepare: a value known only at
 * run time, so that no program's compiler unrolls a constant chain that
 * another's cannot. */
static uint32_t map_steps;

static inline bench_check map_uniform_run(long n)
{
    return map_uniform(n, map_steps);
}

static const bench_workload map_workloads[] = {
    { "uniform-10ns", map_uniform_run },  { "uniform-100ns", map_uniform_run },
    { "uniform-1us", map_uniform_run },   { "uniform-100us", map_uniform_run },
    { "pareto", map_pareto },             { "pi", map_pi },
    { "wordcount", map_wordcount },       { "json", map_json },
    { "join", map_join },
};

/* Steps of a uniform workload's items, 0 for the others. */
static inline uint32_t map_uniform_steps(const char *workload)
{
    static const struct { const char *name; uint32_t steps; } u[] = {
        { "uniform-10ns", MK_STEPS_10NS }, { "uniform-100ns", MK_STEPS_100NS },
        { "uniform-1us", MK_STEPS_1US },   { "uniform-100us", MK_STEPS_100US },
    };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        if (strcmp(u[i].name, workload) == 0)
            return u[i].steps;
    return 0;
}

static inline int map_prepare(const char *workload, long size, int workers)
{
    (void)workers;
    if (size < 1)
        return -EINVAL;
    map_steps = map_uniform_steps(workload);
    if (strcmp(workload, "wordcount") == 0) {
        mg_vocab_init();
        return mg_lines_make(&map_lines, (size_t)size, mg_text_line) == 0
                   ? 0 : -ENOMEM;
    }
    if (strcmp(workload, "json") == 0)
        return mg_lines_make(&map_lines, (size_t)size, mg_json_line) == 0
                   ? 0 : -ENOMEM;
    if (strcmp(workload, "join") == 0)
        return join_prepare((size_t)size) == 0 ? 0 : -ENOMEM;
    return 0;
}

/* Out of memory inside a timed run: nothing sensible to report. */
static inline void map_oom(const char *where)
{
    fprintf(stderr, "map: out of memory in %s\n", where);
    exit(1);
}

/* The whole main() of a map program: extra (may be NULL) appends fields
 * to each RESULT line; opts are the program's own options. */
static inline int map_main(int argc, char **argv, const bench_impl *impl,
                           const char *(*extra)(void),
                           const bench_option *opts, int nopts)
{
    bench_hooks hooks = { map_prepare, NULL, extra, NULL };
    return bench_main_opts(argc, argv, impl, map_workloads,
                           (int)(sizeof map_workloads /
                                 sizeof map_workloads[0]),
                           &hooks, opts, nopts);
}

#endif
