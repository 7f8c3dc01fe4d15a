/* libmapgen: the map suite's generators (map_gen.h) for map_py.py, which
 * loads this through ctypes, so that the Python programs get exactly the
 * bytes and rows the C programs get. Only the inputs come from here; the
 * Python programs do the work itself in Python, as a Python user would.
 * Built as a shared library next to the programs, not installed. */
#include "map_gen.h"

#define BMK_API __attribute__((visibility("default")))

/* Lines 0 .. n-1 of the text (what = 0) or of the records (what = 1), each
 * ending in '\n', into buf when they fit in cap bytes; returns the bytes
 * they take (call with cap 0 to learn it), or -1 for a bad argument or no
 * memory. */
BMK_API long bmk_lines(int what, long n, char *buf, long cap)
{
    mg_lines l;
    if (n < 0 || cap < 0 || what < 0 || what > 1)
        return -1;
    if (what == 0)
        mg_vocab_init();
    if (mg_lines_make(&l, (size_t)n, what == 0 ? mg_text_line
                                               : mg_json_line) != 0) {
        mg_lines_free(&l);
        return -1;
    }
    long bytes = (long)l.bytes;
    if (bytes <= cap)
        memcpy(buf, l.text, l.bytes);
    mg_lines_free(&l);
    return bytes;
}

/* R's n rows and S's 4 n rows (map_gen.h), keys and payloads in four
 * arrays. */
BMK_API void bmk_join_tables(long n, uint64_t *rkey, uint64_t *rpay,
                             uint64_t *skey, uint64_t *spay)
{
    for (long i = 0; i < n; i++) {
        mg_row r = mg_r_row((uint64_t)i);
        rkey[i] = r.key;
        rpay[i] = r.payload;
    }
    for (long j = 0; j < MG_S_PER_R * n; j++) {
        mg_row s = mg_s_row((uint64_t)j, (uint64_t)n);
        skey[j] = s.key;
        spay[j] = s.payload;
    }
}
