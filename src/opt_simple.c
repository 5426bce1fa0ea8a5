/* opt_simple.c - two baselines for the composition weights:
 *   "random"  uniform random search in the box; the first candidate is x0 (so the result is
 *             never worse than the start); batches of any size.
 *   "1+1-es"  (1+1)-evolution strategy: one Gaussian offspring of the best point so far,
 *             mirrored into the box like CMA-ES's samples, kept if not worse; the step size
 *             follows the 1/5th success rule. Sequential: 1 candidate per ask. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "opt_internal.h"
#include "util.h"

/* ---- random ---- */

typedef struct {
    il_opt_cfg c;
    il_rng rng;
    int asked;
} random_search;

static void *random_create(const il_opt_cfg *c) {
    random_search *s = il_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->c = *c;
    il_rng_seed(&s->rng, c->seed);
    return s;
}

static int random_ask(void *st, double *cands, int max_n) {
    random_search *s = st;
    int n = s->c.dim;
    double lo = s->c.lo, hi = s->c.hi;
    for (int k = 0; k < max_n; k++, s->asked++) {
        double *w = cands + (size_t)k * n;
        if (s->asked == 0) {
            memcpy(w, s->c.x0, (size_t)n * sizeof(double));
            continue;
        }
        for (int i = 0; i < n; i++) w[i] = fmin(hi, lo + (hi - lo) * il_rng_uniform(&s->rng));
    }
    return max_n;
}

static int random_tell(void *st, const double *values, int k) { return 0; }

const il_opt_method il_opt_random = {"random", random_create, random_ask, random_tell, free};

/* ---- (1+1)-ES ---- */

typedef struct {
    il_opt_cfg c;
    il_rng rng;
    double *parent, *child; /* [dim], unbounded (evaluated at their mirror image) */
    double fparent, sigma;
    int started;            /* x0 has been asked: later asks are offspring */
} es11;

static void es11_destroy(void *st) {
    es11 *s = st;
    if (!s) return;
    free(s->parent);
    free(s->child);
    free(s);
}

static void *es11_create(const il_opt_cfg *c) {
    es11 *s = il_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->c = *c;
    s->parent = il_malloc((size_t)c->dim * sizeof(double));
    s->child = il_malloc((size_t)c->dim * sizeof(double));
    if (!s->parent || !s->child) {
        es11_destroy(s);
        return NULL;
    }
    memcpy(s->parent, c->x0, (size_t)c->dim * sizeof(double));
    s->fparent = INFINITY;
    s->sigma = c->sigma0;
    il_rng_seed(&s->rng, c->seed);
    return s;
}

static int es11_ask(void *st, double *cands, int max_n) {
    es11 *s = st;
    int n = s->c.dim;
    if (!s->started) { /* the start point is evaluated first, as the parent */
        memcpy(cands, s->parent, (size_t)n * sizeof(double));
        return 1;
    }
    if (!(s->sigma > 1e-12 * (s->c.hi - s->c.lo))) return 0; /* converged */
    for (int i = 0; i < n; i++) {
        s->child[i] = s->parent[i] + s->sigma * il_rng_normal(&s->rng);
        cands[i] = il_opt_bounce(s->child[i], s->c.lo, s->c.hi);
    }
    return 1;
}

static int es11_tell(void *st, const double *values, int k) {
    es11 *s = st;
    if (!s->started) {
        s->fparent = values[0];
        s->started = 1;
        return 0;
    }
    /* 1/5th success rule: exp(1/3) up on success, exp(-1/12) down otherwise, so sigma is
     * stationary at a success rate of 1/5. Ties count as success (moves across plateaus). */
    if (values[0] <= s->fparent) {
        memcpy(s->parent, s->child, (size_t)s->c.dim * sizeof(double));
        s->fparent = values[0];
        s->sigma *= exp(1.0 / 3);
    } else {
        s->sigma *= exp(-1.0 / 12);
    }
    return 0;
}

const il_opt_method il_opt_oneplusone = {"1+1-es", es11_create, es11_ask, es11_tell,
                                         es11_destroy};
