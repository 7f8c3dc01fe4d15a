/* weft/net.h: the same program on several machines.
 *
 * Two layers:
 *
 *  - The transport contract (weft_transport_ops): a const table of
 *    operations that moves active messages (handler id, header, payload)
 *    between the ranks of a job. Backends: "loop" (in one process, for
 *    tests), "tcp" (io_uring, peers from a list) and "mpi" (when the
 *    library was built with MPI). weft_transport_register() adds another
 *    one (UCX, ...); see "Writing a backend" below.
 *
 *  - The node (weft_node): the runtime across machines, on top of a
 *    transport. Functions registered with WEFT_REMOTE(fn) run on other
 *    ranks through weft_submit_remote(), which returns an ordinary
 *    weft_future; arguments and results travel as bytes. Tasks sent to
 *    "any node" are taken by idle nodes (stealing). A node that stops
 *    answering is declared dead; its unfinished idempotent tasks run
 *    again elsewhere, the others fail with -EHOSTDOWN. Byte objects named
 *    by a 20-byte ID move between nodes on demand (weft_net_object_*);
 *    hooks let an object store serve and receive them, and
 *    weft_net_use_store() plugs a weft_store in. Actors published under
 *    a name (weft_net_actor_publish) receive messages and asks from
 *    other nodes (weft_net_send, weft_net_ask).
 *
 * On mpi, ranks that share a machine exchange messages through rings in
 * shared memory (an MPI shared window) instead of MPI messages, and MPI
 * carries the rest; WEFT_MPI_SHM=0 in the environment keeps everything
 * on MPI, WEFT_MPI_SHM_KB sets each ring's size (KiB; 256 by default,
 * at least 64; a full ring makes messages wait, in order). A sender
 * wakes a sleeping receiver through a handshake that uses membarrier(2)
 * where the kernel has it (WEFT_MPI_MEMBARRIER=0: without, at some
 * 50 ns more per message).
 *
 * Failures: on tcp (and loop) a dead rank is detected (silence longer
 * than dead_timeout_ms, or a broken stream that is not re-made) and the
 * job goes on without it. MPI (before ULFM) cannot survive the death of a
 * rank: mpirun normally ends the whole job, so the mpi backend does not
 * claim WEFT_TRANSPORT_FAILURES (lib/net/mpi.c says more).
 *
 * Every message on the wire is versioned and length-checked; a malformed
 * one is dropped, counted (weft_net_stats.dropped) and logged, never
 * trusted.
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "actor.h"
#include "common.h"
#include "future.h"
#include "runtime.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * Bytes: the unit arguments, results and objects travel in.
 * ====================================================================== */

typedef struct weft_bytes {
    size_t len;
    unsigned char data[];
} weft_bytes;

/* A block of len bytes (contents undefined), or NULL when out of memory.
 * The caller owns it; free it with weft_bytes_free(). Any thread. */
WEFT_API weft_bytes *weft_bytes_new(size_t len);

/* A copy of data[0..len), or NULL when out of memory (or data is NULL and
 * len > 0). Any thread. */
WEFT_API weft_bytes *weft_bytes_copy(const void *data, size_t len);

/* Free b (NULL is allowed). Any thread. */
WEFT_API void weft_bytes_free(weft_bytes *b);

