/* app.c - the explorer's entry point and loop: options, the model, the
 * data and the run log (opened through front/source.h, as the subcommands
 * open them), the compute thread, and key dispatch to the screens. The
 * terminal is term.c's, the frame around the screens frame.c's.
 *
 * The loop poll()s three things: the keyboard, the session's wake-up pipe
 * and a self-pipe written by the signal handlers. It draws at most every
 * FRAME_MS, so a burst of fast steps costs a few frames, not hundreds, and
 * a key is answered within one frame however long a step takes.
 */
#include "tui.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "clock.h"
#include "dataset.h"
#include "db.h"
#include "exitcode.h"
#include "explore.h"
#include "net.h"
#include "runs.h"
#include "source.h"
#include "term.h"

#define PRED_BATCH 8		/* images per prediction forward */
#define FRAME_MS 30		/* at most one frame per this */

/* ---- before the terminal is taken: errors print plainly --------------------------- */

/* "advex: msg" on stderr; returns EXIT_FAIL. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	char msg[ERR_MAX + 4200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "advex: %s\n", msg);
	return EXIT_FAIL;
}

/* "advex explore: msg" and where help is; returns EXIT_USAGE. */
static int usage_error(const char *msg)
{
	fprintf(stderr, "advex explore: %s\ntry 'advex explore --help'\n", msg);
	return EXIT_USAGE;
}

