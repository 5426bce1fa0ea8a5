/* cli_train.c - `ilora train-lora` (a PEFT LoRA adapter trained on JSONL examples with the
 * base model frozen) and `ilora finetune` (full fine-tuning, written as a Hugging Face model
 * directory). Both use the library's epoch loop (t5_train.h); the output directory is
 * filled under a temporary name and renamed into place, so it appears complete or not at
 * all. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_t5.h"
#include "t5_train.h"

static const char help_lora[] =
    "usage: ilora train-lora --model DIR --data FILE.jsonl --out DIR [options]\n\n"
    "Trains a LoRA adapter on examples (JSONL lines {\"input\": ..., \"output\": ...}) with the\n"
    "base model frozen, and writes a PEFT adapter directory: adapter_config.json,\n"
    "adapter_model.safetensors and train.jsonl (a copy of --data, for the library index).\n"
    "The adapter starts as PEFT initialises one: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming-\n"
    "uniform, a = sqrt(5)), B = 0. The loss is Hugging Face's (token mean over the batch);\n"
    "its mean over each epoch goes to stderr. The same seed gives the same adapter.\n\n"
    "  --r N                 rank (default 16)\n"
    "  --alpha X             lora_alpha; the update is scaled by alpha / r (default 32)\n"
    "  --targets LIST        projections to adapt, comma-separated, as PEFT's target_modules:\n"
    "                        q, k, v, o (every attention), wi_0, wi_1 or wi, wo (default q,v)\n"
    "  --lr X                peak learning rate of AdamW (default 2e-4)\n"
    "  --epochs N            passes over the examples (default 10)\n"
    "  --batch N             examples per optimiser step (default 5)\n"
    "  --seed S              initialisation of A and the example order (default 42)\n"
    "  --schedule KIND       linear (default: decays to 0 at the last step) or constant\n"
    "  --warmup N            steps of linear warmup from 0 (default 0)\n"
    "  --weight-decay X      AdamW's decoupled weight decay (default 0)\n"
    "  --max-grad-norm X     clip the global gradient norm to X; 0 = off (default 1)\n"
    "  --max-input-tokens N  inputs longer than N tokens are cut, keeping </s> (default 2048)\n"
    "  --force               replace --out when it exists and is not empty\n"
    "AdamW betas (0.9, 0.999), eps 1e-8. Every example order is reshuffled each epoch.\n";

static const char help_ft[] =
    "usage: ilora finetune --model DIR --data FILE.jsonl --out DIR [options]\n\n"
    "Full fine-tuning: every weight of the model is trained on examples (JSONL lines\n"
    "{\"input\": ..., \"output\": ...}). Writes a Hugging Face model directory: config.json\n"
    "(copied), model.safetensors (float32, transformers' key names) and the tokenizer files\n"
    "(copied). The loss is Hugging Face's (token mean over the batch); its mean over each\n"
    "epoch goes to stderr. The same seed gives the same weights. The defaults are the\n"
    "paper's fine-tuning baseline (40 epochs, lr 3e-5, batch 5).\n\n"
    "  --lr X                peak learning rate of AdamW (default 3e-5)\n"
    "  --epochs N            passes over the examples (default 40)\n"
    "  --batch N             examples per optimiser step (default 5)\n"
    "  --seed S              the example order (default 42)\n"
    "  --schedule KIND       linear (default: decays to 0 at the last step) or constant\n"
    "  --warmup N            steps of linear warmup from 0 (default 0)\n"
    "  --weight-decay X      AdamW's decoupled weight decay, not applied to layer norms\n"
    "                        (default 0)\n"
    "  --max-grad-norm X     clip the global gradient norm to X; 0 = off (default 1)\n"
    "  --max-input-tokens N  inputs longer than N tokens are cut, keeping </s> (default 2048)\n"
    "  --force               replace --out when it exists and is not empty\n"
    "AdamW betas (0.9, 0.999), eps 1e-8. Memory: about 4x the float32 model size on top of\n"
    "the model (weights, gradients, two AdamW moments) plus the activations of a batch.\n";

/* Options both commands share. */
typedef struct {
    const char *model, *data, *out, *schedule;
    double lr, weight_decay, max_grad_norm;
    int epochs, batch, seed, warmup, max_input;
    bool force;
} train_args;

/* ===== the output directory ===== */

static bool dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return false;
    bool empty = true;
    for (struct dirent *e; empty && (e = readdir(d));)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

