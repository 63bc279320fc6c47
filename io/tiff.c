/* TIFF volumes through libtiff (see tiff.h). libtiff's messages are
 * captured per file (TIFFOpenExt's handlers) so that a truncated file gives
 * one "halo: FILE: PROBLEM" line instead of libtiff's chatter. Pages are
 * visited in order with TIFFReadDirectory where possible, since
 * TIFFSetDirectory walks the IFD chain from the start on every call. */
#include "config.h"
#include "io/tiff.h"
#include "io/units.h"
#include "io/fs.h"
#include "io/predictor.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>
#include <zlib.h>

struct halo_tiff {
	TIFF *tif;
	char *path;
	halo_tiff_info_t info;
	int writing;
	int64_t page;          /* current directory (reader) or pages written */
	pthread_mutex_t lock;
	char last_error[256];  /* libtiff's last message for this file */
	/* An ImageJ stack over 4 GiB has one directory: its pages follow the
	 * first, uncompressed, from this offset. */
	int64_t contig_offset;
	int contig;
	/* tifffile writes a (3 or 4, Y, X) array as one RGB page of separate
	 * sample planes, and a (Z, Y, 1) one as one Z x Y page: the planes
	 * are then its sample planes, or its rows (the whole page read once). */
	uint16_t sample_planes;
	int row_planes;
	unsigned char *whole;
	uint64_t *diroff; /* writer: each page's directory */
	unsigned char *raw; /* a deflate strip or tile as stored (intact) */
	size_t raw_cap;
	/* A hyperstack's slice z of the channel and time selected is page
	 * first + z * zstep; a channel or time point further on, cstep or
	 * tstep pages. */
	int64_t first, zstep, cstep, tstep;
	/* An OME-TIFF's TiffData elements (count -2: to the last page), a
	 * file other than this one that some name, and the page of each
	 * plane (numbered as first + z * zstep...) where they differ from
	 * the planes' own order (NULL where they do not). */
	struct halo_tiffdata { int64_t ifd, first[3], count; } *tiffdata;
	size_t ntiffdata;
	char foreign[256];
	int64_t *map;
	uint64_t size; /* reader: the file's bytes, which bound its strips */
	/* Some page is uncompressed or PackBits with a predictor, which
	 * halo undoes (predictor.h). */
	int predicted;
};

static int capture(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
	struct halo_tiff *t = user;
	vsnprintf(t->last_error, sizeof t->last_error, fmt, ap);
	/* Reading by strip, libtiff names row -1 as an unsigned number. */
	static const char row[] = " at scanline 4294967295";
	char *p = strstr(t->last_error, row);
	if (p)
		memmove(p, p + sizeof row - 1, strlen(p + sizeof row - 1) + 1);
	return 1; /* handled: libtiff prints nothing */
}

/* Warnings are dropped, but for a directory chain that loops back, which
 * libtiff cuts short with a warning: kept as an error, so that the file
 * is refused as tifffile refuses it. */
static int warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
	if (strstr(fmt, "looping"))
		return capture(tif, user, module, fmt, ap);
	return 1;
}

static TIFF *open_with_handlers(halo_tiff_t *t, const char *mode)
{
	TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
	if (!opts)
		return NULL;
	TIFFOpenOptionsSetErrorHandlerExtR(opts, capture, t);
	TIFFOpenOptionsSetWarningHandlerExtR(opts, warning, t);
	TIFF *tif = TIFFOpenExt(t->path, mode, opts);
	TIFFOpenOptionsFree(opts);
	return tif;
}

/* libtiff's words for a directory it could not read whole: one past the
 * end of a file cut short, mostly (tifffile and ImageJ write each page's
 * directory beside its pixels). */
static int directory_cut(const halo_tiff_t *t)
{
	return strstr(t->last_error, "Error fetching directory count") ||
	       strstr(t->last_error, "Failed to read directory");
}

static int tiff_fail(halo_tiff_t *t, int code, const char *what, halo_error_t *err)
{
	/* libtiff often starts its message with the file name again. */
	const char *detail = t->last_error;
	size_t n = strlen(t->path);
	if (strncmp(detail, t->path, n) == 0 && strncmp(detail + n, ": ", 2) == 0)
		detail += n + 2;
	return halo_error_set(err, code, "%s: %s%s%s", t->path, what, *detail ? ": " : "", detail);
}

/* A failed write: a full disk, or a file over `ulimit -f`, says so
 * (libtiff only reports "Write error"). */
static int write_fail(halo_tiff_t *t, const char *what, halo_error_t *err)
{
	int e = errno;
	if (e == ENOSPC || e == EDQUOT || e == EFBIG)
		return halo_error_set(err, halo_fs_errno_code(e), "%s: %s: %s", t->path, what,
				      strerror(e));
	return tiff_fail(t, HALO_EIO, what, err);
}

