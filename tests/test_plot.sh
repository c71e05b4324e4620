#!/bin/sh
# test_plot.sh - advex runs plot draws what the log holds: a PNG of 900x500
# whose pixels at the data's points (success rates computed here from the
# log with SQL, losses and histogram counts read here) have the colour of
# their line, with labelled axes and a legend; controls show that a blank
# place is white and that the colour check tells the lines apart. An empty
# log is an error (exit 1, no file written), not a crash.
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

# pix.py: an 8-bit RGB PNG reader of our own (zlib, the five filters), the
# tEXt chunks, and the mapping of a data point to its pixel as advex runs
# plot --help and its source document it
cat >"$T/pix.py" <<'PY'
import sqlite3, struct, sys, zlib
# Tableau 10, the first two: the colours of the first and second line
BLUE, ORANGE = (31, 119, 180), (255, 127, 14)
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
    raw, stride, rows, prev = zlib.decompress(idat), 3 * w, [], bytearray(3 * w)
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
        rows.append(bytes(line))
        prev = line
    return w, h, rows, text
class Plot:
    def __init__(self, path):
        self.w, self.h, self.rows, self.text = read(path)
        self.x0, self.y0, self.x1, self.y1 = map(int, self.text['advex.plot_area'].split())
        self.xlo, self.xhi = map(float, self.text['advex.x_range'].split())
        self.ylo, self.yhi = map(float, self.text['advex.y_range'].split())
    def at(self, px, py):
        r = self.rows[int(py)]
        return tuple(r[3 * int(px):3 * int(px) + 3])
    def point(self, x, y):
        return (self.x0 + (x - self.xlo) / (self.xhi - self.xlo) * (self.x1 - self.x0),
                self.y1 - (y - self.ylo) / (self.yhi - self.ylo) * (self.y1 - self.y0))
    def colour_at(self, x, y):
        px, py = self.point(x, y)
        return self.at(round(px), round(py))
def near(c, want, tol=3):
    return all(abs(a - b) <= tol for a, b in zip(c, want))
PY
py() { # py CODE ARGS...: Python with pix.py importable
	code=$1
	shift
	PYTHONPATH="$T" "$PYTHON" -c "from pix import *
$code" "$@"
}

# two sweeps: ce and cw losses (the legend's order: ce first, blue)
SWEEP="--model $MODEL --data $DATA --images 0:12 --eps 1/255,3/255,8/255 --iters 3"
"$ADVEX" attack $SWEEP --db "$T/runs.db" >/dev/null 2>&1 &&
	"$ADVEX" attack $SWEEP --loss cw --db "$T/runs.db" >/dev/null 2>&1
ok $? "a log with two sweeps (ce and cw losses, 12 images x 3 epsilons)"

"$ADVEX" runs plot --db "$T/runs.db" --out "$T/curve.png" >"$T/out" 2>&1
ok $? "runs plot --kind sweep (the default) writes $T/curve.png: $(cat "$T/out")"
py 'p = Plot(sys.argv[1]); assert (p.w, p.h) == (900, 500), (p.w, p.h)
assert p.text["advex.plot"] == "sweep" and p.ylo <= 0 and p.yhi >= 100' "$T/curve.png"
ok $? "900x500 8-bit RGB, the success rate axis holds 0..100"
py '
p = Plot(sys.argv[1])
c = sqlite3.connect(sys.argv[2])
checked = 0
for loss, colour, other in (("ce", BLUE, ORANGE), ("cw", ORANGE, BLUE)):
    for eps, rate in c.execute("SELECT eps, 100.0 * sum(success) / count(*) FROM runs "
                               "WHERE loss = ? AND status = \"done\" GROUP BY eps", (loss,)):
        got = p.colour_at(255 * eps, rate)
        # where both lines share a point the one drawn last (cw) shows
        if loss == "ce" and c.execute("SELECT 100.0 * sum(success) / count(*) FROM runs "
                                      "WHERE loss = \"cw\" AND eps = ?", (eps,)).fetchone()[0] == rate:
            continue
        assert near(got, colour), (loss, eps, rate, got)
        assert not near(got, other), "control: the colours are told apart"
        checked += 1
assert checked >= 3, checked
print(checked)' "$T/curve.png" "$T/runs.db" >"$T/n" 2>&1
ok $? "at each (eps, success rate) computed here from the log, the pixel has its line's colour ($(cat "$T/n") points)"
py 'p = Plot(sys.argv[1])
assert p.at(p.x0 + 3, p.y0 + 3) == (255, 255, 255)
# control: the same check on the rate + 50 points (off every line) fails
c = sqlite3.connect(sys.argv[2])
eps, rate = c.execute("SELECT eps, 100.0 * sum(success) / count(*) FROM runs WHERE loss = \"ce\" "
                      "GROUP BY eps ORDER BY eps LIMIT 1").fetchone()
