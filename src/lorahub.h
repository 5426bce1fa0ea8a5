/* lorahub.h - LoraHub learning: the weights of a composition of LoRA adapters tuned by a
 * gradient-free optimiser (opt.h) on a few labelled examples (DESIGN.md section 1).
 *
 * The objective of a weight vector w (one weight per adapter) is
 *     f(w) = LoraHub loss(model + compose(adapters, w); examples) + l1 * mean_i |w_i|
 * where the LoraHub loss splits the examples in consecutive batches of batch_size, takes
 * Hugging Face's token-mean cross-entropy of each batch and divides the sum of those by
 * the number of examples (il_lora_lorahub_loss), and l1 is 0.05. LoraHub's defaults:
 * box [-1.5, 1.5], start w = 0, budget 40, batch size 5, "linear" composition, COBYLA.
 *
 * Several problems (e.g. one per shot of the instance-level method) can run in lockstep:
 * every round asks each unfinished optimiser for its pending candidates (1 for COBYLA and
 * (1+1)-ES, a whole generation for CMA-ES), composes each candidate into its own composed
 * adapter (allocated once per problem and reused, il_lora_compose_into), and scores all
 * candidates of all problems in ONE batched forward pass in which every (candidate,
 * example) item carries its own adapter through the unmerged LoRA hook (no merging, no
 * padding). Then each optimiser is told its values.
 *
 * Batch invariance: a value computed in a batched pass equals the same candidate scored
 * alone up to float32 rounding (about 1e-6 relative on the golden tiny model; the tests
 * check 1e-5 at LoraHub's loss scale), not bit for bit, because OpenBLAS's sgemm rounds a
 * row differently depending on how many rows share the call (deep random-weight models
 * amplify this: ~1e-2 at 24 layers, with or without adapters; see ilora bench lorahub).
 * COBYLA, which uses the values themselves, can turn such differences into a different
 * trajectory; CMA-ES only ranks values and random search ignores them. With max_items = 1
 * (il_lorahub_run_opts) every candidate gets its own forward pass: a problem's results then
 * never depend on the problems it runs with (lockstep gives bit for bit what each problem
 * gives alone with max_items = 1), at the cost of the batching gain - which on a CPU is
 * small: the work of an evaluation is the encoder over all example tokens under the
 * candidate's own adapter, already one large GEMM per projection; batching only shares the
 * decoder's weight reads (bench lorahub measured 0.97-1.0x CPU time on the Large shape).
 *
 * The result (the recommendation) is the best point evaluated, the first one in evaluation
 * order among equal values: what nevergrad's recommend() returns for these noise-free
 * optimisers (COBYLA, CMA-ES, (1+1)-ES, random search), i.e. what LoraHub uses.
 *
 * Determinism: same model, adapters, examples and parameters (seed included), run with the
 * same other problems and max_items -> the same candidates, values and result, bit for bit,
 * on one machine and thread count.
 *
 * Errors follow util.h: -1 / NULL and il_errmsg() naming the problem, the adapter or the
 * example. Nothing is left allocated on failure.
 */
#ifndef ILORA_LORAHUB_H
#define ILORA_LORAHUB_H

#include "lora.h"
#include "sentencepiece.h"

#define IL_LORAHUB_L1 0.05     /* coefficient of mean |w| in the objective */
#define IL_LORAHUB_BOUND 1.5   /* the box [-1.5, 1.5] */
#define IL_LORAHUB_BUDGET 40   /* objective evaluations */

/* ===== examples: tokenized once, shared by any number of problems ===== */

typedef struct {
    int n;                        /* examples, >= 1 */
    const int32_t *const *ids;    /* [n] input ids (with the trailing eos), lens[i] >= 1 */
    const int *lens;
    const int32_t *const *labels; /* [n] target ids (with eos); pad ids are not counted */
    const int *label_lens;
} il_lorahub_examples;

/* Tokenized {input, output} texts that own their ids (the .ex view points into them). */
typedef struct {
    il_lorahub_examples ex;
    int32_t **ids_, **labels_;
    int *lens_, *label_lens_;
    int n_truncated;              /* inputs cut to max_input_tokens */
} il_lorahub_tokenized;

/* Tokenize n pairs as LoraHub does (truncation at max_input_tokens keeping the final eos;
 * <= 0: no limit; LoraHub and DESIGN.md: 2048; targets are not truncated). Errors name the
 * example (1-based). 0 or -1. */
