/* Axis partitions: regular grids, block lookup, and dask's
 * ensure_minimum_chunksize (the expected blocks are what dask 2022.12's
 * function returns for the same input). */
#include "config.h"
#include "codelets/gather.h"
#include "io/zarr.h"
#include "runtime/distribution.h"
#include "runtime/deconvolve.h"
#include "runtime/grid.h"
#include "tests/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct halo_axis from_sizes(const int64_t *sizes, int n)
{
	struct halo_axis a = {.nblocks = n, .start = calloc((size_t)n + 1, sizeof(int64_t))};
	for (int i = 0; i < n; i++)
		a.start[i + 1] = a.start[i] + sizes[i];
	a.n = a.start[n];
	return a;
}

static void check_min_blocks(int64_t size, const int64_t *in, int nin, const int64_t *want,
			     int nwant)
{
	struct halo_axis from = from_sizes(in, nin), got = {0};
	int rc = halo_axis_min_blocks(&got, &from, size);
	char g[256] = "", w[256] = "";
	size_t gl = 0, wl = 0;
	for (int64_t i = 0; rc == 0 && i < got.nblocks; i++)
		gl += (size_t)snprintf(g + gl, sizeof g - gl, "%lld ",
				       (long long)(got.start[i + 1] - got.start[i]));
	for (int i = 0; i < nwant; i++)
		wl += (size_t)snprintf(w + wl, sizeof w - wl, "%lld ", (long long)want[i]);
	tap_str_eq(g, w, "ensure_minimum_chunksize");
	halo_axis_free(&from);
	halo_axis_free(&got);
}

static double haloed_voxels(const int64_t c[3], const int depth[3])
{
	double v = 1;
	for (int d = 0; d < 3; d++)
		v *= (double)(c[d] + 2 * depth[d]);
	return v;
}

static int64_t chunk_count(const int64_t shape[3], const int64_t c[3])
{
	int64_t n = 1;
	for (int d = 0; d < 3; d++)
		n *= (shape[d] + c[d] - 1) / c[d];
	return n;
}

static void rl_auto(const int64_t shape[3], const int depth[3], uint64_t memory, int ncpu,
		    uint64_t gpu_bytes, int ngpu, double gpu_gbs, int64_t out[3])
{
	halo_deconv_machine_t m = {.memory = memory, .ncpu = ncpu, .ngpu = ngpu,
				   .gpu_bytes = gpu_bytes, .gpu_gbs = gpu_gbs};
	halo_deconv_chunks_auto(shape, depth, &m, out);
}

/* deconvolve's --chunks auto: a chunk in flight per CPU worker as the
 * executor counts it (34 bytes per haloed voxel, after a quarter of the
 * budget for shared input layers), 64 of the smallest GPU's memory (90 %
 * of it), two chunks
 * per worker; a small GPU makes the chunks smaller, no GPU leaves them.
 * GPUs that would do 80 % of the work size the chunks alone. */
