/* spm_json.c - a Hugging Face tokenizer.json with a Unigram model, read into the same
 * spm_model as a spiece.model (used when a checkpoint ships no spiece.model):
 *
 *   model.vocab [[piece, score], ...], model.unk_id, model.byte_fallback
 *   added_tokens [{id, content, special}]   special -> CONTROL, others -> USER_DEFINED
 *   normalizer  Precompiled{precompiled_charsmap: base64}, possibly inside a Sequence
 *   pre_tokenizer Metaspace{replacement "▁", add_prefix_space | prepend_scheme}
 *
 * Trailing vocab entries "<extra_id_N>" with id = size - 1 - N (T5Converter's layout) are
 * the extra ids, not pieces. Encoding then follows the slow (sentencepiece) tokenizer:
 * whitespace is stripped and collapsed as remove_extra_whitespaces does. */
#include "spm_internal.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

uint8_t *spm_base64_decode(const char *s, size_t len, size_t *out_len) {
    while (len > 0 && s[len - 1] == '=') len--;
    if (len % 4 == 1) { il_seterr("base64: bad length"); return NULL; }
    uint8_t *out = il_malloc(len / 4 * 3 + 3);
    if (!out) return NULL;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0) { il_seterr("base64: invalid character at %zu", i); free(out); return NULL; }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    *out_len = n;
    return out;
}

/* Finds the first node of the given type in a normalizer / pre_tokenizer tree (the node
 * itself, or an element of a Sequence's list). */
static const cJSON *find_typed(const cJSON *node, const char *type, const char *list_key) {
    if (!cJSON_IsObject(node)) return NULL;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(node, "type");
    if (cJSON_IsString(ty) && strcmp(ty->valuestring, type) == 0) return node;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(node, list_key);
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        const cJSON *hit = find_typed(item, type, list_key);
        if (hit) return hit;
    }
    return NULL;
}

static int read_normalizer(spm_model *m, const cJSON *root, const char *what) {
    const cJSON *pre = find_typed(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "Precompiled",
                                  "normalizers");
    if (!pre) return 0; /* no charsmap: text is only whitespace-normalised */
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(pre, "precompiled_charsmap");
    if (cJSON_IsNull(b64)) return 0;
    if (!cJSON_IsString(b64)) {
        il_seterr("%s: normalizer: precompiled_charsmap: expected a base64 string", what);
        return -1;
    }
    size_t n;
    uint8_t *blob = spm_base64_decode(b64->valuestring, strlen(b64->valuestring), &n);
    if (!blob) { il_prefixerr("%s: normalizer: precompiled_charsmap", what); return -1; }
    int rc = n ? spm_charsmap_load(&m->norm.cm, blob, n, what) : 0;
    free(blob);
    return rc;
}

static int read_pre_tokenizer(spm_model *m, const cJSON *root, const char *what) {
    const cJSON *ms = find_typed(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), "Metaspace",
                                 "pretokenizers");
    if (!ms) return 0; /* keep sentencepiece's defaults */
    const cJSON *rep = cJSON_GetObjectItemCaseSensitive(ms, "replacement");
    if (rep && (!cJSON_IsString(rep) || strcmp(rep->valuestring, "\xe2\x96\x81") != 0)) {
        il_seterr("%s: pre_tokenizer: Metaspace replacement other than \"\xe2\x96\x81\" is not "
                  "supported", what);
        return -1;
    }
    const cJSON *aps = cJSON_GetObjectItemCaseSensitive(ms, "add_prefix_space");
    const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(ms, "prepend_scheme");
    if (cJSON_IsBool(aps)) m->norm.add_dummy_prefix = cJSON_IsTrue(aps);
    else if (cJSON_IsString(scheme)) m->norm.add_dummy_prefix = strcmp(scheme->valuestring, "never") != 0;
    return 0;
}