static int sample_dtype(uint16_t format, uint16_t bits, halo_dtype_t *dt)
{
	static const struct { uint16_t format, bits; halo_dtype_kind_t kind; } map[] = {
		{SAMPLEFORMAT_UINT, 8, HALO_U1},    {SAMPLEFORMAT_UINT, 16, HALO_U2},
		{SAMPLEFORMAT_UINT, 32, HALO_U4},   {SAMPLEFORMAT_UINT, 64, HALO_U8},
		{SAMPLEFORMAT_INT, 8, HALO_I1},     {SAMPLEFORMAT_INT, 16, HALO_I2},
		{SAMPLEFORMAT_INT, 32, HALO_I4},    {SAMPLEFORMAT_INT, 64, HALO_I8},
		{SAMPLEFORMAT_IEEEFP, 32, HALO_F4}, {SAMPLEFORMAT_IEEEFP, 64, HALO_F8},
		{SAMPLEFORMAT_IEEEFP, 16, HALO_F2},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (map[i].format == format && map[i].bits == bits) {
			dt->kind = map[i].kind;
			dt->big_endian = 0; /* libtiff hands back native order */
			return 0;
		}
	return -1;
}

/* The text of a "key=..." line of an ImageJ description into out; 0 when
 * absent. */
static int imagej_text(const char *desc, const char *key, char *out, size_t len)
{
	char pat[32];
	snprintf(pat, sizeof pat, "\n%s=", key);
	const char *p = strstr(desc, pat);
	if (!p)
		return 0;
	p += strlen(pat);
	size_t n = strcspn(p, "\n");
	snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
	return 1;
}

/* A "key=N" line's number; 0 when absent. */
static double imagej_number(const char *desc, const char *key)
{
	char v[64];
	return imagej_text(desc, key, v, sizeof v) ? strtod(v, NULL) : 0;
}

/* A "key=N" line's count, within long's range (a cast of 1e300 is
 * undefined); 0 when absent. */
static long imagej_count(const char *desc, const char *key)
{
	double v = imagej_number(desc, key);
	return v >= (double)LONG_MAX ? LONG_MAX : v > 0 ? (long)v : 0;
}

/* ImageJ writes "ImageJ=1.x\nimages=N\nslices=N\nspacing=0.2\nunit=micron\n"
 * (and channels=, frames= for hyperstacks). */
static int parse_imagej(halo_tiff_t *t, const char *desc, long *images, halo_error_t *err)
{
	halo_tiff_info_t *info = &t->info;
	info->channels = imagej_count(desc, "channels");
	info->times = imagej_count(desc, "frames");
	*images = imagej_count(desc, "images");
	long slices = imagej_count(desc, "slices");
	if (info->channels > INT32_MAX || info->times > INT32_MAX)
		return halo_error_set(err, HALO_EFORMAT, "%s: the ImageJ description counts %ld "
				      "channels and %ld frames", t->path, (long)info->channels,
				      (long)info->times);
	/* Divided, not multiplied: images comes from the file. */
	long per = (info->channels > 1 ? info->channels : 1) * (info->times > 1 ? info->times : 1);
	if (slices > 0 && *images > 0 && (*images % per || *images / per != slices))
		return halo_error_set(err, HALO_EFORMAT, "%s: the ImageJ description says %ld slices "
				      "but %ld images%s", t->path, slices, *images,
				      per > 1 ? " (of its channels and time points)" : "");
	info->voxel[0] = imagej_number(desc, "spacing");
	imagej_text(desc, "unit", info->unit, sizeof info->unit);
	if (!(info->voxel[0] > 0)) {
		info->voxel[0] = 1;
		info->guessed |= 1;
	}
	/* In pixels, as ImageJ's calibration keeps them: voxel i lies at
	 * (i - origin) * size. halo_tiff_open scales them once the sizes are
	 * known. */
	static const char *const origins[3] = {"zorigin", "yorigin", "xorigin"};
	for (int d = 0; d < 3; d++)
		info->origin[d] = imagej_number(desc, origins[d]);
	return HALO_OK;
}

/* The next start tag named tag (with or without a namespace prefix) in
 * xml from p on: where its name starts; NULL when none. */
static const char *xml_tag(const char *xml, const char *p, const char *tag)
{
	size_t n = strlen(tag);
	for (p = strstr(p, tag); p; p = strstr(p + 1, tag)) {
		if (p == xml || !p[n] || !strchr(" \t\r\n/>", p[n]))
			continue;
		const char *q = p - 1; /* past a prefix to the '<' (not "</") */
		if (q >= xml && *q == ':')
			while (--q >= xml && (isalnum((unsigned char)*q) || strchr("_-.", *q)))
				;
		if (q >= xml && *q == '<')
			return p;
	}
	return NULL;
}

/* The value of attribute name (NULL: none) of the start tag whose name
 * (tag) starts at p, attribute by attribute (XML allows any white space
 * around the '=' and either quote, and a value may hold '>' or another's
 * name); 0 when absent. *end, when not NULL, is set past the tag's '>'
 * once the walk reaches it. */
static int tag_attr(const char *p, const char *tag, const char *name, char *out, size_t len,
		    const char **end)
{
	static const char space[] = " \t\r\n";
	if (!p)
		return 0;
	size_t n = name ? strlen(name) : 0;
	for (p += strlen(tag);;) {
		p += strspn(p, space);
		if (end && (*p == '>' || (p[0] == '/' && p[1] == '>')))
			*end = p + (*p == '>' ? 1 : 2);
		const char *a = p;
		p += strcspn(p, " \t\r\n=/>");
		size_t an = (size_t)(p - a);
		p += strspn(p, space);
		if (!an || *p != '=')
			return 0;
		p += 1 + strspn(p + 1, space);
		if (*p != '"' && *p != '\'')
			return 0;
		const char *close = strchr(p + 1, *p);
		if (!close)
			return 0;
		if (name && an == n && !memcmp(a, name, n)) {
			size_t k = (size_t)(close - p - 1);
			snprintf(out, len, "%.*s", (int)(k < len ? k : len - 1), p + 1);
			return 1;
		}
		p = close + 1;
	}
}

/* The value of attribute name in the first start tag named tag of xml,
 * e.g. "Pixels"; 0 when absent. */
static int xml_attr(const char *xml, const char *tag, const char *name, char *out, size_t len)
{
	return tag_attr(xml_tag(xml, xml, tag), tag, name, out, len, NULL);
}

/* Attribute name of the tag at p as a count from 0; dflt when absent,
 * -1 when not a count. */
static int64_t tag_count(const char *p, const char *tag, const char *name, int64_t dflt)
{
	char v[32], *end;
	if (!tag_attr(p, tag, name, v, sizeof v, NULL))
		return dflt;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	return end == v || *end || errno || n < 0 ? -1 : (int64_t)n;
}

/* Whether a TiffData's UUID element (its name at u) is this file's: its
 * FileName this file's name (self), or, without one, its text the UUID
 * of this file's OME element (own, "" when it has none: taken for this
 * file). Else file is what names the other file. */
static int this_file(const char *u, const char *own, const char *self, char *file, size_t len)
{
	if (tag_attr(u, "UUID", "FileName", file, len, NULL)) {
		/* "./x.ome.tif", " x.ome.tif", "X.OME.TIF" name this file too
		 * (and case alone tells no two files apart on some systems) */
		const char *name = file + strspn(file, " \t\r\n");
		for (const char *sep; (sep = strpbrk(name, "/\\"));)
			name = sep + 1;
		size_t n = strlen(name);
		while (n && strchr(" \t\r\n", name[n - 1]))
			n--;
		return n == strlen(self) && !strncasecmp(name, self, n);
	}
	const char *text = NULL;
	tag_attr(u, "UUID", NULL, NULL, 0, &text);
	if (!text || !*own || text[-2] == '/') /* <UUID/>: nothing to compare */
		return 1;
	text += strspn(text, " \t\r\n");
	size_t n = strcspn(text, "<");
	while (n && strchr(" \t\r\n", text[n - 1]))
		n--;
	snprintf(file, len, "%.*s", (int)n, text);
	return !strcmp(file, own);
}

/* An OME-TIFF's TiffData elements: which pages hold which planes (IFD,
 * FirstZ, FirstC, FirstT, PlaneCount). Those naming another file (a UUID
 * with another FileName) are left out: their planes are not here. */
static int parse_tiffdata(halo_tiff_t *t, const char *xml, halo_error_t *err)
{
	static const char tag[] = "TiffData";
	const char *self = strrchr(t->path, '/');
	self = self ? self + 1 : t->path;
	char own[128] = ""; /* this file's UUID, the OME element's */
	xml_attr(xml, "OME", "UUID", own, sizeof own);
	for (const char *p = xml_tag(xml, xml, tag); p; p = xml_tag(xml, p + 1, tag)) {
		const char *next = xml_tag(xml, p + 1, tag), *u = xml_tag(xml, p + 1, "UUID");
		char file[sizeof t->foreign];
		if (u && (!next || u < next) && !this_file(u, own, self, file, sizeof file)) {
			memcpy(t->foreign, file, sizeof file);
			continue;
		}
		struct halo_tiffdata d = {
			.ifd = tag_count(p, tag, "IFD", 0),
			.first = {tag_count(p, tag, "FirstZ", 0), tag_count(p, tag, "FirstC", 0),
				  tag_count(p, tag, "FirstT", 0)},
			/* The spec's default: one page from a given IFD, else all. */
			.count = tag_count(p, tag, "PlaneCount", tag_count(p, tag, "IFD", -2) == -2 ? -2 : 1),
		};
		if (d.ifd < 0 || d.first[0] < 0 || d.first[1] < 0 || d.first[2] < 0 || d.count == -1)
			return halo_error_set(err, HALO_EFORMAT, "%s: its OME-XML has a TiffData whose IFD, "
					      "FirstZ, FirstC, FirstT or PlaneCount is no count",
					      t->path);
		if (t->ntiffdata % 16 == 0) {
			void *more = realloc(t->tiffdata, (t->ntiffdata + 16) * sizeof *t->tiffdata);
			if (!more)
				return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", t->path);
			t->tiffdata = more;
		}
		t->tiffdata[t->ntiffdata++] = d;
	}
	return HALO_OK;
}

/* OME-TIFF: one image, its channel and time point counts and plane order,
 * its physical pixel sizes as the voxel size; planes: its SizeZ (0 when
 * not given). */
static int parse_ome(halo_tiff_t *t, const char *xml, uint32_t w, uint32_t h, long *planes,
		     halo_error_t *err)
{
	char v[64], sx[64] = "", sy[64] = "";
	/* Pages of another size than the XML's are another image's. */
	xml_attr(xml, "Pixels", "SizeX", sx, sizeof sx);
	xml_attr(xml, "Pixels", "SizeY", sy, sizeof sy);
	if ((*sx && strtoul(sx, NULL, 10) != w) || (*sy && strtoul(sy, NULL, 10) != h))
		return halo_error_set(err, HALO_EFORMAT, "%s: its OME-XML says SizeY %s and SizeX %s, "
				      "its pages are %ux%u", t->path, *sy ? sy : "(none)",
				      *sx ? sx : "(none)", h, w);
	*planes = xml_attr(xml, "Pixels", "SizeZ", v, sizeof v) ? strtol(v, NULL, 10) : 0;
	t->info.channels = xml_attr(xml, "Pixels", "SizeC", v, sizeof v) ? strtol(v, NULL, 10) : 0;
	t->info.times = xml_attr(xml, "Pixels", "SizeT", v, sizeof v) ? strtol(v, NULL, 10) : 0;
	/* Planes in the order of the last three letters, the first fastest */
	char order[16] = "XYZCT";
	xml_attr(xml, "Pixels", "DimensionOrder", order, sizeof order);
	if (strlen(order) != 5 || strncmp(order, "XY", 2) || !strchr(order + 2, 'Z') ||
	    !strchr(order + 2, 'C') || !strchr(order + 2, 'T'))
		return halo_error_set(err, HALO_EFORMAT, "%s: its OME-XML has DimensionOrder '%s'",
				      t->path, order);
	memcpy(t->info.ome_order, order + 2, 4);
	if (t->info.channels > INT32_MAX || t->info.times > INT32_MAX || t->info.channels < 0 ||
	    t->info.times < 0)
		return halo_error_set(err, HALO_EFORMAT, "%s: its OME-XML has SizeC %lld and SizeT "
				      "%lld", t->path, (long long)t->info.channels,
				      (long long)t->info.times);
	int images = 0;
	for (const char *p = xml_tag(xml, xml, "Pixels"); p; p = xml_tag(xml, p + 1, "Pixels"))
		images++;
	if (images > 1)
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: an OME-TIFF of %d images; halo "
				      "reads files of one image", t->path, images);
	static const char *const size[3] = {"PhysicalSizeZ", "PhysicalSizeY", "PhysicalSizeX"};
	static const char *const unit_attr[3] = {"PhysicalSizeZUnit", "PhysicalSizeYUnit",
						 "PhysicalSizeXUnit"};
	char units[3][sizeof t->info.unit];
	const char *given[3] = {NULL, NULL, units[2]}; /* the sizes to convert */
	int has[3] = {0, 0, 0};
	for (int d = 0; d < 3; d++) {
		if (xml_attr(xml, "Pixels", size[d], v, sizeof v) && strtod(v, NULL) > 0) {
			t->info.voxel[d] = strtod(v, NULL);
			given[d] = units[d];
			has[d] = 1;
		}
		snprintf(units[d], sizeof units[d], "%s", "\xc2\xb5m"); /* OME's default */
		xml_attr(xml, "Pixels", unit_attr[d], units[d], sizeof units[d]);
	}
	/* One in-plane size alone (tifffile writes those it is given):
	 * pixels are square; y became 1 um beside x's 0.1. */
	for (int d = 1; d < 3; d++)
		if (!has[d] && has[3 - d]) {
			t->info.voxel[d] = t->info.voxel[3 - d];
			memcpy(units[d], units[3 - d], sizeof units[d]);
			given[d] = units[d];
			t->info.guessed |= 1 << d;
		}
	if (!has[0])
		t->info.guessed |= 1;
	if (!has[1] && !has[2]) /* PhysicalSizeZ alone */
		t->info.guessed |= 6;
	if (!has[0] && !has[1] && !has[2]) /* no unit: OME's default says nothing then */
		given[2] = NULL;
	halo_units_common(given, t->info.voxel, NULL, t->info.unit, sizeof t->info.unit);
	return parse_tiffdata(t, xml, err);
}

/* Whether desc is tifffile's JSON description of an array of shape
 * (a, b, c). */
