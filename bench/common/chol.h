/* Tiled Cholesky: the task graph and the tile kernels every dataflow
 * implementation shares (bench/dag/), so that they differ only in how
 * they schedule the tasks.
 *
 * The matrix is N x N, N = NB * b, stored as NB (NB + 1) / 2 lower tiles
 * of b x b doubles, row-major, tile (i, j) (i >= j) at index
 * chol_tile(i, j). It is symmetric positive definite:
 *     a(r, c) = u(r, c) + (r == c ? N : 0),   u in [0, 1) from a hash of
 *     (min(r, c), max(r, c)),
 * diagonally dominant. The factorisation overwrites the lower triangle
 * with L, A = L L^T (right-looking, as in PLASMA / the StarPU and OmpSs
 * examples):
 *
 *   for k = 0 .. NB-1:
 *       potrf(k)          A_kk = chol(A_kk)
 *       for i > k: trsm(i, k)   A_ik = A_ik L_kk^-T
 *       for i > k: syrk(i, k)   A_ii -= A_ik A_ik^T
 *       for i > j > k: gemm(i, j, k)   A_ij -= A_ik A_jk^T
 *
 * chol_plan() lists the tasks in that (sequential, topological) order with
 * their dependencies: the last writer of each tile the task reads and of
 * the tile it writes. Read-after-write and write-after-write edges are
 * enough here: no tile is written again once anything has read it.
 * NB potrf + NB(NB-1)/2 trsm + NB(NB-1)/2 syrk + NB(NB-1)(NB-2)/6 gemm.
 *
 * The kernels are naive loops (no BLAS) with a fixed order of operations,
 * and the updates of each tile are ordered by the graph, so every
 * implementation produces L bit for bit: the answer is a hash of L's
 * bits (chol_hash). chol_residual() checks that L really is the Cholesky
 * factor of A. */
#ifndef BENCH_CHOL_H
#define BENCH_CHOL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h" /* dag_mix */

enum { CHOL_POTRF, CHOL_TRSM, CHOL_SYRK, CHOL_GEMM };

/* One task of the plan. It reads tiles in[0 .. nin) and updates tile out;
 * deps[0 .. ndeps) are the indices (in the plan) of the tasks it waits
 * for, ascending. */
typedef struct chol_task {
    int kind;
    int i, j, k;
    int out, in[2], nin;
    int deps[3], ndeps;
} chol_task;

static inline int chol_tile(int i, int j) { return i * (i + 1) / 2 + j; }
static inline int chol_ntiles(int nb) { return nb * (nb + 1) / 2; }

static inline long chol_ntasks(long nb)
{
    return nb + nb * (nb - 1) + nb * (nb - 1) * (nb - 2) / 6;
}

/* Floating-point operations of the whole factorisation, N^3 / 3. */
static inline double chol_flops(long nb, long b)
{
    double n = (double)nb * (double)b;
    return n * n * n / 3;
}

/* The plan for NB x NB tiles: a malloc'd array of chol_ntasks(nb) tasks
 * (the caller frees it), or NULL when out of memory. */
