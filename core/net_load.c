/* net_load.c - building a network from a model file (net.h, net_impl.h).
 *
 * advex.arch is a list of node specs (docs/model-format.md). Loading:
 *   1. read each spec's op, name and inputs (names resolved through a
 *      sorted index, so a 100,000-node file loads in n log n);
 *   2. sort topologically (Kahn), refusing cycles;
 *   3. fold a batch norm into the conv/dense it alone consumes;
 *   4. plan every node's shape and parameter count, checking every number
 *      in 64-bit arithmetic before it sizes anything;
 *   5. fuse a ReLU into the conv it alone consumes;
 *   6. find every tensor with its shape (and none left over), reading
 *      nothing, so a wrong file fails before anything large is allocated;
 *   7. plan the activation buffers by liveness and size the gradient pool;
 *   8. allocate once, read the weights, fold the batch norms.
 */
#define _POSIX_C_SOURCE 200809L
#include "net.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conv.h"
#include "dense.h"
#include "net_impl.h"
#include "pool.h"
#include "workers.h"

/* Limits on what a file may ask for (docs/model-format.md "Limits"). */
#define LIM_DIM 65536		/* channels, height, width */
#define LIM_KERNEL 64
#define LIM_STRIDE 64
#define LIM_PAD 64
#define LIM_ELEMS ((int64_t)1 << 31)	/* elements of one image's tensor */

struct spec {
	json_t *j;
	const char *op;
	const char *name;	/* NULL when absent */
	char id[136];
	int n_in;
	int in[NET_MAX_INPUTS];	/* spec indices, NET_INPUT for the image */
	int n_cons;		/* consumers among the specs */
	int folded;		/* a batchnorm folded into in[0] */
	int gets_bn;		/* a conv/dense a batchnorm folds into */
	int node;		/* node index, -1 when folded */
};

struct loader {
	const struct modelfile *mf;
	struct net *n;
	char *used;		/* one flag per tensor: named by the arch */
	char *err;
	struct spec *sp;
	int ns;
	enum status st;		/* what went wrong */
	int *topo;		/* spec indices in topological order */
	int dry;		/* 1: find and check the tensors, read nothing */
	int threads;		/* the net's worker threads */
};

/* ---- JSON helpers ------------------------------------------------------- */

/* Parse a metadata value that is itself JSON. */
static json_t *meta_json(const struct modelfile *mf, const char *key,
			 int required, char *err)
{
	const char *s = modelfile_meta(mf, key);
	json_error_t je;
	json_t *j;

	if (!s) {
		if (required)
			status_set(err, ST_ERR_FORMAT,
				   "%s: metadata '%s' missing (not an advex model file? see advex-import)",
				   modelfile_path(mf), key);
		return NULL;
	}
	j = json_loads(s, JSON_DECODE_ANY, &je);
	if (!j)
		status_set(err, ST_ERR_FORMAT, "%s: metadata '%s' is not JSON: %s",
			   modelfile_path(mf), key, je.text);
	return j;
}

static int in_range(json_t *v, int64_t lo, int64_t hi, int *out)
{
	json_int_t x;

	if (!json_is_integer(v))
		return -1;
	x = json_integer_value(v);
	if (x < lo || x > hi)
		return -1;
	*out = (int)x;
	return 0;
}

/* An int or a pair [a, b], each within [lo, hi]; def when absent. */
static int json_pair(json_t *o, const char *key, int def, int64_t lo,
		     int64_t hi, int *a, int *b)
{
	json_t *v = json_object_get(o, key);

	if (!v) {
		*a = *b = def;
		return 0;
	}
	if (json_is_integer(v))
		return in_range(v, lo, hi, a) ? -1 : (*b = *a, 0);
	if (json_is_array(v) && json_array_size(v) == 2)
		return in_range(json_array_get(v, 0), lo, hi, a) ||
		       in_range(json_array_get(v, 1), lo, hi, b) ? -1 : 0;
	return -1;
}

/* A list of exactly n ints within [lo, hi]; zeros when absent. */
static int json_ints(json_t *o, const char *key, int n, int64_t lo,
		     int64_t hi, int *out)
{
	json_t *v = json_object_get(o, key);
	int i;

	if (!v) {
		memset(out, 0, sizeof *out * (size_t)n);
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) != (size_t)n)
		return -1;
	for (i = 0; i < n; i++)
		if (in_range(json_array_get(v, (size_t)i), lo, hi, &out[i]))
			return -1;
	return 0;
}

static int json_bool(json_t *o, const char *key, int def)
{
	json_t *v = json_object_get(o, key);

	return v ? json_is_true(v) : def;
}

/* The largest advex.scale, |mean|, std and preprocessed value accepted: a
 * 16-bit pixel scale fits with room to spare; anything near float's range
 * (1e39 -> inf) would turn every activation into inf or NaN. */
#define NET_PREPROC_MAX 1e6

/* advex.scale: a whole-string decimal in (0, NET_PREPROC_MAX]. */
static int preproc_number(const char *s, float *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno == ERANGE || !((float)v > 0.0f) ||
	    v > NET_PREPROC_MAX)
		return -1;
	*out = (float)v;
	return 0;
}

static int json_num(json_t *o, const char *key, double def, double *out)
{
	json_t *v = json_object_get(o, key);

	if (!v) {
		*out = def;
		return 0;
	}
	if (!json_is_number(v))
		return -1;
	*out = json_number_value(v);
	return isfinite(*out) ? 0 : -1;
}

/* ---- 1. specs and names --------------------------------------------------- */

/* qsort has no context argument in C99: sort an array of (id, index). */
struct idref {
	const char *id;
	int idx;
};

