/* weft-top's model: the runtimes publishing statistics on this machine
 * (weft/stats.h), the last two snapshots of each, and the rates between
 * them. The views (batch.c, screen.c) only format what is here. */
#ifndef WEFT_TOP_H
#define WEFT_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <weft.h>

/* One snapshot of one runtime. */
struct top_snap {
    weft_stats_source src;
    weft_runtime_stats rs;
    weft_worker_stats *w; /* src.workers entries */
};

/* A runtime being watched: a reader on its segment, the newest snapshot
 * (cur) and the one the rates are measured against (prev). Before a
 * second snapshot exists prev is all zeros at uptime 0, so the first
 * rates are averages since the runtime was created. */
struct top_runtime {
    char id[64];
    char shown[64]; /* id as printed: any file in /dev/shm named weft-*
                       is listed, so its name is not trusted (escapes) */
    uint64_t created_unix_ns; /* with id, tells a reused id apart */
    int workers;
    weft_stats_reader *reader;
    struct top_snap cur, prev;
    weft_worker_stats *spare; /* where the next snapshot is read into */
    int missed; /* refreshes in a row it was not listed */
};

/* Rates of a worker, or of a whole runtime (utilisation then averaged
 * over its workers), over the window between prev and cur. */
struct top_rates {
    double window_s;
    double util, spin;  /* busy and searching: fractions 0..1 */
    double tasks_s;     /* published frames + jobs + roots per second */
    double steals_s;    /* steals won per second */
    double parks_s;
    uint64_t tasks, steals, parks, queued; /* totals and the gauge */
};

struct top_model {
    struct top_runtime **rt; /* sorted by creation time, then id */
    int n, cap;
    weft_stats_source *list; /* scratch for weft_stats_list() */
    int list_cap;
    bool show_exited; /* show runtimes that no longer run (their kept
                         snapshots, WEFT_STATS_KEEP) */
    const int *pids;  /* when npids > 0, only runtimes of these processes */
    int npids;
};

/* List, attach to new runtimes, read every one, drop those gone. Returns
 * 0 or a negative errno from weft_stats_list() (the model is unchanged
 * then). */
int top_refresh(struct top_model *m);

/* Release every reader and buffer; the model is empty afterwards. */
void top_model_free(struct top_model *m);

void top_worker_rates(const struct top_runtime *r, int i,
                      struct top_rates *out);
void top_runtime_rates(const struct top_runtime *r, struct top_rates *out);

/* Calls of weft_map & co. and their items, per second over the window. */
double top_maps_s(const struct top_runtime *r);
double top_items_s(const struct top_runtime *r);
/* Actor messages handled per second over the window. */
double top_msgs_s(const struct top_runtime *r);

/* name made safe to print: bytes that are not printable ASCII become '?'
 * (a segment is written by another process; its name must not drive the
 * terminal). */
void top_clean_name(char *dst, size_t len, const char *name);

/* "running", "exited" (destroyed) or "dead" (its process died without
 * destroying it) */
const char *top_state(const weft_stats_source *s);

/* "1d 02:03:04", "02:03:04" or "12.3s" */
void top_fmt_uptime(char *dst, size_t len, uint64_t ns);

/* A rate or count with a k/M/G suffix, in at most 6 characters. */
void top_fmt_si(char *dst, size_t len, double v);

/* Batch mode (batch.c): one plain-text snapshot of the model on stdout. */
void top_batch_print(const struct top_model *m, long index, long count,
                     double interval_s);
void top_batch_legend(void);

/* Interactive mode (screen.c): runs until q or count refreshes (0 =
 * forever). Returns the exit status. */
int top_screen_run(struct top_model *m, double interval_s, long count);

#endif
