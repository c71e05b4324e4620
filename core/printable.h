/* printable.h - text from files made safe to show on a terminal.
 *
 * Class names, a model's advex.source, tensor and node names and
 * class_names.txt come from files anyone can write; printed or drawn raw,
 * an escape sequence in them is executed by the terminal (it can retitle
 * the window, rewrite the screen, or on some terminals answer with
 * keystrokes). Every front end (cli/, tui/) passes such text through here
 * before showing it. */
#ifndef ADVEX_PRINTABLE_H
#define ADVEX_PRINTABLE_H

#include <stddef.h>

/* s with every byte that is not printable text written as \xNN: the C0
 * controls, DEL, the C1 controls (U+0080..U+009F, which some terminals
 * take as escape sequences) and bytes that are not valid UTF-8. Valid
 * UTF-8 from U+00A0 on is kept. The result is cut to fit n bytes (NUL
 * included) at a character boundary. Writes buf, returns it; n >= 1. */
const char *printable_escape(const char *s, char *buf, size_t n);

#endif
