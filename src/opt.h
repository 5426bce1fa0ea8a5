/* opt.h - gradient-free minimisation of f(w), w in the box [lo, hi]^dim, through an ask/tell
 * interface, so that the caller can score several candidates in one batched forward pass.
 *
 *   il_opt *o = il_opt_new(&p);
 *   while ((k = il_opt_ask(o, cands, max_n)) > 0) {   // k candidates, each inside the box
 *       score cands[0..k) together into values[0..k);
 *       il_opt_tell(o, values);
 *   }                                                  // k == 0: budget used up / converged
 *   il_opt_best(o, w, &value); il_opt_free(o);
 *
 * Methods (il_opt_names()):
 *   "cobyla"  (default) LoraHub's optimiser: nevergrad 1.0.2 NGOpt resolves to COBYLA run on
 *             a standardised x (start 0, initial step 1, no tolerance stop) with the
 *             objective evaluated at w = bounce(x0 + rhobeg*x), rhobeg = (hi-lo)/6 by
 *             default (0.5 on LoraHub's [-1.5, 1.5]). Uses NLopt's LN_COBYLA.
 *             COBYLA is strictly sequential - even its initial simplex, whose base point
 *             moves whenever a vertex improves - so every ask gives 1 candidate.
 *             Deterministic: the seed plays no part (as in nevergrad).
 *   "cmaes"   (mu/mu_w, lambda)-CMA-ES with Hansen's default parameters; one generation
 *             (lambda = 4 + floor(3 ln dim) candidates) per ask. Samples live in an
 *             unbounded space and are evaluated at their mirror image in the box.
 *   "1+1-es"  (1+1)-ES with the 1/5th success rule, mirrored into the box; 1 per ask.
 *   "random"  uniform random search; the first candidate is x0; any batch size.
 * Same params (including seed) -> byte-identical candidates. Values that are NaN or +-inf
 * are treated as the worst possible value. The budget counts told values exactly.
 */
#ifndef ILORA_OPT_H
#define ILORA_OPT_H

#include <stdint.h>

typedef struct il_opt il_opt;

typedef struct {
    const char *name;  /* method, see above; NULL = "cobyla" (case-insensitive) */
    int dim;           /* number of weights, >= 1 */
    double lo, hi;     /* the box, lo < hi, both finite */
    const double *x0;  /* start [dim] inside the box; NULL = zeros (0 must then be in the box) */
    int budget;        /* evaluations, >= 1; never exceeded */
    uint64_t seed;     /* stochastic methods only */
    double sigma0;     /* cmaes / 1+1-es initial step in weight units; 0 = (hi-lo)/6 */
    double rhobeg;     /* cobyla initial step in weight units; 0 = (hi-lo)/6 (nevergrad's) */
} il_opt_params;

/* NULL + il_seterr naming the bad field (dim, budget, lo/hi, x0[i], name, ...). */
il_opt *il_opt_new(const il_opt_params *p);

/* Writes k candidates (1 <= k <= max_n) to cands [max_n, dim] and returns k; 0 when the
 * budget is used up or the method has converged; -1 on error (e.g. the previous ask was not
 * told yet). */
int il_opt_ask(il_opt *o, double *cands, int max_n);

/* values [k]: the objective at the candidates of the last ask, same order. 0 or -1. */
int il_opt_tell(il_opt *o, const double *values);

/* Best point told so far (the recommendation) and its value; -1 if nothing was told yet or
 * every value was non-finite. Either output may be NULL. */
int il_opt_best(const il_opt *o, double *w, double *value);

int il_opt_evaluations(const il_opt *o);
const char *il_opt_name(const il_opt *o); /* canonical method name */
void il_opt_free(il_opt *o);              /* at any point, also between ask and tell */

/* NULL-terminated list of the method names, default first. */
const char *const *il_opt_names(void);

/* Batch objective for il_opt_minimize: values[i] = f(cands[i*dim ..]), i < k; returns 0, or
 * -1 with il_seterr to abort the run. */
typedef int (*il_opt_batch_fn)(void *user, const double *cands, int k, int dim, double *values);

/* Runs to completion. best_w [dim] and best_value may be NULL; trace [budget] (may be NULL)
 * receives the values in evaluation order, NAN past the last evaluation. 0 or -1. */
int il_opt_minimize(const il_opt_params *p, il_opt_batch_fn f, void *user, double *best_w,
                    double *best_value, double *trace);

#endif
