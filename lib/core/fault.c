/* Allocation faults on request, for tests: compiled only with
 * -Dalloc_faults=true (see alloc.h). A test arms a window: allocations
 * nth .. nth + count - 1, counted from the arming, fail (count 1: that
 * one alone; LONG_MAX: every one until disarmed). Any thread's
 * allocation counts, so a failure can land in a worker as well as in the
 * caller. WEFT_FAULT_TRACE=1 in the environment prints where each
 * failure lands (a stack on stderr): the first thing to look at when a
 * sweep of test_alloc_faults names an allocation. */
#include <execinfo.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "alloc.h"

/* The sanitizers' symbolising stack printer, when the build has one. */
void __sanitizer_print_stack_trace(void) __attribute__((weak));

static _Atomic long first;    /* the first allocation to fail; 0: off */
static _Atomic long count;    /* how many fail from there */
static _Atomic long seen;     /* allocations since armed */
static _Atomic long injected; /* failures since armed */

static void trace(void)
{
    void *pc[32];
    if (__sanitizer_print_stack_trace)
        __sanitizer_print_stack_trace();
    else
        backtrace_symbols_fd(pc, backtrace(pc, 32), 2);
}

bool weft__alloc_fault(void)
{
    /* relaxed throughout: a test arms and disarms while it alone calls
     * weft, and the counters need only atomicity, not ordering */
    long from = atomic_load_explicit(&first, memory_order_relaxed);
    if (from <= 0)
        return false;
    long i = atomic_fetch_add_explicit(&seen, 1, memory_order_relaxed) + 1;
    if (i < from || i - from >= atomic_load_explicit(&count,
                                                     memory_order_relaxed))
        return false;
    atomic_fetch_add_explicit(&injected, 1, memory_order_relaxed);
    if (getenv("WEFT_FAULT_TRACE"))
        trace();
    return true;
}

void weft__fault_arm(long nth, long n)
{
    atomic_store_explicit(&first, 0, memory_order_relaxed);
    atomic_store_explicit(&injected, 0, memory_order_relaxed);
    atomic_store_explicit(&seen, 0, memory_order_relaxed);
    atomic_store_explicit(&count, n, memory_order_relaxed);
    atomic_store_explicit(&first, n > 0 ? nth : 0, memory_order_relaxed);
}

long weft__fault_disarm(void)
{
    atomic_store_explicit(&first, 0, memory_order_relaxed);
    return atomic_load_explicit(&injected, memory_order_relaxed);
}
