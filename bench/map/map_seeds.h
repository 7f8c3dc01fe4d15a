/* The sequential pieces of the map suite's seed workloads, shared by every
 * program: each implementation only decides which ranges of lines, chunks
 * or partitions run where. C11, also C++.
 *
 *   wordcount  count the occurrences of every distinct word of the text in
 *              a hash table (one per worker, merged at the end); answer:
 *              the sum over distinct words of mk_mix(fnv1a(word) + count).
 *   json       parse every record and average the "age" fields; answer:
 *              the sum of the ages (the average is that / records).
 *   join       partitioned hash join of R and S on the key: partition both
 *              by the key's top bits (histograms per chunk of rows, prefix
 *              sums, a scatter per chunk), then per partition build a hash
 *              table of R's rows and probe it with S's; answer:
 *              matches * 0x9E3779B97F4A7C15 + the sum of both payloads of
 *              every match, modulo 2^64. */
#ifndef BENCH_MAP_SEEDS_H
#define BENCH_MAP_SEEDS_H

#include "map_gen.h"

#include <stdio.h>

/* ---- word count: open addressing on a 64-bit FNV-1a hash; a slot points
 * at the word's first occurrence in the text. */

typedef struct wc_slot {
    uint64_t hash;
    const char *word; /* NULL = empty */
    uint32_t len, count;
} wc_slot;

typedef struct wc_table {
    wc_slot *slot;
    size_t mask, used;
} wc_table;

static inline uint64_t wc_hash(const char *s, size_t len)
{
    uint64_t h = 0xCBF29CE484222325ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001B3ULL;
    return h;
}