static int cmp_idref(const void *a, const void *b)
{
	const struct idref *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static int fail_spec(struct loader *ld, int k, enum status st, const char *what)
{
	const struct spec *s = &ld->sp[k];

	ld->st = status_set(ld->err, st, "%s: advex.arch node '%s' (%s): %s",
			    modelfile_path(ld->mf), s->id, s->op, what);
	return -1;
}

static int find_id(const struct idref *ix, int n, const char *id)
{
	int lo = 0, hi = n - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2, c = strcmp(ix[mid].id, id);

		if (!c)
			return ix[mid].idx;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -2;
}

static int read_specs(struct loader *ld, json_t *arch)
{
	struct idref *ix;
	int k, i, rc = -1;
	char msg[300];

	for (k = 0; k < ld->ns; k++) {
		struct spec *s = &ld->sp[k];
		json_t *nm;

		s->j = json_array_get(arch, (size_t)k);
		s->op = json_string_value(json_object_get(s->j, "op"));
		nm = json_object_get(s->j, "name");
		s->name = json_string_value(nm);
		s->node = -1;
		if (!s->op) {
			status_set(ld->err, ST_ERR_FORMAT,
				   "%s: advex.arch node %d has no \"op\"",
				   modelfile_path(ld->mf), k);
			return -1;
		}
		if ((nm && !s->name) || (s->name && (!s->name[0] ||
		     strlen(s->name) > 127 || !strcmp(s->name, "input")))) {
			status_set(ld->err, ST_ERR_FORMAT,
				   "%s: advex.arch node %d (%s): \"name\" must be a string of 1..127 bytes other than \"input\"",
				   modelfile_path(ld->mf), k, s->op);
			return -1;
		}
		if (s->name)
			snprintf(s->id, sizeof s->id, "%s", s->name);
		else
			snprintf(s->id, sizeof s->id, "#%d", k);
	}
	ix = malloc(sizeof *ix * (size_t)ld->ns);
	if (!ix)
		return ld->st = status_set(ld->err, ST_ERR_NOMEM, "%s: out of memory",
					   modelfile_path(ld->mf)), -1;
	for (k = 0; k < ld->ns; k++) {
		ix[k].id = ld->sp[k].id;
		ix[k].idx = k;
	}
	qsort(ix, (size_t)ld->ns, sizeof *ix, cmp_idref);
	for (k = 1; k < ld->ns; k++)
		if (!strcmp(ix[k].id, ix[k - 1].id)) {
			snprintf(msg, sizeof msg, "another node (%d) has the same name",
				 ix[k - 1].idx);
			fail_spec(ld, ix[k].idx, ST_ERR_FORMAT, msg);
			goto out;
		}
	for (k = 0; k < ld->ns; k++) {
		struct spec *s = &ld->sp[k];
		json_t *in = json_object_get(s->j, "inputs");

		if (!in) {
			s->n_in = 1;
			s->in[0] = k ? k - 1 : NET_INPUT;
			continue;
		}
		if (!json_is_array(in) || !json_array_size(in) ||
		    json_array_size(in) > NET_MAX_INPUTS) {
			fail_spec(ld, k, ST_ERR_FORMAT,
				  "\"inputs\" must be a list of 1..64 node names");
			goto out;
		}
		s->n_in = (int)json_array_size(in);
		for (i = 0; i < s->n_in; i++) {
			const char *id = json_string_value(json_array_get(in, (size_t)i));
			int t = !id ? -2 : !strcmp(id, "input") ? NET_INPUT :
				find_id(ix, ld->ns, id);

			if (t == -2) {
				snprintf(msg, sizeof msg, "input '%.100s' names no node",
					 id ? id : "(not a string)");
				fail_spec(ld, k, ST_ERR_FORMAT, msg);
				goto out;
			}
			if (t == k) {
				fail_spec(ld, k, ST_ERR_FORMAT,
					  "takes its own output as input (a cycle)");
				goto out;
			}
			s->in[i] = t;
		}
	}
	for (k = 0; k < ld->ns; k++)
		for (i = 0; i < ld->sp[k].n_in; i++)
			if (ld->sp[k].in[i] >= 0)
				ld->sp[ld->sp[k].in[i]].n_cons++;
	rc = 0;
out:
	free(ix);
	return rc;
}

/* ---- 2. topological order ------------------------------------------------ */

/* Kahn's algorithm; a file already in order keeps its order (the queue is
 * taken in index order and every spec's inputs come before it). */
static int in_order(const struct loader *ld)
{
	int k, i;

	for (k = 0; k < ld->ns; k++)
		for (i = 0; i < ld->sp[k].n_in; i++)
			if (ld->sp[k].in[i] >= k)
				return 0;
	return 1;
}

static int sort_specs(struct loader *ld)
{
	int ns = ld->ns, *deg = NULL, *cons_start = NULL, *cons = NULL;
	int head = 0, tail = 0, k, i, rc = -1;

	ld->topo = malloc(sizeof *ld->topo * (size_t)ns);
	if (!ld->topo)
		return ld->st = status_set(ld->err, ST_ERR_NOMEM, "%s: out of memory",
					   modelfile_path(ld->mf)), -1;
	/* a file in order (every input listed before its reader) keeps its
	 * order; Kahn's queue would interleave parallel branches */
	if (in_order(ld)) {
		for (k = 0; k < ns; k++)
			ld->topo[k] = k;
		return 0;
	}
	/* consumer lists in one array (CSR); deg[k]: inputs not yet placed */
	deg = calloc((size_t)ns, sizeof *deg);
	cons_start = calloc((size_t)ns + 1, sizeof *cons_start);
	for (k = 0; cons_start && k < ns; k++)
		cons_start[k + 1] = cons_start[k] + ld->sp[k].n_cons;
	if (cons_start)
		cons = malloc(sizeof *cons * ((size_t)cons_start[ns] + 1));
	if (!deg || !cons_start || !cons) {
		ld->st = status_set(ld->err, ST_ERR_NOMEM, "%s: out of memory",
				    modelfile_path(ld->mf));
		goto out;
	}
	for (k = 0; k < ns; k++)
		deg[k] = cons_start[k];		/* as a fill cursor first */
	for (k = 0; k < ns; k++)
		for (i = 0; i < ld->sp[k].n_in; i++)
			if (ld->sp[k].in[i] >= 0)
				cons[deg[ld->sp[k].in[i]]++] = k;
	for (k = 0; k < ns; k++) {
		deg[k] = 0;
		for (i = 0; i < ld->sp[k].n_in; i++)
			deg[k] += ld->sp[k].in[i] >= 0;
	}
	for (k = 0; k < ns; k++)
		if (!deg[k])
			ld->topo[tail++] = k;
	while (head < tail) {
		int s = ld->topo[head++];

		for (i = cons_start[s]; i < cons_start[s + 1]; i++)
			if (--deg[cons[i]] == 0)
				ld->topo[tail++] = cons[i];
	}
	if (tail < ns) {
		for (k = 0; k < ns && !deg[k]; k++)
			;
		fail_spec(ld, k, ST_ERR_FORMAT,
			  "lies on a cycle of inputs (the graph must be acyclic)");
		goto out;
	}
	rc = 0;
out:
	free(deg);
	free(cons_start);
	free(cons);
	return rc;
}

/* ---- 3. batch-norm folding ------------------------------------------------- */

static int is_param_op(const char *op)
{
	return !strcmp(op, "conv2d") || !strcmp(op, "dense");
}

/* A batchnorm folds into the conv/dense it alone consumes, when nothing
 * else reads that conv's output. Its consumers then read the conv. */
static void mark_folds(struct loader *ld)
{
	int k, i;

	for (k = 0; k < ld->ns; k++) {
		struct spec *s = &ld->sp[k];
		int t = s->in[0];

		s->folded = !strcmp(s->op, "batchnorm") && s->n_in == 1 &&
			    t >= 0 && is_param_op(ld->sp[t].op) &&
			    ld->sp[t].n_cons == 1;
		if (s->folded)
			ld->sp[t].gets_bn = 1;
	}
	/* consumers of a folded batchnorm read its conv (a chain of folded
	 * specs cannot occur: a folded batchnorm is not a conv) */
	for (k = 0; k < ld->ns; k++)
		for (i = 0; i < ld->sp[k].n_in; i++) {
			int t = ld->sp[k].in[i];

			if (t >= 0 && ld->sp[t].folded)
				ld->sp[k].in[i] = ld->sp[t].in[0];
		}
}

/* ---- 4. planning nodes ------------------------------------------------------ */

/* Find NAME.suffix with exactly the given shape; mark it used. */
static const struct mf_tensor *need_tensor(struct loader *ld, const char *id,
					   const char *name, const char *suffix,
					   int ndim, const int64_t *shape)
{
	char full[192], want[128] = "", got[128] = "";
	const struct mf_tensor *t;
	int i, same;

	snprintf(full, sizeof full, "%s.%s", name, suffix);
	t = modelfile_find(ld->mf, full);
	if (!t) {
		ld->st = status_set(ld->err, ST_ERR_FORMAT,
			   "%s: tensor '%s' missing (node '%s' needs it)",
			   modelfile_path(ld->mf), full, id);
		return NULL;
	}
	same = t->ndim == ndim;
	for (i = 0; same && i < ndim; i++)
		same = t->shape[i] == shape[i];
	if (!same) {
		for (i = 0; i < ndim; i++)
			snprintf(want + strlen(want), sizeof want - strlen(want),
				 "%s%lld", i ? "," : "", (long long)shape[i]);
		for (i = 0; i < t->ndim; i++)
			snprintf(got + strlen(got), sizeof got - strlen(got),
				 "%s%lld", i ? "," : "", (long long)t->shape[i]);
		ld->st = status_set(ld->err, ST_ERR_SHAPE,
			   "%s: tensor '%s' has shape [%s] but node '%s' needs [%s]",
			   modelfile_path(ld->mf), full, got, id, want);
		return NULL;
	}
	ld->used[modelfile_index(ld->mf, t)] = 1;
	return t;
}

struct shape {
	int c, h, w, flat;
};

static struct shape tensor_shape(const struct net *n, int t)
{
	struct shape s;

	if (t < 0) {
		s.c = n->info.in_c;
		s.h = n->info.in_h;
		s.w = n->info.in_w;
		s.flat = 0;
	} else {
		s.c = n->nodes[t].c;
		s.h = n->nodes[t].h;
		s.w = n->nodes[t].w;
		s.flat = n->nodes[t].flat;
	}
	return s;
}

static int plan_conv(struct loader *ld, struct spec *sp, struct node *l,
		     struct shape x)
{
	struct conv_shape *s = &l->conv;
	int out, g;

	if (!sp->name || x.flat ||
	    in_range(json_object_get(sp->j, "out"), 1, LIM_DIM, &out) ||
	    json_pair(sp->j, "kernel", 0, 1, LIM_KERNEL, &s->kh, &s->kw) ||
	    json_pair(sp->j, "stride", 1, 1, LIM_STRIDE, &s->sh, &s->sw) ||
	    json_pair(sp->j, "padding", 0, 0, LIM_PAD, &s->ph, &s->pw) ||
	    json_pair(sp->j, "groups", 1, 1, LIM_DIM, &g, &g))
		return -1;
	if (x.c % g || out % g)
		return fail_spec(ld, (int)(sp - ld->sp), ST_ERR_FORMAT,
				 "\"groups\" must divide the input and output channels") - 1;
	l->groups = g;
	s->c = x.c / g;
	s->h = x.h;
	s->w = x.w;
	s->k = out / g;
	if (conv_shape_init(s))
		return fail_spec(ld, (int)(sp - ld->sp), ST_ERR_SHAPE,
				 "the kernel does not fit the padded input") - 1;
	l->c = out;
	l->h = s->oh;
	l->w = s->ow;
	l->nw = (size_t)out * s->c * s->kh * s->kw;
	l->nb = json_bool(sp->j, "bias", 1) ? (size_t)out : 0;
	if (g == 1)
		snprintf(l->kind, sizeof l->kind, "conv2d %dx%d/%d p%d", s->kh,
			 s->kw, s->sh, s->ph);
	else
		snprintf(l->kind, sizeof l->kind, "conv2d %dx%d/%d p%d g%d",
			 s->kh, s->kw, s->sh, s->ph, g);
	return 0;
}

static int plan_pool(struct spec *sp, struct node *l, struct shape x)
{
	struct pool_shape *s = &l->pool;
	int a, b;

	s->c = x.c;
	s->h = x.h;
	s->w = x.w;
	s->ceil_mode = json_bool(sp->j, "ceil_mode", 0);
	s->count_include_pad = json_bool(sp->j, "count_include_pad", 1);
	if (x.flat ||
	    json_pair(sp->j, "kernel", 0, 1, LIM_KERNEL, &s->kh, &s->kw) ||
	    json_pair(sp->j, "stride", 0, 0, LIM_STRIDE, &a, &b) ||
	    json_pair(sp->j, "padding", 0, 0, LIM_PAD, &s->ph, &s->pw))
		return -1;
	/* PyTorch: the stride defaults to the kernel */
	s->sh = a ? a : s->kh;
	s->sw = b ? b : s->kw;
	if (pool_shape_init(s))
		return -1;
	l->h = s->oh;
	l->w = s->ow;
	snprintf(l->kind, sizeof l->kind, "%s %dx%d/%d", sp->op, s->kh, s->kw,
		 s->sh);
	return 0;
}

static int plan_pad(struct spec *sp, struct node *l, struct shape x)
{
	struct ops_pad *p = &l->pad;
	int pads[4], ch[2];
	double v;

	if (x.flat || json_ints(sp->j, "pads", 4, 0, LIM_DIM, pads) ||
	    json_ints(sp->j, "channels", 2, 0, LIM_DIM, ch) ||
	    json_num(sp->j, "value", 0.0, &v))
		return -1;
	p->c = x.c;
	p->h = x.h;
	p->w = x.w;
	p->top = pads[0];
	p->left = pads[1];
	p->bottom = pads[2];
	p->right = pads[3];
	p->cb = ch[0];
	p->ca = ch[1];
	p->value = (float)v;
	l->c = x.c + ch[0] + ch[1];
	l->h = x.h + pads[0] + pads[2];
	l->w = x.w + pads[1] + pads[3];
	snprintf(l->kind, sizeof l->kind, "pad %d,%d,%d,%d c%d,%d", pads[0],
		 pads[1], pads[2], pads[3], ch[0], ch[1]);
	return 0;
}

/* Python slice semantics for a non-negative start, end clamped, step >= 1:
 * count = ceil((end - start) / step), 0 refused. */
static int slice_dim(json_t *o, int axis, int dim, int *start, int *step,
		     int *count)
{
	json_t *st = json_object_get(o, "start"), *en = json_object_get(o, "end");
	json_t *sp = json_object_get(o, "step");
	int a = 0, e = dim, s = 1;

	if ((st && in_range(json_array_get(st, (size_t)axis), 0, dim - 1, &a)) ||
	    (en && in_range(json_array_get(en, (size_t)axis), 1, INT32_MAX, &e)) ||
	    (sp && in_range(json_array_get(sp, (size_t)axis), 1, LIM_DIM, &s)))
		return -1;
	if (e > dim)
		e = dim;
	if (e <= a)
		return -1;
	*start = a;
	*step = s;
	*count = (e - a + s - 1) / s;
	return 0;
}

static int plan_slice(struct spec *sp, struct node *l, struct shape x)
{
	struct ops_slice *s = &l->slice;
	json_t *ch = json_object_get(sp->j, "channels");
	int c0 = 0, c1 = x.c;

	if (x.flat)
		return -1;
	if (ch && (!json_is_array(ch) || json_array_size(ch) != 2 ||
		   in_range(json_array_get(ch, 0), 0, x.c - 1, &c0) ||
		   in_range(json_array_get(ch, 1), c0 + 1, INT32_MAX, &c1)))
		return -1;
	if (c1 > x.c)
		c1 = x.c;
	s->c = x.c;
	s->h = x.h;
	s->w = x.w;
	s->c0 = c0;
	s->oc = c1 - c0;
	if (slice_dim(sp->j, 0, x.h, &s->h0, &s->sh, &s->oh) ||
	    slice_dim(sp->j, 1, x.w, &s->w0, &s->sw, &s->ow))
		return -1;
	l->c = s->oc;
	l->h = s->oh;
	l->w = s->ow;
	snprintf(l->kind, sizeof l->kind, "slice %d:%d:%d,%d::%d", c0, c1,
		 s->h0, s->w0, s->sh);
	return 0;
}

/* Inputs of add (same shape) and concat (same h, w; or all flat). */
static int plan_multi(struct loader *ld, struct spec *sp, struct node *l)
{
	struct shape a = tensor_shape(ld->n, l->in[0]);
	int64_t c = 0;
	int k, is_add = l->op == NET_ADD;
	char msg[200];

	for (k = 0; k < l->n_in; k++) {
		struct shape b = tensor_shape(ld->n, l->in[k]);

		if (b.flat != a.flat || b.h != a.h || b.w != a.w ||
		    (is_add && b.c != a.c)) {
			snprintf(msg, sizeof msg,
				 "input %d is %dx%dx%d but input 0 is %dx%dx%d (%s)",
				 k, b.c, b.h, b.w, a.c, a.h, a.w,
				 is_add ? "an add needs one shape" :
					  "a concat needs one height and width");
			return fail_spec(ld, (int)(sp - ld->sp), ST_ERR_SHAPE, msg);
		}
		c += b.c;
	}
	if (!is_add && c > LIM_DIM)
		return fail_spec(ld, (int)(sp - ld->sp), ST_ERR_SHAPE,
				 "too many channels");
	l->c = is_add ? a.c : (int)c;
	snprintf(l->kind, sizeof l->kind, "%s", is_add ? "add" : "concat");
	return 0;
}

static int plan_const(struct spec *sp, struct node *l)
{
	json_t *v = json_object_get(sp->j, "value");
	double d;

	l->op = NET_CONST;
	l->arith = !strcmp(sp->op, "add") ? OPS_ADD : !strcmp(sp->op, "sub") ?
		   OPS_SUB : !strcmp(sp->op, "mul") ? OPS_MUL : OPS_DIV;
	if (v) {
		if (json_num(sp->j, "value", 0.0, &d))
			return -1;
		l->value = (float)d;
		snprintf(l->kind, sizeof l->kind, "%s %.6g", sp->op, d);
		return 0;
	}
	if (!sp->name)
		return -1;
	l->per_channel = 1;
	snprintf(l->kind, sizeof l->kind, "%s per-channel", sp->op);
	return 0;
}

/* Shapes and parameter counts of one node (no data yet). */
static int node_plan(struct loader *ld, struct spec *sp, struct node *l)
{
	struct shape x = tensor_shape(ld->n, l->in[0]);
	const char *op = sp->op;
	double a, b;

	l->c = x.c;
	l->h = x.h;
	l->w = x.w;
	l->flat = x.flat;
	l->groups = 1;
	if (strcmp(op, "add") && strcmp(op, "concat") && l->n_in != 1)
		return fail_spec(ld, (int)(sp - ld->sp), ST_ERR_FORMAT,
				 "takes exactly one input");
	if (!strcmp(op, "conv2d")) {
		int r;

		l->op = NET_CONV;
		r = plan_conv(ld, sp, l, x);
		if (r == -2)
			return -1;	/* reported */
		if (r)
			goto bad;
	} else if (!strcmp(op, "relu") || !strcmp(op, "sigmoid") ||
		   !strcmp(op, "tanh") || !strcmp(op, "identity")) {
		l->op = op[0] == 'r' ? NET_RELU : op[0] == 's' ? NET_SIGMOID :
			op[0] == 't' ? NET_TANH : NET_IDENTITY;
		l->alias = l->op == NET_IDENTITY;
		snprintf(l->kind, sizeof l->kind, "%s", op);
	} else if (!strcmp(op, "leaky_relu")) {
		l->op = NET_LEAKY;
		if (json_num(sp->j, "alpha", 0.01, &a) || !(a > 0.0) || a >= 1.0)
			goto bad;
		l->value = (float)a;
		snprintf(l->kind, sizeof l->kind, "leaky_relu %.3g", a);
	} else if (!strcmp(op, "clip")) {
		l->op = NET_CLIP;
		if (json_num(sp->j, "min", -INFINITY, &a) ||
		    json_num(sp->j, "max", INFINITY, &b) || !(a < b))
			goto bad;
		l->lo = (float)a;
		l->hi = (float)b;
		snprintf(l->kind, sizeof l->kind, "clip %.3g..%.3g", a, b);
	} else if (!strcmp(op, "maxpool") || !strcmp(op, "avgpool")) {
		l->op = op[0] == 'm' ? NET_MAXPOOL : NET_AVGPOOL;
		if (plan_pool(sp, l, x))
			goto bad;
	} else if (!strcmp(op, "gap")) {
		l->op = NET_GAP;
		if (x.flat)
			goto bad;
		l->h = l->w = 1;
		snprintf(l->kind, sizeof l->kind, "global avgpool");
	} else if (!strcmp(op, "flatten")) {
		int64_t c = (int64_t)x.c * x.h * x.w;

		l->op = NET_FLATTEN;
		l->alias = 1;
		if (c > LIM_ELEMS)
			goto bad;
		l->c = (int)c;
		l->h = l->w = 1;
		l->flat = 1;
		snprintf(l->kind, sizeof l->kind, "flatten");
	} else if (!strcmp(op, "dense")) {
		l->op = NET_DENSE;
		if (!sp->name || !x.flat ||
		    in_range(json_object_get(sp->j, "out"), 1, LIM_DIM, &l->c))
			goto bad;
		l->nw = (size_t)l->c * x.c;
		l->nb = json_bool(sp->j, "bias", 1) ? (size_t)l->c : 0;
		snprintf(l->kind, sizeof l->kind, "dense");
	} else if (!strcmp(op, "dropout")) {
		l->op = NET_DROPOUT;
		l->alias = 1;
		if (json_num(sp->j, "p", 0.5, &a) || a < 0.0 || a >= 1.0)
			goto bad;
		l->drop_p = (float)a;
		snprintf(l->kind, sizeof l->kind, "dropout");
	} else if (!strcmp(op, "softmax")) {
		l->op = NET_SOFTMAX;
		if (!x.flat)
			goto bad;
		snprintf(l->kind, sizeof l->kind, "softmax");
	} else if (!strcmp(op, "batchnorm")) {
		l->op = NET_BATCHNORM;
		if (!sp->name || json_num(sp->j, "eps", 1e-5, &a) || !(a >= 0.0))
			goto bad;
		l->bn_eps = (float)a;
		l->nw = l->nb = (size_t)x.c;
		snprintf(l->kind, sizeof l->kind, "batchnorm");
	} else if ((!strcmp(op, "add") && l->n_in >= 2) || !strcmp(op, "concat")) {
		l->op = op[0] == 'a' ? NET_ADD : NET_CONCAT;
		if (l->n_in < 2)
			goto bad;
		if (plan_multi(ld, sp, l))
			return -1;
	} else if (!strcmp(op, "add") || !strcmp(op, "sub") ||
		   !strcmp(op, "mul") || !strcmp(op, "div")) {
		if (plan_const(sp, l))
			goto bad;
	} else if (!strcmp(op, "pad")) {
		l->op = NET_PAD;
		if (plan_pad(sp, l, x))
			goto bad;
	} else if (!strcmp(op, "slice")) {
		l->op = NET_SLICE;
		if (plan_slice(sp, l, x))
			goto bad;
	} else {
		return fail_spec(ld, (int)(sp - ld->sp), ST_ERR_UNSUPPORTED,
				 "unknown op");
	}
	if (l->c < 1 || l->h < 1 || l->w < 1 ||
	    (l->h > LIM_DIM || l->w > LIM_DIM) ||
	    (int64_t)l->c * l->h * l->w > LIM_ELEMS)
		return fail_spec(ld, (int)(sp - ld->sp), ST_ERR_SHAPE,
				 "its output size is out of range");
	return 0;
bad:
	{
		char msg[160];

		snprintf(msg, sizeof msg,
			 "missing or invalid fields for input %dx%dx%d%s",
			 x.c, x.h, x.w, x.flat ? " (flat)" : "");
		return fail_spec(ld, (int)(sp - ld->sp), ST_ERR_FORMAT, msg);
	}
}

/* Nodes in topological order without the folded batch norms. */
static int build_nodes(struct loader *ld)
{
	struct net *n = ld->n;
	size_t nparams = 0;
	int k, i, nl = 0, last;

	for (k = 0; k < ld->ns; k++)
		if (!ld->sp[ld->topo[k]].folded)
			ld->sp[ld->topo[k]].node = nl++;
	n->nodes = calloc((size_t)nl, sizeof *n->nodes);
	if (!n->nodes)
		return ld->st = status_set(ld->err, ST_ERR_NOMEM, "%s: out of memory",
					   modelfile_path(ld->mf)), -1;
	n->info.n_layers = nl;
	for (k = 0; k < ld->ns; k++) {
		struct spec *sp = &ld->sp[ld->topo[k]];
		struct node *l;

		if (sp->folded)
			continue;
		l = &n->nodes[sp->node];
		snprintf(l->name, sizeof l->name, "%s", sp->name ? sp->name : "");
		snprintf(l->id, sizeof l->id, "%s", sp->id);
		l->n_in = sp->n_in;
		l->in = malloc(sizeof *l->in * (size_t)sp->n_in);
		if (!l->in)
			return ld->st = status_set(ld->err, ST_ERR_NOMEM, "%s: out of memory",
					   modelfile_path(ld->mf)), -1;
		for (i = 0; i < sp->n_in; i++) {
			int t = sp->in[i];

			l->in[i] = t < 0 ? NET_INPUT : ld->sp[t].node;
			if (t >= 0) {
				n->nodes[l->in[i]].n_consumers++;
				n->nodes[l->in[i]].out_norm = sp->node;
			}
		}
		l->chain = l->n_in == 1 && l->in[0] == sp->node - 1;
		l->buf = -1;
		if (node_plan(ld, sp, l))
			return -1;
		/* a conv whose batch norm folds into it gets a bias to fold into */
		if ((l->op == NET_CONV || l->op == NET_DENSE) && !l->nb &&
		    sp->gets_bn)
			l->nb = (size_t)l->c;
		nparams += l->nw + l->nb;
	}
	last = nl - 1;
	for (i = 0; i < nl; i++) {
		struct node *l = &n->nodes[i];

		if (i == last)
			l->out_norm = nl;
		else if (l->n_consumers != 1 || n->nodes[l->out_norm].n_in != 1)
			l->out_norm = -1;
	}
	for (i = 0; i < last; i++) {
		if (!n->nodes[i].n_consumers) {
			status_set(ld->err, ST_ERR_FORMAT,
				   "%s: advex.arch node '%s' (%s): its output is used by no node, but a model has exactly one output (node '%s')",
				   modelfile_path(ld->mf), n->nodes[i].id,
				   n->nodes[i].kind, n->nodes[last].id);
			return -1;
		}
		if (n->nodes[i].op == NET_SOFTMAX) {
			status_set(ld->err, ST_ERR_FORMAT,
				   "%s: advex.arch node '%s': softmax must be the last node",
				   modelfile_path(ld->mf), n->nodes[i].id);
			return -1;
		}
	}
	if (!n->nodes[last].flat)
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: advex.arch must end in a flat output (flatten/dense)",
				  modelfile_path(ld->mf)), -1;
	n->info.n_params = nparams;
	n->info.outputs_probs = n->nodes[last].op == NET_SOFTMAX;
	return 0;
}

