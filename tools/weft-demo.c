/* weft-demo: fib and an unbalanced tree search at 1..N workers, as a
 * speedup table a newcomer can read. Built on <weft.h> only.
 *
 *   weft-demo [-n MAX_WORKERS] [-r REPEATS]
 *
 * (weft-scale, the full scaling-barrier report, will replace this.) */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

struct fib { weft_task task; int n; long r; };
static long fib(int n);
static void fib_task(weft_task *t) { struct fib *f = (struct fib *)t; f->r = fib(f->n); }
static long fib(int n)
{
    if (n < 2)
        return n;
    struct fib a = { .n = n - 1 };
    weft_spawn(&a.task, fib_task);
    long b = fib(n - 2);
    weft_sync_fn(&a.task, fib_task);
    return a.r + b;
}

/* Binomial tree: the root has 2000 children, every other node 5 children
 * with probability 0.199 (node identity is a splitmix64 hash chain). */
static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
static int children(uint64_t s, int depth)
{
    if (depth == 0)
        return 40000;
    return (double)(s >> 11) * 0x1.0p-53 < 0.199 ? 5 : 0;
}
struct tree { weft_task task; uint64_t s; int depth, lo, hi; long r; };
static long tree(uint64_t s, int depth);
static long tree_range(uint64_t s, int depth, int lo, int hi);
static void tree_task(weft_task *t)
{
    struct tree *f = (struct tree *)t;
    f->r = tree_range(f->s, f->depth, f->lo, f->hi);
}
static long tree_range(uint64_t s, int depth, int lo, int hi)
{
    if (hi - lo == 1)
        return tree(mix(s ^ (uint64_t)(lo + 1)), depth + 1);
    int mid = lo + (hi - lo) / 2;
    struct tree a = { .s = s, .depth = depth, .lo = lo, .hi = mid };
    weft_spawn(&a.task, tree_task);
    long b = tree_range(s, depth, mid, hi);
    weft_sync_fn(&a.task, tree_task);
    return a.r + b;
}
static long tree(uint64_t s, int depth)
{
    int k = children(s, depth);
    return 1 + (k ? tree_range(s, depth, 0, k) : 0);
}

struct job { int kind; long out; };
static int run_job(void *arg)
{
    struct job *j = arg;
    j->out = j->kind == 0 ? fib(36) : tree(2024, 0);
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median wall time of `reps` runs of workload `kind` on `workers`. */
static int measure(int kind, int workers, int reps, double *med, long *out,
                   double *steal_share)
{
    weft_config c = weft_config_default();
    c.workers = workers;
    weft_runtime *rt;
    int rc = weft_runtime_create(&rt, &c);
    if (rc)
        return rc;
    double t[32];
    for (int i = 0; i < reps; i++) {
        struct job j = { .kind = kind };
        double t0 = now();
        weft_run(rt, run_job, &j);
        t[i] = now() - t0;
        *out = j.out;
    }
    weft_worker_stats st[64];
    int n = weft_stats_workers(rt, st, 64);
    uint64_t spawns = 0, won = 0;
    for (int i = 0; i < n; i++) {
        spawns += st[i].spawns;
        won += st[i].steals_won;
    }
    *steal_share = spawns ? 100.0 * (double)won / (double)spawns : 0;
    weft_runtime_destroy(&rt);
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    *med = t[reps / 2];
    return 0;
}

int main(int argc, char **argv)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int maxw = cores > 0 ? (int)cores : 1, reps = 5, opt;
    while ((opt = getopt(argc, argv, "n:r:h")) != -1) {
        if (opt == 'n')
            maxw = atoi(optarg);
        else if (opt == 'r')
            reps = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-n MAX_WORKERS] [-r REPEATS]\n",
                    argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (maxw < 1 || maxw > 1024 || reps < 1 || reps > 31) {
        fprintf(stderr, "weft-demo: -n must be 1..1024, -r 1..31\n");
        return 2;
    }
    const char *names[2] = {"fib(36)", "tree (binomial)"};
    printf("weft %s on %ld cores: median of %d runs\n\n", weft_version(),
           cores, reps);
    printf("%-16s %8s %10s %9s %11s %9s\n", "workload", "workers",
           "seconds", "speedup", "efficiency", "stolen");
    for (int k = 0; k < 2; k++) {
        double t1 = 0;
        for (int w = 1; w <= maxw; w *= 2) {
            double med, share;
            long out;
            int rc = measure(k, w, reps, &med, &out, &share);
            if (rc) {
                fprintf(stderr, "weft-demo: runtime: %s\n", strerror(-rc));
                return 1;
            }
            if (w == 1)
                t1 = med;
            printf("%-16s %8d %10.4f %8.2fx %10.0f%% %8.3f%%\n",
                   w == 1 ? names[k] : "", w, med, t1 / med,
                   100.0 * t1 / med / w, share);
            if (w < maxw && w * 2 > maxw)
                w = maxw / 2; /* always end on maxw */
        }
    }
    printf("\nspeedup = time on 1 worker / time on N; efficiency = "
           "speedup / N;\nstolen = share of spawned tasks that ran on "
           "another worker than their parent.\n");
    return 0;
}
