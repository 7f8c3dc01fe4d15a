/* fib, nqueens and UTS give the right answers at 1, 2, 3 and 8 workers and
 * under a synthetic 2 packages x 2 NUMA nodes x 4 cores topology. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "work.h"

struct job { int kind; long out; };

/* A runtime whose spawns run their children at once after `hold` frames
 * (weft_config.hold; -1: never, 0: the default). */
static weft_runtime *hold_runtime(int workers, int hold)
{
    weft_config c = weft_config_default();
    c.workers = workers;
    c.hold = hold;
    weft_runtime *rt = NULL;
    return weft_runtime_create(&rt, &c) == 0 ? rt : NULL;
}

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
            spawns += st[w].published;
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
    struct fib_frame f = { .n = 10 }, g = { .n = 11 };
    weft_spawn(&f.task, fib_task);
    weft_spawn(&g.task, fib_task);
    weft_sync(&f.task); /* out of order: g runs first, then f */
    assert_int_equal(f.r, 55);
    assert_int_equal(g.r, 89);
    g.r = 0;
    weft_sync(&g.task); /* already synced: ignored */
    weft_sync(&f.task); /* a second sync is ignored */
    assert_int_equal(g.r, 0);
    assert_int_equal(f.r, 55);
}

/* ---- the head-passing form (weft_spawn_at / weft_sync_at) ---- */

static long fib_at(weft_head h, int n);
static void fib_at_task(weft_task *t)
{
    struct fib_frame *f = (struct fib_frame *)t;
    f->r = fib_at(weft_head_of(t), f->n);
}
static long fib_at(weft_head h, int n)
{
    if (n < 2)
        return n;
    struct fib_frame a = {.n = n - 1};
    weft_head h2 = weft_spawn_at(h, &a.task, fib_at_task);
    long b = fib_at(h2, n - 2);
    h2 = weft_sync_at(h2, &a.task, fib_at_task);
    return a.r + b;
}

/* The misuses that <weft/task.h> defines for this form, on purpose, with
 * thieves about: syncs out of order, of a frame already synced or never
 * spawned, naming the wrong function; generic calls (weft_spawn and
 * weft_sync, a future) between a spawn and its sync; and a task that
 * starts from weft_head_now(), not its own frame. Each must cost speed
 * only, and the misuses be counted. */
static _Atomic int wrong_fn_ran, task_errors, misuses_made;
static void wrong_fn(weft_task *t)
{
    (void)t;
    atomic_fetch_add(&wrong_fn_ran, 1);
}
static int empty_job(weft_job *job, void *arg)
{
    (void)job, (void)arg;
    return 0;
}
/* A future submitted and collected inside the task: it may run other
 * tasks (help) while this task's children are still spawned. */
static void future_between(void)
{
    weft_future *f = NULL;
    if (weft_submit(weft_current_runtime(), empty_job, NULL, NULL, &f) ||
        weft_future_get(f, -1, NULL))
        atomic_fetch_add(&task_errors, 1);
    weft_future_release(f);
}
static long fib_misused(weft_head h, int n);
static void fib_misused_task(weft_task *t)
{
    struct fib_frame *f = (struct fib_frame *)t;
    f->r = fib_misused(weft_head_now(), f->n);
}
static long fib_misused(weft_head h, int n)
{
    if (n < 2)
        return n;
    struct fib_frame a = {.n = n - 1}, c = {.n = n - 2}, never;
    h = weft_spawn_at(h, &a.task, fib_misused_task);
    if (n % 5 == 0 && fib(n - 3) != fib_serial(n - 3)) /* generic spawns */
        atomic_fetch_add(&task_errors, 1);
    if (n % 7 == 0)
        future_between();
    h = weft_spawn_at(h, &c.task, fib_at_task);
    switch (n % 3) {
    case 0: /* in order, the second naming the wrong function */
        h = weft_sync_at(h, &c.task, fib_at_task);
        h = weft_sync_at(h, &a.task, wrong_fn);
        break;
    case 1: /* a first syncs c too (Cilk), and c then is a misuse */
        h = weft_sync_at(h, &a.task, fib_misused_task);
        h = weft_sync_at(h, &c.task, fib_at_task);
        atomic_fetch_add(&misuses_made, 1);
        break;
    default: /* a frame never spawned is a misuse, then in order */
        h = weft_sync_at(h, &never.task, fib_at_task);
        atomic_fetch_add(&misuses_made, 1);
        h = weft_sync_at(h, &c.task, fib_at_task);
        h = weft_sync_at(h, &a.task, fib_misused_task);
    }
    return a.r + c.r;
}

