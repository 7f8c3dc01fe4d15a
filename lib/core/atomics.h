/* Named-order atomic helpers: every synchronising access in weft goes
 * through these, so the order is visible at the call site and each
 * acquire/release can be checked against the operation it pairs with.
 * No standalone fences: ThreadSanitizer does not model them, so ordering
 * that needs a full barrier uses a seq_cst read-modify-write instead. */
#ifndef WEFT_ATOMICS_H
#define WEFT_ATOMICS_H

#include <stdatomic.h>

#define weft__load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define weft__load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define weft__load_seqcst(p) atomic_load_explicit((p), memory_order_seq_cst)
#define weft__store_relaxed(p, v) \
    atomic_store_explicit((p), (v), memory_order_relaxed)
#define weft__store_release(p, v) \
    atomic_store_explicit((p), (v), memory_order_release)
#define weft__store_seqcst(p, v) \
    atomic_store_explicit((p), (v), memory_order_seq_cst)
#define weft__add_relaxed(p, v) \
    atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define weft__add_seqcst(p, v) \
    atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define weft__sub_relaxed(p, v) \
    atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define weft__sub_seqcst(p, v) \
    atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
#define weft__sub_release(p, v) \
    atomic_fetch_sub_explicit((p), (v), memory_order_release)
#define weft__xchg_acqrel(p, v) \
    atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define weft__cas_acqrel(p, expp, v)                                   \
    atomic_compare_exchange_strong_explicit((p), (expp), (v),          \
        memory_order_acq_rel, memory_order_relaxed)
#define weft__cas_seqcst(p, expp, v)                                   \
    atomic_compare_exchange_strong_explicit((p), (expp), (v),          \
        memory_order_seq_cst, memory_order_relaxed)

/* A counter with a single writer: a plain increment made visible to
 * readers on other threads without a locked instruction. */
#define weft__stat_add(p, v) \
    weft__store_relaxed((p), weft__load_relaxed(p) + (v))

static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
