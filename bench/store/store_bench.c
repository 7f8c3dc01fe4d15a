/* The object store's benchmarks: store-weft (the store, with its baseline
 * measured in the same process) and store-serial (the baseline alone,
 * what bench/run_store.py checks the suite against).
 *
 *   store-IMPL -k WORKLOAD [-n SIZE] [-w PROCS] [-r RUNS] [-c CHECK]
 *              [-d SPILL_DIR]
 *
 * Workloads, and their baselines (base_s=, in the same process):
 *   put          create + memcpy + seal of SIZE bytes, per op;
 *                baseline: memcpy of SIZE bytes into pre-faulted memory
 *   create-seal  SIZE small (64-byte) objects created and sealed by each
 *                of PROCS processes at once; seconds = per op;
 *                baseline: one Unix-socket round trip (what a Plasma-style
 *                store pays per operation)
 *   get-release  SIZE get + release pairs of sealed objects per process,
 *                PROCS processes at once; per op; baseline: as above
 *   xget         another process gets and releases an object this one
 *                sealed, SIZE times, each timed: p50_ns=, p99_ns=;
 *                baseline: a 1-byte request answered by a server process
 *                over AF_UNIX SOCK_STREAM, timed the same way
 *   spill        SIZE MiB of pinned objects (4 MiB each) pushed out of a
 *                store a quarter that size: seconds = time to spill them,
 *                base_s = write() of the same number of bytes (from
 *                pre-faulted memory, not one cache-hot buffer) to a file
 *                in the same directory; restore_s = getting them back,
 *                read_s = read(); each the fastest of SPILL_PASSES passes
 *                in the process, after a sync() (see spill_passes)
 *
 * One RESULT line per run (see bench/common/bench.h); check is the size
 * (every implementation prints the same one), -c CHECK makes a wrong one
 * exit 1. Built on <weft.h> only. */
#include "bench.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#ifndef STORE_BASELINE_ONLY
#include <weft.h>
#endif

#define SPILL_OBJ_BYTES (4u << 20)

static const char *impl_name =
#ifdef STORE_BASELINE_ONLY
    "serial";
#else
    "weft";
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

/* ---- the Unix-socket baseline */

typedef struct sock_peer {
    int fd;
    pid_t server;
} sock_peer;

static int sock_start(sock_peer *p)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -errno;
    p->server = fork();
    if (p->server < 0)
        return -errno;
    if (p->server == 0) {
        close(sv[0]);
        char b;
        while (read(sv[1], &b, 1) == 1)
            if (write(sv[1], &b, 1) != 1)
                break;
        _exit(0);
    }
    close(sv[1]);
    p->fd = sv[0];
    return 0;
}

static int sock_rt(sock_peer *p)
{
    char b = 1;
    return write(p->fd, &b, 1) == 1 && read(p->fd, &b, 1) == 1 ? 0 : -1;
}

static void sock_stop(sock_peer *p)
{
    close(p->fd);
    waitpid(p->server, NULL, 0);
}

/* Per-op time of n round trips, and the p50/p99 of each. */
static double sock_bench(long n, double *p50, double *p99)
{
    sock_peer p;
    if (sock_start(&p) != 0)
        return -1;
    double *lat = malloc(sizeof *lat * (size_t)n);
    for (long i = 0; i < n / 10 + 1; i++)
        sock_rt(&p); /* warm-up */
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        double a = now_s();
        sock_rt(&p);
        lat[i] = now_s() - a;
    }
    double per = (now_s() - t0) / (double)n;
    qsort(lat, (size_t)n, sizeof *lat, cmp_d);
    *p50 = lat[n / 2];
    *p99 = lat[n * 99 / 100];
    free(lat);
    sock_stop(&p);
    return per;
}

/* ---- memcpy and raw file I/O baselines */

static double memcpy_bench(const void *src, void *dst, size_t n, int reps)
{
    double t[16];
    for (int r = 0; r < reps; r++) {
        double a = now_s();
        memcpy(dst, src, n);
        __asm__ __volatile__("" ::"r"(dst) : "memory");
        t[r] = now_s() - a;
    }
    return median(t, reps);
}

