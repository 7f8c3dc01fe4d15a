/* Helpers of the object store's tests: unique store names, ids from
 * numbers, payloads whose bytes follow from their id (so any process can
 * verify any object without being told what it holds). */
#ifndef TEST_STORE_UTIL_H
#define TEST_STORE_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft.h>

/* The store's test hook (lib/store/st.h): called with the name of each
 * ST_POINT the store passes; NULL (the default) for none. */
extern void (*weft__store_hook)(const char *point);

/* Files in directory dir (a spill directory), dot files aside. */
static inline int st_files_in(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* WEFT_TEST_SCALE divides the sizes of long tests (sanitizer builds). */
static inline int st_scale(void)
{
    const char *s = getenv("WEFT_TEST_SCALE");
    int v = s ? atoi(s) : 1;
    return v > 0 ? v : 1;
}

/* A name no other test (or run) uses: test tag, pid, a counter. */
static inline const char *st_name(const char *tag)
{
    static char buf[8][96];
    static int k;
    char *b = buf[k++ % 8];
    static unsigned n;
    snprintf(b, 96, "weft-test-%s-%d-%u", tag, (int)getpid(), n++);
    return b;
}

static inline weft_store_id st_id(uint64_t n)
{
    weft_store_id id;
    memset(&id, 0, sizeof id);
    memcpy(id.bytes, &n, sizeof n);
    id.bytes[19] = 0xA5;
    return id;
}

static inline uint64_t st_mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    return x;
}

/* The payload of object n: size bytes derived from n. */
static inline void st_fill(uint64_t n, void *p, size_t size)
{
    uint8_t *b = p;
    uint64_t s = st_mix(n + 1);
    for (size_t i = 0; i < size; i++) {
        if (i % 8 == 0)
            s = st_mix(s + i);
        b[i] = (uint8_t)(s >> (8 * (i % 8)));
    }
}

static inline int st_verify(uint64_t n, const void *p, size_t size)
{
    const uint8_t *b = p;
    uint64_t s = st_mix(n + 1);
    for (size_t i = 0; i < size; i++) {
        if (i % 8 == 0)
            s = st_mix(s + i);
        if (b[i] != (uint8_t)(s >> (8 * (i % 8))))
            return 0;
    }
    return 1;
}

/* Size of object n in the tests that mix sizes: 0 .. 16 KiB. */
static inline size_t st_size_of(uint64_t n)
{
    uint64_t m = st_mix(n * 7 + 3);
    return (m % 4 == 0) ? 0 : (size_t)(m % (16u << 10));
}

static inline int st_put_n(weft_store *st, uint64_t n, size_t size,
                           unsigned flags)
{
    weft_store_id id = st_id(n);
    void *p;
    int rc = weft_store_create(st, &id, size, flags, &p);
    if (rc)
        return rc;
    st_fill(n, p, size);
    return weft_store_seal(st, &id);
}

static inline weft_store_opts st_opts(size_t cap, uint32_t objs)
{
    weft_store_opts o;
    weft_store_opts_default(&o);
    o.capacity = cap;
    o.max_objects = objs;
    return o;
}

/* A new store that spills: makes the directory dir (a mkdtemp template,
 * rewritten in place), names the store after tag (*name) and opens it
 * with st_opts(cap, objs) and that spill directory. 0 or -errno. */
static inline int st_open_spilling(char *dir, const char *tag, size_t cap,
                                   uint32_t objs, const char **name,
                                   weft_store **st)
{
    *name = st_name(tag);
    if (!mkdtemp(dir))
        return -errno;
    weft_store_opts o = st_opts(cap, objs);
    o.spill_dir = dir;
    return weft_store_open(*name, &o, st);
}

/* Waits for child pid; its exit status, or 128 + signal. */
static inline int st_wait(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status)
                             : 128 + WTERMSIG(status);
}

#endif
