/* cli.h - shared pieces of the command-line tool: option parsing, exit codes,
 * JSONL example files and output helpers. Each subcommand lives in src/cli_<name>.c. */
#ifndef ILORA_CLI_H
#define ILORA_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "util.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* One option of a subcommand. kind: flag (bool*), string (const char**), int (int*),
 * float (double*), list (repeatable string: cli_list*). */
typedef enum { OPT_FLAG, OPT_STRING, OPT_INT, OPT_DOUBLE, OPT_LIST } cli_opt_kind;

typedef struct {
    const char **items;
    int n;
} cli_list;

typedef struct {
    const char *name; /* "--model" */
    cli_opt_kind kind;
    void *dest;
    long min, max; /* for OPT_INT: accepted range */
} cli_opt;

/* Parses argv[1..] (argv[0] is the subcommand). Positional arguments go to *pos.
 * Returns 0, or EXIT_USAGE after printing "ilora: error: ..." (unknown option, missing
 * or malformed value). "--help"/"-h" sets *help. A bare "--" ends the options. */
int cli_parse(int argc, char **argv, const cli_opt *opts, int n_opts, cli_list *pos, bool *help);
void cli_list_free(cli_list *l);

/* Print "ilora: error: <msg>" to stderr and return the code. */
int cli_fail(int code, const char *fmt, ...) IL_PRINTF(2, 3);
/* Print "ilora: error: <il_errmsg()>" and return EXIT_RUNTIME. */
int cli_fail_lib(void);

/* A JSONL file of {"input": ..., "output": ...} objects (output optional unless required). */
typedef struct {
    char **input, **output;
    int n;
} cli_examples;
int cli_read_examples(const char *path, bool need_output, cli_examples *ex);
void cli_examples_free(cli_examples *ex);

/* Write s with backslash, newline and carriage return escaped (\\ \n \r). */
void cli_put_escaped_line(FILE *f, const char *s);
/* Append x as the shortest JSON number that reads back as exactly x (null if not finite). */
void cli_json_double(il_buf *b, double x);
/* Append x[0..n) as a JSON array of such numbers: "[a, b, c]". */
void cli_json_doubles(il_buf *b, const double *x, int n);

/* --optimizer NAME: 0 if il_opt_names() has it (any case), else EXIT_USAGE after printing
 * the error with the valid names. */
int cli_check_optimizer(const char *name);



/* Subcommands: argv[0] is the subcommand name. Return an exit code. */
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_loss(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