static inline chol_task *chol_plan(int nb)
{
    long nt = chol_ntasks(nb);
    chol_task *t = (chol_task *)malloc((size_t)nt * sizeof *t);
    int *last = (int *)malloc((size_t)chol_ntiles(nb) * sizeof *last);
    if (t == NULL || last == NULL) {
        free(t);
        free(last);
        return NULL;
    }
    for (int x = 0; x < chol_ntiles(nb); x++)
        last[x] = -1;
    int n = 0;
#define CHOL_ADD(KIND, I, J, K, OUT, IN0, IN1, NIN)                     \
    do {                                                                \
        chol_task *c = &t[n];                                           \
        c->kind = (KIND); c->i = (I); c->j = (J); c->k = (K);           \
        c->out = (OUT); c->in[0] = (IN0); c->in[1] = (IN1);             \
        c->nin = (NIN); c->ndeps = 0;                                   \
        int cand[3] = { last[c->out], -1, -1 };                         \
        for (int q = 0; q < c->nin; q++)                                \
            cand[q + 1] = last[c->in[q]];                               \
        for (int q = 0; q < 3; q++) {                                   \
            int d = cand[q], dup = d < 0;                               \
            for (int m = 0; m < c->ndeps; m++)                          \
                dup |= c->deps[m] == d;                                 \
            if (!dup)                                                   \
                c->deps[c->ndeps++] = d;                                \
        }                                                               \
        for (int a = 1; a < c->ndeps; a++) /* insertion sort */         \
            for (int m = a; m > 0 && c->deps[m - 1] > c->deps[m]; m--) { \
                int s = c->deps[m]; c->deps[m] = c->deps[m - 1];        \
                c->deps[m - 1] = s;                                     \
            }                                                           \
        last[c->out] = n++;                                             \
    } while (0)
    for (int k = 0; k < nb; k++) {
        CHOL_ADD(CHOL_POTRF, k, k, k, chol_tile(k, k), 0, 0, 0);
        for (int i = k + 1; i < nb; i++)
            CHOL_ADD(CHOL_TRSM, i, k, k, chol_tile(i, k), chol_tile(k, k),
                     0, 1);
        for (int i = k + 1; i < nb; i++)
            CHOL_ADD(CHOL_SYRK, i, i, k, chol_tile(i, i), chol_tile(i, k),
                     0, 1);
        for (int i = k + 1; i < nb; i++)
            for (int j = k + 1; j < i; j++)
                CHOL_ADD(CHOL_GEMM, i, j, k, chol_tile(i, j),
                         chol_tile(i, k), chol_tile(j, k), 2);
    }
#undef CHOL_ADD
    free(last);
    return t;
}

/* ---- the kernels, on b x b row-major tiles */

/* sum over t < len of x[t] * y[t], four partial sums (len % 4 == 0):
 * a fixed order, so the same bits everywhere. */
static inline double chol_dot4(const double *x, const double *y, int len)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int t = 0; t < len; t += 4) {
        s0 += x[t] * y[t];
        s1 += x[t + 1] * y[t + 1];
        s2 += x[t + 2] * y[t + 2];
        s3 += x[t + 3] * y[t + 3];
    }
    return (s0 + s1) + (s2 + s3);
}

/* A = chol(A) in its lower triangle. */
static inline void chol_potrf(double *a, int b)
{
    for (int j = 0; j < b; j++) {
        double s = a[j * b + j];
        for (int t = 0; t < j; t++)
            s -= a[j * b + t] * a[j * b + t];
        double d = sqrt(s); /* NaN when A is not positive definite */
        a[j * b + j] = d;
        for (int i = j + 1; i < b; i++) {
            double u = a[i * b + j];
            for (int t = 0; t < j; t++)
                u -= a[i * b + t] * a[j * b + t];
            a[i * b + j] = u / d;
        }
    }
}

/* X = X L^-T, L the lower triangle of l. */
static inline void chol_trsm(const double *l, double *x, int b)
{
    for (int r = 0; r < b; r++)
        for (int c = 0; c < b; c++) {
            double s = x[r * b + c];
            for (int t = 0; t < c; t++)
                s -= x[r * b + t] * l[c * b + t];
            x[r * b + c] = s / l[c * b + c];
        }
}

/* C -= A A^T, lower triangle of C only. */
static inline void chol_syrk(const double *a, double *c, int b)
{
    for (int r = 0; r < b; r++)
        for (int q = 0; q <= r; q++)
            c[r * b + q] -= chol_dot4(&a[r * b], &a[q * b], b);
}

/* C -= A B^T. */
static inline void chol_gemm(const double *a, const double *bt, double *c,
                             int b)
{
    for (int r = 0; r < b; r++)
        for (int q = 0; q < b; q++)
            c[r * b + q] -= chol_dot4(&a[r * b], &bt[q * b], b);
}

