/* retrieval.c - see retrieval.h. */
#include "retrieval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

int il_similarity_parse(const char *name, il_similarity *out) {
    if (!strcmp(name, "cosine")) *out = IL_SIM_COSINE;
    else if (!strcmp(name, "l2")) *out = IL_SIM_L2;
    else if (!strcmp(name, "bm25")) *out = IL_SIM_BM25;
    else {
        il_seterr("unknown retrieval '%s' (expected cosine, l2 or bm25)", name);
        return -1;
    }
    return 0;
}

const char *il_similarity_name(il_similarity s) {
    return s == IL_SIM_COSINE ? "cosine" : s == IL_SIM_L2 ? "l2" : "bm25";
}

float il_cosine(const float *a, const float *b, int dim) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < dim; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    /* Norms clamped as sentence-transformers' cos_sim does, so a zero vector gives 0. */
    return (float)(ab / (fmax(sqrt(aa), 1e-12) * fmax(sqrt(bb), 1e-12)));
}

float il_vec_l2(const float *a, const float *b, int dim) {
    double s = 0;
    for (int i = 0; i < dim; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return (float)sqrt(s);
}

void il_vector_scores(il_similarity s, const float *query, const float *vecs, int m, int dim,
                      float *scores) {
    for (int i = 0; i < m; i++) {
        const float *v = vecs + (size_t)i * dim;
        scores[i] = s == IL_SIM_L2 ? -il_vec_l2(query, v, dim) : il_cosine(query, v, dim);
    }
}

/* Is candidate a better than b? Higher score first, NaN last, then lower index. */
static bool ranks_before(const float *scores, int a, int b) {
    float x = scores[a], y = scores[b];
    bool xn = x != x, yn = y != y;
    if (xn != yn) return yn;
    if (!xn && x != y) return x > y;
    return a < b;
}

int il_top_n(const float *scores, int m, int n, int *out) {
    if (n < 1 || n > m) {
        il_seterr("top-N: N = %d, but there are %d candidates", n, m);
        return -1;
    }
    /* Partial selection: m is a library size (tens to hundreds), so O(m n) is fine and
     * keeps the tie rule explicit. */
    char *taken = il_calloc((size_t)m, 1);
    if (!taken) return -1;
    for (int k = 0; k < n; k++) {
        int best = -1;
        for (int i = 0; i < m; i++)
            if (!taken[i] && (best < 0 || ranks_before(scores, i, best))) best = i;
        taken[best] = 1;
        out[k] = best;
    }
    free(taken);
    return 0;
}

/* ---- BM25 ---- */

typedef struct {
    char *term;
    int df;
} bm25_term;

struct il_bm25 {
    int m;
    double avg_len;
    int *doc_len;
    /* Per document: sorted terms with counts (term ids into vocab). */
    int **doc_terms, **doc_counts, *doc_n;
    bm25_term *vocab; /* sorted by term */
    int n_vocab;
};

/* Lower-cased terms of text: runs of letters/digits. Returns a malloc'd array of strings. */
static char **split_terms(const char *text, int *n_out) {
    utf8proc_uint8_t *folded = NULL;
    *n_out = 0;
    if (utf8proc_map((const utf8proc_uint8_t *)text, 0, &folded,
                     UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_CASEFOLD) < 0) {
        il_seterr("BM25: invalid UTF-8 text");
        return NULL;
    }
    char **terms = NULL;
    int n = 0, cap = 0;
    const char *p = (const char *)folded;
    while (*p) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p, -1, &cp);
        if (k <= 0) break;
        utf8proc_category_t cat = utf8proc_category(cp);
        bool word = (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                    (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
        if (!word) { p += k; continue; }
        const char *start = p;
        while (*p) {
            k = utf8proc_iterate((const utf8proc_uint8_t *)p, -1, &cp);
            if (k <= 0) break;
            cat = utf8proc_category(cp);
            if (!((cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                  (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO) ||
                  (cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME)))
                break;
            p += k;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **t = il_realloc(terms, sizeof *t * (size_t)cap);
            if (!t) goto fail;
            terms = t;
        }
        if (!(terms[n] = il_strndup(start, (size_t)(p - start)))) goto fail;
        n++;
    }
    free(folded);
    *n_out = n;
    return terms ? terms : il_calloc(1, sizeof *terms);
fail:
    for (int i = 0; i < n; i++) free(terms[i]);
    free(terms);
    free(folded);
    return NULL;
}

static void free_terms(char **t, int n) {
    for (int i = 0; i < n; i++) free(t[i]);
    free(t);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int vocab_find(const il_bm25 *b, const char *term) {
    int lo = 0, hi = b->n_vocab - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(b->vocab[mid].term, term);
        if (!c) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

il_bm25 *il_bm25_build(int m, const char *const *docs) {
    il_bm25 *b = il_calloc(1, sizeof *b);
    if (!b) return NULL;
    b->m = m;
    b->doc_len = il_calloc((size_t)m + 1, sizeof *b->doc_len);
    b->doc_terms = il_calloc((size_t)m + 1, sizeof *b->doc_terms);
    b->doc_counts = il_calloc((size_t)m + 1, sizeof *b->doc_counts);
    b->doc_n = il_calloc((size_t)m + 1, sizeof *b->doc_n);
    char ***doc_words = il_calloc((size_t)m + 1, sizeof *doc_words);
    if (!b->doc_len || !b->doc_terms || !b->doc_counts || !b->doc_n || !doc_words) goto fail;
    /* 1. Split every document, sort its words, collect all distinct words. */
    char **all = NULL;
    int n_all = 0;
    for (int d = 0; d < m; d++) {
        doc_words[d] = split_terms(docs[d], &b->doc_len[d]);
        if (!doc_words[d]) { il_prefixerr("document %d", d); goto fail; }
        qsort(doc_words[d], (size_t)b->doc_len[d], sizeof(char *), cmp_str);
        b->avg_len += b->doc_len[d];
        char **grown = il_realloc(all, sizeof *all * (size_t)(n_all + b->doc_len[d] + 1));
        if (!grown) goto fail;
        all = grown;
        for (int i = 0; i < b->doc_len[d]; i++)
            if (i == 0 || strcmp(doc_words[d][i], doc_words[d][i - 1])) all[n_all++] = doc_words[d][i];
    }
    b->avg_len = m ? b->avg_len / m : 0;
    qsort(all, (size_t)n_all, sizeof(char *), cmp_str);
    /* 2. The vocabulary with document frequencies (all holds one entry per (doc, term)). */
    b->vocab = il_calloc((size_t)n_all + 1, sizeof *b->vocab);
    if (!b->vocab) { free(all); goto fail; }
    for (int i = 0; i < n_all; i++) {
        if (b->n_vocab && !strcmp(b->vocab[b->n_vocab - 1].term, all[i])) { b->vocab[b->n_vocab - 1].df++; continue; }
        if (!(b->vocab[b->n_vocab].term = il_strdup(all[i]))) { free(all); goto fail; }
        b->vocab[b->n_vocab++].df = 1;
    }
    free(all);
    /* 3. Per document: (term id, count) pairs. */
    for (int d = 0; d < m; d++) {
        int len = b->doc_len[d];
        b->doc_terms[d] = il_calloc((size_t)len + 1, sizeof(int));
        b->doc_counts[d] = il_calloc((size_t)len + 1, sizeof(int));
        if (!b->doc_terms[d] || !b->doc_counts[d]) goto fail;
        for (int i = 0; i < len; i++) {
            if (i && !strcmp(doc_words[d][i], doc_words[d][i - 1])) { b->doc_counts[d][b->doc_n[d] - 1]++; continue; }
            b->doc_terms[d][b->doc_n[d]] = vocab_find(b, doc_words[d][i]);
            b->doc_counts[d][b->doc_n[d]++] = 1;
        }
    }
    for (int d = 0; d < m; d++) free_terms(doc_words[d], b->doc_len[d]);
    free(doc_words);
    return b;
fail:
    if (doc_words)
        for (int d = 0; d < m; d++) free_terms(doc_words[d], doc_words[d] ? b->doc_len[d] : 0);
    free(doc_words);
    il_bm25_free(b);
    return NULL;
}

int il_bm25_scores(const il_bm25 *b, const char *query, float *scores) {
    const double k1 = 1.5, bb = 0.75;
    int nq;
    char **q = split_terms(query, &nq);
    if (!q) return -1;
    for (int d = 0; d < b->m; d++) scores[d] = 0;
    for (int i = 0; i < nq; i++) {
        int t = vocab_find(b, q[i]);
        if (t < 0) continue;
        double idf = log(1.0 + (b->m - b->vocab[t].df + 0.5) / (b->vocab[t].df + 0.5));
        for (int d = 0; d < b->m; d++) {
            int tf = 0;
            for (int j = 0; j < b->doc_n[d]; j++)
                if (b->doc_terms[d][j] == t) { tf = b->doc_counts[d][j]; break; }
            if (!tf) continue;
            double norm = b->avg_len > 0 ? b->doc_len[d] / b->avg_len : 1.0;
            scores[d] += (float)(idf * tf * (k1 + 1) / (tf + k1 * (1 - bb + bb * norm)));
        }
    }
    free_terms(q, nq);
    return 0;
}

void il_bm25_free(il_bm25 *b) {
    if (!b) return;
    for (int d = 0; d < b->m; d++) {
        if (b->doc_terms) free(b->doc_terms[d]);
        if (b->doc_counts) free(b->doc_counts[d]);
    }
    for (int i = 0; i < b->n_vocab; i++) free(b->vocab[i].term);
    free(b->vocab);
    free(b->doc_terms);
    free(b->doc_counts);
    free(b->doc_n);
    free(b->doc_len);
    free(b);
}
