#!/bin/sh
# test_sweep.sh - sharded sweeps end to end on the bundled demo model and
# data: attack --shard I/N for N = 1, 3, 7, each shard in its own log
# (--db with %i/%n), merged with runs merge, equal the unsharded run run by
# run (image, eps -> outcome, final prediction, every step's loss) and in
# the runs sweep table (== what the unsharded attack printed); the shards
# are disjoint, cover the range and are balanced; merging twice changes
# nothing; a part of a newer schema is refused and left byte for byte; a
# part killed with kill -9 mid-run merges with that run interrupted (and
# one still running is left out); --shard slurm maps the array's ids;
# eval --shard adds up to the whole; advex-sweep-local gives the same
# table. Controls show each comparison can fail.
# Environment (set by make check): ADVEX, ADVEX_SRCDIR, PYTHON.
ADVEX=${ADVEX:-./advex}
PYTHON=${PYTHON:-/usr/bin/python3}
SRCDIR=${ADVEX_SRCDIR:-.}
T=$(mktemp -d)
trap 'kill -9 $bg 2>/dev/null; rm -rf "$T"' EXIT
bg=
n=0
fails=0
ok() { # ok COND-EXIT-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
XDG_DATA_HOME="$T/xdg"
HOME="$T/home"
export XDG_DATA_HOME HOME
DATA="$(dirname "$ADVEX")/assets/demo/stl10_binary"
MODEL="$(dirname "$ADVEX")/assets/demo-model.safetensors"
# the model is a source file (a VPATH build, make distcheck, has it there)
[ -f "$MODEL" ] || MODEL="$(cd "${ADVEX_SRCDIR:-.}" && pwd)/assets/demo-model.safetensors"
if [ ! -f "$DATA/test_X.bin" ] || [ ! -f "$MODEL" ]; then
	echo "1..0 # SKIP demo model or data not built"
	exit 0
fi
# 23 images: 7 shards of 3 or 4, 3 shards of 7 or 8
SWEEP="--model $MODEL --data $DATA --images 2:25 --eps 1/255,3/255 --iters 4"

# sweep_dump.py A B: the two logs hold the same runs (by image and eps)
# with the same outcomes and steps
cp "$SRCDIR/tests/sweep_dump.py" "$T/dump.py"
# canon.py: every row of every table, ids included, as text: equal output
# means the log's content did not change
cat >"$T/canon.py" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
    for row in c.execute('SELECT * FROM "%s" ORDER BY rowid' % t):
        print(t, repr(row))
PY
table() { # table FILE: the sweep table from its clean-accuracy line on
	sed -n '/^clean accuracy/,$p' "$1"
}

# ---- the unsharded run ------------------------------------------------------------
"$ADVEX" attack $SWEEP --db "$T/all.db" >"$T/all.out" 2>"$T/all.err"
ok $? "the unsharded sweep: 23 images x 2 epsilons ($(sed -n 2p "$T/all.out"))"
"$ADVEX" runs sweep --db "$T/all.db" >"$T/all.sweep" 2>&1 &&
	table "$T/all.out" >"$T/a.t" && table "$T/all.sweep" >"$T/b.t" && [ -s "$T/a.t" ] &&
	cmp -s "$T/a.t" "$T/b.t"
ok $? "runs sweep on its log prints the table attack printed, line for line"

# ---- sharded, merged -----------------------------------------------------------------
for N in 1 3 7; do
	mkdir -p "$T/n$N"
	i=0 rc=0
	while [ $i -lt $N ]; do
		"$ADVEX" attack $SWEEP --shard $i/$N --db "$T/n$N/part-%i-of-%n.db" \
			>"$T/n$N/out$i" 2>&1 || rc=1
		i=$((i + 1))
	done
	[ $rc -eq 0 ] && [ -f "$T/n$N/part-0-of-$N.db" ] && [ -f "$T/n$N/part-$((N - 1))-of-$N.db" ]
	ok $? "N=$N: $N shards ran, each into its own log part-I-of-$N.db"
	"$PYTHON" - "$T/n$N" "$N" <<'PY'
import sqlite3, sys
d, N = sys.argv[1], int(sys.argv[2])
parts = [set(r[0] for r in sqlite3.connect("%s/part-%d-of-%d.db" % (d, i, N)).execute(
    "SELECT DISTINCT image_ref FROM runs")) for i in range(N)]
want = set("test_X.bin#%d" % k for k in range(2, 25))
assert set().union(*parts) == want, "not the range"
assert sum(len(p) for p in parts) == len(want), "an image in two shards"
sizes = [len(p) for p in parts]
assert max(sizes) - min(sizes) <= 1, sizes
# contiguous blocks in shard order
idx = [sorted(int(x.split("#")[1]) for x in p) for p in parts]
assert all(b == list(range(b[0], b[0] + len(b))) for b in idx) and \
    all(idx[i][-1] < idx[i + 1][0] for i in range(N - 1)), idx
PY
	ok $? "N=$N: the shards are disjoint, contiguous, balanced and cover images 2..24"
	"$ADVEX" runs merge --into "$T/n$N/merged.db" "$T/n$N"/part-*-of-$N.db >"$T/n$N/merge.out" 2>&1
	ok $? "N=$N: merged ($(tail -1 "$T/n$N/merge.out" | cut -c1-120))"
	got=$("$PYTHON" "$T/dump.py" "$T/all.db" "$T/n$N/merged.db" 2>&1)
	ok $? "N=$N: merged == unsharded run by run: outcome, final prediction and loss, clean prediction, every step's loss ($got runs)"
	"$ADVEX" runs sweep --db "$T/n$N/merged.db" >"$T/n$N/sweep" 2>&1 &&
		table "$T/n$N/sweep" >"$T/b.t" && cmp -s "$T/a.t" "$T/b.t"
	ok $? "N=$N: runs sweep of the merged log == the unsharded attack's table"
done

# controls: a merge missing one shard is caught by both comparisons
"$ADVEX" runs merge --into "$T/partial.db" "$T/n3/part-0-of-3.db" "$T/n3/part-2-of-3.db" >/dev/null 2>&1
! "$PYTHON" "$T/dump.py" "$T/all.db" "$T/partial.db" >/dev/null 2>&1
ok $? "control: a merge without shard 1 of 3 differs run by run"
"$ADVEX" runs sweep --db "$T/partial.db" >"$T/p.sweep" 2>&1
table "$T/p.sweep" >"$T/b.t"
! cmp -s "$T/a.t" "$T/b.t"
ok $? "control: ... and in the sweep table"
# a control on the run-by-run check itself: one changed loss is a difference
cp "$T/n3/merged.db" "$T/tampered.db"
"$PYTHON" -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE steps SET loss = loss + 1e-6 WHERE id = 17"); c.commit()' "$T/tampered.db"
! "$PYTHON" "$T/dump.py" "$T/all.db" "$T/tampered.db" >/dev/null 2>&1
ok $? "control: one step's loss changed by 1e-6 is caught"

# ---- merging twice changes nothing ------------------------------------------------
"$PYTHON" "$T/canon.py" "$T/n7/merged.db" >"$T/c1"
"$ADVEX" runs merge --into "$T/n7/merged.db" "$T/n7"/part-*-of-7.db >"$T/again.out" 2>&1 &&
	"$PYTHON" "$T/canon.py" "$T/n7/merged.db" >"$T/c2" && [ -s "$T/c1" ] && cmp -s "$T/c1" "$T/c2" &&
	[ "$(grep -c 'merged 0 runs' "$T/again.out")" -eq 7 ]
ok $? "merging the 7 parts again changes no row of the merged log ($(head -1 "$T/again.out" | cut -c1-100))"
# control: a new part does change it
"$ADVEX" attack $SWEEP --images 30:31 --db "$T/extra.db" >/dev/null 2>&1
"$ADVEX" runs merge --into "$T/n7/merged.db" "$T/extra.db" >/dev/null 2>&1
"$PYTHON" "$T/canon.py" "$T/n7/merged.db" >"$T/c3"
! cmp -s "$T/c1" "$T/c3" && grep -q 'test_X.bin#30' "$T/c3"
ok $? "control: merging a new part does add its runs (the comparison sees it)"

# ---- audits and exports follow: two logs with an audit each, one with an export ----
"$ADVEX" audit --model "$MODEL" --data "$DATA" --images 0:3 --iters 3 --db "$T/au1.db" >/dev/null 2>&1 &&
	"$ADVEX" audit --model "$MODEL" --data "$DATA" --images 3:5 --iters 3 --db "$T/au2.db" >/dev/null 2>&1 &&
	"$ADVEX" attack --model "$MODEL" --data "$DATA" --image 7 --iters 3 --out "$T/x7.png" \
		--db "$T/au2.db" >/dev/null 2>&1
ok $? "two logs: an audit of images 0..2, and one of 3..4 with an attack exported to PNG"
"$ADVEX" runs merge --into "$T/au.db" "$T/au1.db" "$T/au2.db" >"$T/au.out" 2>&1 &&
	"$PYTHON" - "$T/au1.db" "$T/au2.db" "$T/au.db" <<'PY'
import sqlite3, sys
def rows(path):
    c = sqlite3.connect(path)
    au = sorted(c.execute("SELECT uuid, n_images, checks, n_pass, n_warn, n_fail FROM audits"))
    im = sorted(c.execute("SELECT a.uuid, i.image_index, r.uuid, i.record FROM audit_images i "
                          "JOIN audits a ON a.id = i.audit_id LEFT JOIN runs r ON r.id = i.run_id"))
    ex = sorted(c.execute("SELECT r.uuid, e.path, e.pred, e.success FROM exports e JOIN runs r ON r.id = e.run_id"))
    return au, im, ex
a1, a2, m = rows(sys.argv[1]), rows(sys.argv[2]), rows(sys.argv[3])
want = tuple(sorted(x + y) for x, y in zip(a1, a2))
assert len(m[0]) == 2 and len(m[1]) == 5 and len(m[2]) == 1, [len(x) for x in m]
assert all(r[2] is not None for r in m[1]), "an audited run lost"
assert m == want
PY
ok $? "merged: 2 audits, their 5 image records pointing at the same runs (by UUID), the export with its run ($(grep -o '[0-9]* audits ([0-9]* already there)' "$T/au.out" | tr '\n' ' '))"
"$PYTHON" "$T/canon.py" "$T/au.db" >"$T/au1"
"$ADVEX" runs merge --into "$T/au.db" "$T/au2.db" "$T/au1.db" >/dev/null 2>&1 &&
	"$PYTHON" "$T/canon.py" "$T/au.db" >"$T/au2" && cmp -s "$T/au1" "$T/au2"
ok $? "merging them again changes nothing"
# control: a table MERGE_TABLES lists but cannot copy is an error, not a silent loss
cp "$T/au1.db" "$T/bad-part.db"
cp "$T/au.db" "$T/bad-into.db"
"$PYTHON" -c 'import sqlite3, sys
for f in sys.argv[1:]:
    c = sqlite3.connect(f); c.execute("DROP TABLE exports"); c.execute("CREATE TABLE exports (id INTEGER PRIMARY KEY, note TEXT)"); c.commit()' "$T/bad-part.db" "$T/bad-into.db"
"$PYTHON" -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE runs SET uuid = uuid || \"x\""); c.execute("UPDATE audits SET uuid = uuid || \"x\""); c.commit()' "$T/bad-part.db"
"$PYTHON" "$T/canon.py" "$T/bad-into.db" >"$T/au1"
"$ADVEX" runs merge --into "$T/bad-into.db" "$T/bad-part.db" >"$T/bad.out" 2>&1
rc=$?
"$PYTHON" "$T/canon.py" "$T/bad-into.db" >"$T/au2"
[ $rc -eq 1 ] && grep -q "bad-part.db: table exports has no column run_id" "$T/bad.out" && cmp -s "$T/au1" "$T/au2"
ok $? "control: an exports table without run_id stops that part, nothing merged: $(cut -c1-120 "$T/bad.out")"

