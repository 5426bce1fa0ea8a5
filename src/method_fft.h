/* method_fft.h - the full fine-tuning baseline of the paper (Table 1's upper bound): every
 * weight of a copy of the base model is trained on the k shots (40 epochs, lr 3e-5, batch 5,
 * AdamW, linear decay, as LoraHub's FFT baseline), then the questions are answered by greedy
 * decoding with the trained weights. The base model is never modified.
 *
 * The trained copy becomes an il_t5 through a private temporary directory (config.json +
 * model.safetensors, removed once loaded; the mapping stays valid), so generation runs the
 * exact inference code of every other method. Same inputs and seed -> same predictions
 * (for a given thread count).
 *
 * Errors follow util.h: -1 and il_errmsg(); on failure every predictions[i] is NULL. */
#ifndef ILORA_METHOD_FFT_H
#define ILORA_METHOD_FFT_H
#include <stdint.h>

#include "sentencepiece.h"
#include "t5.h"

typedef struct {
    int epochs;            /* 40 */
    int batch;             /* 5 */
    double lr;             /* 3e-5 (peak; linear decay to 0) */
    double weight_decay;   /* 0 */
    double max_grad_norm;  /* 1 (transformers' Trainer default) */
    uint64_t seed;         /* example order (42) */
    int max_input_tokens;  /* inputs cut at this many tokens keeping </s> (2048) */
    int max_new_tokens;    /* generation limit (256) */
    int max_batch;         /* questions decoded together (0 = all) */
    /* optional: the mean loss of each epoch (before that epoch's updates), [epochs] */
    double *epoch_loss;
} il_fft_params;

il_fft_params il_fft_default_params(void);

/* Train a copy of base on the k shots (shot_inputs[i] -> shot_targets[i]) and answer the
 * n_q questions: predictions[i] = malloc'd decoded answer (special tokens skipped, the
 * tokenizer's clean-up). p may be NULL (defaults). */
int il_method_fft(const il_t5 *base, const il_tokenizer *tok, int k,
                  const char *const *shot_inputs, const char *const *shot_targets, int n_q,
                  const char *const *questions, const il_fft_params *p, char **predictions);

#endif