assert not near(p.colour_at(255 * eps, (rate + 50) % 100), BLUE)' "$T/curve.png" "$T/runs.db"
ok $? "control: a blank corner is white, a point off the line is not its colour"
py 'p = Plot(sys.argv[1])
# legend: a swatch of each colour right of the plot, dark text beside it
assert near(p.at(p.x1 + 24, p.y0 + 10), BLUE) and near(p.at(p.x1 + 24, p.y0 + 32), ORANGE)
dark = lambda x0, x1, y0, y1: sum(1 for y in range(y0, y1) for x in range(x0, x1) if sum(p.at(x, y)) < 200)
assert dark(p.x1 + 40, p.w, p.y0, p.y0 + 20) > 20, "legend text"
assert dark(p.x0, p.x1, p.y1 + 25, p.h) > 50, "x axis label"
assert dark(0, p.x0 - 40, p.y0, p.y1) > 50, "y axis label"
assert dark(p.x0, p.x1, 0, p.y0 - 5) > 50, "title"' "$T/curve.png"
ok $? "a legend (a swatch per line, with its name) and labelled axes"

# loss of one run: every step's loss at its iteration
id=$("$PYTHON" -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT run_id FROM steps GROUP BY run_id HAVING max(loss) - min(loss) > 0.5 ORDER BY run_id LIMIT 1").fetchone()[0])' "$T/runs.db")
"$ADVEX" runs plot --db "$T/runs.db" --kind loss --runs "$id" --out "$T/loss.png" >/dev/null 2>&1 &&
	py 'p = Plot(sys.argv[1]); c = sqlite3.connect(sys.argv[2])
steps = list(c.execute("SELECT iter, loss FROM steps WHERE run_id = ? ORDER BY iter", (int(sys.argv[3]),)))
assert len(steps) == 3 and p.text["advex.plot"] == "loss"
for it, loss in steps:
    assert near(p.colour_at(it, loss), BLUE), (it, loss, p.colour_at(it, loss))
# control: the loss mirrored within the range is not on the line
it, loss = steps[0]
assert not near(p.colour_at(it, p.yhi + p.ylo - loss), BLUE)' "$T/loss.png" "$T/runs.db" "$id"
ok $? "--kind loss --runs $id: each step's loss (read here) is on the line, its mirror is not"

# the histogram of step 1 of that run: the fullest decade's bar
"$ADVEX" runs plot --db "$T/runs.db" --kind hist --runs "$id" --step 1 --out "$T/hist.png" >/dev/null 2>&1 &&
	py 'import json
p = Plot(sys.argv[1]); c = sqlite3.connect(sys.argv[2])
h = json.loads(c.execute("SELECT hist FROM steps WHERE run_id = ? AND iter = 1", (int(sys.argv[3]),)).fetchone()[0])
assert len(h) == 14 and p.text["advex.plot"] == "hist"
top = max(range(14), key=lambda i: h[i])
# one run: its bar fills the middle third of the decade [-12 + i, -11 + i)
assert near(p.colour_at(-12 + top + 0.5, h[top] / 2), BLUE), p.colour_at(-12 + top + 0.5, h[top] / 2)
empty = [i for i in range(14) if h[i] == 0]
assert empty and p.colour_at(-12 + empty[0] + 0.5, p.yhi / 2) == (255, 255, 255)' "$T/hist.png" "$T/runs.db" "$id"
ok $? "--kind hist --step 1: the fullest decade's bar has the run's colour, an empty decade is white"

# ---- errors -------------------------------------------------------------------------------
: >"$T/empty.db"
"$ADVEX" runs plot --db "$T/empty.db" --out "$T/e.png" >"$T/e.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "no finished runs to plot" "$T/e.out" && [ ! -e "$T/e.png" ]
ok $? "an empty log: exit $rc, $(cat "$T/e.out"), no file"
"$ADVEX" runs plot --db "$T/empty.db" --kind loss --out "$T/e.png" >"$T/e.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "no runs to plot" "$T/e.out" && [ ! -e "$T/e.png" ]
ok $? "--kind loss on an empty log: exit $rc, $(cat "$T/e.out")"
"$ADVEX" runs plot --db "$T/runs.db" --kind hist --runs "$id" --step 99 --out "$T/e.png" >"$T/e.out" 2>&1
[ $? -eq 1 ] && grep -q "has no step 99" "$T/e.out" && [ ! -e "$T/e.png" ]
ok $? "--step 99 of a 3-step run: $(cat "$T/e.out")"
mkdir "$T/adir"
"$ADVEX" runs plot --db "$T/runs.db" --out "$T/adir" >"$T/e.out" 2>&1
[ $? -eq 1 ] && grep -q "adir" "$T/e.out" && [ -z "$(ls "$T/adir")" ] && [ -z "$(ls "$T" | grep tmp)" ]
ok $? "--out a directory is refused before drawing: $(cat "$T/e.out")"
"$ADVEX" runs plot --db "$T/runs.db" --kind pie --out "$T/e.png" >"$T/e.out" 2>&1
[ $? -eq 2 ]
ok $? "--kind pie: usage error"

echo "1..$n"
[ $fails -eq 0 ]
