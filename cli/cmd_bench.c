/* cmd_bench.c - `advex bench`: median time of one attack step (forward,
 * cross-entropy on the logits, backward to the input; batch 1) and of one
 * forward pass; with --batch, the images per second of a batch sweep
 * (attack_batch_step). Speed is measured here, never asserted in tests. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attack.h"
#include "clock.h"
#include "cli.h"
#include "jsonout.h"
#include "loss.h"
#include "rng.h"

enum { OPT_STEPS = OPT_FIRST_FREE, OPT_WARMUP, OPT_LAYERS, OPT_BATCH };


struct timing {
	double median, min, max;	/* milliseconds */
};

/* A batch sweep's figures: batched attack steps of `batch` images. */
struct sweep_timing {
	int batch;
	struct timing step;		/* one attack_batch_step, ms */
};

static void bench_help(void)
{
	printf("usage: advex bench (--model FILE | --arch NAME) [--threads T]\n"
	       "                   [--steps N] [--warmup W] [--layers] [--batch B]\n"
	       "                   [--json]\n\n"
	       "Time one attack step (forward + cross-entropy on the logits +\n"
	       "backward to the input, batch 1) and one forward pass; report the\n"
	       "median, min and max over N runs after W warm-up runs, and the\n"
	       "effective GFLOP/s (multiply-adds of the convolutions and dense\n"
	       "layers, counted as direct convolution, x2, / time).\n"
	       "bench/compare.sh runs this beside PyTorch for the ratio.\n\n%s"
	       "  --steps N        timed runs of each (default 20)\n"
	       "  --warmup W       untimed runs first (default 3)\n"
	       "  --layers         also time every layer over N more steps and print\n"
	       "                   the mean forward, backward and gradient-norm ms\n"
	       "                   per layer (JSON: \"layers\": [{\"layer\", \"kind\",\n"
	       "                   \"forward_ms\", \"backward_ms\", \"norm_ms\"}])\n"
	       "  --batch B        also time a batch sweep as `advex attack --images\n"
	       "                   --batch B` runs it: attack steps (targeted I-FGSM,\n"
	       "                   with the gradient statistics and diagnosis the run\n"
	       "                   log keeps) of B images per forward + backward, N runs\n"
	       "                   after W warm-up; report images per second (image\n"
	       "                   steps: one step of one image each) and ms per image\n"
	       "                   (JSON: \"sweep\": {\"batch\", \"images_per_s\",\n"
	       "                   \"ms_per_image\", \"step_ms\": {...}}). 1..%d; --batch 1\n"
	       "                   gives the batch-1 figure to compare with\n"
	       "  --json           {\"threads\", \"step_ms\": {median, min, max},\n"
	       "                    \"forward_ms\": {...}, \"gflop_forward\", ...}\n",
	       source_model_help, CLI_MAX_BATCH);
}


static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static struct timing summarize(double *t, int n)
{
	struct timing r;

	qsort(t, (size_t)n, sizeof *t, cmp_double);
	r.min = t[0];
	r.max = t[n - 1];
	r.median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
	return r;
}

static void step(struct net *n, const float *x, float *dz, float *g,
		 int target)
{
	const struct net_info *in = net_get_info(n);
	const float *z = net_forward(n, x, 1);

	loss_ce(in->n_classes, z, target, NULL, dz);
	net_backward(n, dz, g);
}

static json_t *timing_json(struct timing t)
{
	return json_pack("{s:f, s:f, s:f}", "median", t.median, "min", t.min,
			 "max", t.max);
}

/* Mean per-layer times over `steps` more steps (net_set_profile). */
static json_t *layer_profile(struct net *n, const float *x, float *dz,
			     float *g, int steps)
{
	const struct net_info *in = net_get_info(n);
	const double *p;
	json_t *arr = json_array();
	int k, i, nl = in->n_layers;

	if (!arr || net_set_profile(n, 1) != ST_OK) {
		json_decref(arr);
		return NULL;
	}
	for (k = 0; k < steps; k++)
		step(n, x, dz, g, 0);
	p = net_profile(n);
	for (i = 0; i < nl; i++) {
		struct net_layer_info li;
		char name[64];

		net_layer(n, i, &li);
		snprintf(name, sizeof name, "%d %s", i, li.name);
		json_array_append_new(arr, json_pack(
			"{s:s, s:s, s:f, s:f, s:f}", "layer", name, "kind", li.kind,
			"forward_ms", p[i] / steps, "backward_ms", p[nl + i] / steps,
			"norm_ms", p[2 * nl + i] / steps));
	}
	net_set_profile(n, 0);
	return arr;
}