/* Each line of a note from source.h as "advex: note: LINE". */
static void print_note(char *note)
{
	char *line, *save = NULL;

	for (line = strtok_r(note, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(stderr, "advex: note: %s\n", line);
}

/* ---- helpers the screens use ---------------------------------------------------- */

double app_elapsed(double t_ms)
{
	return (clock_ms() - t_ms) / 1000.0;
}

void app_message(struct app *a, enum role r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->msg, sizeof a->msg, fmt, ap);
	va_end(ap);
	a->msg_role = r;
	a->msg_at = clock_ms();
}

void app_send_params(struct app *a)
{
	session_params(a->session, &a->want, ++a->params_seq);
}

void app_open_image(struct app *a, int index)
{
	replay_close(a);
	session_open(a->session, index, &a->want, 1, ++a->params_seq);
	a->screen = SCREEN_ATTACK;
}

void app_prompt(struct app *a, enum prompt_kind k, const char *initial)
{
	a->prompt = k;
	snprintf(a->prompt_buf, sizeof a->prompt_buf, "%s", initial ? initial : "");
	snprintf(a->prompt_orig, sizeof a->prompt_orig, "%s", a->prompt_buf);
	a->prompt_len = (int)strlen(a->prompt_buf);
	a->prompt_what[0] = 0;
}

void app_zone(struct app *a, int y, int x, int w, int key)
{
	struct hotzone *z;

	if (a->n_zones == MAX_ZONES || w <= 0)
		return;
	z = &a->zones[a->n_zones++];
	z->y = y;
	z->x = x;
	z->w = w;
	z->key = key;
}

int app_key_bar(struct app *a, int y, int x, int w, const struct key_hint *h, int n)
{
	int used = 0, i;

	for (i = 0; i < n; i++) {
		int need = draw_width(h[i].key) + 1 + draw_width(h[i].desc) + 2;

		if (used + need > w) {
			if (used < w)
				used += draw_text(&a->pal, y, x + used, w - used, R_DIM, "…");
			break;
		}
		draw_text(&a->pal, y, x + used, w - used, R_KEY, "%s", h[i].key);
		draw_text(&a->pal, y, x + used + draw_width(h[i].key) + 1, w - used, R_NORMAL,
			  "%s", h[i].desc);
		app_zone(a, y, x + used, need - 2, h[i].code);
		used += need;
	}
	return used;
}

/* ---- keys ---------------------------------------------------------------------------- */

static void request_quit(struct app *a)
{
	if (a->snap.running)
		a->confirm_quit = 1;
	else
		a->quit = 1;
}

static void prompt_done(struct app *a)
{
	enum prompt_kind k = a->prompt;
	char text[sizeof a->prompt_buf];

	snprintf(text, sizeof text, "%s", a->prompt_buf);
	a->prompt = PROMPT_NONE;
	if (k == PROMPT_GOTO)
		browse_prompt_done(a, text);
	else if (k == PROMPT_AUDIT)
		auditview_prompt_done(a, text);
	else
		runsview_prompt_done(a, k, text);
}

static void prompt_key(struct app *a, int key)
{
	if (key == K_ESC) {
		/* the runs filter applies as it is typed: Esc puts back the old */
		if (a->prompt == PROMPT_FILTER)
			runsview_prompt_done(a, PROMPT_FILTER, a->prompt_orig);
		a->prompt = PROMPT_NONE;
		return;
	} else if (key == '\r' || key == '\n' || key == KEY_FN(KEY_ENTER)) {
		prompt_done(a);
	} else if (key == 127 || key == 8 || key == KEY_FN(KEY_BACKSPACE)) {
		/* drop the last UTF-8 character */
		while (a->prompt_len > 0 &&
		       ((unsigned char)a->prompt_buf[--a->prompt_len] & 0xC0) == 0x80)
			;
		a->prompt_buf[a->prompt_len] = 0;
	} else if (key >= 32 && key < 0x110000 && key != 127) {
		char mb[MB_LEN_MAX];
		mbstate_t st;
		size_t n;

		memset(&st, 0, sizeof st);
		n = wcrtomb(mb, (wchar_t)key, &st);
		if (n != (size_t)-1 && a->prompt_len + (int)n < (int)sizeof a->prompt_buf) {
			memcpy(a->prompt_buf + a->prompt_len, mb, n);
			a->prompt_len += (int)n;
			a->prompt_buf[a->prompt_len] = 0;
		}
	}
	if (a->prompt == PROMPT_FILTER)
		runsview_prompt_done(a, PROMPT_FILTER, a->prompt_buf);
}

static void switch_screen(struct app *a, enum screen_id s)
{
	a->screen = s;
	if (s == SCREEN_RUNS)
		a->runs.loaded = 0;	/* reload: new runs may have landed */
}

static int screen_key(struct app *a, int key)
{
	switch (a->screen) {
	case SCREEN_BROWSE: return browse_key(a, key);
	case SCREEN_ATTACK: return attackview_key(a, key);
	case SCREEN_RUNS: return runsview_key(a, key);
	case SCREEN_COMPARE: return compare_key(a, key);
	case SCREEN_AUDIT: return auditview_key(a, key);
	default: return 0;
	}
}

static void handle_key(struct app *a, int key);

/* A click acts on the zone under it; the wheel moves through lists (and
 * through a replay's steps). Clicks are ignored while a prompt or the
 * quit question waits for a key; any click closes the help. */
static void handle_mouse(struct app *a, const struct term_mouse *m)
{
	int i, n;

	if (a->prompt || a->confirm_quit)
		return;
	if (a->help) {
		a->help = 0;
		return;
	}
	if (m->wheel) {
		n = a->screen == SCREEN_BROWSE || a->screen == SCREEN_RUNS ? 3 : 1;
		for (i = 0; i < n; i++)
			handle_key(a, KEY_FN(m->wheel < 0 ? KEY_UP : KEY_DOWN));
		return;
	}
	/* the last zone laid down is the one on top */
	for (i = a->n_zones - 1; i >= 0; i--) {
		const struct hotzone *z = &a->zones[i];

		if (m->y == z->y && m->x >= z->x && m->x < z->x + z->w) {
			handle_key(a, z->key);
			return;
		}
	}
}

static void handle_key(struct app *a, int key)
{
	if (key == K_NONE)
		return;
	if (key == KEY_FN(KEY_RESIZE)) {
		clearok(curscr, TRUE);
		draw_invalidate(&a->pal);
		return;
	}
	if (a->prompt) {
		prompt_key(a, key);
		return;
	}
	if (a->confirm_quit) {
		if (key == 'y' || key == 'Y')
			a->quit = 1;
		a->confirm_quit = 0;
		return;
	}
	if (a->help) {
		if (key == 't')
			tour_start(a);
		else if (key == K_ESC || key == '?' || key == 'q' || key == KEY_FN(KEY_F(1)))
			a->help = 0;
		return;
	}
	if (tour_key(a, key))
		return;
	if (key == '?' || key == KEY_FN(KEY_F(1))) {
		a->help = 1;
		return;
	}
	if (key == 12) {	/* Ctrl-L */
		clearok(curscr, TRUE);
		draw_invalidate(&a->pal);
		return;
	}
	if (COLS >= MIN_COLS && LINES >= MIN_ROWS && screen_key(a, key))
		return;
	switch (key) {
	case 'q':
		request_quit(a);
		break;
	case '\t':
		switch_screen(a, (enum screen_id)((a->screen + 1) % SCREEN_N));
		break;
	case KEY_FN(KEY_BTAB):
		switch_screen(a, (enum screen_id)((a->screen + SCREEN_N - 1) % SCREEN_N));
		break;
	case '1': case '2': case '3': case '4': case '5':
		switch_screen(a, (enum screen_id)(key - '1'));
		break;
	default:
		break;
	}
}

/* ---- what the session published ------------------------------------------------------------ */

static void took_snapshot(struct app *a)
{
	const struct session_snap *s = &a->snap;

	if (s->db_failed) {
		if (!s->failed_run)
			snprintf(a->fatal, sizeof a->fatal, "run log: %s", s->db_err);
		else if (s->failed_marked)
			snprintf(a->fatal, sizeof a->fatal, "run log: %s (run %lld is marked failed)",
				 s->db_err, (long long)s->failed_run);
		else
			snprintf(a->fatal, sizeof a->fatal, "run log: %s (run %lld could not be "
				 "closed; the next open of the log marks it interrupted)", s->db_err,
				 (long long)s->failed_run);
		a->exit_code = EXIT_FAIL;
		a->quit = 1;
		return;
	}
	if (s->msg_seq != a->seen_msg_seq) {
		a->seen_msg_seq = s->msg_seq;
		app_message(a, s->msg_err ? R_BAD : R_NORMAL, "%s", s->msg);
	}
	/* no parameter change in flight: the session's parameters are the truth
	 * (a least-likely target it chose, a change it refused) */
	if (s->params_ack == a->params_seq)
		a->want = s->p;
}

/* ---- setup ------------------------------------------------------------------------------------- */

enum { OPT_DATA = OPT_FIRST_FREE, OPT_SPLIT, OPT_DB, OPT_OUT_DIR, OPT_NO_MOUSE };

struct options {
	struct source_opts mo;
	const char *data, *split, *db, *out_dir;
	int resize;		/* --resize */
	int no_mouse;		/* --no-mouse */
};

static void explore_help(void)
{
	printf("usage: advex [explore] [--model FILE | --arch NAME] [--data DIR] [--split S]\n"
	       "             [--resize] [--db FILE] [--out-dir DIR] [--no-mouse]\n\n"
	       "The interactive explorer (a terminal UI, at least 80x24): browse a dataset\n"
	       "with the model's predictions, attack one image step by step while watching\n"
	       "the loss, the probabilities, the gradient histogram and the per-layer\n"
	       "gradient norms, replay and compare logged runs, export adversarial images.\n"
	       "Every step is recorded in the run log. Press ? inside for every key.\n\n%s"
	       "  --data DIR       STL-10 or CIFAR-10 binary directory, or a folder of\n"
	       "                   class folders of PNGs (default: STL-10 under\n"
	       "                   ~/.local/share/advex when present with\n"
	       "                   model.safetensors, else the bundled demo)\n"
	       "  --split S        train, test (default) or unlabeled (STL-10)\n%s"
	       "  --db FILE        the run log (default $XDG_DATA_HOME/advex/runs.db, else\n"
	       "                   ~/.local/share/advex/runs.db)\n"
	       "  --out-dir DIR    where e exports PNGs (default: the current directory)\n"
	       "  --no-mouse       leave the mouse to the terminal (no clicks on tabs, keys\n"
	       "                   and rows, no wheel scrolling; the terminal's own text\n"
	       "                   selection works as usual)\n\n"
	       "Environment: NO_COLOR (any value) draws without colour; ADVEX_COLOR=direct,\n"
	       "256, 8 or mono forces a colour mode; COLORTERM=truecolor or 24bit selects\n"
	       "direct colour (24-bit images) even where terminfo lists 256 colours.\n",
	       source_model_help, source_resize_help);
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		SOURCE_MODEL_OPTIONS,
		{ "data", required_argument, NULL, OPT_DATA },
		{ "split", required_argument, NULL, OPT_SPLIT },
		{ "db", required_argument, NULL, OPT_DB },
		{ "out-dir", required_argument, NULL, OPT_OUT_DIR },
		{ "no-mouse", no_argument, NULL, OPT_NO_MOUSE },
		SOURCE_RESIZE_OPTION,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char msg[ERR_MAX];
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = source_model_opt(&o->mo, c, optarg, msg);

		if (r < 0)
			return usage_error(msg);
		if (r)
			continue;
		switch (c) {
		case OPT_DATA: o->data = optarg; break;
		case OPT_SPLIT: o->split = optarg; break;
		case OPT_DB: o->db = optarg; break;
		case OPT_OUT_DIR: o->out_dir = optarg; break;
		case OPT_RESIZE: o->resize = 1; break;
		case OPT_NO_MOUSE: o->no_mouse = 1; break;
		case 'h': explore_help(); return -1;
		default: return usage_error("unknown option");
		}
	}
	if (optind < argc) {
		snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind]);
		return usage_error(msg);
	}
	if (o->mo.model && o->mo.arch)
		return usage_error("give one of --model FILE or --arch NAME, not both");
	return EXIT_OK;
}

