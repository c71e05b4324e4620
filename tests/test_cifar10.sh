#!/bin/sh
# test_cifar10.sh - --data on CIFAR-10's binary directory from the command
# line: advex eval on a 32x32 model gives exactly the confusion matrix that
# numpy computes from the record bytes read row-major (and not the one a
# transposed read gives), the train split is data_batch_1..5 in order, a
# folder of 32x32 PNGs with the same pixels gives the same result, the run
# log names the kind cifar10, and a 96x96 model is refused with one line
# naming the directory and both sizes, in every command that uses both -
# unless --resize, whose eval matches PyTorch's bilinear interpolate
# followed by the same network in numpy.
# Environment (set by make check): ADVEX, PYTHON.
ADVEX=${ADVEX:-./advex}
PYTHON=${PYTHON:-/usr/bin/python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0
fails=0
ok() { # ok COND-EXIT-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
D="$T/cifar-10-batches-bin"

# The fixtures and the reference, in numpy: a CIFAR-10 directory (20 test
# records, 3 per train batch), the same test images as PNG class folders,
# two models (conv3x3+relu+maxpool+flatten+dense) for 32x32 and 96x96, and
# the confusion matrices advex must report.
"$PYTHON" - "$T" <<'PY'
import json, os, struct, sys, zlib
import numpy as np

top = sys.argv[1]
d = os.path.join(top, 'cifar-10-batches-bin')
os.mkdir(d)
names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
         "horse", "ship", "truck"]
rng = np.random.RandomState(7)

def images(n):
    # smooth ramps in random directions plus noise: structure a random
    # conv net responds to differently when the image is transposed
    yy, xx = np.mgrid[0:32, 0:32]
    out = np.empty((n, 3, 32, 32), np.uint8)
    for i in range(n):
        for c in range(3):
            a, b, p = rng.uniform(-8, 8), rng.uniform(-3, 3), rng.uniform(0, 255)
            v = p + a * yy + b * xx + rng.uniform(-20, 20, (32, 32))
            out[i, c] = np.mod(v, 256).astype(np.uint8)
    return out

def write_batch(name, imgs, labels):
    with open(os.path.join(d, name), 'wb') as f:
        for im, y in zip(imgs, labels):
            f.write(bytes([y]) + im.tobytes())   # planes R, G, B, row-major

def model(side, seed):
    r = np.random.RandomState(seed)
    half = side // 2
    return {"c1.weight": r.uniform(-0.5, 0.5, (4, 3, 3, 3)).astype('<f4'),
            "c1.bias": r.uniform(-0.1, 0.1, (4,)).astype('<f4'),
            "fc.weight": r.uniform(-0.05, 0.05, (10, 4 * half * half)).astype('<f4'),
            "fc.bias": r.uniform(-0.1, 0.1, (10,)).astype('<f4')}

def write_model(path, side, t):
    arch = [{"op": "conv2d", "name": "c1", "out": 4, "kernel": [3, 3],
             "stride": [1, 1], "padding": [1, 1]},
            {"op": "relu"}, {"op": "maxpool", "kernel": [2, 2], "stride": [2, 2]},
            {"op": "flatten"}, {"op": "dense", "name": "fc", "out": 10}]
    hdr, off, blob = {}, 0, b''
    for k, v in t.items():
        b = v.tobytes()
        hdr[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blob += b
    hdr["__metadata__"] = {"advex.format": "1", "advex.arch": json.dumps(arch),
                           "advex.input": json.dumps([3, side, side]),
                           "advex.classes": json.dumps(names)}
    h = json.dumps(hdr).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + blob)

def logits(t, x):
    # x (3,S,S) in [0,1]; float64 reference of the chain above
    s = x.shape[1]
    w, b = t["c1.weight"].astype(np.float64), t["c1.bias"].astype(np.float64)
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    y = np.zeros((4, s, s))
    for i in range(3):
        for j in range(3):
            y += np.einsum('oc,chw->ohw', w[:, :, i, j], p[:, i:i + s, j:j + s])
    y = np.maximum(y + b[:, None, None], 0)
    y = y.reshape(4, s // 2, 2, s // 2, 2).max(axis=(2, 4))
    return t["fc.weight"].astype(np.float64) @ y.reshape(-1) + t["fc.bias"]

def confusion(t, imgs, labels, transpose=False, prep=None):
    m, gap = np.zeros((10, 10), int), np.inf
    for im, y in zip(imgs, labels):
        x = im.astype(np.float64) / 255
        if transpose:
            x = x.transpose(0, 2, 1)
        if prep:
            x = prep(x)
        z = logits(t, x)
        gap = min(gap, np.sort(z)[-1] - np.sort(z)[-2])
        m[y, int(np.argmax(z))] += 1
    return m, gap

m32, m96 = model(32, 1), model(96, 2)
write_model(os.path.join(top, 'm32.safetensors'), 32, m32)
write_model(os.path.join(top, 'm96.safetensors'), 96, m96)

test = images(20)
test_y = list(rng.randint(0, 10, 20))
write_batch('test_batch.bin', test, test_y)
train, train_y = [], []
for k in range(5):
    im, y = images(3), [(3 * k + r) % 10 for r in range(3)]
    write_batch('data_batch_%d.bin' % (k + 1), im, y)
    train += list(im)
    train_y += y
with open(os.path.join(d, 'batches.meta.txt'), 'w') as f:
    f.write('\n'.join(names) + '\n\n')

ref, gap = confusion(m32, test, test_y)
ref_t, _ = confusion(m32, test, test_y, transpose=True)
ref_train, gap_train = confusion(m32, train, train_y)
# the reference is only worth something when a transposed read would
# change it and when float32 cannot flip an argmax
assert (ref != ref_t).any(), "control: transposition would go unseen"
assert min(gap, gap_train) > 1e-3, "argmax too close to call: %g" % min(gap, gap_train)
assert (ref.sum(axis=0) > 0).sum() > 1, "the model predicts one class for all"
out = {"test": ref.tolist(), "test_transposed": ref_t.tolist(),
       "train": ref_train.tolist()}
# --resize to 96x96: PyTorch's bilinear interpolate when torch is here
try:
    import torch
    import torch.nn.functional as F
    def bilinear(x):
        return F.interpolate(torch.from_numpy(x[None]), size=(96, 96), mode='bilinear',
                             align_corners=False)[0].numpy()
    def nearest(x):
        return x.repeat(3, axis=1).repeat(3, axis=2)
    ref_r, gap_r = confusion(m96, test, test_y, prep=bilinear)
    ref_n, _ = confusion(m96, test, test_y, prep=nearest)
    assert gap_r > 1e-3, "argmax too close to call: %g" % gap_r
    assert (ref_r != ref_n).any(), "control: nearest-neighbour would go unseen"
    out["resized"], out["resized_nearest"] = ref_r.tolist(), ref_n.tolist()
except ImportError:
    pass
json.dump(out, open(os.path.join(top, 'ref.json'), 'w'))

# the same test images as a folder of 32x32 PNGs, one class folder per name
def chunk(t, b):
    return struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t + b) & 0xffffffff)
