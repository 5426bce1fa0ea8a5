/* iloracomp.c - the session and task objects, retrieval, routing and generation shared by
 * the methods (iloracomp.h). The methods themselves are in methods.c. */
#include "iloracomp.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iloracomp_internal.h"

/* ===== methods ===== */

static const char *const method_names[IL_METHOD_COUNT] = {
    [IL_METHOD_ZEROSHOT] = "zeroshot", [IL_METHOD_ICL] = "icl", [IL_METHOD_LORAHUB] = "lorahub",
    [IL_METHOD_BATCHCOMP] = "batchcomp", [IL_METHOD_ILORA] = "ilora", [IL_METHOD_FFT] = "fft",
};

const char *il_method_name(il_method m) {
    return (unsigned)m < IL_METHOD_COUNT ? method_names[m] : "unknown";
}

int il_method_parse(const char *name, il_method *out) {
    for (int i = 0; i < IL_METHOD_COUNT; i++)
        if (name && !strcmp(name, method_names[i])) {
            *out = (il_method)i;
            return 0;
        }
    il_seterr("unknown method '%s' (valid: zeroshot, icl, lorahub, batchcomp, ilora)",
              name ? name : "(null)");
    return -1;
}

il_ilc_settings il_ilc_default_settings(void) {
    il_ilc_settings s = {0};
    s.retrieval = IL_SIM_COSINE;
    s.top_n = 20;
    s.steps = IL_LORAHUB_BUDGET;
    s.optimizer = NULL;
    s.rule = IL_LORA_LINEAR;
    s.l1 = IL_LORAHUB_L1;
    s.loss_batch_size = IL_LORAHUB_BATCH_SIZE;
    s.max_input_tokens = 2048;
    s.max_new_tokens = 256;
    s.gen_batch = 32;
    s.max_items = 0;
    s.seed = 42;
    s.lorahub_runs = 3;
    return s;
}

/* ===== small pieces ===== */

char *il_ilc_icl_prompt(int k, const char *const *inputs, const char *const *targets,
                        const char *question) {
    il_buf b = {0};
    int rc = 0;
    for (int j = 0; j < k; j++) {
        rc |= il_buf_puts(&b, inputs[j]);
        rc |= il_buf_puts(&b, " ");
        rc |= il_buf_puts(&b, targets[j]);
        rc |= il_buf_puts(&b, "\n");
    }
    rc |= il_buf_puts(&b, question);
    if (rc || !b.data) {
        il_buf_free(&b);
        if (!rc) return il_strdup(""); /* k = 0 and an empty question */
        return NULL;
    }
    return b.data;
}

uint64_t il_ilc_derive_seed(uint64_t base, const char *task, const char *method, int index) {
    char *s = il_sprintf("%s\n%s\n%d", task ? task : "", method ? method : "", index);
    if (!s) return base ^ 0x9e3779b97f4a7c15ULL; /* out of memory: still deterministic */
    uint64_t h = il_xxh64(s, strlen(s), base);
    free(s);
    return h;
}

int il_ilc_route(const float *q, const float *shots, int k, int dim, float *sim) {
    int best = 0;
    float bs = k > 0 ? il_cosine(q, shots, dim) : NAN;
    for (int j = 1; j < k; j++) {
        float c = il_cosine(q, shots + (size_t)j * dim, dim);
        if (c > bs) { /* strictly greater: ties keep the lower j */
            bs = c;
            best = j;
        }
    }
    if (sim) *sim = bs;
    return best;
}

void ilc_log(const il_ilc *s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s->set.log) s->set.log(s->set.user, msg);
    else fprintf(stderr, "ilora: warning: %s\n", msg);
}

/* ===== the session ===== */

static il_lora *load_from_library(void *user, int i, const il_t5_config *base) {
    return il_library_load_adapter(user, i, base, NULL);
}

void il_ilc_free(il_ilc *s) {
    if (!s) return;
    il_lora_ctx_free(s->ctx);
    for (int i = 0; s->names && i < s->m; i++) free(s->names[i]);
    free(s->names);
    free(s->centroids);
    il_bm25_free(s->bm25);
    free(s->optimizer);
    free(s);
}

