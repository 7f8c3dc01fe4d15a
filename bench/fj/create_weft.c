/* What weft_runtime_create costs on a machine of a given shape: an hwloc
 * synthetic topology (or "" for this machine's), a worker count (0 = one
 * per core), the median and range of -r create+destroy pairs, the create
 * alone timed. Start-up is what a short program, or one that makes a
 * runtime per request, pays every time (bench/RESULTS.md).
 *
 *   create-weft -t "package:2 numa:2 core:600 pu:1" -w 2 -r 5 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *topo = "";
    int workers = 2, runs = 5, opt;
    while ((opt = getopt(argc, argv, "t:w:r:")) != -1) {
        if (opt == 't')
            topo = optarg;
        else if (opt == 'w')
            workers = atoi(optarg);
        else if (opt == 'r')
            runs = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-t TOPOLOGY] [-w WORKERS] [-r RUNS]\n",
                    argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 1000 || workers < 0) {
        fprintf(stderr, "%s: runs 1..1000, workers >= 0\n", argv[0]);
        return 2;
    }
    double *t = calloc((size_t)runs, sizeof *t);
    if (!t)
        return 1;
    int nworkers = 0;
    for (int i = 0; i < runs; i++) {
        weft_config c = weft_config_default();
        c.topology = *topo ? topo : NULL;
        c.workers = workers;
        weft_runtime *rt;
        double t0 = now();
        int rc = weft_runtime_create(&rt, &c);
        t[i] = now() - t0;
        if (rc) {
            fprintf(stderr, "%s: weft_runtime_create: %s\n", argv[0],
                    strerror(-rc));
            return 1;
        }
        nworkers = weft_runtime_workers(rt);
        weft_runtime_destroy(&rt);
    }
    qsort(t, (size_t)runs, sizeof *t, cmp);
    printf("create topology=\"%s\" workers=%d: median %.4f s "
           "(min %.4f, max %.4f, %d runs)\n",
           *topo ? topo : "(this machine)", nworkers, t[runs / 2], t[0],
           t[runs - 1], runs);
    free(t);
    return 0;
}
