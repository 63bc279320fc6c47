/* One face for every stored volume (see volume.h): format detection,
 * OME-NGFF 0.4 multiscales metadata, and the mapping of 2D images and TIFF
 * page ranges onto halo's 3D chunk grid. */
#include "config.h"
#include "io/volume.h"
#include "io/fs.h"
#include "io/json.h"
#include "io/scratch.h"
#include "io/tiff.h"
#include "io/tiffseq.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct halo_reader {
	halo_format_t format;
	char *path;
	halo_volume_info_t info;
	halo_zarr_t *zarr;
	halo_tiff_t *tiff;
	halo_tiffseq_t *seq; /* a TIFF sequence, read through tiff's info */
	int crop; /* a stored chunk holds more than a chunk of the volume */
	int src[3];                /* the Zarr axis of z, y, x; -1: none (length 1) */
	int64_t lead[HALO_MAXDIM]; /* the index read along every other Zarr axis */
	int64_t channels, times;   /* along the file's channel and time axes */
	int64_t channel;           /* the one read */
	json_t *attrs;             /* OME-Zarr: the group's, while opening */
	json_t *omero;             /* OME-Zarr: its "omero" of that channel */
	json_t *names;             /* OME-Zarr: its channels' labels */
	char ome_version[16];      /* OME-Zarr: as its metadata says */
};

#define MAX_LEVELS 16

struct halo_writer {
	halo_format_t format;
	char *path;
	halo_volume_info_t info;
	halo_writer_opts_t opts;
	halo_zarr_t *zarr;
	halo_tiff_t *tiff;
	halo_writer_t *levels[MAX_LEVELS]; /* OME pyramid levels 1.. */
	int nlevels;                       /* including level 0 */
	json_t *provenance;                /* OME-Zarr: its copy, for .zattrs */
	json_t *omero;                     /* OME-Zarr: its copy, for .zattrs */
};

/* TIFF pages per chunk when reading: about 64 MiB per chunk. */
static int64_t tiff_chunk_depth(const halo_tiff_info_t *ti)
{
	int64_t page = ti->shape[1] * ti->shape[2] * (int64_t)halo_dtype_size(ti->dtype);
	int64_t n = page > 0 ? (INT64_C(64) << 20) / page : 1;
	if (n < 1)
		n = 1;
	return n > ti->shape[0] ? ti->shape[0] : n;
}

int halo_path_has_ext(const char *path, const char *ext)
{
	size_t n = strlen(path), m = strlen(ext);
	while (n > 1 && path[n - 1] == '/')
		n--;
	return n >= m && strncasecmp(path + n - m, ext, m) == 0;
}

static int is_tiff_file(const char *path)
{
	if (halo_path_has_ext(path, ".tif") || halo_path_has_ext(path, ".tiff"))
		return 1;
	FILE *f = fopen(path, "rb");
	unsigned char m[4] = {0};
	if (!f)
		return 0;
	size_t n = fread(m, 1, 4, f);
	fclose(f);
	return n == 4 && ((m[0] == 'I' && m[1] == 'I' && (m[2] == 42 || m[2] == 43) && m[3] == 0) ||
			  (m[0] == 'M' && m[1] == 'M' && m[2] == 0 && (m[3] == 42 || m[3] == 43)));
}

int halo_volume_shards(const int64_t shape[3], const int64_t chunks[3], const int64_t want[3],
		       int64_t inner[3], int64_t shards[3])
{
	for (int d = 0; d < 3; d++) {
		int64_t in = inner[d] = chunks[d] < shape[d] ? chunks[d] : shape[d];
		int64_t top = (shape[d] + in - 1) / in * in;
		/* A chunk of the whole axis makes any shard one chunk: what the
		 * chunks were before they were cut to the axis does not matter. */
		if (chunks[d] >= shape[d]) {
			shards[d] = in;
			continue;
		}
		if (want[d] % in)
			return d;
		shards[d] = want[d] < top ? want[d] : top; /* chunks may be shards */
	}
	return -1;
}

int halo_volume_chunks_fit(halo_format_t format, int64_t chunks[3], size_t elsize)
{
	if (format != HALO_FMT_TIFF)
		return halo_zarr_chunks_fit(chunks, elsize);
	/* In floating point, so that no product of huge sizes wraps around. */
	double plane = (double)elsize * (double)chunks[1] * (double)chunks[2];
	int changed = 0;
	for (; chunks[0] > 1 && plane * (double)chunks[0] > (double)HALO_ZARR_MAX_CHUNK_BYTES;
	     changed = 1)
		chunks[0] = (chunks[0] + 1) / 2;
	return changed;
}

int halo_path_ome_tiff(const char *path)
{
	return halo_path_has_ext(path, ".ome.tif") || halo_path_has_ext(path, ".ome.tiff");
}

int halo_path_check_output(const char *path, halo_error_t *err)
{
	static const char *const foreign[] = {
		".h5", ".hdf5", ".hdf", ".n5", ".nii", ".nii.gz", ".npy", ".npz", ".mrc",
		".png", ".jpg", ".jpeg", ".czi", ".nd2", ".lif", ".ims", ".klb", ".raw",
	};
	for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++)
		if (halo_path_has_ext(path, foreign[i]))
			return halo_error_set(err, HALO_EINVAL, "%s: halo writes Zarr (a folder), "
					      "OME-Zarr (*.ome.zarr) and TIFF (*.tif), not %s files",
					      path, foreign[i]);
	return HALO_OK;
}

halo_format_t halo_format_from_path(const char *path)
{
	if (halo_path_has_ext(path, ".tif") || halo_path_has_ext(path, ".tiff"))
		return HALO_FMT_TIFF;
	if (halo_path_has_ext(path, ".ome.zarr"))
		return HALO_FMT_OME_ZARR;
	return HALO_FMT_ZARR;
}

/* An OME-Zarr's "omero" rendering settings' list of channels (napari's
 * and OMERO's names, colours and contrast windows), where it has one entry
 * per channel; NULL otherwise. */
static const json_t *omero_channels(const json_t *attrs, int64_t channels)
{
	const json_t *list = json_object_get(json_object_get(attrs, "omero"), "channels");
	return json_is_array(list) && (int64_t)json_array_size(list) == channels ? list : NULL;
}

