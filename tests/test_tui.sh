#!/bin/sh
# test_tui.sh - the explorer in a real terminal: advex runs on the bundled
# demo inside a private tmux server (160x50), driven with send-keys and read
# back with capture-pane (plain text, and with -e for colours). Every check
# is on what a user sees: class names and probabilities, the loss changing
# after n, the gradient histogram, the prob-ce diagnosis, a run in Runs and
# in the database file, the exported PNG, a resize to 80x24 and back, help,
# replay, compare, quitting with the terminal restored, and Ctrl-C leaving
# the run marked interrupted. Waits poll the screen, never sleep blindly.
# Environment (set by make check): ADVEX, PYTHON. Without tmux the test is
# skipped, except under CI (CI set), where that is a failure.
ADVEX=${ADVEX:-./advex}
PYTHON=${PYTHON:-/usr/bin/python3}
WAIT=${TUI_WAIT:-20}		# seconds any one screen may take to appear
# grep and tmux see the screen's box and block characters as characters
LC_ALL=C.UTF-8
export LC_ALL

if ! command -v tmux >/dev/null 2>&1; then
	if [ -n "$CI" ]; then
		echo "1..1"
		echo "not ok 1 - tmux is not installed (required under CI)"
		exit 1
	fi
	echo "1..0 # SKIP tmux is not installed"
	exit 0
fi

