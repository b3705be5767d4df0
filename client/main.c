/* tasksolver-cli: client tools for tasksolver and the systems around it.
 * main only dispatches to a subcommand module (see commands.h). */
#include <stdio.h>
#include <string.h>

#include "commands.h"

struct cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct cli_cmd cli_cmds[] = {
    {"expr", cmd_expr, "submit an arithmetic job to a master and print its answer"},
    {"batch", cmd_batch, "stream a file of numbers through a limited-capacity server"},
    {"gather", cmd_gather, "supervise streaming worker processes and collect samples"},
    {NULL, NULL, NULL},
};

static void cli_usage(FILE *f)
{
    fprintf(f, "usage: tasksolver-cli COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; cli_cmds[i].name; i++)
        fprintf(f, "  %-8s %s\n", cli_cmds[i].name, cli_cmds[i].summary);
    fprintf(f, "\n'tasksolver-cli COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("tasksolver-cli %s\n", TS_VERSION);
        return 0;
    }
    for (size_t i = 0; cli_cmds[i].name; i++)
        if (strcmp(argv[1], cli_cmds[i].name) == 0)
            return cli_cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tasksolver-cli: unknown command '%s'\n", argv[1]);
    cli_usage(stderr);
    return 2;
}
