/* weft actors: state owned by one callback table, driven by messages, on the
 * same pool as tasks and futures (like Ray actors, CAF or Pony).
 *
 *   typedef struct { long sum; } acc;
 *   static int acc_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
 *   {
 *       acc *a = st;
 *       if (n == sizeof(long)) { a->sum += *(long *)msg; return 0; }
 *       long *v = malloc(sizeof *v);             (a "get" message: reply)
 *       if (!v) return -ENOMEM;
 *       *v = a->sum;
 *       return weft_actor_reply(cx, v, free);
 *   }
 *   static const weft_actor_class ACC = {.state_size = sizeof(acc),
 *                                        .receive = acc_recv};
 *   weft_actor *a;
 *   weft_actor_spawn(rt, &ACC, NULL, NULL, &a);
 *   long x = 5;
 *   weft_send(a, &x, sizeof x, 0);             (fire and forget)
 *   weft_future *f;
 *   weft_ask(a, "get", 3, 0, &f);             (f's result: the sum, 5)
 *   weft_actor_stop(a, WEFT_STOP_GRACEFUL, NULL);
 *   weft_actor_release(a);
 *
 * Semantics. An actor handles one message at a time, so its state needs no
 * locks; messages from one sender (one thread, or one actor) are handled in
 * the order they were sent. A message is copied into an envelope at send
 * time: the sender keeps its buffer. Sending to an actor whose mailbox was
 * empty schedules it on the pool; one activation handles a bounded batch of
 * messages, then yields to other work.
 *
 * Sends from inside a receive. A plain send (weft_send) that a receive makes
 * to another, unbounded actor of the same runtime may be held by the thread
 * and queued later, together with the receive's next sends to the same actor
 * (one atomic operation for many messages). It is queued no later than when
 * the receive returns (before its ask's reply completes), and before the
 * receive calls any weft function that waits or runs other work
 * (weft_future_get, weft_future_take, weft_wait, weft_sync, a bounded send
 * that must wait, weft_store_get) or that hands work to other threads
 * (weft_submit, weft_submit_after); an ask, a stop, or a send to another
 * actor queues the held ones first, so messages from a receive keep their
 * order per target, and a later message never overtakes an earlier one
 * whatever its target. weft_send returns 0 and the statistics count the
 * message when it is made. Not supported: a receive that spins on plain
 * memory (no weft wait) for an effect of its own send; it may wait for ever.
 *
 * Failure. A receive that returns non-zero fails its message (an ask gets
 * that status) and restarts the actor: fini, then init again on zeroed
 * state, up to max_restarts times (-1: no limit); the messages queued
 * behind the failed one are handled by the restarted actor. Past that, or
 * when init fails on a restart, the actor is dead: fini has run, queued
 * messages are dropped (their asks complete with WEFT_ACTOR_DEAD) and
 * later sends and asks return WEFT_ACTOR_DEAD at once. Nothing aborts the
 * process.
 *
 * Ownership. weft_actor_spawn() hands the caller one reference to the
 * handle; weft_actor_retain() adds one; each is given back with
 * weft_actor_release(). Releasing does not stop the actor: an actor runs
 * until it is stopped (weft_actor_stop, from anywhere, itself included),
 * dies, or its runtime is destroyed. Memory is freed once it is stopped
 * and no reference is left.
 *
 * Runtime destroy. weft_runtime_destroy() first lets every queued message
 * be handled (like every queued task), so sends from inside receives keep
 * flowing until the actors fall idle; then it runs fini of each actor still
 * alive on the destroying thread (fini must not submit work then) and frees
 * every actor, referenced or not: handles are invalid afterwards.
 *
 * Threads. Every call may be made from any thread: a worker of the actor's
 * runtime (a task, a future, another actor's receive, the actor's own
 * receive) or an outside thread. From outside threads, calls made after
 * weft_runtime_destroy() began return -ESHUTDOWN. A receive may wait on a
 * future (weft_future_get runs other work meanwhile), but not on an ask
 * to its own actor, which can only be handled after it returns. */
#ifndef WEFT_ACTOR_H
#define WEFT_ACTOR_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "future.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_actor weft_actor;

/* The message being handled, handed to receive. Valid only during that
 * call, on the thread running it. */
typedef struct weft_actor_ctx weft_actor_ctx;

