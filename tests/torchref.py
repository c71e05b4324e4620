"""torchref.py - the PyTorch side of advex's import and parity tests and of
bench/torch_step.py.

Importable without torch (the TAP helper and the PNG/npy/image helpers need
only numpy), so a test can report "torch missing" properly; the model
builders need torch.

  build_vgg16(head, seed, n_classes)   torchvision-named VGG16 for 96x96
  build_vgg(cfg, bn, ...)              any torchvision VGG config, any width
  layer_sequence(model)                the modules in advex layer order
  write_png(path, img)                 RGB8 PNG with zlib + struct
  test_image(h, w, seed)               seeded natural-ish uint8 HxWx3 image
  pixels(img)                          uint8 HxWx3 -> (1,3,H,W) float32 / 255
  import_model(model, out, ...)        state_dict -> tools/advex-import -> out
  read_npy(path)                       a .npy file, checked
  run_advex(...), diagnose(...)        run the advex binary, parse its JSON
"""

import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import zlib

try:
    import numpy as np
except ImportError:     # the tests report this themselves
    np = None
try:
    import torch
    import torch.nn as nn
except ImportError:
    torch = None
    nn = None

# The Python with torch and onnx (Debian's python3-torch, python3-onnx).
SYSTEM_PYTHON = "/usr/bin/python3"

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("ADVEX_SRCDIR") or os.path.dirname(HERE)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision VGG configurations ("M" = MaxPool2d(2, 2)).
VGG_CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M",
          512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


# ---------------------------------------------------------------------------
# TAP

class Tap:
    """ok N - ... / not ok N - ... lines and a final plan."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, msg):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%sok %d - %s" % ("" if cond else "not ", self.n, msg), flush=True)
        return bool(cond)

    def skip(self, msg):
        self.n += 1
        print("ok %d - # SKIP %s" % (self.n, msg), flush=True)

    def diag(self, msg):
        for line in str(msg).splitlines() or [""]:
            print("# " + line, flush=True)

    def done(self):
        print("1..%d" % self.n, flush=True)
        sys.exit(1 if self.failed else 0)


def require_torch(tap, need_onnx=False):
    """Skip the whole test (exit 0) when numpy/torch/onnx are missing, unless
    CI is set, where that is a failure. An interpreter without them first
    hands over to SYSTEM_PYTHON (once), so `make check` with another
    $(PYTHON) still runs the comparisons."""
    missing = []
    if np is None:
        missing.append("numpy")
    if torch is None:
        missing.append("torch")
    if need_onnx:
        try:
            import onnx  # noqa: F401
        except ImportError:
            missing.append("onnx")
    if not missing:
        return
    if (not os.environ.get("ADVEX_TORCHREF_REEXEC") and os.access(SYSTEM_PYTHON, os.X_OK)
            and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)):
        os.environ["ADVEX_TORCHREF_REEXEC"] = sys.executable or "?"
        sys.stdout.flush()
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    what = " and ".join(missing)
    first = os.environ.get("ADVEX_TORCHREF_REEXEC")
    where = sys.executable + (" (after %s)" % first if first else "")
    if os.environ.get("CI"):
        tap.ok(False, "%s missing in CI (python %s)" % (what, where))
        tap.done()
    print("1..0 # SKIP %s not available (python %s)" % (what, where))
    sys.exit(0)


def rel_err(a, b):
    """max |a-b| / max |b|."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    den = np.max(np.abs(b)) if b.size else 0.0
    return float(np.max(np.abs(a - b)) / den) if den > 0 else float(np.max(np.abs(a - b)))


