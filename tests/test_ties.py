#!/usr/bin/python3
"""test_ties.py - input gradients that match PyTorch on images made to tie
(issue #12), TAP.

Flat image regions make a convolution's outputs equal in exact arithmetic,
so 2x2 max-pool windows hold ties, and PyTorch routes their gradient to the
first maximum in scan order. advex's GEMM and Winograd paths round equal
values differently at different positions; core/pool.c treats values
within its tie tolerance of the window maximum as equal. This test writes
images full of such ties - constant (grey and black), two-tone halves,
saturated 0/255 regions, horizontal and vertical ramps, a photo-like image
under a flat sky band - and checks, for

  VGG16 (classic and small heads, state_dict import),
  a 4-block CNN with max-pools (conv-ReLU-maxpool x4, ONNX import),
  a small ResNet (ONNX import; skipped with the importer's reason while
  advex has no graph engine),

that the input gradient of cross-entropy toward class 0 is within 1e-3
relative L2 of PyTorch float32 on every image, with every path: --conv
im2col, winograd and auto, 1 and 2 threads, batch 1 and 8 (tests/grad_dump
runs the images through net_forward/net_backward BATCH at a time).

Control: the same comparison applied to PyTorch's own gradient with one
tie routed to the wrong element (the tied window whose gradient is largest)
must fail it, so a single misrouted tie cannot pass.

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
        self.fc = nn.Linear(128 * 6 * 6, 10)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(self.fc.weight.shape, generator=gen) * 0.02)
            self.fc.bias.zero_()

    def head(self, h):
        return self.fc(torch.flatten(h, 1))

    def forward(self, x):
        return self.head(self.features(x))


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
        self.b1 = Block(32, gen)
        self.b2 = Block(32, gen)
        self.fc = nn.Linear(32 * 12 * 12, 10)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(self.fc.weight.shape, generator=gen) * 0.02)
            self.fc.bias.zero_()

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem(x)), 2)
        x = F.max_pool2d(self.b1(x), 2)
        x = F.max_pool2d(self.b2(x), 2)
        return self.fc(torch.flatten(x, 1))


def export_onnx(model, name):
    f = os.path.join(TMP, name + ".onnx")
    torch.onnx.export(model, torch.zeros(1, 3, HW, HW), f, opset_version=13,
                      input_names=["x"], output_names=["logits"])
    return f


def torch_grads(model, mean, std, xs):
    """Input gradients (N,3,H,W) of CE toward TARGET, one image at a time,
    PyTorch float32."""
    out = []
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    for x in xs:
        x = torch.from_numpy(x[None].copy()).requires_grad_(True)
        z = model((x - m) / s)
        F.cross_entropy(z, torch.tensor([TARGET])).backward()
        out.append(x.grad.numpy()[0])
    return np.stack(out)


EPS32 = 2.0 ** -24


def tie_eps(tile):
    """core/pool.c's pool_tie_eps: the tolerance in eps32 * S by how the
    producing conv ran (0 im2col, 2/4 Winograd F(2x2)/F(4x4))."""
    return 32.0 if tile == 4 else 5.0


MAX_FLIPS = 3           # boundary decisions the comparison may take advex's way
BAND = 4.0              # boundary: a gap within BAND x of the tolerance either way
BOUNDARY_TRIES = 12     # the closest boundary windows tried per image


class _RulePool(torch.autograd.Function):
    """2x2/2 max-pool in float64 as PyTorch's: the gradient goes to the
    first maximum in scan order (an exact tie in float64 is a tie in exact
    arithmetic: the direct convolutions here round equal inputs alike).

    info (a dict) receives 'moved' and 'boundary': [(distance, window)],
    the windows with an element before the max within BAND times core/
    pool.c's tie tolerance k * eps32 * S (S the producing conv's |b| + sum
    |w||x| at the max; distance = gap / tolerance): genuine near-ties that
    float32 kernels, whose rounding reaches that size, may order the other
    way. 'moved' counts them. Windows listed in `flip` send the gradient to
    that earlier element instead."""

    @staticmethod
    def forward(ctx, inp, s_map, k, flip, info, wrong):
        n, c, h, w = inp.shape
        win = inp[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2) \
            .permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
        sw = s_map[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2) \
            .permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
        mx, am = win.max(-1)        # first exact max (no NaNs here)
        first = am.clone()
        tol = k * EPS32 * sw.gather(-1, am[..., None])
        gap = mx[..., None] - win
        earlier = torch.arange(4).view(1, 1, 1, 1, 4) < am[..., None]
        amb = earlier & (gap > 0) & (gap <= BAND * tol)
        info["moved"] = int(amb.any(-1).sum())
        anyamb = amb.any(-1)
        e_amb = amb.float().argmax(-1)
        dist = gap.gather(-1, e_amb[..., None])[..., 0] / tol[..., 0]
        flat = anyamb.reshape(-1).nonzero()[:, 0]
        info["boundary"] = sorted(zip(dist.reshape(-1)[flat].tolist(), flat.tolist()))
        if flip:
            f = torch.tensor(sorted(flip), dtype=torch.long)
            fr, am_f, e_f = first.reshape(-1), am.reshape(-1), e_amb.reshape(-1)
            fr[f] = e_f[f]
        if wrong is not None:       # the control: the last element instead
            first.reshape(-1)[wrong] = 3
        ctx.save_for_backward(first)
        ctx.shape = inp.shape
        return mx

    @staticmethod
    def backward(ctx, gout):
        first, = ctx.saved_tensors
        n, c, h, w = ctx.shape
        oy = torch.arange(h // 2).view(1, 1, -1, 1)
        ox = torch.arange(w // 2).view(1, 1, 1, -1)
        idx = (2 * oy + first // 2) * w + 2 * ox + first % 2
        gin = torch.zeros(ctx.shape, dtype=gout.dtype)
        gin.view(n, c, -1).scatter_add_(2, idx.reshape(n, c, -1), gout.reshape(n, c, -1))
        return gin, None, None, None, None, None


def _head(model, h):
    if hasattr(model, "head"):
        return model.head(h)
    if getattr(model, "use_gap", False):
        h = torch.mean(h, dim=(2, 3), keepdim=True)
    return model.classifier(torch.flatten(h, 1))


def rule_grad(m64, mean, std, x, tiles, flips=(), wrong=None):
    """PyTorch's input gradient of CE toward TARGET in float64 (m64: the
    model in double): max-pool ties to the first maximum. The max-pools
    that follow a conv (and ReLU) list their boundary windows at core/
    pool.c's tolerance tie_eps(tiles[i]) (tiles: how the conv behind each
    ran, grad_dump's output). flips: (pool, window) boundary windows whose
    gradient goes to the earlier near-tied element; wrong: (pool, window)
    routed to the window's last element (the control). Returns (grad, the
    number of boundary windows, boundary [(distance, pool, window)]).
    Sequential models: model.features in order, then _head."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1).double()
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1).double()
    xt = torch.from_numpy(x[None].astype(np.float64)).requires_grad_(True)
    h = (xt - m) / s
    conv_in, conv, infos = None, None, []
    for mod in m64.features:
        if isinstance(mod, nn.Conv2d):
            conv_in, conv = h, mod
            h = mod(h)
        elif isinstance(mod, nn.MaxPool2d) and conv is not None:
            with torch.no_grad():
                smap = F.conv2d(conv_in.abs(), conv.weight.abs(),
                                conv.bias.abs() if conv.bias is not None else None,
                                stride=conv.stride, padding=conv.padding)
            info = {}
            pi = len(infos)
            h = _RulePool.apply(h, smap, tie_eps(tiles[pi]),
                                {wi for p, wi in flips if p == pi}, info,
                                wrong[1] if wrong and wrong[0] == pi else None)
            infos.append(info)
            conv = None
        else:
            h = mod(h)
    F.cross_entropy(_head(m64, h), torch.tensor([TARGET])).backward()
    bnd = sorted((d, pi, wi) for pi, inf in enumerate(infos) for d, wi in inf["boundary"])
    return xt.grad.numpy()[0], sum(inf["moved"] for inf in infos), bnd


