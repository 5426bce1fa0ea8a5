/* lora_compose.c - composing adapters (LoraHub's linear rule, the exact delta rule) into a
 * preallocated adapter, and saving an adapter as a PEFT directory. */
#include "lora_internal.h"
#include "t5_merge.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *il_lora_rule_name(il_lora_rule rule) {
    return rule == IL_LORA_DELTA ? "delta" : "linear";
}

int il_lora_rule_parse(const char *s, il_lora_rule *rule) {
    if (s && strcmp(s, "linear") == 0) *rule = IL_LORA_LINEAR;
    else if (s && strcmp(s, "delta") == 0) *rule = IL_LORA_DELTA;
    else {
        il_seterr("unknown composition rule '%s' (expected linear or delta)", s ? s : "(null)");
        return -1;
    }
    return 0;
}

/* ===== planning: which modules, which ranks ===== */

static bool same_scale(float a, float b) {
    return fabsf(a - b) <= 1e-6f * fmaxf(fabsf(a), fabsf(b));
}

static int check_inputs(int n, const il_lora *const *src) {
    if (n < 1 || !src) {
        il_seterr("LoRA composition: no adapters given");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!src[i]) {
            il_seterr("LoRA composition: adapter %d is NULL", i);
            return -1;
        }
        if (!lora_same_shape(&src[i]->cfg, &src[0]->cfg)) {
            il_seterr("LoRA composition: adapters %s and %s were loaded for base models of "
                      "different shapes", src[0]->name, src[i]->name);
            return -1;
        }
    }
    return 0;
}

/* linear: every adapter has exactly the modules of src[0], with the same rank and scale. */
static int check_linear(int n, const il_lora *const *src) {
    const il_lora *a = src[0];
    for (int i = 1; i < n; i++) {
        const il_lora *b = src[i];
        for (int k = 0; k < 2; k++) { /* a's modules in b, then b's in a */
            const il_lora *x = k ? b : a, *y = k ? a : b;
            for (int j = 0; j < x->n_modules; j++) {
                const il_lora_module *mx = &x->mods[j], *my = il_lora_find(y, &mx->id);
                if (!my) {
                    il_seterr("LoRA linear composition: adapter %s adapts module '%s' but "
                              "adapter %s does not (the linear rule needs the same target "
                              "modules; the delta rule allows this)", x->name, mx->name, y->name);
                    return -1;
                }
                if (mx->r != my->r) {
                    il_seterr("LoRA linear composition: module '%s' has rank %d in adapter %s "
                              "but rank %d in adapter %s (the linear rule needs equal ranks; "
                              "the delta rule allows this)", mx->name, a == x ? mx->r : my->r,
                              a->name, a == x ? my->r : mx->r, b->name);
                    return -1;
                }
                if (!same_scale(mx->scale, my->scale)) {
                    il_seterr("LoRA linear composition: module '%s' has scale %g in adapter %s "
                              "but %g in adapter %s (the linear rule needs equal lora_alpha/r)",
                              mx->name, (double)(a == x ? mx->scale : my->scale), a->name,
                              (double)(a == x ? my->scale : mx->scale), b->name);
                    return -1;
                }
            }
        }
    }
    return 0;
}

/* delta: total rank of module id over the adapters that have it (0: none has it). */
static int delta_rank(int n, const il_lora *const *src, const il_t5_linear_id *id) {
    int r = 0;
    for (int i = 0; i < n; i++) {
        const il_lora_module *m = il_lora_find(src[i], id);
        if (m) r += m->r;
    }
    return r;
}

/* Give every module of a its slice of one zeroed buffer. */
static int layout(il_lora *a) {
    size_t total = 0;
    for (int i = 0; i < a->n_modules; i++) {
        const il_lora_module *m = &a->mods[i];
        total += (size_t)m->r * ((size_t)m->id.in + (size_t)m->id.out);
    }
    if (!(a->buf = il_calloc(total ? total : 1, sizeof *a->buf))) return -1;
    float *p = a->buf;
    for (int i = 0; i < a->n_modules; i++) {
        il_lora_module *m = &a->mods[i];
        m->A = p;
        p += (size_t)m->r * m->id.in;
        m->B = p;
        p += (size_t)m->r * m->id.out;
    }
    return 0;
}

/* base_model_name_or_path shared by all inputs, or NULL. */
static const char *common_base_model(int n, const il_lora *const *src) {
    const char *b = src[0]->base_model;
    for (int i = 1; i < n && b; i++)
        if (!src[i]->base_model || strcmp(src[i]->base_model, b) != 0) b = NULL;
    return b;
}

