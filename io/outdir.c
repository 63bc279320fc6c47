/* Atomic outputs by rename (see outdir.h). rename(2) is atomic within a
 * filesystem, which is why the temporary name lives beside the final one
 * rather than in /tmp. An existing output is replaced by exchanging the
 * two names in one step (RENAME_EXCHANGE); where the filesystem cannot,
 * by two renames, between which the final name is briefly absent, never
 * half-written. */
#include "config.h"
#include "io/outdir.h"
#include "io/fs.h"
#include "util/signals.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

struct halo_output {
	char *final;
	char *tmp;
	char *old;       /* the output it replaces, moved aside while committing */
	char *lock;      /* held while the output is in the making */
	int lock_fd;
	int overwrite;
	struct halo_output *next; /* in the list of outputs in the making */
};

/* This process's outputs in the making (begun, not yet committed or
 * aborted), for halo_outputs_abandon. */
static pthread_mutex_t making_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct halo_output *making;

static void making_add(struct halo_output *o)
{
	pthread_mutex_lock(&making_mutex);
	o->next = making;
	making = o;
	pthread_mutex_unlock(&making_mutex);
}

static void making_remove(struct halo_output *o)
{
	pthread_mutex_lock(&making_mutex);
	for (struct halo_output **p = &making; *p; p = &(*p)->next)
		if (*p == o) {
			*p = o->next;
			break;
		}
	pthread_mutex_unlock(&making_mutex);
}

