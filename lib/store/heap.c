/* The data-area allocator: boundary-tag blocks (64-byte header, sizes in
 * multiples of 64) with segregated free lists by power-of-two size class
 * and a bitmap of the non-empty classes. Everything here runs under the
 * store lock. It is derived state: st_heap_rebuild() recreates headers and
 * lists from the descriptors' (off, block) pairs, so a process that dies
 * in the middle of a split or a coalesce costs a rebuild, not a leak. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"

#define USED 1ull

static unsigned bin_of(uint64_t size)
{
    unsigned b = 63u - (unsigned)__builtin_clzll(size / ST_ALIGN);
    return b < ST_BINS ? b : ST_BINS - 1;
}

static uint64_t bsize(const st_blk *b)
{
    return b->size & ~USED;
}

/* The block for an object of size bytes. An empty object gets one unit
 * of data all the same: its data pointer must point into its own block,
 * where a write (which no caller should make, but a memcpy of 0 bytes to
 * it is fine) can harm nobody; without it the pointer was the header of
 * the next block, and one byte written there broke the heap. */
uint64_t st_block_need(uint64_t size)
{
    if (size == 0)
        size = 1;
    return ST_BLK_HDR + ((size + ST_ALIGN - 1) & ~(uint64_t)(ST_ALIGN - 1));
}

static void fl_push(weft_store *st, uint64_t off)
{
    st_hdr *h = st->h;
    st_blk *b = st_blk_at(st, off);
    unsigned k = bin_of(bsize(b));
    b->prev = ST_NIL64;
    b->next = h->bins[k];
    if (h->bins[k] != ST_NIL64)
        st_blk_at(st, h->bins[k])->prev = off;
    h->bins[k] = off;
    h->bins_mask |= 1ull << k;
}

static void fl_remove(weft_store *st, uint64_t off)
{
    st_hdr *h = st->h;
    st_blk *b = st_blk_at(st, off);
    unsigned k = bin_of(bsize(b));
    if (b->prev != ST_NIL64)
        st_blk_at(st, b->prev)->next = b->next;
    else
        h->bins[k] = b->next;
    if (b->next != ST_NIL64)
        st_blk_at(st, b->next)->prev = b->prev;
    if (h->bins[k] == ST_NIL64)
        h->bins_mask &= ~(1ull << k);
}

/* Writes a header and tells the physical successor its new neighbour. */
static void set_block(weft_store *st, uint64_t off, uint64_t size,
                      uint64_t prev_size, int used)
{
    st_blk *b = st_blk_at(st, off);
    b->size = size | (used ? USED : 0);
    b->prev_size = prev_size;
    if (off + size < st->capacity)
        st_blk_at(st, off + size)->prev_size = size;
}

void st_heap_init(weft_store *st)
{
    st_hdr *h = st->h;
    for (unsigned k = 0; k < ST_BINS; k++)
        h->bins[k] = ST_NIL64;
    h->bins_mask = 0;
    set_block(st, 0, st->capacity, 0, 0);
    fl_push(st, 0);
}

/* First fit in need's own class (bounded walk), else the head of the
 * smallest larger non-empty class, which is certainly big enough. With
 * no larger class the rest of need's own is walked too: the alternative
 * is an eviction, a spill or -ENOSPC with a fitting block left unseen,
 * and the walk is bounded by the free blocks of one class. */
static uint64_t find_free(weft_store *st, uint64_t need)
{
    st_hdr *h = st->h;
    unsigned k = bin_of(need);
    uint64_t larger = k + 1 < 64 ? h->bins_mask & ~((2ull << k) - 1) : 0;
    uint64_t off = h->bins[k];
    for (int n = 0; off != ST_NIL64 && (n < 64 || !larger); n++) {
        if (bsize(st_blk_at(st, off)) >= need)
            return off;
        off = st_blk_at(st, off)->next;
    }
    return larger ? h->bins[__builtin_ctzll(larger)] : ST_NIL64;
}

