/* lora_config.c - adapter_config.json as every PEFT version writes it: r, lora_alpha,
 * target_modules (list or regex), rank_pattern / alpha_pattern, rsLoRA, layer selection;
 * keys that cannot change the maths are ignored (listed in the verbose log) and features
 * ilora does not implement are refused rather than silently ignored. Also the Python-regex
 * subset PEFT patterns use, as POSIX ERE, and the loader's messages. */
#include "lora_internal.h"

#include <cJSON.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===== messages ===== */

void lora_log(const il_lora_load_opts *o, bool warning, const char *fmt, ...) {
    if (!warning && !(o && o->verbose)) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (o && o->log)
        o->log(o->log_user, msg);
    else
        fprintf(stderr, "ilora: %s%s\n", warning ? "warning: " : "", msg);
}

/* ===== Python regular expressions as POSIX ERE =====
 * PEFT matches target_modules (a string) with re.fullmatch and rank_pattern / alpha_pattern
 * keys with re.match(r"(.*\.)?(key)$"). Module patterns use a small part of Python's
 * syntax; it is translated here and anything beyond it is refused, never guessed. */

static int ere_class(il_buf *out, char e, bool in_bracket) {
    const char *cls = e == 'd' || e == 'D' ? "0-9" : e == 'w' || e == 'W' ? "[:alnum:]_"
                                                                        : "[:space:]";
    bool neg = e == 'D' || e == 'W' || e == 'S';
    if (in_bracket) return neg ? -1 : il_buf_puts(out, cls);
    return il_buf_printf(out, "[%s%s]", neg ? "^" : "", cls);
}

static bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A Python bracket expression at p[*i] == '['; *i ends on its ']'. Inside POSIX brackets a
 * backslash is literal, so Python's escapes become class names or plain characters. */
static int py_bracket(il_buf *out, const char *p, size_t *i) {
    size_t k = *i + 1;
    if (il_buf_puts(out, "[")) return -1;
    if (p[k] == '^' && (k++, il_buf_puts(out, "^"))) return -1;
    if (p[k] == ']' && (k++, il_buf_puts(out, "]"))) return -1; /* a leading ] is literal */
    for (; p[k] && p[k] != ']'; k++) {
        char c = p[k];
        int rc;
        if (c == '[' && (p[k + 1] == ':' || p[k + 1] == '.' || p[k + 1] == '='))
            return -1; /* POSIX-only syntax: ambiguous */
        if (c != '\\') {
            rc = il_buf_append(out, &c, 1);
        } else {
            char e = p[++k];
            if (!e || strchr("]\\-^", e) || (is_alnum(e) && !strchr("dDwWsS", e)))
                return -1; /* cannot be written inside POSIX brackets, or unknown */
            rc = strchr("dDwWsS", e) ? ere_class(out, e, true) : il_buf_append(out, &e, 1);
        }
        if (rc) return -1;
    }
    if (p[k] != ']') return -1;
    *i = k;
    return il_buf_puts(out, "]");
}

/* Translate lora_pattern p; -1 if it uses something outside the supported subset. */
static int py_to_ere(il_buf *out, const char *p) {
    for (size_t i = 0; p[i]; i++) {
        char c = p[i];
        int rc = 0;
        if (c == '[') {
            rc = py_bracket(out, p, &i);
        } else if (c == '\\') {
            char e = p[++i];
            if (!e) return -1;
            if (strchr("dDwWsS", e))
                rc = ere_class(out, e, false);
            else if (strchr(".^$*+?()[]{}|\\", e))
                rc = il_buf_printf(out, "\\%c", e);
            else if (is_alnum(e))
                return -1; /* \b, \A, backreferences, ... */
            else
                rc = il_buf_append(out, &e, 1); /* escaped ordinary punctuation */
        } else if (c == '(' && p[i + 1] == '?') {
            if (p[i + 2] != ':') return -1; /* lookaround, named groups, flags */
            rc = il_buf_puts(out, "(");
            i += 2;
        } else {
            rc = il_buf_append(out, &c, 1);
            /* a lazy quantifier matches the same strings as the greedy one */
            if (strchr("*+?}", c) && p[i + 1] == '?') i++;
        }
        if (rc) return -1;
    }
    return 0;
}

