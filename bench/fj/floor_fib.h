/* One fib of bench/fj/floor.c, included once per variant with V (the
 * name's prefix), SPAWN(t, fn) and SYNC(t, fn) defined. Written as the
 * generic form is best written (bench/common/fib_weft.h): the leaf test
 * apart, and a task function whose leaf path saves no registers. */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

static long CAT(V, node)(int n);

static inline long CAT(V, at)(int n)
{
    return n < 2 ? n : CAT(V, node)(n);
}

static NOINLINE void CAT(V, task_node)(struct frame *f)
{
    f->r = CAT(V, node)(f->n);
}

static void CAT(V, task)(struct frame *f)
{
    if (f->n < 2)
        f->r = f->n;
    else
        CAT(V, task_node)(f);
}

static inline long CAT(V, node)(int n)
{
    struct frame a;
    a.n = n - 1;
    SPAWN(&a, CAT(V, task));
    long b = CAT(V, at)(n - 2);
    SYNC(&a, CAT(V, task));
    return a.r + b;
}

#undef V
#undef SPAWN
#undef SYNC
#undef CAT
#undef CAT_
