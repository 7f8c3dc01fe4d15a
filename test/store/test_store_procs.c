/* The object store across processes: a producer and consumers in separate
 * processes agree on every byte (checksums), a get waits for a seal made
 * by another process (also thousands of times over, racing the lock-free
 * seal), seals another process has not linked yet are evictable, and a
 * process that dies (SIGKILL) holding references and unsealed objects
 * loses exactly those; an unsealed object of a dead process whose
 * descriptor is corrupt makes an open and a check say so, not crash. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "store_util.h"
#include "st.h" /* a client's liveness lock, cleared on purpose below */

/* Consumer: opens the store by name, waits for each of n objects (in its
 * own order), verifies it, releases it. Exit status: 0, or what failed. */
static int consumer(const char *name, uint64_t n, int stride)
{
    weft_store *st;
    if (weft_store_open(name, NULL, &st) != 0)
        return 10;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t i = (k * (uint64_t)stride) % n;
        weft_store_id id = st_id(i);
        weft_store_obj obj;
        int rc = weft_store_get(st, &id, 20000, &obj);
        if (rc != 0)
            return 11;
        if (obj.size != st_size_of(i) || !st_verify(i, obj.data, obj.size))
            return 12;
        if (weft_store_release(st, &obj) != 0)
            return 13;
    }
    return weft_store_close(st) == 0 ? 0 : 14;
}

static void test_producer_consumers(void **state)
{
    (void)state;
    const char *name = st_name("pc");
    weft_store_opts o = st_opts(64u << 20, 8192);
    weft_store *st;
    assert_int_equal(weft_store_open(name, &o, &st), 0);
    const uint64_t n = 2000 / (uint64_t)st_scale();
    pid_t kids[3];
    int strides[3] = {1, 7, 13};
    for (int c = 0; c < 3; c++) {
        kids[c] = fork();
        assert_true(kids[c] >= 0);
        if (kids[c] == 0)
            _exit(consumer(name, n, strides[c]));
    }
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(st_put_n(st, i, st_size_of(i), 0), 0);
    for (int c = 0; c < 3; c++)
        assert_int_equal(st_wait(kids[c]), 0);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.sealed, n);
    assert_int_equal(s.clients, 1);
    char why[200];
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

/* The child waits (no timeout) for an object the parent seals later. */
static void test_wait_for_seal(void **state)
{
    (void)state;
    const char *name = st_name("wait");
    weft_store_opts o = st_opts(1u << 20, 0);
    weft_store *st;
    assert_int_equal(weft_store_open(name, &o, &st), 0);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        weft_store *c;
        if (weft_store_open(name, NULL, &c) != 0)
            _exit(10);
        weft_store_id id = st_id(42);
        weft_store_obj obj;
        if (weft_store_get(c, &id, 0, &obj) != -ENOENT)
            _exit(11);
        char b = 1;
        if (write(pipefd[1], &b, 1) != 1)
            _exit(12);
        if (weft_store_get(c, &id, -1, &obj) != 0)
            _exit(13);
        if (!st_verify(42, obj.data, obj.size) || obj.size != 5000)
            _exit(14);
        weft_store_release(c, &obj);
        _exit(weft_store_close(c) == 0 ? 0 : 15);
    }
    char b;
    assert_int_equal(read(pipefd[0], &b, 1), 1);
    usleep(20000); /* let it sleep in the futex (not needed for the result) */
    weft_store_id id = st_id(42);
    void *p;
    assert_int_equal(weft_store_create(st, &id, 5000, 0, &p), 0);
    st_fill(42, p, 5000);
    usleep(10000);
    assert_int_equal(weft_store_seal(st, &id), 0);
    assert_int_equal(st_wait(kid), 0);
    close(pipefd[0]);
    close(pipefd[1]);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

/* Producer k: creates and seals ids k, k + 2, k + 4, ... (< n), without
 * ever waiting, so that its seals race the consumers' waits. */
static int producer(const char *name, uint64_t n, uint64_t k)
{
    weft_store *st;
    if (weft_store_open(name, NULL, &st) != 0)
        return 20;
    for (uint64_t i = k; i < n; i += 2)
        if (st_put_n(st, i, st_size_of(i), 0) != 0)
            return 21;
    return weft_store_close(st) == 0 ? 0 : 22;
}

/* Two producers seal while two consumers wait for each object in turn (a
 * wake-up lost between a seal and a waiter's sleep shows as a timeout:
 * the consumers allow 20 s per object, the whole run takes well under a
 * second). */