static char *composed_name(int n, const il_lora *const *src, il_lora_rule rule) {
    il_buf b = {0};
    if (il_buf_printf(&b, "%s(", il_lora_rule_name(rule))) return NULL;
    for (int i = 0; i < n && i < 4; i++)
        if (il_buf_printf(&b, "%s%s", i ? ", " : "", src[i]->name)) goto fail;
    if (il_buf_printf(&b, "%s)", n > 4 ? ", ..." : "")) goto fail;
    return b.data;
fail:
    il_buf_free(&b);
    return NULL;
}

il_lora *il_lora_compose_new(int n, const il_lora *const *src, il_lora_rule rule) {
    if (check_inputs(n, src)) return NULL;
    if (rule != IL_LORA_LINEAR && rule != IL_LORA_DELTA) {
        il_seterr("LoRA composition: unknown rule %d", (int)rule);
        return NULL;
    }
    if (rule == IL_LORA_LINEAR && check_linear(n, src)) return NULL;
    const il_t5_config *cfg = &src[0]->cfg;
    int n_ids = il_t5_linear_ids(cfg, NULL, 0);
    il_t5_linear_id *ids = il_calloc(n_ids > 0 ? (size_t)n_ids : 1, sizeof *ids);
    char *name = composed_name(n, src, rule);
    il_lora *a = NULL;
    if (!ids || !name) goto fail;
    il_t5_linear_ids(cfg, ids, n_ids);
    /* modules in il_t5_linear_ids order: src[0]'s for linear, the union for delta */
    int count = 0;
    for (int k = 0; k < n_ids; k++)
        count += rule == IL_LORA_LINEAR ? il_lora_find(src[0], &ids[k]) != NULL
                                        : delta_rank(n, src, &ids[k]) > 0;
    if (!(a = lora_alloc(name, cfg, count))) goto fail;
    int j = 0;
    for (int k = 0; k < n_ids; k++) {
        const il_lora_module *m0 = il_lora_find(src[0], &ids[k]);
        int r = rule == IL_LORA_LINEAR ? (m0 ? m0->r : 0) : delta_rank(n, src, &ids[k]);
        if (r == 0) continue;
        il_lora_module *m = &a->mods[j++];
        char mname[96];
        il_t5_linear_name(&ids[k], mname, sizeof mname);
        if (!(m->name = il_strdup(mname))) goto fail;
        m->id = ids[k];
        m->r = r;
        /* linear keeps the inputs' (common) scale; delta folds every s_i into A' */
        m->alpha = rule == IL_LORA_LINEAR ? m0->alpha : (float)r;
        m->scale = rule == IL_LORA_LINEAR ? m0->scale : 1.0f;
    }
    a->use_rslora = rule == IL_LORA_LINEAR && src[0]->use_rslora;
    a->composed = true;
    a->rule = rule;
    a->n_src = n;
    if (il_lora_set_base_model_name(a, common_base_model(n, src))) goto fail;
    if (layout(a) || lora_index(a)) goto fail;
    free(ids);
    free(name);
    return a;
fail:
    free(ids);
    free(name);
    il_lora_free(a);
    return NULL;
}

/* ===== computing ===== */

/* dst's layout fits src (same modules and ranks as planned), checked on every call: it is
 * O(n * modules), nothing next to the arithmetic. */
static int check_fits(const il_lora *dst, int n, const il_lora *const *src) {
    if (!dst || !dst->composed) {
        il_seterr("LoRA composition: the destination was not made by il_lora_compose_new");
        return -1;
    }
    if (check_inputs(n, src)) return -1;
    if (n != dst->n_src || !lora_same_shape(&dst->cfg, &src[0]->cfg)) {
        il_seterr("LoRA composition: %s was planned for %d adapters of another shape, got %d",
                  dst->name, dst->n_src, n);
        return -1;
    }
    if (dst->rule == IL_LORA_LINEAR) {
        if (check_linear(n, src)) return -1;
        if (src[0]->n_modules != dst->n_modules) goto mismatch;
        for (int j = 0; j < dst->n_modules; j++) {
            const il_lora_module *s = il_lora_find(src[0], &dst->mods[j].id);
            if (!s || s->r != dst->mods[j].r || !same_scale(s->scale, dst->mods[j].scale))
                goto mismatch;
        }
        return 0;
    }
    int total = 0;
    for (int i = 0; i < n; i++) total += src[i]->n_modules;
    for (int j = 0; j < dst->n_modules; j++) {
        const il_lora_module *m = &dst->mods[j];
        if (delta_rank(n, src, &m->id) != m->r) goto mismatch;
        for (int i = 0; i < n; i++) total -= il_lora_find(src[i], &m->id) != NULL;
    }
    if (total == 0) return 0; /* every input module has its place in dst */
mismatch:
    il_seterr("LoRA composition: the adapters' modules or ranks differ from those %s was "
              "planned for (make a new one with il_lora_compose_new)", dst->name);
    return -1;
}

