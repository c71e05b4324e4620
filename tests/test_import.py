#!/usr/bin/python3
"""test_import.py - tools/advex-import against PyTorch and ONNX (TAP).

Environment (set by `make check`): ADVEX (the advex binary), ADVEX_IMPORT
(tools/advex-import), ADVEX_SRCDIR. Without torch/onnx the test is skipped,
unless CI is set. Where the advex binary exists, `advex diagnose` logits are
compared with PyTorch's within 1e-4 relative (max|a-b| / max|b|).
"""

import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchref as T  # noqa: E402

tap = T.Tap()
T.require_torch(tap, need_onnx=True)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

torch.set_num_threads(2)
LOGIT_TOL = 1e-4
ADVEX = T.advex_binary()
TMP = tempfile.mkdtemp(prefix="advex-import-test.")


def path(name):
    return os.path.join(TMP, name)


def first_line(s):
    lines = [ln for ln in s.splitlines() if ln.strip()]
    return lines[0] if lines else ""


def one_line_error(p):
    """stderr is exactly one non-empty line and nothing went to stdout."""
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    return len(lines) == 1 and not p.stdout.strip()


def arch_of(header):
    return json.loads(header["__metadata__"]["advex.arch"])


def compare_logits(label, model_file, img, ref_logits):
    """advex diagnose logits vs ref_logits (numpy) within LOGIT_TOL."""
    if ADVEX is None:
        tap.skip("%s: advex logits (advex binary not built)" % label)
        return
    png = path("img_%d.png" % tap.n)
    T.write_png(png, img)
    js, p = T.diagnose(model_file, png, target=0)
    if js is None:
        tap.ok(False, "%s: advex diagnose failed (exit %d): %s"
               % (label, p.returncode, first_line(p.stderr) or first_line(p.stdout)))
        return
    got = np.asarray(js.get("logits", []), dtype=np.float64)
    if got.shape != np.shape(ref_logits):
        tap.ok(False, "%s: advex gives %d logits, PyTorch %d"
               % (label, got.size, np.size(ref_logits)))
        return
    e = T.rel_err(got, ref_logits)
    if not tap.ok(e < LOGIT_TOL, "%s: advex logits vs PyTorch rel err %.2e < %g"
                  % (label, e, LOGIT_TOL)):
        tap.diag("advex:   %s" % np.array2string(got, precision=5))
        tap.diag("pytorch: %s" % np.array2string(np.asarray(ref_logits), precision=5))


def check_file_format(label, out):
    """The header parses, is padded to 8, metadata values are strings, the
    offsets tile the data region, dtypes are F32."""
    with open(out, "rb") as f:
        data = f.read()
    n, header, tensors = T.read_safetensors(out)
    meta = header.get("__metadata__", {})
    spans = sorted(tuple(v["data_offsets"]) for k, v in header.items()
                   if k != "__metadata__")
    tiled = all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and \
        (not spans or (spans[0][0] == 0 and spans[-1][1] == len(data) - 8 - n))
    good = (n % 8 == 0 and all(isinstance(v, str) for v in meta.values()) and
            all(v["dtype"] == "F32" for k, v in header.items() if k != "__metadata__") and
            tiled and meta.get("advex.format") == "1" and
            all(k in meta for k in ("advex.arch", "advex.input", "advex.scale",
                                    "advex.mean", "advex.std",
                                    "advex.channel_order", "advex.classes")))
    tap.ok(good, "%s: safetensors header (%d bytes, multiple of 8) parses, "
           "metadata all strings, %d F32 tensors tile the data region"
           % (label, n, len(tensors)))
    return header, tensors


def check_tensors_equal(label, header, tensors, state_dict):
    """Every tensor named by the arch equals the PyTorch parameter of that
    name (layout (out,in,kh,kw) / (out,in)), and nothing else is there."""
    sd = {k: v.detach().numpy() for k, v in state_dict.items()
          if not k.endswith("num_batches_tracked")}
    names_ok = set(tensors) == set(sd)
    worst = 0.0
    for k, v in sd.items():
        if k in tensors:
            if tensors[k].shape != v.shape:
                worst = float("inf")
            else:
                worst = max(worst, float(np.max(np.abs(tensors[k] - v))))
    tap.ok(names_ok and worst == 0.0,
           "%s: %d tensors equal the PyTorch state_dict bit for bit "
           "(same names and shapes; max diff %g)" % (label, len(sd), worst))
    if not names_ok:
        tap.diag("only in file: %s" % sorted(set(tensors) - set(sd)))
        tap.diag("only in state_dict: %s" % sorted(set(sd) - set(tensors)))


def expected_vgg_ops(model, gap=False):
    ops = []
    for mod in model.features:
        ops.append({nn.Conv2d: "conv2d", nn.BatchNorm2d: "batchnorm",
                    nn.ReLU: "relu", nn.MaxPool2d: "maxpool"}[type(mod)])
    if gap:
        ops.append("gap")
    ops.append("flatten")
    for mod in model.classifier:
        ops.append({nn.Linear: "dense", nn.ReLU: "relu",
                    nn.Dropout: "dropout"}[type(mod)])
    return ops