static void check_rl_auto(void)
{
	const int64_t shape[3] = {950, 2048, 2048};
	const int depth[3] = {15, 15, 15};
	uint64_t gib = UINT64_C(1) << 30;
	int64_t cpu[3], gpu[3], big_gpu[3], cpu3[3];
	rl_auto(shape, depth, 64 * gib, 2, 0, 0, 0, cpu);
	rl_auto(shape, depth, 64 * gib, 2, 4 * gib, 1, 20, gpu);
	/* 16 GiB over 2 CPUs: 0.18 G voxels a task; an 80 GiB GPU allows 1.1 G.
	 * Compared with 3 CPU workers so that both want 6 chunks; the GPU is
	 * given 2 cores' bandwidth, so the CPUs do a third of the work. */
	rl_auto(shape, depth, 24 * gib, 3, 0, 0, 0, cpu3);
	rl_auto(shape, depth, 16 * gib, 2, 80 * gib, 1, 2 * HALO_CORE_GBS, big_gpu);
	tap_ok(haloed_voxels(cpu, depth) <= 0.75 * 64.0 * gib / 2 / 34,
	       "RL auto, CPU only: haloed chunk %.0f voxels <= 3/4 of the worker's share / 34 B",
	       haloed_voxels(cpu, depth));
	tap_ok(haloed_voxels(gpu, depth) <= 0.9 * 4.0 * gib / 64 &&
		       haloed_voxels(gpu, depth) < haloed_voxels(cpu, depth),
	       "RL auto, a 4 GiB GPU: haloed chunk %.0f voxels <= 90 %% of it / 64 B, smaller than "
	       "CPU only", haloed_voxels(gpu, depth));
	tap_ok(memcmp(big_gpu, cpu3, sizeof cpu3) == 0,
	       "RL auto, an 80 GiB GPU as fast as 2 cores: the CPU share decides (%lldx%lldx%lld)",
	       (long long)big_gpu[0], (long long)big_gpu[1], (long long)big_gpu[2]);
	int64_t small[3];
	rl_auto((int64_t[]){64, 64, 64}, (int[]){2, 2, 2}, 64 * gib, 4, 80 * gib, 2,
		8 * HALO_CORE_GBS, small);
	tap_ok(chunk_count((int64_t[]){64, 64, 64}, small) >= 12,
	       "RL auto, 4 CPUs + 2 GPUs on 64^3: %lld chunks, two per worker",
	       (long long)chunk_count((int64_t[]){64, 64, 64}, small));

	/* The device machine: 16 cores, an 80 GB H100 (3352 GB/s), RAM/4 of
	 * 32 GiB, the seed's volume and depth; then three times the budget. */
	const int seed_depth[3] = {64, 64, 64};
	int64_t h100[3], h100_gpu_alone[3], h100_as_cpus[3], h100_96[3];
	rl_auto(shape, seed_depth, 32 * gib, 16, 80 * gib, 1, 3352, h100);
	rl_auto(shape, seed_depth, 32 * gib, 0, 80 * gib, 1, 3352, h100_gpu_alone);
	rl_auto(shape, seed_depth, 32 * gib, 16, 80 * gib, 1, 0, h100_as_cpus);
	rl_auto(shape, seed_depth, 96 * gib, 16, 80 * gib, 1, 3352, h100_96);
	double hv = haloed_voxels(h100, seed_depth), hv96 = haloed_voxels(h100_96, seed_depth);
	double all_cpus = haloed_voxels(h100_as_cpus, seed_depth) *
			  (double)chunk_count(shape, h100_as_cpus);
	/* The executor's count per chunk in flight: 34 B per haloed voxel,
	 * after a quarter of the budget kept for shared input layers. */
	tap_ok(2 * 34 * hv <= 0.75 * 32.0 * gib && chunk_count(shape, h100) >= 4 &&
		       hv * (double)chunk_count(shape, h100) < 0.75 * all_cpus,
	       "RL auto, 16 cores + an H100: %lldx%lldx%lld (%lld chunks), two in flight within "
	       "32 GiB, with under 0.75x the haloed voxels of chunks for 17 equal workers "
	       "(%lldx%lldx%lld)",
	       (long long)h100[0], (long long)h100[1], (long long)h100[2],
	       (long long)chunk_count(shape, h100), (long long)h100_as_cpus[0],
	       (long long)h100_as_cpus[1], (long long)h100_as_cpus[2]);
	tap_ok(memcmp(h100, h100_gpu_alone, sizeof h100) == 0,
	       "RL auto, the H100 alone (--ncpu 0): the same chunks");
	tap_ok(2 * 34 * hv96 <= 0.75 * 96.0 * gib && hv96 <= 0.9 * 80.0 * gib / 64 && hv96 > hv &&
		       hv96 * (double)chunk_count(shape, h100_96) < hv * (double)chunk_count(shape, h100),
	       "RL auto, the H100 with --memory 96G: larger chunks (%lldx%lldx%lld), fewer haloed "
	       "voxels", (long long)h100_96[0], (long long)h100_96[1], (long long)h100_96[2]);
	/* One CPU worker and a huge budget: two chunks of 512x1024x1024
	 * float32, 2 GiB, over blosc's limit: computed whole, stored in
	 * pieces (they were halved). */
	int64_t huge[3];
	rl_auto((int64_t[]){1024, 1024, 1024}, (int[]){4, 4, 4}, 1024 * gib, 1, 0, 0, 0, huge);
	tap_ok(huge[0] == 512 && huge[1] == 1024 && huge[2] == 1024,
	       "RL auto is not bound by blosc's 2 GiB (%lldx%lldx%lld)", (long long)huge[0],
	       (long long)huge[1], (long long)huge[2]);
}

