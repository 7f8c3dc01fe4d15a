// The threads every TBB benchmark program runs on: one task_arena of -w
// slots under a global_control of -w threads, made once in setup and
// entered by each run, so the programs differ only in how they schedule.
// C++ only.
#ifndef BENCH_TBB_H
#define BENCH_TBB_H

#include "bench.h"

#include <memory>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

namespace {

std::unique_ptr<tbb::global_control> limit;
std::unique_ptr<tbb::task_arena> arena;

inline void tbb_start(int workers)
{
    // Without the global limit TBB never runs more threads than cores,
    // whatever the arena asks for.
    limit = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, (size_t)workers);
    arena = std::make_unique<tbb::task_arena>(workers);
    arena->initialize();
}

// The reverse of tbb_start.
inline void tbb_stop()
{
    arena.reset();
    limit.reset();
}

// f() inside the arena, its answer out of it.
template <class F> bench_check in_arena(F f)
{
    bench_check result = 0;
    arena->execute([&] { result = f(); });
    return result;
}

} // namespace

#endif
