/* Shared driver of the benchmark programs (C11, also C++): fork-join
 * (fj-*), futures (future-*) and dataflow (dag-*).
 *
 * Every program (one per implementation: serial, weft, tbb, omp, ...) is
 *
 *     SUITE-IMPL -k WORKLOAD [-n SIZE] [-w WORKERS] [-r RUNS] [-c CHECK] [-v]
 *
 * It sets its runtime up once, runs the workload RUNS times and prints one
 * line per run, which bench/run.py parses:
 *
 *     RESULT name=fib impl=weft workers=2 size=35 seconds=0.061234
 *            check=9227465 rss_kb=2345            (all on one line)
 *
 * `check` is the workload's answer; every implementation must print the
 * same one. `rss_kb` is the peak resident set of the whole process so far,
 * so it includes the runtime's threads and stacks. A program may append
 * more `key=value` fields (bench_hooks.extra). With `-c CHECK` the program
 * exits with status 1 after the runs when any run's answer differs from
 * CHECK (the smoke benchmarks meson registers pass the serial answer).
 * A program may take options of its own besides these (bench_option: the
 * weft map programs' -b BATCH). */
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
    int have_expect;    /* -c given */
    bench_check expect; /* the answer -c asks for */
} bench_args;

/* Defaults: the sizes the issue names (fib(35), nqueens(12), a ~4M-node
 * geometric tree and a few-million-node binomial one, 2^16 iterations). */
