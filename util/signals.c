/* See signals.h. */
#include "config.h"
#include "util/signals.h"

#include <signal.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t received;
static volatile long first_ms; /* when it came (monotonic) */

static long now_ms(void)
{
	struct timespec t; /* clock_gettime is async-signal-safe */
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
	if (received) {
		/* The same signal again at once is one sender's duplicate:
		 * timeout(1) signals the process and then its group, and
		 * acting on that one left the temporary output behind. Any
		 * later one kills, as the user meant. */
		if (sig == received && now_ms() - first_ms < 100)
			return;
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	first_ms = now_ms();
	received = sig;
}

void halo_signals_install(void)
{
	/* SIGHUP: the terminal or ssh session closed. A signal already
	 * ignored (nohup, a background job's SIGINT) stays ignored. */
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaction(sigs[i], &sa, NULL);
}

int halo_interrupted(void)
{
	return received;
}