# ---- a newer part is refused and left as it was -------------------------------------
cp "$T/n3/part-1-of-3.db" "$T/newer.db"
"$PYTHON" -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); v = c.execute("PRAGMA user_version").fetchone()[0]; c.execute("PRAGMA user_version = %d" % (v + 1)); c.commit()' "$T/newer.db"
before=$(sha256sum "$T/newer.db" | cut -d' ' -f1)
"$PYTHON" "$T/canon.py" "$T/n3/merged.db" >"$T/m1"
"$ADVEX" runs merge --into "$T/n3/merged.db" "$T/newer.db" >"$T/newer.out" 2>&1
rc=$?
after=$(sha256sum "$T/newer.db" | cut -d' ' -f1)
"$PYTHON" "$T/canon.py" "$T/n3/merged.db" >"$T/m2"
[ $rc -eq 1 ] && grep -q "newer.db: written by a newer advex" "$T/newer.out" &&
	grep -q "not modified" "$T/newer.out"
ok $? "a part of a newer schema is refused, exit 1: $(cat "$T/newer.out")"
[ "$before" = "$after" ] && cmp -s "$T/m1" "$T/m2"
ok $? "... its sha256 is unchanged ($before), and so is the merged log"

# ---- a part killed mid-run ------------------------------------------------------------
"$ADVEX" attack --model "$MODEL" --data "$DATA" --images 0:4 --eps 1/255 --iters 100000 \
	--db "$T/killed.db" --quiet >/dev/null 2>&1 &