/* Run task t of a plan on the tiles (tiles[x] = tile number x). */
static inline void chol_run_task(const chol_task *t, double *const *tiles,
                                 int b)
{
    switch (t->kind) {
    case CHOL_POTRF: chol_potrf(tiles[t->out], b); break;
    case CHOL_TRSM: chol_trsm(tiles[t->in[0]], tiles[t->out], b); break;
    case CHOL_SYRK: chol_syrk(tiles[t->in[0]], tiles[t->out], b); break;
    default: chol_gemm(tiles[t->in[0]], tiles[t->in[1]], tiles[t->out], b);
    }
}

/* ---- the matrix, the answer, the check */

/* Entry (r, c) of A, N = NB * b. */
static inline double chol_a(long r, long c, long n)
{
    uint64_t lo = (uint64_t)(r < c ? r : c), hi = (uint64_t)(r < c ? c : r);
    double u = (double)(dag_mix(lo << 32 | hi) >> 11) * 0x1.0p-53;
    return r == c ? u + (double)n : u;
}

/* Fill tile (i, j) of A (the whole tile, both triangles of diagonal
 * tiles). */
static inline void chol_init_tile(double *tile, int nb, int b, int i, int j)
{
    long n = (long)nb * b;
    for (int r = 0; r < b; r++)
        for (int c = 0; c < b; c++)
            tile[r * b + c] = chol_a((long)i * b + r, (long)j * b + c, n);
}

static inline void chol_init(double *const *tiles, int nb, int b)
{
    for (int i = 0; i < nb; i++)
        for (int j = 0; j <= i; j++)
            chol_init_tile(tiles[chol_tile(i, j)], nb, b, i, j);
}

/* The answer: a hash of the bits of L (lower triangle), row by row. */
static inline uint64_t chol_hash(double *const *tiles, int nb, int b)
{
    uint64_t h = 0;
    for (int i = 0; i < nb; i++)
        for (int r = 0; r < b; r++)
            for (int j = 0; j <= i; j++)
                for (int c = 0; c < (j == i ? r + 1 : b); c++) {
                    uint64_t bits;
                    memcpy(&bits, &tiles[chol_tile(i, j)][r * b + c], 8);
                    h = dag_mix(h ^ bits);
                }
    return h;
}

/* max |A - L L^T| / N over the lower triangle (entries of A are about
 * 1, N on the diagonal): about 1e-15 for a right factorisation, NaN or
 * large for a wrong one. O(N^3 / 6); -1 when out of memory. */
static inline double chol_residual(double *const *tiles, int nb, int b)
{
    long n = (long)nb * b;
    double *l = (double *)malloc((size_t)n * (size_t)n * sizeof *l);
    if (l == NULL)
        return -1;
    for (long r = 0; r < n; r++) /* L, dense, row-major */
        for (long c = 0; c < n; c++)
            l[r * n + c] = c > r ? 0.0
                : tiles[chol_tile((int)(r / b), (int)(c / b))]
                       [(r % b) * b + c % b];
    double worst = 0;
    for (long r = 0; r < n; r++)
        for (long c = 0; c <= r; c++) {
            double s = 0;
            for (long t = 0; t <= c; t++)
                s += l[r * n + t] * l[c * n + t];
            double e = fabs(chol_a(r, c, n) - s) / (double)n;
            if (!(e <= worst)) /* also catches NaN */
                worst = e;
        }
    free(l);
    return worst;
}

/* Tiles as one allocation: an array of chol_ntiles(nb) pointers followed
 * by the tiles. NULL when out of memory; free() it. */
static inline double **chol_alloc(int nb, int b)
{
    size_t nt = (size_t)chol_ntiles(nb), tb = (size_t)b * (size_t)b;
    size_t head = (nt * sizeof(double *) + 63) & ~(size_t)63;
    char *m = (char *)aligned_alloc(64, head + nt * tb * sizeof(double));
    if (m == NULL)
        return NULL;
    double **tiles = (double **)m;
    for (size_t x = 0; x < nt; x++)
        tiles[x] = (double *)(m + head) + x * tb;
    return tiles;
}

#endif
