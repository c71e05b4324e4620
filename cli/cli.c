/* cli.c - helpers shared by the subcommands (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch.h"
#include "blas.h"

const char cli_model_help[] =
	"  --model FILE     an advex model file (see advex-import)\n"
	"  --arch NAME      a built-in architecture with seeded random weights:\n"
	"                   vgg16 (classic 4608-4096-4096-10 head) or vgg16-small\n"
	"                   (4608-10 head), 96x96 inputs, STL-10 class names\n"
	"  --seed S         seed for --arch weights (default 1)\n"
	"  --threads T      threads for the matrix products (default: all cores)\n";

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
			cli_usage_error(cmd, "unknown --arch '%s' (vgg16, vgg16-small)", arg);
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

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("advex: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "advex %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
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

int cli_load_net(const struct cli_model_opts *o, const char *cmd,
		 int max_batch, int want_param_grads, struct net **out)
{
	char err[ERR_MAX];
	struct modelfile *mf;
	enum status st;

	*out = NULL;
	if (!!o->model == !!o->arch) {
		cli_usage_error(cmd, "give exactly one of --model FILE or --arch NAME");
		return EXIT_USAGE;
	}
	if (o->model)
		st = modelfile_open(o->model, &mf, err);
	else
		st = arch_build(o->arch, 96, 10, o->seed, &mf, err);
	if (st != ST_OK)
		return cli_fail("%s", err);
	st = net_create(mf, max_batch, want_param_grads, out, err);
	modelfile_close(mf);
	if (st != ST_OK)
		return cli_fail("%s", err);
	return EXIT_OK;
}

int cli_class_index(const struct net_info *in, const char *s)
{
	long v;
	int i;

	for (i = 0; i < in->n_classes; i++)
		if (!strcasecmp(in->classes[i], s))
			return i;
	v = cli_parse_long(s, 0, in->n_classes - 1);
	if (v >= 0)
		return (int)v;
	fprintf(stderr, "advex: unknown class '%s' (the model's classes:", s);
	for (i = 0; i < in->n_classes; i++)
		fprintf(stderr, "%s %s", i ? "," : "", in->classes[i]);
	fprintf(stderr, "; or an index 0..%d)\n", in->n_classes - 1);
	return -1;
}
