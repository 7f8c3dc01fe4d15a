/* Out of memory is an error, never a crash, a hang or a leak.
 *
 * Each scenario below is a short, complete use of one subsystem (create,
 * use, check the answers, tear down). The sweep runs it with the 1st
 * allocation of the runtime failing, then the 2nd, and so on, until a run
 * makes fewer allocations than the one armed; after each, once more with
 * every allocation from the nth on failing, which is what a process that
 * is really out of memory sees (the loop transport's nodes: a burst of
 * 64, see test_net; over tcp, every one). Every run must return 0 with
 * the right answers, or a negative errno, and leave nothing behind:
 * AddressSanitizer's leak check at exit sees a lost block, and an alarm
 * turns a hang into a failure that names the scenario and the n.
 *
 * Chasing a failure: WEFT_FAULT_ONLY=<scenario> WEFT_FAULT_FROM=<n> run
 * just that sweep from there, and WEFT_FAULT_TRACE=1 prints a stack at
 * each injected failure, after a line that names the run.
 *
 * Needs a build with -Dalloc_faults=true (tools/dev turns it on for the
 * sanitizer builds, where this test matters); elsewhere it skips. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "alloc.h"
#include "internal.h" /* weft__help, weft__deque_starved: forcing a steal */
#include "net/remote_square.h"
#include "store/store_util.h"
#include "work.h"

#ifdef WEFT_ALLOC_FAULTS

/* Where the sweep is, for the alarm's message. */
static const char *cur_name;
static long cur_n, cur_count;

/* "allocation 7" or "allocations 7.." (every later one) or "7..70". */
static void describe(char *buf, size_t size, long n, long count)
{
    if (count == 1)
        snprintf(buf, size, "allocation %ld", n);
    else if (count == LONG_MAX)
        snprintf(buf, size, "allocations %ld.. (all later ones)", n);
    else
        snprintf(buf, size, "allocations %ld..%ld", n, n + count - 1);
}

static void on_alarm(int sig)
{
    (void)sig;
    char what[64], msg[160];
    describe(what, sizeof what, cur_n, cur_count);
    int k = snprintf(msg, sizeof msg, "HANG: scenario %s, %s failing\n",
                     cur_name ? cur_name : "?", what);
    if (k > 0)
        (void)!write(2, msg, (size_t)k);
    _exit(1);
}

/* A scenario returns 0 (everything worked and every answer was right),
 * a negative errno (a call failed cleanly), or WRONG (a call said it
 * worked and its answer was wrong: the sweep fails). */
#define WRONG 1000
typedef int (*scenario_fn)(void);

static weft_runtime *shared_rt; /* made outside the faults, for scenarios
                                 * that test one subsystem */

/* A failed call must say why with an errno the caller can act on. */
static bool acceptable(int rc)
{
    /* an actor whose receive failed for want of memory may have died of
     * it (no restarts asked for): later sends and asks say so */
    return rc == 0 || rc == -ENOMEM || rc == -EAGAIN ||
           rc == WEFT_ACTOR_DEAD;
}

static int run_once(scenario_fn fn, long n, long count, long *hits)
{
    cur_n = n;
    cur_count = count;
    if (getenv("WEFT_FAULT_TRACE")) { /* where each run's traces start */
        char what[64];
        describe(what, sizeof what, n, count);
        fprintf(stderr, "--- %s: %s failing\n", cur_name, what);
    }
    alarm(60);
    weft__fault_arm(n, count);
    int rc = fn();
    *hits = weft__fault_disarm();
    alarm(0);
    return rc;
}

static void check(const char *name, int rc, long n, long count)
{
    if (rc != WRONG && acceptable(rc))
        return;
    char what[64];
    describe(what, sizeof what, n, count);
    fail_msg("%s: %s failing: %d (%s)", name, what, rc,
             rc == WRONG ? "wrong answer" : strerror(-rc));
}

/* Sweep fn: fail allocation 1, 2, ... alone, then with the `then` - 1
 * after it (LONG_MAX: every later one), until fn no longer reaches the
 * armed allocation. */
