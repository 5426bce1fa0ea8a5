/* safetensors.c - read (zero copy, via mmap) and write safetensors files.
 *
 * Layout: u64 little-endian N, an N-byte JSON header, then the data section. The header
 * maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
 * relative to the data section) plus an optional "__metadata__" string map. The reader
 * validates like the Rust reference implementation: the header is UTF-8 JSON followed
 * only by whitespace padding, and the tensors tile the data section exactly (no gaps,
 * no overlaps, no trailing bytes). Data start is 8 + N and is not necessarily aligned. */
#include "tensors.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADER_SIZE 100000000ull /* the reference's limit (100 MB) */
#define MAX_JSON_INT 9007199254740992.0 /* 2^53: beyond it doubles are not exact */

typedef struct {
    const char *path;
    il_tensor_file *f;
    const uint8_t *data; /* start of the data section */
    size_t data_len;
    const cJSON **non_int; /* number nodes not written as a plain non-negative integer */
    size_t n_non_int;
} st_reader;

typedef struct {
    uint64_t begin, end;
    int idx;
} st_span;

/* "path: tensor 'name': <message>" */
static void tensor_err(const st_reader *r, const char *name, const char *fmt, ...)
    IL_PRINTF(3, 4);
static void tensor_err(const st_reader *r, const char *name, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    il_seterr("%s: tensor '%s': %s", r->path, name, msg);
}

static uint64_t read_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- header lexing: the checks cJSON does not make ---- */

static bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_number_char(char c) {
    return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Skip a string starting at s[i] == '"'; returns the index after the closing quote,
 * or 0 for raw control characters (cJSON accepts them) and escaped NULs (which would
 * silently truncate a C string). */
static size_t lex_string(const char *s, size_t n, size_t i) {
    for (i++; i < n && s[i] != '"'; i++) {
        if ((uint8_t)s[i] < 0x20) return 0;
        if (s[i] == '\\') {
            if (i + 6 <= n && memcmp(s + i + 1, "u0000", 5) == 0) return 0;
            i++;
        }
    }
    return i < n ? i + 1 : 0;
}

/* Walk the JSON text s[0..n). For each number literal, in document order, record in
 * is_int whether it is a plain non-negative integer (serde rejects 2.0, 1e3 and -0 as
 * sizes; cJSON turns all of them into doubles). Also rejects control characters between
 * tokens, which cJSON skips as whitespace (NUL included). Returns -1 if the text is bad. */
static int lex_header(const char *s, size_t n, bool **is_int, size_t *count) {
    il_buf flags = {0};
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            if (!(i = lex_string(s, n, i))) goto bad;
        } else if (c == '-' || is_digit(c)) {
            size_t j = i;
            bool plain = true;
            for (; j < n && is_number_char(s[j]); j++) plain = plain && is_digit(s[j]);
            if (plain && j - i > 1 && s[i] == '0') goto bad; /* leading zero: not JSON */
            if (il_buf_append(&flags, &plain, 1)) { il_buf_free(&flags); return -1; }
            i = j;
        } else if ((uint8_t)c < 0x20 && !is_json_space(c)) {
            goto bad;
        } else {
            i++;
        }
    }
    *is_int = (bool *)flags.data;
    *count = flags.len;
    return 0;
bad:
    il_buf_free(&flags);
    *is_int = NULL;
    return -1;
}

static void gather_numbers(const cJSON *node, const cJSON **out, size_t cap, size_t *k) {
    for (; node; node = node->next) {
        if (cJSON_IsNumber(node)) {
            if (*k < cap) out[*k] = node;
            (*k)++;
        }
        gather_numbers(node->child, out, cap, k);
    }
}

/* Pair the lexer's flags with cJSON's number nodes (both in document order) and keep
 * the nodes that were not plain integers. */
