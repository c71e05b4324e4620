/* cmd_runs_plot.c - `advex runs plot` (placeholder, replaced below). */
#include "cli.h"
#include "cmd_runs.h"

int cmd_runs_plot(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return cli_fail("plot: not yet");
}
