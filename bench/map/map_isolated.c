/* Isolated mode of weft_map (WEFT_MAP_ISOLATED): the cost of running
 * items in worker processes, for the data path (inputs, outputs, ctx
 * through shared memory) and the dispatch round trips.
 *
 *   map-isolated [-n items] [-s bytes per input and output] [-w ns per item]
 *                [-r repetitions] [-p workers]
 *
 * Prints, per repetition, the wall time of one call on warm processes
 * (the first call, which forks them, is reported apart), then the median
 * and the spread; and the same items on the pool (not isolated) in the
 * same run, as the ratio. Public API only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct bctx {
    size_t size;
    long work_ns;
};

static void spin_ns(long ns)
{
    if (ns <= 0)
        return;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) <
           ns);
}

/* out = in with every 8-byte word incremented, after work_ns of spinning */
static int item(size_t i, const void *in, void *out, void *ctx)
{
    const struct bctx *c = ctx;
    spin_ns(c->work_ns);
    const uint64_t *x = in;
    uint64_t *y = out;
    for (size_t k = 0; k < c->size / 8; k++)
        y[k] = x[k] + i;
    return 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double run(weft_runtime *rt, size_t n, const void *in, void *out,
                  struct bctx *c, unsigned flags, int workers)
{
    weft_map_opts o = weft_map_opts_default();
    o.flags = flags | WEFT_MAP_QUIET;
    o.workers = workers;
    o.ctx_size = sizeof *c;
    double t = now_s();
    int rc = weft_map(rt, n, in, c->size, out, c->size, item, c, &o, NULL);
    t = now_s() - t;
    if (rc) {
        fprintf(stderr, "map-isolated: weft_map: %s\n", strerror(-rc));
        exit(1);
    }
    return t;
}

int main(int argc, char **argv)
{
    size_t n = 200000, size = 64;
    long work = 0;
    int reps = 5, workers = 0, opt;
    while ((opt = getopt(argc, argv, "n:s:w:r:p:")) != -1) {
        switch (opt) {
        case 'n': n = strtoull(optarg, NULL, 10); break;
        case 's': size = strtoull(optarg, NULL, 10) & ~(size_t)7; break;
        case 'w': work = strtol(optarg, NULL, 10); break;
        case 'r': reps = atoi(optarg); break;
        case 'p': workers = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: map-isolated [-n items] [-s bytes] "
                            "[-w ns] [-r reps] [-p workers]\n");
            return 2;
        }
    }
    if (size < 8)
        size = 8;
    if (reps < 1 || reps > 100)
        reps = 5;
    weft_runtime *rt;
    if (weft_runtime_create(&rt, NULL))
        return 1;
    unsigned char *in = malloc(n * size), *out = malloc(n * size);
    if (!in || !out)
        return 1;
    for (size_t i = 0; i < n * size; i++)
        in[i] = (unsigned char)i;
    struct bctx c = {size, work};
    double first = run(rt, n, in, out, &c, WEFT_MAP_ISOLATED, workers);
    double t[100], p[100];
    for (int r = 0; r < reps; r++) {
        t[r] = run(rt, n, in, out, &c, WEFT_MAP_ISOLATED, workers);
        p[r] = run(rt, n, in, out, &c, 0, workers);
    }
    printf("items %zu, %zu B in + %zu B out each, %ld ns of work, %d "
           "workers\nfirst call (forks): %.2f ms\nisolated ms:", n, size,
           size, work, weft_runtime_workers(rt), first * 1e3);
    for (int r = 0; r < reps; r++)
        printf(" %.2f", t[r] * 1e3);
    qsort(t, (size_t)reps, sizeof *t, cmp);
    qsort(p, (size_t)reps, sizeof *p, cmp);
    printf("\nisolated median %.2f ms (min %.2f, max %.2f); pool median "
           "%.2f ms; isolated/pool %.2f\n", t[reps / 2] * 1e3, t[0] * 1e3,
           t[reps - 1] * 1e3, p[reps / 2] * 1e3, t[reps / 2] / p[reps / 2]);
    free(in);
    free(out);
    weft_runtime_destroy(&rt);
    return 0;
}