/* The "omero" settings for the one channel read: its own entry alone. */
static json_t *omero_of(const json_t *attrs, int64_t channel, int64_t channels)
{
	const json_t *list = omero_channels(attrs, channels);
	if (!list)
		return NULL;
	json_t *one = json_deep_copy(json_object_get(attrs, "omero"));
	json_object_set_new(one, "channels",
			    json_pack("[O]", json_array_get(list, (size_t)channel)));
	return one;
}

/* The channels' labels (NULL unless each has one), so that a user sees
 * which --channel is which. */
static json_t *channel_names(const json_t *attrs, int64_t channels)
{
	const json_t *list = omero_channels(attrs, channels);
	if (!list || channels < 2)
		return NULL;
	json_t *names = json_array();
	for (size_t i = 0; names && i < json_array_size(list); i++) {
		const json_t *label = json_object_get(json_array_get(list, i), "label");
		if (!json_is_string(label)) {
			json_decref(names);
			return NULL;
		}
		json_array_append(names, (json_t *)label);
	}
	return names;
}

/* Reads OME-NGFF multiscales from a group's attributes: the first
 * dataset's path, the voxel size and the position of voxel (0, 0, 0) (the
 * dataset's scale and translation, then the multiscale-level ones), the
 * spatial unit (OME-NGFF's name, or none), the number of
 * axes (0 when not given) and how many of the last are space axes (2 or
 * 3). Returns 0 when attrs holds no multiscales, -1 with why filled when
 * its metadata cannot describe a z, y, x volume. */
static int ome_level0(const json_t *attrs, char *dataset, size_t len, double voxel[3],
		      double origin[3], char *unit, size_t ulen, size_t *naxes, size_t *nspace,
		      char roles[HALO_MAXDIM], char *why, size_t wlen)
{
	const json_t *all = json_object_get(attrs, "multiscales");
	if (!all)
		return 0;
	const json_t *ms = json_array_get(all, 0);
	if (!json_is_object(ms)) {
		snprintf(why, wlen, "multiscales is not a list of objects");
		return -1;
	}
	const json_t *ds = json_array_get(json_object_get(ms, "datasets"), 0);
	const char *p = json_string_value(json_object_get(ds, "path"));
	if (!p) {
		snprintf(why, wlen, "multiscales has no dataset with a path");
		return -1;
	}
	/* A key inside the group: ".." or a leading "/" would read another
	 * array than the image's. */
	if (p[0] == '/' || !strcmp(p, "..") || !strncmp(p, "../", 3) || strstr(p, "/../") ||
	    (strlen(p) >= 3 && !strcmp(p + strlen(p) - 3, "/.."))) {
		snprintf(why, wlen, "dataset path '%s' leaves the group", p);
		return -1;
	}
	snprintf(dataset, len, "%s", p);
	const json_t *axes = json_object_get(ms, "axes");
	size_t na = *naxes = json_array_size(axes);
	*nspace = na < 3 ? na : 3;
	/* Space axes come last, as z, y, x: halo reads the last axes so,
	 * and would label x, y, z as z, y, x. */
	static const char *const names[3] = {"z", "y", "x"};
	for (size_t d = 0; d < 3 && d < na; d++) {
		const json_t *a = json_array_get(axes, na - 1 - d);
		/* OME-NGFF 0.3 lists names alone: "axes": ["z", "y", "x"] */
		const char *name = json_is_string(a) ? json_string_value(a)
						     : json_string_value(json_object_get(a, "name"));
		const char *type = json_string_value(json_object_get(a, "type"));
		/* A 2D image's y, x after a channel or time axis (typed, or
		 * named c or t in 0.3, where axes have no type) */
		if (d == 2 && (type ? strcmp(type, "space") != 0
				    : name && (!strcmp(name, "c") || !strcmp(name, "t")))) {
			*nspace = 2;
			break;
		}
		if (!name || strcmp(name, names[2 - d]) != 0) {
			snprintf(why, wlen, "axis %zu is '%s' where halo reads '%s' (space axes last, "
				 "in the order z, y, x)", na - d, name ? name : "?", names[2 - d]);
			return -1;
		}
	}
	/* The axes before them: channel, time, or another kind ('?') */
	for (size_t i = 0; i + *nspace < na && i < HALO_MAXDIM; i++) {
		const json_t *a = json_array_get(axes, i);
		const char *name = json_is_string(a) ? json_string_value(a)
						     : json_string_value(json_object_get(a, "name"));
		const char *type = json_string_value(json_object_get(a, "type"));
		roles[i] = (type ? !strcmp(type, "channel") : name && !strcmp(name, "c")) ? 'c'
			 : (type ? !strcmp(type, "time") : name && !strcmp(name, "t")) ? 't' : '?';
	}
	voxel[0] = voxel[1] = voxel[2] = 1;
	origin[0] = origin[1] = origin[2] = 0;
	/* world = ms_scale * (ds_scale * index + ds_translation) + ms_translation,
	 * each list applied in its order (scale, then translation) */
	const json_t *lists[2] = {json_object_get(ds, "coordinateTransformations"),
				  json_object_get(ms, "coordinateTransformations")};
	for (int l = 0; l < 2; l++) {
		if (lists[l] && !json_is_array(lists[l])) {
			snprintf(why, wlen, "coordinateTransformations is not a list");
			return -1;
		}
		for (size_t i = 0; i < json_array_size(lists[l]); i++) {
			const json_t *t = json_array_get(lists[l], i);
			const char *type = json_string_value(json_object_get(t, "type"));
			int scale = type && strcmp(type, "scale") == 0;
			const json_t *v = type ? json_object_get(t, type) : NULL;
			size_t n = json_array_size(v);
			int shift = type && strcmp(type, "translation") == 0;
			if ((scale || shift) && !v && json_object_get(t, "path")) {
				snprintf(why, wlen, "a %s given by path (a file of values): halo reads "
					 "them inline only", type);
				return -1;
			}
			if (type && !strcmp(type, "identity"))
				continue;
			/* Any other would move or stretch the image unsaid. */
			if (!(scale || shift) || !json_is_array(v)) {
				snprintf(why, wlen, "a coordinate transformation %s%s%s: halo reads "
					 "inline scale and translation lists", type ? "of type '" : "",
					 type ? type : "without a type", type ? "'" : "");
				return -1;
			}
			if (n < 2 || (na && n != na)) {
				snprintf(why, wlen, "a %s of %zu values for %zu axes", type, n, na);
				return -1;
			}
			for (int d = 0; d < 3 && (size_t)d < n; d++) {
				const json_t *e = json_array_get(v, n - 1 - (size_t)d);
				double x = json_is_number(e) ? json_number_value(e) : NAN;
				if (scale) {
					voxel[2 - d] *= x;
					origin[2 - d] *= x;
				} else {
					origin[2 - d] += x;
				}
			}
		}
	}
	for (int d = 0; d < 3; d++)
		if (!(isfinite(voxel[d]) && voxel[d] > 0)) {
			snprintf(why, wlen, "a multiscales scale is not a positive, finite number");
			return -1;
		} else if (!isfinite(origin[d])) {
			snprintf(why, wlen, "a multiscales translation is not a finite number");
			return -1;
		}
	if (*nspace == 2) { /* a channel's or a time's scale is no z spacing */
		voxel[0] = 1;
		origin[0] = 0;
	}
	const char *units[3] = {NULL, NULL, NULL};
	for (int d = 0; d < 3 && (size_t)d < na; d++) {
		const json_t *u = json_object_get(json_array_get(axes, na - 1 - (size_t)d), "unit");
		if (u && !json_is_string(u)) {
			snprintf(why, wlen, "axis %zu's unit is not a string", na - 1 - (size_t)d);
			return -1;
		}
		units[2 - d] = json_string_value(u);
	}
	halo_units_common(units, voxel, origin, unit, ulen);
	return 1;
}