/* Number of trailing vocab entries that are "<extra_id_N>" with N = size - 1 - index. */
static int count_extra_ids(const cJSON *vocab, int n) {
    int k = 0;
    for (int i = n - 1; i >= 0; i--) {
        const cJSON *piece = cJSON_GetArrayItem(cJSON_GetArrayItem(vocab, i), 0);
        char want[32];
        snprintf(want, sizeof want, "<extra_id_%d>", n - 1 - i);
        if (!cJSON_IsString(piece) || strcmp(piece->valuestring, want) != 0) break;
        k++;
    }
    return k;
}

/* Piece types: <unk>, special added tokens (control), other added tokens (user-defined),
 * byte pieces when byte_fallback is on, everything else normal. */
static void piece_types(const cJSON *root, const cJSON *vocab, int n, int unk_id,
                        bool byte_fallback, uint8_t *types) {
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        const char *s = cJSON_GetArrayItem(e, 0)->valuestring;
        bool is_byte = strlen(s) == 6 && strncmp(s, "<0x", 3) == 0 && s[5] == '>';
        types[i++] = byte_fallback && is_byte ? SPM_BYTE : SPM_NORMAL;
    }
    const cJSON *tok;
    cJSON_ArrayForEach(tok, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(tok, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= n) continue;
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tok, "special"));
        types[(int)id->valuedouble] = special ? SPM_CONTROL : SPM_USER_DEFINED;
    }
    types[unk_id] = SPM_UNKNOWN;
}

static int read_model(spm_model *m, const cJSON *root, const char *what, int *extra_ids) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!cJSON_IsObject(model)) { il_seterr("%s: no \"model\" object", what); return -1; }
    if (type && (!cJSON_IsString(type) || strcmp(type->valuestring, "Unigram") != 0)) {
        il_seterr("%s: model.type %s is not supported (only Unigram)", what,
                  cJSON_IsString(type) ? type->valuestring : "?");
        return -1;
    }
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsArray(vocab)) { il_seterr("%s: model.vocab: expected an array", what); return -1; }
    int n = cJSON_GetArraySize(vocab);
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_id");
    if (!cJSON_IsNumber(unk) || unk->valuedouble < 0 || unk->valuedouble >= n ||
        unk->valuedouble != (double)(int)unk->valuedouble) {
        il_seterr("%s: model.unk_id: expected the id of a vocab entry", what);
        return -1;
    }
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) { /* validate entries before anything reads them */
        const cJSON *p = cJSON_GetArrayItem(e, 0), *s = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsArray(e) || !cJSON_IsString(p) || !cJSON_IsNumber(s)) {
            il_seterr("%s: model.vocab[%d]: expected [piece, score]", what, i);
            return -1;
        }
        i++;
    }
    m->byte_fallback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"));
    *extra_ids = count_extra_ids(vocab, n);
    int n_pieces = n - *extra_ids;
    uint8_t *types = il_malloc((size_t)(n ? n : 1));
    if (!types) return -1;
    piece_types(root, vocab, n, (int)unk->valuedouble, m->byte_fallback, types);
    int rc = 0;
    i = 0;
    cJSON_ArrayForEach(e, vocab) {
        if (i >= n_pieces) break;
        const char *p = cJSON_GetArrayItem(e, 0)->valuestring;
        if (spm_model_add_piece(m, p, strlen(p), (float)cJSON_GetArrayItem(e, 1)->valuedouble,
                                types[i])) {
            rc = -1;
            break;
        }
        i++;
    }
    free(types);
    return rc;
}

int spm_model_from_tokenizer_json(spm_model *m, const char *json, size_t len, const char *what,
                                  int *extra_ids) {
    *extra_ids = 0;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) { il_seterr("%s: invalid JSON", what); return -1; }
    int rc = -1;
    if (!cJSON_IsObject(root)) { il_seterr("%s: expected a JSON object", what); goto out; }
    if (read_model(m, root, what, extra_ids) || read_normalizer(m, root, what) ||
        read_pre_tokenizer(m, root, what) || spm_model_finish(m, what))
        goto out;
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}
