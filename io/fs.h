/* Small filesystem helpers for io/: whole-file reads and writes with errors
 * that name the file and say what went wrong (missing, no space, ...). */
#ifndef HALO_IO_FS_H
#define HALO_IO_FS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "halo.h"

/* Reads a whole file into a malloc'ed buffer (the caller frees *data).
 * A missing file gives HALO_ENOENT. */
int halo_fs_read(const char *path, void **data, size_t *len, halo_error_t *err);

/* Like halo_fs_read, into the calling thread's scratch buffer `slot`
 * (io/scratch.h): *data is valid until that thread's next use of the slot
 * and must not be freed. A file of more than max bytes is refused unread. */
int halo_fs_read_scratch(const char *path, int slot, size_t max, void **data, size_t *len,
			 halo_error_t *err);

/* Like halo_fs_read, into buf, which holds max bytes; a larger file is
 * refused unread. */
int halo_fs_read_into(const char *path, void *buf, size_t max, size_t *len, halo_error_t *err);

/* Opens a regular file read-only; *size is its size. */
int halo_fs_open_regular(const char *path, int *fd, size_t *size, halo_error_t *err);

/* pread until size bytes, end of file or an error (-1, errno set):
 * returns the bytes read, short only at end of file. */
ssize_t halo_fs_pread_all(int fd, void *buf, size_t size, off_t offset);

/* Writes len bytes to path, creating or truncating it; ENOSPC gives
 * HALO_ENOSPC. */
int halo_fs_write(const char *path, const void *data, size_t len, halo_error_t *err);

/* The same in pieces: create (or truncate) path, write to it, close it.
 * halo_fs_close returns rc, or its own error where rc is HALO_OK (a
 * full disk may show only at close). */
int halo_fs_create(const char *path, int *fd, halo_error_t *err);
int halo_fs_write_fd(int fd, const char *path, const void *data, size_t len, halo_error_t *err);
int halo_fs_close(int fd, const char *path, int rc, halo_error_t *err);

/* mkdir -p; existing directories are fine. */
int halo_fs_mkdirs(const char *path, halo_error_t *err);

/* rm -rf; a missing path is fine. */
int halo_fs_remove_tree(const char *path);
/* The same, stopping early (returning 1) once stop() returns non-zero. */
int halo_fs_remove_tree_until(const char *path, int (*stop)(void));

int halo_fs_exists(const char *path);
/* path with insert put before its extension ("run.json", ".rank1" ->
 * "run.rank1.json"; at the end when it has none). */
void halo_fs_insert_before_ext(const char *path, const char *insert, char *out, size_t len);
int halo_fs_is_dir(const char *path);
/* NULL when a file can be created at path as far as can be told before
 * writing it: a name, in a folder that exists and may be written, not
 * itself a folder, and if it exists a writable regular file (not a link,
 * FIFO or device, which renaming into place would replace); a probe file
 * is made in that folder and removed, since access() can say yes where
 * creating fails. Else why not, in a few words ("Read-only file system"). */
const char *halo_fs_uncreatable(const char *path);

/* 1 when a file halo writes (a report, FFTW's wisdom) may replace what is
 * at path: nothing, an empty regular file, or a regular file whose first
 * 256 bytes hold sig (what marks halo's own: a format's usual opening,
 * such as an HTML page's, does not); never a user's other file, a folder
 * or a device, nor one that cannot be read. */
int halo_fs_replaceable_report(const char *path, const char *sig);

/* A file written under a temporary name beside path (".NAME.halo-tmp-PID")
 * and renamed into place once whole: readers never see half of it.
 * Opening first removes the temporary files of writers that are gone (their
 * process no longer exists: killed while writing), which nothing else
 * would. NULL (errno set) when it cannot be created. */
FILE *halo_fs_tmp_open(const char *path, char *tmp, size_t len);
/* Closes f and renames tmp to path; on any error removes tmp and returns
 * -1 with errno set. */
int halo_fs_tmp_close(FILE *f, const char *tmp, const char *path);

/* Writes what is cached of path's filesystem to its disk (syncfs), so
 * that an output renamed into place after it survives a crash whole; an
 * error of a write that failed late (NFS, a full disk) is reported here. */
int halo_fs_sync(const char *path, halo_error_t *err);
/* Makes the renames in path's folder durable; errors are passed over. */
void halo_fs_sync_parent(const char *path);

/* Maps errno to a halo code. */
int halo_fs_errno_code(int e);

#endif
