/* Publishing a runtime's statistics in POSIX shared memory (WEFT_STATS),
 * and reading what any process on the machine published (weft-top,
 * weft-scale).
 *
 * Each publishing runtime owns one segment, /weft-PID-N, owner-only:
 * a header, then one weft_worker_stats per worker. A publisher thread
 * rewrites it every WEFT_STATS_MS (default 100 ms), so the workers
 * themselves pay nothing: their counters are the ones
 * weft_stats_workers() reads anyway.
 *
 * Nobody maps a segment: the publisher writes each snapshot whole with
 * one pwrite() and readers take it with one pread(). A mapping dies of
 * SIGBUS at its first access past the file's end, so any process of the
 * same user that truncated a live segment killed its publisher (the
 * user's program) and every reader (format 2 mapped it and copied under
 * a sequence lock); a pwrite() past the end grows the file back, a
 * pread() there is short, and neither raises a signal. pread() and
 * pwrite() are not atomic to each other, so each snapshot carries a
 * check, a hash of its payload: a reader retries while its copy is
 * short or fails the check. At destroy the runtime
 * writes a last snapshot, marks the segment exited and unlinks it, unless
 * WEFT_STATS_KEEP=1 (weft-scale reads a finished program's statistics and
 * removes the segment itself). A segment whose process is gone is removed
 * by the next weft_stats_list(): gone means no process of that pid with
 * the start time the segment records (a pid alone may have been reused),
 * judged only by readers in the publisher's pid namespace (in another,
 * the pid names some other process or none). Segments of format versions
 * 1 and 2, which older builds left, are removed too when their owner is
 * provably gone (see old_reap).
 *
 * Readers trust nothing in a segment past what attach checked: its size
 * and worker count are fixed then, so a segment rewritten under them
 * (another program of the same user) cannot make a read overrun; only
 * regular files of the reader's own user are attached, opened without
 * blocking (a FIFO named like a segment would hang the open). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h> /* shm_open; nothing is mapped */
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "internal.h"
#include "proc.h"

#define SEG_MAGIC 0x3153544154535457ull /* "WTSTATS1" */
#define SEG_VERSION 3
#define V2_VERSION 2 /* format 3's layout, written under a sequence lock */
#define SEG_PREFIX "weft-"
#define DEFAULT_MS 100
/* a kept segment of a dead process that nobody read for this long is
 * stale too */
#define KEEP_GRACE_NS (60ull * 1000000000ull)

enum { SEG_RUNNING = 1, SEG_EXITED = 2 };

/* The payload after check is hashed in 64-bit words (payload_check),
 * hence all of it is 64-bit words. */
typedef struct seg_header {
    uint64_t magic;
    uint32_t version, header_size;
    uint32_t worker_size, workers;
    uint64_t check; /* payload_check of this snapshot's payload */
    /* payload */
    int64_t pid, state, keep;
    int64_t start_ticks; /* the process's start time (/proc stat) */
    uint64_t pidns;      /* inode of its pid namespace, 0: unknown */
    uint64_t created_unix_ns, updated_mono_ns;
    char name[64];
    weft_runtime_stats rt;
} seg_header;

struct weft__publisher {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    unsigned period_ms;
    uint32_t workers;
    char id[64];
    int fd;           /* the segment, written with pwrite() only */
    size_t size;
    seg_header *img;  /* the snapshot being written: header and workers */
};

static _Atomic unsigned seg_counter;

static uint64_t unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t seg_size(uint32_t workers)
{
    return sizeof(seg_header) + (size_t)workers * sizeof(weft_worker_stats);
}

/* A snapshot's check: a 64-bit hash of the payload of an image of
 * `workers` workers (the count from the writer's own record or the
 * reader's check at attach, never from the segment, which another
 * process could change). Each step is a bijection of the running hash
 * for a given word and of the word for a given hash, so copies that
 * differ in one word always differ in the check, and a copy torn between
 * two snapshots passes only by a 2^-64 chance. Not a defence against a
 * writer of the same user, who can write any snapshot he likes. */
