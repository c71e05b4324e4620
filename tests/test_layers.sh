#!/bin/sh
# test_layers.sh - the layers only include downward (README, "Layout"):
# core/ <- db/ <- front/ <- tui/ and cli/ (peers; only cli/main.c knows
# both). Makefile.am gives each library only the -I of its own folder and
# the folders below, so a wrong include must fail to compile. Each case
# compiles a one-line probe with a layer's flags; each refusal has a control
# that the same include compiles where it is allowed, so a probe that
# fails for another reason (no compiler, a broken header) cannot pass.
# Environment (set by make check): LAYER_CC and LAYER_CORE, LAYER_DB,
# LAYER_FRONT, LAYER_TUI, LAYER_CLI (each layer's preprocessor flags),
# ADVEX_SRCDIR.
SRC=${ADVEX_SRCDIR:-.}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0
fails=0
ok() { # ok COND-EXIT-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
if [ -z "$LAYER_CC" ] || [ -z "$LAYER_CORE" ]; then
	echo "1..0 # SKIP run through make check (LAYER_CC and the layer flags unset)"
	exit 0
fi

# compiles FLAGS HEADER: 0 when a file including HEADER compiles with FLAGS
compiles() {
	printf '#include "%s"\nint layer_probe(void);\nint layer_probe(void) { return 0; }\n' "$2" >"$T/probe.c"
	# shellcheck disable=SC2086 # the flags are words
	$LAYER_CC $1 -fsyntax-only "$T/probe.c" >"$T/log" 2>&1
}
# refused LAYER FLAGS HEADER ALLOWED-FLAGS WHERE: HEADER does not compile
# with FLAGS, and (the control) does with ALLOWED-FLAGS
refused() {
	compiles "$4" "$3"
	ok $? "control: $5 may include $3"
	compiles "$2" "$3"
	[ $? -ne 0 ] && grep -q "$3" "$T/log"
	ok $? "$1 including $3 fails to compile"
}

refused "core/" "$LAYER_CORE" db.h "$LAYER_DB" "db/"
refused "core/" "$LAYER_CORE" source.h "$LAYER_FRONT" "front/"
refused "db/" "$LAYER_DB" source.h "$LAYER_FRONT" "front/"
refused "front/" "$LAYER_FRONT" cli.h "$LAYER_CLI" "cli/"
refused "front/" "$LAYER_FRONT" tui.h "$LAYER_TUI" "tui/"
refused "tui/" "$LAYER_TUI" cli.h "$LAYER_CLI" "cli/"
refused "cli/" "$LAYER_CLI" tui.h "$LAYER_TUI" "tui/"
refused "cli/" "$LAYER_CLI" explore.h "$LAYER_TUI" "tui/"
# a path from the top of the tree is no way round: automake's -I. is off
refused "tui/" "$LAYER_TUI" cli/cli.h "$LAYER_TUI -I$SRC" "a target given the top folder"

# and no source reaches a header by a relative path ("../cli/cli.h")
grep -n '#include "[^"]*/' "$SRC"/core/*.[ch] "$SRC"/db/*.[ch] "$SRC"/front/*.[ch] \
	"$SRC"/tui/*.[ch] "$SRC"/cli/*.[ch] >"$T/paths"
[ $? -ne 0 ]
ok $? "no #include names a path (found: $(tr '\n' ' ' <"$T/paths"))"

# every test has a log of its own: automake names a test's log after its
# path without the extension, so tests/test_x.c (the program tests/test_x)
# beside tests/test_x.py would share tests/test_x.log and one of them would
# silently never run (tests/test_audit.py did not, until it was renamed)
dup_logs() { # dup_logs MAKEFILE.AM: the log names two tests share
	awk '/^(check_PROGRAMS|dist_check_SCRIPTS) *\+?=/ { on = 1 } on { print } !/\\$/ { on = 0 }' \
		"$1" | tr ' \t\\' '\n\n\n' | grep '^tests/test_' |
		sed -E 's/\.(sh|py)$//' | sort | uniq -d
}
dup_logs "$SRC/Makefile.am" >"$T/dup-logs"
[ ! -s "$T/dup-logs" ] && [ "$(grep -c 'tests/test_' "$SRC/Makefile.am")" -gt 0 ]
ok $? "no two tests in Makefile.am share a log name (found: $(tr '\n' ' ' <"$T/dup-logs"))"
sed 's#tests/test_audit_checks\.py#tests/test_audit.py#' "$SRC/Makefile.am" >"$T/old.am"
[ "$(dup_logs "$T/old.am")" = tests/test_audit ]
ok $? "control: with the script named tests/test_audit.py again, the clash is caught"

echo "1..$n"
[ "$fails" -eq 0 ]
