/* Topology: which cores the workers run on, which NUMA node each belongs
 * to, and in what order a thief visits its victims (nearest first).
 * Everything comes from hwloc, so a synthetic or XML topology exercises
 * the same code as the real machine. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "internal.h"

/* A description names an XML file when it ends in ".xml" or contains a
 * '/'; otherwise it is an hwloc synthetic string. */
static bool looks_like_file(const char *desc)
{
    size_t n = strlen(desc);
    return strchr(desc, '/') || (n > 4 && !strcmp(desc + n - 4, ".xml"));
}

static int topo_source(weft_runtime *rt, const char *desc)
{
    if (looks_like_file(desc)) {
        if (access(desc, R_OK) != 0) {
            int e = errno;
            weft__log("topology file '%s': %s", desc, strerror(e));
            return -e;
        }
        if (hwloc_topology_set_xml(rt->topo, desc) != 0) {
            weft__log("topology file '%s' is not hwloc XML", desc);
            return -EINVAL;
        }
    } else if (hwloc_topology_set_synthetic(rt->topo, desc) != 0) {
        weft__log("topology '%s' is not a valid hwloc synthetic description",
                  desc);
        return -EINVAL;
    }
    rt->synthetic = true;
    return 0;
}

/* The real machine's topology, discovered once per process and copied
 * for each runtime: discovery reads a few hundred sysfs files and loads
 * hwloc's plugins (3.5 ms per runtime on the development VM, 40 ms the
 * first time), a copy takes microseconds. Which of its cores the process
 * may use is asked anew at every creation (allowed_set), so a process
 * whose binding changed still gets the right workers. Kept until exit. */
static pthread_mutex_t machine_lock = PTHREAD_MUTEX_INITIALIZER;
static hwloc_topology_t machine;

static int machine_load(void)
{
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) != 0)
        return -ENOMEM;
    if (hwloc_topology_load(t) != 0) {
        hwloc_topology_destroy(t);
        weft__log("hwloc could not load the topology");
        return -EINVAL;
    }
    machine = t;
    return 0;
}

static int machine_copy(weft_runtime *rt)
{
    pthread_mutex_lock(&machine_lock);
    int rc = machine ? 0 : machine_load();
    if (rc == 0 && hwloc_topology_dup(&rt->topo, machine) != 0)
        rc = -ENOMEM;
    pthread_mutex_unlock(&machine_lock);
    if (rc)
        rt->topo = NULL;
    return rc;
}

int weft__topo_load(weft_runtime *rt, const char *desc)
{
    if (!desc || !*desc)
        return machine_copy(rt);
    if (hwloc_topology_init(&rt->topo) != 0)
        return -ENOMEM;
    int rc = topo_source(rt, desc);
    if (rc == 0 && hwloc_topology_load(rt->topo) != 0) {
        weft__log("hwloc could not load the topology");
        rc = -EINVAL;
    }
    if (rc != 0) {
        hwloc_topology_destroy(rt->topo);
        rt->topo = NULL;
    }
    return rc;
}

/* The cpuset workers may use: the process's binding on a real machine,
 * every PU of a synthetic one. Caller frees it. */
static hwloc_bitmap_t allowed_set(weft_runtime *rt)
{
    hwloc_bitmap_t set = hwloc_bitmap_dup(
        hwloc_topology_get_topology_cpuset(rt->topo));
    if (!set || rt->synthetic)
        return set;
    hwloc_bitmap_t bound = hwloc_bitmap_alloc();
    if (bound && hwloc_get_cpubind(rt->topo, bound,
                                   HWLOC_CPUBIND_PROCESS) == 0)
        hwloc_bitmap_and(set, set, bound);
    hwloc_bitmap_free(bound);
    return set;
}

/* The first allowed PU of every core that has one, in core order: a new
 * array in *out (the caller frees it; NULL when there are none), their
 * number in *n. One walk over the PUs, each looking up its core: finding
 * the n-th core's PU afresh for every n walked all cores, and all PUs
 * for each core, so that counting cores and placing workers were
 * quadratic in hwloc walks (0.7 s for 512 synthetic cores, 72 s for
 * 2400, whatever the workers asked for: bench/RESULTS.md). */
static int core_pus(weft_runtime *rt, hwloc_const_bitmap_t set,
                    hwloc_obj_t **out, int *n)
{
    *out = NULL;
    *n = 0;
    int ncores = hwloc_get_nbobjs_by_type(rt->topo, HWLOC_OBJ_CORE);
    if (ncores <= 0)
        return 0;
    hwloc_obj_t *first = weft__calloc((size_t)ncores, sizeof *first);
    if (!first)
        return -ENOMEM;
    hwloc_obj_t pu = NULL;
    while ((pu = hwloc_get_next_obj_by_type(rt->topo, HWLOC_OBJ_PU, pu))) {
        if (!hwloc_bitmap_isset(set, (unsigned)pu->os_index))
            continue;
        hwloc_obj_t core =
            hwloc_get_ancestor_obj_by_type(rt->topo, HWLOC_OBJ_CORE, pu);
        /* PUs come in logical order: the first one seen is the first */
        if (core && core->logical_index < (unsigned)ncores &&
            !first[core->logical_index])
            first[core->logical_index] = pu;
    }
    for (int i = 0; i < ncores; i++)
        if (first[i])
            first[(*n)++] = first[i]; /* in place: *n <= i */
    if (*n)
        *out = first;
    else
        weft__free(first);
    return 0;
}

