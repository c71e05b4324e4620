#!/bin/sh
# test_runs.sh - the run log end to end, as a user meets it: an attack
# killed with kill -9 mid-run is listed as interrupted with its steps; a
# normal run is listed, shown, compared and exported pixel for pixel; Ctrl-C
# records 'interrupted'; batch runs are logged, the same with --batch 4 as
# one image at a time, and Ctrl-C closes every run in flight; an unwritable
# --db fails before any work; --no-log writes nothing.
# Environment (set by make check): ADVEX, PYTHON.
ADVEX=${ADVEX:-./advex}
PYTHON=${PYTHON:-/usr/bin/python3}
T=$(mktemp -d)
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
n=0
fails=0
ok() { # ok COND-EXIT-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
skip() {
	n=$((n + 1))
	echo "ok $n - # SKIP $1"
}
# never touch the user's own run log
XDG_DATA_HOME="$T/xdg"
HOME="$T/home"
export XDG_DATA_HOME HOME
DB="$T/runs.db"
ATTACK="--arch vgg-compact --image $T/x.png --target 3"

# png.py: a PNG written by a few lines of our own (zlib + struct), and a
# reader for 8-bit RGB (the five filters) with the tEXt chunks
cat >"$T/png.py" <<'PY'
import struct, sys, zlib
def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
def write(path, w, h):
    rows = b''.join(b'\0' + bytes(((x * 7 + y * 3 + c * 50) % 256)
                                  for x in range(w) for c in range(3)) for y in range(h))
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))
def read(path):
    d = open(path, 'rb').read()
    assert d[:8] == b'\x89PNG\r\n\x1a\n'
    i, idat, text = 8, b'', {}
    while i < len(d):
        n, t = struct.unpack('>I', d[i:i + 4])[0], d[i + 4:i + 8]
        body = d[i + 8:i + 8 + n]
        if t == b'IHDR':
            w, h, depth, color = struct.unpack('>IIBB', body[:10])
            assert depth == 8 and color == 2, (depth, color)
        elif t == b'IDAT':
            idat += body
        elif t == b'tEXt':
            k, v = body.split(b'\0', 1)
            text[k.decode('latin-1')] = v.decode('latin-1')
        i += 12 + n
    raw, stride, out, prev = zlib.decompress(idat), 3 * w, [], bytearray(3 * w)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - 3] if x >= 3 else 0
            b, c = prev[x], prev[x - 3] if x >= 3 else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append(bytes(line))
        prev = line
    return w, h, b''.join(out), text
if __name__ == '__main__':
    write(sys.argv[1], 96, 96)
PY
"$PYTHON" "$T/png.py" "$T/x.png"
py() { # py CODE ARGS...: Python with png.py importable, ARGS in sys.argv[1:]
	code=$1
	shift
	"$PYTHON" -c "import sys; sys.path.insert(0, '$T'); $code" "$@"
}

# -- kill -9 in the middle of a 200-step run ------------------------------------
"$ADVEX" attack $ATTACK --iters 200 --db "$DB" --json >"$T/killed.jsonl" 2>"$T/killed.err" &
pid=$!
# poll the log with Python's sqlite3 until steps exist, then kill -9 at once
"$PYTHON" - "$DB" "$pid" >"$T/seen" <<'PY'
import os, signal, sqlite3, sys, time
db, pid = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 60
while time.time() < deadline:
    try:
        c = sqlite3.connect('file:%s?mode=ro' % db, uri=True, timeout=5)
        n = c.execute('SELECT count(*) FROM steps').fetchone()[0]
        c.close()
        if n >= 3:
            os.kill(pid, signal.SIGKILL)
            print(n)
            sys.exit(0)
    except sqlite3.Error:
        pass
    time.sleep(0.002)
