/* cli_t5.h - a T5 model directory opened for the CLI (weights + tokenizer) and
 * batch tokenization with truncation. */
#ifndef ILORA_CLI_T5_H
#define ILORA_CLI_T5_H

#include "cli.h"

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

#endif
