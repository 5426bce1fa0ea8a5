/* cli_bench.c - `ilora bench model` and `ilora bench lorahub`: speed figures on the
 * Flan-T5-Large shape, measured in one run so that ratios compare like with like (same
 * machine, same moment). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "cli_bench.h"
#include "lora.h"
#include "lorahub.h"
#include "t5.h"
#include "t5_merge.h"

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

    il_t5_config c = bench_flan_t5_large(layers);
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

/* ===== bench lorahub ===== */

static const char help_lorahub[] =
    "usage: ilora bench lorahub [--layers N] [--evals N] [--adapters N] [--rank R] [--seed S]\n"
    "                           [--repeat N]\n\n"
    "The LoraHub workload on the Flan-T5-Large shape (random weights, 24+24 layers): N random\n"
    "rank-R adapters (default 20, rank 16, lora_alpha 32) on q and v of every attention block,\n"
    "5 examples of BBH-like lengths (inputs of 120, 180, 250, 320, 400 tokens, targets of 2-6\n"
    "tokens). Reports, in one run:\n"
    "  - the time of one objective evaluation (compose the adapters + LoraHub loss) scored one\n"
    "    at a time, and per evaluation when --evals candidates (default 5: e.g. 5 lockstep\n"
    "    problems x 1 candidate) are scored in ONE batched forward pass, each row with its own\n"
    "    composed adapter, and their ratio (target: batched <= 0.6x);\n"
    "  - the share of the time spent composing adapters;\n"
    "  - the base model's loss pass without adapters (what the adapters cost);\n"
    "  - the largest difference between the batched and the one-at-a-time values (float32\n"
    "    rounding depends on the rows sharing a GEMM; random weights amplify it with depth:\n"
    "    ~1e-5 at 4 layers, ~1e-2 at 24, with or without adapters);\n"
    "  - the encoder's packed token count against the padded one (no work is spent on padding).\n"
    "--layers N shrinks both stacks and --evals N sets the candidates per batch (for a quick\n"
    "look; the default takes a few minutes on 2 cores). --repeat N measures both ways N times,\n"
    "alternating, and keeps the fastest of each (steadier on a busy machine); cpu figures are\n"
    "the process's CPU seconds (with OMP_NUM_THREADS=1: the work, whatever else runs).\n";

/* CPU seconds (user + system) of the process so far: steadier than wall time when other
 * processes share the cores (with OMP_NUM_THREADS=1 it is the work done). */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * ru.ru_stime.tv_usec;
}

