/* iloracomp.h - the methods compared on an unseen task with k labelled shots: instance-level
 * LoRA composition (iLoraComp, DESIGN.md section 1) and its baselines (zero-shot, in-context
 * learning, LoraHub with random adapters, BatchComp).
 *
 * Two objects:
 *   il_ilc       a session: the base model (with a LoRA context on it), its tokenizer, the
 *                sentence embedder, the adapter library (names, centroids, BM25 documents,
 *                a way to get each adapter's weights) and the settings. One per run.
 *   il_ilc_task  one task: the k shots (input, target) and the questions (inputs), their
 *                tokens and embeddings (computed once, shared by the methods), and the
 *                adapters loaded so far (each loaded once, freed with the task).
 * and one call, il_ilc_run(task, method, &result), that answers every question with a method.
 *
 *     il_ilc *s = il_ilc_new_library(model, tok, emb, lib, &index, &settings);
 *     il_ilc_task *t = il_ilc_task_new(s, "boolean_expressions", k, shot_in, shot_out,
 *                                      nq, questions);
 *     il_ilc_result r;
 *     il_ilc_run(t, IL_METHOD_ILORA, &r);      // r.prediction[q], r.route[q], r.comps[...]
 *     il_ilc_result_free(&r);
 *     il_ilc_task_free(t); il_ilc_free(s);
 *
 * The methods (retrieval scores are "higher = more similar", retrieval.h; N = top_n):
 *   zeroshot   the base model answers the question.
 *   icl        the base model answers x_1 + " " + y_1 + "\n" + ... + x_k + " " + y_k + "\n" +
 *              question (il_ilc_icl_prompt), truncated like every input.
 *   lorahub    N adapters drawn at random without replacement; one LoraHub optimisation on the
 *              k shots; all questions answered with that composition. Repeated for
 *              settings.lorahub_runs seeds (the runs' optimisations go in lockstep, their
 *              answers in one generation call); the result holds every run.
 *   batchcomp  the top-N adapters for the mean of the k shot embeddings (BM25: for the k shot
 *              texts joined by "\n"); one optimisation; all questions answered with it.
 *   ilora      for each shot j: s_j = embed(x_j + " " + y_j), S_j = its top-N adapters, their
 *              weights tuned on ALL k shots (the k optimisations in lockstep through
 *              il_lorahub_run_many; shots whose ordered S_j coincide share one optimisation,
 *              which gives exactly what each would give alone since the problems are
 *              identical); each question x goes to j* = argmax_j cos(embed(x), embed(x_j))
 *              (inputs only, ties -> lower j; always cosine, whatever the retrieval) and is
 *              answered with compose(S_j*, w_j*). All questions are generated in one call with
 *              per-item adapters, grouped by the composition they use.
 * Optimisations: objective LoraHub loss + l1 * mean|w| (lorahub.h), box [-1.5, 1.5], start 0,
 * budget `steps`. Retrieval of more adapters than the library holds is clamped to its size
 * (one warning through settings.log).
 *
 * Seeds. Every random choice derives from settings.seed, the task name and the method
 * (il_ilc_derive_seed): lorahub run r draws and optimises with
 * derive(seed, task, "lorahub", r); batchcomp and ilora optimise with
 * derive(seed, task, method, 0) (only stochastic optimisers use it; COBYLA has no
 * randomness). So a task's results do not depend on which other tasks or methods run.
 *
 * Determinism: same inputs and settings -> the same predictions, weights and traces, bit for
 * bit on one machine with one thread count (OpenBLAS 0.3's sgemm rounds differently with 1
 * and 2 threads, so OMP_NUM_THREADS is part of the setup). Batching is fixed by the inputs
 * and settings (gen_batch, max_items), never by timing. Answers are greedy; generated in
 * batches of gen_batch items, they can differ from one-at-a-time answers only through float
 * rounding (sgemm rounds a row differently with the number of rows; greedy argmax almost
 * never notices).
 *
 * Errors follow util.h: NULL / -1 and il_errmsg(), naming the task, the adapter or the field.
 * Nothing is left allocated on failure. A session is single-threaded (it owns the model's
 * hook while it lives).
 */
#ifndef ILORA_ILORACOMP_H
#define ILORA_ILORACOMP_H

#include <stdbool.h>
#include <stdint.h>

