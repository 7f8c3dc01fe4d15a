/* What weft-scale measured and what it derives from it: one result per
 * workload (or per user program), one row per worker count. A value that
 * was not measured is NAN (the table prints "-", the JSON null). */
#ifndef WEFT_SCALE_RESULT_H
#define WEFT_SCALE_RESULT_H

#include "usl.h"

#define SCALE_MAX_COUNTS 64 /* worker counts in one run */
#define SCALE_MAX_REPEAT 99

/* The median of repeated samples and their spread, (max - min) / median. */
typedef struct scale_stat {
    double median, spread;
} scale_stat;

/* The median and spread of the samples of v[0..n-1] that are not NAN
 * (v is reordered); NAN when there are none. */
scale_stat scale_summarise(double *v, int n);

/* The unmeasured value. */
scale_stat scale_unknown(void);

typedef struct scale_row {
    int workers;
    /* measured */
    scale_stat time;      /* seconds, fixed problem */
    scale_stat scaled;    /* seconds, problem grown workers times */
    double work, scaled_work; /* units of work the two problems did */
    long scaled_param;
    scale_stat idle;      /* share of worker time idle or stealing */
    scale_stat steals;    /* tasks stolen per run */
    scale_stat tasks;     /* tasks the scheduler handled per run (user
                             programs; see weft_worker_stats) */
    scale_stat startup;   /* seconds from runtime creation to first task */
    scale_stat destroy;   /* seconds weft_runtime_destroy took */
    scale_stat preempted; /* share of busy time other processes took */
    /* derived by scale_derive() */
    double speedup;       /* T_1 / T_w */
    double vs_serial;     /* T_serial / T_w */
    double efficiency;    /* speedup / w */
    double scaleup;       /* T_1 / T_w(w times the work), per unit of work */
} scale_row;

typedef struct scale_result {
    char name[32];     /* the workload, or "command" */
    char label[256];   /* the problem: "fib(36)", or the command line */
    const char *what;  /* a few words for the reader */
    const char *unit;  /* of work; NULL for a user program */
    long param;        /* the fixed problem's parameter */
    scale_stat serial; /* the serial twin's seconds */
    int nrows;         /* rows[0] is at 1 worker */
    scale_row rows[SCALE_MAX_COUNTS];
    /* derived by scale_derive() */
    double overhead;   /* T_1 / T_serial - 1 */
    int usl_rc;        /* 0, or why there is no fit (usl_fit_speedups) */
    usl_fit usl;
} scale_result;

/* Fill the derived fields of r from the measured ones. */
void scale_derive(scale_result *r);

/* Everything one run of weft-scale reports. */
typedef struct scale_report {
    int cores;         /* CPUs the process may run on */
    int repeat;
    const char *size;  /* the size's name, or NULL for a factor */
    double factor;
    int command;       /* 1: a user program, not the suite */
    int nresults;
    scale_result *results;
} scale_report;

#endif
