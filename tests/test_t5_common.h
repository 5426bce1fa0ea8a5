/* test_t5_common.h - helpers shared by the T5 tests: golden batches from
 * tests/golden/<dir>/forward.{json,safetensors}, and scratch checkpoints written to a
 * temporary directory (modified copies of the tiny model's tensors). */
#ifndef ILORA_TEST_T5_COMMON_H
#define ILORA_TEST_T5_COMMON_H

#include "check.h"
#include "t5.h"
#include "tensors.h"

#include <cJSON.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ===== golden batch ===== */

#define GB 3 /* batch items in forward.json */

typedef struct {
    cJSON *json;              /* forward.json */
    il_tensor_file *st;       /* forward.safetensors */
    float *owned[64];
    int n_owned;
    int S, T;                 /* padded input / decoder lengths (187, 6) */
    int32_t ids_buf[GB][512], dec_buf[GB][64], lab_buf[GB][64];
    const int32_t *ids[GB], *dec[GB], *labels[GB];
    int lens[GB], dec_lens[GB], label_lens[GB]; /* labels: -100 tail stripped */
    int32_t labpad_buf[GB][64];
    const int32_t *labels_padded[GB];           /* with -100, length T */
    int labpad_lens[GB];
} golden;

static inline char *tpath(const char *rel) { return il_sprintf("%s/%s", TEST_DATA, rel); }

static inline const float *golden_f32(golden *g, const char *name, int64_t *numel) {
    const il_tensor *t = il_tensor_file_find(g->st, name);
    if (!t) {
        fprintf(stderr, "golden tensor '%s' missing\n", name);
        return NULL;
    }
    float *owned = NULL;
    const float *p = il_tensor_f32(t, g->st->path, -1, NULL, &owned);
    if (owned && g->n_owned < 64) g->owned[g->n_owned++] = owned;
    if (numel) *numel = il_tensor_numel(t);
    return p;
}

static inline const int64_t *golden_i64(golden *g, const char *name, int64_t *shape) {
    const il_tensor *t = il_tensor_file_find(g->st, name);
    if (!t || t->dtype != IL_I64 || t->ndim != 2) return NULL;
    shape[0] = t->shape[0];
    shape[1] = t->shape[1];
    return (const int64_t *)t->data;
}

static inline void golden_free(golden *g) {
    cJSON_Delete(g->json);
    il_tensor_file_free(g->st);
    for (int i = 0; i < g->n_owned; i++) free(g->owned[i]);
    memset(g, 0, sizeof *g);
}

static inline int golden_load(golden *g, const char *dir) {
    memset(g, 0, sizeof *g);
    char *jp = il_sprintf("%s/golden/%s/forward.json", TEST_DATA, dir);
    char *sp = il_sprintf("%s/golden/%s/forward.safetensors", TEST_DATA, dir);
    size_t len;
    char *text = il_read_file(jp, &len);
    if (text) g->json = cJSON_Parse(text);
    free(text);
    g->st = il_safetensors_open(sp);
    free(jp);
    free(sp);
    if (!g->json || !g->st) {
        fprintf(stderr, "cannot load goldens of %s: %s\n", dir, il_errmsg());
        golden_free(g);
        return -1;
    }
    int64_t sh[2], sm[2], sl[2], sd[2];
    const int64_t *ids = golden_i64(g, "input_ids", sh), *mask = golden_i64(g, "attention_mask", sm);
    const int64_t *lab = golden_i64(g, "labels", sl), *dec = golden_i64(g, "decoder_input_ids", sd);
    if (!ids || !mask || !lab || !dec || sh[0] != GB || sh[1] > 512 || sl[1] > 64) {
        fprintf(stderr, "unexpected golden batch layout in %s\n", dir);
        golden_free(g);
        return -1;
    }
    g->S = (int)sh[1];
    g->T = (int)sl[1];
    for (int i = 0; i < GB; i++) {
        int n = 0;
        for (int j = 0; j < g->S; j++)
            if (mask[i * g->S + j]) g->ids_buf[i][n++] = (int32_t)ids[i * g->S + j];
        g->lens[i] = n;
        g->ids[i] = g->ids_buf[i];
        for (int j = 0; j < g->T; j++) {
            g->dec_buf[i][j] = (int32_t)dec[i * g->T + j];
            g->labpad_buf[i][j] = (int32_t)lab[i * g->T + j];
        }
        g->dec[i] = g->dec_buf[i];
        g->dec_lens[i] = g->T;
        g->labels_padded[i] = g->labpad_buf[i];
        g->labpad_lens[i] = g->T;
        int m = 0;
        while (m < g->T && lab[i * g->T + m] != -100) {
            g->lab_buf[i][m] = (int32_t)lab[i * g->T + m];
            m++;
        }
        g->label_lens[i] = m;
        g->labels[i] = g->lab_buf[i];
    }
    return 0;
}

