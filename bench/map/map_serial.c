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
    uint64_t answer;
    if (wc_serial(&map_lines, (size_t)n, &answer) != 0)
        map_oom("wordcount");
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
    return join_serial();
}

int main(int argc, char **argv)
{
    static const bench_impl impl = { "serial", 1, NULL, NULL };
    return map_main(argc, argv, &impl, NULL, NULL, 0);
}
