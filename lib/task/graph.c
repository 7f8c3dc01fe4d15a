/* Task graphs: nodes named once, dependencies resolved and checked at
 * seal time, then run any number of times.
 *
 * A run allocates one array with a small record per node (its pending
 * count, status and result, and its queue entry) and nothing per node
 * after that: this is the same work a TBB flow graph does when it runs, and
 * it is why a graph is cheaper than the same DAG built from futures. A node
 * whose last input completes runs next on the same worker without going
 * through a queue; its other ready successors are pushed for thieves. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdalign.h>
#include <string.h>

#include "alloc.h"
#include "fut.h"

typedef struct gnode {
    char *name;      /* NULL for unnamed nodes (weft_graph_add_ids) */
    weft_fn fn;
    void *arg;
    uint32_t dep_off, ndeps; /* into g->deps */
    uint16_t max_retries;
    uint8_t prio, flags;
    int8_t node;
} gnode;

typedef struct gdep {
    int32_t id;  /* -1 until the name is resolved */
    char *name;  /* NULL once resolved */
} gdep;

struct weft_graph {
    _Atomic int refs; /* the user's, and one per run in flight */
    bool sealed;
    gnode *nodes;
    uint32_t n, cap;
    gdep *deps;
    uint32_t ndeps, depcap;
    uint32_t *ht;     /* open addressing: node id + 1, 0 = empty */
    uint32_t htcap;   /* power of two */
    uint32_t *succ_off, *succ; /* after seal: CSR successors */
};

typedef struct rnode {
    alignas(WEFT__CACHELINE) weft__job job;          /* run == NULL: not needed in this run */
    struct grun *run;
    _Atomic uint32_t pending;
    uint32_t id;
    int status, cause;
    void *result;
    void (*dtor)(void *);
    fut *out;               /* the output future, or NULL */
} rnode;

typedef struct grun {
    weft_graph *g;
    weft_runtime *rt;
    _Atomic uint32_t remaining; /* needed nodes not yet done */
    _Atomic int first_fail;
    fut *all;
    alignas(WEFT__CACHELINE) rnode nodes[];
} grun;

/* ---- names ---- */

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int find_id(const weft_graph *g, const char *name)
{
    if (name[0] == '#') { /* an unnamed node, by id */
        char *end;
        long id = strtol(name + 1, &end, 10);
        if (*end || end == name + 1 || id < 0 || id >= (long)g->n ||
            g->nodes[id].name)
            return -ENOENT;
        return (int)id;
    }
    if (!g->htcap)
        return -ENOENT;
    for (uint32_t i = hash_name(name);; i++) {
        uint32_t v = g->ht[i & (g->htcap - 1)];
        if (!v)
            return -ENOENT;
        if (!strcmp(g->nodes[v - 1].name, name))
            return (int)(v - 1);
    }
}

static void ht_put(weft_graph *g, uint32_t id)
{
    for (uint32_t i = hash_name(g->nodes[id].name);; i++)
        if (!g->ht[i & (g->htcap - 1)]) {
            g->ht[i & (g->htcap - 1)] = id + 1;
            return;
        }
}

/* Keep the table at most half full. Past 2^30 named nodes the doubled
 * size, 2^32 slots, does not fit htcap: wrapped to 0 in 32 bits it gave
 * a table of no slots that ht_put wrote past. Such a graph is -ENOMEM. */
static int ht_reserve(weft_graph *g)
{
    if (2 * (g->n + 1) <= g->htcap)
        return 0;
    uint64_t cap = g->htcap ? 2 * (uint64_t)g->htcap : 64;
    if (cap > UINT32_MAX)
        return -ENOMEM;
    uint32_t *ht = weft__calloc(cap, sizeof *ht);
    if (!ht)
        return -ENOMEM;
    weft__free(g->ht);
    g->ht = ht;
    g->htcap = (uint32_t)cap;
    for (uint32_t i = 0; i < g->n; i++)
        if (g->nodes[i].name)
            ht_put(g, i);
    return 0;
}

/* ---- building ---- */

int weft_graph_create(weft_graph **out)
{
    if (!out)
        return -EINVAL;
    *out = weft__calloc(1, sizeof **out);
    if (!*out)
        return -ENOMEM;
    weft__store_relaxed(&(*out)->refs, 1);
    return 0;
}

