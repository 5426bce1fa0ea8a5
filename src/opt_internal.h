/* opt_internal.h - what the optimiser front end (opt.c) shares with its methods
 * (opt_cobyla.c, opt_cmaes.c, opt_simple.c): the method table, the mirror map into the box
 * and a seeded PRNG. Not part of the public API. */
#ifndef ILORA_OPT_INTERNAL_H
#define ILORA_OPT_INTERNAL_H

#include "rng.h"
#include <math.h>
#include <stdint.h>

#include "opt.h"

/* Validated parameters, defaults filled in, as every method sees them. */
typedef struct {
    int dim, budget;
    double lo, hi;
    const double *x0; /* [dim], never NULL */
    uint64_t seed;
    double sigma0, rhobeg; /* > 0 */
} il_opt_cfg;

/* A method. The front end checks the ask/tell protocol and the budget, keeps the best point,
 * and maps non-finite values to +INFINITY before tell; so ask gets 1 <= max_n <= remaining
 * budget, and tell gets exactly the k values of the last ask. */
typedef struct {
    const char *name;
    void *(*create)(const il_opt_cfg *c);               /* NULL + il_seterr */
    int (*ask)(void *st, double *cands, int max_n);     /* k >= 1, 0 = converged, -1 */
    int (*tell)(void *st, const double *values, int k); /* 0 or -1 */
    void (*destroy)(void *st);
} il_opt_method;

extern const il_opt_method il_opt_cobyla, il_opt_cmaes, il_opt_oneplusone, il_opt_random;

/* Mirror v into [lo, hi]: the real line folded like a bouncing ball, so the map is
 * continuous, the identity inside the box and periodic with period 2(hi - lo). This is
 * nevergrad's "bouncing" bound: y = (v - lo) mod 2(hi - lo), y > hi - lo -> 2(hi - lo) - y,
 * then + lo. The final clamp only absorbs rounding (lo + (hi - lo) may exceed hi by an ulp). */
static inline double il_opt_bounce(double v, double lo, double hi) {
    double r = hi - lo, y = fmod(v - lo, 2 * r);
    if (y < 0) y += 2 * r;
    if (y > r) y = 2 * r - y;
    y += lo;
    return y < lo ? lo : y > hi ? hi : y;
}

#endif
