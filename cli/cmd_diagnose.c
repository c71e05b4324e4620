/* cmd_diagnose.c - `advex diagnose`: one forward and one backward of the
 * cross-entropy on the logits toward a target class, and what the input
 * gradient looks like. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "diag.h"
#include "image.h"
#include "jsonout.h"
#include "loss.h"
#include "npy.h"

enum {
	OPT_IMAGE = OPT_FIRST_FREE, OPT_TARGET, OPT_GRAD_OUT, OPT_DATA, OPT_SPLIT,
	OPT_LOSS, OPT_CLIP_EPS, OPT_KAPPA
};

struct diag {
	const float *out;	/* n_classes model outputs, owned by the net */
	float *probs;		/* n_classes */
	double loss;
	struct loss_params lp;
	struct loss_info li;
	struct diag_grad g;
	char why[DIAG_EXPLAIN_MAX];
	char bad_weights[DIAG_EXPLAIN_MAX];	/* "" when all are finite */
	size_t n_bad_weights;
	int pred, target, label;
	char name[512];		/* the image */
};

static void diagnose_help(void)
{
	printf("usage: advex diagnose (--model FILE | --arch NAME) --image REF\n"
	       "                      --target CLASS [--loss L] [--data DIR [--resize]] [--json]\n"
	       "                      [--grad-out FILE.npy]\n\n"
	       "One forward and one backward pass of a loss toward CLASS (a class name\n"
	       "or index): the logits, probabilities, loss, prediction, the input\n"
	       "gradient's norms, exact zeros and histogram of log10|g|, the gradient's\n"
	       "L2 norm at every layer boundary, and - when the gradient is zero or\n"
	       "vanishing - a one-sentence diagnosis of why.\n\n%s"
	       "  --image REF      a PNG file, or an image index of --data\n"
	       "  --data DIR       STL-10 or CIFAR-10 binary directory, or a folder of\n"
	       "                   class folders of PNGs\n"
	       "  --split S        train, test (default) or unlabeled (STL-10)\n"
	       "  --target CLASS   target class, by name or index\n"
	       "  --loss L         ce (default), prob-ce, prob-naive or cw (see advex attack)\n"
	       "  --clip-eps E     prob-ce clip (default 1e-7, as Keras)\n"
	       "  --kappa K        cw margin (default 0)\n"
	       "  --json           one JSON object with keys logits, probs, loss, pred,\n"
	       "                   target, grad_l1, grad_l2, grad_linf, zero_fraction,\n"
	       "                   histogram ({edges, counts, zero, nan, inf, tiny, huge}:\n"
	       "                   counts[i] is the number of |g| in [edges[i], edges[i+1])),\n"
	       "                   layer_grad_norms (list of {layer, op, name, inputs, l2}:\n"
	       "                   the gradient at the input of each node - over all its\n"
	       "                   inputs, named in inputs (\"input\": the model input);\n"
	       "                   the last entry, op \"output\", is the gradient w.r.t.\n"
	       "                   the model output),\n"
	       "                   diagnosis (null when healthy), and more\n"
	       "  --grad-out FILE  write the input gradient as NumPy .npy, float32 1x3xHxW\n%s",
	       source_model_help, source_resize_help);
}

static json_t *layer_norms_json(const struct net *n)
{
	const struct net_info *in = net_get_info(n);
	const double *norms = net_grad_norms(n);
	struct net_layer_info li;
	json_t *a = json_array();
	int i;

	for (i = 0; i < in->n_layers; i++) {
		json_t *ins = json_array();
		int k;

		net_layer(n, i, &li);
		for (k = 0; k < li.n_inputs; k++)
			json_array_append_new(ins, json_string(net_tensor_id(n, li.inputs[k])));
		json_array_append_new(a, json_pack("{s:i, s:s, s:s, s:o, s:f}", "layer", i,
						   "op", li.kind, "name", li.name,
						   "inputs", ins, "l2", norms[i]));
	}
	net_layer(n, in->n_layers - 1, &li);
	json_array_append_new(a, json_pack("{s:i, s:s, s:s, s:[s], s:f}", "layer",
					   in->n_layers, "op", "output", "name",
					   in->outputs_probs ? "probabilities" : "logits",
					   "inputs", li.id, "l2", norms[in->n_layers]));
	return a;
}

