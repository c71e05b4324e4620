#!/bin/sh
# test_get_stl10.sh - the verify-and-unpack half of tools/get-stl10, with a
# tiny stl10_binary.tar.gz made here (the real one cannot be downloaded in a
# test). TAP output; exit 1 when a check fails.
# shellcheck disable=SC2016,SC2317 # sh -c scripts; functions run through ok
set -u

srcdir=${ADVEX_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
GET=$srcdir/tools/get-stl10
T=$(mktemp -d "${TMPDIR:-/tmp}/advex-test-get-stl10.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

n=0
failed=0
# ok DESCRIPTION COMMAND...: one TAP line for the command's success
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

md5() {
	md5sum <"$1" | cut -d' ' -f1
}

# only stl10_binary/ (and nothing half-made) under a folder
only_dest() {
	[ "$(ls -A "$1")" = stl10_binary ]
}

nothing_in() {
	[ ! -e "$1" ] || [ -z "$(ls -A "$1")" ]
}

# ---- a tiny archive: two images, two labels, class names -------------------
mkdir -p "$T/src/stl10_binary" "$T/src2/stl10_binary" "$T/other/junk"
head -c 55296 /dev/urandom >"$T/src/stl10_binary/test_X.bin"
printf '\001\012' >"$T/src/stl10_binary/test_y.bin"
printf 'airplane\nbird\ncar\ncat\ndeer\ndog\nhorse\nmonkey\nship\ntruck\n' \
	>"$T/src/stl10_binary/class_names.txt"
tar -czf "$T/stl10_binary.tar.gz" -C "$T/src" stl10_binary
good=$(md5 "$T/stl10_binary.tar.gz")
# a second, different one, to check a reinstall replaces the first
cp "$T/src/stl10_binary/"* "$T/src2/stl10_binary/"
head -c 27648 /dev/urandom >"$T/src2/stl10_binary/train_X.bin"
tar -czf "$T/second.tar.gz" -C "$T/src2" stl10_binary
second=$(md5 "$T/second.tar.gz")
# and one without stl10_binary/
echo x >"$T/other/junk/x"
tar -czf "$T/other.tar.gz" -C "$T/other" junk
other=$(md5 "$T/other.tar.gz")

# ---- the script itself -----------------------------------------------------
ok "get-stl10 is executable" test -x "$GET"
"$GET" --help >"$T/help" 2>&1
ok "--help exits 0" test $? -eq 0
ok "--help names --archive, --md5, --no-file-check and --dir" \
	sh -c 'grep -q -- --archive "$1" && grep -q -- --md5 "$1" &&
		grep -q -- --no-file-check "$1" && grep -q -- --dir "$1"' \
	sh "$T/help"
"$GET" --bogus >/dev/null 2>&1
ok "an unknown option is a usage error (exit 2)" test $? -eq 2
"$GET" --md5 xyz --dir "$T/x" >/dev/null 2>&1
ok "a malformed --md5 is a usage error" test $? -eq 2

# ---- a good archive --------------------------------------------------------
"$GET" --archive "$T/stl10_binary.tar.gz" --md5 "$good" --no-file-check \
	--dir "$T/out" >"$T/log" 2>&1
rc=$?
ok "a good archive installs (exit $rc)" test $rc -eq 0
for f in test_X.bin test_y.bin class_names.txt; do
	ok "stl10_binary/$f lands as packed" \
		cmp -s "$T/src/stl10_binary/$f" "$T/out/stl10_binary/$f"
done
ok "no temporary folders left next to it" only_dest "$T/out"
ok "the given archive is left alone" test -f "$T/stl10_binary.tar.gz"

# the same, with the hash in capitals: still the same MD5
"$GET" --archive "$T/stl10_binary.tar.gz" --md5 "$(echo "$good" | tr a-f A-F)" \
	--no-file-check --dir "$T/upper" >/dev/null 2>&1
ok "an upper-case --md5 is accepted" test -f "$T/upper/stl10_binary/test_X.bin"

# ---- a wrong checksum ------------------------------------------------------
wrong=0123456789abcdef0123456789abcdef
"$GET" --archive "$T/stl10_binary.tar.gz" --md5 "$wrong" --no-file-check \
	--dir "$T/bad" >"$T/log" 2>&1
rc=$?
ok "a wrong --md5 is refused (exit $rc)" test $rc -eq 1
ok "the message names the archive and both checksums" \
	sh -c 'grep -q "stl10_binary.tar.gz" "$1" && grep -q "$2" "$1" &&
		grep -q "$3" "$1"' sh "$T/log" "$good" "$wrong"
ok "nothing unpacked" nothing_in "$T/bad"

# ---- the per-file check (the tiny files are not the published ones) --------
"$GET" --archive "$T/stl10_binary.tar.gz" --md5 "$good" --dir "$T/full" \
	>"$T/log" 2>&1
rc=$?
ok "the per-file check refuses the tiny files (exit $rc)" test $rc -eq 1
ok "it names the file" grep -q "stl10_binary/train_X.bin" "$T/log"
ok "nothing installed" nothing_in "$T/full"

# ---- an archive without stl10_binary/ --------------------------------------
"$GET" --archive "$T/other.tar.gz" --md5 "$other" --no-file-check \
	--dir "$T/other-out" >"$T/log" 2>&1
ok "an archive without stl10_binary/ is refused" test $? -eq 1
ok "and leaves nothing" nothing_in "$T/other-out"

# ---- a reinstall replaces, a failed one keeps the old ----------------------
"$GET" --archive "$T/second.tar.gz" --md5 "$second" --no-file-check \
	--dir "$T/out" >/dev/null 2>&1
ok "a second archive installs over the first" \
	cmp -s "$T/src2/stl10_binary/train_X.bin" \
	"$T/out/stl10_binary/train_X.bin"
ok "with no old or temporary folder left" only_dest "$T/out"
"$GET" --archive "$T/stl10_binary.tar.gz" --md5 "$wrong" --no-file-check \
	--dir "$T/out" >/dev/null 2>&1
ok "a refused archive keeps the installed files" \
	cmp -s "$T/src2/stl10_binary/train_X.bin" \
	"$T/out/stl10_binary/train_X.bin"

"$GET" --archive "$T/missing.tar.gz" --dir "$T/m" >"$T/log" 2>&1
ok "a missing --archive file is an error naming it" \
	sh -c '[ $1 -eq 1 ] && grep -q missing.tar.gz "$2"' sh $? "$T/log"

echo "1..$n"
exit $failed
