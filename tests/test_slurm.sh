#!/bin/sh
# test_slurm.sh - the sweep on a real SLURM: a one-node cluster on
# localhost (munged, slurmctld, slurmd of Debian's slurm-wlm and munge,
# configured by tests/slurm-test.conf in a temporary folder with ports and
# state of their own, stopped on exit), tools/advex-sweep.sbatch submitted
# as a job array of 3 tasks with sbatch --wait, its merge job after
# --dependency=afterok, and the merged log's table and runs compared with
# the unsharded run. Without root, the packages, or when a daemon does not
# start, the SLURM checks are skipped saying exactly why; the GNU parallel
# path (tools/advex-sweep-local) is checked either way.
# Environment (set by make check): ADVEX, ADVEX_SRCDIR, PYTHON.
ADVEX=${ADVEX:-./advex}
PYTHON=${PYTHON:-/usr/bin/python3}
SRCDIR=${ADVEX_SRCDIR:-.}
T=$(mktemp -d)
stop_daemons() {
	for d in slurmd slurmctld munged; do
		[ -s "$T/$d.pid" ] && kill "$(cat "$T/$d.pid")" 2>/dev/null
	done
	# slurmd and slurmctld take a moment to go; their files are in $T
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		alive=
		for d in slurmd slurmctld munged; do
			[ -s "$T/$d.pid" ] && kill -0 "$(cat "$T/$d.pid")" 2>/dev/null && alive=1
		done
		[ -z "$alive" ] && break
		sleep 0.5
	done
}
trap 'stop_daemons; rm -rf "$T"' EXIT
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
XDG_DATA_HOME="$T/xdg"
HOME="$T/home"
export XDG_DATA_HOME HOME
DATA="$(cd "$(dirname "$ADVEX")" && pwd)/assets/demo/stl10_binary"
MODEL="$(cd "$(dirname "$ADVEX")" && pwd)/assets/demo-model.safetensors"
# the model is a source file (a VPATH build, make distcheck, has it there)
[ -f "$MODEL" ] || MODEL="$(cd "${ADVEX_SRCDIR:-.}" && pwd)/assets/demo-model.safetensors"
ADVEX="$(cd "$(dirname "$ADVEX")" && pwd)/$(basename "$ADVEX")"
SRCDIR="$(cd "$SRCDIR" && pwd)"
if [ ! -f "$DATA/test_X.bin" ] || [ ! -f "$MODEL" ]; then
	echo "1..0 # SKIP demo model or data not built"
	exit 0
fi
SWEEP="--model $MODEL --data $DATA --images 0:17 --eps 2/255,6/255 --iters 3"
table() { # table FILE: the sweep table from its clean-accuracy line on
	sed -n '/^clean accuracy/,$p' "$1"
}

"$ADVEX" attack $SWEEP --db "$T/all.db" >"$T/all.out" 2>&1
ok $? "the unsharded sweep: 17 images x 2 epsilons"
table "$T/all.out" >"$T/a.t"

# ---- a one-node cluster -----------------------------------------------------------------
# why_not: empty when the cluster runs, else the reason (said in the SKIP)
why_not=
if [ "$(id -u)" != 0 ]; then
	why_not="not root (munged, slurmctld and slurmd run as root here)"
else
	for c in munged munge slurmctld slurmd sbatch sinfo; do
		command -v $c >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin"
		command -v $c >/dev/null 2>&1 ||
			{ why_not="$c is not installed (apt-get install slurm-wlm munge)"; break; }
	done
fi
# last lines of a daemon's log, on one line, for the reason
log_tail() {
	[ -f "$1" ] && tail -n 3 "$1" | tr '\n' ' ' | cut -c1-300
}
if [ -z "$why_not" ]; then
	mkdir -p "$T/state" "$T/spool" "$T/job"
	# ports of our own, away from SLURM's 6817/6818, different per run
	port=$((20000 + ($$ % 20000) * 2))
	sed -e "s|@HOST@|$(hostname -s)|g" -e "s|@DIR@|$T|g" -e "s|@CTLD_PORT@|$port|" \
		-e "s|@SLURMD_PORT@|$((port + 1))|" "$SRCDIR/tests/slurm-test.conf" >"$T/slurm.conf"
	SLURM_CONF="$T/slurm.conf"
	export SLURM_CONF
	dd if=/dev/urandom of="$T/munge.key" bs=1024 count=1 2>/dev/null
	chmod 600 "$T/munge.key"
	if ! munged --force --socket="$T/munge.socket" --key-file="$T/munge.key" \
		--pid-file="$T/munged.pid" --log-file="$T/munged.log" \
		--seed-file="$T/munged.seed" >"$T/munged.err" 2>&1; then
		why_not="munged did not start: $(cat "$T/munged.err") $(log_tail "$T/munged.log")"
	elif ! munge --socket="$T/munge.socket" -n 2>"$T/munge.err" |
		unmunge --socket="$T/munge.socket" >/dev/null 2>>"$T/munge.err"; then
		why_not="munge credentials do not round-trip: $(cat "$T/munge.err")"
	elif ! slurmctld -f "$T/slurm.conf" >"$T/ctld.err" 2>&1; then
		why_not="slurmctld did not start: $(cat "$T/ctld.err") $(log_tail "$T/slurmctld.log")"
	elif ! slurmd -f "$T/slurm.conf" >"$T/slurmd.err" 2>&1; then
		why_not="slurmd did not start: $(cat "$T/slurmd.err") $(log_tail "$T/slurmd.log")"
	else
		idle=
		for _ in $(seq 60); do
			sinfo -h -o %t 2>/dev/null | grep -q idle && { idle=1; break; }
			sleep 0.5
		done
		[ -n "$idle" ] || why_not="the node did not come up idle in 30 s: sinfo says