struct at_job { int n, misuse; long out; };
static int at_root(void *arg)
{
    struct at_job *j = arg;
    j->out = j->misuse ? fib_misused(weft_head_now(), j->n)
                       : fib_at(weft_head_now(), j->n);
    return 0;
}

static uint64_t misuses(weft_runtime *rt, int n)
{
    weft_worker_stats st[8];
    uint64_t m = 0;
    assert_int_equal(weft_stats_workers(rt, st, n), n);
    for (int i = 0; i < n; i++)
        m += st[i].misuses;
    return m;
}

static void test_head_form(void **state)
{
    (void)state;
    int n = 24 - test_scale() / 2;
    int counts[] = {1, 2, 3, 8};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        weft_runtime *rt = test_runtime(counts[i], NULL);
        assert_non_null(rt);
        for (int misuse = 0; misuse < 2; misuse++) {
            struct at_job j = {.n = misuse ? n - 6 : n, .misuse = misuse};
            atomic_store(&misuses_made, 0);
            uint64_t m0 = misuses(rt, counts[i]);
            assert_int_equal(weft_run(rt, at_root, &j), 0);
            assert_int_equal(j.out, fib_serial(j.n));
            assert_int_equal(misuses(rt, counts[i]) - m0,
                             (uint64_t)atomic_load(&misuses_made));
            assert_true(!misuse || atomic_load(&misuses_made) > 0);
        }
        weft_runtime_destroy(&rt);
    }
    assert_int_equal(atomic_load(&wrong_fn_ran), 0); /* t's own ran */
    assert_int_equal(atomic_load(&task_errors), 0);
    /* outside a task: serial */
    assert_int_equal(fib_at(weft_head_now(), 15), 610);
}

/* More spawns than the shared array holds (4096 slots with a 64 KiB
 * stack): when a thief asks, sharing stops at the array's end and the rest
 * stay private to the owner; each runs exactly once either way. */
static _Atomic int ran;
static void count_task(weft_task *t)
{
    (void)t;
    atomic_fetch_add(&ran, 1);
}
enum { MANY = 5000 }; /* over the 4096 slots of a 64 KiB stack */
static int many_root(void *arg)
{
    weft_task *frames = arg;
    weft_head h = weft_head_now();
    for (int i = 0; i < MANY; i++)
        h = weft_spawn_at(h, &frames[i], count_task);
    for (int i = MANY - 1; i >= 0; i--)
        h = weft_sync_at(h, &frames[i], count_task);
    return 0;
}

static void test_head_form_full_deque(void **state)
{
    (void)state;
    weft_config c = weft_config_default();
    c.workers = 2;
    c.stack_size = 64u << 10;
    weft_runtime *rt = NULL;
    assert_int_equal(weft_runtime_create(&rt, &c), 0);
    weft_task *frames = calloc(MANY, sizeof *frames);
    assert_non_null(frames);
    for (int rep = 0; rep < 3; rep++) {
        atomic_store(&ran, 0);
        assert_int_equal(weft_run(rt, many_root, frames), 0);
        assert_int_equal(atomic_load(&ran), MANY);
    }
    free(frames);
    weft_runtime_destroy(&rt);
}

