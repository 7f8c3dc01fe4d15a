/* weft-scale: why does my program stop scaling? Runs the built-in suite
 * (Monte Carlo pi, word count, average over JSON records, hash join, fib,
 * an unbalanced tree), or your program, at 1, 2, 4 ... N workers and
 * reports speedup, scale-up and the barriers between them: start-up,
 * interference (a Universal Scalability Law fit) and skew (idle workers).
 * Built on <weft.h> only. The measuring is in scale/measure.c and
 * scale/command.c, the outputs in scale/table.c, json.c and svg.c. */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "scale/report.h"
#include "scale/run.h"

enum { PARSE_OK, PARSE_HELP, PARSE_BAD };
enum { OPT_SVG = 256 };

/* CPUs this process may run on: the workers' default, as the runtime's. */
static int allowed_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void usage(FILE *f, int cpus)
{
    fprintf(f,
"usage: weft-scale [options]                        the built-in suite\n"
"       weft-scale [options] -- PROGRAM [ARGS...]   your program\n"
"Runs work at 1, 2, 4 ... N workers and reports speedup, scale-up,\n"
"start-up, interference (a Universal Scalability Law fit) and skew.\n"
"  -w, --workers LIST  worker counts, e.g. 1,2,4 (default: 1, 2, 4 ... N,\n"
"                      N = %d CPUs here); 1 always runs: speedups are\n"
"                      against it\n"
"  -s, --suite LIST    workloads, from pi,wordcount,json,join,fib,uts\n"
"                      (default: all)\n"
"  -S, --size SIZE     tiny, quick, default or large, or a factor of the\n"
"                      default size (default: default)\n"
"  -r, --repeat R      runs per figure, 1 to %d: medians and spread\n"
"                      (default: 5)\n"
"  -t, --timeout SECS  with a program: stop a run of it that takes longer\n"
"                      (SIGTERM, SIGKILL 3 s later) and fail\n"
"  -j, --json          print JSON instead of the table\n"
"      --svg FILE      also plot speedup against workers into FILE\n"
"  -h, --help          print this and exit\n"
"PROGRAM runs with WEFT_WORKERS=w and publishes its runtime's statistics\n"
"(WEFT_STATS); its standard output is discarded. Exit status: 0, 1 when a\n"
"run failed, 2 for bad arguments.\n", cpus, SCALE_MAX_REPEAT);
}

