/* The plot: speedup (T_1 / T_N) against workers, one colour per workload:
 * measured points, the fitted USL curve (solid over the measured range,
 * dashed where it predicts, up to twice the most workers measured), the
 * ideal S = N, and a legend with each fit's sigma and kappa. Plain SVG
 * 1.1 written by hand: one file, no script, no external style. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

#define SVG_W 780
#define SVG_H 480
#define LEFT 64   /* room for the speedup ticks */
#define RIGHT 230 /* room for the legend */
#define TOP 44
#define BOTTOM 56
#define PLOT_W (SVG_W - LEFT - RIGHT)
#define PLOT_H (SVG_H - TOP - BOTTOM)
#define CURVE_STEPS 120

static const char *const colours[] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
    "#9467bd", "#8c564b", "#e377c2", "#17becf",
};

typedef struct axes {
    double xmax, ymax; /* both axes start at 0 */
    int measured;      /* most workers measured */
} axes;

static double px(const axes *a, double n) { return LEFT + n / a->xmax * PLOT_W; }
static double py(const axes *a, double s)
{
    return TOP + PLOT_H - s / a->ymax * PLOT_H;
}

/* About max bytes of s (then "..."), cut between UTF-8 characters, with
 * XML's special characters escaped and control characters (which XML
 * forbids) shown as '?'. */
static void text(FILE *f, const char *s, size_t max)
{
    for (size_t i = 0; *s != '\0'; s++, i++) {
        unsigned char c = (unsigned char)*s;
        if (i >= max && (c & 0xC0) != 0x80) {
            fputs("...", f);
            return;
        }
        if (c < 0x20) {
            fputc('?', f);
            continue;
        }
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A tick step of 1, 2 or 5 times a power of ten giving at most ~8 ticks. */
static double tick_step(double range)
{
    double step = pow(10, floor(log10(range / 8)));
    if (range / step > 8 * 5)
        step *= 10;
    else if (range / step > 8 * 2)
        step *= 5;
    else if (range / step > 8)
        step *= 2;
    return step;
}

static int fitted(const scale_result *res) { return res->usl_rc == 0; }

static axes make_axes(const scale_report *r)
{
    axes a = { 0, 1, 1 };
    for (int i = 0; i < r->nresults; i++) {
        const scale_result *res = &r->results[i];
        int top = res->rows[res->nrows - 1].workers;
        if (top > a.measured)
            a.measured = top;
    }
    a.xmax = 2.0 * a.measured;
    a.ymax = a.measured; /* the ideal over the measured range */
    for (int i = 0; i < r->nresults; i++) {
        const scale_result *res = &r->results[i];
        for (int k = 0; k < res->nrows; k++)
            if (isfinite(res->rows[k].speedup))
                a.ymax = fmax(a.ymax, res->rows[k].speedup);
        for (int k = 0; fitted(res) && k <= CURVE_STEPS; k++)
            a.ymax = fmax(a.ymax, usl_speedup(&res->usl,
                                              1 + k * (a.xmax - 1) /
                                                  CURVE_STEPS));
    }
    double step = tick_step(a.ymax * 1.1);
    a.ymax = ceil(a.ymax * 1.1 / step) * step;
    return a;
}

static void grid(FILE *f, const axes *a)
{
    double xs = fmax(1, round(tick_step(a->xmax))), ys = tick_step(a->ymax);
    for (double x = 0; x <= a->xmax + 1e-9; x += xs)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
                "stroke=\"#e4e4e4\"/>\n<text x=\"%.1f\" y=\"%d\" "
                "text-anchor=\"middle\">%g</text>\n", px(a, x), TOP,
                px(a, x), TOP + PLOT_H, px(a, x), TOP + PLOT_H + 18, x);
    for (double y = 0; y <= a->ymax + 1e-9; y += ys)
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                "stroke=\"#e4e4e4\"/>\n<text x=\"%d\" y=\"%.1f\" "
                "text-anchor=\"end\">%g</text>\n", LEFT, py(a, y),
                LEFT + PLOT_W, py(a, y), LEFT - 6, py(a, y) + 4, y);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
            "fill=\"none\" stroke=\"#444\"/>\n", LEFT, TOP, PLOT_W, PLOT_H);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">workers "
            "(N)</text>\n", LEFT + PLOT_W / 2, SVG_H - 14);
    fprintf(f, "<text transform=\"translate(18 %d) rotate(-90)\" "
            "text-anchor=\"middle\">speedup T(1) / T(N)</text>\n",
            TOP + PLOT_H / 2);
}

