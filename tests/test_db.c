/* test_db.c - the run log: SHA-256, schema and migrations, refusing files
 * that are not ours or are newer, unwritable paths, a full begin / step /
 * finish round trip, list filters, delete, two writer processes and a
 * reader at once, and telling a live writer from a dead one. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "db.h"
#include "image.h"
#include "runlog.h"
#include "runs.h"
#include "sha256.h"
#include "tap.h"

static const char *const classes10[] = { "airplane", "bird", "car", "cat", "deer",
					 "dog", "horse", "monkey", "ship", "truck" };
static char tmpdir[200];

static void path_in(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* ---- raw SQLite helpers: look at the file the way a user would ---------- */

static long long sql_int(const char *path, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return v;
}

/* Text of the first column of every row, joined by '\n', into buf. */
static void sql_text(const char *path, const char *sql, char *buf, size_t n)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	size_t used = 0;

	buf[0] = 0;
	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW && used < n) {
			const unsigned char *t = sqlite3_column_text(st, 0);
			int w = snprintf(buf + used, n - used, "%s\n", t ? (const char *)t : "NULL");

			if (w > 0)
				used += (size_t)w;
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
}

static int sql_exec(const char *path, const char *sql)
{
	sqlite3 *h;
	int rc;

	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
	sqlite3_close(h);
	return rc == SQLITE_OK ? 0 : -1;
}

static unsigned char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b = NULL;
	long len;

	*n = 0;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc(len > 0 ? (size_t)len : 1);
	if (b && fread(b, 1, (size_t)len, f) == (size_t)len)
		*n = (size_t)len;
	fclose(f);
	return b;
}

static int write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(data, 1, n, f) == n;

	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

/* ---- SHA-256 ------------------------------------------------------------- */

static void test_sha256(struct tap *t)
{
	static const char *const want_abc =
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	static const char *const want_empty =
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	static const char *const two_block =
		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	static const char *const want_two =
		"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
	static const char *const want_million =
		"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	char hex[65], hex2[65], path[512], err[ERR_MAX];
	unsigned char *m = malloc(1000000);
	size_t i;

	sha256_hex("abc", 3, hex);
	tap_ok(t, !strcmp(hex, want_abc), "sha256(\"abc\") = %s (FIPS 180-4 vector)", hex);
	sha256_hex("", 0, hex);
	tap_ok(t, !strcmp(hex, want_empty), "sha256(\"\") = %.16s...", hex);
	sha256_hex(two_block, strlen(two_block), hex);
	tap_ok(t, !strcmp(hex, want_two), "sha256 of the 56-byte two-block vector = %.16s...", hex);
	memset(m, 'a', 1000000);
	sha256_hex(m, 1000000, hex);
	tap_ok(t, !strcmp(hex, want_million), "sha256 of a million 'a' = %.16s...", hex);
	/* a file whose size is no multiple of the 64 KiB read or the block */
	for (i = 0; i < 1000000; i++)
		m[i] = (unsigned char)(i * 2654435761u >> 13);
	path_in(path, sizeof path, "hashme");
	write_file(path, m, 200003);
	sha256_hex(m, 200003, hex);
	tap_ok(t, sha256_file(path, hex2, err) == ST_OK && !strcmp(hex, hex2),
	       "sha256 of a 200003-byte file = sha256 of its bytes in memory");
	path_in(path, sizeof path, "no-such-file");
	tap_ok(t, sha256_file(path, hex2, err) == ST_ERR_IO && strstr(err, path),
	       "hashing a missing file fails naming it: %s", err);
	free(m);
}

/* ---- schema, migrations, refusals ----------------------------------------- */

/* What migration 2 -> 3 added, undone (SQLite 3.35's DROP COLUMN): a log
 * of the current schema becomes one of schema 2 with the same rows. */
/* What migration 3 -> 4 added, undone likewise. */
#define UNDO_MIGRATION_4                                                     \
	"ALTER TABLE runs DROP COLUMN restarts; "                             \
	"ALTER TABLE runs DROP COLUMN binary_steps; "                         \
	"ALTER TABLE runs DROP COLUMN quantize; "                             \
	"ALTER TABLE runs DROP COLUMN objective; "

#define UNDO_MIGRATION_3                                                     \
	UNDO_MIGRATION_4                                                      \
	"DROP TRIGGER audits_uuid; DROP INDEX audits_uuid; "                  \
	"ALTER TABLE audits DROP COLUMN uuid; DROP INDEX runs_uuid; "         \
	"ALTER TABLE runs DROP COLUMN uuid; "                                 \
	"ALTER TABLE runs DROP COLUMN clean_pred; "                           \
	"ALTER TABLE runs DROP COLUMN eps_text; "

static void test_schema(struct tap *t)
{
	char path[512], err[ERR_MAX], before[4096], after[4096];
	struct db *db = NULL;

	path_in(path, sizeof path, "fresh/sub/runs.db");
	tap_ok(t, db_open(path, &db, err) == ST_OK, "an absent file in absent directories is created (%s)",
	       db ? "" : err);
	db_close(db);
	tap_ok(t, sql_int(path, "PRAGMA user_version") == DB_SCHEMA_VERSION,
	       "migrated from version 0 (empty) to %d", DB_SCHEMA_VERSION);
	tap_ok(t, sql_int(path, "PRAGMA application_id") == DB_APPLICATION_ID,
	       "application_id marks it as advex's (0x%llx)",
	       (unsigned long long)sql_int(path, "PRAGMA application_id"));
	sql_text(path, "PRAGMA journal_mode", before, sizeof before);
	tap_ok(t, !strcmp(before, "wal\n"), "journal mode is WAL");
	tap_ok(t, sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
			  "name IN ('models', 'datasets', 'runs', 'steps', 'images')") == 5,
	       "tables models, datasets, runs, steps, images exist");

	/* reopening a current database changes nothing */
	sql_text(path, "SELECT sql FROM sqlite_master ORDER BY name", before, sizeof before);
	tap_ok(t, db_open(path, &db, err) == ST_OK, "a version %d database reopens", DB_SCHEMA_VERSION);
	db_close(db);
	sql_text(path, "SELECT sql FROM sqlite_master ORDER BY name", after, sizeof after);
	tap_ok(t, !strcmp(before, after) && sql_int(path, "PRAGMA user_version") == DB_SCHEMA_VERSION,
	       "reopened unchanged: same schema, same version");

	/* a version 1 log (before audits and exports) is migrated, its rows kept */
	path_in(path, sizeof path, "v1.db");
	tap_ok(t, db_open(path, &db, err) == ST_OK, "a log to turn into version 1");
	db_close(db);
	sql_exec(path, UNDO_MIGRATION_3
		 "DROP TABLE exports; DROP TABLE audit_images; DROP TABLE audits; "
		 "INSERT INTO models (path, arch, n_classes, classes) VALUES ('m', 'a', 2, '[]'); "
		 "PRAGMA user_version = 1");
	tap_ok(t, sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN "
			  "('audits', 'audit_images', 'exports')") == 0 &&
		  sql_int(path, "PRAGMA user_version") == 1,
	       "control: the version 1 log has no audits, audit_images or exports");
	tap_ok(t, db_open(path, &db, err) == ST_OK, "a version 1 log opens (%s)", db ? "" : err);
	db_close(db);
	tap_ok(t, sql_int(path, "PRAGMA user_version") == DB_SCHEMA_VERSION &&
		  sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN "
			  "('audits', 'audit_images', 'exports')") == 3 &&
		  sql_int(path, "SELECT count(*) FROM models WHERE path = 'm'") == 1,
	       "migrated 1 -> %d: audits, audit_images and exports added, its model kept",
	       DB_SCHEMA_VERSION);

	/* a zero-byte file is an empty database: migrated */
	path_in(path, sizeof path, "zero.db");
	write_file(path, "", 0);
	tap_ok(t, db_open(path, &db, err) == ST_OK &&
	       sql_int(path, "PRAGMA user_version") == DB_SCHEMA_VERSION,
	       "a zero-byte file is migrated from version 0");
	db_close(db);
}

