/* SIGKILL at randomised points: 200 times, a child process opens the
 * store and runs random operations (puts, pinned puts that spill, gets
 * holding references, deletes, aborts, creates left unsealed) until it
 * kills itself from the store's internal hook, at a random one of the
 * named points, several of them inside the lock, or is killed by the
 * parent after a random delay. After every death the parent checks that
 * the store is consistent (no leaked bytes, every lock usable, counters
 * right), and that every sealed object is readable with the right bytes.
 * At the end, deleting everything leaves zero bytes in use. */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "store_util.h"


static long countdown;

static void crash_hook(const char *point)
{
    (void)point;
    if (--countdown == 0)
        raise(SIGKILL);
}

static uint64_t rng(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

#define IDS 400

/* One random operation; returns 0 or the exit status that reports a
 * wrong answer. Errors the store may legitimately give (full, busy,
 * exists, gone) are fine. */
static int child_op(weft_store *st, uint64_t *s, weft_store_obj *held,
                    int *nheld)
{
    uint64_t i = rng(s) % IDS;
    weft_store_id id = st_id(i);
    weft_store_obj obj;
    void *p;
    switch (rng(s) % 8) {
    case 0: case 1:
        (void)st_put_n(st, i, st_size_of(i),
                       (rng(s) % 3 == 0) ? WEFT_STORE_PIN : 0);
        return 0;
    case 2: case 3:
        if (weft_store_get(st, &id, 0, &obj) != 0)
            return 0;
        if (obj.size != st_size_of(i) || !st_verify(i, obj.data, obj.size))
            return 20;
        if (*nheld < 16 && rng(s) % 2)
            held[(*nheld)++] = obj;
        else if (weft_store_release(st, &obj) != 0)
            return 21;
        return 0;
    case 4:
        (void)weft_store_delete(st, &id);
        return 0;
    case 5:
        if (weft_store_create(st, &id, st_size_of(i), 0, &p) == 0) {
            st_fill(i, p, st_size_of(i));
            if (rng(s) % 2)
                (void)weft_store_abort(st, &id);
        }
        return 0;
    case 6:
        if (*nheld > 0 && weft_store_release(st, &held[--*nheld]) != 0)
            return 22;
        return 0;
    default:
        (void)weft_store_contains(st, &id);
        return 0;
    }
}

static int child(const char *name, const char *spill, uint64_t seed)
{
    weft_store_opts o;
    weft_store_opts_default(&o);
    o.spill_dir = spill;
    weft__store_hook = crash_hook;
    countdown = (long)(seed % 1000) + 1;
    weft_store *st;
    if (weft_store_open(name, &o, &st) != 0)
        return 10;
    weft_store_obj held[16];
    int nheld = 0;
    uint64_t s = seed;
    for (;;) {
        int rc = child_op(st, &s, held, &nheld);
        if (rc)
            return rc;
    }
}

/* Every sealed object in the store is readable with its own bytes. */
static void verify_all(weft_store *st)
{
    static weft_store_info infos[IDS + 64];
    size_t n;
    assert_int_equal(weft_store_list(st, infos, IDS + 64, &n), 0);
    assert_true(n <= IDS);
    for (size_t k = 0; k < n; k++) {
        if (infos[k].state == WEFT_STORE_STATE_CREATED)
            continue;
        uint64_t i;
        memcpy(&i, infos[k].id.bytes, sizeof i);
        weft_store_obj obj;
        int rc = weft_store_get(st, &infos[k].id, 0, &obj);
        /* restoring a spilled object may have evicted one listed later */
        if (rc == -ENOENT && weft_store_contains(st, &infos[k].id) == 0)
            continue;
        assert_int_equal(rc, 0);
        assert_int_equal(obj.size, st_size_of(i));
        assert_true(st_verify(i, obj.data, obj.size));
        assert_int_equal(weft_store_release(st, &obj), 0);
    }
}

static void check_consistent(weft_store *st, int round)
{
    char why[256];
    int rc = weft_store_check(st, why, sizeof why);
    if (rc)
        fail_msg("round %d: %s", round, why);
    verify_all(st);
}

static void test_sigkill_rounds(void **state)
{
    (void)state;
    char spill[] = "/tmp/weft-store-crash-XXXXXX";
    const char *name;
    weft_store *st;
    assert_int_equal(
        st_open_spilling(spill, "crash", 512u << 10, 1024, &name, &st), 0);
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    printf("seed %llu\n", (unsigned long long)seed);
    int rounds = 200, killed_by_hook = 0;
    for (int r = 0; r < rounds; r++) {
        uint64_t s = st_mix(seed + (uint64_t)r);
        pid_t kid = fork();
        assert_true(kid >= 0);
        if (kid == 0)
            _exit(child(name, spill, s));
        if (s % 4 == 0) { /* some die from outside, at a random moment */
            usleep((useconds_t)(s % 3000));
            kill(kid, SIGKILL);
        }
        int status = st_wait(kid);
        if (status != 128 + SIGKILL)
            fail_msg("round %d: child exit %d", r, status);
        killed_by_hook += s % 4 != 0;
        check_consistent(st, r);
    }
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    printf("reclaims %llu repairs %llu evictions %llu spills %llu "
           "restores %llu\n", (unsigned long long)s.reclaims,
           (unsigned long long)s.repairs, (unsigned long long)s.evictions,
           (unsigned long long)s.spills, (unsigned long long)s.restores);
    assert_true(s.reclaims >= (uint64_t)rounds / 2);
    assert_true(s.repairs > 0);
    /* delete everything: nothing may remain in use */
    for (uint64_t i = 0; i < IDS; i++) {
        weft_store_id id = st_id(i);
        int rc = weft_store_delete(st, &id);
        assert_true(rc == 0 || rc == -ENOENT);
    }
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.used, 0);
    assert_int_equal(s.objects + s.spilled, 0);
    check_consistent(st, rounds);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, spill), 0);
    assert_int_equal(rmdir(spill), 0); /* every spill file went */
}