static void print_layers(json_t *arr)
{
	double tf = 0, tb = 0, tn = 0;
	size_t i;
	json_t *o;

	printf("\n%-22s %-24s %9s %9s %9s\n", "layer", "kind", "forward",
	       "backward", "norm");
	json_array_foreach(arr, i, o) {
		double f = json_real_value(json_object_get(o, "forward_ms"));
		double b = json_real_value(json_object_get(o, "backward_ms"));
		double m = json_real_value(json_object_get(o, "norm_ms"));

		printf("%-22s %-24s %7.3fms %7.3fms %7.3fms\n",
		       json_string_value(json_object_get(o, "layer")),
		       json_string_value(json_object_get(o, "kind")), f, b, m);
		tf += f, tb += b, tn += m;
	}
	printf("%-22s %-24s %7.3fms %7.3fms %7.3fms\n", "total", "", tf, tb, tn);
}

/* Slot s's attack: image s of the rng stream, targeted I-FGSM toward class
 * s + 1, with more iterations than the bench will ever step, so that every
 * timed step is a full step of every image. */
static enum status sweep_slot(struct attack_batch *b, int s, float *x,
			      size_t npix, int n_classes, struct rng *r, int iters,
			      char *err)
{
	struct attack_params p = attack_params_default();
	struct attack *a = attack_batch_attack(b, s);
	size_t i;

	for (i = 0; i < npix; i++)
		x[i] = (float)rng_uniform(r);
	p.kind = ATTACK_BIM;
	p.iters = iters;
	p.target = (s + 1) % n_classes;
	if (attack_reset(a, x, &p, err) != ST_OK)
		return ST_ERR_ARG;
	return attack_batch_set_op(b, s, ATTACK_OP_STEP, err);
}

/* Time attack_batch_step over `batch` images on a net made for them. */
static int sweep_time(struct net *n, int batch, int steps, int warmup,
		      struct sweep_timing *out)
{
	const struct net_info *in = net_get_info(n);
	size_t npix = 3 * (size_t)in->in_h * in->in_w;
	struct attack_report *reps = calloc((size_t)batch, sizeof *reps);
	double *ts = malloc(sizeof *ts * (size_t)steps);
	float *x = malloc(sizeof *x * npix);
	struct attack_batch *b = NULL;
	char err[ERR_MAX] = "out of memory";
	struct rng r;
	int s, k, rc = EXIT_OK;

	rng_seed(&r, 7);
	if (!reps || !ts || !x || attack_batch_new(n, batch, &b, err) != ST_OK) {
		rc = cli_fail("%s", err);
		goto out;
	}
	for (s = 0; s < batch; s++)
		if (sweep_slot(b, s, x, npix, in->n_classes, &r, steps + warmup + 1,
			       err) != ST_OK) {
			rc = cli_fail("%s", err);
			goto out;
		}
	for (k = 0; k < warmup; k++)
		attack_batch_step(b, reps);
	for (k = 0; k < steps; k++) {
		double t0 = clock_ms();

		attack_batch_step(b, reps);
		ts[k] = clock_ms() - t0;
	}
	out->batch = batch;
	out->step = summarize(ts, steps);
out:
	attack_batch_free(b);
	free(reps), free(ts), free(x);
	return rc;
}

static json_t *sweep_json(const struct sweep_timing *sw)
{
	return json_pack("{s:i, s:f, s:f, s:o}", "batch", sw->batch,
			 "images_per_s", 1e3 * sw->batch / sw->step.median,
			 "ms_per_image", sw->step.median / sw->batch,
			 "step_ms", timing_json(sw->step));
}

static void print_sweep(const struct sweep_timing *sw)
{
	printf("\nbatch sweep, %d image%s per forward + backward (attack steps):\n"
	       "%-28s %7.2fms %7.2fms %7.2fms\n"
	       "%-28s %7.2fms  %.1f images/s\n", sw->batch, sw->batch == 1 ? "" : "s",
	       "batched step", sw->step.median, sw->step.min, sw->step.max,
	       "per image", sw->step.median / sw->batch,
	       1e3 * sw->batch / sw->step.median);
}