/* The indices to read along the channel (k 0) and time (k 1) axes of n[k]
 * values (-1 where the file has no such axis): the ones sel asks for,
 * else the only ones, or, describing the file, the first; r's counts set.
 * where[k]: the axis, for messages ("axis 1, from 0", "an ImageJ
 * hyperstack"); sel NULL: a file no option picks in (a PSF). */
static int pick(halo_reader_t *r, const int64_t n[2], const char *const where[2],
		const halo_select_t *sel, const char *file, int64_t at[2], halo_error_t *err)
{
	r->channels = n[0] > 0 ? n[0] : 1;
	r->times = n[1] > 0 ? n[1] : 1;
	static const char *const option[2] = {"channel", "time"};
	static const char *const noun[2][2] = {{"channel", "channels"}, {"time point", "time points"}};
	char name[2][24];
	int unpicked[2] = {0, 0};
	for (int k = 0; k < 2; k++) {
		int64_t want = sel ? (k ? sel->time : sel->channel) : -1;
		at[k] = want > 0 ? want : 0;
		if (!k)
			r->channel = at[0];
		/* a pipeline's fields, a command's options */
		const char *pre = sel && sel->prefix ? sel->prefix : "";
		snprintf(name[k], sizeof name[k], sel && sel->field ? "field \"%s%s\"" : "--%s%s",
			 pre, option[k]);
		if (n[k] == 0)
			return halo_error_set(err, HALO_EUNSUPPORTED, "%s: the array is empty (0 %s)",
					      file, noun[k][1]);
		if (want > 0 && n[k] < 0)
			return halo_error_set(err, HALO_EINVAL, "%s %lld: %s has no %s axis", name[k],
					      (long long)want, r->path, option[k]);
		if (want >= n[k] && want > 0)
			return halo_error_set(err, HALO_EINVAL, "%s %lld: %s has %lld %s (0 to %lld)",
					      name[k], (long long)want, r->path, (long long)n[k],
					      noun[k][n[k] != 1], (long long)n[k] - 1);
		unpicked[k] = want < 0 && n[k] > 1 && !(sel && sel->first);
	}
	if (!unpicked[0] && !unpicked[1])
		return HALO_OK;
	/* Both at once, where both are to pick: one run to learn it, not two */
	char what[2][160] = {"", ""}, how[96];
	for (int k = 0; k < 2; k++) {
		/* the second's axis is not told again where it is the first's */
		int told = k && unpicked[0] && !strcmp(where[0], where[1]);
		if (unpicked[k])
			snprintf(what[k], sizeof what[k], "%s%lld %s%s%s%s", k && unpicked[0] ?
				 " and " : "", (long long)n[k], noun[k][1], told ? "" : " (",
				 told ? "" : where[k], told ? "" : ")");
	}
	const char *a = unpicked[0] ? name[0] : name[1], *b = unpicked[0] && unpicked[1] ? name[1] : "";
	if (!sel)
		snprintf(how, sizeof how, "halo convert %s N%s%s%s extracts one", a, *b ? " " : "", b,
			 *b ? " N" : "");
	else
		snprintf(how, sizeof how, "%s N%s%s%s pick%s one", a, *b ? " and " : "", b,
			 *b ? " N" : "", *b ? "" : "s");
	return halo_error_set(err, HALO_EUNSUPPORTED, "%s: %s%s; halo reads one channel at one "
			      "time (%s)", file, what[0], what[1], how);
}

/* What each axis before the space axes is, and which index of it to
 * read. nspace: the trailing space axes (2 or 3); roles: an OME-Zarr's
 * ('c' channel, 't' time, '?' other), or NULL for a plain Zarr, whose
 * last two such axes are taken for channel and time as OME orders them
 * (t, c, z, y, x). */
