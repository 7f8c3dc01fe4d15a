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

weft_bytes *weft_bytes_new(size_t len)
{
    if (len > SIZE_MAX - sizeof(weft_bytes))
        return NULL;
    weft_bytes *b = weft__malloc(sizeof *b + len);
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
    weft__free(b);
}

void weft__bytes_dtor(void *b)
{
    weft__free(b);
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
        (ops->caps & WEFT_TRANSPORT_RMA && (!ops->put || !ops->get)))
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
        rfn *p = realloc(fns, cap * sizeof *p);
        if (!p && (rc = -ENOMEM))
            goto out;
        fns = p;
        capfns = cap;
    }
    fns[nfns].name = strdup(name);
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
