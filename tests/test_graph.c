/* test_graph.c - the graph engine: a small branching model with every node
 * kind (residual add, concat, pad, slice, grouped and depthwise convs,
 * stand-alone batch norm, constants, leaky ReLU, clip, sigmoid, tanh)
 * against central differences, batches against single images, no
 * allocation in the step, save and reload, buffer reuse, and the loader's
 * refusals of malformed graphs, each naming the node. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loss.h"
#include "modelfile.h"
#include "net.h"
#include "rng.h"
#include "gradcheck.h"
#include "tap.h"

#include "alloc_count.h"

#define IN 10
#define NCLS 5
#define NPIX (3 * IN * IN)

/* Every node kind. Shapes (C,H,W): input 3x10x10; stem 8x10x10; the
 * residual block's shortcut is option A (slice every 2nd pixel, pad 4 zero
 * channels each side) beside a stride-2 branch; then a grouped conv, a
 * depthwise conv, a stand-alone batch norm (after a ReLU: not foldable),
 * per-channel and scalar constants, the smooth activations, a concat of
 * two branches, pools, and the head. */
static const char graph_arch[] =
	"[{\"op\":\"sub\",\"name\":\"norm\",\"value\":0.25},"
	"{\"op\":\"conv2d\",\"name\":\"stem\",\"out\":8,\"kernel\":[3,3],\"stride\":[1,1],\"padding\":[1,1]},"
	"{\"op\":\"relu\",\"name\":\"stem_relu\"},"
	"{\"op\":\"conv2d\",\"name\":\"b1\",\"out\":16,\"kernel\":[3,3],\"stride\":[2,2],\"padding\":[1,1],\"bias\":false},"
	"{\"op\":\"batchnorm\",\"name\":\"b1bn\"},"
	"{\"op\":\"leaky_relu\",\"name\":\"b1act\",\"alpha\":0.1},"
	"{\"op\":\"slice\",\"name\":\"sc\",\"inputs\":[\"stem_relu\"],\"start\":[0,0],\"step\":[2,2]},"
	"{\"op\":\"pad\",\"name\":\"scpad\",\"channels\":[4,4]},"
	"{\"op\":\"add\",\"name\":\"res\",\"inputs\":[\"b1act\",\"scpad\"]},"
	"{\"op\":\"relu\",\"name\":\"res_relu\"},"
	"{\"op\":\"conv2d\",\"name\":\"grp\",\"out\":8,\"kernel\":[3,3],\"stride\":[1,1],\"padding\":[1,1],\"groups\":4},"
	"{\"op\":\"clip\",\"name\":\"relu6\",\"min\":0,\"max\":6},"
	"{\"op\":\"conv2d\",\"name\":\"dw\",\"out\":8,\"kernel\":[3,3],\"stride\":[1,1],\"padding\":[1,1],\"groups\":8},"
	"{\"op\":\"batchnorm\",\"name\":\"bn2\",\"inputs\":[\"relu6\"]},"
	"{\"op\":\"add\",\"name\":\"sum2\",\"inputs\":[\"dw\",\"bn2\"]},"
	"{\"op\":\"mul\",\"name\":\"scale\"},"
	"{\"op\":\"sigmoid\",\"name\":\"sig\"},"
	"{\"op\":\"tanh\",\"name\":\"th\",\"inputs\":[\"res_relu\"]},"
	"{\"op\":\"div\",\"name\":\"half\",\"value\":2},"
	"{\"op\":\"concat\",\"name\":\"cat\",\"inputs\":[\"sig\",\"half\",\"sig\"]},"
	"{\"op\":\"avgpool\",\"name\":\"ap\",\"kernel\":[2,2],\"stride\":[2,2],\"ceil_mode\":true,\"count_include_pad\":false},"
	"{\"op\":\"maxpool\",\"name\":\"mp\",\"kernel\":[3,3],\"stride\":[1,1],\"padding\":[1,1]},"
	"{\"op\":\"identity\",\"name\":\"id\"},"
	"{\"op\":\"gap\",\"name\":\"gap\"},"
	"{\"op\":\"flatten\",\"name\":\"flat\"},"
	"{\"op\":\"dense\",\"name\":\"fc\",\"out\":5}]";

struct spec {
	const char *name;
	int ndim;
	int64_t shape[4];
	float lo, hi;
};

