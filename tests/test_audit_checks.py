#!/usr/bin/python3
"""test_audit_checks.py - `advex audit`: each check fires on a case built to
trigger it and stays quiet on a healthy one, the JSON and the run log
agree, and the exported PNG is read back.

The cases are models this test writes itself (advex safetensors, numpy
only), each tuned to one demo image so that what must happen is known in
exact arithmetic, not found by trying:

- softmax at the end of the demo model (check 1);
- prob-ce on the story's confident images: clipped, zero gradients (2),
  and Square, which needs no gradient, breaking them (6);
- a "band" model: class B wins only while u.x is within w of c; FGSM at
  three budgets lands below, inside and beyond the band (7), and an
  iterative attack with steps wider than the band crosses it (3);
- I-FGSM with steps far too small for its budget (4), and a saturated
  image whose loss gives no usable direction even at eps = 1 (5);
- a linear model whose clean margin is a tenth of what eps = 0.4/255
  moves: the attack succeeds, but a PNG rounds every pixel back to x0 (9);
- a linear model with a gain of 1e5: its loss changes by orders of
  magnitude under 8/255 noise (8); randomness (dropout left on) is
  tests/test_audit.c's, through the C API.
"""
import json
import os
import sqlite3
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchref as T  # noqa: E402

tap = T.Tap()
T.require_torch(tap)

import numpy as np  # noqa: E402

SRC = T.SRCDIR
DATA = T.demo_data_dir()
DEMO = os.environ.get("ADVEX_DEMO_MODEL") or os.path.join(SRC, "assets", "demo-model.safetensors")
N = 3 * 96 * 96


def demo_image(i):
    """Image i of the demo data as advex sees it: (3,96,96) floats; STL-10
    stores each channel column by column."""
    with open(os.path.join(DATA, "test_X.bin"), "rb") as f:
        f.seek(i * N)
        b = np.frombuffer(f.read(N), dtype=np.uint8)
    return b.reshape(3, 96, 96).transpose(0, 2, 1).astype(np.float64) / 255.0


def demo_label(i):
    with open(os.path.join(DATA, "test_y.bin"), "rb") as f:
        f.seek(i)
        return f.read(1)[0] - 1


def write_model(path, arch, tensors, n_classes=10, extra_meta=None):
    meta = {"advex.format": "1", "advex.arch": json.dumps(arch),
            "advex.input": "[3, 96, 96]", "advex.scale": "1",
            "advex.mean": "[0, 0, 0]", "advex.std": "[1, 1, 1]",
            "advex.channel_order": "RGB",
            "advex.classes": json.dumps(["c%d" % k for k in range(n_classes)])}
    meta.update(extra_meta or {})
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(np.shape(arr)),
                        "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def with_softmax(src, dst):
    """The demo model with a softmax node appended to its graph."""
    n, header, tensors = T.read_safetensors(src)
    arch = json.loads(header["__metadata__"]["advex.arch"])
    arch.append({"op": "softmax"})
    meta = dict(header["__metadata__"])
    meta["advex.arch"] = json.dumps(arch)
    meta.pop("advex.removed_softmax", None)
    with open(src, "rb") as f:
        data = f.read()
    body = data[8 + n:]
    header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + body)


def audit(args, db=None):
    cmd = [T.advex_binary(), "audit", "--data", DATA, "--json"]
    cmd += ["--db", db] if db else ["--no-log"]
    p = subprocess.run(cmd + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=900)
    try:
        return json.loads(p.stdout), p
    except ValueError:
        return None, p


def verdict(rep, key):
    return rep["checks"][key]["verdict"] if rep else "(no report)"


def detail(rep, key):
    return rep["checks"][key]["detail"] if rep else ""


def expect(rep, p, key, want, what):
    got = verdict(rep, key)
    tap.ok(got == want, "%s: %s is %s (%s)%s" % (
        what, key, got, detail(rep, key),
        "" if rep else " stderr: " + p.stderr.strip()[-300:]))


