#!/bin/sh
# test_story.sh - the story's own model end to end, on a small local
# stand-in for torchvision's vgg16-397923af.pth (which cannot be downloaded
# here): a torchvision VGG "A"-layout state_dict with few channels and an
# ImageNet-shaped head (C*7*7 -> 64 -> 64 -> 1000, built for the adaptive
# pool at 224x224), random weights, saved with torch.save. It is imported
# with --new-head 10 and fine-tuned with --freeze body on gen-demo's STL-10
# layout data, with and without the feature cache: the cache runs the body
# with the kernels of an uncached step, so it must give the same model byte
# for byte, leave the body bit-identical, and its epochs are timed (a
# diagnostic, not a check). TAP; exit 1 on a failure.
set -u

: "${ADVEX:?}" "${ADVEX_IMPORT:?}" "${GEN_DEMO:?}"
PYTHON=${PYTHON:-python3}
T=$(mktemp -d "${TMPDIR:-/tmp}/advex-test-story.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

n=0
failed=0
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=1
	fi
}
diag() {
	sed 's/^/# /' "$@"
}

if ! "$PYTHON" -c 'import torch, torchvision' 2>/dev/null; then
	echo "1..0 # SKIP torch/torchvision not importable by $PYTHON"
	exit 0
fi

# ---- the stand-in: VGG "A" layout, 8..32 channels, ImageNet-shaped head ----
"$PYTHON" - "$T/vgg-a.pth" <<'EOF'
import sys, torch
from torch import nn
from torchvision.models.vgg import make_layers
torch.manual_seed(7)
features = make_layers([8, "M", 16, "M", 16, 16, "M", 32, 32, "M", 32, 32, "M"])
classifier = nn.Sequential(nn.Linear(32 * 7 * 7, 64), nn.ReLU(True), nn.Dropout(),
                           nn.Linear(64, 64), nn.ReLU(True), nn.Dropout(),
                           nn.Linear(64, 1000))
sd = {"features." + k: v for k, v in features.state_dict().items()}
sd.update({"classifier." + k: v for k, v in classifier.state_dict().items()})
torch.save(sd, sys.argv[1])
EOF
ok $? "a torchvision VGG-layout state_dict with an ImageNet-shaped head (torch.save)"

MEAN="--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225"
# shellcheck disable=SC2086
"$ADVEX_IMPORT" "$T/vgg-a.pth" --input 3,96,96 $MEAN --out "$T/plain.safetensors" \
	>"$T/imp0" 2>&1
rc=$?
grep -q "AdaptiveAvgPool2d" "$T/imp0" && grep -q -- "--new-head" "$T/imp0" &&
	[ ! -e "$T/plain.safetensors" ] && [ $rc -eq 1 ]
ok $? "without --new-head the 1568-input head is refused at 96x96, naming the adaptive pool and --new-head (exit $rc)"
[ $rc -eq 1 ] || diag "$T/imp0"

# shellcheck disable=SC2086
"$ADVEX_IMPORT" "$T/vgg-a.pth" --new-head 10 --input 3,96,96 $MEAN \
	--out "$T/m.safetensors" >"$T/imp1" 2>&1
rc=$?
diag "$T/imp1"
[ $rc -eq 0 ] && grep -q "dropping the model's classifier.*1000 classes" "$T/imp1" &&
	grep -q "new classic head 288->4096->4096->10" "$T/imp1"
ok $? "--new-head 10 keeps the body, drops the ImageNet head (said on stderr), adds 288->4096->4096->10"

"$ADVEX" info --model "$T/m.safetensors" >"$T/info" 2>&1
ok $? "advex info reads the imported model"

# the new head: seeded, torchvision's N(0, 0.01) and zero biases; the body is
# the state_dict's own weights
"$PYTHON" - "$T/vgg-a.pth" "$T/m.safetensors" "$ADVEX_IMPORT" "$T" <<'EOF'
import json, struct, sys, subprocess
import numpy as np, torch
sd = torch.load(sys.argv[1])
def st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], np.float32).reshape(v["shape"])
    return out
m = st(sys.argv[2])
body = [k for k in sd if k.startswith("features.")]
assert all(np.array_equal(m[k], sd[k].numpy()) for k in body), "body differs"
assert sorted(k for k in m if k.startswith("classifier.")) == [
    "classifier.%d.%s" % (i, t) for i in (0, 3, 6) for t in ("bias", "weight")]
w = m["classifier.0.weight"]
assert w.shape == (4096, 288) and abs(w.std() - 0.01) < 5e-4 and abs(w.mean()) < 5e-4
assert not m["classifier.6.bias"].any()
# same seed, same head; another seed, another head
subprocess.run([sys.argv[3], sys.argv[1], "--new-head", "10", "--out",
                sys.argv[4] + "/m2.safetensors"], check=True, capture_output=True)
