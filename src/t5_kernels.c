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

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
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

/* ===== small products for attention =====
 * Attention runs one (sequence, head) per OpenMP task, so its products cannot go to
 * OpenBLAS: this OpenMP build serialises concurrent calls made from inside a parallel
 * region (exec_blas holds one global queue), which turns the tasks into a queue. These
 * kernels are single-threaded; with AVX2+FMA they use 4x16 register tiles. */

float t5_dot(const float *a, const float *b, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void t5_axpy(float *restrict y, float a, const float *restrict x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

size_t t5_attn_pack_floats(int maxk, int d_kv) {
    return (size_t)((maxk + 15) & ~15) * (size_t)d_kv;
}

#if defined(__AVX2__) && defined(__FMA__)
/* The register tile both attention products share: tile[r][0..16) = sum over t < len of
 * x[r][t] * b[t * b_step + 0..16), for 4 rows x (broadcast) and a 16-wide panel b. */
static inline void micro_4x16(const float *const x[4], const float *b, size_t b_step, int len,
                              float tile[4][16]) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00;
    for (int t = 0; t < len; t++, b += b_step) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 v = _mm256_broadcast_ss(x[0] + t);
        c00 = _mm256_fmadd_ps(v, b0, c00);
        c01 = _mm256_fmadd_ps(v, b1, c01);
        v = _mm256_broadcast_ss(x[1] + t);
        c10 = _mm256_fmadd_ps(v, b0, c10);
        c11 = _mm256_fmadd_ps(v, b1, c11);
        v = _mm256_broadcast_ss(x[2] + t);
        c20 = _mm256_fmadd_ps(v, b0, c20);
        c21 = _mm256_fmadd_ps(v, b1, c21);
        v = _mm256_broadcast_ss(x[3] + t);
        c30 = _mm256_fmadd_ps(v, b0, c30);
        c31 = _mm256_fmadd_ps(v, b1, c31);
    }
    _mm256_storeu_ps(tile[0], c00);
    _mm256_storeu_ps(tile[0] + 8, c01);
    _mm256_storeu_ps(tile[1], c10);
    _mm256_storeu_ps(tile[1] + 8, c11);
    _mm256_storeu_ps(tile[2], c20);
    _mm256_storeu_ps(tile[2] + 8, c21);
    _mm256_storeu_ps(tile[3], c30);
    _mm256_storeu_ps(tile[3] + 8, c31);
}
#endif

/* S [m, n] (row stride lds) = A [m, k] (lda) . B [n, k]^T (ldb).
 * pack: t5_attn_pack_floats(n, k) floats. */
static void gemm_nt(float *S, int lds, const float *A, int lda, const float *B, int ldb, int m,
                    int n, int k, float *pack) {
#if defined(__AVX2__) && defined(__FMA__)
    const int np = (n + 15) & ~15;
    /* B^T in panels of 16 keys: pack[(j0 / 16) * k * 16 + t * 16 + jj] = B[j0 + jj][t] */
    for (int j = 0; j < np; j++) {
        float *dst = pack + (size_t)(j >> 4) * k * 16 + (j & 15);
        const float *src = B + (size_t)j * ldb;
        for (int t = 0; t < k; t++) dst[t * 16] = j < n ? src[t] : 0.0f;
    }
    for (int i0 = 0; i0 < m; i0 += 4) {
        const int rows = m - i0 < 4 ? m - i0 : 4;
        const float *a[4];
        for (int r = 0; r < 4; r++) a[r] = A + (size_t)(i0 + (r < rows ? r : 0)) * lda;
        for (int j0 = 0; j0 < np; j0 += 16) {
            float tile[4][16];
            micro_4x16(a, pack + (size_t)j0 * k, 16, k, tile);
            const int w = n - j0 < 16 ? n - j0 : 16;
            for (int r = 0; r < rows; r++)
                memcpy(S + (size_t)(i0 + r) * lds + j0, tile[r], sizeof(float) * (size_t)w);
        }
    }
#else
    (void)pack;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            S[(size_t)i * lds + j] = t5_dot(A + (size_t)i * lda, B + (size_t)j * ldb, k);
#endif
}

/* C [m, k] (row stride ldc) = P [m, n] (ldp) . V [n, k] (ldv).
 * pack: t5_attn_pack_floats(n, k) floats. */
