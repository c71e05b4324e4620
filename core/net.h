/* net.h - a network built from a model file: a directed acyclic graph of
 * nodes in topological order (a sequential model is a chain); forward,
 * backward, per-node gradient norms.
 *
 * "Layer" and "node" mean the same here: node i is layer i, n_layers counts
 * the nodes (a batch norm folded into its conv is not a node).
 * The network owns every buffer it needs, sized once for max_batch images
 * when it is created: net_forward and net_backward allocate nothing.
 * Inputs are always pixels in [0,1], RGB, NCHW; the model's preprocessing
 * (scale, mean/std, BGR order) runs inside as the first stage, so the input
 * gradient is in pixel units.
 */
#ifndef ADVEX_NET_H
#define ADVEX_NET_H

#include <stddef.h>

#include "modelfile.h"
#include "status.h"

struct net;

enum net_op {
	NET_CONV, NET_RELU, NET_MAXPOOL, NET_AVGPOOL, NET_GAP, NET_FLATTEN,
	NET_DENSE, NET_DROPOUT, NET_SOFTMAX,
	NET_ADD,	/* two or more tensors of one shape */
	NET_CONST,	/* add/sub/mul/div by a number or a per-channel tensor */
	NET_CONCAT, NET_PAD, NET_SLICE, NET_IDENTITY, NET_BATCHNORM,
	NET_LEAKY, NET_CLIP, NET_SIGMOID, NET_TANH
};

/* Node inputs: indices of earlier nodes, or NET_INPUT for the model input
 * (the preprocessed image). */
#define NET_INPUT (-1)

/* One row of the layer table (`advex info`). */
struct net_layer_info {
	enum net_op op;
	const char *kind;	/* "conv2d 3x3/1 p1", "relu", ... static or owned by net */
	const char *name;	/* parameter name prefix, "" when none */
	int c, h, w;		/* output shape of one image */
	int flat;		/* output is a vector of c values */
	size_t params;		/* parameters after batch-norm folding */
	int folded_bn;		/* 1 when a batch norm was folded into it */
	int fused_relu;		/* NET_CONV: applies the next layer's ReLU as it
				   writes its output; NET_RELU: applied so */
	const char *id;		/* the node's name in the graph (its "name",
				   or "#k" for the k-th entry without one) */
	int n_inputs;
	const int *inputs;	/* n_inputs node indices or NET_INPUT, owned
				   by net */
	int chain;		/* 1: the single input is the node before
				   (NET_INPUT for node 0) */
	int out_norm;		/* index j in net_grad_norms whose value is
				   the gradient at this node's output (its
				   sole consumer's input; n_layers for the
				   last node), -1 when no entry is (several
				   consumers, or one with several inputs) */
};

struct net_info {
	int in_c, in_h, in_w;	/* input shape */
	int n_classes;
	const char *const *classes; /* n_classes names, owned by net */
	float scale;		/* model sees pixel*scale ... */
	float mean[3], std[3];	/* ... minus mean, over std, per channel */
	int bgr;		/* 1: channels reversed before the first layer */
	int outputs_probs;	/* 1: the last layer is a softmax */
	int removed_softmax;	/* 1: an importer stripped a final softmax */
	int n_layers;
	size_t n_params;
	int max_batch;
	int threads;		/* the net's worker threads (net_create) */
	int n_buffers;		/* activation buffers after liveness planning */
	const char *source;	/* advex.source, "" when absent */
};

#define NET_MAX_THREADS 256

/* Build a network from an opened model file. The file may be closed after.
 * want_param_grads: allocate a gradient block for every parameter.
 * threads: the net's own worker threads for its matrix products (1..
 * NET_MAX_THREADS; 0 = one per online core). Results do not depend on it
 * (blas.h). Every tensor the architecture names is found and its shape
 * checked before the activations are allocated. */
enum status net_create(const struct modelfile *mf, int max_batch,
		       int want_param_grads, int threads, struct net **out,
		       char *err);
void net_free(struct net *n);

const struct net_info *net_get_info(const struct net *n);
void net_layer(const struct net *n, int i, struct net_layer_info *li);
/* The graph name of tensor t: "input" for NET_INPUT, else node t's id
 * (owned by the net). */
const char *net_tensor_id(const struct net *n, int t);

/* x: (batch, C, H, W) pixels. Returns the output rows (batch, n_classes),
 * owned by the net and valid until the next net_forward. The output is the
 * logits unless the model's last layer is a softmax. */
const float *net_forward(struct net *n, const float *x, int batch);

