/* Measuring: the built-in suite on runtimes of each worker count
 * (measure.c), or a user's program run with WEFT_WORKERS set (command.c).
 * Both fill one scale_result per workload and print their own error
 * messages, naming the workload and worker count that failed. */
#ifndef WEFT_SCALE_RUN_H
#define WEFT_SCALE_RUN_H

#include "result.h"
#include "suite.h"

typedef struct scale_opts {
    int workers[SCALE_MAX_COUNTS]; /* ascending, workers[0] = 1 */
    int nworkers;
    int repeat;                    /* samples per median */
    double factor;                 /* size factor of the suite */
    const char *size;              /* its name; NULL when given as a number */
    int suite[SCALE_NSUITE];       /* indices into scale_suite */
    int nsuite;
    int json;                      /* print JSON, not the table */
    const char *svg;               /* write the plot here; NULL = none */
    char **command;                /* argv of a user program, or NULL */
    double timeout;                /* seconds one run of it may take; 0:
                                      no limit */
    int progress;                  /* say what runs on stderr */
} scale_opts;

/* Measure every workload of o->suite into out[0 .. o->nsuite - 1].
 * Returns 0, or -1 after printing what failed. */
int scale_measure_suite(const scale_opts *o, scale_result *out);

/* Run o->command at each worker count into *out. Returns 0, or -1 after
 * printing what failed (the program could not run, or exited non-zero). */
int scale_measure_command(const scale_opts *o, scale_result *out);

/* CLOCK_MONOTONIC in seconds. */
double scale_now(void);

/* When o->progress: a one-line status on stderr, overwritten by the next
 * (NULL fmt clears it). */
void scale_progress(const scale_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