for c in names:
    os.makedirs(os.path.join(top, 'imgs', c))
for i, (im, y) in enumerate(zip(test, test_y)):
    rows = b''.join(b'\0' + im[:, r, :].T.tobytes() for r in range(32))
    with open(os.path.join(top, 'imgs', names[y], '%03d.png' % i), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 32, 32, 8, 2, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))
PY
ok $? "fixtures: CIFAR-10 directory, PNG folder, 32x32 and 96x96 models, numpy reference"

same_confusion() { # same_confusion JSON-FROM-ADVEX KEY-IN-REF
	"$PYTHON" -c '
import json, sys
got, ref = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(0 if got["confusion"] == ref[sys.argv[3]] and
         got["total"] == sum(map(sum, ref[sys.argv[3]])) else 1)' "$1" "$T/ref.json" "$2"
}

"$ADVEX" eval --data "$D" --model "$T/m32.safetensors" --json >"$T/e.json" 2>"$T/err"
ok $? "eval --data cifar-10-batches-bin/ on a 32x32 model runs ($(head -c 200 "$T/err"))"
same_confusion "$T/e.json" test
ok $? "its confusion matrix is numpy's from the records read row-major (20 images)"
same_confusion "$T/e.json" test_transposed
ok $(($? == 0)) "control: it is not the matrix a transposed read gives"

"$ADVEX" eval --data "$D" --split train --model "$T/m32.safetensors" --json >"$T/t.json" 2>"$T/err"
ok $? "eval --split train runs ($(head -c 200 "$T/err"))"
same_confusion "$T/t.json" train
ok $? "train: data_batch_1..5 in order, 15 images, numpy's confusion matrix"

"$ADVEX" eval --data "$T" --model "$T/m32.safetensors" --json >"$T/p.json" 2>"$T/err"
ok $? "eval on the parent of cifar-10-batches-bin/ runs ($(head -c 200 "$T/err"))"
cmp -s "$T/p.json" "$T/e.json"
ok $? "and gives the same result"

"$ADVEX" eval --data "$T/imgs" --model "$T/m32.safetensors" --json >"$T/i.json" 2>"$T/err"
ok $? "eval on a folder of 32x32 PNGs runs ($(head -c 200 "$T/err"))"
same_confusion "$T/i.json" test
ok $? "the same pixels as PNGs give the same confusion matrix"