static inline double json_num(const cJSON *o, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

/* ===== scratch checkpoints ===== */

typedef struct {
    char dir[256];
    char *files[8];
    int n_files;
} tmpdir;

static inline int tmpdir_make(tmpdir *t) {
    memset(t, 0, sizeof *t);
    const char *base = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/ilora_t5_XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(t->dir) ? 0 : -1;
}

static inline char *tmpdir_file(tmpdir *t, const char *name) {
    char *p = il_sprintf("%s/%s", t->dir, name);
    bool known = false;
    for (int i = 0; i < t->n_files; i++)
        if (strcmp(t->files[i], p) == 0) known = true;
    if (!known && t->n_files < 8) t->files[t->n_files++] = il_strdup(p);
    return p;
}

static inline void tmpdir_remove(tmpdir *t) {
    for (int i = 0; i < t->n_files; i++) {
        unlink(t->files[i]);
        free(t->files[i]);
    }
    rmdir(t->dir);
    t->n_files = 0;
}

static inline int write_text(tmpdir *t, const char *name, const char *text) {
    char *p = tmpdir_file(t, name);
    int rc = il_write_file_atomic(p, text, strlen(text));
    free(p);
    return rc;
}

/* The tiny model's config.json with edits: set[k] = "key=json" ("key=" deletes). */
static inline int write_config(tmpdir *t, const char *src_dir, const char *const *set, int n) {
    char *src = il_sprintf("%s/golden/%s/config.json", TEST_DATA, src_dir);
    size_t len;
    char *text = il_read_file(src, &len);
    free(src);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return -1;
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(set[i], '=');
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - set[i]), set[i]);
        cJSON_DeleteItemFromObjectCaseSensitive(root, key);
        if (eq[1]) cJSON_AddItemToObject(root, key, cJSON_Parse(eq + 1));
    }
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    int rc = write_text(t, "config.json", out);
    free(out);
    return rc;
}

/* A list of tensors being assembled into a checkpoint; data buffers it allocates are
 * owned here. */
typedef struct {
    il_tensor t[128];
    int n;
    void *owned[128];
    int n_owned;
} tlist;

static inline void tlist_from_file(tlist *l, const il_tensor_file *f) {
    memset(l, 0, sizeof *l);
    for (int i = 0; i < f->n_tensors && i < 128; i++) l->t[l->n++] = f->tensors[i];
}

static inline il_tensor *tlist_find(tlist *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->t[i].name, name) == 0) return &l->t[i];
    return NULL;
}

static inline void tlist_remove(tlist *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->t[i].name, name) == 0) {
            l->t[i] = l->t[--l->n];
            return;
        }
}

static inline void *tlist_alloc(tlist *l, size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (l->n_owned < 128) l->owned[l->n_owned++] = p;
    return p;
}

static inline void tlist_free(tlist *l) {
    for (int i = 0; i < l->n_owned; i++) free(l->owned[i]);
    l->n_owned = 0;
}

static inline int tlist_write(tlist *l, tmpdir *t, const char *name) {
    char *p = tmpdir_file(t, name);
    int rc = il_safetensors_write(p, l->t, l->n, NULL, NULL, 0);
    if (rc) fprintf(stderr, "writing %s: %s\n", p, il_errmsg());
    free(p);
    return rc;
}

/* Open the tiny model's F32 weights. */
static inline il_tensor_file *tiny_weights(void) {
    char *p = tpath("golden/t5-tiny/model.safetensors");
    il_tensor_file *f = il_safetensors_open(p);
    free(p);
    return f;
}

static inline bool contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

#endif
