/* t5_train_kernels.c - T5 layers as forward / backward pairs (see t5_train_kernels.h).
 * Plain C loops plus cblas_sgemm; OpenMP only over independent rows, columns or
 * (sequence, head) tasks, each output element written by one thread in a fixed order, so
 * results are reproducible. The projections are one cblas_sgemm each from the calling
 * thread (OpenBLAS threads them); attention calls small cblas_sgemm from its OpenMP tasks
 * (see below). */
#include "t5_train_kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define BIG 65536 /* elements below which a loop stays on one thread */

/* ===== embedding ===== */

void tk_embed_forward(float *out, const int32_t *ids, const float *table, int N, int C) {
    for (int t = 0; t < N; t++)
        memcpy(out + (size_t)t * C, table + (size_t)ids[t] * C, sizeof(float) * (size_t)C);
}

void tk_embed_backward(float *dtable, const float *dout, const int32_t *ids, int N, int C) {
    for (int t = 0; t < N; t++) {
        float *row = dtable + (size_t)ids[t] * C;
        const float *d = dout + (size_t)t * C;
        for (int c = 0; c < C; c++) row[c] += d[c];
    }
}

/* ===== RMS norm ===== */

void tk_rmsnorm_forward(float *out, float *rinv, const float *inp, const float *w, int N, int C,
                        float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > BIG)
    for (int t = 0; t < N; t++) {
        const float *x = inp + (size_t)t * C;
        float *y = out + (size_t)t * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        /* transformers: variance in float32, hidden * rsqrt(variance + eps), then weight * */
        float var = (float)(ss / C);
        float r = 1.0f / sqrtf(var + eps);
        for (int c = 0; c < C; c++) y[c] = w[c] * (x[c] * r);
        rinv[t] = r;
    }
}

void tk_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
                         const float *w, const float *rinv, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > BIG)
    for (int t = 0; t < N; t++) {
        const float *x = inp + (size_t)t * C, *dy = dout + (size_t)t * C;
        float *dx = dinp + (size_t)t * C;
        const double r = rinv[t];
        double dot = 0; /* sum_c w dy x */
        for (int c = 0; c < C; c++) dot += (double)w[c] * dy[c] * x[c];
        const double k = r * r * r * dot / C;
        for (int c = 0; c < C; c++) dx[c] += (float)(r * w[c] * dy[c] - k * x[c]);
    }
    if (!dw) return;
    /* parameter gradient: one thread per column, rows summed in order */
#pragma omp parallel for schedule(static) if ((size_t)N * C > BIG)
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int t = 0; t < N; t++)
            s += (double)dout[(size_t)t * C + c] * inp[(size_t)t * C + c] * rinv[t];
        dw[c] += (float)s;
    }
}

/* ===== linear layers ===== */

void tk_matmul_forward(float *out, const float *inp, const float *W, int N, int C, int OC,
                       float beta) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, W, C, beta, out,
                OC);
}

void tk_matmul_backward(float *dinp, float *dW, const float *dout, const float *inp,
                        const float *W, int N, int C, int OC) {
    if (dinp) /* [N, OC] x [OC, C] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, W, C,
                    1.0f, dinp, C);
    if (dW) /* [OC, N] x [N, C] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C,
                    1.0f, dW, C);
}

void tk_lora_forward(float *out, float *u, const float *inp, const float *A, const float *B,
                     float s, int N, int C, int OC, int r) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, r, C, 1.0f, inp, C, A, C, 0.0f, u, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, r, s, u, r, B, r, 1.0f, out, OC);
}

void tk_lora_backward(float *dinp, float *dA, float *dB, float *gb, const float *dout,
                      const float *inp, const float *u, const float *A, const float *B, float s,
                      int N, int C, int OC, int r) {
    /* gb [N, r] = G B */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, r, OC, 1.0f, dout, OC, B, r, 0.0f,
                gb, r);
    if (dB) /* [OC, N] x [N, r] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, r, N, s, dout, OC, u, r, 1.0f,
                    dB, r);
    if (dA) /* [r, N] x [N, C] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, C, N, s, gb, r, inp, C, 1.0f, dA,
                    C);
    if (dinp) /* [N, r] x [r, C] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, r, s, gb, r, A, C, 1.0f,
                    dinp, C);
}

/* ===== feed-forward activation ===== */

