/* halo's public C API.
 *
 * halo is a Dask-like task-graph runtime on StarPU whose first workload is
 * chunked Richardson-Lucy deconvolution of volumes larger than one GPU. This
 * header is what a C program links against (libhalo); the `halo` command is
 * one such program.
 *
 * Error rule, for every function in halo: a function that can fail returns an
 * int, HALO_OK (0) on success or a negative HALO_E* code, and, when its last
 * argument `halo_error_t *err` is not NULL, fills err->msg with one line that
 * names the file, step or option at fault. Nothing is printed and nothing
 * exits: only main() does that.
 *
 * Ownership rule: pointers passed in are borrowed for the duration of the
 * call unless the function's comment says otherwise; objects a function
 * creates (`*_open`, `*_init`) are owned by the caller and released with the
 * matching `*_close` / `*_shutdown`.
 */
#ifndef HALO_H
#define HALO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One table generates the enum, halo_err_name() and halo_strerror(). */
#define HALO_ERRNO_MAP(X)                                                  \
	X(EINVAL, -1, "invalid argument")                                  \
	X(ENOMEM, -2, "out of memory")                                     \
	X(EIO, -3, "input/output error")                                   \
	X(ENOENT, -4, "no such file or directory")                         \
	X(EEXIST, -5, "already exists")                                    \
	X(EFORMAT, -6, "malformed or corrupt data")                        \
	X(EUNSUPPORTED, -7, "unsupported feature")                         \
	X(ERUNTIME, -8, "StarPU runtime error")                            \
	X(EDEVICE, -9, "device error")                                     \
	X(EINTR, -10, "interrupted")                                       \
	X(ENOSPC, -11, "no space left on device")

enum halo_errno {
	HALO_OK = 0,
#define HALO__ERR_ENUM(name, value, text) HALO_##name = (value),
	HALO_ERRNO_MAP(HALO__ERR_ENUM)
#undef HALO__ERR_ENUM
};

#define HALO_ERROR_MSG_MAX 8192

typedef struct halo_error {
	int code;                      /* HALO_OK or a HALO_E* value */
	char msg[HALO_ERROR_MSG_MAX];  /* one line, no trailing newline */
} halo_error_t;

/* Short symbolic name ("EINVAL") and description of a code; both static. */
const char *halo_err_name(int code);
const char *halo_strerror(int code);

/* Records code and a printf-style message in err (which may be NULL) and
 * returns code, so that `return halo_error_set(err, HALO_EIO, ...)` reads as
 * one statement. A message already present is replaced. */
int halo_error_set(halo_error_t *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes err->msg with "prefix: " (a file name, a step name), keeping the
 * code; returns err->code. Used when a lower layer's message lacks context. */
int halo_error_prefix(halo_error_t *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Replaces every occurrence of from in err->msg with to: a temporary
 * output's name with the name the user gave. */
void halo_error_replace(halo_error_t *err, const char *from, const char *to);

const char *halo_version_string(void);

/* ---- runtime: StarPU initialised from halo's options ---- */

typedef struct halo_runtime halo_runtime_t;

typedef struct halo_runtime_opts {
	int ncpu;           /* CPU workers; -1: StarPU's default or STARPU_NCPU */
	int ncuda;          /* CUDA workers; -1: StarPU's default or STARPU_NCUDA */
	const char *sched;  /* policy name; NULL: dmda unless STARPU_SCHED is set */
	int verbose;        /* 0: StarPU's own messages are silenced */
	uint64_t memory;    /* host bytes StarPU may hold; 0: half of RAM, or
			     * STARPU_LIMIT_CPU_MEM (MiB) when set */
	uint64_t memory_floor; /* what the run's tasks hold at once at least:
				* StarPU may hold that much whatever memory
				* says (below it, it could never allocate) */
	const char *trace;  /* record every task; halo_runtime_finish writes it */
	const char *trace_fxt; /* keep StarPU's FxT trace in this folder, with Paje */
	int distributed;    /* the caller can run on several MPI ranks; otherwise
			     * starting under mpirun with more than one is an error */
} halo_runtime_opts_t;

/* Fills opts with the defaults described above. */
void halo_runtime_opts_init(halo_runtime_opts_t *opts);

/* The checks halo_runtime_init makes before starting anything (worker
 * counts, the trace file, STARPU_NCPU/NCUDA, the scheduler), for a caller
 * that will not start StarPU (a dry run). */
int halo_runtime_opts_check(const halo_runtime_opts_t *opts, halo_error_t *err);
/* Whether the workers asked for are there (GPUs counted by CUDA, no
 * StarPU started): what halo_runtime_init refuses, for a dry run. */
int halo_runtime_devices_check(const halo_runtime_opts_t *opts, halo_error_t *err);

/* Starts StarPU once per process. Fails with HALO_EINVAL for an unknown
 * scheduler or negative worker counts, HALO_ERUNTIME when StarPU starts no
 * worker. *out is owned by the caller until halo_runtime_shutdown(). */
int halo_runtime_init(const halo_runtime_opts_t *opts, halo_runtime_t **out,
		      halo_error_t *err);

/* Ends a run: writes the trace asked for with opts->trace (Chrome Trace
 * Event JSON, docs/trace.md), stops StarPU, converts the FxT trace asked
 * for with opts->trace_fxt to Paje (starpu_fxt_tool), and frees rt.
 * failed: the run's error (the trace records it), NULL when it succeeded.
 * Returns the first error; NULL is a no-op. */
int halo_runtime_finish(halo_runtime_t *rt, const halo_error_t *failed, halo_error_t *err);

/* Waits for every submitted task, stops StarPU and frees rt; NULL is a no-op. */
void halo_runtime_shutdown(halo_runtime_t *rt);

/* The scheduling policy StarPU is actually using (static string). */
const char *halo_runtime_sched(const halo_runtime_t *rt);

/* Under mpirun: this process's rank and the number of ranks (0 and 1
 * otherwise). */
int halo_runtime_rank(const halo_runtime_t *rt);
int halo_runtime_ranks(const halo_runtime_t *rt);

/* NULL-terminated list of StarPU's predefined scheduler names (static). */
const char *const *halo_sched_names(void);
/* HALO_OK when StarPU knows scheduler name; else an error naming source
 * (the option or variable that gave it) and the known policies. */
int halo_sched_check(const char *name, const char *source, halo_error_t *err);

#ifdef __cplusplus
}
#endif

#endif /* HALO_H */