/* Everything the explorer holds, for teardown in one place. */
struct resources {
	struct net *net;
	struct dataset *wdata;		/* the session's handle */
	struct db *wdb;			/* the session's connection */
	int wake[2], sig[2];
	struct run_begin tmpl;
	char model_path[4096], arch[512], data_path[4096];
};

/* p with the home directory shown as ~, into buf. */
static const char *tilde(const char *p, char *buf, size_t n)
{
	const char *home = getenv("HOME");
	size_t len = home ? strlen(home) : 0;

	if (len > 1 && !strncmp(p, home, len) && p[len] == '/')
		snprintf(buf, n, "~%s", p + len);
	else
		snprintf(buf, n, "%s", p);
	return buf;
}

/* The model file and the data directory the user means. */
static int resolve_source(struct options *o, struct app *a, struct resources *r)
{
	char data[4096], model[4096], dbuf[4096], mbuf[4096];
	int demo = 0, have_default = !source_default(data, model, sizeof data, &demo);
	int default_model = !o->mo.model && !o->mo.arch;
	char *abs;

	if (default_model) {
		if (!have_default)
			return fail("no --model given, no model at the default path and no "
					"bundled demo found (build it with make, or set ADVEX_DEMO_DIR)");
		snprintf(r->model_path, sizeof r->model_path, "%s", model);
		o->mo.model = r->model_path;
	} else if (o->mo.model) {
		abs = realpath(o->mo.model, NULL);
		snprintf(r->model_path, sizeof r->model_path, "%s", abs ? abs : o->mo.model);
		free(abs);
		o->mo.model = r->model_path;
	} else {
		snprintf(r->model_path, sizeof r->model_path, "builtin:%s", o->mo.arch);
	}
	if (!o->data) {
		if (!have_default)
			return fail("no --data given and no STL-10 at the default path or "
					"bundled demo");
		snprintf(r->data_path, sizeof r->data_path, "%s", data);
	} else {
		abs = realpath(o->data, NULL);
		snprintf(r->data_path, sizeof r->data_path, "%s", abs ? abs : o->data);
		free(abs);
	}
	snprintf(a->source, sizeof a->source, "%s %s (%s) · %s %s%s",
		 o->data ? "data" : demo ? "demo data" : "STL-10",
		 tilde(r->data_path, dbuf, sizeof dbuf), o->split ? o->split : "test",
		 default_model && demo ? "demo model" : "model",
		 tilde(r->model_path, mbuf, sizeof mbuf),
		 o->mo.arch ? " (random weights)" : "");
	/* the same without directories, for a narrow title bar: the model's
	 * name and "random weights" matter more than where it lives */
	{
		const char *ds = strrchr(r->data_path, '/'), *ms = strrchr(r->model_path, '/');

		snprintf(a->source_short, sizeof a->source_short, "%s %s%s · %s %s (%s)",
			 default_model && demo ? "demo model" : "model",
			 ms && ms[1] ? ms + 1 : r->model_path,
			 o->mo.arch ? " (random weights)" : "",
			 o->data ? "data" : demo ? "demo data" : "STL-10",
			 ds && ds[1] ? ds + 1 : r->data_path, o->split ? o->split : "test");
	}
	snprintf(a->model_label, sizeof a->model_label, "%s", r->model_path);
	a->is_demo = default_model && demo && !o->data;
	return EXIT_OK;
}

