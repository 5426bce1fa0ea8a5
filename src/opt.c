/* opt.c - the optimiser front end: parameter checks, the ask/tell protocol, the exact
 * budget, the best point, and il_opt_minimize. The methods live in opt_cobyla.c,
 * opt_cmaes.c and opt_simple.c behind the table in opt_internal.h. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "opt_internal.h"
#include "util.h"

/* Default first: "cobyla" is what LoraHub runs. */
static const il_opt_method *const methods[] = {&il_opt_cobyla, &il_opt_cmaes, &il_opt_oneplusone,
                                               &il_opt_random};
#define N_METHODS ((int)(sizeof methods / sizeof methods[0]))
/* Upper bound on dim: far above any adapter library, low enough that dim^2 matrices fit. */
#define MAX_DIM 100000

struct il_opt {
    const il_opt_method *m;
    void *st;
    il_opt_cfg cfg;
    double *x0;       /* owned copy of the start */
    int evals;
    int pending;      /* k of the ask awaiting its tell; 0 = none */
    double *pend;     /* [cap, dim] copy of those candidates, to keep the best point */
    int pend_cap;
    double *vals;     /* [cap] sanitised values handed to the method */
    double *best_w;   /* [dim] */
    double best_v;    /* +INFINITY until a finite value was told */
    int stopped;      /* the method said 0 (converged): later asks say 0 too */
};

const char *const *il_opt_names(void) {
    static const char *names[N_METHODS + 1];
    for (int i = 0; i < N_METHODS; i++) names[i] = methods[i]->name;
    names[N_METHODS] = NULL;
    return names;
}

static const il_opt_method *find_method(const char *name) {
    for (int i = 0; i < N_METHODS; i++)
        if (strcasecmp(name, methods[i]->name) == 0) return methods[i];
    return NULL;
}

/* The error for an unknown name lists the valid ones. */
static void unknown_method(const char *name) {
    il_buf b = {0};
    for (int i = 0; i < N_METHODS; i++) il_buf_printf(&b, "%s%s", i ? ", " : "", methods[i]->name);
    il_seterr("optimizer: name: unknown method \"%s\" (valid: %s)", name, b.data ? b.data : "");
    il_buf_free(&b);
}

/* Checks p and fills cfg (x0 still points at p's array or NULL). */
static int check_params(const il_opt_params *p, il_opt_cfg *cfg, const il_opt_method **m) {
    if (!p) { il_seterr("optimizer: params: NULL"); return -1; }
    *m = find_method(p->name ? p->name : "cobyla");
    if (!*m) { unknown_method(p->name); return -1; }
    if (p->dim < 1 || p->dim > MAX_DIM) {
        il_seterr("optimizer: dim: %d is out of range [1, %d]", p->dim, MAX_DIM);
        return -1;
    }
    if (p->budget < 1) { il_seterr("optimizer: budget: %d (must be >= 1)", p->budget); return -1; }
    if (!isfinite(p->lo) || !isfinite(p->hi) || !(p->lo < p->hi) || !isfinite(p->hi - p->lo)) {
        il_seterr("optimizer: lo/hi: the box [%g, %g] is empty or not finite", p->lo, p->hi);
        return -1;
    }
    if (!isfinite(p->sigma0) || p->sigma0 < 0) {
        il_seterr("optimizer: sigma0: %g (must be > 0, or 0 for the default)", p->sigma0);
        return -1;
    }
    if (!isfinite(p->rhobeg) || p->rhobeg < 0) {
        il_seterr("optimizer: rhobeg: %g (must be > 0, or 0 for the default)", p->rhobeg);
        return -1;
    }
    for (int i = 0; i < p->dim; i++) {
        double v = p->x0 ? p->x0[i] : 0.0;
        if (!(v >= p->lo && v <= p->hi)) { /* also catches NaN */
            il_seterr("optimizer: x0[%d]: %g is outside the box [%g, %g]%s", i, v, p->lo, p->hi,
                      p->x0 ? "" : " (x0 = NULL means zeros)");
            return -1;
        }
    }
    double step = (p->hi - p->lo) / 6; /* nevergrad's sigma for a bounded array */
    *cfg = (il_opt_cfg){.dim = p->dim, .budget = p->budget, .lo = p->lo, .hi = p->hi,
                        .seed = p->seed, .sigma0 = p->sigma0 > 0 ? p->sigma0 : step,
                        .rhobeg = p->rhobeg > 0 ? p->rhobeg : step};
    return 0;
}

il_opt *il_opt_new(const il_opt_params *p) {
    il_opt_cfg cfg;
    const il_opt_method *m;
    if (check_params(p, &cfg, &m) != 0) return NULL;
    il_opt *o = il_calloc(1, sizeof *o);
    if (!o) return NULL;
    o->m = m;
    o->cfg = cfg;
    o->best_v = INFINITY;
    o->x0 = il_calloc((size_t)cfg.dim, sizeof(double));
    o->best_w = il_calloc((size_t)cfg.dim, sizeof(double));
    if (!o->x0 || !o->best_w) goto fail;
    if (p->x0) memcpy(o->x0, p->x0, (size_t)cfg.dim * sizeof(double));
    memcpy(o->best_w, o->x0, (size_t)cfg.dim * sizeof(double));
    o->cfg.x0 = o->x0;
    o->st = m->create(&o->cfg);
    if (!o->st) goto fail;
    return o;
fail:
    il_opt_free(o);
    return NULL;
}

