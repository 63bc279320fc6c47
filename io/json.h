/* Zarr metadata's JSON as python writes it: json.dumps emits NaN,
 * Infinity and -Infinity as bare tokens (python zarr puts them in .zattrs),
 * which JSON and jansson refuse, and numbers of any size, which jansson
 * refuses beyond int64 and double. */
#ifndef HALO_IO_JSON_H
#define HALO_IO_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "halo.h"

/* Parses text of len bytes like json_loadb with JSON_DECODE_ANY (any
 * value at the top; callers check for an object) and JSON_ALLOW_NUL (a
 * NUL in a string, as python allows), with each bare NaN, Infinity or
 * -Infinity, and each number beyond int64 or double, read as a marked string:
 * halo_json_dumps writes it back as the token, and
 * halo_json_marked_number reads it as a number. */
json_t *halo_json_loadb(const char *text, size_t len, json_error_t *je);

/* json_dumps(j, flags), with the marked strings as bare tokens again. */
char *halo_json_dumps(const json_t *j, size_t flags);

/* Whether v is such a marked token; *out then holds its value as python
 * reads it (nan, inf, 1e400 as inf, an integer beyond int64 as the
 * nearest double). */
int halo_json_marked_number(const json_t *v, double *out);

/* The token of such a marked string ("NaN", "18446744073709551615"), or
 * NULL; and a marked string of a token, which halo_json_dumps writes
 * bare. */
const char *halo_json_marked_token(const json_t *v);
json_t *halo_json_marked(const char *token);

/* A deep copy of j for JSON that must be strict (Zarr v3's zarr.json):
 * its marked NaN, Infinity and -Infinity as the strings v3 gives a fill
 * value, "NaN" and so on (other marked numbers are valid JSON). */
json_t *halo_json_strict_copy(const json_t *j);

/* Reads and parses file as halo_json_loadb does into *out; a missing
 * file gives HALO_ENOENT and no message, so callers can probe for
 * .zarray / zarr.json; malformed JSON gives HALO_EFORMAT naming the file,
 * the line and the fault. */
int halo_json_load_file(const char *file, json_t **out, halo_error_t *err);

#endif
