/* cli_bench_eval.c - `ilora bench eval`: where the time of the instance-level method goes on
 * one BBH task, on the Flan-T5-Large shape with a 20-adapter library: indexing, retrieval,
 * optimisation and generation. Everything is random and built in memory (the embedder is
 * written to a temporary directory, since embedders are loaded from directories). */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bbh.h"
#include "cli.h"
#include "cli_bench.h"
#include "eval.h"
#include "iloracomp.h"
#include "lora.h"
#include "t5_merge.h"
#include "tensors.h"

static const char help[] =
    "usage: ilora bench eval [--layers N] [--steps N] [--questions N] [--shots K] [--adapters N]\n"
    "                        [--rank R] [--topn N] [--new-tokens N] [--task FILE]\n"
    "                        [--tokenizer DIR] [--seed S]\n\n"
    "The instance-level method (ilora) on one BIG-Bench-Hard task, timed by stage, on random\n"
    "weights of the paper's shapes:\n"
    "  - model: Flan-T5-Large (24+24 layers, d_model 1024, d_ff 2816, vocab 32128);\n"
    "  - library: --adapters (20) random adapters of rank --rank (16, lora_alpha 32) on q and v\n"
    "    of every attention block, each with 20 made-up training texts;\n"
    "  - embedder: a random MiniLM-L6-shaped BERT (6 layers, 384-d, 30522-word vocabulary,\n"
    "    mean pooling, normalised), written to a temporary directory and loaded from there;\n"
    "  - task: --task (data/bbh/boolean_expressions.json), --shots 5, --questions 20, texts\n"
    "    tokenized with --tokenizer (tests/golden/t5-tiny: its 2100 pieces give somewhat more\n"
    "    tokens than Flan-T5's vocabulary would).\n"
    "Reports the seconds of\n"
    "  indexing      the centroids: every training text embedded, means taken;\n"
    "  retrieval     embedding the shots and questions, top-N per shot, routing;\n"
    "  optimisation  the k per-shot weight searches in lockstep (--steps evaluations each),\n"
    "                with the evaluations, forward passes and seconds per evaluation;\n"
    "  generation    all questions in one call, each with its shot's composition; a random\n"
    "                model seldom stops, so every answer is --new-tokens (4) long, about a\n"
    "                BBH answer with </s>.\n"
    "Building the random weights is reported apart. --layers N shrinks both T5 stacks (the\n"
    "figures are then not Large's). The full run takes 5-7 minutes on 2 cores (building the\n"
    "model ~15 s, optimisation most of the rest); --layers 2 --steps 3 takes seconds.\n";

/* ===== made-up training texts for the library ===== */

static const char *const words[] = {
    "apple", "river", "stone", "music", "garden", "window", "yellow", "bridge", "teacher",
    "market", "planet", "doctor", "forest", "engine", "summer", "silver", "coffee", "letter",
    "island", "camera", "pencil", "rabbit", "circle", "orange", "winter", "castle", "number",
    "people", "travel", "button", "animal", "friday", "monday", "before", "after", "player",
    "ball", "pass", "goal", "true", "false", "yes", "no", "valid", "invalid", "triangle"};
#define N_WORDS (int)(sizeof words / sizeof words[0])

/* Made-up example i of adapter k: one of eight BBH-like formats, input + " " + output. */
static char *made_up_text(int k, int i) {
    const char *w1 = words[bench_rnd_below(N_WORDS)], *w2 = words[bench_rnd_below(N_WORDS)],
               *w3 = words[bench_rnd_below(N_WORDS)];
    int a = bench_rnd_below(19) - 9, b = bench_rnd_below(19) - 9, c = bench_rnd_below(9) + 1;
    switch ((k + i / 7) % 8) {
    case 0: return il_sprintf("not ( %s ) and ( %s ) or %s is %s", a > 0 ? "True" : "False",
                              b > 0 ? "True" : "False", c > 4 ? "True" : "False", a > b ? "True" : "False");
    case 1: return il_sprintf("((%d + %d) * %d - (%d * %d)) = %d", a, b, c, b, a, (a + b) * c - b * a);
    case 2: return il_sprintf("Is the following sentence plausible? \"The %s caught the %s in the "
                              "%s.\" %s", w1, w2, w3, a > 0 ? "yes" : "no");
    case 3: return il_sprintf("Sort the following words alphabetically: List: %s %s %s. %s %s %s",
                              w1, w2, w3, w2, w1, w3);
    case 4: return il_sprintf("Today is %02d/%02d/2021. What is the date %d days later? Options: "
                              "(A) %02d/%02d/2021 (B) %02d/%02d/2021 (A)", c, c + 10, c, c, c + 10 + c,
                              c + 1, c);
    case 5: return il_sprintf("I have a %s, two %ss, and a %s. How many objects do I have? %d", w1,
                              w2, w3, 4);
    case 6: return il_sprintf("If you follow these instructions, do you return to the starting "
                              "point? Take %d steps. Turn around. Take %d steps. %s", c, c + (a > 0),
                              a > 0 ? "No" : "Yes");
    default: return il_sprintf("Which sentence has the correct adjective order: Options: (A) %s "
                               "%s %s (B) %s %s %s (B)", w1, w2, w3, w3, w2, w1);
    }
}