/* ======================================================================
 * The transport contract.
 *
 * Writing a backend: fill a static const weft_transport_ops, with abi =
 * WEFT_TRANSPORT_ABI, and call weft_transport_register(&ops) before the
 * first weft_net_create() that names it. Threads:
 *   - open, progress and close are called only from one thread, the
 *     node's communication thread, in that order (open once, progress
 *     many times, close once). The events of weft_transport_events are
 *     delivered only from inside progress or close, on that thread
 *     (never from open: the caller sets up for them after open returns).
 *   - send and wake may be called from any thread, concurrently, between
 *     the return of open and the call of close. A backend that needs one
 *     thread to own its library (MPI without MPI_THREAD_MULTIPLE) queues
 *     sends there and performs them in progress.
 *   - rank and size may be called from any thread after open returned.
 *   - poll (optional) may be called from any thread between the return
 *     of open and the call of close, concurrently with progress: a
 *     thread that waits for a reply polls instead of sleeping until the
 *     communication thread wakes it. A backend serialises it with
 *     progress itself; events it delivers come on the polling thread.
 *     It never blocks: when another thread is inside the backend it
 *     returns -EBUSY (also when called from inside one of its own
 *     event callbacks).
 *   - progress returns soon after a call in which it delivered a
 *     message (not only at its timeout): the node runs short tasks it
 *     received between two calls, outside the backend's locks.
 * Ordering: messages from one rank to another are delivered in the order
 * of their send calls. Delivery is not guaranteed after peer_failed.
 * ====================================================================== */

#define WEFT_TRANSPORT_ABI 1

enum weft_transport_caps {
    /* put/get on registered memory are implemented. */
    WEFT_TRANSPORT_RMA = 1u << 0,
    /* peer_failed is reported when a peer dies (tcp); without it a dead
     * peer may abort the whole job (mpi's usual behaviour). */
    WEFT_TRANSPORT_FAILURES = 1u << 1,
    /* more than one process is involved (not loop). */
    WEFT_TRANSPORT_MULTIPROCESS = 1u << 2,
};

typedef struct weft_transport weft_transport; /* a backend's state */

/* Parameters of open. Start from weft_net_config_default()'s copy. */
typedef struct weft_transport_params {
    /* tcp: "host:port,host:port,..." (one per rank, in rank order);
     * NULL = the environment WEFT_PEERS. loop: the group name (all
     * endpoints of one group are one job); NULL = "default". */
    const char *peers;
    /* tcp, loop: this process's rank; -1 = the environment WEFT_RANK.
     * mpi: ignored (MPI says). */
    int rank;
    /* loop: number of ranks in the group (tcp: the peer list's length;
     * mpi: MPI says). */
    int size;
    /* tcp: interval of heartbeats and of reconnect attempts (ms). */
    int heartbeat_ms;
    /* tcp: a peer silent this long is declared failed (ms). */
    int dead_timeout_ms;
    /* tcp: a peer that never connected is declared failed after this
     * long from open (ms). */
    int join_timeout_ms;
    /* largest payload accepted from the wire, bytes; the same on every
     * rank of a job. A node never sends more: a task's argument, an
     * actor message (name and data) over it is refused (-EMSGSIZE), and
     * a task's result, an ask's reply or a served object over it fails
     * the requester's future with -EMSGSIZE. mpi carries less than 2 GiB
     * whatever this says: a bigger one is refused and fails the same. */
    uint64_t max_payload;
    uint64_t reserved[8];
} weft_transport_params;

/* One received active message. payload (may be NULL when its length is 0)
 * was allocated with weft_bytes_new(): the recv callback may keep it by
 * setting msg->payload to NULL (it then owns it); otherwise the transport
 * frees it after the callback returns. hdr is valid during the callback
 * only. */
typedef struct weft_am {
    int src;
    unsigned handler;
    const void *hdr;
    size_t hdrlen;
    weft_bytes *payload;
} weft_am;

/* Events from the transport, on the communication thread (or, from poll,
 * on the polling thread). */
typedef struct weft_transport_events {
    void *ctx;
    void (*recv)(void *ctx, weft_am *msg);
    /* rank can now be sent to (first connection, or a reconnection). */
    void (*peer_joined)(void *ctx, int rank);
    /* rank is gone for good; reason is a negative errno. */
    void (*peer_failed)(void *ctx, int rank, int reason);
    /* a message was dropped as malformed (already logged). */
    void (*dropped)(void *ctx);
} weft_transport_events;

/* Completion of a send: status 0 once the transport no longer reads the
 * header, payload and iovec memory; a negative errno when the message was
 * not sent (peer failed, transport closing). Called exactly once per send
 * that returned 0, on any thread (possibly inside send itself); it must
 * not call send. A sender with nothing to free passes NULL: backends
 * check. */
