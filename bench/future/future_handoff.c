/* The floor of a round trip to another thread (rt-parked, rt-spin of
 * future_common.h), with no runtime at all: one helper thread and two
 * flags. What any pool pays to hand a task to one of its threads and get
 * the answer back, measured on the same machine in the same run.
 *
 *   rt-parked  the helper sleeps on a futex (FUTEX_WAIT) between round
 *              trips; the main thread sets the request, wakes it
 *              (FUTEX_WAKE) and spins on the answer: one wake-up of a
 *              parked thread, and the main thread never sleeps (the
 *              cheapest a parked pool can be; weft's outside waiter also
 *              spins before it sleeps).
 *   rt-spin    the helper spins on the request flag: two cache-line
 *              transfers, nothing else.
 *
 * -w is ignored (one helper). Linux only (futex). */
#include "bench.h"
#include "future_common.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

#if defined(__x86_64__) || defined(__i386__)
#define RELAX() __builtin_ia32_pause()
#else
#define RELAX() atomic_signal_fence(memory_order_seq_cst)
#endif

enum { IDLE = 0, REQUEST = 1, QUIT = 2 };

static struct {
    alignas(64) _Atomic uint32_t req; /* IDLE, REQUEST or QUIT */
    alignas(64) _Atomic uint32_t ans; /* 0 while running, else status+1 */
    int parked;                       /* helper sleeps when idle */
    pthread_t thread;
    bool started;
} h;

static NOINLINE int empty(void *arg)
{
    __asm__ volatile("" : : "r"(arg) : "memory");
    return 0;
}

static void futex_wait(_Atomic uint32_t *w, uint32_t val)
{
    syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *helper(void *arg)
{
    (void)arg;
    for (;;) {
        uint32_t r;
        while ((r = atomic_load_explicit(&h.req, memory_order_acquire)) ==
               IDLE) {
            if (h.parked)
                futex_wait(&h.req, IDLE);
            else
                RELAX();
        }
        if (r == QUIT)
            return NULL;
        atomic_store_explicit(&h.req, IDLE, memory_order_relaxed);
        int st = empty(NULL);
        atomic_store_explicit(&h.ans, (uint32_t)st + 1, memory_order_release);
    }
}

static int one_trip(void)
{
    atomic_store_explicit(&h.ans, 0, memory_order_relaxed);
    atomic_store_explicit(&h.req, REQUEST, memory_order_release);
    if (h.parked)
        futex_wake(&h.req);
    uint32_t a;
    while ((a = atomic_load_explicit(&h.ans, memory_order_acquire)) == 0)
        RELAX();
    return (int)a - 1;
}

static bench_check run_rt_parked(long n) { return rt_loop(n, 1, one_trip); }
static bench_check run_rt_spin(long n) { return rt_loop(n, 0, one_trip); }

static int prepare(const char *workload, long size, int workers)
{
    (void)workers;
    if (!is_rt(workload))
        return -EINVAL;
    h.parked = is_parked(workload);
    if (pthread_create(&h.thread, NULL, helper, NULL) != 0)
        return -EAGAIN;
    h.started = true;
    return rt_prepare(size);
}

static void finish(void)
{
    if (!h.started)
        return;
    atomic_store_explicit(&h.req, QUIT, memory_order_release);
    futex_wake(&h.req);
    pthread_join(h.thread, NULL);
    h.started = false;
}

static const bench_workload workloads[] = {
    { "rt-parked", run_rt_parked },
    { "rt-spin", run_rt_spin },
};

int main(int argc, char **argv)
{
    static const bench_impl impl = { "handoff", 1, NULL, NULL };
    static const bench_hooks hooks = { prepare, NULL, rt_extra, NULL };
    int rc = bench_main_hooks(argc, argv, &impl, workloads,
                              (int)(sizeof workloads / sizeof workloads[0]),
                              &hooks);
    finish();
    return rc;
}