static void gemm_nn(float *C, int ldc, const float *P, int ldp, const float *V, int ldv, int m,
                    int n, int k, float *pack) {
#if defined(__AVX2__) && defined(__FMA__)
    /* V rows packed contiguously: rows of a head are `inner` floats apart in the
     * projection output, a stride that maps every row to the same L1 set */
    for (int j = 0; j < n; j++) memcpy(pack + (size_t)j * k, V + (size_t)j * ldv, sizeof(float) * (size_t)k);
    const int k16 = k & ~15;
    for (int i0 = 0; i0 < m; i0 += 4) {
        const int rows = m - i0 < 4 ? m - i0 : 4;
        const float *p[4];
        for (int r = 0; r < 4; r++) p[r] = P + (size_t)(i0 + (r < rows ? r : 0)) * ldp;
        for (int c0 = 0; c0 < k16; c0 += 16) {
            float tile[4][16];
            micro_4x16(p, pack + c0, (size_t)k, n, tile);
            for (int r = 0; r < rows; r++)
                memcpy(C + (size_t)(i0 + r) * ldc + c0, tile[r], sizeof tile[r]);
        }
        for (int r = 0; r < rows && k16 < k; r++) {
            float *out = C + (size_t)(i0 + r) * ldc;
            for (int c = k16; c < k; c++) out[c] = 0.0f;
            for (int j = 0; j < n; j++) t5_axpy(out + k16, p[r][j], pack + (size_t)j * k + k16, k - k16);
        }
    }
#else
    (void)pack;
    for (int i = 0; i < m; i++) {
        float *out = C + (size_t)i * ldc;
        for (int c = 0; c < k; c++) out[c] = 0.0f;
        for (int j = 0; j < n; j++) t5_axpy(out, P[(size_t)i * ldp + j], V + (size_t)j * ldv, k);
    }
#endif
}

/* ===== attention over packed sequences ===== */

/* One (sequence, head) per task: S = Q K^T + bias, softmax per row, ctx = S V.
 * No 1/sqrt(d_kv) scaling: T5 folds it into the weights. Causal rows are computed in full
 * and masked; masked keys get probability exactly 0 as with HF's additive finfo.min mask. */
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
        float *pack = S + (((size_t)lq * lk + 15) & ~(size_t)15);
        gemm_nt(S, lk, Q, inner, K, inner, lq, lk, d_kv, pack);
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
        gemm_nn(C, inner, S, lk, V, inner, lq, lk, d_kv, pack);
    }
}

/* ===== projections of a few rows (decoding) =====
 * One token per row per step: the weights are streamed from memory once per step, each
 * block of 4 weight rows being applied to every input row while it sits in L1. For
 * 1..8 rows this runs at sgemv's memory bandwidth for 1-2 rows and ~1.8x faster than
 * OpenBLAS's sgemm at 8 rows (M sgemv calls would read W M times). */

#if defined(__AVX2__) && defined(__FMA__)
static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

/* y[r0 + r, o + i] (+)= x[r0 + r] . W[o + i] for i < no (<= 4), r < nr (<= 2). */
static void few_tile(float *y, const float *x, const float *W, int o, int no, int r0, int nr,
                     int in, int out, float beta) {
    const float *w[4];
    for (int i = 0; i < 4; i++) w[i] = W + (size_t)(o + (i < no ? i : 0)) * in;
    const float *x0 = x + (size_t)r0 * in, *x1 = x0 + (nr > 1 ? in : 0);
    float acc[4][2] = {{0}};
    int k = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
           a30 = a00, a31 = a00;
    for (; k + 8 <= in; k += 8) {
        const __m256 u = _mm256_loadu_ps(x0 + k), v = _mm256_loadu_ps(x1 + k);
        __m256 p = _mm256_loadu_ps(w[0] + k);
        a00 = _mm256_fmadd_ps(p, u, a00);
        a01 = _mm256_fmadd_ps(p, v, a01);
        p = _mm256_loadu_ps(w[1] + k);
        a10 = _mm256_fmadd_ps(p, u, a10);
        a11 = _mm256_fmadd_ps(p, v, a11);
        p = _mm256_loadu_ps(w[2] + k);
        a20 = _mm256_fmadd_ps(p, u, a20);
        a21 = _mm256_fmadd_ps(p, v, a21);
        p = _mm256_loadu_ps(w[3] + k);
        a30 = _mm256_fmadd_ps(p, u, a30);
        a31 = _mm256_fmadd_ps(p, v, a31);
    }
    acc[0][0] = hsum256(a00), acc[0][1] = hsum256(a01);
    acc[1][0] = hsum256(a10), acc[1][1] = hsum256(a11);
    acc[2][0] = hsum256(a20), acc[2][1] = hsum256(a21);
    acc[3][0] = hsum256(a30), acc[3][1] = hsum256(a31);
#endif
    for (int i = 0; i < no; i++)
        for (int r = 0; r < nr; r++) {
            float a = acc[i][r];
            if (k < in) a += t5_dot(w[i] + k, (r ? x1 : x0) + k, in - k);
            float *yy = y + (size_t)(r0 + r) * out + o + i;
            *yy = beta != 0.0f ? *yy + a : a;
        }
}

void t5_gemm_few_rows(float *y, const float *x, const float *W, int R, int in, int out,
                      float beta) {
    const int blocks = (out + 3) / 4;
#pragma omp parallel for schedule(static) if ((size_t)out * in > 65536)
    for (int b = 0; b < blocks; b++) {
        const int o = 4 * b, no = out - o < 4 ? out - o : 4;
        for (int r0 = 0; r0 < R; r0 += 2)
            few_tile(y, x, W, o, no, r0, R - r0 < 2 ? R - r0 : 2, in, out, beta);
    }
}
