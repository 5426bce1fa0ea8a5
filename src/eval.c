/* eval.c - see eval.h. */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "wordpiece.h" /* il_py_lower */

int il_eval_split(int n, int k, uint64_t seed, int max_questions, int *shots, int *questions,
                  int *n_questions) {
    if (k < 1 || k >= n) {
        il_seterr("cannot take %d shots from %d examples (need 1 <= shots < examples)", k, n);
        return -1;
    }
    int *idx = il_malloc(sizeof *idx * (size_t)n);
    if (!idx) return -1;
    for (int i = 0; i < n; i++) idx[i] = i;
    il_rng r;
    il_rng_seed(&r, seed);
    il_rng_shuffle(&r, idx, n);
    memcpy(shots, idx, sizeof *idx * (size_t)k);
    int nq = n - k;
    if (max_questions > 0 && max_questions < nq) nq = max_questions;
    memcpy(questions, idx + k, sizeof *idx * (size_t)nq);
    *n_questions = nq;
    free(idx);
    return 0;
}

/* Python's str.isspace() for one code point. */
static bool py_space(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

/* [*start, *end) of s without leading/trailing Python whitespace (invalid UTF-8 bytes are
 * kept as they are: they are not whitespace). */
static void py_strip(const char *s, size_t len, size_t *start, size_t *end) {
    size_t i = 0, last = 0;
    bool seen = false;
    *start = len;
    while (i < len) {
        uint32_t cp;
        int k = il_utf8_decode(s + i, len - i, &cp);
        if (k == 0) { cp = 0xFFFD; k = 1; }
        if (!py_space(cp)) {
            if (!seen) { *start = i; seen = true; }
            last = i + (size_t)k;
        }
        i += (size_t)k;
    }
    *end = seen ? last : len;
}

char *il_eval_normalize(const char *s) {
    size_t len = strlen(s), a, b;
    py_strip(s, len, &a, &b);
    size_t n;
    char *low = il_py_lower(s + a, b - a, &n);
    if (!low) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (low[i] != '.') low[j++] = low[i];
    low[j] = 0;
    return low;
}

bool il_eval_match(const char *prediction, const char *target) {
    char *p = il_eval_normalize(prediction), *t = il_eval_normalize(target);
    bool eq = p && t && strcmp(p, t) == 0;
    free(p);
    free(t);
    return eq;
}

/* ---- tables ---- */

static char **copy_names(int n, const char *const *names) {
    char **out = il_calloc((size_t)n + 1, sizeof *out);
    if (!out) return NULL;
    for (int i = 0; i < n; i++)
        if (!(out[i] = il_strdup(names[i]))) {
            for (int j = 0; j < i; j++) free(out[j]);
            free(out);
            return NULL;
        }
    return out;
}

int il_eval_table_init(il_eval_table *t, int n_tasks, const char *const *tasks, int n_methods,
                       const char *const *methods) {
    memset(t, 0, sizeof *t);
    t->n_tasks = n_tasks;
    t->n_methods = n_methods;
    t->tasks = copy_names(n_tasks, tasks);
    t->methods = copy_names(n_methods, methods);
    size_t cells = (size_t)n_tasks * (size_t)n_methods + 1;
    t->correct = il_calloc(cells, sizeof *t->correct);
    t->total = il_calloc(cells, sizeof *t->total);
    if (!t->tasks || !t->methods || !t->correct || !t->total) {
        il_eval_table_free(t);
        return -1;
    }
    return 0;
}

void il_eval_table_free(il_eval_table *t) {
    for (int i = 0; t->tasks && i < t->n_tasks; i++) free(t->tasks[i]);
    for (int i = 0; t->methods && i < t->n_methods; i++) free(t->methods[i]);
    free(t->tasks);
    free(t->methods);
    free(t->correct);
    free(t->total);
    memset(t, 0, sizeof *t);
}

double il_eval_accuracy(const il_eval_table *t, int task, int method) {
    size_t c = (size_t)task * (size_t)t->n_methods + (size_t)method;
    return t->total[c] ? 100.0 * t->correct[c] / t->total[c] : NAN;
}

void il_eval_averages(const il_eval_table *t, double *avg, double *avg_filtered, int *n_kept) {
    bool *keep = calloc((size_t)t->n_tasks + 1, sizeof *keep);
    int kept = 0;
    for (int i = 0; i < t->n_tasks && keep; i++) {
        for (int m = 0; m < t->n_methods; m++)
            if (il_eval_accuracy(t, i, m) >= 10.0) keep[i] = true;
        kept += keep[i];
    }
    for (int m = 0; m < t->n_methods; m++) {
        double s = 0, sf = 0;
        int n = 0, nf = 0;
        for (int i = 0; i < t->n_tasks; i++) {
            double a = il_eval_accuracy(t, i, m);
            if (a != a) continue;
            s += a, n++;
            if (keep && keep[i]) sf += a, nf++;
        }
        avg[m] = n ? s / n : NAN;
        avg_filtered[m] = nf ? sf / nf : NAN;
    }
    *n_kept = kept;
    free(keep);
}

void il_eval_win_loss(const il_eval_table *t, int a, int b, int *wins, int *ties, int *losses) {
    *wins = *ties = *losses = 0;
    for (int i = 0; i < t->n_tasks; i++) {
        double x = il_eval_accuracy(t, i, a), y = il_eval_accuracy(t, i, b);
        if (x != x || y != y) continue;
        if (x > y) (*wins)++;
        else if (x < y) (*losses)++;
        else (*ties)++;
    }
}

/* ---- writers ---- */

static void json_num(il_buf *b, double x) {
    if (x == x) il_buf_printf(b, "%.4f", x);
    else il_buf_puts(b, "null");
}

int il_eval_write_json(const il_eval_table *t, const char *path, const char *settings_json) {
    il_buf b = {0};
    int nm = t->n_methods, kept;
    double *avg = il_calloc((size_t)nm + 1, sizeof *avg), *avgf = il_calloc((size_t)nm + 1, sizeof *avgf);
    if (!avg || !avgf) { free(avg); free(avgf); return -1; }
    il_eval_averages(t, avg, avgf, &kept);
    il_buf_puts(&b, "{\n  \"settings\": ");
    il_buf_puts(&b, settings_json ? settings_json : "{}");
    il_buf_puts(&b, ",\n  \"methods\": [");
    for (int m = 0; m < nm; m++) { if (m) il_buf_puts(&b, ", "); il_buf_json_string(&b, t->methods[m]); }
    il_buf_puts(&b, "],\n  \"tasks\": {");
    for (int i = 0; i < t->n_tasks; i++) {
        il_buf_puts(&b, i ? ",\n    " : "\n    ");
        il_buf_json_string(&b, t->tasks[i]);
        il_buf_puts(&b, ": {");
        for (int m = 0; m < nm; m++) {
            size_t c = (size_t)i * nm + m;
            il_buf_puts(&b, m ? ", " : "");
            il_buf_json_string(&b, t->methods[m]);
            il_buf_printf(&b, ": {\"correct\": %d, \"total\": %d, \"accuracy\": ", t->correct[c], t->total[c]);
            json_num(&b, il_eval_accuracy(t, i, m));
            il_buf_puts(&b, "}");
        }
        il_buf_puts(&b, "}");
    }
    il_buf_puts(&b, "\n  },\n  \"average\": {");
    for (int m = 0; m < nm; m++) { il_buf_puts(&b, m ? ", " : ""); il_buf_json_string(&b, t->methods[m]); il_buf_puts(&b, ": "); json_num(&b, avg[m]); }
    il_buf_printf(&b, "},\n  \"average_without_tasks_all_below_10\": {");
    for (int m = 0; m < nm; m++) { il_buf_puts(&b, m ? ", " : ""); il_buf_json_string(&b, t->methods[m]); il_buf_puts(&b, ": "); json_num(&b, avgf[m]); }
    il_buf_printf(&b, "},\n  \"tasks_kept_for_filtered_average\": %d,\n  \"win_loss\": [", kept);
    bool first = true;
    for (int a = 0; a < nm; a++)
        for (int c = 0; c < nm; c++) {
            if (a == c) continue;
            int w, ti, l;
            il_eval_win_loss(t, a, c, &w, &ti, &l);
            il_buf_puts(&b, first ? "\n    {\"method\": " : ",\n    {\"method\": ");
            first = false;
            il_buf_json_string(&b, t->methods[a]);
            il_buf_puts(&b, ", \"versus\": ");
            il_buf_json_string(&b, t->methods[c]);
            il_buf_printf(&b, ", \"wins\": %d, \"ties\": %d, \"losses\": %d}", w, ti, l);
        }
    il_buf_puts(&b, "\n  ]\n}\n");
    free(avg);
    free(avgf);
    if (!b.data) return -1;
    int rc = il_write_file_atomic(path, b.data, b.len);
    il_buf_free(&b);
    return rc;
}

int il_eval_write_csv(const il_eval_table *t, const char *path) {
    il_buf b = {0};
    il_buf_puts(&b, "task,method,correct,total,accuracy\n");
    for (int i = 0; i < t->n_tasks; i++)
        for (int m = 0; m < t->n_methods; m++) {
            size_t c = (size_t)i * t->n_methods + m;
            double a = il_eval_accuracy(t, i, m);
            il_buf_printf(&b, "%s,%s,%d,%d,", t->tasks[i], t->methods[m], t->correct[c], t->total[c]);
            if (a == a) il_buf_printf(&b, "%.4f\n", a);
            else il_buf_puts(&b, "\n");
        }
    if (!b.data) return -1;
    int rc = il_write_file_atomic(path, b.data, b.len);
    il_buf_free(&b);
    return rc;
}

static void md_cell(il_buf *b, double x) {
    if (x == x) il_buf_printf(b, " %.1f |", x);
    else il_buf_puts(b, " - |");
}

char *il_eval_markdown(const il_eval_table *t) {
    il_buf b = {0};
    int nm = t->n_methods, kept;
    double *avg = il_calloc((size_t)nm + 1, sizeof *avg), *avgf = il_calloc((size_t)nm + 1, sizeof *avgf);
    if (!avg || !avgf) { free(avg); free(avgf); return NULL; }
    il_eval_averages(t, avg, avgf, &kept);
    il_buf_puts(&b, "| task |");
    for (int m = 0; m < nm; m++) il_buf_printf(&b, " %s |", t->methods[m]);
    il_buf_puts(&b, "\n|---|");
    for (int m = 0; m < nm; m++) il_buf_puts(&b, "---:|");
    il_buf_puts(&b, "\n");
    for (int i = 0; i < t->n_tasks; i++) {
        il_buf_printf(&b, "| %s |", t->tasks[i]);
        for (int m = 0; m < nm; m++) md_cell(&b, il_eval_accuracy(t, i, m));
        il_buf_puts(&b, "\n");
    }
    il_buf_puts(&b, "| **average** |");
    for (int m = 0; m < nm; m++) md_cell(&b, avg[m]);
    il_buf_printf(&b, "\n| **average, %d tasks where some method >= 10%%** |", kept);
    for (int m = 0; m < nm; m++) md_cell(&b, avgf[m]);
    il_buf_puts(&b, "\n");
    if (nm > 1) {
        /* Win/tie/loss of the last method (the proposed one, by convention) against each other. */
        int a = nm - 1;
        il_buf_printf(&b, "\n| %s vs | wins | ties | losses |\n|---|---:|---:|---:|\n", t->methods[a]);
        for (int c = 0; c < a; c++) {
            int w, ti, l;
            il_eval_win_loss(t, a, c, &w, &ti, &l);
            il_buf_printf(&b, "| %s | %d | %d | %d |\n", t->methods[c], w, ti, l);
        }
    }
    free(avg);
    free(avgf);
    return b.data;
}
