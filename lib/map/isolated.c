/* Isolated mode of weft_map/weft_for: items run in forked worker processes,
 * so an item that crashes or hangs is reported instead of taking the
 * caller down.
 *
 * Per runtime there is one pool of processes, forked on first use and
 * reused. Parent and children share a control block per process (commands
 * in, results out, futex words), mapped before any fork, and the
 * runtime's object store (weft_runtime_store()), which every child opens
 * by name after its fork (a handle is its process's). Data goes through
 * the store, a window of items at a time:
 *
 *   ctx      one sealed object per call (when ctx_size is set): the copy
 *   inputs   one sealed object per window; the parent holds a reference
 *            until the window ends (so nothing evicts it), each child
 *            gets it for the length of a chunk, read-only
 *   outputs  one object per window that the parent creates and never
 *            seals: children write their items' outputs in place, found
 *            by the object's offset in the segment (the same in every
 *            mapping). Not one object per chunk that each child seals:
 *            the outputs of the items a child finished before one of its
 *            items crashed would die with its unsealed object, and those
 *            items would have to run twice.
 *
 * Objects are named by the parent's pid, a per-process call number, the
 * window and their kind, so several runtimes may share one store. A child
 * killed mid-chunk loses its references with its client slot (the store's
 * crash safety), which the parent reclaims before deleting the window's
 * inputs.
 *
 * The caller's thread is the dispatcher: it hands each idle process a
 * chunk of items, then sleeps in poll() on an eventfd (a chunk finished)
 * and one pidfd per process (it died). A process that dies has its
 * current item reported (or retried) and the rest of its chunk queued
 * again, and a fresh process takes its place. Chunks are sized so a
 * process spends about CHUNK_NS on one, which amortises the round trip
 * (a few microseconds) while keeping the tail short. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "map.h"
#include "st_rt.h"

#define WINDOW_MAX (64ull << 20)  /* inputs + outputs copied per window */
#define CTX_ALIGN 64u
#define CHUNK_NS 2000000ull       /* aim: 2 ms of items per chunk */
#define POLL_MS 50                /* re-check cancel and timeouts */
#define ORPHAN_CHECK_NS 1000000000ull
/* A process just forked has at least this long (or the time limit, when
 * longer) to make the first step of its first chunk: its start (the fork
 * of a large parent, opening the store, a sanitizer's set-up) is ours,
 * not the item's, and takes hundreds of ms under ThreadSanitizer; one
 * that never starts is still killed. */
#define START_NS 10000000000ull

enum { CMD_RUN = 1, CMD_EXIT = 2 };

/* Shared with one child. The parent writes the command fields, then bumps
 * cmd_seq (release; the child's acquire load pairs with it); the child
 * writes the result fields, then stores done_seq = cmd_seq (release; the
 * parent's acquire load pairs with it). prog and mark are read while the
 * child runs, for time limits and crash reports (see "progress"). */
typedef struct iso_ctl {
    alignas(WEFT__CACHELINE) _Atomic uint32_t cmd_seq;
    _Atomic uint32_t done_seq;
    int cmd;
    bool is_map, ctx_obj, in_obj, out_obj;
    uintptr_t fn, ctx;       /* ctx: the pointer, when not ctx_obj */
    weft_store_id ctx_id;    /* the call's ctx copy, when ctx_obj */
    weft_store_id in_id;     /* the window's inputs, when in_obj */
    uint64_t out_off;        /* the window's outputs in the segment */
    size_t out_size;
    size_t in_stride, out_stride, base; /* base: index of window item 0 */
    size_t lo, hi;
    /* results */
    size_t next;       /* items [lo, next) ran */
    size_t err_index;  /* valid when err != 0 */
    int err;
    uint64_t elapsed_ns;
    _Atomic uint64_t prog; /* steps of the chunk, PROG_* flags */
    _Atomic uint64_t mark; /* when the last step was made (ns) */
} iso_ctl;

/* Progress. A chunk is a row of steps: each item's start and end, counted
 * in prog from 0 (the parent resets it with the command), so an odd count
 * n says item lo + n / 2 runs and an even one that the n / 2 items from
 * lo ended; mark is the time of the last step, or of the command's
 * sending before the first. The time limit runs from mark (check_timeouts):
 * a process that holds a chunk is killed once it goes timeout_ms without
 * a step, whether inside an item or not (stuck after its fork, before its
 * first item, between items). The parent claims such a process by setting
 * PROG_KILLED in the very count it judged (a CAS), and a child whose next
 * step finds the flag makes no more (its SIGKILL is on the way): so the
 * item blamed is the one that really was running, or the next one when
 * none was, never one that started after the decision. PROG_REPORTED is
 * the child's last step, set before it reports the chunk: past it there
 * is nothing left to time. */
#define PROG_KILLED (1ull << 63)
#define PROG_REPORTED (1ull << 62)
#define PROG_COUNT (PROG_REPORTED - 1)

typedef struct iso_shared {
    _Atomic uint32_t stop; /* children stop between items */
    iso_ctl ctl[];
} iso_shared;

typedef struct iso_proc {
    pid_t pid;
    int pidfd;
    bool busy, timed_out;
    bool fresh; /* forked for its chunk, which has made no step yet */
    uint64_t killed_at; /* timed_out: the prog it was claimed at */
    size_t lo, hi;
    unsigned attempt;
} iso_proc;

typedef struct iso_range {
    size_t lo, hi;
    unsigned attempt;
} iso_range;

