/* TIFF sequences (see tiffseq.h): the files listed and sorted once, each
 * opened once to learn its planes, and again for each read. */
#include "config.h"
#include "io/tiffseq.h"
#include "io/fs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct halo_tiffseq {
	char *path;
	char **files;
	int64_t nfiles;
	int64_t *start; /* the first plane of each file; start[nfiles]: all */
	halo_tiff_info_t info;
};

static int tiff_name(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && /* hidden, or macOS's "._x.tif" forks */
	       ((n > 4 && !strcasecmp(name + n - 4, ".tif")) ||
		(n > 5 && !strcasecmp(name + n - 5, ".tiff")));
}

static int has_glob(const char *path)
{
	return strpbrk(path, "*?[") != NULL;
}

static int zarr_folder(const char *path)
{
	static const char *const marks[] = {".zarray", ".zgroup", ".zattrs", "zarr.json"};
	char f[4096];
	for (size_t i = 0; i < sizeof marks / sizeof *marks; i++) {
		snprintf(f, sizeof f, "%s/%s", path, marks[i]);
		if (halo_fs_exists(f))
			return 1;
	}
	return 0;
}

int halo_tiffseq_named(const char *path)
{
	if (!halo_fs_exists(path))
		return has_glob(path);
	if (!halo_fs_is_dir(path) || zarr_folder(path))
		return 0;
	DIR *d = opendir(path);
	int found = 0;
	for (struct dirent *e; d && !found && (e = readdir(d));)
		found = tiff_name(e->d_name);
	if (d)
		closedir(d);
	return found;
}

/* Natural order: runs of digits compare as numbers ("z2" < "z10"), and
 * equal numbers by their length ("z01" after "z1"). */
