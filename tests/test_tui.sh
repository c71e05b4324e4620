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
mkdir -p "$T/xdg/advex" "$T/home" "$T/out"
# the guided tour opens by itself on a first start on the demo: the
# sessions below start as a returning user would (the tour has its own)
: >"$T/xdg/advex/tour-seen"
cat >"$T/explore.sh" <<EOF
#!/bin/sh
# the pane: the terminal mode before and after, advex in between
export XDG_DATA_HOME='$T/xdg' HOME='$T/home' LANG=C.UTF-8 LC_ALL=C.UTF-8
unset NO_COLOR ADVEX_COLOR COLORTERM
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
# wait_gone SESSION EXTENDED-REGEX: poll until the text is off the screen
wait_gone() {
	i=0
	while [ $i -lt $((WAIT * 20)) ]; do
		screen_of "$1"
		if ! grep -Eq -- "$2" "$T/screen.txt"; then return 0; fi
		sleep 0.05
		i=$((i + 1))
	done
	echo "# timed out waiting for /$2/ to go; the screen was:" >&2
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

echo "1..52"

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
keys ui a
wait_for ui 'ready at 0/[0-9]+.*back to the clean image'
ok $? "a parameter change after a finished run starts again from the clean image, and says so"

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
! grep -q 'every sweep' "$T/screen.txt"
no_curve_before=$?
wait_for ui 'parameters that differ'
ok $? "two marked runs open side by side in Compare"
grep -q 'success rate (%) vs ε×255, every sweep' "$T/screen.txt" && [ $no_curve_before -eq 0 ]
ok $? "beside the losses, the log's sweep curve (success rate vs epsilon; not on the Runs screen)"

# ---- export ---------------------------------------------------------------------------
keys ui 2
keys ui e
wait_for ui 'exported [^ ]+\.png'
png=$(grep -Eo 'exported [^ ]+\.png' "$T/screen.txt" | sed 's/^exported //')
[ -f "$png" ] && [ "$(head -c 8 "$png" | od -An -c | tr -d ' ')" = "211PNG\r\n032\n" ]
ok $? "e writes the adversarial PNG shown on screen ($png)"
wait_for ui 'read back' >/dev/null &&
	[ "$(db "$png" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("select count(*) from exports where path = ?", (sys.argv[2],)).fetchone()[0])
PY
)" = 1 ]
ok $? "the export is read back and classified again, said and logged in exports ($(grep -Eo 'read back[^│]*' "$T/screen.txt" | head -1 | cut -c1-80))"

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

# ---- issue 17: terminals, keys, mouse, status, small sizes ----------------------------
# run.sh: the explorer with the given options, in a pane whose TERM and
# colour variables the session command sets
cat >"$T/run.sh" <<EOF
#!/bin/sh
export XDG_DATA_HOME='$T/xdg' HOME='$T/home' LANG=C.UTF-8 LC_ALL=C.UTF-8
'$ADVEX' --db '$T/runs2.db' --out-dir '$T/out' "\$@"
echo "advex-exit=\$?"
sleep 30
EOF
chmod +x "$T/run.sh"
# start NAME W H ENV... [-- ARGS...]: a fresh session
start() {
	s=$1 w=$2 h=$3
	shift 3
	envs=""
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs="$envs $1"; shift; done
	[ "$1" = -- ] && shift
	tm new-session -d -s "$s" -x "$w" -y "$h" \
		"env -u NO_COLOR -u ADVEX_COLOR -u COLORTERM $envs '$T/run.sh' $*"
}
status_line() { tail -n 1 "$T/screen.txt"; }

# keys: terminfo's xterm-256color says Home is ESC O H; tmux sends ESC [ 1 ~.
# Before, '[' halved alpha and '1' jumped to Browse.
start keys 160 50 TERM=xterm-256color
wait_for keys '1 Browse' >/dev/null
keys keys 2
wait_for keys 'loss ce at iter 0' >/dev/null
tm send-keys -t keys Home End PPage NPage
# the raw variants too, and sequences nobody maps (Ctrl-Home, F13, a paste start)
tm send-keys -t keys -l "$(printf '\033[1~\033[4~\033[7~\033[8~\033OH\033[5~\033[6~\033[1;5H\033[25~\033[200~')"
keys keys b
wait_for keys 'probabilities at iter 0 \(linear\)' >/dev/null
sed -n 2p "$T/screen.txt" | grep -q 'α 1/255' && sed -n 2p "$T/screen.txt" | grep -q '^ a bim' &&
	! grep -q 'sort: id' "$T/screen.txt"
ok $? "Home/End/PgUp/PgDn and unknown escape sequences under TERM=xterm-256color change neither α nor the screen"
# Home means Home: on Browse it selects the first image
keys keys 1
wait_for keys 'image #0 ' >/dev/null
keys keys j
keys keys j
wait_for keys 'image #2 ' >/dev/null
tm send-keys -t keys -l "$(printf '\033[1~')"
wait_for keys 'image #0 · 1 of'
ok $? "ESC [ 1 ~ is Home on Browse (the first image)"

# status: each screen its own state and keys
status_line | grep -q 'predictions' && ! status_line | grep -Eq 'n[ :]+one step|Space:? run|ready at'
ok $? "the status line on Browse names its own state and no attack keys"
# (the status line is drawn last: wait for it, not for the screen above it)
keys keys 2
wait_for keys '^ ready at 0/20 .*n one step'
ok $? "the status line on Attack names the attack's state and its keys"
keys keys 3
wait_for keys '^ [0-9]+ of [0-9]+ runs? shown' >/dev/null &&
	! status_line | grep -q 'ready at'
ok $? "the status line on Runs says what Runs shows"

# mouse: a click (an SGR report, what tmux passes for a real one) on a tab
click() { # click SESSION ROW COL (1-based)
	tm send-keys -t "$1" -l "$(printf '\033[<0;%d;%dM\033[<0;%d;%dm' "$3" "$2" "$3" "$2")"
}
tab_col() { # the column of tab "$1" in the tab bar
	head -n 1 "$T/screen.txt" | awk -v t=" $1" '{ print index($0, t) + 2 }'
}
keys keys 1
wait_for keys 'misclassified' >/dev/null
click keys 1 "$(tab_col '3 Runs')"
wait_for keys 'sort: id'
ok $? "a mouse click on the Runs tab switches to Runs"
click keys 1 "$(tab_col '1 Browse')"
wait_for keys 'misclassified' >/dev/null
tm send-keys -t keys -l "$(printf '\033[<65;10;10M')"
wait_for keys 'image #3 '
ok $? "the mouse wheel scrolls the Browse list"
click keys 6 10
wait_for keys 'image #2 · 3 of'
ok $? "a click on a Browse row selects that image"
# control: --no-mouse leaves clicks alone
start nomouse 160 50 TERM=xterm-256color -- --no-mouse
wait_for nomouse 'misclassified' >/dev/null
click nomouse 1 "$(tab_col '3 Runs')"
keys nomouse v
wait_for nomouse ' v grid' >/dev/null
! grep -q 'sort: id' "$T/screen.txt"
ok $? "with --no-mouse the same click does nothing"
tm kill-session -t nomouse

# true colour: COLORTERM=truecolor on a terminfo entry without RGB
start tc 160 50 TERM=xterm-256color COLORTERM=truecolor
wait_for tc 'misclassified' >/dev/null
keys tc 2
wait_for tc 'loss ce at iter 0' >/dev/null
sleep 0.3
tm capture-pane -p -e -t tc | sed -n '4,20p' >"$T/tc.txt"
rgb=$(grep -o "$(printf '\033')\[38;2;" "$T/tc.txt" | wc -l)
[ "$rgb" -ge 1000 ]
ok $? "COLORTERM=truecolor draws the images with 38;2/48;2 SGR ($rgb cells)"
# control: the same terminal without COLORTERM draws them in 256 colours
keys keys 2
wait_for keys 'loss ce at iter' >/dev/null
tm capture-pane -p -e -t keys | sed -n '4,20p' >"$T/c256.txt"
! grep -q "$(printf '\033')\[38;2;" "$T/c256.txt" && grep -q "$(printf '\033')\[38;5;" "$T/c256.txt"
ok $? "without COLORTERM the same pane has no 38;2 (the check above can fail)"
# frames change under emulated direct colour: every image cell stays 24-bit
keys tc Space
wait_for tc 'finished' >/dev/null
keys tc '?'
wait_for tc 'Help · Esc closes' >/dev/null
keys tc Escape
wait_for tc 'gradient L2 norm' >/dev/null
sleep 0.3
tm capture-pane -p -e -t tc | sed -n '4,27p' >"$T/tc2.txt"
! grep -q "$(printf '\033')\[[34]8;5;" "$T/tc2.txt" &&
	[ "$(grep -o "$(printf '\033')\[38;2;" "$T/tc2.txt" | wc -l)" -ge 1000 ]
ok $? "after a run and the help overlay the images are still all 24-bit (no 256-colour cell left)"
tm kill-session -t tc

# NO_COLOR: the marker columns hold marks, not underlined blanks
start nc 160 50 NO_COLOR=1
wait_for nc 'misclassified' >/dev/null
keys nc 2
wait_for nc 'loss ce at iter 0' >/dev/null
sleep 0.3
tm capture-pane -p -e -t nc >"$T/nc.txt"
"$PYTHON" - "$T/nc.txt" <<'PY'
import re, sys
# the probability panel's rows: follow SGR 4 (underline) on and off, and
# find any blank drawn underlined; the target's mark must be underlined
marks, blanks, rows = 0, 0, 0
for line in open(sys.argv[1], encoding='utf-8'):
    plain = re.sub(r'\x1b\[[0-9;]*m', '', line)
    if not re.match(r'│.{0,40}(disc|ring|square|stripes)', plain):
        continue
    rows += 1
    ul, col = False, 0
    for m in re.finditer(r'\x1b\[([0-9;]*)m|(.)', line.rstrip('\n')):
        if m.group(2) is None:
            for p in (m.group(1) or '0').split(';'):
                ul = True if p == '4' else False if p in ('0', '24', '') else ul
            continue
        ch = m.group(2)
        if col < 46 and ul and ch == ' ':
            blanks += 1
        if ul and ch == '◎':
            marks += 1
        col += 1
sys.exit(0 if rows >= 3 and marks == 1 and blanks == 0 else 1)
PY
ok $? "under NO_COLOR the probability rows underline the target mark, never a blank"
tm kill-session -t nc

# 80x24: nothing cut without a marker
start small 80 24
wait_for small 'misclassified' >/dev/null
keys small 2
wait_for small 'd: gradient' >/dev/null
keys small n
wait_for small 'iter 1 ·' >/dev/null
sed -n 3p "$T/screen.txt" | grep -Eq 'iter 1 · [0-9]+% [a-z]+'
ok $? "at 80x24 the adversarial caption keeps the predicted class"
grep -Eq '\+[0-9]+ more' "$T/screen.txt"
ok $? "at 80x24 the probability panel says how many classes it leaves out"
keys small 3
wait_for small 'more »' >/dev/null
r1=$?
keys small Right
keys small Right
keys small Right
keys small Right
wait_for small '^«.*p\(target\)' >/dev/null && [ $r1 -eq 0 ]
ok $? "at 80x24 Runs marks the hidden columns and scrolls sideways to them"
tm kill-session -t small

# class names from a file are drawn escaped, never executed (issue 13)
ddir=$(db <<'PY'
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select path from datasets limit 1").fetchone()[0])
PY
)
mkdir -p "$T/escdata"
for f in test_X.bin test_y.bin; do ln -s "$ddir/$f" "$T/escdata/$f"; done
{ printf 'evil\033[31mred\033]2;pwned\007\n'; sed 1d "$ddir/class_names.txt"; } >"$T/escdata/class_names.txt"
start esc 160 50 -- --data "'$T/escdata'"
wait_for esc 'misclassified' >/dev/null
keys esc f
wait_for esc 'class: evil\\x1b\[31mred\\x1b\]2;pwned\\x07' >/dev/null &&
	tm capture-pane -p -e -t esc >"$T/esc.txt" &&
	! grep -q "$(printf '\033')\[31mred" "$T/esc.txt" &&
	[ "$(tm display -p -t esc '#{pane_title}')" != pwned ]
ok $? "a class name with escape sequences (class_names.txt) is drawn escaped"
wait_for esc 'class names: data ≠ model' >/dev/null
ok $? "data and model class names that differ are flagged"
tm kill-session -t esc

# only the parameters a kind uses: Square has no α and counts queries; a
# key for what it ignores says so and changes nothing
keys keys 2
wait_for keys '^ a ' >/dev/null
i=0
while [ $i -lt 10 ] && ! sed -n 2p "$T/screen.txt" | grep -q '^ a square '; do
	keys keys a
	sleep 0.2
	screen_of keys
	i=$((i + 1))
done
line=$(sed -n 2p "$T/screen.txt")
echo "$line" | grep -q '^ a square .*ε 8/255 .* 20 queries' && ! echo "$line" | grep -q 'α'
ok $? "Square's parameter line: ε and queries, no α ($line)"
keys keys ']'
wait_for keys 'square takes no α: it draws random squares' >/dev/null &&
	[ "$(sed -n 2p "$T/screen.txt")" = "$line" ] &&
	keys keys l && wait_for keys 'square optimises its own objective \(' >/dev/null &&
	[ "$(sed -n 2p "$T/screen.txt")" = "$line" ]
ok $? "] and l on Square say it takes no α and has its own objective, and change nothing"

keys keys q
HIST=1 wait_for keys 'advex-exit=0' >/dev/null
ok $? "the xterm-256color session quits cleanly"

# ---- the Audit screen: advex audit on the open image and on a range ------------------
start aud 160 50
wait_for aud '^ image #0 ' >/dev/null
keys aud 5
wait_for aud 'no audit yet' >/dev/null && grep -q 'u audit this image' "$T/screen.txt" &&
	grep -q '6\. Gradient-free beats gradient-based' "$T/screen.txt"
ok $? "5 opens the Audit screen: the nine checks, no audit yet, u and U offered"
keys aud 1
keys aud Enter
wait_for aud 'at iter 0' >/dev/null
keys aud 5
keys aud u
wait_for aud 'audit of 1 image: [0-9]+ fail, [0-9]+ warn · stored as audit #1' >/dev/null &&
	[ "$(grep -cE '^ [✓!✗·] [1-9]\. .* (pass|warn|fail|skipped) ' "$T/screen.txt")" -eq 9 ] &&
	[ "$("$PYTHON" - "$T/runs2.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
a = c.execute("select count(*), max(n_images) from audits").fetchone()
r = c.execute("select r.status from audit_images i join runs r on r.id = i.run_id").fetchall()
print("ok" if a == (1, 1) and r == [("done",)] else "bad %s %s" % (a, r))
PY
)" = ok ]
ok $? "u audits the open image: nine verdicts, stored as audit 1 with its run done"
# image 2 (the checkerboard), toward the target the explorer picked on
# image 0: the attack fails with its loss still falling (check 4), and
# Enter on that check replays the run it flagged
keys aud U
wait_for aud 'audit images A:B' >/dev/null
tm send-keys -t aud BSpace BSpace BSpace BSpace
tm send-keys -t aud -l '2:3'
keys aud Enter
wait_for aud 'audit of 1 image: [0-9]+ fail, [1-9] warn.*stored as audit #2' >/dev/null &&
	grep -qE '! 4\. Incomplete optimisation +warn' "$T/screen.txt" &&
	tm send-keys -t aud j j j && keys aud Enter &&
	wait_for aud 'replay of run #[0-9]+ \(read-only\)' >/dev/null
ok $? "U 2:3 audits the checkerboard: check 4 warns, Enter replays the run it flagged"
tm kill-session -t aud

# the guided tour, start to end, on a first start
rm -f "$T/xdg/advex/tour-seen"
start tour 160 50
wait_for tour 'Tour 1/5' >/dev/null &&
	keys tour Enter && wait_for tour 'Tour 2/5' >/dev/null &&
	keys tour l && wait_for tour 'Tour 3/5' >/dev/null &&
	wait_for tour 'Stuck: loss 16\.118 = -log\(1e-7\)' >/dev/null &&
	wait_for tour '100\.0% of the gradient in its ∅ column' >/dev/null &&
	keys tour L && wait_for tour 'Tour 4/5' >/dev/null &&
	keys tour Space && wait_for tour 'Tour 5/5' >/dev/null &&
	wait_for tour 'Success after 20 iterations' >/dev/null &&
	keys tour Enter && wait_gone tour 'Tour 5/5' &&
	grep -q '^ ■ finished' "$T/screen.txt" && [ -f "$T/xdg/advex/tour-seen" ]
ok $? "the tour runs start to end on the demo: confident image, prob-ce stuck at 16.118 with a zero gradient, ce succeeds"
keys tour q
HIST=1 wait_for tour 'advex-exit=0' >/dev/null
tm kill-session -t tour
start tour2 160 50
wait_for tour2 '^ image #0 ' >/dev/null
! grep -q 'Tour 1/5' "$T/screen.txt"
r=$?
keys tour2 '?'
wait_for tour2 'Help · Esc closes' >/dev/null
keys tour2 t
wait_for tour2 'Tour 1/5' >/dev/null && [ $r -eq 0 ]
ok $? "once ended the tour stays closed on the next start, and ? then t opens it again"
tm kill-session -t tour2

[ $fails -eq 0 ] || exit 1
exit 0