/* The status of a message the actor will never handle (it was stopped or
 * died), and what sends and asks to such an actor return. */
#define WEFT_ACTOR_DEAD (-ESRCH)

/* An actor's behaviour. Must stay valid (usually static const) as long as
 * actors of the class live. */
typedef struct weft_actor_class {
    /* Bytes of state the runtime allocates for each actor (zeroed before
     * init), next to the actor itself. May be 0. */
    size_t state_size;
    /* Called before the first message, and again on each restart; arg is
     * the one given to weft_actor_spawn(). Returns 0 or an error: at spawn,
     * the error is spawn's; on a restart the actor dies. May be NULL. */
    int (*init)(void *state, void *arg);
    /* Handle one message (msg[0..size), borrowed for the call; NULL when
     * size is 0). Returns 0, or an error that fails the message and
     * restarts the actor. Required. */
    int (*receive)(weft_actor_ctx *ctx, void *state, void *msg, size_t size);
    /* Called once after each successful init: before a restart, when the
     * actor stops or dies, or at runtime destroy. May be NULL. */
    void (*fini)(void *state);
    /* For diagnostics; not copied. May be NULL. */
    const char *name;
    uint64_t reserved[4];
} weft_actor_class;

/* Options of weft_actor_spawn(). Start from weft_actor_opts_default(). */
typedef struct weft_actor_opts {
    /* Restarts allowed after failed messages; -1 = no limit; 0 (the
     * default, as in Ray) = the first failure kills the actor. */
    int max_restarts;
    /* Mailbox bound in messages, counting queued ones and the one being
     * handled; 0 = unbounded (the default). A send to a full mailbox
     * waits, or returns -EAGAIN with WEFT_SEND_NOWAIT. */
    int capacity;
    /* Messages one activation handles before yielding; 0 = the default
     * (WEFT_ACTOR_BATCH). 1..65535. */
    int batch;
    /* Preferred NUMA node for the actor's activations, -1 = where its
     * sender runs (the default). */
    int numa_node;
    /* 1: count the messages queued, for weft_actor_backlog(). Bounded
     * mailboxes and pool members count anyway; for others it is off by
     * default (0), because the count is a second atomic operation per
     * send on the cache line every sender writes. */
    int track_backlog;
    uint32_t reserved0;
    uint64_t reserved[5];
} weft_actor_opts;

/* The default batch of an activation: the batch sweep of the actor
 * benchmark suite (bench/run_actor.py) found no batch from 16 to 1024
 * consistently better on the Savina workloads on 2 cores (within the
 * noise), and below 16 the requeues cost; 64 bounds the time one actor
 * holds a worker to tens of microseconds for short messages. */
#define WEFT_ACTOR_BATCH 64

/* max_restarts 0, unbounded, default batch, any node. */
WEFT_API weft_actor_opts weft_actor_opts_default(void);

/* Create an actor of class cls on rt, running cls->init(state, arg) on the
 * calling thread before returning. On success *out holds one reference.
 * opts may be NULL. Errors (nothing is created, *out is NULL): -EINVAL
 * (rt, cls, cls->receive or out NULL, an option out of range), -ENOMEM,
 * -ESHUTDOWN, or init's own error (fini is not called then). */
WEFT_API int weft_actor_spawn(weft_runtime *rt, const weft_actor_class *cls,
                              void *arg, const weft_actor_opts *opts,
                              weft_actor **out);

/* An actor pool: n actors of class cls (each initialised with arg) behind
 * one handle. A message sent to the pool goes to its least-loaded member
 * (the shorter mailbox of two picked at random), so ordering holds only per
 * member: use a pool for stateless or sharded work. A member that dies (past
 * max_restarts, or its init failing on a restart) gets no more messages: the
 * pool refuses them (WEFT_ACTOR_DEAD) only once no member takes them. Stop
 * and release act on every member. opts apply to each member. Errors as
 * spawn, and -EINVAL for n < 1 or n > 65536; on failure the members made so
 * far are stopped and freed. */
WEFT_API int weft_actor_pool_spawn(weft_runtime *rt,
                                   const weft_actor_class *cls, void *arg,
                                   int n, const weft_actor_opts *opts,
                                   weft_actor **out);