static const struct spec graph_tensors[] = {
	{ "stem.weight", 4, { 8, 3, 3, 3 }, -0.5f, 0.5f },
	{ "stem.bias", 1, { 8 }, -0.1f, 0.2f },
	{ "b1.weight", 4, { 16, 8, 3, 3 }, -0.3f, 0.3f },
	{ "b1bn.weight", 1, { 16 }, 0.5f, 1.5f },
	{ "b1bn.bias", 1, { 16 }, -0.2f, 0.2f },
	{ "b1bn.running_mean", 1, { 16 }, -0.3f, 0.3f },
	{ "b1bn.running_var", 1, { 16 }, 0.5f, 2.0f },
	{ "grp.weight", 4, { 8, 4, 3, 3 }, -0.4f, 0.4f },
	{ "grp.bias", 1, { 8 }, -0.1f, 0.3f },
	{ "dw.weight", 4, { 8, 1, 3, 3 }, -0.6f, 0.6f },
	{ "dw.bias", 1, { 8 }, -0.1f, 0.1f },
	{ "bn2.weight", 1, { 8 }, 0.5f, 1.5f },
	{ "bn2.bias", 1, { 8 }, -0.2f, 0.2f },
	{ "bn2.running_mean", 1, { 8 }, -0.3f, 0.3f },
	{ "bn2.running_var", 1, { 8 }, 0.5f, 2.0f },
	{ "scale.value", 1, { 8 }, 0.5f, 2.0f },
	{ "fc.weight", 2, { 5, 32 }, -0.8f, 0.8f },
	{ "fc.bias", 1, { 5 }, -0.1f, 0.1f },
};
#define N_TENSORS (int)(sizeof graph_tensors / sizeof graph_tensors[0])

/* Encode a model from an architecture and the tensors above (all of them,
 * or none when with_tensors is 0). */
static struct modelfile *model(const char *arch, int with_tensors, char *err)
{
	struct mf_out_tensor t[N_TENSORS];
	float *data[N_TENSORS];
	const char *keys[] = { "advex.format", "advex.arch", "advex.input",
			       "advex.mean", "advex.std" };
	const char *vals[] = { "2", arch, "[3, 10, 10]", "[0.4, 0.5, 0.6]",
			       "[0.5, 0.6, 0.7]" };
	struct modelfile *mf = NULL;
	struct rng r;
	void *buf;
	size_t len;
	int i, n = with_tensors ? N_TENSORS : 0;

	rng_seed(&r, 17);
	for (i = 0; i < n; i++) {
		const struct spec *s = &graph_tensors[i];
		size_t cnt = 1, k;
		int d;

		for (d = 0; d < s->ndim; d++)
			cnt *= (size_t)s->shape[d];
		data[i] = malloc(cnt * sizeof(float));
		for (k = 0; k < cnt; k++)
			data[i][k] = s->lo + (s->hi - s->lo) * (float)rng_uniform(&r);
		t[i].name = s->name;
		t[i].ndim = s->ndim;
		memcpy(t[i].shape, s->shape, sizeof s->shape);
		t[i].data = data[i];
	}
	if (modelfile_encode(t, n, keys, vals, 5, &buf, &len, err) == ST_OK)
		modelfile_open_buffer(buf, len, "graph.safetensors", &mf, err);
	for (i = 0; i < n; i++)
		free(data[i]);
	return mf;
}

static struct net *graph_net(int batch, int grads, char *err)
{
	struct modelfile *mf = model(graph_arch, 1, err);
	struct net *n = NULL;

	if (mf && net_create(mf, batch, grads, 0, &n, err) != ST_OK)
		n = NULL;
	modelfile_close(mf);
	return n;
}

static void fill(float *x, int n, unsigned long long seed)
{
	struct rng r;
	int i;

	rng_seed(&r, seed);
	for (i = 0; i < n; i++)
		x[i] = (float)rng_uniform(&r);
}

/* Central differences in float: h = 1e-3 keeps rounding (1e-7/1e-3) and
 * curvature (h^2) well under the 1e-2 tolerance, away from kinks. */
