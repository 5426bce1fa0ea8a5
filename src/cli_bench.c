/* cli_bench.c - `ilora bench model`: speed figures on the Flan-T5-Large shape, measured
 * in one run so that ratios compare like with like (same machine, same moment). */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "t5.h"

static const char help[] =
    "usage: ilora bench model [--layers N] [--seq N] [--batch N] [--new-tokens N] [--seed S]\n\n"
    "Builds random weights of the Flan-T5-Large shape (24+24 layers, d_model 1024, d_kv 64,\n"
    "16 heads, d_ff 2816, vocab 32128) in memory and reports, in one run:\n"
    "  - the fp32 GEMM rate of the linked BLAS (GFLOP/s),\n"
    "  - the encoder's rate at batch x seq tokens (default 5 x 256), as GFLOP/s and as a\n"
    "    fraction of the GEMM rate,\n"
    "  - greedy decoding tokens/s at batch 1 and 8, and the fraction of the measured memory\n"
    "    bandwidth the decoder's weight streaming reaches,\n"
    "  - peak RSS against the size of the weights.\n"
    "--layers N shrinks both stacks (for a quick look; the figures then are not Large's).\n";

static double gemm_rate(int m, int n, int k) {
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)n * k);
    float *c = malloc(sizeof(float) * (size_t)m * n);
    if (!a || !b || !c) { free(a); free(b); free(c); return 0; }
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < (size_t)n * k; i++) b[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
    /* Same call shape as the model: y = x W^T with W [out, in]. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a, k, b, k, 0, c, n);
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t = il_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a, k, b, k, 0, c, n);
        t = il_now() - t;
        if (t < best) best = t;
    }
    free(a); free(b); free(c);
    return 2.0 * m * n * k / best * 1e-9;
}

/* Read bandwidth (GB/s): sum a buffer much larger than the caches, best of 3. */
static double read_bandwidth(void) {
    size_t n = (size_t)64 << 20; /* 256 MiB of floats: far beyond the caches */
    float *buf = malloc(n * sizeof(float));
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 1023);
    double best = 1e30, sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t = il_now(), s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
        for (size_t i = 0; i < n; i += 16) {
            float acc = 0;
            for (int j = 0; j < 16; j++) acc += buf[i + j];
            s += acc;
        }
        t = il_now() - t;
        sink += s;
        if (t < best) best = t;
    }
    free(buf);
    if (sink == 42) fputs("", stderr); /* keep the loop */
    return (double)n * sizeof(float) / best * 1e-9;
}

static double encoder_flops(const il_t5_config *c, int batch, int seq) {
    double t = (double)batch * seq, inner = (double)c->num_heads * c->d_kv;
    double proj = 2.0 * t * c->d_model * inner * 4;
    double ff = 2.0 * t * c->d_model * c->d_ff * (c->gated ? 3 : 2);
    double att = 4.0 * batch * (double)seq * seq * inner;
    return c->num_layers * (proj + ff + att);
}

/* Bytes of weights read for one decoding step (cross-attention K/V are computed once). */
static double decoder_step_bytes(const il_t5_config *c) {
    double inner = (double)c->num_heads * c->d_kv, d = c->d_model;
    double per_layer = 4 * d * inner + 2 * d * inner + d * c->d_ff * (c->gated ? 3 : 2);
    return 4.0 * (c->num_decoder_layers * per_layer + (double)c->vocab_size * d);
}

static double model_bytes(const il_t5_config *c) {
    double inner = (double)c->num_heads * c->d_kv, d = c->d_model;
    double ff = d * c->d_ff * (c->gated ? 3 : 2);
    double enc = c->num_layers * (4 * d * inner + ff), dec = c->num_decoder_layers * (8 * d * inner + ff);
    double emb = (double)c->vocab_size * d * (c->tie_word_embeddings ? 1 : 2);
    return 4.0 * (enc + dec + emb);
}

static int decode_rate(il_t5 *m, int batch, int in_len, int new_tokens, double *tok_s) {
    const il_t5_config *c = il_t5_get_config(m);
    int32_t **ids = calloc((size_t)batch, sizeof *ids), **out = calloc((size_t)batch, sizeof *out);
    int *lens = calloc((size_t)batch, sizeof *lens), *out_lens = calloc((size_t)batch, sizeof *out_lens);
    int rc = -1;
    if (!ids || !out || !lens || !out_lens) { il_seterr("out of memory"); goto done; }
    for (int b = 0; b < batch; b++) {
        ids[b] = malloc(sizeof(int32_t) * (size_t)in_len);
        if (!ids[b]) { il_seterr("out of memory"); goto done; }
        for (int i = 0; i < in_len; i++) ids[b][i] = 2 + (int32_t)((b * 131 + i * 17) % (c->vocab_size - 2));
        lens[b] = in_len;
    }
    il_gen_opts o = il_gen_default_opts();
    /* A random model may emit eos at any step; use an id it practically never picks so
     * every row decodes the full budget and the figure is per generated token. */
    o.eos_id = c->vocab_size - 1;
    /* Decoding time alone: a run of 1 new token (encoder + first step) is subtracted from a
     * run of new_tokens, leaving new_tokens - 1 pure decoding steps. */
    o.max_new_tokens = 1;
    double t0 = il_now();
    if (il_t5_generate(m, batch, (const int32_t *const *)ids, lens, &o, out, out_lens, NULL)) goto done;
    double t_first = il_now() - t0;
    for (int b = 0; b < batch; b++) { free(out[b]); out[b] = NULL; }
    o.max_new_tokens = new_tokens;
    t0 = il_now();
    if (il_t5_generate(m, batch, (const int32_t *const *)ids, lens, &o, out, out_lens, NULL)) goto done;
    double t = il_now() - t0 - t_first;
    long total = 0;
    for (int b = 0; b < batch; b++) total += out_lens[b] - 1;
    *tok_s = (double)total / t;
    rc = 0;
done:
    for (int b = 0; b < batch; b++) { if (ids) free(ids[b]); if (out) free(out[b]); }
    free(ids); free(out); free(lens); free(out_lens);
    return rc;
}

