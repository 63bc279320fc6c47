/* Atomic outputs (io/outdir.c): several outputs commit all or none, an
 * output replaced is never missing to a reader meanwhile, and what killed
 * runs left beside an output is removed by the next run to it. */
#include "config.h"
#include "io/fs.h"
#include "io/outdir.h"
#include "tests/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[2048];

static const char *at(const char *name)
{
	static char buf[4][4096];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
	return buf[k];
}

/* A one-file "output": a folder holding what. */
static void make(const char *path, const char *what)
{
	char f[4096];
	mkdir(path, 0755);
	snprintf(f, sizeof f, "%s/.zarray", path);
	FILE *fp = fopen(f, "w");
	if (fp) {
		fputs(what, fp);
		fclose(fp);
	}
}

static int holds(const char *path, const char *what)
{
	char f[4096], got[64] = "";
	snprintf(f, sizeof f, "%s/.zarray", path);
	FILE *fp = fopen(f, "r");
	if (!fp)
		return 0;
	if (!fgets(got, sizeof got, fp))
		got[0] = '\0';
	fclose(fp);
	return strcmp(got, what) == 0;
}

static void all_or_none(void)
{
	halo_error_t err = {0};
	halo_output_t *o[2] = {NULL, NULL};
	make(at("one.zarr"), "old one");
	int rc = halo_output_begin(at("one.zarr"), 1, &o[0], &err) ||
		 halo_output_begin(at("two.zarr"), 0, &o[1], &err);
	tap_ok(!rc, "two outputs begun: %s", err.msg);
	if (rc)
		return;
	make(halo_output_tmp_path(o[0]), "new one");
	make(halo_output_tmp_path(o[1]), "new two");
	make(at("two.zarr"), "someone else's"); /* appears while the run writes */
	rc = halo_outputs_commit(o, 2, &err);
	tap_ok(rc == HALO_EEXIST && strstr(err.msg, "appeared while writing"),
	       "the second output cannot be committed: %s", err.msg);
	tap_ok(holds(at("one.zarr"), "old one"),
	       "... so the first is not replaced either: the old one is back");
	tap_ok(holds(at("two.zarr"), "someone else's"), "... and the other process's is untouched");

	/* Both committed: the old copy goes. */
	memset(&err, 0, sizeof err);
	halo_fs_remove_tree(at("two.zarr"));
	rc = halo_output_begin(at("one.zarr"), 1, &o[0], &err) ||
	     halo_output_begin(at("two.zarr"), 0, &o[1], &err);
	if (!rc) {
		make(halo_output_tmp_path(o[0]), "new one");
		make(halo_output_tmp_path(o[1]), "new two");
		rc = halo_outputs_commit(o, 2, &err);
	}
	tap_ok(!rc && holds(at("one.zarr"), "new one") && holds(at("two.zarr"), "new two"),
	       "both committed: %s", err.msg);
}

static void stale(void)
{
	/* Left by killed runs (their locks gone with them): a temporary
	 * output, and an old copy whose output is in place. */
	make(at(".three.zarr.halo-tmp-41"), "killed");
	make(at("four.zarr"), "new four");
	make(at(".four.zarr.halo-old-41"), "killed");
	/* A killed run's old copy whose output never came: the only copy. */
	make(at(".five.zarr.halo-old-41"), "old five");
	/* A live run's (anywhere: its lock is held), and another output's. */
	make(at(".three.zarr.halo-tmp-77"), "live");
	int fd = open(at(".three.zarr.halo-lock-77"), O_RDWR | O_CREAT, 0644);
	int held = fd >= 0 && flock(fd, LOCK_EX) == 0;
	make(at(".threefold.zarr.halo-tmp-41"), "another output's");
	halo_error_t err = {0};
	halo_output_t *o[3] = {NULL, NULL, NULL};
	int rc = halo_output_begin(at("three.zarr"), 0, &o[0], &err) ||
		 halo_output_begin(at("four.zarr"), 1, &o[1], &err);
	tap_ok(!rc && !halo_fs_exists(at(".three.zarr.halo-tmp-41")) &&
	       !halo_fs_exists(at(".four.zarr.halo-old-41")) && holds(at("four.zarr"), "new four"),
	       "what killed runs left beside an output is removed: %s", err.msg);
	tap_ok(held && halo_fs_exists(at(".three.zarr.halo-tmp-77")) &&
	       halo_fs_exists(at(".threefold.zarr.halo-tmp-41")),
	       "... not a live run's (its lock is held), nor another output's");
	rc = halo_output_begin(at("five.zarr"), 0, &o[2], &err);
	tap_ok(rc == HALO_EEXIST && holds(at("five.zarr"), "old five"),
	       "an old copy whose replacement never came is put back: %s", err.msg);
	/* A replaced copy half removed, its replacement deleted since: it
	 * was put back as the output, and then --overwrite refused it. */
	make(at(".six.zarr.halo-del-41"), "half removed six");
	halo_output_t *six = NULL;
	rc = halo_output_begin(at("six.zarr"), 0, &six, &err);
	tap_ok(!rc && !halo_fs_exists(at("six.zarr")) && !halo_fs_exists(at(".six.zarr.halo-del-41")),
	       "a replaced copy half removed is removed, not put back: %s", err.msg);
	halo_output_abort(six);
	halo_output_abort(o[0]);
	halo_output_abort(o[1]);
	if (fd >= 0)
		close(fd);
}

