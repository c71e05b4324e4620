/* cmd_eval.c - `advex eval`: accuracy, per-class accuracy and the confusion
 * matrix of a model on a labelled split. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "evaluate.h"
#include "jsonout.h"
#include "shard.h"

enum { OPT_DATA = OPT_FIRST_FREE, OPT_SPLIT, OPT_LIMIT, OPT_BATCH, OPT_SHARD };

static void eval_help(void)
{
	printf("usage: advex eval [--data DIR] [--model FILE | --arch NAME] [--split S]\n"
	       "                  [--limit N] [--shard I/N | --shard slurm] [--batch B]\n"
	       "                  [--resize] [--json]\n\n"
	       "Accuracy, per-class accuracy and the confusion matrix (rows: true\n"
	       "class, columns: predicted) on a labelled split, and how many images\n"
	       "have a class with probability below 1e-7 (how confident the model is).\n\n%s"
	       "  --data DIR       STL-10 or CIFAR-10 binary directory, or a folder of\n"
	       "                   class folders of PNGs (default: STL-10 under\n"
	       "                   ~/.local/share/advex when present, else the bundled\n"
	       "                   demo, as every command)\n"
	       "  --split S        train, test (default) or unlabeled (STL-10)\n"
	       "  --limit N        only the first N images\n"
	       "  --shard I/N      only shard I (0 <= I < N) of those images: N\n"
	       "                   contiguous blocks whose sizes differ by at most one\n"
	       "                   (the rule of advex attack --shard); the shards'\n"
	       "                   confusion matrices add up to the whole one\n"
	       "  --shard slurm    I and N from the SLURM job array (SLURM_ARRAY_TASK_ID\n"
	       "                   - SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT)\n"
	       "  --batch B        images per forward pass (default 32)\n"
	       "  --json           keys accuracy, correct, total, per_class (list of\n"
	       "                   {class, correct, total, accuracy}), confusion\n"
	       "                   (list of rows), min_prob_below_1e-7 (fraction)\n%s",
	       source_model_help, source_resize_help);
}

static void print_text(const struct eval_result *r, struct dataset *d)
{
	char name[CLI_NAME_MAX];
	int i, j, k = r->n_classes;

	printf("accuracy %.2f%% (%d of %d)\n", r->total ? 100.0 * r->correct / r->total : 0.0,
	       r->correct, r->total);
	printf("images with a class below p = 1e-7: %.1f%%\n\n", 100 * r->min_prob_below);
	printf("%-12s %8s   confusion (columns: predicted)\n", "class", "acc");
	for (i = 0; i < k; i++) {
		int tot = 0;

		for (j = 0; j < k; j++)
			tot += r->confusion[i * k + j];
		printf("%-12s %7.2f%%  ", cli_printable(dataset_class_name(d, i), name, sizeof name),
		       tot ? 100.0 * r->confusion[i * k + i] / tot : 0.0);
		for (j = 0; j < k; j++)
			printf(" %4d", r->confusion[i * k + j]);
		printf("\n");
	}
}

static void print_json(const struct eval_result *r, struct dataset *d)
{
	json_t *o = json_object(), *pc = json_array(), *cm = json_array();
	int i, j, k = r->n_classes;
	char *s;

	for (i = 0; i < k; i++) {
		json_t *row = json_array();
		int tot = 0;

		for (j = 0; j < k; j++) {
			tot += r->confusion[i * k + j];
			json_array_append_new(row, json_integer(r->confusion[i * k + j]));
		}
		json_array_append_new(cm, row);
		json_array_append_new(pc, json_pack("{s:s, s:i, s:i, s:f}", "class",
						    dataset_class_name(d, i), "correct",
						    r->confusion[i * k + i], "total", tot,
						    "accuracy", tot ? (double)r->confusion[i * k + i] / tot : 0.0));
	}
	json_object_set_new(o, "accuracy", json_real(r->total ? (double)r->correct / r->total : 0.0));
	json_object_set_new(o, "correct", json_integer(r->correct));
	json_object_set_new(o, "total", json_integer(r->total));
	json_object_set_new(o, "per_class", pc);
	json_object_set_new(o, "confusion", cm);
	json_object_set_new(o, "min_prob_below_1e-7", json_real(r->min_prob_below));
	s = jsonout_dumps(o, JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

int cmd_eval(int argc, char **argv)
{
	static const struct option longopts[] = {
		SOURCE_MODEL_OPTIONS,
		{ "data", required_argument, NULL, OPT_DATA },
		{ "split", required_argument, NULL, OPT_SPLIT },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "shard", required_argument, NULL, OPT_SHARD },
		{ "json", no_argument, NULL, OPT_JSON },
		SOURCE_RESIZE_OPTION,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct source_opts mo = { .seed = 1 };
	const char *data = NULL, *split = "test";
	char err[ERR_MAX];
	long limit = 0, batch = 32;
	struct eval_result r = { 0 };
	struct shard shard = { 0, 1 };
	int lo, hi;
	struct dataset *d = NULL;
	struct net *n = NULL;
	float *buf;
	int c, json = 0, resize = 0, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int k = cli_model_opt(&mo, "eval", c, optarg);

		if (k < 0)
			return EXIT_USAGE;
		if (k)
			continue;
		switch (c) {
		case OPT_DATA: data = optarg; break;
		case OPT_SPLIT: split = optarg; break;
		case OPT_LIMIT:
			if ((limit = source_parse_long(optarg, 1, 1L << 30)) < 0)
				return cli_usage_error("eval", "--limit wants a positive count");
			break;
		case OPT_BATCH:
			if ((batch = source_parse_long(optarg, 1, 4096)) < 0)
				return cli_usage_error("eval", "--batch wants 1..4096");
			break;
		case OPT_SHARD:
			if (shard_parse(optarg, &shard, err) != ST_OK)
				return cli_usage_error("eval", "%s", err);
			break;
		case OPT_JSON: json = 1; break;
		case OPT_RESIZE: resize = 1; break;
		case 'h': eval_help(); return EXIT_OK;
		default: return cli_usage_error("eval", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
	source_set_threads(mo.threads);
	/* without --data, the default source, as every other command */
	if ((rc = cli_open_data(data, split, &d)))
		return rc;
	rc = cli_load_net(&mo, "eval", (int)batch, 0, &n);
	if (!rc)
		rc = cli_fit_data(d, net_get_info(n), resize);
	if (rc) {
		net_free(n);
		dataset_close(d);
		return rc;
	}
	/* --limit first, then this shard's part of it */
	hi = limit > 0 && limit < dataset_count(d) ? (int)limit : dataset_count(d);
	shard_range(&shard, 0, hi, &lo, &hi);
	buf = malloc(sizeof *buf * 3 * (size_t)dataset_height(d) * dataset_width(d) * (size_t)batch);
	if (!buf)
		rc = cli_fail("out of memory");
	else if (evaluate_range(n, d, lo, hi, buf, &r, NULL, NULL, err) != ST_OK)
		rc = cli_fail("%s", err);
	else if (json)
		print_json(&r, d);
	else
		print_text(&r, d);
	free(buf);
	free(r.confusion);
	net_free(n);
	dataset_close(d);
	return rc;
}