static int check_settings(const il_ilc_settings *c) {
    if (c->top_n < 1) { il_seterr("settings: top_n: %d (must be >= 1)", c->top_n); return -1; }
    if (c->steps < 1) { il_seterr("settings: steps: %d (must be >= 1)", c->steps); return -1; }
    if (c->max_new_tokens < 1) {
        il_seterr("settings: max_new_tokens: %d (must be >= 1)", c->max_new_tokens);
        return -1;
    }
    if (c->max_input_tokens == 1) {
        il_seterr("settings: max_input_tokens: 1 (must be >= 2 to keep </s>, or <= 0 for no limit)");
        return -1;
    }
    if (c->gen_batch < 0 || c->max_items < 0) {
        il_seterr("settings: gen_batch / max_items must be >= 0");
        return -1;
    }
    if (c->lorahub_runs < 1) {
        il_seterr("settings: lorahub_runs: %d (must be >= 1)", c->lorahub_runs);
        return -1;
    }
    if (c->loss_batch_size < 1 || !(c->l1 >= 0) || !isfinite(c->l1)) {
        il_seterr("settings: loss_batch_size must be >= 1 and l1 finite and >= 0");
        return -1;
    }
    if (c->retrieval != IL_SIM_COSINE && c->retrieval != IL_SIM_L2 && c->retrieval != IL_SIM_BM25) {
        il_seterr("settings: retrieval: unknown similarity %d", (int)c->retrieval);
        return -1;
    }
    return 0;
}

il_ilc *il_ilc_new(il_t5 *model, const il_tokenizer *tok, il_embedder *emb,
                   const il_ilc_library *lib, const il_ilc_settings *set) {
    if (!model || !tok || !emb || !lib || !set) {
        il_seterr("iLoraComp session: model, tokenizer, embedder, library and settings are required");
        return NULL;
    }
    if (check_settings(set)) return NULL;
    const int m = lib->n_adapters;
    if (m < 1 || !lib->names) {
        il_seterr("iLoraComp session: the library has no adapters");
        return NULL;
    }
    if (!lib->adapters && !lib->load) {
        il_seterr("iLoraComp session: the library gives no way to get adapter weights");
        return NULL;
    }
    if (lib->centroids && lib->dim != il_embedder_dim(emb)) {
        il_seterr("iLoraComp session: centroids have dimension %d, the embedder gives %d",
                  lib->dim, il_embedder_dim(emb));
        return NULL;
    }
    if (set->retrieval == IL_SIM_BM25 && !lib->bm25_docs) {
        il_seterr("iLoraComp session: BM25 retrieval needs the adapters' BM25 documents");
        return NULL;
    }
    il_ilc *s = il_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->model = model;
    s->tok = tok;
    s->emb = emb;
    s->m = m;
    s->dim = il_embedder_dim(emb);
    s->set = *set;
    s->pre = lib->adapters;
    s->load = lib->load;
    s->load_user = lib->load_user;
    if (set->optimizer && !(s->optimizer = il_strdup(set->optimizer))) goto fail;
    s->set.optimizer = s->optimizer;
    if (!(s->names = il_calloc((size_t)m, sizeof *s->names))) goto fail;
    for (int i = 0; i < m; i++)
        if (!(s->names[i] = il_strdup(lib->names[i] ? lib->names[i] : "?"))) goto fail;
    if (lib->centroids) {
        size_t n = (size_t)m * (size_t)s->dim;
        if (!(s->centroids = il_malloc(sizeof *s->centroids * n))) goto fail;
        memcpy(s->centroids, lib->centroids, sizeof *s->centroids * n);
    }
    if (set->retrieval == IL_SIM_BM25 && !(s->bm25 = il_bm25_build(m, lib->bm25_docs))) goto fail;
    s->top_n = set->top_n;
    if (s->top_n > m) {
        ilc_log(s, "--topn %d is larger than the library (%d adapters): using all %d", set->top_n,
                m, m);
        s->top_n = m;
    }
    if (!(s->ctx = il_lora_ctx_new(model))) goto fail;
    return s;
fail:
    il_ilc_free(s);
    return NULL;
}

