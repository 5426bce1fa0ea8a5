/* t5_merge.h - access to the projection weights of a loaded T5 model, for adapters that
 * fold their update into the weights (merged LoRA) and for code that enumerates the
 * projections a config has.
 *
 * The model's weights may point into a read-only file mapping, so nothing here writes to a
 * weight: a merged copy is made by the caller and swapped in by pointer, and swapping the
 * previous pointer back restores the original exactly (no subtraction, no rounding).
 *
 * Not thread-safe against running forward passes on the same model (like
 * il_t5_set_linear_hook).
 */
#ifndef ILORA_T5_MERGE_H
#define ILORA_T5_MERGE_H

#include "t5.h"

/* Every projection of a model with config c, in a fixed order (encoder blocks, then decoder
 * blocks; within a block q,k,v,o, cross q,k,v,o, then the feed-forward), with in/out set.
 * Writes up to cap ids (ids may be NULL) and returns the total count. */
int il_t5_linear_ids(const il_t5_config *c, il_t5_linear_id *ids, int cap);

/* True if projection id exists in a model with config c and its in/out match. */
bool il_t5_linear_id_valid(const il_t5_config *c, const il_t5_linear_id *id);

/* The [out, in] float32 weight projection id currently uses; NULL + error if the model has
 * no such projection (e.g. cross-attention in the encoder, wi_1 in a non-gated model). */
const float *il_t5_linear_weight(const il_t5 *m, const il_t5_linear_id *id);

/* Make projection id use W ([out, in], float32, kept alive by the caller) from now on and
 * return the pointer it used before (the caller restores it with a second swap). NULL +
 * error on an invalid id or a NULL W; the model is then unchanged. */
const float *il_t5_linear_weight_swap(il_t5 *m, const il_t5_linear_id *id, const float *W);

/* The installed linear hook and its user pointer (both NULL when none), so that an adapter
 * context can refuse to replace another one and only removes its own. */
void il_t5_get_linear_hook(const il_t5 *m, il_t5_linear_hook *fn, void **user);

#endif