/* ---- 5. fusing --------------------------------------------------------- */

/* A ReLU reading a conv that nothing else reads is applied by the conv as
 * it writes its output (enum conv_act); the ReLU node aliases the conv's
 * output and its forward does nothing. Nothing needs the conv's output
 * before the ReLU: the conv's backward reads its input, and the ReLU's
 * backward its own output, the same buffer with the same values. The node
 * table and net_save still see both nodes. */
static void fuse_relus(struct net *n)
{
	int i;

	for (i = 0; i < n->info.n_layers; i++) {
		struct node *l = &n->nodes[i];
		int t = l->in[0];

		if (l->op == NET_RELU && t >= 0 && n->nodes[t].op == NET_CONV &&
		    n->nodes[t].n_consumers == 1) {
			n->nodes[t].fused_relu = 1;
			l->alias = 1;
		}
	}
}

/* ---- 6. buffer planning -------------------------------------------------- */

/* Backward reads node i's own output (the activations' rule). */
int net_keeps_output(const struct node *l)
{
	switch (l->op) {
	case NET_RELU: case NET_LEAKY: case NET_CLIP: case NET_SIGMOID:
	case NET_TANH: case NET_SOFTMAX:
		return 1;
	default:
		return 0;
	}
}

/* Backward reads node i's input (parameter gradients). */
static int keeps_input(const struct node *l, int want_grads)
{
	return want_grads && (l->op == NET_CONV || l->op == NET_DENSE ||
			      l->op == NET_BATCHNORM);
}

