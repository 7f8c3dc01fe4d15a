/* What the weft benchmark programs share: making the runtime, and the -v
 * output (what each worker did over all runs, one STATS line per worker
 * on stderr). Uses <weft.h> only. */
#ifndef BENCH_WEFT_H
#define BENCH_WEFT_H

#include <stdio.h>

#include <weft.h>

/* weft_runtime_create(), saying on stderr when the runtime has another
 * worker count than cfg asked for: WEFT_WORKERS overrides cfg->workers,
 * and the RESULT lines would then name the wrong count. */
static inline int bench_weft_create(const char *prog, weft_runtime **rt,
                                    const weft_config *cfg)
{
    int rc = weft_runtime_create(rt, cfg);
    if (rc != 0)
        return rc;
    int got = weft_runtime_workers(*rt);
    if (got != cfg->workers)
        fprintf(stderr, "%s: asked for %d workers, runtime has %d "
                        "(WEFT_WORKERS set?)\n", prog, cfg->workers, got);
    return 0;
}

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
