/* weft object store: immutable objects shared zero-copy between the
 * processes of one machine, in a named POSIX shared-memory segment.
 *
 *   weft_store_opts o;
 *   weft_store_opts_default(&o);
 *   o.capacity = 1u << 30;
 *   weft_store *st;
 *   int rc = weft_store_open("results", &o, &st);      // create or attach
 *   void *p;
 *   rc = weft_store_create(st, &id, n, 0, &p);          // reserve n bytes
 *   memcpy(p, src, n);
 *   rc = weft_store_seal(st, &id);                      // now immutable
 *   ...                                                 // in any process:
 *   weft_store_obj obj;
 *   rc = weft_store_get(st, &id, 1000, &obj);           // wait up to 1 s
 *   use(obj.data, obj.size);                            // zero-copy
 *   weft_store_release(st, &obj);
 *
 * The model is Plasma's (Ray): 20-byte IDs, create -> write -> seal, then
 * get -> release; delete and abort; least-recently-used eviction of
 * sealed, unreferenced objects when space runs out; pinned objects are
 * spilled to a directory instead (io_uring) and restored on get. Unlike
 * Plasma there is no store process: the index lives in the segment, so a
 * get is a hash lookup plus one atomic store in the caller's process.
 *
 * Crash safety. Every process that opens a store takes a client slot. A
 * process that dies, even by SIGKILL in the middle of a call, loses its
 * references and the objects it created but did not seal, and nothing
 * else: the next process to notice (at open, when space runs out, at the
 * internal lock, whose owner's death the robust mutex reports, or in
 * weft_store_check()) reclaims them. Sealed objects stay readable.
 * A death inside the internal lock makes the next process to take it
 * rebuild the store's lists (a repair, which allocates memory): while a
 * repair cannot complete, every call that takes the lock (open, create,
 * abort, delete, contains, stat, list, check, close, and a get that
 * must wait or restore) fails with its error (-ENOMEM), and the next
 * such call, in any process, tries again; gets of sealed objects work
 * meanwhile.
 * A process counts as alive while it has the store open: each handle
 * holds a lock on the segment's file (an OFD lock) that the kernel drops
 * when the process exits or execs, whichever of its threads are left and
 * whatever its PID namespace. A forked child that has not exec'd shares
 * its parent's lock: a parent that dies while such a child lives is
 * reclaimed when the child exits. Where the file system has no OFD locks
 * a process is judged by its pid instead (gone, or all its threads
 * zombies), which cannot see across PID namespaces, and which takes a
 * process that exec'd for the one that opened the store.
 *
 * Memory is reserved when the store is created (posix_fallocate), so a
 * full store is -ENOSPC from weft_store_create(), never a SIGBUS; a
 * /dev/shm too small for the capacity is -ENOSPC from weft_store_open().
 *
 * Processes. A handle belongs to the process that opened it: a forked
 * child must open the store again by name (its own client slot) and must
 * not use, release or close the parent's handle (it may munmap it by
 * exiting). Several stores, and the same store several times, may be open
 * in one process. A handle may be used from several threads of its
 * process at once, except weft_store_close(), which must be the last call.
 *
 * Every function returns 0 or a negative errno value. */
#ifndef WEFT_STORE_H
#define WEFT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An object's identity: 20 opaque bytes (Ray's ObjectID size). */
#define WEFT_STORE_ID_SIZE 20
typedef struct weft_store_id {
    uint8_t bytes[WEFT_STORE_ID_SIZE];
} weft_store_id;

/* Longest store name, without the terminating NUL. A name is 1 to this
 * many characters of [A-Za-z0-9._-], not starting with '.'. */
#define WEFT_STORE_NAME_MAX 200

typedef struct weft_store weft_store;

/* Options of weft_store_open(); start from weft_store_opts_default(). The
 * sizes apply only when the call creates the store; attaching to an
 * existing one takes its sizes from the segment. */
typedef struct weft_store_opts {
    /* Bytes of object data (default 64 MiB; at least 64 KiB). */
    size_t capacity;
    /* Most objects at once, sealed or not (0: capacity / 4 KiB, within
     * 1024 .. 1M). */
    uint32_t max_objects;
    /* Most processes attached at once (0: 64; at most 1024). */
    uint32_t max_clients;
    /* Permission bits of the segment (default 0600: owner only). */
    uint32_t mode;
    /* WEFT_STORE_OPEN_* flags. */
    uint32_t flags;
    /* Directory for spilled objects (NULL: no spilling, a store full of
     * pinned objects is -ENOSPC). Per process: each process that opens
     * the store gives its own (normally the same) directory. The string
     * is copied. */
    const char *spill_dir;
    /* Reserved for growth; zero. */
    uint64_t reserved[8];
} weft_store_opts;

enum {
    /* Fail with -ENOENT rather than create the store. */
    WEFT_STORE_OPEN_EXISTING = 1u << 0,
    /* Fail with -EEXIST rather than attach to an existing store. */
    WEFT_STORE_OPEN_CREATE = 1u << 1,
    /* Do not pre-fault the mapping at open (MAP_POPULATE): a faster open
     * of a large store, page faults on first touch instead. Memory is
     * reserved either way. */
    WEFT_STORE_OPEN_LAZY = 1u << 2,
};

