/* cli_bench_common.c - the pieces `ilora bench lorahub` and `ilora bench eval` share: the
 * Flan-T5-Large shape, the random stream and the random adapter library (cli_bench.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli_bench.h"
#include "t5_merge.h"
#include "util.h"

il_t5_config bench_flan_t5_large(int layers) {
    return (il_t5_config){
        .vocab_size = 32128, .d_model = 1024, .d_kv = 64, .num_heads = 16, .d_ff = 2816,
        .num_layers = layers, .num_decoder_layers = layers, .rel_buckets = 32,
        .rel_max_distance = 128, .eps = 1e-6f, .gated = true, .act = IL_ACT_GELU_NEW,
        .tie_word_embeddings = false, .pad_id = 0, .eos_id = 1, .decoder_start_id = 0,
    };
}

/* ===== the random stream ===== */

static uint64_t rng_state;

void bench_rng_seed(int seed) { rng_state = (uint64_t)seed * 7919 + 17; }

uint64_t bench_rnd_u64(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float bench_rnd(void) {
    return (float)((double)(bench_rnd_u64() >> 40) / (double)(1ull << 23) - 1.0);
}

int bench_rnd_below(int n) { return (int)(bench_rnd_u64() % (uint64_t)n); }

/* ===== random adapters ===== */

char *bench_lora_config_json(int r) {
    return il_sprintf("{\"peft_type\":\"LORA\",\"task_type\":\"SEQ_2_SEQ_LM\",\"r\":%d,"
                      "\"lora_alpha\":32,\"target_modules\":[\"q\",\"v\"]}", r);
}

/* q and v of self- and cross-attention: the modules of LoraHub's library. */
static bool is_qv(il_t5_proj p) {
    return p == IL_T5_SELF_Q || p == IL_T5_SELF_V || p == IL_T5_CROSS_Q || p == IL_T5_CROSS_V;
}

/* Fills t[0], t[1] with module id's lora_A [r, in] and lora_B [out, r], their values drawn
 * at *at (advanced past them). Returns -1 when a name cannot be allocated. */
static int random_pair(const il_t5_linear_id *id, int r, il_tensor *t, float **at) {
    char mod[96];
    il_t5_linear_name(id, mod, sizeof mod);
    for (int ab = 0; ab < 2; ab++) {
        int64_t d0 = ab ? id->out : r, d1 = ab ? r : id->in;
        size_t cnt = (size_t)(d0 * d1);
        /* A ~ kaiming-uniform-like, B small: an update of a trained adapter's size */
        float scale = ab ? 0.01f : 1.0f / sqrtf((float)id->in);
        for (size_t j = 0; j < cnt; j++) (*at)[j] = bench_rnd() * scale;
        il_tensor *x = &t[ab];
        if (!(x->name = il_sprintf("base_model.model.%s.lora_%c.weight", mod, ab ? 'B' : 'A')))
            return -1;
        x->dtype = IL_F32;
        x->ndim = 2;
        x->shape[0] = d0;
        x->shape[1] = d1;
        x->data = *at;
        x->nbytes = cnt * sizeof(float);
        *at += cnt;
    }
    return 0;
}

il_lora *bench_random_adapter(const il_t5_config *c, int k, int r, const char *cfg_json) {
    int n_ids = il_t5_linear_ids(c, NULL, 0);
    il_t5_linear_id *ids = il_calloc((size_t)n_ids, sizeof *ids);
    il_tensor *t = il_calloc(2 * (size_t)n_ids, sizeof *t);
    float *data = NULL;
    il_lora *a = NULL;
    int n = 0;
    if (!ids || !t) goto done;
    il_t5_linear_ids(c, ids, n_ids);
    size_t total = 0;
    for (int i = 0; i < n_ids; i++)
        if (is_qv(ids[i].proj)) total += (size_t)r * (size_t)(ids[i].in + ids[i].out);
    if (!(data = il_malloc(sizeof *data * total))) goto done;
    float *at = data;
    for (int i = 0; i < n_ids; i++) {
        if (!is_qv(ids[i].proj)) continue;
        int failed = random_pair(&ids[i], r, &t[n], &at);
        n += 2;
        if (failed) goto done;
    }
    char name[32];
    snprintf(name, sizeof name, "random_%02d", k);
    a = il_lora_from_tensors(name, cfg_json, t, n, c, NULL);
done:
    for (int i = 0; t && i < n; i++) free(t[i].name);
    free(t);
    free(ids);
    free(data);
    return a;
}
