/* test_audit.c - the audit through its C API: the randomness check
 * (check 8) on a model whose dropout is left on, which no model file can
 * ask for, with the same model in inference mode as the control; and the
 * refusals of unusable audit parameters. The other checks are
 * tests/test_audit_checks.py's, through `advex audit`. */
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "modelfile.h"
#include "net.h"
#include "rng.h"
#include "tap.h"

#define S 12
#define HID 16
#define K 4

static const char arch[] =
	"[{\"op\":\"flatten\"},{\"op\":\"dense\",\"name\":\"d1\",\"out\":16},"
	"{\"op\":\"relu\"},{\"op\":\"dropout\",\"p\":0.5},"
	"{\"op\":\"dense\",\"name\":\"d2\",\"out\":4}]";

static struct net *small_net(char *err)
{
	static float w1[HID * 3 * S * S], b1[HID], w2[K * HID], b2[K];
	struct mf_out_tensor t[4] = {
		{ .name = "d1.weight", .ndim = 2, .shape = { HID, 3 * S * S }, .data = w1 },
		{ .name = "d1.bias", .ndim = 1, .shape = { HID }, .data = b1 },
		{ .name = "d2.weight", .ndim = 2, .shape = { K, HID }, .data = w2 },
		{ .name = "d2.bias", .ndim = 1, .shape = { K }, .data = b2 },
	};
	const char *keys[] = { "advex.format", "advex.arch", "advex.input",
			       "advex.classes" };
	const char *vals[] = { "1", arch, "[3, 12, 12]", "[\"a\", \"b\", \"c\", \"d\"]" };
	struct modelfile *mf = NULL;
	struct net *n = NULL;
	struct rng r;
	void *buf;
	size_t len, i;

	rng_seed(&r, 3);
	for (i = 0; i < sizeof w1 / sizeof w1[0]; i++)
		w1[i] = (float)(rng_uniform(&r) - 0.5) * 0.2f;
	for (i = 0; i < sizeof w2 / sizeof w2[0]; i++)
		w2[i] = (float)(rng_uniform(&r) - 0.5);
	if (modelfile_encode(t, 4, keys, vals, 4, &buf, &len, err) == ST_OK &&
	    modelfile_open_buffer(buf, len, "small.safetensors", &mf, err) == ST_OK &&
	    net_create(mf, 1, 1, 1, &n, err) != ST_OK)
		n = NULL;
	modelfile_close(mf);
	return n;
}

static int audit_random(struct net *n, int training, struct audit_check *chk,
			char *err)
{
	struct attack_params ap = attack_params_default();
	struct audit_params p;
	struct audit_image rec;
	struct audit *au = NULL;
	float x[3 * S * S];
	struct rng r;
	int cancelled, i, rnd = -1;

	ap.kind = ATTACK_BIM;
	ap.iters = 2;
	p = audit_params_default(&ap);
	p.noise_samples = 3;
	rng_seed(&r, 5);
	for (i = 0; i < 3 * S * S; i++)
		x[i] = (float)rng_uniform(&r);
	net_set_training(n, training, 11);
	if (audit_new(n, &p, &au, err) == ST_OK &&
	    audit_image(au, 0, x, 0, NULL, NULL, NULL, &rec, &cancelled, err) == ST_OK) {
		rnd = rec.random;
		audit_verdicts(au, &rec, 1, chk);
	}
	audit_free(au);
	net_set_training(n, 0, 0);
	return rnd;
}

int main(void)
{
	struct tap t = { 0 };
	struct audit_check chk[AUDIT_N_CHECKS];
	struct attack_params ap = attack_params_default();
	struct audit_params p;
	struct audit *au = NULL;
	char err[ERR_MAX] = "";
	struct net *n = small_net(err);
	int r;

	if (!tap_ok(&t, n != NULL, "a small model with dropout %s", err))
		return tap_done(&t);
	r = audit_random(n, 1, chk, err);
	tap_ok(&t, r == 1 && chk[AUDIT_UNSTABLE_PRED].verdict == AUDIT_FAIL,
	       "dropout left on: forwards differ (random %d), unstable predictions %s: %s", r,
	       audit_verdict_name(chk[AUDIT_UNSTABLE_PRED].verdict),
	       chk[AUDIT_UNSTABLE_PRED].figure_text);
	r = audit_random(n, 0, chk, err);
	tap_ok(&t, r == 0 && chk[AUDIT_UNSTABLE_PRED].verdict != AUDIT_FAIL,
	       "control: in inference mode the forwards agree (random %d, %s)", r,
	       audit_verdict_name(chk[AUDIT_UNSTABLE_PRED].verdict));

	p = audit_params_default(&ap);
	p.eps[0] = 4.0 / 255;
	p.eps[1] = 2.0 / 255;
	p.n_eps = 2;
	tap_ok(&t, audit_new(n, &p, &au, err) == ST_ERR_ARG && !au && strstr(err, "ascend"),
	       "descending budgets refused: %s", err);
	p = audit_params_default(&ap);
	p.random_passes = 1;
	tap_ok(&t, audit_new(n, &p, &au, err) == ST_ERR_ARG && !au,
	       "one forward cannot show randomness: refused: %s", err);
	p = audit_params_default(&ap);
	tap_ok(&t, audit_new(n, &p, &au, err) == ST_OK && au &&
		  audit_get_params(au)->n_eps == 4,
	       "control: the defaults are taken, with 4 budgets around eps");
	audit_free(au);
	net_free(n);
	return tap_done(&t);
}