static int shaped_as(const char *desc, json_int_t a, json_int_t b, json_int_t c)
{
	json_t *root = desc[0] == '{' ? json_loads(desc, 0, NULL) : NULL;
	const json_t *shape = json_object_get(root, "shape");
	json_int_t want[3] = {a, b, c};
	int same = json_array_size(shape) == 3;
	for (size_t i = 0; i < 3 && same; i++)
		same = json_integer_value(json_array_get(shape, i)) == want[i];
	json_decref(root);
	return same;
}

/* tifffile's JSON description of the array it wrote, {"shape": [...]},
 * with "spacing" (z, y, x) and "unit" for the voxel size when halo wrote
 * it (for the types ImageJ lacks). A shape of more than three axes beyond
 * unit ones is refused (its pages would read as one stack); (1, Y, X)
 * stays 3D (*ndim = 3). *pages: the pages the shape describes (0 when it
 * says nothing usable). */
static int parse_shaped(halo_tiff_t *t, const char *desc, uint32_t w, uint32_t h, int *ndim,
			long *pages, halo_error_t *err)
{
	json_t *root = json_loads(desc, 0, NULL);
	const json_t *shape = json_object_get(root, "shape");
	size_t n = json_array_size(shape), lead = 0;
	/* tifffile's (..., Y, X, 1): pages of Y x X, one sample each. */
#define AXIS(i) json_integer_value(json_array_get(shape, (i)))
	if (n >= 4 && AXIS(n - 1) == 1 && AXIS(n - 3) == (json_int_t)h && AXIS(n - 2) == (json_int_t)w)
		n--;
	*pages = n >= 2 ? 1 : 0;
	for (size_t i = 0; i + 2 < n; i++) {
		json_int_t v = AXIS(i);
		lead += v != 1;
		*pages = v > 0 && v <= INT32_MAX && *pages <= INT32_MAX ? *pages * v : 0;
	}
	/* Pages that are no planes of the shape would read transposed (a
	 * (Z, Y, 1) volume is one Z x Y page: t->row_planes). */
	int planes = t->row_planes || n < 2 ||
		     (AXIS(n - 2) == (json_int_t)h && AXIS(n - 1) == (json_int_t)w);
	if (lead > 1 || !planes) {
		char dims[128] = "";
		for (size_t i = 0; i < n && strlen(dims) < sizeof dims - 24; i++)
			snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%lld", i ? "x" : "",
				 (long long)AXIS(i));
		json_decref(root);
		if (!planes)
			return halo_error_set(err, HALO_EUNSUPPORTED, "%s: a %s image stored in pages "
					      "of %ux%u, not a page per plane; halo cannot read it "
					      "(save it as Zarr)", t->path, dims, h, w);
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: a %zuD image (%s); halo reads 2D and "
				      "3D volumes", t->path, n, dims);
	}
#undef AXIS
	if (n == 3)
		*ndim = 3;
	const json_t *sp = json_object_get(root, "spacing");
	if (json_array_size(sp) == 3)
		for (int d = 0; d < 3; d++)
			if (json_number_value(json_array_get(sp, (size_t)d)) > 0)
				t->info.voxel[d] = json_number_value(json_array_get(sp, (size_t)d));
	const json_t *at = json_object_get(root, "origin"); /* halo's own */
	if (json_array_size(at) == 3)
		for (int d = 0; d < 3; d++)
			t->info.origin[d] = json_number_value(json_array_get(at, (size_t)d));
	const char *unit = json_string_value(json_object_get(root, "unit"));
	if (unit)
		snprintf(t->info.unit, sizeof t->info.unit, "%s", unit);
	json_decref(root);
	return HALO_OK;
}

/* A stack stored with one directory, as ImageJ does above 4 GiB and
 * tifffile with truncate=True: the first page's strips must be
 * uncompressed and contiguous, and the file long enough for all. */
static int contiguous_stack(halo_tiff_t *t, long images, uint32_t w, uint32_t h,
			    halo_error_t *err)
{
	uint16_t compression = COMPRESSION_NONE;
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_COMPRESSION, &compression);
	uint64_t *offsets = NULL, *counts = NULL;
	tstrip_t strips = TIFFNumberOfStrips(t->tif);
	size_t page = (size_t)w * h * halo_dtype_size(t->info.dtype), total = 0;
	int ok = !TIFFIsTiled(t->tif) && compression == COMPRESSION_NONE && !t->predicted &&
		 TIFFGetField(t->tif, TIFFTAG_STRIPOFFSETS, &offsets) &&
		 TIFFGetField(t->tif, TIFFTAG_STRIPBYTECOUNTS, &counts);
	for (tstrip_t s = 0; ok && s < strips; s++) {
		ok = offsets[s] == offsets[0] + total;
		total += counts[s];
	}
	if (!ok || !page || total != page)
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: its description says %ld pages but "
				      "the file holds one, not stored as one contiguous stack",
				      t->path, images);
	/* Divided, not multiplied: images comes from the file and may be
	 * anything. */
	if (images > INT32_MAX || t->size < offsets[0] ||
	    (t->size - offsets[0]) / page < (uint64_t)images)
		return halo_error_set(err, HALO_EFORMAT, "%s: truncated: its description says %ld "
				      "pages of %zu bytes", t->path, images, page);
	t->contig_offset = (int64_t)offsets[0];
	t->contig = 1;
	return HALO_OK;
}

/* For messages: what TIFF's SampleFormat tag says. */
static const char *sample_format_name(unsigned format)
{
	return format == SAMPLEFORMAT_INT      ? "signed"
	       : format == SAMPLEFORMAT_IEEEFP ? "float"
	       : format == SAMPLEFORMAT_UINT   ? "unsigned"
					       : "of another sample format";
}

/* The current directory's compression, by the names people know it by
 * (libtiff calls tifffile's zlib "AdobeDeflate"). */
static void compression_name(TIFF *tif, char *out, size_t len)
{
	static const struct {
		uint16_t id;
		const char *name;
	} names[] = {{COMPRESSION_NONE, "none"},
		     {COMPRESSION_LZW, "lzw"},
		     {COMPRESSION_JPEG, "jpeg"},
		     {COMPRESSION_ADOBE_DEFLATE, "deflate"},
		     {COMPRESSION_DEFLATE, "deflate"},
		     {COMPRESSION_PACKBITS, "packbits"},
		     {COMPRESSION_LZMA, "lzma"},
		     {COMPRESSION_ZSTD, "zstd"},
		     {COMPRESSION_WEBP, "webp"}};
	uint16_t c = COMPRESSION_NONE;
	TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &c);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].id == c) {
			snprintf(out, len, "%s", names[i].name);
			return;
		}
	const TIFFCodec *codec = TIFFFindCODEC(c);
	if (codec)
		snprintf(out, len, "%s", codec->name);
	else
		snprintf(out, len, "%u", c);
}

/* An unsigned number of n bytes in a file's byte order. */
static uint64_t file_uint(const unsigned char *b, size_t n, int big_endian)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * (big_endian ? n - 1 - i : i));
	return v;
}

/* The current page's directory entry for tag (12 bytes, or 20 in a
 * BigTIFF), read from the file: for what libtiff does not keep, or keeps
 * rounded. 0 when the page has none. */
static int ifd_entry(halo_tiff_t *t, unsigned tag, unsigned char entry[20])
{
	int big = TIFFIsBigTIFF(t->tif), be = TIFFIsBigEndian(t->tif), fd = TIFFFileno(t->tif);
	size_t head = big ? 8 : 2, size = big ? 20 : 12;
	off_t at = (off_t)TIFFCurrentDirOffset(t->tif);
	unsigned char b[32 * 20];
	if (halo_fs_pread_all(fd, b, head, at) != (ssize_t)head)
		return 0; /* libtiff has just read it */
	uint64_t n = file_uint(b, head, be);
	at += (off_t)head;
	/* The entries, 32 at a time: a page's directory is read once per
	 * page of a stack that may have 100,000. */
	for (uint64_t e = 0; e < n && e < 65536; e += 32) {
		size_t k = n - e < 32 ? (size_t)(n - e) : 32;
		if (halo_fs_pread_all(fd, b, k * size, at + (off_t)(e * size)) != (ssize_t)(k * size))
			return 0;
		for (size_t i = 0; i < k; i++)
			if (file_uint(b + i * size, 2, be) == tag) {
				memcpy(entry, b + i * size, size);
				return 1;
			}
	}
	return 0;
}

/* The current page's predictor where halo must undo it, 1 (none) where
 * libtiff does or there is none: libtiff keeps the tag only for the
 * codecs that use it ("plugin is not configured" for the others), so for
 * uncompressed and PackBits pages it is read from the directory itself. */
static unsigned own_predictor(halo_tiff_t *t)
{
	uint16_t c = COMPRESSION_NONE;
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_COMPRESSION, &c);
	unsigned char e[20];
	if ((c != COMPRESSION_NONE && c != COMPRESSION_PACKBITS) ||
	    !ifd_entry(t, TIFFTAG_PREDICTOR, e))
		return PREDICTOR_NONE;
	/* a SHORT, held in the entry */
	return (unsigned)file_uint(e + (TIFFIsBigTIFF(t->tif) ? 12 : 8), 2, TIFFIsBigEndian(t->tif));
}

/* A resolution tag (a RATIONAL) as the file holds it: libtiff hands it
 * back as a float, and 1 / 4000000/1000 came out 249.99998812563774 nm
 * for ImageJ's 250. fallback (libtiff's) where it cannot be read. */