/* A thief that finds every shared frame gone asks the owner to share more
 * (it sets the owner's ask, see <weft/task.h>); the owner's next spawn or
 * sync must see that and publish. Its children wait for each other, which
 * fork-join code may not do (a child run at its spawn would wait for
 * siblings not yet spawned): the runtime's hold is -1, so that every child
 * waits on the list, as the request protocol under test assumes. The root
 * spawns REQ_KIDS + 1 children: the first is shared at once (it goes onto an
 * empty list) and the first sync shares the oldest half of the rest (the
 * root starts with nothing stolen, so both happen without being asked);
 * those are no-ops. The other children can reach the second worker only
 * through a request: each one waits, up to a deadline, until children ran on
 * two workers, spawning and syncing a grandchild meanwhile, which serves a
 * request. A request lost would leave the thief hungry and every child on
 * the owner, waiting out its deadline. */
enum { REQ_KIDS = 32, REQ_NOOPS = (REQ_KIDS + 2) / 2 };
static _Atomic unsigned req_mask; /* bit per worker that ran a child */
static _Atomic int req_timeouts;

static void noop_task(weft_task *t) { (void)t; }

static void req_child(weft_task *t)
{
    (void)t;
    atomic_fetch_or(&req_mask, 1u << (weft_worker_index() & 31));
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (__builtin_popcount(atomic_load(&req_mask)) < 2 &&
           atomic_load(&req_timeouts) == 0) {
        weft_task g; /* fork-join work goes on: syncs serve requests */
        weft_spawn(&g, noop_task);
        weft_sync(&g);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 10) {
            atomic_fetch_add(&req_timeouts, 1);
            return;
        }
    }
}

static int req_root(void *arg)
{
    weft_task *f = arg;
    for (int i = 0; i <= REQ_KIDS; i++)
        weft_spawn(&f[i], i < REQ_NOOPS ? noop_task : req_child);
    for (int i = REQ_KIDS; i >= 0; i--)
        weft_sync(&f[i]);
    return 0;
}

static void test_split_request(void **state)
{
    (void)state;
    weft_runtime *rt = hold_runtime(2, -1);
    assert_non_null(rt);
    weft_task f[REQ_KIDS + 1];
    for (int rep = 0; rep < 3; rep++) {
        atomic_store(&req_mask, 0);
        assert_int_equal(weft_run(rt, req_root, f), 0);
        assert_int_equal(atomic_load(&req_timeouts), 0);
        assert_int_equal(__builtin_popcount(atomic_load(&req_mask)), 2);
    }
    weft_worker_stats st[2];
    assert_int_equal(weft_stats_workers(rt, st, 2), 2);
    assert_true(st[0].published + st[1].published > 0);
    weft_runtime_destroy(&rt);
}

/* A child must be stealable while its parent runs plain serial code:
 * spawn(A); B; sync(A) where B makes no weft call until the sync. The
 * parties below meet only if they run at once, each on its own worker:
 * the root's B waits for A, and A, itself stolen, spawns A1 and waits
 * in its own serial part A2 for A1 to be stolen by the third worker.
 * A child that only a sync could share would run after its sibling had
 * waited out the deadline: a frame spawned onto an empty list must go to
 * the asking thieves at once, as Lace does (weft__spawn_first). */
enum { MEET_PARTIES = 3 };
static _Atomic int meet_count, meet_timeouts;

static void meet(void)
{
    atomic_fetch_add(&meet_count, 1);
    struct timespec t0, now, nap = {0, 100000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&meet_count) < MEET_PARTIES) {
        nanosleep(&nap, NULL); /* leave the cores to the thieves */
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 10) {
            atomic_fetch_add(&meet_timeouts, 1);
            return;
        }
    }
}

static void meet_leaf(weft_task *t)
{
    (void)t;
    meet();
}

static void meet_inner(weft_task *t)
{
    (void)t;
    weft_task a1;
    weft_spawn(&a1, meet_leaf);
    meet(); /* A2: serial, no weft call */
    weft_sync(&a1);
}

static int meet_root(void *arg)
{
    (void)arg;
    weft_task a;
    weft_spawn(&a, meet_inner);
    meet(); /* B: serial, no weft call */
    weft_sync(&a);
    return 0;
}