typedef struct iso_pool {
    pthread_mutex_t lock; /* one isolated map at a time per runtime */
    int nmax;
    pid_t parent;
    iso_proc *procs;
    iso_shared *sh;
    size_t sh_size;
    int evfd;
    /* the runtime's store (set under lock by the first call; a runtime's
     * store never changes once it has one) and its name, for children */
    weft_store *st;
    char store_name[WEFT_STORE_NAME_MAX + 1];
} iso_pool;

/* What one call is doing: the queue of ranges still to run, counters. */
typedef struct iso_call {
    map_run *m;
    iso_pool *p;
    int nprocs;
    size_t win_lo, win_hi, next, chunk;
    iso_range *pending;
    size_t npending, cap_pending;
    size_t ok, failed;
    bool stopping;
    uint64_t seq;      /* call number, for object ids */
    uint32_t nwin;     /* windows begun, for object ids */
    size_t win_max;    /* bytes of inputs + outputs per window */
    bool ctx_made;     /* ctx_id exists (parent holds ctx_ref) */
    bool in_made;      /* in_id exists (parent holds in_ref) */
    bool out_made;     /* out_id exists, unsealed */
    weft_store_id ctx_id, in_id, out_id;
    weft_store_obj ctx_ref, in_ref;
    unsigned char *out; /* the window's outputs (parent's mapping) */
    uint64_t out_off;   /* ... and their offset in the segment */
    uint64_t *ok_mask; /* delivery: the window's items that succeeded */
} iso_call;

/* Call numbers of this process, for object ids. */
static _Atomic uint64_t iso_calls;

/* In an isolated child: its own handle of the runtime's store (NULL in
 * every other process, or when the child could not open it). */
static weft_store *child_store;
static int child_store_rc = -ENOENT;
static pid_t child_parent; /* in a child: the pid of the caller */

/* ---- shared futexes (the private ones of park.c do not cross fork) --- */

static void sfutex_wait(_Atomic uint32_t *a, uint32_t v, long ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000L,
                          .tv_nsec = ns % 1000000000L};
    syscall(SYS_futex, (uint32_t *)a, FUTEX_WAIT, v, &ts, NULL, 0);
}