static void sweep(const char *name, scenario_fn fn, long then)
{
    /* to chase one failure: WEFT_FAULT_ONLY=name WEFT_FAULT_FROM=n */
    const char *only = getenv("WEFT_FAULT_ONLY");
    const char *from = getenv("WEFT_FAULT_FROM");
    if (only && strcmp(only, name))
        return;
    cur_name = name;
    long failed = 0, n, hits = 0;
    for (n = from ? atol(from) : 1;; n++) {
        int rc = run_once(fn, n, 1, &hits);
        check(name, rc, n, 1);
        failed += rc != 0;
        if (hits == 0)
            break;
        if (n > 20000)
            fail_msg("%s: more than 20000 allocations?", name);
        rc = run_once(fn, n, then, &hits);
        check(name, rc, n, then);
        failed += rc != 0;
    }
    /* after all that, a run with memory works */
    assert_int_equal(run_once(fn, 0, 0, &hits), 0);
    print_message("%s: %ld allocations swept, %ld runs failed cleanly\n",
                  name, n - 1, failed);
    /* a scenario that never failed was not tested by its sweep */
    if (n > 1)
        assert_true(failed > 0);
    cur_name = NULL;
}

/* The second run at each n: every allocation from there fails, as in a
 * process out of memory for good. */
#define ALL LONG_MAX

/* --- the pool and fork-join ------------------------------------------- */

static int create_run_destroy(const char *topology)
{
    weft_config c = weft_config_default();
    c.workers = 3;
    c.topology = topology;
    weft_runtime *rt = NULL;
    int rc = weft_runtime_create(&rt, &c);
    if (rc)
        return rt ? WRONG : rc; /* a failure leaves no handle */
    struct fib_call f = {.n = 16};
    rc = weft_run(rt, fib_call_root, &f);
    if (rc == 0 && f.r != fib_serial(16))
        rc = WRONG;
    weft_runtime_destroy(&rt);
    return rc;
}

static int sc_runtime(void) { return create_run_destroy(NULL); }

static int sc_runtime_numa(void)
{
    return create_run_destroy("package:2 numa:2 core:2 pu:1");
}

/* --- futures ------------------------------------------------------------ */

static int square(weft_job *job, void *arg)
{
    long *v = malloc(sizeof *v); /* the user's memory: not faulted */
    if (!v)
        return -ENOMEM;
    *v = (long)(intptr_t)arg * (long)(intptr_t)arg;
    return weft_job_set_result(job, v, free);
}

static int sum_deps(weft_job *job, void *arg)
{
    (void)arg;
    long s = 0;
    for (size_t i = 0; i < weft_job_ndeps(job); i++) {
        void *p = NULL;
        int rc = weft_job_dep(job, i, &p);
        if (rc)
            return rc; /* a dependency failed: so does this */
        s += *(long *)p;
    }
    return square(job, (void *)(intptr_t)s);
}

static int release_all(weft_future **fs, int n, int rc)
{
    for (int i = 0; i < n; i++)
        if (fs[i])
            weft_future_release(fs[i]);
    return rc;
}

/* A future's value: the status of the task (which an allocation failing
 * inside the runtime may have failed, -ENOMEM) or a wrong answer. */
static int expect(weft_future *f, long want)
{
    void *v = NULL;
    int rc = weft_future_get(f, -1, &v);
    if (rc)
        return rc;
    return v && *(long *)v == want ? 0 : WRONG;
}

static int sc_futures(void)
{
    enum { N = 6 };
    weft_future *fs[N + 2] = {0};
    int rc = 0;
    for (int i = 0; i < N && !rc; i++)
        rc = weft_submit(shared_rt, square, (void *)(intptr_t)(i + 1), NULL,
                         &fs[i]);
    if (rc)
        return release_all(fs, N + 2, rc);
    /* 1 + 4 + 9 + 16 + 25 + 36 = 91, squared */
    rc = weft_submit_after(shared_rt, sum_deps, NULL, fs, N, NULL, &fs[N]);
    if (rc)
        return release_all(fs, N + 2, rc);
    size_t ready[N], nready = 0; /* room for all n: more than k may be done */
    rc = weft_wait(fs, N, 2, -1, ready, &nready);
    if (rc == 0 && nready < 2)
        rc = WRONG;
    if (rc == 0)
        rc = expect(fs[N], 91 * 91);
    for (int i = 0; i < N && rc == 0; i++)
        rc = expect(fs[i], (long)(i + 1) * (i + 1));
    /* one more, cancelled or run: either is fine, but it must end */
    if (rc == 0)
        rc = weft_submit(shared_rt, square, (void *)3, NULL, &fs[N + 1]);
    if (rc == 0) {
        (void)weft_future_cancel(fs[N + 1]);
        int st = weft_future_get(fs[N + 1], -1, NULL);
        if (st != 0 && st != -ECANCELED && st != -ENOMEM)
            rc = WRONG;
    }
    return release_all(fs, N + 2, rc);
}

/* A task that submits children from inside the pool, one of them named
 * and retried (it fails its first attempt), and collects them. */
static int flaky(weft_job *job, void *arg)
{
    return weft_job_attempt(job) == 0 ? -EAGAIN : square(job, arg);
}