/* Refuse an existing non-empty --out unless --force (before any work). */
static int check_out(const char *out, bool force) {
    struct stat st;
    if (lstat(out, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode))
        return cli_fail(EXIT_RUNTIME, "%s: exists and is not a directory", out);
    if (!force && !dir_is_empty(out))
        return cli_fail(EXIT_RUNTIME, "%s: exists and is not empty (use --force to replace it)",
                        out);
    return 0;
}

/* A fresh sibling directory "<out>.tmp.<pid>" to fill. */
static char *make_tmp(const char *out) {
    char *tmp = il_sprintf("%s.tmp.%ld", out, (long)getpid());
    if (!tmp) return NULL;
    il_remove_tree(tmp); /* a leftover of an earlier process with this pid */
    if (mkdir(tmp, 0777) != 0) {
        il_seterr("%s: cannot create directory: %s", tmp, strerror(errno));
        free(tmp);
        return NULL;
    }
    return tmp;
}

/* Move tmp to out, replacing an existing out (checked by check_out). */
static int commit_out(const char *tmp, const char *out) {
    char *old = NULL;
    struct stat st;
    int rc = -1;
    if (lstat(out, &st) == 0) {
        if (!(old = il_sprintf("%s.old.%ld", out, (long)getpid()))) return -1;
        il_remove_tree(old);
        if (rename(out, old) != 0) {
            il_seterr("%s: cannot replace: %s", out, strerror(errno));
            goto done;
        }
    }
    if (rename(tmp, out) != 0) {
        il_seterr("%s: cannot create: %s", out, strerror(errno));
        if (old) rename(old, out); /* put the previous one back */
        goto done;
    }
    il_remove_tree(old);
    rc = 0;
done:
    free(old);
    return rc;
}

static int copy_file(const char *src, const char *dst) {
    size_t len;
    char *data = il_read_file(src, &len);
    if (!data) return -1;
    int rc = il_write_file_atomic(dst, data, len);
    free(data);
    return rc;
}

/* Copy dir/name to tmp/name (optional files: skipped when absent). */
static int copy_from(const char *dir, const char *tmp, const char *name, bool required) {
    char *src = il_path_join(dir, name), *dst = il_path_join(tmp, name);
    int rc = -1;
    if (src && dst) {
        if (!required && !il_file_exists(src)) rc = 0;
        else rc = copy_file(src, dst);
    }
    free(src);
    free(dst);
    return rc;
}

/* ===== shared steps ===== */

static int parse_args(int argc, char **argv, train_args *a, cli_opt *extra, int n_extra,
                      bool *help) {
    cli_opt opts[32];
    const cli_opt common[] = {
        {"--model", OPT_STRING, &a->model, 0, 0},
        {"--data", OPT_STRING, &a->data, 0, 0},
        {"--out", OPT_STRING, &a->out, 0, 0},
        {"--lr", OPT_DOUBLE, &a->lr, 0, 0},
        {"--epochs", OPT_INT, &a->epochs, 1, 1000000},
        {"--batch", OPT_INT, &a->batch, 1, 1000000},
        {"--seed", OPT_INT, &a->seed, 0, 2147483647},
        {"--schedule", OPT_STRING, &a->schedule, 0, 0},
        {"--warmup", OPT_INT, &a->warmup, 0, 1000000000},
        {"--weight-decay", OPT_DOUBLE, &a->weight_decay, 0, 0},
        {"--max-grad-norm", OPT_DOUBLE, &a->max_grad_norm, 0, 0},
        {"--max-input-tokens", OPT_INT, &a->max_input, 2, 1000000},
        {"--force", OPT_FLAG, &a->force, 0, 0},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) opts[n++] = common[i];
    for (int i = 0; i < n_extra; i++) opts[n++] = extra[i];
    cli_list pos = {0};
    int rc = cli_parse(argc, argv, opts, n, &pos, help);
    if (!rc && !*help && pos.n) rc = cli_fail(EXIT_USAGE, "%s takes no positional arguments "
                                              "(got '%s')", argv[0], pos.items[0]);
    cli_list_free(&pos);
    if (rc || *help) return rc;
    if (!a->model || !a->data || !a->out)
        return cli_fail(EXIT_USAGE, "%s needs --model DIR, --data FILE.jsonl and --out DIR",
                        argv[0]);
    if (!*a->out) return cli_fail(EXIT_USAGE, "option --out: empty path");
    if (!(a->lr > 0) || !isfinite(a->lr))
        return cli_fail(EXIT_USAGE, "option --lr: expected a positive number, got %g", a->lr);
    if (!(a->weight_decay >= 0) || !isfinite(a->weight_decay))
        return cli_fail(EXIT_USAGE, "option --weight-decay: expected a number >= 0, got %g",
                        a->weight_decay);
    if (!(a->max_grad_norm >= 0) || !isfinite(a->max_grad_norm))
        return cli_fail(EXIT_USAGE, "option --max-grad-norm: expected a number >= 0, got %g",
                        a->max_grad_norm);
    il_lr_kind k;
    if (il_lr_kind_parse(a->schedule, &k))
        return cli_fail(EXIT_USAGE, "option --schedule: expected linear or constant, got '%s'",
                        a->schedule);
    return 0;
}

