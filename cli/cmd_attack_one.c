/* cmd_attack_one.c - `advex attack --image REF`: one attack, a table of
 * every step (or JSON lines), the summary, and the image written out. */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd_attack.h"
#include "audits.h"
#include "db.h"
#include "exportmeta.h"
#include "image.h"
#include "jsonout.h"
#include "npy.h"
#include "runlog.h"

struct single_ctx {
	const struct net_info *in;
	int json, quiet;
	struct run_log *log;
};

static void print_step_json(const struct net_info *in, const struct attack_report *r,
			    const char *type, long long run_id)
{
	json_t *o = json_pack("{s:s, s:i, s:f, s:f, s:i, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:b, s:f}",
			      "type", type, "iter", r->iter, "loss", r->loss,
			      "target_prob", r->target_prob, "pred", r->pred,
			      "pred_name", in->classes[r->pred], "grad_l2", r->grad.l2,
			      "grad_linf", r->grad.linf, "zero_fraction", r->grad.zero_frac,
			      "pert_linf", r->pert_linf, "pert_l2", r->pert_l2,
			      "step_ms", r->step_ms, "success", r->success,
			      "grad_l1", r->grad.l1);
	char *s;

	json_object_set_new(o, "diagnosis", r->diagnosis && r->diagnosis[0] ?
			    json_string(r->diagnosis) : json_null());
	json_object_set_new(o, "queries", json_integer(r->queries));
	json_object_set_new(o, "best_loss", json_real(isfinite(r->best_loss) ? r->best_loss : 0.0));
	json_object_set_new(o, "best_success", json_boolean(r->best_success));
	json_object_set_new(o, "best_pert_linf", json_real(r->best_pert_linf));
	json_object_set_new(o, "best_pert_l2", json_real(r->best_pert_l2));
	if (run_id > 0)
		json_object_set_new(o, "run_id", json_integer(run_id));
	if (isinf(r->loss) || isnan(r->loss))
		json_object_set_new(o, "loss", json_string(isnan(r->loss) ? "nan" : "inf"));
	s = jsonout_dumps(o, JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

static int on_step(const struct attack_report *r, void *user)
{
	const struct single_ctx *c = user;
	char cn[CLI_NAME_MAX], why[4096];

	if (cmd_attack_log_step(c->log, r))
		return 1;
	if (c->json) {
		print_step_json(c->in, r, "step", 0);
		return 0;
	}
	if (c->quiet)
		return 0;
	printf("%4d  %12.6g  %11.4g  %-12s %11.4g  %6.2f%%  %9.4g  %7.1fms\n", r->iter,
	       r->loss, r->target_prob, cli_class_name(c->in, r->pred, cn, sizeof cn),
	       r->grad.l2, 100 * r->grad.zero_frac, r->pert_linf, r->step_ms);
	if (r->diagnosis && r->diagnosis[0])
		printf("      diagnosis: %s\n", cli_printable(r->diagnosis, why, sizeof why));
	return 0;
}

/* Write --out, read it back and classify it again: say (and log) whether
 * the 8-bit image is still adversarial. */
static int write_png(const struct attack_args *a, struct net *n, const struct attack *at,
		     const char *src, int label, const struct run_log *log, int64_t run)
{
	const struct net_info *in = net_get_info(n);
	const struct attack_params *p = attack_get_params(at);
	struct exportmeta m;
	char err[ERR_MAX], cn[CLI_NAME_MAX], shown[4096];
	int pred, ok;

	exportmeta_fill(&m, p, attack_iter(at), p->target >= 0 ? in->classes[p->target] : NULL,
			label >= 0 ? in->classes[label] : NULL, src, a->mo.used, run);
	if (image_write_png(a->out, attack_x_result(at), in->in_h, in->in_w, m.keys, m.vals,
			    m.n, err) != ST_OK ||
	    exportmeta_recheck(n, a->out, p, label, &pred, &ok, err) != ST_OK)
		return cli_fail("%s", err);
	fprintf(a->json ? stderr : stdout, "%sexported     %s, read back: predicted %s, %s\n",
		a->json ? "advex: " : "", cli_printable(a->out, shown, sizeof shown),
		cli_class_name(in, pred, cn, sizeof cn),
		ok ? "still adversarial at 8 bits" :
		"NOT adversarial at 8 bits (rounding to the PNG's 256 levels undid the attack; "
		"--quantize keeps every iterate on that grid)");
	if (log->db && run > 0 && exports_record(log->db, run, a->out, pred, ok, err) != ST_OK)
		return cli_fail("%s", err);
	return EXIT_OK;
}

static void print_summary(const struct attack_args *a, const struct net_info *in,
			  const struct attack_report *r, int label,
			  const struct run_log *log)
{
	const struct attack_params *p = &a->p;
	char cn[CLI_NAME_MAX], why[4096];

	if (a->json) {
		print_step_json(in, r, "summary", (long long)cmd_attack_log_id(log));
		return;
	}
	printf("\nresult       %s: predicted %s (p = %.4g) after %d iteration%s\n",
	       r->success ? "success" : "no success", cli_class_name(in, r->pred, cn, sizeof cn),
	       r->probs[r->pred], r->iter, r->iter == 1 ? "" : "s");
	printf("             %s = %.4g (loss %.6g)\n", p->target >= 0 ? "p(target)" :
	       "p(true label)", r->target_prob, r->loss);
	printf("perturbation Linf %.6g  L2 %.6g  (eps %.6g, %s)\n", r->pert_linf,
	       r->pert_l2, p->eps, attack_norm_name(p->norm));
	if (label >= 0)
		printf("true label   %s\n", cli_class_name(in, label, cn, sizeof cn));
	if (r->diagnosis && r->diagnosis[0])
		printf("diagnosis    %s\n", cli_printable(r->diagnosis, why, sizeof why));
	if (cmd_attack_log_id(log))
		printf("run log      run %lld in %s\n", (long long)cmd_attack_log_id(log),
		       db_path(log->db));
}

int cmd_attack_one(struct attack_args *a, struct net *n, struct dataset *d,
		   struct run_log *log)
{
	const struct net_info *in = net_get_info(n);
	float *x = malloc(sizeof *x * 3 * (size_t)in->in_h * in->in_w);
	struct single_ctx ctx = { in, a->json, a->quiet, log };
	struct attack_report rep;
	struct attack *at = NULL;
	char name[512], err[ERR_MAX], cn[CLI_NAME_MAX], shown[sizeof name * 4];
	int label, rc, cancelled;
	int64_t run;
	/* as cli_load_image decides: a number names a dataset image */
	int from_data = d && source_parse_long(a->image, 0, INT_MAX) >= 0;

	if (!x)
		return cli_fail("out of memory");
	rc = cli_load_image(a->image, d, in, x, &label, name, sizeof name);
	if (rc)
		goto out;
	a->p.true_label = label;
	cmd_attack_set_eps(a, a->n_eps ? a->eps[0] : 8.0 / 255);
	if (attack_params_check(&a->p, in->n_classes, err) != ST_OK ||
	    attack_new(n, &at, err) != ST_OK || attack_reset(at, x, &a->p, err) != ST_OK) {
		rc = cli_fail("%s", err);
		goto out;
	}
	if (!a->json && !a->quiet) {
		printf("attack %s %s eps %.6g alpha %.6g iters %d, loss %s, %s%s\n",
		       attack_kind_name(a->p.kind), attack_norm_name(a->p.norm), a->p.eps,
		       a->p.alpha, a->p.iters, attack_objective_name(&a->p),
		       a->p.target >= 0 ? "target " : "untargeted",
		       a->p.target >= 0 ? cli_class_name(in, a->p.target, cn, sizeof cn) : "");
		printf("image  %s%s%s\n\n", cli_printable(name, shown, sizeof shown),
		       label >= 0 ? ", true label " : "",
		       label >= 0 ? cli_class_name(in, label, cn, sizeof cn) : "");
		printf("%4s  %12s  %11s  %-12s %11s  %7s  %9s  %9s\n", "iter", "loss",
		       a->p.target >= 0 ? "p(target)" : "p(true)", "prediction",
		       "grad L2", "zero", "pert Linf", "time");
	}
	log->b.eps_text = a->eps_text[0];
	rc = cmd_attack_log_begin(log, &a->p, from_data ? d : NULL, from_data ? name : a->image,
		       label, attack_x0(at));
	if (rc)
		goto out;
	cancelled = attack_run(at, on_step, &ctx) == 1;
	attack_evaluate(at, &rep);
	run = cmd_attack_log_id(log);
	if (!runlog_error(log->w))
		print_summary(a, in, &rep, attack_label(at), log);
	rc = cmd_attack_log_outcome(log, cancelled, &rep, attack_x_result(at));
	if (!rc && a->out)
		rc = write_png(a, n, at, name, label, log, run);
	if (!rc && a->npy_out) {
		int shape[4] = { 1, 3, in->in_h, in->in_w };

		if (npy_write_f32(a->npy_out, shape, 4, attack_x_result(at), err) != ST_OK)
			rc = cli_fail("%s", err);
	}
out:
	attack_free(at);
	free(x);
	return rc;
}

