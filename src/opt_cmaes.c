/* opt_cmaes.c - (mu/mu_w, lambda)-CMA-ES as in N. Hansen, "The CMA Evolution Strategy:
 * A Tutorial" (2016), with its default parameters (the black-box tuning the paper cites).
 *
 * Box constraints by mirroring: the distribution lives in an unbounded space and a sample x
 * is evaluated at bounce(x), its mirror image in the box. The update uses x itself with the
 * value of bounce(x), i.e. CMA-ES minimises the continuous, periodically mirrored extension
 * of f; nothing is clipped, so the sampled steps stay Gaussian. Where f's optimum lies
 * outside the box, the mirrored objective is best on the boundary and the search converges
 * there. Candidates (and so the recommendation, the best one told) are always in the box.
 *
 * One generation of lambda samples is drawn at a time and handed out over one or more asks
 * (as max_n allows); the update runs when the whole generation has been told. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "opt_internal.h"
#include "util.h"

typedef struct {
    il_opt_cfg c;
    int n, lambda, mu;
    double *w;                      /* [mu] recombination weights, sum 1 */
    double mueff, cs, ds, cc, c1, cmu, chin;
    double sigma;
    double *m, *pc, *ps;            /* [n] */
    double *C, *B, *D;              /* [n*n] covariance, its eigenvectors (columns); [n] sqrt eig */
    double *y, *x, *f;              /* [lambda*n] steps B*D*z, samples m + sigma*y; [lambda] */
    int *order;                     /* [lambda] */
    double *tmp, *tmp2, *work;      /* [n], [n], [n*n] scratch */
    int handed, told, gen;          /* within the current generation; generations done */
    il_rng rng;
} cmaes;

static void cmaes_destroy(void *st) {
    cmaes *s = st;
    if (!s) return;
    free(s->w); free(s->m); free(s->pc); free(s->ps);
    free(s->C); free(s->B); free(s->D);
    free(s->y); free(s->x); free(s->f); free(s->order);
    free(s->tmp); free(s->tmp2); free(s->work);
    free(s);
}

/* Hansen's defaults (tutorial, table 1), positive weights only. */
static int set_strategy(cmaes *s) {
    int n = s->n;
    s->lambda = 4 + (int)floor(3 * log((double)n));
    s->mu = s->lambda / 2;
    s->w = il_calloc((size_t)s->mu, sizeof(double));
    if (!s->w) return -1;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < s->mu; i++) {
        s->w[i] = log((s->lambda + 1) / 2.0) - log(i + 1.0);
        sum += s->w[i];
    }
    for (int i = 0; i < s->mu; i++) {
        s->w[i] /= sum;
        sum2 += s->w[i] * s->w[i];
    }
    double me = s->mueff = 1 / sum2;
    s->cs = (me + 2) / (n + me + 5);
    s->ds = 1 + 2 * fmax(0, sqrt((me - 1) / (n + 1)) - 1) + s->cs;
    s->cc = (4 + me / n) / (n + 4 + 2 * me / n);
    s->c1 = 2 / ((n + 1.3) * (n + 1.3) + me);
    s->cmu = fmin(1 - s->c1, 2 * (me - 2 + 1 / me) / ((n + 2.0) * (n + 2.0) + me));
    s->chin = sqrt((double)n) * (1 - 1 / (4.0 * n) + 1 / (21.0 * n * n));
    return 0;
}

