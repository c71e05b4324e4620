#!/usr/bin/python3
"""test_graph_parity.py - ONNX graphs (residual, depthwise, concat, pad,
slice) through advex-import and advex, against PyTorch (TAP).

Models, random weights from fixed seeds, batch norms with random affine
parameters and running statistics (so the batch-norm path is really
exercised), exported with torch.onnx.export at several opsets, some with
batch norms kept as nodes (TrainingMode.PRESERVE: the names of the
parameters survive), some folded by the exporter:

  torchvision resnet18, resnet50 (bottleneck), vgg16_bn, mobilenet_v2
  (depthwise convs, ReLU6 = Clip) at 96x96, num_classes=10;
  CIFAR ResNet-20 (3 stages of 3 BasicBlocks, 16/32/64 channels) at 32x32
  with the option-A shortcut as commonly written (x[:, :, ::2, ::2] then
  F.pad of the channels), option A by strided AvgPool + concat with
  x.mul(0), and option B (1x1 conv + batch norm).

For each: the import succeeds and the file is a well-formed graph
(tests/graphref.py check()); the file evaluated by PyTorch in float64
(graphref) computes what the PyTorch model computes in float64 - logits and
pixel gradient to 1e-9, which tests the conversion on its own; then `advex
diagnose --json --grad-out` against PyTorch float64: logits within 1e-4
relative (max|a-b|/max|b|), the pixel gradient within 1e-3 relative L2
(where PyTorch's own float32 gradient is more than 1e-3 off its float64
one, the image sits within float32 rounding of a ReLU/max-pool kink, and
advex may match either), the per-node gradient norms (layer_grad_norms:
one entry per node, matched by name; a batch norm folded into its conv
may have none; L2 norm of the gradient at the node's input, then one for
the model output) within 1e-3 relative of graphref's, and of PyTorch's
gradient at each Conv2d/Linear module's input where the node carries the
module's name.

Also: hand-written malformed graphs (a cycle, an input naming no node, an
add of two shapes, a concat of two heights) make `advex info --model`
exit non-zero with one line naming the node, while the same file without
the fault loads; and a 10-step targeted I-FGSM (PGD from the clean image)
on ResNet-20 equals PyTorch's float64 step from advex's previous image,
step by step (the rules of test_attack_parity.py).

Environment (set by `make check`): ADVEX, ADVEX_IMPORT, ADVEX_SRCDIR.
Without torch/onnx the test is skipped, unless CI is set.
"""

import copy
import json
import os
import shutil
import struct
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchref as T  # noqa: E402

tap = T.Tap()
T.require_torch(tap, need_onnx=True)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402

import graphref as G  # noqa: E402

torch.set_num_threads(2)

LOGIT_TOL = 1e-4
GRAD_TOL = 1e-3
NORM_TOL = 1e-3
CONVERT_TOL = 1e-9      # graphref (float64) vs PyTorch (float64), same weights
# When torch.onnx.export folds the batch norms, it rounds the folded weights
# to float32 (relative 6e-8 each): the file then holds other numbers than the
# model, and float64 evaluations of the two differ by that much, not 1e-9.
CONVERT_TOL_FOLDED = 1e-6
TARGET = 3
MEAN, STD = T.IMAGENET_MEAN, T.IMAGENET_STD
TMP = tempfile.mkdtemp(prefix="advex-graph-parity.")


def path(name):
    return os.path.join(TMP, name)


def first_line(s):
    lines = [ln for ln in s.splitlines() if ln.strip()]
    return lines[0] if lines else ""


# ---------------------------------------------------------------------------
# Models

