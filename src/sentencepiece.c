/* sentencepiece.c - the T5 tokenizer of sentencepiece.h: loading, and the Hugging Face
 * T5Tokenizer rules (transformers 4.31, slow tokenizer, legacy=true, from_pretrained) on
 * top of the raw sentencepiece model of spm_*.c. */
#include "sentencepiece.h"

#include <cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spm_internal.h"

/* A special token as transformers' tokenize() sees it: split out of the text before
 * sentencepiece runs. Plain-string tokens strip whitespace on both sides; AddedToken
 * entries strip only as their lstrip/rstrip flags say. */
typedef struct {
    char *text;
    size_t len;
    int32_t id;
    bool lstrip, rstrip;
} special_token;

struct il_tokenizer {
    spm_model m;
    int extra_ids, vocab_size;
    int pad_id, eos_id, unk_id;
    special_token *special;
    int n_special;
    uint8_t first_byte[32]; /* bitmap of the first bytes of special tokens */
    uint8_t *is_special;    /* [vocab_size] */
    bool cleanup;           /* clean_up_tokenization_spaces */
};

/* ---- token lists ---- */

typedef struct {
    int32_t *ids;
    uint32_t *off;
    int n, cap;
    il_buf text;
} tok_builder;

static int tb_push(tok_builder *b, int32_t id, const char *s, size_t len) {
    if (b->n == b->cap) {
        if (b->cap >= INT_MAX / 2) { il_seterr("too many tokens"); return -1; }
        int cap = b->cap ? 2 * b->cap : 64;
        int32_t *ids = il_realloc(b->ids, (size_t)cap * sizeof *ids);
        if (!ids) return -1;
        b->ids = ids;
        uint32_t *off = il_realloc(b->off, (size_t)cap * sizeof *off);
        if (!off) return -1;
        b->off = off;
        b->cap = cap;
    }
    if (b->text.len + len + 1 > UINT32_MAX) { il_seterr("text too long"); return -1; }
    b->ids[b->n] = id;
    b->off[b->n] = (uint32_t)b->text.len;
    if (il_buf_append(&b->text, s, len) || il_buf_append(&b->text, "", 1)) return -1;
    b->n++;
    return 0;
}

static void tb_free(tok_builder *b) {
    free(b->ids);
    free(b->off);
    il_buf_free(&b->text);
    memset(b, 0, sizeof *b);
}

/* Moves the builder into out (the builder is left empty). */
static int tb_finish(tok_builder *b, il_tokens *out) {
    memset(out, 0, sizeof *out);
    if (!b->ids && !(b->ids = il_malloc(sizeof *b->ids))) return -1;
    if (!b->text.data && il_buf_append(&b->text, "", 0)) return -1;
    char **tokens = il_malloc((size_t)(b->n ? b->n : 1) * sizeof *tokens);
    size_t *lens = il_malloc((size_t)(b->n ? b->n : 1) * sizeof *lens);
    if (!tokens || !lens) { free(tokens); free(lens); return -1; }
    for (int i = 0; i < b->n; i++) {
        tokens[i] = b->text.data + b->off[i];
        size_t end = i + 1 < b->n ? b->off[i + 1] : b->text.len;
        lens[i] = end - b->off[i] - 1; /* each token is followed by its NUL */
    }
    out->ids = b->ids;
    out->tokens = tokens;
    out->lens = lens;
    out->n = b->n;
    out->storage_ = b->text.data;
    free(b->off);
    memset(b, 0, sizeof *b);
    return 0;
}

void il_tokens_free(il_tokens *t) {
    if (!t) return;
    free(t->ids);
    free(t->tokens);
    free(t->lens);
    free(t->storage_);
    memset(t, 0, sizeof *t);
}

/* ---- Python string helpers ---- */

/* Python's str.isspace() (Unicode White_Space-like set that str.strip() removes). */
static bool py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Bytes of leading whitespace in valid UTF-8 s. */
static size_t py_lstrip(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        int k = il_utf8_decode(s + i, len - i, &cp);
        if (k == 0 || !py_isspace(cp)) break;
        i += (size_t)k;
    }
    return i;
}