static uint64_t payload_check(const seg_header *h, uint32_t workers)
{
    const unsigned char *p = (const unsigned char *)&h->pid;
    size_t n = (seg_size(workers) - (size_t)(p - (const unsigned char *)h))
               / 8;
    const uint64_t *w = (const uint64_t *)(const void *)p;
    uint64_t x = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        x = (x ^ w[i]) * 0xBF58476D1CE4E5B9ull;
        x ^= x >> 31;
    }
    return x;
}

/* ---- writing --------------------------------------------------------- */

/* The whole image at offset 0, or as much as the file system takes:
 * statistics are for watching, a failed write is tried again with the
 * next snapshot. */
static void seg_write(int fd, const void *img, size_t size)
{
    for (size_t done = 0; done < size;) {
        ssize_t k = pwrite(fd, (const char *)img + done, size - done,
                           (off_t)done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        done += (size_t)k;
    }
}

/* The current statistics of rt into the image (whose header and
 * identity seg_init wrote), then the image into the segment. The whole
 * header goes each time: a segment truncated or scribbled on by another
 * process is whole again after the next snapshot. */
static void publish_now(weft_runtime *rt, int state)
{
    weft__publisher *p = rt->publisher;
    seg_header *img = p->img;
    img->state = state;
    img->updated_mono_ns = weft__now_ns();
    weft_stats_runtime(rt, &img->rt);
    weft_stats_workers(rt, (weft_worker_stats *)(img + 1), (int)p->workers);
    img->check = payload_check(img, p->workers);
    seg_write(p->fd, img, p->size);
}

static void *publisher_main(void *arg)
{
    weft_runtime *rt = arg;
    weft__publisher *p = rt->publisher;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        publish_now(rt, SEG_RUNNING);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + p->period_ms * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* WEFT_STATS: unset, empty or "0" = off; "1" = publish under the
 * program's name; anything else = under that name. */
static bool stats_name(char *name, size_t len)
{
    const char *env = getenv("WEFT_STATS");
    if (!env || !*env || strcmp(env, "0") == 0)
        return false;
    if (strcmp(env, "1") != 0) {
        snprintf(name, len, "%s", env);
        return true;
    }
    FILE *f = fopen("/proc/self/comm", "r");
    if (!f || !fgets(name, (int)len, f))
        snprintf(name, len, "pid %d", (int)getpid());
    if (f)
        fclose(f);
    name[strcspn(name, "\n")] = 0;
    return true;
}

/* shm_open's name for a segment id. */
enum { PATH_MAX_LEN = 80 };
static void seg_path(char path[PATH_MAX_LEN], const char *id)
{
    snprintf(path, PATH_MAX_LEN, "/%s", id);
}

static int seg_create(weft__publisher *p, uint32_t workers)
{
    char path[PATH_MAX_LEN];
    int fd = -1;
    /* A name taken is one a dead process of our pid left (its counter
     * started at 0 as ours did), or another pid namespace's: take the
     * next, rather than publish nothing for the runtime's whole life. */
    for (int tries = 0; fd < 0 && tries < 64; tries++) {
        snprintf(p->id, sizeof p->id, SEG_PREFIX "%d-%u", (int)getpid(),
                 atomic_fetch_add_explicit(&seg_counter, 1,
                                           memory_order_relaxed));
        seg_path(path, p->id);
        fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0 && errno != EEXIST)
            return -errno;
    }
    if (fd < 0)
        return -EEXIST;
    p->workers = workers;
    p->size = seg_size(workers);
    /* The pages are reserved now, so that a full /dev/shm fails the
     * runtime's start (logged) rather than every snapshot. glibc's
     * posix_fallocate writes zeros where the file system cannot
     * allocate. */
    int rc = ftruncate(fd, (off_t)p->size) ? -errno : 0;
    if (!rc)
        rc = -posix_fallocate(fd, 0, (off_t)p->size);
    if (rc) {
        close(fd);
        shm_unlink(path);
        return rc;
    }
    p->fd = fd;
    return 0;
}

/* The start time of process pid (proc.h), -1 when /proc has no such
 * process. */
static int64_t proc_start(int64_t pid)
{
    uint64_t t;
    return weft__proc_stat((pid_t)pid, 0, NULL, &t) ? -1 : (int64_t)t;
}

/* The inode of the calling process's pid namespace, 0 if unknown. */
static uint64_t pid_ns(void)
{
    struct stat st;
    return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* The image's header and the publisher's identity, which no snapshot
 * changes. */
static void seg_init(seg_header *h, uint32_t workers, const char *name)
{
    h->magic = SEG_MAGIC;
    h->version = SEG_VERSION;
    h->header_size = sizeof *h;
    h->worker_size = sizeof(weft_worker_stats);
    h->workers = workers;
    h->pid = getpid();
    h->start_ticks = proc_start(h->pid);
    h->pidns = pid_ns();
    h->state = SEG_RUNNING;
    const char *keep = getenv("WEFT_STATS_KEEP");
    h->keep = keep && strcmp(keep, "1") == 0;
    h->created_unix_ns = unix_ns();
    snprintf(h->name, sizeof h->name, "%s", name);
}

static unsigned stats_period(void)
{
    const char *env = getenv("WEFT_STATS_MS");
    long v = env ? strtol(env, NULL, 10) : 0;
    return v >= 10 && v <= 60000 ? (unsigned)v : DEFAULT_MS;
}

static void publisher_free(weft__publisher *p)
{
    if (p->fd >= 0)
        close(p->fd);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    weft__free(p->img);
    weft__free(p);
}

/* Start publishing when WEFT_STATS asks for it. Failing to publish is
 * logged, never fatal: statistics are for watching, not for running. */
void weft__publish_start(weft_runtime *rt)
{
    char name[64];
    if (!stats_name(name, sizeof name))
        return;
    weft__publisher *p = weft__calloc(1, sizeof *p);
    if (!p) {
        weft__log("WEFT_STATS: cannot publish statistics (%s)",
                  strerror(ENOMEM));
        return;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->fd = -1;
    p->period_ms = stats_period();
    uint32_t n = (uint32_t)rt->nworkers;
    p->img = weft__calloc(1, seg_size(n));
    int rc = p->img ? seg_create(p, n) : -ENOMEM;
    if (rc == 0) {
        seg_init(p->img, n, name);
        rt->publisher = p;
        /* the magic comes with the first snapshot: a reader that reads
         * the zeroed file before finds no magic and skips it (-EPROTO),
         * one that reads the write half done fails the check */
        publish_now(rt, SEG_RUNNING);
        if (weft__thread_create(&p->thread, NULL, publisher_main, rt) == 0)
            return;
        rc = -EAGAIN;
        rt->publisher = NULL;
        weft_stats_remove(p->id);
    }
    weft__log("WEFT_STATS: cannot publish statistics (%s)", strerror(-rc));
    publisher_free(p);
}

/* Last snapshot, then the segment goes (or stays, with WEFT_STATS_KEEP). */
void weft__publish_stop(weft_runtime *rt)
{
    weft__publisher *p = rt->publisher;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    publish_now(rt, SEG_EXITED);
    if (!p->img->keep)
        weft_stats_remove(p->id);
    rt->publisher = NULL;
    publisher_free(p);
}

/* ---- reading --------------------------------------------------------- */

struct weft_stats_reader {
    int fd;
    size_t size;      /* of the image, from the worker count below */
    uint32_t workers; /* as checked at attach */
    char id[64];
    seg_header *copy; /* the last image read */
};

static bool id_ok(const char *id)
{
    if (!id || strncmp(id, SEG_PREFIX, strlen(SEG_PREFIX)) != 0 ||
        strlen(id) >= 64)
        return false;
    return strchr(id, '/') == NULL;
}

/* A segment of `size` bytes whose header h is believable as one of
 * format `version` (SEG_VERSION, or V2_VERSION, which has the same
 * layout): right magic, version and sizes. */
static int seg_check(const seg_header *h, size_t size, uint32_t version)
{
    if (size < sizeof *h || h->magic != SEG_MAGIC ||
        h->version != version || h->header_size != sizeof *h ||
        h->worker_size != sizeof(weft_worker_stats) ||
        h->workers == 0 || h->workers > WEFT_MAX_WORKERS ||
        size < seg_size(h->workers))
        return -EPROTO;
    return 0;
}

/* Open the segment at path to read: a regular file of our own user, at
 * least a header long (its size in *size). Returns the fd or -errno. */
static int seg_open(const char *path, size_t *size)
{
    /* O_NONBLOCK: opening a FIFO named like a segment would wait for a
     * writer forever */
    int fd = shm_open(path, O_RDONLY | O_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) ? -errno : 0;
    if (!rc && !S_ISREG(st.st_mode))
        rc = -EPROTO; /* not a segment */
    else if (!rc && st.st_uid != geteuid())
        rc = -EACCES; /* another user's: its content is not to be trusted */
    else if (!rc && (size_t)st.st_size < sizeof(seg_header))
        rc = -EPROTO;
    if (rc) {
        close(fd);
        return rc;
    }
    *size = (size_t)st.st_size;
    return fd;
}

/* Read size bytes at offset 0; true when all came. */
static bool read_whole(int fd, void *dst, size_t size)
{
    ssize_t k;
    while ((k = pread(fd, dst, size, 0)) < 0 && errno == EINTR)
        ;
    return k == (ssize_t)size;
}

int weft_stats_attach(const char *id, weft_stats_reader **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!id_ok(id))
        return -EINVAL;
    char path[PATH_MAX_LEN];
    seg_path(path, id);
    size_t file_size = 0;
    int fd = seg_open(path, &file_size);
    if (fd < 0)
        return fd;
    /* checked in a private copy, whose worker count the reader keeps: the
     * segment's may change after the check */
    seg_header hdr;
    int rc = read_whole(fd, &hdr, sizeof hdr)
                 ? seg_check(&hdr, file_size, SEG_VERSION) : -EPROTO;
    weft_stats_reader *r = rc ? NULL : weft__calloc(1, sizeof *r);
    seg_header *copy = r ? weft__calloc(1, seg_size(hdr.workers)) : NULL;
    if (!rc && !copy)
        rc = -ENOMEM;
    if (rc) {
        weft__free(r);
        close(fd);
        return rc;
    }
    r->copy = copy;
    r->fd = fd;
    r->workers = hdr.workers;
    r->size = seg_size(hdr.workers);
    snprintf(r->id, sizeof r->id, "%s", id);
    *out = r;
    return 0;
}

void weft_stats_detach(weft_stats_reader **rp)
{
    if (!rp || !*rp)
        return;
    close((*rp)->fd);
    weft__free((*rp)->copy);
    weft__free(*rp);
    *rp = NULL;
}

/* Copy one whole snapshot into r->copy: read the image until it is all
 * there and passes its check (a write in progress, or a segment
 * truncated until the publisher's next write, fails one or the other). */
static int seg_copy(weft_stats_reader *r)
{
    for (int tries = 0; tries < 1000; tries++) {
        /* a preempted publisher needs the CPU to finish its write */
        if (tries >= 64 && tries % 16 == 0)
            sched_yield();
        if (read_whole(r->fd, r->copy, r->size) &&
            r->copy->check == payload_check(r->copy, r->workers))
            return 0;
    }
    return -EAGAIN;
}

/* Whether pid, for which /proc has no stat, names no process: /proc
 * works (it has ours) or, where there is none, kill says so. */
static bool pid_absent(int64_t pid)
{
    if (proc_start(getpid()) >= 0)
        return true;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Whether the process that published a segment (its pid, start time and
 * pid namespace) may still run. A zombie not yet reaped still counts. */
static bool publisher_alive(int64_t pid, int64_t start, uint64_t pidns)
{
    if (pid <= 0)
        return false;
    uint64_t ns = pid_ns();
    if (pidns && ns && pidns != ns)
        return true; /* its pid names another process here: no way to tell */
    int64_t now = proc_start(pid);
    if (now >= 0)
        return now == start; /* another start time: the pid was reused */
    return !pid_absent(pid);
}

static void fill_source(weft_stats_source *s, const char *id,
                        const seg_header *img)
{
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    memcpy(s->name, img->name, sizeof s->name);
    s->name[sizeof s->name - 1] = 0;
    s->pid = (int32_t)img->pid;
    s->workers = (int32_t)img->workers;
    s->exited = img->state == SEG_EXITED;
    s->kept = img->keep != 0;
    s->alive = !s->exited &&
               publisher_alive(img->pid, img->start_ticks, img->pidns);
    s->created_unix_ns = img->created_unix_ns;
    s->age_ns = weft__now_ns() - img->updated_mono_ns;
}

int weft_stats_read(weft_stats_reader *r, weft_stats_source *src,
                    weft_runtime_stats *rs, weft_worker_stats *w, int n)
{
    if (!r || n < 0 || (n > 0 && !w))
        return -EINVAL;
    int rc = seg_copy(r);
    if (rc)
        return rc;
    seg_header *img = r->copy;
    img->workers = r->workers; /* as checked, whatever the file says now */
    if (src)
        fill_source(src, r->id, img);
    if (rs)
        *rs = img->rt;
    int k = n < (int)img->workers ? n : (int)img->workers;
    if (k > 0)
        memcpy(w, img + 1, (size_t)k * sizeof *w);
    return k;
}

int weft_stats_remove(const char *id)
{
    if (!id_ok(id))
        return -EINVAL;
    char path[PATH_MAX_LEN];
    seg_path(path, id);
    return shm_unlink(path) ? -errno : 0;
}

/* Stale: its process is gone, and it is not a kept one still waiting to
 * be read (kept snapshots of a process that died without destroying its
 * runtime are kept too: they are its last statistics). */
static bool stale(const weft_stats_source *s)
{
    if (s->alive)
        return false;
    return !s->kept || s->age_ns > KEEP_GRACE_NS;
}

/* ---- segments of format versions 1 and 2 ----------------------------- */

/* Version 1 (the builds before a73b054) recorded no start time and no pid
 * namespace, so its segments were "not ours" to every later reader and
 * those of crashed processes stayed in /dev/shm for good. A reader
 * removes one only when its owner is provably gone, judged by what v1
 * has: the pid, the refresh stamp and the file's mtime. */
#define V1_VERSION 1
/* A live v1 publisher rewrites updated_mono_ns every WEFT_STATS_MS, at
 * most 60 s: one not refreshed for twice that has no running publisher,
 * in whatever pid namespace (which v1 does not record). */
#define V1_SILENT_NS (120ull * 1000000000ull)
/* Slack between a process's start time (clock ticks after boot, turned
 * into wall time) and a file's mtime (the wall clock's), for rounding. */
#define V1_CLOCK_SLACK_NS (2ull * 1000000000ull)

/* v1's header, as far as it is read here: the same prefix as version 2,
 * then the payload without start_ticks and pidns. */
typedef struct seg_v1 {
    uint64_t magic;
    uint32_t version, header_size;
    uint32_t worker_size, workers;
    uint64_t seq;
    int64_t pid, state, keep;
    uint64_t created_unix_ns, updated_mono_ns;
    char name[64];
} seg_v1;

/* A v1 segment, whole: the magic, the version and sizes that fit. */
static bool v1_shape(const seg_v1 *h, size_t size)
{
    return size >= sizeof *h && h->magic == SEG_MAGIC &&
           h->version == V1_VERSION && h->header_size >= sizeof *h &&
           h->worker_size > 0 && h->workers > 0 &&
           h->workers <= WEFT_MAX_WORKERS && h->header_size <= size &&
           (size - h->header_size) / h->worker_size >= h->workers;
}

/* A start time in clock ticks after boot (proc_start), in
 * CLOCK_REALTIME ns; 0 when unknown. */
static uint64_t ticks_unix_ns(int64_t ticks)
{
    long hz = sysconf(_SC_CLK_TCK);
    struct timespec boot;
    if (ticks < 0 || hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &boot))
        return 0;
    uint64_t since_boot = (uint64_t)boot.tv_sec * 1000000000ull +
                          (uint64_t)boot.tv_nsec;
    uint64_t now = unix_ns();
    if (since_boot > now)
        return 0;
    return now - since_boot +
           (uint64_t)ticks / (uint64_t)hz * 1000000000ull +
           (uint64_t)ticks % (uint64_t)hz * (1000000000ull / (uint64_t)hz);
}

/* Whether the v1 segment h (whose file was last changed at mtime_ns)
 * belongs to a process that is gone: silent for V1_SILENT_NS, and its
 * pid names no process here, or one that started after the file was
 * last written (the pid was reused). Any doubt keeps the segment. */
static bool v1_owner_gone(const seg_v1 *h, uint64_t mtime_ns)
{
    uint64_t now = weft__now_ns();
    if (h->pid <= 0 || h->updated_mono_ns > now ||
        now - h->updated_mono_ns < V1_SILENT_NS)
        return false;
    int64_t ticks = proc_start(h->pid);
    if (ticks < 0)
        return pid_absent(h->pid);
    uint64_t started = ticks_unix_ns(ticks);
    return started && started > mtime_ns + V1_CLOCK_SLACK_NS;
}

/* Whether h, the header of a segment of `size` bytes, is one of format
 * 2 (format 3's layout under a sequence lock) whose process is gone, by
 * format 3's rule (stale). Its owner's identity never changed after its
 * first snapshot, and a dead owner writes nothing, so a header read
 * without the lock tells. */
static bool v2_gone(const char *id, const seg_header *h, size_t size)
{
    if (seg_check(h, size, V2_VERSION))
        return false;
    weft_stats_source s;
    fill_source(&s, id, h);
    return stale(&s);
}

/* Removes segment id if it is one of format 1 or 2 (builds before this
 * one) whose process is gone (seg_open: a regular file of our own user).
 * The name is unlinked only while it still names the file that was
 * judged. */
static void old_reap(const char *id)
{
    char file[PATH_MAX_LEN + 16]; /* id_ok: ids are under 64 bytes */
    snprintf(file, sizeof file, "/dev/shm/%.63s", id);
    const char *path = file + strlen("/dev/shm"); /* shm_open's name */
    struct stat before, now;
    if (stat(file, &before) != 0)
        return;
    size_t size = 0;
    int fd = seg_open(path, &size);
    if (fd < 0)
        return;
    union { seg_v1 v1; seg_header v2; } h; /* size >= sizeof h.v2 */
    bool read = read_whole(fd, &h, sizeof h.v2);
    close(fd);
    uint64_t mtime = (uint64_t)before.st_mtim.tv_sec * 1000000000ull +
                     (uint64_t)before.st_mtim.tv_nsec;
    bool gone = read && (v1_shape(&h.v1, size)
                             ? v1_owner_gone(&h.v1, mtime)
                             : v2_gone(id, &h.v2, size));
    if (gone && stat(file, &now) == 0 && now.st_ino == before.st_ino &&
        now.st_dev == before.st_dev &&
        now.st_mtim.tv_sec == before.st_mtim.tv_sec &&
        now.st_mtim.tv_nsec == before.st_mtim.tv_nsec)
        weft_stats_remove(id);
}

/* Look at one /dev/shm entry; true when it is a live segment (in *s). */
static bool probe(const char *id, weft_stats_source *s)
{
    weft_stats_reader *r;
    int rc = weft_stats_attach(id, &r);
    if (rc == -EPROTO)
        old_reap(id); /* not ours, or half-made, unless an old one */
    if (rc)
        return false;
    rc = weft_stats_read(r, s, NULL, NULL, 0);
    bool gone = rc >= 0 && stale(s);
    if (rc == -EAGAIN) {
        /* a publisher that died in the middle of a write leaves a
         * snapshot that fails its check for good; who it was, in the
         * header written with the first snapshot, still tells, when the
         * last copy got that far (not from a file truncated to less) */
        const seg_header *h = r->copy;
        gone = h->magic == SEG_MAGIC && h->version == SEG_VERSION &&
               !publisher_alive(h->pid, h->start_ticks, h->pidns);
    }
    weft_stats_detach(&r);
    if (gone)
        weft_stats_remove(id);
    return rc >= 0 && !gone;
}

int weft_stats_list(weft_stats_source *out, int n)
{
    if (n < 0 || (n > 0 && !out))
        return -EINVAL;
    DIR *d = opendir("/dev/shm");
    if (!d)
        return -errno;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        weft_stats_source s;
        if (!id_ok(e->d_name) || !probe(e->d_name, &s))
            continue;
        if (found < n)
            out[found] = s;
        found++;
    }
    closedir(d);
    return found;
}
