/* The object store in one process: the lifecycle, every misuse getting
 * its error, eviction order and pinning, filling up and recovering, get
 * with a timeout, several stores at once, permissions, and segments that
 * are not weft stores. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "store_util.h"
#include "st.h" /* a descriptor, corrupted on purpose below */

typedef struct fixture {
    weft_store *st;
    char name[96];
} fixture;

static int setup_cap(void **state, size_t cap, uint32_t objs)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", st_name("basic"));
    weft_store_opts o = st_opts(cap, objs);
    assert_int_equal(weft_store_open(f->name, &o, &f->st), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_cap(state, 1u << 20, 256);
}

static int teardown(void **state)
{
    fixture *f = *state;
    char why[200];
    int rc = weft_store_check(f->st, why, sizeof why);
    if (rc)
        fprintf(stderr, "check: %s\n", why);
    assert_int_equal(rc, 0);
    assert_int_equal(weft_store_close(f->st), 0);
    assert_int_equal(weft_store_unlink(f->name, NULL), 0);
    free(f);
    return 0;
}

static void test_lifecycle(void **state)
{
    weft_store *st = ((fixture *)*state)->st;
    weft_store_id id = st_id(1);
    void *p;
    assert_int_equal(weft_store_create(st, &id, 1000, 0, &p), 0);
    assert_int_equal((uintptr_t)p % 64, 0);
    st_fill(1, p, 1000);
    weft_store_obj obj;
    /* not visible before the seal */
    assert_int_equal(weft_store_get(st, &id, 0, &obj), -ENOENT);
    assert_int_equal(weft_store_contains(st, &id), 0);
    assert_int_equal(weft_store_seal(st, &id), 0);
    assert_int_equal(weft_store_contains(st, &id), 1);
    assert_int_equal(weft_store_get(st, &id, 0, &obj), 0);
    assert_int_equal(obj.size, 1000);
    assert_true(st_verify(1, obj.data, obj.size));
    weft_store_info info;
    assert_int_equal(weft_store_stat(st, &id, &info), 0);
    assert_int_equal(info.refs, 1);
    assert_int_equal(info.state, WEFT_STORE_STATE_SEALED);
    assert_int_equal(weft_store_release(st, &obj), 0);
    assert_int_equal(weft_store_delete(st, &id), 0);
    assert_int_equal(weft_store_get(st, &id, 0, &obj), -ENOENT);
    /* zero-sized objects and put */
    weft_store_id z = st_id(2);
    assert_int_equal(weft_store_put(st, &z, NULL, 0, 0), 0);
    assert_int_equal(weft_store_get(st, &z, 0, &obj), 0);
    assert_int_equal(obj.size, 0);
    assert_int_equal(weft_store_release(st, &obj), 0);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.objects, 1);
    assert_int_equal(s.sealed, 1);
    assert_int_equal(s.clients, 1);
}

