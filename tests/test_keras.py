#!/usr/bin/python3
"""test_keras.py - tools/advex-import on Keras files against PyTorch (TAP).

No TensorFlow exists on Debian, so the Keras files are written here with
h5py from PyTorch models, the way Keras lays them out (docs/model-format.md,
"Keras import"): kernels HWIO, Dense kernels (in, out) with the rows after a
Flatten in H,W,C order, model_config JSON as Keras 2 writes it, and for
Keras 3 a zip of config.json + model.weights.h5 (layers/<class>_N/vars/i).
Each file is imported with advex-import and `advex diagnose --json
--grad-out` is compared with the PyTorch model: logits within 1e-4
relative (max|a-b| / max|b|), cross-entropy input gradients within 1e-3
relative L2 (against PyTorch in float64).

  (a) Sequential VGG-like ending in Dense(10, activation='softmax'): the
      story - prob-ce toward a class with p < 1e-7 is flat (16.118, zero
      gradient) while ce is not; and a control: the same file imported
      without the Flatten row permutation must fail the logits check.
  (b) valid-padding convs, BatchNormalization, AveragePooling2D, a
      symmetric stride-2 'same' conv, GAP, with Rescaling + Normalization
      folded into the preprocessing (runs on the sequential engine);
      (b2) uneven stride-2 'same' padding (a pad node), 'same' average
      pooling, ZeroPadding2D (needs the graph engine).
  (c) a Functional model with Add (residual), Concatenate, DepthwiseConv2D
      and an uneven 'same' conv; (d) the same model as a Keras 3 .keras zip.
  (e) transfer learning: Sequential([nested Functional base, Flatten,
      Dense(10, softmax)]) in both layouts, and inside a Functional model.
  (f) mid-network Rescaling/Normalization, LeakyReLU, ReLU(max_value),
      Cropping2D, uneven 'same' max pooling, GlobalMaxPooling2D and a
      Concatenate of flattened vectors (both layouts).
  (g) SeparableConv2D and a final Activation('softmax') layer.

Cases whose nodes the advex binary cannot load yet (add, concat, pad,
groups: the graph engine) are checked structurally here (unique names,
resolvable inputs, every tensor's shape, one flat output), run node by
node in PyTorch float64 as docs/model-format.md defines each op and
compared with the PyTorch model, and their advex parity is skipped with
"graph engine not available" when `advex info --model FILE` refuses them.

Environment (set by `make check`): ADVEX, ADVEX_IMPORT, ADVEX_SRCDIR.
Without torch or h5py the test is skipped, unless CI is set.
"""

import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchref as T  # noqa: E402

tap = T.Tap()
T.require_torch(tap)
try:
    import h5py
except ImportError:
    h5py = None
if h5py is None:
    if (not os.environ.get("ADVEX_TORCHREF_REEXEC") and os.access(T.SYSTEM_PYTHON, os.X_OK)
            and os.path.realpath(sys.executable) != os.path.realpath(T.SYSTEM_PYTHON)):
        os.environ["ADVEX_TORCHREF_REEXEC"] = sys.executable or "?"
        os.execv(T.SYSTEM_PYTHON, [T.SYSTEM_PYTHON] + sys.argv)
    if os.environ.get("CI"):
        tap.ok(False, "h5py missing in CI (python %s)" % sys.executable)
        tap.done()
    print("1..0 # SKIP h5py not available (python %s): Debian python3-h5py"
          % sys.executable)
    sys.exit(0)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(2)
LOGIT_TOL = 1e-4
GRAD_TOL = 1e-3
CLIP_EPS = 1e-7
ADVEX = T.advex_binary()
TMP = tempfile.mkdtemp(prefix="advex-keras-test.")
NO_PERM_ENV = "ADVEX_IMPORT_KERAS_NO_FLATTEN_PERM"


def path(name):
    return os.path.join(TMP, name)


def first_line(s):
    lines = [ln for ln in s.splitlines() if ln.strip()]
    return lines[0] if lines else ""


def one_line_error(p):
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    return len(lines) == 1 and not p.stdout.strip()


def run_import(args, env_extra=None):
    env = dict(os.environ)
    env.pop(NO_PERM_ENV, None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, T.importer()] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env)


# ---------------------------------------------------------------------------
# Keras layer configs and weights, written as Keras does

def t2n(t):
    return t.detach().cpu().numpy().astype(np.float32)