print(-1)
PY
wait $pid
st=$?
seen=$(cat "$T/seen")
[ $st -eq 137 ] && [ "$seen" -ge 3 ]
ok $? "advex attack --iters 200 killed with kill -9 once $seen steps were in the log (exit $st)"
"$ADVEX" runs list --db "$DB" >"$T/list" 2>&1
ok $? "advex runs list after the kill"
grep -q "^ *1 .* interrupted " "$T/list"
ok $? "the killed run is listed as interrupted: $(grep '^ *1 ' "$T/list" | tr -s ' ')"
"$ADVEX" runs show 1 --steps --json --db "$DB" >"$T/show1.json"
py 'import json; d = json.load(open(sys.argv[1])); s = d["steps"]
assert d["status"] == "interrupted" and d["success"] is None, d["status"]
assert int(sys.argv[2]) <= d["n_steps"] == len(s) < 200, (d["n_steps"], len(s))
assert [x["iter"] for x in s] == list(range(len(s)))
assert all(len(x["probs"]) == 10 and len(x["log10_grad_hist"]) == 14 and x["layer_grad_norms"] for x in s)
print(len(s))' "$T/show1.json" "$seen" >"$T/nsteps"
ok $? "its finished steps are intact: $(cat "$T/nsteps") whole steps, iterations 0..$(($(cat "$T/nsteps") - 1)), each with probabilities, histogram and layer norms"

# -- a normal run: list, show, compare, export --------------------------------------
"$ADVEX" attack $ATTACK --iters 20 --db "$DB" --json --out "$T/adv.png" >"$T/run2.jsonl" 2>"$T/err"
ok $? "advex attack --iters 20 --db --out runs"
py 'import json; d = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert d["type"] == "summary" and d["run_id"] == 2, d' "$T/run2.jsonl"
ok $? "its JSON summary names the run: run_id 2"
"$ADVEX" runs list --db "$DB" >"$T/list"
[ "$(sed -n 2p "$T/list" | awk '{print $1, $4}')" = "2 done" ] &&
	[ "$(sed -n 3p "$T/list" | awk '{print $1, $4}')" = "1 interrupted" ]
ok $? "runs list: newest first, one line per run"
"$ADVEX" runs list --db "$DB" --json >"$T/list.jsonl" &&
	[ "$("$ADVEX" runs list --db "$DB" --json --status done | wc -l)" -eq 1 ] &&
	[ "$("$ADVEX" runs list --db "$DB" --json --limit 1 | wc -l)" -eq 1 ] &&
	[ "$("$ADVEX" runs list --db "$DB" --json --model vgg-compact | wc -l)" -eq 2 ] &&
	[ "$("$ADVEX" runs list --db "$DB" --json --model nosuchmodel | wc -l)" -eq 0 ]
ok $? "runs list --json, --status, --limit and --model filter"
py 'import json; r = [json.loads(l) for l in open(sys.argv[1])]
assert [x["id"] for x in r] == [2, 1]
d = r[0]
for k in ("created", "status", "model", "image", "target", "attack", "loss", "norm", "eps",
          "alpha", "iters", "momentum", "random_start", "seed", "clip_eps", "success",
          "final_pred", "final_probs", "pert_linf", "pert_l2", "wall_s"):
    assert k in d, k
assert d["model"]["path"] == "builtin:vgg-compact" and d["target"] == 3 and d["iters"] == 20
assert d["n_steps"] == 20 and abs(sum(d["final_probs"]) - 1) < 1e-5' "$T/list.jsonl"
ok $? "list JSON: parameters, outcome, final probabilities (summing to 1), 20 steps"
"$ADVEX" runs show 2 --db "$DB" >"$T/show2" &&
	grep -q "^outcome " "$T/show2" && grep -q "^final probabilities" "$T/show2" &&
	grep -q "^target       cat" "$T/show2" && grep -q "^steps        20 logged" "$T/show2"
ok $? "runs show: parameters, outcome, final probabilities, steps"
"$ADVEX" runs show 2 --steps --db "$DB" >"$T/show2s" &&
	[ "$(grep -c '^ *[0-9][0-9]*  .*ms$' "$T/show2s")" -eq 20 ]
ok $? "runs show --steps: a table of the 20 steps"
"$ADVEX" runs compare 1 2 --db "$DB" >"$T/cmp"
ok $? "runs compare 1 2"
grep -q "^  iters  *200  *20 " "$T/cmp" && grep -q "^loss per iteration" "$T/cmp" &&
	grep -q "^final probabilities" "$T/cmp" && grep -q "^  status  *interrupted  *done" "$T/cmp" &&
	grep -q "the same in all: .*attack pgd" "$T/cmp"
