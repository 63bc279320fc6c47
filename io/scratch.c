/* Per-thread scratch buffers (see scratch.h). A pthread key's destructor
 * frees them when StarPU's worker threads exit. */
#include "config.h"
#include "io/scratch.h"

#include <pthread.h>
#include <stdlib.h>

struct scratch {
	void *p[HALO_SCRATCH_COUNT];
	size_t cap[HALO_SCRATCH_COUNT];
};

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v)
{
	struct scratch *s = v;
	for (int i = 0; i < HALO_SCRATCH_COUNT; i++)
		free(s->p[i]);
	free(s);
}

static void make_key(void)
{
	pthread_key_create(&key, scratch_free);
}

void *halo_scratch(int slot, size_t len)
{
	pthread_once(&once, make_key);
	struct scratch *s = pthread_getspecific(key);
	if (!s) {
		s = calloc(1, sizeof *s);
		if (!s || pthread_setspecific(key, s)) {
			free(s);
			return NULL;
		}
	}
	if (s->cap[slot] < len) {
		/* Grow by half again so slowly growing chunks do not realloc often. */
		size_t cap = len + len / 2;
		void *p = realloc(s->p[slot], cap);
		if (!p)
			return NULL;
		s->p[slot] = p;
		s->cap[slot] = cap;
	}
	return s->p[slot];
}
