/* loss.h - losses on the network output and their gradients.
 * Cross-entropy is computed from the logits through log-softmax, so it is
 * finite and has a gradient even when a probability underflows float32. */
#ifndef ADVEX_LOSS_H
#define ADVEX_LOSS_H

/* z: k logits. Writes probs (k, may be NULL) and dz = dLoss/dz (k, may be
 * NULL). Returns -log softmax(z)[target], in double. */
double loss_ce(int k, const float *z, int target, float *probs, float *dz);

#endif