static void print_epoch(void *user, int epoch, int epochs, double loss) {
    (void)user;
    fprintf(stderr, "epoch %d/%d: loss %.4f\n", epoch, epochs, loss);
    fflush(stderr);
}

/* The examples of --data tokenized: inputs cut at max_input, outputs + eos as labels. */
typedef struct {
    cli_examples ex;
    cli_ids in, out;
} train_data;

static int load_data(const train_args *a, const cli_t5 *m, train_data *d) {
    if (cli_tokenize_all(m, (const char *const *)d->ex.input, d->ex.n, a->max_input, &d->in) ||
        cli_tokenize_all(m, (const char *const *)d->ex.output, d->ex.n, 0, &d->out)) {
        il_prefixerr("%s", a->data);
        return -1;
    }
    if (d->in.n_truncated)
        fprintf(stderr, "ilora: warning: %d input(s) longer than %d tokens were truncated\n",
                d->in.n_truncated, a->max_input);
    return 0;
}

static void free_data(train_data *d) {
    cli_ids_free(&d->in);
    cli_ids_free(&d->out);
    cli_examples_free(&d->ex);
}

static int fit(il_t5_train *t, const train_args *a, const train_data *d, double *losses) {
    il_t5_fit_opts o = il_t5_fit_default_opts();
    o.epochs = a->epochs;
    o.batch = a->batch;
    o.seed = (uint64_t)a->seed;
    o.adamw.lr = a->lr;
    o.adamw.weight_decay = a->weight_decay;
    il_lr_kind_parse(a->schedule, &o.schedule);
    o.warmup_steps = a->warmup;
    o.max_grad_norm = a->max_grad_norm;
    o.on_epoch = print_epoch;
    return il_t5_train_fit(t, d->ex.n, (const int32_t *const *)d->in.ids, d->in.lens,
                           (const int32_t *const *)d->out.ids, d->out.lens, &o, losses);
}

/* The examples of --data tokenized by --model, which stays open for the trainer. */
static int load_inputs(const train_args *a, cli_t5 *m, train_data *d) {
    if (cli_read_examples(a->data, true, &d->ex) || cli_t5_open(m, a->model, true)) return -1;
    return load_data(a, m, d);
}

/* Train t (per-epoch losses to *losses) and make the fresh temporary directory *tmp that
 * the command fills with its output before commit_out; both are the caller's to free. */
static int fit_into_tmp(il_t5_train *t, const train_args *a, const train_data *d,
                        double **losses, char **tmp) {
    if (!(*losses = il_calloc((size_t)a->epochs, sizeof **losses)) || !(*tmp = make_tmp(a->out)))
        return -1;
    return fit(t, a, d, *losses);
}

static void print_summary(const train_args *a, int n, const double *losses) {
    il_buf b = {0};
    il_buf_puts(&b, "{\"out\":");
    il_buf_json_string(&b, a->out);
    int bs = a->batch < n ? a->batch : n;
    il_buf_printf(&b, ",\"examples\":%d,\"epochs\":%d,\"steps\":%ld,\"epoch_losses\":[", n,
                  a->epochs, (long)a->epochs * ((n + bs - 1) / bs));
    for (int e = 0; e < a->epochs; e++) il_buf_printf(&b, "%s%.9g", e ? "," : "", losses[e]);
    il_buf_puts(&b, "]}\n");
    if (b.data) fputs(b.data, stdout);
    il_buf_free(&b);
}

/* ===== ilora train-lora ===== */

/* "q,v" -> names (pointing into *buf); EXIT_USAGE on an empty or unknown entry. */
static int parse_targets(const char *list, char **buf, const char ***names, int *n) {
    static const char *const known[] = {"q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"};
    *n = 0;
    *names = NULL;
    if (!(*buf = il_strdup(list)) || !(*names = il_calloc(strlen(list) + 1, sizeof **names)))
        return cli_fail_lib();
    for (char *s = *buf;;) {
        char *comma = strchr(s, ',');
        if (comma) *comma = 0;
        bool ok = false;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) ok |= !strcmp(s, known[k]);
        if (!ok)
            return cli_fail(EXIT_USAGE, "option --targets: '%s' is not a T5 projection (expected "
                            "a comma-separated list of q, k, v, o, wi, wi_0, wi_1, wo)", s);
        (*names)[(*n)++] = s;
        if (!comma) break;
        s = comma + 1;
    }
    return 0;
}