static void fill_template(struct app *a, struct resources *r, const struct options *o)
{
	const struct net_info *in = a->ni;

	source_model_summary(&o->mo, in, r->arch, sizeof r->arch);
	memset(&r->tmpl, 0, sizeof r->tmpl);
	r->tmpl.model_path = r->model_path;
	r->tmpl.model_arch = r->arch;
	r->tmpl.data_path = dataset_path(r->wdata);
	r->tmpl.data_kind = dataset_kind_name(dataset_kind(r->wdata));
	r->tmpl.data_split = dataset_split(r->wdata);
	r->tmpl.n_classes = in->n_classes;
	r->tmpl.classes = in->classes;
	r->tmpl.h = in->in_h;
	r->tmpl.w = in->in_w;
}

static int make_pipe(int fd[2])
{
	int i;

	if (pipe(fd))
		return -1;
	for (i = 0; i < 2; i++) {
		fcntl(fd[i], F_SETFL, fcntl(fd[i], F_GETFL) | O_NONBLOCK);
		fcntl(fd[i], F_SETFD, FD_CLOEXEC);
	}
	return 0;
}

/* Short labels of the layers ("conv 3x3 features.0"), for the norm panel. */
static int layer_labels(struct app *a, struct net *net)
{
	int i;

	a->n_layers = a->ni->n_layers;
	a->layer_kind = calloc((size_t)a->n_layers + 1, sizeof *a->layer_kind);
	a->layer_params = calloc((size_t)a->n_layers + 1, 1);
	a->layer_out = calloc((size_t)a->n_layers + 1, sizeof *a->layer_out);
	if (!a->layer_kind || !a->layer_params || !a->layer_out)
		return -1;
	for (i = 0; i < a->n_layers; i++) {
		struct net_layer_info li;

		net_layer(net, i, &li);
		snprintf(a->layer_kind[i], sizeof a->layer_kind[i], "%s%s%s", li.kind,
			 li.name[0] ? " " : "", li.name);
		/* 2: where branches meet (a residual add, a concat): the
		 * norm panel keeps these, so a block reads as a block */
		a->layer_params[i] = li.params > 0 ? 1 : li.n_inputs > 1 ? 2 : 0;
		a->layer_out[i] = li.out_norm;
	}
	return 0;
}

