/* cli.c - helpers shared by the subcommands (see cli.h). */
#include "cli.h"
#include "outpath.h"
#include "printable.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch.h"
#include "blas.h"
#include "dataset.h"
#include "image.h"

const char cli_model_help[] =
	"  --model FILE     an advex model file (see advex-import); default:\n"
	"                   ~/.local/share/advex/model.safetensors when STL-10 is\n"
	"                   there too ($XDG_DATA_HOME honoured), else the bundled demo\n"
	"  --arch NAME      a built-in architecture with seeded random weights:\n"
	"                   vgg16 (classic 4608-4096-4096-10 head) or vgg16-small\n"
	"                   (4608-10 head), vgg-compact (4 conv blocks, global\n"
	"                   average pool, dense), resnet18 (torchvision layout,\n"
	"                   1x1-conv shortcuts); 96x96 inputs; resnet20 (CIFAR\n"
	"                   ResNet-20, zero-padding shortcuts), 32x32; STL-10 class\n"
	"                   names\n"
	"  --seed S         seed for --arch weights (default 1)\n"
	"  --threads T      threads for the matrix products (default: all cores)\n"
	"  --conv ALGO      3x3 convolutions: auto (default: Winograd where faster),\n"
	"                   winograd (wherever it applies) or im2col (the reference)\n";

int cli_model_opt(struct cli_model_opts *o, const char *cmd, int code,
		  const char *arg)
{
	long v;

	switch (code) {
	case OPT_MODEL:
		o->model = arg;
		return 1;
	case OPT_ARCH:
		if (!arch_describe(arg)) {
			cli_usage_error(cmd, "unknown --arch '%s' (vgg16, vgg16-small, vgg-compact, resnet18, resnet20)", arg);
			return -1;
		}
		o->arch = arg;
		return 1;
	case OPT_SEED:
		v = cli_parse_long(arg, 0, 0x7fffffffL);
		if (v < 0) {
			cli_usage_error(cmd, "--seed wants a non-negative integer, not '%s'", arg);
			return -1;
		}
		o->seed = (unsigned long)v;
		return 1;
	case OPT_CONV:
		if (!strcmp(arg, "auto"))
			o->conv = NET_CONV_AUTO;
		else if (!strcmp(arg, "winograd"))
			o->conv = NET_CONV_WINOGRAD;
		else if (!strcmp(arg, "im2col"))
			o->conv = NET_CONV_IM2COL;
		else {
			cli_usage_error(cmd, "--conv wants auto, winograd or im2col, not '%s'", arg);
			return -1;
		}
		return 1;
	case OPT_THREADS:
		v = cli_parse_long(arg, 1, 256);
		if (v < 0) {
			cli_usage_error(cmd, "--threads wants 1..256, not '%s'", arg);
			return -1;
		}
		o->threads = (int)v;
		return 1;
	}
	return 0;
}

/* Messages carry names from files (tensor names, class names, paths):
 * formatted first, then escaped, so none of them reaches the terminal
 * raw. */
