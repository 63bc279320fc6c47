/* Progress lines for long work on a terminal: "done/total, rate, ETA",
 * redrawn in place at most five times a second. Nothing is printed when
 * stderr is not a terminal or when quiet, so logs and pipes stay clean. */
#ifndef HALO_PROGRESS_H
#define HALO_PROGRESS_H

#include <stdint.h>

typedef struct halo_progress {
	const char *label;
	const char *unit; /* what is counted: "chunks" unless set after init */
	int64_t total;
	double start, last;
	int enabled;
	int drawn;
	int dumb;  /* TERM=dumb: no escape sequences */
	int width; /* of the line drawn last */
	int64_t shown; /* the count drawn last */
	int64_t first; /* the first count above 0, at first_t */
	double first_t;
} halo_progress_t;

void halo_progress_init(halo_progress_t *p, const char *label, int64_t total, int quiet);
/* done units of total, bytes moved so far (for the MB/s figure; none
 * shown while 0). */
void halo_progress_update(halo_progress_t *p, int64_t done, uint64_t bytes);
/* Clears the line; the caller prints its own summary. */
void halo_progress_finish(halo_progress_t *p);

/* Seconds on a monotonic clock. */
double halo_now(void);

#endif