/* Load everything before the terminal is taken, so errors print plainly. */
static int setup(struct app *a, struct resources *r, struct options *o)
{
	struct session_setup ws;
	char err[ERR_MAX], note[SOURCE_NOTE_MAX];
	enum status st;
	int rc;

	if ((rc = resolve_source(o, a, r)))
		return rc;
	snprintf(a->out_dir, sizeof a->out_dir, "%s", o->out_dir ? o->out_dir : ".");
	if (o->db)
		snprintf(a->db_path, sizeof a->db_path, "%s", o->db);
	else
		db_default_path(a->db_path, sizeof a->db_path);
	/* the log first: an unwritable one fails before any work */
	if (db_open(a->db_path, &r->wdb, err) != ST_OK || db_open(a->db_path, &a->db, err) != ST_OK)
		return fail("%s", err);
	source_set_threads(o->mo.threads);
	st = source_open_net(&o->mo, PRED_BATCH, 0, &r->net, note, err);
	print_note(note);
	if (st != ST_OK)
		return fail("%s", err);
	a->ni = net_get_info(r->net);
	st = source_open_data(r->data_path, o->split, &a->data, note, err);
	if (st != ST_OK)
		return fail("%s", err);
	print_note(note);
	if (dataset_open(r->data_path, o->split, &r->wdata, note, err) != ST_OK ||
	    source_fit_data(a->data, a->ni, o->resize, err) != ST_OK ||
	    source_fit_data(r->wdata, a->ni, o->resize, err) != ST_OK)
		return fail("%s", err);
	if (dataset_count(a->data) < 1)
		return fail("%s: no images in the %s split", dataset_path(a->data),
				dataset_split(a->data));
	if (a->ni->in_c != 3)
		return fail("the model takes %d channels; the explorer shows RGB images",
				a->ni->in_c);
	a->k = a->ni->n_classes;
	a->h = a->ni->in_h;
	a->w = a->ni->in_w;
	a->npix = 3 * (size_t)a->h * a->w;
	if (layer_labels(a, r->net) ||
	    session_snap_alloc(&a->snap, a->k, a->ni->n_layers + 1, a->h, a->w, SESSION_MAX_ITERS + 2) ||
	    !(a->attack.delta = malloc(sizeof(float) * a->npix)) ||
	    !(a->browse.preview = malloc(sizeof(float) * a->npix)) ||
	    !(a->browse.probs = calloc((size_t)a->k, sizeof(float))) ||
	    !(a->browse.thumbs = malloc(sizeof(float) * a->npix * THUMB_SLOTS)))
		return fail("out of memory");
	fill_template(a, r, o);
	{
		/* Browse lists the data's names, Attack the model's: say when
		 * they are not the same list (--arch on the demo) */
		int i, nd = dataset_n_classes(a->data);

		a->names_differ = nd > 0 && nd != a->k;
		for (i = 0; i < nd && i < a->k && !a->names_differ; i++)
			a->names_differ = strcmp(dataset_class_name(a->data, i), a->ni->classes[i]) != 0;
	}
	if (make_pipe(r->wake) || make_pipe(r->sig))
		return fail("cannot create a pipe: %s", strerror(errno));
	ws.net = r->net;
	ws.batch = PRED_BATCH;
	ws.data = r->wdata;
	ws.db = r->wdb;
	ws.tmpl = &r->tmpl;
	ws.wake_fd = r->wake[1];
	{
		/* the compute thread (and the BLAS threads it starts) never take
		 * the stop signals: the UI thread handles them */
		sigset_t block, old;

		sigemptyset(&block);
		sigaddset(&block, SIGINT);
		sigaddset(&block, SIGTERM);
		sigaddset(&block, SIGHUP);
		sigaddset(&block, SIGQUIT);
		sigaddset(&block, SIGWINCH);
		pthread_sigmask(SIG_BLOCK, &block, &old);
		if (session_start(&ws, &a->session, err) != ST_OK) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return fail("%s", err);
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	/* the story's defaults: iterative FGSM, Linf 8/255, step 1/255, 20
	 * iterations, cross-entropy on logits, toward the most likely class
	 * below the 1e-7 clip (else the least likely): the story's target */
	a->want = attack_params_default();
	a->want.kind = ATTACK_BIM;
	a->want.alpha = 1.0 / 255;
	a->want.iters = 20;
	a->browse.preview_index = -1;
	a->browse.cls = -1;
	a->runs.desc = 1;		/* newest first */
	for (rc = 0; rc < THUMB_SLOTS; rc++)
		a->browse.thumb_index[rc] = -1;
	return EXIT_OK;
}

/* Take the terminal and the palette. */
static int start_terminal(struct app *a)
{
	char err[ERR_MAX];

	if (term_start(a->mouse, err) != ST_OK)
		return fail("%s", err);
	if (draw_init(&a->pal)) {
		term_restore();
		return fail("out of memory");
	}
	return EXIT_OK;
}

static void drain(int fd)
{
	char buf[256];

	while (read(fd, buf, sizeof buf) > 0)
		;
}

static void loop(struct app *a, struct resources *r)
{
	double last_draw = 0.0;		/* clock_ms of the last frame */
	int dirty = 1, key;
	struct term_mouse mouse;

	while (!a->quit) {
		struct pollfd fds[3] = {
			{ .fd = 0, .events = POLLIN },
			{ .fd = r->wake[0], .events = POLLIN },
			{ .fd = r->sig[0], .events = POLLIN },
		};
		int timeout = 1000;

		if (dirty) {
			double since = app_elapsed(last_draw) * 1000.0;

			if (since >= FRAME_MS) {
				frame_draw(a);
				last_draw = clock_ms();
				dirty = 0;
			} else {
				timeout = FRAME_MS - (int)since + 1;
			}
		}
		if (a->msg[0] && app_elapsed(a->msg_at) < MSG_SECONDS + 1 && timeout > 500)
			timeout = 500;	/* let the notice expire on time */
		if (a->screen == SCREEN_RUNS && runsview_stale(a)) {
			dirty = 1;	/* the list reloads at most every 250 ms */
			if (timeout > 300)
				timeout = 300;
		}
		if (poll(fds, 3, timeout) < 0 && errno != EINTR)
			break;
		if (term_stop_signal()) {
			a->exit_code = 128 + term_stop_signal();
			break;
		}
		/* The terminal went away without a SIGHUP reaching us (a pty
		 * closed under us): poll would report it forever and spin. */
		if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
			a->exit_code = 128 + SIGHUP;
			break;
		}
		if (fds[1].revents & POLLIN)
			drain(r->wake[0]);
		if (fds[2].revents & POLLIN)
			drain(r->sig[0]);
		if (session_sync(a->session, &a->snap)) {
			took_snapshot(a);
			tour_watch(a);
			dirty = 1;
		}
		while (!a->quit && term_read_key(&key, &mouse)) {
			if (key == K_MOUSE)
				handle_mouse(a, &mouse);
			else
				handle_key(a, key);
			tour_watch(a);
			dirty = 1;
		}
		if (a->msg[0] && app_elapsed(a->msg_at) >= MSG_SECONDS) {
			a->msg[0] = 0;
			dirty = 1;
		}
	}
}

