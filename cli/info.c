/* `halo info`: what halo is running on. It starts StarPU with the given
 * options and reports the workers StarPU really started, because that (not
 * what the machine has) decides where tasks go. The same description, as
 * JSON, is what benchmarks embed to say which machine produced a number.
 * `halo info VOLUME` describes a volume instead, as halo reads it. */
#include "config.h"
#include "cli/cli.h"
#include "io/json.h"
#include "io/volume.h"
#include "runtime/mpi.h"
#include "runtime/runtime.h"
#include "util/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char info_help[] =
	"usage: halo info [--json] [--ncpu N] [--ncuda N] [--sched NAME] [--verbose]\n"
	"       halo info VOLUME [--json]\n\n"
	"Prints halo's version, StarPU's version and compiled-in features, the\n"
	"workers StarPU starts with these options, the hwloc topology and the\n"
	"versions of FFTW, cuFFT, c-blosc, libtiff and jansson. With VOLUME (Zarr,\n"
	"OME-Zarr, TIFF, or a folder or quoted pattern of TIFF planes), describes it\n"
	"as halo reads it: format, shape, chunks, element type, compression, fill\n"
	"value and voxel size.\n\n"
	"  --json          print the same as one JSON object\n" HALO_CLI_WORKER_HELP;

static const char *yes_no(int v)
{
	return v ? "yes" : "no";
}

static json_t *workers_json(const halo_worker_info_t *w, int n)
{
	json_t *arr = json_array();
	/* A CPU worker's peak is not known here (bench measures a copy's). */
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:i, s:s, s:i, s:o, s:i, s:s, s:I, s:o}",
			"id", w[i].id, "kind", w[i].is_cuda ? "cuda" : "cpu", "devid", w[i].devid,
			"bindid", w[i].bindid >= 0 ? json_integer(w[i].bindid) : json_null(),
			"memory_node", w[i].memory_node, "name", w[i].name,
			"memory_bytes", (json_int_t)w[i].memory_bytes,
			"peak_bandwidth_gbs", w[i].is_cuda ? json_real(w[i].peak_gbs) : json_null()));
	return arr;
}

/* What is absent (no CUDA driver) is null, as the text's "none". */
static json_t *or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

/* Builds the whole description; the caller owns the result. */
static json_t *describe(const halo_runtime_t *rt, const halo_topology_t *topo,
			const halo_worker_info_t *w, int n)
{
	halo_libraries_t lib;
	halo__libraries_get(&lib);
	int ncpu = 0, ncuda = 0;
	for (int i = 0; i < n; i++)
		w[i].is_cuda ? ncuda++ : ncpu++;
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	return json_pack(
		"{s:s, s:{s:i, s:i, s:s}, s:{s:s, s:b, s:b, s:b, s:s}, s:{s:i, s:i, s:o},"
		" s:{s:s, s:i, s:i, s:i, s:i, s:s, s:I, s:I},"
		" s:{s:b, s:s, s:o, s:o, s:o, s:s, s:s, s:s}}",
		"halo", halo_version_string(),
		"mpi", "rank", halo_runtime_rank(rt), "ranks", halo_runtime_ranks(rt), "host", host,
		"starpu", "version", lib.starpu, "cuda", lib.starpu_cuda,
		"fxt", lib.starpu_fxt, "mpi", lib.starpu_mpi,
		"scheduler", halo_runtime_sched(rt),
		"workers", "cpu", ncpu, "cuda", ncuda, "list", workers_json(w, n),
		"topology", "hwloc", lib.hwloc, "packages", topo->packages,
		"numa_nodes", topo->numa_nodes, "cores", topo->cores, "pus", topo->pus,
		"cpu_model", topo->cpu_model, "numa_bytes", (json_int_t)topo->numa_bytes,
		"ram_bytes", (json_int_t)topo->ram_bytes,
		"libraries", "halo_cuda", lib.halo_cuda, "fftw", lib.fftw,
		"cufft", or_null(lib.cufft), "cuda_runtime", or_null(lib.cuda_runtime),
		"cuda_driver", or_null(lib.cuda_driver), "blosc", lib.blosc, "libtiff", lib.tiff,
		"jansson", lib.jansson);
}

static const char *or_none(const char *s, const char *none)
{
	return s && *s ? s : none;
}

