/* Serial twin of the future workloads (future_common.h): every "submit"
 * is a plain call of the task's function (noinline, so that it stays one
 * real call), every "collect" reads the status it returned. What a future
 * costs on a runtime is (T - T_serial) / N; a round trip here is one call,
 * the floor of any round trip. */
#include "bench.h"
#include "future_common.h"

#define NOINLINE __attribute__((noinline))

static NOINLINE int empty(void *arg)
{
    __asm__ volatile("" : : "r"(arg) : "memory"); /* keep the call */
    return 0;
}

static long flat(long n)
{
    int st[BATCH];
    long ok = 0;
    for (long done = 0; done < n; done += BATCH) {
        int b = n - done < BATCH ? (int)(n - done) : BATCH;
        for (int i = 0; i < b; i++)
            st[i] = empty(NULL);
        for (int i = 0; i < b; i++)
            ok += st[i] == 0;
    }
    return ok;
}

static NOINLINE long tree(long c)
{
    long left, right;
    tree_split(c, &left, &right);
    return 1 + (left > 0 ? tree(left) : 0) + (right > 0 ? tree(right) : 0);
}

static bench_check run_flat(long n) { return (bench_check)flat(n); }
static bench_check run_tree(long n) { return n > 0 ? (bench_check)tree(n) : 0; }

static int call_empty(void) { return empty(NULL); }

static bench_check run_rt_parked(long n) { return rt_loop(n, 1, call_empty); }
static bench_check run_rt_spin(long n) { return rt_loop(n, 0, call_empty); }

static int prepare(const char *workload, long size, int workers)
{
    (void)workers;
    return is_rt(workload) ? rt_prepare(size) : 0;
}

static const bench_workload workloads[] = {
    { "inside-flat", run_flat },        { "inside-tree", run_tree },
    { "outside", run_flat },            { "rt-parked", run_rt_parked },
    { "rt-spin", run_rt_spin },
};

int main(int argc, char **argv)
{
    static const bench_impl impl = { "serial", 1, NULL, NULL };
    static const bench_hooks hooks = { prepare, NULL, rt_extra, NULL };
    return bench_main_hooks(argc, argv, &impl, workloads,
                            (int)(sizeof workloads / sizeof workloads[0]),
                            &hooks);
}
