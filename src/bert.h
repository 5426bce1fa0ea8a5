/* bert.h - BERT encoder (BertModel without the pooler) on the CPU in float32, matching
 * Hugging Face transformers 4.31: the model behind sentence-transformers' MiniLM
 * embedders.
 *
 *   x = LayerNorm(word[id] + token_type[type] + position[i])
 *   per layer: x = LayerNorm(dense(softmax(Q K^T / sqrt(d_head)) V) + x)
 *              x = LayerNorm(dense2(act(dense1(x))) + x)
 *
 * Batches are ragged: sequence i has lens[i] >= 1 tokens and the tokens of all sequences
 * are packed into one [sum lens, hidden] matrix (no padding is ever materialised, so a
 * sequence's output does not depend on its batch neighbours). Projections are BLAS GEMMs
 * over the packed rows; attention runs per (sequence, head) under OpenMP.
 *
 * Weights: config.json plus a checkpoint (model.safetensors / pytorch_model.bin, sharded or
 * not) with or without the "bert." key prefix. The pooler and embeddings.position_ids are
 * ignored. Every tensor's shape is checked; errors name the file and the tensor.
 *
 * Threads: a loaded model is immutable (scratch is allocated per call), so concurrent
 * forward calls are safe. */
#ifndef ILORA_BERT_H
#define ILORA_BERT_H

#include "util.h"

typedef enum { IL_BERT_GELU, IL_BERT_GELU_TANH, IL_BERT_RELU } il_bert_act;

typedef struct {
    int vocab_size;              /* vocab_size */
    int hidden_size;             /* hidden_size */
    int num_layers;              /* num_hidden_layers */
    int num_heads;               /* num_attention_heads */
    int intermediate_size;       /* intermediate_size */
    int max_position_embeddings; /* max_position_embeddings (default 512) */
    int type_vocab_size;         /* type_vocab_size (default 2) */
    float eps;                   /* layer_norm_eps (default 1e-12) */
    il_bert_act act;             /* hidden_act: "gelu" (erf), "gelu_new" / "gelu_pytorch_tanh"
                                    (tanh form), "relu" */
} il_bert_config;

/* Parse a BERT config.json (path names the file in errors). 0 / -1. */
int il_bert_config_load(il_bert_config *c, const char *path);

typedef struct il_bert il_bert;

/* dir/config.json + the checkpoint il_checkpoint_open finds in dir. */
il_bert *il_bert_load(const char *dir);
/* An explicit config.json and one weights file (safetensors or PyTorch .bin). */
il_bert *il_bert_load_files(const char *config_path, const char *weights_path);
void il_bert_free(il_bert *m); /* NULL is fine */
const il_bert_config *il_bert_get_config(const il_bert *m);

/* Encoder forward over n ragged sequences. ids[i][0..lens[i]) must be in
 * [0, vocab_size) and lens[i] in [1, max_position_embeddings]; types (NULL = all 0)
 * likewise in [0, type_vocab_size). out: [sum lens, hidden] last hidden state.
 * trace (optional): [(num_layers + 1), sum lens, hidden] in transformers'
 * output_hidden_states order (0 = embedding output, l = output of layer l). */
int il_bert_forward(const il_bert *m, int n, const int32_t *const *ids,
                    const int32_t *const *types, const int *lens, float *out, float *trace);

#endif
