#!/bin/sh
# bench/compare.sh - advex vs PyTorch: one VGG16@96 (or ResNet-18@96: MODEL)
# attack step (forward +
# cross-entropy + backward to the input, batch 1) and one forward, at 1 and 2
# threads. Prints a table of medians and the ratio advex/PyTorch (< 1: advex
# is faster). Then a batch sweep: attack steps of BATCH images per forward +
# backward (advex bench --batch, torch_step.py --batch), in images per second
# for each and their ratio advex/PyTorch (> 1: advex is faster).
#
# Environment:
#   ADVEX     the advex binary (default ./advex)
#   STEPS     timed runs of each (default 10)
#   THREADS   thread counts to try (default "1 2")
#   HEAD      classic (4608-4096-4096-10, advex --arch vgg16) or small
#             (4608-10, advex --arch vgg16-small); default classic
#   MODEL     vgg16 (default) or resnet18 (advex --arch resnet18 against
#             torchvision's resnet18; HEAD does not apply)
#   PY        the Python with torch (default /usr/bin/python3)
#   BATCH     images per batched step of the sweep (default 8; 0: no sweep)
set -eu

ADVEX=${ADVEX:-./advex}
STEPS=${STEPS:-10}
THREADS=${THREADS:-"1 2"}
HEAD=${HEAD:-classic}
MODEL=${MODEL:-vgg16}
PY=${PY:-/usr/bin/python3}
BATCH=${BATCH:-8}
here=$(cd "$(dirname "$0")" && pwd)

case $HEAD in
classic) arch=vgg16 ;;
small) arch=vgg16-small ;;
*) echo "compare.sh: HEAD must be classic or small" >&2; exit 2 ;;
esac
case $MODEL in
vgg16) label="VGG16@96, $HEAD head" ;;
resnet18) arch=resnet18 label="ResNet-18@96 (torchvision layout)" ;;
*) echo "compare.sh: MODEL must be vgg16 or resnet18" >&2; exit 2 ;;
esac
if [ ! -x "$ADVEX" ]; then
	echo "compare.sh: $ADVEX not found or not executable (set ADVEX, or run make)" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/advex-compare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

have_torch=yes
if ! "$PY" -c 'import torch' 2>/dev/null; then
	have_torch=no
	echo "compare.sh: torch is not available to $PY: PyTorch columns are n/a" >&2
fi

case $BATCH in
'' | *[!0-9]*) echo "compare.sh: BATCH must be a count (0: no sweep)" >&2; exit 2 ;;
esac
sweep=
[ "$BATCH" -gt 0 ] && sweep="--batch $BATCH"

for t in $THREADS; do
	# shellcheck disable=SC2086 # $sweep is empty or two words
	"$ADVEX" bench --arch "$arch" --threads "$t" --steps "$STEPS" $sweep --json \
		>"$tmp/advex.$t.json"
	if [ $have_torch = yes ]; then
		# shellcheck disable=SC2086
		"$PY" "$here/torch_step.py" --threads "$t" --steps "$STEPS" \
			--head "$HEAD" --model "$MODEL" $sweep --json >"$tmp/torch.$t.json"
	fi
done

# shellcheck disable=SC2086 # THREADS is a list
"$PY" - "$tmp" "$label" "$STEPS" $THREADS <<'EOF'
import json, os, sys

tmp, label, steps, threads = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]


def load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def fmt(x):
    return "%10.2f" % x if x is not None else "%10s" % "n/a"


print("%s, batch 1, medians of %s runs (ms); ratio = advex / PyTorch"
      % (label, steps))
print("%7s | %-29s | %-29s" % ("", "attack step (fwd+bwd)", "forward"))
print("%7s | %10s %10s %7s | %10s %10s %7s" % ("threads", "advex ms", "torch ms",
                                               "ratio", "advex ms", "torch ms", "ratio"))
print("-" * 73)
gflops = []
for t in threads:
    a = load(os.path.join(tmp, "advex.%s.json" % t))
    p = load(os.path.join(tmp, "torch.%s.json" % t))
    cells = []
    for key, mult in (("step_ms", 2), ("forward_ms", 1)):
        am = a[key]["median"]
        pm = p[key]["median"] if p else None
        ratio = "%7.2f" % (am / pm) if pm else "%7s" % "n/a"
        cells.append("%s %s %s" % (fmt(am), fmt(pm), ratio))
        # effective GFLOP/s: direct-convolution (and dense) FLOPs / time,
        # the same count for both
        flop = mult * a["gflop_forward"]
        gflops.append((t, key, flop / am * 1e3, flop / pm * 1e3 if pm else None))
    print("%7s | %s | %s" % (t, cells[0], cells[1]))
print()
print("effective GFLOP/s (%.3f GFLOP per forward: conv layers as direct convolution, "
      "plus the dense layers; x2 per step)"
      % a["gflop_forward"])
print("%7s | %-10s %10s %10s" % ("threads", "", "advex", "torch"))
print("-" * 44)
for t, key, ag, pg in gflops:
    print("%7s | %-10s %10.1f %10s" % (t, key.split("_")[0], ag,
                                        "%10.1f" % pg if pg else "n/a"))

sweeps = [(t, load(os.path.join(tmp, "advex.%s.json" % t)),
           load(os.path.join(tmp, "torch.%s.json" % t))) for t in threads]
if any("sweep" in a for _, a, _ in sweeps):
    print()
    print("batch sweep: attack steps of %d images per forward + backward; images/s "
          "(image steps), ratio = advex / PyTorch (> 1: advex is faster)"
          % sweeps[0][1]["sweep"]["batch"])
    print("%7s | %12s %12s %7s" % ("threads", "advex img/s", "torch img/s", "ratio"))
    print("-" * 44)
    for t, a, p in sweeps:
        ai = a["sweep"]["images_per_s"]
        pi = p["sweep"]["images_per_s"] if p and "sweep" in p else None
        print("%7s | %12.1f %12s %7s" % (t, ai, "%12.1f" % pi if pi else "n/a",
                                          "%7.2f" % (ai / pi) if pi else "n/a"))
EOF
