/* The graph layer from C: expressions over an in-memory array
 * (halo_from_buffer) computed on StarPU equal what this test computes
 * element by element; lowering culls and fuses as documented; the fused
 * elementwise arithmetic follows numpy's rules (float32 stays float32,
 * integer arithmetic wraps, float to int truncates). */
#include "config.h"
#include "halo.h"
#include "codelets/elementwise.h"
#include "codelets/gather.h"
#include "io/volume.h"
#include "tasks/execute.h"
#include "tasks/plan.h"
#include "tests/tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NZ = 10, NY = 11, NX = 12 };

static void test_ew_math(void)
{
	/* LOAD uint16 -> CAST float32 -> SQRT; LOAD int8 -> ADD int8 (wraps). */
	struct halo_ew_prog p = {.nin = 1, .nops = 3, .in_kind = {HALO_U2}};
	p.ops[0] = (struct halo_ew_instr){.op = HALO_EWOP_LOAD, .kind = HALO_U2, .a = 0};
	p.ops[1] = (struct halo_ew_instr){.op = HALO_EWOP_CAST, .kind = HALO_F4, .a = 0};
	p.ops[2] = (struct halo_ew_instr){.op = HALO_EWOP_SQRT, .kind = HALO_F4, .a = 1, .b = -1};
	uint16_t in[1000];
	float out[1000];
	for (int i = 0; i < 1000; i++)
		in[i] = (uint16_t)(i * 65);
	const void *ins[1] = {in};
	halo_ew_run(&p, ins, out, 1000);
	int bad = 0;
	for (int i = 0; i < 1000; i++)
		bad += out[i] != sqrtf((float)in[i]);
	tap_int_eq(bad, 0, "uint16 -> float32 -> sqrt, 1000 elements across strips");

	struct halo_ew_prog q = {.nin = 1, .nops = 2, .in_kind = {HALO_I1}};
	q.ops[0] = (struct halo_ew_instr){.op = HALO_EWOP_LOAD, .kind = HALO_I1, .a = 0};
	q.ops[1] = (struct halo_ew_instr){.op = HALO_EWOP_ADD, .kind = HALO_I1, .a = 0, .b = 0};
	int8_t i8[3] = {100, -100, 7}, o8[3];
	const void *ins8[1] = {i8};
	halo_ew_run(&q, ins8, o8, 3);
	tap_ok(o8[0] == -56 && o8[1] == 56 && o8[2] == 14, "int8 add wraps as numpy: %d %d %d",
	       o8[0], o8[1], o8[2]);

	struct halo_ew_prog c = {.nin = 1, .nops = 2, .in_kind = {HALO_F4}};
	c.ops[0] = (struct halo_ew_instr){.op = HALO_EWOP_LOAD, .kind = HALO_F4, .a = 0};
	c.ops[1] = (struct halo_ew_instr){.op = HALO_EWOP_CAST, .kind = HALO_I2, .a = 0};
	float f[4] = {2.9f, -2.9f, 1e9f, NAN};
	int16_t o16[4];
	const void *insf[1] = {f};
	halo_ew_run(&c, insf, o16, 4);
	tap_ok(o16[0] == 2 && o16[1] == -2 && o16[3] == 0, "float -> int16 truncates: %d %d, NaN %d",
	       o16[0], o16[1], o16[3]);
}

static void test_types(void)
{
	tap_int_eq(halo_dtype_promote(HALO_U2, HALO_I2), HALO_I4, "uint16 + int16 = int32");
	tap_int_eq(halo_dtype_promote(HALO_U1, HALO_I1), HALO_I2, "uint8 + int8 = int16");
	tap_int_eq(halo_dtype_promote(HALO_I4, HALO_F4), HALO_F8, "int32 + float32 = float64");
	tap_int_eq(halo_dtype_promote(HALO_U2, HALO_F4), HALO_F4, "uint16 + float32 = float32");
	tap_int_eq(halo_dtype_promote(HALO_U4, HALO_I1), HALO_I8, "uint32 + int8 = int64");
	tap_int_eq(halo_dtype_promote(HALO_U8, HALO_I1), HALO_F8, "uint64 + int8 = float64");
	tap_int_eq(halo_dtype_promote(HALO_U8, HALO_U2), HALO_U8, "uint64 + uint16 = uint64");
	tap_int_eq(halo_dtype_promote(HALO_I8, HALO_F4), HALO_F8, "int64 + float32 = float64");
	double lohi[2] = {-10, 700};
	tap_int_eq(halo_ew_result(HALO_EW_CLIP, HALO_U2, HALO_U2, lohi, 0), HALO_I4,
		   "clip(uint16, -10, 700) is int32 (value-based casting)");
	tap_int_eq(halo_ew_result(HALO_EW_CLIP, HALO_I2, HALO_I2, lohi, 0), HALO_I2,
		   "clip(int16, -10, 700) stays int16");
	tap_int_eq(halo_ew_result(HALO_EW_DIV, HALO_U1, HALO_U1, NULL, 0), HALO_F8,
		   "uint8 / uint8 is float64");
}

