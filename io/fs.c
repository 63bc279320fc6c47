/* Filesystem helpers for io/ (see fs.h). Writes check every step, close
 * included, because NFS and full disks report errors late. */
#include "config.h"
#include "io/fs.h"
#include "io/scratch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int halo_fs_errno_code(int e)
{
	switch (e) {
	case ENOENT: case ENOTDIR: return HALO_ENOENT;
	case ENOSPC: case EDQUOT: return HALO_ENOSPC;
	case ENOMEM: return HALO_ENOMEM;
	case EEXIST: return HALO_EEXIST;
	default: return HALO_EIO;
	}
}

ssize_t halo_fs_pread_all(int fd, void *buf, size_t size, off_t offset)
{
	size_t got = 0;
	while (got < size) {
		/* Linux moves at most 2 GiB - 4 KiB per call. */
		ssize_t r = pread(fd, (unsigned char *)buf + got, size - got, offset + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Reads the file fd, just opened, of `size` bytes into buf. */
static int read_all(int fd, const char *path, unsigned char *buf, size_t size, halo_error_t *err)
{
	ssize_t got = halo_fs_pread_all(fd, buf, size, 0);
	if (got != (ssize_t)size)
		return halo_error_set(err, HALO_EIO, "%s: %s", path,
				      got < 0 ? strerror(errno) : "file shrank while reading");
	return HALO_OK;
}

/* O_NONBLOCK so that a FIFO put in a file's place is refused instead of
 * waiting for a writer forever. */
int halo_fs_open_regular(const char *path, int *fd, size_t *size, halo_error_t *err)
{
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (*fd < 0)
		return halo_error_set(err, halo_fs_errno_code(errno), "%s: %s", path, strerror(errno));
	struct stat st;
	int e = fstat(*fd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
	if (e || !S_ISREG(st.st_mode)) {
		close(*fd);
		return halo_error_set(err, HALO_EIO, "%s: %s", path,
				      e ? strerror(e) : "not a regular file");
	}
	fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) & ~O_NONBLOCK);
	*size = (size_t)st.st_size;
	return HALO_OK;
}

int halo_fs_read(const char *path, void **data, size_t *len, halo_error_t *err)
{
	int fd;
	size_t size;
	*data = NULL;
	*len = 0;
	int rc = halo_fs_open_regular(path, &fd, &size, err);
	if (rc)
		return rc;
	unsigned char *buf = malloc(size ? size : 1);
	rc = buf ? read_all(fd, path, buf, size, err)
		 : halo_error_set(err, HALO_ENOMEM, "%s: out of memory reading %zu bytes", path, size);
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	*data = buf;
	*len = size;
	return HALO_OK;
}

/* Reads path into buf (max bytes), or, where buf is NULL, into the
 * calling thread's scratch slot, returned in *data. */
static int read_bounded(const char *path, void *buf, int slot, size_t max, void **data,
			size_t *len, halo_error_t *err)
{
	int fd;
	size_t size;
	int rc = halo_fs_open_regular(path, &fd, &size, err);
	if (rc)
		return rc;
	if (size > max) {
		close(fd);
		return halo_error_set(err, HALO_EFORMAT, "%s: holds %zu bytes, more than a chunk "
				      "of its array can (%zu)", path, size, max);
	}
	buf = buf ? buf : halo_scratch(slot, size ? size : 1);
	rc = buf ? read_all(fd, path, buf, size, err)
		 : halo_error_set(err, HALO_ENOMEM, "%s: out of memory reading %zu bytes", path, size);
	close(fd);
	if (data)
		*data = buf;
	*len = size;
	return rc;
}

int halo_fs_read_scratch(const char *path, int slot, size_t max, void **data, size_t *len,
			 halo_error_t *err)
{
	return read_bounded(path, NULL, slot, max, data, len, err);
}

int halo_fs_read_into(const char *path, void *buf, size_t max, size_t *len, halo_error_t *err)
{
	return read_bounded(path, buf, 0, max, NULL, len, err);
}

enum { WRITE_PIECE = 128 << 10 };

int halo_fs_create(const char *path, int *fd, halo_error_t *err)
{
	/* The umask decides (a group's shared folder under umask 002). */
	*fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (*fd < 0)
		return halo_error_set(err, halo_fs_errno_code(errno), "%s: %s", path, strerror(errno));
	return HALO_OK;
}

int halo_fs_write_fd(int fd, const char *path, const void *data, size_t len, halo_error_t *err)
{
	const unsigned char *p = data;
	size_t done = 0;
	while (done < len) {
		/* In pieces, as cp and cat write: one write() of a whole
		 * 2.3 MB chunk took the kernel (6.18, ext4) twice the time of
		 * 128 KiB pieces (bench/README.md, session 5). */
		size_t piece = len - done < WRITE_PIECE ? len - done : WRITE_PIECE;
		ssize_t w = write(fd, p + done, piece);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : ENOSPC;
			return halo_error_set(err, halo_fs_errno_code(e), "%s: %s", path, strerror(e));
		}
		done += (size_t)w;
	}
	return HALO_OK;
}

int halo_fs_close(int fd, const char *path, int rc, halo_error_t *err)
{
	if (close(fd) < 0 && !rc)
		rc = halo_error_set(err, halo_fs_errno_code(errno), "%s: %s", path, strerror(errno));
	return rc;
}

int halo_fs_write(const char *path, const void *data, size_t len, halo_error_t *err)
{
	int fd, rc = halo_fs_create(path, &fd, err);
	if (rc)
		return rc;
	return halo_fs_close(fd, path, halo_fs_write_fd(fd, path, data, len, err), err);
}

FILE *halo_fs_tmp_open(const char *path, char *tmp, size_t len)
{
	char *copy1 = strdup(path), *copy2 = strdup(path);
	const char *dir = copy1 ? dirname(copy1) : NULL, *base = copy2 ? basename(copy2) : NULL;
	DIR *d = dir && base ? opendir(dir) : NULL;
	size_t nb = base ? strlen(base) : 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		const char *n = e->d_name;
		if (n[0] != '.' || strncmp(n + 1, base, nb) != 0 ||
		    strncmp(n + 1 + nb, ".halo-tmp-", 10) != 0)
			continue;
		const char *id = n + 1 + nb + 10;
		if (!*id || strspn(id, "0123456789") != strlen(id))
			continue;
		long pid = strtol(id, NULL, 10);
		if (pid > 0 && pid <= INT_MAX && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
			char stale[4096];
			snprintf(stale, sizeof stale, "%s/%s", dir, n);
			unlink(stale);
		}
	}
	if (d)
		closedir(d);
	/* Hidden, as an output's temporary name is. */
	int named = dir && base;
	if (named)
		snprintf(tmp, len, "%s/.%s.halo-tmp-%ld", dir, base, (long)getpid());
	free(copy1);
	free(copy2);
	if (!named) {
		errno = ENOMEM;
		return NULL;
	}
	/* Made afresh: never through a link or a file someone else put under
	 * the name (an earlier process of this pid's left its own). */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
	if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
	if (fd >= 0 && !f) {
		int e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
	}
	return f;
}