/* A process killed while deleting a spilled object, just after that
 * object's spill file went (it was the file's last object). Found by
 * test_sigkill_rounds: the repair kept the object as SPILLED, its bytes
 * gone, and every get of it said -EIO. The hook kills exactly there. */
static const char *drop_dir;
static int drop_files;

static void drop_hook(const char *point)
{
    if (strcmp(point, "free:spill-dropped") == 0 &&
        st_files_in(drop_dir) < drop_files)
        raise(SIGKILL);
}

static void test_death_after_spill_file_dropped(void **state)
{
    (void)state;
    char spill[] = "/tmp/weft-store-drop-XXXXXX";
    const char *name;
    weft_store *st;
    assert_int_equal(
        st_open_spilling(spill, "drop", 256u << 10, 0, &name, &st), 0);
    const uint64_t n = 20; /* 1 MB of pinned objects in 256 KiB */
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(st_put_n(st, i, 50000, WEFT_STORE_PIN), 0);
    int files = st_files_in(spill);
    assert_true(files > 0);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        weft_store_opts co;
        weft_store_opts_default(&co);
        co.spill_dir = spill;
        drop_dir = spill;
        drop_files = files;
        weft__store_hook = drop_hook;
        weft_store *c;
        if (weft_store_open(name, &co, &c) != 0)
            _exit(10);
        for (uint64_t i = 0; i < n; i++) {
            weft_store_id id = st_id(i);
            (void)weft_store_delete(c, &id);
        }
        _exit(11); /* no spill file went: the hook never fired */
    }
    assert_int_equal(st_wait(kid), 128 + SIGKILL);
    char why[256];
    if (weft_store_check(st, why, sizeof why)) /* repairs first */
        fail_msg("after the death: %s", why);
    for (uint64_t i = 0; i < n; i++) {
        weft_store_id id = st_id(i);
        weft_store_obj obj;
        int rc = weft_store_get(st, &id, 0, &obj);
        if (rc != 0 && rc != -ENOENT)
            fail_msg("object %llu: get says %d", (unsigned long long)i, rc);
        if (rc == 0) {
            assert_true(st_verify(i, obj.data, obj.size));
            assert_int_equal(weft_store_release(st, &obj), 0);
        }
        rc = weft_store_delete(st, &id);
        assert_true(rc == 0 || rc == -ENOENT);
    }
    if (weft_store_check(st, why, sizeof why))
        fail_msg("after deleting all: %s", why);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, spill), 0);
    assert_int_equal(rmdir(spill), 0);
}

