/* Fork-join workloads with known answers, shared by the tests. */
#ifndef WEFT_TEST_WORK_H
#define WEFT_TEST_WORK_H

#include <stdint.h>
#include <stdlib.h>

#include <weft.h>

/* WEFT_TEST_SCALE divides the sizes of long tests (sanitizer builds). */
static inline int test_scale(void)
{
    const char *s = getenv("WEFT_TEST_SCALE");
    int v = s ? atoi(s) : 1;
    return v > 0 ? v : 1;
}

static inline weft_runtime *test_runtime(int workers, const char *topology)
{
    weft_config c = weft_config_default();
    c.workers = workers;
    c.topology = topology;
    weft_runtime *rt = NULL;
    return weft_runtime_create(&rt, &c) == 0 ? rt : NULL;
}

/* fib: one spawn per call, no cutoff. */
struct fib_frame { weft_task task; int n; long r; };
static inline long fib(int n);
static inline void fib_task(weft_task *t)
{
    struct fib_frame *f = (struct fib_frame *)t;
    f->r = fib(f->n);
}
static inline long fib(int n)
{
    if (n < 2)
        return n;
    struct fib_frame a = { .n = n - 1 };
    weft_spawn(&a.task, fib_task);
    long b = fib(n - 2);
    weft_sync(&a.task);
    return a.r + b;
}
static inline long fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }
/* fib(n) as a weft_run() root: arg is a struct fib_call. */
struct fib_call { int n; long r; };
static inline int fib_call_root(void *arg)
{
    struct fib_call *f = arg;
    f->r = fib(f->n);
    return 0;
}

/* nqueens: a spawn per legal placement in the next row. */
#define NQ_MAX 16
struct nq_frame {
    weft_task task;
    int n, row;
    int8_t cols[NQ_MAX];
    long r;
};
static inline long nqueens(int n, int row, const int8_t *cols);
static inline void nq_task(weft_task *t)
{
    struct nq_frame *f = (struct nq_frame *)t;
    f->r = nqueens(f->n, f->row, f->cols);
}
static inline int nq_ok(const int8_t *cols, int row, int c)
{
    for (int r = 0; r < row; r++) {
        int d = cols[r] - c;
        if (d == 0 || d == row - r || d == r - row)
            return 0;
    }
    return 1;
}
static inline long nqueens(int n, int row, const int8_t *cols)
{
    if (row == n)
        return 1;
    struct nq_frame f[NQ_MAX];
    int k = 0;
    for (int c = 0; c < n; c++) {
        if (!nq_ok(cols, row, c))
            continue;
        struct nq_frame *x = &f[k++];
        x->n = n;
        x->row = row + 1;
        for (int r = 0; r < row; r++)
            x->cols[r] = cols[r];
        x->cols[row] = (int8_t)c;
        weft_spawn(&x->task, nq_task);
    }
    long sum = 0;
    while (k > 0) {
        weft_sync_fn(&f[--k].task, nq_task);
        sum += f[k].r;
    }
    return sum;
}

/* A small unbalanced tree (binomial, UTS T3-style): the root has B0
 * children; every other node has M children with probability Q. Node
 * identity is a 64-bit hash chain, so the tree is the same everywhere. */
static inline uint64_t uts_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
#define UTS_B0 2000
#define UTS_M 5
#define UTS_Q 0.199 /* q*m < 1: finite tree */
static inline int uts_children(uint64_t s, int depth)
{
    if (depth == 0)
        return UTS_B0;
    return (double)(s >> 11) * 0x1.0p-53 < UTS_Q ? UTS_M : 0;
}

static inline long uts(uint64_t s, int depth);
static inline long uts_serial(uint64_t s, int depth)
{
    long n = 1;
    int k = uts_children(s, depth);
    for (int i = 0; i < k; i++)
        n += uts_serial(uts_mix(s ^ (uint64_t)(i + 1)), depth + 1);
    return n;
}
static inline long uts_range(uint64_t s, int depth, int lo, int hi);
struct uts_range_frame { weft_task task; uint64_t s; int depth, lo, hi; long r; };
static inline void uts_range_task(weft_task *t)
{
    struct uts_range_frame *f = (struct uts_range_frame *)t;
    f->r = uts_range(f->s, f->depth, f->lo, f->hi);
}
/* Children [lo, hi) of node s, split in halves so wide nodes fan out. */
static inline long uts_range(uint64_t s, int depth, int lo, int hi)
{
    if (hi - lo == 1) {
        return uts(uts_mix(s ^ (uint64_t)(lo + 1)), depth + 1);
    }
    int mid = lo + (hi - lo) / 2;
    struct uts_range_frame a = { .s = s, .depth = depth, .lo = lo, .hi = mid };
    weft_spawn(&a.task, uts_range_task);
    long b = uts_range(s, depth, mid, hi);
    weft_sync(&a.task);
    return a.r + b;
}
static inline long uts(uint64_t s, int depth)
{
    int k = uts_children(s, depth);
    return 1 + (k ? uts_range(s, depth, 0, k) : 0);
}

#endif
