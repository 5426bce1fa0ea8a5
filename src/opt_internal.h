/* opt_internal.h - what the optimiser front end (opt.c) shares with its methods
 * (opt_cobyla.c, opt_cmaes.c, opt_simple.c): the method table, the mirror map into the box
 * and a seeded PRNG. Not part of the public API. */
#ifndef ILORA_OPT_INTERNAL_H
#define ILORA_OPT_INTERNAL_H

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

/* xoshiro256** seeded through splitmix64: reproducible on every platform, unlike rand(). */
typedef struct {
    uint64_t s[4];
    double spare; /* second Box-Muller normal */
    int has_spare;
} il_opt_rng;

static inline uint64_t il_opt_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline void il_opt_rng_seed(il_opt_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        r->s[i] = z ^ (z >> 31);
    }
    r->has_spare = 0;
    r->spare = 0;
}

static inline uint64_t il_opt_rng_next(il_opt_rng *r) {
    uint64_t *s = r->s, out = il_opt_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = il_opt_rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double il_opt_rng_uniform(il_opt_rng *r) {
    return (double)(il_opt_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal (Box-Muller; 1 - u keeps the log argument in (0, 1]). */
static inline double il_opt_rng_normal(il_opt_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u = 1.0 - il_opt_rng_uniform(r), v = il_opt_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u)), th = 6.283185307179586 * v;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

#endif