static void graph_free(weft_graph *g)
{
    for (uint32_t i = 0; i < g->n; i++)
        weft__free(g->nodes[i].name);
    for (uint32_t i = 0; i < g->ndeps; i++)
        weft__free(g->deps[i].name);
    weft__free(g->nodes);
    weft__free(g->deps);
    weft__free(g->ht);
    weft__free(g->succ_off);
    weft__free(g->succ);
    weft__free(g);
}

static void graph_unref(weft_graph *g)
{
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
        graph_free(g);
}

int weft_graph_destroy(weft_graph **gp)
{
    if (!gp || !*gp)
        return 0;
    graph_unref(*gp);
    *gp = NULL;
    return 0;
}

/* Room for need elements in *arr, doubling. Doubled in 64 bits and cut
 * to UINT32_MAX: a count past 2^31 (dependencies: add_prologue allows up
 * to UINT32_MAX - 1) wrapped to 0 in 32 bits, and doubling 0 never ended. */
static int grow(void **arr, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    uint64_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    if (c > UINT32_MAX)
        c = UINT32_MAX; /* >= need */
    if (c > SIZE_MAX / size)
        return -ENOMEM;
    void *p = weft__realloc(*arr, (size_t)c * size);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = (uint32_t)c;
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = weft__malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

/* Checks shared by both forms of add; reserves room for the node, its
 * deps and its name. */
static int add_prologue(weft_graph *g, const char *name, weft_fn fn,
                        size_t ndeps, bool deps_null,
                        const weft_submit_opts *o)
{
    if (!g || !fn || (deps_null && ndeps) || ndeps > WEFT_MAX_DEPS ||
        (o && weft__fut_check_opts(o)))
        return -EINVAL;
    if (g->sealed)
        return -EPERM;
    if (g->n >= INT32_MAX || (size_t)g->ndeps + ndeps >= UINT32_MAX)
        return -ENOMEM;
    if (name && (name[0] == '#' || !name[0]))
        return -EINVAL; /* '#' names the unnamed nodes */
    if (name && find_id(g, name) >= 0)
        return -EEXIST;
    if (grow((void **)&g->nodes, &g->cap, g->n + 1, sizeof *g->nodes) ||
        grow((void **)&g->deps, &g->depcap, g->ndeps + (uint32_t)ndeps,
             sizeof *g->deps) ||
        (name && ht_reserve(g)))
        return -ENOMEM;
    return 0;
}

static int add_node(weft_graph *g, const char *name, weft_fn fn, void *arg,
                    uint32_t ndeps, const weft_submit_opts *o)
{
    weft_submit_opts d = weft_submit_opts_default();
    o = o ? o : &d;
    gnode *gn = &g->nodes[g->n];
    memset(gn, 0, sizeof *gn);
    if (name && !(gn->name = dup_str(name)))
        return -ENOMEM;
    gn->fn = fn;
    gn->arg = arg;
    gn->dep_off = g->ndeps;
    gn->ndeps = ndeps;
    gn->max_retries = (uint16_t)o->max_retries;
    gn->prio = (uint8_t)o->priority;
    gn->flags = (uint8_t)o->flags;
    gn->node = (int8_t)o->numa_node;
    if (name)
        ht_put(g, g->n);
    g->ndeps += ndeps;
    return (int)g->n++;
}

int weft_graph_add(weft_graph *g, const char *name, weft_fn fn, void *arg,
                   const char *const *deps, size_t ndeps,
                   const weft_submit_opts *opts)
{
    if (!name)
        return -EINVAL;
    int rc = add_prologue(g, name, fn, ndeps, !deps, opts);
    if (rc)
        return rc;
    for (size_t i = 0; i < ndeps; i++) {
        gdep *d = &g->deps[g->ndeps + i];
        if (!deps[i]) {
            rc = -EINVAL;
        } else {
            d->id = -1; /* resolved at seal: the node may come later */
            if (!(d->name = dup_str(deps[i])))
                rc = -ENOMEM;
        }
        if (rc) {
            while (i--)
                weft__free(g->deps[g->ndeps + i].name);
            return rc;
        }
    }
    rc = add_node(g, name, fn, arg, (uint32_t)ndeps, opts);
    if (rc < 0)
        for (size_t i = 0; i < ndeps; i++)
            weft__free(g->deps[g->ndeps + i].name);
    return rc;
}

int weft_graph_add_ids(weft_graph *g, const char *name, weft_fn fn,
                       void *arg, const int *deps, size_t ndeps,
                       const weft_submit_opts *opts)
{
    int rc = add_prologue(g, name, fn, ndeps, !deps, opts);
    if (rc)
        return rc;
    for (size_t i = 0; i < ndeps; i++) {
        if (deps[i] < 0 || (uint32_t)deps[i] >= g->n)
            return -EINVAL;
        g->deps[g->ndeps + i] = (gdep){.id = deps[i]};
    }
    return add_node(g, name, fn, arg, (uint32_t)ndeps, opts);
}

/* ---- sealing ---- */

static const char *node_name(const weft_graph *g, uint32_t id, char *buf,
                             size_t size)
{
    if (g->nodes[id].name)
        return g->nodes[id].name;
    snprintf(buf, size, "#%u", id);
    return buf;
}

static int resolve_names(weft_graph *g)
{
    for (uint32_t v = 0; v < g->n; v++) {
        gnode *gn = &g->nodes[v];
        for (uint32_t k = 0; k < gn->ndeps; k++) {
            gdep *d = &g->deps[gn->dep_off + k];
            if (d->id >= 0)
                continue;
            int id = find_id(g, d->name);
            if (id < 0) {
                char b[16];
                weft__log("graph: node '%s' depends on '%s', which is not "
                          "a node", node_name(g, v, b, sizeof b), d->name);
                return -ENOENT;
            }
            d->id = id;
            weft__free(d->name);
            d->name = NULL;
        }
    }
    return 0;
}

/* CSR successor lists from the dependency lists. */
static int build_succ(weft_graph *g)
{
    uint32_t *off = weft__calloc((size_t)g->n + 1, sizeof *off);
    uint32_t *succ = weft__malloc(((size_t)g->ndeps + 1) * sizeof *succ);
    uint32_t *fill = weft__calloc((size_t)g->n + 1, sizeof *fill);
    if (!off || !succ || !fill) {
        weft__free(off);
        weft__free(succ);
        weft__free(fill);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < g->ndeps; i++)
        off[g->deps[i].id + 1]++;
    for (uint32_t v = 0; v < g->n; v++)
        off[v + 1] += off[v];
    for (uint32_t v = 0; v < g->n; v++) {
        gnode *gn = &g->nodes[v];
        for (uint32_t k = 0; k < gn->ndeps; k++) {
            uint32_t d = (uint32_t)g->deps[gn->dep_off + k].id;
            succ[off[d] + fill[d]++] = v;
        }
    }
    weft__free(fill);
    weft__free(g->succ_off);
    weft__free(g->succ);
    g->succ_off = off;
    g->succ = succ;
    return 0;
}

/* Kahn's algorithm; on a cycle, name a node on it: following unfinished
 * dependencies n times from any unfinished node ends inside a cycle. */
static int check_acyclic(weft_graph *g)
{
    uint32_t *indeg = weft__malloc(((size_t)g->n + 1) * sizeof *indeg);
    uint32_t *queue = weft__malloc(((size_t)g->n + 1) * sizeof *queue);
    int rc = 0;
    if (!indeg || !queue) {
        rc = -ENOMEM;
        goto out;
    }
    uint32_t head = 0, tail = 0;
    for (uint32_t v = 0; v < g->n; v++)
        if (!(indeg[v] = g->nodes[v].ndeps))
            queue[tail++] = v;
    while (head < tail) {
        uint32_t v = queue[head++];
        for (uint32_t k = g->succ_off[v]; k < g->succ_off[v + 1]; k++)
            if (--indeg[g->succ[k]] == 0)
                queue[tail++] = g->succ[k];
    }
    if (tail < g->n) {
        uint32_t v = 0;
        while (!indeg[v])
            v++;
        for (uint32_t step = 0; step < g->n; step++) {
            gnode *gn = &g->nodes[v];
            for (uint32_t k = 0; k < gn->ndeps; k++) {
                uint32_t d = (uint32_t)g->deps[gn->dep_off + k].id;
                if (indeg[d]) {
                    v = d;
                    break;
                }
            }
        }
        char b[16];
        weft__log("graph: the dependencies form a cycle through node '%s'",
                  node_name(g, v, b, sizeof b));
        rc = -ELOOP;
    }
out:
    weft__free(indeg);
    weft__free(queue);
    return rc;
}

int weft_graph_seal(weft_graph *g)
{
    if (!g)
        return -EINVAL;
    if (g->sealed)
        return 0;
    int rc = resolve_names(g);
    if (!rc)
        rc = build_succ(g);
    if (!rc)
        rc = check_acyclic(g);
    if (!rc)
        g->sealed = true;
    return rc;
}

int weft_graph_find(const weft_graph *g, const char *name)
{
    return g && name ? find_id(g, name) : -EINVAL;
}

int weft_graph_size(const weft_graph *g)
{
    return g ? (int)g->n : -EINVAL;
}

/* ---- running ---- */

static const gnode *gnode_of(const rnode *r)
{
    return &r->run->g->nodes[r->id];
}

static const gdep *deps_of(const rnode *r)
{
    return &r->run->g->deps[gnode_of(r)->dep_off];
}

static bool run_cancelled(const grun *run)
{
    return run->all && weft__fut_cancelled(run->all);
}

/* An output's node claims its future before it starts, as a worker
 * claims a queued future: a cancel before this (weft_future_cancel
 * returned 0) means the node never runs and its dependants fail; one
 * after it returns -EINPROGRESS and the running node sees it. Without
 * the claim the node would run anyway and hand its result to a future
 * that refuses it while its dependants still read it. */
static bool claim_output(rnode *r)
{
    if (!r->out || weft__fut_claim_external(r->out))
        return true;
    /* The canceller completed it with no result; neither the completer's
     * reference nor the run's (kept for readers of a result) is needed. */
    weft__fut_unref(r->out, FUT_READER_REF + FUT_QUEUE_REF);
    r->out = NULL;
    return false;
}

static int call_node(rnode *r)
{
    const gnode *gn = gnode_of(r);
    weft_job job = {.run = r->run, .id = r->id, .result = &r->result,
                    .dtor = &r->dtor};
    /* an output counts the calls of its node's function, retries
     * included, for weft_future_attempts, as a task's future does */
    return weft__call_retrying(&job, gn->fn, gn->arg, gn->max_retries,
                               r->out ? &r->out->attempts : NULL);
}

/* Status of a node: its output cancelled, its dependencies' failure, a
 * cancelled run, or what its function returns. */
static void exec_node(rnode *r)
{
    const gnode *gn = gnode_of(r);
    const gdep *d = deps_of(r);
    r->status = r->cause = 0;
    if (!claim_output(r)) {
        r->status = r->cause = -ECANCELED;
        return;
    }
    if (!(gn->flags & WEFT_RUN_ANYWAY))
        for (uint32_t k = 0; k < gn->ndeps; k++) {
            const rnode *dr = &r->run->nodes[d[k].id];
            if (dr->status) {
                r->status = WEFT_STATUS_DEP_FAILED(k);
                r->cause = dr->cause;
                return;
            }
        }
    if (run_cancelled(r->run)) {
        r->status = r->cause = -ECANCELED;
        return;
    }
    weft__count_job();
    r->status = r->cause = call_node(r);
}

static void run_end(grun *run)
{
    weft_graph *g = run->g;
    weft_runtime *rt = run->rt;
    for (uint32_t i = 0; i < g->n; i++) {
        rnode *r = &run->nodes[i];
        if (r->out)
            weft__fut_unref(r->out, FUT_READER_REF); /* it owns the result */
        else if (r->result && r->dtor)
            r->dtor(r->result);
    }
    int fail = weft__load_relaxed(&run->first_fail);
    if (run->all) /* claimed by make_outputs: a cancel only flagged it */
        weft__fut_finish_external(run->all, fail, fail, NULL, NULL);
    weft__aligned_free(run);
    graph_unref(g);
    weft__jobs_end(rt); /* last: destroy may proceed after this */
}

static void push_node(rnode *r)
{
    const gnode *gn = gnode_of(r);
    weft__job_push(r->run->rt, &r->job, gn->node, gn->prio);
}

/* Run r, then each successor it made ready: the first inline (no queue
 * round trip, no recursion), the others pushed for thieves. */
static void rnode_run(weft__job *j)
{
    grun *run = ((rnode *)j)->run;
    const weft_graph *g = run->g;
    uint32_t ran = 0;
    for (rnode *r = (rnode *)j, *next; r; r = next) {
        exec_node(r);
        if (r->status) {
            int zero = 0;
            atomic_compare_exchange_strong_explicit(&run->first_fail, &zero,
                r->status, memory_order_relaxed, memory_order_relaxed);
        }
        if (r->out) /* claimed; the run keeps a reference until run_end */
            weft__fut_finish_external(r->out, r->status, r->cause,
                                      r->result, r->dtor);
        next = NULL;
        for (uint32_t k = g->succ_off[r->id]; k < g->succ_off[r->id + 1];
             k++) {
            rnode *s = &run->nodes[g->succ[k]];
            /* acq_rel: the last input's writer publishes to its runner */
            if (!s->job.run || atomic_fetch_sub_explicit(&s->pending, 1,
                                   memory_order_acq_rel) != 1)
                continue;
            if (!next)
                next = s;
            else
                push_node(s);
        }
        ran++;
    }
    /* One update of the shared count per chain of nodes run here, not per
     * node: every worker would otherwise bounce its cache line. The run
     * cannot end before this (our uncounted nodes keep it above zero),
     * and this is our last access to it. */
    if (atomic_fetch_sub_explicit(&run->remaining, ran,
                                  memory_order_acq_rel) == ran)
        run_end(run);
}

/* Mark v and its ancestors needed (iterative DFS on a stack of ids). */
static int mark_needed(grun *run, uint32_t v, uint32_t *stack)
{
    const weft_graph *g = run->g;
    uint32_t sp = 0, count = 0;
    if (run->nodes[v].job.run)
        return 0;
    run->nodes[v].job.run = rnode_run;
    stack[sp++] = v;
    while (sp) {
        uint32_t u = stack[--sp];
        count++;
        const gnode *gn = &g->nodes[u];
        for (uint32_t k = 0; k < gn->ndeps; k++) {
            uint32_t d = (uint32_t)g->deps[gn->dep_off + k].id;
            if (!run->nodes[d].job.run) {
                run->nodes[d].job.run = rnode_run;
                stack[sp++] = d;
            }
        }
    }
    return (int)count;
}

static int select_nodes(grun *run, const char *const *outputs, size_t nout)
{
    weft_graph *g = run->g;
    uint32_t needed = 0;
    if (!nout) {
        for (uint32_t v = 0; v < g->n; v++)
            run->nodes[v].job.run = rnode_run;
        needed = g->n;
    } else {
        /* the DFS stack, then one byte per node: named as an output */
        size_t words = (size_t)g->n + 1;
        uint32_t *stack = weft__malloc(words * sizeof *stack + g->n);
        if (!stack)
            return -ENOMEM;
        uint8_t *named = (uint8_t *)(stack + words);
        memset(named, 0, g->n);
        for (size_t i = 0; i < nout; i++) {
            int id = outputs[i] ? find_id(g, outputs[i]) : -EINVAL;
            if (id >= 0 && named[id]++)
                id = -EINVAL; /* the same output twice, outs or not */
            if (id < 0) {
                weft__free(stack);
                return id;
            }
            needed += (uint32_t)mark_needed(run, (uint32_t)id, stack);
        }
        weft__free(stack);
    }
    /* +1 for start(), which must not see the run end under it */
    weft__store_relaxed(&run->remaining, needed + 1);
    return 0;
}

static grun *run_new(weft_graph *g, weft_runtime *rt)
{
    /* cache-line aligned: each node's record is one line, so nodes run by
     * different workers never share one */
    size_t size = sizeof(grun) + (size_t)g->n * sizeof(rnode);
    grun *run = weft__aligned_alloc(WEFT__CACHELINE,
                                    (size + WEFT__CACHELINE - 1) &
                                    ~(size_t)(WEFT__CACHELINE - 1));
    if (!run)
        return NULL;
    memset(run, 0, size);
    run->g = g;
    run->rt = rt;
    for (uint32_t v = 0; v < g->n; v++) {
        rnode *r = &run->nodes[v];
        r->run = run;
        r->id = v;
        weft__store_relaxed(&r->pending, g->nodes[v].ndeps);
    }
    return run;
}

/* The futures a run hands out: one per output (the run holds an extra
 * reference until its end), and the optional "all" one. */
static int make_outputs(grun *run, const char *const *outputs, size_t nout,
                        weft_future **outs, weft_future **all)
{
    for (size_t i = 0; outs && i < nout; i++) {
        rnode *r = &run->nodes[find_id(run->g, outputs[i])];
        int rc = weft__fut_external(run->rt, run->g->nodes[r->id].name,
                                    &r->out, &outs[i]);
        if (rc)
            return rc;
        weft__add_relaxed(&r->out->refs, FUT_READER_REF);
    }
    if (!all)
        return 0;
    int rc = weft__fut_external(run->rt, NULL, &run->all, all);
    /* *all is running from the start, as a task is once claimed: a
     * cancel while the run goes flags it (-EINPROGRESS; the nodes not
     * started see it and do not run) instead of completing it, so that
     * it completes only when the run's last node is done, as promised.
     * Nobody else has the handle yet: the claim cannot fail. */
    if (!rc)
        (void)weft__fut_claim_external(run->all);
    return rc;
}

static void run_abort(grun *run, size_t nout, weft_future **outs,
                      weft_future **all)
{
    for (uint32_t v = 0; v < run->g->n; v++)
        if (run->nodes[v].out) {
            weft__fut_unref(run->nodes[v].out, FUT_USER_REF +
                            FUT_READER_REF + FUT_QUEUE_REF);
        }
    if (run->all)
        weft__fut_unref(run->all, FUT_USER_REF + FUT_QUEUE_REF);
    for (size_t i = 0; outs && i < nout; i++)
        outs[i] = NULL;
    if (all)
        *all = NULL;
    weft__aligned_free(run);
}

static void start(grun *run)
{
    weft_graph *g = run->g;
    weft__add_relaxed(&g->refs, 1);
    weft__jobs_begin(run->rt);
    for (uint32_t v = 0; v < g->n; v++)
        if (run->nodes[v].job.run && g->nodes[v].ndeps == 0)
            push_node(&run->nodes[v]);
    if (atomic_fetch_sub_explicit(&run->remaining, 1,
                                  memory_order_acq_rel) == 1)
        run_end(run); /* every node already done, or none needed */
}

int weft_graph_run(weft_graph *g, weft_runtime *rt,
                   const char *const *outputs, size_t nout,
                   weft_future **outs, weft_future **all)
{
    if (!g || !rt || (!outputs && nout))
        return -EINVAL;
    if (!g->sealed)
        return -EPERM;
    grun *run = run_new(g, rt);
    if (!run)
        return -ENOMEM;
    int rc = select_nodes(run, outputs, nout);
    if (!rc)
        rc = make_outputs(run, outputs, nout, outs, all);
    if (!rc)
        rc = weft__enter(rt);
    if (rc) {
        run_abort(run, nout, outs, all);
        return rc;
    }
    start(run);
    weft__leave(rt);
    return 0;
}

/* ---- the job API for graph nodes ---- */

static const rnode *job_node(const weft_job *job)
{
    return &job->run->nodes[job->id];
}

int weft__graph_job_dep(const weft_job *job, size_t i, void **value)
{
    const rnode *r = job_node(job);
    if (i >= gnode_of(r)->ndeps)
        return -ERANGE;
    const rnode *d = &job->run->nodes[deps_of(r)[i].id];
    if (value)
        *value = d->result;
    return d->status;
}

int weft__graph_job_cancelled(const weft_job *job)
{
    const rnode *r = job_node(job);
    return run_cancelled(job->run) ||
           (r->out && weft__fut_cancelled(r->out));
}

size_t weft__graph_job_ndeps(const weft_job *job)
{
    return gnode_of(job_node(job))->ndeps;
}

weft_runtime *weft__graph_job_runtime(const weft_job *job)
{
    return job->run->rt;
}
