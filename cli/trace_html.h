/* `halo trace html`: a trace as one self-contained HTML report. */
#ifndef HALO_CLI_TRACE_HTML_H
#define HALO_CLI_TRACE_HTML_H

#include "cli/trace_stats.h"

/* Writes the report of tr (read from source; critical is what
 * `critical-path --json` gives, with "length") to out, atomically, or
 * to standard output when out is NULL. */
int trace_html_write(const struct trace *tr, const char *source, json_t *critical,
		     const char *out, halo_error_t *err);

#endif
