/* weft typed tasks: the head-passing form (<weft/task.h>) with the head
 * out of the programmer's hands, in the manner of Lace's TASK_n macros.
 *
 *   WEFT_TASK_DECL_1(long, fib_node, int, n);
 *
 *   WEFT_TASK_1(long, fib, int, n)
 *   {
 *       return n < 2 ? n : WEFT_CALL(fib_node, n);
 *   }
 *
 *   WEFT_TASK_1(long, fib_node, int, n)
 *   {
 *       fib_frame a;                        (a frame for one fib child)
 *       WEFT_SPAWN(fib, &a, n - 1);
 *       long b = WEFT_CALL(fib, n - 2);
 *       return WEFT_SYNC(fib, &a) + b;
 *   }
 *
 *   ... and in any task (a weft_run root, a future, generic code):
 *   long r = fib(35);
 *
 * Why: the head-passing form is the fastest way to write fork-join code
 * (fib(35) on one worker 1.5x the serial time, against 1.6-1.7x for the
 * generic form, whose spawns run most children at once: bench/fj), but
 * it hands the programmer a value, the head, that must be threaded
 * through every spawn and sync: a copy kept past the syncs of the frames
 * it names is a dangling pointer that the runtime cannot check cheaply.
 * Here the head is a hidden parameter of the task's body (weft__h), and
 * the only code that reads or writes it is WEFT_SPAWN, WEFT_SYNC and
 * WEFT_CALL. So no stale head can be made, and what is left to get right
 * is what the generic form also asks, with the same defined outcomes
 * (<weft/task.h>): sync every spawn before the body returns, in reverse
 * order (an out of order sync first syncs the later spawns; a frame
 * synced twice, or never spawned, is counted as a misuse and ignored).
 * A frame declared in an inner block cannot be synced outside it: the
 * compiler rejects that, where the generic form would sync a dead frame.
 *
 * What WEFT_TASK_n(RT, NAME, T1, A1, ...) defines (n = 1 to 4 arguments;
 * WEFT_VOID_TASK_n for tasks that return nothing):
 *   - NAME_frame, the type of a frame for one spawned NAME: declare one
 *     (or an array of them) where the spawning code can keep it until the
 *     sync, usually in its own body. 40 bytes of runtime bookkeeping per
 *     spawned frame, as for every form.
 *   - RT NAME(T1 A1, ...): runs the task in the calling thread, starting
 *     from weft_head_now(): the entry from a root task, a future, an
 *     actor, generic fork-join code or a thread outside the pool (where
 *     it runs serially, as every form does).
 *   - the body, whose block follows the macro, with A1... in scope.
 * Inside a body (and only there, since they name the hidden head):
 *   - WEFT_SPAWN(NAME, frame, args...): spawn NAME(args...) into frame;
 *   - WEFT_SYNC(NAME, frame): wait for it and give its result (void for a
 *     void task); NAME must be the task spawned into frame (the compiler
 *     checks the frame's type);
 *   - WEFT_CALL(NAME, args...): call task NAME here, directly, handing it
 *     the head, so its spawns stay visible to thieves.
 * WEFT_TASK_DECL_n(RT, NAME, T1, A1, ...); declares a task's body so that
 * WEFT_CALL can name it before its definition (mutual recursion, or the
 * split below).
 *
 * Write the leaf test in one task and the expansion in another, as above:
 * then the leaf test is inlined wherever the compiler stops inlining the
 * recursion, and a child with no work of its own costs a compare at the
 * sync, not a call (fib(35): 17.7 against 21.4 ms written as one body).
 *
 * Each argument type T must declare a field as `T A` (name arrays and
 * function pointer types through a typedef); an argument is copied into
 * the frame at the spawn, as a function call would copy it.
 *
 * The macros expand to C11 plus two GNU attributes (always_inline and
 * unused) that gcc and clang understand; the generated functions are
 * static inline, so define a task in the one file that uses it, or in a
 * header. */
#ifndef WEFT_TASKDEF_H
#define WEFT_TASKDEF_H

#include "common.h"
#include "task.h"

