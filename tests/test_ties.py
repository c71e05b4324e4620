#!/usr/bin/python3
"""test_ties.py - input gradients that match PyTorch on images made to tie
(issue #12), TAP.

Flat image regions make a convolution's outputs equal in exact arithmetic,
so max-pool windows hold ties, and PyTorch routes their gradient to the
first maximum in scan order. advex's GEMM and Winograd paths round equal
values differently at different positions; core/pool.c finds the ties from
receptive-field signatures (core/fieldsig.h) instead of the float values.
This test writes images full of such ties - constant (grey and black),
two-tone halves, saturated 0/255 regions, horizontal and vertical ramps, a
photo-like image under a flat sky band - and checks, for

  VGG16 (classic and small heads, state_dict import),
  a 4-block CNN with max-pools (conv-ReLU-maxpool x4, ONNX import),
  a small ResNet (residual adds, max-pools after them; ONNX import),

that the input gradient of cross-entropy toward class 0 is within 1e-3
relative L2 of PyTorch float32 on every image, with every path: --conv
im2col, winograd and auto, 1 and 2 threads, batch 1 and 8 (tests/grad_dump
runs the images through net_forward/net_backward BATCH at a time). No
decision is taken advex's way: the reference is PyTorch's gradient as it
is.

Control: the same comparison applied to PyTorch's own gradient with one
tie routed to the wrong element (the tied window whose gradient is
largest) must fail it, so a single misrouted tie cannot pass.

Environment (set by `make check`): GRAD_DUMP, ADVEX_IMPORT, ADVEX_SRCDIR.
Without torch/onnx the test is skipped, unless CI is set.
"""

import copy
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchref as T  # noqa: E402

tap = T.Tap()
T.require_torch(tap, need_onnx=True)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(2)

GRAD_TOL = 1e-3
EPS32 = 2.0 ** -24
HW = 96
TARGET = 0
PATHS = [(conv, threads, batch) for conv in ("im2col", "winograd", "auto")
         for threads in (1, 2) for batch in (1, 8)]
TMP = tempfile.mkdtemp(prefix="advex-ties-test.")


def tie_images():
    """name -> uint8 HxWx3; eight images, so that batch 8 is one full batch."""
    h = w = HW
    yy, xx = np.mgrid[0:h, 0:w]
    im = {}
    im["constant-128"] = np.full((h, w, 3), 128, np.uint8)
    im["black"] = np.zeros((h, w, 3), np.uint8)
    a = np.full((h, w, 3), 128, np.uint8)
    a[:, w // 2:] = 200
    im["two-tone"] = a
    a = np.zeros((h, w, 3), np.uint8)
    a[h // 2:] = 255
    im["saturated-halves"] = a
    a = np.full((h, w, 3), 90, np.uint8)
    a[10:50, 20:70] = 255
    a[60:90, 5:40] = 0
    a[60:90, 60:90, 1] = 255
    im["saturated-blocks"] = a
    im["hramp"] = np.repeat(np.round(xx * 255.0 / (w - 1)).astype(np.uint8)[..., None], 3, 2)
    im["vramp"] = np.repeat(np.round(yy * 255.0 / (h - 1)).astype(np.uint8)[..., None], 3, 2)
    a = T.test_image(h, w, seed=5)
    a[:36] = (135, 180, 230)        # sky
    im["sky-band"] = a
    return im


def photo_images():
    """name -> uint8 HxWx3: eight photo-like images (torchref.test_image:
    smooth shapes and pixel noise) with what photographs add - a flat sky
    band of its own height and colour, and clipped highlights and shadows
    (0 and 255 regions) - for how often near-ties occur there."""
    im = {}
    for k in range(8):
        rng = np.random.RandomState(100 + k)
        a = T.test_image(HW, HW, seed=100 + k).astype(np.int32)
        a = np.clip((a - 128) * rng.uniform(1.2, 1.8) + 128, 0, 255)   # clipping
        band = rng.randint(0, HW // 2)
        a[:band] = rng.randint(120, 256, 3)                              # sky
        im["photo%d" % k] = a.astype(np.uint8)
    return im


def pixels(img):
    return np.ascontiguousarray(np.transpose(img, (2, 0, 1))).astype(np.float32) / \
        np.float32(255.0)


class CNN4(nn.Module):
    """4 blocks of conv3x3-ReLU-maxpool2 (96 -> 6), flatten, linear."""

    def __init__(self, seed):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        chans = [3, 32, 64, 128, 128]
        layers = []
        for i in range(4):
            conv = nn.Conv2d(chans[i], chans[i + 1], 3, padding=1)
            std = (2.0 / (chans[i + 1] * 9)) ** 0.5
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * std)
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen) * 0.05)
            layers += [conv, nn.ReLU(), nn.MaxPool2d(2, 2)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(128 * 6 * 6, 10))
        with torch.no_grad():
            self.classifier[0].weight.copy_(
                torch.randn(self.classifier[0].weight.shape, generator=gen) * 0.02)
            self.classifier[0].bias.zero_()

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class Block(nn.Module):
    def __init__(self, c, gen):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)
        with torch.no_grad():
            for conv in (self.c1, self.c2):
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) *
                                  (1.0 / (c * 9)) ** 0.5)
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen) * 0.05)

    def forward(self, x):
        return F.relu(x + self.c2(F.relu(self.c1(x))))