static int run(struct net *n, int steps, int warmup, int json, int layers,
	       const struct sweep_timing *sw)
{
	const struct net_info *in = net_get_info(n);
	size_t npix = 3 * (size_t)in->in_h * in->in_w, i;
	float *x = malloc(sizeof *x * npix), *g = malloc(sizeof *g * npix);
	float *dz = malloc(sizeof *dz * (size_t)in->n_classes);
	double *ts = malloc(sizeof *ts * (size_t)steps), flop = cli_forward_flop(n);
	struct timing st, fw;
	json_t *prof = NULL;
	struct rng r;
	int k;

	if (!x || !g || !dz || !ts) {
		free(x), free(g), free(dz), free(ts);
		return cli_fail("out of memory");
	}
	rng_seed(&r, 7);
	for (i = 0; i < npix; i++)
		x[i] = (float)rng_uniform(&r);
	for (k = 0; k < warmup; k++)
		step(n, x, dz, g, 0);
	for (k = 0; k < steps; k++) {
		double t0 = clock_ms();
		step(n, x, dz, g, 0);
		ts[k] = clock_ms() - t0;
	}
	st = summarize(ts, steps);
	for (k = 0; k < steps; k++) {
		double t0 = clock_ms();
		net_forward(n, x, 1);
		ts[k] = clock_ms() - t0;
	}
	fw = summarize(ts, steps);
	if (layers && !(prof = layer_profile(n, x, dz, g, steps))) {
		free(x), free(g), free(dz), free(ts);
		return cli_fail("out of memory");
	}
	if (json) {
		json_t *o = json_pack("{s:i, s:i, s:o, s:o, s:f, s:f, s:f}",
				      "threads", net_get_info(n)->threads,
				      "winograd_layers", net_winograd_layers(n),
				      "step_ms", timing_json(st),
				      "forward_ms", timing_json(fw),
				      "gflop_forward", flop / 1e9,
				      "gflops_step", 2 * flop / 1e6 / st.median,
				      "gflops_forward", flop / 1e6 / fw.median);
		if (prof)
			json_object_set_new(o, "layers", prof);
		if (sw)
			json_object_set_new(o, "sweep", sweep_json(sw));
		char *s = jsonout_dumps(o, JSON_PRESERVE_ORDER);

		if (s)
			puts(s);
		free(s);
		json_decref(o);
	} else {
		printf("threads %d, %d timed runs after %d warm-up, %.3f GFLOP per forward, "
		       "%d conv layers on Winograd\n", net_get_info(n)->threads, steps, warmup,
		       flop / 1e9, net_winograd_layers(n));
		printf("%-28s %9s %9s %9s %10s\n", "", "median", "min", "max", "GFLOP/s");
		printf("%-28s %7.2fms %7.2fms %7.2fms %10.1f\n",
		       "step (forward + backward)", st.median, st.min, st.max,
		       2 * flop / 1e6 / st.median);
		printf("%-28s %7.2fms %7.2fms %7.2fms %10.1f\n", "forward", fw.median,
		       fw.min, fw.max, flop / 1e6 / fw.median);
		if (prof)
			print_layers(prof);
		if (sw)
			print_sweep(sw);
		json_decref(prof);
	}
	free(x), free(g), free(dz), free(ts);
	return EXIT_OK;
}

int cmd_bench(int argc, char **argv)
{
	static const struct option longopts[] = {
		SOURCE_MODEL_OPTIONS,
		{ "steps", required_argument, NULL, OPT_STEPS },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "layers", no_argument, NULL, OPT_LAYERS },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct source_opts mo = { .seed = 1 };
	long steps = 20, warmup = 3, batch = 0;
	struct sweep_timing sw;
	char used[sizeof mo.used];
	struct net *n;
	int c, json = 0, layers = 0, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = cli_model_opt(&mo, "bench", c, optarg);

		if (r < 0)
			return EXIT_USAGE;
		if (r)
			continue;
		switch (c) {
		case OPT_STEPS:
			if ((steps = source_parse_long(optarg, 1, 100000)) < 0)
				return cli_usage_error("bench", "--steps wants 1..100000");
			break;
		case OPT_WARMUP:
			if ((warmup = source_parse_long(optarg, 0, 1000)) < 0)
				return cli_usage_error("bench", "--warmup wants 0..1000");
			break;
		case OPT_JSON: json = 1; break;
		case OPT_LAYERS: layers = 1; break;
		case OPT_BATCH:
			if ((batch = source_parse_long(optarg, 1, CLI_MAX_BATCH)) < 0)
				return cli_usage_error("bench", "--batch wants 1..%d", CLI_MAX_BATCH);
			break;
		case 'h': bench_help(); return EXIT_OK;
		default: return cli_usage_error("bench", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
	source_set_threads(mo.threads);
	/* the sweep on a net of its own: a net made for a batch may choose
	 * other kernels, and the batch-1 figures stay those of a batch-1 net */
	if (batch) {
		if ((rc = cli_load_net(&mo, "bench", (int)batch, 0, &n)))
			return rc;
		rc = sweep_time(n, (int)batch, (int)steps, (int)warmup, &sw);
		net_free(n);
		if (rc)
			return rc;
		/* the same file again, without a second note about the default */
		if (!mo.model && !mo.arch) {
			snprintf(used, sizeof used, "%s", mo.used);
			mo.model = used;
		}
	}
	rc = cli_load_net(&mo, "bench", 1, 0, &n);
	if (rc)
		return rc;
	rc = run(n, (int)steps, (int)warmup, json, layers, batch ? &sw : NULL);
	net_free(n);
	return rc;
}
