/* The id index: open addressing with linear probing over u32 slots (0
 * empty, ~0 tombstone, else descriptor + 1), at least twice as many slots
 * as objects. Writers hold the store lock; readers (lock-free gets) treat
 * what they find as a hint and validate the descriptor, so a slot that is
 * stale, or an index being rebuilt, costs a miss and a locked retry, never
 * a wrong answer. */
#include <string.h>

#include "st.h"

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static void id_words(const weft_store_id *id, uint64_t w[3])
{
    uint32_t last;
    memcpy(&w[0], id->bytes, 8);
    memcpy(&w[1], id->bytes + 8, 8);
    memcpy(&last, id->bytes + 16, 4);
    w[2] = last;
}

static uint32_t hash_id(weft_store *st, const weft_store_id *id)
{
    uint64_t w[3];
    id_words(id, w);
    return (uint32_t)mix(w[0] ^ mix(w[1] ^ mix(w[2]))) & st->index_mask;
}

void st_id_store(st_desc *x, const weft_store_id *id)
{
    uint64_t w[3];
    id_words(id, w);
    for (int i = 0; i < 3; i++)
        atomic_store_explicit(&x->id[i], w[i], memory_order_relaxed);
}

void st_id_load(st_desc *x, weft_store_id *id)
{
    uint64_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = atomic_load_explicit(&x->id[i], memory_order_relaxed);
    uint32_t last = (uint32_t)w[2];
    memcpy(id->bytes, &w[0], 8);
    memcpy(id->bytes + 8, &w[1], 8);
    memcpy(id->bytes + 16, &last, 4);
}

int st_id_equal(st_desc *x, const weft_store_id *id)
{
    uint64_t w[3];
    id_words(id, w);
    return atomic_load_explicit(&x->id[0], memory_order_relaxed) == w[0] &&
           atomic_load_explicit(&x->id[1], memory_order_relaxed) == w[1] &&
           atomic_load_explicit(&x->id[2], memory_order_relaxed) == w[2];
}

/* Brings id's first index slot into the cache (for writing) before the
 * caller takes the lock, so that the miss is not paid inside it. */
void st_index_prefetch(weft_store *st, const weft_store_id *id)
{
    __builtin_prefetch((const void *)&st->index[hash_id(st, id)], 1, 3);
}

static uint32_t slot_load(weft_store *st, uint32_t i)
{
    return atomic_load_explicit(&st->index[i], memory_order_relaxed);
}

/* Lock-free: a descriptor that carried id at an even gen (returned in
 * *gen), or ST_NIL32. The caller validates again after taking its
 * reference. gen acquire pairs with the creator's gen release, so the id
 * and fields written before it are visible. */
uint32_t st_find_fast(weft_store *st, const weft_store_id *id, uint32_t *gen)
{
    uint32_t i = hash_id(st, id);
    for (uint32_t n = 0; n <= st->index_mask;
         n++, i = (i + 1) & st->index_mask) {
        uint32_t v = slot_load(st, i);
        if (v == ST_IDX_EMPTY)
            return ST_NIL32;
        if (v == ST_IDX_TOMB || v - 1 >= st->max_objects)
            continue;
        st_desc *x = st_desc_at(st, v - 1);
        uint32_t g = atomic_load_explicit(&x->gen, memory_order_acquire);
        if ((g & 1) || !st_id_equal(x, id))
            continue;
        *gen = g;
        return v - 1;
    }
    return ST_NIL32;
}

/* Under the lock: the live descriptor with this id, or ST_NIL32. */
uint32_t st_find_locked(weft_store *st, const weft_store_id *id)
{
    uint32_t i = hash_id(st, id);
    for (uint32_t n = 0; n <= st->index_mask;
         n++, i = (i + 1) & st->index_mask) {
        uint32_t v = slot_load(st, i);
        if (v == ST_IDX_EMPTY)
            return ST_NIL32;
        if (v == ST_IDX_TOMB || v - 1 >= st->max_objects)
            continue;
        st_desc *x = st_desc_at(st, v - 1);
        if (atomic_load_explicit(&x->state, memory_order_relaxed) != ST_FREE &&
            st_id_equal(x, id))
            return v - 1;
    }
    return ST_NIL32;
}

static int insert_raw(weft_store *st, uint32_t d)
{
    weft_store_id id;
    st_id_load(st_desc_at(st, d), &id);
    uint32_t i = hash_id(st, &id), tomb = ST_NIL32;
    for (uint32_t n = 0; n <= st->index_mask;
         n++, i = (i + 1) & st->index_mask) {
        uint32_t v = slot_load(st, i);
        if (v == ST_IDX_TOMB && tomb == ST_NIL32)
            tomb = i;
        if (v != ST_IDX_EMPTY)
            continue;
        if (tomb != ST_NIL32) {
            i = tomb;
            st->h->index_tombs--;
        }
        atomic_store_explicit(&st->index[i], d + 1, memory_order_relaxed);
        st->h->index_used++;
        return 0;
    }
    return -1;
}

/* Rewrites the index from the live descriptors (tombstones gone). */
void st_index_rebuild(weft_store *st)
{
    for (uint32_t i = 0; i <= st->index_mask; i++)
        atomic_store_explicit(&st->index[i], ST_IDX_EMPTY,
                              memory_order_relaxed);
    st->h->index_used = 0;
    st->h->index_tombs = 0;
    for (uint32_t d = 0; d < st->max_objects; d++)
        if (atomic_load_explicit(&st_desc_at(st, d)->state,
                                 memory_order_relaxed) != ST_FREE)
            insert_raw(st, d);
}

/* Under the lock; the descriptor's id is set. Slots are at least twice
 * the objects, so the table never fills; tombstones beyond a quarter of
 * it trigger a rebuild. */
int st_index_insert(weft_store *st, uint32_t d)
{
    if (st->h->index_tombs > (st->index_mask + 1) / 4) {
        st_index_rebuild(st);
        /* which inserted d already, if its state is set (as create does
         * before inserting): a second entry would outlive its removal */
        if (atomic_load_explicit(&st_desc_at(st, d)->state,
                                 memory_order_relaxed) != ST_FREE)
            return 0;
    }
    return insert_raw(st, d);
}

void st_index_remove(weft_store *st, uint32_t d)
{
    weft_store_id id;
    st_id_load(st_desc_at(st, d), &id);
    uint32_t i = hash_id(st, &id);
    for (uint32_t n = 0; n <= st->index_mask;
         n++, i = (i + 1) & st->index_mask) {
        uint32_t v = slot_load(st, i);
        if (v == ST_IDX_EMPTY)
            return;
        if (v == d + 1) {
            atomic_store_explicit(&st->index[i], ST_IDX_TOMB,
                                  memory_order_relaxed);
            st->h->index_used--;
            st->h->index_tombs++;
            return;
        }
    }
}
