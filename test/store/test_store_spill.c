/* Spilling: pinned objects beyond the capacity go to the spill directory
 * in batches (io_uring) and come back on get with their bytes; deleting a
 * spilled object removes it from disk; the files go when empty; a lost
 * spill file is -EIO; another process restores what one process spilled;
 * a spill that cannot be written (disk full) fails the create and loses
 * nothing. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "store_util.h"
#include "st.h" /* where an object was spilled, looked up below */

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

/* test_restore_interrupted: SIGALRM every 10 ms from the restore's first
 * wait on; the second one writes the object's bytes into the FIFO that
 * stands for its spill file, so that the read is in flight (blocked) when
 * the first signal comes. */
static int intr_fd = -1;
static uint8_t intr_bytes[4000];
static volatile sig_atomic_t intr_signals, intr_armed;

static void intr_alarm(int sig)
{
    (void)sig;
    if (++intr_signals != 2)
        return;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    if (write(intr_fd, intr_bytes, sizeof intr_bytes) != sizeof intr_bytes)
        intr_signals = 100; /* seen by the test */
}

static void intr_hook(const char *point)
{
    if (!intr_armed || strcmp(point, "spill:submitted") != 0)
        return;
    intr_armed = 0;
    struct itimerval every = {{0, 10000}, {0, 10000}};
    setitimer(ITIMER_REAL, &every, NULL);
}

/* A restore whose wait for its read is interrupted by a signal (a handler
 * without SA_RESTART) waits on: it used to give up with the read still in
 * flight, free the block the kernel then wrote into, and leave the
 * completion to be counted by the next batch. */
static void test_restore_interrupted(void **state)
{
    (void)state;
    char dir[] = "/tmp/weft-store-spill-XXXXXX";
    const char *name;
    weft_store *st;
    assert_int_equal(st_open_spilling(dir, "intr", 64u << 10, 0, &name, &st),
                     0);
    /* objects of at most PIPE_BUF bytes, written to the FIFO at once */
    const size_t sz = sizeof intr_bytes;
    for (uint64_t i = 0; i < 40; i++)
        assert_int_equal(st_put_n(st, i, sz, WEFT_STORE_PIN), 0);
    if (st->ring_ok <= 0) { /* no io_uring here: nothing to interrupt */
        weft_store_close(st);
        weft_store_unlink(name, dir);
        rmdir(dir);
        skip();
    }
    /* a spilled object at the start of its file, whose file becomes a
     * FIFO that has no bytes until the handler writes them */
    uint32_t d = 0;
    while (d < st->max_objects &&
           (atomic_load(&st->descs[d].state) != ST_SPILLED ||
            st->descs[d].spill_off != 0))
        d++;
    assert_true(d < st->max_objects);
    weft_store_id id;
    st_id_load(&st->descs[d], &id);
    uint64_t n;
    memcpy(&n, id.bytes, sizeof n);
    st_fill(n, intr_bytes, sz);
    char path[4096];
    assert_int_equal(st_spill_path(dir, name, st->h->instance,
                                   st->descs[d].spill_file, path, sizeof path),
                     0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkfifo(path, 0600), 0);
    intr_fd = open(path, O_RDWR | O_CLOEXEC); /* a writer: opens never block */
    assert_true(intr_fd >= 0);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = intr_alarm; /* no SA_RESTART */
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    intr_signals = 0;
    intr_armed = 1;
    weft__store_hook = intr_hook;
    weft_store_obj obj;
    int rc = weft_store_get(st, &id, 0, &obj);
    weft__store_hook = NULL;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    assert_int_equal(intr_signals, 2);
    assert_int_equal(rc, 0);
    assert_int_equal(obj.size, sz);
    assert_true(st_verify(n, obj.data, obj.size));
    assert_int_equal(weft_store_release(st, &obj), 0);
    close(intr_fd);
    /* the next transfers find no leftover completion: all read back */
    for (uint64_t i = 0; i < 40; i++) {
        weft_store_id other = st_id(i);
        if (i == n)
            continue;
        weft_store_info info;
        assert_int_equal(weft_store_stat(st, &other, &info), 0);
        if (info.state == WEFT_STORE_STATE_SPILLED && info.size == sz) {
            /* those in the FIFO's file cannot be read back: drop them */
            st_desc *x = st_desc_at(st, st_find_locked(st, &other));
            if (x->spill_file == st->descs[d].spill_file) {
                assert_int_equal(weft_store_delete(st, &other), 0);
                continue;
            }
        }
        get_verify(st, i, sz);
    }
    char why[200];
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, dir), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* A store unlinked while open goes on spilling and restoring beside a new
 * store of the same name in the same spill directory: their spill files
 * used to have the same names (O_TRUNC), so each overwrote the other's. */