/* Says what was wrong with the arguments; returns PARSE_BAD. */
__attribute__((format(printf, 1, 2)))
static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("weft-scale: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return PARSE_BAD;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* Sort, drop duplicates, make sure 1 is there (speedups are against it). */
static void normalise_workers(scale_opts *o)
{
    o->workers[o->nworkers++] = 1;
    qsort(o->workers, (size_t)o->nworkers, sizeof(int), cmp_int);
    int k = 0;
    for (int i = 0; i < o->nworkers; i++)
        if (k == 0 || o->workers[i] != o->workers[k - 1])
            o->workers[k++] = o->workers[i];
    o->nworkers = k;
}

/* 1, 2, 4 ... up to cpus, and cpus itself. */
static void default_workers(scale_opts *o, int cpus)
{
    o->nworkers = 0;
    for (int w = 2; w < cpus && o->nworkers < SCALE_MAX_COUNTS - 2; w *= 2)
        o->workers[o->nworkers++] = w;
    o->workers[o->nworkers++] = cpus;
    normalise_workers(o);
}

static int parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_workers(scale_opts *o, char *list)
{
    char *save = NULL;
    o->nworkers = 0;
    for (char *t = strtok_r(list, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (o->nworkers == SCALE_MAX_COUNTS - 1)
            return bad("--workers: at most %d counts",
                       SCALE_MAX_COUNTS - 1);
        if (parse_int(t, 1, WEFT_MAX_WORKERS, &o->workers[o->nworkers++]))
            return bad("--workers: '%s' is not a worker count (1 to %d)", t,
                       WEFT_MAX_WORKERS);
    }
    if (o->nworkers == 0)
        return bad("--workers: no worker counts given");
    normalise_workers(o);
    return PARSE_OK;
}

static int find_workload(const char *name)
{
    for (int i = 0; i < SCALE_NSUITE; i++)
        if (strcmp(scale_suite[i]->name, name) == 0)
            return i;
    return -1;
}

static int parse_suite(scale_opts *o, char *list)
{
    char *save = NULL;
    o->nsuite = 0;
    for (char *t = strtok_r(list, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        int k = find_workload(t), seen = 0;
        if (k < 0)
            return bad("--suite: no workload '%s' (there are pi, wordcount,"
                       " json, join, fib and uts)", t);
        for (int i = 0; i < o->nsuite; i++)
            seen |= o->suite[i] == k;
        if (!seen)
            o->suite[o->nsuite++] = k;
    }
    return o->nsuite > 0 ? PARSE_OK
                         : bad("--suite: no workloads given");
}

static int parse_size(scale_opts *o, const char *s)
{
    static const struct { const char *name; double factor; } sizes[] = {
        { "tiny", 0.01 }, { "quick", 0.1 }, { "default", 1 }, { "large", 4 },
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (strcmp(s, sizes[i].name) == 0) {
            o->size = sizes[i].name;
            o->factor = sizes[i].factor;
            return PARSE_OK;
        }
    char *end;
    double f = strtod(s, &end);
    if (end == s || *end != '\0' || !(f > 0 && f <= 1000))
        return bad("--size: '%s' is neither tiny, quick, default, large "
                   "nor a factor above 0, at most 1000", s);
    o->size = NULL;
    o->factor = f;
    return PARSE_OK;
}

/* Seconds for --timeout: above 0, at most a week. */
static int parse_timeout(scale_opts *o, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !(v > 0 && v <= 604800))
        return bad("--timeout: '%s' is not a number of seconds above 0, "
                   "at most 604800", s);
    o->timeout = v;
    return PARSE_OK;
}

/* One option; PARSE_OK, PARSE_HELP or PARSE_BAD. */
static int parse_option(scale_opts *o, int c, char *arg, int *given)
{
    switch (c) {
    case 'w': return parse_workers(o, arg);
    case 's': *given = 1; return parse_suite(o, arg);
    case 'S': *given = 1; return parse_size(o, arg);
    case 'r':
        if (parse_int(arg, 1, SCALE_MAX_REPEAT, &o->repeat) != 0)
            return bad("--repeat: '%s' is not a count from 1 to %d", arg,
                       SCALE_MAX_REPEAT);
        return PARSE_OK;
    case 't': return parse_timeout(o, arg);
    case 'j': o->json = 1; return PARSE_OK;
    case OPT_SVG: o->svg = arg; return PARSE_OK;
    case 'h': return PARSE_HELP;
    default: return PARSE_BAD; /* getopt said what */
    }
}

/* What follows the options: nothing, or `-- PROGRAM [ARGS...]`. */
static int parse_command(scale_opts *o, int argc, char **argv, int given)
{
    int dashes = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
    if (optind < argc && !dashes)
        return bad("unexpected argument '%s' (a program to run goes after "
                   "'--')", argv[optind]);
    if (dashes && optind == argc)
        return bad("no program after '--'");
    if (dashes && given)
        return bad("--suite and --size choose the built-in suite's work; "
                   "a program brings its own");
    if (!dashes && o->timeout > 0)
        return bad("--timeout limits the runs of a program (after '--'); "
                   "the built-in suite has none");
    o->command = dashes ? argv + optind : NULL;
    return PARSE_OK;
}

static int parse_args(int argc, char **argv, scale_opts *o, int cpus)
{
    static const struct option longs[] = {
        { "workers", required_argument, NULL, 'w' },
        { "suite", required_argument, NULL, 's' },
        { "size", required_argument, NULL, 'S' },
        { "repeat", required_argument, NULL, 'r' },
        { "timeout", required_argument, NULL, 't' },
        { "json", no_argument, NULL, 'j' },
        { "svg", required_argument, NULL, OPT_SVG },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c, rc = PARSE_OK, given = 0;
    *o = (scale_opts){ .repeat = 5, .factor = 1, .size = "default",
                       .nsuite = SCALE_NSUITE };
    for (int i = 0; i < SCALE_NSUITE; i++)
        o->suite[i] = i;
    default_workers(o, cpus);
    /* '+': stop at the first argument that is not an option */
    while (rc == PARSE_OK &&
           (c = getopt_long(argc, argv, "+w:s:S:r:t:jh", longs, NULL)) != -1)
        rc = parse_option(o, c, optarg, &given);
    if (rc == PARSE_OK)
        rc = parse_command(o, argc, argv, given);
    o->progress = isatty(STDERR_FILENO);
    return rc;
}

static int report(const scale_opts *o, scale_report *r)
{
    for (int i = 0; i < r->nresults; i++)
        scale_derive(&r->results[i]);
    if (o->json)
        scale_print_json(stdout, r);
    else
        scale_print_table(stdout, r);
    /* the report is all the run was for: one that could not be written
     * (a full disk, a closed pipe's EPIPE) is a failed run */
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "weft-scale: writing the %s: %s\n",
                o->json ? "JSON" : "table", strerror(errno ? errno : EIO));
        return -1;
    }
    return o->svg != NULL ? scale_write_svg(o->svg, r) : 0;
}

int main(int argc, char **argv)
{
    scale_opts o;
    int cpus = allowed_cpus();
    int rc = parse_args(argc, argv, &o, cpus);
    if (rc != PARSE_OK) {
        usage(rc == PARSE_HELP ? stdout : stderr, cpus);
        return rc == PARSE_HELP ? 0 : 2;
    }
    if (o.svg != NULL && scale_check_svg(o.svg) != 0)
        return 1;
    scale_report r = { cpus, o.repeat, o.size, o.factor, o.command != NULL,
                       o.command != NULL ? 1 : o.nsuite, NULL };
    r.results = calloc((size_t)r.nresults, sizeof *r.results);
    if (r.results == NULL) {
        fprintf(stderr, "weft-scale: out of memory\n");
        return 1;
    }
    rc = o.command != NULL ? scale_measure_command(&o, r.results)
                           : scale_measure_suite(&o, r.results);
    if (rc == 0)
        rc = report(&o, &r);
    free(r.results);
    return rc == 0 ? 0 : 1;
}
