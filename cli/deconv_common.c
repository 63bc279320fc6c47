/* Shared option parsing and run of deconvolution commands (see
 * deconv_common.h). */
#include "config.h"
#include "cli/cli.h"
#include "cli/compute.h"
#include "cli/deconv_common.h"
#include "runtime/mpi.h"
#include "codelets/fft.h"
#include "codelets/gather.h"
#include "io/outdir.h"
#include "io/zarr.h"
#include "runtime/deconvolve.h"
#include "runtime/grid.h"
#include "runtime/runtime.h"
#include "tasks/plan.h"
#include "tasks/execute.h"
#include "util/progress.h"
#include "util/signals.h"
#include "util/util.h"

#include <starpu.h>
#include <math.h>
#include <stdlib.h>
#include <ctype.h>
#include <float.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

/* halo-sim's seconds are read back by halo bench --simulate: all of them. */
#ifdef HALO_SIMULATE
#define SECONDS_FMT "%.6f"
#else
#define SECONDS_FMT "%.2f"
#endif

enum {
	OPT_ITER = 1200, OPT_CHUNKS, OPT_DEPTH, OPT_BOUNDARY, OPT_DTYPE, OPT_MEMORY,
	OPT_OVERWRITE, OPT_QUIET, OPT_MODE, OPT_CHANNEL, OPT_TIME, OPT_PSF_CHANNEL, OPT_PSF_TIME,
};

static int parse_boundary(const char *s, int *b, double *v, halo_error_t *err)
{
	*v = 0;
	if (halo_boundary_parse(s, b) == 0)
		return HALO_OK;
	if (strncmp(s, "constant=", 9) == 0 && !isspace((unsigned char)s[9])) {
		char *end;
		*v = strtod(s + 9, &end);
		if (end != s + 9 && !*end && fabs(*v) <= FLT_MAX) {
			*b = HALO_BOUNDARY_CONSTANT;
			return HALO_OK;
		}
		/* NaN, Inf, or a value float32 RL would hold as Inf, would fill
		 * the result. */
		if (end != s + 9 && !*end)
			return halo_error_set(err, HALO_EINVAL, "--boundary: '%s': the constant must "
					      "be a finite float32 number (at most 3.4e38 in size)", s);
	}
	return halo_error_set(err, HALO_EINVAL,
			      "--boundary: unknown '%s' (periodic, reflect, nearest, constant[=V], none)", s);
}

int halo_deconv_cli_parse(int argc, char **argv, const char *cmd, const char *help, int nmin,
			  int nmax, struct halo_deconv_cli *o, int *status)
{
	static const struct option longopts[] = {
		HALO_CLI_RUNTIME_OPTIONS,
		{"iterations", required_argument, NULL, OPT_ITER},
		{"chunks", required_argument, NULL, OPT_CHUNKS},
		{"depth", required_argument, NULL, OPT_DEPTH},
		{"boundary", required_argument, NULL, OPT_BOUNDARY},
		{"dtype", required_argument, NULL, OPT_DTYPE},
		{"memory", required_argument, NULL, OPT_MEMORY},
		{"overwrite", no_argument, NULL, OPT_OVERWRITE},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"mode", required_argument, NULL, OPT_MODE},
		{"channel", required_argument, NULL, OPT_CHANNEL},
		{"time", required_argument, NULL, OPT_TIME},
		{"psf-channel", required_argument, NULL, OPT_PSF_CHANNEL},
		{"psf-time", required_argument, NULL, OPT_PSF_TIME},
		{"help", no_argument, NULL, HALO_OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof *o);
	o->mode = -1;
	o->select = (halo_select_t){.channel = -1, .time = -1};
	o->psf_select = (halo_select_t){.channel = -1, .time = -1, .prefix = "psf-"};
	o->iterations = 20;
	o->boundary = HALO_BOUNDARY_REFLECT;
	halo_runtime_opts_init(&o->rt);
	halo_error_t err = {0};
	int c, rc = HALO_OK, n;
	halo_cli_options_begin();
	while ((c = halo_cli_next_option(argc, argv, cmd, longopts, help, &o->rt, status)) != -1) {
		switch (c) {
		case HALO_CLI_DONE: return 1;
		case OPT_ITER:
			rc = halo__parse_int(optarg, 1, 100000, "--iterations", &o->iterations, &err);
			break;
		case OPT_CHUNKS:
			if (strcmp(optarg, "auto") == 0) {
				o->nchunks = -1;
				break;
			}
			rc = halo__parse_int_list(optarg, 1, 3, 1, "--chunks", o->chunks, &n, &err);
			o->nchunks = n;
			break;
		case OPT_DEPTH:
			rc = halo__parse_int_list(optarg, 1, 3, 0, "--depth", o->depth, &n, &err);
			o->ndepth = n;
			break;
		case OPT_BOUNDARY: rc = parse_boundary(optarg, &o->boundary, &o->constant, &err); break;
		case OPT_DTYPE: o->dtype = optarg; break;
		case OPT_MEMORY: rc = halo__parse_size(optarg, "--memory", &o->memory, &err); break;
		case OPT_OVERWRITE: o->overwrite = 1; break;
		case OPT_QUIET: o->quiet = 1; break;
		case OPT_CHANNEL:
		case OPT_TIME:
			rc = halo_cli_select_option(c == OPT_TIME, optarg, &o->select, &err);
			break;
		case OPT_PSF_CHANNEL:
		case OPT_PSF_TIME:
			rc = halo_cli_select_option(c == OPT_PSF_TIME, optarg, &o->psf_select, &err);
			break;
		case OPT_MODE:
			if (strcmp(optarg, "exact") == 0)
				o->mode = 1;
			else if (strcmp(optarg, "overlap") == 0)
				o->mode = 0;
			else
				rc = halo_error_set(&err, HALO_EINVAL,
						    "--mode: unknown '%s' (exact, overlap)", optarg);
			break;
		}
		if (rc)
			goto bad_value;
	}
	int nargs = argc - optind;
	if (nargs < nmin || nargs > nmax) {
		if (nargs > nmax && halo_cli_expanded_glob(cmd, argv + optind, nargs)) {
			*status = HALO_EXIT_USAGE;
			return 1;
		}
		halo_cli_usage_line("%s: takes %s%d argument%s, got %d; see 'halo %s --help'", cmd,
				    nmin < nmax ? "at most " : "", nmax, nmax == 1 ? "" : "s", nargs, cmd);
		*status = HALO_EXIT_USAGE;
		return 1;
	}
	if (halo_cli_empty_args(cmd, argv + optind, nargs)) {
		*status = HALO_EXIT_USAGE;
		return 1;
	}
	for (int i = 0; i < nargs; i++)
		o->args[i] = argv[optind + i];
	if (o->dtype) {
		halo_dtype_t dt;
		if (halo_dtype_parse_output(o->dtype, "--dtype", &dt, &err))
			goto bad_value;
	}
	o->rt.memory = o->memory;
	return 0;
bad_value:
	halo_cli_error(&err);
	*status = HALO_EXIT_FAIL;
	return 1;
}

