/* What /proc says of a process: shared by the statistics segments
 * (publish.c) and the store's client liveness (lib/store/segment.c),
 * which both tell a live process from a dead one whose pid was reused by
 * its start time. */
#ifndef WEFT_PROC_H
#define WEFT_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* Of process pid (tid 0) or of its thread tid: the state (field 3 of
 * /proc/PID/stat, 'R', 'S', 'Z', ...) and the start time (field 22, in
 * clock ticks after boot); either out may be NULL. 0, or -ENOENT when
 * /proc has no such process (or there is no /proc), -EPROTO when the
 * line cannot be read. */
__attribute__((visibility("hidden"))) int
weft__proc_stat(pid_t pid, pid_t tid, char *state, uint64_t *start);

#endif