static double resolution(halo_tiff_t *t, unsigned tag, double fallback)
{
	unsigned char e[20], r[8];
	int big = TIFFIsBigTIFF(t->tif), be = TIFFIsBigEndian(t->tif);
	if (!ifd_entry(t, tag, e) || file_uint(e + 2, 2, be) != TIFF_RATIONAL ||
	    file_uint(e + 4, big ? 8 : 4, be) != 1)
		return fallback;
	if (big) /* the value itself, in the entry */
		memcpy(r, e + 12, 8);
	else if (halo_fs_pread_all(TIFFFileno(t->tif), r, 8, (off_t)file_uint(e + 8, 4, be)) != 8)
		return fallback;
	uint64_t num = file_uint(r, 4, be), den = file_uint(r + 4, 4, be);
	return num && den ? (double)num / (double)den : fallback;
}

/* Whether strip or tile i of the current page is a hole (a sparse file:
 * GDAL's SPARSE_OK): a byte count or an offset of 0 (the file's header is
 * no data), read as zeros as tifffile reads it, where libtiff read an
 * uncompressed one from offset 0. */
static int hole(halo_tiff_t *t, uint32_t i)
{
	uint64_t *counts = NULL, *offsets = NULL;
	int tiled = TIFFIsTiled(t->tif);
	if (!TIFFGetField(t->tif, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS,
			  &counts) || !counts ||
	    !TIFFGetField(t->tif, tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS, &offsets) ||
	    !offsets)
		return 0; /* libtiff's read reports it */
	return counts[i] == 0 || offsets[i] == 0;
}

/* Refuses a page whose predictor neither libtiff nor halo can undo:
 * libtiff's codecs undo 2 and 3 only (DNG's 34892 to 34895 failed as an
 * unreadable page). */
static int check_predictor(halo_tiff_t *t, unsigned page, halo_error_t *err)
{
	uint16_t c = COMPRESSION_NONE, lp = PREDICTOR_NONE, bits = 0, format = SAMPLEFORMAT_UINT;
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_COMPRESSION, &c);
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_BITSPERSAMPLE, &bits);
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_SAMPLEFORMAT, &format);
	if ((c == COMPRESSION_LZW || c == COMPRESSION_ADOBE_DEFLATE || c == COMPRESSION_DEFLATE ||
	     c == COMPRESSION_LZMA || c == COMPRESSION_ZSTD) &&
	    TIFFGetFieldDefaulted(t->tif, TIFFTAG_PREDICTOR, &lp) && lp != PREDICTOR_NONE) {
		char name[32];
		compression_name(t->tif, name, sizeof name);
		if (lp > PREDICTOR_FLOATINGPOINT)
			return halo_error_set(err, HALO_EUNSUPPORTED, "%s: page %u has predictor %u, "
					      "which libtiff cannot undo after %s compression (only 2 "
					      "and 3)", t->path, page, lp, name);
		if (lp == PREDICTOR_FLOATINGPOINT && format != SAMPLEFORMAT_IEEEFP)
			return halo_error_set(err, HALO_EFORMAT, "%s: page %u has the floating-point "
					      "predictor (3) on %u-bit %s samples", t->path, page, bits,
					      sample_format_name(format));
	}
	unsigned p = own_predictor(t);
	if (p == PREDICTOR_NONE)
		return HALO_OK;
	if (!halo_predictor_supported(p, bits, format == SAMPLEFORMAT_IEEEFP))
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: page %u has predictor %u, which "
				      "halo cannot undo on %u-bit %s samples", t->path, page, p,
				      bits, sample_format_name(format));
	t->predicted = 1;
	return HALO_OK;
}

/* The bytes strip or tile i of the current page decodes to: a tile
 * whole, a strip its rows (the last of a page, or of a sample plane, may
 * have fewer). */
static uint64_t segment_bytes(halo_tiff_t *t, uint32_t i)
{
	if (TIFFIsTiled(t->tif))
		return (uint64_t)TIFFTileSize64(t->tif);
	uint32_t h = 0, rps = 0, n = TIFFNumberOfStrips(t->tif);
	uint16_t spp = 1, planar = PLANARCONFIG_CONTIG;
	TIFFGetField(t->tif, TIFFTAG_IMAGELENGTH, &h);
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_ROWSPERSTRIP, &rps);
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_PLANARCONFIG, &planar);
	uint32_t per = planar == PLANARCONFIG_SEPARATE && spp ? n / spp : n; /* per sample plane */
	rps = rps ? rps : h;
	uint64_t row0 = (uint64_t)(per ? i % per : i) * rps, rows = h > row0 ? h - row0 : 0;
	return (uint64_t)TIFFVStripSize64(t->tif, (uint32_t)(rows < rps ? rows : rps));
}

/* Refuses an uncompressed page whose strip or tile has fewer bytes than
 * its pixels (holes aside): libtiff read past it, into the next strip or
 * the directory, without a word (tifffile refuses such a file). A corrupt
 * ImageWidth of 2^31 over a few hundred bytes is caught here too. */
static int check_sizes(halo_tiff_t *t, unsigned page, halo_error_t *err)
{
	uint16_t c = COMPRESSION_NONE;
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_COMPRESSION, &c);
	if (c != COMPRESSION_NONE)
		return HALO_OK;
	int tiled = TIFFIsTiled(t->tif);
	uint32_t n = tiled ? TIFFNumberOfTiles(t->tif) : TIFFNumberOfStrips(t->tif);
	uint64_t *counts = NULL, *offsets = NULL;
	if (!TIFFGetField(t->tif, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &counts) ||
	    !counts ||
	    !TIFFGetField(t->tif, tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS, &offsets) ||
	    !offsets)
		return HALO_OK; /* libtiff's read reports it */
	for (uint32_t i = 0; i < n; i++) {
		if (hole(t, i))
			continue;
		/* libtiff puts its own counts in place of a bogus array: the
		 * file's end bounds them. */
		uint64_t have = offsets[i] >= t->size ? 0 : counts[i], need = segment_bytes(t, i);
		if (have > t->size - offsets[i])
			have = t->size - offsets[i];
		if (have < need)
			return halo_error_set(err, HALO_EFORMAT, "%s: page %u, %s %u, holds %llu bytes of "
					      "the %llu its pixels need (truncated or corrupt)", t->path,
					      page, tiled ? "tile" : "strip", i,
					      (unsigned long long)have, (unsigned long long)need);
	}
	return HALO_OK;
}

static int by_value(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The page of each plane from an OME-TIFF's TiffData (t->zstep... set):
 * every plane must be in one full-resolution page of this file (full:
 * the nfull such pages, ascending, or NULL for all). Where that is the
 * planes' own order, no map is kept. */
static int map_planes(halo_tiff_t *t, int64_t nz, int64_t nc, int64_t nt, int64_t pages,
		      const int64_t *full, int64_t nfull, halo_error_t *err)
{
	if (t->foreign[0]) /* some plane is in another file */
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: its OME-XML puts planes in another "
				      "file (%s); halo reads OME-TIFFs of one file", t->path, t->foreign);
	/* Divided, not multiplied: the sizes come from the file. */
	if (nz > pages || nc > pages / nz || nt > pages / (nz * nc))
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: its OME-XML says %.0f planes but "
				      "the file has %lld (one file of several?)", t->path,
				      (double)nz * (double)nc * (double)nt, (long long)pages);
	int64_t n = nz * nc * nt;
	if (!(t->map = malloc((size_t)n * sizeof *t->map)))
		return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", t->path);
	for (int64_t i = 0; i < n; i++)
		t->map[i] = -1;
	const int64_t size[3] = {nz, nc, nt}, step[3] = {t->zstep, t->cstep, t->tstep};
	for (size_t k = 0; k < t->ntiffdata; k++) {
		const struct halo_tiffdata *d = &t->tiffdata[k];
		int64_t plane = 0;
		for (int a = 0; a < 3; a++) {
			if (d->first[a] >= size[a])
				return halo_error_set(err, HALO_EFORMAT, "%s: its OME-XML has a TiffData at "
						      "%s %lld of %lld", t->path, a == 0 ? "z"
						      : a == 1 ? "channel" : "time point",
						      (long long)d->first[a], (long long)size[a]);
			plane += d->first[a] * step[a];
		}
		int64_t count = d->count == -2 ? pages - d->ifd : d->count;
		for (int64_t i = 0; i < count && plane + i < n; i++) {
			if (d->ifd + i >= pages)
				return halo_error_set(err, HALO_EFORMAT, "%s: its OME-XML puts a plane in "
						      "page %lld, but the file has %lld", t->path,
						      (long long)(d->ifd + i), (long long)pages);
			int64_t page = d->ifd + i;
			if (full && !bsearch(&page, full, (size_t)nfull, sizeof *full, by_value))
				return halo_error_set(err, HALO_EFORMAT, "%s: its OME-XML puts a plane in "
						      "page %lld, a reduced-resolution page", t->path,
						      (long long)page);
			t->map[plane + i] = page;
		}
	}
	int same = n == pages;
	for (int64_t i = 0; i < n; i++) {
		if (t->map[i] < 0) {
			int64_t z = i / t->zstep % nz, c = t->cstep ? i / t->cstep % nc : 0,
				tp = t->tstep ? i / t->tstep % nt : 0;
			return halo_error_set(err, HALO_EFORMAT, "%s: its OME-XML puts the plane at z "
					      "%lld, channel %lld, time point %lld in no page",
					      t->path, (long long)z, (long long)c, (long long)tp);
		}
		same = same && t->map[i] == i;
	}
	if (same) {
		free(t->map);
		t->map = NULL;
	}
	return HALO_OK;
}

