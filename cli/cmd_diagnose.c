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
#include "image.h"
#include "loss.h"
#include "npy.h"

enum { OPT_IMAGE = OPT_FIRST_FREE, OPT_TARGET, OPT_GRAD_OUT };

struct diag {
	const float *logits;	/* n_classes, owned by the net */
	float *probs;		/* n_classes */
	double loss;
	int pred, target;
	double g_l1, g_l2, g_linf, zero_frac;
};

static void diagnose_help(void)
{
	printf("usage: advex diagnose (--model FILE | --arch NAME) --image FILE.png\n"
	       "                      --target CLASS [--json] [--grad-out FILE.npy]\n\n"
	       "One forward and one backward pass of the cross-entropy on the logits\n"
	       "toward CLASS (a class name or index): prints the logits, probabilities,\n"
	       "loss, prediction and the norms of the gradient w.r.t. the input pixels,\n"
	       "and the gradient's L2 norm at every layer boundary.\n\n%s"
	       "  --image FILE.png the input image (the model's input size)\n"
	       "  --target CLASS   target class, by name or index\n"
	       "  --json           one JSON object with keys logits, probs, loss, pred,\n"
	       "                   target, grad_l1, grad_l2, grad_linf, zero_fraction,\n"
	       "                   layer_grad_norms (list of {layer, op, name, l2}: the\n"
	       "                   gradient at the input of each layer; the last entry,\n"
	       "                   op \"output\", is the gradient w.r.t. the logits)\n"
	       "  --grad-out FILE  write the input gradient as NumPy .npy, float32 1x3xHxW\n",
	       cli_model_help);
}

static void grad_stats(struct diag *d, const float *g, size_t n)
{
	size_t i, zeros = 0;

	d->g_l1 = d->g_l2 = d->g_linf = 0.0;
	for (i = 0; i < n; i++) {
		double a = fabs((double)g[i]);

		d->g_l1 += a;
		d->g_l2 += a * a;
		if (a > d->g_linf)
			d->g_linf = a;
		zeros += g[i] == 0.0f;
	}
	d->g_l2 = sqrt(d->g_l2);
	d->zero_frac = (double)zeros / (double)n;
}

static json_t *layer_norms_json(const struct net *n)
{
	const struct net_info *in = net_get_info(n);
	const double *norms = net_grad_norms(n);
	struct net_layer_info li;
	json_t *a = json_array();
	int i;

	for (i = 0; i < in->n_layers; i++) {
		net_layer(n, i, &li);
		json_array_append_new(a, json_pack("{s:i, s:s, s:s, s:f}", "layer", i,
						   "op", li.kind, "name", li.name,
						   "l2", norms[i]));
	}
	json_array_append_new(a, json_pack("{s:i, s:s, s:s, s:f}", "layer",
					   in->n_layers, "op", "output", "name",
					   "logits", "l2", norms[in->n_layers]));
	return a;
}