/* Length of valid UTF-8 s without its trailing whitespace. */
static size_t py_rstrip(const char *s, size_t len) {
    while (len > 0) {
        size_t start = len - 1;
        while (start > 0 && ((uint8_t)s[start] & 0xc0) == 0x80) start--;
        uint32_t cp;
        int k = il_utf8_decode(s + start, len - start, &cp);
        if (k == 0 || (size_t)k != len - start || !py_isspace(cp)) break;
        len = start;
    }
    return len;
}

/* ---- encoding ---- */

/* The longest special token that starts at s, or -1 (transformers' Trie.split). */
static int match_special(const il_tokenizer *t, const char *s, size_t len) {
    uint8_t c = (uint8_t)s[0];
    if (!(t->first_byte[c >> 3] & (1u << (c & 7)))) return -1;
    int best = -1;
    for (int k = 0; k < t->n_special; k++) {
        const special_token *sp = &t->special[k];
        if (sp->len <= len && (best < 0 || sp->len > t->special[best].len) &&
            memcmp(s, sp->text, sp->len) == 0)
            best = k;
    }
    return best;
}

/* sentencepiece on one piece of text; HF converts the pieces back with piece_to_id, which
 * maps a merged unknown run to <unk> - the segment id already is that. */
static int encode_chunk(const il_tokenizer *t, const char *s, size_t len, tok_builder *b,
                        il_buf *norm, spm_segs *segs) {
    if (len == 0) return 0; /* transformers skips empty (fully stripped) chunks */
    if (spm_encode(&t->m, s, len, norm, segs)) return -1;
    for (int i = 0; i < segs->n; i++) {
        spm_seg g = segs->v[i];
        int rc = g.id == t->m.unk_id ? tb_push(b, g.id, norm->data + g.off, g.len)
                                     : tb_push(b, g.id, spm_piece(&t->m, g.id), t->m.len[g.id]);
        if (rc) return -1;
    }
    return 0;
}

/* Checks that text is UTF-8 (Python str cannot hold anything else); what names the call. */
static int check_text(const char *text, size_t len, const char *what) {
    if (!text && len) { il_seterr("%s: NULL text", what); return -1; }
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        int k = il_utf8_decode(text + i, len - i, &cp);
        if (k == 0) { il_seterr("%s: text is not valid UTF-8 (byte %zu)", what, i); return -1; }
        i += (size_t)k;
    }
    return 0;
}

/* Ordinary text between special tokens: transformers strips the whitespace next to a
 * special token (the left neighbour's rstrip flag, the right neighbour's lstrip flag). */
static int encode_between(const il_tokenizer *t, const char *s, size_t n,
                          const special_token *left, const special_token *right, tok_builder *b,
                          il_buf *norm, spm_segs *segs) {
    if (left && left->rstrip) {
        size_t skip = py_lstrip(s, n);
        s += skip;
        n -= skip;
    }
    if (right && right->lstrip) n = py_rstrip(s, n);
    return encode_chunk(t, s, n, b, norm, segs);
}

/* transformers PreTrainedTokenizer.tokenize (4.31): split on special tokens, strip the
 * whitespace next to them, run sentencepiece on every remaining chunk separately (so each
 * chunk gets its own dummy-prefix "▁" - the legacy behaviour). */
static int hf_tokenize(const il_tokenizer *t, const char *text, size_t len, tok_builder *b) {
    if (check_text(text, len, "tokenize")) return -1;
    il_buf norm = {0};
    spm_segs segs = {0};
    int rc = -1;
    size_t chunk = 0; /* start of the pending ordinary text */
    const special_token *prev = NULL;
    for (size_t i = 0; i < len;) {
        int k = match_special(t, text + i, len - i);
        if (k < 0) { i++; continue; }
        const special_token *sp = &t->special[k];
        if (encode_between(t, text + chunk, i - chunk, prev, sp, b, &norm, &segs) ||
            tb_push(b, sp->id, sp->text, sp->len))
            goto out;
        i += sp->len;
        chunk = i;
        prev = sp;
    }
    rc = encode_between(t, text + chunk, len - chunk, prev, NULL, b, &norm, &segs);
out:
    il_buf_free(&norm);
    free(segs.v);
    return rc;
}