static int parent(weft_job *job, void *arg)
{
    (void)arg;
    weft_runtime *rt = weft_job_runtime(job);
    weft_submit_opts o = weft_submit_opts_default();
    o.max_retries = 1;
    o.name = "flaky";
    weft_future *kid[3] = {0};
    int rc = weft_submit(rt, square, (void *)5, NULL, &kid[0]);
    if (rc == 0)
        rc = weft_submit(rt, flaky, (void *)6, &o, &kid[1]);
    if (rc == 0)
        rc = weft_submit_after(rt, sum_deps, NULL, kid, 2, NULL, &kid[2]);
    if (rc == 0)
        rc = expect(kid[2], (25L + 36) * (25 + 36));
    if (rc == 0 && weft_future_attempts(kid[1]) != 2)
        rc = WRONG;
    release_all(kid, 3, rc);
    /* WRONG is not an errno: carry it out as a distinct status */
    return rc == WRONG ? -EDOM : rc == 0 ? square(job, (void *)1) : rc;
}

static int sc_nested(void)
{
    weft_future *f = NULL;
    int rc = weft_submit(shared_rt, parent, NULL, NULL, &f);
    if (rc)
        return rc;
    rc = expect(f, 1);
    weft_future_release(f);
    return rc == -EDOM ? WRONG : rc;
}

/* --- graphs ------------------------------------------------------------- */

/* weft_graph_add returns the new node's id: 0 here, or the error. */
static int add(weft_graph *g, const char *name, weft_fn fn, void *arg,
               const char *const *deps, size_t ndeps)
{
    int rc = weft_graph_add(g, name, fn, arg, deps, ndeps, NULL);
    return rc < 0 ? rc : 0;
}

static int sc_graph(void)
{
    weft_graph *g = NULL;
    int rc = weft_graph_create(&g);
    if (rc)
        return rc;
    const char *ab[] = {"a", "b"};
    const char *abc[] = {"a", "b", "c"};
    if (!rc)
        rc = add(g, "a", square, (void *)2, NULL, 0);
    if (!rc)
        rc = add(g, "b", square, (void *)3, NULL, 0);
    if (!rc)
        rc = add(g, "c", sum_deps, NULL, ab, 2);
    if (!rc)
        rc = add(g, "d", sum_deps, NULL, abc, 3);
    if (!rc)
        rc = weft_graph_seal(g);
    weft_future *out = NULL, *all = NULL;
    const char *want[] = {"d"};
    if (!rc)
        rc = weft_graph_run(g, shared_rt, want, 1, &out, &all);
    if (!rc) {
        /* c = (4 + 9)^2 = 169; d = (4 + 9 + 169)^2 */
        rc = expect(out, 182L * 182);
        int st = weft_future_get(all, -1, NULL);
        if (rc == 0 && st != 0)
            rc = WRONG; /* d worked, so the run did */
    }
    if (out)
        weft_future_release(out);
    if (all)
        weft_future_release(all);
    weft_graph_destroy(&g);
    return rc;
}

/* --- parallel map, for, reduce ----------------------------------------- */

static int map_double(size_t i, const void *in, void *out, void *ctx)
{
    (void)i;
    (void)ctx;
    *(long *)out = 2 * *(const long *)in;
    return 0;
}

static int for_mark(size_t i, void *ctx)
{
    ((unsigned char *)ctx)[i] = 1;
    return 0;
}

static int red_init(void *acc, void *ctx)
{
    (void)ctx;
    *(long *)acc = 0;
    return 0;
}

static int red_body(void *acc, size_t lo, size_t hi, void *ctx)
{
    (void)ctx;
    for (size_t i = lo; i < hi; i++)
        *(long *)acc += (long)i;
    return 0;
}

static int red_combine(void *into, const void *from, void *ctx)
{
    (void)ctx;
    *(long *)into += *(const long *)from;
    return 0;
}

static int sc_map(void)
{
    enum { N = 3000 };
    static long in[N], out[N];
    static unsigned char marks[N];
    for (int i = 0; i < N; i++)
        in[i] = i, out[i] = -1, marks[i] = 0;
    weft_map_opts o = weft_map_opts_default();
    int rc = weft_map(shared_rt, N, in, sizeof *in, out, sizeof *out,
                      map_double, NULL, &o, NULL);
    for (int i = 0; rc == 0 && i < N; i++)
        if (out[i] != 2 * i)
            rc = WRONG;
    if (rc == 0)
        rc = weft_for(shared_rt, 0, N, for_mark, marks, &o, NULL);
    for (int i = 0; rc == 0 && i < N; i++)
        if (!marks[i])
            rc = WRONG;
    weft_reducer r = {.size = sizeof(long), .init = red_init,
                      .body = red_body, .combine = red_combine};
    long sum = -1;
    if (rc == 0)
        rc = weft_map_reduce(shared_rt, 0, N, &r, NULL, &sum, &o, NULL);
    if (rc == 0 && sum != (long)N * (N - 1) / 2)
        rc = WRONG;
    return rc;
}

