/* lora_load.c - the adapter object and loading PEFT adapter directories: the state dict
 * under any PEFT key naming (adapter_config.json is parsed in lora_config.c), validated
 * against the base model's projections, with an error naming the file and module for
 * every mismatch. */
#include "lora_internal.h"
#include "t5_merge.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===== the adapter object ===== */

bool lora_same_shape(const il_t5_config *a, const il_t5_config *b) {
    return a->d_model == b->d_model && a->d_kv == b->d_kv && a->num_heads == b->num_heads &&
           a->d_ff == b->d_ff && a->num_layers == b->num_layers &&
           a->num_decoder_layers == b->num_decoder_layers && a->gated == b->gated;
}

float lora_scale(float alpha, int r, bool rslora) {
    return rslora ? (float)((double)alpha / sqrt((double)r)) : (float)((double)alpha / r);
}

il_lora *lora_alloc(const char *name, const il_t5_config *cfg, int n_modules) {
    il_lora *a = il_calloc(1, sizeof *a);
    if (!a) return NULL;
    a->cfg = *cfg;
    a->n_modules = n_modules;
    a->max_layers = cfg->num_layers > cfg->num_decoder_layers ? cfg->num_layers
                                                              : cfg->num_decoder_layers;
    a->name = il_strdup(name ? name : "(adapter)");
    a->mods = il_calloc(n_modules > 0 ? (size_t)n_modules : 1, sizeof *a->mods);
    if (!a->name || !a->mods) {
        il_lora_free(a);
        return NULL;
    }
    return a;
}

static size_t slot_of(const il_lora *a, const il_t5_linear_id *id) {
    return ((size_t)id->stack * (size_t)a->max_layers + (size_t)id->layer) * IL_T5_PROJ_COUNT +
           (size_t)id->proj;
}

int lora_index(il_lora *a) {
    size_t n = 2 * (size_t)a->max_layers * IL_T5_PROJ_COUNT;
    free(a->slot);
    if (!(a->slot = il_malloc(n * sizeof *a->slot))) return -1;
    for (size_t i = 0; i < n; i++) a->slot[i] = -1;
    for (int i = 0; i < a->n_modules; i++) a->slot[slot_of(a, &a->mods[i].id)] = i;
    return 0;
}

void il_lora_free(il_lora *a) {
    if (!a) return;
    for (int i = 0; i < a->n_modules && a->mods; i++) free((char *)a->mods[i].name);
    free(a->mods);
    free(a->slot);
    free(a->buf);
    for (int i = 0; i < a->n_owned; i++) free(a->owned[i]);
    free(a->owned);
    il_tensor_file_free(a->file);
    free(a->base_model);
    free(a->name);
    free(a);
}

const char *il_lora_name(const il_lora *a) { return a->name; }
int il_lora_n_modules(const il_lora *a) { return a->n_modules; }

const il_lora_module *il_lora_module_at(const il_lora *a, int i) {
    return i >= 0 && i < a->n_modules ? &a->mods[i] : NULL;
}

const il_lora_module *il_lora_find(const il_lora *a, const il_t5_linear_id *id) {
    if ((unsigned)id->stack > 1u || id->layer < 0 || id->layer >= a->max_layers ||
        (unsigned)id->proj >= IL_T5_PROJ_COUNT || !a->slot)
        return NULL;
    int k = a->slot[slot_of(a, id)];
    return k < 0 ? NULL : &a->mods[k];
}

const char *il_lora_base_model_name(const il_lora *a) { return a->base_model; }

int il_lora_set_base_model_name(il_lora *a, const char *name) {
    char *s = NULL;
    if (name && !(s = il_strdup(name))) return -1;
    free(a->base_model);
    a->base_model = s;
    return 0;
}

/* ===== the state dict ===== */

/* The projections of the base model with their HF names. */
typedef struct {
    int n;
    il_t5_linear_id *ids;
    char (*names)[96];
    const il_tensor **A, **B; /* per projection: the tensors found, or NULL */
    const char **adapter_name;
} base_modules;

