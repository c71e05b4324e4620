/* session.h - the explorer's attack session: the compute thread.
 *
 * The session owns the attack, the network and the run log connection it
 * writes with; the UI thread never computes. The UI sends commands (open
 * an image, step, run/pause, reset, new parameters, which predictions it
 * wants) through a mutex-protected queue; after each piece of work the
 * session copies its state into a snapshot under the mutex and writes one
 * byte to a pipe the UI polls together with the keyboard. The UI copies
 * the snapshot out (session_sync) and draws from its copy, so drawing never
 * waits for a step, and a step never waits for drawing.
 *
 * Every step is logged as it happens: the first step on an image begins a
 * run; each step is one transaction; reaching the iteration count ends the
 * run 'done'. Changing a parameter, resetting, opening another image or
 * quitting ends an unfinished run 'interrupted' (the next step begins a new
 * run that continues from the current adversarial image). Nothing is
 * allocated per step.
 */
#ifndef ADVEX_TUI_SESSION_H
#define ADVEX_TUI_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "attack.h"
#include "audit.h"
#include "diag.h"
#include "loss.h"
#include "status.h"

struct net;
struct dataset;
struct db;
struct run_begin;

/* Longest iteration count the explorer lets one attack have. */
#define SESSION_MAX_ITERS 10000

/* The Audit screen's state: an audit (core/audit.h) over dataset images
 * [lo, hi), run by the session one image at a time; its verdicts are
 * recomputed after each image, so the checks light up as it goes. */
enum session_audit_state { SAUDIT_IDLE, SAUDIT_RUNNING, SAUDIT_DONE, SAUDIT_STOPPED };

struct session_audit {
	enum session_audit_state state;
	int lo, hi;		/* the images */
	int next;		/* the image being audited */
	int n_done, n_skipped;	/* audited; skipped (label is the target) */
	struct attack_params p;	/* the attack audited */
	struct audit_check checks[AUDIT_N_CHECKS];	/* after n_done images */
	int64_t first_run[AUDIT_N_CHECKS];	/* the run of each check's first
						   flagged image; 0: none */
	int64_t audit_id;	/* stored as; 0: not (yet, or no log) */
};

/* What the Attack screen shows: the session's state after its last piece of
 * work (or a logged run being replayed, see runsview.c). */
struct session_snap {
	unsigned long version;	/* grows with every publish */
	int loaded;		/* an image is open */
	int index;		/* its dataset index */
	int label;		/* true label, -1 unknown */
	char image_name[256];	/* "test_X.bin#17" */
	struct attack_params p;	/* the parameters in use */
	unsigned params_ack;	/* parameter commands handled so far */
	int iter;		/* updates made */
	int finished;		/* iterations reached (or early stop) */
	int running;		/* stepping on its own (Space) */
	int busy;		/* a command is being computed */
	/* the last evaluation, at iteration eval_iter */
	int have_eval;
	int eval_iter;
	double loss;
	struct loss_info li;
	int cls, pred, success;
	double target_prob;
	struct diag_grad grad;
	double pert_linf, pert_l2, step_ms;
	char diagnosis[DIAG_EXPLAIN_MAX];
	int k;			/* classes */
	int n_norms;		/* layer boundaries: n_layers + 1 */
	float *probs;		/* k */
	double *norms;		/* n_norms: gradient L2 norm at each boundary */
	int h, w;
	size_t npix;
	float *x0, *xadv;	/* npix each: clean and current image */
	double *loss_hist;	/* loss at iteration i (NaN: not evaluated) */
	int n_hist;		/* entries in use */
	int cap_hist;
	/* the run log */
	int64_t run_id;		/* the run being written; 0: none */
	int run_steps;		/* steps logged in it */
	int64_t last_run_id;	/* the latest run begun */
	int runs_logged;	/* runs begun this session */
	double avg_step_ms;	/* moving average, for the ETA */
	char msg[ERR_MAX];	/* the latest notice ("finished: ...") or error */
	unsigned msg_seq;	/* grows with each notice */
	int msg_err;		/* 1: the notice is a refusal or an error */
	int db_failed;		/* a write failed: the explorer must stop */
	char db_err[ERR_MAX];
	int64_t failed_run;	/* the run open then, 0: none */
	int failed_marked;	/* 1: it could still be marked 'failed' */
	int preds_done;		/* dataset predictions known */
	struct session_audit aud;	/* the Audit screen's */
};

/* Size a snapshot's arrays; 0, or -1 when out of memory. */
int session_snap_alloc(struct session_snap *s, int k, int n_norms, int h, int w, int cap_hist);
void session_snap_free(struct session_snap *s);
/* Copy src into dst (both allocated with the same sizes). */
void session_snap_copy(struct session_snap *dst, const struct session_snap *src);

struct session_setup {
	struct net *net;		/* borrowed; used by the session thread
					   only, from session_start to session_stop */
	int batch;			/* images per prediction forward, <= the
					   net's max_batch */
	struct dataset *data;		/* the session's own handle, borrowed */
	struct db *db;			/* the session's own connection, borrowed;
					   NULL: nothing is logged */
	const struct run_begin *tmpl;	/* the model and data fields of every
					   run (copied; its strings must outlive
					   the session) */
	int wake_fd;			/* written to after each publish */
};

struct session;

enum status session_start(const struct session_setup *s, struct session **out,
			 char *err);
/* Stop: end an unfinished run as 'interrupted', join the thread, free. */
void session_stop(struct session *w);

/* ---- commands (UI thread; each returns at once) --------------------------- */

/* Open dataset image index with parameters p (true_label is filled in);
 * least_likely: target the class the model finds least likely there. seq
 * numbers parameter commands, see params_ack. */
void session_open(struct session *w, int index, const struct attack_params *p,
		 int least_likely, unsigned seq);
/* One step; while running, pause instead. */
void session_step(struct session *w);
/* Run to the end, or pause when running. */
void session_toggle_run(struct session *w);
/* Back to the clean image (a new random start for PGD). */
void session_reset(struct session *w);
/* New parameters between steps (checked; a rejection becomes the notice). */
void session_params(struct session *w, const struct attack_params *p, unsigned seq);
/* Audit images [lo, hi) with the attack p (core/audit.h's checks): one
 * image per turn of the session, each attack logged as a run, the audit
 * stored when it ends. Ends the live attack's open run first. */
void session_audit(struct session *w, int lo, int hi, const struct attack_params *p);
/* Stop the audit after the image in flight (its attack is cut short and
 * logged interrupted; nothing is stored). */
void session_audit_stop(struct session *w);
/* Read the PNG exported at path back, classify it, say whether it is
 * still adversarial for p (label: the true label; was_adversarial: the
 * image was, as shown) and log that with run (0: not logged) in the
 * exports table. */
void session_recheck(struct session *w, const char *path, int64_t run,
		     const struct attack_params *p, int label, int was_adversarial);
/* Predictions wanted: images [lo, hi) first; all: then every image. */
void session_want(struct session *w, int lo, int hi, int all);

/* ---- results (UI thread) -------------------------------------------------- */

/* Copy the latest snapshot into dst when it is newer; returns 1 if so. */
int session_sync(struct session *w, struct session_snap *dst);
/* The model's view of image i, when computed: probabilities (k, may be
 * NULL), the predicted class and its probability. Returns 1 when known. */
int session_pred(struct session *w, int i, float *probs, int *pred, float *conf);

#endif
