/* The aligned table: a block per workload, a row per worker count, then
 * what the rows add up to (overhead, start-up, the USL fit). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <weft.h>

#include "report.h"

/* ---- cells; "-" for what was not measured */

static void fmt_seconds(char *b, size_t n, double s)
{
    if (isnan(s))
        snprintf(b, n, "-");
    else if (s >= 1)
        snprintf(b, n, "%.2f s", s);
    else if (s >= 10e-3)
        snprintf(b, n, "%.0f ms", s * 1e3);
    else if (s >= 1e-3)
        snprintf(b, n, "%.2f ms", s * 1e3);
    else
        snprintf(b, n, "%.0f us", s * 1e6);
}

static void fmt_pct(char *b, size_t n, double x)
{
    if (isnan(x))
        snprintf(b, n, "-");
    else
        snprintf(b, n, fabs(x) < 0.1 ? "%.1f%%" : "%.0f%%", 100 * x);
}

static void fmt_ratio(char *b, size_t n, double x)
{
    if (isnan(x))
        snprintf(b, n, "-");
    else
        snprintf(b, n, "%.2fx", x);
}

static void fmt_count(char *b, size_t n, double x)
{
    if (isnan(x))
        snprintf(b, n, "-");
    else if (x < 1e6)
        snprintf(b, n, "%.0f", x);
    else
        snprintf(b, n, "%.1fM", x * 1e-6);
}

static const char *plural(int n) { return n == 1 ? "" : "s"; }

/* ---- columns */

enum { SUITE = 1, COMMAND = 2 };

typedef struct column {
    const char *head;
    int width, modes;
    void (*fmt)(char *b, size_t n, double x);
    double (*get)(const scale_row *r);
} column;

static double c_time(const scale_row *r) { return r->time.median; }
static double c_spread(const scale_row *r) { return r->time.spread; }
static double c_speedup(const scale_row *r) { return r->speedup; }
static double c_serial(const scale_row *r) { return r->vs_serial; }
static double c_eff(const scale_row *r) { return r->efficiency; }
static double c_scaleup(const scale_row *r) { return r->scaleup; }
static double c_idle(const scale_row *r) { return r->idle.median; }
static double c_steals(const scale_row *r) { return r->steals.median; }
static double c_tasks(const scale_row *r) { return r->tasks.median; }
static double c_startup(const scale_row *r) { return r->startup.median; }

static const column columns[] = {
    { "time", 9, SUITE | COMMAND, fmt_seconds, c_time },
    { "spread", 7, SUITE | COMMAND, fmt_pct, c_spread },
    { "speedup", 8, SUITE | COMMAND, fmt_ratio, c_speedup },
    { "vs serial", 10, SUITE, fmt_ratio, c_serial },
    { "efficiency", 11, SUITE | COMMAND, fmt_pct, c_eff },
    { "scale-up", 9, SUITE, fmt_pct, c_scaleup },
    { "idle", 7, SUITE | COMMAND, fmt_pct, c_idle },
    { "steals", 8, SUITE | COMMAND, fmt_count, c_steals },
    { "tasks", 8, COMMAND, fmt_count, c_tasks },
    { "start-up", 10, SUITE | COMMAND, fmt_seconds, c_startup },
};

#define NCOLUMNS (int)(sizeof columns / sizeof columns[0])

static void print_head(FILE *f, int mode)
{
    fprintf(f, "  %7s", "workers");
    for (int c = 0; c < NCOLUMNS; c++)
        if (columns[c].modes & mode)
            fprintf(f, " %*s", columns[c].width, columns[c].head);
    fputc('\n', f);
}

static void print_row(FILE *f, int mode, const scale_row *r)
{
    char cell[32];
    fprintf(f, "  %7d", r->workers);
    for (int c = 0; c < NCOLUMNS; c++)
        if (columns[c].modes & mode) {
            columns[c].fmt(cell, sizeof cell, columns[c].get(r));
            fprintf(f, " %*s", columns[c].width, cell);
        }
    fputc('\n', f);
}

/* ---- what a block adds up to */

