/* cli_eval.c - `ilora eval`: run the methods of iloracomp.h on BIG-Bench-Hard task files and
 * write per-question predictions, per-task scores, averages and win/loss counts. Work is
 * split in (task, method) units whose result files appear complete or not at all, so an
 * interrupted run resumes where it stopped. */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bbh.h"
#include "cli_t5.h"
#include "eval.h"
#include "iloracomp.h"
#include "library.h"
#include "opt.h"

int cmd_eval(int argc, char **argv);

static const char help[] =
    "usage: ilora eval --model DIR --library DIR --embedder DIR --tasks DIR --out DIR [options]\n\n"
    "Evaluate instance-level LoRA composition (iLoraComp) and its baselines on BIG-Bench-Hard\n"
    "task files ({\"examples\": [{\"input\", \"target\"}, ...]}). For each task the examples are\n"
    "shuffled with --seed; the first --shots are the labelled shots, the rest the questions.\n"
    "Answers are greedy; a prediction is correct when it equals the target after both are\n"
    "stripped, lower-cased and stripped of '.' (exact match, never a substring test).\n\n"
    "methods (--methods, comma-separated, in table order; the last one is compared against\n"
    "the others in the win/loss table):\n"
    "  zeroshot   the base model on the question\n"
    "  icl        the base model on the shots joined as input + \" \" + target + \"\\n\", then\n"
    "             the question\n"
    "  lorahub    N adapters drawn at random, weights learned on the shots (LoraHub), repeated\n"
    "             for --lorahub-seeds seeds; its score is the mean of the runs' accuracies\n"
    "  batchcomp  the N adapters nearest to the mean shot embedding, one optimisation\n"
    "  ilora      per shot: its N nearest adapters, weights learned on all shots; per question:\n"
    "             the shot whose input embedding is nearest (cosine) picks the composition\n\n"
    "options:\n"
    "  --model DIR           T5 / Flan-T5 model directory\n"
    "  --library PATH        LoRA library: a directory of adapters with train.jsonl each, or a\n"
    "                        manifest file (see 'ilora index --help')\n"
    "  --embedder DIR        sentence embedder (sentence-transformers or T5 directory)\n"
    "  --tasks DIR           every *.json in DIR is a task (sorted by name)\n"
    "  --task NAME           only this task (repeatable; NAME without .json)\n"
    "  --out DIR             results (created if needed)\n"
    "  --methods LIST        default zeroshot,icl,lorahub,batchcomp,ilora\n"
    "  --shots K             labelled shots per task (default 5; must be below a task's size)\n"
    "  --topn N              adapters per composition (default 20; larger than the library:\n"
    "                        the whole library, with a warning)\n"
    "  --steps N             objective evaluations per optimisation (default 40)\n"
    "  --optimizer NAME      cobyla (default, LoraHub's), cmaes, 1+1-es or random\n"
    "  --seed S              shuffles, random draws and optimiser seeds (default 42)\n"
    "  --retrieval R         adapter retrieval: cosine (default), l2 (negated distance) or\n"
    "                        bm25 (shot text against each adapter's training texts); routing\n"
    "                        questions to shots always uses cosine\n"
    "  --compose RULE        linear (default; LoraHub's A = sum w_i A_i, B = sum w_i B_i) or\n"
    "                        delta (exactly sum w_i s_i B_i A_i)\n"
    "  --lorahub-seeds N     lorahub runs per task (default 3)\n"
    "  --max-questions N     at most N questions per task (default: all)\n"
    "  --max-new-tokens N    generation budget per answer (default 256)\n"
    "  --max-input-tokens N  inputs cut to N tokens keeping </s> (default 2048)\n"
    "  --batch N             questions decoded together (default 32; 0 = all)\n"
    "  --max-examples N      training examples per adapter in its centroid (default 100)\n"
    "  --index FILE          the centroid cache (default: inside the library, see\n"
    "                        'ilora index --help')\n"
    "  --centroids FILE      precomputed centroids (an index file made elsewhere; names and\n"
    "                        dimension are checked, fingerprints are not)\n"
    "  --force               start over in an --out made with other settings\n\n"
    "output (in --out):\n"
    "  predictions/TASK/METHOD.jsonl  one line per question: {\"index\" (the example's index in\n"
    "        the task file), \"input\", \"target\", \"prediction\", \"correct\", \"shot\" (ilora:\n"
    "        the routed shot's example index), \"truncated\" (the answer hit --max-new-tokens),\n"
    "        \"input_truncated\"}; lorahub: lorahub.seedR.jsonl for run R = 1..--lorahub-seeds\n"
    "  adapters/TASK/METHOD.json      the shots' example indices; per composition the adapters\n"
    "        (retrieval order), their scores, learned weights, best objective and the\n"
    "        objective and loss of every step; per run the correct count\n"
    "  scores.json, scores.csv, table.md   per-task accuracy (%), the average, the average\n"
    "        without the tasks where every method is below 10%, win/loss counts; lorahub's\n"
    "        correct/total add up its runs, so its accuracy is their mean\n"
    "  settings.json                  every option value\n"
    "The Markdown table is printed at the end. Same inputs and --seed give byte-identical\n"
    "files on a machine with the same thread count (OMP_NUM_THREADS: the BLAS rounds\n"
    "differently with it); timings go to stderr only.\n\n"
    "resuming: a (task, method) unit's files are written atomically once it is finished. A\n"
    "rerun into the same --out with the same settings reuses every finished unit and computes\n"
    "the rest; --methods, --task and --index may differ between runs (they do not change any\n"
    "unit). Other differences are an error unless --force, which deletes the earlier results.\n"
    "A progress line is shown on stderr when it is a terminal.\n";

