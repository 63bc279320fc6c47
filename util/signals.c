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
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL); /* the terminal or ssh session closed */
	/* A closed pipe on stdout is a write error to report, not a death. */
	signal(SIGPIPE, SIG_IGN);
}

int halo_interrupted(void)
{
	return received;
}
