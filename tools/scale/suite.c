/* The built-in suite's table (suite.h). */
#include "suite.h"

const scale_workload *const scale_suite[SCALE_NSUITE] = {
    &scale_pi, &scale_wordcount, &scale_json,
    &scale_join, &scale_fib, &scale_uts,
};

int scale_no_prepare(long p)
{
    (void)p;
    return 0;
}

void scale_no_release(void) {}
