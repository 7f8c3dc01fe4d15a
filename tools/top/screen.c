/* weft-top interactive mode: an ncurses screen in the manner of htop.
 *
 *   header      weft-top, runtime count, interval, clock
 *   table       one row per runtime; the selected one highlighted
 *   detail      the selected runtime: totals, the subsystems, and a
 *               utilisation bar per worker (scrolls with PgUp/PgDn)
 *   footer      the keys
 *
 * Everything is redrawn from the model each time; nothing is kept on the
 * screen between frames, so a resize only needs the next draw. */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curses.h>

#include "top.h"

enum { PAIR_BUSY = 1, PAIR_SPIN, PAIR_TITLE };

struct view {
    struct top_model *m;
    double interval_s;
    int sel;          /* selected runtime */
    char sel_id[64];  /* its id: the selection follows it across refreshes */
    int wtop;         /* first worker row shown */
    int wrows;        /* worker rows that fit, from the last draw */
    int err;          /* of the last refresh: 0 or a negative errno */
    bool colors;
};

/* ---- drawing helpers ---------------------------------------------------- */

/* One line of text at row, cut at the screen's width, in attr. */
static void line_at(int row, attr_t attr, const char *text)
{
    if (row < 0 || row >= LINES)
        return;
    attron(attr);
    mvaddnstr(row, 0, text, COLS);
    attroff(attr);
}

/* Fill row to the screen's width in attr (for the bars of the header,
 * the table's selection and the footer). */
static void band_at(int row, attr_t attr, const char *text)
{
    if (row < 0 || row >= LINES)
        return;
    char buf[512];
    snprintf(buf, sizeof buf, "%-*.*s", COLS < 511 ? COLS : 511,
             COLS < 511 ? COLS : 511, text);
    line_at(row, attr, buf);
}

static attr_t pair(const struct view *v, short p)
{
    return v->colors ? COLOR_PAIR(p) : A_NORMAL;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- header and table --------------------------------------------------- */

static int draw_header(const struct view *v, int row)
{
    char clock[16] = "", buf[256];
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm))
        strftime(clock, sizeof clock, "%H:%M:%S", &tm);
    int k = snprintf(buf, sizeof buf,
                     " weft-top   %d runtime%s publishing   refresh %.2g s"
                     "   %s", v->m->n, v->m->n == 1 ? "" : "s",
                     v->interval_s, clock);
    if (v->err)
        snprintf(buf + k, sizeof buf - (size_t)k,
                 "   cannot list /dev/shm: %s", strerror(-v->err));
    band_at(row, A_REVERSE | A_BOLD, buf);
    return row + 1;
}

/* Width of the name column: what is left after the fixed columns. */
static int name_width(void)
{
    int w = COLS - 69; /* the other columns take 68 */
    return w < 8 ? 8 : w > 40 ? 40 : w;
}

static void table_row(const struct view *v, int row, int i)
{
    const struct top_runtime *r = v->m->rt[i];
    struct top_rates t;
    top_runtime_rates(r, &t);
    char name[64], up[24], tasks[16], steals[16], maps[16], items[16];
    char buf[512];
    top_clean_name(name, sizeof name, r->cur.src.name);
    top_fmt_uptime(up, sizeof up, r->cur.rs.uptime_ns);
    top_fmt_si(tasks, sizeof tasks, t.tasks_s);
    top_fmt_si(steals, sizeof steals, t.steals_s);
    top_fmt_si(maps, sizeof maps, top_maps_s(r));
    top_fmt_si(items, sizeof items, top_items_s(r));
    /* only those that no longer run say so (they show with 'a') */
    const char *state = r->cur.src.alive ? "" : top_state(&r->cur.src);
    snprintf(buf, sizeof buf,
             " %-*.*s %7d %4d %11s %5.1f%% %8s %8s %7s %8s %s", name_width(),
             name_width(), name, r->cur.src.pid, r->workers, up,
             100 * t.util, tasks, steals, maps, items,
             state);
    if (i == v->sel)
        band_at(row, A_REVERSE, buf);
    else
        line_at(row, A_NORMAL, buf);
}

/* The runtime table: at most `rows` runtimes, scrolled so that the
 * selected one shows. Returns the next free row. */
