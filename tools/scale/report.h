/* weft-scale's three outputs of one report: the aligned table (the
 * default), JSON of everything, and an SVG plot of speedup against
 * workers with the ideal line and the fitted USL curves. */
#ifndef WEFT_SCALE_REPORT_H
#define WEFT_SCALE_REPORT_H

#include <stdio.h>

#include "result.h"

void scale_print_table(FILE *f, const scale_report *r);

void scale_print_json(FILE *f, const scale_report *r);

/* Whether path can be written, checked before the measuring so that a
 * mistyped --svg fails at once, not after minutes of it; leaves no file
 * behind. Returns 0, or -1 after saying why on stderr. */
int scale_check_svg(const char *path);

/* Write the plot to path. Returns 0, or -1 after saying why on stderr. */
int scale_write_svg(const char *path, const scale_report *r);

#endif