/* open must fail with msg in the message and leave the file byte for byte */
static void expect_refused(struct tap *t, const char *path, const char *msg,
			   const char *what)
{
	char err[ERR_MAX] = "";
	struct db *db = NULL;
	size_t n0, n1;
	unsigned char *b0 = slurp(path, &n0), *b1;
	enum status st = db_open(path, &db, err);

	b1 = slurp(path, &n1);
	tap_ok(t, st != ST_OK && !db && strstr(err, msg) && strstr(err, path),
	       "%s refused: %s", what, err);
	tap_ok(t, b0 && b1 && n0 == n1 && !memcmp(b0, b1, n0), "%s: its %zu bytes unchanged", what, n0);
	db_close(db);
	free(b0);
	free(b1);
}

static void test_refusals(struct tap *t)
{
	char path[512], msg[1024], err[ERR_MAX];
	struct db *db = NULL;

	path_in(path, sizeof path, "newer.db");
	snprintf(msg, sizeof msg, "CREATE TABLE future (x); PRAGMA user_version = 99; "
		 "PRAGMA application_id = %d", DB_APPLICATION_ID);
	sql_exec(path, msg);
	snprintf(msg, sizeof msg, "%s: written by a newer advex (schema 99; this advex knows %d); "
		 "not modified", path, DB_SCHEMA_VERSION);
	expect_refused(t, path, msg, "a schema 99 database");
	tap_ok(t, sql_int(path, "PRAGMA user_version") == 99, "it is still schema 99");

	path_in(path, sizeof path, "newer-noid.db");
	snprintf(msg, sizeof msg, "CREATE TABLE future (x); PRAGMA user_version = %d",
		 DB_SCHEMA_VERSION + 1);
	sql_exec(path, msg);
	snprintf(msg, sizeof msg, "written by a newer advex (schema %d;", DB_SCHEMA_VERSION + 1);
	expect_refused(t, path, msg, "a newer-schema database without application_id");

	path_in(path, sizeof path, "text.db");
	write_file(path, "these are not the bytes of an SQLite database, not at all\n", 58);
	expect_refused(t, path, "not an advex run database", "a text file");

	path_in(path, sizeof path, "other.db");
	sql_exec(path, "CREATE TABLE contacts (name TEXT)");
	expect_refused(t, path, "tables of its own", "another program's SQLite file");

	path_in(path, sizeof path, "otherid.db");
	sql_exec(path, "PRAGMA application_id = 1234");
	expect_refused(t, path, "application_id 1234", "an SQLite file with a foreign application_id");

	/* unwritable places, whoever runs the test (root included) */
	path_in(path, sizeof path, "plainfile");
	write_file(path, "x", 1);
	path_in(path, sizeof path, "plainfile/runs.db");
	tap_ok(t, db_open(path, &db, err) != ST_OK && strstr(err, path) &&
	       strstr(err, "not a directory"), "a path under a regular file fails: %s", err);
	path_in(path, sizeof path, "adir");
	mkdir(path, 0755);
	tap_ok(t, db_open(path, &db, err) != ST_OK && strstr(err, path),
	       "a directory as the database fails: %s", err);
	tap_ok(t, db_open("/proc/advex-no-such/runs.db", &db, err) != ST_OK &&
	       strstr(err, "/proc/advex-no-such/runs.db"),
	       "a path that cannot be created fails: %s", err);

	if (geteuid() == 0) {
		tap_ok(t, 1, "# SKIP read-only file and directory: root ignores permissions");
		tap_ok(t, 1, "# SKIP read-only file and directory: root ignores permissions");
		return;
	}
	path_in(path, sizeof path, "ro.db");
	tap_ok(t, db_open(path, &db, err) == ST_OK, "ro.db created");
	db_close(db);
	chmod(path, 0444);
	tap_ok(t, db_open(path, &db, err) != ST_OK && strstr(err, "read-only") && strstr(err, path),
	       "a read-only file fails: %s", err);
	path_in(path, sizeof path, "rodir");
	mkdir(path, 0555);
	path_in(path, sizeof path, "rodir/runs.db");
	tap_ok(t, db_open(path, &db, err) != ST_OK && strstr(err, path),
	       "a file in a read-only directory fails: %s", err);
}

/* ---- a full round trip --------------------------------------------------- */

#define H 8
#define W 6
#define NPIX (3 * H * W)

struct fake_step {
	struct attack_report r;
	float probs[10];
	double norms[5];
};

/* A report with every field set, different at each i. */
static void fake_report(struct fake_step *f, int i)
{
	int k;

	memset(f, 0, sizeof *f);
	for (k = 0; k < 10; k++)
		f->probs[k] = (float)(k + 1 + i) / (float)(55 + 10 * i);
	for (k = 0; k < 5; k++)
		f->norms[k] = 1e-3 * (k + 1) * (i + 1);
	if (i == 2)
		f->norms[4] = INFINITY;
	f->r.iter = i;
	f->r.loss = i == 1 ? NAN : 2.5 - 0.25 * i;
	f->r.pred = i % 10;
	f->r.target_prob = f->probs[3];
	f->r.probs = f->probs;
	f->r.grad.l1 = 10.0 + i;
	f->r.grad.l2 = 1.0 / (i + 1);
	f->r.grad.linf = i == 2 ? 0.0 : 0.01 * (i + 1);
	f->r.grad.zero_frac = i == 2 ? 1.0 : 0.125 * i;
	f->r.grad.n_zero = (size_t)(7 * i);
	f->r.grad.n_nan = (size_t)i;
	f->r.grad.n_inf = (size_t)(2 * i);
	f->r.grad.n_tiny = (size_t)(3 * i);
	f->r.grad.n_huge = (size_t)(4 * i);
	for (k = 0; k < DIAG_HIST_BINS; k++)
		f->r.grad.hist[k] = (size_t)(k * 100 + i);
	f->r.layer_norms = f->norms;
	f->r.n_layers = 4;
	f->r.diagnosis = i == 2 ? "the gradient is exactly zero: \"p\" clipped" : "";
	f->r.pert_linf = 0.001 * i;
	f->r.pert_l2 = 0.01 * i;
	f->r.step_ms = 1.5 + i;
}

struct check_ctx {
	int n, bad;
	char why[256];
};