static void test_compute(void)
{
	static float data[NZ * NY * NX];
	for (int i = 0; i < NZ * NY * NX; i++)
		data[i] = (float)((i * 37) % 101) * 0.5f - 7.0f;
	halo_graph_t *g = halo_graph_new();
	halo_error_t err = {0};
	halo_expr_t *a, *s, *t, *sum, *unused;
	int64_t shape[3] = {NZ, NY, NX}, chunks[3] = {4, 5, 6}, re[3] = {3, -1, 7};
	double p[2] = {2.0, 1.0};
	int rc = halo_from_buffer(g, data, HALO_F4, 3, shape, chunks, &a, &err);
	rc = rc ? rc : halo_rechunk(g, a, re, &t, &err);
	rc = rc ? rc : halo_map_blocks(g, HALO_EW_SCALE, t, NULL, p, 0, &s, &err);
	rc = rc ? rc : halo_map_blocks(g, HALO_EW_ABS, s, NULL, NULL, 0, &s, &err);
	rc = rc ? rc : halo_map_blocks(g, HALO_EW_SQRT, a, NULL, NULL, 0, &unused, &err);
	rc = rc ? rc : halo_reduce(g, s, HALO_RED_SUM, -1, &sum, &err);
	if (!tap_ok(rc == HALO_OK, "graph built: %s", err.msg)) {
		halo_graph_free(g);
		return;
	}
	halo_plan_t *plan;
	rc = halo_plan_build(g, &plan, &err);
	tap_ok(rc == HALO_OK && plan->n == 3,
	       "plan: source, rechunk, sum (sqrt culled): %d nodes", rc ? -1 : plan->n);
	int fused = 0;
	for (int i = 0; !rc && i < plan->n; i++)
		fused += plan->nodes[i]->kind == HALO_PN_REDUCE && plan->nodes[i]->prog.nops == 3;
	tap_int_eq(fused, 1, "scale and abs run inside the sum as one program (load, scale, abs)");
	halo_plan_free(plan);

	halo_compute_opts_t co = {.quiet = 1};
	halo_compute_stats_t st;
	rc = halo_graph_compute(g, &co, &st, &err);
	tap_ok(rc == HALO_OK, "computed: %s", err.msg);
	/* |2x+1| summed in float64 from float32 terms. */
	double want_abs = 0;
	for (int i = 0; i < NZ * NY * NX; i++)
		want_abs += fabs((double)(data[i] * 2.0f + 1.0f));
	tap_near(sum->result, want_abs, 1e-6 * want_abs, "sum |2x+1| over 12 x 3 x 2 rechunked chunks");
	tap_ok(sum->has_result && st.tasks > 0, "result set, %lld tasks", (long long)st.tasks);
	halo_graph_free(g);
}

