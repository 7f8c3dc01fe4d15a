/* Actors' internals, shared by actor.c (mailboxes, activation, restarts,
 * stops) and pool.c (actor pools). Nothing outside lib/actor includes
 * this. */
#ifndef WEFT_ACTOR_ACT_H
#define WEFT_ACTOR_ACT_H

#include "internal.h"
#include "fut.h"

/* A link of the mailbox (Vyukov's intrusive MPSC queue): producers
 * exchange the queue's `in` end and then link the previous node; the
 * single consumer follows `next` from `out`. */
typedef struct alink {
    _Atomic(struct alink *) next;
} alink;

enum { MSG_USER, MSG_STOP };

/* The join of a pool's stop: the last member to stop completes f. */
typedef struct ajoin {
    _Atomic int left;
    fut *f;
} ajoin;

/* An envelope: the link, the reply's future (asks), then a copy of the
 * payload. 32 bytes of header keep the payload 16-byte aligned. */
typedef struct amsg {
    alink link;
    fut *reply;      /* NULL for a plain send */
    uint32_t size;
    uint32_t kind;   /* MSG_* */
    ajoin *join;     /* MSG_STOP of a pool member, else NULL */
    alignas(16) unsigned char data[];
} amsg;

/* flags of an actor */
enum {
    F_CLOSED = 1u << 0, /* sends refused: stopping, stopped or dead */
    F_KILL = 1u << 1,   /* immediate stop asked: drop what is queued */
    F_DEAD = 1u << 2,   /* fini ran (or init failed): nothing more runs */
    F_COUNTED = 1u << 3, /* keeps count: bounded, pool member, or asked */
};

/* the low bit of an actor's `in`: mailbox empty, no activation */
#define MQ_IDLE ((uintptr_t)1)

typedef struct apool apool;

/* One actor (or, when pool is set, a pool's handle, whose mailbox is
 * unused). 128 bytes; its state follows at WEFT__ACTOR_HDR. An actor's
 * block is 64-byte aligned (weft__actor_new), so the producers' and
 * consumer's words (the first line) and the state (from offset 128, which
 * the receive writes) never share a cache line with the read-mostly ones
 * of the second line (flags, rt, cls): a sender's check of flags and read
 * of rt cost no transfer. With only the allocator's 16-byte alignment,
 * whichever of the 4 placements a run got decided whether the second line
 * also held `out` and the state's first words: many senders into one
 * mailbox then took about 0.15 s instead of 0.08 s on 2 workers, run by
 * run. A pool's handle keeps the plain allocation: nothing on it is
 * written per message. */
struct weft_actor {
    /* producers' words: one line moves per send */
    /* the newest message (an alink *, or the stub once drained), or'ed
     * with MQ_IDLE while the mailbox is empty and no activation is
     * scheduled: the send that finds the mark schedules one */
    _Atomic uintptr_t in;
    /* counted actors only (F_COUNTED: bounded mailboxes, pool members,
     * track_backlog): messages and stop requests sent, not yet handled */
    _Atomic int64_t count;
    /* consumer's words (the running activation only) */
    weft__job job;            /* its activation's queue entry */
    alink *out;               /* the oldest message not yet taken, or
                               * the stub */
    alink stub;
    /* references: handles, plus one while alive (not F_DEAD), plus one
     * per scheduled activation */
    _Atomic uint32_t refs;
    _Atomic uint32_t restarts;
    _Atomic uint32_t space_seq;     /* futex: bounded mailbox has room */
    _Atomic uint32_t space_waiters; /* outside threads sleeping on it */
    bool inited;              /* init succeeded, fini owed */
    int8_t node;
    uint16_t batch;
    int32_t max_restarts;
    void *arg;                /* init's, read-only */
    /* read-mostly, from offset 80 */
    _Atomic uint32_t flags;   /* F_* */
    int32_t capacity;         /* 0 = unbounded */
    const weft_actor_class *cls;
    weft_runtime *rt;
    apool *pool;              /* non-NULL: this is a pool's handle */
    struct weft_actor *prev, *next; /* the runtime's registry */
};

_Static_assert(offsetof(struct weft_actor, flags) >= 80,
               "flags must be off the producers' cache line");
_Static_assert(sizeof(struct weft_actor) == 128,
               "an idle actor's cost is measured against this size");

#define WEFT__ACTOR_HDR \
    ((sizeof(struct weft_actor) + 15) & ~(size_t)15)

struct apool {
    int n;
    weft_actor *member[];
};

/* actor.c, for pool.c */
WEFT__HIDDEN int weft__actor_new(weft_runtime *rt, const weft_actor_class *cls,
                                 void *arg, const weft_actor_opts *o,
                                 weft_actor **out);
WEFT__HIDDEN int weft__actor_register(weft_runtime *rt, weft_actor *a);
WEFT__HIDDEN void weft__actor_unref(weft_actor *a);
WEFT__HIDDEN int weft__actor_stop_one(weft_actor *a, int mode, ajoin *join,
                                      fut *done);
WEFT__HIDDEN int weft__actor_check_opts(const weft_actor_opts *o);
/* 0 when cls can make actors: receive set, state_size within bounds (an
 * actor's allocation is WEFT__ACTOR_HDR + state_size), else -EINVAL. */
WEFT__HIDDEN int weft__actor_check_class(const weft_actor_class *cls);
WEFT__HIDDEN void weft__actor_finish_join(ajoin *j);
/* Run fini of a, which was never shared (no handle given out, no message
 * sent), and free it: at once, with nothing to allocate. */
WEFT__HIDDEN void weft__actor_discard(weft_actor *a);

/* env.c: envelopes of bytes (header included). Blocks of up to
 * WEFT__ENV_SMALL bytes are recycled; bytes must be given back as
 * allocated. */
#define WEFT__ENV_SMALL 64
WEFT__HIDDEN void *weft__env_alloc(size_t bytes);
WEFT__HIDDEN void weft__env_free(void *env, size_t bytes);

/* pool.c, for actor.c */
/* The member a message to pool p goes to: the less loaded of two open
 * ones picked at random; NULL when every member is closed. */
WEFT__HIDDEN weft_actor *weft__pool_pick(weft_actor *p);
/* Whether any member of pool p is open (takes messages). */
WEFT__HIDDEN bool weft__pool_alive(const weft_actor *p);
WEFT__HIDDEN int weft__pool_stop(weft_actor *p, int mode, weft_future **done);
WEFT__HIDDEN void weft__pool_free(weft_actor *p);

#endif
