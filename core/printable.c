/* printable.c - escape what a terminal would execute (printable.h). */
#include "printable.h"

#include <stdio.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes
 * there are not one (overlong forms and surrogates included). */
static int utf8_len(const unsigned char *s)
{
	int k, n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 ||
						   cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

const char *printable_escape(const char *s, char *buf, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = 0;

	while (*p) {
		int k = utf8_len(p);
		/* U+0080..U+009F are C2 80..C2 9F */
		int control = k == 1 ? (*p < 0x20 || *p == 0x7f)
				     : k == 2 && p[0] == 0xc2 && p[1] < 0xa0;

		if (k == 0 || control) {
			int i, m = k ? k : 1;

			if (len + 4 * (size_t)m >= n)
				break;
			for (i = 0; i < m; i++)
				len += (size_t)snprintf(buf + len, n - len,
							"\\x%02x", p[i]);
			p += m;
		} else {
			if (len + (size_t)k >= n)
				break;
			while (k--)
				buf[len++] = (char)*p++;
		}
	}
	buf[len] = '\0';
	return buf;
}
