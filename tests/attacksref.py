"""attacksref.py - PyTorch reference implementations of APGD (CE, DLR) and
the Square attack (Linf and L2), written from the papers for test_attacks_ref.py
and bench/attacks_bench.py, independently of advex's C code.

  Rng(seed)                 core/rng.c's generator (xoroshiro128+ seeded by
                            splitmix64; Box-Muller normals), in Python
  restart_seed(seed, r)     attack_restart_seed
  Model(path)               an advex model file run by PyTorch (graphref),
                            float64; f(x) -> logits for (N,3,H,W)
  apgd(f, x0, y, ...)       APGD, one image; returns iterates, losses, best
  square(f, x0, y, ...)     Square Linf, one image
  square_l2(f, x0, y, ...)  Square L2, one image
  demo_images(lo, hi)       the bundled demo data's test images, float32

Conventions that make runs comparable draw for draw (see the C files'
headers): APGD's start t uses n draws (uniform: 2u-1; L2: normals) twice
(the first pass for its norm); Square's draws: C*W stripe signs, then per
query row, column, and C signs per try; Square L2's: per start block
(row-major) a transpose draw and C signs, then per query window 1's row
and column, window 2's row and column, a transpose draw and C signs. Iterates are stored in float32
after each move, as advex stores them; everything else is float64.
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F

import graphref
import torchref as T

MASK = (1 << 64) - 1


class Rng:
    def __init__(self, seed):
        self.x = seed & MASK
        self.s0 = self._splitmix()
        self.s1 = self._splitmix()
        if not self.s0 and not self.s1:
            self.s1 = 1

    def _splitmix(self):
        self.x = (self.x + 0x9e3779b97f4a7c15) & MASK
        z = self.x
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & MASK
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & MASK
        return z ^ (z >> 31)

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK

    def next(self):
        s0, s1 = self.s0, self.s1
        out = (s0 + s1) & MASK
        s1 ^= s0
        self.s0 = self._rotl(s0, 24) ^ s1 ^ ((s1 << 16) & MASK)
        self.s1 = self._rotl(s1, 37)
        return out

    def uniform(self):
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)

    def normal(self):
        u1, u2 = self.uniform(), self.uniform()
        u1 = max(u1, 1e-300)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)

    def state(self):
        return (self.s0, self.s1)

    def set_state(self, st):
        self.s0, self.s1 = st


def restart_seed(seed, r):
    return (seed + r * 0x9e3779b97f4a7c15) & MASK


class Model:
    """An advex model file in PyTorch float64 (graphref's ops); dtype
    float32 is bench/attacks_torch.py's."""

    def __init__(self, path, dtype=torch.float64):
        self.mf = graphref.ModelFile(path)
        mf = self.mf
        self.dtype = dtype
        self.mean = torch.tensor(mf.mean, dtype=dtype).view(1, -1, 1, 1)
        self.std = torch.tensor(mf.std, dtype=dtype).view(1, -1, 1, 1)

    def __call__(self, x):
        mf = self.mf
        h = x.to(self.dtype) * mf.scale
        if mf.bgr:
            h = h[:, [2, 1, 0]]
        vals = {"input": (h - self.mean) / self.std}
        for n in mf.nodes:
            vals[n["name"]] = mf._node(n, [vals[i] for i in n["inputs"]])
        return vals[mf.nodes[-1]["name"]]


def f32(x):
    return x.float().double()


def demo_images(lo, hi):
    """Demo test images lo..hi-1 as float32 (N,3,96,96) in [0,1] and their
    labels (STL-10 binary layout: each channel runs down the columns)."""
    d = T.demo_data_dir()
    raw = np.fromfile(os.path.join(d, "test_X.bin"), dtype=np.uint8,
                      count=hi * 3 * 96 * 96)
    x = raw.reshape(hi, 3, 96, 96)[lo:hi].transpose(0, 1, 3, 2)
    y = np.fromfile(os.path.join(d, "test_y.bin"), dtype=np.uint8, count=hi)[lo:hi]
    return np.ascontiguousarray(x).astype(np.float32) / np.float32(255.0), y.astype(int) - 1


# ---------------------------------------------------------------------------
# losses (maximised by APGD; Square minimises its own)

def ce(z, y):
    """Cross-entropy; when y is the top output as log1p(sum_{i!=y}
    exp(z_i - z_y)), whose autograd has no p_y - 1 cancellation (advex's
    ce_exact in core/attack_apgd.c)."""
    if int(z[0].argmax()) == y and int((z[0] == z[0, y]).sum()) == 1:
        others = torch.cat([z[0, :y], z[0, y + 1:]])
        return torch.log1p(torch.exp(others - z[0, y]).sum())
    return F.cross_entropy(z, torch.tensor([y]), reduction="sum")


def dlr(z, y):
    zs, ind = z[0].sort()
    other = zs[-2] if int(ind[-1]) == y else zs[-1]
    return -(z[0, y] - other) / (zs[-1] - zs[-3] + 1e-12)


def dlr_targeted(z, y, t):
    zs, _ = z[0].sort()
    return -(z[0, y] - z[0, t]) / (zs[-1] - 0.5 * (zs[-3] + zs[-4]) + 1e-12)


def apgd_loss(kind, z, y, target):
    if kind == "apgd-ce":
        return ce(z, y) if target < 0 else -ce(z, target)
    return dlr(z, y) if target < 0 else dlr_targeted(z, y, target)


def success(z, y, target):
    p = int(z.argmax())
    return p == target if target >= 0 else p != y


# ---------------------------------------------------------------------------
# APGD (Croce & Hein 2020, Algorithm 1; the checkpoints as AutoAttack's code)

def project(x, x0, eps, norm):
    if norm == "linf":
        return torch.min(torch.max(x, x0 - eps), x0 + eps).clamp(0, 1)
    d = x - x0
    n = d.norm()
    return (x0 + d / (n + 1e-12) * torch.clamp(n, max=eps)).clamp(0, 1)


def apgd_start(x0, eps, norm, rng):
    n = x0.numel()
    draw = (lambda: 2.0 * rng.uniform() - 1.0) if norm == "linf" else rng.normal
    t = torch.tensor([draw() for _ in range(n)], dtype=torch.float64).view_as(x0)
    m = t.abs().max() if norm == "linf" else t.norm()
    return f32((x0 + eps * t / (m + 1e-12)).clamp(0, 1))


def apgd(f, x0, y, kind="apgd-ce", norm="linf", eps=8 / 255, iters=100, seed=0,
         target=-1, restarts=1, first_segment_only=False, step0=None):
    """x0 (1,3,H,W) float64 holding float32 values. Returns dict: xs (the
    points evaluated, in order), losses, success (any point), best (the
    returned point: a successful one if any, else the highest loss)."""
    xs, losses = [], []
    best = None     # (success, score, x)

    def evaluate(x):
        nonlocal best
        x = x.detach().requires_grad_(True)
        z = f(x)
        loss = apgd_loss(kind, z, y, target)
        g, = torch.autograd.grad(loss, [x])
        s = success(z.detach(), y, target)
        xs.append(x.detach().clone())
        losses.append(float(loss))
        if best is None or (s, float(loss)) > (best[0], best[1]):
            best = (s, float(loss), x.detach().clone())
        return float(loss), g.detach()

    n2 = max(int(0.22 * iters), 1)
    nmin = max(int(0.06 * iters), 1)
    decr = max(int(0.03 * iters), 1)
    for r in range(restarts):
        rng = Rng(restart_seed(seed, r))
        x = apgd_start(x0, eps, norm, rng)
        loss, g = evaluate(x)
        x_best, g_best, loss_best = x.clone(), g.clone(), loss
        loss_best_last, reduced_last, prev = loss_best, True, loss
        step = 2.0 * eps if step0 is None else step0
        k, count, n_incr = n2, 0, 0
        x_old = x.clone()
        for i in range(iters):
            a = 1.0 if i == 0 else 0.75
            grad2 = x - x_old
            x_old = x.clone()
            if norm == "linf":
                z1 = project(f32(x + step * torch.sign(g)), x0, eps, norm)
                z1 = f32(z1)
                x = f32(project(x + (z1 - x) * a + grad2 * (1 - a), x0, eps, norm))
            else:
                z1 = f32(x + step * g / (g.norm() + 1e-12))
                z1 = f32(project(z1, x0, eps, norm))
                x = f32(project(f32(x + (z1 - x) * a + grad2 * (1 - a)), x0, eps, norm))
            loss, g = evaluate(x)
            n_incr += loss > prev
            prev = loss
            if loss > loss_best:
                x_best, g_best, loss_best = x.clone(), g.clone(), loss
            count += 1
            if count == k:
                if first_segment_only:
                    return {"xs": xs, "losses": losses}
                osc = n_incr <= 0.75 * k or (not reduced_last and loss_best_last >= loss_best)
                reduced_last, loss_best_last = osc, loss_best
                if osc:
                    step /= 2.0
                    x, g = x_best.clone(), g_best.clone()
                k = max(k - decr, nmin)
                count, n_incr = 0, 0
        if best[0]:
            break
    return {"xs": xs, "losses": losses, "success": best[0], "best": best[2]}


# ---------------------------------------------------------------------------
# Square attack, Linf (Andriushchenko et al. 2020, Algorithm 1 and the
# authors' code: vertical-stripe start, p_selection, margin loss)

def p_selection(it, n_iters, p_init=0.05):
    it = int(it / n_iters * 10000)
    for j, (lo, hi) in enumerate([(10, 50), (50, 200), (200, 500), (500, 1000),
                                  (1000, 2000), (2000, 4000), (4000, 6000),
                                  (6000, 8000), (8000, 10000)]):
        if lo < it <= hi:
            return p_init / 2 ** (j + 1)
    return p_init


def square_loss(z, y, target):
    if target >= 0:
        return float(F.cross_entropy(z, torch.tensor([target])))
    zo = z[0].clone()
    zo[y] = -float("inf")
    return float(z[0, y] - zo.max())


def square(f, x0, y, eps=8 / 255, queries=100, seed=0, target=-1):
    """Returns dict: success, queries used, best (the accepted point),
    losses (per query)."""
    c, h, w = x0.shape[1:]
    rng = Rng(seed)
    x = x0.clone()
    for ch in range(c):
        for col in range(w):
            d = -eps if rng.uniform() < 0.5 else eps
            x[0, ch, :, col] = x0[0, ch, :, col] + d
    x = f32(x.clamp(0, 1))
    losses = []
    with torch.no_grad():
        z = f(x)
    loss_best, x_best = square_loss(z, y, target), x
    losses.append(loss_best)
    ok = success(z, y, target)
    used = 1
    it = 0
    while not ok and used < queries:
        p = p_selection(it, queries)
        s = min(max(int(round(math.sqrt(p * c * h * w / c))), 1), h - 1)
        r0 = int(rng.uniform() * (h - s))
        c0 = int(rng.uniform() * (w - s))
        for _ in range(1000):
            cand = x_best.clone()
            for ch in range(c):
                d = -eps if rng.uniform() < 0.5 else eps
                cand[0, ch, r0:r0 + s, c0:c0 + s] = x0[0, ch, r0:r0 + s, c0:c0 + s] + d
            cand = f32(cand.clamp(0, 1))
            if (cand - x_best).abs().max() >= 1e-7:
                break
        it += 1
        with torch.no_grad():
            z = f(cand)
        loss = square_loss(z, y, target)
        losses.append(loss)
        used += 1
        if loss < loss_best:
            loss_best, x_best = loss, cand
            ok = success(z, y, target)
    return {"success": ok, "queries": used, "best": x_best, "losses": losses}


# ---------------------------------------------------------------------------
# Square attack, L2 (Andriushchenko et al. 2020, Algorithm 3, written as the
# authors' square_attack_l2 and its helpers pseudo_gaussian_pert_rectangles
# and meta_pseudo_gaussian_pert, with their slicing loops)

def _rectangle(x, y):
    delta = torch.zeros(x, y, dtype=torch.float64)
    x_c, y_c = x // 2 + 1, y // 2 + 1
    c2 = [x_c - 1, y_c - 1]
    for k in range(max(x_c, y_c)):
        delta[max(c2[0], 0):min(c2[0] + 2 * k + 1, x),
              max(0, c2[1]):min(c2[1] + 2 * k + 1, y)] += 1.0 / (k + 1) ** 2
        c2[0] -= 1
        c2[1] -= 1
    return delta / (delta ** 2).sum().sqrt()


def _meta(s, rng):
    delta = torch.zeros(s, s, dtype=torch.float64)
    if s // 2:
        delta[:s // 2] = _rectangle(s // 2, s)
    delta[s // 2:] = -_rectangle(s - s // 2, s)
    delta /= (delta ** 2).sum().sqrt()
    if rng.uniform() > 0.5:
        delta = delta.t()
    return delta


def square_l2(f, x0, y, eps=0.5, queries=100, seed=0, target=-1, p_init=0.1,
              keep_points=0, clip=True):
    """Returns dict: success, queries used, best (the accepted point),
    losses (per query), points (the first keep_points points evaluated).
    clip False (a control): no clip to [0,1]."""
    def onto(v):
        return f32(v.clamp(0, 1) if clip else v)
    c, h, w = x0.shape[1:]
    rng = Rng(seed)
    delta = torch.zeros_like(x0)
    s = max(h // 5, 1)
    sp = (h - s * 5) // 2
    for bh in range(h // s):
        for bw in range(w // s):
            r0, c0 = sp + bh * s, sp + bw * s
            m = _meta(s, rng)
            for ch in range(c):
                sg = -1.0 if rng.uniform() < 0.5 else 1.0
                blk = delta[0, ch, r0:r0 + s, c0:c0 + s]
                blk += (sg * m)[:blk.shape[0], :blk.shape[1]]
    x_best = onto(x0 + delta / delta.norm() * eps)
    points = [x_best]
    with torch.no_grad():
        z = f(x_best)
    loss_min = square_loss(z, y, target)
    losses = [loss_min]
    ok = success(z, y, target)
    used = 1
    for it in range(queries - 1):
        if ok:
            break
        d = x_best - x0
        p = p_selection(it, queries, p_init)
        s = max(int(round(math.sqrt(p * c * h * w / c))), 3)
        if s % 2 == 0:
            s += 1
        s = max(min(s, min(h, w) - 1), 1)
        r1 = int(rng.uniform() * (h - s))
        c1 = int(rng.uniform() * (w - s))
        r2 = int(rng.uniform() * (h - s))
        c2 = int(rng.uniform() * (w - s))
        mask1 = torch.zeros_like(x0)
        mask1[..., r1:r1 + s, c1:c1 + s] = 1.0
        mask2 = torch.zeros_like(x0)
        mask2[..., r2:r2 + s, c2:c2 + s] = 1.0
        n_w1 = ((d * mask1) ** 2).sum(dim=(2, 3), keepdim=True).sqrt()
        n_img = d.norm()
        n_union = ((d * torch.max(mask1, mask2)) ** 2).sum(dim=(2, 3), keepdim=True).sqrt()
        new = _meta(s, rng).view(1, 1, s, s).repeat(1, c, 1, 1)
        for ch in range(c):
            new[0, ch] *= -1.0 if rng.uniform() < 0.5 else 1.0
        new = new + d[..., r1:r1 + s, c1:c1 + s] / (1e-10 + n_w1)
        new = new / (new ** 2).sum(dim=(2, 3), keepdim=True).sqrt() * \
            (max(eps ** 2 - float(n_img) ** 2, 0.0) / c + n_union ** 2).sqrt()
        d = d.clone()
        d[..., r2:r2 + s, c2:c2 + s] = 0.0
        d[..., r1:r1 + s, c1:c1 + s] = new
        cand = onto(x0 + d / d.norm() * eps)
        if len(points) < keep_points:
            points.append(cand)
        with torch.no_grad():
            z = f(cand)
        loss = square_loss(z, y, target)
        losses.append(loss)
        used += 1
        if loss < loss_min:
            loss_min, x_best = loss, cand
            ok = success(z, y, target)
    return {"success": ok, "queries": used, "best": x_best, "losses": losses,
            "points": points}


# ---------------------------------------------------------------------------
# DeepFool (Moosavi-Dezfooli et al. 2016), untargeted, L2 and Linf, with
# foolbox's candidates (the 10 highest other outputs) and overshoot 0.02

def deepfool(f, x0, y, norm="l2", iters=50, overshoot=0.02, candidates=10):
    """Returns dict: success, iterations (updates made), x (the last
    iterate), pert_l2, pert_linf."""
    r_tot = torch.zeros_like(x0)
    x = x0.clone()
    done = 0
    for it in range(iters + 1):
        xr = x.detach().requires_grad_(True)
        z = f(xr)[0]
        if int(z.argmax()) != y or it == iters:
            break
        order = [int(i) for i in torch.argsort(z.detach(), descending=True) if int(i) != y]
        best = None
        for k in order[:candidates]:
            w, = torch.autograd.grad(z[k] - z[y], [xr], retain_graph=True)
            fk = float(z[k] - z[y])
            wn = float(w.norm()) if norm == "l2" else float(w.abs().sum())
            if not wn > 0:
                continue
            if best is None or abs(fk) / wn < best[0]:
                best = (abs(fk) / wn, fk, wn, w)
        if best is None:
            break
        _, fk, wn, w = best
        if norm == "l2":
            r_tot = r_tot + (abs(fk) + 1e-4) / wn ** 2 * w
        else:
            r_tot = r_tot + (abs(fk) + 1e-4) / wn * torch.sign(w)
        r_tot = f32(r_tot)
        x = f32((x0 + (1 + overshoot) * r_tot).clamp(0, 1))
        done += 1
    with torch.no_grad():
        ok = int(f(x)[0].argmax()) != y
    d = (x - x0)[0]
    return {"success": ok, "iterations": done, "x": x, "pert_l2": float(d.norm()),
            "pert_linf": float(d.abs().max())}


# ---------------------------------------------------------------------------
# C&W L2 (Carlini & Wagner 2017): tanh variables, Adam (lr 0.01), binary
# search on c from 1e-3 (the authors' update rule), no early abort; w, m, v
# stored in float32 as advex stores them

def cw(f, x0, y, steps=10, binary_steps=9, kappa=0.0, target=-1):
    """Returns dict: success, best (the successful iterate with the smallest
    L2 perturbation, or None), pert_l2, evaluations."""
    x0d = x0.double()
    w0 = f32(torch.atanh((2 * x0d - 1) * 0.999999))
    c, lo, hi = 1e-3, 0.0, None
    best, best_l2, evals, losses = None, float("inf"), 0, []
    for b in range(binary_steps):
        w = w0.clone()
        m = torch.zeros_like(w)
        v = torch.zeros_like(w)
        found = False
        for t in range(steps + 1):
            x = f32(0.5 * (torch.tanh(w) + 1))
            xr = x.clone().requires_grad_(True)
            z = f(xr)[0]
            evals += 1
            cls = target if target >= 0 else y
            zo = z.clone()
            zo[cls] = -float("inf")
            o = int(zo.argmax())
            margin = (z[o] - z[cls]) if target >= 0 else (z[cls] - z[o])
            fm = torch.clamp(margin, min=-kappa)
            gz, = torch.autograd.grad(c * fm, [xr])
            losses.append(float(((x - x0d) ** 2).sum() + c * fm))
            ok = int(z.argmax()) == target if target >= 0 else int(z.argmax()) != y
            l2 = float((x - x0d).norm())
            if ok:
                found = True
                if l2 < best_l2:
                    best, best_l2 = x.clone(), l2
            if t == steps:
                break
            th = torch.tanh(w)
            g = (2 * (x - x0d) + gz) * 0.5 * (1 - th * th)
            m = f32(0.9 * m + 0.1 * g)
            v = f32(0.999 * v + 0.001 * g * g)
            mh = m / (1 - 0.9 ** (t + 1))
            vh = v / (1 - 0.999 ** (t + 1))
            w = f32(w - 0.01 * mh / (torch.sqrt(vh) + 1e-8))
        if found:
            hi = c if hi is None else min(hi, c)
        else:
            lo = max(lo, c)
        c = 0.5 * (lo + hi) if hi is not None else c * 10
    return {"success": best is not None, "best": best, "pert_l2": best_l2, "evaluations": evals,
            "losses": losses}