/* Isolated mode: a runtime of its own, so that every run forks its
 * worker processes and opens its store anew (1 MiB of /dev/shm). An
 * allocation of a worker process may fail too: the countdown is
 * inherited by fork. */
static int sc_isolated(void)
{
    weft_config c = weft_config_default();
    c.workers = 2;
    c.store_capacity = 1 << 20;
    weft_runtime *rt = NULL;
    int rc = weft_runtime_create(&rt, &c);
    if (rc)
        return rt ? WRONG : rc;
    enum { N = 200 };
    static long in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i, out[i] = -1;
    weft_map_opts o = weft_map_opts_default();
    o.flags = WEFT_MAP_ISOLATED | WEFT_MAP_QUIET;
    rc = weft_map(rt, N, in, sizeof *in, out, sizeof *out, map_double, NULL,
                  &o, NULL);
    for (int i = 0; rc == 0 && i < N; i++)
        if (out[i] != 2 * i)
            rc = WRONG;
    weft_runtime_destroy(&rt);
    return rc;
}

/* A half of a lazily split map that a worker takes while one of the
 * map's items is on its stack (it waited and helped) needs a slot of its
 * own (lib/map/map.c slot_get); with no memory for it, its items are
 * skipped, and the call must say so: never 0 with items left out. The
 * interleaving is forced: the root worker splits [0, SN) and runs item
 * 0, which waits for the other worker to be inside item SN / 2 (the
 * first item of the half it stole, after splitting that again), then,
 * with the next allocation armed to fail, helps (weft__help: an item
 * waiting on a future does the same) until the failure has landed: the
 * only work there is the other worker's split half, whose slot is that
 * allocation. Item SN / 2 serves the steal request meanwhile
 * (weft__deque_starved, as a loop between batches does). */
#define SN 64
static struct {
    _Atomic int spinner_in, release;
    _Atomic long ran, hits;
} sn;

static int sn_item(size_t i, void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&sn.ran, 1);
    if (i == SN / 2) {
        atomic_store(&sn.spinner_in, 1);
        while (!atomic_load(&sn.release))
            (void)weft__deque_starved(); /* shares its half when asked */
    } else if (i == 0) {
        while (!atomic_load(&sn.spinner_in))
            sched_yield();
        long hits = 0;
        while (!hits) {
            weft__fault_arm(1, 1);
            (void)weft__help(weft__self, NULL);
            hits = weft__fault_disarm();
        }
        atomic_store(&sn.hits, hits);
        atomic_store(&sn.release, 1);
    }
    return 0;
}

static void test_map_split_nomem(void **s)
{
    (void)s;
    cur_name = "map-split-nomem";
    alarm(60);
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    memset(&sn, 0, sizeof sn);
    weft_map_opts o = weft_map_opts_default();
    o.batch = 1;
    weft_map_report rep;
    int rc = weft_for(rt, 0, SN, sn_item, NULL, &o, &rep);
    alarm(0);
    assert_int_equal(atomic_load(&sn.hits), 1);
    assert_true(atomic_load(&sn.ran) < SN); /* the failed half's items */
    assert_int_equal(rc, -ENOMEM);
    assert_int_equal(rep.failed, 0);
    assert_int_equal(rep.done, (size_t)atomic_load(&sn.ran));
    assert_int_equal(rep.done + rep.skipped, SN);
    weft_runtime_destroy(&rt);
}

/* --- actors -------------------------------------------------------------- */

struct counter {
    long n;
};

static int counter_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    struct counter *c = st;
    if (n == 1 && *(char *)msg == '+') {
        c->n++;
        return 0;
    }
    long *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = c->n;
    return weft_actor_reply(cx, r, free);
}

static const weft_actor_class COUNTER = {
    .state_size = sizeof(struct counter),
    .receive = counter_recv,
    .name = "counter",
};

/* Stop a gracefully, wait for it, drop the caller's reference. */
static int stop_wait(weft_actor *a, int rc)
{
    weft_future *done = NULL;
    if (weft_actor_stop(a, WEFT_STOP_GRACEFUL, &done) == 0 && done) {
        (void)weft_future_get(done, -1, NULL);
        weft_future_release(done);
    } else {
        (void)weft_actor_stop(a, WEFT_STOP_NOW, NULL);
    }
    weft_actor_release(a);
    return rc;
}