ok $? "compare: the parameters that differ (iters 200 vs 20), the same ones, outcome, loss per iteration, final probabilities"
"$ADVEX" runs export 2 --db "$DB" --out "$T/e.png" --perturbation "$T/p.png" --clean "$T/c.png" >"$T/exp"
ok $? "runs export --out --perturbation --clean"
py 'import png
a, e, c, x = (png.read(p) for p in sys.argv[1:5])
assert a[:3] == e[:3], "adv differs"
assert c[:3] == x[:3], "clean differs"
print(sum(u != v for u, v in zip(a[2], x[2])))' "$T/adv.png" "$T/e.png" "$T/c.png" "$T/x.png" >"$T/ndiff"
ok $? "the exported adversarial PNG is pixel-identical to the run's --out ($(cat "$T/ndiff") of 27648 bytes differ from the clean image), and --clean to the input"
py 'import png
w, h, adv, _ = png.read(sys.argv[1])
_, _, clean, _ = png.read(sys.argv[2])
_, _, pert, text = png.read(sys.argv[3])
s = float(text["advex.perturbation_scale"])
m = max(abs(a - c) for a, c in zip(adv, clean)) / 255
assert abs(s - 0.5 / m) < 1e-3 * s, (s, m)
for a, c, p in zip(adv, clean, pert):
    assert abs(p - round(255 * (0.5 + s * (a - c) / 255))) <= 1
print("%.4g" % s)' "$T/adv.png" "$T/c.png" "$T/p.png" >"$T/scale"
ok $? "the perturbation PNG is 0.5 + scale*(adv - clean), scale $(cat "$T/scale") = 0.5/max|delta| in tEXt advex.perturbation_scale"
grep -q "x $(cat "$T/scale") around mid-gray" "$T/exp"
ok $? "export says the amplification: $(grep perturbation "$T/exp")"

# -- errors ---------------------------------------------------------------------------
"$ADVEX" runs show 42 --db "$DB" >"$T/out" 2>&1
[ $? -eq 1 ] && [ "$(cat "$T/out")" = "advex: RUN 42: no such run in $DB" ]
ok $? "an unknown id: exit 1, $(cat "$T/out")"
"$ADVEX" runs export 1 --db "$DB" --out "$T/no.png" >"$T/out" 2>&1
[ $? -eq 1 ] && grep -q "RUN 1: no adversarial image" "$T/out" && [ ! -e "$T/no.png" ]
ok $? "exporting a run killed before it finished: exit 1, $(cat "$T/out")"
"$ADVEX" runs show abc --db "$DB" >/dev/null 2>&1
ok $(($? != 2)) "a run id that is not a number: exit 2"
"$ADVEX" runs list --db "$T/absent.db" >"$T/out" 2>&1
[ $? -eq 1 ] && grep -q "absent.db: no run log there" "$T/out" && [ ! -e "$T/absent.db" ]
ok $? "runs on an absent log: exit 1, nothing created ($(cat "$T/out"))"
"$ADVEX" runs --help | grep -q -- "--perturbation" && "$ADVEX" attack --help | grep -q -- "--no-log"
ok $? "runs --help and attack --help document the options"

# -- a log that cannot be written (issue 13): reading needs no write access -----------
# As root the commands run as nobody, for whom permissions hold.
as_reader() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
	else
		"$@"
	fi
}
chmod 755 "$T"
mkdir "$T/rolog" "$T/roout" && cp "$DB" "$T/rolog/runs.db" && chmod 777 "$T/roout" &&
	chmod 444 "$T/rolog/runs.db" && chmod 555 "$T/rolog"
ROLOG="$T/rolog/runs.db"
as_reader "$ADVEX" attack $ATTACK --iters 2 --db "$ROLOG" >"$T/out" 2>&1
[ $? -eq 1 ] && grep -q "$ROLOG" "$T/out"
ok $? "control: the read-only log cannot be written ($(cat "$T/out"))"
"$ADVEX" runs list --db "$DB" >"$T/rw.list" 2>&1
as_reader "$ADVEX" runs list --db "$ROLOG" >"$T/ro.list" 2>"$T/out" && cmp -s "$T/rw.list" "$T/ro.list"
ok $? "runs list reads a read-only log in a read-only directory, the same list ($(cat "$T/out"))"
as_reader "$ADVEX" runs show 2 --steps --db "$ROLOG" >"$T/ro.show" 2>"$T/out" &&
	grep -q "^run  *2  done" "$T/ro.show"
ok $? "runs show reads it ($(cat "$T/out"))"
as_reader "$ADVEX" runs export 2 --db "$ROLOG" --out "$T/roout/e.png" >/dev/null 2>"$T/out" &&
	cmp -s "$T/roout/e.png" "$T/e.png"
