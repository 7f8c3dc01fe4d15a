/* Looking at a store: counters, one object, the list of objects, the
 * consistency check, and the hex form of ids. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "st.h"

static uint64_t rd(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

int weft_store_stats_get(weft_store *st, weft_store_stats *o)
{
    if (!st || !o)
        return -EINVAL;
    st_hdr *h = st->h;
    memset(o, 0, sizeof *o);
    o->capacity = st->capacity;
    o->used = rd(&h->used);
    o->objects = rd(&h->objects);
    /* seals are counted by their clients, and so are sealed objects not
     * linked yet (see "Lock-free seal" in st.h) */
    uint64_t unlinked = 0, seals = 0, creates = 0;
    for (uint32_t c = 0; c < st->max_clients; c++) {
        int32_t n = atomic_load_explicit(&st->clients[c].unlinked,
                                         memory_order_relaxed);
        unlinked += n > 0 ? (uint64_t)n : 0;
        seals += atomic_load_explicit(&st->clients[c].seals,
                                      memory_order_relaxed);
        creates += atomic_load_explicit(&st->clients[c].creates,
                                        memory_order_relaxed);
    }
    o->sealed = rd(&h->sealed) + unlinked;
    o->spilled = rd(&h->spilled);
    o->max_objects = st->max_objects;
    o->clients = rd(&h->clients);
    o->max_clients = st->max_clients;
    o->creates = rd(&h->creates) + creates;
    o->seals = rd(&h->seals) + seals;
    o->deletes = rd(&h->deletes);
    o->aborts = rd(&h->aborts);
    o->evictions = rd(&h->evictions);
    o->evicted_bytes = rd(&h->evicted_bytes);
    o->spills = rd(&h->spills);
    o->spilled_bytes = rd(&h->spilled_bytes);
    o->restores = rd(&h->restores);
    o->restored_bytes = rd(&h->restored_bytes);
    o->reclaims = rd(&h->reclaims);
    o->repairs = rd(&h->repairs);
    return 0;
}

/* Under the lock. */
static void describe(weft_store *st, uint32_t d, weft_store_info *o)
{
    st_desc *x = st_desc_at(st, d);
    memset(o, 0, sizeof *o);
    st_id_load(x, &o->id);
    o->size = atomic_load_explicit(&x->size, memory_order_relaxed);
    o->state = atomic_load_explicit(&x->state, memory_order_relaxed);
    if (o->state == ST_DELETING)
        o->state = ST_SEALED;
    o->flags = x->flags;
    o->refs = st_refsum(st, d);
    if (o->state == ST_CREATED && st_owner(x) < st->max_clients)
        o->owner_pid = atomic_load_explicit(&st->clients[st_owner(x)].pid,
                                            memory_order_relaxed);
}

int weft_store_stat(weft_store *st, const weft_store_id *id,
                    weft_store_info *out)
{
    if (!st || !id || !out)
        return -EINVAL;
    int rc = st_lock(st);
    if (rc)
        return rc;
    uint32_t d = st_find_locked(st, id);
    if (d == ST_NIL32)
        rc = -ENOENT;
    else
        describe(st, d, out);
    st_unlock(st);
    return rc;
}

int weft_store_list(weft_store *st, weft_store_info *out, size_t cap,
                    size_t *count)
{
    if (!st || !count || (cap && !out))
        return -EINVAL;
    int rc = st_lock(st);
    if (rc)
        return rc;
    size_t n = 0;
    for (uint32_t d = 0; d < st->max_objects; d++) {
        if (atomic_load_explicit(&st_desc_at(st, d)->state,
                                 memory_order_relaxed) == ST_FREE)
            continue;
        if (n < cap)
            describe(st, d, &out[n]);
        n++;
    }
    st_unlock(st);
    *count = n;
    return 0;
}

#define WHY(...) (snprintf(why, len, __VA_ARGS__), -EUCLEAN)

/* Every live object is found by its id, every free client row is empty,
 * the counters match a recount. */
static int check_objects(weft_store *st, char *why, size_t len)
{
    uint64_t objects = 0, sealed = 0, spilled = 0, nfree = 0;
    for (uint32_t d = 0; d < st->max_objects; d++) {
        st_desc *x = st_desc_at(st, d);
        uint32_t s = atomic_load_explicit(&x->state, memory_order_relaxed);
        if (atomic_load_explicit(&x->gen, memory_order_relaxed) & 1)
            return WHY("object %u: generation odd outside the lock", d);
        if (s == ST_FREE) {
            nfree++;
            continue;
        }
        if (s != ST_CREATED && s != ST_SEALED && s != ST_SPILLED)
            return WHY("object %u: bad state %u", d, s);
        /* the heap check validates what is in memory; a spilled object
         * must fit it again (its size sizes the block of its restore) and
         * name a spill file */
        if (s == ST_SPILLED && !st_spilled_ok(st, x))
            return WHY("object %u: spilled, size %llu, file %u", d,
                       (unsigned long long)atomic_load_explicit(
                           &x->size, memory_order_relaxed),
                       x->spill_file);
        weft_store_id id;
        st_id_load(x, &id);
        if (st_find_locked(st, &id) != d)
            return WHY("object %u: not found by its id", d);
        objects += s != ST_SPILLED;
        /* a seal not linked yet is counted when it is (see st.h) */
        sealed += s == ST_SEALED && x->lru_seq != 0;
        spilled += s == ST_SPILLED;
    }
    if (objects != rd(&st->h->objects) || sealed != rd(&st->h->sealed) ||
        spilled != rd(&st->h->spilled))
        return WHY("counters disagree: objects %llu/%llu sealed %llu/%llu "
                   "spilled %llu/%llu", (unsigned long long)objects,
                   (unsigned long long)rd(&st->h->objects),
                   (unsigned long long)sealed,
                   (unsigned long long)rd(&st->h->sealed),
                   (unsigned long long)spilled,
                   (unsigned long long)rd(&st->h->spilled));
    uint64_t listed = 0;
    uint32_t d = st->h->free_desc;
    for (; d < st->max_objects && listed <= nfree;
         d = st_desc_at(st, d)->lru_next)
        listed++;
    if (listed != nfree || d != ST_NIL32)
        return WHY("%llu free objects, %llu on the free list",
                   (unsigned long long)nfree, (unsigned long long)listed);
    return 0;
}