static void test_seal_wakeups(void **state)
{
    (void)state;
    const char *name = st_name("wakeups");
    weft_store_opts o = st_opts(96u << 20, 16384);
    weft_store *st;
    assert_int_equal(weft_store_open(name, &o, &st), 0);
    const uint64_t n = 4000 / (uint64_t)st_scale();
    pid_t kids[4];
    for (int c = 0; c < 4; c++) {
        kids[c] = fork();
        assert_true(kids[c] >= 0);
        if (kids[c] == 0)
            _exit(c < 2 ? producer(name, n, (uint64_t)c)
                        : consumer(name, n, c == 2 ? 1 : 7));
    }
    for (int c = 0; c < 4; c++)
        assert_int_equal(st_wait(kids[c]), 0);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.sealed, n);
    assert_int_equal(s.seals, n);
    char why[200];
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

/* A child seals objects and then idles without taking the store's lock
 * again, so its last seal is not linked into the eviction order yet; the
 * parent fills the store with pinned objects, which must evict every one
 * of the child's, that one included (and the counts must agree). */
static void test_unlinked_seals_evictable(void **state)
{
    (void)state;
    const char *name = st_name("unlinked");
    /* room for about 23 objects of 4000 bytes */
    weft_store_opts o = st_opts(96u << 10, 64);
    weft_store *st;
    assert_int_equal(weft_store_open(name, &o, &st), 0);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    const uint64_t made = 16;
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        weft_store *c;
        if (weft_store_open(name, NULL, &c) != 0)
            _exit(10);
        for (uint64_t i = 0; i < made; i++)
            if (st_put_n(c, i, 4000, 0) != 0)
                _exit(11);
        char b = 1;
        if (write(pipefd[1], &b, 1) != 1)
            _exit(12);
        alarm(60); /* gone even if the parent's test fails first */
        pause();
        _exit(13);
    }
    char b;
    assert_int_equal(read(pipefd[0], &b, 1), 1);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.sealed, made);
    assert_int_equal(s.evictions, 0);
    uint64_t mine = 0;
    int rc;
    while ((rc = st_put_n(st, 1000 + mine, 4000, WEFT_STORE_PIN)) == 0)
        mine++;
    assert_int_equal(rc, -ENOSPC);
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.evictions, made);
    assert_int_equal(s.sealed, mine);
    assert_int_equal(s.seals, made + mine);
    char why[200];
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    kill(kid, SIGKILL);
    assert_int_equal(st_wait(kid), 128 + SIGKILL);
    close(pipefd[0]);
    close(pipefd[1]);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

/* A child takes references and creates unsealed objects, then is killed:
 * the next open (or check) reclaims them; sealed objects stay. */
static void test_killed_holder(void **state)
{
    (void)state;
    const char *name = st_name("killed");
    weft_store_opts o = st_opts(1u << 20, 0);
    weft_store *st;
    assert_int_equal(weft_store_open(name, &o, &st), 0);
    for (uint64_t i = 0; i < 8; i++)
        assert_int_equal(st_put_n(st, i, 1000, 0), 0);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        weft_store *c;
        if (weft_store_open(name, NULL, &c) != 0)
            _exit(10);
        for (uint64_t i = 0; i < 8; i++) {
            weft_store_id id = st_id(i);
            weft_store_obj obj;
            if (weft_store_get(c, &id, 0, &obj) != 0)
                _exit(11);
        }
        weft_store_id id = st_id(100);
        void *p;
        if (weft_store_create(c, &id, 3000, 0, &p) != 0)
            _exit(12);
        char b = 1;
        if (write(pipefd[1], &b, 1) != 1)
            _exit(13);
        alarm(60); /* gone even if the parent's test fails first */
        pause();
        _exit(14);
    }
    char b;
    assert_int_equal(read(pipefd[0], &b, 1), 1);
    weft_store_id id0 = st_id(0), id100 = st_id(100);
    assert_int_equal(weft_store_delete(st, &id0), -EBUSY);
    weft_store_info info;
    assert_int_equal(weft_store_stat(st, &id100, &info), 0);
    assert_int_equal(info.owner_pid, kid);
    kill(kid, SIGKILL);
    assert_int_equal(st_wait(kid), 128 + SIGKILL);
    char why[200];
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    assert_int_equal(weft_store_stat(st, &id100, &info), -ENOENT);
    assert_int_equal(weft_store_delete(st, &id0), 0);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.reclaims, 1);
    assert_int_equal(s.clients, 1);
    assert_int_equal(s.sealed, 7);
    close(pipefd[0]);
    close(pipefd[1]);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

