/* cmd_train.c - `advex train`: train a VGG-style network on CPU. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch.h"
#include "cli.h"
#include "dataset.h"
#include "train.h"

enum {
	OPT_DATA = OPT_FIRST_FREE, OPT_EPOCHS, OPT_OUT, OPT_BATCH, OPT_LR,
	OPT_MOMENTUM, OPT_WD, OPT_OPTIM, OPT_SCHED, OPT_WARMUP, OPT_CROP,
	OPT_NOFLIP, OPT_INIT, OPT_FREEZE, OPT_RESUME, OPT_LIMIT, OPT_QUIET,
	OPT_STOP_AFTER, OPT_NOCACHE, OPT_CACHE_LIMIT
};

static void train_help(void)
{
	printf("usage: advex train --data DIR (--arch NAME | --init FILE) --epochs N\n"
	       "                   --out FILE.safetensors [options]\n\n"
	       "Train on the training split of DIR (STL-10 or CIFAR-10 binary layout, or\n"
	       "a folder of class sub-folders) with cross-entropy on the logits; report the test\n"
	       "accuracy after every epoch and write a checkpoint (FILE and FILE.state)\n"
	       "after every epoch, so --resume can continue.\n\n"
	       "  --data DIR       training data (split 'train'; 'test' for accuracy)\n"
	       "  --arch NAME      start from random weights: vgg16, vgg16-small, vgg-compact\n"
	       "  --init FILE      start from a model file (fine-tuning)\n"
	       "  --freeze N|body  train only nodes N and above (with --init); 'body':\n"
	       "                   every node before the first dense layer (for an\n"
	       "                   imported VGG16 that is nodes 0..31, the 13 convs,\n"
	       "                   their ReLUs, 5 pools and the flatten: --freeze 32)\n"
	       "  --no-cache       with --freeze: run the frozen nodes every step (keeps\n"
	       "                   random crop and flip) instead of computing their\n"
	       "                   output once per image and training on it\n"
	       "  --cache-limit M  most MiB the cached outputs may take (default 4096;\n"
	       "                   above it, training runs uncached)\n"
	       "  --epochs N       epochs in all (default 10)\n"
	       "  --out FILE       where the model goes (and FILE.state, the optimizer)\n"
	       "  --resume         continue from --out and --out.state\n"
	       "  --stop-after E   stop after epoch E (checkpoint written; --resume goes on)\n"
	       "  --batch B        images per step (default 32)\n"
	       "  --optim sgd|adam (default sgd)\n"
	       "  --lr LR          peak learning rate (default 0.05 sgd, 0.001 adam)\n"
	       "  --momentum M     SGD momentum / Adam beta1 (default 0.9)\n"
	       "  --weight-decay W L2 on weights, not biases (default 5e-4)\n"
	       "  --schedule cosine|step|const   learning-rate schedule (default cosine)\n"
	       "  --warmup N       linear warm-up epochs (default 1)\n"
	       "  --crop-pad P     random crop within a P-pixel zero border (default 4, 0: off)\n"
	       "  --no-flip        no random horizontal flip\n"
	       "  --limit N        use only the first N training images\n"
	       "  --seed S         weights, order, augmentation (default 1)\n"
	       "  --threads T      threads (default: all cores)\n"
	       "  --quiet          no progress bar, one line per epoch\n"
	       "  --resize         resample the images to the size of the --init model\n"
	       "                   (bilinear, as PyTorch's interpolate(align_corners=False))\n");
}

struct progress_ctx {
	int quiet;
	int tty;
};

static void fmt_time(double s, char *buf, size_t n)
{
	int t = (int)(s + 0.5);

	snprintf(buf, n, "%d:%02d", t / 60, t % 60);
}

static int on_progress(const struct train_progress *p, void *user)
{
	const struct progress_ctx *c = user;
	char el[16], eta[16], bar[31];
	int i, fill = p->steps ? 30 * p->step / p->steps : 30;

	fmt_time(p->elapsed_s, el, sizeof el);
	if (p->caching) {
		if (c->quiet || (!c->tty && p->step != p->steps))
			return 0;
		fmt_time(p->eta_s, eta, sizeof eta);
		fprintf(stderr, "%scaching the frozen body's output: %d/%d images %s ETA %s%s",
			c->tty ? "\r\033[K" : "", p->step, p->steps, el, eta,
			c->tty ? "" : "\n");
		return 0;
	}
	if (p->test_acc >= 0) {
		if (c->tty && !c->quiet)
			fputs("\r\033[K", stderr);
		if (p->cache_s > 0)
			printf("feature cache built in %.1f s\n", p->cache_s);
		printf("epoch %d/%d  loss %.4f  train acc %.2f%%  test acc %.2f%%  lr %.4g  %s (%.3f s)\n",
		       p->epoch, p->epochs, p->loss, 100 * p->train_acc,
		       100 * p->test_acc, p->lr, el, p->elapsed_s);
		fflush(stdout);
		return 0;
	}
	if (c->quiet || (!c->tty && p->step != p->steps))
		return 0;
	fmt_time(p->eta_s, eta, sizeof eta);
	for (i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = 0;
	fprintf(stderr, "%sepoch %d/%d [%s] %d/%d loss %.4f acc %.1f%% %s ETA %s%s",
		c->tty ? "\r\033[K" : "", p->epoch, p->epochs, bar, p->step,
		p->steps, p->loss, 100 * p->train_acc, el, eta, c->tty ? "" : "\n");
	return 0;
}

static int parse_float(const char *s, float *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !isfinite(v))
		return -1;
	*out = (float)v;
	return 0;
}

struct train_args {
	const char *data, *arch, *init, *out;
	int resume, quiet, threads, lr_set, stop_after, resize;
	int freeze_body;	/* --freeze body: resolved once the net exists */
	struct train_opts o;
};

