/* The wire format (wire.h): encoders and the decoders that stand between
 * the network and everything else. */
#include <errno.h>

#include "wire.h"

/* A hash of the 28 header bytes before the check field, a word at a
 * time: each step is a bijection of the 64-bit state, so a change to any
 * one word changes the state before the final fold to 32 bits. Version
 * 2's byte-wise FNV-1a was a chain of 28 dependent multiplies, some 40 ns
 * on each side of every message (a tenth of a same-machine round trip). */
uint32_t weft__frame_check(const unsigned char *p)
{
    uint64_t h = weft__get64(p) * 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 29)) + weft__get64(p + 8) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 31)) + weft__get64(p + 16) * 0x94d049bb133111ebull;
    h = (h ^ (h >> 27)) + weft__get32(p + 24) * 0xd6e8feb86659fd93ull;
    h = (h ^ (h >> 32)) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h ^ (h >> 32));
}

void weft__frame_encode(unsigned char *out, const weft__frame *f)
{
    weft__put32(out, WEFT__WIRE_MAGIC);
    out[4] = WEFT__WIRE_VERSION;
    out[5] = (unsigned char)f->kind;
    weft__put16(out + 6, (uint16_t)f->handler);
    weft__put32(out + 8, f->src);
    weft__put32(out + 12, f->hdrlen);
    weft__put64(out + 16, f->paylen);
    weft__put32(out + 24, 0);
    weft__put32(out + 28, weft__frame_check(out));
}

int weft__frame_decode(const void *buf, size_t len, uint64_t max_payload,
                       weft__frame *f)
{
    const unsigned char *p = buf;
    if (len < 4)
        return -EAGAIN;
    if (weft__get32(p) != WEFT__WIRE_MAGIC)
        return -EPROTO;
    if (len < WEFT__FRAME_LEN)
        return -EAGAIN;
    /* the version first: a peer of another version may hash otherwise,
     * and is told so rather than called malformed */
    if (p[4] != WEFT__WIRE_VERSION)
        return -EPROTONOSUPPORT;
    if (weft__get32(p + 28) != weft__frame_check(p) || weft__get32(p + 24))
        return -EPROTO;
    f->kind = p[5];
    f->handler = weft__get16(p + 6);
    f->src = weft__get32(p + 8);
    f->hdrlen = weft__get32(p + 12);
    f->paylen = weft__get64(p + 16);
    if (f->kind >= WEFT__FK_COUNT || f->handler > WEFT_AM_MAX_HANDLER)
        return -EPROTO;
    if (f->hdrlen > WEFT_AM_MAX_HDR || f->paylen > max_payload)
        return -EMSGSIZE;
    if (f->kind != WEFT__FK_AM && (f->hdrlen || f->paylen))
        return -EPROTO;
    return 0;
}

/* The header length of each handler. */
static size_t msg_len(unsigned h)
{
    switch (h) {
    case WEFT__H_HELLO: return 16;
    case WEFT__H_TASK: return 16;
    case WEFT__H_REPLY:
    case WEFT__H_ACT_MSG:
    case WEFT__H_ACT_REPLY: return 16;
    case WEFT__H_STEAL:
    case WEFT__H_NOWORK: return 0;
    case WEFT__H_OBJ_ANN: return WEFT_OBJECT_ID_LEN;
    case WEFT__H_OBJ_GET: return 8 + WEFT_OBJECT_ID_LEN;
    case WEFT__H_OBJ_DATA: return 12;
    case WEFT__H_BARRIER:
    case WEFT__H_BARRIER_GO: return 8;
    default: return SIZE_MAX;
    }
}

