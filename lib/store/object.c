/* Objects: create, abort, delete under the lock; seal, get and release
 * lock-free on the fast path (see st.h for the protocols); LRU eviction
 * with a second chance for objects got since they were queued. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "st.h"

/* A handle's references to one object stop short of the u16 limit with
 * room for every thread of the process to overshoot by one. */
#define REFS_LIMIT 60000u

/* ---- descriptors and lists (under the lock) */

static void free_push(weft_store *st, uint32_t d)
{
    st_desc_at(st, d)->lru_next = st->h->free_desc;
    st->h->free_desc = d;
}

/* The raw free of the truth (no derived structure touched): gen odd,
 * state FREE, id cleared, gen even; see the order in st.h. */
void st_desc_reset(weft_store *st, uint32_t d)
{
    st_desc *x = st_desc_at(st, d);
    uint32_t g = atomic_load_explicit(&x->gen, memory_order_relaxed);
    g |= 1;
    atomic_store_explicit(&x->gen, g, memory_order_seq_cst);
    atomic_store_explicit(&x->state, ST_FREE, memory_order_relaxed);
    for (int i = 0; i < 3; i++)
        atomic_store_explicit(&x->id[i], 0, memory_order_relaxed);
    /* release: a sealer that reads this owner sees gen moved on (seal_at) */
    atomic_store_explicit(&x->owner, ST_NIL32, memory_order_release);
    x->flags = 0;
    /* release: pairs with st_find_fast's acquire of gen */
    atomic_store_explicit(&x->gen, g + 1, memory_order_release);
}

void st_lru_push(weft_store *st, uint32_t d)
{
    st_hdr *h = st->h;
    st_desc *x = st_desc_at(st, d);
    x->lru_seq = ++h->lru_seq;
    x->lru_next = ST_NIL32;
    x->lru_prev = h->lru_tail;
    if (h->lru_tail != ST_NIL32)
        st_desc_at(st, h->lru_tail)->lru_next = d;
    else
        h->lru_head = d;
    h->lru_tail = d;
}

void st_lru_unlink(weft_store *st, uint32_t d)
{
    st_hdr *h = st->h;
    st_desc *x = st_desc_at(st, d);
    if (x->lru_prev != ST_NIL32)
        st_desc_at(st, x->lru_prev)->lru_next = x->lru_next;
    else
        h->lru_head = x->lru_next;
    if (x->lru_next != ST_NIL32)
        st_desc_at(st, x->lru_next)->lru_prev = x->lru_prev;
    else
        h->lru_tail = x->lru_prev;
    x->lru_prev = x->lru_next = ST_NIL32;
    x->lru_seq = 0;
}

/* Lowers client c's count of unlinked seals, not below 0 (a repair may
 * have zeroed it while the seal was on its way). */
static void unlinked_dec(weft_store *st, uint32_t c)
{
    if (c >= st->max_clients)
        return;
    _Atomic int32_t *n = &st->clients[c].unlinked;
    int32_t v = atomic_load_explicit(n, memory_order_relaxed);
    while (v > 0 && !atomic_compare_exchange_weak_explicit(
                        n, &v, v - 1, memory_order_relaxed,
                        memory_order_relaxed))
        ;
}

/* Under the lock: links d if it is sealed and not linked yet (a seal
 * made without the lock); anyone holding the lock may, any number of
 * times (see "Lock-free seal" in st.h). acquire on state: the sealer's
 * raise of its count, made before its CAS, is then seen before our
 * decrement. */
void st_link_sealed(weft_store *st, uint32_t d)
{
    st_desc *x = st_desc_at(st, d);
    if (x->lru_seq != 0 ||
        atomic_load_explicit(&x->state, memory_order_acquire) != ST_SEALED)
        return;
    st_lru_push(st, d);
    ST_ADD(&st->h->sealed, 1);
    unlinked_dec(st, st_owner(x));
}

/* Under the lock: links client c's pending seals when there are at
 * least min (>= 1) of them (the drain of st.h's "Lock-free seal"). */