static int natural(const void *pa, const void *pb)
{
	const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
	while (*a && *b) {
		if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			const char *a0 = a, *b0 = b;
			while (*a == '0')
				a++;
			while (*b == '0')
				b++;
			size_t na = strspn(a, "0123456789"), nb = strspn(b, "0123456789");
			if (na != nb)
				return na < nb ? -1 : 1;
			int c = strncmp(a, b, na);
			if (c)
				return c;
			a += na;
			b += nb;
			if (a - a0 != b - b0)
				return a - a0 < b - b0 ? -1 : 1;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

static int add_file(halo_tiffseq_t *s, const char *name, halo_error_t *err)
{
	if ((s->nfiles & (s->nfiles - 1)) == 0) { /* at powers of two */
		char **more = realloc(s->files, (size_t)(s->nfiles ? 2 * s->nfiles : 1) * sizeof *more);
		if (!more)
			return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", s->path);
		s->files = more;
	}
	if (!(s->files[s->nfiles] = strdup(name)))
		return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", s->path);
	s->nfiles++;
	return HALO_OK;
}

static int list_files(halo_tiffseq_t *s, halo_error_t *err)
{
	int rc = HALO_OK;
	if (halo_fs_is_dir(s->path)) {
		DIR *d = opendir(s->path);
		if (!d)
			return halo_error_set(err, halo_fs_errno_code(errno), "%s: %s", s->path,
					      strerror(errno));
		char f[4096];
		for (struct dirent *e; !rc && (e = readdir(d));)
			if (tiff_name(e->d_name)) {
				snprintf(f, sizeof f, "%s/%s", s->path, e->d_name);
				rc = add_file(s, f, err);
			}
		closedir(d);
	} else {
		glob_t g;
		int found = glob(s->path, 0, NULL, &g);
		if (found == GLOB_NOSPACE)
			return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", s->path);
		for (size_t i = 0; found == 0 && !rc && i < g.gl_pathc; i++)
			if (!halo_fs_is_dir(g.gl_pathv[i]))
				rc = add_file(s, g.gl_pathv[i], err);
		if (found == 0)
			globfree(&g);
	}
	if (!rc && !s->nfiles) /* a name with [ or * that is no file's either */
		rc = halo_error_set(err, HALO_ENOENT, "%s: %s", s->path,
				    halo_fs_is_dir(s->path) ? "no TIFF file in this folder"
				    : "no such file, and no TIFF file matches it as a pattern");
	if (!rc)
		qsort(s->files, (size_t)s->nfiles, sizeof *s->files, natural);
	return rc;
}

/* File i's planes, checked against the first's. */
static int inspect(halo_tiffseq_t *s, int64_t i, halo_error_t *err)
{
	halo_tiff_t *t;
	int rc = halo_tiff_open(s->files[i], &t, err);
	if (rc)
		return rc;
	const halo_tiff_info_t *ti = halo_tiff_info(t), *first = &s->info;
	int64_t planes = ti->shape[0];
	if (ti->channels > 1 || ti->times > 1)
		rc = halo_error_set(err, HALO_EUNSUPPORTED, "%s: a file of %lld channels and %lld time "
				    "points in a sequence; halo reads sequences of single-channel "
				    "files", s->files[i], (long long)ti->channels, (long long)ti->times);
	else if (i == 0)
		s->info = *ti;
	else if (ti->shape[1] != first->shape[1] || ti->shape[2] != first->shape[2] ||
		 ti->dtype.kind != first->dtype.kind)
		rc = halo_error_set(err, HALO_EUNSUPPORTED, "%s: planes of %lldx%lld %s, where %s has "
				    "%lldx%lld %s", s->files[i], (long long)ti->shape[1],
				    (long long)ti->shape[2], halo_dtype_name(ti->dtype), s->files[0],
				    (long long)first->shape[1], (long long)first->shape[2],
				    halo_dtype_name(first->dtype));
	halo_tiff_close(t, NULL);
	if (!rc && s->start[i] > INT64_MAX - planes)
		rc = halo_error_set(err, HALO_EFORMAT, "%s: too many planes", s->path);
	if (!rc)
		s->start[i + 1] = s->start[i] + planes;
	return rc;
}

int halo_tiffseq_open(const char *path, halo_tiffseq_t **out, halo_error_t *err)
{
	*out = NULL;
	halo_tiffseq_t *s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	int rc = list_files(s, err);
	if (!rc && !(s->start = calloc((size_t)s->nfiles + 1, sizeof *s->start)))
		rc = halo_error_set(err, HALO_ENOMEM, "%s: out of memory", path);
	for (int64_t i = 0; !rc && i < s->nfiles; i++)
		rc = inspect(s, i, err);
	if (rc) {
		halo_tiffseq_close(s);
		return rc;
	}
	/* A sequence is a stack, even of one plane. */
	s->info.ndim = 3;
	s->info.shape[0] = s->start[s->nfiles];
	s->info.channels = s->info.times = 0;
	*out = s;
	return HALO_OK;
}

const halo_tiff_info_t *halo_tiffseq_info(const halo_tiffseq_t *s)
{
	return &s->info;
}

int64_t halo_tiffseq_files(const halo_tiffseq_t *s)
{
	return s->nfiles;
}

int halo_tiffseq_read_pages(halo_tiffseq_t *s, int64_t z0, int64_t nz, void *buf,
			    halo_error_t *err)
{
	size_t plane = (size_t)s->info.shape[1] * (size_t)s->info.shape[2] *
		       halo_dtype_size(s->info.dtype);
	/* The last file that starts at or before z0 */
	int64_t lo = 0, hi = s->nfiles - 1;
	while (lo < hi) {
		int64_t mid = (lo + hi + 1) / 2;
		if (s->start[mid] <= z0)
			lo = mid;
		else
			hi = mid - 1;
	}
	for (int64_t z = z0, i = lo; z < z0 + nz; i++) {
		int64_t first = z - s->start[i], n = s->start[i + 1] - z;
		if (n > z0 + nz - z)
			n = z0 + nz - z;
		halo_tiff_t *t;
		int rc = halo_tiff_open(s->files[i], &t, err);
		if (!rc && halo_tiff_info(t)->shape[0] != s->start[i + 1] - s->start[i])
			rc = halo_error_set(err, HALO_EFORMAT, "%s: changed while being read", s->files[i]);
		if (!rc)
			rc = halo_tiff_read_pages(t, first, n, (unsigned char *)buf +
								  (size_t)(z - z0) * plane, err);
		halo_tiff_close(t, NULL);
		if (rc)
			return rc;
		z += n;
	}
	return HALO_OK;
}

void halo_tiffseq_close(halo_tiffseq_t *s)
{
	if (!s)
		return;
	for (int64_t i = 0; i < s->nfiles; i++)
		free(s->files[i]);
	free(s->files);
	free(s->start);
	free(s->path);
	free(s);
}