/* ===== a random MiniLM-shaped sentence embedder in a temporary directory ===== */

static int write_text(const char *dir, const char *name, const char *text) {
    char *p = il_path_join(dir, name);
    int rc = p ? il_write_file_atomic(p, text, strlen(text)) : -1;
    free(p);
    return rc;
}

/* The vocabulary: the special tokens, single characters with and without "##", the words
 * of the task and of the made-up texts (lower-cased alphanumeric runs), then filler. */
static int write_vocab(const char *dir, int size, const il_bbh_task *task) {
    il_buf b = {0};
    int n = 0;
    static const char *const special[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; i < 5; i++, n++) il_buf_printf(&b, "%s\n", special[i]);
    for (int c = 33; c < 127; c++, n++) il_buf_printf(&b, "%c\n", c >= 'A' && c <= 'Z' ? c + 32 : c);
    for (int c = 33; c < 127; c++, n++) il_buf_printf(&b, "##%c\n", c >= 'A' && c <= 'Z' ? c + 32 : c);
    for (int i = 0; i < N_WORDS; i++, n++) il_buf_printf(&b, "%s\n", words[i]);
    /* task words (duplicates are harmless for a benchmark vocabulary: the first one wins) */
    for (int e = 0; e < task->n && n < size; e++) {
        const char *s = task->input[e];
        while (*s && n < size) {
            while (*s && !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) s++;
            const char *w = s;
            while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')) s++;
            if (s - w > 1) {
                char word[64];
                int l = (int)(s - w) < 63 ? (int)(s - w) : 63;
                for (int i = 0; i < l; i++) word[i] = (char)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] + 32 : w[i]);
                word[l] = 0;
                il_buf_printf(&b, "%s\n", word);
                n++;
            }
        }
    }
    for (; n < size; n++) il_buf_printf(&b, "[unused%d]\n", n);
    int rc = b.data ? write_text(dir, "vocab.txt", b.data) : -1;
    il_buf_free(&b);
    return rc;
}

typedef struct {
    int vocab, hidden, layers, heads, ff, max_pos;
} bert_shape;