static void test_gradients(struct tap *t, struct net *n)
{
	float x[NPIX], g[NPIX], dz[NCLS];
	double ga[NPIX], gn[NPIX], pa[64], pn[64];
	const double h = 1e-3;
	size_t np, k, step;
	float *p, *pg;
	int i, m, target = 2;

	fill(x, NPIX, 5);
	net_zero_grads(n);
	loss_ce(NCLS, net_forward(n, x, 1), target, NULL, dz);
	net_backward(n, dz, g);
	for (i = 0; i < NPIX; i++) {
		gn[i] = gradcheck_central(n, &x[i], h, x, NCLS, target);
		ga[i] = g[i];
	}
	tap_ok(t, gradcheck_rel_l2(ga, gn, NPIX) < 1e-2,
	       "graph (add, concat, pad, slice, groups, depthwise, batchnorm, consts, leaky, clip, sigmoid, tanh): "
	       "pixel gradient vs central differences rel L2 err %.2e < 1e-2",
	       gradcheck_rel_l2(ga, gn, NPIX));

	/* parameters: 64 spread over the block, every parameterised node */
	p = net_params(n, &np);
	pg = net_param_grads(n, NULL);
	step = np / 64 + 1;
	for (k = 3, m = 0; k < np && m < 64; k += step, m++) {
		pn[m] = gradcheck_central(n, &p[k], h, x, NCLS, target);
		pa[m] = pg[k];
	}
	tap_ok(t, gradcheck_rel_l2(pa, pn, m) < 1e-2,
	       "parameter gradients (%d sampled of %zu) vs central differences rel L2 err %.2e < 1e-2",
	       m, np, gradcheck_rel_l2(pa, pn, m));
}

/* Per-node norms: a node with two inputs reports the norm over both. */
static void test_norms(struct tap *t, struct net *n)
{
	const struct net_info *in = net_get_info(n);
	const double *nr = net_grad_norms(n);
	struct net_layer_info li, a, b;
	int i, res = -1, cat = -1, k;

	for (i = 0; i < in->n_layers; i++) {
		net_layer(n, i, &li);
		if (!strcmp(li.id, "res"))
			res = i;
		if (!strcmp(li.id, "cat"))
			cat = i;
	}
	if (!tap_ok(t, res > 0 && cat > 0, "residual add and concat found by id"))
		return;
	net_layer(n, res, &li);
	net_layer(n, li.inputs[0], &a);
	net_layer(n, li.inputs[1], &b);
	/* the add's inputs are b1act (read by nothing else) and scpad, whose
	 * own input norms are those of their consumers' inputs */
	{
		double na = 0;

		for (k = 0; k < in->n_layers; k++) {
			struct net_layer_info c;

			net_layer(n, k, &c);
			if (!strcmp(c.id, "res_relu"))
				na = nr[k];	/* gradient at res's output */
		}
		tap_ok(t, li.n_inputs == 2 && !strcmp(a.id, "b1act") &&
			  !strcmp(b.id, "scpad") &&
			  fabs(nr[res] - sqrt(2.0) * na) <= 1e-6 * na,
		       "add: norm at its inputs (%.6g) = sqrt(2) x the norm at its output (%.6g): each input gets the whole gradient",
		       nr[res], na);
	}
	net_layer(n, cat, &li);
	tap_ok(t, li.n_inputs == 3 && li.inputs[0] == li.inputs[2] &&
		  nr[cat] > 0.0,
	       "concat lists its 3 inputs, the repeated one once in its norm (%.6g)",
	       nr[cat]);
}

static void test_batch(struct tap *t, struct net *n)
{
	static float x[3 * NPIX], g[3 * NPIX], g1[NPIX];
	float z1[3][NCLS], dz[3 * NCLS];
	const float *z;
	double maxd = 0.0, maxg = 0.0;
	long before;
	int i, b;

	fill(x, 3 * NPIX, 9);
	for (b = 0; b < 3; b++)
		memcpy(z1[b], net_forward(n, x + b * NPIX, 1), sizeof z1[b]);
	before = alloc_count;
	z = net_forward(n, x, 3);
	for (b = 0; b < 3; b++)
		loss_ce(NCLS, z + b * NCLS, b, NULL, dz + b * NCLS);
	net_backward(n, dz, g);
	tap_ok(t, alloc_count == before,
	       "a batch forward + backward through the graph allocates nothing (%ld allocations)",
	       alloc_count - before);
	for (b = 0; b < 3; b++)
		for (i = 0; i < NCLS; i++)
			maxd = fmax(maxd, fabs(z[b * NCLS + i] - z1[b][i]));
	for (b = 0; b < 3; b++) {
		float d1[NCLS];

		loss_ce(NCLS, net_forward(n, x + b * NPIX, 1), b, NULL, d1);
		net_backward(n, d1, g1);
		for (i = 0; i < NPIX; i++)
			maxg = fmax(maxg, fabs(g[b * NPIX + i] - g1[i]));
	}
	tap_ok(t, maxd < 1e-5 && maxg < 1e-5,
	       "batch of 3 = three single images: logits %.1e, gradients %.1e",
	       maxd, maxg);
}