void st_link_pending(weft_store *st, uint32_t c, uint32_t min)
{
    st_client *cl = &st->clients[c];
    /* acquire: pairs with the appender's release CAS, so pend[0..n) is
     * written */
    uint32_t n = atomic_load_explicit(&cl->npend, memory_order_acquire);
    if (n < min)
        return;
    uint32_t done = 0;
    for (;;) {
        /* a garbage count (a corrupt segment) is read up to the list's
         * end, but the CAS expects the count itself: capped, it could
         * never match, and this loop would spin for ever, under the lock */
        uint32_t end = n > ST_PEND_MAX ? ST_PEND_MAX : n;
        for (; done < end; done++) {
            uint32_t d = atomic_load_explicit(&cl->pend[done],
                                              memory_order_relaxed);
            if (d < st->max_objects)
                st_link_sealed(st, d);
        }
        if (atomic_compare_exchange_weak_explicit(
                &cl->npend, &n, 0, memory_order_acquire,
                memory_order_acquire))
            return;
    }
}

/* Under the lock: links every client's pending seals, when space is
 * needed and they may be evictable. Returns how many it linked. */
static uint32_t link_orphans(weft_store *st)
{
    uint64_t before = atomic_load_explicit(&st->h->sealed,
                                           memory_order_relaxed);
    for (uint32_t c = 0; c < st->max_clients; c++)
        st_link_pending(st, c, 1);
    return (uint32_t)(atomic_load_explicit(&st->h->sealed,
                                           memory_order_relaxed) - before);
}

/* Frees descriptor d and everything derived from it. The caller made
 * sure nobody references it (state CREATED by the caller, or claimed). */
void st_desc_free(weft_store *st, uint32_t d)
{
    st_hdr *h = st->h;
    st_desc *x = st_desc_at(st, d);
    uint32_t s = atomic_load_explicit(&x->state, memory_order_relaxed);
    st_index_remove(st, d);
    if (s == ST_SPILLED) {
        /* A spilled object is freed without a claim (nobody can hold a
         * reference to it), so mark it half-freed (gen odd; repair maps
         * that to FREE) before its file may go: a death right after the
         * drop must not leave a SPILLED descriptor whose bytes are gone,
         * which every later get would answer with -EIO. */
        atomic_store_explicit(&x->gen,
                              atomic_load_explicit(&x->gen,
                                                   memory_order_relaxed) | 1,
                              memory_order_seq_cst);
        ST_POINT("free:spilled-marked");
        st_spill_drop(st, x->spill_file);
        ST_POINT("free:spill-dropped");
        ST_SUB(&h->spilled, 1);
    } else {
        if (s == ST_SEALED || s == ST_DELETING) {
            if (x->lru_seq != 0) {
                st_lru_unlink(st, d);
                ST_SUB(&h->sealed, 1);
            } else {
                unlinked_dec(st, st_owner(x)); /* sealed, never linked */
            }
        }
        st_heap_free(st, atomic_load_explicit(&x->off, memory_order_relaxed));
        ST_SUB(&h->objects, 1);
    }
    ST_POINT("free:derived-done");
    st_desc_reset(st, d);
    free_push(st, d);
}

/* Claims a sealed object for freeing or spilling: DELETING (seq_cst),
 * then no reference may exist (seq_cst loads); see the Dekker argument
 * in st.h. -EBUSY, state restored, when someone holds one. */
int st_try_claim(weft_store *st, uint32_t d)
{
    st_desc *x = st_desc_at(st, d);
    atomic_store_explicit(&x->state, ST_DELETING, memory_order_seq_cst);
    if (st_refsum(st, d) == 0)
        return 0;
    atomic_store_explicit(&x->state, ST_SEALED, memory_order_seq_cst);
    return -EBUSY;
}

static int by_lru(const void *a, const void *b, void *ctx)
{
    st_desc *descs = ctx;
    uint64_t x = descs[*(const uint32_t *)a].lru_seq;
    uint64_t y = descs[*(const uint32_t *)b].lru_seq;
    return x < y ? -1 : x > y;
}

/* Recreates the free-descriptor stack, the LRU list (in lru_seq order),
 * the object counters and the spill files' live counts. */