static int parse(int argc, char **argv, struct train_args *a)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, OPT_DATA },
		{ "arch", required_argument, NULL, OPT_ARCH },
		{ "init", required_argument, NULL, OPT_INIT },
		{ "freeze", required_argument, NULL, OPT_FREEZE },
		{ "no-cache", no_argument, NULL, OPT_NOCACHE },
		{ "cache-limit", required_argument, NULL, OPT_CACHE_LIMIT },
		{ "epochs", required_argument, NULL, OPT_EPOCHS },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "resume", no_argument, NULL, OPT_RESUME },
		{ "stop-after", required_argument, NULL, OPT_STOP_AFTER },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "optim", required_argument, NULL, OPT_OPTIM },
		{ "lr", required_argument, NULL, OPT_LR },
		{ "momentum", required_argument, NULL, OPT_MOMENTUM },
		{ "weight-decay", required_argument, NULL, OPT_WD },
		{ "schedule", required_argument, NULL, OPT_SCHED },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "crop-pad", required_argument, NULL, OPT_CROP },
		{ "no-flip", no_argument, NULL, OPT_NOFLIP },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		SOURCE_RESIZE_OPTION,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	long v;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DATA: a->data = optarg; break;
		case OPT_ARCH: a->arch = optarg; break;
		case OPT_INIT: a->init = optarg; break;
		case OPT_OUT: a->out = optarg; break;
		case OPT_RESUME: a->resume = 1; break;
		case OPT_NOFLIP: a->o.flip = 0; break;
		case OPT_QUIET: a->quiet = 1; break;
		case OPT_RESIZE: a->resize = 1; break;
		case OPT_NOCACHE: a->o.cache = 0; break;
		case OPT_FREEZE:
			if (!strcmp(optarg, "body")) {
				a->freeze_body = 1;
				a->o.freeze = 0;
				break;
			}
			a->freeze_body = 0;
			/* fall through */
		case OPT_CACHE_LIMIT: case OPT_EPOCHS: case OPT_BATCH: case OPT_WARMUP:
		case OPT_CROP: case OPT_LIMIT: case OPT_SEED: case OPT_THREADS:
		case OPT_STOP_AFTER:
			v = source_parse_long(optarg, 0, 1L << 30);
			if (v < 0)
				return cli_usage_error("train", "'%s' is not a count%s", optarg,
						       c == OPT_FREEZE ? " (or 'body')" : "");
			if (c == OPT_FREEZE) a->o.freeze = (int)v;
			if (c == OPT_CACHE_LIMIT) a->o.cache_limit_mb = (size_t)v;
			if (c == OPT_EPOCHS) a->o.epochs = (int)v;
			if (c == OPT_BATCH) a->o.batch = (int)v;
			if (c == OPT_WARMUP) a->o.warmup_epochs = (int)v;
			if (c == OPT_CROP) a->o.crop_pad = (int)v;
			if (c == OPT_LIMIT) a->o.limit = (int)v;
			if (c == OPT_SEED) a->o.seed = (uint64_t)v;
			if (c == OPT_THREADS) a->threads = (int)v;
			if (c == OPT_STOP_AFTER) a->stop_after = (int)v;
			break;
		case OPT_LR: case OPT_MOMENTUM: case OPT_WD: {
			float f;

			if (parse_float(optarg, &f))
				return cli_usage_error("train", "'%s' is not a number", optarg);
			if (c == OPT_LR) a->o.lr = f, a->lr_set = 1;
			if (c == OPT_MOMENTUM) a->o.momentum = f;
			if (c == OPT_WD) a->o.weight_decay = f;
			break;
		}
		case OPT_OPTIM:
			if (!strcmp(optarg, "sgd")) a->o.optim = TRAIN_SGD;
			else if (!strcmp(optarg, "adam")) a->o.optim = TRAIN_ADAM;
			else return cli_usage_error("train", "--optim sgd or adam");
			break;
		case OPT_SCHED:
			if (!strcmp(optarg, "cosine")) a->o.sched = TRAIN_COSINE;
			else if (!strcmp(optarg, "step")) a->o.sched = TRAIN_STEP;
			else if (!strcmp(optarg, "const")) a->o.sched = TRAIN_CONST;
			else return cli_usage_error("train", "--schedule cosine, step or const");
			break;
		case 'h': train_help(); exit(EXIT_OK);
		default: return cli_usage_error("train", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
	if (!a->data || !a->out)
		return cli_usage_error("train", "--data and --out are required");
	if (!!a->arch == !!a->init)
		return cli_usage_error("train", "give exactly one of --arch NAME or --init FILE");
	if (a->arch && !arch_describe(a->arch))
		return cli_usage_error("train", "unknown --arch '%s'", a->arch);
	if ((a->o.freeze || a->freeze_body) && !a->init)
		return cli_usage_error("train", "--freeze needs --init");
	if (a->o.optim == TRAIN_ADAM && !a->lr_set)
		a->o.lr = 0.001f;
	return EXIT_OK;
}

