/* Checking the environment before StarPU starts (see env.c). */
#ifndef HALO_RUNTIME_ENV_H
#define HALO_RUNTIME_ENV_H

#include "halo.h"

/* One line naming a STARPU_* variable StarPU would abort on, or a bad
 * HALO_* knob; else HALO_OK. */
int halo__env_check(halo_error_t *err);

#endif