static int bench_model(int argc, char **argv) {
    int layers = 24, seq = 256, batch = 5, new_tokens = 32, seed = 1;
    const cli_opt opts[] = {
        {"--layers", OPT_INT, &layers, 1, 64},     {"--seq", OPT_INT, &seq, 1, 4096},
        {"--batch", OPT_INT, &batch, 1, 256},      {"--new-tokens", OPT_INT, &new_tokens, 2, 4096},
        {"--seed", OPT_INT, &seed, 0, 2147483647},
    };
    cli_list pos = {0};
    bool want_help;
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &pos, &want_help);
    if (rc) goto out;
    if (want_help) { fputs(help, stdout); goto out; }
    if (pos.n) { rc = cli_fail(EXIT_USAGE, "bench model takes no positional arguments"); goto out; }

    il_t5_config c = {
        .vocab_size = 32128, .d_model = 1024, .d_kv = 64, .num_heads = 16, .d_ff = 2816,
        .num_layers = layers, .num_decoder_layers = layers, .rel_buckets = 32,
        .rel_max_distance = 128, .eps = 1e-6f, .gated = true, .act = IL_ACT_GELU_NEW,
        .tie_word_embeddings = false, .pad_id = 0, .eos_id = 1, .decoder_start_id = 0,
    };
    printf("ilora bench model: Flan-T5-Large shape, %d+%d layers, d_model %d, d_ff %d, vocab %d, "
           "%d threads\n", c.num_layers, c.num_decoder_layers, c.d_model, c.d_ff, c.vocab_size,
           openblas_get_num_threads());
    double gemm = gemm_rate(batch * seq, c.d_ff, c.d_model);
    printf("  BLAS fp32 GEMM (%d x %d x %d):      %8.1f GFLOP/s\n", batch * seq, c.d_ff, c.d_model, gemm);
    double bw = read_bandwidth();
    printf("  memory read bandwidth:              %8.1f GB/s\n", bw);

    double t = il_now();
    il_t5 *m = il_t5_new_random(&c, (uint64_t)seed);
    if (!m) { rc = cli_fail_lib(); goto out; }
    printf("  random weights built in %.1f s (%.2f GB fp32)\n", il_now() - t, model_bytes(&c) * 1e-9);

    int32_t **ids = calloc((size_t)batch, sizeof *ids);
    int *lens = calloc((size_t)batch, sizeof *lens);
    float *enc = malloc(sizeof(float) * (size_t)batch * seq * c.d_model);
    if (!ids || !lens || !enc) { rc = cli_fail(EXIT_RUNTIME, "out of memory"); goto free_model; }
    for (int b = 0; b < batch; b++) {
        ids[b] = malloc(sizeof(int32_t) * (size_t)seq);
        if (!ids[b]) { rc = cli_fail(EXIT_RUNTIME, "out of memory"); goto free_model; }
        for (int i = 0; i < seq; i++) ids[b][i] = 2 + (int32_t)((b * 977 + i * 31) % (c.vocab_size - 2));
        lens[b] = seq;
    }
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        t = il_now();
        if (il_t5_encode(m, batch, (const int32_t *const *)ids, lens, enc)) { rc = cli_fail_lib(); goto free_model; }
        t = il_now() - t;
        if (t < best) best = t;
    }
    double enc_rate = encoder_flops(&c, batch, seq) / best * 1e-9;
    printf("  encoder %d x %d tokens:              %8.1f GFLOP/s = %.2f of GEMM (%.2f s/pass; target >= 0.75)\n",
           batch, seq, enc_rate, enc_rate / gemm, best);

    for (int k = 0; k < 2; k++) {
        int bsz = k ? 8 : 1;
        double tok_s;
        if (decode_rate(m, bsz, 128, new_tokens, &tok_s)) { rc = cli_fail_lib(); goto free_model; }
        double frac = tok_s / bsz * decoder_step_bytes(&c) * 1e-9 / bw;
        printf("  greedy decoding, batch %d:           %8.1f tokens/s (weights streamed at %.2f of bandwidth)\n",
               bsz, tok_s, frac);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss = (double)ru.ru_maxrss * 1024.0;
    printf("  peak RSS:                           %8.2f GB = %.2fx the weights (target <= 1.15x)\n",
           rss * 1e-9, rss / model_bytes(&c));
free_model:
    if (ids) for (int b = 0; b < batch; b++) free(ids[b]);
    free(ids); free(lens); free(enc);
    il_t5_free(m);
out:
    cli_list_free(&pos);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "model")) return bench_model(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs("usage: ilora bench model [options]   (see 'ilora bench model --help')\n", stdout);
        return EXIT_OK;
    }
    return cli_fail(EXIT_USAGE, "usage: ilora bench model [options]");
}
