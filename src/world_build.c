/* world_build.c - `ilora world build` (world_build.h): tasks, tokenizer, base model,
 * adapter library and measurements, each step resumable through a stamp file. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "world_build.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adamw.h"
#include "eval.h"
#include "library.h"
#include "lora.h"
#include "rng.h"
#include "sentencepiece.h"
#include "t5_train.h"
#include "world_tasks.h"

il_world_build_opts il_world_build_default_opts(void) {
    il_world_build_opts o = {0};
    o.seed = 42;
    o.n_train = 200;
    o.n_dev = 50;
    o.n_heldout = 100;
    o.vocab_size = 2000;
    o.d_model = 128;
    o.d_kv = 32;
    o.num_heads = 4;
    o.d_ff = 512;
    o.num_layers = 2;
    o.base_epochs = 8;
    o.base_batch = 32;
    o.base_lr = 2e-3;
    o.base_warmup = 200;
    o.lora_r = 8;
    o.lora_alpha = 16;
    o.lora_epochs = 4;
    o.lora_batch = 8;
    o.lora_lr = 1e-2;
    o.max_new_tokens = 32;
    return o;
}

/* ===== small helpers ===== */

typedef struct {
    const il_world_build_opts *o;
    const char *out;
    char *tasks, *base, *library, *stamps;
    int n_fam; /* families used */
} wb;

static void wlog(const wb *w, const char *fmt, ...) IL_PRINTF(2, 3);
static void wlog(const wb *w, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (w->o->log) w->o->log(w->o->user, msg);
    else {
        fprintf(stderr, "ilora world build: %s\n", msg);
        fflush(stderr);
    }
}

static int mkdir_one(const char *dir) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        il_seterr("%s: cannot create directory: %s", dir, strerror(errno));
        return -1;
    }
    if (!il_dir_exists(dir)) {
        il_seterr("%s: exists and is not a directory", dir);
        return -1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void remove_tree(const char *dir) {
    struct stat st;
    if (dir && lstat(dir, &st) == 0) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int write_text(const char *path, const char *s) {
    return il_write_file_atomic(path, s, strlen(s));
}

static int copy_file(const char *src, const char *dst) {
    size_t len;
    char *data = il_read_file(src, &len);
    if (!data) return -1;
    int rc = il_write_file_atomic(dst, data, len);
    free(data);
    return rc;
}

static char *fp_hex(const char *path) {
    uint64_t h;
    char hex[17];
    if (il_fingerprint_file(path, &h)) return NULL;
    il_fingerprint_hex(h, hex);
    return il_strdup(hex);
}

/* A step is up to date when its stamp file holds exactly `stamp` and its outputs exist. */
static bool stamp_ok(const wb *w, const char *name, const char *stamp) {
    char *p = il_sprintf("%s/%s.json", w->stamps, name);
    bool ok = false;
    if (p && il_file_exists(p)) {
        size_t len;
        char *s = il_read_file(p, &len);
        ok = s && !strcmp(s, stamp);
        free(s);
    }
    free(p);
    return ok;
}

static int stamp_write(const wb *w, const char *name, const char *stamp) {
    char *p = il_sprintf("%s/%s.json", w->stamps, name);
    int rc = p ? write_text(p, stamp) : -1;
    free(p);
    return rc;
}

static void stamp_remove(const wb *w, const char *name) {
    char *p = il_sprintf("%s/%s.json", w->stamps, name);
    if (p) unlink(p);
    free(p);
}

/* ===== JSONL examples ===== */

typedef struct {
    char **in, **out;
    int n;
} examples;

static void examples_free(examples *e) {
    for (int i = 0; i < e->n; i++) {
        free(e->in[i]);
        free(e->out[i]);
    }
    free(e->in);
    free(e->out);
    memset(e, 0, sizeof *e);
}

static int examples_add(examples *e, const char *in, const char *out) {
    char **a = il_realloc(e->in, (size_t)(e->n + 1) * sizeof *a);
    if (!a) return -1;
    e->in = a;
    char **b = il_realloc(e->out, (size_t)(e->n + 1) * sizeof *b);
    if (!b) return -1;
    e->out = b;
    char *x = il_strdup(in), *y = il_strdup(out);
    if (!x || !y) {
        free(x);
        free(y);
        return -1;
    }
    e->in[e->n] = x;
    e->out[e->n] = y;
    e->n++;
    return 0;
}

/* JSONL lines {"input"|"inputs": ..., "output"|"target"|"targets": ...}. */
static int examples_read_jsonl(const char *path, examples *e) {
    size_t len;
    char *text = il_read_file(path, &len);
    if (!text) return -1;
    int rc = 0, line = 0;
    for (char *s = text; *s && !rc;) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = 0;
        line++;
        if (strspn(s, " \t\r") != strlen(s)) {
            cJSON *j = cJSON_Parse(s);
            const cJSON *in = j ? cJSON_GetObjectItemCaseSensitive(j, "input") : NULL;
            const cJSON *out = j ? cJSON_GetObjectItemCaseSensitive(j, "output") : NULL;
            if (!cJSON_IsString(in) || !cJSON_IsString(out)) {
                il_seterr("%s:%d: expected {\"input\": string, \"output\": string}", path, line);
                rc = -1;
            } else rc = examples_add(e, in->valuestring, out->valuestring);
            cJSON_Delete(j);
        }
        if (!nl) break;
        s = nl + 1;
    }
    free(text);
    if (rc) examples_free(e);
    return rc;
}

/* BBH task file {"examples": [{"input", "target"}]}. */
static int examples_read_bbh(const char *path, examples *e) {
    size_t len;
    char *text = il_read_file(path, &len);
    if (!text) return -1;
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *ex = j ? cJSON_GetObjectItemCaseSensitive(j, "examples") : NULL;
    int rc = 0;
    if (!cJSON_IsArray(ex)) {
        il_seterr("%s: expected an object with an \"examples\" array", path);
        rc = -1;
    }
    const cJSON *it;
    if (!rc) cJSON_ArrayForEach(it, ex) {
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(it, "input");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "target");
        if (!cJSON_IsString(in) || !cJSON_IsString(t)) {
            il_seterr("%s: an example without string input/target", path);
            rc = -1;
            break;
        }
        if ((rc = examples_add(e, in->valuestring, t->valuestring))) break;
    }
    cJSON_Delete(j);
    if (rc) examples_free(e);
    return rc;
}

