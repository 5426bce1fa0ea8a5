/* lora_internal.h - the adapter struct shared by lora_load.c (PEFT directories),
 * lora_config.c (adapter_config.json), lora_compose.c (composition, saving) and lora_apply.c
 * (hook, merge, LoraHub loss).
 * Not public. */
#ifndef ILORA_LORA_INTERNAL_H
#define ILORA_LORA_INTERNAL_H

#include "lora.h"

#include <regex.h>

struct il_lora {
    char *name;            /* directory / name for messages */
    il_t5_config cfg;      /* the base shape the adapter was validated against */
    int n_modules;
    il_lora_module *mods;  /* in il_t5_linear_ids order */
    int *slot;             /* [2][max_layers][IL_T5_PROJ_COUNT] -> module index or -1 */
    int max_layers;
    bool use_rslora;       /* how alpha relates to the scale when saving */
    char *base_model;      /* base_model_name_or_path, or NULL */
    /* storage: A/B point into `buf` (compositions, copies) or into `file`'s mapping or into
     * `owned` converted copies */
    float *buf;
    il_tensor_file *file;
    float **owned;
    int n_owned;
    /* compositions only */
    bool composed;
    il_lora_rule rule;
    int n_src;             /* number of inputs the layout was planned for */
};

/* ===== adapter_config.json (lora_config.c) ===== */

/* A module-name selector as PEFT has them (target_modules, exclude_modules): a list of
 * names (an entry matches a module that equals it or ends with "." + it) or one regex
 * (full match), or "all-linear". */
typedef struct {
    bool present, is_regex, all_linear;
    regex_t re;
    char **list;
    int n;
} lora_selector;

/* One rank_pattern / alpha_pattern entry: key matches name as re.match("(.*\\.)?(key)$"). */
typedef struct {
    char *key;
    regex_t re;
    double value;
} lora_pattern;

/* A parsed adapter_config.json. */
typedef struct {
    const char *where; /* config path */
    int r;
    double alpha;
    bool rslora;
    lora_selector target, exclude;
    int *layers, n_layers; /* layers_to_transform (NULL: all) */
    lora_pattern *rank_pat, *alpha_pat;
    int n_rank_pat, n_alpha_pat;
    char *base_model;
} lora_config;

/* Parse the text of an adapter_config.json (`where` names it in errors; it must outlive c).
 * Warnings and notes go through opts (see il_lora_load_opts). 0, or -1 + error. */
int lora_config_parse(lora_config *c, const char *text, const char *where,
                      const il_lora_load_opts *opts);
void lora_config_free(lora_config *c);
/* Whether PEFT would put a LoRA layer on module `name` (block index `layer`). */
bool lora_config_targets(const lora_config *c, const char *name, int layer);
bool lora_selector_match(const lora_selector *s, const char *name);
bool lora_entry_matches(const char *entry, const char *name); /* one list entry */
/* First rank_pattern / alpha_pattern entry matching name, or NULL. */
const lora_pattern *lora_pattern_find(const lora_pattern *p, int n, const char *name);
/* A warning (always) or a note (only when opts->verbose), through opts->log or stderr. */
void lora_log(const il_lora_load_opts *opts, bool warning, const char *fmt, ...) IL_PRINTF(3, 4);

/* ===== the adapter object (lora_load.c) ===== */

/* Allocate an adapter with n modules (mods zeroed, names NULL) for base shape cfg and
 * build nothing else; lora_index() fills `slot` once mods[] are final. */
il_lora *lora_alloc(const char *name, const il_t5_config *cfg, int n_modules);
int lora_index(il_lora *a);

/* Base shapes agree (the fields that decide projection shapes and count). */
bool lora_same_shape(const il_t5_config *a, const il_t5_config *b);

/* Scale of a module: alpha / r, or alpha / sqrt(r) with rsLoRA. */
float lora_scale(float alpha, int r, bool rslora);

#endif
