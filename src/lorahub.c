/* lorahub.c - LoraHub learning: lockstep ask / compose / batched score / tell (lorahub.h). */
#include "lorahub.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opt.h"

/* ===== examples ===== */

void il_lorahub_tokenized_free(il_lorahub_tokenized *t) {
    if (!t) return;
    for (int i = 0; i < t->ex.n; i++) {
        if (t->ids_) free(t->ids_[i]);
        if (t->labels_) free(t->labels_[i]);
    }
    free(t->ids_);
    free(t->labels_);
    free(t->lens_);
    free(t->label_lens_);
    memset(t, 0, sizeof *t);
}

int il_lorahub_tokenize(const il_tokenizer *tok, int n, const char *const *inputs,
                        const char *const *outputs, int max_input_tokens,
                        il_lorahub_tokenized *out) {
    memset(out, 0, sizeof *out);
    if (!tok || n < 1 || !inputs || !outputs) {
        il_seterr("LoraHub examples: %s", n < 1 ? "no examples" : "invalid arguments");
        return -1;
    }
    out->ids_ = il_calloc((size_t)n, sizeof *out->ids_);
    out->labels_ = il_calloc((size_t)n, sizeof *out->labels_);
    out->lens_ = il_calloc((size_t)n, sizeof *out->lens_);
    out->label_lens_ = il_calloc((size_t)n, sizeof *out->label_lens_);
    if (!out->ids_ || !out->labels_ || !out->lens_ || !out->label_lens_) goto fail;
    out->ex.n = n;
    for (int i = 0; i < n; i++) {
        if (!inputs[i] || !outputs[i]) {
            il_seterr("LoraHub example %d: missing %s", i + 1, inputs[i] ? "output" : "input");
            goto fail;
        }
        if (il_tokenizer_encode(tok, inputs[i], strlen(inputs[i]), &out->ids_[i], &out->lens_[i])) {
            il_prefixerr("LoraHub example %d: input", i + 1);
            goto fail;
        }
        if (il_tokenizer_encode(tok, outputs[i], strlen(outputs[i]), &out->labels_[i],
                                &out->label_lens_[i])) {
            il_prefixerr("LoraHub example %d: output", i + 1);
            goto fail;
        }
        if (max_input_tokens > 0 && out->lens_[i] > max_input_tokens) {
            int32_t *ids = out->ids_[i];
            ids[max_input_tokens - 1] = ids[out->lens_[i] - 1]; /* keep the eos last */
            out->lens_[i] = max_input_tokens;
            out->n_truncated++;
        }
    }
    out->ex.ids = (const int32_t *const *)out->ids_;
    out->ex.lens = out->lens_;
    out->ex.labels = (const int32_t *const *)out->labels_;
    out->ex.label_lens = out->label_lens_;
    return 0;
fail:
    il_lorahub_tokenized_free(out);
    return -1;
}

/* ===== parameters ===== */

il_lorahub_params il_lorahub_default_params(void) {
    il_lorahub_params p = {0};
    p.optimizer = NULL;
    p.budget = IL_LORAHUB_BUDGET;
    p.seed = 0;
    p.lo = -IL_LORAHUB_BOUND;
    p.hi = IL_LORAHUB_BOUND;
    p.x0 = NULL;
    p.l1 = IL_LORAHUB_L1;
    p.batch_size = IL_LORAHUB_BATCH_SIZE;
    p.rule = IL_LORA_LINEAR;
    p.max_batch = 0;
    return p;
}

void il_lorahub_result_free(il_lorahub_result *r) {
    if (!r) return;
    free(r->objective);
    free(r->loss);
    free(r->evals_w);
    free(r->best_w);
    memset(r, 0, sizeof *r);
}

static int check_examples(const il_lorahub_examples *ex, const char *where) {
    if (!ex || ex->n < 1 || !ex->ids || !ex->lens || !ex->labels || !ex->label_lens) {
        il_seterr("%s: no examples", where);
        return -1;
    }
    for (int i = 0; i < ex->n; i++) {
        if (!ex->ids[i] || ex->lens[i] < 1 || !ex->labels[i] || ex->label_lens[i] < 1) {
            il_seterr("%s: example %d: empty input or output ids", where, i + 1);
            return -1;
        }
    }
    return 0;
}