static int zarr_axes(halo_reader_t *r, int nspace, const char *roles, const halo_select_t *sel,
		     const char *attrs_file, halo_error_t *err)
{
	const halo_zarr_meta_t *m = halo_zarr_meta(r->zarr);
	int nlead = m->ndim - nspace, rc;
	if (nlead < 0 || nspace < 2)
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: %dD array%s; halo reads 2D and 3D "
				      "volumes", r->path, m->ndim, nspace < 2 && m->ndim > 1
				      ? " of one space axis" : "");
	const char *file = attrs_file ? attrs_file : r->path;
	int64_t count[2] = {-1, -1};
	int axis[2] = {-1, -1};
	for (int a = 0; a < nlead; a++) {
		char role = roles ? roles[a] : a == nlead - 1 ? 'c' : a == nlead - 2 ? 't' : '?';
		int k = role == 'c' ? 0 : role == 't' ? 1 : -1;
		r->crop |= m->chunks[a] > 1;
		r->lead[a] = 0;
		if (k >= 0 && axis[k] >= 0) {
			return halo_error_set(err, HALO_EFORMAT, "%s: axes %d and %d (from 0) are both "
					      "%s axes", file, axis[k], a, k ? "time" : "channel");
		} else if (k >= 0) {
			count[k] = m->shape[a];
			axis[k] = a;
		} else if (m->shape[a] != 1) {
			return halo_error_set(err, HALO_EUNSUPPORTED, "%s: axis %d (from 0), before "
					      "the last space axes and neither channel nor time, has "
					      "%lld values; halo reads 2D and 3D volumes, one channel "
					      "at one time", file, a, (long long)m->shape[a]);
		}
	}
	char where[2][24];
	for (int k = 0; k < 2; k++)
		snprintf(where[k], sizeof where[k], "axis %d, from 0", axis[k]);
	int64_t at[2];
	if ((rc = pick(r, count, (const char *const[]){where[0], where[1]}, sel, file, at, err)))
		return rc;
	for (int k = 0; k < 2; k++)
		if (axis[k] >= 0)
			r->lead[axis[k]] = at[k];
	for (int d = 0; d < 3; d++)
		r->src[d] = m->ndim - 3 + d >= nlead ? m->ndim - 3 + d : -1;
	return HALO_OK;
}

static int zarr_info(halo_reader_t *r, halo_error_t *err)
{
	const halo_zarr_meta_t *m = halo_zarr_meta(r->zarr);
	halo_volume_info_t *info = &r->info;
	info->ndim = r->src[0] < 0 ? 2 : 3;
	for (int d = 0; d < 3; d++) {
		int src = r->src[d];
		info->shape[d] = src >= 0 ? m->shape[src] : 1;
		if (info->shape[d] < 1)
			return halo_error_set(err, HALO_EUNSUPPORTED, "%s: the array is empty (an axis "
					      "of length 0)", r->path);
		/* zarr keeps chunks larger than the array; halo's chunks end
		 * at the array (halo_reader_read_chunk crops). */
		info->chunks[d] = src >= 0 ? m->chunks[src] : 1;
		if (info->chunks[d] > info->shape[d]) {
			info->chunks[d] = info->shape[d];
			r->crop = 1;
		}
	}
	info->dtype = m->dtype;
	info->fill = m->fill;
	return HALO_OK;
}

/* A TIFF's volume: chunks of whole pages. */
static void tiff_volume(const halo_tiff_info_t *ti, halo_volume_info_t *info)
{
	info->ndim = ti->ndim;
	for (int d = 0; d < 3; d++) {
		info->shape[d] = ti->shape[d];
		info->voxel[d] = ti->voxel[d];
		info->origin[d] = ti->origin[d];
	}
	info->chunks[0] = tiff_chunk_depth(ti);
	info->chunks[1] = ti->shape[1];
	info->chunks[2] = ti->shape[2];
	info->dtype = ti->dtype;
	halo_unit_normalise(ti->unit, info->unit, sizeof info->unit);
	info->guessed = info->unit[0] ? ti->guessed : 0; /* pixels: no size taken */
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A Zarr group that is no OME-Zarr image (zarr's open_group, napari's
 * layouts): the arrays at its top level, so that one can be named. */
static int group_error(const char *path, const char *meta, halo_error_t *err)
{
	char *names[8];
	int n = 0, more = 0;
	DIR *d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d));) {
		char sub[8192];
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof sub, "%s/%s/.zarray", path, e->d_name);
		int array = halo_fs_exists(sub);
		if (!array) {
			snprintf(sub, sizeof sub, "%s/%s/zarr.json", path, e->d_name);
			json_t *v3 = NULL;
			halo_error_t ignored;
			if (halo_json_load_file(sub, &v3, &ignored) == HALO_OK) {
				const char *node = json_string_value(json_object_get(v3, "node_type"));
				array = node && !strcmp(node, "array");
			}
			json_decref(v3);
		}
		if (array && n < 8 && (names[n] = strdup(e->d_name)))
			n++;
		else
			more += array;
	}
	if (d)
		closedir(d);
	if (!n)
		return halo_error_set(err, HALO_EFORMAT, "%s: a Zarr group without OME-Zarr "
				      "multiscales, and without an array at its top level", meta);
	qsort(names, (size_t)n, sizeof *names, by_name);
	char list[1024] = "";
	for (int i = 0; i < n; i++) {
		size_t used = strlen(list);
		snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
	}
	char tail[64] = "";
	if (more)
		snprintf(tail, sizeof tail, " and %d more", more);
	halo_error_set(err, HALO_EFORMAT, "%s: a Zarr group without OME-Zarr multiscales, holding "
		       "the array%s %s%s: give the path of one, such as %s/%s", meta,
		       n + more > 1 ? "s" : "", list, tail, path, names[0]);
	for (int i = 0; i < n; i++)
		free(names[i]);
	return HALO_EFORMAT;
}

/* A sequence of TIFF files (tiffseq.h), which has no channels or time
 * points to select. */
