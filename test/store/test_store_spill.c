/* Spilling: pinned objects beyond the capacity go to the spill directory
 * in batches (io_uring) and come back on get with their bytes; deleting a
 * spilled object removes it from disk; the files go when empty; a lost
 * spill file is -EIO; another process restores what one process spilled;
 * a spill that cannot be written (disk full) fails the create and loses
 * nothing. */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "store_util.h"

static void get_verify(weft_store *st, uint64_t i, size_t size)
{
    weft_store_id id = st_id(i);
    weft_store_obj obj;
    assert_int_equal(weft_store_get(st, &id, 0, &obj), 0);
    assert_int_equal(obj.size, size);
    assert_true(st_verify(i, obj.data, obj.size));
    assert_int_equal(weft_store_release(st, &obj), 0);
}

static void test_spill_restore(void **state)
{
    (void)state;
    char dir[] = "/tmp/weft-store-spill-XXXXXX";
    const char *name;
    weft_store *st;
    assert_int_equal(st_open_spilling(dir, "spill", 1u << 20, 0, &name, &st),
                     0);
    const size_t sz = 100000;
    const uint64_t n = 40; /* 4 MB of pinned objects in 1 MiB */
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(st_put_n(st, i, sz, WEFT_STORE_PIN), 0);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_true(s.spills >= n - 10);
    assert_true(s.spilled > 0);
    assert_true(st_files_in(dir) > 0);
    assert_true(st_files_in(dir) < (int)s.spills); /* batched */
    weft_store_info info;
    weft_store_id id0 = st_id(0);
    assert_int_equal(weft_store_stat(st, &id0, &info), 0);
    assert_int_equal(info.state, WEFT_STORE_STATE_SPILLED);
    assert_int_equal(weft_store_contains(st, &id0), 1);
    /* every object comes back, in any order */
    for (uint64_t k = 0; k < n; k++)
        get_verify(st, (k * 7) % n, sz);
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_true(s.restores > 0);
    /* another process restores too */
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        weft_store *c;
        weft_store_opts co;
        weft_store_opts_default(&co);
        co.spill_dir = dir;
        if (weft_store_open(name, &co, &c) != 0)
            _exit(10);
        for (uint64_t i = 0; i < n; i++) {
            weft_store_id id = st_id(i);
            weft_store_obj obj;
            if (weft_store_get(c, &id, 0, &obj) != 0)
                _exit(11);
            if (!st_verify(i, obj.data, obj.size))
                _exit(12);
            weft_store_release(c, &obj);
        }
        _exit(weft_store_close(c) == 0 ? 0 : 13);
    }
    assert_int_equal(st_wait(kid), 0);
    /* delete everything, spilled or not: the directory empties */
    for (uint64_t i = 0; i < n; i++) {
        weft_store_id id = st_id(i);
        assert_int_equal(weft_store_delete(st, &id), 0);
    }
    assert_int_equal(st_files_in(dir), 0);
    char why[200];
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.used, 0);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, dir), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* A spill file that vanished: the get says -EIO, the store stays sane. */
static void test_lost_spill_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/weft-store-spill-XXXXXX";
    const char *name;
    weft_store *st;
    assert_int_equal(st_open_spilling(dir, "lost", 256u << 10, 0, &name, &st),
                     0);
    for (uint64_t i = 0; i < 20; i++)
        assert_int_equal(st_put_n(st, i, 50000, WEFT_STORE_PIN), 0);
    weft_store_id id0 = st_id(0);
    weft_store_info info;
    assert_int_equal(weft_store_stat(st, &id0, &info), 0);
    assert_int_equal(info.state, WEFT_STORE_STATE_SPILLED);
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    weft_store_obj obj;
    assert_int_equal(weft_store_get(st, &id0, 0, &obj), -EIO);
    assert_int_equal(weft_store_delete(st, &id0), 0);
    char why[200];
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, dir), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* A full disk, played by RLIMIT_FSIZE: every spill write past 64 KiB
 * fails (EFBIG; SIGXFSZ ignored). The create that needed the room fails
 * with -ENOSPC (the store logs why once); the objects that were to be
 * spilled stay in memory, whole, and no spill file is left. With the
 * limit lifted, the same create spills and works, and every object reads
 * back. */
static void test_spill_disk_full(void **state)
{
    (void)state;
    char dir[] = "/tmp/weft-store-spill-XXXXXX";
    const char *name;
    weft_store *st;
    assert_int_equal(st_open_spilling(dir, "full", 1u << 20, 0, &name, &st),
                     0);
    const size_t sz = 100000;
    uint64_t n = 0;
    weft_store_stats s;
    do { /* fill memory, stopping short of the first spill */
        assert_int_equal(st_put_n(st, n++, sz, WEFT_STORE_PIN), 0);
        assert_int_equal(weft_store_stats_get(st, &s), 0);
    } while (s.used + 2 * sz < s.capacity);
    assert_int_equal(s.spills, 0);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64u << 10;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = 0;
    uint64_t failed_at = n;
    for (int k = 0; k < 4 && !rc; k++, failed_at++)
        rc = st_put_n(st, failed_at, sz, WEFT_STORE_PIN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, -ENOSPC);
    failed_at--;
    assert_int_equal(st_files_in(dir), 0);
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.spilled, 0);
    weft_store_id idf = st_id(failed_at);
    assert_int_equal(weft_store_contains(st, &idf), 0);
    for (uint64_t i = 0; i < failed_at; i++)
        get_verify(st, i, sz);
    char why[200];
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    /* room on disk again: the create that failed works, by spilling */
    assert_int_equal(st_put_n(st, failed_at, sz, WEFT_STORE_PIN), 0);
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_true(s.spills > 0);
    for (uint64_t i = 0; i <= failed_at; i++)
        get_verify(st, i, sz);
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, dir), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spill_restore),
        cmocka_unit_test(test_lost_spill_file),
        cmocka_unit_test(test_spill_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
