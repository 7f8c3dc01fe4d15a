/* Runtime allocation: mimalloc when the build has it (the default), the C
 * library otherwise. Sanitizer builds use the C library so that
 * AddressSanitizer sees every block and LeakSanitizer every leak. */
#ifndef WEFT_ALLOC_H
#define WEFT_ALLOC_H

#include <stdlib.h>

#ifdef WEFT_HAVE_MIMALLOC
#include <mimalloc.h>
#define weft__malloc(n) mi_malloc(n)
#define weft__calloc(n, s) mi_calloc((n), (s))
#define weft__realloc(p, n) mi_realloc((p), (n))
#define weft__free(p) mi_free(p)
#define weft__aligned_alloc(a, n) mi_malloc_aligned((n), (a))
#define weft__aligned_free(p) mi_free(p)
#else
#define weft__malloc(n) malloc(n)
#define weft__calloc(n, s) calloc((n), (s))
#define weft__realloc(p, n) realloc((p), (n))
#define weft__free(p) free(p)
#define weft__aligned_alloc(a, n) aligned_alloc((a), (n))
#define weft__aligned_free(p) free(p)
#endif

#endif
