/* cmd_runs_merge.c - `advex runs merge` (the shards' logs into one,
 * db/merge.h) and `advex runs sweep` (the success rate per epsilon from
 * the log, in the table `advex attack --images` prints: cli/sweeptable). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_runs.h"
#include "db.h"
#include "merge.h"
#include "runs.h"
#include "sweeptable.h"

enum { OPT_DB = OPT_FIRST_FREE, OPT_INTO, OPT_CSV };

/* ---- merge --------------------------------------------------------------------- */

static void print_report(const char *part, const struct merge_report *r)
{
	char shown[4096];

	printf("%s: merged %lld run%s (%lld interrupted), %lld steps, %lld images",
	       cli_printable(part, shown, sizeof shown), (long long)r->runs,
	       r->runs == 1 ? "" : "s", (long long)r->interrupted,
	       (long long)r->steps, (long long)r->images);
	if (r->audits || r->audits_present)
		printf(", %lld audits (%lld already there)", (long long)r->audits,
		       (long long)r->audits_present);
	if (r->other_rows)
		printf(", %lld other rows", (long long)r->other_rows);
	printf("; %lld already there", (long long)r->present);
	if (r->live)
		printf("; %lld still running, left out (merge again later)",
		       (long long)r->live);
	printf("; models %lld added, %lld shared; data %lld added, %lld shared\n",
	       (long long)r->models_added, (long long)r->models_shared,
	       (long long)r->datasets_added, (long long)r->datasets_shared);
	fflush(stdout);
}

int cmd_runs_merge(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "into", required_argument, NULL, OPT_INTO },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *into = NULL;
	struct merge_report r;
	struct db *db = NULL;
	char err[ERR_MAX];
	int o, i, rc = EXIT_OK;

	while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (o) {
		case OPT_INTO: into = optarg; break;
		case 'h':
			printf("usage: advex runs merge --into ALL.db PART.db...\n"
			       "(see advex runs --help)\n");
			return EXIT_OK;
		default: return cli_usage_error("runs", "unknown option");
		}
	}
	if (!into)
		return cli_usage_error("runs", "merge needs --into ALL.db");
	if (optind == argc)
		return cli_usage_error("runs", "merge wants the logs to merge (PART.db...)");
	/* the target is created like any log attack writes */
	if (db_open(into, &db, err) != ST_OK)
		return cli_fail("%s", err);
	/* each part on its own: one bad part does not keep the others out */
	for (i = optind; i < argc; i++) {
		if (merge_part(db, argv[i], &r, err) != ST_OK)
			/* every message names the part */
			rc = strncmp(err, argv[i], strlen(argv[i])) ?
			     cli_fail("%s: %s", argv[i], err) : cli_fail("%s", err);
		else
			print_report(argv[i], &r);
	}
	db_close(db);
	return rc;
}

/* ---- sweep ------------------------------------------------------------------------ */

struct sweep_ctx {
	int json, csv, groups;
};

/* s as one CSV field: quoted when it holds a comma, a quote or a line
 * break (RFC 4180), into buf. */
static const char *csv_field(const char *s, char *buf, size_t n)
{
	size_t used = 0;

	if (!strpbrk(s, ",\"\r\n")) {
		snprintf(buf, n, "%s", s);
		return buf;
	}
	buf[used++] = '"';
	for (; *s && used + 3 < n; s++) {
		if (*s == '"')
			buf[used++] = '"';
		buf[used++] = *s;
	}
	buf[used++] = '"';
	buf[used] = 0;
	return buf;
}

static int print_group(const struct runs_sweep_group *g, void *user)
{
	struct sweep_ctx *c = user;
	struct sweeptable t = { .json = c->json, .csv = c->csv };
	double clean = g->labelled ? (double)g->clean_ok / g->labelled : 0.0;
	char key[8192], f1[2100], f2[2100], shown[4096], data[4096], eps[32];
	int k;

	if (c->csv) {
		/* the header once, for every group */
		t.csv_key_head = c->groups ? NULL :
			"model,model_sha256,data,split,attack,loss,norm,target,iters,";
		snprintf(key, sizeof key, "%s,%s,%s,%s,%s,%s,%s,%d,%d,",
			 csv_field(g->model_path, f1, sizeof f1), g->model_sha256,
			 csv_field(g->data_path, f2, sizeof f2), g->data_split, g->attack,
			 g->loss, g->norm, g->target, g->iters);
		t.csv_key = key;
		if (!c->groups)
			sweeptable_head(&t, g->clean_ok, g->labelled, 0);
	} else if (c->json) {
		t.json_key = json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:s, s:s, s:o, s:i}",
				       "model", g->model_path, "model_sha256",
				       g->model_sha256[0] ? g->model_sha256 : NULL,
				       "data", g->data_path[0] ? g->data_path : NULL,
				       "split", g->data_split[0] ? g->data_split : NULL,
				       "attack", g->attack, "loss", g->loss, "norm", g->norm,
				       "target", g->target >= 0 ? json_integer(g->target)
								: json_null(),
				       "iters", g->iters);
	} else {
		printf("%s%s%s%.12s: %s %s, loss %s, ", c->groups ? "\n" : "",
		       cli_printable(g->model_path, shown, sizeof shown),
		       g->model_sha256[0] ? " " : "", g->model_sha256, g->attack,
		       g->norm, g->loss);
		if (g->target >= 0)
			printf("target %d", g->target);
		else
			printf("untargeted");
		printf(", %d iterations, %d images of %s%s%s%s\n", g->iters, g->images,
		       g->data_path[0] ? cli_printable(g->data_path, data, sizeof data) :
		       "PNG files", g->data_split[0] ? " (" : "", g->data_split,
		       g->data_split[0] ? ")" : "");
		sweeptable_head(&t, g->clean_ok, g->labelled, 0);
	}
	for (k = 0; k < g->n_rows; k++) {
		const struct runs_sweep_row *r = &g->rows[k];

		/* a run logged before schema 2 did not keep eps as written */
		if (!r->eps_text[0])
			snprintf(eps, sizeof eps, "%.6g", r->eps);
		sweeptable_row(&t, r->eps, r->eps_text[0] ? r->eps_text : eps,
			       r->attempted, r->succeeded, NULL, 0, clean);
	}
	json_decref(t.json_key);
	c->groups++;
	return 0;
}

int cmd_runs_sweep(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, OPT_DB },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "csv", no_argument, NULL, OPT_CSV },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct sweep_ctx c = { 0 };
	const char *path = NULL;
	struct db *db = NULL;
	char err[ERR_MAX];
	int o, rc = EXIT_OK;

	while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (o) {
		case OPT_DB: path = optarg; break;
		case OPT_JSON: c.json = 1; break;
		case OPT_CSV: c.csv = 1; break;
		case 'h':
			printf("usage: advex runs sweep [--db FILE] [--json | --csv]\n"
			       "(see advex runs --help)\n");
			return EXIT_OK;
		default: return cli_usage_error("runs", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("runs", "sweep: unexpected argument '%s'", argv[optind]);
	if (c.json && c.csv)
		return cli_usage_error("runs", "sweep: give --json or --csv, not both");
	if ((o = cmd_runs_open_log(path, 0, &db)))
		return o;
	if (runs_sweep(db, print_group, &c, err) != ST_OK)
		rc = cli_fail("%s", err);
	else if (!c.groups)
		rc = cli_fail("%s: no finished runs to tabulate", db_path(db));
	db_close(db);
	return rc;
}
