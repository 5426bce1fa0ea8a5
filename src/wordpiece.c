/* wordpiece.c - BertTokenizer (transformers 4.31, slow): vocabulary and configuration
 * loading, the BasicTokenizer text rules, WordPiece, encode and decode. See wordpiece.h for
 * the exact sequence of steps; the comments here say where transformers' Python behaviour
 * forces a particular choice. Text is processed as arrays of code points, because every
 * rule (the 100-character limit, punctuation, lower-casing) is per Python character. */
#include "wordpiece.h"

#include <cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "util.h"

#define WP_MAX_CHARS_PER_WORD 100 /* WordpieceTokenizer.max_input_chars_per_word */
#define WP_N_ROLES 7              /* bos, eos, unk, sep, pad, cls, mask */
enum { ROLE_BOS, ROLE_EOS, ROLE_UNK, ROLE_SEP, ROLE_PAD, ROLE_CLS, ROLE_MASK };
static const char *const role_keys[WP_N_ROLES] = {"bos_token", "eos_token", "unk_token",
                                                  "sep_token", "pad_token", "cls_token",
                                                  "mask_token"};
static const char *const role_defaults[WP_N_ROLES] = {NULL, NULL, "[UNK]", "[SEP]",
                                                      "[PAD]", "[CLS]", "[MASK]"};

/* A special token: its text, id and code points (for matching inside the text). */
typedef struct {
    char *text;
    int32_t id;
    uint32_t *cps;
    size_t n_cps;
} wp_special;

struct il_wordpiece {
    char **vocab;          /* [n_lines] id -> token (line text) */
    size_t *vocab_len;     /* byte lengths (a line may hold a NUL byte) */
    int n_lines;
    int32_t *table;        /* open addressing over vocab: id or -1 */
    size_t table_mask;
    wp_special *specials;  /* all_special_tokens, deduplicated, in transformers' order */
    int n_specials;
    int n_appended;        /* specials given ids n_lines, n_lines + 1, ... */
    int32_t role_id[WP_N_ROLES]; /* -1 when the role is unset */
    const char *unk_text;  /* points into specials */
    char **never_split;    /* tokenizer_config never_split */
    int n_never_split;
    bool lower, basic, chinese, cleanup;
    int strip_accents;     /* -1 null (follow lower-casing), 0 false, 1 true */
    int model_max_length;
};

/* ===== growable containers ===== */

typedef struct {
    uint32_t *v;
    size_t n, cap;
} cpvec;

static int cp_reserve(cpvec *a, size_t extra) {
    if (a->n + extra <= a->cap) return 0;
    size_t cap = a->cap ? a->cap : 64;
    while (cap < a->n + extra) cap *= 2;
    uint32_t *v = il_realloc(a->v, cap * sizeof *v);
    if (!v) return -1;
    a->v = v;
    a->cap = cap;
    return 0;
}

static int cp_push(cpvec *a, uint32_t c) {
    if (cp_reserve(a, 1)) return -1;
    a->v[a->n++] = c;
    return 0;
}

static int cp_append(cpvec *a, const uint32_t *c, size_t n) {
    if (cp_reserve(a, n)) return -1;
    memcpy(a->v + a->n, c, n * sizeof *c);
    a->n += n;
    return 0;
}

/* Decode valid UTF-8 (checked by the caller) into code points. */
static int cp_from_utf8(cpvec *a, const char *s, size_t len) {
    a->n = 0;
    if (cp_reserve(a, len)) return -1;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        int k = il_utf8_decode(s + i, len - i, &c);
        if (k <= 0) { /* cannot happen after il_utf8_valid; fail safe */
            il_seterr("wordpiece: text is not valid UTF-8 (byte %zu)", i);
            return -1;
        }
        a->v[a->n++] = c;
        i += (size_t)k;
    }
    return 0;
}

static int cp_to_utf8(il_buf *b, const uint32_t *c, size_t n) {
    char tmp[4];
    for (size_t i = 0; i < n; i++)
        if (il_buf_append(b, tmp, (size_t)il_utf8_encode(c[i], tmp))) return -1;
    return 0;
}

/* Words as (start, length) ranges into one code-point buffer. */
typedef struct {
    cpvec cps;
    size_t *start, *len;
    size_t n, cap;
} wordlist;

static int words_add(wordlist *w, const uint32_t *c, size_t n) {
    if (n == 0) return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 32;
        size_t *s = il_realloc(w->start, cap * sizeof *s);
        if (!s) return -1;
        w->start = s;
        size_t *l = il_realloc(w->len, cap * sizeof *l);
        if (!l) return -1;
        w->len = l;
        w->cap = cap;
    }
    w->start[w->n] = w->cps.n;
    w->len[w->n] = n;
    if (cp_append(&w->cps, c, n)) return -1;
    w->n++;
    return 0;
}

static void words_free(wordlist *w) {
    free(w->cps.v);
    free(w->start);
    free(w->len);
    memset(w, 0, sizeof *w);
}

/* Output tokens: bytes of every token (each NUL-terminated) plus offsets and ids; turned
 * into an il_tokens at the end (offsets, because the byte buffer moves as it grows). */
typedef struct {
    il_buf bytes;
    size_t *off, *len;
    int32_t *ids;
    int n, cap;
} tokout;