static int check_problem(const il_lorahub_problem *pr, int index, char *where, size_t wsize) {
    snprintf(where, wsize, "LoraHub problem %d", index);
    if (!pr) {
        il_seterr("%s: NULL", where);
        return -1;
    }
    if (pr->n_adapters < 1 || !pr->adapters) {
        il_seterr("%s: n_adapters: %d (needs at least one adapter)", where, pr->n_adapters);
        return -1;
    }
    for (int i = 0; i < pr->n_adapters; i++)
        if (!pr->adapters[i]) {
            il_seterr("%s: adapter %d is NULL", where, i);
            return -1;
        }
    if (check_examples(pr->examples, where)) return -1;
    const il_lorahub_params *p = &pr->params;
    if (!(p->l1 >= 0) || !isfinite(p->l1)) {
        il_seterr("%s: l1: %g (must be finite and >= 0)", where, p->l1);
        return -1;
    }
    if (p->batch_size < 1) {
        il_seterr("%s: batch_size: %d (must be >= 1)", where, p->batch_size);
        return -1;
    }
    if (p->max_batch < 0) {
        il_seterr("%s: max_batch: %d (must be >= 0)", where, p->max_batch);
        return -1;
    }
    if (p->rule != IL_LORA_LINEAR && p->rule != IL_LORA_DELTA) {
        il_seterr("%s: rule: unknown composition rule %d", where, (int)p->rule);
        return -1;
    }
    return 0;
}

/* mean |w| * l1, as LoraHub's default_l1_regularization: l1 * (sum |w_i| / N). */
static double l1_term(const double *w, int dim, double l1) {
    double s = 0;
    for (int i = 0; i < dim; i++) s += fabs(w[i]);
    return l1 * (s / dim);
}

/* ===== scoring: many (adapter, examples) entries in batched forward passes ===== */

typedef struct {
    const il_lora *adapter;           /* the candidate's composition */
    const il_lorahub_examples *ex;
    int batch_size;
    double loss;                      /* out */
} score_entry;

/* Reusable item arrays. */
typedef struct {
    const int32_t **ids, **labels;
    int *lens, *label_lens;
    double *sums;
    int *counts;
    size_t cap;
} score_buf;

static void score_buf_free(score_buf *b) {
    free(b->ids);
    free(b->labels);
    free(b->lens);
    free(b->label_lens);
    free(b->sums);
    free(b->counts);
    memset(b, 0, sizeof *b);
}

static int score_buf_reserve(score_buf *b, size_t n) {
    if (n <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < n) cap *= 2;
#define GROW(f)                                                                    \
    do {                                                                           \
        void *p_ = il_realloc((void *)b->f, cap * sizeof *b->f);                   \
        if (!p_) return -1;                                                        \
        b->f = p_;                                                                 \
    } while (0)
    GROW(ids);
    GROW(labels);
    GROW(lens);
    GROW(label_lens);
    GROW(sums);
    GROW(counts);
#undef GROW
    b->cap = cap;
    return 0;
}

/* Scores entries e[0..n) in passes of at most max_items items (whole entries, at least one
 * per pass; 0 = all in one pass). pass_of[i] (optional) receives the index of the pass that
 * scored entry i and t_pass[pass] its duration. Returns the number of passes, or -1. */
