/* TIFF's differencing predictors, undone where libtiff does not undo them:
 * libtiff applies the Predictor tag only inside its LZW, deflate, LZMA and
 * zstd decoders, while tifffile (and the TIFF specification) apply it to
 * uncompressed and PackBits strips as well. */
#ifndef HALO_IO_PREDICTOR_H
#define HALO_IO_PREDICTOR_H

#include <stddef.h>

/* Whether halo can undo Predictor tag value `predictor` on samples of
 * `bits` bits, float or not: 2 (horizontal) and DNG's 34892/34893 (every
 * second or fourth sample) on 8- to 64-bit samples, 3 (floating point) and
 * 34894/34895 on 16- to 64-bit floats. 1 (none) is supported. */
int halo_predictor_supported(unsigned predictor, unsigned bits, int is_float);

/* Whether predictor differences bytes of floats (3, 34894, 34895). */
int halo_predictor_floating(unsigned predictor);

/* Undoes predictor on `rows` rows of `width` samples of `el` bytes each,
 * in place. Horizontal differences are native-order integers (libtiff has
 * already swapped a foreign file's samples); a floating-point row is its
 * samples' bytes as the file stores them (most significant byte plane
 * first, whatever the file's byte order) and comes out native. scratch
 * holds one row (width * el bytes). */
void halo_predictor_undo(unsigned predictor, unsigned char *data, size_t rows, size_t width,
			 size_t el, unsigned char *scratch);

#endif