static void test_misuse(void **state)
{
    weft_store *st = ((fixture *)*state)->st;
    weft_store_id id = st_id(7);
    void *p;
    weft_store_obj obj;
    memset(&obj, 0, sizeof obj);
    /* bad arguments */
    assert_int_equal(weft_store_create(st, NULL, 10, 0, &p), -EINVAL);
    assert_int_equal(weft_store_create(st, &id, 10, 0, NULL), -EINVAL);
    assert_int_equal(weft_store_create(st, &id, 10, 0x80, &p), -EINVAL);
    assert_int_equal(weft_store_get(st, NULL, 0, &obj), -EINVAL);
    assert_int_equal(weft_store_seal(st, NULL), -EINVAL);
    assert_int_equal(weft_store_id_parse("zz", &id), -EINVAL);
    /* random ids differ; hex round-trips */
    weft_store_id r1, r2, back;
    char hex[41];
    assert_int_equal(weft_store_id_random(&r1), 0);
    assert_int_equal(weft_store_id_random(&r2), 0);
    assert_memory_not_equal(r1.bytes, r2.bytes, sizeof r1.bytes);
    weft_store_id_hex(&r1, hex);
    assert_int_equal(strlen(hex), 40);
    assert_int_equal(weft_store_id_parse(hex, &back), 0);
    assert_memory_equal(r1.bytes, back.bytes, sizeof r1.bytes);
    /* unknown ids */
    assert_int_equal(weft_store_seal(st, &id), -ENOENT);
    assert_int_equal(weft_store_abort(st, &id), -ENOENT);
    assert_int_equal(weft_store_delete(st, &id), -ENOENT);
    /* release without get */
    assert_int_equal(weft_store_release(st, &obj), -EINVAL);
    obj.slot = 12345678;
    assert_int_equal(weft_store_release(st, &obj), -EINVAL);
    /* too large for the store */
    assert_int_equal(weft_store_create(st, &id, 2u << 20, 0, &p), -ENOSPC);
    /* double create, delete while unsealed, double seal */
    assert_int_equal(weft_store_create(st, &id, 10, 0, &p), 0);
    assert_int_equal(weft_store_create(st, &id, 10, 0, &p), -EEXIST);
    assert_int_equal(weft_store_delete(st, &id), -EBUSY);
    assert_int_equal(weft_store_seal(st, &id), 0);
    assert_int_equal(weft_store_seal(st, &id), -EALREADY);
    assert_int_equal(weft_store_abort(st, &id), -EALREADY);
    /* delete while referenced; double release */
    assert_int_equal(weft_store_get(st, &id, 0, &obj), 0);
    weft_store_obj copy = obj;
    assert_int_equal(weft_store_delete(st, &id), -EBUSY);
    assert_int_equal(weft_store_release(st, &obj), 0);
    assert_int_equal(weft_store_release(st, &obj), -EINVAL);
    assert_int_equal(weft_store_release(st, &copy), -EINVAL);
    assert_int_equal(weft_store_delete(st, &id), 0);
    /* abort of an unsealed object */
    assert_int_equal(weft_store_create(st, &id, 100, 0, &p), 0);
    assert_int_equal(weft_store_abort(st, &id), 0);
    assert_int_equal(weft_store_contains(st, &id), 0);
}

static void test_other_handle(void **state)
{
    fixture *f = *state;
    weft_store *b;
    assert_int_equal(weft_store_open(f->name, NULL, &b), 0);
    weft_store_id id = st_id(9);
    void *p;
    assert_int_equal(weft_store_create(f->st, &id, 64, 0, &p), 0);
    assert_int_equal(weft_store_seal(b, &id), -EPERM);
    assert_int_equal(weft_store_abort(b, &id), -EPERM);
    /* b's unsealed object goes with b */
    weft_store_id id2 = st_id(10);
    assert_int_equal(weft_store_create(b, &id2, 64, 0, &p), 0);
    /* and so do b's references */
    assert_int_equal(weft_store_seal(f->st, &id), 0);
    weft_store_obj obj;
    assert_int_equal(weft_store_get(b, &id, 0, &obj), 0);
    assert_int_equal(weft_store_delete(f->st, &id), -EBUSY);
    assert_int_equal(weft_store_close(b), 0);
    assert_int_equal(weft_store_contains(f->st, &id2), 0);
    assert_int_equal(weft_store_delete(f->st, &id), 0);
}

static void test_get_timeout(void **state)
{
    weft_store *st = ((fixture *)*state)->st;
    weft_store_id id = st_id(11);
    weft_store_obj obj;
    assert_int_equal(weft_store_get(st, &id, 20, &obj), -ETIMEDOUT);
    void *p;
    assert_int_equal(weft_store_create(st, &id, 8, 0, &p), 0);
    assert_int_equal(weft_store_get(st, &id, 20, &obj), -ETIMEDOUT);
    assert_int_equal(weft_store_seal(st, &id), 0);
    assert_int_equal(weft_store_get(st, &id, 20, &obj), 0);
    assert_int_equal(weft_store_release(st, &obj), 0);
}

/* Objects of 62 KiB in a 1 MiB store: the 17th needs an eviction. The
 * least recently used go first, a get counts as a use, a referenced or a
 * pinned object is never evicted. */
