/* library.c - LoRA libraries (directory or manifest), their training texts, fingerprints
 * and the on-disk centroid index. See library.h. */
#include "library.h"

#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

#define INDEX_VERSION 1
/* Texts per embedder call while computing a centroid: bounds the vectors held at once. */
#define EMBED_BATCH 256

/* ===== XXH64 ===== */

static const uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL,
                      P3 = 0x165667B19E3779F9ULL, P4 = 0x85EBCA77C2B2AE63ULL,
                      P5 = 0x27D4EB2F165667C5ULL;

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t read64(const uint8_t *p) { /* little-endian regardless of the host */
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t read32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t xxh_round(uint64_t acc, uint64_t in) {
    acc += in * P2;
    acc = rotl64(acc, 31);
    return acc * P1;
}

static uint64_t xxh_merge(uint64_t acc, uint64_t v) {
    acc ^= xxh_round(0, v);
    return acc * P1 + P4;
}

uint64_t il_xxh64(const void *data, size_t len, uint64_t seed) {
    const uint8_t *p = data, *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        const uint8_t *limit = end - 32;
        do {
            v1 = xxh_round(v1, read64(p));
            v2 = xxh_round(v2, read64(p + 8));
            v3 = xxh_round(v3, read64(p + 16));
            v4 = xxh_round(v4, read64(p + 24));
            p += 32;
        } while (p <= limit);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xxh_merge(h, v1);
        h = xxh_merge(h, v2);
        h = xxh_merge(h, v3);
        h = xxh_merge(h, v4);
    } else {
        h = seed + P5;
    }
    h += (uint64_t)len;
    while (p + 8 <= end) {
        h ^= xxh_round(0, read64(p));
        h = rotl64(h, 27) * P1 + P4;
        p += 8;
    }
    if (p + 4 <= end) {
        h ^= (uint64_t)read32(p) * P1;
        h = rotl64(h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)(*p++) * P5;
        h = rotl64(h, 11) * P1;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

void il_fingerprint_hex(uint64_t h, char out[17]) {
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

int il_fingerprint_parse(const char *hex, uint64_t *out) {
    uint64_t v = 0;
    int n = 0;
    for (; hex[n]; n++) {
        char c = hex[n];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0 || n >= 16) return -1;
        v = v << 4 | (uint64_t)d;
    }
    if (n != 16) return -1;
    *out = v;
    return 0;
}

int il_fingerprint_file(const char *path, uint64_t *out) {
    il_mmap m;
    if (il_mmap_open(&m, path)) return -1;
    *out = il_xxh64(m.data, m.len, 0);
    il_mmap_close(&m);
    return 0;
}

/* Append "<role>\t<size>\t<hash>\n" for a file to b. */
static int fp_add_file(il_buf *b, const char *role, const char *path) {
    il_mmap m;
    if (il_mmap_open(&m, path)) return -1;
    uint64_t h = il_xxh64(m.data, m.len, 0);
    size_t size = m.len;
    il_mmap_close(&m);
    char hex[17];
    il_fingerprint_hex(h, hex);
    return il_buf_printf(b, "%s\t%zu\t%s\n", role, size, hex);
}

static bool is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ===== the library ===== */

typedef struct {
    char *name, *adapter_dir, *data_path;
    char **texts;       /* kept texts, input + " " + output */
    int n_texts;        /* kept */
    int n_total;        /* examples in the file */
    char *doc;          /* texts joined by "\n" */
    uint64_t data_hash; /* XXH64 of the data file's bytes as read at open */
    size_t data_size;
} lib_entry;

struct il_library {
    char *path;
    bool manifest;
    int max_examples;
    lib_entry *a;
    int m;
    const char **docs; /* [m] borrowed from a[i].doc, for il_bm25_build */
};

static void entry_free(lib_entry *e) {
    free(e->name);
    free(e->adapter_dir);
    free(e->data_path);
    for (int j = 0; j < e->n_texts; j++) free(e->texts[j]);
    free(e->texts);
    free(e->doc);
    memset(e, 0, sizeof *e);
}

void il_library_free(il_library *lib) {
    if (!lib) return;
    for (int i = 0; i < lib->m; i++) entry_free(&lib->a[i]);
    free(lib->a);
    free(lib->docs);
    free(lib->path);
    free(lib);
}

/* A string field of an example line: "input" (alias "inputs") or "output" ("targets"). */
static int example_field(const cJSON *obj, const char *key, const char *alias, const char *path,
                         int line, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) v = cJSON_GetObjectItemCaseSensitive(obj, alias);
    if (!v) {
        il_seterr("%s:%d: missing field '%s'", path, line, key);
        return -1;
    }
    if (!cJSON_IsString(v)) {
        il_seterr("%s:%d: field '%s': expected a string", path, line,
                  cJSON_GetObjectItemCaseSensitive(obj, key) ? key : alias);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

/* Read and validate e->data_path; keep the first max_examples texts (0 = all). */
static int read_examples(lib_entry *e, int max_examples) {
    size_t len;
    char *text = il_read_file(e->data_path, &len);
    if (!text) return -1;
    e->data_hash = il_xxh64(text, len, 0);
    e->data_size = len;
    int rc = -1, line = 0, cap = 0;
    char *p = text, *end = text + len;
    il_buf doc = {0};
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        size_t n = (size_t)(le - p);
        line++;
        bool blank = true;
        for (size_t i = 0; i < n && blank; i++)
            if (!strchr(" \t\r", p[i])) blank = false;
        if (!blank) {
            if (!il_utf8_valid(p, n)) {
                il_seterr("%s:%d: invalid UTF-8", e->data_path, line);
                goto out;
            }
            if (il_json_has_nul_escape(p, n)) {
                il_seterr("%s:%d: a string holds a NUL character (\\u0000)", e->data_path, line);
                goto out;
            }
            char *s = il_strndup(p, n);
            if (!s) goto out;
            cJSON *obj = cJSON_ParseWithOpts(s, NULL, true);
            free(s);
            if (!cJSON_IsObject(obj)) {
                il_seterr("%s:%d: %s", e->data_path, line,
                          obj ? "not a JSON object" : "malformed JSON");
                cJSON_Delete(obj);
                goto out;
            }
            const char *in, *outp;
            if (example_field(obj, "input", "inputs", e->data_path, line, &in) ||
                example_field(obj, "output", "targets", e->data_path, line, &outp)) {
                cJSON_Delete(obj);
                goto out;
            }
            if (max_examples == 0 || e->n_texts < max_examples) {
                if (e->n_texts == cap) {
                    cap = cap ? 2 * cap : 16;
                    char **t = il_realloc(e->texts, sizeof *t * (size_t)cap);
                    if (!t) { cJSON_Delete(obj); goto out; }
                    e->texts = t;
                }
                char *joined = il_sprintf("%s %s", in, outp);
                if (!joined || (e->n_texts && il_buf_puts(&doc, "\n")) ||
                    il_buf_puts(&doc, joined)) {
                    free(joined);
                    cJSON_Delete(obj);
                    goto out;
                }
                e->texts[e->n_texts++] = joined;
            }
            e->n_total++;
            cJSON_Delete(obj);
        }
        p = nl ? nl + 1 : end;
    }
    if (e->n_total == 0) {
        il_seterr("%s: no examples (expected JSONL lines {\"input\": ..., \"output\": ...})",
                  e->data_path);
        goto out;
    }
    if (!doc.data && il_buf_puts(&doc, "")) goto out;
    e->doc = doc.data;
    doc.data = NULL;
    rc = 0;
out:
    il_buf_free(&doc);
    free(text);
    return rc;
}

/* The adapter directory must look like a PEFT adapter, the data file must exist; then the
 * examples are read. Errors name the adapter (prefix added by the caller). */
static int check_entry(lib_entry *e, int max_examples) {
    if (!is_directory(e->adapter_dir)) {
        il_seterr("%s: adapter directory not found", e->adapter_dir);
        return -1;
    }
    char *cfg = il_path_join(e->adapter_dir, "adapter_config.json");
    char *st = il_path_join(e->adapter_dir, "adapter_model.safetensors");
    char *bin = il_path_join(e->adapter_dir, "adapter_model.bin");
    int rc = -1;
    if (!cfg || !st || !bin) goto out;
    if (!is_regular_file(cfg)) {
        il_seterr("%s: missing (not a PEFT adapter directory)", cfg);
        goto out;
    }
    if (!is_regular_file(st) && !is_regular_file(bin)) {
        il_seterr("%s: no adapter_model.safetensors or adapter_model.bin", e->adapter_dir);
        goto out;
    }
    if (!il_file_exists(e->data_path)) {
        il_seterr("%s: training examples not found", e->data_path);
        goto out;
    }
    if (!is_regular_file(e->data_path)) {
        il_seterr("%s: not a regular file", e->data_path);
        goto out;
    }
    rc = read_examples(e, max_examples);
out:
    free(cfg);
    free(st);
    free(bin);
    return rc;
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Directory library: every non-hidden subdirectory, sorted by name. */
static int scan_directory(il_library *lib) {
    DIR *d = opendir(lib->path);
    if (!d) {
        il_seterr("%s: cannot open the library directory", lib->path);
        return -1;
    }
    char **names = NULL;
    int n = 0, cap = 0, rc = -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char *sub = il_path_join(lib->path, de->d_name);
        if (!sub) goto out;
        bool dir = is_directory(sub);
        free(sub);
        if (!dir) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **g = il_realloc(names, sizeof *g * (size_t)cap);
            if (!g) goto out;
            names = g;
        }
        if (!(names[n] = il_strdup(de->d_name))) goto out;
        n++;
    }
    if (n == 0) {
        char *man = il_path_join(lib->path, "library.json");
        bool has_manifest = man && il_file_exists(man);
        il_seterr("%s: no adapter subdirectories in the library directory%s", lib->path,
                  has_manifest ? " (it holds a library.json: pass that file instead)" : "");
        free(man);
        goto out;
    }
    qsort(names, (size_t)n, sizeof *names, cmp_cstr);
    if (!(lib->a = il_calloc((size_t)n, sizeof *lib->a))) goto out;
    for (int i = 0; i < n; i++) {
        lib_entry *e = &lib->a[lib->m++];
        e->name = names[i];
        names[i] = NULL;
        if (!(e->adapter_dir = il_path_join(lib->path, e->name)) ||
            !(e->data_path = il_path_join(e->adapter_dir, "train.jsonl")))
            goto out;
        if (check_entry(e, lib->max_examples)) {
            il_prefixerr("library %s: adapter '%s'", lib->path, e->name);
            goto out;
        }
    }
    rc = 0;
out:
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

/* The manifest's directory with a trailing '/', or "" when the path has none. */
static char *path_prefix(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? il_strndup(path, (size_t)(slash - path + 1)) : il_strdup("");
}

static char *resolve(const char *prefix, const char *rel) {
    return rel[0] == '/' ? il_strdup(rel) : il_sprintf("%s%s", prefix, rel);
}

/* Last component of a path, ignoring trailing slashes. malloc'd. */
static char *base_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t s = n;
    while (s > 0 && path[s - 1] != '/') s--;
    return il_strndup(path + s, n - s);
}

static int read_manifest(il_library *lib) {
    size_t len;
    char *text = il_read_file(lib->path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    char *prefix = path_prefix(lib->path);
    int rc = -1;
    if (!prefix) goto out;
    if (!root) {
        il_seterr("%s: malformed JSON", lib->path);
        goto out;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "adapters");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(list)) {
        il_seterr("%s: expected {\"adapters\": [{\"name\", \"adapter\", \"data\"}, ...]}",
                  lib->path);
        goto out;
    }
    int n = cJSON_GetArraySize(list);
    if (n == 0) {
        il_seterr("%s: field 'adapters': the list is empty", lib->path);
        goto out;
    }
    if (!(lib->a = il_calloc((size_t)n, sizeof *lib->a))) goto out;
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, list) {
        lib_entry *e = &lib->a[lib->m++];
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *ad = cJSON_GetObjectItemCaseSensitive(it, "adapter");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(it, "data");
        if (!cJSON_IsObject(it)) {
            il_seterr("%s: adapters[%d]: expected an object", lib->path, k);
            goto out;
        }
        if (name && (!cJSON_IsString(name) || !name->valuestring[0])) {
            il_seterr("%s: adapters[%d]: field 'name': expected a non-empty string", lib->path, k);
            goto out;
        }
        if (!cJSON_IsString(ad) || !ad->valuestring[0]) {
            il_seterr("%s: adapters[%d]: field 'adapter': expected the adapter directory (a "
                      "path relative to the manifest)", lib->path, k);
            goto out;
        }
        e->name = name ? il_strdup(name->valuestring) : base_name(ad->valuestring);
        if (!e->name) goto out;
        if (!cJSON_IsString(data) || !data->valuestring[0]) {
            il_seterr("%s: adapter '%s': field 'data': expected the training examples file "
                      "(a path relative to the manifest)", lib->path, e->name);
            goto out;
        }
        for (int j = 0; j < lib->m - 1; j++) {
            if (!strcmp(lib->a[j].name, e->name)) {
                il_seterr("%s: duplicate adapter name '%s' (adapters[%d] and adapters[%d])",
                          lib->path, e->name, j, k);
                goto out;
            }
        }
        if (!(e->adapter_dir = resolve(prefix, ad->valuestring)) ||
            !(e->data_path = resolve(prefix, data->valuestring)))
            goto out;
        if (check_entry(e, lib->max_examples)) {
            il_prefixerr("library %s: adapter '%s'", lib->path, e->name);
            goto out;
        }
        k++;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    free(prefix);
    return rc;
}

il_library *il_library_open(const char *path, int max_examples) {
    if (!path || !path[0]) {
        il_seterr("library: no path given");
        return NULL;
    }
    if (max_examples < 0) {
        il_seterr("library %s: max_examples must be >= 0 (0 = all), got %d", path, max_examples);
        return NULL;
    }
    il_library *lib = il_calloc(1, sizeof *lib);
    if (!lib || !(lib->path = il_strdup(path))) goto fail;
    lib->max_examples = max_examples;
    if (is_directory(path)) {
        if (scan_directory(lib)) goto fail;
    } else if (is_regular_file(path)) {
        lib->manifest = true;
        if (read_manifest(lib)) goto fail;
    } else {
        il_seterr("%s: library not found (expected a directory of adapters or a library.json "
                  "manifest)", path);
        goto fail;
    }
    if (!(lib->docs = il_calloc((size_t)lib->m, sizeof *lib->docs))) goto fail;
    for (int i = 0; i < lib->m; i++) lib->docs[i] = lib->a[i].doc;
    return lib;
fail:
    il_library_free(lib);
    return NULL;
}

int il_library_size(const il_library *lib) { return lib->m; }
const char *il_library_path(const il_library *lib) { return lib->path; }
bool il_library_is_manifest(const il_library *lib) { return lib->manifest; }
int il_library_max_examples(const il_library *lib) { return lib->max_examples; }
const char *il_library_name(const il_library *lib, int i) { return lib->a[i].name; }
const char *il_library_adapter_dir(const il_library *lib, int i) { return lib->a[i].adapter_dir; }
const char *il_library_data_path(const il_library *lib, int i) { return lib->a[i].data_path; }
int il_library_n_examples(const il_library *lib, int i) { return lib->a[i].n_texts; }
int il_library_n_examples_total(const il_library *lib, int i) { return lib->a[i].n_total; }
const char *il_library_bm25_doc(const il_library *lib, int i) { return lib->a[i].doc; }

const char *const *il_library_texts(const il_library *lib, int i) {
    return (const char *const *)lib->a[i].texts;
}

int il_library_find(const il_library *lib, const char *name) {
    for (int i = 0; i < lib->m; i++)
        if (!strcmp(lib->a[i].name, name)) return i;
    return -1;
}

char *il_library_default_index_path(const il_library *lib) {
    if (!lib->manifest) return il_path_join(lib->path, ".ilora-index.json");
    char *prefix = path_prefix(lib->path), *base = base_name(lib->path), *out = NULL;
    if (prefix && base) {
        size_t n = strlen(base);
        if (n > 5 && !strcmp(base + n - 5, ".json")) base[n - 5] = 0;
        out = il_sprintf("%s.%s.ilora-index.json", prefix, base);
    }
    free(prefix);
    free(base);
    return out;
}

il_bm25 *il_library_bm25(const il_library *lib) {
    il_bm25 *b = il_bm25_build(lib->m, lib->docs);
    if (!b) il_prefixerr("library %s: BM25", lib->path);
    return b;
}

il_lora *il_library_load_adapter(const il_library *lib, int i, const il_t5_config *base,
                                 const il_lora_load_opts *opts) {
    if (i < 0 || i >= lib->m) {
        il_seterr("library %s: no adapter %d (the library has %d)", lib->path, i, lib->m);
        return NULL;
    }
    il_lora *a = il_lora_load(lib->a[i].adapter_dir, base, opts);
    if (!a) il_prefixerr("library adapter '%s'", lib->a[i].name);
    return a;
}

/* ===== fingerprints of adapters and embedders ===== */

int il_library_adapter_fingerprint(const il_library *lib, int i, uint64_t *out) {
    const lib_entry *e = &lib->a[i];
    static const char *const files[] = {"adapter_config.json", "adapter_model.safetensors",
                                        "adapter_model.bin"};
    il_buf b = {0};
    int rc = -1;
    for (int k = 0; k < 3; k++) {
        char *p = il_path_join(e->adapter_dir, files[k]);
        if (!p) goto out;
        int r = (k == 0 || is_regular_file(p)) ? fp_add_file(&b, files[k], p) : 0;
        free(p);
        if (r) goto out;
    }
    char hex[17];
    il_fingerprint_hex(e->data_hash, hex);
    if (il_buf_printf(&b, "data\t%zu\t%s\n", e->data_size, hex)) goto out;
    *out = il_xxh64(b.data, b.len, 0);
    rc = 0;
out:
    if (rc) il_prefixerr("library %s: adapter '%s': fingerprint", lib->path, e->name);
    il_buf_free(&b);
    return rc;
}

/* The shards a *.index.json lists in "weight_map", sorted and unique, added to names. */
static int add_shards(const char *index_path, char ***names, int *n) {
    size_t len;
    char *text = il_read_file(index_path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int rc = -1;
    if (!cJSON_IsObject(map)) {
        il_seterr("%s: field 'weight_map': expected an object", index_path);
        goto out;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, map) {
        if (!cJSON_IsString(it)) {
            il_seterr("%s: field 'weight_map': expected file names", index_path);
            goto out;
        }
        bool seen = false;
        for (int k = 0; k < *n && !seen; k++) seen = !strcmp((*names)[k], it->valuestring);
        if (seen) continue;
        char **g = il_realloc(*names, sizeof *g * (size_t)(*n + 1));
        if (!g) goto out;
        *names = g;
        if (!((*names)[*n] = il_strdup(it->valuestring))) goto out;
        (*n)++;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

/* Hash the known files of one directory (sub = its name relative to the embedder dir). */
static int fp_embedder_dir(il_buf *b, const char *dir, const char *sub, int *n_files) {
    static const char *const known[] = {
        "modules.json", "config.json", "sentence_bert_config.json", "tokenizer_config.json",
        "special_tokens_map.json", "vocab.txt", "tokenizer.json", "spiece.model",
        "model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
        "pytorch_model.bin.index.json"};
    const int n_known = (int)(sizeof known / sizeof known[0]);
    char *d = sub[0] ? il_path_join(dir, sub) : il_strdup(dir);
    char **shards = NULL;
    int n_shards = 0, rc = -1;
    if (!d) return -1;
    if (!is_directory(d)) { rc = 0; goto out; } /* e.g. 2_Normalize has no files */
    for (int k = 0; k < n_known; k++) {
        char *p = il_path_join(d, known[k]);
        char *role = sub[0] ? il_sprintf("%s/%s", sub, known[k]) : il_strdup(known[k]);
        int r = !p || !role ? -1 : 0;
        if (!r && is_regular_file(p)) {
            r = fp_add_file(b, role, p);
            if (!r) (*n_files)++;
            if (!r && strstr(known[k], ".index.json")) r = add_shards(p, &shards, &n_shards);
        }
        free(p);
        free(role);
        if (r) goto out;
    }
    if (n_shards > 1) qsort(shards, (size_t)n_shards, sizeof *shards, cmp_cstr);
    for (int k = 0; k < n_shards; k++) {
        char *p = il_path_join(d, shards[k]);
        char *role = sub[0] ? il_sprintf("%s/%s", sub, shards[k]) : il_strdup(shards[k]);
        int r = !p || !role ? -1 : fp_add_file(b, role, p);
        free(p);
        free(role);
        if (r) goto out;
        (*n_files)++;
    }
    rc = 0;
out:
    for (int k = 0; k < n_shards; k++) free(shards[k]);
    free(shards);
    free(d);
    return rc;
}

int il_library_embedder_fingerprint(const char *dir, uint64_t *out) {
    if (!is_directory(dir)) {
        il_seterr("%s: embedder directory not found", dir);
        return -1;
    }
    il_buf b = {0};
    int rc = -1, n_files = 0;
    char **subs = NULL;
    int n_subs = 0;
    if (fp_embedder_dir(&b, dir, "", &n_files)) goto out;
    /* The module subdirectories modules.json names (Pooling config, a Transformer in a
     * subdirectory). A broken modules.json is hashed above and fails at load time. */
    char *mpath = il_path_join(dir, "modules.json");
    if (!mpath) goto out;
    if (is_regular_file(mpath)) {
        size_t len;
        char *text = il_read_file(mpath, &len);
        cJSON *root = text ? cJSON_ParseWithLength(text, len) : NULL;
        free(text);
        const cJSON *m, *mods = cJSON_IsArray(root) ? root : NULL;
        cJSON_ArrayForEach(m, mods) {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(m, "path");
            if (!cJSON_IsString(p) || !p->valuestring[0] || strstr(p->valuestring, ".."))
                continue;
            bool seen = false;
            for (int k = 0; k < n_subs && !seen; k++) seen = !strcmp(subs[k], p->valuestring);
            if (seen) continue;
            char **g = il_realloc(subs, sizeof *g * (size_t)(n_subs + 1));
            if (!g || !(g[n_subs] = il_strdup(p->valuestring))) {
                if (g) subs = g;
                cJSON_Delete(root);
                free(mpath);
                goto out;
            }
            subs = g;
            n_subs++;
        }
        cJSON_Delete(root);
    }
    free(mpath);
    for (int k = 0; k < n_subs; k++)
        if (fp_embedder_dir(&b, dir, subs[k], &n_files)) goto out;
    if (n_files == 0) {
        il_seterr("%s: no model files to fingerprint (config.json, weights, vocabulary)", dir);
        goto out;
    }
    *out = il_xxh64(b.data, b.len, 0);
    rc = 0;
out:
    for (int k = 0; k < n_subs; k++) free(subs[k]);
    free(subs);
    il_buf_free(&b);
    return rc;
}

/* ===== the index ===== */

void il_library_index_free(il_library_index *x) {
    if (!x) return;
    free(x->centroids);
    free(x->n_examples);
    free(x->path);
    memset(x, 0, sizeof *x);
}

static void index_log(const il_index_opts *o, bool warning, const char *fmt, ...)
    IL_PRINTF(3, 4);
static void index_log(const il_index_opts *o, bool warning, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (o && o->log) o->log(o->user, warning, msg);
    else if (warning) fprintf(stderr, "ilora: warning: %s\n", msg);
}

/* A cached entry, matched by name. */
typedef struct {
    const char *name;
    uint64_t fp;
    int n_examples;
    const cJSON *centroid;
} cache_entry;

/* Read a JSON float array of exactly dim finite numbers into out. */
static int read_vector(const cJSON *arr, int dim, float *out) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != dim) return -1;
    const cJSON *v;
    int k = 0;
    cJSON_ArrayForEach(v, arr) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return -1;
        out[k++] = (float)v->valuedouble;
    }
    return 0;
}

/* Parse the cache file; on any mismatch *entries stays empty and a note says why. Never an
 * error except out of memory. */
static int read_cache(const char *path, const il_embedder *e, uint64_t efp, int max_examples,
                      const il_index_opts *o, cJSON **root_out, cache_entry **entries,
                      int *n_entries) {
    *root_out = NULL;
    *entries = NULL;
    *n_entries = 0;
    if (!il_file_exists(path)) return 0;
    size_t len;
    char *text = il_read_file(path, &len);
    if (!text) {
        index_log(o, true, "index %s: cannot read (%s); recomputing every centroid", path,
                  il_errmsg());
        return 0;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *emb = cJSON_GetObjectItemCaseSensitive(root, "embedder");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(emb, "kind");
    const cJSON *dim = cJSON_GetObjectItemCaseSensitive(emb, "dim");
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(emb, "normalize");
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(emb, "fingerprint");
    const cJSON *maxex = cJSON_GetObjectItemCaseSensitive(root, "max_examples");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "adapters");
    uint64_t cached_fp;
    if (!cJSON_IsObject(root) || !cJSON_IsNumber(ver) || !cJSON_IsString(kind) ||
        !cJSON_IsNumber(dim) || !cJSON_IsBool(norm) || !cJSON_IsString(fp) ||
        il_fingerprint_parse(fp->valuestring, &cached_fp) || !cJSON_IsNumber(maxex) ||
        !cJSON_IsArray(list)) {
        index_log(o, true, "index %s: not an ilora index file (or damaged); recomputing "
                  "every centroid", path);
        cJSON_Delete(root);
        return 0;
    }
    const char *why = NULL;
    if (ver->valuedouble != INDEX_VERSION) why = "another index version";
    else if (strcmp(kind->valuestring, il_embedder_kind(e)) ||
             dim->valuedouble != il_embedder_dim(e) ||
             cJSON_IsTrue(norm) != il_embedder_normalizes(e) || cached_fp != efp)
        why = "the embedder changed";
    else if (maxex->valuedouble != max_examples) why = "max_examples changed";
    if (why) {
        index_log(o, false, "index %s: %s; recomputing every centroid", path, why);
        cJSON_Delete(root);
        return 0;
    }
    int n = cJSON_GetArraySize(list);
    cache_entry *ce = il_calloc((size_t)(n ? n : 1), sizeof *ce);
    if (!ce) {
        cJSON_Delete(root);
        return -1;
    }
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *afp = cJSON_GetObjectItemCaseSensitive(it, "fingerprint");
        const cJSON *nex = cJSON_GetObjectItemCaseSensitive(it, "n_examples");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "centroid");
        if (!cJSON_IsString(name) || !cJSON_IsString(afp) || !cJSON_IsNumber(nex) ||
            !cJSON_IsArray(c) || il_fingerprint_parse(afp->valuestring, &ce[k].fp))
            continue; /* a damaged entry is simply not reused */
        ce[k].name = name->valuestring;
        ce[k].n_examples = nex->valueint;
        ce[k].centroid = c;
        k++;
    }
    *root_out = root;
    *entries = ce;
    *n_entries = k;
    return 0;
}

