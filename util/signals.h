/* SIGINT/SIGTERM/SIGHUP handling for long runs: the handler only records
 * the signal; the submission loop and the tasks poll halo_interrupted() and
 * wind down, so outputs are removed and StarPU shuts down cleanly. A second
 * signal kills the process at once, as an impatient user means it to (its
 * temporary output is removed by the next run to the same OUT), but the
 * same signal within 0.1 s of the first, a sender's duplicate, is
 * ignored. Signals already ignored (nohup) stay ignored. */
#ifndef HALO_SIGNALS_H
#define HALO_SIGNALS_H

void halo_signals_install(void);
/* The signal number received, or 0. */
int halo_interrupted(void);

#endif