/* A run's lock appears under its real name already held: made and locked
 * under ".NAME.halo-new-ID", then linked into place. Before, it was created
 * and then locked, and a run starting in between took it for a killed
 * run's and removed the live run's temporary output. */
static void lock_in_place(void)
{
	int fd = open(at(".seven.zarr.halo-new-77"), O_RDWR | O_CREAT, 0644);
	int held = fd >= 0 && flock(fd, LOCK_EX) == 0;
	close(open(at(".seven.zarr.halo-new-41"), O_RDWR | O_CREAT, 0644));
	halo_error_t err = {0};
	halo_output_t *o = NULL;
	int rc = halo_output_begin(at("seven.zarr"), 0, &o, &err);
	char lock[64], fresh[64];
	snprintf(lock, sizeof lock, ".seven.zarr.halo-lock-%ld", halo_output_run_id());
	snprintf(fresh, sizeof fresh, ".seven.zarr.halo-new-%ld", halo_output_run_id());
	int probe = open(at(lock), O_RDWR);
	int locked = probe >= 0 && flock(probe, LOCK_EX | LOCK_NB) != 0;
	tap_ok(!rc && locked && !halo_fs_exists(at(fresh)),
	       "a run's lock is in place and held, its fresh name gone: %s", err.msg);
	tap_ok(held && halo_fs_exists(at(".seven.zarr.halo-new-77")) &&
		       !halo_fs_exists(at(".seven.zarr.halo-new-41")),
	       "a lock a killed run left before linking it is removed, a live run's kept");
	if (probe >= 0)
		close(probe);
	halo_output_abort(o);
	if (fd >= 0)
		close(fd);
}

/* Two runs that drew one id (the same pid in two containers sharing a
 * folder, before ids had random bits): the second is refused, never
 * writes into the first's temporary output. */
static void same_id(void)
{
	long a = halo_output_run_id(), b = halo_output_run_id();
	tap_ok(a == b && a > 0 && (a >> 24) == (long)getpid(), "a run's id is drawn once, pid first");
	halo_output_set_run_id(99);
	int fd = open(at(".six.zarr.halo-lock-99"), O_RDWR | O_CREAT, 0644);
	int held = fd >= 0 && flock(fd, LOCK_EX) == 0;
	halo_error_t err = {0};
	halo_output_t *o = NULL;
	int rc = halo_output_begin(at("six.zarr"), 1, &o, &err);
	tap_ok(held && rc == HALO_EEXIST && !o && strstr(err.msg, "another halo run is writing"),
	       "a run whose id another live run holds is refused: %s", err.msg);
	if (fd >= 0)
		close(fd);
	halo_output_set_run_id(a);
}

/* A reader looks at an output while it is replaced 200 times: it found the
 * name missing between the two renames that replaced it (and read missing
 * chunks as the fill value), where the filesystem can swap them in one. */
static void never_missing(void)
{
	/* Where the filesystem cannot exchange two names (NFS, some FUSE
	 * mounts), two renames replace the output, which a reader may see. */
	make(at("xa"), "a");
	make(at("xb"), "b");
	if (renameat2(AT_FDCWD, at("xa"), AT_FDCWD, at("xb"), RENAME_EXCHANGE) != 0) {
		tap_skip("this filesystem cannot exchange two names", "an output replaced "
			 "while a reader looks");
		return;
	}
	halo_error_t err = {0};
	char path[4096], zarray[4200];
	snprintf(path, sizeof path, "%s", at("seen.zarr"));
	snprintf(zarray, sizeof zarray, "%s/.zarray", path);
	make(path, "0");
	long *missing = mmap(NULL, sizeof *missing, PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (missing == MAP_FAILED)
		return;
	*missing = 0;
	pid_t child = fork();
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* not left spinning */
		struct stat st;
		for (;;)
			if (stat(zarray, &st) != 0)
				__atomic_add_fetch(missing, 1, __ATOMIC_RELAXED);
	}
	int rc = 0;
	for (int i = 0; i < 200 && !rc; i++) {
		halo_output_t *o = NULL;
		rc = halo_output_begin(path, 1, &o, &err);
		if (!rc) {
			make(halo_output_tmp_path(o), "new");
			rc = halo_output_commit(o, &err);
		}
	}
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	tap_ok(child > 0 && !rc && *missing == 0, "an output replaced 200 times while a reader "
	       "looks: never missing (%ld times) %s", *missing, err.msg);
	munmap(missing, sizeof *missing);
}

int main(void)
{
	const char *tmp = getenv("HALO_TEST_TMP");
	snprintf(dir, sizeof dir, "%s/outdir", tmp ? tmp : "/tmp");
	halo_fs_remove_tree(dir);
	mkdir(dir, 0755);
	all_or_none();
	stale();
	lock_in_place();
	same_id();
	never_missing();
	halo_fs_remove_tree(dir);
	return tap_done();
}