subprocess.run([sys.argv[3], sys.argv[1], "--new-head", "10", "--head-seed", "2",
                "--out", sys.argv[4] + "/m3.safetensors"], check=True, capture_output=True)
m2, m3 = st(sys.argv[4] + "/m2.safetensors"), st(sys.argv[4] + "/m3.safetensors")
assert np.array_equal(m2["classifier.6.weight"], m["classifier.6.weight"])
assert not np.array_equal(m3["classifier.6.weight"], m["classifier.6.weight"])
EOF
ok $? "body weights are the state_dict's; the head is N(0,0.01) with zero biases, the same for the same --head-seed and not for another"

"$ADVEX_IMPORT" "$T/vgg-a.pth" --new-head 10 --head small --out "$T/small.safetensors" \
	>"$T/imp2" 2>&1 && grep -q "new small head 288->10" "$T/imp2"
ok $? "--head small: one Linear 288->10"

# ---- data: gen-demo's STL-10 layout, 96x96, 10 classes ---------------------
"$GEN_DEMO" --out "$T/data" --train 128 --test 32 --seed 5 >/dev/null
ok $? "gen-demo wrote 128 training and 32 test images"

# train ARGS... > OUT: one epoch, no augmentation, a fixed seed
train() {
	out=$1
	shift
	"$ADVEX" train --init "$T/m.safetensors" --data "$T/data" --epochs 1 \
		--batch 16 --lr 0.01 --crop-pad 0 --no-flip --seed 3 --threads 2 \
		--quiet --out "$T/$out.safetensors" "$@" >"$T/$out.log" 2>&1
}

train cached --freeze body
rc=$?
diag "$T/cached.log"
[ $rc -eq 0 ] && grep -q "freeze body = --freeze 22" "$T/cached.log" &&
	grep -q "feature cache: nodes 0..21 run once per image (128 training and 32 test images, 288 values each" "$T/cached.log"
ok $? "--freeze body is node 22 (the first dense; 0..20 the body, 21 the flatten) and trains on cached features"

train uncached --freeze body --no-cache
rc=$?
diag "$T/uncached.log"
[ $rc -eq 0 ] && ! grep -q "feature cache" "$T/uncached.log"
ok $? "--no-cache trains the same way through the whole network"

train numeric --freeze 22 && grep -q "feature cache: nodes 0..21" "$T/numeric.log"
ok $? "numeric --freeze 22 still works and caches the same cut"

train reseeded --freeze body --seed 4

# compare the checkpoints: body bit-identical to the import, the head of the
# cached run equal to the uncached one, and (controls) different from the
# initial head and from a run with another seed
"$PYTHON" - "$T" <<'EOF'
import json, struct, sys
import numpy as np
T = sys.argv[1]
def st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                             np.float32).reshape(v["shape"])
            for k, v in h.items() if k != "__metadata__"}
init, c, u, num, other = (st("%s/%s.safetensors" % (T, x)) for x in
                          ("m", "cached", "uncached", "numeric", "reseeded"))
bad = 0
def check(cond, what):
    global bad
    print("# " + ("ok" if cond else "NOT OK") + ": " + what)
    bad |= not cond
body = [k for k in init if k.startswith("features.")]
head = [k for k in init if k.startswith("classifier.")]
check(len(body) == 16 and all(np.array_equal(init[k], x[k]) for k in body for x in (c, u)),
      "16 body tensors bit-identical after cached and uncached training")
rel = max(float(np.abs(c[k] - u[k]).max()) / max(float(np.abs(u[k] - init[k]).max()), 1e-30)
          for k in head)
moved = min(float(np.abs(u[k] - init[k]).max()) for k in head)
print("# largest cached-vs-uncached head difference, relative to the update: %.3g" % rel)
check(moved > 0, "the uncached run changed every head tensor (largest change %.3g or more)" % moved)
check(all(np.array_equal(c[k], u[k]) for k in head),
      "cached head = uncached head, bit for bit (largest difference %.3g of the update)" % rel)
check(all(np.array_equal(c[k], num[k]) for k in head),
      "--freeze body and --freeze 22 give the same bytes")
rel_o = max(float(np.abs(other[k] - c[k]).max()) / max(float(np.abs(c[k] - init[k]).max()), 1e-30)
            for k in head)
check(rel_o > 1e-2, "control: another --seed moves the head by %.3g of the update (> 1e-2)" % rel_o)
sys.exit(bad)
EOF
ok $? "cached and uncached training agree; the body is frozen (details above)"

