/* Actor pools: n actors of one class behind one handle. A message goes to
 * the less loaded of two members picked at random (the power of two
 * choices: nearly the balance of "the shortest mailbox" at the cost of two
 * reads instead of n), among those still open. The handle is a
 * weft_actor whose pool field names the members; its own mailbox is never
 * used. */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "act.h"

static WEFT__TLS _Thread_local uint64_t pick_rng;

static uint32_t pick_rand(void)
{
    uint64_t x = pick_rng;
    if (!x) /* seed per thread from its TLS address */
        x = (uint64_t)(uintptr_t)&pick_rng * 0x9E3779B97F4A7C15ull | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    pick_rng = x;
    return (uint32_t)(x >> 32);
}

/* Whether a takes messages. For a pick only a hint: deliver reads the
 * flags again and refuses a member closed since. acquire: as
 * weft_actor_alive() for one actor. */
static bool member_open(weft_actor *a)
{
    return !(weft__load_acquire(&a->flags) & F_CLOSED);
}

/* The first open member from a random start, or NULL when none is. */
static weft_actor *pick_open(apool *pl)
{
    uint32_t n = (uint32_t)pl->n, start = pick_rand() % n;
    for (uint32_t k = 0; k < n; k++) {
        weft_actor *a = pl->member[(start + k) % n];
        if (member_open(a))
            return a;
    }
    return NULL;
}

/* A member that died (past max_restarts) or was stopped on its own is
 * closed but keeps its empty mailbox, so a pick by count alone preferred
 * it and the pool refused about half of its sends: closed members are
 * passed over while any other is open. */
weft_actor *weft__pool_pick(weft_actor *p)
{
    apool *pl = p->pool;
    if (pl->n == 1)
        return pick_open(pl);
    uint32_t i = pick_rand() % (uint32_t)pl->n;
    uint32_t j = pick_rand() % (uint32_t)(pl->n - 1);
    j += j >= i; /* a different member */
    weft_actor *a = pl->member[i], *b = pl->member[j];
    bool oa = member_open(a), ob = member_open(b);
    if (oa && ob)
        return weft__load_relaxed(&b->count) < weft__load_relaxed(&a->count)
                   ? b
                   : a;
    if (oa || ob)
        return oa ? a : b;
    return pick_open(pl);
}

bool weft__pool_alive(const weft_actor *p)
{
    return pick_open(p->pool) != NULL;
}

/* The handle's reference count reached 0: give back the members'. */
void weft__pool_free(weft_actor *p)
{
    for (int i = 0; i < p->pool->n; i++)
        weft__actor_unref(p->pool->member[i]);
    weft__free(p->pool);
}

/* Stop every member; done (when not NULL) completes once all stopped. */
int weft__pool_stop(weft_actor *p, int mode, weft_future **done)
{
    apool *pl = p->pool;
    ajoin *j = NULL;
    weft_future *h = NULL;
    int rc = 0;
    if (done) {
        j = weft__malloc(sizeof *j);
        if (!j || (rc = weft__fut_external(p->rt, "stop", &j->f, &h))) {
            weft__free(j);
            return rc ? rc : -ENOMEM;
        }
        /* one extra for this loop, so no member completes it early */
        weft__store_relaxed(&j->left, pl->n + 1);
    }
    int stopped = 0, already = 0, err = 0;
    for (int i = 0; i < pl->n; i++) {
        int r = weft__actor_stop_one(pl->member[i], mode, j, NULL);
        if (r == 0)
            stopped++;
        else if (r == -EALREADY)
            already++;
        else if (r != WEFT_ACTOR_DEAD)
            err = r; /* out of memory: that member's share counts now */
        if (j && r == -ENOMEM)
            weft__actor_finish_join(j);
    }
    if (j)
        weft__actor_finish_join(j);
    rc = err ? err : stopped ? 0 : already ? -EALREADY : WEFT_ACTOR_DEAD;
    /* as for one actor: done gets nothing when the pool was dead, or
     * when the stop failed (the join still completes; nobody waits) */
    if (h && (rc == 0 || rc == -EALREADY))
        *done = h;
    else if (h)
        weft_future_release(h);
    return rc;
}

static int pool_fail(weft_actor *p, int made, int rc)
{
    for (int i = 0; i < made; i++)
        weft__actor_discard(p->pool->member[i]);
    weft__free(p->pool);
    weft__free(p);
    return rc;
}

static weft_actor *pool_handle(weft_runtime *rt, const weft_actor_class *cls,
                               int n)
{
    weft_actor *p = weft__malloc(WEFT__ACTOR_HDR);
    apool *pl = weft__calloc(1, sizeof *pl + (size_t)n * sizeof pl->member[0]);
    if (!p || !pl) {
        weft__free(p);
        weft__free(pl);
        return NULL;
    }
    memset(p, 0, WEFT__ACTOR_HDR);
    pl->n = n;
    p->pool = pl;
    p->rt = rt;
    p->cls = cls;
    weft__store_relaxed(&p->refs, 1);
    return p;
}

int weft_actor_pool_spawn(weft_runtime *rt, const weft_actor_class *cls,
                          void *arg, int n, const weft_actor_opts *opts,
                          weft_actor **out)
{
    if (out)
        *out = NULL;
    weft_actor_opts o = opts ? *opts : weft_actor_opts_default();
    if (!rt || !out || weft__actor_check_class(cls) || n < 1 ||
        n > 65536 || weft__actor_check_opts(&o))
        return -EINVAL;
    int rc = weft__enter(rt);
    if (rc)
        return rc;
    o.track_backlog = 1; /* members count their messages: picks compare */
    weft_actor *p = pool_handle(rt, cls, n);
    if (!p) {
        weft__leave(rt);
        return -ENOMEM;
    }
    int made = 0;
    for (; made < n; made++)
        if ((rc = weft__actor_new(rt, cls, arg, &o, &p->pool->member[made])))
            break;
    if (rc || (rc = weft__actor_register(rt, p)))
        rc = pool_fail(p, made, rc);
    else
        *out = p;
    weft__leave(rt);
    return rc;
}