/* From the description alone: under mpirun, rank 0 prints every rank's. */
static void print_text(const json_t *d)
{
	const json_t *sp = json_object_get(d, "starpu");
	const json_t *wk = json_object_get(d, "workers");
	const json_t *tp = json_object_get(d, "topology");
	const json_t *lb = json_object_get(d, "libraries");
#define S(obj, key) json_string_value(json_object_get(obj, key))
#define I(obj, key) (int)json_integer_value(json_object_get(obj, key))
#define B(obj, key) yes_no(json_is_true(json_object_get(obj, key)))
	printf("halo %s\n", S(d, "halo"));
	printf("StarPU %s: CUDA %s, FxT %s, MPI %s; scheduler %s\n", S(sp, "version"),
	       B(sp, "cuda"), B(sp, "fxt"), B(sp, "mpi"), S(sp, "scheduler"));
	const json_t *mp = json_object_get(d, "mpi");
	if (I(mp, "ranks") > 1)
		printf("MPI: rank %d of %d, on %s\n", I(mp, "rank"), I(mp, "ranks"), S(mp, "host"));
	printf("workers: %d CPU, %d CUDA\n", I(wk, "cpu"), I(wk, "cuda"));
	size_t i;
	const json_t *w;
	double main_ram = 0;
	json_array_foreach(json_object_get(wk, "list"), i, w) {
		double bytes = (double)json_integer_value(json_object_get(w, "memory_bytes"));
		if (strcmp(S(w, "kind"), "cuda") == 0) {
			printf("  %2d  cuda %-3d %s, %.1f GiB, %.0f GB/s peak\n", I(w, "id"),
			       I(w, "devid"), S(w, "name"), bytes / (1 << 30),
			       json_number_value(json_object_get(w, "peak_bandwidth_gbs")));
			continue;
		}
		main_ram = main_ram ? main_ram : bytes;
		if (json_is_null(json_object_get(w, "bindid")))
			printf("  %2d  cpu  %-3d %s, not bound\n", I(w, "id"), I(w, "devid"),
			       S(w, "name"));
		else
			printf("  %2d  cpu  %-3d %s, bound to PU %d\n", I(w, "id"), I(w, "devid"),
			       S(w, "name"), I(w, "bindid"));
	}
	printf("topology (hwloc %s): %d package%s, %d NUMA node%s, %d cores, %d PUs%s%s\n",
	       S(tp, "hwloc"), I(tp, "packages"), I(tp, "packages") == 1 ? "" : "s",
	       I(tp, "numa_nodes"), I(tp, "numa_nodes") == 1 ? "" : "s", I(tp, "cores"),
	       I(tp, "pus"), *S(tp, "cpu_model") ? "; " : "", S(tp, "cpu_model"));
	printf("memory: %.1f GiB (%.1f GiB in hwloc's NUMA nodes); StarPU's main memory %.1f GiB\n",
	       (double)json_integer_value(json_object_get(tp, "ram_bytes")) / (1 << 30),
	       (double)json_integer_value(json_object_get(tp, "numa_bytes")) / (1 << 30),
	       main_ram / (1 << 30));
	printf("libraries: FFTW %s; cuFFT %s; CUDA runtime %s, driver %s; c-blosc %s;"
	       " libtiff %s; jansson %s\n",
	       S(lb, "fftw"), or_none(S(lb, "cufft"), "not built in"),
	       or_none(S(lb, "cuda_runtime"), "-"), or_none(S(lb, "cuda_driver"), "none"),
	       S(lb, "blosc"), S(lb, "libtiff"), S(lb, "jansson"));
#undef S
#undef I
#undef B
}

