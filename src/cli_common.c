/* cli_common.c - see cli.h. */
#include "cli.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "opt.h"

int cli_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("ilora: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_fail_lib(void) { return cli_fail(EXIT_RUNTIME, "%s", il_errmsg()); }

static int list_push(cli_list *l, const char *s) {
    const char **items = il_realloc((void *)l->items, sizeof *items * (size_t)(l->n + 1));
    if (!items) return -1;
    items[l->n++] = s;
    l->items = items;
    return 0;
}

void cli_list_free(cli_list *l) {
    free((void *)l->items);
    l->items = NULL;
    l->n = 0;
}

static int set_value(const cli_opt *o, const char *v) {
    char *end;
    switch (o->kind) {
    case OPT_STRING: *(const char **)o->dest = v; return 0;
    case OPT_LIST: return list_push(o->dest, v) ? cli_fail(EXIT_RUNTIME, "%s", il_errmsg()) : 0;
    case OPT_INT: {
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < o->min || x > o->max)
            return cli_fail(EXIT_USAGE, "option %s: expected an integer in [%ld, %ld], got '%s'",
                            o->name, o->min, o->max, v);
        *(int *)o->dest = (int)x;
        return 0;
    }
    case OPT_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || x != x)
            return cli_fail(EXIT_USAGE, "option %s: expected a number, got '%s'", o->name, v);
        *(double *)o->dest = x;
        return 0;
    }
    case OPT_FLAG: break;
    }
    return 0;
}

int cli_parse(int argc, char **argv, const cli_opt *opts, int n_opts, cli_list *pos, bool *help) {
    bool only_pos = false;
    *help = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == 0) {
            if (list_push(pos, a)) return cli_fail(EXIT_RUNTIME, "%s", il_errmsg());
            continue;
        }
        if (!strcmp(a, "--")) { only_pos = true; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { *help = true; continue; }
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = NULL;
        for (int k = 0; k < n_opts; k++)
            if (strlen(opts[k].name) == nlen && !strncmp(opts[k].name, a, nlen)) o = &opts[k];
        if (!o) return cli_fail(EXIT_USAGE, "unknown option '%.*s' (see --help)", (int)nlen, a);
        if (o->kind == OPT_FLAG) {
            if (eq) return cli_fail(EXIT_USAGE, "option %s takes no value", o->name);
            *(bool *)o->dest = true;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) return cli_fail(EXIT_USAGE, "option %s needs a value", o->name);
        int rc = set_value(o, v);
        if (rc) return rc;
    }
    return 0;
}

/* ---- JSONL examples ---- */

static int example_field(cJSON *obj, const char *key, bool required, char **out,
                         const char *path, int line) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v) {
        if (!required) return 0;
        il_seterr("%s:%d: missing field '%s'", path, line, key);
        return -1;
    }
    if (!cJSON_IsString(v)) {
        il_seterr("%s:%d: field '%s': expected a string", path, line, key);
        return -1;
    }
    *out = il_strdup(v->valuestring);
    return *out ? 0 : -1;
}

int cli_read_examples(const char *path, bool need_output, cli_examples *ex) {
    memset(ex, 0, sizeof *ex);
    size_t len;
    char *text = il_read_file(path, &len);
    if (!text) return -1;
    int rc = -1, line = 0, cap = 0;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        line++;
        size_t n = (size_t)(le - p);
        bool blank = true;
        for (size_t i = 0; i < n; i++)
            if (!strchr(" \t\r", p[i])) blank = false;
        if (!blank) {
            if (!il_utf8_valid(p, n)) { il_seterr("%s:%d: invalid UTF-8", path, line); goto done; }
            if (il_json_has_nul_escape(p, n)) {
                il_seterr("%s:%d: a string holds a NUL character (\\u0000)", path, line);
                goto done;
            }
            cJSON *obj = cJSON_ParseWithLength(p, n);
            if (!cJSON_IsObject(obj)) {
                il_seterr("%s:%d: %s", path, line, obj ? "not a JSON object" : "malformed JSON");
                cJSON_Delete(obj);
                goto done;
            }
            if (ex->n == cap) {
                cap = cap ? 2 * cap : 16;
                char **a = il_realloc(ex->input, sizeof *a * (size_t)cap);
                if (a) ex->input = a;
                char **b = a ? il_realloc(ex->output, sizeof *b * (size_t)cap) : NULL;
                if (b) ex->output = b;
                if (!a || !b) { cJSON_Delete(obj); goto done; }
            }
            char *in, *out;
            if (example_field(obj, "input", true, &in, path, line)) { cJSON_Delete(obj); goto done; }
            if (example_field(obj, "output", need_output, &out, path, line)) {
                free(in); cJSON_Delete(obj); goto done;
            }
            cJSON_Delete(obj);
            ex->input[ex->n] = in;
            ex->output[ex->n] = out;
            ex->n++;
        }
        p = nl ? nl + 1 : end;
    }
    if (ex->n == 0) { il_seterr("%s: no examples (expected JSONL lines {\"input\": ...})", path); goto done; }
    rc = 0;
done:
    free(text);
    if (rc) cli_examples_free(ex);
    return rc;
}

void cli_examples_free(cli_examples *ex) {
    for (int i = 0; i < ex->n; i++) { free(ex->input[i]); free(ex->output[i]); }
    free(ex->input);
    free(ex->output);
    memset(ex, 0, sizeof *ex);
}

/* ---- output ---- */

void cli_put_escaped_line(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '\\') fputs("\\\\", f);
        else if (*s == '\n') fputs("\\n", f);
        else if (*s == '\r') fputs("\\r", f);
        else fputc(*s, f);
    }
    fputc('\n', f);
}

/* The shortest of %.15g / %.16g / %.17g that reads back as exactly x (0.05, not
 * 0.050000000000000003), so that result files reload to the same doubles; null for a
 * non-finite value (JSON has no inf or nan). */
void cli_json_double(il_buf *b, double x) {
    if (!isfinite(x)) {
        il_buf_puts(b, "null");
        return;
    }
    char s[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, x);
        if (strtod(s, NULL) == x) break;
    }
    il_buf_puts(b, s);
}

void cli_json_doubles(il_buf *b, const double *x, int n) {
    il_buf_puts(b, "[");
    for (int i = 0; i < n; i++) {
        if (i) il_buf_puts(b, ", ");
        cli_json_double(b, x[i]);
    }
    il_buf_puts(b, "]");
}

/* ---- options shared by subcommands ---- */

int cli_check_optimizer(const char *name) {
    const char *const *names = il_opt_names();
    for (const char *const *n = names; *n; n++)
        if (!strcasecmp(*n, name)) return 0;
    il_buf b = {0};
    for (const char *const *n = names; *n; n++) il_buf_printf(&b, "%s%s", n == names ? "" : ", ", *n);
    int rc = cli_fail(EXIT_USAGE, "option --optimizer: unknown optimizer '%s' (valid: %s)", name,
                      b.data ? b.data : "");
    il_buf_free(&b);
    return rc;
}