/* Compile "^<pre>(<translated p>)$". where/field name the config in errors. */
static int py_regcomp(regex_t *re, const char *p, const char *pre, const char *where,
                      const char *field) {
    il_buf b = {0};
    int rc = il_buf_puts(&b, "^") || il_buf_puts(&b, pre) || il_buf_puts(&b, "(");
    if (rc || py_to_ere(&b, p) || il_buf_puts(&b, ")$")) {
        il_buf_free(&b);
        il_seterr("%s: %s: regular expression '%s' uses syntax ilora does not support "
                  "(supported: literals . [] () | * + ? {m,n} \\d \\w \\s (?:...))", where,
                  field, p);
        return -1;
    }
    int err = regcomp(re, b.data, REG_EXTENDED | REG_NOSUB);
    il_buf_free(&b);
    if (err) {
        char msg[128];
        regerror(err, re, msg, sizeof msg);
        il_seterr("%s: %s: invalid regular expression '%s': %s", where, field, p, msg);
        return -1;
    }
    return 0;
}

/* ===== adapter_config.json ===== */

static void selector_free(lora_selector *s) {
    if (s->is_regex && s->present && !s->all_linear) regfree(&s->re);
    for (int i = 0; i < s->n; i++) free(s->list[i]);
    free(s->list);
    memset(s, 0, sizeof *s);
}

static void patterns_free(lora_pattern *p, int n) {
    for (int i = 0; i < n; i++) {
        free(p[i].key);
        regfree(&p[i].re);
    }
    free(p);
}

void lora_config_free(lora_config *c) {
    selector_free(&c->target);
    selector_free(&c->exclude);
    free(c->layers);
    patterns_free(c->rank_pat, c->n_rank_pat);
    patterns_free(c->alpha_pat, c->n_alpha_pat);
    free(c->base_model);
    memset(c, 0, sizeof *c);
}

bool lora_selector_match(const lora_selector *s, const char *name) {
    if (s->all_linear) return true;
    if (s->is_regex) return regexec(&s->re, name, 0, NULL, 0) == 0;
    size_t nl = strlen(name);
    for (int i = 0; i < s->n; i++) {
        size_t el = strlen(s->list[i]);
        if (strcmp(name, s->list[i]) == 0 ||
            (nl > el && name[nl - el - 1] == '.' && strcmp(name + nl - el, s->list[i]) == 0))
            return true;
    }
    return false;
}

bool lora_entry_matches(const char *entry, const char *name) {
    lora_selector one = {.present = true, .list = (char **)&entry, .n = 1};
    return lora_selector_match(&one, name);
}

static int parse_selector(lora_selector *s, const cJSON *v, const char *where, const char *field) {
    memset(s, 0, sizeof *s);
    if (!v || cJSON_IsNull(v)) return 0;
    s->present = true;
    if (cJSON_IsString(v)) {
        s->is_regex = true;
        /* PEFT's shorthand for every Linear except the output layer */
        if (strcmp(v->valuestring, "all-linear") == 0 && strcmp(field, "target_modules") == 0) {
            s->all_linear = true;
            return 0;
        }
        if (py_regcomp(&s->re, v->valuestring, "", where, field)) {
            s->present = false;
            return -1;
        }
        return 0;
    }
    if (!cJSON_IsArray(v)) {
        il_seterr("%s: %s must be a list of module names or a regex string", where, field);
        return -1;
    }
    int n = cJSON_GetArraySize(v);
    if (!(s->list = il_calloc(n > 0 ? (size_t)n : 1, sizeof *s->list))) return -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsString(e) || !e->valuestring[0]) {
            il_seterr("%s: %s: every entry must be a non-empty string", where, field);
            return -1;
        }
        if (!(s->list[s->n++] = il_strdup(e->valuestring))) return -1;
    }
    return 0;
}