/* Each non-alias node gets a buffer that is free from its own step on:
 * a buffer is free once every node reading its tensor (or an alias of it)
 * has run, unless backward needs the tensor. Best fit among free buffers,
 * else the largest free one grown, else a new one. Sizes in floats for
 * max_batch images. */
static int plan_buffers(struct net *n, int want_grads, size_t **caps_out)
{
	int nl = n->info.n_layers, i, k, nb = 0;
	size_t mb = (size_t)n->info.max_batch, *caps;
	int *death, *owner, *bfree;

	death = malloc(sizeof *death * (size_t)nl);
	owner = malloc(sizeof *owner * (size_t)nl);
	bfree = malloc(sizeof *bfree * (size_t)nl);
	caps = calloc((size_t)nl, sizeof *caps);
	if (!death || !owner || !bfree || !caps) {
		free(death);
		free(owner);
		free(bfree);
		free(caps);
		return -1;
	}
	/* death[t]: the last step that reads tensor t */
	for (i = 0; i < nl; i++)
		death[i] = i;
	death[nl - 1] = nl;	/* the output is returned */
	for (i = 0; i < nl; i++) {
		const struct node *l = &n->nodes[i];

		if (net_keeps_output(l))
			death[i] = nl;
		for (k = 0; k < l->n_in; k++) {
			int t = l->in[k];

			if (t < 0)
				continue;
			if (keeps_input(l, want_grads))
				death[t] = nl;
			else if (death[t] < i)
				death[t] = i;
		}
	}
	/* an alias lives in its input's buffer: aliases come after what they
	 * alias, so one pass from the end carries each death to the root */
	for (i = nl - 1; i >= 0; i--) {
		int t = n->nodes[i].in[0];

		if (n->nodes[i].alias && t >= 0 && death[t] < death[i])
			death[t] = death[i];
	}
	for (i = 0; i < nl; i++) {
		struct node *l = &n->nodes[i];
		size_t need = node_size(l) * mb;
		int best = -1;

		if (l->alias)
			continue;
		/* free every buffer whose tensor died before step i */
		for (k = 0; k < nb; k++)
			if (!bfree[k] && death[owner[k]] < i)
				bfree[k] = 1;
		/* the smallest free buffer that fits, else the largest free
		 * one (grown), else a new one */
		for (k = 0; k < nb; k++)
			if (bfree[k] && caps[k] >= need &&
			    (best < 0 || caps[k] < caps[best]))
				best = k;
		for (k = 0; best < 0 && k < nb; k++)
			if (bfree[k])
				best = k;
		if (best >= 0 && caps[best] < need)
			for (k = 0; k < nb; k++)
				if (bfree[k] && caps[k] > caps[best])
					best = k;
		if (best < 0) {
			best = nb++;
			caps[best] = 0;
		}
		if (caps[best] < need)
			caps[best] = need;
		bfree[best] = 0;
		owner[best] = i;
		l->buf = best;
	}
	n->n_bufs = nb;
	n->info.n_buffers = nb;
	free(death);
	free(owner);
	free(bfree);
	*caps_out = caps;
	return 0;
}

