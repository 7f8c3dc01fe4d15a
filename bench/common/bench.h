/* Shared driver of the fork-join benchmark programs (C11, also C++).
 *
 * Every program (one per implementation: serial, weft, tbb, omp, ...) is
 *
 *     fj-IMPL -k WORKLOAD [-n SIZE] [-w WORKERS] [-r RUNS] [-v]
 *
 * It sets its runtime up once, runs the workload RUNS times and prints one
 * line per run, which bench/run.py parses:
 *
 *     RESULT name=fib impl=weft workers=2 size=35 seconds=0.061234
 *            check=9227465 rss_kb=2345            (all on one line)
 *
 * `check` is the workload's answer; every implementation must print the
 * same one. `rss_kb` is the peak resident set of the whole process so far,
 * so it includes the runtime's threads and stacks. */
#ifndef BENCH_H
#define BENCH_H

/* clock_gettime, getopt and getrusage are POSIX, not C11: include this
 * header before any other so that the feature macro takes effect. */
#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef unsigned long long bench_check;

/* One workload as an implementation provides it: run() computes the
 * answer for `size` on the runtime the program set up. */
typedef struct bench_workload {
    const char *name;
    bench_check (*run)(long size);
} bench_workload;

/* Runtime set-up and tear-down around all runs (NULL = nothing to do).
 * setup returns 0 or a negative errno. */
typedef struct bench_impl {
    const char *name;
    int serial; /* 1 = runs on the calling thread only; ignores -w */
    int (*setup)(int workers);
    void (*teardown)(int verbose);
} bench_impl;

typedef struct bench_args {
    const char *workload;
    long size;    /* -1 = the workload's default */
    int workers;
    int runs;
    int verbose;
} bench_args;

/* Defaults: the sizes the issue names (fib(35), nqueens(12), a ~4M-node
 * geometric tree and a few-million-node binomial one, 2^16 iterations). */
static inline long bench_default_size(const char *workload)
{
    static const struct { const char *name; long size; } d[] = {
        { "fib", 35 },       { "nqueens", 12 }, { "uts-geo", 13 },
        { "uts-bin", 2000 }, { "skew", 65536 },
    };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (strcmp(d[i].name, workload) == 0)
            return d[i].size;
    return -1;
}

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Peak resident set of this process in KiB. Linux's VmHWM, the high-water
 * mark of this address space, is preferred: getrusage's ru_maxrss survives
 * execve, so a program started from a big parent (the Python runner) would
 * report the parent's size instead of its own. */
static inline long bench_peak_rss_kb(void)
{
    long kb = -1;
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    if (f != NULL) {
        while (fgets(line, sizeof line, f) != NULL)
            if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
                break;
        fclose(f);
    }
    if (kb < 0) {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0)
            kb = ru.ru_maxrss; /* kilobytes on Linux */
    }
    return kb;
}

static inline void bench_report(const char *name, const char *impl,
                                int workers, long size, double seconds,
                                bench_check check)
{
    printf("RESULT name=%s impl=%s workers=%d size=%ld seconds=%.6f "
           "check=%llu rss_kb=%ld\n",
           name, impl, workers, size, seconds, check, bench_peak_rss_kb());
    /* Flush per run: the runner may kill a hung program and still wants
     * the runs that finished. */
    fflush(stdout);
}

static inline void bench_usage(const char *prog, const bench_workload *w,
                               int nw)
{
    fprintf(stderr, "usage: %s -k WORKLOAD [-n SIZE] [-w WORKERS] "
                    "[-r RUNS] [-v]\nworkloads:", prog);
    for (int i = 0; i < nw; i++)
        fprintf(stderr, " %s", w[i].name);
    fprintf(stderr, "\n");
}

/* strtol that rejects trailing junk and values below `min`. */
static inline int bench_parse_long(const char *s, long min, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min)
        return -1;
    *out = v;
    return 0;
}

/* Returns 0, or -1 after printing what was wrong. */
static inline int bench_parse(int argc, char **argv, bench_args *a)
{
    long v;
    int c;
    a->workload = NULL;
    a->size = -1;
    a->workers = 1;
    a->runs = 1;
    a->verbose = 0;
    while ((c = getopt(argc, argv, "k:n:w:r:vh")) != -1) {
        switch (c) {
        case 'k': a->workload = optarg; break;
        case 'n':
            if (bench_parse_long(optarg, 0, &v) != 0) goto bad;
            a->size = v;
            break;
        case 'w':
            if (bench_parse_long(optarg, 1, &v) != 0 || v > 4096) goto bad;
            a->workers = (int)v;
            break;
        case 'r':
            if (bench_parse_long(optarg, 1, &v) != 0 || v > 100000) goto bad;
            a->runs = (int)v;
            break;
        case 'v': a->verbose = 1; break;
        default: return -1;
        }
    }
    if (a->workload == NULL) {
        fprintf(stderr, "%s: -k WORKLOAD is required\n", argv[0]);
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "%s: bad value for -%c: '%s'\n", argv[0], c, optarg);
    return -1;
}

static inline const bench_workload *bench_find(const bench_workload *w,
                                               int nw, const char *name)
{
    for (int i = 0; i < nw; i++)
        if (strcmp(w[i].name, name) == 0)
            return &w[i];
    return NULL;
}

/* The whole main() of a benchmark program. */
static inline int bench_main(int argc, char **argv, const bench_impl *impl,
                             const bench_workload *w, int nw)
{
    bench_args a;
    if (bench_parse(argc, argv, &a) != 0) {
        bench_usage(argv[0], w, nw);
        return 2;
    }
    const bench_workload *wl = bench_find(w, nw, a.workload);
    if (wl == NULL) {
        fprintf(stderr, "%s: unknown workload '%s'\n", argv[0], a.workload);
        bench_usage(argv[0], w, nw);
        return 2;
    }
    long size = a.size >= 0 ? a.size : bench_default_size(wl->name);
    if (impl->serial)
        a.workers = 1;
    if (impl->setup != NULL) {
        int rc = impl->setup(a.workers);
        if (rc != 0) {
            fprintf(stderr, "%s: %s setup failed: %s\n", argv[0],
                    impl->name, strerror(-rc));
            return 1;
        }
    }
    for (int r = 0; r < a.runs; r++) {
        double t0 = bench_now();
        bench_check check = wl->run(size);
        double t1 = bench_now();
        bench_report(wl->name, impl->name, a.workers, size, t1 - t0, check);
    }
    if (impl->teardown != NULL)
        impl->teardown(a.verbose);
    return 0;
}

#endif
