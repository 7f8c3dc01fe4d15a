/* Envelopes: the blocks messages travel in.
 *
 * Small envelopes (the common case) have one size and are recycled through
 * magazines and a depot (Bonwick and Adams, "Magazines and Vmem", 2001):
 * each thread holds two magazines of MAG pointers, takes and gives
 * envelopes there without atomics, and trades a whole magazine with the
 * process-wide depot under its lock once per MAG envelopes.
 *
 * Why not the allocator's free: a receiver frees what other threads
 * allocated, so every free was mimalloc's cross-thread free (an atomic
 * operation on the allocating thread's page, and a write into the block
 * that leaves its line dirty in the receiver's cache for the sender's
 * next write to fetch). A receiver that never sends (a sink) filled any
 * per-thread cache and then paid that on every message, while its senders
 * allocated fresh blocks. Through the depot the sink's full magazines go
 * to the senders whole, and the envelopes are never written on the way.
 *
 * AddressSanitizer builds (no mimalloc) skip all of this, so that every
 * envelope is checked by the sanitizer's allocator; ThreadSanitizer
 * builds keep it, so that its races would be seen. */
#include <pthread.h>

#include "alloc.h"
#include "act.h"

#if defined(WEFT_HAVE_MIMALLOC) || defined(__SANITIZE_THREAD__)

#define MAG 256        /* envelopes per magazine */
#define DEPOT_FULL 64  /* full magazines the depot keeps: 1 MiB */

typedef struct mag {
    struct mag *next; /* in the depot */
    int n;
    void *env[MAG];
} mag;

/* The process's depot: full magazines for threads that ran out, empty
 * ones for threads that filled theirs. */
static struct {
    pthread_mutex_t lock;
    mag *full, *empty;
    _Atomic int nfull; /* written under lock; read without, as a hint */
} depot = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct tcache {
    mag *loaded, *prev; /* Bonwick's two: loaded is used first */
    bool armed;         /* the thread-exit drain is registered */
} tcache;

static WEFT__TLS _Thread_local tcache envs;
static pthread_key_t env_key;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void mag_free(mag *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++)
        weft__free(m->env[i]);
    weft__free(m);
}

/* At thread exit: full magazines go to the depot, the rest is freed. */
static void env_drain(void *unused)
{
    (void)unused;
    mag *ms[2] = {envs.loaded, envs.prev};
    envs.loaded = envs.prev = NULL;
    envs.armed = false;
    for (int i = 0; i < 2; i++) {
        if (!ms[i])
            continue;
        pthread_mutex_lock(&depot.lock);
        bool keep = ms[i]->n == MAG && depot.nfull < DEPOT_FULL;
        if (keep) {
            ms[i]->next = depot.full;
            depot.full = ms[i];
            depot.nfull++;
        }
        pthread_mutex_unlock(&depot.lock);
        if (!keep)
            mag_free(ms[i]);
    }
}

static void env_key_make(void)
{
    if (pthread_key_create(&env_key, env_drain))
        env_key = (pthread_key_t)-1; /* no destructor: cache nothing */
}

/* First use on this thread: register the drain. False: do not cache. */
static bool arm(void)
{
    if (envs.armed)
        return true;
    pthread_once(&env_once, env_key_make);
    if (env_key == (pthread_key_t)-1 || pthread_setspecific(env_key, &envs))
        return false;
    envs.armed = true;
    return true;
}

/* Trade the empty loaded magazine for a full one from the depot; false
 * when the depot has none. */
static bool refill(void)
{
    if (!weft__load_relaxed(&depot.nfull) || !arm())
        return false; /* none to take, or no drain for this thread */
    pthread_mutex_lock(&depot.lock);
    mag *f = depot.full;
    if (f) {
        depot.full = f->next;
        depot.nfull--;
        if (envs.loaded) {
            envs.loaded->next = depot.empty;
            depot.empty = envs.loaded;
        }
        envs.loaded = f;
    }
    pthread_mutex_unlock(&depot.lock);
    return f != NULL;
}

void *weft__env_alloc(size_t bytes)
{
    if (bytes > WEFT__ENV_SMALL)
        return weft__malloc(bytes);
    mag *m = envs.loaded;
    if (m && m->n)
        return m->env[--m->n];
    if (envs.prev && envs.prev->n) { /* swap: prev is full */
        envs.loaded = envs.prev;
        envs.prev = m;
    } else if (!refill()) {
        return weft__malloc(WEFT__ENV_SMALL);
    }
    m = envs.loaded;
    return m->env[--m->n];
}

/* The loaded magazine is full: make room, or return false (then the
 * envelope goes to the allocator). */
static bool make_room(void)
{
    mag *full = envs.prev;
    if (full && full->n == 0) { /* swap: prev is empty */
        envs.prev = envs.loaded;
        envs.loaded = full;
        return true;
    }
    /* the full prev goes to the depot, loaded becomes prev, and an
     * empty magazine (the depot's, or a new one) is loaded */
    mag *empty = NULL, *drop = NULL;
    pthread_mutex_lock(&depot.lock);
    if (full) {
        if (depot.nfull < DEPOT_FULL) {
            full->next = depot.full;
            depot.full = full;
            depot.nfull++;
        } else {
            drop = full; /* the depot holds enough: give it back */
        }
    }
    if ((empty = depot.empty))
        depot.empty = empty->next;
    pthread_mutex_unlock(&depot.lock);
    mag_free(drop);
    if (!empty && !(empty = weft__malloc(sizeof *empty))) {
        envs.prev = NULL; /* prev went to the depot (or was freed) */
        return false;
    }
    empty->n = 0;
    envs.prev = envs.loaded;
    envs.loaded = empty;
    return true;
}

void weft__env_free(void *env, size_t bytes)
{
    if (bytes > WEFT__ENV_SMALL || !arm()) {
        weft__free(env);
        return;
    }
    mag *m = envs.loaded;
    if (!m || m->n == MAG) {
        if (!make_room()) {
            weft__free(env);
            return;
        }
        m = envs.loaded;
    }
    m->env[m->n++] = env;
}

#else /* ASan builds: every envelope through the checked allocator */

void *weft__env_alloc(size_t bytes)
{
    return weft__malloc(bytes <= WEFT__ENV_SMALL ? WEFT__ENV_SMALL : bytes);
}

void weft__env_free(void *env, size_t bytes)
{
    (void)bytes;
    weft__free(env);
}

#endif
