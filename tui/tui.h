/* tui.h - the explorer: the state its screens share, and each screen's
 * draw/key pair (ncdu style: x_draw() paints from the state, x_key()
 * changes it and returns 1 when it used the key).
 *
 * Threads: every curses call, and every function declared here, runs on
 * the UI thread (app.c's loop). Computation runs on session.c's thread and
 * reaches the screens only through the snapshot in struct app.
 */
#ifndef ADVEX_TUI_H
#define ADVEX_TUI_H

#include <stdint.h>
#include <time.h>

#include "attack.h"
#include "draw.h"
#include "status.h"
#include "session.h"

struct dataset;
struct db;
struct net_info;
struct run_row;

enum screen_id { SCREEN_BROWSE, SCREEN_ATTACK, SCREEN_RUNS, SCREEN_COMPARE, SCREEN_AUDIT,
		 SCREEN_N };

/* Keys: a character's code point, or a curses function key moved above
 * Unicode so the two never collide. */
#define KEY_FN(k) ((k) + 0x110000)
#define K_ESC 27
/* A mouse event (term.h's struct term_mouse says where). */
#define K_MOUSE KEY_FN(KEY_MOUSE)
/* An escape sequence read whole and ignored: no key at all. */
#define K_NONE KEY_FN(0)
/* A click on row i of a screen's list (Browse images, Runs rows). */
#define K_ROW(i) (KEY_FN(0x1000) + (i))
#define IS_K_ROW(k) ((k) >= K_ROW(0))

/* The smallest terminal the screens are drawn in. */
#define MIN_COLS 80
#define MIN_ROWS 24
/* How long a notice stays in the status line, in seconds (beside the
 * screen's state, which it never hides). */
#define MSG_SECONDS 4.0

/* "s" unless n is 1: "1 step", "2 steps". */
static inline const char *plural_s(long n)
{
	return n == 1 ? "" : "s";
}

/* ---- Browse ----------------------------------------------------------------- */

#define THUMB_SLOTS 64

struct browse_ui {
	int *list;		/* image indices passing the filters */
	int n, cap;
	int sel;		/* position in list */
	int top;		/* first list row (or grid row) shown */
	int cls;		/* class filter on the true label; -1: all */
	int miscls;		/* only images the model gets wrong */
	int grid;		/* thumbnails instead of the list */
	int built;		/* 0: rebuild the list before drawing */
	int built_preds;	/* predictions known when it was built */
	double built_at;	/* clock_ms when it was built */
	int page;		/* rows (or grid rows) on screen, for paging */
	int per_row;		/* images per row: 1, or the grid's columns */
	float *preview;		/* the selected image */
	int preview_index;	/* -1: none loaded */
	float *probs;		/* k: its prediction */
	int thumb_index[THUMB_SLOTS];	/* grid thumbnails, direct-mapped */
	float *thumbs;			/* THUMB_SLOTS images */
};

/* ---- Attack ----------------------------------------------------------------- */

struct attack_ui {
	int lower;		/* compact layout: 0 probabilities + loss,
				   1 histogram + layer norms */
	int linear;		/* probability bars linear instead of log */
	float *delta;		/* the amplified perturbation, for drawing */
};

/* ---- Runs, replay, Compare ------------------------------------------------------ */

struct replay_step {
	int iter;
	double loss, target_prob, pert_linf, pert_l2, step_ms;
	int pred;
	float *probs;		/* k */
	struct diag_grad grad;
	double *norms;
	int n_norms;
	char *diagnosis;
};

/* A logged run opened read-only in the Attack layout. */
struct replay {
	int active;
	int64_t row_id;
	struct run_row *row;
	struct replay_step *steps;
	int n_steps;
	int cursor;		/* the step shown */
	int have_adv;		/* the run stored its final image */
	float *final_probs;	/* the end point's probabilities, n_final */
	int n_final;
	struct session_snap snap;	/* what attackview draws */
	char (*names)[64];	/* the run's class names */
	const char **name_ptrs;
};

#define MAX_COMPARE 6

struct runs_ui {
	struct run_row *rows;	/* as loaded, newest first */
	int n, cap;
	int *view;		/* rows after filter and sort */
	int n_view;
	int sel, top, page;
	int sort;		/* column, see runsview.c */
	int hcol;		/* columns scrolled past on the left */
	int desc;
	int status_filter;	/* 0: all, else an index into the statuses */
	char text[128];		/* substring filter ("/") */
	int64_t marked[MAX_COMPARE];
	int n_marked;
	int loaded;
	int seen_runs, seen_steps;	/* the live run when last loaded */
	int64_t seen_run;
	double loaded_at;	/* clock_ms when it was loaded */
	char err[ERR_MAX];
};

struct compare_run {
	struct run_row *row;
	double *loss;		/* by iteration, NaN where none */
	int n_loss;
	float *probs;		/* final probabilities, n_probs */
	int n_probs;
};

struct sweepcurve;

struct compare_ui {
	struct compare_run runs[MAX_COMPARE];
	int n;
	struct sweepcurve *sweep;	/* the log's sweeps (sweepcurve.h);
					   NULL: could not be read */
	char (*names)[64];	/* class names of the first run */
	int n_names;
	char err[ERR_MAX];
};

/* ---- Audit ----------------------------------------------------------------------- */

struct audit_ui {
	int sel;		/* the check shown in full */
};

/* ---- the application ------------------------------------------------------------ */

enum prompt_kind { PROMPT_NONE, PROMPT_GOTO, PROMPT_FILTER, PROMPT_DELETE, PROMPT_AUDIT };

/* A place on screen that a click acts on: the key it stands for (a tab's
 * digit, a key hint's key, K_ROW(i) for a list row). Laid down as the
 * frame is drawn, so a click always acts on what is on screen. */