void st_rebuild_lists(weft_store *st)
{
    st_hdr *h = st->h;
    uint32_t *sealed = weft__malloc(sizeof *sealed * (st->max_objects + 1u));
    uint64_t objects = 0, nsealed = 0, spilled = 0;
    h->free_desc = ST_NIL32;
    h->lru_head = h->lru_tail = ST_NIL32;
    memset(h->spill_live, 0, sizeof h->spill_live);
    for (uint32_t d = st->max_objects; d-- > 0;) {
        st_desc *x = st_desc_at(st, d);
        uint32_t s = atomic_load_explicit(&x->state, memory_order_relaxed);
        x->lru_prev = x->lru_next = ST_NIL32;
        if (s == ST_FREE)
            free_push(st, d);
        else if (s == ST_SPILLED) {
            h->spill_live[x->spill_file]++;
            spilled++;
        } else {
            objects++;
            if (s == ST_SEALED && sealed)
                sealed[nsealed] = d;
            else if (s == ST_SEALED) /* no memory to sort: any order */
                st_lru_push(st, d);
            nsealed += s == ST_SEALED;
        }
    }
    if (sealed) {
        /* re-stamped from lru_seq on, in the old order */
        qsort_r(sealed, nsealed, sizeof *sealed, by_lru, st->descs);
        for (uint64_t i = 0; i < nsealed; i++)
            st_lru_push(st, sealed[i]);
        weft__free(sealed);
    }
    atomic_store_explicit(&h->objects, objects, memory_order_relaxed);
    atomic_store_explicit(&h->sealed, nsealed, memory_order_relaxed);
    atomic_store_explicit(&h->spilled, spilled, memory_order_relaxed);
}

/* ---- making room (under the lock) */

/* Evicts the least recently used sealed, unpinned, unreferenced object.
 * An object got since it was queued is moved to the back once (second
 * chance: gets are lock-free and only set `touched`). 1 when one went. */
static int evict_one(weft_store *st)
{
    uint64_t budget = 2 * atomic_load_explicit(&st->h->sealed,
                                               memory_order_relaxed) + 2;
    uint32_t d = st->h->lru_head;
    while (d != ST_NIL32 && budget-- > 0) {
        st_desc *x = st_desc_at(st, d);
        uint32_t next = x->lru_next;
        if (atomic_load_explicit(&x->touched, memory_order_relaxed)) {
            atomic_store_explicit(&x->touched, 0, memory_order_relaxed);
            st_lru_unlink(st, d);
            st_lru_push(st, d);
        } else if (!(x->flags & WEFT_STORE_PIN) && st_try_claim(st, d) == 0) {
            ST_POINT("evict:claimed");
            ST_ADD(&st->h->evictions, 1);
            ST_ADD(&st->h->evicted_bytes, x->block);
            st_desc_free(st, d);
            return 1;
        }
        d = next;
    }
    return 0;
}

/* One step towards room: evict, else reclaim the dead, else spill.
 * -ENOSPC when none of them can free anything. */
static int free_something(weft_store *st, uint64_t need)
{
    if (evict_one(st))
        return 0;
    if (link_orphans(st) > 0 && evict_one(st))
        return 0;
    if (st_reclaim_dead(st) > 0)
        return 0;
    if (st->spill_dir && st_spill(st, need) == 0)
        return 0;
    return -ENOSPC;
}

int st_alloc_block(weft_store *st, uint64_t need, uint64_t *off,
                   uint64_t *got)
{
    for (;;) {
        if (st_heap_alloc(st, need, off, got) == 0)
            return 0;
        int rc = free_something(st, need);
        if (rc)
            return rc;
    }
}

static int alloc_desc(weft_store *st, uint32_t *d)
{
    while (st->h->free_desc == ST_NIL32) {
        if (evict_one(st))
            continue;
        if (link_orphans(st) > 0 && evict_one(st))
            continue;
        if (st_reclaim_dead(st) > 0)
            continue;
        return -ENOSPC;
    }
    *d = st->h->free_desc;
    st->h->free_desc = st_desc_at(st, *d)->lru_next;
    return 0;
}

/* ---- the public operations */

static int id_ok(const weft_store *st, const weft_store_id *id)
{
    return st && id;
}