/* ---- 7. allocation and weights ------------------------------------------- */

/* Which nodes keep receptive-field signatures (fieldsig.h) for the
 * max-pools' tie rule: every node with a spatial output up to the last
 * max-pool. Those that change them get maps of their own; pointwise and
 * per-channel ones share their input's (net_link_aliases). */
static int sig_owner(const struct net *n, int i)
{
	const struct node *l = &n->nodes[i];

	if (i > n->sig_last || l->flat)
		return 0;
	switch (l->op) {
	case NET_CONV: case NET_MAXPOOL: case NET_AVGPOOL: case NET_ADD:
	case NET_CONCAT: case NET_PAD: case NET_SLICE: case NET_DROPOUT:
		return 1;
	default:
		return 0;
	}
}

static int alloc_sigs(struct net *n)
{
	size_t mb = (size_t)n->info.max_batch, work = 0, win = 0;
	int i;

	n->sig_last = -1;
	for (i = 0; i < n->info.n_layers; i++)
		if (n->nodes[i].op == NET_MAXPOOL) {
			const struct pool_shape *p = &n->nodes[i].pool;

			n->sig_last = i;
			if (pool_tie_work_size(p) > work)
				work = pool_tie_work_size(p);
		}
	if (n->sig_last < 0)
		return 0;
	for (i = 0; i <= n->sig_last; i++) {
		struct node *l = &n->nodes[i];
		struct fieldsig_window wd = node_sig_window(l);

		if (sig_owner(n, i) &&
		    !(l->sig_own = malloc(sizeof(uint64_t) * mb * l->h * l->w)))
			return -1;
		if (sig_owner(n, i) && (l->op == NET_CONV || l->op == NET_MAXPOOL ||
					l->op == NET_AVGPOOL) &&
		    fieldsig_window_work(&wd) > win)
			win = fieldsig_window_work(&wd);
	}
	n->input_sig = malloc(sizeof(uint64_t) * mb * n->info.in_h * n->info.in_w);
	n->tie_work = malloc(sizeof(int32_t) * work);
	n->sig_work = malloc(sizeof(uint64_t) * (win ? win : 1));
	return n->input_sig && n->tie_work && n->sig_work ? 0 : -1;
}