/* Mean of the embedder's vectors of texts[0..n) into c[dim] (double accumulation). */
static int compute_centroid(il_embedder *e, int n, const char *const *texts, float *c) {
    const int dim = il_embedder_dim(e);
    const int batch = n < EMBED_BATCH ? n : EMBED_BATCH;
    double *sum = il_calloc((size_t)dim, sizeof *sum);
    float *vecs = il_malloc((size_t)batch * (size_t)dim * sizeof *vecs);
    int rc = -1;
    if (!sum || !vecs) goto out;
    for (int s = 0; s < n; s += batch) {
        int b = n - s < batch ? n - s : batch;
        if (il_embedder_embed(e, b, texts + s, vecs)) {
            il_prefixerr("example %d", s + 1);
            goto out;
        }
        for (int r = 0; r < b; r++)
            for (int j = 0; j < dim; j++) sum[j] += vecs[(size_t)r * dim + j];
    }
    for (int j = 0; j < dim; j++) {
        c[j] = (float)(sum[j] / n);
        if (!isfinite(c[j])) {
            il_seterr("the centroid is not finite (component %d)", j);
            goto out;
        }
    }
    rc = 0;
out:
    free(sum);
    free(vecs);
    return rc;
}

static int serialize(const il_library *lib, const il_embedder *e, uint64_t efp,
                     const il_library_index *x, const uint64_t *fps, il_buf *b) {
    char hex[17];
    il_fingerprint_hex(efp, hex);
    if (il_buf_printf(b, "{\n  \"version\": %d,\n  \"embedder\": {\"kind\": \"%s\", \"dim\": %d, "
                         "\"normalize\": %s, \"fingerprint\": \"%s\"},\n  \"max_examples\": %d,\n"
                         "  \"adapters\": [\n",
                      INDEX_VERSION, il_embedder_kind(e), x->dim,
                      il_embedder_normalizes(e) ? "true" : "false", hex, x->max_examples))
        return -1;
    for (int i = 0; i < x->m; i++) {
        il_fingerprint_hex(fps[i], hex);
        cJSON *name = cJSON_CreateString(lib->a[i].name);
        char *qname = name ? cJSON_PrintUnformatted(name) : NULL;
        cJSON_Delete(name);
        if (!qname) {
            il_seterr("out of memory");
            return -1;
        }
        int r = il_buf_printf(b, "    {\"name\": %s, \"fingerprint\": \"%s\", \"n_examples\": %d,"
                                 " \"centroid\": [", qname, hex, x->n_examples[i]);
        free(qname);
        if (r) return -1;
        const float *c = x->centroids + (size_t)i * x->dim;
        for (int j = 0; j < x->dim; j++)
            if (il_buf_printf(b, j ? ", %.9g" : "%.9g", (double)c[j])) return -1;
        if (il_buf_puts(b, i + 1 < x->m ? "]},\n" : "]}\n")) return -1;
    }
    return il_buf_puts(b, "  ]\n}\n");
}

