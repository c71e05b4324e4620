/* cmd_bench.c - `advex bench`: median time of one attack step (forward,
 * cross-entropy on the logits, backward to the input; batch 1) and of one
 * forward pass. Speed is measured here, never asserted in tests. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blas.h"
#include "cli.h"
#include "loss.h"
#include "rng.h"

enum { OPT_STEPS = OPT_FIRST_FREE, OPT_WARMUP, OPT_LAYERS };

struct timing {
	double median, min, max;	/* milliseconds */
};

static void bench_help(void)
{
	printf("usage: advex bench (--model FILE | --arch NAME) [--threads T]\n"
	       "                   [--steps N] [--warmup W] [--layers] [--json]\n\n"
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
	       "  --json           {\"threads\", \"step_ms\": {median, min, max},\n"
	       "                    \"forward_ms\": {...}, \"gflop_forward\", ...}\n",
	       cli_model_help);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
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

/* Multiply-adds x 2 of one forward pass, as direct convolution. */
static double forward_flop(const struct net *n)
{
	const struct net_info *in = net_get_info(n);
	struct net_layer_info li;
	double f = 0.0;
	int i;

	for (i = 0; i < in->n_layers; i++) {
		net_layer(n, i, &li);
		if (li.op == NET_CONV || li.op == NET_DENSE)
			/* every weight meets every output position once */
			f += 2.0 * (double)li.params * li.h * li.w;
	}
	return f;
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

static int run(struct net *n, int steps, int warmup, int json, int layers)
{
	const struct net_info *in = net_get_info(n);
	size_t npix = 3 * (size_t)in->in_h * in->in_w, i;
	float *x = malloc(sizeof *x * npix), *g = malloc(sizeof *g * npix);
	float *dz = malloc(sizeof *dz * (size_t)in->n_classes);
	double *ts = malloc(sizeof *ts * (size_t)steps), flop = forward_flop(n);
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
		double t0 = now_ms();
		step(n, x, dz, g, 0);
		ts[k] = now_ms() - t0;
	}
	st = summarize(ts, steps);
	for (k = 0; k < steps; k++) {
		double t0 = now_ms();
		net_forward(n, x, 1);
		ts[k] = now_ms() - t0;
	}
	fw = summarize(ts, steps);
	if (layers && !(prof = layer_profile(n, x, dz, g, steps))) {
		free(x), free(g), free(dz), free(ts);
		return cli_fail("out of memory");
	}
	if (json) {
		json_t *o = json_pack("{s:i, s:i, s:o, s:o, s:f, s:f, s:f}",
				      "threads", blas_get_threads(),
				      "winograd_layers", net_winograd_layers(n),
				      "step_ms", timing_json(st),
				      "forward_ms", timing_json(fw),
				      "gflop_forward", flop / 1e9,
				      "gflops_step", 2 * flop / 1e6 / st.median,
				      "gflops_forward", flop / 1e6 / fw.median);
		if (prof)
			json_object_set_new(o, "layers", prof);
		char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));

		if (s)
			puts(s);
		free(s);
		json_decref(o);
	} else {
		printf("threads %d, %d timed runs after %d warm-up, %.3f GFLOP per forward, "
		       "%d conv layers on Winograd\n", blas_get_threads(), steps, warmup,
		       flop / 1e9, net_winograd_layers(n));
		printf("%-28s %9s %9s %9s %10s\n", "", "median", "min", "max", "GFLOP/s");
		printf("%-28s %7.2fms %7.2fms %7.2fms %10.1f\n",
		       "step (forward + backward)", st.median, st.min, st.max,
		       2 * flop / 1e6 / st.median);
		printf("%-28s %7.2fms %7.2fms %7.2fms %10.1f\n", "forward", fw.median,
		       fw.min, fw.max, flop / 1e6 / fw.median);
		if (prof)
			print_layers(prof);
		json_decref(prof);
	}
	free(x), free(g), free(dz), free(ts);
	return EXIT_OK;
}

int cmd_bench(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_MODEL_OPTIONS,
		{ "steps", required_argument, NULL, OPT_STEPS },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "layers", no_argument, NULL, OPT_LAYERS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_model_opts mo = { .seed = 1 };
	long steps = 20, warmup = 3;
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
			if ((steps = cli_parse_long(optarg, 1, 100000)) < 0)
				return cli_usage_error("bench", "--steps wants 1..100000");
			break;
		case OPT_WARMUP:
			if ((warmup = cli_parse_long(optarg, 0, 1000)) < 0)
				return cli_usage_error("bench", "--warmup wants 0..1000");
			break;
		case OPT_JSON: json = 1; break;
		case OPT_LAYERS: layers = 1; break;
		case 'h': bench_help(); return EXIT_OK;
		default: return cli_usage_error("bench", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
	cli_set_threads(mo.threads);
	rc = cli_load_net(&mo, "bench", 1, 0, &n);
	if (rc)
		return rc;
	rc = run(n, (int)steps, (int)warmup, json, layers);
	net_free(n);
	return rc;
}
