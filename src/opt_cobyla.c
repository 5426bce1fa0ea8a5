/* opt_cobyla.c - LoraHub's optimiser: nevergrad 1.0.2's NGOpt, which for this problem is
 * COBYLA on a standardised x with the weights w = bounce(x0 + s*x) (s = rhobeg, by default
 * (hi-lo)/6 = 0.5 on LoraHub's [-1.5, 1.5]), start x = 0, initial step 1, no tolerance stop.
 * NLopt's LN_COBYLA reproduces tests/golden/optimizer/ngopt-traces.json point for point.
 *
 * NLopt drives the objective through a callback; the ask/tell interface wants the caller to
 * drive. The bridge runs nlopt_optimize in a worker thread whose callback publishes the
 * requested x, then sleeps until tell() posts the value (one mutex + one condition variable;
 * exactly one side runs at a time, so the run is as deterministic as a plain NLopt call).
 * Freeing mid-run sets `cancel`: the callback calls nlopt_force_stop and returns, NLopt
 * unwinds, the thread ends and is joined.
 *
 * Why 1 candidate per ask: COBYLA's initial simplex is not known in advance. Vertex j is
 * base + rhobeg*e_j, but the base moves to a vertex as soon as it improves on it (see the
 * goldens: sphere5_l1's third point is (0.5, 0.5, 0, 0, 0)), so each point depends on the
 * value of the previous one. Batching would change the trajectory LoraHub runs. */
#include <float.h>
#include <math.h>
#include <nlopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "opt_internal.h"
#include "util.h"

typedef enum { WAIT_REQUEST, HAVE_REQUEST, HAVE_VALUE, FINISHED } phase_t;

typedef struct {
    il_opt_cfg c;
    nlopt_opt nl;
    pthread_t thread;
    bool started, sync_ready;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Shared with the worker, under mu. */
    phase_t phase;
    bool cancel;
    double *req;       /* [dim] x that NLopt asks for */
    double value;      /* its value, from tell */
    nlopt_result result;
    /* Worker-only. */
    double *x;         /* [dim] NLopt's iterate, starts at 0 */
    /* Penalty for non-finite values (tell side). */
    double worst, best;
    bool any_finite;
} cobyla;

/* The worker's callback: hand x to ask(), wait for tell(). */
static double bridge_f(unsigned n, const double *x, double *grad, void *data) {
    (void)grad;
    cobyla *b = data;
    double v = HUGE_VAL;
    pthread_mutex_lock(&b->mu);
    if (!b->cancel) {
        memcpy(b->req, x, n * sizeof(double));
        b->phase = HAVE_REQUEST;
        pthread_cond_broadcast(&b->cv);
        while (b->phase != HAVE_VALUE && !b->cancel) pthread_cond_wait(&b->cv, &b->mu);
        v = b->value;
        b->phase = WAIT_REQUEST;
    }
    if (b->cancel) nlopt_force_stop(b->nl);
    pthread_mutex_unlock(&b->mu);
    return v;
}