/* Flags of weft_store_create(). */
enum {
    /* Never evict this object: when space is needed it is spilled to the
     * spill directory (restored on get), or the create fails -ENOSPC. */
    WEFT_STORE_PIN = 1u << 0,
};

/* A reference obtained by weft_store_get(): data is valid and unchanged
 * until weft_store_release(). It must not be written: the mapping is
 * writable (objects are written in place before their seal), so the store
 * cannot catch a write to a sealed object. The other fields are the
 * store's. */
typedef struct weft_store_obj {
    const void *data;
    size_t size;
    uint32_t slot;
    uint32_t gen;
    uint64_t reserved[2];
} weft_store_obj;

/* Counters of weft_store_stats(): a snapshot, read without a lock. */
typedef struct weft_store_stats {
    uint64_t capacity;      /* bytes of object data */
    uint64_t used;          /* bytes in blocks, headers included */
    uint64_t objects;       /* objects in memory (sealed or not) */
    uint64_t sealed;        /* of which sealed */
    uint64_t spilled;       /* objects on disk now */
    uint64_t max_objects;
    uint64_t clients;       /* processes attached */
    uint64_t max_clients;
    uint64_t creates, seals, deletes, aborts;
    uint64_t evictions, evicted_bytes;
    uint64_t spills, spilled_bytes, restores, restored_bytes;
    uint64_t reclaims;      /* dead clients reclaimed */
    uint64_t repairs;       /* rebuilds after a death inside the lock */
    uint64_t reserved[8];
} weft_store_stats;

/* One object, as weft_store_stat() and weft_store_list() describe it. */
typedef struct weft_store_info {
    weft_store_id id;
    uint64_t size;
    uint32_t state;     /* WEFT_STORE_STATE_* */
    uint32_t flags;     /* WEFT_STORE_PIN */
    uint32_t refs;      /* references held, all processes */
    int32_t owner_pid;  /* creator while unsealed, else 0 */
    uint64_t reserved[4];
} weft_store_info;

enum {
    WEFT_STORE_STATE_CREATED = 1, /* being written */
    WEFT_STORE_STATE_SEALED = 2,  /* immutable, in memory */
    WEFT_STORE_STATE_SPILLED = 4, /* immutable, on disk */
};

/* Fills *opts with the defaults. -EINVAL when opts is NULL. */
WEFT_API int weft_store_opts_default(weft_store_opts *opts);

/* Opens the store `name`, creating it (sized by opts) when it does not
 * exist, and attaches this process as a client. opts may be NULL (the
 * defaults). On success *out owns the mapping and the client slot until
 * weft_store_close(); on failure *out is untouched and nothing is left
 * behind (a store this call created is removed again).
 * Errors: -EINVAL (bad name or options), -ENOENT/-EEXIST (flags),
 * -ENOSPC (/dev/shm has less room than the store needs), -EPROTO (the
 * segment is not a weft store of this version, or is corrupt), -EUSERS
 * (every client slot is held by a live process), -EACCES, -ENOMEM. */
WEFT_API int weft_store_open(const char *name, const weft_store_opts *opts,
                             weft_store **out);

/* Detaches: releases every reference this handle still holds, aborts its
 * unsealed objects, frees its client slot and unmaps. The store and its
 * sealed objects stay until weft_store_unlink(). NULL is a no-op. */
WEFT_API int weft_store_close(weft_store *st);

/* Removes the name; the memory goes when the last process closes it.
 * spill_dir (may be NULL) is where this store's spill files are removed
 * from. -ENOENT when no such store. */
WEFT_API int weft_store_unlink(const char *name, const char *spill_dir);

/* Creates the unsealed object id of `size` bytes and stores a writable
 * pointer to its data (64-byte aligned) in *data. Only this handle may
 * write, seal or abort it. Evicts or spills others if needed. size 0
 * makes a valid empty object: sealed and got like any other (obj.size
 * 0); its *data is a valid pointer to no bytes of the object (its block
 * holds 64 bytes of padding, so that a stray write there harms no other
 * object), never NULL.
 * Errors: -EEXIST (the id exists), -ENOSPC (no room even after eviction
 * and spilling, or every object slot in use), -EINVAL. */
WEFT_API int weft_store_create(weft_store *st, const weft_store_id *id,
                               size_t size, unsigned flags, void **data);

/* Makes the object immutable and visible to get; wakes waiters. Errors:
 * -ENOENT, -EPERM (created by another handle), -EALREADY (sealed). */
WEFT_API int weft_store_seal(weft_store *st, const weft_store_id *id);

/* Frees an unsealed object this handle created. -ENOENT, -EPERM,
 * -EALREADY (already sealed: use delete). */
WEFT_API int weft_store_abort(weft_store *st, const weft_store_id *id);