static void base_free(base_modules *b) {
    free(b->ids);
    free(b->names);
    free(b->A);
    free(b->B);
    free(b->adapter_name);
}

static int base_init(base_modules *b, const il_t5_config *c) {
    memset(b, 0, sizeof *b);
    b->n = il_t5_linear_ids(c, NULL, 0);
    size_t n = b->n > 0 ? (size_t)b->n : 1;
    b->ids = il_calloc(n, sizeof *b->ids);
    b->names = il_calloc(n, sizeof *b->names);
    b->A = il_calloc(n, sizeof *b->A);
    b->B = il_calloc(n, sizeof *b->B);
    if (!b->ids || !b->names || !b->A || !b->B) {
        base_free(b);
        return -1;
    }
    il_t5_linear_ids(c, b->ids, b->n);
    for (int i = 0; i < b->n; i++) il_t5_linear_name(&b->ids[i], b->names[i], sizeof b->names[i]);
    return 0;
}

static int base_find(const base_modules *b, const char *name, size_t len) {
    for (int i = 0; i < b->n; i++)
        if (strlen(b->names[i]) == len && memcmp(b->names[i], name, len) == 0) return i;
    return -1;
}

static const char *const non_projection[] = {"lm_head", "shared", "embed_tokens",
                                              "relative_attention_bias", "layer_norm", NULL};

/* Key -> (module, A or B). Accepted: [base_model.model.]<module>.lora_{A,B}[.<adapter>].weight
 * (saved files have no adapter name; live state dicts have "default" or another name). */
/* The adapter-name segment of the first key ("" when absent), which every key must share. */
typedef struct {
    bool seen;
    const char *name;
    size_t len;
} adapter_seg;

static int map_key(base_modules *b, const il_tensor *t, const char *where, adapter_seg *adapter) {
    const char *key = t->name, *k = key;
    static const char prefix[] = "base_model.model.";
    if (strncmp(k, prefix, sizeof prefix - 1) == 0) k += sizeof prefix - 1;
    const char *la = strstr(k, ".lora_A."), *lb = strstr(k, ".lora_B.");
    if (!la && !lb) {
        if (strstr(k, "lora_magnitude_vector"))
            il_seterr("%s: tensor '%s': DoRA magnitude vectors are not supported", where, key);
        else if (strstr(k, "lora_embedding_"))
            il_seterr("%s: tensor '%s': LoRA on embeddings is not supported", where, key);
        else
            il_seterr("%s: tensor '%s' is not a LoRA tensor (expected <module>.lora_A.weight / "
                      "<module>.lora_B.weight)", where, key);
        return -1;
    }
    bool isA = la && (!lb || la < lb);
    const char *seg = isA ? la : lb;
    const char *rest = seg + 8; /* after ".lora_X." */
    const char *dot = strchr(rest, '.');
    const char *name_end = rest;
    if (strcmp(rest, "weight") != 0) {
        if (!dot || strcmp(dot, ".weight") != 0) {
            il_seterr("%s: tensor '%s': %s", where, key,
                      strcmp(rest, "bias") == 0 || (dot && strcmp(dot, ".bias") == 0)
                          ? "LoRA bias terms (lora_bias) are not supported"
                          : "expected '.weight' or '.<adapter name>.weight' after lora_A/lora_B");
            return -1;
        }
        name_end = dot;
    }
    /* one adapter per file: "default" in one key and "other" in another is ambiguous */
    size_t an = (size_t)(name_end - rest);
    if (adapter->seen && (adapter->len != an || strncmp(adapter->name, rest, an) != 0)) {
        il_seterr("%s: tensor '%s': the file mixes adapter names ('%.*s' and '%.*s'); ilora "
                  "loads one adapter per file", where, key, (int)adapter->len, adapter->name,
                  (int)an, rest);
        return -1;
    }
    *adapter = (adapter_seg){true, rest, an};
    int m = base_find(b, k, (size_t)(seg - k));
    if (m < 0) {
        int len = (int)(seg - k);
        for (int i = 0; non_projection[i]; i++)
            if (strstr(k, non_projection[i]) && strstr(k, non_projection[i]) < seg) {
                il_seterr("%s: module '%.*s': LoRA on %s is not supported (only the q/k/v/o "
                          "and feed-forward projections)", where, len, k, non_projection[i]);
                return -1;
            }
        il_seterr("%s: module '%.*s' (tensor '%s') does not exist in the base model (maybe "
                  "wrong base model?)", where, len, k, key);
        return -1;
    }
    const il_tensor **slot = isA ? &b->A[m] : &b->B[m];
    if (*slot) {
        il_seterr("%s: module '%s': two lora_%c tensors ('%s' and '%s')", where, b->names[m],
                  isA ? 'A' : 'B', (*slot)->name, key);
        return -1;
    }
    *slot = t;
    return 0;
}