int halo_tiff_open(const char *path, halo_tiff_t **out, halo_error_t *err)
{
	*out = NULL;
	if (!halo_fs_exists(path))
		return halo_error_set(err, HALO_ENOENT, "%s: no such file or directory", path);
	halo_tiff_t *t = calloc(1, sizeof *t);
	if (!t || !(t->path = strdup(path))) {
		free(t);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&t->lock, NULL);
	int rc = HALO_OK;
	int64_t *full = NULL;
	t->tif = open_with_handlers(t, "rm"); /* no memory-mapping: files may exceed RAM */
	struct stat st;
	if (!t->tif || fstat(TIFFFileno(t->tif), &st) != 0) {
		char what[96] = "not a readable TIFF";
		if (!t->tif && directory_cut(t) && stat(path, &st) == 0)
			snprintf(what, sizeof what, "not a readable TIFF, truncated or corrupt (%lld "
				 "bytes)", (long long)st.st_size);
		rc = tiff_fail(t, HALO_EFORMAT, what, err);
		goto fail;
	}
	t->size = (uint64_t)st.st_size;
	uint32_t w = 0, h = 0;
	uint16_t spp = 1, bits = 0, format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
	TIFFGetField(t->tif, TIFFTAG_IMAGEWIDTH, &w);
	TIFFGetField(t->tif, TIFFTAG_IMAGELENGTH, &h);
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_BITSPERSAMPLE, &bits);
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_SAMPLEFORMAT, &format);
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_PLANARCONFIG, &planar);
	halo_tiff_info_t *info = &t->info;
	info->big_endian = TIFFIsBigEndian(t->tif);
	compression_name(t->tif, info->compression, sizeof info->compression);
	char *desc = NULL;
	if (!TIFFGetField(t->tif, TIFFTAG_IMAGEDESCRIPTION, &desc))
		desc = NULL;
	if (desc && TIFFNumberOfDirectories(t->tif) == 1) {
		if (spp > 1 && planar == PLANARCONFIG_SEPARATE && shaped_as(desc, spp, h, w))
			t->sample_planes = spp;
		else if (spp == 1 && shaped_as(desc, h, w, 1))
			t->row_planes = 1;
	}
	/* Interleaved samples are colour, or an array whose last axis
	 * tifffile took for colour. */
	if (spp != 1 && !t->sample_planes) {
		uint16_t photometric = PHOTOMETRIC_MINISBLACK;
		TIFFGetFieldDefaulted(t->tif, TIFFTAG_PHOTOMETRIC, &photometric);
		int colour = planar == PLANARCONFIG_CONTIG && (spp == 3 || spp == 4) &&
			     photometric == PHOTOMETRIC_RGB;
		rc = halo_error_set(err, HALO_EUNSUPPORTED,
				    "%s: %u samples per pixel; only single-channel images are "
				    "supported (%s)", path, spp,
				    colour ? "tifffile stores an array whose last axis is 3 or 4 as "
					     "colour unless given photometric='minisblack'"
				    : planar == PLANARCONFIG_CONTIG
				    ? "split the channels into files of one each first"
				    : "separate sample planes are read only from tifffile's single "
				      "page of a (3 or 4, Y, X) array");
		goto fail;
	}
	if (sample_dtype(format, bits, &info->dtype) < 0) {
		rc = halo_error_set(err, HALO_EUNSUPPORTED,
				    "%s: unsupported sample type (%u-bit, format %u)", path, bits, format);
		goto fail;
	}
	uint32_t depth = 1;
	if (TIFFGetField(t->tif, TIFFTAG_IMAGEDEPTH, &depth) && depth > 1) {
		rc = halo_error_set(err, HALO_EUNSUPPORTED, "%s: a volumetric (ImageDepth %u) TIFF; "
				    "halo reads stacks of 2D pages", path, depth);
		goto fail;
	}
	info->voxel[0] = info->voxel[1] = info->voxel[2] = 1;
	long described = 0; /* pages, as the description counts them */
	long ome_planes = 0; /* planes, as an OME-XML counts them */
	int imagej = 0, shaped_ndim = 0;
	if (desc) {
		if ((imagej = strncmp(desc, "ImageJ=", 7) == 0))
			rc = parse_imagej(t, desc, &described, err);
		else if (strstr(desc, "<OME") && strstr(desc, "Pixels"))
			rc = parse_ome(t, desc, w, h, &ome_planes, err);
		else if (desc[0] == '{')
			rc = parse_shaped(t, desc, w, h, &shaped_ndim, &described, err);
		if (rc)
			goto fail;
	}
	float fx = 0, fy = 0;
	uint16_t resunit = RESUNIT_INCH; /* TIFF's default where the tag is absent */
	int has_unit = TIFFGetField(t->tif, TIFFTAG_RESOLUTIONUNIT, &resunit);
	int has_x = TIFFGetField(t->tif, TIFFTAG_XRESOLUTION, &fx) && fx > 0;
	int has_y = TIFFGetField(t->tif, TIFFTAG_YRESOLUTION, &fy) && fy > 0;
	double xres = has_x ? resolution(t, TIFFTAG_XRESOLUTION, fx) : 0;
	double yres = has_y ? resolution(t, TIFFTAG_YRESOLUTION, fy) : 0;
	/* ImageJ keeps y and x pixel sizes as resolutions, in its unit, or
	 * with no unit in no ResolutionUnit (as halo writes a volume whose
	 * unit is unknown). Where its description names no unit, ImageJ
	 * takes centimetres from the tag, or inches but not at 72 dpi (a
	 * writer's default, no pixel size). */
	if (imagej && !info->unit[0] && has_unit &&
	    (resunit == RESUNIT_CENTIMETER || (resunit == RESUNIT_INCH && has_x && xres != 72)))
		snprintf(info->unit, sizeof info->unit, "%s", resunit == RESUNIT_INCH ? "inch" : "cm");
	if (imagej && (info->unit[0] || resunit == RESUNIT_NONE)) {
		if (has_x)
			info->voxel[2] = 1.0 / xres;
		if (has_y)
			info->voxel[1] = 1.0 / yres;
	}
	/* ImageJ names the z and y units where they differ from x's
	 * (zunit=, yunit=): the sizes in x's. */
	char zu[32], yu[32];
	int has_zu = imagej && imagej_text(desc, "zunit", zu, sizeof zu);
	int has_yu = imagej && imagej_text(desc, "yunit", yu, sizeof yu);
	if (info->unit[0] && (has_zu || has_yu)) {
		const char *units[3] = {has_zu ? zu : info->unit, has_yu ? yu : info->unit, info->unit};
		halo_units_common(units, info->voxel, NULL, info->unit, sizeof info->unit);
	}
	/* Another writer's resolution counts in centimetres only (in inches
	 * it is mostly that default), and for a single plane: a stack's z
	 * spacing would be made up. */
	int plain_cm = !imagej && !info->unit[0] && !(desc && strstr(desc, "<OME")) && has_unit &&
		       resunit == RESUNIT_CENTIMETER && has_x && has_y;
	for (int d = 0; d < 3; d++) { /* garbage in the metadata: as if absent */
		if (!(isfinite(info->voxel[d]) && info->voxel[d] > 0))
			info->voxel[d] = 1;
		if (imagej && info->origin[d] != 0) /* not -0 */
			info->origin[d] *= -info->voxel[d];
		if (!isfinite(info->origin[d]))
			info->origin[d] = 0;
	}

	if ((rc = check_predictor(t, 0, err)) || (rc = check_sizes(t, 0, err)))
		goto fail;
	/* Every page must match the first; counting them also finds a file
	 * truncated in its directory chain. */
	tdir_t pages = TIFFNumberOfDirectories(t->tif);
	if (t->last_error[0]) {
		char what[96] = "corrupt directory chain";
		if (directory_cut(t))
			snprintf(what, sizeof what, "truncated or corrupt: a page's directory lies "
				 "past the file's end (%llu bytes)", (unsigned long long)t->size);
		rc = tiff_fail(t, HALO_EFORMAT, what, err);
		goto fail;
	}
	/* Reduced-resolution pages (thumbnails, a pyramid's levels) between
	 * or after full ones are not the volume's, as tifffile leaves them
	 * out of its first series: full[] lists the pages that are, where
	 * some are not. */
	uint32_t subfile = 0;
	TIFFGetField(t->tif, TIFFTAG_SUBFILETYPE, &subfile);
	int skip_reduced = !(subfile & FILETYPE_REDUCEDIMAGE);
	int64_t nfull = 1;
	/* Page by page from the first: TIFFSetDirectory(p) walks the chain
	 * from the start each time (72 s for 10,000 pages). */
	for (tdir_t p = 1; p < pages; p++) {
		uint32_t pw = 0, ph = 0;
		uint16_t pbits = 0, pformat = SAMPLEFORMAT_UINT, pspp = 1;
		if (!TIFFReadDirectory(t->tif)) {
			rc = tiff_fail(t, HALO_EFORMAT, "cannot read page directory", err);
			goto fail;
		}
		subfile = 0;
		if (skip_reduced && TIFFGetField(t->tif, TIFFTAG_SUBFILETYPE, &subfile) &&
		    (subfile & FILETYPE_REDUCEDIMAGE)) {
			if (!full) {
				if (!(full = malloc(pages * sizeof *full))) {
					rc = halo_error_set(err, HALO_ENOMEM, "%s: out of memory", path);
					goto fail;
				}
				for (int64_t i = 0; i < nfull; i++)
					full[i] = i;
			}
			continue;
		}
		if (full)
			full[nfull] = p;
		nfull++;
		TIFFGetField(t->tif, TIFFTAG_IMAGEWIDTH, &pw);
		TIFFGetField(t->tif, TIFFTAG_IMAGELENGTH, &ph);
		TIFFGetFieldDefaulted(t->tif, TIFFTAG_BITSPERSAMPLE, &pbits);
		TIFFGetFieldDefaulted(t->tif, TIFFTAG_SAMPLEFORMAT, &pformat);
		TIFFGetFieldDefaulted(t->tif, TIFFTAG_SAMPLESPERPIXEL, &pspp);
		if (pspp != 1) {
			rc = halo_error_set(err, HALO_EUNSUPPORTED, "%s: page %u has %u samples per "
					    "pixel; only single-channel images are supported",
					    path, (unsigned)p, pspp);
			goto fail;
		}
		if ((rc = check_predictor(t, (unsigned)p, err)) ||
		    (rc = check_sizes(t, (unsigned)p, err)))
			goto fail;
		if (pw != w || ph != h || pbits != bits || pformat != format) {
			rc = halo_error_set(err, HALO_EUNSUPPORTED,
					    "%s: page %u is %ux%u, %u-bit %s; page 0 is %ux%u, %u-bit %s "
					    "(height x width)%s", path, (unsigned)p, ph, pw, pbits,
					    sample_format_name(pformat), h, w, bits,
					    sample_format_name(format), skip_reduced ? ""
					    : ", a reduced-resolution page (halo reads a volume from "
					      "its first page on)");
			goto fail;
		}
	}
	TIFFSetDirectory(t->tif, 0);
	t->page = 0;
	tdir_t ifds = pages; /* TiffData counts the reduced ones too */
	pages = (tdir_t)nfull;
	info->reduced = (int64_t)ifds - nfull;
	/* A description that counts other pages than the file's: several
	 * series, or a file cut short; either way not one volume. */
	if (pages > 1 && described > 0 && described != (long)pages) {
		rc = halo_error_set(err, HALO_EUNSUPPORTED, "%s: its description says %ld pages "
				    "but the file has %u (several series in one file?)", path,
				    described, (unsigned)pages);
		goto fail;
	}
	if (t->sample_planes) {
		pages = t->sample_planes;
	} else if (t->row_planes) {
		/* Its rows are planes of width x 1 voxels. */
		if ((uint64_t)h * w * halo_dtype_size(info->dtype) > (UINT64_C(1) << 30)) {
			rc = halo_error_set(err, HALO_EUNSUPPORTED, "%s: a %ux%ux1 volume stored as "
					    "one page; halo reads such a page up to 1 GiB (save it "
					    "as Zarr)", path, h, w);
			goto fail;
		}
		pages = h;
		h = w;
		w = 1;
	} else if (pages == 1 && described > 1) {
		if ((rc = contiguous_stack(t, described, w, h, err)))
			goto fail;
		pages = (tdir_t)described;
	}
	/* A hyperstack's pages: slices x channels x time points. */
	int64_t nc = info->channels > 1 ? info->channels : 1, nt = info->times > 1 ? info->times : 1;
	/* A file cut short, or one file of a multi-file OME-TIFF. */
	int mapped = ome_planes > 0 && (t->ntiffdata || t->foreign[0]);
	if (ome_planes > 0 && !mapped &&
	    ((int64_t)pages % (nc * nt) || (int64_t)pages / (nc * nt) != ome_planes)) {
		rc = halo_error_set(err, HALO_EUNSUPPORTED, "%s: its OME-XML says %.0f planes but the "
				    "file has %u (one file of several?)", path,
				    (double)ome_planes * (double)nc * (double)nt, (unsigned)pages);
		goto fail;
	}
	/* Planes, which TiffData may map to pages in another order. */
	int64_t slices = mapped ? ome_planes : pages;
	t->zstep = 1;
	if (nc * nt > 1 && !mapped) {
		if (pages % (nc * nt)) {
			rc = halo_error_set(err, HALO_EFORMAT, "%s: its %u pages are not a multiple "
					    "of its %lld channels times %lld time points", path,
					    (unsigned)pages, (long long)nc, (long long)nt);
			goto fail;
		}
		slices = pages / (nc * nt);
	}
	if (nc * nt > 1) {
		const char *order = info->ome_order[0] ? info->ome_order : "CZT"; /* ImageJ's */
		int64_t step = 1;
		for (int i = 0; i < 3; i++) {
			int64_t *s = order[i] == 'Z' ? &t->zstep : order[i] == 'C' ? &t->cstep
										    : &t->tstep;
			*s = step;
			step *= order[i] == 'Z' ? slices : order[i] == 'C' ? nc : nt;
		}
	}
	if (mapped && (rc = map_planes(t, slices, nc, nt, ifds, full, nfull, err)))
		goto fail;
	if (!mapped) {
		t->map = full;
		full = NULL;
	}
	free(full);
	info->ndim = slices > 1 || shaped_ndim == 3 ? 3 : 2;
	if (plain_cm && info->ndim == 2 && isfinite(1e4 / xres) && isfinite(1e4 / yres)) {
		info->voxel[2] = 1e4 / xres;
		info->voxel[1] = 1e4 / yres;
		snprintf(info->unit, sizeof info->unit, "%s", "micrometer");
		info->guessed |= 1; /* a plane's: a sequence of them has no z spacing */
	}
	/* Where no size at all is stored, none is taken for one. */
	if (!info->unit[0])
		info->guessed = 0;
	info->shape[0] = slices;
	info->shape[1] = h;
	info->shape[2] = w;
	*out = t;
	return HALO_OK;
