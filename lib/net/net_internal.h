/* Internals of lib/net shared by its files. Nothing outside lib/net
 * includes this (tests may). */
#ifndef WEFT_NET_INTERNAL_H
#define WEFT_NET_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
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
/* Free the big blocks weft_bytes_free kept for reuse: those kept longer
 * than a second, or all. Any thread. */
WEFT__HIDDEN void weft__bytes_trim(bool all);

/* Built-in backends. */
WEFT__HIDDEN extern const weft_transport_ops weft__loop_ops;
WEFT__HIDDEN extern const weft_transport_ops weft__tcp_ops;
#ifdef WEFT_HAVE_MPI
WEFT__HIDDEN extern const weft_transport_ops weft__mpi_ops;
#endif

/* Most payload buffers in one send (weft_transport_ops.send). */
#define WEFT__AM_MAX_IOV 8

/* The checks of a send's arguments every backend makes (the contract of
 * weft_transport_ops.send): 0, or -EINVAL. */
static inline int weft__send_check(int rank, int size, int dst,
                                   unsigned handler, size_t hdrlen,
                                   int iovcnt)
{
    if (dst < 0 || dst >= size || dst == rank ||
        handler > WEFT_AM_MAX_HANDLER || hdrlen > WEFT_AM_MAX_HDR ||
        iovcnt < 0 || iovcnt > WEFT__AM_MAX_IOV)
        return -EINVAL;
    return 0;
}

/* The checks of a put's or get's arguments every backend makes (the
 * contract of weft_transport_ops.put): 0, or -EINVAL. 2 GiB and more are
 * refused everywhere: MPI counts are ints. */
static inline int weft__rma_check(int rank, int size, int dst,
                                  const void *buf, size_t len)
{
    if (dst < 0 || dst >= size || dst == rank || !buf || !len ||
        len > (size_t)INT32_MAX)
        return -EINVAL;
    return 0;
}

/* loop.c, for tests: cut rank off its group as if its machine died. Its
 * peers get peer_failed; it gets peer_failed for every peer; messages to
 * and from it are refused. 0 or -ENOENT. */
WEFT__HIDDEN int weft__loop_kill(const char *group, int rank);

/* Round-trip tracing, for finding where a remote round trip's time goes
 * (bench/net/trace_rt.py): built only with -DWEFT_NET_TRACE, when each
 * WEFT__NET_EV(step) stamps CLOCK_MONOTONIC (shared by the processes of
 * a machine) into a per-process array that is written at exit to
 * $WEFT_NET_TRACE_DIR (default /tmp) as weft-trace.PID. Steps: */
enum weft__net_step {
    WEFT__EV_SUBMIT = 1,   /* weft_submit_remote entered */
    WEFT__EV_QUEUED = 2,   /* a message built for the transport */
    WEFT__EV_ISEND = 3,    /* mpi: MPI_Isend returned */
    WEFT__EV_RECV = 4,     /* mpi: a message received */
    WEFT__EV_DELIVERED = 5, /* mpi: its callback returned */
    WEFT__EV_FN_START = 7, /* a remote function starts */
    WEFT__EV_FN_END = 8,   /* and ends */
    WEFT__EV_REPLY = 9,    /* a reply completed its future */
};
#ifdef WEFT_NET_TRACE
WEFT__HIDDEN void weft__net_ev(int step);
#define WEFT__NET_EV(step) weft__net_ev(step)
#else
#define WEFT__NET_EV(step) ((void)0)
#endif

/* Log a dropped message once per call: who, why. */
#define WEFT__NET_LOG(...) weft__log(__VA_ARGS__)

#endif