/* Write the index unless the file already holds exactly this text. */
static int write_index(const char *path, const il_buf *b, bool *written) {
    *written = false;
    if (il_file_exists(path)) {
        size_t len;
        char *old = il_read_file(path, &len);
        bool same = old && len == b->len && !memcmp(old, b->data, len);
        free(old);
        if (same) return 0;
    }
    if (il_write_file_atomic(path, b->data, b->len)) return -1;
    *written = true;
    return 0;
}

int il_library_index_build(const il_library *lib, il_embedder *e, uint64_t embedder_fp,
                           const il_index_opts *opts, il_library_index *out) {
    memset(out, 0, sizeof *out);
    const int m = lib->m, dim = il_embedder_dim(e);
    uint64_t *fps = il_calloc((size_t)m, sizeof *fps);
    cJSON *root = NULL;
    cache_entry *ce = NULL;
    il_buf json = {0};
    int n_ce = 0, rc = -1;
    if (!fps) goto out;
    out->m = m;
    out->dim = dim;
    out->max_examples = lib->max_examples;
    out->path = opts && opts->index_path ? il_strdup(opts->index_path)
                                         : il_library_default_index_path(lib);
    out->centroids = il_calloc((size_t)m * (size_t)dim, sizeof *out->centroids);
    out->n_examples = il_calloc((size_t)m, sizeof *out->n_examples);
    if (!out->path || !out->centroids || !out->n_examples) goto out;
    for (int i = 0; i < m; i++)
        if (il_library_adapter_fingerprint(lib, i, &fps[i])) goto out;
    if (!(opts && opts->rebuild) &&
        read_cache(out->path, e, embedder_fp, lib->max_examples, opts, &root, &ce, &n_ce))
        goto out;
    for (int i = 0; i < m; i++) {
        const lib_entry *a = &lib->a[i];
        float *c = out->centroids + (size_t)i * dim;
        bool reused = false;
        for (int k = 0; k < n_ce && !reused; k++) {
            if (strcmp(ce[k].name, a->name) || ce[k].fp != fps[i] ||
                ce[k].n_examples != a->n_texts)
                continue;
            reused = read_vector(ce[k].centroid, dim, c) == 0;
        }
        if (!reused && compute_centroid(e, a->n_texts, (const char *const *)a->texts, c)) {
            il_prefixerr("library %s: adapter '%s': %s", lib->path, a->name, a->data_path);
            goto out;
        }
        out->n_examples[i] = a->n_texts;
        if (reused) out->n_reused++;
        else out->n_recomputed++;
        if (opts && opts->progress) opts->progress(opts->user, i + 1, m, a->name, !reused);
    }
    if (!(opts && opts->no_write)) {
        if (serialize(lib, e, embedder_fp, out, fps, &json)) goto out;
        if (write_index(out->path, &json, &out->written)) {
            if (!(opts && opts->write_optional)) {
                il_prefixerr("index");
                goto out;
            }
            index_log(opts, true, "index not cached: %s", il_errmsg());
        }
    }
    rc = 0;
out:
    il_buf_free(&json);
    free(ce);
    cJSON_Delete(root);
    free(fps);
    if (rc) il_library_index_free(out);
    return rc;
}