static int alloc_buffers(struct loader *ld, int want_grads)
{
	struct net *n = ld->n;
	size_t in_size = net_tensor_size(n, NET_INPUT), max_act = in_size;
	size_t mb = (size_t)n->info.max_batch, *caps = NULL, act = 0;
	int nl = n->info.n_layers, i, ok, bad = -1, big = 0;

	n->params = malloc(sizeof(float) * (n->info.n_params ? n->info.n_params : 1));
	if (want_grads)
		n->grads = calloc(n->info.n_params ? n->info.n_params : 1, sizeof(float));
	n->input = malloc(sizeof(float) * in_size * mb);
	n->norms = calloc(((size_t)nl + 1) * (mb + 1), sizeof(double));
	n->tnorms = calloc(((size_t)nl + 1) * (mb + 1), sizeof(double));
	n->pixel_norm = calloc(mb + 1, sizeof(double));
	n->g = calloc((size_t)nl + 1, sizeof *n->g);
	ok = n->params && n->input && n->norms && n->tnorms && n->pixel_norm &&
	     n->g && (!want_grads || n->grads) &&
	     !plan_buffers(n, want_grads, &caps);
	for (i = 0; ok && i < nl; i++) {
		struct node *l = &n->nodes[i];
		size_t out = node_size(l) * mb;

		if (node_size(l) > max_act) {
			max_act = node_size(l);
			big = i;
		}
		if (l->op == NET_DROPOUT && want_grads) {
			l->own = malloc(sizeof(float) * out);
			l->mask = malloc(sizeof(float) * out);
			ok = l->own && l->mask;
		}
		if (ok && l->op == NET_MAXPOOL)
			ok = (l->argmax = malloc(sizeof(int32_t) * out)) != NULL;
		if (ok && (l->op == NET_CONST || l->op == NET_BATCHNORM))
			ok = (l->cvec = calloc(3 * (size_t)l->c, sizeof(float))) != NULL;
		if (!ok && bad < 0 && n->params)
			bad = i;
	}
	if (ok)
		ok = (n->bufs = calloc((size_t)n->n_bufs + 1, sizeof *n->bufs)) != NULL;
	for (i = 0; ok && i < n->n_bufs; i++)
		ok = (n->bufs[i] = malloc(sizeof(float) * caps[i])) != NULL;
	for (i = 0; caps && i < n->n_bufs; i++)
		act += caps[i];
	if (ok) {
		n->n_gpool = net_backward_plan(n);
		n->gpool_size = max_act * mb;
		n->gpool = calloc((size_t)n->n_gpool + 1, sizeof *n->gpool);
		n->gfree = calloc((size_t)n->n_gpool + 1, sizeof *n->gfree);
		ok = n->gpool && n->gfree;
	}
	for (i = 0; ok && i < n->n_gpool; i++) {
		ok = (n->gpool[i] = malloc(sizeof(float) * n->gpool_size)) != NULL;
		n->gfree[i] = n->gpool[i];
	}
	if (ok)
		ok = !alloc_sigs(n);
	free(caps);
	if (ok)
		return 0;
	/* Say what did not fit: the parameters, or the activations of a
	 * layer (the one whose own buffer failed, else the largest, which
	 * sizes the shared buffers) at this batch size. */
	if (!n->params || !n->input || (want_grads && !n->grads))
		return ld->st = status_set(ld->err, ST_ERR_NOMEM,
				  "%s: out of memory for the %zu parameters (%.0f MiB%s)",
				  modelfile_path(ld->mf), n->info.n_params,
				  n->info.n_params * (want_grads ? 8.0 : 4.0) / 1048576.0,
				  want_grads ? " with their gradients" : ""), -1;
	i = bad >= 0 ? bad : big;
	return ld->st = status_set(ld->err, ST_ERR_NOMEM,
			  "%s: out of memory for the activations at batch %d: layer %d (%s%s%s, %zu values per image)%s; %.0f MiB of buffers",
			  modelfile_path(ld->mf), n->info.max_batch, i, n->nodes[i].kind,
			  n->nodes[i].id[0] != '#' ? " " : "",
			  n->nodes[i].id[0] != '#' ? n->nodes[i].id : "", node_size(&n->nodes[i]),
			  bad >= 0 ? "" : ", the largest", (act + n->n_gpool * n->gpool_size) * 4.0 / 1048576.0), -1;
}

void net_link_aliases(struct net *n)
{
	int i;

	for (i = 0; i < n->info.n_layers; i++) {
		struct node *l = &n->nodes[i];

		if (l->op == NET_DROPOUT && n->training)
			l->out = l->own;
		else if (l->alias)
			l->out = net_tensor(n, l->in[0]);
		else
			l->out = n->bufs[l->buf];
		l->sig = l->sig_own;
		if (!l->sig && i <= n->sig_last && !l->flat)
			l->sig = (uint64_t *)net_tensor_sig(n, l->in[0]);
	}
}

/* Fold an inference batch norm into the conv or dense before it:
 * w' = w * g/sqrt(v+eps) per output, b' = (b - m) * g/sqrt(v+eps) + beta. */
