/* The object store's segment layout and internal interfaces.
 *
 * Segment (all references are offsets from its start, never pointers):
 *
 *   header     magic, version, sizes, the robust process-shared lock, the
 *              heads of the derived lists, counters, spill-file table
 *   clients    one slot per attached process: pid, start time, state
 *   refs       refs[client][object]: references that client holds, u16;
 *              the truth about references (an object's count is the sum)
 *   descs      one descriptor per object slot: gen, state, id, offset,
 *              size, owner, flags, LRU links and stamp, spill location
 *   index      open-addressing hash of ids: u32 (0 empty, ~0 tombstone,
 *              else descriptor + 1), a hint only: readers validate the
 *              descriptor it names
 *   data       blocks with a 64-byte boundary-tag header, object data
 *              64-byte aligned after it
 *
 * Truth and derived state. The descriptors (and the client table and refs)
 * are the truth; the allocator's block headers and free lists, the free
 * descriptor list, the LRU list and the index are derived from them and
 * rebuilt by st_repair() when a process dies while holding the lock. So
 * every mutation writes the descriptor in an order whose every prefix is
 * a consistent truth:
 *
 *   create: gen odd; id, off, size, owner, flags, lru_seq 0; state
 *           CREATED; gen even
 *   free:   state DELETING (then refs are checked); gen odd; state FREE;
 *           gen even (a SPILLED object: gen odd, then its file dropped)
 *   abort:  state CREATED -> ABORTING (CAS); then as free
 *   seal:   state CREATED -> SEALED (CAS on gen and state, no lock)
 *   spill:  spill fields; state SPILLED
 *   restore: off; state SEALED
 *
 * and repair maps gen odd -> FREE, DELETING -> SEALED, ABORTING -> FREE,
 * CREATED by a dead client -> FREE.
 *
 * Lock-free seal. The creator seals with one compare-and-swap of the
 * descriptor's (gen, state) pair, so a seal never takes the lock that two
 * processes creating objects pass back and forth. What the lock guards
 * (the LRU list and the counter `sealed`) follows later, in
 * batches: the sealer appends the descriptor to its client slot's pending
 * list (in the segment, so that anyone holding the lock can drain it) and
 * links its list once it is half full, at its next locked operation, or
 * when it is full. A sealed descriptor is linked exactly when lru_seq !=
 * 0, so linking is idempotent and a stale entry (freed and reused since)
 * harmless. Space pressure drains every client's list (link_orphans in
 * object.c); a seal whose process died before noting it is linked when
 * that client is reclaimed (a full scan) or by repair. Each client counts
 * its sealed, unlinked objects (`unlinked`, raised before the CAS,
 * lowered by whoever links one), which statistics add, and its seals;
 * the consistency check counts only linked ones.
 *
 * A pending list is appended to by its client (under the handle's
 * process-local mutex) and drained under the store's lock by anyone: the
 * appender writes pend[n] then moves npend n -> n+1 with a CAS (release);
 * the drainer reads npend (acquire), links pend[0..n) and moves npend
 * n -> 0 with a CAS, again if an append came first. An append that loses
 * to a drain retries at the new end; a drain never reads a slot that an
 * append is writing (they are at or beyond the drainer's n).
 *
 * Lock-free get. A reader finds d in the index, reads gen (acquire; odd =
 * skip), compares the id, stores refs[me][d] + 1 (seq_cst), then loads
 * state and gen (seq_cst): SEALED and unchanged = it holds a reference.
 * Whoever frees or spills stores state DELETING (seq_cst) and then loads
 * every refs[c][d] (seq_cst): by sequential consistency either the reader
 * sees DELETING and backs out, or the freer sees its reference and gives
 * up (Dekker). */
#ifndef WEFT_STORE_ST_H
#define WEFT_STORE_ST_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include <liburing.h>

#include "alloc.h"
#include "atomics.h"

#include "weft/store.h"

#ifndef WEFT__HIDDEN
#define WEFT__HIDDEN __attribute__((visibility("hidden")))
#endif

/* "WEFTSTOR" in memory (little-endian) */
#define ST_MAGIC 0x524f545354464557ull
#define ST_VERSION 4u /* 2: lock-free seal, ABORTING, unlinked; 3: liveness
                         by lock, instance in spill file names; 4:
                         repair_needed (a build without it would work on
                         a store whose repair failed) */
