/* One handle shared by several threads: readers get, verify and release
 * objects on the lock-free path while a writer keeps creating objects in
 * a small store (so that unreferenced ones are evicted under the readers'
 * feet) and deleting others. Every successful get must see the object's
 * own bytes until its release: the Dekker handshake between a getter's
 * reference and an evictor's claim is what this exercises (and what
 * ThreadSanitizer checks). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "store_util.h"

#define IDS 64
#define READERS 3

typedef struct shared {
    weft_store *st;
    _Atomic int stop;
    _Atomic long gets, misses, bad;
} shared;

static void *reader(void *arg)
{
    shared *sh = arg;
    uint64_t s = (uint64_t)(uintptr_t)&s;
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        s = st_mix(s + 1);
        uint64_t i = s % IDS;
        weft_store_id id = st_id(i);
        weft_store_obj obj;
        int rc = weft_store_get(sh->st, &id, 0, &obj);
        if (rc == -ENOENT) {
            atomic_fetch_add(&sh->misses, 1);
            continue;
        }
        if (rc != 0 || obj.size != 4000 || !st_verify(i, obj.data, obj.size))
            atomic_fetch_add(&sh->bad, 1);
        if (rc == 0) {
            /* still ours after a while: nobody may have reused it */
            if (!st_verify(i, obj.data, obj.size))
                atomic_fetch_add(&sh->bad, 1);
            if (weft_store_release(sh->st, &obj) != 0)
                atomic_fetch_add(&sh->bad, 1);
        }
        atomic_fetch_add(&sh->gets, 1);
    }
    return NULL;
}

static void test_readers_and_evictions(void **state)
{
    (void)state;
    const char *name = st_name("threads");
    /* room for about 30 objects of 4000 bytes */
    weft_store_opts o = st_opts(128u << 10, 256);
    static shared sh;
    assert_int_equal(weft_store_open(name, &o, &sh.st), 0);
    pthread_t t[READERS];
    for (int k = 0; k < READERS; k++)
        assert_int_equal(pthread_create(&t[k], NULL, reader, &sh), 0);
    long rounds = 100000 / st_scale();
    uint64_t s = 12345;
    for (long n = 0; n < rounds; n++) {
        s = st_mix(s + 1);
        uint64_t i = s % IDS;
        int rc = st_put_n(sh.st, i, 4000, 0);
        assert_true(rc == 0 || rc == -EEXIST || rc == -ENOSPC);
        if (s % 3 == 0) {
            weft_store_id id = st_id((s >> 8) % IDS);
            rc = weft_store_delete(sh.st, &id);
            assert_true(rc == 0 || rc == -ENOENT || rc == -EBUSY);
        }
    }
    atomic_store(&sh.stop, 1);
    for (int k = 0; k < READERS; k++)
        pthread_join(t[k], NULL);
    printf("gets %ld misses %ld\n", (long)sh.gets, (long)sh.misses);
    assert_int_equal(sh.bad, 0);
    weft_store_stats st;
    assert_int_equal(weft_store_stats_get(sh.st, &st), 0);
    assert_true(st.evictions > 0);
    char why[200];
    assert_int_equal(weft_store_check(sh.st, why, sizeof why), 0);
    assert_int_equal(weft_store_close(sh.st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_and_evictions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