static void test_serial_sibling(void **state)
{
    (void)state;
    weft_runtime *rt = test_runtime(MEET_PARTIES, NULL);
    assert_non_null(rt);
    for (int rep = 0; rep < 3; rep++) {
        atomic_store(&meet_count, 0);
        assert_int_equal(weft_run(rt, meet_root, NULL), 0);
        assert_int_equal(atomic_load(&meet_timeouts), 0);
        assert_int_equal(atomic_load(&meet_count), MEET_PARTIES);
    }
    weft_runtime_destroy(&rt);
}

/* A spawn serves thieves that asked, not only a sync: the root spawns a
 * party (shared at once: the list was empty) and, once that party runs
 * on a thief and the other thief has had time to ask (thieves spin for
 * seconds here instead of parking, so they keep asking), a second party;
 * then it meets them in plain serial code. The second party reaches the
 * asking thief only if that spawn served the request: the first frame
 * was still on the root's list, so the list was not empty. */
static _Atomic int prod_started;

static void prod_first(weft_task *t)
{
    (void)t;
    atomic_store(&prod_started, 1);
    meet();
}

static int prod_root(void *arg)
{
    (void)arg;
    weft_task a, b;
    weft_spawn(&a, prod_first);
    struct timespec t0, now, nap = {0, 1000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&prod_started)) { /* no weft call: serial code */
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 10)
            break;
    }
    for (int i = 0; i < 20; i++) /* the idle thief asks meanwhile */
        nanosleep(&nap, NULL);
    weft_spawn(&b, meet_leaf);
    meet(); /* the producer's serial work */
    weft_sync(&b);
    weft_sync(&a);
    return 0;
}

static void test_spawn_serves(void **state)
{
    (void)state;
    weft_config c = weft_config_default();
    c.workers = MEET_PARTIES;
    c.spin_us = 10000000;
    weft_runtime *rt = NULL;
    assert_int_equal(weft_runtime_create(&rt, &c), 0);
    for (int rep = 0; rep < 3; rep++) {
        atomic_store(&meet_count, 0);
        atomic_store(&prod_started, 0);
        assert_int_equal(weft_run(rt, prod_root, NULL), 0);
        assert_int_equal(atomic_load(&meet_timeouts), 0);
        assert_int_equal(atomic_load(&meet_count), MEET_PARTIES);
    }
    weft_runtime_destroy(&rt);
}

/* Syncs out of order while thieves take frames: syncing a frame that is
 * not the newest first syncs every newer one (Cilk's semantics), and a
 * later sync of one of those is a misuse, ignored and counted. With the
 * default hold most kids run at their spawn: complete from the start, so
 * a sync of one after an older kid's is not seen as a misuse (only a
 * second sync of its own is); the count is then at most the planned one,
 * and each kid still runs once with the right result. Which
 * syncs are misuses depends only on the order, not on where the frames
 * ran or whether they were shared and taken back (a sync that ran an
 * older frame too early, or lost one, changes the count or the runs). */