# ---------------------------------------------------------------------------
def test_help():
    p = T.run_importer(["--help"])
    tap.ok(p.returncode == 0 and "--out" in p.stdout and "0.485,0.456,0.406" in p.stdout
           and "0.229,0.224,0.225" in p.stdout and "--arch" in p.stdout,
           "advex-import --help exits 0 and documents --out, --arch and the "
           "torchvision mean/std")
    p = T.run_importer([path("nothing.pt")])
    tap.ok(p.returncode == 2, "advex-import without --out is a usage error (exit %d)"
           % p.returncode)


def test_vgg_state_dicts():
    # vgg11-BN config, narrow, 32x32 input, classic head: features 64x1x1.
    m = T.build_vgg("A", bn=True, head="classic", seed=3, in_hw=32,
                    width_div=8, hidden=32)
    out = path("vgg11bn.safetensors")
    p = T.import_model(m, out, ["--input", "3,32,32"], tmpdir=TMP)
    tap.ok(p.returncode == 0 and os.path.isfile(out),
           "vgg11-bn state_dict (32x32, width/8) imports: %s"
           % (first_line(p.stdout) if p.returncode == 0 else first_line(p.stderr)))
    if p.returncode != 0:
        return
    summary = p.stdout.strip()
    tap.ok(len(summary.splitlines()) == 1 and "layers" in summary and
           "parameters" in summary and out in summary,
           "the importer prints a one-line summary with layers, parameters and "
           "the output file")
    n_params = sum(v.numel() for v in m.parameters())
    tap.ok(("%d parameters" % n_params) in summary,
           "the summary counts %d parameters, as PyTorch does" % n_params)
    header, tensors = check_file_format("vgg11-bn", out)
    check_tensors_equal("vgg11-bn", header, tensors, m.state_dict())
    arch = arch_of(header)
    ops = [l["op"] for l in arch]
    tap.ok(ops == expected_vgg_ops(m),
           "vgg11-bn arch is conv2d,batchnorm,relu,...,flatten,dense,relu,"
           "dropout,... (%d layers, %d batchnorm)" % (len(ops), ops.count("batchnorm")))
    names = [l.get("name") for l in arch if "name" in l]
    want = ["features.%d" % i for i, mod in enumerate(m.features)
            if isinstance(mod, (nn.Conv2d, nn.BatchNorm2d))] + \
        ["classifier.%d" % i for i, mod in enumerate(m.classifier)
         if isinstance(mod, nn.Linear)]
    tap.ok(names == want, "layer names are the parameter prefixes (%s ... %s)"
           % (names[0], names[-1]))
    bn_eps = [l.get("eps") for l in arch if l["op"] == "batchnorm"]
    tap.ok(all(abs(e - 1e-5) < 1e-12 for e in bn_eps),
           "batchnorm layers carry eps 1e-5")
    meta = header["__metadata__"]
    tap.ok(json.loads(meta["advex.input"]) == [3, 32, 32] and
           json.loads(meta["advex.mean"]) == [0, 0, 0] and
           json.loads(meta["advex.std"]) == [1, 1, 1] and
           float(meta["advex.scale"]) == 1.0 and meta["advex.channel_order"] == "RGB" and
           json.loads(meta["advex.classes"])[:3] == ["airplane", "bird", "car"] and
           "advex.removed_softmax" not in meta,
           "metadata defaults: input [3,32,32], mean 0, std 1, scale 1, RGB, "
           "STL-10 class names, no removed_softmax")
    tap.ok(not [f for f in os.listdir(TMP) if f.endswith(".tmp")],
           "no temporary file is left beside the output")
    img = T.test_image(32, 32, seed=5)
    with torch.no_grad():
        ref = m(T.pixels(img)).numpy()[0]
    compare_logits("vgg11-bn 32x32 (BN folding, flatten)", out, img, ref)

    # Same weights wrapped as {'state_dict': ...} and as a whole module.
    out2 = path("wrapped.safetensors")
    pt = path("wrapped.pt")
    torch.save({"state_dict": m.state_dict(), "epoch": 3}, pt)
    p = T.run_importer([pt, "--out", out2, "--input", "3,32,32"])
    same = p.returncode == 0
    if same:
        _, t2 = T.read_safetensors(out2)[1:]
        same = set(t2) == set(tensors) and all(np.array_equal(tensors[k], t2[k]) for k in tensors)
    tap.ok(same, "{'state_dict': ...} checkpoint imports to the same tensors")
    whole = nn.Module()
    whole.features = m.features
    whole.classifier = m.classifier
    torch.save(whole, pt)
    p = T.run_importer([pt, "--out", out2, "--input", "3,32,32"])
    same = p.returncode == 0
    if same:
        _, t2 = T.read_safetensors(out2)[1:]
        same = set(t2) == set(tensors) and all(np.array_equal(tensors[k], t2[k]) for k in tensors)
    tap.ok(same, "a whole saved nn.Module imports to the same tensors")

    # --arch forcing.
    pt = path("vgg11bn.pt")
    torch.save(m.state_dict(), pt)
    p = T.run_importer([pt, "--out", out2, "--input", "3,32,32", "--arch", "vgg11"])
    tap.ok(p.returncode == 0, "--arch vgg11 accepted for a vgg11 state_dict")
    p = T.run_importer([pt, "--out", path("bad.safetensors"), "--input", "3,32,32",
                        "--arch", "vgg16"])
    tap.ok(p.returncode == 1 and one_line_error(p) and "vgg16" in p.stderr,
           "--arch vgg16 on a vgg11 state_dict: exit 1, one line: %s"
           % first_line(p.stderr))

    # --classes, comma list and @file; wrong count refused.
    names = ["c%d" % i for i in range(10)]
    cf = path("classes.txt")
    with open(cf, "w") as f:
        f.write("\n".join(names) + "\n")
    p = T.run_importer([pt, "--out", out2, "--input", "3,32,32", "--classes", "@" + cf,
                        "--mean", "0.5,0.25,0.125", "--std", "2,3,4", "--scale", "255",
                        "--bgr"])
    ok = p.returncode == 0
    if ok:
        meta = T.read_safetensors(out2)[1]["__metadata__"]
        ok = (json.loads(meta["advex.classes"]) == names and
              json.loads(meta["advex.mean"]) == [0.5, 0.25, 0.125] and
              json.loads(meta["advex.std"]) == [2, 3, 4] and
              float(meta["advex.scale"]) == 255 and meta["advex.channel_order"] == "BGR")
    tap.ok(ok, "--classes @file, --mean, --std, --scale 255 and --bgr land in the metadata")
    p = T.run_importer([pt, "--out", path("bad.safetensors"), "--input", "3,32,32",
                        "--classes", "a,b,c"])
    tap.ok(p.returncode == 1 and one_line_error(p) and "3" in p.stderr and "10" in p.stderr,
           "--classes with 3 names for 10 outputs refused: %s" % first_line(p.stderr))

    # Preprocessing is applied by advex: compare with a non-trivial mean/std.
    out3 = path("vgg11bn_norm.safetensors")
    p = T.run_importer([pt, "--out", out3, "--input", "3,32,32",
                        "--mean", ",".join(map(str, T.IMAGENET_MEAN)),
                        "--std", ",".join(map(str, T.IMAGENET_STD))])
    if p.returncode == 0:
        with torch.no_grad():
            ref = m(T.normalize(T.pixels(img), T.IMAGENET_MEAN, T.IMAGENET_STD)).numpy()[0]
        compare_logits("vgg11-bn with ImageNet mean/std", out3, img, ref)
    else:
        tap.ok(False, "import with --mean/--std: %s" % first_line(p.stderr))

    # Global-average-pooled head: vgg11 (no BN) at 64x64, first Linear takes C.
    g = T.build_vgg("A", bn=False, head="small", seed=4, in_hw=64, width_div=8,
                    gap=True, n_classes=7)
    outg = path("vgg11gap.safetensors")
    p = T.import_model(g, outg, ["--input", "3,64,64"], tmpdir=TMP)
    ok = p.returncode == 0
    if ok:
        header, tensors = T.read_safetensors(outg)[1:]
        ops = [l["op"] for l in arch_of(header)]
        ok = ops == expected_vgg_ops(g, gap=True) and \
            json.loads(header["__metadata__"]["advex.classes"]) == ["class%d" % i for i in range(7)]
    tap.ok(ok, "vgg11 with a Linear(C) head at 64x64 imports as ... maxpool,gap,flatten,"
           "dense with class0..class6")
    if ok:
        img64 = T.test_image(64, 64, seed=6)
        with torch.no_grad():
            ref = g(T.pixels(img64)).numpy()[0]
        compare_logits("vgg11 gap head 64x64", outg, img64, ref)

    # A 25088-input head at 96x96 needs torchvision's adaptive avgpool.
    v = T.build_vgg16("small", seed=1)
    v.classifier[0] = nn.Linear(25088, 10)
    p = T.import_model(v, path("bad.safetensors"), [], tmpdir=TMP)
    msg = first_line(p.stderr)
    tap.ok(p.returncode == 1 and one_line_error(p) and "25088" in msg and
           "4608" in msg and "AdaptiveAvgPool" in msg,
           "25088-input head at 96x96 refused, exit 1: %s" % msg)
    tap.ok(not os.path.exists(path("bad.safetensors")),
           "a refused import leaves no output file")

    # Not a VGG at all.
    pt = path("notvgg.pt")
    torch.save({"conv1.weight": torch.zeros(4, 3, 3, 3)}, pt)
    p = T.run_importer([pt, "--out", path("bad.safetensors")])
    tap.ok(p.returncode == 1 and one_line_error(p),
           "a non-VGG state_dict is refused in one line: %s" % first_line(p.stderr))


