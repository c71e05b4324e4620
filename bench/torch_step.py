#!/usr/bin/python3
"""torch_step.py - time one VGG16@96 (or ResNet-18@96) attack step in
PyTorch, for bench/compare.sh to set beside `advex bench`.

A step is what advex times: forward (with the ImageNet normalization as the
first stage) + cross-entropy on the logits toward class 0 + backward to the
input pixels, batch 1, model.eval(), parameters requires_grad_(False). The
forward is timed separately under torch.no_grad(). Both after warm-up runs.

With --batch B it also times a batch sweep, as `advex bench --batch B`
does: attack steps of B images (each its own image and target) per
forward + backward - cross-entropy summed over the images (each image's
gradient is its own loss's), then the targeted I-FGSM update, the
projection onto the 8/255 ball and the [0,1] clip - and reports images per
second (image steps) and ms per image.

  torch_step.py [--threads T] [--steps N] [--warmup W] [--head classic|small]
                [--model vgg16|resnet18] [--batch B] [--json]

--model resnet18: torchvision's resnet18(num_classes=10) in eval mode, its
batch norms as PyTorch runs them (advex runs the same network with them
folded into the convolutions, as it does for an imported ResNet).

--json prints {"threads": T, "step_ms": {"median", "min", "max"},
"forward_ms": {...}, "head": ..., "torch": version}, the shape of
`advex bench --json`, plus "sweep": {"batch", "images_per_s",
"ms_per_image", "step_ms": {...}} with --batch.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
import torchref as T  # noqa: E402


def stats(ms):
    return {"median": round(statistics.median(ms), 4),
            "min": round(min(ms), 4), "max": round(max(ms), 4)}


def sweep_step(torch, model, mean, std, batch, seed, eps=8 / 255, alpha=2 / 255):
    """One batched targeted I-FGSM step on `batch` images, as a closure
    that keeps x_adv from call to call, like a sweep in flight."""
    x0 = torch.cat([T.pixels(T.test_image(96, 96, seed=seed + i)) for i in range(batch)])
    target = torch.arange(batch) % 10
    state = {"x": x0.clone()}

    def step():
        x = state["x"].requires_grad_(True)
        logits = model((x - mean) / std)
        # summed, so each image's gradient is that of its own loss
        loss = torch.nn.functional.cross_entropy(logits, target, reduction="sum")
        (g,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            x = x - alpha * g.sign()
            x = torch.min(torch.max(x, x0 - eps), x0 + eps).clamp_(0, 1)
        state["x"] = x.detach()

    return step


def main():
    ap = argparse.ArgumentParser(
        description="Time one VGG16@96 attack step (forward + cross-entropy + "
                    "backward to the input) and one forward in PyTorch.")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads(T) (default: PyTorch's default)")
    ap.add_argument("--steps", type=int, default=20, help="timed runs of each (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    ap.add_argument("--head", choices=("classic", "small"), default="classic",
                    help="classic: 4608-4096-4096-10, small: 4608-10 (default classic)")
    ap.add_argument("--model", choices=("vgg16", "resnet18"), default="vgg16",
                    help="the network (default vgg16; --head applies to it)")
    ap.add_argument("--seed", type=int, default=1, help="weight and image seed (default 1)")
    ap.add_argument("--batch", type=int, default=0,
                    help="also time attack steps of B images per forward + backward")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or (args.threads is not None and args.threads < 1):
        ap.error("--steps and --threads must be positive, --warmup non-negative")
    if args.batch < 0:
        ap.error("--batch must be positive")
    if T.torch is None:
        print("torch_step.py: error: torch is not available to %s" % sys.executable,
              file=sys.stderr)
        return 1
    torch = T.torch
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    if args.model == "resnet18":
        import torchvision
        torch.manual_seed(args.seed)
        model = torchvision.models.resnet18(num_classes=10)
    else:
        model = T.build_vgg16(head=args.head, seed=args.seed)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    img = T.test_image(96, 96, seed=args.seed)
    x = T.pixels(img).requires_grad_(True)
    target = torch.tensor([0])
    mean = torch.tensor(T.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(T.IMAGENET_STD).view(1, 3, 1, 1)

    def step():
        logits = model((x - mean) / std)
        loss = torch.nn.functional.cross_entropy(logits, target)
        (g,) = torch.autograd.grad(loss, x)
        return g

    def forward():
        with torch.no_grad():
            return model((x - mean) / std)

    def timed(fn):
        for _ in range(args.warmup):
            fn()
        ms = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t0) * 1e3)
        return ms

    step_ms = timed(step)
    fwd_ms = timed(forward)
    out = {"threads": threads, "step_ms": stats(step_ms), "forward_ms": stats(fwd_ms),
           "head": args.head, "model": args.model, "steps": args.steps,
           "torch": torch.__version__}
    if args.batch:
        sweep_ms = timed(sweep_step(torch, model, mean, std, args.batch, args.seed))
        med = statistics.median(sweep_ms)
        out["sweep"] = {"batch": args.batch, "images_per_s": round(1e3 * args.batch / med, 3),
                        "ms_per_image": round(med / args.batch, 4),
                        "step_ms": stats(sweep_ms)}
    if args.json:
        print(json.dumps(out))
    else:
        s, f = out["step_ms"], out["forward_ms"]
        print("PyTorch %s %s@96 (%s head), %d thread%s, %d runs after %d warm-up:"
              % (torch.__version__, args.model, args.head, threads,
                 "" if threads == 1 else "s",
                 args.steps, args.warmup))
        print("  step     median %9.2f ms  min %9.2f  max %9.2f"
              % (s["median"], s["min"], s["max"]))
        print("  forward  median %9.2f ms  min %9.2f  max %9.2f"
              % (f["median"], f["min"], f["max"]))
        if args.batch:
            w = out["sweep"]
            print("  sweep    batch %d: %.2f ms per batched step, %.2f ms per image, "
                  "%.1f images/s" % (w["batch"], w["step_ms"]["median"],
                                     w["ms_per_image"], w["images_per_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
