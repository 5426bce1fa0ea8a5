/* methods.c - the methods of iloracomp.h: zero-shot, in-context learning, LoraHub with random
 * adapters, BatchComp and iLoraComp. Each one fills an il_ilc_result; the shared steps
 * (embeddings, retrieval, adapter cache, generation) are in iloracomp.c. To add a method:
 * an enum value and a name in iloracomp.h / iloracomp.c, a run_<method> here and its case
 * in il_ilc_run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "iloracomp_internal.h"
#include "method_fft.h"
#include "rng.h"

/* ===== results ===== */

void il_ilc_result_free(il_ilc_result *r) {
    if (!r) return;
    const int n = r->n_runs * r->nq;
    for (int i = 0; i < n; i++) {
        if (r->prediction) free(r->prediction[i]);
        if (r->ids) free(r->ids[i]);
    }
    free(r->prediction);
    free(r->ids);
    free(r->n_ids);
    free(r->hit_limit);
    free(r->comp);
    free(r->input_truncated);
    free(r->route);
    free(r->route_sim);
    for (int c = 0; r->comps && c < r->n_comps; c++) {
        free(r->comps[c].adapters);
        free(r->comps[c].scores);
        il_lorahub_result_free(&r->comps[c].opt);
    }
    free(r->comps);
    memset(r, 0, sizeof *r);
}

static int result_init(il_ilc_result *r, il_method m, const il_ilc_task *t, int n_runs,
                       int n_comps) {
    memset(r, 0, sizeof *r);
    r->method = m;
    r->k = t->k;
    r->nq = t->nq;
    r->n_runs = n_runs;
    const size_t n = (size_t)n_runs * (size_t)t->nq + 1;
    r->prediction = il_calloc(n, sizeof *r->prediction);
    r->ids = il_calloc(n, sizeof *r->ids);
    r->n_ids = il_calloc(n, sizeof *r->n_ids);
    r->hit_limit = il_calloc(n, sizeof *r->hit_limit);
    r->comp = il_calloc(n, sizeof *r->comp);
    r->input_truncated = il_calloc(n, sizeof *r->input_truncated);
    r->comps = il_calloc((size_t)n_comps + 1, sizeof *r->comps);
    if (!r->prediction || !r->ids || !r->n_ids || !r->hit_limit || !r->comp ||
        !r->input_truncated || !r->comps)
        return -1;
    r->n_comps = n_comps;
    for (int c = 0; c < n_comps; c++) r->comps[c].shot = r->comps[c].shared_with = -1;
    for (size_t i = 0; i + 1 < n; i++) r->comp[i] = -1;
    return 0;
}

/* ===== optimisation and composition ===== */

typedef struct {
    const il_ilc *s;
    int done, total;
} opt_progress;

static void on_eval(void *user, int problem, int eval, const double *w, int dim, double loss,
                    double objective) {
    opt_progress *p = user;
    p->done++;
    if (p->s->set.progress) p->s->set.progress(p->s->set.user, "optimise", p->done, p->total);
}

/* Tune the weights of n compositions (their adapters and seeds set) on the task's k shots, in
 * lockstep; each comps[p]->opt receives its result. */