# ---------------------------------------------------------------------------
# ONNX

class NetA(nn.Module):
    """conv+bn+relu+maxpool+avgpool+conv+gap+flatten+linear+softmax."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool1 = nn.MaxPool2d(2)
        self.pool2 = nn.AvgPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, stride=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)
        self.softmax = nn.Softmax(dim=1)

    def logits(self, x):
        x = self.pool2(self.pool1(torch.relu(self.bn1(self.conv1(x)))))
        x = torch.relu(self.conv2(x))
        x = torch.flatten(self.gap(x), 1)
        return self.fc(x)

    def forward(self, x):
        return self.softmax(self.logits(x))


class NetB(nn.Module):
    """conv+relu+maxpool(ceil)+conv(stride 2)+relu, flatten by view, Gemm,
    relu, dropout, Gemm: no softmax."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5, padding=2)
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(8 * 8 * 8, 20)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(20, 5)

    def logits(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        x = x.view(x.size(0), -1)
        return self.fc2(self.drop(torch.relu(self.fc1(x))))

    def forward(self, x):
        return self.logits(x)


def randomize(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(1 + 0.3 * torch.randn(n, generator=gen))
                mod.bias.copy_(0.2 * torch.randn(n, generator=gen))
                mod.running_mean.copy_(0.3 * torch.randn(n, generator=gen))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            elif isinstance(mod, (nn.Conv2d, nn.Linear)):
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=gen))
    model.eval()
    return model


