/* Internals of lib/net shared by its files. Nothing outside lib/net
 * includes this (tests may). */
#ifndef WEFT_NET_INTERNAL_H
#define WEFT_NET_INTERNAL_H

#include <stdint.h>

#include "internal.h"
#include "wire.h"

/* The remote-function table a node works with: a sorted snapshot of the
 * process-wide registrations (registry.c). */
typedef struct weft__fntab {
    uint32_t n;
    weft_remote_fn *fns;
    char *names; /* n NUL-terminated names, sorted */
    size_t names_len;
    uint64_t hash;
} weft__fntab;

WEFT__HIDDEN int weft__fntab_get(weft__fntab *t);
WEFT__HIDDEN void weft__fntab_put(weft__fntab *t);
WEFT__HIDDEN int weft__fntab_find(const weft__fntab *t, const char *name);
WEFT__HIDDEN void weft__bytes_dtor(void *b);

/* Built-in backends. */
WEFT__HIDDEN extern const weft_transport_ops weft__loop_ops;
WEFT__HIDDEN extern const weft_transport_ops weft__tcp_ops;
#ifdef WEFT_HAVE_MPI
WEFT__HIDDEN extern const weft_transport_ops weft__mpi_ops;
#endif

/* loop.c, for tests: cut rank off its group as if its machine died. Its
 * peers get peer_failed; it gets peer_failed for every peer; messages to
 * and from it are refused. 0 or -ENOENT. */
WEFT__HIDDEN int weft__loop_kill(const char *group, int rank);

/* Log a dropped message once per call: who, why. */
#define WEFT__NET_LOG(...) weft__log(__VA_ARGS__)

#endif