static int describe_volume(const char *path, int as_json)
{
	halo_reader_t *r;
	halo_error_t err = {0};
	/* A file of several channels or time points is described by its
	 * first; --channel and --time pick one where halo reads it. */
	halo_select_t any = {.channel = -1, .time = -1, .first = 1};
	if (halo_reader_open_at(path, &any, &r, &err)) {
		halo_cli_error(&err);
		return HALO_EXIT_FAIL;
	}
	const halo_volume_info_t *v = halo_reader_info(r);
	const halo_codec_t *codec = halo_reader_codec(r);
	halo_stored_t stored;
	halo_reader_stored(r, &stored);
	static const char *const formats[] = {"zarr", "ome-zarr", "tiff"};
	static const char *const shuffles[] = {"none", "byte", "bit"};
	int first = v->ndim == 2 ? 1 : 0;
	int64_t nchunks = 1;
	json_t *shape = json_array(), *chunks = json_array(), *voxel = json_array(),
	       *origin = json_array();
	int moved = 0;
	for (int d = first; d < 3; d++) {
		json_array_append_new(shape, json_integer(v->shape[d]));
		json_array_append_new(chunks, json_integer(stored.chunks[d]));
		json_array_append_new(voxel, json_real(v->voxel[d]));
		json_array_append_new(origin, json_real(v->origin[d]));
		moved |= v->origin[d] != 0;
		nchunks *= (v->shape[d] + v->chunks[d] - 1) / v->chunks[d];
	}
	/* null for none; a TIFF's compression as {"tiff": NAME} */
	json_t *comp = json_null();
	if (stored.compression && strcmp(stored.compression, "none") != 0)
		comp = json_pack("{s:s}", "tiff", stored.compression);
	else if (codec && codec->id == HALO_CODEC_BLOSC)
		comp = json_pack("{s:s, s:s, s:i, s:s}", "id", "blosc", "cname", codec->cname,
				 "clevel", codec->clevel,
				 "shuffle", shuffles[codec->shuffle % 3]);
	else if (codec && codec->id != HALO_CODEC_NONE)
		comp = halo_codec_config(codec);
	json_t *desc = json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:s, s:s, s:o, s:o, s:o, s:o, "
		"s:s}", "path", path, "format", formats[halo_reader_format(r)], "shape", shape,
		"chunks", chunks, "channels", (json_int_t)stored.channels, "times",
		(json_int_t)stored.times,
		"nchunks", (json_int_t)nchunks, "dtype", halo_dtype_name(v->dtype),
		"byte_order", halo_dtype_size(v->dtype) == 1 ? "|" : stored.big_endian ? ">" : "<",
		"compressor", comp, "fill_value", halo_zarr_fill_json(v->fill, v->dtype), "voxel", voxel,
		"origin", origin, "unit", v->unit);
	json_t *guessed = json_array();
	for (int d = first; d < 3; d++)
		if (v->guessed & (1 << d))
			json_array_append_new(guessed, json_string((const char *[]){"z", "y", "x"}[d]));
	json_object_set_new(desc, "voxel_not_stored", guessed);
	/* Zarr's storage: shards, checksums, and the order of a chunk's
	 * axes (v2's F order, v3's transpose) */
	int sharded = stored.shards[1] > 0, transposed = 0, fortran = stored.ndim > 1;
	int64_t nshards = 1;
	json_t *shards = sharded ? json_array() : json_null(), *order = json_array();
	for (int d = first; d < 3 && sharded; d++) {
		json_array_append_new(shards, json_integer(stored.shards[d]));
		nshards *= (v->shape[d] + stored.shards[d] - 1) / stored.shards[d];
	}
	for (int a = 0; a < stored.ndim; a++) {
		json_array_append_new(order, json_integer(stored.order[a]));
		transposed |= stored.order[a] != a;
		fortran &= stored.order[a] == stored.ndim - 1 - a;
	}
	if (desc) {
		json_object_set_new(desc, "zarr_format", stored.zarr_format ?
				    json_integer(stored.zarr_format) : json_null());
		json_object_set_new(desc, "ome_version", stored.ome_version ?
				    json_string(stored.ome_version) : json_null());
		json_object_set_new(desc, "files", stored.files ? json_integer(stored.files)
								: json_null());
		if (stored.reduced)
			json_object_set_new(desc, "reduced_pages", json_integer(stored.reduced));
		json_object_set_new(desc, "shards", shards);
		json_object_set_new(desc, "checksum", stored.crc32c ? json_string("crc32c")
								    : json_null());
		json_object_set_new(desc, "stored_axis_order", stored.ndim ? order : json_null());
		if (!stored.ndim)
			json_decref(order);
	}
	if (desc && halo_reader_channel_names(r))
		json_object_set(desc, "channel_names", (json_t *)halo_reader_channel_names(r));
	if (as_json) {
		char *text = desc ? halo_json_dumps(desc, JSON_INDENT(2)) : NULL;
		if (!text || fputs(text, stdout) == EOF) {
			free(text);
			halo_reader_close(r);
			json_decref(desc);
			halo_error_set(&err, HALO_EIO, "%s: cannot describe this volume as JSON", path);
			halo_cli_error(&err);
			return HALO_EXIT_FAIL;
		}
		free(text);
		putchar('\n');
	} else {
		char dims[4][96];
		const char *sep[3] = {"x", "x", ""};
		halo__dims(v->shape, v->ndim, dims[0], sizeof dims[0]);
		halo__dims(stored.chunks, v->ndim, dims[1], sizeof dims[1]);
		dims[2][0] = dims[3][0] = '\0';
		size_t n[4] = {0, 0, 0, 0};
		for (int d = first; d < 3; d++) {
			n[2] += (size_t)snprintf(dims[2] + n[2], sizeof dims[2] - n[2], "%g%s", v->voxel[d],
						 sep[d]);
			n[3] += (size_t)snprintf(dims[3] + n[3], sizeof dims[3] - n[3], "%g%s",
						 v->origin[d], d < 2 ? ", " : "");
		}
		/* "zarr v3", "ome-zarr 0.4 (zarr v2)", "tiff" */
		printf("%s: %s", path, formats[halo_reader_format(r)]);
		if (stored.ome_version)
			printf(" %s (zarr v%d)", stored.ome_version, stored.zarr_format);
		else if (stored.zarr_format)
			printf(" v%d", stored.zarr_format);
		else if (stored.files)
			printf(" sequence of %lld file%s", (long long)stored.files,
			       stored.files == 1 ? "" : "s");
		printf(", %dD\n", v->ndim);
		printf("  shape       %s\n", dims[0]);
		printf("  chunks      %s (%lld chunk%s)\n", dims[1], (long long)nchunks,
		       nchunks == 1 ? "" : "s");
		if (sharded) {
			char sdims[96];
			halo__dims(stored.shards, v->ndim, sdims, sizeof sdims);
			printf("  shards      %s (%lld file%s of chunks)\n", sdims, (long long)nshards,
			       nshards == 1 ? "" : "s");
		}
		if (transposed) {
			printf("  stored as   axes ");
			for (int a = 0; a < stored.ndim; a++)
				printf("%d%s", stored.order[a], a + 1 < stored.ndim ? ", " : "");
			printf(" outermost first%s\n", fortran ? " (F order)" : "");
		}
		if (stored.crc32c)
			printf("  checksum    crc32c on every chunk\n");
		if (stored.channels > 1 || stored.times > 1)
			printf("  of          %lld channel%s x %lld time point%s (--channel, --time "
			       "pick one; this is the first)\n", (long long)stored.channels,
			       stored.channels == 1 ? "" : "s", (long long)stored.times,
			       stored.times == 1 ? "" : "s");
		const json_t *names = halo_reader_channel_names(r);
		for (size_t i = 0; i < json_array_size(names); i++)
			printf("%s%zu %s%s", i ? ", " : "  channels    ", i,
			       json_string_value(json_array_get(names, i)),
			       i + 1 < json_array_size(names) ? "" : "\n");
		printf("  dtype       %s%s\n", halo_dtype_name(v->dtype),
		       stored.big_endian && halo_dtype_size(v->dtype) > 1 ? " (big-endian)" : "");
		if (stored.compression)
			printf("  compression %s\n", stored.compression);
		if (stored.reduced)
			printf("  left out    %lld reduced-resolution page%s\n",
			       (long long)stored.reduced, stored.reduced == 1 ? "" : "s");
		if (!stored.compression) { /* a TIFF's is said above */
			if (codec && codec->id == HALO_CODEC_BLOSC)
				printf("  compressor  blosc %s, level %d, %s shuffle\n", codec->cname,
				       codec->clevel, shuffles[codec->shuffle % 3]);
			else if (codec && codec->id != HALO_CODEC_NONE)
				printf("  compressor  %s, %s %d\n", halo_codec_id_name(codec->id),
				       halo_codec_level_key(codec->id), codec->clevel);
			else
				printf("  compressor  none\n");
		}
		if (halo_dtype_is_float(v->dtype))
			printf("  fill value  %g\n", v->fill.value);
		else if (v->dtype.kind == HALO_B1)
			printf("  fill value  %s\n", v->fill.bits ? "true" : "false");
		else if (v->dtype.kind == HALO_U8) /* exact, past a double's 2^53 */
			printf("  fill value  %llu\n", (unsigned long long)(uint64_t)v->fill.bits);
		else
			printf("  fill value  %lld\n", (long long)v->fill.bits);
		/* The sizes the file does not store, and what was taken. */
		int pixel = (v->guessed & 6) == 6; /* neither y nor x: 1 each */
		const char *what[3] = {"z: not stored, 1 taken",
				       pixel ? "y: not stored, 1 taken" : "y: not stored, x's taken",
				       pixel ? "x: not stored, 1 taken" : "x: not stored, y's taken"};
		char taken[128] = "";
		for (int d = first, at = 0; d < 3; d++)
			if (v->guessed & (1 << d))
				at += snprintf(taken + at, sizeof taken - (size_t)at, "%s%s",
					       at ? "; " : " (", what[d]);
		if (taken[0])
			strcat(taken, ")");
		printf("  voxel       %s %s%s\n", dims[2], v->unit[0] ? v->unit : "(no unit)", taken);
		if (moved)
			printf("  origin      (%s) %s\n", dims[3], v->unit[0] ? v->unit : "(no unit)");
	}
	json_decref(desc);
	halo_reader_close(r);
	return HALO_EXIT_OK;
}

