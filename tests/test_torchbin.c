/* test_torchbin.c - the PyTorch .bin reader (src/torchbin.c, src/zip.c): golden files
 * against their safetensors twins, hand-made archives for every supported and rejected
 * construct, truncations and a byte-flip fuzz loop (open must succeed or fail, never crash). */
#include "check.h"
#include "tensors.h"
#include "zip.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[512];

static char *tmp_path(const char *name) { return il_path_join(tmpdir, name); }

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    if (!fp) { perror(path); exit(1); }
    if (len && fwrite(data, 1, len, fp) != len) { perror(path); exit(1); }
    fclose(fp);
}

/* ---- a stored-entry zip writer (optionally Zip64, optionally "compressed") ---- */

static void put16(il_buf *b, unsigned v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    il_buf_append(b, x, 2);
}
static void put32(il_buf *b, uint32_t v) { put16(b, v & 0xFFFF); put16(b, v >> 16); }
static void put64(il_buf *b, uint64_t v) { put32(b, (uint32_t)v); put32(b, (uint32_t)(v >> 32)); }

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & -(c & 1));
    }
    return ~c;
}

typedef struct {
    char name[256];
    uint32_t offset, size, crc;
    uint16_t method;
} zw_entry;

typedef struct {
    il_buf out;
    zw_entry e[16];
    int n;
    bool zip64;
} zipw;

/* A local header (with a padding extra field the central directory does not have, like
 * torch's alignment padding) followed by the bytes, stored as-is. */