static void reserved_hook(const char *point)
{
    if (strcmp(point, "create:reserved") == 0)
        raise(SIGKILL);
}

/* A process killed while it creates a store, its memory reserved and the
 * store not named yet, leaves nothing in /dev/shm: the file used to be a
 * hidden named one (.weft-store-PID-N-T), fallocated to the capacity,
 * that nobody removed. */
static void test_death_while_creating(void **state)
{
    (void)state;
    const char *name = st_name("creating");
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        weft_store_opts o = st_opts(4u << 20, 0);
        weft_store *st;
        weft__store_hook = reserved_hook;
        weft_store_open(name, &o, &st);
        _exit(10); /* the hook never fired */
    }
    assert_int_equal(st_wait(kid), 128 + SIGKILL);
    char pat[64];
    snprintf(pat, sizeof pat, "/dev/shm/.weft-store-%d-*", (int)kid);
    glob_t g;
    int found = glob(pat, 0, NULL, &g);
    if (found == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            unlink(g.gl_pathv[i]);
        globfree(&g);
    }
    assert_int_equal(found, GLOB_NOMATCH);
    weft_store_opts o = st_opts(4u << 20, 0);
    o.flags = WEFT_STORE_OPEN_EXISTING;
    weft_store *st;
    assert_int_equal(weft_store_open(name, &o, &st), -ENOENT);
}

/* test_death_after_seal: lib/core's wait hook, which a get runs between
 * its look and its sleep (first in get_slow, then in the futex wait). */
extern __attribute__((tls_model("initial-exec"))) _Thread_local void (
    *weft__wait_hook)(bool waits);
static int ds_go = -1; /* the sealer's go-ahead (write end) */
static pid_t ds_kid;
static int ds_calls;

static void sealed_hook(const char *point)
{
    if (strcmp(point, "seal:sealed") == 0)
        raise(SIGKILL);
}

/* The getter has looked and found X unsealed: now the sealer seals it and
 * is killed before it wakes anyone. */
static void ds_wait_hook(bool waits)
{
    (void)waits;
    if (ds_calls++)
        return;
    assert_int_equal(write(ds_go, "s", 1), 1);
    assert_int_equal(st_wait(ds_kid), 128 + SIGKILL);
}

static uint64_t ds_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* A sealer killed between its seal and its wake-up leaves X sealed and
 * readable: a get waiting for X gets it. It used to sleep on a seal
 * sequence nobody would move again, to its deadline (here 10 s, returning
 * X only then) or, without one, for ever. */
static void test_death_after_seal(void **state)
{
    (void)state;
    const char *name = st_name("sealdeath");
    weft_store_opts o = st_opts(1u << 20, 0);
    weft_store *st;
    assert_int_equal(weft_store_open(name, &o, &st), 0);
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    weft_store_id x = st_id(9);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        weft_store *c;
        void *p;
        char b;
        if (weft_store_open(name, NULL, &c) != 0 ||
            weft_store_create(c, &x, 5000, 0, &p) != 0)
            _exit(10);
        st_fill(9, p, 5000);
        if (write(ready[1], "r", 1) != 1 || read(go[0], &b, 1) != 1)
            _exit(11);
        weft__store_hook = sealed_hook;
        weft_store_seal(c, &x);
        _exit(12); /* the hook never fired */
    }
    char b;
    assert_int_equal(read(ready[0], &b, 1), 1);
    ds_go = go[1];
    ds_kid = kid;
    ds_calls = 0;
    weft__wait_hook = ds_wait_hook;
    const int timeout_ms = 10000;
    weft_store_obj obj;
    uint64_t t0 = ds_now_ms();
    int rc = weft_store_get(st, &x, timeout_ms, &obj);
    uint64_t took = ds_now_ms() - t0;
    weft__wait_hook = NULL;
    assert_true(ds_calls >= 1);
    assert_int_equal(rc, 0);
    /* a lost wake-up sleeps to the deadline */
    assert_true(took < (uint64_t)timeout_ms);
    assert_int_equal(obj.size, 5000);
    assert_true(st_verify(9, obj.data, obj.size));
    assert_int_equal(weft_store_release(st, &obj), 0);
    char why[256];
    if (weft_store_check(st, why, sizeof why)) /* reclaims the sealer */
        fail_msg("after the death: %s", why);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.reclaims, 1);
    assert_int_equal(s.sealed, 1);
    for (int i = 0; i < 2; i++) {
        close(ready[i]);
        close(go[i]);
    }
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

