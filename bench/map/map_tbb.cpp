// The map workloads on oneTBB's loop templates, as a TBB user writes them:
// parallel_reduce / parallel_for over a blocked_range with the default
// auto_partitioner (which splits ranges as thieves ask for them, like
// weft's lazy splitting, but with no time measurement), the body a lambda
// over the subrange. wordcount keeps one table per thread in an
// enumerable_thread_specific and merges them at the end. Everything runs
// inside one task_arena of -w slots under a global_control of -w threads,
// made once in setup.
#include "map_work.h"
#include "bench_tbb.h"

#include <functional>
#include <memory>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/enumerable_thread_specific.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_reduce.h>

namespace {

using range = tbb::blocked_range<size_t>;

// Sum of part(lo, hi) over [0, n).
template <class Part> uint64_t sum(long n, Part part)
{
    return tbb::parallel_reduce(
        range(0, (size_t)n), uint64_t(0),
        [&](const range &r, uint64_t s) {
            return s + part(r.begin(), r.end());
        },
        std::plus<uint64_t>(), tbb::auto_partitioner());
}

int setup(int workers)
{
    tbb_start(workers);
    return 0;
}

void teardown(int)
{
    tbb_stop();
}

} // namespace

static bench_check map_uniform(long n, uint32_t steps)
{
    return in_arena([=] {
        return sum(n, [=](size_t lo, size_t hi) {
            return mk_uniform_range(lo, hi, steps);
        });
    });
}

static bench_check map_pareto(long n)
{
    return in_arena([=] { return sum(n, mk_pareto_range); });
}

static bench_check map_pi(long n)
{
    return in_arena([=] { return sum(n, mk_pi_range); });
}

static bench_check map_wordcount(long n)
{
    return in_arena([=] {
        tbb::enumerable_thread_specific<wc_table *> tables(wc_new);
        tbb::parallel_for(range(0, (size_t)n), [&](const range &r) {
            wc_table *t = tables.local();
            if (t == NULL ||
                wc_count_lines(t, &map_lines, r.begin(), r.end()) != 0)
                map_oom("wordcount");
        }, tbb::auto_partitioner());
        wc_table *total = wc_new();
        for (wc_table *t : tables) {
            if (total == NULL || wc_absorb(total, t) != 0)
                map_oom("wordcount");
            wc_free(t);
        }
        uint64_t answer = wc_answer(total);
        wc_free(total);
        return answer;
    });
}

static bench_check map_json(long n)
{
    return in_arena([=] {
        json_acc zero = { 0, 0, 0 };
        json_acc a = tbb::parallel_reduce(
            range(0, (size_t)n), zero,
            [](const range &r, json_acc acc) {
                json_lines(&acc, &map_lines, r.begin(), r.end());
                return acc;
            },
            [](json_acc x, const json_acc &y) {
                json_combine(&x, &y);
                return x;
            }, tbb::auto_partitioner());
        return json_answer(&a);
    });
}

static bench_check map_join(long)
{
    return in_arena([] {
        join_result res[JOIN_PARTS];
        tbb::parallel_for(range(0, JOIN_CHUNKS), [](const range &r) {
            for (size_t c = r.begin(); c < r.end(); c++)
                join_hist(c);
        }, tbb::auto_partitioner());
        join_offsets();
        tbb::parallel_for(range(0, JOIN_CHUNKS), [](const range &r) {
            for (size_t c = r.begin(); c < r.end(); c++)
                join_scatter(c);
        }, tbb::auto_partitioner());
        tbb::parallel_for(range(0, JOIN_PARTS), [&](const range &r) {
            for (size_t p = r.begin(); p < r.end(); p++)
                res[p] = join_partition(p);
        }, tbb::auto_partitioner());
        return (bench_check)join_answer(res);
    });
}

int main(int argc, char **argv)
{
    static const bench_impl impl = { "tbb", 0, setup, teardown };
    return map_main(argc, argv, &impl, nullptr, nullptr, 0);
}