enum weft_send_flags {
    /* A full bounded mailbox: return -EAGAIN instead of waiting. Waiting
     * runs other work on a worker and sleeps on an outside thread. Inside
     * a receive, prefer NOWAIT: two actors each waiting for room in the
     * other's full mailbox wait forever (the self case is -EDEADLK). */
    WEFT_SEND_NOWAIT = 1u << 0,
};

/* Send msg[0..size) (copied; msg may be NULL when size is 0) to a.
 * flags: enum weft_send_flags. Returns 0 when queued, WEFT_ACTOR_DEAD
 * when a is stopping, stopped or dead, -EAGAIN (full, NOWAIT), -EDEADLK
 * (a receive sending to its own full mailbox without NOWAIT: only its
 * return could make room), -ENOMEM, -EINVAL (a NULL, msg NULL with size >
 * 0, size > UINT32_MAX, unknown flags), -ESHUTDOWN. */
WEFT_API int weft_send(weft_actor *a, const void *msg, size_t size,
                       unsigned flags);

/* Like weft_send(), and *out receives a future of the reply: its status is
 * receive's return value (or WEFT_ACTOR_DEAD when the message was dropped
 * by a stop or the actor's death), its result what receive passed to
 * weft_actor_reply() (NULL if nothing). On success the caller owns one
 * reference to *out (weft_future_release); on failure *out is NULL. */
WEFT_API int weft_ask(weft_actor *a, const void *msg, size_t size,
                      unsigned flags, weft_future **out);

enum weft_stop_mode {
    /* Handle the messages queued before the stop, then run fini. */
    WEFT_STOP_GRACEFUL = 0,
    /* Finish the message being handled, run fini, drop what is queued
     * (asks complete with WEFT_ACTOR_DEAD). */
    WEFT_STOP_NOW = 1,
};

/* Stop a (every member, for a pool). From the call on, sends and asks
 * return WEFT_ACTOR_DEAD; messages that raced with the stop are handled or
 * dropped, never lost silently. When done is not NULL it receives a future
 * (status 0) that completes once fini has run (for a pool: once every
 * member's has); the caller owns it. Returns 0, -EALREADY (already stopping
 * in that mode or stronger: done still gets a future), WEFT_ACTOR_DEAD (dead
 * or stopped: done gets nothing), -EINVAL, -ENOMEM, -ESHUTDOWN. Safe while
 * others send, and from the actor's own receive. */
WEFT_API int weft_actor_stop(weft_actor *a, int mode, weft_future **done);

/* Add a reference to a. 0 or -EINVAL. */
WEFT_API int weft_actor_retain(weft_actor *a);

/* Give back one reference; the handle must not be used by this caller
 * afterwards. Does not stop the actor. 0 or -EINVAL. */
WEFT_API int weft_actor_release(weft_actor *a);

/* 1 while a accepts messages, 0 once it is stopping, stopped or dead,
 * -EINVAL. For a pool: 1 while any of its members accepts messages. */
WEFT_API int weft_actor_alive(const weft_actor *a);

/* Restarts so far (a pool: summed over members), or -EINVAL. */
WEFT_API long weft_actor_restarts(const weft_actor *a);

/* Messages now in a's mailbox (a pool: summed), a gauge; -EINVAL, or
 * -ENOTSUP for an unbounded actor spawned without track_backlog (it
 * keeps no count). */
WEFT_API long weft_actor_backlog(const weft_actor *a);

/* --- inside receive ---------------------------------------------------- */

/* The actor handling the message, borrowed: valid during the call
 * (retain it to keep it). Send to it to send to oneself. */
WEFT_API weft_actor *weft_actor_self(const weft_actor_ctx *ctx);

/* The runtime the actor runs on. */
WEFT_API weft_runtime *weft_actor_runtime(const weft_actor_ctx *ctx);

/* 1 when the message being handled is an ask, else 0. */
WEFT_API int weft_actor_is_ask(const weft_actor_ctx *ctx);

/* Set the reply of the message being handled: for an ask, value becomes
 * its future's result, destroyed by dtor (may be NULL) with the future;
 * replying again destroys the previous value. For a plain send, value is
 * destroyed at once. 0 or -EINVAL (ctx NULL). */
WEFT_API int weft_actor_reply(weft_actor_ctx *ctx, void *value,
                              void (*dtor)(void *value));

#ifdef __cplusplus
}
#endif

#endif