static void test_same_name_spill_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/weft-store-spill-XXXXXX";
    const char *name;
    weft_store *a, *b;
    const size_t sz = 200u << 10;
    assert_int_equal(st_open_spilling(dir, "same", 1u << 20, 0, &name, &a),
                     0);
    for (uint64_t i = 0; i < 12; i++)
        assert_int_equal(st_put_n(a, i, sz, WEFT_STORE_PIN), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0); /* a stays usable */
    weft_store_opts o = st_opts(1u << 20, 0);
    o.spill_dir = dir;
    assert_int_equal(weft_store_open(name, &o, &b), 0); /* a new store */
    for (uint64_t i = 1000; i < 1012; i++)
        assert_int_equal(st_put_n(b, i, sz, WEFT_STORE_PIN), 0);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(a, &s), 0);
    assert_true(s.spilled > 0);
    assert_int_equal(weft_store_stats_get(b, &s), 0);
    assert_true(s.spilled > 0);
    for (uint64_t i = 0; i < 12; i++) {
        get_verify(a, i, sz);
        get_verify(b, 1000 + i, sz);
    }
    char why[200];
    assert_int_equal(weft_store_check(a, why, sizeof why), 0);
    assert_int_equal(weft_store_check(b, why, sizeof why), 0);
    /* unlink removes b's files, and only those */
    int before = st_files_in(dir);
    assert_int_equal(weft_store_close(b), 0);
    assert_int_equal(weft_store_unlink(name, dir), 0);
    assert_true(st_files_in(dir) < before);
    for (uint64_t i = 0; i < 12; i++) {
        weft_store_id id = st_id(i);
        get_verify(a, i, sz);
        assert_int_equal(weft_store_delete(a, &id), 0);
    }
    assert_int_equal(st_files_in(dir), 0);
    assert_int_equal(weft_store_close(a), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* A spilled descriptor whose size could never fit the data area (a
 * corrupt or foreign segment) is refused by the checks (open: -EPROTO,
 * weft_store_check: -EUCLEAN) and by get (-EPROTO): 2^64 - 1 used to pass
 * them and wrap the restore's block size, which then read the spill file
 * over the rest of the data area. */
static void test_spilled_size_corrupt(void **state)
{
    (void)state;
    char dir[] = "/tmp/weft-store-spill-XXXXXX";
    const char *name;
    weft_store *st;
    assert_int_equal(st_open_spilling(dir, "badsize", 1u << 20, 0, &name,
                                      &st), 0);
    for (uint64_t i = 0; i < 12; i++)
        assert_int_equal(st_put_n(st, i, 200u << 10, WEFT_STORE_PIN), 0);
    assert_int_equal(st_put_n(st, 100, 1000, 0), 0);
    uint32_t d = 0;
    while (d < st->max_objects &&
           atomic_load(&st->descs[d].state) != ST_SPILLED)
        d++;
    assert_true(d < st->max_objects);
    st_desc *x = &st->descs[d];
    weft_store_id id;
    st_id_load(x, &id);
    uint64_t size = atomic_load(&x->size);
    uint64_t bad[] = {UINT64_MAX, st->capacity - ST_BLK_HDR + 1};
    for (int k = 0; k < 2; k++) {
        atomic_store(&x->size, bad[k]);
        char why[200];
        assert_int_equal(weft_store_check(st, why, sizeof why), -EUCLEAN);
        weft_store *other;
        weft_store_opts o = st_opts(1u << 20, 0);
        o.spill_dir = dir;
        assert_int_equal(weft_store_open(name, &o, &other), -EPROTO);
        weft_store_obj obj;
        assert_int_equal(weft_store_get(st, &id, 0, &obj), -EPROTO);
    }
    atomic_store(&x->size, size);
    get_verify(st, 100, 1000);
    char why[200];
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    get_verify(st, 0, 200u << 10);
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
        cmocka_unit_test(test_restore_interrupted),
        cmocka_unit_test(test_same_name_spill_files),
        cmocka_unit_test(test_spilled_size_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
