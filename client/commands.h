/* commands: the subcommands of tasksolver-cli, one module each.
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status. */
#ifndef TS_COMMANDS_H
#define TS_COMMANDS_H

int cmd_expr(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_gather(int argc, char **argv);

#endif