static int out_push(tokout *o, const char *s, size_t len, int32_t id) {
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 32;
        size_t *off = il_realloc(o->off, (size_t)cap * sizeof *off);
        if (!off) return -1;
        o->off = off;
        size_t *l = il_realloc(o->len, (size_t)cap * sizeof *l);
        if (!l) return -1;
        o->len = l;
        int32_t *ids = il_realloc(o->ids, (size_t)cap * sizeof *ids);
        if (!ids) return -1;
        o->ids = ids;
        o->cap = cap;
    }
    o->off[o->n] = o->bytes.len;
    o->len[o->n] = len;
    o->ids[o->n] = id;
    if (il_buf_append(&o->bytes, s, len) || il_buf_append(&o->bytes, "", 1)) return -1;
    o->n++;
    return 0;
}

static void out_free(tokout *o) {
    il_buf_free(&o->bytes);
    free(o->off);
    free(o->len);
    free(o->ids);
    memset(o, 0, sizeof *o);
}

static int out_finish(tokout *o, il_tokens *t) {
    memset(t, 0, sizeof *t);
    size_t n = (size_t)(o->n ? o->n : 1);
    t->ids = il_malloc(n * sizeof *t->ids);
    t->tokens = il_malloc(n * sizeof *t->tokens);
    t->lens = il_malloc(n * sizeof *t->lens);
    if (!t->ids || !t->tokens || !t->lens) {
        il_tokens_free(t);
        out_free(o);
        return -1;
    }
    for (int i = 0; i < o->n; i++) {
        t->ids[i] = o->ids[i];
        t->tokens[i] = o->bytes.data + o->off[i];
        t->lens[i] = o->len[i];
    }
    t->n = o->n;
    t->storage_ = o->bytes.data; /* ownership moves to t */
    o->bytes.data = NULL;
    out_free(o);
    return 0;
}

/* ===== character classes (transformers' tokenization_utils / tokenization_bert) ===== */

static utf8proc_category_t category(uint32_t c) {
    return utf8proc_category((utf8proc_int32_t)c);
}

/* _is_control: every "C*" category (Cc, Cf, Cs, Co, Cn), except \t \n \r. */
static bool is_control(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    utf8proc_category_t k = category(c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF ||
           k == UTF8PROC_CATEGORY_CS || k == UTF8PROC_CATEGORY_CO ||
           k == UTF8PROC_CATEGORY_CN;
}

/* _is_whitespace: space, \t, \n, \r and Zs. */
static bool is_bert_space(uint32_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || category(c) == UTF8PROC_CATEGORY_ZS;
}

/* Python's str.isspace(): what str.split() / str.strip() treat as whitespace. After
 * cleaning, U+2028 / U+2029 are the ones that still matter (they are Zl / Zp, not Zs). */
static bool py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* _is_punctuation: the ASCII non-alphanumeric printables plus every Unicode P* category. */
static bool is_punct(uint32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
        (c >= 123 && c <= 126))
        return true;
    utf8proc_category_t k = category(c);
    return k == UTF8PROC_CATEGORY_PC || k == UTF8PROC_CATEGORY_PD ||
           k == UTF8PROC_CATEGORY_PS || k == UTF8PROC_CATEGORY_PE ||
           k == UTF8PROC_CATEGORY_PI || k == UTF8PROC_CATEGORY_PF ||
           k == UTF8PROC_CATEGORY_PO;
}

/* _is_chinese_char: the CJK Unified Ideographs blocks exactly as BERT lists them (not
 * Hangul, Hiragana or Katakana). */
static bool is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Python's lower() of one character. U+0130 is the only character whose full lower-case
 * mapping (SpecialCasing.txt) differs from the simple one utf8proc gives. */
static int lower_cp(cpvec *out, uint32_t c) {
    if (c == 0x130) return cp_push(out, 'i') || cp_push(out, 0x307);
    return cp_push(out, (uint32_t)utf8proc_tolower((utf8proc_int32_t)c));
}

/* ===== Unicode normalisation (utf8proc works on UTF-8) ===== */

/* Replace a by its NFC (compose) or NFD (!compose) form. Code points below `stable` are
 * known to be unchanged by the form, which skips the round trip for plain ASCII text. */
static int normalize(cpvec *a, bool compose, uint32_t stable) {
    bool all_stable = true;
    for (size_t i = 0; i < a->n && all_stable; i++) all_stable = a->v[i] < stable;
    if (all_stable) return 0;
    il_buf b = {0};
    if (cp_to_utf8(&b, a->v, a->n)) return -1;
    utf8proc_uint8_t *dst = NULL;
    utf8proc_option_t opt = UTF8PROC_STABLE | (compose ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE);
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)b.data, (utf8proc_ssize_t)b.len,
                                      &dst, opt);
    il_buf_free(&b);
    if (r < 0) {
        il_seterr("wordpiece: Unicode normalisation failed: %s", utf8proc_errmsg(r));
        return -1;
    }
    int rc = cp_from_utf8(a, (const char *)dst, (size_t)r);
    free(dst);
    return rc;
}

/* ===== vocabulary ===== */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* Vocabulary id of the exact token bytes, or -1 (the `token in self.vocab` test). */
static int32_t vocab_find(const il_wordpiece *t, const char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & t->table_mask;; i = (i + 1) & t->table_mask) {
        int32_t id = t->table[i];
        if (id < 0) return -1;
        if (t->vocab_len[id] == n && memcmp(t->vocab[id], s, n) == 0) return id;
    }
}

/* Insert line `id`; a later duplicate replaces the earlier id, as the Python dict does. */
static void vocab_insert(il_wordpiece *t, int32_t id) {
    const char *s = t->vocab[id];
    size_t n = t->vocab_len[id];
    for (size_t i = hash_bytes(s, n) & t->table_mask;; i = (i + 1) & t->table_mask) {
        int32_t old = t->table[i];
        if (old < 0 || (t->vocab_len[old] == n && memcmp(t->vocab[old], s, n) == 0)) {
            t->table[i] = id;
            return;
        }
    }
}