static int sc_actor(void)
{
    weft_actor *a = NULL;
    int rc = weft_actor_spawn(shared_rt, &COUNTER, NULL, NULL, &a);
    if (rc)
        return rc;
    long sent = 0;
    for (int i = 0; i < 50 && rc == 0; i++) {
        rc = weft_send(a, "+", 1, 0);
        sent += rc == 0;
    }
    weft_future *f = NULL;
    if (rc == 0)
        rc = weft_ask(a, "?", 1, 0, &f);
    if (rc == 0) {
        void *v = NULL;
        rc = weft_future_get(f, -1, &v);
        /* messages are delivered in order: the ask sees every send */
        if (rc == 0 && (!v || *(long *)v != sent))
            rc = WRONG;
        weft_future_release(f);
    }
    return stop_wait(a, rc);
}

static int sc_actor_pool(void)
{
    weft_actor *p = NULL;
    weft_runtime_stats before, after;
    int st = weft_stats_runtime(shared_rt, &before);
    int rc = weft_actor_pool_spawn(shared_rt, &COUNTER, NULL, 3, NULL, &p);
    /* a failed spawn stopped and freed the members it made, before it
     * returned (none is left alive without a handle; earlier runs' actors
     * may still be dying, which only lowers the count) */
    if (rc && !st && !weft_stats_runtime(shared_rt, &after) &&
        after.actors > before.actors)
        return WRONG;
    if (rc)
        return rc;
    for (int i = 0; i < 30 && rc == 0; i++)
        rc = weft_send(p, "+", 1, 0);
    weft_future *f = NULL;
    if (rc == 0)
        rc = weft_ask(p, "?", 1, 0, &f);
    if (rc == 0) {
        rc = weft_future_get(f, -1, NULL);
        weft_future_release(f);
    }
    return stop_wait(p, rc);
}

/* --- the object store, spilling ---------------------------------------- */

static char spill_dir[] = "/tmp/weft-faults-XXXXXX";

static int sc_store(void)
{
    weft_store_opts o = st_opts(64 << 10, 64);
    o.spill_dir = spill_dir;
    const char *name = st_name("faults");
    weft_store *st = NULL;
    int rc = weft_store_open(name, &o, &st);
    if (rc)
        return rc;
    /* pinned objects worth twice the capacity: half of them spill */
    enum { K = 8, SZ = 16 << 10 };
    int made = 0;
    for (int i = 0; i < K && rc == 0; i++) {
        rc = st_put_n(st, (uint64_t)i, SZ, WEFT_STORE_PIN);
        made += rc == 0;
    }
    for (int i = 0; i < made && rc == 0; i++) {
        weft_store_id id = st_id((uint64_t)i);
        weft_store_obj obj;
        rc = weft_store_get(st, &id, 0, &obj);
        if (rc == 0) {
            if (obj.size != SZ || !st_verify((uint64_t)i, obj.data, SZ))
                rc = WRONG;
            weft_store_release(st, &obj);
        }
    }
    weft_store_close(st);
    weft_store_unlink(name, spill_dir);
    /* -ENOSPC: a spill or a restore found no room for want of memory
     * elsewhere; the store says so rather than failing harder */
    return rc == -ENOSPC ? -ENOMEM : rc;
}

/* --- the runtime's published statistics (WEFT_STATS) ------------------ */

static int sc_stats(void)
{
    weft_config c = weft_config_default();
    c.workers = 2;
    weft_runtime *rt = NULL;
    int rc = weft_runtime_create(&rt, &c); /* publishes: WEFT_STATS is set */
    if (rc)
        return rt ? WRONG : rc;
    weft_stats_source src[16];
    int n = weft_stats_list(src, 16), k;
    rc = n < 0 ? n : 0;
    for (k = 0; k < n && k < 16; k++)
        if (src[k].pid == (int32_t)getpid() && src[k].alive)
            break;
    /* publishing is best effort (lib/core/publish.c): a runtime that
     * could not publish logs it and runs on. The sweep's last run, with
     * memory, must find the segment. */
    if (rc == 0 && (k == n || k == 16))
        rc = -ENOMEM;
    weft_stats_reader *r = NULL;
    if (rc == 0)
        rc = weft_stats_attach(src[k].id, &r);
    weft_worker_stats ws[4];
    if (rc == 0) {
        int got = weft_stats_read(r, NULL, NULL, ws, 4);
        rc = got < 0 ? got : got == 2 ? 0 : WRONG;
    }
    weft_stats_detach(&r);
    weft_runtime_destroy(&rt);
    return rc;
}

/* --- two nodes in this process: loop transport, then tcp ---------------- */