static int write_bert(const char *dir, const bert_shape *s, const il_bbh_task *task) {
    char *cfg = il_sprintf(
        "{\"architectures\": [\"BertModel\"], \"model_type\": \"bert\", \"hidden_act\": \"gelu\",\n"
        " \"hidden_size\": %d, \"intermediate_size\": %d, \"num_hidden_layers\": %d,\n"
        " \"num_attention_heads\": %d, \"max_position_embeddings\": %d, \"type_vocab_size\": 2,\n"
        " \"layer_norm_eps\": 1e-12, \"vocab_size\": %d, \"pad_token_id\": 0,\n"
        " \"position_embedding_type\": \"absolute\"}\n",
        s->hidden, s->ff, s->layers, s->heads, s->max_pos, s->vocab);
    char *pool = il_sprintf("{\"word_embedding_dimension\": %d, \"pooling_mode_cls_token\": false,\n"
                            " \"pooling_mode_mean_tokens\": true, \"pooling_mode_max_tokens\": false,\n"
                            " \"pooling_mode_mean_sqrt_len_tokens\": false}\n", s->hidden);
    char *pdir = il_path_join(dir, "1_Pooling");
    int rc = -1;
    il_tensor *t = NULL;
    float *data = NULL;
    int n = 0;
    if (!cfg || !pool || !pdir) goto done;
    if (mkdir(pdir, 0777) != 0 && errno != EEXIST) {
        il_seterr("%s: %s", pdir, strerror(errno));
        goto done;
    }
    if (write_text(dir, "config.json", cfg) || write_text(pdir, "config.json", pool) ||
        write_text(dir, "modules.json",
                   "[{\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\": "
                   "\"sentence_transformers.models.Transformer\"},\n"
                   " {\"idx\": 1, \"name\": \"1\", \"path\": \"1_Pooling\", \"type\": "
                   "\"sentence_transformers.models.Pooling\"},\n"
                   " {\"idx\": 2, \"name\": \"2\", \"path\": \"2_Normalize\", \"type\": "
                   "\"sentence_transformers.models.Normalize\"}]\n") ||
        write_text(dir, "sentence_bert_config.json",
                   "{\"max_seq_length\": 128, \"do_lower_case\": false}\n") ||
        write_text(dir, "tokenizer_config.json",
                   "{\"do_lower_case\": true, \"model_max_length\": 512, \"tokenizer_class\": "
                   "\"BertTokenizer\"}\n") ||
        write_vocab(dir, s->vocab, task))
        goto done;
    /* the tensors: names and shapes of HF BertModel */
    const int H = s->hidden, F = s->ff;
    const int max_t = 5 + s->layers * 16;
    t = il_calloc((size_t)max_t, sizeof *t);
    size_t total = (size_t)s->vocab * H + (size_t)s->max_pos * H + 2 * (size_t)H + 2 * (size_t)H +
                   (size_t)s->layers * (4 * ((size_t)H * H + H) + 2 * (size_t)H * F + F + H + 4 * (size_t)H);
    if (!t || !(data = il_malloc(sizeof *data * total))) goto done;
    float *at = data;
#define TENSOR(nm, d0, d1, init)                                                        \
    do {                                                                                \
        il_tensor *x_ = &t[n++];                                                        \
        size_t cnt_ = (size_t)(d0) * (size_t)((d1) ? (d1) : 1);                         \
        if (!(x_->name = (nm))) goto done;                                              \
        for (size_t j_ = 0; j_ < cnt_; j_++) at[j_] = (init);                           \
        x_->dtype = IL_F32;                                                             \
        x_->ndim = (d1) ? 2 : 1;                                                        \
        x_->shape[0] = (d0);                                                            \
        x_->shape[1] = (d1);                                                            \
        x_->data = at;                                                                  \
        x_->nbytes = cnt_ * sizeof(float);                                              \
        at += cnt_;                                                                     \
    } while (0)
    TENSOR(il_strdup("embeddings.word_embeddings.weight"), s->vocab, H, 0.02f * bench_rnd());
    TENSOR(il_strdup("embeddings.position_embeddings.weight"), s->max_pos, H, 0.02f * bench_rnd());
    TENSOR(il_strdup("embeddings.token_type_embeddings.weight"), 2, H, 0.02f * bench_rnd());
    TENSOR(il_strdup("embeddings.LayerNorm.weight"), H, 0, 1.0f);
    TENSOR(il_strdup("embeddings.LayerNorm.bias"), H, 0, 0.0f);
    static const char *const qkv[3] = {"query", "key", "value"};
    for (int l = 0; l < s->layers; l++) {
        for (int k = 0; k < 3; k++) {
            TENSOR(il_sprintf("encoder.layer.%d.attention.self.%s.weight", l, qkv[k]), H, H, 0.05f * bench_rnd());
            TENSOR(il_sprintf("encoder.layer.%d.attention.self.%s.bias", l, qkv[k]), H, 0, 0.01f * bench_rnd());
        }
        TENSOR(il_sprintf("encoder.layer.%d.attention.output.dense.weight", l), H, H, 0.05f * bench_rnd());
        TENSOR(il_sprintf("encoder.layer.%d.attention.output.dense.bias", l), H, 0, 0.01f * bench_rnd());
        TENSOR(il_sprintf("encoder.layer.%d.attention.output.LayerNorm.weight", l), H, 0, 1.0f);
        TENSOR(il_sprintf("encoder.layer.%d.attention.output.LayerNorm.bias", l), H, 0, 0.0f);
        TENSOR(il_sprintf("encoder.layer.%d.intermediate.dense.weight", l), F, H, 0.05f * bench_rnd());
        TENSOR(il_sprintf("encoder.layer.%d.intermediate.dense.bias", l), F, 0, 0.01f * bench_rnd());
        TENSOR(il_sprintf("encoder.layer.%d.output.dense.weight", l), H, F, 0.05f * bench_rnd());
        TENSOR(il_sprintf("encoder.layer.%d.output.dense.bias", l), H, 0, 0.01f * bench_rnd());
        TENSOR(il_sprintf("encoder.layer.%d.output.LayerNorm.weight", l), H, 0, 1.0f);
        TENSOR(il_sprintf("encoder.layer.%d.output.LayerNorm.bias", l), H, 0, 0.0f);
    }
#undef TENSOR
    char *wpath = il_path_join(dir, "model.safetensors");
    rc = wpath ? il_safetensors_write(wpath, t, n, NULL, NULL, 0) : -1;
    free(wpath);
done:
    for (int i = 0; t && i < n; i++) free(t[i].name);
    free(t);
    free(data);
    free(cfg);
    free(pool);
    free(pdir);
    return rc;
}

