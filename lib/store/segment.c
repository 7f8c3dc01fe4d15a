/* The segment: creating, validating and mapping it; client slots and
 * their liveness; the robust lock and the repair after a death inside it;
 * reclaiming dead clients. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "st.h"

#define SHM_DIR "/dev/shm/"
#define PAGE 4096u

void (*weft__store_hook)(const char *point);

static uint64_t up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

/* ---- layout */

typedef struct layout {
    uint64_t hdr, clients, refs, descs, index, data, total;
    uint32_t stride, slots;
} layout;

static void plan(layout *l, uint64_t cap, uint32_t objs, uint32_t clients)
{
    l->hdr = up(sizeof(st_hdr), PAGE);
    l->stride = (uint32_t)up(objs, 32);
    l->slots = 1;
    while (l->slots < 2 * objs)
        l->slots <<= 1;
    l->clients = l->hdr;
    l->refs = up(l->clients + (uint64_t)clients * sizeof(st_client), PAGE);
    l->descs = up(l->refs + (uint64_t)clients * l->stride * 2, PAGE);
    l->index = up(l->descs + (uint64_t)objs * sizeof(st_desc), PAGE);
    l->data = up(l->index + (uint64_t)l->slots * 4, PAGE);
    l->total = up(l->data + cap, PAGE);
}

static int name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > WEFT_STORE_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int weft_store_opts_default(weft_store_opts *o)
{
    if (!o)
        return -EINVAL;
    memset(o, 0, sizeof *o);
    o->capacity = 64u << 20;
    o->mode = 0600;
    return 0;
}

static int opts_resolve(const weft_store_opts *in, weft_store_opts *o)
{
    if (in)
        *o = *in;
    else
        weft_store_opts_default(o);
    if (o->capacity < (64u << 10) || o->capacity > (1ull << 46) ||
        o->max_objects > (1u << 24) || o->max_clients > 1024 ||
        (o->mode & ~0777u))
        return -EINVAL;
    o->capacity &= ~(uint64_t)(ST_ALIGN - 1);
    if (o->max_objects == 0) {
        uint64_t n = o->capacity / 4096;
        o->max_objects = n < 1024 ? 1024 : n > (1u << 20) ? 1u << 20
                                                         : (uint32_t)n;
    }
    if (o->max_clients == 0)
        o->max_clients = 64;
    return 0;
}

/* ---- mapping */

static void bind_layout(weft_store *st, uint8_t *base, size_t size)
{
    st->base = base;
    st->map_size = size;
    st->h = (st_hdr *)base;
    st->clients = (st_client *)(base + st->h->off_clients);
    st->refs = (_Atomic uint16_t *)(base + st->h->off_refs);
    st->descs = (st_desc *)(base + st->h->off_descs);
    st->index = (_Atomic uint32_t *)(base + st->h->off_index);
    st->data = base + st->h->off_data;
    st->capacity = st->h->capacity;
    st->max_objects = st->h->max_objects;
    st->max_clients = st->h->max_clients;
    st->index_mask = st->h->index_slots - 1;
    st->refs_stride = st->h->refs_stride;
}

static int map_fd(int fd, size_t size, unsigned flags, uint8_t **base)
{
    int mf = MAP_SHARED | ((flags & WEFT_STORE_OPEN_LAZY) ? 0 : MAP_POPULATE);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, mf, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    *base = p;
    return 0;
}

static int init_lock(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc)
        return -rc;
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (!rc)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (!rc)
        rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return -rc;
}

/* A random 64-bit id for a new segment (st_hdr.instance); without
 * getrandom, one from the pid, the time and a counter, unique enough to
 * keep two stores of one name apart. */
static uint64_t new_instance(void)
{
    static _Atomic uint64_t seq;
    uint64_t v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return ((uint64_t)getpid() << 40) ^ (uint64_t)t.tv_sec * 1000000000u ^
           (uint64_t)t.tv_nsec ^ (atomic_fetch_add(&seq, 1) << 20);
}

/* Fills a fresh (zeroed) segment; magic last, though nobody can see the
 * segment before it is linked under its name. */