static int feq(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

static int check_step(const struct run_step *s, void *user)
{
	struct check_ctx *c = user;
	struct fake_step f;
	int k, bad = 0;

	fake_report(&f, c->n);
	bad |= s->iter != f.r.iter || !feq(s->loss, f.r.loss) || s->pred != f.r.pred;
	bad |= (float)s->target_prob != (float)f.r.target_prob;
	bad |= s->n_classes != 10;
	for (k = 0; k < 10 && !bad; k++)
		bad |= s->probs[k] != f.probs[k];
	bad |= !feq(s->grad_l1, f.r.grad.l1) || !feq(s->grad_l2, f.r.grad.l2) ||
	       !feq(s->grad_linf, f.r.grad.linf) || !feq(s->zero_frac, f.r.grad.zero_frac);
	for (k = 0; k < DIAG_HIST_BINS; k++)
		bad |= s->hist[k] != (int64_t)f.r.grad.hist[k];
	bad |= s->n_zero != (int64_t)f.r.grad.n_zero || s->n_nan != (int64_t)f.r.grad.n_nan ||
	       s->n_inf != (int64_t)f.r.grad.n_inf || s->n_tiny != (int64_t)f.r.grad.n_tiny ||
	       s->n_huge != (int64_t)f.r.grad.n_huge;
	bad |= s->n_layer_norms != 5;
	for (k = 0; k < 5 && !bad; k++)
		bad |= !feq(s->layer_norms[k], f.norms[k]);
	bad |= !feq(s->pert_linf, f.r.pert_linf) || !feq(s->pert_l2, f.r.pert_l2) ||
	       strcmp(s->diagnosis, f.r.diagnosis) || !feq(s->step_ms, f.r.step_ms);
	if (bad && !c->bad)
		snprintf(c->why, sizeof c->why, "step %d differs", c->n);
	c->bad |= bad;
	c->n++;
	return 0;
}

static struct run_begin begin_desc(const struct attack_params *p, const float *x0,
				   const char *model)
{
	struct run_begin b = {
		.model_path = model, .model_arch = "test net, 4 layers",
		.data_path = tmpdir, .data_kind = "stl10", .data_split = "test",
		.image_ref = "test_X.bin#17", .true_label = 5, .n_classes = 10,
		.classes = classes10, .params = p, .h = H, .w = W, .x0 = x0
	};
	return b;
}

static void test_round_trip(struct tap *t)
{
	char path[512], model[512], err[ERR_MAX], sha[65], names[10][64];
	struct attack_params p = attack_params_default();
	struct fake_step f;
	struct check_ctx cc = { 0 };
	struct run_row r;
	struct db *db;
	float x0[NPIX], xa[NPIX], probs[10], *pix = NULL;
	unsigned char *png = NULL;
	size_t len;
	int64_t id;
	int i, n, h, w, ok;

	for (i = 0; i < NPIX; i++) {
		x0[i] = (float)((i * 37) % 256) / 255.0f;
		xa[i] = fminf(1.0f, fmaxf(0.0f, x0[i] + 0.013f * (float)((i % 5) - 2)));
	}
	path_in(model, sizeof model, "model.safetensors");
	write_file(model, "pretend weights", 15);
	sha256_hex("pretend weights", 15, sha);
	p.kind = ATTACK_MIFGSM;
	p.loss.mode = LOSS_PROB_CE;
	p.norm = ATTACK_L2;
	p.eps = 0.5;
	p.alpha = 0.05;
	p.iters = 3;
	p.momentum = 0.9;
	p.random_start = 1;
	p.seed = 424242;
	p.target = 3;
	p.loss.clip_eps = 1e-6;
	p.loss.kappa = 0.25;
	p.early_stop = 1;
	path_in(path, sizeof path, "trip.db");
	if (!tap_ok(t, db_open(path, &db, err) == ST_OK, "open %s", path))
		return;
	{
		struct run_begin b = begin_desc(&p, x0, model);

		ok = runs_begin(db, &b, &id, err) == ST_OK && id > 0;
		tap_ok(t, ok, "runs_begin: run %lld", (long long)id);
	}
	tap_ok(t, runs_get(db, id, &r, err) == ST_OK && !strcmp(r.status, "running") &&
	       r.writer_pid == (int)getpid() && r.steps == 0 && r.success == -1 &&
	       r.final_pred == -1 && isnan(r.final_loss) && !r.ended[0],
	       "a new run is 'running', owned by this pid, with no outcome");
	for (i = 0; i < 3; i++) {
		fake_report(&f, i);
		if (runs_step(db, id, &f.r, 10, err) != ST_OK)
			break;
	}
	tap_ok(t, i == 3, "three steps logged (NaN loss, infinite layer norm, a diagnosis with quotes)");
	fake_report(&f, 2);
	f.r.success = 1;
	f.r.pred = 3;
	tap_ok(t, runs_finish(db, id, "done", &f.r, xa, 1.25, err) == ST_OK, "runs_finish done");
	ok = runs_get(db, id, &r, err) == ST_OK;
	tap_ok(t, ok && !strcmp(r.status, "done") && r.ended[0] && r.steps == 3 &&
	       r.success == 1 && r.final_pred == 3 && r.final_iter == 2 &&
	       r.final_loss == f.r.loss && (float)r.final_target_prob == f.probs[3] &&
	       r.pert_linf == f.r.pert_linf && r.pert_l2 == f.r.pert_l2 && r.wall_s == 1.25 &&
	       !strcmp(r.final_diagnosis, f.r.diagnosis),
	       "the outcome reads back: done, success, prediction, loss, p(target), norms, wall time, diagnosis");
	tap_ok(t, ok && !strcmp(r.model_sha256, sha) && !strncmp(r.model_path, "/", 1) &&
	       strstr(r.model_path, "model.safetensors") && !strcmp(r.model_arch, "test net, 4 layers"),
	       "model: absolute path, SHA-256 of the file (%.12s...), architecture", r.model_sha256);
	tap_ok(t, ok && !strcmp(r.data_kind, "stl10") && !strcmp(r.data_split, "test") &&
	       r.data_path[0] == '/' && !strcmp(r.image_ref, "test_X.bin#17") &&
	       r.true_label == 5 && r.h == H && r.w == W,
	       "data source, image reference, true label and size read back");
	tap_ok(t, ok && !strcmp(r.attack, "mifgsm") && !strcmp(r.loss, "prob-ce") &&
	       !strcmp(r.norm, "l2") && r.eps == 0.5 && r.alpha == 0.05 && r.iters == 3 &&
	       r.momentum == 0.9 && r.random_start == 1 && r.seed == 424242 &&
	       r.target == 3 && r.clip_eps == 1e-6 && r.kappa == 0.25 && r.early_stop == 1 &&
	       r.n_classes == 10,
	       "every attack parameter reads back");
	ok = runs_steps(db, id, check_step, &cc, err) == ST_OK;
	tap_ok(t, ok && cc.n == 3 && !cc.bad,
	       "every step field reads back exactly (%d steps%s%s)", cc.n, cc.bad ? ": " : "",
	       cc.why);
	tap_ok(t, runs_classes(db, id, names, 10, err) == ST_OK && !strcmp(names[0], "airplane") &&
	       !strcmp(names[9], "truck"), "class names read back");
	tap_ok(t, runs_final_probs(db, id, probs, 10, &n, err) == ST_OK && n == 10 &&
	       !memcmp(probs, f.probs, sizeof probs), "final probabilities read back exactly");
	ok = runs_adv_png(db, id, &png, &len, err) == ST_OK &&
	     image_decode_png(png, len, &pix, &h, &w, err) == ST_OK && h == H && w == W;
	for (i = 0; ok && i < NPIX; i++)
		ok = pix[i] == (float)(unsigned char)(xa[i] * 255.0 + 0.5) / 255.0f;
	tap_ok(t, ok, "the stored adversarial PNG decodes to x_adv rounded to 8 bits");
	free(png);
	free(pix);
	pix = NULL;
	ok = runs_clean_png(db, id, &png, &len, err) == ST_OK &&
	     image_decode_png(png, len, &pix, &h, &w, err) == ST_OK &&
	     !memcmp(pix, x0, sizeof x0);
	tap_ok(t, ok, "the stored clean PNG decodes to x0 exactly");
	free(png);
	free(pix);
	tap_ok(t, runs_get(db, id + 100, &r, err) != ST_OK && strstr(err, "no such run in") &&
	       strstr(err, path), "an unknown id: %s", err);
	tap_ok(t, runs_step(db, id + 100, &f.r, 10, err) != ST_OK && strstr(err, "no such run"),
	       "logging a step of an unknown run fails: %s", err);
	tap_ok(t, runs_finish(db, id, "bogus", NULL, NULL, 0, err) == ST_ERR_ARG,
	       "runs_finish refuses a status other than done/interrupted/failed");
	db_close(db);
	tap_ok(t, sql_int(path, "SELECT count(*) FROM steps WHERE loss IS NULL") == 1,
	       "NaN is stored as NULL (SQLite has no NaN)");
	tap_ok(t, sql_int(path, "SELECT abs(json_extract(probs, '$[9]') - 10.0 / 55) < 1e-7 "
			  "FROM steps WHERE iter = 0") == 1,
	       "probabilities are JSON arrays a user can query (json_extract)");
}

/* The stored hash is reused while size and mtime are unchanged. */
/* A UUID as RFC 4122 version 4 writes it: 8-4-4-4-12 lower-case hex,
 * version nibble 4, variant 8, 9, a or b. */
static int uuid_v4(const char *u)
{
	int i;

	if (strlen(u) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (u[i] != '-')
				return 0;
		} else if (!strchr("0123456789abcdef", u[i])) {
			return 0;
		}
	}
	return u[14] == '4' && strchr("89ab", u[19]);
}