typedef void (*weft_send_done)(void *arg, int status);

#define WEFT_AM_MAX_HDR 256u
#define WEFT_AM_MAX_HANDLER 255u

typedef struct weft_transport_ops {
    const char *name;
    unsigned abi;  /* WEFT_TRANSPORT_ABI */
    unsigned caps; /* enum weft_transport_caps */
    /* Join the job. On success *out is the backend's state, owned by the
     * caller until close. Returns 0 or a negative errno. */
    int (*open)(weft_transport **out, const weft_transport_params *p,
                const weft_transport_events *ev);
    /* Leave: pending sends complete with -ECANCELED (or are flushed), all
     * memory is freed. */
    void (*close)(weft_transport *t);
    int (*rank)(const weft_transport *t);
    int (*size)(const weft_transport *t);
    /* Queue an active message to dst (!= own rank): handler <=
     * WEFT_AM_MAX_HANDLER, hdrlen <= WEFT_AM_MAX_HDR (the header is copied
     * before send returns), payload the iovcnt (<= 8) buffers of iov,
     * which must stay valid until done is called. Non-blocking. Returns 0
     * (done will be called) or a negative errno (-EINVAL, -EHOSTDOWN for a
     * failed peer, -ENOMEM, -EMSGSIZE for a payload larger than the
     * backend can carry (mpi: 2 GiB or more); done will not be called). */
    int (*send)(weft_transport *t, int dst, unsigned handler,
                const void *hdr, size_t hdrlen, const struct iovec *iov,
                int iovcnt, weft_send_done done, void *done_arg);
    /* Make progress, waiting up to timeout_ns (0: just look) for
     * something to happen. Returns 0 or a negative errno (fatal). */
    int (*progress)(weft_transport *t, int64_t timeout_ns);
    /* Make a progress call that is waiting return soon. */
    void (*wake)(weft_transport *t);
    /* Optional (caps & WEFT_TRANSPORT_RMA), else NULL: one-sided access
     * to memory a peer registered (reg below), without its help. The
     * peer passes the region's key and an address inside it to whoever
     * may use it (in a message). put copies src[0..len) to the peer's
     * remote_addr, get copies the peer's remote_addr[0..len) into
     * dst_buf; [remote_addr, remote_addr + len) must lie inside the
     * region named by rkey. Non-blocking, from any thread; src / dst_buf
     * stay valid until done. done(arg, 0) once the bytes are in place at
     * the other end (for put: a message this rank sends after done is
     * seen after them), or a negative errno (-EFAULT: outside the
     * region or no such region, -EHOSTDOWN). Returns 0 (done will be
     * called), -EINVAL (dst, a NULL buffer, len 0 or 2 GiB or more),
     * -ENOTSUP (this backend or this job cannot), -ENOMEM. */
    int (*put)(weft_transport *t, int dst, const void *src, size_t len,
               uint64_t remote_addr, uint64_t rkey, weft_send_done done,
               void *done_arg);
    int (*get)(weft_transport *t, int dst, void *dst_buf, size_t len,
               uint64_t remote_addr, uint64_t rkey, weft_send_done done,
               void *done_arg);
    /* Optional, else NULL: make progress without waiting, from any thread
     * (see above). Returns 1 when something happened (a send started or
     * ended, a message came), 0 when not, -EBUSY when another thread is
     * making progress. */
    int (*poll)(weft_transport *t);
    /* Optional (caps & WEFT_TRANSPORT_RMA), else NULL: let peers put
     * into and get from addr[0..len) until dereg(*rkey). The memory stays
     * the caller's; it must stay valid until dereg returns, and dereg
     * must not race with puts and gets the caller expects to succeed.
     * Any thread between open and close; 0, -EINVAL, -ENOMEM, -ENOTSUP;
     * dereg of an unknown key: -ENOENT. mpi takes whole pages only (addr
     * and len multiples of the page size, else -EINVAL), and its key
     * carries the region's place and size: the range is checked against
     * the key, and a made-up key is not noticed (MPI may or may not
     * refuse the access). loop checks the key too. (These took two of the reserved
     * slots: a table built before them has NULL here.) */
    int (*reg)(weft_transport *t, void *addr, size_t len, uint64_t *rkey);
    int (*dereg)(weft_transport *t, uint64_t rkey);
    void *reserved[3];
} weft_transport_ops;