static int draw_table(const struct view *v, int row, int rows)
{
    char buf[256];
    snprintf(buf, sizeof buf, " %-*s %7s %4s %11s %6s %8s %8s %7s %8s",
             name_width(), "NAME", "PID", "WRK", "UPTIME", "UTIL",
             "TASKS/s", "STEALS/s", "MAPS/s", "ITEMS/s");
    line_at(row++, A_BOLD | pair(v, PAIR_TITLE), buf);
    if (v->m->n == 0) {
        line_at(row, A_NORMAL, " (no weft runtime publishes statistics: "
                               "run a program with WEFT_STATS=name)");
        return row + 2;
    }
    int first = v->sel >= rows ? v->sel - rows + 1 : 0;
    for (int i = first; i < v->m->n && i < first + rows; i++)
        table_row(v, row++, i);
    return row + 1;
}

/* ---- the selected runtime ----------------------------------------------- */

/* "name value" for a subsystem counter, "-" for one that reports 0. */
static int put_count(char *buf, size_t len, const char *name, uint64_t v,
                     bool *dash)
{
    char n[16] = "-";
    if (v)
        top_fmt_si(n, sizeof n, (double)v);
    *dash |= !v;
    return snprintf(buf, len, "%s %s  ", name, n);
}

static void subsystems_line(int row, const struct top_runtime *r)
{
    const weft_runtime_stats *rs = &r->cur.rs;
    char buf[512], rate[16];
    size_t k = 0;
    bool dash = false;
    k += (size_t)put_count(buf + k, sizeof buf - k, " actors", rs->actors,
                           &dash);
    top_fmt_si(rate, sizeof rate, top_msgs_s(r));
    k += (size_t)snprintf(buf + k, sizeof buf - k, "msgs/s %s  ", rate);
    k += (size_t)put_count(buf + k, sizeof buf - k, "restarts",
                           rs->actor_restarts, &dash);
    k += (size_t)put_count(buf + k, sizeof buf - k, "mailbox backlog",
                           rs->mailbox_backlog, &dash);
    k += (size_t)put_count(buf + k, sizeof buf - k, "store", rs->store_used,
                           &dash);
    k += (size_t)put_count(buf + k, sizeof buf - k, "objects",
                           rs->store_objects, &dash);
    k += (size_t)put_count(buf + k, sizeof buf - k, "evictions",
                           rs->store_evictions, &dash);
    k += (size_t)put_count(buf + k, sizeof buf - k, "spills",
                           rs->store_spills, &dash);
    put_count(buf + k, sizeof buf - k, "peers", rs->peers, &dash);
    line_at(row, A_NORMAL, buf);
    if (dash)
        line_at(row + 1, A_DIM,
                " (-: at 0; a subsystem this runtime does not use: actors, "
                "its object store, peers)");
}

static int draw_summary(const struct top_runtime *r, int row)
{
    char name[64], up[24], a[16], b[16], c[16], d[16], e[16], buf[512];
    struct top_rates t;
    top_runtime_rates(r, &t);
    top_clean_name(name, sizeof name, r->cur.src.name);
    top_fmt_uptime(up, sizeof up, r->cur.rs.uptime_ns);
    snprintf(buf, sizeof buf, " %s   pid %d   %d worker%s   up %s   %s%s",
             name, r->cur.src.pid, r->workers, r->workers == 1 ? "" : "s",
             up, r->shown, r->cur.src.alive ? "" : "   [no longer runs]");
    line_at(row++, A_BOLD, buf);
    top_fmt_si(a, sizeof a, t.tasks_s);
    top_fmt_si(b, sizeof b, t.steals_s);
    top_fmt_si(c, sizeof c, top_maps_s(r));
    top_fmt_si(d, sizeof d, top_items_s(r));
    top_fmt_si(e, sizeof e, t.parks_s);
    snprintf(buf, sizeof buf,
             " util %.1f%%  tasks %s/s  steals %s/s  queued %llu  "
             "parks %s/s", 100 * t.util, a, b,
             (unsigned long long)t.queued, e);
    line_at(row++, A_NORMAL, buf);
    snprintf(buf, sizeof buf, " maps %s/s  items %s/s  (rates over %.2f s)",
             c, d, t.window_s);
    line_at(row++, A_NORMAL, buf);
    subsystems_line(row, r);
    return row + 3;
}

/* [|||||---      42.1%]: busy as '|', searching for work as '-', the
 * busy percentage over the right end. */
