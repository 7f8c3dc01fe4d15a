/* One million actors: spawned, each sent a message, stopped (half
 * gracefully, half at once) and released, with the runtime's counters
 * checked at each step; then the memory an idle actor costs, measured as
 * the growth of the resident set per actor (checked against the 256-byte
 * budget only in builds without sanitizers, whose allocators add their
 * own redzones). WEFT_ACTORS_N overrides the count. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_future_util.h"

static _Atomic long received, finis;

static int tiny_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)cx;
    (void)msg;
    (void)n;
    ++*(long *)st;
    atomic_fetch_add_explicit(&received, 1, memory_order_relaxed);
    return 0;
}

static void tiny_fini(void *st)
{
    (void)st;
    atomic_fetch_add_explicit(&finis, 1, memory_order_relaxed);
}

static const weft_actor_class TINY = {
    .state_size = sizeof(long),
    .receive = tiny_recv,
    .fini = tiny_fini,
};

static long count_of(void)
{
    const char *s = getenv("WEFT_ACTORS_N");
    return s && atol(s) > 0 ? atol(s) : 1000000;
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

static int sanitized(void)
{
    const char *s = getenv("WEFT_TEST_SCALE");
    return s && atoi(s) > 1;
}

static void wait_actors(weft_runtime *rt, uint64_t n)
{
    weft_runtime_stats st;
    int64_t end = now_ns() + LONG_WAIT;
    do {
        assert_int_equal(weft_stats_runtime(rt, &st), 0);
        if (st.actors == n && st.mailbox_backlog == 0)
            return;
        sleep_ns(MS);
    } while (now_ns() < end);
    assert_int_equal(st.actors, n);
}

static void test_million(void **s)
{
    (void)s;
    long n = count_of();
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_actor **as = calloc((size_t)n, sizeof *as);
    assert_non_null(as);
    /* warm the allocator so the measurement sees actors, not arenas */
    weft_actor *warm = NULL;
    assert_int_equal(weft_actor_spawn(rt, &TINY, NULL, NULL, &warm), 0);
    long before = rss_bytes();
    for (long i = 0; i < n; i++)
        assert_int_equal(weft_actor_spawn(rt, &TINY, NULL, NULL, &as[i]), 0);
    long after = rss_bytes();
    wait_actors(rt, (uint64_t)n + 1);
    double per = (double)(after - before) / (double)n;
    printf("# %ld idle actors: %.1f bytes each (state %zu bytes)\n", n, per,
           sizeof(long));
    if (!sanitized() && before > 0 && n >= 100000)
        assert_true(per <= 256.0 + (double)sizeof(long));

    for (long i = 0; i < n; i++)
        assert_int_equal(weft_send(as[i], &i, sizeof i, 0), 0);
    for (long i = 0; i < n; i++) {
        int mode = i & 1 ? WEFT_STOP_NOW : WEFT_STOP_GRACEFUL;
        assert_int_equal(weft_actor_stop(as[i], mode, NULL), 0);
        assert_int_equal(weft_actor_release(as[i]), 0);
    }
    wait_actors(rt, 1);
    assert_int_equal(atomic_load(&finis), n);
    /* every graceful one handled its message; the others may have */
    assert_true(atomic_load(&received) >= n / 2);
    assert_true(atomic_load(&received) <= n);
    weft_runtime_stats st;
    assert_int_equal(weft_stats_runtime(rt, &st), 0);
    assert_int_equal(st.messages_sent, (uint64_t)n);
    assert_int_equal(st.messages_handled, (uint64_t)atomic_load(&received));
    assert_int_equal(st.mailbox_backlog, 0);
    weft_actor_release(warm);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
    assert_int_equal(atomic_load(&finis), n + 1);
    free(as);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_million),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