static void sfutex_wake(_Atomic uint32_t *a)
{
    syscall(SYS_futex, (uint32_t *)a, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* ---- the child ------------------------------------------------------- */

/* Where one chunk's items find their ctx, inputs and outputs in this
 * child's mapping of the store. */
typedef struct child_view {
    void *ctx;
    const unsigned char *in;
    unsigned char *out;
    weft_store_obj ctx_ref, in_ref;
} child_view;

static int child_item(const iso_ctl *c, const child_view *v, size_t i)
{
    if (!c->is_map)
        return ((weft_for_fn)c->fn)(i, v->ctx);
    size_t k = i - c->base;
    const void *in = v->in ? v->in + k * c->in_stride : NULL;
    void *out = v->out ? v->out + k * c->out_stride : NULL;
    return ((weft_map_fn)c->fn)(i, in, out, v->ctx);
}

static void child_unview(child_view *v)
{
    if (v->ctx_ref.data)
        weft_store_release(child_store, &v->ctx_ref);
    if (v->in_ref.data)
        weft_store_release(child_store, &v->in_ref);
}

/* The chunk's objects, got for its length: sealed before the command was
 * sent and referenced by the parent, so a get without waiting finds
 * them. */
static int child_view_make(const iso_ctl *c, child_view *v)
{
    memset(v, 0, sizeof *v);
    v->ctx = (void *)c->ctx;
    if (!c->ctx_obj && !c->in_obj && !c->out_obj)
        return 0;
    if (!child_store)
        return child_store_rc;
    int rc = 0;
    if (c->ctx_obj &&
        (rc = weft_store_get(child_store, &c->ctx_id, 0, &v->ctx_ref)) == 0)
        v->ctx = (void *)v->ctx_ref.data;
    if (rc == 0 && c->in_obj &&
        (rc = weft_store_get(child_store, &c->in_id, 0, &v->in_ref)) == 0)
        v->in = v->in_ref.data;
    if (rc == 0 && c->out_obj &&
        !(v->out = weft__store_at(child_store, c->out_off, c->out_size)))
        rc = -EPROTO;
    if (rc)
        child_unview(v);
    return rc;
}

/* For tests (test_map_isolated.c), NULL otherwise: called in a child as
 * it takes a chunk, before its first item, with the chunk's first index;
 * and in the parent once it has claimed a process for its time limit,
 * before the kill. A test stalls there to make the cases a time limit
 * must get right happen under it. */
void (*weft__iso_chunk_hook)(size_t lo);
void (*weft__iso_kill_hook)(void);

/* One step of the chunk (see "progress"): its time, then the count (or
 * flag); acq_rel: the parent's acquire of prog sees mark and the result
 * fields written before. Claimed by the parent: stop here for good. */
static void child_step(iso_ctl *c, uint64_t flag, uint64_t now)
{
    weft__store_relaxed(&c->mark, now);
    uint64_t was = flag ? atomic_fetch_or_explicit(&c->prog, flag,
                                                   memory_order_acq_rel)
                        : atomic_fetch_add_explicit(&c->prog, 1,
                                                    memory_order_acq_rel);
    if (!(was & PROG_KILLED))
        return;
    for (;;) { /* until the SIGKILL lands, unless the parent died first */
        if (getppid() != child_parent)
            _exit(0); /* no store close: its slot is reclaimed */
        struct timespec ts = {.tv_nsec = 100000000L};
        nanosleep(&ts, NULL);
    }
}

/* A child whose parent died stops within a millisecond, even mid-chunk:
 * the store reclaims the dead parent's unsealed output object, and in a
 * store shared with other processes its memory may soon belong to
 * someone else's object, which our writes must not reach. getppid()
 * changes when the parent dies (we are re-parented). */
#define PARENT_CHECK_NS 1000000ull

static void child_run(iso_shared *sh, iso_ctl *c)
{
    uint64_t t0 = weft__now_ns(), checked = t0;
    size_t i = c->lo;
    child_view v;
    c->err = child_view_make(c, &v);
    if (c->err) { /* no store: the chunk's first item fails with why */
        c->err_index = i;
        c->next = i + 1;
        c->elapsed_ns = weft__now_ns() - t0;
        return;
    }
    while (i < c->hi && !weft__load_relaxed(&sh->stop)) {
        uint64_t now = weft__now_ns();
        if (now - checked > PARENT_CHECK_NS) {
            if (getppid() != child_parent)
                _exit(0); /* no store close: its slot is reclaimed */
            checked = now;
        }
        child_step(c, 0, now);
        int rc = child_item(c, &v, i++);
        if (rc) { /* before the step: a kill past it still knows */
            c->err = rc;
            c->err_index = i - 1;
        }
        child_step(c, 0, weft__now_ns());
        if (rc)
            break;
    }
    child_unview(&v);
    c->next = i;
    c->elapsed_ns = weft__now_ns() - t0;
}

/* Crashes must end the process with their signal, whatever handlers the
 * parent (or a sanitizer) installed, so the parent can tell what
 * happened. */
static void child_signals(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT,
                               SIGTRAP, SIGSYS, SIGPIPE, SIGTERM};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        signal(sigs[i], SIG_DFL);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

/* The child's loop: wait for a command, run it, report. It exits on
 * CMD_EXIT, or when its parent is gone (checked each second: a death
 * signal would be tied to the forking thread, which may exit first). */
static _Noreturn void child_exit(int code)
{
    weft_store_close(child_store); /* frees our client slot at once */
    _exit(code);
}

/* The parent's handle is not ours (it may not even be used here): open
 * the store again, lazily, our pages faulted in as items touch them. */
static void child_open_store(const iso_pool *p)
{
    weft_store_opts o;
    weft_store_opts_default(&o);
    o.flags = WEFT_STORE_OPEN_EXISTING | WEFT_STORE_OPEN_LAZY;
    child_store = NULL;
    child_store_rc = weft_store_open(p->store_name, &o, &child_store);
}

static void close_fds(unsigned lo, unsigned hi)
{
    if (lo > hi)
        return;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, lo, hi, 0) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536; /* a kernel without close_range: good enough */
    for (unsigned fd = lo; fd <= hi && fd < (unsigned)max; fd++)
        close((int)fd);
}

/* Every descriptor the child inherited is the caller's (a pipe's write
 * end, a socket, a file with a lock on it), and a process that lives
 * until reset must not keep it open: the other end would wait for an EOF
 * that never comes. It keeps stdin, stdout, stderr and the eventfd it
 * reports on; it opens the store itself, afterwards. */
static void child_close_fds(const iso_pool *p)
{
    unsigned ev = (unsigned)p->evfd;
    if (ev < 3) { /* the caller had closed stdin, stdout or stderr */
        close_fds(3, ~0u);
        return;
    }
    close_fds(3, ev - 1);
    close_fds(ev + 1, ~0u);
}

/* An item that calls exit() ends its process, as a crash does (the
 * parent reports -ECHILD, signal 0), but exit() would first run what the
 * caller registered with atexit() and flush the caller's stdio buffers,
 * all inherited by the fork: output written twice, files the caller owns
 * removed, a weft_runtime_destroy of the caller's runtime waiting for
 * workers this process does not have. Registered after the fork, this
 * handler runs before all of those and leaves at once. */
#if defined(__GLIBC__)
static void child_on_exit(int status, void *arg)
{
    (void)arg;
    child_exit(status);
}
#endif

static _Noreturn void child_main(iso_pool *p, int slot, uint32_t seen)
{
    iso_ctl *c = &p->sh->ctl[slot];
    /* not a worker here, whatever thread forked us; the fork handler
     * (weft__watch_forks) has marked this process, so weft calls on the
     * caller's runtimes fail fast (-ENOTSUP) instead of waiting for
     * workers this process does not have */
    weft__self = NULL;
    child_parent = p->parent;
    child_signals();
#if defined(__GLIBC__)
    on_exit(child_on_exit, NULL); /* best effort: fails only without memory */
#endif
    child_close_fds(p);
    child_open_store(p);
    for (;;) {
        uint32_t seq = weft__load_acquire(&c->cmd_seq);
        if (seq == seen) {
            if (getppid() != child_parent)
                child_exit(0);
            sfutex_wait(&c->cmd_seq, seen, (long)ORPHAN_CHECK_NS);
            continue;
        }
        seen = seq;
        if (c->cmd == CMD_EXIT)
            child_exit(0);
        if (weft__iso_chunk_hook)
            weft__iso_chunk_hook(c->lo);
        child_run(p->sh, c);
        child_step(c, PROG_REPORTED, weft__now_ns());
        weft__store_release(&c->done_seq, seq);
        uint64_t one = 1;
        if (write(p->evfd, &one, sizeof one) < 0)
            child_exit(3); /* the parent cannot hear us any more */
    }
}

/* ---- the pool -------------------------------------------------------- */

static int proc_start(iso_pool *p, int slot)
{
    iso_proc *q = &p->procs[slot];
    /* the child starts from the sequence number as of the fork: a command
     * sent right after it must not look old to the child */
    uint32_t seq = weft__load_relaxed(&p->sh->ctl[slot].cmd_seq);
    pid_t pid = weft__fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        child_main(p, slot, seq);
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) {
        int e = -errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return e;
    }
    *q = (iso_proc){.pid = pid, .pidfd = fd, .fresh = true};
    return 0;
}