#define GELU_C 0.7978845608028654 /* sqrt(2 / pi) */

static inline float act_f(float x, il_act act) {
    switch (act) {
    case IL_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case IL_ACT_GELU_NEW: /* transformers' NewGELUActivation */
        return 0.5f * x * (1.0f + tanhf((float)GELU_C * (x + 0.044715f * (x * x * x))));
    case IL_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    }
    return 0.0f;
}

static inline float act_grad(float x, il_act act) {
    switch (act) {
    case IL_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case IL_ACT_GELU_NEW: {
        double xd = x, t = tanh(GELU_C * (xd + 0.044715 * xd * xd * xd));
        return (float)(0.5 * (1.0 + t) +
                       0.5 * xd * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * xd * xd));
    }
    case IL_ACT_GELU: {
        double xd = x;
        return (float)(0.5 * (1.0 + erf(xd * 0.70710678118654752)) +
                       xd * exp(-0.5 * xd * xd) * 0.3989422804014327);
    }
    }
    return 0.0f;
}

void tk_act_forward(float *out, const float *a, const float *b, size_t n, il_act act) {
#pragma omp parallel for schedule(static) if (n > BIG)
    for (size_t i = 0; i < n; i++) out[i] = b ? act_f(a[i], act) * b[i] : act_f(a[i], act);
}

void tk_act_backward(float *da, float *db, const float *dout, const float *a, const float *b,
                     size_t n, il_act act) {
#pragma omp parallel for schedule(static) if (n > BIG)
    for (size_t i = 0; i < n; i++) {
        if (b) {
            da[i] = dout[i] * b[i] * act_grad(a[i], act);
            db[i] = dout[i] * act_f(a[i], act);
        } else {
            da[i] = dout[i] * act_grad(a[i], act);
        }
    }
}

/* ===== attention ===== */

/* Multiply-adds of one attention product over all (sequence, head) blocks: tiny batches
 * stay on one thread (a parallel region costs more than they do, a lot more when the
 * cores are shared). */
static bool attention_parallel(const t5_seqs *qs, const t5_seqs *ks, int H, int dkv) {
    size_t work = 0;
    for (int i = 0; i < qs->n; i++) work += (size_t)qs->len[i] * ks->len[i];
    return qs->n * H > 1 && work * (size_t)H * dkv > ((size_t)1 << 20);
}

/* Query row r of the block may see keys [0, nk). */
static inline int visible(int r, int lk, bool causal) { return causal ? (r + 1 < lk ? r + 1 : lk) : lk; }

/* Each (sequence, head) is one OpenMP task that runs its own small cblas_sgemm calls:
 * inside a parallel region OpenBLAS runs them single-threaded, whereas called one after the
 * other from a serial loop every small product forks OpenBLAS's threads (measured 10-70x
 * slower for 64-wide heads on 2 cores). Tasks write disjoint blocks: results do not depend
 * on the schedule. */

void tk_attention_forward(float *ctx, float *p, const float *q, const float *k, const float *v,
                          const t5_seqs *qs, const t5_seqs *ks, const size_t *p_off,
                          const float *rel_bias, const int *bucket, int maxlen, bool causal,
                          int H, int dkv) {
    const int inner = H * dkv, tasks = qs->n * H;
    const bool par = attention_parallel(qs, ks, H, dkv);
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int t = 0; t < tasks; t++) {
        const int i = t / H, h = t % H, lq = qs->len[i], lk = ks->len[i];
        const size_t qo = (size_t)qs->off[i] * inner + (size_t)h * dkv,
                     ko = (size_t)ks->off[i] * inner + (size_t)h * dkv;
        float *S = p + p_off[i] + (size_t)h * lq * lk; /* [lq, lk] */
        /* S = Q K^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, lq, lk, dkv, 1.0f, q + qo, inner,
                    k + ko, inner, 0.0f, S, lk);
        /* + bias, mask, softmax in float32 like transformers */
        for (int r = 0; r < lq; r++) {
            float *row = S + (size_t)r * lk;
            const int nk = visible(r, lk, causal);
            if (rel_bias)
                for (int j = 0; j < nk; j++)
                    row[j] += rel_bias[(size_t)bucket[j - r + maxlen - 1] * H + h];
            float mx = row[0];
            for (int j = 1; j < nk; j++) mx = row[j] > mx ? row[j] : mx;
            double sum = 0;
            for (int j = 0; j < nk; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
            const float inv = (float)(1.0 / sum);
            for (int j = 0; j < nk; j++) row[j] *= inv;
            for (int j = nk; j < lk; j++) row[j] = 0.0f;
        }
        /* ctx = P V */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, lq, dkv, lk, 1.0f, S, lk, v + ko,
                    inner, 0.0f, ctx + qo, inner);
    }
}