int il_tokenizer_tokenize(const il_tokenizer *t, const char *text, size_t len, il_tokens *out) {
    tok_builder b = {0};
    memset(out, 0, sizeof *out);
    if (hf_tokenize(t, text, len, &b) || tb_finish(&b, out)) { tb_free(&b); return -1; }
    return 0;
}

int il_tokenizer_encode(const il_tokenizer *t, const char *text, size_t len, int32_t **ids,
                        int *n_ids) {
    tok_builder b = {0};
    *ids = NULL;
    *n_ids = 0;
    if (hf_tokenize(t, text, len, &b)) { tb_free(&b); return -1; }
    /* T5Tokenizer._add_eos_if_not_present */
    if ((b.n == 0 || b.ids[b.n - 1] != t->eos_id) && tb_push(&b, t->eos_id, "", 0)) {
        tb_free(&b);
        return -1;
    }
    *ids = b.ids;
    *n_ids = b.n;
    b.ids = NULL;
    tb_free(&b);
    return 0;
}

int il_tokenizer_spm_encode(const il_tokenizer *t, const char *text, size_t len, il_tokens *out) {
    memset(out, 0, sizeof *out);
    if (check_text(text, len, "spm_encode")) return -1;
    tok_builder b = {0};
    il_buf norm = {0};
    spm_segs segs = {0};
    int rc = encode_chunk(t, text, len, &b, &norm, &segs);
    il_buf_free(&norm);
    free(segs.v);
    if (rc || tb_finish(&b, out)) { tb_free(&b); return -1; }
    return 0;
}

/* ---- decoding ---- */

/* Longest "<extra_id_-2147483648>" plus NUL. */
#define LITERAL_MAX 24

/* T5Tokenizer._convert_id_to_token: a piece, or "<extra_id_{vocab_size-1-id}>" beyond the
 * pieces (so ids past the tokenizer size give negative numbers). */
static void id_to_token(const il_tokenizer *t, int32_t id, char lit[LITERAL_MAX], spm_item *it) {
    if (id < t->m.n) {
        *it = (spm_item){spm_piece(&t->m, id), t->m.len[id], id};
        return;
    }
    int k = snprintf(lit, LITERAL_MAX, "<extra_id_%lld>", (long long)t->vocab_size - 1 - id);
    /* sentencepiece's PieceToId of a string that is no piece is <unk> */
    int sp = spm_piece_id(&t->m, lit, (size_t)k);
    *it = (spm_item){lit, (size_t)k, sp >= 0 ? sp : t->m.unk_id};
}

/* str.replace for each of transformers' clean_up_tokenization rules, in order. */
static char *clean_up(const char *s) {
    static const char *const rules[][2] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
        {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };
    char *cur = il_strdup(s);
    for (size_t r = 0; cur && r < sizeof rules / sizeof rules[0]; r++) {
        const char *from = rules[r][0], *to = rules[r][1];
        size_t fl = strlen(from);
        il_buf b = {0};
        const char *p = cur, *q;
        int rc = 0;
        while (!rc && (q = strstr(p, from)) != NULL) {
            rc = il_buf_append(&b, p, (size_t)(q - p)) || il_buf_puts(&b, to);
            p = q + fl;
        }
        if (!rc) rc = il_buf_puts(&b, p);
        free(cur);
        cur = rc ? NULL : b.data;
        if (rc) il_buf_free(&b);
    }
    return cur;
}

/* transformers _decode + T5Tokenizer.convert_tokens_to_string (4.31): ordinary tokens are
 * collected and decoded by sentencepiece; at each special token the text gets " " (unless
 * the previous token was special too), the collected text, then the token itself. */
