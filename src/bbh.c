/* bbh.c - see bbh.h. */
#include "bbh.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

static char *task_name(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".json")) n -= 5;
    return il_strndup(base, n);
}

static int take_string(cJSON *ex, const char *key, char **out, const char *path, int i) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(ex, key);
    if (!cJSON_IsString(v)) {
        il_seterr("%s: examples[%d]: field '%s': %s", path, i, key, v ? "expected a string" : "missing");
        return -1;
    }
    *out = il_strdup(v->valuestring);
    return *out ? 0 : -1;
}

int il_bbh_load(il_bbh_task *t, const char *path) {
    memset(t, 0, sizeof *t);
    size_t len;
    char *text = il_read_file(path, &len);
    if (!text) return -1;
    cJSON *root = NULL;
    int rc = -1;
    if (!il_utf8_valid(text, len)) { il_seterr("%s: invalid UTF-8", path); goto done; }
    if (il_json_has_nul_escape(text, len)) {
        il_seterr("%s: a string holds a NUL character (\\u0000)", path);
        goto done;
    }
    root = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(root)) { il_seterr("%s: not a JSON object (malformed JSON?)", path); goto done; }
    cJSON *examples = cJSON_GetObjectItemCaseSensitive(root, "examples");
    if (!cJSON_IsArray(examples)) { il_seterr("%s: field 'examples': expected an array", path); goto done; }
    int n = cJSON_GetArraySize(examples);
    if (n == 0) { il_seterr("%s: field 'examples': empty task (no examples)", path); goto done; }
    t->name = task_name(path);
    t->input = il_calloc((size_t)n, sizeof *t->input);
    t->target = il_calloc((size_t)n, sizeof *t->target);
    if (!t->name || !t->input || !t->target) goto done;
    int i = 0;
    cJSON *ex;
    cJSON_ArrayForEach(ex, examples) {
        if (!cJSON_IsObject(ex)) { il_seterr("%s: examples[%d]: expected an object", path, i); goto done; }
        t->n = i + 1;
        if (take_string(ex, "input", &t->input[i], path, i)) goto done;
        if (take_string(ex, "target", &t->target[i], path, i)) goto done;
        i++;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    free(text);
    if (rc) il_bbh_free(t);
    return rc;
}

void il_bbh_free(il_bbh_task *t) {
    for (int i = 0; i < t->n; i++) {
        free(t->input[i]);
        free(t->target[i]);
    }
    free(t->input);
    free(t->target);
    free(t->name);
    memset(t, 0, sizeof *t);
}