cmp -s "$T/cached.safetensors" "$T/uncached.safetensors"
ok $? "the cached and uncached model files are the same bytes"

lc=$(sed -n 's/^epoch 1\/1  loss \([0-9.]*\).*/\1/p' "$T/cached.log")
lu=$(sed -n 's/^epoch 1\/1  loss \([0-9.]*\).*/\1/p' "$T/uncached.log")
ac=$(sed -n 's/.*test acc \([0-9.]*\)%.*/\1/p' "$T/cached.log")
au=$(sed -n 's/.*test acc \([0-9.]*\)%.*/\1/p' "$T/uncached.log")
[ -n "$lc" ] && [ "$lc" = "$lu" ] && [ -n "$ac" ] && [ "$ac" = "$au" ]
ok $? "the epoch's loss ($lc / $lu) and test accuracy ($ac% / $au%) print the same"

# timing: a diagnostic only (the machine is shared)
tc=$(sed -n 's/^epoch 1\/1 .*(\([0-9.]*\) s)$/\1/p' "$T/cached.log")
tu=$(sed -n 's/^epoch 1\/1 .*(\([0-9.]*\) s)$/\1/p' "$T/uncached.log")
tb=$(sed -n 's/^feature cache built in \([0-9.]*\) s$/\1/p' "$T/cached.log")
echo "# epoch: cached ${tc:-?} s (after ${tb:-?} s building the cache), uncached ${tu:-?} s;" \
	"ratio $(awk -v a="${tu:-0}" -v b="${tc:-0}" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "?" }')"
[ -n "$tc" ] && [ -n "$tu" ] && [ -n "$tb" ]
ok $? "the epoch times and the cache time are reported"

# the same with the small head (288->10), where the body is most of a step
for mode in cached uncached; do
	extra=
	[ $mode = uncached ] && extra=--no-cache
	"$ADVEX" train --init "$T/small.safetensors" --data "$T/data" --epochs 1 \
		--batch 16 --crop-pad 0 --no-flip --seed 3 --threads 2 --quiet \
		--freeze body $extra --out "$T/small-$mode.safetensors" \
		>"$T/small-$mode.log" 2>&1 || diag "$T/small-$mode.log"
done
tc=$(sed -n 's/^epoch 1\/1 .*(\([0-9.]*\) s)$/\1/p' "$T/small-cached.log")
tu=$(sed -n 's/^epoch 1\/1 .*(\([0-9.]*\) s)$/\1/p' "$T/small-uncached.log")
echo "# small head: epoch cached ${tc:-?} s, uncached ${tu:-?} s;" \
	"ratio $(awk -v a="${tu:-0}" -v b="${tc:-0}" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "?" }')"
lc=$(sed -n 's/^epoch 1\/1  loss \([0-9.]*\).*/\1/p' "$T/small-cached.log")
lu=$(sed -n 's/^epoch 1\/1  loss \([0-9.]*\).*/\1/p' "$T/small-uncached.log")
[ -n "$lc" ] && [ "$lc" = "$lu" ] &&
	cmp -s "$T/small-cached.safetensors" "$T/small-uncached.safetensors"
ok $? "small head: cached and uncached epochs give the same loss ($lc / $lu) and the same model bytes"

# two epochs: the cache is built once
"$ADVEX" train --init "$T/m.safetensors" --data "$T/data" --epochs 2 --batch 16 \
	--lr 0.01 --freeze body --seed 3 --threads 2 --quiet \
	--out "$T/two.safetensors" >"$T/two.log" 2>&1 &&
	[ "$(grep -c '^feature cache built' "$T/two.log")" -eq 1 ] &&
	[ "$(grep -c '^epoch [12]/2 ' "$T/two.log")" -eq 2 ] &&
	grep -q "random crop and flip are off" "$T/two.log"
ok $? "two epochs build the cache once; crop and flip, on by default, are turned off and said so"

# over the memory limit: a clear note, then the uncached path
train limited --freeze body --cache-limit 0 && grep -q "no feature cache: .* over the 0 MiB limit (--cache-limit)" "$T/limited.log" &&
	cmp -s "$T/limited.safetensors" "$T/uncached.safetensors"
ok $? "--cache-limit 0 falls back to the uncached path (same bytes as --no-cache) and says why"

"$ADVEX" train --init "$T/m.safetensors" --data "$T/data" --epochs 1 \
	--freeze bodies --out "$T/x.safetensors" >"$T/bad" 2>&1
[ $? -eq 2 ] && grep -q "or 'body'" "$T/bad"
ok $? "--freeze with a word other than body is a usage error"

echo "1..$n"
exit $failed
