/* exitcode.h - the exit statuses of advex, the same for every subcommand
 * and for the explorer. Only the front ends (cli/, tui/) end the process;
 * everything below them returns an enum status (status.h). */
#ifndef ADVEX_EXITCODE_H
#define ADVEX_EXITCODE_H

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#endif
