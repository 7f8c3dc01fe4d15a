/* What lib/store offers the other layers of the library (lib/map's
 * isolated mode) beyond the public API: the runtime's store, a handle's
 * name, and offsets into the segment, which are the same in every process
 * that maps it. Nothing outside lib/ includes this. */
#ifndef WEFT_STORE_ST_RT_H
#define WEFT_STORE_ST_RT_H

#include <stddef.h>
#include <stdint.h>

#include "weft/store.h"

#ifndef WEFT__HIDDEN
#define WEFT__HIDDEN __attribute__((visibility("hidden")))
#endif

/* The name st was opened by (what another process passes to
 * weft_store_open()). */
WEFT__HIDDEN const char *weft__store_name(const weft_store *st);

/* The offset in the segment of [p, p + len), which must lie in st's data
 * area: 0, or -EINVAL. */
WEFT__HIDDEN int weft__store_off(const weft_store *st, const void *p,
                                 size_t len, uint64_t *off);

/* The address in st's mapping of [off, off + len) of the segment, or
 * NULL when it does not lie in the data area. */
WEFT__HIDDEN void *weft__store_at(const weft_store *st, uint64_t off,
                                  size_t len);

#endif
