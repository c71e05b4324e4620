#!/bin/sh
# test_gen_demo.sh - the demo data generator: same seed same bytes, the
# STL-10 layout (sizes, labels, class names), images upright when read
# column-major as the STL-10 loader reads them, classes that differ.
# Environment (set by make check): GEN_DEMO, PYTHON.
GEN_DEMO=${GEN_DEMO:-./gen-demo}
PYTHON=${PYTHON:-/usr/bin/python3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0
fails=0
ok() { # ok COND-EXIT-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
FILES="train_X.bin train_y.bin test_X.bin test_y.bin class_names.txt"

"$GEN_DEMO" --out "$T/a" --train 200 --test 100 --seed 7 --preview "$T/a.ppm" >"$T/out" 2>&1
ok $? "gen-demo --train 200 --test 100 --seed 7 exits 0"
grep -q "200 train + 100 test" "$T/out"
ok $? "the summary line gives the counts"
"$GEN_DEMO" --out "$T/b" --train 200 --test 100 --seed 7 --preview "$T/b.ppm" >/dev/null 2>&1
ok $? "a second run with the same seed exits 0"

same=0
for f in $FILES; do cmp -s "$T/a/$f" "$T/b/$f" || same=1; done
cmp -s "$T/a.ppm" "$T/b.ppm" || same=1
ok $same "the same seed gives byte-identical files and preview"

"$GEN_DEMO" --out "$T/c" --train 200 --test 100 --seed 8 >/dev/null 2>&1
! cmp -s "$T/a/train_X.bin" "$T/c/train_X.bin" && ! cmp -s "$T/a/test_X.bin" "$T/c/test_X.bin"
ok $? "another seed gives other images"

size() { wc -c <"$1" | tr -d ' '; }
[ "$(size "$T/a/train_X.bin")" = $((200 * 27648)) ] && [ "$(size "$T/a/train_y.bin")" = 200 ] &&
	[ "$(size "$T/a/test_X.bin")" = $((100 * 27648)) ] && [ "$(size "$T/a/test_y.bin")" = 100 ]
ok $? "file sizes: N*27648 image bytes and N label bytes per split"

ls -a "$T/a" | grep -q '\.tmp$'
[ $? -ne 0 ]
ok $? "no temporary files are left behind"

"$PYTHON" - "$T/a" <<'PY'
import sys
for split in ("train", "test"):
    y = open(f"{sys.argv[1]}/{split}_y.bin", "rb").read()
    if not all(1 <= b <= 10 for b in y) or set(y) != set(range(1, 11)):
        print(f"# {split}: labels {sorted(set(y))}")
        sys.exit(1)
PY
ok $? "labels are all in 1..10 and every class is present in both splits"

[ "$(wc -l <"$T/a/class_names.txt" | tr -d ' ')" = 10 ] &&
	[ "$(grep -c '^[a-z][a-z]*$' "$T/a/class_names.txt")" = 10 ] &&
	[ "$(sort -u "$T/a/class_names.txt" | wc -l | tr -d ' ')" = 10 ]
ok $? "class_names.txt has 10 distinct names, one per line"

# Orientation: triangles are drawn apex up, so read column-major (byte
# c*9216 + x*96 + y) three quarters of an upright triangle's area lies in
# the lower half of its bounding box. Read row-major, the same bytes show it
# pointing sideways with its mass split about evenly: the check tells the
# two apart.
"$PYTHON" - "$T/a" <<'PY'
import sys
d = sys.argv[1]
names = open(f"{d}/class_names.txt").read().split()
tri = names.index("triangle") + 1
X = open(f"{d}/test_X.bin", "rb").read()
y = open(f"{d}/test_y.bin", "rb").read()

def pixel(img, x, y, colmajor):
    o = x * 96 + y if colmajor else y * 96 + x
    return tuple(img[c * 9216 + o] for c in range(3))

def dist2(a, b):
    return sum((p - q) ** 2 for p, q in zip(a, b))

def mean(ps):
    return tuple(sum(p[c] for p in ps) / len(ps) for c in range(3))

def foreground(img, colmajor):
    """Two-means on colours, seeded with the border (always background)."""
    px = {(x, y): pixel(img, x, y, colmajor) for x in range(96) for y in range(96)}
    border = [p for (x, y), p in px.items() if x in (0, 95) or y in (0, 95)]
    bg = mean(border)
    fg = max(px.values(), key=lambda p: dist2(p, bg))
    for _ in range(4):
        fgset = [k for k, p in px.items() if dist2(p, fg) < dist2(p, bg)]
        bgset = [k for k, p in px.items() if dist2(p, fg) >= dist2(p, bg)]
        fg, bg = mean([px[k] for k in fgset]), mean([px[k] for k in bgset])
    return fgset

def lower_to_upper(img, colmajor):
    fgset = foreground(img, colmajor)
    ys = [y for _, y in fgset]
    mid = (min(ys) + max(ys)) / 2
    return sum(y > mid for y in ys) / max(1, sum(y < mid for y in ys))

imgs = [X[i * 27648:(i + 1) * 27648] for i in range(len(y)) if y[i] == tri]
col = [lower_to_upper(im, True) for im in imgs]
row = [lower_to_upper(im, False) for im in imgs]
print("# lower/upper mass, column-major:", " ".join(f"{r:.2f}" for r in col))
print("# lower/upper mass, row-major:   ", " ".join(f"{r:.2f}" for r in row))
# Turned up to 20 degrees, a single triangle's ratio can sink below 2 (the
# bounding box turns with it), but never near 1; on average it stays above 2.
upright = len(imgs) >= 5 and all(r > 1.3 for r in col) and sum(col) / len(col) > 1.7
discriminates = sum(row) / len(row) < 1.4
sys.exit(0 if upright and discriminates else 1)
PY
ok $? "triangles read column-major point up (and read row-major they do not)"

# Per-class mean images: random colours average out, the shapes' layouts do
# not, so no two classes may have (nearly) the same mean image.
"$PYTHON" - "$T/a" <<'PY'
import sys
d = sys.argv[1]
X = open(f"{d}/train_X.bin", "rb").read()
y = open(f"{d}/train_y.bin", "rb").read()
sums = {c: [0] * 27648 for c in range(1, 11)}
count = {c: 0 for c in range(1, 11)}
for i, c in enumerate(y):
    img = X[i * 27648:(i + 1) * 27648]
    s = sums[c]
    for k in range(27648):
        s[k] += img[k]
    count[c] += 1
means = {c: [v / count[c] for v in sums[c]] for c in sums}
worst = min((sum(abs(p - q) for p, q in zip(means[a], means[b])) / 27648, a, b)
            for a in range(1, 11) for b in range(a + 1, 11))
print(f"# closest class means: {worst[1]} and {worst[2]}, mean |diff| {worst[0]:.2f}")
sys.exit(0 if worst[0] > 2.0 else 1)
PY
ok $? "the per-class mean images all differ"

head -c 15 "$T/a.ppm" | grep -q "^P6" && [ "$(sed -n 2p "$T/a.ppm")" = "982 982" ]
ok $? "--preview writes a 982x982 binary PPM (10x10 grid)"

"$GEN_DEMO" --out "$T/none/deeper" --train 10 --test 10 >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && [ "$(wc -l <"$T/err" | tr -d ' ')" = 1 ] && grep -q "$T/none/deeper" "$T/err"
ok $? "an unwritable --out fails with exit 1 and one line naming it"

"$GEN_DEMO" --out "$T/d" --train 5 >/dev/null 2>&1
[ $? -eq 2 ] && [ ! -e "$T/d" ]
ok $? "--train below 10 is a usage error (exit 2) and writes nothing"

echo "1..$n"
[ "$fails" -eq 0 ]
