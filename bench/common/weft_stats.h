/* -v output of the weft benchmark programs: what each worker did over all
 * runs, one STATS line per worker on stderr. Uses <weft.h> only. */
#ifndef BENCH_WEFT_STATS_H
#define BENCH_WEFT_STATS_H

#include <stdio.h>

#include <weft.h>

static inline void bench_weft_print_stats(const weft_runtime *rt)
{
    weft_worker_stats st[64];
    int n = weft_stats_workers(rt, st, 64);
    for (int i = 0; i < n; i++)
        fprintf(stderr,
                "STATS worker=%d steals=%llu/%llu parks=%llu "
                "busy_ms=%.1f spin_ms=%.1f parked_ms=%.1f\n",
                st[i].worker, (unsigned long long)st[i].steals_won,
                (unsigned long long)st[i].steals_tried,
                (unsigned long long)st[i].parks, st[i].busy_ns / 1e6,
                st[i].spin_ns / 1e6, st[i].parked_ns / 1e6);
}

#endif