/* ===== options ===== */

typedef struct {
    const char *model, *library, *embedder, *tasks, *out, *methods, *retrieval, *optimizer,
        *compose, *index, *centroids;
    cli_list task_names;
    int shots, topn, steps, seed, max_questions, max_new, max_input, lorahub_seeds, batch,
        max_examples;
    bool force;
} eval_opts;

static const char default_methods[] = "zeroshot,icl,lorahub,batchcomp,ilora";

/* ===== small helpers ===== */

static void put_floats(il_buf *b, const float *x, int n) {
    il_buf_puts(b, "[");
    for (int i = 0; i < n; i++) {
        if (i) il_buf_puts(b, ", ");
        if (isfinite(x[i])) il_buf_printf(b, "%.9g", (double)x[i]);
        else il_buf_puts(b, "null");
    }
    il_buf_puts(b, "]");
}

static int mkdir_p(const char *path) {
    char *p = il_strdup(path);
    if (!p) return -1;
    for (char *c = p + 1;; c++) {
        if (*c == '/' || !*c) {
            char save = *c;
            *c = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                il_seterr("%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return -1;
            }
            *c = save;
            if (!save) break;
        }
    }
    free(p);
    if (!il_dir_exists(path)) {
        il_seterr("%s: exists and is not a directory", path);
        return -1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* ===== the task list ===== */

typedef struct {
    char *name, *path;
    il_bbh_task t;
    int *shots, *qs; /* [k], [nq] example indices */
    int nq;
} task_entry;

static void tasks_free(task_entry *t, int n) {
    for (int i = 0; t && i < n; i++) {
        free(t[i].name);
        free(t[i].path);
        il_bbh_free(&t[i].t);
        free(t[i].shots);
        free(t[i].qs);
    }
    free(t);
}

/* Every *.json of dir (sorted), restricted to `only` when given. Returns the count, or -1. */
static int list_tasks(const char *dir, const cli_list *only, task_entry **out) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        il_seterr("--tasks %s: %s", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    int n = 0, cap = 0, rc = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, ".json") || strlen(e->d_name) == 5)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **nn = il_realloc(names, sizeof *nn * (size_t)cap);
            if (!nn) goto done;
            names = nn;
        }
        if (!(names[n] = il_strndup(e->d_name, strlen(e->d_name) - 5))) goto done;
        n++;
    }
    if (n == 0) {
        il_seterr("--tasks %s: no task files (*.json) in the directory", dir);
        goto done;
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < only->n; i++) {
        char *want = il_strdup(only->items[i]);
        if (!want) goto done;
        if (ends_with(want, ".json")) want[strlen(want) - 5] = 0;
        bool found = false;
        for (int j = 0; j < n; j++) found |= !strcmp(names[j], want);
        if (!found) il_seterr("--task %s: no file %s.json in %s", only->items[i], want, dir);
        free(want);
        if (!found) goto done;
    }
    task_entry *t = il_calloc((size_t)n, sizeof *t);
    if (!t) goto done;
    int m = 0;
    for (int j = 0; j < n; j++) {
        bool keep = only->n == 0;
        for (int i = 0; i < only->n && !keep; i++) {
            size_t l = strlen(names[j]);
            keep = !strncmp(only->items[i], names[j], l) &&
                   (!only->items[i][l] || !strcmp(only->items[i] + l, ".json"));
        }
        if (!keep) continue;
        t[m].name = names[j];
        names[j] = NULL;
        char *file = il_sprintf("%s.json", t[m].name);
        t[m].path = file ? il_path_join(dir, file) : NULL;
        free(file);
        m++;
        if (!t[m - 1].path) {
            tasks_free(t, m);
            goto done;
        }
    }
    *out = t;
    rc = m;
done:
    closedir(d);
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
    return rc;
}

/* ===== settings ===== */

static cJSON *settings_json(const eval_opts *o, int n_methods, const il_method *methods,
                            const task_entry *tasks, int n_tasks) {
    cJSON *s = cJSON_CreateObject();
    if (!s) return NULL;
#define STR_OR_NULL(v) ((v) ? cJSON_CreateString(v) : cJSON_CreateNull())
    cJSON_AddItemToObject(s, "model", STR_OR_NULL(o->model));
    cJSON_AddItemToObject(s, "library", STR_OR_NULL(o->library));
    cJSON_AddItemToObject(s, "embedder", STR_OR_NULL(o->embedder));
    cJSON_AddItemToObject(s, "tasks_dir", STR_OR_NULL(o->tasks));
    cJSON_AddItemToObject(s, "index", STR_OR_NULL(o->index));
    cJSON_AddItemToObject(s, "centroids", STR_OR_NULL(o->centroids));
#undef STR_OR_NULL
    cJSON *ma = cJSON_AddArrayToObject(s, "methods");
    for (int i = 0; ma && i < n_methods; i++)
        cJSON_AddItemToArray(ma, cJSON_CreateString(il_method_name(methods[i])));
    cJSON *ta = cJSON_AddArrayToObject(s, "tasks");
    for (int i = 0; ta && i < n_tasks; i++) cJSON_AddItemToArray(ta, cJSON_CreateString(tasks[i].name));
    cJSON_AddNumberToObject(s, "shots", o->shots);
    cJSON_AddNumberToObject(s, "topn", o->topn);
    cJSON_AddNumberToObject(s, "steps", o->steps);
    cJSON_AddStringToObject(s, "optimizer", o->optimizer);
    cJSON_AddNumberToObject(s, "seed", o->seed);
    cJSON_AddStringToObject(s, "retrieval", o->retrieval);
    cJSON_AddStringToObject(s, "compose", o->compose);
    cJSON_AddNumberToObject(s, "lorahub_seeds", o->lorahub_seeds);
    cJSON_AddNumberToObject(s, "max_questions", o->max_questions);
    cJSON_AddNumberToObject(s, "max_new_tokens", o->max_new);
    cJSON_AddNumberToObject(s, "max_input_tokens", o->max_input);
    cJSON_AddNumberToObject(s, "batch", o->batch);
    cJSON_AddNumberToObject(s, "max_examples", o->max_examples);
    cJSON_AddNumberToObject(s, "l1", IL_LORAHUB_L1);
    cJSON_AddNumberToObject(s, "loss_batch_size", IL_LORAHUB_BATCH_SIZE);
    cJSON_AddNumberToObject(s, "bound", IL_LORAHUB_BOUND);
    return s;
}

