/* Medians, spreads and the derived figures of a result (result.h). */
#include "result.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

scale_stat scale_unknown(void)
{
    return (scale_stat){ NAN, NAN };
}

scale_stat scale_summarise(double *v, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) /* the samples that were measured */
        if (!isnan(v[i]))
            v[k++] = v[i];
    n = k;
    if (n == 0)
        return scale_unknown();
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    /* the mean of the middle two for an even count */
    double med = (v[(n - 1) / 2] + v[n / 2]) / 2;
    double spread = med > 0 ? (v[n - 1] - v[0]) / med : 0;
    return (scale_stat){ med, spread };
}

/* Speedup, efficiency and scale-up of row r against the 1-worker row. */
static void derive_row(scale_row *r, const scale_row *one, double serial)
{
    double t1 = one->time.median;
    r->speedup = t1 / r->time.median;
    r->vs_serial = serial / r->time.median;
    r->efficiency = r->speedup / r->workers;
    /* time per unit of work on w workers against on one, ideal w times
     * less: T_1 / work_1 / (T_w / work_w) / w */
    r->scaleup = t1 / one->work * r->scaled_work /
                 (r->scaled.median * r->workers);
}

/* The USL fit of the speedups T_1 / T_w. */
static void derive_usl(scale_result *res)
{
    double n[SCALE_MAX_COUNTS], s[SCALE_MAX_COUNTS];
    int k = 0;
    for (int i = 0; i < res->nrows; i++)
        if (isfinite(res->rows[i].speedup)) {
            n[k] = res->rows[i].workers;
            s[k++] = res->rows[i].speedup;
        }
    res->usl_rc = usl_fit_speedups(n, s, k, &res->usl);
}

void scale_derive(scale_result *res)
{
    const scale_row *one = &res->rows[0];
    for (int i = 0; i < res->nrows; i++)
        derive_row(&res->rows[i], one, res->serial.median);
    res->overhead = one->time.median / res->serial.median - 1;
    derive_usl(res);
}