static int examples_write_jsonl(const char *path, const examples *e) {
    il_buf b = {0};
    int rc = 0;
    for (int i = 0; i < e->n && !rc; i++) {
        cJSON *j = cJSON_CreateObject();
        if (!j || !cJSON_AddStringToObject(j, "input", e->in[i]) ||
            !cJSON_AddStringToObject(j, "output", e->out[i])) {
            il_seterr("%s: out of memory", path);
            rc = -1;
        } else {
            char *s = cJSON_PrintUnformatted(j);
            rc = s ? il_buf_printf(&b, "%s\n", s) : -1;
            free(s);
        }
        cJSON_Delete(j);
    }
    if (!rc) rc = il_write_file_atomic(path, b.data ? b.data : "", b.len);
    il_buf_free(&b);
    return rc;
}

static char *family_file(const wb *w, const char *sub, int f) {
    return il_sprintf("%s/%s/%s.jsonl", w->tasks, sub, il_world_family_name(f));
}

/* ===== step 1: tasks (+ dev splits) ===== */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* n_dev examples of family f whose inputs are neither in its train file nor repeated. */
static int write_dev(const wb *w, int f) {
    char *train_p = family_file(w, "upstream", f), *dev_p = family_file(w, "dev", f);
    examples tr = {0}, dev = {0};
    char **seen = NULL;
    int rc = -1, n_seen = 0;
    if (!train_p || !dev_p || examples_read_jsonl(train_p, &tr)) goto done;
    int cap = tr.n + w->o->n_dev;
    if (!(seen = il_calloc((size_t)cap + 1, sizeof *seen))) goto done;
    for (int i = 0; i < tr.n; i++) seen[n_seen++] = tr.in[i];
    qsort(seen, (size_t)n_seen, sizeof *seen, cmp_str);
    /* draws after the train file's: indices n_train, n_train + 1, ... */
    long limit = (long)w->o->n_train + 200L * w->o->n_dev + 1000;
    for (long idx = w->o->n_train; dev.n < w->o->n_dev && idx < limit; idx++) {
        char *in = NULL, *out = NULL;
        if (il_world_family_example(f, w->o->seed, (int)idx, &in, &out)) goto done;
        bool dup = bsearch(&in, seen, (size_t)n_seen, sizeof *seen, cmp_str) != NULL;
        for (int k = 0; !dup && k < dev.n; k++) dup = !strcmp(dev.in[k], in);
        int r = dup ? 0 : examples_add(&dev, in, out);
        free(in);
        free(out);
        if (r) goto done;
    }
    if (dev.n < w->o->n_dev) {
        /* a family whose whole input space fits in its train file: top up with fresh draws
         * that repeat train inputs (measurements.json counts them as dev_seen) */
        int unseen = dev.n;
        for (long idx = w->o->n_train; dev.n < w->o->n_dev && idx < limit; idx++) {
            char *in = NULL, *out = NULL;
            if (il_world_family_example(f, w->o->seed, (int)idx, &in, &out)) goto done;
            bool dup = false;
            for (int k = 0; !dup && k < dev.n; k++) dup = !strcmp(dev.in[k], in);
            int r = dup ? 0 : examples_add(&dev, in, out);
            free(in);
            free(out);
            if (r) goto done;
        }
        wlog(w, "note: family %s has only %d unseen inputs; its dev split has %d more drawn "
                "from inputs its train file holds", il_world_family_name(f), unseen, dev.n - unseen);
    }
    if (dev.n == 0) {
        il_seterr("family %s: no input outside its train file", il_world_family_name(f));
        goto done;
    }
    rc = examples_write_jsonl(dev_p, &dev);
done:
    free(seen);
    examples_free(&tr);
    examples_free(&dev);
    free(train_p);
    free(dev_p);
    return rc;
}

static int step_tasks(const wb *w, char **fp_out) {
    const il_world_build_opts *o = w->o;
    char *stamp = il_sprintf("{\"step\":\"tasks\",\"seed\":%llu,\"n_train\":%d,\"n_heldout\":%d,"
                             "\"n_dev\":%d,\"n_families\":%d}\n",
                             (unsigned long long)o->seed, o->n_train, o->n_heldout, o->n_dev,
                             w->n_fam);
    char *manifest = il_path_join(w->tasks, "tasks.json"), *devdir = il_path_join(w->tasks, "dev");
    int rc = -1;
    if (!stamp || !manifest || !devdir) goto done;
    /* Always regenerated (about a second; same arguments -> same bytes, files rewritten
     * atomically): the stamp cannot know whether the generator changed, so later steps
     * decide from the fingerprints of the files instead. */
    {
        wlog(w, "tasks: writing %d families x %d train + %d dev examples, %d held-out tasks",
             il_world_n_families(), o->n_train, o->n_dev, il_world_n_heldout());
        stamp_remove(w, "tasks");
        if (il_world_write_tasks(w->tasks, o->seed, o->n_train, o->n_heldout)) {
            il_prefixerr("tasks");
            goto done;
        }
        if (mkdir_one(devdir)) goto done;
        for (int f = 0; f < w->n_fam; f++)
            if (write_dev(w, f)) {
                il_prefixerr("tasks: dev split");
                goto done;
            }
        if (stamp_write(w, "tasks", stamp)) goto done;
    }
    /* fingerprint of everything later steps read from tasks/ */
    il_buf b = {0};
    for (int f = 0; f < w->n_fam; f++) {
        char *p1 = family_file(w, "upstream", f), *p2 = family_file(w, "dev", f);
        char *h1 = p1 ? fp_hex(p1) : NULL, *h2 = p2 ? fp_hex(p2) : NULL;
        if (h1 && h2) il_buf_printf(&b, "%s%s", h1, h2);
        bool ok = h1 && h2;
        free(p1), free(p2), free(h1), free(h2);
        if (!ok) {
            il_buf_free(&b);
            goto done;
        }
    }
    for (int h = 0; h < il_world_n_heldout(); h++) {
        char *p = il_sprintf("%s/heldout/%s.json", w->tasks, il_world_heldout_name(h));
        char *x = p ? fp_hex(p) : NULL;
        if (x) il_buf_puts(&b, x);
        free(p);
        if (!x) {
            il_buf_free(&b);
            goto done;
        }
        free(x);
    }
    char hex[17];
    il_fingerprint_hex(il_xxh64(b.data ? b.data : "", b.len, 0), hex);
    il_buf_free(&b);
    rc = (*fp_out = il_strdup(hex)) ? 0 : -1;
done:
    free(stamp);
    free(manifest);
    free(devdir);
    return rc;
}

