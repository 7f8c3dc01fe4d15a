/* weft-top: a live view of every weft runtime on this machine that
 * publishes statistics (a program run with WEFT_STATS=name), in the
 * manner of htop: per-worker utilisation, tasks, steals, queue depths and
 * parks, parallel-map rates, and the actor, store and peer counters.
 *
 *   weft-top [-b] [-a] [-n COUNT] [-d SECONDS] [-p PID]...
 *
 * Built on the public statistics API only (weft/stats.h): every refresh
 * lists the published segments again, so runtimes that start appear and
 * runtimes that exit or crash disappear (the list removes the segments
 * dead processes left). The model is in top/model.c, the batch output in
 * top/batch.c, the ncurses screen in top/screen.c. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "top/top.h"

#define MIN_INTERVAL 0.05
#define MAX_INTERVAL 3600.0
#define MAX_PIDS 64

struct options {
    bool batch;
    bool all;       /* also runtimes that no longer run (kept snapshots) */
    long count;     /* refreshes, 0 = until quit */
    double interval;
    int pids[MAX_PIDS]; /* -p: only these processes */
    int npids;
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: weft-top [-b] [-a] [-n COUNT] [-d SECONDS] [-p PID]...\n"
        "Live view of the weft runtimes on this machine that publish "
        "statistics\n(programs run with WEFT_STATS=name).\n"
        "  -b          batch mode: plain-text snapshots on stdout, no "
        "terminal needed\n"
        "  -n COUNT    stop after COUNT refreshes (default: until q or "
        "Ctrl-C)\n"
        "  -d SECONDS  time between refreshes, %.2g to %.0f (default 1)\n"
        "  -p PID      only the runtimes of process PID (repeatable, up "
        "to %d)\n"
        "  -a          also show runtimes that no longer run but left "
        "their last\n              snapshot (WEFT_STATS_KEEP=1)\n"
        "  -h          this help\n"
        "Keys: q quit, Up/Down select a runtime, PgUp/PgDn scroll its "
        "workers,\n      +/- change the interval, a show/hide runtimes "
        "that no longer run.\n"
        "Exit status: 0; 1 when /dev/shm cannot be read, the output cannot "
        "be\nwritten or there is no terminal (without -b); 2 for bad "
        "arguments.\n", MIN_INTERVAL, MAX_INTERVAL, MAX_PIDS);
}

/* A clear message and the usage on stderr; exit status 2. */
static int bad_usage(const char *fmt, const char *arg)
{
    fputs("weft-top: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    usage(stderr);
    return 2;
}

static bool parse_count(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1)
        return false;
    *out = v;
    return true;
}

static bool parse_pid(const char *s, struct options *o)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > INT32_MAX ||
        o->npids == MAX_PIDS)
        return false;
    o->pids[o->npids++] = (int)v;
    return true;
}

static bool parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < MIN_INTERVAL ||
        v > MAX_INTERVAL)
        return false;
    *out = v;
    return true;
}

/* Returns -1 to go on, or the exit status (help, or bad arguments). */
static int parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){ .interval = 1.0 };
    int c;
    opterr = 0; /* our messages, not getopt's */
    while ((c = getopt(argc, argv, ":abn:d:p:h")) != -1) {
        switch (c) {
        case 'a':
            o->all = true;
            break;
        case 'b':
            o->batch = true;
            break;
        case 'n':
            if (!parse_count(optarg, &o->count))
                return bad_usage("-n wants a count of refreshes >= 1, not "
                                 "'%s'", optarg);
            break;
        case 'd':
            if (!parse_seconds(optarg, &o->interval))
                return bad_usage("-d wants seconds between 0.05 and 3600, "
                                 "not '%s'", optarg);
            break;
        case 'p':
            if (!parse_pid(optarg, o))
                return bad_usage(o->npids == MAX_PIDS
                                     ? "too many -p (at most 64), at '%s'"
                                     : "-p wants a process id, not '%s'",
                                 optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            return bad_usage("option -%s needs a value",
                             (char[]){ (char)optopt, 0 });
        default:
            return bad_usage("unknown option -%s",
                             (char[]){ (char)optopt, 0 });
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument '%s'", argv[optind]);
    return -1;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - floor(s)) * 1e9) };
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* Batch mode: COUNT snapshots (forever without -n), INTERVAL apart. No
 * terminal handling at all, so it works in pipes and tests. */
static int run_batch(struct top_model *m, const struct options *o)
{
    top_batch_legend();
    for (long i = 1; o->count == 0 || i <= o->count; i++) {
        errno = 0;
        int rc = top_refresh(m);
        if (rc < 0) {
            fprintf(stderr, "weft-top: cannot list /dev/shm: %s\n",
                    strerror(-rc));
            return 1;
        }
        top_batch_print(m, i, o->count, o->interval);
        if (ferror(stdout)) {
            /* a full disk, or a pipe whose reader went with SIGPIPE
             * ignored: nobody sees the snapshots, and a script must know */
            fprintf(stderr, "weft-top: writing to stdout: %s\n",
                    strerror(errno ? errno : EIO));
            return 1;
        }
        if (o->count == 0 || i < o->count)
            sleep_s(o->interval);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    struct top_model m = { .show_exited = o.all, .pids = o.pids,
                           .npids = o.npids };
    rc = o.batch ? run_batch(&m, &o)
                 : top_screen_run(&m, o.interval, o.count);
    top_model_free(&m);
    return rc;
}