static void zw_add(zipw *z, const char *name, const void *data, size_t len, uint16_t method) {
    zw_entry *e = &z->e[z->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->offset = (uint32_t)z->out.len;
    e->size = (uint32_t)len;
    e->crc = crc32_of(data, len);
    e->method = method;
    put32(&z->out, 0x04034b50);
    put16(&z->out, 20); put16(&z->out, 0); put16(&z->out, method);
    put16(&z->out, 0); put16(&z->out, 0);
    put32(&z->out, e->crc); put32(&z->out, e->size); put32(&z->out, e->size);
    put16(&z->out, (unsigned)strlen(name)); put16(&z->out, 7);
    il_buf_puts(&z->out, name);
    put16(&z->out, 0x4246); put16(&z->out, 3); il_buf_append(&z->out, "\0\0\0", 3);
    if (len) il_buf_append(&z->out, data, len);
}

static void zw_central(zipw *z, const zw_entry *e) {
    uint32_t big = 0xFFFFFFFFu;
    put32(&z->out, 0x02014b50);
    put16(&z->out, 20); put16(&z->out, z->zip64 ? 45 : 20); put16(&z->out, 0);
    put16(&z->out, e->method); put16(&z->out, 0); put16(&z->out, 0);
    put32(&z->out, e->crc);
    put32(&z->out, z->zip64 ? big : e->size); put32(&z->out, z->zip64 ? big : e->size);
    put16(&z->out, (unsigned)strlen(e->name)); put16(&z->out, z->zip64 ? 28 : 0);
    put16(&z->out, 0); put16(&z->out, 0); put16(&z->out, 0); put32(&z->out, 0);
    put32(&z->out, z->zip64 ? big : e->offset);
    il_buf_puts(&z->out, e->name);
    if (z->zip64) { /* sizes and offset moved into the Zip64 extra field */
        put16(&z->out, 1); put16(&z->out, 24);
        put64(&z->out, e->size); put64(&z->out, e->size); put64(&z->out, e->offset);
    }
}

static void zw_finish(zipw *z, const char *path) {
    uint64_t cd = z->out.len;
    for (int i = 0; i < z->n; i++) zw_central(z, &z->e[i]);
    uint64_t cd_size = z->out.len - cd, eocd64 = z->out.len;
    if (z->zip64) {
        put32(&z->out, 0x06064b50); put64(&z->out, 44);
        put16(&z->out, 45); put16(&z->out, 45); put32(&z->out, 0); put32(&z->out, 0);
        put64(&z->out, (uint64_t)z->n); put64(&z->out, (uint64_t)z->n);
        put64(&z->out, cd_size); put64(&z->out, cd);
        put32(&z->out, 0x07064b50); put32(&z->out, 0); put64(&z->out, eocd64); put32(&z->out, 1);
    }
    put32(&z->out, 0x06054b50);
    put16(&z->out, 0); put16(&z->out, 0);
    put16(&z->out, z->zip64 ? 0xFFFF : (unsigned)z->n);
    put16(&z->out, z->zip64 ? 0xFFFF : (unsigned)z->n);
    put32(&z->out, z->zip64 ? 0xFFFFFFFFu : (uint32_t)cd_size);
    put32(&z->out, z->zip64 ? 0xFFFFFFFFu : (uint32_t)cd);
    put16(&z->out, 0);
    write_bytes(path, z->out.data, z->out.len);
    il_buf_free(&z->out);
}

/* ---- pickle bytes by hand (protocol 2, as torch.save writes) ---- */

static void op(il_buf *b, uint8_t o) { il_buf_append(b, &o, 1); }
static void p_str(il_buf *b, const char *s) { op(b, 'X'); put32(b, (uint32_t)strlen(s)); il_buf_puts(b, s); }
static void p_int(il_buf *b, int32_t v) { op(b, 'J'); put32(b, (uint32_t)v); }
static void p_global(il_buf *b, const char *mod, const char *name) {
    op(b, 'c');
    il_buf_printf(b, "%s\n%s\n", mod, name);
}

typedef struct {
    const char *storage; /* "FloatStorage", ... */
    const char *key;
    int numel, offset, ndim;
    int size[4], stride[4];
} view;

/* _rebuild_tensor_v2(('storage', torch.<S>, key, 'cpu', numel), offset, size, stride,
 * False, OrderedDict()) exactly as torch 1.13 pickles it. */
static void p_tensor(il_buf *b, const view *v) {
    p_global(b, "torch._utils", "_rebuild_tensor_v2");
    op(b, '(');
    op(b, '('); p_str(b, "storage"); p_global(b, "torch", v->storage); p_str(b, v->key);
    p_str(b, "cpu"); p_int(b, v->numel); op(b, 't');
    op(b, 'Q');
    p_int(b, v->offset);
    op(b, '('); for (int i = 0; i < v->ndim; i++) p_int(b, v->size[i]); op(b, 't');
    op(b, '('); for (int i = 0; i < v->ndim; i++) p_int(b, v->stride[i]); op(b, 't');
    op(b, 0x89);
    p_global(b, "collections", "OrderedDict"); op(b, ')'); op(b, 'R');
    op(b, 't');
    op(b, 'R');
}

/* {names[i]: views[i]} as EMPTY_DICT, MARK, pairs, SETITEMS, STOP. */
static void p_state_dict(il_buf *b, int n, const char *const *names, const view *views) {
    op(b, 0x80); op(b, 2);
    op(b, '}'); op(b, '(');
    for (int i = 0; i < n; i++) { p_str(b, names[i]); p_tensor(b, &views[i]); }
    op(b, 'u'); op(b, '.');
}

/* Storage 0: six floats 0..5; storage 1: four int64 10..13. */
static const float floats6[6] = {0, 1, 2, 3, 4, 5};
static const int64_t longs4[4] = {10, 11, 12, 13};

static void write_archive(const char *path, const char *dir, const il_buf *pkl, uint16_t method,
                          bool zip64) {
    zipw z = {.zip64 = zip64};
    char name[256];
    snprintf(name, sizeof name, "%s/data.pkl", dir);
    zw_add(&z, name, pkl->data, pkl->len, method);
    snprintf(name, sizeof name, "%s/data/0", dir);
    zw_add(&z, name, floats6, sizeof floats6, method);
    snprintf(name, sizeof name, "%s/data/1", dir);
    zw_add(&z, name, longs4, sizeof longs4, method);
    snprintf(name, sizeof name, "%s/version", dir);
    zw_add(&z, name, "3\n", 2, method);
    zw_finish(&z, path);
}

/* Write a one-off archive whose pickle is `pkl` and return its path (caller frees). */
static char *archive_with(const char *file, const il_buf *pkl) {
    char *path = tmp_path(file);
    write_archive(path, "archive", pkl, 0, false);
    return path;
}

#define EXPECT_FAIL(path, substr) do { \
    il_tensor_file *f_ = il_torchbin_open(path); \
    CHECK_MSG(!f_, "%s unexpectedly opened", path); \
    CHECK_MSG(!f_ && strstr(il_errmsg(), substr) && strstr(il_errmsg(), path), \
              "error for %s should mention '%s', got: %s", path, substr, il_errmsg()); \
    il_tensor_file_free(f_); } while (0)