void il_opt_free(il_opt *o) {
    if (!o) return;
    if (o->st) o->m->destroy(o->st);
    free(o->x0);
    free(o->best_w);
    free(o->pend);
    free(o->vals);
    free(o);
}

/* Room for n pending candidates and their values. */
static int reserve_pending(il_opt *o, int n) {
    if (n <= o->pend_cap) return 0;
    size_t bytes;
    if (il_mul_overflows((size_t)n, (size_t)o->cfg.dim * sizeof(double), &bytes)) {
        il_seterr("optimizer: ask: max_n %d is too large", n);
        return -1;
    }
    double *pend = il_realloc(o->pend, bytes);
    if (!pend) return -1;
    o->pend = pend;
    double *vals = il_realloc(o->vals, (size_t)n * sizeof(double));
    if (!vals) return -1;
    o->vals = vals;
    o->pend_cap = n;
    return 0;
}

int il_opt_ask(il_opt *o, double *cands, int max_n) {
    if (!o || !cands) { il_seterr("optimizer: ask: NULL argument"); return -1; }
    if (o->pending) {
        il_seterr("optimizer: ask: the %d candidates of the previous ask were not told", o->pending);
        return -1;
    }
    if (max_n < 1) { il_seterr("optimizer: ask: max_n %d (must be >= 1)", max_n); return -1; }
    int left = o->cfg.budget - o->evals;
    if (left <= 0 || o->stopped) return 0;
    int n = max_n < left ? max_n : left;
    if (reserve_pending(o, n) != 0) return -1;
    int k = o->m->ask(o->st, cands, n);
    if (k < 0) return -1;
    if (k == 0) { o->stopped = 1; return 0; }
    /* Methods map into the box themselves; this guards the promise to the caller. */
    size_t nv = (size_t)k * (size_t)o->cfg.dim;
    for (size_t i = 0; i < nv; i++) {
        if (!(cands[i] >= o->cfg.lo && cands[i] <= o->cfg.hi)) {
            il_seterr("optimizer: %s: internal error: candidate outside the box", o->m->name);
            return -1;
        }
    }
    memcpy(o->pend, cands, nv * sizeof(double));
    o->pending = k;
    return k;
}

int il_opt_tell(il_opt *o, const double *values) {
    if (!o || !values) { il_seterr("optimizer: tell: NULL argument"); return -1; }
    if (!o->pending) { il_seterr("optimizer: tell: no candidates asked"); return -1; }
    int k = o->pending, d = o->cfg.dim;
    for (int i = 0; i < k; i++) {
        double v = isfinite(values[i]) ? values[i] : INFINITY; /* NaN, -inf: worst */
        o->vals[i] = v;
        if (v < o->best_v) { /* strict: the first of equal values stays the best */
            o->best_v = v;
            memcpy(o->best_w, o->pend + (size_t)i * d, (size_t)d * sizeof(double));
        }
    }
    o->pending = 0;
    o->evals += k;
    return o->m->tell(o->st, o->vals, k);
}

int il_opt_best(const il_opt *o, double *w, double *value) {
    if (!o) { il_seterr("optimizer: best: NULL optimizer"); return -1; }
    if (!isfinite(o->best_v)) {
        il_seterr("optimizer: best: no finite value was told yet");
        return -1;
    }
    if (w) memcpy(w, o->best_w, (size_t)o->cfg.dim * sizeof(double));
    if (value) *value = o->best_v;
    return 0;
}

int il_opt_evaluations(const il_opt *o) { return o ? o->evals : 0; }

const char *il_opt_name(const il_opt *o) { return o ? o->m->name : NULL; }

/* Batch size for il_opt_minimize: every method's natural batch (a CMA-ES generation is at
 * most 4 + 3 ln(1e5) < 40) fits, without allocating budget x dim for huge budgets. */
static int minimize_batch(const il_opt_params *p) {
    int n = p->budget < 256 ? p->budget : 256;
    return n < 1 ? 1 : n;
}

int il_opt_minimize(const il_opt_params *p, il_opt_batch_fn f, void *user, double *best_w,
                    double *best_value, double *trace) {
    if (!f) { il_seterr("optimizer: minimize: NULL objective"); return -1; }
    il_opt *o = il_opt_new(p);
    if (!o) return -1;
    int max_n = minimize_batch(p), rc = -1, k;
    double *cands = il_malloc((size_t)max_n * (size_t)p->dim * sizeof(double));
    double *vals = il_malloc((size_t)max_n * sizeof(double));
    if (!cands || !vals) goto done;
    if (trace)
        for (int i = 0; i < p->budget; i++) trace[i] = NAN;
    while ((k = il_opt_ask(o, cands, max_n)) > 0) {
        int at = il_opt_evaluations(o);
        if (f(user, cands, k, p->dim, vals) != 0) {
            il_prefixerr("optimizer: objective (evaluation %d)", at + 1);
            goto done;
        }
        if (trace) memcpy(trace + at, vals, (size_t)k * sizeof(double));
        if (il_opt_tell(o, vals) != 0) goto done;
    }
    if (k < 0) goto done;
    if (il_opt_best(o, best_w, best_value) != 0) goto done;
    rc = 0;
done:
    free(cands);
    free(vals);
    il_opt_free(o);
    return rc;
}
