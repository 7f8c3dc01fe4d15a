/* A user's program, measured: `weft-scale -- ./prog args` runs it at each
 * worker count with
 *
 *   WEFT_WORKERS=w                      the runtime's worker count
 *   WEFT_STATS=weft-scale-PID-w         publish statistics under this name
 *   WEFT_STATS_KEEP=1                   and leave the last snapshot
 *
 * times each run from fork to waitpid, then reads the snapshots its
 * runtimes left (weft_stats_list, by name), adds them up and removes
 * them. Its standard output goes to /dev/null, so that the table (or the
 * JSON) stays readable; its standard error is left alone.
 *
 * SIGINT, SIGTERM and SIGHUP sent to weft-scale (not ignored when it
 * started) are passed on to the running program, a second one as
 * SIGKILL (for a program that ignores the first); once it is reaped,
 * weft-scale removes its statistics and dies of the signal itself. Without
 * this a `kill` of weft-scale, or of the job running it, left the program
 * running with nobody to wait for it.
 *
 * With --timeout, a run that takes longer gets SIGTERM, and SIGKILL
 * STOP_GRACE_S later if it is still there; the run fails, with a message
 * that says so (a program that hangs at some worker count, a deadlock
 * for instance, used to hang weft-scale with it). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

/* One run, and what its runtimes published (NAN when none did). */
typedef struct cmd_sample {
    double seconds, idle, steals, tasks, startup;
} cmd_sample;

/* What the snapshots of one run add up to. */
typedef struct cmd_totals {
    double idle_ns, capacity_ns, steals, tasks;
    uint64_t first_created; /* CLOCK_REALTIME ns of the first runtime */
    int runtimes;
} cmd_totals;

static uint64_t unix_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The signals passed on. They stay blocked in weft-scale and are read
 * from a signalfd while it waits for the program (a poll on the signalfd
 * and the program's pidfd), never caught by a handler: a handler runs
 * only when the process is interrupted, and ThreadSanitizer defers
 * handlers in a process blocked in a call it does not know as blocking
 * (waitid), which left a SIGTERM unanswered until the program ended. */
static const int passed_on[] = { SIGINT, SIGTERM, SIGHUP };
#define NPASSED (int)(sizeof passed_on / sizeof passed_on[0])
static sigset_t passed_set; /* those not ignored at start (nohup) */
static sigset_t start_mask; /* the mask the program gets */
static int sig_fd = -1;     /* -1: the signals keep their default */
static int stop_signal;     /* the first one got, 0: none */

/* Take over the signals passed on, except those ignored (nohup): a
 * program run under nohup should not be stopped by a hang-up either.
 * Without a signalfd they keep their default (weft-scale dies at once,
 * the program runs on, as before). */
static void catch_stop_signals(void)
{
    sigemptyset(&passed_set);
    for (int i = 0; i < NPASSED; i++) {
        struct sigaction old;
        if (sigaction(passed_on[i], NULL, &old) == 0 &&
            old.sa_handler != SIG_IGN)
            sigaddset(&passed_set, passed_on[i]);
    }
    sigprocmask(SIG_BLOCK, &passed_set, &start_mask);
    sig_fd = signalfd(-1, &passed_set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sig_fd < 0)
        sigprocmask(SIG_SETMASK, &start_mask, NULL);
}

/* Reads the signals that came: the first is passed on to the program
 * (pid > 0, not reaped yet), a later one as SIGKILL. */
static void take_signals(pid_t pid)
{
    struct signalfd_siginfo si;
    while (sig_fd >= 0 && read(sig_fd, &si, sizeof si) == sizeof si) {
        if (pid > 0)
            kill(pid, stop_signal != 0 ? SIGKILL : (int)si.ssi_signo);
        if (stop_signal == 0)
            stop_signal = (int)si.ssi_signo;
    }
}

/* After the program was reaped: die of the signal that stopped us, as
 * the shell expects of a program interrupted (a script's loop stops). */
static void stop_if_signalled(const scale_opts *o)
{
    take_signals(0);
    int sig = stop_signal;
    if (sig == 0)
        return;
    scale_progress(o, NULL);
    fflush(stdout);
    signal(sig, SIG_DFL);
    sigprocmask(SIG_SETMASK, &start_mask, NULL);
    raise(sig);
    _exit(128 + sig); /* not reached */
}

/* In the child: stdout to /dev/null, then the program. On failure the
 * errno goes to the parent through errfd (close-on-exec, so a successful
 * exec closes it and the parent reads nothing). */
static void child_exec(char **argv, int errfd)
{
    if (sig_fd >= 0)
        close(sig_fd);
    sigprocmask(SIG_SETMASK, &start_mask, NULL); /* the signals unblocked */
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0)
        dup2(null, STDOUT_FILENO); /* the copy is not close-on-exec */
    execvp(argv[0], argv);
    int e = errno;
    if (write(errfd, &e, sizeof e) < 0)
        _exit(127);
    _exit(127);
}