/* A published actor: replies with the square of the uint64_t it gets. */
static int sq_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)st;
    uint64_t x;
    if (n != sizeof x)
        return -EINVAL;
    memcpy(&x, msg, sizeof x);
    x *= x;
    weft_bytes *b = weft_bytes_copy(&x, sizeof x);
    /* (a NULL reply is a reply without bytes, not a failure) */
    return b ? weft_net_reply(cx, b) : -ENOMEM;
}

static const weft_actor_class SQUARER = {.receive = sq_recv, .name = "sq"};

static weft_runtime *net_rt[2];

static bool net_tcp; /* over tcp, else the loop transport */
static int net_group;
/* Create (up) or destroy the two nodes' runtimes: 2 workers, unpinned. */
static void net_runtimes(bool up)
{
    weft_config c = weft_config_default();
    c.workers = 2;
    c.pin = 0;
    for (int i = 0; i < 2; i++)
        if (up)
            assert_int_equal(weft_runtime_create(&net_rt[i], &c), 0);
        else
            weft_runtime_destroy(&net_rt[i]);
}

/* tcp: both ranks' addresses, new loopback ports for each run */
static char net_peers[64];

/* Two free loopback ports (bound to port 0, then let go, as
 * test/net/run_nodes.py does) as a tcp peer list. */
static int pick_peers(void)
{
    int port[2], fd[2] = {-1, -1}, rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fd[i] < 0 || bind(fd[i], (struct sockaddr *)&a, sizeof a) ||
            getsockname(fd[i], (struct sockaddr *)&a, &len))
            rc = -errno;
        port[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < 2; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    if (!rc)
        snprintf(net_peers, sizeof net_peers, "127.0.0.1:%d,127.0.0.1:%d",
                 port[0], port[1]);
    return rc;
}

typedef struct starter {
    int rank, rc;
    weft_node *node;
    char group[64];
} starter;

static void *start_node(void *p)
{
    starter *st = p;
    weft_net_config c = weft_net_config_default();
    c.transport = net_tcp ? "tcp" : "loop";
    c.params.rank = st->rank;
    c.params.size = 2;
    if (net_tcp) {
        c.params.peers = net_peers;
        /* a node that cannot allocate may fall silent: find out soon */
        c.params.heartbeat_ms = 10;
        c.params.dead_timeout_ms = 300;
        c.params.join_timeout_ms = 300;
    } else {
        c.params.peers = st->group;
    }
    /* a peer whose create failed never joins: give up soon */
    c.join_timeout_ms = 300;
    st->rc = weft_net_create(&st->node, net_rt[st->rank], &c);
    return NULL;
}

/* f's status, or WRONG unless its result is the bytes of want[0..len). */
static int expect_bytes(weft_future *f, const void *want, size_t len)
{
    void *r = NULL;
    int rc = weft_future_get(f, -1, &r);
    const weft_bytes *b = r;
    if (rc == 0 && (!b || b->len != len || memcmp(b->data, want, len)))
        rc = WRONG;
    weft_future_release(f);
    return rc;
}

/* The square of x computed on node `to`, asked from node `from`: as a
 * remote task, then (node 1) from the actor published there. */
static int remote_square(weft_node *from, int to, uint64_t x)
{
    weft_remote_opts o = weft_remote_opts_default();
    o.node = to;
    uint64_t want = x * x;
    weft_future *f = NULL;
    int rc = weft_submit_remote(from, "t_square", &x, sizeof x, &o, &f);
    if (rc == 0)
        rc = expect_bytes(f, &want, sizeof want);
    if (rc == 0 && to == 1)
        rc = weft_net_ask(from, to, "sq", &x, sizeof x, &f);
    if (rc == 0 && to == 1)
        rc = expect_bytes(f, &want, sizeof want);
    return rc;
}

/* An object put on one node and fetched from there by the other. */
static int fetch_object(weft_node *holder, weft_node *fetcher)
{
    uint8_t id[WEFT_OBJECT_ID_LEN] = {42, 7};
    static const char data[] = "the object's bytes";
    int rc = weft_net_object_put(holder, id, data, sizeof data);
    weft_future *f = NULL;
    if (rc == 0)
        rc = weft_net_object_fetch(fetcher, id, weft_net_rank(holder), &f);
    if (rc == 0)
        rc = expect_bytes(f, data, sizeof data);
    return rc;
}

/* A peer that could not start (or, over tcp, that fell silent for want
 * of memory) is not there: -ETIMEDOUT, or the group broke up
 * (-ECONNRESET, -EHOSTDOWN). Out of memory, seen from the other side. */
static int peer_lost(int rc)
{
    if (rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EHOSTDOWN)
        return -ENOMEM;
    return rc;
}

