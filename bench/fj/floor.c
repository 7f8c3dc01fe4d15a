/* What the generic form's sync cannot avoid, measured without weft:
 * fib(35) on one thread, a spawn per call, with a spawn and sync that do
 * less and less of a runtime's work. It backs the claim in
 * bench/RESULTS.md ("The generic form's floor") that no weft_sync(t),
 * which is given only the frame, comes within 2x of a fast form that
 * meets 1.5x the serial fib on this compiler and machine.
 *
 *   call     spawn stores fn in the frame; sync calls it through the frame
 *            (the "do-nothing version")
 *   publish  call, and spawn also stores the frame's address in a
 *            thread-local: a thief can only take a frame it can find, so
 *            a runtime whose sync is given nothing but the frame must
 *            publish it somewhere the compiler cannot see through
 *   list     publish as a list (the frame links the one below; sync
 *            restores it): the least a runtime keeps to hand its oldest
 *            frames to thieves and to tell an out of order sync
 *
 * None of them checks anything or can be stolen from: each is a floor,
 * not a runtime. serial (gcc inlines it into itself, the time the fib
 * targets are quoted against) and serial-noinline run beside them.
 *
 * Usage: fj-floor [-n SIZE] [-r RUNS]; prints, per variant, the best and
 * median time of RUNS interleaved runs and the median's ratio to serial. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

struct frame;
typedef void (*task_fn)(struct frame *);
struct frame {
    task_fn fn;
    struct frame *link;
    int n;
    long r;
};

static _Thread_local struct frame *top;

/* The call through the frame. The asm hides what fn holds: without it gcc
 * sees that the frame never escapes in `call`, forwards the store and
 * calls (and inlines) the function directly, which no runtime could. */
static inline void call_through(struct frame *t)
{
    task_fn fn = t->fn;
    __asm__("" : "+r"(fn));
    fn(t);
}

#define V call_
#define SPAWN(t, f) ((t)->fn = (f))
#define SYNC(t, f) call_through(t)
#include "floor_fib.h"

#define V publish_
#define SPAWN(t, f) ((t)->fn = (f), top = (t))
#define SYNC(t, f) call_through(t)
#include "floor_fib.h"

#define V list_
#define SPAWN(t, f) ((t)->fn = (f), (t)->link = top, top = (t))
#define SYNC(t, f) (top = (t)->link, call_through(t))
#include "floor_fib.h"

static NOINLINE long serial_noinline(int n)
{
    return n < 2 ? n : serial_noinline(n - 1) + serial_noinline(n - 2);
}

/* gcc inlines this one into itself: the serial time the targets use */
static long serial_rec(int n)
{
    return n < 2 ? n : serial_rec(n - 1) + serial_rec(n - 2);
}

static NOINLINE long serial(int n)
{
    return serial_rec(n);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { NV = 5, MAXRUNS = 101 };

int main(int argc, char **argv)
{
    int n = 35, runs = 11;
    for (int c; (c = getopt(argc, argv, "n:r:")) != -1;) {
        if (c == 'n')
            n = atoi(optarg);
        else if (c == 'r')
            runs = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-n SIZE] [-r RUNS]\n", argv[0]);
            return 2;
        }
    }
    if (n < 2 || n > 45 || runs < 1 || runs > MAXRUNS) {
        fprintf(stderr, "%s: -n 2..45, -r 1..%d\n", argv[0], MAXRUNS);
        return 2;
    }
    static const char *names[NV] = {"call", "publish", "list", "serial",
                                    "serial-noinline"};
    long (*const fns[NV])(int) = {call_at, publish_at, list_at, serial,
                                  serial_noinline};
    static double t[NV][MAXRUNS];
    long expect = serial(n);
    for (int r = 0; r < runs; r++)
        for (int v = 0; v < NV; v++) {
            double t0 = now();
            long got = fns[v](n);
            t[v][r] = now() - t0;
            if (got != expect) {
                fprintf(stderr, "%s: fib(%d) = %ld, not %ld\n", names[v], n,
                        got, expect);
                return 1;
            }
        }
    for (int v = 0; v < NV; v++)
        qsort(t[v], (size_t)runs, sizeof t[v][0], cmp);
    double med_serial = t[3][runs / 2];
    for (int v = 0; v < NV; v++)
        printf("RESULT name=fib variant=%s size=%d best_ms=%.2f "
               "median_ms=%.2f vs_serial=%.2f\n",
               names[v], n, t[v][0] * 1e3, t[v][runs / 2] * 1e3,
               t[v][runs / 2] / med_serial);
    return 0;
}
