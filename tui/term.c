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

enum status term_start(char *err)
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
	return ST_OK;
}

int term_read_key(int *key)
{
	wint_t wc;
	int r = get_wch(&wc);

	if (r == ERR)
		return 0;
	*key = r == KEY_CODE_YES ? KEY_FN((int)wc) : (int)wc;
	return 1;
}

