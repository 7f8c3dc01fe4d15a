/* fork() without exec in a program with a live runtime (weft/runtime.h,
 * "fork() without exec"), as Python's multiprocessing, a daemon or a
 * helper that shells out do it. In the child, the calls on the parent's
 * runtime that would need its workers return -ENOTSUP at once (they
 * waited for ever), futures done before the fork can still be read, a
 * destroy there changes nothing (it unlinked the parent's store, stopped
 * the parent's isolated processes and marked its statistics exited, or
 * hung on the publisher), and a runtime the child makes itself works.
 * The child forks from the main thread and from inside a task. Every
 * child has an alarm: a call that hangs fails the test (SIGALRM) instead
 * of hanging it. Public API only. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_future_util.h"

/* ThreadSanitizer cannot start threads in a child forked from a process
 * with threads (it ends the child): there the child makes no runtime. */
#if defined(__SANITIZE_THREAD__)
#define CHILD_RUNTIME 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHILD_RUNTIME 0
#endif
#endif
#ifndef CHILD_RUNTIME
#define CHILD_RUNTIME 1
#endif

#define CHILD_ALARM_S 30

static int ret7(void *a)
{
    (void)a;
    return 7;
}

static int job7(weft_job *j, void *a)
{
    (void)j, (void)a;
    return 7;
}

static int nop_for(size_t i, void *ctx)
{
    (void)i, (void)ctx;
    return 0;
}

/* An isolated item: the pid of the process that ran it. */
static int pid_item(size_t i, const void *in, void *out, void *ctx)
{
    (void)i, (void)in, (void)ctx;
    *(int *)out = (int)getpid();
    return 0;
}

static int recv_ok(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)cx, (void)st, (void)msg, (void)n;
    return 0;
}

static const weft_actor_class ACTOR = {.receive = recv_ok};

struct parent {
    weft_runtime *rt;
    struct gate gate;   /* holds `held` until the parent opens it */
    weft_future *held;  /* queued or running at the fork */
    weft_future *done;  /* done (status 7) before the fork */
    weft_actor *actor;
};

/* The child's checks: 0, or the number of the first that failed. */
static int child_checks(struct parent *p)
{
    weft_runtime *rt = p->rt;
    weft_future *f = NULL;
    weft_store *st = (weft_store *)1;
    void *v = (void *)1;
    int step = 0;
#define CHECK(c)            \
    do {                    \
        step++;             \
        if (!(c))           \
            return step;    \
    } while (0)
    CHECK(weft_run(rt, ret7, NULL) == -ENOTSUP);                       /* 1 */
    CHECK(weft_submit(rt, job7, NULL, NULL, &f) == -ENOTSUP && !f);    /* 2 */
    CHECK(weft_future_get(p->held, 0, NULL) == -ETIMEDOUT);            /* 3 */
    CHECK(weft_future_get(p->held, -1, NULL) == -ENOTSUP);             /* 4 */
    CHECK(weft_wait(&p->held, 1, 1, -1, NULL, NULL) == -ENOTSUP);      /* 5 */
    CHECK(weft_future_get(p->done, -1, &v) == 7 && v == NULL);         /* 6 */
    CHECK(weft_wait(&p->done, 1, 1, -1, NULL, NULL) == 0);             /* 7 */
    CHECK(weft_send(p->actor, "x", 1, 0) == -ENOTSUP);                 /* 8 */
    CHECK(weft_ask(p->actor, "x", 1, 0, &f) == -ENOTSUP && !f);        /* 9 */
    CHECK(weft_for(rt, 0, 100, nop_for, NULL, NULL, NULL) == -ENOTSUP); /* 10 */
    CHECK(weft_runtime_store(rt, &st) == -ENOTSUP && !st);             /* 11 */
    CHECK(weft_map_isolated_reset(rt) == -ENOTSUP);                    /* 12 */
    CHECK(weft_runtime_destroy(&rt) == -ENOTSUP && rt == p->rt);       /* 13 */
#if CHILD_RUNTIME
    weft_runtime *mine = test_runtime(2, NULL);
    CHECK(mine && weft_run(mine, ret7, NULL) == 7);                    /* 14 */
    CHECK(weft_submit(mine, job7, NULL, NULL, &f) == 0 &&
          weft_future_get(f, -1, NULL) == 7);                          /* 15 */
    weft_future_release(f);
    CHECK(weft_runtime_destroy(&mine) == 0);                           /* 16 */
#endif
#undef CHECK
    return 0;
}