/* Stored chunks within blosc's limit: the largest axis halved, rounded up,
 * until they fit; chunks that fit stay. */
static void check_chunks_fit(void)
{
	static const struct {
		int64_t in[3], want[3];
		size_t elsize;
	} cases[] = {
		{{950, 1024, 1024}, {950, 512, 1024}, 4},
		{{512, 1024, 1024}, {512, 512, 1024}, 4},
		{{511, 1024, 1024}, {511, 1024, 1024}, 4},
		{{2001, 1024, 1024}, {1001, 512, 1024}, 4},
		{{1, 1, 600000001}, {1, 1, 300000001}, 4},
		{{64, 256, 256}, {64, 256, 256}, 8},
		{{4096, 4096, 4096}, {512, 1024, 1024}, 2},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t c[3];
		memcpy(c, cases[i].in, sizeof c);
		int changed = halo_zarr_chunks_fit(c, cases[i].elsize);
		tap_ok(memcmp(c, cases[i].want, sizeof c) == 0 &&
			       changed == (memcmp(cases[i].in, cases[i].want, sizeof c) != 0),
		       "%lldx%lldx%lld of %zu bytes stored as %lldx%lldx%lld",
		       (long long)cases[i].in[0], (long long)cases[i].in[1],
		       (long long)cases[i].in[2], cases[i].elsize, (long long)c[0],
		       (long long)c[1], (long long)c[2]);
	}
}

/* --chunks auto: the properties it promises, on volumes of the seed's
 * size and on small ones. */
static void check_auto(const int64_t shape[3], const int depth[3], uint64_t per_task,
		       int64_t min_chunks)
{
	int64_t c[3];
	int over = halo_chunks_auto(shape, depth, 24.0, per_task, min_chunks, c);
	double haloed = 24.0;
	int64_t n = 1;
	int ok_sizes = 1, at_floor = 1;
	for (int d = 0; d < 3; d++) {
		/* 4 x the depth, rounded up to a multiple of 8. */
		int64_t floor = 8;
		while (floor < 4 * depth[d])
			floor += 8;
		floor = floor < shape[d] ? floor : shape[d];
		haloed *= (double)(c[d] + 2 * depth[d]);
		n *= (shape[d] + c[d] - 1) / c[d];
		/* Multiples of 8 unless the one above would end the axis in a
		 * sliver (a last chunk under half the others), and no sliver. */
		int64_t up = (c[d] + 7) / 8 * 8, upl = shape[d] % up, last = shape[d] % c[d];
		ok_sizes &= c[d] >= floor && c[d] <= shape[d] &&
			    (c[d] % 8 == 0 || c[d] == shape[d] || (upl && 2 * upl < up)) &&
			    (c[d] == floor || !last || 2 * last >= c[d]);
		at_floor &= c[d] == floor;
	}
	tap_ok(ok_sizes, "auto %lldx%lldx%lld: chunks %lldx%lldx%lld within bounds, multiples of 8 "
	       "or equal parts, no sliver",
	       (long long)shape[0], (long long)shape[1], (long long)shape[2], (long long)c[0],
	       (long long)c[1], (long long)c[2]);
	tap_ok(at_floor || (haloed <= (double)per_task && n >= min_chunks),
	       "... at the floor, or the haloed block fits (%.0f MB of %.0f MB) and there are %lld >= %lld chunks",
	       haloed / 1e6, (double)per_task / 1e6, (long long)n, (long long)min_chunks);
	tap_ok(over == (haloed > (double)per_task),
	       "... and says %s the budget (%d)", over ? "it overruns" : "it keeps within", over);
}

