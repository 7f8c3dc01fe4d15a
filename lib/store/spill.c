/* Spilling: when nothing can be evicted (the objects are pinned), sealed,
 * unreferenced pinned objects are written in LRU order to one new spill
 * file per batch through io_uring, then their blocks are freed; a get of
 * a spilled object reads it back into a new block. All under the store
 * lock (the victims are claimed, so lock-free getters back off to the
 * locked path and wait for the restore). A spill file goes when its last
 * object is restored or deleted. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "st.h"

#define PIECE (1u << 20)   /* bytes per I/O request */
#define WINDOW 32u         /* requests in flight */
#define BATCH_MAX (64ull << 20)
#define VICTIMS_MAX 4096u

/* dir/weft-store-NAME-INSTANCE-FILE.spill: the instance (st_hdr) keeps
 * apart the files of two stores that had the same name, one unlinked
 * while still open, the other created under its name since; the files are
 * opened O_TRUNC. */
int st_spill_path(const char *dir, const char *name, uint64_t instance,
                  uint32_t file, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/weft-store-%s-%016llx-%u.spill", dir, name,
                     (unsigned long long)instance, file);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int ring(weft_store *st)
{
    if (st->ring_ok == 0) {
        st->ring_ok = io_uring_queue_init(WINDOW, &st->ring, 0) == 0 ? 1 : -1;
        if (st->ring_ok > 0)
            weft__ring_opened();
    }
    return st->ring_ok > 0;
}

void st_spill_close(weft_store *st)
{
    if (st->ring_ok > 0) {
        weft__ring_closing();
        io_uring_queue_exit(&st->ring);
    }
    st->ring_ok = 0;
}

/* Plain pread/pwrite of what the ring left undone (short transfers, or
 * no ring at all). */