/* One "key": value per line (values compact), ending with a newline. */
static char *settings_pretty(const cJSON *s) {
    il_buf b = {0};
    const cJSON *it;
    il_buf_puts(&b, "{");
    cJSON_ArrayForEach(it, s) {
        char *v = cJSON_PrintUnformatted(it);
        il_buf_puts(&b, b.len > 1 ? ",\n  " : "\n  ");
        il_buf_json_string(&b, it->string);
        il_buf_printf(&b, ": %s", v ? v : "null");
        free(v);
    }
    il_buf_puts(&b, "\n}\n");
    return b.data;
}

/* Keys that select work or locate a cache: they may differ between runs in one --out. */
static bool selection_key(const char *k) {
    return !strcmp(k, "methods") || !strcmp(k, "tasks") || !strcmp(k, "index");
}

/* Differences between an earlier settings.json and the current settings (ignoring the
 * selection keys): NULL if none, else a malloc'd "key: old -> new, ..." list. *bad is set
 * when the file cannot be read as settings. */
static char *settings_diff(const char *path, const cJSON *now, bool *bad) {
    *bad = false;
    size_t len;
    char *text = il_read_file(path, &len);
    cJSON *old = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    il_buf b = {0};
    if (!cJSON_IsObject(old)) {
        *bad = true;
        cJSON_Delete(old);
        return il_strdup("unreadable settings.json");
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, now) {
        if (selection_key(it->string)) continue;
        const cJSON *was = cJSON_GetObjectItemCaseSensitive(old, it->string);
        if (was && cJSON_Compare(was, it, true)) continue;
        char *a = was ? cJSON_PrintUnformatted(was) : NULL, *c = cJSON_PrintUnformatted(it);
        il_buf_printf(&b, "%s%s: %s -> %s", b.len ? ", " : "", it->string, a ? a : "(absent)",
                      c ? c : "?");
        free(a);
        free(c);
    }
    cJSON_ArrayForEach(it, old) {
        if (selection_key(it->string) || cJSON_GetObjectItemCaseSensitive(now, it->string)) continue;
        il_buf_printf(&b, "%s%s: no longer an option", b.len ? ", " : "", it->string);
    }
    cJSON_Delete(old);
    return b.data;
}

/* ===== the output directory ===== */

static char *unit_pred_path(const char *out, const char *task, il_method m, int run) {
    if (m == IL_METHOD_LORAHUB)
        return il_sprintf("%s/predictions/%s/%s.seed%d.jsonl", out, task, il_method_name(m), run + 1);
    return il_sprintf("%s/predictions/%s/%s.jsonl", out, task, il_method_name(m));
}

static char *unit_meta_path(const char *out, const char *task, il_method m) {
    return il_sprintf("%s/adapters/%s/%s.json", out, task, il_method_name(m));
}

/* Delete what earlier runs wrote (only files of our layout) for --force. */
static void remove_results(const char *out) {
    static const char *const subdirs[] = {"predictions", "adapters"};
    for (int s = 0; s < 2; s++) {
        char *top = il_path_join(out, subdirs[s]);
        DIR *d = top ? opendir(top) : NULL;
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char *sub = il_path_join(top, e->d_name);
            DIR *d2 = sub ? opendir(sub) : NULL;
            struct dirent *f;
            while (d2 && (f = readdir(d2))) {
                if (!ends_with(f->d_name, ".json") && !ends_with(f->d_name, ".jsonl")) continue;
                char *p = il_path_join(sub, f->d_name);
                if (p) unlink(p);
                free(p);
            }
            if (d2) closedir(d2);
            if (sub) rmdir(sub);
            free(sub);
        }
        if (d) closedir(d);
        if (top) rmdir(top);
        free(top);
    }
    static const char *const files[] = {"scores.json", "scores.csv", "table.md", "settings.json"};
    for (int i = 0; i < 4; i++) {
        char *p = il_path_join(out, files[i]);
        if (p) unlink(p);
        free(p);
    }
}

static bool dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return true;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = false;
    closedir(d);
    return empty;
}

/* ===== progress and messages ===== */

typedef struct {
    bool tty, shown;
    int ti, nt;
    const char *task, *method;
} eval_ui;

static void ui_clear(eval_ui *u) {
    if (u->shown) {
        fputs("\r\033[K", stderr);
        u->shown = false;
    }
}

