/* cli_t5.c - see cli_t5.h. */
#include "cli_t5.h"

#include <errno.h>
#include <math.h>
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

/* ---- adapters ---- */

int cli_parse_rule(const char *name, il_lora_rule *rule) {
    if (il_lora_rule_parse(name, rule))
        return cli_fail(EXIT_USAGE, "option --compose: expected linear or delta, got '%s'", name);
    return 0;
}

/* "DIR=WEIGHT" -> dir (malloc'd prefix, or NULL when s is a plain directory), weight. */
static int split_lora_arg(const char *s, bool allow_weight, char **dir, float *w, bool *has_w) {
    *dir = NULL;
    *has_w = false;
    const char *eq = strrchr(s, '=');
    if (!eq || il_dir_exists(s)) return 0;
    const char *v = eq + 1;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (eq == s || !*v || *end || errno || !isfinite(x) || fabs(x) > 1e6)
        return cli_fail(EXIT_USAGE, "option --lora: expected DIR or DIR=WEIGHT with a finite "
                        "number as WEIGHT, got '%s'", s);
    if (!allow_weight)
        return cli_fail(EXIT_USAGE, "option --lora: '%s': this command takes no =WEIGHT", s);
    if (!(*dir = il_strndup(s, (size_t)(eq - s)))) return cli_fail(EXIT_RUNTIME, "%s", il_errmsg());
    *w = (float)x;
    *has_w = true;
    return 0;
}

int cli_loras_parse(cli_loras *l, const cli_list *args, const cli_list *extra, bool allow_weight) {
    memset(l, 0, sizeof *l);
    int n = args->n + (extra ? extra->n : 0);
    if (n == 0) return 0;
    l->dir = il_calloc((size_t)n, sizeof *l->dir);
    l->weight = il_calloc((size_t)n, sizeof *l->weight);
    l->a = il_calloc((size_t)n, sizeof *l->a);
    l->owned_dirs_ = il_calloc((size_t)n, sizeof *l->owned_dirs_);
    if (!l->dir || !l->weight || !l->a || !l->owned_dirs_) {
        cli_loras_free(l);
        return cli_fail(EXIT_RUNTIME, "%s", il_errmsg());
    }
    l->n = n;
    for (int i = 0; i < n; i++) {
        const char *s = i < args->n ? args->items[i] : extra->items[i - args->n];
        char *dir;
        bool has_w;
        float w = 1.0f;
        int rc = split_lora_arg(s, allow_weight, &dir, &w, &has_w);
        if (rc) {
            cli_loras_free(l);
            return rc;
        }
        l->owned_dirs_[i] = dir;
        l->dir[i] = dir ? dir : s;
        l->weight[i] = w;
        l->any_weight |= has_w;
    }
    return 0;
}

int cli_loras_load(cli_loras *l, const il_t5_config *base) {
    for (int i = 0; i < l->n; i++)
        if (!(l->a[i] = il_lora_load(l->dir[i], base, NULL))) return -1;
    return 0;
}

void cli_loras_free(cli_loras *l) {
    for (int i = 0; i < l->n; i++) {
        if (l->a) il_lora_free(l->a[i]);
        if (l->owned_dirs_) free(l->owned_dirs_[i]);
    }
    free(l->dir);
    free(l->weight);
    free(l->a);
    free(l->owned_dirs_);
    memset(l, 0, sizeof *l);
}

il_lora *cli_loras_combine(const cli_loras *l, il_lora_rule rule, bool *owned) {
    *owned = false;
    if (l->n == 1 && l->weight[0] == 1.0f) return l->a[0];
    il_lora *c = il_lora_compose(l->n, (const il_lora *const *)l->a, l->weight, rule);
    *owned = c != NULL;
    return c;
}