int st_heap_alloc(weft_store *st, uint64_t need, uint64_t *off,
                  uint64_t *got)
{
    uint64_t o = find_free(st, need);
    if (o == ST_NIL64)
        return -ENOSPC;
    st_blk *b = st_blk_at(st, o);
    uint64_t size = bsize(b);
    fl_remove(st, o);
    if (size - need >= ST_ALIGN) {
        set_block(st, o + need, size - need, need, 0);
        fl_push(st, o + need);
        size = need;
    }
    set_block(st, o, size, b->prev_size, 1);
    *off = o;
    *got = size;
    ST_ADD(&st->h->used, size);
    return 0;
}

/* Frees the block at off and merges it with free neighbours, so no two
 * free blocks are ever adjacent (st_heap_check verifies it). */
void st_heap_free(weft_store *st, uint64_t off)
{
    st_blk *b = st_blk_at(st, off);
    uint64_t size = bsize(b), prev_size = b->prev_size;
    ST_SUB(&st->h->used, size);
    uint64_t next = off + size;
    if (next < st->capacity && !(st_blk_at(st, next)->size & USED)) {
        size += bsize(st_blk_at(st, next));
        fl_remove(st, next);
    }
    if (prev_size && !(st_blk_at(st, off - prev_size)->size & USED)) {
        off -= prev_size;
        fl_remove(st, off);
        size += prev_size;
        prev_size = st_blk_at(st, off)->prev_size;
    }
    set_block(st, off, size, prev_size, 0);
    fl_push(st, off);
}

static int has_block(uint32_t state)
{
    return state == ST_CREATED || state == ST_SEALED || state == ST_DELETING;
}

static int by_off(const void *a, const void *b, void *ctx)
{
    st_desc *descs = ctx;
    uint64_t x = atomic_load_explicit(&descs[*(const uint32_t *)a].off,
                                      memory_order_relaxed);
    uint64_t y = atomic_load_explicit(&descs[*(const uint32_t *)b].off,
                                      memory_order_relaxed);
    return x < y ? -1 : x > y;
}

/* A descriptor's block, validated against the data area. */
static int block_ok(weft_store *st, st_desc *x)
{
    uint64_t off = atomic_load_explicit(&x->off, memory_order_relaxed);
    uint64_t size = atomic_load_explicit(&x->size, memory_order_relaxed);
    return off % ST_ALIGN == 0 && x->block % ST_ALIGN == 0 &&
           x->block >= ST_BLK_HDR && off < st->capacity &&
           x->block <= st->capacity - off && size <= x->block - ST_BLK_HDR;
}

static void free_gap(weft_store *st, uint64_t from, uint64_t to,
                     uint64_t *prev)
{
    if (to <= from)
        return;
    set_block(st, from, to - from, *prev, 0);
    fl_push(st, from);
    *prev = to - from;
}

/* Recreates every block header and free list from the live descriptors
 * (sorted by offset; the gaps become free blocks). A descriptor whose
 * block is out of bounds or overlaps the one before is dropped (freed):
 * only a garbage segment has those. Returns 0, or -ENOMEM (then the heap
 * is as it was). */
int st_heap_rebuild(weft_store *st)
{
    uint32_t *live = weft__malloc(sizeof *live * (st->max_objects + 1u));
    if (!live)
        return -ENOMEM;
    uint32_t n = 0;
    for (uint32_t d = 0; d < st->max_objects; d++) {
        st_desc *x = st_desc_at(st, d);
        uint32_t s = atomic_load_explicit(&x->state, memory_order_relaxed);
        if (!has_block(s))
            continue;
        if (block_ok(st, x))
            live[n++] = d;
        else
            st_desc_reset(st, d);
    }
    qsort_r(live, n, sizeof *live, by_off, st->descs);
    st_hdr *h = st->h;
    for (unsigned k = 0; k < ST_BINS; k++)
        h->bins[k] = ST_NIL64;
    h->bins_mask = 0;
    uint64_t pos = 0, prev = 0, used = 0;
    for (uint32_t i = 0; i < n; i++) {
        st_desc *x = st_desc_at(st, live[i]);
        uint64_t off = atomic_load_explicit(&x->off, memory_order_relaxed);
        if (off < pos) { /* overlap: garbage */
            st_desc_reset(st, live[i]);
            continue;
        }
        free_gap(st, pos, off, &prev);
        set_block(st, off, x->block, prev, 1);
        prev = x->block;
        pos = off + x->block;
        used += x->block;
    }
    free_gap(st, pos, st->capacity, &prev);
    atomic_store_explicit(&h->used, used, memory_order_relaxed);
    weft__free(live);
    return 0;
}

