/* t5_kernels.c - the non-GEMM pieces of T5: RMS norm, activations, softmax, relative
 * position buckets and packed attention. Everything is float32 like transformers; the
 * transcendental functions are written branch-free so that the compiler vectorises the
 * loops (glibc's expf/tanhf are scalar calls without -ffast-math, and gelu + softmax would
 * otherwise cost a noticeable share of a Flan-T5-Large forward pass). */
/* FP exceptions are never inspected; without this GCC will not if-convert the clamps in
 * exp_f32 and the softmax / GELU loops stay scalar. Results are unchanged. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include "t5_internal.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int t5_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int t5_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ===== exp ===== */

/* exp(x) in float32, within ~2 ulp of the correctly rounded value (Cephes expf:
 * x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, scale by 2^n). Inputs are clamped to
 * [-87.3, 88.3], which keeps 2^n a normal float; below the range the result is ~1e-38
 * instead of 0, far below anything that reaches a softmax sum or a GELU output. */
static inline float exp_f32(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    float t = x * 1.44269504088896341f;
    float n = (t + 12582912.0f) - 12582912.0f; /* round to nearest (|t| < 2^22) */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } s;
    s.i = ((int32_t)n + 127) << 23;
    return p * s.f;
}

/* ===== RMS norm ===== */

/* T5LayerNorm: w * x / sqrt(mean(x^2) + eps); no mean subtraction, no bias; the variance
 * in float32 as transformers does (summation order differs: ~1e-7 relative). */
static void rmsnorm_row(float *y, const float *x, const float *w, int n, float eps) {
    /* 8 independent partial sums so that the loop vectorises */
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[i + k] * x[i + k];
    double ss = 0;
    for (; i < n; i++) ss += (double)x[i] * x[i];
    for (int k = 0; k < 8; k++) ss += acc[k];
    float var = (float)(ss / n);
    float inv = 1.0f / sqrtf(var + eps);
    for (i = 0; i < n; i++) y[i] = w[i] * (x[i] * inv);
}

void il_t5_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    rmsnorm_row(y, x, w, n, eps);
}

void t5_rmsnorm_rows(float *y, const float *x, const float *w, int rows, int d, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)rows * d > 65536)
    for (int r = 0; r < rows; r++)
        rmsnorm_row(y + (size_t)r * d, x + (size_t)r * d, w, d, eps);
}

/* ===== activations ===== */

/* gelu_new(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
 * With E = exp(2u): 1 + tanh(u) = 2E / (E + 1), so gelu_new(x) = x E / (E + 1), which is
 * also accurate where tanh(u) is close to -1. */
static inline float gelu_new_f32(float x) {
    float u = 0.7978845608028654f * (x + 0.044715f * (x * x * x));
    float e = exp_f32(2.0f * u);
    return x * (e / (e + 1.0f));
}

float il_t5_gelu_new(float x) { return gelu_new_f32(x); }

/* Elementwise spans, kept out of the OpenMP-outlined loops so that they vectorise. */
static void span_gelu_new(float *restrict a, long n) {
    for (long i = 0; i < n; i++) a[i] = gelu_new_f32(a[i]);
}
static void span_gelu_erf(float *restrict a, long n) {
    for (long i = 0; i < n; i++) a[i] = 0.5f * a[i] * (1.0f + erff(a[i] * 0.70710678118654752f));
}
static void span_relu(float *restrict a, long n) {
    for (long i = 0; i < n; i++) a[i] = a[i] > 0.0f ? a[i] : 0.0f;
}
static void span_mul(float *restrict a, const float *restrict b, long n) {
    for (long i = 0; i < n; i++) a[i] *= b[i];
}

void t5_act_mul(float *a, const float *b, size_t n, il_act act) {
    const long chunk = 8192, nn = (long)n, nc = (nn + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (nc > 4)
    for (long ci = 0; ci < nc; ci++) {
        float *p = a + ci * chunk;
        long len = nn - ci * chunk < chunk ? nn - ci * chunk : chunk;
        if (act == IL_ACT_GELU_NEW) span_gelu_new(p, len);
        else if (act == IL_ACT_GELU) span_gelu_erf(p, len);
        else span_relu(p, len);
        if (b) span_mul(p, b + ci * chunk, len);
    }
}

/* ===== softmax ===== */

void t5_softmax(float *x, int n) {
    /* 8-lane partial max / sum: the loops vectorise without -ffast-math */
    float m8[8], s8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int k = 0; k < 8; k++) m8[k] = x[0];
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) m8[k] = x[i + k] > m8[k] ? x[i + k] : m8[k];
    float mx = x[0];
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int k = 0; k < 8; k++) mx = m8[k] > mx ? m8[k] : mx;
    for (i = 0; i < n; i++) x[i] = exp_f32(x[i] - mx);
    float sum = 0.0f;
    for (i = 0; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s8[k] += x[i + k];
    for (; i < n; i++) sum += x[i];
    for (int k = 0; k < 8; k++) sum += s8[k];
    float inv = 1.0f / sum;
    for (i = 0; i < n; i++) x[i] *= inv;
}

