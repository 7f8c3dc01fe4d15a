/* A remote function the in-process node tests share: the square of the
 * uint64_t it gets, as 8 bytes. Include once per test executable (its
 * WEFT_REMOTE registers it at start). */
#ifndef WEFT_TEST_REMOTE_SQUARE_H
#define WEFT_TEST_REMOTE_SQUARE_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <weft.h>

static int t_square(const void *arg, size_t len, weft_bytes **res)
{
    uint64_t x;
    if (len != sizeof x)
        return -EINVAL;
    memcpy(&x, arg, sizeof x);
    x *= x;
    *res = weft_bytes_copy(&x, sizeof x);
    return *res ? 0 : -ENOMEM;
}
WEFT_REMOTE(t_square)

#endif
