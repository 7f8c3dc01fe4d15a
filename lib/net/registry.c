/* Process-wide tables of lib/net: transports by name, remote functions by
 * name, and the byte blocks everything travels in. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "net_internal.h"

/* ---- bytes ---- */

/* Big blocks (payloads of MiBs: fetched objects, results) are kept a
 * moment after they are freed and handed out again: a fresh block of
 * 64 MiB costs 16k page faults, as long as its transfer over shared
 * memory, every time. At most CACHE_SLOTS blocks and CACHE_MAX bytes wait
 * here, none longer than CACHE_NS; a block is reused for a request of at
 * least half its size. */
#define BIG (1u << 20)
#define CACHE_SLOTS 4
#define CACHE_MAX (256u << 20)
#define CACHE_NS 1000000000u

#ifdef WEFT_HAVE_MIMALLOC
#define usable_size(p) mi_usable_size(p)
#else
#include <malloc.h>
#define usable_size(p) malloc_usable_size(p)
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static struct {
    pthread_mutex_t lock;
    _Atomic int n; /* read without the lock by weft__bytes_trim */
    size_t bytes;
    struct cached {
        weft_bytes *b;
        size_t cap;
        uint64_t at;
    } slot[CACHE_SLOTS];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* under cache.lock: take slot i out; its block is returned. */
static weft_bytes *cache_take(int i)
{
    weft_bytes *b = cache.slot[i].b;
    cache.bytes -= cache.slot[i].cap;
    int n = weft__load_relaxed(&cache.n) - 1;
    cache.slot[i] = cache.slot[n];
    weft__store_relaxed(&cache.n, n);
    return b;
}

/* Free the cached blocks older than CACHE_NS (all with force). */
static void cache_trim(bool force)
{
    weft_bytes *old[CACHE_SLOTS];
    int k = 0;
    uint64_t now = weft__now_ns();
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < weft__load_relaxed(&cache.n);)
        if (force || now - cache.slot[i].at > CACHE_NS)
            old[k++] = cache_take(i);
        else
            i++;
    pthread_mutex_unlock(&cache.lock);
    while (k--) {
        UNPOISON(old[k], sizeof *old[k]);
        weft__free(old[k]);
    }
}

void weft__bytes_trim(bool all)
{
    if (weft__load_relaxed(&cache.n))
        cache_trim(all);
}

static weft_bytes *cache_get(size_t len)
{
    size_t need = sizeof(weft_bytes) + len;
    weft_bytes *b = NULL;
    pthread_mutex_lock(&cache.lock);
    int best = -1;
    for (int i = 0; i < weft__load_relaxed(&cache.n); i++) {
        size_t cap = cache.slot[i].cap;
        if (cap >= need && cap / 2 <= need &&
            (best < 0 || cap < cache.slot[best].cap))
            best = i;
    }
    if (best >= 0)
        b = cache_take(best);
    pthread_mutex_unlock(&cache.lock);
    if (b)
        UNPOISON(b, need);
    return b;
}

/* Keep b (a big block) for reuse, or free it. */
static void cache_put(weft_bytes *b)
{
    size_t cap = usable_size(b);
    if (cap > CACHE_MAX) {
        weft__free(b);
        return;
    }
    weft_bytes *evict[CACHE_SLOTS];
    int k = 0;
    POISON(b, cap);
    pthread_mutex_lock(&cache.lock);
    /* make room: the oldest go first */
    while (weft__load_relaxed(&cache.n) &&
           (weft__load_relaxed(&cache.n) == CACHE_SLOTS ||
            cache.bytes + cap > CACHE_MAX)) {
        int o = 0;
        for (int i = 1; i < weft__load_relaxed(&cache.n); i++)
            if (cache.slot[i].at < cache.slot[o].at)
                o = i;
        evict[k++] = cache_take(o);
    }
    int n = weft__load_relaxed(&cache.n);
    cache.slot[n] = (struct cached){b, cap, weft__now_ns()};
    cache.bytes += cap;
    weft__store_relaxed(&cache.n, n + 1);
    pthread_mutex_unlock(&cache.lock);
    while (k--) {
        UNPOISON(evict[k], sizeof *evict[k]);
        weft__free(evict[k]);
    }
}

weft_bytes *weft_bytes_new(size_t len)
{
    if (len > SIZE_MAX - sizeof(weft_bytes))
        return NULL;
    weft_bytes *b = NULL;
    if (len >= BIG)
        b = cache_get(len);
    if (!b)
        b = weft__malloc(sizeof *b + len);
    if (b)
        b->len = len;
    return b;
}

weft_bytes *weft_bytes_copy(const void *data, size_t len)
{
    if (!data && len)
        return NULL;
    weft_bytes *b = weft_bytes_new(len);
    if (b && len)
        memcpy(b->data, data, len);
    return b;
}

void weft_bytes_free(weft_bytes *b)
{
    if (b && b->len >= BIG)
        cache_put(b);
    else
        weft__free(b);
}

void weft__bytes_dtor(void *b)
{
    weft_bytes_free(b);
}

/* ---- transports ---- */

#define MAX_TRANSPORTS 16

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static const weft_transport_ops *transports[MAX_TRANSPORTS];
static int ntransports;

static void add_builtins(void)
{
    /* under reg_lock; built-ins go first so a user cannot shadow them */
    if (ntransports)
        return;
    transports[ntransports++] = &weft__loop_ops;
    transports[ntransports++] = &weft__tcp_ops;
#ifdef WEFT_HAVE_MPI
    transports[ntransports++] = &weft__mpi_ops;
#endif
}