/* Every chunk of a regular grid has one owner in [0, n); every rank owns
 * at least one chunk; owners never decrease along an axis (blocks are
 * contiguous); and the rank grid is the expected one. */
static void check_distribution(const int64_t shape[3], const int64_t chunk[3], int n,
			       const int want_p[3])
{
	int64_t nc[3];
	struct halo_axis ref[3];
	for (int a = 0; a < 3; a++) {
		halo_axis_regular(&ref[a], shape[a], chunk[a]);
		nc[a] = ref[a].nblocks;
	}
	halo_distribution_t d;
	halo_distribution_make(ref, n, &d);
	int owned[64] = {0}, bad = 0;
	for (int64_t z = 0; z < nc[0]; z++)
		for (int64_t y = 0; y < nc[1]; y++)
			for (int64_t x = 0; x < nc[2]; x++) {
				int64_t j[3] = {z, y, x}, o[3], dims[3];
				for (int a = 0; a < 3; a++) {
					o[a] = j[a] * chunk[a];
					dims[a] = shape[a] - o[a] < chunk[a] ? shape[a] - o[a] : chunk[a];
				}
				int r = halo_distribution_owner(&d, o, dims);
				if (r < 0 || r >= n) {
					bad++;
					continue;
				}
				owned[r]++;
				/* the rank coordinates of the next chunk along each axis
				 * are not smaller */
				for (int a = 0; a < 3 && !d.linear; a++) {
					if (j[a] + 1 >= nc[a])
						continue;
					int64_t o2[3] = {o[0], o[1], o[2]};
					o2[a] += chunk[a];
					int64_t d2[3] = {dims[0], dims[1], dims[2]};
					d2[a] = shape[a] - o2[a] < chunk[a] ? shape[a] - o2[a] : chunk[a];
					int r2 = halo_distribution_owner(&d, o2, d2);
					int stride = a == 0 ? d.p[1] * d.p[2] : a == 1 ? d.p[2] : 1;
					bad += (r2 / stride) % d.p[a] < (r / stride) % d.p[a];
				}
			}
	int empty = 0, lo = owned[0], hi = owned[0];
	for (int r = 0; r < n; r++) {
		empty += owned[r] == 0;
		lo = owned[r] < lo ? owned[r] : lo;
		hi = owned[r] > hi ? owned[r] : hi;
	}
	for (int a = 0; a < 3; a++)
		halo_axis_free(&ref[a]);
	if (!want_p) {
		/* dealt out in runs of the flattened grid: nearly equal */
		tap_ok(d.linear && bad == 0 && empty == 0 && hi - lo <= 1,
		       "distribution of %lldx%lldx%lld over %d ranks: runs of %d to %d chunks",
		       (long long)shape[0], (long long)shape[1], (long long)shape[2], n, lo, hi);
		return;
	}
	tap_ok(!d.linear && bad == 0 && empty == 0 && d.p[0] == want_p[0] && d.p[1] == want_p[1] &&
	       d.p[2] == want_p[2],
	       "distribution of %lldx%lldx%lld in %lldx%lldx%lld chunks over %d ranks: grid %dx%dx%d "
	       "(want %dx%dx%d), %d bad, %d ranks empty",
	       (long long)shape[0], (long long)shape[1], (long long)shape[2], (long long)chunk[0],
	       (long long)chunk[1], (long long)chunk[2], n, d.p[0], d.p[1], d.p[2], want_p[0],
	       want_p[1], want_p[2], bad, empty);
}

/* numpy.pad's index for voxel g of an axis of n: mode "symmetric"
 * (reflect), "wrap" (periodic), "edge" (nearest); -1 for a constant or
 * none beyond the axis. Written out here, apart from halo_boundary_map. */
static int64_t padded_index(int64_t g, int64_t n, int boundary)
{
	if (g >= 0 && g < n)
		return g;
	if (boundary == HALO_BOUNDARY_NEAREST)
		return g < 0 ? 0 : n - 1;
	if (boundary == HALO_BOUNDARY_PERIODIC) {
		while (g < 0)
			g += n;
		return g % n;
	}
	if (boundary != HALO_BOUNDARY_REFLECT)
		return -1;
	/* Unfold: ... 1 0 | 0 1 ... n-1 | n-1 n-2 ... */
	while (g < 0 || g >= n)
		g = g < 0 ? -1 - g : 2 * n - 1 - g;
	return g;
}

