/* weft-top's model: which runtimes publish, their snapshots and rates. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "top.h"

/* ---- the list of runtimes ---------------------------------------------- */

static struct top_runtime *find(struct top_model *m,
                                const weft_stats_source *s)
{
    for (int i = 0; i < m->n; i++) {
        struct top_runtime *r = m->rt[i];
        if (strcmp(r->id, s->id) == 0 &&
            r->created_unix_ns == s->created_unix_ns)
            return r;
    }
    return NULL;
}

static void runtime_free(struct top_runtime *r)
{
    weft_stats_detach(&r->reader);
    free(r->cur.w);
    free(r->prev.w);
    free(r->spare);
    free(r);
}

/* A new runtime to watch, attached; NULL when it went away meanwhile or
 * is not readable (the next refresh tries again). */
static struct top_runtime *runtime_new(const weft_stats_source *s)
{
    if (s->workers <= 0 || s->workers > WEFT_MAX_WORKERS)
        return NULL;
    struct top_runtime *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    snprintf(r->id, sizeof r->id, "%s", s->id);
    top_clean_name(r->shown, sizeof r->shown, s->id);
    for (char *c = r->shown; *c; c++) /* batch lines are key=value words */
        if (*c == ' ')
            *c = '?';
    r->created_unix_ns = s->created_unix_ns;
    r->workers = s->workers;
    r->cur.w = calloc((size_t)s->workers, sizeof *r->cur.w);
    r->prev.w = calloc((size_t)s->workers, sizeof *r->prev.w);
    r->spare = calloc((size_t)s->workers, sizeof *r->spare);
    if (!r->cur.w || !r->prev.w || !r->spare ||
        weft_stats_attach(s->id, &r->reader)) {
        runtime_free(r);
        return NULL;
    }
    r->cur.src = *s;
    return r;
}

static int add(struct top_model *m, struct top_runtime *r)
{
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 8;
        void *p = realloc(m->rt, (size_t)cap * sizeof *m->rt);
        if (!p)
            return -ENOMEM;
        m->rt = p;
        m->cap = cap;
    }
    m->rt[m->n++] = r;
    return 0;
}

/* weft_stats_list() into m->list, grown until everything fits. Returns
 * the count or a negative errno. */
static int list_all(struct top_model *m)
{
    for (;;) {
        int n = weft_stats_list(m->list, m->list_cap);
        if (n < 0 || n <= m->list_cap)
            return n;
        void *p = realloc(m->list, (size_t)n * 2 * sizeof *m->list);
        if (!p)
            return -ENOMEM;
        m->list = p;
        m->list_cap = n * 2;
    }
}

/* ---- snapshots ---------------------------------------------------------- */

/* Read a new snapshot. The one before becomes prev only when the
 * publisher wrote in between: refreshing faster than WEFT_STATS_MS would
 * otherwise give windows of zero length. */
static void runtime_read(struct top_runtime *r)
{
    struct top_snap next = { .w = r->spare };
    int k = weft_stats_read(r->reader, &next.src, &next.rs, next.w,
                            r->workers);
    if (k != r->workers)
        return; /* -EAGAIN: the publisher kept writing; keep what we had */
    if (next.rs.uptime_ns == r->cur.rs.uptime_ns) {
        r->cur.src = next.src; /* age and liveness still move */
        return;
    }
    r->spare = r->prev.w;
    r->prev = r->cur;
    r->cur = next;
}

/* The list leaves out a live runtime whose publisher was in the middle
 * of a write all through its tries, now and then: one missing from it
 * stays while it reads as alive, for a few refreshes. What no longer runs
 * (destroyed, or its process died) shows only with show_exited: the list
 * keeps such segments for a while when they were published with
 * WEFT_STATS_KEEP=1, for a reader to take their last snapshot. */
#define MAX_MISSED 3

static bool visible(const struct top_model *m, const struct top_runtime *r)
{
    bool there = r->missed == 0 ||
                 (r->missed < MAX_MISSED && r->cur.src.alive);
    return there && (r->cur.src.alive || m->show_exited);
}

/* Drop what is gone from the list (or exited, unless shown), keeping the
 * order of the rest. */
static void sweep(struct top_model *m)
{
    int k = 0;
    for (int i = 0; i < m->n; i++) {
        if (visible(m, m->rt[i]))
            m->rt[k++] = m->rt[i];
        else
            runtime_free(m->rt[i]);
    }
    m->n = k;
}

static int by_creation(const void *a, const void *b)
{
    const struct top_runtime *x = *(struct top_runtime *const *)a;
    const struct top_runtime *y = *(struct top_runtime *const *)b;
    if (x->created_unix_ns != y->created_unix_ns)
        return x->created_unix_ns < y->created_unix_ns ? -1 : 1;
    return strcmp(x->id, y->id);
}

static bool wanted(const struct top_model *m, const weft_stats_source *s)
{
    for (int i = 0; i < m->npids; i++)
        if (m->pids[i] == s->pid)
            return true;
    return m->npids == 0;
}