/* create + memcpy + seal. */
WEFT_API int weft_store_put(weft_store *st, const weft_store_id *id,
                            const void *data, size_t size, unsigned flags);

/* Takes a reference to the sealed object id: obj->data stays valid and
 * unchanged until weft_store_release(st, obj). A spilled object is read
 * back first. timeout_ms: 0 returns at once, < 0 waits for ever, > 0
 * waits that long for the object to be created and sealed by anyone.
 * Errors: -ENOENT (no such sealed object, timeout 0), -ETIMEDOUT,
 * -EOVERFLOW (60000 references to this object from this handle), -ENOSPC
 * (a spilled object finds no room), -EIO (its spill file is unreadable),
 * -EPROTO (the segment says the object lies outside the data area).
 * A found object costs no lock and no system call: a hash lookup and one
 * atomic increment in this handle's own reference row. Any thread. */
WEFT_API int weft_store_get(weft_store *st, const weft_store_id *id,
                            int timeout_ms, weft_store_obj *obj);

/* Drops the reference obj holds (lock-free) and clears obj. -EINVAL when
 * obj holds none (never got, or released already). Any thread of the
 * process that got it. */
WEFT_API int weft_store_release(weft_store *st, weft_store_obj *obj);

/* Deletes a sealed (or spilled) object nobody references. -ENOENT,
 * -EBUSY (referenced, or not sealed yet). */
WEFT_API int weft_store_delete(weft_store *st, const weft_store_id *id);

/* 1 when the object exists sealed (in memory or spilled), 0 when not. */
WEFT_API int weft_store_contains(weft_store *st, const weft_store_id *id);

WEFT_API int weft_store_stats_get(weft_store *st, weft_store_stats *out);

/* Describes one object. -ENOENT when absent. */
WEFT_API int weft_store_stat(weft_store *st, const weft_store_id *id,
                             weft_store_info *out);

/* Lists up to cap objects in out; *count gets the number of objects in
 * the store (may exceed cap). */
WEFT_API int weft_store_list(weft_store *st, weft_store_info *out,
                             size_t cap, size_t *count);

/* Verifies the segment under the lock: the blocks tile the data area,
 * every block belongs to one live object, every object is in the index,
 * the counters agree; then reclaims dead clients and, if there were any,
 * verifies again. A segment found inconsistent is left as it is (no
 * reclaim: a reclaim trusts it). 0 when consistent, -EUCLEAN when not
 * (what is wrong goes to `why`, may be NULL). */
WEFT_API int weft_store_check(weft_store *st, char *why, size_t why_len);

/* A fresh random id (getrandom): what Plasma's ObjectID.from_random()
 * gives; 0 or -errno. */
WEFT_API int weft_store_id_random(weft_store_id *id);

/* Hex form of an id (41 bytes with the NUL) and back (-EINVAL). */
WEFT_API void weft_store_id_hex(const weft_store_id *id, char out[41]);
WEFT_API int weft_store_id_parse(const char *hex, weft_store_id *id);

/* ---- a runtime's store ----------------------------------------------
 *
 * Every runtime can have one object store, for task results too large to
 * copy; isolated maps (weft/map.h) pass their items through it. */

/* The runtime's store in *out: the one attached by
 * weft_runtime_set_store(), or else the runtime's own, opened on the first
 * call: a private store (mode 0600, named "weft-rt-PID-N", unique in the
 * machine), of weft_config.store_capacity bytes (see weft/runtime.h),
 * with room for a client per worker (the isolated map's processes). The
 * runtime owns its own store: weft_runtime_destroy() closes and unlinks
 * it; the caller must not close it, and must not use *out after destroy.
 * Other processes of the same user may open it by its name
 * ("weft-rt-PID-N"); a forked child must (see "Processes" above), as the
 * isolated map's processes do. A process that dies without destroy
 * (SIGKILL, a crash, _exit) leaves its store behind; each new runtime
 * store first removes this user's "weft-rt-*" stores whose creator's pid
 * is gone, that were not modified for a minute and on which no process
 * holds a lock (every attached client holds one on its slot).
 * Errors: -EINVAL (NULL argument), and those of weft_store_open() (-ENOSPC
 * when /dev/shm has no room for the capacity); a later call tries again.
 * Any thread of the runtime's process, at any time before destroy; in a
 * forked child it returns -ENOTSUP (weft/runtime.h, "fork()"). */
WEFT_API int weft_runtime_store(weft_runtime *rt, weft_store **out);

/* Makes st, a store the caller opened, rt's store, before rt has one
 * (before the first weft_runtime_store() or isolated map). rt does not
 * own st: the caller closes it, after weft_runtime_destroy(rt) returned.
 * Returns 0 (also when st is rt's store already), -EINVAL (NULL
 * argument), -EEXIST (rt has another store, its own or an attached one),
 * -ENOTSUP in a process forked from rt's. Any thread. */
WEFT_API int weft_runtime_set_store(weft_runtime *rt, weft_store *st);

#ifdef __cplusplus
}
#endif

#endif
