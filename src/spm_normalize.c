/* spm_normalize.c - sentencepiece's normaliser: the precompiled charsmap (a Darts-clone
 * double-array trie of NFKC-style rewrites) followed by whitespace handling, as in
 * normalizer.cc (Normalizer::Normalize / NormalizePrefix) of sentencepiece 0.1.97.
 *
 * Charsmap blob layout: uint32 little-endian trie size in bytes, the double array
 * (uint32 units), then the replacement strings, each NUL-terminated. A trie value is the
 * offset of a replacement string. */
#include "spm_internal.h"

#include <stdlib.h>
#include <string.h>

static const char kSpaceSymbol[] = "\xe2\x96\x81"; /* U+2581 */

static uint32_t read_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void spm_charsmap_free(spm_charsmap *cm) {
    free(cm->blob);
    free(cm->units);
    free(cm->strings);
    memset(cm, 0, sizeof *cm);
}

int spm_charsmap_load(spm_charsmap *cm, const uint8_t *blob, size_t len, const char *what) {
    spm_charsmap_free(cm);
    if (len <= 4) {
        il_seterr("%s: precompiled_charsmap: %zu bytes is too short", what, len);
        return -1;
    }
    uint32_t trie_size = read_le32(blob);
    if (trie_size > len - 4) {
        il_seterr("%s: precompiled_charsmap: trie size %u exceeds the %zu-byte blob", what,
                  trie_size, len);
        return -1;
    }
    if (trie_size % 4 != 0) {
        il_seterr("%s: precompiled_charsmap: trie size %u is not a multiple of 4", what, trie_size);
        return -1;
    }
    cm->n_units = trie_size / 4;
    cm->strings_len = len - 4 - trie_size;
    cm->blob = il_malloc(len);
    cm->units = il_malloc(cm->n_units ? cm->n_units * sizeof *cm->units : 1);
    cm->strings = il_malloc(cm->strings_len + 1);
    if (!cm->blob || !cm->units || !cm->strings) { spm_charsmap_free(cm); return -1; }
    memcpy(cm->blob, blob, len);
    cm->blob_len = len;
    for (size_t i = 0; i < cm->n_units; i++) cm->units[i] = read_le32(blob + 4 + 4 * i);
    memcpy(cm->strings, blob + 4 + trie_size, cm->strings_len);
    cm->strings[cm->strings_len] = 0; /* a string running off the end stops here */
    return 0;
}

/* Darts-clone unit fields. */
static inline bool unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t unit_value(uint32_t u) { return u & 0x7fffffffu; }
static inline uint32_t unit_label(uint32_t u) { return u & (0x80000000u | 0xffu); }
static inline uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

/* Longest key of the double array that prefixes s (Darts commonPrefixSearch, keeping the
 * longest result). Returns its length (0: none) and its value in *value. Every index is
 * bounds-checked: a corrupt array simply stops matching. */
static size_t charsmap_longest(const spm_charsmap *cm, const uint8_t *s, size_t len,
                               uint32_t *value) {
    if (cm->n_units == 0) return 0;
    const uint32_t *a = cm->units;
    size_t best = 0;
    uint32_t pos = unit_offset(a[0]);
    for (size_t i = 0; i < len; i++) {
        pos ^= s[i];
        if (pos >= cm->n_units) break;
        uint32_t u = a[pos];
        if (unit_label(u) != s[i]) break;
        pos ^= unit_offset(u);
        if (unit_has_leaf(u)) {
            if (pos >= cm->n_units) break;
            *value = unit_value(a[pos]);
            best = i + 1;
        }
    }
    return best;
}

/* One step of normalisation: what the next input bytes become. */
typedef struct {
    const char *s; /* replacement (not NUL-terminated in general) */
    size_t len;
    size_t consumed; /* input bytes used */
} norm_step;

/* Longest user-defined piece that prefixes the input (sentencepiece's PrefixMatcher), or 0.
 * Such pieces are copied unnormalized. */
