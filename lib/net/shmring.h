/* A one-way ring of records in memory that two processes share: one
 * process writes records, the other reads them, each end used by one
 * thread at a time (its caller serialises: the mpi backend's plock).
 *
 * Why: between ranks on the same machine a record written here and read
 * there costs a couple of cache-line transfers, where an MPI message
 * costs the library's matching and progress engine on both sides
 * (lib/net/mpi.c uses these rings for ranks that share a node).
 *
 * Layout: a shared header holds the count of bytes the reader has
 * consumed (head, on its own cache line), then `cap` bytes of data. A
 * record is a 16-byte header (its position in the stream of bytes ever
 * written, its length, its kind) and its bytes, padded to 16; one that
 * does not fit before the end of the data is preceded by a wrap record
 * that fills the rest. The writer stores a record's position last, with
 * release; the reader waits for the position it expects at its head,
 * with acquire. So the reader polls the very line the record starts in
 * and takes one cache miss per record, not one for a tail counter and
 * another for the record. Before it publishes a record the writer sets
 * the position field just past it to ~0 (the next record's header, 16
 * bytes it keeps free for that), so the reader's head never lands on
 * stale bytes of an earlier lap, not even payload bytes that happen to
 * hold the number it expects. The reader frees space
 * with a release store of head, which the writer reads with acquire
 * only when its cached copy says the ring is full.
 *
 * The reader does not trust the writer: cap is each end's own copy, and
 * every header is checked against it before a byte of the record is read
 * (a bad ring reads as -EPROTO, never out of bounds). The atomics must
 * be lock-free to work across processes (static_assert below). */
#ifndef WEFT_SHMRING_H
#define WEFT_SHMRING_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2,
               "shared-memory rings need lock-free 64-bit atomics");

typedef struct weft__ring {
    _Alignas(64) _Atomic uint64_t head; /* bytes consumed (the reader) */
    _Alignas(64) unsigned char data[];
} weft__ring;

#define WEFT__RING_REC 0x5752u  /* a record */
#define WEFT__RING_WRAP 0x5757u /* the rest of the data is unused */
#define WEFT__RING_HDR 16u      /* position (8), length (4), kind (4) */

/* The writer's end: its own copies of its position and of the last head
 * read. */
typedef struct weft__ring_tx {
    weft__ring *r;
    uint64_t cap, tail, head;
    uint64_t at, want; /* the reserved record: its offset and size */
} weft__ring_tx;

typedef struct weft__ring_rx {
    weft__ring *r;
    uint64_t cap, head;
    uint64_t took; /* bytes the record peeked at takes */
} weft__ring_rx;

/* Bytes a ring of cap data bytes takes in shared memory. cap must be a
 * multiple of 64. */
static inline size_t weft__ring_size(size_t cap)
{
    return sizeof(weft__ring) + cap;
}

static inline uint64_t weft__ring_need(size_t len)
{
    return (WEFT__RING_HDR + (uint64_t)len + 15u) & ~(uint64_t)15u;
}

static inline _Atomic uint64_t *weft__ring_pos(unsigned char *at)
{
    return (_Atomic uint64_t *)(void *)at; /* offsets are multiples of 16 */
}

/* Once, by the process whose memory it is, before either end is used:
 * no header in the data may carry a position the reader will expect
 * (positions start at 0; ~0 is none of them for 2^64 bytes). */
static inline void weft__ring_init(weft__ring *r, size_t cap)
{
    atomic_init(&r->head, 0);
    memset(r->data, 0xff, cap);
}

static inline void weft__ring_tx_init(weft__ring_tx *tx, weft__ring *r,
                                      size_t cap)
{
    *tx = (weft__ring_tx){.r = r, .cap = cap};
}

static inline void weft__ring_rx_init(weft__ring_rx *rx, weft__ring *r,
                                      size_t cap)
{
    *rx = (weft__ring_rx){.r = r, .cap = cap};
}

static inline void weft__ring_put_hdr(unsigned char *at, uint32_t len,
                                      uint32_t kind)
{
    memcpy(at + 8, &len, 4);
    memcpy(at + 12, &kind, 4);
}

/* Room for a record of len bytes: where to write them, or NULL while the
 * ring is too full (or len is over half of it: such records are the
 * caller's mistake). Nothing is visible to the reader until commit. */
