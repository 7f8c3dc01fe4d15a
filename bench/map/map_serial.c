/* Serial twins of the map workloads: the plain loops on the calling
 * thread. Speedups are quoted against these. */
#include "map_work.h"

static bench_check map_uniform(long n, uint32_t steps)
{
    return mk_uniform_range(0, (size_t)n, steps);
}

static bench_check map_pareto(long n)
{
    return mk_pareto_range(0, (size_t)n);
}

static bench_check map_pi(long n)
{
    return mk_pi_range(0, (size_t)n);
}

static bench_check map_wordcount(long n)
{
    wc_table *t = wc_new();
    if (t == NULL || wc_count_lines(t, &map_lines, 0, (size_t)n) != 0)
        map_oom("wordcount");
    uint64_t answer = wc_answer(t);
    wc_free(t);
    return answer;
}

static bench_check map_json(long n)
{
    json_acc a = { 0, 0, 0 };
    json_lines(&a, &map_lines, 0, (size_t)n);
    return json_answer(&a);
}

static bench_check map_join(long n)
{
    (void)n; /* the tables were made for it */
    join_result res[JOIN_PARTS];
    for (size_t c = 0; c < JOIN_CHUNKS; c++)
        join_hist(c);
    join_offsets();
    for (size_t c = 0; c < JOIN_CHUNKS; c++)
        join_scatter(c);
    for (size_t p = 0; p < JOIN_PARTS; p++)
        res[p] = join_partition(p);
    return join_answer(res);
}

int main(int argc, char **argv)
{
    static const bench_impl impl = { "serial", 1, NULL, NULL };
    return map_main(argc, argv, &impl, NULL, NULL, 0);
}