def compare(m64, mean, std, x, tiles, g, model=None, img=None):
    """rel L2 of g against rule_grad; when that is >= GRAD_TOL, the
    reference takes advex's way at up to MAX_FLIPS boundary windows
    (greedily, among the BOUNDARY_TRIES with the smallest gaps), genuine
    near-ties that float32 rounding may order the other way (test_parity.py
    does the same for ReLU and max-pool kinks). Returns (err, flips, raw
    err)."""
    ref, _, bnd = rule_grad(m64, mean, std, x, tiles)
    raw = err = T.rel_l2(g, ref)
    flips = []
    cands = [(pi, wi) for _, pi, wi in bnd[:BOUNDARY_TRIES]]
    while err >= GRAD_TOL and len(flips) < MAX_FLIPS:
        best = None
        for c in cands:
            if c in flips:
                continue
            r, _, _ = rule_grad(m64, mean, std, x, tiles, flips + [c])
            e = T.rel_l2(g, r)
            if best is None or e < best[0]:
                best = (e, c)
        if best is None or best[0] >= err:
            break
        err = best[0]
        flips.append(best[1])
    if err >= GRAD_TOL and model is not None and hasattr(model, "classifier"):
        # A ReLU within rounding of its kink (not a tie): torchref.Ref64
        # takes advex's decisions there, as test_parity.py does, at most
        # MAX_FLIPS of them - ReLU kinks only: its max-pool kinks include
        # exact ties, which are what this test is about.
        r64 = T.Ref64(model, img, mean, std, target=TARGET)
        kinks, match = r64.explain(g[None])
        e = T.rel_l2(g, match["grad"][0])
        if kinks and len(kinks) <= MAX_FLIPS and e < err and \
                all(k.kind == "relu" for k in kinks):
            err, flips = e, [str(k) for k in kinks]
    return err, flips, raw


