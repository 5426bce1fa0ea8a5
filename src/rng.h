/* rng.h - the project's random numbers: xoshiro256** seeded through splitmix64, so that a
 * seed gives the same stream on every platform (unlike rand()). Header-only, no state
 * outside the il_rng value. */
#ifndef ILORA_RNG_H
#define ILORA_RNG_H

#include <math.h>
#include <stdint.h>

/* xoshiro256** seeded through splitmix64: reproducible on every platform, unlike rand(). */
typedef struct {
    uint64_t s[4];
    double spare; /* second Box-Muller normal */
    int has_spare;
} il_rng;

static inline uint64_t il_rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline void il_rng_seed(il_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        r->s[i] = z ^ (z >> 31);
    }
    r->has_spare = 0;
    r->spare = 0;
}

static inline uint64_t il_rng_next(il_rng *r) {
    uint64_t *s = r->s, out = il_rng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = il_rng_rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double il_rng_uniform(il_rng *r) {
    return (double)(il_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal (Box-Muller; 1 - u keeps the log argument in (0, 1]). */
static inline double il_rng_normal(il_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u = 1.0 - il_rng_uniform(r), v = il_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u)), th = 6.283185307179586 * v;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

/* Uniform integer in [0, n) (n >= 1), without modulo bias worth mentioning for n << 2^64. */
static inline uint64_t il_rng_below(il_rng *r, uint64_t n) {
    return (uint64_t)(il_rng_uniform(r) * (double)n) % n;
}

/* Fisher-Yates shuffle of idx[0..n). */
static inline void il_rng_shuffle(il_rng *r, int *idx, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)il_rng_below(r, (uint64_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

#endif