static void set_env(int w, const char *name)
{
    char n[16];
    snprintf(n, sizeof n, "%d", w);
    setenv("WEFT_WORKERS", n, 1);
    setenv("WEFT_STATS", name, 1);
    setenv("WEFT_STATS_KEEP", "1", 1);
}

/* Every published source, in a malloc'd array; the count or -errno. */
static int list_sources(weft_stats_source **out)
{
    for (int cap = 16;;) {
        weft_stats_source *v = malloc((size_t)cap * sizeof *v);
        int n = v != NULL ? weft_stats_list(v, cap) : -ENOMEM;
        if (n >= 0 && n <= cap) {
            *out = v;
            return n;
        }
        free(v);
        if (n < 0)
            return n;
        cap = n + 16; /* more appeared meanwhile: try again, bigger */
    }
}

/* Add one kept snapshot to *t, then remove it. */
static void take_snapshot(const weft_stats_source *src, cmd_totals *t)
{
    weft_stats_reader *r = NULL;
    weft_runtime_stats rs;
    weft_worker_stats *ws = calloc((size_t)src->workers + 1, sizeof *ws);
    int n = ws != NULL && weft_stats_attach(src->id, &r) == 0
                ? weft_stats_read(r, NULL, &rs, ws, src->workers) : -1;
    weft_stats_detach(&r);
    double busy_ns = 0;
    for (int i = 0; i < n; i++) {
        busy_ns += (double)ws[i].busy_ns;
        t->steals += (double)ws[i].steals_won;
        t->tasks += (double)(ws[i].published + ws[i].roots + ws[i].jobs);
    }
    if (n > 0) {
        /* idle: the runtime's life not spent running tasks (as in
         * measure.c), serial stretches of the program included */
        t->idle_ns += fmax(0, (double)n * (double)rs.uptime_ns - busy_ns);
        t->capacity_ns += (double)n * (double)rs.uptime_ns;
        if (t->runtimes++ == 0 || src->created_unix_ns < t->first_created)
            t->first_created = src->created_unix_ns;
    }
    free(ws);
    weft_stats_remove(src->id);
}

/* The snapshots the program's runtimes (its children's too: they inherit
 * the name) left under `name`, read and removed; live ones (a child
 * still running) are left alone. A program that exited without
 * destroying its runtime left the snapshot of at most WEFT_STATS_MS
 * before. */
static void collect(const char *name, uint64_t fork_ns, cmd_sample *s)
{
    weft_stats_source *src = NULL;
    cmd_totals t = { 0, 0, 0, 0, 0, 0 };
    int n = list_sources(&src);
    for (int i = 0; i < n; i++)
        if ((src[i].exited || !src[i].alive) &&
            strcmp(src[i].name, name) == 0)
            take_snapshot(&src[i], &t);
    free(src);
    s->idle = s->steals = s->tasks = s->startup = NAN;
    if (t.runtimes == 0)
        return; /* not a weft program */
    s->idle = t.capacity_ns > 0 ? t.idle_ns / t.capacity_ns : NAN;
    s->steals = t.steals;
    s->tasks = t.tasks;
    s->startup = ((double)t.first_created - (double)fork_ns) * 1e-9;
}