static int init_segment(weft_store *st, const layout *l,
                        const weft_store_opts *o)
{
    st_hdr *h = st->h;
    h->version = ST_VERSION;
    h->hdr_size = sizeof(st_hdr);
    h->total_size = l->total;
    h->capacity = o->capacity;
    h->max_objects = o->max_objects;
    h->max_clients = o->max_clients;
    h->index_slots = l->slots;
    h->refs_stride = l->stride;
    h->off_clients = l->clients;
    h->off_refs = l->refs;
    h->off_descs = l->descs;
    h->off_index = l->index;
    h->off_data = l->data;
    h->instance = new_instance();
    int rc = init_lock(&h->lock);
    if (rc)
        return rc;
    bind_layout(st, st->base, st->map_size);
    st_heap_init(st);
    st_rebuild_lists(st);
    h->magic = ST_MAGIC;
    return 0;
}

static int room_in_shm(uint64_t total)
{
    struct statvfs v;
    if (statvfs(SHM_DIR, &v) != 0)
        return 0; /* unknown: posix_fallocate decides */
    return (uint64_t)v.f_bavail * v.f_frsize >= total ? 0 : -ENOSPC;
}

/* No unnamed file here (create_in): make a named one instead. */
#define NO_UNNAMED (-ENOTNAM)

/* A new file in /dev/shm for the segment: unnamed (O_TMPFILE) where the
 * file system has those, so that a process killed before the link leaves
 * nothing behind (a named one stays, fallocated, until someone removes
 * it by hand); else under the hidden name tmp. */
static int open_new(bool unnamed, const char *tmp, mode_t mode)
{
    int fd = unnamed ? open(SHM_DIR, O_RDWR | O_TMPFILE | O_CLOEXEC, mode)
                     : open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
                                     O_NOFOLLOW, mode);
    if (fd >= 0)
        return fd;
    return unnamed && errno != EACCES && errno != ENOSPC ? NO_UNNAMED
                                                          : -errno;
}

/* Gives the new file the store's name; -EEXIST when it has one already.
 * An unnamed file is linked through /proc (linkat with AT_EMPTY_PATH
 * would need CAP_DAC_READ_SEARCH). */
static int link_new(int fd, bool unnamed, const char *tmp, const char *path)
{
    if (!unnamed)
        return link(tmp, path) == 0 ? 0 : -errno;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    return errno == EEXIST ? -EEXIST : NO_UNNAMED; /* no /proc here */
}

/* Creates the segment in a new file (create_segment), reserves its
 * memory, initialises it, then links it under `name` (link fails with
 * EEXIST when another process won the race: the caller then attaches). */
static int create_in(weft_store *st, const weft_store_opts *o, bool unnamed)
{
    static _Atomic unsigned seq;
    layout l;
    plan(&l, o->capacity, o->max_objects, o->max_clients);
    int rc = room_in_shm(l.total);
    if (rc)
        return rc;
    char tmp[64], path[sizeof SHM_DIR + WEFT_STORE_NAME_MAX];
    snprintf(tmp, sizeof tmp, SHM_DIR ".weft-store-%d-%u-%lx", (int)getpid(),
             atomic_fetch_add(&seq, 1), (long)time(NULL));
    snprintf(path, sizeof path, SHM_DIR "%s", st->name);
    int fd = open_new(unnamed, tmp, o->mode);
    if (fd < 0)
        return fd;
    uint8_t *base = NULL;
    if (fchmod(fd, o->mode) != 0 || ftruncate(fd, (off_t)l.total) != 0) {
        rc = -errno;
        goto fail;
    }
    unsigned mflags = o->flags;
    rc = -posix_fallocate(fd, 0, (off_t)l.total);
    if (rc == -EOPNOTSUPP || rc == -EINVAL) {
        rc = 0; /* no fallocate here: MAP_POPULATE below touches every page */
        mflags &= ~WEFT_STORE_OPEN_LAZY;
    }
    if (rc)
        goto fail;
    ST_POINT("create:reserved");
    /* reserved by fallocate: LAZY may skip the pre-fault, as at attach */
    rc = map_fd(fd, l.total, mflags, &base);
    if (rc)
        goto fail;
    st->base = base;
    st->map_size = l.total;
    st->h = (st_hdr *)base;
    rc = init_segment(st, &l, o);
    if (rc)
        goto fail;
    rc = link_new(fd, unnamed, tmp, path);
    if (rc)
        goto fail;
    if (!unnamed)
        unlink(tmp);
    st->fd = fd; /* kept: the client's lock is on it */
    return 0;
fail:
    if (base)
        munmap(base, l.total);
    st->base = NULL;
    if (!unnamed)
        unlink(tmp);
    close(fd);
    return rc;
}

