/* `halo demo`: halo's main job on a built-in sample. It synthesises a
 * specimen with known ground truth (beads and filaments), blurs it with a
 * 3D PSF, adds Poisson noise, writes image, PSF and truth to a folder,
 * deconvolves the image on every worker, and reports how much closer to the
 * truth the result is. Deterministic: the same seed gives the same files. */
#include "config.h"
#include "cli/cli.h"
#include "runtime/runtime.h"
#include "cli/deconv_common.h"
#include "io/fs.h"
#include "io/outdir.h"
#include "io/volume.h"
#include "util/signals.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char demo_help[] =
	"usage: halo demo [DIR] [options]\n\n"
	"Builds a synthetic 96x256x256 specimen (beads and filaments, known truth),\n"
	"blurs it with a 3D Gaussian PSF and adds Poisson noise, writes image.zarr,\n"
	"psf.tif and truth.zarr under DIR (default: halo-demo), deconvolves the image\n"
	"into DIR/deconvolved.ome.zarr (open it in napari) and prints the error against\n"
	"the truth before and after. It replaces these files on later runs, but\n"
	"refuses a DIR that holds such names and was not written by the demo.\n\n"
	"  --iterations N        RL iterations (default 20)\n"
	"  --chunks Z,Y,X|N|auto chunks (default 48,128,128)\n"
	"  --mode, --depth, --boundary, --memory, --quiet as for 'halo deconvolve'\n"
	HALO_CLI_RUNTIME_HELP;

enum { NZ = 96, NY = 256, NX = 256, PZ = 15, PY = 11, PX = 11 };
static const double background = 10.0;

/* xorshift64*: reproducible everywhere, unlike rand(). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uniform(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (double)((rng_state * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}

static double normal(void)
{
	double u = uniform(), v = uniform();
	return sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v);
}

/* Poisson counts: Knuth's product method for small means, the normal
 * approximation (with continuity correction) above 30. */
static double poisson(double mean)
{
	if (mean <= 0)
		return 0;
	if (mean > 30) {
		double v = floor(mean + sqrt(mean) * normal() + 0.5);
		return v < 0 ? 0 : v;
	}
	double limit = exp(-mean), p = 1;
	int k = 0;
	do {
		k++;
		p *= uniform();
	} while (p > limit);
	return k - 1;
}

static void add_ball(float *t, double cz, double cy, double cx, double r, double value)
{
	int r0 = (int)ceil(r);
	for (int z = (int)cz - r0; z <= (int)cz + r0; z++)
		for (int y = (int)cy - r0; y <= (int)cy + r0; y++)
			for (int x = (int)cx - r0; x <= (int)cx + r0; x++) {
				if (z < 0 || z >= NZ || y < 0 || y >= NY || x < 0 || x >= NX)
					continue;
				double d2 = (z - cz) * (z - cz) + (y - cy) * (y - cy) + (x - cx) * (x - cx);
				if (d2 <= r * r)
					t[((size_t)z * NY + (size_t)y) * NX + (size_t)x] += (float)value;
			}
}

/* Beads of radius 1-3 and filaments: smooth random walks drawn as tubes. */
static void make_truth(float *t)
{
	for (int i = 0; i < 220; i++)
		add_ball(t, uniform() * NZ, uniform() * NY, uniform() * NX, 1 + 2 * uniform(),
			 400 + 800 * uniform());
	for (int f = 0; f < 14; f++) {
		double z = uniform() * NZ, y = uniform() * NY, x = uniform() * NX;
		double dz = normal() * 0.3, dy = normal(), dx = normal();
		for (int step = 0; step < 400; step++) {
			double norm = sqrt(dz * dz + dy * dy + dx * dx) + 1e-9;
			z += dz / norm;
			y += dy / norm;
			x += dx / norm;
			dz += 0.05 * normal();
			dy += 0.15 * normal();
			dx += 0.15 * normal();
			add_ball(t, z, y, x, 1.0, 60);
		}
	}
}

