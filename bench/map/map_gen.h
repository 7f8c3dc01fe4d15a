/* The generated inputs of the map suite's seed workloads: a text for the
 * word count, JSON-like person records, and the two tables of the join.
 * Each line or row is a pure function of its index and a fixed seed, so
 * every program (and map_py.py, through libmapgen) sees the same bytes.
 * Generating is never timed. C11, also C++.
 *
 *   text   line i: 6 to 15 words separated by one space; each word drawn
 *          from a vocabulary of MG_VOCAB words with Zipf frequencies
 *          (the word of rank k has weight 1/(k+1)). Words are 2 to 10
 *          lowercase letters, spelled by the generator (a few short ones
 *          come out the same, so slightly fewer than MG_VOCAB distinct).
 *   json   record i: {"id":i,"name":"...","age":NN,"city":"..."} and, in
 *          one record of four, "tags":["..",..]; the fields in one of 24
 *          orders, with or without a space after ':' and ','; one name in
 *          eight carries an escape (\", \\, \n or \u00e9). Ages 18 to 90.
 *   join   R has n rows (key, payload), the keys distinct (mk_mix of the
 *          row number, a bijection); S has 4n rows whose keys are the key
 *          of R's row t for a random t < 2n: half of them match one row
 *          of R, the other half (t >= n) match none. Payloads are 32-bit. */
#ifndef BENCH_MAP_GEN_H
#define BENCH_MAP_GEN_H

#include "mapkern.h"

#include <stdlib.h>
#include <string.h>

#define MG_VOCAB 5000
#define MG_WORD_MAX 10
#define MG_LINE_MAX 1024 /* longest generated line, with room to spare */
#define MG_VOCAB_SEED 0x70CAB000ULL
#define MG_TEXT_SEED 0x7E47ULL
#define MG_JSON_SEED 0x15011ULL
#define MG_JOIN_SEED 0x1011ULL
#define MG_S_PER_R 4 /* rows of S per row of R */

/* ---- the vocabulary and its Zipf distribution (integer weights, so the
 * draw has no rounding). A draw is the inverse of the cumulative weights,
 * found from a guide table (the rank where each of MG_GUIDE equal slices
 * of [0, total) starts) and a short walk, not a binary search: generating
 * the text is untimed, but every process of a run does it. */

#define MG_GUIDE 8192

static struct mg_vocab {
    char word[MG_VOCAB][MG_WORD_MAX + 1];
    unsigned char len[MG_VOCAB];
    uint64_t cum[MG_VOCAB]; /* cum[k] = sum of weights of ranks 0..k */
    uint16_t guide[MG_GUIDE]; /* rank of the point j * total / MG_GUIDE */
} mg_v;

/* The rank whose slice of [0, total) holds x: the first k with
 * cum[k] > x, searched from rank `from` on. */
static inline int mg_rank(uint64_t x, int from)
{
    while (mg_v.cum[from] <= x)
        from++;
    return from;
}

static inline void mg_vocab_init(void)
{
    uint64_t total = 0;
    for (int w = 0; w < MG_VOCAB; w++) {
        uint64_t h = mk_mix(MG_VOCAB_SEED + (uint64_t)w);
        int len = 2 + (int)(h % 9);
        for (int k = 0; k < len; k++)
            mg_v.word[w][k] = (char)('a' + ((h >> (4 + 5 * k)) & 31) % 26);
        mg_v.word[w][len] = '\0';
        mg_v.len[w] = (unsigned char)len;
        total += (1ULL << 32) / (uint64_t)(w + 1);
        mg_v.cum[w] = total;
    }
    int k = 0;
    for (uint64_t j = 0; j < MG_GUIDE; j++)
        mg_v.guide[j] = (uint16_t)(k = mg_rank(j * total / MG_GUIDE, k));
}

/* A rank drawn by r: the first k with cum[k] > r % total. Any x in guide
 * slice j is at least j * total / MG_GUIDE, so its rank is at least the
 * guide's. */
static inline int mg_zipf(uint64_t r)
{
    uint64_t total = mg_v.cum[MG_VOCAB - 1];
    uint64_t x = r % total;
    return mg_rank(x, mg_v.guide[x * MG_GUIDE / total]);
}

/* Line i of the text into out (MG_LINE_MAX bytes), without the newline;
 * returns its length. mg_vocab_init() must have run. */
static inline size_t mg_text_line(uint64_t i, char *out)
{
    uint64_t s = mk_mix(MG_TEXT_SEED ^ (i * 0xD1B54A32D192ED03ULL));
    int words = 6 + (int)(s % 10);
    size_t len = 0;
    for (int j = 0; j < words; j++) {
        int w = mg_zipf(mk_mix(s + (uint64_t)j + 1));
        if (j > 0)
            out[len++] = ' ';
        memcpy(out + len, mg_v.word[w], mg_v.len[w]);
        len += mg_v.len[w];
    }
    return len;
}

/* ---- person records */

static const char *const mg_syllable[16] = {
    "an", "bel", "cor", "da", "el", "fin", "gra", "hal",
    "is", "jo", "ka", "lin", "mor", "na", "or", "ste",
};
static const char *const mg_escape[4] = { "\\\"", "\\\\", "\\n", "\\u00e9" };

/* Appends 2 + r % n syllables from r's bits, the first capitalised;
 * consumes bits of *r. */
