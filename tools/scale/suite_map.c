/* The suite's data-parallel workloads: Monte Carlo pi, word count, the
 * average age over JSON records and a hash join. Inputs, kernels and weft
 * forms are the map benchmark's (bench/map/map_seeds_weft.h, on
 * map_seeds.h and map_gen.h), so weft-scale measures exactly what the
 * benchmarks compare against OpenMP, TBB and joblib. */
#include <errno.h>
#include <stdio.h>

#include "map_seeds_weft.h"
#include "suite.h"

/* Sizes at factor 1: a few tenths of a second each on one core of the
 * development VM. */
#define PI_POINTS 120e6
#define WC_LINES 1e6
#define JSON_RECORDS 1.6e6
#define JOIN_ROWS 1e6

static weft_map_opts opts(void)
{
    weft_map_opts o = weft_map_opts_default();
    o.flags = WEFT_MAP_QUIET; /* the report is the output, not a bar */
    return o;
}

static void label_count(const char *unit, long n, char *buf, size_t len)
{
    snprintf(buf, len, "%ld %s", n, unit);
}

/* ---- pi */

static long pi_param(double f) { return scale_count(PI_POINTS, f); }

static void pi_label(long n, char *buf, size_t len)
{
    label_count("points", n, buf, len);
}

static int pi_serial(long n, scale_answer *out)
{
    *out = (scale_answer){ mk_pi_range(0, (size_t)n), (double)n };
    return 0;
}

static int pi_parallel(weft_runtime *rt, long n, scale_answer *out)
{
    weft_map_opts o = opts();
    out->work = (double)n;
    return mw_pi(rt, (size_t)n, &o, NULL, &out->check);
}

const scale_workload scale_pi = {
    "pi", "Monte Carlo pi, weft_map_reduce", "points", pi_param, pi_label,
    scale_no_prepare, pi_serial, pi_parallel, scale_no_release,
};

/* ---- lines of text or records: made once, for the fixed problem; the
 * scaled problems read them again (generating w times as many would take
 * longer than running them). */

static int lines_prepare(mg_lines *l, long n,
                         size_t (*line)(uint64_t, char *))
{
    if (l->text != NULL)
        return 0;
    if (mg_lines_make(l, (size_t)n, line) == 0)
        return 0;
    mg_lines_free(l);
    return -ENOMEM;
}

/* ---- word count */

static mg_lines text;

static long wc_param(double f) { return scale_count(WC_LINES, f); }

static void wc_label(long n, char *buf, size_t len)
{
    label_count("lines", n, buf, len);
}

static int wc_prepare(long n)
{
    mg_vocab_init();
    return lines_prepare(&text, n, mg_text_line);
}

static int wc_run_serial(long n, scale_answer *out)
{
    out->work = (double)n;
    return wc_serial(&text, (size_t)n, &out->check) == 0 ? 0 : -ENOMEM;
}

static int wc_parallel(weft_runtime *rt, long n, scale_answer *out)
{
    weft_map_opts o = opts();
    out->work = (double)n;
    return mw_wordcount(rt, &text, (size_t)n, &o, NULL, &out->check);
}

static void wc_release(void) { mg_lines_free(&text); }

const scale_workload scale_wordcount = {
    "wordcount", "word count, a hash table per worker", "lines", wc_param,
    wc_label, wc_prepare, wc_run_serial, wc_parallel, wc_release,
};

/* ---- average age over JSON records */

static mg_lines records;

static long json_param(double f) { return scale_count(JSON_RECORDS, f); }

static void json_label(long n, char *buf, size_t len)
{
    label_count("records", n, buf, len);
}

static int json_prepare(long n)
{
    return lines_prepare(&records, n, mg_json_line);
}

static int json_serial(long n, scale_answer *out)
{
    json_acc a = { 0, 0, 0 };
    json_lines(&a, &records, 0, (size_t)n);
    *out = (scale_answer){ json_answer(&a), (double)n };
    return 0;
}

static int json_parallel(weft_runtime *rt, long n, scale_answer *out)
{
    weft_map_opts o = opts();
    json_acc a;
    int rc = mw_json(rt, &records, (size_t)n, &o, NULL, &a);
    *out = (scale_answer){ rc == 0 ? json_answer(&a) : 0, (double)n };
    return rc;
}

static void json_release(void) { mg_lines_free(&records); }

const scale_workload scale_json = {
    "json", "average of a field over JSON records", "records", json_param,
    json_label, json_prepare, json_serial, json_parallel, json_release,
};

/* ---- hash join: R of n rows, S of 4 n, made for each size */

static long join_param(double f) { return scale_count(JOIN_ROWS, f); }

static void join_label(long n, char *buf, size_t len)
{
    snprintf(buf, len, "%ld x %ld rows", n, (long)MG_S_PER_R * n);
}

static int join_run_prepare(long n)
{
    if (jw.r.rows != NULL && jw.r.n == (size_t)n)
        return 0;
    join_free();
    if (join_prepare((size_t)n) == 0)
        return 0;
    join_free();
    return -ENOMEM;
}

static int join_run_serial(long n, scale_answer *out)
{
    *out = (scale_answer){ join_serial(), (double)n };
    return 0;
}

static int join_parallel(weft_runtime *rt, long n, scale_answer *out)
{
    weft_map_opts o = opts();
    out->work = (double)n;
    return mw_join(rt, &o, NULL, &out->check);
}

const scale_workload scale_join = {
    "join", "partitioned hash join", "rows of R", join_param, join_label,
    join_run_prepare, join_run_serial, join_parallel, join_free,
};