int il_lorahub_tokenize(const il_tokenizer *tok, int n, const char *const *inputs,
                        const char *const *outputs, int max_input_tokens,
                        il_lorahub_tokenized *out);
void il_lorahub_tokenized_free(il_lorahub_tokenized *t);

/* ===== one problem ===== */

typedef struct {
    const char *optimizer; /* opt.h method name; NULL = "cobyla" (LoraHub's) */
    int budget;            /* objective evaluations, >= 1 (40) */
    uint64_t seed;         /* stochastic optimisers only */
    double lo, hi;         /* the box (-1.5, 1.5) */
    const double *x0;      /* start [n_adapters]; NULL = zeros */
    double l1;             /* coefficient of mean |w| (0.05); >= 0 */
    int batch_size;        /* LoraHub loss batch size (5) */
    il_lora_rule rule;     /* composition (IL_LORA_LINEAR) */
    int max_batch;         /* most candidates taken from one ask; 0 = the method's natural
                            * batch (a CMA-ES generation, 4 + floor(3 ln n_adapters);
                            * COBYLA and (1+1)-ES give 1 whatever this says) */
} il_lorahub_params;

/* LoraHub's settings: cobyla, budget 40, seed 0, [-1.5, 1.5], start 0, l1 0.05, batch 5,
 * linear. */
il_lorahub_params il_lorahub_default_params(void);

typedef struct {
    int n_adapters;                 /* >= 1 */
    const il_lora *const *adapters; /* validated against the model's shape; outlive the run */
    const il_lorahub_examples *examples;
    il_lorahub_params params;
} il_lorahub_problem;

/* ===== results ===== */

typedef struct {
    int dim;                /* n_adapters */
    int n_evals;            /* evaluations made (<= budget; fewer only if the method stopped) */
    double *objective;      /* [n_evals] objective of every evaluation, in order */
    double *loss;           /* [n_evals] LoraHub loss (without the L1 term), in order */
    double *evals_w;        /* [n_evals * dim] the weights of every evaluation, in order */
    int best_index;         /* the recommendation: first evaluation with the lowest objective */
    double *best_w;         /* [dim] its weights */
    double best_objective;
    double best_loss;       /* its loss without the L1 term */
    const char *optimizer;  /* canonical method name (static string) */
    /* where the time went (seconds, wall clock) */
    double t_compose;       /* il_lora_compose_into of this problem's candidates */
    double t_score;         /* the forward passes this problem took part in (shared ones
                             * counted in full for each problem in them) */
} il_lorahub_result;

void il_lorahub_result_free(il_lorahub_result *r); /* NULL / zeroed is fine */

/* ===== running ===== */

typedef struct {
    /* Most (candidate, example) items per forward pass, rounded down to whole candidates
     * (at least one candidate per pass); 0 = every pending candidate of every problem in one
     * pass; 1 = one candidate per pass (batch-invariant values, see above). Also bounds the
     * activation memory. */
    int max_items;
    /* Optional: called after each evaluation, in order within a problem, from the calling
     * thread. */
    void (*on_eval)(void *user, int problem, int eval, const double *w, int dim, double loss,
                    double objective);
    void *user;
    /* Outputs, set by every run: the forward passes made and the items they scored. */
    int forward_passes;
    long items_scored;
} il_lorahub_run_opts;

/* Run n_problems optimisations in lockstep on ctx's model (ctx: il_lora_ctx_new; its
 * per-item table is overwritten and cleared on return, its default adapter is untouched).
 * results[n_problems] are filled (free each with il_lorahub_result_free). opts may be NULL.
 * 0, or -1 with every result left empty. */
int il_lorahub_run_many(il_lora_ctx *ctx, int n_problems, const il_lorahub_problem *problems,
                        il_lorahub_run_opts *opts, il_lorahub_result *results);

/* One problem: run_many with n_problems = 1. */
int il_lorahub_run(il_lora_ctx *ctx, const il_lorahub_problem *problem, il_lorahub_run_opts *opts,
                   il_lorahub_result *result);

/* The objective of one weight vector, scored alone (compose into a fresh adapter + one
 * forward pass): for checks and for callers that want f(w) outside a run. loss (without
 * L1) and objective may be NULL. */
int il_lorahub_objective(il_lora_ctx *ctx, const il_lorahub_problem *problem, const double *w,
                         double *loss, double *objective);

#endif
