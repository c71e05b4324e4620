"""graphref.py - an advex model file (docs/model-format.md, graph nodes
included) evaluated by PyTorch, independently of advex's C engine.

The tests use it to check an importer's conversion on its own (the file
computes what the source model computes) and to name every node's gradient
norm for the comparison with `advex diagnose`'s layer_grad_norms.

  ModelFile(path)          the header, tensors and nodes of a model file
  ModelFile.check()        the structural rules of the format, as messages
  ModelFile.run(x, target) forward in float64, cross-entropy, backward
"""

import json

import numpy as np
import torch
import torch.nn.functional as F

import torchref as T

PARAMS = {"conv2d": ("weight", "bias"), "dense": ("weight", "bias"),
          "batchnorm": ("weight", "bias", "running_mean", "running_var")}


class ModelFile:
    def __init__(self, path):
        _, self.header, self.tensors = T.read_safetensors(path)
        meta = self.header["__metadata__"]
        self.meta = meta
        self.input = tuple(json.loads(meta["advex.input"]))
        self.scale = float(meta.get("advex.scale", "1"))
        self.mean = json.loads(meta.get("advex.mean", "[0,0,0]"))
        self.std = json.loads(meta.get("advex.std", "[1,1,1]"))
        self.bgr = meta.get("advex.channel_order", "RGB") == "BGR"
        arch = json.loads(meta["advex.arch"])
        self.nodes = []
        prev = "input"
        for i, n in enumerate(arch):
            n = dict(n)
            n["label"] = n.get("name", "")     # what advex reports as its name
            n.setdefault("name", "#%d" % i)
            n["inputs"] = list(n.get("inputs", [prev]))
            self.nodes.append(n)
            prev = n["name"]

    def tensor_names(self, n):
        """The tensors node n needs."""
        op = n["op"]
        if op in PARAMS:
            names = [w for w in PARAMS[op] if not (w == "bias" and n.get("bias") is False)]
        elif op in ("add", "sub", "mul", "div") and len(n["inputs"]) == 1 and "value" not in n:
            names = ["value"]
        else:
            names = []
        return [n["name"] + "." + w for w in names]

    def check(self):
        """Messages for every broken rule: names unique, inputs name an
        earlier node (the file is in topological order), exactly the tensors
        the nodes need, one unconsumed node (the last)."""
        bad = []
        seen = {"input"}
        consumed = set()
        for n in self.nodes:
            for i in n["inputs"]:
                if i not in seen:
                    bad.append("%s: input %r is not an earlier node" % (n["name"], i))
                consumed.add(i)
            if n["name"] in seen:
                bad.append("%s: name used twice" % n["name"])
            seen.add(n["name"])
        need = set()
        for n in self.nodes:
            need.update(self.tensor_names(n))
        if need != set(self.tensors):
            bad.append("tensors: missing %s, extra %s" % (sorted(need - set(self.tensors)),
                                                         sorted(set(self.tensors) - need)))
        ends = [n["name"] for n in self.nodes if n["name"] not in consumed]
        if ends != [self.nodes[-1]["name"]]:
            bad.append("unconsumed nodes %s (want only the last)" % ends)
        return bad

    def _t(self, name):
        return torch.from_numpy(np.array(self.tensors[name], dtype=np.float64))

    def _node(self, n, xs):
        op = n["op"]
        x = xs[0]
        nm = n["name"]
        if op == "conv2d":
            b = self._t(nm + ".bias") if n.get("bias", True) else None
            return F.conv2d(x, self._t(nm + ".weight"), b, n["stride"], n["padding"],
                            groups=n.get("groups", 1))
        if op == "dense":
            b = self._t(nm + ".bias") if n.get("bias", True) else None
            return F.linear(x, self._t(nm + ".weight"), b)
        if op == "batchnorm":
            shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
            w, b, mu, var = (self._t(nm + "." + k).view(shape) for k in PARAMS[op])
            return (x - mu) / torch.sqrt(var + n.get("eps", 1e-5)) * w + b
        if op == "relu":
            return torch.relu(x)
        if op == "leaky_relu":
            return F.leaky_relu(x, n.get("alpha", 0.01))
        if op == "clip":
            return torch.clamp(x, n["min"], n["max"])
        if op == "sigmoid":
            return torch.sigmoid(x)
        if op == "tanh":
            return torch.tanh(x)
        if op in ("maxpool", "avgpool"):
            k = n["kernel"]
            s = n.get("stride", k)
            p = n.get("padding", [0, 0])
            if op == "maxpool":
                return F.max_pool2d(x, k, s, p, ceil_mode=n.get("ceil_mode", False))
            return F.avg_pool2d(x, k, s, p, ceil_mode=n.get("ceil_mode", False),
                                count_include_pad=n.get("count_include_pad", True))
        if op == "gap":
            return x.mean((2, 3), keepdim=True)
        if op == "flatten":
            return torch.flatten(x, 1)
        if op in ("add", "sub", "mul", "div"):
            if len(xs) > 1:
                assert op == "add"
                out = xs[0]
                for y in xs[1:]:
                    out = out + y
                return out
            if "value" in n:
                v = torch.tensor(float(n["value"]), dtype=x.dtype)
            else:
                v = self._t(nm + ".value").view((1, -1, 1, 1) if x.dim() == 4 else (1, -1))
            return {"add": x + v, "sub": x - v, "mul": x * v, "div": x / v}[op]
        if op == "concat":
            return torch.cat(xs, 1)
        if op == "pad":
            t, l, b, r = n.get("pads", [0, 0, 0, 0])
            c0, c1 = n.get("channels", [0, 0])
            return F.pad(x, (l, r, t, b, c0, c1), "constant", n.get("value", 0.0))
        if op == "slice":
            h, w = x.shape[2:]
            s0, s1 = n.get("start", [0, 0])
            e0, e1 = n.get("end", [h, w])
            k0, k1 = n.get("step", [1, 1])
            c0, c1 = n.get("channels", [0, x.shape[1]])
            return x[:, c0:c1, s0:e0:k0, s1:e1:k1]
        if op in ("identity", "dropout"):
            return x
        if op == "softmax":
            return torch.softmax(x, 1)
        raise ValueError("graphref: unknown op %r" % op)

    def run(self, pixels, target=0):
        """pixels: (1,3,H,W) in [0,1]. Returns logits, loss, grad (pixel
        gradient), norms: per node the L2 norm of the loss gradient at its
        input (several distinct inputs: the root of the sum of squares), then
        at the output; shapes: per node its output shape."""
        x = pixels.detach().double().clone().requires_grad_(True)
        h = x * self.scale
        if self.bgr:
            h = h[:, [2, 1, 0]]
        mean = torch.tensor(self.mean, dtype=torch.float64).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float64).view(1, -1, 1, 1)
        h = (h - mean) / std
        h.retain_grad()
        vals = {"input": h}
        for n in self.nodes:
            out = self._node(n, [vals[i] for i in n["inputs"]])
            if out is vals[n["inputs"][0]]:
                out = out.view_as(out)      # its own tensor, for its own gradient
            out.retain_grad()
            vals[n["name"]] = out
        logits = vals[self.nodes[-1]["name"]]
        loss = F.cross_entropy(logits, torch.tensor([target]))
        loss.backward()

        def g2(name):
            g = vals[name].grad
            return 0.0 if g is None else float((g * g).sum())
        norms = []
        for n in self.nodes:
            norms.append(float(np.sqrt(sum(g2(i) for i in dict.fromkeys(n["inputs"])))))
        norms.append(float(np.sqrt(g2(self.nodes[-1]["name"]))))
        return {"logits": logits.detach().numpy()[0], "loss": float(loss),
                "grad": x.grad.detach().numpy(), "norms": norms,
                "shapes": {k: tuple(v.shape[1:]) for k, v in vals.items()}}