/* Migration 2 -> 3 on a log the way schema 2 left it: runs and audits get
 * distinct UUIDs, keep every other column as it was, and runs know no
 * clean prediction; an audit stored afterwards by code that names no UUID
 * (db/audits.c) gets one all the same. The schema 2 file is made from a
 * current one by undoing what migration 3 adds, so it holds real runs. */
static void test_migration_3(struct tap *t)
{
	static const char old_cols[] =
		"SELECT group_concat(id || '|' || created || '|' || model_id || '|' || "
		"image_ref || '|' || eps || '|' || coalesce(success, 'N'), ';') "
		"FROM (SELECT * FROM runs ORDER BY id)";
	char path[512], err[ERR_MAX], before[4096], after[4096], uuids[4096], *u, *save;
	struct attack_params p = attack_params_default();
	struct fake_step fs;
	struct run_row r;
	struct db *db;
	float x0[NPIX] = { 0 };
	int64_t id = 0;
	int i, good = 1, n = 0;

	path_in(path, sizeof path, "v2.db");
	if (db_open(path, &db, err) != ST_OK)
		return;
	for (i = 0; i < 4; i++) {
		struct run_begin b = begin_desc(&p, x0, "builtin:v2");

		runs_begin(db, &b, &id, err);
		fake_report(&fs, 0);
		runs_step(db, id, &fs.r, 10, err);
		if (i != 3)
			runs_finish(db, id, "done", &fs.r, x0, 0.5, err);
	}
	db_close(db);
	/* tables of later migrations go too, so that they can come back */
	sql_text(path, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN "
		 "('models', 'datasets', 'runs', 'steps', 'images', 'audits', 'audit_images', "
		 "'exports', 'sqlite_sequence')", uuids, sizeof uuids);
	for (u = strtok_r(uuids, "\n", &save); u; u = strtok_r(NULL, "\n", &save)) {
		char drop[200];

		snprintf(drop, sizeof drop, "DROP TABLE \"%s\"", u);
		sql_exec(path, drop);
	}
	tap_ok(t, sql_exec(path, UNDO_MIGRATION_3
			   "INSERT INTO audits (created, n_images, params, checks, n_pass, "
			   "n_warn, n_fail) VALUES ('then', 1, '{}', '[]', 1, 0, 0), "
			   "('then', 2, '{}', '[]', 0, 1, 0); PRAGMA user_version = 2") == 0 &&
	       sql_int(path, "SELECT count(*) FROM pragma_table_info('runs') WHERE name = 'uuid'") == 0,
	       "a version 2 log with 4 runs (one left running by a dead writer) and 2 audits");
	sql_text(path, old_cols, before, sizeof before);
	tap_ok(t, db_open(path, &db, err) == ST_OK &&
	       sql_int(path, "PRAGMA user_version") == DB_SCHEMA_VERSION,
	       "reopened: migrated 2 -> %d (%s)", DB_SCHEMA_VERSION, db ? "" : err);
	db_close(db);
	sql_text(path, old_cols, after, sizeof after);
	tap_ok(t, before[0] && !strcmp(before, after), "every version 2 column kept (%.60s...)", after);
	sql_text(path, "SELECT uuid FROM runs ORDER BY id", uuids, sizeof uuids);
	for (u = strtok_r(uuids, "\n", &save); u; u = strtok_r(NULL, "\n", &save), n++)
		good &= uuid_v4(u);
	tap_ok(t, n == 4 && good && sql_int(path, "SELECT count(DISTINCT uuid) FROM runs") == 4,
	       "4 runs, 4 distinct version 4 UUIDs");
	tap_ok(t, !uuid_v4("0123abcd-0000-1000-8000-000000000000") &&
	       !uuid_v4("0123abcd-0000-4000-c000-000000000000") &&
	       !uuid_v4("0123ABCD-0000-4000-8000-000000000000"),
	       "control: the check rejects version 1, variant c and upper case");
	tap_ok(t, sql_int(path, "SELECT count(*) FROM runs WHERE clean_pred IS NULL AND "
			  "eps_text IS NULL") == 4, "old runs: clean prediction and eps text unknown");
	tap_ok(t, sql_int(path, "SELECT count(*) FROM runs WHERE status = 'interrupted'") == 1,
	       "the dead writer's run is marked interrupted after the migration");
	tap_ok(t, sql_int(path, "SELECT count(DISTINCT uuid) FROM audits WHERE length(uuid) = 36") == 2,
	       "the 2 audits have 2 distinct UUIDs");
	sql_exec(path, "INSERT INTO audits (created, n_images, params, checks, n_pass, n_warn, "
		 "n_fail) VALUES ('now', 3, '{}', '[]', 0, 0, 1)");
	sql_text(path, "SELECT uuid FROM audits WHERE created = 'now'", after, sizeof after);
	after[strcspn(after, "\n")] = 0;
	tap_ok(t, uuid_v4(after) && sql_int(path, "SELECT count(DISTINCT uuid) FROM audits") == 3,
	       "a new audit naming no UUID gets its own from the trigger (%s)", after);
	/* a new run: its own UUID, the clean prediction and eps as written */
	if (db_open(path, &db, err) != ST_OK)
		return;
	{
		struct run_begin b = begin_desc(&p, x0, "builtin:v2");

		b.has_clean_pred = 1;
		b.clean_pred = 0;
		b.eps_text = "8/255";
		runs_begin(db, &b, &id, err);
		runs_finish(db, id, "done", &fs.r, x0, 0.5, err);
	}
	tap_ok(t, runs_get(db, id, &r, err) == ST_OK && uuid_v4(r.uuid) && r.clean_pred == 0 &&
	       !strcmp(r.eps_text, "8/255") &&
	       sql_int(path, "SELECT count(DISTINCT uuid) FROM runs") == 5,
	       "a new run: a fifth distinct UUID (%s), clean prediction 0, eps '8/255'", r.uuid);
	db_close(db);
}