int halo_outputs_abandon(void)
{
	/* Called where the process is about to end with other threads stuck:
	 * a thread stuck holding the list leaves it alone. */
	int locked = 0;
	for (int i = 0; i < 50 && !(locked = pthread_mutex_trylock(&making_mutex) == 0); i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	if (!locked)
		return 0;
	int n = 0;
	for (struct halo_output *o = making; o; o = o->next, n++) {
		halo_fs_remove_tree(o->tmp);
		if (o->lock_fd >= 0)
			unlink(o->lock);
	}
	pthread_mutex_unlock(&making_mutex);
	return n;
}

/* Names temporary outputs; the same on every MPI rank of a run. */
static long run_id;

void halo_output_set_run_id(long id)
{
	run_id = id;
}

long halo_output_run_id(void)
{
	/* The pid with random bits beside it: containers that share a
	 * folder often run halo under the same small pid, and two runs
	 * writing into one temporary output both "succeeded". */
	if (!run_id) {
		uint32_t r = 0;
		if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
			r = (uint32_t)time(NULL) ^ (uint32_t)clock();
		run_id = ((long)getpid() << 24) | (long)(r & 0xffffff);
	}
	return run_id;
}

static char *with_suffix(const char *path, const char *tag)
{
	/* ".NAME.halo-TAG-ID" in the same directory as path (ID: the run's,
	 * rank 0's under MPI). */
	char *copy1 = strdup(path), *copy2 = strdup(path);
	char *out = NULL;
	if (copy1 && copy2) {
		const char *dir = dirname(copy1);
		const char *base = basename(copy2);
		size_t n = strlen(dir) + strlen(base) + strlen(tag) + 40;
		out = malloc(n);
		if (out)
			snprintf(out, n, "%s/.%s.halo-%s-%ld", dir, base, tag, halo_output_run_id());
	}
	free(copy1);
	free(copy2);
	return out;
}

/* What --overwrite may replace: what halo writes (a Zarr array or group,
 * a TIFF) or an empty file or folder, never a folder of other files. */
static int replaceable(const char *path)
{
	static const char *const meta[] = {".zarray", ".zgroup", "zarr.json"};
	struct stat st;
	if (stat(path, &st) != 0)
		return 1;
	if (S_ISDIR(st.st_mode)) {
		char f[4096];
		for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++) {
			snprintf(f, sizeof f, "%s/%s", path, meta[i]);
			if (halo_fs_exists(f))
				return 1;
		}
		DIR *d = opendir(path);
		struct dirent *e;
		int empty = d != NULL;
		while (d && empty && (e = readdir(d)))
			empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
		if (d)
			closedir(d);
		return empty;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	if (st.st_size == 0)
		return 1;
	unsigned char magic[4] = {0};
	FILE *fp = fopen(path, "rb");
	size_t n = fp ? fread(magic, 1, sizeof magic, fp) : 0;
	if (fp)
		fclose(fp);
	return n == 4 && ((magic[0] == 'I' && magic[1] == 'I' && (magic[2] == 42 || magic[2] == 43)) ||
			  (magic[0] == 'M' && magic[1] == 'M' && (magic[3] == 42 || magic[3] == 43)));
}

/* A run holds an flock on ".NAME.halo-lock-ID" from halo_output_begin
 * until its output is committed or removed, so that another run can tell
 * a live temporary output from one a killed run left, whatever host or
 * PID namespace it runs in (a pid alone cannot tell). */
static int lock_held_elsewhere(const char *lock)
{
	int fd = open(lock, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT; /* no lock file: nobody holds it */
	int held = flock(fd, LOCK_EX | LOCK_NB) != 0; /* or flock unsupported: keep out */
	close(fd);
	return held;
}

/* Removes what killed runs left beside final: ".NAME.halo-tmp-ID" (an
 * output never committed), ".NAME.halo-old-ID" (an old copy moved aside
 * for the new one, which did not take its place: when final is missing,
 * the only copy, put back), ".NAME.halo-del-ID" (an old copy replaced,
 * not fully removed) and ".NAME.halo-new-ID" (a lock not yet in place,
 * lock_create). */
static void remove_stale(const char *final)
{
	char *copy1 = strdup(final), *copy2 = strdup(final);
	const char *dir = copy1 ? dirname(copy1) : NULL, *base = copy2 ? basename(copy2) : NULL;
	DIR *d = dir && base ? opendir(dir) : NULL;
	struct dirent *e;
	size_t nb = base ? strlen(base) : 0;
	while (d && (e = readdir(d))) {
		const char *n = e->d_name, *tag = n + 1 + nb;
		if (n[0] != '.' || strncmp(n + 1, base, nb) != 0 ||
		    (strncmp(tag, ".halo-tmp-", 10) != 0 && strncmp(tag, ".halo-old-", 10) != 0 &&
		     strncmp(tag, ".halo-del-", 10) != 0 && strncmp(tag, ".halo-lock-", 11) != 0 &&
		     strncmp(tag, ".halo-new-", 10) != 0))
			continue;
		const char *id = tag + (tag[6] == 'l' ? 11 : 10);
		if (!*id || strspn(id, "0123456789") != strlen(id))
			continue;
		size_t len = strlen(dir) + strlen(n) + 8;
		char *path = malloc(len), *lock = malloc(len);
		if (path && lock) {
			snprintf(path, len, "%s/%s", dir, n);
			if (tag[6] == 'n') /* a lock not yet linked into place is its own */
				snprintf(lock, len, "%s", path);
			else
				snprintf(lock, len, "%s/.%s.halo-lock-%s", dir, base, id);
			if (!lock_held_elsewhere(lock)) {
				if (tag[6] == 'o' && !halo_fs_exists(final))
					rename(path, final);
				else
					halo_fs_remove_tree(path); /* the lock file itself too */
				unlink(lock);
			}
		}
		free(path);
		free(lock);
	}
	if (d)
		closedir(d);
	free(copy1);
	free(copy2);
}

static void output_free(halo_output_t *o);

/* Whether final (trimmed: without trailing slashes) may be written. */
static int writable(const char *final, const char *trimmed, int overwrite, halo_error_t *err)
{
	/* '-' is standard output to many tools; here it would be a folder. */
	if (!strcmp(final, "-"))
		return halo_error_set(err, HALO_EINVAL, "-: halo writes volumes to files, not to "
				      "standard output; name a file");
	if (halo_fs_exists(trimmed) && !overwrite)
		return halo_error_set(err, HALO_EEXIST, "%s: already exists (--overwrite of convert and "
				      "deconvolve, or \"overwrite\": true in a pipeline's step, "
				      "replaces it)",
				      final);
	struct stat lst;
	if (lstat(trimmed, &lst) == 0 && S_ISLNK(lst.st_mode))
		/* Renaming over it would replace the link, not what it names. */
		return halo_error_set(err, HALO_EEXIST, "%s: is a symbolic link; give the path it "
				      "points to, which --overwrite may replace", final);
	if (halo_fs_exists(trimmed) && !replaceable(trimmed))
		return halo_error_set(err, HALO_EEXIST, "%s: exists and is not a Zarr array or group, "
				      "nor a TIFF; halo replaces only what it writes", final);
	char *copy = strdup(trimmed), *parent = copy ? dirname(copy) : NULL; /* dirname writes */
	int parent_ok = parent && halo_fs_is_dir(parent);
	int can = parent_ok && access(parent, W_OK | X_OK) == 0, rofs = !can && errno == EROFS;
	/* The lock's name beside it (".NAME.halo-lock-ID"), the longest halo
	 * makes, must fit the folder's limit on a name. */
	long name_max = parent_ok ? pathconf(parent, _PC_NAME_MAX) : -1;
	if (!parent_ok || !can) {
		free(copy);
		return halo_error_set(err, parent_ok ? HALO_EIO : HALO_ENOENT, "%s: %s", final,
				      rofs ? "its folder is on a read-only filesystem"
				      : parent_ok ? "no permission to write in its folder"
						  : "parent directory does not exist");
	}
	/* In a sticky folder (/tmp) only a file's or the folder's owner may
	 * move it: refused now, not after the whole computation. */
	struct stat pst, tst;
	uid_t me = geteuid();
	int foreign = overwrite && me != 0 && stat(parent, &pst) == 0 && (pst.st_mode & S_ISVTX) &&
		      pst.st_uid != me && lstat(trimmed, &tst) == 0 && tst.st_uid != me;
	free(copy);
	if (foreign)
		return halo_error_set(err, HALO_EIO, "%s: belongs to another user in a sticky folder "
				      "(such as /tmp), where only its owner may replace it", final);
	/* Counted with the longest run id, so that a name is taken or
	 * refused the same way on every run and every MPI rank. */
	const char *base = strrchr(trimmed, '/');
	base = base ? base + 1 : trimmed;
	size_t extra = strlen("..halo-lock-") + 19;
	if (name_max > 0 && strlen(base) + extra > (size_t)name_max)
		return halo_error_set(err, HALO_EINVAL, "%s: the name is too long for the temporary "
				      "names halo writes beside it (%ld bytes at most here)", final,
				      name_max - (long)extra);
	return HALO_OK;
}

static char *trim(const char *final)
{
	char *trimmed = strdup(final);
	size_t len = trimmed ? strlen(trimmed) : 0;
	while (len > 1 && trimmed[len - 1] == '/')
		trimmed[--len] = '\0';
	return trimmed;
}

int halo_output_check(const char *final, int overwrite, halo_error_t *err)
{
	char *trimmed = trim(final);
	int rc = trimmed ? writable(final, trimmed, overwrite, err)
			 : halo_error_set(err, HALO_ENOMEM, "out of memory");
	free(trimmed);
	return rc;
}

/* The lock is made and locked under a name of its own (".NAME.halo-new-ID")
 * and then linked to its real one: a lock file under its real name is
 * always held, so that no run starting at the same moment takes it, in
 * between, for a killed run's and removes the output it guards. */
static int lock_create(halo_output_t *o, const char *final, halo_error_t *err)
{
	char *fresh = with_suffix(o->final, "new");
	if (!fresh)
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	int rc = HALO_OK, e = 0;
	/* A run starting meanwhile may find the fresh name before its flock
	 * and remove it (remove_stale): then link finds nothing; again. */
	for (int tries = 0; tries < 3 && !rc; tries++) {
		int fd = open(fresh, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			/* Without it a later run would take this one's output
			 * for a killed run's. */
			rc = halo_error_set(err, HALO_EIO, "%s: cannot create %s beside it: %s", final,
					    fresh, strerror(errno));
			break;
		}
		/* Another run may hold it for a moment, checking whether it is
		 * a killed run's (remove_stale): wait for that. */
		int got = flock(fd, LOCK_EX | LOCK_NB) == 0 ||
			  (errno == EWOULDBLOCK && flock(fd, LOCK_EX) == 0);
		if (!got) {
			/* No flock here (NFS without locking): no lock file
			 * either, which later runs would take for a live run's. */
			close(fd);
			unlink(fresh);
			break;
		}
		int linked = link(fresh, o->lock) == 0;
		e = errno;
		/* A filesystem without hard links (EPERM, ENOSYS on FUSE, ...):
		 * rename, which would replace the lock of a run that drew the
		 * same id (1 in 2^24 of a pid). */
		if (!linked && e != EEXIST && e != ENOENT) {
			linked = rename(fresh, o->lock) == 0;
			e = linked ? 0 : errno;
		}
		if (linked) {
			o->lock_fd = fd;
			unlink(fresh);
			break;
		}
		close(fd);
		unlink(fresh);
		if (e == EEXIST) /* another run drew the same id: never share */
			rc = halo_error_set(err, HALO_EEXIST, "%s: another halo run is writing it", final);
		else if (e != ENOENT)
			rc = halo_error_set(err, HALO_EIO, "%s: cannot create %s beside it: %s", final,
					    o->lock, strerror(e));
	}
	if (!rc && o->lock_fd < 0 && e == ENOENT)
		rc = halo_error_set(err, HALO_EIO, "%s: cannot create %s beside it: %s", final,
				    o->lock, strerror(e));
	free(fresh);
	return rc;
}

static int begin(const char *final, int overwrite, int clean, halo_output_t **out,
		 halo_error_t *err)
{
	*out = NULL;
	char *trimmed = trim(final);
	if (!trimmed)
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	if (clean) /* first: an old copy put back is an existing output */
		remove_stale(trimmed);
	int rc = writable(final, trimmed, overwrite, err);
	if (rc) {
		free(trimmed);
		return rc;
	}
	halo_output_t *o = calloc(1, sizeof *o);
	if (!o || !(o->tmp = with_suffix(trimmed, "tmp"))) {
		free(o);
		free(trimmed);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	o->final = trimmed;
	o->overwrite = overwrite;
	o->lock_fd = -1;
	if (clean) {
		/* Held until commit or abort (see lock_held_elsewhere). */
		if (!(o->lock = with_suffix(trimmed, "lock"))) {
			output_free(o);
			return halo_error_set(err, HALO_ENOMEM, "out of memory");
		}
		if ((rc = lock_create(o, final, err))) {
			output_free(o);
			return rc;
		}
		making_add(o);
	}
	*out = o;
	return HALO_OK;
}

int halo_output_begin(const char *final, int overwrite, halo_output_t **out,
		      halo_error_t *err)
{
	return begin(final, overwrite, 1, out, err);
}

int halo_output_join(const char *final, int overwrite, int writes, halo_output_t **out,
		     halo_error_t *err)
{
	int rc = begin(final, overwrite, 0, out, err);
	/* Each rank's local disk would get its own part of the output, and
	 * rank 0 commit its part alone, saying it succeeded. */
	if (!rc && writes && !halo_fs_exists((*out)->tmp)) {
		halo_output_release(*out);
		*out = NULL;
		rc = halo_error_set(err, HALO_ENOENT, "%s: this rank does not see the output rank 0 "
				    "is writing; under mpirun the ranks write into one output, on a "
				    "filesystem they share", final);
	}
	return rc;
}

const char *halo_output_tmp_path(const halo_output_t *o)
{
	return o->tmp;
}

const char *halo_output_final_path(const halo_output_t *o)
{
	return o->final;
}

static void output_free(halo_output_t *o)
{
	making_remove(o);
	if (o->lock_fd >= 0) {
		unlink(o->lock); /* before the lock goes, so no run sees it unheld */
		close(o->lock_fd);
	}
	free(o->final);
	free(o->tmp);
	free(o->old);
	free(o->lock);
	free(o);
}

/* rename() that fails (EEXIST) rather than replace what is at to: a file
 * put there after the check in swap, which a plain rename replaced (a TIFF
 * output: a folder is replaced only when empty). Filesystems without
 * RENAME_NOREPLACE (some NFS) get the plain rename, after that check. */
static int rename_new(const char *from, const char *to)
{
#ifdef RENAME_NOREPLACE
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
#endif
	return rename(from, to);
}

/* Swaps the names from and to (RENAME_EXCHANGE); -1 where the filesystem
 * or the kernel cannot. */
static int exchange(const char *from, const char *to)
{
#ifdef RENAME_EXCHANGE
	return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE);
#else
	(void)from;
	(void)to;
	errno = ENOSYS;
	return -1;
#endif
}

/* Puts the new output in place, an old one moved aside (o->old); on
 * failure the old one is back and the new one still under its temporary
 * name. */
static int swap(halo_output_t *o, halo_error_t *err)
{
	/* Runs replacing one output at once (--overwrite) each move aside
	 * what is in place and put theirs there; another run may move it
	 * first (ENOENT) or put its own in place first (ENOTEMPTY): then the
	 * move is tried again, and the last run's output stays. */
	for (int tries = 0;; tries++) {
		int again = tries < 16;
		if (halo_fs_exists(o->final)) {
			if (!o->overwrite)
				return halo_error_set(err, HALO_EEXIST, "%s: appeared while writing; not "
						      "replaced", o->final);
			if (!o->old && !(o->old = with_suffix(o->final, "old")))
				return halo_error_set(err, HALO_ENOMEM, "out of memory");
			/* A reader that opens the name meanwhile finds the old
			 * output or the new, never nothing (which would read
			 * as missing chunks: the fill value). The old one is
			 * then moved aside, as below. */
			if (exchange(o->tmp, o->final) == 0) {
				halo_fs_remove_tree(o->old);
				if (rename(o->tmp, o->old) == 0)
					return HALO_OK;
				exchange(o->tmp, o->final); /* as it was: tried below */
			} else if (errno == ENOENT && again) {
				continue;
			}
			/* What an earlier try moved aside: another run's output,
			 * or the one this run replaces; either way superseded. */
			halo_fs_remove_tree(o->old);
			if (rename(o->final, o->old) < 0) {
				int e = errno;
				free(o->old); /* nothing is kept aside */
				o->old = NULL;
				if (e == ENOENT && again)
					continue;
				return halo_error_set(err, HALO_EIO, "%s: cannot move the old output "
						      "aside: %s", o->final, strerror(e));
			}
		}
		if ((o->overwrite ? rename(o->tmp, o->final) : rename_new(o->tmp, o->final)) == 0)
			return HALO_OK;
		int e = errno;
		if ((e == ENOTEMPTY || e == EEXIST) && o->overwrite && again)
			continue;
		if (e == EEXIST && !o->overwrite)
			return halo_error_set(err, HALO_EEXIST, "%s: appeared while writing; not "
					      "replaced", o->final);
		int rc = halo_error_set(err, halo_fs_errno_code(e), "%s: %s", o->final, strerror(e));
		if (o->old && rename(o->old, o->final) == 0) {
			free(o->old);
			o->old = NULL;
		}
		return rc;
	}
}

/* Undoes swap: the new output back under its temporary name, the old one
 * back in place. */
static void unswap(halo_output_t *o)
{
	/* In one step where the filesystem has it, as in swap. */
	if (o->old && exchange(o->old, o->final) == 0) {
		rename(o->old, o->tmp);
		free(o->old);
		o->old = NULL;
		return;
	}
	if (rename(o->final, o->tmp) == 0 && o->old && rename(o->old, o->final) == 0) {
		free(o->old);
		o->old = NULL;
	}
}

/* Removes the old copy, unless a signal asks to stop: the output is in
 * place by then, and what is left of the old copy the next run to this
 * output removes (remove_stale). Frees o. */
static void finish(halo_output_t *o)
{
	/* Renamed first: a half-removed ".halo-old-" would be put back as
	 * the output were the output then deleted (remove_stale), where a
	 * ".halo-del-" is only ever removed. */
	char *del = o->old ? with_suffix(o->final, "del") : NULL;
	if (del && rename(o->old, del) == 0) {
		free(o->old);
		o->old = del;
	} else {
		free(del);
	}
	if (o->old && halo_fs_remove_tree_until(o->old, halo_interrupted) == 1)
		fprintf(stderr, "halo: %s: written; removing the old copy was interrupted, and the next "
				"run to it removes the rest (%s)\n", o->final, o->old);
	else if (o->old && halo_fs_exists(o->old)) /* a read-only folder in it, say */
		fprintf(stderr, "halo: %s: written; the old copy could not be removed: %s\n",
			o->final, o->old);
	output_free(o);
}

/* HALO_SYNC=1: outputs on the disk before taking their names, so that a
 * crash of the machine leaves the old outputs or the whole new ones. Not by
 * default: waiting for the writeback made a 257 MB convert 1.3x slower
 * here, and no peer waits for it. */
static int durable(void)
{
	const char *sync = getenv("HALO_SYNC");
	return sync && !strcmp(sync, "1");
}

int halo_output_flush(const halo_output_t *o, halo_error_t *err)
{
	return o && durable() ? halo_fs_sync(o->tmp, err) : HALO_OK;
}

int halo_outputs_commit(halo_output_t **o, int n, halo_error_t *err)
{
	int rc = HALO_OK, done = 0;
	for (int i = 0; i < n && !rc; i++)
		rc = halo_output_flush(o[i], err);
	while (!rc && done < n && !(rc = swap(o[done], err)))
		done++;
	if (rc) {
		/* All or none: the outputs already in place go back. */
		while (done-- > 0)
			unswap(o[done]);
		for (int i = 0; i < n; i++) {
			if (o[i]->old) /* could not be put back: keep it, under its name */
				fprintf(stderr, "halo: %s: the old copy is kept as %s\n", o[i]->final,
					o[i]->old);
			halo_output_abort(o[i]);
		}
		return rc;
	}
	for (int i = 0; i < n; i++) {
		if (durable())
			halo_fs_sync_parent(o[i]->final);
		finish(o[i]);
	}
	return HALO_OK;
}

int halo_output_commit(halo_output_t *o, halo_error_t *err)
{
	return halo_outputs_commit(&o, 1, err);
}

void halo_output_release(halo_output_t *o)
{
	if (o)
		output_free(o);
}

void halo_output_abort(halo_output_t *o)
{
	if (!o)
		return;
	halo_fs_remove_tree(o->tmp);
	output_free(o);
}

int halo_path_same(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* Through the real path of its deepest existing ancestor (outdir.h). */
char *halo_path_canonical(const char *path)
{
	char *head = strdup(path), *real = NULL, *out = NULL;
	size_t n = head ? strlen(head) : 0;
	while (n > 1 && head[n - 1] == '/')
		head[--n] = '\0';
	/* Cut names off the end until what is left exists. */
	while (head && !(real = realpath(*head ? head : ".", NULL))) {
		if (!*head)
			break; /* not even "." resolves (the folder was deleted) */
		char *slash = strrchr(head, '/');
		if (!slash)
			*head = '\0';
		else
			*(slash == head ? slash + 1 : slash) = '\0';
	}
	const char *rest = head ? path + strlen(head) : "";
	while (*rest == '/')
		rest++;
	if (real && (out = malloc(strlen(real) + strlen(rest) + 2)))
		sprintf(out, "%s%s%s", real, *rest && strcmp(real, "/") ? "/" : "", rest);
	free(real);
	free(head);
	if (out) {
		size_t m = strlen(out);
		while (m > 1 && out[m - 1] == '/')
			out[--m] = '\0';
	}
	return out;
}

int halo_path_within(const char *inner, const char *outer)
{
	struct stat so, si;
	if (stat(outer, &so) != 0) {
		/* outer is still to be made: compare the names (as given, when
		 * they cannot be made absolute). */
		char *ci = halo_path_canonical(inner), *co = halo_path_canonical(outer);
		const char *a = ci && co ? ci : inner, *b = ci && co ? co : outer;
		size_t n = strlen(b);
		int clash = strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
		/* outer may be a pattern that names files (a TIFF sequence) */
		clash |= strpbrk(b, "*?[") && fnmatch(b, a, FNM_PATHNAME | FNM_PERIOD) == 0;
		free(ci);
		free(co);
		return clash;
	}
	/* The deepest part of inner that exists, made absolute and canonical
	 * so that its ancestors are its prefixes. */
	char *p = strdup(inner), *real = NULL;
	while (p && !(real = realpath(p, NULL))) {
		char *copy = strdup(p), *up = copy ? dirname(copy) : NULL; /* dirname writes */
		char *next = up && strcmp(up, p) != 0 ? strdup(up) : NULL;
		free(copy);
		free(p);
		p = next;
	}
	free(p);
	int found = 0;
	for (char *c = real; c && !found;) {
		found = stat(c, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino;
		char *slash = strrchr(c, '/');
		if (!slash || slash == c)
			c = found || strcmp(c, "/") == 0 ? NULL : strcpy(c, "/");
		else
			*slash = '\0';
	}
	free(real);
	return found;
}