bg=$!
"$PYTHON" - "$T/killed.db" <<'PY'
import sqlite3, sys, time
for _ in range(600):
    try:
        c = sqlite3.connect(sys.argv[1])
        if c.execute("SELECT count(*) FROM steps").fetchone()[0] >= 5:
            sys.exit(0)
    except sqlite3.Error:
        pass
    time.sleep(0.05)
sys.exit(1)
PY
ok $? "an attack of 100000 iterations is running and logging steps"
"$ADVEX" runs merge --into "$T/live.db" "$T/killed.db" >"$T/live.out" 2>&1 &&
	grep -q "merged 0 runs.*1 still running, left out" "$T/live.out" &&
	[ "$("$PYTHON" -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM runs").fetchone()[0])' "$T/live.db")" = 0 ]
ok $? "while its writer lives, the run is left out: $(cat "$T/live.out" | cut -c1-110)"
kill -9 $bg
wait $bg 2>/dev/null
bg=
"$ADVEX" runs merge --into "$T/live.db" "$T/killed.db" >"$T/killed.out" 2>&1 &&
	grep -q "merged 1 run (1 interrupted)" "$T/killed.out"
ok $? "after kill -9 it merges: $(cut -c1-120 "$T/killed.out")"
"$PYTHON" - "$T/live.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
(st, n, u), = c.execute("SELECT status, (SELECT count(*) FROM steps WHERE run_id = r.id), uuid FROM runs r")
assert st == "interrupted" and n >= 5 and len(u) == 36, (st, n, u)
PY
ok $? "... marked interrupted in the merged log, with its steps and UUID"