/* In an unnamed file where the system allows, else a named one. */
static int create_segment(weft_store *st, const weft_store_opts *o)
{
    int rc = create_in(st, o, true);
    return rc == NO_UNNAMED ? create_in(st, o, false) : rc;
}

/* Validates a header against the layout its own sizes imply: any field
 * out of place means garbage (or another version), -EPROTO. */
static int header_ok(const st_hdr *h, uint64_t file_size)
{
    if (h->magic != ST_MAGIC || h->version != ST_VERSION ||
        h->hdr_size != sizeof(st_hdr))
        return 0;
    if (h->max_objects == 0 || h->max_objects > (1u << 24) ||
        h->max_clients == 0 || h->max_clients > 1024 ||
        h->capacity < (64u << 10) || h->capacity > (1ull << 46) ||
        h->capacity % ST_ALIGN)
        return 0;
    layout l;
    plan(&l, h->capacity, h->max_objects, h->max_clients);
    return h->total_size == l.total && file_size >= l.total &&
           h->index_slots == l.slots && h->refs_stride == l.stride &&
           h->off_clients == l.clients && h->off_refs == l.refs &&
           h->off_descs == l.descs && h->off_index == l.index &&
           h->off_data == l.data;
}

static int attach_segment(weft_store *st, int fd, unsigned flags)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return -errno;
    if ((uint64_t)sb.st_size < sizeof(st_hdr))
        return -EPROTO;
    void *hp = mmap(NULL, sizeof(st_hdr), PROT_READ, MAP_SHARED, fd, 0);
    if (hp == MAP_FAILED)
        return -errno;
    int ok = header_ok(hp, (uint64_t)sb.st_size);
    uint64_t total = ((st_hdr *)hp)->total_size;
    munmap(hp, sizeof(st_hdr));
    if (!ok)
        return -EPROTO;
    uint8_t *base = NULL;
    int rc = map_fd(fd, total, flags, &base);
    if (rc)
        return rc;
    bind_layout(st, base, total);
    if (!header_ok(st->h, (uint64_t)sb.st_size)) { /* changed under us */
        munmap(base, total);
        st->base = NULL;
        return -EPROTO;
    }
    return 0;
}

/* ---- liveness */

/* The start time of pid (clock ticks after boot) and its state, from
 * /proc/PID/stat (proc.h); 0 when unreadable. */
static uint64_t proc_start(pid_t pid, char *state)
{
    uint64_t t;
    return weft__proc_stat(pid, 0, state, &t) ? 0 : t;
}

/* Some thread of pid other than a zombie: the process lives even when its
 * main thread (whose state /proc/PID/stat shows) has called
 * pthread_exit(). 1 when one is found, or when it cannot be told. */
static int any_thread_alive(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (!dir)
        return errno != ENOENT;
    int alive = 0;
    struct dirent *e;
    while (!alive && (e = readdir(dir))) {
        long tid = strtol(e->d_name, NULL, 10);
        if (tid <= 0)
            continue;
        char state = 'X'; /* unreadable: the thread is gone */
        if (weft__proc_stat(pid, (pid_t)tid, &state, NULL) == -EPROTO)
            state = '?'; /* cannot tell: counts as alive */
        alive = state != 'Z' && state != 'X';
    }
    closedir(dir);
    return alive;
}

/* By pid, where the client holds no lock: dead when its pid is gone,
 * every thread of it a zombie, or the pid belongs to a process that
 * started at another time (pid reuse). Blind to pid namespaces (another
 * namespace's pid means another process here) and to exec (the pid
 * outlives the handle), which the lock sees. */
static int pid_dead(const st_client *c)
{
    pid_t pid = atomic_load_explicit(&c->pid, memory_order_relaxed);
    if (pid <= 0)
        return 1;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 1;
    char state = '?';
    uint64_t t = proc_start(pid, &state);
    if (t == 0)
        return 0; /* cannot tell (no /proc): assume alive */
    if (t != c->start_time || state == 'X')
        return 1;
    return state == 'Z' && !any_thread_alive(pid);
}