char *il_tokenizer_decode(const il_tokenizer *t, const int32_t *ids, int n, bool skip_special,
                          bool cleanup) {
    if (n < 0 || (n > 0 && !ids)) { il_seterr("decode: invalid id list"); return NULL; }
    spm_item *sub = il_malloc((size_t)(n ? n : 1) * sizeof *sub);
    char (*lit)[LITERAL_MAX] = il_malloc((size_t)(n ? n : 1) * LITERAL_MAX);
    il_buf out = {0};
    char *result = NULL;
    if (!sub || !lit || il_buf_append(&out, "", 0)) goto done;
    int nsub = 0;
    bool prev_special = false;
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0) { il_seterr("decode: invalid id %d at position %d", id, i); goto done; }
        bool special = id < t->vocab_size && t->is_special[id];
        if (special && skip_special) continue;
        if (!special) {
            id_to_token(t, id, lit[i], &sub[nsub++]);
            prev_special = false;
            continue;
        }
        spm_item tok;
        id_to_token(t, id, lit[i], &tok);
        if ((!prev_special && il_buf_append(&out, " ", 1)) || spm_decode(&t->m, sub, nsub, &out) ||
            il_buf_append(&out, tok.s, tok.len))
            goto done;
        nsub = 0;
        prev_special = true;
    }
    if (spm_decode(&t->m, sub, nsub, &out)) goto done;
    /* .strip() */
    size_t skip = py_lstrip(out.data, out.len);
    size_t len = py_rstrip(out.data + skip, out.len - skip);
    char *stripped = il_strndup(out.data + skip, len);
    if (!stripped || !cleanup) { result = stripped; goto done; }
    result = clean_up(stripped);
    free(stripped);
done:
    free(sub);
    free(lit);
    il_buf_free(&out);
    return result;
}

char *il_tokenizer_spm_decode(const il_tokenizer *t, const int32_t *ids, int n) {
    if (n < 0 || (n > 0 && !ids)) { il_seterr("spm_decode: invalid id list"); return NULL; }
    spm_item *items = il_malloc((size_t)(n ? n : 1) * sizeof *items);
    if (!items) return NULL;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->m.n) {
            il_seterr("spm_decode: invalid id %d at position %d (%d pieces)", ids[i], i, t->m.n);
            free(items);
            return NULL;
        }
        items[i] = (spm_item){spm_piece(&t->m, ids[i]), t->m.len[ids[i]], ids[i]};
    }
    il_buf out = {0};
    char *result = NULL;
    if (!il_buf_append(&out, "", 0) && !spm_decode(&t->m, items, n, &out)) {
        result = out.data;
        out.data = NULL;
    }
    il_buf_free(&out);
    free(items);
    return result;
}

/* ---- configuration ---- */

/* A special token named in tokenizer_config.json / special_tokens_map.json. */
typedef struct {
    char *content; /* NULL: not set */
    bool lstrip, rstrip;
} tok_spec;

enum { TOK_EOS, TOK_UNK, TOK_PAD, TOK_BOS, TOK_SEP, TOK_CLS, TOK_MASK, N_NAMED };
static const char *const named_keys[N_NAMED] = {"eos_token", "unk_token", "pad_token", "bos_token",
                                                "sep_token", "cls_token", "mask_token"};

typedef struct {
    tok_spec named[N_NAMED];
    tok_spec *extra; /* additional_special_tokens */
    int n_extra;
    bool has_extra_list;
    int extra_ids;
    bool cleanup;
} hf_config;

static void tok_spec_free(tok_spec *s) {
    free(s->content);
    s->content = NULL;
}

static void config_free(hf_config *c) {
    for (int i = 0; i < N_NAMED; i++) tok_spec_free(&c->named[i]);
    for (int i = 0; i < c->n_extra; i++) tok_spec_free(&c->extra[i]);
    free(c->extra);
    memset(c, 0, sizeof *c);
}