def rel_l2(a, b):
    """||a-b|| / ||b||."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    den = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / den) if den > 0 else float(np.linalg.norm(a - b))


# ---------------------------------------------------------------------------
# Models

if torch is not None:
    class VGGRef(nn.Module):
        """torchvision VGG naming (features.N, classifier.N) without the
        AdaptiveAvgPool2d: features -> [gap] -> flatten -> classifier."""

        def __init__(self, features, classifier, gap=False):
            super().__init__()
            self.features = features
            self.classifier = classifier
            self.use_gap = gap

        def forward(self, x):
            x = self.features(x)
            if self.use_gap:
                x = torch.mean(x, dim=(2, 3), keepdim=True)
            x = torch.flatten(x, 1)
            return self.classifier(x)

    class _Flatten(nn.Module):
        def forward(self, x):
            return torch.flatten(x, 1)

    class _Gap(nn.Module):
        def forward(self, x):
            return torch.mean(x, dim=(2, 3), keepdim=True)


def _need_torch():
    if torch is None:
        raise RuntimeError("torch is not available")


def build_vgg(cfg="D", bn=False, head="classic", seed=0, n_classes=10,
              in_hw=96, width_div=1, hidden=4096, gap=False):
    """A torchvision-style VGG for in_hw x in_hw inputs.

    cfg: "A"/"B"/"D"/"E" (vgg11/13/16/19); width_div divides every channel
    count (for tiny test models); head "classic" is Linear,ReLU,Dropout,
    Linear,ReLU,Dropout,Linear with `hidden` units, "small" one Linear.
    gap: the head takes C inputs after a global average pool instead of
    C*H*W. BN layers get random affine parameters and running statistics, so
    folding them is tested. Logits are scaled to a std of about 3 on
    test_image(in_hw, in_hw, seed) so they are neither ~0 nor saturated.
    """
    _need_torch()
    gen = torch.Generator().manual_seed(seed)
    layers = []
    c = 3
    hw = in_hw
    for v in VGG_CFGS[cfg]:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            hw //= 2
        else:
            v = max(1, v // width_div)
            conv = nn.Conv2d(c, v, kernel_size=3, padding=1)
            layers.append(conv)
            if bn:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=False))
            c = v
    features = nn.Sequential(*layers)
    fin = c if gap else c * hw * hw
    if head == "classic":
        classifier = nn.Sequential(
            nn.Linear(fin, hidden), nn.ReLU(inplace=False), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=False), nn.Dropout(0.5),
            nn.Linear(hidden, n_classes))
    elif head == "small":
        classifier = nn.Sequential(nn.Linear(fin, n_classes))
    else:
        raise ValueError("head must be 'classic' or 'small'")
    model = VGGRef(features, classifier, gap=gap)

    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.Conv2d):
                # kaiming normal, fan_out, relu - as torchvision - by hand so
                # the generator is used.
                fan_out = mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1]
                std = math.sqrt(2.0 / fan_out)
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * std)
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.05)
            elif isinstance(mod, nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(1.0 + 0.2 * torch.randn(n, generator=gen))
                mod.bias.copy_(0.1 * torch.randn(n, generator=gen))
                mod.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            elif isinstance(mod, nn.Linear):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * 0.01)
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.01)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    # Scale the last Linear so the logits have a std of about 3.
    x = normalize(pixels(test_image(in_hw, in_hw, seed)), IMAGENET_MEAN,
                  IMAGENET_STD)
    with torch.no_grad():
        z = model(x)
        s = float(z.std())
        last = classifier[-1]
        if s > 0:
            last.weight.mul_(3.0 / s)
            last.bias.mul_(3.0 / s)
    return model


def build_vgg16(head="classic", seed=0, n_classes=10):
    """torchvision-named VGG16 for 96x96 inputs: features.0..features.30,
    flatten (512x3x3 = 4608), classifier.0/3/6 (classic head 4608->4096->
    4096->n) or classifier.0 (small head 4608->n)."""
    return build_vgg("D", bn=False, head=head, seed=seed, n_classes=n_classes,
                     in_hw=96)


def layer_sequence(model):
    """The model's computation as a list of modules in advex's layer order
    (conv2d, [batchnorm], relu, maxpool, ..., [gap], flatten, dense, relu,
    dropout, ...), matching the arch advex-import writes."""
    _need_torch()
    seq = list(model.features)
    if getattr(model, "use_gap", False):
        seq.append(_Gap())
    seq.append(_Flatten())
    seq += list(model.classifier)
    return seq


def normalize(x, mean, std, scale=1.0):
    """x' = (x*scale - mean[c]) / std[c] for (N,3,H,W) x."""
    _need_torch()
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x * scale - m) / s


def pixels(img):
    """uint8 HxWx3 -> float32 (1,3,H,W) tensor in [0,1]."""
    _need_torch()
    a = np.ascontiguousarray(np.transpose(img, (2, 0, 1))[None]).astype(np.float32)
    return torch.from_numpy(a / np.float32(255.0))


# ---------------------------------------------------------------------------
# Images and files

