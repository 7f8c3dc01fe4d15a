/* The dataflow workloads' task bodies as a shared library (libdagkern),
 * so that the Dask program (dag_dask.py, through ctypes) runs exactly the
 * code the C programs inline: the same values, the same answer, and a
 * comparison of schedulers, not of languages. ctypes drops the GIL for
 * each call, so Dask's threads can run the bodies in parallel. */
#include "chol.h"
#include "dag.h"

#if defined(__GNUC__)
#define BK_API __attribute__((visibility("default")))
#else
#define BK_API
#endif

/* ---- the random DAG */

BK_API int bk_dag_maxdeps(void) { return DAG_MAXDEPS; }

/* Inputs of node i into deps[0..3); returns their number. */
BK_API int bk_dag_deps(long i, long *deps) { return dag_deps(i, deps); }

/* Value of node i from its nin inputs (a, b, c in dag_deps' order). */
BK_API uint64_t bk_dag_node(long i, int nin, uint64_t a, uint64_t b,
                            uint64_t c)
{
    uint64_t in[3] = { a, b, c };
    return dag_node(i, in, nin);
}

BK_API uint64_t bk_dag_hash(const uint64_t *v, long n)
{
    return dag_hash(v, n);
}

/* ---- Cholesky */

BK_API long bk_chol_ntasks(int nb) { return chol_ntasks(nb); }

/* The plan as 7 ints per task: kind, i, j, k, out, in0, in1 (in1 = -1
 * for one input, both -1 for none). Returns the number of tasks, or -1
 * when out of memory. */
BK_API long bk_chol_plan(int nb, int *out)
{
    chol_task *t = chol_plan(nb);
    if (t == NULL)
        return -1;
    long n = chol_ntasks(nb);
    for (long x = 0; x < n; x++) {
        int *o = &out[7 * x];
        o[0] = t[x].kind;
        o[1] = t[x].i;
        o[2] = t[x].j;
        o[3] = t[x].k;
        o[4] = t[x].out;
        o[5] = t[x].nin > 0 ? t[x].in[0] : -1;
        o[6] = t[x].nin > 1 ? t[x].in[1] : -1;
    }
    free(t);
    return n;
}

BK_API void bk_chol_init_tile(double *tile, int nb, int b, int i, int j)
{
    chol_init_tile(tile, nb, b, i, j);
}

/* One task: kind as in chol.h, out the tile it updates, a and bt the
 * tiles it reads (NULL when it reads fewer). */
BK_API void bk_chol_task(int kind, double *out, const double *a,
                         const double *bt, int b)
{
    switch (kind) {
    case CHOL_POTRF: chol_potrf(out, b); break;
    case CHOL_TRSM: chol_trsm(a, out, b); break;
    case CHOL_SYRK: chol_syrk(a, out, b); break;
    default: chol_gemm(a, bt, out, b);
    }
}

BK_API uint64_t bk_chol_hash(double *const *tiles, int nb, int b)
{
    return chol_hash(tiles, nb, b);
}
