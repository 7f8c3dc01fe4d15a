/* The wire format (lib/net/wire.c): frames round-trip; every prefix of a
 * frame is "need more"; a flipped bit, another version, an oversized
 * length, an unknown kind are refused; each node message decodes only at
 * its exact length; HELLO name lists are checked. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"

static void test_frame_roundtrip(void **state)
{
    (void)state;
    unsigned char b[WEFT__FRAME_LEN];
    weft__frame f = {WEFT__FK_AM, 7, 3, 16, 123456789}, g;
    weft__frame_encode(b, &f);
    assert_int_equal(weft__frame_decode(b, sizeof b, 1ull << 30, &g), 0);
    assert_int_equal(g.kind, f.kind);
    assert_int_equal(g.handler, 7);
    assert_int_equal(g.src, 3);
    assert_int_equal(g.hdrlen, 16);
    assert_true(g.paylen == 123456789);
    for (size_t n = 0; n < sizeof b; n++)
        assert_int_equal(weft__frame_decode(b, n, 1ull << 30, &g), -EAGAIN);
}

static void test_frame_refused(void **state)
{
    (void)state;
    unsigned char b[WEFT__FRAME_LEN], c[WEFT__FRAME_LEN];
    weft__frame f = {WEFT__FK_AM, 7, 3, 16, 1000}, g;
    weft__frame_encode(b, &f);
    for (int bit = 0; bit < 8 * WEFT__FRAME_LEN; bit++) {
        memcpy(c, b, sizeof c);
        c[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        int rc = weft__frame_decode(c, sizeof c, 1ull << 30, &g);
        /* the version byte is read before the check: another version */
        assert_int_equal(rc, bit / 8 == 4 ? -EPROTONOSUPPORT : -EPROTO);
    }
    memcpy(c, b, sizeof c); /* another version, properly checked */
    c[4] = WEFT__WIRE_VERSION - 1; /* version 3: no refused tasks */
    weft__put32(c + 28, weft__frame_check(c));
    assert_int_equal(weft__frame_decode(c, sizeof c, 1ull << 30, &g),
                     -EPROTONOSUPPORT);
    c[4] = 2; /* version 2: another check */
    weft__put32(c + 28, weft__frame_check(c));
    assert_int_equal(weft__frame_decode(c, sizeof c, 1ull << 30, &g),
                     -EPROTONOSUPPORT);
    /* a version-2 peer's frame, hashed its way (FNV-1a): refused as
     * another version, not as garbage */
    uint32_t h = 2166136261u;
    for (int i = 0; i < WEFT__FRAME_LEN - 4; i++)
        h = (h ^ c[i]) * 16777619u;
    weft__put32(c + 28, h);
    assert_int_equal(weft__frame_decode(c, sizeof c, 1ull << 30, &g),
                     -EPROTONOSUPPORT);
    assert_int_equal(weft__frame_decode(b, sizeof b, 999, &g), -EMSGSIZE);
    f.hdrlen = WEFT_AM_MAX_HDR + 1;
    weft__frame_encode(b, &f);
    assert_int_equal(weft__frame_decode(b, sizeof b, 1ull << 30, &g),
                     -EMSGSIZE);
    f = (weft__frame){WEFT__FK_COUNT, 0, 0, 0, 0};
    weft__frame_encode(b, &f);
    assert_int_equal(weft__frame_decode(b, sizeof b, 1ull << 30, &g),
                     -EPROTO);
    f = (weft__frame){WEFT__FK_BEAT, 0, 0, 0, 5}; /* beats carry nothing */
    weft__frame_encode(b, &f);
    assert_int_equal(weft__frame_decode(b, sizeof b, 1ull << 30, &g),
                     -EPROTO);
    assert_int_equal(weft__frame_decode("GET / HTTP", 10, 1 << 30, &g),
                     -EPROTO);
}