static void remove_bert_dir(const char *dir) {
    static const char *const files[] = {"config.json", "modules.json", "sentence_bert_config.json",
                                        "tokenizer_config.json", "vocab.txt", "model.safetensors",
                                        "1_Pooling/config.json", "1_Pooling"};
    for (int i = 0; i < 8; i++) {
        char *p = il_path_join(dir, files[i]);
        if (p && i < 7) unlink(p);
        else if (p) rmdir(p);
        free(p);
    }
    rmdir(dir);
}

/* ===== the bench ===== */

int bench_eval(int argc, char **argv) {
    int layers = 24, steps = IL_LORAHUB_BUDGET, nq = 20, shots = 5, n_ad = 20, rank = 16,
        topn = 20, new_tokens = 4, seed = 1;
    const char *task_path = "data/bbh/boolean_expressions.json", *tok_dir = "tests/golden/t5-tiny";
    const cli_opt opts[] = {
        {"--layers", OPT_INT, &layers, 1, 64},        {"--steps", OPT_INT, &steps, 1, 10000},
        {"--questions", OPT_INT, &nq, 1, 100000},     {"--shots", OPT_INT, &shots, 1, 1000},
        {"--adapters", OPT_INT, &n_ad, 1, 1000},      {"--rank", OPT_INT, &rank, 1, 256},
        {"--topn", OPT_INT, &topn, 1, 1000},          {"--new-tokens", OPT_INT, &new_tokens, 1, 4096},
        {"--task", OPT_STRING, &task_path, 0, 0},     {"--tokenizer", OPT_STRING, &tok_dir, 0, 0},
        {"--seed", OPT_INT, &seed, 0, 2147483647},
    };
    enum { TEXTS_PER_ADAPTER = 20 };
    cli_list pos = {0};
    bool want_help;
    il_bbh_task task = {0};
    il_tokenizer *tok = NULL;
    il_t5 *m = NULL;
    il_embedder *emb = NULL;
    il_lora **ad = NULL;
    char **names = NULL, **docs = NULL, **texts = NULL, *cfg_json = NULL, *bdir = NULL;
    float *centroids = NULL, *vecs = NULL;
    int *shot_idx = NULL, *q_idx = NULL;
    il_ilc *s = NULL;
    il_ilc_task *t = NULL;
    il_ilc_result r = {0};
    int rc = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &pos, &want_help);
    if (rc) goto out;
    if (want_help) { fputs(help, stdout); goto out; }
    if (pos.n) { rc = cli_fail(EXIT_USAGE, "bench eval takes no positional arguments"); goto out; }
    rc = EXIT_RUNTIME;
    if (il_bbh_load(&task, task_path)) {
        cli_fail(rc, "%s (run from the repository, or give --task FILE)", il_errmsg());
        goto out;
    }
    if (!(tok = il_tokenizer_load(tok_dir))) {
        cli_fail(rc, "%s (run from the repository, or give --tokenizer DIR)", il_errmsg());
        goto out;
    }
    if (shots >= task.n) { cli_fail(rc, "--shots %d: %s has %d examples", shots, task_path, task.n); goto out; }
    shot_idx = il_malloc(sizeof *shot_idx * (size_t)shots);
    q_idx = il_malloc(sizeof *q_idx * (size_t)task.n);
    int n_questions = 0;
    if (!shot_idx || !q_idx ||
        il_eval_split(task.n, shots, (uint64_t)seed, nq, shot_idx, q_idx, &n_questions)) {
        cli_fail_lib();
        goto out;
    }
    il_t5_config c = bench_flan_t5_large(layers);
    const bert_shape bs = {30522, 384, 6, 12, 1536, 512};
    printf("ilora bench eval: Flan-T5-Large shape (%d+%d layers), %d adapters of rank %d on q,v, "
           "MiniLM-L6-shaped embedder (%d-d), %d threads\n", layers, layers, n_ad, rank, bs.hidden,
           openblas_get_num_threads());
    printf("  task %s: %d shots, %d questions; N = %d, %d steps, cobyla, %d new tokens per answer\n",
           task.name, shots, n_questions, topn < n_ad ? topn : n_ad, steps, new_tokens);
    fflush(stdout);

    /* ---- setup (not part of the method): random model, adapters, embedder ---- */
    double t0 = il_now();
    if (!(m = il_t5_new_random(&c, (uint64_t)seed))) { cli_fail_lib(); goto out; }
    double t_model = il_now() - t0;
    bench_rng_seed(seed);
    t0 = il_now();
    cfg_json = bench_lora_config_json(rank);
    ad = il_calloc((size_t)n_ad, sizeof *ad);
    names = il_calloc((size_t)n_ad, sizeof *names);
    docs = il_calloc((size_t)n_ad, sizeof *docs);
    texts = il_calloc((size_t)n_ad * TEXTS_PER_ADAPTER, sizeof *texts);
    if (!cfg_json || !ad || !names || !docs || !texts) { cli_fail_lib(); goto out; }
    for (int k = 0; k < n_ad; k++) {
        if (!(ad[k] = bench_random_adapter(&c, k, rank, cfg_json)) ||
            !(names[k] = il_strdup(il_lora_name(ad[k])))) {
            cli_fail_lib();
            goto out;
        }
        il_buf doc = {0};
        for (int i = 0; i < TEXTS_PER_ADAPTER; i++) {
            char *x = made_up_text(k, i);
            if (!x) { il_buf_free(&doc); cli_fail_lib(); goto out; }
            texts[(size_t)k * TEXTS_PER_ADAPTER + i] = x;
            il_buf_printf(&doc, "%s%s", i ? "\n" : "", x);
        }
        docs[k] = doc.data;
    }
    double t_adapters = il_now() - t0;
    t0 = il_now();
    const char *tmpdir = getenv("TMPDIR");
    bdir = il_sprintf("%s/ilora-bench-eval-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!bdir || !mkdtemp(bdir)) {
        cli_fail(rc, "cannot create a temporary directory: %s", strerror(errno));
        free(bdir);
        bdir = NULL;
        goto out;
    }
    if (write_bert(bdir, &bs, &task) || !(emb = il_embedder_load(bdir))) { cli_fail_lib(); goto out; }
    double t_emb = il_now() - t0;
    printf("  setup (not timed below): random T5 %.1f s, %d adapters %.1f s, embedder written and "
           "loaded %.1f s\n", t_model, n_ad, t_adapters, t_emb);
    fflush(stdout);

    /* ---- indexing: centroid of each adapter's training texts ---- */
    const int dim = il_embedder_dim(emb), n_texts = n_ad * TEXTS_PER_ADAPTER;
    centroids = il_calloc((size_t)n_ad * dim, sizeof *centroids);
    vecs = il_malloc(sizeof *vecs * (size_t)n_texts * dim);
    if (!centroids || !vecs) { cli_fail_lib(); goto out; }
    t0 = il_now();
    if (il_embedder_embed(emb, n_texts, (const char *const *)texts, vecs)) { cli_fail_lib(); goto out; }
    for (int k = 0; k < n_ad; k++)
        for (int d = 0; d < dim; d++) {
            double acc = 0;
            for (int i = 0; i < TEXTS_PER_ADAPTER; i++)
                acc += vecs[((size_t)k * TEXTS_PER_ADAPTER + i) * dim + d];
            centroids[(size_t)k * dim + d] = (float)(acc / TEXTS_PER_ADAPTER);
        }
    double t_index = il_now() - t0;
    long emb_tokens = 0;
    for (int i = 0; i < n_texts; i++) {
        int32_t *ids;
        int n;
        if (il_embedder_tokenize(emb, texts[i], &ids, &n) == 0) emb_tokens += n, free(ids);
    }

    /* ---- the method ---- */
    il_ilc_settings set = il_ilc_default_settings();
    set.top_n = topn;
    set.steps = steps;
    set.max_new_tokens = new_tokens;
    set.seed = (uint64_t)seed;
    il_ilc_library lib = {n_ad, (const char *const *)names, centroids, dim,
                          (const char *const *)docs, ad, NULL, NULL};
    const char **si = il_calloc((size_t)shots, sizeof *si), **so = il_calloc((size_t)shots, sizeof *so),
               **qi = il_calloc((size_t)n_questions, sizeof *qi);
    if (si && so && qi) {
        for (int j = 0; j < shots; j++) si[j] = task.input[shot_idx[j]], so[j] = task.target[shot_idx[j]];
        for (int q = 0; q < n_questions; q++) qi[q] = task.input[q_idx[q]];
        if ((s = il_ilc_new(m, tok, emb, &lib, &set)))
            t = il_ilc_task_new(s, task.name, shots, si, so, n_questions, qi);
    }
    free(si);
    free(so);
    free(qi);
    if (!t) { cli_fail_lib(); goto out; }
    t0 = il_now();
    if (il_ilc_run(t, IL_METHOD_ILORA, &r)) { cli_fail_lib(); goto out; }
    double t_total = il_now() - t0;
    int in_tokens = 0;
    for (int q = 0; q < n_questions; q++) {
        int32_t *ids;
        int n;
        if (il_tokenizer_encode(tok, task.input[q_idx[q]], strlen(task.input[q_idx[q]]), &ids, &n) == 0)
            in_tokens += n, free(ids);
    }
    const double t_retr = r.t_embed + r.t_retrieve;
    printf("  indexing:      %8.2f s  (%d training texts, %ld embedder tokens, %d centroids)\n",
           t_index, n_texts, emb_tokens, n_ad);
    printf("  retrieval:     %8.2f s  (embedding %d shots + %d shot inputs + %d questions %.2f s; "
           "top-%d per shot and routing %.3f s)\n", t_retr, shots, shots, n_questions, r.t_embed,
           il_ilc_top_n(s), r.t_retrieve);
    printf("  optimisation:  %8.2f s  (%d distinct problems of %d shots, %d evaluations in %d "
           "forward passes: %.3f s per evaluation)\n", r.t_optimise, r.n_optimisations, shots,
           r.n_evals, r.forward_passes, r.n_evals ? r.t_optimise / r.n_evals : 0.0);
    printf("  generation:    %8.2f s  (%d questions, %d input tokens, %d new tokens each, per-item "
           "adapters: %.3f s per question)\n", r.t_generate, n_questions, in_tokens, new_tokens,
           r.t_generate / n_questions);
    printf("  other:         %8.2f s  (composition, tokenization, bookkeeping)\n",
           t_total - t_retr - r.t_optimise - r.t_generate - r.t_load);
    printf("  total:         %8.2f s  (indexing + the method)\n", t_index + t_total);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("  peak RSS:      %8.2f GB\n", (double)ru.ru_maxrss * 1024.0 * 1e-9);
    rc = EXIT_OK;
out:
    il_ilc_result_free(&r);
    il_ilc_task_free(t);
    il_ilc_free(s);
    il_embedder_free(emb);
    if (bdir) remove_bert_dir(bdir);
    free(bdir);
    for (int k = 0; k < n_ad; k++) {
        if (ad) il_lora_free(ad[k]);
        if (names) free(names[k]);
        if (docs) free(docs[k]);
    }
    for (int i = 0; texts && i < n_ad * TEXTS_PER_ADAPTER; i++) free(texts[i]);
    free(texts);
    free(ad);
    free(names);
    free(docs);
    free(cfg_json);
    free(centroids);
    free(vecs);
    free(shot_idx);
    free(q_idx);
    il_t5_free(m);
    il_tokenizer_free(tok);
    il_bbh_free(&task);
    cli_list_free(&pos);
    return rc;
}
