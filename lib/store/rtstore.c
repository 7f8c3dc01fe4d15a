/* A runtime's object store (weft_runtime_store, weft_runtime_set_store):
 * hung on the runtime's WEFT__EXT_STORE slot, so lib/core knows neither
 * its type nor the store's; the slot's stats hook fills the store fields
 * of weft_stats_runtime(). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "st.h"
#include "st_rt.h"

/* Opening a store reserves and faults in all of its memory, which costs
 * the first isolated map about a millisecond per 1-2 MiB: 128 MiB holds a
 * 64 MiB ctx (what isolated maps accept) and a 32 MiB window. */
#define RT_STORE_DEFAULT (128ull << 20)
#define RT_STORE_MIN (64ull << 10)

typedef struct rt_store {
    weft_store *st;
    bool owned; /* opened here: closed and unlinked at destroy */
} rt_store;

/* distinguishes the stores of several runtimes of one process */
static _Atomic uint32_t rt_store_seq;

static void rt_store_free(weft_runtime *rt, void *ext)
{
    (void)rt;
    rt_store *x = ext;
    if (x->owned) {
        char name[WEFT_STORE_NAME_MAX + 1];
        snprintf(name, sizeof name, "%s", x->st->name);
        weft_store_close(x->st);
        weft_store_unlink(name, NULL);
    }
    weft__free(x);
}

static void rt_store_stats(void *ext, weft_runtime_stats *out)
{
    rt_store *x = ext;
    weft_store_stats s;
    if (weft_store_stats_get(x->st, &s))
        return;
    out->store_used = s.used;
    out->store_capacity = s.capacity;
    out->store_objects = s.objects + s.spilled;
    out->store_evictions = s.evictions;
    out->store_spills = s.spills;
}

/* 128 MiB, or a quarter of /dev/shm's free space when that is less: the
 * store reserves its memory when opened, so it must not take all of it. */
static uint64_t default_capacity(void)
{
    struct statvfs v;
    uint64_t cap = RT_STORE_DEFAULT;
    if (statvfs("/dev/shm", &v) == 0) {
        uint64_t quarter = (uint64_t)v.f_bavail * v.f_frsize / 4;
        if (quarter < cap)
            cap = quarter > RT_STORE_MIN ? quarter : RT_STORE_MIN;
    }
    return cap;
}

/* ---- stores left by dead processes
 *
 * A process that dies without weft_runtime_destroy() (SIGKILL, a crash,
 * _exit) leaves its runtime's store in /dev/shm, and with it every page
 * its isolated maps touched: up to the whole capacity of memory, until
 * the machine restarts (a test suite killed a few times had left 2 GiB).
 * Nobody else would remove it, so each new private store first removes
 * those of this user that are provably abandoned. */

/* Seconds a store must have been left alone before it may be judged: a
 * store being created has its name before its creator holds a slot. */
#define RT_STALE_AGE 60

/* The runtime stores' names: "weft-rt-PID-N", made by open_private and
 * read back by the sweep. */
#define RT_NAME_FMT "weft-rt-%d-%u"

/* Whether "weft-rt-PID-N" names a store another process made (*pid). */
static bool rt_name(const char *name, pid_t *pid)
{
    int p, len = 0;
    unsigned seq;
    if (sscanf(name, RT_NAME_FMT "%n", &p, &seq, &len) != 2 ||
        name[len] != 0 || p <= 0)
        return false;
    char again[64]; /* the canonical spelling only: no "+5", no "007" */
    snprintf(again, sizeof again, RT_NAME_FMT, p, seq);
    *pid = p;
    return strcmp(again, name) == 0 && p != getpid();
}

/* Whether the file fd is abandoned: a regular file of ours, untouched for
 * RT_STALE_AGE, on which no process holds a lock. Every client of a
 * store holds an OFD lock on its slot for as long as it is attached
 * (segment.c, slot_lock), in whatever pid namespace it runs, so no lock
 * means no client. Without OFD locks nothing is judged abandoned. */
static bool rt_abandoned(int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
        sb.st_uid != geteuid() ||
        time(NULL) - sb.st_mtime < RT_STALE_AGE)
        return false;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                       .l_start = 0, .l_len = 0};
    return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_UNLCK;
}

/* Removes name if its creator (pid) is gone and the store is abandoned.
 * The pid test is only a cheap first filter (a reused pid keeps a dead
 * store, which is safe); the lock decides. */
