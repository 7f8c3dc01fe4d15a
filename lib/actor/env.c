/* Envelopes: the blocks messages travel in.
 *
 * Envelopes of small messages (the common case) have one size, and each
 * thread keeps up to ENV_CACHE of them that it freed, for its next sends:
 * a receiver that also sends (most actors) then recycles envelopes
 * without the allocator's cross-thread free, which costs an atomic
 * operation on the allocating thread's page.
 *
 * Measured and not kept: magazines of 256 traded whole between threads
 * through a process-wide depot (Bonwick's), so that a sink that never
 * sends hands its envelopes back to its senders. Many senders into one
 * mailbox became 1.29x slower on 2 workers in the steady state (the
 * second run of a process): the senders then write envelopes last
 * touched by the sink, where mimalloc's fresh blocks were theirs.
 *
 * AddressSanitizer builds (no mimalloc) skip the cache, so that every
 * envelope is checked by the sanitizer's allocator; ThreadSanitizer
 * builds keep it, so that its races would be seen. */
#include <pthread.h>

#include "alloc.h"
#include "act.h"

#if defined(WEFT_HAVE_MIMALLOC) || defined(__SANITIZE_THREAD__)

#define ENV_CACHE 1024

typedef struct env_cache {
    alink *head;
    int n;
    bool armed; /* the thread-exit drain is registered */
} env_cache;

static WEFT__TLS _Thread_local env_cache envs;
static pthread_key_t env_key;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

/* At thread exit: give the cached envelopes back. */
static void env_drain(void *unused)
{
    (void)unused;
    for (alink *l = envs.head, *next; l; l = next) {
        next = weft__load_relaxed(&l->next);
        weft__free(l);
    }
    envs.head = NULL;
    envs.n = 0;
    envs.armed = false;
}

static void env_key_make(void)
{
    if (pthread_key_create(&env_key, env_drain))
        env_key = (pthread_key_t)-1; /* no destructor: cache nothing */
}

/* First use on this thread: register the drain. False: do not cache. */
static bool arm(void)
{
    if (envs.armed)
        return true;
    pthread_once(&env_once, env_key_make);
    if (env_key == (pthread_key_t)-1 || pthread_setspecific(env_key, &envs))
        return false;
    envs.armed = true;
    return true;
}

void *weft__env_alloc(size_t bytes)
{
    alink *l = envs.head;
    if (bytes > WEFT__ENV_SMALL || !l)
        return weft__malloc(bytes <= WEFT__ENV_SMALL ? WEFT__ENV_SMALL
                                                     : bytes);
    envs.head = weft__load_relaxed(&l->next);
    envs.n--;
    return l;
}

void weft__env_free(void *env, size_t bytes)
{
    if (bytes > WEFT__ENV_SMALL || envs.n >= ENV_CACHE || !arm()) {
        weft__free(env);
        return;
    }
    alink *l = env;
    weft__store_relaxed(&l->next, envs.head);
    envs.head = l;
    envs.n++;
}

#else /* ASan builds: every envelope through the checked allocator */

void *weft__env_alloc(size_t bytes)
{
    return weft__malloc(bytes <= WEFT__ENV_SMALL ? WEFT__ENV_SMALL : bytes);
}

void weft__env_free(void *env, size_t bytes)
{
    (void)bytes;
    weft__free(env);
}

#endif
