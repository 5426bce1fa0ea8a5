/* temporary: commands whose tokenizer dependency has not landed yet */
#include "cli.h"
int cmd_tokenize(int argc, char **argv) { return cli_fail(EXIT_RUNTIME, "not built yet"); }
int cmd_generate(int argc, char **argv) { return cli_fail(EXIT_RUNTIME, "not built yet"); }
int cmd_loss(int argc, char **argv) { return cli_fail(EXIT_RUNTIME, "not built yet"); }