/* Count lines the way Python's readlines() does in text mode: \n, \r\n and \r all end a
 * line, and a last line without a terminator still counts. */
static size_t next_line(const char *d, size_t len, size_t pos, size_t *end) {
    size_t e = pos;
    while (e < len && d[e] != '\n' && d[e] != '\r') e++;
    *end = e;
    if (e < len && d[e] == '\r' && e + 1 < len && d[e + 1] == '\n') return e + 2;
    return e < len ? e + 1 : e;
}

static int load_vocab(il_wordpiece *t, const char *path) {
    size_t len;
    char *d = il_read_file(path, &len);
    if (!d) return -1;
    size_t n = 0, end;
    for (size_t p = 0; p < len; p = next_line(d, len, p, &end)) n++;
    if (n == 0 || n > (size_t)INT32_MAX / 4) {
        il_seterr("%s: %s", path, n ? "too many lines" : "the vocabulary is empty");
        free(d);
        return -1;
    }
    t->vocab = il_calloc(n, sizeof *t->vocab);
    t->vocab_len = il_calloc(n, sizeof *t->vocab_len);
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    t->table = il_malloc(cap * sizeof *t->table);
    if (!t->vocab || !t->vocab_len || !t->table) {
        free(d);
        return -1;
    }
    t->n_lines = (int)n;
    t->table_mask = cap - 1;
    memset(t->table, 0xff, cap * sizeof *t->table); /* all -1 */
    size_t i = 0;
    for (size_t p = 0; p < len; i++) {
        size_t next = next_line(d, len, p, &end);
        if (!il_utf8_valid(d + p, end - p)) {
            il_seterr("%s: line %zu is not valid UTF-8", path, i + 1);
            free(d);
            return -1;
        }
        if (!(t->vocab[i] = il_strndup(d + p, end - p))) {
            free(d);
            return -1;
        }
        t->vocab_len[i] = end - p;
        vocab_insert(t, (int32_t)i);
        p = next;
    }
    free(d);
    return 0;
}

/* ===== configuration ===== */

/* Parse an optional JSON file: NULL with *err = false when it does not exist. */
static cJSON *load_json(const char *path, bool *err) {
    *err = false;
    if (!il_file_exists(path)) return NULL;
    size_t len;
    char *text = il_read_file(path, &len);
    if (!text) {
        *err = true;
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root || !cJSON_IsObject(root)) {
        il_seterr("%s: %s", path, root ? "expected a JSON object" : "malformed JSON");
        cJSON_Delete(root);
        *err = true;
        return NULL;
    }
    return root;
}

/* Boolean field: absent or null leaves *out unchanged (null -> *is_null when given). */
static int get_bool(const cJSON *root, const char *key, const char *where, bool *out,
                    bool *is_null) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it) return 0;
    if (cJSON_IsNull(it)) {
        if (is_null) *is_null = true;
        return 0;
    }
    if (!cJSON_IsBool(it)) {
        il_seterr("%s: field '%s': expected true or false", where, key);
        return -1;
    }
    *out = cJSON_IsTrue(it);
    if (is_null) *is_null = false;
    return 0;
}

/* A special-token value: "text" or an AddedToken object {"content": "text", ...}.
 * Returns 1 with *text set (borrowed), 0 for null, -1 on a malformed value. */
static int token_value(const cJSON *it, const char *where, const char *key, const char **text) {
    if (cJSON_IsNull(it)) return 0;
    if (cJSON_IsObject(it)) it = cJSON_GetObjectItemCaseSensitive(it, "content");
    if (!cJSON_IsString(it)) {
        il_seterr("%s: field '%s': expected a string or an object with a \"content\" string",
                  where, key);
        return -1;
    }
    *text = it->valuestring;
    return 1;
}

/* The special tokens as text: roles[] (malloc'd or NULL) and the additional list. */
typedef struct {
    char *roles[WP_N_ROLES];
    char **extra;
    int n_extra;
} special_cfg;

static void special_cfg_free(special_cfg *s) {
    for (int i = 0; i < WP_N_ROLES; i++) free(s->roles[i]);
    for (int i = 0; i < s->n_extra; i++) free(s->extra[i]);
    free(s->extra);
    memset(s, 0, sizeof *s);
}

/* Override the special tokens with those that root (tokenizer_config.json or
 * special_tokens_map.json) names. */
static int read_specials(special_cfg *s, const cJSON *root, const char *where) {
    for (int r = 0; r < WP_N_ROLES; r++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, role_keys[r]);
        if (!it) continue;
        const char *text = NULL;
        int k = token_value(it, where, role_keys[r], &text);
        if (k < 0) return -1;
        free(s->roles[r]);
        s->roles[r] = NULL;
        if (k && !(s->roles[r] = il_strdup(text))) return -1;
    }
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(root, "additional_special_tokens");
    if (!add || cJSON_IsNull(add)) return 0;
    if (!cJSON_IsArray(add)) {
        il_seterr("%s: field 'additional_special_tokens': expected a list", where);
        return -1;
    }
    for (int i = 0; i < s->n_extra; i++) free(s->extra[i]);
    free(s->extra);
    s->n_extra = 0;
    s->extra = il_calloc((size_t)cJSON_GetArraySize(add) + 1, sizeof *s->extra);
    if (!s->extra) return -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, add) {
        const char *text = NULL;
        int k = token_value(it, where, "additional_special_tokens", &text);
        if (k < 0) return -1;
        if (k && !(s->extra[s->n_extra++] = il_strdup(text))) return -1;
    }
    return 0;
}