static void test_eviction_order(void **state)
{
    weft_store *st = ((fixture *)*state)->st;
    const size_t sz = 62u << 10;
    for (uint64_t n = 0; n < 16; n++)
        assert_int_equal(st_put_n(st, n, sz, n == 1 ? WEFT_STORE_PIN : 0), 0);
    weft_store_obj held, obj;
    weft_store_id id0 = st_id(0), id2 = st_id(2);
    assert_int_equal(weft_store_get(st, &id0, 0, &obj), 0); /* a use */
    assert_int_equal(weft_store_release(st, &obj), 0);
    assert_int_equal(weft_store_get(st, &id2, 0, &held), 0); /* referenced */
    /* new objects evict 3, 4, 5, ... in order; 0 (used), 1 (pinned) and
     * 2 (referenced) stay */
    for (uint64_t n = 100; n < 110; n++) {
        assert_int_equal(st_put_n(st, n, sz, 0), 0);
        weft_store_id gone = st_id(n - 100 + 3);
        assert_int_equal(weft_store_contains(st, &gone), 0);
        weft_store_id next = st_id(n - 100 + 4);
        assert_int_equal(weft_store_contains(st, &next), 1);
    }
    for (uint64_t n = 0; n < 3; n++) {
        weft_store_id id = st_id(n);
        assert_int_equal(weft_store_contains(st, &id), 1);
    }
    assert_int_equal(weft_store_get(st, &id2, 0, &obj), 0);
    assert_true(st_verify(2, obj.data, obj.size));
    assert_int_equal(weft_store_release(st, &obj), 0);
    assert_int_equal(weft_store_release(st, &held), 0);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_true(s.evictions >= 10);
    /* the pinned one survives everything that fits around it */
    for (uint64_t n = 200; n < 260; n++)
        assert_int_equal(st_put_n(st, n, sz, 0), 0);
    weft_store_id id1 = st_id(1);
    assert_int_equal(weft_store_get(st, &id1, 0, &obj), 0);
    assert_true(st_verify(1, obj.data, obj.size));
    assert_int_equal(weft_store_release(st, &obj), 0);
}

/* A store full of referenced or pinned objects is -ENOSPC at create, and
 * works again after deletes. */
static void test_full_then_recover(void **state)
{
    weft_store *st = ((fixture *)*state)->st;
    uint64_t n = 0;
    int rc;
    while ((rc = st_put_n(st, n, 10000 + n * 37, WEFT_STORE_PIN)) == 0)
        n++;
    assert_int_equal(rc, -ENOSPC);
    assert_true(n > 50);
    void *p;
    weft_store_id big = st_id(9999);
    assert_int_equal(weft_store_create(st, &big, 100000, 0, &p), -ENOSPC);
    for (uint64_t k = 0; k < n; k += 2) {
        weft_store_id id = st_id(k);
        assert_int_equal(weft_store_delete(st, &id), 0);
    }
    /* small ones fit in the holes; a big one needs neighbours gone */
    assert_int_equal(st_put_n(st, 5000, 9000, 0), 0);
    for (uint64_t k = 1; k < n; k += 2) {
        weft_store_id id = st_id(k);
        weft_store_obj obj;
        assert_int_equal(weft_store_get(st, &id, 0, &obj), 0);
        assert_true(st_verify(k, obj.data, obj.size));
        assert_int_equal(weft_store_release(st, &obj), 0);
        assert_int_equal(weft_store_delete(st, &id), 0);
    }
    assert_int_equal(weft_store_create(st, &big, 900000, 0, &p), 0);
    assert_int_equal(weft_store_abort(st, &big), 0);
    char why[200];
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
}

/* Every object slot in use: -ENOSPC, until one goes. */
static void test_out_of_slots(void **state)
{
    weft_store *st = ((fixture *)*state)->st;
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    for (uint64_t n = 0; n < s.max_objects; n++)
        assert_int_equal(st_put_n(st, n, 8, WEFT_STORE_PIN), 0);
    assert_int_equal(st_put_n(st, 1u << 20, 8, 0), -ENOSPC);
    weft_store_id id = st_id(3);
    assert_int_equal(weft_store_delete(st, &id), 0);
    assert_int_equal(st_put_n(st, 1u << 20, 8, 0), 0);
}

static void test_two_stores(void **state)
{
    (void)state;
    weft_store *a, *b;
    const char *na = st_name("two-a"), *nb = st_name("two-b");
    weft_store_opts o = st_opts(256u << 10, 0);
    assert_int_equal(weft_store_open(na, &o, &a), 0);
    assert_int_equal(weft_store_open(nb, &o, &b), 0);
    assert_int_equal(st_put_n(a, 1, 100, 0), 0);
    weft_store_id id = st_id(1);
    assert_int_equal(weft_store_contains(b, &id), 0);
    assert_int_equal(st_put_n(b, 1, 200, 0), 0);
    weft_store_obj oa, ob;
    assert_int_equal(weft_store_get(a, &id, 0, &oa), 0);
    assert_int_equal(weft_store_get(b, &id, 0, &ob), 0);
    assert_int_equal(oa.size, 100);
    assert_int_equal(ob.size, 200);
    assert_int_equal(weft_store_release(a, &oa), 0);
    assert_int_equal(weft_store_release(b, &ob), 0);
    assert_int_equal(weft_store_close(a), 0);
    assert_int_equal(weft_store_close(b), 0);
    assert_int_equal(weft_store_unlink(na, NULL), 0);
    assert_int_equal(weft_store_unlink(nb, NULL), 0);
}