static void test_messages(void **state)
{
    (void)state;
    unsigned char b[WEFT_AM_MAX_HDR];
    weft__msg m = {.handler = WEFT__H_TASK, .id = 99, .fn = 4,
                   .flags = WEFT_REMOTE_IDEMPOTENT}, d;
    size_t n = weft__msg_encode(b, &m);
    assert_int_equal(n, 16);
    assert_int_equal(weft__msg_decode(WEFT__H_TASK, b, n, &d), 0);
    assert_true(d.id == 99 && d.fn == 4 && d.flags == m.flags);
    assert_int_equal(weft__msg_decode(WEFT__H_TASK, b, n - 1, &d), -EPROTO);
    assert_int_equal(weft__msg_decode(WEFT__H_TASK, b, n + 1, &d), -EPROTO);
    m.flags = 0x4000;
    weft__msg_encode(b, &m);
    assert_int_equal(weft__msg_decode(WEFT__H_TASK, b, n, &d), -EPROTO);
    assert_int_equal(weft__msg_decode(0, b, 0, &d), -EPROTO);
    assert_int_equal(weft__msg_decode(WEFT__H_COUNT, b, 0, &d), -EPROTO);
    m = (weft__msg){.handler = WEFT__H_REPLY, .id = 5, .status = -3,
                    .hasres = 1};
    n = weft__msg_encode(b, &m);
    assert_int_equal(weft__msg_decode(WEFT__H_REPLY, b, n, &d), 0);
    assert_int_equal(d.status, -3);
    m.hasres = WEFT__REPLY_REFUSED; /* a task's reply only (actor: below) */
    weft__msg_encode(b, &m);
    assert_int_equal(weft__msg_decode(WEFT__H_REPLY, b, n, &d), 0);
    assert_int_equal(d.hasres, WEFT__REPLY_REFUSED);
    m.hasres = 3;
    weft__msg_encode(b, &m);
    assert_int_equal(weft__msg_decode(WEFT__H_REPLY, b, n, &d), -EPROTO);
    m = (weft__msg){.handler = WEFT__H_OBJ_DATA, .id = 5, .status = 4};
    n = weft__msg_encode(b, &m);
    assert_int_equal(weft__msg_decode(WEFT__H_OBJ_DATA, b, n, &d), -EPROTO);
    assert_int_equal(weft__msg_decode(WEFT__H_STEAL, b, 0, &d), 0);
    assert_int_equal(weft__msg_decode(WEFT__H_STEAL, b, 1, &d), -EPROTO);
}

/* Actor messages: the name length and the flags are checked by the
 * decoder, the name itself (inside the payload) by weft__act_check. */
static void test_actor_messages(void **state)
{
    (void)state;
    unsigned char b[WEFT_AM_MAX_HDR];
    weft__msg m = {.handler = WEFT__H_ACT_MSG, .id = 77, .namelen = 5,
                   .flags = WEFT__ACT_ASK}, d;
    size_t n = weft__msg_encode(b, &m);
    assert_int_equal(n, 16);
    assert_int_equal(weft__msg_decode(WEFT__H_ACT_MSG, b, n, &d), 0);
    assert_true(d.id == 77 && d.namelen == 5 && d.flags == WEFT__ACT_ASK);
    assert_int_equal(weft__msg_decode(WEFT__H_ACT_MSG, b, n - 1, &d),
                     -EPROTO);
    m.flags = 2; /* no such flag */
    weft__msg_encode(b, &m);
    assert_int_equal(weft__msg_decode(WEFT__H_ACT_MSG, b, n, &d), -EPROTO);
    m.flags = 0;
    m.namelen = 0; /* an empty name */
    weft__msg_encode(b, &m);
    assert_int_equal(weft__msg_decode(WEFT__H_ACT_MSG, b, n, &d), -EPROTO);
    m.namelen = WEFT__ACT_NAME_MAX + 1;
    weft__msg_encode(b, &m);
    assert_int_equal(weft__msg_decode(WEFT__H_ACT_MSG, b, n, &d), -EPROTO);
    m = (weft__msg){.handler = WEFT__H_ACT_REPLY, .id = 8, .status = 9,
                    .hasres = 1};
    n = weft__msg_encode(b, &m);
    assert_int_equal(weft__msg_decode(WEFT__H_ACT_REPLY, b, n, &d), 0);
    assert_true(d.id == 8 && d.status == 9 && d.hasres == 1);
    m.hasres = 2;
    weft__msg_encode(b, &m);
    assert_int_equal(weft__msg_decode(WEFT__H_ACT_REPLY, b, n, &d),
                     -EPROTO);
    assert_int_equal(weft__act_check("echo-data", 9, 4), 0);
    assert_int_equal(weft__act_check("echo", 4, 4), 0);  /* no message */
    assert_int_equal(weft__act_check("ech", 3, 4), -EPROTO); /* short */
    assert_int_equal(weft__act_check("e\0ho", 4, 4), -EPROTO);
    assert_int_equal(weft__act_check(NULL, 0, 0), -EPROTO);
    assert_int_equal(weft__act_check("x", 1, WEFT__ACT_NAME_MAX + 1),
                     -EPROTO);
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(weft__names_check("a\0bc\0", 5, 2), 0);
    assert_int_equal(weft__names_check("a\0bc\0", 5, 1), -EPROTO);
    assert_int_equal(weft__names_check("a\0bc\0", 5, 3), -EPROTO);
    assert_int_equal(weft__names_check("a\0bc", 4, 2), -EPROTO);
    assert_int_equal(weft__names_check("\0", 1, 1), -EPROTO);
    assert_int_equal(weft__names_check(NULL, 0, 0), 0);
    char big[300];
    memset(big, 'x', sizeof big);
    big[299] = 0;
    assert_int_equal(weft__names_check(big, sizeof big, 1), -EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_roundtrip),
        cmocka_unit_test(test_frame_refused),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_actor_messages),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
