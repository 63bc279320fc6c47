/* RL's cuFFT callbacks as cuFFT will link them, without a GPU: nvJitLink
 * links the embedded LTO-IR (codelets/rl_callbacks_fatbin.h) with a kernel
 * that calls each callback by the name and type cuFFT uses
 * (tests/rl_callbacks_caller.cu), for the GPU generations halo is built
 * for. The caller alone must fail to link, so the check can fail. */
#include "config.h"
#include "tests/tap.h"

#ifdef HALO_USE_CUDA
#include <nvJitLink.h>
#include <stdio.h>
#include <string.h>

#include "codelets/rl_callbacks_fatbin.h"
#include "tests/rl_callbacks_caller_fatbin.h"

/* NVJITLINK_SUCCESS, or the error; log gets the linker's first line. */
static nvJitLinkResult link_for(const char *arch, int with_callbacks, char *log, size_t len)
{
	nvJitLinkHandle h;
	const char *opts[] = {arch, "-lto"};
	*log = '\0';
	nvJitLinkResult r = nvJitLinkCreate(&h, 2, opts);
	if (r != NVJITLINK_SUCCESS)
		return r;
	r = nvJitLinkAddData(h, NVJITLINK_INPUT_FATBIN, halo_rl_callbacks_caller_fatbin,
			     sizeof halo_rl_callbacks_caller_fatbin, "caller");
	if (r == NVJITLINK_SUCCESS && with_callbacks)
		r = nvJitLinkAddData(h, NVJITLINK_INPUT_FATBIN, halo_rl_callbacks_fatbin,
				     sizeof halo_rl_callbacks_fatbin, "callbacks");
	if (r == NVJITLINK_SUCCESS)
		r = nvJitLinkComplete(h);
	size_t n = 0;
	if (r != NVJITLINK_SUCCESS && nvJitLinkGetErrorLogSize(h, &n) == NVJITLINK_SUCCESS &&
	    n > 1) {
		char buf[4096];
		if (n <= sizeof buf && nvJitLinkGetErrorLog(h, buf) == NVJITLINK_SUCCESS)
			snprintf(log, len, "%.*s", (int)strcspn(buf, "\n"), buf);
	}
	nvJitLinkDestroy(&h);
	return r;
}

int main(void)
{
	static const char *const archs[] = {"-arch=sm_75", "-arch=sm_80", "-arch=sm_90", "-arch=sm_100"};
	char log[512];
	for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
		nvJitLinkResult r = link_for(archs[i], 1, log, sizeof log);
		tap_ok(r == NVJITLINK_SUCCESS, "RL's callbacks link into a caller as cuFFT's (%s): %d %s",
		       archs[i] + 6, (int)r, log);
	}
	nvJitLinkResult r = link_for("-arch=sm_90", 0, log, sizeof log);
	tap_ok(r != NVJITLINK_SUCCESS && strstr(log, "halo_rl_cb_"),
	       "without them the caller does not link: %s", log);
	return tap_done();
}
#else
int main(void)
{
	tap_skip("halo is built without CUDA", "RL's cuFFT callbacks");
	return tap_done();
}
#endif