/* Add a backend to the process-wide registry. ops must stay valid for the
 * life of the process (a static const table). Returns 0, -EINVAL (bad
 * table, wrong abi), -EEXIST (the name is taken) or -ENOSPC. Any thread. */
WEFT_API int weft_transport_register(const weft_transport_ops *ops);

/* The backend registered under name, or NULL. Built-ins: "loop", "tcp",
 * and "mpi" when the library was built with MPI. Any thread. */
WEFT_API const weft_transport_ops *weft_transport_find(const char *name);

/* ======================================================================
 * Remote functions.
 * ====================================================================== */

/* A remote function: reads its argument, arg[0..len) (valid during the
 * call only), and may leave a result in *result (allocated with
 * weft_bytes_new/copy; ownership passes to weft). Returns 0 on success,
 * non-zero on failure: that value becomes the future's status. Runs as a
 * task on the node's runtime. */
typedef int (*weft_remote_fn)(const void *arg, size_t len,
                              weft_bytes **result);

/* Register fn under name in the process-wide table. Every node of a job
 * must register the same names (the tables are compared when nodes meet).
 * Returns 0, -EINVAL, -EEXIST (name taken by another function), -EBUSY (a
 * node exists: the table is frozen while one does) or -ENOMEM. Any
 * thread. WEFT_REMOTE(fn) calls it from a constructor. */
WEFT_API int weft_remote_register(const char *name, weft_remote_fn fn);