static inline size_t mg_word(char *out, uint64_t *r, int n)
{
    int k = 2 + (int)(*r % (uint64_t)n);
    size_t len = 0;
    *r /= (uint64_t)n;
    for (int j = 0; j < k; j++) {
        const char *s = mg_syllable[*r & 15];
        size_t sl = strlen(s);
        memcpy(out + len, s, sl);
        len += sl;
        *r >>= 4;
    }
    out[0] = (char)(out[0] - 'a' + 'A');
    return len;
}

static inline size_t mg_append(char *out, size_t len, const char *s)
{
    size_t n = strlen(s);
    memcpy(out + len, s, n);
    return len + n;
}

static inline size_t mg_number(char *out, size_t len, uint64_t v)
{
    char digit[24];
    int n = 0;
    do
        digit[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        out[len++] = digit[--n];
    return len;
}

/* An array of r % 4 one-syllable strings. */
static inline size_t mg_tags(char *out, size_t len, uint64_t r)
{
    int tags = (int)(r % 4);
    out[len++] = '[';
    for (int t = 0; t < tags; t++) {
        len = mg_append(out, len, t > 0 ? ",\"" : "\"");
        len = mg_append(out, len, mg_syllable[(r >> (2 + 4 * t)) & 15]);
        out[len++] = '"';
    }
    out[len++] = ']';
    return len;
}

/* A name (two words, an escape after the first when r says so) or a city
 * (one word), quoted. */
static inline size_t mg_name(char *out, size_t len, uint64_t r, int is_name)
{
    out[len++] = '"';
    len += mg_word(out + len, &r, is_name ? 2 : 3);
    if (is_name) {
        if ((r & 7) == 0)
            len = mg_append(out, len, mg_escape[(r >> 3) & 3]);
        out[len++] = ' ';
        r >>= 5;
        len += mg_word(out + len, &r, 2);
    }
    out[len++] = '"';
    return len;
}

/* Field f (0 id, 1 name, 2 age, 3 city, 4 tags) of record i, whose hash
 * is h, key included, at out; returns its length. */
static inline size_t mg_field(int f, uint64_t i, uint64_t h, const char *colon,
                              char *out)
{
    static const char *const key[5] = { "id", "name", "age", "city", "tags" };
    uint64_t r = mk_mix(h + (uint64_t)f);
    size_t len = mg_append(out, 0, "\"");
    len = mg_append(out, len, key[f]);
    len = mg_append(out, len, "\"");
    len = mg_append(out, len, colon);
    switch (f) {
    case 0: return mg_number(out, len, i);
    case 2: return mg_number(out, len, 18 + h % 73);
    case 4: return mg_tags(out, len, r);
    default: return mg_name(out, len, r, f == 1);
    }
}

/* Record i as one line into out (MG_LINE_MAX bytes), without the newline;
 * returns its length. */
static inline size_t mg_json_line(uint64_t i, char *out)
{
    uint64_t h = mk_mix(MG_JSON_SEED ^ (i * 0xD1B54A32D192ED03ULL));
    int order[5] = { 0, 1, 2, 3, 4 };
    int nf = (h >> 40) % 4 == 0 ? 5 : 4;
    uint64_t r = h >> 8;
    for (int k = 3; k > 0; k--) { /* Fisher-Yates over the first four */
        int j = (int)(r % (uint64_t)(k + 1));
        int t = order[k];
        order[k] = order[j];
        order[j] = t;
        r /= (uint64_t)(k + 1);
    }
    const char *colon = (h >> 50) & 1 ? ": " : ":";
    const char *comma = (h >> 51) & 1 ? ", " : ",";
    size_t len = mg_append(out, 0, "{");
    for (int k = 0; k < nf; k++) {
        if (k > 0)
            len = mg_append(out, len, comma);
        len += mg_field(order[k], i, h, colon, out + len);
    }
    out[len++] = '}';
    return len;
}

/* ---- lines in one buffer: line i is text[off[i]] .. text[off[i+1] - 1],
 * its '\n' included. */

typedef struct mg_lines {
    char *text;
    size_t *off; /* n + 1 offsets */
    size_t n, bytes;
} mg_lines;

/* n lines made by line(i, out); 0, or -1 out of memory. */
static inline int mg_lines_make(mg_lines *l, size_t n,
                                size_t (*line)(uint64_t, char *))
{
    size_t cap = n * 64 + MG_LINE_MAX;
    l->text = (char *)malloc(cap);
    l->off = (size_t *)malloc((n + 1) * sizeof *l->off);
    l->n = n;
    l->bytes = 0;
    if (l->text == NULL || l->off == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (cap - l->bytes < MG_LINE_MAX) {
            char *t = (char *)realloc(l->text, cap *= 2);
            if (t == NULL)
                return -1;
            l->text = t;
        }
        l->off[i] = l->bytes;
        l->bytes += line(i, l->text + l->bytes);
        l->text[l->bytes++] = '\n';
    }
    l->off[n] = l->bytes;
    return 0;
}

static inline void mg_lines_free(mg_lines *l)
{
    free(l->text);
    free(l->off);
    l->text = NULL;
    l->off = NULL;
}

/* ---- the join's tables */

typedef struct mg_row {
    uint64_t key, payload;
} mg_row;

static inline mg_row mg_r_row(uint64_t i)
{
    mg_row r = { mk_mix(i), mk_mix(MG_JOIN_SEED ^ i) >> 32 };
    return r;
}

/* Row j of S, for an R of n rows. */
static inline mg_row mg_s_row(uint64_t j, uint64_t n)
{
    uint64_t h = mk_mix((MG_JOIN_SEED << 32) + j);
    mg_row r = { mk_mix((h >> 1) % (2 * n)), h & 0xFFFFFFFFu };
    return r;
}

#endif