static void ui_progress(void *user, const char *stage, int done, int total) {
    eval_ui *u = user;
    if (!u->tty) return;
    fprintf(stderr, "\reval: task %d/%d %s: %s: %s", u->ti + 1, u->nt, u->task, u->method, stage);
    if (total > 0) fprintf(stderr, " %d/%d", done, total);
    fputs("\033[K", stderr);
    fflush(stderr);
    u->shown = true;
}

static void ui_log(void *user, const char *msg) {
    eval_ui *u = user;
    ui_clear(u);
    fprintf(stderr, "ilora: warning: %s\n", msg);
}

static void index_log(void *user, bool warning, const char *msg) {
    eval_ui *u = user;
    ui_clear(u);
    fprintf(stderr, "ilora: %s%s\n", warning ? "warning: " : "", msg);
}

static void index_progress(void *user, int done, int total, const char *name, bool recomputed) {
    eval_ui *u = user;
    if (!u->tty) return;
    fprintf(stderr, "\rindex: %d/%d %s (%s)\033[K", done, total, name,
            recomputed ? "embedded" : "cached");
    u->shown = true;
}

/* ===== the models, loaded when the first unit needs them ===== */

typedef struct {
    cli_t5 m;
    il_embedder *emb;
    il_library *lib;
    il_library_index x;
    il_ilc *s;
    double t_load, t_index;
} eval_res;

static void res_free(eval_res *r) {
    il_ilc_free(r->s);
    il_library_index_free(&r->x);
    il_library_free(r->lib);
    il_embedder_free(r->emb);
    cli_t5_close(&r->m);
    memset(r, 0, sizeof *r);
}

static int res_open(eval_res *r, const eval_opts *o, bool need_index, const il_ilc_settings *set,
                    eval_ui *ui) {
    if (r->s) return 0;
    double t0 = il_now();
    if (cli_t5_open(&r->m, o->model, true) || !(r->emb = il_embedder_load(o->embedder)) ||
        !(r->lib = il_library_open(o->library, o->max_examples)))
        return -1;
    r->t_load = il_now() - t0;
    if (need_index) {
        t0 = il_now();
        uint64_t efp;
        if (il_library_embedder_fingerprint(o->embedder, &efp)) return -1;
        if (o->centroids) {
            if (il_library_index_load(r->lib, o->centroids, il_embedder_dim(r->emb), efp, &r->x))
                return -1;
            ui_clear(ui);
            fprintf(stderr, "ilora: %s: centroids used as given (names and dimension checked, "
                    "fingerprints not checked)\n", o->centroids);
        } else {
            il_index_opts io = {.index_path = o->index, .write_optional = true, .log = index_log,
                                .progress = index_progress, .user = ui};
            if (il_library_index_build(r->lib, r->emb, efp, &io, &r->x)) return -1;
            ui_clear(ui);
        }
        r->t_index = il_now() - t0;
    }
    r->s = il_ilc_new_library(r->m.model, r->m.tok, r->emb, r->lib, need_index ? &r->x : NULL, set);
    return r->s ? 0 : -1;
}

/* ===== units ===== */

/* Reload a finished unit: every predictions file with the expected questions in order, and
 * its adapters file. correct[run] is recomputed from the predictions. 1: complete; 0: absent
 * or incomplete (*why says what). */
static int unit_load(const char *out, const task_entry *te, il_method m, int runs, int *correct,
                     char **why) {
    *why = NULL;
    char *meta = unit_meta_path(out, te->name, m);
    bool have_meta = meta && il_file_exists(meta);
    int ok = 0;
    for (int run = 0; run < runs; run++) {
        char *p = unit_pred_path(out, te->name, m, run);
        size_t len;
        char *text = p && il_file_exists(p) ? il_read_file(p, &len) : NULL;
        if (!text) {
            *why = il_sprintf("%s is missing", p ? p : "a predictions file");
            free(p);
            goto done;
        }
        int line = 0;
        correct[run] = 0;
        char *save = NULL;
        for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save), line++) {
            cJSON *o = cJSON_Parse(l);
            const cJSON *ix = cJSON_GetObjectItemCaseSensitive(o, "index");
            const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "prediction");
            const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "input");
            const cJSON *tg = cJSON_GetObjectItemCaseSensitive(o, "target");
            /* the same question of the same task file (targets are re-scored, never trusted) */
            bool good = line < te->nq && cJSON_IsNumber(ix) && ix->valuedouble == te->qs[line] &&
                        cJSON_IsString(pr) && cJSON_IsString(in) && cJSON_IsString(tg) &&
                        !strcmp(in->valuestring, te->t.input[te->qs[line]]) &&
                        !strcmp(tg->valuestring, te->t.target[te->qs[line]]);
            if (good) correct[run] += il_eval_match(pr->valuestring, te->t.target[te->qs[line]]);
            cJSON_Delete(o);
            if (!good) {
                *why = il_sprintf("%s: line %d is not the expected question", p, line + 1);
                break;
            }
        }
        free(text);
        if (!*why && line != te->nq)
            *why = il_sprintf("%s: %d answers, expected %d", p, line, te->nq);
        free(p);
        if (*why) goto done;
    }
    if (!have_meta) {
        *why = il_sprintf("%s is missing", meta ? meta : "the adapters file");
        goto done;
    }
    ok = 1;
done:
    free(meta);
    return ok;
}

