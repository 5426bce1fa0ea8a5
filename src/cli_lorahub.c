/* cli_lorahub.c - `ilora lorahub`: learn LoraHub composition weights for a set of adapters
 * on a few examples, and write them (weights.json) with the composed adapter (a PEFT
 * directory) into --out. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_t5.h"
#include "lorahub.h"
#include "opt.h"

static const char help[] =
    "usage: ilora lorahub --model DIR --lora DIR [--lora DIR]... --examples FILE.jsonl\n"
    "                     --out DIR [options]\n\n"
    "LoraHub: learn one weight per adapter so that the composition of the adapters fits the\n"
    "examples, with a gradient-free optimiser (LoraHub's method, DESIGN.md section 1). It\n"
    "minimises over w in [-1.5, 1.5]^N, starting from w = 0,\n"
    "  objective(w) = LoraHub loss + L1 * mean_i |w_i|\n"
    "where the LoraHub loss is the Hugging Face token-mean cross-entropy of each batch of\n"
    "--batch-size examples, summed, divided by the number of examples.\n"
    "  --lora DIR            a PEFT LoRA adapter directory; repeat it, or list more directories\n"
    "                        after the first --lora (no =WEIGHT: the weights are learnt)\n"
    "  --examples FILE.jsonl lines {\"input\": ..., \"output\": ...} (LoraHub uses 5)\n"
    "  --steps N             objective evaluations (default 40)\n"
    "  --optimizer NAME      cobyla (default: what LoraHub's nevergrad NGOpt runs), cmaes,\n"
    "                        1+1-es or random\n"
    "  --seed S              seed of the stochastic optimisers (default 42; cobyla has none)\n"
    "  --compose RULE        linear (default, LoraHub's: A = sum w_i A_i, B = sum w_i B_i) or\n"
    "                        delta (exactly sum w_i s_i B_i A_i; ranks may differ)\n"
    "  --l1 X                coefficient of mean |w| (default 0.05)\n"
    "  --batch-size N        LoraHub loss batch size (default 5)\n"
    "  --max-input-tokens N  inputs longer than N tokens are cut, keeping </s> (default 2048)\n"
    "  --verbose             print every evaluation to stderr\n"
    "  --out DIR             the result: DIR/weights.json and the composed adapter at the best\n"
    "                        weights as a PEFT directory (DIR/adapter_config.json,\n"
    "                        DIR/adapter_model.safetensors; load it with --lora DIR)\n"
    "weights.json: {\"modules\": the adapter directories as given, \"weights\", \"best_objective\",\n"
    "\"best_loss\" (without the L1 term), \"best_step\", \"objective_per_step\" (every evaluation\n"
    "in order), \"loss_per_step\", \"optimizer\", \"seed\", \"steps\", \"evaluations\", \"compose\",\n"
    "\"l1\", \"bounds\", \"batch_size\", \"examples\"}. Numbers are written exactly (up to 17\n"
    "digits), so runs with the same inputs, options and seed give byte-identical files. The\n"
    "result is the best evaluation (the first of equal ones), as nevergrad recommends it.\n"
    "--out rule: DIR is created if it does not exist. An existing DIR must be empty or hold\n"
    "only a previous lorahub result (weights.json, adapter_config.json,\n"
    "adapter_model.safetensors), which is then replaced; anything else is refused. Output is\n"
    "written to a temporary sibling directory and renamed into place, so DIR never holds a\n"
    "half-written result.\n";

static const char *const result_files[] = {"weights.json", "adapter_config.json",
                                           "adapter_model.safetensors"};
#define N_RESULT_FILES 3

static bool is_result_file(const char *name) {
    for (int i = 0; i < N_RESULT_FILES; i++)
        if (!strcmp(name, result_files[i])) return true;
    return false;
}

/* 0: out does not exist; 1: an empty directory; 2: a previous result; -1: refused (error set). */
static int out_state(const char *out) {
    struct stat st;
    if (stat(out, &st) != 0) {
        if (errno == ENOENT) return 0;
        il_seterr("--out %s: %s", out, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        il_seterr("--out %s: exists and is not a directory", out);
        return -1;
    }
    DIR *d = opendir(out);
    if (!d) {
        il_seterr("--out %s: %s", out, strerror(errno));
        return -1;
    }
    int state = 1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!is_result_file(e->d_name)) {
            il_seterr("--out %s: not empty and not a previous lorahub result (it holds '%s'); "
                      "choose another directory or empty it", out, e->d_name);
            state = -1;
            break;
        }
        state = 2;
    }
    closedir(d);
    return state;
}