/* Migration 3 -> 4: runs logged before know no restarts, binary steps,
 * quantize or objective (NULL, read as unknown, shown as such and not
 * used by a replay); every other column is kept; a run logged afterwards
 * records them, with the objective its kind optimises. */
static void test_migration_4(struct tap *t)
{
	static const char old_cols[] =
		"SELECT group_concat(id || '|' || uuid || '|' || attack || '|' || loss || "
		"'|' || coalesce(success, 'N'), ';') FROM (SELECT * FROM runs ORDER BY id)";
	char path[512], err[ERR_MAX], before[4096], after[4096];
	struct attack_params p = attack_params_default(), q;
	struct fake_step fs;
	struct run_row r;
	struct db *db;
	float x0[NPIX] = { 0 };
	int64_t id = 0, first = 0;
	int i;

	path_in(path, sizeof path, "v3.db");
	if (db_open(path, &db, err) != ST_OK)
		return;
	for (i = 0; i < 2; i++) {
		struct run_begin b = begin_desc(&p, x0, "builtin:v3");

		runs_begin(db, &b, &id, err);
		fake_report(&fs, 0);
		runs_finish(db, id, "done", &fs.r, x0, 0.5, err);
		first = first ? first : id;
	}
	db_close(db);
	tap_ok(t, sql_exec(path, UNDO_MIGRATION_4 "PRAGMA user_version = 3") == 0 &&
	       sql_int(path, "SELECT count(*) FROM pragma_table_info('runs') WHERE "
		       "name = 'objective'") == 0, "a version 3 log with 2 runs");
	sql_text(path, old_cols, before, sizeof before);
	tap_ok(t, db_open(path, &db, err) == ST_OK &&
	       sql_int(path, "PRAGMA user_version") == DB_SCHEMA_VERSION,
	       "reopened: migrated 3 -> %d (%s)", DB_SCHEMA_VERSION, db ? "" : err);
	sql_text(path, old_cols, after, sizeof after);
	tap_ok(t, before[0] && !strcmp(before, after), "every version 3 column kept (%.60s...)", after);
	tap_ok(t, runs_get(db, first, &r, err) == ST_OK && r.restarts == -1 &&
	       r.binary_steps == -1 && r.quantize == -1 && !r.objective[0],
	       "an old run: restarts, binary steps, quantize and objective unknown");
	q = p;
	q.kind = ATTACK_APGD_DLR;
	q.restarts = 3;
	q.quantize = 1;
	q.binary_steps = 5;
	{
		struct run_begin b = begin_desc(&q, x0, "builtin:v3");

		runs_begin(db, &b, &id, err);
		runs_finish(db, id, "done", &fs.r, x0, 0.5, err);
	}
	tap_ok(t, runs_get(db, id, &r, err) == ST_OK && r.restarts == 3 && r.binary_steps == 5 &&
	       r.quantize == 1 && !strcmp(r.objective, "dlr") && !strcmp(r.loss, "ce"),
	       "a new apgd-dlr run: restarts 3, binary steps 5, quantize, objective %s "
	       "(loss column: --loss %s)", r.objective, r.loss);
	q.target = 1;
	{
		struct run_begin b = begin_desc(&q, x0, "builtin:v3");

		runs_begin(db, &b, &id, err);
		runs_finish(db, id, "done", &fs.r, x0, 0.5, err);
	}
	tap_ok(t, runs_get(db, id, &r, err) == ST_OK && !strcmp(r.objective, "dlr-targeted"),
	       "control: targeted, the objective is %s", r.objective);
	db_close(db);
}

static void test_hash_cache(struct tap *t)
{
	char path[512], model[512], err[ERR_MAX], sha_a[65], sha_b[65];
	struct attack_params p = attack_params_default();
	struct timespec ts[2] = { { 1000000, 0 }, { 1000000, 0 } };
	struct run_row r;
	struct db *db;
	float x0[NPIX] = { 0 };
	int64_t id;

	path_in(path, sizeof path, "cache.db");
	path_in(model, sizeof model, "cached.safetensors");
	write_file(model, "AAAA", 4);
	utimensat(AT_FDCWD, model, ts, 0);
	sha256_hex("AAAA", 4, sha_a);
	sha256_hex("BBBB", 4, sha_b);
	if (db_open(path, &db, err) != ST_OK)
		return;
	{
		struct run_begin b = begin_desc(&p, x0, model);

		runs_begin(db, &b, &id, err);
		runs_finish(db, id, "done", NULL, NULL, 0, err);
		runs_get(db, id, &r, err);
		tap_ok(t, !strcmp(r.model_sha256, sha_a), "first run hashes the model");
		/* same size and mtime: taken as unchanged */
		write_file(model, "BBBB", 4);
		utimensat(AT_FDCWD, model, ts, 0);
		runs_begin(db, &b, &id, err);
		runs_finish(db, id, "done", NULL, NULL, 0, err);
		runs_get(db, id, &r, err);
		tap_ok(t, !strcmp(r.model_sha256, sha_a),
		       "same size and mtime: the stored hash is reused, not recomputed");
		ts[1].tv_sec++;
		utimensat(AT_FDCWD, model, ts, 0);
		runs_begin(db, &b, &id, err);
		runs_finish(db, id, "done", NULL, NULL, 0, err);
		runs_get(db, id, &r, err);
		tap_ok(t, !strcmp(r.model_sha256, sha_b), "a new mtime: hashed again");
		b.model_path = "builtin:vgg-compact";
		runs_begin(db, &b, &id, err);
		runs_finish(db, id, "done", NULL, NULL, 0, err);
		runs_get(db, id, &r, err);
		tap_ok(t, !strcmp(r.model_path, "builtin:vgg-compact") && !r.model_sha256[0],
		       "a built-in model: builtin:NAME and no hash");
	}
	db_close(db);
}

/* ---- list, delete --------------------------------------------------------- */

struct list_ctx {
	int n;
	int64_t ids[16];
};

static int collect(const struct run_row *r, void *user)
{
	struct list_ctx *c = user;

	if (c->n < 16)
		c->ids[c->n] = r->id;
	c->n++;
	return 0;
}

