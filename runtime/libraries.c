/* Versions of the libraries halo was built against and runs with, for
 * `halo info` and benchmark reports: a number without the library that
 * produced it is not reproducible. Run-time versions are preferred over
 * compile-time ones where the library offers them. */
#include "config.h"
#include "runtime/runtime.h"

#include <blosc.h>
#include <fftw3.h>
#include <hwloc.h>
#include <jansson.h>
#include <starpu.h>
#include <stdio.h>
#include <string.h>
#include <tiffio.h>
#ifdef HALO_USE_CUDA
#include <cuda_runtime_api.h>
#include <cufft.h>
#endif

static void tiff_version(char *dst, size_t len)
{
	/* TIFFGetVersion() is "LIBTIFF, Version 4.5.0\nCopyright ..." */
	const char *v = TIFFGetVersion();
	const char *p = v ? strstr(v, "Version ") : NULL;
	p = p ? p + strlen("Version ") : "unknown";
	size_t n = strcspn(p, "\n");
	snprintf(dst, len, "%.*s", (int)n, p);
}

void halo__libraries_get(halo_libraries_t *out)
{
	memset(out, 0, sizeof *out);
	int major, minor, release;
	starpu_get_version(&major, &minor, &release);
	snprintf(out->starpu, sizeof out->starpu, "%d.%d.%d", major, minor, release);
#ifdef STARPU_USE_CUDA
	out->starpu_cuda = 1;
#endif
#ifdef STARPU_USE_FXT
	out->starpu_fxt = 1;
#endif
#ifdef STARPU_USE_MPI
	out->starpu_mpi = 1;
#endif
	snprintf(out->fftw, sizeof out->fftw, "%s", fftwf_version);
	snprintf(out->blosc, sizeof out->blosc, "%s", blosc_get_version_string());
	tiff_version(out->tiff, sizeof out->tiff);
	snprintf(out->jansson, sizeof out->jansson, "%s", jansson_version_str());
	snprintf(out->hwloc, sizeof out->hwloc, "%s", HWLOC_VERSION);
#ifdef HALO_USE_CUDA
	out->halo_cuda = 1;
	int v = 0;
	if (cufftGetVersion(&v) == CUFFT_SUCCESS)
		snprintf(out->cufft, sizeof out->cufft, "%d.%d.%d", v / 1000, (v / 100) % 10, v % 100);
	if (cudaRuntimeGetVersion(&v) == cudaSuccess)
		snprintf(out->cuda_runtime, sizeof out->cuda_runtime, "%d.%d", v / 1000, (v / 10) % 100);
	if (cudaDriverGetVersion(&v) == cudaSuccess && v > 0)
		snprintf(out->cuda_driver, sizeof out->cuda_driver, "%d.%d", v / 1000, (v / 10) % 100);
#endif
}