ok $? "runs export reads it: the same PNG as from the writable log ($(cat "$T/out"))"
chmod 755 "$T/rolog"
"$ADVEX" attack $ATTACK --iters 2 --db /dev/null >"$T/out" 2>&1
[ $? -eq 1 ] && grep -q "not a regular file" "$T/out" && [ ! -e /dev/null-locks ] &&
	[ ! -e /dev/null-journal ] && [ ! -e /dev/null-wal ]
ok $? "--db /dev/null: exit 1, refused before any -locks or -journal file ($(cat "$T/out"))"

# -- Ctrl-C ------------------------------------------------------------------------------
"$ADVEX" attack $ATTACK --iters 100000 --db "$DB" --quiet >"$T/int.out" 2>"$T/int.err" &
pid=$!
"$PYTHON" - "$DB" <<'PY'
import sqlite3, sys, time
deadline = time.time() + 60
while time.time() < deadline:
    c = sqlite3.connect(sys.argv[1], timeout=5)
    n = c.execute('SELECT count(*) FROM steps WHERE run_id = 3').fetchone()[0]
    c.close()
    if n >= 3:
        break
    time.sleep(0.005)
PY
kill -INT $pid
wait $pid
st=$?
[ $st -eq 1 ] && grep -q "interrupted: run 3 recorded as interrupted" "$T/int.err"
ok $? "SIGINT stops the attack: exit $st, $(cat "$T/int.err")"
"$ADVEX" runs show 3 --json --db "$DB" >"$T/s3.json" &&
	py 'import json; d = json.load(open(sys.argv[1]))
assert d["status"] == "interrupted" and d["ended"] and d["final_probs"] and 3 <= d["n_steps"] < 100000' "$T/s3.json" &&
	"$ADVEX" runs export 3 --db "$DB" --out "$T/e3.png" >/dev/null
ok $? "it is recorded interrupted, with its outcome and image so far (exportable)"

# -- batch --------------------------------------------------------------------------------
DATA="$(dirname "$ADVEX")/assets/demo/stl10_binary"
if [ -f "$DATA/test_X.bin" ]; then
	"$ADVEX" attack --arch vgg-compact --data "$DATA" --images 0:3 --eps 1/255,2/255 --iters 3 \
		--db "$T/batch.db" --quiet >"$T/out" 2>&1
	ok $? "batch: 3 images x 2 epsilons"
	"$ADVEX" runs list --db "$T/batch.db" --json >"$T/b.jsonl"
	py 'import json; r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 6 and all(x["status"] == "done" and x["n_steps"] == 3 for x in r)
assert all(x["data"]["kind"] == "stl10" and x["data"]["split"] == "test" for x in r)
assert sorted(x["image"] for x in r) == sorted(["test_X.bin#%d" % i for i in range(3)] * 2)
assert sorted(round(x["eps"] * 255) for x in r) == [1, 1, 1, 2, 2, 2]' "$T/b.jsonl"
	ok $? "batch: one run per (image, eps), 6 runs of 3 steps each, with the data source and true labels"
else
	skip "batch: demo data not built"
	skip "batch: demo data not built"
fi

# -- batched sweeps (--batch): the same results and log as one image at a time -------------
# the demo data is generated in the build tree, the demo model is a source
# file: out of tree (distcheck) it is only under the source directory
MODEL="$(dirname "$ADVEX")/assets/demo-model.safetensors"
[ -f "$MODEL" ] || MODEL="${ADVEX_SRCDIR:-.}/assets/demo-model.safetensors"
if [ -f "$DATA/test_X.bin" ] && [ -f "$MODEL" ]; then
	SWEEP="--model $MODEL --data $DATA --images 0:24 --eps 2/255,8/255 --iters 6 --target 3 --attack ifgsm"
	for b in 1 4; do
		"$ADVEX" attack $SWEEP --batch $b --json --db "$T/sweep$b.db" >"$T/sweep$b.jsonl" 2>"$T/sweep$b.err"
		"$ADVEX" attack $SWEEP --early-stop --batch $b --json --no-log >>"$T/sweep$b.jsonl" 2>>"$T/sweep$b.err"
		"$ADVEX" runs list --db "$T/sweep$b.db" --json >"$T/sweep$b.runs"
	done
	[ -s "$T/sweep1.jsonl" ] && cmp -s "$T/sweep1.jsonl" "$T/sweep4.jsonl" &&
		[ "$(grep -c '"attempted"' "$T/sweep4.jsonl")" -eq 4 ]
	ok $? "--batch 4 and --batch 1 print the same JSON (with and without --early-stop): $(head -c 150 "$T/sweep4.jsonl")"
	py 'import json