static void test_list_delete(struct tap *t)
{
	char path[512], err[ERR_MAX], m1[512], m2[512];
	struct attack_params p = attack_params_default();
	struct runs_filter f = { 0 };
	struct list_ctx c = { 0 };
	struct fake_step fs;
	struct run_row r;
	struct db *db;
	float x0[NPIX] = { 0 };
	int64_t id[5];
	int i;

	path_in(path, sizeof path, "list.db");
	path_in(m1, sizeof m1, "alpha.safetensors");
	path_in(m2, sizeof m2, "beta.safetensors");
	write_file(m1, "1", 1);
	write_file(m2, "2", 1);
	if (db_open(path, &db, err) != ST_OK)
		return;
	for (i = 0; i < 5; i++) {
		struct run_begin b = begin_desc(&p, x0, i < 3 ? m1 : m2);

		runs_begin(db, &b, &id[i], err);
		fake_report(&fs, 0);
		runs_step(db, id[i], &fs.r, 10, err);
		runs_step(db, id[i], &fs.r, 10, err);
		if (i != 4)
			runs_finish(db, id[i], i == 1 ? "failed" : "done", &fs.r, x0, 0.5, err);
	}
	runs_list(db, &f, collect, &c, err);
	tap_ok(t, c.n == 5 && c.ids[0] == id[4] && c.ids[4] == id[0], "list: 5 runs, newest first");
	c.n = 0;
	f.model = "alpha";
	runs_list(db, &f, collect, &c, err);
	tap_ok(t, c.n == 3, "--model alpha: 3 runs (%d)", c.n);
	c.n = 0;
	f.model = NULL;
	f.status = "failed";
	runs_list(db, &f, collect, &c, err);
	tap_ok(t, c.n == 1 && c.ids[0] == id[1], "--status failed: run %lld only", (long long)id[1]);
	c.n = 0;
	f.status = "running";
	runs_list(db, &f, collect, &c, err);
	tap_ok(t, c.n == 1 && c.ids[0] == id[4], "--status running: the unfinished run");
	c.n = 0;
	f.status = NULL;
	f.limit = 2;
	runs_list(db, &f, collect, &c, err);
	tap_ok(t, c.n == 2 && c.ids[0] == id[4] && c.ids[1] == id[3], "--limit 2: the 2 newest");

	tap_ok(t, runs_delete(db, id[4], err) != ST_OK && strstr(err, "still running"),
	       "a run whose writer lives is not deleted: %s", err);
	runs_finish(db, id[4], "done", NULL, NULL, 0, err);
	tap_ok(t, runs_delete(db, id[0], err) == ST_OK && runs_get(db, id[0], &r, err) != ST_OK &&
	       strstr(err, "no such run"), "deleted run %lld is gone", (long long)id[0]);
	tap_ok(t, runs_delete(db, id[0], err) != ST_OK && strstr(err, "no such run in"),
	       "deleting it again: %s", err);
	for (i = 3; i < 5; i++)
		runs_delete(db, id[i], err);
	db_close(db);
	tap_ok(t, sql_int(path, "SELECT count(*) FROM steps") == 4 &&
	       sql_int(path, "SELECT count(*) FROM images") == 4,
	       "its steps and images went with it (cascade): %lld steps, %lld images left",
	       sql_int(path, "SELECT count(*) FROM steps"), sql_int(path, "SELECT count(*) FROM images"));
	tap_ok(t, sql_int(path, "SELECT count(*) FROM models") == 1,
	       "a model no run uses any more is removed too");
}

/* ---- several processes ---------------------------------------------------- */

/* Child: begin a run and log n steps; exit status = errors. */
static int writer(const char *path, int n, int go_fd)
{
	struct attack_params p = attack_params_default();
	struct fake_step f;
	float x0[NPIX] = { 0 };
	char err[ERR_MAX], c;
	struct db *db;
	int64_t id;
	int i, errors = 0;

	if (go_fd >= 0 && read(go_fd, &c, 1) != 1)
		return 1;
	if (db_open(path, &db, err) != ST_OK) {
		printf("# writer %d: %s\n", (int)getpid(), err);
		return 1;
	}
	{
		struct run_begin b = begin_desc(&p, x0, "builtin:w");

		if (runs_begin(db, &b, &id, err) != ST_OK) {
			printf("# writer: %s\n", err);
			db_close(db);
			return 1;
		}
	}
	for (i = 0; i < n; i++) {
		fake_report(&f, i % 3);
		f.r.iter = i;
		if (runs_step(db, id, &f.r, 10, err) != ST_OK) {
			printf("# writer step %d: %s\n", i, err);
			errors++;
		}
		usleep(500);	/* an attack step takes milliseconds */
	}
	if (runs_finish(db, id, "done", &f.r, x0, 0, err) != ST_OK) {
		printf("# writer finish: %s\n", err);
		errors++;
	}
	db_close(db);
	return errors > 100 ? 100 : errors;
}

static int count_step(const struct run_step *s, void *user)
{
	(void)s;
	++*(int *)user;
	return 0;
}

static int read_one(const struct run_row *r, void *user)
{
	(void)r;
	++*(int *)user;
	return 0;
}

/* Child: list and read steps until told to stop; exit status = errors. */
static int reader(const char *path, int go_fd, int stop_fd)
{
	struct runs_filter f = { 0 };
	char err[ERR_MAX], c;
	struct db *db;
	int errors = 0, rounds = 0, n;

	if (read(go_fd, &c, 1) != 1)
		return 1;
	if (db_open(path, &db, err) != ST_OK) {
		printf("# reader: %s\n", err);
		return 1;
	}
	fcntl(stop_fd, F_SETFL, O_NONBLOCK);
	while (read(stop_fd, &c, 1) != 0) {	/* 0: the parent closed it */
		int64_t id;

		n = 0;
		if (runs_list(db, &f, read_one, &n, err) != ST_OK) {
			printf("# reader list: %s\n", err);
			errors++;
		}
		for (id = 1; id <= 3; id++) {
			n = 0;
			if (runs_steps(db, id, count_step, &n, err) != ST_OK &&
			    !strstr(err, "no such run")) {
				printf("# reader steps: %s\n", err);
				errors++;
			}
		}
		rounds++;
	}
	printf("# reader: %d rounds of list + steps while the writers ran\n", rounds);
	db_close(db);
	return errors > 100 ? 100 : errors;
}

static void test_concurrency(struct tap *t)
{
	char path[512], err[ERR_MAX];
	int go[2], stop[2], i, st, status[3] = { -1, -1, -1 };
	pid_t pid[3];
	struct run_row r;
	struct db *db;
	double t0, t1;

	path_in(path, sizeof path, "busy.db");	/* not created yet: they race to */
	if (pipe(go) || pipe(stop))
		return;
	fflush(stdout);
	for (i = 0; i < 3; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			close(go[1]);
			close(stop[1]);
			st = i < 2 ? writer(path, 200, go[0]) : reader(path, go[0], stop[0]);
			fflush(stdout);
			_exit(st);
		}
	}
	close(go[0]);
	close(stop[0]);
	t0 = clock_ms() / 1000.0;
	if (write(go[1], "ggg", 3) != 3)
		return;
	for (i = 0; i < 2; i++)
		waitpid(pid[i], &status[i], 0);
	close(stop[1]);
	waitpid(pid[2], &status[2], 0);
	t1 = clock_ms() / 1000.0;
	close(go[1]);
	tap_ok(t, WIFEXITED(status[0]) && WEXITSTATUS(status[0]) == 0 &&
	       WIFEXITED(status[1]) && WEXITSTATUS(status[1]) == 0,
	       "two writers, 200 committed steps each, on a file they both create: 0 errors "
	       "(%.2f s)", t1 - t0);
	tap_ok(t, WIFEXITED(status[2]) && WEXITSTATUS(status[2]) == 0,
	       "a reader listing and reading steps meanwhile: 0 errors");
	if (db_open(path, &db, err) != ST_OK)
		return;
	st = 0;
	for (i = 1; i <= 2; i++)
		st += runs_get(db, i, &r, err) == ST_OK && r.steps == 200 && !strcmp(r.status, "done");
	tap_ok(t, st == 2, "both runs are done with 200 steps each");
	db_close(db);
}