/* An anisotropic Gaussian, wider in z as a widefield PSF is. */
void halo_cli_gaussian_psf(float *p, const int pn[3], const double sigma[3])
{
	double sum = 0;
	for (int z = 0; z < pn[0]; z++)
		for (int y = 0; y < pn[1]; y++)
			for (int x = 0; x < pn[2]; x++) {
				double a = (z - pn[0] / 2) / sigma[0], b = (y - pn[1] / 2) / sigma[1];
				double c = (x - pn[2] / 2) / sigma[2];
				double v = exp(-0.5 * (a * a + b * b + c * c));
				p[((size_t)z * pn[1] + (size_t)y) * pn[2] + (size_t)x] = (float)v;
				sum += v;
			}
	for (size_t i = 0; i < (size_t)pn[0] * pn[1] * pn[2]; i++)
		p[i] = (float)(p[i] / sum);
}

/* One axis of a periodic convolution with a normalised 1D Gaussian whose
 * centre (index k/2) is the origin, over the `len` points at in[i * step]
 * of each of `lines` lines starting `stride` apart. */
static void blur_axis(double *v, double *line, size_t lines, size_t stride, size_t step, int len,
		      int k, double sigma)
{
	double g[32], sum = 0;
	for (int j = 0; j < k; j++)
		sum += g[j] = exp(-0.5 * ((j - k / 2) / sigma) * ((j - k / 2) / sigma));
	for (size_t l = 0; l < lines; l++) {
		double *base = v + (l / step) * stride + l % step;
		for (int i = 0; i < len; i++)
			line[i] = base[(size_t)i * step];
		for (int i = 0; i < len; i++) {
			double acc = 0;
			for (int j = 0; j < k; j++)
				acc += g[j] * line[((i - (j - k / 2)) % len + len) % len];
			base[(size_t)i * step] = acc / sum;
		}
	}
}

/* The truth blurred by the demo's PSF (a separable Gaussian, so three 1D
 * passes), periodic at the faces, in double: the same numbers on every run,
 * so the same Poisson draws. Through FFTW the last bits followed its plans,
 * and a few voxels of the image changed by a count from run to run. */
