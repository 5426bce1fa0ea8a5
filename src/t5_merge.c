/* t5_merge.c - enumerate a T5 model's projections and swap their weight pointers (used by
 * merged LoRA, src/lora_apply.c). Reads t5_internal.h; t5.c itself is untouched. */
#include "t5_internal.h"
#include "t5_merge.h"

static int n_layers(const il_t5_config *c, il_t5_stack st) {
    return st == IL_T5_DECODER ? c->num_decoder_layers : c->num_layers;
}

/* Shape of projection p, or false if a block of stack st has no such projection. */
static bool proj_shape(const il_t5_config *c, il_t5_stack st, il_t5_proj p, int *in, int *out) {
    const int d = c->d_model, inner = c->num_heads * c->d_kv, ff = c->d_ff;
    switch (p) {
    case IL_T5_SELF_Q: case IL_T5_SELF_K: case IL_T5_SELF_V:
        *in = d, *out = inner;
        return true;
    case IL_T5_SELF_O:
        *in = inner, *out = d;
        return true;
    case IL_T5_CROSS_Q: case IL_T5_CROSS_K: case IL_T5_CROSS_V:
        *in = d, *out = inner;
        return st == IL_T5_DECODER;
    case IL_T5_CROSS_O:
        *in = inner, *out = d;
        return st == IL_T5_DECODER;
    case IL_T5_FF_WI:
        *in = d, *out = ff;
        return !c->gated;
    case IL_T5_FF_WI_0: case IL_T5_FF_WI_1:
        *in = d, *out = ff;
        return c->gated;
    case IL_T5_FF_WO:
        *in = ff, *out = d;
        return true;
    default:
        return false;
    }
}

int il_t5_linear_ids(const il_t5_config *c, il_t5_linear_id *ids, int cap) {
    int n = 0;
    for (int s = 0; s < 2; s++)
        for (int l = 0; l < n_layers(c, (il_t5_stack)s); l++)
            for (int p = 0; p < IL_T5_PROJ_COUNT; p++) {
                int in, out;
                if (!proj_shape(c, (il_t5_stack)s, (il_t5_proj)p, &in, &out)) continue;
                if (ids && n < cap)
                    ids[n] = (il_t5_linear_id){(il_t5_stack)s, l, (il_t5_proj)p, in, out};
                n++;
            }
    return n;
}

bool il_t5_linear_id_valid(const il_t5_config *c, const il_t5_linear_id *id) {
    int in, out;
    if ((id->stack != IL_T5_ENCODER && id->stack != IL_T5_DECODER) || id->layer < 0 ||
        id->layer >= n_layers(c, id->stack) || !proj_shape(c, id->stack, id->proj, &in, &out))
        return false;
    return in == id->in && out == id->out;
}

/* The block field holding projection id's weight pointer. */
static const float **weight_slot(il_t5 *m, const il_t5_linear_id *id) {
    if (!il_t5_linear_id_valid(&m->cfg, id)) {
        char name[128];
        il_t5_linear_name(id, name, sizeof name);
        il_seterr("T5: no projection %s [%d -> %d] in this model", name, id->in, id->out);
        return NULL;
    }
    t5_block *B = &(id->stack == IL_T5_DECODER ? &m->dec : &m->enc)->blocks[id->layer];
    switch (id->proj) {
    case IL_T5_SELF_Q: return &B->q;
    case IL_T5_SELF_K: return &B->k;
    case IL_T5_SELF_V: return &B->v;
    case IL_T5_SELF_O: return &B->o;
    case IL_T5_CROSS_Q: return &B->cq;
    case IL_T5_CROSS_K: return &B->ck;
    case IL_T5_CROSS_V: return &B->cv;
    case IL_T5_CROSS_O: return &B->co;
    case IL_T5_FF_WI: case IL_T5_FF_WI_0: return &B->wi; /* wi, or wi_0 when gated */
    case IL_T5_FF_WI_1: return &B->wi1;
    case IL_T5_FF_WO: return &B->wo;
    default: return NULL; /* unreachable: rejected by il_t5_linear_id_valid */
    }
}

const float *il_t5_linear_weight(const il_t5 *m, const il_t5_linear_id *id) {
    const float **slot = weight_slot((il_t5 *)m, id);
    return slot ? *slot : NULL;
}

const float *il_t5_linear_weight_swap(il_t5 *m, const il_t5_linear_id *id, const float *W) {
    if (!W) {
        il_seterr("T5: NULL weight for a projection swap");
        return NULL;
    }
    const float **slot = weight_slot(m, id);
    if (!slot) return NULL;
    const float *old = *slot;
    *slot = W;
    return old;
}

void il_t5_get_linear_hook(const il_t5 *m, il_t5_linear_hook *fn, void **user) {
    *fn = m->hook;
    *user = m->hook_user;
}