static int score_entries(il_lora_ctx *ctx, score_entry *e, int n, int max_items, score_buf *b,
                         int *pass_of, double *t_pass, long *items_scored) {
    il_t5 *m = il_lora_ctx_model(ctx);
    int passes = 0, rc = -1;
    for (int e0 = 0; e0 < n;) {
        size_t items = 0;
        int e1 = e0;
        while (e1 < n && (e1 == e0 || max_items <= 0 ||
                          items + (size_t)e[e1].ex->n <= (size_t)max_items))
            items += (size_t)e[e1++].ex->n;
        if (items > (size_t)0x7fffffff) {
            il_seterr("LoraHub: too many items in one forward pass (%zu)", items);
            goto done;
        }
        if (score_buf_reserve(b, items)) goto done;
        il_lora_ctx_clear_items(ctx);
        size_t k = 0;
        for (int i = e0; i < e1; i++) {
            const il_lorahub_examples *ex = e[i].ex;
            for (int j = 0; j < ex->n; j++, k++) {
                b->ids[k] = ex->ids[j];
                b->lens[k] = ex->lens[j];
                b->labels[k] = ex->labels[j];
                b->label_lens[k] = ex->label_lens[j];
                if (il_lora_ctx_set_item(ctx, (int)k, e[i].adapter)) goto done;
            }
        }
        double t = il_now();
        if (il_t5_loss(m, (int)items, b->ids, b->lens, b->labels, b->label_lens, NULL, b->sums,
                       b->counts, NULL, NULL))
            goto done;
        t = il_now() - t;
        size_t off = 0;
        for (int i = e0; i < e1; i++) {
            if (il_lora_lorahub_reduce(e[i].ex->n, b->sums + off, b->counts + off,
                                       e[i].batch_size, &e[i].loss))
                goto done;
            off += (size_t)e[i].ex->n;
            if (pass_of) pass_of[i] = passes;
        }
        if (t_pass) t_pass[passes] = t;
        if (items_scored) *items_scored += (long)items;
        passes++;
        e0 = e1;
    }
    rc = passes;
done:
    il_lora_ctx_clear_items(ctx);
    return rc;
}

/* ===== the lockstep loop ===== */

typedef struct {
    const il_lorahub_problem *pr;
    il_opt *opt;
    int cap;            /* candidates per ask */
    double *cands;      /* [cap, dim] */
    float *wf;          /* [dim] */
    il_lora **pool;     /* [cap] compositions, created on first use */
    int n_pool;
    int pending;        /* candidates of the current round */
    int first_entry;    /* its first entry in the round's entry list */
    bool done;
} run_state;

static void state_free(run_state *s) {
    il_opt_free(s->opt);
    free(s->cands);
    free(s->wf);
    if (s->pool)
        for (int i = 0; i < s->n_pool; i++) il_lora_free(s->pool[i]);
    free(s->pool);
    memset(s, 0, sizeof *s);
}

/* The natural batch of a method: a CMA-ES generation (4 + floor(3 ln dim), Hansen's
 * lambda); the strictly sequential methods hand out 1 whatever max_n is. */
static int natural_batch(int dim) {
    int lambda = 4 + (int)floor(3.0 * log((double)dim));
    return lambda < 1 ? 1 : lambda;
}

static int state_init(run_state *s, const il_lorahub_problem *pr, int index, il_lorahub_result *r) {
    char where[64];
    memset(s, 0, sizeof *s);
    memset(r, 0, sizeof *r);
    if (check_problem(pr, index, where, sizeof where)) return -1;
    const il_lorahub_params *p = &pr->params;
    const int dim = pr->n_adapters;
    s->pr = pr;
    il_opt_params op = {.name = p->optimizer, .dim = dim, .lo = p->lo, .hi = p->hi, .x0 = p->x0,
                        .budget = p->budget, .seed = p->seed};
    if (!(s->opt = il_opt_new(&op))) {
        il_prefixerr("%s", where);
        return -1;
    }
    s->cap = p->max_batch > 0 ? p->max_batch : natural_batch(dim);
    if (s->cap > p->budget) s->cap = p->budget;
    s->cands = il_malloc(sizeof *s->cands * (size_t)s->cap * (size_t)dim);
    s->wf = il_malloc(sizeof *s->wf * (size_t)dim);
    s->pool = il_calloc((size_t)s->cap, sizeof *s->pool);
    r->dim = dim;
    r->optimizer = il_opt_name(s->opt);
    r->objective = il_malloc(sizeof *r->objective * (size_t)p->budget);
    r->loss = il_malloc(sizeof *r->loss * (size_t)p->budget);
    r->evals_w = il_malloc(sizeof *r->evals_w * (size_t)p->budget * (size_t)dim);
    r->best_w = il_calloc((size_t)dim, sizeof *r->best_w);
    if (!s->cands || !s->wf || !s->pool || !r->objective || !r->loss || !r->evals_w || !r->best_w)
        return -1;
    /* the first composition now: an unfit adapter set fails before any evaluation */
    if (!(s->pool[0] = il_lora_compose_new(dim, pr->adapters, p->rule))) {
        il_prefixerr("%s", where);
        return -1;
    }
    s->n_pool = 1;
    return 0;
}

