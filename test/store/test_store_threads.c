/* One handle shared by several threads: readers get, verify and release
 * objects on the lock-free path while a writer keeps creating objects in
 * a small store (so that unreferenced ones are evicted under the readers'
 * feet) and deleting others. Every successful get must see the object's
 * own bytes until its release: the Dekker handshake between a getter's
 * reference and an evictor's claim is what this exercises (and what
 * ThreadSanitizer checks). Also: a lock-free seal racing an abort. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

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

/* Two threads of one handle race a seal (lock-free) against an abort
 * (locked) of the same fresh object, round after round: exactly one wins,
 * the object is readable exactly when the seal won, and the store stays
 * consistent. */
typedef struct race {
    weft_store *st;
    pthread_barrier_t go, done;
    weft_store_id id;
    int seal_rc;
    long rounds;
} race;

static void *sealer(void *arg)
{
    race *r = arg;
    for (long n = 0; n < r->rounds; n++) {
        pthread_barrier_wait(&r->go);
        r->seal_rc = weft_store_seal(r->st, &r->id);
        pthread_barrier_wait(&r->done);
    }
    return NULL;
}

static void test_seal_abort_race(void **state)
{
    (void)state;
    const char *name = st_name("race");
    weft_store_opts o = st_opts(1u << 20, 256);
    static race r;
    assert_int_equal(weft_store_open(name, &o, &r.st), 0);
    r.rounds = 4000 / st_scale();
    pthread_barrier_init(&r.go, NULL, 2);
    pthread_barrier_init(&r.done, NULL, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sealer, &r), 0);
    long sealed = 0, aborted = 0;
    for (long n = 0; n < r.rounds; n++) {
        r.id = st_id((uint64_t)n);
        void *p;
        assert_int_equal(weft_store_create(r.st, &r.id, 100, 0, &p), 0);
        st_fill((uint64_t)n, p, 100);
        pthread_barrier_wait(&r.go);
        int arc = weft_store_abort(r.st, &r.id);
        pthread_barrier_wait(&r.done);
        weft_store_obj obj;
        int grc = weft_store_get(r.st, &r.id, 0, &obj);
        if (r.seal_rc == 0) {
            assert_int_equal(arc, -EALREADY);
            assert_int_equal(grc, 0);
            assert_true(st_verify((uint64_t)n, obj.data, obj.size));
            assert_int_equal(weft_store_release(r.st, &obj), 0);
            assert_int_equal(weft_store_delete(r.st, &r.id), 0);
            sealed++;
        } else {
            assert_int_equal(r.seal_rc, -ENOENT);
            assert_int_equal(arc, 0);
            assert_int_equal(grc, -ENOENT);
            aborted++;
        }
    }
    pthread_join(t, NULL);
    printf("seal won %ld, abort won %ld\n", sealed, aborted);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(r.st, &s), 0);
    assert_int_equal(s.objects, 0);
    assert_int_equal(s.seals, (uint64_t)sealed);
    assert_int_equal(s.aborts, (uint64_t)aborted);
    char why[200];
    assert_int_equal(weft_store_check(r.st, why, sizeof why), 0);
    pthread_barrier_destroy(&r.go);
    pthread_barrier_destroy(&r.done);
    assert_int_equal(weft_store_close(r.st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}


static struct {
    weft_store *st;
    weft_store_id id;
    int armed, abort_rc;
} lose;

/* Runs an abort of the object being sealed between the seal's check of
 * (gen, state) and its check of the owner: the exact window in which
 * test_seal_abort_race once saw the seal answer -EPERM. */
static void abort_in_seal(const char *point)
{
    if (lose.armed && strcmp(point, "seal:checked") == 0) {
        lose.armed = 0;
        lose.abort_rc = weft_store_abort(lose.st, &lose.id);
    }
}

/* A seal that an abort overtook answers -ENOENT (the object is gone),
 * not -EPERM (someone else's object), and the store stays consistent. */
static void test_seal_overtaken_by_abort(void **state)
{
    (void)state;
    const char *name = st_name("overtaken");
    weft_store_opts o = st_opts(1u << 20, 64);
    assert_int_equal(weft_store_open(name, &o, &lose.st), 0);
    lose.id = st_id(7);
    void *p;
    assert_int_equal(weft_store_create(lose.st, &lose.id, 100, 0, &p), 0);
    lose.armed = 1;
    lose.abort_rc = 1;
    weft__store_hook = abort_in_seal;
    int rc = weft_store_seal(lose.st, &lose.id);
    weft__store_hook = NULL;
    assert_int_equal(lose.abort_rc, 0);
    assert_int_equal(rc, -ENOENT);
    weft_store_obj obj;
    assert_int_equal(weft_store_get(lose.st, &lose.id, 0, &obj), -ENOENT);
    char why[200];
    assert_int_equal(weft_store_check(lose.st, why, sizeof why), 0);
    assert_int_equal(weft_store_close(lose.st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

static struct {
    weft_store *st;
    weft_store_id id;
    int armed, seal_rc, put_rc;
} spill;

/* In the same window, a second seal of the same handle wins and the
 * object is then spilled (a pinned object that the next create needs the
 * room of): the first seal's compare-and-swap then finds (gen, SPILLED). */
static void seal_and_spill_in_seal(const char *point)
{
    if (spill.armed && strcmp(point, "seal:checked") == 0) {
        spill.armed = 0;
        spill.seal_rc = weft_store_seal(spill.st, &spill.id);
        spill.put_rc = st_put_n(spill.st, 8, 600000, WEFT_STORE_PIN);
    }
}

/* A seal that another seal overtook answers -EALREADY however far the
 * object has gone since (here: on to disk), never -ENOENT: the object
 * exists, sealed. */
static void test_seal_overtaken_by_seal_and_spill(void **state)
{
    (void)state;
    char dir[] = "/tmp/weft-store-spill-XXXXXX";
    const char *name;
    assert_int_equal(
        st_open_spilling(dir, "overspill", 1u << 20, 64, &name, &spill.st),
        0);
    spill.id = st_id(7);
    void *p;
    assert_int_equal(
        weft_store_create(spill.st, &spill.id, 600000, WEFT_STORE_PIN, &p),
        0);
    st_fill(7, p, 600000);
    spill.armed = 1;
    spill.seal_rc = spill.put_rc = 1;
    weft__store_hook = seal_and_spill_in_seal;
    int rc = weft_store_seal(spill.st, &spill.id);
    weft__store_hook = NULL;
    assert_int_equal(spill.seal_rc, 0);
    assert_int_equal(spill.put_rc, 0);
    weft_store_info info;
    assert_int_equal(weft_store_stat(spill.st, &spill.id, &info), 0);
    assert_int_equal(info.state, WEFT_STORE_STATE_SPILLED);
    assert_int_equal(rc, -EALREADY);
    weft_store_obj obj;
    assert_int_equal(weft_store_get(spill.st, &spill.id, 0, &obj), 0);
    assert_true(st_verify(7, obj.data, obj.size));
    assert_int_equal(weft_store_release(spill.st, &obj), 0);
    char why[200];
    assert_int_equal(weft_store_check(spill.st, why, sizeof why), 0);
    assert_int_equal(weft_store_close(spill.st), 0);
    assert_int_equal(weft_store_unlink(name, dir), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_and_evictions),
        cmocka_unit_test(test_seal_abort_race),
        cmocka_unit_test(test_seal_overtaken_by_abort),
        cmocka_unit_test(test_seal_overtaken_by_seal_and_spill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
