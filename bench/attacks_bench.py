#!/usr/bin/python3
"""bench/attacks_bench.py - images per second of each attack, advex against
the same algorithm in PyTorch (bench/attacks_torch.py), in one run, at
each batch size of --batch.

advex runs its batch sweep (`advex attack --data D --images A:B --attack K
--batch B --threads T --no-log --quiet --json`), timed as the process's
wall time: process start, model loading and the clean pass included.
PyTorch runs bench/attacks_torch.py on the same model file: float32,
B images per forward and backward, torch.set_num_threads(T), the same
algorithm and schedule as advex's (see that file for where they differ),
timed from the clean pass to the last image (model loading excluded, after
one untimed warm-up step). Both divide the images of A:B by their time.
Both attack the data's labels (an image the model already misclassifies
counts as a success); the success counts are a sanity check, not a
comparison: the random draws (PGD's and APGD's starts, Square's windows)
differ.

usage: bench/attacks_bench.py [--model FILE] [--data DIR] [--images A:B]
           [--attacks bim,pgd,apgd-ce,apgd-dlr,square,cw,deepfool]
           [--iters N] [--queries Q] [--binary-steps S] [--eps E]
           [--threads T] [--batch B1,B2,...] [--seed S] [--json]
Defaults: the bundled demo model and data, images 0:8, every attack, 20
iterations (cw: Adam steps per binary step; deepfool: the maximum), 300
queries (square), 9 binary steps (cw), eps 8/255, 1 thread, batches 1,8.
Linf for every attack but cw (L2).

VGG16 (what README's "## Speed" shows):
  /usr/bin/python3 -c "import sys; sys.path.insert(0,'tests'); import torchref as T; \\
      m=T.build_vgg16('classic',0,10); T.import_model(m,'/tmp/vgg16.safetensors')"
  bench/attacks_bench.py --model /tmp/vgg16.safetensors --images 0:16 \\
      --iters 5 --queries 50 --batch 1,8 --threads 2
Run it on an idle machine (the 1-minute load is printed before and after):
under load the figures mean nothing.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

import torchref as T  # noqa: E402


def advex_rate(args, kind, batch):
    cmd = [T.advex_binary() or "./advex", "attack", "--model", args.model, "--data",
           args.data, "--images", args.images, "--eps", args.eps, "--attack", kind,
           "--no-log", "--quiet", "--json", "--threads", str(args.threads),
           "--batch", str(batch), "--seed", str(args.seed)]
    if kind == "square":
        cmd += ["--queries", str(args.queries)]
    else:
        cmd += ["--iters", str(args.iters)]
    if kind == "cw":
        cmd += ["--binary-steps", str(args.binary_steps)]
    if kind == "deepfool":
        cmd += ["--norm", "linf"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    dt = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit("advex failed: %s\n%s" % (" ".join(cmd), r.stderr.strip()))
    out = json.loads(r.stdout.splitlines()[-1])
    return out["attempted"] / dt, out["succeeded"], dt


def torch_rate(args, kind, batch, f, x, y, eps):
    import attacks_torch as A
    t0 = time.perf_counter()
    ok = A.run(kind, f, x, y, batch, eps, args.iters, args.queries, args.seed,
               binary_steps=args.binary_steps)
    dt = time.perf_counter() - t0
    return len(x) / dt, ok, dt


def eval_eps(s):
    if "/" in s:
        a, b = s.split("/")
        return float(a) / float(b)
    return float(s)


def load1():
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(T.SRCDIR, "assets", "demo-model.safetensors"))
    ap.add_argument("--data", default=os.path.join(T.SRCDIR, "assets", "demo", "stl10_binary"))
    ap.add_argument("--images", default="0:8")
    ap.add_argument("--attacks", default="bim,pgd,apgd-ce,apgd-dlr,square,cw,deepfool")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--binary-steps", type=int, default=9)
    ap.add_argument("--eps", default="8/255")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", default="1,8", help="batch sizes, a comma list")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch
    import attacks_torch as A
    kinds = args.attacks.split(",")
    for k in kinds:
        if k not in A.KINDS:
            ap.error("unknown attack %r (have %s)" % (k, ",".join(A.KINDS)))
    batches = [int(b) for b in args.batch.split(",")]
    if min(batches) < 1 or args.threads < 1:
        ap.error("--batch and --threads must be positive")
    torch.set_num_threads(args.threads)
    lo, hi = (int(v) for v in args.images.split(":"))
    t0 = time.perf_counter()
    f = A.Model(args.model)
    load_s = time.perf_counter() - t0
    side = f.mf.input[-1]
    x, y = A.stl10(args.data, lo, hi, side)
    eps = eval_eps(args.eps)
    # warm-up: PyTorch's first passes allocate and pick kernels
    for b in sorted(set(batches)):
        A.grad_of(f, x[:b], y[:b], A.ce)
    head = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_model(),
            "threads": args.threads, "torch": torch.__version__, "model": args.model,
            "images": args.images, "iters": args.iters, "queries": args.queries,
            "binary_steps": args.binary_steps, "eps": args.eps,
            "torch_model_load_s": round(load_s, 2), "load_before": load1()}
    if not args.json:
        print("%s, %s, PyTorch %s, %d thread%s, 1-min load %.2f" %
              (head["date"], head["cpu"], head["torch"], args.threads,
               "" if args.threads == 1 else "s", head["load_before"]))
        print("%s, images %s, eps %s, iters %d, queries %d, binary steps %d "
              "(PyTorch model load %.2f s, not timed)" %
              (os.path.basename(args.model), args.images, args.eps, args.iters, args.queries,
               args.binary_steps, load_s))
        print("%-9s %5s %6s %12s %12s %7s   %s" % ("attack", "batch", "images", "advex img/s",
                                                 "torch img/s", "ratio",
                                                 "succeeded advex/torch"))
    rows = []
    for kind in kinds:
        for b in batches:
            a_rate, a_succ, a_dt = advex_rate(args, kind, b)
            t_rate, t_succ, t_dt = torch_rate(args, kind, b, f, x, y, eps)
            r = {"attack": kind, "batch": b, "images": len(x),
                 "advex_images_per_s": a_rate, "advex_s": a_dt,
                 "advex_succeeded": a_succ, "torch_images_per_s": t_rate,
                 "torch_s": t_dt, "torch_succeeded": t_succ, "ratio": a_rate / t_rate}
            rows.append(r)
            if not args.json:
                print("%-9s %5d %6d %12.3g %12.3g %7.2f   %d/%d" %
                      (kind, b, len(x), a_rate, t_rate, r["ratio"], a_succ, t_succ),
                      flush=True)
    head["load_after"] = load1()
    if args.json:
        print(json.dumps({"run": head, "rows": rows}))
    else:
        print("1-min load after: %.2f; ratio = advex img/s / torch img/s (> 1: advex "
              "is faster)" % head["load_after"])


if __name__ == "__main__":
    main()
