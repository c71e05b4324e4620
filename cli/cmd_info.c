/* cmd_info.c - `advex info`: what a model file holds. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "diag.h"
#include "jsonout.h"

static void info_help(void)
{
	printf("usage: advex info (--model FILE | --arch NAME) [--json]\n\n"
	       "Print the graph: one row per node in topological order (index, kind,\n"
	       "name, inputs as node indices - 'in' is the model input -, output\n"
	       "shape, parameters), the total parameter count, the preprocessing and\n"
	       "the classes.\n\n%s"
	       "  --json           one JSON object instead of the table\n"
	       "                   (layers: index, kind, name, id, inputs (ids, \"input\"\n"
	       "                   for the model input), shape, params, folded_bn,\n"
	       "                   fused_relu: a conv that applies the next ReLU itself)\n",
	       source_model_help);
}

static void shape_str(const struct net_layer_info *li, char *buf, size_t n)
{
	if (li->flat)
		snprintf(buf, n, "%d", li->c);
	else
		snprintf(buf, n, "%dx%dx%d", li->c, li->h, li->w);
}

/* Inputs as node indices, "in" for the model input: "3,7". */
static void inputs_str(const struct net_layer_info *li, char *buf, size_t n)
{
	size_t len = 0;
	int k;

	buf[0] = '\0';
	for (k = 0; k < li->n_inputs && len + 12 < n; k++) {
		if (li->inputs[k] < 0)
			len += (size_t)snprintf(buf + len, n - len, "%sin", k ? "," : "");
		else
			len += (size_t)snprintf(buf + len, n - len, "%s%d", k ? "," : "",
						li->inputs[k]);
	}
}

static void print_table(const struct net *n)
{
	char source[CLI_NAME_MAX * 4];
	const struct net_info *in = net_get_info(n);
	struct net_layer_info li;
	char shape[48], inputs[64], name[160];
	int i;

	printf("%-4s %-24s %-20s %-8s %-14s %12s\n", "#", "kind", "name", "inputs",
	       "output", "params");
	printf("%-4s %-24s %-20s %-8s %dx%dx%-10d %12s\n", "in", "input (pixels)",
	       "", "", in->in_c, in->in_h, in->in_w, "");
	for (i = 0; i < in->n_layers; i++) {
		net_layer(n, i, &li);
		shape_str(&li, shape, sizeof shape);
		inputs_str(&li, inputs, sizeof inputs);
		cli_printable(li.id[0] == '#' ? "-" : li.id, name, sizeof name);
		printf("%-4d %-24s %-20s %-8s %-14s %12zu%s\n", i, li.kind, name,
		       inputs, shape, li.params,
		       li.folded_bn ? "  (batch norm folded in)" : "");
	}
	printf("\nparameters     %zu (%.2f M, %.1f MiB as float32)\n", in->n_params,
	       in->n_params / 1e6, in->n_params * 4.0 / 1048576.0);
	printf("input          %d x %d x %d pixels in [0,1], RGB\n", in->in_c,
	       in->in_h, in->in_w);
	printf("preprocessing  x' = (pixel * %g - mean) / std, channel order %s\n",
	       in->scale, in->bgr ? "BGR" : "RGB");
	printf("  mean         %g %g %g\n", in->mean[0], in->mean[1], in->mean[2]);
	printf("  std          %g %g %g\n", in->std[0], in->std[1], in->std[2]);
	printf("output         %s%s\n",
	       in->outputs_probs ? "probabilities (the last layer is a softmax)" : "logits",
	       in->removed_softmax ? " (a final softmax was removed on import)" : "");
	printf("classes        %d:", in->n_classes);
	for (i = 0; i < in->n_classes; i++)
		printf("%s %s", i ? "," : "", cli_class_name(in, i, name, sizeof name));
	printf("\n");
	if (in->source[0])
		printf("source         %s\n", cli_printable(in->source, source, sizeof source));
}

static void print_json(const struct net *n, size_t nonfinite)
{
	const struct net_info *in = net_get_info(n);
	json_t *o = json_object(), *layers = json_array(), *cl = json_array();
	struct net_layer_info li;
	char *s;
	int i;

	for (i = 0; i < in->n_layers; i++) {
		json_t *ins = json_array();
		int k;

		net_layer(n, i, &li);
		for (k = 0; k < li.n_inputs; k++)
			json_array_append_new(ins, json_string(net_tensor_id(n, li.inputs[k])));
		json_array_append_new(layers,
			json_pack("{s:i, s:s, s:s, s:s, s:o, s:[i,i,i], s:I, s:b, s:b}", "index", i,
				  "kind", li.kind, "name", li.name, "id", li.id,
				  "inputs", ins, "shape", li.c,
				  li.h, li.w, "params", (json_int_t)li.params,
				  "folded_bn", li.folded_bn,
				  "fused_relu", li.fused_relu));
	}
	for (i = 0; i < in->n_classes; i++)
		json_array_append_new(cl, json_string(in->classes[i]));
	json_object_set_new(o, "layers", layers);
	json_object_set_new(o, "params", json_integer((json_int_t)in->n_params));
	json_object_set_new(o, "input", json_pack("[i,i,i]", in->in_c, in->in_h, in->in_w));
	json_object_set_new(o, "scale", json_real(in->scale));
	json_object_set_new(o, "mean", json_pack("[f,f,f]", in->mean[0], in->mean[1], in->mean[2]));
	json_object_set_new(o, "std", json_pack("[f,f,f]", in->std[0], in->std[1], in->std[2]));
	json_object_set_new(o, "channel_order", json_string(in->bgr ? "BGR" : "RGB"));
	json_object_set_new(o, "outputs_probs", json_boolean(in->outputs_probs));
	json_object_set_new(o, "removed_softmax", json_boolean(in->removed_softmax));
	json_object_set_new(o, "classes", cl);
	json_object_set_new(o, "nonfinite_params", json_integer((json_int_t)nonfinite));
	s = jsonout_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

int cmd_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		SOURCE_MODEL_OPTIONS,
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct source_opts mo = { .seed = 1 };
	struct net *n;
	char why[DIAG_EXPLAIN_MAX], shown[DIAG_EXPLAIN_MAX * 4];
	size_t bad;
	int c, json = 0, rc, first;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = cli_model_opt(&mo, "info", c, optarg);

		if (r < 0)
			return EXIT_USAGE;
		if (r)
			continue;
		if (c == OPT_JSON)
			json = 1;
		else if (c == 'h')
			return info_help(), EXIT_OK;
		else
			return cli_usage_error("info", "unknown option");
	}
	if (optind < argc)
		return cli_usage_error("info", "unexpected argument '%s'", argv[optind]);
	source_set_threads(mo.threads);
	rc = cli_load_net(&mo, "info", 1, 0, &n);
	if (rc)
		return rc;
	bad = diag_nonfinite_params(n, &first, why, sizeof why);
	if (json)
		print_json(n, bad);
	else
		print_table(n);
	/* on stderr too, so that a script reading --json still sees it */
	if (bad)
		fprintf(stderr, "advex: warning: %s: %s\n", mo.used,
			cli_printable(why, shown, sizeof shown));
	net_free(n);
	return EXIT_OK;
}
