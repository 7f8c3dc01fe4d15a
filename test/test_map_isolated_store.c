/* Isolated maps on the runtime's object store: items put objects of their
 * own through weft_map_isolated_store() and the caller gets them after
 * the map; the map's own objects (ctx, window inputs and outputs) are all
 * gone when it returns, crashes and time limits included; a store the
 * caller attached is used (the children open it by name); a small store
 * splits the items into many windows and refuses items larger than half
 * of it. Public API only. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_map_util.h"

#define NELEM(a) (sizeof(a) / sizeof *(a))
#define BIG (3u << 20) /* bytes of an item's object, plus its index */

static weft_runtime *runtime_cap(uint64_t cap)
{
    weft_config c = weft_config_default();
    c.workers = 2;
    c.store_capacity = cap;
    weft_runtime *rt = NULL;
    assert_int_equal(weft_runtime_create(&rt, &c), 0);
    return rt;
}

static uint64_t store_objects(weft_runtime *rt)
{
    weft_runtime_stats rs;
    assert_int_equal(weft_stats_runtime(rt, &rs), 0);
    return rs.store_objects;
}

static uint8_t big_byte(size_t i, size_t k)
{
    return (uint8_t)(i * 31 + k * 7 + (k >> 12));
}

struct big_out {
    weft_store_id id;
    int32_t pid;
};

/* Puts a few MiB as an object of its own and returns its id. */
static int big_item(size_t i, const void *in, void *out, void *ctx)
{
    (void)in;
    (void)ctx;
    weft_store *st;
    int rc = weft_map_isolated_store(&st);
    if (rc)
        return rc;
    struct big_out *o = out;
    memset(&o->id, 0, sizeof o->id);
    memcpy(o->id.bytes, "item", 4);
    memcpy(o->id.bytes + 8, &i, sizeof i);
    uint8_t *p;
    size_t n = BIG + i;
    if ((rc = weft_store_create(st, &o->id, n, 0, (void **)&p)))
        return rc;
    for (size_t k = 0; k < n; k++)
        p[k] = big_byte(i, k);
    o->pid = getpid();
    return weft_store_seal(st, &o->id);
}

static void test_item_objects(void **s)
{
    (void)s;
    weft_runtime *rt = runtime_cap(0);
    size_t n = 6;
    struct big_out out[6];
    memset(out, 0, sizeof out);
    weft_map_opts o = map_opts(2, WEFT_MAP_ISOLATED, 0);
    weft_map_report rep;
    assert_int_equal(weft_map(rt, n, NULL, 0, out, sizeof *out, big_item,
                              NULL, &o, &rep), 0);
    report_expect_clean(&rep, n, "items putting objects");
    assert_int_equal(store_objects(rt), n); /* theirs only, not the map's */
    weft_store *st;
    assert_int_equal(weft_runtime_store(rt, &st), 0);
    for (size_t i = 0; i < n; i++) {
        assert_true(out[i].pid != getpid() && out[i].pid > 0);
        weft_store_obj obj;
        assert_int_equal(weft_store_get(st, &out[i].id, 0, &obj), 0);
        assert_int_equal(obj.size, BIG + i);
        const uint8_t *p = obj.data;
        for (size_t k = 0; k < obj.size; k++)
            if (p[k] != big_byte(i, k))
                fail_msg("object of item %zu: byte %zu is %u, want %u", i,
                         k, p[k], big_byte(i, k));
        assert_int_equal(weft_store_release(st, &obj), 0);
        assert_int_equal(weft_store_delete(st, &out[i].id), 0);
    }
    assert_int_equal(store_objects(rt), 0);
    weft_runtime_destroy(&rt);
}

/* out = in + 1 (16-byte items), crashing where told. */
struct pair {
    uint64_t a, b;
};
struct sq_ctx {
    size_t crash, hang;
};

__attribute__((no_sanitize("undefined"))) static void crash_segv(void)
{
    volatile int *volatile p = NULL;
    *p = 1;
}

static int inc_item(size_t i, const void *in, void *out, void *ctx)
{
    const struct sq_ctx *c = ctx;
    if (c && i == c->crash)
        crash_segv();
    if (c && i == c->hang)
        sleep_ns(5000 * MS);
    const struct pair *x = in;
    struct pair *y = out;
    y->a = x->a + 1;
    y->b = x->b + 1;
    return 0;
}