static int mark_non_integers(st_reader *r, const cJSON *root, const char *text, size_t len) {
    bool *is_int;
    size_t count, k = 0;
    if (lex_header(text, len, &is_int, &count)) {
        if (!is_int) il_seterr("%s: invalid header JSON", r->path);
        return -1;
    }
    const cJSON **nodes = il_calloc(count ? count : 1, sizeof *nodes);
    r->non_int = il_calloc(count ? count : 1, sizeof *r->non_int);
    if (!nodes || !r->non_int) { free(nodes); free(is_int); return -1; }
    gather_numbers(root, nodes, count, &k);
    if (k != count) { /* cannot happen for JSON both agree on */
        il_seterr("%s: invalid header JSON", r->path);
        free(nodes); free(is_int);
        return -1;
    }
    for (size_t i = 0; i < count; i++)
        if (!is_int[i]) r->non_int[r->n_non_int++] = nodes[i];
    free(nodes);
    free(is_int);
    return 0;
}

/* A JSON value that is a non-negative integer below 2^53, written as one. */
static int read_uint(const st_reader *r, const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    for (size_t i = 0; i < r->n_non_int; i++)
        if (r->non_int[i] == v) return -1;
    if (!(v->valuedouble >= 0 && v->valuedouble < MAX_JSON_INT)) return -1;
    *out = (uint64_t)v->valuedouble;
    return 0;
}

/* ---- header entries ---- */

static int parse_metadata(st_reader *r, const cJSON *m) {
    il_tensor_file *f = r->f;
    if (f->meta_keys) { il_seterr("%s: duplicate '__metadata__' in header", r->path); return -1; }
    if (!cJSON_IsObject(m)) { il_seterr("%s: '__metadata__' is not an object", r->path); return -1; }
    int n = cJSON_GetArraySize(m);
    f->meta_keys = il_calloc((size_t)n + 1, sizeof *f->meta_keys);
    f->meta_values = il_calloc((size_t)n + 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values) return -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, m) {
        if (!cJSON_IsString(e)) {
            il_seterr("%s: '__metadata__': value of '%s' is not a string", r->path, e->string);
            return -1;
        }
        for (int i = 0; i < f->n_meta; i++) {
            if (strcmp(f->meta_keys[i], e->string) == 0) {
                il_seterr("%s: '__metadata__': duplicate key '%s'", r->path, e->string);
                return -1;
            }
        }
        char *k = il_strdup(e->string), *v = k ? il_strdup(e->valuestring) : NULL;
        if (!v) { free(k); return -1; }
        f->meta_keys[f->n_meta] = k;
        f->meta_values[f->n_meta++] = v;
    }
    return 0;
}

static int parse_shape(const st_reader *r, const char *name, const cJSON *shape, il_tensor *t) {
    if (!cJSON_IsArray(shape)) { tensor_err(r, name, "missing or invalid 'shape'"); return -1; }
    int nd = cJSON_GetArraySize(shape);
    if (nd > IL_MAX_DIMS) {
        tensor_err(r, name, "shape has %d dimensions (at most %d supported)", nd, IL_MAX_DIMS);
        return -1;
    }
    t->ndim = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (read_uint(r, d, &v)) {
            tensor_err(r, name, "shape must be an array of non-negative integers");
            return -1;
        }
        t->shape[t->ndim++] = (int64_t)v;
    }
    return 0;
}

static int parse_offsets(const st_reader *r, const char *name, const cJSON *offs, uint64_t out[2]) {
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        read_uint(r, offs->child, &out[0]) || read_uint(r, offs->child->next, &out[1])) {
        tensor_err(r, name, "'data_offsets' must be two non-negative integers");
        return -1;
    }
    if (out[0] > out[1]) {
        tensor_err(r, name, "data_offsets [%llu,%llu]: begin is after end",
                   (unsigned long long)out[0], (unsigned long long)out[1]);
        return -1;
    }
    if (out[1] > r->data_len) {
        tensor_err(r, name, "data_offsets [%llu,%llu] outside the data section (%zu bytes)",
                   (unsigned long long)out[0], (unsigned long long)out[1], r->data_len);
        return -1;
    }
    return 0;
}