def test_image(h, w, seed=0):
    """A seeded natural-ish RGB image: smooth gradients, a few soft blobs and
    some pixel noise, uint8 HxWx3."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yy /= max(h - 1, 1)
    xx /= max(w - 1, 1)
    img = np.zeros((h, w, 3))
    for ch in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        img[..., ch] = 0.5 + 0.25 * (a * xx + b * yy + c * xx * yy)
        for _ in range(3):
            cy, cx = rng.uniform(0, 1, 2)
            r = rng.uniform(0.08, 0.3)
            amp = rng.uniform(-0.35, 0.35)
            img[..., ch] += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        fy, fx, ph = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 6.3)
        img[..., ch] += 0.08 * np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
    img += rng.normal(0, 0.03, img.shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def write_png(path, img):
    """Write uint8 HxWx3 as an 8-bit RGB PNG (filter 0 on every row)."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w, c = img.shape
    assert c == 3

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data +
                struct.pack(">I", zlib.crc32(tag + data) & 0xffffffff))

    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))
    png = (b"\x89PNG\r\n\x1a\n" +
           chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(raw, 6)) +
           chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def read_npy(path):
    """Read a .npy file (format 1.x/2.x, no pickles) and check its header."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError("%s: not a .npy file" % path)
    arr = np.load(path, allow_pickle=False)
    return arr


def read_safetensors(path):
    """(header dict, {name: float32 array}) of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        tensors[name] = np.frombuffer(data[base + b:base + e],
                                      dtype="<f4").reshape(info["shape"])
    return n, header, tensors


def importer():
    return os.environ.get("ADVEX_IMPORT") or os.path.join(SRCDIR, "tools", "advex-import")


def run_importer(args):
    """Run tools/advex-import with this Python; returns CompletedProcess."""
    return subprocess.run([sys.executable, importer()] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)


def import_model(model, out, extra_args=(), tmpdir=None):
    """Save model's state_dict and convert it with advex-import to out.
    Returns the CompletedProcess (check .returncode)."""
    _need_torch()
    d = tmpdir or os.path.dirname(os.path.abspath(out))
    fd, pt = tempfile.mkstemp(dir=d, suffix=".pt")
    os.close(fd)
    try:
        torch.save(model.state_dict(), pt)
        return run_importer([pt, "--out", out] + list(extra_args))
    finally:
        os.unlink(pt)


def advex_binary():
    """The advex binary from $ADVEX (or ./advex, or SRCDIR/advex), or None
    when it does not exist."""
    for cand in (os.environ.get("ADVEX"), os.path.join(os.getcwd(), "advex"),
                 os.path.join(SRCDIR, "advex")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def demo_data_dir():
    """The bundled demo's STL-10 directory: generated at build time, so in
    the build tree beside the advex binary (out-of-tree builds, distcheck),
    else in the source tree."""
    exe = advex_binary()
    for top in ([os.path.dirname(exe)] if exe else []) + [SRCDIR]:
        d = os.path.join(top, "assets", "demo", "stl10_binary")
        if os.path.isfile(os.path.join(d, "test_X.bin")):
            return d
    return os.path.join(SRCDIR, "assets", "demo", "stl10_binary")


def run_advex(args, timeout=600):
    exe = advex_binary()
    return subprocess.run([exe] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout)


def diagnose(model_file, png, target=0, grad_out=None):
    """Run `advex diagnose --json`; returns (parsed JSON or None, process)."""
    args = ["diagnose", "--model", model_file, "--image", png,
            "--target", str(target), "--json"]
    if grad_out:
        args += ["--grad-out", grad_out]
    p = run_advex(args)
    if p.returncode != 0:
        return None, p
    try:
        return json.loads(p.stdout), p
    except ValueError:
        return None, p


def torch_reference(model, img, mean=(0, 0, 0), std=(1, 1, 1), scale=1.0,
                    target=0):
    """Forward, cross-entropy toward `target`, and backward in float32.
    Returns a dict: logits, probs, loss, grad (pixel gradient, (1,3,H,W)),
    norms (L2 of the gradient w.r.t. the input of each layer of
    layer_sequence(model), then w.r.t. the logits)."""
    _need_torch()
    x = pixels(img).requires_grad_(True)
    xn = normalize(x, mean, std, scale)
    xn.retain_grad()
    acts = [xn]
    h = xn
    for mod in layer_sequence(model):
        h = mod(h)
        h.retain_grad()
        acts.append(h)
    logits = h
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([target]))
    loss.backward()
    return {
        "logits": logits.detach().numpy()[0].astype(np.float64),
        "probs": torch.softmax(logits.detach().double(), 1).numpy()[0],
        "loss": float(loss.detach()),
        "grad": x.grad.detach().numpy(),
        "norms": [float(torch.linalg.vector_norm(a.grad.double())) for a in acts],
        "ops": [type(m).__name__ for m in layer_sequence(model)],
    }