static int optimise(il_ilc_task *t, int n, il_ilc_comp *const *comps, il_ilc_result *r) {
    il_ilc *s = t->s;
    il_lorahub_problem *pr = il_calloc((size_t)n, sizeof *pr);
    const il_lora ***src = il_calloc((size_t)n, sizeof *src);
    il_lorahub_result *res = il_calloc((size_t)n, sizeof *res);
    int rc = -1;
    if (!pr || !src || !res) goto done;
    for (int p = 0; p < n; p++) {
        const il_ilc_comp *c = comps[p];
        if (!(src[p] = il_calloc((size_t)c->n_adapters, sizeof *src[p]))) goto done;
        for (int i = 0; i < c->n_adapters; i++)
            if (!(src[p][i] = ilc_adapter(t, c->adapters[i], &r->t_load))) goto done;
        pr[p].n_adapters = c->n_adapters;
        pr[p].adapters = src[p];
        pr[p].examples = &t->shots.ex;
        pr[p].params = il_lorahub_default_params();
        pr[p].params.optimizer = s->set.optimizer;
        pr[p].params.budget = s->set.steps;
        pr[p].params.seed = c->seed;
        pr[p].params.l1 = s->set.l1;
        pr[p].params.batch_size = s->set.loss_batch_size;
        pr[p].params.rule = s->set.rule;
    }
    opt_progress prog = {s, 0, n * s->set.steps};
    il_lorahub_run_opts ro = {.max_items = s->set.max_items, .on_eval = on_eval, .user = &prog};
    double t0 = il_now();
    if (il_lorahub_run_many(s->ctx, n, pr, &ro, res)) {
        il_prefixerr("task %s: optimising", t->name);
        goto done;
    }
    r->t_optimise += il_now() - t0;
    r->n_optimisations += n;
    r->forward_passes += ro.forward_passes;
    for (int p = 0; p < n; p++) {
        r->n_evals += res[p].n_evals;
        comps[p]->opt = res[p]; /* moved */
        memset(&res[p], 0, sizeof res[p]);
    }
    rc = 0;
done:
    for (int p = 0; res && p < n; p++) il_lorahub_result_free(&res[p]);
    for (int p = 0; src && p < n; p++) free((void *)src[p]);
    free(src);
    free(res);
    free(pr);
    return rc;
}

/* The composition of c's adapters at its learned weights (the arithmetic of the run). */
static il_lora *compose(il_ilc_task *t, const il_ilc_comp *c, il_ilc_result *r) {
    const il_lora **src = il_calloc((size_t)c->n_adapters, sizeof *src);
    float *w = il_malloc(sizeof *w * (size_t)c->n_adapters);
    il_lora *out = NULL;
    if (src && w) {
        int i = 0;
        for (; i < c->n_adapters; i++) {
            if (!(src[i] = ilc_adapter(t, c->adapters[i], &r->t_load))) break;
            w[i] = (float)c->opt.best_w[i];
        }
        if (i == c->n_adapters)
            out = il_lora_compose(c->n_adapters, src, w, t->s->set.rule);
    }
    free(src);
    free(w);
    return out;
}

static int copy_opt(il_lorahub_result *dst, const il_lorahub_result *src) {
    memset(dst, 0, sizeof *dst);
    const size_t ne = (size_t)src->n_evals + 1, d = (size_t)src->dim;
    *dst = *src;
    dst->objective = il_malloc(sizeof(double) * ne);
    dst->loss = il_malloc(sizeof(double) * ne);
    dst->evals_w = il_malloc(sizeof(double) * ne * d);
    dst->best_w = il_malloc(sizeof(double) * d);
    if (!dst->objective || !dst->loss || !dst->evals_w || !dst->best_w) {
        il_lorahub_result_free(dst);
        return -1;
    }
    memcpy(dst->objective, src->objective, sizeof(double) * (size_t)src->n_evals);
    memcpy(dst->loss, src->loss, sizeof(double) * (size_t)src->n_evals);
    memcpy(dst->evals_w, src->evals_w, sizeof(double) * (size_t)src->n_evals * d);
    memcpy(dst->best_w, src->best_w, sizeof(double) * d);
    return 0;
}

/* ===== the methods ===== */

/* Base model on the questions as they are (zeroshot) or on the ICL prompts. */
static int run_base(il_ilc_task *t, il_method m, il_ilc_result *r) {
    il_ilc *s = t->s;
    ilc_ids prompts = {0};
    const ilc_ids *in = &t->qids;
    const il_lora **ad = il_calloc((size_t)t->nq + 1, sizeof *ad);
    int *group = il_calloc((size_t)t->nq + 1, sizeof *group);
    int rc = -1;
    if (!ad || !group) goto done;
    if (m == IL_METHOD_ICL) {
        char **texts = il_calloc((size_t)t->nq + 1, sizeof *texts);
        if (!texts) goto done;
        int q = 0;
        for (; q < t->nq; q++)
            if (!(texts[q] = il_ilc_icl_prompt(t->k, (const char *const *)t->shot_in,
                                               (const char *const *)t->shot_out, t->q[q])))
                break;
        int trc = q == t->nq ? ilc_tokenize(s, t->nq, (const char *const *)texts, "icl prompt",
                                            &prompts)
                             : -1;
        for (int i = 0; i < t->nq; i++) free(texts[i]);
        free(texts);
        if (trc) goto done;
        in = &prompts;
    }
    for (int q = 0; q < t->nq; q++) r->input_truncated[q] = in->truncated[q];
    rc = ilc_generate(t, t->nq, in->ids, in->lens, ad, group, r);
done:
    ilc_ids_free(&prompts);
    free(ad);
    free(group);
    return rc;
}

