/* The built-in suite, measured. For each workload:
 *
 *   the serial twin, repeat times, on this thread (its answer is the one
 *   every weft run must give);
 *   at each worker count w: start-up and destroy, repeat fresh runtimes;
 *   then on one runtime the fixed problem repeat times, with the workers'
 *   statistics read around each run (idle share, steals);
 *   at each w > 1, on a fresh runtime, the problem grown w times
 *   (scale-up), repeat times.
 *
 * Fixed problems all run before the grown ones so that the join's tables
 * are made once per size. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

double scale_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void scale_progress(const scale_opts *o, const char *fmt, ...)
{
    if (!o->progress)
        return;
    fputs("\r\033[K", stderr); /* back to the start, clear the line */
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        fputs("weft-scale: ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fflush(stderr);
}

/* Says what failed; returns -1. w = 0 is the serial twin. */
static int fail(const scale_workload *wl, int w, const char *what, int rc)
{
    if (w > 0)
        fprintf(stderr, "weft-scale: %s at %d workers: %s: %s\n", wl->name,
                w, what, strerror(-rc));
    else
        fprintf(stderr, "weft-scale: %s, serial twin: %s: %s\n", wl->name,
                what, strerror(-rc));
    return -1;
}

static int empty_task(void *arg)
{
    (void)arg;
    return 0;
}

/* A runtime of w workers, timed from the call to create to the end of a
 * first, empty task: what a program pays before its work can start. */
static int open_runtime(const scale_workload *wl, int w, weft_runtime **rt,
                        double *startup)
{
    weft_config c = weft_config_default();
    c.workers = w;
    double t0 = scale_now();
    int rc = weft_runtime_create(rt, &c);
    if (rc != 0)
        return fail(wl, w, "weft_runtime_create", rc);
    rc = weft_run(*rt, empty_task, NULL);
    *startup = scale_now() - t0;
    if (rc != 0) {
        weft_runtime_destroy(rt);
        return fail(wl, w, "weft_run", rc);
    }
    return 0;
}

static double close_runtime(weft_runtime **rt)
{
    double t0 = scale_now();
    weft_runtime_destroy(rt);
    return scale_now() - t0;
}

/* Start-up and destroy of `repeat` fresh runtimes. */
static int measure_startup(const scale_workload *wl, int w, int repeat,
                           scale_row *row)
{
    double up[SCALE_MAX_REPEAT], down[SCALE_MAX_REPEAT];
    for (int r = 0; r < repeat; r++) {
        weft_runtime *rt;
        if (open_runtime(wl, w, &rt, &up[r]) != 0)
            return -1;
        down[r] = close_runtime(&rt);
    }
    row->startup = scale_summarise(up, repeat);
    row->destroy = scale_summarise(down, repeat);
    return 0;
}

/* What one timed run gives; the figures of a series are medians. */
enum { SECONDS, IDLE, STEALS, PREEMPTED, NFIGURES };

typedef struct series {
    scale_stat fig[NFIGURES];
    double work;
} series;

/* CPU time of the whole process so far, seconds. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* The figures of a run of fig[SECONDS] from the workers' counters before
 * (a) and after (b) it, and the CPU time the process got meanwhile.
 *
 * Idle is what busy_ns does not cover: looking for work, waiting for a
 * stolen child, parked. One counter gives all three (every counter
 * includes the period under way at a reading, so deltas are exact up to
 * the few microseconds of a reading).
 *
 * Preempted: busy time the process got no CPU for. A worker is busy from
 * weft's view while the OS runs another process on its core, so busy time
 * beyond the CPU time the process got was taken by others: the machine was
 * not quiet, and the times say less about weft. */
static void figures(const weft_worker_stats *a, const weft_worker_stats *b,
                    int w, double cpu, double fig[NFIGURES])
{
    double busy = 0, won = 0;
    for (int i = 0; i < w; i++) {
        busy += (double)(b[i].busy_ns - a[i].busy_ns) * 1e-9;
        won += (double)(b[i].steals_won - a[i].steals_won);
    }
    fig[IDLE] = fmax(0, 1 - busy / (w * fig[SECONDS]));
    fig[STEALS] = won;
    fig[PREEMPTED] = busy > 0 ? fmax(0, 1 - cpu / busy) : 0;
}

/* One timed run of problem p; checked against *want unless want is NULL. */
static int timed_run(const scale_workload *wl, weft_runtime *rt, int w,
                     long p, const scale_answer *want,
                     weft_worker_stats *st, double fig[NFIGURES],
                     double *work)
{
    scale_answer got;
    weft_stats_workers(rt, st, w);
    double t0 = scale_now(), cpu0 = cpu_seconds();
    int rc = wl->parallel(rt, p, &got);
    fig[SECONDS] = scale_now() - t0;
    double cpu = cpu_seconds() - cpu0;
    weft_stats_workers(rt, st + w, w);
    figures(st, st + w, w, cpu, fig);
    if (rc != 0)
        return fail(wl, w, "the run", rc);
    if (want != NULL && got.check != want->check) {
        fprintf(stderr, "weft-scale: %s at %d workers answered %llu, the "
                "serial twin %llu\n", wl->name, w,
                (unsigned long long)got.check,
                (unsigned long long)want->check);
        return -1;
    }
    *work = got.work;
    return 0;
}