/* An empty table of 2^14 slots (the vocabulary fills a third), or NULL. */
static inline wc_table *wc_new(void)
{
    wc_table *t = (wc_table *)malloc(sizeof *t);
    if (t == NULL)
        return NULL;
    t->mask = (1u << 14) - 1;
    t->used = 0;
    t->slot = (wc_slot *)calloc(t->mask + 1, sizeof *t->slot);
    if (t->slot == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

static inline void wc_free(wc_table *t)
{
    if (t != NULL)
        free(t->slot);
    free(t);
}

/* The slot of the word (hash h), empty when the word is not there. */
static inline wc_slot *wc_find(wc_table *t, uint64_t h, const char *w,
                               size_t len)
{
    size_t i = (size_t)h & t->mask;
    for (;;) {
        wc_slot *s = &t->slot[i];
        if (s->word == NULL || (s->hash == h && s->len == len &&
                                memcmp(s->word, w, len) == 0))
            return s;
        i = (i + 1) & t->mask;
    }
}

static inline int wc_grow(wc_table *t);

/* count more occurrences of the word; 0, or -1 out of memory. */
static inline int wc_add(wc_table *t, uint64_t h, const char *w, size_t len,
                         uint32_t count)
{
    wc_slot *s = wc_find(t, h, w, len);
    if (s->word == NULL) {
        if (2 * (t->used + 1) > t->mask + 1) { /* keep the load under 1/2 */
            if (wc_grow(t) != 0)
                return -1;
            s = wc_find(t, h, w, len);
        }
        s->hash = h;
        s->word = w;
        s->len = (uint32_t)len;
        t->used++;
    }
    s->count += count;
    return 0;
}

static inline int wc_grow(wc_table *t)
{
    wc_table big = { NULL, 2 * t->mask + 1, 0 };
    big.slot = (wc_slot *)calloc(big.mask + 1, sizeof *big.slot);
    if (big.slot == NULL)
        return -1;
    for (size_t i = 0; i <= t->mask; i++)
        if (t->slot[i].word != NULL)
            *wc_find(&big, t->slot[i].hash, t->slot[i].word,
                     t->slot[i].len) = t->slot[i];
    big.used = t->used;
    free(t->slot);
    *t = big;
    return 0;
}

/* Count the words of lines [lo, hi); 0, or -1 out of memory. */
static inline int wc_count_lines(wc_table *t, const mg_lines *l, size_t lo,
                                 size_t hi)
{
    const char *p = l->text + l->off[lo], *end = l->text + l->off[hi];
    while (p < end) {
        const char *w = p;
        while (*p != ' ' && *p != '\n')
            p++;
        if (p > w && wc_add(t, wc_hash(w, (size_t)(p - w)), w,
                            (size_t)(p - w), 1) != 0)
            return -1;
        p++;
    }
    return 0;
}

/* Add from's counts into into; 0, or -1 out of memory. */
static inline int wc_merge(wc_table *into, const wc_table *from)
{
    for (size_t i = 0; i <= from->mask; i++) {
        const wc_slot *s = &from->slot[i];
        if (s->word != NULL &&
            wc_add(into, s->hash, s->word, s->len, s->count) != 0)
            return -1;
    }
    return 0;
}

/* Merge from into into, the way every parallel program ends its word
 * count: while into is still empty, the two tables trade contents (into
 * takes from's counts, from is left empty), else from's counts are added.
 * So the first of the per-worker tables costs nothing to merge, and the
 * total starts from a full table rather than inserting every word of the
 * first one again. 0, or -1 out of memory. */
static inline int wc_absorb(wc_table *into, wc_table *from)
{
    if (into->used == 0) {
        wc_table t = *into;
        *into = *from;
        *from = t;
        return 0;
    }
    return wc_merge(into, from);
}

/* The answer: independent of the order of the slots. */
static inline uint64_t wc_answer(const wc_table *t)
{
    uint64_t a = 0;
    for (size_t i = 0; i <= t->mask; i++)
        if (t->slot[i].word != NULL)
            a += mk_mix(t->slot[i].hash + t->slot[i].count);
    return a;
}

/* The serial twin: lines [0, n) of l into one table; 0, or -1 out of
 * memory. */
static inline int wc_serial(const mg_lines *l, size_t n, uint64_t *answer)
{
    wc_table *t = wc_new();
    int rc = t != NULL ? wc_count_lines(t, l, 0, n) : -1;
    if (rc == 0)
        *answer = wc_answer(t);
    wc_free(t);
    return rc;
}

/* ---- json: a small parser of one JSON object per line, strict enough to
 * reject what is not JSON; the field wanted is read, every other value
 * (strings with escapes, numbers, arrays, objects, literals) is skipped. */

typedef struct json_cur {
    const char *p, *end;
} json_cur;

static inline void json_ws(json_cur *c)
{
    while (c->p < c->end &&
           (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static inline int json_hex4(json_cur *c)
{
    for (int k = 0; k < 4; k++, c->p++) {
        char h = c->p < c->end ? *c->p : '\0';
        if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
              (h >= 'A' && h <= 'F')))
            return -1;
    }
    return 0;
}

/* A string at c->p ('"' first): its raw bytes between the quotes in
 * *s, *len (escapes left as they are); 0 or -1. */
static inline int json_string(json_cur *c, const char **s, size_t *len)
{
    if (c->p >= c->end || *c->p != '"')
        return -1;
    *s = ++c->p;
    while (c->p < c->end && *c->p != '"') {
        if ((unsigned char)*c->p < 0x20)
            return -1;
        if (*c->p++ != '\\')
            continue;
        if (c->p >= c->end)
            return -1;
        char e = *c->p++;
        if (e == 'u') {
            if (json_hex4(c) != 0)
                return -1;
        } else if (e == '\0' || strchr("\"\\/bfnrt", e) == NULL) {
            return -1;
        }
    }
    if (c->p >= c->end)
        return -1;
    *len = (size_t)(c->p++ - *s);
    return 0;
}

static inline int json_digits(json_cur *c)
{
    const char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start ? 0 : -1;
}

/* A number; its value in *v when it is an integer of at most 18 digits,
 * else *v = -1. 0 or -1 (not a number). */
static inline int json_number(json_cur *c, long long *v)
{
    const char *start = c->p;
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (json_digits(c) != 0)
        return -1;
    int integer = 1;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        integer = 0;
        if (json_digits(c) != 0)
            return -1;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        integer = 0;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (json_digits(c) != 0)
            return -1;
    }
    *v = -1;
    if (integer && c->p - start <= 18) {
        long long x = 0;
        for (const char *q = *start == '-' ? start + 1 : start; q < c->p; q++)
            x = 10 * x + (*q - '0');
        *v = *start == '-' ? -x : x;
    }
    return 0;
}

static inline int json_value(json_cur *c, int depth);

/* The members or elements after '{' or '[' up to close; 0 or -1. */
static inline int json_container(json_cur *c, char close, int depth)
{
    const char *s;
    size_t len;
    json_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    for (;;) {
        json_ws(c);
        if (close == '}') {
            if (json_string(c, &s, &len) != 0)
                return -1;
            json_ws(c);
            if (c->p >= c->end || *c->p++ != ':')
                return -1;
        }
        if (json_value(c, depth + 1) != 0)
            return -1;
        json_ws(c);
        if (c->p >= c->end)
            return -1;
        char d = *c->p++;
        if (d == close)
            return 0;
        if (d != ',')
            return -1;
    }
}

/* Skip one value; nesting deeper than 64 is refused. 0 or -1. */
static inline int json_value(json_cur *c, int depth)
{
    const char *s;
    size_t len;
    long long v;
    json_ws(c);
    if (c->p >= c->end || depth > 64)
        return -1;
    switch (*c->p) {
    case '"': return json_string(c, &s, &len);
    case '{': c->p++; return json_container(c, '}', depth);
    case '[': c->p++; return json_container(c, ']', depth);
    case 't': case 'f': case 'n': {
        static const char *const lit[3] = { "true", "false", "null" };
        const char *l = lit[*c->p == 't' ? 0 : *c->p == 'f' ? 1 : 2];
        size_t ll = strlen(l);
        if ((size_t)(c->end - c->p) < ll || memcmp(c->p, l, ll) != 0)
            return -1;
        c->p += ll;
        return 0;
    }
    default: return json_number(c, &v);
    }
}

/* The integer "age" of the object that is the line [p, end), or -1 when
 * the line is not one JSON object or has no integer age >= 0. */
static inline long long json_age(const char *p, const char *end)
{
    json_cur c = { p, end };
    long long age = -1;
    const char *key;
    size_t len;
    json_ws(&c);
    if (c.p >= c.end || *c.p++ != '{')
        return -1;
    for (;;) {
        json_ws(&c);
        if (json_string(&c, &key, &len) != 0)
            return -1;
        json_ws(&c);
        if (c.p >= c.end || *c.p++ != ':')
            return -1;
        json_ws(&c);
        int rc = len == 3 && memcmp(key, "age", 3) == 0
                     ? json_number(&c, &age) : json_value(&c, 0);
        json_ws(&c);
        if (rc != 0 || c.p >= c.end)
            return -1;
        char d = *c.p++;
        if (d == '}')
            break;
        if (d != ',')
            return -1;
    }
    json_ws(&c);
    return c.p == c.end ? age : -1;
}

/* What a range of records adds up to. */
typedef struct json_acc {
    uint64_t sum, records, bad;
} json_acc;

static inline void json_lines(json_acc *a, const mg_lines *l, size_t lo,
                              size_t hi)
{
    for (size_t i = lo; i < hi; i++) {
        long long age = json_age(l->text + l->off[i],
                                 l->text + l->off[i + 1] - 1);
        if (age < 0)
            a->bad++;
        else
            a->sum += (uint64_t)age;
        a->records++;
    }
}

static inline void json_combine(json_acc *into, const json_acc *from)
{
    into->sum += from->sum;
    into->records += from->records;
    into->bad += from->bad;
}

/* The answer, after saying why when a record did not parse. */
static inline uint64_t json_answer(const json_acc *a)
{
    if (a->bad > 0)
        fprintf(stderr, "json: %llu of %llu records did not parse\n",
                (unsigned long long)a->bad, (unsigned long long)a->records);
    return a->bad > 0 ? 0 : a->sum;
}

/* ---- join. R's rows and S's are cut into JOIN_CHUNKS equal chunks; the
 * partition of a row is the top JOIN_BITS bits of its key (keys are
 * mk_mix outputs: well spread already). Phases, each parallel over its
 * index except the prefix sums:
 *   join_hist(c)       histograms of chunk c of R and of S
 *   join_offsets()     where each (partition, chunk) goes (serial, small)
 *   join_scatter(c)    copy chunk c's rows to their partitions
 *   join_partition(p)  build a table of R's partition p, probe it with S's
 * The partitioned copies and the tables' space are allocated once per
 * process (join_prepare); the tables are cleared by their partition's
 * task, so that their pages are touched where they are used. */

#define JOIN_BITS 8
#define JOIN_PARTS (1 << JOIN_BITS)
#define JOIN_CHUNKS 256
#define JOIN_USED (1ULL << 63) /* payloads are 32-bit: marks a used slot */

typedef struct join_side {
    mg_row *rows, *part; /* input; partitioned copy */
    size_t n;
    uint32_t hist[JOIN_CHUNKS][JOIN_PARTS];
    size_t start[JOIN_CHUNKS][JOIN_PARTS]; /* where chunk c's rows of p go */
    size_t first[JOIN_PARTS + 1];          /* partition p's rows in part */
} join_side;

typedef struct join_result {
    uint64_t matches, sum;
} join_result;

static struct join_work {
    join_side r, s;
    mg_row *table;                   /* every partition's slots */
    size_t tfirst[JOIN_PARTS + 1];   /* partition p's slots in table */
} jw;

static inline unsigned join_part(uint64_t key)
{
    return (unsigned)(key >> (64 - JOIN_BITS));
}

static inline size_t join_chunk_lo(const join_side *d, size_t c)
{
    return d->n * c / JOIN_CHUNKS;
}

/* Generate R (n rows) and S (4n) and allocate what the runs need. */
static inline int join_prepare(size_t n)
{
    jw.r.n = n;
    jw.s.n = MG_S_PER_R * n;
    jw.r.rows = (mg_row *)malloc(jw.r.n * sizeof(mg_row));
    jw.s.rows = (mg_row *)malloc(jw.s.n * sizeof(mg_row));
    jw.r.part = (mg_row *)malloc(jw.r.n * sizeof(mg_row));
    jw.s.part = (mg_row *)malloc(jw.s.n * sizeof(mg_row));
    /* a table of 2 m + 1 slots for a partition of m rows */
    jw.table = (mg_row *)malloc((2 * n + JOIN_PARTS) * sizeof(mg_row));
    if (!jw.r.rows || !jw.s.rows || !jw.r.part || !jw.s.part || !jw.table)
        return -1;
    for (size_t i = 0; i < jw.r.n; i++)
        jw.r.rows[i] = mg_r_row(i);
    for (size_t j = 0; j < jw.s.n; j++)
        jw.s.rows[j] = mg_s_row(j, n);
    return 0;
}

static inline void join_hist_side(join_side *d, size_t c)
{
    uint32_t *h = d->hist[c];
    memset(h, 0, sizeof d->hist[c]);
    for (size_t i = join_chunk_lo(d, c); i < join_chunk_lo(d, c + 1); i++)
        h[join_part(d->rows[i].key)]++;
}

static inline void join_hist(size_t c)
{
    join_hist_side(&jw.r, c);
    join_hist_side(&jw.s, c);
}

static inline void join_offsets_side(join_side *d)
{
    size_t at = 0;
    for (size_t p = 0; p < JOIN_PARTS; p++) {
        d->first[p] = at;
        for (size_t c = 0; c < JOIN_CHUNKS; c++) {
            d->start[c][p] = at;
            at += d->hist[c][p];
        }
    }
    d->first[JOIN_PARTS] = at;
}

static inline void join_offsets(void)
{
    join_offsets_side(&jw.r);
    join_offsets_side(&jw.s);
    size_t at = 0;
    for (size_t p = 0; p < JOIN_PARTS; p++) {
        jw.tfirst[p] = at;
        at += 2 * (jw.r.first[p + 1] - jw.r.first[p]) + 1;
    }
    jw.tfirst[JOIN_PARTS] = at;
}

static inline void join_scatter_side(join_side *d, size_t c)
{
    size_t at[JOIN_PARTS];
    memcpy(at, d->start[c], sizeof at);
    for (size_t i = join_chunk_lo(d, c); i < join_chunk_lo(d, c + 1); i++)
        d->part[at[join_part(d->rows[i].key)]++] = d->rows[i];
}

static inline void join_scatter(size_t c)
{
    join_scatter_side(&jw.r, c);
    join_scatter_side(&jw.s, c);
}

/* Slot of a key in a table of m slots (the low 32 bits of the key, scaled
 * to [0, m): the top bits chose the partition). */
static inline size_t join_slot(uint64_t key, size_t m)
{
    return (size_t)(((key & 0xFFFFFFFFu) * (uint64_t)m) >> 32);
}

static inline join_result join_partition(size_t p)
{
    join_result res = { 0, 0 };
    mg_row *t = jw.table + jw.tfirst[p];
    size_t m = jw.tfirst[p + 1] - jw.tfirst[p];
    memset(t, 0, m * sizeof *t);
    for (size_t i = jw.r.first[p]; i < jw.r.first[p + 1]; i++) {
        size_t k = join_slot(jw.r.part[i].key, m);
        while (t[k].payload & JOIN_USED)
            k = k + 1 == m ? 0 : k + 1;
        t[k].key = jw.r.part[i].key;
        t[k].payload = jw.r.part[i].payload | JOIN_USED;
    }
    for (size_t j = jw.s.first[p]; j < jw.s.first[p + 1]; j++) {
        uint64_t key = jw.s.part[j].key;
        /* R's keys are distinct: at most one match; stop at it */
        for (size_t k = join_slot(key, m); t[k].payload & JOIN_USED;
             k = k + 1 == m ? 0 : k + 1) {
            if (t[k].key == key) {
                res.matches++;
                res.sum += (t[k].payload & ~JOIN_USED) + jw.s.part[j].payload;
                break;
            }
        }
    }
    return res;
}

static inline uint64_t join_answer(const join_result *res)
{
    uint64_t matches = 0, sum = 0;
    for (size_t p = 0; p < JOIN_PARTS; p++) {
        matches += res[p].matches;
        sum += res[p].sum;
    }
    return matches * 0x9E3779B97F4A7C15ULL + sum;
}

/* The serial twin: every phase in order on the calling thread. */
static inline uint64_t join_serial(void)
{
    join_result res[JOIN_PARTS];
    for (size_t c = 0; c < JOIN_CHUNKS; c++)
        join_hist(c);
    join_offsets();
    for (size_t c = 0; c < JOIN_CHUNKS; c++)
        join_scatter(c);
    for (size_t p = 0; p < JOIN_PARTS; p++)
        res[p] = join_partition(p);
    return join_answer(res);
}

/* Free what join_prepare() allocated, so that a program can prepare
 * another size (weft-scale grows the problem with the workers). */
static inline void join_free(void)
{
    free(jw.r.rows);
    free(jw.s.rows);
    free(jw.r.part);
    free(jw.s.part);
    free(jw.table);
    jw.r.rows = jw.s.rows = jw.r.part = jw.s.part = jw.table = NULL;
    jw.r.n = jw.s.n = 0;
}

#endif