/* o = w * x (first) or o += w * x; plain loops the compiler vectorises. Each product is
 * rounded before the add, as LoraHub's torch code does. */
static void axpy_or_set(float *restrict o, const float *restrict x, float w, size_t n, bool first) {
    if (first)
        for (size_t i = 0; i < n; i++) o[i] = w * x[i];
    else
        for (size_t i = 0; i < n; i++) o[i] += w * x[i];
}

static void compose_linear(il_lora_module *m, int n, const il_lora *const *src, const float *w) {
    float *A = (float *)m->A, *B = (float *)m->B;
    const size_t na = (size_t)m->r * m->id.in, nb = (size_t)m->id.out * m->r;
    for (int i = 0; i < n; i++) {
        const il_lora_module *s = il_lora_find(src[i], &m->id);
        axpy_or_set(A, s->A, w[i], na, i == 0);
        axpy_or_set(B, s->B, w[i], nb, i == 0);
    }
}

/* A' = [w_1 s_1 A_1; ...], B' = [B_1 ... B_N]: B' A' = sum_i w_i s_i B_i A_i. */
static void compose_delta(il_lora_module *m, int n, const il_lora *const *src, const float *w) {
    float *A = (float *)m->A, *B = (float *)m->B;
    const int R = m->r, in = m->id.in, out = m->id.out;
    int off = 0;
    for (int i = 0; i < n; i++) {
        const il_lora_module *s = il_lora_find(src[i], &m->id);
        if (!s) continue;
        axpy_or_set(A + (size_t)off * in, s->A, w[i] * s->scale, (size_t)s->r * in, true);
        for (int o = 0; o < out; o++)
            memcpy(B + (size_t)o * R + off, s->B + (size_t)o * s->r, sizeof(float) * (size_t)s->r);
        off += s->r;
    }
}