def export(model, name, opset, hw, preserve=False, dynamic=True):
    f = path(name)
    kw = {}
    if preserve:
        kw["training"] = torch.onnx.TrainingMode.PRESERVE
    if dynamic:
        kw["dynamic_axes"] = {"input": {0: "N"}, "out": {0: "N"}}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, hw, hw), f, opset_version=opset,
                          input_names=["input"], output_names=["out"], **kw)
    return f


def test_onnx_exports():
    torch.manual_seed(11)
    a = randomize(NetA(), 12)
    torch.manual_seed(13)
    b = randomize(NetB(), 14)
    img = T.test_image(32, 32, seed=7)
    x = T.pixels(img)
    with torch.no_grad():
        ref_a = a.logits(x).numpy()[0]
        ref_b = b.logits(x).numpy()[0]
    for opset in (11, 17):
        for preserve in (False, True):
            how = "BN kept" if preserve else "BN folded by exporter"
            label = "ONNX opset %d conv+bn+relu+maxpool+avgpool+conv+gap+linear+softmax (%s)" \
                % (opset, how)
            f = export(a, "a%d%s.onnx" % (opset, "p" if preserve else ""), opset, 32,
                       preserve=preserve)
            out = path("a%d%s.safetensors" % (opset, "p" if preserve else ""))
            p = T.run_importer([f, "--out", out])
            if not tap.ok(p.returncode == 0, "%s imports: %s" % (
                    label, first_line(p.stdout) if p.returncode == 0 else first_line(p.stderr))):
                continue
            header, tensors = check_file_format("opset %d %s" % (opset, how), out)
            meta = header["__metadata__"]
            ops = [l["op"] for l in arch_of(header)]
            want = ["conv2d"] + (["batchnorm"] if preserve else []) + \
                ["relu", "maxpool", "avgpool", "conv2d", "relu", "gap", "flatten", "dense"]
            tap.ok(ops == want and meta.get("advex.removed_softmax") == "true" and
                   json.loads(meta["advex.input"]) == [3, 32, 32],
                   "opset %d (%s): arch %s, softmax removed and recorded, input [3,32,32]"
                   % (opset, how, ",".join(ops)))
            ap = [l for l in arch_of(header) if l["op"] == "avgpool"][0]
            tap.ok(ap["kernel"] == [3, 3] and ap["stride"] == [2, 2] and
                   ap["padding"] == [1, 1] and ap["count_include_pad"] is True,
                   "opset %d: Pad+AveragePool becomes avgpool 3x3/2 pad 1 "
                   "count_include_pad" % opset)
            if preserve:
                names = [l.get("name") for l in arch_of(header) if "name" in l]
                ok = names == ["conv1", "bn1", "conv2", "fc"] and all(
                    np.array_equal(tensors[k], v.numpy()) for k, v in a.state_dict().items()
                    if k in tensors) and "bn1.running_var" in tensors
                tap.ok(ok, "opset %d (BN kept): layer names conv1,bn1,conv2,fc from "
                       "the initializers, tensors equal PyTorch's" % opset)
            compare_logits("opset %d %s" % (opset, how), out, img, ref_a)

        label = "ONNX opset %d conv+relu+maxpool(ceil)+conv/2+view+Gemm+relu+dropout+Gemm" % opset
        f = export(b, "b%d.onnx" % opset, opset, 32, dynamic=(opset == 17))
        out = path("b%d.safetensors" % opset)
        p = T.run_importer([f, "--out", out])
        if not tap.ok(p.returncode == 0, "%s imports: %s" % (
                label, first_line(p.stdout) if p.returncode == 0 else first_line(p.stderr))):
            continue
        header, tensors = T.read_safetensors(out)[1:]
        meta = header["__metadata__"]
        arch = arch_of(header)
        ops = [l["op"] for l in arch]
        tap.ok(ops == ["conv2d", "relu", "maxpool", "conv2d", "relu", "flatten", "dense",
                       "relu", "dense"] and "advex.removed_softmax" not in meta and
               arch[2]["ceil_mode"] is True and
               json.loads(meta["advex.classes"]) == ["class%d" % i for i in range(5)],
               "opset %d: Reshape(N,-1) becomes flatten, Gemm dense, maxpool ceil_mode, "
               "no removed_softmax, class0..class4 (arch %s)" % (opset, ",".join(ops)))
        ok = all(np.array_equal(tensors[k], v.numpy()) for k, v in b.state_dict().items())
        tap.ok(ok and set(tensors) == set(b.state_dict()),
               "opset %d: Gemm (transB=1) weights keep the (out,in) layout and names" % opset)
        compare_logits("opset %d flatten+Gemm" % opset, out, img, ref_b)

    # Symbolic H/W needs --input.
    f = path("a_dyn.onnx")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(a, torch.zeros(1, 3, 32, 32), f, opset_version=13,
                          input_names=["input"], output_names=["out"],
                          dynamic_axes={"input": {0: "N", 2: "H", 3: "W"}})
    p = T.run_importer([f, "--out", path("bad.safetensors")])
    tap.ok(p.returncode == 1 and one_line_error(p) and "--input" in p.stderr,
           "symbolic H/W without --input refused: %s" % first_line(p.stderr))
    p = T.run_importer([f, "--out", path("dyn.safetensors"), "--input", "3,48,48"])
    ok = p.returncode == 0 and json.loads(
        T.read_safetensors(path("dyn.safetensors"))[1]["__metadata__"]["advex.input"]) == [3, 48, 48]
    tap.ok(ok, "symbolic H/W with --input 3,48,48 imports with input [3,48,48]")