int il_library_index_load(const il_library *lib, const char *path, int dim,
                          uint64_t embedder_fp, il_library_index *out) {
    memset(out, 0, sizeof *out);
    const int m = lib->m;
    size_t len;
    char *text = il_read_file(path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    bool *seen = il_calloc((size_t)m, sizeof *seen);
    int rc = -1;
    if (!seen) goto out;
    if (!root) {
        il_seterr("%s: malformed JSON", path);
        goto out;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *emb = cJSON_GetObjectItemCaseSensitive(root, "embedder");
    const cJSON *edim = cJSON_GetObjectItemCaseSensitive(emb, "dim");
    const cJSON *efp = cJSON_GetObjectItemCaseSensitive(emb, "fingerprint");
    const cJSON *maxex = cJSON_GetObjectItemCaseSensitive(root, "max_examples");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "adapters");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(list)) {
        il_seterr("%s: expected an index object with an 'adapters' list", path);
        goto out;
    }
    if (ver && !(cJSON_IsNumber(ver) && ver->valuedouble == INDEX_VERSION)) {
        il_seterr("%s: field 'version': only version %d is known", path, INDEX_VERSION);
        goto out;
    }
    if (edim && !(cJSON_IsNumber(edim) && edim->valuedouble == dim)) {
        il_seterr("%s: field 'embedder.dim' is %g but the embedder gives %d-dimensional vectors",
                  path, cJSON_IsNumber(edim) ? edim->valuedouble : -1.0, dim);
        goto out;
    }
    uint64_t file_fp;
    out->fingerprint_matches = cJSON_IsString(efp) &&
                               !il_fingerprint_parse(efp->valuestring, &file_fp) &&
                               file_fp == embedder_fp;
    out->m = m;
    out->dim = dim;
    out->max_examples = cJSON_IsNumber(maxex) ? maxex->valueint : -1;
    out->supplied = true;
    out->path = il_strdup(path);
    out->centroids = il_calloc((size_t)m * (size_t)dim, sizeof *out->centroids);
    out->n_examples = il_calloc((size_t)m, sizeof *out->n_examples);
    if (!out->path || !out->centroids || !out->n_examples) goto out;
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "centroid");
        const cJSON *nex = cJSON_GetObjectItemCaseSensitive(it, "n_examples");
        if (!cJSON_IsString(name)) {
            il_seterr("%s: adapters[%d]: field 'name': expected a string", path, k);
            goto out;
        }
        int i = il_library_find(lib, name->valuestring);
        if (i < 0) {
            il_seterr("%s: adapter '%s' is not in the library %s", path, name->valuestring,
                      lib->path);
            goto out;
        }
        if (seen[i]) {
            il_seterr("%s: adapter '%s' appears twice", path, name->valuestring);
            goto out;
        }
        seen[i] = true;
        if (read_vector(c, dim, out->centroids + (size_t)i * dim)) {
            il_seterr("%s: adapter '%s': field 'centroid': expected %d finite numbers (the "
                      "embedder's dimension)%s", path, name->valuestring, dim,
                      cJSON_IsArray(c) ? "" : ", got no list");
            if (cJSON_IsArray(c) && cJSON_GetArraySize(c) != dim)
                il_seterr("%s: adapter '%s': field 'centroid' has %d values but the embedder "
                          "gives %d-dimensional vectors", path, name->valuestring,
                          cJSON_GetArraySize(c), dim);
            goto out;
        }
        out->n_examples[i] = cJSON_IsNumber(nex) ? nex->valueint : 0;
        k++;
    }
    for (int i = 0; i < m; i++) {
        if (!seen[i]) {
            il_seterr("%s: no centroid for adapter '%s' of the library %s", path,
                      lib->a[i].name, lib->path);
            goto out;
        }
    }
    rc = 0;
out:
    free(seen);
    cJSON_Delete(root);
    if (rc) il_library_index_free(out);
    return rc;
}
