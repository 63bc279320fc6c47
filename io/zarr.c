/* Zarr chunk I/O (see zarr.h): chunk keys, whole-chunk reads and writes
 * through io/codec.h, array metadata files. */
#include "config.h"
#include "io/zarr_private.h"
#include "io/json.h"
#include "io/fs.h"
#include "io/scratch.h"

#include <endian.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void halo_zarr_meta_init(halo_zarr_meta_t *m, int ndim, const int64_t *shape,
			 const int64_t *chunks, halo_dtype_t dtype)
{
	memset(m, 0, sizeof *m);
	m->zarr_format = 2;
	m->ndim = ndim;
	for (int d = 0; d < ndim; d++) {
		m->shape[d] = shape[d];
		m->chunks[d] = chunks[d];
	}
	m->dtype = dtype;
	for (int d = 0; d < ndim; d++)
		m->order[d] = d;
	m->codec = HALO_CODEC_DEFAULT;
	m->separator = '/';
}

int halo_zarr_chunks_fit(int64_t chunks[3], size_t elsize)
{
	int changed = 0;
	for (;;) {
		double bytes = (double)elsize;
		int big = 0;
		for (int d = 0; d < 3; d++) {
			bytes *= (double)chunks[d];
			big = chunks[d] > chunks[big] ? d : big;
		}
		if (bytes <= (double)HALO_ZARR_MAX_CHUNK_BYTES || chunks[big] <= 1)
			return changed;
		chunks[big] = (chunks[big] + 1) / 2;
		changed = 1;
	}
}

static size_t meta_chunk_bytes(const halo_zarr_meta_t *m)
{
	size_t n = halo_dtype_size(m->dtype);
	for (int d = 0; d < m->ndim; d++)
		n *= (size_t)m->chunks[d];
	return n;
}

static _Atomic uint64_t next_serial = 1; /* see index_cache */

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Refuses attributes that are not a JSON object (and drops them). */
static int not_object(json_t *attrs, const char *file, const char *what, halo_error_t *err)
{
	json_decref(attrs);
	return halo_error_set(err, HALO_EFORMAT, "%s: %snot a JSON object", file, what);
}

