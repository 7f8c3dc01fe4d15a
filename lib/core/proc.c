/* Reading /proc/PID/stat (proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

int weft__proc_stat(pid_t pid, pid_t tid, char *state, uint64_t *start)
{
    char path[64], buf[512];
    if (tid > 0)
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid,
                 (int)tid);
    else
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ENOENT;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -ENOENT; /* gone between the open and the read */
    buf[n] = 0;
    /* the command name (field 2) may hold spaces and ')': field 3 starts
     * two past the last ')' */
    char *f = strrchr(buf, ')');
    if (!f || f[1] != ' ' || !f[2])
        return -EPROTO;
    if (state)
        *state = f[2];
    for (int field = 3; f && field <= 22; field++)
        f = strchr(f + 1, ' ');
    if (!f)
        return -EPROTO;
    if (start)
        *start = strtoull(f + 1, NULL, 10);
    return 0;
}