il_ilc *il_ilc_new_library(il_t5 *model, const il_tokenizer *tok, il_embedder *emb,
                           const il_library *lib, const il_library_index *index,
                           const il_ilc_settings *set) {
    if (!lib) {
        il_seterr("iLoraComp session: no library");
        return NULL;
    }
    const int m = il_library_size(lib);
    if (index && index->m != m) {
        il_seterr("iLoraComp session: the index has %d centroids for %d adapters", index->m, m);
        return NULL;
    }
    const char **names = il_calloc((size_t)m, sizeof *names);
    const char **docs = il_calloc((size_t)m, sizeof *docs);
    il_ilc *s = NULL;
    if (names && docs) {
        for (int i = 0; i < m; i++) {
            names[i] = il_library_name(lib, i);
            docs[i] = il_library_bm25_doc(lib, i);
        }
        il_ilc_library l = {m, names, index ? index->centroids : NULL, index ? index->dim : 0,
                            docs, NULL, load_from_library, (void *)lib};
        s = il_ilc_new(model, tok, emb, &l, set);
    }
    free(names);
    free(docs);
    return s;
}

int il_ilc_library_size(const il_ilc *s) { return s->m; }
const char *il_ilc_adapter_name(const il_ilc *s, int i) {
    return i >= 0 && i < s->m ? s->names[i] : NULL;
}
int il_ilc_top_n(const il_ilc *s) { return s->top_n; }

/* ===== a task ===== */