# ---------------------------------------------------------------------------
# Float64 reference with explicit ReLU / max-pool decisions ("kinks")
#
# The input gradient of a ReLU network jumps where a ReLU input crosses 0 or
# where the two largest values of a max-pool window swap. Every image puts a
# few of the network's millions of such decisions within float32 rounding of
# the kink, and two correct float32 implementations (advex, PyTorch) then
# decide them differently now and then: one such flip moves the VGG16 input
# gradient by 1e-3..1e-2 relative. Ref64 computes the exact float64 gradient
# for a given set of flipped decisions, lists the decisions closest to their
# kink, and finds which of those a float32 gradient took the other way, so
# the comparison is made against the same decisions instead of with a looser
# tolerance.

EPS32 = 2.0 ** -24
KINK_MARGIN = 4.0       # candidates: |v| < KINK_MARGIN * rounding bound of v
KINKS_PER_LAYER = 4


class Kink:
    """One ReLU unit or max-pool window near its decision boundary.
    kind 'relu': unit `index` (flat, batch 1) of layer `layer`'s input;
    kind 'pool': output `index` of max-pool layer `layer`, whose argmax
    would move to input `alt`. margin: distance to the kink over the float32
    rounding bound eps32*(sum|w*h| + |b|) of the values involved."""

    def __init__(self, kind, layer, index, alt, value, margin, shape):
        self.kind, self.layer, self.index, self.alt = kind, layer, index, alt
        self.value, self.margin, self.shape = value, margin, shape

    def key(self):
        return (self.kind, self.layer, self.index)

    def __str__(self):
        c, rest = divmod(self.index, int(np.prod(self.shape[1:])) if len(self.shape) > 1 else 1)
        if len(self.shape) == 3:
            y, x = divmod(rest, self.shape[2])
            where = "(%d,%d,%d)" % (c, y, x)
        else:
            where = "(%d)" % self.index
        what = "pre-activation" if self.kind == "relu" else "top-2 gap"
        return ("layer %d %s unit %s, float64 %s %.2g = %.2gx its float32 rounding bound"
                % (self.layer, "relu" if self.kind == "relu" else "maxpool", where,
                   what, self.value, self.margin))