static void draw_bar(const struct view *v, int row, int col, int width,
                     const struct top_rates *t)
{
    int inner = width - 2;
    int busy = (int)(t->util * inner + 0.5);
    int spin = (int)((t->util + t->spin) * inner + 0.5) - busy;
    char pct[16];
    int plen = snprintf(pct, sizeof pct, "%.1f%%", 100 * t->util);
    mvaddch(row, col, '[');
    for (int i = 0; i < inner; i++) {
        int from_end = inner - i;
        chtype ch = from_end <= plen ? (chtype)pct[plen - from_end]
                    : i < busy       ? '|'
                    : i < busy + spin ? '-'
                                      : ' ';
        attr_t a = from_end <= plen ? A_BOLD
                   : i < busy       ? pair(v, PAIR_BUSY)
                                    : pair(v, PAIR_SPIN);
        addch(ch | a);
    }
    addch(']');
}

/* The bar takes what the other columns of a worker row leave (they take
 * 52), at least 12, and never runs past the right edge (curses would
 * wrap it onto the next line). */
static int bar_width(void)
{
    int bar = COLS - 52 < 12 ? 12 : COLS - 52;
    return bar < COLS - 16 ? bar : COLS - 16;
}

static void worker_row(const struct view *v, const struct top_runtime *r,
                       int row, int i)
{
    const weft_worker_stats *w = &r->cur.w[i];
    struct top_rates t;
    top_worker_rates(r, i, &t);
    char a[16], b[16], buf[128];
    int bar = bar_width();
    char cpu[16] = "-"; /* not pinned */
    if (w->cpu >= 0)
        snprintf(cpu, sizeof cpu, "%d", w->cpu);
    snprintf(buf, sizeof buf, " %4d %4s %4d ", i, cpu, w->numa_node);
    line_at(row, A_NORMAL, buf);
    if (bar >= 8) /* room for "[100.0%]" */
        draw_bar(v, row, 16, bar, &t);
    top_fmt_si(a, sizeof a, t.tasks_s);
    top_fmt_si(b, sizeof b, t.steals_s);
    snprintf(buf, sizeof buf, " %8s %8s %6llu %7.1f", a, b,
             (unsigned long long)t.queued, t.parks_s);
    if (16 + bar < COLS)
        mvaddnstr(row, 16 + bar, buf, COLS - 16 - bar);
}

static int draw_workers(struct view *v, const struct top_runtime *r,
                        int row, int last)
{
    char buf[256];
    int bar = bar_width();
    snprintf(buf, sizeof buf, " %4s %4s %4s  %-*s %8s %8s %6s %7s", "WRK",
             "CPU", "NODE", bar > 1 ? bar - 1 : 1, "UTILISATION",
             "TASKS/s", "STEALS/s", "QUEUED", "PARKS/s");
    line_at(row++, A_BOLD | pair(v, PAIR_TITLE), buf);
    v->wrows = last - row + 1 > 1 ? last - row + 1 : 1;
    if (v->wtop > r->workers - v->wrows)
        v->wtop = r->workers - v->wrows > 0 ? r->workers - v->wrows : 0;
    for (int i = v->wtop; i < r->workers && row <= last; i++)
        worker_row(v, r, row++, i);
    return row;
}

/* The keys, after the rows of workers shown when not all fit. */
static void draw_footer(const struct view *v)
{
    char buf[256], more[48] = "";
    if (v->m->n > 0) {
        int n = v->m->rt[v->sel]->workers;
        int last = v->wtop + v->wrows < n ? v->wtop + v->wrows : n;
        if (n > v->wrows)
            snprintf(more, sizeof more, " workers %d-%d of %d |",
                     v->wtop, last - 1, n);
    }
    snprintf(buf, sizeof buf,
             "%s q quit  Up/Down runtime  PgUp/PgDn workers  +/- interval"
             "  a exited: %s", more, v->m->show_exited ? "shown" : "hidden");
    band_at(LINES - 1, A_REVERSE, buf);
}

static void draw(struct view *v)
{
    erase();
    int row = draw_header(v, 0);
    int table = (LINES - 10) / 3;
    row = draw_table(v, row + 1, table < 1 ? 1 : table);
    if (v->m->n > 0) {
        const struct top_runtime *r = v->m->rt[v->sel];
        row = draw_summary(r, row);
        draw_workers(v, r, row, LINES - 2);
    }
    draw_footer(v);
    refresh();
}