class ResNetSmall(nn.Module):
    """stem conv-ReLU-maxpool, two residual blocks with max-pools, head."""

    def __init__(self, seed):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        with torch.no_grad():
            self.stem.weight.copy_(torch.randn(self.stem.weight.shape, generator=gen) * 0.27)
            self.stem.bias.copy_(torch.randn(32, generator=gen) * 0.05)
        self.pool = nn.MaxPool2d(2)
        self.b1 = Block(32, gen)
        self.b2 = Block(32, gen)
        self.fc = nn.Linear(32 * 12 * 12, 10)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(self.fc.weight.shape, generator=gen) * 0.02)
            self.fc.bias.zero_()

    def forward(self, x):
        x = self.pool(F.relu(self.stem(x)))
        x = self.pool(self.b1(x))
        x = self.pool(self.b2(x))
        return self.fc(torch.flatten(x, 1))


def export_onnx(model, name):
    f = os.path.join(TMP, name + ".onnx")
    torch.onnx.export(model, torch.zeros(1, 3, HW, HW), f, opset_version=13,
                      input_names=["x"], output_names=["logits"])
    return f


def torch_grads(model, mean, std, xs, dtype=torch.float32):
    """Input gradients (N,3,H,W) of CE toward TARGET, one image at a time."""
    out = []
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1).to(dtype)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1).to(dtype)
    for x in xs:
        x = torch.from_numpy(x[None].copy()).to(dtype).requires_grad_(True)
        z = model((x - m) / s)
        F.cross_entropy(z, torch.tensor([TARGET])).backward()
        out.append(x.grad.numpy()[0].astype(np.float32))
    return np.stack(out)


def tie_counts(model, mean, std, xs):
    """Per image: the max-pool windows (all pools, all channels) whose
    maximum is tied with another element in float64, i.e. in exact
    arithmetic - what the rule has to get right."""
    m64 = copy.deepcopy(model).double()
    pools = [mod for mod in m64.modules() if isinstance(mod, nn.MaxPool2d)]
    counts = []
    for x in xs:
        n = [0]

        def hook(mod, inp, out):
            a = inp[0][0]
            c, hh, ww = a.shape
            win = a[:, :hh // 2 * 2, :ww // 2 * 2].reshape(c, hh // 2, 2, ww // 2, 2)
            mx = win.amax(dim=(2, 4))
            n[0] += int(((win == mx[:, :, None, :, None]).sum(dim=(2, 4)) > 1).sum())
        hs = [p.register_forward_hook(hook) for p in pools]
        m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1).double()
        s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1).double()
        with torch.no_grad():
            m64((torch.from_numpy(x[None]).double() - m) / s)
        for h in hs:
            h.remove()
        counts.append(n[0])
    return counts


