/* See signals.h. */
#include "config.h"
#include "util/signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received;

static void on_signal(int sig)
{
	if (received) {
		/* The second one kills, as the user meant. */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
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
