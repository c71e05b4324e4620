/* app.c - the explorer's entry point and loop: options, the model, the
 * data and the run log, the terminal (set up once, restored on every way
 * out: q, Ctrl-C, SIGTERM/SIGHUP, a failed log write, exit() from
 * anywhere, and - best effort - a crash), the compute thread, and key
 * dispatch to the screens.
 *
 * The loop poll()s three things: the keyboard, the worker's wake-up pipe
 * and a self-pipe written by the signal handlers. It draws at most every
 * FRAME_MS, so a burst of fast steps costs a few frames, not hundreds, and
 * a key is answered within one frame however long a step takes.
 */
#include "tui.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "cli.h"
#include "dataset.h"
#include "db.h"
#include "net.h"
#include "runs.h"

#define PRED_BATCH 8		/* images per prediction forward */
#define FRAME_MS 30		/* at most one frame per this */
#define MSG_SECONDS 8.0		/* a notice stays this long */
#define MIN_COLS 80
#define MIN_ROWS 24

/* Signal handlers can reach nothing but file-scope state: the stop signal
 * received, the pipe that wakes the loop, and whether curses holds the
 * terminal (for the atexit and crash paths). */
static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t curses_on;
static int signal_fd = -1;

static void on_stop(int sig)
{
	int e = errno;

	stop_signal = sig;
	if (signal_fd >= 0)
		(void)!write(signal_fd, "", 1);
	errno = e;
}

/* Best effort: endwin is not async-signal-safe, but a crashed explorer that
 * leaves the terminal raw and invisible is worse (htop does the same). The
 * run log needs nothing here: a dead writer's run is marked interrupted by
 * the next open (db.h). */