/* Fills the descriptor of a new object in the order st.h gives. */
static void desc_fill(weft_store *st, uint32_t d, const weft_store_id *id,
                      uint64_t off, uint64_t got, size_t size,
                      unsigned flags)
{
    st_desc *x = st_desc_at(st, d);
    uint32_t g = atomic_load_explicit(&x->gen, memory_order_relaxed) | 1;
    atomic_store_explicit(&x->gen, g, memory_order_seq_cst);
    st_id_store(x, id);
    atomic_store_explicit(&x->off, off, memory_order_relaxed);
    atomic_store_explicit(&x->size, size, memory_order_relaxed);
    atomic_store_explicit(&x->touched, 0, memory_order_relaxed);
    x->block = got;
    atomic_store_explicit(&x->owner, st->me, memory_order_relaxed);
    x->flags = flags;
    x->lru_seq = 0;
    x->lru_prev = x->lru_next = ST_NIL32;
    ST_POINT("create:half-desc");
    atomic_store_explicit(&x->state, ST_CREATED, memory_order_relaxed);
    /* release: pairs with st_find_fast's acquire of gen */
    atomic_store_explicit(&x->gen, g + 1, memory_order_release);
}

int weft_store_create(weft_store *st, const weft_store_id *id, size_t size,
                      unsigned flags, void **data)
{
    if (!id_ok(st, id) || !data || (flags & ~(unsigned)WEFT_STORE_PIN))
        return -EINVAL;
    if (size > st->capacity - ST_BLK_HDR)
        return -ENOSPC;
    uint64_t need = st_block_need(size), off, got;
    uint32_t d;
    st_index_prefetch(st, id);
    int rc = st_lock(st);
    if (rc)
        return rc;
    ST_POINT("create:locked");
    if (st_find_locked(st, id) != ST_NIL32) {
        rc = -EEXIST;
        goto out;
    }
    rc = alloc_desc(st, &d);
    if (rc)
        goto out;
    rc = st_alloc_block(st, need, &off, &got);
    if (rc) {
        free_push(st, d);
        goto out;
    }
    ST_POINT("create:allocated");
    desc_fill(st, d, id, off, got, size, flags);
    st_index_insert(st, d);
    ST_ADD(&st->h->objects, 1);
    ST_ADD(&st->clients[st->me].creates, 1); /* our line, under the lock */
    *data = st->data + off + ST_BLK_HDR;
out:
    st_unlock(st);
    return rc;
}

/* Under the lock: d, an object this handle created and has not sealed. */
static int own_unsealed(weft_store *st, const weft_store_id *id,
                        uint32_t *d)
{
    *d = st_find_locked(st, id);
    if (*d == ST_NIL32)
        return -ENOENT;
    st_desc *x = st_desc_at(st, *d);
    if (atomic_load_explicit(&x->state, memory_order_relaxed) != ST_CREATED)
        return -EALREADY;
    return st_owner(x) == st->me ? 0 : -EPERM;
}

/* Wakes getters waiting for a seal. seq_cst: with the waiter's seq_cst
 * increment of nwaiters and its locked look at the object that follows
 * (get_slow), either we see it waiting or it sees the object sealed
 * (Dekker). */
static void wake_sealed(weft_store *st)
{
    if (atomic_load_explicit(&st->h->nwaiters, memory_order_seq_cst) == 0)
        return;
    atomic_fetch_add_explicit(&st->h->seal_seq, 1, memory_order_seq_cst);
    weft__futex_wake_in(&st->h->seal_seq, INT_MAX, true);
}

/* Appends sealed d to this client's pending list (see st.h); a full list
 * is linked first. If that fails (the lock is unusable), d stays unlinked
 * until this client is reclaimed. */
static void note_pending(weft_store *st, uint32_t d)
{
    st_client *cl = &st->clients[st->me];
    pthread_mutex_lock(&st->pend_mu);
    for (int tries = 0; tries < 3; tries++) {
        uint32_t n = atomic_load_explicit(&cl->npend, memory_order_relaxed);
        if (n >= ST_PEND_MAX) {
            pthread_mutex_unlock(&st->pend_mu);
            if (st_lock(st) == 0) { /* links the list */
                st_link_pending(st, st->me, 1);
                st_unlock(st);
            }
            pthread_mutex_lock(&st->pend_mu);
            continue;
        }
        atomic_store_explicit(&cl->pend[n], d, memory_order_relaxed);
        /* release: the entry before the count; fails when a drain
         * emptied the list meanwhile: append at the new end */
        if (atomic_compare_exchange_strong_explicit(
                &cl->npend, &n, n + 1, memory_order_release,
                memory_order_relaxed))
            break;
        tries--; /* a drain is progress, not a failed try */
    }
    pthread_mutex_unlock(&st->pend_mu);
}

/* What a seal answers when d's (gen, state) moved on from (gen, CREATED)
 * to cur: sealed by someone (-EALREADY), or gone (-ENOENT). */