# ---- --shard and --db errors, --shard slurm ---------------------------------------------
"$ADVEX" attack $SWEEP --shard 3/3 --no-log >"$T/e1" 2>&1
[ $? -eq 2 ] && grep -q "I must be below N" "$T/e1"
ok $? "--shard 3/3: usage error: $(head -1 "$T/e1")"
"$ADVEX" attack $SWEEP --shard 1/x --no-log >"$T/e2" 2>&1
[ $? -eq 2 ] && grep -q "want I/N" "$T/e2"
ok $? "--shard 1/x: usage error: $(head -1 "$T/e2")"
env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_COUNT "$ADVEX" attack $SWEEP --shard slurm --no-log >"$T/e3" 2>&1
[ $? -eq 2 ] && grep -q "SLURM_ARRAY_TASK_ID" "$T/e3"
ok $? "--shard slurm outside an array: usage error naming the variables"
"$ADVEX" attack $SWEEP --shard 0/2 --db "$T/bad%x.db" >"$T/e4" 2>&1
[ $? -eq 2 ] && grep -q "'%x' is not" "$T/e4"
ok $? "--db with %x: usage error: $(head -1 "$T/e4")"
"$ADVEX" attack --model "$MODEL" --data "$DATA" --images 2:4 --eps 1/255 --iters 2 --shard 5/7 \
	--db "$T/empty-%i.db" >"$T/empty.out" 2>&1 && grep -q "no images" "$T/empty.out" &&
	"$ADVEX" runs merge --into "$T/empty-all.db" "$T/empty-5.db" 2>&1 | grep -q "merged 0 runs"