def conv_cfg(name, filters, k, strides=1, padding="same", act="linear", bias=True):
    return {"class_name": "Conv2D", "config": {
        "name": name, "trainable": True, "dtype": "float32", "filters": filters,
        "kernel_size": [k, k], "strides": [strides, strides], "padding": padding,
        "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
        "activation": act, "use_bias": bias,
        "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}}}}


def conv_w(conv):
    """torch Conv2d (O,I,kh,kw) -> Keras kernel (kh,kw,I,O) and bias."""
    w = [("kernel", t2n(conv.weight).transpose(2, 3, 1, 0))]
    if conv.bias is not None:
        w.append(("bias", t2n(conv.bias)))
    return w


def dwconv_cfg(name, k, mult, strides=1, padding="same", act="linear"):
    c = conv_cfg(name, 0, k, strides, padding, act)
    c["class_name"] = "DepthwiseConv2D"
    del c["config"]["filters"], c["config"]["groups"]
    c["config"]["depth_multiplier"] = mult
    return c


def dwconv_w(conv, mult):
    """torch Conv2d(C, C*mult, groups=C) -> Keras depthwise kernel
    (kh,kw,C,mult): output channel c*mult+m reads input channel c."""
    w = t2n(conv.weight)
    c = w.shape[0] // mult
    kh, kw = w.shape[2:]
    return [("depthwise_kernel", w.reshape(c, mult, kh, kw).transpose(2, 3, 0, 1)),
            ("bias", t2n(conv.bias))]


def dense_cfg(name, units, act="linear"):
    return {"class_name": "Dense", "config": {
        "name": name, "trainable": True, "dtype": "float32", "units": units,
        "activation": act, "use_bias": True}}


def dense_w(lin, chw=None, permute=True):
    """torch Linear (out, in) -> Keras kernel (in, out); after a Flatten of
    (C,H,W) the Keras rows run in H,W,C order."""
    w = t2n(lin.weight)
    if chw is not None and permute:
        c, h, wd = chw
        k = w.reshape(-1, c, h, wd).transpose(2, 3, 1, 0).reshape(h * wd * c, -1)
    else:
        k = w.T
    return [("kernel", np.ascontiguousarray(k)), ("bias", t2n(lin.bias))]


def bn_cfg(name, eps):
    return {"class_name": "BatchNormalization", "config": {
        "name": name, "trainable": True, "dtype": "float32", "axis": -1,
        "momentum": 0.99, "epsilon": eps, "center": True, "scale": True}}


def bn_w(bn):
    return [("gamma", t2n(bn.weight)), ("beta", t2n(bn.bias)),
            ("moving_mean", t2n(bn.running_mean)),
            ("moving_variance", t2n(bn.running_var))]


def simple(cls, name, **cfg):
    c = {"name": name, "trainable": True, "dtype": "float32"}
    c.update(cfg)
    return {"class_name": cls, "config": c}


def input_cfg(name, hwc):
    return simple("InputLayer", name, batch_input_shape=[None] + list(hwc),
                  sparse=False, ragged=False)


MODELS = ("Sequential", "Functional")


def write_keras2(fname, model_config, weights):
    """A Keras 2 HDF5 full model: root attrs model_config etc., weights in
    model_weights/<layer>/<layer>/<w>:0 listed by weight_names; a nested
    model's group lists all its layers' weights as <inner>/<w>:0."""
    layers = model_config["config"]["layers"]
    with h5py.File(fname, "w") as f:
        f.attrs["keras_version"] = b"2.13.1"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(model_config).encode()
        f.attrs["training_config"] = json.dumps(
            {"loss": "categorical_crossentropy", "metrics": ["accuracy"]}).encode()
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = [l["config"]["name"].encode() for l in layers]
        mw.attrs["backend"] = b"tensorflow"
        mw.attrs["keras_version"] = b"2.13.1"
        for l in layers:
            ln = l["config"]["name"]
            inner = [x["config"]["name"] for x in l["config"]["layers"]] \
                if l["class_name"] in MODELS else [ln]
            g = mw.create_group(ln)
            wn, arrs = [], []
            for i in inner:
                for short, arr in weights.get(i, []):
                    wn.append("%s/%s:0" % (i, short))
                    arrs.append(arr)
            g.attrs["weight_names"] = [n.encode() for n in wn]
            for n, arr in zip(wn, arrs):
                g.create_dataset(n, data=arr)
    return fname


def snake(cls):
    import re
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def keras3_tensor(src, shape):
    return {"class_name": "__keras_tensor__", "config": {
        "shape": shape, "dtype": "float32", "keras_history": [src, 0, 0]}}


def k3_config(k2):
    """A Keras 2 Sequential/Functional config the Keras 3 way: module keys,
    batch_shape, dtype policies, inbound nodes as {"args": [keras tensors]},
    bare [name, 0, 0] input/output refs; nested models likewise."""
    seq = k2["class_name"] == "Sequential"
    cfg = json.loads(json.dumps(k2["config"]))
    layers = []
    for l in cfg["layers"]:
        if l["class_name"] in MODELS:
            k3 = k3_config(l)
        else:
            c = dict(l["config"])
            if l["class_name"] == "InputLayer":
                c["batch_shape"] = c.pop("batch_input_shape")
                c.pop("ragged", None)
            c["dtype"] = {"module": "keras", "class_name": "DTypePolicy",
                          "config": {"name": "float32"}, "registered_name": None}
            k3 = {"module": "keras.layers", "class_name": l["class_name"],
                  "config": c, "registered_name": None}
        if "inbound_nodes" in l:
            nodes = []
            for node in l["inbound_nodes"]:
                # a nested Functional model's call is its node 1
                ts = [keras3_tensor(r[0], None) for r in node]
                nodes.append({"args": [ts] if len(ts) > 1 else ts, "kwargs": {}})
            k3["name"] = l["name"]
            k3["inbound_nodes"] = nodes
        layers.append(k3)
    cfg["layers"] = layers
    if seq:
        return {"module": "keras", "class_name": "Sequential", "config": cfg,
                "registered_name": None}
    cfg["input_layers"] = cfg["input_layers"][0]
    cfg["output_layers"] = cfg["output_layers"][0]
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": cfg, "registered_name": "Functional"}


def k3_weights(f, prefix, k3, weights):
    """saving_lib's H5IOStore layout: the model's own vars, then each layer
    of its container (in order; a Sequential's InputLayer is not one of its
    layers) under layers/<snake_case(class)>[_k]/vars/<i>, k counting per
    class; a nested model's layers one level down."""
    f.create_group(prefix + "vars")
    seq = k3["class_name"] == "Sequential"
    used = {}
    for l in k3["config"]["layers"]:
        if seq and l["class_name"] == "InputLayer":
            continue
        s = snake(l["class_name"])
        used[s] = used.get(s, -1) + 1
        p = "%slayers/%s%s" % (prefix, s, "_%d" % used[s] if used[s] else "")
        if l["class_name"] in MODELS:
            k3_weights(f, p + "/", l, weights)
            continue
        g = f.create_group(p).create_group("vars")
        for i, (_, arr) in enumerate(weights.get(l["config"]["name"], [])):
            g.create_dataset(str(i), data=arr)


def write_keras3(fname, k2_model, weights):
    """The model as a Keras 3 archive: config.json (k3_config),
    metadata.json and model.weights.h5 (k3_weights)."""
    config = k3_config(k2_model)
    config["compile_config"] = {"loss": "categorical_crossentropy"}
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        k3_weights(f, "", config, weights)
    with zipfile.ZipFile(fname, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.3.3",
                                                 "date_saved": "2026-12-03@12:00:00"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", bio.getvalue())
    return fname


def sequential(name, layers):
    return {"class_name": "Sequential", "config": {"name": name, "layers": layers}}


def functional(name, layers, inp, out):
    return {"class_name": "Functional", "config": {
        "name": name, "layers": layers, "input_layers": [[inp, 0, 0]],
        "output_layers": [[out, 0, 0]]}}


def node(cfg, *srcs):
    cfg = dict(cfg)
    cfg["name"] = cfg["config"]["name"]
    cfg["inbound_nodes"] = [[[s, 0, 0, {}] for s in srcs]] if srcs else []
    return cfg


# ---------------------------------------------------------------------------
# The models (PyTorch side) and their Keras files

def seeded(mod, gen):
    with torch.no_grad():
        for m in mod.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) *
                               math.sqrt(2.0 / fan_in))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.05)
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(1.0 + 0.2 * torch.randn(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
    mod.eval()
    for p in mod.parameters():
        p.requires_grad_(False)
    return mod


def model_a():
    """VGG-like, 32x32, last layer Dense(10, activation='softmax')."""
    gen = torch.Generator().manual_seed(11)
    m = seeded(nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 8 * 8, 32), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(32, 10)), gen)
    # Make the model very sure: scale the last layer so the logits span 30,
    # then the least likely class has p ~ e^-30 < 1e-7 (deterministic).
    img = T.test_image(32, 32, seed=21)
    with torch.no_grad():
        z = m(T.pixels(img))[0]
        k = 30.0 / float(z.max() - z.min())
        m[-1].weight.mul_(k)
        m[-1].bias.mul_(k)
    layers = [input_cfg("input_1", [32, 32, 3]),
              conv_cfg("block1_conv1", 8, 3, act="relu"),
              conv_cfg("block1_conv2", 8, 3, act="relu"),
              simple("MaxPooling2D", "block1_pool", pool_size=[2, 2], strides=[2, 2],
                     padding="valid", data_format="channels_last"),
              conv_cfg("block2_conv1", 16, 3, act="relu"),
              simple("MaxPooling2D", "block2_pool", pool_size=[2, 2], strides=[2, 2],
                     padding="valid", data_format="channels_last"),
              simple("Flatten", "flatten", data_format="channels_last"),
              dense_cfg("fc1", 32, "relu"),
              simple("Dropout", "dropout", rate=0.5),
              dense_cfg("predictions", 10, "softmax")]
    weights = {"block1_conv1": conv_w(m[0]), "block1_conv2": conv_w(m[2]),
               "block2_conv1": conv_w(m[5]), "fc1": dense_w(m[9], (16, 8, 8)),
               "predictions": dense_w(m[12])}
    return m, sequential("vgg_like", layers), weights, img


