/* halo on several MPI ranks through StarPU-MPI. Every rank walks the same
 * graph and registers the same data and submits the same tasks in the same
 * order; StarPU-MPI runs each task on one rank (the owner of the data it
 * writes) and moves the data that crosses ranks. This file holds what that
 * needs: the rank, tags and owners for registered data, the rebuilding of
 * tasks for StarPU-MPI, and the few collectives halo calls itself. With
 * one rank (or no MPI) every function here is a no-op or the identity. */
#ifndef HALO_RUNTIME_MPI_H
#define HALO_RUNTIME_MPI_H

#include <stddef.h>
#include <stdint.h>
#include <starpu.h>

#include "halo.h"
#include "io/volume.h"

/* Set by the runtime when StarPU-MPI starts and stops. */
void halo__mpi_set(int rank, int ranks);
int halo__mpi_rank(void);
int halo__mpi_ranks(void);

/* Distributed submission is on (between these calls the graph walk runs
 * on every rank); outside, tasks run where they are submitted. */
void halo__mpi_distribute(int on);
int halo__mpi_active(void);

/* Gives h the next tag and its owner (when distributing). */
void halo__mpi_register(starpu_data_handle_t h, int owner);
/* The rank that owns h (0 when not distributing), and its tag (-1). */
int halo__mpi_owner(starpu_data_handle_t h);
int64_t halo__mpi_tag(starpu_data_handle_t h);
/* The number of tasks built so far on this rank, the same on every rank:
 * after halo__mpi_build, the task's index in the run. */
int64_t halo__mpi_task_index(void);

/* StarPU-MPI's view of one task, kept between build and post. */
struct halo_mpi_post {
	struct starpu_codelet *cl;
	struct starpu_data_descr *descr;
	int n, exec, active;
	int failed; /* out of memory: the task was dropped */
};

/* Rebuilds t for StarPU-MPI (it runs on the owner of its first written
 * handle, else of its first handle): returns the task to submit on this
 * rank, which takes over t's arguments and callback, or NULL when another
 * rank runs it or it could not be built (failed; t is then destroyed).
 * Call halo__mpi_post after
 * submitting, on every rank. Without distribution returns t. */
struct starpu_task *halo__mpi_build(struct starpu_task *t, struct halo_mpi_post *post);
void halo__mpi_post(struct halo_mpi_post *post);

/* Bytes StarPU-MPI sent from rank to rank so far in this run, as
 * [from * ranks + to] (NULL with one rank). */
const double *halo__mpi_bytes(void);

void halo__mpi_barrier(void);
/* Sums n doubles over the ranks, in place, on every rank. */
void halo__mpi_sum(double *v, size_t n);
/* The same for n int64s (wrapping). */
void halo__mpi_sum_i64(int64_t *v, size_t n);
/* Rank 0's value, on every rank. */
long halo__mpi_bcast_long(long v);
/* Whether flag is set on any rank (every rank must call it at the same
 * point of the same walk). */
int halo__mpi_any(int flag);
/* Every rank's text, by rank, on rank 0: a malloc'ed array of
 * halo__mpi_ranks() malloc'ed strings (mine alone with one rank); NULL on
 * the other ranks, and where memory runs out. */
char **halo__mpi_gather_text(const char *mine);
/* How many ranks on this node (this one included) give the same key, and
 * this one's index among them (*index); 1 and 0 with one rank. Every rank
 * calls it at the same point. */
int halo__mpi_node_peers(const char *key, int *index);
/* Whether this rank's fingerprint h of what it read differs from rank
 * 0's (every rank calls it at the same point). Under mpirun each rank
 * reads its inputs itself, and a stale copy on one node made the ranks
 * walk different graphs or mixed its values into the output. */
int halo__mpi_differs(uint32_t h);
/* A volume's shape, chunks and type, added to fingerprint h (StarPU's
 * CRC32C, as its footprints). */
uint32_t halo__mpi_volume_hash(const halo_volume_info_t *in, uint32_t h);

/* The ranks agree on an outcome: when any failed, every rank returns the
 * error of the lowest failing rank, prefixed with "rank R". */
int halo__mpi_agree(int rc, halo_error_t *err);

#endif
