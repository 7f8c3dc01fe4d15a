/* weft-top batch mode: plain-text snapshots for scripts and tests, one
 * "kind key=value ..." line per runtime and per worker, so a script can
 * split on spaces and '=' (names with spaces are double-quoted). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "top.h"

void top_batch_legend(void)
{
    printf("# weft-top batch mode: a 'snapshot' line, then per runtime a "
           "'runtime' line and one 'worker' line per worker.\n"
           "# Rates are over window_s, the time between the runtime's last "
           "two snapshots (since its start in the first).\n"
           "# '-': a counter at 0 (a subsystem this runtime does not use: "
           "actors, its object store, peers).\n");
}

/* name="..." when it has spaces or quotes, name=... otherwise. */
static void print_name(const char *raw)
{
    char name[64];
    top_clean_name(name, sizeof name, raw);
    if (!*name || strpbrk(name, " \"=\\")) {
        fputs(" name=\"", stdout);
        for (const char *c = name; *c; c++)
            printf(*c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
        putchar('"');
        return;
    }
    printf(" name=%s", name);
}

/* key=value, or key=- for the counters of subsystems that report 0. */
static void print_count(const char *key, uint64_t v)
{
    if (v)
        printf(" %s=%llu", key, (unsigned long long)v);
    else
        printf(" %s=-", key);
}

static void print_subsystems(const struct top_runtime *r)
{
    const weft_runtime_stats *rs = &r->cur.rs;
    print_count("actors", rs->actors);
    print_count("mailbox_backlog", rs->mailbox_backlog);
    print_count("messages_sent", rs->messages_sent);
    print_count("messages_handled", rs->messages_handled);
    printf(" msgs_per_s=%.1f", top_msgs_s(r));
    print_count("actor_restarts", rs->actor_restarts);
    print_count("store_used", rs->store_used);
    print_count("store_capacity", rs->store_capacity);
    print_count("store_objects", rs->store_objects);
    print_count("store_evictions", rs->store_evictions);
    print_count("store_spills", rs->store_spills);
    print_count("peers", rs->peers);
}

static void print_runtime(const struct top_runtime *r)
{
    const struct top_snap *s = &r->cur;
    struct top_rates t;
    top_runtime_rates(r, &t);
    printf("runtime");
    print_name(s->src.name);
    printf(" pid=%d id=%s workers=%d state=%s uptime_s=%.3f window_s=%.3f"
           " util_pct=%.1f spin_pct=%.1f tasks=%llu tasks_per_s=%.1f"
           " steals=%llu steals_per_s=%.1f queued=%llu parks=%llu"
           " parks_per_s=%.1f maps=%llu maps_per_s=%.1f map_items=%llu"
           " items_per_s=%.1f",
           s->src.pid, r->shown, r->workers,
           top_state(&s->src),
           (double)s->rs.uptime_ns * 1e-9, t.window_s, 100 * t.util,
           100 * t.spin, (unsigned long long)t.tasks, t.tasks_s,
           (unsigned long long)t.steals, t.steals_s,
           (unsigned long long)t.queued, (unsigned long long)t.parks,
           t.parks_s, (unsigned long long)s->rs.maps, top_maps_s(r),
           (unsigned long long)s->rs.map_items, top_items_s(r));
    print_subsystems(r);
    putchar('\n');
}

static void print_worker(const struct top_runtime *r, int i)
{
    const weft_worker_stats *w = &r->cur.w[i];
    struct top_rates t;
    top_worker_rates(r, i, &t);
    printf("worker pid=%d id=%s index=%d cpu=%d node=%d util_pct=%.1f"
           " spin_pct=%.1f busy_ms=%.1f tasks=%llu tasks_per_s=%.1f"
           " steals=%llu steals_per_s=%.1f queued=%llu parks=%llu\n",
           r->cur.src.pid, r->shown, i, w->cpu, w->numa_node, 100 * t.util,
           100 * t.spin, (double)w->busy_ns * 1e-6,
           (unsigned long long)t.tasks, t.tasks_s,
           (unsigned long long)t.steals, t.steals_s,
           (unsigned long long)t.queued, (unsigned long long)t.parks);
}

void top_batch_print(const struct top_model *m, long index, long count,
                     double interval_s)
{
    char when[32] = "?";
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    printf("snapshot n=%ld", index);
    if (count > 0)
        printf(" of=%ld", count);
    printf(" time=%s interval_s=%.2f runtimes=%d\n", when, interval_s, m->n);
    for (int i = 0; i < m->n; i++) {
        print_runtime(m->rt[i]);
        for (int k = 0; k < m->rt[i]->workers; k++)
            print_worker(m->rt[i], k);
    }
    putchar('\n');
    fflush(stdout);
}
