/* world_build.h - `ilora world build`: ilora's synthetic world, built from nothing.
 *
 * No pretrained model can be downloaded where ilora is developed, so the world gives every
 * method something to work with, in exactly the on-disk formats of a real Flan-T5 run:
 *
 *   DIR/tasks/          il_world_write_tasks (upstream/<family>.jsonl train files,
 *                       heldout/<task>.json in BBH format, tasks.json) plus
 *                       dev/<family>.jsonl: unseen examples of each family (inputs not in its
 *                       train file) for measuring
 *   DIR/base/           a Hugging Face T5 v1.1 directory (config.json, model.safetensors with
 *                       transformers' key names, spiece.model, tokenizer_config.json,
 *                       special_tokens_map.json, generation_config.json): a SentencePiece
 *                       unigram tokenizer trained by Debian's spm_train on the task texts and a
 *                       small gated-GELU T5 trained from random init on the upstream mixture
 *   DIR/library/<family>/  one PEFT LoRA adapter per family (adapter_config.json,
 *                       adapter_model.safetensors, train.jsonl): the library `ilora eval
 *                       --library` reads
 *   DIR/measurements.json, DIR/measurements.md
 *                       base accuracy on each family's dev split, each adapter against the
 *                       base on its own family's dev split (exact match after il_eval_match)
 *   DIR/stamps/<step>.json  what each step was built from (settings + input fingerprints)
 *
 * The embedder of the world is the base model itself (il_embedder_load(DIR/base): T5 encoder,
 * mean-pooled, normalised); nothing more is trained for it.
 *
 * Resuming: each step (tokenizer, base, every adapter, measurements) is skipped when its
 * outputs exist and its stamp equals the stamp it would write now, so an interrupted build
 * resumes where it stopped and a changed setting redoes that step and everything downstream
 * (stamps include the fingerprints of their inputs). The task files are always regenerated
 * (a second; same bytes unless the generator changed, which the fingerprints then catch). Every file is written
 * atomically; an adapter directory appears complete or not at all.
 *
 * Determinism: the same options and seed give the same files (bit for bit for a given
 * OpenMP thread count), provided spm_train is deterministic (it is, single-threaded with
 * --shuffle_input_sentence=false; the tokenizer stamp records the spiece.model fingerprint
 * and everything downstream depends on that file, not on spm_train).
 *
 * Errors follow util.h: -1 and il_errmsg() naming the step and the file. No exit(). */
#ifndef ILORA_WORLD_BUILD_H
#define ILORA_WORLD_BUILD_H
#include <stdbool.h>
#include <stdint.h>

#include "t5.h"

typedef struct {
    uint64_t seed;         /* tasks, initialisation, example order (default 42) */
    int n_train;           /* examples per upstream family train file (default 200) */
    int n_dev;             /* unseen dev examples per family (default 50) */
    int n_heldout;         /* examples per held-out BBH-format task (default 100) */
    int n_families;        /* 0: every family; else only the first n get a place in the
                            * tokenizer text, the base mixture, the library (tests) */
    /* tokenizer (spm_train) */
    int vocab_size;        /* requested pieces, a soft limit (default 2000) */
    const char *spm_train; /* program to run; NULL: "spm_train" found on PATH */
    /* base model: T5 v1.1 shape */
    int d_model, d_kv, num_heads, d_ff, num_layers; /* same depth both sides */
    int base_epochs;       /* passes over the upstream mixture (default 8) */
    int base_batch;        /* examples per AdamW step (default 32) */
    double base_lr;        /* peak lr, linear decay after warmup (default 2e-3) */
    int base_warmup;       /* warmup steps (default 200) */
    /* adapters: PEFT LoRA on q, v of every attention */
    int lora_r;            /* default 8 */
    double lora_alpha;     /* default 16 */
    int lora_epochs;       /* default 4 */
    int lora_batch;        /* default 8 */
    double lora_lr;        /* peak lr, linear decay (default 1e-2) */
    /* measurements */
    int max_new_tokens;    /* greedy decoding limit on dev inputs (default 32) */
    /* progress, one line per call without newline; NULL: stderr */
    void (*log)(void *user, const char *msg);
    void *user;
} il_world_build_opts;

il_world_build_opts il_world_build_default_opts(void);

/* Build (or resume) the world in out_dir (created if needed). 0 / -1. */
int il_world_build(const char *out_dir, const il_world_build_opts *o);

/* config.json text of c as transformers writes it for T5ForConditionalGeneration
 * (round-trips through il_t5_config_parse). malloc'd. */
char *il_world_t5_config_json(const il_t5_config *c);

/* Write a Hugging Face config.json for c into dir (atomic). 0 / -1. */
int il_world_write_config(const char *dir, const il_t5_config *c);

#endif