/* Reap a child known to be dead (its pidfd is readable): the signal that
 * killed it, 0 when it exited. */
static int proc_reap(iso_proc *q)
{
    int st = 0, sig = 0;
    if (waitpid(q->pid, &st, 0) == q->pid && WIFSIGNALED(st))
        sig = WTERMSIG(st);
    close(q->pidfd);
    q->pid = 0;
    q->pidfd = -1;
    q->busy = false;
    return sig;
}

/* Whether q has died (its pidfd readable) within ms milliseconds. */
static bool proc_exited(const iso_proc *q, int ms)
{
    struct pollfd pf = {.fd = q->pidfd, .events = POLLIN};
    return poll(&pf, 1, ms) == 1 && (pf.revents & POLLIN);
}

static void proc_stop(iso_pool *p, int slot)
{
    iso_proc *q = &p->procs[slot];
    if (!q->pid)
        return;
    iso_ctl *c = &p->sh->ctl[slot];
    c->cmd = CMD_EXIT;
    weft__add_seqcst(&c->cmd_seq, 1);
    sfutex_wake(&c->cmd_seq);
    if (!proc_exited(q, 1000))
        kill(q->pid, SIGKILL); /* stuck in an item: no more waiting */
    proc_reap(q);
}

static void pool_stop_all(iso_pool *p)
{
    for (int i = 0; i < p->nmax; i++)
        proc_stop(p, i);
}

/* Stop the processes and free what exists of p (also a half-made one). */
static void pool_destroy(iso_pool *p)
{
    if (p->procs && p->sh != MAP_FAILED)
        pool_stop_all(p);
    if (p->sh != MAP_FAILED)
        munmap(p->sh, p->sh_size);
    if (p->evfd >= 0)
        close(p->evfd);
    weft__free(p->procs);
    pthread_mutex_destroy(&p->lock);
    weft__free(p);
}

void weft__isolated_free(weft_runtime *rt, void *ext)
{
    (void)rt;
    pool_destroy(ext);
}

static int pool_maps(iso_pool *p)
{
    p->sh_size = sizeof(iso_shared) + (size_t)p->nmax * sizeof(iso_ctl);
    p->sh = mmap(NULL, p->sh_size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p->sh == MAP_FAILED)
        return -ENOMEM;
    p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return p->evfd < 0 ? -errno : 0;
}

static void *pool_make(weft_runtime *rt)
{
    iso_pool *p = weft__calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->nmax = weft_runtime_workers(rt);
    p->parent = getpid();
    p->evfd = -1;
    p->sh = MAP_FAILED;
    /* error-checking: the delivery and progress callbacks run under the
     * lock, on the calling thread, so an isolated map that one of them
     * starts on the same runtime relocks it: EDEADLK, not a hang */
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&p->lock, &a);
    pthread_mutexattr_destroy(&a);
    p->procs = weft__calloc((size_t)p->nmax, sizeof *p->procs);
    for (int i = 0; p->procs && i < p->nmax; i++)
        p->procs[i].pidfd = -1;
    if (p->procs && pool_maps(p) == 0)
        return p;
    pool_destroy(p);
    return NULL;
}

static iso_pool *pool_get(weft_runtime *rt)
{
    return weft__ext_get(rt, WEFT__EXT_ISOLATED, pool_make,
                         weft__isolated_free);
}