#include "embedder.h"
#include "library.h"
#include "lora.h"
#include "lorahub.h"
#include "retrieval.h"
#include "sentencepiece.h"
#include "t5.h"

/* ===== methods ===== */

/* Add a method at the end (before IL_METHOD_COUNT) and give it a name in iloracomp.c. */
typedef enum {
    IL_METHOD_ZEROSHOT,
    IL_METHOD_ICL,
    IL_METHOD_LORAHUB,
    IL_METHOD_BATCHCOMP,
    IL_METHOD_ILORA,
    IL_METHOD_FFT, /* full fine-tuning on the k shots (the paper's upper bound) */
    IL_METHOD_COUNT
} il_method;

const char *il_method_name(il_method m); /* "zeroshot", "icl", "lorahub", "batchcomp", "ilora", "fft" */
/* Name -> method; -1 with an error listing the valid names otherwise. */
int il_method_parse(const char *name, il_method *out);

/* ===== settings ===== */

typedef struct {
    il_similarity retrieval; /* adapter retrieval: cosine (default), l2 or bm25 */
    int top_n;               /* N adapters per composition (20); clamped to the library size */
    int steps;               /* optimisation budget: objective evaluations (40) */
    const char *optimizer;   /* opt.h name; NULL = "cobyla" (LoraHub's) */
    il_lora_rule rule;       /* composition rule (IL_LORA_LINEAR) */
    double l1;               /* coefficient of mean |w| (0.05) */
    int loss_batch_size;     /* LoraHub loss batch size (5) */
    int max_input_tokens;    /* inputs cut to this many tokens keeping </s> (2048; <= 0: none) */
    int max_new_tokens;      /* generation budget per answer (256) */
    int gen_batch;           /* questions encoded and decoded together (32; 0 = all at once) */
    int max_items;           /* (candidate, example) items per optimisation forward pass
                              * (il_lorahub_run_opts.max_items; 0 = all pending at once) */
    uint64_t seed;           /* base of every derived seed (see above) */
    int lorahub_runs;        /* lorahub: runs with different seeds (3) */
    /* Warnings (e.g. top_n clamped), one line each without a newline. NULL: stderr as
     * "ilora: warning: <msg>". */
    void (*log)(void *user, const char *msg);
    /* Progress inside a method (optional): stage "retrieve" (0/0: embedding and retrieval
     * started), "optimise" (done/total = objective evaluations over all of the method's
     * optimisations) or "generate" (done/total = answers). */
    void (*progress)(void *user, const char *stage, int done, int total);
    void *user;
} il_ilc_settings;

il_ilc_settings il_ilc_default_settings(void);

/* ===== the session ===== */

/* The adapter library as the methods see it. */
typedef struct {
    int n_adapters;                /* m >= 1 */
    const char *const *names;      /* [m] adapter names (copied) */
    const float *centroids;        /* [m, dim] c_i (copied); may be NULL when retrieval is
                                    * bm25 (then only zeroshot / icl / lorahub and BM25
                                    * retrieval work) */
    int dim;                       /* the embedder's dimension */
    const char *const *bm25_docs;  /* [m] BM25 documents (needed for bm25 retrieval), or NULL */
    /* Adapter i's weights: adapters[i] if adapters is given (borrowed: they must outlive the
     * session), else load(load_user, i, base) (the task owns the result). Adapters must
     * fit the model's shape. */
    il_lora *const *adapters;
    il_lora *(*load)(void *user, int i, const il_t5_config *base);
    void *load_user;
} il_ilc_library;

typedef struct il_ilc il_ilc;

/* model, tok and emb are borrowed (they must outlive the session); the session installs an
 * il_lora_ctx on model (so model must have no other hook). An embedder built over the same
 * model (il_embedder_from_t5) is fine: outside il_ilc_run calls the hook applies nothing. */
il_ilc *il_ilc_new(il_t5 *model, const il_tokenizer *tok, il_embedder *emb,
                   const il_ilc_library *lib, const il_ilc_settings *s);
/* The same over a library (library.h) and its index (may be NULL for bm25 retrieval):
 * names, centroids and BM25 documents from them; adapters loaded from disk when first
 * needed. lib must outlive the session. */