/* `repeat` runs of problem p on a fresh runtime of w workers. */
static int run_series(const scale_workload *wl, int w, long p, int repeat,
                      const scale_answer *want, series *out)
{
    double v[NFIGURES][SCALE_MAX_REPEAT], startup;
    weft_worker_stats *st = calloc(2 * (size_t)w, sizeof *st);
    weft_runtime *rt;
    if (st == NULL)
        return fail(wl, w, "statistics", -ENOMEM);
    int rc = open_runtime(wl, w, &rt, &startup), done = 0;
    for (; rc == 0 && done < repeat; done++) {
        double fig[NFIGURES];
        rc = timed_run(wl, rt, w, p, want, st, fig, &out->work);
        for (int k = 0; k < NFIGURES; k++)
            v[k][done] = fig[k];
    }
    if (rt != NULL)
        close_runtime(&rt);
    free(st);
    for (int k = 0; k < NFIGURES; k++)
        out->fig[k] = scale_summarise(v[k], done);
    return rc;
}

static int measure_serial(const scale_workload *wl, long p, int repeat,
                          scale_stat *serial, scale_answer *want)
{
    double t[SCALE_MAX_REPEAT];
    for (int r = 0; r < repeat; r++) {
        double t0 = scale_now();
        int rc = wl->serial(p, want);
        t[r] = scale_now() - t0;
        if (rc != 0)
            return fail(wl, 0, "the run", rc);
    }
    *serial = scale_summarise(t, repeat);
    return 0;
}

/* The fixed problem p at row->workers: start-up, times, idle, steals. */
static int measure_fixed(const scale_workload *wl, const scale_opts *o,
                         long p, const scale_answer *want, scale_row *row)
{
    int w = row->workers;
    series s;
    scale_progress(o, "%s at %d worker%s", wl->name, w, w > 1 ? "s" : "");
    if (measure_startup(wl, w, o->repeat, row) != 0 ||
        run_series(wl, w, p, o->repeat, want, &s) != 0)
        return -1;
    row->time = s.fig[SECONDS];
    row->idle = s.fig[IDLE];
    row->steals = s.fig[STEALS];
    row->preempted = s.fig[PREEMPTED];
    row->work = s.work;
    return 0;
}

/* The problem grown row->workers times (scale-up). */
static int measure_scaled(const scale_workload *wl, const scale_opts *o,
                          scale_row *row)
{
    int w = row->workers;
    long p = wl->param(o->factor * w);
    series s;
    scale_progress(o, "%s at %d workers, problem x%d", wl->name, w, w);
    int rc = wl->prepare(p);
    if (rc != 0)
        return fail(wl, w, "making the grown problem's input", rc);
    if (run_series(wl, w, p, o->repeat, NULL, &s) != 0)
        return -1;
    row->scaled = s.fig[SECONDS];
    row->scaled_work = s.work;
    row->scaled_param = p;
    return 0;
}

static void init_result(const scale_workload *wl, const scale_opts *o,
                        scale_result *res)
{
    memset(res, 0, sizeof *res);
    snprintf(res->name, sizeof res->name, "%s", wl->name);
    res->what = wl->what;
    res->unit = wl->unit;
    res->param = wl->param(o->factor);
    wl->label(res->param, res->label, sizeof res->label);
    res->nrows = o->nworkers;
    for (int i = 0; i < o->nworkers; i++) {
        scale_row *row = &res->rows[i];
        row->workers = o->workers[i];
        row->tasks = row->preempted = scale_unknown();
    }
}

static int measure_workload(const scale_workload *wl, const scale_opts *o,
                            scale_result *res)
{
    scale_answer want;
    init_result(wl, o, res);
    scale_progress(o, "%s: making the input", wl->name);
    int rc = wl->prepare(res->param);
    if (rc != 0)
        rc = fail(wl, 0, "making the input", rc);
    if (rc == 0) {
        scale_progress(o, "%s: serial twin", wl->name);
        rc = measure_serial(wl, res->param, o->repeat, &res->serial, &want);
    }
    for (int i = 0; rc == 0 && i < res->nrows; i++)
        rc = measure_fixed(wl, o, res->param, &want, &res->rows[i]);
    for (int i = 1; rc == 0 && i < res->nrows; i++)
        rc = measure_scaled(wl, o, &res->rows[i]);
    /* at one worker the grown problem is the fixed one */
    res->rows[0].scaled = res->rows[0].time;
    res->rows[0].scaled_work = res->rows[0].work;
    res->rows[0].scaled_param = res->param;
    wl->release();
    return rc;
}

int scale_measure_suite(const scale_opts *o, scale_result *out)
{
    /* WEFT_WORKERS would override every runtime's worker count */
    if (getenv("WEFT_WORKERS") != NULL) {
        fprintf(stderr, "weft-scale: ignoring WEFT_WORKERS: the suite "
                        "sets the worker counts itself\n");
        unsetenv("WEFT_WORKERS");
    }
    for (int i = 0; i < o->nsuite; i++)
        if (measure_workload(scale_suite[o->suite[i]], o, &out[i]) != 0) {
            scale_progress(o, NULL);
            return -1;
        }
    scale_progress(o, NULL);
    return 0;
}