class Ref64:
    """PyTorch in float64 on a copy of `model`, layer by layer in advex's
    order, with ReLU masks and max-pool routing as explicit decisions."""

    def __init__(self, model, img, mean=(0, 0, 0), std=(1, 1, 1), scale=1.0,
                 target=0):
        _need_torch()
        import copy
        m64 = copy.deepcopy(model).double().eval()
        for p in m64.parameters():
            p.requires_grad_(False)
        self.layers = layer_sequence(m64)
        self.img, self.target = img, target
        self.mean = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
        self.scale = float(scale)
        self.kinks = []
        self.base = self.run((), find_kinks=True)

    def run(self, flips, find_kinks=False):
        """Forward + cross-entropy + backward with the decisions in `flips`
        (Kinks) reversed. Returns dict grad, norms, logits, loss."""
        import torch.nn.functional as F
        by_layer = {}
        for k in flips:
            by_layer.setdefault(k.layer, []).append(k)
        x = pixels(self.img).double().requires_grad_(True)
        h = (x * self.scale - self.mean) / self.std
        ins = []
        bound = None
        for i, mod in enumerate(self.layers):
            h.retain_grad()
            ins.append(h)
            if isinstance(mod, nn.Conv2d):
                if find_kinks:
                    with torch.no_grad():
                        bound = EPS32 * (F.conv2d(h.abs(), mod.weight.abs(), None,
                                                  mod.stride, mod.padding) +
                                         mod.bias.abs().view(1, -1, 1, 1))
                h = mod(h)
            elif isinstance(mod, nn.Linear):
                if find_kinks:
                    with torch.no_grad():
                        bound = EPS32 * (F.linear(h.abs(), mod.weight.abs()) +
                                         mod.bias.abs())
                h = mod(h)
            elif isinstance(mod, nn.ReLU):
                mask = (h.detach() > 0).double()
                offset = torch.zeros_like(mask)
                for k in by_layer.get(i, []):
                    j = k.index
                    mask.view(-1)[j] = 1.0 - mask.view(-1)[j]
                    if mask.view(-1)[j] > 0:
                        # turned on: output |v| (a hair above 0, so it can
                        # win a max-pool window of zeros), slope 1
                        offset.view(-1)[j] = -2.0 * h.detach().view(-1)[j]
                if find_kinks:
                    self._relu_kinks(i, h.detach(), bound)
                h = h * mask + offset
            elif isinstance(mod, nn.MaxPool2d):
                out, idx = F.max_pool2d(h.detach(), mod.kernel_size, mod.stride,
                                        mod.padding, return_indices=True)
                if find_kinks:
                    self._pool_kinks(i, h.detach(), bound)
                for k in by_layer.get(i, []):
                    idx.view(-1)[k.index] = k.alt
                n, c = h.shape[:2]
                h = torch.gather(h.reshape(n, c, -1), 2,
                                 idx.reshape(n, c, -1)).view(out.shape)
                if bound is not None:
                    bound = F.max_pool2d(bound, mod.kernel_size, mod.stride, mod.padding)
            else:
                h = mod(h)
                if bound is not None and not isinstance(mod, nn.Dropout):
                    bound = mod(bound)
        h.retain_grad()
        ins.append(h)
        loss = torch.nn.functional.cross_entropy(h, torch.tensor([self.target]))
        loss.backward()
        return {"grad": x.grad.detach().numpy(),
                "norms": [float(torch.linalg.vector_norm(t.grad)) for t in ins],
                "logits": h.detach().numpy()[0],
                "loss": float(loss.detach())}

    def _relu_kinks(self, i, v, bound):
        r = v.abs() / bound.clamp_min(1e-300)
        nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
        if isinstance(nxt, nn.MaxPool2d) and v.dim() == 4 and \
                v.shape[2] % 2 == 0 and v.shape[3] % 2 == 0 and \
                nxt.kernel_size in (2, (2, 2)) and nxt.stride in (2, (2, 2)):
            # Before a 2x2 max-pool a unit matters only if it is its
            # window's max, or would become it when switched on (the
            # window is all zeros).
            import torch.nn.functional as F
            out = v.clamp_min(0)
            wmax = F.interpolate(F.max_pool2d(out, 2, 2), scale_factor=2,
                                 mode="nearest")
            matters = ((v > 0) & (out == wmax)) | ((v <= 0) & (wmax == 0))
            r = torch.where(matters, r, torch.full_like(r, math.inf))
        r = r.reshape(-1)
        n = min(KINKS_PER_LAYER, r.numel())
        vals, idx = torch.topk(r, n, largest=False)
        for m, j in zip(vals.tolist(), idx.tolist()):
            if m < KINK_MARGIN:
                self.kinks.append(Kink("relu", i, j, None, float(v.reshape(-1)[j]), m,
                                       tuple(v.shape[1:])))

    def _pool_kinks(self, i, h, bound):
        mod = self.layers[i]
        ks = mod.kernel_size if isinstance(mod.kernel_size, int) else mod.kernel_size[0]
        st = mod.stride if isinstance(mod.stride, int) else mod.stride[0]
        n, c, hh, ww = h.shape
        if not (ks == 2 and st == 2 and hh % 2 == 0 and ww % 2 == 0 and n == 1):
            return
        ho, wo = hh // 2, ww // 2

        def win(t):
            return t.reshape(n, c, ho, 2, wo, 2).permute(0, 1, 2, 4, 3, 5).reshape(
                n, c, ho, wo, 4)
        v, pos = torch.sort(win(h), dim=-1, descending=True)
        b = torch.gather(win(bound), -1, pos)
        gap = (v[..., 0] - v[..., 1])
        r = gap / (b[..., 0] + b[..., 1]).clamp_min(1e-300)
        r = torch.where(v[..., 0] > 0, r, torch.full_like(r, math.inf)).reshape(-1)
        k = min(KINKS_PER_LAYER, r.numel())
        vals, idx = torch.topk(r, k, largest=False)
        oy = torch.arange(ho).view(1, 1, ho, 1)
        ox = torch.arange(wo).view(1, 1, 1, wo)
        p1 = pos[..., 1]
        alt = ((2 * oy + p1 // 2) * ww + 2 * ox + p1 % 2).reshape(-1)
        for m, j in zip(vals.tolist(), idx.tolist()):
            if m < KINK_MARGIN:
                self.kinks.append(Kink("pool", i, j, int(alt[j]),
                                       float(gap.reshape(-1)[j]), m,
                                       (c, ho, wo)))

    def explain(self, grad):
        """Find the near-kink decisions that `grad` (a float32 gradient from
        another implementation) took the other way. Returns (flips, result
        of run(flips)); flips is [] when no candidate explains anything."""
        g0 = self.base["grad"].reshape(-1).astype(np.float64)
        r = np.asarray(grad, dtype=np.float64).reshape(-1) - g0
        if not self.kinks:
            return [], self.base
        deltas = []
        for k in self.kinks:
            deltas.append(self.run([k])["grad"].reshape(-1) - g0)
        D = np.stack(deltas, axis=1)
        c = np.linalg.lstsq(D, r, rcond=None)[0]
        flips = [k for k, ck in zip(self.kinks, c) if ck > 0.5]
        if not flips:
            return [], self.base
        return flips, self.run(flips)