static void test_store_axis(void)
{
	static uint16_t data[NZ * NY * NX];
	for (int i = 0; i < NZ * NY * NX; i++)
		data[i] = (uint16_t)((i * 7919) % 4093);
	const char *tmp = getenv("HALO_TEST_TMP");
	char path[4096];
	snprintf(path, sizeof path, "%s/graph-mip.zarr", tmp ? tmp : "/tmp");
	halo_graph_t *g = halo_graph_new();
	halo_error_t err = {0};
	halo_expr_t *a, *m, *o;
	int64_t shape[3] = {NZ, NY, NX}, chunks[3] = {3, 4, 5};
	halo_writer_opts_t wo = {.format = HALO_FMT_ZARR, .codec = {.id = HALO_CODEC_NONE}};
	int rc = halo_from_buffer(g, data, HALO_U2, 3, shape, chunks, &a, &err);
	rc = rc ? rc : halo_reduce(g, a, HALO_RED_MAX, 1, &m, &err);
	rc = rc ? rc : halo_to_store(g, m, path, NULL, -1, &wo, 1, &o, &err);
	halo_compute_opts_t co = {.quiet = 1};
	rc = rc ? rc : halo_graph_compute(g, &co, NULL, &err);
	tap_ok(rc == HALO_OK, "max along axis 1 stored: %s", err.msg);
	halo_graph_free(g);
	halo_reader_t *r;
	if (rc || halo_reader_open(path, &r, &err)) {
		tap_ok(0, "read back: %s", err.msg);
		return;
	}
	const halo_volume_info_t *info = halo_reader_info(r);
	tap_ok(info->ndim == 2 && info->shape[1] == NZ && info->shape[2] == NX &&
	       info->dtype.kind == HALO_U2, "2D uint16 result of shape %lldx%lld",
	       (long long)info->shape[1], (long long)info->shape[2]);
	int bad = 0;
	uint16_t *chunk = malloc(sizeof(uint16_t) * (size_t)(info->chunks[1] * info->chunks[2]));
	for (int64_t cz = 0; chunk && cz * info->chunks[1] < NZ; cz++)
		for (int64_t cx = 0; cx * info->chunks[2] < NX; cx++) {
			int64_t idx[3] = {0, cz, cx};
			if (halo_reader_read_chunk(r, idx, chunk, &err)) {
				bad++;
				continue;
			}
			for (int64_t z = cz * info->chunks[1]; z < NZ && z < (cz + 1) * info->chunks[1]; z++)
				for (int64_t x = cx * info->chunks[2]; x < NX && x < (cx + 1) * info->chunks[2]; x++) {
					uint16_t want = 0;
					for (int y = 0; y < NY; y++)
						want = data[(z * NY + y) * NX + x] > want ? data[(z * NY + y) * NX + x] : want;
					bad += chunk[(z - cz * info->chunks[1]) * info->chunks[2] +
						     (x - cx * info->chunks[2])] != want;
				}
		}
	tap_int_eq(bad, 0, "every projected value equals the maximum along y");
	free(chunk);
	halo_reader_close(r);
}

/* The memory of a graph's walk (halo_plan_memory), worked out by hand for
 * the shapes where the executor once waited forever under a small
 * --memory: a chunk shared by neighbouring chunks stays from its first
 * reader to its last (front), one read by a single chunk counts with
 * that chunk (per). */
static void plan_memory_of(halo_graph_t *g, const char *what, uint64_t front, uint64_t per)
{
	halo_plan_t *plan;
	halo_error_t err = {0};
	if (!tap_ok(halo_plan_build(g, &plan, &err) == HALO_OK, "%s: plan: %s", what, err.msg))
		return;
	uint64_t f, q;
	halo_plan_memory(plan, &f, &q, NULL);
	tap_ok(f == front && q == per, "%s: %llu B shared, %llu B per output chunk (want %llu, %llu)",
	       what, (unsigned long long)f, (unsigned long long)q, (unsigned long long)front,
	       (unsigned long long)per);
	halo_plan_free(plan);
}

