/* Deque stress: millions of spawns, pops and steals with several thieves;
 * every task runs exactly once (counted per task), no frame is run after
 * its sync (frames are poisoned after sync), and a full shared array (a
 * tiny stack makes a 4096-slot one) loses nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "work.h"

#define MAGIC 0x57454654u
#define POISON 0xDEADBEEFu

struct item {
    weft_task task;
    uint32_t magic;
    uint32_t id;
};

struct ctx {
    _Atomic uint32_t *hits;
    _Atomic long bad;
    uint32_t n; /* items per round */
};
static struct ctx G;

static void item_task(weft_task *t);

/* Spawn n items from a heap array, then sync them newest first. */
static void spawn_batch(struct item *it, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        it[i].magic = MAGIC;
        it[i].id = i;
        weft_spawn(&it[i].task, item_task);
    }
    for (uint32_t i = n; i-- > 0;) {
        weft_sync(&it[i].task);
        it[i].magic = POISON; /* a thief running this now would see it */
    }
}

static void item_task(weft_task *t)
{
    struct item *it = (struct item *)t;
    if (it->magic != MAGIC || it->id >= G.n) {
        atomic_fetch_add(&G.bad, 1);
        return;
    }
    atomic_fetch_add_explicit(&G.hits[it->id], 1, memory_order_relaxed);
}

static int root(void *arg)
{
    struct item *it = arg;
    spawn_batch(it, G.n);
    return 0;
}

static void run_rounds(int workers, size_t stack, uint32_t n, int rounds)
{
    weft_config c = weft_config_default();
    c.workers = workers;
    c.stack_size = stack;
    weft_runtime *rt = NULL;
    assert_int_equal(weft_runtime_create(&rt, &c), 0);
    struct item *it = calloc(n, sizeof *it);
    G.hits = calloc(n, sizeof *G.hits);
    assert_non_null(it);
    assert_non_null(G.hits);
    G.n = n;
    atomic_store(&G.bad, 0);
    for (int r = 0; r < rounds; r++) {
        assert_int_equal(weft_run(rt, root, it), 0);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t h = atomic_exchange(&G.hits[i], 0);
            if (h != 1)
                fail_msg("round %d: item %u ran %u times", r, i, h);
        }
    }
    assert_int_equal(atomic_load(&G.bad), 0);
    weft_worker_stats st[8];
    int k = weft_stats_workers(rt, st, 8);
    uint64_t won = 0;
    for (int i = 0; i < k; i++)
        won += st[i].steals_won;
    print_message("workers=%d items=%u rounds=%d steals=%llu\n", workers, n,
                  rounds, (unsigned long long)won);
    free(it);
    free(G.hits);
    weft_runtime_destroy(&rt);
}

static void test_wide_2(void **s) { (void)s; run_rounds(2, 0, 20000, 100 / test_scale()); }
static void test_wide_4(void **s) { (void)s; run_rounds(4, 0, 20000, 100 / test_scale()); }
/* 64 KiB stacks give the minimum shared array (4096 slots): of 50000
 * spawns in a row, thieves' requests would share more than it holds;
 * sharing stops at its end and the rest stay private. */
static void test_overflow(void **s) { (void)s; run_rounds(3, 64 << 10, 50000, 20 / test_scale()); }

/* Recursive fork-join under heavy stealing: fib answers stay exact. */
static int fib_root(void *arg) { *(long *)arg = fib(25); return 0; }
static void test_recursive(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(4, NULL);
    assert_non_null(rt);
    for (int i = 0; i < 40 / test_scale(); i++) {
        long r = 0;
        assert_int_equal(weft_run(rt, fib_root, &r), 0);
        assert_int_equal(r, 75025);
    }
    weft_runtime_destroy(&rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wide_2),
        cmocka_unit_test(test_wide_4),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_recursive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
