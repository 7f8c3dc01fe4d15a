/* A runtime's object store (weft/store.h: weft_runtime_store,
 * weft_runtime_set_store): the runtime's own store is opened once, on
 * first use, with the configured capacity (weft_config.store_capacity or
 * WEFT_STORE_CAPACITY), shared by every thread, counted in
 * weft_stats_runtime(), and closed and unlinked by weft_runtime_destroy();
 * a store the caller opened can be attached instead and outlives the
 * runtime. Public API only. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <weft.h>

/* Entries of /dev/shm named weft-rt-PID-*, of this process. */
static int own_segments(void)
{
    char prefix[48];
    snprintf(prefix, sizeof prefix, "weft-rt-%d-", (int)getpid());
    DIR *d = opendir("/dev/shm");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* own_segments() once it equals want, or what it last read after 50
 * tries: a listing of /dev/shm can miss an entry while other tests
 * (run beside this one) create and unlink theirs. */
static int segments_now(int want)
{
    int n = own_segments();
    for (int i = 0; i < 50 && n != want; i++) {
        usleep(2000);
        n = own_segments();
    }
    return n;
}

/* The count before a test: the most of a few listings (a missed entry
 * only lowers one). */
static int segments_steady(void)
{
    int n = own_segments();
    for (int i = 0; i < 4; i++) {
        int m = own_segments();
        n = m > n ? m : n;
    }
    return n;
}

static weft_runtime *runtime_cap(uint64_t cap)
{
    weft_config c = weft_config_default();
    c.workers = 2;
    c.store_capacity = cap;
    weft_runtime *rt = NULL;
    assert_int_equal(weft_runtime_create(&rt, &c), 0);
    return rt;
}

static weft_store_id id_of(uint64_t n)
{
    weft_store_id id;
    memset(&id, 0, sizeof id);
    memcpy(id.bytes, &n, sizeof n);
    return id;
}

/* Opened on first use, the same handle after; counted in the stats;
 * gone (unlinked) after destroy. */
static void test_own_store(void **s)
{
    (void)s;
    int before = segments_steady();
    weft_runtime *rt = runtime_cap(1u << 20);
    weft_runtime_stats rs;
    assert_int_equal(weft_stats_runtime(rt, &rs), 0);
    assert_int_equal(rs.store_capacity, 0); /* no store yet */
    assert_int_equal(segments_now(before), before);
    weft_store *st = NULL, *again = NULL;
    assert_int_equal(weft_runtime_store(rt, &st), 0);
    assert_non_null(st);
    assert_int_equal(weft_runtime_store(rt, &again), 0);
    assert_ptr_equal(st, again);
    assert_int_equal(segments_now(before + 1), before + 1);
    static char buf[100000];
    memset(buf, 0x5a, sizeof buf);
    weft_store_id id = id_of(1);
    assert_int_equal(weft_store_put(st, &id, buf, sizeof buf, 0), 0);
    assert_int_equal(weft_stats_runtime(rt, &rs), 0);
    assert_int_equal(rs.store_capacity, 1u << 20);
    assert_int_equal(rs.store_objects, 1);
    assert_true(rs.store_used >= sizeof buf);
    assert_int_equal(rs.store_evictions, 0);
    assert_int_equal(rs.store_spills, 0);
    /* fill it past its capacity: unreferenced objects are evicted */
    for (uint64_t i = 2; i < 40; i++) {
        id = id_of(i);
        assert_int_equal(weft_store_put(st, &id, buf, sizeof buf, 0), 0);
    }
    assert_int_equal(weft_stats_runtime(rt, &rs), 0);
    assert_true(rs.store_evictions > 0);
    assert_true(rs.store_used <= rs.store_capacity);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
    assert_int_equal(segments_now(before), before);
}

/* The default capacity, and WEFT_STORE_CAPACITY over the config. */
static void test_capacity(void **s)
{
    (void)s;
    weft_runtime *rt = runtime_cap(0);
    weft_store *st;
    weft_runtime_stats rs;
    assert_int_equal(weft_runtime_store(rt, &st), 0);
    assert_int_equal(weft_stats_runtime(rt, &rs), 0);
    assert_true(rs.store_capacity >= (64u << 10));
    assert_true(rs.store_capacity <= (128u << 20));
    weft_runtime_destroy(&rt);

    setenv("WEFT_STORE_CAPACITY", "2M", 1);
    rt = runtime_cap(1u << 20);
    assert_int_equal(weft_runtime_store(rt, &st), 0);
    assert_int_equal(weft_stats_runtime(rt, &rs), 0);
    assert_int_equal(rs.store_capacity, 2u << 20);
    weft_runtime_destroy(&rt);

    weft_config c = weft_config_default();
    c.workers = 1;
    static const char *bad[] = {"lots", "-1", "12Q", "1000"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("WEFT_STORE_CAPACITY", bad[i], 1);
        assert_int_equal(weft_runtime_create(&rt, &c), -EINVAL);
        assert_null(rt);
    }
    unsetenv("WEFT_STORE_CAPACITY");
    c.store_capacity = 1000; /* under 64 KiB */
    assert_int_equal(weft_runtime_create(&rt, &c), -EINVAL);
    c.store_capacity = 0;
    assert_int_equal(weft_runtime_create(&rt, &c), 0);
    weft_runtime_destroy(&rt);
}

static const char *user_name(void)
{
    static char b[64];
    snprintf(b, sizeof b, "weft-test-rtstore-%d", (int)getpid());
    return b;
}

/* A store the caller opened: attached, not owned, still open after the
 * runtime is gone; a second store is refused. */
static void test_attached(void **s)
{
    (void)s;
    weft_store_opts o;
    weft_store_opts_default(&o);
    o.capacity = 1u << 20;
    weft_store *mine, *other, *got;
    assert_int_equal(weft_store_open(user_name(), &o, &mine), 0);
    weft_runtime *rt = runtime_cap(0);
    assert_int_equal(weft_runtime_set_store(NULL, mine), -EINVAL);
    assert_int_equal(weft_runtime_set_store(rt, NULL), -EINVAL);
    assert_int_equal(weft_runtime_set_store(rt, mine), 0);
    assert_int_equal(weft_runtime_set_store(rt, mine), 0); /* again */
    assert_int_equal(weft_runtime_store(rt, &got), 0);
    assert_ptr_equal(got, mine);
    weft_store_id id = id_of(7);
    assert_int_equal(weft_store_put(mine, &id, "abc", 3, 0), 0);
    weft_runtime_stats rs;
    assert_int_equal(weft_stats_runtime(rt, &rs), 0);
    assert_int_equal(rs.store_capacity, 1u << 20);
    assert_int_equal(rs.store_objects, 1);
    int before = segments_steady();
    assert_int_equal(weft_runtime_destroy(&rt), 0);
    assert_int_equal(segments_now(before), before);
    /* still ours, still open */
    weft_store_obj obj;
    assert_int_equal(weft_store_get(mine, &id, 0, &obj), 0);
    assert_memory_equal(obj.data, "abc", 3);
    assert_int_equal(weft_store_release(mine, &obj), 0);

    /* a runtime with a store of its own refuses another */
    rt = runtime_cap(1u << 20);
    assert_int_equal(weft_runtime_store(rt, &other), 0);
    assert_int_equal(weft_runtime_set_store(rt, mine), -EEXIST);
    assert_int_equal(weft_runtime_store(rt, &got), 0);
    assert_ptr_equal(got, other);
    weft_runtime_destroy(&rt);
    assert_int_equal(weft_store_close(mine), 0);
    assert_int_equal(weft_store_unlink(user_name(), NULL), 0);
}

static void test_bad_args(void **s)
{
    (void)s;
    weft_store *st;
    assert_int_equal(weft_runtime_store(NULL, &st), -EINVAL);
    weft_runtime *rt = runtime_cap(0);
    assert_int_equal(weft_runtime_store(rt, NULL), -EINVAL);
    assert_int_equal(weft_map_isolated_store(&st), -ENOENT); /* not a child */
    assert_int_equal(weft_map_isolated_store(NULL), -EINVAL);
    weft_runtime_destroy(&rt);
}

/* Threads asking at once get one store, opened once. */
struct race {
    weft_runtime *rt;
    weft_store *got;
    int rc;
};

static void *race_main(void *arg)
{
    struct race *r = arg;
    r->rc = weft_runtime_store(r->rt, &r->got);
    weft_runtime_stats rs;
    if (r->rc == 0)
        r->rc = weft_stats_runtime(r->rt, &rs);
    return NULL;
}

static void test_threads(void **s)
{
    (void)s;
    int before = segments_steady();
    weft_runtime *rt = runtime_cap(1u << 20);
    struct race r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct race){.rt = rt};
        assert_int_equal(pthread_create(&t[i], NULL, race_main, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].rc, 0);
        assert_ptr_equal(r[i].got, r[0].got);
    }
    assert_int_equal(segments_now(before + 1), before + 1);
    weft_runtime_destroy(&rt);
    assert_int_equal(segments_now(before), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_store),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_attached),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
