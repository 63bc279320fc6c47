/* See signals.h. */
#include "config.h"
#include "util/signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received;

static void on_signal(int sig)
{
	if (received)
		signal(sig, SIG_DFL);
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
}

int halo_interrupted(void)
{
	return received;
}