def grad_dump(mfile, conv, threads, batch, xs):
    fin = os.path.join(TMP, "x.f32")
    fout = os.path.join(TMP, "g.f32")
    xs.astype(np.float32).tofile(fin)
    exe = os.environ.get("GRAD_DUMP") or os.path.join(os.getcwd(), "tests", "grad_dump")
    p = subprocess.run([exe, mfile, conv, str(threads), str(batch), str(TARGET), fin, fout],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=900)
    if p.returncode != 0:
        return None, p.stderr.strip(), None
    tiles = tuple(int(ln.split()[3]) for ln in p.stdout.splitlines()
                  if ln.startswith("pool "))
    return np.fromfile(fout, dtype=np.float32).reshape(xs.shape), "", tiles


def check_model(label, mfile, model, mean, std, names, xs, imgs):
    ref32 = torch_grads(model, mean, std, xs)
    m64 = copy.deepcopy(model).double()
    seen = {}
    for conv, threads, batch in PATHS:
        g, why, tiles = grad_dump(mfile, conv, threads, batch, xs)
        what = "%s, --conv %s, %d thread%s, batch %d" % (
            label, conv, threads, "" if threads == 1 else "s", batch)
        if g is None:
            tap.ok(False, "%s: grad_dump failed: %s" % (what, why))
            continue
        if tiles not in seen:
            seen[tiles] = {}
            row32, moved = [], []
            for i, n in enumerate(names):
                r, mv, _ = rule_grad(m64, mean, std, xs[i], tiles)
                row32.append("%s %.1e" % (n, T.rel_l2(ref32[i], r)))
                moved.append("%s %d" % (n, mv))
            tap.diag("%s, convs before pools on tiles %s: PyTorch float32 vs the float64 "
                     "reference: %s" % (label, list(tiles), ", ".join(row32)))
            tap.diag("%s, tiles %s: genuine near-ties within %gx the tie tolerance "
                     "(boundary windows): %s"
                     % (label, list(tiles), BAND, ", ".join(moved)))
        errs, notes = [], []
        for i, n in enumerate(names):
            key = g[i].tobytes()
            if key not in seen[tiles]:
                seen[tiles][key] = compare(m64, mean, std, xs[i], tiles, g[i],
                                           model, imgs[i])
            e, flips, raw = seen[tiles][key]
            errs.append(e)
            if flips or not e < GRAD_TOL:
                notes.append("%s %.2e%s" % (n, e, "" if not flips else
                                            " taking advex's decision at %d window%s/kink%s %s "
                                            "(%.2e without)"
                                            % (len(flips), "" if len(flips) == 1 else "s",
                                               "" if len(flips) == 1 else "s",
                                               "; ".join(map(str, flips)), raw)))
        bad = [n for n, e in zip(names, errs) if not e < GRAD_TOL]
        tap.ok(not bad, "%s: input gradient within %g rel L2 of PyTorch float64 (ties "
               "to the first maximum) on all %d tie images (worst %.2e%s)"
               % (what, GRAD_TOL, len(names), max(errs),
                  "" if not notes else "; " + "; ".join(notes)))