/* Overlap mode is the graph `from -> [rechunk] -> map_overlap
 * richardson_lucy -> to_zarr/to_tiff`: what `halo run` builds from the
 * equivalent pipeline file (docs/pipeline.md). */
static int deconvolve_graph(const struct halo_deconv_cli *o, halo_reader_t *in, const float *psf,
			    const int pn[3], const char *outp, const halo_volume_info_t *info,
			    const halo_writer_opts_t *wo, const int depth[3], const int64_t stored[3],
			    halo_compute_stats_t *st, halo_error_t *err)
{
	halo_graph_t *g = halo_graph_new();
	halo_expr_t *x;
	if (!g) {
		halo_reader_close(in);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	int nd = info->ndim, rc = halo_from_reader(g, in, &x, err);
	const int64_t *chunks = info->chunks + (3 - nd);
	int same = 1;
	for (int d = 0; !rc && d < 3; d++)
		same &= x->grid[d].start[1] - x->grid[d].start[0] == info->chunks[d];
	if (!rc && !same)
		rc = halo_rechunk(g, x, chunks, &x, err);
	/* The seed's pipeline: astype(float32), then map_overlap, so a
	 * constant boundary pads the float image (the plan bypasses the cast:
	 * the haloed chunks are assembled in float32 anyway). */
	if (!rc && x->dtype != HALO_F4 && x->dtype != HALO_F8)
		rc = halo_astype(g, x, HALO_F4, &x, err);
	if (!rc) {
		halo_overlap_opts_t ov = {.kernel = HALO_OV_RICHARDSON_LUCY, .boundary = o->boundary,
					  .constant = o->constant, .iterations = (int)o->iterations,
					  .psf_data = psf};
		memcpy(ov.depth, depth, sizeof ov.depth);
		memcpy(ov.pn, pn, sizeof ov.pn);
		rc = halo_map_overlap(g, x, &ov, &x, err);
	}
	if (!rc)
		rc = halo_to_store(g, x, outp, wo->format == HALO_FMT_TIFF ? NULL : stored + (3 - nd),
				   (int)info->dtype.kind, wo, o->overwrite, &x, err);
	if (!rc) {
		halo_compute_opts_t co = {.memory = o->memory, .label = "deconvolve",
					  .quiet = o->quiet || halo__mpi_rank() != 0};
		rc = halo_cli_compute(g, &co, st, err);
	}
	halo_graph_free(g);
	return rc;
}

/* The exact mode on several MPI ranks: rank 0 creates the output, the
 * others join it; each rank writes the chunks it owns (a TIFF: rank 0
 * writes them all), and rank 0 commits once every rank has finished. */
static int exact_distributed(const struct halo_deconv_cli *o, halo_reader_t *r, const float *psf,
			     const int pn[3], const halo_deconv_opts_t *dopts, const char *outp,
			     const halo_volume_info_t *info, const halo_writer_opts_t *wo,
			     halo_stream_stats_t *stats, halo_error_t *err)
{
	int rank0 = halo__mpi_rank() == 0, tiff = wo->format == HALO_FMT_TIFF;
	halo_output_t *out = NULL;
	halo_writer_t *w = NULL;
	int rc = HALO_OK;
	if (rank0) {
		rc = halo_output_begin(outp, o->overwrite, &out, err);
		if (!rc)
			rc = halo_writer_create(halo_output_tmp_path(out), info, wo, &w, err);
	}
	rc = halo__mpi_agree(rc, err);
	if (!rc && !rank0) {
		rc = halo_output_join(outp, o->overwrite, !tiff, &out, err);
		halo_writer_opts_t attach = *wo;
		attach.attach = 1;
		if (!rc && !tiff)
			rc = halo_writer_create(halo_output_tmp_path(out), info, &attach, &w, err);
	}
	rc = halo__mpi_agree(rc, err);
	/* Errors name OUTPUT, not the temporary name it is written under;
	 * replaced on the rank that failed, before its message is shared. */
	char *tmp = out ? strdup(halo_output_tmp_path(out)) : NULL;
	if (!rc) {
		rc = halo_deconvolve_exact(r, w, info, psf, pn, dopts, stats, err);
		if (rc && tmp)
			halo_error_replace(err, tmp, outp);
		rc = halo__mpi_agree(rc, err);
	}
	if (!rc && !rank0)
		rc = halo_output_flush(out, err);
	rc = halo__mpi_agree(rc, err); /* every rank's chunks are written */
	if (!rc && rank0)
		rc = halo_writer_finish(w, err);
	halo_writer_close(w);
	if (!rc && rank0) {
		rc = halo_runtime_output_commit(out, err);
		out = NULL;
	} else if (!rc) {
		halo_output_release(out);
		out = NULL;
	}
	halo_output_abort(out);
	if (rc && tmp)
		halo_error_replace(err, tmp, outp);
	free(tmp);
	return halo__mpi_agree(rc, err);
}

/* Voxels of a chunk with pad[d] more on each side of axis d. */
static uint64_t padded_voxels(const int64_t chunks[3], const int pad[3])
{
	uint64_t v = 1;
	for (int d = 0; d < 3; d++)
		v *= (uint64_t)(chunks[d] + 2 * (int64_t)pad[d]);
	return v;
}

/* The first block along an axis cut in chunks and merged as map_overlap
 * merges chunks thinner than the halo (runtime/grid.h): all but the last
 * come out alike. 0 when that fails. */
static int64_t merged_block(int64_t n, int64_t chunk, int depth)
{
	struct halo_axis reg = {0}, merged = {0};
	int64_t len = halo_axis_regular(&reg, n, chunk) == 0 &&
		      halo_axis_min_blocks(&merged, &reg, depth) == 0 ? merged.start[1] : 0;
	halo_axis_free(&reg);
	halo_axis_free(&merged);
	return len;
}

/* A chunk with its halo of a size with a prime factor over 7 makes every
 * FFT of the run slower (1.7x per voxel at 152 = 8 x 19 against 150): says
 * so, with the next larger --depth that avoids it, for each chunked axis. */
static void warn_fft_sizes(const halo_volume_info_t *info, const int depth[3])
{
	static const char axis[3] = {'z', 'y', 'x'};
	for (int d = 3 - info->ndim; d < 3; d++) {
		if (info->chunks[d] >= info->shape[d] || depth[d] == 0)
			continue;
		/* Chunks thinner than the halo are merged first: no --depth
		 * to advise then, since it changes the merging too. */
		int merged = info->chunks[d] < depth[d];
		int64_t block = merged ? merged_block(info->shape[d], info->chunks[d], depth[d])
				       : info->chunks[d];
		int64_t n = block + 2 * (int64_t)depth[d];
		if (!block || n >= INT_MAX / 4 || halo_fft_good_size((int)n, 1) == n)
			continue;
		int64_t p = 2, r = n, big = 1;
		for (; p * p <= r; p++)
			for (; r % p == 0; r /= p)
				big = p;
		big = r > 1 ? r : big;
		int good = halo_fft_good_size((int)n, 2);
		fprintf(stderr, "halo: warning: a %s with its halo is %lld voxels along %c "
				"(prime factor %lld), which FFTs are slow on",
			merged ? "block of merged chunks" : "chunk", (long long)n, axis[d], (long long)big);
		if (good && !merged)
			fprintf(stderr, "; --depth %lld along %c makes it %d",
				(long long)((good - info->chunks[d]) / 2), axis[d], good);
		fputc('\n', stderr);
	}
}

/* A depth as --depth takes it: "4,8,8", or "8,8" for a 2D image. */
static const char *depth_text(const int depth[3], int ndim, char *out, size_t len)
{
	int64_t d[3] = {depth[0], depth[1], depth[2]};
	halo__dims(d, ndim, out, len);
	for (char *c = out; *c; c++)
		*c = *c == 'x' ? ',' : *c;
	return out;
}

/* Under mpirun every rank reads IN and the PSF itself: a stale copy on
 * one node crashed StarPU-MPI (another shape) or mixed its values into the
 * output (another type). What the ranks must share (the inputs, the
 * command line, the mode) is compared with rank 0's, and all fail together
 * where it differs. */
static int same_inputs(const halo_volume_info_t *ii, const float *psf, const int pn[3],
		       int exact, halo_error_t *err)
{
	uint32_t h = halo__mpi_volume_hash(ii, 0);
	h = starpu_hash_crc32c_be_n(pn, 3 * sizeof *pn, h);
	size_t psf_bytes = (size_t)pn[0] * (size_t)pn[1] * (size_t)pn[2] * sizeof *psf;
	h = starpu_hash_crc32c_be_n(psf, psf_bytes, h);
	int rc = !halo__mpi_differs(h)
		 ? HALO_OK
		 : halo_error_set(err, HALO_EINVAL, "its IN or PSF differs from rank 0's (shape, "
				  "type, chunks or PSF values): every rank must read the same files");
	rc = halo__mpi_agree(rc, err);
	if (!rc)
		rc = halo_cli_same_command(NULL, err);
	if (rc)
		return rc;
	/* Each rank chose the mode from its own memory (--memory's default,
	 * ulimit -v): ranks of two modes waited on each other forever. */
	rc = !halo__mpi_differs((uint32_t)exact)
	     ? HALO_OK
	     : halo_error_set(err, HALO_EINVAL, "from its memory it chose the %s mode, and rank 0 "
			      "the %s; give --mode to choose for all", exact ? "exact" : "overlap",
			      exact ? "overlap" : "exact");
	return halo__mpi_agree(rc, err);
}

/* --chunks and --depth take Y,X for a 2D image (one plane: no halo along
 * z) and Z,Y,X for a volume, or one value for every axis: o's become
 * Z,Y,X. */
static int expand_axes(struct halo_deconv_cli *o, int ndim, const char *in, halo_error_t *err)
{
	const char *names[2] = {"--chunks", "--depth"};
	int *counts[2] = {&o->nchunks, &o->ndepth};
	int64_t *vals[2] = {o->chunks, o->depth};
	for (int k = 0; k < 2; k++) {
		if (*counts[k] <= 0)
			continue;
		if (*counts[k] == 1) {
			vals[k][1] = vals[k][2] = vals[k][0];
			if (ndim != 3)
				vals[k][0] = k == 0 ? 1 : 0;
			*counts[k] = 3;
			continue;
		}
		if (*counts[k] != (ndim == 3 ? 3 : 2))
			return halo_error_set(err, HALO_EINVAL, "%s: %s is %dD; give %s", names[k], in,
					      ndim, ndim == 3 ? "Z,Y,X" : "Y,X");
		if (*counts[k] == 2) {
			vals[k][2] = vals[k][1];
			vals[k][1] = vals[k][0];
			vals[k][0] = k == 0 ? 1 : 0;
			*counts[k] = 3;
		}
	}
	return HALO_OK;
}

/* What made the output, for its attributes: the command, its inputs by
 * absolute paths (the record outlives the folder it ran in) and the
 * choices that decide the result. */
static json_t *provenance(const struct halo_deconv_cli *o, const char *in, int exact, int ndim,
			  const int depth[3])
{
	char *in_abs = halo_path_canonical(in), *psf_abs = o->args[1] ? halo_path_canonical(o->args[1])
								      : NULL;
	json_t *made = json_pack("{s:s, s:s, s:I, s:s, s:s}", "command", "deconvolve", "input",
				 in_abs ? in_abs : in, "iterations", (json_int_t)o->iterations,
				 "mode", exact ? "exact" : "overlap", "boundary",
				 halo_boundary_name(o->boundary));
	if (made && o->args[1])
		json_object_set_new(made, "psf", json_string(psf_abs ? psf_abs : o->args[1]));
	free(in_abs);
	free(psf_abs);
	if (made && o->boundary == HALO_BOUNDARY_CONSTANT)
		json_object_set_new(made, "constant", json_real(o->constant));
	if (made && o->select.channel >= 0)
		json_object_set_new(made, "channel", json_integer(o->select.channel));
	if (made && o->select.time >= 0)
		json_object_set_new(made, "time", json_integer(o->select.time));
	if (made && o->psf_select.channel >= 0)
		json_object_set_new(made, "psf_channel", json_integer(o->psf_select.channel));
	if (made && o->psf_select.time >= 0)
		json_object_set_new(made, "psf_time", json_integer(o->psf_select.time));
	if (made && !exact) {
		json_t *d = json_array();
		for (int k = 3 - ndim; k < 3; k++)
			json_array_append_new(d, json_integer(depth[k]));
		json_object_set_new(made, "depth", d);
	}
	return made;
}

/* What StarPU may hold whatever --memory says, or it could never
 * allocate the tasks running at once: about 32 bytes per haloed voxel for
 * each worker's, exact mode's working set (resident) or overlap mode's PSF
 * spectra, and the input layers that neighbouring chunks share. */
static uint64_t memory_floor(const halo_volume_info_t *info, const halo_volume_info_t *ii,
			     const int pn[3], const int depth[3], int boundary, long workers,
			     int exact, uint64_t resident)
{
	int wide[3];
	for (int d = 0; d < 3; d++)
		wide[d] = depth[d] > pn[d] ? depth[d] : pn[d];
	uint64_t bytes = 32 * padded_voxels(info->chunks, wide) * (uint64_t)workers +
			 (exact ? resident : 0);
	/* Overlap mode's RL keeps a PSF spectrum per haloed shape all run
	 * long (up to 27 with boundary none): 121 MB beyond the rest for
	 * 64x512x512 in 3x3x3 chunks, where a limit of 150 MB hung. */
	struct halo_axis ax[3] = {{0}};
	int axes_ok = 1;
	for (int d = 0; d < 3; d++)
		axes_ok &= halo_axis_regular(&ax[d], info->shape[d], info->chunks[d]) == 0;
	if (!exact && axes_ok)
		bytes += halo_spectra_bytes(ax, depth, boundary);
	for (int d = 0; d < 3; d++)
		halo_axis_free(&ax[d]);
	/* The layers along z one haloed chunk spans, and the next, and with
	 * a periodic boundary the first and last, which the far end reads
	 * (the executor refuses to start under less, halo_plan_memory). */
	int64_t span = info->chunks[0] + 2 * (int64_t)depth[0];
	int64_t inz = ii->chunks[0] > 0 ? ii->chunks[0] : 1;
	int64_t layers = (span + inz - 1) / inz + 1 + (boundary == HALO_BOUNDARY_PERIODIC ? 2 : 0);
	return bytes + (uint64_t)(layers * inz * ii->shape[1] * ii->shape[2]) *
			       halo_dtype_size(ii->dtype);
}

int halo_deconv_cli_run(const struct halo_deconv_cli *o, const char *in, const float *psf,
			const int pn[3], const char *outp, struct halo_deconv_result *res,
			halo_error_t *err)
{
	halo_reader_t *r = NULL;
	halo_writer_t *w = NULL;
	halo_output_t *out = NULL;
	halo_runtime_t *rt = NULL;
	halo_stream_stats_t stats = {0};
	json_t *made = NULL; /* what made the output, for its attributes */
	json_t *omero = NULL; /* the input's channel's name and colour */
	int status = HALO_EXIT_FAIL;
	if (halo_reader_open_at(in, &o->select, &r, err))
		goto fail;
	const halo_volume_info_t *ii = halo_reader_info(r);
	struct halo_deconv_cli o2 = *o;
	if (expand_axes(&o2, ii->ndim, in, err))
		goto fail;
	o = &o2;
	halo_volume_info_t info = *ii;
	info.dtype = (halo_dtype_t){HALO_F4, 0};
	if (o->dtype)
		halo_dtype_parse(o->dtype, "--dtype", &info.dtype, NULL);
	info.dtype.big_endian = 0;
	info.fill = (halo_fill_t){0, 0};
	if (halo_reader_format(r) == HALO_FMT_TIFF) {
		static const int64_t dflt[3] = {64, 256, 256};
		for (int d = 0; d < 3; d++)
			info.chunks[d] = dflt[d] < ii->shape[d] ? dflt[d] : ii->shape[d];
	}
	if (o->nchunks > 0) {
		/* As written: no longer than the volume (the working set was
		 * reckoned for 1024^3 of a 32x96x96 image). */
		memcpy(info.chunks, o->chunks, sizeof info.chunks);
		for (int d = 0; d < 3; d++)
			info.chunks[d] = info.chunks[d] < info.shape[d] ? info.chunks[d] : info.shape[d];
	}
	int auto_over = 0;
	if (o->nchunks < 0) {
		halo_deconv_machine_t m = {.memory = o->memory ? o->memory : halo_memory_default()};
		/* No more than the machine has, whatever --memory says. */
		uint64_t ram = halo_machine_memory();
		m.memory = ram && m.memory > ram ? ram : m.memory;
		m.ngpu = halo_runtime_gpu_memory(&o->rt, &m.gpu_bytes, &m.gpu_gbs);
		/* --ncpu 0 with a GPU: the CPU workers only read and write. */
		int ncpu = halo_runtime_worker_count(o->rt.ncpu, "STARPU_NCPU");
		m.ncpu = ncpu > 0 ? ncpu : ncpu == 0 && m.ngpu ? 0 : (int)halo_machine_cores();
		int depth[3];
		for (int d = 0; d < 3; d++)
			depth[d] = o->ndepth ? (int)o->depth[d] : pn[d];
		auto_over = halo_deconv_chunks_auto(info.shape, depth, &m, info.chunks);
		if (o->ndepth)
			halo_deconv_chunks_fit_depth(info.chunks, info.shape, depth);
	}
	halo_writer_opts_t wo = {.format = halo_format_from_path(outp),
				 .ome_tiff = halo_path_ome_tiff(outp),
				 .codec = HALO_CODEC_DEFAULT};
	halo_deconv_opts_t dopts = {
		.iterations = (int)o->iterations, .boundary = o->boundary, .constant = o->constant,
		.stream = {.memory = o->memory, .quiet = o->quiet, .label = "deconvolve"},
	};
	if (o->ndepth) {
		for (int d = 0; d < 3; d++)
			dopts.depth[d] = (int)o->depth[d];
	} else {
		/* From the chunks as they are: --chunks longer than an axis
		 * makes one chunk of the axis's length, which the depth must
		 * round to a good FFT size. */
		int64_t real[3];
		for (int d = 0; d < 3; d++)
			real[d] = info.chunks[d] < info.shape[d] ? info.chunks[d] : info.shape[d];
		halo_deconv_default_depth(real, pn, dopts.depth);
	}
	if (ii->ndim < 3)
		dopts.depth[0] = 0;
	int exact = o->mode == 1;
	const char *why = NULL;
	long workers = o->rt.ncpu > 0 ? o->rt.ncpu : halo_machine_cores();
	workers = workers > 0 ? workers : 1;
	/* Exact mode keeps image, estimate and ratio resident (three float32
	 * volumes) and a PSF spectrum per haloed shape, and the halo
	 * exchanges run ahead of the RL halves: up to a haloed block per
	 * chunk (FFTW's arrays are outside StarPU's limit). Under less StarPU
	 * waits forever for memory: 64x256x256 in 16x64x64 chunks, whose
	 * three volumes are 48 MiB, hung at a limit of 67 MiB, not at 68.
	 * Its chunks span whole planes when the output is a TIFF (see below).
	 * A StarPU limit set by hand binds unless --memory replaces it
	 * (halo_runtime_init), or StarPU may swap to disk (STARPU_DISK_SWAP). */
	uint64_t vox = (uint64_t)(info.shape[0] * info.shape[1] * info.shape[2]);
	int64_t exc[3] = {info.chunks[0], info.chunks[1], info.chunks[2]};
	if (wo.format == HALO_FMT_TIFF) {
		exc[1] = ii->shape[1];
		exc[2] = ii->shape[2];
	}
	uint64_t hv = padded_voxels(exc, pn), shapes = 1, nchunks = 1;
	for (int d = 0; d < 3; d++) {
		shapes *= exc[d] < info.shape[d] && info.shape[d] % exc[d] ? 2 : 1;
		nchunks *= (uint64_t)((info.shape[d] + exc[d] - 1) / exc[d]);
	}
	/* Under mpirun each rank holds its own blocks: --memory is per rank.
	 * StarPU's bookkeeping counts too, per chunk: a handle is about 16
	 * KiB (a replicate for each of 32 memory nodes), each chunk has
	 * three, and each queued half a haloed block's and two tasks, up to
	 * about three iterations ahead. Measured, 64x128x128 with a 9x7x7 PSF
	 * in 4x8x8 chunks: 441 MB of RSS at 1 iteration, 838 MB from 4 on,
	 * where the three volumes are 13 MB (2x4x4: 3.4 GB, OOM-killed
	 * without --memory when this was not counted). */
	uint64_t nr = (uint64_t)halo__runtime_launched_ranks(), mine = (nchunks + nr - 1) / nr;
	uint64_t ahead = o->iterations < 3 ? (uint64_t)o->iterations : 3;
	uint64_t resident = (12 * vox + nr - 1) / nr + 4 * hv * (mine + shapes) +
			    mine * (ahead + 1) * (48u << 10);
	const char *swap = getenv("STARPU_DISK_SWAP");
	const char *limit_env = o->memory || (swap && *swap) ? NULL : getenv("STARPU_LIMIT_CPU_MEM");
	uint64_t limit = limit_env && *limit_env ? strtoull(limit_env, NULL, 10) << 20 : 0;
	int over_limit = limit && resident > limit;
	char held[32], bound[32];
	halo__bytes(resident, held, sizeof held);
	if (exact && over_limit) {
		halo_error_set(err, HALO_ENOMEM,
			       "%s: --mode exact holds about %s at once, more than "
			       "STARPU_LIMIT_CPU_MEM=%s (MiB); raise it, or use --mode overlap", in, held,
			       limit_env);
		goto fail;
	}
	/* Nor over --memory or the default budget, which it would exceed
	 * (StarPU cannot evict what the run holds resident) unless StarPU may
	 * swap to disk: a 1 GiB volume held 8.5 GiB under --memory 1G, a 4
	 * GiB one met the kernel's OOM killer. */
	uint64_t budget = o->memory ? o->memory : halo_memory_default();
	if (exact && !limit && resident > budget && !(swap && *swap)) {
		halo_error_set(err, HALO_ENOMEM,
			       "%s: --mode exact holds about %s at once, more than %s (%s); %s, set "
			       "STARPU_DISK_SWAP, or use --mode overlap", in, held,
			       o->memory ? "--memory"
					 : "the default memory budget, a quarter of the memory it may use",
			       halo__bytes(budget, bound, sizeof bound),
			       o->memory ? "raise it" : "give a larger --memory");
		goto fail;
	}
	if (o->mode < 0) {
		/* An explicit --depth asks for overlap mode. */
		exact = !o->ndepth && o->boundary != HALO_BOUNDARY_NONE && resident <= budget &&
			!over_limit;
		why = o->ndepth ? "--depth given"
		      : o->boundary == HALO_BOUNDARY_NONE ? "boundary none has no exact mode"
		      : over_limit ? "the working set exceeds STARPU_LIMIT_CPU_MEM"
		      : exact ? "the working set fits the memory budget"
			      : "the working set exceeds the memory budget";
	}
	/* A TIFF is written page by page: the exact mode's chunks, which
	 * are the output's, span whole planes. Overlap mode keeps its chunks,
	 * which decide its result; its graph writes TIFF pages itself. */
	if (exact && wo.format == HALO_FMT_TIFF) {
		info.chunks[1] = ii->shape[1];
		info.chunks[2] = ii->shape[2];
	}
	/* Chunks over blosc's 2 GiB are stored in pieces: a GPU runs fewer,
	 * larger chunks faster (less halo). Exact mode's result does not
	 * depend on its chunks, which are the output's. */
	int64_t stored[3];
	for (int d = 0; d < 3; d++)
		stored[d] = info.chunks[d] < info.shape[d] ? info.chunks[d] : info.shape[d];
	int pieces = wo.format != HALO_FMT_TIFF &&
		     halo_zarr_chunks_fit(stored, halo_dtype_size(info.dtype));
	if (exact)
		memcpy(info.chunks, stored, sizeof stored);
	if (exact && o->ndepth) {
		halo_error_set(err, HALO_EINVAL, "--depth applies to overlap mode, not --mode exact");
		goto fail;
	}
	/* Overlap mode's halos: exact mode reads its neighbours whole and
	 * takes any PSF. */
	if (!exact) {
		for (int d = 0; d < 3; d++) {
			/* map_overlap takes no halo deeper than the volume: the
			 * default stops there, a given depth is refused. */
			if (!o->ndepth && dopts.depth[d] > info.shape[d])
				dopts.depth[d] = (int)info.shape[d];
			if (dopts.depth[d] > info.shape[d]) {
				halo_error_set(err, HALO_EINVAL, "%s: a depth of %d on axis %d is "
					       "deeper than the volume (%lld); give a smaller --depth, "
					       "or --mode exact", in, dopts.depth[d],
					       d - (3 - ii->ndim), (long long)info.shape[d]);
				goto fail;
			}
		}
		int64_t minh[3];
		if (halo_deconv_min_haloed(&info, &dopts, minh, err))
			goto fail;
		for (int d = 0; d < 3; d++)
			if (pn[d] > minh[d]) {
				/* A 3D PSF on one plane: no chunks or depth help. */
				int plane = d == 0 && ii->ndim == 2;
				halo_error_set(err, HALO_EINVAL, "%s: the PSF (%dx%dx%d) is larger than "
					       "the smallest haloed chunk (%lldx%lldx%lld); use %s",
					       o->args[1] ? o->args[1] : "PSF", pn[0], pn[1], pn[2],
					       (long long)minh[0], (long long)minh[1], (long long)minh[2],
					       plane ? "--mode exact, which takes a 3D PSF on a 2D image"
						     : "larger --chunks or --depth, or --mode exact");
				goto fail;
			}
	}
	made = provenance(o, in, exact, ii->ndim, dopts.depth);
	wo.provenance = made;
	/* Its contrast windows are the input's values, not the result's. */
	if (halo_reader_omero(r) && (omero = json_deep_copy(halo_reader_omero(r)))) {
		json_object_del(json_array_get(json_object_get(omero, "channels"), 0), "window");
		wo.omero = omero;
	}
	/* Seams appear only between chunks: an axis in one chunk has none. */
	int thin = 0;
	for (int d = 0; d < 3; d++)
		thin |= dopts.depth[d] < pn[d] / 2 && info.chunks[d] < info.shape[d];
	o2.rt.memory_floor = memory_floor(&info, ii, pn, dopts.depth, o->boundary, workers, exact,
					  resident);
	/* Checked before StarPU starts, so that a refusal is immediate. A
	 * signal from here on is only recorded, so that the run removes its
	 * lock and temporary output; StarPU's start installs its own
	 * handlers, which halo's replace again. */
	halo_signals_install();
	if (halo_path_check_output(outp, err) || halo_output_check(outp, o->overwrite, err))
		goto fail;
	if (halo_runtime_init(&o->rt, &rt, err))
		goto fail;
	halo_signals_install();
	int ranks = halo_runtime_ranks(rt), speaker = halo_runtime_rank(rt) == 0;
	dopts.stream.quiet |= !speaker;
	/* The lock once the ranks have met: under mpirun a rank that failed
	 * on its own before (a file only its node lacks) made mpirun kill
	 * rank 0 holding it. There rank 0 names and creates the output for
	 * every rank, later. */
	if (ranks == 1 && halo_output_begin(outp, o->overwrite, &out, err))
		goto fail;
	if (ranks > 1 && same_inputs(ii, psf, pn, exact, err))
		goto fail;
	if (exact)
		memset(dopts.depth, 0, sizeof dopts.depth);
	/* Warnings once the run is sure to start: an error stays one line. */
	if (!exact && thin && speaker) {
		int64_t pp[3] = {pn[0], pn[1], pn[2]};
		char dtext[72], ptext[72];
		fprintf(stderr, "halo: warning: --depth %s is less than half the PSF (%s): seams "
				"between chunks will show\n",
			depth_text(dopts.depth, info.ndim, dtext, sizeof dtext),
			halo__dims(pp, info.ndim, ptext, sizeof ptext));
	}
	if (!exact && o->ndepth && speaker)
		warn_fft_sizes(&info, dopts.depth);
	/* Padding below zero makes the blurred estimate cross RL's floor:
	 * the ratio then reaches 1e9 and float32 rounding carries it inside. */
	if (o->boundary == HALO_BOUNDARY_CONSTANT && o->constant < 0 && speaker)
		fprintf(stderr, "halo: warning: --boundary constant=%g is negative: Richardson-Lucy "
				"assumes non-negative data and diverges on negative values\n", o->constant);
	if (!o->quiet && speaker)
		halo_cli_note_voxel(in, ii, wo.format, "an OUT ending in .ome.zarr, or a TIFF");
	if (pieces && !o->quiet && speaker)
		fprintf(stderr, "halo: note: %s is stored in chunks of %lldx%lldx%lld (blosc takes "
				"at most 2 GiB a chunk)\n", outp, (long long)stored[0],
			(long long)stored[1], (long long)stored[2]);
	if (auto_over && !o->quiet && speaker)
		fprintf(stderr, "halo: warning: --chunks auto: even its smallest chunks "
			"(%lldx%lldx%lld) need more memory per task than the budget leaves each "
			"worker\n",
			(long long)info.chunks[0], (long long)info.chunks[1], (long long)info.chunks[2]);
	double t0 = halo_now();
	if (!exact) {
		halo_output_abort(out);
		out = NULL;
		halo_reader_t *src = r;
		r = NULL; /* the graph owns it */
		halo_compute_stats_t st;
		if (deconvolve_graph(o, src, psf, pn, outp, &info, &wo, dopts.depth, stored, &st,
				     err))
			goto fail;
	} else if (ranks == 1) {
		if (halo_writer_create(halo_output_tmp_path(out), &info, &wo, &w, err))
			goto fail;
		if (halo_deconvolve_exact(r, w, &info, psf, pn, &dopts, &stats, err))
			goto fail;
		if (halo_writer_finish(w, err))
			goto fail;
		halo_writer_close(w);
		w = NULL;
		int rc = halo_runtime_output_commit(out, err);
		out = NULL;
		if (rc)
			goto fail;
	} else if (exact_distributed(o, r, psf, pn, &dopts, outp, &info, &wo, &stats, err)) {
		goto fail;
	}
	double secs = halo_now() - t0;
	double mvox = (double)(info.shape[0] * info.shape[1] * info.shape[2]) * 1e-6;
	/* With the GPUs alone, the CPU workers only read and write. */
	int ncpu = halo_runtime_gpus_alone() ? 0 : (int)starpu_cpu_worker_get_count();
	int ncuda = (int)starpu_cuda_worker_get_count();
	if (ranks > 1) { /* every rank's workers */
		double n[2] = {ncpu, ncuda};
		halo__mpi_sum(n, 2);
		ncpu = (int)n[0];
		ncuda = (int)n[1];
	}
	if (res) {
		*res = (struct halo_deconv_result){.seconds = secs, .ncpu = ncpu, .ncuda = ncuda,
			.exact = exact,
			.mvox_iter_per_s = mvox * (double)o->iterations / secs};
		for (int d = 0; d < 3; d++) {
			res->shape[d] = info.shape[d];
			res->chunks[d] = info.chunks[d];
			res->depth[d] = dopts.depth[d];
		}
	}
	if (!o->quiet && speaker) {
		char mode[160], across[32] = "", depth[72];
		if (ranks > 1)
			snprintf(across, sizeof across, " over %d ranks", ranks);
		depth_text(dopts.depth, info.ndim, depth, sizeof depth);
		/* Why, where halo chose: in the summary, so that an input
		 * refused during the run gets its one line alone. */
		snprintf(mode, sizeof mode, "%s%s%s%s%s", exact ? "exact" : "overlap depth ",
			 exact ? "" : depth, why ? " (" : "", why ? why : "", why ? ")" : "");
		char shape[72], chunks[72], shown[2][PATH_MAX], bnd[48];
		if (o->boundary == HALO_BOUNDARY_CONSTANT)
			snprintf(bnd, sizeof bnd, "constant=%g", o->constant);
		else
			snprintf(bnd, sizeof bnd, "%s", halo_boundary_name(o->boundary));
		printf("deconvolve: %s -> %s: %s, chunks %s, %s, boundary %s, %ld iteration%s on %d "
		       "CPU + %d CUDA workers%s: " SECONDS_FMT " s, %.1f Mvox*iter/s\n",
		       halo__shown(in, shown[0], sizeof shown[0]),
		       halo__shown(outp, shown[1], sizeof shown[1]),
		       halo__dims(info.shape, info.ndim, shape, sizeof shape),
		       halo__dims(info.chunks, info.ndim, chunks, sizeof chunks), mode,
		       bnd, o->iterations, o->iterations == 1 ? "" : "s", ncpu, ncuda, across, secs,
		       mvox * (double)o->iterations / secs);
	}
	status = HALO_EXIT_OK;
	goto done;
fail:
	if (out) /* errors name OUTPUT, not its temporary name */
		halo_error_replace(err, halo_output_tmp_path(out), outp);
	if (halo_runtime_rank(rt) == 0) /* under mpirun the ranks agree: one says it */
		halo_cli_error(err);
done:
	halo_writer_close(w);
	json_decref(made);
	json_decref(omero);
	halo_output_abort(out);
	status = halo_cli_finish(rt, status, err);
	halo_reader_close(r);
	return status;
}