/* halo_axis_blocks_touched against the definition, voxel by voxel: the
 * sorted distinct blocks that [lo, hi)'s voxels map to, over irregular
 * axes, ranges reaching several times around them, and every boundary. */
static void check_blocks_touched(void)
{
	unsigned seed = 7;
	int bad = 0, cases = 0;
	for (int round = 0; round < 3000; round++) {
		int64_t sizes[12];
		int nb = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 12;
		for (int i = 0; i < nb; i++)
			sizes[i] = 1 + ((seed = seed * 1103515245u + 12345u) >> 16) % 7;
		struct halo_axis a = from_sizes(sizes, nb);
		int64_t span = 3 * a.n + 5;
		int64_t lo = (int64_t)(((seed = seed * 1103515245u + 12345u) >> 16) % (2 * span)) - span;
		int64_t hi = lo + (int64_t)(((seed = seed * 1103515245u + 12345u) >> 16) % span);
		for (int b = HALO_BOUNDARY_NONE; b <= HALO_BOUNDARY_CONSTANT; b++) {
			int64_t got[12], want[12], ngot, nwant = 0;
			int seen[12] = {0};
			for (int64_t g = lo; g < hi; g++) {
				int64_t m = padded_index(g, a.n, b), k = 0;
				while (m >= 0 && m >= a.start[k + 1])
					k++;
				if (m >= 0)
					seen[k] = 1;
			}
			for (int i = 0; i < nb; i++)
				if (seen[i])
					want[nwant++] = i;
			ngot = halo_axis_blocks_touched(&a, lo, hi, b, got);
			cases++;
			if (ngot != nwant || memcmp(got, want, (size_t)nwant * sizeof *got)) {
				if (!bad++)
					tap_diag("axis of %d blocks (%lld voxels), [%lld, %lld), "
						 "boundary %d: %lld blocks, want %lld", nb,
						 (long long)a.n, (long long)lo, (long long)hi, b,
						 (long long)ngot, (long long)nwant);
			}
		}
		halo_axis_free(&a);
	}
	tap_ok(!bad, "blocks a range touches, through every boundary: %d of %d cases right",
	       cases - bad, cases);
}