int halo_cli_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		HALO_CLI_WORKER_OPTIONS,
		{"json", no_argument, NULL, HALO_OPT_JSON},
		{"help", no_argument, NULL, HALO_OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	halo_runtime_opts_t ropts;
	halo_runtime_opts_init(&ropts);
	ropts.distributed = 1; /* every rank describes itself */
	halo_error_t err = {0};
	int as_json = 0, c, status;

	halo_cli_options_begin();
	while ((c = halo_cli_next_option(argc, argv, "info", longopts, info_help, &ropts,
					 &status)) != -1) {
		if (c == HALO_CLI_DONE)
			return status;
		if (c == HALO_OPT_JSON)
			as_json = 1;
	}
	if (optind + 1 < argc) {
		if (halo_cli_expanded_glob("info", argv + optind, argc - optind))
			return HALO_EXIT_USAGE;
		halo_cli_usage_line("info: unexpected argument '%s'; see 'halo info --help'",
				    argv[optind + 1]);
		return HALO_EXIT_USAGE;
	}
	if (halo_cli_empty_args("info", argv + optind, argc - optind))
		return HALO_EXIT_USAGE;
	if (optind < argc && (ropts.ncpu >= 0 || ropts.ncuda >= 0 || ropts.sched || ropts.verbose)) {
		halo_cli_usage_line("info: --ncpu, --ncuda, --sched and --verbose describe the "
				    "machine, not VOLUME; see 'halo info --help'");
		return HALO_EXIT_USAGE;
	}
	/* A volume is the same file on every rank: described once. */
	if (optind < argc)
		return halo__runtime_launched_rank() > 0 ? HALO_EXIT_OK
							  : describe_volume(argv[optind], as_json);

	halo_topology_t topo;
	if (halo_topology_get(&topo, &err)) {
		halo_cli_error(&err);
		return HALO_EXIT_FAIL;
	}
	halo_runtime_t *rt;
	if (halo_runtime_init(&ropts, &rt, &err)) {
		halo_cli_error(&err);
		return HALO_EXIT_FAIL;
	}
	status = HALO_EXIT_FAIL;
	halo_worker_info_t *workers = NULL;
	int nworkers = 0;
	json_t *desc = NULL;
	if (halo__runtime_workers(&workers, &nworkers, &err)) {
		halo_cli_error(&err);
		goto out_runtime;
	}
	desc = describe(rt, &topo, workers, nworkers);
	if (!desc) {
		fprintf(stderr, "halo: info: could not build the description\n");
		goto out_workers;
	}
	/* Under mpirun, every rank's (on nodes of their own, or with their
	 * share of one), printed by rank 0 in rank order: a JSON array. */
	int launched = halo__runtime_mpi_launched(); /* -np 1 too: one shape for scripts */
	char *mine = launched ? json_dumps(desc, JSON_COMPACT) : NULL;
	char **all = launched ? halo__mpi_gather_text(mine ? mine : "null") : NULL;
	free(mine);
	if (halo_runtime_ranks(rt) > 1 && halo_runtime_rank(rt) > 0) {
		status = HALO_EXIT_OK;
		goto out_desc;
	}
	json_t *docs = json_array();
	for (int r = 0; all && r < halo_runtime_ranks(rt); r++) {
		json_t *d = all[r] ? json_loads(all[r], JSON_DECODE_ANY, NULL) : NULL;
		json_array_append_new(docs, d ? d : json_null());
	}
	if (!all)
		json_array_append(docs, desc);
	for (size_t r = 0; !as_json && r < json_array_size(docs); r++) {
		if (r)
			putchar('\n');
		if (json_is_object(json_array_get(docs, r)))
			print_text(json_array_get(docs, r));
		else
			printf("rank %zu: no description\n", r);
	}
	if (as_json && json_dumpf(all ? docs : desc, stdout, JSON_INDENT(2)) == 0)
		putchar('\n');
	for (int r = 0; all && r < halo_runtime_ranks(rt); r++)
		free(all[r]);
	free(all);
	json_decref(docs);
	status = HALO_EXIT_OK;
out_desc:
	json_decref(desc);
out_workers:
	free(workers);
out_runtime:
	halo_runtime_shutdown(rt);
	return status;
}