/* The client's lock on byte c of the segment file: an OFD lock, owned by
 * the open file description, which the kernel drops when the last
 * descriptor of it closes: at exit (whatever thread is left, whatever
 * the pid namespace) or exec (O_CLOEXEC), and which the client drops when
 * it closes. A forked child that keeps the inherited descriptor keeps
 * its parent alive to the store: a leak until the child goes, never a
 * reclaim under a live user. */
static int slot_lock(int fd, uint32_t c, short type, int cmd,
                     struct flock *out)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET,
                       .l_start = (off_t)c, .l_len = 1};
    int rc = fcntl(fd, cmd, &fl);
    if (out)
        *out = fl;
    return rc == 0 ? 0 : -errno;
}

/* Whether client slot c's process is gone: by its lock where it took
 * one, else by its pid. */
int st_client_dead(weft_store *st, uint32_t c)
{
    const st_client *cl = &st->clients[c];
    struct flock fl;
    if (atomic_load_explicit(&cl->locked, memory_order_relaxed) &&
        slot_lock(st->fd, c, F_WRLCK, F_OFD_GETLK, &fl) == 0)
        return fl.l_type == F_UNLCK;
    return pid_dead(cl);
}

/* ---- the lock */

/* The critical sections are short (a hash insert, a free-list pop), so a
 * contended lock is tried a few times before sleeping in the futex: the
 * sleep and the wake-up cost microseconds, the wait mostly less. The
 * pause between tries doubles (16 to 256 pauses): two processes creating
 * objects at full speed then hand the lock over less often, and every
 * hand-over moves the lock's, the header's and the allocator's lines
 * between their cores (create+seal from 2 processes on the 2-core VM:
 * 0.85 M/s per process with a fixed 16 pauses, 1.40 with the doubling;
 * a try after every pause: 0.76). A dead owner shows as EOWNERDEAD from
 * either call. */
static int lock_spin_then_block(pthread_mutex_t *m)
{
    for (int i = 0, pauses = 16; i < 24; i++) {
        int rc = pthread_mutex_trylock(m);
        if (rc != EBUSY)
            return rc;
        for (int k = 0; k < pauses; k++)
            weft__cpu_relax();
        if (pauses < 256)
            pauses *= 2;
    }
    return pthread_mutex_lock(m);
}

/* Under the lock: repairs if a death inside the lock left that to do
 * (st_hdr.repair_needed); 0, or the repair's error with the lock
 * released, the repair still owed to the next locker. */
static int repair_if_needed(weft_store *st)
{
    if (!atomic_load_explicit(&st->h->repair_needed, memory_order_relaxed))
        return 0;
    ST_POINT("repair");
    int rc = st_repair(st);
    if (rc) {
        pthread_mutex_unlock(&st->h->lock);
        return rc;
    }
    atomic_store_explicit(&st->h->repair_needed, 0, memory_order_relaxed);
    return 0;
}

int st_lock(weft_store *st)
{
    int rc = lock_spin_then_block(&st->h->lock);
    if (rc == EOWNERDEAD) {
        /* noted before the mutex is made usable again: from here on a
         * repair that fails, or whose process dies, is owed by whoever
         * takes the lock next */
        atomic_store_explicit(&st->h->repair_needed, 1,
                              memory_order_relaxed);
        pthread_mutex_consistent(&st->h->lock);
        rc = 0;
    }
    if (rc)
        return -rc;
    rc = repair_if_needed(st);
    if (rc)
        return rc;
    /* this client's seals, once enough wait for a batch (see st.h) */
    if (st->me < st->max_clients)
        st_link_pending(st, st->me, ST_PEND_MAX / 2);
    return 0;
}

void st_unlock(weft_store *st)
{
    pthread_mutex_unlock(&st->h->lock);
}

uint32_t st_refsum(weft_store *st, uint32_t d)
{
    uint32_t sum = 0;
    for (uint32_t c = 0; c < st->max_clients; c++)
        sum += atomic_load_explicit(st_ref(st, c, d), memory_order_seq_cst);
    return sum;
}

/* Under the lock: another client's slot whose process is gone. */
static int other_dead(weft_store *st, uint32_t c)
{
    st_client *cl = &st->clients[c];
    return atomic_load_explicit(&cl->state, memory_order_relaxed) ==
               ST_CLIENT_ALIVE && c != st->me && st_client_dead(st, c);
}