#ifdef WEFT_ALLOC_FAULTS
/* lib/core/alloc.h's test controls (a -Dalloc_faults=true build) */
void weft__fault_arm(long nth, long count);
long weft__fault_disarm(void);

static void allocated_hook(const char *point)
{
    if (strcmp(point, "create:allocated") == 0)
        raise(SIGKILL);
}

/* A process killed inside the lock, between taking a block and naming
 * its object, leaves the heap with a block nobody owns; the next locker
 * repairs. When that repair has no memory for its sort it used to be
 * skipped silently: the store looked repaired, the create went ahead on
 * the stale heap and the check found the leak. Now every locked call
 * says -ENOMEM until a repair succeeds, in this process or another. */
static int disarm_faults(void **state)
{
    (void)state;
    weft__fault_disarm(); /* also when an assertion failed while armed */
    return 0;
}

static void test_repair_out_of_memory(void **state)
{
    (void)state;
    const char *name = st_name("repair-oom");
    weft_store_opts o = st_opts(256u << 10, 0);
    weft_store *st;
    assert_int_equal(weft_store_open(name, &o, &st), 0);
    assert_int_equal(st_put_n(st, 1, 1000, 0), 0);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        weft_store *c;
        if (weft_store_open(name, NULL, &c) != 0)
            _exit(10);
        weft__store_hook = allocated_hook;
        weft_store_id id = st_id(2);
        void *p;
        weft_store_create(c, &id, 1000, 0, &p);
        _exit(11); /* the hook never fired */
    }
    assert_int_equal(st_wait(kid), 128 + SIGKILL);

    weft__fault_arm(1, LONG_MAX);
    weft_store_id one = st_id(1), three = st_id(3);
    void *p;
    weft_store_stats s;
    assert_int_equal(weft_store_create(st, &three, 100, 0, &p), -ENOMEM);
    assert_int_equal(weft_store_check(st, NULL, 0), -ENOMEM);
    assert_int_equal(weft_store_delete(st, &one), -ENOMEM);
    assert_int_equal(weft_store_contains(st, &one), -ENOMEM);
    /* sealed objects stay readable: the lock-free get needs no repair */
    weft_store_obj obj;
    assert_int_equal(weft_store_get(st, &one, 0, &obj), 0);
    assert_true(st_verify(1, obj.data, obj.size));
    assert_int_equal(weft_store_release(st, &obj), 0);
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.repairs, 0);
    assert_true(weft__fault_disarm() >= 4);

    /* the repair is owed by the segment, not by this process: another
     * one, with memory, does it when it opens the store */
    kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        weft_store *c;
        if (weft_store_open(name, NULL, &c) != 0)
            _exit(10);
        weft_store_stats cs;
        if (weft_store_stats_get(c, &cs) != 0 || cs.repairs != 1)
            _exit(11);
        _exit(weft_store_check(c, NULL, 0) == 0 ? 0 : 12);
    }
    assert_int_equal(st_wait(kid), 0);
    char why[256];
    if (weft_store_check(st, why, sizeof why))
        fail_msg("after the repair: %s", why);
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.repairs, 1);
    assert_int_equal(weft_store_create(st, &three, 100, 0, &p), 0);
    assert_int_equal(weft_store_seal(st, &three), 0);
    assert_int_equal(weft_store_contains(st, &one), 1);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
#ifdef WEFT_ALLOC_FAULTS
        cmocka_unit_test_teardown(test_repair_out_of_memory, disarm_faults),
#endif
        cmocka_unit_test(test_death_after_spill_file_dropped),
        cmocka_unit_test(test_death_while_creating),
        cmocka_unit_test(test_death_after_seal),
        cmocka_unit_test(test_sigkill_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