/* lorahub: per run, N adapters drawn at random without replacement (seeded), one
 * optimisation; the runs in lockstep and their answers in one generation call. */
static int run_lorahub(il_ilc_task *t, il_ilc_result *r) {
    il_ilc *s = t->s;
    const int R = r->n_runs, N = s->top_n, m = s->m, nq = t->nq;
    int *perm = il_malloc(sizeof *perm * (size_t)m);
    il_ilc_comp **pc = il_calloc((size_t)R, sizeof *pc);
    il_lora **composed = il_calloc((size_t)R, sizeof *composed);
    const il_lora **ad = il_calloc((size_t)R * nq + 1, sizeof *ad);
    int32_t **ids = il_calloc((size_t)R * nq + 1, sizeof *ids);
    int *lens = il_calloc((size_t)R * nq + 1, sizeof *lens);
    int *group = il_calloc((size_t)R * nq + 1, sizeof *group);
    int rc = -1;
    if (!perm || !pc || !composed || !ad || !ids || !lens || !group) goto done;
    double t0 = il_now();
    for (int run = 0; run < R; run++) {
        il_ilc_comp *c = &r->comps[run];
        c->run = run;
        c->seed = il_ilc_derive_seed(s->set.seed, t->name, "lorahub", run);
        c->adapters = il_malloc(sizeof *c->adapters * (size_t)N);
        c->scores = il_malloc(sizeof *c->scores * (size_t)N);
        if (!c->adapters || !c->scores) goto done;
        il_rng g;
        il_rng_seed(&g, c->seed);
        for (int i = 0; i < m; i++) perm[i] = i;
        for (int i = 0; i < N; i++) { /* partial Fisher-Yates: the first N of a shuffle */
            int j = i + (int)il_rng_below(&g, (uint64_t)(m - i));
            int x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
            c->adapters[i] = perm[i];
            c->scores[i] = NAN;
        }
        c->n_adapters = N;
        pc[run] = c;
    }
    r->t_retrieve += il_now() - t0;
    if (optimise(t, R, pc, r)) goto done;
    for (int run = 0; run < R; run++)
        if (!(composed[run] = compose(t, &r->comps[run], r))) goto done;
    for (int run = 0; run < R; run++)
        for (int q = 0; q < nq; q++) {
            const size_t i = (size_t)run * nq + q;
            ids[i] = t->qids.ids[q];
            lens[i] = t->qids.lens[q];
            ad[i] = composed[run];
            group[i] = run;
            r->comp[i] = run;
            r->input_truncated[i] = t->qids.truncated[q];
        }
    for (int run = 0; run < R; run++) r->comps[run].n_questions = nq;
    rc = ilc_generate(t, R * nq, ids, lens, ad, group, r);
done:
    for (int run = 0; composed && run < R; run++) il_lora_free(composed[run]);
    free(composed);
    free(perm);
    free(pc);
    free((void *)ad);
    free(ids);
    free(lens);
    free(group);
    return rc;
}

