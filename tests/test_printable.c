/* test_printable.c - printable_escape: what is escaped, what is kept, and
 * where a cut falls. */
#include "printable.h"
#include "tap.h"

#include <string.h>

static void check(struct tap *t, const char *in, size_t n, const char *want,
		  const char *what)
{
	char buf[256];

	printable_escape(in, buf, n);
	tap_ok(t, !strcmp(buf, want), "%s: got '%s', want '%s'", what, buf,
	       want);
}

int main(void)
{
	struct tap t = { 0 };

	check(&t, "airplane", 256, "airplane", "plain ASCII kept");
	check(&t, "a\033[2Jb", 256, "a\\x1b[2Jb", "ESC escaped");
	check(&t, "\a\b\t\n\r\x7f", 256, "\\x07\\x08\\x09\\x0a\\x0d\\x7f",
	      "BEL BS TAB LF CR DEL escaped");
	check(&t, "x\xc2\x9b" "31m", 256, "x\\xc2\\x9b31m",
	      "C1 CSI (U+009B) escaped");
	check(&t, "caf\xc3\xa9 \xe7\x8c\xab \xf0\x9f\x90\x88", 256,
	      "caf\xc3\xa9 \xe7\x8c\xab \xf0\x9f\x90\x88",
	      "valid UTF-8 from U+00A0 on kept (2, 3, 4 bytes)");
	check(&t, "\xc2\xa0", 256, "\xc2\xa0", "U+00A0 kept");
	check(&t, "a\x9b" "b\xff", 256, "a\\x9bb\\xff",
	      "stray bytes (not UTF-8) escaped");
	check(&t, "\xc0\xaf", 256, "\\xc0\\xaf", "an overlong form escaped");
	check(&t, "\xed\xa0\x80", 256, "\\xed\\xa0\\x80", "a surrogate escaped");
	check(&t, "\xe7\x8c", 256, "\\xe7\\x8c", "a cut sequence escaped");
	check(&t, "abcdef", 4, "abc", "cut to fit n (NUL included)");
	check(&t, "ab\033", 6, "ab", "an escape that does not fit is left out whole");
	check(&t, "a\xe7\x8c\xab", 4, "a", "a character that does not fit is left out whole");
	check(&t, "", 1, "", "empty");
	return tap_done(&t);
}