static int read_options(il_wordpiece *t, const cJSON *root, const char *where) {
    bool strip = false, strip_null = true;
    if (get_bool(root, "do_lower_case", where, &t->lower, NULL) ||
        get_bool(root, "do_basic_tokenize", where, &t->basic, NULL) ||
        get_bool(root, "tokenize_chinese_chars", where, &t->chinese, NULL) ||
        get_bool(root, "clean_up_tokenization_spaces", where, &t->cleanup, NULL) ||
        get_bool(root, "strip_accents", where, &strip, &strip_null))
        return -1;
    t->strip_accents = strip_null ? -1 : strip;
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive(root, "model_max_length");
    if (ml && !cJSON_IsNull(ml)) {
        if (!cJSON_IsNumber(ml) || ml->valuedouble < 1) {
            il_seterr("%s: field 'model_max_length': expected a positive number", where);
            return -1;
        }
        t->model_max_length = ml->valuedouble >= INT32_MAX ? INT32_MAX : (int)ml->valuedouble;
    }
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(root, "never_split");
    if (!ns || cJSON_IsNull(ns)) return 0;
    if (!cJSON_IsArray(ns)) {
        il_seterr("%s: field 'never_split': expected a list of strings or null", where);
        return -1;
    }
    t->never_split = il_calloc((size_t)cJSON_GetArraySize(ns) + 1, sizeof *t->never_split);
    if (!t->never_split) return -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, ns) {
        if (!cJSON_IsString(it)) {
            il_seterr("%s: field 'never_split': expected a list of strings", where);
            return -1;
        }
        if (!(t->never_split[t->n_never_split++] = il_strdup(it->valuestring))) return -1;
    }
    return 0;
}

/* Add a special token (deduplicated): its id comes from the vocabulary, else it is
 * appended after it, as transformers' sanitize_special_tokens() does. */
static int add_special(il_wordpiece *t, const char *text, const char *where) {
    if (!*text) return 0; /* an empty token can never match */
    for (int i = 0; i < t->n_specials; i++)
        if (strcmp(t->specials[i].text, text) == 0) return 0;
    if (!il_utf8_valid(text, strlen(text))) {
        il_seterr("%s: special token is not valid UTF-8", where);
        return -1;
    }
    wp_special *sp = &t->specials[t->n_specials];
    memset(sp, 0, sizeof *sp);
    if (!(sp->text = il_strdup(text))) return -1;
    t->n_specials++; /* owned from here on: freed with the tokenizer */
    cpvec c = {0};
    if (cp_from_utf8(&c, text, strlen(text))) {
        free(c.v);
        return -1;
    }
    sp->cps = c.v;
    sp->n_cps = c.n;
    sp->id = vocab_find(t, text, strlen(text));
    if (sp->id < 0) sp->id = t->n_lines + t->n_appended++;
    return 0;
}

static int32_t special_id(const il_wordpiece *t, const char *text) {
    if (!text) return -1;
    for (int i = 0; i < t->n_specials; i++)
        if (strcmp(t->specials[i].text, text) == 0) return t->specials[i].id;
    return -1;
}

static int setup_specials(il_wordpiece *t, special_cfg *s, const char *dir) {
    t->specials = il_calloc(WP_N_ROLES + (size_t)s->n_extra, sizeof *t->specials);
    if (!t->specials) return -1;
    if (!s->roles[ROLE_UNK]) {
        il_seterr("%s: no unk_token is configured", dir);
        return -1;
    }
    if (vocab_find(t, s->roles[ROLE_UNK], strlen(s->roles[ROLE_UNK])) < 0) {
        il_seterr("%s/vocab.txt: the unk token '%s' is not in the vocabulary", dir,
                  s->roles[ROLE_UNK]);
        return -1;
    }
    for (int r = 0; r < WP_N_ROLES; r++)
        if (s->roles[r] && add_special(t, s->roles[r], dir)) return -1;
    for (int i = 0; i < s->n_extra; i++)
        if (add_special(t, s->extra[i], dir)) return -1;
    for (int r = 0; r < WP_N_ROLES; r++) t->role_id[r] = special_id(t, s->roles[r]);
    for (int i = 0; i < t->n_specials; i++)
        if (t->specials[i].id == t->role_id[ROLE_UNK]) t->unk_text = t->specials[i].text;
    if (t->role_id[ROLE_CLS] < 0 || t->role_id[ROLE_SEP] < 0) {
        il_seterr("%s: cls_token and sep_token must be configured", dir);
        return -1;
    }
    return 0;
}

static int load_config(il_wordpiece *t, const char *dir) {
    special_cfg s = {0};
    int rc = -1;
    char *p1 = il_path_join(dir, "tokenizer_config.json");
    char *p2 = il_path_join(dir, "special_tokens_map.json");
    cJSON *cfg = NULL, *map = NULL;
    bool err1 = false, err2 = false;
    if (!p1 || !p2) goto out;
    for (int r = 0; r < WP_N_ROLES; r++)
        if (role_defaults[r] && !(s.roles[r] = il_strdup(role_defaults[r]))) goto out;
    cfg = load_json(p1, &err1);
    if (err1 || (cfg && (read_options(t, cfg, p1) || read_specials(&s, cfg, p1)))) goto out;
    map = load_json(p2, &err2);
    if (err2 || (map && read_specials(&s, map, p2))) goto out;
    rc = setup_specials(t, &s, dir);
out:
    cJSON_Delete(cfg);
    cJSON_Delete(map);
    free(p1);
    free(p2);
    special_cfg_free(&s);
    return rc;
}