static void rt_sweep_one(int dirfd, const char *name, pid_t pid)
{
    if (kill(pid, 0) == 0 || errno != ESRCH)
        return;
    int fd = openat(dirfd, name,
                    O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    if (rt_abandoned(fd))
        weft_store_unlink(name, NULL);
    close(fd);
}

static void rt_sweep(void)
{
    DIR *d = opendir("/dev/shm");
    if (!d)
        return;
    struct dirent *e;
    pid_t pid;
    while ((e = readdir(d)))
        if (rt_name(e->d_name, &pid))
            rt_sweep_one(dirfd(d), e->d_name, pid);
    closedir(d);
}

static int open_private(weft_runtime *rt, weft_store **out)
{
    rt_sweep();
    weft_store_opts o;
    weft_store_opts_default(&o);
    o.capacity = rt->store_capacity ? rt->store_capacity
                                    : default_capacity();
    int clients = rt->nworkers + 16; /* the isolated map's processes */
    o.max_clients = clients < 64 ? 64 : clients > 1024 ? 1024
                                                        : (uint32_t)clients;
    o.mode = 0600;
    /* lazy: the runtime pays page faults where objects go, not a fault-in
     * of the whole capacity at the first use */
    o.flags = WEFT_STORE_OPEN_CREATE | WEFT_STORE_OPEN_LAZY;
    char name[64];
    snprintf(name, sizeof name, RT_NAME_FMT, (int)getpid(),
             atomic_fetch_add_explicit(&rt_store_seq, 1,
                                       memory_order_relaxed));
    int rc = weft_store_open(name, &o, out);
    if (rc == -EEXIST) {
        /* left by a dead process that had our pid: nobody else makes
         * names with our pid, so it is stale */
        weft_store_unlink(name, NULL);
        rc = weft_store_open(name, &o, out);
    }
    return rc;
}

static int make_own(weft_runtime *rt, void *arg, void **ext)
{
    (void)arg;
    rt_store *x = weft__calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    int rc = open_private(rt, &x->st);
    if (rc)
        goto fail;
    x->owned = true;
    *ext = x;
    return 0;
fail:
    weft__free(x);
    return rc;
}

static int make_attached(weft_runtime *rt, void *arg, void **ext)
{
    (void)rt;
    rt_store *x = weft__calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    x->st = arg;
    *ext = x;
    return 0;
}

int weft_runtime_store(weft_runtime *rt, weft_store **out)
{
    if (!rt || !out)
        return -EINVAL;
    *out = NULL;
    /* a forked child: the parent's handle is not the child's to use, and
     * a store opened here for the parent's runtime would be nobody's */
    if (weft__foreign(rt))
        return -ENOTSUP;
    void *e;
    int rc = weft__ext_make(rt, WEFT__EXT_STORE, make_own, NULL,
                            rt_store_free, rt_store_stats, &e);
    *out = rc ? NULL : ((rt_store *)e)->st;
    return rc;
}

int weft_runtime_set_store(weft_runtime *rt, weft_store *st)
{
    if (!rt || !st)
        return -EINVAL;
    if (weft__foreign(rt))
        return -ENOTSUP;
    void *e;
    int rc = weft__ext_make(rt, WEFT__EXT_STORE, make_attached, st,
                            rt_store_free, rt_store_stats, &e);
    if (rc)
        return rc;
    return ((rt_store *)e)->st == st ? 0 : -EEXIST;
}

/* ---- for lib/map (st_rt.h) ---- */

const char *weft__store_name(const weft_store *st)
{
    return st->name;
}

int weft__store_off(const weft_store *st, const void *p, size_t len,
                    uint64_t *off)
{
    const uint8_t *b = p;
    uint64_t end = (uint64_t)(st->data - st->base) + st->capacity;
    if (b < st->data || (uint64_t)(b - st->base) > end ||
        len > end - (uint64_t)(b - st->base))
        return -EINVAL;
    *off = (uint64_t)(b - st->base);
    return 0;
}

void *weft__store_at(const weft_store *st, uint64_t off, size_t len)
{
    uint64_t lo = (uint64_t)(st->data - st->base);
    uint64_t end = lo + st->capacity;
    if (off < lo || off > end || len > end - off)
        return NULL;
    return st->base + off;
}