static int write_predictions(const char *out, const task_entry *te, const il_ilc_result *r) {
    int rc = -1;
    for (int run = 0; run < r->n_runs; run++) {
        il_buf b = {0};
        int brc = 0;
        for (int q = 0; q < r->nq; q++) {
            const size_t i = (size_t)run * r->nq + q;
            const int ex = te->qs[q];
            const char *target = te->t.target[ex];
            bool ok = il_eval_match(r->prediction[i], target);
            brc |= il_buf_printf(&b, "{\"index\": %d, \"input\": ", ex);
            brc |= il_buf_json_string(&b, te->t.input[ex]);
            brc |= il_buf_puts(&b, ", \"target\": ");
            brc |= il_buf_json_string(&b, target);
            brc |= il_buf_puts(&b, ", \"prediction\": ");
            brc |= il_buf_json_string(&b, r->prediction[i]);
            brc |= il_buf_printf(&b, ", \"correct\": %s", ok ? "true" : "false");
            if (r->route) brc |= il_buf_printf(&b, ", \"shot\": %d", te->shots[r->route[q]]);
            brc |= il_buf_printf(&b, ", \"truncated\": %s, \"input_truncated\": %s}\n",
                                 r->hit_limit[i] ? "true" : "false",
                                 r->input_truncated[i] ? "true" : "false");
        }
        char *p = unit_pred_path(out, te->name, r->method, run);
        if (brc || !p || !b.data) {
            il_buf_free(&b);
            free(p);
            if (!brc && p) il_seterr("out of memory");
            goto done;
        }
        int wrc = il_write_file_atomic(p, b.data, b.len);
        il_buf_free(&b);
        free(p);
        if (wrc) goto done;
    }
    rc = 0;
done:
    return rc;
}

static int write_meta(const char *out, const task_entry *te, const il_ilc *s,
                      const il_ilc_result *r, const int *correct, const eval_opts *o) {
    il_buf b = {0};
    int k = r->k;
    il_buf_puts(&b, "{\n  \"task\": ");
    il_buf_json_string(&b, te->name);
    il_buf_printf(&b, ",\n  \"method\": \"%s\",\n  \"shots\": [", il_method_name(r->method));
    for (int j = 0; j < k; j++) il_buf_printf(&b, "%s%d", j ? ", " : "", te->shots[j]);
    il_buf_printf(&b, "],\n  \"questions\": %d,\n  \"runs\": [", r->nq);
    for (int run = 0; run < r->n_runs; run++)
        il_buf_printf(&b, "%s\n    {\"run\": %d, \"correct\": %d, \"total\": %d}", run ? "," : "",
                      run + 1, correct[run], r->nq);
    il_buf_puts(&b, r->n_runs ? "\n  ],\n  \"compositions\": [" : "],\n  \"compositions\": [");
    for (int c = 0; c < r->n_comps; c++) {
        const il_ilc_comp *cp = &r->comps[c];
        const il_lorahub_result *op = &cp->opt;
        il_buf_puts(&b, c ? ",\n    {" : "\n    {");
        if (cp->shot >= 0) il_buf_printf(&b, "\"shot\": %d, ", te->shots[cp->shot]);
        if (cp->shared_with >= 0) /* the same adapters as an earlier shot: one optimisation */
            il_buf_printf(&b, "\"optimised_with_shot\": %d, ", te->shots[cp->shared_with]);
        if (r->method == IL_METHOD_LORAHUB) il_buf_printf(&b, "\"run\": %d, ", cp->run + 1);
        char hex[17];
        il_fingerprint_hex(cp->seed, hex);
        il_buf_printf(&b, "\"seed\": \"%s\", \"questions\": %d,\n     \"adapters\": [", hex,
                      cp->n_questions);
        for (int i = 0; i < cp->n_adapters; i++) {
            if (i) il_buf_puts(&b, ", ");
            il_buf_json_string(&b, il_ilc_adapter_name(s, cp->adapters[i]));
        }
        il_buf_puts(&b, "],\n     \"retrieval_scores\": ");
        put_floats(&b, cp->scores, cp->n_adapters);
        il_buf_puts(&b, ",\n     \"weights\": ");
        cli_json_doubles(&b, op->best_w, op->dim);
        il_buf_puts(&b, ",\n     \"best_objective\": ");
        cli_json_double(&b, op->best_objective);
        il_buf_puts(&b, ", \"best_loss\": ");
        cli_json_double(&b, op->best_loss);
        il_buf_printf(&b, ", \"best_step\": %d, \"evaluations\": %d, \"optimizer\": \"%s\",\n"
                          "     \"objective_per_step\": ",
                      op->best_index + 1, op->n_evals, op->optimizer ? op->optimizer : o->optimizer);
        cli_json_doubles(&b, op->objective, op->n_evals);
        il_buf_puts(&b, ",\n     \"loss_per_step\": ");
        cli_json_doubles(&b, op->loss, op->n_evals);
        il_buf_puts(&b, "}");
    }
    il_buf_puts(&b, r->n_comps ? "\n  ]\n}\n" : "]\n}\n");
    char *p = unit_meta_path(out, te->name, r->method);
    int rc = -1;
    if (!b.data || !p) {
        if (!b.data) il_seterr("out of memory");
    } else {
        rc = il_write_file_atomic(p, b.data, b.len);
    }
    free(p);
    il_buf_free(&b);
    return rc;
}

/* ===== the command ===== */

