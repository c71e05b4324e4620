/* source.c - opening what the front ends work on (see source.h). */
#include "source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch.h"
#include "blas.h"
#include "dataset.h"
#include "image.h"
#include "modelfile.h"

const char source_model_help[] =
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

const char source_resize_help[] =
	"  --resize         resample the data's images to the model's input size\n"
	"                   (bilinear, half-pixel centres, no antialiasing: as\n"
	"                   PyTorch's interpolate(align_corners=False))\n";

long source_parse_long(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	return v;
}

int source_model_opt(struct source_opts *o, int code, const char *arg, char *msg)
{
	long v;

	switch (code) {
	case OPT_MODEL:
		o->model = arg;
		return 1;
	case OPT_ARCH:
		if (!arch_describe(arg)) {
			snprintf(msg, ERR_MAX, "unknown --arch '%s' (vgg16, vgg16-small, vgg-compact, resnet18, resnet20)", arg);
			return -1;
		}
		o->arch = arg;
		return 1;
	case OPT_SEED:
		v = source_parse_long(arg, 0, 0x7fffffffL);
		if (v < 0) {
			snprintf(msg, ERR_MAX, "--seed wants a non-negative integer, not '%s'", arg);
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
			snprintf(msg, ERR_MAX, "--conv wants auto, winograd or im2col, not '%s'", arg);
			return -1;
		}
		return 1;
	case OPT_THREADS:
		v = source_parse_long(arg, 1, 256);
		if (v < 0) {
			snprintf(msg, ERR_MAX, "--threads wants 1..256, not '%s'", arg);
			return -1;
		}
		o->threads = (int)v;
		return 1;
	}
	return 0;
}

int source_parse_range(const char *s, int count, int single, int *lo, int *hi)
{
	char *end;
	long a = strtol(s, &end, 10), b;

	if (end == s)
		return -1;
	if (single && !*end) {
		b = a + 1;
	} else {
		if (*end != ':')
			return -1;
		s = end + 1;
		b = strtol(s, &end, 10);
		if (end == s || *end)
			return -1;
	}
	if (a < 0 || b <= a || b > count)
		return -1;
	*lo = (int)a;
	*hi = (int)b;
	return 0;
}

void source_set_threads(int threads)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (threads <= 0)
		threads = n > 0 ? (int)n : 1;
	blas_set_threads(threads);
}