static int bench_lorahub(int argc, char **argv) {
    int layers = 24, evals = 5, n_ad = 20, rank = 16, seed = 1, repeat = 1;
    const cli_opt opts[] = {
        {"--layers", OPT_INT, &layers, 1, 64},     {"--evals", OPT_INT, &evals, 1, 64},
        {"--repeat", OPT_INT, &repeat, 1, 100},
        {"--adapters", OPT_INT, &n_ad, 1, 200},    {"--rank", OPT_INT, &rank, 1, 256},
        {"--seed", OPT_INT, &seed, 0, 2147483647},
    };
    enum { NEX = 5 };
    static const int in_len[NEX] = {120, 180, 250, 320, 400}, out_len[NEX] = {3, 2, 5, 4, 6};
    cli_list pos = {0};
    bool want_help;
    il_t5 *m = NULL;
    il_lora **ad = NULL;
    il_lora_ctx *ctx = NULL;
    int32_t *ids[NEX] = {0}, *labels[NEX] = {0};
    il_lorahub_problem *pr = NULL;
    double *x0 = NULL;
    il_lorahub_result *r1 = NULL, *rb = NULL;
    char *cfg_json = NULL;
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &pos, &want_help);
    if (rc) goto out;
    if (want_help) { fputs(help_lorahub, stdout); goto out; }
    if (pos.n) { rc = cli_fail(EXIT_USAGE, "bench lorahub takes no positional arguments"); goto out; }

    il_t5_config c = bench_flan_t5_large(layers);
    int packed = 0, longest = 0, targets = 0;
    for (int i = 0; i < NEX; i++) {
        packed += in_len[i];
        targets += out_len[i];
        if (in_len[i] > longest) longest = in_len[i];
    }
    printf("ilora bench lorahub: Flan-T5-Large shape, %d+%d layers, %d adapters of rank %d on q,v "
           "of %d attention blocks, %d threads\n", layers, layers, n_ad, rank, 3 * layers,
           openblas_get_num_threads());
    printf("  examples: %d, input tokens", NEX);
    for (int i = 0; i < NEX; i++) printf(" %d", in_len[i]);
    printf(" = %d packed; padded to the longest: %d (%.1f%% padding) - ilora computes 0 padded "
           "positions\n  targets: %d tokens in all (2-6 each, with </s>)\n", packed, NEX * longest,
           100.0 * (NEX * longest - packed) / (NEX * longest), targets);
    fflush(stdout);

    double t = il_now();
    if (!(m = il_t5_new_random(&c, (uint64_t)seed))) { rc = cli_fail_lib(); goto out; }
    double t_model = il_now() - t;
    bench_rng_seed(seed);
    cfg_json = bench_lora_config_json(rank);
    ad = calloc((size_t)n_ad, sizeof *ad);
    if (!cfg_json || !ad) { rc = cli_fail(EXIT_RUNTIME, "out of memory"); goto out; }
    t = il_now();
    for (int k = 0; k < n_ad; k++)
        if (!(ad[k] = bench_random_adapter(&c, k, rank, cfg_json))) { rc = cli_fail_lib(); goto out; }
    double t_ad = il_now() - t;
    double ad_mb = 0;
    for (int j = 0; j < il_lora_n_modules(ad[0]); j++) {
        const il_lora_module *mo = il_lora_module_at(ad[0], j);
        ad_mb += 4.0 * mo->r * (mo->id.in + mo->id.out) / 1e6;
    }
    printf("  random weights built in %.1f s; %d adapters in %.1f s (%d modules, %.1f MB each)\n",
           t_model, n_ad, t_ad, il_lora_n_modules(ad[0]), ad_mb);

    /* the examples: random ids, eos last */
    int lens[NEX], label_lens[NEX];
    for (int i = 0; i < NEX; i++) {
        ids[i] = malloc(sizeof(int32_t) * (size_t)in_len[i]);
        labels[i] = malloc(sizeof(int32_t) * (size_t)out_len[i]);
        if (!ids[i] || !labels[i]) { rc = cli_fail(EXIT_RUNTIME, "out of memory"); goto out; }
        for (int j = 0; j < in_len[i]; j++) ids[i][j] = 2 + (int32_t)((i * 977 + j * 31) % (c.vocab_size - 2));
        for (int j = 0; j < out_len[i]; j++) labels[i][j] = 2 + (int32_t)((i * 131 + j * 17) % 1000);
        ids[i][in_len[i] - 1] = labels[i][out_len[i] - 1] = 1;
        lens[i] = in_len[i];
        label_lens[i] = out_len[i];
    }
    il_lorahub_examples ex = {NEX, (const int32_t *const *)ids, lens,
                              (const int32_t *const *)labels, label_lens};

    /* the base model alone: a LoraHub loss pass without adapters, after an untimed one that
     * warms up (first touch of the weights and of the allocator's pages) */
    double base_loss, cpu = 0, t_base = INFINITY, cpu_base = 0;
    for (int rep = 0; rep <= repeat; rep++) {
        cpu = cpu_seconds();
        t = il_now();
        if (il_lora_lorahub_loss(m, NEX, ex.ids, ex.lens, ex.labels, ex.label_lens,
                                 IL_LORAHUB_BATCH_SIZE, &base_loss)) { rc = cli_fail_lib(); goto out; }
        t = il_now() - t;
        if (rep && t < t_base) t_base = t, cpu_base = cpu_seconds() - cpu;
    }
    printf("  base model, no adapters:            %8.3f s per LoraHub loss pass (cpu %.3f s)\n",
           t_base, cpu_base);
    fflush(stdout);

    /* --evals problems of one evaluation each, at random weights (COBYLA's first candidate is
     * its start x0), all on the same adapters and examples */
    pr = calloc((size_t)evals, sizeof *pr);
    x0 = malloc(sizeof *x0 * (size_t)evals * (size_t)n_ad);
    r1 = calloc((size_t)evals, sizeof *r1);
    rb = calloc((size_t)evals, sizeof *rb);
    if (!pr || !x0 || !r1 || !rb) { rc = cli_fail(EXIT_RUNTIME, "out of memory"); goto out; }
    for (int p = 0; p < evals; p++) {
        pr[p] = (il_lorahub_problem){n_ad, (const il_lora *const *)ad, &ex, il_lorahub_default_params()};
        for (int k = 0; k < n_ad; k++) x0[(size_t)p * n_ad + k] = 1.5 * bench_rnd();
        pr[p].params.x0 = x0 + (size_t)p * n_ad;
        pr[p].params.budget = 1;
    }
    if (!(ctx = il_lora_ctx_new(m))) { rc = cli_fail_lib(); goto out; }
    double tw[2] = {INFINITY, INFINITY}, tc[2] = {0, 0}, ts[2] = {0, 0}, tcpu[2] = {0, 0};
    int npass[2] = {0, 0};
    for (int rep = 0; rep < repeat; rep++)
        for (int mode = 0; mode < 2; mode++) {
            il_lorahub_result *res = mode ? rb : r1;
            if (rep)
                for (int p = 0; p < evals; p++) il_lorahub_result_free(&res[p]);
            il_lorahub_run_opts ro = {.max_items = mode ? 0 : 1}; /* 1: one candidate per pass */
            cpu = cpu_seconds();
            t = il_now();
            if (il_lorahub_run_many(ctx, evals, pr, &ro, res)) { rc = cli_fail_lib(); goto out; }
            double w = (il_now() - t) / evals;
            if (w >= tw[mode]) continue;
            tw[mode] = w;
            tcpu[mode] = (cpu_seconds() - cpu) / evals;
            npass[mode] = ro.forward_passes;
            tc[mode] = ts[mode] = 0;
            for (int p = 0; p < evals; p++) {
                tc[mode] += res[p].t_compose / evals;
                if (!mode) ts[mode] += res[p].t_score / evals;
            }
            if (mode) ts[mode] = res[0].t_score / evals; /* the batched pass is shared */
        }
    for (int mode = 0; mode < 2; mode++)
        printf("  %-36s%8.3f s per evaluation = compose %.3f s (%.1f%%) + loss %.3f s [%d pass%s]"
               " (cpu %.3f s)\n", mode ? "batched, all in ONE forward pass:" : "one at a time:",
               tw[mode], tc[mode], 100.0 * tc[mode] / tw[mode], ts[mode], npass[mode],
               npass[mode] == 1 ? "" : "es", tcpu[mode]);
    double dmax = 0;
    for (int p = 0; p < evals; p++) dmax = fmax(dmax, fabs(r1[p].objective[0] - rb[p].objective[0]));
    printf("  batched / one at a time:            %8.3f x per evaluation (target <= 0.6; cpu %.3f x), "
           "%d candidates per pass\n", tw[1] / tw[0], tcpu[1] / tcpu[0], evals);
    printf("  adapters' cost in an evaluation:    %8.1f %% (one at a time against the base pass, cpu "
           "time: LoRA hook + composing)\n", 100.0 * (tcpu[0] - cpu_base) / tcpu[0]);
    printf("  objective values, batched vs alone: max |diff| %.3g (objective ~%.4f; float32 rounding,\n"
           "                                      which random weights amplify with depth)\n", dmax,
           r1[0].objective[0]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("  peak RSS:                           %8.2f GB\n", (double)ru.ru_maxrss * 1024.0 * 1e-9);
out:
    if (r1 && rb)
        for (int p = 0; p < evals; p++) {
            il_lorahub_result_free(&r1[p]);
            il_lorahub_result_free(&rb[p]);
        }
    free(r1);
    free(rb);
    free(pr);
    free(x0);
    il_lora_ctx_free(ctx);
    if (ad)
        for (int k = 0; k < n_ad; k++) il_lora_free(ad[k]);
    free(ad);
    for (int i = 0; i < NEX; i++) { free(ids[i]); free(labels[i]); }
    free(cfg_json);
    il_t5_free(m);
    cli_list_free(&pos);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "model")) return bench_model(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "lorahub")) return bench_lorahub(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "eval")) return bench_eval(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs("usage: ilora bench model [options]     (see 'ilora bench model --help')\n"
              "       ilora bench lorahub [options]   (see 'ilora bench lorahub --help')\n"
              "       ilora bench eval [options]      (see 'ilora bench eval --help')\n", stdout);
        return EXIT_OK;
    }
    return cli_fail(EXIT_USAGE, "usage: ilora bench model|lorahub|eval [options]");
}
