/* What `halo bench`'s workloads run on: a Gaussian PSF and a uint16 Zarr
 * volume written chunk by chunk (so its size is bounded by the disk, not
 * the memory), and the CPU side's peak bandwidth, measured. */
#include "config.h"
#include "cli/bench.h"
#include "io/volume.h"
#include "util/signals.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct copy_job {
	char *src, *dst;
	size_t len;
};

static void *copy_part(void *arg)
{
	struct copy_job *j = arg;
	memcpy(j->dst, j->src, j->len);
	return NULL;
}

/* The CPU side's peak: the best of 5 parallel copies of 512 MiB over every
 * core, counting bytes read and written (STREAM's copy convention). */
double bench_cpu_copy_gbs(int threads)
{
	size_t len = (size_t)512 << 20;
	char *src = malloc(len), *dst = malloc(len);
	if (!src || !dst || threads < 1 || threads > 256) {
		free(src);
		free(dst);
		return 0;
	}
	memset(src, 1, len);
	memset(dst, 2, len);
	double best = 0;
	for (int rep = 0; rep < 5; rep++) {
		pthread_t th[256];
		struct copy_job jobs[256];
		size_t part = len / (size_t)threads;
		double t0 = halo_now();
		int started = 0;
		for (int i = 0; i < threads; i++) {
			jobs[i] = (struct copy_job){src + part * (size_t)i, dst + part * (size_t)i, part};
			if (pthread_create(&th[started], NULL, copy_part, &jobs[i]) == 0)
				started++;
			else
				copy_part(&jobs[i]);
		}
		for (int i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		double gbs = 2.0 * (double)(part * (size_t)threads) / (halo_now() - t0) / 1e9;
		best = gbs > best ? gbs : best;
	}
	free(src);
	free(dst);
	return best;
}

/* The PSF (a Gaussian TIFF) and, unless --input names one, the volume. */
int bench_write_inputs(struct bench_ctx *b, halo_error_t *err)
{
	const struct bench_opts *o = b->o;
	int pn = (int)o->psf;
	snprintf(b->psf, sizeof b->psf, "%s/psf.tif", b->dir);
	halo_volume_info_t pinfo = {.ndim = 3, .dtype = {HALO_F4, 0}, .shape = {pn, pn, pn},
				    .chunks = {pn, pn, pn}, .voxel = {1, 1, 1}};
	halo_writer_opts_t pwo = {.format = HALO_FMT_TIFF};
	float *p = malloc((size_t)pn * pn * pn * sizeof *p);
	if (!p)
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	bench_gaussian_psf(p, pn);
	halo_writer_t *w;
	int rc = halo_writer_create(b->psf, &pinfo, &pwo, &w, err);
	if (!rc) {
		rc = halo_writer_write_chunk(w, (int64_t[3]){0, 0, 0}, p, err);
		if (!rc)
			rc = halo_writer_finish(w, err);
		halo_writer_close(w);
	}
	free(p);
	if (rc || o->input) {
		snprintf(b->input, sizeof b->input, "%s", o->input ? o->input : "");
		return rc;
	}

	/* A uint16 volume as microscopes write it (blosc lz4, byte shuffle):
	 * a smooth structure plus noise, so it compresses like real data. */
	snprintf(b->input, sizeof b->input, "%s/input.zarr", b->dir);
	const int64_t *s = o->size;
	halo_volume_info_t info = {.ndim = 3, .dtype = {HALO_U2, 0}, .voxel = {1, 1, 1},
				   .shape = {s[0], s[1], s[2]},
				   .chunks = {(s[0] + 1) / 2, (s[1] + 3) / 4, (s[2] + 3) / 4}};
	for (int d = 0; d < 3; d++)
		if (o->input_chunks[d])
			info.chunks[d] = o->input_chunks[d] < s[d] ? o->input_chunks[d] : s[d];
	halo_writer_opts_t wo = {.format = HALO_FMT_ZARR,
				 .codec = HALO_CODEC_DEFAULT};
	if (o->simulate) { /* halo-sim reads no chunk: the metadata is enough */
		if (!(rc = halo_writer_create(b->input, &info, &wo, &w, err)))
			rc = halo_writer_finish(w, err);
		halo_writer_close(w);
		return rc;
	}
	const int64_t *c = info.chunks;
	uint16_t *chunk = malloc((size_t)(c[0] * c[1] * c[2]) * sizeof *chunk);
	/* One sine per coordinate, not three per voxel: a seed-sized volume
	 * (4 Gvoxels) is written in seconds rather than minutes. */
	double *sz = malloc((size_t)(s[0] + s[1] + s[2]) * sizeof *sz), *sy = sz + s[0],
	       *sx = sy + s[1];
	if (!chunk || !sz) {
		free(chunk);
		free(sz);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	for (int64_t z = 0; z < s[0]; z++)
		sz[z] = sin(0.31 * z);
	for (int64_t y = 0; y < s[1]; y++)
		sy[y] = sin(0.23 * y);
	for (int64_t x = 0; x < s[2]; x++)
		sx[x] = sin(0.17 * x);
	if ((rc = halo_writer_create(b->input, &info, &wo, &w, err))) {
		free(chunk);
		free(sz);
		return rc;
	}
	uint64_t r = 0x2545f4914f6cdd1dull;
	for (int64_t cz = 0; !rc && cz * c[0] < s[0]; cz++)
		for (int64_t cy = 0; !rc && cy * c[1] < s[1]; cy++)
			for (int64_t cx = 0; !rc && cx * c[2] < s[2]; cx++) {
				size_t i = 0;
				/* Zarr stores edge chunks full size: past the edge is sin(0)'s 200. */
				for (int64_t z = cz * c[0]; z < (cz + 1) * c[0]; z++)
					for (int64_t y = cy * c[1]; y < (cy + 1) * c[1]; y++) {
						double zy = z < s[0] && y < s[1] ? 150 * sz[z] * sy[y] : 0;
						for (int64_t x = cx * c[2]; x < (cx + 1) * c[2]; x++) {
							r ^= r >> 12, r ^= r << 25, r ^= r >> 27;
							double v = 200 + zy * (x < s[2] ? sx[x] : 0);
							chunk[i++] = (uint16_t)(v + (double)(r >> 59));
						}
					}
				rc = halo_interrupted()
				     ? halo_error_set(err, HALO_EINTR, "interrupted")
				     : halo_writer_write_chunk(w, (int64_t[3]){cz, cy, cx}, chunk, err);
			}
	if (!rc)
		rc = halo_writer_finish(w, err);
	halo_writer_close(w);
	free(chunk);
	free(sz);
	return rc;
}

