/* weft: one NUMA-aware work-stealing runtime for C programs.
 * Include this header; link with libweft (pkg-config weft). */
#ifndef WEFT_H
#define WEFT_H

#include "weft/version.h"
#include "weft/common.h"
#include "weft/runtime.h"
#include "weft/task.h"
#include "weft/taskdef.h"
#include "weft/stats.h"
#include "weft/future.h"
#include "weft/graph.h"
#include "weft/map.h"
#include "weft/actor.h"
#include "weft/store.h"
#include "weft/net.h"

#endif