static int sc_net(void)
{
    starter st[2];
    pthread_t th[2];
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        st[i] = (starter){.rank = i, .rc = -1};
        snprintf(st[i].group, sizeof st[i].group, "faults-%d-%d",
                 (int)getpid(), net_group);
    }
    net_group++; /* each run its own group: a failed one leaves none */
    if (net_tcp && pick_peers())
        return -EAGAIN;
    bool started[2];
    for (int i = 0; i < 2; i++)
        if (!(started[i] = !pthread_create(&th[i], NULL, start_node, &st[i])))
            st[i].rc = -EAGAIN;
    for (int i = 0; i < 2; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    for (int i = 0; i < 2 && !rc; i++)
        rc = st[i].rc;
    rc = peer_lost(rc);
    weft_actor *sq = NULL; /* on node 1's runtime, published there */
    if (rc == 0)
        rc = weft_actor_spawn(net_rt[1], &SQUARER, NULL, NULL, &sq);
    if (rc == 0)
        rc = weft_net_actor_publish(st[1].node, "sq", sq);
    if (rc == 0)
        rc = remote_square(st[0].node, 1, 12345);
    if (rc == 0)
        rc = remote_square(st[1].node, 0, 777);
    if (rc == 0)
        rc = fetch_object(st[1].node, st[0].node);
    /* over tcp a node that could not allocate may have fallen silent and
     * been declared dead by the other in the middle */
    if (net_tcp)
        rc = peer_lost(rc);
    for (int i = 0; i < 2; i++)
        if (st[i].rc == 0)
            weft_net_destroy(&st[i].node);
    if (sq)
        stop_wait(sq, 0);
    return rc;
}

/* --- more held replies than the node's reserve -------------------------- */

/* Tasks and asks that wait at a gate, so that their replies all come due
 * while every allocation fails. */
static atomic_bool gate_open;
static atomic_int gate_done;

static void gate_wait(void)
{
    while (!atomic_load_explicit(&gate_open, memory_order_acquire))
        usleep(200);
    atomic_fetch_add_explicit(&gate_done, 1, memory_order_release);
}

static int t_gate(const void *arg, size_t len, weft_bytes **res)
{
    (void)arg;
    (void)len;
    (void)res;
    gate_wait();
    return 7; /* a status, so the reply carries no payload */
}
WEFT_REMOTE(t_gate)

static int gate_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)st;
    (void)msg;
    (void)n;
    gate_wait();
    return weft_net_reply(cx, NULL); /* a reply without bytes */
}

static const weft_actor_class GATE = {.receive = gate_recv, .name = "gate"};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

#define HELD_TASKS 300 /* each more than the 256 reserved entries */
#define HELD_ASKS 300

/* Wait up to 10 s for one of node's counters to reach want. */
static bool stat_reached(weft_node *node, size_t field, uint64_t want)
{
    for (int i = 0; i < 10000; i++) {
        weft_net_stats ns;
        uint64_t v = 0;
        if (weft_net_stats_get(node, &ns) == 0)
            memcpy(&v, (char *)&ns + field, sizeof v);
        if (v >= want)
            return true;
        usleep(1000);
    }
    return false;
}

/* Node 0 sends node 1 HELD_TASKS tasks and HELD_ASKS asks, which wait at
 * the gate until all have arrived and every allocation fails; then they
 * all reply at once and every reply's send fails. Each must be held in
 * its request's own record and arrive once memory is back: with only
 * the node's 256 reserved entries, the rest were lost and their futures
 * never finished. */