/* T5Tokenizer's defaults. */
static int config_init(hf_config *c, int extra_ids) {
    memset(c, 0, sizeof *c);
    c->extra_ids = extra_ids;
    c->cleanup = true;
    static const char *const defaults[3] = {"</s>", "<unk>", "<pad>"};
    for (int i = 0; i < 3; i++) {
        c->named[i] = (tok_spec){il_strdup(defaults[i]), true, true};
        if (!c->named[i].content) return -1;
    }
    return 0;
}

/* A string (transformers strips around it on both sides) or an AddedToken object
 * ({"content": ..., "lstrip": ..., "rstrip": ...}). JSON null leaves the token unset. */
static int tok_spec_parse(const cJSON *v, tok_spec *out, const char *file, const char *key) {
    tok_spec_free(out);
    if (cJSON_IsNull(v)) return 0;
    if (cJSON_IsString(v)) {
        *out = (tok_spec){il_strdup(v->valuestring), true, true};
        return out->content ? 0 : -1;
    }
    const cJSON *content = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "content") : NULL;
    if (!cJSON_IsString(content)) {
        il_seterr("%s: %s: expected a string or an object with \"content\"", file, key);
        return -1;
    }
    *out = (tok_spec){il_strdup(content->valuestring),
                      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "lstrip")),
                      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "rstrip"))};
    return out->content ? 0 : -1;
}

static int config_apply(hf_config *c, const cJSON *root, const char *file) {
    if (!cJSON_IsObject(root)) { il_seterr("%s: expected a JSON object", file); return -1; }
    for (int i = 0; i < N_NAMED; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, named_keys[i]);
        if (v && tok_spec_parse(v, &c->named[i], file, named_keys[i])) return -1;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "extra_ids");
    if (v) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1000000 ||
            v->valuedouble != (double)(int)v->valuedouble) {
            il_seterr("%s: extra_ids: expected a non-negative integer", file);
            return -1;
        }
        c->extra_ids = (int)v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "clean_up_tokenization_spaces");
    if (v) {
        if (!cJSON_IsBool(v)) { il_seterr("%s: clean_up_tokenization_spaces: expected a boolean", file); return -1; }
        c->cleanup = cJSON_IsTrue(v);
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "additional_special_tokens");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsArray(v)) { il_seterr("%s: additional_special_tokens: expected an array", file); return -1; }
        for (int i = 0; i < c->n_extra; i++) tok_spec_free(&c->extra[i]);
        free(c->extra);
        c->n_extra = 0;
        int n = cJSON_GetArraySize(v);
        c->extra = il_calloc((size_t)(n ? n : 1), sizeof *c->extra);
        if (!c->extra) return -1;
        c->has_extra_list = true;
        const cJSON *item;
        cJSON_ArrayForEach(item, v) {
            char key[64];
            snprintf(key, sizeof key, "additional_special_tokens[%d]", c->n_extra);
            if (tok_spec_parse(item, &c->extra[c->n_extra], file, key)) return -1;
            if (c->extra[c->n_extra].content) c->n_extra++;
        }
    }
    return 0;
}

/* Reads an optional JSON file into the configuration. */
static int config_read(hf_config *c, const char *dir, const char *name) {
    char *path = il_path_join(dir, name);
    if (!path) return -1;
    int rc = 0;
    if (il_file_exists(path)) {
        size_t len;
        char *text = il_read_file(path, &len);
        cJSON *root = text ? cJSON_ParseWithLength(text, len) : NULL;
        if (!text) rc = -1;
        else if (!root) { il_seterr("%s: invalid JSON", path); rc = -1; }
        else rc = config_apply(c, root, path);
        cJSON_Delete(root);
        free(text);
    }
    free(path);
    return rc;
}

/* transformers' convert_tokens_to_ids for T5: "<extra_id_N>..." (re.match, so anything
 * may follow the '>') is vocab_size - 1 - N; anything else is sentencepiece PieceToId,
 * where a string that is no piece gives <unk>. */