il_wordpiece *il_wordpiece_load(const char *dir) {
    il_wordpiece *t = il_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->lower = t->basic = t->chinese = t->cleanup = true;
    t->strip_accents = -1;
    t->model_max_length = INT32_MAX;
    char *vocab = il_path_join(dir, "vocab.txt");
    if (!vocab) goto fail;
    if (!il_file_exists(vocab)) {
        il_seterr("%s: missing (a BERT tokenizer needs vocab.txt)", vocab);
        goto fail;
    }
    if (load_vocab(t, vocab) || load_config(t, dir)) goto fail;
    free(vocab);
    return t;
fail:
    free(vocab);
    il_wordpiece_free(t);
    return NULL;
}

void il_wordpiece_free(il_wordpiece *t) {
    if (!t) return;
    for (int i = 0; i < t->n_lines && t->vocab; i++) free(t->vocab[i]);
    free(t->vocab);
    free(t->vocab_len);
    free(t->table);
    for (int i = 0; i < t->n_specials; i++) {
        free(t->specials[i].text);
        free(t->specials[i].cps);
    }
    free(t->specials);
    for (int i = 0; i < t->n_never_split; i++) free(t->never_split[i]);
    free(t->never_split);
    free(t);
}

/* ===== token <-> id ===== */

const char *il_wordpiece_id_to_token(const il_wordpiece *t, int32_t id) {
    if (id >= 0 && id < t->n_lines) return t->vocab[id];
    for (int i = 0; i < t->n_specials; i++)
        if (t->specials[i].id == id) return t->specials[i].text;
    return NULL;
}

/* convert_tokens_to_ids: appended specials first, then the vocabulary, else -1. */
static int32_t token_id(const il_wordpiece *t, const char *s, size_t n) {
    for (int i = 0; i < t->n_specials; i++)
        if (t->specials[i].id >= t->n_lines && strlen(t->specials[i].text) == n &&
            memcmp(t->specials[i].text, s, n) == 0)
            return t->specials[i].id;
    return vocab_find(t, s, n);
}

int32_t il_wordpiece_token_to_id(const il_wordpiece *t, const char *token) {
    return token_id(t, token, strlen(token));
}

bool il_wordpiece_is_special(const il_wordpiece *t, int32_t id) {
    for (int i = 0; i < t->n_specials; i++)
        if (t->specials[i].id == id) return true;
    return false;
}

int il_wordpiece_vocab_size(const il_wordpiece *t) { return t->n_lines + t->n_appended; }
int il_wordpiece_cls_id(const il_wordpiece *t) { return t->role_id[ROLE_CLS]; }
int il_wordpiece_sep_id(const il_wordpiece *t) { return t->role_id[ROLE_SEP]; }
int il_wordpiece_pad_id(const il_wordpiece *t) { return t->role_id[ROLE_PAD]; }
int il_wordpiece_unk_id(const il_wordpiece *t) { return t->role_id[ROLE_UNK]; }
int il_wordpiece_model_max_length(const il_wordpiece *t) { return t->model_max_length; }
bool il_wordpiece_cleanup_default(const il_wordpiece *t) { return t->cleanup; }

/* ===== tokenization ===== */

/* Length of the longest special token starting at c[0..n), 0 if none; *which its index. */
static size_t match_special(const il_wordpiece *t, const uint32_t *c, size_t n, int *which) {
    size_t best = 0;
    for (int i = 0; i < t->n_specials; i++) {
        const wp_special *s = &t->specials[i];
        if (s->n_cps > best && s->n_cps <= n && memcmp(s->cps, c, s->n_cps * sizeof *c) == 0) {
            best = s->n_cps;
            *which = i;
        }
    }
    return best;
}

/* PreTrainedTokenizer.tokenize lower-cases the text before anything else, one character
 * at a time (re.sub with "(.+?)"), leaving the special tokens' own text alone. */
static int lower_outside_specials(const il_wordpiece *t, const cpvec *in, cpvec *out) {
    out->n = 0;
    for (size_t i = 0; i < in->n;) {
        int k;
        size_t m = match_special(t, in->v + i, in->n - i, &k);
        if (m) {
            if (cp_append(out, in->v + i, m)) return -1;
            i += m;
        } else {
            if (lower_cp(out, in->v[i++])) return -1;
        }
    }
    return 0;
}

/* Is the word (code points) one of the never_split strings (config + special tokens)? */
static bool in_never_split(const il_wordpiece *t, const uint32_t *w, size_t n, bool specials,
                           il_buf *scratch) {
    scratch->len = 0;
    if (cp_to_utf8(scratch, w, n)) return false;
    for (int i = 0; i < t->n_never_split; i++)
        if (strlen(t->never_split[i]) == scratch->len &&
            memcmp(t->never_split[i], scratch->data, scratch->len) == 0)
            return true;
    for (int i = 0; specials && i < t->n_specials; i++)
        if (strlen(t->specials[i].text) == scratch->len &&
            memcmp(t->specials[i].text, scratch->data, scratch->len) == 0)
            return true;
    return false;
}

/* _clean_text + _tokenize_chinese_chars: drop NUL, U+FFFD and control/format characters,
 * whitespace -> ' ', spaces around CJK ideographs. */
