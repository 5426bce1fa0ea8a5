/* tensors.c - dtypes, tensor files (name index, owned buffers), float32 views and
 * checkpoint directories (single file or sharded with an index). See tensors.h.
 * The format readers live in safetensors.c and torchbin.c. */
#include "tensors.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtypes ---- */

static const struct {
    const char *name;
    size_t size;
    bool is_float;
} dtype_info[IL_DTYPE_COUNT] = {
    [IL_F32] = {"F32", 4, true},   [IL_F16] = {"F16", 2, true},
    [IL_BF16] = {"BF16", 2, true}, [IL_F64] = {"F64", 8, true},
    [IL_I64] = {"I64", 8, false},  [IL_I32] = {"I32", 4, false},
    [IL_I16] = {"I16", 2, false},  [IL_I8] = {"I8", 1, false},
    [IL_U8] = {"U8", 1, false},    [IL_BOOL] = {"BOOL", 1, false},
};

static bool dtype_valid(il_dtype t) { return (unsigned)t < IL_DTYPE_COUNT; }

const char *il_dtype_name(il_dtype t) { return dtype_valid(t) ? dtype_info[t].name : "?"; }

size_t il_dtype_size(il_dtype t) { return dtype_valid(t) ? dtype_info[t].size : 0; }

int il_dtype_from_name(const char *s, il_dtype *out) {
    for (int i = 0; i < IL_DTYPE_COUNT; i++) {
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (il_dtype)i;
            return 0;
        }
    }
    return -1;
}

int64_t il_tensor_numel(const il_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0 || __builtin_mul_overflow(n, t->shape[i], &n)) return -1;
    }
    return n;
}

/* ---- name index: open addressing, slots hold tensor index + 1 (0 = empty) ---- */

struct il_name_index {
    size_t cap; /* power of two, at least twice the number of names */
    int *slots;
};

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Slot holding `name`, or the empty slot where it would go. */
static size_t index_probe(const struct il_name_index *ix, const il_tensor *tensors,
                          const char *name) {
    size_t i = (size_t)name_hash(name) & (ix->cap - 1);
    while (ix->slots[i] && strcmp(tensors[ix->slots[i] - 1].name, name) != 0)
        i = (i + 1) & (ix->cap - 1);
    return i;
}

int il_tensor_file_build_index(il_tensor_file *f) {
    struct il_name_index *ix = il_calloc(1, sizeof *ix);
    if (!ix) return -1;
    ix->cap = 16;
    while (ix->cap < 2 * (size_t)f->n_tensors) ix->cap *= 2;
    ix->slots = il_calloc(ix->cap, sizeof *ix->slots);
    if (!ix->slots) { free(ix); return -1; }
    for (int k = 0; k < f->n_tensors; k++) {
        size_t i = index_probe(ix, f->tensors, f->tensors[k].name);
        if (ix->slots[i]) {
            il_seterr("%s: duplicate tensor name '%s'", f->path, f->tensors[k].name);
            free(ix->slots);
            free(ix);
            return -1;
        }
        ix->slots[i] = k + 1;
    }
    if (f->index) { free(f->index->slots); free(f->index); }
    f->index = ix;
    return 0;
}

const il_tensor *il_tensor_file_find(const il_tensor_file *f, const char *name) {
    if (!f || !name) return NULL;
    if (!f->index) { /* reader has not built the index (yet): linear scan */
        for (int k = 0; k < f->n_tensors; k++)
            if (strcmp(f->tensors[k].name, name) == 0) return &f->tensors[k];
        return NULL;
    }
    size_t i = index_probe(f->index, f->tensors, name);
    return f->index->slots[i] ? &f->tensors[f->index->slots[i] - 1] : NULL;
}

/* ---- tensor files ---- */

int il_tensor_file_own(il_tensor_file *f, void *buf) {
    void **o = il_realloc(f->owned, ((size_t)f->n_owned + 1) * sizeof *o);
    if (!o) return -1; /* the caller still owns buf */
    f->owned = o;
    f->owned[f->n_owned++] = buf;
    return 0;
}

void il_tensor_file_free(il_tensor_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    for (int i = 0; i < f->n_owned; i++) free(f->owned[i]);
    free(f->owned);
    if (f->index) { free(f->index->slots); free(f->index); }
    il_mmap_close(&f->map);
    free(f->path);
    free(f);
}

