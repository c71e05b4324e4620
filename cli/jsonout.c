/* jsonout.c - shortest round-trip reals in JSON output (see jsonout.h).
 * jansson prints a real with a fixed number of digits; 17 always read
 * back exactly but show the binary noise of most decimals. The text is
 * dumped at 17 digits, then each real is rewritten with the fewest digits
 * that strtod turns back into the same double (what Python's repr does).
 * Most of advex's numbers are float32 widened to double (probabilities,
 * losses, norms): a double that is exactly a float is written with the
 * fewest digits that read back as that float (0.986, not the widened
 * 0.98600000143051147), which is what the number was before widening. */
#include "jsonout.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether v is a float32 value widened to double. */
static int is_float(double v)
{
	return isfinite(v) && fabs(v) <= FLT_MAX && (double)(float)v == v;
}

/* The shortest %.*g of the real spelled tok[0..len) into buf (n >= 32);
 * a real stays a real ("5.0", not "5"). */
static void shortest(const char *tok, size_t len, char *buf, size_t n)
{
	char in[40];
	double v;
	int p;

	snprintf(in, sizeof in, "%.*s", (int)(len < 39 ? len : 39), tok);
	v = strtod(in, NULL);
	for (p = 1; p <= 17; p++) {
		snprintf(buf, n, "%.*g", p, v);
		if (is_float(v) ? strtof(buf, NULL) == (float)v
				: strtod(buf, NULL) == v)
			break;
	}
	if (!strpbrk(buf, ".eEn"))
		strncat(buf, ".0", n - strlen(buf) - 1);
}

char *jsonout_dumps(const json_t *j, size_t flags)
{
	char *s = json_dumps(j, flags | JSON_REAL_PRECISION(17)), *out;
	size_t n, i = 0, o = 0;
	int in_str = 0;

	if (!s)
		return NULL;
	n = strlen(s);
	out = malloc(n + 1);
	if (!out) {
		free(s);
		return NULL;
	}
	while (i < n) {
		char c = s[i];

		if (in_str) {		/* strings are copied as they are */
			out[o++] = s[i++];
			if (c == '\\' && i < n)
				out[o++] = s[i++];
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
			out[o++] = s[i++];
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			size_t k = i;
			int real = 0;
			char buf[40];

			while (k < n && strchr("+-0123456789.eE", s[k]) && s[k]) {
				real |= s[k] == '.' || s[k] == 'e' || s[k] == 'E';
				k++;
			}
			if (real) {
				shortest(s + i, k - i, buf, sizeof buf);
				/* never longer: the text was sized for the old */
				if (strlen(buf) <= k - i) {
					memcpy(out + o, buf, strlen(buf));
					o += strlen(buf);
					i = k;
					continue;
				}
			}
			memcpy(out + o, s + i, k - i);
			o += k - i;
			i = k;
		} else {
			out[o++] = s[i++];
		}
	}
	out[o] = '\0';
	free(s);
	return out;
}