il_ilc *il_ilc_new_library(il_t5 *model, const il_tokenizer *tok, il_embedder *emb,
                           const il_library *lib, const il_library_index *index,
                           const il_ilc_settings *s);
void il_ilc_free(il_ilc *s); /* removes the hook; NULL is fine */

int il_ilc_library_size(const il_ilc *s);
const char *il_ilc_adapter_name(const il_ilc *s, int i);
/* N actually used: min(top_n, library size). */
int il_ilc_top_n(const il_ilc *s);

/* ===== a task ===== */

typedef struct il_ilc_task il_ilc_task;

/* k >= 1 shots (inputs, targets) and nq >= 0 questions (inputs); the texts are copied and
 * tokenized now (errors name the shot or question). name is used for derived seeds and in
 * messages. */
il_ilc_task *il_ilc_task_new(il_ilc *s, const char *name, int k, const char *const *shot_inputs,
                             const char *const *shot_targets, int nq,
                             const char *const *questions);
void il_ilc_task_free(il_ilc_task *t); /* frees the adapters it loaded; NULL is fine */
/* Questions whose input was cut at max_input_tokens (icl prompts: see input_truncated). */
int il_ilc_task_n_truncated(const il_ilc_task *t);

/* ===== results ===== */

/* One composition: the adapters (library indices, in retrieval order: best first; lorahub:
 * draw order) with their learned weights. */
typedef struct {
    int n_adapters;
    int *adapters;          /* [n_adapters] library indices */
    float *scores;          /* [n_adapters] retrieval score (NaN for random draws) */
    il_lorahub_result opt;  /* weights = opt.best_w, traces opt.objective / opt.loss */
    int shot;               /* ilora: the shot (0..k-1, task order) it belongs to; else -1 */
    int shared_with;        /* ilora: the earlier shot with the same ordered adapters whose
                             * optimisation this one reuses (identical problem), or -1 */
    int run;                /* lorahub: the run; else 0 */
    uint64_t seed;          /* the seed of its draw / optimiser */
    int n_questions;        /* questions answered with it */
} il_ilc_comp;

typedef struct {
    il_method method;
    int k, nq;              /* shots, questions */
    int n_runs;             /* lorahub: lorahub_runs; else 1 */
    /* answers, [n_runs * nq], run-major: answer q of run r at r * nq + q */
    char **prediction;      /* decoded text (special tokens skipped) */
    int32_t **ids;          /* generated ids (without the start token, with </s> if any) */
    int *n_ids;
    bool *hit_limit;        /* stopped at max_new_tokens without </s> */
    int *comp;              /* composition used (index into comps), -1 = base model */
    bool *input_truncated;  /* [n_runs * nq] the input was cut at max_input_tokens */
    /* ilora: [nq] the routed shot (0..k-1) and cos(embed(x), embed(x_shot)); else NULL */
    int *route;
    float *route_sim;
    int n_comps;            /* ilora: k (one per shot); lorahub: n_runs; batchcomp: 1; else 0 */
    il_ilc_comp *comps;
    /* work done and where the time went (seconds; not part of any result file) */
    int n_optimisations;    /* distinct optimisations run */
    int n_evals;            /* objective evaluations over all of them */
    int forward_passes;     /* optimisation forward passes */
    double t_embed, t_retrieve, t_load, t_optimise, t_generate;
} il_ilc_result;

void il_ilc_result_free(il_ilc_result *r); /* zeroed / NULL is fine */

/* Answer every question of t with method m. 0, or -1 with *r left empty. */
int il_ilc_run(il_ilc_task *t, il_method m, il_ilc_result *r);

/* ===== pieces, exposed for tests and other callers ===== */

/* The in-context prompt: shot j contributes inputs[j] + " " + targets[j] + "\n", in order,
 * then the question. malloc'd. */
char *il_ilc_icl_prompt(int k, const char *const *inputs, const char *const *targets,
                        const char *question);

/* XXH64 of "<task>\n<method>\n<index>" seeded with base: the seeds above. */
uint64_t il_ilc_derive_seed(uint64_t base, const char *task, const char *method, int index);

/* j* = argmax_j cos(q, shots[j]) over k vectors of dim (ties -> lower j); *sim (optional)
 * receives the cosine. */
int il_ilc_route(const float *q, const float *shots, int k, int dim, float *sim);

#endif