static void *cmaes_create(const il_opt_cfg *c) {
    cmaes *s = il_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->c = *c;
    int n = s->n = c->dim;
    if (set_strategy(s) != 0) goto fail;
    size_t nn, ln;
    if (il_mul_overflows((size_t)n, (size_t)n, &nn) || il_mul_overflows(nn, sizeof(double), &nn) ||
        il_mul_overflows((size_t)s->lambda * (size_t)n, sizeof(double), &ln)) {
        il_seterr("optimizer: cmaes: dim %d is too large", n);
        goto fail;
    }
    s->m = il_malloc((size_t)n * sizeof(double));
    s->pc = il_calloc((size_t)n, sizeof(double));
    s->ps = il_calloc((size_t)n, sizeof(double));
    s->D = il_malloc((size_t)n * sizeof(double));
    s->tmp = il_malloc((size_t)n * sizeof(double));
    s->tmp2 = il_malloc((size_t)n * sizeof(double));
    s->C = il_calloc(1, nn);
    s->B = il_calloc(1, nn);
    s->work = il_malloc(nn);
    s->y = il_malloc(ln);
    s->x = il_malloc(ln);
    s->f = il_malloc((size_t)s->lambda * sizeof(double));
    s->order = il_malloc((size_t)s->lambda * sizeof(int));
    if (!s->m || !s->pc || !s->ps || !s->D || !s->tmp || !s->tmp2 || !s->C || !s->B ||
        !s->work || !s->y || !s->x || !s->f || !s->order)
        goto fail;
    memcpy(s->m, c->x0, (size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) {
        s->C[(size_t)i * n + i] = s->B[(size_t)i * n + i] = 1;
        s->D[i] = 1;
    }
    s->sigma = c->sigma0;
    il_rng_seed(&s->rng, c->seed);
    return s;
fail:
    cmaes_destroy(s);
    return NULL;
}

/* Eigen-decomposition of the symmetric a [n*n] (destroyed) by cyclic Jacobi rotations:
 * v gets the eigenvectors as columns, ev the eigenvalues. Small, dependency-free and
 * accurate; O(n^3) per sweep is nothing next to a model forward pass. */
static void jacobi_eigen(int n, double *a, double *v, double *ev) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) v[(size_t)i * n + j] = i == j;
    for (int sweep = 0; sweep < 64; sweep++) {
        double off = 0, diag = 0;
        for (int p = 0; p < n; p++) {
            diag += a[(size_t)p * n + p] * a[(size_t)p * n + p];
            for (int q = p + 1; q < n; q++) off += a[(size_t)p * n + q] * a[(size_t)p * n + q];
        }
        if (off <= 1e-30 * diag || off == 0) break;
        for (int p = 0; p < n; p++) {
            for (int q = p + 1; q < n; q++) {
                double apq = a[(size_t)p * n + q];
                if (apq == 0) continue;
                double theta = (a[(size_t)q * n + q] - a[(size_t)p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double cs = 1 / sqrt(t * t + 1), sn = t * cs;
                for (int k = 0; k < n; k++) { /* columns p, q */
                    double kp = a[(size_t)k * n + p], kq = a[(size_t)k * n + q];
                    a[(size_t)k * n + p] = cs * kp - sn * kq;
                    a[(size_t)k * n + q] = sn * kp + cs * kq;
                }
                for (int k = 0; k < n; k++) { /* rows p, q */
                    double pk = a[(size_t)p * n + k], qk = a[(size_t)q * n + k];
                    a[(size_t)p * n + k] = cs * pk - sn * qk;
                    a[(size_t)q * n + k] = sn * pk + cs * qk;
                }
                for (int k = 0; k < n; k++) {
                    double kp = v[(size_t)k * n + p], kq = v[(size_t)k * n + q];
                    v[(size_t)k * n + p] = cs * kp - sn * kq;
                    v[(size_t)k * n + q] = sn * kp + cs * kq;
                }
            }
        }
    }
    for (int i = 0; i < n; i++) ev[i] = a[(size_t)i * n + i];
}

/* Draws the generation: y_k = B D z_k, x_k = m + sigma y_k. */
static void sample_generation(cmaes *s) {
    int n = s->n;
    for (int k = 0; k < s->lambda; k++) {
        double *y = s->y + (size_t)k * n, *x = s->x + (size_t)k * n;
        for (int i = 0; i < n; i++) s->tmp[i] = s->D[i] * il_rng_normal(&s->rng);
        for (int i = 0; i < n; i++) {
            double acc = 0;
            for (int j = 0; j < n; j++) acc += s->B[(size_t)i * n + j] * s->tmp[j];
            y[i] = acc;
            x[i] = s->m[i] + s->sigma * acc;
        }
    }
}

/* Not converged: the steps are still finite and larger than rounding noise in the box. */
static int still_searching(const cmaes *s) {
    double dmax = 0;
    for (int i = 0; i < s->n; i++) dmax = fmax(dmax, s->D[i]);
    double step = s->sigma * dmax;
    return isfinite(step) && step > 1e-12 * (s->c.hi - s->c.lo);
}

static int cmaes_ask(void *st, double *cands, int max_n) {
    cmaes *s = st;
    if (s->handed == 0) {
        if (!still_searching(s)) return 0;
        sample_generation(s);
    }
    int k = s->lambda - s->handed;
    if (k > max_n) k = max_n;
    int n = s->n;
    for (int j = 0; j < k; j++) {
        const double *x = s->x + (size_t)(s->handed + j) * n;
        for (int i = 0; i < n; i++) cands[(size_t)j * n + i] = il_opt_bounce(x[i], s->c.lo, s->c.hi);
    }
    s->handed += k;
    return k;
}

/* Ranking by value, ties by sample index so that the order is reproducible (+inf = worst).
 * Insertion sort: lambda is small, and unlike qsort it needs no global for the values. */
static void rank(const double *f, int *order, int lambda) {
    for (int k = 0; k < lambda; k++) {
        int j = k;
        while (j > 0 && f[order[j - 1]] > f[k]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
}

/* m, p_sigma, p_c from the weighted mean step y_w (tutorial eqs. 41-45); returns h_sigma. */
static int update_mean_and_paths(cmaes *s, const double *yw) {
    int n = s->n;
    for (int i = 0; i < n; i++) s->m[i] += s->sigma * yw[i];
    /* C^{-1/2} y_w = B D^{-1} B^T y_w */
    for (int j = 0; j < n; j++) {
        double acc = 0;
        for (int i = 0; i < n; i++) acc += s->B[(size_t)i * n + j] * yw[i];
        s->tmp2[j] = acc / s->D[j];
    }
    double a = sqrt(s->cs * (2 - s->cs) * s->mueff), norm2 = 0;
    for (int i = 0; i < n; i++) {
        double acc = 0;
        for (int j = 0; j < n; j++) acc += s->B[(size_t)i * n + j] * s->tmp2[j];
        s->ps[i] = (1 - s->cs) * s->ps[i] + a * acc;
        norm2 += s->ps[i] * s->ps[i];
    }
    double decay = 1 - pow(1 - s->cs, 2.0 * (s->gen + 1));
    int hsig = sqrt(norm2) / sqrt(decay) < (1.4 + 2.0 / (n + 1)) * s->chin;
    double b = sqrt(s->cc * (2 - s->cc) * s->mueff);
    for (int i = 0; i < n; i++) s->pc[i] = (1 - s->cc) * s->pc[i] + (hsig ? b * yw[i] : 0);
    return hsig;
}

/* Rank-one plus rank-mu update of C (eq. 47), then sigma (eq. 44). */
static void update_covariance_and_sigma(cmaes *s, int hsig) {
    int n = s->n;
    double delta = (1 - hsig) * s->cc * (2 - s->cc);
    double keep = 1 + s->c1 * delta - s->c1 - s->cmu;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j <= i; j++) {
            double rmu = 0;
            for (int r = 0; r < s->mu; r++) {
                const double *y = s->y + (size_t)s->order[r] * n;
                rmu += s->w[r] * y[i] * y[j];
            }
            double v = keep * s->C[(size_t)i * n + j] + s->c1 * s->pc[i] * s->pc[j] + s->cmu * rmu;
            s->C[(size_t)i * n + j] = s->C[(size_t)j * n + i] = v;
        }
    }
    double norm2 = 0;
    for (int i = 0; i < n; i++) norm2 += s->ps[i] * s->ps[i];
    /* The exponent is capped at 1 (as pycma does) so one wild generation cannot blow up sigma. */
    s->sigma *= exp(fmin(1.0, (s->cs / s->ds) * (sqrt(norm2) / s->chin - 1)));
}

/* B and D from C; eigenvalues are floored so that D^-1 stays finite. */
static void decompose(cmaes *s) {
    int n = s->n;
    memcpy(s->work, s->C, (size_t)n * n * sizeof(double));
    jacobi_eigen(n, s->work, s->B, s->D);
    double emax = 0;
    for (int i = 0; i < n; i++) emax = fmax(emax, s->D[i]);
    for (int i = 0; i < n; i++) s->D[i] = sqrt(fmax(s->D[i], emax * 1e-20 + DBL_MIN));
}

static void end_generation(cmaes *s) {
    int n = s->n;
    rank(s->f, s->order, s->lambda);
    double *yw = s->tmp;
    for (int i = 0; i < n; i++) yw[i] = 0;
    for (int r = 0; r < s->mu; r++) {
        const double *y = s->y + (size_t)s->order[r] * n;
        for (int i = 0; i < n; i++) yw[i] += s->w[r] * y[i];
    }
    int hsig = update_mean_and_paths(s, yw);
    update_covariance_and_sigma(s, hsig);
    decompose(s);
    s->handed = s->told = 0;
    s->gen++;
}

static int cmaes_tell(void *st, const double *values, int k) {
    cmaes *s = st;
    memcpy(s->f + s->told, values, (size_t)k * sizeof(double));
    s->told += k;
    if (s->told == s->lambda) end_generation(s);
    return 0;
}

const il_opt_method il_opt_cmaes = {"cmaes", cmaes_create, cmaes_ask, cmaes_tell, cmaes_destroy};