int halo_zarr_open(const char *path, halo_zarr_t **out, halo_error_t *err)
{
	*out = NULL;
	if (!halo_fs_exists(path))
		return halo_error_set(err, HALO_ENOENT, "%s: no such file or directory", path);
	if (!halo_fs_is_dir(path))
		return halo_error_set(err, HALO_EFORMAT, "%s: not a Zarr array (not a directory)", path);
	halo_zarr_t *z = calloc(1, sizeof *z);
	if (!z || !(z->path = strdup(path))) {
		free(z);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	char *file = join(path, ".zarray");
	json_t *root = NULL;
	int rc = file ? halo_json_load_file(file, &root, err) : HALO_ENOMEM;
	if (rc == HALO_OK) {
		rc = halo__zarr_parse_v2(root, file, &z->meta, err);
		json_decref(root);
		if (!rc) {
			free(file);
			file = join(path, ".zattrs");
			json_t *attrs = NULL;
			int arc = file ? halo_json_load_file(file, &attrs, err) : HALO_ENOMEM;
			if (arc == HALO_OK && json_is_object(attrs))
				z->meta.attrs = attrs;
			else if (arc == HALO_OK)
				rc = not_object(attrs, file, "", err);
			else if (arc != HALO_ENOENT)
				rc = arc;
		}
	} else if (rc == HALO_ENOENT) {
		free(file);
		file = join(path, "zarr.json");
		rc = file ? halo_json_load_file(file, &root, err) : HALO_ENOMEM;
		if (rc == HALO_OK) {
			rc = halo__zarr_parse_v3(root, file, &z->meta, err);
			json_t *attrs = json_object_get(root, "attributes");
			if (!rc && json_is_object(attrs))
				z->meta.attrs = json_incref(attrs);
			else if (!rc && attrs)
				rc = not_object(json_incref(attrs), file, "field 'attributes' is ", err);
			json_decref(root);
		} else if (rc == HALO_ENOENT) {
			rc = halo_error_set(err, HALO_EFORMAT,
					    "%s: not a Zarr array (no .zarray or zarr.json)", path);
		}
	}
	free(file);
	if (rc) {
		halo_zarr_close(z);
		return rc == HALO_ENOMEM ? halo_error_set(err, rc, "out of memory") : rc;
	}
	z->chunk_bytes = meta_chunk_bytes(&z->meta);
	z->serial = next_serial++;
	*out = z;
	return HALO_OK;
}

const halo_zarr_meta_t *halo_zarr_meta(const halo_zarr_t *z)
{
	return &z->meta;
}

const char *halo_zarr_path(const halo_zarr_t *z)
{
	return z->path;
}

size_t halo_zarr_chunk_bytes(const halo_zarr_t *z)
{
	return z->chunk_bytes;
}

/* "<path>/<key>" for chunk idx, as zarr names it: "0.1.2" or "0/1/2" in
 * v2, "c/0/1/2" with v3's default encoding. An error when it does not fit
 * in len: a cut name would read or write another file. */
static int chunk_file(const halo_zarr_t *z, const int64_t *idx, char *out, size_t len,
		      halo_error_t *err)
{
	const halo_zarr_meta_t *m = &z->meta;
	int v3_prefix = m->zarr_format == 3 && m->v3_default_keys;
	size_t n = (size_t)snprintf(out, len, "%s/%s", z->path, v3_prefix ? "c" : "");
	for (int d = 0; d < m->ndim && n < len; d++) {
		if ((d > 0 || v3_prefix) && n + 1 < len)
			out[n++] = m->separator;
		n += (size_t)snprintf(out + n, len - n, "%lld", (long long)idx[d]);
	}
	return n < len ? HALO_OK : halo_error_set(err, HALO_EINVAL, "%s: path too long for its "
						  "chunk files", z->path);
}

/* A shard's index as this thread read it last: the chunks of one shard
 * are mostly read one after another, and its index is read once for
 * them. serial tells the arrays apart (a closed array's address may be
 * reused). */
static _Thread_local struct {
	uint64_t serial;
	int64_t shard;
	size_t size;
	const uint64_t *entries;
} index_cache;

/* The bytes of chunk idx of a sharded array, in the thread's scratch, or
 * *empty where its shard's index has none. */
static int read_inner(const halo_zarr_t *z, const int64_t *idx, const char *file,
		      const char *where, void **data, size_t *len, int *empty, halo_error_t *err)
{
	const halo_zarr_meta_t *m = &z->meta;
	int64_t n = 1, at = 0, shard = 0, nshards = 1;
	for (int d = 0; d < m->ndim; d++) {
		int64_t per = m->shard.shape[d] / m->chunks[d];
		at = at * per + idx[d] % per;
		n *= per;
		shard += idx[d] / per * nshards; /* any one number per shard will do */
		nshards *= (m->shape[d] + m->shard.shape[d] - 1) / m->shard.shape[d];
	}
	int fd;
	size_t size;
	int rc = halo_fs_open_regular(file, &fd, &size, err);
	if (rc)
		return rc;
	size_t ibytes = (size_t)n * 16, itotal = ibytes + (m->shard.index_crc32c ? 4 : 0);
	if (index_cache.serial != z->serial || index_cache.shard != shard || index_cache.size != size) {
		index_cache.serial = 0;
		uint64_t *e = halo_scratch(HALO_SCRATCH_INDEX, itotal);
		size_t ilen = itotal;
		if (!e)
			rc = halo_error_set(err, HALO_ENOMEM, "%s: out of memory", file);
		else if (size < itotal)
			rc = halo_error_set(err, HALO_EFORMAT, "%s: %zu bytes, too short for the shard's "
					    "index of %zu", file, size, itotal);
		else if (halo_fs_pread_all(fd, e, itotal, m->shard.index_at_start ? 0
						 : (off_t)(size - itotal)) != (ssize_t)itotal)
			rc = halo_error_set(err, HALO_EIO, "%s: %s", file, strerror(errno));
		else if (m->shard.index_crc32c)
			rc = halo_codec_crc32c_check(e, &ilen, file, err);
		if (rc) {
			close(fd);
			return rc;
		}
		if (m->shard.index_big_endian)
			halo_dtype_byteswap(e, 8, (size_t)n * 2);
		index_cache.serial = z->serial;
		index_cache.shard = shard;
		index_cache.size = size;
		index_cache.entries = e;
	}
	uint64_t off = index_cache.entries[2 * at], nb = index_cache.entries[2 * at + 1];
	size_t max = halo_codec_bound(&m->codec, z->chunk_bytes) + (m->crc32c ? 4 : 0);
	if (off == UINT64_MAX && nb == UINT64_MAX) {
		*empty = 1;
	} else if (off > size || nb > size - off || nb > max ||
		   /* where the index lies, there is no chunk */
		   (nb && (m->shard.index_at_start ? off < itotal : off + nb > size - itotal))) {
		rc = halo_error_set(err, HALO_EFORMAT, "%s: the shard's index puts it at byte %llu, "
				    "%llu bytes long, in a file of %zu%s", where, (unsigned long long)off,
				    (unsigned long long)nb, size,
				    off <= size && nb <= size - off && nb <= max ? " whose index is there"
										  : "");
	} else if (!(*data = halo_scratch(HALO_SCRATCH_FILE, nb ? nb : 1))) {
		rc = halo_error_set(err, HALO_ENOMEM, "%s: out of memory", where);
	} else if (halo_fs_pread_all(fd, *data, nb, (off_t)off) != (ssize_t)nb) {
		rc = halo_error_set(err, HALO_EIO, "%s: %s", where, errno ? strerror(errno)
									   : "file shrank while reading");
	}
	*len = nb;
	close(fd);
	return rc;
}

/* Puts a chunk whose axes are stored in m->order back in C order. */
static void unpermute(const halo_zarr_meta_t *m, const unsigned char *src, unsigned char *dst,
		      size_t el)
{
	int n = m->ndim;
	int64_t stride[HALO_MAXDIM], dim[HALO_MAXDIM], step[HALO_MAXDIM], at[HALO_MAXDIM] = {0};
	int64_t total = 1;
	for (int d = n - 1; d >= 0; d--) {
		stride[d] = total;
		total *= m->chunks[d];
	}
	for (int i = 0; i < n; i++) {
		dim[i] = m->chunks[m->order[i]];
		step[i] = stride[m->order[i]];
	}
	int64_t row = dim[n - 1], s = step[n - 1], off = 0;
	for (int64_t r = 0; r < total / row; r++, src += (size_t)row * el) {
#define ROW(T) \
	for (int64_t k = 0; k < row; k++) \
		((T *)dst)[off + k * s] = ((const T *)src)[k]
		switch (el) {
		case 1: ROW(uint8_t); break;
		case 2: ROW(uint16_t); break;
		case 4: ROW(uint32_t); break;
		default: ROW(uint64_t); break;
		}
#undef ROW
		for (int i = n - 2; i >= 0; i--) {
			off += step[i];
			if (++at[i] < dim[i])
				break;
			off -= step[i] * dim[i];
			at[i] = 0;
		}
	}
}

int halo_zarr_read_chunk(const halo_zarr_t *z, const int64_t *idx, void *buf,
			 halo_error_t *err)
{
	const halo_zarr_meta_t *m = &z->meta;
	char file[4096], label[4400];
	int64_t key[HALO_MAXDIM]; /* the file's: the chunk's, or its shard's */
	for (int d = 0; d < m->ndim; d++)
		key[d] = m->shard.on ? idx[d] / (m->shard.shape[d] / m->chunks[d]) : idx[d];
	int rc = chunk_file(z, key, file, sizeof file, err);
	if (rc)
		return rc;
	/* what errors name: the file, and in a shard the chunk */
	const char *where = file;
	if (m->shard.on) {
		size_t n = (size_t)snprintf(label, sizeof label, "%s", file);
		for (int d = 0; d < m->ndim && n < sizeof label; d++)
			n += (size_t)snprintf(label + n, sizeof label - n, "%s%lld", d ? "," : " (chunk ",
					      (long long)idx[d]);
		snprintf(label + n, n < sizeof label ? sizeof label - n : 0, ")");
		where = label;
	}
	size_t elsize = halo_dtype_size(m->dtype);
	size_t nel = z->chunk_bytes / elsize;
	/* Raw chunks go straight into buf: no copy, and no scratch buffer
	 * of their size in each reading thread. */
	int direct = m->codec.id == HALO_CODEC_NONE && !m->crc32c && !m->shard.on;
	void *out = m->transposed ? halo_scratch(HALO_SCRATCH_ORDER, z->chunk_bytes) : buf;
	if (!out)
		return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", file);
	void *data = NULL;
	size_t len = 0;
	int empty = 0;
	halo_error_t e2 = {0};
	if (m->shard.on)
		rc = read_inner(z, idx, file, where, &data, &len, &empty, &e2);
	else if (direct)
		rc = halo_fs_read_into(file, out, z->chunk_bytes, &len, &e2);
	else
		rc = halo_fs_read_scratch(file, HALO_SCRATCH_FILE, halo_codec_bound(&m->codec,
					  z->chunk_bytes) + (m->crc32c ? 4 : 0), &data, &len, &e2);
	if (rc == HALO_ENOENT) {
		/* A missing chunk is fill_value, unless the array itself went
		 * (removed while being read): that is no volume of fill. */
		char meta[4096], meta3[4096];
		snprintf(meta, sizeof meta, "%s/.zarray", z->path);
		snprintf(meta3, sizeof meta3, "%s/zarr.json", z->path);
		if (!halo_fs_exists(meta) && !halo_fs_exists(meta3))
			return halo_error_set(err, HALO_ENOENT, "%s: the array was removed while being "
					      "read", z->path);
		empty = 1;
	} else if (rc) {
		*err = e2;
		return rc;
	}
	if (empty) {
		halo_fill_store(buf, m->dtype.kind, m->fill, nel);
		return HALO_OK;
	}
	if (m->crc32c && (rc = halo_codec_crc32c_check(data, &len, where, err)))
		return rc;
	if (m->codec.id != HALO_CODEC_NONE) {
		if ((rc = halo_codec_decode(&m->codec, data, len, out, z->chunk_bytes, where, err)))
			return rc;
	} else if (len != z->chunk_bytes) {
		return halo_error_set(err, HALO_EFORMAT, "%s: chunk holds %zu bytes, expected %zu",
				      where, len, z->chunk_bytes);
	} else if (!direct) {
		memcpy(out, data, len);
	}
	if (m->dtype.big_endian)
		halo_dtype_byteswap(out, elsize, nel);
	if (m->transposed)
		unpermute(m, out, buf, elsize);
	return HALO_OK;
}

int halo_zarr_attach(const char *path, const halo_zarr_meta_t *meta, halo_zarr_t **out,
		     halo_error_t *err)
{
	*out = NULL;
	if (meta->zarr_format == 3 && !halo_zarr_v3_codec_ok(&meta->codec))
		return halo_error_set(err, HALO_EUNSUPPORTED, "%s: %s has no Zarr v3 codec (blosc, "
				      "gzip, zstd or none)", path, halo_codec_id_name(meta->codec.id));
	halo_zarr_t *z = calloc(1, sizeof *z);
	if (!z || !(z->path = strdup(path))) {
		free(z);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	z->meta = *meta;
	z->meta.attrs = meta->attrs ? json_deep_copy(meta->attrs) : NULL;
	int rc = halo__zarr_check_sizes(&z->meta, path, err);
	if (rc) {
		halo_zarr_close(z);
		return rc;
	}
	z->chunk_bytes = meta_chunk_bytes(meta);
	z->writable = 1;
	*out = z;
	return HALO_OK;
}

int halo_zarr_create(const char *path, const halo_zarr_meta_t *meta, halo_zarr_t **out,
		     halo_error_t *err)
{
	halo_zarr_t *z;
	int rc = halo_zarr_attach(path, meta, &z, err);
	if (rc)
		return rc;
	rc = halo_fs_mkdirs(path, err);
	int v3 = z->meta.zarr_format == 3;
	json_t *doc = rc ? NULL : v3 ? halo__zarr_v3_json(&z->meta) : halo__zarr_v2_json(&z->meta);
	char *file = rc ? NULL : join(path, v3 ? "zarr.json" : ".zarray");
	char *text = doc ? halo_json_dumps(doc, JSON_INDENT(4) | JSON_SORT_KEYS) : NULL;
	if (!rc && (!doc || !file || !text))
		rc = halo_error_set(err, HALO_ENOMEM, "out of memory");
	if (!rc)
		rc = halo_fs_write(file, text, strlen(text), err);
	free(text);
	free(file);
	json_decref(doc);
	if (!rc && z->meta.attrs && !v3) {
		file = join(path, ".zattrs");
		/* ASCII, as python zarr writes it: zarr 2.13 reads .zattrs so */
		text = halo_json_dumps(z->meta.attrs, JSON_INDENT(4) | JSON_SORT_KEYS |
					JSON_ENSURE_ASCII);
		rc = file && text ? halo_fs_write(file, text, strlen(text), err)
				  : halo_error_set(err, HALO_ENOMEM, "out of memory");
		free(text);
		free(file);
	}
	if (rc) {
		halo_zarr_close(z);
		return rc;
	}
	*out = z;
	return HALO_OK;
}

/* Whether a chunk of n elements holds the fill value alone, and is not
 * stored: readers give the fill for a missing chunk (zarr-python 3's
 * write_empty_chunks=False; in a shard, the chunk is empty in its index).
 * halo writes no null fill_value, which would leave them undefined. */
static int fill_only(const halo_zarr_meta_t *m, const void *buf, size_t n)
{
	return halo_fill_only(buf, m->dtype.kind, m->fill, n);
}

/* Shard idx from buf, which holds it cut to the array (min(shard,
 * shape) on each axis, as the volume's chunks are): its chunks in C order,
 * each encoded (past buf, the fill value), then the index of where they
 * are (little-endian offset and size pairs, a chunk wholly beyond the
 * array's edge marked empty) and its CRC32C, in one file. The chunks are
 * written as they are encoded: a shard's encoded bytes at once (up to
 * 2 GiB per worker) would lie outside --memory. */
static int write_shard(const halo_zarr_t *z, const int64_t *idx, const char *file,
		       const void *buf, halo_error_t *err)
{
	const halo_zarr_meta_t *m = &z->meta;
	int nd = m->ndim;
	size_t el = halo_dtype_size(m->dtype), bound = halo_codec_bound(&m->codec, z->chunk_bytes);
	int64_t per[HALO_MAXDIM], n = 1, at[HALO_MAXDIM] = {0}, dim[HALO_MAXDIM];
	int64_t stride[HALO_MAXDIM], s = 1;
	for (int d = nd - 1; d >= 0; d--) {
		n *= per[d] = m->shard.shape[d] / m->chunks[d];
		dim[d] = m->shard.shape[d] < m->shape[d] ? m->shard.shape[d] : m->shape[d];
		stride[d] = s;
		s *= dim[d];
	}
	/* the thread's buffers: fresh pages per chunk cost more in page
	 * faults than its compression */
	int raw = m->codec.id == HALO_CODEC_NONE;
	unsigned char *out = raw ? NULL : halo_scratch(HALO_SCRATCH_CODEC, bound);
	unsigned char *chunk = halo_scratch(HALO_SCRATCH_SHARD, z->chunk_bytes);
	uint64_t *index = (uint64_t *)malloc((size_t)n * 16 + 4), len = 0; /* and the CRC */
	int fd = -1; /* opened at the first chunk stored: a shard of fill has no file */
	int rc = (out || raw) && chunk && index ? HALO_OK
				       : halo_error_set(err, HALO_ENOMEM, "%s: out of memory", file);
	int64_t width = m->chunks[nd - 1], rows = (int64_t)(z->chunk_bytes / el) / width;
	for (int64_t c = 0; c < n && !rc; c++) {
		int inside = 1;
		for (int d = 0; d < nd; d++)
			inside &= (idx[d] * per[d] + at[d]) * m->chunks[d] < m->shape[d];
		index[2 * c] = index[2 * c + 1] = UINT64_MAX;
		if (inside) {
			/* the chunk's rows from buf, the fill past it */
			int64_t r[HALO_MAXDIM] = {0}, x0 = at[nd - 1] * width;
			int64_t have = dim[nd - 1] - x0 < width ? dim[nd - 1] - x0 : width;
			for (int64_t k = 0; k < rows; k++) {
				unsigned char *dst = chunk + (size_t)(k * width) * el;
				int64_t off = x0, got = have;
				for (int d = 0; d < nd - 1; d++) {
					int64_t y = at[d] * m->chunks[d] + r[d];
					got = y < dim[d] ? got : 0;
					off += y * stride[d];
				}
				memcpy(dst, (const unsigned char *)buf + (size_t)(got ? off : 0) * el,
				       (size_t)got * el);
				halo_fill_store(dst + (size_t)got * el, m->dtype.kind, m->fill,
						(size_t)(width - got));
				for (int d = nd - 2; d >= 0 && ++r[d] == m->chunks[d]; d--)
					r[d] = 0;
			}
			size_t nb = z->chunk_bytes;
			const unsigned char *bytes = chunk;
			if (fill_only(m, chunk, nb / el))
				nb = 0;
			else if (!raw) {
				rc = halo_codec_encode(&m->codec, el, chunk, z->chunk_bytes, out, &nb, file,
						       err);
				bytes = out;
			}
			if (!rc && nb && fd < 0)
				rc = halo_fs_create(file, &fd, err);
			if (!rc && nb && !(rc = halo_fs_write_fd(fd, file, bytes, nb, err))) {
				index[2 * c] = len;
				index[2 * c + 1] = nb;
				len += nb;
			}
		}
		for (int d = nd - 1; d >= 0 && ++at[d] == per[d]; d--)
			at[d] = 0;
	}
	if (!rc && fd >= 0) {
		for (int64_t i = 0; i < 2 * n; i++)
			index[i] = htole64(index[i]);
		unsigned char *tail = (unsigned char *)(index + 2 * n);
		uint32_t crc = halo_codec_crc32c(index, (size_t)n * 16);
		for (int b = 0; b < 4; b++)
			tail[b] = (unsigned char)(crc >> (8 * b));
		rc = halo_fs_write_fd(fd, file, index, (size_t)n * 16 + 4, err);
	}
	if (fd >= 0)
		rc = halo_fs_close(fd, file, rc, err);
	free(index);
	return rc;
}

int halo_zarr_write_chunk(const halo_zarr_t *z, const int64_t *idx, const void *buf,
			  halo_error_t *err)
{
	const halo_zarr_meta_t *m = &z->meta;
	size_t elsize = halo_dtype_size(m->dtype);
	if (!m->shard.on && fill_only(m, buf, z->chunk_bytes / elsize))
		return HALO_OK;
	char file[4096];
	int rc = chunk_file(z, idx, file, sizeof file, err);
	if (rc)
		return rc;
	void *swapped = NULL;
	if (m->dtype.big_endian) {
		swapped = malloc(z->chunk_bytes);
		if (!swapped)
			return halo_error_set(err, HALO_ENOMEM, "%s: out of memory", file);
		memcpy(swapped, buf, z->chunk_bytes);
		halo_dtype_byteswap(swapped, elsize, z->chunk_bytes / elsize);
		buf = swapped;
	}
	rc = HALO_OK;
	if (m->separator == '/' && m->ndim > 1) {
		char dir[4096];
		snprintf(dir, sizeof dir, "%s", file);
		*strrchr(dir, '/') = '\0';
		/* One stat for the chunks after a folder's first, not a mkdir
		 * per level of the path. */
		rc = halo_fs_is_dir(dir) ? HALO_OK : halo_fs_mkdirs(dir, err);
	}
	if (!rc && m->shard.on) {
		rc = write_shard(z, idx, file, buf, err);
	} else if (!rc && m->codec.id == HALO_CODEC_NONE) {
		rc = halo_fs_write(file, buf, z->chunk_bytes, err);
	} else if (!rc) {
		void *dst = halo_scratch(HALO_SCRATCH_CODEC, halo_codec_bound(&m->codec, z->chunk_bytes));
		size_t n = 0;
		rc = !dst ? halo_error_set(err, HALO_ENOMEM, "%s: out of memory", file)
			  : halo_codec_encode(&m->codec, elsize, buf, z->chunk_bytes, dst, &n, file, err);
		if (!rc)
			rc = halo_fs_write(file, dst, n, err);
	}
	free(swapped);
	return rc;
}

void halo_zarr_close(halo_zarr_t *z)
{
	if (!z)
		return;
	json_decref(z->meta.attrs);
	free(z->path);
	free(z);
}