/* ---- golden files ---- */

/* Every tensor of the .bin equals the same-named one in the safetensors twin. */
static void compare_with_safetensors(const char *bin, const char *st, int n_bin, int n_st) {
    il_tensor_file *a = il_torchbin_open(bin);
    il_tensor_file *b = il_safetensors_open(st);
    CHECK_MSG(a != NULL, "%s: %s", bin, il_errmsg());
    CHECK_MSG(b != NULL, "%s: %s", st, il_errmsg());
    if (a && b) {
        CHECK_EQ_INT(a->n_tensors, n_bin);
        CHECK_EQ_INT(b->n_tensors, n_st);
        int matched = 0;
        for (int i = 0; i < b->n_tensors; i++) {
            const il_tensor *y = &b->tensors[i], *x = il_tensor_file_find(a, y->name);
            CHECK_MSG(x != NULL, "%s missing from %s", y->name, bin);
            if (!x) continue;
            bool same = x->dtype == y->dtype && x->ndim == y->ndim && x->nbytes == y->nbytes &&
                        memcmp(x->shape, y->shape, sizeof x->shape) == 0 &&
                        memcmp(x->data, y->data, x->nbytes) == 0;
            CHECK_MSG(same, "%s differs between %s and %s", y->name, bin, st);
            matched += same;
        }
        CHECK_EQ_INT(matched, n_st);
    }
    il_tensor_file_free(a);
    il_tensor_file_free(b);
}

static void test_t5_golden(void) {
    const char *bin = TEST_DATA "/golden/t5-tiny/pytorch_model.bin";
    compare_with_safetensors(bin, TEST_DATA "/golden/t5-tiny/model.safetensors", 54, 52);
    il_tensor_file *f = il_torchbin_open(bin);
    CHECK_MSG(f != NULL, "%s", il_errmsg());
    if (!f) return;
    CHECK_STR(f->tensors[0].name, "shared.weight"); /* file order is kept */
    const il_tensor *s = il_tensor_file_find(f, "shared.weight");
    const il_tensor *e = il_tensor_file_find(f, "encoder.embed_tokens.weight");
    const il_tensor *d = il_tensor_file_find(f, "decoder.embed_tokens.weight");
    CHECK(s && e && d);
    if (s && e && d) {
        CHECK_EQ_INT(s->ndim, 2);
        CHECK_EQ_INT(s->shape[0], 2104);
        CHECK_EQ_INT(s->shape[1], 64);
        CHECK(s->dtype == IL_F32);
        CHECK(e->data == s->data && d->data == s->data); /* one storage, zero copy */
        CHECK(e->nbytes == s->nbytes && d->nbytes == s->nbytes);
        /* zero copy means the data lies inside the mapping */
        CHECK((const uint8_t *)s->data > f->map.data &&
              (const uint8_t *)s->data + s->nbytes <= f->map.data + f->map.len);
    }
    CHECK(f->n_owned == 0);
    il_tensor_file_free(f);
}

static void test_lora_golden(const char *path) {
    il_tensor_file *f = il_torchbin_open(path);
    CHECK_MSG(f != NULL, "%s: %s", path, il_errmsg());
    if (!f) return;
    CHECK_EQ_INT(f->n_tensors, 24);
    const il_tensor *a = il_tensor_file_find(
        f, "base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight");
    const il_tensor *b = il_tensor_file_find(
        f, "base_model.model.decoder.block.1.layer.1.EncDecAttention.v.lora_B.weight");
    CHECK(a && b);
    if (a) {
        CHECK_EQ_INT(a->ndim, 2);
        CHECK_EQ_INT(a->shape[0], 4);
        CHECK_EQ_INT(a->shape[1], 64);
        CHECK_EQ_INT(a->nbytes, 4 * 64 * 4);
    }
    if (b) {
        CHECK_EQ_INT(b->shape[0], 64);
        CHECK_EQ_INT(b->shape[1], 4);
    }
    int shapes_ok = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        const il_tensor *t = &f->tensors[i];
        bool is_a = strstr(t->name, ".lora_A.weight") != NULL;
        shapes_ok += t->dtype == IL_F32 && t->ndim == 2 && t->shape[0] == (is_a ? 4 : 64) &&
                     t->shape[1] == (is_a ? 64 : 4) &&
                     strncmp(t->name, "base_model.model.", 17) == 0;
    }
    CHECK_EQ_INT(shapes_ok, 24);
    il_tensor_file_free(f);
}

