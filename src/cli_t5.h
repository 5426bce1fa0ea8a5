/* cli_t5.h - a T5 model directory opened for the CLI (weights + tokenizer) and
 * batch tokenization with truncation. */
#ifndef ILORA_CLI_T5_H
#define ILORA_CLI_T5_H

#include "cli.h"

#include "lora.h"
#include "sentencepiece.h"
#include "t5.h"
typedef struct {
    il_t5 *model;
    il_tokenizer *tok;
} cli_t5;
int cli_t5_open(cli_t5 *m, const char *dir, bool need_weights);
void cli_t5_close(cli_t5 *m);

/* Ragged token ids of n texts (HF-style, with the trailing eos), truncated to max_len
 * tokens keeping the eos last (max_len <= 0: no limit). `what` names the texts in errors. */
typedef struct {
    int32_t **ids;
    int *lens;
    int n;
    int n_truncated;
} cli_ids;
int cli_tokenize_all(const cli_t5 *m, const char *const *texts, int n, int max_len, cli_ids *out);
void cli_ids_free(cli_ids *x);

/* ---- adapters: --lora DIR[=WEIGHT] (repeatable) and --compose linear|delta ---- */

/* The adapters named on the command line: dirs as given, weights (1.0 when not given). */
typedef struct {
    int n;
    const char **dir;  /* point into argv */
    float *weight;
    bool any_weight;   /* some argument had =WEIGHT */
    il_lora **a;       /* after cli_loras_load */
    char **owned_dirs_; /* private: the DIR parts split off DIR=WEIGHT */
} cli_loras;

/* Parse the --lora arguments (and `extra` more plain directories, may be NULL) before
 * anything is loaded. DIR=WEIGHT splits at the last '=' when what follows is a number
 * (an existing directory whose name holds '=' is taken as a directory). With
 * allow_weight false, =WEIGHT is refused. Returns 0 or EXIT_USAGE (message printed). */
int cli_loras_parse(cli_loras *l, const cli_list *args, const cli_list *extra, bool allow_weight);
/* Load every adapter against the model's shape; errors name the adapter. 0 or -1. */
int cli_loras_load(cli_loras *l, const il_t5_config *base);
void cli_loras_free(cli_loras *l);
/* The adapter to apply: a single adapter at weight 1 as it is (*owned = false), else the
 * composition with `rule` (*owned = true: the caller frees it). NULL + error. */
il_lora *cli_loras_combine(const cli_loras *l, il_lora_rule rule, bool *owned);
/* --compose NAME -> rule; EXIT_USAGE (message printed) for an unknown name. */
int cli_parse_rule(const char *name, il_lora_rule *rule);

/* `ilora lorahub` (cli_lorahub.c). */
int cmd_lorahub(int argc, char **argv);

#endif
