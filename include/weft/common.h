/* Shared macros of the public headers: export control and branch hints.
 * Nothing here allocates or has state. */
#ifndef WEFT_COMMON_H
#define WEFT_COMMON_H

#if defined(WEFT_BUILDING) && defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#if defined(__GNUC__)
#define WEFT_LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define WEFT_NOINLINE __attribute__((noinline))
#define WEFT__ALWAYS_INLINE __attribute__((always_inline))
/* on the out-of-line slow paths that inline fast paths call: gcc then
 * prices those calls as rare, which keeps recursive task code inlined
 * into itself (<weft/task.h>) */
#define WEFT__COLD __attribute__((cold))
/* a result that is a bug to drop (weft_spawn_at's head) */
#define WEFT__MUST_USE __attribute__((warn_unused_result))
#else
#define WEFT_LIKELY(x) (x)
#define WEFT_UNLIKELY(x) (x)
#define WEFT_NOINLINE
#define WEFT__ALWAYS_INLINE
#define WEFT__COLD
#define WEFT__MUST_USE
#endif

#endif