/* ===== relative position buckets ===== */

/* T5Attention._relative_position_bucket, including its float32 arithmetic: the log-spaced
 * part is max_exact + trunc(log(rel / max_exact) / log(max_distance / max_exact)
 * * (num_buckets - max_exact)) with each operation rounded to float32 as torch does,
 * so that bucket boundaries fall exactly where they do in transformers. */
int il_t5_rel_bucket(int relative_position, bool bidirectional, int num_buckets,
                     int max_distance) {
    int bucket = 0;
    int rel = relative_position;
    if (bidirectional) {
        num_buckets /= 2;
        if (rel > 0) bucket += num_buckets;
        rel = rel < 0 ? -rel : rel;
    } else {
        rel = rel < 0 ? -rel : 0;
    }
    int max_exact = num_buckets / 2;
    if (rel < max_exact) return bucket + rel;
    float ratio = (float)rel / (float)max_exact;
    float denom = (float)log((double)max_distance / (double)max_exact);
    float v = logf(ratio) / denom;
    v = v * (float)(num_buckets - max_exact);
    long large = max_exact + (long)v;
    if (large > num_buckets - 1) large = num_buckets - 1;
    return bucket + (int)large;
}

void t5_bias_table(float *tab, const float *rel_bias, int heads, int maxlen, bool bidirectional,
                   int num_buckets, int max_distance) {
    int w = 2 * maxlen - 1;
    for (int r = -(maxlen - 1); r <= maxlen - 1; r++) {
        int b = il_t5_rel_bucket(r, bidirectional, num_buckets, max_distance);
        for (int h = 0; h < heads; h++)
            tab[(size_t)h * w + (size_t)(r + maxlen - 1)] = rel_bias[(size_t)b * heads + h];
    }
}

/* ===== attention over packed sequences ===== */

/* One (sequence, head) per task. QK^T and PV are single-threaded sgemm calls: OpenBLAS's
 * OpenMP build runs a BLAS call made inside an active parallel region on the calling
 * thread only (num_cpu_avail() checks omp_in_parallel()), so the tasks run side by side
 * without oversubscription. No 1/sqrt(d_kv) scaling: T5 folds it into the weights. */
void t5_attention(float *ctx, const float *q, const float *k, const float *v, const t5_seqs *qs,
                  const t5_seqs *ks, int heads, int d_kv, const float *bias, int maxlen,
                  bool causal, float *scratch, size_t scratch_per_thread) {
    const int inner = heads * d_kv;
    const int tasks = qs->n * heads;
    const int bw = 2 * maxlen - 1;
#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1)
    for (int t = 0; t < tasks; t++) {
        const int i = t / heads, h = t % heads;
        const int lq = qs->len[i], lk = ks->len[i];
        const float *Q = q + (size_t)qs->off[i] * inner + (size_t)h * d_kv;
        const float *K = k + (size_t)ks->off[i] * inner + (size_t)h * d_kv;
        const float *V = v + (size_t)ks->off[i] * inner + (size_t)h * d_kv;
        float *C = ctx + (size_t)qs->off[i] * inner + (size_t)h * d_kv;
        float *S = scratch + (size_t)t5_thread_id() * scratch_per_thread; /* [lq, lk] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, lq, lk, d_kv, 1.0f, Q, inner, K,
                    inner, 0.0f, S, lk);
        for (int r = 0; r < lq; r++) {
            float *row = S + (size_t)r * lk;
            int nk = causal ? (r + 1 < lk ? r + 1 : lk) : lk;
            if (bias) {
                /* bias of key j for query r: relative position j - r */
                const float *b = bias + (size_t)h * bw + (size_t)(maxlen - 1 - r);
                for (int j = 0; j < nk; j++) row[j] += b[j];
            }
            t5_softmax(row, nk);
            for (int j = nk; j < lk; j++) row[j] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, lq, d_kv, lk, 1.0f, S, lk, V,
                    inner, 0.0f, C, inner);
    }
}