/* Remove a directory holding (at most) the result files. */
static void remove_result_dir(const char *dir) {
    for (int i = 0; i < N_RESULT_FILES; i++) {
        char *p = il_path_join(dir, result_files[i]);
        if (p) unlink(p);
        free(p);
    }
    rmdir(dir);
}

/* A new temporary sibling of out: "<out>.tmp.<pid>[.k]". NULL + error. */
static char *make_tmp_dir(const char *out) {
    for (int k = 0; k < 100; k++) {
        char *p = k ? il_sprintf("%s.tmp.%ld.%d", out, (long)getpid(), k)
                    : il_sprintf("%s.tmp.%ld", out, (long)getpid());
        if (!p) return NULL;
        if (mkdir(p, 0777) == 0) return p;
        int err = errno;
        free(p);
        if (err != EEXIST) {
            il_seterr("--out %s: cannot create a directory next to it: %s", out, strerror(err));
            return NULL;
        }
    }
    il_seterr("--out %s: cannot create a temporary directory next to it", out);
    return NULL;
}

/* Move the finished tmp directory to out (state from out_state). */
static int install(const char *tmp, const char *out, int state) {
    if (state != 2) { /* out missing or an empty directory: rename replaces it */
        if (rename(tmp, out) == 0) return 0;
        il_seterr("--out %s: cannot move the result into place: %s", out, strerror(errno));
        return -1;
    }
    char *old = il_sprintf("%s.old.%ld", out, (long)getpid());
    if (!old) return -1;
    int rc = -1;
    if (rename(out, old) != 0) {
        il_seterr("--out %s: cannot replace the previous result: %s", out, strerror(errno));
    } else if (rename(tmp, out) != 0) {
        il_seterr("--out %s: cannot move the result into place: %s", out, strerror(errno));
        rename(old, out); /* put the previous result back */
    } else {
        remove_result_dir(old);
        rc = 0;
    }
    free(old);
    return rc;
}

typedef struct {
    const cli_loras *loras;
    const il_lorahub_params *p;
    const il_lorahub_result *r;
    int seed, steps, n_examples;
} report;

static char *weights_json(const report *rp) {
    il_buf b = {0};
    const il_lorahub_result *r = rp->r;
    il_buf_puts(&b, "{\n  \"modules\": [");
    for (int i = 0; i < rp->loras->n; i++) {
        if (i) il_buf_puts(&b, ", ");
        il_buf_json_string(&b, rp->loras->dir[i]);
    }
    il_buf_puts(&b, "],\n  \"weights\": ");
    cli_json_doubles(&b, r->best_w, r->dim);
    il_buf_puts(&b, ",\n  \"best_objective\": ");
    cli_json_double(&b, r->best_objective);
    il_buf_puts(&b, ",\n  \"best_loss\": ");
    cli_json_double(&b, r->best_loss);
    il_buf_printf(&b, ",\n  \"best_step\": %d", r->best_index + 1);
    il_buf_puts(&b, ",\n  \"objective_per_step\": ");
    cli_json_doubles(&b, r->objective, r->n_evals);
    il_buf_puts(&b, ",\n  \"loss_per_step\": ");
    cli_json_doubles(&b, r->loss, r->n_evals);
    il_buf_printf(&b, ",\n  \"optimizer\": \"%s\",\n  \"seed\": %d,\n  \"steps\": %d,\n"
                      "  \"evaluations\": %d,\n  \"compose\": \"%s\",\n  \"l1\": ",
                  r->optimizer, rp->seed, rp->steps, r->n_evals, il_lora_rule_name(rp->p->rule));
    cli_json_double(&b, rp->p->l1);
    il_buf_puts(&b, ",\n  \"bounds\": [");
    cli_json_double(&b, rp->p->lo);
    il_buf_puts(&b, ", ");
    cli_json_double(&b, rp->p->hi);
    il_buf_printf(&b, "],\n  \"batch_size\": %d,\n  \"examples\": %d\n}\n", rp->p->batch_size,
                  rp->n_examples);
    if (!b.data) il_seterr("out of memory");
    return b.data;
}