class Shortcut(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride, option):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            q = planes // 4
            if option == "A":
                self.shortcut = Shortcut(lambda x: F.pad(
                    x[:, :, ::2, ::2], (0, 0, 0, 0, q, q), "constant", 0))
            elif option == "A-avgpool":
                def down(x):
                    y = F.avg_pool2d(x, 1, 2)
                    return torch.cat([y, y.mul(0)], 1)
                self.shortcut = Shortcut(down)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """CIFAR ResNet-20 (He et al. 2016, section 4.2): 3 stages of 3
    BasicBlocks with 16/32/64 channels, global average pool, Linear."""

    def __init__(self, option, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for k in range(3):
                blocks.append(BasicBlock(cin, planes, stride if k == 0 else 1, option))
                cin = planes
        self.layers = nn.Sequential(*blocks)
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.avg_pool2d(out, 8)      # the 8x8 of a 32x32 input
        out = out.view(out.size(0), -1)
        return self.linear(out)


def randomize(model, seed, hw):
    """Random batch-norm statistics and affine parameters from a seeded
    generator; the last Linear scaled so the logits have a std of about 3
    on the test image (neither ~0 nor saturated); eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(1.0 + 0.25 * torch.randn(n, generator=gen))
                mod.bias.copy_(0.1 * torch.randn(n, generator=gen))
                mod.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            if isinstance(mod, nn.ReLU):
                mod.inplace = False
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    last = [mod for mod in model.modules() if isinstance(mod, nn.Linear)][-1]
    x = T.normalize(T.pixels(T.test_image(hw, hw, seed)), MEAN, STD)
    with torch.no_grad():
        s = float(model(x).std())
        if s > 0:
            last.weight.mul_(3.0 / s)
            last.bias.mul_(3.0 / s)
    return model


def torchvision_model(name, seed):
    torch.manual_seed(seed)
    m = getattr(torchvision.models, name)(num_classes=10)
    if name.startswith("vgg"):
        # torchvision's AdaptiveAvgPool2d((7,7)) cannot be exported from the
        # 3x3 features of a 96x96 input (7 is no divisor of 3); pool to 3x3
        # (the identity here) and size the first Linear for 512*3*3.
        m.avgpool = nn.AdaptiveAvgPool2d((3, 3))
        m.classifier[0] = nn.Linear(512 * 3 * 3, 4096)
    return randomize(m, seed, 96)


def resnet20(option, seed):
    torch.manual_seed(seed)
    return randomize(ResNet20(option), seed, 32)


def export(model, name, opset, hw, preserve):
    f = path(name + ".onnx")
    kw = {"dynamic_axes": {"input": {0: "N"}, "out": {0: "N"}}}
    if preserve:
        kw["training"] = torch.onnx.TrainingMode.PRESERVE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, hw, hw), f, opset_version=opset,
                          input_names=["input"], output_names=["out"], **kw)
    return f


def normalize64(x):
    m = torch.tensor(MEAN, dtype=torch.float64).view(1, -1, 1, 1)
    s = torch.tensor(STD, dtype=torch.float64).view(1, -1, 1, 1)
    return (x - m) / s


def torch64(model, img, target):
    """PyTorch float64: logits, loss, pixel gradient, and the L2 norm of the
    gradient at the input of every Conv2d and Linear module, by name."""
    m64 = copy.deepcopy(model).double().eval()
    ins = {}

    def hook(name):
        def pre(mod, args):
            args[0].retain_grad()
            ins[name] = args[0]
        return pre
    handles = [mod.register_forward_pre_hook(hook(n)) for n, mod in m64.named_modules()
               if isinstance(mod, (nn.Conv2d, nn.Linear))]
    x = T.pixels(img).double().requires_grad_(True)
    z = m64(normalize64(x))
    loss = F.cross_entropy(z, torch.tensor([target]))
    loss.backward()
    for h in handles:
        h.remove()
    return {"logits": z.detach().numpy()[0], "loss": float(loss),
            "grad": x.grad.detach().numpy(),
            "module_norms": {n: float(torch.linalg.vector_norm(t.grad))
                             for n, t in ins.items() if t.grad is not None}}


def torch32_grad(model, img, target):
    x = T.pixels(img).requires_grad_(True)
    z = model(T.normalize(x, MEAN, STD))
    F.cross_entropy(z, torch.tensor([target])).backward()
    return x.grad.detach().numpy()


# ---------------------------------------------------------------------------

def op_word(shown):
    """The arch op of a layer_grad_norms "op" ("conv2d 3x3/1 p1" is conv2d,
    "global avgpool" is gap)."""
    w = str(shown).split(" ")[0]
    return "gap" if w == "global" else w


def check_model(label, model, hw, opset, preserve, want_ops, seed, chain=False):
    """Export, import, check the file, graphref vs PyTorch, advex vs both."""
    tag = label.replace(" ", "_")
    f = export(model, tag, opset, hw, preserve)
    out = path(tag + ".safetensors")
    p = T.run_importer([f, "--out", out, "--mean", ",".join(map(str, MEAN)),
                        "--std", ",".join(map(str, STD))])
    how = "opset %d, %s" % (opset, "BN kept" if preserve else "BN folded by exporter")
    if not tap.ok(p.returncode == 0, "%s (%s) imports: %s" % (
            label, how, first_line(p.stdout) if p.returncode == 0 else first_line(p.stderr))):
        return None
    mf = G.ModelFile(out)
    ops = [n["op"] for n in mf.nodes]
    counts = {op: ops.count(op) for op in want_ops}
    bad = mf.check()
    fmt = "1" if chain else "2"
    tap.ok(mf.meta.get("advex.format") == fmt and not bad and
           all(counts[op] == n for op, n in want_ops.items()),
           "%s: format %s%s, %d nodes in topological order, unique names, every input "
           "resolvable, exactly the needed tensors; %s%s"
           % (label, fmt, " (a chain)" if chain else "", len(mf.nodes), ", ".join("%d %s" % (counts[o], o) for o in want_ops),
              "" if not bad else "; " + "; ".join(bad[:3])))
    if bad:
        return None

    img = T.test_image(hw, hw, seed=seed + 100)
    ref = torch64(model, img, TARGET)
    gr = mf.run(T.pixels(img), TARGET)
    e_l, e_g = T.rel_err(gr["logits"], ref["logits"]), T.rel_l2(gr["grad"], ref["grad"])
    tol = CONVERT_TOL if preserve else CONVERT_TOL_FOLDED
    tap.ok(e_l < tol and e_g < tol,
           "%s: the file evaluated by PyTorch (graphref, float64) = the model in float64: "
           "logits rel err %.1e, pixel gradient rel L2 %.1e (< %g%s)"
           % (label, e_l, e_g, tol, "" if preserve else ": weights folded in float32"))

    if T.advex_binary() is None:
        tap.skip("%s: advex binary not built" % label)
        return out
    png = path(tag + ".png")
    T.write_png(png, img)
    gfile = path(tag + ".npy")
    js, p = T.diagnose(out, png, target=TARGET, grad_out=gfile)
    if not tap.ok(js is not None, "%s: advex diagnose --json --grad-out runs (exit %d)%s"
                  % (label, p.returncode, "" if js is not None else
                     ": " + (first_line(p.stderr) or first_line(p.stdout)))):
        return out
    logits = np.asarray(js.get("logits", []), dtype=np.float64)
    e = T.rel_err(logits, ref["logits"]) if logits.shape == ref["logits"].shape else np.inf
    if not tap.ok(e < LOGIT_TOL, "%s: advex logits vs PyTorch rel err %.2e < %g"
                  % (label, e, LOGIT_TOL)):
        tap.diag("advex:   %s" % np.array2string(logits, precision=5))
        tap.diag("pytorch: %s" % np.array2string(ref["logits"], precision=5))
    # The reference is PyTorch in float64. When PyTorch's own float32
    # gradient is more than GRAD_TOL off it, the image sits within float32
    # rounding of a ReLU/max-pool kink (see test_parity.py) and either
    # decision is right: advex must then match one of the two references.
    g = T.read_npy(gfile)
    g32 = torch32_grad(model, img, TARGET)
    e32 = T.rel_l2(g32, ref["grad"])
    e = T.rel_l2(g, ref["grad"]) if g.shape == ref["grad"].shape else np.inf
    e_32 = T.rel_l2(g, g32) if g.shape == g32.shape else np.inf
    if e32 < GRAD_TOL:
        tap.ok(e < GRAD_TOL, "%s: advex pixel gradient vs PyTorch float64 rel L2 %.2e < %g "
               "(PyTorch float32 vs float64: %.2e)" % (label, e, GRAD_TOL, e32))
    else:
        tap.ok(e < GRAD_TOL or e_32 < GRAD_TOL,
               "%s: advex pixel gradient rel L2 %.2e vs PyTorch float64, %.2e vs PyTorch "
               "float32, one < %g (PyTorch float32 vs float64 %.2e: a kink within float32 "
               "rounding)" % (label, e, e_32, GRAD_TOL, e32))

    # One entry per node; a batchnorm folded into the conv2d/dense before it
    # at load time (docs/model-format.md) may have no entry of its own.
    lg = js.get("layer_grad_norms", [])
    consumers = {}
    for n in mf.nodes:
        for i in n["inputs"]:
            consumers[i] = consumers.get(i, 0) + 1
    byname = {n["name"]: n for n in mf.nodes}
    folded = [i for i, n in enumerate(mf.nodes) if n["op"] == "batchnorm" and
              n["inputs"][0] in byname and byname[n["inputs"][0]]["op"] in ("conv2d", "dense")
              and consumers[n["inputs"][0]] == 1]
    keep = list(range(len(mf.nodes)))
    if len(lg) == len(mf.nodes) + 1 - len(folded):
        keep = [i for i in keep if i not in folded]
    # advex sorts the nodes itself: where every node has a name, entries
    # are matched by name, else (a chain) by position.
    names = [x.get("name") for x in lg[:-1]]
    if all(mf.nodes[i]["label"] for i in keep) and len(set(names)) == len(names) and \
            sorted(names) == sorted(mf.nodes[i]["label"] for i in keep):
        pos = {nm: k for k, nm in enumerate(names)}
        keep.sort(key=lambda i: pos[mf.nodes[i]["label"]])
    want = [mf.nodes[i]["label"] for i in keep]
    if not tap.ok(len(lg) == len(keep) + 1 and names == want and
                  [op_word(x.get("op", "")) for x in lg[:-1]] == [ops[i] for i in keep],
                  "%s: layer_grad_norms has one entry per node (%d of %d: %d batch norms "
                  "folded%s) with its name and op, then the output"
                  % (label, len(keep), len(mf.nodes), len(folded),
                     "" if len(keep) < len(mf.nodes) else ", reported")):
        tap.diag("advex: %d entries, first names %s, ops %s"
                 % (len(lg), names[:5], [x.get("op") for x in lg[:5]]))
        return out
    refn = [gr["norms"][i] for i in keep] + [gr["norms"][-1]]
    lgi = {i: k for k, i in enumerate(keep)}
    worst, wi = 0.0, 0
    for i, (x, t) in enumerate(zip(lg, refn)):
        err = abs(float(x["l2"]) - t) / t if t > 0 else abs(float(x["l2"]))
        if err > worst:
            worst, wi = err, i
    where = "output" if wi == len(keep) else "%s %s" % (ops[keep[wi]], want[wi])
    tap.ok(worst < NORM_TOL, "%s: %d per-node gradient norms (at each node's input, then "
           "the output) vs graphref float64 within %g (worst %.2e at %s)"
           % (label, len(lg), NORM_TOL, worst, where))
    # A node carries its module's name (layer1.0.conv1, from the weight) or,
    # where the exporter folded the weights, the ONNX node's scope plus the
    # op (layer1.0.conv1.Conv).
    def module_of(label):
        for cand in (label, label.rsplit(".", 1)[0]):
            if cand in ref["module_norms"]:
                return cand
        return None
    mapped = [(lgi[i], module_of(n["label"])) for i, n in enumerate(mf.nodes)
              if n["op"] in ("conv2d", "dense") and module_of(n["label"])]
    worst, wn = 0.0, "-"
    for i, nm in mapped:
        t = ref["module_norms"][nm]
        err = abs(float(lg[i]["l2"]) - t) / t
        if err > worst:
            worst, wn = err, nm
    out_t = float(np.linalg.norm(F.softmax(torch.from_numpy(ref["logits"]), 0).numpy() -
                                 np.eye(len(ref["logits"]))[TARGET]))
    e_out = abs(float(lg[-1]["l2"]) - out_t) / out_t
    tap.ok(worst < NORM_TOL and e_out < NORM_TOL and (mapped or not preserve),
           "%s: gradient norms at the inputs of %d Conv2d/Linear modules named like "
           "their nodes (worst %.2e at %s) and at the output (%.2e) vs PyTorch float64 "
           "within %g" % (label, len(mapped), worst, wn, e_out, NORM_TOL))
    return out


# ---------------------------------------------------------------------------
# Malformed graphs, written by hand

def write_advex(fname, nodes, tensors, hw=8):
    meta = {"advex.format": "2", "advex.arch": json.dumps(nodes),
            "advex.input": json.dumps([3, hw, hw]), "advex.scale": "1",
            "advex.mean": "[0,0,0]", "advex.std": "[1,1,1]",
            "advex.channel_order": "RGB",
            "advex.classes": json.dumps(["c%d" % i for i in range(4)])}
    header = {"__metadata__": meta}
    blobs, off = [], 0
    for k, v in tensors.items():
        b = np.ascontiguousarray(v, dtype="<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(fname, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def check_malformed():
    rng = np.random.RandomState(5)

    def conv(name, cin, cout, inputs):
        return ({"op": "conv2d", "name": name, "inputs": inputs, "out": cout,
                 "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]},
                {name + ".weight": rng.randn(cout, cin, 3, 3) * 0.2,
                 name + ".bias": rng.randn(cout) * 0.1})

    def build(fault):
        ts = {}
        c1, t = conv("c1", 3, 4, ["input"])
        ts.update(t)
        c2, t = conv("c2", 4, 4, ["r1"])
        ts.update(t)
        r1 = {"op": "relu", "name": "r1", "inputs": ["c1"]}
        a1 = {"op": "add", "name": "a1", "inputs": ["c2", "r1"]}
        cat = {"op": "concat", "name": "cat", "inputs": ["a1", "r1"]}
        head = [{"op": "gap", "name": "g", "inputs": ["cat"]},
                {"op": "flatten", "name": "f", "inputs": ["g"]},
                {"op": "dense", "name": "d", "inputs": ["f"], "out": 4}]
        ts["d.weight"] = rng.randn(4, 8) * 0.3
        ts["d.bias"] = rng.randn(4) * 0.1
        extra = []
        if fault == "cycle":
            r1["inputs"] = ["a1"]               # c2 <- r1 <- a1 <- c2
        elif fault == "dangling":
            a1["inputs"] = ["c2", "nosuchnode"]
        elif fault == "add":
            c3, t = conv("c3", 4, 8, ["r1"])
            ts.update(t)
            extra = [c3]
            a1["inputs"] = ["c2", "c3"]          # 4x8x8 + 8x8x8
            cat["inputs"] = ["a1", "r1"]
        elif fault == "concat":
            extra = [{"op": "maxpool", "name": "mp", "inputs": ["r1"], "kernel": [2, 2],
                      "stride": [2, 2]}]
            cat["inputs"] = ["a1", "mp"]         # 4x8x8 beside 4x4x4
        return [c1, r1, c2] + extra + [a1, cat] + head, ts

    if T.advex_binary() is None:
        tap.skip("malformed graphs: advex binary not built")
        return
    f = path("good_graph.safetensors")
    write_advex(f, *build(None))
    p = T.run_advex(["info", "--model", f])
    tap.ok(p.returncode == 0, "control: the hand-written graph (conv, relu, conv, add, "
           "concat, gap, dense) loads: advex info exit %d%s"
           % (p.returncode, "" if p.returncode == 0 else ": " + first_line(p.stderr)))
    for fault, names, what in (("cycle", ("r1", "c2", "a1"), "a cycle r1 -> c2 -> a1 -> r1"),
                               ("dangling", ("a1",), "an input naming no node"),
                               ("add", ("a1",), "an add of 4x8x8 and 8x8x8"),
                               ("concat", ("cat",), "a concat of 8x8 and 4x4 tensors")):
        f = path("bad_%s.safetensors" % fault)
        write_advex(f, *build(fault))
        p = T.run_advex(["info", "--model", f])
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        named = len(lines) == 1 and any(("'%s'" % n) in lines[0] or ('"%s"' % n) in lines[0]
                                        or (" %s:" % n) in lines[0] or (" %s " % n) in lines[0]
                                        for n in names)
        tap.ok(p.returncode != 0 and named,
               "%s: advex info exits %d with one line naming %s: %s"
               % (what, p.returncode, " or ".join(names), first_line(p.stderr)))


# ---------------------------------------------------------------------------
# PGD (I-FGSM from the clean image) on ResNet-20, step by step

EPS = 8.0 / 255
ALPHA = 2.0 / 255
NOISE = 1e-6


def check_pgd(model, mfile):
    if T.advex_binary() is None or mfile is None:
        tap.skip("PGD on ResNet-20: advex binary not built or no model")
        return
    m64 = copy.deepcopy(model).double().eval()
    img = T.test_image(32, 32, seed=21)
    png = path("pgd.png")
    T.write_png(png, img)
    x0 = T.pixels(img).double()

    def grad_at(x, cls):
        x = x.clone().requires_grad_(True)
        z = m64(normalize64(x))
        F.cross_entropy(z, torch.tensor([cls])).backward()
        return x.grad.detach(), z.detach()

    def step_from(x, g):
        y = x - ALPHA * torch.sign(g)
        return torch.min(torch.max(y, x0 - EPS), x0 + EPS).clamp(0, 1)

    def unstable(x, g, target):
        gen = torch.Generator().manual_seed(3)
        u = torch.zeros(g.shape, dtype=torch.bool)
        for _ in range(8):
            d = (torch.rand(x.shape, generator=gen, dtype=torch.float64) * 2 - 1) * NOISE
            gi, _ = grad_at(x + d, target)
            u |= torch.sign(gi) != torch.sign(g)
        return u.numpy()

    _, z = grad_at(x0, 0)
    target = int(z.argmin())
    prev = x0.clone()
    out = path("pgd.npy")
    for k in range(1, 11):
        g, _ = grad_at(prev, target)
        ref = step_from(prev, g)
        r = T.run_advex(["attack", "--model", mfile, "--image", png, "--attack", "ifgsm",
                         "--eps", "8/255", "--alpha", "2/255", "--iters", str(k),
                         "--target", str(target), "--loss", "ce", "--no-log",
                         "--threads", "2", "--npy-out", out, "--quiet"])
        if not tap.ok(r.returncode == 0, "ResNet-20 I-FGSM --iters %d runs%s"
                      % (k, "" if r.returncode == 0 else ": " + first_line(r.stderr))):
            return
        got = torch.from_numpy(T.read_npy(out)).double()
        off = ((got - ref).abs() > 1e-3).numpy()
        # Components at the eps-ball's edge stop moving after a few steps;
        # what must move is a real share of PyTorch's step, so a step that
        # does nothing is not compared with one that does nothing.
        moved = float(((ref - prev).abs() > 1e-3).double().mean())
        ok = off.mean() <= 1e-3
        why = ""
        if k == 1:
            # The excuse must not cover a real error: the components of a 4x4
            # patch where the gradient is large must not count as noise.
            u = unstable(prev, g, target)
            big = np.abs(g.numpy()) >= 0.1 * float(g.abs().max())
            patch = np.zeros_like(big)
            patch[..., 12:16, 12:16] = True
            bad = big & patch
            tap.ok(bad.any() and (bad & ~u).any(),
                   "control: %d large-gradient components of a 4x4 patch are not excused "
                   "as float32 noise (%d of %d components unstable at step 1)"
                   % (int(bad.sum()), int(u.sum()), u.size))
        if not ok:
            u = unstable(prev, g, target)
            ok = not (off & ~u).any()
            why = ("; all within the %d components whose float64 step flips under +-%g "
                   "input noise" % (int(u.sum()), NOISE)) if ok else \
                ("; %d outside the %d unstable components" % (int((off & ~u).sum()),
                                                              int(u.sum())))
        tap.ok(ok and moved >= 0.1,
               "ResNet-20 step %d toward class %d: advex's image equals PyTorch's float64 "
               "step from advex's previous one (%d of %d components differ by > 1e-3%s; "
               "%.0f%% of the components moved, >= 10%%)" % (k, target, int(off.sum()), off.size, why, 100 * moved))
        prev = got


# ---------------------------------------------------------------------------

def main():
    try:
        if T.advex_binary() is None:
            tap.diag("advex binary not found ($ADVEX=%s): advex comparisons skipped"
                     % os.environ.get("ADVEX"))
        r20 = {}
        cases = [
            ("ResNet-20 option A (slice + channel pad)", lambda: resnet20("A", 20), 32, 11,
             True, {"add": 9, "slice": 4, "pad": 2, "batchnorm": 19}, "A"),
            ("ResNet-20 option A (avgpool + concat x.mul(0))",
             lambda: resnet20("A-avgpool", 21), 32, 13, False,
             {"add": 9, "concat": 2, "mul": 2, "avgpool": 3}, None),
            ("ResNet-20 option B (1x1 conv)", lambda: resnet20("B", 22), 32, 17, True,
             {"add": 9, "conv2d": 21, "batchnorm": 21}, None),
            ("resnet18", lambda: torchvision_model("resnet18", 1), 96, 13, True,
             {"add": 8, "conv2d": 20, "batchnorm": 20, "maxpool": 1}, None),
            ("resnet18 folded", lambda: torchvision_model("resnet18", 1), 96, 17, False,
             {"add": 8, "conv2d": 20, "batchnorm": 0}, None),
            ("resnet50", lambda: torchvision_model("resnet50", 2), 96, 11, True,
             {"add": 16, "conv2d": 53, "batchnorm": 53}, None),
            ("vgg16_bn", lambda: torchvision_model("vgg16_bn", 3), 96, 17, True,
             {"conv2d": 13, "batchnorm": 13, "maxpool": 5, "dense": 3}, "chain"),
            ("mobilenet_v2", lambda: torchvision_model("mobilenet_v2", 4), 96, 11, False,
             {"conv2d": 52, "clip": 35, "add": 10}, None),
        ]
        only = os.environ.get("GRAPH_PARITY_ONLY")     # a label substring, to debug one
        for label, build, hw, opset, preserve, want, keep in cases:
            if only and only not in label:
                continue
            try:
                model = build()
                out = check_model(label, model, hw, opset, preserve, want,
                                  seed=len(label), chain=(keep == "chain"))
                if keep:
                    r20[keep] = (model, out)
            except Exception as e:  # one model's crash must not hide the others
                import traceback
                tap.ok(False, "%s crashed: %s: %s" % (label, type(e).__name__, e))
                tap.diag(traceback.format_exc())
        if only:
            return
        check_malformed()
        if "A" in r20:
            check_pgd(*r20["A"])
        else:
            tap.ok(False, "PGD on ResNet-20: the model did not import")
    except Exception as e:  # a crash is a failure, not a silent stop
        import traceback
        tap.ok(False, "test_graph_parity.py crashed: %s: %s" % (type(e).__name__, e))
        tap.diag(traceback.format_exc())
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
        tap.done()


if __name__ == "__main__":
    main()
