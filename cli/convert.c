/* `halo convert IN OUT`: TIFF, Zarr and OME-Zarr to each other, with
 * rechunking, type conversion and an optional OME pyramid, as StarPU chunk
 * tasks over every CPU worker. The output appears only when complete. */
#include "config.h"
#include "cli/cli.h"
#include "cli/compute.h"
#include "io/outdir.h"
#include "runtime/runtime.h"
#include "io/volume.h"
#include "tasks/execute.h"
#include "util/signals.h"
#include "util/util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char convert_help[] =
	"usage: halo convert IN OUT [options]\n\n"
	"Converts between TIFF (.tif, .tiff), Zarr v2/v3 and OME-Zarr (.ome.zarr). IN\n"
	"may also be a folder or quoted pattern of TIFF planes ('scan/z_*.tif'). IN is\n"
	"never modified; OUT is written under a temporary name and renamed into place\n"
	"when complete. Conversion to an integer type rounds to nearest (ties to even)\n"
	"and saturates at the type's range; NaN becomes 0.\n\n"
	"  --chunks Z,Y,X        output chunk shape (default: the input's; TIFF input\n"
	"                        to Zarr: 64,256,256; TIFF output: 16 pages a chunk)\n"
	"  --dtype T             uint8, uint16, uint32, uint64, int8, int16, int32, int64,\n"
	"                        float16, float32, float64, bool\n"
	"  --compressor NAME     none, lz4, lz4hc, blosclz, zstd, zlib (these in blosc),\n"
	"                        gzip, lzma, bz2 (default: the input's, numcodecs' zlib,\n"
	"                        zstd and lz4 included, else blosc lz4)\n"
	"  --clevel N            compression level 0-9 (default: the input's, else 5)\n"
	"  --shuffle MODE        blosc: none, byte, bit (default: the input's, else byte)\n"
	"  --ome                 write OME-Zarr (also when OUT ends in .ome.zarr)\n"
	"  --pyramid N           OME-Zarr: add N levels, each 2x smaller in y and x (mean)\n"
	"  --zarr-format 2|3     Zarr v2 (OME-Zarr 0.4) or v3 (OME-Zarr 0.5) (default: the\n"
	"                        input's, else 2)\n"
	"  --shards Z,Y,X        Zarr v3: store the chunks in shards of this shape, one\n"
	"                        file each (multiples of the chunks; implies v3; default:\n"
	"                        a v3 input's, where the chunks divide them)\n"
	HALO_CLI_SELECT_HELP
	"  --memory SIZE         bound on chunks in flight, e.g. 2G (default: RAM/4)\n"
	"  --overwrite           replace an existing OUT\n"
	"  --quiet               no progress line or summary\n" HALO_CLI_RUNTIME_HELP;

enum {
	OPT_CHUNKS = 1100, OPT_DTYPE, OPT_COMPRESSOR, OPT_CLEVEL, OPT_SHUFFLE, OPT_OME,
	OPT_PYRAMID, OPT_MEMORY, OPT_OVERWRITE, OPT_QUIET, OPT_CHANNEL, OPT_TIME,
	OPT_ZARR_FORMAT, OPT_SHARDS,
};

struct convert_opts {
	const char *in, *out;
	int64_t chunks[3], shards[3];
	int nchunks, nshards;
	long zarr_format;
	const char *dtype, *compressor, *shuffle;
	long clevel, pyramid;
	int ome, overwrite, quiet;
	uint64_t memory;
	halo_select_t select;
	halo_runtime_opts_t rt;
};

