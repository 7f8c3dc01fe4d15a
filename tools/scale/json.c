/* JSON of a whole report: every measured and derived figure, seconds as
 * seconds, shares as fractions; what was not measured is null. */
#include <math.h>
#include <stdio.h>

#include <weft.h>

#include "report.h"

/* A string, escaped; null for NULL. */
static void j_string(FILE *f, const char *s)
{
    if (s == NULL) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* A number, or null for NAN and the infinities (JSON has neither). */
static void j_number(FILE *f, double x)
{
    if (isfinite(x))
        fprintf(f, "%.9g", x);
    else
        fputs("null", f);
}

/* `, "key": ` before a member that is not the first. */
static void j_key(FILE *f, const char *key)
{
    fprintf(f, ", \"%s\": ", key);
}

static void j_num(FILE *f, const char *key, double x)
{
    j_key(f, key);
    j_number(f, x);
}

static void j_stat(FILE *f, const char *key, scale_stat s)
{
    j_key(f, key);
    fputs("{\"median\": ", f);
    j_number(f, s.median);
    fputs(", \"spread\": ", f);
    j_number(f, s.spread);
    fputc('}', f);
}

static void j_row(FILE *f, const scale_row *r)
{
    fprintf(f, "        {\"workers\": %d", r->workers);
    j_stat(f, "time_s", r->time);
    j_num(f, "speedup", r->speedup);
    j_num(f, "speedup_vs_serial", r->vs_serial);
    j_num(f, "efficiency", r->efficiency);
    j_num(f, "work", r->work);
    j_stat(f, "scaled_time_s", r->scaled);
    j_num(f, "scaled_param", isnan(r->scaled_work) ? NAN
                                                   : (double)r->scaled_param);
    j_num(f, "scaled_work", r->scaled_work);
    j_num(f, "scaleup_efficiency", r->scaleup);
    j_stat(f, "idle", r->idle);
    j_stat(f, "steals", r->steals);
    j_stat(f, "tasks", r->tasks);
    j_stat(f, "startup_s", r->startup);
    j_stat(f, "destroy_s", r->destroy);
    j_stat(f, "preempted", r->preempted);
    fputc('}', f);
}

static void j_usl(FILE *f, const scale_result *res)
{
    const usl_fit *u = &res->usl;
    int ok = res->usl_rc == 0;
    j_key(f, "usl");
    fprintf(f, "{\"fitted\": %s", ok ? "true" : "false");
    j_num(f, "sigma", ok ? u->sigma : NAN);
    j_num(f, "kappa", ok && u->kappa_fitted ? u->kappa : NAN);
    j_num(f, "peak_workers", ok ? u->peak : NAN); /* null: no peak */
    j_num(f, "rmse", ok ? u->rmse : NAN);
    fputc('}', f);
}

static void j_result(FILE *f, const scale_result *res, int last)
{
    fputs("    {\"name\": ", f);
    j_string(f, res->name);
    j_key(f, "label");
    j_string(f, res->label);
    j_key(f, "what");
    j_string(f, res->what);
    j_key(f, "unit");
    j_string(f, res->unit);
    j_num(f, "param", res->unit != NULL ? (double)res->param : NAN);
    j_stat(f, "serial_s", res->serial);
    j_num(f, "overhead", res->overhead);
    j_usl(f, res);
    fputs(", \"rows\": [\n", f);
    for (int i = 0; i < res->nrows; i++) {
        j_row(f, &res->rows[i]);
        fputs(i + 1 < res->nrows ? ",\n" : "\n", f);
    }
    fprintf(f, "    ]}%s\n", last ? "" : ",");
}

void scale_print_json(FILE *f, const scale_report *r)
{
    fputs("{\"tool\": \"weft-scale\"", f);
    j_key(f, "version");
    j_string(f, weft_version());
    fprintf(f, ", \"cpus\": %d, \"repeat\": %d", r->cores, r->repeat);
    j_key(f, "mode");
    j_string(f, r->command ? "command" : "suite");
    j_key(f, "size");
    j_string(f, r->size);
    j_num(f, "factor", r->command ? NAN : r->factor);
    fputs(", \"workloads\": [\n", f);
    for (int i = 0; i < r->nresults; i++)
        j_result(f, &r->results[i], i + 1 == r->nresults);
    fputs("]}\n", f);
}