ok $? "more shards than images: shard 5 of 7 of 2 images has none, logs and merges nothing"
# an array --array=5-7: ids 5, 6, 7 are shards 0, 1, 2 of 3
SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_MAX=7 SLURM_ARRAY_TASK_COUNT=3 \
	"$ADVEX" attack $SWEEP --shard slurm --db "$T/s-%i-of-%n-%%.db" >"$T/s.out" 2>&1 &&
	[ -f "$T/s-2-of-3-%.db" ] && "$PYTHON" "$T/dump.py" "$T/n3/part-2-of-3.db" "$T/s-2-of-3-%.db" >/dev/null
ok $? "--shard slurm with ids 5..7: task 7 is shard 2 of 3, the same runs as --shard 2/3 (log s-2-of-3-%.db)"
SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=8 SLURM_ARRAY_TASK_COUNT=5 \
	"$ADVEX" attack $SWEEP --shard slurm --no-log >"$T/e5" 2>&1
[ $? -eq 2 ] && grep -q "not 5 consecutive" "$T/e5"
ok $? "--array=0-8:2 (ids not consecutive) is refused: $(head -1 "$T/e5" | cut -c1-100)"

# ---- eval --shard ---------------------------------------------------------------------------
"$ADVEX" eval --model "$MODEL" --data "$DATA" --limit 50 --json >"$T/ev.json" 2>/dev/null
for i in 0 1 2; do
	"$ADVEX" eval --model "$MODEL" --data "$DATA" --limit 50 --shard $i/3 --json >"$T/ev$i.json" 2>/dev/null
done
"$PYTHON" - "$T" <<'PY'
import json, sys
d = sys.argv[1]
whole = json.load(open(d + "/ev.json"))
parts = [json.load(open("%s/ev%d.json" % (d, i))) for i in range(3)]
assert [p["total"] for p in parts] == [16, 17, 17], [p["total"] for p in parts]
summed = [[sum(p["confusion"][r][c] for p in parts) for c in range(len(whole["confusion"]))]
          for r in range(len(whole["confusion"]))]
assert summed == whole["confusion"] and sum(p["correct"] for p in parts) == whole["correct"]
PY
ok $? "eval --shard I/3 on 50 images: 16+17+17 images, the confusion matrices add up to the whole"

# ---- GNU parallel ----------------------------------------------------------------------------
if command -v parallel >/dev/null 2>&1; then
	ADVEX="$ADVEX" "$SRCDIR/tools/advex-sweep-local" -j 2 -n 4 "$T/local" $SWEEP >"$T/local.out" 2>"$T/local.err" &&
		table "$T/local.out" >"$T/b.t" && cmp -s "$T/a.t" "$T/b.t" &&
		"$PYTHON" "$T/dump.py" "$T/all.db" "$T/local/all.db" >/dev/null
	ok $? "advex-sweep-local -j 2 -n 4: the unsharded table and runs"
else
	echo "ok $((n = n + 1)) - # SKIP GNU parallel is not installed (apt-get install parallel)"
fi

echo "1..$n"
[ $fails -eq 0 ]