struct hotzone {
	int y, x, w;
	int key;
};
#define MAX_ZONES 192

/* One entry of a key bar: the key as shown, what it does, the key sent
 * when it is clicked. */
struct key_hint {
	const char *key, *desc;
	int code;
};

struct app {
	struct palette pal;

	/* what is explored */
	struct dataset *data;		/* the UI thread's own handle */
	const struct net_info *ni;	/* constant while the session runs */
	char (*layer_kind)[40];		/* n_layers short layer labels */
	int *layer_out;			/* n_layers: net_layer_info.out_norm */
	unsigned char *layer_params;	/* n_layers: 1 where a node has weights,
					   2 where branches meet (add, concat) */
	int n_layers;
	int k, h, w;
	size_t npix;
	int names_differ;		/* the model's class names are not the
					   data's: both are shown */
	char source[8400];		/* "demo data ... · model ..." */
	char source_short[8400];	/* the same without directories */
	struct db *db;			/* the UI thread's connection: reads */
	char db_path[4096];
	char out_dir[4096];		/* where e writes PNGs */
	char model_label[4096];		/* model path for PNG text */
	struct session *session;

	/* the live attack, as the session last published it */
	struct session_snap snap;
	struct attack_params want;	/* the parameters as the user set them */
	unsigned params_seq;		/* parameter commands sent */
	unsigned seen_msg_seq;
	int64_t deleted_run;		/* the live attack's last run, deleted in Runs */

	/* the loop */
	enum screen_id screen;
	int help;			/* the help overlay is open */
	int tour, tour_step;		/* the guided tour is open, at this step */
	int is_demo;			/* the bundled demo model and data */
	int confirm_quit;		/* asking before ending a run */
	int quit;
	int exit_code;
	char fatal[ERR_MAX + 4200];	/* printed after the terminal is restored */
	char msg[ERR_MAX + 128];	/* the status line's notice */
	enum role msg_role;
	double msg_at;			/* clock_ms when it was set */
	enum prompt_kind prompt;
	char prompt_buf[128];
	int prompt_len;
	char prompt_what[200];		/* the question, when it names a thing */
	char prompt_orig[128];		/* the text before editing (Esc) */

	int mouse;			/* clicks and the wheel are read */
	struct hotzone zones[MAX_ZONES];
	int n_zones;

	struct browse_ui browse;
	struct attack_ui attack;
	struct runs_ui runs;
	struct replay replay;
	struct compare_ui cmp;
	struct audit_ui audit;
};

/* app.c */
void app_message(struct app *a, enum role r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Seconds since t_ms, a clock_ms() reading. */
double app_elapsed(double t_ms);
/* Send a.want to the session. */
void app_send_params(struct app *a);
/* Open dataset image index in Attack (leaves any replay). */
void app_open_image(struct app *a, int index);
/* Start a one-line prompt in the status line. */
void app_prompt(struct app *a, enum prompt_kind k, const char *initial);
/* A click at (y, x..x+w-1) sends key. */
void app_zone(struct app *a, int y, int x, int w, int key);
/* Draw "key desc  key desc ..." from x, each entry clickable; entries that
 * do not fit in w columns are left out whole, with "…" where they would
 * be. Returns the columns used. */
int app_key_bar(struct app *a, int y, int x, int w, const struct key_hint *h, int n);

/* frame.c: the tabs, the status line and the quit question around the
 * current screen, then one doupdate. */
void frame_draw(struct app *a);

/* browse.c */
void browse_draw(struct app *a, int y, int h);
int browse_key(struct app *a, int key);
/* The go-to prompt's answer: an image index. */
void browse_prompt_done(struct app *a, const char *text);
void browse_free(struct browse_ui *b);

/* attackview.c */
void attackview_draw(struct app *a, int y, int h);
int attackview_key(struct app *a, int key);
/* Write the shown adversarial image as a PNG into a->out_dir. */
void attackview_export(struct app *a);

/* runsview.c */
void runsview_draw(struct app *a, int y, int h);
int runsview_key(struct app *a, int key);
void runsview_prompt_done(struct app *a, enum prompt_kind k, const char *text);
void runsview_free(struct app *a);
/* 1 when the live run has moved on since the list was loaded. */
int runsview_stale(const struct app *a);

/* replay.c */
/* Open run id in the Attack layout; 0, or -1 with the notice set. */
int replay_open(struct app *a, int64_t id);
void replay_close(struct app *a);
int replay_key(struct app *a, int key);

/* compare.c */
void compare_draw(struct app *a, int y, int h);
int compare_key(struct app *a, int key);
/* Load the marked runs (at least 2). Returns 0, or -1 with a message. */
int compare_load(struct app *a);
void compare_free(struct compare_ui *c);

/* auditview.c: the Audit screen (advex audit in the explorer) */
void auditview_draw(struct app *a, int y, int h);
int auditview_key(struct app *a, int key);
/* The range prompt's answer: "A:B" or one index. */
void auditview_prompt_done(struct app *a, const char *text);
/* The state line and keys of the Audit screen (frame.c's status line). */
int auditview_state(const struct app *a, char *buf, size_t n, struct key_hint *k);

/* help.c */
void help_draw(struct app *a);

/* tour.c: the guided tour (the story in five keys) */
/* 1 when the tour was ended once (it then opens only when asked). */
int tour_seen(void);
void tour_start(struct app *a);
/* Keys the tour itself takes (Esc, its Enter); 0 for the rest. */
int tour_key(struct app *a, int key);
/* Advance when the explorer reached what the step asked for. */
void tour_watch(struct app *a);
void tour_draw(struct app *a);

#endif
