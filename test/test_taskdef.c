/* Typed tasks (<weft/taskdef.h>): right answers at 1, 2, 3 and 8 workers
 * and under a synthetic NUMA topology, for one to four arguments and void
 * tasks; the misuses the generic form defines (out of order, twice, never
 * spawned) give the same outcomes here, with thieves about; spawns in a
 * loop past the shared array's end; and a call outside the pool runs
 * serially. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <weft/taskdef.h>

#include "work.h"

/* ---- fib, split as <weft/taskdef.h> advises: leaf test, expansion */

WEFT_TASK_DECL_1(long, tfib_node, int, n);

WEFT_TASK_1(long, tfib, int, n)
{
    return n < 2 ? n : WEFT_CALL(tfib_node, n);
}

WEFT_TASK_1(long, tfib_node, int, n)
{
    tfib_frame a;
    WEFT_SPAWN(tfib, &a, n - 1);
    long b = WEFT_CALL(tfib, n - 2);
    return WEFT_SYNC(tfib, &a) + b;
}

/* ---- nqueens: three arguments, one a struct by value, frames in an
 * array spawned in a loop and synced newest first */

typedef struct board { int8_t col[NQ_MAX]; } board;

static int queen_ok(const board *b, int row, int col)
{
    for (int r = 0; r < row; r++) {
        int c = b->col[r];
        if (c == col || abs(c - col) == row - r)
            return 0;
    }
    return 1;
}

WEFT_TASK_3(long, tqueens, int, n, int, row, board, b)
{
    if (row == n)
        return 1;
    tqueens_frame kids[NQ_MAX];
    int k = 0;
    for (int col = 0; col < n; col++) {
        if (!queen_ok(&b, row, col))
            continue;
        board next = b;
        next.col[row] = (int8_t)col;
        WEFT_SPAWN(tqueens, &kids[k], n, row + 1, next);
        k++;
    }
    long s = 0;
    while (k-- > 0)
        s += WEFT_SYNC(tqueens, &kids[k]);
    return s;
}

/* ---- a void task with two arguments: sums a range into an atomic */

static _Atomic long tsum_total;

WEFT_VOID_TASK_2(tsum, long, lo, long, hi)
{
    if (hi - lo <= 64) {
        long s = 0;
        for (long i = lo; i < hi; i++)
            s += i;
        atomic_fetch_add_explicit(&tsum_total, s, memory_order_relaxed);
        return;
    }
    long mid = lo + (hi - lo) / 2;
    tsum_frame left;
    WEFT_SPAWN(tsum, &left, lo, mid);
    WEFT_CALL(tsum, mid, hi);
    WEFT_SYNC(tsum, &left);
}

/* ---- a tree of four arguments: fan children per node down to depth */

WEFT_TASK_4(long, ttree, uint64_t, seed, int, depth, int, max_depth, int, fan)
{
    if (depth == max_depth)
        return 1;
    ttree_frame kids[4];
    int nk = (int)(seed % (uint64_t)fan) + 1;
    for (int i = 0; i < nk; i++)
        WEFT_SPAWN(ttree, &kids[i], seed * 6364136223846793005u + (uint64_t)i,
                   depth + 1, max_depth, fan);
    long count = 1;
    for (int i = nk - 1; i >= 0; i--)
        count += WEFT_SYNC(ttree, &kids[i]);
    return count;
}

static long ttree_serial(uint64_t seed, int depth, int max_depth, int fan)
{
    if (depth == max_depth)
        return 1;
    int nk = (int)(seed % (uint64_t)fan) + 1;
    long count = 1;
    for (int i = 0; i < nk; i++)
        count += ttree_serial(seed * 6364136223846793005u + (uint64_t)i,
                              depth + 1, max_depth, fan);
    return count;
}

struct all_job { int fib_n, queens_n, tree_depth; long sum_n; long out[4]; };

static int all_root(void *arg)
{
    struct all_job *j = arg;
    board empty;
    memset(&empty, 0, sizeof empty);
    j->out[0] = tfib(j->fib_n);
    j->out[1] = tqueens(j->queens_n, 0, empty);
    atomic_store(&tsum_total, 0);
    tsum(0, j->sum_n);
    j->out[2] = atomic_load(&tsum_total);
    j->out[3] = ttree(12345, 0, j->tree_depth, 4);
    return 3;
}

static uint64_t misuses(weft_runtime *rt)
{
    weft_worker_stats st[16];
    int n = weft_stats_workers(rt, st, 16);
    uint64_t m = 0;
    for (int i = 0; i < n; i++)
        m += st[i].misuses;
    return m;
}

static void check_all(weft_runtime *rt)
{
    int scale = test_scale();
    struct all_job j = {
        .fib_n = 24 - scale / 2,
        .queens_n = scale > 1 ? 8 : 9,
        .tree_depth = scale > 1 ? 8 : 10,
        .sum_n = 1000000 / scale,
    };
    uint64_t m0 = misuses(rt);
    for (int rep = 0; rep < 3; rep++) {
        memset(j.out, 0, sizeof j.out);
        assert_int_equal(weft_run(rt, all_root, &j), 3);
        assert_int_equal(j.out[0], fib_serial(j.fib_n));
        assert_int_equal(j.out[1], j.queens_n == 8 ? 92 : 352);
        assert_int_equal(j.out[2], j.sum_n * (j.sum_n - 1) / 2);
        assert_int_equal(j.out[3], ttree_serial(12345, 0, j.tree_depth, 4));
    }
    assert_int_equal(misuses(rt), m0); /* none made, none counted */
}

