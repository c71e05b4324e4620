/* explore.h - what the explorer (libadvextui.a) offers the program: its
 * entry point. Only cli/main.c, which dispatches between the explorer and
 * the subcommands, includes this. */
#ifndef ADVEX_TUI_EXPLORE_H
#define ADVEX_TUI_EXPLORE_H

/* The interactive explorer: advex with no command, or advex explore
 * [--model FILE | --arch NAME] [--data DIR] [--split S] [--db FILE]
 * [--out-dir DIR]. Returns the process's exit status (exitcode.h). */
int tui_explore(int argc, char **argv);

#endif
