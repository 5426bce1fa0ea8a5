/* iloracomp_internal.h - what iloracomp.c (session, task, shared steps) and methods.c (the
 * methods) share. Not part of the API. */
#ifndef ILORA_ILORACOMP_INTERNAL_H
#define ILORA_ILORACOMP_INTERNAL_H

#include "iloracomp.h"

struct il_ilc {
    il_t5 *model;               /* borrowed */
    const il_tokenizer *tok;    /* borrowed */
    il_embedder *emb;           /* borrowed */
    il_lora_ctx *ctx;           /* owned: the model's LoRA hook */
    int m, dim;                 /* adapters, embedding dimension */
    char **names;               /* [m] */
    float *centroids;           /* [m, dim] or NULL */
    il_bm25 *bm25;              /* bm25 retrieval only */
    il_lora *const *pre;        /* [m] borrowed adapters, or NULL (then load) */
    il_lora *(*load)(void *user, int i, const il_t5_config *base);
    void *load_user;
    il_ilc_settings set;        /* set.optimizer points to optimizer */
    char *optimizer;
    int top_n;                  /* min(set.top_n, m) */
};

/* Token ids of n texts, truncated at max_input_tokens keeping </s>. */
typedef struct {
    int32_t **ids;
    int *lens;
    bool *truncated;
    int n;
} ilc_ids;

struct il_ilc_task {
    il_ilc *s;
    char *name;
    int k, nq;
    char **shot_in, **shot_out, **q;  /* [k], [k], [nq] */
    il_lorahub_tokenized shots;       /* the k shots as LoraHub examples */
    ilc_ids qids;                     /* the questions */
    float *e_shot_text;               /* [k, dim] embed(x_j + " " + y_j), or NULL until needed */
    float *e_shot_in;                 /* [k, dim] embed(x_j) */
    float *e_q;                       /* [nq, dim] embed(question) */
    il_lora **cache;                  /* [m] adapters loaded so far (owned unless s->pre) */
};

void ilc_log(const il_ilc *s, const char *fmt, ...) IL_PRINTF(2, 3);
int ilc_tokenize(const il_ilc *s, int n, const char *const *texts, const char *what, ilc_ids *out);
void ilc_ids_free(ilc_ids *x);
/* Compute (once) the shot-text embeddings and/or the routing embeddings (shot inputs and
 * questions); adds the time to *secs. */
int ilc_embeddings(il_ilc_task *t, bool shot_texts, bool routing, double *secs);
/* c->adapters / c->scores / c->n_adapters = the top-N adapters for query (a vector, or
 * query_text for BM25). */
int ilc_retrieve(il_ilc_task *t, const float *query, const char *query_text, il_ilc_comp *c);
/* Adapter i (loaded once per task); adds the load time to *secs. NULL + error. */
il_lora *ilc_adapter(il_ilc_task *t, int i, double *secs);
/* Generate n items (item i: ids[i], adapters[i] or NULL for the base model) in one
 * il_t5_generate call, ordered by group[i] (stable), into r->prediction / ids / n_ids /
 * hit_limit [0..n). */
int ilc_generate(il_ilc_task *t, int n, int32_t *const *ids, const int *lens,
                 const il_lora *const *adapters, const int *group, il_ilc_result *r);

#endif
