/* `halo bench`'s child processes: halo itself in each configuration, and
 * bench/peers.py, which runs the peers (numpy, scipy.fft, CuPy, dask) and
 * prints one JSON line per peer. */
#include "config.h"
#include "cli/bench.h"
#include "util/signals.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Runs argv, waits for it and returns its exit status (-1 when it could not
 * start or was killed). Its stdout goes to *out (malloc'ed) when out is
 * not NULL, else nowhere; the last line it wrote on stderr to errline. */
int bench_spawn(const struct bench_ctx *b, char *const argv[], char **out, char *errline,
		 size_t errlen, double *seconds)
{
	if (halo_interrupted()) { /* after Ctrl-C nothing new starts */
		snprintf(errline, errlen, "interrupted");
		return -1;
	}
	char errpath[PATH_MAX + 16];
	snprintf(errpath, sizeof errpath, "%s/stderr.txt", b->dir);
	int fd[2] = {-1, -1};
	if (out && pipe(fd) != 0)
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (out) {
		posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
		posix_spawn_file_actions_addclose(&fa, fd[0]);
		posix_spawn_file_actions_addclose(&fa, fd[1]);
	} else {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	}
	posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	double t0 = halo_now();
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (out) {
		close(fd[1]);
		size_t len = 0, cap = 4096;
		char *buf = malloc(cap);
		ssize_t got;
		while (buf && rc == 0 && ((got = read(fd[0], buf + len, cap - len - 1)) > 0 ||
					  (got < 0 && errno == EINTR))) {
			if (got < 0) { /* a signal: the child stops too, then EOF */
				if (halo_interrupted())
					kill(pid, SIGTERM);
				continue;
			}
			len += (size_t)got;
			if (cap - len < 2048) {
				char *nb = realloc(buf, cap *= 2);
				if (!nb)
					free(buf);
				buf = nb;
			}
		}
		close(fd[0]);
		if (buf)
			buf[len] = '\0';
		*out = buf;
	}
	int status = -1;
	pid_t got = -1;
	while (rc == 0 && (got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		if (halo_interrupted())
			kill(pid, SIGTERM); /* halo bench's own SIGTERM must not orphan it */
	int signo = rc == 0 && got == pid && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	status = rc == 0 && got == pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (halo_interrupted())
		status = -1;
	if (seconds)
		*seconds = halo_now() - t0;
	errline[0] = '\0';
	FILE *f = fopen(errpath, "r");
	char line[1024];
	int kept = 0; /* StarPU's own reason for an abort outranks what follows */
	while (f && fgets(line, sizeof line, f))
		if (line[0] != '\n' && !kept) {
			kept = strstr(line, "[assert failure]") != NULL;
			line[strcspn(line, "\n")] = '\0';
			/* A halo child's "halo: " would repeat the parent's. */
			snprintf(errline, errlen, "%s", line + (strncmp(line, "halo: ", 6) ? 0 : 6));
		}
	if (f)
		fclose(f);
	if (rc != 0)
		snprintf(errline, errlen, "%s: %s", argv[0], strerror(rc));
	else if (signo) { /* a crash, whatever it printed last */
		char last[512];
		snprintf(last, sizeof last, "%s", errline);
		snprintf(errline, errlen, "%s%skilled by signal %d (%s)", last, *last ? "; " : "",
			 signo, strsignal(signo));
	}
	return status;
}

/* Is name one of the comma-separated list? */
static int listed(const char *list, const char *name)
{
	size_t l = strlen(name);
	for (const char *p = list; *p;) {
		size_t k = strcspn(p, ",");
		if (k == l && !strncmp(p, name, l))
			return 1;
		p += k + (p[k] == ',');
	}
	return 0;
}

/* Runs bench/peers.py once for the peers in list, one timed run each;
 * adds to out (at most max) a run per JSON line it prints, with the time
 * the script measured, and returns how many. *wall: the whole process's
 * seconds. */
static int peers_once(struct bench_ctx *b, const struct bench_workload *w,
		      const struct bench_cfg *c, const char *list, int compare,
		      struct bench_run *out, int max,
		      double *wall, char *errline, size_t errlen)
{
	const struct bench_opts *o = b->o;
	static char store[40][PATH_MAX + 256];
	char *argv[40];
	int n = 0;
#define ARG(...) (snprintf(store[n], sizeof store[n], __VA_ARGS__), argv[n] = store[n], n++)
	ARG("%s", o->python);
	ARG("%s", b->peers_py);
	ARG("%s", w->name);
	ARG("--only=%s", list);
	ARG("--repeat=1");
	ARG("--warmup=0");
	ARG("--threads=%d", b->cores);
	ARG("--iterations=%ld", o->iterations);
	if (!strcmp(w->name, "rl")) {
		ARG("--psf=%ld", o->psf);
		ARG("--shape=%lld,%lld,%lld", (long long)o->shape[0], (long long)o->shape[1],
		    (long long)o->shape[2]);
	} else {
		/* The peers run with halo's chunk shape (and overlap depth). */
		ARG("--psf=%s", b->psf);
		ARG("--input=%s", b->input);
		ARG("--out=%s/peers", b->dir);
		ARG("--chunks=%lld,%lld,%lld", (long long)c->chunks[0], (long long)c->chunks[1],
		    (long long)c->chunks[2]);
		ARG("--depth=%lld,%lld,%lld", (long long)o->depth[0], (long long)o->depth[1],
		    (long long)o->depth[2]);
		if (compare)
			ARG("--compare=%s/out.zarr", b->dir);
	}
#undef ARG
	argv[n] = NULL;
	if (access(b->peers_py, R_OK) != 0) {
		snprintf(errline, errlen, "%s: not found (the peers are bench/peers.py of halo's "
			 "sources, beside the executable, or where HALO_BENCH_PEERS names)",
			 b->peers_py);
		return 0;
	}
	char *text = NULL;
	int st = bench_spawn(b, argv, &text, errline, errlen, wall);
	int got = 0;
	for (char *save = NULL, *line = text ? strtok_r(text, "\n", &save) : NULL; line && got < max;
	     line = strtok_r(NULL, "\n", &save)) {
		json_error_t je;
		json_t *j = json_loads(line, 0, &je);
		const char *peer = json_string_value(json_object_get(j, "peer"));
		if (peer) {
			struct bench_run *r = &out[got++];
			*r = (struct bench_run){.max_rel_diff = -1};
			snprintf(r->tool, sizeof r->tool, "%s", peer);
			snprintf(r->label, sizeof r->label, "%s",
				 json_string_value(json_object_get(j, "label")) ?: peer);
			r->available = json_is_true(json_object_get(j, "available"));
			snprintf(r->reason, sizeof r->reason, "%s",
				 json_string_value(json_object_get(j, "reason")) ?: "");
			size_t i;
			json_t *v;
			json_array_foreach(json_object_get(j, "times_s"), i, v)
				if (r->ntimes < 64)
					r->times[r->ntimes++] = json_number_value(v);
			if (json_is_number(json_object_get(j, "max_rel_diff")))
				r->max_rel_diff = json_number_value(json_object_get(j, "max_rel_diff"));
			/* The comparison with halo's result is no work of the peer's. */
			if (json_is_number(json_object_get(j, "compare_s")))
				*wall -= json_number_value(json_object_get(j, "compare_s"));
		}
		json_decref(j);
	}
	free(text);
	/* A script that failed, told from a peer that is not installed (its
	 * line says "unavailable"). */
	if (!got && st > 0) {
		char why[512];
		snprintf(why, sizeof why, "%s", errline);
		snprintf(errline, errlen, "peers.py exited with status %d%s%s", st, *why ? ": " : "",
			 why);
	}
	return got;
}

/* The peers of a workload that --peers lets run, comma-separated. */
static void peer_list(const struct bench_ctx *b, const char *workload, char *list, size_t len)
{
	const char *only = !strcmp(workload, "rl")	     ? "numpy,scipy,cupy,cufft"
			   : !strcmp(workload, "deconvolve") ? "dask,dask-cupy"
							     : "dask";
	*list = '\0';
	for (const char *p = only; *p;) {
		size_t l = strcspn(p, ",");
		char name[32];
		snprintf(name, sizeof name, "%.*s", (int)l, p);
		if (!strcmp(b->o->peers, "all") || listed(b->o->peers, name))
			snprintf(list + strlen(list), len - strlen(list), "%s%s", *list ? "," : "",
				 name);
		p += l + (p[l] == ',');
	}
}

/* The peers' runs across rounds. rl's peers run in one process a round
 * and report their RL times from inside python, like halo's rl; the
 * pipelines' peers (deconvolve, convert) are timed as whole processes, one
 * per peer and round, like halo's commands. */
struct bench_peers {
	char list[128];
	struct bench_cfg ref;         /* halo's configuration they follow */
	struct bench_run runs[8];
	int n;                        /* runs known; -1 before the first round */
	char why[PATH_MAX + 128];     /* why rl's peers gave nothing */
};

int bench_peers_count(const struct bench_ctx *b, const char *workload)
{
	char list[128];
	peer_list(b, workload, list, sizeof list);
	if (!*list)
		return 0;
	if (!strcmp(workload, "rl"))
		return 1;
	int n = 1;
	for (const char *p = list; *p; p++)
		n += *p == ',';
	return n;
}

struct bench_peers *bench_peers_begin(const struct bench_ctx *b, const struct bench_workload *w,
				      const struct bench_cfg *ref)
{
	struct bench_peers *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->ref = *ref;
	peer_list(b, w->name, p->list, sizeof p->list);
	p->n = -1;
	return p;
}

/* Adds this round's time of each available peer to what it reported in
 * the first round. */
static void add_round(struct bench_run *acc, const struct bench_run *now, double t, int keep,
		      const char *ref_label)
{
	if (!acc->available)
		return;
	if (!now->available) {
		/* Its name and label stay; its earlier times go, since a median
		 * of fewer rounds than halo's would not compare. */
		snprintf(acc->reason, sizeof acc->reason, "failed in a later round: %.2000s",
			 now->reason);
		acc->available = 0;
		acc->ntimes = 0;
		return;
	}
	if (keep && acc->ntimes < 64)
		acc->times[acc->ntimes++] = t;
	if (now->max_rel_diff >= 0) {
		acc->max_rel_diff = now->max_rel_diff;
		snprintf(acc->against, sizeof acc->against, "%s", ref_label);
	}
}

static void first_round(struct bench_run *acc, const struct bench_run *now)
{
	*acc = *now;
	acc->ntimes = 0;
}

void bench_peers_round(struct bench_ctx *b, struct bench_peers *p,
		       const struct bench_workload *w, int keep, int last, const char *ref_label)
{
	if (!*p->list)
		return;
	char progress_line[256], errline[PATH_MAX + 128];
	snprintf(progress_line, sizeof progress_line, "%s: peers %s", w->name, p->list);
	bench_progress(b, progress_line);
	struct bench_run now[8];
	double wall;
	if (!strcmp(w->name, "rl")) {
		int got = peers_once(b, w, &p->ref, p->list, 0, now, 8, &wall, errline, sizeof errline);
		if (p->n < 0) {
			p->n = got;
			for (int i = 0; i < got; i++)
				first_round(&p->runs[i], &now[i]);
			if (!got)
				snprintf(p->why, sizeof p->why, "%s", *errline ? errline : "no output");
		}
		for (int i = 0; i < p->n; i++) {
			struct bench_run lost = p->runs[i];
			snprintf(lost.reason, sizeof lost.reason, "%.2000s",
				 *errline ? errline : "no output");
			lost.available = 0;
			add_round(&p->runs[i], i < got ? &now[i] : &lost,
				  i < got && now[i].ntimes ? now[i].times[0] : 0, keep, ref_label);
		}
		b->done++;
		return;
	}
	int i = 0;
	for (const char *s = p->list; *s; i++, b->done++) {
		size_t l = strcspn(s, ",");
		char name[32];
		snprintf(name, sizeof name, "%.*s", (int)l, s);
		s += l + (s[l] == ',');
		if (p->n >= 0 && !p->runs[i].available)
			continue;
		if (peers_once(b, w, &p->ref, name, last && !strcmp(w->name, "deconvolve"), now, 1,
			       &wall, errline, sizeof errline) != 1) {
			now[0] = (struct bench_run){.max_rel_diff = -1};
			snprintf(now[0].tool, sizeof now[0].tool, "%s", name);
			snprintf(now[0].label, sizeof now[0].label, "%s", name);
			snprintf(now[0].reason, sizeof now[0].reason, "%s",
				 *errline ? errline : "no output");
		}
		if (p->n < 0 || i >= p->n)
			first_round(&p->runs[i], &now[0]);
		add_round(&p->runs[i], &now[0], wall, keep, ref_label);
	}
	p->n = i;
}

void bench_peers_end(struct bench_peers *p, struct bench_workload *w)
{
	if (p && w && *p->list) {
		if (p->n <= 0) {
			struct bench_run r = {.tool = "peers", .max_rel_diff = -1};
			snprintf(r.label, sizeof r.label, "%s", p->list);
			snprintf(r.reason, sizeof r.reason, "%s", *p->why ? p->why : "no output");
			bench_add_run(w, &r);
		}
		/* A pipeline's peers name the chunks they ran with. */
		for (int i = 0; i < p->n; i++) {
			struct bench_run *r = &p->runs[i];
			int said = 0; /* a peer that is not installed, once */
			for (int k = 0; !r->available && k < w->nruns; k++)
				said |= !w->runs[k].available && !strcmp(w->runs[k].tool, r->tool) &&
					!strcmp(w->runs[k].reason, r->reason);
			if (said)
				continue;
			if (strcmp(w->name, "rl") && r->available) {
				memcpy(r->cfg.chunks, p->ref.chunks, sizeof r->cfg.chunks);
				size_t l = strlen(r->label);
				snprintf(r->label + l, sizeof r->label - l, ", chunks %lldx%lldx%lld",
					 (long long)r->cfg.chunks[0], (long long)r->cfg.chunks[1],
					 (long long)r->cfg.chunks[2]);
			}
			bench_add_run(w, r);
		}
	}
	free(p);
}