static void test_workers(void **state)
{
    (void)state;
    int counts[] = {1, 2, 3, 8};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        weft_runtime *rt = test_runtime(counts[i], NULL);
        assert_non_null(rt);
        check_all(rt);
        weft_runtime_destroy(&rt);
    }
}

static void test_synthetic_numa(void **state)
{
    (void)state;
    weft_runtime *rt = test_runtime(0, "package:2 numa:2 core:4 pu:1");
    assert_non_null(rt);
    check_all(rt);
    weft_runtime_destroy(&rt);
}

/* Outside the pool a typed task runs serially, as every form does. */
static void test_outside(void **state)
{
    (void)state;
    assert_int_equal(tfib(15), 610);
    board empty;
    memset(&empty, 0, sizeof empty);
    assert_int_equal(tqueens(6, 0, empty), 4);
}

/* ---- misuses, on purpose, with thieves about: each child must run
 * exactly once and give its answer, and the misuses be counted. */

static _Atomic int misuses_made;

WEFT_TASK_DECL_2(long, tmis_node, int, n, int, how);

WEFT_TASK_2(long, tmis, int, n, int, how)
{
    return n < 2 ? n : WEFT_CALL(tmis_node, n, how);
}

WEFT_TASK_2(long, tmis_node, int, n, int, how)
{
    tmis_frame a, c, never;
    WEFT_SPAWN(tmis, &a, n - 1, how + 1);
    WEFT_SPAWN(tmis, &c, n - 2, how + 2);
    long r;
    switch (how % 4) {
    case 0: /* in order */
        r = WEFT_SYNC(tmis, &c);
        r += WEFT_SYNC(tmis, &a);
        break;
    case 1: /* a first: syncs c too (Cilk); c's own sync is then a
             * misuse, which gives the result c's frame already has */
        r = WEFT_SYNC(tmis, &a);
        r += WEFT_SYNC(tmis, &c);
        atomic_fetch_add(&misuses_made, 1);
        break;
    case 2: /* a frame never spawned, then in order */
        (void)WEFT_SYNC(tmis, &never);
        atomic_fetch_add(&misuses_made, 1);
        r = WEFT_SYNC(tmis, &c);
        r += WEFT_SYNC(tmis, &a);
        break;
    default: /* in order, then c synced a second time */
        r = WEFT_SYNC(tmis, &c);
        r += WEFT_SYNC(tmis, &a);
        (void)WEFT_SYNC(tmis, &c);
        atomic_fetch_add(&misuses_made, 1);
    }
    return r;
}

struct mis_job { int n; long out; };

static int mis_root(void *arg)
{
    struct mis_job *j = arg;
    j->out = tmis(j->n, 0);
    return 0;
}

static void test_misuse(void **state)
{
    (void)state;
    int counts[] = {1, 2, 3};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        weft_runtime *rt = test_runtime(counts[i], NULL);
        assert_non_null(rt);
        for (int rep = 0; rep < 3; rep++) {
            struct mis_job j = {.n = 18 - test_scale() / 2};
            atomic_store(&misuses_made, 0);
            uint64_t m0 = misuses(rt);
            assert_int_equal(weft_run(rt, mis_root, &j), 0);
            assert_int_equal(j.out, fib_serial(j.n));
            assert_true(atomic_load(&misuses_made) > 0);
            assert_int_equal(misuses(rt) - m0,
                             (uint64_t)atomic_load(&misuses_made));
        }
        weft_runtime_destroy(&rt);
    }
}

/* ---- more spawns in one loop than the shared array holds: sharing stops
 * at its end, the rest stay private; each child runs exactly once. */

enum { MANY = 5000 };
static _Atomic int ran[MANY];

WEFT_VOID_TASK_1(tmark, int, i)
{
    atomic_fetch_add(&ran[i], 1);
}

WEFT_VOID_TASK_1(tmany, tmark_frame *, frames)
{
    for (int i = 0; i < MANY; i++)
        WEFT_SPAWN(tmark, &frames[i], i);
    for (int i = MANY - 1; i >= 0; i--)
        WEFT_SYNC(tmark, &frames[i]);
}

static int many_root(void *arg)
{
    tmany(arg);
    return 0;
}

static void test_many(void **state)
{
    (void)state;
    tmark_frame *frames = calloc(MANY, sizeof *frames);
    assert_non_null(frames);
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    for (int rep = 0; rep < 5; rep++) {
        for (int i = 0; i < MANY; i++)
            atomic_store(&ran[i], 0);
        assert_int_equal(weft_run(rt, many_root, frames), 0);
        for (int i = 0; i < MANY; i++)
            if (atomic_load(&ran[i]) != 1)
                fail_msg("rep %d child %d ran %d times", rep, i,
                         atomic_load(&ran[i]));
    }
    weft_runtime_destroy(&rt);
    free(frames);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workers),
        cmocka_unit_test(test_synthetic_numa),
        cmocka_unit_test(test_outside),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