static int rw_plain(int fd, int wr, uint8_t *buf, uint64_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = wr ? pwrite(fd, buf, len, (off_t)off)
                       : pread(fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        buf += n;
        len -= (uint64_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

typedef struct io_piece {
    uint8_t *buf;
    uint64_t len, off;
} io_piece;

/* The path of this store's spill file f. */
static int own_spill_path(weft_store *st, uint32_t f, char *out, size_t len)
{
    return st_spill_path(st->spill_dir, st->name, st->h->instance, f, out,
                         len);
}

/* Waits for a completion; a signal (EINTR) is no reason to stop waiting. */
static int reap_one(weft_store *st, struct io_uring_cqe **cqe)
{
    int rc;
    do
        rc = io_uring_wait_cqe(&st->ring, cqe);
    while (rc == -EINTR);
    return rc;
}

/* Submits the k queued requests; how many the kernel took (all but after
 * an error, then in *err). */
static unsigned submit_all(weft_store *st, unsigned k, int *err)
{
    unsigned sent = 0;
    while (sent < k) {
        int rc = io_uring_submit(&st->ring);
        if (rc == -EINTR)
            continue;
        if (rc <= 0) {
            *err = rc < 0 ? rc : -EIO;
            break;
        }
        sent += (unsigned)rc;
    }
    return sent;
}

/* Transfers pieces p[0..k) and reaps every completion before it returns,
 * whatever failed: a request the kernel holds still reads into (or writes
 * from) its block, which the caller frees or reuses on an error, and a
 * completion left in the ring would be counted by the next batch. A short
 * piece is finished by hand. After an error that leaves the ring unsure
 * (requests queued but not taken, a completion that cannot be waited
 * for) the ring is closed, so nothing of this batch reaches the next. */
static int rw_window(weft_store *st, int fd, int wr, io_piece *p, unsigned k)
{
    for (unsigned j = 0; j < k; j++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
        if (wr)
            io_uring_prep_write(sqe, fd, p[j].buf, (unsigned)p[j].len,
                                p[j].off);
        else
            io_uring_prep_read(sqe, fd, p[j].buf, (unsigned)p[j].len,
                               p[j].off);
        io_uring_sqe_set_data64(sqe, j);
    }
    int err = 0;
    unsigned sent = submit_all(st, k, &err);
    int broken = sent < k;
    ST_POINT("spill:submitted");
    for (unsigned done = 0; done < sent; done++) {
        struct io_uring_cqe *cqe;
        int rc = reap_one(st, &cqe);
        if (rc < 0) {
            err = err ? err : rc;
            broken = 1;
            break;
        }
        io_piece *q = &p[io_uring_cqe_get_data64(cqe)];
        int res = cqe->res;
        io_uring_cqe_seen(&st->ring, cqe);
        if (res < 0 && !err)
            err = res;
        else if (res >= 0 && (uint64_t)res < q->len && !err)
            err = rw_plain(fd, wr, q->buf + res, q->len - (uint64_t)res,
                           q->off + (uint64_t)res);
    }
    if (broken)
        st_spill_close(st); /* the next transfer opens a new ring */
    return err;
}

/* Transfers n segments between memory and the file, cut into pieces of
 * at most PIECE bytes, WINDOW pieces in flight at a time (across
 * segments: a batch of small objects is a few large submissions). */
static int rw_many(weft_store *st, int fd, int wr, const io_piece *seg,
                   uint32_t n)
{
    if (!ring(st)) {
        for (uint32_t i = 0; i < n; i++) {
            int rc = rw_plain(fd, wr, seg[i].buf, seg[i].len, seg[i].off);
            if (rc)
                return rc;
        }
        return 0;
    }
    io_piece p[WINDOW];
    unsigned k = 0;
    for (uint32_t i = 0; i < n; i++) {
        for (uint64_t at = 0; at < seg[i].len;) {
            uint64_t len = seg[i].len - at < PIECE ? seg[i].len - at : PIECE;
            p[k++] = (io_piece){seg[i].buf + at, len, seg[i].off + at};
            at += len;
            if (k == WINDOW) {
                int rc = rw_window(st, fd, wr, p, k);
                if (rc)
                    return rc;
                k = 0;
            }
        }
    }
    return k ? rw_window(st, fd, wr, p, k) : 0;
}

static uint32_t free_file(weft_store *st)
{
    for (uint32_t i = 0; i < ST_SPILL_FILES; i++) {
        uint32_t f = (st->h->spill_next + i) % ST_SPILL_FILES;
        if (st->h->spill_live[f] == 0)
            return f;
    }
    return ST_NIL32;
}

/* Claims pinned, sealed, unreferenced objects from the LRU end until
 * their blocks make `target` bytes. */
static uint32_t pick_victims(weft_store *st, uint64_t target, uint32_t *v)
{
    uint32_t n = 0;
    uint64_t got = 0;
    for (uint32_t d = st->h->lru_head; d != ST_NIL32 && got < target &&
                                       n < VICTIMS_MAX;
         d = st_desc_at(st, d)->lru_next) {
        st_desc *x = st_desc_at(st, d);
        if (!(x->flags & WEFT_STORE_PIN) || st_try_claim(st, d) != 0)
            continue;
        v[n++] = d;
        got += x->block;
    }
    return n;
}

static uint8_t *obj_data(weft_store *st, st_desc *x)
{
    return st->data + atomic_load_explicit(&x->off, memory_order_relaxed) +
           ST_BLK_HDR;
}

static int write_victims(weft_store *st, int fd, const uint32_t *v,
                         uint32_t n, uint64_t *pos)
{
    io_piece *seg = weft__malloc(sizeof *seg * (n ? n : 1));
    if (!seg)
        return -ENOMEM;
    uint64_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        st_desc *x = st_desc_at(st, v[i]);
        uint64_t size = atomic_load_explicit(&x->size, memory_order_relaxed);
        pos[i] = at;
        seg[i] = (io_piece){obj_data(st, x), size, at};
        at += size;
    }
    int rc = rw_many(st, fd, 1, seg, n);
    weft__free(seg);
    return rc;
}

/* The victims are on disk: record where, mark them SPILLED (the order of
 * st.h: location first, then the state), free their blocks. */
static void commit_victims(weft_store *st, uint32_t f, const uint32_t *v,
                           uint32_t n, const uint64_t *pos)
{
    st_hdr *h = st->h;
    for (uint32_t i = 0; i < n; i++) {
        st_desc *x = st_desc_at(st, v[i]);
        x->spill_file = f;
        x->spill_off = pos[i];
        atomic_store_explicit(&x->state, ST_SPILLED, memory_order_seq_cst);
        ST_POINT("spill:committed-one");
        st_lru_unlink(st, v[i]);
        st_heap_free(st, atomic_load_explicit(&x->off, memory_order_relaxed));
        h->spill_live[f]++;
        ST_SUB(&h->objects, 1);
        ST_SUB(&h->sealed, 1);
        ST_ADD(&h->spilled, 1);
        ST_ADD(&h->spills, 1);
        ST_ADD(&h->spilled_bytes,
               atomic_load_explicit(&x->size, memory_order_relaxed));
    }
    h->spill_next = (f + 1) % ST_SPILL_FILES;
}

/* The caller's create says only -ENOSPC (no room): say once why the
 * spill directory did not give any, until a spill works again. Nothing
 * to spill (n == 0) is not news. */
static void spill_failed(weft_store *st, int rc, uint32_t n)
{
    if (n == 0 || st->spill_warned)
        return;
    st->spill_warned = true;
    weft__log("store %s: cannot spill to %s (%s): objects stay in memory, "
              "creates that need the room fail with ENOSPC",
              st->name, st->spill_dir, strerror(-rc));
}

int st_spill(weft_store *st, uint64_t need)
{
    uint32_t f = free_file(st);
    if (!st->spill_dir || f == ST_NIL32)
        return -ENOSPC;
    uint64_t target = st->capacity / 4 < BATCH_MAX ? st->capacity / 4
                                                    : BATCH_MAX;
    target = need > target ? need : target;
    uint32_t *v = weft__malloc(VICTIMS_MAX * (sizeof *v + sizeof(uint64_t)));
    if (!v)
        return -ENOMEM;
    uint64_t *pos = (uint64_t *)(v + VICTIMS_MAX);
    uint32_t n = pick_victims(st, target, v);
    int rc = n ? 0 : -ENOSPC, fd = -1;
    char path[4096];
    if (rc == 0)
        rc = own_spill_path(st, f, path, sizeof path);
    if (rc == 0 && (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                              0600)) < 0)
        rc = -errno;
    if (rc == 0)
        rc = write_victims(st, fd, v, n, pos);
    if (rc == 0) {
        ST_POINT("spill:written");
        commit_victims(st, f, v, n, pos);
    } else {
        for (uint32_t i = 0; i < n; i++)
            atomic_store_explicit(&st_desc_at(st, v[i])->state, ST_SEALED,
                                  memory_order_seq_cst);
        if (fd >= 0)
            unlink(path);
        spill_failed(st, rc, n);
    }
    if (rc == 0)
        st->spill_warned = false;
    if (fd >= 0)
        close(fd);
    weft__free(v);
    return rc;
}

void st_spill_drop(weft_store *st, uint32_t f)
{
    if (f >= ST_SPILL_FILES || st->h->spill_live[f] == 0)
        return;
    if (--st->h->spill_live[f] > 0 || !st->spill_dir)
        return;
    char path[4096];
    if (own_spill_path(st, f, path, sizeof path) == 0)
        unlink(path);
}

static int read_back(weft_store *st, st_desc *x, uint64_t off)
{
    char path[4096];
    int rc = st->spill_dir
                 ? own_spill_path(st, x->spill_file, path, sizeof path)
                 : -EIO;
    if (rc)
        return -EIO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -EIO;
    io_piece seg = {st->data + off + ST_BLK_HDR,
                    atomic_load_explicit(&x->size, memory_order_relaxed),
                    x->spill_off};
    rc = rw_many(st, fd, 0, &seg, 1);
    close(fd);
    return rc ? -EIO : 0;
}

/* Under the lock: brings spilled object d back into memory, sealed. */
int st_restore(weft_store *st, uint32_t d)
{
    st_hdr *h = st->h;
    st_desc *x = st_desc_at(st, d);
    uint64_t size = atomic_load_explicit(&x->size, memory_order_relaxed);
    uint64_t off, got;
    if (!st_spilled_ok(st, x))
        return -EPROTO; /* a corrupt segment: the restore would overrun */
    int rc = st_alloc_block(st, st_block_need(size), &off, &got);
    if (rc)
        return rc;
    rc = read_back(st, x, off);
    if (rc) {
        st_heap_free(st, off);
        return rc;
    }
    atomic_store_explicit(&x->off, off, memory_order_relaxed);
    x->block = got;
    atomic_store_explicit(&x->touched, 0, memory_order_relaxed);
    /* seq_cst: pairs with try_ref's load of state; off is visible with it */
    atomic_store_explicit(&x->state, ST_SEALED, memory_order_seq_cst);
    st_lru_push(st, d);
    st_spill_drop(st, x->spill_file);
    ST_ADD(&h->objects, 1);
    ST_ADD(&h->sealed, 1);
    ST_SUB(&h->spilled, 1);
    ST_ADD(&h->restores, 1);
    ST_ADD(&h->restored_bytes, size);
    return 0;
}