void source_model_summary(const struct source_opts *o,
			  const struct net_info *in, char *buf, size_t n)
{
	int k = 0;

	if (o->arch)
		k = snprintf(buf, n, "%s, weights seed %lu: ", o->arch, o->seed);
	if (k < 0 || (size_t)k >= n)
		k = 0;
	snprintf(buf + k, n - (size_t)k,
		 "%dx%dx%d -> %d classes, %d layers, %zu parameters%s%s", in->in_c,
		 in->in_h, in->in_w, in->n_classes, in->n_layers, in->n_params,
		 !o->arch && in->source && in->source[0] ? "; " : "",
		 !o->arch && in->source ? in->source : "");
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

/* Is this process the advex of the build tree, not an installed copy? An
 * installed advex must not prefer a build tree that happens to remain. */
static int from_build_tree(void)
{
	char exe[4096], *root = realpath(ADVEX_BUILDDIR, NULL);
	ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
	int in;

	if (k <= 0 || !root) {
		free(root);
		return 1;		/* cannot tell: the build tree first, as before */
	}
	exe[k] = '\0';
	in = !strncmp(exe, root, strlen(root)) && exe[strlen(root)] == '/';
	free(root);
	return in;
}

/* The bundled demo: $ADVEX_DEMO_DIR, then for the advex of the build tree
 * the build tree and the source tree before the installed data directory,
 * for an installed advex the installed data directory first. */
static int demo_path(const char *name, int want_dir, char *buf, size_t n)
{
	const char *env = getenv("ADVEX_DEMO_DIR");
	const char *const built[] = { ADVEX_BUILDDIR "/assets", ADVEX_SRCDIR "/assets",
				      ADVEX_DATADIR };
	const char *const installed[] = { ADVEX_DATADIR, ADVEX_BUILDDIR "/assets",
					  ADVEX_SRCDIR "/assets" };
	const char *const *roots = from_build_tree() ? built : installed;
	size_t i;

	if (env) {
		snprintf(buf, n, "%s/%s", env, name);
		return is_file(buf, want_dir);
	}
	for (i = 0; i < sizeof built / sizeof built[0]; i++) {
		snprintf(buf, n, "%s/%s", roots[i], name);
		if (is_file(buf, want_dir))
			return 1;
	}
	return 0;
}

int source_default(char *data, char *model, size_t n, int *is_demo)
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

enum status source_open_net(struct source_opts *o, int max_batch,
			    int want_param_grads, struct net **out, char *note,
			    char *err)
{
	char data[4096], model[4096];
	struct modelfile *mf;
	enum status st;
	int demo;

	*out = NULL;
	note[0] = '\0';
	if (!o->model && !o->arch) {
		if (source_default(data, model, sizeof model, &demo))
			return status_set(err, ST_ERR_ARG, "no --model given, no model at the default path and no bundled demo found (build it with make, or set ADVEX_DEMO_DIR)");
		snprintf(note, SOURCE_NOTE_MAX, "no --model: using %s %s",
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
		return st;
	st = net_create(mf, max_batch, want_param_grads, o->threads, out, err);
	modelfile_close(mf);
	if (st == ST_OK && o->conv != NET_CONV_AUTO && !want_param_grads &&
	    (st = net_set_conv_mode(*out, (enum net_conv_mode)o->conv, err)) != ST_OK) {
		net_free(*out);
		*out = NULL;
	}
	return st;
}

enum status source_open_data(const char *dir, const char *split,
			     struct dataset **out, char *note, char *err)
{
	char data[4096], model[4096], loader[ERR_MAX] = "";
	enum status st;
	int demo, n = 0;

	note[0] = '\0';
	if (!dir) {
		if (source_default(data, model, sizeof data, &demo))
			return status_set(err, ST_ERR_ARG, "no --data given and no STL-10 at the default path or bundled demo");
		n = snprintf(note, SOURCE_NOTE_MAX, "no --data: using %s %s",
			     demo ? "the bundled demo data" : "STL-10 at", data);
		if (n < 0 || n >= SOURCE_NOTE_MAX)
			n = SOURCE_NOTE_MAX - 1;
		dir = data;
	}
	st = dataset_open(dir, split, out, loader, err);
	if (loader[0])
		snprintf(note + n, SOURCE_NOTE_MAX - (size_t)n, "%s%s", n ? "\n" : "", loader);
	return st;
}

enum status source_fit_data(struct dataset *d, const struct net_info *in,
			    int resize, char *err)
{
	int h = dataset_height(d), w = dataset_width(d);

	if (h == in->in_h && w == in->in_w)
		return ST_OK;
	if (!resize)
		return status_set(err, ST_ERR_SHAPE,
				  "%s: images are %dx%d but the model expects %dx%d "
				  "(use a model trained at %dx%d, or --resize)",
				  dataset_path(d), w, h, in->in_w, in->in_h, w, h);
	return dataset_resize(d, in->in_h, in->in_w, err);
}

int source_is_index(const char *ref)
{
	const char *p = ref;

	if (!ref || !*ref)
		return 0;
	while (*p >= '0' && *p <= '9')
		p++;
	return *p == 0;
}

enum status source_load_image(const char *ref, struct dataset *d,
			      const struct net_info *in, float *x, int *label,
			      char *name, size_t n, char *err)
{
	enum status st;
	long idx = -1;

	*label = -1;
	if (d) {
		idx = source_parse_long(ref, 0, 0x7fffffffL);
		if (idx >= 0 && idx >= dataset_count(d))
			return status_set(err, ST_ERR_ARG,
					  "%s: image index %ld out of range (the %s split has %d images: 0..%d)",
					  dataset_path(d), idx, dataset_split(d),
					  dataset_count(d), dataset_count(d) - 1);
	}
	if (idx >= 0) {
		if ((st = source_fit_data(d, in, 0, err)) != ST_OK ||
		    (st = dataset_image(d, (int)idx, x, err)) != ST_OK)
			return st;
		*label = dataset_label(d, (int)idx);
		dataset_image_name(d, (int)idx, name, (int)n);
		return ST_OK;
	}
	if ((st = image_load_png(ref, in->in_h, in->in_w, x, err)) != ST_OK)
		return st;
	snprintf(name, n, "%s", ref);
	return ST_OK;
}
