/* TIFF predictors undone in place (see predictor.h). The differences wrap
 * modulo the sample's width, so the sums are done in unsigned types. */
#include "io/predictor.h"

#include <stdint.h>
#include <string.h>

enum { HORIZONTAL = 2, FLOATING = 3, HORIZONTAL_X2 = 34892, HORIZONTAL_X4 = 34893,
       FLOATING_X2 = 34894, FLOATING_X4 = 34895 };

/* The sample distance each difference spans (0: not a predictor). */
static size_t distance(unsigned predictor)
{
	switch (predictor) {
	case HORIZONTAL: case FLOATING: return 1;
	case HORIZONTAL_X2: case FLOATING_X2: return 2;
	case HORIZONTAL_X4: case FLOATING_X4: return 4;
	default: return 0;
	}
}

int halo_predictor_floating(unsigned predictor)
{
	return predictor == FLOATING || predictor == FLOATING_X2 || predictor == FLOATING_X4;
}

int halo_predictor_supported(unsigned predictor, unsigned bits, int is_float)
{
	if (predictor == 1)
		return 1;
	if (!distance(predictor))
		return 0;
	if (halo_predictor_floating(predictor))
		return is_float && (bits == 16 || bits == 32 || bits == 64);
	return bits == 8 || bits == 16 || bits == 32 || bits == 64;
}

#define ACCUMULATE(type)                                                      \
	do {                                                                  \
		type *s = (type *)(void *)row;                                \
		for (size_t i = d; i < width; i++)                            \
			s[i] = (type)(s[i] + s[i - d]);                       \
	} while (0)

void halo_predictor_undo(unsigned predictor, unsigned char *data, size_t rows, size_t width,
			 size_t el, unsigned char *scratch)
{
	size_t d = distance(predictor);
	if (!d)
		return;
	const uint16_t probe = 1;
	int little = *(const unsigned char *)&probe == 1;
	for (size_t r = 0; r < rows; r++) {
		unsigned char *row = data + r * width * el;
		if (!halo_predictor_floating(predictor)) {
			switch (el) {
			case 1: ACCUMULATE(uint8_t); break;
			case 2: ACCUMULATE(uint16_t); break;
			case 4: ACCUMULATE(uint32_t); break;
			case 8: ACCUMULATE(uint64_t); break;
			}
			continue;
		}
		/* The row's bytes were differenced as one sequence, d samples
		 * apart, after being split into byte planes, most significant
		 * first. */
		size_t n = width * el;
		for (size_t i = d; i < n; i++)
			row[i] = (unsigned char)(row[i] + row[i - d]);
		for (size_t b = 0; b < el; b++) {
			const unsigned char *plane = row + b * width;
			size_t at = little ? el - 1 - b : b;
			for (size_t i = 0; i < width; i++)
				scratch[i * el + at] = plane[i];
		}
		memcpy(row, scratch, n);
	}
}