/* Byte size implied by shape and dtype, overflow-checked. */
static int expected_bytes(const st_reader *r, const il_tensor *t, size_t *out) {
    size_t n = il_dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++) {
        if (il_mul_overflows(n, (size_t)t->shape[i], &n)) {
            tensor_err(r, t->name, "shape is too large");
            return -1;
        }
    }
    *out = n;
    return 0;
}

static int parse_tensor(st_reader *r, const cJSON *e, il_tensor *t, st_span *span) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) { tensor_err(r, name, "entry is not an object"); return -1; }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt)) { tensor_err(r, name, "missing or invalid 'dtype'"); return -1; }
    if (il_dtype_from_name(dt->valuestring, &t->dtype)) {
        tensor_err(r, name, "unknown dtype '%s'", dt->valuestring);
        return -1;
    }
    uint64_t off[2];
    size_t want;
    if (parse_shape(r, name, cJSON_GetObjectItemCaseSensitive(e, "shape"), t) ||
        parse_offsets(r, name, cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), off))
        return -1;
    t->name = il_strdup(name); /* set before expected_bytes so its errors can name it */
    if (!t->name || expected_bytes(r, t, &want)) return -1;
    if (off[1] - off[0] != want) {
        tensor_err(r, name, "data_offsets [%llu,%llu] hold %llu bytes but shape and dtype %s "
                   "need %zu", (unsigned long long)off[0], (unsigned long long)off[1],
                   (unsigned long long)(off[1] - off[0]), il_dtype_name(t->dtype), want);
        return -1;
    }
    t->nbytes = want;
    t->data = want ? r->data + off[0] : NULL;
    span->begin = off[0];
    span->end = off[1];
    return 0;
}

static int span_cmp(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors must cover the data section exactly, like the reference requires. */
static int check_coverage(const st_reader *r, st_span *spans, int n) {
    qsort(spans, (size_t)n, sizeof *spans, span_cmp);
    const il_tensor *ts = r->f->tensors;
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ts[spans[i].idx].name;
        if (spans[i].begin < pos) {
            tensor_err(r, name, "data_offsets [%llu,%llu] overlap tensor '%s'",
                       (unsigned long long)spans[i].begin, (unsigned long long)spans[i].end,
                       ts[spans[i - 1].idx].name);
            return -1;
        }
        if (spans[i].begin > pos) {
            tensor_err(r, name, "data_offsets [%llu,%llu] leave a gap: bytes [%llu,%llu) of "
                       "the data section belong to no tensor", (unsigned long long)spans[i].begin,
                       (unsigned long long)spans[i].end, (unsigned long long)pos,
                       (unsigned long long)spans[i].begin);
            return -1;
        }
        pos = spans[i].end;
    }
    if (pos != r->data_len) {
        il_seterr("%s: the tensors end at byte %llu of the data section but it has %zu bytes "
                  "(incomplete metadata or trailing data)", r->path, (unsigned long long)pos,
                  r->data_len);
        return -1;
    }
    return 0;
}

static int parse_entries(st_reader *r, const cJSON *root) {
    il_tensor_file *f = r->f;
    int n = cJSON_GetArraySize(root);
    f->tensors = il_calloc((size_t)n + 1, sizeof *f->tensors);
    st_span *spans = il_calloc((size_t)n + 1, sizeof *spans);
    if (!f->tensors || !spans) { free(spans); return -1; }
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (parse_metadata(r, e)) goto fail;
            continue;
        }
        il_tensor *t = &f->tensors[f->n_tensors];
        spans[f->n_tensors].idx = f->n_tensors;
        int rc = parse_tensor(r, e, t, &spans[f->n_tensors]);
        if (t->name) f->n_tensors++; /* count it so il_tensor_file_free frees the name */
        if (rc) goto fail;
    }
    if (il_tensor_file_build_index(f) || check_coverage(r, spans, f->n_tensors)) goto fail;
    free(spans);
    return 0;
fail:
    free(spans);
    return -1;
}

