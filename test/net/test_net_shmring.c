/* The shared-memory ring of lib/net/shmring.h (the mpi backend's channel
 * between ranks on one machine): records of every size arrive whole and
 * in order across many laps while a writer and a reader thread race
 * (ThreadSanitizer checks the orderings); a full ring refuses and then
 * takes records again once the reader frees room; payload bytes that
 * hold exactly the position the reader expects next are never taken for
 * a record; malformed headers read as -EPROTO, never out of bounds. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shmring.h"

#define CAP (64u << 10)
#define RECORDS_FULL 400000u

static uint32_t records(void) /* fewer under a sanitizer */
{
    const char *s = getenv("WEFT_TEST_SCALE");
    int k = s ? atoi(s) : 1;
    return RECORDS_FULL / (uint32_t)(k > 1 ? 2 * k : 1);
}

static weft__ring *ring_new(size_t cap)
{
    weft__ring *r = aligned_alloc(64, weft__ring_size(cap));
    assert_non_null(r);
    weft__ring_init(r, cap);
    return r;
}

/* A new ring and both its ends, in one thread. */
static weft__ring *ring_pair(weft__ring_tx *tx, weft__ring_rx *rx)
{
    weft__ring *r = ring_new(CAP);
    weft__ring_tx_init(tx, r, CAP);
    weft__ring_rx_init(rx, r, CAP);
    return r;
}

/* Record i: a length from i, bytes that say i. */
static size_t len_of(uint32_t i)
{
    return (i * 2654435761u) % 3000u + (i % 7 == 0 ? 9000u : 0);
}

static void fill(unsigned char *d, uint32_t i, size_t len)
{
    for (size_t k = 0; k < len; k++)
        d[k] = (unsigned char)(i + k);
}

static void *writer(void *arg)
{
    weft__ring_tx tx;
    weft__ring_tx_init(&tx, arg, CAP);
    for (uint32_t i = 0, n = records(); i < n; i++) {
        size_t len = len_of(i);
        unsigned char *d;
        while (!(d = weft__ring_reserve(&tx, len)))
            sched_yield();
        fill(d, i, len);
        weft__ring_commit(&tx, memory_order_release);
    }
    return NULL;
}

static void test_laps_in_order(void **state)
{
    (void)state;
    weft__ring *r = ring_new(CAP);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer, r), 0);
    weft__ring_rx rx;
    weft__ring_rx_init(&rx, r, CAP);
    unsigned char want[12000];
    for (uint32_t i = 0, n = records(); i < n;) {
        const unsigned char *rec = NULL;
        size_t len = 0;
        int rc = weft__ring_peek(&rx, &rec, &len);
        assert_true(rc >= 0);
        if (!rc) {
            sched_yield();
            continue;
        }
        assert_int_equal(len, len_of(i));
        fill(want, i, len);
        assert_memory_equal(rec, want, len);
        weft__ring_release(&rx);
        i++;
    }
    const unsigned char *rec = NULL;
    size_t len = 0;
    assert_int_equal(weft__ring_peek(&rx, &rec, &len), 0);
    pthread_join(th, NULL);
    free(r);
}

static void test_full_then_room(void **state)
{
    (void)state;
    weft__ring_tx tx;
    weft__ring_rx rx;
    weft__ring *r = ring_pair(&tx, &rx);
    assert_null(weft__ring_reserve(&tx, CAP / 2)); /* over half: never */
    int n = 0;
    unsigned char *d;
    while ((d = weft__ring_reserve(&tx, 1000))) {
        memset(d, n, 1000);
        weft__ring_commit(&tx, memory_order_release);
        n++;
    }
    assert_true(n >= 60 && n <= 64); /* 64 KiB of 1 KiB records */
    const unsigned char *rec = NULL;
    size_t len = 0;
    for (int i = 0; i < 2; i++) { /* two: the next one wraps */
        assert_int_equal(weft__ring_peek(&rx, &rec, &len), 1);
        assert_int_equal(rec[0], i);
        weft__ring_release(&rx);
    }
    assert_non_null(d = weft__ring_reserve(&tx, 1000)); /* room again */
    memset(d, n, 1000);
    weft__ring_commit(&tx, memory_order_release);
    for (int i = 2; i <= n; i++) {
        assert_int_equal(weft__ring_peek(&rx, &rec, &len), 1);
        assert_int_equal(len, 1000);
        assert_int_equal(rec[999], (unsigned char)i);
        weft__ring_release(&rx);
    }
    assert_int_equal(weft__ring_peek(&rx, &rec, &len), 0);
    free(r);
}

/* The reader takes exactly one record: there is one, then none. */
static void take_only_one(weft__ring_rx *rx)
{
    const unsigned char *rec = NULL;
    size_t len = 0;
    assert_int_equal(weft__ring_peek(rx, &rec, &len), 1);
    weft__ring_release(rx);
    assert_int_equal(weft__ring_peek(rx, &rec, &len), 0);
}

/* Payloads made of the very numbers the reader will expect as positions
 * (every 8 bytes, each the position of the header that follows a record
 * at that place): after the reader has taken them all, a lap later, it
 * must find nothing where those bytes still lie. */
static void test_stale_bytes_not_records(void **state)
{
    (void)state;
    weft__ring_tx tx;
    weft__ring_rx rx;
    weft__ring *r = ring_pair(&tx, &rx);
    for (int lap = 0; lap < 5; lap++) {
        unsigned char *d = weft__ring_reserve(&tx, 4000);
        assert_non_null(d);
        uint64_t base = tx.tail; /* this record's position */
        for (size_t k = 0; k + 8 <= 4000; k += 8) {
            /* the position the header at d + k would carry, this lap and
             * next */
            uint64_t p = base + WEFT__RING_HDR + k + CAP;
            memcpy(d + k, &p, 8);
        }
        weft__ring_commit(&tx, memory_order_release);
        take_only_one(&rx);
        /* records of 1000 bytes up to the same place a lap later */
        while (tx.tail < base + CAP) {
            size_t l = base + CAP - tx.tail >= 1016 + 16 ? 1000 : 16;
            d = weft__ring_reserve(&tx, l);
            assert_non_null(d);
            memset(d, 0, l);
            weft__ring_commit(&tx, memory_order_release);
            take_only_one(&rx);
        }
    }
    free(r);
}

static void test_malformed(void **state)
{
    (void)state;
    weft__ring *r = ring_new(CAP);
    weft__ring_rx rx;
    const unsigned char *rec = NULL;
    size_t len = 0;
    uint64_t zero = 0;
    uint32_t big = CAP, kind = WEFT__RING_REC, odd = 77;
    memcpy(r->data, &zero, 8); /* a header at 0 that is expected */
    memcpy(r->data + 8, &big, 4); /* longer than the ring */
    memcpy(r->data + 12, &kind, 4);
    weft__ring_rx_init(&rx, r, CAP);
    assert_int_equal(weft__ring_peek(&rx, &rec, &len), -EPROTO);
    memcpy(r->data + 12, &odd, 4); /* an unknown kind */
    assert_int_equal(weft__ring_peek(&rx, &rec, &len), -EPROTO);
    kind = WEFT__RING_WRAP; /* a wrap at offset 0 */
    memcpy(r->data + 12, &kind, 4);
    assert_int_equal(weft__ring_peek(&rx, &rec, &len), -EPROTO);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_laps_in_order),
        cmocka_unit_test(test_full_then_room),
        cmocka_unit_test(test_stale_bytes_not_records),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