static const weft_transport_ops *find_locked(const char *name)
{
    add_builtins();
    for (int i = 0; i < ntransports; i++)
        if (!strcmp(transports[i]->name, name))
            return transports[i];
    return NULL;
}

int weft_transport_register(const weft_transport_ops *ops)
{
    if (!ops || !ops->name || !*ops->name || ops->abi != WEFT_TRANSPORT_ABI ||
        !ops->open || !ops->close || !ops->rank || !ops->size ||
        !ops->send || !ops->progress || !ops->wake ||
        (ops->caps & WEFT_TRANSPORT_RMA &&
         (!ops->put || !ops->get || !ops->reg || !ops->dereg)))
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&reg_lock);
    if (find_locked(ops->name))
        rc = -EEXIST;
    else if (ntransports == MAX_TRANSPORTS)
        rc = -ENOSPC;
    else
        transports[ntransports++] = ops;
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

const weft_transport_ops *weft_transport_find(const char *name)
{
    if (!name)
        return NULL;
    pthread_mutex_lock(&reg_lock);
    const weft_transport_ops *ops = find_locked(name);
    pthread_mutex_unlock(&reg_lock);
    return ops;
}

/* ---- remote functions ---- */

typedef struct rfn {
    char *name;
    weft_remote_fn fn;
} rfn;

static rfn *fns;
static uint32_t nfns, capfns;
static int frozen; /* live nodes; the table does not change while > 0 */

int weft_remote_register(const char *name, weft_remote_fn fn)
{
    size_t len = name ? strlen(name) : 0;
    if (!fn || len == 0 || len > 255)
        return -EINVAL;
    int rc = 0;
    bool found = false;
    pthread_mutex_lock(&reg_lock);
    for (uint32_t i = 0; i < nfns && !found; i++)
        if (!strcmp(fns[i].name, name)) {
            found = true;
            rc = fns[i].fn == fn ? 0 : -EEXIST;
        }
    /* the same pair twice is fine, unless the table is frozen */
    if (rc || (frozen && (rc = -EBUSY)) || found)
        goto out;
    if (nfns == capfns) {
        uint32_t cap = capfns ? 2 * capfns : 16;
        rfn *p = weft__realloc(fns, cap * sizeof *p);
        if (!p && (rc = -ENOMEM))
            goto out;
        fns = p;
        capfns = cap;
    }
    fns[nfns].name = weft__strdup(name);
    if (!fns[nfns].name && (rc = -ENOMEM))
        goto out;
    fns[nfns++].fn = fn;
out:
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const rfn *)a)->name, ((const rfn *)b)->name);
}

/* The table, sorted by name (ids = positions: every node that registered
 * the same names agrees on them), its names NUL-joined and their hash.
 * Freezes the table until weft__fntab_put. */
int weft__fntab_get(weft__fntab *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_lock(&reg_lock);
    frozen++;
    if (nfns) /* fns is NULL before the first registration */
        qsort(fns, nfns, sizeof *fns, by_name);
    t->n = nfns;
    size_t bytes = 0;
    for (uint32_t i = 0; i < nfns; i++)
        bytes += strlen(fns[i].name) + 1;
    t->fns = weft__malloc((nfns ? nfns : 1) * sizeof *t->fns);
    t->names = weft__malloc(bytes ? bytes : 1);
    int rc = t->fns && t->names ? 0 : -ENOMEM;
    uint64_t h = 14695981039346656037ull;
    for (uint32_t i = 0; i < nfns && !rc; i++) {
        size_t l = strlen(fns[i].name) + 1;
        memcpy(t->names + t->names_len, fns[i].name, l);
        for (size_t k = 0; k < l; k++)
            h = (h ^ (unsigned char)fns[i].name[k]) * 1099511628211ull;
        t->fns[i] = fns[i].fn;
        t->names_len += l;
    }
    t->hash = h ^ nfns;
    pthread_mutex_unlock(&reg_lock);
    if (rc)
        weft__fntab_put(t);
    return rc;
}

void weft__fntab_put(weft__fntab *t)
{
    pthread_mutex_lock(&reg_lock);
    frozen--;
    pthread_mutex_unlock(&reg_lock);
    weft__free(t->fns);
    weft__free(t->names);
    memset(t, 0, sizeof *t);
}

/* The id of name in t, or -1. */
int weft__fntab_find(const weft__fntab *t, const char *name)
{
    const char *p = t->names;
    for (uint32_t i = 0; i < t->n; i++) {
        if (!strcmp(p, name))
            return (int)i;
        p += strlen(p) + 1;
    }
    return -1;
}

#ifdef WEFT_NET_TRACE
/* ---- round-trip tracing (net_internal.h) ---- */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define TRACE_MAX (1u << 22)
static struct {
    int step;
    uint64_t ns;
} trace[TRACE_MAX];
static _Atomic unsigned ntrace;

void weft__net_ev(int step)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned i = atomic_fetch_add_explicit(&ntrace, 1, memory_order_relaxed);
    if (i < TRACE_MAX) {
        trace[i].step = step;
        trace[i].ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
}

__attribute__((destructor)) static void trace_dump(void)
{
    unsigned n = atomic_load(&ntrace);
    if (!n)
        return;
    const char *dir = getenv("WEFT_NET_TRACE_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/weft-trace.%d", dir ? dir : "/tmp",
             (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    for (unsigned i = 0; i < n && i < TRACE_MAX; i++)
        fprintf(f, "%d %llu\n", trace[i].step,
                (unsigned long long)trace[i].ns);
    fclose(f);
}
#endif