/* Save, reload: the graph (inputs by name) and every tensor survive. */
static void test_save(struct tap *t, struct net *n)
{
	char err[ERR_MAX] = "", path[] = "/tmp/advex-test-graph-XXXXXX";
	struct modelfile *mf = NULL;
	struct net *m = NULL;
	float x[NPIX], z[NCLS];
	double maxd = 0.0;
	int fd = mkstemp(path), i, ok;

	if (fd >= 0)
		close(fd);
	fill(x, NPIX, 3);
	memcpy(z, net_forward(n, x, 1), sizeof z);
	ok = fd >= 0 && net_save(n, path, NULL, NULL, 0, err) == ST_OK &&
	     modelfile_open(path, &mf, err) == ST_OK &&
	     net_create(mf, 1, 0, 0, &m, err) == ST_OK;
	if (ok) {
		const float *z2 = net_forward(m, x, 1);

		for (i = 0; i < NCLS; i++)
			maxd = fmax(maxd, fabs(z2[i] - z[i]));
		ok = !strcmp(modelfile_meta(mf, "advex.format"), "2") &&
		     net_get_info(m)->n_layers == net_get_info(n)->n_layers;
	}
	tap_ok(t, ok && maxd < 1e-6,
	       "saved as format 2 and reloaded: same %d nodes, logits within %.1e %s",
	       m ? net_get_info(m)->n_layers : 0, maxd, err);
	net_free(m);
	modelfile_close(mf);
	unlink(path);
}

/* A long chain of constant ops reads nothing in backward: liveness lets
 * three buffers serve forty nodes. */
static void test_liveness(struct tap *t)
{
	char arch[8192], err[ERR_MAX] = "";
	struct modelfile *mf;
	struct net *n = NULL;
	size_t len = 0;
	int i;

	len += (size_t)snprintf(arch + len, sizeof arch - len, "[");
	for (i = 0; i < 40; i++)
		len += (size_t)snprintf(arch + len, sizeof arch - len,
					"{\"op\":\"%s\",\"value\":1.5},",
					i % 2 ? "mul" : "add");
	snprintf(arch + len, sizeof arch - len, "{\"op\":\"gap\"},{\"op\":\"flatten\"}]");
	mf = model(arch, 0, err);
	if (mf && net_create(mf, 2, 0, 0, &n, err) != ST_OK)
		n = NULL;
	modelfile_close(mf);
	tap_ok(t, n && net_get_info(n)->n_buffers <= 3,
	       "40 constant nodes in a chain run in %d activation buffers (<= 3) %s",
	       n ? net_get_info(n)->n_buffers : -1, err);
	net_free(n);
}

static void expect_error(struct tap *t, const char *arch, const char *what,
			 const char *needle)
{
	char err[ERR_MAX] = "";
	struct modelfile *mf = model(arch, 0, err);
	struct net *n = NULL;
	enum status st = ST_ERR_ARG;

	if (mf)
		st = net_create(mf, 1, 0, 0, &n, err);
	tap_ok(t, mf && st != ST_OK && !n && strstr(err, "graph.safetensors") &&
		  strstr(err, needle) && !strchr(err, '\n'),
	       "%s refused in one line: %s", what, err);
	net_free(n);
	modelfile_close(mf);
}