static int fold_bn(struct loader *ld, struct spec *sp, struct node *prev)
{
	double eps;
	int64_t shape[1] = { prev->c };
	const struct mf_tensor *t[4];
	static const char *const part[4] = { "weight", "bias", "running_mean",
					     "running_var" };
	float *w, *b, *v[4];
	size_t per, k, j;
	int i, ok = 1;

	if (!sp->name || json_num(sp->j, "eps", 1e-5, &eps) || !(eps >= 0.0))
		return fail_spec(ld, (int)(sp - ld->sp), ST_ERR_FORMAT,
				 "needs a name and eps >= 0");
	for (i = 0; i < 4; i++)
		if (!(t[i] = need_tensor(ld, sp->id, sp->name, part[i], 1, shape)))
			return -1;
	if (ld->dry)
		return 0;
	for (i = 0; i < 4; i++) {
		v[i] = malloc(sizeof(float) * (size_t)prev->c);
		ok = ok && v[i];
	}
	if (!ok) {
		for (i = 0; i < 4; i++)
			free(v[i]);
		return ld->st = status_set(ld->err, ST_ERR_NOMEM, "%s: out of memory",
				  modelfile_path(ld->mf)), -1;
	}
	for (i = 0; i < 4; i++)
		modelfile_read_f32(t[i], v[i]);
	w = ld->n->params + prev->w_off;
	b = ld->n->params + prev->b_off;
	per = prev->nw / (size_t)prev->c;
	for (k = 0; k < (size_t)prev->c; k++) {
		double s = v[0][k] / sqrt((double)v[3][k] + eps);
		double bias = prev->nb ? b[k] : 0.0;

		for (j = 0; j < per; j++)
			w[k * per + j] = (float)(w[k * per + j] * s);
		b[k] = (float)((bias - v[2][k]) * s + v[1][k]);
	}
	prev->nb = (size_t)prev->c;
	prev->folded_bn = 1;
	for (i = 0; i < 4; i++)
		free(v[i]);
	return 0;
}

/* Parameters of one node: weight/bias, a stand-alone batch norm's
 * statistics, a per-channel constant. */
static int node_weights(struct loader *ld, struct spec *sp, struct node *l)
{
	struct net *n = ld->n;
	const struct mf_tensor *t;
	int64_t shape[4];
	int i;

	if (l->op == NET_CONST && l->per_channel) {
		shape[0] = l->c;
		if (!(t = need_tensor(ld, l->id, l->name, "value", 1, shape)))
			return -1;
		if (!ld->dry)
			modelfile_read_f32(t, l->cvec);
		return 0;
	}
	if (l->op == NET_BATCHNORM) {
		static const char *const part[4] = { "weight", "bias",
						     "running_mean", "running_var" };
		float *dst[4];

		if (ld->dry) {
			shape[0] = l->c;
			for (i = 0; i < 4; i++)
				if (!need_tensor(ld, l->id, l->name, part[i], 1, shape))
					return -1;
			return 0;
		}
		dst[0] = n->params + l->w_off;
		dst[1] = n->params + l->b_off;
		dst[2] = l->cvec;		/* mean */
		dst[3] = l->cvec + 2 * l->c;	/* variance, kept for saving */
		shape[0] = l->c;
		for (i = 0; i < 4; i++) {
			if (!(t = need_tensor(ld, l->id, l->name, part[i], 1, shape)))
				return -1;
			modelfile_read_f32(t, dst[i]);
		}
		for (i = 0; i < l->c; i++)
			l->cvec[l->c + i] = (float)(1.0 / sqrt((double)dst[3][i] +
							       l->bn_eps));
		return 0;
	}
	if (!l->nw)
		return 0;
	if (l->op == NET_CONV) {
		shape[0] = l->c;
		shape[1] = l->conv.c;
		shape[2] = l->conv.kh;
		shape[3] = l->conv.kw;
		t = need_tensor(ld, l->id, l->name, "weight", 4, shape);
	} else {
		shape[0] = l->c;
		shape[1] = (int64_t)net_tensor_size(n, l->in[0]);
		t = need_tensor(ld, l->id, l->name, "weight", 2, shape);
	}
	if (!t)
		return -1;
	if (!ld->dry) {
		modelfile_read_f32(t, n->params + l->w_off);
		memset(n->params + l->b_off, 0, sizeof(float) * l->nb);
	}
	if (json_bool(sp->j, "bias", 1)) {
		shape[0] = l->c;
		if (!(t = need_tensor(ld, l->id, l->name, "bias", 1, shape)))
			return -1;
		if (!ld->dry)
			modelfile_read_f32(t, n->params + l->b_off);
	}
	return 0;
}

static int load_weights(struct loader *ld)
{
	struct net *n = ld->n;
	size_t off = 0;
	int k, i;

	for (i = 0; i < n->info.n_layers; i++) {
		struct node *l = &n->nodes[i];

		l->w_off = off;
		l->b_off = off + l->nw;
		off += l->nw + l->nb;
	}
	for (k = 0; k < ld->ns; k++) {
		struct spec *sp = &ld->sp[ld->topo[k]];

		if (!sp->folded && node_weights(ld, sp, &n->nodes[sp->node]))
			return -1;
	}
	/* after every conv has its weights */
	for (k = 0; k < ld->ns; k++) {
		struct spec *sp = &ld->sp[k];

		if (sp->folded &&
		    fold_bn(ld, sp, &n->nodes[ld->sp[sp->in[0]].node]))
			return -1;
	}
	return 0;
}

static int check_unused(struct loader *ld)
{
	int i;

	for (i = 0; i < modelfile_count(ld->mf); i++) {
		const struct mf_tensor *t = modelfile_tensor(ld->mf, i);

		if (!ld->used[i] && !strstr(t->name, "num_batches_tracked"))
			return status_set(ld->err, ST_ERR_FORMAT,
					  "%s: tensor '%s' is not used by the architecture in advex.arch",
					  modelfile_path(ld->mf), t->name), -1;
	}
	return 0;
}

/* Every tensor the nodes need, with its shape, and no tensor left over,
 * before the activations are allocated: a file that does not fit its
 * architecture fails fast, whatever the batch, and before a large
 * allocation could fail first with a less useful message. */
static int check_tensors(struct loader *ld)
{
	int rc;

	ld->dry = 1;
	rc = load_weights(ld) || check_unused(ld);
	ld->dry = 0;
	return rc ? -1 : 0;
}

/* ---- metadata ------------------------------------------------------------ */

static int read_preprocessing(struct loader *ld)
{
	struct net_info *in = &ld->n->info;
	const char *path = modelfile_path(ld->mf);
	const char *s;
	json_t *j, *m, *sd;
	int i, ok;

	j = meta_json(ld->mf, "advex.input", 1, ld->err);
	if (!j)
		return -1;
	ok = json_is_array(j) && json_array_size(j) == 3;
	for (i = 0; ok && i < 3; i++)
		ok = json_is_integer(json_array_get(j, (size_t)i)) &&
		     json_integer_value(json_array_get(j, (size_t)i)) >= 1 &&
		     json_integer_value(json_array_get(j, (size_t)i)) <= 4096;
	if (ok) {
		in->in_c = (int)json_integer_value(json_array_get(j, 0));
		in->in_h = (int)json_integer_value(json_array_get(j, 1));
		in->in_w = (int)json_integer_value(json_array_get(j, 2));
	}
	json_decref(j);
	if (!ok || in->in_c != 3)
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: metadata 'advex.input' must be [3, H, W]", path), -1;
	s = modelfile_meta(ld->mf, "advex.scale");
	in->scale = 1.0f;
	if (s && preproc_number(s, &in->scale) != 0)
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: metadata advex.scale '%.40s' is not a number in (0, %g]",
				  path, s, NET_PREPROC_MAX), -1;
	m = meta_json(ld->mf, "advex.mean", 0, ld->err);
	sd = meta_json(ld->mf, "advex.std", 0, ld->err);
	ok = 1;
	for (i = 0; i < 3; i++) {
		json_t *mv = m ? json_array_get(m, (size_t)i) : NULL;
		json_t *sv = sd ? json_array_get(sd, (size_t)i) : NULL;

		in->mean[i] = mv ? (float)json_number_value(mv) : 0.0f;
		in->std[i] = sv ? (float)json_number_value(sv) : 1.0f;
		ok = ok && (!m || json_is_number(mv)) && (!sd || json_is_number(sv)) &&
		     in->std[i] > 0.0f;
		/* the network sees (pixel*scale - mean)/std for pixels in
		 * [0,1]: keep it finite and of a size a network can take */
		ok = ok && fabsf(in->mean[i]) <= NET_PREPROC_MAX &&
		     in->std[i] <= NET_PREPROC_MAX &&
		     fabs((double)in->mean[i] / in->std[i]) <= NET_PREPROC_MAX &&
		     fabs(((double)in->scale - in->mean[i]) / in->std[i]) <= NET_PREPROC_MAX;
	}
	json_decref(m);
	json_decref(sd);
	if (!ok)
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: metadata advex.mean/std must be 3 finite numbers each, std > 0, "
				  "and (pixel*scale - mean)/std within +-%g",
				  path, NET_PREPROC_MAX), -1;
	s = modelfile_meta(ld->mf, "advex.channel_order");
	in->bgr = s && !strcmp(s, "BGR");
	if (s && !in->bgr && strcmp(s, "RGB"))
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: metadata advex.channel_order must be RGB or BGR, not '%s'",
				  path, s), -1;
	s = modelfile_meta(ld->mf, "advex.removed_softmax");
	in->removed_softmax = s && !strcmp(s, "true");
	return 0;
}

