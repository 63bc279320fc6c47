/* Options and the run of a deconvolution, shared by `halo deconvolve` and
 * `halo demo` so both behave the same. */
#ifndef HALO_CLI_DECONV_COMMON_H
#define HALO_CLI_DECONV_COMMON_H

#include <stdint.h>

#include "halo.h"
#include "io/volume.h"

struct halo_deconv_cli {
	const char *args[3];
	long iterations;
	int64_t chunks[3];
	int nchunks;
	int64_t depth[3];
	int ndepth;
	int boundary;
	double constant;
	const char *dtype;
	uint64_t memory;
	int overwrite, quiet;
	int mode;       /* -1 auto (exact when it fits, else overlap), 0 overlap, 1 exact */
	halo_select_t select; /* IN's channel and time point */
	halo_select_t psf_select; /* PSF's */
	halo_runtime_opts_t rt;
};

struct halo_deconv_result {
	double seconds;
	double mvox_iter_per_s;
	int64_t shape[3], chunks[3], depth[3];
	int ncpu, ncuda;
	int exact;
};

/* Parses argv with nmin..nmax positional arguments (missing ones are
 * NULL). Returns 1 when the caller should return *status (help printed or a
 * usage error reported). */
int halo_deconv_cli_parse(int argc, char **argv, const char *cmd, const char *help, int nmin,
			  int nmax, struct halo_deconv_cli *o, int *status);

/* Deconvolves in with psf (normalised, shape pn) into out; prints the
 * summary unless quiet; fills res when not NULL. Returns an exit status and
 * reports errors itself. */
int halo_deconv_cli_run(const struct halo_deconv_cli *o, const char *in, const float *psf,
			const int pn[3], const char *out, struct halo_deconv_result *res,
			halo_error_t *err);

#endif