static void test_errors(struct tap *t)
{
	expect_error(t, "[{\"op\":\"relu\",\"name\":\"a\",\"inputs\":[\"b\"]},"
		     "{\"op\":\"relu\",\"name\":\"b\",\"inputs\":[\"a\"]},"
		     "{\"op\":\"gap\"},{\"op\":\"flatten\"}]",
		     "a cycle", "node 'a' (relu): lies on a cycle");
	expect_error(t, "[{\"op\":\"relu\",\"name\":\"a\",\"inputs\":[\"nowhere\"]},"
		     "{\"op\":\"gap\"},{\"op\":\"flatten\"}]",
		     "a dangling input", "node 'a' (relu): input 'nowhere' names no node");
	expect_error(t, "[{\"op\":\"maxpool\",\"name\":\"p\",\"kernel\":2},"
		     "{\"op\":\"add\",\"name\":\"s\",\"inputs\":[\"p\",\"input\"]},"
		     "{\"op\":\"gap\"},{\"op\":\"flatten\"}]",
		     "an add of two shapes", "node 's' (add): input 1 is 3x10x10 but input 0 is 3x5x5");
	expect_error(t, "[{\"op\":\"maxpool\",\"name\":\"p\",\"kernel\":2},"
		     "{\"op\":\"concat\",\"name\":\"c\",\"inputs\":[\"input\",\"p\"]},"
		     "{\"op\":\"gap\"},{\"op\":\"flatten\"}]",
		     "a concat of two heights", "node 'c' (concat): input 1 is 3x5x5 but input 0 is 3x10x10");
	expect_error(t, "[{\"op\":\"relu\",\"name\":\"a\"},{\"op\":\"relu\",\"name\":\"a\"},"
		     "{\"op\":\"gap\"},{\"op\":\"flatten\"}]",
		     "two nodes with one name", "node 'a' (relu): another node (0) has the same name");
	expect_error(t, "[{\"op\":\"relu\",\"name\":\"a\"},"
		     "{\"op\":\"relu\",\"name\":\"b\",\"inputs\":[\"input\"]},"
		     "{\"op\":\"gap\"},{\"op\":\"flatten\"}]",
		     "a second output", "node 'a' (relu): its output is used by no node");
	expect_error(t, "[{\"op\":\"conv2d\",\"name\":\"c\",\"out\":4,\"kernel\":3,\"groups\":2},"
		     "{\"op\":\"gap\"},{\"op\":\"flatten\"}]",
		     "groups that do not divide the channels", "node 'c' (conv2d): \"groups\" must divide");
	expect_error(t, "[{\"op\":\"conv2d\",\"name\":\"c\",\"out\":4,\"kernel\":3,\"padding\":1073741776},"
		     "{\"op\":\"gap\"},{\"op\":\"flatten\"}]",
		     "a padding of 2^30", "node 'c' (conv2d): missing or invalid fields");
	expect_error(t, "[{\"op\":\"conv2d\",\"name\":\"c\",\"out\":4,\"kernel\":4294967297},"
		     "{\"op\":\"gap\"},{\"op\":\"flatten\"}]",
		     "a kernel of 2^32 + 1", "node 'c' (conv2d): missing or invalid fields");
	expect_error(t, "[{\"op\":\"relu\",\"name\":\"a\",\"inputs\":\"b\"},"
		     "{\"op\":\"gap\"},{\"op\":\"flatten\"}]",
		     "inputs that are not a list", "\"inputs\" must be a list");
	expect_error(t, "[{\"op\":\"relu\",\"name\":\"a\",\"inputs\":[\"input\"]},"
		     "{\"op\":\"softmax\"},{\"op\":\"gap\"},{\"op\":\"flatten\"}]",
		     "a softmax of an image", "(softmax): missing or invalid fields");
}

/* A file listed out of order loads as its sorted graph. */
static void test_order(struct tap *t)
{
	char err[ERR_MAX] = "";
	struct modelfile *mf = model(
		"[{\"op\":\"flatten\",\"name\":\"f\",\"inputs\":[\"g\"]},"
		"{\"op\":\"gap\",\"name\":\"g\",\"inputs\":[\"r\"]},"
		"{\"op\":\"relu\",\"name\":\"r\",\"inputs\":[\"input\"]}]", 0, err);
	struct net *n = NULL;
	struct net_layer_info li;
	int ok = 0;

	if (mf && net_create(mf, 1, 0, 0, &n, err) == ST_OK) {
		net_layer(n, 0, &li);
		ok = !strcmp(li.id, "r");
		net_layer(n, 2, &li);
		ok = ok && !strcmp(li.id, "f") && li.inputs[0] == 1;
	}
	tap_ok(t, ok, "nodes listed backwards are sorted: r, g, f %s", err);
	net_free(n);
	modelfile_close(mf);
}

int main(void)
{
	struct tap t = { 0 };
	char err[ERR_MAX] = "";
	struct net *n = graph_net(3, 1, err);

	if (!tap_ok(&t, n != NULL, "graph net built %s", err))
		return tap_done(&t);
	tap_ok(&t, net_get_info(n)->n_layers == 25 && net_get_info(n)->n_classes == NCLS,
	       "25 nodes after folding one batch norm (%d), %d classes", net_get_info(n)->n_layers,
	       net_get_info(n)->n_classes);
	test_gradients(&t, n);
	test_norms(&t, n);
	test_batch(&t, n);
	test_save(&t, n);
	net_free(n);
	test_liveness(&t);
	test_order(&t);
	test_errors(&t);
	return tap_done(&t);
}
