/* StarPU-MPI for halo's graphs (see mpi.h). */
#include "config.h"
#include "runtime/mpi.h"
#include "util/signals.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HALO_HAVE_MPI
#include <mpi.h>
#include <starpu_mpi.h>
#endif

static int my_rank, nranks = 1, distributing;
static int64_t next_tag;

/* What StarPU-MPI sends, counted as it decides (every rank counts every
 * task, so each knows the whole matrix): data goes to the rank that runs a
 * task reading it, unless that rank still holds the copy it received (the
 * cache), which a write by the owner invalidates. Per tag, the ranks that
 * hold a valid copy (up to 64 ranks are counted). */
static int64_t built; /* tasks built so far: the same count on every rank */
static uint64_t *holders;
static int64_t nholders;
static double *sent; /* nranks x nranks bytes, [from * nranks + to] */

void halo__mpi_set(int rank, int ranks)
{
	my_rank = rank;
	nranks = ranks > 0 ? ranks : 1;
	next_tag = 0;
	built = 0;
	free(holders);
	holders = NULL;
	nholders = 0;
	free(sent);
	sent = nranks > 1 ? calloc((size_t)nranks * (size_t)nranks, sizeof *sent) : NULL;
}

const double *halo__mpi_bytes(void)
{
	return sent;
}

int64_t halo__mpi_task_index(void)
{
	return built;
}

int halo__mpi_rank(void)
{
	return my_rank;
}

int halo__mpi_ranks(void)
{
	return nranks;
}

void halo__mpi_distribute(int on)
{
	distributing = on;
}

int halo__mpi_active(void)
{
	return nranks > 1 && distributing;
}

int halo__mpi_differs(uint32_t h)
{
	return (long)h != halo__mpi_bcast_long((long)h);
}

uint32_t halo__mpi_volume_hash(const halo_volume_info_t *in, uint32_t h)
{
	h = starpu_hash_crc32c_be_n(in->shape, sizeof in->shape, h);
	h = starpu_hash_crc32c_be_n(in->chunks, sizeof in->chunks, h);
	return starpu_hash_crc32c_be_n(&in->dtype, sizeof in->dtype, h);
}

#ifdef HALO_HAVE_MPI
void halo__mpi_register(starpu_data_handle_t h, int owner)
{
	if (halo__mpi_active())
		starpu_mpi_data_register(h, next_tag++, owner);
}

/* The transfers the task's execution on exec implies (see holders). */
static void count(const struct starpu_data_descr *d, int n, int exec)
{
	if (!sent || nranks > 64)
		return;
	for (int i = 0; i < n; i++) {
		int64_t tag = starpu_mpi_data_get_tag(d[i].handle);
		int own = starpu_mpi_data_get_rank(d[i].handle);
		if (tag < 0 || own < 0 || own >= nranks)
			continue;
		if (tag >= nholders) {
			int64_t m = tag + 1 > 2 * nholders ? tag + 1 : 2 * nholders;
			uint64_t *h = realloc(holders, (size_t)m * sizeof *h);
			if (!h)
				return;
			memset(h + nholders, 0, (size_t)(m - nholders) * sizeof *h);
			holders = h;
			nholders = m;
		}
		if ((d[i].mode & STARPU_R) && exec != own && !(holders[tag] >> exec & 1)) {
			sent[own * nranks + exec] += (double)starpu_data_get_size(d[i].handle);
			holders[tag] |= UINT64_C(1) << exec;
		}
		if (d[i].mode & STARPU_W) {
			holders[tag] = 0; /* the copies elsewhere are stale */
			if (exec != own) /* sent back to its owner afterwards */
				sent[exec * nranks + own] += (double)starpu_data_get_size(d[i].handle);
		}
	}
}

int halo__mpi_owner(starpu_data_handle_t h)
{
	int r = halo__mpi_active() ? starpu_mpi_data_get_rank(h) : 0;
	return r > 0 ? r : 0;
}

int64_t halo__mpi_tag(starpu_data_handle_t h)
{
	return halo__mpi_active() ? (int64_t)starpu_mpi_data_get_tag(h) : -1;
}

