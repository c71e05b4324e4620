/* term.c - the explorer owns the terminal (see term.h): curses set up
 * once, restored on every way out, and the signals that end the loop. */
#include "term.h"

#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tui.h"

/* Signal handlers can reach nothing but file-scope state: the stop signal
 * received, the pipe that wakes the loop, and whether curses holds the
 * terminal (for the atexit and crash paths). */
static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t curses_on;
static int signal_fd = -1;

static void on_stop(int sig)
{
	int e = errno;

	stop_signal = sig;
	if (signal_fd >= 0)
		(void)!write(signal_fd, "", 1);
	errno = e;
}

/* Best effort: endwin is not async-signal-safe, but a crashed explorer that
 * leaves the terminal raw and invisible is worse (htop does the same). The
 * run log needs nothing here: a dead writer's run is marked interrupted by
 * the next open (db.h). */
static void on_crash(int sig)
{
	if (curses_on) {
		curses_on = 0;
		endwin();
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

void term_restore(void)
{
	if (curses_on) {
		curses_on = 0;
		endwin();
	}
}

void term_catch_signals(int wake_fd)
{
	static const int stops[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	static const int crashes[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
	struct sigaction sa;
	size_t i;

	signal_fd = wake_fd;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	for (i = 0; i < sizeof stops / sizeof stops[0]; i++)
		sigaction(stops[i], &sa, NULL);
	sa.sa_handler = on_crash;
	sa.sa_flags = SA_RESETHAND;
	for (i = 0; i < sizeof crashes / sizeof crashes[0]; i++)
		sigaction(crashes[i], &sa, NULL);
}

int term_stop_signal(void)
{
	return stop_signal;
}

void term_forget_wake(void)
{
	signal_fd = -1;
}

/* What terminals send for the keys the explorer uses, in the variants
 * terminfo often does not list: tmux and screen send ESC[1~ for Home where
 * xterm-256color's terminfo says ESCOH, rxvt sends ESC[7~, and so on. A
 * variant curses did not know arrived as ESC [ 1 ~: four keys, two of
 * them commands. Registered only where terminfo has no binding. */
static void define_variants(void)
{
	static const struct { const char *seq; int key; } v[] = {
		{ "\033[1~", KEY_HOME }, { "\033[7~", KEY_HOME }, { "\033[H", KEY_HOME },
		{ "\033OH", KEY_HOME }, { "\033[4~", KEY_END }, { "\033[8~", KEY_END },
		{ "\033[F", KEY_END }, { "\033OF", KEY_END }, { "\033[5~", KEY_PPAGE },
		{ "\033[6~", KEY_NPAGE }, { "\033[2~", KEY_IC }, { "\033[3~", KEY_DC },
		{ "\033[A", KEY_UP }, { "\033[B", KEY_DOWN }, { "\033[C", KEY_RIGHT },
		{ "\033[D", KEY_LEFT }, { "\033OA", KEY_UP }, { "\033OB", KEY_DOWN },
		{ "\033OC", KEY_RIGHT }, { "\033OD", KEY_LEFT }, { "\033[Z", KEY_BTAB },
		{ "\033OP", KEY_F(1) }, { "\033[11~", KEY_F(1) }, { "\033[[A", KEY_F(1) },
	};
	size_t i;

	for (i = 0; i < sizeof v / sizeof v[0]; i++)
		if (key_defined(v[i].seq) == 0)
			define_key(v[i].seq, v[i].key);
}

enum status term_start(int mouse, char *err)
{
	static int registered;
	const char *term = getenv("TERM");
	SCREEN *scr;

	setlocale(LC_ALL, "");
	/* the blocks, braille and box characters need UTF-8 */
	if (strcmp(nl_langinfo(CODESET), "UTF-8"))
		setlocale(LC_CTYPE, "C.UTF-8");
	scr = newterm(NULL, stdout, stdin);
	if (!scr)
		return status_set(err, ST_ERR_IO, "cannot use the terminal (TERM=%s)",
				  term ? term : "(unset)");
	set_term(scr);
	curses_on = 1;
	if (!registered) {
		atexit(term_restore);
		registered = 1;
	}
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	define_variants();
	if (mouse) {
		/* presses only, at once: no click-interval wait, no drags */
		mouseinterval(0);
		mousemask(BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
	}
	return ST_OK;
}

/* The next byte of an escape sequence: they arrive together, so a short
 * wait is enough; -1 when none came. */
static int next_byte(void)
{
	wint_t wc;
	int r;

	wtimeout(stdscr, 30);
	r = get_wch(&wc);
	nodelay(stdscr, TRUE);
	if (r == ERR || r == KEY_CODE_YES || wc > 0x7f)
		return -1;
	return (int)wc;
}

/* A key named by the final byte of CSI or SS3 (ESC [ 1 ; 5 H: Home with a
 * modifier, which the explorer reads as Home). */
static int final_key(int f)
{
	switch (f) {
	case 'A': return KEY_FN(KEY_UP);
	case 'B': return KEY_FN(KEY_DOWN);
	case 'C': return KEY_FN(KEY_RIGHT);
	case 'D': return KEY_FN(KEY_LEFT);
	case 'H': return KEY_FN(KEY_HOME);
	case 'F': return KEY_FN(KEY_END);
	case 'Z': return KEY_FN(KEY_BTAB);
	case 'P': return KEY_FN(KEY_F(1));
	default: return K_NONE;
	}
}

/* ESC [ n ~ (vt220 style) by its first parameter. */
static int tilde_key(int n)
{
	switch (n) {
	case 1: case 7: return KEY_FN(KEY_HOME);
	case 4: case 8: return KEY_FN(KEY_END);
	case 5: return KEY_FN(KEY_PPAGE);
	case 6: return KEY_FN(KEY_NPAGE);
	case 11: return KEY_FN(KEY_F(1));
	default: return K_NONE;
	}
}

/* After an ESC that curses did not turn into a key: read the rest of a
 * CSI (ESC [ params intermediates final) or SS3 (ESC O final) sequence
 * whole and name it, or K_NONE. An SGR mouse report (ESC [ < b ; x ; y M)
 * becomes K_MOUSE. Anything else after ESC is given back, and ESC is Esc. */
static int escape_sequence(struct term_mouse *m)
{
	char buf[40];
	int c = next_byte(), n = 0, f;

	if (c < 0)
		return K_ESC;
	if (c == 'O') {
		f = next_byte();
		return f < 0 ? K_NONE : final_key(f);
	}
	if (c != '[') {
		unget_wch((wchar_t)c);
		return K_ESC;
	}
	for (;;) {
		f = next_byte();
		if (f < 0)
			return K_NONE;		/* cut short: drop what came */
		if (f >= 0x40 && f <= 0x7e)
			break;
		if (f < 0x20)
			return K_NONE;
		if (n < (int)sizeof buf - 1)
			buf[n++] = (char)f;
	}
	buf[n] = 0;
	if (buf[0] == '<' && (f == 'M' || f == 'm')) {
		int b, x, y;

		if (f == 'm' || sscanf(buf + 1, "%d;%d;%d", &b, &x, &y) != 3)
			return K_NONE;		/* a release, or garbled */
		m->y = y - 1;
		m->x = x - 1;
		m->wheel = (b & 0x43) == 0x40 ? -1 : (b & 0x43) == 0x41 ? 1 : 0;
		return (b & 0x43) == 0 || m->wheel ? K_MOUSE : K_NONE;
	}
	if (f == '~')
		return tilde_key(atoi(buf));
	return final_key(f);
}

int term_read_key(int *key, struct term_mouse *m)
{
	wint_t wc;
	int r = get_wch(&wc);

	if (r == ERR)
		return 0;
	if (r == KEY_CODE_YES && wc == KEY_MOUSE) {
		MEVENT ev;

		*key = K_NONE;
		if (getmouse(&ev) != OK)
			return 1;
		m->y = ev.y;
		m->x = ev.x;
		m->wheel = ev.bstate & BUTTON4_PRESSED ? -1 : ev.bstate & BUTTON5_PRESSED ? 1 : 0;
		if (m->wheel || ev.bstate & BUTTON1_PRESSED)
			*key = K_MOUSE;
		return 1;
	}
	if (r == KEY_CODE_YES)
		*key = KEY_FN((int)wc);
	else if (wc == K_ESC)
		*key = escape_sequence(m);
	else
		*key = (int)wc;
	return 1;
}

