/* The wire format of lib/net: what every byte from a peer must look like
 * before anything trusts it. Two levels:
 *
 *  - the frame (tcp and mpi): a fixed 32-byte header, little-endian,
 *      magic u32 'WEFT' | version u8 | kind u8 | handler u16 |
 *      src u32 | hdrlen u32 | paylen u64 | check u32
 *    then hdrlen header bytes, then paylen payload bytes. check is a hash
 *    of the 28 bytes before it, so random bytes fail fast. Version 4
 *    (version 1 had no actor messages, version 2 a slower check, version
 *    3 no refused tasks (WEFT__REPLY_REFUSED); a peer of another version
 *    is refused at its first frame, with -EPROTONOSUPPORT, rather than
 *    misread message by message).
 *  - the node's messages (the header of an active message), one fixed
 *    layout per handler, decoded by weft__msg_decode.
 *
 * Decoders never read past the length they are given and return -EPROTO
 * (malformed), -EMSGSIZE (a length over its limit) or -EPROTONOSUPPORT
 * (another version). Nothing here allocates. */
#ifndef WEFT_NET_WIRE_H
#define WEFT_NET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

#define WEFT__WIRE_MAGIC 0x54464557u /* "WEFT" little-endian */
#define WEFT__WIRE_VERSION 4
#define WEFT__FRAME_LEN 32

enum weft__frame_kind {
    WEFT__FK_AM = 0,      /* an active message */
    WEFT__FK_HELLO = 1,   /* tcp: who is at the other end (src), first */
    WEFT__FK_BEAT = 2,    /* tcp: heartbeat */
    WEFT__FK_BYE = 3,     /* tcp: orderly close */
    WEFT__FK_COUNT = 4,
};

typedef struct weft__frame {
    unsigned kind, handler;
    uint32_t src;
    uint32_t hdrlen;
    uint64_t paylen;
} weft__frame;

static inline void weft__put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static inline void weft__put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void weft__put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint16_t weft__get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t weft__get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static inline uint64_t weft__get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Write f as a frame header into out[WEFT__FRAME_LEN]. */
WEFT__HIDDEN void weft__frame_encode(unsigned char *out, const weft__frame *f);

/* The check field of the frame header at p: a hash of its first 28
 * bytes. */
WEFT__HIDDEN uint32_t weft__frame_check(const unsigned char *p);

/* Decode a frame header from buf[0..len): 0, -EAGAIN (len too short to
 * tell), -EPROTO, -EPROTONOSUPPORT, or -EMSGSIZE (hdrlen over
 * WEFT_AM_MAX_HDR, or paylen over max_payload). */
WEFT__HIDDEN int weft__frame_decode(const void *buf, size_t len,
                                    uint64_t max_payload, weft__frame *f);

/* ---- the node's messages (active-message handlers) ---- */

enum weft__handler {
    WEFT__H_HELLO = 1,      /* size u32, nfns u32, hash u64; payload names */
    WEFT__H_TASK = 2,       /* id u64, fn u32, flags u32; payload arg */
    WEFT__H_REPLY = 3,      /* id u64, status i32, hasres u32; payload */
    WEFT__H_STEAL = 4,      /* (empty) */
    WEFT__H_NOWORK = 5,     /* (empty) */
    WEFT__H_OBJ_ANN = 6,    /* id[20] */
    WEFT__H_OBJ_GET = 7,    /* req u64, id[20] */
    WEFT__H_OBJ_DATA = 8,   /* req u64, status i32 ; payload bytes */
    WEFT__H_BARRIER = 9,    /* epoch u64 */
    WEFT__H_BARRIER_GO = 10, /* epoch u64 */
    /* id u64 (0 for a send), namelen u32, flags u32; payload the actor's
     * name (namelen bytes, no NUL), then the message */
    WEFT__H_ACT_MSG = 11,
    WEFT__H_ACT_REPLY = 12, /* id u64, status i32, hasres u32; payload */
    WEFT__H_COUNT = 13,
};

/* REPLY's hasres: 0, no result; 1, a result (the payload); and, for a
 * task only, WEFT__REPLY_REFUSED: the task was not run, its node is
 * being destroyed (status says nothing then). ACT_REPLY's is 0 or 1. */
#define WEFT__REPLY_REFUSED 2u

/* ACT_MSG flags: the message is an ask (a reply is owed). */
#define WEFT__ACT_ASK (1u << 0)
/* Longest published actor name, bytes (WEFT_NET_NAME_MAX). */
#define WEFT__ACT_NAME_MAX 255u

/* TASK flags on the wire: the public ones, and "sent to a thief". */
#define WEFT__TASK_STOLEN (1u << 8)
#define WEFT__TASK_FLAGS                                                 \
    (WEFT_REMOTE_IDEMPOTENT | WEFT_REMOTE_CHEAP | WEFT__TASK_STOLEN)

typedef struct weft__msg {
    unsigned handler;
    uint32_t size, nfns, fn, flags, hasres, namelen;
    int32_t status;
    uint64_t hash, id, epoch;
    uint8_t obj[WEFT_OBJECT_ID_LEN];
} weft__msg;

/* Encode m (m->handler says which fields count) into out (room for
 * WEFT_AM_MAX_HDR bytes); returns the length. */
WEFT__HIDDEN size_t weft__msg_encode(unsigned char *out, const weft__msg *m);

/* Decode the header of handler from hdr[0..len): 0 or -EPROTO (unknown
 * handler, wrong length, bad field). */
WEFT__HIDDEN int weft__msg_decode(unsigned handler, const void *hdr,
                                  size_t len, weft__msg *m);

/* Check the payload of an ACT_MSG: at least namelen bytes, the first
 * namelen (1..WEFT__ACT_NAME_MAX, checked by the decoder) free of NUL.
 * 0 or -EPROTO. */
WEFT__HIDDEN int weft__act_check(const void *buf, size_t len,
                                 uint32_t namelen);

/* Check the payload of a HELLO: exactly nfns NUL-terminated names, each
 * 1..255 bytes, nothing after. 0 or -EPROTO. */
WEFT__HIDDEN int weft__names_check(const void *buf, size_t len,
                                   uint32_t nfns);

#endif