/* Says why the program failed; returns -1. */
static int check_status(const scale_opts *o, int w, int status, int err)
{
    const char *prog = o->command[0];
    if (err != 0)
        fprintf(stderr, "weft-scale: cannot run '%s': %s\n", prog,
                strerror(err));
    else if (WIFSIGNALED(status))
        fprintf(stderr, "weft-scale: '%s' was killed by signal %d (%s) "
                "at %d workers\n", prog, WTERMSIG(status),
                strsignal(WTERMSIG(status)), w);
    else if (WEXITSTATUS(status) != 0)
        fprintf(stderr, "weft-scale: '%s' exited with status %d at %d "
                "workers\n", prog, WEXITSTATUS(status), w);
    else
        return 0;
    return -1;
}

/* How long a program past its --timeout has, after SIGTERM, before
 * SIGKILL: time to write what it must, as timeout(1)'s -k gives. */
#define STOP_GRACE_S 3.0

/* Whether the program has ended, without reaping it. */
static int ended(pid_t pid)
{
    siginfo_t info;
    info.si_pid = 0;
    return waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0
           && info.si_pid == pid;
}

/* The poll's wait in ms until `deadline` (-1: none), at most `cap`
 * when cap >= 0. */
static int wait_ms(double deadline, double now, int cap)
{
    int w = -1; /* no deadline: until something happens */
    if (!isinf(deadline))
        w = (int)fmin(fmax(ceil((deadline - now) * 1e3), 0), INT_MAX / 2);
    return cap >= 0 && (w < 0 || w > cap) ? cap : w;
}

/* Until the program ends, answering signals and its --timeout: a poll on
 * its pidfd and the signalfd (without a pidfd, a look every 10 ms). Past
 * the timeout it gets SIGTERM, STOP_GRACE_S later SIGKILL. It is waited
 * for without being reaped (WNOWAIT), so no signal sent can reach
 * another process given its pid; then it is reaped. Returns the signals
 * the timeout sent: 0, 1 (SIGTERM) or 2 (and SIGKILL). */
static int wait_program(const scale_opts *o, pid_t pid, int *status)
{
    double deadline = o->timeout > 0 ? scale_now() + o->timeout : INFINITY;
    int stopped = 0;
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    struct pollfd fds[2] = { { .fd = pfd, .events = POLLIN },
                             { .fd = sig_fd, .events = POLLIN } };
    for (;;) {
        double now = scale_now();
        if (now >= deadline) { /* SIGKILL once the grace is over */
            kill(pid, stopped++ == 0 ? SIGTERM : SIGKILL);
            deadline = stopped == 1 ? now + STOP_GRACE_S : INFINITY;
        }
        if (poll(fds, 2, wait_ms(deadline, now, pfd < 0 ? 10 : -1)) < 0 &&
            errno != EINTR)
            break; /* cannot wait here: the blocking wait below */
        take_signals(pid);
        if (pfd >= 0 ? fds[0].revents != 0 : ended(pid))
            break;
    }
    if (pfd >= 0)
        close(pfd);
    siginfo_t info;
    while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0 &&
           errno == EINTR)
        ;
    take_signals(pid);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return stopped;
}