/* ---- input -------------------------------------------------------------- */

/* The selection follows its runtime when others come and go. */
static void reselect(struct view *v)
{
    for (int i = 0; i < v->m->n; i++) {
        if (strcmp(v->m->rt[i]->id, v->sel_id) == 0) {
            v->sel = i;
            return;
        }
    }
    if (v->sel >= v->m->n)
        v->sel = v->m->n - 1;
    if (v->sel < 0)
        v->sel = 0;
    if (v->m->n > 0)
        snprintf(v->sel_id, sizeof v->sel_id, "%s", v->m->rt[v->sel]->id);
}

static void select_runtime(struct view *v, int delta)
{
    int s = v->sel + delta;
    if (s < 0 || s >= v->m->n)
        return;
    v->sel = s;
    v->wtop = 0;
    snprintf(v->sel_id, sizeof v->sel_id, "%s", v->m->rt[s]->id);
}

/* The next interval on a ladder of round values, up or down. */
static double step_interval(double cur, int dir)
{
    static const double ladder[] = { 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60 };
    int n = (int)(sizeof ladder / sizeof *ladder);
    if (dir > 0) {
        for (int i = 0; i < n; i++)
            if (ladder[i] > cur * 1.001)
                return ladder[i];
        return cur;
    }
    for (int i = n - 1; i >= 0; i--)
        if (ladder[i] < cur * 0.999)
            return ladder[i];
    return cur;
}

enum key_result { ON_KEY_REDRAW, ON_KEY_QUIT, ON_KEY_REFRESH };

static enum key_result on_key(struct view *v, int ch)
{
    switch (ch) {
    case 'q':
    case 'Q':
        return ON_KEY_QUIT;
    case KEY_UP:
    case 'k':
        select_runtime(v, -1);
        break;
    case KEY_DOWN:
    case 'j':
        select_runtime(v, 1);
        break;
    case KEY_NPAGE:
    case ' ':
        v->wtop += v->wrows;
        break;
    case KEY_PPAGE:
        v->wtop = v->wtop > v->wrows ? v->wtop - v->wrows : 0;
        break;
    case '+':
    case '=':
        v->interval_s = step_interval(v->interval_s, 1);
        break;
    case '-':
        v->interval_s = step_interval(v->interval_s, -1);
        break;
    case 'a':
        v->m->show_exited = !v->m->show_exited;
        return ON_KEY_REFRESH;
    default:
        break; /* KEY_RESIZE among others: the redraw is all it needs */
    }
    return ON_KEY_REDRAW;
}

/* Handle keys until the next refresh is due (since + interval). Returns
 * false when the user quits. */
static bool wait_keys(struct view *v, double since)
{
    for (;;) {
        double left = since + v->interval_s - mono_s();
        if (left <= 0)
            return true;
        timeout((int)(left * 1000) + 1);
        int ch = getch();
        if (ch == ERR)
            continue; /* the deadline passed, or a signal came */
        enum key_result k = on_key(v, ch);
        if (k == ON_KEY_QUIT)
            return false;
        if (k == ON_KEY_REFRESH)
            return true;
        draw(v);
    }
}

/* ---- the loop ----------------------------------------------------------- */

static void colors_init(struct view *v)
{
    v->colors = has_colors() && start_color() == OK;
    if (!v->colors)
        return;
    use_default_colors();
    init_pair(PAIR_BUSY, COLOR_GREEN, -1);
    init_pair(PAIR_SPIN, COLOR_YELLOW, -1);
    init_pair(PAIR_TITLE, COLOR_CYAN, -1);
}

int top_screen_run(struct top_model *m, double interval_s, long count)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "weft-top: interactive mode needs a terminal; "
                        "use -b for batch mode\n");
        return 1;
    }
    setlocale(LC_ALL, "");
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr) {
        const char *term = getenv("TERM");
        fprintf(stderr, "weft-top: cannot use terminal type '%s'; "
                        "use -b for batch mode\n", term ? term : "");
        return 1;
    }
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    struct view v = { .m = m, .interval_s = interval_s };
    colors_init(&v);
    for (long done = 0;;) {
        double since = mono_s();
        v.err = top_refresh(m); /* on failure the old view stays */
        reselect(&v);
        draw(&v);
        if ((count > 0 && ++done >= count) || !wait_keys(&v, since))
            break;
    }
    endwin();
    delscreen(scr);
    return 0;
}