static void free_strings(char **v, int n) {
    for (int i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

static char **copy_strings(int n, const char *const *v, const char *what) {
    char **out = il_calloc((size_t)n + 1, sizeof *out);
    if (!out) return NULL;
    for (int i = 0; i < n; i++) {
        if (!v[i]) {
            il_seterr("%s %d: missing text", what, i);
            free_strings(out, i);
            return NULL;
        }
        if (!(out[i] = il_strdup(v[i]))) {
            free_strings(out, i);
            return NULL;
        }
    }
    return out;
}

void ilc_ids_free(ilc_ids *x) {
    for (int i = 0; x->ids && i < x->n; i++) free(x->ids[i]);
    free(x->ids);
    free(x->lens);
    free(x->truncated);
    memset(x, 0, sizeof *x);
}

int ilc_tokenize(const il_ilc *s, int n, const char *const *texts, const char *what,
                 ilc_ids *out) {
    memset(out, 0, sizeof *out);
    out->ids = il_calloc((size_t)n + 1, sizeof *out->ids);
    out->lens = il_calloc((size_t)n + 1, sizeof *out->lens);
    out->truncated = il_calloc((size_t)n + 1, sizeof *out->truncated);
    if (!out->ids || !out->lens || !out->truncated) goto fail;
    out->n = n;
    const int max = s->set.max_input_tokens;
    for (int i = 0; i < n; i++) {
        if (il_tokenizer_encode(s->tok, texts[i], strlen(texts[i]), &out->ids[i], &out->lens[i])) {
            il_prefixerr("%s %d", what, i);
            goto fail;
        }
        if (max > 0 && out->lens[i] > max) {
            out->ids[i][max - 1] = out->ids[i][out->lens[i] - 1]; /* keep </s> last */
            out->lens[i] = max;
            out->truncated[i] = true;
        }
    }
    return 0;
fail:
    ilc_ids_free(out);
    return -1;
}

void il_ilc_task_free(il_ilc_task *t) {
    if (!t) return;
    if (t->cache)
        for (int i = 0; i < t->s->m; i++)
            if (!t->s->pre) il_lora_free(t->cache[i]);
    free(t->cache);
    free(t->name);
    free_strings(t->shot_in, t->k);
    free_strings(t->shot_out, t->k);
    free_strings(t->q, t->nq);
    il_lorahub_tokenized_free(&t->shots);
    ilc_ids_free(&t->qids);
    free(t->e_shot_text);
    free(t->e_shot_in);
    free(t->e_q);
    free(t);
}

il_ilc_task *il_ilc_task_new(il_ilc *s, const char *name, int k, const char *const *shot_inputs,
                             const char *const *shot_targets, int nq,
                             const char *const *questions) {
    if (!s || !name || k < 1 || nq < 0 || !shot_inputs || !shot_targets || (nq && !questions)) {
        il_seterr("task %s: needs at least one shot (k = %d) and nq >= 0 questions",
                  name ? name : "(unnamed)", k);
        return NULL;
    }
    il_ilc_task *t = il_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->s = s;
    t->k = k;
    t->nq = nq;
    if (!(t->name = il_strdup(name)) || !(t->shot_in = copy_strings(k, shot_inputs, "shot")) ||
        !(t->shot_out = copy_strings(k, shot_targets, "shot target")) ||
        !(t->q = copy_strings(nq, questions, "question")) ||
        !(t->cache = il_calloc((size_t)s->m, sizeof *t->cache)))
        goto fail;
    if (il_lorahub_tokenize(s->tok, k, shot_inputs, shot_targets, s->set.max_input_tokens,
                            &t->shots) ||
        ilc_tokenize(s, nq, questions, "question", &t->qids))
        goto fail;
    return t;
fail:
    il_prefixerr("task %s", name);
    il_ilc_task_free(t);
    return NULL;
}

int il_ilc_task_n_truncated(const il_ilc_task *t) {
    int n = 0;
    for (int i = 0; i < t->nq; i++) n += t->qids.truncated[i];
    return n;
}

/* ===== embeddings, retrieval, adapters ===== */

int ilc_embeddings(il_ilc_task *t, bool shot_texts, bool routing, double *secs) {
    il_ilc *s = t->s;
    const size_t dim = (size_t)s->dim;
    double t0 = il_now();
    char **texts = NULL;
    int rc = -1;
    if (shot_texts && !t->e_shot_text) {
        texts = il_calloc((size_t)t->k, sizeof *texts);
        float *e = il_malloc(sizeof *e * (size_t)t->k * dim);
        if (!texts || !e) { free(e); goto done; }
        for (int j = 0; j < t->k; j++)
            if (!(texts[j] = il_sprintf("%s %s", t->shot_in[j], t->shot_out[j]))) { free(e); goto done; }
        if (il_embedder_embed(s->emb, t->k, (const char *const *)texts, e)) {
            il_prefixerr("task %s: embedding the shots", t->name);
            free(e);
            goto done;
        }
        t->e_shot_text = e;
    }
    if (routing && !t->e_shot_in) {
        float *e = il_malloc(sizeof *e * (size_t)t->k * dim);
        if (!e) goto done;
        if (il_embedder_embed(s->emb, t->k, (const char *const *)t->shot_in, e)) {
            il_prefixerr("task %s: embedding the shot inputs", t->name);
            free(e);
            goto done;
        }
        t->e_shot_in = e;
    }
    if (routing && !t->e_q && t->nq > 0) {
        float *e = il_malloc(sizeof *e * (size_t)t->nq * dim);
        if (!e) goto done;
        if (il_embedder_embed(s->emb, t->nq, (const char *const *)t->q, e)) {
            il_prefixerr("task %s: embedding the questions", t->name);
            free(e);
            goto done;
        }
        t->e_q = e;
    }
    rc = 0;
done:
    if (texts)
        for (int j = 0; j < t->k; j++) free(texts[j]);
    free(texts);
    if (secs) *secs += il_now() - t0;
    return rc;
}

int ilc_retrieve(il_ilc_task *t, const float *query, const char *query_text, il_ilc_comp *c) {
    il_ilc *s = t->s;
    const int m = s->m, n = s->top_n;
    float *scores = il_malloc(sizeof *scores * (size_t)m);
    c->adapters = il_malloc(sizeof *c->adapters * (size_t)n);
    c->scores = il_malloc(sizeof *c->scores * (size_t)n);
    if (!scores || !c->adapters || !c->scores) { free(scores); return -1; }
    if (s->set.retrieval == IL_SIM_BM25) {
        if (il_bm25_scores(s->bm25, query_text, scores)) { free(scores); return -1; }
    } else {
        if (!s->centroids) {
            il_seterr("task %s: %s retrieval needs the library's centroids (an index)", t->name,
                      il_similarity_name(s->set.retrieval));
            free(scores);
            return -1;
        }
        il_vector_scores(s->set.retrieval, query, s->centroids, m, s->dim, scores);
    }
    if (il_top_n(scores, m, n, c->adapters)) { free(scores); return -1; }
    for (int i = 0; i < n; i++) c->scores[i] = scores[c->adapters[i]];
    c->n_adapters = n;
    free(scores);
    return 0;
}

il_lora *ilc_adapter(il_ilc_task *t, int i, double *secs) {
    il_ilc *s = t->s;
    if (s->pre) {
        if (!s->pre[i]) il_seterr("adapter %d (%s): not given", i, s->names[i]);
        return s->pre[i];
    }
    if (!t->cache[i]) {
        double t0 = il_now();
        t->cache[i] = s->load(s->load_user, i, il_t5_get_config(s->model));
        if (secs) *secs += il_now() - t0;
        if (!t->cache[i]) il_prefixerr("task %s: adapter %s", t->name, s->names[i]);
    }
    return t->cache[i];
}

/* ===== generation ===== */

int ilc_generate(il_ilc_task *t, int n, int32_t *const *ids, const int *lens,
                 const il_lora *const *adapters, const int *group, il_ilc_result *r) {
    il_ilc *s = t->s;
    int *order = il_malloc(sizeof *order * (size_t)(n + 1));
    const int32_t **pids = il_malloc(sizeof *pids * (size_t)(n + 1));
    int *plens = il_malloc(sizeof *plens * (size_t)(n + 1));
    int32_t **out = il_calloc((size_t)n + 1, sizeof *out);
    int *out_lens = il_calloc((size_t)n + 1, sizeof *out_lens);
    bool *hit = il_calloc((size_t)n + 1, sizeof *hit);
    int rc = -1;
    if (!order || !pids || !plens || !out || !out_lens || !hit) goto done;
    /* Group the items by the adapter they use (stable: question order within a group), so
     * that the hook computes each group's LoRA term in one product. The order depends on the
     * inputs only. Insertion sort keeps it stable and is fine for a few hundred items. */
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && group[order[j - 1]] > group[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    il_lora_ctx_clear_items(s->ctx);
    for (int p = 0; p < n; p++) {
        pids[p] = ids[order[p]];
        plens[p] = lens[order[p]];
        if (il_lora_ctx_set_item(s->ctx, p, adapters[order[p]])) goto done;
    }
    if (s->set.progress) s->set.progress(s->set.user, "generate", 0, n);
    il_gen_opts o = il_gen_default_opts();
    o.max_new_tokens = s->set.max_new_tokens;
    o.max_batch = s->set.gen_batch;
    double t0 = il_now();
    if (n > 0 && il_t5_generate(s->model, n, pids, plens, &o, out, out_lens, hit)) {
        il_prefixerr("task %s: generating", t->name);
        goto done;
    }
    r->t_generate += il_now() - t0;
    const bool cleanup = il_tokenizer_cleanup_default(s->tok);
    for (int p = 0; p < n; p++) {
        const int i = order[p];
        char *text = il_tokenizer_decode(s->tok, out[p], out_lens[p], true, cleanup);
        if (!text) {
            il_prefixerr("task %s: decoding answer %d", t->name, i);
            goto done;
        }
        r->prediction[i] = text;
        r->ids[i] = out[p];
        r->n_ids[i] = out_lens[p];
        r->hit_limit[i] = hit[p];
        out[p] = NULL;
    }
    if (s->set.progress) s->set.progress(s->set.user, "generate", n, n);
    rc = 0;
done:
    il_lora_ctx_clear_items(s->ctx);
    if (out)
        for (int p = 0; p < n; p++) free(out[p]);
    free(order);
    free(pids);
    free(plens);
    free(out);
    free(out_lens);
    free(hit);
    return rc;
}