T=$(mktemp -d)
SOCK="advex-test-$$"
unset TMUX TMUX_PANE
tm() { tmux -u -L "$SOCK" -f "$T/tmux.conf" "$@"; }
trap 'tm kill-server >/dev/null 2>&1; rm -rf "$T"' EXIT
n=0
fails=0
ok() { # ok COND-EXIT-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
# the terminal type tmux gives the pane: the best one this system knows
term=screen
for t in tmux-256color screen-256color; do
	if infocmp "$t" >/dev/null 2>&1; then term=$t; break; fi
done
cat >"$T/tmux.conf" <<EOF
set -g default-terminal $term
set -g remain-on-exit on
set -g history-limit 100
set -g status off
EOF
# never touch the user's own data or run log
mkdir -p "$T/xdg" "$T/home" "$T/out"
cat >"$T/explore.sh" <<EOF
#!/bin/sh
# the pane: the terminal mode before and after, advex in between
export XDG_DATA_HOME='$T/xdg' HOME='$T/home' LANG=C.UTF-8 LC_ALL=C.UTF-8
unset NO_COLOR ADVEX_COLOR
trap : INT
stty -a >'$T/stty.before'
'$ADVEX' --db '$T/runs.db' --out-dir '$T/out'
echo "advex-exit=\$?"
stty -a >'$T/stty.after'
EOF
chmod +x "$T/explore.sh"

# the visible screen; with HIST=1 the pane's history too (what a program
# prints after the explorer left may have scrolled up by then)
screen_of() {
	if [ -n "$HIST" ]; then
		tm capture-pane -p -S - -t "$1" >"$T/screen.txt" 2>/dev/null
	else
		tm capture-pane -p -t "$1" >"$T/screen.txt" 2>/dev/null
	fi
}
# wait_for SESSION EXTENDED-REGEX: poll the screen until the text shows
wait_for() {
	i=0
	while [ $i -lt $((WAIT * 20)) ]; do
		screen_of "$1"
		if grep -Eq -- "$2" "$T/screen.txt"; then return 0; fi
		sleep 0.05
		i=$((i + 1))
	done
	echo "# timed out waiting for /$2/; the screen was:" >&2
	sed 's/^/#   /' "$T/screen.txt" >&2
	return 1
}
keys() { tm send-keys -t "$1" "$2"; }
# box_has_blocks TITLE: the panel whose top edge holds TITLE has bars in it
box_has_blocks() {
	"$PYTHON" - "$T/screen.txt" "$1" <<'PY'
import sys
lines = open(sys.argv[1], encoding='utf-8').read().split('\n')
for i, l in enumerate(lines):
    c = l.find(sys.argv[2])
    if c < 0:
        continue
    left, right = l.rfind('╭', 0, c), l.find('╮', c)
    body = [x[left + 1:right] for x in lines[i + 1:i + 12]]
    sys.exit(0 if any(ch in '▁▂▃▄▅▆▇█' for x in body for ch in x) else 1)
sys.exit(1)
PY
}
db() { "$PYTHON" - "$T/runs.db" "$@"; }

echo "1..23"

# ---- start, Browse ------------------------------------------------------------
tm new-session -d -s ui -x 160 -y 50 "$T/explore.sh"
wait_for ui '1 Browse.*2 Attack.*3 Runs'
ok $? "the explorer starts in tmux with its screens in the tab bar"
grep -q "demo data" "$T/screen.txt"
ok $? "the title says which data and model it is (the bundled demo)"
wait_for ui '^ +[0-9]+ +[a-z]+ +[a-z]+ +[0-9]+\.[0-9]%'
ok $? "Browse lists images with true label, prediction and confidence"
wait_for ui 'pred +[a-z]+ [0-9.]+%'
ok $? "Browse previews the selected image with its prediction"

# ---- Attack --------------------------------------------------------------------
keys ui 2
wait_for ui 'loss ce at iter 0: [0-9.e+-]+'
ok $? "Attack shows the loss at iteration 0"
loss0=$(grep -Eo 'loss ce at iter 0: [0-9.e+-]+' "$T/screen.txt" | sed 's/.*: //')
grep -Eq '(stripes|disc|ring|square|triangle|star|cross|heart|arrow|checkerboard) +[·▏▎▍▌▋▊▉█]+ +[0-9.e+-]+' "$T/screen.txt"
ok $? "Attack shows class names with probability bars and values"
keys ui n
wait_for ui 'loss ce at iter 1: [0-9.e+-]+'
loss1=$(grep -Eo 'loss ce at iter 1: [0-9.e+-]+' "$T/screen.txt" | sed 's/.*: //')
[ -n "$loss1" ] && [ "$loss1" != "$loss0" ]
ok $? "n takes one step: iteration 1, loss $loss0 -> $loss1"
box_has_blocks '∂loss/∂pixel' && grep -Eq '∅ zero [0-9]+ .* NaN [0-9]+' "$T/screen.txt"
ok $? "the gradient histogram is drawn, with its zero and NaN counts"
box_has_blocks 'gradient L2 norm at each node'
ok $? "the per-layer gradient norms are drawn"
tm capture-pane -p -e -t ui | sed -n '4,20p' >"$T/color.txt"
[ "$(grep -c "$(printf '\033')\[[0-9;]*[34]8;[25];[0-9;]*m▀" "$T/color.txt")" -ge 10 ]
ok $? "the images are drawn in colour (capture-pane -e)"

# ---- the story: prob-ce flattens the loss, the diagnosis says why ---------------
keys ui r
keys ui l
wait_for ui 'below the clip'
ok $? "switching the loss to prob-ce shows the diagnosis line"
grep -q 'loss prob-ce' "$T/screen.txt"
ok $? "the parameter line shows the new loss"
keys ui Space
wait_for ui 'finished'
ok $? "Space runs the attack to the end"

# ---- Runs and the database --------------------------------------------------------
keys ui 3
wait_for ui 'done +test_X.bin#[0-9]+ +bim +prob-ce'
ok $? "the finished run appears in Runs"
db <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
rows = c.execute("select id, status, loss, (select count(*) from steps where run_id = runs.id) "
                 "from runs order by id").fetchall()
assert any(r[1] == 'done' and r[2] == 'prob-ce' and r[3] == 20 for r in rows), rows
assert any(r[1] == 'interrupted' and r[2] == 'ce' and r[3] >= 1 for r in rows), rows
PY
ok $? "the database file holds both runs with every step (the reset one interrupted)"
keys ui Enter
wait_for ui 'replay of run #[0-9]+ \(read-only\)'
ok $? "Enter replays a run read-only in the Attack layout"
keys ui Escape
wait_for ui 'sort: id'
keys ui g
keys ui Space
keys ui Space
keys ui c
wait_for ui 'parameters that differ'
ok $? "two marked runs open side by side in Compare"

# ---- export ---------------------------------------------------------------------------
keys ui 2
keys ui e
wait_for ui 'exported [^ ]+\.png'
png=$(grep -Eo 'exported [^ ]+\.png' "$T/screen.txt" | sed 's/^exported //')
[ -f "$png" ] && [ "$(head -c 8 "$png" | od -An -c | tr -d ' ')" = "211PNG\r\n032\n" ]
ok $? "e writes the adversarial PNG shown on screen ($png)"

# ---- resize -------------------------------------------------------------------------------
tm resize-window -t ui -x 80 -y 24
wait_for ui 'd: gradient'
ok_small=$?
[ $ok_small -eq 0 ] && [ "$(tm display -p -t ui '#{pane_width}x#{pane_height}')" = 80x24 ] &&
	head -1 "$T/screen.txt" | grep -q '^ advex  1 Browse' &&
	sed -n 24p "$T/screen.txt" | grep -q '? help' &&
	! grep -q 'gradient L2 norm at each node' "$T/screen.txt"
ok $? "at 80x24 the Attack screen re-lays out in its compact form"
tm resize-window -t ui -x 160 -y 50
wait_for ui 'gradient L2 norm at each node'
ok_big=$?
! grep -q 'd: gradient' "$T/screen.txt" && [ $ok_big -eq 0 ]
ok $? "back at 160x50 the full layout returns without leftovers"

# ---- help and quit ----------------------------------------------------------------------
keys ui '?'
wait_for ui 'Help · Esc closes'
ok $? "? opens the help with every key"
keys ui Escape
keys ui q
HIST=1 wait_for ui 'advex-exit=0'
r=$?
HIST=
[ $r -eq 0 ] && [ "$(tm display -p -t ui '#{pane_dead}')" = 1 ] &&
	cmp -s "$T/stty.before" "$T/stty.after" &&
	[ "$(db <<'PY'
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select count(*) from runs where status = 'running'").fetchone()[0])
PY
)" = 0 ]
ok $? "q quits with exit 0, the terminal mode restored and no run left running"

# ---- Ctrl-C in the middle of a run -----------------------------------------------------------
rm -f "$T/stty.before" "$T/stty.after"
tm new-session -d -s ctrlc -x 160 -y 50 "$T/explore.sh"
wait_for ctrlc 'loss ce at iter 0|1 Browse' >/dev/null
keys ctrlc 2
wait_for ctrlc 'loss ce at iter 0' >/dev/null
keys ctrlc n
wait_for ctrlc 'run #[0-9]+ open' >/dev/null
keys ctrlc C-c
HIST=1 wait_for ctrlc 'advex-exit=130'
r=$?
[ $r -eq 0 ] && cmp -s "$T/stty.before" "$T/stty.after" && db <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
last = c.execute("select status, (select count(*) from steps where run_id = runs.id) "
                 "from runs order by id desc limit 1").fetchone()
assert last[0] == 'interrupted' and last[1] >= 1, last
PY
ok $? "Ctrl-C restores the terminal and records the open run as interrupted"

[ $fails -eq 0 ] || exit 1
exit 0