enum { OOO_KIDS = 48 };
struct ooo_kid {
    struct fib_frame f; /* f.r: fib(f.n), checked */
    _Atomic int runs;
};
static void ooo_task(weft_task *t)
{
    struct ooo_kid *k = (struct ooo_kid *)t;
    atomic_fetch_add(&k->runs, 1);
    k->f.r = fib(k->f.n);
}
struct ooo_job {
    unsigned seed;
    struct ooo_kid kid[OOO_KIDS];
    int order[OOO_KIDS * 2 + 1]; /* random kids, then newest first */
    int norder, expect_misuses;
};
static int ooo_root(void *arg)
{
    struct ooo_job *j = arg;
    for (int i = 0; i < OOO_KIDS; i++) {
        j->kid[i].f.n = 8 + i % 9;
        atomic_store(&j->kid[i].runs, 0);
        weft_spawn(&j->kid[i].f.task, ooo_task);
    }
    for (int i = 0; i < j->norder; i++)
        weft_sync(&j->kid[j->order[i]].f.task);
    return 0;
}
static void ooo_plan(struct ooo_job *j)
{
    bool synced[OOO_KIDS] = {false};
    j->norder = 0;
    j->expect_misuses = 0;
    for (int i = 0; i < OOO_KIDS * 2; i++) {
        int k = (int)(rand_r(&j->seed) % OOO_KIDS);
        if (i >= OOO_KIDS && i % 2) /* the rest in order, newest first */
            for (k = OOO_KIDS - 1; k > 0 && synced[k]; k--)
                ;
        j->order[j->norder++] = k;
        if (synced[k]) {
            j->expect_misuses++;
            continue;
        }
        for (int m = k; m < OOO_KIDS; m++)
            synced[m] = true;
    }
    for (int k = 0; k < OOO_KIDS; k++) /* leave none unsynced */
        if (!synced[k]) {
            j->order[j->norder++] = 0;
            break;
        }
}
static void test_out_of_order(void **state)
{
    (void)state;
    int counts[] = {1, 2, 3, 1, 2, 3};
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        bool listed = c < 3; /* hold -1: every kid on the list */
        weft_runtime *rt = hold_runtime(counts[c], listed ? -1 : 0);
        assert_non_null(rt);
        struct ooo_job *j = calloc(1, sizeof *j);
        assert_non_null(j);
        for (int rep = 0; rep < 200 / test_scale(); rep++) {
            j->seed = (unsigned)(rep * 7919 + 1);
            ooo_plan(j);
            uint64_t m0 = misuses(rt, counts[c]);
            assert_int_equal(weft_run(rt, ooo_root, j), 0);
            for (int k = 0; k < OOO_KIDS; k++) {
                if (atomic_load(&j->kid[k].runs) != 1)
                    fail_msg("workers %d rep %d kid %d runs %d", counts[c],
                             rep, k, atomic_load(&j->kid[k].runs));
                assert_int_equal(j->kid[k].f.r, fib_serial(j->kid[k].f.n));
            }
            uint64_t made = misuses(rt, counts[c]) - m0;
            if (listed)
                assert_int_equal(made, (uint64_t)j->expect_misuses);
            else
                assert_true(made <= (uint64_t)j->expect_misuses);
        }
        free(j);
        weft_runtime_destroy(&rt);
    }
}

/* Children that run at their spawn (<weft/task.h>): on one worker, with
 * no thief asking, a loop of spawns in a task run by a sync keeps its
 * first `hold` children on the list and runs the later ones inside
 * weft_spawn; with a hold of -1 none runs there, and in a task that the
 * worker started itself (the root) none does either, whatever the hold.
 * A child run at its spawn and synced twice is a misuse, counted. */
enum { AT_KIDS = 12 };
static _Atomic int at_spawning = -1; /* the spawn the loop is inside */
static _Atomic int at_where[AT_KIDS]; /* 1: inside its spawn, 2: later */
struct at_kid { weft_task task; int i; };
struct at_loop { weft_task task; struct at_kid *k; int n; weft_task_fn fn; };

static void at_kid_task(weft_task *t)
{
    struct at_kid *k = (struct at_kid *)t;
    atomic_store(&at_where[k->i], atomic_load(&at_spawning) == k->i ? 1 : 2);
}

/* Spawn l->n kids, sync the newest twice (the second a misuse, which a
 * test may count), then the rest newest first. */
static void at_loop_task(weft_task *t)
{
    struct at_loop *l = (struct at_loop *)t;
    for (int i = 0; i < l->n; i++) {
        l->k[i].i = i;
        if (i < AT_KIDS)
            atomic_store(&at_where[i], 0);
        atomic_store(&at_spawning, i);
        weft_spawn(&l->k[i].task, l->fn);
        atomic_store(&at_spawning, -1);
    }
    weft_sync(&l->k[l->n - 1].task);
    weft_sync(&l->k[l->n - 1].task);
    for (int i = l->n - 2; i >= 0; i--)
        weft_sync(&l->k[i].task);
}

/* Run the loop in a task of its own, synced by the root (nested == 1), or
 * in the root itself. A first spawn, shared because a root starts with
 * thieves deemed hungry, comes before it. */