struct starpu_task *halo__mpi_build(struct starpu_task *t, struct halo_mpi_post *p)
{
	memset(p, 0, sizeof *p);
	if (!halo__mpi_active())
		return t;
	int n = (int)STARPU_TASK_GET_NBUFFERS(t), exec = -1;
	p->descr = malloc((size_t)(n ? n : 1) * sizeof *p->descr);
	/* t was never submitted: destroy it here, not on completion. */
	t->destroy = 0;
	if (!p->descr) {
		starpu_task_destroy(t);
		p->failed = 1;
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		p->descr[i].handle = STARPU_TASK_GET_HANDLE(t, i);
		p->descr[i].mode = STARPU_TASK_GET_MODE(t, i);
		if (exec < 0 && (p->descr[i].mode & STARPU_W))
			exec = starpu_mpi_data_get_rank(p->descr[i].handle);
	}
	if (exec < 0)
		exec = n ? starpu_mpi_data_get_rank(p->descr[0].handle) : 0;
	*p = (struct halo_mpi_post){.cl = t->cl, .descr = p->descr, .n = n, .exec = exec,
				    .active = 1};
	count(p->descr, n, exec);
	built++;
	struct starpu_task *nt = starpu_mpi_task_build(MPI_COMM_WORLD, t->cl, STARPU_DATA_MODE_ARRAY,
						       p->descr, n, STARPU_EXECUTE_ON_NODE, exec, 0);
	if (nt) {
		nt->cl_arg = t->cl_arg;
		nt->cl_arg_size = t->cl_arg_size;
		nt->cl_arg_free = t->cl_arg_free;
		nt->callback_func = t->callback_func;
		nt->callback_arg = t->callback_arg;
		/* StarPU-MPI's build marks these to be freed; ours are not its. */
		nt->callback_arg_free = t->callback_arg_free;
		nt->prologue_callback_arg_free = t->prologue_callback_arg_free;
		nt->prologue_callback_pop_arg_free = t->prologue_callback_pop_arg_free;
		nt->name = t->name;
		nt->priority = t->priority;
		t->cl_arg_free = 0;
		t->callback_func = NULL;
	}
	starpu_task_destroy(t);
	return nt;
}

void halo__mpi_post(struct halo_mpi_post *p)
{
	if (!p->active)
		return;
	starpu_mpi_task_post_build(MPI_COMM_WORLD, p->cl, STARPU_DATA_MODE_ARRAY, p->descr, p->n,
				   STARPU_EXECUTE_ON_NODE, p->exec, 0);
	free(p->descr);
	p->active = 0;
}

void halo__mpi_barrier(void)
{
	if (nranks > 1)
		MPI_Barrier(MPI_COMM_WORLD);
}

void halo__mpi_sum(double *v, size_t n)
{
	if (nranks > 1 && n)
		MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void halo__mpi_sum_i64(int64_t *v, size_t n)
{
	if (nranks > 1 && n)
		MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
}

long halo__mpi_bcast_long(long v)
{
	if (nranks > 1)
		MPI_Bcast(&v, 1, MPI_LONG, 0, MPI_COMM_WORLD);
	return v;
}

int halo__mpi_any(int flag)
{
	if (nranks > 1)
		MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
	return flag;
}

char **halo__mpi_gather_text(const char *mine)
{
	int len = (int)strlen(mine) + 1, *lens = NULL, *at = NULL;
	char *all = NULL, **out = NULL;
	if (my_rank == 0) {
		lens = calloc((size_t)nranks, sizeof *lens);
		at = calloc((size_t)nranks, sizeof *at);
	}
	MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD);
	size_t total = 0;
	for (int r = 0; lens && at && r < nranks; r++) {
		at[r] = (int)total;
		total += (size_t)lens[r];
	}
	int short_of = my_rank == 0 && (!lens || !at || total > INT_MAX || !(all = malloc(total)));
	/* Every rank learns it, so that none waits in the Gatherv. */
	if (halo__mpi_any(short_of)) {
		free(lens);
		free(at);
		return NULL;
	}
	MPI_Gatherv(mine, len, MPI_CHAR, all, lens, at, MPI_CHAR, 0, MPI_COMM_WORLD);
	if (all && (out = calloc((size_t)nranks, sizeof *out)))
		for (int r = 0; r < nranks; r++)
			out[r] = strdup(all + at[r]);
	free(all);
	free(lens);
	free(at);
	return out;
}

