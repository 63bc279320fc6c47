/* `halo bench --simulate DIR`: the deconvolve workload run by halo-sim,
 * the same halo on a StarPU built with SimGrid, which executes no task but
 * replays each one for as long as the performance models recorded on a
 * real machine (STARPU_PERF_MODEL_DIR=DIR there) say it takes. The machine
 * simulated is the recorded one with as many CPU cores and GPUs as the
 * configurations ask for: each added GPU is a copy of the recorded GPU 0
 * (its memory, its own PCIe link to RAM with GPU 0's bandwidth and
 * latency; GPU-to-GPU copies go through RAM), each added core a copy of a
 * recorded core, and every GPU uses GPU 0's models
 * (STARPU_PERF_MODEL_HOMOGENEOUS_CUDA). */
#include "config.h"
#include "cli/bench.h"
#include "io/fs.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* StarPU's bus files are matrices over its memory nodes: STARPU_MAXNODES
 * of the StarPU that reads them. */
#define SIM_MAXNODES HALO_SIM_MAXNODES

/* What the recorded machine's platform file says. */
struct recorded {
	int ncpu, ngpu;
	double memsize;          /* GPU 0's memory, bytes */
	double down_bw, down_lat; /* RAM -> GPU 0, B/s and s */
	double up_bw, up_lat;     /* GPU 0 -> RAM */
};

static int ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);
	return n >= m && !strcmp(s + n - m, tail);
}

/* The machine whose models DIR holds: the one bus/HOST.platform.v4.xml
 * file, or STARPU_HOSTNAME's among several. */
static int find_host(const char *dir, char *host, size_t len, halo_error_t *err)
{
	char bus[PATH_MAX + 8], names[512] = "";
	snprintf(bus, sizeof bus, "%s/bus", dir);
	const char *want = getenv("STARPU_HOSTNAME");
	if (want && !*want) /* empty is unset, as for StarPU */
		want = NULL;
	DIR *d = opendir(bus);
	int found = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!ends_with(e->d_name, ".platform.v4.xml"))
			continue;
		size_t n = strlen(e->d_name) - strlen(".platform.v4.xml");
		if (want && (strlen(want) != n || strncmp(want, e->d_name, n)))
			continue;
		if (found++ == 0)
			snprintf(host, len, "%.*s", (int)n, e->d_name);
		size_t used = strlen(names);
		snprintf(names + used, sizeof names - used, "%s%.*s", used ? ", " : "", (int)n,
			 e->d_name);
	}
	if (d)
		closedir(d);
	if (found == 1)
		return HALO_OK;
	if (found > 1)
		return halo_error_set(err, HALO_EINVAL, "--simulate: %s holds the models of several "
				      "machines (%s): set STARPU_HOSTNAME to one", dir, names);
	return halo_error_set(err, HALO_EINVAL, "--simulate: %s: no StarPU performance models%s%s "
			      "(record them on the machine to simulate with STARPU_PERF_MODEL_DIR=%s "
			      "halo bench deconvolve ...)", dir, want ? " of " : "", want ? want : "",
			      dir);
}

/* The number after `key="` from p on (units such as "Bps" or "s" end it);
 * -1 when absent. */
static double attr(const char *p, const char *key)
{
	char k[64];
	snprintf(k, sizeof k, "%s=\"", key);
	const char *v = p ? strstr(p, k) : NULL;
	return v ? strtod(v + strlen(k), NULL) : -1;
}

static int count(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

static int read_platform(const char *dir, const char *host, struct recorded *r,
			 halo_error_t *err)
{
	char path[PATH_MAX + 300];
	snprintf(path, sizeof path, "%s/bus/%s.platform.v4.xml", dir, host);
	void *data;
	size_t len;
	if (halo_fs_read(path, &data, &len, err))
		return HALO_EIO;
	char *s = realloc(data, len + 1);
	if (!s) {
		free(data);
		return halo_error_set(err, HALO_ENOMEM, "out of memory");
	}
	s[len] = '\0';
	r->ncpu = count(s, "<host id=\"CPU");
	r->ngpu = count(s, "<host id=\"CUDA");
	r->memsize = attr(strstr(s, "<host id=\"CUDA0\""), "value");
	const char *down = strstr(s, "<link id=\"RAM-CUDA0\""), *up = strstr(s, "<link id=\"CUDA0-RAM\"");
	r->down_bw = attr(down, "bandwidth");
	r->down_lat = attr(down, "latency");
	r->up_bw = attr(up, "bandwidth");
	r->up_lat = attr(up, "latency");
	free(s);
	if (r->ncpu < 1)
		return halo_error_set(err, HALO_EINVAL, "%s: no CPU in this platform file", path);
	if (r->ngpu && (r->memsize <= 0 || r->down_bw <= 0 || r->up_bw <= 0 || r->down_lat < 0 ||
			r->up_lat < 0))
		return halo_error_set(err, HALO_EINVAL, "%s: GPU 0's memory, or the bandwidth or "
				      "latency of its links to RAM, is missing or negative", path);
	return HALO_OK;
}

/* A text file built with appends; on overflow the write fails. */
struct text {
	char *s;
	size_t len, cap;
	int bad;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = t->bad ? -1 : vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->bad = 1;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap + (size_t)n) * 2;
		char *s = realloc(t->s, cap);
		if (!s) {
			t->bad = 1;
			return;
		}
		t->s = s;
		t->cap = cap;
	}
}