/* Parse the header at map[8..8+N) and fill r->f. */
static int parse_header(st_reader *r) {
    const il_mmap *m = &r->f->map;
    if (m->len < 8) {
        il_seterr("%s: file too short for safetensors (%zu bytes, need at least 8)", r->path, m->len);
        return -1;
    }
    uint64_t n = read_le64(m->data);
    if (n > MAX_HEADER_SIZE || n > m->len - 8) {
        il_seterr("%s: header length %llu is invalid (file is %zu bytes, limit %llu)", r->path,
                  (unsigned long long)n, m->len, MAX_HEADER_SIZE);
        return -1;
    }
    const char *text = (const char *)m->data + 8;
    r->data = m->data + 8 + n;
    r->data_len = m->len - 8 - (size_t)n;
    if (!il_utf8_valid(text, (size_t)n)) {
        il_seterr("%s: header is not valid UTF-8", r->path);
        return -1;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
    bool ok = root != NULL;
    /* Only whitespace may pad the header; NUL padding is invalid, as in the reference. */
    for (const char *p = end; ok && p < text + n; p++) ok = is_json_space(*p);
    if (!ok) {
        il_seterr("%s: invalid header JSON", r->path);
        cJSON_Delete(root);
        return -1;
    }
    int rc = -1;
    if (!cJSON_IsObject(root)) il_seterr("%s: header is not a JSON object", r->path);
    else if (mark_non_integers(r, root, text, (size_t)(end - text)) == 0)
        rc = parse_entries(r, root);
    cJSON_Delete(root);
    return rc;
}

il_tensor_file *il_safetensors_open(const char *path) {
    il_tensor_file *f = il_calloc(1, sizeof *f);
    if (!f) return NULL;
    st_reader r = {.path = path, .f = f};
    if (!(f->path = il_strdup(path)) || il_mmap_open(&f->map, path) || parse_header(&r)) {
        free(r.non_int);
        il_tensor_file_free(f);
        return NULL;
    }
    free(r.non_int);
    return f;
}

/* ---- writer ---- */

typedef struct {
    const char *key, *value;
} st_meta;

static int tensor_ptr_cmp(const void *a, const void *b) {
    return strcmp((*(const il_tensor *const *)a)->name, (*(const il_tensor *const *)b)->name);
}

static int meta_cmp(const void *a, const void *b) {
    return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

static int check_write_tensor(const char *path, const il_tensor *t) {
    if (!t->name || !il_utf8_valid(t->name, strlen(t->name)) ||
        strcmp(t->name, "__metadata__") == 0) {
        il_seterr("%s: invalid tensor name '%s'", path, t->name ? t->name : "(null)");
        return -1;
    }
    if ((unsigned)t->dtype >= IL_DTYPE_COUNT || t->ndim < 0 || t->ndim > IL_MAX_DIMS) {
        il_seterr("%s: tensor '%s': invalid dtype or number of dimensions", path, t->name);
        return -1;
    }
    int64_t numel = il_tensor_numel(t);
    size_t want;
    if (numel < 0 || il_mul_overflows((size_t)numel, il_dtype_size(t->dtype), &want) ||
        want != t->nbytes || (t->nbytes && !t->data)) {
        il_seterr("%s: tensor '%s': %zu bytes of data do not match its shape and dtype %s",
                  path, t->name, t->nbytes, il_dtype_name(t->dtype));
        return -1;
    }
    return 0;
}

/* Sort tensors by name and check them; rejects duplicates. */
static const il_tensor **sorted_tensors(const char *path, const il_tensor *ts, int n) {
    const il_tensor **s = il_calloc((size_t)n + 1, sizeof *s);
    if (!s) return NULL;
    for (int i = 0; i < n; i++) {
        if (check_write_tensor(path, &ts[i])) { free(s); return NULL; }
        s[i] = &ts[i];
    }
    qsort(s, (size_t)n, sizeof *s, tensor_ptr_cmp);
    for (int i = 1; i < n; i++) {
        if (strcmp(s[i]->name, s[i - 1]->name) == 0) {
            il_seterr("%s: duplicate tensor name '%s'", path, s[i]->name);
            free(s);
            return NULL;
        }
    }
    return s;
}

static st_meta *sorted_meta(const char *path, const char *const *keys,
                            const char *const *values, int n) {
    st_meta *m = il_calloc((size_t)n + 1, sizeof *m);
    if (!m) return NULL;
    for (int i = 0; i < n; i++) {
        m[i].key = keys[i];
        m[i].value = values[i];
        if (!keys[i] || !values[i] || !il_utf8_valid(keys[i], strlen(keys[i])) ||
            !il_utf8_valid(values[i], strlen(values[i]))) {
            il_seterr("%s: metadata entry %d is missing or not UTF-8", path, i);
            free(m);
            return NULL;
        }
    }
    qsort(m, (size_t)n, sizeof *m, meta_cmp);
    for (int i = 1; i < n; i++) {
        if (strcmp(m[i].key, m[i - 1].key) == 0) {
            il_seterr("%s: duplicate metadata key '%s'", path, m[i].key);
            free(m);
            return NULL;
        }
    }
    return m;
}

/* {"__metadata__":{...},"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]},...}
 * padded with spaces so the data section starts at a multiple of 8. */
static int build_header(il_buf *h, const il_tensor **ts, int n, const st_meta *meta,
                        int n_meta, size_t *data_len) {
    int rc = il_buf_puts(h, "{");
    bool first = true;
    if (n_meta > 0) {
        rc = rc ? rc : il_buf_puts(h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta && rc == 0; i++) {
            rc = (i && il_buf_puts(h, ",")) || il_buf_json_string(h, meta[i].key) ||
                 il_buf_puts(h, ":") || il_buf_json_string(h, meta[i].value);
        }
        rc = rc ? rc : il_buf_puts(h, "}");
        first = false;
    }
    size_t off = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        rc = (!first && il_buf_puts(h, ",")) || il_buf_json_string(h, ts[i]->name) ||
             il_buf_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", il_dtype_name(ts[i]->dtype));
        for (int d = 0; d < ts[i]->ndim && rc == 0; d++)
            rc = il_buf_printf(h, "%s%lld", d ? "," : "", (long long)ts[i]->shape[d]);
        rc = rc ? rc : il_buf_printf(h, "],\"data_offsets\":[%zu,%zu]}", off, off + ts[i]->nbytes);
        off += ts[i]->nbytes;
        first = false;
    }
    rc = rc ? rc : il_buf_puts(h, "}");
    while (rc == 0 && h->len % 8) rc = il_buf_puts(h, " ");
    *data_len = off;
    return rc ? -1 : 0;
}

int il_safetensors_write(const char *path, const il_tensor *tensors, int n,
                         const char *const *meta_keys, const char *const *meta_values, int n_meta) {
    if (n < 0 || n_meta < 0 || (n > 0 && !tensors) || (n_meta > 0 && (!meta_keys || !meta_values))) {
        il_seterr("%s: invalid arguments to the safetensors writer", path);
        return -1;
    }
    const il_tensor **ts = sorted_tensors(path, tensors, n);
    st_meta *meta = ts ? sorted_meta(path, meta_keys, meta_values, n_meta) : NULL;
    il_buf h = {0};
    size_t data_len = 0, total;
    uint8_t *out = NULL;
    int rc = -1;
    if (!meta || build_header(&h, ts, n, meta, n_meta, &data_len)) goto done;
    if (__builtin_add_overflow(8 + h.len, data_len, &total)) {
        il_seterr("%s: file too large", path);
        goto done;
    }
    if (!(out = il_malloc(total))) goto done;
    put_le64(out, h.len);
    memcpy(out + 8, h.data, h.len);
    size_t pos = 8 + h.len;
    for (int i = 0; i < n; i++) {
        if (ts[i]->nbytes) memcpy(out + pos, ts[i]->data, ts[i]->nbytes);
        pos += ts[i]->nbytes;
    }
    rc = il_write_file_atomic(path, out, total);
done:
    free(out);
    il_buf_free(&h);
    free(meta);
    free(ts);
    return rc;
}