static int clean_text(const il_wordpiece *t, const uint32_t *in, size_t n, cpvec *out) {
    out->n = 0;
    if (cp_reserve(out, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c == 0 || c == 0xFFFD || is_control(c)) continue;
        if (is_bert_space(c)) {
            if (cp_push(out, ' ')) return -1;
        } else if (t->chinese && is_cjk(c)) {
            if (cp_push(out, ' ') || cp_push(out, c) || cp_push(out, ' ')) return -1;
        } else if (cp_push(out, c)) {
            return -1;
        }
    }
    return 0;
}

/* One whitespace-delimited word: lower-case / strip accents, then split off punctuation. */
static int basic_word(const il_wordpiece *t, const uint32_t *w, size_t n, cpvec *tmp,
                      wordlist *out) {
    tmp->n = 0;
    if (t->lower) {
        for (size_t i = 0; i < n; i++)
            if (lower_cp(tmp, w[i])) return -1;
    } else if (cp_append(tmp, w, n)) {
        return -1;
    }
    if ((t->lower && t->strip_accents != 0) || t->strip_accents == 1) {
        /* _run_strip_accents: NFD, then drop nonspacing marks (Mn) */
        if (normalize(tmp, false, 0xC0)) return -1;
        size_t k = 0;
        for (size_t i = 0; i < tmp->n; i++)
            if (tmp->v[i] < 0x300 || category(tmp->v[i]) != UTF8PROC_CATEGORY_MN)
                tmp->v[k++] = tmp->v[i];
        tmp->n = k;
    }
    /* _run_split_on_punc: every punctuation character is a word of its own */
    size_t start = 0;
    for (size_t i = 0; i < tmp->n; i++) {
        if (!is_punct(tmp->v[i])) continue;
        if (words_add(out, tmp->v + start, i - start) || words_add(out, tmp->v + i, 1))
            return -1;
        start = i + 1;
    }
    return words_add(out, tmp->v + start, tmp->n - start);
}

/* BasicTokenizer.tokenize of one piece of text (no special tokens inside). */
static int basic_tokenize(const il_wordpiece *t, const uint32_t *in, size_t n, wordlist *out) {
    cpvec text = {0}, tmp = {0};
    il_buf scratch = {0};
    int rc = -1;
    /* NFC (transformers >= 4.29) leaves every code point below U+0300 alone */
    if (clean_text(t, in, n, &text) || normalize(&text, true, 0x300)) goto out;
    for (size_t i = 0; i < text.n;) {
        while (i < text.n && py_isspace(text.v[i])) i++;
        size_t s = i;
        while (i < text.n && !py_isspace(text.v[i])) i++;
        if (i == s) break;
        if (in_never_split(t, text.v + s, i - s, true, &scratch)) {
            if (words_add(out, text.v + s, i - s)) goto out;
        } else if (basic_word(t, text.v + s, i - s, &tmp, out)) {
            goto out;
        }
    }
    rc = 0;
out:
    free(text.v);
    free(tmp.v);
    il_buf_free(&scratch);
    return rc;
}

/* WordpieceTokenizer.tokenize of one word: greedy longest match first; the whole word is
 * one unk token when it is too long or when any remainder has no match. */
static int wordpiece_word(const il_wordpiece *t, const uint32_t *w, size_t n, tokout *o) {
    int32_t unk = t->role_id[ROLE_UNK];
    if (n > WP_MAX_CHARS_PER_WORD) return out_push(o, t->unk_text, strlen(t->unk_text), unk);
    char bytes[4 * WP_MAX_CHARS_PER_WORD], key[2 + 4 * WP_MAX_CHARS_PER_WORD];
    size_t off[WP_MAX_CHARS_PER_WORD + 1];
    off[0] = 0;
    for (size_t i = 0; i < n; i++) off[i + 1] = off[i] + (size_t)il_utf8_encode(w[i], bytes + off[i]);
    const int n0 = o->n;
    const size_t bytes0 = o->bytes.len;
    for (size_t start = 0; start < n;) {
        size_t end = n, klen = 0;
        int32_t id = -1;
        for (; end > start; end--) {
            size_t pre = start > 0 ? 2 : 0;
            memcpy(key, "##", pre);
            memcpy(key + pre, bytes + off[start], off[end] - off[start]);
            klen = pre + off[end] - off[start];
            if ((id = vocab_find(t, key, klen)) >= 0) break;
        }
        if (id < 0) { /* drop the pieces found so far: the word is one unk */
            o->n = n0;
            o->bytes.len = bytes0;
            return out_push(o, t->unk_text, strlen(t->unk_text), unk);
        }
        if (out_push(o, key, klen, id)) return -1;
        start = end;
    }
    return 0;
}

/* A word that reaches the output without WordPiece (never_split, or basic_tokenize mode):
 * id by convert_tokens_to_ids, with `fallback` when it is not a token. */
static int push_word(const il_wordpiece *t, const uint32_t *w, size_t n, int32_t fallback,
                     il_buf *scratch, tokout *o) {
    scratch->len = 0;
    if (cp_to_utf8(scratch, w, n)) return -1;
    int32_t id = token_id(t, scratch->data, scratch->len);
    return out_push(o, scratch->data, scratch->len, id >= 0 ? id : fallback);
}