static int flush(struct text *t, const char *dir, const char *host, const char *ext,
		 halo_error_t *err)
{
	char path[PATH_MAX + 300];
	snprintf(path, sizeof path, "%s/bus/%s.%s", dir, host, ext);
	int rc = t->bad ? halo_error_set(err, HALO_ENOMEM, "out of memory")
			: halo_fs_write(path, t->s ? t->s : "", t->len, err);
	t->len = 0;
	return rc;
}

/* The platform file in SimGrid's v4 dialect (v4 = 1) or v3: the hosts
 * StarPU makes workers of, and the links between RAM and each GPU. */
static void platform(struct text *t, const struct recorded *r, int ncpu, int ngpu, int v4)
{
	const char *f = v4 ? "f" : "", *bps = v4 ? "Bps" : "", *sec = v4 ? "s" : "";
	const char *speed = v4 ? "speed" : "power";
	put(t, "<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM "
	       "'http://simgrid.gforge.inria.fr/simgrid%s.dtd'>\n<platform version=\"%d\">\n",
	    v4 ? "/simgrid" : "", v4 ? 4 : 3);
	/* StarPU's own network settings (as in the files it records): without
	 * them SimGrid's default model multiplies each copy's latency by 13
	 * and caps its bandwidth by a TCP window. */
	char dash = v4 ? '-' : '_';
	put(t, " <config id=\"General\">\n"
	       "   <prop id=\"network/TCP%cgamma\" value=\"-1\"></prop>\n"
	       "   <prop id=\"network/latency%cfactor\" value=\"1\"></prop>\n"
	       "   <prop id=\"network/bandwidth%cfactor\" value=\"1\"></prop>\n"
	       "   <prop id=\"network/crosstraffic\" value=\"0\"></prop>\n"
	       "   <prop id=\"network/weight%cS\" value=\"0.0\"></prop>\n </config>\n",
	    dash, dash, dash, dash);
	put(t, " <AS id=\"AS0\" routing=\"Full\">\n   <host id=\"MAIN\" %s=\"1%s\"/>\n", speed, f);
	for (int i = 0; i < ncpu; i++)
		put(t, "   <host id=\"CPU%d\" %s=\"2000000000%s\"/>\n", i, speed, f);
	for (int g = 0; g < ngpu; g++)
		put(t, "   <host id=\"CUDA%d\" %s=\"2000000000%s\">\n"
		       "     <prop id=\"memsize\" value=\"%.0f\"/>\n"
		       "     <prop id=\"memcpy_peer\" value=\"1\"/>\n   </host>\n",
		    g, speed, f, r->memsize);
	put(t, "   <host id=\"RAM\" %s=\"1%s\"/>\n", speed, f);
	put(t, "   <link id=\"Host\" bandwidth=\"0%s\" latency=\"0%s\"/>\n", bps, sec);
	for (int g = 0; g < ngpu; g++)
		put(t, "   <link id=\"RAM-CUDA%d\" bandwidth=\"%.6f%s\" latency=\"%.9f%s\"/>\n"
		       "   <link id=\"CUDA%d-RAM\" bandwidth=\"%.6f%s\" latency=\"%.9f%s\"/>\n",
		    g, r->down_bw, bps, r->down_lat, sec, g, r->up_bw, bps, r->up_lat, sec);
	for (int g = 0; g < ngpu; g++) {
		put(t, "   <route src=\"RAM\" dst=\"CUDA%d\" symmetrical=\"NO\"><link_ctn "
		       "id=\"RAM-CUDA%d\"/></route>\n", g, g);
		put(t, "   <route src=\"CUDA%d\" dst=\"RAM\" symmetrical=\"NO\"><link_ctn "
		       "id=\"CUDA%d-RAM\"/></route>\n", g, g);
		for (int h = 0; h < ngpu; h++)
			if (h != g)
				put(t, "   <route src=\"CUDA%d\" dst=\"CUDA%d\" symmetrical=\"NO\">"
				       "<link_ctn id=\"CUDA%d-RAM\"/><link_ctn id=\"RAM-CUDA%d\"/>"
				       "</route>\n", g, h, g, h);
	}
	put(t, " </AS>\n</platform>\n");
}