#define ST_NIL32 UINT32_MAX
#define ST_NIL64 UINT64_MAX
#define ST_ALIGN 64u          /* block and data alignment */
#define ST_BLK_HDR 64u        /* block header bytes before the data */
#define ST_BINS 48
#define ST_SPILL_FILES 1024   /* spill files alive at once */
#define ST_IDX_EMPTY 0u
#define ST_IDX_TOMB UINT32_MAX
#define ST_REFS_MAX 65535u
#define ST_PEND_MAX 64u      /* a client's pending list of seals */

enum st_state {
    ST_FREE = 0,
    ST_CREATED = WEFT_STORE_STATE_CREATED,
    ST_SEALED = WEFT_STORE_STATE_SEALED,
    ST_DELETING = 3,
    ST_SPILLED = WEFT_STORE_STATE_SPILLED,
    ST_ABORTING = 5,   /* an unsealed object being freed by its creator */
};

enum { ST_CLIENT_FREE = 0, ST_CLIENT_ALIVE = 1 };

typedef struct st_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t hdr_size;
    uint64_t total_size;
    uint64_t capacity;
    uint32_t max_objects;
    uint32_t max_clients;
    uint32_t index_slots;
    uint32_t refs_stride;   /* u16 entries per client row */
    uint64_t off_clients, off_refs, off_descs, off_index, off_data;
    /* Random, drawn at creation: in the names of this segment's spill
     * files, so that a store created under the name of one that was
     * unlinked but is still open never shares them (spill.c). */
    uint64_t instance;
    /* 1 from the moment a locker finds the lock's owner dead until the
     * repair (st_repair) has rebuilt everything: a repair that fails (no
     * memory for its sort) or dies is done again by the next locker, in
     * whatever process, and until one succeeds every locked operation
     * fails with its error instead of working on half-rebuilt lists.
     * Under the lock. */
    _Atomic uint32_t repair_needed;
    uint32_t pad0a;
    uint64_t pad0;
    /* Hot: what every create touches, in as few cache lines as the
     * processes that share the lock pass back and forth with it: the
     * lock, the descriptor stack, the index's count and the counters
     * `used` and `objects` share one line. Derived, under the lock
     * (rebuilt by st_repair): */
    alignas(64) pthread_mutex_t lock; /* robust, process-shared */
    uint32_t free_desc;     /* stack through desc.lru_next */
    uint32_t index_used;
    /* Counters: written under the lock, read by anyone (relaxed). */
    _Atomic uint64_t used, objects;
    /* Written by links (in batches), deletes and evictions. */
    alignas(64) uint64_t lru_seq;
    uint64_t bins_mask;
    uint32_t lru_head, lru_tail;
    uint32_t index_tombs;
    uint32_t pad1;
    /* Counters, as above; creates and seals of live clients are in their
     * slots (st_client), these hold those of slots freed since. */
    _Atomic uint64_t sealed, creates, seals;
    /* Seal notification: bumped by a seal when someone waits, futex-waited
     * by getters; nwaiters counts waiters so a seal makes no syscall when
     * nobody waits (a waiter killed while waiting leaves it high: extra
     * wakes only). On a line of their own: every seal reads nwaiters, and
     * nothing hot writes near it. */
    alignas(64) _Atomic uint32_t seal_seq;
    _Atomic uint32_t nwaiters;
    /* Cold. */
    _Atomic uint64_t spilled, clients, deletes, aborts;
    _Atomic uint64_t evictions, evicted_bytes;
    _Atomic uint64_t spills, spilled_bytes, restores, restored_bytes;
    _Atomic uint64_t reclaims, repairs;
    uint64_t bins[ST_BINS]; /* free-list heads: block offsets or NIL */
    uint32_t spill_next;
    uint32_t spill_live[ST_SPILL_FILES]; /* objects in each spill file */
} st_hdr;

