/* weft task graphs: name the tasks and their dependencies once (like a
 * Dask graph: key -> (function, inputs)), then run the graph as often as
 * needed and collect the outputs you ask for.
 *
 *   weft_graph *g;
 *   weft_graph_create(&g);
 *   weft_graph_add(g, "load",  load,  NULL, NULL, 0, NULL);
 *   const char *in[] = {"load"};
 *   weft_graph_add(g, "clean", clean, NULL, in, 1, NULL);
 *   weft_graph_seal(g);                          (checks names and cycles)
 *   const char *want[] = {"clean"};
 *   weft_future *out;
 *   weft_graph_run(g, rt, want, 1, &out, NULL);
 *   weft_future_get(out, -1, &value);
 *
 * A node's function is a weft_fn: it reads its inputs with weft_job_dep()
 * in the order the dependencies were named, and sets its result with
 * weft_job_set_result(). A node that fails fails its dependants, as with
 * weft_submit_after(); per-node options (retries, priority, name flags)
 * come from the opts given to weft_graph_add().
 *
 * Threads: building (add, seal) must not race with other calls on the same
 * graph; a sealed graph is read-only, so several threads may run it at
 * once, on one runtime or several. Running costs one allocation per run,
 * not per node. */
#ifndef WEFT_GRAPH_H
#define WEFT_GRAPH_H

#include <stddef.h>

#include "common.h"
#include "future.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_graph weft_graph;

/* Create an empty graph; *out owns it (weft_graph_destroy). -EINVAL,
 * -ENOMEM. */
WEFT_API int weft_graph_create(weft_graph **out);

/* Destroy *g (NULL is a no-op) and set it to NULL. Runs in flight keep what
 * they need: the graph may be destroyed while they finish. */
WEFT_API int weft_graph_destroy(weft_graph **g);

/* Add node `name` (copied; unique; not empty and not starting with '#',
 * which names unnamed nodes) computing fn(job, arg) from the nodes named
 * in deps[0..ndeps), which may be added later. Returns the new node's id
 * (>= 0), or -EEXIST (name taken), -EINVAL (NULL or reserved name, NULL
 * fn, deps NULL with ndeps > 0, an option out of range), -EPERM (the
 * graph is sealed), -ENOMEM. opts may be NULL. */
WEFT_API int weft_graph_add(weft_graph *g, const char *name, weft_fn fn,
                            void *arg, const char *const *deps,
                            size_t ndeps, const weft_submit_opts *opts);

/* The same with dependencies given by node id (ids of nodes already
 * added), for graphs built by program: no name lookups. name may be NULL
 * (the node is then named "#<id>"). */
WEFT_API int weft_graph_add_ids(weft_graph *g, const char *name, weft_fn fn,
                                void *arg, const int *deps, size_t ndeps,
                                const weft_submit_opts *opts);

/* Check and freeze the graph. -ENOENT: a dependency names no node;
 * -ELOOP: the dependencies form a cycle; both say which node on stderr
 * and leave the graph unsealed so it can be fixed. Sealing twice is 0. */
WEFT_API int weft_graph_seal(weft_graph *g);

/* The id of node `name` ("#<id>" for an unnamed node), or -ENOENT. */
WEFT_API int weft_graph_find(const weft_graph *g, const char *name);

/* Number of nodes. */
WEFT_API int weft_graph_size(const weft_graph *g);

/* Run a sealed graph on rt. Only the nodes the outputs need run (all nodes
 * when nout is 0). outs[i] (when outs is not NULL) receives a future for
 * output outputs[i], completing with that node's status and result; *all
 * (when all is not NULL) a future that completes when the run's last node
 * is done, with status 0 or the first failure. The caller owns (and
 * releases) each future returned. Cancelling *all cancels the run: nodes
 * not started yet do not run (status -ECANCELED); the run is under way,
 * so weft_future_cancel() says -EINPROGRESS (or -EALREADY once *all is
 * done), its running nodes see weft_job_cancelled() == 1, and *all still
 * completes only when the run's last node is done. Cancelling outs[i]
 * cancels its node as weft_future_cancel() does a task: 0 when the node
 * has not started (it never will; its status is -ECANCELED and its
 * dependants in this run fail), -EINPROGRESS when it is running (its
 * function sees weft_job_cancelled() == 1). Errors: -EINVAL (also
 * for an output named twice), -EPERM (not sealed), -ENOENT (an output
 * names no node), -ENOMEM, -ESHUTDOWN. */
WEFT_API int weft_graph_run(weft_graph *g, weft_runtime *rt,
                            const char *const *outputs, size_t nout,
                            weft_future **outs, weft_future **all);

#ifdef __cplusplus
}
#endif

#endif