struct at_run { struct at_loop loop; int nested; };
static int ras_root(void *arg)
{
    struct at_run *r = arg;
    weft_task first;
    weft_spawn(&first, noop_task);
    if (r->nested) {
        weft_spawn(&r->loop.task, at_loop_task);
        weft_sync(&r->loop.task);
    } else {
        at_loop_task(&r->loop.task);
    }
    weft_sync(&first);
    return 0;
}

static void test_run_at_spawn(void **state)
{
    (void)state;
    int holds[] = {0, 2, 5, -1, 0}, expect[] = {4, 2, 5, AT_KIDS, AT_KIDS};
    for (size_t h = 0; h < sizeof holds / sizeof *holds; h++) {
        weft_runtime *rt = hold_runtime(1, holds[h]);
        assert_non_null(rt);
        struct at_kid k[AT_KIDS];
        struct at_run r = {.loop = {.k = k, .n = AT_KIDS, .fn = at_kid_task},
                           .nested = h < 4};
        uint64_t m0 = misuses(rt, 1);
        assert_int_equal(weft_run(rt, ras_root, &r), 0);
        assert_int_equal(misuses(rt, 1) - m0, 1);
        int listed = 0;
        while (listed < AT_KIDS && atomic_load(&at_where[listed]) == 2)
            listed++;
        for (int i = listed; i < AT_KIDS; i++)
            if (atomic_load(&at_where[i]) != 1)
                fail_msg("hold %d: kid %d ran %d", holds[h], i,
                         atomic_load(&at_where[i]));
        if (listed != expect[h])
            fail_msg("hold %d, nested %d: %d kids waited for their syncs",
                     holds[h], r.nested, listed);
        weft_runtime_destroy(&rt);
    }
}

/* A child run at its spawn that leaves a thief waiting makes its worker
 * keep more frames back (weft__ran_starved): in a loop of children that
 * each sleep 3 ms and make no weft call, the thief asks while the loop
 * runs one inside its spawn, and from then on the loop's worker keeps
 * 16, then 64 frames, so that few run at their spawns. Without that,
 * about every other child ran there (each one the thief waited out). */
enum { ST_KIDS = 64 };
static _Atomic int st_inside;

static void st_kid_task(weft_task *t)
{
    struct at_kid *k = (struct at_kid *)t;
    if (atomic_load(&at_spawning) == k->i)
        atomic_fetch_add(&st_inside, 1);
    struct timespec nap = {0, 3000000};
    nanosleep(&nap, NULL);
}

static void test_starved_hold(void **state)
{
    (void)state;
    weft_runtime *rt = hold_runtime(2, 0);
    assert_non_null(rt);
    struct at_kid k[ST_KIDS];
    struct at_run r = {.loop = {.k = k, .n = ST_KIDS, .fn = st_kid_task},
                       .nested = 1};
    atomic_store(&st_inside, 0);
    uint64_t m0 = misuses(rt, 2);
    assert_int_equal(weft_run(rt, ras_root, &r), 0);
    weft_worker_stats st[2];
    assert_int_equal(weft_stats_workers(rt, st, 2), 2);
    /* the loop's second sync of its newest kid is a misuse whether that
     * kid ran at its spawn or waited on the list */
    assert_int_equal(misuses(rt, 2) - m0, 1);
    if (st[0].starved + st[1].starved == 0 ||
        atomic_load(&st_inside) > ST_KIDS / 4)
        fail_msg("%d of %d kids ran at their spawns, %llu starved",
                 atomic_load(&st_inside), ST_KIDS,
                 (unsigned long long)(st[0].starved + st[1].starved));
    weft_runtime_destroy(&rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workers),
        cmocka_unit_test(test_synthetic_numa),
        cmocka_unit_test(test_outside_task),
        cmocka_unit_test(test_head_form),
        cmocka_unit_test(test_head_form_full_deque),
        cmocka_unit_test(test_split_request),
        cmocka_unit_test(test_serial_sibling),
        cmocka_unit_test(test_spawn_serves),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_run_at_spawn),
        cmocka_unit_test(test_starved_hold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