/* Compose candidate c of s into its pool slot. */
static int compose_candidate(run_state *s, int c, int index, il_lorahub_result *r) {
    const int dim = s->pr->n_adapters;
    while (s->n_pool <= c) {
        if (!(s->pool[s->n_pool] = il_lora_compose_new(dim, s->pr->adapters, s->pr->params.rule)))
            return -1;
        s->n_pool++;
    }
    const double *w = s->cands + (size_t)c * dim;
    for (int i = 0; i < dim; i++) s->wf[i] = (float)w[i];
    double t = il_now();
    if (il_lora_compose_into(s->pool[c], dim, s->pr->adapters, s->wf)) {
        il_prefixerr("LoraHub problem %d", index);
        return -1;
    }
    r->t_compose += il_now() - t;
    return 0;
}

int il_lorahub_run_many(il_lora_ctx *ctx, int n_problems, const il_lorahub_problem *problems,
                        il_lorahub_run_opts *opts, il_lorahub_result *results) {
    if (!ctx || n_problems < 1 || !problems || !results) {
        il_seterr("LoraHub: invalid arguments (context, problems or results missing)");
        return -1;
    }
    il_lorahub_run_opts dflt = {0};
    if (!opts) opts = &dflt;
    if (opts->max_items < 0) {
        il_seterr("LoraHub: max_items: %d (must be >= 0)", opts->max_items);
        return -1;
    }
    for (int p = 0; p < n_problems; p++) memset(&results[p], 0, sizeof results[p]);
    opts->forward_passes = 0;
    opts->items_scored = 0;
    run_state *st = il_calloc((size_t)n_problems, sizeof *st);
    score_buf buf = {0};
    score_entry *ent = NULL;
    int *pass_of = NULL, ent_cap = 0, rc = -1;
    double *t_pass = NULL;
    double *vals = NULL;
    size_t vals_cap = 0;
    if (!st) return -1;
    for (int p = 0; p < n_problems; p++)
        if (state_init(&st[p], &problems[p], p, &results[p])) goto done;

    for (;;) {
        /* ask every live optimiser and compose its candidates */
        int n_ent = 0;
        for (int p = 0; p < n_problems; p++) {
            run_state *s = &st[p];
            s->pending = 0;
            if (s->done) continue;
            int k = il_opt_ask(s->opt, s->cands, s->cap);
            if (k < 0) {
                il_prefixerr("LoraHub problem %d", p);
                goto done;
            }
            if (k == 0) {
                s->done = true;
                continue;
            }
            if (n_ent + k > ent_cap) {
                int cap = ent_cap ? ent_cap : 16;
                while (cap < n_ent + k) cap *= 2;
                score_entry *e2 = il_realloc(ent, sizeof *e2 * (size_t)cap);
                if (!e2) goto done;
                ent = e2;
                int *p2 = il_realloc(pass_of, sizeof *p2 * (size_t)cap);
                if (!p2) goto done;
                pass_of = p2;
                double *t2 = il_realloc(t_pass, sizeof *t2 * (size_t)cap);
                if (!t2) goto done;
                t_pass = t2;
                ent_cap = cap;
            }
            s->pending = k;
            s->first_entry = n_ent;
            for (int c = 0; c < k; c++) {
                if (compose_candidate(s, c, p, &results[p])) goto done;
                ent[n_ent++] = (score_entry){s->pool[c], s->pr->examples, s->pr->params.batch_size, 0};
            }
        }
        if (n_ent == 0) break;
        /* every candidate of every problem: one batched forward pass (or max_items chunks) */
        int passes = score_entries(ctx, ent, n_ent, opts->max_items, &buf, pass_of, t_pass,
                                   &opts->items_scored);
        if (passes < 0) goto done;
        opts->forward_passes += passes;
        /* tell */
        for (int p = 0; p < n_problems; p++) {
            run_state *s = &st[p];
            if (!s->pending) continue;
            il_lorahub_result *r = &results[p];
            const int dim = s->pr->n_adapters, k = s->pending;
            if ((size_t)k > vals_cap) {
                double *v2 = il_realloc(vals, sizeof *v2 * (size_t)k);
                if (!v2) goto done;
                vals = v2;
                vals_cap = (size_t)k;
            }
            int last_pass = -1;
            for (int c = 0; c < k; c++) {
                const score_entry *e = &ent[s->first_entry + c];
                const double *w = s->cands + (size_t)c * dim;
                const int at = r->n_evals++;
                vals[c] = e->loss + l1_term(w, dim, s->pr->params.l1);
                r->objective[at] = vals[c];
                r->loss[at] = e->loss;
                memcpy(r->evals_w + (size_t)at * dim, w, sizeof *w * (size_t)dim);
                int ps = pass_of[s->first_entry + c];
                if (ps != last_pass) r->t_score += t_pass[ps], last_pass = ps;
                if (opts->on_eval) opts->on_eval(opts->user, p, at, w, dim, e->loss, vals[c]);
            }
            if (il_opt_tell(s->opt, vals)) {
                il_prefixerr("LoraHub problem %d", p);
                goto done;
            }
        }
    }
    /* the recommendations */
    for (int p = 0; p < n_problems; p++) {
        il_lorahub_result *r = &results[p];
        if (il_opt_best(st[p].opt, r->best_w, &r->best_objective)) {
            il_seterr("LoraHub problem %d: no evaluation gave a finite objective", p);
            goto done;
        }
        r->best_index = 0;
        while (r->best_index < r->n_evals && !(r->objective[r->best_index] == r->best_objective))
            r->best_index++;
        if (r->best_index == r->n_evals) {
            il_seterr("LoraHub problem %d: internal error: the best value is not in the trace", p);
            goto done;
        }
        r->best_loss = r->loss[r->best_index];
    }
    rc = 0;
done:
    for (int p = 0; p < n_problems; p++) {
        state_free(&st[p]);
        if (rc) il_lorahub_result_free(&results[p]);
    }
    free(st);
    free(ent);
    free(pass_of);
    free(t_pass);
    free(vals);
    score_buf_free(&buf);
    return rc;
}

