/* tensors.h - named tensors read from weight files (safetensors, PyTorch .bin) and
 * checkpoints made of one or several such files.
 *
 * A tensor's data is contiguous, row-major, little-endian. It usually points into a
 * read-only memory mapping of the file (zero copy) and may therefore be unaligned; use
 * il_tensor_f32() to get an aligned float32 view. Shapes are int64 like the formats.
 */
#ifndef ILORA_TENSORS_H
#define ILORA_TENSORS_H

#include "util.h"

#define IL_MAX_DIMS 8

typedef enum {
    IL_F32, IL_F16, IL_BF16, IL_F64, IL_I64, IL_I32, IL_I16, IL_I8, IL_U8, IL_BOOL,
    IL_DTYPE_COUNT
} il_dtype;

const char *il_dtype_name(il_dtype t);          /* "F32", "BF16", ... (safetensors names) */
size_t il_dtype_size(il_dtype t);               /* bytes per element */
int il_dtype_from_name(const char *s, il_dtype *out); /* safetensors name -> dtype; -1 if unknown */

typedef struct {
    char *name;
    il_dtype dtype;
    int ndim;
    int64_t shape[IL_MAX_DIMS];
    const void *data; /* contiguous; may be unaligned; NULL only when numel == 0 */
    size_t nbytes;
} il_tensor;

int64_t il_tensor_numel(const il_tensor *t);

/* One weight file. Tensors are kept in file order (safetensors: header order). */
typedef struct il_tensor_file {
    char *path;
    il_tensor *tensors;
    int n_tensors;
    /* safetensors "__metadata__" (string -> string); empty for .bin */
    char **meta_keys, **meta_values;
    int n_meta;
    /* private */
    il_mmap map;
    void **owned; /* buffers owned by the file (converted / copied tensors) */
    int n_owned;
    struct il_name_index *index;
} il_tensor_file;

/* Open by content: zip archive (torch.save) if the file starts with "PK\3\4",
 * otherwise safetensors. NULL + error naming the path on failure. */
il_tensor_file *il_tensor_file_open(const char *path);
il_tensor_file *il_safetensors_open(const char *path);
il_tensor_file *il_torchbin_open(const char *path);
void il_tensor_file_free(il_tensor_file *f);
/* For readers: after filling f->tensors, build the name index; rejects duplicate names. */
int il_tensor_file_build_index(il_tensor_file *f);
/* For readers: hand a malloc'd buffer to the file so il_tensor_file_free releases it.
 * On failure (-1, out of memory) the caller still owns buf. */
int il_tensor_file_own(il_tensor_file *f, void *buf);
const il_tensor *il_tensor_file_find(const il_tensor_file *f, const char *name);

/* Write a safetensors file (atomically) from tensors; metadata optional (may be NULL). */
int il_safetensors_write(const char *path, const il_tensor *tensors, int n,
                         const char *const *meta_keys, const char *const *meta_values, int n_meta);

/* A model checkpoint directory: model.safetensors, or the shards listed in
 * model.safetensors.index.json, or pytorch_model.bin (or its sharded index).
 * A missing shard, or a tensor the index lists but its shard lacks, is an error. */
typedef struct {
    char *dir;
    il_tensor_file **files;
    int n_files;
} il_checkpoint;

il_checkpoint *il_checkpoint_open(const char *dir);
void il_checkpoint_free(il_checkpoint *c);
/* Find a tensor by name in any file; *file (optional) receives the file holding it. */
const il_tensor *il_checkpoint_find(const il_checkpoint *c, const char *name,
                                    const il_tensor_file **file);
/* A model's weights come from a checkpoint directory or, when ckpt is NULL, from one file:
 * the tensor `name` there; *path (optional) receives the file that holds it (the
 * directory when the checkpoint cannot say), for error messages. */
const il_tensor *il_weights_find(const il_checkpoint *ckpt, const il_tensor_file *file,
                                 const char *name, const char **path);

/* A float32 view of a tensor: points into the mapping when the tensor is F32 and
 * 4-byte aligned, else a converted copy (F16, BF16, F64, unaligned F32) which *owned
 * receives (caller frees; NULL when no copy was made). Integer dtypes are an error.
 * expect_ndim/expect_shape (optional, ndim < 0 to skip) check the shape; errors name
 * `where` (the file) and the tensor. */
const float *il_tensor_f32(const il_tensor *t, const char *where, int expect_ndim,
                           const int64_t *expect_shape, float **owned);
/* Append p (such a copy, or any malloc'd weight) to a model's list (*list)[0..*n) of
 * buffers it frees when freed. On failure (out of memory) p is freed and -1 returned,
 * so the caller never has to. */
int il_owned_push(float ***list, int *n, float *p);

#endif