/* --freeze body: the index of the first dense node, so that everything
 * before the classifier (convs, pools, flatten) is frozen. */
static int body_end(const struct net *n)
{
	struct net_layer_info li;
	int i;

	for (i = 0; i < net_get_info(n)->n_layers; i++) {
		net_layer(n, i, &li);
		if (li.op == NET_DENSE)
			return i;
	}
	return -1;
}

/* The network to train: a built-in with the dataset's classes, the model
 * given by --init, or (--resume) the checkpoint. */
static int make_net(const struct train_args *a, struct dataset *d,
		    struct net **n)
{
	char err[ERR_MAX];
	struct modelfile *mf = NULL;
	const char **names;
	enum status st;
	int i, k = dataset_n_classes(d);

	if (a->resume)
		st = modelfile_open(a->out, &mf, err);
	else if (a->init)
		st = modelfile_open(a->init, &mf, err);
	else {
		names = malloc(sizeof *names * (size_t)k);
		if (!names)
			return cli_fail("out of memory");
		for (i = 0; i < k; i++)
			names[i] = dataset_class_name(d, i);
		st = arch_build(a->arch, dataset_height(d), k, names, a->o.seed, &mf, err);
		free(names);
	}
	if (st == ST_OK)
		st = net_create(mf, a->o.batch, 1, a->threads, n, err);
	modelfile_close(mf);
	return st == ST_OK ? EXIT_OK : cli_fail("%s", err);
}

int cmd_train(int argc, char **argv)
{
	struct train_args a = { .o = train_opts_default() };
	struct progress_ctx pc;
	struct dataset *train = NULL, *test = NULL;
	struct trainer *t = NULL;
	struct net *n = NULL;
	char err[ERR_MAX], note[ERR_MAX];
	int rc, stopped = 0;

	if ((rc = parse(argc, argv, &a)))
		return rc;
	source_set_threads(a.threads);
	if (dataset_open(a.data, "train", &train, note, err) != ST_OK)
		return cli_fail("%s", err);
	if (note[0])
		fprintf(stderr, "advex: note: %s\n", note);
	if (dataset_open(a.data, "test", &test, note, err) != ST_OK) {
		fprintf(stderr, "advex: note: no test split (%s): no test accuracy\n", err);
		test = NULL;
	} else if (!dataset_split(test)[0]) {
		/* an image folder without train/ and test/: the same images */
		fprintf(stderr, "advex: note: %s has no test/ sub-folder: no test accuracy\n",
			a.data);
		dataset_close(test);
		test = NULL;
	}
	rc = make_net(&a, train, &n);
	if (!rc)
		rc = cli_fit_data(train, net_get_info(n), a.resize);
	if (!rc && test)
		rc = cli_fit_data(test, net_get_info(n), a.resize);
	if (!rc && a.freeze_body) {
		a.o.freeze = body_end(n);
		if (a.o.freeze < 1)
			rc = cli_fail("--freeze body: %s has no dense layer after a body",
				      a.init);
		else
			fprintf(stderr, "advex: note: --freeze body = --freeze %d "
				"(nodes 0..%d are frozen)\n", a.o.freeze, a.o.freeze - 1);
	}
	if (!rc && train_new(n, train, test, &a.o, &t, err) != ST_OK)
		rc = cli_fail("%s", err);
	if (!rc && a.resume && train_load_state(t, a.out, err) != ST_OK)
		rc = cli_fail("%s", err);
	if (!rc && train_note(t)[0])
		fprintf(stderr, "advex: note: %s\n", train_note(t));
	pc.quiet = a.quiet;
	pc.tty = isatty(2);
	if (!rc)
		printf("training %s on %s (%d images, %d classes), %d epochs, batch %d, %s lr %g\n",
		       a.init ? a.init : a.arch, a.data, dataset_count(train),
		       dataset_n_classes(train), a.o.epochs, a.o.batch,
		       a.o.optim == TRAIN_ADAM ? "adam" : "sgd", a.o.lr);
	while (!rc && !stopped && train_epoch(t) < a.o.epochs &&
	       (!a.stop_after || train_epoch(t) < a.stop_after)) {
		if (train_run_epoch(t, on_progress, &pc, &stopped, err) != ST_OK ||
		    (!stopped && train_save(t, a.out, err) != ST_OK))
			rc = cli_fail("%s", err);
	}
	if (!rc)
		printf("wrote %s\n", a.out);
	train_free(t);
	net_free(n);
	dataset_close(train);
	dataset_close(test);
	return rc;
}