/* lora_1/lora_4 have no safetensors twin; a value read by hand from the file guards
 * against an offset mix-up: entry adapter_model/data/0 starts at byte 3360 + 30 + name + pad. */
static void test_lora_values(void) {
    const char *path = TEST_DATA "/golden/t5-tiny-lora/lora_1/adapter_model.bin";
    il_tensor_file *f = il_torchbin_open(path);
    il_mmap m;
    CHECK(f && il_mmap_open(&m, path) == 0);
    if (!f) return;
    il_zip z;
    CHECK(il_zip_open(&z, m.data, m.len) == 0);
    long k = il_zip_find(&z, "adapter_model/data/0", 20);
    CHECK(k >= 0);
    size_t len = 0;
    const uint8_t *p = k >= 0 ? il_zip_entry_data(&z, (size_t)k, &len) : NULL;
    CHECK_EQ_INT(len, 1024);
    CHECK_EQ_INT(z.entries[k].local_offset, 3360);
    int hits = 0; /* storage 0 belongs to exactly one tensor, which must hold these bytes */
    for (int i = 0; p && i < f->n_tensors; i++)
        hits += f->tensors[i].nbytes == len && memcmp(f->tensors[i].data, p, len) == 0;
    CHECK_EQ_INT(hits, 1);
    il_zip_close(&z);
    il_mmap_close(&m);
    il_tensor_file_free(f);
}

/* ---- hand-made archives ---- */

static const char *const good_names[] = {"w", "t", "ids"};
static const view good_views[] = {
    {"FloatStorage", "0", 6, 0, 2, {2, 3}, {3, 1}},
    {"FloatStorage", "0", 6, 0, 2, {2, 3}, {1, 2}}, /* non-contiguous: a transposed view */
    {"LongStorage", "1", 4, 1, 1, {3}, {1}},        /* offset 1 into storage 1 */
};

static void check_good(const char *path) {
    il_tensor_file *f = il_torchbin_open(path);
    CHECK_MSG(f != NULL, "%s: %s", path, il_errmsg());
    if (!f) return;
    CHECK_EQ_INT(f->n_tensors, 3);
    const il_tensor *w = il_tensor_file_find(f, "w"), *t = il_tensor_file_find(f, "t");
    const il_tensor *ids = il_tensor_file_find(f, "ids");
    CHECK(w && t && ids);
    if (!w || !t || !ids) { il_tensor_file_free(f); return; }
    float v[6];
    memcpy(v, w->data, sizeof v);
    CHECK(w->dtype == IL_F32 && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 3);
    CHECK(memcmp(v, floats6, sizeof v) == 0);
    /* t[i][j] = storage[i + 2j]: rows {0,2,4} and {1,3,5} */
    static const float want_t[6] = {0, 2, 4, 1, 3, 5};
    CHECK(t->nbytes == sizeof v && t->shape[0] == 2 && t->shape[1] == 3);
    memcpy(v, t->data, sizeof v);
    CHECK(memcmp(v, want_t, sizeof v) == 0);
    CHECK(t->data != w->data); /* materialised copy, owned by the file */
    CHECK_EQ_INT(f->n_owned, 1);
    int64_t l[3];
    CHECK(ids->dtype == IL_I64 && ids->ndim == 1 && ids->shape[0] == 3 && ids->nbytes == 24);
    memcpy(l, ids->data, sizeof l);
    CHECK(l[0] == 11 && l[1] == 12 && l[2] == 13);
    il_tensor_file_free(f);
}

static void test_good_archives(void) {
    il_buf pkl = {0};
    p_state_dict(&pkl, 3, good_names, good_views);
    const char *dirs[] = {"archive", "mymodel", "pytorch_model"};
    for (int i = 0; i < 3; i++) {
        char file[64];
        snprintf(file, sizeof file, "good_%s.bin", dirs[i]);
        char *path = tmp_path(file);
        write_archive(path, dirs[i], &pkl, 0, false);
        check_good(path);
        /* il_tensor_file_open picks the zip reader by content */
        il_tensor_file *f = il_tensor_file_open(path);
        CHECK_MSG(f && f->n_tensors == 3, "%s: %s", path, f ? "" : il_errmsg());
        il_tensor_file_free(f);
        free(path);
    }
    char *path = tmp_path("good_zip64.bin");
    write_archive(path, "archive", &pkl, 0, true);
    check_good(path);
    free(path);
    path = tmp_path("deflate.bin");
    write_archive(path, "archive", &pkl, 8, false);
    EXPECT_FAIL(path, "compressed (method 8)");
    free(path);
    il_buf_free(&pkl);
}