/* StarPU's bandwidth (MB/s) or latency (us) matrix: node 0 is RAM, node
 * 1 + g is GPU g; GPU to GPU goes through RAM. */
static void matrix(struct text *t, const struct recorded *r, int ngpu, int latency)
{
	double down = latency ? r->down_lat * 1e6 : r->down_bw / 1e6;
	double up = latency ? r->up_lat * 1e6 : r->up_bw / 1e6;
	double through = latency ? down + up : (down < up ? down : up);
	put(t, "#");
	for (int j = 0; j < SIM_MAXNODES; j++)
		put(t, " to %d\t\t", j);
	put(t, "\n");
	for (int i = 0; i < SIM_MAXNODES; i++) {
		for (int j = 0; j < SIM_MAXNODES; j++) {
			double v = NAN;
			if (i <= ngpu && j <= ngpu)
				v = i == j ? 0 : i == 0 ? down : j == 0 ? up : through;
			const char *sep = j + 1 < SIM_MAXNODES ? "\t" : "\n";
			if (isnan(v))
				put(t, "nan%s", sep);
			else
				put(t, "%f%s", v, sep);
		}
	}
}

/* The bus files of the machine simulated, under dst/bus. */
static int write_machine(const char *dst, const char *host, const struct recorded *r, int ncpu,
			 int ngpu, halo_error_t *err)
{
	struct text t = {0};
	int rc;
	platform(&t, r, ncpu, ngpu, 1);
	if ((rc = flush(&t, dst, host, "platform.v4.xml", err)))
		goto out;
	platform(&t, r, ncpu, ngpu, 0);
	if ((rc = flush(&t, dst, host, "platform.xml", err)))
		goto out;
	put(&t, "# Current configuration\n%d # Number of CPUs\n1 # Number of NUMA nodes\n"
		"%d # Number of CUDA devices\n0 # Number of OpenCL devices\n"
		"0 # Number of MIC devices\n0 # Number of MPI devices\n", ncpu, ngpu);
	if ((rc = flush(&t, dst, host, "config", err)))
		goto out;
	matrix(&t, r, ngpu, 0);
	if ((rc = flush(&t, dst, host, "bandwidth", err)))
		goto out;
	matrix(&t, r, ngpu, 1);
	if ((rc = flush(&t, dst, host, "latency", err)))
		goto out;
	put(&t, "# GPU\tNUMA0\t\n");
	for (int g = 0; g < ngpu; g++)
		put(&t, "%d\t0\t\n", g);
	rc = flush(&t, dst, host, "affinity", err);
out:
	free(t.s);
	return rc;
}

/* The recorded machine's codelet models, from src into dst. */
static int copy_models(const char *src, const char *dst, const char *host, halo_error_t *err)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 600], tail[300];
	snprintf(tail, sizeof tail, ".%s", host);
	snprintf(from, sizeof from, "%s/codelets", src);
	DIR *top = opendir(from);
	if (!top)
		return halo_error_set(err, HALO_EINVAL, "--simulate: %s: %s", from, strerror(errno));
	int rc = HALO_OK, copied = 0;
	struct dirent *v, *e;
	while (!rc && (v = readdir(top))) { /* codelets/VERSION/SYMBOL.HOST */
		if (v->d_name[0] == '.')
			continue;
		char vdir[PATH_MAX + 300];
		snprintf(vdir, sizeof vdir, "%s/%s", from, v->d_name);
		DIR *d = opendir(vdir);
		while (!rc && d && (e = readdir(d))) {
			if (!ends_with(e->d_name, tail))
				continue;
			char in[PATH_MAX + 600], out[2 * PATH_MAX];
			snprintf(in, sizeof in, "%s/%s", vdir, e->d_name);
			snprintf(to, sizeof to, "%s/codelets/%s", dst, v->d_name);
			snprintf(out, sizeof out, "%s/%s", to, e->d_name);
			void *data;
			size_t len;
			if (!(rc = halo_fs_mkdirs(to, err)) && !(rc = halo_fs_read(in, &data, &len, err))) {
				rc = halo_fs_write(out, data, len, err);
				free(data);
				copied++;
			}
		}
		if (d)
			closedir(d);
	}
	closedir(top);
	if (!rc && !copied)
		rc = halo_error_set(err, HALO_EINVAL, "--simulate: %s holds no codelet model of %s",
				    src, host);
	return rc;
}