int cmd_train_lora(int argc, char **argv) {
    train_args a = {NULL, NULL, NULL, "linear", 2e-4, 0.0, 1.0, 10, 5, 42, 0, 2048, false};
    int r = 16;
    double alpha = 32;
    const char *targets = "q,v";
    cli_opt extra[] = {
        {"--r", OPT_INT, &r, 1, 65536},
        {"--alpha", OPT_DOUBLE, &alpha, 0, 0},
        {"--targets", OPT_STRING, &targets, 0, 0},
    };
    bool help;
    char *tbuf = NULL, *tmp = NULL, *p = NULL;
    const char **tnames = NULL;
    int n_t = 0;
    cli_t5 m = {0};
    train_data d = {0};
    il_lora *init = NULL, *out = NULL;
    il_t5_train *t = NULL;
    double *losses = NULL;
    int rc = parse_args(argc, argv, &a, extra, 3, &help);
    if (rc) goto done;
    if (help) { fputs(help_lora, stdout); goto done; }
    if (!(alpha > 0) || !isfinite(alpha)) {
        rc = cli_fail(EXIT_USAGE, "option --alpha: expected a positive number, got %g", alpha);
        goto done;
    }
    if ((rc = parse_targets(targets, &tbuf, &tnames, &n_t))) goto done;
    if ((rc = check_out(a.out, a.force))) goto done;
    if (load_inputs(&a, &m, &d)) goto fail;
    il_lora_init_opts lo = {r, alpha, tnames, n_t, a.model};
    if (!(init = il_t5_train_lora_init(il_t5_get_config(m.model), &lo, (uint64_t)a.seed))) {
        il_prefixerr("%s", a.model);
        goto fail;
    }
    if (!(t = il_t5_train_new_lora(m.model, init)) || fit_into_tmp(t, &a, &d, &losses, &tmp))
        goto fail;
    if (!(out = il_t5_train_export_lora(t)) || il_lora_save(out, tmp) ||
        !(p = il_path_join(tmp, "train.jsonl")) || copy_file(a.data, p) || commit_out(tmp, a.out))
        goto fail;
    print_summary(&a, d.ex.n, losses);
    goto done;
fail:
    rc = cli_fail_lib();
done:
    if (rc && tmp) il_remove_tree(tmp);
    free(tmp);
    free(p);
    free(tbuf);
    free(tnames);
    free(losses);
    il_lora_free(out);
    il_t5_train_free(t);
    il_lora_free(init);
    free_data(&d);
    cli_t5_close(&m);
    return rc;
}

/* ===== ilora finetune ===== */

int cmd_finetune(int argc, char **argv) {
    train_args a = {NULL, NULL, NULL, "linear", 3e-5, 0.0, 1.0, 40, 5, 42, 0, 2048, false};
    static const char *const copied[] = {"generation_config.json", "spiece.model",
                                         "tokenizer.json", "tokenizer_config.json",
                                         "special_tokens_map.json", "added_tokens.json"};
    bool help;
    char *tmp = NULL, *p = NULL;
    cli_t5 m = {0};
    train_data d = {0};
    il_t5_train *t = NULL;
    double *losses = NULL;
    int rc = parse_args(argc, argv, &a, NULL, 0, &help);
    if (rc) goto done;
    if (help) { fputs(help_ft, stdout); goto done; }
    if ((rc = check_out(a.out, a.force))) goto done;
    if (load_inputs(&a, &m, &d)) goto fail;
    if (!(t = il_t5_train_new_full(m.model)) || fit_into_tmp(t, &a, &d, &losses, &tmp)) goto fail;
    if (!(p = il_path_join(tmp, "model.safetensors")) || il_t5_train_save_model(t, p) ||
        copy_from(a.model, tmp, "config.json", true))
        goto fail;
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
        if (copy_from(a.model, tmp, copied[i], false)) goto fail;
    if (commit_out(tmp, a.out)) goto fail;
    print_summary(&a, d.ex.n, losses);
    goto done;
fail:
    rc = cli_fail_lib();
done:
    if (rc && tmp) il_remove_tree(tmp);
    free(tmp);
    free(p);
    free(losses);
    il_t5_train_free(t);
    free_data(&d);
    cli_t5_close(&m);
    return rc;
}