/* Pickle variants other writers produce: OrderedDict with _metadata (BUILD), protocol 4
 * opcodes, _rebuild_parameter, a wrapping {"state_dict": ...}, an empty dict. */
static void test_pickle_variants(void) {
    il_buf b = {0};
    /* OrderedDict() + SETITEMS + BUILD({'_metadata': {'': {'version': 1}}}) */
    op(&b, 0x80); op(&b, 2);
    p_global(&b, "collections", "OrderedDict"); op(&b, ')'); op(&b, 'R'); op(&b, 'q'); op(&b, 0);
    op(&b, '('); p_str(&b, "w"); p_tensor(&b, &good_views[0]); op(&b, 'u');
    op(&b, '}'); p_str(&b, "_metadata"); op(&b, '}'); p_str(&b, "");
    op(&b, '}'); p_str(&b, "version"); op(&b, 'K'); op(&b, 1); op(&b, 's');
    op(&b, 's'); op(&b, 's'); op(&b, 'b'); op(&b, '.');
    char *path = archive_with("ordered.bin", &b);
    il_tensor_file *f = il_torchbin_open(path);
    CHECK_MSG(f && f->n_tensors == 1 && strcmp(f->tensors[0].name, "w") == 0, "%s",
              f ? "wrong content" : il_errmsg());
    il_tensor_file_free(f);
    free(path);

    /* protocol 4: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, _rebuild_parameter */
    il_buf_free(&b);
    op(&b, 0x80); op(&b, 4);
    op(&b, 0x95); put64(&b, 0); /* a frame length is only a hint */
    op(&b, '}'); op(&b, 0x94);
    op(&b, 0x8c); op(&b, 1); il_buf_puts(&b, "p"); op(&b, 0x94);
    op(&b, 0x8c); op(&b, 12); il_buf_puts(&b, "torch._utils");
    op(&b, 0x8c); op(&b, 18); il_buf_puts(&b, "_rebuild_parameter"); op(&b, 0x93);
    p_tensor(&b, &good_views[0]); op(&b, 0x88); op(&b, '}'); op(&b, 0x87); op(&b, 'R');
    op(&b, 's'); op(&b, '.');
    path = archive_with("proto4.bin", &b);
    f = il_torchbin_open(path);
    CHECK_MSG(f && f->n_tensors == 1 && strcmp(f->tensors[0].name, "p") == 0 &&
              f->tensors[0].shape[1] == 3, "%s", f ? "wrong content" : il_errmsg());
    il_tensor_file_free(f);
    free(path);

    /* a pickled int (LONG1 -2) is not a state dict */
    il_buf_free(&b);
    op(&b, 0x80); op(&b, 2); op(&b, 0x8a); op(&b, 2); op(&b, 0xfe); op(&b, 0xff); op(&b, '.');
    path = archive_with("int_top.bin", &b);
    EXPECT_FAIL(path, "top-level object has type int");
    free(path);

    /* {"state_dict": {"w": ...}, "epoch": 3} unwraps */
    il_buf_free(&b);
    op(&b, 0x80); op(&b, 2); op(&b, '}'); op(&b, '(');
    p_str(&b, "epoch"); op(&b, 'K'); op(&b, 3);
    p_str(&b, "state_dict"); op(&b, '}'); op(&b, '('); p_str(&b, "w");
    p_tensor(&b, &good_views[0]); op(&b, 'u');
    op(&b, 'u'); op(&b, '.');
    path = archive_with("wrapped.bin", &b);
    f = il_torchbin_open(path);
    CHECK_MSG(f && f->n_tensors == 1, "%s", f ? "wrong count" : il_errmsg());
    il_tensor_file_free(f);
    free(path);

    /* {"w": tensor, "epoch": 3} is not a state dict */
    il_buf_free(&b);
    op(&b, 0x80); op(&b, 2); op(&b, '}'); op(&b, '(');
    p_str(&b, "w"); p_tensor(&b, &good_views[0]); p_str(&b, "epoch"); op(&b, 'K'); op(&b, 3);
    op(&b, 'u'); op(&b, '.');
    path = archive_with("not_tensor.bin", &b);
    EXPECT_FAIL(path, "'epoch' has type int, not tensor");
    free(path);

    /* the empty state dict a PEFT save of nothing produces */
    il_buf_free(&b);
    op(&b, 0x80); op(&b, 2); op(&b, '}'); op(&b, 'q'); op(&b, 0); op(&b, '.');
    path = archive_with("empty.bin", &b);
    f = il_torchbin_open(path);
    CHECK_MSG(f && f->n_tensors == 0, "%s", f ? "not empty" : il_errmsg());
    il_tensor_file_free(f);
    free(path);
    il_buf_free(&b);
}