class RescaleNorm(nn.Module):
    """Keras Rescaling(scale) then Normalization(mean, variance)."""

    def __init__(self, scale, mean, var):
        super().__init__()
        self.scale = scale
        self.mean = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
        self.std = torch.sqrt(torch.tensor(var, dtype=torch.float64)).view(1, -1, 1, 1)

    def forward(self, x):
        return (x * self.scale - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def model_b():
    """valid convs, BN, AveragePooling2D, symmetric stride-2 'same', GAP; the
    input is 0..255 and the model starts with Rescaling + Normalization."""
    gen = torch.Generator().manual_seed(12)
    mean, var = [0.45, 0.5, 0.4], [0.06, 0.05, 0.07]
    m = seeded(nn.Sequential(
        RescaleNorm(1.0 / 255, mean, var),
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, eps=1e-3), nn.ReLU(),
        nn.Conv2d(8, 8, 3), nn.ReLU(), nn.AvgPool2d(2),
        # 13x13, stride 2, 'same': out 7, padding 1 on each side
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)), gen)
    layers = [input_cfg("image", [30, 30, 3]),
              simple("Rescaling", "rescaling", scale=1.0 / 255, offset=0.0),
              simple("Normalization", "normalization", axis=-1, mean=mean,
                     variance=var, invert=False),
              conv_cfg("conv1", 8, 3, padding="valid"),
              bn_cfg("bn1", 1e-3),
              simple("Activation", "act1", activation="relu"),
              conv_cfg("conv2", 8, 3, padding="valid", act="relu"),
              simple("AveragePooling2D", "pool", pool_size=[2, 2], strides=[2, 2],
                     padding="valid", data_format="channels_last"),
              conv_cfg("conv3", 16, 3, strides=2, padding="same", act="relu"),
              simple("GlobalAveragePooling2D", "gap", data_format="channels_last",
                     keepdims=False),
              dense_cfg("logits", 10)]
    weights = {"conv1": conv_w(m[1]), "bn1": bn_w(m[2]), "conv2": conv_w(m[4]),
               "conv3": conv_w(m[7]), "logits": dense_w(m[11]),
               "normalization": []}
    return m, sequential("valid_net", layers), weights, T.test_image(30, 30, seed=22)


class SameAvgPool(nn.Module):
    """TensorFlow AveragePooling2D(3, 2, 'same') on an even input: one pad
    row/column at the bottom/right, excluded from each average."""

    def forward(self, x):
        xp = F.pad(x, (0, 1, 0, 1))
        ones = F.pad(torch.ones_like(x[:, :1]), (0, 1, 0, 1))
        return F.avg_pool2d(xp, 3, 2) / F.avg_pool2d(ones, 3, 2)


class Pad(nn.Module):
    def __init__(self, lrtb, value=0.0):
        super().__init__()
        self.lrtb, self.value = lrtb, value

    def forward(self, x):
        return F.pad(x, self.lrtb, value=self.value)


def model_b2():
    """uneven 'same' padding: Conv2D(stride 2) on 16x16 pads 0 top/left and
    1 bottom/right (TensorFlow), the same for AveragePooling2D(3, 2);
    ZeroPadding2D(((1, 0), (2, 1)))."""
    gen = torch.Generator().manual_seed(13)
    m = seeded(nn.Sequential(
        Pad((0, 1, 0, 1)), nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(),
        SameAvgPool(),                                   # 8x8 -> 4x4
        Pad((2, 1, 1, 0)), nn.Conv2d(8, 8, 3), nn.ReLU(),  # 5x7 -> 3x5
        nn.Flatten(), nn.Linear(8 * 3 * 5, 10)), gen)
    layers = [input_cfg("input_1", [16, 16, 3]),
              conv_cfg("down", 8, 3, strides=2, padding="same", act="relu"),
              simple("AveragePooling2D", "pool", pool_size=[3, 3], strides=[2, 2],
                     padding="same", data_format="channels_last"),
              simple("ZeroPadding2D", "zpad", padding=[[1, 0], [2, 1]],
                     data_format="channels_last"),
              conv_cfg("conv", 8, 3, padding="valid", act="relu"),
              simple("Flatten", "flatten", data_format="channels_last"),
              dense_cfg("out", 10, "softmax")]
    weights = {"down": conv_w(m[1]), "conv": conv_w(m[5]),
               "out": dense_w(m[8], (8, 3, 5))}
    return m, sequential("same_net", layers), weights, T.test_image(16, 16, seed=23)