int il_lorahub_run(il_lora_ctx *ctx, const il_lorahub_problem *problem, il_lorahub_run_opts *opts,
                   il_lorahub_result *result) {
    return il_lorahub_run_many(ctx, 1, problem, opts, result);
}

int il_lorahub_objective(il_lora_ctx *ctx, const il_lorahub_problem *pr, const double *w,
                         double *loss, double *objective) {
    char where[64];
    if (!ctx || !w) {
        il_seterr("LoraHub objective: invalid arguments");
        return -1;
    }
    if (check_problem(pr, 0, where, sizeof where)) return -1;
    const int dim = pr->n_adapters;
    float *wf = il_malloc(sizeof *wf * (size_t)dim);
    if (!wf) return -1;
    for (int i = 0; i < dim; i++) wf[i] = (float)w[i];
    il_lora *a = il_lora_compose(dim, pr->adapters, wf, pr->params.rule);
    free(wf);
    if (!a) return -1;
    score_entry e = {a, pr->examples, pr->params.batch_size, 0};
    score_buf b = {0};
    int rc = score_entries(ctx, &e, 1, 0, &b, NULL, NULL, NULL) < 0 ? -1 : 0;
    score_buf_free(&b);
    il_lora_free(a);
    if (rc) return -1;
    if (loss) *loss = e.loss;
    if (objective) *objective = e.loss + l1_term(w, dim, pr->params.l1);
    return 0;
}
