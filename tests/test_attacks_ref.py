#!/usr/bin/python3
"""test_attacks_ref.py - advex's APGD-CE, APGD-DLR and Square attack (Linf
and L2) against PyTorch references written from the papers (tests/attacksref.py), run
through the public core/attack.h API by tests/attack_dump.

1. APGD, a small random VGG-like model (32x32, well conditioned: no loss
   saturates): every point of the first checkpoint segment (the start and
   0.22 N moves) equals the reference's, for CE and DLR, Linf and L2,
   untargeted and targeted. Tolerance: iterates are float32 in both; Linf:
   1e-5 per component (a component that took the other sign differs by at
   least eps/4, rounding by ~1e-7); L2: ||difference||_2 <= 1e-4 * eps (the
   step follows the gradient's direction, which advex's float32 network
   carries to ~1e-6 relative). Controls: a reference with another seed, and
   one with step size eps instead of 2 eps, must fail the same check.
2. APGD on the demo (images 0..19, 20 iterations): each step of the first
   segment equals the reference's step taken from advex's own previous two
   iterates, on all but 0.1% of the components, wherever the loss is not
   saturated (CE > 1e-6, DLR not within 1e-6 of its plateau +-1): there its
   gradient is rounding noise in both implementations (the trajectories of
   such images are printed, not tested). Then the whole attack: the same
   success or failure image by image.
3. Square (Linf): the same random draws (core/rng.c's generator
   reimplemented in attacksref.Rng) give the same accepted point, the same
   number of queries and the same success image by image; control: the
   reference with another seed does not give the same points.
3b. Square (L2): with the same draws, the first 60 points evaluated equal
   the reference's (|diff| <= 1e-6) at eps 0.5 and 1, up to a candidate
   that one accepts and the other does not - allowed only where the loss
   gap is within the two losses' float32/float64 disagreement (a tie the
   precisions order differently); each point is within float
   rounding of the eps-sphere (L2 <= eps + sqrt(n) 2^-25) and in [0,1];
   over 1000 queries the same success and number of queries image by image
   (the accepted points themselves may part after a few hundred queries:
   two candidates' losses a few 1e-5 apart are ordered by float32 in advex
   and float64 in the reference). Controls: seed 12 starts elsewhere; the
   largest norm reaches 0.99 eps; without the clip the reference's points
   leave [0,1]; p_init 0.05 instead of 0.1 changes the queries needed.
5. Restarts (the same evaluations and returned point as the reference's
   restarts, seeded the same way), attack_batch (the same steps and
   results as one at a time - DeepFool's per-class backwards included -, no
   gradient while Square steps), --quantize
   (every iterate on the 8-bit grid and in the ball; control: off without).
6. DeepFool (L2, Linf; foolbox's 10 candidates, overshoot 0.02), demo and
   random VGG: the same success and number of iterations image by image,
   the perturbation's norm within 1e-3 relative; control: overshoot 0.1.
7. C&W L2 (9 binary steps of 20 Adam steps), demo and random VGG: the same
   success and number of evaluations image by image, the start's loss
   within 1e-5, the smallest successful L2 norm within 5% (see the
   message: whole trajectories are not identical); control: without the
   binary search the result differs.
4. The story on the demo: APGD-CE at eps 8/255 succeeds on at least as many
   images as I-FGSM (bim) with the same 20 iterations; Square at 8/255
   (10000 queries) succeeds on the images where prob-ce I-FGSM fails with an
   exactly zero gradient - on more than half of them: some resist 10000
   queries (demo image 2 keeps a margin of 24), so "all" would be false.
   Controls: APGD-CE with 1 iteration falls short of I-FGSM's count; Square
   with 100 queries succeeds on fewer.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchref as T  # noqa: E402

tap = T.Tap()
T.require_torch(tap)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import attacksref as R  # noqa: E402

EPS = 8.0 / 255
DEMO = os.path.join(T.SRCDIR, "assets", "demo-model.safetensors")
DEMO_DATA = T.demo_data_dir()
DUMP = os.environ.get("ATTACK_DUMP") or os.path.join(os.getcwd(), "tests", "attack_dump")


def run_dump(tmp, model, x, kind, norm, eps, iters, seed=0, target=-1, restarts=1,
             dump_x=True, batch=1, tag="run", quantize=0):
    """Run attack_dump on images x (N,3,H,W float32). Returns (steps, finals,
    iterates, results): steps[i] the step rows of image i, finals[i] its
    final row, iterates (dump_x) per image the points evaluated."""
    raw = os.path.join(tmp, tag + ".in")
    out = os.path.join(tmp, tag)
    np.ascontiguousarray(x, dtype=np.float32).tofile(raw)
    r = subprocess.run([DUMP, model, "auto", str(batch), kind, norm, repr(eps), str(iters),
                        str(seed), str(target), str(restarts), str(quantize), "1" if dump_x else "0",
                        raw, out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if r.returncode:
        raise RuntimeError("attack_dump: " + r.stderr)
    n, px = x.shape[0], x[0].size
    steps = [[] for _ in range(n)]
    finals = [None] * n
    for line in open(out + ".txt"):
        f = line.split()
        row = [float(v) for v in f[2:]]
        if f[0] == "step":
            steps[int(f[1])].append(row)
        else:
            finals[int(f[1])] = row
    its = None
    if dump_x and batch == 1:
        allx = np.fromfile(out + ".x", dtype=np.float32).reshape(-1, *x.shape[1:])
        its, pos = [], 0
        for i in range(n):
            its.append(allx[pos:pos + len(steps[i])])
            pos += len(steps[i])
    res = np.fromfile(out + ".res", dtype=np.float32).reshape(x.shape)
    return steps, finals, its, res


def segment_ok(norm, eps, got, ref, upto=None):
    """got (k,...) advex's points, ref list of tensors: identical within the
    tolerance of the docstring (points 0..upto-1). Returns (ok, worst)."""
    worst = 0.0
    for k in range(len(ref) if upto is None else upto):
        d = got[k].astype(np.float64) - ref[k][0].numpy()
        w = np.abs(d).max() if norm == "linf" else np.sqrt((d * d).sum()) / eps
        worst = max(worst, w)
    return worst <= (1e-5 if norm == "linf" else 1e-4), worst


# ---------------------------------------------------------------------------
# 1. APGD's first segment on a small random VGG

def random_model(tmp):
    model = T.build_vgg("A", head="small", seed=3, in_hw=32, width_div=16).eval()
    path = os.path.join(tmp, "vgg.safetensors")
    r = T.import_model(model, path, ["--input", "3,32,32", "--mean", ",".join(map(str, T.IMAGENET_MEAN)),
                                     "--std", ",".join(map(str, T.IMAGENET_STD))])
    tap.ok(r.returncode == 0, "random VGG-A/16 at 32x32 imported (%s)" % r.stderr.strip()[-200:])
    m64 = model.double()
    mean = torch.tensor(T.IMAGENET_MEAN, dtype=torch.float64).view(1, -1, 1, 1)
    std = torch.tensor(T.IMAGENET_STD, dtype=torch.float64).view(1, -1, 1, 1)

    def f(x):
        return m64((x.double() - mean) / std)
    imgs = np.concatenate([T.pixels(T.test_image(32, 32, seed=20 + i)).numpy() for i in range(3)])
    return path, f, imgs


def first_segment_tests(tmp):
    path, f, imgs = random_model(tmp)
    iters = 50
    k1 = max(int(0.22 * iters), 1)
    variants = [("apgd-ce", "linf", EPS, -1), ("apgd-dlr", "linf", EPS, -1),
                ("apgd-ce", "l2", 0.5, -1), ("apgd-dlr", "l2", 0.5, -1),
                ("apgd-ce", "linf", EPS, 7), ("apgd-dlr", "l2", 0.5, 7)]
    for kind, norm, eps, target in variants:
        steps, _, its, _ = run_dump(tmp, path, imgs, kind, norm, eps, iters, seed=5,
                                    target=target, tag="seg")
        oks, worst, ctl_seed, ctl_step, compared = [], 0.0, [], [], 0
        for i in range(len(imgs)):
            x0 = torch.from_numpy(imgs[i:i + 1]).double()
            with torch.no_grad():
                lab = int(f(x0).argmax())
            if target == lab:
                continue
            run = R.apgd(f, x0, lab, kind, norm, eps, iters, seed=5, target=target,
                         first_segment_only=True)
            ref = run["xs"]
            # up to the first point where the loss is saturated: the
            # move from there follows a gradient of rounding noise
            upto = next((k + 1 for k, v in enumerate(run["losses"])
                         if saturated(kind, v)), len(ref))
            compared += upto
            ok, w = segment_ok(norm, eps, its[i][:k1 + 1], ref, upto)
            oks.append(ok and len(ref) == k1 + 1 and upto >= 3)
            worst = max(worst, w)
            bad = R.apgd(f, x0, lab, kind, norm, eps, iters, seed=6, target=target,
                         first_segment_only=True)["xs"]
            ctl_seed.append(not segment_ok(norm, eps, its[i][:k1 + 1], bad, upto)[0])
            bad = R.apgd(f, x0, lab, kind, norm, eps, iters, seed=5, target=target,
                         first_segment_only=True, step0=eps)["xs"]
            ctl_step.append(not segment_ok(norm, eps, its[i][:k1 + 1], bad, upto)[0])
        what = "%s %s eps %.4g %s" % (kind, norm, eps,
                                      "target %d" % target if target >= 0 else "untargeted")
        tap.ok(oks and all(oks),
               "random VGG, %s: the start and the first segment's %d moves equal the "
               "reference on %d images (%d points up to a saturated loss, worst %s %.2e)" %
               (what, k1, len(oks), compared, "|diff|" if norm == "linf" else "||diff||/eps",
                worst))
        tap.ok(ctl_seed and all(ctl_seed) and all(ctl_step),
               "control, %s: a reference from another seed, or with step size eps "
               "instead of 2 eps, fails that check" % what)


# ---------------------------------------------------------------------------
# 2. APGD on the demo: steps from advex's own iterates, then success

def saturated(kind, loss):
    return abs(loss) < 1e-6 if kind == "apgd-ce" else abs(abs(loss) - 1.0) < 1e-6


def unstable(f, kind, x, lab, g, noise=1e-6):
    """Components whose gradient sign changes when x moves by at most noise
    per component (8 draws): advex's float32 products carry about that
    much error, so their sign there is not a fact (test_attack_parity.py)."""
    gen = torch.Generator().manual_seed(3)
    u = torch.zeros(g.shape, dtype=torch.bool)
    for _ in range(8):
        d = (torch.rand(x.shape, generator=gen, dtype=torch.float64) * 2 - 1) * noise
        xr = (x + d).requires_grad_(True)
        gi, = torch.autograd.grad(R.apgd_loss(kind, f(xr), lab, -1), [xr])
        u |= torch.sign(gi) != torch.sign(g)
    return u.numpy()


def demo_apgd_tests(tmp, f, x, labels):
    iters = 20
    k1 = max(int(0.22 * iters), 1)
    for kind in ("apgd-ce", "apgd-dlr"):
        steps, finals, its, _ = run_dump(tmp, DEMO, x, kind, "linf", EPS, iters, tag="demo")
        checked, skipped, worst, same, agree, succ, unexplained = 0, 0, 0.0, 0, 0, 0, 0
        ctl = True
        for i in range(len(x)):
            x0 = torch.from_numpy(x[i:i + 1]).double()
            lab = labels[i]
            for k in range(k1):
                xk = torch.from_numpy(its[i][k:k + 1]).double()
                xp = torch.from_numpy(its[i][k - 1:k]).double() if k else xk
                xr = xk.clone().requires_grad_(True)
                loss = R.apgd_loss(kind, f(xr), lab, -1)
                g, = torch.autograd.grad(loss, [xr])
                if saturated(kind, float(loss)):
                    skipped += 1
                    continue
                a = 1.0 if k == 0 else 0.75
                z1 = R.f32(R.project(R.f32(xk + 2 * EPS * torch.sign(g)), x0, EPS, "linf"))
                nx = R.f32(R.project(xk + (z1 - xk) * a + (xk - xp) * (1 - a), x0, EPS, "linf"))
                miss = np.abs(nx.numpy() - its[i][k + 1:k + 2]) > 1e-5
                # where the float64 gradient is exactly zero, float32
                # decides max-pool ties and ReLU kinks of flat image regions
                # otherwise (test_ties.py): no sign to compare there
                miss &= (g != 0).numpy()
                frac = float(miss.mean())
                if frac > 1e-3:
                    u = unstable(f, kind, xk, lab, g)
                    unexplained += int((miss & ~u).sum())
                else:
                    worst = max(worst, frac)
                checked += 1
                # control: the momentum of plain PGD (a = 1) must be caught
                if k >= 1 and ctl:
                    nb = R.f32(R.project(z1, x0, EPS, "linf"))
                    ctl = float((np.abs(nb.numpy() - its[i][k + 1:k + 2]) > 1e-5).mean()) > 1e-3
            ref = R.apgd(f, x0, lab, kind, "linf", EPS, iters, seed=0)
            mine = bool(finals[i][0])
            agree += mine == ref["success"]
            succ += mine
            n = min(len(ref["xs"]), len(its[i]))
            same += all(np.abs(its[i][k] - ref["xs"][k][0].numpy()).max() <= 1e-5
                        for k in range(min(n, k1 + 1)))
        tap.ok(checked > 0 and worst <= 1e-3 and unexplained == 0,
               "demo, %s linf 8/255: %d first-segment steps from advex's own iterates equal "
               "the reference's step on all but %.3f%% of the components with a non-zero "
               "gradient, or else only on components whose sign is not stable in float32 "
               "(%d unexplained; %d steps skipped: saturated loss, gradient = rounding noise; "
               "whole first segments identical on %d of %d images)" %
               (kind, checked, 100 * worst, unexplained, skipped, same, len(x)))
        tap.ok(ctl, "control, %s: the step without momentum (a = 1) differs from advex's" % kind)
        tap.ok(agree == len(x),
               "demo, %s linf 8/255, %d iterations: the same success or failure as the "
               "reference on %d of %d images (%d successes)" % (kind, iters, agree, len(x), succ))


# ---------------------------------------------------------------------------
# 3. Square, the same draws

def square_tests(tmp, f, x, labels):
    q = 300
    steps, finals, _, res = run_dump(tmp, DEMO, x, "square", "linf", EPS, q, seed=11,
                                     dump_x=False, tag="sq")
    agree, same_pt, same_q, ctl, succ = 0, 0, 0, 0, 0
    for i in range(len(x)):
        x0 = torch.from_numpy(x[i:i + 1]).double()
        ref = R.square(f, x0, labels[i], EPS, q, seed=11)
        mine = bool(finals[i][0])
        succ += mine
        agree += mine == ref["success"]
        same_q += len(steps[i]) == ref["queries"]
        same_pt += float(np.abs(res[i] - ref["best"][0].numpy()).max()) <= 1e-6
        other = R.square(f, x0, labels[i], EPS, q, seed=12)
        ctl += float(np.abs(res[i] - other["best"][0].numpy()).max()) > 1e-6
    tap.ok(same_pt == len(x) and same_q == len(x) and agree == len(x),
           "square linf 8/255, %d queries, seed 11, demo images: the same accepted point "
           "(|diff| <= 1e-6) on %d, the same number of queries on %d, the same "
           "success on %d of %d (%d successes)" % (q, same_pt, same_q, agree, len(x), succ))
    tap.ok(ctl == len(x), "control: the reference with seed 12 ends elsewhere on %d of %d"
           % (ctl, len(x)))


# ---------------------------------------------------------------------------
# 3b. Square L2, the same draws

def l2_bound(eps, px):
    """The largest L2 norm a point on the eps-sphere can show once its
    pixels are float32 values in [0,1]: each rounds by at most 2^-25."""
    return eps + np.sqrt(px) * 2.0 ** -25


def comparable(mine, ref, n):
    """How many points from the start the two runs share: up to and
    including the first candidate that one accepts and the other does not
    (both keep the lower loss). Returns (count, ok): ok is False when that
    split is not a near-tie, i.e. the reference's loss gap there is larger
    than the two implementations' disagreement on the two losses involved
    (float32 in advex, float64 in the reference)."""
    mb, rb, mk, rk = mine[0], ref[0], 0, 0
    for k in range(1, min(n, len(mine), len(ref))):
        if (mine[k] < mb) != (ref[k] < rb):
            slack = abs(mine[k] - ref[k]) + abs(mine[mk] - ref[rk])
            return k + 1, abs(ref[k] - rb) <= slack
        if mine[k] < mb:
            mb, mk = mine[k], k
        if ref[k] < rb:
            rb, rk = ref[k], k
    return min(n, len(mine), len(ref)), True


def square_l2_tests(tmp, f, x, labels):
    n_pts, px = 60, x[0].size
    for eps in (0.5, 1.0):
        steps, _, its, _ = run_dump(tmp, DEMO, x, "square", "l2", eps, n_pts, seed=11,
                                    tag="sq2pts")
        same, worst, ctl_seed, top, outside, compared, outside_raw = 0, 0.0, 0, 0.0, 0.0, 0, 0
        for i in range(len(x)):
            x0 = torch.from_numpy(x[i:i + 1]).double()
            ref = R.square_l2(f, x0, labels[i], eps, n_pts, seed=11, keep_points=n_pts)
            pts = ref["points"]
            k, tie = comparable([row[1] for row in steps[i]], ref["losses"], len(pts))
            compared += k
            d = max(float(np.abs(its[i][j] - pts[j][0].numpy()).max()) for j in range(k))
            same += tie and d <= 1e-6 and (k >= 10 or k == len(pts) == len(its[i]))
            worst = max(worst, d)
            outside_raw += any(float(p.min()) < 0.0 or float(p.max()) > 1.0 for p in
                               R.square_l2(f, x0, labels[i], eps, n_pts, seed=11,
                                           keep_points=n_pts, clip=False)["points"])
            other = R.square_l2(f, x0, labels[i], eps, n_pts, seed=12, keep_points=1)
            ctl_seed += float(np.abs(its[i][0] - other["points"][0][0].numpy()).max()) > 1e-3
            for p in its[i]:
                dd = p.astype(np.float64) - x[i].astype(np.float64)
                nrm = float(np.sqrt((dd * dd).sum()))
                top = max(top, nrm)
                outside = max(outside, float(-p.min()), float(p.max() - 1.0))
        tap.ok(same == len(x),
               "square l2 eps %g, seed 11, demo images: the points evaluated (start and "
               "candidates, at most %d, up to a success or to a candidate that one run "
               "accepts and the other does not, which must be a tie within their losses' "
               "float32/float64 disagreement: %d points in all, at least 10 per image) "
               "equal the reference's, |diff| <= 1e-6, on %d of %d images (worst %.1e)"
               % (eps, n_pts, compared, same, len(x), worst))
        tap.ok(ctl_seed == len(x), "control: the reference with seed 12 starts elsewhere on "
               "%d of %d" % (ctl_seed, len(x)))
        tap.ok(top <= l2_bound(eps, px) and outside <= 0.0,
               "square l2 eps %g: every point's L2 perturbation is at most eps + sqrt(n) "
               "2^-25 (max %.9f, bound %.9f) and every pixel in [0,1] (max overshoot %g)"
               % (eps, top, l2_bound(eps, px), outside))
        tap.ok(top >= 0.99 * eps and outside_raw > 0,
               "control: the norm reaches the sphere (max L2 %.6f >= 0.99 eps: a bound "
               "below eps would fail), and without the clip the reference's points leave "
               "[0,1] on %d of %d images" % (top, outside_raw, len(x)))

    # whole runs: success and queries image by image
    q = 1000
    for eps in (0.5, 1.0):
        steps, finals, _, res = run_dump(tmp, DEMO, x, "square", "l2", eps, q, seed=0,
                                         dump_x=False, tag="sq2")
        agree, same_q, succ, ref_succ, ctl = 0, 0, 0, 0, 0
        for i in range(len(x)):
            x0 = torch.from_numpy(x[i:i + 1]).double()
            ref = R.square_l2(f, x0, labels[i], eps, q, seed=0)
            mine = bool(finals[i][0])
            succ += mine
            ref_succ += ref["success"]
            agree += mine == ref["success"]
            same_q += len(steps[i]) == ref["queries"]
            if ref["success"]:  # control: Linf's p_init (0.05) is another run
                other = R.square_l2(f, x0, labels[i], eps, q, seed=0, p_init=0.05)
                ctl += other["queries"] != ref["queries"]
        tap.ok(agree == same_q == len(x),
               "square l2 eps %g, %d queries, demo images 0..%d: the same success on %d and the "
               "same number of queries on %d of %d (advex %d successes, the reference %d)"
               % (eps, q, len(x) - 1, agree, same_q, len(x), succ, ref_succ))
        tap.ok(ref_succ == 0 or ctl > 0,
               "control: the reference with p_init 0.05 needs another number of queries on %d "
               "of its %d successes" % (ctl, ref_succ))


# ---------------------------------------------------------------------------
# 4. the story

def advex_json(args):
    r = T.run_advex(["attack"] + args + ["--no-log", "--json", "--quiet", "--threads", "1"])
    import json
    lines = [json.loads(s) for s in r.stdout.splitlines() if s.startswith("{")]
    return r, lines


def story_tests(tmp):
    data = ["--data", DEMO_DATA]
    counts = {}
    for name, args in (("bim", ["--attack", "bim", "--iters", "20"]),
                       ("apgd-ce", ["--attack", "apgd-ce", "--iters", "20"]),
                       ("apgd-ce-1", ["--attack", "apgd-ce", "--iters", "1"])):
        r, out = advex_json(data + ["--images", "0:40", "--eps", "8/255"] + args)
        counts[name] = out[-1]["succeeded"] if out and r.returncode == 0 else -1
    tap.ok(counts["apgd-ce"] >= counts["bim"] > 0,
           "demo images 0..39, eps 8/255, 20 iterations: APGD-CE succeeds on %d, I-FGSM on %d"
           % (counts["apgd-ce"], counts["bim"]))
    tap.ok(0 <= counts["apgd-ce-1"] < counts["bim"],
           "control: APGD-CE with 1 iteration succeeds on %d, fewer than I-FGSM"
           % counts["apgd-ce-1"])
    zero = []
    for i in range(12):
        r, out = advex_json(data + ["--image", str(i), "--attack", "bim", "--loss", "prob-ce",
                                    "--iters", "20"])
        s = out[-1] if out else {}
        if not s.get("success", True) and s.get("zero_fraction") == 1.0:
            zero.append(i)
    tap.ok(len(zero) >= 3, "prob-ce I-FGSM fails with an exactly zero gradient on demo "
           "images %s" % zero)
    ok, ctl = [], []
    for i in zero:
        r, out = advex_json(data + ["--image", str(i), "--attack", "square", "--queries", "10000"])
        ok.append(bool(out) and out[-1].get("success") is True)
        r, out = advex_json(data + ["--image", str(i), "--attack", "square", "--queries", "100"])
        ctl.append(bool(out) and out[-1].get("success") is True)
    tap.ok(2 * sum(ok) > len(ok), "square linf 8/255 (10000 queries, no gradient) succeeds "
           "on %d of them, more than half: %s" % (sum(ok), ok))
    tap.ok(sum(ctl) < sum(ok), "control: with 100 queries on fewer: %s" % ctl)


# ---------------------------------------------------------------------------
# 5. restarts, the batch, --quantize

def restart_batch_quantize_tests(tmp):
    path, f, imgs = random_model(tmp)
    imgs = np.concatenate([imgs] + [T.pixels(T.test_image(32, 32, seed=40 + i)).numpy()
                                    for i in range(5)])
    eps, iters, R_ = 1.0 / 255, 10, 3
    steps, finals, its, res = run_dump(tmp, path, imgs, "apgd-dlr", "linf", eps, iters,
                                       seed=9, restarts=R_, tag="rs")
    agree, same_n, same_start, restarted, ctl_naive = 0, 0, 0, 0, False
    for i in range(len(imgs)):
        x0 = torch.from_numpy(imgs[i:i + 1]).double()
        with torch.no_grad():
            lab = int(f(x0).argmax())
        ref = R.apgd(f, x0, lab, "apgd-dlr", "linf", eps, iters, seed=9, restarts=R_)
        agree += bool(finals[i][0]) == ref["success"]
        same_n += len(steps[i]) == len(ref["xs"])
        restarted += len(ref["xs"]) > iters + 1
        # each restart's random start (the returned points after a DLR
        # plateau follow rounding noise, see above, so they are not compared)
        same_start += all(float(np.abs(its[i][r] - ref["xs"][r][0].numpy()).max()) <= 1e-6
                          for r in range(0, min(len(its[i]), len(ref["xs"])), iters + 1))
        if len(its[i]) > iters + 1:     # control: restart 1 seeded seed + 1
            naive = R.apgd_start(x0, eps, "linf", R.Rng(9 + 1))
            ctl_naive = float(np.abs(its[i][iters + 1] - naive[0].numpy()).max()) > 1e-6
    tap.ok(ctl_naive, "control: restart 1 does not start where seed + 1 would put it")
    tap.ok(agree == same_n == same_start == len(imgs) and restarted > 0,
           "random VGG, apgd-dlr linf 1/255, %d iterations, %d restarts from seed 9: the same "
           "success on %d, the same number of evaluations (restarts stop at a success) on "
           "%d, the same start point of every restart on %d of %d images (%d restarted)" %
           (iters, R_, agree, same_n, same_start, len(imgs), restarted))
    for kind, norm, q in (("apgd-ce", "linf", 10), ("square", "linf", 60),
                          ("square", "l2", 60), ("deepfool", "linf", 50), ("cw", "l2", 5)):
        s1, f1, _, r1 = run_dump(tmp, path, imgs, kind, norm, 4.0 / 255, q, seed=2,
                                 restarts=2 if kind != "square" else 1, dump_x=False, tag="b1")
        s4, f4, _, r4 = run_dump(tmp, path, imgs, kind, norm, 4.0 / 255, q, seed=2,
                                 restarts=2 if kind != "square" else 1, dump_x=False,
                                 batch=3, tag="b3")
        same = all(len(s1[i]) == len(s4[i]) and f1[i][0] == f4[i][0] for i in range(len(imgs)))
        d = float(np.abs(r1 - r4).max())
        nograd = all(row[5] == 0 for st in s4 for row in st) if kind == "square" else True
        tap.ok(same and d <= 1e-5 and nograd,
               "%s %s through attack_batch (3 slots, %d images) = one at a time: the same "
               "steps and outcomes, returned points within %.1e%s" %
               (kind, norm, len(imgs), d, "; no gradient taken while stepping" if kind == "square"
                else ""))
        if kind == "apgd-ce":   # control: another seed is not the same run
            _, _, _, r3 = run_dump(tmp, path, imgs, kind, "linf", 4.0 / 255, q, seed=3,
                                   restarts=2, dump_x=False, tag="b1s")
            tap.ok(float(np.abs(r3 - r4).max()) > 1e-3,
                   "control: with seed 3 the returned points differ (max %.2e)"
                   % float(np.abs(r3 - r4).max()))
    x, _ = R.demo_images(0, 4)
    _, _, its, _ = run_dump(tmp, DEMO, x, "apgd-ce", "linf", EPS, 10, quantize=1, tag="q")
    _, _, its0, _ = run_dump(tmp, DEMO, x, "apgd-ce", "linf", EPS, 10, tag="q0")

    def on_grid(its):
        allx = np.concatenate(its).astype(np.float64)
        return float(np.abs(allx * 255 - np.round(allx * 255)).max())

    inside = max(float(np.abs(its[i].astype(np.float64) - x[i].astype(np.float64)).max())
                 for i in range(len(x)))
    tap.ok(on_grid(its) <= 1e-4 and inside <= EPS + 1e-6,
           "--quantize: every APGD iterate is on the 8-bit grid (max |255 x - round| %.1e) "
           "and in the eps-ball (max |x - x0| %.6f)" % (on_grid(its), inside))
    tap.ok(on_grid(its0) > 0.01, "control: without it the iterates are off the grid "
           "(max |255 x - round| %.2f)" % on_grid(its0))


# ---------------------------------------------------------------------------
# 6. DeepFool

def deepfool_tests(tmp, model, f, x, what):
    for norm in ("l2", "linf"):
        steps, finals, _, res = run_dump(tmp, model, x, "deepfool", norm, 1.0, 50,
                                         dump_x=False, tag="df")
        agree, same_it, worst, ctl, succ = 0, 0, 0.0, 0, 0
        for i in range(len(x)):
            x0 = torch.from_numpy(x[i:i + 1]).double()
            with torch.no_grad():
                lab = int(f(x0).argmax())
            ref = R.deepfool(f, x0, lab, norm, 50)
            d = res[i].astype(np.float64) - x[i].astype(np.float64)
            mine = np.sqrt((d * d).sum()) if norm == "l2" else np.abs(d).max()
            want = ref["pert_" + norm]
            agree += bool(finals[i][0]) == ref["success"]
            succ += bool(finals[i][0])
            # the steps: one evaluation per iterate, the last one fooled
            same_it += len(steps[i]) - 1 == ref["iterations"]
            worst = max(worst, abs(mine - want) / max(want, 1e-12))
            other = R.deepfool(f, x0, lab, norm, 50, overshoot=0.1)["pert_" + norm]
            ctl += abs(mine - other) / max(other, 1e-12) > 1e-3
        tap.ok(agree == same_it == len(x) and worst <= 1e-3,
               "%s, deepfool %s: the same success on %d, the same number of iterations on "
               "%d of %d images (%d successes); the %s norm of the perturbation within "
               "%.1e relative (tolerance 1e-3: a sign flip of a float32 gradient component)"
               % (what, norm, agree, same_it, len(x), succ, norm, worst))
        tap.ok(ctl == len(x), "control: overshoot 0.1 instead of 0.02 gives other norms on "
               "%d of %d" % (ctl, len(x)))


# ---------------------------------------------------------------------------
# 7. C&W L2

def cw_tests(tmp, model, f, x, what, steps=20, bsteps=9):
    st, finals, _, res = run_dump(tmp, model, x, "cw", "l2", 1.0, steps, dump_x=False,
                                  tag="cw", restarts=1)
    agree, same_n, early, worst, succ, ctl = 0, 0, 0.0, 0.0, 0, 0
    for i in range(len(x)):
        x0 = torch.from_numpy(x[i:i + 1]).double()
        with torch.no_grad():
            lab = int(f(x0).argmax())
        ref = R.cw(f, x0, lab, steps, bsteps)
        mine_ok = bool(finals[i][0])
        agree += mine_ok == ref["success"]
        succ += mine_ok
        same_n += len(st[i]) == ref["evaluations"]
        # the start's loss (||x(w0) - x0||^2 + c f): from there on Adam's
        # first steps are sign steps (see below)
        early = max(early, abs(st[i][0][1] - ref["losses"][0]) / max(abs(ref["losses"][0]), 1e-12))
        if mine_ok and ref["success"]:
            d = res[i].astype(np.float64) - x[i].astype(np.float64)
            worst = max(worst, abs(np.sqrt((d * d).sum()) - ref["pert_l2"]) / ref["pert_l2"])
            other = R.cw(f, x0, lab, steps, 1)     # control: no binary search
            ctl += other["success"] is False or \
                abs(np.sqrt((d * d).sum()) - other["pert_l2"]) / other["pert_l2"] > 0.05
    tap.ok(agree == same_n == len(x) and early <= 1e-5 and worst <= 0.05,
           "%s, cw l2 (%d binary steps of %d Adam steps): the same success on %d and the same "
           "number of evaluations on %d of %d images (%d successes); the start's loss "
           "within %.1e relative; the smallest successful L2 perturbation within %.3f "
           "relative (tolerance 0.05: Adam's first steps are sign steps, m/sqrt(v) = +-1, "
           "so where x(w0) rounds back to x0 and the float64 gradient is exactly zero (flat "
           "image regions) advex's float32 rounding noise moves a pixel by lr that "
           "PyTorch leaves; near the decision boundary another iterate can then be the "
           "smallest successful one)" %
           (what, bsteps, steps, agree, same_n, len(x), succ, early, worst))
    tap.ok(ctl > 0, "control: one binary step (c = 1e-3 only) misses or ends elsewhere on "
           "%d of %d" % (ctl, succ))


def main():
    torch.set_num_threads(1)
    if T.advex_binary() is None or not os.path.exists(DUMP):
        tap.ok(False, "advex and tests/attack_dump not found (set ADVEX, ATTACK_DUMP)")
        tap.done()
    tmp = tempfile.mkdtemp(prefix="advex-attacks-ref.")
    first_segment_tests(tmp)
    f = R.Model(DEMO)
    x, _ = R.demo_images(0, 20)
    with torch.no_grad():
        labels = [int(f(torch.from_numpy(x[i:i + 1]).double()).argmax()) for i in range(len(x))]
    demo_apgd_tests(tmp, f, x, labels)
    square_tests(tmp, f, x[:8], labels[:8])
    square_l2_tests(tmp, f, x[:8], labels[:8])
    deepfool_tests(tmp, DEMO, f, x[:10], "demo")
    path, fv, imgs = random_model(tmp)
    deepfool_tests(tmp, path, fv, imgs, "random VGG")
    cw_tests(tmp, DEMO, f, x[:6], "demo")
    cw_tests(tmp, path, fv, imgs, "random VGG")
    story_tests(tmp)
    restart_batch_quantize_tests(tmp)
    tap.done()


if __name__ == "__main__":
    main()