/* The ideal line, and where measurement ends and prediction begins. */
static void guides(FILE *f, const axes *a)
{
    double end = fmin(a->xmax, a->ymax);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#888\" stroke-dasharray=\"2 4\"/>\n", px(a, 0),
            py(a, 0), px(a, end), py(a, end));
    fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
            "stroke=\"#bbb\" stroke-dasharray=\"6 3\"/>\n<text x=\"%.1f\" "
            "y=\"%d\" font-size=\"11\" fill=\"#777\">USL prediction "
            "&#8594;</text>\n", px(a, a->measured), TOP, px(a, a->measured),
            TOP + PLOT_H, px(a, a->measured) + 4, TOP + 14);
}

/* The fitted curve from n0 to n1 workers. */
static void curve(FILE *f, const axes *a, const usl_fit *u, double n0,
                  double n1, const char *colour, const char *dash)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\""
            "%s points=\"", colour, dash);
    for (int k = 0; k <= CURVE_STEPS; k++) {
        double n = n0 + k * (n1 - n0) / CURVE_STEPS;
        fprintf(f, "%.1f,%.1f ", px(a, n), py(a, usl_speedup(u, n)));
    }
    fputs("\"/>\n", f);
}

static void series(FILE *f, const axes *a, const scale_result *res,
                   const char *colour)
{
    if (fitted(res)) {
        curve(f, a, &res->usl, 1, a->measured, colour, "");
        curve(f, a, &res->usl, a->measured, a->xmax, colour,
              " stroke-dasharray=\"5 4\"");
    }
    for (int k = 0; k < res->nrows; k++)
        if (isfinite(res->rows[k].speedup))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" "
                    "fill=\"%s\"/>\n", px(a, res->rows[k].workers),
                    py(a, res->rows[k].speedup), colour);
}

static void legend_entry(FILE *f, int i, const scale_result *res,
                         const char *colour)
{
    int x = LEFT + PLOT_W + 16, y = TOP + 10 + 36 * i;
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
            "stroke-width=\"2\"/><circle cx=\"%d\" cy=\"%d\" r=\"4\" "
            "fill=\"%s\"/>\n<text x=\"%d\" y=\"%d\">", x, y, x + 22, y,
            colour, x + 11, y, colour, x + 30, y + 4);
    /* a program is named by its command line, cut to the legend's width */
    text(f, strcmp(res->name, "command") == 0 ? res->label : res->name, 26);
    fprintf(f, "</text>\n<text x=\"%d\" y=\"%d\" font-size=\"11\" "
            "fill=\"#555\">", x + 30, y + 18);
    if (!fitted(res))
        fputs("no USL fit", f);
    else if (!res->usl.kappa_fitted)
        fprintf(f, "&#963; %.3g (&#954;: 3+ counts)", res->usl.sigma);
    else
        fprintf(f, "&#963; %.3g, &#954; %.3g", res->usl.sigma,
                res->usl.kappa);
    fputs("</text>\n", f);
}

static void legend(FILE *f, const scale_report *r)
{
    int x = LEFT + PLOT_W + 16, y = TOP + 10 + 36 * r->nresults;
    for (int i = 0; i < r->nresults; i++)
        legend_entry(f, i, &r->results[i], colours[i % 8]);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\""
            " stroke-dasharray=\"2 4\"/>\n<text x=\"%d\" y=\"%d\">ideal "
            "(S = N)</text>\n", x, y, x + 22, y, x + 30, y + 4);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#555\">"
            "dots measured, lines USL fit</text>\n", x, y + 24);
}

static void plot(FILE *f, const scale_report *r)
{
    axes a = make_axes(r);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "
            "xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
            "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"13\">\n<rect "
            "width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", SVG_W,
            SVG_H, SVG_W, SVG_H);
    fprintf(f, "<text x=\"%d\" y=\"26\" font-size=\"16\">weft-scale: "
            "speedup against workers (%d CPUs, median of %d)</text>\n",
            LEFT, r->cores, r->repeat);
    fprintf(f, "<clipPath id=\"plot\"><rect x=\"%d\" y=\"%d\" width=\"%d\" "
            "height=\"%d\"/></clipPath>\n", LEFT, TOP, PLOT_W, PLOT_H);
    grid(f, &a);
    fputs("<g clip-path=\"url(#plot)\">\n", f);
    guides(f, &a);
    for (int i = 0; i < r->nresults; i++)
        series(f, &a, &r->results[i], colours[i % 8]);
    fputs("</g>\n", f);
    legend(f, r);
    fputs("</svg>\n", f);
}

int scale_check_svg(const char *path)
{
    /* an existing file: opened without truncating it (a FIFO with no
     * reader yet, ENXIO, will do at the end); a new one: made and removed
     * again, so that an interrupted run leaves nothing behind */
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0)
            unlink(path);
    }
    if (fd >= 0 || errno == ENXIO) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    fprintf(stderr, "weft-scale: cannot write %s: %s\n", path,
            strerror(errno));
    return -1;
}

int scale_write_svg(const char *path, const scale_report *r)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "weft-scale: cannot write %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    plot(f, r);
    if (fclose(f) != 0) {
        fprintf(stderr, "weft-scale: writing %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    return 0;
}
