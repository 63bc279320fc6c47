/* SIGINT/SIGTERM handling for long runs: the handler only records the
 * signal; the submission loop and the tasks poll halo_interrupted() and wind
 * down, so outputs are removed and StarPU shuts down cleanly. A second
 * signal restores the default action, so an impatient user can still kill
 * the process at once. */
#ifndef HALO_SIGNALS_H
#define HALO_SIGNALS_H

void halo_signals_install(void);
/* The signal number received, or 0. */
int halo_interrupted(void);

#endif
