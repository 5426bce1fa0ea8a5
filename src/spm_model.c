/* spm_model.c - SentencePiece unigram model: piece table, piece trie, Viterbi segmentation
 * and decoding, following sentencepiece 0.1.97 (see spm_internal.h). */
#include "spm_internal.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* sentencepiece: unknown characters score (lowest NORMAL score - 10). */
#define SPM_UNK_PENALTY 10.0f

static const char kSpaceSymbol[] = "\xe2\x96\x81"; /* U+2581 */
#define SPACE_LEN 3

int spm_segs_push(spm_segs *s, int32_t id, size_t off, size_t len) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        spm_seg *v = il_realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (spm_seg){id, (uint32_t)off, (uint32_t)len};
    return 0;
}

/* ---- piece table ---- */

void spm_model_init(spm_model *m) {
    memset(m, 0, sizeof *m);
    m->unk_id = -1;
    m->norm.add_dummy_prefix = true;
    m->norm.remove_extra_whitespaces = true;
    m->norm.escape_whitespaces = true;
    for (int i = 0; i < 256; i++) m->byte_id[i] = -1;
}

void spm_model_free(spm_model *m) {
    il_buf_free(&m->text);
    free(m->off);
    free(m->len);
    free(m->score);
    free(m->type);
    free(m->hash);
    free(m->trie.first);
    free(m->trie.count);
    free(m->trie.id);
    free(m->trie.child);
    free(m->trie.label);
    free(m->unk_surface);
    spm_charsmap_free(&m->norm.cm);
    memset(m, 0, sizeof *m);
}

int spm_model_add_piece(spm_model *m, const char *s, size_t len, float score, int type) {
    if (m->n == m->cap) {
        if (m->cap >= (1 << 26)) { il_seterr("too many pieces"); return -1; }
        int cap = m->cap ? 2 * m->cap : 1024;
        uint32_t *off = il_realloc(m->off, (size_t)cap * sizeof *off);
        if (!off) return -1;
        m->off = off;
        uint32_t *ln = il_realloc(m->len, (size_t)cap * sizeof *ln);
        if (!ln) return -1;
        m->len = ln;
        float *sc = il_realloc(m->score, (size_t)cap * sizeof *sc);
        if (!sc) return -1;
        m->score = sc;
        uint8_t *ty = il_realloc(m->type, (size_t)cap);
        if (!ty) return -1;
        m->type = ty;
        m->cap = cap;
    }
    if (len > UINT32_MAX / 2 || m->text.len > UINT32_MAX / 2) {
        il_seterr("piece table too large");
        return -1;
    }
    m->off[m->n] = (uint32_t)m->text.len;
    m->len[m->n] = (uint32_t)len;
    m->score[m->n] = score;
    m->type[m->n] = (uint8_t)type;
    if (il_buf_append(&m->text, s, len) || il_buf_append(&m->text, "", 1)) return -1;
    m->n++;
    return 0;
}

static uint32_t hash_bytes(const char *s, size_t len) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

int spm_piece_id(const spm_model *m, const char *s, size_t len) {
    if (!m->hash) return -1;
    for (uint32_t h = hash_bytes(s, len) & m->hash_mask;; h = (h + 1) & m->hash_mask) {
        int32_t id = m->hash[h];
        if (id < 0) return -1;
        if (m->len[id] == len && memcmp(spm_piece(m, id), s, len) == 0) return id;
    }
}

/* Fills the piece -> id table; a duplicate piece is an error, as in sentencepiece. */
static int build_hash(spm_model *m, const char *what) {
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)m->n) cap *= 2;
    m->hash = il_malloc(cap * sizeof *m->hash);
    if (!m->hash) return -1;
    memset(m->hash, 0xff, cap * sizeof *m->hash);
    m->hash_mask = cap - 1;
    for (int i = 0; i < m->n; i++) {
        const char *s = spm_piece(m, i);
        uint32_t h = hash_bytes(s, m->len[i]) & m->hash_mask;
        for (; m->hash[h] >= 0; h = (h + 1) & m->hash_mask) {
            int j = m->hash[h];
            if (m->len[j] == m->len[i] && memcmp(spm_piece(m, j), s, m->len[i]) == 0) {
                il_seterr("%s: piece %d (\"%s\") duplicates piece %d", what, i, s, j);
                return -1;
            }
        }
        m->hash[h] = i;
    }
    return 0;
}