/* rank_pattern / alpha_pattern: {"regex": number}, kept in file order (first match wins,
 * as PEFT iterates the dict). */
static int parse_patterns(lora_pattern **out, int *n_out, const cJSON *v, bool integer,
                          const char *where, const char *field) {
    *out = NULL;
    *n_out = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsObject(v)) {
        il_seterr("%s: %s must be an object {module lora_pattern: value}", where, field);
        return -1;
    }
    int n = cJSON_GetArraySize(v);
    lora_pattern *p = il_calloc(n > 0 ? (size_t)n : 1, sizeof *p);
    if (!p) return -1;
    *out = p;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        double x = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        if (!isfinite(x) || (integer && (x < 1 || x != floor(x) || x > 1e6))) {
            il_seterr("%s: %s['%s']: must be %s", where, field, e->string,
                      integer ? "a positive integer" : "a finite number");
            return -1;
        }
        if (!(p[*n_out].key = il_strdup(e->string))) return -1;
        if (py_regcomp(&p[*n_out].re, e->string, "(.*\\.)?", where, field)) {
            free(p[*n_out].key);
            return -1;
        }
        p[(*n_out)++].value = x;
    }
    return 0;
}

const lora_pattern *lora_pattern_find(const lora_pattern *p, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (regexec(&p[i].re, name, 0, NULL, 0) == 0) return &p[i];
    return NULL;
}

/* null, false, "", [] and {} are "not set" for every optional PEFT field. */
static bool json_unset(const cJSON *v) {
    return !v || cJSON_IsNull(v) || cJSON_IsFalse(v) ||
           (cJSON_IsString(v) && !v->valuestring[0]) ||
           ((cJSON_IsArray(v) || cJSON_IsObject(v)) && cJSON_GetArraySize(v) == 0);
}

/* Keys that describe training, the hub or runtime placement and never change the maths. */
static const char *const inert_keys[] = {
    "task_type", "revision", "inference_mode", "auto_mapping", "lora_dropout",
    "megatron_core", "runtime_config", "eva_config", "corda_config", "loftq_config",
    "peft_version", "merge_weights", "ensure_weight_tying", "qalora_group_size",
    "layers_pattern" /* checked with layers_to_transform */, NULL};

/* Features that change the maths or the model: refused unless unset. */
static const struct {
    const char *key, *what;
} unsupported_keys[] = {
    {"use_dora", "DoRA (weight-decomposed LoRA)"},
    {"lora_bias", "LoRA bias terms"},
    {"layer_replication", "layer replication"},
    {"trainable_token_indices", "trainable token embeddings"},
    {"target_parameters", "LoRA on nn.Parameter targets"},
    {"use_qalora", "QA-LoRA"},
    {"alora_invocation_tokens", "activated LoRA (aLoRA)"},
    {"arrow_config", "Arrow routing"},
    {"megatron_config", "Megatron parallel layers"},
    {"enable_lora", "merged qkv LoRA (enable_lora)"},
    {"modules_to_save", "modules_to_save (fully trained extra modules)"},
    {NULL, NULL}};

static const char *const handled_keys[] = {
    "peft_type", "r", "lora_alpha", "target_modules", "exclude_modules", "use_rslora",
    "fan_in_fan_out", "bias", "rank_pattern", "alpha_pattern", "layers_to_transform",
    "init_lora_weights", "base_model_name_or_path", NULL};

static bool in_list(const char *const *list, const char *s) {
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0) return true;
    return false;
}

