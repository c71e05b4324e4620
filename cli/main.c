/* main.c - advex's entry point: dispatches to a subcommand, or to the explorer. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "explore.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "explore", tui_explore, "the interactive explorer (also: advex with no command)" },
	{ "info", cmd_info, "print a model's layer table, parameters, preprocessing, classes" },
	{ "diagnose", cmd_diagnose, "one forward and backward: logits, probabilities, loss, input gradient" },
	{ "attack", cmd_attack, "run an attack on one image, or on many at several epsilons" },
	{ "audit", cmd_audit, "why did my attack fail? the attack and nine checks on a range of images" },
	{ "runs", cmd_runs, "the run log: list, show, compare, export, delete, merge, sweep, plot" },
	{ "train", cmd_train, "train a VGG-style network on CPU" },
	{ "eval", cmd_eval, "accuracy, per-class accuracy and confusion matrix on a split" },
	{ "bench", cmd_bench, "time an attack step (forward + backward to the input) and a forward" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: advex [--model FILE] [--data DIR] [--split S] [--db FILE] [--out-dir DIR]\n"
		   "       advex COMMAND [OPTIONS]\n\n"
		   "advex explores adversarial examples: why an attack's gradient vanishes,\n"
		   "and how the attack goes when it does not.\n\n"
		   "With no command, advex opens the explorer in the terminal (the same as\n"
		   "advex explore): browse the data with the model's predictions, attack an\n"
		   "image step by step, replay and compare logged runs; ? shows every key.\n"
		   "With no --model/--data it uses STL-10 and model.safetensors under\n"
		   "~/.local/share/advex when both are there, else the bundled demo;\n"
		   "--db is the run log (default ~/.local/share/advex/runs.db); --out-dir is\n"
		   "where e exports PNGs (default: the current directory).\n\ncommands:\n");
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'advex COMMAND --help' lists a command's options.\n"
		   "Models are advex model files (safetensors); convert ONNX or PyTorch\n"
		   "models with advex-import. See man advex.\n\n"
		   "Exit status: 0 success; 1 a file or the run failed (missing, unreadable,\n"
		   "malformed or ill-fitting input, an output that cannot be written);\n"
		   "2 a usage error: an unknown option, a missing, malformed or out-of-range\n"
		   "value (--eps -1, --image -1), or an image index or class that the data\n"
		   "or model does not have.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2 && !(isatty(0) && isatty(1))) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* no command (or only options): the explorer */
	if (argc < 2 || (argv[1][0] == '-' && strcmp(argv[1], "--help") &&
			 strcmp(argv[1], "-h") && strcmp(argv[1], "--version")))
		return tui_explore(argc, argv);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("%s\n", PACKAGE_STRING);
		return EXIT_OK;
	}
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "advex: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