int halo__mpi_node_peers(const char *key, int *index)
{
	int world = 1, n = 1;
	*index = 0;
	MPI_Comm_size(MPI_COMM_WORLD, &world);
	if (world < 2)
		return 1;
	MPI_Comm node, same;
	int me;
	MPI_Comm_rank(MPI_COMM_WORLD, &me);
	MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, me, MPI_INFO_NULL, &node);
	uint32_t h = starpu_hash_crc32c_be_n(key, strlen(key), 0);
	MPI_Comm_split(node, (int)(h & 0x7fffffff), me, &same);
	MPI_Comm_size(same, &n);
	MPI_Comm_rank(same, index);
	MPI_Comm_free(&same);
	MPI_Comm_free(&node);
	return n;
}

/* Whether an outcome agreed on earlier already named its rank, maybe
 * behind a step's or a file's name added since. */
static int names_rank(const char *msg)
{
	for (const char *p = msg; (p = strstr(p, "rank ")); p++) {
		int r, used = 0;
		if ((p == msg || p[-1] == ' ') && sscanf(p, "rank %d: %n", &r, &used) == 1 && used > 0)
			return 1;
	}
	return 0;
}

int halo__mpi_agree(int rc, halo_error_t *err)
{
	if (nranks <= 1)
		return rc;
	int mine = rc ? my_rank : nranks, first = nranks;
	MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
	if (first == nranks)
		return HALO_OK;
	halo_error_t e = {0};
	if (my_rank == first && err)
		e = *err;
	MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, MPI_COMM_WORLD);
	/* What every rank says alike (interrupted, by mpirun's SIGTERM to
	 * them all) names no rank; so does an interrupt that a rank has
	 * received but not yet acted on (it named rank 0 in some runs). */
	int alike = rc ? err && !strcmp(err->msg, e.msg)
		       : e.code == HALO_EINTR && halo_interrupted();
	MPI_Allreduce(MPI_IN_PLACE, &alike, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
	if (err) {
		*err = e;
		if (!alike && !names_rank(err->msg))
			halo_error_prefix(err, "rank %d", first);
	}
	return e.code ? e.code : HALO_ERUNTIME;
}
#else
int halo__mpi_owner(starpu_data_handle_t h)
{
	(void)h;
	return 0;
}

int64_t halo__mpi_tag(starpu_data_handle_t h)
{
	(void)h;
	return -1;
}

void halo__mpi_register(starpu_data_handle_t h, int owner)
{
	(void)h;
	(void)owner;
}

struct starpu_task *halo__mpi_build(struct starpu_task *t, struct halo_mpi_post *p)
{
	memset(p, 0, sizeof *p);
	return t;
}

void halo__mpi_post(struct halo_mpi_post *p)
{
	(void)p;
}

void halo__mpi_barrier(void)
{
}

void halo__mpi_sum(double *v, size_t n)
{
	(void)v;
	(void)n;
}

void halo__mpi_sum_i64(int64_t *v, size_t n)
{
	(void)v;
	(void)n;
}

long halo__mpi_bcast_long(long v)
{
	return v;
}

int halo__mpi_any(int flag)
{
	return flag;
}

int halo__mpi_node_peers(const char *key, int *index)
{
	(void)key;
	*index = 0;
	return 1;
}

char **halo__mpi_gather_text(const char *mine)
{
	char **out = calloc(1, sizeof *out);
	if (out && !(out[0] = strdup(mine))) {
		free(out);
		out = NULL;
	}
	return out;
}

int halo__mpi_agree(int rc, halo_error_t *err)
{
	(void)err;
	return rc;
}
#endif
