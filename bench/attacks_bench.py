#!/usr/bin/python3
"""bench/attacks_bench.py - images per second of each attack, advex against
the same algorithm in PyTorch (tests/attacksref.py), in one run.

advex runs its batch sweep (`advex attack --data D --images A:B --attack K
--no-log --quiet --json`, the process's wall time, model loading included);
PyTorch runs the reference of tests/attacksref.py on the same model file
(run by PyTorch through tests/graphref.py, float64, one image at a time,
as the reference is written - not a tuned PyTorch implementation, which
would batch the images) on the same images. Both count the images of A:B
over their wall time. The success counts are a sanity check, not a
comparison: advex's sweep attacks the data's labels (an image already
misclassified counts as a success), the reference the prediction at x0.

usage: bench/attacks_bench.py [--model FILE] [--data DIR] [--images A:B]
           [--attacks apgd-ce,apgd-dlr,square,bim] [--iters N] [--queries Q]
           [--eps E] [--threads T] [--batch B] [--json]
Defaults: the bundled demo model and data, images 0:8, every attack, 20
iterations, 300 queries, eps 8/255, 1 thread, advex's default --batch.
For VGG16: import it (tools/advex-import) and give --model and --data.
Run it on an idle machine: under load the figures mean nothing.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import torchref as T  # noqa: E402


def advex_rate(args, kind):
    cmd = [T.advex_binary() or "./advex", "attack", "--model", args.model, "--data",
           args.data, "--images", args.images, "--eps", args.eps, "--attack", kind,
           "--no-log", "--quiet", "--json", "--threads", str(args.threads)]
    cmd += ["--queries", str(args.queries)] if kind == "square" else ["--iters", str(args.iters)]
    if args.batch:
        cmd += ["--batch", str(args.batch)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    dt = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit("advex failed: " + r.stderr.strip())
    out = json.loads(r.stdout.splitlines()[-1])
    return out["attempted"] / dt, out["succeeded"], dt


def torch_rate(args, kind, f, x, labels):
    import torch
    import attacksref as R
    eps = eval_eps(args.eps)
    succ = 0
    t0 = time.perf_counter()
    for i in range(len(x)):
        x0 = torch.from_numpy(x[i:i + 1]).double()
        if kind == "square":
            succ += R.square(f, x0, labels[i], eps, args.queries)["success"]
        elif kind == "bim":
            succ += bim(f, x0, labels[i], eps, args.iters)
        else:
            succ += R.apgd(f, x0, labels[i], kind, "linf", eps, args.iters)["success"]
    dt = time.perf_counter() - t0
    return len(x) / dt, succ, dt


def bim(f, x0, y, eps, iters):
    """I-FGSM with advex's default step 2.5 eps / iters, from x0."""
    import torch
    import torch.nn.functional as F
    alpha = min(2.5 * eps / iters, eps)
    x = x0.clone()
    for _ in range(iters):
        x.requires_grad_(True)
        z = f(x)
        g, = torch.autograd.grad(F.cross_entropy(z, torch.tensor([y])), [x])
        x = torch.min(torch.max(x.detach() + alpha * torch.sign(g), x0 - eps), x0 + eps)
        x = x.clamp(0, 1)
    with torch.no_grad():
        return int(f(x).argmax()) != y


def eval_eps(s):
    if "/" in s:
        a, b = s.split("/")
        return float(a) / float(b)
    return float(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(T.SRCDIR, "assets", "demo-model.safetensors"))
    ap.add_argument("--data", default=os.path.join(T.SRCDIR, "assets", "demo", "stl10_binary"))
    ap.add_argument("--images", default="0:8")
    ap.add_argument("--attacks", default="apgd-ce,apgd-dlr,square,bim")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--eps", default="8/255")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import numpy as np
    import torch
    import attacksref as R
    torch.set_num_threads(args.threads)
    lo, hi = (int(v) for v in args.images.split(":"))
    if os.path.abspath(args.data) != os.path.abspath(os.path.join(T.SRCDIR, "assets", "demo",
                                                                  "stl10_binary")):
        raise SystemExit("the PyTorch side reads the demo data only; give the demo data "
                         "or extend demo_images")
    x, _ = R.demo_images(lo, hi)
    f = R.Model(args.model)
    with torch.no_grad():
        labels = [int(f(torch.from_numpy(x[i:i + 1]).double()).argmax()) for i in range(len(x))]
    rows = []
    for kind in args.attacks.split(","):
        a_rate, a_succ, a_dt = advex_rate(args, kind)
        t_rate, t_succ, t_dt = torch_rate(args, kind, f, np.asarray(x), labels)
        rows.append({"attack": kind, "images": len(x), "advex_images_per_s": a_rate,
                     "advex_succeeded": a_succ, "torch_images_per_s": t_rate,
                     "torch_succeeded": t_succ, "ratio": a_rate / t_rate})
    if args.json:
        print(json.dumps(rows))
        return
    print("%-10s %7s %14s %14s %8s   succeeded advex/torch" %
          ("attack", "images", "advex img/s", "torch img/s", "ratio"))
    for r in rows:
        print("%-10s %7d %14.3g %14.3g %8.3g   %d/%d" %
              (r["attack"], r["images"], r["advex_images_per_s"], r["torch_images_per_s"],
               r["ratio"], r["advex_succeeded"], r["torch_succeeded"]))


if __name__ == "__main__":
    main()