def make_graph(nodes, inits, name, hw=8, out_dim=None):
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, hw, hw])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, name, [inp], [out],
                          [numpy_helper.from_array(v.astype(np.float32), k)
                           for k, v in inits.items()])
    mp = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    f = path(name + ".onnx")
    onnx.save(mp, f)
    return f


def test_onnx_hand_built():
    rng = np.random.RandomState(0)
    w = rng.randn(4, 3, 3, 3).astype(np.float32) * 0.3
    cb = rng.randn(4).astype(np.float32) * 0.1
    mw = rng.randn(4 * 8 * 8, 6).astype(np.float32) * 0.05
    mb = rng.randn(6).astype(np.float32) * 0.1
    pads = np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64)

    # Pad + Conv (no pads) + Relu + Flatten + MatMul + Add: a dense with bias.
    nodes = [
        helper.make_node("Constant", [], ["pads"], name="pads_const",
                         value=numpy_helper.from_array(pads)),
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad0", mode="constant"),
        helper.make_node("Conv", ["p", "body.conv.weight", "body.conv.bias"], ["c"],
                         name="conv0", kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="relu0"),
        helper.make_node("Identity", ["r"], ["i"], name="id0"),
        helper.make_node("Flatten", ["i"], ["f"], name="flat0", axis=1),
        helper.make_node("MatMul", ["f", "W"], ["mm"], name="/head/MatMul"),
        helper.make_node("Add", ["B", "mm"], ["y"], name="/head/Add"),
    ]
    f = make_graph(nodes, {"body.conv.weight": w, "body.conv.bias": cb, "W": mw, "B": mb},
                   "handmade")
    out = path("handmade.safetensors")
    p = T.run_importer([f, "--out", out, "--input", "3,8,8"])
    ok = p.returncode == 0
    if ok:
        header, tensors = T.read_safetensors(out)[1:]
        arch = arch_of(header)
        ok = ([l["op"] for l in arch] == ["conv2d", "relu", "flatten", "dense"] and
              arch[0]["name"] == "body.conv" and arch[0]["padding"] == [1, 1] and
              arch[3]["name"] == "head.MatMul" and arch[3]["bias"] is True and
              np.array_equal(tensors["head.MatMul.weight"], mw.T) and
              np.array_equal(tensors["head.MatMul.bias"], mb) and
              np.array_equal(tensors["body.conv.weight"], w))
    tap.ok(ok, "hand-built Pad+Conv+Relu+Identity+Flatten+MatMul+Add: pad merged into "
           "the conv, MatMul weight transposed to (out,in), Add is its bias, names "
           "body.conv / head.MatMul: %s" % (first_line(p.stdout) or first_line(p.stderr)))
    if ok:
        img = T.test_image(8, 8, seed=9)
        xt = T.pixels(img)
        with torch.no_grad():
            h = torch.relu(torch.nn.functional.conv2d(xt, torch.from_numpy(w),
                                                      torch.from_numpy(cb), padding=1))
            ref = (torch.flatten(h, 1) @ torch.from_numpy(mw) + torch.from_numpy(mb)).numpy()[0]
        compare_logits("hand-built MatMul+Add", out, img, ref)

    # Errors: each one line naming the node and its op_type, exit 1.
    def refused(label, nodes, inits, node_name, op_type, extra=""):
        f = make_graph(nodes, inits, "bad_" + node_name.strip("/").replace("/", "_"))
        p = T.run_importer([f, "--out", path("bad.safetensors"), "--input", "3,8,8"])
        msg = first_line(p.stderr)
        tap.ok(p.returncode == 1 and one_line_error(p) and node_name in msg and
               op_type in msg and extra in msg,
               "%s: exit 1, one line naming %s (%s): %s" % (label, node_name, op_type, msg))

    conv = helper.make_node("Conv", ["x", "cw", "cb"], ["c"], name="conv0",
                            kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    refused("an unsupported operator (Softplus)",
            [conv, helper.make_node("Softplus", ["c"], ["y"], name="/act/Softplus")],
            {"cw": w, "cb": cb}, "/act/Softplus", "Softplus", "unsupported")
    refused("grouped Conv whose group does not divide the channels (group=2, 3 in)",
            [helper.make_node("Conv", ["x", "gw"], ["y"], name="/g/Conv",
                              kernel_shape=[3, 3], group=2)],
            {"gw": rng.randn(6, 1, 3, 3)}, "/g/Conv", "Conv", "group")
    refused("auto_pad SAME_UPPER",
            [helper.make_node("Conv", ["x", "cw"], ["y"], name="/s/Conv",
                              kernel_shape=[3, 3], auto_pad="SAME_UPPER")],
            {"cw": w}, "/s/Conv", "Conv", "auto_pad")
    refused("dilated Conv",
            [helper.make_node("Conv", ["x", "cw"], ["y"], name="/d/Conv",
                              kernel_shape=[3, 3], dilations=[2, 2])],
            {"cw": w}, "/d/Conv", "Conv", "dilation")
    refused("a Softmax that is not last",
            [conv, helper.make_node("Flatten", ["c"], ["f"], name="fl"),
             helper.make_node("Softmax", ["f"], ["s"], name="/sm/Softmax"),
             helper.make_node("Relu", ["s"], ["y"], name="r")],
            {"cw": w, "cb": cb}, "/sm/Softmax", "Softmax")
    refused("an Add of two shapes (4x8x8 + 4x4x4)",
            [conv, helper.make_node("MaxPool", ["c"], ["mp"], name="/res/MaxPool",
                                    kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Add", ["mp", "c"], ["y"], name="/res/Add")],
            {"cw": w, "cb": cb}, "/res/Add", "Add", "4x4x4")
    refused("a Concat of two heights",
            [conv, helper.make_node("MaxPool", ["c"], ["mp"], name="/cat/MaxPool",
                                    kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Concat", ["c", "mp"], ["y"], name="/cat/Concat", axis=1)],
            {"cw": w, "cb": cb}, "/cat/Concat", "Concat", "4x4x4")
    refused("a product of two image tensors",
            [conv, helper.make_node("Relu", ["c"], ["r"], name="/m/Relu"),
             helper.make_node("Mul", ["r", "c"], ["y"], name="/m/Mul")],
            {"cw": w, "cb": cb}, "/m/Mul", "Mul")
    refused("a constant that varies over H and W",
            [conv, helper.make_node("Mul", ["c", "hw"], ["y"], name="/hw/Mul")],
            {"cw": w, "cb": cb, "hw": rng.randn(1, 1, 8, 8)}, "/hw/Mul", "Mul", "height")
    refused("a slice along the batch axis",
            [conv, helper.make_node("Constant", [], ["s0"], name="k0",
                                    value=numpy_helper.from_array(np.array([1], np.int64))),
             helper.make_node("Constant", [], ["s1"], name="k1",
                              value=numpy_helper.from_array(np.array([2], np.int64))),
             helper.make_node("Constant", [], ["s2"], name="k2",
                              value=numpy_helper.from_array(np.array([0], np.int64))),
             helper.make_node("Slice", ["c", "s0", "s1", "s2"], ["y"], name="/b/Slice")],
            {"cw": w, "cb": cb}, "/b/Slice", "Slice", "batch")

    # An operator torch.onnx.export writes that advex does not have (GELU
    # becomes Div, Erf, Add, Mul): the first one it cannot convert is named.
    gm = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU()).eval()
    f = export(gm, "gelu.onnx", 13, 8)
    p = T.run_importer([f, "--out", path("bad.safetensors")])
    msg = first_line(p.stderr)
    tap.ok(p.returncode == 1 and one_line_error(p) and "/1/Erf" in msg and "Erf" in msg,
           "exported nn.GELU: exit 1, one line naming /1/Erf (Erf): %s" % msg)


class GraphOps(nn.Module):
    """Most of what advex-import converts, in one small graph: scalar Sub
    and Mul, a stride-2 Conv, a stand-alone BatchNorm (after a ReLU), a
    depthwise and a grouped Conv, LeakyRelu, Sigmoid, Tanh times a
    per-channel constant, Concat, a channel Slice, a per-channel Div, an
    asymmetric F.pad before a 2x2 Conv, ReLU6 (Clip), MaxPool(ceil_mode),
    AvgPool(count_include_pad=False, padding 1), an H/W Slice with a step,
    1 - x, flatten, Linear and a final LogSoftmax."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.gconv = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.register_buffer("scale", torch.linspace(0.5, 2.0, 8).view(1, 8, 1, 1))
        self.register_buffer("div", torch.linspace(1.5, 3.0, 16).view(1, 16, 1, 1))
        self.conv2 = nn.Conv2d(16, 12, 2)
        self.fc = nn.Linear(12 * 4 * 3, 5)

    def logits(self, x):
        x = (x - 0.5) * 2.0
        y = self.bn(torch.relu(self.conv1(x)))
        a = F.leaky_relu(self.dw(y), 0.1)
        b = torch.sigmoid(self.gconv(y))
        c = torch.tanh(y) * self.scale
        z = torch.cat([a, b, c], 1)[:, 4:20]
        z = z / self.div
        z = F.relu6(self.conv2(F.pad(z, (0, 1, 1, 0))))
        z = F.max_pool2d(z, 3, 2, ceil_mode=True)
        z = F.avg_pool2d(z, 2, 1, padding=1, count_include_pad=False)
        z = 1.0 - z[:, :, 1:, ::2]
        return self.fc(torch.flatten(z, 1))

    def forward(self, x):
        return F.log_softmax(self.logits(x), 1)


def test_onnx_graph_ops():
    import graphref as G
    torch.manual_seed(31)
    net = randomize(GraphOps(), 32)
    img = T.test_image(16, 16, seed=33)
    x = T.pixels(img)
    with torch.no_grad():
        ref = net.logits(x).numpy()[0]
    x64 = x.double().requires_grad_(True)
    n64 = GraphOps().double()
    n64.load_state_dict(net.state_dict())
    n64.eval()
    z64 = n64.logits(x64)
    torch.nn.functional.cross_entropy(z64, torch.tensor([1])).backward()
    for opset in (11, 14, 17):
        f = export(net, "graphops%d.onnx" % opset, opset, 16, preserve=True)
        out = path("graphops%d.safetensors" % opset)
        p = T.run_importer([f, "--out", out])
        if not tap.ok(p.returncode == 0, "opset %d graph of many ops imports: %s" % (
                opset, first_line(p.stdout) if p.returncode == 0 else first_line(p.stderr))):
            continue
        mf = G.ModelFile(out)
        ops = [n["op"] for n in mf.nodes]
        want = {"sub": 1, "mul": 3, "add": 1, "conv2d": 4, "batchnorm": 1,
                "leaky_relu": 1, "sigmoid": 1, "tanh": 1, "concat": 1, "slice": 3,
                "div": 1, "pad": 1, "clip": 1, "maxpool": 1, "avgpool": 1, "dense": 1}
        got = {k: ops.count(k) for k in want}
        bn = [n for n in mf.nodes if n["op"] == "batchnorm"]
        pad = [n for n in mf.nodes if n["op"] == "pad"]
        sl = [n for n in mf.nodes if n["op"] == "slice"]
        convs = [n for n in mf.nodes if n["op"] == "conv2d"]
        ok = (got == want and not mf.check() and mf.meta["advex.format"] == "2" and
              mf.meta.get("advex.removed_softmax") == "true" and
              bn and bn[0]["name"] == "bn" and
              mf.nodes[mf.nodes.index(bn[0]) - 1]["op"] == "relu" and
              [c.get("groups", 1) for c in convs] == [1, 8, 2, 1] and
              pad and pad[0].get("pads") == [1, 0, 0, 1] and
              sorted(json.dumps([s.get("channels"), s.get("start"), s.get("step")])
                     for s in sl) ==
              sorted(json.dumps(v) for v in ([[4, 20], None, None], [None, [1, 0], None],
                                              [None, None, [1, 2]])))
        tap.ok(ok, "opset %d: nodes %s; stand-alone batchnorm after a relu, groups 1/8/2/1, "
               "pad [1,0,0,1] before the 2x2 conv, channel and strided slices, "
               "removed_softmax (LogSoftmax)%s" % (opset, got, "" if ok else
                                                   "; check: %s" % mf.check()[:2]))
        r = mf.run(x, 1)
        e_l = T.rel_err(r["logits"], z64.detach().numpy()[0])
        e_g = T.rel_l2(r["grad"], x64.grad.numpy())
        tap.ok(e_l < 1e-9 and e_g < 1e-9,
               "opset %d: the file evaluated by PyTorch in float64 (tests/graphref.py) "
               "equals the model: logits %.1e, pixel gradient %.1e (< 1e-9)"
               % (opset, e_l, e_g))
        compare_logits("opset %d graph ops" % opset, out, img, ref)


def test_onnx_opset18():
    """Opset 18 moved Pad's axes and ReduceMean's axes to inputs (torch
    1.13 cannot export 18): a hand-built graph."""
    import graphref as G
    rng = np.random.RandomState(4)
    w = rng.randn(5, 3, 3, 3).astype(np.float32) * 0.3
    b = rng.randn(5).astype(np.float32) * 0.1
    fw = rng.randn(4, 5).astype(np.float32)
    fb = rng.randn(4).astype(np.float32)

    def c(name, v):
        return helper.make_node("Constant", [], [name], name="k_" + name,
                                value=numpy_helper.from_array(np.array(v, np.int64)))
    nodes = [c("pads", [1, 2, 1, 0]), c("axes", [2, 3]), c("raxes", [2, 3]),
             helper.make_node("Pad", ["x", "pads", "", "axes"], ["p"], name="/pad/Pad",
                              mode="constant"),
             helper.make_node("Conv", ["p", "conv.weight", "conv.bias"], ["cv"],
                              name="/conv/Conv", kernel_shape=[3, 3]),
             helper.make_node("Relu", ["cv"], ["r"], name="/relu/Relu"),
             helper.make_node("ReduceMean", ["r", "raxes"], ["m"], name="/mean/ReduceMean",
                              keepdims=0),
             helper.make_node("Gemm", ["m", "fc.weight", "fc.bias"], ["y"], name="/fc/Gemm",
                              transB=1)]
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    outv = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "op18", [inp], [outv],
                          [numpy_helper.from_array(v, k) for k, v in
                           {"conv.weight": w, "conv.bias": b, "fc.weight": fw,
                            "fc.bias": fb}.items()])
    f = path("op18.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), f)
    out = path("op18.safetensors")
    p = T.run_importer([f, "--out", out])
    if not tap.ok(p.returncode == 0, "opset 18 Pad(axes input) + Conv + ReduceMean(axes "
                  "input) + Gemm imports: %s" % (first_line(p.stdout) or first_line(p.stderr))):
        return
    mf = G.ModelFile(out)
    img = T.test_image(8, 8, seed=12)
    x = T.pixels(img).double()
    h = torch.relu(F.conv2d(F.pad(x, (2, 0, 1, 1)), torch.from_numpy(w).double(),
                            torch.from_numpy(b).double()))
    ref = (h.mean((2, 3)) @ torch.from_numpy(fw).double().T + torch.from_numpy(fb).double())
    ops = [n["op"] for n in mf.nodes]
    e = T.rel_err(mf.run(x)["logits"], ref.numpy()[0])
    tap.ok(e < 1e-9 and ops == ["pad", "conv2d", "relu", "gap", "flatten", "dense"],
           "opset 18: pads [t,l,b,r] from (pads, axes): the symmetric part in the conv, the rest a pad node "
           "padding would be asymmetric), mean over H,W = gap+flatten; nodes %s, logits "
           "rel err %.1e" % (",".join(ops), e))
    compare_logits("opset 18", out, img, ref.numpy()[0])


def test_info():
    out = path("vgg11bn.safetensors")
    if ADVEX is None or not os.path.exists(out):
        tap.skip("advex info on an imported model (advex binary not built)")
        return
    p = T.run_advex(["info", "--model", out])
    tap.ok(p.returncode == 0 and p.stdout.strip() != "",
           "advex info --model reads the imported vgg11-bn (exit %d)%s"
           % (p.returncode, "" if p.returncode == 0 else ": " + first_line(p.stderr)))


def main():
    try:
        if ADVEX is None:
            tap.diag("advex binary not found ($ADVEX=%s): logits comparisons skipped"
                     % os.environ.get("ADVEX"))
        test_help()
        test_vgg_state_dicts()
        test_onnx_exports()
        test_onnx_hand_built()
        test_onnx_graph_ops()
        test_onnx_opset18()
        test_info()
    except Exception as e:  # a crash is a failure, not a silent stop
        import traceback
        tap.ok(False, "test_import.py crashed: %s: %s" % (type(e).__name__, e))
        tap.diag(traceback.format_exc())
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    tap.done()


if __name__ == "__main__":
    main()
