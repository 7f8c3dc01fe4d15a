/* weft-scale's built-in suite: six workloads, each with a serial twin
 * (the same work as plain loops and recursion, no weft) and a weft form.
 *
 * A workload's problem is one number, its parameter (points, lines,
 * records, rows, fib's n, the tree's root children), chosen from a size
 * factor so that factor 1 takes a few tenths of a second on one core.
 * Runs report the work they did in the workload's unit, so that scale-up
 * compares time per unit of work even where the parameter cannot grow
 * the work exactly in proportion (fib's n, the random tree). */
#ifndef WEFT_SCALE_SUITE_H
#define WEFT_SCALE_SUITE_H

#include <stddef.h>
#include <stdint.h>

#include <weft.h>

typedef struct scale_answer {
    uint64_t check; /* the result: the weft form must give the twin's */
    double work;    /* units of work done */
} scale_answer;

typedef struct scale_workload {
    const char *name; /* as --suite names it */
    const char *what; /* a few words for the reader */
    const char *unit; /* of work: "points", "calls", ... */
    /* The parameter for size factor f (> 0). */
    long (*param)(double f);
    /* Describe the problem of parameter p ("fib(36)") in buf. */
    void (*label)(long p, char *buf, size_t len);
    /* Make the inputs of parameter p, untimed. Called with the fixed
     * problem first; a text workload then reads its lines again for
     * larger problems. 0 or a negative errno. */
    int (*prepare)(long p);
    int (*serial)(long p, scale_answer *out);
    int (*parallel)(weft_runtime *rt, long p, scale_answer *out);
    /* Free what prepare made. */
    void (*release)(void);
} scale_workload;

extern const scale_workload scale_pi, scale_wordcount, scale_json,
    scale_join, scale_fib, scale_uts;

#define SCALE_NSUITE 6

/* A count for size factor f: base * f rounded, at least 1. */
static inline long scale_count(double base, double f)
{
    double n = base * f + 0.5;
    return n < 1 ? 1 : n > 1e15 ? (long)1e15 : (long)n;
}

/* prepare and release of workloads that have no inputs. */
int scale_no_prepare(long p);
void scale_no_release(void);

/* The suite in the order it runs and prints. */
extern const scale_workload *const scale_suite[SCALE_NSUITE];

#endif
