/* A runtime's object store (weft/store.h: weft_runtime_store,
 * weft_runtime_set_store): the runtime's own store is opened once, on
 * first use, with the configured capacity (weft_config.store_capacity or
 * WEFT_STORE_CAPACITY), shared by every thread, counted in
 * weft_stats_runtime(), and closed and unlinked by weft_runtime_destroy();
 * a store the caller opened can be attached instead and outlives the
 * runtime. Public API only. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
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

/* ---- stores left by dead processes */

/* In a child: a runtime's store (its name written to fd), then, when
 * holder is set, a grandchild that opens it by name and waits on hold;
 * the child then exits without destroying its runtime, as a killed
 * process would. Returns the grandchild's pid through the pipe too. */
static void own_name(char *name)
{
    char prefix[48];
    snprintf(prefix, sizeof prefix, "weft-rt-%d-", (int)getpid());
    DIR *d = opendir("/dev/shm");
    if (!d)
        _exit(1);
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
            strlen(e->d_name) <= WEFT_STORE_NAME_MAX)
            memcpy(name, e->d_name, strlen(e->d_name) + 1);
    closedir(d);
}

static void leave_store(int fd, int hold, int hold_w)
{
    weft_config c = weft_config_default();
    c.workers = 1;
    c.store_capacity = 1u << 20;
    weft_runtime *rt = NULL;
    weft_store *st = NULL;
    if (weft_runtime_create(&rt, &c) || weft_runtime_store(rt, &st))
        _exit(1);
    char name[WEFT_STORE_NAME_MAX + 1] = "";
    own_name(name);
    pid_t g = 0;
    if (hold >= 0) {
        int ready[2];
        if (pipe(ready))
            _exit(1);
        g = fork();
        if (g == 0) {
            close(hold_w); /* so that the test's close is our EOF */
            weft_store_opts o;
            weft_store_opts_default(&o);
            o.flags = WEFT_STORE_OPEN_EXISTING;
            weft_store *mine = NULL;
            char b = weft_store_open(name, &o, &mine) == 0;
            if (write(ready[1], &b, 1) != 1 || read(hold, &b, 1) < 0)
                _exit(1);
            _exit(0); /* the store stays open until here */
        }
        char b = 0;
        if (g < 0 || read(ready[0], &b, 1) != 1 || !b)
            _exit(1);
    }
    if (write(fd, name, sizeof name) != (ssize_t)sizeof name ||
        write(fd, &g, sizeof g) != (ssize_t)sizeof g)
        _exit(1);
    _exit(0);
}

/* The name of a store left by a child that exited (held open by a
 * grandchild when hold >= 0, whose pid goes to *g). */
static void left_store(char *name, int hold, int hold_w, pid_t *g)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0)
        leave_store(p[1], hold, hold_w);
    close(p[1]);
    assert_int_equal(read(p[0], name, WEFT_STORE_NAME_MAX + 1),
                     WEFT_STORE_NAME_MAX + 1);
    assert_int_equal(read(p[0], g, sizeof *g), (ssize_t)sizeof *g);
    close(p[0]);
    int st;
    assert_int_equal(waitpid(c, &st, 0), c);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int shm_exists(const char *name)
{
    char path[WEFT_STORE_NAME_MAX + 16];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    return access(path, F_OK) == 0;
}

static void age(const char *name)
{
    char path[WEFT_STORE_NAME_MAX + 16];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    struct timespec t[2] = {{.tv_sec = time(NULL) - 3600},
                            {.tv_sec = time(NULL) - 3600}};
    assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

/* A new runtime store removes those whose process died without destroy
 * (an hour old, no client left); it keeps a fresh one (its creator may
 * not hold its slot yet) and one that another process still has open. */
static void test_dead_left(void **s)
{
    (void)s;
    char dead[WEFT_STORE_NAME_MAX + 1], fresh[WEFT_STORE_NAME_MAX + 1],
        held[WEFT_STORE_NAME_MAX + 1];
    pid_t g;
    int hold[2];
    assert_int_equal(pipe(hold), 0);
    left_store(dead, -1, -1, &g);
    left_store(fresh, -1, -1, &g);
    left_store(held, hold[0], hold[1], &g);
    assert_true(g > 0);
    /* checked before the ageing: once aged, a runtime store made by
     * another test running beside this one may remove dead first */
    assert_true(shm_exists(dead) && shm_exists(fresh) && shm_exists(held));
    age(dead);
    age(held);

    weft_runtime *rt = runtime_cap(1u << 20);
    weft_store *st = NULL;
    assert_int_equal(weft_runtime_store(rt, &st), 0);
    assert_false(shm_exists(dead));
    assert_true(shm_exists(fresh));
    assert_true(shm_exists(held));
    assert_int_equal(weft_runtime_destroy(&rt), 0);

    close(hold[1]); /* the grandchild closes the store and exits */
    close(hold[0]);
    assert_int_equal(waitpid(g, NULL, 0) == g || errno == ECHILD, 1);
    assert_int_equal(weft_store_unlink(fresh, NULL), 0);
    assert_int_equal(weft_store_unlink(held, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_store),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_attached),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_dead_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