/* Each hostile pickle must fail with a message naming the problem and the file. */
static void test_hostile_pickles(void) {
    struct { const char *file, *want; } cases[] = {
        {"os_system.bin", "global 'os.system' is not allowed"},
        {"opcode.bin", "unsupported opcode 0xff at offset 2"},
        {"no_stop.bin", "no STOP"},
        {"memo.bin", "memo slot 5 is not set"},
        {"missing_key.bin", "storage '7' not found"},
        {"extent.bin", "tensor 'big'"},
        {"untyped.bin", "global 'torch.storage.UntypedStorage' is not allowed"},
        {"call_storage.bin", "unsupported call"},
        {"underflow.bin", "stack underflow"},
        {"list_top.bin", "top-level object has type list"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        il_buf b = {0};
        op(&b, 0x80); op(&b, 2);
        switch (i) {
        case 0: p_global(&b, "os", "system"); p_str(&b, "echo pwned"); op(&b, 0x85); op(&b, 'R'); break;
        case 1: op(&b, 0xff); break;
        case 2: op(&b, '}'); op(&b, '('); p_str(&b, "w"); p_tensor(&b, &good_views[0]); op(&b, 'u'); break;
        case 3: op(&b, '}'); op(&b, 'q'); op(&b, 0); op(&b, 'h'); op(&b, 5); break;
        case 4: {
            view v = good_views[0];
            v.key = "7";
            op(&b, '}'); p_str(&b, "w"); p_tensor(&b, &v); op(&b, 's');
            break;
        }
        case 5: {
            view v = {"FloatStorage", "0", 6, 0, 2, {3, 3}, {3, 1}}; /* 9 > 6 elements */
            op(&b, '}'); p_str(&b, "big"); p_tensor(&b, &v); op(&b, 's');
            break;
        }
        case 6: p_global(&b, "torch.storage", "UntypedStorage"); break;
        case 7: p_global(&b, "torch", "FloatStorage"); op(&b, ')'); op(&b, 'R'); break;
        case 8: op(&b, '('); op(&b, 'R'); break;
        case 9: op(&b, ']'); break;
        }
        op(&b, '.');
        if (i == 2) b.len--; /* drop the STOP */
        char *path = archive_with(cases[i].file, &b);
        EXPECT_FAIL(path, cases[i].want);
        free(path);
        il_buf_free(&b);
    }
}

/* ---- non-zip and damaged files ---- */

static void test_not_zip(void) {
    uint8_t buf[2048];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 7 + 1);
    memcpy(buf + 1000, "PK\x03\x04", 4);
    char *path = tmp_path("pk_at_1000.bin");
    write_bytes(path, buf, sizeof buf);
    EXPECT_FAIL(path, "not a zip");
    il_tensor_file *f = il_tensor_file_open(path); /* goes to the safetensors reader */
    CHECK(f == NULL);
    il_tensor_file_free(f);
    free(path);

    /* torch < 1.6: PROTO 2, LONG1 magic number 0x1950a86a20f9469cfc6c, ... */
    static const uint8_t legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                     0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
    path = tmp_path("legacy.bin");
    write_bytes(path, legacy, sizeof legacy);
    EXPECT_FAIL(path, "legacy (non-zip) torch format is not supported; re-save with torch>=1.6");
    free(path);

    path = tmp_path("empty_file.bin");
    write_bytes(path, "", 0);
    EXPECT_FAIL(path, "not a zip");
    free(path);

    path = tmp_path("only_magic.bin");
    write_bytes(path, "PK\x03\x04", 4);
    EXPECT_FAIL(path, "end of central directory not found");
    free(path);

    EXPECT_FAIL(TEST_DATA "/golden/no-such-file.bin", "cannot open");
}

