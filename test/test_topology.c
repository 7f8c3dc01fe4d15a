/* Hierarchical stealing on a synthetic 2 packages x 2 NUMA nodes x 4 cores
 * machine: each worker's victims are ordered nearest first (its own node,
 * then its package, then the rest), and under load thieves take most of
 * their work from their own node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "internal.h"
#include "work.h"

#define TOPO "package:2 numa:2 core:4 pu:1"

static void test_victim_order(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(0, TOPO);
    assert_non_null(rt);
    assert_int_equal(rt->nworkers, 16);
    for (int i = 0; i < 16; i++) {
        weft__worker *w = rt->workers[i];
        assert_int_equal(w->numa, i / 4);
        assert_int_equal(w->near_end, 3);
        for (int k = 0; k < 15; k++) {
            int v = w->victims[k];
            if (k < 3) /* same NUMA node */
                assert_int_equal(v / 4, i / 4);
            else if (k < 7) /* same package, other node */
                assert_int_equal(v / 8, i / 8);
            else /* other package */
                assert_int_not_equal(v / 8, i / 8);
        }
    }
    weft_runtime_destroy(&rt);
}

/* Placement on a larger machine with two PUs per core: one worker per
 * core by default, on the core's first PU, and round-robin over the
 * cores when there are more workers than cores. */
#define TOPO_SMT "package:2 numa:2 core:16 pu:2"

static void check_placement(int workers, int expect)
{
    weft_runtime *rt = test_runtime(workers, TOPO_SMT);
    assert_non_null(rt);
    assert_int_equal(rt->nworkers, expect);
    for (int i = 0; i < expect; i++) {
        weft__worker *w = rt->workers[i];
        int core = i % 64;
        assert_non_null(w->pu);
        assert_int_equal(w->pu->logical_index, 2 * core);
        assert_int_equal(w->numa, core / 16);
    }
    weft_runtime_destroy(&rt);
}

static void test_smt_placement(void **s)
{
    (void)s;
    check_placement(0, 64);
    check_placement(80, 80);
}

static int uts_root(void *a) { *(long *)a = uts(7, 0); return 0; }

/* Steals from the own node, out of all steals, over 10 UTS runs on a
 * fresh 16-worker runtime. */
static void measure(uint64_t *near, uint64_t *won)
{
    weft_runtime *rt = test_runtime(0, TOPO);
    assert_non_null(rt);
    long expect = uts_serial(7, 0), r = 0;
    int rc = 0, bad = -1;
    for (int i = 0; i < 10 && bad < 0; i++) {
        r = -1;
        rc = weft_run(rt, uts_root, &r);
        if (rc != 0 || r != expect)
            bad = i;
    }
    weft_worker_stats st[16];
    int n = weft_stats_workers(rt, st, 16);
    for (int i = 0; i < n; i++) {
        *near += st[i].steals_near;
        *won += st[i].steals_won;
    }
    /* destroyed before any check: a failed one must not leak the runtime
     * (under ASan the leak report at exit hid the failure's message) */
    weft_runtime_destroy(&rt);
    if (bad >= 0)
        fail_msg("run %d of 10: weft_run returned %d, uts counted %ld nodes, "
                 "the serial twin %ld", bad, rc, r, expect);
    assert_int_equal(n, 16);
}

/* 16 workers share 2 real cores here, so any one run is at the mercy of
 * the OS scheduler: the share is summed over 4 runtimes, and over up to 3
 * such rounds while it falls short (under ThreadSanitizer, with another
 * test on the other core, one round measured 33%). A random victim would
 * be on the own node 3 times in 15 (20%): the sum must reach 1.5 times
 * that, which random victims do not, however many rounds. */
static void test_prefers_own_node(void **s)
{
    (void)s;
    uint64_t near = 0, won = 0;
    for (int round = 0; round < 3 && !(won && near * 10 > won * 3);
         round++)
        for (int i = 0; i < 4; i++)
            measure(&near, &won);
    print_message("steals: %llu, from own node: %llu\n",
                  (unsigned long long)won, (unsigned long long)near);
    assert_true(won > 0);
    assert_true(near * 10 > won * 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_victim_order),
        cmocka_unit_test(test_smt_placement),
        cmocka_unit_test(test_prefers_own_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