il_tensor_file *il_tensor_file_open(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) { il_seterr("%s: cannot open: %s", path, strerror(errno)); return NULL; }
    unsigned char magic[4] = {0};
    size_t got = fread(magic, 1, sizeof magic, fp);
    fclose(fp);
    /* torch.save writes a zip archive; a safetensors file starts with its header length,
     * whose low bytes can never be "PK\3\4" for a sane (< 100 MB) header. */
    if (got == 4 && memcmp(magic, "PK\x03\x04", 4) == 0) return il_torchbin_open(path);
    /* Legacy (pre-1.6) torch.save starts with a pickled magic number (0x80 0x02 0x8a 0x0a);
     * as a safetensors header length those bytes would be absurd, so route it to the torch
     * reader, which explains that the format is unsupported. */
    if (got == 4 && memcmp(magic, "\x80\x02\x8a\x0a", 4) == 0) return il_torchbin_open(path);
    return il_safetensors_open(path);
}

/* ---- float32 views ---- */

static void format_shape(char *out, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

static int check_shape(const il_tensor *t, const char *where, int expect_ndim,
                       const int64_t *expect_shape) {
    bool ok = t->ndim == expect_ndim;
    for (int i = 0; ok && expect_shape && i < expect_ndim; i++)
        ok = t->shape[i] == expect_shape[i];
    if (ok) return 0;
    char want[256], got[256];
    if (expect_shape) format_shape(want, sizeof want, expect_ndim, expect_shape);
    else snprintf(want, sizeof want, "%d dimensions", expect_ndim);
    format_shape(got, sizeof got, t->ndim, t->shape);
    il_seterr("%s: tensor '%s': expected shape %s, got %s", where, t->name, want, got);
    return -1;
}

static void convert_to_f32(float *dst, const il_tensor *t, size_t n) {
    const uint8_t *src = t->data; /* may be unaligned: read every element with memcpy */
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case IL_F32: memcpy(&dst[i], src + 4 * i, 4); break;
        case IL_F64: { double d; memcpy(&d, src + 8 * i, 8); dst[i] = (float)d; break; }
        case IL_F16: case IL_BF16: {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = t->dtype == IL_F16 ? il_f16_to_f32(h) : il_bf16_to_f32(h);
            break;
        }
        default: dst[i] = 0; break; /* unreachable: integer dtypes rejected earlier */
        }
    }
}

const float *il_tensor_f32(const il_tensor *t, const char *where, int expect_ndim,
                           const int64_t *expect_shape, float **owned) {
    static const float empty[1] = {0}; /* a valid non-NULL result for zero elements */
    if (owned) *owned = NULL;
    if (!where) where = "(tensor)";
    if (!dtype_valid(t->dtype) || !dtype_info[t->dtype].is_float) {
        il_seterr("%s: tensor '%s': dtype %s is not a floating-point type", where, t->name,
                  il_dtype_name(t->dtype));
        return NULL;
    }
    if (expect_ndim >= 0 && check_shape(t, where, expect_ndim, expect_shape)) return NULL;
    int64_t numel = il_tensor_numel(t);
    size_t bytes;
    if (numel < 0 || il_mul_overflows((size_t)numel, il_dtype_size(t->dtype), &bytes) ||
        bytes != t->nbytes) {
        il_seterr("%s: tensor '%s': %zu bytes do not match its shape and dtype %s", where,
                  t->name, t->nbytes, il_dtype_name(t->dtype));
        return NULL;
    }
    if (numel == 0) return empty;
    if (t->dtype == IL_F32 && ((uintptr_t)t->data & 3) == 0) return t->data;
    if (!owned) {
        il_seterr("%s: tensor '%s': needs a converted copy but no owner was given", where,
                  t->name);
        return NULL;
    }
    float *copy = il_malloc((size_t)numel * sizeof *copy);
    if (!copy) return NULL;
    convert_to_f32(copy, t, (size_t)numel);
    *owned = copy;
    return copy;
}

int il_owned_push(float ***list, int *n, float *p) {
    float **o = il_realloc(*list, sizeof *o * (size_t)(*n + 1));
    if (!o) {
        free(p);
        return -1;
    }
    *list = o;
    (*list)[(*n)++] = p;
    return 0;
}

/* ---- checkpoints ---- */

void il_checkpoint_free(il_checkpoint *c) {
    if (!c) return;
    for (int i = 0; i < c->n_files; i++) il_tensor_file_free(c->files[i]);
    free(c->files);
    free(c->dir);
    free(c);
}

const il_tensor *il_checkpoint_find(const il_checkpoint *c, const char *name,
                                    const il_tensor_file **file) {
    if (file) *file = NULL;
    if (!c) return NULL;
    for (int i = 0; i < c->n_files; i++) {
        const il_tensor *t = il_tensor_file_find(c->files[i], name);
        if (t) {
            if (file) *file = c->files[i];
            return t;
        }
    }
    return NULL;
}