static int check_lru(weft_store *st, char *why, size_t len)
{
    uint64_t n = 0, sealed = rd(&st->h->sealed);
    uint32_t prev = ST_NIL32;
    for (uint32_t d = st->h->lru_head; d != ST_NIL32;
         d = st_desc_at(st, d)->lru_next) {
        st_desc *x = st_desc_at(st, d);
        if (d >= st->max_objects || x->lru_prev != prev || ++n > sealed ||
            atomic_load_explicit(&x->state, memory_order_relaxed) != ST_SEALED)
            return WHY("LRU list broken at object %u", d);
        prev = d;
    }
    if (n != sealed || st->h->lru_tail != prev)
        return WHY("LRU list has %llu of %llu sealed objects",
                   (unsigned long long)n, (unsigned long long)sealed);
    return 0;
}

static int check_clients(weft_store *st, char *why, size_t len)
{
    uint64_t alive = 0;
    for (uint32_t c = 0; c < st->max_clients; c++) {
        if (atomic_load_explicit(&st->clients[c].state,
                                 memory_order_relaxed) == ST_CLIENT_ALIVE) {
            alive++;
            continue;
        }
        for (uint32_t d = 0; d < st->max_objects; d++)
            if (atomic_load_explicit(st_ref(st, c, d), memory_order_relaxed))
                return WHY("free client %u holds a reference to %u", c, d);
    }
    if (alive != rd(&st->h->clients))
        return WHY("%llu clients alive, counter says %llu",
                   (unsigned long long)alive,
                   (unsigned long long)rd(&st->h->clients));
    return 0;
}

/* No pending list says it holds more than it can (see "Lock-free seal"
 * in st.h: appends stop at ST_PEND_MAX). */
static int check_pending(weft_store *st, char *why, size_t len)
{
    for (uint32_t c = 0; c < st->max_clients; c++) {
        uint32_t n = atomic_load_explicit(&st->clients[c].npend,
                                          memory_order_relaxed);
        if (n > ST_PEND_MAX)
            return WHY("client %u: %u pending seals, at most %u", c, n,
                       ST_PEND_MAX);
    }
    return 0;
}

/* Under the lock: the checks that cost O(blocks + objects). */
int st_check_locked(weft_store *st, char *why, size_t len)
{
    int rc = check_pending(st, why, len);
    if (rc == 0)
        rc = st_heap_check(st, why, len);
    if (rc == 0)
        rc = check_objects(st, why, len);
    if (rc == 0)
        rc = check_lru(st, why, len);
    return rc;
}

int weft_store_check(weft_store *st, char *why, size_t why_len)
{
    char dummy[8];
    if (!st)
        return -EINVAL;
    if (!why) {
        why = dummy;
        why_len = sizeof dummy;
    }
    why[0] = 0;
    int rc = st_lock(st);
    if (rc)
        return rc;
    /* as at open (join, segment.c): the dead are reclaimed only in a
     * segment found sound, since a reclaim trusts their descriptors; and
     * what the reclaim did is checked again */
    rc = st_check_locked(st, why, why_len);
    if (rc == 0 && st_reclaim_dead(st) > 0)
        rc = st_check_locked(st, why, why_len);
    if (rc == 0)
        rc = check_clients(st, why, why_len);
    st_unlock(st);
    return rc;
}

int weft_store_id_random(weft_store_id *id)
{
    if (!id)
        return -EINVAL;
    size_t got = 0;
    while (got < sizeof id->bytes) {
        ssize_t n = getrandom(id->bytes + got, sizeof id->bytes - got, 0);
        if (n < 0 && errno != EINTR)
            return -errno;
        got += n > 0 ? (size_t)n : 0;
    }
    return 0;
}

void weft_store_id_hex(const weft_store_id *id, char out[41])
{
    for (int i = 0; i < WEFT_STORE_ID_SIZE; i++)
        snprintf(out + 2 * i, 3, "%02x", id->bytes[i]);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int weft_store_id_parse(const char *hex, weft_store_id *id)
{
    if (!hex || !id || strlen(hex) != 2 * WEFT_STORE_ID_SIZE)
        return -EINVAL;
    for (int i = 0; i < WEFT_STORE_ID_SIZE; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0)
            return -EINVAL;
        id->bytes[i] = (uint8_t)(a * 16 + b);
    }
    return 0;
}