static void free_slot(weft_store *st, uint32_t c)
{
    st_client *cl = &st->clients[c];
    atomic_store_explicit(&cl->pid, 0, memory_order_relaxed);
    atomic_store_explicit(&cl->locked, 0, memory_order_relaxed);
    atomic_store_explicit(&cl->unlinked, 0, memory_order_relaxed);
    atomic_store_explicit(&cl->npend, 0, memory_order_relaxed);
    /* its seals and creates stay counted in the header's */
    ST_ADD(&st->h->seals, atomic_exchange_explicit(&cl->seals, 0,
                                                   memory_order_relaxed));
    ST_ADD(&st->h->creates, atomic_exchange_explicit(&cl->creates, 0,
                                                     memory_order_relaxed));
    atomic_store_explicit(&cl->state, ST_CLIENT_FREE, memory_order_release);
}

/* Under the lock: drops every reference client c held (release: the
 * reads it made of the objects happen before whatever reuses them) and
 * frees the objects it left unsealed. */
void st_reclaim_client(weft_store *st, uint32_t c)
{
    for (uint32_t d = 0; d < st->max_objects; d++) {
        _Atomic uint16_t *r = st_ref(st, c, d);
        if (atomic_load_explicit(r, memory_order_relaxed))
            atomic_store_explicit(r, 0, memory_order_release);
        st_desc *x = st_desc_at(st, d);
        if (atomic_load_explicit(&x->state, memory_order_relaxed) ==
                ST_CREATED && st_owner(x) == c)
            st_desc_free(st, d);
        else
            st_link_sealed(st, d); /* seals it left pending */
    }
    free_slot(st, c);
    ST_SUB(&st->h->clients, 1);
}

/* Under the lock: reclaims every dead client; returns how many. */
int st_reclaim_dead(weft_store *st)
{
    int n = 0;
    for (uint32_t c = 0; c < st->max_clients; c++) {
        if (!other_dead(st, c))
            continue;
        st_reclaim_client(st, c);
        ST_ADD(&st->h->reclaims, 1);
        n++;
    }
    return n;
}

/* Normalises one descriptor after a death inside the lock (see st.h):
 * half-made or half-freed -> free; a deletion not committed -> sealed;
 * unsealed by a client that is gone -> free. */
static void repair_desc(weft_store *st, uint32_t d)
{
    st_desc *x = st_desc_at(st, d);
    uint32_t g = atomic_load_explicit(&x->gen, memory_order_relaxed);
    uint32_t s = atomic_load_explicit(&x->state, memory_order_relaxed);
    if (g & 1) {
        atomic_store_explicit(&x->state, ST_FREE, memory_order_relaxed);
        atomic_store_explicit(&x->gen, g + 1, memory_order_release);
        return;
    }
    if (s == ST_DELETING)
        atomic_store_explicit(&x->state, ST_SEALED, memory_order_relaxed);
    else if (s == ST_CREATED &&
             (st_owner(x) >= st->max_clients ||
              atomic_load_explicit(&st->clients[st_owner(x)].state,
                                   memory_order_relaxed) != ST_CLIENT_ALIVE))
        st_desc_reset(st, d);
    else if (s == ST_SPILLED && !st_spilled_ok(st, x))
        st_desc_reset(st, d);
    else if (s != ST_FREE && s != ST_CREATED && s != ST_SEALED &&
             s != ST_SPILLED)
        st_desc_reset(st, d);
}

/* Under the lock, after its previous owner died holding it: every
 * derived structure may be half-updated, so it is all rebuilt from the
 * descriptors. The dead owner (and any other dead client) is reclaimed
 * first so that its unsealed objects go: its references and slot here
 * (not st_reclaim_client, whose frees touch the derived structures),
 * its objects by repair_desc, the counters by the rebuilds. Returns 0,
 * or -ENOMEM when the heap could not be rebuilt: then the rest is not
 * rebuilt either, and the caller leaves the repair owed (st_lock); every
 * step before is idempotent, so doing it all again is right. */