int il_lora_compose_into(il_lora *dst, int n, const il_lora *const *src, const float *w) {
    if (check_fits(dst, n, src)) return -1;
    if (!w) {
        il_seterr("LoRA composition: no weights given");
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (!isfinite(w[i])) {
            il_seterr("LoRA composition: weight %d (adapter %s) is not finite", i, src[i]->name);
            return -1;
        }
    size_t work = 0; /* multiply-adds, to decide whether threads pay off */
    for (int j = 0; j < dst->n_modules; j++)
        work += (size_t)dst->mods[j].r * (dst->mods[j].id.in + dst->mods[j].id.out);
    if (dst->rule == IL_LORA_LINEAR) work *= (size_t)n;
    const int nm = dst->n_modules;
    const bool linear = dst->rule == IL_LORA_LINEAR;
#pragma omp parallel for schedule(dynamic, 1) if (work > (1u << 18))
    for (int j = 0; j < nm; j++) {
        if (linear)
            compose_linear(&dst->mods[j], n, src, w);
        else
            compose_delta(&dst->mods[j], n, src, w);
    }
    return 0;
}

il_lora *il_lora_compose(int n, const il_lora *const *src, const float *w, il_lora_rule rule) {
    il_lora *a = il_lora_compose_new(n, src, rule);
    if (a && il_lora_compose_into(a, n, src, w)) {
        il_lora_free(a);
        return NULL;
    }
    return a;
}

/* ===== saving a PEFT directory ===== */

/* target_modules: the short names (["q", "v"]) when they select exactly a's modules in the
 * base model, else the full module names (always exact). */
static cJSON *target_modules_json(const il_lora *a) {
    cJSON *list = cJSON_CreateArray();
    if (!list) return NULL;
    int n_ids = il_t5_linear_ids(&a->cfg, NULL, 0);
    il_t5_linear_id *ids = il_calloc(n_ids > 0 ? (size_t)n_ids : 1, sizeof *ids);
    if (!ids) goto fail;
    il_t5_linear_ids(&a->cfg, ids, n_ids);
    for (int j = 0; j < a->n_modules; j++) {
        const char *s = strrchr(a->mods[j].name, '.') + 1;
        bool seen = false;
        const cJSON *e;
        cJSON_ArrayForEach(e, list) seen |= strcmp(e->valuestring, s) == 0;
        if (!seen && !cJSON_AddItemToArray(list, cJSON_CreateString(s))) goto fail;
    }
    bool exact = true;
    for (int k = 0; k < n_ids && exact; k++) {
        char name[96];
        il_t5_linear_name(&ids[k], name, sizeof name);
        const char *s = strrchr(name, '.') + 1;
        bool matched = false;
        const cJSON *e;
        cJSON_ArrayForEach(e, list) matched |= strcmp(e->valuestring, s) == 0;
        exact = matched == (il_lora_find(a, &ids[k]) != NULL);
    }
    free(ids);
    ids = NULL;
    if (exact) return list;
    cJSON_Delete(list);
    if (!(list = cJSON_CreateArray())) return NULL;
    for (int j = 0; j < a->n_modules; j++)
        if (!cJSON_AddItemToArray(list, cJSON_CreateString(a->mods[j].name))) goto fail;
    return list;
fail:
    free(ids);
    cJSON_Delete(list);
    return NULL;
}

/* "encoder.block.0.layer.0.SelfAttention.q" as a regex that matches only itself. */
static char *escaped(const char *name) {
    il_buf b = {0};
    for (const char *p = name; *p; p++)
        if ((*p == '.' ? il_buf_puts(&b, "\\.") : il_buf_append(&b, p, 1))) {
            il_buf_free(&b);
            return NULL;
        }
    return b.data;
}

/* Attach a non-empty object under key, else drop it. */
static void add_or_delete(cJSON *root, const char *key, cJSON *obj) {
    if (cJSON_GetArraySize(obj))
        cJSON_AddItemToObject(root, key, obj);
    else
        cJSON_Delete(obj);
}

/* The (r, alpha) most modules use becomes r / lora_alpha; the others go to rank_pattern /
 * alpha_pattern (written only when needed, so that older PEFT versions can read the file). */
static int add_rank_alpha(cJSON *root, const il_lora *a) {
    int best = 0, best_count = 0;
    for (int j = 0; j < a->n_modules; j++) {
        int c = 0;
        for (int k = 0; k < a->n_modules; k++)
            c += a->mods[k].r == a->mods[j].r && a->mods[k].alpha == a->mods[j].alpha;
        if (c > best_count) best = j, best_count = c;
    }
    const int r = a->mods[best].r;
    const float alpha = a->mods[best].alpha;
    cJSON *rp = cJSON_CreateObject(), *ap = cJSON_CreateObject();
    if (!rp || !ap) goto fail;
    for (int j = 0; j < a->n_modules; j++) {
        const il_lora_module *m = &a->mods[j];
        if (m->r == r && m->alpha == alpha) continue;
        char *key = escaped(m->name);
        if (!key) goto fail;
        bool ok = (m->r == r || cJSON_AddNumberToObject(rp, key, m->r)) &&
                  (m->alpha == alpha || cJSON_AddNumberToObject(ap, key, m->alpha));
        free(key);
        if (!ok) goto fail;
    }
    if (!cJSON_AddNumberToObject(root, "r", r) ||
        !cJSON_AddNumberToObject(root, "lora_alpha", alpha))
        goto fail;
    add_or_delete(root, "rank_pattern", rp);
    add_or_delete(root, "alpha_pattern", ap);
    return 0;
fail:
    cJSON_Delete(rp);
    cJSON_Delete(ap);
    return -1;
}

static char *config_json(const il_lora *a) {
    cJSON *root = cJSON_CreateObject();
    cJSON *tm = target_modules_json(a);
    char *text = NULL;
    if (!root || !tm) {
        cJSON_Delete(tm);
        goto done;
    }
    if (a->base_model) cJSON_AddStringToObject(root, "base_model_name_or_path", a->base_model);
    else cJSON_AddNullToObject(root, "base_model_name_or_path");
    cJSON_AddStringToObject(root, "bias", "none");
    cJSON_AddBoolToObject(root, "fan_in_fan_out", false);
    cJSON_AddBoolToObject(root, "inference_mode", true);
    cJSON_AddBoolToObject(root, "init_lora_weights", true);
    cJSON_AddNullToObject(root, "layers_pattern");
    cJSON_AddNullToObject(root, "layers_to_transform");
    cJSON_AddNumberToObject(root, "lora_dropout", 0.0);
    cJSON_AddNullToObject(root, "modules_to_save");
    cJSON_AddStringToObject(root, "peft_type", "LORA");
    if (add_rank_alpha(root, a)) {
        cJSON_Delete(tm);
        goto done;
    }
    cJSON_AddNullToObject(root, "revision");
    cJSON_AddItemToObject(root, "target_modules", tm);
    cJSON_AddStringToObject(root, "task_type", "SEQ_2_SEQ_LM");
    if (a->use_rslora) cJSON_AddBoolToObject(root, "use_rslora", true);
    text = cJSON_Print(root);
    if (!text) il_seterr("out of memory");
done:
    cJSON_Delete(root);
    return text;
}

/* adapter_model.safetensors + adapter_config.json into dir (which exists). */
static int write_files(const il_lora *a, const char *dir) {
    il_tensor *t = il_calloc(2 * (size_t)a->n_modules + 1, sizeof *t);
    char *text = config_json(a);
    char *wpath = il_path_join(dir, "adapter_model.safetensors");
    char *cpath = il_path_join(dir, "adapter_config.json");
    int rc = -1, named = 0;
    if (!t || !text || !wpath || !cpath) goto done;
    for (int j = 0; j < a->n_modules; j++) {
        const il_lora_module *m = &a->mods[j];
        for (int k = 0; k < 2; k++) {
            il_tensor *x = &t[2 * j + k];
            const char ab = k ? 'B' : 'A';
            if (!(x->name = il_sprintf("base_model.model.%s.lora_%c.weight", m->name, ab)))
                goto done;
            named++;
            x->dtype = IL_F32;
            x->ndim = 2;
            x->shape[0] = k ? m->id.out : m->r;
            x->shape[1] = k ? m->r : m->id.in;
            x->data = k ? m->B : m->A;
            x->nbytes = sizeof(float) * (size_t)m->r * (size_t)(k ? m->id.out : m->id.in);
        }
    }
    const char *mk[] = {"format"}, *mv[] = {"pt"};
    if (il_safetensors_write(wpath, t, 2 * a->n_modules, mk, mv, 1)) goto done;
    rc = il_write_file_atomic(cpath, text, strlen(text));
done:
    for (int i = 0; i < named; i++) free(t[i].name);
    free(t);
    cJSON_free(text);
    free(wpath);
    free(cpath);
    return rc;
}

static void remove_dir_files(const char *dir) {
    static const char *const names[] = {"adapter_model.safetensors", "adapter_config.json"};
    for (int i = 0; i < 2; i++) {
        char *p = il_path_join(dir, names[i]);
        if (p) unlink(p);
        free(p);
    }
    rmdir(dir);
}

int il_lora_save(const il_lora *a, const char *dir) {
    if (!a || !dir || !*dir) {
        il_seterr("LoRA save: invalid arguments");
        return -1;
    }
    if (a->n_modules == 0) {
        il_seterr("%s: refusing to save an adapter without modules", dir);
        return -1;
    }
    if (il_dir_exists(dir)) {
        /* a stale .bin next to the new safetensors would describe another adapter */
        char *bin = il_path_join(dir, "adapter_model.bin");
        bool stale = bin && il_file_exists(bin);
        free(bin);
        if (stale) {
            il_seterr("%s: contains adapter_model.bin of another adapter; remove it or save "
                      "to a new directory", dir);
            return -1;
        }
        if (write_files(a, dir)) return -1;
        return 0;
    }
    /* new directory: fill a temporary sibling, then rename it into place (mkdir rather than
     * mkdtemp so that the umask decides the permissions, as for any new directory) */
    char *tmp = NULL;
    for (int attempt = 0; attempt < 100; attempt++) {
        free(tmp);
        if (!(tmp = il_sprintf("%s.tmp.%ld.%d", dir, (long)getpid(), attempt))) return -1;
        if (mkdir(tmp, 0777) == 0) break;
        if (errno != EEXIST || attempt == 99) {
            il_seterr("%s: cannot create directory: %s", dir, strerror(errno));
            free(tmp);
            return -1;
        }
    }
    int rc = write_files(a, tmp);
    if (rc == 0 && rename(tmp, dir) != 0) {
        il_seterr("%s: cannot create directory: %s", dir, strerror(errno));
        rc = -1;
    }
    if (rc) remove_dir_files(tmp);
    free(tmp);
    return rc;
}