static struct pair *pairs(size_t n)
{
    struct pair *p = calloc(n, sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (struct pair){i, 3 * i};
    return p;
}

static void pairs_expect(const struct pair *y, size_t n, size_t skip,
                         const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (i != skip && (y[i].a != i + 1 || y[i].b != 3 * i + 1))
            fail_msg("%s: out[%zu] = {%llu, %llu}", what, i,
                     (unsigned long long)y[i].a, (unsigned long long)y[i].b);
}

/* Crashes and a time limit leave none of the map's objects behind. */
static void test_no_leftovers(void **s)
{
    (void)s;
    weft_runtime *rt = runtime_cap(0);
    size_t n = 3000;
    struct pair *x = pairs(n), *y = calloc(n, sizeof *y);
    assert_non_null(y);
    struct sq_ctx c = {.crash = 1000, .hang = 2000};
    weft_map_opts o = map_opts(2, WEFT_MAP_ISOLATED | WEFT_MAP_COLLECT, 0);
    o.ctx_size = sizeof c;
    o.timeout_ms = 200u * (unsigned)test_scale();
    weft_map_report rep;
    int rc = weft_map(rt, n, x, sizeof *x, y, sizeof *y, inc_item, &c, &o,
                      &rep);
    assert_int_equal(rc, -ECHILD);
    assert_int_equal(rep.failed, 2);
    assert_int_equal(rep.done, n - 2);
    for (size_t i = 0; i < n; i++)
        if (i != 1000 && i != 2000 &&
            (y[i].a != i + 1 || y[i].b != 3 * i + 1))
            fail_msg("out[%zu] = {%llu, %llu}", i,
                     (unsigned long long)y[i].a, (unsigned long long)y[i].b);
    assert_int_equal(store_objects(rt), 0);
    free(x);
    free(y);
    weft_runtime_destroy(&rt);
}

static const char *user_name(void)
{
    static char b[64];
    snprintf(b, sizeof b, "weft-test-isostore-%d", (int)getpid());
    return b;
}

/* The caller's store: children open it by its name. */
static void test_attached_store(void **s)
{
    (void)s;
    weft_store_opts so;
    weft_store_opts_default(&so);
    so.capacity = 8u << 20;
    weft_store *mine;
    assert_int_equal(weft_store_open(user_name(), &so, &mine), 0);
    weft_runtime *rt = runtime_cap(0);
    assert_int_equal(weft_runtime_set_store(rt, mine), 0);
    size_t n = 50000;
    struct pair *x = pairs(n), *y = calloc(n, sizeof *y);
    assert_non_null(y);
    weft_map_opts o = map_opts(2, WEFT_MAP_ISOLATED, 0);
    weft_map_report rep;
    assert_int_equal(weft_map(rt, n, x, sizeof *x, y, sizeof *y, inc_item,
                              NULL, &o, &rep), 0);
    report_expect_clean(&rep, n, "attached store");
    pairs_expect(y, n, SIZE_MAX, "attached store");
    weft_store_stats ss;
    assert_int_equal(weft_store_stats_get(mine, &ss), 0);
    assert_int_equal(ss.objects, 0);
    assert_true(ss.creates >= 2); /* the map's went through it */
    weft_runtime_destroy(&rt);
    assert_int_equal(weft_store_close(mine), 0);
    assert_int_equal(weft_store_unlink(user_name(), NULL), 0);
    free(x);
    free(y);
}

/* 1 MiB of store: windows of 256 KiB, so 3.2 MB of items take several;
 * an item over three quarters of it is -E2BIG, with nothing run. */
static void test_small_store(void **s)
{
    (void)s;
    weft_runtime *rt = runtime_cap(1u << 20);
    size_t n = 100000;
    struct pair *x = pairs(n), *y = calloc(n, sizeof *y);
    assert_non_null(y);
    weft_map_opts o = map_opts(2, WEFT_MAP_ISOLATED, 0);
    weft_map_report rep;
    assert_int_equal(weft_map(rt, n, x, sizeof *x, y, sizeof *y, inc_item,
                              NULL, &o, &rep), 0);
    report_expect_clean(&rep, n, "small store");
    pairs_expect(y, n, SIZE_MAX, "small store");
    assert_int_equal(weft_map(rt, 2, x, 400u << 10, y, 400u << 10,
                              inc_item, NULL, &o, &rep), -E2BIG);
    assert_int_equal(rep.done, 0);
    assert_int_equal(store_objects(rt), 0);
    free(x);
    free(y);
    weft_runtime_destroy(&rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_item_objects),
        cmocka_unit_test(test_no_leftovers),
        cmocka_unit_test(test_attached_store),
        cmocka_unit_test(test_small_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