/* batchcomp: task-level retrieval with the mean shot embedding, one optimisation. */
static int run_batchcomp(il_ilc_task *t, il_ilc_result *r) {
    il_ilc *s = t->s;
    if (s->set.progress) s->set.progress(s->set.user, "retrieve", 0, 0);
    const int dim = s->dim, nq = t->nq;
    float *mean = il_calloc((size_t)dim, sizeof *mean);
    double *acc = il_calloc((size_t)dim, sizeof *acc);
    il_buf text = {0};
    il_lora *composed = NULL;
    const il_lora **ad = il_calloc((size_t)nq + 1, sizeof *ad);
    int *group = il_calloc((size_t)nq + 1, sizeof *group);
    int rc = -1;
    if (!mean || !acc || !ad || !group) goto done;
    if (s->set.retrieval != IL_SIM_BM25 && ilc_embeddings(t, true, false, &r->t_embed)) goto done;
    double t0 = il_now();
    if (s->set.retrieval != IL_SIM_BM25) {
        for (int j = 0; j < t->k; j++)
            for (int d = 0; d < dim; d++) acc[d] += t->e_shot_text[(size_t)j * dim + d];
        for (int d = 0; d < dim; d++) mean[d] = (float)(acc[d] / t->k);
    }
    int brc = 0;
    for (int j = 0; j < t->k; j++)
        brc |= il_buf_printf(&text, "%s%s %s", j ? "\n" : "", t->shot_in[j], t->shot_out[j]);
    if (brc || !text.data) goto done;
    il_ilc_comp *c = &r->comps[0];
    c->seed = il_ilc_derive_seed(s->set.seed, t->name, "batchcomp", 0);
    if (ilc_retrieve(t, mean, text.data, c)) goto done;
    r->t_retrieve += il_now() - t0;
    if (optimise(t, 1, &c, r) || !(composed = compose(t, c, r))) goto done;
    for (int q = 0; q < nq; q++) {
        ad[q] = composed;
        r->comp[q] = 0;
        r->input_truncated[q] = t->qids.truncated[q];
    }
    c->n_questions = nq;
    rc = ilc_generate(t, nq, t->qids.ids, t->qids.lens, ad, group, r);
done:
    il_lora_free(composed);
    il_buf_free(&text);
    free(mean);
    free(acc);
    free((void *)ad);
    free(group);
    return rc;
}

static bool same_adapters(const il_ilc_comp *a, const il_ilc_comp *b) {
    return a->n_adapters == b->n_adapters &&
           !memcmp(a->adapters, b->adapters, sizeof *a->adapters * (size_t)a->n_adapters);
}

/* ilora: per-shot retrieval and optimisation, per-question routing. */
static int run_ilora(il_ilc_task *t, il_ilc_result *r) {
    il_ilc *s = t->s;
    if (s->set.progress) s->set.progress(s->set.user, "retrieve", 0, 0);
    const int k = t->k, nq = t->nq, dim = s->dim;
    int *uniq = il_malloc(sizeof *uniq * (size_t)k);
    il_ilc_comp **pc = il_calloc((size_t)k, sizeof *pc);
    il_lora **composed = il_calloc((size_t)k, sizeof *composed);
    const il_lora **ad = il_calloc((size_t)nq + 1, sizeof *ad);
    int *group = il_calloc((size_t)nq + 1, sizeof *group);
    char *text = NULL;
    int rc = -1;
    r->route = il_calloc((size_t)nq + 1, sizeof *r->route);
    r->route_sim = il_calloc((size_t)nq + 1, sizeof *r->route_sim);
    if (!uniq || !pc || !composed || !ad || !group || !r->route || !r->route_sim) goto done;
    if (ilc_embeddings(t, s->set.retrieval != IL_SIM_BM25, true, &r->t_embed)) goto done;
    /* step 2: S_j for every shot */
    double t0 = il_now();
    const uint64_t seed = il_ilc_derive_seed(s->set.seed, t->name, "ilora", 0);
    int n_uniq = 0;
    for (int j = 0; j < k; j++) {
        il_ilc_comp *c = &r->comps[j];
        c->shot = j;
        c->seed = seed;
        free(text);
        if (!(text = il_sprintf("%s %s", t->shot_in[j], t->shot_out[j]))) goto done;
        if (ilc_retrieve(t, t->e_shot_text ? t->e_shot_text + (size_t)j * dim : NULL, text, c))
            goto done;
        /* shots with the same ordered S_j pose the same problem: optimise it once */
        uniq[j] = j;
        for (int i = 0; i < j; i++)
            if (uniq[i] == i && same_adapters(&r->comps[i], c)) {
                uniq[j] = i;
                break;
            }
        if (uniq[j] == j) pc[n_uniq++] = c;
    }
    r->t_retrieve += il_now() - t0;
    /* step 3: the weights, all distinct problems in lockstep */
    if (optimise(t, n_uniq, pc, r)) goto done;
    for (int j = 0; j < k; j++)
        if (uniq[j] != j) {
            r->comps[j].shared_with = uniq[j];
            if (copy_opt(&r->comps[j].opt, &r->comps[uniq[j]].opt)) goto done;
        }
    /* step 4: routing, then one composition per used problem and one generation call */
    t0 = il_now();
    for (int q = 0; q < nq; q++) {
        const int j = il_ilc_route(t->e_q + (size_t)q * dim, t->e_shot_in, k, dim, &r->route_sim[q]);
        r->route[q] = j;
        r->comp[q] = j;
        r->comps[j].n_questions++;
        group[q] = uniq[j];
        r->input_truncated[q] = t->qids.truncated[q];
    }
    r->t_retrieve += il_now() - t0;
    for (int q = 0; q < nq; q++) {
        const int u = group[q];
        if (!composed[u] && !(composed[u] = compose(t, &r->comps[u], r))) goto done;
        ad[q] = composed[u];
    }
    rc = ilc_generate(t, nq, t->qids.ids, t->qids.lens, ad, group, r);
done:
    for (int j = 0; composed && j < k; j++) il_lora_free(composed[j]);
    free(composed);
    free(uniq);
    free(pc);
    free((void *)ad);
    free(group);
    free(text);
    return rc;
}