static int seal_lost_rc(uint64_t cur, uint32_t gen)
{
    return cur == st_gs(gen, ST_SEALED) || cur == st_gs(gen, ST_SPILLED)
               ? -EALREADY
               : -ENOENT;
}

/* Seals d, seen at gen holding the caller's id: CREATED -> SEALED with
 * one compare-and-swap of (gen, state), so a descriptor freed and reused
 * since is left alone. seq_cst: pairs with the getter's seq_cst load of
 * state, which makes the data written before it visible. */
static int seal_at(weft_store *st, uint32_t d, uint32_t gen)
{
    st_desc *x = st_desc_at(st, d);
    uint64_t want = st_gs(gen, ST_CREATED);
    uint64_t cur = atomic_load_explicit(&x->gs, memory_order_relaxed);
    if (cur != want)
        return seal_lost_rc(cur, gen);
    ST_POINT("seal:checked");
    if (atomic_load_explicit(&x->owner, memory_order_acquire) != st->me) {
        /* An abort (or a free) that won the race since the check above
         * resets the owner after it moved gs on (st_desc_reset: acquire
         * here pairs with its release), so a changed gs says the object
         * is gone, as the CAS below would; only an unchanged one means
         * another handle's object. */
        cur = atomic_load_explicit(&x->gs, memory_order_relaxed);
        return cur == want ? -EPERM : seal_lost_rc(cur, gen);
    }
    /* counted first, so that a linker never takes the count below the
     * truth (see st_link_sealed) */
    _Atomic int32_t *unlinked = &st->clients[st->me].unlinked;
    atomic_fetch_add_explicit(unlinked, 1, memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(
            &x->gs, &want, st_gs(gen, ST_SEALED), memory_order_seq_cst,
            memory_order_relaxed)) {
        atomic_fetch_sub_explicit(unlinked, 1, memory_order_relaxed);
        /* want now holds what won: a seal of this handle's other thread,
         * perhaps spilled since (-EALREADY), or an abort (-ENOENT) */
        return seal_lost_rc(want, gen);
    }
    ST_POINT("seal:sealed");
    atomic_fetch_add_explicit(&st->clients[st->me].seals, 1,
                              memory_order_relaxed);
    wake_sealed(st);
    note_pending(st, d);
    return 0;
}

int weft_store_seal(weft_store *st, const weft_store_id *id)
{
    if (!id_ok(st, id))
        return -EINVAL;
    uint32_t gen, d = st_find_fast(st, id, &gen);
    if (WEFT_LIKELY(d != ST_NIL32))
        return seal_at(st, d, gen);
    /* the index may be mid-rebuild: look again under the lock */
    int rc = st_lock(st);
    if (rc)
        return rc;
    d = st_find_locked(st, id);
    gen = d == ST_NIL32 ? 0 : atomic_load_explicit(&st_desc_at(st, d)->gen,
                                                   memory_order_relaxed);
    st_unlock(st);
    return d == ST_NIL32 ? -ENOENT : seal_at(st, d, gen);
}

int weft_store_abort(weft_store *st, const weft_store_id *id)
{
    if (!id_ok(st, id))
        return -EINVAL;
    uint32_t d;
    int rc = st_lock(st);
    if (rc)
        return rc;
    rc = own_unsealed(st, id, &d);
    /* the CAS loses to a concurrent lock-free seal: then it stays */
    uint32_t s = ST_CREATED;
    if (rc == 0 && !atomic_compare_exchange_strong_explicit(
                       &st_desc_at(st, d)->state, &s, ST_ABORTING,
                       memory_order_relaxed, memory_order_relaxed))
        rc = -EALREADY;
    if (rc == 0) {
        ST_POINT("abort:claimed");
        st_desc_free(st, d);
        ST_ADD(&st->h->aborts, 1);
    }
    st_unlock(st);
    return rc;
}

int weft_store_put(weft_store *st, const weft_store_id *id, const void *data,
                   size_t size, unsigned flags)
{
    void *p;
    if (size && !data)
        return -EINVAL;
    int rc = weft_store_create(st, id, size, flags, &p);
    if (rc)
        return rc;
    if (size)
        memcpy(p, data, size);
    return weft_store_seal(st, id);
}

/* The state of descriptor d (ST_FREE for ST_NIL32: not found); relaxed,
 * as the store's lock, which the caller holds, orders it. */