# a 96x96 model: one line naming the directory and both sizes, exit 1
want="$D: images are 32x32 but the model expects 96x96"
"$ADVEX" eval --data "$D" --model "$T/m96.safetensors" >"$T/out" 2>&1
s=$?
[ $s -eq 1 ] && [ "$(cat "$T/out")" = "advex: $want (use a model trained at 32x32, or --resize)" ]
ok $? "eval with a 96x96 model: one-line size error, exit 1 ($(cat "$T/out"))"
"$ADVEX" attack --no-log --data "$D" --image 3 --model "$T/m96.safetensors" >"$T/out" 2>&1
s=$?
[ $s -eq 1 ] && grep -qF "$want" "$T/out" && [ $(grep -c . "$T/out") -eq 1 ]
ok $? "attack --image 3: the same error ($(cat "$T/out"))"
"$ADVEX" attack --no-log --data "$D" --images 0:4 --model "$T/m96.safetensors" >"$T/out" 2>&1
s=$?
[ $s -eq 1 ] && grep -qF "$want" "$T/out" && [ $(grep -c . "$T/out") -eq 1 ]
ok $? "attack --images 0:4: the same error ($(cat "$T/out"))"
"$ADVEX" diagnose --data "$D" --image 3 --target 1 --model "$T/m96.safetensors" >"$T/out" 2>&1
s=$?
[ $s -eq 1 ] && grep -qF "$want" "$T/out" && [ $(grep -c . "$T/out") -eq 1 ]
ok $? "diagnose: the same error ($(cat "$T/out"))"
"$ADVEX" train --data "$D" --init "$T/m96.safetensors" --epochs 1 --out "$T/o.safetensors" \
	--quiet >"$T/out" 2>&1
s=$?
[ $s -eq 1 ] && grep -qF "$want" "$T/out" && [ ! -e "$T/o.safetensors" ]
ok $? "train --init with a 96x96 model: the same error, nothing written ($(cat "$T/out"))"

# the explorer wants a terminal: script(1) gives it one; the check runs
# before the terminal is taken
if command -v script >/dev/null 2>&1; then
	TERM=xterm script -qec "'$ADVEX' explore --data '$D' --model '$T/m96.safetensors' --db '$T/x.db'" \
		/dev/null </dev/null >"$T/out" 2>&1
	s=$?
	[ $s -eq 1 ] && grep -qF "$want" "$T/out" && [ $(grep -c . "$T/out") -eq 1 ]
	ok $? "explore: the same error ($(cat "$T/out"))"
else
	n=$((n + 1))
	echo "ok $n # SKIP explore: no script(1) to give it a terminal"
fi

# --resize: PyTorch's bilinear interpolate, then the same network
"$ADVEX" eval --data "$D" --model "$T/m96.safetensors" --resize --json >"$T/r.json" 2>"$T/err"
ok $? "eval --resize with the 96x96 model runs ($(head -c 200 "$T/err"))"
if grep -q '"resized"' "$T/ref.json"; then
	same_confusion "$T/r.json" resized
	ok $? "its confusion matrix is that of torch's interpolate(bilinear, align_corners=False) + numpy"
	same_confusion "$T/r.json" resized_nearest
	ok $(($? == 0)) "control: not the matrix of nearest-neighbour upsampling"
else
	n=$((n + 1)); echo "ok $n # SKIP no torch for the bilinear reference"
	n=$((n + 1)); echo "ok $n # SKIP no torch for the bilinear reference"
fi
"$ADVEX" diagnose --data "$D" --image 3 --target 1 --model "$T/m96.safetensors" --resize \
	--json >"$T/out" 2>"$T/err"
ok $? "diagnose --resize runs ($(head -c 200 "$T/err"))"
"$ADVEX" attack --db "$T/runs.db" --data "$D" --image 3 --iters 2 --model "$T/m96.safetensors" \
	--resize >"$T/out" 2>&1
ok $? "attack --resize --image 3 runs ($(tail -n 1 "$T/out"))"

# the run log names the kind
"$ADVEX" attack --db "$T/runs.db" --data "$D" --image 3 --iters 2 --model "$T/m32.safetensors" \
	>"$T/out" 2>&1
ok $? "attack --image 3 on the 32x32 model runs ($(tail -n 1 "$T/out"))"
"$PYTHON" -c '
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT d.kind, d.split, r.image_ref, r.height, r.width FROM runs r "
    "JOIN datasets d ON d.id = r.dataset_id ORDER BY r.id").fetchall()
sys.exit(0 if rows == [("cifar10", "test", "test_batch.bin#3", 96, 96),
                       ("cifar10", "test", "test_batch.bin#3", 32, 32)] else rows)' "$T/runs.db"
ok $? "the run log: datasets.kind cifar10, split test, image test_batch.bin#3, at 96x96 (--resize) and 32x32"

echo "1..$n"
[ $fails -eq 0 ]