size_t weft__msg_encode(unsigned char *out, const weft__msg *m)
{
    switch (m->handler) {
    case WEFT__H_HELLO:
        weft__put32(out, m->size);
        weft__put32(out + 4, m->nfns);
        weft__put64(out + 8, m->hash);
        break;
    case WEFT__H_TASK:
        weft__put64(out, m->id);
        weft__put32(out + 8, m->fn);
        weft__put32(out + 12, m->flags);
        break;
    case WEFT__H_REPLY:
    case WEFT__H_ACT_REPLY:
        weft__put64(out, m->id);
        weft__put32(out + 8, (uint32_t)m->status);
        weft__put32(out + 12, m->hasres);
        break;
    case WEFT__H_ACT_MSG:
        weft__put64(out, m->id);
        weft__put32(out + 8, m->namelen);
        weft__put32(out + 12, m->flags);
        break;
    case WEFT__H_OBJ_ANN:
        memcpy(out, m->obj, WEFT_OBJECT_ID_LEN);
        break;
    case WEFT__H_OBJ_GET:
        weft__put64(out, m->id);
        memcpy(out + 8, m->obj, WEFT_OBJECT_ID_LEN);
        break;
    case WEFT__H_OBJ_DATA:
        weft__put64(out, m->id);
        weft__put32(out + 8, (uint32_t)m->status);
        break;
    case WEFT__H_BARRIER:
    case WEFT__H_BARRIER_GO:
        weft__put64(out, m->epoch);
        break;
    default:
        break;
    }
    return msg_len(m->handler) == SIZE_MAX ? 0 : msg_len(m->handler);
}

int weft__msg_decode(unsigned handler, const void *hdr, size_t len,
                     weft__msg *m)
{
    const unsigned char *p = hdr;
    if (msg_len(handler) == SIZE_MAX || len != msg_len(handler))
        return -EPROTO;
    memset(m, 0, sizeof *m);
    m->handler = handler;
    switch (handler) {
    case WEFT__H_HELLO:
        m->size = weft__get32(p);
        m->nfns = weft__get32(p + 4);
        m->hash = weft__get64(p + 8);
        return m->nfns > (1u << 16) ? -EPROTO : 0;
    case WEFT__H_TASK:
        m->id = weft__get64(p);
        m->fn = weft__get32(p + 8);
        m->flags = weft__get32(p + 12);
        return m->flags & ~(uint32_t)WEFT__TASK_FLAGS ? -EPROTO : 0;
    case WEFT__H_REPLY:
    case WEFT__H_ACT_REPLY:
        m->id = weft__get64(p);
        m->status = (int32_t)weft__get32(p + 8);
        m->hasres = weft__get32(p + 12);
        if (handler == WEFT__H_REPLY && m->hasres == WEFT__REPLY_REFUSED)
            return 0;
        return m->hasres > 1 ? -EPROTO : 0;
    case WEFT__H_ACT_MSG:
        m->id = weft__get64(p);
        m->namelen = weft__get32(p + 8);
        m->flags = weft__get32(p + 12);
        if (!m->namelen || m->namelen > WEFT__ACT_NAME_MAX)
            return -EPROTO;
        return m->flags & ~(uint32_t)WEFT__ACT_ASK ? -EPROTO : 0;
    case WEFT__H_OBJ_ANN:
        memcpy(m->obj, p, WEFT_OBJECT_ID_LEN);
        return 0;
    case WEFT__H_OBJ_GET:
        m->id = weft__get64(p);
        memcpy(m->obj, p + 8, WEFT_OBJECT_ID_LEN);
        return 0;
    case WEFT__H_OBJ_DATA:
        m->id = weft__get64(p);
        m->status = (int32_t)weft__get32(p + 8);
        return m->status > 0 ? -EPROTO : 0;
    case WEFT__H_BARRIER:
    case WEFT__H_BARRIER_GO:
        m->epoch = weft__get64(p);
        return 0;
    default:
        return 0;
    }
}

int weft__act_check(const void *buf, size_t len, uint32_t namelen)
{
    if (!namelen || namelen > WEFT__ACT_NAME_MAX || len < namelen)
        return -EPROTO;
    return memchr(buf, 0, namelen) ? -EPROTO : 0;
}

int weft__names_check(const void *buf, size_t len, uint32_t nfns)
{
    if (!len) /* buf may be NULL then */
        return nfns ? -EPROTO : 0;
    const char *p = buf, *end = p + len;
    for (uint32_t i = 0; i < nfns; i++) {
        const char *z = p < end ? memchr(p, 0, (size_t)(end - p)) : NULL;
        if (!z || z == p || z - p > 255)
            return -EPROTO;
        p = z + 1;
    }
    return p == end ? 0 : -EPROTO;
}
