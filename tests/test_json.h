/* test_json.h - reading the tokenizer goldens (tests/golden/<model>/tokenize.json) for the
 * tokenizer tests: cJSON stops a string at a NUL, so the goldens' "\u0000" escapes are
 * carried through parsing as U+E000 and turned back into NUL bytes by test_restore_nul().
 * Header-only, like check.h. */
#ifndef ILORA_TEST_JSON_H
#define ILORA_TEST_JSON_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* s with every U+E000 turned back into a NUL byte: the exact bytes (malloc'd) and *len. */
static inline char *test_restore_nul(const char *s, size_t *len) {
    size_t n = strlen(s), o = 0;
    char *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        if (i + 2 < n && memcmp(s + i, "\xee\x80\x80", 3) == 0) {
            out[o++] = 0;
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = 0;
    *len = o;
    return out;
}

/* The JSON file at path, parsed with each "\u0000" escape rewritten to "\ue000" (U+E000
 * is absent from the goldens). NULL if it cannot be read. */
static inline cJSON *test_load_goldens(const char *path) {
    size_t len;
    char *raw = il_read_file(path, &len);
    if (!raw) return NULL;
    il_buf b = {0};
    for (size_t i = 0; i < len; i++) {
        if (i + 6 <= len && memcmp(raw + i, "\\u0000", 6) == 0) {
            il_buf_puts(&b, "\\ue000");
            i += 5;
        } else {
            il_buf_append(&b, raw + i, 1);
        }
    }
    free(raw);
    cJSON *root = cJSON_ParseWithLength(b.data, b.len);
    il_buf_free(&b);
    return root;
}

/* ids[0..n) equal the golden JSON array of numbers. */
static inline bool test_ids_equal_json(const int32_t *ids, int n, const cJSON *arr) {
    if (cJSON_GetArraySize(arr) != n) return false;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) if ((int32_t)e->valuedouble != ids[i++]) return false;
    return true;
}

#endif