/* An unsealed object left by a dead client, its descriptor corrupt (its
 * block far outside the data area): the next open is -EPROTO and
 * weft_store_check() -EUCLEAN, and neither reclaims the client (which
 * would free that block) until the segment is sound again. Both used to
 * reclaim the dead first and check after, and the reclaim's free of the
 * block at the descriptor's offset crashed the process (SIGSEGV) before
 * the check could refuse the segment. */
static void test_dead_client_corrupt(void **state)
{
    (void)state;
    const char *name = st_name("deadcorrupt");
    weft_store_opts o = st_opts(256u << 10, 0);
    weft_store *st, *again;
    assert_int_equal(weft_store_open(name, &o, &st), 0);
    assert_int_equal(st_put_n(st, 1, 1000, 0), 0);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    weft_store_id two = st_id(2);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        weft_store *c;
        void *p;
        if (weft_store_open(name, NULL, &c) != 0 ||
            weft_store_create(c, &two, 3000, 0, &p) != 0)
            _exit(10);
        char b = 1;
        if (write(pipefd[1], &b, 1) != 1)
            _exit(11);
        alarm(60); /* gone even if the parent's test fails first */
        pause();
        _exit(12);
    }
    char b;
    assert_int_equal(read(pipefd[0], &b, 1), 1);
    kill(kid, SIGKILL);
    assert_int_equal(st_wait(kid), 128 + SIGKILL);
    st_desc *x = st_desc_at(st, st_find_locked(st, &two));
    uint64_t off = atomic_load(&x->off);
    atomic_store(&x->off, 1ull << 40);
    assert_int_equal(weft_store_open(name, NULL, &again), -EPROTO);
    char why[200];
    assert_int_equal(weft_store_check(st, why, sizeof why), -EUCLEAN);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.reclaims, 0);
    assert_int_equal(s.clients, 2);
    /* sound again: the dead client goes, with its unsealed object */
    atomic_store(&x->off, off);
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    weft_store_info info;
    assert_int_equal(weft_store_stat(st, &two, &info), -ENOENT);
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.reclaims, 1);
    assert_int_equal(s.clients, 1);
    assert_int_equal(s.objects, 1);
    assert_int_equal(weft_store_open(name, NULL, &again), 0);
    assert_int_equal(weft_store_close(again), 0);
    close(pipefd[0]);
    close(pipefd[1]);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

/* The child of test_main_thread_gone: its main thread leaves by
 * pthread_exit(), this thread holds the reference on until told. */
static weft_store *gone_st;
static weft_store_obj gone_obj;
static int gone_go;

static void *gone_holder(void *arg)
{
    (void)arg;
    char b;
    if (read(gone_go, &b, 1) != 1)
        _exit(20);
    int ok = st_verify(1, gone_obj.data, gone_obj.size);
    if (weft_store_release(gone_st, &gone_obj) != 0)
        _exit(21);
    _exit(!ok ? 22 : weft_store_close(gone_st) == 0 ? 0 : 23);
}

static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

/* A client whose main thread called pthread_exit() while another thread
 * holds a reference lives on (/proc says 'Z' of its main thread only):
 * it is not reclaimed, and its reference keeps the object, both by its
 * liveness lock and by the pid (the fallback where there are no OFD
 * locks, played by clearing the slot's mark). */