static void *worker(void *arg) {
    cobyla *b = arg;
    double minf;
    nlopt_result r = nlopt_optimize(b->nl, b->x, &minf);
    pthread_mutex_lock(&b->mu);
    b->result = r;
    b->phase = FINISHED;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void cobyla_destroy(void *st) {
    cobyla *b = st;
    if (!b) return;
    if (b->started) {
        pthread_mutex_lock(&b->mu);
        b->cancel = true;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
    }
    if (b->sync_ready) {
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
    }
    if (b->nl) nlopt_destroy(b->nl);
    free(b->req);
    free(b->x);
    free(b);
}

/* NLopt set up as nevergrad's scipy call: unbounded x (the bounce maps into the box),
 * initial step 1 in every coordinate, at most `budget` evaluations, no xtol/ftol stop. */
static int setup_nlopt(cobyla *b) {
    b->nl = nlopt_create(NLOPT_LN_COBYLA, (unsigned)b->c.dim);
    if (!b->nl) { il_seterr("optimizer: cobyla: nlopt_create failed"); return -1; }
    if (nlopt_set_min_objective(b->nl, bridge_f, b) < 0 ||
        nlopt_set_initial_step1(b->nl, 1.0) < 0 || nlopt_set_maxeval(b->nl, b->c.budget) < 0) {
        il_seterr("optimizer: cobyla: NLopt setup failed: %s", nlopt_get_errmsg(b->nl));
        return -1;
    }
    return 0;
}

static void *cobyla_create(const il_opt_cfg *c) {
    cobyla *b = il_calloc(1, sizeof *b);
    if (!b) return NULL;
    b->c = *c;
    b->phase = WAIT_REQUEST;
    b->req = il_calloc((size_t)c->dim, sizeof(double));
    b->x = il_calloc((size_t)c->dim, sizeof(double));
    if (!b->req || !b->x || setup_nlopt(b) != 0) goto fail;
    if (pthread_mutex_init(&b->mu, NULL) != 0) { il_seterr("optimizer: cobyla: mutex"); goto fail; }
    if (pthread_cond_init(&b->cv, NULL) != 0) {
        pthread_mutex_destroy(&b->mu);
        il_seterr("optimizer: cobyla: condition variable");
        goto fail;
    }
    b->sync_ready = true;
    return b;
fail:
    cobyla_destroy(b);
    return NULL;
}

/* How NLopt ended, as ask's answer: 0 for a normal stop, -1 for a failure. */
static int finished(const cobyla *b) {
    if (b->result > 0 || b->result == NLOPT_ROUNDOFF_LIMITED) return 0;
    il_seterr("optimizer: cobyla: NLopt failed: %s", nlopt_result_to_string(b->result));
    return -1;
}

static int cobyla_ask(void *st, double *cands, int max_n) {
    (void)max_n; /* always 1, see the top of the file */
    cobyla *b = st;
    if (!b->started) {
        /* Started lazily so that an optimiser that is never asked costs no thread. */
        if (pthread_create(&b->thread, NULL, worker, b) != 0) {
            il_seterr("optimizer: cobyla: cannot start the NLopt thread");
            return -1;
        }
        b->started = true;
    }
    pthread_mutex_lock(&b->mu);
    while (b->phase != HAVE_REQUEST && b->phase != FINISHED) pthread_cond_wait(&b->cv, &b->mu);
    int k = 1;
    if (b->phase == FINISHED) {
        k = finished(b);
    } else {
        for (int i = 0; i < b->c.dim; i++)
            cands[i] = il_opt_bounce(b->c.x0[i] + b->c.rhobeg * b->req[i], b->c.lo, b->c.hi);
    }
    pthread_mutex_unlock(&b->mu);
    return k;
}

/* COBYLA builds linear models from the values, so +inf would poison them: a non-finite
 * value becomes a finite one worse than everything seen (fixed at tell time, so runs stay
 * reproducible). */
static double penalise(cobyla *b, double v) {
    if (isfinite(v)) {
        if (!b->any_finite || v > b->worst) b->worst = v;
        if (!b->any_finite || v < b->best) b->best = v;
        b->any_finite = true;
        return v;
    }
    if (!b->any_finite) return 1e30;
    double p = b->worst + (b->worst - b->best) + fmax(1.0, fabs(b->worst));
    return isfinite(p) ? p : b->worst;
}

static int cobyla_tell(void *st, const double *values, int k) {
    cobyla *b = st;
    (void)k; /* always 1 */
    double v = penalise(b, values[0]);
    pthread_mutex_lock(&b->mu);
    b->value = v;
    b->phase = HAVE_VALUE;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

const il_opt_method il_opt_cobyla = {"cobyla", cobyla_create, cobyla_ask, cobyla_tell,
                                     cobyla_destroy};
