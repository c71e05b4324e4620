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

#include "dataset.h"

int cli_model_opt(struct source_opts *o, const char *cmd, int code,
		  const char *arg)
{
	char msg[ERR_MAX];
	int r = source_model_opt(o, code, arg, msg);

	if (r < 0)
		cli_usage_error(cmd, "%s", msg);
	return r;
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

/* Each line of a note as "advex: note: LINE". */
static void print_note(const char *note)
{
	const char *p = note, *nl;

	while (*p) {
		nl = strchr(p, '\n');
		fprintf(stderr, "advex: note: %.*s\n", (int)(nl ? nl - p : (long)strlen(p)), p);
		p = nl ? nl + 1 : p + strlen(p);
	}
}

int cli_load_net(struct source_opts *o, const char *cmd,
		 int max_batch, int want_param_grads, struct net **out)
{
	char err[ERR_MAX], note[SOURCE_NOTE_MAX];
	enum status st;

	*out = NULL;
	if (o->model && o->arch) {
		cli_usage_error(cmd, "give one of --model FILE or --arch NAME, not both");
		return EXIT_USAGE;
	}
	st = source_open_net(o, max_batch, want_param_grads, out, note, err);
	print_note(note);
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
	v = source_parse_long(s, 0, in->n_classes - 1);
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
	char err[ERR_MAX], note[SOURCE_NOTE_MAX];
	enum status st = source_open_data(dir, split, out, note, err);

	if (st != ST_OK) {
		/* a failed open tells which default it tried, not the
		 * loader's note about what it did open */
		char *loader = dir ? note : strchr(note, '\n');

		if (loader)
			*loader = '\0';
	}
	print_note(note);
	if (st != ST_OK)
		return cli_fail("%s", err);
	return EXIT_OK;
}

int cli_fit_data(struct dataset *d, const struct net_info *in, int resize)
{
	char err[ERR_MAX];

	if (source_fit_data(d, in, resize, err) != ST_OK)
		return cli_fail("%s", err);
	return EXIT_OK;
}

int cli_load_image(const char *ref, struct dataset *d,
		   const struct net_info *in, float *x, int *label, char *name,
		   size_t n)
{
	char err[ERR_MAX];

	enum status st = source_load_image(ref, d, in, x, label, name, n, err);

	/* an index past the data's end: the command line asks for what is
	 * not there, a usage error */
	if (st == ST_ERR_ARG && d && source_parse_long(ref, 0, 0x7fffffffL) >= 0) {
		cli_fail("%s", err);
		return EXIT_USAGE;
	}
	if (st != ST_OK)
		return cli_fail("%s", err);
	return EXIT_OK;
}

int cli_check_image_ref(const char *cmd, const char *ref)
{
	const char *p = ref + (ref[0] == '-' || ref[0] == '+');

	if (!*p || strspn(p, "0123456789") != strlen(p))
		return EXIT_OK;
	if (p == ref && source_parse_long(ref, 0, 0x7fffffffL) >= 0)
		return EXIT_OK;
	return cli_usage_error(cmd, "--image '%s' is not an image index (0, 1, ...; at most %ld); a PNG file of that name: ./%s",
			       ref, 0x7fffffffL, ref);
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
