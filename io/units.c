/* Length units (see units.h). */
#include "config.h"
#include "io/units.h"

#include <stdio.h>
#include <string.h>

void halo_unit_normalise(const char *in, char *out, size_t len)
{
	/* OME-NGFF's length units (UDUNITS-2 names) and the spellings ImageJ
	 * and OME-XML use for the common ones. */
	static const char *const ngff[] = {
		"angstrom", "attometer", "centimeter", "decimeter", "exameter", "femtometer", "foot",
		"gigameter", "hectometer", "inch", "kilometer", "megameter", "meter", "micrometer",
		"mile", "millimeter", "nanometer", "parsec", "petameter", "picometer", "terameter",
		"yard", "yoctometer", "yottameter", "zeptometer", "zettameter"};
	static const char *const alias[][2] = {
		{"micron", "micrometer"}, {"microns", "micrometer"}, {"um", "micrometer"},
		{"\xc2\xb5m", "micrometer"}, {"\xce\xbcm", "micrometer"}, {"\\u00B5m", "micrometer"},
		{"micrometre", "micrometer"}, {"nm", "nanometer"}, {"mm", "millimeter"},
		{"cm", "centimeter"}, {"m", "meter"}, {"km", "kilometer"}, {"pm", "picometer"},
		{"\xc3\x85", "angstrom"}, {"\xe2\x84\xab", "angstrom"}, {"A", "angstrom"},
		{"nanometre", "nanometer"}, {"millimetre", "millimeter"}, {"centimetre", "centimeter"},
		{"metre", "meter"}};
	for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
		if (strcmp(in, alias[i][0]) == 0)
			in = alias[i][1];
	for (size_t i = 0; i < sizeof ngff / sizeof ngff[0]; i++)
		if (strcmp(in, ngff[i]) == 0) {
			snprintf(out, len, "%s", in);
			return;
		}
	out[0] = '\0'; /* "pixel" and the like: no length unit */
}

/* Metres in one of NGFF's length units; 0 for none. */
static double metres(const char *ngff)
{
	static const struct {
		const char *name;
		double m;
	} units[] = {
		{"angstrom", 1e-10}, {"attometer", 1e-18}, {"centimeter", 1e-2}, {"decimeter", 1e-1},
		{"exameter", 1e18}, {"femtometer", 1e-15}, {"foot", 0.3048}, {"gigameter", 1e9},
		{"hectometer", 1e2}, {"inch", 0.0254}, {"kilometer", 1e3}, {"megameter", 1e6},
		{"meter", 1}, {"micrometer", 1e-6}, {"mile", 1609.344}, {"millimeter", 1e-3},
		{"nanometer", 1e-9}, {"parsec", 3.0856775814913673e16}, {"petameter", 1e15},
		{"picometer", 1e-12}, {"terameter", 1e12}, {"yard", 0.9144}, {"yoctometer", 1e-24},
		{"yottameter", 1e24}, {"zeptometer", 1e-21}, {"zettameter", 1e21}};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strcmp(ngff, units[i].name) == 0)
			return units[i].m;
	return 0;
}

void halo_units_common(const char *const units[3], double voxel[3], char *out, size_t len)
{
	char x[32], u[32];
	halo_unit_normalise(units[2] ? units[2] : "", x, sizeof x);
	for (int d = 0; d < 2; d++) {
		halo_unit_normalise(units[d] ? units[d] : "", u, sizeof u);
		double from = metres(u), to = metres(x);
		if (from > 0 && to > 0 && from != to)
			voxel[d] *= from / to;
	}
	snprintf(out, len, "%s", x);
}