/* BertTokenizer._tokenize of one piece of text between special tokens. */
static int tokenize_piece(const il_wordpiece *t, const uint32_t *in, size_t n, bool wordpiece,
                          tokout *o) {
    wordlist words = {0};
    il_buf scratch = {0};
    int rc = -1;
    if (t->basic) {
        if (basic_tokenize(t, in, n, &words)) goto out;
    } else { /* do_basic_tokenize=false: WordPiece on whitespace-separated words */
        for (size_t i = 0; i < n;) {
            while (i < n && py_isspace(in[i])) i++;
            size_t s = i;
            while (i < n && !py_isspace(in[i])) i++;
            if (words_add(&words, in + s, i - s)) goto out;
        }
    }
    for (size_t k = 0; k < words.n; k++) {
        const uint32_t *w = words.cps.v + words.start[k];
        size_t wn = words.len[k];
        int r;
        if (!wordpiece)
            r = push_word(t, w, wn, -1, &scratch, o);
        else if (t->basic && in_never_split(t, w, wn, false, &scratch))
            r = push_word(t, w, wn, t->role_id[ROLE_UNK], &scratch, o);
        else
            r = wordpiece_word(t, w, wn, o);
        if (r) goto out;
    }
    rc = 0;
out:
    words_free(&words);
    il_buf_free(&scratch);
    return rc;
}

/* PreTrainedTokenizer.tokenize: lower-case, split at special tokens, tokenize the rest. */
static int run(const il_wordpiece *t, const char *text, size_t len, bool wordpiece, tokout *o) {
    if (!text && len) {
        il_seterr("wordpiece: text is NULL");
        return -1;
    }
    if (len && !il_utf8_valid(text, len)) {
        il_seterr("wordpiece: text is not valid UTF-8");
        return -1;
    }
    cpvec raw = {0}, low = {0};
    int rc = -1;
    if (cp_from_utf8(&raw, text ? text : "", len)) goto out;
    const cpvec *c = &raw;
    if (t->basic && t->lower) {
        if (lower_outside_specials(t, &raw, &low)) goto out;
        c = &low;
    }
    size_t seg = 0;
    for (size_t i = 0; i < c->n;) {
        int k;
        size_t m = match_special(t, c->v + i, c->n - i, &k);
        if (!m) {
            i++;
            continue;
        }
        if (tokenize_piece(t, c->v + seg, i - seg, wordpiece, o)) goto out;
        const wp_special *s = &t->specials[k];
        if (out_push(o, s->text, strlen(s->text), s->id)) goto out;
        i += m;
        seg = i;
    }
    rc = tokenize_piece(t, c->v + seg, c->n - seg, wordpiece, o);
out:
    free(raw.v);
    free(low.v);
    return rc;
}

int il_wordpiece_tokenize(const il_wordpiece *t, const char *text, size_t len, il_tokens *out) {
    tokout o = {0};
    memset(out, 0, sizeof *out);
    if (run(t, text, len, true, &o)) {
        out_free(&o);
        return -1;
    }
    return out_finish(&o, out);
}

int il_wordpiece_basic_tokenize(const il_wordpiece *t, const char *text, size_t len,
                                il_tokens *out) {
    tokout o = {0};
    memset(out, 0, sizeof *out);
    if (run(t, text, len, false, &o)) {
        out_free(&o);
        return -1;
    }
    return out_finish(&o, out);
}

/* ===== encode ===== */

int il_wordpiece_encode(const il_wordpiece *t, const char *text, size_t len, int max_length,
                        int32_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    if (max_length != 0 && max_length < 2) {
        il_seterr("wordpiece: max_length %d is too small for [CLS] and [SEP]", max_length);
        return -1;
    }
    tokout o = {0};
    if (run(t, text, len, true, &o)) {
        out_free(&o);
        return -1;
    }
    int keep = o.n;
    if (max_length > 0 && keep > max_length - 2) keep = max_length - 2;
    int32_t *r = il_malloc(((size_t)keep + 2) * sizeof *r);
    if (r) {
        r[0] = t->role_id[ROLE_CLS];
        if (keep) memcpy(r + 1, o.ids, (size_t)keep * sizeof *r);
        r[keep + 1] = t->role_id[ROLE_SEP];
        *ids = r;
        *n = keep + 2;
    }
    out_free(&o);
    return r ? 0 : -1;
}

int il_wordpiece_encode_pair(const il_wordpiece *t, const char *a, size_t alen, const char *b,
                             size_t blen, int32_t **ids, int32_t **types, int *n) {
    *ids = *types = NULL;
    *n = 0;
    tokout oa = {0}, ob = {0};
    int rc = -1;
    if (run(t, a, alen, true, &oa) || run(t, b, blen, true, &ob)) goto out;
    int total = oa.n + ob.n + 3;
    int32_t *r = il_malloc((size_t)total * sizeof *r), *ty = il_malloc((size_t)total * sizeof *ty);
    if (!r || !ty) {
        free(r);
        free(ty);
        goto out;
    }
    int k = 0;
    r[k++] = t->role_id[ROLE_CLS];
    for (int i = 0; i < oa.n; i++) r[k++] = oa.ids[i];
    r[k++] = t->role_id[ROLE_SEP];
    int first = k;
    for (int i = 0; i < ob.n; i++) r[k++] = ob.ids[i];
    r[k++] = t->role_id[ROLE_SEP];
    for (int i = 0; i < total; i++) ty[i] = i < first ? 0 : 1;
    *ids = r;
    *types = ty;
    *n = total;
    rc = 0;
out:
    out_free(&oa);
    out_free(&ob);
    return rc;
}

/* ===== decode ===== */

/* First occurrence of needle in hay[0..n) (memmem is a GNU extension). */
static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t k) {
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, k) == 0) return hay + i;
    return NULL;
}

