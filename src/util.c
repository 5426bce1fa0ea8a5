/* util.c - see util.h. */
#define _XOPEN_SOURCE 700 /* nftw (il_remove_tree) */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- errors ---- */

static _Thread_local char err_msg[2048];

void il_seterr(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
}

void il_prefixerr(const char *fmt, ...) {
    char prefix[1024], old[sizeof err_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    /* A very long message is cut at the buffer's end, which is fine for a one-liner. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation"
    snprintf(err_msg, sizeof err_msg, "%s: %s", prefix, old);
#pragma GCC diagnostic pop
}

const char *il_errmsg(void) { return err_msg[0] ? err_msg : "unknown error"; }

/* ---- allocation ---- */

void *il_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) il_seterr("out of memory (%zu bytes)", n);
    return p;
}

void *il_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) il_seterr("out of memory (%zu x %zu bytes)", count, size);
    return p;
}

void *il_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) il_seterr("out of memory (%zu bytes)", n);
    return q;
}

char *il_strdup(const char *s) { return il_strndup(s, strlen(s)); }

char *il_strndup(const char *s, size_t n) {
    char *p = il_malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *il_sprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { il_seterr("formatting failed"); return NULL; }
    char *p = il_malloc((size_t)n + 1);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

bool il_mul_overflows(size_t a, size_t b, size_t *out) {
    return __builtin_mul_overflow(a, b, out);
}

/* ---- files ---- */

char *il_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { il_seterr("%s: cannot open: %s", path, strerror(errno)); return NULL; }
    il_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (il_buf_append(&b, chunk, n)) { fclose(f); il_buf_free(&b); return NULL; }
    }
    if (ferror(f)) {
        il_seterr("%s: read error: %s", path, strerror(errno));
        fclose(f); il_buf_free(&b); return NULL;
    }
    fclose(f);
    if (!b.data && il_buf_append(&b, "", 0)) return NULL;
    if (len) *len = b.len;
    return b.data;
}

int il_mmap_open(il_mmap *m, const char *path) {
    m->data = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) { il_seterr("%s: cannot open: %s", path, strerror(errno)); return -1; }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        il_seterr("%s: cannot stat: %s", path, strerror(errno)); close(fd); return -1;
    }
    if (!S_ISREG(st.st_mode)) { il_seterr("%s: not a regular file", path); close(fd); return -1; }
    if (st.st_size == 0) { close(fd); m->data = (const uint8_t *)""; return 0; }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) { il_seterr("%s: cannot map: %s", path, strerror(errno)); return -1; }
    m->data = p;
    m->len = (size_t)st.st_size;
    return 0;
}

void il_mmap_close(il_mmap *m) {
    if (m->len) munmap((void *)m->data, m->len);
    m->data = NULL;
    m->len = 0;
}

bool il_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool il_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *il_path_join(const char *dir, const char *name) {
    size_t n = strlen(dir);
    if (n && dir[n - 1] == '/') return il_sprintf("%s%s", dir, name);
    return il_sprintf("%s/%s", dir, name);
}

/* nftw callback: files and links are unlinked, directories removed after their contents
 * (FTW_DEPTH). A failure stops the walk. */
static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

void il_remove_tree(const char *path) {
    if (path) nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int il_write_file_atomic(const char *path, const void *data, size_t len) {
    char *tmp = il_sprintf("%s.tmp.%ld", path, (long)getpid());
    if (!tmp) return -1;
    FILE *f = fopen(tmp, "wb");
    if (!f) { il_seterr("%s: cannot create: %s", path, strerror(errno)); free(tmp); return -1; }
    bool ok = fwrite(data, 1, len, f) == len;
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        il_seterr("%s: cannot write: %s", path, strerror(errno));
        remove(tmp); free(tmp); return -1;
    }
    free(tmp);
    return 0;
}

/* ---- UTF-8 ---- */

int il_utf8_decode(const char *s, size_t len, uint32_t *cp) {
    const uint8_t *u = (const uint8_t *)s;
    if (len == 0) return 0;
    uint8_t c = u[0];
    if (c < 0x80) { *cp = c; return 1; }
    int n;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) { n = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)n > len) return 0;
    for (int i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (u[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

bool il_utf8_valid(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        int n = il_utf8_decode(s + i, len - i, &cp);
        if (!n) return false;
        i += (size_t)n;
    }
    return true;
}

int il_utf8_encode(uint32_t cp, char *out) {
    uint8_t *o = (uint8_t *)out;
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | (cp >> 6)); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12)); o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18)); o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

bool il_json_has_nul_escape(const char *s, size_t len) {
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\\') continue;
        if (s[i + 1] == 'u' && i + 5 < len && !memcmp(s + i + 2, "0000", 4)) return true;
        i++; /* skip the escaped character, so "\\u0000" (a backslash, then text) is fine */
    }
    return false;
}

/* ---- buffers ---- */

int il_buf_append(il_buf *b, const void *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = il_realloc(b->data, cap);
        if (!d) return -1;
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int il_buf_puts(il_buf *b, const char *s) { return il_buf_append(b, s, strlen(s)); }

int il_buf_printf(il_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { il_seterr("formatting failed"); return -1; }
    if (il_buf_append(b, NULL, 0)) return -1;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t need = b->len + (size_t)n + 1, cap = b->cap;
        while (cap < need) cap *= 2;
        char *d = il_realloc(b->data, cap);
        if (!d) return -1;
        b->data = d;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int il_buf_json_string(il_buf *b, const char *s) {
    int rc = il_buf_puts(b, "\"");
    for (; *s && rc == 0; s++) {
        uint8_t c = (uint8_t)*s;
        if (c == '"') rc = il_buf_puts(b, "\\\"");
        else if (c == '\\') rc = il_buf_puts(b, "\\\\");
        else if (c == '\n') rc = il_buf_puts(b, "\\n");
        else if (c == '\r') rc = il_buf_puts(b, "\\r");
        else if (c == '\t') rc = il_buf_puts(b, "\\t");
        else if (c < 0x20) rc = il_buf_printf(b, "\\u%04x", c);
        else rc = il_buf_append(b, s, 1);
    }
    return rc ? rc : il_buf_puts(b, "\"");
}

void il_buf_free(il_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- half floats ---- */

static float bits_to_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f32_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

float il_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

float il_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { /* subnormal: normalise in integer arithmetic (immune to DAZ) */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7F800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    return bits_to_f32(u);
}

uint16_t il_f32_to_bf16(float f) {
    uint32_t u = f32_to_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

uint16_t il_f32_to_f16(float f) {
    uint32_t u = f32_to_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* rounds to inf */
    if (a < 0x38800000u) {                                   /* subnormal or zero */
        if (a < 0x33000000u) return (uint16_t)sign;
        uint32_t e = a >> 23, m = (a & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126 - e; /* value = m * 2^(e-150); f16 subnormal unit is 2^-24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = a + 0xFFFu + ((a >> 13) & 1u) - 0x38000000u;
    return (uint16_t)(sign | (r >> 13));
}

/* ---- time, floating-point mode ---- */

double il_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void flush_this_thread(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ | DAZ */
#endif
}

void il_flush_denormals(void) {
    flush_this_thread();
#ifdef _OPENMP
#pragma omp parallel
    flush_this_thread();
#endif
}