/* fft: a full copy of the base model trained on the k shots (the paper's settings: 40
 * epochs, lr 3e-5, batch 5), then the questions answered by it (src/method_fft.h). */
static int run_fft(il_ilc_task *t, il_ilc_result *r) {
    const il_ilc *s = t->s;
    il_fft_params p = il_fft_default_params();
    p.seed = il_ilc_derive_seed(s->set.seed, t->name, "fft", 0);
    p.max_new_tokens = s->set.max_new_tokens;
    p.max_input_tokens = s->set.max_input_tokens;
    p.max_batch = s->set.gen_batch;
    for (int q = 0; q < t->nq; q++) r->input_truncated[q] = t->qids.truncated[q];
    double t0 = il_now();
    int rc = il_method_fft(s->model, s->tok, t->k, (const char *const *)t->shot_in,
                           (const char *const *)t->shot_out, t->nq, (const char *const *)t->q, &p,
                           r->prediction);
    r->t_optimise = il_now() - t0; /* training and answering together */
    return rc;
}

int il_ilc_run(il_ilc_task *t, il_method m, il_ilc_result *r) {
    if (!r) {
        il_seterr("il_ilc_run: no result");
        return -1;
    }
    memset(r, 0, sizeof *r);
    if (!t || (unsigned)m >= IL_METHOD_COUNT) {
        il_seterr("il_ilc_run: %s", t ? "unknown method" : "no task");
        return -1;
    }
    const il_ilc *s = t->s;
    const int runs = m == IL_METHOD_LORAHUB ? s->set.lorahub_runs : 1;
    const int comps = m == IL_METHOD_ILORA ? t->k : m == IL_METHOD_LORAHUB ? runs
                    : m == IL_METHOD_BATCHCOMP ? 1 : 0;
    int rc = result_init(r, m, t, runs, comps);
    if (!rc) {
        switch (m) {
        case IL_METHOD_ZEROSHOT:
        case IL_METHOD_ICL: rc = run_base(t, m, r); break;
        case IL_METHOD_LORAHUB: rc = run_lorahub(t, r); break;
        case IL_METHOD_BATCHCOMP: rc = run_batchcomp(t, r); break;
        case IL_METHOD_ILORA: rc = run_ilora(t, r); break;
        case IL_METHOD_FFT: rc = run_fft(t, r); break;
        default: rc = -1; break;
        }
    }
    if (rc) {
        il_prefixerr("%s", il_method_name(m));
        il_ilc_result_free(r);
        return -1;
    }
    return 0;
}