/* Child: begin, log n steps, say so on ready_fd, then wait to be killed
 * (or, with slow, keep logging one step per millisecond). */
static void doomed_writer(const char *path, int n, int ready_fd, int slow)
{
	struct attack_params p = attack_params_default();
	struct fake_step f;
	float x0[NPIX] = { 0 };
	char err[ERR_MAX];
	struct db *db;
	int64_t id;
	int i;

	if (db_open(path, &db, err) != ST_OK)
		_exit(1);
	{
		struct run_begin b = begin_desc(&p, x0, "builtin:doomed");

		if (runs_begin(db, &b, &id, err) != ST_OK)
			_exit(1);
	}
	for (i = 0; i < n; i++) {
		fake_report(&f, i % 3);
		f.r.iter = i;
		if (runs_step(db, id, &f.r, 10, err) != ST_OK)
			_exit(1);
		if (slow)
			usleep(1000);
		if (i == 4 && write(ready_fd, "r", 1) != 1)
			_exit(1);
	}
	for (;;)
		pause();
}

struct contig {
	int n, bad;
};

static int check_contiguous(const struct run_step *s, void *user)
{
	struct contig *c = user;

	c->bad |= s->iter != c->n || s->n_classes != 10 || s->n_layer_norms != 5;
	c->n++;
	return 0;
}

static void test_interrupted(struct tap *t)
{
	char path[512], err[ERR_MAX], c;
	struct run_row r;
	struct contig cg = { 0 };
	struct db *db, *db2;
	int ready[2], st;
	pid_t pid;

	path_in(path, sizeof path, "crash.db");
	if (db_open(path, &db, err) != ST_OK || pipe(ready))
		return;
	db_close(db);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		doomed_writer(path, 10, ready[1], 0);
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		return;
	usleep(100000);		/* it has logged all 10 and sits in pause() */
	tap_ok(t, db_open(path, &db, err) == ST_OK && runs_get(db, 1, &r, err) == ST_OK &&
	       !strcmp(r.status, "running") && r.writer_pid == (int)pid,
	       "while its writer lives, a run stays 'running' when another process opens the log");
	tap_ok(t, db_run_live(db, 1) == 1, "db_run_live: its writer is alive");
	db_close(db);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	st = db_open(path, &db, err) == ST_OK && runs_get(db, 1, &r, err) == ST_OK;
	tap_ok(t, st && !strcmp(r.status, "interrupted") && r.steps == 10,
	       "after kill -9 the next open marks it 'interrupted', its 10 steps intact (%s, %d)",
	       r.status, r.steps);
	tap_ok(t, db_run_live(db, 1) == 0, "db_run_live: no writer");
	db_close(db);
	close(ready[0]);

	/* killed in the middle of a 200-step run */
	if (pipe(ready))
		return;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		doomed_writer(path, 200, ready[1], 1);
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		return;
	usleep(40000);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(ready[0]);
	{
		char ok[64];

		sql_text(path, "PRAGMA integrity_check", ok, sizeof ok);
		tap_ok(t, !strcmp(ok, "ok\n"), "integrity_check after kill -9 mid-run: %.*s",
		       (int)strcspn(ok, "\n"), ok);
	}
	st = db_open(path, &db, err) == ST_OK && runs_get(db, 2, &r, err) == ST_OK;
	tap_ok(t, st && !strcmp(r.status, "interrupted") && r.steps >= 5 && r.steps < 200,
	       "the 200-step run killed mid-way is 'interrupted' with %d steps", r.steps);
	st = runs_steps(db, 2, check_contiguous, &cg, err) == ST_OK;
	tap_ok(t, st && cg.n == r.steps && !cg.bad,
	       "its steps are whole and contiguous: iterations 0..%d", cg.n - 1);
	db_close(db);

	/* two connections in one process: open file description locks */
	if (db_open(path, &db, err) != ST_OK)
		return;
	{
		struct attack_params p = attack_params_default();
		float x0[NPIX] = { 0 };
		struct run_begin b = begin_desc(&p, x0, "builtin:same");
		int64_t id;

		runs_begin(db, &b, &id, err);
		tap_ok(t, db_open(path, &db2, err) == ST_OK && runs_get(db2, id, &r, err) == ST_OK &&
		       !strcmp(r.status, "running") && db_run_live(db2, id) == 1,
		       "a second connection in the same process sees the run alive");
		db_close(db2);
		db_close(db);	/* closing without finishing: as if it died */
		tap_ok(t, db_open(path, &db, err) == ST_OK && runs_get(db, id, &r, err) == ST_OK &&
		       !strcmp(r.status, "interrupted"),
		       "a connection closed with the run unfinished: interrupted on the next open");
		db_close(db);
	}

	/* the same log through a symbolic link: the same locks */
	{
		struct attack_params p = attack_params_default();
		float x0[NPIX] = { 0 };
		struct run_begin b = begin_desc(&p, x0, "builtin:linked");
		char link[512];
		int64_t id = 0;

		path_in(link, sizeof link, "link.db");
		if (symlink(path, link) != 0 || db_open(link, &db, err) != ST_OK)
			return;
		runs_begin(db, &b, &id, err);
		st = db_open(path, &db2, err) == ST_OK && runs_get(db2, id, &r, err) == ST_OK;
		tap_ok(t, st && !strcmp(r.status, "running"),
		       "a run written through a symbolic link is seen alive through the real path");
		db_close(db2);
		db_close(db);
	}
}

/* ---- issue 13: non-regular paths, read-only logs, a full disk --------------- */

static int exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* A database path that is a device or a FIFO is refused before SQLite
 * creates -journal or -locks files beside it. */
static void test_not_regular(struct tap *t)
{
	char path[512], side[600], err[ERR_MAX];
	struct db *db;
	int made;

	path_in(path, sizeof path, "fifo.db");
	made = mkfifo(path, 0600) == 0;
	tap_ok(t, made && db_open(path, &db, err) != ST_OK &&
	       strstr(err, "not a regular file") && strstr(err, path),
	       "a FIFO as the run log is refused: %s", err);
	snprintf(side, sizeof side, "%s-locks", path);
	tap_ok(t, made && !exists(side) && (snprintf(side, sizeof side, "%s-journal", path), !exists(side)),
	       "... before any -locks or -journal file is made beside it");
	tap_ok(t, made && db_open_read(path, &db, err) != ST_OK && strstr(err, "not a regular file"),
	       "db_open_read refuses it too: %s", err);
	tap_ok(t, db_open("/dev/null", &db, err) != ST_OK && strstr(err, "not a regular file") &&
	       !exists("/dev/null-locks") && !exists("/dev/null-journal"),
	       "--db /dev/null is refused, nothing created in /dev: %s", err);
}