int st_repair(weft_store *st)
{
    for (uint32_t c = 0; c < st->max_clients; c++) {
        if (!other_dead(st, c))
            continue;
        for (uint32_t d = 0; d < st->max_objects; d++)
            atomic_store_explicit(st_ref(st, c, d), 0, memory_order_release);
        free_slot(st, c);
        ST_ADD(&st->h->reclaims, 1);
    }
    uint64_t alive = 0;
    for (uint32_t c = 0; c < st->max_clients; c++)
        alive += atomic_load_explicit(&st->clients[c].state,
                                      memory_order_relaxed) == ST_CLIENT_ALIVE;
    atomic_store_explicit(&st->h->clients, alive, memory_order_relaxed);
    for (uint32_t d = 0; d < st->max_objects; d++)
        repair_desc(st, d);
    int rc = st_heap_rebuild(st);
    if (rc)
        return rc;
    st_rebuild_lists(st); /* links every sealed object */
    for (uint32_t c = 0; c < st->max_clients; c++) {
        atomic_store_explicit(&st->clients[c].unlinked, 0,
                              memory_order_relaxed);
        st_link_pending(st, c, 1); /* empties the lists: all are linked */
    }
    st_index_rebuild(st);
    ST_ADD(&st->h->repairs, 1);
    return 0;
}

/* ---- clients */

/* Takes a free slot and its lock. A slot whose lock another descriptor
 * still holds (a client that closed and has not released it yet, or a
 * forked child's copy of a reclaimed client's) is passed over. */
static int take_slot(weft_store *st)
{
    for (uint32_t c = 0; c < st->max_clients; c++) {
        st_client *cl = &st->clients[c];
        if (atomic_load_explicit(&cl->state, memory_order_relaxed) !=
                ST_CLIENT_FREE)
            continue;
        int rc = slot_lock(st->fd, c, F_WRLCK, F_OFD_SETLK, NULL);
        if (rc == -EAGAIN || rc == -EACCES)
            continue;
        char state;
        for (uint32_t d = 0; d < st->max_objects; d++)
            atomic_store_explicit(st_ref(st, c, d), 0, memory_order_relaxed);
        cl->start_time = proc_start(getpid(), &state);
        atomic_store_explicit(&cl->pid, getpid(), memory_order_relaxed);
        atomic_store_explicit(&cl->locked, rc == 0, memory_order_relaxed);
        atomic_store_explicit(&cl->state, ST_CLIENT_ALIVE,
                              memory_order_release);
        ST_ADD(&st->h->clients, 1);
        return (int)c;
    }
    return -EUSERS;
}

/* Checks the whole segment once, then takes a client slot, reclaiming
 * the dead first: a store that fails the check is refused (-EPROTO). The
 * check comes first because a reclaim trusts the segment: it frees the
 * blocks of the dead clients' unsealed objects at the offsets their
 * descriptors give and links their seals, so a corrupt descriptor of a
 * dead client crashed the open (SIGSEGV) where the check would have
 * refused it. A sound segment stays sound through a reclaim (a locked
 * operation like any other), and the dead are no obstacle to the check:
 * what they leave outside the lock (references, unsealed objects, seals
 * not linked) is consistent, and a death inside it was repaired by
 * st_lock. */
static int join(weft_store *st)
{
    st->me = ST_NIL32;
    int rc = st_lock(st);
    if (rc)
        return rc;
    char why[160];
    if (st_check_locked(st, why, sizeof why) != 0) {
        st_unlock(st);
        return -EPROTO;
    }
    st_reclaim_dead(st);
    rc = take_slot(st);
    st_unlock(st);
    if (rc < 0)
        return rc;
    st->me = (uint32_t)rc;
    st->mine = st_ref(st, st->me, 0);
    st->pid = getpid();
    return 0;
}

static int open_or_create(weft_store *st, const weft_store_opts *o,
                          bool *created)
{
    char path[sizeof SHM_DIR + WEFT_STORE_NAME_MAX];
    snprintf(path, sizeof path, SHM_DIR "%s", st->name);
    for (int tries = 0; tries < 64; tries++) {
        int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            int rc = (o->flags & WEFT_STORE_OPEN_CREATE)
                         ? -EEXIST : attach_segment(st, fd, o->flags);
            if (rc == 0)
                st->fd = fd; /* kept: the client's lock is on it */
            else
                close(fd);
            return rc;
        }
        if (errno != ENOENT)
            return -errno;
        if (o->flags & WEFT_STORE_OPEN_EXISTING)
            return -ENOENT;
        int rc = create_segment(st, o);
        *created = rc == 0;
        if (rc != -EEXIST)
            return rc;
    }
    return -EAGAIN;
}

