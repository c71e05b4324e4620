#!/bin/sh
# run.sh - run every fuzz harness for SECONDS (default 60) each on seeds
# written by fuzz_seeds, in a build configured with --enable-fuzzing.
# Usage (from the build directory): tests/fuzz/run.sh [SECONDS]
# Exit 1 when a harness finds a crash, a leak, a timeout or undefined
# behaviour; libFuzzer leaves the reproducer in the working directory
# (crash-*, leak-*, timeout-*): run the harness on that file to replay it.
secs=${1:-60}
B=tests/fuzz
C=$(mktemp -d "${TMPDIR:-/tmp}/advex-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$C"' EXIT
"$B/fuzz_seeds" "$C" || exit 1
fail=0
for h in model png dataset; do
	echo "== fuzz_$h: $secs s"
	# -timeout: one input may take at most 30 s; -rss_limit_mb: a model
	# file may describe a big net, which net_create must refuse or build
	if "$B/fuzz_$h" -max_total_time="$secs" -timeout=30 -rss_limit_mb=3072 \
		-print_final_stats=1 "$C/$h" >"$C/$h.log" 2>&1; then
		grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|cov: " "$C/$h.log" | tail -n 3
	else
		tail -n 60 "$C/$h.log"
		echo "fuzz_$h FAILED"
		fail=1
	fi
done
exit $fail