def grad_dump(mfile, conv, threads, batch, xs):
    """advex's gradients (N,3,H,W), its decisions per image ({node: relu
    mask or pool argmax}), and what ran ("winograd convs K"); or None and
    the error."""
    fin = os.path.join(TMP, "x.f32")
    fout = os.path.join(TMP, "g.f32")
    fdec = os.path.join(TMP, "d.bin")
    xs.astype(np.float32).tofile(fin)
    exe = os.environ.get("GRAD_DUMP") or os.path.join(os.getcwd(), "tests", "grad_dump")
    p = subprocess.run([exe, mfile, conv, str(threads), str(batch), str(TARGET), fin, fout,
                        fdec], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=900)
    if p.returncode != 0:
        return None, None, p.stderr.strip()
    lines = p.stdout.strip().splitlines()
    layout = [(int(f[1]), f[2], int(f[3])) for f in (ln.split() for ln in lines)
              if f[0] == "decision"]
    raw = open(fdec, "rb").read()
    decs, off = [], 0
    for _ in range(len(xs)):
        d = {}
        for node, kind, count in layout:
            if kind == "relu":
                d[node] = np.frombuffer(raw, np.uint8, count, off).astype(bool)
                off += count
            else:
                d[node] = np.frombuffer(raw, np.int32, count, off).astype(np.int64)
                off += 4 * count
        decs.append(d)
    return np.fromfile(fout, dtype=np.float32).reshape(xs.shape), decs, lines[0]


KINK = 32.0     # eps32 * S: the band where float32 kernels may decide either way
TIE64 = 64 * 2.0 ** -53  # * S: float64's own rounding, within which values tie


