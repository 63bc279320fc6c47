/* Zarr metadata's JSON as python writes it: json.dumps emits NaN,
 * Infinity and -Infinity as bare tokens (python zarr puts them in .zattrs),
 * which JSON and jansson refuse. */
#ifndef HALO_IO_JSON_H
#define HALO_IO_JSON_H

#include <jansson.h>
#include <stddef.h>

/* Parses text of len bytes like json_loadb, with each bare NaN, Infinity
 * or -Infinity read as a marked string that halo_json_dumps writes back as
 * the token (a number is expected nowhere such a value is valid). */
json_t *halo_json_loadb(const char *text, size_t len, json_error_t *je);

/* json_dumps(j, flags), with the marked strings as bare tokens again. */
char *halo_json_dumps(const json_t *j, size_t flags);

#endif