const il_tensor *il_weights_find(const il_checkpoint *ckpt, const il_tensor_file *file,
                                 const char *name, const char **path) {
    if (ckpt) {
        const il_tensor_file *f = NULL;
        const il_tensor *t = il_checkpoint_find(ckpt, name, &f);
        if (t && path) *path = f ? f->path : ckpt->dir;
        return t;
    }
    const il_tensor *t = il_tensor_file_find(file, name);
    if (t && path) *path = file->path;
    return t;
}

static int checkpoint_add(il_checkpoint *c, const char *path) {
    il_tensor_file **files = il_realloc(c->files, ((size_t)c->n_files + 1) * sizeof *files);
    if (!files) return -1;
    c->files = files;
    il_tensor_file *f = il_tensor_file_open(path);
    if (!f) return -1;
    c->files[c->n_files++] = f;
    return 0;
}

/* Shard names come from a JSON file: keep them inside the checkpoint directory. */
static bool shard_name_ok(const char *s) {
    return s[0] && s[0] != '/' && strstr(s, "..") == NULL;
}

/* Index of the shard whose file name is `shard`, opening it on first use; -1 on error. */
static int shard_slot(il_checkpoint *c, char ***names, const char *index_path,
                      const char *tensor, const char *shard) {
    for (int i = 0; i < c->n_files; i++)
        if (strcmp((*names)[i], shard) == 0) return i;
    if (!shard_name_ok(shard)) {
        il_seterr("%s: tensor '%s': invalid shard file name '%s'", index_path, tensor, shard);
        return -1;
    }
    char **nn = il_realloc(*names, ((size_t)c->n_files + 1) * sizeof *nn);
    if (!nn) return -1;
    *names = nn;
    char *path = il_path_join(c->dir, shard);
    if (!path) return -1;
    if (!il_file_exists(path)) {
        il_seterr("%s: shard '%s' (listed for tensor '%s') not found: %s", index_path, shard,
                  tensor, path);
        free(path);
        return -1;
    }
    char *dup = il_strdup(shard);
    int rc = dup ? checkpoint_add(c, path) : -1;
    free(path);
    if (rc) { free(dup); return -1; }
    nn[c->n_files - 1] = dup;
    return c->n_files - 1;
}

/* Open every shard named in an index's weight_map (each once) and check that each
 * listed tensor is present in its shard. */
static int open_sharded(il_checkpoint *c, const char *index_path) {
    size_t len;
    char *text = il_read_file(index_path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        il_seterr("%s: %s", index_path,
                  root ? "missing or invalid 'weight_map' object" : "invalid JSON");
        cJSON_Delete(root);
        return -1;
    }
    char **names = NULL; /* shard file name of each c->files[i] */
    int rc = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, map) {
        if (!cJSON_IsString(e)) {
            il_seterr("%s: weight_map entry '%s' is not a string", index_path, e->string);
            rc = -1;
            break;
        }
        int s = shard_slot(c, &names, index_path, e->string, e->valuestring);
        if (s < 0) { rc = -1; break; }
        if (!il_tensor_file_find(c->files[s], e->string)) {
            il_seterr("%s: tensor '%s' is listed in shard '%s' but that file does not contain it",
                      index_path, e->string, e->valuestring);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && c->n_files == 0) {
        il_seterr("%s: weight_map lists no tensors", index_path);
        rc = -1;
    }
    for (int i = 0; i < c->n_files; i++) free(names[i]);
    free(names);
    cJSON_Delete(root);
    return rc;
}

il_checkpoint *il_checkpoint_open(const char *dir) {
    static const char *const single[] = {"model.safetensors", "pytorch_model.bin"};
    static const char *const indexed[] = {"model.safetensors.index.json",
                                          "pytorch_model.bin.index.json"};
    if (!il_dir_exists(dir)) { il_seterr("%s: not a directory", dir); return NULL; }
    il_checkpoint *c = il_calloc(1, sizeof *c);
    if (!c || !(c->dir = il_strdup(dir))) { free(c); return NULL; }
    /* Hugging Face preference: safetensors before .bin, a single file before shards. */
    for (int k = 0; k < 2; k++) {
        for (int sharded = 0; sharded < 2; sharded++) {
            char *path = il_path_join(dir, sharded ? indexed[k] : single[k]);
            if (!path) { il_checkpoint_free(c); return NULL; }
            if (!il_file_exists(path)) { free(path); continue; }
            int rc = sharded ? open_sharded(c, path) : checkpoint_add(c, path);
            free(path);
            if (rc) { il_checkpoint_free(c); return NULL; }
            return c;
        }
    }
    il_seterr("%s: no model weights found (looked for %s, %s, %s, %s)", dir, single[0],
              indexed[0], single[1], indexed[1]);
    il_checkpoint_free(c);
    return NULL;
}