class GraphNet(nn.Module):
    """in -> c1(relu) -> c2 -> add(c2, c1) -> relu -> [b1 1x1 relu, b2 3x3
    relu] -> concat -> maxpool 2 -> c3 stride 2 'same' (pad 0,1) -> bn ->
    relu -> depthwise 3x3 x2 -> gap -> dense 10."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.b1 = nn.Conv2d(8, 4, 1)
        self.b2 = nn.Conv2d(8, 6, 3, padding=1)
        self.c3 = nn.Conv2d(10, 12, 3, stride=2)
        self.bn = nn.BatchNorm2d(12, eps=1e-3)
        self.dw = nn.Conv2d(12, 24, 3, padding=1, groups=12)
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        a = F.relu(self.c1(x))
        r = F.relu(self.c2(a) + a)
        cat = torch.cat([F.relu(self.b1(r)), F.relu(self.b2(r))], 1)
        p = F.max_pool2d(cat, 2)
        h = F.relu(self.bn(self.c3(F.pad(p, (0, 1, 0, 1)))))
        h = self.dw(h)
        return self.fc(torch.mean(h, dim=(2, 3)))


def model_c():
    gen = torch.Generator().manual_seed(14)
    m = seeded(GraphNet(), gen)
    layers = [node(input_cfg("input_1", [16, 16, 3])),
              node(conv_cfg("c1", 8, 3, act="relu"), "input_1"),
              node(conv_cfg("c2", 8, 3), "c1"),
              node(simple("Add", "add"), "c2", "c1"),
              node(simple("Activation", "relu", activation="relu"), "add"),
              node(conv_cfg("b1", 4, 1, padding="valid", act="relu"), "relu"),
              node(conv_cfg("b2", 6, 3, act="relu"), "relu"),
              node(simple("Concatenate", "concat", axis=-1), "b1", "b2"),
              node(simple("MaxPooling2D", "pool", pool_size=[2, 2], strides=[2, 2],
                          padding="valid", data_format="channels_last"), "concat"),
              node(conv_cfg("c3", 12, 3, strides=2, padding="same"), "pool"),
              node(bn_cfg("bn", 1e-3), "c3"),
              node(simple("ReLU", "relu2"), "bn"),
              node(dwconv_cfg("dw", 3, 2), "relu2"),
              node(simple("GlobalAveragePooling2D", "gap",
                          data_format="channels_last"), "dw"),
              node(dense_cfg("logits", 10), "gap")]
    weights = {"c1": conv_w(m.c1), "c2": conv_w(m.c2), "b1": conv_w(m.b1),
               "b2": conv_w(m.b2), "c3": conv_w(m.c3), "bn": bn_w(m.bn),
               "dw": dwconv_w(m.dw, 2), "logits": dense_w(m.fc)}
    return m, functional("graph_net", layers, "input_1", "logits"), weights, \
        T.test_image(16, 16, seed=24)


def model_e():
    """Transfer learning as researchers write it: Sequential([vgg_base,
    Flatten(), Dense(10, activation='softmax')]) with vgg_base a nested
    Functional model (input_1, block1_conv1, block1_pool, block2_conv1,
    block2_pool); its outer layers are named like inner ones would clash."""
    gen = torch.Generator().manual_seed(15)
    m = seeded(nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 6 * 6, 10)), gen)
    pool = dict(pool_size=[2, 2], strides=[2, 2], padding="valid",
                data_format="channels_last")
    base = functional("vgg_base", [
        node(input_cfg("input_1", [24, 24, 3])),
        node(conv_cfg("block1_conv1", 8, 3, act="relu"), "input_1"),
        node(simple("MaxPooling2D", "block1_pool", **pool), "block1_conv1"),
        node(conv_cfg("block2_conv1", 8, 3, act="relu"), "block1_pool"),
        node(simple("MaxPooling2D", "flatten", **pool), "block2_conv1")],
        "input_1", "flatten")
    layers = [base, simple("Flatten", "flatten", data_format="channels_last"),
              dense_cfg("predictions", 10, "softmax")]
    weights = {"block1_conv1": conv_w(m[0]), "block2_conv1": conv_w(m[3]),
               "predictions": dense_w(m[7], (8, 6, 6))}
    return m, sequential("transfer", layers), weights, T.test_image(24, 24, seed=25)


class MixNet(nn.Module):
    """conv 'same' -> LeakyReLU(0.2) -> Rescaling(0.5, 0.1) -> Normalization
    (per channel, adapted: weights mean/variance/count) -> ReLU(max_value 6)
    -> Cropping2D(((1,1),(2,0))) -> MaxPooling2D(4, 1, 'same') (pads 1
    before, 2 after: TensorFlow) -> [GlobalMaxPooling2D | conv stride 2
    valid -> Flatten] -> Concatenate -> Dense(10)."""

    def __init__(self, gen):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 4, 3, stride=2)
        self.fc = nn.Linear(6 + 4 * 4 * 4, 10)
        self.mean = torch.randn(6, generator=gen, dtype=torch.float64) * 0.2
        self.var = torch.rand(6, generator=gen, dtype=torch.float64) + 0.3

    def forward(self, x):
        h = F.leaky_relu(self.c1(x), 0.2) * 0.5 + 0.1
        h = (h - self.mean.to(h.dtype).view(1, -1, 1, 1)) / \
            torch.sqrt(self.var.to(h.dtype)).view(1, -1, 1, 1)
        h = h.clamp(0, 6)[:, :, 1:-1, 2:]
        h = F.max_pool2d(F.pad(h, (1, 2, 1, 2), value=-math.inf), 4, 1)
        a = torch.amax(h, dim=(2, 3))
        b = torch.flatten(self.c2(h), 1)
        return self.fc(torch.cat([a, b], 1))


def model_f():
    gen = torch.Generator().manual_seed(16)
    m = seeded(MixNet(gen), gen)
    wt = t2n(m.fc.weight)                 # (10, 6 + 64)
    # Keras rows: the 6 pooled channels, then the flattened 4x4x4 in H,W,C.
    k = np.concatenate([wt[:, :6].T,
                        wt[:, 6:].reshape(10, 4, 4, 4).transpose(2, 3, 1, 0).reshape(64, 10)])
    layers = [node(input_cfg("input_1", [12, 12, 3])),
              node(conv_cfg("c1", 6, 3), "input_1"),
              node(simple("LeakyReLU", "leaky", alpha=0.2), "c1"),
              node(simple("Rescaling", "rescale", scale=0.5, offset=0.1), "leaky"),
              node(simple("Normalization", "norm", axis=-1, mean=None, variance=None,
                          invert=False), "rescale"),
              node(simple("ReLU", "relu6", max_value=6.0, negative_slope=0.0,
                          threshold=0.0), "norm"),
              node(simple("Cropping2D", "crop", cropping=[[1, 1], [2, 0]],
                          data_format="channels_last"), "relu6"),
              node(simple("MaxPooling2D", "pool", pool_size=[4, 4], strides=[1, 1],
                          padding="same", data_format="channels_last"), "crop"),
              node(simple("GlobalMaxPooling2D", "gmp", data_format="channels_last",
                          keepdims=False), "pool"),
              node(conv_cfg("c2", 4, 3, strides=2, padding="valid"), "pool"),
              node(simple("Flatten", "flat", data_format="channels_last"), "c2"),
              node(simple("Concatenate", "cat", axis=-1), "gmp", "flat"),
              node(dense_cfg("logits", 10), "cat")]
    weights = {"c1": conv_w(m.c1), "c2": conv_w(m.c2),
               "norm": [("mean", m.mean.numpy().astype(np.float32)),
                        ("variance", m.var.numpy().astype(np.float32)),
                        ("count", np.array(100, dtype=np.int64))],
               "logits": [("kernel", np.ascontiguousarray(k)), ("bias", t2n(m.fc.bias))]}
    # the file holds float32 statistics: use exactly those in PyTorch
    m.mean = torch.from_numpy(weights["norm"][0][1].astype(np.float64))
    m.var = torch.from_numpy(weights["norm"][1][1].astype(np.float64))
    return m, functional("mix_net", layers, "input_1", "logits"), weights, \
        T.test_image(12, 12, seed=26)


def model_g():
    """SeparableConv2D(8, 3, 'same', depth_multiplier=2, relu) -> GAP ->
    Dense(10) -> Activation('softmax') as a layer of its own."""
    gen = torch.Generator().manual_seed(17)
    m = seeded(nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, groups=3), nn.Conv2d(6, 8, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)), gen)
    with torch.no_grad():
        m[0].bias.zero_()                 # Keras' depthwise step has no bias
    sep = conv_cfg("sep", 8, 3, act="relu")
    sep["class_name"] = "SeparableConv2D"
    sep["config"]["depth_multiplier"] = 2
    layers = [input_cfg("input_1", [10, 10, 3]), sep,
              simple("GlobalAveragePooling2D", "gap", data_format="channels_last"),
              dense_cfg("logits", 10), simple("Activation", "probs", activation="softmax")]
    dw = dwconv_w(m[0], 2)[0]
    weights = {"sep": [dw, ("pointwise_kernel", t2n(m[1].weight).transpose(2, 3, 1, 0)),
                       ("bias", t2n(m[1].bias))],
               "logits": dense_w(m[5])}
    return m, sequential("sep_net", layers), weights, T.test_image(10, 10, seed=27)


# ---------------------------------------------------------------------------
# Checks

def torch_ref(model, img, target, scale=1.0):
    """logits (float32 model) and the cross-entropy pixel gradient in
    float64."""
    x = T.pixels(img)
    with torch.no_grad():
        logits = model(x * scale).numpy()[0].astype(np.float64)
    m64 = model.double()
    x64 = x.double().requires_grad_(True)
    loss = F.cross_entropy(m64(x64 * scale), torch.tensor([target]))
    loss.backward()
    model.float()
    return logits, x64.grad.numpy()


def check_graph(label, header, tensors, n_out):
    """The arch is a well-formed node graph (docs/model-format.md): unique
    names, inputs naming earlier nodes or "input", every tensor's shape
    what its node needs (and no others), exactly one unconsumed node, flat
    with n_out values."""
    meta = header["__metadata__"]
    arch = json.loads(meta["advex.arch"])
    shapes = {"input": tuple(json.loads(meta["advex.input"]))}
    need = {}
    consumed = set()
    prev = "input"
    problems = []

    def pair(node, k, d):
        return node.get(k, [d, d])

    for i, nd in enumerate(arch):
        name, op = nd.get("name"), nd.get("op")
        if not name or name in shapes:
            problems.append("node %d: missing or duplicate name %r" % (i, name))
            break
        ins = nd.get("inputs", [prev])
        if any(s not in shapes for s in ins):
            problems.append("%s: inputs %s not all defined before it" % (name, ins))
            break
        consumed.update(ins)
        s = [shapes[x] for x in ins]
        x = s[0]
        out = x
        if op == "conv2d":
            c, h, w = x
            g = nd.get("groups", 1)
            kh, kw = nd["kernel"]
            (sh, sw), (ph, pw) = pair(nd, "stride", 1), pair(nd, "padding", 0)
            if c % g or nd["out"] % g:
                problems.append("%s: groups %d vs %d->%d" % (name, g, c, nd["out"]))
            need[name + ".weight"] = (nd["out"], c // g, kh, kw)
            if nd.get("bias", True):
                need[name + ".bias"] = (nd["out"],)
            out = (nd["out"], (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
        elif op == "dense":
            if len(x) != 1:
                problems.append("%s: dense on %s" % (name, x))
            need[name + ".weight"] = (nd["out"], x[0])
            if nd.get("bias", True):
                need[name + ".bias"] = (nd["out"],)
            out = (nd["out"],)
        elif op == "batchnorm":
            for t in ("weight", "bias", "running_mean", "running_var"):
                need[name + "." + t] = (x[0],)
        elif op == "pad":
            t, l, b, r = nd.get("pads", [0, 0, 0, 0])
            out = (x[0], x[1] + t + b, x[2] + l + r)
        elif op in ("maxpool", "avgpool"):
            c, h, w = x
            dims = []
            for n, k, st, p in zip((h, w), nd["kernel"], pair(nd, "stride", None),
                                   pair(nd, "padding", 0)):
                st = st or k
                num = n + 2 * p - k
                o = (-(-num // st) if nd.get("ceil_mode") else num // st) + 1
                if nd.get("ceil_mode") and (o - 1) * st >= n + p:
                    o -= 1
                dims.append(o)
            out = (c, dims[0], dims[1])
        elif op == "gap":
            out = (x[0], 1, 1)
        elif op == "flatten":
            out = (int(np.prod(x)),)
        elif op == "add" and len(ins) > 1:
            if any(y != x for y in s):
                problems.append("%s: add of shapes %s" % (name, s))
        elif op == "concat":
            if any(len(y) != len(x) or y[1:] != x[1:] for y in s):
                problems.append("%s: concat of shapes %s" % (name, s))
            out = (sum(y[0] for y in s),) + tuple(x[1:])
        elif op in ("mul", "sub", "div", "add"):
            if "value" not in nd:
                need[name + ".value"] = (x[0],)
        elif op == "slice":
            (h0, w0), (h1, w1) = nd.get("start", [0, 0]), nd.get("end", [x[1], x[2]])
            out = (x[0], min(h1, x[1]) - h0, min(w1, x[2]) - w0)
        elif op not in ("relu", "leaky_relu", "clip", "sigmoid", "tanh", "identity",
                        "dropout"):
            problems.append("%s: op %r is not in docs/model-format.md" % (name, op))
        if len(ins) != 1 and op not in ("add", "concat"):
            problems.append("%s: %s takes 1 input, has %d" % (name, op, len(ins)))
        if min(out) < 1:
            problems.append("%s: empty output %s" % (name, out))
        shapes[name] = out
        prev = name
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if got != need:
        problems.append("tensors differ from what the nodes need: extra %s, missing or "
                        "wrong %s" % (sorted(set(got) - set(need)),
                                      sorted(k for k in need if got.get(k) != need[k])))
    ends = [n for n in shapes if n not in consumed and n != "input"]
    if len(ends) != 1 or shapes.get(ends[0]) != (n_out,):
        problems.append("unconsumed nodes %s (want one, flat %d)" % (ends, n_out))
    has_inputs = any("inputs" in nd for nd in arch)
    if meta.get("advex.format") != ("2" if has_inputs else "1"):
        problems.append("advex.format %s with%s inputs" % (meta.get("advex.format"),
                                                          "" if has_inputs else "out"))
    tap.ok(not problems, "%s: %d nodes form a well-formed graph (unique names, "
           "resolvable inputs, tensor shapes, one flat output of %d)"
           % (label, len(arch), n_out))
    for p in problems:
        tap.diag(p)
    return arch


def run_arch(header, tensors, img):
    """The file's graph run node by node as docs/model-format.md defines
    each op (PyTorch functional ops, float64): what the graph engine must
    compute. Returns the output vector."""
    meta = header["__metadata__"]
    arch = json.loads(meta["advex.arch"])
    x = T.pixels(img).double()
    if meta.get("advex.channel_order") == "BGR":
        x = x.flip(1)
    mean = torch.tensor(json.loads(meta["advex.mean"]), dtype=torch.float64).view(1, -1, 1, 1)
    std = torch.tensor(json.loads(meta["advex.std"]), dtype=torch.float64).view(1, -1, 1, 1)
    vals = {"input": (x * float(meta["advex.scale"]) - mean) / std}
    prev, used = "input", set()
    for nd in arch:
        name, op = nd["name"], nd["op"]
        ins = [vals[i] for i in nd.get("inputs", [prev])]
        used.update(nd.get("inputs", [prev]))
        x = ins[0]

        def t(k):
            return torch.from_numpy(np.array(tensors[name + "." + k])).double()

        def const():
            v = nd["value"] if "value" in nd else t("value")
            return v.view(1, -1, 1, 1) if torch.is_tensor(v) and x.dim() == 4 else v

        if op == "conv2d":
            y = F.conv2d(x, t("weight"), t("bias") if nd.get("bias", True) else None,
                         nd.get("stride", [1, 1]), nd.get("padding", [0, 0]),
                         groups=nd.get("groups", 1))
        elif op == "dense":
            y = F.linear(x, t("weight"), t("bias") if nd.get("bias", True) else None)
        elif op == "batchnorm":
            y = F.batch_norm(x, t("running_mean"), t("running_var"), t("weight"),
                             t("bias"), False, 0.0, nd.get("eps", 1e-5))
        elif op in ("maxpool", "avgpool"):
            k = nd["kernel"]
            st = nd.get("stride") or k
            if op == "maxpool":
                y = F.max_pool2d(x, k, st, nd.get("padding", [0, 0]),
                                 ceil_mode=nd.get("ceil_mode", False))
            else:
                y = F.avg_pool2d(x, k, st, nd.get("padding", [0, 0]),
                                 ceil_mode=nd.get("ceil_mode", False),
                                 count_include_pad=nd.get("count_include_pad", True))
        elif op == "gap":
            y = x.mean(dim=(2, 3), keepdim=True)
        elif op == "flatten":
            y = torch.flatten(x, 1)
        elif op == "relu":
            y = F.relu(x)
        elif op == "leaky_relu":
            y = F.leaky_relu(x, nd.get("alpha", 0.01))
        elif op == "clip":
            y = x.clamp(nd["min"], nd["max"])
        elif op in ("sigmoid", "tanh"):
            y = getattr(torch, op)(x)
        elif op == "add":
            y = sum(ins) if len(ins) > 1 else x + const()
        elif op in ("sub", "mul", "div"):
            y = {"sub": x - const(), "mul": x * const(), "div": x / const()}[op]
        elif op == "concat":
            y = torch.cat(ins, 1)
        elif op == "pad":
            tp, lf, bt, rt = nd.get("pads", [0, 0, 0, 0])
            y = F.pad(x, (lf, rt, tp, bt), value=nd.get("value", 0.0))
        elif op == "slice":
            (h0, w0), (h1, w1) = nd.get("start", [0, 0]), nd.get("end", list(x.shape[2:]))
            y = x[:, :, h0:h1, w0:w1]
        elif op in ("identity", "dropout"):
            y = x
        else:
            raise ValueError("op %r" % op)
        vals[name] = y
        prev = name
    ends = [nd["name"] for nd in arch if nd["name"] not in used]
    return vals[ends[-1]].detach().numpy()[0]


SEMANTICS_TOL = 1e-6     # float64 both sides; derived constants (a
                         # Normalization's sqrt(variance)) are F32 in the file


def graph_semantics(label, header, tensors, model, img, scale=1.0):
    """The emitted graph, run as docs/model-format.md defines it, computes
    what the PyTorch model computes (both float64)."""
    got = run_arch(header, tensors, img)
    m64 = model.double()
    with torch.no_grad():
        ref = m64(T.pixels(img).double() * scale).numpy()[0]
    model.float()
    e = T.rel_err(got, ref)
    tap.ok(e < SEMANTICS_TOL, "%s: the file's graph run op by op as "
           "docs/model-format.md defines (PyTorch, float64) gives PyTorch's logits: "
           "rel err %.1e < %g" % (label, e, SEMANTICS_TOL))


def engine_loads(f):
    """Can this advex binary load the file? (The sequential engine refuses
    add/concat/pad nodes and grouped convolutions.)"""
    p = T.run_advex(["info", "--model", f])
    return p.returncode == 0, first_line(p.stderr) or first_line(p.stdout)


def diagnose(f, png, target, loss="ce", grad_out=None):
    args = ["diagnose", "--model", f, "--image", png, "--target", str(target),
            "--loss", loss, "--json"]
    if grad_out:
        args += ["--grad-out", grad_out]
    p = T.run_advex(args)
    if p.returncode != 0:
        return None, p
    try:
        return json.loads(p.stdout), p
    except ValueError:
        return None, p


def parity(label, f, model, img, target=0, scale=1.0, graph=False):
    """advex vs PyTorch: logits 1e-4, CE pixel gradient 1e-3 rel L2."""
    if ADVEX is None:
        tap.skip("%s: parity (advex binary not built)" % label)
        return None
    if graph:
        ok, why = engine_loads(f)
        if not ok:
            tap.skip("graph engine not available: %s (advex info: %s)" % (label, why))
            return None
    png = path("%s.png" % re.sub(r"[^A-Za-z0-9_.()-]", "_", label))
    T.write_png(png, img)
    g = path("%s.npy" % re.sub(r"[^A-Za-z0-9_.()-]", "_", label))
    js, p = diagnose(f, png, target, "ce", g)
    if not tap.ok(js is not None, "%s: advex diagnose --json --grad-out runs%s"
                  % (label, "" if js else ": " + (first_line(p.stderr) or first_line(p.stdout)))):
        return None
    ref_logits, ref_grad = torch_ref(model, img, target, scale)
    got = np.asarray(js["logits"], dtype=np.float64)
    e = T.rel_err(got, ref_logits) if got.shape == ref_logits.shape else math.inf
    if not tap.ok(e < LOGIT_TOL, "%s: logits rel err %.2e < %g (max|logit| %.3g)"
                  % (label, e, LOGIT_TOL, np.max(np.abs(ref_logits)))):
        tap.diag("advex:   %s" % np.array2string(got, precision=5))
        tap.diag("pytorch: %s" % np.array2string(ref_logits, precision=5))
    grad = T.read_npy(g)
    e = T.rel_l2(grad, ref_grad) if grad.shape == ref_grad.shape else math.inf
    tap.ok(e < GRAD_TOL and np.linalg.norm(ref_grad) > 0,
           "%s: CE input gradient rel L2 err %.2e < %g vs PyTorch float64 (||g|| %.4g)"
           % (label, e, GRAD_TOL, np.linalg.norm(ref_grad)))
    return js


def import_ok(label, src, out, extra=(), env=None):
    p = run_import([src, "--out", out] + list(extra), env)
    tap.ok(p.returncode == 0 and os.path.isfile(out), "%s: advex-import %s: %s"
           % (label, os.path.basename(src),
              first_line(p.stdout) if p.returncode == 0 else first_line(p.stderr)))
    return p


def same_weights(label, tensors, pairs):
    """File tensors equal the PyTorch parameters bit for bit (the HWIO ->
    OIHW and H,W,C -> C,H,W reorderings are exact)."""
    bad = [k for k, v in pairs.items()
           if k not in tensors or tensors[k].shape != tuple(v.shape) or
           not np.array_equal(tensors[k], t2n(v))]
    tap.ok(not bad, "%s: %d tensors equal the PyTorch parameters bit for bit%s"
           % (label, len(pairs), "" if not bad else " (differ: %s)" % bad))


# ---------------------------------------------------------------------------

def test_a():
    m, mc, w, img = model_a()
    src = write_keras2(path("vgg_like.h5"), mc, w)
    out = path("a.safetensors")
    p = import_ok("(a) Sequential VGG-like, Dense(10, softmax)", src, out)
    if p.returncode != 0:
        return
    tap.ok("softmax removed" in p.stdout and "warning" in p.stderr and
           "guess" in p.stderr and "--classes" in p.stderr,
           "(a) the summary says the softmax was removed; a warning says the STL-10 "
           "names are a guess: %s" % first_line(p.stderr))
    header, tensors = T.read_safetensors(out)[1:]
    meta = header["__metadata__"]
    arch = check_graph("(a)", header, tensors, 10)
    graph_semantics("(a)", header, tensors, m, img)
    tap.ok(meta.get("advex.removed_softmax") == "true" and
           meta.get("advex.source", "").startswith("keras:") and
           [n["op"] for n in arch] == ["conv2d", "relu", "conv2d", "relu", "maxpool",
                                       "conv2d", "relu", "maxpool", "flatten", "dense",
                                       "relu", "dropout", "dense"] and
           arch[-1]["name"] == "predictions" and meta.get("advex.format") == "1",
           "(a) advex.removed_softmax true, source keras:..., a chain without "
           "inputs ending in dense 'predictions' (logits), format 1")
    same_weights("(a)", tensors, {
        "block1_conv1.weight": m[0].weight, "block1_conv2.bias": m[2].bias,
        "block2_conv1.weight": m[5].weight, "fc1.weight": m[9].weight,
        "fc1.bias": m[9].bias, "predictions.weight": m[12].weight})

    with torch.no_grad():
        probs = torch.softmax(m(T.pixels(img)).double(), 1)[0].numpy()
    target = int(np.argmin(probs))
    tap.ok(probs[target] < CLIP_EPS, "(a) precondition: PyTorch gives p(class %d) = "
           "%.3g < %g" % (target, probs[target], CLIP_EPS))
    js = parity("(a) ce", out, m, img, target)

    # The story: the Keras loss on probabilities is flat there.
    if ADVEX is not None and js is not None:
        png = path("(a)_ce.png")
        g = path("a_probce.npy")
        jp, pp = diagnose(out, png, target, "prob-ce", g)
        if tap.ok(jp is not None, "(a) advex diagnose --loss prob-ce runs"):
            want = -math.log(CLIP_EPS)
            gr = T.read_npy(g)
            tap.ok(abs(jp["loss"] - want) < 1e-3 and jp["grad_linf"] == 0 and
                   jp["zero_fraction"] == 1.0 and not np.any(gr),
                   "(a) prob-ce toward class %d: loss %.4f (-ln 1e-7 = %.4f), gradient "
                   "all zero (Linf %g, zero fraction %g)"
                   % (target, jp["loss"], want, jp["grad_linf"], jp["zero_fraction"]))
            why = jp.get("diagnosis") or ""
            tap.ok("this Keras model ends in softmax; advex attacks the logits under it"
                   in why and "--loss ce" in why,
                   "(a) the prob-ce diagnosis names the Keras softmax: %s" % why)
            tap.ok(js["grad_linf"] > 0 and js["zero_fraction"] < 1 and
                   not js.get("diagnosis"),
                   "(a) --loss ce toward the same class: healthy gradient (Linf %.3g, "
                   "zero fraction %.3g, no diagnosis)" % (js["grad_linf"],
                                                          js["zero_fraction"]))

    # Control: without the Flatten row permutation the logits are wrong.
    bad = path("a_noperm.safetensors")
    p = run_import([src, "--out", bad], {NO_PERM_ENV: "1"})
    if p.returncode == 0 and ADVEX is not None:
        png = path("a_ctrl.png")
        T.write_png(png, img)
        jb, pb = diagnose(bad, png, target)
        ref, _ = torch_ref(m, img, target)
        e = T.rel_err(jb["logits"], ref) if jb else 0.0
        tap.ok(jb is not None and e > 100 * LOGIT_TOL,
               "(a) control: imported without the Flatten row permutation, advex's "
               "logits are off by %.2e (> %g): the parity check catches it"
               % (e, 100 * LOGIT_TOL))
    else:
        tap.ok(p.returncode == 0 and ADVEX is None,
               "(a) control import without the permutation: %s"
               % (first_line(p.stderr) or "advex binary not built"))
    # The Dense rows the control wrote really differ from PyTorch's.
    t2 = T.read_safetensors(bad)[2] if p.returncode == 0 else {}
    tap.ok("fc1.weight" in t2 and not np.array_equal(t2["fc1.weight"], t2n(m[9].weight)),
           "(a) control: its fc1.weight is not PyTorch's (rows in Keras' H,W,C order)")

    # --classes still works, and then nothing is guessed.
    names = ",".join("k%d" % i for i in range(10))
    p = run_import([src, "--out", path("a_named.safetensors"), "--classes", names])
    ok = p.returncode == 0 and "warning" not in p.stderr and json.loads(
        T.read_safetensors(path("a_named.safetensors"))[1]["__metadata__"]
        ["advex.classes"]) == names.split(",")
    tap.ok(ok, "(a) --classes k0..k9 is recorded and no guess is announced")

    # Told by content: the same HDF5 file named .bin imports the same.
    shutil.copy(src, path("renamed.bin"))
    p = run_import([path("renamed.bin"), "--out", path("a_bin.safetensors")])
    ok = p.returncode == 0 and T.read_safetensors(path("a_bin.safetensors"))[1][
        "__metadata__"]["advex.arch"] == meta["advex.arch"]
    tap.ok(ok, "(a) the .h5 renamed to .bin is recognised as Keras by its bytes")

    # (a) as a Keras 3 Sequential archive: the same nodes and tensors.
    src3 = write_keras3(path("vgg_like.keras"), mc, w)
    p = run_import([src3, "--out", path("a3.safetensors")])
    ok = p.returncode == 0
    if ok:
        h3, t3 = T.read_safetensors(path("a3.safetensors"))[1:]
        ok = (h3["__metadata__"]["advex.arch"] == meta["advex.arch"] and
              h3["__metadata__"]["advex.removed_softmax"] == "true" and
              set(t3) == set(tensors) and
              all(np.array_equal(t3[k], tensors[k]) for k in tensors))
    tap.ok(ok, "(a) as a Keras 3 Sequential .keras: the same nodes and tensors as the "
           ".h5: %s" % (first_line(p.stdout) if p.returncode == 0 else first_line(p.stderr)))


def test_b():
    m, mc, w, img = model_b()
    src = write_keras2(path("valid_net.h5"), mc, w)
    out = path("b.safetensors")
    p = import_ok("(b) valid convs, BN, avgpool, Rescaling+Normalization", src, out)
    if p.returncode != 0:
        return
    header, tensors = T.read_safetensors(out)[1:]
    meta = header["__metadata__"]
    arch = check_graph("(b)", header, tensors, 10)
    graph_semantics("(b)", header, tensors, m, img, scale=255.0)
    std = json.loads(meta["advex.std"])
    mean = json.loads(meta["advex.mean"])
    want_std = [math.sqrt(v) for v in (0.06, 0.05, 0.07)]
    tap.ok(float(meta["advex.scale"]) == 1.0 and
           max(abs(a - b) for a, b in zip(std, want_std)) < 1e-7 and
           max(abs(a - b) for a, b in zip(mean, (0.45, 0.5, 0.4))) < 1e-7 and
           arch[0]["op"] == "conv2d" and "advex.removed_softmax" not in meta,
           "(b) Rescaling(1/255) on 0..255 input + Normalization fold into scale %s, "
           "mean %s, std %s; the arch starts with conv2d"
           % (meta["advex.scale"], mean, ["%.5f" % s for s in std]))
    c3 = [n for n in arch if n["name"] == "conv3"]
    tap.ok(c3 and c3[0]["padding"] == [1, 1] and c3[0]["stride"] == [2, 2] and
           [n for n in arch if n["op"] == "avgpool"][0]["count_include_pad"] is False and
           arch[1]["op"] == "batchnorm" and abs(arch[1]["eps"] - 1e-3) < 1e-12,
           "(b) stride-2 'same' on 13x13 is padding [1,1]; avgpool excludes padding; "
           "batchnorm eps 1e-3 from the config")
    parity("(b)", out, m, img, target=3, scale=255.0)


def test_b2():
    m, mc, w, img = model_b2()
    src = write_keras2(path("same_net.h5"), mc, w)
    out = path("b2.safetensors")
    p = import_ok("(b2) uneven 'same' padding, ZeroPadding2D", src, out)
    if p.returncode != 0:
        return
    header, tensors = T.read_safetensors(out)[1:]
    arch = check_graph("(b2)", header, tensors, 10)
    graph_semantics("(b2)", header, tensors, m, img)
    ops = [(n["op"], n.get("pads"), n.get("padding"), n.get("ceil_mode"))
           for n in arch if n["op"] in ("pad", "conv2d", "avgpool")]
    tap.ok(ops == [("pad", [0, 0, 1, 1], None, None), ("conv2d", None, [0, 0], None),
                   ("avgpool", None, [0, 0], True), ("pad", [1, 2, 0, 1], None, None),
                   ("conv2d", None, [0, 0], None)],
           "(b2) uneven stride-2 'same' conv is pad [0,0,1,1] + conv padding 0; 'same' "
           "avgpool is ceil_mode; ZeroPadding2D is pad [top,left,bottom,right]: %s" % ops)
    same_weights("(b2)", tensors, {"down.weight": m[1].weight, "out.weight": m[8].weight})
    parity("(b2)", out, m, img, target=1, graph=True)


def test_cd():
    m, mc, w, img = model_c()
    src = write_keras2(path("graph_net.h5"), mc, w)
    out = path("c.safetensors")
    p = import_ok("(c) Functional with Add, Concatenate, DepthwiseConv2D", src, out)
    if p.returncode != 0:
        return
    header, tensors = T.read_safetensors(out)[1:]
    arch = check_graph("(c)", header, tensors, 10)
    graph_semantics("(c)", header, tensors, m, img)
    by = {n["name"]: n for n in arch}
    tap.ok(by.get("add", {}).get("inputs") == ["c2", "c1.relu"] and
           by.get("concat", {}).get("inputs") == ["b1.relu", "b2.relu"] and
           by.get("b2", {}).get("inputs") == ["relu"] and
           by.get("dw", {}).get("groups") == 12 and by["dw"]["out"] == 24 and
           by.get("c3.pad", {}).get("pads") == [0, 0, 1, 1] and
           header["__metadata__"]["advex.format"] == "2",
           "(c) add reads c2 and c1.relu, concat b1.relu and b2.relu, b2 the relu, "
           "depthwise is conv2d groups 12 out 24, c3 has its pad node, format 2")
    same_weights("(c)", tensors, {"c1.weight": m.c1.weight, "b1.weight": m.b1.weight,
                                  "dw.weight": m.dw.weight, "dw.bias": m.dw.bias,
                                  "logits.weight": m.fc.weight,
                                  "bn.running_var": m.bn.running_var})
    parity("(c)", out, m, img, target=2, graph=True)

    # (d) the same model as a Keras 3 archive.
    src3 = write_keras3(path("graph_net.keras"), mc, w)
    out3 = path("d.safetensors")
    p = import_ok("(d) the same model as a Keras 3 .keras", src3, out3)
    if p.returncode != 0:
        return
    h3, t3 = T.read_safetensors(out3)[1:]
    check_graph("(d)", h3, t3, 10)
    graph_semantics("(d)", h3, t3, m, img)
    same = (h3["__metadata__"]["advex.arch"] == header["__metadata__"]["advex.arch"] and
            set(t3) == set(tensors) and
            all(np.array_equal(t3[k], tensors[k]) for k in tensors))
    tap.ok(same, "(d) the Keras 3 file gives the same nodes and the same %d tensors as "
           "the Keras 2 one" % len(tensors))
    parity("(d)", out3, m, img, target=2, graph=True)


def test_e():
    m, mc, w, img = model_e()
    for ext, writer in ((".h5", write_keras2), (".keras", write_keras3)):
        label = "(e%s) nested base model" % ext
        src = writer(path("transfer" + ext), mc, w)
        out = path("e%s.safetensors" % ext.strip("."))
        p = import_ok(label, src, out)
        if p.returncode != 0:
            continue
        header, tensors = T.read_safetensors(out)[1:]
        arch = check_graph(label, header, tensors, 10)
        graph_semantics(label, header, tensors, m, img)
        names = [n["name"] for n in arch]
        tap.ok(names[:5] == ["block1_conv1", "block1_conv1.relu", "block1_pool",
                             "block2_conv1", "block2_conv1.relu"] and
               "vgg_base.flatten" in names and names[-2:] == ["flatten", "predictions"] and
               header["__metadata__"].get("advex.removed_softmax") == "true",
               "%s: the base model's layers are inlined (its 'flatten' pool renamed "
               "vgg_base.flatten), then flatten and predictions; softmax removed: %s"
               % (label, names))
        parity(label, out, m, img, target=5)

    # The same in a Functional outer model, which reads the nested model's
    # output as its call 1 (Keras keeps node 0 for the nested model's own
    # input-to-output link).
    base, flat, dense = mc["config"]["layers"]
    mcf = functional("transfer_f", [
        node(input_cfg("image", [24, 24, 3])), node(base, "image"),
        dict(flat, name="flatten", inbound_nodes=[[["vgg_base", 1, 0, {}]]]),
        node(dense, "flatten")], "image", "predictions")
    src = write_keras2(path("transfer_f.h5"), mcf, w)
    p = run_import([src, "--out", path("ef.safetensors")])
    ok = p.returncode == 0 and os.path.exists(path("eh5.safetensors"))
    if ok:
        a1 = T.read_safetensors(path("eh5.safetensors"))[1]["__metadata__"]["advex.arch"]
        a2 = T.read_safetensors(path("ef.safetensors"))[1]["__metadata__"]["advex.arch"]
        ok = a1 == a2
    tap.ok(ok, "(e) the nested model inside a Functional model (read as its call 1) "
           "gives the same nodes: %s" % (first_line(p.stdout) or first_line(p.stderr)))


def test_f():
    m, mc, w, img = model_f()
    for ext, writer in ((".h5", write_keras2), (".keras", write_keras3)):
        label = "(f%s) mid-network Rescaling/Normalization, clip, crop, pools" % ext
        src = writer(path("mix" + ext), mc, w)
        out = path("f%s.safetensors" % ext.strip("."))
        p = import_ok(label, src, out)
        if p.returncode != 0:
            continue
        header, tensors = T.read_safetensors(out)[1:]
        arch = check_graph(label, header, tensors, 10)
        graph_semantics(label, header, tensors, m, img)
        by = {n["name"]: n for n in arch}
        ops = [(n["op"], n.get("value")) for n in arch
               if n["name"].startswith(("rescale", "norm"))]
        tap.ok(ops == [("mul", 0.5), ("add", 0.1), ("sub", None), ("div", None)] and
               by["relu6"]["op"] == "clip" and by["leaky"]["op"] == "leaky_relu" and
               by["pool.pad"]["pads"] == [1, 1, 2, 2] and by["pool.pad"]["value"] < -1e38 and
               by["crop"]["op"] == "slice" and by["cat"]["inputs"] == ["gmp.flatten", "flat"],
               "%s: Rescaling is mul 0.5 + add 0.1, Normalization sub/div by per-channel "
               "tensors, ReLU(6) clip, uneven 'same' max pool padded with -FLT_MAX, "
               "Cropping2D a slice, concat of two flat vectors" % label)
        parity(label, out, m, img, target=4, graph=True)


def test_g():
    m, mc, w, img = model_g()
    for ext, writer in ((".h5", write_keras2), (".keras", write_keras3)):
        label = "(g%s) SeparableConv2D, final Activation('softmax')" % ext
        src = writer(path("sep" + ext), mc, w)
        out = path("g%s.safetensors" % ext.strip("."))
        p = import_ok(label, src, out)
        if p.returncode != 0:
            continue
        header, tensors = T.read_safetensors(out)[1:]
        arch = check_graph(label, header, tensors, 10)
        graph_semantics(label, header, tensors, m, img)
        tap.ok([(n["name"], n.get("groups", 1)) for n in arch if n["op"] == "conv2d"] ==
               [("sep.depthwise", 3), ("sep", 1)] and arch[-1]["name"] == "logits" and
               header["__metadata__"].get("advex.removed_softmax") == "true",
               "%s: depthwise conv2d (groups 3) then 1x1 conv2d; the softmax layer is "
               "removed and the model ends at the logits" % label)
        parity(label, out, m, img, target=6, graph=True)


def test_errors():
    png = path("x.bin")
    T.write_png(png, T.test_image(4, 4, seed=1))
    p = run_import([png, "--out", path("bad.safetensors")])
    tap.ok(p.returncode == 1 and one_line_error(p) and
           "x.bin: not ONNX, PyTorch or Keras (looks like: PNG image)" in p.stderr,
           "a PNG named x.bin: exit 1, one line: %s" % first_line(p.stderr))

    p = run_import([path("a.safetensors"), "--out", path("bad.safetensors")])
    tap.ok(p.returncode == 1 and one_line_error(p) and
           "not ONNX, PyTorch or Keras (looks like: safetensors file" in p.stderr,
           "an advex model file given to advex-import: exit 1, one line: %s"
           % first_line(p.stderr))

    # softmax inside the network
    m, mc, w, img = model_a()
    mc2 = json.loads(json.dumps(mc))
    mc2["config"]["layers"][7]["config"]["activation"] = "softmax"
    src = write_keras2(path("mid_softmax.h5"), mc2, w)
    p = run_import([src, "--out", path("bad.safetensors")])
    tap.ok(p.returncode == 1 and one_line_error(p) and "fc1" in p.stderr and
           "softmax" in p.stderr,
           "softmax on a non-final Dense: exit 1, one line naming fc1: %s"
           % first_line(p.stderr))

    # weights only
    with h5py.File(path("weights_only.h5"), "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        f.create_group("dense").attrs["weight_names"] = [b"dense/kernel:0"]
    p = run_import([path("weights_only.h5"), "--out", path("bad.safetensors")])
    tap.ok(p.returncode == 1 and one_line_error(p) and "model_config" in p.stderr,
           "an HDF5 weights-only file: exit 1, one line: %s" % first_line(p.stderr))

    # unsupported layer, named
    mc3 = json.loads(json.dumps(mc))
    mc3["config"]["layers"][6] = simple("Reshape", "reshape", target_shape=[1024])
    src = write_keras2(path("reshape.h5"), mc3, w)
    p = run_import([src, "--out", path("bad.safetensors")])
    tap.ok(p.returncode == 1 and one_line_error(p) and "'reshape' (Reshape)" in p.stderr,
           "an unsupported Reshape layer: exit 1, one line naming it: %s"
           % first_line(p.stderr))


def test_help():
    p = run_import(["--help"])
    tap.ok(p.returncode == 0 and ".keras" in p.stdout and "model_config" in p.stdout and
           "removed_softmax" in p.stdout,
           "advex-import --help documents Keras .h5/.keras import")


def main():
    try:
        if ADVEX is None:
            tap.diag("advex binary not found ($ADVEX=%s): parity checks skipped"
                     % os.environ.get("ADVEX"))
        test_help()
        test_a()
        test_b()
        test_b2()
        test_cd()
        test_e()
        test_f()
        test_g()
        test_errors()
    except Exception as e:  # a crash is a failure, not a silent stop
        import traceback
        tap.ok(False, "test_keras.py crashed: %s: %s" % (type(e).__name__, e))
        tap.diag(traceback.format_exc())
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    tap.done()


if __name__ == "__main__":
    main()
