/* ilora.h - the public C API of ilora.
 *
 * ilora runs Hugging Face T5 / Flan-T5 checkpoints on the CPU without Python and
 * (in later releases) composes LoRA adapters per input instance. This header is the
 * stable surface; the modules behind it live in src/ (src/t5.h for the model with
 * ragged batches and an adapter hook, src/sentencepiece.h for the tokenizer,
 * src/tensors.h for weight files).
 *
 * Basic usage:
 *     ilora_model *m = ilora_model_load("flan-t5-large");      // config, weights, tokenizer
 *     if (!m) { fprintf(stderr, "%s\n", ilora_last_error()); return 1; }
 *     const char *q[] = {"Is the sky blue? Options: - Yes - No"};
 *     char *answer[1];
 *     ilora_generate(m, 1, q, NULL, answer);                      // greedy, default params
 *     puts(answer[0]);
 *     ilora_free_string(answer[0]);
 *     ilora_model_free(m);
 *
 * Conventions: functions returning int give 0 on success and -1 on failure; functions
 * returning pointers give NULL on failure. The reason is in ilora_last_error() (per
 * thread), naming the file and field or tensor involved. Strings are UTF-8. A model may
 * be used by one thread at a time.
 */
#ifndef ILORA_H
#define ILORA_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ilora_model ilora_model;

/* The message of the last failure in this thread. */
const char *ilora_last_error(void);

/* Load a model directory: config.json, weights (model.safetensors, sharded safetensors or
 * pytorch_model.bin; F32/F16/BF16) and tokenizer (spiece.model or tokenizer.json). */
ilora_model *ilora_model_load(const char *dir);
void ilora_model_free(ilora_model *m);

/* Token ids exactly as Hugging Face's T5 tokenizer gives them (with the trailing </s>).
 * *ids is malloc'd; release it with ilora_free_ids. */
int ilora_tokenize(const ilora_model *m, const char *text, int32_t **ids, int *n_ids);
/* Decoded text (special tokens skipped, HF clean-up applied); release with ilora_free_string. */
char *ilora_detokenize(const ilora_model *m, const int32_t *ids, int n_ids);

typedef struct {
    int max_new_tokens;   /* default 256 */
    int max_input_tokens; /* inputs are cut to this many tokens, keeping </s>; default 2048 */
    int batch;            /* inputs decoded together; default 8 */
} ilora_gen_params;

ilora_gen_params ilora_gen_default_params(void);

/* Greedy answers for n texts; outputs[i] is malloc'd (ilora_free_string). params may be
 * NULL for the defaults. truncated (optional, [n]) tells which answers reached
 * max_new_tokens without </s>. */
int ilora_generate(ilora_model *m, int n, const char *const *texts, const ilora_gen_params *params,
                   char **outputs);
int ilora_generate_ex(ilora_model *m, int n, const char *const *texts, const ilora_gen_params *params,
                      char **outputs, bool *truncated);

/* Teacher-forced cross-entropy of outputs[i] given inputs[i], all n in one batch:
 * per_example[i] (optional) = mean over the tokens of output i (with </s>);
 * *mean_token_loss (optional) = Hugging Face's loss for the batch (mean over all tokens). */
int ilora_loss(ilora_model *m, int n, const char *const *inputs, const char *const *outputs,
               float *per_example, double *mean_token_loss);

void ilora_free_ids(int32_t *ids);
void ilora_free_string(char *s);

#ifdef __cplusplus
}
#endif
#endif