static uint32_t state_locked(weft_store *st, uint32_t d)
{
    return d == ST_NIL32 ? ST_FREE
                         : atomic_load_explicit(&st_desc_at(st, d)->state,
                                                memory_order_relaxed);
}

int weft_store_delete(weft_store *st, const weft_store_id *id)
{
    if (!id_ok(st, id))
        return -EINVAL;
    int rc = st_lock(st);
    if (rc)
        return rc;
    uint32_t d = st_find_locked(st, id);
    uint32_t s = state_locked(st, d);
    if (d == ST_NIL32)
        rc = -ENOENT;
    else if (s == ST_CREATED)
        rc = -EBUSY;
    else if (s == ST_SEALED)
        rc = st_try_claim(st, d);
    if (rc == 0) {
        ST_POINT("delete:claimed");
        st_desc_free(st, d);
        ST_ADD(&st->h->deletes, 1);
    }
    st_unlock(st);
    return rc;
}

/* ---- get and release */

static void fill_obj(weft_store *st, uint32_t d, uint32_t gen,
                     uint64_t off, uint64_t size, weft_store_obj *obj)
{
    st_desc *x = st_desc_at(st, d);
    obj->data = st->data + off + ST_BLK_HDR;
    obj->size = size;
    obj->slot = d;
    obj->gen = gen;
    if (!atomic_load_explicit(&x->touched, memory_order_relaxed))
        atomic_store_explicit(&x->touched, 1, memory_order_relaxed);
}

/* The object lies inside the data area (a segment written by something
 * else than weft could say otherwise). */
static int bounds_ok(weft_store *st, uint64_t off, uint64_t size)
{
    /* in that order, so that no subtraction wraps: an offset within a
     * header of the end would otherwise pass any size */
    return off < st->capacity && st->capacity - off >= ST_BLK_HDR &&
           size <= st->capacity - off - ST_BLK_HDR;
}

/* Takes a reference on d if it still holds the sealed object seen at
 * gen: increment first (seq_cst), then re-check (seq_cst), see st.h.
 * -EAGAIN when it changed, -EOVERFLOW at the reference limit. */
static int try_ref(weft_store *st, uint32_t d, uint32_t gen,
                   weft_store_obj *obj)
{
    _Atomic uint16_t *r = &st->mine[d];
    uint16_t old = atomic_fetch_add_explicit(r, 1, memory_order_seq_cst);
    ST_POINT("get:counted");
    st_desc *x = st_desc_at(st, d);
    int rc = old >= REFS_LIMIT ? -EOVERFLOW : 0;
    if (rc == 0 &&
        (atomic_load_explicit(&x->state, memory_order_seq_cst) != ST_SEALED ||
         atomic_load_explicit(&x->gen, memory_order_acquire) != gen))
        rc = -EAGAIN;
    /* read once: checked here, handed out by fill_obj */
    uint64_t off = atomic_load_explicit(&x->off, memory_order_relaxed);
    uint64_t size = atomic_load_explicit(&x->size, memory_order_relaxed);
    if (rc == 0 && !bounds_ok(st, off, size))
        rc = -EPROTO;
    if (rc) {
        atomic_fetch_sub_explicit(r, 1, memory_order_release);
        return rc;
    }
    fill_obj(st, d, gen, off, size, obj);
    return 0;
}

/* Under the lock: a reference to id if it is sealed (restoring it from
 * the spill directory if needed); -ENOENT if absent or unsealed, with
 * *seq the seal sequence read under the lock. */
static int get_locked(weft_store *st, const weft_store_id *id,
                      weft_store_obj *obj, uint32_t *seq)
{
    int rc = st_lock(st);
    if (rc)
        return rc;
    /* acquire: a seq bumped by a seal makes that seal visible below */
    *seq = atomic_load_explicit(&st->h->seal_seq, memory_order_acquire);
    uint32_t d = st_find_locked(st, id);
    rc = -ENOENT;
    if (state_locked(st, d) == ST_SPILLED)
        rc = st_restore(st, d);
    /* seq_cst: the waiter's side of wake_sealed's Dekker (get_slow) */
    if (d != ST_NIL32 &&
        atomic_load_explicit(&st_desc_at(st, d)->state,
                             memory_order_seq_cst) == ST_SEALED)
        rc = try_ref(st, d, atomic_load_explicit(&st_desc_at(st, d)->gen,
                                                 memory_order_relaxed), obj);
    st_unlock(st);
    return rc;
}