def runs(path):
    r = [json.loads(l) for l in open(path)]
    return sorted((x["id"], x["image"], x["eps"], x["status"], x["n_steps"], x["success"],
                   x["final_iter"], x["true_label"]) for x in r)
a, b = runs(sys.argv[1]), runs(sys.argv[2])
assert a == b and len(a) == 2 * 24 - 2 * 3, (len(a), len(b), [(x, y) for x, y in zip(a, b) if x != y][:3])' \
		"$T/sweep1.runs" "$T/sweep4.runs"
	ok $? "and log the same runs, in the same order, with the same outcomes (42 runs: 24 images x 2 eps, less 3 whose label is the target)"

	# Ctrl-C with three runs in flight: each is closed as interrupted
	"$ADVEX" attack --model "$MODEL" --data "$DATA" --images 0:6 --eps 1/255 --iters 100000 \
		--batch 3 --db "$T/int3.db" --quiet >"$T/int3.out" 2>"$T/int3.err" &
	pid=$!
	"$PYTHON" - "$T/int3.db" <<'PY'
import sqlite3, sys, time
deadline = time.time() + 60
while time.time() < deadline:
    try:
        c = sqlite3.connect(sys.argv[1], timeout=5)
        n = c.execute('SELECT count(*) FROM steps WHERE run_id = 3').fetchone()[0]
        c.close()
        if n >= 2:
            break
    except sqlite3.Error:
        pass
    time.sleep(0.005)
PY
	kill -INT $pid
	wait $pid
	st=$?
	"$ADVEX" runs list --db "$T/int3.db" --json >"$T/int3.runs"
	[ $st -eq 1 ] && [ "$(grep -c 'recorded as interrupted' "$T/int3.err")" -eq 3 ] &&
		py 'import json
r = [json.loads(l) for l in open(sys.argv[1])]
assert sorted(x["id"] for x in r) == [1, 2, 3], r
assert all(x["status"] == "interrupted" and x["ended"] and x["final_probs"] and x["n_steps"] >= 2 for x in r)' "$T/int3.runs"
	ok $? "SIGINT stops a --batch 3 sweep: exit $st, the 3 runs in flight recorded as interrupted with their outcome so far"

	# Without --batch: 1 for the small demo model, 8 for VGG16 (capped by
	# the sweep's attacks); --batch overrides either.
	"$ADVEX" attack --model "$MODEL" --data "$DATA" --images 0:10 --eps 8/255 --iters 1 \
		--no-log >"$T/d1.out" 2>&1 &&
	"$ADVEX" attack --model "$MODEL" --data "$DATA" --images 0:10 --eps 8/255 --iters 1 \
		--batch 3 --no-log >"$T/d3.out" 2>&1 &&
	"$ADVEX" attack --arch vgg16 --data "$DATA" --images 0:10 --eps 8/255 --iters 1 \
		--no-log >"$T/d8.out" 2>&1 &&
	"$ADVEX" attack --arch vgg16 --data "$DATA" --images 0:5 --eps 8/255 --iters 1 \
		--no-log >"$T/d5.out" 2>&1 &&
	grep -q ', 1 per batch$' "$T/d1.out" && grep -q ', 3 per batch$' "$T/d3.out" &&
		grep -q ', 8 per batch$' "$T/d8.out" && grep -q ', 5 per batch$' "$T/d5.out"
	ok $? "default --batch: 1 for the demo model (0.07 GFLOP), 8 for VGG16, 5 for a 5-attack sweep; --batch 3 as given: $(head -n 1 "$T/d1.out"), $(head -n 1 "$T/d8.out" | sed 's/.*, //')"
else
	skip "--batch: demo model or data not built"
	skip "--batch: demo model or data not built"
	skip "--batch: demo model or data not built"
	skip "--batch: demo model or data not built"
fi