/* Python's s.replace(from, to): every non-overlapping occurrence, left to right. */
static int replace_all(il_buf *b, const char *from, const char *to) {
    size_t fl = strlen(from);
    if (!b->len || !find_bytes(b->data, b->len, from, fl)) return 0;
    il_buf r = {0};
    const char *p = b->data, *end = b->data + b->len, *q;
    while ((q = find_bytes(p, (size_t)(end - p), from, fl)) != NULL) {
        if (il_buf_append(&r, p, (size_t)(q - p)) || il_buf_puts(&r, to)) goto fail;
        p = q + fl;
    }
    if (il_buf_append(&r, p, (size_t)(end - p))) goto fail;
    il_buf_free(b);
    *b = r;
    return 0;
fail:
    il_buf_free(&r);
    return -1;
}

/* Python's str.strip(): the byte range without leading / trailing whitespace. */
static void py_strip(const char *s, size_t len, size_t *from, size_t *to) {
    size_t i = 0, first = len, last = 0;
    while (i < len) {
        uint32_t c;
        int k = il_utf8_decode(s + i, len - i, &c);
        if (k <= 0) k = 1, c = 0xFFFD;
        if (!py_isspace(c)) {
            if (first == len) first = i;
            last = i + (size_t)k;
        }
        i += (size_t)k;
    }
    *from = first == len ? 0 : first;
    *to = first == len ? 0 : last;
}

char *il_wordpiece_decode(const il_wordpiece *t, const int32_t *ids, int n, bool skip_special,
                          bool cleanup) {
    il_buf b = {0};
    bool first = true;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0) {
            il_seterr("wordpiece: cannot decode negative id %d (position %d)", (int)ids[i], i);
            goto fail;
        }
        if (skip_special && il_wordpiece_is_special(t, ids[i])) continue;
        const char *tok = il_wordpiece_id_to_token(t, ids[i]);
        if (!tok) tok = t->unk_text; /* ids_to_tokens.get(index, unk_token) */
        size_t tl = ids[i] < t->n_lines ? t->vocab_len[ids[i]] : strlen(tok);
        if ((!first && il_buf_append(&b, " ", 1)) || il_buf_append(&b, tok, tl)) goto fail;
        first = false;
    }
    if (il_buf_append(&b, NULL, 0)) goto fail; /* allocated even when empty */
    /* convert_tokens_to_string: " ".join(tokens).replace(" ##", "").strip() */
    if (replace_all(&b, " ##", "")) goto fail;
    size_t from, to;
    py_strip(b.data, b.len, &from, &to);
    memmove(b.data, b.data + from, to - from);
    b.len = to - from;
    b.data[b.len] = 0;
    static const char *const rules[][2] = {{" .", "."},   {" ?", "?"},     {" !", "!"},
                                           {" ,", ","},   {" ' ", "'"},    {" n't", "n't"},
                                           {" 'm", "'m"}, {" 's", "'s"},   {" 've", "'ve"},
                                           {" 're", "'re"}};
    for (size_t r = 0; cleanup && r < sizeof rules / sizeof rules[0]; r++)
        if (replace_all(&b, rules[r][0], rules[r][1])) goto fail;
    return b.data;
fail:
    il_buf_free(&b);
    return NULL;
}

/* ===== Python str.lower() of a whole string ===== */

/* \p{Cased}: letters with a case, or characters that have a case mapping (this covers
 * Other_Lowercase / Other_Uppercase symbols such as the circled letters). */
static bool py_cased(uint32_t c) {
    utf8proc_category_t k = category(c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT)
        return true;
    return (uint32_t)utf8proc_tolower((utf8proc_int32_t)c) != c ||
           (uint32_t)utf8proc_toupper((utf8proc_int32_t)c) != c;
}

/* \p{Case_Ignorable}: Mn, Me, Cf, Lm, Sk and the word-break MidLetter / MidNumLet /
 * Single_Quote characters. */
static bool py_case_ignorable(uint32_t c) {
    static const uint32_t mid[] = {0x27,   0x2E,   0x3A,   0xB7,   0x387,  0x55F,
                                   0x5F4,  0x2018, 0x2019, 0x2024, 0x2027, 0xFE13,
                                   0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
    for (size_t i = 0; i < sizeof mid / sizeof mid[0]; i++)
        if (c == mid[i]) return true;
    utf8proc_category_t k = category(c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
           k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK;
}

/* Capital sigma becomes final sigma after a cased letter (skipping case-ignorables) when
 * no cased letter follows (CPython's handle_capital_sigma). */
static uint32_t lower_sigma(const cpvec *a, size_t i) {
    size_t j = i;
    while (j > 0 && py_case_ignorable(a->v[j - 1])) j--;
    if (j == 0 || !py_cased(a->v[j - 1])) return 0x3C3;
    for (j = i + 1; j < a->n && py_case_ignorable(a->v[j]); j++) {}
    return (j == a->n || !py_cased(a->v[j])) ? 0x3C2 : 0x3C3;
}

char *il_py_lower(const char *text, size_t len, size_t *out_len) {
    if (len && !il_utf8_valid(text, len)) {
        il_seterr("text is not valid UTF-8");
        return NULL;
    }
    cpvec a = {0}, low = {0};
    il_buf b = {0};
    char *r = NULL;
    if (cp_from_utf8(&a, text ? text : "", len)) goto out;
    for (size_t i = 0; i < a.n; i++) {
        int rc = a.v[i] == 0x3A3 ? cp_push(&low, lower_sigma(&a, i)) : lower_cp(&low, a.v[i]);
        if (rc) goto out;
    }
    if (cp_to_utf8(&b, low.v, low.n) || il_buf_append(&b, NULL, 0)) goto out;
    r = b.data;
    *out_len = b.len;
    b.data = NULL;
out:
    free(a.v);
    free(low.v);
    il_buf_free(&b);
    return r;
}