def linear_parts(x0, label, b_cls, u, bias_b):
    """dense(10) on the flattened image: z_label = 0, z_b = u.x + bias_b,
    the other classes -1000."""
    w = np.zeros((10, N))
    w[b_cls] = u
    b = np.full(10, -1000.0)
    b[label] = 0.0
    b[b_cls] = bias_b
    return [{"op": "flatten"}, {"op": "dense", "name": "d", "out": 10}], \
        {"d.weight": w, "d.bias": b}


def band_model(path, x0, label, b_cls, u, c, w):
    """z_b = w - |u.x - c| through two ReLU units; z_label = 0; the others
    -1000: class b wins exactly while |u.x - c| < w."""
    w1 = np.stack([u, -u])
    b1 = np.array([-c, c])
    w2 = np.zeros((10, 2))
    w2[b_cls] = [-1.0, -1.0]
    b2 = np.full(10, -1000.0)
    b2[label] = 0.0
    b2[b_cls] = w
    arch = [{"op": "flatten"}, {"op": "dense", "name": "d1", "out": 2},
            {"op": "relu"}, {"op": "dense", "name": "d2", "out": 10}]
    write_model(path, arch, {"d1.weight": w1, "d1.bias": b1,
                             "d2.weight": w2, "d2.bias": b2})


def h_after_fgsm(x0, u, eps):
    """u.x after one FGSM step of eps along sign(u), clipped to [0,1]: the
    step a CE ascent toward class b takes (its gradient is a positive
    multiple of u below the band)."""
    x = np.clip(x0.ravel() + eps * np.sign(u), 0.0, 1.0)
    # advex steps in float32: x0 + eps rounds once
    x = np.clip((x0.ravel().astype(np.float32) + np.float32(eps) * np.sign(u).astype(np.float32)),
                0.0, 1.0).astype(np.float64)
    return float(u @ x)