static int parse(int argc, char **argv, struct convert_opts *o, int *status)
{
	static const struct option longopts[] = {
		HALO_CLI_RUNTIME_OPTIONS,
		{"chunks", required_argument, NULL, OPT_CHUNKS},
		{"dtype", required_argument, NULL, OPT_DTYPE},
		{"compressor", required_argument, NULL, OPT_COMPRESSOR},
		{"clevel", required_argument, NULL, OPT_CLEVEL},
		{"shuffle", required_argument, NULL, OPT_SHUFFLE},
		{"ome", no_argument, NULL, OPT_OME},
		{"pyramid", required_argument, NULL, OPT_PYRAMID},
		{"memory", required_argument, NULL, OPT_MEMORY},
		{"overwrite", no_argument, NULL, OPT_OVERWRITE},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"channel", required_argument, NULL, OPT_CHANNEL},
		{"time", required_argument, NULL, OPT_TIME},
		{"zarr-format", required_argument, NULL, OPT_ZARR_FORMAT},
		{"shards", required_argument, NULL, OPT_SHARDS},
		{"help", no_argument, NULL, HALO_OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	halo_error_t err = {0};
	int c, rc = HALO_OK;
	o->clevel = -1;
	o->select = (halo_select_t){.channel = -1, .time = -1};
	halo_runtime_opts_init(&o->rt);
	halo_cli_options_begin();
	while ((c = halo_cli_next_option(argc, argv, "convert", longopts, convert_help, &o->rt,
					 status)) != -1) {
		switch (c) {
		case HALO_CLI_DONE: return 1;
		case OPT_CHUNKS:
			rc = halo__parse_int_list(optarg, 2, 3, 1, "--chunks", o->chunks, &o->nchunks, &err);
			break;
		case OPT_SHARDS:
			rc = halo__parse_int_list(optarg, 2, 3, 1, "--shards", o->shards, &o->nshards, &err);
			break;
		case OPT_ZARR_FORMAT:
			rc = halo__parse_int(optarg, 2, 3, "--zarr-format", &o->zarr_format, &err);
			break;
		case OPT_DTYPE: o->dtype = optarg; break;
		case OPT_COMPRESSOR: o->compressor = optarg; break;
		case OPT_SHUFFLE: o->shuffle = optarg; break;
		case OPT_CLEVEL: rc = halo__parse_int(optarg, 0, 9, "--clevel", &o->clevel, &err); break;
		case OPT_PYRAMID: rc = halo__parse_int(optarg, 0, 10, "--pyramid", &o->pyramid, &err); break;
		case OPT_MEMORY: rc = halo__parse_size(optarg, "--memory", &o->memory, &err); break;
		case OPT_OME: o->ome = 1; break;
		case OPT_OVERWRITE: o->overwrite = 1; break;
		case OPT_QUIET: o->quiet = 1; break;
		case OPT_CHANNEL:
		case OPT_TIME:
			rc = halo_cli_select_option(c == OPT_TIME, optarg, &o->select, &err);
			break;
		}
		if (rc)
			goto bad_value;
	}
	if (argc - optind != 2) {
		if (argc - optind > 2 && halo_cli_expanded_glob("convert", argv + optind, argc - optind)) {
			*status = HALO_EXIT_USAGE;
			return 1;
		}
		halo_cli_usage_line("convert: takes 2 arguments (IN and OUT), got %d; see 'halo "
				    "convert --help'", argc - optind);
		*status = HALO_EXIT_USAGE;
		return 1;
	}
	if (halo_cli_empty_args("convert", argv + optind, 2)) {
		*status = HALO_EXIT_USAGE;
		return 1;
	}
	o->in = argv[optind];
	o->out = argv[optind + 1];
	return 0;
bad_value:
	halo_cli_error(&err);
	*status = HALO_EXIT_FAIL;
	return 1;
}

/* Zarr v3 and its shards: the chunks planned so far are the shards'
 * chunks, and the volume's chunks (the store's, what a task writes)
 * become the shards, shrunk to the array rounded up to whole chunks. */
static int plan_v3(const struct convert_opts *o, const halo_reader_t *r,
		   halo_volume_info_t *info, halo_writer_opts_t *wo, halo_error_t *err)
{
	const halo_volume_info_t *ii = halo_reader_info(r);
	halo_stored_t st;
	halo_reader_stored(r, &st);
	/* Unless told otherwise, a Zarr output keeps a Zarr input's format
	 * (and a v3 input's shards, --zarr-format 3 or not) */
	int keep = (!o->zarr_format || o->zarr_format == 3) && !o->nshards &&
		   st.zarr_format == 3 && wo->format != HALO_FMT_TIFF;
	wo->zarr_format = o->zarr_format ? (int)o->zarr_format : o->nshards || keep ? 3 : 2;
	if ((o->zarr_format || o->nshards) && wo->format == HALO_FMT_TIFF)
		return halo_error_set(err, HALO_EINVAL, "%s: --zarr-format and --shards apply to "
				      "Zarr", o->out);
	if (o->nshards && wo->zarr_format != 3)
		return halo_error_set(err, HALO_EINVAL, "--shards: Zarr v2 has no shards; they need "
				      "--zarr-format 3");
	/* an input's compressor that v3 lacks: halo's default instead */
	if (wo->zarr_format == 3 && !halo_zarr_v3_codec_ok(&wo->codec) && !o->compressor) {
		wo->codec = HALO_CODEC_DEFAULT;
		wo->codec.clevel = o->clevel >= 0 ? (int)o->clevel : wo->codec.clevel;
	}
	if (wo->zarr_format == 3 && !halo_zarr_v3_codec_ok(&wo->codec))
		return halo_error_set(err, HALO_EINVAL, "%s: Zarr v3 has no %s codec; --compressor "
				      "picks another (blosc's, gzip, zstd or none)", o->out,
				      halo_codec_id_name(wo->codec.id));
	if (keep && st.shards[2]) {
		/* and its shards, where the output's chunks still divide them */
		int64_t want[3], inner[3], shards[3];
		for (int d = 0; d < 3; d++)
			want[d] = st.shards[d] ? st.shards[d] : 1;
		double bytes = (double)halo_dtype_size(info->dtype);
		for (int d = 0; d < 3; d++)
			bytes *= (double)want[d];
		if (halo_volume_shards(ii->shape, info->chunks, want, inner, shards) < 0 &&
		    bytes <= (double)HALO_ZARR_MAX_CHUNK_BYTES) {
			memcpy(wo->inner, inner, sizeof inner);
			memcpy(info->chunks, shards, sizeof shards);
		}
	}
	if (!o->nshards)
		return HALO_OK;
	if (o->nshards != (ii->ndim == 3 ? 3 : 2))
		return halo_error_set(err, HALO_EINVAL, "--shards: the input is %s", ii->ndim == 3 ?
				      "3D; give Z,Y,X" : "2D; give Y,X");
	int off = 3 - o->nshards;
	int64_t want[3] = {1, 1, 1}, inner[3];
	for (int d = off; d < 3; d++)
		want[d] = o->shards[d - off];
	int bad = halo_volume_shards(ii->shape, info->chunks, want, inner, info->chunks);
	if (bad >= 0)
		return halo_error_set(err, HALO_EINVAL, "--shards: %lld is not a multiple of the "
				      "chunks' %lld along axis %d", (long long)want[bad],
				      (long long)inner[bad], bad - off);
	memcpy(wo->inner, inner, sizeof inner);
	double bytes = (double)halo_dtype_size(info->dtype);
	for (int d = 0; d < 3; d++)
		bytes *= (double)info->chunks[d];
	/* A shard is a task's buffer, and halo's chunk limit holds for it. */
	char shown[32], limit[32];
	if (bytes > (double)HALO_ZARR_MAX_CHUNK_BYTES)
		return halo_error_set(err, HALO_EINVAL, "--shards: a shard of %s exceeds halo's "
				      "limit of %s", halo__bytes_f(bytes, shown, sizeof shown),
				      halo__bytes(HALO_ZARR_MAX_CHUNK_BYTES, limit, sizeof limit));
	return HALO_OK;
}

/* Output description from the input's and the options. */
static int plan(const struct convert_opts *o, const halo_reader_t *r, halo_volume_info_t *info,
		halo_writer_opts_t *wo, halo_error_t *err)
{
	const halo_volume_info_t *ii = halo_reader_info(r);
	*info = *ii;
	info->dtype.big_endian = 0;
	if (halo_path_check_output(o->out, err))
		return err->code;
	wo->format = o->ome ? HALO_FMT_OME_ZARR : halo_format_from_path(o->out);
	wo->ome_tiff = halo_path_ome_tiff(o->out);
	if (o->ome && halo_format_from_path(o->out) == HALO_FMT_TIFF)
		return halo_error_set(err, HALO_EINVAL, "--ome: OUT '%s' is a TIFF name", o->out);
	wo->pyramid = (int)o->pyramid;
	if (o->pyramid && wo->format != HALO_FMT_OME_ZARR)
		return halo_error_set(err, HALO_EINVAL, "--pyramid needs an OME-Zarr output (--ome or *.ome.zarr)");
	if (o->dtype) {
		int rc = halo_dtype_parse_output(o->dtype, "--dtype", &info->dtype, err);
		if (rc)
			return rc;
	}
	if (halo_reader_format(r) == HALO_FMT_TIFF && wo->format != HALO_FMT_TIFF) {
		static const int64_t dflt[3] = {64, 256, 256};
		for (int d = 0; d < 3; d++)
			info->chunks[d] = dflt[d] < ii->shape[d] ? dflt[d] : ii->shape[d];
	}
	if (wo->format == HALO_FMT_TIFF) {
		info->chunks[0] = ii->shape[0] < 16 ? ii->shape[0] : 16;
		info->chunks[1] = ii->shape[1];
		info->chunks[2] = ii->shape[2];
	}
	if (o->nchunks) {
		int off = 3 - o->nchunks;
		if (o->nchunks != (ii->ndim == 3 ? 3 : 2))
			return halo_error_set(err, HALO_EINVAL, "--chunks: the input is %s", ii->ndim == 3 ?
					      "3D; give Z,Y,X" : "2D; give Y,X");
		for (int d = 0; d < o->nchunks; d++)
			info->chunks[off + d] = o->chunks[d];
		if (wo->format == HALO_FMT_TIFF &&
		    (info->chunks[1] != ii->shape[1] || info->chunks[2] != ii->shape[2]))
			return halo_error_set(err, HALO_EINVAL, "--chunks: TIFF output is written in "
					      "whole pages; give %s%lld,%lld", ii->ndim == 3 ? "Z," : "",
					      (long long)ii->shape[1], (long long)ii->shape[2]);
	}
	int64_t c[3]; /* chunks past the array shrink to it */
	for (int d = 0; d < 3; d++)
		c[d] = info->chunks[d] < ii->shape[d] ? info->chunks[d] : ii->shape[d];
	size_t elsize = halo_dtype_size(info->dtype);
	/* In floating point, so that no product of huge sizes wraps around. */
	double bytes = (double)elsize * (double)c[0] * (double)c[1] * (double)c[2];
	char shown[32], limit[32];
	if (wo->format != HALO_FMT_TIFF && o->nchunks) {
		if (bytes > (double)HALO_ZARR_MAX_CHUNK_BYTES)
			return halo_error_set(err, HALO_EINVAL, "--chunks: a chunk of %s exceeds "
					      "Zarr's limit here of %s (blosc's)",
					      halo__bytes_f(bytes, shown, sizeof shown),
					      halo__bytes(HALO_ZARR_MAX_CHUNK_BYTES, limit,
							  sizeof limit));
	} else if (halo_volume_chunks_fit(wo->format, c, elsize) || wo->format == HALO_FMT_TIFF) {
		/* The input's chunks in a wider type stored in pieces, or
		 * TIFF's pages fewer at a time. */
		memcpy(info->chunks, c, sizeof c);
	}

	if (wo->format == HALO_FMT_TIFF && (o->compressor || o->clevel >= 0 || o->shuffle))
		return halo_error_set(err, HALO_EINVAL, "%s: --compressor, --clevel and --shuffle "
				      "apply to Zarr; halo writes TIFF uncompressed", o->out);
	/* Keep the input's compression unless told otherwise. */
	halo_codec_t codec = HALO_CODEC_DEFAULT;
	const halo_codec_t *in_codec = halo_reader_codec(r);
	if (in_codec && in_codec->id != HALO_CODEC_NONE)
		codec = *in_codec;
	else if (in_codec)
		codec.id = HALO_CODEC_NONE;
	if (o->compressor) {
		int rc = halo_codec_parse(o->compressor, &codec, err);
		if (rc)
			return rc;
	}
	if (codec.id == HALO_CODEC_LZ4 && o->clevel >= 0)
		return halo_error_set(err, HALO_EINVAL, "--clevel: the output keeps the input's lz4, "
				      "which has an acceleration (%d), not a level; --compressor "
				      "NAME changes the compressor", codec.clevel);
	if (o->clevel >= 0) /* bz2's levels start at 1 */
		codec.clevel = halo_codec_level_clamp(codec.id, o->clevel);
	if (o->shuffle) {
		if (strcmp(o->shuffle, "none") == 0)
			codec.shuffle = 0;
		else if (strcmp(o->shuffle, "byte") == 0)
			codec.shuffle = 1;
		else if (strcmp(o->shuffle, "bit") == 0)
			codec.shuffle = 2;
		else
			return halo_error_set(err, HALO_EINVAL, "--shuffle: unknown '%s' (none, byte, bit)",
					      o->shuffle);
	}
	if (codec.id == HALO_CODEC_NONE && (o->clevel >= 0 || o->shuffle))
		return halo_error_set(err, HALO_EINVAL, "--clevel and --shuffle apply to compressed "
				      "output; the output is uncompressed (--compressor NAME "
				      "compresses it)");
	if (codec.id != HALO_CODEC_BLOSC && o->shuffle)
		return halo_error_set(err, HALO_EINVAL, "--shuffle applies to blosc; the output's "
				      "compressor is %s", halo_codec_id_name(codec.id));
	wo->codec = codec;
	return plan_v3(o, r, info, wo, err);
}

/* A conversion is the pipeline `from -> to_zarr/to_tiff` with the output's
 * chunks and type: the store rechunks and converts (rounding to nearest,
 * saturating), and writes the pyramid levels after level 0. */
static int convert_graph(const struct convert_opts *o, halo_reader_t *r,
			 const halo_volume_info_t *info, halo_writer_opts_t *wo,
			 halo_compute_stats_t *st, halo_error_t *err)
{
	halo_graph_t *g = halo_graph_new();
	halo_expr_t *x;
	halo_dtype_kind_t in_kind = halo_reader_info(r)->dtype.kind; /* info: the output's */
	if (!g) {
		halo_reader_close(r);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	int rc = halo_from_reader(g, r, &x, err);
	if (!rc) {
		wo->attrs = halo_reader_attrs(x->reader);
		wo->omero = halo_reader_omero(x->reader);
		rc = halo_to_store(g, x, o->out, info->chunks + (3 - info->ndim),
				   (int)info->dtype.kind, wo, o->overwrite, &x, err);
	}
	if (!rc) {
		/* The voxel size travels with the data, whatever the formats. */
		memcpy(x->info.voxel, info->voxel, sizeof x->info.voxel);
		memcpy(x->info.origin, info->origin, sizeof x->info.origin);
		memcpy(x->info.unit, info->unit, sizeof x->info.unit);
		x->info.fill = halo_fill_convert(info->fill, in_kind, info->dtype.kind);
		halo_compute_opts_t co = {.memory = o->memory, .quiet = o->quiet, .label = "convert"};
		rc = halo_cli_compute(g, &co, st, err);
	}
	halo_graph_free(g);
	return rc;
}

/* "4x4x5", or "4x4x5 in shards of 8x8x10" */
static const char *shard_dims(const int64_t cut[3], const halo_volume_info_t *info,
			      const halo_writer_opts_t *wo, char *buf, size_t len)
{
	halo__dims(cut, info->ndim, buf, len);
	if (wo->inner[2]) {
		size_t n = strlen(buf);
		snprintf(buf + n, len - n, " in shards of ");
		n = strlen(buf);
		halo__dims(info->chunks, info->ndim, buf + n, len - n);
	}
	return buf;
}

int halo_cli_convert(int argc, char **argv)
{
	struct convert_opts o = {0};
	int status;
	if (parse(argc, argv, &o, &status))
		return status;

	halo_error_t err = {0};
	halo_reader_t *r = NULL;
	halo_output_t *out = NULL;
	halo_runtime_t *rt = NULL;
	halo_volume_info_t info;
	halo_writer_opts_t wo = {0};
	halo_compute_stats_t stats = {0};
	status = HALO_EXIT_FAIL;

	if (halo_reader_open_at(o.in, &o.select, &r, &err))
		goto fail;
	if (halo_cli_output_apart(o.out, o.in, "IN", &err))
		goto fail;
	if (halo_cli_trace_check(&o.rt, (const char *const[]){o.in, o.out, NULL}, &err))
		goto fail;
	if (plan(&o, r, &info, &wo, &err))
		goto fail;
	/* Checked before StarPU starts, so that a refusal is immediate (and
	 * with signals recorded meanwhile, so that no lock is left behind;
	 * StarPU's start installs its own handlers, replaced again below). */
	halo_signals_install();
	if (halo_output_begin(o.out, o.overwrite, &out, &err))
		goto fail;
	/* After the refusals above: a note, then an error, read as two */
	if (!o.quiet)
		halo_cli_note_voxel(o.in, &info, wo.format, "--ome, an OUT ending in .ome.zarr, or a TIFF");
	/* --memory bounds the chunks in flight; StarPU's own limit stays its
	 * default, unlike run's and deconvolve's, which reckon the floor a
	 * limit may not go under (StarPU waits forever below what a task's
	 * buffers need). */
	halo_runtime_memory_warn(o.memory);
	halo_output_abort(out);
	out = NULL;
	if (halo_runtime_init(&o.rt, &rt, &err))
		goto fail;
	halo_signals_install();
	halo_reader_t *src = r;
	r = NULL; /* the graph owns it */
	if (convert_graph(&o, src, &info, &wo, &stats, &err))
		goto fail;
	if (!o.quiet) {
		double mb = (double)(stats.bytes_read + stats.bytes_written) / 1e6;
		int64_t cut[3]; /* the chunks as stored: cut to the array */
		const int64_t *stored = wo.inner[2] ? wo.inner : info.chunks;
		for (int d = 0; d < 3; d++)
			cut[d] = stored[d] < info.shape[d] ? stored[d] : info.shape[d];
		char shape[72], chunks[72 + 80], levels[64] = "", in[PATH_MAX], outp[PATH_MAX];
		int64_t n = stats.chunks_written - stats.pyramid_chunks;
		if (stats.pyramid_chunks)
			snprintf(levels, sizeof levels, " (and %lld in %d pyramid level%s)",
				 (long long)stats.pyramid_chunks, (int)o.pyramid, o.pyramid == 1 ? "" : "s");
		printf("convert: %s -> %s: %s %s, chunks %s, %lld %s%s%s in %.2f s (%.1f MB/s "
		       "decoded in+out)\n",
		       halo__shown(o.in, in, sizeof in), halo__shown(o.out, outp, sizeof outp),
		       halo__dims(info.shape, info.ndim, shape, sizeof shape),
		       halo_dtype_name(info.dtype), shard_dims(cut, &info, &wo, chunks, sizeof chunks),
		       (long long)n, wo.inner[2] ? "shard" : "chunk", n == 1 ? "" : "s", levels,
		       stats.seconds,
		       stats.seconds > 0 ? mb / stats.seconds : 0.0);
	}
	status = HALO_EXIT_OK;
	goto done;
fail:
	halo_cli_error(&err);
done:
	halo_output_abort(out);
	status = halo_cli_finish(rt, status, &err);
	halo_reader_close(r);
	return status;
}