static void print_json(const struct net *n, const struct diag *d)
{
	const struct net_info *in = net_get_info(n);
	json_t *o = json_object(), *lg = json_array(), *pr = json_array();
	char *s;
	int i;

	for (i = 0; i < in->n_classes; i++) {
		json_array_append_new(lg, json_real(d->logits[i]));
		json_array_append_new(pr, json_real(d->probs[i]));
	}
	json_object_set_new(o, "logits", lg);
	json_object_set_new(o, "probs", pr);
	json_object_set_new(o, "loss", json_real(d->loss));
	json_object_set_new(o, "loss_mode", json_string("ce"));
	json_object_set_new(o, "pred", json_integer(d->pred));
	json_object_set_new(o, "pred_name", json_string(in->classes[d->pred]));
	json_object_set_new(o, "target", json_integer(d->target));
	json_object_set_new(o, "target_name", json_string(in->classes[d->target]));
	json_object_set_new(o, "grad_l1", json_real(d->g_l1));
	json_object_set_new(o, "grad_l2", json_real(d->g_l2));
	json_object_set_new(o, "grad_linf", json_real(d->g_linf));
	json_object_set_new(o, "zero_fraction", json_real(d->zero_frac));
	json_object_set_new(o, "layer_grad_norms", layer_norms_json(n));
	s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

static void print_text(const struct net *n, const struct diag *d)
{
	const struct net_info *in = net_get_info(n);
	const double *norms = net_grad_norms(n);
	struct net_layer_info li;
	int i;

	printf("%-12s %14s %14s\n", "class", "logit", "probability");
	for (i = 0; i < in->n_classes; i++)
		printf("%-12s %14.6g %14.6g%s%s\n", in->classes[i], d->logits[i],
		       d->probs[i], i == d->pred ? "  <- predicted" : "",
		       i == d->target ? "  <- target" : "");
	printf("\nloss         %.6g (cross-entropy on the logits toward %s)\n",
	       d->loss, in->classes[d->target]);
	printf("prediction   %s (p = %.6g)\n", in->classes[d->pred], d->probs[d->pred]);
	printf("input grad   L1 %.6g  L2 %.6g  Linf %.6g  exactly zero %.2f%%\n",
	       d->g_l1, d->g_l2, d->g_linf, 100.0 * d->zero_frac);
	printf("\ngradient L2 norm at each layer's input, from the loss back:\n");
	printf("  %-4s %-22s %-14s %12.6g\n", "out", "logits", "", norms[in->n_layers]);
	for (i = in->n_layers - 1; i >= 0; i--) {
		net_layer(n, i, &li);
		printf("  %-4d %-22s %-14s %12.6g\n", i, li.kind, li.name, norms[i]);
	}
	printf("  %-4s %-22s %-14s %12.6g\n", "px", "pixels", "", net_pixel_grad_norm(n));
}

static int run(struct net *n, const char *image, const char *target_s,
	       const char *grad_out, int json)
{
	const struct net_info *in = net_get_info(n);
	size_t npix = 3 * (size_t)in->in_h * in->in_w;
	float *x = malloc(sizeof *x * npix), *g = malloc(sizeof *g * npix);
	float *dz = malloc(sizeof *dz * (size_t)in->n_classes);
	struct diag d = { 0 };
	char err[ERR_MAX];
	int rc = EXIT_FAIL, i;

	d.probs = malloc(sizeof *d.probs * (size_t)in->n_classes);
	if (!x || !g || !dz || !d.probs) {
		rc = cli_fail("out of memory");
		goto out;
	}
	d.target = cli_class_index(in, target_s);
	if (d.target < 0)
		goto out;
	if (image_load_png(image, in->in_h, in->in_w, x, err) != ST_OK) {
		rc = cli_fail("%s", err);
		goto out;
	}
	d.logits = net_forward(n, x, 1);
	d.loss = loss_ce(in->n_classes, d.logits, d.target, d.probs, dz);
	for (i = 1, d.pred = 0; i < in->n_classes; i++)
		if (d.logits[i] > d.logits[d.pred])
			d.pred = i;
	net_backward(n, dz, g);
	grad_stats(&d, g, npix);
	if (grad_out) {
		int shape[4] = { 1, 3, in->in_h, in->in_w };

		if (npy_write_f32(grad_out, shape, 4, g, err) != ST_OK) {
			rc = cli_fail("%s", err);
			goto out;
		}
	}
	if (json)
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
		CLI_MODEL_OPTIONS,
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "grad-out", required_argument, NULL, OPT_GRAD_OUT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_model_opts mo = { .seed = 1 };
	const char *image = NULL, *target = NULL, *grad_out = NULL;
	struct net *n;
	int c, json = 0, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = cli_model_opt(&mo, "diagnose", c, optarg);

		if (r < 0)
			return EXIT_USAGE;
		if (r)
			continue;
		switch (c) {
		case OPT_IMAGE: image = optarg; break;
		case OPT_TARGET: target = optarg; break;
		case OPT_GRAD_OUT: grad_out = optarg; break;
		case OPT_JSON: json = 1; break;
		case 'h': diagnose_help(); return EXIT_OK;
		default: return cli_usage_error("diagnose", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("diagnose", "unexpected argument '%s'", argv[optind]);
	if (!image || !target)
		return cli_usage_error("diagnose", "--image and --target are required");
	cli_set_threads(mo.threads);
	rc = cli_load_net(&mo, "diagnose", 1, 0, &n);
	if (rc)
		return rc;
	rc = run(n, image, target, grad_out, json);
	net_free(n);
	return rc;
}
