#!/bin/sh
# test_get_vgg16.sh - tools/get-vgg16-weights offline: a small local file
# stands in for vgg16-397923af.pth, installed with --file or "downloaded"
# from a file:// URL (curl). No file can be made whose SHA-256 starts with
# 397923af, so the accepted cases set ADVEX_VGG16_PREFIX to the prefix of the
# file written here; the refused cases use the real prefix and a prefix one
# digit off. TAP output; exit 1 when a check fails.
# shellcheck disable=SC2016,SC2317 # sh -c scripts; functions run through ok
set -u

srcdir=${ADVEX_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
GET=$srcdir/tools/get-vgg16-weights
T=$(mktemp -d "${TMPDIR:-/tmp}/advex-test-get-vgg16.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
unset ADVEX_VGG16_PREFIX

n=0
failed=0
ok() {
	desc=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		failed=1
	fi
}

empty_dir() {
	[ ! -e "$1" ] || [ -z "$(ls -A "$1")" ]
}

# the one file and nothing else (no .part left over)
only_weights() {
	[ "$(ls -A "$1")" = vgg16-397923af.pth ]
}

# run_get EXPECTED_STATUS LOG ARGS...: with the prefix in $prefix ("" = real)
run_get() {
	want=$1
	log=$2
	shift 2
	if [ -n "$prefix" ]; then
		ADVEX_VGG16_PREFIX=$prefix "$GET" "$@" >"$log" 2>&1
	else
		"$GET" "$@" >"$log" 2>&1
	fi
	[ $? -eq "$want" ] || { sed 's/^/# /' "$log"; return 1; }
}

head -c 4096 /dev/urandom >"$T/fake.pth"
cp "$T/fake.pth" "$T/fake.orig"
sum=$(sha256sum <"$T/fake.pth" | cut -d' ' -f1)
good=$(printf '%s' "$sum" | cut -c1-8)
# the same prefix with its last digit changed: must be refused
last=$(printf '%s' "$good" | cut -c8)
case $last in 0) other=1 ;; *) other=0 ;; esac
off=$(printf '%s' "$good" | cut -c1-7)$other
echo "# fake.pth sha256 $sum"

ok "get-vgg16-weights is executable" test -x "$GET"
ok "--help names the file, --file and the URL" sh -c \
	'"$1" --help | grep -q vgg16-397923af.pth && "$1" --help | grep -q -- --file &&
	 "$1" --help | grep -q download.pytorch.org/models/vgg16-397923af.pth' _ "$GET"
ok "an unknown option is a usage error (2)" sh -c \
	'"$1" --bogus 2>/dev/null; [ $? -eq 2 ]' _ "$GET"

# ---- --file ----------------------------------------------------------------
prefix=
ok "--file with the real prefix: the fake file is refused (exit 1)" \
	run_get 1 "$T/log1" --file "$T/fake.pth" --dir "$T/d1"
ok "the refusal says which hash it got and what was expected" sh -c \
	'grep -q "SHA-256 $2 does not start with 397923af" "$1"' _ "$T/log1" "$sum"
ok "nothing is left in DIR (no file, no .part)" empty_dir "$T/d1"
ok "--file is left as it was" cmp -s "$T/fake.pth" "$T/fake.orig"

prefix=$off
ok "--file with a prefix one digit off is refused" \
	run_get 1 "$T/log2" --file "$T/fake.pth" --dir "$T/d2"
ok "nothing is left in DIR" empty_dir "$T/d2"

prefix=$good
ok "--file with the file's own prefix is installed" \
	run_get 0 "$T/log3" --file "$T/fake.pth" --dir "$T/d3"
ok "DIR holds vgg16-397923af.pth and nothing else" only_weights "$T/d3"
ok "the installed file is the given one" \
	cmp -s "$T/fake.pth" "$T/d3/vgg16-397923af.pth"
ok "a second run finds it and does nothing" sh -c \
	'ADVEX_VGG16_PREFIX=$2 "$1" --dir "$3" --url file:///nonexistent/x.pth |
	 grep -q "nothing to do"' _ "$GET" "$good" "$T/d3"

# ---- download (curl reads file:// URLs offline) ------------------------------
if command -v curl >/dev/null 2>&1; then
	prefix=
	ok "a download whose hash does not match is refused" \
		run_get 1 "$T/log4" --url "file://$T/fake.pth" --dir "$T/d4"
	ok "the bad download is removed: nothing left in DIR" empty_dir "$T/d4"
	ok "a failed download (missing URL) fails" \
		run_get 1 "$T/log5" --url "file://$T/missing.pth" --dir "$T/d5"
	ok "nothing partial is left after it" empty_dir "$T/d5"
	prefix=$good
	ok "a download whose hash matches is installed" \
		run_get 0 "$T/log6" --url "file://$T/fake.pth" --dir "$T/d6"
	ok "DIR holds the file and nothing else" only_weights "$T/d6"
	ok "it is the file at the URL" cmp -s "$T/fake.pth" "$T/d6/vgg16-397923af.pth"
	# a corrupt file already in place is removed, even when the fetch fails
	prefix=$good
	head -c 100 /dev/urandom >"$T/d6/vgg16-397923af.pth"
	ok "a corrupt file in place is not accepted" \
		run_get 1 "$T/log7" --url "file://$T/missing.pth" --dir "$T/d6"
	ok "it is gone afterwards" empty_dir "$T/d6"
else
	for _ in 1 2 3 4 5 6 7 8 9; do
		n=$((n + 1))
		echo "ok $n # SKIP no curl for file:// downloads"
	done
fi

# default directory from XDG_DATA_HOME
prefix=$good
ok "the default DIR is \$XDG_DATA_HOME/advex" sh -c \
	'XDG_DATA_HOME=$3 ADVEX_VGG16_PREFIX=$2 "$1" --file "$4" >/dev/null &&
	 cmp -s "$4" "$3/advex/vgg16-397923af.pth"' _ "$GET" "$good" "$T/xdg" "$T/fake.pth"

echo "1..$n"
exit $failed