int weft_map_isolated_reset(weft_runtime *rt)
{
    if (!rt)
        return -EINVAL;
    if (weft__foreign(rt)) /* the processes are the parent's */
        return -ENOTSUP;
    iso_pool *p = weft__load_acquire(&rt->ext[WEFT__EXT_ISOLATED]);
    if (!p)
        return 0;
    if (pthread_mutex_trylock(&p->lock))
        return -EBUSY;
    pool_stop_all(p);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* ---- one call: the queue of ranges ----------------------------------- */

/* Outputs go through the store when the caller has an output array, or
 * when results are delivered (from the store, then). */
static bool has_out(const map_run *m)
{
    return m->out || m->o.deliver;
}

static size_t window_in_bytes(const iso_call *k)
{
    const map_run *m = k->m;
    return m->in ? (k->win_hi - k->win_lo) * m->in_stride : 0;
}

static size_t window_out_bytes(const iso_call *k)
{
    const map_run *m = k->m;
    return has_out(m) ? (k->win_hi - k->win_lo) * m->out_stride : 0;
}

enum { OBJ_CTX = 1, OBJ_IN = 2, OBJ_OUT = 3 };

/* "wi", the kind, the parent's pid, the call number, the window number:
 * unique among the objects of every process that shares the store. */
static void obj_id(const iso_call *k, int kind, weft_store_id *id)
{
    uint32_t pid = (uint32_t)k->p->parent, win = k->nwin;
    memset(id, 0, sizeof *id);
    id->bytes[0] = 'w';
    id->bytes[1] = 'i';
    id->bytes[2] = (uint8_t)kind;
    memcpy(id->bytes + 4, &pid, 4);
    memcpy(id->bytes + 8, &k->seq, 8);
    memcpy(id->bytes + 16, &win, 4);
}

/* Items [lo, hi) of the window succeeded (for delivery). */
static void mark_ok(iso_call *k, size_t lo, size_t hi)
{
    if (!k->ok_mask)
        return;
    for (size_t i = lo - k->win_lo; i < hi - k->win_lo; i++)
        k->ok_mask[i / 64] |= 1ull << (i % 64);
}

static int push_range(iso_call *k, size_t lo, size_t hi, unsigned attempt)
{
    if (k->npending == k->cap_pending) {
        size_t cap = k->cap_pending ? 2 * k->cap_pending : 16;
        iso_range *r = weft__realloc(k->pending, cap * sizeof *r);
        if (!r)
            return -ENOMEM;
        k->pending = r;
        k->cap_pending = cap;
    }
    k->pending[k->npending++] = (iso_range){lo, hi, attempt};
    return 0;
}

/* The next chunk to run, from the re-queued ranges first. */
static bool take_range(iso_call *k, iso_range *r)
{
    if (k->npending) {
        *r = k->pending[--k->npending];
        return true;
    }
    if (k->next >= k->win_hi)
        return false;
    size_t n = k->win_hi - k->next;
    *r = (iso_range){k->next, k->next + (k->chunk < n ? k->chunk : n), 0};
    k->next = r->hi;
    return true;
}

/* Killed for its time limit and not reaped yet: neither idle nor free. */
static bool proc_killed(const iso_proc *q)
{
    return q->pid && q->timed_out;
}

/* No more chunks; running ones end after their current item. */
static void stop_children(iso_call *k)
{
    k->stopping = true;
    weft__store_relaxed(&k->p->sh->stop, 1);
}

static void fail_item(iso_call *k, size_t i, int status, int sig)
{
    k->failed++;
    weft__map_fail(k->m, i, status, sig);
    if (!(k->m->o.flags & WEFT_MAP_COLLECT))
        stop_children(k);
}

static void send_chunk(iso_call *k, int slot, const iso_range *r)
{
    map_run *m = k->m;
    iso_pool *p = k->p;
    iso_ctl *c = &p->sh->ctl[slot];
    iso_proc *q = &p->procs[slot];
    c->cmd = CMD_RUN;
    c->is_map = m->map_fn != NULL;
    c->fn = m->map_fn ? (uintptr_t)m->map_fn : (uintptr_t)m->for_fn;
    c->ctx = (uintptr_t)m->ctx;
    c->ctx_obj = k->ctx_made;
    c->ctx_id = k->ctx_id;
    c->in_obj = k->in_made;
    c->in_id = k->in_id;
    c->out_obj = k->out_made;
    c->out_size = window_out_bytes(k);
    c->out_off = k->out_off;
    c->in_stride = m->in_stride;
    c->out_stride = m->out_stride;
    c->base = k->win_lo;
    c->lo = r->lo;
    c->hi = r->hi;
    /* the chunk's progress starts now: a process that never gets to its
     * first item is timed from here; a killed predecessor's error is not
     * this chunk's */
    c->err = 0;
    weft__store_relaxed(&c->prog, 0);
    weft__store_relaxed(&c->mark, weft__now_ns());
    q->busy = true;
    q->timed_out = false;
    q->lo = r->lo;
    q->hi = r->hi;
    q->attempt = r->attempt;
    /* release: the command fields above before the new sequence number */
    weft__store_release(&c->cmd_seq, weft__load_relaxed(&c->cmd_seq) + 1);
    sfutex_wake(&c->cmd_seq);
}

/* ---- one call: handling what children report ------------------------- */

/* Chunk size from the last chunk's time per item. */
static void resize_chunk(iso_call *k, const iso_ctl *c, size_t n)
{
    if (!n || !c->elapsed_ns)
        return;
    uint64_t per = c->elapsed_ns / n;
    size_t want = per ? (size_t)(CHUNK_NS / per) : k->chunk * 2;
    size_t cap = (k->win_hi - k->win_lo) / (4 * (size_t)k->nprocs);
    if (want > 2 * k->chunk)
        want = 2 * k->chunk;
    if (cap && want > cap)
        want = cap;
    k->chunk = want ? want : 1;
}

/* The chunk of q ended at its item c->err_index, which failed (c->err):
 * the items before it count, the rest go back to the queue. */
static int chunk_failed(iso_call *k, const iso_ctl *c, const iso_proc *q)
{
    k->ok += c->err_index - q->lo;
    mark_ok(k, q->lo, c->err_index);
    fail_item(k, c->err_index, c->err, 0);
    if (c->err_index + 1 < q->hi && !k->stopping)
        return push_range(k, c->err_index + 1, q->hi, q->attempt);
    return 0;
}

static int chunk_done(iso_call *k, int slot)
{
    iso_ctl *c = &k->p->sh->ctl[slot];
    iso_proc *q = &k->p->procs[slot];
    q->busy = false;
    q->fresh = false;
    size_t ran = c->next - q->lo; /* c->err_index + 1 when it failed */
    resize_chunk(k, c, ran);
    if (c->err)
        return chunk_failed(k, c, q);
    k->ok += ran;
    mark_ok(k, q->lo, c->next);
    return 0;
}

/* The chunk [lo, hi) of a process that died at progress v (see
 * "progress"): the items that ended count; one that failed ends the chunk
 * as a report would; else the item running (or, between items, the next
 * one, which is the item a process stuck there holds up) crashed or ran
 * out of time, status, and is run again or fails; the rest of the chunk
 * goes back to the queue. */
static int chunk_lost(iso_call *k, const iso_ctl *c, const iso_proc *q,
                      uint64_t v, int status, int sig)
{
    size_t lo = q->lo, hi = q->hi, n = (size_t)(v & PROG_COUNT);
    size_t i = lo + n / 2;
    bool running = n & 1;
    if (!running && c->err) /* c->err is this chunk's: see send_chunk */
        return chunk_failed(k, c, q);
    k->ok += i - lo;
    mark_ok(k, lo, i);
    /* every item ended, or a stopped chunk left the rest: nobody to
     * blame */
    if (i >= hi || (!running && k->stopping))
        return 0;
    int rc = 0;
    if (q->attempt < k->m->o.max_retries && !k->stopping)
        rc = push_range(k, i, i + 1, q->attempt + 1);
    else
        fail_item(k, i, status, sig);
    if (rc == 0 && i + 1 < hi && !k->stopping)
        rc = push_range(k, i + 1, hi, q->attempt);
    return rc;
}

/* A child died: where its chunk was is the progress the parent claimed
 * it at (timed out), or the last step it made. */
static int child_died(iso_call *k, int slot)
{
    iso_proc *q = &k->p->procs[slot];
    const iso_ctl *c = &k->p->sh->ctl[slot];
    bool busy = q->busy, timed_out = q->timed_out;
    /* acquire: the steps' result fields (a dead child writes no more) */
    uint64_t v = timed_out ? q->killed_at : weft__load_acquire(&c->prog);
    int sig = proc_reap(q);
    if (!busy)
        return 0;
    return chunk_lost(k, c, q, v, timed_out ? -ETIMEDOUT : -ECHILD, sig);
}

static void check_timeouts(iso_call *k, uint64_t now, int *wait_ms)
{
    uint64_t limit = (uint64_t)k->m->o.timeout_ms * 1000000ull;
    if (!limit)
        return;
    for (int s = 0; s < k->nprocs; s++) {
        iso_proc *q = &k->p->procs[s];
        iso_ctl *c = &k->p->sh->ctl[s];
        if (!q->busy || !q->pid || q->timed_out)
            continue;
        /* acquire: mark is at least as new as the step counted */
        uint64_t v = weft__load_acquire(&c->prog);
        if (v & (PROG_KILLED | PROG_REPORTED))
            continue; /* reporting: nothing left to time */
        uint64_t t = weft__load_relaxed(&c->mark), lim = limit;
        q->fresh &= !(v & PROG_COUNT);
        if (q->fresh && lim < START_NS)
            lim = START_NS;
        if (now > t && now - t >= lim) { /* t may be newer than now */
            /* the claim: it fails when the child made a step since v
             * (then the next round judges the new one), and once it
             * succeeds the child makes none, so v says what ran */
            if (!atomic_compare_exchange_strong_explicit(&c->prog, &v,
                    v | PROG_KILLED, memory_order_acq_rel,
                    memory_order_acquire)) {
                *wait_ms = 1;
                continue;
            }
            q->timed_out = true;
            q->killed_at = v;
            if (weft__iso_kill_hook)
                weft__iso_kill_hook();
            kill(q->pid, SIGKILL);
            continue;
        }
        /* in 64 bits: a limit past INT_MAX ms must not wrap negative
         * (poll's "for ever") */
        uint64_t ms = (t + lim - now) / 1000000ull + 1;
        if (ms < (uint64_t)*wait_ms)
            *wait_ms = (int)ms;
    }
}

/* Sleep until a child reports or dies, a time limit expires, or POLL_MS
 * passes (to notice cancellation); then handle what happened. */
static int wait_events(iso_call *k)
{
    struct pollfd pf[WEFT_MAX_WORKERS + 1];
    int wait_ms = POLL_MS;
    check_timeouts(k, weft__now_ns(), &wait_ms);
    pf[0] = (struct pollfd){.fd = k->p->evfd, .events = POLLIN};
    for (int s = 0; s < k->nprocs; s++)
        pf[s + 1] = (struct pollfd){.fd = k->p->procs[s].pidfd,
                                    .events = POLLIN};
    if (poll(pf, (nfds_t)k->nprocs + 1, wait_ms) < 0 && errno != EINTR)
        return -errno;
    uint64_t drain;
    if (read(k->p->evfd, &drain, sizeof drain) < 0 && errno != EAGAIN)
        return -errno;
    int rc = 0;
    for (int s = 0; s < k->nprocs && rc == 0; s++) {
        iso_proc *q = &k->p->procs[s];
        iso_ctl *c = &k->p->sh->ctl[s];
        if (q->busy && weft__load_acquire(&c->done_seq) ==
                           weft__load_relaxed(&c->cmd_seq))
            rc = chunk_done(k, s);
        else if (pf[s + 1].revents)
            rc = child_died(k, s);
    }
    return rc;
}

/* ---- one call: windows and the dispatch loop ------------------------- */

static bool any_busy(const iso_call *k)
{
    for (int s = 0; s < k->nprocs; s++) {
        const iso_proc *q = &k->p->procs[s];
        if (q->busy || proc_killed(q))
            return true;
    }
    return false;
}

static bool cancelled(iso_call *k)
{
    const _Atomic int *c = k->m->o.cancel;
    if (c && atomic_load_explicit(c, memory_order_relaxed)) {
        /* a failure that stopped the map first stays its reason, as on
         * the pool (stopped() in map.c); relaxed: only this thread reads
         * stop in isolated mode */
        int going = MAPRUN_GOING;
        atomic_compare_exchange_strong_explicit(&k->m->stop, &going,
            MAPRUN_CANCELLED, memory_order_relaxed, memory_order_relaxed);
        stop_children(k);
    }
    return k->stopping;
}

/* Give every idle live process a chunk, starting dead ones again. */
static int dispatch(iso_call *k)
{
    for (int s = 0; s < k->nprocs; s++) {
        iso_proc *q = &k->p->procs[s];
        if (q->busy || proc_killed(q))
            continue; /* killed: wait for its pidfd before reusing it */
        iso_range r;
        if (!take_range(k, &r))
            return 0;
        /* One that died while idle (between calls, or since it reported
         * its last chunk: killed, or by a timer or thread an item left)
         * is replaced, not sent the chunk: its death would be taken for
         * a crash of the chunk's first item, which never ran. */
        if (q->pid && proc_exited(q, 0))
            proc_reap(q);
        int rc = q->pid ? 0 : proc_start(k->p, s);
        if (rc) {
            /* the range waits for a live process; with no memory to
             * keep it, the call fails rather than skip it silently */
            int lost = push_range(k, r.lo, r.hi, r.attempt);
            return lost ? lost : any_busy(k) ? 0 : rc;
        }
        send_chunk(k, s, &r);
    }
    return 0;
}

static size_t call_done(map_run *m)
{
    const iso_call *k = m->iso;
    return k->ok + k->failed;
}

static int run_window(iso_call *k)
{
    int rc = 0;
    for (;;) {
        if (!cancelled(k) && rc == 0)
            rc = dispatch(k);
        if (!any_busy(k))
            break;
        int w = wait_events(k);
        rc = rc ? rc : w;
        weft__map_progress(k->m, call_done);
    }
    return rc;
}

static size_t window_items(const iso_call *k)
{
    const map_run *m = k->m;
    size_t per = (m->in ? m->in_stride : 0) + (has_out(m) ? m->out_stride : 0);
    size_t n = per ? k->win_max / per : m->end - m->begin;
    return n ? n : 1;
}

/* Deletes a window's sealed object. A child killed mid-chunk may still
 * count a reference to it until its client slot is reclaimed: check
 * reclaims dead clients, then the delete is tried again. Failing that, the
 * object stays, unreferenced, for the store's eviction. */
static void obj_delete(weft_store *st, const weft_store_id *id)
{
    if (weft_store_delete(st, id) == -EBUSY &&
        weft_store_check(st, NULL, 0) != -EINVAL)
        weft_store_delete(st, id);
}

/* Seals the object id, written by this handle, and takes a reference to
 * it for the call or window: nothing evicts or spills it meanwhile. */
static int obj_seal_get(weft_store *st, const weft_store_id *id,
                        weft_store_obj *ref)
{
    int rc = weft_store_seal(st, id);
    if (rc) {
        weft_store_abort(st, id);
        return rc;
    }
    rc = weft_store_get(st, id, 0, ref);
    if (rc)
        weft_store_delete(st, id);
    return rc;
}

/* A new object of this call or window. Never empty: a map's objects
 * hold items (strides are not 0 here, see weft_map), and an empty one
 * would have no room of its own for a child to read or write. */
static int obj_create(iso_call *k, int kind, size_t size, weft_store_id *id,
                      void **data)
{
    obj_id(k, kind, id);
    if (!size)
        return -EPROTO;
    return weft_store_create(k->p->st, id, size, 0, data);
}

/* A sealed copy of src[0..size) as the object kind of this call or
 * window, held through *ref (obj_seal_get). */
static int obj_put_held(iso_call *k, int kind, const void *src, size_t size,
                        weft_store_id *id, weft_store_obj *ref)
{
    void *data;
    int rc = obj_create(k, kind, size, id, &data);
    if (rc)
        return rc;
    memcpy(data, src, size);
    return obj_seal_get(k->p->st, id, ref);
}

static int window_in_object(iso_call *k)
{
    map_run *m = k->m;
    int rc = obj_put_held(k, OBJ_IN, m->in + k->win_lo * m->in_stride,
                          window_in_bytes(k), &k->in_id, &k->in_ref);
    k->in_made = rc == 0;
    return rc;
}

static int window_out_object(iso_call *k)
{
    map_run *m = k->m;
    size_t out = window_out_bytes(k);
    void *data;
    int rc = obj_create(k, OBJ_OUT, out, &k->out_id, &data);
    if (rc)
        return rc;
    k->out = data;
    k->out_made = true;
    /* the children find the object by this offset: without it they would
     * write wherever offset 0 is */
    if ((rc = weft__store_off(k->p->st, data, out, &k->out_off)))
        return rc;
    /* the caller's outputs, so items that do not run keep what they had */
    if (m->out)
        memcpy(k->out, m->out + k->win_lo * m->out_stride, out);
    return 0;
}

/* The window's objects: -ENOSPC when the store has no room for them even
 * after evicting (never a SIGBUS later: the store's memory is reserved). */
static int window_copy_in(iso_call *k)
{
    map_run *m = k->m;
    int rc = 0;
    if (m->in)
        rc = window_in_object(k);
    if (rc == 0 && has_out(m))
        rc = window_out_object(k);
    return rc;
}

/* The window's objects go; the children hold no reference any more (each
 * drops its own at the end of a chunk, a dead one lost it). */
static void window_free(iso_call *k)
{
    weft_store *st = k->p->st;
    if (k->in_made) {
        weft_store_release(st, &k->in_ref);
        obj_delete(st, &k->in_id);
        k->in_made = false;
    }
    if (k->out_made) {
        weft_store_abort(st, &k->out_id);
        k->out_made = false;
        k->out = NULL;
    }
}

/* The window's outputs back to the caller, then its successful items to
 * the delivery callback, in index order (from the caller's array, or
 * straight from the store's object when there is none). */
static void window_copy_out(iso_call *k)
{
    map_run *m = k->m;
    size_t n = k->win_hi - k->win_lo;
    unsigned char *res = k->out;
    if (!res)
        return;
    if (m->out) {
        memcpy(m->out + k->win_lo * m->out_stride, res, n * m->out_stride);
        res = m->out + k->win_lo * m->out_stride;
    }
    if (!k->ok_mask)
        return;
    for (size_t i = 0; i < n; i++)
        if (k->ok_mask[i / 64] >> (i % 64) & 1)
            m->o.deliver(k->win_lo + i, res + i * m->out_stride,
                         m->o.deliver_ctx);
}

static int window_mask(iso_call *k)
{
    if (!k->m->o.deliver)
        return 0;
    size_t words = (k->win_hi - k->win_lo + 63) / 64;
    weft__free(k->ok_mask);
    k->ok_mask = weft__calloc(words, sizeof *k->ok_mask);
    return k->ok_mask ? 0 : -ENOMEM;
}

static int run_windows(iso_call *k)
{
    map_run *m = k->m;
    size_t per = window_items(k);
    int rc = 0;
    for (k->win_lo = m->begin; k->win_lo < m->end && rc == 0 &&
                               !k->stopping;
         k->win_lo = k->win_hi) {
        size_t rest = m->end - k->win_lo;
        k->win_hi = k->win_lo + (per < rest ? per : rest);
        k->next = k->win_lo;
        k->nwin++;
        if ((rc = window_mask(k)) == 0 && (rc = window_copy_in(k)) == 0) {
            weft__store_relaxed(&k->p->sh->stop, 0);
            rc = run_window(k);
            window_copy_out(k);
        }
        window_free(k);
    }
    return rc;
}

/* The ctx and a window fit the store together, with room to spare for
 * what the items put there: ctx at most half of it (and WINDOW_MAX), a
 * window half of what the ctx leaves (at most WINDOW_MAX: fewer windows,
 * fewer waits for the slowest process), or one item when that is more,
 * as long as ctx and the item take at most three quarters. */
static int call_sizes(iso_call *k)
{
    map_run *m = k->m;
    weft_store_stats ss;
    int rc = weft_store_stats_get(k->p->st, &ss);
    if (rc)
        return rc;
    uint64_t cap = ss.capacity;
    /* Only the strides of what the map has: one of an input it has not
     * (in NULL), or of an output it has not (out NULL, no delivery),
     * stores nothing and may be anything. Each alone first: their sum
     * must not wrap. */
    size_t in_b = m->in ? m->in_stride : 0;
    size_t out_b = has_out(m) ? m->out_stride : 0;
    if (in_b > cap || out_b > cap)
        return -E2BIG;
    size_t per = in_b + out_b;
    if (m->o.ctx_size > WINDOW_MAX || m->o.ctx_size > cap / 2 ||
        per > cap / 4 * 3 - m->o.ctx_size)
        return -E2BIG;
    k->win_max = (cap - m->o.ctx_size) / 2;
    if (k->win_max > WINDOW_MAX)
        k->win_max = WINDOW_MAX;
    if (per > k->win_max)
        k->win_max = per;
    return 0;
}

/* The call's copy of ctx, as it is now, for every window. */
static int call_ctx(iso_call *k)
{
    int rc = obj_put_held(k, OBJ_CTX, k->m->ctx, k->m->o.ctx_size,
                          &k->ctx_id, &k->ctx_ref);
    k->ctx_made = rc == 0;
    return rc;
}

static int call_setup(iso_call *k)
{
    map_run *m = k->m;
    k->seq = atomic_fetch_add_explicit(&iso_calls, 1, memory_order_relaxed);
    int rc = call_sizes(k);
    if (rc == 0 && m->o.ctx_size)
        rc = call_ctx(k);
    k->nprocs = m->limit < k->p->nmax ? m->limit : k->p->nmax;
    k->chunk = 1;
    return rc;
}

static void call_free(iso_call *k)
{
    window_free(k);
    if (k->ctx_made) {
        weft_store_release(k->p->st, &k->ctx_ref);
        obj_delete(k->p->st, &k->ctx_id);
    }
    weft__free(k->pending);
    weft__free(k->ok_mask);
}

/* The runtime's store, the first time: children forked from now on open
 * it by this name. Under p->lock. */
static int pool_store(iso_pool *p, weft_runtime *rt)
{
    if (p->st)
        return 0;
    weft_store *st;
    int rc = weft_runtime_store(rt, &st);
    if (rc)
        return rc;
    snprintf(p->store_name, sizeof p->store_name, "%s", weft__store_name(st));
    p->st = st;
    return 0;
}

/* The call, under the pool's lock: one isolated map at a time. */
static int call_run(iso_call *k)
{
    iso_pool *p = k->p;
    if (pthread_mutex_lock(&p->lock) == EDEADLK)
        return -EDEADLK; /* from a callback of this pool's call */
    int rc = pool_store(p, k->m->rt);
    if (rc == 0)
        rc = call_setup(k);
    if (rc == 0)
        rc = run_windows(k);
    /* a child stopped mid-chunk by the stop flag must not keep it set for
     * the next call */
    weft__store_relaxed(&p->sh->stop, 0);
    call_free(k);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int weft__map_isolated(map_run *m, weft_map_report *rep)
{
    iso_call k = {.m = m, .p = pool_get(m->rt)};
    m->iso = &k;
    int rc = k.p ? call_run(&k) : -ENOMEM;
    weft__add_relaxed(&m->rt->map_items, k.ok + k.failed);
    weft_map_report local;
    rep = rep ? rep : &local;
    memset(rep, 0, sizeof *rep);
    rep->workers = k.nprocs;
    return weft__map_end(m, rc, k.ok, k.failed, rep);
}

int weft_map_isolated_store(weft_store **out)
{
    if (!out)
        return -EINVAL;
    *out = child_store;
    return child_store ? 0 : -ENOENT;
}
