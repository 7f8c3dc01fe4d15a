/* fib, nqueens and UTS give the right answers at 1, 2, 3 and 8 workers and
 * under a synthetic 2 packages x 2 NUMA nodes x 4 cores topology. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "work.h"

struct job { int kind; long out; };

static int run_job(void *arg)
{
    struct job *j = arg;
    int8_t cols[NQ_MAX] = {0};
    switch (j->kind) {
    case 0: j->out = fib(24 - test_scale() / 2); break;
    case 1: j->out = nqueens(test_scale() > 1 ? 8 : 9, 0, cols); break;
    default: j->out = uts(42, 0); break;
    }
    return 7; /* weft_run returns the task's own status */
}

static void check_all(weft_runtime *rt)
{
    int8_t cols[NQ_MAX] = {0};
    long expect[3] = {
        fib_serial(24 - test_scale() / 2),
        test_scale() > 1 ? 92 : 352,
        uts_serial(42, 0),
    };
    (void)cols;
    for (int k = 0; k < 3; k++) {
        for (int rep = 0; rep < 3; rep++) {
            struct job j = { .kind = k };
            assert_int_equal(weft_run(rt, run_job, &j), 7);
            assert_int_equal(j.out, expect[k]);
        }
    }
}

static void test_workers(void **state)
{
    (void)state;
    int counts[] = {1, 2, 3, 8};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        weft_runtime *rt = test_runtime(counts[i], NULL);
        assert_non_null(rt);
        assert_int_equal(weft_runtime_workers(rt), counts[i]);
        check_all(rt);
        weft_worker_stats st[8];
        int n = weft_stats_workers(rt, st, 8);
        assert_int_equal(n, counts[i]);
        uint64_t spawns = 0;
        for (int w = 0; w < n; w++)
            spawns += st[w].spawns;
        assert_true(spawns > 0);
        assert_int_equal(weft_runtime_destroy(&rt), 0);
        assert_null(rt);
    }
}

static void test_synthetic_numa(void **state)
{
    (void)state;
    weft_runtime *rt = test_runtime(0, "package:2 numa:2 core:4 pu:1");
    assert_non_null(rt);
    assert_int_equal(weft_runtime_workers(rt), 16);
    check_all(rt);
    weft_worker_stats st[16];
    assert_int_equal(weft_stats_workers(rt, st, 16), 16);
    for (int w = 0; w < 16; w++) {
        assert_int_equal(st[w].numa_node, w / 4);
        assert_int_equal(st[w].cpu, -1); /* synthetic: never pinned */
    }
    weft_runtime_destroy(&rt);
}

/* Outside a task spawn runs the child at once and sync does nothing. */
static void test_outside_task(void **state)
{
    (void)state;
    assert_int_equal(fib(15), 610);
    struct fib_frame f = { .n = 10 };
    weft_spawn(&f.task, fib_task);
    assert_int_equal(f.r, 55);
    weft_sync(&f.task);
    weft_sync(&f.task); /* a second sync is ignored */
    assert_int_equal(f.r, 55);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workers),
        cmocka_unit_test(test_synthetic_numa),
        cmocka_unit_test(test_outside_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