/* Removes the name of the store this call created, after a failure to
 * join it (another process may have attached meanwhile, and filled the
 * slots: it keeps its mapping), unless the name is another file by now. */
static void unlink_ours(weft_store *st)
{
    char path[sizeof SHM_DIR + WEFT_STORE_NAME_MAX];
    snprintf(path, sizeof path, SHM_DIR "%s", st->name);
    struct stat mine, now;
    if (fstat(st->fd, &mine) == 0 && stat(path, &now) == 0 &&
        mine.st_ino == now.st_ino && mine.st_dev == now.st_dev)
        unlink(path);
}

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = weft__malloc(n);
    return c ? memcpy(c, s, n) : NULL;
}

int weft_store_open(const char *name, const weft_store_opts *opts,
                    weft_store **out)
{
    weft_store_opts o;
    if (!out || !name_ok(name) || opts_resolve(opts, &o) != 0)
        return -EINVAL;
    weft_store *st = weft__calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    snprintf(st->name, sizeof st->name, "%s", name);
    st->fd = -1;
    pthread_mutex_init(&st->pend_mu, NULL);
    int rc = -ENOMEM;
    bool created = false;
    if (o.spill_dir && !(st->spill_dir = copy_string(o.spill_dir)))
        goto fail;
    rc = open_or_create(st, &o, &created);
    if (rc)
        goto fail;
    if (created)
        ST_POINT("open:created");
    rc = join(st);
    if (rc)
        goto fail;
    *out = st;
    return 0;
fail:
    if (created)
        unlink_ours(st);
    if (st->base)
        munmap(st->base, st->map_size);
    if (st->fd >= 0)
        close(st->fd); /* drops the slot's lock with it, if taken */
    weft__free(st->spill_dir);
    pthread_mutex_destroy(&st->pend_mu);
    weft__free(st);
    return rc;
}

int weft_store_close(weft_store *st)
{
    if (!st)
        return 0;
    int rc = st_lock(st);
    if (rc == 0) {
        st_reclaim_client(st, st->me);
        st_unlock(st);
    }
    /* after the slot is free (a process that saw the lock go could
     * otherwise reclaim it from under the reclaim above), and explicitly:
     * a forked child's copy of the descriptor would keep it */
    slot_lock(st->fd, st->me, F_UNLCK, F_OFD_SETLK, NULL);
    close(st->fd);
    st_spill_close(st);
    munmap(st->base, st->map_size);
    weft__free(st->spill_dir);
    pthread_mutex_destroy(&st->pend_mu);
    weft__free(st);
    return rc;
}

/* The instance id of the store at path (its spill files' names), read
 * before the name goes; 0 with *ok 0 when it is no weft store. */
static uint64_t instance_of(const char *path, int *ok)
{
    *ok = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    struct stat sb;
    uint64_t v = 0;
    if (fstat(fd, &sb) == 0 && (uint64_t)sb.st_size >= sizeof(st_hdr)) {
        void *hp = mmap(NULL, sizeof(st_hdr), PROT_READ, MAP_SHARED, fd, 0);
        if (hp != MAP_FAILED) {
            *ok = header_ok(hp, (uint64_t)sb.st_size);
            v = ((st_hdr *)hp)->instance;
            munmap(hp, sizeof(st_hdr));
        }
    }
    close(fd);
    return v;
}

int weft_store_unlink(const char *name, const char *spill_dir)
{
    if (!name_ok(name))
        return -EINVAL;
    char path[sizeof SHM_DIR + WEFT_STORE_NAME_MAX];
    snprintf(path, sizeof path, SHM_DIR "%s", name);
    int known = 0;
    uint64_t instance = spill_dir ? instance_of(path, &known) : 0;
    if (unlink(path) != 0)
        return -errno;
    for (uint32_t f = 0; known && f < ST_SPILL_FILES; f++) {
        char sp[4096];
        if (st_spill_path(spill_dir, name, instance, f, sp, sizeof sp) == 0)
            unlink(sp);
    }
    return 0;
}
