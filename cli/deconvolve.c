/* `halo deconvolve IN PSF OUT`: chunked Richardson-Lucy with halos, the
 * seed's dask map_overlap pipeline as StarPU tasks. Option parsing and
 * checks live here; the work is runtime/deconvolve.c. */
#include "config.h"
#include "cli/cli.h"
#include "cli/deconv_common.h"
#include "io/outdir.h"
#include "runtime/deconvolve.h"
#include "runtime/runtime.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

static const char deconvolve_help[] =
	"usage: halo deconvolve IN PSF OUT [options]\n\n"
	"Deconvolves IN (Zarr, OME-Zarr, TIFF, or a folder or quoted pattern of TIFF\n"
	"planes such as 'scan/z_*.tif') with PSF (TIFF or Zarr; 3D, or 2D for a 2D\n"
	"IN) by Richardson-Lucy, chunk by chunk. Exact mode equals\n"
	"whole-volume RL: halos are exchanged between chunks every half-iteration.\n"
	"Overlap mode is dask's map_overlap: each chunk gets a halo of --depth voxels,\n"
	"is deconvolved on its own and trimmed back. The boundary rule applies at the\n"
	"volume's faces. OUT is Zarr (OME-Zarr when named *.ome.zarr, TIFF when *.tif\n"
	"or *.tiff), written atomically.\n\n"
	"  --mode exact|overlap  default: exact when its working set (three float32\n"
	"                        copies of the volume, a haloed block per chunk) fits\n"
	"                        the memory budget, else overlap; --depth: overlap\n"
	"  --iterations N        RL iterations (default 20)\n"
	"  --chunks Z,Y,X|N|auto output chunks (default: the input's; rechunks first;\n"
	"                        N: for every axis);\n"
	"                        auto: near-cubes, two per worker at least, each\n"
	"                        task's working set within its share of --memory\n"
	"                        and the GPU; where the GPUs would do 80 % of the\n"
	"                        work, as large as the GPU and --memory (two in\n"
	"                        flight) allow, four per GPU at least\n"
	"  --depth Z,Y,X|N       overlap halo per side (default: the PSF's size, grown\n"
	"                        so that haloed chunks are FFT-friendly sizes)\n"
	"  --boundary B          reflect (default), periodic, nearest, constant[=V], none\n"
	"  --dtype T             output type (default float32); integers round to\n"
	"                        nearest (ties to even), saturate; NaN becomes 0\n"
	HALO_CLI_SELECT_HELP
	"  --psf-channel N, --psf-time N\n"
	"                        the same for PSF (a PSF per channel, say)\n"
	"  --memory SIZE         bound on chunks in flight, e.g. 2G (default: RAM/4)\n"
	"  --overwrite           replace an existing OUT\n"
	"  --quiet               no progress line or summary\n" HALO_CLI_RUNTIME_HELP;

int halo_cli_deconvolve(int argc, char **argv)
{
	struct halo_deconv_cli o;
	int status;
	if (halo_deconv_cli_parse(argc, argv, "deconvolve", deconvolve_help, 3, 3, &o, &status))
		return status;
	o.rt.distributed = 1; /* the overlap mode runs on every MPI rank */
	const char *in = o.args[0], *psf_path = o.args[1], *outp = o.args[2];
	halo_error_t err = {0};
	float *psf = NULL;
	int pn[3];
	status = HALO_EXIT_FAIL;
	if (halo_cli_trace_check(&o.rt, (const char *const[]){in, psf_path, outp, NULL}, &err))
		goto fail;
	halo_reader_t *probe; /* the image's dimensions decide the PSF's */
	if (halo_reader_open_at(in, &o.select, &probe, &err))
		goto fail;
	halo_volume_info_t image = *halo_reader_info(probe);
	halo_reader_close(probe);
	/* Tab completion's slip: the image as its own PSF (not another
	 * channel or time point of the same file). */
	if ((strcmp(in, psf_path) == 0 || halo_path_same(in, psf_path)) &&
	    o.select.channel == o.psf_select.channel && o.select.time == o.psf_select.time) {
		halo_error_set(&err, HALO_EINVAL, "%s: PSF is the same as IN (halo deconvolve IN PSF "
			       "OUT)", psf_path);
		goto fail;
	}
	if (halo_psf_load(psf_path, &o.psf_select, NULL, image.ndim, image.voxel, image.unit, &psf,
			  pn, &err))
		goto fail;
	/* Deconvolving a PSF with the image as its PSF runs without a word:
	 * the likeliest slip, the two swapped. (A PSF as large as the image is
	 * common: one computed for it.) */
	int64_t nin = 1, npsf = 1;
	for (int d = 3 - image.ndim; d < 3; d++) {
		nin *= image.shape[d];
		npsf *= pn[d];
	}
	if (npsf > nin && halo__runtime_launched_rank() == 0) {
		char shown[2][4096], sp[96], si[96];
		const int64_t pn64[3] = {pn[0], pn[1], pn[2]};
		fprintf(stderr, "halo: warning: the PSF %s (%s) is larger than the image %s (%s): "
				"are they the other way round? (halo deconvolve IN PSF OUT)\n",
			halo__shown(psf_path, shown[0], sizeof shown[0]),
			halo__dims(pn64, image.ndim, sp, sizeof sp),
			halo__shown(in, shown[1], sizeof shown[1]),
			halo__dims(image.shape, image.ndim, si, sizeof si));
	}
	/* Once both are read: a PSF that is no volume (a folder) says so. */
	const char *inputs[2][2] = {{in, "IN"}, {psf_path, "PSF"}};
	for (int i = 0; i < 2; i++)
		if (halo_cli_output_apart(outp, inputs[i][0], inputs[i][1], &err))
			goto fail;
	status = halo_deconv_cli_run(&o, in, psf, pn, outp, NULL, &err);
	free(psf);
	return status;
fail:
	halo_cli_error(&err);
	free(psf);
	return status;
}
