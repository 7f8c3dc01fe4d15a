/* Fuzzing, deterministic and brief (CI runs it as a unit test):
 *
 * 1. The index and object operations against a model: random creates,
 *    seals, aborts, deletes, gets and releases through two handles, on a
 *    store large enough that nothing is evicted, so every return code is
 *    predictable; the store is checked and compared with the model as it
 *    goes. Ids are drawn from a small set so that slots and index entries
 *    are reused and tombstones pile up (and get rebuilt).
 * 2. Segments mutated in their header and first block: opening one gives
 *    0 (and then a consistent store) or -EPROTO, never a crash.
 *
 * WEFT_STORE_FUZZ_SEED sets the seed (default: fixed); the operation count
 * shrinks under the sanitizers. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "store_util.h"

#define IDS 300
enum { ABSENT, CREATED, SEALED };

typedef struct model {
    int state[IDS];
    int owner[IDS];
    size_t size[IDS];
    weft_store_obj held[2][64];
    uint64_t held_id[2][64];
    int nheld[2];
} model;

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int refs_on(model *m, uint64_t i)
{
    int n = 0;
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < m->nheld[h]; k++)
            n += m->held_id[h][k] == i;
    return n;
}

static void op_create(weft_store *st, model *m, int h, uint64_t i, size_t sz)
{
    weft_store_id id = st_id(i);
    void *p;
    int rc = weft_store_create(st, &id, sz, 0, &p);
    if (m->state[i] != ABSENT) {
        assert_int_equal(rc, -EEXIST);
        return;
    }
    assert_int_equal(rc, 0);
    st_fill(i, p, sz);
    m->state[i] = CREATED;
    m->owner[i] = h;
    m->size[i] = sz;
}

static void op_seal_abort(weft_store *st, model *m, int h, uint64_t i,
                          int seal)
{
    weft_store_id id = st_id(i);
    int rc = seal ? weft_store_seal(st, &id) : weft_store_abort(st, &id);
    int want = m->state[i] == ABSENT ? -ENOENT
               : m->state[i] == SEALED ? -EALREADY
               : m->owner[i] != h ? -EPERM : 0;
    assert_int_equal(rc, want);
    if (rc == 0)
        m->state[i] = seal ? SEALED : ABSENT;
}

static void op_delete(weft_store *st, model *m, uint64_t i)
{
    weft_store_id id = st_id(i);
    int rc = weft_store_delete(st, &id);
    int want = m->state[i] == ABSENT ? -ENOENT
               : m->state[i] == CREATED || refs_on(m, i) ? -EBUSY : 0;
    assert_int_equal(rc, want);
    if (rc == 0)
        m->state[i] = ABSENT;
}

static void op_get(weft_store *st, model *m, int h, uint64_t i)
{
    weft_store_id id = st_id(i);
    weft_store_obj obj;
    int rc = weft_store_get(st, &id, 0, &obj);
    if (m->state[i] != SEALED || m->nheld[h] == 64) {
        if (m->state[i] != SEALED)
            assert_int_equal(rc, -ENOENT);
        else if (rc == 0)
            assert_int_equal(weft_store_release(st, &obj), 0);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(obj.size, m->size[i]);
    assert_true(st_verify(i, obj.data, obj.size));
    m->held[h][m->nheld[h]] = obj;
    m->held_id[h][m->nheld[h]++] = i;
}

static void op_release(weft_store *st, model *m, int h, uint64_t r)
{
    if (m->nheld[h] == 0) {
        weft_store_obj junk;
        memset(&junk, 0, sizeof junk);
        junk.slot = (uint32_t)r % 64;
        junk.data = &junk;
        assert_int_equal(weft_store_release(st, &junk), -EINVAL);
        return;
    }
    int k = (int)(r % (uint64_t)m->nheld[h]);
    assert_int_equal(weft_store_release(st, &m->held[h][k]), 0);
    assert_int_equal(weft_store_release(st, &m->held[h][k]), -EINVAL);
    m->nheld[h]--;
    m->held[h][k] = m->held[h][m->nheld[h]];
    m->held_id[h][k] = m->held_id[h][m->nheld[h]];
}

static void compare(weft_store *st, model *m)
{
    char why[200];
    int rc = weft_store_check(st, why, sizeof why);
    if (rc)
        fail_msg("check: %s", why);
    uint64_t created = 0, sealed = 0;
    for (uint64_t i = 0; i < IDS; i++) {
        weft_store_id id = st_id(i);
        weft_store_info info;
        rc = weft_store_stat(st, &id, &info);
        if (m->state[i] == ABSENT) {
            assert_int_equal(rc, -ENOENT);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(info.size, m->size[i]);
        assert_int_equal(info.refs, refs_on(m, i));
        created += m->state[i] == CREATED;
        sealed += m->state[i] == SEALED;
    }
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.objects, created + sealed);
    assert_int_equal(s.sealed, sealed);
    assert_int_equal(s.evictions, 0);
}

static uint64_t seed_from_env(void)
{
    const char *s = getenv("WEFT_STORE_FUZZ_SEED");
    return s ? strtoull(s, NULL, 0) | 1 : 0x9E3779B97F4A7C15ull;
}

static void test_model(void **state)
{
    (void)state;
    const char *name = st_name("fuzz");
    weft_store_opts o = st_opts(16u << 20, 512);
    weft_store *st[2];
    assert_int_equal(weft_store_open(name, &o, &st[0]), 0);
    assert_int_equal(weft_store_open(name, &o, &st[1]), 0);
    static model m;
    memset(&m, 0, sizeof m);
    uint64_t s = seed_from_env();
    printf("seed %#llx\n", (unsigned long long)s);
    long ops = 200000 / st_scale();
    for (long n = 0; n < ops; n++) {
        int h = (int)(rng(&s) % 2);
        uint64_t i = rng(&s) % IDS, r = rng(&s);
        switch (r % 7) {
        case 0: op_create(st[h], &m, h, i, (size_t)(r >> 8) % 20000); break;
        case 1: op_seal_abort(st[h], &m, h, i, 1); break;
        case 2: op_seal_abort(st[h], &m, h, i, (r >> 8) % 4 != 0); break;
        case 3: op_delete(st[h], &m, i); break;
        case 4: case 5: op_get(st[h], &m, h, i); break;
        default: op_release(st[h], &m, h, r >> 8); break;
        }
        if (n % 5000 == 0)
            compare(st[0], &m);
    }
    compare(st[0], &m);
    /* closing a handle drops its references and unsealed objects */
    assert_int_equal(weft_store_close(st[1]), 0);
    for (uint64_t i = 0; i < IDS; i++)
        if (m.state[i] == CREATED && m.owner[i] == 1)
            m.state[i] = ABSENT;
    m.nheld[1] = 0;
    compare(st[0], &m);
    assert_int_equal(weft_store_close(st[0]), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

static void test_mutated_segments(void **state)
{
    (void)state;
    const char *name = st_name("mutate");
    char path[160];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    uint64_t s = seed_from_env() ^ 0x5555;
    int refused = 0, accepted = 0;
    for (int round = 0; round < 300 / st_scale(); round++) {
        weft_store *st;
        weft_store_opts o = st_opts(128u << 10, 64);
        assert_int_equal(weft_store_open(name, &o, &st), 0);
        for (uint64_t i = 0; i < 8; i++)
            assert_int_equal(st_put_n(st, i, 3000, 0), 0);
        uint64_t data_off = 0;
        {
            int fd = open(path, O_RDONLY);
            assert_int_equal(pread(fd, &data_off, 8, 80), 8);
            close(fd);
        }
        assert_int_equal(weft_store_close(st), 0);
        int fd = open(path, O_RDWR);
        assert_true(fd >= 0);
        for (int k = 0; k < 1 + (int)(rng(&s) % 3); k++) {
            /* a byte of the layout fields or of the first block headers */
            uint64_t r = rng(&s);
            off_t at = (r & 1) ? (off_t)((r >> 8) % 88)
                               : (off_t)(data_off + (r >> 8) % 128);
            uint8_t b = (uint8_t)(r >> 40);
            assert_int_equal(pwrite(fd, &b, 1, at), 1);
        }
        close(fd);
        o.flags = WEFT_STORE_OPEN_EXISTING;
        int rc = weft_store_open(name, &o, &st);
        if (rc == 0) {
            accepted++;
            char why[200];
            assert_int_equal(weft_store_check(st, why, sizeof why), 0);
            assert_int_equal(weft_store_close(st), 0);
        } else {
            assert_int_equal(rc, -EPROTO);
            refused++;
        }
        assert_int_equal(weft_store_unlink(name, NULL), 0);
    }
    printf("mutated segments: %d refused, %d accepted\n", refused, accepted);
    assert_true(refused > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_mutated_segments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