/* Fork, exec, wait: one timed run at w workers. */
static int run_once(const scale_opts *o, int w, cmd_sample *s)
{
    char name[64];
    int pipefd[2], err = 0, status = 0;
    snprintf(name, sizeof name, "weft-scale-%d-%d", (int)getpid(), w);
    set_env(w, name);
    stop_if_signalled(o); /* one came between two runs */
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        perror("weft-scale: pipe");
        return -1;
    }
    uint64_t fork_ns = unix_ns();
    double t0 = scale_now();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(o->command, pipefd[1]);
    close(pipefd[1]);
    if (pid < 0) {
        perror("weft-scale: fork");
        close(pipefd[0]);
        return -1;
    }
    if (read(pipefd[0], &err, sizeof err) != sizeof err)
        err = 0; /* closed by a successful exec */
    close(pipefd[0]);
    int late = wait_program(o, pid, &status);
    s->seconds = scale_now() - t0;
    collect(name, fork_ns, s);
    stop_if_signalled(o);
    if (late) {
        fprintf(stderr, "weft-scale: '%s' ran past the timeout of %g s at "
                "%d workers: stopped by SIGTERM%s\n", o->command[0],
                o->timeout, w, late > 1 ? ", then SIGKILL" : "");
        return -1;
    }
    return check_status(o, w, status, err);
}

/* The length of the well-formed UTF-8 character at s, 0 when there is
 * none (a stray or truncated byte, an overlong form, a surrogate). */
static int utf8_char(const unsigned char *s)
{
    static const unsigned lead[] = { 0x1F, 0x0F, 0x07 };
    static const unsigned least[] = { 0x80, 0x800, 0x10000 };
    if (s[0] < 0x80)
        return 1;
    int n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
          : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0)
        return 0;
    unsigned c = s[0] & lead[n - 2];
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* the NUL too */
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    return c < least[n - 2] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)
               ? 0 : n;
}

/* Append s to the label at *at, as text every output can carry: JSON and
 * SVG must be UTF-8, so a byte that is not part of a character (a file
 * name in Latin-1) becomes '?', as do control characters (a newline would
 * break the table's lines); a character that does not fit whole is left
 * out with the rest, never cut. */
static void label_add(char *label, size_t cap, size_t *at, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0';) {
        int n = utf8_char(p);
        int text = n > 1 || (n == 1 && *p >= 0x20 && *p != 0x7f);
        size_t len = text ? (size_t)n : 1;
        if (*at + len >= cap)
            break;
        memcpy(label + *at, text ? (const char *)p : "?", len);
        *at += len;
        p += n > 0 ? n : 1;
    }
    label[*at] = '\0';
}

static void init_result(const scale_opts *o, scale_result *res)
{
    memset(res, 0, sizeof *res);
    snprintf(res->name, sizeof res->name, "command");
    res->what = "your program";
    size_t at = 0;
    for (char **a = o->command; *a != NULL; a++) {
        if (a != o->command)
            label_add(res->label, sizeof res->label, &at, " ");
        label_add(res->label, sizeof res->label, &at, *a);
    }
    res->serial = scale_unknown();
    res->nrows = o->nworkers;
}

/* `repeat` runs at row->workers. */
static int measure_row(const scale_opts *o, scale_row *row)
{
    double v[5][SCALE_MAX_REPEAT];
    int w = row->workers;
    scale_progress(o, "%s at %d worker%s", o->command[0], w,
                   w > 1 ? "s" : "");
    for (int r = 0; r < o->repeat; r++) {
        cmd_sample s;
        if (run_once(o, w, &s) != 0)
            return -1;
        double one[5] = { s.seconds, s.idle, s.steals, s.tasks, s.startup };
        for (int k = 0; k < 5; k++)
            v[k][r] = one[k];
    }
    scale_stat *out[5] = { &row->time, &row->idle, &row->steals,
                           &row->tasks, &row->startup };
    for (int k = 0; k < 5; k++)
        *out[k] = scale_summarise(v[k], o->repeat);
    row->scaled = row->destroy = row->preempted = scale_unknown();
    row->work = row->scaled_work = NAN;
    return 0;
}

int scale_measure_command(const scale_opts *o, scale_result *out)
{
    catch_stop_signals();
    init_result(o, out);
    for (int i = 0; i < o->nworkers; i++) {
        out->rows[i].workers = o->workers[i];
        if (measure_row(o, &out->rows[i]) != 0) {
            scale_progress(o, NULL);
            return -1;
        }
    }
    scale_progress(o, NULL);
    return 0;
}