static void vprint_escaped(FILE *f, const char *fmt, va_list ap)
{
	char msg[ERR_MAX * 2], shown[ERR_MAX * 8];

	vsnprintf(msg, sizeof msg, fmt, ap);
	fputs(printable_escape(msg, shown, sizeof shown), f);
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("advex: ", stderr);
	va_start(ap, fmt);
	vprint_escaped(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

const char *cli_class_name(const struct net_info *in, int c, char *buf,
			   size_t n)
{
	return printable_escape(c >= 0 && c < in->n_classes ? in->classes[c]
							     : "?", buf, n);
}

int cli_check_outputs(const char *a, const char *b, const char *c)
{
	const char *p[3] = { a, b, c };
	char err[ERR_MAX];
	int i;

	for (i = 0; i < 3; i++)
		if (p[i] && outpath_check(p[i], err) != ST_OK)
			return cli_fail("%s", err);
	return 0;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "advex %s: ", cmd);
	va_start(ap, fmt);
	vprint_escaped(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\ntry 'advex %s --help'\n", cmd);
	return EXIT_USAGE;
}

void cli_set_threads(int threads)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (threads <= 0)
		threads = n > 0 ? (int)n : 1;
	blas_set_threads(threads);
}

long cli_parse_long(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	return v;
}

static int is_file(const char *path, int want_dir)
{
	struct stat st;

	return stat(path, &st) == 0 && (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
}

/* $XDG_DATA_HOME/advex/NAME, else ~/.local/share/advex/NAME. */
static void data_home(const char *name, char *buf, size_t n)
{
	const char *x = getenv("XDG_DATA_HOME"), *h = getenv("HOME");

	if (x && x[0] == '/')
		snprintf(buf, n, "%s/advex/%s", x, name);
	else
		snprintf(buf, n, "%s/.local/share/advex/%s", h ? h : ".", name);
}

/* The bundled demo: $ADVEX_DEMO_DIR, the build tree (an uninstalled
 * advex), or the installed data directory. */
static int demo_path(const char *name, int want_dir, char *buf, size_t n)
{
	const char *env = getenv("ADVEX_DEMO_DIR");
	const char *const roots[] = { ADVEX_BUILDDIR "/assets", ADVEX_SRCDIR "/assets",
				      ADVEX_DATADIR };
	size_t i;

	if (env) {
		snprintf(buf, n, "%s/%s", env, name);
		return is_file(buf, want_dir);
	}
	for (i = 0; i < sizeof roots / sizeof roots[0]; i++) {
		snprintf(buf, n, "%s/%s", roots[i], name);
		if (is_file(buf, want_dir))
			return 1;
	}
	return 0;
}

int cli_default_source(char *data, char *model, size_t n, int *is_demo)
{
	char d[4096], m[4096];

	data_home("stl10_binary", d, sizeof d);
	data_home("model.safetensors", m, sizeof m);
	if (is_file(d, 1) && is_file(m, 0)) {
		snprintf(data, n, "%s", d);
		snprintf(model, n, "%s", m);
		*is_demo = 0;
		return 0;
	}
	*is_demo = 1;
	if (demo_path("demo/stl10_binary", 1, data, n) &&
	    demo_path("demo-model.safetensors", 0, model, n))
		return 0;
	return -1;
}

int cli_load_net(struct cli_model_opts *o, const char *cmd,
		 int max_batch, int want_param_grads, struct net **out)
{
	char err[ERR_MAX], data[4096], model[4096];
	struct modelfile *mf;
	enum status st;
	int demo;

	*out = NULL;
	if (o->model && o->arch) {
		cli_usage_error(cmd, "give one of --model FILE or --arch NAME, not both");
		return EXIT_USAGE;
	}
	if (!o->model && !o->arch) {
		if (cli_default_source(data, model, sizeof model, &demo))
			return cli_fail("no --model given, no model at the default path and no bundled demo found (build it with make, or set ADVEX_DEMO_DIR)");
		fprintf(stderr, "advex: note: no --model: using %s %s\n",
			demo ? "the bundled demo model" : "the default model", model);
		st = modelfile_open(model, &mf, err);
		snprintf(o->used, sizeof o->used, "%s", model);
	} else if (o->model) {
		st = modelfile_open(o->model, &mf, err);
		snprintf(o->used, sizeof o->used, "%s", o->model);
	} else {
		st = arch_build(o->arch, arch_default_size(o->arch), 10, NULL,
				o->seed, &mf, err);
		snprintf(o->used, sizeof o->used, "builtin:%s", o->arch);
	}
	if (st != ST_OK)
		return cli_fail("%s", err);
	st = net_create(mf, max_batch, want_param_grads, out, err);
	modelfile_close(mf);
	if (st == ST_OK && o->conv != NET_CONV_AUTO && !want_param_grads &&
	    (st = net_set_conv_mode(*out, (enum net_conv_mode)o->conv, err)) != ST_OK) {
		net_free(*out);
		*out = NULL;
	}
	if (st != ST_OK)
		return cli_fail("%s", err);
	return EXIT_OK;
}

int cli_class_index(const struct net_info *in, const char *s)
{
	char buf[CLI_NAME_MAX];
	long v;
	int i;

	for (i = 0; i < in->n_classes; i++)
		if (!strcasecmp(in->classes[i], s))
			return i;
	v = cli_parse_long(s, 0, in->n_classes - 1);
	if (v >= 0)
		return (int)v;
	fprintf(stderr, "advex: unknown class '%s' (the model's classes:",
		printable_escape(s, buf, sizeof buf));
	for (i = 0; i < in->n_classes; i++)
		fprintf(stderr, "%s %s", i ? "," : "",
			cli_class_name(in, i, buf, sizeof buf));
	fprintf(stderr, "; or an index 0..%d)\n", in->n_classes - 1);
	return -1;
}

int cli_parse_eps(const char *s, double *out)
{
	char *end;
	double num, den = 1.0, v;

	errno = 0;
	num = strtod(s, &end);
	if (end == s)
		return -1;
	if (*end == '/') {
		const char *d = end + 1;

		den = strtod(d, &end);
		if (end == d || den == 0.0)
			return -1;
	}
	if (*end || isnan(num) || isnan(den))
		return -1;
	v = num / den;
	/* strtod turns 1e-400 into 0 and 1e400 into inf (ERANGE): refuse
	 * them rather than go on with a value the user did not write */
	if (errno == ERANGE || !isfinite(v) || (v == 0.0 && num != 0.0))
		return -2;
	*out = v;
	return 0;
}

int cli_open_data(const char *dir, const char *split, struct dataset **out)
{
	char err[ERR_MAX], note[ERR_MAX] = "", data[4096], model[4096];
	int demo;

	if (!dir) {
		if (cli_default_source(data, model, sizeof data, &demo))
			return cli_fail("no --data given and no STL-10 at the default path or bundled demo");
		fprintf(stderr, "advex: note: no --data: using %s %s\n",
			demo ? "the bundled demo data" : "STL-10 at", data);
		dir = data;
	}

	if (dataset_open(dir, split, out, note, err) != ST_OK)
		return cli_fail("%s", err);
	if (note[0])
		fprintf(stderr, "advex: note: %s\n", note);
	return EXIT_OK;
}

const char cli_resize_help[] =
	"  --resize         resample the data's images to the model's input size\n"
	"                   (bilinear, half-pixel centres, no antialiasing: as\n"
	"                   PyTorch's interpolate(align_corners=False))\n";

int cli_fit_data(struct dataset *d, const struct net_info *in, int resize)
{
	int h = dataset_height(d), w = dataset_width(d);
	char err[ERR_MAX];

	if (h == in->in_h && w == in->in_w)
		return EXIT_OK;
	if (!resize)
		return cli_fail("%s: images are %dx%d but the model expects %dx%d "
				"(use a model trained at %dx%d, or --resize)",
				dataset_path(d), w, h, in->in_w, in->in_h, w, h);
	if (dataset_resize(d, in->in_h, in->in_w, err) != ST_OK)
		return cli_fail("%s", err);
	return EXIT_OK;
}

int cli_load_image(const char *ref, struct dataset *d,
		   const struct net_info *in, float *x, int *label, char *name,
		   size_t n)
{
	char err[ERR_MAX];
	long idx = -1;

	*label = -1;
	if (d) {
		idx = cli_parse_long(ref, 0, 0x7fffffffL);
		/* the command line asks for what is not there: a usage error */
		if (idx >= 0 && idx >= dataset_count(d)) {
			cli_fail("%s: image index %ld out of range (the %s split has %d images: 0..%d)",
				 dataset_path(d), idx, dataset_split(d),
				 dataset_count(d), dataset_count(d) - 1);
			return EXIT_USAGE;
		}
	}
	if (idx >= 0) {
		if (cli_fit_data(d, in, 0))
			return EXIT_FAIL;
		if (dataset_image(d, (int)idx, x, err) != ST_OK)
			return cli_fail("%s", err);
		*label = dataset_label(d, (int)idx);
		dataset_image_name(d, (int)idx, name, (int)n);
		return EXIT_OK;
	}
	if (image_load_png(ref, in->in_h, in->in_w, x, err) != ST_OK)
		return cli_fail("%s", err);
	snprintf(name, n, "%s", ref);
	return EXIT_OK;
}

int cli_check_image_ref(const char *cmd, const char *ref)
{
	const char *p = ref + (ref[0] == '-' || ref[0] == '+');

	if (!*p || strspn(p, "0123456789") != strlen(p))
		return EXIT_OK;
	if (p == ref && cli_parse_long(ref, 0, 0x7fffffffL) >= 0)
		return EXIT_OK;
	return cli_usage_error(cmd, "--image '%s' is not an image index (0, 1, ...; at most %ld); a PNG file of that name: ./%s",
			       ref, 0x7fffffffL, ref);
}

int cli_is_index(const char *ref)
{
	const char *p = ref;

	if (!ref || !*ref)
		return 0;
	while (*p >= '0' && *p <= '9')
		p++;
	return *p == 0;
}

/* Multiply-adds x 2 of one forward pass of one image, as direct
 * convolution: every weight meets every output position once. */
double cli_forward_flop(const struct net *n)
{
	const struct net_info *in = net_get_info(n);
	struct net_layer_info li;
	double f = 0.0;
	int i;

	for (i = 0; i < in->n_layers; i++) {
		net_layer(n, i, &li);
		if (li.op == NET_CONV || li.op == NET_DENSE)
			f += 2.0 * (double)li.params * li.h * li.w;
	}
	return f;
}

const char *cli_printable(const char *s, char *buf, size_t n)
{
	return printable_escape(s, buf, n);
}
