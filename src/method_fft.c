/* method_fft.c - full fine-tuning on the shots, then greedy answers (method_fft.h). */
#include "method_fft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t5_train.h"
#include "world_build.h"

il_fft_params il_fft_default_params(void) {
    il_fft_params p = {0};
    p.epochs = 40;
    p.batch = 5;
    p.lr = 3e-5;
    p.weight_decay = 0;
    p.max_grad_norm = 1.0;
    p.seed = 42;
    p.max_input_tokens = 2048;
    p.max_new_tokens = 256;
    p.max_batch = 0;
    return p;
}

/* Tokenize texts[0..n): HF ids with </s>, cut at max_len keeping </s> (max_len <= 0: none). */
static int encode_all(const il_tokenizer *tok, int n, const char *const *texts, int max_len,
                      int32_t **ids, int *lens) {
    for (int i = 0; i < n; i++) {
        if (!texts[i]) {
            il_seterr("text %d is NULL", i);
            return -1;
        }
        if (il_tokenizer_encode(tok, texts[i], strlen(texts[i]), &ids[i], &lens[i])) {
            il_prefixerr("text %d", i);
            return -1;
        }
        if (max_len > 1 && lens[i] > max_len) {
            ids[i][max_len - 1] = ids[i][lens[i] - 1];
            lens[i] = max_len;
        }
    }
    return 0;
}

/* The trainer's weights as a loadable model: config.json + model.safetensors in a fresh
 * temporary directory, loaded (mapped) and then removed. */
static il_t5 *model_from_trainer(const il_t5_train *t, const il_t5_config *c) {
    const char *tmpdir = getenv("TMPDIR");
    char *dir = il_sprintf("%s/ilora-fft-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    char *w = NULL, *cfg = NULL;
    il_t5 *m = NULL;
    if (!dir) return NULL;
    if (!mkdtemp(dir)) {
        il_seterr("%s: cannot create a temporary directory", dir);
        free(dir);
        return NULL;
    }
    if ((w = il_path_join(dir, "model.safetensors")) && (cfg = il_path_join(dir, "config.json")) &&
        !il_world_write_config(dir, c) && !il_t5_train_save_model(t, w))
        m = il_t5_load_files(cfg, w);
    if (w) unlink(w);
    if (cfg) unlink(cfg);
    rmdir(dir);
    free(w);
    free(cfg);
    free(dir);
    return m;
}

int il_method_fft(const il_t5 *base, const il_tokenizer *tok, int k,
                  const char *const *shot_inputs, const char *const *shot_targets, int n_q,
                  const char *const *questions, const il_fft_params *p, char **predictions) {
    il_fft_params def = il_fft_default_params();
    if (!p) p = &def;
    if (!base || !tok || !predictions || k < 1 || n_q < 0 || !shot_inputs || !shot_targets ||
        (n_q > 0 && !questions)) {
        il_seterr("fft: bad arguments (need a model, a tokenizer, k >= 1 shots)");
        return -1;
    }
    for (int i = 0; i < n_q; i++) predictions[i] = NULL;
    if (p->epochs < 1 || p->batch < 1 || !(p->lr > 0) || p->max_new_tokens < 1 ||
        p->weight_decay < 0) {
        il_seterr("fft: bad parameters (epochs, batch, max_new_tokens >= 1, lr > 0)");
        return -1;
    }
    int32_t **si = il_calloc((size_t)k, sizeof *si), **st = il_calloc((size_t)k, sizeof *st);
    int *sl = il_calloc((size_t)k, sizeof *sl), *stl = il_calloc((size_t)k, sizeof *stl);
    int32_t **qi = il_calloc((size_t)n_q + 1, sizeof *qi), **qo = il_calloc((size_t)n_q + 1, sizeof *qo);
    int *ql = il_calloc((size_t)n_q + 1, sizeof *ql), *qol = il_calloc((size_t)n_q + 1, sizeof *qol);
    il_t5_train *t = NULL;
    il_t5 *m = NULL;
    int rc = -1;
    if (!si || !st || !sl || !stl || !qi || !qo || !ql || !qol) goto done;
    if (encode_all(tok, k, shot_inputs, p->max_input_tokens, si, sl) ||
        encode_all(tok, k, shot_targets, 0, st, stl) ||
        encode_all(tok, n_q, questions, p->max_input_tokens, qi, ql)) {
        il_prefixerr("fft");
        goto done;
    }
    if (!(t = il_t5_train_new_full(base))) goto done;
    il_t5_fit_opts fo = il_t5_fit_default_opts();
    fo.epochs = p->epochs;
    fo.batch = p->batch;
    fo.seed = p->seed;
    fo.adamw.lr = p->lr;
    fo.adamw.weight_decay = p->weight_decay;
    fo.schedule = IL_LR_LINEAR;
    fo.warmup_steps = 0;
    fo.max_grad_norm = p->max_grad_norm;
    if (il_t5_train_fit(t, k, (const int32_t *const *)si, sl, (const int32_t *const *)st, stl,
                        &fo, p->epoch_loss)) {
        il_prefixerr("fft: training");
        goto done;
    }
    if (!(m = model_from_trainer(t, il_t5_get_config(base)))) {
        il_prefixerr("fft: trained model");
        goto done;
    }
    il_t5_train_free(t);
    t = NULL;
    if (n_q > 0) {
        il_gen_opts g = il_gen_default_opts();
        g.max_new_tokens = p->max_new_tokens;
        g.max_batch = p->max_batch;
        if (il_t5_generate(m, n_q, (const int32_t *const *)qi, ql, &g, qo, qol, NULL)) {
            il_prefixerr("fft: generation");
            goto done;
        }
        for (int i = 0; i < n_q; i++)
            if (!(predictions[i] = il_tokenizer_decode(tok, qo[i], qol[i], true,
                                                       il_tokenizer_cleanup_default(tok))))
                goto done;
    }
    rc = 0;
done:
    if (rc)
        for (int i = 0; i < n_q; i++) {
            free(predictions[i]);
            predictions[i] = NULL;
        }
    for (int i = 0; si && i < k; i++) free(si[i]);
    for (int i = 0; st && i < k; i++) free(st[i]);
    for (int i = 0; qi && i < n_q; i++) free(qi[i]);
    for (int i = 0; qo && i < n_q; i++) free(qo[i]);
    free(si), free(st), free(sl), free(stl), free(qi), free(qo), free(ql), free(qol);
    il_t5_train_free(t);
    il_t5_free(m);
    return rc;
}