static int blur(const float *truth, const double sigma[3], float *out)
{
	size_t n = (size_t)NZ * NY * NX;
	double *v = malloc(n * sizeof *v), *line = malloc((NZ + NY + NX) * sizeof *line);
	if (!v || !line) {
		free(v);
		free(line);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = truth[i];
	blur_axis(v, line, (size_t)NZ * NY, NX, 1, NX, PX, sigma[2]);
	blur_axis(v, line, (size_t)NZ * NX, (size_t)NY * NX, NX, NY, PY, sigma[1]);
	blur_axis(v, line, (size_t)NY * NX, n, (size_t)NY * NX, NZ, PZ, sigma[0]);
	for (size_t i = 0; i < n; i++)
		out[i] = (float)v[i];
	free(v);
	free(line);
	return 0;
}

/* Writes a float32 volume in memory through an io writer, chunk by chunk. */
static int write_volume(const char *path, const float *v, const int64_t shape[3],
			const int64_t chunks[3], halo_dtype_kind_t kind, halo_error_t *err)
{
	halo_volume_info_t info = {.ndim = 3, .dtype = {kind, 0}, .voxel = {1, 1, 1},
				   .unit = "micrometer"};
	memcpy(info.shape, shape, sizeof info.shape);
	memcpy(info.chunks, chunks, sizeof info.chunks);
	halo_writer_opts_t wo = {.format = halo_format_from_path(path),
				 .ome_tiff = halo_path_ome_tiff(path),
				 .codec = HALO_CODEC_DEFAULT};
	/* Under a temporary name and renamed into place, like every output:
	 * an interrupted demo leaves no half-written volume. */
	halo_output_t *out;
	halo_writer_t *w = NULL;
	int rc = halo_output_begin(path, 1, &out, err);
	if (rc)
		return rc;
	if ((rc = halo_writer_create(halo_output_tmp_path(out), &info, &wo, &w, err))) {
		halo_error_replace(err, halo_output_tmp_path(out), path);
		halo_output_abort(out);
		return rc;
	}
	size_t n = (size_t)(chunks[0] * chunks[1] * chunks[2]);
	float *f = malloc(n * sizeof *f);
	void *buf = malloc(n * halo_dtype_size(info.dtype));
	if (!f || !buf)
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory");
	for (int64_t cz = 0; !rc && cz * chunks[0] < shape[0]; cz++)
		for (int64_t cy = 0; !rc && cy * chunks[1] < shape[1]; cy++)
			for (int64_t cx = 0; !rc && cx * chunks[2] < shape[2]; cx++) {
				memset(f, 0, n * sizeof *f);
				for (int64_t z = 0; z < chunks[0] && cz * chunks[0] + z < shape[0]; z++)
					for (int64_t y = 0; y < chunks[1] && cy * chunks[1] + y < shape[1]; y++) {
						int64_t gx = cx * chunks[2];
						int64_t nx = shape[2] - gx < chunks[2] ? shape[2] - gx : chunks[2];
						memcpy(f + (size_t)((z * chunks[1] + y) * chunks[2]),
						       v + (size_t)(((cz * chunks[0] + z) * shape[1] + cy * chunks[1] + y) *
								    shape[2] + gx),
						       (size_t)nx * sizeof *f);
					}
				halo_dtype_convert(f, HALO_F4, buf, kind, n);
				int64_t idx[3] = {cz, cy, cx};
				rc = halo_writer_write_chunk(w, idx, buf, err);
				if (!rc && halo_interrupted())
					rc = halo_error_set(err, HALO_EINTR, "interrupted; %s was not "
							    "written", path);
			}
	if (!rc)
		rc = halo_writer_finish(w, err);
	halo_writer_close(w);
	if (!rc)
		rc = halo_output_commit(out, err);
	else {
		halo_error_replace(err, halo_output_tmp_path(out), path);
		halo_output_abort(out);
	}
	free(f);
	free(buf);
	return rc;
}

/* Reads a whole float32 volume back (the deconvolved result). */
static int read_volume(const char *path, float *v, halo_error_t *err)
{
	halo_reader_t *r;
	int rc = halo_reader_open(path, &r, err);
	if (rc)
		return rc;
	const halo_volume_info_t *info = halo_reader_info(r);
	const int64_t *c = info->chunks, *s = info->shape;
	size_t n = (size_t)(c[0] * c[1] * c[2]);
	float *f = malloc(n * sizeof *f);
	void *buf = malloc(n * halo_dtype_size(info->dtype));
	if (!f || !buf)
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory");
	for (int64_t cz = 0; !rc && cz * c[0] < s[0]; cz++)
		for (int64_t cy = 0; !rc && cy * c[1] < s[1]; cy++)
			for (int64_t cx = 0; !rc && cx * c[2] < s[2]; cx++) {
				int64_t idx[3] = {cz, cy, cx};
				if ((rc = halo_reader_read_chunk(r, idx, buf, err)))
					break;
				halo_dtype_convert(buf, info->dtype.kind, f, HALO_F4, n);
				for (int64_t z = 0; z < c[0] && cz * c[0] + z < s[0]; z++)
					for (int64_t y = 0; y < c[1] && cy * c[1] + y < s[1]; y++) {
						int64_t gx = cx * c[2], nx = s[2] - gx < c[2] ? s[2] - gx : c[2];
						memcpy(v + (size_t)(((cz * c[0] + z) * s[1] + cy * c[1] + y) * s[2] + gx),
						       f + (size_t)((z * c[1] + y) * c[2]), (size_t)nx * sizeof *f);
					}
			}
	free(f);
	free(buf);
	halo_reader_close(r);
	return rc;
}

/* Relative L2 error of x against the truth after the best scaling of x
 * (deconvolution preserves flux only approximately). */
static double error_vs_truth(const float *x, const float *t, size_t n, double offset)
{
	double xt = 0, xx = 0, tt = 0;
	for (size_t i = 0; i < n; i++) {
		double a = x[i] - offset;
		xt += a * t[i];
		xx += a * a;
		tt += (double)t[i] * t[i];
	}
	double scale = xx > 0 ? xt / xx : 0, e = 0;
	for (size_t i = 0; i < n; i++) {
		double d = scale * (x[i] - offset) - t[i];
		e += d * d;
	}
	return sqrt(e / tt);
}

/* The demo replaces its own files on every run, but never a user's: a
 * folder that holds one of its file names is the demo's only if a run
 * marked it so. The names are checked once the folder exists, so that a
 * DIR spelled through a folder that did not exist yet ("new/..") names
 * what it will. *fresh: 2 where this run made the folder, 1 where it
 * marked a folder that was there, 0 where an earlier demo had (see
 * unclaim_folder). */
static int claim_folder(const char *dir, const char *const *paths, int *fresh, halo_error_t *err)
{
	char mark[4096];
	snprintf(mark, sizeof mark, "%s/.halo-demo", dir);
	*fresh = 0;
	int made = !halo_fs_exists(dir);
	int rc = halo_fs_mkdirs(dir, err);
	if (rc)
		return rc;
	if (halo_fs_exists(mark))
		return HALO_OK;
	for (const char *const *p = paths; *p; p++)
		if (halo_fs_exists(*p)) {
			if (made)
				rmdir(dir); /* only where empty */
			return halo_error_set(err, HALO_EEXIST, "%s: already exists and is not from "
					      "'halo demo'; give the demo another folder", *p);
		}
	static const char text[] = "halo demo writes here and replaces its files on each run\n";
	*fresh = made ? 2 : 1;
	return halo_fs_write(mark, text, sizeof text - 1, err);
}

/* A demo that failed or was interrupted takes back what it added to a
 * folder that was not the demo's before it: its own names, which were not
 * there, the marker, and the folder where it made it and it is empty (one
 * of an earlier demo keeps the files the next run replaces). */
static void unclaim_folder(const char *dir, const char *const *paths, int fresh)
{
	if (!fresh)
		return;
	char mark[4096];
	snprintf(mark, sizeof mark, "%s/.halo-demo", dir);
	for (const char *const *p = paths; *p; p++)
		halo_fs_remove_tree(*p);
	halo_fs_remove_tree(mark);
	if (fresh == 2)
		rmdir(dir);
}

int halo_cli_demo(int argc, char **argv)
{
	struct halo_deconv_cli o;
	int status;
	if (halo_deconv_cli_parse(argc, argv, "demo", demo_help, 0, 1, &o, &status))
		return status;
	if (halo__runtime_launched_ranks() > 1) {
		/* Every rank would write the same sample files at once. */
		halo_cli_usage_line("demo runs in one process; run it without mpirun");
		return HALO_EXIT_FAIL;
	}
	if (o.dtype || o.overwrite) {
		/* Shared with deconvolve's parser, but not the demo's: it replaces
		 * its own files, and its error figures are for float32. */
		halo_cli_usage_line("demo: %s is for 'halo deconvolve'; see 'halo demo --help'",
				    o.dtype ? "--dtype" : "--overwrite");
		return HALO_EXIT_USAGE;
	}
	if (o.nchunks == 1) { /* N: every axis, as deconvolve takes it */
		o.chunks[1] = o.chunks[2] = o.chunks[0];
		o.nchunks = 3;
	}
	if (o.nchunks > 0 && o.nchunks != 3) {
		halo_cli_usage_line("demo: --chunks takes Z,Y,X, N or auto (the sample is 3D)");
		return HALO_EXIT_USAGE;
	}
	const char *dir = o.args[0] ? o.args[0] : "halo-demo";
	if (!o.nchunks) {
		o.chunks[0] = 48;
		o.chunks[1] = o.chunks[2] = 128;
		o.nchunks = 3;
	}
	o.overwrite = 1;
	halo_signals_install();

	halo_error_t err = {0};
	size_t n = (size_t)NZ * NY * NX;
	float *truth = calloc(n, sizeof *truth), *blurred = malloc(n * sizeof *blurred);
	float *psf = malloc((size_t)PZ * PY * PX * sizeof *psf);
	char image_path[4096], psf_path[4096], truth_path[4096], out_path[4096];
	const char *const ours[] = {image_path, psf_path, truth_path, out_path, NULL};
	int fresh = 0;
	status = HALO_EXIT_FAIL;
	if (!truth || !blurred || !psf) {
		halo_error_set(&err, HALO_ENOMEM, "out of memory");
		goto fail;
	}
	snprintf(image_path, sizeof image_path, "%s/image.zarr", dir);
	snprintf(psf_path, sizeof psf_path, "%s/psf.tif", dir);
	snprintf(truth_path, sizeof truth_path, "%s/truth.zarr", dir);
	snprintf(out_path, sizeof out_path, "%s/deconvolved.ome.zarr", dir);
	if (halo_cli_trace_check(&o.rt, ours, &err) || claim_folder(dir, ours, &fresh, &err))
		goto fail;

	make_truth(truth);
	int pn[3] = {PZ, PY, PX};
	const double sigma[3] = {2.6, 1.3, 1.3};
	halo_cli_gaussian_psf(psf, pn, sigma);
	if (blur(truth, sigma, blurred)) {
		halo_error_set(&err, HALO_ENOMEM, "out of memory blurring the specimen");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		/* A stream per voxel: the noise must not shift when a different
		 * FFT plan rounds the blurred value (and so the number of draws
		 * of one voxel) differently. */
		rng_state = (i + 1) * 0x9e3779b97f4a7c15ull ^ 0xd1b54a32d192ed03ull;
		blurred[i] = (float)poisson(blurred[i] + background);
	}
	int64_t shape[3] = {NZ, NY, NX}, pshape[3] = {PZ, PY, PX};
	/* The sample files in the default chunks: --chunks (or auto) is the
	 * run's, which rechunks them. */
	static const int64_t stored[3] = {48, 128, 128};
	if (write_volume(image_path, blurred, shape, stored, HALO_U2, &err) ||
	    write_volume(truth_path, truth, shape, stored, HALO_F4, &err) ||
	    write_volume(psf_path, psf, pshape, pshape, HALO_F4, &err))
		goto fail;
	if (!o.quiet)
		printf("demo: wrote %s (%dx%dx%d uint16, blurred + Poisson noise), %s (%dx%dx%d), %s\n",
		       image_path, NZ, NY, NX, psf_path, PZ, PY, PX, truth_path);

	struct halo_deconv_result res;
	o.args[1] = psf_path;
	status = halo_deconv_cli_run(&o, image_path, psf, pn, out_path, &res, &err);
	if (status != HALO_EXIT_OK)
		goto out;
	status = HALO_EXIT_FAIL;
	double before = error_vs_truth(blurred, truth, n, background);
	if (read_volume(out_path, blurred, &err))
		goto fail;
	/* RL keeps the image's flux, background included. */
	double after = error_vs_truth(blurred, truth, n, background);
	if (!o.quiet) {
		char mode[64];
		if (res.exact)
			snprintf(mode, sizeof mode, "exact mode");
		else
			snprintf(mode, sizeof mode, "overlap mode, depth %lld,%lld,%lld",
				 (long long)res.depth[0], (long long)res.depth[1], (long long)res.depth[2]);
		printf("demo: %lldx%lldx%lld in %lldx%lldx%lld chunks, %s, %ld iterations, "
		       "%d CPU + %d CUDA workers\n",
		       (long long)res.shape[0], (long long)res.shape[1], (long long)res.shape[2],
		       (long long)res.chunks[0], (long long)res.chunks[1], (long long)res.chunks[2],
		       mode, o.iterations, res.ncpu, res.ncuda);
		printf("demo: %.2f s, %.1f Mvox*iter/s\n", res.seconds, res.mvox_iter_per_s);
		printf("demo: error against the truth (relative L2): image %.3f -> deconvolved %.3f\n",
		       before, after);
		printf("demo: open %s in napari (napari --plugin napari-ome-zarr %s)\n", out_path,
		       out_path);
	}
	if (!(after < before)) {
		halo_error_set(&err, HALO_ERUNTIME,
			       "deconvolution did not reduce the error (%.3f -> %.3f)", before, after);
		goto fail;
	}
	status = HALO_EXIT_OK;
	goto out;
fail:
	halo_cli_error(&err);
out:
	if (status != HALO_EXIT_OK)
		unclaim_folder(dir, ours, fresh);
	free(truth);
	free(blurred);
	free(psf);
	return status;
}