static void test_memory(void)
{
	static uint16_t data[8 * 32 * 32];
	int64_t shape[3] = {8, 32, 32}, planes[3] = {1, 32, 32}, cubes[3] = {4, 8, 8};
	halo_writer_opts_t wo = {.format = HALO_FMT_ZARR, .codec = {.id = HALO_CODEC_NONE}};
	halo_error_t err = {0};
	halo_expr_t *a, *b, *o;

	/* Planes of 2048 B rechunked to 4x8x8 (512 B): the 4 planes of a
	 * layer serve its 16 chunks; per chunk, the rechunked one, its
	 * store's buffer and 16384 B of planes over 32 chunks. */
	halo_graph_t *g = halo_graph_new();
	int rc = halo_from_buffer(g, data, HALO_U2, 3, shape, planes, &a, &err);
	rc = rc ? rc : halo_rechunk(g, a, cubes, &b, &err);
	rc = rc ? rc : halo_to_store(g, b, "unused.zarr", NULL, -1, &wo, 1, &o, &err);
	if (tap_ok(rc == HALO_OK, "rechunk graph: %s", err.msg))
		plan_memory_of(g, "rechunk of planes", 4 * 2048, 512 + 512 + 512);
	halo_graph_free(g);

	/* A maximum along z of 4x8x8 chunks, the only output: its input is
	 * walked column by column (z innermost), each chunk added to its
	 * column's float64 accumulator (512 B), which lives across the
	 * column's two chunks. Per step, the chunk, the column's result
	 * (128 B) and the accumulators' share (16 x 512 B over 32 steps).
	 * Walked by its store, a column's chunks were all made at once. */
	g = halo_graph_new();
	rc = halo_from_buffer(g, data, HALO_U2, 3, shape, cubes, &a, &err);
	rc = rc ? rc : halo_reduce(g, a, HALO_RED_MAX, 0, &b, &err);
	rc = rc ? rc : halo_to_store(g, b, "unused.zarr", NULL, -1, &wo, 1, &o, &err);
	if (tap_ok(rc == HALO_OK, "reduction graph: %s", err.msg))
		plan_memory_of(g, "max along z", 512, 512 + 128 + 16 * 512 / 32);
	halo_graph_free(g);

	/* And a store of the same array, as float32, beside it: the
	 * projection follows the store's walk, adding each chunk to its
	 * column's float64 accumulator (512 B) as the store makes it. In C
	 * order every column's accumulator lived from the first layer to
	 * the second (8192 B); with z innermost one column's does, for one
	 * step (512 B). Walked on its own, column by column, the projection
	 * held the second layer's chunks until the store reached them. */
	g = halo_graph_new();
	halo_expr_t *f32, *bx;
	rc = halo_from_buffer(g, data, HALO_U2, 3, shape, cubes, &a, &err);
	rc = rc ? rc : halo_astype(g, a, HALO_F4, &f32, &err);
	rc = rc ? rc : halo_reduce(g, f32, HALO_RED_MAX, 0, &b, &err);
	rc = rc ? rc : halo_to_store(g, b, "unused.zarr", NULL, -1, &wo, 1, &o, &err);
	rc = rc ? rc : halo_to_store(g, f32, "unused2.zarr", NULL, -1, &wo, 1, &o, &err);
	halo_plan_t *plan = NULL;
	if (tap_ok(rc == HALO_OK && halo_plan_build(g, &plan, &err) == HALO_OK,
		   "max along z beside a store: %s", err.msg)) {
		uint64_t f, q;
		halo_plan_memory(plan, &f, &q, NULL);
		const halo_pnode_t *last = plan->nodes[plan->n - 1];
		tap_ok(f == 512 && last->order[0] == 1 && last->order[1] == 2 && last->order[2] == 0 &&
			       plan->nodes[plan->n - 2]->follows && !last->follows,
		       "max along z beside a store: it follows the store, which walks z innermost "
		       "(%d,%d,%d), %llu B shared (want 512)", last->order[0], last->order[1],
		       last->order[2], (unsigned long long)f);
		halo_plan_free(plan);
	}
	/* And its maximum along x too: rows of 4x8 (256 B of accumulator)
	 * complete in four steps. z innermost holds a column and two rows
	 * (1024 B), C order every column (8192 B) and a row. */
	rc = rc ? rc : halo_reduce(g, f32, HALO_RED_MAX, 2, &bx, &err);
	rc = rc ? rc : halo_to_store(g, bx, "unused3.zarr", NULL, -1, &wo, 1, &o, &err);
	plan = NULL;
	if (tap_ok(rc == HALO_OK && halo_plan_build(g, &plan, &err) == HALO_OK,
		   "max along z and x beside a store: %s", err.msg)) {
		uint64_t f, q;
		halo_plan_memory(plan, &f, &q, NULL);
		int follow = 0;
		for (int i = 0; i < plan->n; i++)
			follow += plan->nodes[i]->follows;
		tap_ok(f == 1024 && follow == 4,
		       "max along z and x beside a store: both follow it (%d nodes), %llu B shared "
		       "(want 1024)", follow, (unsigned long long)f);
		halo_plan_free(plan);
	}
	halo_graph_free(g);

	/* A 3-wide uniform filter over float32 planes (4096 B): each
	 * plane serves three chunks, so three are held; per chunk, the
	 * haloed block twice (3x34x34 float32), the result, its store, and
	 * a plane's worth of new input. */
	static float fdata[8 * 32 * 32];
	g = halo_graph_new();
	halo_overlap_opts_t ov = {.kernel = HALO_OV_UNIFORM, .depth = {1, 1, 1},
				  .boundary = HALO_BOUNDARY_REFLECT, .size = 3};
	rc = halo_from_buffer(g, fdata, HALO_F4, 3, shape, planes, &a, &err);
	rc = rc ? rc : halo_map_overlap(g, a, &ov, &b, &err);
	rc = rc ? rc : halo_to_store(g, b, "unused.zarr", NULL, -1, &wo, 1, &o, &err);
	if (tap_ok(rc == HALO_OK, "map_overlap graph: %s", err.msg))
		plan_memory_of(g, "map_overlap of planes", 3 * 4096,
			       2 * 3 * 34 * 34 * 4 + 4096 + 4096 + 4096);
	halo_graph_free(g);

	/* Richardson-Lucy instead: RL's three work arrays, another three
	 * haloed blocks, are counted where a CPU runs it, and are what a
	 * GPU holds instead (halo_plan_gpu_work); its PSF spectrum, one for
	 * the one haloed shape (3x34x(34/2+1) complex), is held all along. */
	static const float psf[27] = {[13] = 1};
	halo_overlap_opts_t rl = {.kernel = HALO_OV_RICHARDSON_LUCY, .depth = {1, 1, 1},
				  .boundary = HALO_BOUNDARY_REFLECT, .iterations = 2,
				  .psf_data = psf, .pn = {3, 3, 3}};
	g = halo_graph_new();
	rc = halo_from_buffer(g, fdata, HALO_F4, 3, shape, planes, &a, &err);
	rc = rc ? rc : halo_map_overlap(g, a, &rl, &b, &err);
	rc = rc ? rc : halo_to_store(g, b, "unused.zarr", NULL, -1, &wo, 1, &o, &err);
	plan = NULL;
	if (tap_ok(rc == HALO_OK && halo_plan_build(g, &plan, &err) == HALO_OK,
		   "RL graph: %s", err.msg)) {
		uint64_t f, q, gpu = halo_plan_gpu_work(plan);
		halo_plan_memory(plan, &f, &q, NULL);
		tap_ok(f == 3 * 4096 + 8 * 3 * 34 * 18 && q == 5 * 3 * 34 * 34 * 4 + 3 * 4096 &&
			       gpu == 3 * 3 * 34 * 34 * 4,
		       "RL of planes: %llu B shared, %llu B per output chunk, %llu B of it on a GPU "
		       "(want %d, %d, %d)",
		       (unsigned long long)f, (unsigned long long)q, (unsigned long long)gpu,
		       3 * 4096 + 8 * 3 * 34 * 18, 5 * 3 * 34 * 34 * 4 + 3 * 4096, 3 * 3 * 34 * 34 * 4);
		halo_plan_free(plan);
	}
	halo_graph_free(g);

	/* RL's spectra on 64x512x512 in 22x171x171 chunks, depth 9: with
	 * boundary none the haloed lengths are 31, 40, 29 along z and 180,
	 * 189, 179 along y and x (27 shapes), with reflect 40, 38 and 189,
	 * 188 (8 shapes); the last axis keeps n/2+1 complex values. */
	static int64_t zs[] = {0, 22, 44, 64}, ys[] = {0, 171, 342, 512};
	const struct halo_axis axes[3] = {{64, 3, zs}, {512, 3, ys}, {512, 3, ys}};
	const int dep[3] = {9, 9, 9};
	uint64_t none = halo_spectra_bytes(axes, dep, HALO_BOUNDARY_NONE);
	uint64_t refl = halo_spectra_bytes(axes, dep, HALO_BOUNDARY_REFLECT);
	tap_ok(none == 8ull * (31 + 40 + 29) * (180 + 189 + 179) * (91 + 95 + 90) &&
		       refl == 8ull * (40 + 38) * (189 + 188) * (95 + 95),
	       "PSF spectra: %llu B for 27 shapes (boundary none), %llu B for 8 (reflect)",
	       (unsigned long long)none, (unsigned long long)refl);

	/* The same filter on 4x8x8 chunks stored as 8x16x16 (2x2 output
	 * chunks, both layers each): each output chunk needs 8 filtered
	 * chunks at once, each with its haloed block twice (6x10x10
	 * float32), and their rechunk into the stored chunk. An input
	 * column (y, x) of 2 chunks is needed by the output chunks its
	 * neighbours fall in: the corner columns by one (exclusive, one
	 * column per output chunk), the others from the first to the last;
	 * the second and third output chunks hold 10 of the 12 other
	 * columns. Per chunk, the shared 24 chunks' average share, 6144. */
	int64_t small[3] = {4, 8, 8}, big[3] = {8, 16, 16};
	g = halo_graph_new();
	rc = halo_from_buffer(g, fdata, HALO_F4, 3, shape, small, &a, &err);
	rc = rc ? rc : halo_map_overlap(g, a, &ov, &b, &err);
	rc = rc ? rc : halo_to_store(g, b, "unused.zarr", big, -1, &wo, 1, &o, &err);
	if (tap_ok(rc == HALO_OK, "map_overlap stored in larger chunks: %s", err.msg))
		plan_memory_of(g, "map_overlap stored in larger chunks", 10 * 2 * 1024,
			       8192 + 8192 + 8192 + 2048 + 8 * 2 * 6 * 10 * 10 * 4 + 6144);
	halo_graph_free(g);

	/* Planes rechunked to 1x8x8 and then to 8x8x8: each output chunk
	 * reads its 8 small chunks, one from every plane, so every plane is
	 * needed from the first output chunk to the last. Counted in the
	 * middle node's own order, one plane was held: the walk let more
	 * chunks into flight than a tight --memory held, and it waited for
	 * memory forever. Per chunk: the 8 small chunks, the stored chunk,
	 * its store's buffer and a sixteenth of the planes. */
	int64_t tiles[3] = {1, 8, 8}, bricks[3] = {8, 8, 8};
	halo_expr_t *c;
	g = halo_graph_new();
	rc = halo_from_buffer(g, data, HALO_U2, 3, shape, planes, &a, &err);
	rc = rc ? rc : halo_rechunk(g, a, tiles, &b, &err);
	rc = rc ? rc : halo_rechunk(g, b, bricks, &c, &err);
	rc = rc ? rc : halo_to_store(g, c, "unused.zarr", NULL, -1, &wo, 1, &o, &err);
	if (tap_ok(rc == HALO_OK, "rechunks across axes: %s", err.msg))
		plan_memory_of(g, "rechunk of a rechunk across axes", 8 * 2048,
			       8 * 128 + 1024 + 1024 + 8 * 2048 / 16);
	halo_graph_free(g);
}

