/* audit_json.c - an audit as JSON (see audit_json.h). */
#include "audit_json.h"

#include <math.h>

/* JSON has no NaN or infinity: null. */
static json_t *num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

json_t *audit_json_params(const struct audit_params *p)
{
	const struct attack_params *a = &p->attack;
	json_t *o = json_object(), *b = json_array();
	int j;

	for (j = 0; b && j < p->n_eps; j++)
		json_array_append_new(b, json_real(p->eps[j]));
	json_object_set_new(o, "attack", json_string(attack_kind_name(a->kind)));
	json_object_set_new(o, "norm", json_string(attack_norm_name(a->norm)));
	json_object_set_new(o, "loss", json_string(loss_mode_name(a->loss.mode)));
	json_object_set_new(o, "objective", json_string(attack_objective_name(a)));
	json_object_set_new(o, "eps", json_real(a->eps));
	json_object_set_new(o, "alpha", json_real(a->alpha));
	json_object_set_new(o, "iters", json_integer(a->iters));
	json_object_set_new(o, "target", a->target >= 0 ? json_integer(a->target) : json_null());
	json_object_set_new(o, "seed", json_integer((json_int_t)a->seed));
	json_object_set_new(o, "early_stop", json_boolean(a->early_stop));
	json_object_set_new(o, "budgets", b);
	json_object_set_new(o, "noise_samples", json_integer(p->noise_samples));
	json_object_set_new(o, "noise_r", json_real(AUDIT_NOISE_R));
	json_object_set_new(o, "random_passes", json_integer(p->random_passes));
	json_object_set_new(o, "square_queries", json_integer(p->square_queries));
	return o;
}

json_t *audit_json_image(const struct audit_image *r, int n_eps)
{
	json_t *o = json_object(), *b = json_array();
	int j;

	for (j = 0; b && j < n_eps; j++)
		json_array_append_new(b, json_integer(r->budget[j]));
	json_object_set_new(o, "index", json_integer(r->index));
	json_object_set_new(o, "label", json_integer(r->label));
	json_object_set_new(o, "clean_pred", json_integer(r->clean_pred));
	json_object_set_new(o, "outputs_probs", json_boolean(r->outputs_probs));
	json_object_set_new(o, "row_sum", num(r->row_sum));
	json_object_set_new(o, "grad_zero", json_boolean(r->grad_zero > 0));
	json_object_set_new(o, "cause", r->grad_zero > 0 ? json_string(r->cause) : json_null());
	json_object_set_new(o, "success", json_boolean(r->success));
	json_object_set_new(o, "ever_success", json_boolean(r->ever_success));
	json_object_set_new(o, "iters", json_integer(r->iters));
	json_object_set_new(o, "tail_improvement", r->tail_improvement >= 0 ?
			    num(r->tail_improvement) : json_null());
	json_object_set_new(o, "unconstrained", json_integer(r->unconstrained));
	json_object_set_new(o, "square", json_integer(r->square));
	json_object_set_new(o, "budget", b);
	json_object_set_new(o, "noise_change", num(r->noise_change));
	json_object_set_new(o, "random", json_boolean(r->random));
	json_object_set_new(o, "export_ok", json_integer(r->export_ok));
	json_object_set_new(o, "pert_linf", num(r->pert_linf));
	json_object_set_new(o, "pert_l2", num(r->pert_l2));
	json_object_set_new(o, "final_loss", num(r->final_loss));
	return o;
}

json_t *audit_json_checks(const struct audit_check *checks)
{
	json_t *o = json_object();
	int i;

	for (i = 0; o && i < AUDIT_N_CHECKS; i++) {
		const struct audit_check *c = &checks[i];
		json_t *e = json_object();

		json_object_set_new(e, "n", json_integer(i + 1));
		json_object_set_new(e, "title", json_string(c->title));
		json_object_set_new(e, "verdict", json_string(audit_verdict_name(c->verdict)));
		json_object_set_new(e, "figure", num(c->figure));
		json_object_set_new(e, "detail", json_string(c->figure_text));
		json_object_set_new(e, "sentence", json_string(c->sentence));
		json_object_set_new(e, "n_flagged", json_integer(c->n_flagged));
		json_object_set_new(e, "first_image", c->first_image >= 0 ?
				    json_integer(c->first_image) : json_null());
		json_object_set_new(o, c->key, e);
	}
	return o;
}

json_t *audit_json_summary(const struct audit_check *checks)
{
	int n[4] = { 0 }, i;

	for (i = 0; i < AUDIT_N_CHECKS; i++)
		n[checks[i].verdict]++;
	return json_pack("{s:i, s:i, s:i, s:i}", "pass", n[AUDIT_PASS], "warn",
			 n[AUDIT_WARN], "fail", n[AUDIT_FAIL], "skipped", n[AUDIT_SKIPPED]);
}

json_t *audit_json_report(const struct audit_params *p, const struct audit_image *recs,
			  int n, const struct audit_check *checks)
{
	json_t *o = json_object(), *im = json_array();
	int i;

	for (i = 0; im && i < n; i++)
		json_array_append_new(im, audit_json_image(&recs[i], p->n_eps));
	json_object_set_new(o, "params", audit_json_params(p));
	json_object_set_new(o, "images", im);
	json_object_set_new(o, "checks", audit_json_checks(checks));
	json_object_set_new(o, "summary", audit_json_summary(checks));
	return o;
}