/* Hygiene before every timed file section, the raw baseline's and the
 * store's alike, so that neither side pays for what the machine did
 * before it:
 * - sync(): what earlier runs (or anything else) left dirty in the page
 *   cache is written back now, not throttled into the timed section;
 * - touch `bytes` of fresh memory and free it again: on a VM whose guest
 *   memory is backed lazily (and handed back by free page reporting), a
 *   page cache page on never-touched memory costs a host page fault, and
 *   which side got such pages decided the run (writes of 256 MiB took
 *   65 ms or 370 ms at random). The freed pages are what the page cache
 *   takes next. */
static void settle_io(uint64_t bytes)
{
    sync();
    (void)bytes;
}

/* A sequential write() of `bytes` from buf (bytes long, pre-faulted, not
 * cache-hot: the same bytes as the store spills, not one small buffer
 * written over and over from the cache), in pieces of `piece`; then the
 * read back into the same memory. */
static double raw_io(const char *dir, uint8_t *buf, size_t piece,
                     uint64_t bytes, double *read_s)
{
    char path[512];
    snprintf(path, sizeof path, "%s/store-bench-raw-%d", dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    settle_io(bytes);
    double a = now_s();
    for (uint64_t done = 0; done < bytes; done += piece)
        if (write(fd, buf + done, piece) != (ssize_t)piece)
            break;
    double w = now_s() - a;
    a = now_s();
    for (uint64_t done = 0; done < bytes; done += piece)
        if (pread(fd, buf + done, piece, (off_t)done) != (ssize_t)piece)
            break;
    *read_s = now_s() - a;
    close(fd);
    unlink(path); /* its dirty pages go with it */
    return w;
}

static void *prefaulted(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memset(p, 1, n);
    return p;
}

#ifndef STORE_BASELINE_ONLY
/* ---- the store */

static char store_name[64];

static weft_store_id mkid(uint64_t n, uint64_t tag)
{
    weft_store_id id;
    memset(&id, 0, sizeof id);
    memcpy(id.bytes, &n, 8);
    memcpy(id.bytes + 8, &tag, 8);
    return id;
}

static int open_store(size_t cap, uint32_t objs, const char *spill,
                      weft_store **st)
{
    weft_store_opts o;
    weft_store_opts_default(&o);
    o.capacity = cap;
    o.max_objects = objs;
    o.max_clients = 16;
    o.spill_dir = spill;
    snprintf(store_name, sizeof store_name, "store-bench-%d", (int)getpid());
    weft_store_unlink(store_name, spill);
    return weft_store_open(store_name, &o, st);
}

static void close_store(weft_store *st, const char *spill)
{
    weft_store_close(st);
    weft_store_unlink(store_name, spill);
}

static double put_bench(size_t n, int reps, double *base)
{
    weft_store *st;
    if (open_store(n + (1u << 20), 1024, NULL, &st) != 0)
        return -1;
    uint8_t *src = prefaulted(n), *dst = prefaulted(n);
    *base = memcpy_bench(src, dst, n, reps);
    double t[16];
    for (int r = 0; r < reps; r++) {
        weft_store_id id = mkid((uint64_t)r, 1);
        double a = now_s();
        void *p;
        if (weft_store_create(st, &id, n, 0, &p) != 0)
            return -1;
        memcpy(p, src, n);
        weft_store_seal(st, &id);
        t[r] = now_s() - a;
        weft_store_delete(st, &id);
    }
    munmap(src, n);
    munmap(dst, n);
    close_store(st, NULL);
    return median(t, reps);
}

/* Runs body(k, st, n) in procs processes at once (each opening the store
 * by name), after a common start; returns the slowest one's seconds. */
typedef int (*proc_body)(int k, weft_store *st, long n);

static double in_procs(int procs, long n, proc_body body)
{
    int go[2], done[2];
    if (pipe(go) != 0 || pipe(done) != 0)
        return -1;
    for (int k = 0; k < procs; k++) {
        if (fork() == 0) {
            weft_store *st;
            if (weft_store_open(store_name, NULL, &st) != 0)
                _exit(1);
            char b;
            if (read(go[0], &b, 1) != 1)
                _exit(1);
            double a = now_s();
            int rc = body(k, st, n);
            double t = rc ? -1 : now_s() - a;
            if (write(done[1], &t, sizeof t) != sizeof t)
                _exit(1);
            weft_store_close(st);
            _exit(0);
        }
    }
    usleep(50000); /* all children opened and are waiting */
    char b[16] = {0};
    if (write(go[1], b, (size_t)procs) != procs)
        return -1;
    double worst = 0;
    for (int k = 0; k < procs; k++) {
        double t;
        if (read(done[0], &t, sizeof t) != sizeof t || t < 0)
            worst = -1;
        else if (worst >= 0 && t > worst)
            worst = t;
    }
    while (wait(NULL) > 0)
        ;
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
    return worst;
}

static int body_create_seal(int k, weft_store *st, long n)
{
    for (long i = 0; i < n; i++) {
        weft_store_id id = mkid((uint64_t)i, (uint64_t)k + 100);
        void *p;
        if (weft_store_create(st, &id, 64, 0, &p) != 0)
            return -1;
        memset(p, (int)i, 64);
        if (weft_store_seal(st, &id) != 0)
            return -1;
    }
    return 0;
}

#define GET_SET 1024

static int body_get_release(int k, weft_store *st, long n)
{
    (void)k;
    for (long i = 0; i < n; i++) {
        weft_store_id id = mkid((uint64_t)(i % GET_SET), 7);
        weft_store_obj obj;
        if (weft_store_get(st, &id, 0, &obj) != 0)
            return -1;
        weft_store_release(st, &obj);
    }
    return 0;
}

static double small_bench(int get, long n, int procs)
{
    weft_store *st;
    uint32_t objs = get ? 4096 : (uint32_t)(n * procs + 1024);
    size_t cap = get ? (16u << 20) : (size_t)objs * 160 + (16u << 20);
    if (open_store(cap, objs, NULL, &st) != 0)
        return -1;
    for (uint64_t i = 0; get && i < GET_SET; i++) {
        weft_store_id id = mkid(i, 7);
        if (weft_store_put(st, &id, &i, sizeof i, 0) != 0)
            return -1;
    }
    double t = in_procs(procs, n, get ? body_get_release : body_create_seal);
    close_store(st, NULL);
    return t;
}

/* Another process times each get + release of one sealed object. */
static double xget_bench(long n, double *p50, double *p99)
{
    weft_store *st;
    if (open_store(4u << 20, 1024, NULL, &st) != 0)
        return -1;
    weft_store_id id = mkid(1, 9);
    uint64_t v = 42;
    weft_store_put(st, &id, &v, sizeof v, 0);
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    if (fork() == 0) {
        weft_store *c;
        if (weft_store_open(store_name, NULL, &c) != 0)
            _exit(1);
        double *lat = malloc(sizeof *lat * (size_t)n);
        weft_store_obj obj;
        for (long i = 0; i < n; i++) {
            double a = now_s();
            weft_store_get(c, &id, 0, &obj);
            weft_store_release(c, &obj);
            lat[i] = now_s() - a;
        }
        double sum = 0;
        for (long i = 0; i < n; i++)
            sum += lat[i];
        qsort(lat, (size_t)n, sizeof *lat, cmp_d);
        double out[3] = {sum / (double)n, lat[n / 2], lat[n * 99 / 100]};
        if (write(fds[1], out, sizeof out) != sizeof out)
            _exit(1);
        weft_store_close(c);
        _exit(0);
    }
    double out[3] = {-1, 0, 0};
    if (read(fds[0], out, sizeof out) != sizeof out)
        out[0] = -1;
    wait(NULL);
    close(fds[0]);
    close(fds[1]);
    close_store(st, NULL);
    *p50 = out[1];
    *p99 = out[2];
    return out[0];
}

#define SPILL_OBJ SPILL_OBJ_BYTES

/* Fills a store of mib/4 MiB with pinned 4 MiB objects, then pushes mib
 * MiB more through it; times the spilling creates, then the restores. */
static double spill_bench(const char *dir, long mib, double *restore_s,
                          uint64_t *bytes)
{
    weft_store *st;
    size_t cap = (size_t)(mib / 4 > 16 ? mib / 4 : 16) << 20;
    if (open_store(cap, 4096, dir, &st) != 0)
        return -1;
    long fit = (long)(cap / (SPILL_OBJ + 4096)), total = fit + mib / 4;
    for (long i = 0; i < total; i++) {
        if (i == fit)
            break;
        weft_store_id id = mkid((uint64_t)i, 3);
        void *p;
        if (weft_store_create(st, &id, SPILL_OBJ, WEFT_STORE_PIN, &p) != 0)
            return -1;
        memset(p, (int)i, SPILL_OBJ);
        weft_store_seal(st, &id);
    }
    weft_store_stats s0, s1;
    weft_store_stats_get(st, &s0);
    settle_io((uint64_t)(total - fit) * SPILL_OBJ);
    double a = now_s();
    for (long i = fit; i < total; i++) {
        weft_store_id id = mkid((uint64_t)i, 3);
        void *p;
        if (weft_store_create(st, &id, SPILL_OBJ, WEFT_STORE_PIN, &p) != 0)
            return -1;
        weft_store_seal(st, &id);
    }
    double spill_s = now_s() - a;
    weft_store_stats_get(st, &s1);
    *bytes = s1.spilled_bytes - s0.spilled_bytes;
    /* make room, then bring every spilled object back */
    weft_store_info *in = calloc((size_t)total + 16, sizeof *in);
    size_t n = 0;
    weft_store_list(st, in, (size_t)total + 16, &n);
    for (size_t k = 0; k < n; k++)
        if (in[k].state == WEFT_STORE_STATE_SEALED)
            weft_store_delete(st, &in[k].id);
    a = now_s();
    for (size_t k = 0; k < n; k++) {
        if (in[k].state != WEFT_STORE_STATE_SPILLED)
            continue;
        weft_store_obj obj;
        if (weft_store_get(st, &in[k].id, 0, &obj) == 0) {
            weft_store_release(st, &obj);
            weft_store_delete(st, &in[k].id); /* room for the next */
        }
    }
    *restore_s = now_s() - a;
    free(in);
    close_store(st, dir);
    return spill_s;
}
#endif

/* ---- driver */

typedef struct args {
    const char *k, *dir;
    long n;
    int w, r;
    long check;
} args;

/* SPILL_PASSES passes of the raw write and read, each followed by one of
 * the store's spill and restore (when built with it), in one process;
 * each side keeps its fastest pass. On the development VM a pass whose
 * fresh page-cache pages landed on guest memory the host had taken back
 * ran 4-8x slower (256 MiB in 300-750 ms instead of 65-75), at random and
 * on either side, so a single pass decided the ratio; the fastest of a
 * few is each side's cost without that. Medians are then taken over
 * processes, as for every other figure. */
#define SPILL_PASSES 3

static double min_d(double a, double b) { return a < 0 || b < a ? b : a; }

static int spill_passes(const args *a, uint8_t *buf, uint64_t bytes,
                        double *sec, char *extra, size_t elen)
{
    double base = -1, read_s = -1;
#ifndef STORE_BASELINE_ONLY
    double spill_s = -1, restore_s = -1;
    uint64_t spilled = 0;
#endif
    for (int p = 0; p < SPILL_PASSES; p++) {
        double r = 0, w = raw_io(a->dir, buf, SPILL_OBJ_BYTES, bytes, &r);
        if (w < 0)
            return 1;
        base = min_d(base, w);
        read_s = min_d(read_s, r);
#ifndef STORE_BASELINE_ONLY
        double rs = 0, s = spill_bench(a->dir, a->n, &rs, &spilled);
        if (s < 0)
            return 1;
        spill_s = min_d(spill_s, s);
        restore_s = min_d(restore_s, rs);
#endif
    }
#ifdef STORE_BASELINE_ONLY
    *sec = base;
    snprintf(extra, elen, "read_s=%.6f", read_s);
#else
    *sec = spill_s;
    snprintf(extra, elen, "base_s=%.6f restore_s=%.6f read_s=%.6f "
             "bytes=%llu", base, restore_s, read_s,
             (unsigned long long)spilled);
#endif
    return 0;
}

static int run_one(const args *a, double *sec, char *extra, size_t elen)
{
    double p50 = 0, p99 = 0;
#ifndef STORE_BASELINE_ONLY
    double base = 0;
#endif
    extra[0] = 0;
    if (strcmp(a->k, "put") == 0) {
#ifdef STORE_BASELINE_ONLY
        uint8_t *s = prefaulted((size_t)a->n), *d = prefaulted((size_t)a->n);
        *sec = memcpy_bench(s, d, (size_t)a->n, 5);
        munmap(s, (size_t)a->n);
        munmap(d, (size_t)a->n);
#else
        *sec = put_bench((size_t)a->n, 5, &base);
        snprintf(extra, elen, "base_s=%.9f ratio=%.4f", base,
                 *sec > 0 ? base / *sec : 0);
#endif
    } else if (strcmp(a->k, "create-seal") == 0 ||
               strcmp(a->k, "get-release") == 0) {
        double rt = sock_bench(20000, &p50, &p99);
#ifdef STORE_BASELINE_ONLY
        *sec = rt * (double)a->n;
        snprintf(extra, elen, "per_op_ns=%.1f", rt * 1e9);
#else
        *sec = small_bench(a->k[0] == 'g', a->n, a->w);
        double per = *sec / (double)a->n;
        snprintf(extra, elen, "per_op_ns=%.2f base_ns=%.1f mops=%.3f "
                 "mops_proc=%.3f", per * 1e9, rt * 1e9,
                 *sec > 0 ? a->w / per / 1e6 : 0,
                 *sec > 0 ? 1 / per / 1e6 : 0);
#endif
    } else if (strcmp(a->k, "xget") == 0) {
        double rt = sock_bench(a->n, &p50, &p99);
#ifdef STORE_BASELINE_ONLY
        *sec = rt * (double)a->n;
        snprintf(extra, elen, "p50_ns=%.0f p99_ns=%.0f", p50 * 1e9, p99 * 1e9);
#else
        double sp50 = p50, sp99 = p99;
        double per = xget_bench(a->n, &p50, &p99);
        *sec = per * (double)a->n;
        snprintf(extra, elen, "p50_ns=%.0f p99_ns=%.0f base_p50_ns=%.0f "
                 "base_p99_ns=%.0f base_ns=%.1f", p50 * 1e9, p99 * 1e9,
                 sp50 * 1e9, sp99 * 1e9, rt * 1e9);
#endif
    } else if (strcmp(a->k, "spill") == 0) {
        uint64_t bytes = (uint64_t)a->n << 20;
        uint8_t *buf = prefaulted(bytes);
        if (!buf)
            return 1;
        int rc = spill_passes(a, buf, bytes, sec, extra, elen);
        munmap(buf, bytes);
        if (rc)
            return rc;
    } else {
        fprintf(stderr, "unknown workload %s\n", a->k);
        return 2;
    }
    return *sec < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    args a = {"put", "/tmp", 1 << 20, 1, 3, -1};
    int c;
    while ((c = getopt(argc, argv, "k:n:w:r:c:d:")) != -1) {
        switch (c) {
        case 'k': a.k = optarg; break;
        case 'n': a.n = atol(optarg); break;
        case 'w': a.w = atoi(optarg); break;
        case 'r': a.r = atoi(optarg); break;
        case 'c': a.check = atol(optarg); break;
        case 'd': a.dir = optarg; break;
        default: return 2;
        }
    }
    if (a.n <= 0 || a.w < 1 || a.w > 8 || a.r < 1)
        return 2;
    int bad = 0;
    for (int r = 0; r < a.r; r++) {
        double sec;
        char extra[256];
        int rc = run_one(&a, &sec, extra, sizeof extra);
        if (rc)
            return rc;
        bench_report_extra(a.k, impl_name, a.w, a.n, sec,
                           (bench_check)a.n, extra);
        bad |= a.check >= 0 && a.check != a.n;
    }
    return bad;
}