#define WEFT_REMOTE(fn)                                                 \
    __attribute__((constructor)) static void weft_remote_reg_##fn(void) \
    {                                                                   \
        (void)weft_remote_register(#fn, fn);                            \
    }

/* ======================================================================
 * Nodes.
 * ====================================================================== */

typedef struct weft_node weft_node;

typedef struct weft_net_config {
    /* Backend name; NULL = the environment WEFT_TRANSPORT, else "mpi"
     * when launched by mpirun/srun and MPI is built in, else "tcp". */
    const char *transport;
    /* Passed to the backend's open (peers, rank, timeouts). */
    weft_transport_params params;
    /* weft_net_create waits this long (ms) for every peer to join and
     * pass the registry check. */
    int join_timeout_ms;
    /* An idle node asks a random peer for work at most this often (us);
     * 0 = the default (200 us); -1 = never steal. */
    int steal_interval_us;
    /* Tasks that are short run where they are received. The node times
     * every remote function it runs (a moving average per function); a
     * task whose function has averaged under inline_us here runs on the
     * node's communication thread when that thread received it, like
     * one flagged WEFT_REMOTE_CHEAP, instead of going to a worker: a
     * round trip then wakes no thread. (Tasks that a thread of yours
     * receives while it polls for a reply go to workers: a thread you
     * wait on never runs other people's tasks.)
     * A function that ran longer than 1 ms three times is never run so
     * again (not once: a short run takes that long when its thread loses
     * the CPU).
     * Such a task may wait (it is run after the transport is released,
     * and its thread keeps the transport going while it waits), but
     * while it runs that thread receives nothing else.
     * 0 = the default: 20 us on transports whose waiters can poll and
     * that detect no failures (mpi), off on the others (tcp, where a
     * surprise long run would stall the heartbeats); -1 = never (only
     * WEFT_REMOTE_CHEAP tasks run inline). Needs a transport with poll:
     * on others it is ignored. The environment WEFT_NET_INLINE_US
     * overrides the default (0 there means never). */
    int inline_us;
    int pad_;
    uint64_t reserved[7];
} weft_net_config;

/* Defaults: transport from the environment, heartbeat 100 ms, dead after
 * 1000 ms of silence, join within 30 s, payloads up to 1 GiB, stealing on.
 * Environment overrides, read by weft_net_create when the field is left
 * at its default: WEFT_TRANSPORT, WEFT_PEERS, WEFT_RANK,
 * WEFT_NET_DEAD_MS, WEFT_NET_INLINE_US. */
WEFT_API weft_net_config weft_net_config_default(void);

/* Join the job: open the transport on a new communication thread, meet
 * every peer and compare the remote-function tables. On success *out
 * owns the node (rt must outlive it). Returns 0, -EINVAL, -ENOENT (no
 * such transport), -EPROTO (a peer's function table differs: the first
 * differing name is logged), -EHOSTDOWN (a peer died before it was met),
 * -ETIMEDOUT (peers did not all join), -EMSGSIZE (the names of the
 * registered remote functions, which the node sends every peer when it
 * meets it, NUL-terminated, take more than params.max_payload bytes:
 * logged), or the backend's error; a failed create returns once the tasks that peers
 * which met this node sent it meanwhile have ended (as destroy does).
 * Call from a thread that is not one of rt's workers. */
WEFT_API int weft_net_create(weft_node **out, weft_runtime *rt,
                             const weft_net_config *cfg);

/* Leave the job and free the node; sets *np to NULL. Remote tasks not yet
 * answered complete with -ECANCELED. Peers see this node as gone; tasks
 * that reach it while it is destroyed are refused, not run, and their
 * senders take them as lost with a dead node (idempotent ones run again
 * elsewhere, the others fail with -EHOSTDOWN). Call weft_net_barrier()
 * first for an orderly end. Not from rt's workers. */
WEFT_API int weft_net_destroy(weft_node **np);

/* This node's rank (0..size-1), or -EINVAL. Any thread. */
WEFT_API int weft_net_rank(const weft_node *n);
/* Number of ranks in the job, or -EINVAL. Any thread. */
WEFT_API int weft_net_size(const weft_node *n);
/* 1 if rank is alive as far as this node knows, 0 if failed, -EINVAL. */
WEFT_API int weft_net_alive(const weft_node *n, int rank);

/* Wait until every live rank has called weft_net_barrier (ranks that fail
 * meanwhile are not waited for). Returns 0, -ETIMEDOUT after timeout_ns
 * (< 0: never), -EINVAL. Not from rt's workers. */
WEFT_API int weft_net_barrier(weft_node *n, int64_t timeout_ns);

#define WEFT_NODE_ANY (-1)
#define WEFT_NODE_OBJECT (-2)

enum weft_remote_flags {
    /* May run more than once: re-run elsewhere when its node dies. */
    WEFT_REMOTE_IDEMPOTENT = 1u << 0,
    /* Short (microseconds): the node that receives it runs it on its
     * communication thread, without handing it to a worker, which saves
     * two thread wake-ups per round trip (it runs outside the runtime:
     * weft_current_runtime() is NULL). One that a waiting thread of the
     * node receives while it polls goes to a worker. A cheap task that runs
     * long stalls that node's traffic (and, past the dead timeout, gets
     * the node declared dead). It may wait for futures (any future:
     * its thread keeps the transport going meanwhile) only on a
     * transport whose waiters poll (mpi, loop): elsewhere the wait
     * would block the thread that should deliver the reply. See also
     * weft_net_config.inline_us, which does this by itself for
     * functions it has seen run short. */
    WEFT_REMOTE_CHEAP = 1u << 1,
};

typedef struct weft_remote_opts {
    /* A rank; WEFT_NODE_ANY: here or on whichever node steals it;
     * WEFT_NODE_OBJECT: the node that holds object (below): this one
     * when its store (weft_net_use_store) or default table holds it,
     * else the rank that announced it. */
    int node;
    unsigned flags; /* enum weft_remote_flags */
    const uint8_t *object; /* 20-byte ID, for WEFT_NODE_OBJECT */
    uint64_t reserved[6];
} weft_remote_opts;

/* node = WEFT_NODE_ANY, no flags. */
WEFT_API weft_remote_opts weft_remote_opts_default(void);

/* Run the remote function registered as name with arg[0..len) (copied),
 * where opts says. On success *out holds one reference to a future whose
 * status is the function's return value (or -EHOSTDOWN when its node
 * died, or refused it while being destroyed, and it was not idempotent,
 * -ECANCELED when this node is destroyed first, -EMSGSIZE when its
 * result was over the running node's
 * max_payload) and whose result is a weft_bytes * (NULL when the
 * function left none), owned by the future. Idempotent tasks whose node dies run again
 * on any live node (this one included). Returns 0, -EINVAL (bad opts or
 * rank), -ENOENT (name not registered, or no node is known to hold
 * opts->object), -EHOSTDOWN (that rank is dead), -EMSGSIZE (len is over
 * max_payload, wherever the task is to run), -ENOMEM. On failure
 * *out is untouched. Any thread but the node's communication thread. */
WEFT_API int weft_submit_remote(weft_node *n, const char *name,
                                const void *arg, size_t len,
                                const weft_remote_opts *opts,
                                weft_future **out);

/* ======================================================================
 * Objects: immutable byte payloads named by a 20-byte ID.
 * ====================================================================== */

#define WEFT_OBJECT_ID_LEN 20

/* How a node serves and keeps objects. The default hooks (none set) keep
 * objects given to weft_net_object_put in the node's own table. An object
 * store plugs in here (weft_net_use_store does it for a weft_store):
 * lookup reads a local object, for a peer or to find that a fetch needs
 * no traffic; sink puts a fetched one into the local store. lookup and
 * release are called on the communication thread (serving a peer) and on
 * the thread that calls weft_net_object_fetch or weft_submit_remote
 * (looking locally); sink on the communication thread. A thread that
 * waits for a reply and polls the transport (see poll) may also serve a
 * peer or sink a fetch meanwhile. They must not block for long: the
 * node's traffic waits meanwhile. */
typedef struct weft_object_hooks {
    void *ctx;
    /* Find id; on success set *data and *len to bytes that stay valid until
     * release(ctx, token) and return 0; else a negative errno
     * (-ENOENT). */
    int (*lookup)(void *ctx, const uint8_t *id, const void **data,
                  size_t *len, void **token);
    void (*release)(void *ctx, void *token);
    /* A fetched copy of id arrived (data[0..len), valid during the call).
     * Returns 0 when it kept it: the fetch's future then completes with
     * status 0 and no result (the bytes are where the sink put them);
     * else a negative errno, the fetch's status. May be NULL: the fetch's
     * result is then the bytes. */
    int (*sink)(void *ctx, const uint8_t *id, const void *data, size_t len);
    void *reserved[4];
} weft_object_hooks;

/* Install hooks (copied) before any object traffic; NULL = the default
 * table. Returns 0 or -EINVAL. Any thread. */
WEFT_API int weft_net_set_object_hooks(weft_node *n,
                                       const weft_object_hooks *h);

/* Keep a copy of data[0..len) as object id on this node (default table)
 * and tell the peers where it is. Returns 0, -EEXIST, -ENOMEM, -EINVAL.
 * Any thread. */
WEFT_API int weft_net_object_put(weft_node *n, const uint8_t *id,
                                 const void *data, size_t len);

/* Note that object id is held here (for hooks-served objects) and tell
 * the peers. Returns 0, -ENOMEM, -EINVAL. Any thread. */
WEFT_API int weft_net_object_announce(weft_node *n, const uint8_t *id);

/* Fetch object id from rank (or from wherever it was announced, when
 * rank is WEFT_NODE_ANY). An object this node holds (its default table,
 * or the hooks' lookup finds it) completes the future at once, without
 * traffic. On success *out holds one reference to a future whose status
 * is 0, -ENOENT (not at rank), -EHOSTDOWN (rank is or goes dead),
 * -EMSGSIZE (the object is over max_payload), the sink's error
 * (-ENOSPC: the local store is full) or -ECANCELED (the node is
 * destroyed first). Its result, with status 0: with a sink hook
 * (weft_net_use_store), none: the object is in the local store; without
 * one, a weft_bytes * with the object's bytes, owned by the future.
 * Returns 0, -EINVAL, -ENOENT (rank WEFT_NODE_ANY and no holder known),
 * -ENOMEM; on failure *out is untouched. Any thread but the node's
 * communication thread. */
WEFT_API int weft_net_object_fetch(weft_node *n, const uint8_t *id,
                                   int rank, weft_future **out);

/* Make st the store this node serves objects from and fetches objects
 * into (it installs object hooks, replacing any; NULL: the runtime's
 * store, weft_runtime_store()). Afterwards:
 *  - a peer's fetch of id is served zero-copy from the sealed object id
 *    of st: a reference (weft_store_get) is held while the bytes are
 *    sent and released when the transport is done with them;
 *  - a fetch lands in st as a sealed object under the same id (created,
 *    copied in from the received message, sealed), so that
 *    weft_store_get(st, id, ...) finds it once the fetch's future is
 *    done; an id st already holds sealed is not fetched again. An id
 *    that another process of the machine is writing at that moment
 *    counts as held: weft_store_get with a timeout waits for its seal;
 *  - weft_submit_remote with WEFT_NODE_OBJECT runs where the object is:
 *    here when st holds it, else on the rank that announced it.
 * Objects created in st by this process are found by peers' fetches
 * that name this rank; weft_net_object_announce(n, id) tells the peers
 * where they are, for WEFT_NODE_ANY fetches and WEFT_NODE_OBJECT tasks.
 * Ownership: the caller keeps st; it must stay open until
 * weft_net_destroy(n) returned (the runtime's own store does). Call
 * before any object traffic. Returns 0, -EINVAL, or the errors of
 * weft_runtime_store() when st is NULL. Any thread. */
WEFT_API int weft_net_use_store(weft_node *n, weft_store *st);

/* ======================================================================
 * Actors across nodes.
 *
 * A node publishes some of its actors under names; peers send to them by
 * (rank, name). On the receiving node a message is handed to the actor
 * by an ordinary weft_send, an ask by weft_ask, both on the node's
 * communication thread (so WEFT_SEND_NOWAIT: a bounded mailbox that is
 * full drops a send and fails an ask with -EAGAIN; published actors are
 * best left unbounded). The messages of one sending thread to one
 * (rank, name) are handled in the order they were sent. The actor sees
 * its message bytes and cannot tell a remote sender from a local one;
 * the reply to an ask from weft_net_ask must be given with
 * weft_net_reply (bytes), any other reply fails the ask with -EPROTO.
 * ====================================================================== */

#define WEFT_NET_NAME_MAX 255

/* Publish a under name (1..WEFT_NET_NAME_MAX bytes, NUL-terminated) on
 * this node. a must run on n's runtime (the one given to
 * weft_net_create). The node takes its own reference to a
 * (weft_actor_retain), given back by weft_net_actor_unpublish or
 * weft_net_destroy; the caller keeps its own. Publishing does not keep a
 * alive: once it is stopped, asks fail with WEFT_ACTOR_DEAD and sends are
 * dropped (counted). weft_net_destroy waits for the asks its actors are
 * handling for peers, so they reply before it returns. Returns 0,
 * -EINVAL, -EEXIST (the name is taken on this node), -ENOMEM. Any
 * thread. */
WEFT_API int weft_net_actor_publish(weft_node *n, const char *name,
                                    weft_actor *a);

/* Withdraw name: later messages to it fail as unknown (-ENOENT); those
 * already handed to the actor are handled. Returns 0, -EINVAL, -ENOENT.
 * Any thread. */
WEFT_API int weft_net_actor_unpublish(weft_node *n, const char *name);

/* Send data[0..len) (copied before the call returns) to the actor
 * published as name on rank (this node's own rank too: then a local
 * weft_send that may wait for room in a bounded mailbox). Fire and
 * forget. A full bounded mailbox there does not lose it: the message
 * waits in that node (weft_net_stats.actor_waiting), behind the others
 * waiting for the same actor, and goes in when there is room (tried
 * every 50 us), so one sender's messages keep their order. It is
 * dropped (counted in weft_net_stats.actor_dropped there, and logged)
 * when the name is unknown there, the actor is stopped, 64 MiB of such
 * messages wait there already, or that node is destroyed first.
 * Returns 0 (queued), -EINVAL (bad argument or rank), -EMSGSIZE (the
 * name and len bytes over params.max_payload), -EHOSTDOWN (rank is
 * dead), -ENOMEM; for this node's rank -ENOENT (no such name) and
 * weft_send's errors. Any thread but the node's communication thread. */
WEFT_API int weft_net_send(weft_node *n, int rank, const char *name,
                           const void *data, size_t len);

/* Ask the actor published as name on rank with data[0..len) (copied).
 * A full bounded mailbox there makes the ask wait for room, as
 * weft_net_send's message does (behind the sender's earlier sends).
 * On success *out holds one reference to a future whose status is the
 * actor's (receive's return value, WEFT_ACTOR_DEAD when it was stopped),
 * or -ENOENT (no such name there), -EHOSTDOWN (rank is or goes dead),
 * -EAGAIN (the mailbox was full and 64 MiB of messages waited there
 * already), -EPROTO (the actor replied with something else than
 * weft_net_reply), -EMSGSIZE (the reply is over max_payload),
 * -ECANCELED (this node, or the one the actor is on, was destroyed
 * first); with status 0 its result is the weft_bytes * the
 * actor replied (NULL when none), owned by the future. Returns 0,
 * -EINVAL, -EMSGSIZE (as weft_net_send), -ENOMEM; on failure *out is
 * untouched. Any thread but the node's communication thread. */
WEFT_API int weft_net_ask(weft_node *n, int rank, const char *name,
                          const void *data, size_t len, weft_future **out);

/* Inside a receive: reply b (owned by weft from the call on, even on
 * failure; may be NULL) to the ask being handled, as weft_actor_reply
 * would; the form a remote ask needs. Returns 0 or -EINVAL (ctx NULL). */
WEFT_API int weft_net_reply(weft_actor_ctx *ctx, weft_bytes *b);

/* ======================================================================
 * Counters.
 * ====================================================================== */

typedef struct weft_net_stats {
    uint64_t msgs_sent, msgs_recv;
    uint64_t bytes_sent, bytes_recv; /* payload bytes */
    uint64_t dropped;        /* malformed messages dropped */
    uint64_t tasks_remote;   /* tasks this node ran for others */
    uint64_t tasks_stolen;   /* of those, taken by stealing */
    uint64_t tasks_rerun;    /* idempotent tasks sent again after a death
                                (or refused by a node being destroyed) */
    uint64_t tasks_failed;   /* tasks failed by a dead (or leaving) node */
    uint64_t peers_failed;
    uint64_t actor_msgs;     /* peers' sends and asks this node received */
    uint64_t actor_dropped;  /* peers' sends dropped: unknown name, a
                                stopped actor, too much waiting (below) */
    /* Replies, object data and barrier steps whose send failed for want
     * of memory: held now, to be sent again (a level, not a count), and
     * lost because they could not be held (a failed request's error
     * reply, object data or a barrier step, past 256 held at once). */
    uint64_t msgs_held, msgs_lost;
    /* Peers' sends and asks waiting here for room in a full bounded
     * mailbox (a level, not a count). */
    uint64_t actor_waiting;
    uint64_t reserved[1];
} weft_net_stats;

/* Copy n's counters into *out. 0 or -EINVAL. Any thread. */
WEFT_API int weft_net_stats_get(const weft_node *n, weft_net_stats *out);

#ifdef __cplusplus
}
#endif

#endif