fail:
	free(full);
	halo_tiff_close(t, NULL);
	return rc;
}

const halo_tiff_info_t *halo_tiff_info(const halo_tiff_t *t)
{
	return &t->info;
}

void halo_tiff_select(halo_tiff_t *t, int64_t channel, int64_t time)
{
	t->first = channel * t->cstep + time * t->tstep;
}

static int goto_page(halo_tiff_t *t, int64_t z)
{
	if (t->sample_planes || t->row_planes) /* every plane is in page 0 */
		return 1;
	/* Forward (a hyperstack's next slice is pages on) directory by
	 * directory: TIFFSetDirectory walks the chain from the start. */
	while (t->page < z && TIFFReadDirectory(t->tif))
		t->page++;
	if (z == t->page)
		return 1;
	if (!TIFFSetDirectory(t->tif, (tdir_t)z))
		return 0;
	t->page = z;
	return 1;
}

/* Whether strip or tile i of the current page (decoded into data, len
 * bytes), deflate-compressed, is an intact zlib stream, its Adler-32
 * checked. libtiff stops decoding once a strip is full, and takes "more
 * data than fits" for files whose last strip was written full height: a
 * damaged stream that decoded to garbage filled the strip without an
 * error (tifffile refuses such a file). Without a predictor, the decoded
 * bytes are what the checksum covers (3.6 GB/s); else, or where they
 * differ (that last strip, a byte-swapped file), the stream is decoded
 * again to its end (0.3 GB/s), and that last strip's rows are taken from
 * it. Other codecs keep no checksum to check. */
static int intact(halo_tiff_t *t, uint32_t i, int tiled, unsigned char *data, size_t len)
{
	uint16_t compression = COMPRESSION_NONE;
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_COMPRESSION, &compression);
	if (compression != COMPRESSION_ADOBE_DEFLATE && compression != COMPRESSION_DEFLATE)
		return 1;
	uint64_t *counts = NULL;
	if (!TIFFGetField(t->tif, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS,
			  &counts) || !counts)
		return 0;
	size_t n = (size_t)counts[i];
	if (n > UINT_MAX || n < 6)
		return 0;
	if (n > t->raw_cap) {
		unsigned char *raw = realloc(t->raw, n);
		if (!raw) {
			snprintf(t->last_error, sizeof t->last_error, "out of memory");
			return 0;
		}
		t->raw = raw;
		t->raw_cap = n;
	}
	tmsize_t got = tiled ? TIFFReadRawTile(t->tif, i, t->raw, (tmsize_t)n)
			     : TIFFReadRawStrip(t->tif, i, t->raw, (tmsize_t)n);
	if (got <= 0 || (size_t)got != n)
		return 0;
	uint16_t predictor = PREDICTOR_NONE, bits = 8;
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_PREDICTOR, &predictor);
	TIFFGetFieldDefaulted(t->tif, TIFFTAG_BITSPERSAMPLE, &bits);
	const unsigned char *sum = t->raw + n - 4;
	int swapped = TIFFIsByteSwapped(t->tif) && bits > 8;
	if (predictor == PREDICTOR_NONE && !swapped && len <= UINT_MAX &&
	    adler32(1, data, (uInt)len) ==
		    ((uLong)sum[0] << 24 | (uLong)sum[1] << 16 | (uLong)sum[2] << 8 | sum[3]))
		return 1;
	z_stream zs = {.next_in = t->raw, .avail_in = (uInt)n};
	if (inflateInit(&zs) != Z_OK)
		return 0;
	/* No more than a whole strip (or tile): a small damaged stream can
	 * inflate to gigabytes, which the copy below would allocate. */
	tmsize_t whole_size = tiled ? TIFFTileSize(t->tif) : TIFFStripSize(t->tif);
	uLong most = whole_size > 0 && (size_t)whole_size > len ? (uLong)whole_size : (uLong)len;
	unsigned char sink[16384];
	int rc;
	do {
		zs.next_out = sink;
		zs.avail_out = sizeof sink;
		rc = inflate(&zs, Z_NO_FLUSH);
	} while (rc == Z_OK && zs.total_out <= most);
	inflateEnd(&zs);
	if (zs.total_out > most) {
		snprintf(t->last_error, sizeof t->last_error,
			 "its deflate data decode to more than a whole %s", tiled ? "tile" : "strip");
		return 0;
	}
	if (rc != Z_STREAM_END) {
		snprintf(t->last_error, sizeof t->last_error, "its deflate data are corrupt (%s)",
			 zs.msg ? zs.msg : "it stops short of its end");
		return 0;
	}
	if (zs.total_out <= len)
		return 1;
	/* A last strip written full height, which libtiff 4.5 decodes short
	 * with its last sample wrong (4.7e-41 for 3640.25): decoded whole,
	 * predictor and byte order as libtiff does, and the rows kept. */
	unsigned char *whole = malloc(zs.total_out);
	int ok = whole && TIFFReadFromUserBuffer(t->tif, i, t->raw, (tmsize_t)n, whole,
						  (tmsize_t)zs.total_out);
	if (ok)
		memcpy(data, whole, len);
	free(whole);
	return ok;
}