/* StarPU's name for this machine in its model files. */
static void starpu_host(char *host, size_t len)
{
	const char *forced = getenv("STARPU_HOSTNAME");
	if (forced && *forced) {
		snprintf(host, len, "%s", forced);
		return;
	}
	if (gethostname(host, len - 1) != 0)
		snprintf(host, len, "unknown");
	host[len - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
}

void bench_sim_record(void)
{
	const char *dir = getenv("STARPU_PERF_MODEL_DIR");
	if (!dir || !*dir)
		return;
	char host[256], path[PATH_MAX + 300];
	starpu_host(host, sizeof host);
	snprintf(path, sizeof path, "%s/halo", dir);
	json_t *j = json_pack("{s:I}", "ram_bytes", (json_int_t)halo_machine_ram());
	char *text = j ? json_dumps(j, 0) : NULL;
	halo_error_t ignored;
	if (text && !halo_fs_mkdirs(path, &ignored)) {
		snprintf(path, sizeof path, "%s/halo/%s.json", dir, host);
		halo_fs_write(path, text, strlen(text), &ignored);
	}
	free(text);
	json_decref(j);
}

/* The recorded machine's memory (bench_sim_record), or 0 where none was
 * recorded (models from before halo recorded it). A garbled record is an
 * error: the chunks in flight, which it decides, changed a prediction 3x. */
static int recorded_ram(const char *dir, const char *host, double *ram, halo_error_t *err)
{
	char path[PATH_MAX + 300];
	snprintf(path, sizeof path, "%s/halo/%s.json", dir, host);
	*ram = 0;
	if (!halo_fs_exists(path))
		return HALO_OK;
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	json_t *v = json_object_get(j, "ram_bytes");
	*ram = json_is_number(v) ? json_number_value(v) : 0;
	json_decref(j);
	if (!j)
		return halo_error_set(err, HALO_EFORMAT, "%s: not JSON: %s", path, je.text);
	if (!(*ram >= 1 << 20 && *ram < 1e18))
		return halo_error_set(err, HALO_EFORMAT, "%s: ram_bytes is not the machine's memory "
				      "in bytes", path);
	return HALO_OK;
}

int bench_sim_setup(struct bench_ctx *b, struct bench_report *rep, halo_error_t *err)
{
	struct bench_opts *o = (struct bench_opts *)b->o;
	snprintf(b->sim_exe, sizeof b->sim_exe, "%.*s/halo-sim",
		 (int)(strrchr(b->self, '/') - b->self), b->self);
	if (access(b->sim_exe, X_OK) != 0)
		return halo_error_set(err, HALO_EINVAL, "--simulate needs halo-sim beside halo (%s), "
				      "which scripts/setup builds unless HALO_NO_SIMGRID=1", b->sim_exe);
	struct recorded r = {0};
	if (find_host(o->simulate, b->sim_host, sizeof b->sim_host, err) ||
	    read_platform(o->simulate, b->sim_host, &r, err))
		return err->code;
	/* 'all' is what the recorded machine has; more may be asked for. */
	int ncpu = r.ncpu, ngpu = 0;
	for (int i = 0; i < o->ncpus; i++) {
		o->cpus[i] = o->cpus[i] < 0 ? r.ncpu : o->cpus[i];
		ncpu = o->cpus[i] > ncpu ? o->cpus[i] : ncpu;
	}
	if (!o->ngpus)
		o->gpus[o->ngpus++] = r.ngpu;
	for (int i = 0; i < o->ngpus; i++) {
		o->gpus[i] = o->gpus[i] < 0 ? r.ngpu : o->gpus[i];
		ngpu = o->gpus[i] > ngpu ? o->gpus[i] : ngpu;
	}
	if (ngpu && !r.ngpu)
		return halo_error_set(err, HALO_EINVAL, "--simulate: %s was recorded on a machine "
				      "without a GPU: it cannot predict GPUs", o->simulate);
	if (ngpu > HALO_SIM_MAXCUDA || ncpu + ngpu > HALO_SIM_MAXWORKERS)
		return halo_error_set(err, HALO_EINVAL, "--simulate: at most %d GPUs and %d workers "
				      "in all (halo-sim's StarPU)", HALO_SIM_MAXCUDA,
				      HALO_SIM_MAXWORKERS);
	b->cores = ncpu;
	b->ngpu = ngpu;
	char models[PATH_MAX + 32];
	snprintf(models, sizeof models, "%s/simulated-machine", b->dir);
	char bus[PATH_MAX + 48];
	snprintf(bus, sizeof bus, "%s/bus", models);
	halo_fs_remove_tree(models); /* a kept --dir may hold another DIR's */
	if (halo_fs_mkdirs(bus, err) || copy_models(o->simulate, models, b->sim_host, err) ||
	    write_machine(models, b->sim_host, &r, ncpu, ngpu, err))
		return err->code;
	/* For halo-sim's runs: one measurement per task size is enough to
	 * replay it, and every GPU is GPU 0. */
	setenv("STARPU_PERF_MODEL_DIR", models, 1);
	setenv("STARPU_HOSTNAME", b->sim_host, 1);
	setenv("STARPU_PERF_MODEL_HOMOGENEOUS_CUDA", "1", 1);
	setenv("STARPU_CALIBRATE_MINIMUM", "1", 1);
	/* Calibrating (a user's STARPU_CALIBRATE=2) would drop the models. */
	unsetenv("STARPU_CALIBRATE");
	char cores[16];
	snprintf(cores, sizeof cores, "%d", ncpu);
	setenv("HALO_SIM_CORES", cores, 1); /* --ncpu 0: a quarter of them do the I/O */
	/* Memory budgets (chunks in flight) as there, when it was recorded. */
	double ram;
	if (recorded_ram(o->simulate, b->sim_host, &ram, err))
		return err->code;
	if (ram > 0) {
		char rams[32];
		snprintf(rams, sizeof rams, "%.0f", ram);
		setenv("HALO_SIM_RAM", rams, 1);
	}
	rep->machine = json_pack("{s:{s:s,s:s,s:i,s:i,s:i,s:i,s:f,s:o}}", "simulated", "models",
				 o->simulate, "host", b->sim_host, "recorded_cpus", r.ncpu,
				 "recorded_gpus", r.ngpu, "cpus", ncpu, "gpus", ngpu,
				 "gpu_memory_bytes", r.memsize > 0 ? r.memsize : 0.0,
				 "recorded_ram_bytes", ram > 0 ? json_real(ram) : json_null());
	return rep->machine ? HALO_OK : halo_error_set(err, HALO_ENOMEM, "out of memory");
}

/* halo-sim's summary line "...: 12.34 s, ..." gives the simulated time;
 * StarPU's complaint about a missing measurement becomes advice. */
int bench_sim_result(const struct bench_ctx *b, const char *out, const char *errline,
		     double *seconds, halo_error_t *err)
{
	const char *p = out ? strstr(out, " workers: ") : NULL;
	if (p && sscanf(p, " workers: %lf s,", seconds) == 1)
		return HALO_OK;
	const char *cl = strstr(errline, "Codelet ");
	if (cl && strstr(cl, "does not have a perfmodel"))
		return halo_error_set(err, HALO_EINVAL, "--simulate: %s has no measurement of the "
				      "'%.*s' tasks of this run: run the same halo bench deconvolve "
				      "(--input-chunks, --chunks, --depth, --iterations, --mode, and a "
				      "--size with the same edge chunks) on the recorded machine with "
				      "STARPU_PERF_MODEL_DIR=%s first, with --repeat 3 or more (StarPU "
				      "drops a task size's first measurement, and flushes the others "
				      "when they differ by more than STARPU_HISTORY_MAX_ERROR %%)", b->o->simulate,
				      (int)strcspn(cl + 8, " "), cl + 8, b->o->simulate);
	const char *bad = strstr(errline, "Incorrect performance model file ");
	if (bad) {
		const char *f = strrchr(bad, '/');
		return halo_error_set(err, HALO_EINVAL, "--simulate: %s: the performance model of "
				      "%.*s is corrupt", b->o->simulate,
				      f ? (int)strcspn(f + 1, " .") : 0, f ? f + 1 : "");
	}
	if (!strncmp(errline, "halo-sim: ", 10))
		errline += 10;
	return halo_error_set(err, HALO_ERUNTIME, "halo-sim: %s", *errline ? errline : "no result");
}
