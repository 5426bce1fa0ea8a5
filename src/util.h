/* util.h - errors, allocation, files and small string helpers shared by every module.
 *
 * Error convention (library-wide): a function that can fail returns NULL or -1 and
 * records a one-line message with il_seterr(); the caller either adds context with
 * il_prefixerr() and fails in turn, or reports il_errmsg() (the CLI prints
 * "ilora: error: <msg>" and exits 1). Messages name the file and the field or tensor.
 * The message buffer is thread-local. Library code never calls exit().
 */
#ifndef ILORA_UTIL_H
#define ILORA_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#if defined(__GNUC__)
#define IL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define IL_PRINTF(a, b)
#endif

/* Errors. */
void il_seterr(const char *fmt, ...) IL_PRINTF(1, 2);
/* Prepend "prefix: " to the current message, e.g. il_prefixerr("%s", path). */
void il_prefixerr(const char *fmt, ...) IL_PRINTF(1, 2);
const char *il_errmsg(void);

/* Allocation: on failure these set an error and return NULL (callers check). */
void *il_malloc(size_t n);
void *il_calloc(size_t count, size_t size);
void *il_realloc(void *p, size_t n);
char *il_strdup(const char *s);
char *il_strndup(const char *s, size_t n);
char *il_sprintf(const char *fmt, ...) IL_PRINTF(1, 2); /* malloc'd */
/* Overflow-checked size arithmetic: returns false on overflow. */
bool il_mul_overflows(size_t a, size_t b, size_t *out);

/* Whole-file read (NUL-terminated; *len excludes the NUL). NULL + error on failure. */
char *il_read_file(const char *path, size_t *len);

/* Read-only memory mapping of a whole file. */
typedef struct {
    const uint8_t *data;
    size_t len;
} il_mmap;
int il_mmap_open(il_mmap *m, const char *path);
void il_mmap_close(il_mmap *m);

bool il_file_exists(const char *path);
bool il_dir_exists(const char *path);
char *il_path_join(const char *dir, const char *name); /* malloc'd */
/* Remove path and, for a directory, everything below it (links are removed, never
 * followed). NULL or a missing path is a no-op; errors are ignored: this is cleanup. */
void il_remove_tree(const char *path);

/* Write a file atomically: data goes to "<path>.tmp.<pid>" which is renamed on success,
 * so a failure never leaves a half-written file at path. */
int il_write_file_atomic(const char *path, const void *data, size_t len);

/* UTF-8: true if s[0..len) is well-formed (no overlongs, surrogates or > U+10FFFF). */
bool il_utf8_valid(const char *s, size_t len);
/* Decode one code point at s (len bytes available); returns bytes consumed (0 if invalid). */
int il_utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Encode cp into out (at least 4 bytes); returns bytes written. */
int il_utf8_encode(uint32_t cp, char *out);

/* True if JSON text s[0..len) holds a \u0000 escape: cJSON would cut that string short at
 * the NUL, so readers reject such input instead of silently using a truncated text. */
bool il_json_has_nul_escape(const char *s, size_t len);

/* Growable byte buffer (always NUL-terminated when non-empty). */
typedef struct {
    char *data;
    size_t len, cap;
} il_buf;
int il_buf_append(il_buf *b, const void *p, size_t n);
int il_buf_puts(il_buf *b, const char *s);
int il_buf_printf(il_buf *b, const char *fmt, ...) IL_PRINTF(2, 3);
void il_buf_free(il_buf *b);
/* Append s as a JSON string literal: quotes, backslash, \n \r \t and other control
 * characters escaped as Python's json and serde_json do; UTF-8 passes through. */
int il_buf_json_string(il_buf *b, const char *s);

/* fp16 / bf16 <-> fp32 (exact widening; F16 subnormals decoded as subnormals). */
float il_f16_to_f32(uint16_t h);
float il_bf16_to_f32(uint16_t h);
uint16_t il_f32_to_bf16(float f); /* round to nearest even */
uint16_t il_f32_to_f16(float f);  /* round to nearest even */

/* Monotonic seconds. */
double il_now(void);

/* Flush denormals to zero (FTZ/DAZ) in the calling thread and in every OpenMP worker. */
void il_flush_denormals(void);

#endif
