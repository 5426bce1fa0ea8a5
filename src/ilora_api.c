/* ilora_api.c - the public API (include/ilora.h) over the model and tokenizer modules. */
#include "ilora.h"

#include <stdlib.h>
#include <string.h>

#include "sentencepiece.h"
#include "t5.h"

struct ilora_model {
    il_t5 *t5;
    il_tokenizer *tok;
};

const char *ilora_last_error(void) { return il_errmsg(); }

ilora_model *ilora_model_load(const char *dir) {
    ilora_model *m = il_calloc(1, sizeof *m);
    if (!m) return NULL;
    m->tok = il_tokenizer_load(dir);
    m->t5 = m->tok ? il_t5_load(dir) : NULL;
    if (!m->t5) { ilora_model_free(m); return NULL; }
    return m;
}

void ilora_model_free(ilora_model *m) {
    if (!m) return;
    il_t5_free(m->t5);
    il_tokenizer_free(m->tok);
    free(m);
}

int ilora_tokenize(const ilora_model *m, const char *text, int32_t **ids, int *n_ids) {
    return il_tokenizer_encode(m->tok, text, strlen(text), ids, n_ids);
}

char *ilora_detokenize(const ilora_model *m, const int32_t *ids, int n_ids) {
    return il_tokenizer_decode(m->tok, ids, n_ids, true, il_tokenizer_cleanup_default(m->tok));
}

ilora_gen_params ilora_gen_default_params(void) {
    return (ilora_gen_params){.max_new_tokens = 256, .max_input_tokens = 2048, .batch = 8};
}

/* Tokenize n texts, cutting each to max_len tokens with its final </s> kept. */
static int tokenize_all(const ilora_model *m, int n, const char *const *texts, int max_len,
                        int32_t **ids, int *lens) {
    for (int i = 0; i < n; i++) {
        if (ilora_tokenize(m, texts[i], &ids[i], &lens[i])) {
            il_prefixerr("text %d", i);
            return -1;
        }
        if (max_len > 0 && lens[i] > max_len) {
            ids[i][max_len - 1] = ids[i][lens[i] - 1];
            lens[i] = max_len;
        }
    }
    return 0;
}

static void free_all(int n, int32_t **ids) {
    if (ids)
        for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

int ilora_generate_ex(ilora_model *m, int n, const char *const *texts, const ilora_gen_params *params,
                      char **outputs, bool *truncated) {
    ilora_gen_params p = params ? *params : ilora_gen_default_params();
    if (n < 0 || p.max_new_tokens < 1 || p.batch < 1) {
        il_seterr("ilora_generate: invalid arguments (n %d, max_new_tokens %d, batch %d)", n,
                  p.max_new_tokens, p.batch);
        return -1;
    }
    for (int i = 0; i < n; i++) outputs[i] = NULL;
    int32_t **ids = il_calloc((size_t)n + 1, sizeof *ids), **out = il_calloc((size_t)n + 1, sizeof *out);
    int *lens = il_calloc((size_t)n + 1, sizeof *lens), *out_lens = il_calloc((size_t)n + 1, sizeof *out_lens);
    bool *hit = il_calloc((size_t)n + 1, sizeof *hit);
    int rc = -1;
    if (!ids || !out || !lens || !out_lens || !hit) goto done;
    if (tokenize_all(m, n, texts, p.max_input_tokens, ids, lens)) goto done;
    il_gen_opts o = il_gen_default_opts();
    o.max_new_tokens = p.max_new_tokens;
    o.max_batch = p.batch;
    if (il_t5_generate(m->t5, n, (const int32_t *const *)ids, lens, &o, out, out_lens, hit)) goto done;
    for (int i = 0; i < n; i++) {
        outputs[i] = ilora_detokenize(m, out[i], out_lens[i]);
        if (!outputs[i]) goto done;
        if (truncated) truncated[i] = hit[i];
    }
    rc = 0;
done:
    if (rc)
        for (int i = 0; i < n; i++) { free(outputs[i]); outputs[i] = NULL; }
    free_all(n, ids);
    free_all(n, out);
    free(lens); free(out_lens); free(hit);
    return rc;
}

int ilora_generate(ilora_model *m, int n, const char *const *texts, const ilora_gen_params *params,
                   char **outputs) {
    return ilora_generate_ex(m, n, texts, params, outputs, NULL);
}

int ilora_loss(ilora_model *m, int n, const char *const *inputs, const char *const *outputs,
               float *per_example, double *mean_token_loss) {
    if (n < 1) { il_seterr("ilora_loss: no examples"); return -1; }
    int32_t **in = il_calloc((size_t)n, sizeof *in), **lab = il_calloc((size_t)n, sizeof *lab);
    int *in_lens = il_calloc((size_t)n, sizeof *in_lens), *lab_lens = il_calloc((size_t)n, sizeof *lab_lens);
    int rc = -1;
    if (!in || !lab || !in_lens || !lab_lens) goto done;
    if (tokenize_all(m, n, inputs, 2048, in, in_lens) || tokenize_all(m, n, outputs, 0, lab, lab_lens))
        goto done;
    rc = il_t5_loss(m->t5, n, (const int32_t *const *)in, in_lens, (const int32_t *const *)lab,
                    lab_lens, per_example, NULL, NULL, mean_token_loss, NULL);
done:
    free_all(n, in);
    free_all(n, lab);
    free(in_lens); free(lab_lens);
    return rc;
}

void ilora_free_ids(int32_t *ids) { free(ids); }
void ilora_free_string(char *s) { free(s); }