static inline unsigned char *weft__ring_reserve(weft__ring_tx *tx,
                                                size_t len)
{
    uint64_t need = weft__ring_need(len);
    if (need > tx->cap / 2)
        return NULL;
    uint64_t off = tx->tail % tx->cap, rest = tx->cap - off;
    /* and the next header's position field, cleared below */
    uint64_t total = need + (rest < need ? rest : 0) + WEFT__RING_HDR;
    if (tx->tail + total - tx->head > tx->cap) {
        /* acquire: the reader is done with the bytes it freed */
        tx->head = atomic_load_explicit(&tx->r->head, memory_order_acquire);
        if (tx->tail + total - tx->head > tx->cap)
            return NULL;
    }
    if (rest < need) { /* rest >= 16: offsets and cap are multiples */
        unsigned char *w = tx->r->data + off;
        weft__ring_put_hdr(w, (uint32_t)(rest - WEFT__RING_HDR),
                           WEFT__RING_WRAP);
        atomic_store_explicit(weft__ring_pos(tx->r->data), ~(uint64_t)0,
                              memory_order_relaxed);
        atomic_store_explicit(weft__ring_pos(w), tx->tail,
                              memory_order_release);
        tx->tail += rest;
        off = 0;
    }
    /* the next header's position first: its line, then this record's,
     * so the record's line is written in one go, position last */
    atomic_store_explicit(weft__ring_pos(tx->r->data + (off + need) % tx->cap),
                          ~(uint64_t)0, memory_order_relaxed);
    weft__ring_put_hdr(tx->r->data + off, (uint32_t)len, WEFT__RING_REC);
    tx->at = off;
    tx->want = need;
    return tx->r->data + off + WEFT__RING_HDR;
}

/* Publish the reserved record: its position stored in order mo, at
 * least release (its bytes, and the cleared position after it, before
 * its own position). seq_cst where the writer then reads a flag the
 * reader set before its last look, Dekker's way (ring_publish in
 * mpi.c); release where the reader's side of that runs a membarrier. A
 * seq_cst store waits for the line the reader polls: some 50 ns. */
static inline void weft__ring_commit(weft__ring_tx *tx, memory_order mo)
{
    atomic_store_explicit(weft__ring_pos(tx->r->data + tx->at), tx->tail, mo);
    tx->tail += tx->want;
}

/* The next record: 1 with *rec and *len set (valid until release), 0 if
 * there is none, -EPROTO if the ring is not well formed (the writer is
 * broken or hostile; the reader should stop reading it). */
static inline int weft__ring_peek(weft__ring_rx *rx,
                                  const unsigned char **rec, size_t *len)
{
    for (;;) {
        uint64_t off = rx->head % rx->cap, rest = rx->cap - off;
        unsigned char *at = rx->r->data + off;
        /* acquire: the record's bytes before its position */
        if (atomic_load_explicit(weft__ring_pos(at), memory_order_acquire) !=
            rx->head)
            return 0;
        uint32_t n, kind;
        memcpy(&n, at + 8, 4);
        memcpy(&kind, at + 12, 4);
        if (kind == WEFT__RING_WRAP) {
            if (n != rest - WEFT__RING_HDR || off == 0)
                return -EPROTO;
            rx->head += rest; /* released with the next record */
            continue;
        }
        if (kind != WEFT__RING_REC || weft__ring_need(n) > rest)
            return -EPROTO;
        *rec = at + WEFT__RING_HDR;
        *len = n;
        rx->took = weft__ring_need(n);
        return 1;
    }
}

/* Is something (a record or a wrap) at the reader's head? One load of
 * the line the next record starts in, in order mo. */
static inline bool weft__ring_ready(const weft__ring_rx *rx, memory_order mo)
{
    return atomic_load_explicit(
               weft__ring_pos(rx->r->data + rx->head % rx->cap), mo) ==
           rx->head;
}

/* Start fetching the line where the record after the one peek returned
 * starts, while the caller handles that one: in a round trip the next
 * look finds nothing there, and a miss on the line its writer last wrote
 * (the cleared header) is then paid off the reply's path. A read: the
 * writer takes the line back when it writes there, as it would anyway
 * from a reader polling it. */
static inline void weft__ring_prefetch_next(const weft__ring_rx *rx)
{
    __builtin_prefetch(rx->r->data + (rx->head + rx->took) % rx->cap, 0);
}

/* Done with the record peek returned: its space goes back to the writer
 * (release: this end's reads of it before the writer's reuse). */
static inline void weft__ring_release(weft__ring_rx *rx)
{
    rx->head += rx->took;
    rx->took = 0;
    atomic_store_explicit(&rx->r->head, rx->head, memory_order_release);
}

#endif
