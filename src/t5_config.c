/* t5_config.c - config.json -> il_t5_config, with the defaults of transformers' T5Config. */
#include "t5.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest accepted sizes: generous for any real T5 (XXL: d_model 4096, d_ff 10240,
 * 64 heads, 24 layers) while keeping every size product far from overflow. */
#define T5_MAX_DIM (1 << 17)
#define T5_MAX_VOCAB (1 << 24)
#define T5_MAX_LAYERS 4096

/* Integer field; absent or null leaves *out untouched (unless required). */
static int get_int(const cJSON *root, const char *key, const char *where, bool required,
                   long lo, long hi, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) {
        if (required) {
            il_seterr("%s: field '%s' is missing", where, key);
            return -1;
        }
        return 0;
    }
    /* Some configs store eos_token_id as a list; T5 uses the first. */
    if (cJSON_IsArray(it) && cJSON_GetArraySize(it) > 0) it = cJSON_GetArrayItem(it, 0);
    double v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!cJSON_IsNumber(it) || v != floor(v) || v < (double)lo || v > (double)hi) {
        if (lo == 1 && hi >= T5_MAX_DIM)
            il_seterr("%s: field '%s': expected a positive integer (at most %ld)", where, key, hi);
        else
            il_seterr("%s: field '%s': expected an integer in [%ld, %ld]", where, key, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int il_t5_config_validate(const il_t5_config *c, const char *where) {
    struct { const char *name; int v, lo, hi; } f[] = {
        {"vocab_size", c->vocab_size, 1, T5_MAX_VOCAB},
        {"d_model", c->d_model, 1, T5_MAX_DIM},
        {"d_kv", c->d_kv, 1, T5_MAX_DIM},
        {"num_heads", c->num_heads, 1, T5_MAX_DIM},
        {"d_ff", c->d_ff, 1, T5_MAX_DIM},
        {"num_layers", c->num_layers, 1, T5_MAX_LAYERS},
        {"num_decoder_layers", c->num_decoder_layers, 1, T5_MAX_LAYERS},
        {"relative_attention_num_buckets", c->rel_buckets, 4, 1 << 16},
        {"relative_attention_max_distance", c->rel_max_distance, 1, 1 << 30},
        {"pad_token_id", c->pad_id, 0, c->vocab_size - 1},
        {"eos_token_id", c->eos_id, 0, c->vocab_size - 1},
        {"decoder_start_token_id", c->decoder_start_id, 0, c->vocab_size - 1},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (f[i].v < f[i].lo || f[i].v > f[i].hi) {
            il_seterr("%s: field '%s': %d is out of range [%d, %d]", where, f[i].name, f[i].v,
                      f[i].lo, f[i].hi);
            return -1;
        }
    }
    if ((long)c->d_kv * c->num_heads > T5_MAX_DIM) {
        il_seterr("%s: fields 'd_kv' x 'num_heads' = %ld is too large", where,
                  (long)c->d_kv * c->num_heads);
        return -1;
    }
    /* The log-spaced buckets need max_distance > max_exact (= num_buckets / 4 in the
     * bidirectional encoder, num_buckets / 2 in the causal decoder). */
    if (c->rel_max_distance <= c->rel_buckets / 2) {
        il_seterr("%s: field 'relative_attention_max_distance': %d must exceed "
                  "relative_attention_num_buckets / 2 = %d", where, c->rel_max_distance,
                  c->rel_buckets / 2);
        return -1;
    }
    if (!(c->eps > 0.0f) || !isfinite(c->eps)) {
        il_seterr("%s: field 'layer_norm_epsilon': expected a positive number", where);
        return -1;
    }
    if (c->act != IL_ACT_RELU && c->act != IL_ACT_GELU_NEW && c->act != IL_ACT_GELU) {
        il_seterr("%s: unknown activation %d", where, (int)c->act);
        return -1;
    }
    return 0;
}

/* feed_forward_proj as T5Config.__init__ reads it: "[gated-]ACT". */
static int parse_ff_proj(il_t5_config *c, const char *s, const char *where) {
    const char *act = s;
    c->gated = false;
    if (strncmp(s, "gated-", 6) == 0) {
        c->gated = true;
        act = s + 6;
    }
    if (strcmp(act, "relu") == 0) c->act = IL_ACT_RELU;
    else if (strcmp(act, "gelu_new") == 0) c->act = IL_ACT_GELU_NEW;
    /* transformers maps "gated-gelu" to gelu_new (the tanh form); plain "gelu" is erf. */
    else if (strcmp(act, "gelu") == 0) c->act = c->gated ? IL_ACT_GELU_NEW : IL_ACT_GELU;
    else {
        il_seterr("%s: field 'feed_forward_proj': unsupported value '%s' (expected "
                  "\"relu\", \"gated-relu\", \"gelu\", \"gated-gelu\" or \"gelu_new\")",
                  where, s);
        return -1;
    }
    return 0;
}

int il_t5_config_parse(il_t5_config *out, const char *json, const char *where) {
    il_t5_config c;
    memset(&c, 0, sizeof c);
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        long off = (e && e >= json) ? (long)(e - json) : -1;
        il_seterr("%s: malformed JSON (near byte %ld)", where, off);
        return -1;
    }
    if (!cJSON_IsObject(root)) {
        il_seterr("%s: expected a JSON object", where);
        goto fail;
    }
    if (get_int(root, "vocab_size", where, true, 1, T5_MAX_VOCAB, &c.vocab_size) ||
        get_int(root, "d_model", where, true, 1, T5_MAX_DIM, &c.d_model) ||
        get_int(root, "d_kv", where, true, 1, T5_MAX_DIM, &c.d_kv) ||
        get_int(root, "num_heads", where, true, 1, T5_MAX_DIM, &c.num_heads) ||
        get_int(root, "d_ff", where, true, 1, T5_MAX_DIM, &c.d_ff) ||
        get_int(root, "num_layers", where, true, 1, T5_MAX_LAYERS, &c.num_layers))
        goto fail;
    c.num_decoder_layers = c.num_layers;
    if (get_int(root, "num_decoder_layers", where, false, 1, T5_MAX_LAYERS,
                &c.num_decoder_layers))
        goto fail;
    c.rel_buckets = 32;
    c.rel_max_distance = 128;
    if (get_int(root, "relative_attention_num_buckets", where, false, 4, 1 << 16,
                &c.rel_buckets) ||
        get_int(root, "relative_attention_max_distance", where, false, 1, 1 << 30,
                &c.rel_max_distance))
        goto fail;

    c.eps = 1e-6f;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_epsilon");
    if (it && !cJSON_IsNull(it)) {
        if (!cJSON_IsNumber(it) || !(it->valuedouble > 0) || !(it->valuedouble < 1)) {
            il_seterr("%s: field 'layer_norm_epsilon': expected a number in (0, 1)", where);
            goto fail;
        }
        c.eps = (float)it->valuedouble;
    }

    /* T5Config's default is "relu" (original T5). */
    c.act = IL_ACT_RELU;
    it = cJSON_GetObjectItemCaseSensitive(root, "feed_forward_proj");
    if (it && !cJSON_IsNull(it)) {
        if (!cJSON_IsString(it)) {
            il_seterr("%s: field 'feed_forward_proj': expected a string", where);
            goto fail;
        }
        if (parse_ff_proj(&c, it->valuestring, where)) goto fail;
    }

    c.tie_word_embeddings = true; /* PretrainedConfig's default */
    it = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (it && !cJSON_IsNull(it)) {
        if (!cJSON_IsBool(it)) {
            il_seterr("%s: field 'tie_word_embeddings': expected true or false", where);
            goto fail;
        }
        c.tie_word_embeddings = cJSON_IsTrue(it);
    }

    c.pad_id = 0;
    c.eos_id = 1;
    if (get_int(root, "pad_token_id", where, false, 0, c.vocab_size - 1, &c.pad_id) ||
        get_int(root, "eos_token_id", where, false, 0, c.vocab_size - 1, &c.eos_id))
        goto fail;
    c.decoder_start_id = c.pad_id; /* absent -> pad, as T5's _shift_right does */
    if (get_int(root, "decoder_start_token_id", where, false, 0, c.vocab_size - 1,
                &c.decoder_start_id))
        goto fail;

    if (il_t5_config_validate(&c, where)) goto fail;
    cJSON_Delete(root);
    *out = c;
    return 0;
fail:
    cJSON_Delete(root);
    return -1;
}

int il_t5_config_load(il_t5_config *c, const char *path) {
    size_t len;
    char *text = il_read_file(path, &len);
    if (!text) return -1;
    if (strlen(text) != len) {
        il_seterr("%s: malformed JSON (contains a NUL byte)", path);
        free(text);
        return -1;
    }
    int rc = il_t5_config_parse(c, text, path);
    free(text);
    return rc;
}
