/* weft statistics: what each worker did, read while the runtime runs. */
#ifndef WEFT_STATS_H
#define WEFT_STATS_H

#include <stdint.h>

#include "common.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One worker's counters since the runtime was created. The counters are
 * read without stopping the worker, so a snapshot is consistent per field,
 * not across fields. Times are nanoseconds of CLOCK_MONOTONIC and include
 * the work, search or park under way when they are read; a piece of work
 * that has just ended may be missing from busy_ns for an instant (never
 * counted twice), so a read right after weft_run() returns can lag. */
typedef struct weft_worker_stats {
    int32_t worker;     /* index in the runtime */
    int32_t cpu;        /* OS index of the PU it is pinned to, -1 if not */
    int32_t numa_node;  /* logical index of its NUMA node in the topology */
    int32_t reserved0;
    /* fork-join children made stealable: shared with thieves when they
     * asked, or when every earlier one was stolen. A child that stays
     * private to its worker and is synced by its parent (most, in a
     * balanced run) costs no bookkeeping and is not counted: counting
     * every spawn cost fib 30 % (see <weft/task.h>). */
    uint64_t published;
    uint64_t steals_tried;  /* steal attempts on a victim with work */
    uint64_t steals_won;    /* tasks taken from another worker's deque */
    uint64_t steals_near;   /* of those, from a worker on the same node */
    uint64_t roots;         /* tasks taken from the injection queue */
    uint64_t parks;         /* times the worker went to sleep */
    uint64_t busy_ns;       /* running tasks */
    uint64_t spin_ns;       /* looking for work, awake */
    uint64_t parked_ns;     /* asleep on the futex */
    uint64_t misuses;       /* syncs of frames that were not spawned */
    uint64_t jobs;          /* futures and graph nodes run (retries and
                               cancelled ones not counted) */
    uint64_t queued;        /* fork-join frames and jobs in its deques now */
    /* children run at their spawn (<weft/task.h>) that returned to find
     * a thief waiting; each made the worker keep more frames back */
    uint64_t starved;
    uint64_t reserved[5];
} weft_worker_stats;

/* Copy the counters of up to n workers into out[0..n-1]. Returns the number
 * copied (min(n, workers)), or -EINVAL (rt or out NULL, n < 0). Callable
 * from any thread, while the runtime runs. */
WEFT_API int weft_stats_workers(const weft_runtime *rt, weft_worker_stats *out,
                                int n);

/* Counters of a whole runtime. Fields of subsystems that do not exist yet
 * (actors, the object store, peers) stay 0. */
typedef struct weft_runtime_stats {
    uint64_t uptime_ns;  /* since weft_runtime_create() returned */
    int32_t workers;
    int32_t reserved0;
    uint64_t maps;       /* weft_map/for/for_range/map_reduce calls done */
    uint64_t map_items;  /* items those calls ran, failed ones included */
    uint64_t actors;          /* actors alive (spawned, not yet dead) */
    uint64_t mailbox_backlog; /* messages queued in mailboxes now */
    uint64_t store_used, store_capacity, store_objects, store_evictions,
             store_spills;
    uint64_t peers;
    /* actor messages accepted by weft_send/weft_ask, messages whose
     * receive ran, and actor restarts after failed messages */
    uint64_t messages_sent, messages_handled, actor_restarts;
    uint64_t reserved[9];
} weft_runtime_stats;

/* Fill *out with rt's counters. Returns 0, or -EINVAL (NULL argument).
 * Callable from any thread. */
WEFT_API int weft_stats_runtime(const weft_runtime *rt,
                                weft_runtime_stats *out);

/* Statistics published for other processes.
 *
 * A runtime created with the environment variable WEFT_STATS set (to a
 * name, or to 1 for the program's name) publishes its counters in a
 * POSIX shared-memory segment, owner-only, rewritten every WEFT_STATS_MS
 * milliseconds (default 100) by a thread of its own; the workers do no
 * extra work. The segment goes when the runtime is destroyed, unless
 * WEFT_STATS_KEEP=1, which leaves the last snapshot for a reader to take
 * and remove (weft-scale does). A segment left by a process that died is
 * removed by the next weft_stats_list(), unless it was kept: then it goes
 * a minute after its last snapshot, so a reader can still take it. A
 * process counts as gone when no process of its pid has its start time
 * (a reused pid does not keep a dead one's segment alive). Readers in
 * another pid namespace than the publisher's cannot tell and never remove
 * its segment. Segments of format 2, which builds before format 3 left,
 * are never listed and are removed by the same rule; those of format 1
 * when they have not been refreshed for two minutes and their pid names
 * no process, or one that started after the segment was last written.
 * Nothing maps a segment: a process of the same user that truncates a
 * live one costs its readers and its publisher nothing but the snapshots
 * until the publisher's next write (which makes it whole again). Any
 * thread of any process of the same user may call the functions below;
 * segments of other users are refused. */
typedef struct weft_stats_source {
    char id[64];      /* what to pass to weft_stats_attach() */
    char name[64];    /* the WEFT_STATS name */
    int32_t pid;
    int32_t workers;
    int32_t alive;    /* its process runs and the runtime is not destroyed */
    int32_t exited;   /* the runtime was destroyed (a kept snapshot) */
    int32_t kept;     /* published with WEFT_STATS_KEEP=1 */
    int32_t reserved0;
    uint64_t created_unix_ns; /* CLOCK_REALTIME at creation */
    uint64_t age_ns;  /* since the last snapshot was written */
    uint64_t reserved[4];
} weft_stats_source;

typedef struct weft_stats_reader weft_stats_reader;

/* List the runtimes publishing on this machine into out[0..n-1], removing
 * stale segments on the way. Returns how many there are (may exceed n), or
 * -EINVAL / a negative errno from reading /dev/shm. */
WEFT_API int weft_stats_list(weft_stats_source *out, int n);

/* Attach to a published segment by id. On success *out owns a reader,
 * released with weft_stats_detach(). Its size and worker count are fixed
 * here: a segment changed afterwards cannot make a read overrun. Errors:
 * -EINVAL (bad id), -ENOENT (gone), -EACCES (another user's), -EPROTO (not
 * a weft segment or not a regular file, or another version), -ENOMEM. */
WEFT_API int weft_stats_attach(const char *id, weft_stats_reader **out);

/* One consistent snapshot: the source's description (src, may be NULL),
 * the runtime's counters (rs, may be NULL) and up to n workers' counters.
 * Returns the number of workers copied, -EINVAL, or -EAGAIN when no try
 * got a whole snapshot (the publisher kept writing, died in the middle
 * of a write, or the segment was cut short). */
WEFT_API int weft_stats_read(weft_stats_reader *r, weft_stats_source *src,
                             weft_runtime_stats *rs, weft_worker_stats *w,
                             int n);

/* Release a reader and set *r to NULL. NULL is a no-op. */
WEFT_API void weft_stats_detach(weft_stats_reader **r);

/* Remove a published segment (a kept snapshot, once read). Returns 0,
 * -EINVAL or a negative errno (-ENOENT when already gone). */
WEFT_API int weft_stats_remove(const char *id);

#ifdef __cplusplus
}
#endif

#endif