typedef struct st_client {
    _Atomic int32_t pid;
    _Atomic uint32_t state;
    uint64_t start_time;    /* /proc/PID/stat field 22: pid reuse guard */
    /* This client's sealed objects not linked yet (see "Lock-free seal");
     * never below the truth, may briefly be above it. */
    _Atomic int32_t unlinked;
    _Atomic uint32_t npend;  /* entries in pend */
    /* Seals and creates made through this slot (the header's counters
     * hold those of slots freed since): each client writes its own line,
     * not the header's hot one. */
    _Atomic uint64_t seals, creates;
    /* 1: the client holds an OFD lock on byte (slot index) of the segment
     * file for as long as it is attached, and its liveness is that lock's
     * (see st_client_dead); 0: by pid only (no OFD locks there). */
    _Atomic uint32_t locked;
    uint32_t pad1;
    uint64_t pad[2];
    _Atomic uint32_t pend[ST_PEND_MAX]; /* sealed descriptors to link */
} st_client;

typedef struct st_desc {
    /* Read by lock-free getters. gen and state also form one 64-bit word
     * (gs, gen in the low half) that the lock-free seal compares and
     * swaps, so a seal cannot land on a descriptor reused meanwhile. */
    union {
        struct {
            _Atomic uint32_t gen;
            _Atomic uint32_t state;
        };
        _Atomic uint64_t gs;
    };
    _Atomic uint64_t id[3];  /* 20 bytes, last word's high half zero */
    _Atomic uint64_t off;    /* block offset in the data area */
    _Atomic uint64_t size;   /* object bytes */
    _Atomic uint32_t touched; /* got since last LRU visit */
    uint32_t pad0;
    /* Under the lock. */
    uint64_t block;          /* block bytes, header included */
    _Atomic uint32_t owner;  /* creating client; written under the lock,
                                read by the lock-free seal (reset stores
                                it release, after gen moved on) */
    uint32_t flags;
    uint32_t lru_prev, lru_next;
    uint64_t lru_seq;        /* LRU order stamp (rebuild sorts by it);
                                0: not linked */
    uint64_t spill_off;
    uint32_t spill_file;
    uint32_t pad1;
    uint64_t pad2[3];
} st_desc;

/* Block header in the data area. */
typedef struct st_blk {
    uint64_t size;       /* total bytes, multiple of 64; bit 0: used */
    uint64_t prev_size;  /* size of the block before (0: first) */
    uint64_t next, prev; /* free list links when free */
    uint64_t pad[4];
} st_blk;

struct weft_store {
    uint8_t *base;
    size_t map_size;
    int fd;                  /* the segment's, open while attached: the
                                client's liveness lock is on it */
    st_hdr *h;
    st_client *clients;
    _Atomic uint16_t *refs;  /* all rows */
    _Atomic uint16_t *mine;  /* this handle's row */
    st_desc *descs;
    _Atomic uint32_t *index;
    uint8_t *data;
    uint64_t capacity;
    uint32_t max_objects, max_clients, index_mask, refs_stride;
    uint32_t me;
    pid_t pid;
    char name[WEFT_STORE_NAME_MAX + 1];
    char *spill_dir;
    struct io_uring ring;
    int ring_ok;
    bool spill_warned; /* the last spill failed and said why (spill.c) */
    /* Serialises this process's appends to its pending list (see
     * "Lock-free seal"); taken inside the store's lock, never around it. */
    pthread_mutex_t pend_mu;
};

/* Test hook: called at named points inside the store's operations (some
 * with the lock held); the crash test kills the process from it. */
WEFT__HIDDEN extern void (*weft__store_hook)(const char *point);
#define ST_POINT(name)                                                  \
    do {                                                                \
        if (__builtin_expect(weft__store_hook != NULL, 0))              \
            weft__store_hook(name);                                     \
    } while (0)

/* segment.c */
WEFT__HIDDEN int st_lock(weft_store *st);
WEFT__HIDDEN void st_unlock(weft_store *st);
WEFT__HIDDEN int st_client_dead(weft_store *st, uint32_t c);
WEFT__HIDDEN int st_reclaim_dead(weft_store *st);
WEFT__HIDDEN uint32_t st_refsum(weft_store *st, uint32_t d);
WEFT__HIDDEN int st_repair(weft_store *st);
WEFT__HIDDEN void st_reclaim_client(weft_store *st, uint32_t c);

/* heap.c: the data-area allocator (under the lock). */
WEFT__HIDDEN void st_heap_init(weft_store *st);
WEFT__HIDDEN int st_heap_alloc(weft_store *st, uint64_t need, uint64_t *off,
                               uint64_t *got);