static int resolve_token(const il_tokenizer *t, const char *s, int32_t *id, const char *what) {
    if (strncmp(s, "<extra_id_", 10) == 0) {
        const char *p = s + 10;
        long long num = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && num < 100000000) { num = num * 10 + (*p++ - '0'); digits++; }
        long long v = (long long)t->vocab_size - 1 - num;
        if (!digits || *p != '>' || v < 0) {
            il_seterr("%s: special token \"%s\" is not a valid extra id (%d extra ids)", what, s,
                      t->extra_ids);
            return -1;
        }
        *id = (int32_t)v;
        return 0;
    }
    int p = spm_piece_id(&t->m, s, strlen(s));
    *id = p >= 0 ? p : t->m.unk_id;
    return 0;
}

static int add_special(il_tokenizer *t, const tok_spec *spec, const char *what) {
    if (!spec->content || !spec->content[0]) return 0;
    for (int k = 0; k < t->n_special; k++)
        if (strcmp(t->special[k].text, spec->content) == 0) return 0; /* first one wins */
    int32_t id;
    if (resolve_token(t, spec->content, &id, what)) return -1;
    if (id == t->m.unk_id && strcmp(spec->content, spm_piece(&t->m, t->m.unk_id)) != 0) {
        /* transformers would append it as a new "added token"; not supported here */
        il_seterr("%s: special token \"%s\" is not a piece of the model (added tokens are not "
                  "supported)", what, spec->content);
        return -1;
    }
    special_token *sp = il_realloc(t->special, (size_t)(t->n_special + 1) * sizeof *sp);
    if (!sp) return -1;
    t->special = sp;
    char *text = il_strdup(spec->content);
    if (!text) return -1;
    sp[t->n_special++] = (special_token){text, strlen(text), id, spec->lstrip, spec->rstrip};
    uint8_t c = (uint8_t)text[0];
    t->first_byte[c >> 3] |= (uint8_t)(1u << (c & 7));
    t->is_special[id] = 1;
    return 0;
}

/* The HF layer: sizes, special tokens and their ids. what names the model in errors. */
static int setup_hf(il_tokenizer *t, hf_config *c, const char *what) {
    t->extra_ids = c->extra_ids;
    t->vocab_size = t->m.n + c->extra_ids;
    t->cleanup = c->cleanup;
    t->is_special = il_calloc((size_t)t->vocab_size, 1);
    if (!t->is_special) return -1;
    if (!c->has_extra_list) { /* T5Tokenizer: additional_special_tokens = the extra ids */
        c->extra = il_calloc((size_t)(c->extra_ids ? c->extra_ids : 1), sizeof *c->extra);
        if (!c->extra) return -1;
        for (int i = 0; i < c->extra_ids; i++) {
            c->extra[i] = (tok_spec){il_sprintf("<extra_id_%d>", i), true, true};
            if (!c->extra[i].content) return -1;
            c->n_extra++;
        }
    }
    for (int i = 0; i < N_NAMED; i++)
        if (add_special(t, &c->named[i], what)) return -1;
    for (int i = 0; i < c->n_extra; i++)
        if (add_special(t, &c->extra[i], what)) return -1;
    if (!c->named[TOK_EOS].content || !c->named[TOK_PAD].content || !c->named[TOK_UNK].content) {
        il_seterr("%s: the tokenizer needs eos_token, pad_token and unk_token", what);
        return -1;
    }
    int32_t ids[3];
    for (int i = 0; i < 3; i++)
        if (resolve_token(t, c->named[i].content, &ids[i], what)) return -1;
    t->eos_id = ids[TOK_EOS];
    t->unk_id = ids[TOK_UNK];
    t->pad_id = ids[TOK_PAD];
    return 0;
}

/* ---- loading ---- */

void il_tokenizer_free(il_tokenizer *t) {
    if (!t) return;
    spm_model_free(&t->m);
    for (int k = 0; k < t->n_special; k++) free(t->special[k].text);
    free(t->special);
    free(t->is_special);
    free(t);
}

static il_tokenizer *tokenizer_new(void) {
    il_tokenizer *t = il_calloc(1, sizeof *t);
    if (t) spm_model_init(&t->m);
    return t;
}