static int parse_methods(const char *list, il_method *out, int *n) {
    *n = 0;
    char *copy = il_strdup(list);
    if (!copy) return cli_fail(EXIT_RUNTIME, "%s", il_errmsg());
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        size_t l = strlen(tok);
        while (l && tok[l - 1] == ' ') tok[--l] = 0;
        il_method m;
        if (il_method_parse(tok, &m)) {
            rc = cli_fail(EXIT_USAGE, "option --methods: %s", il_errmsg());
            break;
        }
        for (int i = 0; i < *n; i++)
            if (out[i] == m) {
                rc = cli_fail(EXIT_USAGE, "option --methods: '%s' is listed twice", tok);
                break;
            }
        if (rc) break;
        out[(*n)++] = m;
    }
    free(copy);
    if (!rc && *n == 0) rc = cli_fail(EXIT_USAGE, "option --methods: no method given");
    return rc;
}

int cmd_eval(int argc, char **argv) {
    eval_opts o = {.methods = default_methods, .retrieval = "cosine", .optimizer = "cobyla",
                   .compose = "linear", .shots = 5, .topn = 20, .steps = IL_LORAHUB_BUDGET,
                   .seed = 42, .max_questions = 0, .max_new = 256, .max_input = 2048,
                   .lorahub_seeds = 3, .batch = 32, .max_examples = IL_LIBRARY_DEFAULT_MAX_EXAMPLES};
    const cli_opt opts[] = {
        {"--model", OPT_STRING, &o.model, 0, 0},
        {"--library", OPT_STRING, &o.library, 0, 0},
        {"--embedder", OPT_STRING, &o.embedder, 0, 0},
        {"--tasks", OPT_STRING, &o.tasks, 0, 0},
        {"--task", OPT_LIST, &o.task_names, 0, 0},
        {"--out", OPT_STRING, &o.out, 0, 0},
        {"--methods", OPT_STRING, &o.methods, 0, 0},
        {"--shots", OPT_INT, &o.shots, 1, 1000000},
        {"--topn", OPT_INT, &o.topn, 1, 1000000},
        {"--steps", OPT_INT, &o.steps, 1, 1000000},
        {"--optimizer", OPT_STRING, &o.optimizer, 0, 0},
        {"--seed", OPT_INT, &o.seed, 0, 2147483647},
        {"--retrieval", OPT_STRING, &o.retrieval, 0, 0},
        {"--compose", OPT_STRING, &o.compose, 0, 0},
        {"--lorahub-seeds", OPT_INT, &o.lorahub_seeds, 1, 1000},
        {"--max-questions", OPT_INT, &o.max_questions, 0, 100000000},
        {"--max-new-tokens", OPT_INT, &o.max_new, 1, 100000},
        {"--max-input-tokens", OPT_INT, &o.max_input, 2, 1000000},
        {"--batch", OPT_INT, &o.batch, 0, 100000},
        {"--max-examples", OPT_INT, &o.max_examples, 0, 1000000000},
        {"--index", OPT_STRING, &o.index, 0, 0},
        {"--centroids", OPT_STRING, &o.centroids, 0, 0},
        {"--force", OPT_FLAG, &o.force, 0, 0},
    };
    cli_list pos = {0};
    bool want_help;
    il_method methods[IL_METHOD_COUNT];
    int n_methods = 0, n_tasks = 0;
    task_entry *tasks = NULL;
    cJSON *settings = NULL;
    char *settings_text = NULL, *settings_line = NULL, *spath = NULL, *md = NULL;
    il_eval_table table = {0};
    eval_res res = {0};
    il_ilc_result r = {0};
    il_ilc_task *it = NULL;
    int *correct = NULL;
    il_similarity sim;
    il_lora_rule rule;
    eval_ui ui = {.tty = isatty(2) != 0};
    const double t_start = il_now();
    int rc = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &pos, &want_help);
    if (rc) goto out;
    if (want_help) { fputs(help, stdout); goto out; }
    /* ---- usage ---- */
    if (!o.model || !o.library || !o.embedder || !o.tasks || !o.out) {
        rc = cli_fail(EXIT_USAGE, "eval needs --model DIR, --library PATH, --embedder DIR, "
                                  "--tasks DIR and --out DIR (see --help)");
        goto out;
    }
    if (pos.n) { rc = cli_fail(EXIT_USAGE, "eval takes no positional arguments ('%s')", pos.items[0]); goto out; }
    if ((rc = parse_methods(o.methods, methods, &n_methods))) goto out;
    if (il_similarity_parse(o.retrieval, &sim)) {
        rc = cli_fail(EXIT_USAGE, "option --retrieval: %s", il_errmsg());
        goto out;
    }
    if ((rc = cli_parse_rule(o.compose, &rule))) goto out;
    if ((rc = cli_check_optimizer(o.optimizer))) goto out;
    if (o.index && o.centroids) {
        rc = cli_fail(EXIT_USAGE, "--index and --centroids cannot be combined");
        goto out;
    }
    /* ---- inputs that must exist ---- */
    rc = EXIT_RUNTIME;
    if (!il_dir_exists(o.model)) { cli_fail(rc, "--model %s: not a directory", o.model); goto out; }
    if (!il_dir_exists(o.embedder)) { cli_fail(rc, "--embedder %s: not a directory", o.embedder); goto out; }
    if (!il_dir_exists(o.library) && !il_file_exists(o.library)) {
        cli_fail(rc, "--library %s: no such directory or manifest file", o.library);
        goto out;
    }
    if (o.centroids && !il_file_exists(o.centroids)) {
        cli_fail(rc, "--centroids %s: no such file", o.centroids);
        goto out;
    }
    if (!il_dir_exists(o.tasks)) { cli_fail(rc, "--tasks %s: not a directory", o.tasks); goto out; }
    if ((n_tasks = list_tasks(o.tasks, &o.task_names, &tasks)) < 0) { n_tasks = 0; cli_fail_lib(); goto out; }
    for (int i = 0; i < n_tasks; i++) {
        task_entry *te = &tasks[i];
        if (il_bbh_load(&te->t, te->path)) { cli_fail_lib(); goto out; }
        if (o.shots >= te->t.n) {
            cli_fail(rc, "task %s (%s): --shots %d leaves no questions: the task has %d example%s",
                     te->name, te->path, o.shots, te->t.n, te->t.n == 1 ? "" : "s");
            goto out;
        }
        te->shots = il_malloc(sizeof *te->shots * (size_t)o.shots);
        te->qs = il_malloc(sizeof *te->qs * (size_t)te->t.n);
        if (!te->shots || !te->qs ||
            il_eval_split(te->t.n, o.shots, (uint64_t)o.seed, o.max_questions, te->shots, te->qs,
                          &te->nq)) {
            cli_fail_lib();
            goto out;
        }
    }
    /* ---- the output directory: fresh, resumed or started over ---- */
    if (!(settings = settings_json(&o, n_methods, methods, tasks, n_tasks)) ||
        !(settings_text = settings_pretty(settings)) ||
        !(settings_line = cJSON_PrintUnformatted(settings)) ||
        !(spath = il_path_join(o.out, "settings.json"))) {
        cli_fail(rc, "out of memory");
        goto out;
    }
    if (il_file_exists(o.out) && !il_dir_exists(o.out)) {
        cli_fail(rc, "--out %s: exists and is not a directory", o.out);
        goto out;
    }
    bool resume = false;
    if (il_file_exists(spath)) {
        bool bad;
        char *diff = settings_diff(spath, settings, &bad);
        if (!diff) {
            resume = true;
        } else if (!o.force) {
            cli_fail(rc, "--out %s was made with different settings (%s); use a new --out or --force",
                     o.out, diff);
            free(diff);
            goto out;
        } else {
            fprintf(stderr, "ilora: --force: deleting the results in %s (made with other settings: %s)\n",
                    o.out, diff);
            free(diff);
            remove_results(o.out);
        }
    } else if (il_dir_exists(o.out) && !dir_is_empty(o.out)) {
        if (!o.force) {
            cli_fail(rc, "--out %s is not empty and holds no settings.json of an earlier 'ilora "
                         "eval'; use a new --out (or --force to write into it)", o.out);
            goto out;
        }
        remove_results(o.out);
    }
    if (mkdir_p(o.out) || il_write_file_atomic(spath, settings_text, strlen(settings_text))) {
        cli_fail_lib();
        goto out;
    }

    /* ---- the units ---- */
    const char *mnames[IL_METHOD_COUNT];
    for (int i = 0; i < n_methods; i++) mnames[i] = il_method_name(methods[i]);
    const char **tnames = il_calloc((size_t)n_tasks, sizeof *tnames);
    if (!tnames) { cli_fail_lib(); goto out; }
    for (int i = 0; i < n_tasks; i++) tnames[i] = tasks[i].name;
    int trc = il_eval_table_init(&table, n_tasks, tnames, n_methods, mnames);
    free(tnames);
    if (trc) { cli_fail_lib(); goto out; }

    il_ilc_settings set = il_ilc_default_settings();
    set.retrieval = sim;
    set.top_n = o.topn;
    set.steps = o.steps;
    set.optimizer = o.optimizer;
    set.rule = rule;
    set.max_input_tokens = o.max_input;
    set.max_new_tokens = o.max_new;
    set.gen_batch = o.batch;
    set.seed = (uint64_t)o.seed;
    set.lorahub_runs = o.lorahub_seeds;
    set.log = ui_log;
    set.progress = ui_progress;
    set.user = &ui;
    if (!(correct = il_calloc((size_t)o.lorahub_seeds, sizeof *correct))) { cli_fail_lib(); goto out; }
    bool need_index = false;
    for (int i = 0; i < n_methods; i++)
        need_index |= sim != IL_SIM_BM25 && (methods[i] == IL_METHOD_BATCHCOMP || methods[i] == IL_METHOD_ILORA);

    double t_embed = 0, t_retrieve = 0, t_adapters = 0, t_opt = 0, t_gen = 0;
    long evals = 0;
    int computed = 0, reused = 0;
    ui.nt = n_tasks;
    for (int ti = 0; ti < n_tasks; ti++) {
        task_entry *te = &tasks[ti];
        ui.ti = ti;
        ui.task = te->name;
        for (int mi = 0; mi < n_methods; mi++) {
            const il_method m = methods[mi];
            const int runs = m == IL_METHOD_LORAHUB ? o.lorahub_seeds : 1;
            const size_t cell = (size_t)ti * n_methods + mi;
            ui.method = il_method_name(m);
            char *why = NULL;
            if (resume && unit_load(o.out, te, m, runs, correct, &why)) {
                table.correct[cell] = table.total[cell] = 0;
                for (int run = 0; run < runs; run++) {
                    table.correct[cell] += correct[run];
                    table.total[cell] += te->nq;
                }
                ui_clear(&ui);
                fprintf(stderr, "ilora: [%d/%d] %s: %s: reused (finished earlier): %.1f%%\n", ti + 1,
                        n_tasks, te->name, ui.method, il_eval_accuracy(&table, ti, mi));
                reused++;
                continue;
            }
            if (resume && why && !strstr(why, "is missing")) {
                ui_clear(&ui);
                fprintf(stderr, "ilora: [%d/%d] %s: %s: recomputing (%s)\n", ti + 1, n_tasks,
                        te->name, ui.method, why);
            }
            free(why);
            double t0 = il_now();
            ui_progress(&ui, "starting", 0, 0);
            if (res_open(&res, &o, need_index, &set, &ui)) { ui_clear(&ui); cli_fail_lib(); goto out; }
            if (!it) {
                const char **si = il_calloc((size_t)o.shots, sizeof *si),
                           **so = il_calloc((size_t)o.shots, sizeof *so),
                           **qi = il_calloc((size_t)te->nq + 1, sizeof *qi);
                if (si && so && qi) {
                    for (int j = 0; j < o.shots; j++) {
                        si[j] = te->t.input[te->shots[j]];
                        so[j] = te->t.target[te->shots[j]];
                    }
                    for (int q = 0; q < te->nq; q++) qi[q] = te->t.input[te->qs[q]];
                    it = il_ilc_task_new(res.s, te->name, o.shots, si, so, te->nq, qi);
                }
                free(si);
                free(so);
                free(qi);
                if (!it) { ui_clear(&ui); cli_fail_lib(); goto out; }
                int nt = il_ilc_task_n_truncated(it);
                if (nt) {
                    ui_clear(&ui);
                    fprintf(stderr, "ilora: warning: %s: %d question(s) longer than %d tokens were "
                            "truncated\n", te->name, nt, o.max_input);
                }
            }
            char *pdir = il_sprintf("%s/predictions/%s", o.out, te->name),
                 *adir = il_sprintf("%s/adapters/%s", o.out, te->name);
            int drc = !pdir || !adir || mkdir_p(pdir) || mkdir_p(adir);
            free(pdir);
            free(adir);
            if (drc || il_ilc_run(it, m, &r)) { ui_clear(&ui); cli_fail_lib(); goto out; }
            table.correct[cell] = table.total[cell] = 0;
            int n_hit = 0, n_cut = 0;
            for (int run = 0; run < runs; run++) {
                correct[run] = 0;
                for (int q = 0; q < te->nq; q++) {
                    const size_t i = (size_t)run * te->nq + q;
                    correct[run] += il_eval_match(r.prediction[i], te->t.target[te->qs[q]]);
                    n_hit += r.hit_limit[i];
                    n_cut += r.input_truncated[i];
                }
                table.correct[cell] += correct[run];
                table.total[cell] += te->nq;
            }
            /* predictions first, the adapters file last: it marks the unit finished */
            if (write_predictions(o.out, te, &r) ||
                write_meta(o.out, te, res.s, &r, correct, &o)) {
                ui_clear(&ui);
                cli_fail_lib();
                goto out;
            }
            t_embed += r.t_embed;
            t_retrieve += r.t_retrieve;
            t_adapters += r.t_load;
            t_opt += r.t_optimise;
            t_gen += r.t_generate;
            evals += r.n_evals;
            ui_clear(&ui);
            fprintf(stderr, "ilora: [%d/%d] %s: %s: computed in %.2f s: %.1f%%", ti + 1, n_tasks,
                    te->name, ui.method, il_now() - t0, il_eval_accuracy(&table, ti, mi));
            if (n_hit)
                fprintf(stderr, " (%d answer(s) reached --max-new-tokens %d)", n_hit, o.max_new);
            if (n_cut)
                fprintf(stderr, " (%d input(s) cut at --max-input-tokens %d)", n_cut, o.max_input);
            fputc('\n', stderr);
            il_ilc_result_free(&r);
            computed++;
        }
        il_ilc_task_free(it);
        it = NULL;
    }
    ui_clear(&ui);

    /* ---- the tables ---- */
    char *jp = il_path_join(o.out, "scores.json"), *cp = il_path_join(o.out, "scores.csv"),
         *mp = il_path_join(o.out, "table.md");
    int wrc = !jp || !cp || !mp || il_eval_write_json(&table, jp, settings_line) ||
              il_eval_write_csv(&table, cp) || !(md = il_eval_markdown(&table)) ||
              il_write_file_atomic(mp, md, strlen(md));
    free(jp);
    free(cp);
    free(mp);
    if (wrc) { cli_fail_lib(); goto out; }
    fputs(md, stdout);
    fflush(stdout);
    fprintf(stderr, "ilora: %d unit(s) computed, %d reused; results in %s\n", computed, reused, o.out);
    fprintf(stderr, "ilora: time: loading %.2f s, indexing %.2f s, embedding %.2f s, retrieval "
            "%.2f s, adapters %.2f s, optimisation %.2f s (%ld evaluations), generation %.2f s; "
            "total %.2f s\n", res.t_load, res.t_index, t_embed, t_retrieve, t_adapters, t_opt,
            evals, t_gen, il_now() - t_start);
    rc = EXIT_OK;
out:
    ui_clear(&ui);
    il_ilc_result_free(&r);
    il_ilc_task_free(it);
    res_free(&res);
    il_eval_table_free(&table);
    tasks_free(tasks, n_tasks);
    cJSON_Delete(settings);
    free(settings_text);
    free(settings_line);
    free(spath);
    free(md);
    free(correct);
    cli_list_free(&o.task_names);
    cli_list_free(&pos);
    return rc;
}