static size_t user_defined_prefix(const spm_model *m, const char *in, size_t len) {
    const spm_trie *t = &m->trie;
    int32_t node = 0;
    size_t best = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t c = spm_trie_step(t, node, (uint8_t)in[i]);
        if (c < 0) break;
        node = c;
        int32_t id = t->id[node];
        if (id >= 0 && m->type[id] == SPM_USER_DEFINED) best = i + 1;
    }
    return best;
}

/* NormalizePrefix: user-defined symbol, else longest charsmap rule, else one UTF-8
 * character copied (a malformed byte becomes U+FFFD, consuming one byte). */
static int normalize_prefix(const spm_model *m, const char *in, size_t len, norm_step *st) {
    if (m->has_user_defined) {
        size_t k = user_defined_prefix(m, in, len);
        if (k) { *st = (norm_step){in, k, k}; return 0; }
    }
    const spm_charsmap *cm = &m->norm.cm;
    uint32_t v = 0;
    size_t k = charsmap_longest(cm, (const uint8_t *)in, len, &v);
    if (k) {
        if (v >= cm->strings_len) {
            il_seterr("precompiled_charsmap: rule points at offset %u beyond the %zu-byte "
                      "string table", v, cm->strings_len);
            return -1;
        }
        *st = (norm_step){cm->strings + v, strlen(cm->strings + v), k};
        return 0;
    }
    uint32_t cp;
    int n = il_utf8_decode(in, len, &cp);
    if (n == 0) *st = (norm_step){"\xef\xbf\xbd", 3, 1};
    else *st = (norm_step){in, (size_t)n, (size_t)n};
    return 0;
}

static int add_ws(const spm_normalizer *nm, il_buf *out) {
    return nm->escape_whitespaces ? il_buf_append(out, kSpaceSymbol, 3) : il_buf_append(out, " ", 1);
}

/* Appends s, spaces escaped as U+2581 when escape_whitespaces is on. */
static int append_escaped(const spm_normalizer *nm, il_buf *out, const char *s, size_t len) {
    if (!nm->escape_whitespaces) return il_buf_append(out, s, len);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ') continue;
        if (il_buf_append(out, s + run, i - run) || il_buf_append(out, kSpaceSymbol, 3)) return -1;
        run = i + 1;
    }
    return il_buf_append(out, s + run, len - run);
}

int spm_normalize(const spm_model *m, const char *in, size_t len, il_buf *out) {
    const spm_normalizer *nm = &m->norm;
    norm_step st;
    size_t base = out->len;
    if (il_buf_append(out, "", 0)) return -1; /* out->data is valid from here on */

    /* Leading whitespace: skip every step whose output is exactly " ". */
    while (nm->remove_extra_whitespaces && len > 0) {
        if (normalize_prefix(m, in, len, &st)) return -1;
        if (!(st.len == 1 && st.s[0] == ' ')) break;
        in += st.consumed;
        len -= st.consumed;
    }
    if (len == 0) return 0;

    if (!nm->treat_whitespace_as_suffix && nm->add_dummy_prefix && add_ws(nm, out)) return -1;

    /* Collapse runs: a step's leading spaces are dropped while the output ends in one. */
    bool is_prev_space = nm->remove_extra_whitespaces;
    while (len > 0) {
        if (normalize_prefix(m, in, len, &st)) return -1;
        const char *s = st.s;
        size_t sl = st.len;
        if (is_prev_space)
            while (sl > 0 && *s == ' ') { s++; sl--; }
        if (sl > 0) {
            if (append_escaped(nm, out, s, sl)) return -1;
            is_prev_space = s[sl - 1] == ' ';
        }
        in += st.consumed;
        len -= st.consumed;
        if (!nm->remove_extra_whitespaces) is_prev_space = false;
    }

    /* Trailing whitespace (the escaped form), possibly the dummy prefix itself. */
    if (nm->remove_extra_whitespaces) {
        const char *sp = nm->escape_whitespaces ? kSpaceSymbol : " ";
        size_t n = nm->escape_whitespaces ? 3 : 1;
        while (out->len - base >= n && memcmp(out->data + out->len - n, sp, n) == 0) out->len -= n;
        out->data[out->len] = 0;
    }
    if (nm->treat_whitespace_as_suffix && nm->add_dummy_prefix && add_ws(nm, out)) return -1;
    return 0;
}