static int open_sequence(const char *path, const halo_select_t *sel, halo_reader_t **out,
			 halo_error_t *err)
{
	halo_reader_t *r = calloc(1, sizeof *r);
	if (!r || !(r->path = strdup(path))) {
		free(r);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	r->format = HALO_FMT_TIFF;
	int64_t at[2], none[2] = {-1, -1};
	int rc = halo_tiffseq_open(path, &r->seq, err);
	if (!rc)
		rc = pick(r, none, (const char *const[]){"a TIFF sequence", "a TIFF sequence"}, sel,
			  path, at, err);
	if (rc) {
		halo_reader_close(r);
		return rc;
	}
	tiff_volume(halo_tiffseq_info(r->seq), &r->info);
	*out = r;
	return HALO_OK;
}

int halo_reader_open(const char *path, halo_reader_t **out, halo_error_t *err)
{
	return halo_reader_open_at(path, NULL, out, err);
}

int halo_reader_open_at(const char *path, const halo_select_t *sel, halo_reader_t **out,
			halo_error_t *err)
{
	*out = NULL;
	if (!strcmp(path, "-"))
		return halo_error_set(err, HALO_EINVAL, "-: halo reads volumes from files, not from "
				      "standard input; name a file");
	if (halo_tiffseq_named(path))
		return open_sequence(path, sel, out, err);
	struct stat st;
	if (stat(path, &st) != 0)
		return errno == ENOENT
		       ? halo_error_set(err, HALO_ENOENT, "%s: no such file or directory", path)
		       : halo_error_set(err, halo_fs_errno_code(errno), "%s: %s", path, strerror(errno));
	/* A FIFO or device would block the reader or read as garbage. */
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return halo_error_set(err, HALO_EFORMAT, "%s: not a file or a folder", path);
	halo_reader_t *r = calloc(1, sizeof *r);
	if (!r || !(r->path = strdup(path))) {
		free(r);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	halo_volume_info_t *info = &r->info;
	info->voxel[0] = info->voxel[1] = info->voxel[2] = 1;
	int rc;
	if (!halo_fs_is_dir(path) && is_tiff_file(path)) {
		r->format = HALO_FMT_TIFF;
		if ((rc = halo_tiff_open(path, &r->tiff, err)))
			goto fail;
		const halo_tiff_info_t *ti = halo_tiff_info(r->tiff);
		tiff_volume(ti, info);
		/* A hyperstack: the pages of one channel at one time */
		int64_t at[2], count[2] = {ti->channels > 0 ? ti->channels : -1,
					   ti->times > 0 ? ti->times : -1};
		const char *kind = ti->ome_order[0] ? "an OME-TIFF" : "an ImageJ hyperstack";
		if ((rc = pick(r, count, (const char *const[]){kind, kind}, sel, path, at, err)))
			goto fail;
		halo_tiff_select(r->tiff, at[0], at[1]);
		*out = r;
		return HALO_OK;
	}
	if (!halo_fs_is_dir(path)) {
		rc = halo_error_set(err, HALO_EFORMAT, "%s: not a TIFF file or a Zarr directory", path);
		goto fail;
	}
	/* An OME-Zarr group: read its first (full-resolution) dataset. */
	char attrs_file[4096];
	snprintf(attrs_file, sizeof attrs_file, "%s/.zattrs", path);
	char dataset[1024], unit[sizeof ((halo_volume_info_t *)0)->unit];
	double voxel[3], origin[3];
	size_t naxes = 0, nspace = 0;
	char why[160], roles[HALO_MAXDIM];
	halo_error_t aerr = {0};
	/* Malformed, it is named; unreadable, taken for absent. */
	if (halo_json_load_file(attrs_file, &r->attrs, &aerr) == HALO_EFORMAT) {
		*err = aerr;
		rc = HALO_EFORMAT;
		goto fail;
	}
	/* OME-Zarr 0.5: a Zarr v3 group, its metadata under "ome" */
	json_t *v3 = NULL;
	char v3_file[sizeof attrs_file];
	snprintf(v3_file, sizeof v3_file, "%s/zarr.json", path);
	if (!r->attrs && (rc = halo_json_load_file(v3_file, &v3, err)) != HALO_ENOENT) {
		const char *node = json_string_value(json_object_get(v3, "node_type"));
		const json_t *ome = json_object_get(json_object_get(v3, "attributes"), "ome");
		if (!rc && node && !strcmp(node, "group")) {
			snprintf(attrs_file, sizeof attrs_file, "%s", v3_file);
			if (json_object_get(ome, "multiscales"))
				r->attrs = json_incref((json_t *)ome);
			else
				rc = group_error(path, v3_file, err);
		}
		json_decref(v3);
		if (rc)
			goto fail;
	}
	int ome = r->attrs ? ome_level0(r->attrs, dataset, sizeof dataset, voxel, origin, unit,
					sizeof unit, &naxes, &nspace, roles, why, sizeof why)
			   : 0;
	if (ome < 0) {
		rc = halo_error_set(err, HALO_EFORMAT, "%s: %s", attrs_file, why);
		goto fail;
	}
	if (ome) {
		char array[4096 + 1024];
		snprintf(array, sizeof array, "%s/%s", path, dataset);
		r->format = HALO_FMT_OME_ZARR;
		if ((rc = halo_zarr_open(array, &r->zarr, err)))
			goto fail;
		const halo_zarr_meta_t *m = halo_zarr_meta(r->zarr);
		if (naxes && naxes != (size_t)m->ndim) {
			rc = halo_error_set(err, HALO_EFORMAT, "%s: %zu axes for the %dD array %s",
					    attrs_file, naxes, m->ndim, dataset);
			goto fail;
		}
		memcpy(info->voxel, voxel, sizeof info->voxel);
		memcpy(info->origin, origin, sizeof info->origin);
		snprintf(info->unit, sizeof info->unit, "%s", unit);
	} else {
		char group[sizeof attrs_file];
		snprintf(group, sizeof group, "%s/.zgroup", path);
		r->format = HALO_FMT_ZARR;
		if ((rc = halo_zarr_open(path, &r->zarr, err))) {
			if (rc == HALO_EFORMAT && halo_fs_exists(group) && !halo_fs_exists(v3_file))
				rc = group_error(path, group, err);
			goto fail;
		}
	}
	/* OME-Zarr names its axes (y, x after channel axes: a 2D image,
	 * which stays 2D); a plain array's last three are z, y, x. */
	int named = r->format == HALO_FMT_OME_ZARR && naxes;
	int ndim = halo_zarr_meta(r->zarr)->ndim;
	if ((rc = zarr_axes(r, named ? (int)nspace : ndim == 2 ? 2 : 3, named ? roles : NULL, sel,
			    named ? attrs_file : NULL, err)) ||
	    (rc = zarr_info(r, err)))
		goto fail;
	if (r->format == HALO_FMT_OME_ZARR) {
		/* 0.5 keeps it beside multiscales, 0.4 in each multiscale */
		const json_t *ver = json_object_get(r->attrs, "version");
		if (!json_is_string(ver))
			ver = json_object_get(json_array_get(json_object_get(r->attrs, "multiscales"),
							     0), "version");
		snprintf(r->ome_version, sizeof r->ome_version, "%s",
			 json_is_string(ver) ? json_string_value(ver) : "");
		r->omero = omero_of(r->attrs, r->channel, r->channels);
		r->names = channel_names(r->attrs, r->channels);
	}
	json_decref(r->attrs);
	r->attrs = NULL;
	*out = r;
	return HALO_OK;
fail:
	halo_reader_close(r);
	return rc;
}

const halo_volume_info_t *halo_reader_info(const halo_reader_t *r)
{
	return &r->info;
}

halo_format_t halo_reader_format(const halo_reader_t *r)
{
	return r->format;
}

const char *halo_reader_path(const halo_reader_t *r)
{
	return r->path;
}

const json_t *halo_reader_omero(const halo_reader_t *r)
{
	return r->omero;
}

const json_t *halo_reader_channel_names(const halo_reader_t *r)
{
	return r->names;
}

const json_t *halo_reader_attrs(const halo_reader_t *r)
{
	return r->format == HALO_FMT_ZARR ? halo_zarr_meta(r->zarr)->attrs : NULL;
}

const halo_codec_t *halo_reader_codec(const halo_reader_t *r)
{
	return r->zarr ? &halo_zarr_meta(r->zarr)->codec : NULL;
}

void halo_reader_stored(const halo_reader_t *r, halo_stored_t *s)
{
	const halo_volume_info_t *v = &r->info;
	memcpy(s->chunks, v->chunks, sizeof s->chunks);
	s->big_endian = v->dtype.big_endian;
	s->compression = NULL;
	s->files = s->reduced = 0;
	memset(s->shards, 0, sizeof s->shards);
	s->crc32c = s->ndim = s->zarr_format = 0;
	s->ome_version = r->format == HALO_FMT_OME_ZARR && r->ome_version[0] ? r->ome_version : NULL;
	if (r->tiff || r->seq) {
		const halo_tiff_info_t *t = r->seq ? halo_tiffseq_info(r->seq) : halo_tiff_info(r->tiff);
		s->big_endian = t->big_endian;
		s->compression = t->compression;
		s->files = r->seq ? halo_tiffseq_files(r->seq) : 0; /* 0: one file */
		s->reduced = r->seq ? 0 : t->reduced;
	} else if (r->zarr) {
		const halo_zarr_meta_t *m = halo_zarr_meta(r->zarr);
		for (int d = 0; d < 3; d++)
			if (r->src[d] >= 0) {
				s->chunks[d] = m->chunks[r->src[d]];
				s->shards[d] = m->shard.on ? m->shard.shape[r->src[d]] : 0;
			}
		s->crc32c = m->crc32c;
		s->zarr_format = m->zarr_format;
		s->ndim = m->ndim;
		memcpy(s->order, m->order, sizeof s->order);
	}
	s->channels = r->channels;
	s->times = r->times;
}

uint64_t halo_reader_scratch_bytes(const halo_reader_t *r)
{
	if (!r->zarr || !r->crop)
		return 0;
	/* The chunk, and a compressed one's file (up to the codec's bound)
	 * read whole before. */
	size_t chunk = halo_zarr_chunk_bytes(r->zarr);
	const halo_codec_t *codec = &halo_zarr_meta(r->zarr)->codec;
	return chunk + (codec->id == HALO_CODEC_NONE ? 0 : halo_codec_bound(codec, chunk));
}

/* A stored chunk that holds more than a chunk of the volume: one larger
 * than the array on some axis (then its only chunk on that axis), or
 * several channels or time points. It is decoded whole, and the volume's
 * part copied out as a chunk of info->chunks. */
static int read_cropped(halo_reader_t *r, const int64_t *zidx, void *buf, halo_error_t *err)
{
	const halo_zarr_meta_t *m = halo_zarr_meta(r->zarr);
	const halo_volume_info_t *info = &r->info;
	unsigned char *full = halo_scratch(HALO_SCRATCH_CONVERT, halo_zarr_chunk_bytes(r->zarr));
	if (!full)
		return halo_error_set(err, HALO_ENOMEM, "%s: out of memory reading a chunk", r->path);
	int rc = halo_zarr_read_chunk(r->zarr, zidx, full, err);
	if (rc)
		return rc;
	/* Element strides of the stored chunk; where the volume's part
	 * starts in it. */
	int64_t stride[HALO_MAXDIM], at = 0, n = 1;
	for (int a = m->ndim - 1; a >= 0; n *= m->chunks[a--])
		stride[a] = n;
	for (int a = 0; a < m->ndim; a++)
		if (a != r->src[0] && a != r->src[1] && a != r->src[2])
			at += r->lead[a] % m->chunks[a] * stride[a];
	int64_t sz = r->src[0] >= 0 ? stride[r->src[0]] : 0, sy = stride[r->src[1]];
	size_t el = halo_dtype_size(info->dtype), row = (size_t)info->chunks[2] * el;
	for (int64_t z = 0; z < info->chunks[0]; z++)
		for (int64_t y = 0; y < info->chunks[1]; y++)
			memcpy((unsigned char *)buf + (size_t)(z * info->chunks[1] + y) * row,
			       full + (size_t)(at + z * sz + y * sy) * el, row);
	return HALO_OK;
}

int halo_reader_read_chunk(halo_reader_t *r, const int64_t idx[3], void *buf,
			   halo_error_t *err)
{
	if (r->zarr) {
		const halo_zarr_meta_t *m = halo_zarr_meta(r->zarr);
		int64_t zidx[HALO_MAXDIM];
		for (int a = 0; a < m->ndim; a++)
			zidx[a] = r->lead[a] / m->chunks[a];
		for (int d = 0; d < 3; d++)
			if (r->src[d] >= 0)
				zidx[r->src[d]] = idx[d];
		if (!r->crop)
			return halo_zarr_read_chunk(r->zarr, zidx, buf, err);
		return read_cropped(r, zidx, buf, err);
	}
	const halo_volume_info_t *info = &r->info;
	int64_t z0 = idx[0] * info->chunks[0];
	int64_t nz = info->shape[0] - z0 < info->chunks[0] ? info->shape[0] - z0 : info->chunks[0];
	size_t page = (size_t)(info->shape[1] * info->shape[2]) * halo_dtype_size(info->dtype);
	if (nz < info->chunks[0])
		memset((char *)buf + (size_t)nz * page, 0, (size_t)(info->chunks[0] - nz) * page);
	return r->seq ? halo_tiffseq_read_pages(r->seq, z0, nz, buf, err)
		      : halo_tiff_read_pages(r->tiff, z0, nz, buf, err);
}

void halo_reader_close(halo_reader_t *r)
{
	if (!r)
		return;
	halo_zarr_close(r->zarr);
	halo_tiff_close(r->tiff, NULL);
	halo_tiffseq_close(r->seq);
	json_decref(r->attrs);
	json_decref(r->omero);
	json_decref(r->names);
	free(r->path);
	free(r);
}

/* ---- writers ---- */

static int zarr_create_for(const char *path, const halo_volume_info_t *info,
			   const halo_writer_opts_t *opts, const json_t *attrs, halo_zarr_t **out,
			   halo_error_t *err)
{
	halo_zarr_meta_t m;
	int off = info->ndim == 2 ? 1 : 0, sharded = opts->inner[2] > 0;
	halo_zarr_meta_init(&m, info->ndim, info->shape + off,
			    (sharded ? opts->inner : info->chunks) + off, info->dtype);
	if (opts->zarr_format == 3) {
		m.zarr_format = 3;
		m.v3_default_keys = 1;
		/* The volume's chunks are cut to the array; the shards hold
		 * whole chunks. */
		m.shard.on = sharded;
		for (int d = off; d < 3 && sharded; d++)
			m.shard.shape[d - off] = (info->chunks[d] + opts->inner[d] - 1) / opts->inner[d] *
						 opts->inner[d];
	}
	m.codec = opts->codec;
	m.fill = halo_fill_convert(info->fill, info->dtype.kind, info->dtype.kind);
	m.attrs = (json_t *)attrs; /* halo_zarr_create copies it */
	return opts->attach ? halo_zarr_attach(path, &m, out, err)
			    : halo_zarr_create(path, &m, out, err);
}

static int write_text(const char *dir, const char *name, json_t *doc, halo_error_t *err)
{
	char file[4096];
	snprintf(file, sizeof file, "%s/%s", dir, name);
	char *text = json_dumps(doc, JSON_INDENT(4) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	int rc = text ? halo_fs_write(file, text, strlen(text), err)
		      : halo_error_set(err, HALO_ENOMEM, "out of memory");
	free(text);
	return rc;
}

int halo_writer_create(const char *path, const halo_volume_info_t *info,
		       const halo_writer_opts_t *opts, halo_writer_t **out, halo_error_t *err)
{
	*out = NULL;
	halo_writer_t *w = calloc(1, sizeof *w);
	if (!w || !(w->path = strdup(path))) {
		free(w);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	w->format = opts->format;
	w->info = *info;
	w->opts = *opts;
	w->nlevels = 1;
	int rc;
	if (opts->format == HALO_FMT_TIFF && opts->attach) {
		rc = halo_error_set(err, HALO_EUNSUPPORTED, "%s: a TIFF is written by one process", path);
	} else if (opts->format == HALO_FMT_TIFF) {
		halo_tiff_info_t ti = {.ndim = info->ndim, .dtype = info->dtype, .ome = opts->ome_tiff};
		for (int d = 0; d < 3; d++) {
			ti.shape[d] = info->shape[d];
			ti.voxel[d] = info->voxel[d];
			ti.origin[d] = info->origin[d];
		}
		snprintf(ti.unit, sizeof ti.unit, "%s",
			 strcmp(info->unit, "micrometer") == 0 ? "micron" : info->unit);
		w->info.chunks[1] = info->shape[1];
		w->info.chunks[2] = info->shape[2];
		rc = halo_tiff_create(path, &ti, &w->tiff, err);
	} else if (opts->format == HALO_FMT_OME_ZARR) {
		char level0[4096];
		snprintf(level0, sizeof level0, "%s/0", path);
		/* v3's group gets its attributes when finished */
		int v3 = opts->zarr_format == 3;
		json_t *group = v3 ? json_pack("{s:i, s:s}", "zarr_format", 3, "node_type", "group")
				   : json_pack("{s:i}", "zarr_format", 2);
		rc = opts->attach ? HALO_OK : halo_fs_mkdirs(path, err);
		if (!rc && !opts->attach)
			rc = write_text(path, v3 ? "zarr.json" : ".zgroup", group, err);
		json_decref(group);
		if (!rc)
			rc = zarr_create_for(level0, info, opts, NULL, &w->zarr, err);
		w->provenance = opts->provenance ? json_deep_copy(opts->provenance) : NULL;
		w->omero = opts->omero ? json_deep_copy(opts->omero) : NULL;
	} else {
		json_t *attrs = NULL; /* the caller's and "halo" */
		if (opts->provenance) {
			attrs = opts->attrs ? json_deep_copy(opts->attrs) : json_object();
			json_object_set_new(attrs, "halo", json_deep_copy(opts->provenance));
		}
		rc = zarr_create_for(path, info, opts, attrs ? attrs : opts->attrs, &w->zarr, err);
		json_decref(attrs);
	}
	w->opts.attrs = w->opts.provenance = w->opts.omero = NULL; /* the caller's, copied */
	if (rc) {
		halo_writer_close(w);
		return rc;
	}
	*out = w;
	return HALO_OK;
}

const halo_volume_info_t *halo_writer_info(const halo_writer_t *w)
{
	return &w->info;
}

const char *halo_writer_path(const halo_writer_t *w)
{
	return w->path;
}

int halo_writer_write_chunk(halo_writer_t *w, const int64_t idx[3], const void *buf,
			    halo_error_t *err)
{
	if (w->zarr) {
		int64_t zidx[3] = {idx[0], idx[1], idx[2]};
		return halo_zarr_write_chunk(w->zarr, w->info.ndim == 2 ? zidx + 1 : zidx, buf, err);
	}
	const halo_volume_info_t *info = &w->info;
	int64_t z0 = idx[0] * info->chunks[0];
	int64_t nz = info->shape[0] - z0 < info->chunks[0] ? info->shape[0] - z0 : info->chunks[0];
	return halo_tiff_write_pages(w->tiff, z0, nz, buf, err);
}

int halo_writer_ordered(const halo_writer_t *w)
{
	return w->format == HALO_FMT_TIFF;
}

int halo_writer_level(const halo_writer_t *w, int level, char *path, size_t len,
		      halo_volume_info_t *info)
{
	if (w->format != HALO_FMT_OME_ZARR || level < 1 || level >= MAX_LEVELS)
		return HALO_EINVAL;
	snprintf(path, len, "%s/%d", w->path, level);
	*info = w->info;
	for (int d = 1; d < 3; d++) {
		int64_t s = w->info.shape[d];
		for (int l = 0; l < level; l++)
			s = (s + 1) / 2;
		info->shape[d] = s;
		info->chunks[d] = w->info.chunks[d] < s ? w->info.chunks[d] : s;
		info->voxel[d] = w->info.voxel[d] * (double)(1 << level);
	}
	return HALO_OK;
}

int halo_writer_add_level(halo_writer_t *w, int level, halo_writer_t **out, halo_error_t *err)
{
	char path[4096];
	halo_volume_info_t info;
	if (level != w->nlevels || halo_writer_level(w, level, path, sizeof path, &info))
		return halo_error_set(err, HALO_EINVAL, "%s: pyramid level %d out of order", w->path, level);
	halo_writer_opts_t opts = w->opts;
	opts.format = HALO_FMT_ZARR;
	opts.pyramid = 0;
	int rc = halo_writer_create(path, &info, &opts, &w->levels[level], err);
	if (rc)
		return rc;
	w->nlevels++;
	*out = w->levels[level];
	return HALO_OK;
}

static json_t *multiscales(const halo_writer_t *w)
{
	static const char *const names[3] = {"z", "y", "x"};
	int first = w->info.ndim == 2 ? 1 : 0;
	json_t *axes = json_array();
	/* NGFF's unit is optional: none known, none claimed (voxels) */
	for (int d = first; d < 3; d++)
		json_array_append_new(axes, w->info.unit[0]
			? json_pack("{s:s, s:s, s:s}", "name", names[d], "type", "space", "unit",
				    w->info.unit)
			: json_pack("{s:s, s:s}", "name", names[d], "type", "space"));
	int moved = 0;
	for (int d = first; d < 3; d++)
		moved |= w->info.origin[d] != 0;
	json_t *datasets = json_array();
	for (int l = 0; l < w->nlevels; l++) {
		json_t *scale = json_array(), *shift = json_array();
		for (int d = first; d < 3; d++) {
			double f = d ? (double)(1 << l) : 1.0;
			json_array_append_new(scale, json_real(w->info.voxel[d] * f));
			/* A level's voxel is the mean of f x f: its centre lies
			 * (f - 1) / 2 level-0 voxels on. */
			json_array_append_new(shift, json_real(w->info.origin[d] +
							       w->info.voxel[d] * (f - 1) / 2));
		}
		json_t *ts = json_pack("[{s:s, s:o}]", "type", "scale", "scale", scale);
		if (moved || l)
			json_array_append_new(ts, json_pack("{s:s, s:o}", "type", "translation",
							    "translation", shift));
		else
			json_decref(shift);
		char path[16];
		snprintf(path, sizeof path, "%d", l);
		json_array_append_new(datasets, json_pack("{s:s, s:o}", "path", path,
							  "coordinateTransformations", ts));
	}
	json_t *meta = json_pack("{s:s}", "software", "halo " PACKAGE_VERSION);
	if (w->provenance)
		json_object_set(meta, "halo", w->provenance);
	if (w->nlevels > 1)
		json_object_set_new(meta, "method", json_string("mean over 2x2 blocks in y and x"));
	json_t *ms = json_pack("{s:s, s:o, s:o, s:o}", "name", "image", "axes", axes, "datasets",
			       datasets, "metadata", meta);
	int v3 = w->opts.zarr_format == 3; /* 0.5: the version is the "ome" object's */
	if (ms && !v3)
		json_object_set_new(ms, "version", json_string("0.4"));
	/* NGFF 0.4: a multiscale SHOULD name its downscaling (its strict
	 * schema requires it); one level has none. */
	if (ms && w->nlevels > 1)
		json_object_set_new(ms, "type", json_string("mean"));
	json_t *attrs = ms ? json_pack("{s:[o]}", "multiscales", ms) : NULL;
	if (attrs && w->omero) /* v3's zarr.json is strict JSON: no bare NaN */
		json_object_set_new(attrs, "omero", v3 ? halo_json_strict_copy(w->omero)
						       : json_incref(w->omero));
	if (attrs && v3) {
		json_object_set_new(attrs, "version", json_string("0.5"));
		attrs = json_pack("{s:i, s:s, s:{s:o}}", "zarr_format", 3, "node_type", "group",
				  "attributes", "ome", attrs);
	}
	return attrs;
}

int halo_writer_finish(halo_writer_t *w, halo_error_t *err)
{
	if (w->tiff) {
		int rc = halo_tiff_close(w->tiff, err);
		w->tiff = NULL;
		return rc;
	}
	if (w->format != HALO_FMT_OME_ZARR)
		return HALO_OK;
	json_t *attrs = multiscales(w);
	int rc = attrs ? write_text(w->path, w->opts.zarr_format == 3 ? "zarr.json" : ".zattrs",
				    attrs, err)
		       : halo_error_set(err, HALO_ENOMEM, "out of memory");
	json_decref(attrs);
	return rc;
}

void halo_writer_close(halo_writer_t *w)
{
	if (!w)
		return;
	for (int l = 1; l < MAX_LEVELS; l++)
		halo_writer_close(w->levels[l]);
	halo_zarr_close(w->zarr);
	halo_tiff_close(w->tiff, NULL);
	json_decref(w->provenance);
	json_decref(w->omero);
	free(w->path);
	free(w);
}