int main(void)
{
	/* a cube: the slowest axis is cut first */
	check_distribution((int64_t[]){64, 64, 64}, (int64_t[]){16, 16, 16}, 2, (int[]){2, 1, 1});
	check_distribution((int64_t[]){64, 64, 64}, (int64_t[]){16, 16, 16}, 4, (int[]){2, 2, 1});
	check_distribution((int64_t[]){64, 64, 64}, (int64_t[]){16, 16, 16}, 8, (int[]){2, 2, 2});
	/* a thin volume is cut across its large axes (smaller faces) */
	check_distribution((int64_t[]){40, 2048, 2048}, (int64_t[]){40, 256, 256}, 4,
			   (int[]){1, 2, 2});
	/* 3 ranks over uneven chunk counts (issue #10's non-dividing grids) */
	check_distribution((int64_t[]){40, 48, 56}, (int64_t[]){20, 24, 28}, 3, NULL);
	check_distribution((int64_t[]){50, 48, 56}, (int64_t[]){10, 24, 28}, 3, (int[]){3, 1, 1});
	/* A short last chunk: blocks of voxels put two chunks' centres in
	 * one rank's block and none in the middle rank's (520 planes in 256s:
	 * 0, 2, 2); blocks of chunks give each one. 9 in 4s: 3 chunks an
	 * axis, where linear mode dealt by chunks of ceil(9/3) = 3. */
	check_distribution((int64_t[]){520, 64, 64}, (int64_t[]){256, 64, 64}, 3, (int[]){3, 1, 1});
	check_distribution((int64_t[]){9, 9, 9}, (int64_t[]){4, 4, 4}, 3, (int[]){3, 1, 1});
	check_distribution((int64_t[]){9, 9, 9}, (int64_t[]){4, 4, 4}, 5, NULL);
	check_distribution((int64_t[]){9, 9, 9}, (int64_t[]){4, 4, 4}, 7, NULL);
	/* 3x3x3 chunks on 4 ranks: any grid gives one rank 12 (of 27), runs
	 * give 7 at most. */
	check_distribution((int64_t[]){30, 50, 44}, (int64_t[]){10, 20, 16}, 4, NULL);
	/* too few chunks along the cheap axis: a grid that leaves no rank idle */
	check_distribution((int64_t[]){100, 100, 100}, (int64_t[]){100, 100, 25}, 4,
			   (int[]){1, 1, 4});
	check_auto((int64_t[]){950, 2048, 2048}, (int[]){8, 16, 16}, UINT64_C(1) << 30, 32);
	check_auto((int64_t[]){950, 2048, 2048}, (int[]){8, 16, 16}, UINT64_C(64) << 20, 4);
	check_auto((int64_t[]){64, 192, 192}, (int[]){9, 11, 13}, UINT64_C(6) << 30, 4);
	check_auto((int64_t[]){20, 30, 1000}, (int[]){2, 2, 2}, UINT64_C(1) << 20, 2);
	check_auto((int64_t[]){5, 6, 7}, (int[]){1, 1, 1}, 1, 100);
	/* Axes that multiples of 8 would end in a sliver (100 in 32s, 130
	 * in 40s). */
	check_auto((int64_t[]){20, 100, 100}, (int[]){1, 1, 1}, UINT64_C(1) << 20, 6);
	check_auto((int64_t[]){33, 70, 130}, (int[]){1, 1, 1}, UINT64_C(1) << 20, 4);
	/* A tight budget: the floor, 4x each depth rounded up to 8
	 * (64x48x56), and the overrun said. */
	check_auto((int64_t[]){96, 256, 256}, (int[]){15, 11, 13}, UINT64_C(1) << 20, 4);
	check_rl_auto();
	check_chunks_fit();
	check_blocks_touched();
	int64_t c[3];
	halo_chunks_auto((int64_t[]){950, 2048, 2048}, (int[]){8, 16, 16}, 24.0, UINT64_C(1) << 30, 32, c);
	int64_t big = c[0] > c[1] ? c[0] : c[1], small = c[0] < c[1] ? c[0] : c[1];
	big = big > c[2] ? big : c[2];
	small = small < c[2] ? small : c[2];
	tap_ok(big <= 2 * small, "the largest axis is split first: near a cube (%lldx%lldx%lld)",
	       (long long)c[0], (long long)c[1], (long long)c[2]);
	struct halo_axis a = {0};
	halo_axis_regular(&a, 25, 10);
	tap_int_eq(a.nblocks, 3, "25 voxels in chunks of 10: 3 blocks");
	tap_int_eq(a.start[3], 25, "last block ends at the edge");
	tap_int_eq(halo_axis_find(&a, 0), 0, "voxel 0 in block 0");
	tap_int_eq(halo_axis_find(&a, 19), 1, "voxel 19 in block 1");
	tap_int_eq(halo_axis_find(&a, 24), 2, "voxel 24 in block 2");
	halo_axis_free(&a);

	check_min_blocks(10, (int64_t[]){20, 20, 1}, 3, (int64_t[]){20, 11, 10}, 3);
	check_min_blocks(3, (int64_t[]){1, 1, 3}, 3, (int64_t[]){5}, 1);
	check_min_blocks(5, (int64_t[]){8, 8, 4}, 3, (int64_t[]){8, 7, 5}, 3);
	check_min_blocks(4, (int64_t[]){6, 6, 6}, 3, (int64_t[]){6, 6, 6}, 3);
	check_min_blocks(9, (int64_t[]){6, 6, 5}, 3, (int64_t[]){17}, 1);

	struct halo_axis from = from_sizes((int64_t[]){2, 2}, 2), got = {0};
	tap_int_eq(halo_axis_min_blocks(&got, &from, 5), -1, "a halo deeper than the axis fails");
	halo_axis_free(&from);
	return tap_done();
}
