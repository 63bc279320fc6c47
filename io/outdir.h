/* Atomic outputs. An output (a Zarr directory or a TIFF file) is written
 * under a hidden temporary name beside its final name and renamed into
 * place only when complete, so a failed or interrupted run leaves no
 * half-written output and never touches an existing one. */
#ifndef HALO_IO_OUTDIR_H
#define HALO_IO_OUTDIR_H

#include "halo.h"

typedef struct halo_output halo_output_t;

/* Prepares to write `final`. Fails with HALO_EEXIST when it exists and
 * overwrite is 0, HALO_ENOENT when its parent directory is missing. Nothing
 * is created yet: the caller creates halo_output_tmp_path() itself. */
int halo_output_begin(const char *final, int overwrite, halo_output_t **out,
		      halo_error_t *err);

/* The same output as another process's halo_output_begin (MPI rank 0,
 * with the same run id): its temporary path, left as it is. writes: this
 * process writes into it, so it must see it (a filesystem they share). */
int halo_output_join(const char *final, int overwrite, int writes, halo_output_t **out,
		     halo_error_t *err);

/* The temporary path to write to; borrowed until commit or abort. */
const char *halo_output_tmp_path(const halo_output_t *o);
const char *halo_output_final_path(const halo_output_t *o);

/* Renames the temporary output into place (an existing final output is
 * replaced only when overwrite was given) and frees o. */
int halo_output_commit(halo_output_t *o, halo_error_t *err);

/* Commits n outputs all or none: when one cannot be put in place, those
 * already renamed go back and the old outputs they replaced return. Frees
 * every o[i] either way. */
int halo_outputs_commit(halo_output_t **o, int n, halo_error_t *err);

/* Removes whatever was written under the temporary name and frees o;
 * NULL is a no-op. */
void halo_output_abort(halo_output_t *o);

/* Frees o without touching what was written: another process (MPI rank 0)
 * commits or removes it. */
void halo_output_release(halo_output_t *o);

/* Under HALO_SYNC=1, flushes what this process wrote under o's temporary
 * name to the disk (a no-op otherwise): each MPI rank flushes its own node's
 * writes before rank 0 commits. */
int halo_output_flush(const halo_output_t *o, halo_error_t *err);

/* Removes what this process's outputs in the making have written, and
 * their locks, leaving the outputs themselves to be freed by nobody: for
 * a process about to end while its other threads are stuck (see
 * halo_signals_on_stuck). Returns how many it removed. */
int halo_outputs_abandon(void);

/* The number in temporary names (default: halo_output_run_id's). Every MPI rank
 * of a run sets rank 0's, so that all write into the same temporary
 * output. */
void halo_output_set_run_id(long id);

/* What halo_output_begin would refuse (an existing output without
 * overwrite, a symbolic link, something halo did not write, a missing or
 * read-only folder), checked without touching anything. */
int halo_output_check(const char *final, int overwrite, halo_error_t *err);
/* The run's id: the one set, or drawn once (pid and random bits). */
long halo_output_run_id(void);

/* 1 when the two paths name the same existing file or directory. */
int halo_path_same(const char *a, const char *b);

/* path made absolute, with links and ".." resolved as far as it exists
 * (the rest appended as given); malloc'ed, NULL when out of memory. */
char *halo_path_canonical(const char *path);

/* 1 when inner is outer or lies below it. Neither need exist yet (then
 * their names are compared, made absolute through their folders). Writing
 * inner then changes outer, and replacing outer deletes inner. */
int halo_path_within(const char *inner, const char *outer);

#endif