# -- an unwritable log fails before any work ---------------------------------------------
printf 'x' >"$T/plain"
"$ADVEX" attack $ATTACK --iters 5 --db "$T/plain/runs.db" --out "$T/never.png" >"$T/out" 2>&1
st=$?
[ $st -eq 1 ] && [ "$(wc -l <"$T/out")" -eq 1 ] && grep -q "$T/plain/runs.db" "$T/out" && [ ! -e "$T/never.png" ]
ok $? "an unwritable --db: exit $st, one line naming it, no work done ($(cat "$T/out"))"
printf 'not a database at all, just some text to be left alone\n' >"$T/text.db"
cp "$T/text.db" "$T/text.copy"
"$ADVEX" attack $ATTACK --iters 5 --db "$T/text.db" >"$T/out" 2>&1
[ $? -eq 1 ] && [ "$(wc -l <"$T/out")" -eq 1 ] && grep -q "not an advex run database" "$T/out" &&
	cmp -s "$T/text.db" "$T/text.copy"
ok $? "a --db that is no SQLite file: exit 1, left as it was ($(cat "$T/out"))"
if [ "$(id -u)" -ne 0 ]; then
	mkdir "$T/ro" && chmod 555 "$T/ro"
	"$ADVEX" attack $ATTACK --iters 5 --db "$T/ro/runs.db" >"$T/out" 2>&1
	[ $? -eq 1 ] && [ "$(wc -l <"$T/out")" -eq 1 ] && grep -q "$T/ro/runs.db" "$T/out"
	ok $? "a --db in a read-only directory: $(cat "$T/out")"
else
	skip "read-only directory: root ignores permissions"
fi
"$ADVEX" attack $ATTACK --iters 5 --db "$DB" --no-log >/dev/null 2>&1
ok $(($? != 2)) "--db with --no-log is a usage error"

# the parameters of the newer attacks and what they optimise (schema 4)
"$ADVEX" attack --arch vgg-compact --image "$T/x.png" --attack apgd-dlr --iters 2 --restarts 2 \
	--quantize --quiet --db "$T/obj.db" >/dev/null 2>&1 &&
	"$ADVEX" attack --arch vgg-compact --image "$T/x.png" --attack pgd --loss cw --iters 2 \
		--quiet --db "$T/obj.db" >/dev/null 2>&1 &&
	"$ADVEX" runs list --json --db "$T/obj.db" >"$T/obj.jsonl" &&
	py 'import json; r = [json.loads(l) for l in open(sys.argv[1])]
pgd, dlr = r
assert (dlr["attack"], dlr["loss"], dlr["objective"], dlr["restarts"], dlr["quantize"]) == \
    ("apgd-dlr", "ce", "dlr", 2, True), dlr
assert (pgd["objective"], pgd["restarts"], pgd["quantize"]) == ("cw", 1, False), pgd' "$T/obj.jsonl" &&
	"$ADVEX" runs show 1 --db "$T/obj.db" >"$T/obj.show" &&
	grep -q "^             objective dlr, restarts 2, binary steps 9, quantize yes$" "$T/obj.show" &&
	"$ADVEX" runs list --db "$T/obj.db" | grep -q " apgd-dlr/dlr/linf "
ok $? "apgd-dlr --restarts 2 --quantize: logged with objective dlr (loss column: ce), restarts 2, quantize; pgd --loss cw: objective cw"

# -- the default path, and --no-log ----------------------------------------------------
"$ADVEX" attack $ATTACK --iters 3 --no-log --quiet >/dev/null 2>&1 &&
	[ ! -e "$XDG_DATA_HOME" ] && [ ! -e "$HOME" ]
ok $? "--no-log writes nothing (no \$XDG_DATA_HOME/advex, no ~/.local/share/advex)"
"$ADVEX" attack $ATTACK --iters 3 --quiet >"$T/out" 2>&1 && [ -f "$XDG_DATA_HOME/advex/runs.db" ] &&
	"$ADVEX" runs list --json | grep -q '"id": 1'
ok $? "without --db: \$XDG_DATA_HOME/advex/runs.db, created on first use"
unset XDG_DATA_HOME
"$ADVEX" attack $ATTACK --iters 3 --quiet >"$T/out" 2>&1 && [ -f "$HOME/.local/share/advex/runs.db" ]
ok $? "without \$XDG_DATA_HOME: ~/.local/share/advex/runs.db"

echo "1..$n"
[ $fails -eq 0 ]