WEFT__HIDDEN void st_heap_free(weft_store *st, uint64_t off);
WEFT__HIDDEN int st_heap_rebuild(weft_store *st);
WEFT__HIDDEN int st_heap_check(weft_store *st, char *why, size_t len);
WEFT__HIDDEN uint64_t st_block_need(uint64_t size);

/* info.c */
WEFT__HIDDEN int st_check_locked(weft_store *st, char *why, size_t len);

/* index.c */
WEFT__HIDDEN uint32_t st_find_locked(weft_store *st, const weft_store_id *id);
WEFT__HIDDEN uint32_t st_find_fast(weft_store *st, const weft_store_id *id,
                                   uint32_t *gen);
WEFT__HIDDEN int st_index_insert(weft_store *st, uint32_t d);
WEFT__HIDDEN void st_index_prefetch(weft_store *st, const weft_store_id *id);
WEFT__HIDDEN void st_index_remove(weft_store *st, uint32_t d);
WEFT__HIDDEN void st_index_rebuild(weft_store *st);
WEFT__HIDDEN int st_id_equal(st_desc *x, const weft_store_id *id);
WEFT__HIDDEN void st_id_store(st_desc *x, const weft_store_id *id);
WEFT__HIDDEN void st_id_load(st_desc *x, weft_store_id *id);

/* object.c */
WEFT__HIDDEN void st_lru_push(weft_store *st, uint32_t d);
WEFT__HIDDEN void st_lru_unlink(weft_store *st, uint32_t d);
WEFT__HIDDEN void st_desc_free(weft_store *st, uint32_t d);
WEFT__HIDDEN void st_desc_reset(weft_store *st, uint32_t d);
WEFT__HIDDEN int st_try_claim(weft_store *st, uint32_t d);
WEFT__HIDDEN void st_rebuild_lists(weft_store *st);
WEFT__HIDDEN void st_link_sealed(weft_store *st, uint32_t d);
WEFT__HIDDEN void st_link_pending(weft_store *st, uint32_t c, uint32_t min);
WEFT__HIDDEN int st_alloc_block(weft_store *st, uint64_t need, uint64_t *off,
                                uint64_t *got);

/* spill.c */
WEFT__HIDDEN int st_spill(weft_store *st, uint64_t need);
WEFT__HIDDEN int st_restore(weft_store *st, uint32_t d);
WEFT__HIDDEN void st_spill_drop(weft_store *st, uint32_t file);
WEFT__HIDDEN void st_spill_close(weft_store *st);
WEFT__HIDDEN int st_spill_path(const char *dir, const char *name,
                               uint64_t instance, uint32_t file, char *out,
                               size_t len);

/* Counters in the header change only under the lock, one writer at a
 * time: a plain load and store (no locked instruction), relaxed atomics
 * because lock-free readers (weft_store_stats_get) look at them. */
#define ST_ADD(p, v) weft__stat_add((p), (v))
#define ST_SUB(p, v) ST_ADD((p), -(uint64_t)(v))

static inline st_desc *st_desc_at(weft_store *st, uint32_t d)
{
    return &st->descs[d];
}

static inline st_blk *st_blk_at(weft_store *st, uint64_t off)
{
    return (st_blk *)(st->data + off);
}

/* A spilled descriptor names a spill file and a size that fits the data
 * area (one that does not could never have been in memory, and would
 * wrap st_block_need). */
static inline int st_spilled_ok(const weft_store *st, st_desc *x)
{
    return x->spill_file < ST_SPILL_FILES &&
           atomic_load_explicit(&x->size, memory_order_relaxed) <=
               st->capacity - ST_BLK_HDR;
}

static inline uint32_t st_owner(st_desc *x)
{
    return atomic_load_explicit(&x->owner, memory_order_relaxed);
}

/* The 64-bit (gen, state) word of st_desc.gs, whatever the byte order. */
static inline uint64_t st_gs(uint32_t gen, uint32_t state)
{
    union {
        struct {
            uint32_t gen, state;
        } p;
        uint64_t v;
    } u = {.p = {gen, state}};
    return u.v;
}

static inline _Atomic uint16_t *st_ref(weft_store *st, uint32_t c,
                                       uint32_t d)
{
    return &st->refs[(size_t)c * st->refs_stride + d];
}

#endif
