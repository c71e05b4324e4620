/* main.c - advex's entry point: dispatches to a subcommand. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "info", cmd_info, "print a model's layer table, parameters, preprocessing, classes" },
	{ "diagnose", cmd_diagnose, "one forward and backward: logits, probabilities, loss, input gradient" },
	{ "attack", cmd_attack, "run an attack on one image, or on many at several epsilons" },
	{ "train", cmd_train, "train a VGG-style network on CPU" },
	{ "eval", cmd_eval, "accuracy, per-class accuracy and confusion matrix on a split" },
	{ "bench", cmd_bench, "time an attack step (forward + backward to the input) and a forward" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: advex COMMAND [OPTIONS]\n\n"
		   "advex explores adversarial examples: why an attack's gradient vanishes,\n"
		   "and how the attack goes when it does not.\n\ncommands:\n");
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'advex COMMAND --help' lists a command's options.\n"
		   "Models are advex model files (safetensors); convert ONNX or PyTorch\n"
		   "models with advex-import. See man advex.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
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