def check_decisions(m64, mean, std, x, g, dec):
    """advex's decisions `dec` (grad_dump) for image x against PyTorch in
    float64 (m64), one by one, in advex's layer order (torchref.
    layer_sequence), with S = |b| + sum |w||x| of the conv or dense behind
    each value (float32 rounding scales with it):
      - a ReLU unit advex switched the other way must have a float64
        pre-activation within KINK eps32 S of 0 (and S > 0);
      - in a max-pool window, the elements within float64 rounding (TIE64
        S) of the maximum are tied in exact arithmetic, and the gradient
        must go to the first of them - float64 itself breaks some such
        ties by its own rounding ("noisy", counted); any other element
        advex chose must be within KINK eps32 S of the maximum (a genuine
        near-tie).
    Then the float64 gradient with advex's decisions imposed must match
    advex's g. Returns (bad decisions [str], near-kink decisions taken
    otherwise (max-pool, ReLU), ties float64 broke, rel L2 of g against
    the imposed gradient)."""
    seq = T.layer_sequence(m64)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1).double()
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1).double()
    xt = torch.from_numpy(x[None].astype(np.float64)).requires_grad_(True)
    h = (xt - m) / s
    bound, bad, near, near_relu, noisy = None, [], 0, 0, 0
    for i, mod in enumerate(seq):
        hd = h.detach()
        if isinstance(mod, nn.Conv2d):
            bound = F.conv2d(hd.abs(), mod.weight.abs(), mod.bias.abs(), mod.stride,
                             mod.padding) * EPS32
            h = mod(h)
        elif isinstance(mod, nn.Linear):
            bound = F.linear(hd.abs(), mod.weight.abs(), mod.bias.abs()) * EPS32
            h = mod(h)
        elif isinstance(mod, nn.ReLU) and i in dec:
            mask = torch.from_numpy(dec[i].copy()).view(hd.shape)
            own = hd > 0
            for j in (mask != own).reshape(-1).nonzero()[:, 0].tolist():
                v, b = float(hd.reshape(-1)[j]), float(bound.reshape(-1)[j])
                if abs(v) <= KINK * b and b > 0:      # b = 0: an exact 0, no kink
                    near_relu += 1
                else:
                    bad.append("layer %d relu unit %d: float64 %.3g, %.1f eps32 S from 0"
                               % (i, j, v, abs(v) / b * 1.0))
            h = h * mask.double()
        elif isinstance(mod, nn.MaxPool2d) and i in dec:
            n, c, hh, ww = hd.shape
            assert mod.kernel_size in (2, (2, 2)) and mod.stride in (2, (2, 2)) \
                and hh % 2 == 0 and ww % 2 == 0, "2x2/2 max-pools only"
            oh, ow = hh // 2, ww // 2
            am = torch.from_numpy(dec[i].copy()).view(n, c, oh, ow)

            def win(t):
                return t.reshape(n, c, oh, 2, ow, 2).permute(0, 1, 2, 4, 3, 5) \
                    .reshape(n, c, oh, ow, 4)
            v, bd = win(hd), win(bound)
            # the window's elements as flat plane indices, in scan order
            oy = torch.arange(oh).view(1, 1, oh, 1, 1)
            ox = torch.arange(ow).view(1, 1, 1, ow, 1)
            e = torch.arange(4).view(1, 1, 1, 1, 4)
            idx = (2 * oy + e // 2) * ww + 2 * ox + e % 2
            ea = (idx == am[..., None]).float().argmax(-1)     # advex's element
            inside = (idx == am[..., None]).any(-1)
            mx, _ = v.max(-1)
            # tied in exact arithmetic: within float64 rounding of the max
            # (PyTorch float64 breaks some such ties by its own rounding)
            tied = v >= mx[..., None] - TIE64 * bd / EPS32
            first = tied.float().argmax(-1)
            va = v.gather(-1, ea[..., None])[..., 0]
            ba = bd.gather(-1, ea[..., None])[..., 0]
            bm = bd.gather(-1, v.argmax(-1, keepdim=True))[..., 0]
            wrong = (ea != first) | ~inside
            for j in wrong.reshape(-1).nonzero()[:, 0].tolist():
                if not bool(inside.reshape(-1)[j]):
                    bad.append("layer %d maxpool window %d: argmax %d outside it"
                               % (i, j, int(am.reshape(-1)[j])))
                elif bool(tied.reshape(-1, 4)[j, int(ea.reshape(-1)[j])]):
                    bad.append("layer %d maxpool window %d: exact tie routed to element "
                               "%d, not the first %d" % (i, j, int(ea.reshape(-1)[j]),
                                                          int(first.reshape(-1)[j])))
                else:
                    gap = float(mx.reshape(-1)[j] - va.reshape(-1)[j])
                    tol = KINK * float(ba.reshape(-1)[j] + bm.reshape(-1)[j])
                    if gap <= tol:
                        near += 1
                    else:
                        bad.append("layer %d maxpool window %d: routed %.3g below the "
                                   "max (%.1f eps32 S)" % (i, j, gap, gap / tol * KINK))
            noisy += int(((first != v.argmax(-1)) & ~wrong).sum())
            h = torch.gather(h.reshape(n, c, -1), 2, am.reshape(n, c, -1)).view(n, c, oh, ow)
            bound = torch.gather(bound.reshape(n, c, -1), 2,
                                 am.reshape(n, c, -1)).view(n, c, oh, ow)
        else:
            h = mod(h)
            if bound is not None and not isinstance(mod, nn.Dropout):
                bound = mod(bound)
    F.cross_entropy(h, torch.tensor([TARGET])).backward()
    return bad, (near, near_relu), noisy, T.rel_l2(g, xt.grad.numpy()[0])


def check_model(label, mfile, model, mean, std, names, xs, sequential=True,
                paths=PATHS):
    """Every path: advex's input gradients against PyTorch float64 (its
    rule - ties to the first maximum - in exact arithmetic). Sequential
    models: every decision checked (check_decisions), the gradient given
    them within GRAD_TOL. Others: the gradient within GRAD_TOL of float64
    as it is."""
    ref32 = torch_grads(model, mean, std, xs)
    m64 = copy.deepcopy(model).double()
    ref64 = torch_grads(m64, mean, std, xs, torch.float64)
    ties = tie_counts(model, mean, std, xs)
    tap.diag("%s: max-pool windows tied in exact arithmetic (float64): %s"
             % (label, ", ".join("%s %d" % (n, c) for n, c in zip(names, ties))))
    tap.diag("%s: PyTorch float32 vs float64: %s" % (label, ", ".join(
        "%s %.1e" % (n, T.rel_l2(ref32[i], ref64[i])) for i, n in enumerate(names))))
    seen = {}       # identical gradients and decisions get one check
    for conv, threads, batch in paths:
        g, decs, out = grad_dump(mfile, conv, threads, batch, xs)
        what = "%s, --conv %s, %d thread%s, batch %d" % (
            label, conv, threads, "" if threads == 1 else "s", batch)
        if g is None:
            tap.ok(False, "%s: grad_dump failed: %s" % (what, out))
            continue
        plain = [T.rel_l2(g[i], ref64[i]) for i in range(len(names))]
        if not sequential:
            bad = ["%s %.2e" % (n, e) for n, e in zip(names, plain) if not e < GRAD_TOL]
            tap.ok(not bad, "%s (%s): input gradient within %g rel L2 of PyTorch float64 "
                   "on all %d images (worst %.2e%s)"
                   % (what, out, GRAD_TOL, len(names), max(plain),
                      "" if not bad else "; off: " + ", ".join(bad)))
            continue
        bads, nears, noisies, errs = [], [], [], []
        for i, n in enumerate(names):
            key = (i, g[i].tobytes(), b"".join(d.tobytes() for d in decs[i].values()))
            if key not in seen:
                seen[key] = check_decisions(m64, mean, std, xs[i], g[i], decs[i])
            bad, near, noisy, e = seen[key]
            bads += ["%s: %s" % (n, b) for b in bad[:3]]
            if e >= GRAD_TOL:
                bads.append("%s: gradient %.2e off the float64 one with advex's decisions"
                            % (n, e))
            nears.append(near)
            noisies.append(noisy)
            errs.append(e)
        tap.ok(not bads, "%s (%s): every exact tie on all %d images goes to the first "
               "maximum and every other ReLU and max-pool decision is PyTorch float64's "
               "or a near-kink within %g eps32 S (max-pool+ReLU: %s), the gradient given them within %g "
               "(worst %.2e); exact ties float64 itself broke by its rounding: %s; "
               "vs float64 as it is: worst %.2e (%s)%s"
               % (what, out, len(names), KINK,
                  ", ".join("%s %d+%d" % (n, k[0], k[1]) for n, k in zip(names, nears)),
                  GRAD_TOL, max(errs),
                  ", ".join("%s %d" % (n, k) for n, k in zip(names, noisies)),
                  max(plain),
                  ", ".join("%s %.1e" % (n, e) for n, e in zip(names, plain)),
                  "" if not bads else "; FAILED: " + "; ".join(bads[:6])))


class _Misroute(torch.autograd.Function):
    """A 2x2/2 max-pool whose window `where` sends its gradient to the
    window's last element instead of the first maximum (the control)."""

    @staticmethod
    def forward(ctx, inp, where):
        y, idx = F.max_pool2d(inp, 2, 2, return_indices=True)
        n, c, h, w = inp.shape
        oh, ow = y.shape[2:]
        flat = idx.reshape(-1).clone()
        ci, rest = divmod(where, oh * ow)
        oy, ox = divmod(rest, ow)
        flat[where] = (2 * oy + 1) * w + 2 * ox + 1
        ctx.save_for_backward(flat.view_as(idx))
        ctx.shape = inp.shape
        return y

    @staticmethod
    def backward(ctx, gout):
        idx, = ctx.saved_tensors
        n, c, h, w = ctx.shape
        gin = torch.zeros(ctx.shape, dtype=gout.dtype)
        gin.view(n, c, -1).scatter_add_(2, idx.view(n, c, -1), gout.reshape(n, c, -1))
        return gin, None


class _MisroutePool(nn.Module):
    def __init__(self, where):
        super().__init__()
        self.where = where

    def forward(self, x):
        return _Misroute.apply(x, self.where)


def tie_to_misroute(model, mean, std, x):
    """The exact tie (a 2x2 window of four equal values > 0 in float64,
    so its last element is tied too, but not the first maximum) whose
    output gradient is largest, over all max-pools: (pool, window), or
    None."""
    m64 = copy.deepcopy(model).double()
    pools = [m for m in m64.modules() if isinstance(m, nn.MaxPool2d)]
    ins, outs = {}, {}

    def hook(mod, inp, out):
        ins[mod] = inp[0].detach()
        out.retain_grad()
        outs[mod] = out
    hs = [p.register_forward_hook(hook) for p in pools]
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1).double()
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1).double()
    xt = torch.from_numpy(x[None].astype(np.float64)).requires_grad_(True)
    F.cross_entropy(m64((xt - m) / s), torch.tensor([TARGET])).backward()
    for h in hs:
        h.remove()
    best = None
    for pi, p in enumerate(pools):
        a = ins[p][0]
        c, hh, ww = a.shape
        win = a[:, :hh // 2 * 2, :ww // 2 * 2].reshape(c, hh // 2, 2, ww // 2, 2)
        mx = win.amax(dim=(2, 4))
        tied = ((win == mx[:, :, None, :, None]).sum(dim=(2, 4)) == 4) & (mx > 0)
        dy = outs[p].grad[0].abs() * tied
        if dy.max() > 0 and (best is None or dy.max() > best[0]):
            best = (float(dy.max()), pi, int(dy.argmax()))
    return None if best is None else best[1:]


def control(model, mfile, mean, std, names, xs):
    """Two controls. PyTorch's own float32 gradient with one tie misrouted
    must fail the gradient comparison; and advex's decisions with that tie
    misrouted, or with one clearly positive ReLU unit switched off, must
    fail check_decisions."""
    where = tie_to_misroute(model, mean, std, xs[0])
    if where is None:
        tap.ok(False, "control: no exact tie in %s" % names[0])
        return
    bad = copy.deepcopy(model)
    pools = [i for i, m in enumerate(bad.features) if isinstance(m, nn.MaxPool2d)]
    bad.features[pools[where[0]]] = _MisroutePool(where[1])
    ref = torch_grads(model, mean, std, xs[:1])[0]
    g = torch_grads(bad, mean, std, xs[:1])[0]
    e = T.rel_l2(g, ref)
    tap.ok(e >= GRAD_TOL, "control: PyTorch's gradient on %s with one tie (max-pool %d, "
           "window %d) routed to the window's last element is %.2e >= %g off its own: "
           "a single misrouted tie fails" % (names[0], where[0] + 1, where[1], e, GRAD_TOL))

    g, decs, out = grad_dump(mfile, "im2col", 1, 1, xs[:1])
    if g is None:
        tap.ok(False, "control: grad_dump failed: %s" % out)
        return
    m64 = copy.deepcopy(model).double()
    node = pools[where[0]]          # features come first in advex's order
    d = dict(decs[0])
    am = d[node].copy()
    with torch.no_grad():
        oh, ow = m64.features[:node + 1](torch.from_numpy(xs[:1]).double()).shape[2:]
    oy, ox = divmod(where[1] % (oh * ow), ow)
    am[where[1]] = (2 * oy + 1) * (2 * ow) + 2 * ox + 1
    d[node] = am
    bad1 = check_decisions(m64, mean, std, xs[0], g[0], d)[0]
    tap.ok(any("exact tie" in b for b in bad1),
           "control: advex's decisions on %s with that tie routed to the window's last "
           "element are caught: %s" % (names[0], "; ".join(bad1[:2]) or "NOT CAUGHT"))
    d = dict(decs[0])
    relu = [i for i, m in enumerate(m64.features) if isinstance(m, nn.ReLU)][2]
    mask = d[relu].copy()
    mask[int(np.argmax(mask))] = False      # the first unit that is on
    d[relu] = mask
    bad2 = check_decisions(m64, mean, std, xs[0], g[0], d)[0]
    tap.ok(bool(bad2), "control: advex's decisions on %s with one positive ReLU unit "
           "(node %d) switched off are caught: %s"
           % (names[0], relu, "; ".join(bad2[:2]) or "NOT CAUGHT"))


def main():
    try:
        exe = os.environ.get("GRAD_DUMP") or os.path.join(os.getcwd(), "tests", "grad_dump")
        if not os.access(exe, os.X_OK):
            if os.environ.get("CI"):
                tap.ok(False, "tests/grad_dump missing in CI ($GRAD_DUMP=%s)" % exe)
            else:
                tap.skip("tests/grad_dump not built ($GRAD_DUMP=%s)" % exe)
            return
        ims = tie_images()
        names = list(ims)
        xs = np.stack([pixels(ims[n]) for n in names])
        photos = photo_images()
        pnames = list(photos)
        pxs = np.stack([pixels(photos[n]) for n in pnames])
        ppaths = [(conv, 2, 8) for conv in ("im2col", "winograd", "auto")]
        mean, std = T.IMAGENET_MEAN, T.IMAGENET_STD
        margs = ["--mean", ",".join(map(str, mean)), "--std", ",".join(map(str, std))]

        for head, seed in (("classic", 1), ("small", 2)):
            model = T.build_vgg16(head=head, seed=seed)
            mfile = os.path.join(TMP, "vgg16_%s.safetensors" % head)
            p = T.import_model(model, mfile, margs, tmpdir=TMP)
            if tap.ok(p.returncode == 0, "VGG16 %s head imports: %s"
                      % (head, (p.stdout if p.returncode == 0 else p.stderr).strip()[:120])):
                check_model("VGG16 %s" % head, mfile, model, mean, std, names, xs)
                check_model("VGG16 %s, photo-like" % head, mfile, model, mean, std,
                            pnames, pxs, paths=ppaths)
            if head == "small":
                control(model, mfile, mean, std, names, xs)

        for label, model, name in (("4-block CNN", CNN4(seed=3), "cnn4"),
                                   ("ResNet", ResNetSmall(seed=4), "resnet")):
            model.eval()
            for prm in model.parameters():
                prm.requires_grad_(False)
            mfile = os.path.join(TMP, name + ".safetensors")
            p = T.run_importer([export_onnx(model, name), "--out", mfile] + margs)
            if tap.ok(p.returncode == 0, "%s imports from ONNX: %s"
                      % (label, (p.stdout if p.returncode == 0 else p.stderr).strip()[:120])):
                check_model(label, mfile, model, mean, std, names, xs,
                            sequential=hasattr(model, "classifier"))
                check_model(label + ", photo-like", mfile, model, mean, std, pnames, pxs,
                            sequential=hasattr(model, "classifier"), paths=ppaths)
    except Exception as e:  # a crash is a failure, not a silent stop
        import traceback
        tap.ok(False, "test_ties.py crashed: %s: %s" % (type(e).__name__, e))
        tap.diag(traceback.format_exc())
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
        tap.done()


if __name__ == "__main__":
    main()