static void teardown(struct app *a, struct resources *r)
{
	term_restore();
	/* ends an unfinished run as interrupted, through the session's own
	 * connection, before that connection closes */
	session_stop(a->session);
	a->session = NULL;
	term_forget_wake();
	replay_close(a);
	compare_free(&a->cmp);
	runsview_free(a);
	browse_free(&a->browse);
	session_snap_free(&a->snap);
	draw_free(&a->pal);
	free(a->attack.delta);
	free(a->layer_kind);
	free(a->layer_params);
	free(a->layer_out);
	dataset_close(a->data);
	dataset_close(r->wdata);
	db_close(a->db);
	db_close(r->wdb);
	net_free(r->net);
	if (r->wake[0] >= 0) {
		close(r->wake[0]);
		close(r->wake[1]);
	}
	if (r->sig[0] >= 0) {
		close(r->sig[0]);
		close(r->sig[1]);
	}
}

int tui_explore(int argc, char **argv)
{
	struct options o = { .mo = { .seed = 1 } };
	struct resources r;
	struct app *a;
	int rc;

	if ((rc = parse(argc, argv, &o)))
		return rc < 0 ? EXIT_OK : rc;
	if (!isatty(0) || !isatty(1)) {
		fprintf(stderr, "advex: the explorer needs a terminal; for scripts use the "
			"subcommands (advex --help)\n");
		return EXIT_USAGE;
	}
	a = calloc(1, sizeof *a);
	if (!a)
		return fail("out of memory");
	memset(&r, 0, sizeof r);
	r.wake[0] = r.wake[1] = r.sig[0] = r.sig[1] = -1;
	rc = setup(a, &r, &o);
	a->mouse = !o.no_mouse;
	if (!rc) {
		term_catch_signals(r.sig[1]);
		rc = start_terminal(a);
	}
	if (!rc) {
		/* the first start on the demo tells its story (once) */
		if (a->is_demo && !tour_seen())
			tour_start(a);
		if (a->names_differ)
			app_message(a, R_WARN, "the model's class names differ from the data's: "
				    "Browse shows the data's, with the model's beside them");
		session_open(a->session, 0, &a->want, 1, ++a->params_seq);
		session_want(a->session, 0, 64, 0);
		loop(a, &r);
		rc = a->exit_code;
	}
	teardown(a, &r);
	if (a->fatal[0])
		fprintf(stderr, "advex: %s\n", a->fatal);
	else if (term_stop_signal())
		fprintf(stderr, "advex: interrupted; an unfinished run is recorded as interrupted in %s\n",
			a->db_path);
	free(a);
	return rc;
}