#if defined(__GNUC__)
#define WEFT__UNUSED __attribute__((unused))
#else
#define WEFT__UNUSED
#endif

/* Spawn, sync and call inside a task body: see the top of this file. */
#define WEFT_SPAWN(NAME, ...) \
    ((void)(weft__h = NAME##__spawn(weft__h, __VA_ARGS__)))
#define WEFT_SYNC(NAME, frame) NAME##__sync(&weft__h, (frame))
#define WEFT_CALL(NAME, ...) NAME##__body(weft__h, __VA_ARGS__)

/* ---- internals: one generator for all argument counts ---- */

#define WEFT__X(...) __VA_ARGS__

/* The body's prototype: the head is its hidden first parameter. */
#define WEFT__BODY(RT, NAME, PARAMS) \
    static inline RT NAME##__body(weft_head weft__h WEFT__UNUSED, \
                                  WEFT__X PARAMS)

/* What every task has: its frame, the function a sync or a thief runs
 * (the frame's arguments in, the result out through SET), the spawn that
 * fills the frame, the sync (the result out through GIVE) and the entry
 * (RET: `return`). For a void task RESULT, SET, GIVE and RET are empty. */
#define WEFT__TASK(RT, RESULT, SET, GIVE, RET, NAME, FIELDS, PARAMS,      \
                   FROM_F, STORE, ARGS)                                   \
    typedef struct NAME##_frame {                                         \
        weft_task weft__task; /* first: the runtime casts back */         \
        WEFT__X FIELDS                                                    \
        WEFT__X RESULT                                                    \
    } NAME##_frame;                                                       \
    WEFT__BODY(RT, NAME, PARAMS);                                         \
    static inline void NAME##__run(weft_task *weft__t)                    \
    {                                                                     \
        NAME##_frame *weft__f = (NAME##_frame *)(void *)weft__t;          \
        WEFT__X SET NAME##__body(weft_head_of(weft__t), WEFT__X FROM_F);  \
    }                                                                     \
    static inline WEFT__ALWAYS_INLINE WEFT__MUST_USE weft_head            \
    NAME##__spawn(weft_head weft__h, NAME##_frame *weft__f,               \
                  WEFT__X PARAMS)                                         \
    {                                                                     \
        WEFT__X STORE                                                     \
        return weft_spawn_at(weft__h, &weft__f->weft__task, NAME##__run); \
    }                                                                     \
    static inline WEFT__ALWAYS_INLINE RT NAME##__sync(                    \
        weft_head *weft__hp, NAME##_frame *weft__f)                       \
    {                                                                     \
        *weft__hp = weft_sync_at(*weft__hp, &weft__f->weft__task,         \
                                 NAME##__run);                            \
        WEFT__X GIVE                                                      \
    }                                                                     \
    static inline RT NAME(WEFT__X PARAMS)                                 \
    {                                                                     \
        WEFT__X RET NAME##__body(weft_head_now(), WEFT__X ARGS);          \
    }                                                                     \
    WEFT__BODY(RT, NAME, PARAMS)

/* ---- one to four arguments ---- */

#define WEFT__P1(T1, A1) (T1 A1)
#define WEFT__P2(T1, A1, T2, A2) (T1 A1, T2 A2)
#define WEFT__P3(T1, A1, T2, A2, T3, A3) (T1 A1, T2 A2, T3 A3)
#define WEFT__P4(T1, A1, T2, A2, T3, A3, T4, A4) \
    (T1 A1, T2 A2, T3 A3, T4 A4)

#define WEFT_TASK_DECL_1(RT, NAME, T1, A1) \
    WEFT__BODY(RT, NAME, WEFT__P1(T1, A1))
#define WEFT_TASK_DECL_2(RT, NAME, T1, A1, T2, A2) \
    WEFT__BODY(RT, NAME, WEFT__P2(T1, A1, T2, A2))
#define WEFT_TASK_DECL_3(RT, NAME, T1, A1, T2, A2, T3, A3) \
    WEFT__BODY(RT, NAME, WEFT__P3(T1, A1, T2, A2, T3, A3))
#define WEFT_TASK_DECL_4(RT, NAME, T1, A1, T2, A2, T3, A3, T4, A4) \
    WEFT__BODY(RT, NAME, WEFT__P4(T1, A1, T2, A2, T3, A3, T4, A4))

#define WEFT__ARGS1(T1, A1)                                         \
    (T1 A1;), WEFT__P1(T1, A1), (weft__f->A1),                      \
        (weft__f->A1 = A1;), (A1)
#define WEFT__ARGS2(T1, A1, T2, A2)                                 \
    (T1 A1; T2 A2;), WEFT__P2(T1, A1, T2, A2),                      \
        (weft__f->A1, weft__f->A2),                                 \
        (weft__f->A1 = A1; weft__f->A2 = A2;), (A1, A2)
#define WEFT__ARGS3(T1, A1, T2, A2, T3, A3)                         \
    (T1 A1; T2 A2; T3 A3;), WEFT__P3(T1, A1, T2, A2, T3, A3),       \
        (weft__f->A1, weft__f->A2, weft__f->A3),                    \
        (weft__f->A1 = A1; weft__f->A2 = A2; weft__f->A3 = A3;),    \
        (A1, A2, A3)
#define WEFT__ARGS4(T1, A1, T2, A2, T3, A3, T4, A4)                 \
    (T1 A1; T2 A2; T3 A3; T4 A4;),                                  \
        WEFT__P4(T1, A1, T2, A2, T3, A3, T4, A4),                   \
        (weft__f->A1, weft__f->A2, weft__f->A3, weft__f->A4),       \
        (weft__f->A1 = A1; weft__f->A2 = A2; weft__f->A3 = A3;      \
         weft__f->A4 = A4;),                                        \
        (A1, A2, A3, A4)

/* An extra step, so that WEFT__RESULT / WEFT__VOID and WEFT__ARGSn expand
 * into WEFT__TASK's arguments: what a task with a result and a void task
 * put in RT, RESULT, SET, GIVE and RET; and the argument lists. */
#define WEFT__TASK_(...) WEFT__TASK(__VA_ARGS__)
#define WEFT__RESULT(RT) \
    RT, (RT weft__r;), (weft__f->weft__r =), (return weft__f->weft__r;), \
        (return)
#define WEFT__VOID void, (), (), (), ()

#define WEFT_TASK_1(RT, NAME, T1, A1) \
    WEFT__TASK_(WEFT__RESULT(RT), NAME, WEFT__ARGS1(T1, A1))
#define WEFT_TASK_2(RT, NAME, T1, A1, T2, A2) \
    WEFT__TASK_(WEFT__RESULT(RT), NAME, WEFT__ARGS2(T1, A1, T2, A2))
#define WEFT_TASK_3(RT, NAME, T1, A1, T2, A2, T3, A3) \
    WEFT__TASK_(WEFT__RESULT(RT), NAME,                \
                WEFT__ARGS3(T1, A1, T2, A2, T3, A3))
#define WEFT_TASK_4(RT, NAME, T1, A1, T2, A2, T3, A3, T4, A4) \
    WEFT__TASK_(WEFT__RESULT(RT), NAME,                        \
                WEFT__ARGS4(T1, A1, T2, A2, T3, A3, T4, A4))

#define WEFT_VOID_TASK_1(NAME, T1, A1) \
    WEFT__TASK_(WEFT__VOID, NAME, WEFT__ARGS1(T1, A1))
#define WEFT_VOID_TASK_2(NAME, T1, A1, T2, A2) \
    WEFT__TASK_(WEFT__VOID, NAME, WEFT__ARGS2(T1, A1, T2, A2))
#define WEFT_VOID_TASK_3(NAME, T1, A1, T2, A2, T3, A3) \
    WEFT__TASK_(WEFT__VOID, NAME, WEFT__ARGS3(T1, A1, T2, A2, T3, A3))
#define WEFT_VOID_TASK_4(NAME, T1, A1, T2, A2, T3, A3, T4, A4) \
    WEFT__TASK_(WEFT__VOID, NAME, WEFT__ARGS4(T1, A1, T2, A2, T3, A3, T4, A4))

#endif