def main():
    if T.advex_binary() is None:
        tap.ok(False, "advex binary not found (set ADVEX)")
        tap.done()
    tmp = tempfile.mkdtemp(prefix="advex-audit.")
    rng = np.random.default_rng(7)
    img = 0
    x0, y0 = demo_image(img), demo_label(img)
    b_cls = (y0 + 1) % 10
    u = rng.choice([-1.0, 1.0], size=N) / N     # ||u||_1 = 1

    # -- healthy: the demo model, logits, ce --------------------------------
    healthy, p = audit(["--images", "0:6", "--attack", "bim", "--iters", "20"])
    tap.ok(healthy is not None and len(healthy["images"]) == 6,
           "audit of demo images 0..5 (bim, ce) gives a JSON report of 6 images%s"
           % ("" if healthy else ": " + p.stderr.strip()[-300:]))
    for key in ("probabilities", "unavailable_gradients", "silent_success",
                "export_survives", "non_monotone_budget"):
        expect(healthy, p, key, "pass", "healthy demo")
    expect(healthy, p, "unstable_predictions", "pass", "healthy demo")
    expect(healthy, p, "gradient_free", "skipped" if healthy and not any(
        i["square"] >= 0 for i in healthy["images"]) else "pass", "healthy demo")
    keys = list(healthy["checks"]) if healthy else []
    tap.ok(keys == ["probabilities", "unavailable_gradients", "silent_success",
                    "incomplete_optimisation", "unconstrained_failure", "gradient_free",
                    "non_monotone_budget", "unstable_predictions", "export_survives"],
           "nine checks in order: %s" % ", ".join(keys))

    # -- 1: probabilities ---------------------------------------------------
    soft = os.path.join(tmp, "softmax.safetensors")
    with_softmax(DEMO, soft)
    rep, p = audit(["--model", soft, "--images", "0:3", "--attack", "bim", "--iters", "5"])
    expect(rep, p, "probabilities", "fail", "demo model + softmax")
    tap.ok(rep is not None and abs(rep["images"][0]["row_sum"] - 1.0) < 1e-5,
           "its rows sum to 1 (%s)" % (rep["images"][0]["row_sum"] if rep else "-"))

    # -- 2: unavailable gradients (the story: prob-ce, clipped) ---------------
    rep, p = audit(["--images", "0:6", "--attack", "bim", "--iters", "5",
                    "--loss", "prob-ce", "--target", "0"])
    expect(rep, p, "unavailable_gradients", "fail", "prob-ce toward class 0")
    causes = sorted({i["cause"] for i in rep["images"] if i["grad_zero"]}) if rep else []
    tap.ok(causes == ["clip"], "the zero gradients are all from the clip: %s" % causes)

    # -- 6: gradient-free beats gradient-based (the story, untargeted) ---------
    # prob-ce on images the demo model is sure of: p(true) is clipped, the
    # gradient is zero and I-FGSM cannot move; Square reads only the outputs
    rep, p = audit(["--images", "6:8", "--attack", "bim", "--iters", "20", "--loss", "prob-ce",
                    "--queries", "10000", "--budgets", "8/255"])
    got = [(i["grad_zero"], i["success"], i["square"]) for i in rep["images"]] if rep else []
    expect(rep, p, "gradient_free", "fail", "prob-ce I-FGSM on images 6, 7 %s" % got)
    rep, p = audit(["--images", "6:8", "--attack", "bim", "--iters", "20", "--loss", "prob-ce",
                    "--queries", "50", "--budgets", "8/255"])
    expect(rep, p, "gradient_free", "pass", "control: Square with 50 queries")
    # the same under L2: Square L2 (Algorithm 3) at eps 10 breaks image 6
    # within 1000 queries, not within 50 (measured: 1/2 and 0/2)
    l2 = ["--images", "6:8", "--attack", "bim", "--iters", "20", "--loss", "prob-ce",
          "--norm", "l2", "--eps", "10", "--budgets", "10"]
    rep, p = audit(l2 + ["--queries", "1000"])
    got = [(i["grad_zero"], i["success"], i["square"]) for i in rep["images"]] if rep else []
    expect(rep, p, "gradient_free", "fail", "L2: prob-ce I-FGSM, Square L2 eps 10 %s" % got)
    rep, p = audit(l2 + ["--queries", "50"])
    expect(rep, p, "gradient_free", "pass", "control: Square L2 with 50 queries")

    # -- 4: incomplete (steps far too small) / levelled -----------------------
    rep, p = audit(["--images", "0:4", "--attack", "bim", "--iters", "12",
                    "--alpha", "0.02/255", "--budgets", "8/255"])
    expect(rep, p, "incomplete_optimisation", "warn", "bim with 1/100 of the usual step")
    rep2, p2 = audit(["--images", "2:3", "--attack", "bim", "--iters", "12",
                      "--budgets", "8/255"])
    expect(rep2, p2, "incomplete_optimisation", "pass",
           "control: the saturated image 2 with the usual step (loss flat)")

    # -- 5: unconstrained failure on the saturated image, and a control ------
    expect(rep2, p2, "unconstrained_failure", "fail",
           "image 2 (p = 1, ce saturated): even eps = 1 fails")
    rep, p = audit(["--images", "0:1", "--attack", "bim", "--iters", "10",
                    "--eps", "1/255", "--budgets", "1/255"])
    ok = rep is not None and not rep["images"][0]["success"]
    expect(rep, p, "unconstrained_failure", "pass",
           "control: image 0 fails at eps 1/255 (%s) but falls at eps 1" %
           ("failed" if ok else "did not fail"))

    # -- 7: non-monotone budget (band model, FGSM) ----------------------------
    h = [h_after_fgsm(x0, u, e / 255.0) for e in (2, 8, 32)]
    c, w = h[1], 0.4 * min(h[1] - h[0], h[2] - h[1])
    band = os.path.join(tmp, "band.safetensors")
    band_model(band, x0, y0, b_cls, u, c, w)
    rep, p = audit(["--model", band, "--images", "%d:%d" % (img, img + 1), "--attack", "fgsm",
                    "--eps", "8/255", "--budgets", "2/255,8/255,32/255"])
    got = rep["images"][0]["budget"] if rep else None
    tap.ok(got == [0, 1, 0], "band model: FGSM succeeds at 8/255 only (%s; u.x %.4g, %.4g, "
           "%.4g; band %.4g +- %.4g)" % (got, h[0], h[1], h[2], c, w))
    expect(rep, p, "non_monotone_budget", "fail", "band model, FGSM at 2, 8, 32/255")
    rep, p = audit(["--model", band, "--images", "%d:%d" % (img, img + 1), "--attack", "fgsm",
                    "--eps", "1/255", "--budgets", "1/255,2/255"])
    expect(rep, p, "non_monotone_budget", "pass", "control: band model, FGSM at 1 and 2/255")

    # -- 3: silent success: steps wider than the band cross it ---------------
    # I-FGSM from x0 with alpha = 8/255 up to eps 32/255: the first update
    # lands in the band (as FGSM at 8/255 did), the next ones leave it.
    rep, p = audit(["--model", band, "--images", "%d:%d" % (img, img + 1), "--attack", "bim",
                    "--eps", "32/255", "--alpha", "8/255", "--iters", "4",
                    "--budgets", "32/255"])
    expect(rep, p, "silent_success", "fail", "band model, I-FGSM steps of 8/255")
    rep, p = audit(["--model", band, "--images", "%d:%d" % (img, img + 1), "--attack", "bim",
                    "--eps", "32/255", "--alpha", "8/255", "--iters", "4",
                    "--budgets", "32/255", "--early-stop"])
    expect(rep, p, "silent_success", "pass", "control: the same with --early-stop")

    # -- 9: export: a margin a PNG rounds away ---------------------------------
    eps = 0.4 / 255
    move = eps * np.abs(u).sum()             # what an Linf step of eps moves u.x
    lin = os.path.join(tmp, "thin.safetensors")
    arch, tens = linear_parts(x0, y0, b_cls, u, -float(u @ x0.ravel()) - 0.1 * move)
    write_model(lin, arch, tens)
    rep, p = audit(["--model", lin, "--images", "%d:%d" % (img, img + 1), "--attack", "fgsm",
                    "--eps", "0.4/255", "--budgets", "0.4/255"])
    tap.ok(rep is not None and rep["images"][0]["success"],
           "thin-margin model: FGSM at 0.4/255 succeeds (margin %.3g of %.3g)" % (0.1 * move, move))
    expect(rep, p, "export_survives", "warn", "thin-margin model: the 8-bit PNG rounds back to x0")
    rep, p = audit(["--model", lin, "--images", "%d:%d" % (img, img + 1), "--attack", "fgsm",
                    "--eps", "8/255", "--budgets", "8/255"])
    expect(rep, p, "export_survives", "pass", "control: the same model at 8/255 (on the grid)")

    # -- 8: unstable: a gain of 1e5 --------------------------------------------
    # 8/255 uniform noise moves u.x by about 1e-4, the logit by about 10: the
    # loss (5e-3 at x0, where a tiny budget leaves the attack) changes by
    # orders of magnitude.
    sharp = os.path.join(tmp, "sharp.safetensors")
    arch, tens = linear_parts(x0, y0, b_cls, 1e5 * u, -1e5 * float(u @ x0.ravel()) - 5.0)
    write_model(sharp, arch, tens)
    rep, p = audit(["--model", sharp, "--images", "%d:%d" % (img, img + 1), "--attack", "bim",
                    "--eps", "0.001/255", "--iters", "2", "--budgets", "0.001/255"])
    expect(rep, p, "unstable_predictions", "warn", "gain 1e5 under 8/255 noise")
    tap.ok(rep is not None and not rep["images"][0]["random"],
           "its forwards agree: the warning is the noise, not randomness")

    # -- the run log ------------------------------------------------------------
    db = os.path.join(tmp, "runs.db")
    rep, p = audit(["--images", "0:3", "--attack", "bim", "--iters", "5"], db=db)
    con = sqlite3.connect(db)
    row = con.execute("SELECT id, n_images, n_pass, n_warn, n_fail, checks FROM audits").fetchall()
    runs = con.execute("SELECT a.image_index, a.run_id, r.image_ref, r.status FROM audit_images a "
                       "JOIN runs r ON r.id = a.run_id ORDER BY a.image_index").fetchall()
    def same_checks(a, b):
        return list(a) == list(b) and all(
            a[k]["verdict"] == b[k]["verdict"] and a[k]["sentence"] == b[k]["sentence"] and
            a[k]["detail"] == b[k]["detail"] and abs(a[k]["figure"] - b[k]["figure"]) < 1e-6
            for k in a)

    tap.ok(rep is not None and len(row) == 1 and row[0][0] == rep["audit_id"] and
           row[0][1] == 3 and same_checks(json.loads(row[0][5]), rep["checks"]),
           "the audit is stored: one row, 3 images, the same checks as printed (%s)" %
           (str(row[0][:5]) if row else "none",))
    tap.ok([r[1] for r in runs] == [i["run_id"] for i in rep["images"]] and
           all(r[3] == "done" for r in runs) and len(runs) == 3,
           "each image's attack is a finished run linked from audit_images: %s" % runs)
    summ = rep["summary"] if rep else {}
    tap.ok(row and (row[0][2], row[0][3], row[0][4]) ==
           (summ.get("pass"), summ.get("warn"), summ.get("fail")),
           "verdict counts stored = printed (%s)" % summ)

    # -- exports read back --------------------------------------------------------
    out = os.path.join(tmp, "thin.png")
    q = subprocess.run([T.advex_binary(), "attack", "--model", lin, "--data", DATA, "--image",
                        str(img), "--attack", "fgsm", "--eps", "0.4/255", "--db", db,
                        "--out", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    ex = con.execute("SELECT success, path FROM exports").fetchall()
    tap.ok(q.returncode == 0 and "NOT adversarial at 8 bits" in q.stdout and
           ex == [(0, out)],
           "attack --out on the thin-margin model: the PNG read back is not adversarial, "
           "said and logged (%s)" % ex)
    # -- --shard: the images split, each image audited as without it --------------
    whole, p = audit(["--images", "0:5", "--attack", "bim", "--iters", "5"])
    parts = [audit(["--images", "0:5", "--attack", "bim", "--iters", "5", "--shard", "%d/2" % k],
                   db=os.path.join(tmp, "shard-%i.db"))[0] for k in (0, 1)]
    keys_i = ("index", "success", "grad_zero", "unconstrained", "budget", "export_ok")
    got = [tuple(i[k] for k in keys_i) for r in parts if r for i in r["images"]]
    want = [tuple(i[k] for k in keys_i) for i in whole["images"]] if whole else None
    tap.ok(got == want and all(r and r["images"] for r in parts),
           "--shard 0/2 and 1/2 audit images %s and %s, each as the unsharded audit does" %
           tuple([i["index"] for i in r["images"]] if r else None for r in parts))
    tap.ok(os.path.exists(os.path.join(tmp, "shard-0.db")) and
           os.path.exists(os.path.join(tmp, "shard-1.db")),
           "--db shard-%i.db: one log per shard")

    # -- stored audits, usage errors ---------------------------------------------
    def run(args):
        return subprocess.run([T.advex_binary()] + args, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True)
    q = run(["audit", "--show", "latest", "--db", db, "--json"])
    shown = json.loads(q.stdout) if q.returncode == 0 else None
    tap.ok(shown is not None and shown["id"] == rep["audit_id"] and
           [i["run_id"] for i in shown["images"]] == [i["run_id"] for i in rep["images"]],
           "audit --show latest --json gives the stored audit with its run ids")
    q = run(["audit", "--list", "--db", db])
    tap.ok(q.returncode == 0 and len(q.stdout.strip().splitlines()) == 1,
           "audit --list: one line per audit (%s)" % q.stdout.strip())
    q = run(["audit", "--data", DATA, "--no-log"])
    tap.ok(q.returncode == 2 and "give --images A:B" in q.stderr,
           "no --images: usage error, exit 2 (%s)" % q.stderr.strip().replace("\n", " / "))
    q = run(["audit", "--show", "99", "--db", db])
    tap.ok(q.returncode == 1 and "AUDIT 99" in q.stderr, "an unknown audit id: exit 1 (%s)" %
           q.stderr.strip().replace("\n", " / "))
    q = run(["audit", "--images", "0:2", "--budgets", "8/255,2/255", "--data", DATA, "--no-log"])
    tap.ok(q.returncode == 2 and "ascend" in q.stderr, "descending --budgets: exit 2 (%s)" %
           q.stderr.strip().replace("\n", " / "))
    con.close()
    tap.done()


main()
