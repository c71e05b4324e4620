#!/bin/sh
# test_demo.sh - the bundled demo end to end, as a user meets it: the demo
# model's accuracy and confidence on the generated demo set, the story
# (probability cross-entropy: loss 16.118 and an all-zero gradient; logits:
# a healthy gradient), the attack success rate, training, fine-tuning,
# resuming, and the attack command's bad-input errors.
# Environment (set by make check): ADVEX, ADVEX_SRCDIR, PYTHON.
ADVEX=${ADVEX:-./advex}
PYTHON=${PYTHON:-/usr/bin/python3}
SRC=${ADVEX_SRCDIR:-.}
MODEL="$SRC/assets/demo-model.safetensors"
DATA=assets/demo/stl10_binary
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0
fails=0
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
json() { "$PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

[ -f "$DATA/test_X.bin" ] || { echo "1..0 # SKIP demo data not built"; exit 0; }

# -- the demo model on the demo set ------------------------------------------
"$ADVEX" eval --data "$DATA" --model "$MODEL" --json >"$T/eval.json" 2>"$T/err"
ok $? "advex eval --json on the demo test split runs"
acc=$(json "$T/eval.json" 'd["accuracy"]')
conf=$(json "$T/eval.json" 'd["min_prob_below_1e-7"]')
"$PYTHON" -c "import sys; sys.exit(not float(sys.argv[1]) >= 0.95)" "$acc"
ok $? "demo model test accuracy $acc >= 0.95"
"$PYTHON" -c "import sys; sys.exit(not float(sys.argv[1]) > 0.5)" "$conf"
ok $? "confident like a fine-tuned model: on $conf of test images some class has p < 1e-7 (want most)"
json "$T/eval.json" 'all(k in d for k in ("accuracy","correct","total","per_class","confusion")) and d["total"] == 1000 and sum(map(sum, d["confusion"])) == 1000 and len(d["per_class"]) == 10' | grep -q True
ok $? "eval JSON: accuracy, correct, total, per_class, confusion (10x10 summing to 1000)"

# -- the story on the demo ----------------------------------------------------
# As in the story: the first test image with a class just below the clip
# (the most likely of the classes whose probability is under 1e-7).
"$PYTHON" - "$ADVEX" "$DATA" "$MODEL" >"$T/pick" <<'PY'
import json, subprocess, sys
advex, data, model = sys.argv[1:4]
for i in range(50):
    r = subprocess.run([advex, "diagnose", "--data", data, "--model", model, "--image", str(i),
                        "--target", "0", "--json"], capture_output=True, text=True)
    p = json.loads(r.stdout)["probs"]
    below = [c for c in range(len(p)) if 1e-12 < p[c] < 1e-7]
    if below:
        c = max(below, key=p.__getitem__)
        print(i, c, "%.3g" % p[c])
        break
PY
read img tgt p <"$T/pick"
"$ADVEX" diagnose --data "$DATA" --model "$MODEL" --image $img --target $tgt --loss prob-ce --json \
	--grad-out "$T/g.npy" >"$T/pce.json" 2>"$T/err"
ok $? "diagnose --loss prob-ce runs on demo image $img toward class $tgt, just below the clip (p = $p)"
json "$T/pce.json" 'abs(d["loss"] - 16.1181) < 1e-3 and d["zero_fraction"] == 1.0 and d["grad_linf"] == 0.0' | grep -q True
ok $? "prob-ce: loss $(json "$T/pce.json" 'round(d["loss"],4)') = -ln 1e-7 and every input gradient component exactly zero"
json "$T/pce.json" 'd["diagnosis"]' >"$T/why"
grep -q "is below the clip ε = 1e-07 of probability cross-entropy, so the loss is flat there (16.118 = −ln ε); use --loss ce" "$T/why"
ok $? "the diagnosis says why: $(cat "$T/why")"
"$ADVEX" diagnose --data "$DATA" --model "$MODEL" --image $img --target $tgt --loss ce --json >"$T/ce.json" 2>/dev/null
json "$T/ce.json" 'd["loss"] > 16.12 and d["zero_fraction"] < 0.01 and d["grad_l2"] > 0 and d["diagnosis"] is None' | grep -q True
ok $? "ce on the logits: loss $(json "$T/ce.json" 'round(d["loss"],3)') > 16.118, a healthy gradient (L2 $(json "$T/ce.json" '"%.3g" % d["grad_l2"]')), no diagnosis"
"$ADVEX" diagnose --data "$DATA" --model "$MODEL" --image $img --target $tgt --loss prob-ce >"$T/text" 2>/dev/null &&
	grep -q "^diagnosis    p(" "$T/text" && grep -q "exactly zero" "$T/text"
ok $? "diagnose's text output shows the histogram's zero count and the diagnosis line"

# attack: prob-ce does nothing, ce reaches the target
"$ADVEX" attack --data "$DATA" --model "$MODEL" --image $img --target $tgt --attack ifgsm \
	--eps 8/255 --iters 20 --loss prob-ce --json --no-log >"$T/a1.jsonl" 2>/dev/null ||
"$ADVEX" attack --data "$DATA" --model "$MODEL" --image $img --target $tgt --attack ifgsm \
	--eps 8/255 --iters 20 --loss prob-ce --json >"$T/a1.jsonl" 2>/dev/null
tail -1 "$T/a1.jsonl" >"$T/a1.json"
json "$T/a1.json" 'd["pert_linf"] == 0 and not d["success"]' | grep -q True
ok $? "I-FGSM with prob-ce: the image never moves (perturbation Linf 0), no success"
"$ADVEX" attack --data "$DATA" --model "$MODEL" --image $img --target $tgt --attack ifgsm \
	--eps 8/255 --iters 20 --loss ce --json --out "$T/adv.png" --no-log >"$T/a2.jsonl" 2>/dev/null ||
"$ADVEX" attack --data "$DATA" --model "$MODEL" --image $img --target $tgt --attack ifgsm \
	--eps 8/255 --iters 20 --loss ce --json --out "$T/adv.png" >"$T/a2.jsonl" 2>/dev/null
tail -1 "$T/a2.jsonl" >"$T/a2.json"
json "$T/a2.json" 'd["success"] and d["pred"] == '$tgt' and d["pert_linf"] <= 8/255 + 1e-6' | grep -q True
ok $? "the same attack with ce reaches class $tgt within eps (p = $(json "$T/a2.json" '"%.3g" % d["target_prob"]'))"
json "$T/a2.json" '(d["target_prob"] < 1 - 1e-6) or "the loss is saturated at the model output" in (d["diagnosis"] or "")' | grep -q True
ok $? "once p(target) is 1 the diagnosis names saturation, not a layer: $(json "$T/a2.json" 'd["diagnosis"]')"
"$ADVEX" diagnose --model "$MODEL" --image "$T/adv.png" --target $tgt --json >"$T/adv.json" 2>/dev/null
json "$T/adv.json" 'd["pred"] == '$tgt | grep -q True
ok $? "the exported 8-bit adversarial PNG is still classified as class $tgt"

# success rate: targeted I-FGSM, ce, 8/255, 20 iterations, a seeded random
# target other than the true label for each of the first 200 test images
"$PYTHON" - "$ADVEX" "$DATA" "$MODEL" >"$T/rate" <<'PY'
import json, random, subprocess, sys
advex, data, model = sys.argv[1:4]
labels = open(data + "/test_y.bin", "rb").read()
rng = random.Random(1)
ok = tot = 0
for i in range(200):
    y = labels[i] - 1
    t = rng.choice([c for c in range(10) if c != y])
    args = [advex, "attack", "--data", data, "--model", model, "--image", str(i),
            "--target", str(t), "--attack", "ifgsm", "--eps", "8/255", "--iters", "20",
            "--loss", "ce", "--json", "--threads", "2"]
    r = subprocess.run(args + ["--no-log"], capture_output=True, text=True)
    if r.returncode == 2:
        r = subprocess.run(args, capture_output=True, text=True)
    s = json.loads(r.stdout.strip().splitlines()[-1])
    ok += bool(s["success"]); tot += 1
print(ok, tot)
PY
set -- $(cat "$T/rate")
[ "$2" = 200 ] && [ $(( $1 * 100 )) -ge $(( 90 * $2 )) ]
ok $? "targeted I-FGSM (ce, 8/255, 20 iterations, seeded random targets) succeeds on $1 of $2 demo test images (want >= 90%)"

# no --model and no --data: the bundled demo, and an index names a demo image
"$ADVEX" attack --image 5 --target 1 --attack ifgsm --iters 2 --no-log --out "$T/d.png" >"$T/out" 2>"$T/err"
s=$?
[ $s -eq 0 ] && [ -s "$T/d.png" ] && grep -q "bundled demo model" "$T/err" && grep -q "bundled demo data" "$T/err"
ok $? "without --model/--data advex says it uses the bundled demo, --image 5 is a demo image, --out writes the PNG (exit $s)"

# -- training -------------------------------------------------------------------
TRAIN="--arch vgg-compact --limit 1000 --optim adam --lr 0.003 --schedule const --warmup 0 --batch 16 --threads 1 --quiet"
"$ADVEX" train --data "$DATA" $TRAIN --epochs 4 --out "$T/t3.safetensors" >"$T/train3" 2>&1
ok $? "advex train: 4 epochs of vgg-compact from random weights on 1000 demo images"
"$PYTHON" - "$T/train3" <<'PY'
import re, sys
ep = [tuple(map(float, m)) for m in re.findall(r"loss ([\d.]+) .*test acc ([\d.]+)%", open(sys.argv[1]).read())]
assert len(ep) == 4, ep
assert ep[3][0] < ep[0][0] - 0.1, ep    # the loss goes down
assert ep[3][1] >= 25.0, ep             # chance is 10% (1000 balanced test images:
                                        # sd 1%); a broken gradient stays there
print("# epochs (loss, test acc %):", ep)
PY
ok $? "training reduces the loss and reaches a test accuracy a broken gradient could not: $(grep '^epoch 1/' "$T/train3" | cut -c1-60) ... $(grep '^epoch 4/' "$T/train3")"
[ -f "$T/t3.safetensors" ] && [ -f "$T/t3.safetensors.state" ] && ! ls "$T" | grep -q tmp
ok $? "a checkpoint (model + .state) is written, no temporary files left"
SHORT="--arch vgg-compact --limit 200 --threads 1 --quiet --epochs 3"
"$ADVEX" train --data "$DATA" $SHORT --out "$T/s.safetensors" >/dev/null 2>&1 &&
"$ADVEX" train --data "$DATA" $SHORT --stop-after 2 --out "$T/r.safetensors" >/dev/null 2>&1 &&
"$PYTHON" -c 'import json,struct,sys; b=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",b[:8])[0]; sys.exit(json.loads(b[8:8+n])["__metadata__"]["advex.train.epoch"] != "2")' "$T/r.safetensors" &&
"$ADVEX" train --data "$DATA" $SHORT --resume --out "$T/r.safetensors" >"$T/resume" 2>&1 &&
cmp -s "$T/r.safetensors" "$T/s.safetensors"
ok $? "training stopped after epoch 2 of 3 (--stop-after) and continued with --resume gives the same model, byte for byte, as 3 epochs straight"
"$ADVEX" train --data "$DATA" --init "$MODEL" --freeze 12 --epochs 1 --limit 200 \
	--out "$T/ft.safetensors" --quiet >/dev/null 2>&1
"$PYTHON" - "$MODEL" "$T/ft.safetensors" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert set(a) == set(b)
assert all(a[k] == b[k] for k in a if k.startswith("features.")), "frozen layers changed"
assert a["classifier.0.weight"] != b["classifier.0.weight"], "the head did not train"
PY
ok $? "--init MODEL --freeze 12: the conv layers are unchanged, the dense head trained"

# -- bad input --------------------------------------------------------------------
bad() { # bad DESCRIPTION PATTERN ARGS...
	d=$1 pat=$2
	shift 2
	"$ADVEX" attack --data "$DATA" --model "$MODEL" --no-log "$@" >"$T/out" 2>&1
	s=$?
	[ $s -ne 0 ] && grep -q -- "$pat" "$T/out" && [ "$(wc -l <"$T/out")" -le 2 ]
	ok $? "$d: exit $s, $(head -1 "$T/out")"
}
bad "an unknown class name" "unknown class 'zebra'" --image 0 --target zebra
bad "eps <= 0" "eps" --image 0 --target 1 --eps 0
bad "eps > 1" "eps" --image 0 --target 1 --eps 1.5
bad "alpha > eps" "alpha" --image 0 --target 1 --eps 4/255 --alpha 8/255
bad "iterations 0" "iter" --image 0 --target 1 --iters 0 --attack ifgsm
bad "an image index out of range" "out of range" --image 5000 --target 1
"$PYTHON" -c 'import struct,zlib,sys
w=h=32; raw=b"".join(b"\0"+bytes(96) for _ in range(h))
c=lambda t,d: struct.pack(">I",len(d))+t+d+struct.pack(">I",zlib.crc32(t+d)&0xffffffff)
open(sys.argv[1],"wb").write(b"\x89PNG\r\n\x1a\n"+c(b"IHDR",struct.pack(">IIBBBBB",w,h,8,2,0,0,0))+c(b"IDAT",zlib.compress(raw))+c(b"IEND",b""))' "$T/small.png"
bad "a PNG of the wrong size" "small.png: image is 32x32 but the model takes 96x96" --image "$T/small.png" --target 1

echo "1..$n"
[ $fails -eq 0 ]