static inline long bench_default_size(const char *workload)
{
    static const struct { const char *name; long size; } d[] = {
        { "fib", 35 },       { "nqueens", 12 }, { "uts-geo", 13 },
        { "uts-bin", 2000 }, { "skew", 65536 },
        /* futures (bench/future) */
        { "inside-flat", 2000000 }, { "inside-tree", 2000000 },
        { "outside", 1000000 },     { "rt-parked", 500 },
        { "rt-spin", 100000 },
        /* dataflow (bench/dag) */
        { "chol", 24 }, { "chol-fine", 64 }, { "dag", 1000000 },
        /* parallel map (bench/map): items, points, lines, records, rows */
        { "uniform-10ns", 5000000 },  { "uniform-100ns", 1000000 },
        { "uniform-1us", 100000 },    { "uniform-100us", 1000 },
        { "pareto", 400000 },         { "pi", 100000000 },
        { "wordcount", 500000 },      { "json", 1000000 },
        { "join", 2000000 },
        /* actors (bench/actor/actor_work.h): messages, rounds, actors */
        { "pingpong", 500000 },   { "counting", 1000000 },
        { "threadring", 100000 }, { "fjthrput", 10000 },
        { "fjcreate", 40000 },    { "big", 20000 },
        { "chameneos", 200000 },  { "manysenders", 2000000 },
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

/* extra: more " key=value" fields for the end of the line, or NULL. */
static inline void bench_report_extra(const char *name, const char *impl,
                                      int workers, long size,
                                      double seconds, bench_check check,
                                      const char *extra)
{
    printf("RESULT name=%s impl=%s workers=%d size=%ld seconds=%.6f "
           "check=%llu rss_kb=%ld%s%s\n",
           name, impl, workers, size, seconds, check, bench_peak_rss_kb(),
           extra != NULL && *extra != '\0' ? " " : "",
           extra != NULL ? extra : "");
    /* Flush per run: the runner may kill a hung program and still wants
     * the runs that finished. */
    fflush(stdout);
}

static inline void bench_report(const char *name, const char *impl,
                                int workers, long size, double seconds,
                                bench_check check)
{
    bench_report_extra(name, impl, workers, size, seconds, check, NULL);
}

/* An option of one program beyond the common ones: -LETTER VALUE, handed
 * to set(), which returns 0, or -1 for a bad value. */
typedef struct bench_option {
    char letter;
    const char *meta; /* the value's name in the usage line */
    int (*set)(const char *value);
} bench_option;

static inline void bench_usage(const char *prog, const bench_workload *w,
                               int nw, const bench_option *opts, int nopts)
{
    fprintf(stderr, "usage: %s -k WORKLOAD [-n SIZE] [-w WORKERS] "
                    "[-r RUNS] [-c CHECK] [-v]", prog);
    for (int i = 0; i < nopts; i++)
        fprintf(stderr, " [-%c %s]", opts[i].letter, opts[i].meta);
    fprintf(stderr, "\nworkloads:");
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

/* The program's own option for getopt's letter c, or NULL. */
static inline const bench_option *bench_find_option(const bench_option *opts,
                                                    int nopts, int c)
{
    for (int i = 0; i < nopts; i++)
        if (opts[i].letter == c)
            return &opts[i];
    return NULL;
}

/* Returns 0, or -1 after printing what was wrong. opts: the program's own
 * options (nopts of them, at most 16), handed to their set(). */
static inline int bench_parse(int argc, char **argv, bench_args *a,
                              const bench_option *opts, int nopts)
{
    char optstring[64] = "k:n:w:r:c:vh";
    long v;
    int c;
    for (int i = 0; i < nopts && i < 16; i++) {
        size_t len = strlen(optstring);
        optstring[len] = opts[i].letter;
        optstring[len + 1] = ':';
        optstring[len + 2] = '\0';
    }
    a->workload = NULL;
    a->size = -1;
    a->workers = 1;
    a->runs = 1;
    a->verbose = 0;
    a->have_expect = 0;
    a->expect = 0;
    while ((c = getopt(argc, argv, optstring)) != -1) {
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
        case 'c': {
            char *end;
            if (*optarg == '\0' || *optarg == '-') goto bad;
            a->expect = strtoull(optarg, &end, 10);
            if (*end != '\0') goto bad;
            a->have_expect = 1;
            break;
        }
        case 'v': a->verbose = 1; break;
        default: {
            const bench_option *o = bench_find_option(opts, nopts, c);
            if (o == NULL)
                return -1;
            if (o->set(optarg) != 0) goto bad;
            break;
        }
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

/* What a program may add to the plain driver (any member may be NULL).
 * The fork-join programs need none of it: they call bench_main(). */
typedef struct bench_hooks {
    /* Called once, after impl->setup and before the runs, untimed: make
     * what the runs need (a runtime configured for this workload, a graph
     * built once and run many times). 0 or a negative errno. */
    int (*prepare)(const char *workload, long size, int workers);
    /* Called before each run, untimed (reset the input). */
    void (*before_run)(const char *workload, long size);
    /* " key=value ..." fields to append to the RESULT line of the run just
     * done (e.g. latency percentiles), or NULL. */
    const char *(*extra)(void);
    /* Called once after the runs, untimed: check the last run's output
     * further (0 = fine; else the program exits with status 1). */
    int (*verify)(const char *workload, long size);
} bench_hooks;

/* The whole main() of a benchmark program, with hooks (may be NULL) and
 * options of its own (nopts of them in opts, which may be NULL). */
static inline int bench_main_opts(int argc, char **argv,
                                  const bench_impl *impl,
                                  const bench_workload *w, int nw,
                                  const bench_hooks *hooks,
                                  const bench_option *opts, int nopts)
{
    static const bench_hooks none = { NULL, NULL, NULL, NULL };
    bench_args a;
    if (hooks == NULL)
        hooks = &none;
    if (bench_parse(argc, argv, &a, opts, nopts) != 0) {
        bench_usage(argv[0], w, nw, opts, nopts);
        return 2;
    }
    const bench_workload *wl = bench_find(w, nw, a.workload);
    if (wl == NULL) {
        fprintf(stderr, "%s: unknown workload '%s'\n", argv[0], a.workload);
        bench_usage(argv[0], w, nw, opts, nopts);
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
    if (hooks->prepare != NULL) {
        int rc = hooks->prepare(wl->name, size, a.workers);
        if (rc != 0) {
            fprintf(stderr, "%s: %s: preparing %s(%ld) failed: %s\n",
                    argv[0], impl->name, wl->name, size, strerror(-rc));
            return 1;
        }
    }
    int wrong = 0;
    for (int r = 0; r < a.runs; r++) {
        if (hooks->before_run != NULL)
            hooks->before_run(wl->name, size);
        double t0 = bench_now();
        bench_check check = wl->run(size);
        double t1 = bench_now();
        bench_report_extra(wl->name, impl->name, a.workers, size, t1 - t0,
                           check,
                           hooks->extra != NULL ? hooks->extra() : NULL);
        if (a.have_expect && check != a.expect) {
            fprintf(stderr, "%s: WRONG: %s(%ld) run %d answered %llu, "
                            "expected %llu\n", argv[0], wl->name, size,
                    r + 1, check, a.expect);
            wrong = 1;
        }
    }
    if (hooks->verify != NULL && hooks->verify(wl->name, size) != 0)
        wrong = 1;
    if (impl->teardown != NULL)
        impl->teardown(a.verbose);
    return wrong;
}

/* The whole main() of a benchmark program, with hooks (may be NULL). */
static inline int bench_main_hooks(int argc, char **argv,
                                   const bench_impl *impl,
                                   const bench_workload *w, int nw,
                                   const bench_hooks *hooks)
{
    return bench_main_opts(argc, argv, impl, w, nw, hooks, NULL, 0);
}

/* The whole main() of a benchmark program. */
static inline int bench_main(int argc, char **argv, const bench_impl *impl,
                             const bench_workload *w, int nw)
{
    return bench_main_hooks(argc, argv, impl, w, nw, NULL);
}

#endif