/* Part of a forward, for training a head on cached features: nodes
 * first..last only. With first == 0, x is pixels as for net_forward;
 * otherwise x is the output of node first-1 (batch, its size), which
 * must be the only tensor below `first` that nodes first..last read
 * (net_cut_size). Returns node last's output, owned by the net. A
 * net_backward after a forward that ran to the last node stops at
 * `first` when net_set_trainable_from(first) and no pixel gradient. */
const float *net_forward_range(struct net *n, const float *x, int batch,
			       int first, int last);
/* Values per image of node cut-1's output when nodes cut.. read no other
 * tensor below cut (a clean cut of the graph), else 0. cut in
 * 1..n_layers-1. */
size_t net_cut_size(const struct net *n, int cut);

/* The decisions behind the last forward's gradient, for tools that
 * compare them with a reference (tests/grad_dump): node i's output
 * (batch rows of its size) when the net keeps it for backward - the
 * activations (ReLU and the like, softmax) - else NULL; and a max-pool's
 * recorded argmax (batch rows of C*OH*OW, each the flat index h*W+w in
 * its channel plane that receives the gradient), else NULL. Valid until
 * the next forward. */
const float *net_node_output(const struct net *n, int i);
const int32_t *net_pool_argmax(const struct net *n, int i);

/* Backward from dout (batch, n_classes) = dLoss/doutput of the last forward.
 * Writes dx (batch, C, H, W) in pixel units when dx is non-NULL. Accumulates
 * parameter gradients when the net was created with want_param_grads and
 * net_zero_grads decides when they reset. Records gradient norms. */
void net_backward(struct net *n, const float *dout, float *dx);

/* L2 norm of the gradient at each node's input from the last backward,
 * over the whole batch: norms[i] for i in 0..n_layers-1 is the gradient
 * w.r.t. the input of node i - for a node with several inputs, the norm
 * over all of them (each distinct input tensor counted once) - and
 * norms[n_layers] w.r.t. the network output. In a chain, norms[i] is the
 * gradient between layer i-1 and layer i. The pixel gradient norm is
 * separate, below. */
const double *net_grad_norms(const struct net *n);
double net_pixel_grad_norm(const struct net *n);
/* The same for image b (0 <= b < the batch of the last backward) alone. */
const double *net_grad_norms_image(const struct net *n, int b);
double net_pixel_grad_norm_image(const struct net *n, int b);

/* Parameters and their gradients as one block each (llm.c style). */
float *net_params(struct net *n, size_t *count);
float *net_param_grads(struct net *n, size_t *count);
void net_zero_grads(struct net *n);

/* One layer's parameters and gradients (pointers into the blocks above;
 * NULL/0 where the layer has none or gradients were not requested). */
struct net_param_view {
	float *w, *b;		/* weights, bias */
	float *dw, *db;		/* their gradients */
	size_t nw, nb;
};
void net_layer_params(struct net *n, int i, struct net_param_view *v);

/* Fine-tuning: only nodes with index >= first accumulate parameter
 * gradients, and backward stops below `first` unless the input gradient is
 * asked for. 0 (the default) trains everything. */
void net_set_trainable_from(struct net *n, int first);

/* Training mode: dropout layers drop with their p, drawing masks from seed.
 * Needs a net created with want_param_grads. Off by default (inference:
 * dropout is the identity). */
void net_set_training(struct net *n, int on, unsigned long long seed);

/* How 3x3 stride-1 convolutions run: im2col + GEMM (the reference, and
 * the only path for other shapes), Winograd F(2x2,3x3)/F(4x4,3x3) where it
 * applies, or auto (Winograd where it is measured to be faster). Winograd
 * keeps transformed weights, computed here from the current parameters, so
 * training nets (want_param_grads) default to im2col; call again after
 * changing parameters. Allocates outside any step. */
enum net_conv_mode { NET_CONV_AUTO, NET_CONV_IM2COL, NET_CONV_WINOGRAD };
enum status net_set_conv_mode(struct net *n, enum net_conv_mode mode,
			      char *err);
/* Convolution layers that run Winograd now. */
int net_winograd_layers(const struct net *n);

/* Per-layer timing for `advex bench --layers`: while on, every forward and
 * backward adds each layer's wall time (ms) to 3 x n_layers accumulators:
 * [i] forward, [n_layers + i] backward, [2 n_layers + i] the gradient-norm
 * pass after it. Turning it on allocates (outside any step) and zeroes. */
enum status net_set_profile(struct net *n, int on);
const double *net_profile(const struct net *n);	/* NULL when off */

/* Write the network as an advex model file (batch norms stay folded into
 * their conv/dense), through a temporary name and a rename. extra_keys /
 * extra_values: n_extra more metadata pairs (e.g. training state). */
enum status net_save(const struct net *n, const char *path,
		     const char *const *extra_keys,
		     const char *const *extra_values, int n_extra, char *err);

#endif