static bool any_zero_dim(const il_tensor *t) {
    if (t->ndim == 0) return false;
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] == 0) return true;
    return false;
}

static void shape_str(const il_tensor *t, char *buf, size_t size) {
    int o = snprintf(buf, size, "[");
    for (int d = 0; d < t->ndim && o < (int)size; d++)
        o += snprintf(buf + o, size - (size_t)o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (o < (int)size) snprintf(buf + o, size - (size_t)o, "]");
}

/* Shapes of module m: A [r, in], B [out, r], r as the config says. */
static int check_module(const base_modules *b, int m, const lora_config *c, const char *where,
                        int *rank) {
    const il_tensor *A = b->A[m], *B = b->B[m];
    const il_t5_linear_id *id = &b->ids[m];
    const char *name = b->names[m];
    if (!A || !B) {
        il_seterr("%s: module '%s': lora_%c has no matching lora_%c", where, name,
                  A ? 'A' : 'B', A ? 'B' : 'A');
        return -1;
    }
    for (int k = 0; k < 2; k++) {
        const il_tensor *t = k ? B : A;
        char s[64];
        shape_str(t, s, sizeof s);
        if (il_tensor_numel(t) == 0 || any_zero_dim(t)) {
            il_seterr("%s: module '%s': zero-size tensor '%s' (shape %s): a broken save?", where,
                      name, t->name, s);
            return -1;
        }
        if (t->ndim != 2) {
            il_seterr("%s: module '%s': tensor '%s' has shape %s, expected 2 dimensions", where,
                      name, t->name, s);
            return -1;
        }
    }
    if (A->shape[1] != id->in || B->shape[0] != id->out) {
        char sa[64], sb[64];
        shape_str(A, sa, sizeof sa);
        shape_str(B, sb, sizeof sb);
        il_seterr("%s: module '%s': lora_A %s and lora_B %s do not fit the base weight "
                  "[%d, %d] (need [r, %d] and [%d, r]; maybe wrong base model?)", where, name,
                  sa, sb, id->out, id->in, id->in, id->out);
        return -1;
    }
    if (A->shape[0] != B->shape[1]) {
        il_seterr("%s: module '%s': lora_A has rank %lld but lora_B has rank %lld", where, name,
                  (long long)A->shape[0], (long long)B->shape[1]);
        return -1;
    }
    const lora_pattern *rp = lora_pattern_find(c->rank_pat, c->n_rank_pat, name);
    int want = rp ? (int)rp->value : c->r;
    if (A->shape[0] != want) {
        il_seterr("%s: module '%s': the tensors have rank %lld but adapter_config.json says "
                  "r = %d%s%s%s", where, name, (long long)A->shape[0], want,
                  rp ? " (rank_pattern '" : "", rp ? rp->key : "", rp ? "')" : "");
        return -1;
    }
    *rank = want;
    return 0;
}

/* Target modules vs the base model and the tensors found. */
static int check_targets(const base_modules *b, const lora_config *c, const char *cfg_where,
                         const char *w_where, const il_lora_load_opts *o) {
    const lora_selector *t = &c->target;
    if (t->is_regex || t->all_linear) {
        bool any = false;
        for (int i = 0; i < b->n && !any; i++) any = lora_selector_match(t, b->names[i]);
        if (!any) {
            il_seterr("%s: target_modules regex matches no projection of the base model "
                      "(maybe wrong base model?)", cfg_where);
            return -1;
        }
    } else {
        for (int e = 0; e < t->n; e++) {
            bool any = false;
            for (int i = 0; i < b->n && !any; i++)
                any = lora_entry_matches(t->list[e], b->names[i]);
            if (any) continue;
            for (int k = 0; non_projection[k]; k++)
                if (strstr(t->list[e], non_projection[k])) {
                    il_seterr("%s: target_modules entry '%s': LoRA on %s is not supported",
                              cfg_where, t->list[e], non_projection[k]);
                    return -1;
                }
            il_seterr("%s: target_modules entry '%s' matches no projection of the base model "
                      "(maybe wrong base model?)", cfg_where, t->list[e]);
            return -1;
        }
    }
    int missing = 0, targeted = 0;
    const char *first_missing = NULL;
    for (int i = 0; i < b->n; i++) {
        bool has = b->A[i] || b->B[i];
        bool tg = lora_config_targets(c, b->names[i], b->ids[i].layer);
        targeted += tg;
        if (has && !tg) {
            il_seterr("%s: module '%s' has LoRA tensors but adapter_config.json does not target "
                      "it (PEFT would silently drop them)", w_where, b->names[i]);
            return -1;
        }
        if (tg && !has && missing++ == 0) first_missing = b->names[i];
    }
    if (!targeted) {
        il_seterr("%s: target_modules selects no projection of the base model (after "
                  "exclude_modules / layers_to_transform)", cfg_where);
        return -1;
    }
    if (missing)
        lora_log(o, true, "%s: %d targeted module(s) have no tensors (first: '%s'); they stay "
                 "unadapted, as PEFT leaves a zero lora_B", w_where, missing, first_missing);
    return 0;
}

/* float32 view of t (shape already checked); copied when `copy` or when conversion is
 * needed; rejects NaN / Inf. */
static const float *tensor_data(il_lora *a, const il_tensor *t, const char *where, bool copy,
                                const char *module) {
    float *owned = NULL;
    const float *p = il_tensor_f32(t, where, -1, NULL, &owned);
    if (!p) return NULL;
    size_t n = (size_t)il_tensor_numel(t);
    if (owned) {
        if (il_owned_push(&a->owned, &a->n_owned, owned)) return NULL;
    } else if (copy) {
        float *c = il_malloc(n * sizeof *c);
        if (!c) return NULL;
        memcpy(c, p, n * sizeof *c);
        if (il_owned_push(&a->owned, &a->n_owned, c)) return NULL;
        p = c;
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) {
            il_seterr("%s: module '%s': tensor '%s' holds a non-finite value (%g) at %zu", where,
                      module, t->name, (double)p[i], i);
            return NULL;
        }
    return p;
}

/* Everything after reading the files: map keys, validate, build the adapter. */
static il_lora *build(const char *name, const lora_config *c, const il_tensor *t, int n,
                      const char *w_where, const il_t5_config *base, bool copy,
                      const il_lora_load_opts *o) {
    if (n == 0) {
        il_seterr("%s: no LoRA tensors (empty state dict: a broken save?)", w_where);
        return NULL;
    }
    base_modules b;
    if (base_init(&b, base)) return NULL;
    il_lora *a = NULL;
    adapter_seg seg = {false, NULL, 0};
    for (int i = 0; i < n; i++)
        if (map_key(&b, &t[i], w_where, &seg)) goto fail;
    if (check_targets(&b, c, c->where, w_where, o)) goto fail;
    int count = 0;
    for (int i = 0; i < b.n; i++) count += b.A[i] || b.B[i];
    if (!(a = lora_alloc(name, base, count))) goto fail;
    a->use_rslora = c->rslora;
    if (c->base_model && !(a->base_model = il_strdup(c->base_model))) goto fail;
    int k = 0;
    for (int i = 0; i < b.n; i++) {
        if (!b.A[i] && !b.B[i]) continue;
        il_lora_module *m = &a->mods[k++];
        int r;
        if (check_module(&b, i, c, w_where, &r)) goto fail;
        const lora_pattern *ap = lora_pattern_find(c->alpha_pat, c->n_alpha_pat, b.names[i]);
        m->id = b.ids[i];
        m->r = r;
        m->alpha = (float)(ap ? ap->value : c->alpha);
        m->scale = lora_scale(m->alpha, r, c->rslora);
        if (!(m->name = il_strdup(b.names[i])) ||
            !(m->A = tensor_data(a, b.A[i], w_where, copy, b.names[i])) ||
            !(m->B = tensor_data(a, b.B[i], w_where, copy, b.names[i])))
            goto fail;
    }
    if (lora_index(a)) goto fail;
    for (int j = 0; j < a->n_modules; j++)
        if (a->mods[j].scale == 0) {
            lora_log(o, true, "%s: module '%s' has scale 0 (lora_alpha 0): it has no effect",
                     name, a->mods[j].name);
            break;
        }
    lora_log(o, false, "%s: %d modules, rank %d, scale %g%s", name, a->n_modules,
             a->mods[0].r, (double)a->mods[0].scale, c->rslora ? " (rsLoRA)" : "");
    base_free(&b);
    return a;
fail:
    base_free(&b);
    il_lora_free(a);
    return NULL;
}

il_lora *il_lora_from_tensors(const char *name, const char *config_json, const il_tensor *t,
                              int n, const il_t5_config *base, const il_lora_load_opts *opts) {
    if (!name) name = "(adapter)";
    if (!config_json || n < 0 || (n > 0 && !t) || !base) {
        il_seterr("%s: invalid arguments", name);
        return NULL;
    }
    char *where = il_sprintf("%s: adapter_config.json", name);
    if (!where) return NULL;
    lora_config c;
    il_lora *a = NULL;
    if (lora_config_parse(&c, config_json, where, opts) == 0) {
        a = build(name, &c, t, n, name, base, true, opts);
        lora_config_free(&c);
    }
    free(where);
    return a;
}

il_lora *il_lora_load(const char *dir, const il_t5_config *base, const il_lora_load_opts *opts) {
    if (!dir || !base) {
        il_seterr("LoRA adapter: invalid arguments");
        return NULL;
    }
    if (!il_dir_exists(dir)) {
        il_seterr("%s: LoRA adapter directory not found", dir);
        return NULL;
    }
    char *cfg_path = il_path_join(dir, "adapter_config.json");
    char *st = il_path_join(dir, "adapter_model.safetensors");
    char *bin = il_path_join(dir, "adapter_model.bin");
    char *text = NULL;
    il_tensor_file *f = NULL;
    il_lora *a = NULL;
    lora_config c;
    bool have_cfg = false;
    if (!cfg_path || !st || !bin) goto done;
    size_t len;
    if (!il_file_exists(cfg_path)) {
        il_seterr("%s: missing (not a PEFT adapter directory?)", cfg_path);
        goto done;
    }
    if (!(text = il_read_file(cfg_path, &len))) goto done;
    if (lora_config_parse(&c, text, cfg_path, opts)) goto done;
    have_cfg = true;
    const char *wpath = il_file_exists(st) ? st : il_file_exists(bin) ? bin : NULL;
    if (!wpath) {
        il_seterr("%s: no adapter_model.safetensors or adapter_model.bin", dir);
        goto done;
    }
    if (wpath == st && il_file_exists(bin))
        lora_log(opts, false, "%s: both weight files present; using adapter_model.safetensors "
                 "(as PEFT does)", dir);
    if (!(f = il_tensor_file_open(wpath))) goto done;
    lora_log(opts, false, "%s: reading %s", dir, wpath);
    if ((a = build(dir, &c, f->tensors, f->n_tensors, wpath, base, false, opts))) {
        a->file = f; /* A/B may point into its mapping */
        f = NULL;
    }
done:
    if (have_cfg) lora_config_free(&c);
    il_tensor_file_free(f);
    free(text);
    free(cfg_path);
    free(st);
    free(bin);
    return a;
}
