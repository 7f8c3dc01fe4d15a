/* A libFuzzer entry point for the store's index and object operations:
 * every 3 input bytes are one operation (create, seal, abort, delete, get
 * holding the reference, release, pinned put, contains) on one of 32 ids
 * in a small store with a spill directory, so that eviction, spilling,
 * tombstones and index rebuilds all happen; after each input every held
 * reference is released, unsealed objects aborted, and the store must
 * pass weft_store_check() and every sealed object must read back right.
 *
 * Built by meson with the project's compiler as an ordinary test: main()
 * below feeds it deterministic pseudo-random inputs for a moment. With
 * clang, the same file is a libFuzzer target:
 *
 *   clang -fsanitize=fuzzer,address -DWEFT_FUZZ_LIBFUZZER -D_GNU_SOURCE \
 *     -Iinclude -Ilib/store -Ilib/core test/store/fuzz_store_ops.c \
 *     lib/store/[a-z]*.c -luring -o fuzz_store_ops && ./fuzz_store_ops */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#define IDS 32
#define HELD 8

static weft_store *st;
static char name[64], dir[64];

static weft_store_id fid(unsigned i)
{
    weft_store_id id;
    memset(&id, 0, sizeof id);
    id.bytes[0] = (uint8_t)i;
    id.bytes[19] = 0x5A;
    return id;
}

/* Object i of size n holds bytes (i + k) % 251. */
static void fill(unsigned i, uint8_t *p, size_t n)
{
    for (size_t k = 0; k < n; k++)
        p[k] = (uint8_t)((i + k) % 251);
}

static int good(unsigned i, const uint8_t *p, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (p[k] != (uint8_t)((i + k) % 251))
            return 0;
    return 1;
}

static void setup(void)
{
    snprintf(name, sizeof name, "weft-fuzz-ops-%d", (int)getpid());
    snprintf(dir, sizeof dir, "/tmp/weft-fuzz-ops-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    weft_store_opts o;
    weft_store_opts_default(&o);
    o.capacity = 256u << 10;
    o.max_objects = 1024;
    o.spill_dir = dir;
    weft_store_unlink(name, dir);
    if (weft_store_open(name, &o, &st) != 0)
        abort();
}

static void one_op(const uint8_t *b, weft_store_obj *held, int *nheld)
{
    unsigned i = b[1] % IDS;
    size_t n = (size_t)b[2] * 97;
    weft_store_id id = fid(i);
    weft_store_obj obj;
    void *p;
    switch (b[0] % 8) {
    case 0:
        if (weft_store_create(st, &id, n, 0, &p) == 0)
            fill(i, p, n);
        break;
    case 1: (void)weft_store_seal(st, &id); break;
    case 2: (void)weft_store_abort(st, &id); break;
    case 3: (void)weft_store_delete(st, &id); break;
    case 4:
        if (weft_store_get(st, &id, 0, &obj) == 0) {
            if (!good(i, obj.data, obj.size))
                abort();
            if (*nheld < HELD)
                held[(*nheld)++] = obj;
            else
                weft_store_release(st, &obj);
        }
        break;
    case 5:
        if (*nheld > 0 && weft_store_release(st, &held[--*nheld]) != 0)
            abort();
        break;
    case 6:
        if (weft_store_create(st, &id, n, WEFT_STORE_PIN, &p) == 0) {
            fill(i, p, n);
            weft_store_seal(st, &id);
        }
        break;
    default: (void)weft_store_contains(st, &id); break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!st)
        setup();
    weft_store_obj held[HELD];
    int nheld = 0;
    for (size_t k = 0; k + 3 <= size; k += 3)
        one_op(data + k, held, &nheld);
    while (nheld > 0)
        if (weft_store_release(st, &held[--nheld]) != 0)
            abort();
    for (unsigned i = 0; i < IDS; i++) {
        weft_store_id id = fid(i);
        (void)weft_store_abort(st, &id);
        weft_store_obj obj;
        if (weft_store_get(st, &id, 0, &obj) == 0) {
            if (!good(i, obj.data, obj.size))
                abort();
            weft_store_release(st, &obj);
        }
    }
    char why[256];
    if (weft_store_check(st, why, sizeof why) != 0) {
        fprintf(stderr, "inconsistent: %s\n", why);
        abort();
    }
    return 0;
}

#ifndef WEFT_FUZZ_LIBFUZZER
int main(void)
{
    const char *sc = getenv("WEFT_TEST_SCALE");
    int inputs = 3000 / (sc && atoi(sc) > 0 ? atoi(sc) : 1);
    uint64_t s = 0x243F6A8885A308D3ull;
    uint8_t buf[600];
    for (int r = 0; r < inputs; r++) {
        size_t len = 0;
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t want = (size_t)(s % sizeof buf);
        while (len < want) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            buf[len++] = (uint8_t)s;
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    weft_store_close(st);
    weft_store_unlink(name, dir);
    rmdir(dir);
    printf("%d inputs, consistent\n", inputs);
    return 0;
}
#endif
