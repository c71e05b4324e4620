/* net_impl.h - the inside of struct net, shared by the three files that
 * build it (net_load.c), run it (net.c) and write it back (net_save.c).
 * Nothing outside those files includes this.
 *
 * A net is a list of nodes in topological order. Node i's output is tensor
 * i; NET_INPUT (-1) is the preprocessed image. Every node's output buffer
 * is planned once at load (net_load.c: plan_buffers): a buffer is reused
 * after the last node that reads it has run, unless backward needs it.
 * Gradients live in a pool of equal buffers handed out and taken back
 * during backward (no allocation: the pool's size is found at load by a
 * dry run of the same schedule).
 */
#ifndef ADVEX_NET_IMPL_H
#define ADVEX_NET_IMPL_H

#include <stdint.h>

#include "conv.h"
#include "fieldsig.h"
#include "net.h"
#include "ops.h"
#include "pool.h"
#include "rng.h"

#define NET_MAX_CLASSES 4096
#define NET_MAX_NODES 100000
#define NET_MAX_INPUTS 64

struct node {
	enum net_op op;
	char name[128];		/* parameter prefix, "" when none */
	char id[136];		/* graph name: name, or "#k" */
	char kind[48];		/* for the layer table */
	int n_in;
	int *in;		/* n_in tensor indices (NET_INPUT or < own) */
	int chain;		/* single input, the node before */
	int c, h, w;		/* output of one image (h = w = 1 when flat) */
	int flat;		/* the output is a vector (after flatten) */
	struct conv_shape conv;	/* NET_CONV: one group's shape */
	int groups;		/* NET_CONV */
	struct pool_shape pool;	/* NET_MAXPOOL, NET_AVGPOOL */
	struct ops_pad pad;	/* NET_PAD */
	struct ops_slice slice;	/* NET_SLICE */
	enum ops_arith arith;	/* NET_CONST */
	float value;		/* NET_CONST scalar; NET_LEAKY alpha */
	float lo, hi;		/* NET_CLIP */
	int per_channel;	/* NET_CONST: cvec holds C values */
	float *cvec;		/* NET_CONST per channel (C); NET_BATCHNORM:
				   running mean (C) then inv_std (C) and the
				   saved variance (C) */
	float bn_eps;		/* NET_BATCHNORM */
	size_t w_off, b_off;	/* offsets into the parameter block */
	size_t nw, nb;		/* counts; nb == 0 when there is no bias */
	int folded_bn;		/* a batch norm was folded into w/b */
	int alias;		/* output is input 0's buffer (flatten,
				   identity, dropout, a fused ReLU) */
	int fused_relu;		/* NET_CONV: applies the next node's ReLU */
	int n_consumers;	/* nodes reading this output */
	int out_norm;		/* net_layer_info.out_norm */
	int buf;		/* planned buffer (index into bufs), -1 */
	float *out;		/* max_batch outputs (planned, or aliased) */
	int32_t *argmax;	/* NET_MAXPOOL: max_batch * output size */
	float drop_p;		/* NET_DROPOUT: probability of dropping */
	float *own;		/* NET_DROPOUT in training: its own output */
	float *mask;		/* NET_DROPOUT in training: 0 or 1/(1-p) */
	struct conv_plan plan;	/* NET_CONV: how it runs (net_set_conv_mode) */
	uint64_t *sig;		/* receptive-field signatures of the output
				   (fieldsig.h): max_batch maps of h*w, its
				   own (sig_own) or input 0's; NULL when no
				   max-pool reads them */
	uint64_t *sig_own;
};

struct net {
	struct net_info info;
	char **classes;		/* n_classes strings */
	char *source;
	struct node *nodes;	/* info.n_layers */
	float *params, *grads;	/* one block each; grads may be NULL */
	float *input;		/* tensor NET_INPUT: max_batch images */
	float **bufs;		/* planned activation buffers (n_bufs) */
	int n_bufs;
	float **gpool;		/* gradient buffers, each gpool_size floats */
	int n_gpool;
	size_t gpool_size;
	float **gfree;		/* stack of free gradient buffers */
	float **g;		/* per tensor (index + 1): its gradient buffer
				   during backward, or NULL */
	float *work;		/* the conv and dense kernels' workspace */
	size_t work_size;	/* its floats */
	struct workers *workers; /* the kernels' threads */
	uint64_t *input_sig;	/* max_batch maps of the input's signatures */
	int sig_last;		/* the last max-pool: nodes up to it keep
				   signatures for its tie rule; -1 */
	int32_t *tie_work;	/* the max-pools' tie rule workspace */
	uint64_t *sig_work;	/* fieldsig_window's workspace */
	double *tnorms;		/* (1 + max_batch) rows of n + 1: per tensor
				   (index + 1), the batch then each image */
	double *norms;		/* (1 + max_batch) rows of n + 1: per node
				   input (see net_grad_norms) */
	double *pixel_norm;	/* 1 + max_batch: the same for the pixels */
	int batch;		/* batch of the last forward */
	int first_trainable;	/* nodes below get no parameter gradients */
	int training;		/* dropout active */
	struct rng rng;		/* dropout masks */
	double *prof;		/* NULL, or 3 x n ms: forward, backward, norm */
};

static inline size_t node_size(const struct node *l)
{
	return (size_t)l->c * l->h * l->w;
}

/* Shape of tensor t (NET_INPUT or a node) of one image. */
static inline size_t net_tensor_size(const struct net *n, int t)
{
	return t < 0 ? (size_t)n->info.in_c * n->info.in_h * n->info.in_w :
		       node_size(&n->nodes[t]);
}

static inline float *net_tensor(const struct net *n, int t)
{
	return t < 0 ? n->input : n->nodes[t].out;
}

/* The window a conv or pool node hashes its input's signatures over. */
static inline struct fieldsig_window node_sig_window(const struct node *l)
{
	if (l->op == NET_CONV)
		return (struct fieldsig_window){ l->conv.h, l->conv.w, l->conv.kh,
			l->conv.kw, l->conv.sh, l->conv.sw, l->conv.ph, l->conv.pw,
			l->conv.oh, l->conv.ow };
	return (struct fieldsig_window){ l->pool.h, l->pool.w, l->pool.kh,
		l->pool.kw, l->pool.sh, l->pool.sw, l->pool.ph, l->pool.pw,
		l->pool.oh, l->pool.ow };
}

/* The signature maps of tensor t (fieldsig.h), NULL when not kept. */
static inline const uint64_t *net_tensor_sig(const struct net *n, int t)
{
	return t < 0 ? n->input_sig : n->nodes[t].sig;
}

/* The output buffer each node uses: aliases resolved, dropout in training
 * given its own. Called after planning and when training mode changes. */
void net_link_aliases(struct net *n);

/* Backward reads node l's output (activations): it stays valid after a
 * forward. */
int net_keeps_output(const struct node *l);

/* Count of gradient buffers the backward schedule needs (dry run). */
int net_backward_plan(const struct net *n);

#endif