static void test_open_options(void **state)
{
    (void)state;
    weft_store *st;
    weft_store_opts o = st_opts(256u << 10, 0);
    const char *bad[] = {"", "a/b", ".hidden", "sp ace", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(weft_store_open(bad[i], &o, &st), -EINVAL);
    char longname[WEFT_STORE_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(weft_store_open(longname, &o, &st), -EINVAL);
    const char *name = st_name("opts");
    o.flags = WEFT_STORE_OPEN_EXISTING;
    assert_int_equal(weft_store_open(name, &o, &st), -ENOENT);
    o.flags = 0;
    o.capacity = 100;
    assert_int_equal(weft_store_open(name, &o, &st), -EINVAL);
    /* more than /dev/shm holds: a clear error at open, nothing left */
    o.capacity = 1ull << 45;
    assert_int_equal(weft_store_open(name, &o, &st), -ENOSPC);
    o = st_opts(256u << 10, 0);
    assert_int_equal(weft_store_open(name, &o, &st), 0);
    char path[160];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    weft_store *again;
    o.flags = WEFT_STORE_OPEN_CREATE;
    assert_int_equal(weft_store_open(name, &o, &again), -EEXIST);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
    assert_int_equal(weft_store_unlink(name, NULL), -ENOENT);
}

/* Writes a segment whose header is garbage in one way or another. */
static void hostile(const char *name, size_t bytes, size_t at, uint64_t val,
                    int from_real)
{
    char path[160];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    if (from_real) {
        weft_store *st;
        weft_store_opts o = st_opts(256u << 10, 0);
        assert_int_equal(weft_store_open(name, &o, &st), 0);
        assert_int_equal(weft_store_close(st), 0);
    } else {
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        uint8_t junk[4096];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (uint8_t)(i * 131 + 7);
        for (size_t done = 0; done < bytes; done += sizeof junk)
            assert_true(write(fd, junk, sizeof junk) > 0);
        close(fd);
    }
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    if (at != (size_t)-1)
        assert_int_equal(pwrite(fd, &val, sizeof val, (off_t)at), 8);
    close(fd);
}

static void test_hostile_segment(void **state)
{
    (void)state;
    const char *name = st_name("hostile");
    weft_store *st;
    weft_store_opts o = st_opts(256u << 10, 0);
    o.flags = WEFT_STORE_OPEN_EXISTING;
    /* pure garbage, empty, truncated */
    hostile(name, 1u << 20, (size_t)-1, 0, 0);
    assert_int_equal(weft_store_open(name, &o, &st), -EPROTO);
    hostile(name, 0, (size_t)-1, 0, 0);
    assert_int_equal(weft_store_open(name, &o, &st), -EPROTO);
    /* a real store with its magic, version, capacity, an offset or the
     * first block's size changed */
    struct { size_t at; uint64_t val; } edits[] = {
        {0, 0x1234}, {8, 2 | (uint64_t)4096 << 32}, {24, 12345},
        {24, 1ull << 50}, {32, 0}, {64, 0}, {72, 999},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        weft_store_unlink(name, NULL);
        hostile(name, 0, edits[i].at, edits[i].val, 1);
        assert_int_equal(weft_store_open(name, &o, &st), -EPROTO);
    }
    weft_store_unlink(name, NULL);
}

/* A descriptor whose offset lies within a block header of the end of the
 * data area (a corrupt or foreign segment) is refused by get, whatever
 * its size: the bounds check once wrapped around there and passed it. */
static void test_offset_near_end(void **state)
{
    (void)state;
    const char *name = st_name("nearend");
    weft_store_opts o = st_opts(256u << 10, 0);
    weft_store *st;
    assert_int_equal(weft_store_open(name, &o, &st), 0);
    weft_store_id id = st_id(1);
    char buf[64] = {0};
    assert_int_equal(weft_store_put(st, &id, buf, sizeof buf, 0), 0);
    st_desc *x = st_desc_at(st, st_find_locked(st, &id));
    uint64_t off = atomic_load(&x->off);
    atomic_store(&x->off, st->capacity - 8);
    weft_store_obj obj;
    assert_int_equal(weft_store_get(st, &id, 0, &obj), -EPROTO);
    atomic_store(&x->off, off);
    assert_int_equal(weft_store_get(st, &id, 0, &obj), 0);
    assert_int_equal(weft_store_release(st, &obj), 0);
    weft_store_close(st);
    weft_store_unlink(name, NULL);
}

/* A client slot whose count of pending seals is garbage (a corrupt
 * segment) is refused by the checks, and the next drain of that list
 * empties it: the drain's compare-and-swap expected the count capped at
 * ST_PEND_MAX, never matched it, and spun for ever under the lock. */
static void test_pending_count_corrupt(void **state)
{
    (void)state;
    const char *name = st_name("npend");
    weft_store_opts o = st_opts(256u << 10, 0);
    weft_store *a, *b, *c;
    assert_int_equal(weft_store_open(name, &o, &a), 0);
    assert_int_equal(weft_store_open(name, NULL, &b), 0);
    assert_int_equal(st_put_n(b, 1, 100, 0), 0); /* sealed, pending */
    st_client *cl = &b->clients[b->me];
    assert_int_equal(atomic_load(&cl->npend), 1);
    atomic_store(&cl->npend, 1000);
    char why[200];
    assert_int_equal(weft_store_check(a, why, sizeof why), -EUCLEAN);
    assert_int_equal(weft_store_open(name, NULL, &c), -EPROTO);
    weft_store_id id = st_id(1);
    assert_int_equal(weft_store_contains(b, &id), 1); /* drains b's list */
    assert_int_equal(atomic_load(&cl->npend), 0);
    assert_int_equal(weft_store_check(a, why, sizeof why), 0);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(a, &s), 0);
    assert_int_equal(s.sealed, 1);
    assert_int_equal(weft_store_close(b), 0);
    assert_int_equal(weft_store_close(a), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

/* A create whose index insert first rebuilds the index (tombstones past a
 * quarter of it) leaves one entry for the object: the rebuild inserted
 * it, and the insert used to add a second, which outlived its delete. */
static void test_insert_after_rebuild(void **state)
{
    fixture *f = *state;
    weft_store *st = f->st;
    f->st->h->index_tombs = f->st->index_mask; /* as after many deletes */
    weft_store_id id = st_id(1);
    assert_int_equal(weft_store_put(st, &id, "x", 1, 0), 0);
    uint32_t d = st_find_locked(st, &id), entries = 0;
    for (uint32_t i = 0; i <= st->index_mask; i++)
        entries += atomic_load(&st->index[i]) == d + 1;
    assert_int_equal(entries, 1);
    assert_int_equal(st->h->index_used, 1);
    assert_int_equal(weft_store_delete(st, &id), 0);
    assert_int_equal(st->h->index_used, 0);
}

/* A free block that fits, behind more than 64 smaller ones of its size
 * class and with no larger block free, is found: the first fit gave up
 * after 64 and the create failed with -ENOSPC (or evicted needlessly).
 * Everything pinned, nothing can be evicted. */
static void test_fit_deep_in_class(void **state)
{
    (void)state;
    const char *name = st_name("deepfit");
    weft_store_opts o = st_opts(1u << 20, 0);
    weft_store *st;
    assert_int_equal(weft_store_open(name, &o, &st), 0);
    /* blocks laid out from offset 0: H (4224 bytes with the header), then
     * 100 times a keeper (128) and a small hole S (4160), a last keeper,
     * and a filler to the end; H and the S are in one size class */
    const unsigned holes = 100;
    uint64_t n = 0, used = 4224 + holes * (128 + 4160) + 128;
    assert_int_equal(st_put_n(st, n++, 4160, WEFT_STORE_PIN), 0); /* H */
    for (unsigned i = 0; i < holes; i++) {
        assert_int_equal(st_put_n(st, n++, 64, WEFT_STORE_PIN), 0);
        assert_int_equal(st_put_n(st, n++, 4096, WEFT_STORE_PIN), 0);
    }
    assert_int_equal(st_put_n(st, n++, 64, WEFT_STORE_PIN), 0);
    assert_int_equal(st_put_n(st, n++, st->capacity - used - 64,
                              WEFT_STORE_PIN), 0);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.used, s.capacity);
    /* H freed first: the small holes, freed after it, are listed first */
    weft_store_id id = st_id(0);
    assert_int_equal(weft_store_delete(st, &id), 0);
    for (unsigned i = 0; i < holes; i++) {
        id = st_id(2 + 2 * i);
        assert_int_equal(weft_store_delete(st, &id), 0);
    }
    assert_int_equal(st_put_n(st, 1000, 4160, WEFT_STORE_PIN), 0);
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.evictions, 0);
    char why[200];
    assert_int_equal(weft_store_check(st, why, sizeof why), 0);
    assert_int_equal(weft_store_close(st), 0);
    assert_int_equal(weft_store_unlink(name, NULL), 0);
}

/* test_created_then_full: the other handle that takes the only slot
 * between the create and the join. */
static const char *full_name;
static weft_store *full_other;

static void full_hook(const char *point)
{
    if (strcmp(point, "open:created") != 0 || full_other)
        return;
    assert_int_equal(weft_store_open(full_name, NULL, &full_other), 0);
}

/* An open that created the store and then finds every slot taken (another
 * process attached first) fails with -EUSERS and removes the store it
 * created, as weft_store_open promises; the name used to stay. */
static void test_created_then_full(void **state)
{
    (void)state;
    full_name = st_name("full");
    full_other = NULL;
    weft_store_opts o = st_opts(256u << 10, 0);
    o.max_clients = 1;
    weft_store *st;
    weft__store_hook = full_hook;
    int rc = weft_store_open(full_name, &o, &st);
    weft__store_hook = NULL;
    assert_int_equal(rc, -EUSERS);
    assert_non_null(full_other);
    o.flags = WEFT_STORE_OPEN_EXISTING;
    assert_int_equal(weft_store_open(full_name, &o, &st), -ENOENT);
    assert_int_equal(weft_store_put(full_other, &(weft_store_id){{1}}, "x",
                                    1, 0), 0); /* its mapping stays */
    assert_int_equal(weft_store_close(full_other), 0);
}

/* An empty object's data pointer points into its own block: it used to
 * be the header of the next block, so that a byte written there (a
 * user's mistake, but one that must not break the store for everyone)
 * corrupted the heap. The object seals, reads back with size 0, and
 * takes a block of its own (a header and one unit). */
static void test_empty_object(void **state)
{
    weft_store *st = ((fixture *)*state)->st;
    weft_store_id z = st_id(1);
    void *p = NULL;
    assert_int_equal(weft_store_create(st, &z, 0, 0, &p), 0);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    memset(p, 0xA5, 64);
    assert_int_equal(weft_store_seal(st, &z), 0);
    assert_int_equal(st_put_n(st, 2, 100, 0), 0); /* the next block */
    char why[200];
    if (weft_store_check(st, why, sizeof why))
        fail_msg("after a write to an empty object: %s", why);
    weft_store_obj obj;
    assert_int_equal(weft_store_get(st, &z, 0, &obj), 0);
    assert_int_equal(obj.size, 0);
    assert_non_null(obj.data);
    assert_int_equal(weft_store_release(st, &obj), 0);
    weft_store_id two = st_id(2);
    assert_int_equal(weft_store_get(st, &two, 0, &obj), 0);
    assert_true(st_verify(2, obj.data, obj.size));
    assert_int_equal(weft_store_release(st, &obj), 0);
    weft_store_stats s;
    assert_int_equal(weft_store_stats_get(st, &s), 0);
    assert_int_equal(s.used, 128 + 64 + 128);
    assert_int_equal(weft_store_delete(st, &z), 0);
    assert_int_equal(weft_store_delete(st, &two), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_then_recover, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_out_of_slots, setup, teardown),
        cmocka_unit_test(test_two_stores),
        cmocka_unit_test(test_open_options),
        cmocka_unit_test(test_hostile_segment),
        cmocka_unit_test(test_offset_near_end),
        cmocka_unit_test(test_pending_count_corrupt),
        cmocka_unit_test_setup_teardown(test_insert_after_rebuild, setup,
                                        teardown),
        cmocka_unit_test(test_fit_deep_in_class),
        cmocka_unit_test(test_created_then_full),
        cmocka_unit_test_setup_teardown(test_empty_object, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