/* z-blocks of the plan's map_overlap node and of its elementwise one
 * (-1: none), in a plan of g. */
static void overlap_slabs(halo_graph_t *g, int64_t *ov, int64_t *ew)
{
	halo_plan_t *plan = NULL;
	halo_error_t err = {0};
	*ov = *ew = -1;
	if (!tap_ok(halo_plan_build(g, &plan, &err) == HALO_OK, "plan: %s", err.msg))
		return;
	for (int i = 0; i < plan->n; i++) {
		if (plan->nodes[i]->kind == HALO_PN_OVERLAP)
			*ov = plan->nodes[i]->grid[0].nblocks;
		if (plan->nodes[i]->kind == HALO_PN_FUSED)
			*ew = plan->nodes[i]->grid[0].nblocks;
	}
	halo_plan_free(plan);
}

/* A uniform filter over 64-plane chunks that a TIFF store reads in
 * 16-page chunks computes in slabs of 16 pages or a multiple, at least 4
 * x its depth, with the elementwise steps after it, where its depth along
 * z covers its radius (the result does not depend on the z-chunks; y and
 * x keep theirs): not with a shallow depth, a deep one, or for RL. */
static void test_thin(void)
{
	static float vol[64 * 16 * 16];
	static const float psf[27] = {[13] = 1};
	int64_t shape[3] = {64, 16, 16}, chunks[3] = {64, 8, 8}, ov, ew;
	halo_writer_opts_t tiff = {.format = HALO_FMT_TIFF};
	struct {
		halo_overlap_opts_t o;
		int cast;
		int64_t want;
		const char *what;
	} cases[] = {
		{{.kernel = HALO_OV_UNIFORM, .depth = {1, 1, 1}, .size = 3}, 0, 4, "depth 1"},
		{{.kernel = HALO_OV_UNIFORM, .depth = {1, 1, 1}, .size = 3}, 1, 4, "depth 1, then a cast"},
		{{.kernel = HALO_OV_UNIFORM, .depth = {5, 1, 1}, .size = 3}, 0, 2, "depth 5: 32 pages"},
		{{.kernel = HALO_OV_UNIFORM, .depth = {9, 1, 1}, .size = 3}, 0, 2, "depth 9: 48 pages"},
		{{.kernel = HALO_OV_UNIFORM, .depth = {17, 1, 1}, .size = 3}, 0, 1, "depth 17: 64"},
		{{.kernel = HALO_OV_UNIFORM, .depth = {0, 1, 1}, .size = 3}, 0, 1, "z depth 0 < radius"},
		{{.kernel = HALO_OV_UNIFORM, .depth = {1, 0, 0}, .size = 3}, 0, 4, "y, x depth 0 (kept)"},
		{{.kernel = HALO_OV_RICHARDSON_LUCY, .depth = {1, 1, 1}, .iterations = 1,
		  .psf_data = psf, .pn = {3, 3, 3}}, 0, 1, "RL"},
	};
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		halo_graph_t *g = halo_graph_new();
		halo_error_t err = {0};
		halo_expr_t *a, *b, *o;
		cases[k].o.boundary = HALO_BOUNDARY_REFLECT;
		int rc = halo_from_buffer(g, vol, HALO_F4, 3, shape, chunks, &a, &err);
		rc = rc ? rc : halo_map_overlap(g, a, &cases[k].o, &b, &err);
		rc = rc || !cases[k].cast ? rc : halo_astype(g, b, HALO_U2, &b, &err);
		rc = rc ? rc : halo_to_store(g, b, "unused.tif", NULL, -1, &tiff, 1, &o, &err);
		if (tap_ok(rc == HALO_OK, "%s: graph: %s", cases[k].what, err.msg)) {
			overlap_slabs(g, &ov, &ew);
			tap_ok(ov == cases[k].want && ew == (cases[k].cast ? ov : -1),
			       "map_overlap into a TIFF, %s: %lld slabs (want %lld), %lld cast",
			       cases[k].what, (long long)ov, (long long)cases[k].want, (long long)ew);
		}
		halo_graph_free(g);
	}
}