static int collect_status(const struct run_row *r, void *user)
{
	char *buf = user;

	snprintf(buf + strlen(buf), 128 - strlen(buf), "%lld %s;", (long long)r->id, r->status);
	return 0;
}

/* Child: read the log at path without write access (as nobody when run
 * as root); exit status 0 when list and get work and the dead writer's
 * run reads 'interrupted', while a writer's open is refused. */
static int read_only_child(const char *path)
{
	char err[ERR_MAX], seen[128] = "";
	struct run_row r;
	struct db *db;
	int bad = 0;

	if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
		return 10;
	if (db_open(path, &db, err) == ST_OK) {
		db_close(db);
		bad |= 1;	/* the control: this place is not writable */
	}
	if (db_open_read(path, &db, err) != ST_OK) {
		fprintf(stderr, "# db_open_read: %s\n", err);
		return bad | 2;
	}
	if (runs_list(db, NULL, collect_status, seen, err) != ST_OK ||
	    strcmp(seen, "2 interrupted;1 done;"))
		bad |= 4;
	if (runs_get(db, 2, &r, err) != ST_OK || strcmp(r.status, "interrupted"))
		bad |= 8;
	if (bad)
		fprintf(stderr, "# read-only child: listed '%s', bad %d\n", seen, bad);
	db_close(db);
	return bad;
}

static void test_read_only(struct tap *t)
{
	char dir[512], path[600], err[ERR_MAX], status[64];
	struct attack_params p = attack_params_default();
	struct run_begin b;
	struct db *db;
	float x0[NPIX] = { 0 };
	int64_t id;
	pid_t pid;
	int st = -1;

	path_in(dir, sizeof dir, "rolog");
	mkdir(dir, 0755);
	snprintf(path, sizeof path, "%s/runs.db", dir);
	b = begin_desc(&p, x0, "builtin:test");
	/* run 1 done; run 2 begun by a writer that is gone (its lock went
	 * with its connection) */
	if (db_open(path, &db, err) == ST_OK) {
		if (runs_begin(db, &b, &id, err) == ST_OK)
			runs_finish(db, id, "done", NULL, NULL, 0.1, err);
		runs_begin(db, &b, &id, err);
		db_close(db);
	}
	chmod(path, 0444);
	chmod(dir, 0555);
	chmod(tmpdir, 0755);	/* nobody must reach it */
	pid = fork();
	if (pid == 0)
		_exit(read_only_child(path));
	if (pid > 0)
		waitpid(pid, &st, 0);
	chmod(dir, 0755);
	chmod(tmpdir, 0700);
	tap_ok(t, WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "a read-only log in a read-only directory%s: db_open_read lists and gets runs, "
	       "a dead writer's run reads 'interrupted', db_open is refused (child status %d)",
	       geteuid() == 0 ? " (read as nobody)" : "", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	sql_text(path, "SELECT status FROM runs WHERE id = 2", status, sizeof status);
	tap_ok(t, !strcmp(status, "running\n"), "... and nothing was written: run 2 is still "
	       "'running' in the file for the next writer to mark");
}

static int norms_ctx(const struct run_step *s, void *user)
{
	int *ok = user;

	*ok = s->n_layer_norms == 4 && s->layer_norms[0] == 1.5 &&
	      isinf(s->layer_norms[1]) && s->layer_norms[1] > 0 &&
	      isinf(s->layer_norms[2]) && s->layer_norms[2] < 0 && isnan(s->layer_norms[3]);
	return 0;
}

/* The log gets full between steps (PRAGMA max_page_count stands in for a
 * full disk): the step's write fails, and the run is marked 'failed'. */
static void test_full(struct tap *t)
{
	static char sql_max[64];
	static const char sql_pages[] = "PRAGMA page_count";
	char path[512], err[ERR_MAX];
	struct attack_params p = attack_params_default();
	struct fake_step f;
	struct runlog *l = NULL;
	struct run_begin b;
	struct run_row r;
	struct db *db;
	struct sqlite3_stmt *st;
	float x0[NPIX] = { 0 };
	int i, failed = 0, marked = 0, ok = 0;
	int64_t id = 0;

	path_in(path, sizeof path, "full.db");
	if (db_open(path, &db, err) != ST_OK || runlog_new(db, &l, err) != ST_OK) {
		tap_ok(t, 0, "full.db opens: %s", err);
		return;
	}
	b = begin_desc(&p, x0, "builtin:test");
	ok = runlog_begin(l, &b, err) == ST_OK;
	id = runlog_id(l);
	tap_ok(t, ok && id > 0, "runlog_begin: run %lld", (long long)id);
	ok = 0;
	fake_report(&f, 0);
	tap_ok(t, runlog_step(l, &f.r, err) == ST_OK, "a step is logged");
	if ((st = db_stmt(db, sql_pages, err)) && sqlite3_step(st) == SQLITE_ROW)
		snprintf(sql_max, sizeof sql_max, "PRAGMA max_page_count = %lld",
			 (long long)sqlite3_column_int64(st, 0));
	if (st)
		sqlite3_reset(st);
	if ((st = db_stmt(db, sql_max, err))) {
		while (sqlite3_step(st) == SQLITE_ROW)
			;
		sqlite3_reset(st);
	}
	for (i = 0; i < 5000 && !failed; i++) {
		fake_report(&f, i % 3);
		failed = runlog_step(l, &f.r, err) != ST_OK;
	}
	tap_ok(t, failed && strstr(err, "full") && runlog_error(l),
	       "with the log full a step fails after %d more: %s", i, err);
	marked = runlog_fail(l, &f.r, x0);
	tap_ok(t, marked && runlog_id(l) == 0, "runlog_fail marks the run failed");
	tap_ok(t, runs_get(db, id, &r, err) == ST_OK && !strcmp(r.status, "failed") && r.ended[0],
	       "run %lld is 'failed' in the log, with its end time (%s)", (long long)id, r.status);
	runlog_free(l);
	db_close(db);

	/* logs written before jansson kept an infinity as 1e999 */
	sql_exec(path, "UPDATE steps SET layer_norms = '[1.5,1e999,-1e999,null]'");
	if (db_open(path, &db, err) == ST_OK) {
		runs_steps(db, id, norms_ctx, &ok, err);
		db_close(db);
	}
	tap_ok(t, ok, "an older log's 1e999 and -1e999 read back as infinities, null as NaN");
}

int main(void)
{
	struct tap t = { 0 };
	char cmd[512];

	snprintf(tmpdir, sizeof tmpdir, "%s/advex-test-db-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_sha256(&t);
	test_schema(&t);
	test_refusals(&t);
	test_round_trip(&t);
	test_hash_cache(&t);
	test_migration_3(&t);
	test_migration_4(&t);
	test_list_delete(&t);
	test_concurrency(&t);
	test_interrupted(&t);
	test_not_regular(&t);
	test_read_only(&t);
	test_full(&t);
	snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' && rm -rf '%s'", tmpdir, tmpdir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", tmpdir);
	return tap_done(&t);
}