static int read_classes(struct loader *ld, int n_out)
{
	struct net *n = ld->n;
	json_t *j = meta_json(ld->mf, "advex.classes", 0, ld->err);
	int i;

	if (n_out < 1 || n_out > NET_MAX_CLASSES)
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: the network has %d outputs (1..%d allowed)",
				  modelfile_path(ld->mf), n_out, NET_MAX_CLASSES), -1;
	if (j && (!json_is_array(j) || json_array_size(j) != (size_t)n_out)) {
		json_decref(j);
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: metadata advex.classes must list %d names",
				  modelfile_path(ld->mf), n_out), -1;
	}
	n->classes = calloc((size_t)n_out, sizeof *n->classes);
	if (!n->classes) {
		json_decref(j);
		return ld->st = status_set(ld->err, ST_ERR_NOMEM, "%s: out of memory",
					   modelfile_path(ld->mf)), -1;
	}
	for (i = 0; i < n_out; i++) {
		const char *s = j ? json_string_value(json_array_get(j, (size_t)i)) : NULL;
		char def[32];

		snprintf(def, sizeof def, "class%d", i);
		n->classes[i] = strdup(s ? s : def);
		if (!n->classes[i]) {
			json_decref(j);
			return ld->st = status_set(ld->err, ST_ERR_NOMEM, "%s: out of memory",
					   modelfile_path(ld->mf)), -1;
		}
	}
	json_decref(j);
	n->info.n_classes = n_out;
	n->info.classes = (const char *const *)n->classes;
	return 0;
}

/* ---- create / free --------------------------------------------------------- */

static int build(struct loader *ld, json_t *arch, int want_grads)
{
	struct net *n = ld->n;
	char *err = ld->err;

	if (read_specs(ld, arch) || sort_specs(ld))
		return -1;
	mark_folds(ld);
	if (build_nodes(ld) ||
	    read_classes(ld, n->nodes[n->info.n_layers - 1].c))
		return -1;
	fuse_relus(n);
	if (check_tensors(ld) || alloc_buffers(ld, want_grads))
		return -1;
	/* The kernels run their products on these threads, OpenBLAS
	 * single-threaded (blas.h). */
	n->workers = workers_new(ld->threads);
	n->info.threads = ld->threads;
	if (!n->workers)
		return ld->st = status_set(err, ST_ERR_NOMEM,
					   "%s: out of memory: cannot start %d threads",
					   modelfile_path(ld->mf), ld->threads), -1;
	net_link_aliases(n);
	if (load_weights(ld))
		return -1;
	ld->st = net_set_conv_mode(n, want_grads ? NET_CONV_IM2COL : NET_CONV_AUTO,
				   err);
	if (ld->st != ST_OK) {
		char why[ERR_MAX];

		snprintf(why, sizeof why, "%s", err);
		status_set(err, ld->st, "%s: %s", modelfile_path(ld->mf), why);
		return -1;
	}
	return 0;
}

enum status net_create(const struct modelfile *mf, int max_batch,
		       int want_param_grads, int threads, struct net **out,
		       char *err)
{
	struct loader ld = { .mf = mf, .err = err, .st = ST_ERR_FORMAT,
			     .threads = threads };
	struct net *n;
	json_t *arch = NULL;
	const char *src;
	int rc = -1;

	*out = NULL;
	if (max_batch < 1)
		return status_set(err, ST_ERR_ARG, "batch size must be >= 1");
	if (threads < 0 || threads > NET_MAX_THREADS)
		return status_set(err, ST_ERR_ARG, "threads %d: use 0 (every core) or 1..%d",
				  threads, NET_MAX_THREADS);
	if (!ld.threads) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);

		ld.threads = c < 1 ? 1 : c > NET_MAX_THREADS ? NET_MAX_THREADS : (int)c;
	}
	err[0] = '\0';
	n = calloc(1, sizeof *n);
	ld.used = calloc((size_t)modelfile_count(mf) + 1, 1);
	if (!n || !ld.used) {
		free(n);
		free(ld.used);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory",
				  modelfile_path(mf));
	}
	ld.n = n;
	n->sig_last = -1;
	n->info.max_batch = max_batch;
	src = modelfile_meta(mf, "advex.source");
	n->source = strdup(src ? src : "");
	n->info.source = n->source;
	if (read_preprocessing(&ld))
		goto done;
	arch = meta_json(mf, "advex.arch", 1, err);
	if (!arch)
		goto done;
	if (!json_is_array(arch) || !json_array_size(arch) ||
	    json_array_size(arch) > NET_MAX_NODES) {
		status_set(err, ST_ERR_FORMAT,
			   "%s: metadata advex.arch must be a JSON list of 1..%d nodes",
			   modelfile_path(mf), NET_MAX_NODES);
		goto done;
	}
	ld.ns = (int)json_array_size(arch);
	ld.sp = calloc((size_t)ld.ns, sizeof *ld.sp);
	if (!ld.sp) {
		ld.st = status_set(err, ST_ERR_NOMEM, "%s: out of memory",
				   modelfile_path(mf));
		goto done;
	}
	rc = build(&ld, arch, want_param_grads);
done:
	json_decref(arch);
	free(ld.used);
	free(ld.sp);
	free(ld.topo);
	if (rc) {
		net_free(n);
		return ld.st;
	}
	*out = n;
	return ST_OK;
}

void net_free(struct net *n)
{
	int i;

	if (!n)
		return;
	for (i = 0; n->nodes && i < n->info.n_layers; i++) {
		free(n->nodes[i].in);
		free(n->nodes[i].argmax);
		free(n->nodes[i].own);
		free(n->nodes[i].mask);
		conv_plan_release(&n->nodes[i].plan);
		free(n->nodes[i].cvec);
		free(n->nodes[i].sig_own);
	}
	for (i = 0; n->bufs && i < n->n_bufs; i++)
		free(n->bufs[i]);
	for (i = 0; n->gpool && i < n->n_gpool; i++)
		free(n->gpool[i]);
	for (i = 0; n->classes && i < n->info.n_classes; i++)
		free(n->classes[i]);
	free(n->bufs);
	free(n->gpool);
	free(n->gfree);
	free(n->g);
	free(n->classes);
	free(n->nodes);
	free(n->params);
	free(n->grads);
	free(n->input);
	free(n->input_sig);
	free(n->tie_work);
	free(n->sig_work);
	free(n->work);
	workers_free(n->workers);
	free(n->norms);
	free(n->tnorms);
	free(n->pixel_norm);
	free(n->prof);
	free(n->source);
	free(n);
}