/* The chunks in flight (halo__inflight_limit): a GPU far faster than a CPU
 * worker keeps every task, and then a narrow window saves host memory;
 * one that the CPUs can help keeps the wide one. */
static void test_inflight(void)
{
	tap_int_eq(halo__inflight_limit(1000, 72, 16, 1, 311, 0), 24,
		   "in flight: H100-like GPU (311x a CPU worker), 16 workers: 24");
	tap_int_eq(halo__inflight_limit(1000, 72, 16, 1, 20, 0), 72,
		   "in flight: GPU 20x a CPU worker: the wide window");
	tap_int_eq(halo__inflight_limit(1000, 72, 16, 1, 0, 0), 72,
		   "in flight: speedup not known yet: the wide window");
	tap_int_eq(halo__inflight_limit(1000, 72, 5, 1, 0, 1), 24, "in flight: --ncpu 0: narrow");
	tap_int_eq(halo__inflight_limit(1000, 292, 72, 8, 311, 0), 108,
		   "in flight: 64 CPU workers + 8 GPUs: workers + 4 + 4 per GPU");
	tap_int_eq(halo__inflight_limit(1000, 292, 72, 8, 30, 0), 292,
		   "in flight: 8 GPUs 30x a CPU worker: the wide window");
	tap_int_eq(halo__inflight_limit(10, 72, 16, 1, 311, 0), 10, "in flight: the memory budget first");
	tap_int_eq(halo__inflight_limit(1000, 72, 16, 0, 311, 0), 72, "in flight: no GPU: the wide window");
	tap_int_eq(halo__inflight_limit(0, 72, 16, 0, 0, 0), 1, "in flight: at least one chunk");
}

int main(void)
{
	test_ew_math();
	test_inflight();
	test_types();
	test_memory();
	test_thin();
	halo_runtime_opts_t opts;
	halo_runtime_opts_init(&opts);
	opts.ncuda = 0;
	halo_runtime_t *rt = NULL;
	halo_error_t err = {0};
	if (tap_ok(halo_runtime_init(&opts, &rt, &err) == HALO_OK, "runtime: %s", err.msg)) {
		test_compute();
		test_store_axis();
		halo_runtime_shutdown(rt);
	}
	return tap_done();
}