/* ---- trie ---- */

/* The trie is first built with sibling lists, then flattened into sorted edge arrays. */
typedef struct {
    int32_t *first_child, *next_sibling, *id;
    uint8_t *byte;
    int32_t n, cap;
} trie_builder;

static int tb_new_node(trie_builder *b, uint8_t byte) {
    if (b->n == b->cap) {
        if (b->cap >= INT32_MAX / 2) { il_seterr("piece trie too large"); return -1; }
        int32_t cap = b->cap ? 2 * b->cap : 4096;
        int32_t *fc = il_realloc(b->first_child, (size_t)cap * sizeof *fc);
        if (!fc) return -1;
        b->first_child = fc;
        int32_t *ns = il_realloc(b->next_sibling, (size_t)cap * sizeof *ns);
        if (!ns) return -1;
        b->next_sibling = ns;
        int32_t *id = il_realloc(b->id, (size_t)cap * sizeof *id);
        if (!id) return -1;
        b->id = id;
        uint8_t *by = il_realloc(b->byte, (size_t)cap);
        if (!by) return -1;
        b->byte = by;
        b->cap = cap;
    }
    int32_t k = b->n++;
    b->first_child[k] = b->next_sibling[k] = b->id[k] = -1;
    b->byte[k] = byte;
    return k;
}

static int tb_insert(trie_builder *b, const uint8_t *s, size_t len, int32_t id) {
    int32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t c = b->first_child[node];
        while (c >= 0 && b->byte[c] != s[i]) c = b->next_sibling[c];
        if (c < 0) {
            c = tb_new_node(b, s[i]);
            if (c < 0) return -1;
            b->next_sibling[c] = b->first_child[node];
            b->first_child[node] = c;
        }
        node = c;
    }
    b->id[node] = id;
    return 0;
}

static void tb_free(trie_builder *b) {
    free(b->first_child);
    free(b->next_sibling);
    free(b->id);
    free(b->byte);
}

/* Flattens the builder: node k keeps its number; its children become edges
 * [first[k], first[k]+count[k]) sorted by byte. */
static int tb_flatten(const trie_builder *b, spm_trie *t) {
    int32_t n = b->n;
    t->first = il_malloc((size_t)n * sizeof *t->first);
    t->count = il_malloc((size_t)n * sizeof *t->count);
    t->id = il_malloc((size_t)n * sizeof *t->id);
    t->child = il_malloc((size_t)n * sizeof *t->child); /* n-1 edges */
    t->label = il_malloc((size_t)n);
    if (!t->first || !t->count || !t->id || !t->child || !t->label) return -1;
    t->n_nodes = n;
    int32_t e = 0;
    for (int32_t k = 0; k < n; k++) {
        t->first[k] = e;
        t->id[k] = b->id[k];
        int32_t cnt = 0;
        for (int32_t c = b->first_child[k]; c >= 0; c = b->next_sibling[c]) {
            /* insertion sort by byte (at most 256 children) */
            int32_t j = e + cnt;
            while (j > e && t->label[j - 1] > b->byte[c]) {
                t->label[j] = t->label[j - 1];
                t->child[j] = t->child[j - 1];
                j--;
            }
            t->label[j] = b->byte[c];
            t->child[j] = c;
            cnt++;
        }
        t->count[k] = (uint16_t)cnt;
        e += cnt;
    }
    return 0;
}

