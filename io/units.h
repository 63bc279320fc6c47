/* Length units of voxel sizes: the spellings TIFF, ImageJ and OME-XML
 * files use, mapped to OME-NGFF's names, and one unit for sizes given per
 * axis. */
#ifndef HALO_IO_UNITS_H
#define HALO_IO_UNITS_H

#include <stddef.h>

/* Maps the length units of TIFF/ImageJ/OME-XML files ("micron", "um",
 * "µm", "cm") to OME-NGFF's names ("micrometer", "centimeter"); anything
 * that is not a length NGFF knows ("pixel") becomes "". */
void halo_unit_normalise(const char *in, char *out, size_t len);

/* One unit for a voxel size given per axis (z, y, x) in units of any
 * spelling: the x axis's (NGFF's name, or none), the other axes' sizes
 * converted to it when theirs differ and both are lengths (a NULL unit:
 * that axis's size was not given, and stays as it is). A z step in
 * micrometres beside y and x in nanometres was taken as nanometres (1000x
 * too small). origin, when not NULL, is a position in the same units,
 * converted alike. */
void halo_units_common(const char *const units[3], double voxel[3], double origin[3], char *out,
		       size_t len);

/* *v in NGFF unit `from`, converted to unit `to`; -1 (and *v as it was)
 * unless both are lengths. */
int halo_unit_convert(double *v, const char *from, const char *to);

#endif
