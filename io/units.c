/* Length units (see units.h). */
#include "config.h"
#include "io/units.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OME-NGFF's length units (UDUNITS-2 names), each in metres as m x 10^e
 * (m is 1 for the metric ones, so that converting between them multiplies
 * by an exact power of ten: 0.5 um is 500 nm, not 499.99999999999994). */
static const struct {
	const char *name;
	double m;
	int e;
} lengths[] = {
	{"angstrom", 1, -10}, {"attometer", 1, -18}, {"centimeter", 1, -2},
	{"decimeter", 1, -1}, {"exameter", 1, 18}, {"femtometer", 1, -15},
	{"foot", 0.3048, 0}, {"gigameter", 1, 9}, {"hectometer", 1, 2}, {"inch", 0.0254, 0},
	{"kilometer", 1, 3}, {"megameter", 1, 6}, {"meter", 1, 0}, {"micrometer", 1, -6},
	{"mile", 1609.344, 0}, {"millimeter", 1, -3}, {"nanometer", 1, -9},
	{"parsec", 3.0856775814913673e16, 0}, {"petameter", 1, 15}, {"picometer", 1, -12},
	{"terameter", 1, 12}, {"yard", 0.9144, 0}, {"yoctometer", 1, -24},
	{"yottameter", 1, 24}, {"zeptometer", 1, -21}, {"zettameter", 1, 21}};

static int unit_index(const char *name)
{
	for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++)
		if (strcmp(name, lengths[i].name) == 0)
			return (int)i;
	return -1;
}

void halo_unit_normalise(const char *in, char *out, size_t len)
{
	/* The spellings ImageJ and OME-XML use for the common ones. */
	static const char *const alias[][2] = {
		{"micron", "micrometer"}, {"microns", "micrometer"}, {"um", "micrometer"},
		{"\xc2\xb5m", "micrometer"}, {"\xce\xbcm", "micrometer"}, {"\\u00B5m", "micrometer"},
		{"\xb5m", "micrometer"}, {"\xc5", "angstrom"}, /* Latin-1, as old ImageJ files */
		{"micrometre", "micrometer"}, {"nm", "nanometer"}, {"mm", "millimeter"},
		{"cm", "centimeter"}, {"m", "meter"}, {"km", "kilometer"}, {"pm", "picometer"},
		{"\xc3\x85", "angstrom"}, {"\xe2\x84\xab", "angstrom"}, {"A", "angstrom"},
		{"nanometre", "nanometer"}, {"millimetre", "millimeter"}, {"centimetre", "centimeter"},
		{"metre", "meter"}};
	for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
		if (strcmp(in, alias[i][0]) == 0)
			in = alias[i][1];
	/* "pixel" and the like: no length unit */
	snprintf(out, len, "%s", unit_index(in) >= 0 ? in : "");
}

/* An NGFF length unit in metres, as m x 10^e; 0 for none. */
static double metres(const char *ngff, int *e)
{
	int i = unit_index(ngff);
	*e = i >= 0 ? lengths[i].e : 0;
	return i >= 0 ? lengths[i].m : 0;
}

/* v in units of m_from x 10^e_from, to units of m_to x 10^e_to. One
 * multiplication or division by 10^k, exact as a double up to 10^22 (one
 * rounding, not k). */
static double convert(double v, double from, int e_from, double to, int e_to)
{
	v *= from / to;
	double p10 = 1;
	for (int k = abs(e_from - e_to); k > 0; k--)
		p10 *= 10;
	return e_from > e_to ? v * p10 : v / p10;
}

int halo_unit_convert(double *v, const char *from, const char *to)
{
	int ef, et;
	double f = metres(from, &ef), t = metres(to, &et);
	if (!(f > 0 && t > 0))
		return -1;
	*v = convert(*v, f, ef, t, et);
	return 0;
}

void halo_units_common(const char *const units[3], double voxel[3], double origin[3], char *out,
		       size_t len)
{
	char x[32], u[32];
	int ex, eu;
	halo_unit_normalise(units[2] ? units[2] : "", x, sizeof x);
	double to = metres(x, &ex);
	for (int d = 0; d < 2; d++) {
		if (!units[d]) /* no size given: nothing to convert */
			continue;
		halo_unit_normalise(units[d], u, sizeof u);
		double from = metres(u, &eu);
		if (!(from > 0 && to > 0) || (from == to && eu == ex))
			continue;
		voxel[d] = convert(voxel[d], from, eu, to, ex);
		if (origin)
			origin[d] = convert(origin[d], from, eu, to, ex);
	}
	snprintf(out, len, "%s", x);
}