static void on_crash(int sig)
{
	if (curses_on) {
		curses_on = 0;
		endwin();
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void restore_terminal(void)
{
	if (curses_on) {
		curses_on = 0;
		endwin();
	}
}

static void catch_signals(void)
{
	static const int stops[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	static const int crashes[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	for (i = 0; i < sizeof stops / sizeof stops[0]; i++)
		sigaction(stops[i], &sa, NULL);
	sa.sa_handler = on_crash;
	sa.sa_flags = SA_RESETHAND;
	for (i = 0; i < sizeof crashes / sizeof crashes[0]; i++)
		sigaction(crashes[i], &sa, NULL);
}

/* ---- helpers the screens use ---------------------------------------------------- */

double app_elapsed(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (now.tv_nsec - t->tv_nsec) / 1e9;
}

void app_message(struct app *a, enum role r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->msg, sizeof a->msg, fmt, ap);
	va_end(ap);
	a->msg_role = r;
	clock_gettime(CLOCK_MONOTONIC, &a->msg_at);
}

void app_send_params(struct app *a)
{
	worker_params(a->worker, &a->want, ++a->params_seq);
}

void app_open_image(struct app *a, int index)
{
	replay_close(a);
	worker_open(a->worker, index, &a->want, 1, ++a->params_seq);
	a->screen = SCREEN_ATTACK;
}

void app_prompt(struct app *a, enum prompt_kind k, const char *initial)
{
	a->prompt = k;
	snprintf(a->prompt_buf, sizeof a->prompt_buf, "%s", initial ? initial : "");
	a->prompt_len = (int)strlen(a->prompt_buf);
}

/* ---- the frame --------------------------------------------------------------------- */

static const char *const screen_names[SCREEN_N] = { "Browse", "Attack", "Runs", "Compare" };

static void draw_tabs(struct app *a)
{
	int x = 0, i;

	draw_fill(&a->pal, 0, 0, COLS, R_TAB);
	x += draw_text(&a->pal, 0, x, COLS - x, R_TITLE, " advex ");
	for (i = 0; i < SCREEN_N; i++) {
		int on = a->screen == (enum screen_id)i && !a->help;

		x += draw_text(&a->pal, 0, x, COLS - x, on ? R_TAB_ON : R_TAB, " %d %s%s ",
			       i + 1, screen_names[i],
			       i == SCREEN_ATTACK && a->replay.active ? " (replay)" : "");
	}
	x += draw_text(&a->pal, 0, x, COLS - x, a->help ? R_TAB_ON : R_TAB, " ? Help ");
	x += draw_text(&a->pal, 0, x, COLS - x, R_TAB, "│ ");
	draw_text(&a->pal, 0, x, COLS - x - 1, R_TAB, "%s", a->source);
}

/* The live attack's progress, for the status line. */
static void progress_text(const struct app *a, char *buf, size_t n)
{
	const struct wsnap *s = &a->snap;
	int total = s->p.kind == ATTACK_FGSM ? 1 : s->p.iters;

	if (!s->loaded) {
		snprintf(buf, n, s->busy ? "… loading" : "no image open");
	} else if (s->running) {
		double eta = (total - s->iter) * s->avg_step_ms / 1000.0;

		snprintf(buf, n, "▶ running %d/%d · %.1f ms/step · ETA %.1f s · run #%lld, %d steps logged",
			 s->iter, total, s->avg_step_ms, eta < 0 ? 0.0 : eta,
			 (long long)s->run_id, s->run_steps);
	} else if (s->busy) {
		snprintf(buf, n, "… computing (iteration %d/%d)", s->iter, total);
	} else if (s->finished) {
		snprintf(buf, n, "■ finished %d/%d · %s%s%lld", s->iter, total,
			 s->success ? "success" : "no success",
			 s->last_run_id ? " · last run #" : "", (long long)s->last_run_id);
	} else if (s->run_id) {
		snprintf(buf, n, "❚❚ paused at %d/%d · %.1f ms/step · run #%lld open, %d steps logged",
			 s->iter, total, s->avg_step_ms, (long long)s->run_id, s->run_steps);
	} else {
		snprintf(buf, n, "ready at %d/%d · n: one step · Space: run", s->iter, total);
	}
}

static void draw_status(struct app *a)
{
	int y = LINES - 1, x = 0, rw;
	char right[160], left[1024];

	draw_fill(&a->pal, y, 0, COLS, R_STATUS);
	if (a->prompt) {
		static const char *const label[] = {
			[PROMPT_GOTO] = "go to image index", [PROMPT_FILTER] = "filter runs (text)",
			[PROMPT_DELETE] = "delete the selected run? type y and Enter",
		};

		x = draw_text(&a->pal, y, 0, COLS, R_STATUS, " %s: ", label[a->prompt]);
		x += draw_text(&a->pal, y, x, COLS - x, R_TAB_ON, "%s", a->prompt_buf);
		draw_text(&a->pal, y, x, COLS - x, R_TAB_ON, "█");
		draw_text(&a->pal, y, COLS - 26, 26, R_STATUS, "  Enter: ok  Esc: cancel");
		return;
	}
	if (a->screen == SCREEN_BROWSE)
		snprintf(right, sizeof right, " predictions %d/%d │ ? help  q quit ",
			 a->snap.preds_done, dataset_count(a->data));
	else
		snprintf(right, sizeof right, " ? help  q quit ");
	rw = draw_width(right);
	if (a->msg[0] && app_elapsed(&a->msg_at) < MSG_SECONDS)
		snprintf(left, sizeof left, " %s%s", a->msg_role == R_BAD ? "✗ " :
			 a->msg_role == R_WARN ? "⚠ " : a->msg_role == R_GOOD ? "✓ " : "", a->msg);
	else {
		left[0] = ' ';
		progress_text(a, left + 1, sizeof left - 1);
	}
	draw_text(&a->pal, y, 0, COLS - rw, R_STATUS, "%s", left);
	draw_text(&a->pal, y, COLS - rw, rw, R_STATUS, "%s", right);
}

static void draw_confirm(struct app *a)
{
	int w = 64, h = 6, y = (LINES - h) / 2, x = (COLS - w) / 2;
	int total = a->snap.p.kind == ATTACK_FGSM ? 1 : a->snap.p.iters;

	draw_panel(&a->pal, y, x, h, w, "Quit?");
	draw_text(&a->pal, y + 2, x + 3, w - 6, R_NORMAL,
		  "An attack is running (iteration %d/%d).", a->snap.iter, total);
	draw_text(&a->pal, y + 3, x + 3, w - 6, R_NORMAL,
		  "Quit and record run #%lld as interrupted?  ", (long long)a->snap.run_id);
	draw_text(&a->pal, y + 4, x + 3, w - 6, R_KEY, "y: quit   any other key: stay");
}

static void draw_frame(struct app *a)
{
	int body = LINES - 2;

	draw_frame_begin(&a->pal);
	erase();
	if (COLS < MIN_COLS || LINES < MIN_ROWS) {
		draw_text(&a->pal, LINES / 2 - 1, 0, COLS, R_WARN, "terminal too small: %dx%d",
			  COLS, LINES);
		draw_text(&a->pal, LINES / 2, 0, COLS, R_NORMAL, "advex needs at least %dx%d",
			  MIN_COLS, MIN_ROWS);
		draw_text(&a->pal, LINES / 2 + 1, 0, COLS, R_DIM, "(q quits)");
		wnoutrefresh(stdscr);
		doupdate();
		return;
	}
	draw_tabs(a);
	switch (a->screen) {
	case SCREEN_BROWSE: browse_draw(a, 1, body); break;
	case SCREEN_ATTACK: attackview_draw(a, 1, body); break;
	case SCREEN_RUNS: runsview_draw(a, 1, body); break;
	case SCREEN_COMPARE: compare_draw(a, 1, body); break;
	default: break;
	}
	if (a->help)
		help_draw(a);
	if (a->confirm_quit)
		draw_confirm(a);
	draw_status(a);
	wnoutrefresh(stdscr);
	doupdate();
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
	else
		runsview_prompt_done(a, k, text);
}

static void prompt_key(struct app *a, int key)
{
	if (key == K_ESC) {
		a->prompt = PROMPT_NONE;
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
	default: return 0;
	}
}

static void handle_key(struct app *a, int key)
{
	if (key == KEY_FN(KEY_RESIZE)) {
		clearok(curscr, TRUE);
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
		if (key == K_ESC || key == '?' || key == 'q' || key == KEY_FN(KEY_F(1)))
			a->help = 0;
		return;
	}
	if (key == '?' || key == KEY_FN(KEY_F(1))) {
		a->help = 1;
		return;
	}
	if (key == 12) {	/* Ctrl-L */
		clearok(curscr, TRUE);
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
	case '1': case '2': case '3': case '4':
		switch_screen(a, (enum screen_id)(key - '1'));
		break;
	default:
		break;
	}
}

/* ---- what the worker published ------------------------------------------------------------ */

static void took_snapshot(struct app *a)
{
	const struct wsnap *s = &a->snap;

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
	/* no parameter change in flight: the worker's parameters are the truth
	 * (a least-likely target it chose, a change it refused) */
	if (s->params_ack == a->params_seq)
		a->want = s->p;
}

/* ---- setup ------------------------------------------------------------------------------------- */

enum { OPT_DATA = OPT_FIRST_FREE, OPT_SPLIT, OPT_DB, OPT_OUT_DIR };

struct options {
	struct cli_model_opts mo;
	const char *data, *split, *db, *out_dir;
	int resize;		/* --resize */
};

static void explore_help(void)
{
	printf("usage: advex [explore] [--model FILE | --arch NAME] [--data DIR] [--split S]\n"
	       "             [--resize] [--db FILE] [--out-dir DIR]\n\n"
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
	       "  --out-dir DIR    where e exports PNGs (default: the current directory)\n\n"
	       "Environment: NO_COLOR (any value) draws without colour; ADVEX_COLOR=direct,\n"
	       "256, 8 or mono forces a colour mode.\n",
	       cli_model_help, cli_resize_help);
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		CLI_MODEL_OPTIONS,
		{ "data", required_argument, NULL, OPT_DATA },
		{ "split", required_argument, NULL, OPT_SPLIT },
		{ "db", required_argument, NULL, OPT_DB },
		{ "out-dir", required_argument, NULL, OPT_OUT_DIR },
		CLI_RESIZE_OPTION,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = cli_model_opt(&o->mo, "explore", c, optarg);

		if (r < 0)
			return EXIT_USAGE;
		if (r)
			continue;
		switch (c) {
		case OPT_DATA: o->data = optarg; break;
		case OPT_SPLIT: o->split = optarg; break;
		case OPT_DB: o->db = optarg; break;
		case OPT_OUT_DIR: o->out_dir = optarg; break;
		case OPT_RESIZE: o->resize = 1; break;
		case 'h': explore_help(); return -1;
		default: return cli_usage_error("explore", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("explore", "unexpected argument '%s'", argv[optind]);
	return EXIT_OK;
}

/* Everything the explorer holds, for teardown in one place. */
struct resources {
	struct net *net;
	struct dataset *wdata;		/* the worker's handle */
	struct db *wdb;			/* the worker's connection */
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
	int demo = 0, have_default = !cli_default_source(data, model, sizeof data, &demo);
	int default_model = !o->mo.model && !o->mo.arch;
	char *abs;

	if (default_model) {
		if (!have_default)
			return cli_fail("no --model given, no model at the default path and no "
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
			return cli_fail("no --data given and no STL-10 at the default path or "
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
	snprintf(a->model_label, sizeof a->model_label, "%s", r->model_path);
	return EXIT_OK;
}

static void fill_template(struct app *a, struct resources *r, const struct options *o)
{
	const struct net_info *in = a->ni;
	int n = 0;

	if (o->mo.arch)
		n = snprintf(r->arch, sizeof r->arch, "%s, weights seed %lu: ", o->mo.arch,
			     o->mo.seed);
	if (n < 0 || (size_t)n >= sizeof r->arch)
		n = 0;
	snprintf(r->arch + n, sizeof r->arch - (size_t)n,
		 "%dx%dx%d -> %d classes, %d layers, %zu parameters%s%s", in->in_c, in->in_h,
		 in->in_w, in->n_classes, in->n_layers, in->n_params,
		 in->source && in->source[0] ? "; " : "", in->source ? in->source : "");
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
	struct worker_setup ws;
	char err[ERR_MAX], note[ERR_MAX];
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
		return cli_fail("%s", err);
	cli_set_threads(o->mo.threads);
	if ((rc = cli_load_net(&o->mo, "explore", PRED_BATCH, 0, &r->net)))
		return rc;
	a->ni = net_get_info(r->net);
	if ((rc = cli_open_data(r->data_path, o->split, &a->data)))
		return rc;
	if (dataset_open(r->data_path, o->split, &r->wdata, note, err) != ST_OK)
		return cli_fail("%s", err);
	if ((rc = cli_fit_data(a->data, a->ni, o->resize)) ||
	    (rc = cli_fit_data(r->wdata, a->ni, o->resize)))
		return rc;
	if (dataset_count(a->data) < 1)
		return cli_fail("%s: no images in the %s split", dataset_path(a->data),
				dataset_split(a->data));
	if (a->ni->in_c != 3)
		return cli_fail("the model takes %d channels; the explorer shows RGB images",
				a->ni->in_c);
	a->k = a->ni->n_classes;
	a->h = a->ni->in_h;
	a->w = a->ni->in_w;
	a->npix = 3 * (size_t)a->h * a->w;
	if (layer_labels(a, r->net) ||
	    wsnap_alloc(&a->snap, a->k, a->ni->n_layers + 1, a->h, a->w, WORKER_MAX_ITERS + 2) ||
	    !(a->attack.delta = malloc(sizeof(float) * a->npix)) ||
	    !(a->browse.preview = malloc(sizeof(float) * a->npix)) ||
	    !(a->browse.probs = calloc((size_t)a->k, sizeof(float))) ||
	    !(a->browse.thumbs = malloc(sizeof(float) * a->npix * THUMB_SLOTS)))
		return cli_fail("out of memory");
	fill_template(a, r, o);
	if (make_pipe(r->wake) || make_pipe(r->sig))
		return cli_fail("cannot create a pipe: %s", strerror(errno));
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
		if (worker_start(&ws, &a->worker, err) != ST_OK) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return cli_fail("%s", err);
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

static int term_start(struct app *a)
{
	static int registered;
	const char *term = getenv("TERM");
	SCREEN *scr;

	setlocale(LC_ALL, "");
	/* the blocks, braille and box characters need UTF-8 */
	if (strcmp(nl_langinfo(CODESET), "UTF-8"))
		setlocale(LC_CTYPE, "C.UTF-8");
	scr = newterm(NULL, stdout, stdin);
	if (!scr)
		return cli_fail("cannot use the terminal (TERM=%s)", term ? term : "(unset)");
	set_term(scr);
	curses_on = 1;
	if (!registered) {
		atexit(restore_terminal);
		registered = 1;
	}
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	if (draw_init(&a->pal)) {
		restore_terminal();
		return cli_fail("out of memory");
	}
	return EXIT_OK;
}

static void drain(int fd)
{
	char buf[256];

	while (read(fd, buf, sizeof buf) > 0)
		;
}

static int read_key(int *key)
{
	wint_t wc;
	int r = get_wch(&wc);

	if (r == ERR)
		return 0;
	*key = r == KEY_CODE_YES ? KEY_FN((int)wc) : (int)wc;
	return 1;
}

static void loop(struct app *a, struct resources *r)
{
	struct timespec last_draw = { 0, 0 };
	int dirty = 1, key;

	while (!a->quit) {
		struct pollfd fds[3] = {
			{ .fd = 0, .events = POLLIN },
			{ .fd = r->wake[0], .events = POLLIN },
			{ .fd = r->sig[0], .events = POLLIN },
		};
		int timeout = 1000;

		if (dirty) {
			double since = app_elapsed(&last_draw) * 1000.0;

			if (since >= FRAME_MS) {
				draw_frame(a);
				clock_gettime(CLOCK_MONOTONIC, &last_draw);
				dirty = 0;
			} else {
				timeout = FRAME_MS - (int)since + 1;
			}
		}
		if (a->msg[0] && app_elapsed(&a->msg_at) < MSG_SECONDS + 1 && timeout > 500)
			timeout = 500;	/* let the notice expire on time */
		if (a->screen == SCREEN_RUNS && runsview_stale(a)) {
			dirty = 1;	/* the list reloads at most every 250 ms */
			if (timeout > 300)
				timeout = 300;
		}
		if (poll(fds, 3, timeout) < 0 && errno != EINTR)
			break;
		if (stop_signal) {
			a->exit_code = 128 + stop_signal;
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
		if (worker_sync(a->worker, &a->snap)) {
			took_snapshot(a);
			dirty = 1;
		}
		while (!a->quit && read_key(&key)) {
			handle_key(a, key);
			dirty = 1;
		}
		if (a->msg[0] && app_elapsed(&a->msg_at) >= MSG_SECONDS) {
			a->msg[0] = 0;
			dirty = 1;
		}
	}
}

static void teardown(struct app *a, struct resources *r)
{
	restore_terminal();
	/* ends an unfinished run as interrupted, through the worker's own
	 * connection, before that connection closes */
	worker_stop(a->worker);
	a->worker = NULL;
	signal_fd = -1;
	replay_close(a);
	compare_free(&a->cmp);
	runsview_free(a);
	browse_free(&a->browse);
	wsnap_free(&a->snap);
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
		return cli_fail("out of memory");
	memset(&r, 0, sizeof r);
	r.wake[0] = r.wake[1] = r.sig[0] = r.sig[1] = -1;
	rc = setup(a, &r, &o);
	if (!rc) {
		signal_fd = r.sig[1];
		catch_signals();
		rc = term_start(a);
	}
	if (!rc) {
		worker_open(a->worker, 0, &a->want, 1, ++a->params_seq);
		worker_want(a->worker, 0, 64, 0);
		loop(a, &r);
		rc = a->exit_code;
	}
	teardown(a, &r);
	if (a->fatal[0])
		fprintf(stderr, "advex: %s\n", a->fatal);
	else if (stop_signal)
		fprintf(stderr, "advex: interrupted; an unfinished run is recorded as interrupted in %s\n",
			a->db_path);
	free(a);
	return rc;
}