/* Unknown and inert keys: a note (verbose), or a warning when an unknown key is set. */
static int check_other_keys(const cJSON *root, const char *where, const il_lora_load_opts *o) {
    const cJSON *e;
    il_buf ignored = {0};
    int rc = 0;
    cJSON_ArrayForEach(e, root) {
        const char *k = e->string;
        if (in_list(handled_keys, k)) continue;
        bool unsupported = false;
        for (int i = 0; unsupported_keys[i].key; i++)
            if (strcmp(unsupported_keys[i].key, k) == 0) {
                unsupported = true;
                if (!json_unset(e) && !(cJSON_IsNumber(e) && e->valuedouble == 0)) {
                    char *val = cJSON_PrintUnformatted(e);
                    il_seterr("%s: %s = %s: ilora does not support %s", where, k,
                              val ? val : "?", unsupported_keys[i].what);
                    free(val);
                    rc = -1;
                    goto done;
                }
            }
        if (!unsupported && !in_list(inert_keys, k) && !json_unset(e)) {
            char *val = cJSON_PrintUnformatted(e);
            lora_log(o, true, "%s: unknown key '%s' = %.60s ignored (a PEFT feature ilora "
                     "does not know?)", where, k, val ? val : "?");
            free(val);
            continue;
        }
        if (il_buf_printf(&ignored, "%s%s", ignored.len ? ", " : "", k)) {
            rc = -1;
            goto done;
        }
    }
    if (ignored.len)
        lora_log(o, false, "%s: ignored keys (unset or inert): %s", where, ignored.data);
done:
    il_buf_free(&ignored);
    return rc;
}

static int parse_layers(lora_config *c, const cJSON *root, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "layers_to_transform");
    if (json_unset(v)) return 0;
    /* PEFT finds the layer index with layers_pattern; for T5 the default patterns find
     * "block.<i>", so the index is the block number in either stack. */
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(root, "layers_pattern");
    const cJSON *lp1 =
        cJSON_IsArray(lp) && cJSON_GetArraySize(lp) == 1 ? cJSON_GetArrayItem(lp, 0) : lp;
    if (!json_unset(lp) && !(cJSON_IsString(lp1) && strcmp(lp1->valuestring, "block") == 0)) {
        il_seterr("%s: layers_pattern: only \"block\" (T5's layer container) is supported", where);
        return -1;
    }
    int n = cJSON_IsNumber(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 0 || !(c->layers = il_calloc(n > 0 ? (size_t)n : 1, sizeof *c->layers))) {
        if (n < 0)
            il_seterr("%s: layers_to_transform must be an integer or a list of integers", where);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_IsNumber(v) ? v : cJSON_GetArrayItem(v, i);
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble != floor(e->valuedouble)) {
            il_seterr("%s: layers_to_transform: entries must be non-negative integers", where);
            return -1;
        }
        c->layers[c->n_layers++] = (int)e->valuedouble;
    }
    return 0;
}