static _Noreturn void child_main(struct parent *p)
{
    alarm(CHILD_ALARM_S);
    _exit(child_checks(p));
}

/* Waits for child c and fails the test unless its checks all passed. */
static void expect_child_ok(pid_t c)
{
    assert_true(c > 0);
    int st;
    assert_int_equal(waitpid(c, &st, 0), c);
    if (WIFSIGNALED(st))
        fail_msg("the child died of signal %d (%s)", WTERMSIG(st),
                 WTERMSIG(st) == SIGALRM ? "a call hung" : "a crash");
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st))
        fail_msg("the child's check %d failed", WEXITSTATUS(st));
}

static int fork_in_task(void *arg)
{
    pid_t c = fork();
    if (c == 0)
        child_main(arg);
    return (int)c;
}

/* Entries of /dev/shm named weft-rt-PID-*, of this process: its
 * runtime's store. */
static int own_stores(void)
{
    char prefix[48];
    snprintf(prefix, sizeof prefix, "weft-rt-%d-", (int)getpid());
    DIR *d = opendir("/dev/shm");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* Whether this process publishes statistics under name, not exited. */
static int publishing(const char *name)
{
    weft_stats_source src[64];
    int n = weft_stats_list(src, 64);
    for (int i = 0; i < n && i < 64; i++)
        if (src[i].pid == (int32_t)getpid() && !strcmp(src[i].name, name))
            return src[i].alive && !src[i].exited;
    return 0;
}

/* The pid of the isolated process that runs a one-item map. */
static int iso_pid(weft_runtime *rt)
{
    weft_map_opts o = weft_map_opts_default();
    o.workers = 1;
    o.flags = WEFT_MAP_ISOLATED | WEFT_MAP_QUIET;
    int pid = 0;
    assert_int_equal(weft_map(rt, 1, NULL, 0, &pid, sizeof pid, pid_item,
                              NULL, &o, NULL), 0);
    assert_true(pid > 0 && pid != (int)getpid());
    return pid;
}

static void test_child_of(bool from_task)
{
    char name[64];
    snprintf(name, sizeof name, "tfork-%d-%d", (int)getpid(), from_task);
    setenv("WEFT_STATS", name, 1);
    struct parent p = {.rt = test_runtime(2, NULL)};
    unsetenv("WEFT_STATS");
    assert_non_null(p.rt);
    int iso = iso_pid(p.rt); /* the store and an isolated process */
    assert_int_equal(own_stores(), 1);
    assert_true(publishing(name));
    assert_int_equal(weft_submit(p.rt, job7, NULL, NULL, &p.done), 0);
    assert_int_equal(weft_future_get(p.done, -1, NULL), 7);
    assert_int_equal(weft_submit(p.rt, gate_fn, &p.gate, NULL, &p.held), 0);
    assert_int_equal(weft_actor_spawn(p.rt, &ACTOR, NULL, NULL, &p.actor),
                     0);

    pid_t c = from_task ? (pid_t)weft_run(p.rt, fork_in_task, &p) : fork();
    if (c == 0)
        child_main(&p);
    expect_child_ok(c);

    /* the parent's runtime and what it shares are as they were */
    assert_int_equal(own_stores(), 1);
    assert_true(publishing(name));
    assert_int_equal(iso_pid(p.rt), iso);
    assert_int_equal(weft_run(p.rt, ret7, NULL), 7);
    assert_int_equal(weft_send(p.actor, "x", 1, 0), 0);
    gate_open(&p.gate);
    assert_int_equal(weft_future_get(p.held, -1, NULL), 0);
    weft_future_release(p.held);
    weft_future_release(p.done);
    weft_actor_release(p.actor);
    assert_int_equal(weft_runtime_destroy(&p.rt), 0);
    assert_int_equal(own_stores(), 0);
}

static void test_fork_from_main(void **s)
{
    (void)s;
    test_child_of(false);
}

static void test_fork_from_task(void **s)
{
    (void)s;
    test_child_of(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_from_main),
        cmocka_unit_test(test_fork_from_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