/* A waiting get looks again at least this often, woken or not. The wake
 * is a sealer's, after its seal (wake_sealed): a sealer killed between
 * the two leaves the object sealed and readable, and seal_seq where the
 * waiter read it, so a sleep bounded only by the caller's timeout waited
 * to the deadline (or for ever) for an object that was there. A look
 * costs the waiter one lock hold per nap. */
#define SEAL_NAP_NS (100ull * 1000000u)

/* A waiting get announces itself (nwaiters) before its locked look, not
 * after it: with the seal's CAS and its load of nwaiters (wake_sealed),
 * all seq_cst, either the look sees the seal or the sealer sees the
 * waiter and moves seal_seq, which the waiter then sleeps on from the
 * value read in the look. A look of its own after the announcement made
 * without the lock (as this was) misses an object whose index slot a
 * rebuild has cleared for the moment: the waiter slept on a sequence that
 * the seal, having seen nobody waiting, never moved. */
static int get_slow(weft_store *st, const weft_store_id *id, int timeout_ms,
                    weft_store_obj *obj)
{
    /* CLOCK_MONOTONIC, absolute; 0: none */
    uint64_t deadline = timeout_ms < 0 ? 0
                        : weft__now_ns() + (uint64_t)timeout_ms * 1000000u;
    const bool waits = timeout_ms != 0;
    for (;;) {
        uint32_t seq = 0;
        if (waits)
            atomic_fetch_add_explicit(&st->h->nwaiters, 1,
                                      memory_order_seq_cst);
        int rc = get_locked(st, id, obj, &seq);
        if (rc == -ENOENT) {
            /* a receive's held sends go out first (internal.h), a poll's
             * too: the object may be sealed by the actor they go to */
            weft__before_wait();
            if (waits && deadline && weft__now_ns() >= deadline)
                rc = -ETIMEDOUT;
            else if (waits) { /* the segment's futex: other processes' */
                uint64_t nap = weft__now_ns() + SEAL_NAP_NS;
                weft__futex_wait_until_in(&st->h->seal_seq, seq,
                                          deadline && deadline < nap
                                              ? deadline
                                              : nap,
                                          true);
            }
        }
        if (waits)
            atomic_fetch_sub_explicit(&st->h->nwaiters, 1,
                                      memory_order_relaxed);
        if (rc != -ENOENT || !waits)
            return rc;
    }
}

int weft_store_get(weft_store *st, const weft_store_id *id, int timeout_ms,
                   weft_store_obj *obj)
{
    if (!id_ok(st, id) || !obj)
        return -EINVAL;
    uint32_t gen;
    uint32_t d = st_find_fast(st, id, &gen);
    if (WEFT_LIKELY(d != ST_NIL32)) {
        int rc = try_ref(st, d, gen, obj);
        if (rc != -EAGAIN)
            return rc;
    }
    return get_slow(st, id, timeout_ms, obj);
}

int weft_store_release(weft_store *st, weft_store_obj *obj)
{
    if (!st || !obj || obj->slot >= st->max_objects || !obj->data)
        return -EINVAL;
    _Atomic uint16_t *r = &st->mine[obj->slot];
    st_desc *x = st_desc_at(st, obj->slot);
    if (atomic_load_explicit(&x->gen, memory_order_relaxed) != obj->gen)
        return -EINVAL;
    uint16_t c = atomic_load_explicit(r, memory_order_relaxed);
    do {
        if (c == 0)
            return -EINVAL;
        /* release: our reads of the data happen before a freer's seq_cst
         * load of the count that lets it reuse the block */
    } while (!atomic_compare_exchange_weak_explicit(
        r, &c, (uint16_t)(c - 1), memory_order_release, memory_order_relaxed));
    obj->data = NULL;
    obj->slot = ST_NIL32;
    return 0;
}

int weft_store_contains(weft_store *st, const weft_store_id *id)
{
    if (!id_ok(st, id))
        return -EINVAL;
    int rc = st_lock(st);
    if (rc)
        return rc;
    uint32_t d = st_find_locked(st, id);
    uint32_t s = state_locked(st, d);
    st_unlock(st);
    return s == ST_SEALED || s == ST_SPILLED;
}
