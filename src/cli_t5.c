/* cli_t5.c - see cli_t5.h. */
#include "cli_t5.h"

#include <stdlib.h>
#include <string.h>

/* ---- model + tokenizer ---- */

int cli_t5_open(cli_t5 *m, const char *dir, bool need_weights) {
    memset(m, 0, sizeof *m);
    if (!il_dir_exists(dir)) { il_seterr("%s: not a directory", dir); return -1; }
    m->tok = il_tokenizer_load(dir);
    if (!m->tok) return -1;
    if (need_weights) {
        m->model = il_t5_load(dir);
        if (!m->model) { cli_t5_close(m); return -1; }
    }
    return 0;
}

void cli_t5_close(cli_t5 *m) {
    il_t5_free(m->model);
    il_tokenizer_free(m->tok);
    memset(m, 0, sizeof *m);
}

int cli_tokenize_all(const cli_t5 *m, const char *const *texts, int n, int max_len, cli_ids *out) {
    memset(out, 0, sizeof *out);
    out->ids = il_calloc((size_t)(n ? n : 1), sizeof *out->ids);
    out->lens = il_calloc((size_t)(n ? n : 1), sizeof *out->lens);
    if (!out->ids || !out->lens) { cli_ids_free(out); return -1; }
    out->n = n;
    for (int i = 0; i < n; i++) {
        if (il_tokenizer_encode(m->tok, texts[i], strlen(texts[i]), &out->ids[i], &out->lens[i])) {
            il_prefixerr("text %d", i + 1);
            cli_ids_free(out);
            return -1;
        }
        if (max_len > 0 && out->lens[i] > max_len) {
            out->ids[i][max_len - 1] = out->ids[i][out->lens[i] - 1]; /* keep the eos */
            out->lens[i] = max_len;
            out->n_truncated++;
        }
    }
    return 0;
}

void cli_ids_free(cli_ids *x) {
    if (x->ids)
        for (int i = 0; i < x->n; i++) free(x->ids[i]);
    free(x->ids);
    free(x->lens);
    memset(x, 0, sizeof *x);
}
