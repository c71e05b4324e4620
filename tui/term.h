/* term.h - the terminal, owned by the explorer (htop's CRT.c): curses set
 * up once and restored on every way out (q, Ctrl-C, SIGTERM/SIGHUP, exit()
 * from anywhere, and - best effort - a crash), the stop signals turned into
 * a byte on a pipe the loop polls, and keys read one at a time.
 *
 * Signal handlers can reach only file-scope state, so this module keeps
 * the one piece of it the explorer has: the stop signal received, the
 * pipe to wake the loop, and whether curses holds the terminal.
 */
#ifndef ADVEX_TUI_TERM_H
#define ADVEX_TUI_TERM_H

#include "status.h"

/* Catch SIGINT, SIGTERM, SIGHUP and SIGQUIT (each writes a byte to
 * wake_fd) and the crash signals (restore the terminal, then die). */
void term_catch_signals(int wake_fd);
/* The stop signal received, 0 while none. */
int term_stop_signal(void);
/* Stop writing to the wake pipe (before it is closed). */
void term_forget_wake(void);

/* Take the terminal: UTF-8, raw keys, no echo, no cursor, non-blocking
 * reads, and (mouse set) clicks and the wheel reported. Registers
 * term_restore with atexit the first time. */
enum status term_start(int mouse, char *err);
/* Give the terminal back, if curses holds it; safe to call twice. */
void term_restore(void);

/* A mouse event: a press of the left button, or a turn of the wheel. */
struct term_mouse {
	int y, x;
	int wheel;		/* 0: a click; -1 up, +1 down */
};

/* One key, if one is waiting: a character's code point, KEY_FN(curses
 * key), K_MOUSE (with *m filled in) or K_NONE (an escape sequence the
 * explorer has no use for, read whole so none of its bytes becomes a
 * key). Returns 0 when there is none. */
int term_read_key(int *key, struct term_mouse *m);

#endif