static int build_trie(spm_model *m) {
    trie_builder b = {0};
    int rc = -1;
    if (tb_new_node(&b, 0) < 0) goto out;
    for (int i = 0; i < m->n; i++) {
        int ty = m->type[i];
        /* sentencepiece's trie holds the "normal" pieces; UNUSED ones are skipped later */
        if (ty != SPM_NORMAL && ty != SPM_USER_DEFINED && ty != SPM_UNUSED) continue;
        if (tb_insert(&b, (const uint8_t *)spm_piece(m, i), m->len[i], i)) goto out;
    }
    rc = tb_flatten(&b, &m->trie);
out:
    tb_free(&b);
    return rc;
}

/* Parses "<0xAB>" (sentencepiece byte piece) into 0..255, or -1. */
static int byte_piece_value(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static int check_pieces(spm_model *m, const char *what) {
    if (m->n <= 0) { il_seterr("%s: the model has no pieces", what); return -1; }
    m->min_score = FLT_MAX;
    m->max_score = FLT_MIN; /* sentencepiece starts from FLT_MIN too */
    for (int i = 0; i < m->n; i++) {
        const char *s = spm_piece(m, i);
        if (m->len[i] == 0) { il_seterr("%s: piece %d is empty", what, i); return -1; }
        if (!il_utf8_valid(s, m->len[i])) {
            il_seterr("%s: piece %d is not valid UTF-8", what, i);
            return -1;
        }
        if (memchr(s, 0, m->len[i])) { il_seterr("%s: piece %d contains a NUL byte", what, i); return -1; }
        int ty = m->type[i];
        if (ty < SPM_NORMAL || ty > SPM_BYTE) {
            il_seterr("%s: piece %d: unknown type %d", what, i, ty);
            return -1;
        }
        if (ty == SPM_NORMAL) {
            if (m->score[i] < m->min_score) m->min_score = m->score[i];
            if (m->score[i] > m->max_score) m->max_score = m->score[i];
        }
        if (ty == SPM_USER_DEFINED) m->has_user_defined = true;
        if (ty == SPM_UNKNOWN) {
            if (m->unk_id >= 0) { il_seterr("%s: piece %d: a second <unk> piece", what, i); return -1; }
            m->unk_id = i;
        }
        if (ty == SPM_BYTE) {
            if (!m->byte_fallback) {
                il_seterr("%s: piece %d is a byte piece but byte_fallback is off", what, i);
                return -1;
            }
            int v = byte_piece_value(s, m->len[i]);
            if (v < 0) { il_seterr("%s: piece %d: malformed byte piece \"%s\"", what, i, s); return -1; }
            m->byte_id[v] = i;
        }
    }
    if (m->unk_id < 0) { il_seterr("%s: the model defines no <unk> piece", what); return -1; }
    if (m->byte_fallback) {
        for (int v = 0; v < 256; v++)
            if (m->byte_id[v] < 0) {
                il_seterr("%s: byte_fallback is on but byte piece <0x%02X> is missing", what, v);
                return -1;
            }
    }
    return 0;
}

int spm_model_finish(spm_model *m, const char *what) {
    if (check_pieces(m, what) || build_hash(m, what) || build_trie(m)) return -1;
    if (!m->unk_surface && !(m->unk_surface = il_strdup(" \xe2\x81\x87 "))) return -1;
    if (!il_utf8_valid(m->unk_surface, strlen(m->unk_surface))) {
        il_seterr("%s: trainer_spec.unk_surface is not valid UTF-8", what);
        return -1;
    }
    return 0;
}

/* ---- segmentation ---- */

/* Bytes of the UTF-8 character starting with lead byte c, as sentencepiece's OneCharLen. */
static inline int one_char_len(uint8_t c) {
    static const uint8_t tbl[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return tbl[c >> 4];
}

typedef struct {
    int32_t id;        /* -1 until reached */
    int32_t starts_at; /* -1 until reached */
    float score;       /* best path score ending here */
} best_node;

/* Viterbi over the normalized string (unigram_model.cc EncodeOptimized), with its exact
 * arithmetic: piece candidates are summed in double (the user-defined branch makes the
 * score expression double), unknown candidates in float, and path scores stored as float,
 * so ties and near-ties resolve as in sentencepiece. */
static int viterbi(const spm_model *m, const uint8_t *s, size_t size, spm_segs *out) {
    best_node *best = il_malloc((size + 1) * sizeof *best);
    if (!best) return -1;
    for (size_t i = 0; i <= size; i++) best[i] = (best_node){-1, -1, 0.0f};
    const float unk_score = m->min_score - SPM_UNK_PENALTY;
    const spm_trie *t = &m->trie;
    size_t starts_at = 0;
    while (starts_at < size) {
        const float till_here = best[starts_at].score;
        size_t mblen = (size_t)one_char_len(s[starts_at]);
        if (mblen > size - starts_at) mblen = size - starts_at;
        bool has_single_node = false;
        int32_t node = 0;
        for (size_t key_pos = starts_at; key_pos < size;) {
            node = spm_trie_step(t, node, s[key_pos++]);
            if (node < 0) break;
            int32_t id = t->id[node];
            if (id < 0 || m->type[id] == SPM_UNUSED) continue;
            size_t length = key_pos - starts_at;
            double score = m->type[id] == SPM_USER_DEFINED
                               ? (double)((float)length * m->max_score) - 0.1
                               : (double)m->score[id];
            double cand = score + (double)till_here;
            best_node *tn = &best[key_pos];
            if (tn->starts_at == -1 || cand > (double)tn->score) {
                tn->score = (float)cand;
                tn->starts_at = (int32_t)starts_at;
                tn->id = id;
            }
            if (length == mblen) has_single_node = true;
        }
        if (!has_single_node) {
            best_node *tn = &best[starts_at + mblen];
            float cand = unk_score + till_here;
            if (tn->starts_at == -1 || cand > tn->score) {
                tn->score = cand;
                tn->starts_at = (int32_t)starts_at;
                tn->id = m->unk_id;
            }
        }
        starts_at += mblen;
    }
    /* Backtrack, then reverse in place. */
    int first = out->n;
    for (size_t end = size; end > 0;) {
        size_t start = (size_t)best[end].starts_at;
        if (spm_segs_push(out, best[end].id, start, end - start)) { free(best); return -1; }
        end = start;
    }
    for (int i = first, j = out->n - 1; i < j; i++, j--) {
        spm_seg tmp = out->v[i];
        out->v[i] = out->v[j];
        out->v[j] = tmp;
    }
    free(best);
    return 0;
}

/* PopulateSentencePieceText: consecutive unknown segments merge into one piece, so a run
 * of unknown characters is one <unk> (without byte fallback). */
static void merge_unknowns(const spm_model *m, spm_segs *segs) {
    int w = 0;
    for (int i = 0; i < segs->n; i++) {
        spm_seg g = segs->v[i];
        if (w > 0 && g.id == m->unk_id && segs->v[w - 1].id == m->unk_id &&
            segs->v[w - 1].off + segs->v[w - 1].len == g.off) {
            segs->v[w - 1].len += g.len;
        } else {
            segs->v[w++] = g;
        }
    }
    segs->n = w;
}

/* Byte fallback: replaces every unknown segment by one byte piece per UTF-8 byte; each
 * keeps off/len of its byte in the normalized text. */
static int expand_bytes(const spm_model *m, const char *norm, spm_segs *segs) {
    spm_segs tmp = {0};
    for (int i = 0; i < segs->n; i++) {
        spm_seg g = segs->v[i];
        int rc = 0;
        if (g.id != m->unk_id) {
            rc = spm_segs_push(&tmp, g.id, g.off, g.len);
        } else {
            for (uint32_t k = 0; k < g.len && !rc; k++) {
                int32_t id = m->byte_id[(uint8_t)norm[g.off + k]];
                rc = spm_segs_push(&tmp, id, g.off + k, 1);
            }
        }
        if (rc) { free(tmp.v); return -1; }
    }
    free(segs->v);
    *segs = tmp;
    return 0;
}

int spm_encode(const spm_model *m, const char *text, size_t len, il_buf *norm, spm_segs *segs) {
    norm->len = 0;
    if (norm->data) norm->data[0] = 0;
    segs->n = 0;
    if (spm_normalize(m, text, len, norm)) return -1;
    if (norm->len > INT32_MAX / 2) { il_seterr("text too long (%zu bytes)", len); return -1; }
    if (norm->len == 0) return 0;
    if (viterbi(m, (const uint8_t *)norm->data, norm->len, segs)) return -1;
    if (m->byte_fallback) return expand_bytes(m, norm->data, segs);
    merge_unknowns(m, segs);
    return 0;
}

/* ---- decoding ---- */

/* Appends the bytes of a run of byte pieces; each malformed byte becomes U+FFFD. */
static int flush_bytes(il_buf *out, const uint8_t *bytes, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k = il_utf8_decode((const char *)bytes + i, n - i, &cp);
        if (k == 0) {
            if (il_buf_append(out, "\xef\xbf\xbd", 3)) return -1;
            i++;
        } else {
            if (il_buf_append(out, bytes + i, (size_t)k)) return -1;
            i += (size_t)k;
        }
    }
    return 0;
}

/* Appends piece with every U+2581 replaced by a space. */
static int append_unescaped(il_buf *out, const char *s, size_t len) {
    size_t i = 0, run = 0;
    while (i < len) {
        if (len - i >= SPACE_LEN && memcmp(s + i, kSpaceSymbol, SPACE_LEN) == 0) {
            if (il_buf_append(out, s + run, i - run) || il_buf_append(out, " ", 1)) return -1;
            i += SPACE_LEN;
            run = i;
        } else {
            i++;
        }
    }
    return il_buf_append(out, s + run, len - run);
}

int spm_decode(const spm_model *m, const spm_item *items, int n, il_buf *out) {
    size_t start = out->len; /* "text->empty()" refers to this call's output */
    uint8_t *bytes = il_malloc((size_t)(n > 0 ? n : 1));
    if (!bytes) return -1;
    size_t nbytes = 0;
    int rc = -1;
    for (int i = 0; i < n; i++) {
        const spm_item *it = &items[i];
        int ty = (it->id >= 0 && it->id < m->n) ? m->type[it->id] : SPM_UNKNOWN;
        if (ty == SPM_BYTE) {
            bytes[nbytes++] = (uint8_t)byte_piece_value(it->s, it->len);
            continue;
        }
        if (nbytes) {
            if (flush_bytes(out, bytes, nbytes)) goto out;
            nbytes = 0;
        }
        if (ty == SPM_CONTROL) continue; /* invisible */
        if (it->id == m->unk_id) {
            /* the <unk> piece itself shows as unk_surface; any other string that maps to
             * <unk> (a merged unknown run, a foreign token) is copied as is */
            bool is_unk_piece = it->len == m->len[m->unk_id] &&
                                memcmp(it->s, spm_piece(m, m->unk_id), it->len) == 0;
            if (is_unk_piece ? il_buf_puts(out, m->unk_surface) : il_buf_append(out, it->s, it->len))
                goto out;
            continue;
        }
        const char *s = it->s;
        size_t len = it->len;
        /* the dummy-prefix space of the first visible piece is dropped */
        if (out->len == start && len >= SPACE_LEN && memcmp(s, kSpaceSymbol, SPACE_LEN) == 0) {
            s += SPACE_LEN;
            len -= SPACE_LEN;
        }
        if (append_unescaped(out, s, len)) goto out;
    }
    if (nbytes && flush_bytes(out, bytes, nbytes)) goto out;
    rc = 0;
out:
    free(bytes);
    return rc;
}