static void test_main_thread_gone(void **state)
{
    (void)state;
    const char *name = st_name("gone");
    weft_store_opts o = st_opts(1u << 20, 0);
    weft_store *st;
    assert_int_equal(weft_store_open(name, &o, &st), 0);
    assert_int_equal(st_put_n(st, 1, 4096, 0), 0);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        alarm(60); /* gone even if the parent's test fails first */
        weft_store_id id = st_id(1);
        if (weft_store_open(name, NULL, &gone_st) != 0 ||
            weft_store_get(gone_st, &id, 0, &gone_obj) != 0)
            _exit(10);
        gone_go = go[0];
        pthread_t t;
        if (pthread_create(&t, NULL, gone_holder, NULL) != 0)
            _exit(11);
        pthread_exit(NULL);
    }
    for (int i = 0; i < 10000 && proc_state(kid) != 'Z'; i++)
        usleep(1000);
    assert_int_equal(proc_state(kid), 'Z');
    weft_store_id id = st_id(1);
    weft_store_stats s;
    char why[200];
    for (int by_pid = 0; by_pid < 2; by_pid++) {
        if (by_pid)
            for (uint32_t c = 0; c < st->max_clients; c++)
                if (atomic_load(&st->clients[c].pid) == kid)
                    atomic_store(&st->clients[c].locked, 0);
        assert_int_equal(weft_store_check(st, why, sizeof why), 0);
        assert_int_equal(weft_store_stats_get(st, &s), 0);
        assert_int_equal(s.reclaims, 0);
        assert_int_equal(s.clients, 2);
        assert_int_equal(weft_store_delete(st, &id), -EBUSY);
    }
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(st_wait(kid), 0);
    assert_int_equal(weft_store_delete(st, &id), 0);
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    close(go[0]);
    close(go[1]);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

/* test_seal_between_look_and_sleep: the store's wait hook (lib/core's
 * weft__wait_hook, run by a get between its look and its sleep, first
 * in get_slow, then in the futex wait). */
extern __attribute__((tls_model("initial-exec"))) _Thread_local void (
    *weft__wait_hook)(bool waits);
static weft_store *lw_creator;
static st_desc *lw_desc;
static int lw_calls;

/* The getter has looked and found X unsealed; now X is sealed, and the
 * lock-free look misses it, as it does while an index rebuild has
 * cleared its slot (its gen made odd here: only the lock-free look
 * heeds that). */
static void lw_hook(bool waits)
{
    (void)waits;
    if (lw_calls++)
        return;
    weft_store_id x = st_id(7);
    assert_int_equal(weft_store_seal(lw_creator, &x), 0);
    atomic_fetch_add(&lw_desc->gen, 1);
}

static uint64_t lw_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* A seal that lands between a waiting get's look and its sleep wakes it,
 * even when a lock-free look at that moment would miss the object: the
 * get used to re-check without the lock after announcing itself, miss X
 * during an index rebuild, and sleep on a sequence the seal (which had
 * seen nobody waiting) never moved, to its deadline or for ever. */
static void test_seal_between_look_and_sleep(void **state)
{
    (void)state;
    const char *name = st_name("lostwake");
    weft_store_opts o = st_opts(1u << 20, 0);
    weft_store *getter;
    assert_int_equal(weft_store_open(name, &o, &lw_creator), 0);
    assert_int_equal(weft_store_open(name, NULL, &getter), 0);
    weft_store_id x = st_id(7);
    void *p;
    assert_int_equal(weft_store_create(lw_creator, &x, 100, 0, &p), 0);
    st_fill(7, p, 100);
    lw_desc = st_desc_at(getter, st_find_locked(getter, &x));
    uint32_t gen = atomic_load(&lw_desc->gen);
    lw_calls = 0;
    weft__wait_hook = lw_hook;
    weft_store_obj obj;
    /* a lost wake-up sleeps to the deadline; a wake-up takes microseconds */
    const int timeout_ms = 10000;
    uint64_t t0 = lw_now_ms();
    int rc = weft_store_get(getter, &x, timeout_ms, &obj);
    uint64_t took = lw_now_ms() - t0;
    weft__wait_hook = NULL;
    atomic_store(&lw_desc->gen, gen);
    assert_true(lw_calls >= 1);
    assert_int_equal(rc, 0);
    assert_true(took < (uint64_t)timeout_ms);
    obj.gen = gen;
    assert_true(st_verify(7, obj.data, obj.size));
    assert_int_equal(weft_store_release(getter, &obj), 0);
    assert_int_equal(atomic_load(&getter->h->nwaiters), 0);
    char why[200];
    assert_int_equal(weft_store_check(getter, why, sizeof why), 0);
    assert_int_equal(weft_store_close(getter), 0);
    assert_int_equal(weft_store_close(lw_creator), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_consumers),
        cmocka_unit_test(test_wait_for_seal),
        cmocka_unit_test(test_seal_wakeups),
        cmocka_unit_test(test_seal_between_look_and_sleep),
        cmocka_unit_test(test_unlinked_seals_evictable),
        cmocka_unit_test(test_killed_holder),
        cmocka_unit_test(test_dead_client_corrupt),
        cmocka_unit_test(test_main_thread_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