static void print_usl(FILE *f, const scale_result *res)
{
    const usl_fit *u = &res->usl;
    if (res->usl_rc != 0) {
        fprintf(f, "  USL fit: none (needs a run at 2 or more workers)\n");
        return;
    }
    fprintf(f, "  USL fit: sigma %.3g (contention)", u->sigma);
    if (!u->kappa_fitted)
        fprintf(f, ", kappa needs 3 or more worker counts; peak -\n");
    else if (isinf(u->peak))
        fprintf(f, ", kappa %.3g (coherency); no peak: speedup never "
                "falls\n", u->kappa);
    else
        fprintf(f, ", kappa %.3g (coherency); peak at N* = %.1f "
                "workers\n", u->kappa, u->peak);
}

/* Above this share of the workers' busy time spent off the CPU, the
 * machine was busy with other work (or oversubscribed): say so, next to
 * the figures. */
#define PREEMPTED_NOTE 0.1

static void print_preempted(FILE *f, const scale_result *res)
{
    const scale_row *worst = NULL;
    for (int i = 0; i < res->nrows; i++)
        if (res->rows[i].preempted.median > PREEMPTED_NOTE &&
            (worst == NULL ||
             res->rows[i].preempted.median > worst->preempted.median))
            worst = &res->rows[i];
    if (worst != NULL)
        fprintf(f, "  note: at %d worker%s, the workers had no CPU for "
                "%.0f%% of their busy time (other\n  processes or more "
                "workers than CPUs): the times measure the machine\n",
                worst->workers, plural(worst->workers),
                100 * worst->preempted.median);
}

static void print_summary(FILE *f, const scale_result *res, int command)
{
    const scale_row *top = &res->rows[res->nrows - 1];
    char up[32], down[32];
    fmt_seconds(up, sizeof up, top->startup.median);
    fmt_seconds(down, sizeof down, top->destroy.median);
    if (command && isnan(top->startup.median)) {
        fprintf(f, "  no statistics: the program published none (not a "
                "weft program, or it never\n  destroyed its runtime)\n");
    } else if (command) {
        fprintf(f, "  start-up %s at %d worker%s (fork to runtime "
                "created)\n", up, top->workers, plural(top->workers));
    } else {
        char ov[32];
        fmt_pct(ov, sizeof ov, res->overhead);
        fprintf(f, "  overhead %s%s over the serial twin; start-up %s, "
                "destroy %s at %d worker%s\n", res->overhead > 0 ? "+" : "",
                ov, up, down, top->workers, plural(top->workers));
    }
    print_usl(f, res);
    print_preempted(f, res);
}

static void print_block(FILE *f, const scale_result *res, int command)
{
    int mode = command ? COMMAND : SUITE;
    fprintf(f, "%s: %s: %s\n", res->name, res->what, res->label);
    if (!command) {
        char t[32], s[32];
        fmt_seconds(t, sizeof t, res->serial.median);
        fmt_pct(s, sizeof s, res->serial.spread);
        fprintf(f, "  serial twin %s (spread %s)\n", t, s);
    }
    print_head(f, mode);
    for (int i = 0; i < res->nrows; i++)
        print_row(f, mode, &res->rows[i]);
    print_summary(f, res, command);
}

static void print_legend(FILE *f, int command)
{
    fprintf(f,
        "speedup = T(1 worker) / T(w); efficiency = speedup / w; spread = "
        "(max - min) / median.\n");
    if (!command)
        fprintf(f,
            "vs serial = T(serial twin) / T(w); scale-up = efficiency with "
            "the problem grown w times\n(time per unit of work); overhead "
            "= T(1 worker) / T(serial twin) - 1.\n");
    fprintf(f,
        "idle = share of the workers' time spent looking for work or "
        "parked (skew);\nUSL: S(N) = N / (1 + sigma (N - 1) + kappa N "
        "(N - 1)), fitted to the speedups.\n");
}

void scale_print_table(FILE *f, const scale_report *r)
{
    fprintf(f, "weft-scale %s: %d CPUs, ", weft_version(), r->cores);
    if (r->command)
        fprintf(f, "a program");
    else if (r->size != NULL)
        fprintf(f, "size %s (x%g)", r->size, r->factor);
    else
        fprintf(f, "size x%g", r->factor);
    fprintf(f, ", median of %d run%s\n\n", r->repeat,
            r->repeat > 1 ? "s" : "");
    for (int i = 0; i < r->nresults; i++) {
        print_block(f, &r->results[i], r->command);
        fputc('\n', f);
    }
    print_legend(f, r->command);
}
