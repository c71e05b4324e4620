"""attacks_torch.py - advex's attacks written for PyTorch as a tuned user
would write them: float32, batched (B images per forward and backward),
the same algorithm and schedule as advex's (the top comments of
core/attack.c, core/attack_apgd.c, core/attack_square.c,
core/attack_deepfool.c and core/attack_cw.c), for bench/attacks_bench.py.
Not tests/attacksref.py (float64, one image at a time, advex's random draws
replayed): this one is an opponent for speed, not an oracle.

  Model(path)             an advex model file as a float32 PyTorch graph
                          (tests/graphref.py's ops, weights converted once)
  stl10(dir, lo, hi)      images lo..hi-1 of an STL-10 binary test split
                          and their labels (0-based)
  run(kind, f, x, y, ...) attack every image of x in batches of `batch`;
                          returns the number of successes

Each image is attacked away from its label y (advex's sweep attacks the
data's labels). Every attack ends, as advex's sweep does, with one more
forward + backward at the returned point (advex evaluates each run's end
point with its gradient, for the diagnosis).

Where this departs from advex (random draws aside: torch's generator, not
core/rng's):
  - the batch is a fixed chunk of images: an image that stops early (Square
    at its first success, DeepFool at the first misclassified iterate)
    leaves the chunk smaller, where advex's sweep refills its slot with the
    next image;
  - DeepFool takes the candidates' gradients from one forward (B images)
    and one backward per candidate; advex runs a batch-1 forward and the
    backwards per image before its batched evaluation;
  - the losses are computed in double from the float32 logits, as advex
    computes them (cross-entropy in float32 has a zero gradient on a
    confident model: BIM would stall where advex's does not).
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import attacksref  # noqa: E402  (its Model, in float32 here)
from attacksref import p_selection  # noqa: E402  (the paper's schedule, one copy)

KINDS = ("bim", "pgd", "apgd-ce", "apgd-dlr", "square", "cw", "deepfool")


class Model(attacksref.Model):
    """An advex model file run by PyTorch in float32: graphref's ops on
    weights converted to float32 tensors once."""

    def __init__(self, path):
        super().__init__(path, torch.float32)
        mf = self.mf
        cache = {k: torch.from_numpy(np.array(v, dtype=np.float32))
                 for k, v in mf.tensors.items()}
        mf.tensors = None
        mf._t = cache.__getitem__


def stl10(d, lo, hi, side=96):
    """STL-10 binary test images lo..hi-1 as float32 (N,3,H,W) in [0,1]
    (each channel runs down the columns) and 0-based labels."""
    n = 3 * side * side
    raw = np.fromfile(os.path.join(d, "test_X.bin"), dtype=np.uint8, count=hi * n)
    x = raw.reshape(hi, 3, side, side)[lo:hi].transpose(0, 1, 3, 2)
    y = np.fromfile(os.path.join(d, "test_y.bin"), dtype=np.uint8, count=hi)[lo:hi]
    x = torch.from_numpy(np.ascontiguousarray(x).astype(np.float32) / np.float32(255.0))
    return x, torch.from_numpy(y.astype(np.int64) - 1)


# ---------------------------------------------------------------------------
# shared pieces

def margin(z, y):
    """z_y - max_{i!=y} z_i per row, in double."""
    z = z.double()
    zo = z.clone()
    zo[torch.arange(len(y)), y] = -float("inf")
    return z.gather(1, y[:, None])[:, 0] - zo.max(1).values


def dlr(z, y):
    """-(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3 + 1e-12) per row."""
    z = z.double()
    zs, ind = z.sort(1, descending=True)
    other = torch.where(ind[:, 0] == y, zs[:, 1], zs[:, 0])
    return -(z.gather(1, y[:, None])[:, 0] - other) / (zs[:, 0] - zs[:, 2] + 1e-12)


def ce(z, y):
    """Cross-entropy on the float32 logits computed in double, as advex's
    loss_ce: p_y - 1 does not round to 0 on a confident model (in float32
    the gradient vanishes there and BIM stalls)."""
    return F.cross_entropy(z.double(), y, reduction="none")


def ce_exact(z, y):
    """APGD's cross-entropy, log1p(sum_{i!=y} exp(z_i - z_y)) in double
    (advex's ce_exact): its gradient has no p_y - 1 cancellation."""
    d = z.double() - z.double().gather(1, y[:, None])
    d[torch.arange(len(y)), y] = -float("inf")
    return F.softplus(d.logsumexp(1))


def grad_of(f, x, y, loss):
    """Per-image losses, their input gradient and the success mask at x."""
    x = x.detach().requires_grad_(True)
    z = f(x)
    l = loss(z, y)
    g, = torch.autograd.grad(l.sum(), [x])
    return l.detach(), g, z.detach().argmax(1) != y


def project(x, x0, eps):
    return torch.min(torch.max(x, x0 - eps), x0 + eps).clamp_(0, 1)


def per_image(v):
    return v.view(-1, 1, 1, 1)


# ---------------------------------------------------------------------------
# BIM (I-FGSM) and PGD: iters signed steps of alpha on the cross-entropy,
# projected on the Linf ball and [0,1]; PGD from a uniform point of the
# ball. The outcome is the last iterate.

def bim(f, x0, y, eps, iters, alpha, random_start=False, gen=None):
    x = x0.clone()
    if random_start:
        u = torch.rand(x0.shape, generator=gen)
        x = (x0 + eps * (2 * u - 1)).clamp_(0, 1)
    for _ in range(iters):
        _, g, _ = grad_of(f, x, y, ce)
        x = project(x + alpha * g.sign(), x0, eps)
    return grad_of(f, x, y, ce)[2]


# ---------------------------------------------------------------------------
# APGD (Croce & Hein 2020), Linf, one restart: per image its own step size,
# best point and checkpoint decisions; the checkpoints' positions depend on
# iters only, so they are the same for the whole batch.

def apgd(f, x0, y, eps, iters, loss, gen=None):
    t = 2 * torch.rand(x0.shape, generator=gen) - 1
    m = t.abs().flatten(1).max(1).values
    x = (x0 + eps * t / per_image(m + 1e-12)).clamp_(0, 1)
    l, g, ok = grad_of(f, x, y, loss)
    best_ok = ok.clone()
    best_l, best_x = l.clone(), x.clone()           # the returned point
    x_best, g_best, loss_best = x.clone(), g.clone(), l.clone()
    loss_best_last, reduced_last, prev = loss_best.clone(), torch.ones_like(ok), l
    step = torch.full((len(y),), 2.0 * eps)
    n2 = max(int(0.22 * iters), 1)
    nmin = max(int(0.06 * iters), 1)
    decr = max(int(0.03 * iters), 1)
    k, count, n_incr = n2, 0, torch.zeros(len(y))
    x_old = x.clone()
    for i in range(iters):
        a = 1.0 if i == 0 else 0.75
        mom = x - x_old
        x_old = x
        z1 = project(x + per_image(step) * g.sign(), x0, eps)
        x = project(x + a * (z1 - x) + (1 - a) * mom, x0, eps)
        l, g, ok = grad_of(f, x, y, loss)
        # the returned point: a successful one if any, else the highest loss
        better = (ok & ~best_ok) | ((ok == best_ok) & (l > best_l))
        best_ok |= ok
        best_l = torch.where(better, l, best_l)
        best_x[better] = x[better]
        n_incr += (l > prev).float()
        prev = l
        up = l > loss_best
        x_best[up], g_best[up], loss_best[up] = x[up], g[up], l[up]
        count += 1
        if count == k:
            osc = (n_incr <= 0.75 * k) | (~reduced_last & (loss_best_last >= loss_best))
            reduced_last, loss_best_last = osc, loss_best.clone()
            step[osc] /= 2.0
            x = x.clone()
            g = g.clone()
            x[osc], g[osc] = x_best[osc], g_best[osc]
            k = max(k - decr, nmin)
            count, n_incr = 0, torch.zeros(len(y))
    return grad_of(f, best_x, y, loss)[2]


# ---------------------------------------------------------------------------
# Square attack, Linf, untargeted (margin loss, minimised): vertical-stripe
# start, then one window per query and image, accepted when the margin
# falls; an image stops at its first success.

def square(f, x0, y, eps, queries, gen=None):
    b, c, h, w = x0.shape
    sgn = torch.where(torch.rand((b, c, 1, w), generator=gen) < 0.5, -eps, eps)
    x_best = (x0 + sgn).clamp_(0, 1)
    with torch.no_grad():
        z = f(x_best)
    loss_best = margin(z, y)
    ok = z.argmax(1) != y
    rows = torch.arange(h).view(1, 1, h, 1)
    cols = torch.arange(w).view(1, 1, 1, w)
    used, it = 1, 0
    while used < queries and not bool(ok.all()):
        act = (~ok).nonzero()[:, 0]
        n = len(act)
        p = p_selection(it, queries)
        s = min(max(int(round(math.sqrt(p * c * h * w / c))), 1), h - 1)
        r0 = (torch.rand(n, generator=gen) * (h - s)).long().view(n, 1, 1, 1)
        c0 = (torch.rand(n, generator=gen) * (w - s)).long().view(n, 1, 1, 1)
        win = (rows >= r0) & (rows < r0 + s) & (cols >= c0) & (cols < c0 + s)
        xb, xo = x_best[act], x0[act]
        cand = xb
        redo = torch.ones(n, dtype=torch.bool)
        for _ in range(1000):           # new signs until the window changes
            d = torch.where(torch.rand((n, c, 1, 1), generator=gen) < 0.5, -eps, eps)
            new = torch.where(win, (xo + d).clamp(0, 1), xb)
            cand = torch.where(per_image(redo), new, cand)
            redo = (cand - xb).abs().flatten(1).max(1).values < 1e-7
            if not bool(redo.any()):
                break
        it += 1
        with torch.no_grad():
            z = f(cand)
        used += 1
        lc = margin(z, y[act])
        acc = lc < loss_best[act]
        ia = act[acc]
        x_best[ia], loss_best[ia] = cand[acc], lc[acc]
        ok[ia] = z[acc].argmax(1) != y[ia]
    return grad_of(f, x_best, y, ce)[2]


# ---------------------------------------------------------------------------
# DeepFool (Moosavi-Dezfooli et al. 2016), untargeted, Linf or L2, the 10
# highest other outputs as candidates, overshoot 0.02; an image stops at
# its first misclassified iterate or after iters iterations.

def deepfool(f, x0, y, iters, norm="linf", overshoot=0.02, candidates=10):
    r_tot = torch.zeros_like(x0)
    x = x0.clone()
    alive = torch.ones(len(y), dtype=torch.bool)
    for it in range(iters + 1):
        act = alive.nonzero()[:, 0]
        if len(act) == 0:
            break
        xa = x[act].detach().requires_grad_(True)
        z = f(xa)
        ya = y[act]
        still = z.detach().argmax(1) == ya
        alive[act[~still]] = False
        if it == iters or not bool(still.any()):
            break
        zy = z.gather(1, ya[:, None])[:, 0]
        zo = z.detach().clone()
        zo[torch.arange(len(act)), ya] = -float("inf")
        order = zo.argsort(1, descending=True)[:, :min(candidates, z.shape[1] - 1)]
        best_r = torch.full((len(act),), float("inf"))
        best_f = torch.zeros(len(act))
        best_n = torch.ones(len(act))
        best_w = torch.zeros_like(xa)
        for j in range(order.shape[1]):
            fk = z.gather(1, order[:, j:j + 1])[:, 0] - zy
            w, = torch.autograd.grad(fk.sum(), [xa], retain_graph=j + 1 < order.shape[1])
            wn = w.flatten(1).norm(dim=1) if norm == "l2" else w.flatten(1).abs().sum(1)
            r = fk.detach().abs() / wn
            take = (wn > 0) & (r < best_r)
            best_r = torch.where(take, r, best_r)
            best_f = torch.where(take, fk.detach(), best_f)
            best_n = torch.where(take, wn, best_n)
            best_w[take] = w[take]
        mv = still & torch.isfinite(best_r)
        alive[act[~mv]] = False
        if norm == "l2":
            step = per_image((best_f.abs() + 1e-4) / best_n ** 2) * best_w
        else:
            step = per_image((best_f.abs() + 1e-4) / best_n) * best_w.sign()
        ia = act[mv]
        r_tot[ia] = r_tot[ia] + step[mv]
        x[ia] = (x0[ia] + (1 + overshoot) * r_tot[ia]).clamp(0, 1)
    return grad_of(f, x, y, ce)[2]


# ---------------------------------------------------------------------------
# C&W L2 (Carlini & Wagner 2017): x = (tanh(w) + 1) / 2, Adam (lr 0.01) on
# ||x - x0||^2 + c max(margin, -kappa), steps + 1 evaluations per binary
# step, c from 1e-3 by the authors' rule, per image; success: any
# misclassified iterate.

def cw(f, x0, y, steps, binary_steps=9, kappa=0.0):
    b = len(y)
    w0 = torch.atanh((2 * x0 - 1) * 0.999999)
    c = torch.full((b,), 1e-3, dtype=torch.float64)
    lo = torch.zeros(b, dtype=torch.float64)
    hi = torch.full((b,), float("inf"), dtype=torch.float64)
    any_ok = torch.zeros(b, dtype=torch.bool)
    best_x, best_l2 = x0.clone(), torch.full((b,), float("inf"), dtype=torch.float64)
    for _ in range(binary_steps):
        w = w0.clone()
        m = torch.zeros_like(w)
        v = torch.zeros_like(w)
        found = torch.zeros(b, dtype=torch.bool)
        for t in range(steps + 1):
            wr = w.requires_grad_(True)
            x = 0.5 * (torch.tanh(wr) + 1)
            z = f(x)
            fm = torch.clamp(margin(z, y), min=-kappa)
            d2 = ((x - x0) ** 2).flatten(1).double().sum(1)
            g, = torch.autograd.grad((d2 + c * fm).sum(), [wr])
            ok = z.detach().argmax(1) != y
            l2 = d2.detach().sqrt()
            nb = ok & (l2 < best_l2)
            best_x[nb], best_l2[nb] = x.detach()[nb], l2[nb]
            found |= ok
            w = w.detach()
            if t == steps:
                break
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            mh = m / (1 - 0.9 ** (t + 1))
            vh = v / (1 - 0.999 ** (t + 1))
            w = w - 0.01 * mh / (vh.sqrt() + 1e-8)
        any_ok |= found
        hi = torch.where(found, torch.min(hi, c), hi)
        lo = torch.where(found, lo, torch.max(lo, c))
        c = torch.where(torch.isfinite(hi), 0.5 * (lo + hi), c * 10)
    grad_of(f, best_x, y, ce)
    return any_ok


# ---------------------------------------------------------------------------

def attack(kind, f, x0, y, eps, iters, queries, gen, norm="linf", binary_steps=9):
    """One batch: the success mask."""
    if kind in ("bim", "pgd"):
        alpha = min(2.5 * eps / max(iters, 1), eps)
        return bim(f, x0, y, eps, iters, alpha, kind == "pgd", gen)
    if kind == "apgd-ce":
        return apgd(f, x0, y, eps, iters, ce_exact, gen)
    if kind == "apgd-dlr":
        return apgd(f, x0, y, eps, iters, dlr, gen)
    if kind == "square":
        return square(f, x0, y, eps, queries, gen)
    if kind == "deepfool":
        return deepfool(f, x0, y, iters, norm)
    if kind == "cw":
        return cw(f, x0, y, iters, binary_steps)
    raise ValueError("attacks_torch: unknown attack %r" % kind)


def run(kind, f, x, y, batch, eps, iters, queries, seed=0, norm="linf", binary_steps=9):
    """A sweep as advex runs one: the clean prediction of every image, then
    every image attacked, `batch` at a time. Returns the successes."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for i in range(0, len(x), batch):
            f(x[i:i + batch]).argmax(1)
    ok = 0
    for i in range(0, len(x), batch):
        ok += int(attack(kind, f, x[i:i + batch], y[i:i + batch], eps, iters, queries, gen,
                         norm, binary_steps).sum())
    return ok