static uint8_t *read_all(const char *path, size_t *len) {
    return (uint8_t *)il_read_file(path, len);
}

/* Truncations of real archives: the golden T5 file at half, the LoRA file at many cuts. */
static void test_truncated(void) {
    size_t len;
    uint8_t *data = read_all(TEST_DATA "/golden/t5-tiny/pytorch_model.bin", &len);
    CHECK(data != NULL);
    if (!data) return;
    char *path = tmp_path("half.bin");
    write_bytes(path, data, len / 2);
    EXPECT_FAIL(path, "end of central directory not found");
    free(path);
    free(data);

    data = read_all(TEST_DATA "/golden/t5-tiny-lora/lora_1/adapter_model.bin", &len);
    CHECK(data != NULL);
    if (!data) return;
    path = tmp_path("cut.bin");
    int failed = 0, cuts = 0;
    for (size_t cut = 0; cut < len; cut += 1 + cut / 8, cuts++) {
        write_bytes(path, data, cut);
        il_tensor_file *f = il_torchbin_open(path);
        failed += f == NULL;
        il_tensor_file_free(f);
    }
    CHECK_EQ_INT(failed, cuts); /* the central directory is at the end: every cut fails */
    free(path);
    free(data);
}

/* Flip random bytes (mostly in the pickle and the directories, where they matter) and
 * open: success or a clean error, never a crash or a sanitizer report. */
static void test_fuzz(void) {
    size_t len;
    uint8_t *orig = read_all(TEST_DATA "/golden/t5-tiny-lora/lora_1/adapter_model.bin", &len);
    CHECK(orig != NULL && len > 8192);
    if (!orig) return;
    uint8_t *buf = malloc(len);
    char *path = tmp_path("fuzz.bin");
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    int opened = 0, failed = 0;
    unsigned checksum = 0;
    for (int iter = 0; iter < 2000; iter++) {
        memcpy(buf, orig, len);
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        int flips = 1 + (int)(rng % 4);
        for (int k = 0; k < flips; k++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            size_t region = rng % 3, r = (size_t)(rng >> 8);
            size_t pos = region == 0 ? 30 + r % 3400          /* data.pkl */
                       : region == 1 ? len - 1 - r % 3000     /* central directory, EOCD */
                       : r % len;                             /* anywhere */
            buf[pos] ^= (uint8_t)(1u << (rng >> 40) % 8);
            if ((rng >> 50) % 4 == 0) buf[pos] = (uint8_t)(rng >> 20);
        }
        write_bytes(path, buf, len);
        il_tensor_file *f = il_torchbin_open(path);
        if (f) {
            opened++;
            for (int i = 0; i < f->n_tensors; i++) { /* read every byte of every tensor */
                const uint8_t *p = f->tensors[i].data;
                for (size_t j = 0; j < f->tensors[i].nbytes; j++) checksum += p[j];
            }
        } else {
            failed++;
            CHECK(strstr(il_errmsg(), path) != NULL);
        }
        il_tensor_file_free(f);
    }
    printf("fuzz: %d opened, %d rejected (checksum %u)\n", opened, failed, checksum);
    CHECK(opened + failed == 2000 && failed > 0);
    free(path);
    free(buf);
    free(orig);
}

static void remove_tmpdir(void) {
    char cmd[600];
    /* only our own mkdtemp directory, holding only files this test wrote */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/ilora_torchbin_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }

    test_t5_golden();
    compare_with_safetensors(TEST_DATA "/golden/bert-tiny/pytorch_model.bin",
                             TEST_DATA "/golden/bert-tiny/model.safetensors", 39, 39);
    test_lora_golden(TEST_DATA "/golden/t5-tiny-lora/lora_1/adapter_model.bin");
    test_lora_golden(TEST_DATA "/golden/t5-tiny-lora/lora_4/adapter_model.bin");
    test_lora_values();
    test_good_archives();
    test_pickle_variants();
    test_hostile_pickles();
    test_not_zip();
    test_truncated();
    test_fuzz();

    remove_tmpdir();
    TEST_END();
}