static json_t *histogram_json(const struct diag_grad *g)
{
	json_t *edges = json_array(), *counts = json_array();
	int i;

	for (i = 0; i <= DIAG_HIST_BINS; i++)
		json_array_append_new(edges, json_real(diag_hist_edge(i)));
	for (i = 0; i < DIAG_HIST_BINS; i++)
		json_array_append_new(counts, json_integer((json_int_t)g->hist[i]));
	return json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:I}", "edges", edges,
			 "counts", counts, "zero", (json_int_t)g->n_zero,
			 "nan", (json_int_t)g->n_nan, "inf", (json_int_t)g->n_inf,
			 "tiny", (json_int_t)g->n_tiny, "huge", (json_int_t)g->n_huge);
}

/* JSON has no inf/NaN: such values are written as strings. */
static json_t *num_json(double v)
{
	if (isnan(v))
		return json_string("nan");
	if (isinf(v))
		return json_string(v > 0 ? "inf" : "-inf");
	return json_real(v);
}

static void print_json(const struct net *n, const struct diag *d)
{
	const struct net_info *in = net_get_info(n);
	json_t *o = json_object(), *lg = json_array(), *pr = json_array();
	char *s;
	int i;

	for (i = 0; i < in->n_classes; i++) {
		json_array_append_new(lg, num_json(d->out[i]));
		json_array_append_new(pr, num_json(d->probs[i]));
	}
	json_object_set_new(o, "logits", lg);
	json_object_set_new(o, "probs", pr);
	json_object_set_new(o, "loss", num_json(d->loss));
	json_object_set_new(o, "loss_mode", json_string(loss_mode_name(d->lp.mode)));
	json_object_set_new(o, "pred", json_integer(d->pred));
	json_object_set_new(o, "pred_name", json_string(in->classes[d->pred]));
	json_object_set_new(o, "target", json_integer(d->target));
	json_object_set_new(o, "target_name", json_string(in->classes[d->target]));
	json_object_set_new(o, "target_prob", num_json(d->probs[d->target]));
	json_object_set_new(o, "label", d->label >= 0 ? json_integer(d->label) : json_null());
	json_object_set_new(o, "image", json_string(d->name));
	json_object_set_new(o, "grad_l1", num_json(d->g.l1));
	json_object_set_new(o, "grad_l2", num_json(d->g.l2));
	json_object_set_new(o, "grad_linf", num_json(d->g.linf));
	json_object_set_new(o, "zero_fraction", json_real(d->g.zero_frac));
	json_object_set_new(o, "histogram", histogram_json(&d->g));
	json_object_set_new(o, "layer_grad_norms", layer_norms_json(n));
	json_object_set_new(o, "outputs_probs", json_boolean(in->outputs_probs));
	json_object_set_new(o, "diagnosis", d->why[0] ? json_string(d->why) : json_null());
	json_object_set_new(o, "nonfinite_params", json_integer((json_int_t)d->n_bad_weights));
	json_object_set_new(o, "weights_warning", d->bad_weights[0] ?
			    json_string(d->bad_weights) : json_null());
	s = jsonout_dumps(o, JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

static void print_histogram(const struct diag_grad *g)
{
	size_t max = g->n_zero, i;
	int b;

	for (b = 0; b < DIAG_HIST_BINS; b++)
		if (g->hist[b] > max)
			max = g->hist[b];
	printf("\nhistogram of log10|gradient| (%zu components):\n", g->n);
	for (b = DIAG_HIST_BINS - 1; b >= 0; b--) {
		printf("  [1e%+03d, 1e%+03d) %8zu ", DIAG_HIST_LO_EXP + b,
		       DIAG_HIST_LO_EXP + b + 1, g->hist[b]);
		for (i = 0; max && i < 40 * g->hist[b] / max; i++)
			putchar('#');
		putchar('\n');
	}
	printf("  exactly zero      %8zu ", g->n_zero);
	for (i = 0; max && i < 40 * g->n_zero / max; i++)
		putchar('#');
	printf("\n  below 1e-12 %zu, 1e2 and above %zu, NaN %zu, Inf %zu\n", g->n_tiny,
	       g->n_huge, g->n_nan, g->n_inf);
}

static void print_text(const struct net *n, const struct diag *d)
{
	const struct net_info *in = net_get_info(n);
	const double *norms = net_grad_norms(n);
	struct net_layer_info li;
	char cn[CLI_NAME_MAX], shown[sizeof d->name * 4], why[sizeof d->why * 4];
	int i;

	printf("image        %s%s%s\n", cli_printable(d->name, shown, sizeof shown),
	       d->label >= 0 ? ", true label " : "",
	       d->label >= 0 ? cli_class_name(in, d->label, cn, sizeof cn) : "");
	printf("%-12s %14s %14s\n", "class", in->outputs_probs ? "output" : "logit",
	       "probability");
	for (i = 0; i < in->n_classes; i++)
		printf("%-12s %14.6g %14.6g%s%s\n", cli_class_name(in, i, cn, sizeof cn),
		       d->out[i], d->probs[i],
		       i == d->pred ? "  <- predicted" : "",
		       i == d->target ? "  <- target" : "");
	printf("\nloss         %.6g (%s toward %s)\n", d->loss,
	       loss_mode_name(d->lp.mode), cli_class_name(in, d->target, cn, sizeof cn));
	printf("prediction   %s (p = %.6g)\n", cli_class_name(in, d->pred, cn, sizeof cn),
	       d->probs[d->pred]);
	printf("input grad   L1 %.6g  L2 %.6g  Linf %.6g  exactly zero %.2f%%\n",
	       d->g.l1, d->g.l2, d->g.linf, 100.0 * d->g.zero_frac);
	print_histogram(&d->g);
	printf("\ngradient L2 norm at each node's input(s), from the loss back:\n");
	printf("  %-4s %-24s %-20s %12.6g\n", "out", "output", "", norms[in->n_layers]);
	for (i = in->n_layers - 1; i >= 0; i--) {
		char name[160];

		net_layer(n, i, &li);
		cli_printable(li.id[0] == '#' ? "" : li.id, name, sizeof name);
		printf("  %-4d %-24s %-20s %12.6g\n", i, li.kind, name, norms[i]);
	}
	printf("  %-4s %-22s %-14s %12.6g\n", "px", "pixels", "", net_pixel_grad_norm(n));
	/* bad weights come first: they explain whatever follows */
	if (d->bad_weights[0])
		printf("\nweights      %s\n", cli_printable(d->bad_weights, why, sizeof why));
	printf("\ndiagnosis    %s\n", d->why[0] ? cli_printable(d->why, why, sizeof why) :
	       d->bad_weights[0] ? "see the weights above" :
	       "healthy: the gradient is neither zero nor vanishing");
}

struct diag_args {
	struct source_opts mo;
	const char *image, *target, *grad_out, *data, *split;
	int json, resize;
	struct loss_params lp;
};

static int run(struct net *n, struct diag_args *a, struct dataset *ds)
{
	const struct net_info *in = net_get_info(n);
	size_t npix = 3 * (size_t)in->in_h * in->in_w;
	float *x = malloc(sizeof *x * npix), *g = malloc(sizeof *g * npix);
	float *dz = malloc(sizeof *dz * (size_t)in->n_classes);
	struct diag d = { .lp = a->lp };
	struct diag_input di;
	char err[ERR_MAX];
	int rc = EXIT_FAIL, i;

	d.probs = malloc(sizeof *d.probs * (size_t)in->n_classes);
	if (!x || !g || !dz || !d.probs) {
		rc = cli_fail("out of memory");
		goto out;
	}
	d.target = cli_class_index(in, a->target);
	if (d.target < 0) {
		rc = EXIT_USAGE;
		goto out;
	}
	if ((rc = cli_load_image(a->image, ds, in, x, &d.label, d.name, sizeof d.name)))
		goto out;
	rc = EXIT_FAIL;
	d.out = net_forward(n, x, 1);
	d.loss = loss_eval(&d.lp, in->n_classes, d.out, in->outputs_probs, d.target, 0,
			   d.probs, dz, &d.li);
	for (i = 1, d.pred = 0; i < in->n_classes; i++)
		if (d.out[i] > d.out[d.pred])
			d.pred = i;
	net_backward(n, dz, g);
	diag_grad_stats(g, npix, &d.g);
	di = (struct diag_input){ &d.lp, &d.li, d.loss, in->classes, &d.g, n };
	diag_explain(&di, d.why, sizeof d.why);
	d.n_bad_weights = diag_nonfinite_params(n, &i, d.bad_weights,
						sizeof d.bad_weights);
	if (a->grad_out) {
		int shape[4] = { 1, 3, in->in_h, in->in_w };

		if (npy_write_f32(a->grad_out, shape, 4, g, err) != ST_OK) {
			rc = cli_fail("%s", err);
			goto out;
		}
	}
	if (a->json)
		print_json(n, &d);
	else
		print_text(n, &d);
	rc = EXIT_OK;
out:
	free(x);
	free(g);
	free(dz);
	free(d.probs);
	return rc;
}

int cmd_diagnose(int argc, char **argv)
{
	static const struct option longopts[] = {
		SOURCE_MODEL_OPTIONS,
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "grad-out", required_argument, NULL, OPT_GRAD_OUT },
		{ "data", required_argument, NULL, OPT_DATA },
		{ "split", required_argument, NULL, OPT_SPLIT },
		{ "loss", required_argument, NULL, OPT_LOSS },
		{ "clip-eps", required_argument, NULL, OPT_CLIP_EPS },
		{ "kappa", required_argument, NULL, OPT_KAPPA },
		{ "json", no_argument, NULL, OPT_JSON },
		SOURCE_RESIZE_OPTION,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct diag_args a = { .mo = { .seed = 1 }, .lp = loss_params_default() };
	struct dataset *ds = NULL;
	char err[ERR_MAX];
	struct net *n;
	double v;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = cli_model_opt(&a.mo, "diagnose", c, optarg);

		if (r < 0)
			return EXIT_USAGE;
		if (r)
			continue;
		switch (c) {
		case OPT_IMAGE: a.image = optarg; break;
		case OPT_TARGET: a.target = optarg; break;
		case OPT_GRAD_OUT: a.grad_out = optarg; break;
		case OPT_DATA: a.data = optarg; break;
		case OPT_SPLIT: a.split = optarg; break;
		case OPT_JSON: a.json = 1; break;
		case OPT_RESIZE: a.resize = 1; break;
		case OPT_LOSS:
			if (loss_mode_parse(optarg, &a.lp.mode, err) != ST_OK)
				return cli_usage_error("diagnose", "%s", err);
			break;
		case OPT_CLIP_EPS:
		case OPT_KAPPA:
			if (cli_parse_eps(optarg, &v) || v < 0 || (c == OPT_CLIP_EPS && (v <= 0 || v >= 0.5)))
				return cli_usage_error("diagnose", "%s: '%s' out of range",
						       c == OPT_KAPPA ? "--kappa (>= 0)" :
						       "--clip-eps (0 < e < 0.5)", optarg);
			*(c == OPT_KAPPA ? &a.lp.kappa : &a.lp.clip_eps) = v;
			break;
		case 'h': diagnose_help(); return EXIT_OK;
		default: return cli_usage_error("diagnose", "unknown option");
		}
	}
	if (cli_check_outputs(a.grad_out, NULL, NULL))
		return EXIT_FAIL;
	if (optind < argc)
		return cli_usage_error("diagnose", "unexpected argument '%s'", argv[optind]);
	if (!a.image || !a.target)
		return cli_usage_error("diagnose", "--image and --target are required");
	if ((rc = cli_check_image_ref("diagnose", a.image)))
		return rc;
	source_set_threads(a.mo.threads);
	if ((a.data || source_is_index(a.image)) &&
	    (rc = cli_open_data(a.data, a.split, &ds)))
		return rc;
	rc = cli_load_net(&a.mo, "diagnose", 1, 0, &n);
	/* without --resize the size is checked where the data is used */
	if (!rc && ds && a.resize)
		rc = cli_fit_data(ds, net_get_info(n), 1);
	if (!rc)
		rc = run(n, &a, ds);
	net_free(n);
	dataset_close(ds);
	return rc;
}
