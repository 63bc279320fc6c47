/* See signals.h. */
#include "config.h"
#include "util/signals.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t received;
static volatile long first_ms; /* when it came (monotonic) */

/* The watchdog: a thread that sleeps until the first signal, then gives
 * the run grace_s seconds to wind down. A run whose StarPU waits
 * forever (for memory it cannot get, say) never polls the signal again;
 * then the watchdog removes what the run was writing and ends the
 * process, where otherwise only a second signal (or SIGKILL) would, and
 * leave the temporary output behind. */
static sem_t wake;
static int watching;
static int (*stuck_fn)(void);

#ifndef HALO_SIMULATE /* SimGrid runs the simulated machine's threads */
static long grace_ms = 15000; /* HALO_INTERRUPT_GRACE, in seconds */
static int mpirun_rank = -1;  /* this process's rank under mpirun */

static void *watchdog(void *arg)
{
	(void)arg;
	while (sem_wait(&wake) != 0 && errno == EINTR)
		;
	struct timespec left = {(time_t)(grace_ms / 1000), (grace_ms % 1000) * 1000000};
	while (nanosleep(&left, &left) != 0 && errno == EINTR)
		;
	int (*fn)(void) = stuck_fn;
	if (!fn)
		return NULL; /* a command that waits on others' runs (bench) */
	static const char msg[] = "halo: interrupted, and the run did not wind down in time: "
				  "stopped\n";
	static const char removed[] = "halo: interrupted, and the run did not wind down in "
				      "time: stopped; no output was written\n";
	int n = fn();
	/* Under mpirun, no line: mpirun's SIGTERM comes from a Ctrl-C or
	 * from another rank's failure, which that rank has said, and a rank
	 * that has said "interrupted" may still be in MPI's shutdown. */
	ssize_t w = mpirun_rank >= 0 ? 0
		    : n ? write(STDERR_FILENO, removed, sizeof removed - 1)
			: write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)w;
	_exit(1);
}
#endif

static void watchdog_start(void)
{
#ifndef HALO_SIMULATE
	/* Open MPI's mpirun follows its SIGTERM with SIGKILL a second later
	 * (odls_base_sigkill_timeout): a rank winding down past it left the
	 * temporary output behind, so the watchdog removes it sooner there.
	 * One line for all ranks, rank 0's. */
	const char *rank = getenv("OMPI_COMM_WORLD_RANK");
	if (rank) {
		grace_ms = 600;
		mpirun_rank = atoi(rank);
	}
	const char *env = getenv("HALO_INTERRUPT_GRACE");
	if (env && *env) {
		char *end;
		unsigned long v = strtoul(env, &end, 10);
		if (!*end && v <= 86400)
			grace_ms = (long)v * 1000;
	}
	pthread_t t;
	pthread_attr_t a;
	sigset_t all, old;
	if (sem_init(&wake, 0, 0) != 0 || pthread_attr_init(&a) != 0)
		return;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024);
	/* The signals go to the other threads, whose waits they may cut. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	watching = pthread_create(&t, &a, watchdog, NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
#endif
}

void halo_signals_on_stuck(int (*fn)(void))
{
	stuck_fn = fn;
}

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
	if (watching)
		sem_post(&wake); /* async-signal-safe */
}

/* SIGHUP: the terminal or ssh session closed. A signal already ignored
 * as the process started (nohup, a background job's SIGINT) stays
 * ignored, whatever handler a library (StarPU's for SIGINT) put there
 * since. */
static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
static int ignored[3] = {-1, -1, -1};

void halo_signals_remember(void)
{
	struct sigaction old;
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (ignored[i] < 0 && sigaction(sigs[i], NULL, &old) == 0)
			ignored[i] = old.sa_handler == SIG_IGN;
}

void halo_signals_install(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, watchdog_start);
	halo_signals_remember();
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], ignored[i] == 1 ? &(struct sigaction){.sa_handler = SIG_IGN}
						   : &sa, NULL);
}

int halo_interrupted(void)
{
	return received;
}