def tie_to_misroute(model, mean, std, x):
    """The exact tie (a window of four equal values > 0, in float64) whose
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
        imgs = [ims[n] for n in names]
        mean, std = T.IMAGENET_MEAN, T.IMAGENET_STD
        margs = ["--mean", ",".join(map(str, mean)), "--std", ",".join(map(str, std))]

        for head, seed in (("classic", 1), ("small", 2)):
            model = T.build_vgg16(head=head, seed=seed)
            mfile = os.path.join(TMP, "vgg16_%s.safetensors" % head)
            p = T.import_model(model, mfile, margs, tmpdir=TMP)
            if tap.ok(p.returncode == 0, "VGG16 %s head imports: %s"
                      % (head, (p.stdout if p.returncode == 0 else p.stderr).strip()[:120])):
                check_model("VGG16 %s" % head, mfile, model, mean, std, names, xs, imgs)
            if head == "small":
                # Control: the float64 reference with one exact tie routed
                # to the wrong element must fail the comparison above,
                # boundary decisions included.
                tiles = tuple(0 for m in model.features if isinstance(m, nn.MaxPool2d))
                where = tie_to_misroute(model, mean, std, xs[0])
                if where is None:
                    tap.ok(False, "control: no exact tie in %s" % names[0])
                else:
                    m64 = copy.deepcopy(model).double()
                    bad, _, _ = rule_grad(m64, mean, std, xs[0], tiles, wrong=where)
                    e, flips, raw = compare(m64, mean, std, xs[0], tiles,
                                            bad.astype(np.float32), model, imgs[0])
                    tap.ok(e >= GRAD_TOL, "control: the reference's gradient on %s with one "
                           "tie (max-pool %d, window %d) routed to the last element is "
                           "%.2e >= %g off (%.2e before taking %d boundary/kink decisions): "
                           "a single misrouted tie fails" % (names[0], where[0] + 1, where[1],
                                                           e, GRAD_TOL, raw, len(flips)))

        cnn = CNN4(seed=3).eval()
        for prm in cnn.parameters():
            prm.requires_grad_(False)
        mfile = os.path.join(TMP, "cnn4.safetensors")
        p = T.run_importer([export_onnx(cnn, "cnn4"), "--out", mfile] + margs)
        if tap.ok(p.returncode == 0, "4-block CNN imports from ONNX: %s"
                  % (p.stdout if p.returncode == 0 else p.stderr).strip()[:120]):
            check_model("4-block CNN", mfile, cnn, mean, std, names, xs, imgs)

        res = ResNetSmall(seed=4).eval()
        for prm in res.parameters():
            prm.requires_grad_(False)
        mfile = os.path.join(TMP, "resnet.safetensors")
        p = T.run_importer([export_onnx(res, "resnet"), "--out", mfile] + margs)
        if p.returncode != 0:
            tap.skip("ResNet: no graph models yet (advex-import: %s)"
                     % (p.stderr.strip().splitlines() or ["?"])[-1][:160])
        else:
            check_model("ResNet", mfile, res, mean, std, names, xs, imgs)
    except Exception as e:  # a crash is a failure, not a silent stop
        import traceback
        tap.ok(False, "test_ties.py crashed: %s: %s" % (type(e).__name__, e))
        tap.diag(traceback.format_exc())
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
        tap.done()


if __name__ == "__main__":
    main()