/* ===== step 2: tokenizer ===== */

/* Append the lines of s (one sentence per line for spm_train). */
static int add_lines(il_buf *b, const char *s) {
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, "\n");
        size_t sp = 0;
        while (sp < n && (p[sp] == ' ' || p[sp] == '\t' || p[sp] == '\r')) sp++;
        if (sp < n && (il_buf_append(b, p, n) || il_buf_puts(b, "\n"))) return -1;
        p += n;
        if (*p) p++;
    }
    return 0;
}

static char *find_in_path(const char *prog) {
    if (strchr(prog, '/')) {
        if (access(prog, X_OK) != 0) return NULL;
        char *abs = realpath(prog, NULL); /* the program runs in another directory */
        return abs ? abs : il_strdup(prog);
    }
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        char *cand = il_sprintf("%.*s/%s", (int)n, p, prog);
        if (cand && access(cand, X_OK) == 0) {
            char *abs = realpath(cand, NULL);
            if (abs) {
                free(cand);
                return abs;
            }
            return cand;
        }
        free(cand);
        p += n;
        if (*p) p++;
    }
    return NULL;
}

/* fork/exec argv[0] (an absolute path) in directory cwd with stdout and stderr to log_path
 * (relative to cwd); 0 if it exits with 0. */
static int run_program(char *const *argv, const char *cwd, const char *log_path) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        il_seterr("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (chdir(cwd) != 0) _exit(126);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            il_seterr("waitpid: %s", strerror(errno));
            return -1;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (WIFEXITED(status))
        il_seterr("%s exited with status %d (its output: %s/%s)", argv[0], WEXITSTATUS(status),
                  cwd, log_path);
    else il_seterr("%s was killed by signal %d", argv[0], WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return -1;
}

static const char tokenizer_config[] =
    "{\n  \"additional_special_tokens\": [],\n  \"clean_up_tokenization_spaces\": true,\n"
    "  \"eos_token\": \"</s>\",\n  \"extra_ids\": 0,\n  \"model_max_length\": 512,\n"
    "  \"pad_token\": \"<pad>\",\n  \"sp_model_kwargs\": {},\n"
    "  \"tokenizer_class\": \"T5Tokenizer\",\n  \"unk_token\": \"<unk>\"\n}\n";
static const char special_tokens_map[] =
    "{\n  \"eos_token\": \"</s>\",\n  \"pad_token\": \"<pad>\",\n  \"unk_token\": \"<unk>\"\n}\n";

static int step_tokenizer(const wb *w, const char *tasks_fp, char **fp_out) {
    const il_world_build_opts *o = w->o;
    il_buf text = {0};
    char *spmdir = il_path_join(w->out, ".spm"), *input = NULL, *prefix = NULL, *log = NULL,
         *model = NULL, *dst = NULL, *stamp = NULL, *prog = NULL, *tc = NULL, *stm = NULL;
    char *argv[32] = {0};
    int rc = -1, na = 0;
    if (!spmdir || !(dst = il_path_join(w->base, "spiece.model")) ||
        !(tc = il_path_join(w->base, "tokenizer_config.json")) ||
        !(stm = il_path_join(w->base, "special_tokens_map.json")))
        goto done;
    if (!(stamp = il_sprintf("{\"step\":\"tokenizer\",\"tasks\":\"%s\",\"vocab_size\":%d,"
                             "\"extra_ids\":0}\n", tasks_fp, o->vocab_size)))
        goto done;
    if (stamp_ok(w, "tokenizer", stamp) && il_file_exists(dst) && il_file_exists(tc) &&
        il_file_exists(stm)) {
        wlog(w, "tokenizer: up to date");
        rc = (*fp_out = fp_hex(dst)) ? 0 : -1;
        goto done;
    }
    stamp_remove(w, "tokenizer");
    if (!(prog = find_in_path(o->spm_train ? o->spm_train : "spm_train"))) {
        il_seterr("%s not found; apt-get install sentencepiece",
                  o->spm_train ? o->spm_train : "spm_train");
        goto done;
    }
    /* the texts: inputs and outputs of the upstream train files and the held-out tasks */
    for (int f = 0; f < w->n_fam; f++) {
        examples e = {0};
        char *p = family_file(w, "upstream", f);
        int r = p ? examples_read_jsonl(p, &e) : -1;
        for (int i = 0; i < e.n && !r; i++) r = add_lines(&text, e.in[i]) || add_lines(&text, e.out[i]);
        examples_free(&e);
        free(p);
        if (r) goto done;
    }
    for (int h = 0; h < il_world_n_heldout(); h++) {
        examples e = {0};
        char *p = il_sprintf("%s/heldout/%s.json", w->tasks, il_world_heldout_name(h));
        int r = p ? examples_read_bbh(p, &e) : -1;
        for (int i = 0; i < e.n && !r; i++) r = add_lines(&text, e.in[i]) || add_lines(&text, e.out[i]);
        examples_free(&e);
        free(p);
        if (r) goto done;
    }
    remove_tree(spmdir);
    if (mkdir_one(spmdir) || !(input = il_path_join(spmdir, "input.txt")) ||
        !(prefix = il_path_join(spmdir, "spiece")) || !(log = il_path_join(spmdir, "spm_train.log")) ||
        !(model = il_path_join(spmdir, "spiece.model")) ||
        il_write_file_atomic(input, text.data ? text.data : "", text.len))
        goto done;
    wlog(w, "tokenizer: spm_train (unigram, nmt_nfkc, vocab %d) on %zu bytes of task text",
         o->vocab_size, text.len);
    argv[na++] = prog;
    /* relative names: spiece.model records them in its trainer_spec, so the file must not
     * depend on where DIR is */
    argv[na++] = il_strdup("--input=input.txt");
    argv[na++] = il_strdup("--model_prefix=spiece");
    argv[na++] = il_sprintf("--vocab_size=%d", o->vocab_size);
    static const char *const fixed[] = {
        "--model_type=unigram", "--normalization_rule_name=nmt_nfkc", "--character_coverage=1.0",
        "--pad_id=0", "--eos_id=1", "--unk_id=2", "--bos_id=-1", "--pad_piece=<pad>",
        "--eos_piece=</s>", "--unk_piece=<unk>", "--hard_vocab_limit=false", "--num_threads=1",
        "--input_sentence_size=0", "--shuffle_input_sentence=false",
        "--seed_sentencepiece_size=1000000", "--max_sentence_length=16384"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[na++] = il_strdup(fixed[i]);
    for (int i = 0; i < na; i++)
        if (!argv[i]) goto done;
    if (run_program(argv, spmdir, "spm_train.log")) {
        il_prefixerr("tokenizer");
        goto done;
    }
    if (mkdir_one(w->base) || copy_file(model, dst) || write_text(tc, tokenizer_config) ||
        write_text(stm, special_tokens_map))
        goto done;
    il_tokenizer *tok = il_tokenizer_load(w->base);
    if (!tok) {
        il_prefixerr("tokenizer: the spiece.model spm_train made");
        goto done;
    }
    wlog(w, "tokenizer: %d pieces", il_tokenizer_piece_count(tok));
    il_tokenizer_free(tok);
    if (stamp_write(w, "tokenizer", stamp) || !(*fp_out = fp_hex(dst))) goto done;
    remove_tree(spmdir);
    rc = 0;
done:
    for (int i = 1; i < na; i++) free(argv[i]);
    il_buf_free(&text);
    free(spmdir), free(input), free(prefix), free(log), free(model), free(dst), free(stamp);
    free(prog), free(tc), free(stm);
    return rc;
}

/* ===== config.json ===== */

char *il_world_t5_config_json(const il_t5_config *c) {
    const char *act = c->act == IL_ACT_RELU ? "relu" : c->act == IL_ACT_GELU_NEW ? "gelu_new" : "gelu";
    const char *ffp = c->gated ? (c->act == IL_ACT_RELU ? "gated-relu" : "gated-gelu")
                               : (c->act == IL_ACT_RELU ? "relu" : act);
    return il_sprintf(
        "{\n  \"architectures\": [\n    \"T5ForConditionalGeneration\"\n  ],\n"
        "  \"d_ff\": %d,\n  \"d_kv\": %d,\n  \"d_model\": %d,\n"
        "  \"decoder_start_token_id\": %d,\n  \"dense_act_fn\": \"%s\",\n"
        "  \"dropout_rate\": 0.1,\n  \"eos_token_id\": %d,\n  \"feed_forward_proj\": \"%s\",\n"
        "  \"initializer_factor\": 1.0,\n  \"is_encoder_decoder\": true,\n"
        "  \"is_gated_act\": %s,\n  \"layer_norm_epsilon\": %.9g,\n  \"model_type\": \"t5\",\n"
        "  \"num_decoder_layers\": %d,\n  \"num_heads\": %d,\n  \"num_layers\": %d,\n"
        "  \"pad_token_id\": %d,\n  \"relative_attention_max_distance\": %d,\n"
        "  \"relative_attention_num_buckets\": %d,\n  \"tie_word_embeddings\": %s,\n"
        "  \"torch_dtype\": \"float32\",\n  \"transformers_version\": \"4.31.0\",\n"
        "  \"use_cache\": true,\n  \"vocab_size\": %d\n}\n",
        c->d_ff, c->d_kv, c->d_model, c->decoder_start_id, act, c->eos_id, ffp,
        c->gated ? "true" : "false", (double)c->eps, c->num_decoder_layers, c->num_heads,
        c->num_layers, c->pad_id, c->rel_max_distance, c->rel_buckets,
        c->tie_word_embeddings ? "true" : "false", c->vocab_size);
}

int il_world_write_config(const char *dir, const il_t5_config *c) {
    char *s = il_world_t5_config_json(c), *p = il_path_join(dir, "config.json");
    int rc = s && p ? write_text(p, s) : -1;
    free(s);
    free(p);
    return rc;
}

/* ===== tokenized examples ===== */

typedef struct {
    int n;
    int32_t **ids, **labels;
    int *lens, *label_lens;
} tok_set;

static void tok_set_free(tok_set *t) {
    for (int i = 0; i < t->n; i++) {
        if (t->ids) free(t->ids[i]);
        if (t->labels) free(t->labels[i]);
    }
    free(t->ids), free(t->labels), free(t->lens), free(t->label_lens);
    memset(t, 0, sizeof *t);
}

static int tok_set_make(const il_tokenizer *tok, const examples *e, tok_set *t) {
    memset(t, 0, sizeof *t);
    t->n = e->n;
    if (!(t->ids = il_calloc((size_t)e->n + 1, sizeof *t->ids)) ||
        !(t->labels = il_calloc((size_t)e->n + 1, sizeof *t->labels)) ||
        !(t->lens = il_calloc((size_t)e->n + 1, sizeof *t->lens)) ||
        !(t->label_lens = il_calloc((size_t)e->n + 1, sizeof *t->label_lens))) {
        tok_set_free(t);
        return -1;
    }
    for (int i = 0; i < e->n; i++)
        if (il_tokenizer_encode(tok, e->in[i], strlen(e->in[i]), &t->ids[i], &t->lens[i]) ||
            il_tokenizer_encode(tok, e->out[i], strlen(e->out[i]), &t->labels[i],
                                &t->label_lens[i])) {
            il_prefixerr("example %d", i);
            tok_set_free(t);
            return -1;
        }
    return 0;
}

/* ===== step 3: base model ===== */

/* Initialise every trainable tensor as transformers' T5PreTrainedModel._init_weights does
 * (factor 1), except lm_head ~ N(0, d_model^-0.5) so the first logits are O(1). */
static void init_weights(il_t5_train *t, const il_t5_config *c, uint64_t seed) {
    il_rng r;
    il_rng_seed(&r, seed);
    const double d = c->d_model, dkv = c->d_kv, inner = (double)c->num_heads * c->d_kv;
    for (int i = 0; i < il_t5_train_n_params(t); i++) {
        const il_t5_param *p = il_t5_train_param(t, i);
        const char *n = p->name;
        size_t len = strlen(n);
        double sd;
        bool ones = p->ndim == 1;
#define ENDS(s) (len >= strlen(s) && !strcmp(n + len - strlen(s), s))
        if (!strcmp(n, "shared.weight")) sd = 1.0;
        else if (!strcmp(n, "lm_head.weight")) sd = pow(d, -0.5);
        else if (ENDS(".q.weight")) sd = pow(d * dkv, -0.5);
        else if (ENDS(".k.weight") || ENDS(".v.weight")) sd = pow(d, -0.5);
        else if (ENDS(".o.weight")) sd = pow(inner, -0.5);
        else if (ENDS("relative_attention_bias.weight")) sd = pow(d, -0.5);
        else if (ENDS(".wo.weight")) sd = pow((double)c->d_ff, -0.5);
        else sd = pow(d, -0.5); /* wi, wi_0, wi_1 */
#undef ENDS
        for (size_t k = 0; k < p->numel; k++) p->w[k] = ones ? 1.0f : (float)(sd * il_rng_normal(&r));
    }
}

static int read_family_examples(const wb *w, const char *sub, int f, examples *e) {
    char *p = family_file(w, sub, f);
    int rc = p ? examples_read_jsonl(p, e) : -1;
    free(p);
    return rc;
}

static int step_base(const wb *w, const char *tasks_fp, const char *tok_fp, char **fp_out) {
    const il_world_build_opts *o = w->o;
    char *stamp = NULL, *weights = il_path_join(w->base, "model.safetensors"),
         *cfgp = il_path_join(w->base, "config.json"),
         *genp = il_path_join(w->base, "generation_config.json");
    il_tokenizer *tok = NULL;
    il_t5 *m = NULL;
    il_t5_train *t = NULL;
    examples all = {0};
    tok_set ts = {0};
    int *idx = NULL, rc = -1;
    if (!weights || !cfgp || !genp) goto done;
    if (!(stamp = il_sprintf("{\"step\":\"base\",\"tasks\":\"%s\",\"tokenizer\":\"%s\","
                             "\"seed\":%llu,\"d_model\":%d,\"d_kv\":%d,\"num_heads\":%d,"
                             "\"d_ff\":%d,\"num_layers\":%d,\"epochs\":%d,\"batch\":%d,"
                             "\"lr\":%.9g,\"warmup\":%d,\"weight_decay\":0.01,"
                             "\"max_grad_norm\":1.0,\"schedule\":\"linear\"}\n",
                             tasks_fp, tok_fp, (unsigned long long)o->seed, o->d_model, o->d_kv,
                             o->num_heads, o->d_ff, o->num_layers, o->base_epochs, o->base_batch,
                             o->base_lr, o->base_warmup)))
        goto done;
    if (stamp_ok(w, "base", stamp) && il_file_exists(weights) && il_file_exists(cfgp) &&
        il_file_exists(genp)) {
        wlog(w, "base: up to date");
        rc = (*fp_out = fp_hex(weights)) ? 0 : -1;
        goto done;
    }
    stamp_remove(w, "base");
    if (!(tok = il_tokenizer_load(w->base))) goto done;
    il_t5_config c = {0};
    c.vocab_size = (il_tokenizer_vocab_size(tok) + 7) / 8 * 8;
    c.d_model = o->d_model;
    c.d_kv = o->d_kv;
    c.num_heads = o->num_heads;
    c.d_ff = o->d_ff;
    c.num_layers = c.num_decoder_layers = o->num_layers;
    c.rel_buckets = 32;
    c.rel_max_distance = 128;
    c.eps = 1e-6f;
    c.gated = true;
    c.act = IL_ACT_GELU_NEW;
    c.tie_word_embeddings = false;
    c.pad_id = 0;
    c.eos_id = 1;
    c.decoder_start_id = 0;
    if (!(m = il_t5_new_random(&c, o->seed)) || !(t = il_t5_train_new_full(m))) goto done;
    il_t5_free(m);
    m = NULL;
    init_weights(t, &c, o->seed ^ 0x5151ULL);
    /* the mixture: every train example of every family used */
    for (int f = 0; f < w->n_fam; f++) {
        examples e = {0};
        int r = read_family_examples(w, "upstream", f, &e);
        for (int i = 0; i < e.n && !r; i++) r = examples_add(&all, e.in[i], e.out[i]);
        examples_free(&e);
        if (r) goto done;
    }
    if (tok_set_make(tok, &all, &ts)) goto done;
    if (!(idx = il_calloc((size_t)ts.n, sizeof *idx))) goto done;
    for (int i = 0; i < ts.n; i++) idx[i] = i;
    const int B = o->base_batch, spe = (ts.n + B - 1) / B;
    const long total = (long)o->base_epochs * spe;
    il_lr_schedule sch = {IL_LR_LINEAR, o->base_lr, o->base_warmup, total};
    il_adamw_opts ao = il_adamw_default_opts();
    ao.weight_decay = 0.01;
    il_rng r;
    il_rng_seed(&r, o->seed ^ 0xba5eULL);
    wlog(w, "base: %d examples, %d epochs x %d steps (batch %d), d_model %d, %d+%d layers, "
            "vocab %d", ts.n, o->base_epochs, spe, B, c.d_model, c.num_layers,
         c.num_decoder_layers, c.vocab_size);
    size_t n_params = 0;
    for (int i = 0; i < il_t5_train_n_params(t); i++) n_params += il_t5_train_param(t, i)->numel;
    wlog(w, "base: %zu parameters (%.1f MB float32)", n_params, n_params * 4.0 / 1e6);
    const int32_t **bi = NULL, **bl = NULL;
    int *bn = NULL, *bln = NULL;
    if (!(bi = il_calloc((size_t)B, sizeof *bi)) || !(bl = il_calloc((size_t)B, sizeof *bl)) ||
        !(bn = il_calloc((size_t)B, sizeof *bn)) || !(bln = il_calloc((size_t)B, sizeof *bln))) {
        free(bi), free(bl), free(bn), free(bln);
        goto done;
    }
    double t0 = il_now(), acc = 0;
    int n_acc = 0, fail = 0;
    long step = 0, every = total / 40 > 0 ? total / 40 : 1;
    for (int ep = 0; ep < o->base_epochs && !fail; ep++) {
        il_rng_shuffle(&r, idx, ts.n);
        for (int s0 = 0; s0 < ts.n && !fail; s0 += B, step++) {
            int nb = ts.n - s0 < B ? ts.n - s0 : B;
            for (int k = 0; k < nb; k++) {
                int j = idx[s0 + k];
                bi[k] = ts.ids[j], bn[k] = ts.lens[j], bl[k] = ts.labels[j], bln[k] = ts.label_lens[j];
            }
            double loss;
            il_t5_train_zero_grad(t);
            if (il_t5_train_forward(t, nb, bi, bn, bl, bln, &loss) || il_t5_train_backward(t)) {
                fail = 1;
                break;
            }
            il_t5_train_clip_grad_norm(t, 1.0);
            ao.lr = il_lr_at(&sch, step);
            if (il_t5_train_adamw_step(t, &ao)) {
                fail = 1;
                break;
            }
            acc += loss, n_acc++;
            if ((step + 1) % every == 0 || step + 1 == total) {
                double el = il_now() - t0;
                wlog(w, "base: step %ld/%ld epoch %d loss %.4f  %.0fs elapsed, ~%.0fs left",
                     step + 1, total, ep + 1, acc / n_acc, el, el / (step + 1) * (total - step - 1));
                acc = 0, n_acc = 0;
            }
        }
    }
    free(bi), free(bl), free(bn), free(bln);
    if (fail) {
        il_prefixerr("base: training");
        goto done;
    }
    if (il_world_write_config(w->base, &c) ||
        write_text(genp, "{\n  \"decoder_start_token_id\": 0,\n  \"eos_token_id\": 1,\n"
                         "  \"pad_token_id\": 0,\n  \"transformers_version\": \"4.31.0\"\n}\n") ||
        il_t5_train_save_model(t, weights))
        goto done;
    if (!(m = il_t5_load(w->base))) {
        il_prefixerr("base: reloading");
        goto done;
    }
    if (stamp_write(w, "base", stamp) || !(*fp_out = fp_hex(weights))) goto done;
    wlog(w, "base: done in %.0f s", il_now() - t0);
    rc = 0;
done:
    free(idx);
    tok_set_free(&ts);
    examples_free(&all);
    il_t5_train_free(t);
    il_t5_free(m);
    il_tokenizer_free(tok);
    free(stamp), free(weights), free(cfgp), free(genp);
    return rc;
}

/* ===== step 4: adapters ===== */

static void print_lora_epoch(void *user, int epoch, int epochs, double loss) {
    (void)user, (void)epoch, (void)epochs, (void)loss;
}

static int train_adapter(const wb *w, il_t5 *m, const il_tokenizer *tok, int f,
                         const char *base_fp, double *first_loss, double *last_loss) {
    const il_world_build_opts *o = w->o;
    const char *name = il_world_family_name(f);
    char *train_p = family_file(w, "upstream", f), *dir = NULL, *tmp = NULL, *tj = NULL,
         *stamp = NULL, *train_fp = NULL, *sname = NULL, *cfgp = NULL;
    examples e = {0};
    tok_set ts = {0};
    il_lora *init = NULL, *out = NULL;
    il_t5_train *t = NULL;
    double *losses = NULL;
    int rc = -1;
    if (!train_p || !(train_fp = fp_hex(train_p)) ||
        !(dir = il_sprintf("%s/%s", w->library, name)) ||
        !(tmp = il_sprintf("%s/.tmp-%s", w->library, name)) ||
        !(sname = il_sprintf("lora-%s", name)) || !(cfgp = il_path_join(dir, "adapter_config.json")))
        goto done;
    if (!(stamp = il_sprintf("{\"step\":\"lora\",\"family\":\"%s\",\"base\":\"%s\","
                             "\"train\":\"%s\",\"seed\":%llu,\"r\":%d,\"alpha\":%.9g,"
                             "\"targets\":[\"q\",\"v\"],\"epochs\":%d,\"batch\":%d,\"lr\":%.9g,"
                             "\"schedule\":\"linear\",\"max_grad_norm\":1.0}\n",
                             name, base_fp, train_fp, (unsigned long long)o->seed, o->lora_r,
                             o->lora_alpha, o->lora_epochs, o->lora_batch, o->lora_lr)))
        goto done;
    if (stamp_ok(w, sname, stamp) && il_file_exists(cfgp)) {
        rc = 1; /* up to date */
        goto done;
    }
    stamp_remove(w, sname);
    if (examples_read_jsonl(train_p, &e) || tok_set_make(tok, &e, &ts)) goto done;
    static const char *const targets[] = {"q", "v"};
    il_lora_init_opts lo = {o->lora_r, o->lora_alpha, targets, 2, "base"};
    if (!(init = il_t5_train_lora_init(il_t5_get_config(m), &lo, o->seed + 1000u + (unsigned)f)) ||
        !(t = il_t5_train_new_lora(m, init)) ||
        !(losses = il_calloc((size_t)o->lora_epochs, sizeof *losses)))
        goto done;
    il_t5_fit_opts fo = il_t5_fit_default_opts();
    fo.epochs = o->lora_epochs;
    fo.batch = o->lora_batch;
    fo.seed = o->seed + 2000u + (unsigned)f;
    fo.adamw.lr = o->lora_lr;
    fo.adamw.weight_decay = 0;
    fo.schedule = IL_LR_LINEAR;
    fo.max_grad_norm = 1.0;
    fo.on_epoch = print_lora_epoch;
    if (il_t5_train_fit(t, ts.n, (const int32_t *const *)ts.ids, ts.lens,
                        (const int32_t *const *)ts.labels, ts.label_lens, &fo, losses))
        goto done;
    *first_loss = losses[0];
    *last_loss = losses[o->lora_epochs - 1];
    remove_tree(tmp);
    if (!(out = il_t5_train_export_lora(t)) || il_lora_save(out, tmp) ||
        !(tj = il_path_join(tmp, "train.jsonl")) || copy_file(train_p, tj))
        goto done;
    remove_tree(dir);
    if (rename(tmp, dir) != 0) {
        il_seterr("%s: cannot create: %s", dir, strerror(errno));
        goto done;
    }
    if (stamp_write(w, sname, stamp)) goto done;
    rc = 0;
done:
    if (rc < 0) {
        il_prefixerr("adapter %s", name);
        if (tmp) remove_tree(tmp);
    }
    tok_set_free(&ts);
    examples_free(&e);
    il_lora_free(init);
    il_lora_free(out);
    il_t5_train_free(t);
    free(losses);
    free(train_p), free(dir), free(tmp), free(tj), free(stamp), free(train_fp), free(sname);
    free(cfgp);
    return rc;
}

static int step_adapters(const wb *w, const char *base_fp) {
    il_t5 *m = il_t5_load(w->base);
    il_tokenizer *tok = m ? il_tokenizer_load(w->base) : NULL;
    int rc = -1;
    if (!tok || mkdir_one(w->library)) goto done;
    double t0 = il_now();
    int n_new = 0;
    for (int f = 0; f < w->n_fam; f++) {
        double l0 = 0, l1 = 0, ts = il_now();
        int r = train_adapter(w, m, tok, f, base_fp, &l0, &l1);
        if (r < 0) goto done;
        if (r == 0) {
            n_new++;
            wlog(w, "adapter %d/%d %s: loss %.4f -> %.4f (%.1f s)", f + 1, w->n_fam,
                 il_world_family_name(f), l0, l1, il_now() - ts);
        }
    }
    wlog(w, "adapters: %d trained, %d up to date (%.0f s)", n_new, w->n_fam - n_new, il_now() - t0);
    rc = 0;
done:
    il_tokenizer_free(tok);
    il_t5_free(m);
    return rc;
}

/* ===== step 5: measurements ===== */

/* Greedy answers of m (with whatever adapter is merged) to e's inputs; count matches. */
static int dev_correct(il_t5 *m, const il_tokenizer *tok, const tok_set *ts, const examples *e,
                       int max_new, int *correct) {
    int32_t **out = il_calloc((size_t)ts->n + 1, sizeof *out);
    int *out_lens = il_calloc((size_t)ts->n + 1, sizeof *out_lens);
    int rc = -1;
    *correct = 0;
    if (!out || !out_lens) goto done;
    il_gen_opts g = il_gen_default_opts();
    g.max_new_tokens = max_new;
    g.max_batch = 64;
    if (il_t5_generate(m, ts->n, (const int32_t *const *)ts->ids, ts->lens, &g, out, out_lens, NULL))
        goto done;
    for (int i = 0; i < ts->n; i++) {
        char *s = il_tokenizer_decode(tok, out[i], out_lens[i], true,
                                      il_tokenizer_cleanup_default(tok));
        if (!s) goto done;
        *correct += il_eval_match(s, e->out[i]);
        free(s);
    }
    rc = 0;
done:
    if (out)
        for (int i = 0; i < ts->n; i++) free(out[i]);
    free(out);
    free(out_lens);
    return rc;
}

static int step_measure(const wb *w, const char *tasks_fp, const char *base_fp) {
    const il_world_build_opts *o = w->o;
    il_buf fps = {0}, js = {0}, md = {0};
    il_t5 *m = NULL;
    il_tokenizer *tok = NULL;
    char *stamp = NULL, *jp = il_path_join(w->out, "measurements.json"),
         *mp = il_path_join(w->out, "measurements.md");
    int rc = -1;
    if (!jp || !mp) goto done;
    for (int f = 0; f < w->n_fam; f++) {
        char *p = il_sprintf("%s/%s/adapter_model.safetensors", w->library, il_world_family_name(f));
        char *h = p ? fp_hex(p) : NULL;
        free(p);
        if (!h) goto done;
        il_buf_puts(&fps, h);
        free(h);
    }
    char hex[17];
    il_fingerprint_hex(il_xxh64(fps.data ? fps.data : "", fps.len, 0), hex);
    if (!(stamp = il_sprintf("{\"step\":\"measure\",\"tasks\":\"%s\",\"base\":\"%s\","
                             "\"adapters\":\"%s\",\"max_new_tokens\":%d}\n",
                             tasks_fp, base_fp, hex, o->max_new_tokens)))
        goto done;
    if (stamp_ok(w, "measure", stamp) && il_file_exists(jp) && il_file_exists(mp)) {
        wlog(w, "measurements: up to date");
        rc = 0;
        goto done;
    }
    stamp_remove(w, "measure");
    if (!(m = il_t5_load(w->base)) || !(tok = il_tokenizer_load(w->base))) goto done;
    il_buf_printf(&js, "{\n  \"metric\": \"exact match after strip/lower/remove '.' "
                       "(il_eval_match), greedy, max_new_tokens %d\",\n"
                       "  \"split\": \"tasks/dev/<family>.jsonl: unseen inputs first; dev_seen counts inputs "
                       "also in the train file (families with a small input space)\",\n"
                       "  \"families\": [\n", o->max_new_tokens);
    il_buf_puts(&md, "| family | dev n | of which in train | base | adapter | adapter - base |\n"
                     "|---|---:|---:|---:|---:|---:|\n");
    long sum_n = 0, sum_b = 0, sum_a = 0;
    int wins = 0, ties = 0, losses = 0;
    for (int f = 0; f < w->n_fam; f++) {
        const char *name = il_world_family_name(f);
        examples e = {0};
        tok_set ts = {0};
        il_lora *a = NULL;
        il_lora_merged *mg = NULL;
        char *adir = il_sprintf("%s/%s", w->library, name);
        int cb = 0, ca = 0, r = -1;
        if (adir && !read_family_examples(w, "dev", f, &e) && !tok_set_make(tok, &e, &ts) &&
            !dev_correct(m, tok, &ts, &e, o->max_new_tokens, &cb) &&
            (a = il_lora_load(adir, il_t5_get_config(m), NULL)) && (mg = il_lora_merge(m, a))) {
            r = dev_correct(m, tok, &ts, &e, o->max_new_tokens, &ca);
        }
        il_lora_unmerge(mg);
        il_lora_free(a);
        free(adir);
        int n = e.n, seen = 0;
        examples tr = {0};
        if (!r && !(r = read_family_examples(w, "upstream", f, &tr)))
            for (int i = 0; i < e.n; i++) {
                bool hit = false;
                for (int j = 0; j < tr.n && !hit; j++) hit = !strcmp(e.in[i], tr.in[j]);
                seen += hit;
            }
        examples_free(&tr);
        tok_set_free(&ts);
        examples_free(&e);
        if (r) {
            il_prefixerr("measurements: family %s", name);
            goto done;
        }
        double pb = 100.0 * cb / n, pa = 100.0 * ca / n;
        sum_n += n, sum_b += cb, sum_a += ca;
        wins += ca > cb, ties += ca == cb, losses += ca < cb;
        il_buf_printf(&js, "    {\"family\": \"%s\", \"skill\": \"%s\", \"format\": \"%s\", "
                           "\"n\": %d, \"dev_seen\": %d, \"base_correct\": %d, \"adapter_correct\": %d, "
                           "\"base_acc\": %.2f, \"adapter_acc\": %.2f}%s\n",
                      name, il_world_family_skill(f), il_world_family_format(f), n, seen, cb, ca, pb,
                      pa, f + 1 < w->n_fam ? "," : "");
        il_buf_printf(&md, "| %s | %d | %d | %.1f | %.1f | %+.1f |\n", name, n, seen, pb, pa, pa - pb);
        wlog(w, "measure %d/%d %s: base %.1f%%, adapter %.1f%%", f + 1, w->n_fam, name, pb, pa);
    }
    double mb = sum_n ? 100.0 * sum_b / sum_n : NAN, ma = sum_n ? 100.0 * sum_a / sum_n : NAN;
    il_buf_printf(&js, "  ],\n  \"summary\": {\"families\": %d, \"examples\": %ld, "
                       "\"base_acc\": %.2f, \"adapter_acc\": %.2f, \"adapter_wins\": %d, "
                       "\"ties\": %d, \"adapter_losses\": %d}\n}\n",
                  w->n_fam, sum_n, mb, ma, wins, ties, losses);
    il_buf_printf(&md, "| **all (pooled)** | %ld | | %.1f | %.1f | %+.1f |\n\n"
                       "Adapter better than base on %d families, equal on %d, worse on %d.\n",
                  sum_n, mb, ma, ma - mb, wins, ties, losses);
    if (!js.data || !md.data || il_write_file_atomic(jp, js.data, js.len) ||
        il_write_file_atomic(mp, md.data, md.len) || stamp_write(w, "measure", stamp))
        goto done;
    wlog(w, "measurements: base %.1f%%, adapters %.1f%% on their own families "
            "(wins/ties/losses %d/%d/%d)", mb, ma, wins, ties, losses);
    rc = 0;
done:
    il_buf_free(&fps), il_buf_free(&js), il_buf_free(&md);
    il_t5_free(m);
    il_tokenizer_free(tok);
    free(stamp), free(jp), free(mp);
    return rc;
}

/* ===== the build ===== */

static int check_opts(const il_world_build_opts *o) {
#define NEED(cond, what) \
    if (!(cond)) { il_seterr("world build: %s", what); return -1; }
    NEED(o->n_train >= 1 && o->n_train <= 100000, "n_train must be in 1..100000");
    NEED(o->n_dev >= 1 && o->n_dev <= 10000, "n_dev must be in 1..10000");
    NEED(o->n_heldout >= 1 && o->n_heldout <= 250, "n_heldout must be in 1..250");
    NEED(o->n_families >= 0, "n_families must be >= 0");
    NEED(o->vocab_size >= 50 && o->vocab_size <= 1000000, "vocab_size must be in 50..1000000");
    NEED(o->d_model >= 8 && o->d_kv >= 1 && o->num_heads >= 1 && o->d_ff >= 1 && o->num_layers >= 1,
         "model shape: d_model >= 8, d_kv, num_heads, d_ff, num_layers >= 1");
    NEED(o->base_epochs >= 1 && o->base_batch >= 1 && o->base_warmup >= 0,
         "base_epochs, base_batch >= 1, base_warmup >= 0");
    NEED(o->base_lr > 0 && isfinite(o->base_lr), "base_lr must be positive");
    NEED(o->lora_r >= 1 && o->lora_alpha > 0 && o->lora_epochs >= 1 && o->lora_batch >= 1,
         "lora_r, lora_epochs, lora_batch >= 1, lora_alpha > 0");
    NEED(o->lora_lr > 0 && isfinite(o->lora_lr), "lora_lr must be positive");
    NEED(o->max_new_tokens >= 1, "max_new_tokens must be >= 1");
#undef NEED
    return 0;
}

int il_world_build(const char *out_dir, const il_world_build_opts *o) {
    il_world_build_opts def = il_world_build_default_opts();
    if (!o) o = &def;
    if (!out_dir || !*out_dir) {
        il_seterr("world build: empty output directory");
        return -1;
    }
    if (check_opts(o)) return -1;
    wb w = {o, out_dir, NULL, NULL, NULL, NULL, il_world_n_families()};
    if (o->n_families > 0 && o->n_families < w.n_fam) w.n_fam = o->n_families;
    char *tasks_fp = NULL, *tok_fp = NULL, *base_fp = NULL;
    int rc = -1;
    double t0 = il_now();
    if (!(w.tasks = il_path_join(out_dir, "tasks")) || !(w.base = il_path_join(out_dir, "base")) ||
        !(w.library = il_path_join(out_dir, "library")) ||
        !(w.stamps = il_path_join(out_dir, "stamps")))
        goto done;
    if (mkdir_one(out_dir) || mkdir_one(w.stamps) || mkdir_one(w.base)) goto done;
    if (step_tasks(&w, &tasks_fp)) goto done;
    if (step_tokenizer(&w, tasks_fp, &tok_fp)) goto done;
    if (step_base(&w, tasks_fp, tok_fp, &base_fp)) goto done;
    if (step_adapters(&w, base_fp)) goto done;
    if (step_measure(&w, tasks_fp, base_fp)) goto done;
    wlog(&w, "done in %.0f s", il_now() - t0);
    rc = 0;
done:
    free(tasks_fp), free(tok_fp), free(base_fp);
    free(w.tasks), free(w.base), free(w.library), free(w.stamps);
    return rc;
}