static void on_eval(void *user, int problem, int eval, const double *w, int dim, double loss,
                    double objective) {
    const int *steps = user;
    fprintf(stderr, "ilora: step %d/%d: objective %.6f (loss %.6f) at w = [", eval + 1, *steps,
            objective, loss);
    for (int i = 0; i < dim; i++) fprintf(stderr, "%s%.4f", i ? ", " : "", w[i]);
    fputs("]\n", stderr);
}

int cmd_lorahub(int argc, char **argv) {
    const char *model = NULL, *examples = NULL, *out = NULL, *optimizer = "cobyla",
               *compose = NULL;
    int steps = IL_LORAHUB_BUDGET, seed = 42, batch_size = IL_LORAHUB_BATCH_SIZE, max_input = 2048;
    double l1 = IL_LORAHUB_L1;
    bool verbose = false;
    cli_list lora_args = {0};
    const cli_opt opts[] = {
        {"--model", OPT_STRING, &model, 0, 0},
        {"--lora", OPT_LIST, &lora_args, 0, 0},
        {"--examples", OPT_STRING, &examples, 0, 0},
        {"--out", OPT_STRING, &out, 0, 0},
        {"--steps", OPT_INT, &steps, 1, 100000},
        {"--seed", OPT_INT, &seed, 0, 2147483647},
        {"--optimizer", OPT_STRING, &optimizer, 0, 0},
        {"--compose", OPT_STRING, &compose, 0, 0},
        {"--l1", OPT_DOUBLE, &l1, 0, 0},
        {"--batch-size", OPT_INT, &batch_size, 1, 100000},
        {"--max-input-tokens", OPT_INT, &max_input, 2, 1000000},
        {"--verbose", OPT_FLAG, &verbose, 0, 0},
    };
    cli_list pos = {0};
    bool want_help;
    cli_t5 m = {0};
    cli_examples ex = {0};
    cli_loras loras = {0};
    il_lorahub_tokenized tk = {0};
    il_lorahub_result res = {0};
    il_lora_ctx *ctx = NULL;
    il_lora *best = NULL;
    char *tmp = NULL, *json = NULL, *jpath = NULL, *out_buf = NULL;
    float *wf = NULL;
    il_lora_rule rule = IL_LORA_LINEAR;
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &pos, &want_help);
    if (rc) goto done;
    if (want_help) { fputs(help, stdout); goto done; }
    if (!model || !lora_args.n || !examples || !out) {
        rc = cli_fail(EXIT_USAGE, "lorahub needs --model DIR, --lora DIR, --examples FILE.jsonl "
                                  "and --out DIR (see --help)");
        goto done;
    }
    if ((rc = cli_check_optimizer(optimizer))) goto done;
    if (!(l1 >= 0) || !isfinite(l1)) {
        rc = cli_fail(EXIT_USAGE, "option --l1: expected a finite number >= 0, got %g", l1);
        goto done;
    }
    if (compose && (rc = cli_parse_rule(compose, &rule))) goto done;
    if ((rc = cli_loras_parse(&loras, &lora_args, &pos, false))) goto done;
    /* "out/" names the directory out: the temporary sibling must not land inside it */
    if (!(out_buf = il_strdup(out))) { rc = cli_fail_lib(); goto done; }
    for (size_t n = strlen(out_buf); n > 1 && out_buf[n - 1] == '/'; n--) out_buf[n - 1] = 0;
    out = out_buf;
    const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
    if (!strcmp(base, ".") || !strcmp(base, "..") || !strcmp(out, "/")) {
        rc = cli_fail(EXIT_USAGE, "option --out: '%s' cannot be replaced; name a directory", out);
        goto done;
    }
    /* the output place first: a refused or unwritable --out fails before any work */
    int state = out_state(out);
    if (state < 0 || !(tmp = make_tmp_dir(out))) { rc = cli_fail_lib(); goto done; }
    if (cli_read_examples(examples, true, &ex) || cli_t5_open(&m, model, true) ||
        cli_loras_load(&loras, il_t5_get_config(m.model)) ||
        il_lorahub_tokenize(m.tok, ex.n, (const char *const *)ex.input,
                            (const char *const *)ex.output, max_input, &tk)) {
        rc = cli_fail_lib();
        goto done;
    }
    if (tk.n_truncated)
        fprintf(stderr, "ilora: warning: %d input(s) longer than %d tokens were truncated\n",
                tk.n_truncated, max_input);

    il_lorahub_problem pr = {loras.n, (const il_lora *const *)loras.a, &tk.ex,
                             il_lorahub_default_params()};
    pr.params.optimizer = optimizer;
    pr.params.budget = steps;
    pr.params.seed = (uint64_t)seed;
    pr.params.l1 = l1;
    pr.params.batch_size = batch_size;
    pr.params.rule = rule;
    il_lorahub_run_opts ro = {0};
    if (verbose) ro.on_eval = on_eval, ro.user = &steps;
    double t0 = il_now();
    if (!(ctx = il_lora_ctx_new(m.model)) || il_lorahub_run(ctx, &pr, &ro, &res)) {
        rc = cli_fail_lib();
        goto done;
    }
    double secs = il_now() - t0;

    /* the composed adapter at the best weights (the same arithmetic as during the run) */
    wf = il_malloc(sizeof *wf * (size_t)loras.n);
    if (!wf) { rc = cli_fail_lib(); goto done; }
    for (int i = 0; i < loras.n; i++) wf[i] = (float)res.best_w[i];
    report rp = {&loras, &pr.params, &res, seed, steps, ex.n};
    if (!(best = il_lora_compose(loras.n, (const il_lora *const *)loras.a, wf, rule)) ||
        il_lora_save(best, tmp) || !(json = weights_json(&rp)) ||
        !(jpath = il_path_join(tmp, "weights.json")) ||
        il_write_file_atomic(jpath, json, strlen(json)) || install(tmp, out, state)) {
        rc = cli_fail_lib();
        goto done;
    }
    free(tmp);
    tmp = NULL; /* installed: nothing to clean up */

    printf("lorahub: %d adapters, %d examples, %s, %d evaluations in %.2f s\n", loras.n, ex.n,
           res.optimizer, res.n_evals, secs);
    printf("objective: %.6f at the first step -> %.6f best (step %d, loss %.6f)\n",
           res.objective[0], res.best_objective, res.best_index + 1, res.best_loss);
    for (int i = 0; i < loras.n; i++) printf("  %+.6f  %s\n", res.best_w[i], loras.dir[i]);
    printf("wrote %s/weights.json and the composed adapter in %s\n", out, out);
done:
    if (tmp) remove_result_dir(tmp);
    free(tmp);
    free(out_buf);
    free(json);
    free(jpath);
    free(wf);
    il_lora_free(best);
    il_lorahub_result_free(&res);
    il_lora_ctx_free(ctx);
    il_lorahub_tokenized_free(&tk);
    cli_loras_free(&loras);
    cli_examples_free(&ex);
    cli_t5_close(&m);
    cli_list_free(&lora_args);
    cli_list_free(&pos);
    return rc;
}