/* Undoes the current page's predictor, where halo must (own_predictor),
 * on rows of width samples. A floating-point predictor's bytes are in the
 * file's order, which libtiff has swapped for a foreign file: swapped
 * back first. */
static int unpredict(halo_tiff_t *t, unsigned char *data, size_t rows, size_t width)
{
	unsigned p = t->predicted ? own_predictor(t) : PREDICTOR_NONE;
	if (p == PREDICTOR_NONE)
		return 1;
	size_t el = halo_dtype_size(t->info.dtype);
	unsigned char *scratch = malloc(width * el);
	if (!scratch) {
		snprintf(t->last_error, sizeof t->last_error, "out of memory");
		return 0;
	}
	if (halo_predictor_floating(p) && TIFFIsByteSwapped(t->tif))
		halo_dtype_byteswap(data, el, rows * width);
	halo_predictor_undo(p, data, rows, width, el, scratch);
	free(scratch);
	return 1;
}

/* Reads sample plane `sample` of the current page (h rows of w pixels)
 * into dst. */
static int read_image(halo_tiff_t *t, uint16_t sample, uint32_t h, uint32_t w, unsigned char *dst)
{
	size_t el = halo_dtype_size(t->info.dtype);
	if (TIFFIsTiled(t->tif)) {
		uint32_t tw = 0, th = 0;
		TIFFGetField(t->tif, TIFFTAG_TILEWIDTH, &tw);
		TIFFGetField(t->tif, TIFFTAG_TILELENGTH, &th);
		tmsize_t tsize = TIFFTileSize(t->tif);
		unsigned char *tile = malloc((size_t)tsize);
		if (!tile)
			return 0;
		for (uint32_t y = 0; y < h; y += th)
			for (uint32_t x = 0; x < w; x += tw) {
				uint32_t i = TIFFComputeTile(t->tif, x, y, 0, sample);
				if (hole(t, i))
					memset(tile, 0, (size_t)tsize);
				else if (TIFFReadTile(t->tif, tile, x, y, 0, sample) < 0 ||
					 !intact(t, i, 1, tile, (size_t)tsize) ||
					 !unpredict(t, tile, th, tw)) {
					free(tile);
					return 0;
				}
				uint32_t ny = h - y < th ? h - y : th, nx = w - x < tw ? w - x : tw;
				for (uint32_t r = 0; r < ny; r++)
					memcpy(dst + ((size_t)(y + r) * w + x) * el,
					       tile + (size_t)r * tw * el, (size_t)nx * el);
			}
		free(tile);
		return 1;
	}
	size_t page_bytes = (size_t)w * h * el;
	size_t done = 0;
	/* Separate planes' strips are sample by sample */
	tstrip_t strips = TIFFNumberOfStrips(t->tif) / (t->sample_planes ? t->sample_planes : 1);
	for (tstrip_t s = sample * strips; s < (sample + 1) * strips && done < page_bytes; s++) {
		tmsize_t n;
		if (hole(t, s)) {
			uint64_t bytes = segment_bytes(t, s);
			n = (tmsize_t)(bytes < page_bytes - done ? bytes : page_bytes - done);
			memset(dst + done, 0, (size_t)n);
		} else {
			n = TIFFReadEncodedStrip(t->tif, s, dst + done, (tmsize_t)(page_bytes - done));
			if (n < 0 || !intact(t, s, 0, dst + done, (size_t)n))
				return 0;
		}
		done += (size_t)n;
	}
	return done == page_bytes && unpredict(t, dst, h, w);
}

/* Reads plane z, at the current page, into dst (height * width elements). */
static int read_plane(halo_tiff_t *t, int64_t z, unsigned char *dst)
{
	const int64_t *n = t->info.shape;
	size_t el = halo_dtype_size(t->info.dtype), row = (size_t)n[1] * (size_t)n[2] * el;
	if (!t->row_planes)
		return read_image(t, t->sample_planes ? (uint16_t)z : 0, (uint32_t)n[1],
				  (uint32_t)n[2], dst);
	if (!t->whole) {
		t->whole = malloc((size_t)n[0] * row);
		if (!t->whole || !read_image(t, 0, (uint32_t)n[0], (uint32_t)n[1], t->whole)) {
			free(t->whole);
			t->whole = NULL;
			return 0;
		}
	}
	memcpy(dst, t->whole + (size_t)z * row, row);
	return 1;
}

/* The page of slice z of the channel and time point selected. */
static int64_t page_of(const halo_tiff_t *t, int64_t z)
{
	int64_t plane = t->first + z * t->zstep;
	return t->map ? t->map[plane] : plane;
}