static void test_held_replies(void **s)
{
    (void)s;
    net_runtimes(true);
    net_tcp = false;
    starter st[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        st[i] = (starter){.rank = i, .rc = -1};
        snprintf(st[i].group, sizeof st[i].group, "held-%d", (int)getpid());
        assert_int_equal(pthread_create(&th[i], NULL, start_node, &st[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(st[i].rc, 0);
    }
    weft_actor *gate = NULL;
    assert_int_equal(weft_actor_spawn(net_rt[1], &GATE, NULL, NULL, &gate), 0);
    assert_int_equal(weft_net_actor_publish(st[1].node, "gate", gate), 0);

    /* the asks first: loop keeps each pair of nodes' messages in order,
     * so once the last task has arrived every ask has too */
    static weft_future *f[HELD_TASKS + HELD_ASKS];
    for (int i = 0; i < HELD_ASKS; i++)
        assert_int_equal(weft_net_ask(st[0].node, 1, "gate", &i, sizeof i,
                                      &f[HELD_TASKS + i]),
                         0);
    weft_remote_opts o = weft_remote_opts_default();
    o.node = 1;
    for (int i = 0; i < HELD_TASKS; i++)
        assert_int_equal(
            weft_submit_remote(st[0].node, "t_gate", &i, sizeof i, &o, &f[i]),
            0);
    assert_true(stat_reached(st[1].node,
                             offsetof(weft_net_stats, tasks_remote),
                             HELD_TASKS));

    weft__fault_arm(1, ALL);
    atomic_store_explicit(&gate_open, true, memory_order_release);
    /* every reply has come due, failed and is held */
    bool all_held = stat_reached(st[1].node,
                                 offsetof(weft_net_stats, msgs_held),
                                 HELD_TASKS + HELD_ASKS);
    weft__fault_disarm();
    assert_true(all_held);
    weft_net_stats ns;
    assert_int_equal(weft_net_stats_get(st[1].node, &ns), 0);
    assert_int_equal(ns.msgs_lost, 0);

    int late = 0; /* replies not there 10 s after memory came back */
    int64_t end = now_ns() + 10 * 1000000000LL;
    for (int i = 0; i < HELD_TASKS + HELD_ASKS; i++) {
        int64_t left = end - now_ns();
        int rc = weft_future_get(f[i], left > 0 ? left : 0, NULL);
        if (rc == -ETIMEDOUT)
            late++;
        else
            assert_int_equal(rc, i < HELD_TASKS ? 7 : 0);
        weft_future_release(f[i]);
    }
    assert_int_equal(late, 0);
    /* the queue lets go of the last entry just after its send */
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(weft_net_stats_get(st[1].node, &ns), 0);
        if (!ns.msgs_held)
            break;
        usleep(1000);
    }
    assert_int_equal(ns.msgs_held, 0);
    assert_int_equal(ns.msgs_lost, 0);
    for (int i = 0; i < 2; i++)
        weft_net_destroy(&st[i].node);
    stop_wait(gate, 0);
    net_runtimes(false);
}

/* --- the tests ------------------------------------------------------------ */

static void test_pool(void **s)
{
    (void)s;
    sweep("runtime", sc_runtime, ALL);
    sweep("runtime-numa", sc_runtime_numa, ALL);
}

static int setup_rt(void **s)
{
    (void)s;
    shared_rt = test_runtime(2, NULL);
    return shared_rt ? 0 : -1;
}

static int teardown_rt(void **s)
{
    (void)s;
    weft_runtime_destroy(&shared_rt);
    return 0;
}

static void test_futures(void **s)
{
    (void)s;
    sweep("futures", sc_futures, ALL);
    sweep("futures-nested", sc_nested, ALL);
}

static void test_graph(void **s)
{
    (void)s;
    sweep("graph", sc_graph, ALL);
}

static void test_map(void **s)
{
    (void)s;
    sweep("map", sc_map, ALL);
    sweep("map-isolated", sc_isolated, ALL);
}

static void test_actors(void **s)
{
    (void)s;
    sweep("actor", sc_actor, ALL);
    sweep("actor-pool", sc_actor_pool, ALL);
}

static void test_store(void **s)
{
    (void)s;
    assert_non_null(mkdtemp(spill_dir));
    sweep("store", sc_store, ALL);
    rmdir(spill_dir);
}

static void test_net(void **s)
{
    (void)s;
    net_runtimes(true);
    /* a burst of failures, not all from there on: a reply that cannot be
     * sent is held and sent again (lib/net/node.c, resend), which needs
     * the memory to come back; and the loop transport has no heartbeat to
     * find a node that can never send */
    net_tcp = false;
    sweep("net-loop", sc_net, 64);
    /* tcp's heartbeats find a node that fell silent */
    net_tcp = true;
    sweep("net-tcp", sc_net, ALL);
    net_runtimes(false);
}

static void test_stats(void **s)
{
    (void)s;
    char name[64];
    snprintf(name, sizeof name, "faults-%d", (int)getpid());
    setenv("WEFT_STATS", name, 1);
    sweep("stats", sc_stats, ALL);
    unsetenv("WEFT_STATS");
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool),
        cmocka_unit_test_setup_teardown(test_futures, setup_rt, teardown_rt),
        cmocka_unit_test_setup_teardown(test_graph, setup_rt, teardown_rt),
        cmocka_unit_test_setup_teardown(test_map, setup_rt, teardown_rt),
        cmocka_unit_test(test_map_split_nomem),
        cmocka_unit_test_setup_teardown(test_actors, setup_rt, teardown_rt),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_net),
        cmocka_unit_test(test_held_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else

int main(void)
{
    puts("built without -Dalloc_faults=true: nothing to sweep");
    return 77;
}

#endif