int halo_fs_tmp_close(FILE *f, const char *tmp, const char *path)
{
	errno = 0;
	/* On the disk before it takes the name, or a crash could leave the
	 * name on an empty file. The first error is the one to tell (a full
	 * disk's, not the EIO of what follows it). */
	int bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
	int e = errno;
	/* A write that failed earlier (a full disk met while printing) left
	 * the stream's error flag but not its errno: a byte more finds it. */
	if (bad && !e) {
		char z = 0;
		off_t end = lseek(fileno(f), 0, SEEK_END);
		if (end >= 0 && pwrite(fileno(f), &z, 1, end) < 0)
			e = errno;
	}
	if ((fclose(f) != 0) | bad || rename(tmp, path) != 0) {
		e = e ? e : errno ? errno : EIO;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

int halo_fs_sync(const char *path, halo_error_t *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return halo_error_set(err, halo_fs_errno_code(e), "%s: not all of it reached the "
				      "disk: %s", path, strerror(e));
	}
	close(fd);
	return HALO_OK;
}

void halo_fs_sync_parent(const char *path)
{
	char *copy = strdup(path);
	int fd = copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

void halo_fs_insert_before_ext(const char *path, const char *insert, char *out, size_t len)
{
	const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
	if (!dot || (slash && dot < slash))
		dot = path + strlen(path);
	snprintf(out, len, "%.*s%s%s", (int)(dot - path), path, insert, dot);
}

int halo_fs_mkdirs(const char *path, halo_error_t *err)
{
	char *p = strdup(path);
	if (!p)
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0777) < 0 && errno != EEXIST) {
				int e = errno;
				int rc = halo_error_set(err, halo_fs_errno_code(e), "%s: %s", p, strerror(e));
				free(p);
				return rc;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	if (!halo_fs_is_dir(path))
		return halo_error_set(err, HALO_EINVAL, "%s: exists and is not a folder", path);
	return HALO_OK;
}

/* nftw passes no context, and one removal runs at a time per thread. */
static _Thread_local int (*stop_asked)(void);

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (stop_asked && stop_asked())
		return 1;
	remove(path);
	return 0;
}

int halo_fs_remove_tree_until(const char *path, int (*stop)(void))
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	stop_asked = stop;
	int rc = nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	stop_asked = NULL;
	return rc;
}

int halo_fs_remove_tree(const char *path)
{
	return halo_fs_remove_tree_until(path, NULL);
}

int halo_fs_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int halo_fs_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int halo_fs_replaceable_report(const char *path, const char *sig)
{
	char head[256];
	struct stat st;
	if (stat(path, &st) != 0)
		return errno == ENOENT;
	if (!S_ISREG(st.st_mode))
		return 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	size_t n = fread(head, 1, sizeof head, f);
	fclose(f);
	return n == 0 || memmem(head, n, sig, strlen(sig)) != NULL;
}

const char *halo_fs_uncreatable(const char *path)
{
	char *copy = strdup(path), *dir = copy ? dirname(copy) : NULL; /* dirname writes */
	/* Outputs are written beside and renamed into place, which would
	 * replace a link, a FIFO or a device rather than write to it. */
	struct stat st;
	const char *why = NULL;
	if (!dir || !*path)
		why = !dir ? strerror(ENOMEM) : "no name";
	else if (halo_fs_is_dir(path))
		why = "it is a folder";
	else if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
		why = "it is not a regular file";
	else if (!halo_fs_is_dir(dir))
		why = "its folder does not exist";
	else if (access(dir, W_OK | X_OK) != 0 || (access(path, F_OK) == 0 && access(path, W_OK) != 0))
		why = strerror(errno);
	/* access() says yes where creating fails: root in /proc, a
	 * filesystem that takes no new files. A file is made there. */
	char probe[PATH_MAX];
	int fd;
	if (!why && snprintf(probe, sizeof probe, "%s/.halo-probe-XXXXXX", dir) >= (int)sizeof probe)
		why = strerror(ENAMETOOLONG);
	else if (!why && (fd = mkstemp(probe)) < 0)
		why = strerror(errno);
	else if (!why) {
		close(fd);
		unlink(probe);
	}
	free(copy);
	return why;
}