#define WHY(...) (snprintf(why, len, __VA_ARGS__), -EUCLEAN)

/* Walks the blocks: they must tile the data area with consistent
 * prev_size tags, no two free blocks adjacent, used bytes matching the
 * counter, every free block on its class's list. */
static int walk_blocks(weft_store *st, char *why, size_t len,
                       uint64_t *nfree, uint64_t *used)
{
    uint64_t off = 0, prev = 0;
    int prev_free = 0;
    while (off < st->capacity) {
        st_blk *b = st_blk_at(st, off);
        uint64_t size = bsize(b);
        if (size < ST_ALIGN || size % ST_ALIGN || size > st->capacity - off)
            return WHY("block at %llu: bad size %llu",
                       (unsigned long long)off, (unsigned long long)size);
        if (b->prev_size != prev)
            return WHY("block at %llu: prev_size %llu, expected %llu",
                       (unsigned long long)off,
                       (unsigned long long)b->prev_size,
                       (unsigned long long)prev);
        int is_free = !(b->size & USED);
        if (is_free && prev_free)
            return WHY("adjacent free blocks at %llu",
                       (unsigned long long)off);
        *nfree += is_free;
        *used += is_free ? 0 : size;
        prev_free = is_free;
        prev = size;
        off += size;
    }
    return 0;
}

static int check_lists(weft_store *st, char *why, size_t len,
                       uint64_t nfree)
{
    uint64_t listed = 0;
    for (unsigned k = 0; k < ST_BINS; k++) {
        uint64_t off = st->h->bins[k], prev = ST_NIL64;
        if ((off != ST_NIL64) != !!(st->h->bins_mask & (1ull << k)))
            return WHY("bin %u: bitmap disagrees", k);
        while (off != ST_NIL64) {
            if (off >= st->capacity || off % ST_ALIGN)
                return WHY("bin %u: bad offset", k);
            st_blk *b = st_blk_at(st, off);
            if ((b->size & USED) || bin_of(bsize(b)) != k || b->prev != prev)
                return WHY("bin %u: bad block at %llu", k,
                           (unsigned long long)off);
            if (++listed > nfree)
                return WHY("free lists longer than the free blocks");
            prev = off;
            off = b->next;
        }
    }
    if (listed != nfree)
        return WHY("%llu free blocks, %llu listed",
                   (unsigned long long)nfree, (unsigned long long)listed);
    return 0;
}

int st_heap_check(weft_store *st, char *why, size_t len)
{
    uint64_t nfree = 0, used = 0;
    int rc = walk_blocks(st, why, len, &nfree, &used);
    if (rc)
        return rc;
    if (used != atomic_load_explicit(&st->h->used, memory_order_relaxed))
        return WHY("used %llu, counter says %llu", (unsigned long long)used,
                   (unsigned long long)st->h->used);
    rc = check_lists(st, why, len, nfree);
    if (rc)
        return rc;
    uint64_t owned = 0;
    for (uint32_t d = 0; d < st->max_objects; d++) {
        st_desc *x = st_desc_at(st, d);
        if (!has_block(atomic_load_explicit(&x->state, memory_order_relaxed)))
            continue;
        uint64_t off = atomic_load_explicit(&x->off, memory_order_relaxed);
        if (!block_ok(st, x) || st_blk_at(st, off)->size != (x->block | USED))
            return WHY("object %u: no block of its own", d);
        owned += x->block;
    }
    if (owned != used)
        return WHY("objects own %llu bytes, blocks in use %llu (leak)",
                   (unsigned long long)owned, (unsigned long long)used);
    return 0;
}