il_tokenizer *il_tokenizer_from_spm(const void *data, size_t len, const char *name, int extra_ids) {
    if (!name) name = "spiece.model";
    if (extra_ids < 0 || extra_ids > 1000000) { il_seterr("%s: invalid extra_ids %d", name, extra_ids); return NULL; }
    il_tokenizer *t = tokenizer_new();
    hf_config c;
    if (!t) return NULL;
    if (config_init(&c, extra_ids) || spm_model_parse_proto(&t->m, data, len, name) ||
        setup_hf(t, &c, name)) {
        config_free(&c);
        il_tokenizer_free(t);
        return NULL;
    }
    config_free(&c);
    return t;
}

/* Reads the sentencepiece model from spiece.model or tokenizer.json; *json_extra receives
 * the number of <extra_id_N> entries a tokenizer.json vocabulary carries (-1 if none). */
static int load_model(il_tokenizer *t, const char *dir, int *json_extra) {
    *json_extra = -1;
    char *spm_path = il_path_join(dir, "spiece.model");
    char *json_path = il_path_join(dir, "tokenizer.json");
    int rc = -1;
    if (!spm_path || !json_path) goto out;
    if (il_file_exists(spm_path)) {
        size_t len;
        char *data = il_read_file(spm_path, &len);
        if (data) rc = spm_model_parse_proto(&t->m, (const uint8_t *)data, len, spm_path);
        free(data);
    } else if (il_file_exists(json_path)) {
        size_t len;
        char *data = il_read_file(json_path, &len);
        int extra = 0;
        if (data) rc = spm_model_from_tokenizer_json(&t->m, data, len, json_path, &extra);
        if (rc == 0 && extra > 0) *json_extra = extra;
        free(data);
    } else {
        il_seterr("%s: no spiece.model or tokenizer.json", dir);
    }
out:
    free(spm_path);
    free(json_path);
    return rc;
}

il_tokenizer *il_tokenizer_load(const char *model_dir) {
    if (!model_dir) { il_seterr("tokenizer: no model directory"); return NULL; }
    if (!il_dir_exists(model_dir)) { il_seterr("%s: not a directory", model_dir); return NULL; }
    il_tokenizer *t = tokenizer_new();
    hf_config c;
    int json_extra;
    if (!t) return NULL;
    if (config_init(&c, 100)) goto fail;
    if (load_model(t, model_dir, &json_extra)) goto fail;
    if (json_extra > 0) c.extra_ids = json_extra; /* tokenizer_config.json may still override */
    if (config_read(&c, model_dir, "tokenizer_config.json") ||
        config_read(&c, model_dir, "special_tokens_map.json") || setup_hf(t, &c, model_dir))
        goto fail;
    config_free(&c);
    return t;
fail:
    config_free(&c);
    il_tokenizer_free(t);
    return NULL;
}

/* ---- accessors ---- */

int il_tokenizer_vocab_size(const il_tokenizer *t) { return t->vocab_size; }
int il_tokenizer_piece_count(const il_tokenizer *t) { return t->m.n; }
int il_tokenizer_extra_ids(const il_tokenizer *t) { return t->extra_ids; }
int il_tokenizer_pad_id(const il_tokenizer *t) { return t->pad_id; }
int il_tokenizer_eos_id(const il_tokenizer *t) { return t->eos_id; }
int il_tokenizer_unk_id(const il_tokenizer *t) { return t->unk_id; }
bool il_tokenizer_cleanup_default(const il_tokenizer *t) { return t->cleanup; }

bool il_tokenizer_is_special(const il_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->vocab_size && t->is_special[id];
}

const char *il_tokenizer_piece(const il_tokenizer *t, int32_t id, float *score, int *type) {
    if (id < 0 || id >= t->m.n) return NULL;
    if (score) *score = t->m.score[id];
    if (type) *type = t->m.type[id];
    return spm_piece(&t->m, id);
}

const uint8_t *il_tokenizer_charsmap(const il_tokenizer *t, size_t *len) {
    *len = t->m.norm.cm.blob_len;
    return t->m.norm.cm.blob;
}