'$(sinfo -h 2>&1 | head -1)'; slurmctld: $(log_tail "$T/slurmctld.log"); slurmd: $(log_tail "$T/slurmd.log")"
	fi
fi

if [ -n "$why_not" ]; then
	echo "# ******** SLURM NOT TESTED: $why_not" >&2
	echo "# ******** SLURM NOT TESTED: $why_not"
	for _ in 1 2 3 4 5; do
		skip "SLURM: $why_not"
	done
else
	# the array waits (--wait) in the background; the merge job is
	# submitted meanwhile, held by afterok until the array has finished
	OUT="$T/job/out"
	(cd "$T/job" && ADVEX="$ADVEX" timeout 600 sbatch --wait --parsable --array=0-2 \
		-o "$T/job/task-%a.out" "$SRCDIR/tools/advex-sweep.sbatch" "$OUT" $SWEEP \
		>"$T/array.id" 2>"$T/array.err"; echo $? >"$T/array.rc") &
	waiter=$!
	for _ in $(seq 100); do
		[ -s "$T/array.id" ] && break
		sleep 0.1
	done
	jid=$(cut -d';' -f1 "$T/array.id")
	(cd "$T/job" && ADVEX="$ADVEX" timeout 600 sbatch --wait --parsable \
		--dependency=afterok:"$jid" -o "$T/job/merge.out" \
		"$SRCDIR/tools/advex-sweep.sbatch" --merge "$OUT" >"$T/merge.id" 2>"$T/merge.err")
	mrc=$?
	wait $waiter
	[ "$(cat "$T/array.rc")" = 0 ] && [ -f "$OUT/shard-0-of-3.db" ] &&
		[ -f "$OUT/shard-1-of-3.db" ] && [ -f "$OUT/shard-2-of-3.db" ]
	ok $? "sbatch --wait --array=0-2 advex-sweep.sbatch: job $jid, 3 tasks, 3 logs shard-I-of-3.db $(cat "$T/array.err")"
	[ $mrc -eq 0 ] && [ -s "$OUT/sweep.txt" ] && grep -q "merged" "$T/job/merge.out"
	ok $? "the merge job (--dependency=afterok:$jid) ran after it: $(grep -c merged "$T/job/merge.out" 2>/dev/null) parts merged $(cat "$T/merge.err")"
	table "$OUT/sweep.txt" >"$T/b.t"
	[ -s "$T/a.t" ] && cmp -s "$T/a.t" "$T/b.t"
	ok $? "the merged table == the unsharded run's: $(sed -n 4,5p "$T/b.t" | tr -s ' ' | tr '\n' ';')"
	got=$("$PYTHON" "$SRCDIR/tests/sweep_dump.py" "$T/all.db" "$OUT/all.db" 2>&1)
	ok $? "the merged log == the unsharded one, run by run ($got)"
	# control: one task's own table is not the whole sweep's
	table "$T/job/task-0.out" >"$T/c.t"
	[ -s "$T/c.t" ] && ! cmp -s "$T/a.t" "$T/c.t"
	ok $? "control: task 0's table alone differs from the unsharded one"
fi

# ---- GNU parallel, whatever became of SLURM ------------------------------------------------
if command -v parallel >/dev/null 2>&1; then
	ADVEX="$ADVEX" "$SRCDIR/tools/advex-sweep-local" -j 2 -n 3 "$T/local" $SWEEP \
		>"$T/local.out" 2>"$T/local.err"
	ok $? "advex-sweep-local -j 2 -n 3 ran"
	table "$T/local.out" >"$T/b.t"
	cmp -s "$T/a.t" "$T/b.t" &&
		"$PYTHON" "$SRCDIR/tests/sweep_dump.py" "$T/all.db" "$T/local/all.db" >/dev/null
	ok $? "its merged table and runs == the unsharded run's"
else
	skip "GNU parallel is not installed (apt-get install parallel)"
	skip "GNU parallel is not installed (apt-get install parallel)"
fi

echo "1..$n"
[ $fails -eq 0 ]
