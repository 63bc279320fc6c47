/* SIGINT/SIGTERM/SIGHUP handling for long runs: the handler only records
 * the signal; the submission loop and the tasks poll halo_interrupted() and
 * wind down, so outputs are removed and StarPU shuts down cleanly. A second
 * signal kills the process at once, as an impatient user means it to (its
 * temporary output is removed by the next run to the same OUT), but the
 * same signal within 0.1 s of the first, a sender's duplicate, is
 * ignored. Signals already ignored (nohup) stay ignored. A run that has
 * not wound down 15 s after the first signal is ended (see
 * halo_signals_on_stuck). */
#ifndef HALO_SIGNALS_H
#define HALO_SIGNALS_H

/* Notes which signals the process started with ignored; main calls it
 * before anything installs a handler (StarPU does for SIGINT). */
void halo_signals_remember(void);
void halo_signals_install(void);
/* fn removes what the run was writing (returning how many outputs) where,
 * 15 s after the first signal (HALO_INTERRUPT_GRACE seconds), the process
 * is still running, its StarPU stuck: then the process ends with status 1.
 * NULL (the default) lets the process run on. */
void halo_signals_on_stuck(int (*fn)(void));
/* The signal number received, or 0. */
int halo_interrupted(void);

#endif
