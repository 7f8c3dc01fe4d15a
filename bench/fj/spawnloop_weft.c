/* How promptly idle workers get the children of a spawn loop: a task
 * spawns K children that each sleep S ms (they split no further), then
 * syncs them newest first. The ideal time is S * ceil(K / W) at W
 * workers; sleeping children need no CPU, so the figure means the same
 * on a 2-core machine as on a 16-core one. Serially it takes K * S.
 *
 * With -b MS the parent also computes for MS ms (a busy loop on the
 * clock, no weft call) after each spawn: a producer that hands work off
 * as it goes. Its ideal is then max(K * B + S, K * (B + S) / W).
 *
 *   spawnloop-weft [-w WORKERS] [-k CHILDREN] [-s MS] [-b MS] [-r RUNS]
 *
 * Prints one RESULT line per run and the median against the ideal. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bench_weft.h"

enum { KIDS_MAX = 1024 };
static long sleep_ms = 10, busy_ms = 0;
static int kids = 16;

static void kid(weft_task *t)
{
    (void)t;
    struct timespec d = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void busy(void)
{
    double end = now_ms() + (double)busy_ms;
    while (now_ms() < end)
        ;
}

static int spawn_loop(void *arg)
{
    weft_task *f = arg;
    for (int i = 0; i < kids; i++) {
        weft_spawn(&f[i], kid);
        if (busy_ms)
            busy();
    }
    for (int i = kids - 1; i >= 0; i--)
        weft_sync(&f[i]);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int workers = 16, runs = 7, opt;
    while ((opt = getopt(argc, argv, "w:k:s:b:r:")) != -1) {
        switch (opt) {
        case 'w': workers = atoi(optarg); break;
        case 'k': kids = atoi(optarg); break;
        case 's': sleep_ms = atol(optarg); break;
        case 'b': busy_ms = atol(optarg); break;
        case 'r': runs = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-w WORKERS] [-k CHILDREN] [-s MS] "
                            "[-b MS] [-r RUNS]\n", argv[0]);
            return 2;
        }
    }
    if (workers < 1 || kids < 1 || kids > KIDS_MAX || sleep_ms < 0 ||
        busy_ms < 0 || runs < 1 || runs > 100) {
        fprintf(stderr, "%s: need workers >= 1, 1 <= children <= %d, "
                        "ms >= 0, 1 <= runs <= 100\n", argv[0], KIDS_MAX);
        return 2;
    }
    weft_config cfg = weft_config_default();
    cfg.workers = workers;
    weft_runtime *rt;
    int rc = bench_weft_create(argv[0], &rt, &cfg);
    if (rc != 0) {
        fprintf(stderr, "%s: weft_runtime_create: %d\n", argv[0], rc);
        return 1;
    }
    static weft_task frames[KIDS_MAX];
    double ms[100];
    for (int r = 0; r < runs; r++) {
        double t0 = now_ms();
        weft_run(rt, spawn_loop, frames);
        ms[r] = now_ms() - t0;
        printf("RESULT name=spawnloop impl=weft workers=%d size=%d "
               "seconds=%.6f\n", workers, kids, ms[r] / 1e3);
    }
    qsort(ms, (size_t)runs, sizeof ms[0], cmp_double);
    double ideal = (double)sleep_ms * ((kids + workers - 1) / workers);
    if (busy_ms) { /* the parent's part is serial; the rest spreads */
        double chain = (double)kids * busy_ms + (double)sleep_ms;
        double spread = (double)kids * (busy_ms + sleep_ms) / workers;
        ideal = chain > spread ? chain : spread;
    }
    printf("spawnloop: %d children x %ld ms, parent busy %ld ms each, at "
           "%d workers: median %.1f ms, ideal %.0f, serial %ld (x%.2f of "
           "ideal)\n", kids, sleep_ms, busy_ms, workers, ms[runs / 2],
           ideal, kids * (sleep_ms + busy_ms),
           ideal > 0 ? ms[runs / 2] / ideal : 0.0);
    weft_runtime_destroy(&rt);
    return 0;
}
