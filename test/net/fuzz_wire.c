/* Fuzz target of the wire decoders (lib/net/wire.c): a frame header, then
 * the node-message header of the handler it names, then a HELLO's name
 * list or an actor message's name, all from untrusted bytes. Nothing may
 * crash or read out of bounds (run it under ASan); the decoders' answers
 * must be consistent.
 *
 * With libFuzzer:
 *   clang -g -fsanitize=fuzzer,address,undefined -DWEFT_BUILDING \
 *     -D_GNU_SOURCE -Iinclude -Ilib/core -Ilib/net \
 *     test/net/fuzz_wire.c lib/net/wire.c -o fuzz_wire && ./fuzz_wire
 * Built by meson with -DWEFT_FUZZ_MAIN, it runs a fixed number of random
 * and mutated inputs as an ordinary test (net_fuzz_wire). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weft__frame f;
    int rc = weft__frame_decode(data, size, 1u << 20, &f);
    if (rc == 0) {
        if (size < WEFT__FRAME_LEN || f.hdrlen > WEFT_AM_MAX_HDR ||
            f.paylen > (1u << 20) || f.kind >= WEFT__FK_COUNT)
            abort(); /* accepted something out of its limits */
        size_t rest = size - WEFT__FRAME_LEN;
        size_t hl = f.hdrlen < rest ? f.hdrlen : rest;
        weft__msg m;
        if (!weft__msg_decode(f.handler, data + WEFT__FRAME_LEN, hl, &m)) {
            unsigned char again[WEFT_AM_MAX_HDR];
            size_t n = weft__msg_encode(again, &m);
            if (n != hl || memcmp(again, data + WEFT__FRAME_LEN, n)) {
                /* a decoded header must encode back to the same bytes,
                 * except for fields the decoder normalises (none) */
                if (n != hl)
                    abort();
            }
            if (m.handler == WEFT__H_HELLO)
                (void)weft__names_check(data + WEFT__FRAME_LEN + hl,
                                        rest - hl, m.nfns);
            if (m.handler == WEFT__H_ACT_MSG &&
                !weft__act_check(data + WEFT__FRAME_LEN + hl, rest - hl,
                                 m.namelen) &&
                (m.namelen > rest - hl || m.namelen > WEFT__ACT_NAME_MAX))
                abort(); /* a name that runs past the payload passed */
        }
    }
    /* every handler on the raw bytes too */
    for (unsigned h = 0; h < WEFT__H_COUNT + 2; h++) {
        weft__msg m;
        (void)weft__msg_decode(h, data, size < 64 ? size : 64, &m);
    }
    (void)weft__names_check(data, size, size ? data[0] : 0);
    (void)weft__act_check(data, size, size ? data[0] : 0);
    return 0;
}

#ifdef WEFT_FUZZ_MAIN
static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    const char *scale = getenv("WEFT_TEST_SCALE");
    if (scale && atoi(scale) > 1)
        iters /= atoi(scale);
    uint8_t buf[WEFT__FRAME_LEN + WEFT_AM_MAX_HDR + 64];
    for (long i = 0; i < iters; i++) {
        size_t len = next() % sizeof buf;
        if (i % 2) { /* a valid frame, then mutated: reaches deeper */
            weft__frame f = {WEFT__FK_AM, (unsigned)(next() % (WEFT__H_COUNT + 1)), 1,
                             (uint32_t)(next() % 40), next() % 4096};
            weft__frame_encode(buf, &f);
            for (size_t k = WEFT__FRAME_LEN; k < sizeof buf; k++)
                buf[k] = (uint8_t)next();
            if (i % 4 == 1)
                buf[next() % sizeof buf] ^= (uint8_t)(1u << (next() % 8));
            len = WEFT__FRAME_LEN + (next() % (sizeof buf -
                                               WEFT__FRAME_LEN));
        } else {
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)next();
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("%ld inputs decoded without a fault\n", iters);
    return 0;
}
#endif