static int get_number(const cJSON *root, const char *key, double dflt, double *out,
                      const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        il_seterr("%s: %s must be a number", where, key);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

static int get_bool(const cJSON *root, const char *key, bool *out, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = false;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) {
        il_seterr("%s: %s must be true or false", where, key);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/* init_lora_weights only decides the initial values, which the saved tensors replace, except
 * for methods that also rewrite the base weights (the adapter then needs that base). */
static int check_init(const cJSON *root, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "init_lora_weights");
    if (!cJSON_IsString(v)) return 0;
    static const char *const rewrites_base[] = {"pissa", "olora", "loftq", "corda"};
    for (int i = 0; i < 4; i++)
        if (strncmp(v->valuestring, rewrites_base[i], strlen(rewrites_base[i])) == 0) {
            il_seterr("%s: init_lora_weights = \"%s\": this initialisation modifies the base "
                      "model's weights, which ilora cannot reproduce (convert the adapter to a "
                      "plain LoRA first)", where, v->valuestring);
            return -1;
        }
    return 0;
}

int lora_config_parse(lora_config *c, const char *text, const char *where,
                        const il_lora_load_opts *o) {
    memset(c, 0, sizeof *c);
    c->where = where;
    const char *at = NULL; /* where parsing stopped (per call, unlike cJSON_GetErrorPtr) */
    cJSON *root = cJSON_ParseWithOpts(text, &at, 0);
    if (!root || !cJSON_IsObject(root)) {
        if (root) at = NULL;
        if (at && at >= text && at <= text + strlen(text))
            il_seterr("%s: malformed JSON near byte %ld", where, (long)(at - text));
        else
            il_seterr("%s: not a JSON object", where);
        cJSON_Delete(root);
        return -1;
    }
    int rc = -1;
    double r, alpha;
    bool fifo;
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "peft_type");
    if (!cJSON_IsString(pt) || strcmp(pt->valuestring, "LORA") != 0) {
        const char *q = cJSON_IsString(pt) ? "\"" : "";
        il_seterr("%s: peft_type is %s%s%s, expected \"LORA\"", where, q,
                  cJSON_IsString(pt) ? pt->valuestring : "missing", q);
        goto done;
    }
    /* defaults are PEFT's: r 8, lora_alpha 8 */
    if (get_number(root, "r", 8, &r, where) || get_number(root, "lora_alpha", 8, &alpha, where))
        goto done;
    if (r < 1 || r != floor(r) || r > 1e6) {
        il_seterr("%s: r = %g: must be a positive integer", where, r);
        goto done;
    }
    c->r = (int)r;
    c->alpha = alpha;
    if (get_bool(root, "use_rslora", &c->rslora, where) ||
        get_bool(root, "fan_in_fan_out", &fifo, where))
        goto done;
    if (fifo)
        lora_log(o, true, "%s: fan_in_fan_out = true ignored: T5's projections are nn.Linear "
                 "(PEFT resets it to false as well)", where);
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(root, "bias");
    bool bias_none = cJSON_IsString(bias) && strcmp(bias->valuestring, "none") == 0;
    if (bias && !cJSON_IsNull(bias) && !bias_none) {
        il_seterr("%s: bias = %s: only \"none\" is supported (T5 has no biases to train)", where,
                  cJSON_IsString(bias) ? bias->valuestring : "(not a string)");
        goto done;
    }
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(root, "target_modules");
    if (parse_selector(&c->target, tm, where, "target_modules") ||
        parse_selector(&c->exclude, cJSON_GetObjectItemCaseSensitive(root, "exclude_modules"),
                       where, "exclude_modules"))
        goto done;
    if (!c->target.present) {
        /* PEFT's default for model type t5 */
        lora_log(o, false, "%s: target_modules not set: using PEFT's default for T5, "
                 "[\"q\", \"v\"]", where);
        static const char *const dflt[] = {"q", "v"};
        if (!(c->target.list = il_calloc(2, sizeof *c->target.list))) goto done;
        c->target.present = true;
        for (int i = 0; i < 2; i++)
            if (!(c->target.list[c->target.n++] = il_strdup(dflt[i]))) goto done;
    }
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rank_pattern");
    const cJSON *ap = cJSON_GetObjectItemCaseSensitive(root, "alpha_pattern");
    if (parse_patterns(&c->rank_pat, &c->n_rank_pat, rp, true, where, "rank_pattern") ||
        parse_patterns(&c->alpha_pat, &c->n_alpha_pat, ap, false, where, "alpha_pattern") ||
        parse_layers(c, root, where) || check_init(root, where) || check_other_keys(root, where, o))
        goto done;
    const cJSON *bm = cJSON_GetObjectItemCaseSensitive(root, "base_model_name_or_path");
    if (cJSON_IsString(bm) && bm->valuestring[0] && !(c->base_model = il_strdup(bm->valuestring)))
        goto done;
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc) lora_config_free(c);
    return rc;
}

/* Whether PEFT would put a LoRA layer on module `name` of layer `layer`. */
bool lora_config_targets(const lora_config *c, const char *name, int layer) {
    if (!lora_selector_match(&c->target, name)) return false;
    if (c->exclude.present && lora_selector_match(&c->exclude, name)) return false;
    /* PEFT applies layers_to_transform only to list entries matched as a suffix, not to a
     * regex nor to an entry equal to the full module name */
    bool exact = false;
    for (int i = 0; i < c->target.n && !exact; i++) exact = strcmp(c->target.list[i], name) == 0;
    if (c->layers && !c->target.is_regex && !exact) {
        for (int i = 0; i < c->n_layers; i++)
            if (c->layers[i] == layer) return true;
        return false;
    }
    return true;
}