int halo_tiff_read_pages(halo_tiff_t *t, int64_t z0, int64_t nz, void *buf,
			 halo_error_t *err)
{
	size_t page_bytes = (size_t)t->info.shape[1] * (size_t)t->info.shape[2] *
			    halo_dtype_size(t->info.dtype);
	int rc = HALO_OK;
	if (t->contig) {
		/* The slices one after another, or a hyperstack's one by one */
		int64_t run = t->zstep == 1 && !t->map ? nz : 1;
		for (int64_t z = z0; z < z0 + nz; z += run) {
			int64_t p = page_of(t, z);
			size_t want = (size_t)run * page_bytes;
			unsigned char *dst = (unsigned char *)buf + (size_t)(z - z0) * page_bytes;
			ssize_t got = halo_fs_pread_all(TIFFFileno(t->tif), dst, want,
							(off_t)(t->contig_offset + p * (int64_t)page_bytes));
			if (got != (ssize_t)want)
				return halo_error_set(err, HALO_EFORMAT, "%s: pages %lld to %lld are "
						      "unreadable or truncated", t->path, (long long)p,
						      (long long)(p + run - 1));
		}
		if (TIFFIsByteSwapped(t->tif))
			halo_dtype_byteswap(buf, halo_dtype_size(t->info.dtype),
					    (size_t)nz * page_bytes / halo_dtype_size(t->info.dtype));
		return HALO_OK;
	}
	pthread_mutex_lock(&t->lock);
	for (int64_t z = z0; z < z0 + nz && !rc; z++) {
		int64_t p = page_of(t, z);
		t->last_error[0] = '\0';
		if (!goto_page(t, p) ||
		    !read_plane(t, p, (unsigned char *)buf + (size_t)(z - z0) * page_bytes)) {
			char what[64];
			snprintf(what, sizeof what, "page %lld is unreadable or truncated", (long long)p);
			rc = tiff_fail(t, HALO_EFORMAT, what, err);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static const uint16_t sample_formats[HALO_DTYPE_COUNT] = {
	[HALO_U1] = SAMPLEFORMAT_UINT, [HALO_U2] = SAMPLEFORMAT_UINT, [HALO_U4] = SAMPLEFORMAT_UINT,
	[HALO_U8] = SAMPLEFORMAT_UINT, [HALO_I1] = SAMPLEFORMAT_INT,  [HALO_I2] = SAMPLEFORMAT_INT,
	[HALO_I4] = SAMPLEFORMAT_INT,  [HALO_I8] = SAMPLEFORMAT_INT,  [HALO_F2] = SAMPLEFORMAT_IEEEFP,
	[HALO_F4] = SAMPLEFORMAT_IEEEFP, [HALO_F8] = SAMPLEFORMAT_IEEEFP,
};

/* Rows per strip: about 256 KiB, large enough for throughput, small
 * enough for readers that load strips whole. */
static uint32_t strip_rows(const halo_tiff_info_t *info)
{
	size_t row = (size_t)info->shape[2] * halo_dtype_size(info->dtype);
	uint32_t rows = (uint32_t)((256u << 10) / (row ? row : 1));
	return rows ? rows : 1;
}

/* An OME-TIFF's description (halo_path_ome_tiff): one image of n planes,
 * XYZCT, with the voxel size in OME's unit symbols where the unit has one
 * (the origin, ImageJ's xorigin..., has no place in it here). */
static int ome_xml(const halo_tiff_info_t *info, uint32_t w, uint32_t h, int64_t n, char *out,
		   size_t len)
{
	static const char *const types[HALO_DTYPE_COUNT] = {
		[HALO_U1] = "uint8",  [HALO_U2] = "uint16", [HALO_U4] = "uint32", [HALO_I1] = "int8",
		[HALO_I2] = "int16",  [HALO_I4] = "int32", /* none for the others (halo_tiff_create) */
		[HALO_F4] = "float",  [HALO_F8] = "double"};
	static const char *const units[][2] = {
		{"micron", "\xc2\xb5m"}, {"micrometer", "\xc2\xb5m"}, {"nanometer", "nm"},
		{"millimeter", "mm"},   {"centimeter", "cm"},    {"meter", "m"},
		{"picometer", "pm"},    {"angstrom", "\xc3\x85"}};
	const char *sym = NULL;
	for (size_t i = 0; i < sizeof units / sizeof *units; i++)
		if (!strcmp(info->unit, units[i][0]))
			sym = units[i][1];
	char sizes[320] = "";
	if (sym) { /* OME's default unit is the micrometre: no size without one */
		int m = snprintf(sizes, sizeof sizes,
				 " PhysicalSizeX=\"%.9g\" PhysicalSizeXUnit=\"%s\" PhysicalSizeY=\"%.9g\" "
				 "PhysicalSizeYUnit=\"%s\"", info->voxel[2], sym, info->voxel[1], sym);
		if (info->ndim == 3 && m > 0 && (size_t)m < sizeof sizes)
			snprintf(sizes + m, sizeof sizes - (size_t)m,
				 " PhysicalSizeZ=\"%.9g\" PhysicalSizeZUnit=\"%s\"", info->voxel[0], sym);
	}
	int k = snprintf(out, len,
			 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			 "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\" "
			 "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
			 "xsi:schemaLocation=\"http://www.openmicroscopy.org/Schemas/OME/2016-06 "
			 "http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd\" "
			 "Creator=\"halo " PACKAGE_VERSION "\">"
			 "<Image ID=\"Image:0\"><Pixels ID=\"Pixels:0\" DimensionOrder=\"XYZCT\" "
			 "Type=\"%s\" SizeX=\"%u\" SizeY=\"%u\" SizeZ=\"%lld\" SizeC=\"1\" "
			 "SizeT=\"1\" BigEndian=\"false\"%s>"
			 "<Channel ID=\"Channel:0:0\" SamplesPerPixel=\"1\"/>"
			 "<TiffData IFD=\"0\" PlaneCount=\"%lld\"/></Pixels></Image></OME>",
			 types[info->dtype.kind], w, h, (long long)n, sizes, (long long)n);
	return k > 0 && (size_t)k < len;
}

/* Every page's directory, written before any pixel (their strip arrays
 * deferred, then placeholders): the pages' data then follow one another
 * contiguously, as in ImageJ's own files. ImageJ reads a stack whose
 * description counts its images from the first page's offset, and
 * tifffile does the same when the second directory lies beyond the
 * stack's bytes; with directories between the pages both read garbage. */
static int write_directories(halo_tiff_t *t, halo_error_t *err)
{
	const halo_tiff_info_t *info = &t->info;
	uint32_t w = (uint32_t)info->shape[2], h = (uint32_t)info->shape[1];
	size_t el = halo_dtype_size(info->dtype);
	int64_t n = info->shape[0];
	/* ImageJ reads 8- and 16-bit integers and float32; the other types
	 * get tifffile's JSON description, which halo reads back too, and so
	 * does a 3D volume of one plane, which ImageJ's would make 2D. */
	char desc[2048];
	halo_dtype_kind_t k = info->dtype.kind;
	int ome = info->ome;
	int imagej = !ome && (k == HALO_U1 || k == HALO_U2 || k == HALO_I2 || k == HALO_F4) &&
		     !(info->ndim == 3 && n == 1);
	int moved = info->origin[0] != 0 || info->origin[1] != 0 || info->origin[2] != 0;
	if (ome) {
		if (!ome_xml(info, w, h, n, desc, sizeof desc))
			return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", t->path);
	} else if (imagej) {
		/* ImageJ's origin is in pixels: voxel i lies at (i - origin) * size */
		char at[3][48] = {"", "", ""};
		for (int d = 0; d < 3; d++)
			if (info->origin[d] != 0)
				snprintf(at[d], sizeof at[d], "%corigin=%.17g\n", "zyx"[d],
					 -info->origin[d] / info->voxel[d]);
		snprintf(desc, sizeof desc, "ImageJ=1.11a\nimages=%lld\nslices=%lld\n%s%s%sspacing=%.9g\n"
			 "loop=false\n%s%s%s", (long long)n, (long long)n, info->unit[0] ? "unit=" : "",
			 info->unit, info->unit[0] ? "\n" : "", info->voxel[0], at[2], at[1], at[0]);
	} else {
		/* jansson escapes the unit, which comes from the input. */
		json_t *d = json_pack("{s:[I,I,I], s:[f,f,f], s:s}", "shape", (json_int_t)n,
				      (json_int_t)h, (json_int_t)w, "spacing", info->voxel[0],
				      info->voxel[1], info->voxel[2], "unit", info->unit);
		if (d && info->ndim == 2) /* (Y, X), as tifffile writes a 2D array */
			json_array_remove(json_object_get(d, "shape"), 0);
		if (d && moved)
			json_object_set_new(d, "origin", json_pack("[f,f,f]", info->origin[0],
								   info->origin[1], info->origin[2]));
		size_t len = d ? json_dumpb(d, desc, sizeof desc - 1, 0) : 0;
		json_decref(d);
		if (!len || len > sizeof desc - 1)
			return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", t->path);
		desc[len] = '\0';
	}
	TIFF *tif = t->tif;
	for (int64_t z = 0; z < n; z++) {
		TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
		TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
		TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
		TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, (uint16_t)(el * 8));
		TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, sample_formats[info->dtype.kind]);
		TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
		TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
		TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_NONE);
		TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, strip_rows(info));
		/* In pixels per unit, as ImageJ writes them; also beside
		 * tifffile's JSON description, for readers of neither. */
		if (info->unit[0] || info->voxel[1] != 1 || info->voxel[2] != 1) {
			TIFFSetField(tif, TIFFTAG_XRESOLUTION, (float)(1.0 / info->voxel[2]));
			TIFFSetField(tif, TIFFTAG_YRESOLUTION, (float)(1.0 / info->voxel[1]));
			TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, RESUNIT_NONE);
		}
		if (z == 0)
			TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, desc);
		if (info->ndim == 3) {
			TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
			if (n <= UINT16_MAX) /* its two counts are 16-bit: past that, none */
				TIFFSetField(tif, TIFFTAG_PAGENUMBER, (uint16_t)z, (uint16_t)n);
		}
		if (!TIFFDeferStrileArrayWriting(tif) || !TIFFWriteCheck(tif, 0, "halo") ||
		    !TIFFWriteDirectory(tif))
			return write_fail(t, "cannot write its directories", err);
	}
	/* One walk down the chain, keeping each directory's offset: moving
	 * to page z by number would walk from the first (quadratic). */
	if (!(t->diroff = malloc((size_t)n * sizeof *t->diroff)))
		return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", t->path);
	int ok = TIFFSetDirectory(tif, 0);
	for (int64_t z = 0; z < n && ok; z++) {
		t->diroff[z] = TIFFCurrentDirOffset(tif);
		ok = TIFFForceStrileArrayWriting(tif) && (z + 1 == n || TIFFReadDirectory(tif));
	}
	return ok ? HALO_OK : write_fail(t, "cannot write its directories", err);
}

int halo_tiff_write_pages(halo_tiff_t *t, int64_t z0, int64_t nz, const void *buf,
			  halo_error_t *err)
{
	const halo_tiff_info_t *info = &t->info;
	uint32_t h = (uint32_t)info->shape[1], rows = strip_rows(info);
	size_t row = (size_t)info->shape[2] * halo_dtype_size(info->dtype);
	if (z0 != t->page)
		return halo_error_set(err, HALO_EINVAL, "%s: pages written out of order (%lld, expected %lld)",
				      t->path, (long long)z0, (long long)t->page);
	for (int64_t z = z0; z < z0 + nz; z++) {
		TIFF *tif = t->tif;
		if (!TIFFSetSubDirectory(tif, t->diroff[z]))
			return write_fail(t, "write failed", err);
		const unsigned char *page = (const unsigned char *)buf + (size_t)(z - z0) * h * row;
		for (uint32_t y = 0; y < h; y += rows) {
			uint32_t n = h - y < rows ? h - y : rows;
			if (TIFFWriteEncodedStrip(tif, y / rows, (void *)(page + (size_t)y * row),
						  (tmsize_t)(n * row)) < 0)
				return write_fail(t, "write failed", err);
		}
		/* Only the strip arrays changed: rewritten in place. */
		if (!TIFFFlush(tif))
			return write_fail(t, "write failed", err);
		t->page++;
	}
	return HALO_OK;
}

int halo_tiff_create(const char *path, const halo_tiff_info_t *info, halo_tiff_t **out,
		     halo_error_t *err)
{
	*out = NULL;
	halo_dtype_kind_t k = info->dtype.kind;
	if (k == HALO_B1)
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: halo writes no bool TIFF (tifffile "
				      "packs them in bits); write a Zarr, or ask for uint8 (--dtype uint8, or a "
				      "pipeline step's \"dtype\": \"uint8\")",
				      path);
	if (info->ome && (k == HALO_U8 || k == HALO_I8 || k == HALO_F2))
		return halo_error_set(err, HALO_EUNSUPPORTED,
				      "%s: OME-TIFF has no %s pixel type; write a plain .tif, a "
				      "Zarr, or ask for another --dtype",
				      path, halo_dtype_name(info->dtype));
	halo_tiff_t *t = calloc(1, sizeof *t);
	if (!t || !(t->path = strdup(path))) {
		free(t);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&t->lock, NULL);
	t->info = *info;
	t->writing = 1;
	uint64_t pages = (uint64_t)info->shape[0], rows = (uint64_t)info->shape[1];
	uint64_t bytes = pages * rows * (uint64_t)info->shape[2] * halo_dtype_size(info->dtype);
	/* Classic TIFF offsets are 32-bit. Each page adds its directory
	 * (about 160 bytes measured; 1 KiB counted) and a strip's offset and
	 * size (8 bytes, a strip a row at worst): a million small pages add
	 * a few hundred MB where the pixels stayed under 4 GiB, and libtiff
	 * failed at the last pages. 16 MiB more for the descriptions. */
	bytes += pages * (1024 + 8 * rows) + (UINT64_C(16) << 20);
	int big = bytes > (UINT64_C(4) << 30);
	t->tif = open_with_handlers(t, big ? "w8" : "w");
	int rc = t->tif ? write_directories(t, err) : tiff_fail(t, HALO_EIO, "cannot create", err);
	if (rc) {
		halo_tiff_close(t, NULL);
		return rc;
	}
	*out = t;
	return HALO_OK;
}


int halo_tiff_close(halo_tiff_t *t, halo_error_t *err)
{
	if (!t)
		return HALO_OK;
	int rc = HALO_OK;
	if (t->tif) {
		if (t->writing && !TIFFFlush(t->tif))
			rc = write_fail(t, "flush failed", err);
		TIFFClose(t->tif);
	}
	pthread_mutex_destroy(&t->lock);
	free(t->whole);
	free(t->raw);
	free(t->diroff);
	free(t->tiffdata);
	free(t->map);
	free(t->path);
	free(t);
	return rc;
}