/* The allowed set's cores, with their first PUs (core_pus). */
static int allowed_cores(weft_runtime *rt, hwloc_obj_t **pus, int *n)
{
    hwloc_bitmap_t set = allowed_set(rt);
    if (!set)
        return -ENOMEM;
    int rc = core_pus(rt, set, pus, n);
    hwloc_bitmap_free(set);
    return rc;
}

int weft__topo_count_cores(weft_runtime *rt, int *ncores)
{
    hwloc_obj_t *pus;
    int n, rc = allowed_cores(rt, &pus, &n);
    if (rc)
        return rc;
    weft__free(pus);
    if (n == 0) { /* no core objects (odd XML): fall back to PUs */
        n = hwloc_get_nbobjs_by_type(rt->topo, HWLOC_OBJ_PU);
    }
    *ncores = n > 0 ? n : 1;
    return 0;
}

static int numa_of(weft_runtime *rt, hwloc_obj_t pu)
{
    hwloc_obj_t node = NULL;
    while ((node = hwloc_get_next_obj_by_type(rt->topo, HWLOC_OBJ_NUMANODE,
                                              node)))
        if (hwloc_bitmap_intersects(node->cpuset, pu->cpuset))
            return (int)node->logical_index;
    return 0;
}

/* Give each worker a PU: one per core, round-robin when there are more
 * workers than cores. */
int weft__topo_place(weft_runtime *rt)
{
    hwloc_obj_t *pus;
    int ncores, rc = allowed_cores(rt, &pus, &ncores);
    if (rc)
        return rc;
    for (int i = 0; i < rt->nworkers; i++) {
        weft__worker *w = rt->workers[i];
        w->pu = ncores ? pus[i % ncores]
                       : hwloc_get_obj_by_type(rt->topo, HWLOC_OBJ_PU, 0);
        w->numa = w->pu ? numa_of(rt, w->pu) : 0;
        w->cpu = rt->pinned && w->pu ? (int)w->pu->os_index : -1;
    }
    weft__free(pus);
    return 0;
}

/* How close two workers are: the depth of their PUs' common ancestor
 * (deeper = closer). Two workers on one PU share the PU itself. */
static int closeness(weft_runtime *rt, weft__worker *a, weft__worker *b)
{
    if (!a->pu || !b->pu)
        return 0;
    if (a->pu == b->pu)
        return a->pu->depth;
    return hwloc_get_common_ancestor_obj(rt->topo, a->pu, b->pu)->depth;
}

/* Sort the victims of w nearest first (insertion sort: n is small and this
 * runs once), then record where each closeness level ends. */
int weft__topo_victims(weft_runtime *rt, weft__worker *w)
{
    int n = rt->nworkers - 1, k = 0;
    int *depth = weft__calloc((size_t)(n > 0 ? n : 1), sizeof *depth);
    w->victims = weft__calloc((size_t)(n > 0 ? n : 1), sizeof *w->victims);
    w->lvl_end = weft__calloc((size_t)(n > 0 ? n : 1), sizeof *w->lvl_end);
    if (!depth || !w->victims || !w->lvl_end) {
        weft__free(depth);
        return -ENOMEM;
    }
    for (int j = 0; j < rt->nworkers; j++) {
        if (j == w->index)
            continue;
        int d = closeness(rt, w, rt->workers[j]), i = k++;
        for (; i > 0 && depth[i - 1] < d; i--) {
            depth[i] = depth[i - 1];
            w->victims[i] = w->victims[i - 1];
        }
        depth[i] = d;
        w->victims[i] = (uint16_t)j;
    }
    w->nlevels = 0;
    w->near_end = 0;
    for (int i = 0; i < n; i++) {
        if (i + 1 == n || depth[i + 1] != depth[i])
            w->lvl_end[w->nlevels++] = (uint32_t)(i + 1);
        if (rt->workers[w->victims[i]]->numa == w->numa)
            w->near_end = (uint32_t)(i + 1);
    }
    weft__free(depth);
    return 0;
}

void weft__topo_bind(weft_runtime *rt, weft__worker *w)
{
    if (w->cpu < 0 || !w->pu)
        return;
    if (hwloc_set_cpubind(rt->topo, w->pu->cpuset, HWLOC_CPUBIND_THREAD))
        w->cpu = -1; /* not fatal: the worker runs unpinned */
}

/* Memory for a worker's structures: lazily committed anonymous pages, so
 * a large deque costs only what it touches, bound to the worker's NUMA
 * node when the machine really has several (on one node, or a synthetic
 * topology, first touch by the owner places them). */
void *weft__alloc_on_node(weft_runtime *rt, size_t size, int node)
{
    if (weft__fault_here())
        return NULL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    int nnodes = hwloc_get_nbobjs_by_type(rt->topo, HWLOC_OBJ_NUMANODE);
    hwloc_obj_t obj = hwloc_get_obj_by_type(rt->topo, HWLOC_OBJ_NUMANODE,
                                            (unsigned)node);
    if (!rt->synthetic && nnodes > 1 && obj) /* best effort: a hint */
        (void)hwloc_set_area_membind(rt->topo, p, size, obj->nodeset,
                                     HWLOC_MEMBIND_BIND,
                                     HWLOC_MEMBIND_BYNODESET);
    return p;
}

void weft__free_on_node(void *p, size_t size)
{
    if (p)
        munmap(p, size);
}