void tk_attention_backward(float *dq, float *dk, float *dv, float *drel, float *dp,
                           const float *dctx, const float *p, const float *q, const float *k,
                           const float *v, const t5_seqs *qs, const t5_seqs *ks,
                           const size_t *p_off, const int *bucket, int maxlen, int H, int dkv) {
    const int inner = H * dkv, tasks = qs->n * H;
    const bool par = attention_parallel(qs, ks, H, dkv);
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int t = 0; t < tasks; t++) {
        const int i = t / H, h = t % H, lq = qs->len[i], lk = ks->len[i];
        const size_t at = p_off[i] + (size_t)h * lq * lk;
        const size_t qo = (size_t)qs->off[i] * inner + (size_t)h * dkv,
                     ko = (size_t)ks->off[i] * inner + (size_t)h * dkv;
        float *D = dp + at;
        /* dP = dctx V^T, dV = P^T dctx */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, lq, lk, dkv, 1.0f, dctx + qo, inner,
                    v + ko, inner, 0.0f, D, lk);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, lk, dkv, lq, 1.0f, p + at, lk,
                    dctx + qo, inner, 0.0f, dv + ko, inner);
        /* softmax backward in place: dS = P (dP - sum_j dP P); masked entries have P = 0 */
        for (int r = 0; r < lq; r++) {
            const float *P = p + at + (size_t)r * lk;
            float *Dr = D + (size_t)r * lk;
            double dot = 0;
            for (int j = 0; j < lk; j++) dot += (double)Dr[j] * P[j];
            const float fd = (float)dot;
            for (int j = 0; j < lk; j++) Dr[j] = P[j] * (Dr[j] - fd);
        }
        /* dQ = dS K, dK = dS^T Q */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, lq, dkv, lk, 1.0f, D, lk, k + ko,
                    inner, 0.0f, dq + qo, inner);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, lk, dkv, lq, 1.0f, D, lk, q + qo,
                    inner, 0.0f, dk + ko, inner);
    }
    /* position-bias gradient: one thread per head, summed in a fixed order */
    if (drel) {
#pragma omp parallel for schedule(static) if (par)
        for (int h = 0; h < H; h++) {
            for (int i = 0; i < qs->n; i++) {
                const int lq = qs->len[i], lk = ks->len[i];
                const float *D = dp + p_off[i] + (size_t)h * lq * lk;
                for (int r = 0; r < lq; r++)
                    for (int j = 0; j < lk; j++)
                        drel[(size_t)bucket[j - r + maxlen - 1] * H + h] += D[(size_t)r * lk + j];
            }
        }
    }
}

/* ===== loss ===== */

static double row_lse(const float *row, int V) {
    double mx = row[0];
    for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
    double se = 0;
    for (int v = 0; v < V; v++) se += exp((double)row[v] - mx);
    return mx + log(se);
}

void tk_crossentropy_forward(double *losses, const float *logits, const int32_t *targets, int N,
                             int V) {
#pragma omp parallel for schedule(static) if ((size_t)N * V > BIG)
    for (int t = 0; t < N; t++) {
        const float *row = logits + (size_t)t * V;
        losses[t] = targets[t] < 0 ? 0.0 : row_lse(row, V) - (double)row[targets[t]];
    }
}

void tk_crossentropy_backward(float *dlogits, const float *logits, const int32_t *targets,
                              float dloss, int N, int V) {
#pragma omp parallel for schedule(static) if ((size_t)N * V > BIG)
    for (int t = 0; t < N; t++) {
        const float *row = logits + (size_t)t * V;
        float *d = dlogits + (size_t)t * V;
        if (targets[t] < 0) {
            memset(d, 0, sizeof(float) * (size_t)V);
            continue;
        }
        const double lse = row_lse(row, V);
        for (int v = 0; v < V; v++) {
            double pr = exp((double)row[v] - lse);
            d[v] = (float)(dloss * (pr - (v == targets[t] ? 1.0 : 0.0)));
        }
    }
}