int top_refresh(struct top_model *m)
{
    int n = list_all(m);
    if (n < 0)
        return n;
    for (int i = 0; i < m->n; i++)
        m->rt[i]->missed++; /* until the list below has it */
    for (int i = 0; i < n; i++) {
        if (!wanted(m, &m->list[i]))
            continue;
        struct top_runtime *r = find(m, &m->list[i]);
        if (r) {
            r->missed = 0;
        } else if ((r = runtime_new(&m->list[i])) && add(m, r)) {
            runtime_free(r);
        }
    }
    for (int i = 0; i < m->n; i++)
        runtime_read(m->rt[i]);
    sweep(m);
    if (m->n > 1) /* m->rt is NULL before the first runtime */
        qsort(m->rt, (size_t)m->n, sizeof *m->rt, by_creation);
    return 0;
}

void top_model_free(struct top_model *m)
{
    for (int i = 0; i < m->n; i++)
        runtime_free(m->rt[i]);
    free(m->rt);
    free(m->list);
    *m = (struct top_model){ .show_exited = m->show_exited,
                             .pids = m->pids, .npids = m->npids };
}

/* ---- rates -------------------------------------------------------------- */

static double window_s(const struct top_runtime *r)
{
    return (double)(r->cur.rs.uptime_ns - r->prev.rs.uptime_ns) * 1e-9;
}

/* Counters only grow; a smaller value would be a new segment under an
 * old id, which find() already tells apart, so this is a guard only. */
static uint64_t delta(uint64_t cur, uint64_t prev)
{
    return cur > prev ? cur - prev : 0;
}

static double fraction(uint64_t ns, double window)
{
    double f = window > 0 ? (double)ns * 1e-9 / window : 0;
    return f < 0 ? 0 : f > 1 ? 1 : f;
}

static uint64_t tasks_of(const weft_worker_stats *w)
{
    return w->published + w->jobs + w->roots;
}

void top_worker_rates(const struct top_runtime *r, int i,
                      struct top_rates *out)
{
    const weft_worker_stats *c = &r->cur.w[i], *p = &r->prev.w[i];
    double win = window_s(r);
    *out = (struct top_rates){ .window_s = win };
    out->util = fraction(delta(c->busy_ns, p->busy_ns), win);
    out->spin = fraction(delta(c->spin_ns, p->spin_ns), win);
    if (out->util + out->spin > 1)
        out->spin = 1 - out->util;
    out->tasks = tasks_of(c);
    out->steals = c->steals_won;
    out->parks = c->parks;
    out->queued = c->queued;
    if (win > 0) {
        out->tasks_s = (double)delta(out->tasks, tasks_of(p)) / win;
        out->steals_s = (double)delta(c->steals_won, p->steals_won) / win;
        out->parks_s = (double)delta(c->parks, p->parks) / win;
    }
}

void top_runtime_rates(const struct top_runtime *r, struct top_rates *out)
{
    *out = (struct top_rates){ .window_s = window_s(r) };
    for (int i = 0; i < r->workers; i++) {
        struct top_rates w;
        top_worker_rates(r, i, &w);
        out->util += w.util / r->workers;
        out->spin += w.spin / r->workers;
        out->tasks_s += w.tasks_s;
        out->steals_s += w.steals_s;
        out->parks_s += w.parks_s;
        out->tasks += w.tasks;
        out->steals += w.steals;
        out->parks += w.parks;
        out->queued += w.queued;
    }
}

double top_maps_s(const struct top_runtime *r)
{
    double win = window_s(r);
    return win > 0 ? (double)delta(r->cur.rs.maps, r->prev.rs.maps) / win
                   : 0;
}

double top_items_s(const struct top_runtime *r)
{
    double win = window_s(r);
    return win > 0 ? (double)delta(r->cur.rs.map_items,
                                   r->prev.rs.map_items) / win
                   : 0;
}

double top_msgs_s(const struct top_runtime *r)
{
    double win = window_s(r);
    return win > 0 ? (double)delta(r->cur.rs.messages_handled,
                                   r->prev.rs.messages_handled) / win
                   : 0;
}

/* ---- formatting --------------------------------------------------------- */

void top_clean_name(char *dst, size_t len, const char *name)
{
    size_t i = 0;
    for (; i + 1 < len && name[i]; i++) {
        unsigned char c = (unsigned char)name[i];
        dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (len)
        dst[i] = 0;
}

const char *top_state(const weft_stats_source *s)
{
    return s->alive ? "running" : s->exited ? "exited" : "dead";
}

void top_fmt_uptime(char *dst, size_t len, uint64_t ns)
{
    uint64_t s = ns / 1000000000ull;
    if (s < 60) {
        snprintf(dst, len, "%.1fs", (double)ns * 1e-9);
        return;
    }
    unsigned h = (unsigned)(s / 3600 % 24), mi = (unsigned)(s / 60 % 60),
             se = (unsigned)(s % 60);
    if (s >= 86400)
        snprintf(dst, len, "%llud %02u:%02u:%02u",
                 (unsigned long long)(s / 86400), h, mi, se);
    else
        snprintf(dst, len, "%02u:%02u:%02u", h, mi, se);
}

void top_fmt_si(char *dst, size_t len, double v)
{
    static const char suffix[] = " kMGTPE";
    int k = 0;
    while (v >= 999.5 && k < 6) {
        v /= 1000;
        k++;
    }
    if (k == 0)
        snprintf(dst, len, v < 10 && v != (double)(uint64_t)v ? "%.1f"
                                                              : "%.0f", v);
    else
        snprintf(dst, len, v < 10 ? "%.1f%c" : "%.0f%c", v, suffix[k]);
}
