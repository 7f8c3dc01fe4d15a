/* A small weft program for weft-scale's tests (test_weft_scale.py): it
 * makes a runtime (WEFT_WORKERS decides its size), runs a few parallel
 * reductions of about 10 ms each on one core, prints their sum and
 * destroys the runtime, so that WEFT_STATS leaves a snapshot to read.
 *
 *   scale_prog [STATUS]    exit with STATUS (default 0) once done */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>

#define ITEMS 4000000u
#define MAPS 4

static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static int init(void *acc, void *ctx)
{
    (void)ctx;
    *(uint64_t *)acc = 0;
    return 0;
}

static int body(void *acc, size_t lo, size_t hi, void *ctx)
{
    (void)ctx;
    for (size_t i = lo; i < hi; i++)
        *(uint64_t *)acc += mix(i);
    return 0;
}

static int combine(void *into, const void *from, void *ctx)
{
    (void)ctx;
    *(uint64_t *)into += *(const uint64_t *)from;
    return 0;
}

int main(int argc, char **argv)
{
    static const weft_reducer r = { sizeof(uint64_t), init, body, combine,
                                    NULL };
    weft_runtime *rt;
    uint64_t total = 0;
    if (weft_runtime_create(&rt, NULL) != 0)
        return 1;
    for (int k = 0; k < MAPS; k++) {
        uint64_t sum;
        if (weft_map_reduce(rt, 0, ITEMS, &r, NULL, &sum, NULL, NULL) != 0)
            return 1;
        total += sum;
    }
    printf("%llu\n", (unsigned long long)total);
    weft_runtime_destroy(&rt);
    return argc > 1 ? atoi(argv[1]) : 0;
}
