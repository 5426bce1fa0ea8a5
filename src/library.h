/* library.h - a LoRA library (adapters + the examples each was trained on) and its
 * retrieval index: one centroid per adapter, cached on disk (DESIGN.md section 1, step 1).
 *
 * A library is either
 *   - a directory whose subdirectories (all of them, except hidden ones starting with '.')
 *     each hold one PEFT adapter (adapter_config.json + adapter_model.safetensors or
 *     adapter_model.bin) and its training examples train.jsonl; adapters are named after
 *     their subdirectories and ordered by name (byte order), so the order is deterministic;
 *   - or a manifest file (e.g. library.json):
 *         {"adapters": [{"name": "qa", "adapter": "path/dir", "data": "path/train.jsonl"}, ...]}
 *     paths relative to the manifest's directory (absolute paths are kept), order as listed;
 *     "name" defaults to the adapter directory's last component.
 * Example files are JSONL, one {"input": ..., "output": ...} object per line (strings;
 * "inputs" / "targets" are accepted as aliases, as in LoraHub's FLAN data); blank lines are
 * skipped. Opening validates everything except the weights: a missing or empty data file,
 * a malformed line (file:line), a non-string field, invalid UTF-8, duplicate names, an
 * adapter directory without adapter_config.json or without a weights file are errors that
 * name the adapter and the file. Adapter weights are NOT loaded at open time (a real
 * library is ~100 adapters x 9 MB): il_library_load_adapter() reads one when it is needed.
 *
 * Texts. Example j of an adapter is the text input + " " + output (the paper's
 * M_s(x + " " + y)). Only the first max_examples examples of each file are kept (the whole
 * file is still validated); they are the texts of the centroid and of the BM25 document.
 *
 * Centroids. c_i = the plain mean, in double precision, of the embedder's vectors of the
 * kept texts of adapter i. The embedder's own output is used per vector, i.e. L2-normalised
 * first when the model has a Normalize module (as sentence-transformers' encode() gives
 * them); the mean itself is NOT re-normalised (cosine does not care, L2 retrieval does).
 *
 * The index file (JSON, human-readable, written atomically):
 *   {"version": 1,
 *    "embedder": {"kind": "bert", "dim": 384, "normalize": true, "fingerprint": "<16 hex>"},
 *    "max_examples": 100,                                  (0 = every example)
 *    "adapters": [{"name": "...", "fingerprint": "<16 hex>", "n_examples": 100,
 *                  "centroid": [...]}, ...]}              (floats as %.9g: exact float32)
 * Default location: <library dir>/.ilora-index.json, or for a manifest
 * <manifest dir>/.<manifest name without .json>.ilora-index.json (library.json ->
 * .library.ilora-index.json); any other path can be given.
 *
 * Rebuild rule. A cached centroid is reused only when the cache's embedder (kind, dim,
 * normalize, fingerprint) and max_examples equal the current ones AND the adapter's entry
 * has the same name and fingerprint; every other adapter is re-embedded. So adding one
 * adapter, or editing one train.jsonl, re-embeds just that adapter. An unreadable or
 * foreign cache is not an error: everything is recomputed (with a note). The file is
 * rewritten only when its content changes.
 *
 * Fingerprints are XXH64 (seed 0) digests, printed as 16 hex digits:
 *   - a file: XXH64 of its bytes;
 *   - an adapter: XXH64 over the lines "<role>\t<size>\t<file hash>\n" of adapter_config.json,
 *     every adapter weights file present, and the data file (contents only: moving or
 *     renaming the library keeps fingerprints);
 *   - an embedder directory: the same over every file its loaders read (see
 *     il_library_embedder_fingerprint), named relative to the directory.
 *
 * Supplied ("precomputed") centroids: il_library_index_load() reads a file in the format
 * above given explicitly (e.g. made by another tool). It checks that its adapter names are
 * exactly the library's (any order) and that every centroid has the query embedder's
 * dimension; it does NOT check fingerprints or max_examples (the caller vouches for the
 * file) - fingerprint_matches only reports whether the embedder fingerprint agrees.
 *
 * Errors follow util.h: NULL / -1 with il_errmsg() naming the file, the adapter and the
 * field. Nothing stays allocated on failure. A library is immutable after opening, so
 * threads may share it (il_library_load_adapter allocates a new adapter per call).
 */
#ifndef ILORA_LIBRARY_H
#define ILORA_LIBRARY_H

#include <stdbool.h>
#include <stdint.h>

#include "embedder.h"
#include "lora.h"
#include "retrieval.h"

/* Default cap on examples per adapter (centroids and BM25 documents). */
#define IL_LIBRARY_DEFAULT_MAX_EXAMPLES 100

typedef struct il_library il_library;

/* path: a library directory or a manifest file. max_examples > 0 keeps the first
 * max_examples examples of each adapter; 0 keeps them all. */
il_library *il_library_open(const char *path, int max_examples);
void il_library_free(il_library *lib); /* NULL is fine */

int il_library_size(const il_library *lib);         /* number of adapters, >= 1 */
const char *il_library_path(const il_library *lib); /* as given to il_library_open */
bool il_library_is_manifest(const il_library *lib);
int il_library_max_examples(const il_library *lib); /* as given (0 = all) */
/* malloc'd default index path (see above). */
char *il_library_default_index_path(const il_library *lib);

/* Adapter i, 0 <= i < size. Paths are as the library names them (relative paths stay
 * relative to the current directory the library was opened from). */
const char *il_library_name(const il_library *lib, int i);
const char *il_library_adapter_dir(const il_library *lib, int i);
const char *il_library_data_path(const il_library *lib, int i);
int il_library_find(const il_library *lib, const char *name); /* index, or -1 */
int il_library_n_examples(const il_library *lib, int i);       /* texts kept (capped) */
int il_library_n_examples_total(const il_library *lib, int i); /* examples in the file */
/* The kept texts input + " " + output, [il_library_n_examples]. */
const char *const *il_library_texts(const il_library *lib, int i);
/* The BM25 document of adapter i: its kept texts joined by "\n". */
const char *il_library_bm25_doc(const il_library *lib, int i);
/* il_bm25_build over the m documents (doc i = adapter i). Caller frees with il_bm25_free. */
il_bm25 *il_library_bm25(const il_library *lib);

/* Load adapter i's weights now (il_lora_load on its directory, validated against base;
 * opts may be NULL). Errors name the adapter. Caller frees with il_lora_free. */
il_lora *il_library_load_adapter(const il_library *lib, int i, const il_t5_config *base,
                                 const il_lora_load_opts *opts);

/* ===== fingerprints ===== */

uint64_t il_xxh64(const void *data, size_t len, uint64_t seed);
void il_fingerprint_hex(uint64_t h, char out[17]);          /* 16 lower-case hex digits */
int il_fingerprint_parse(const char *hex, uint64_t *out);   /* 0, or -1 (no error set) */
/* XXH64 of a file's bytes (mapped, so large files are fine). */
int il_fingerprint_file(const char *path, uint64_t *out);
/* Adapter i: adapter_config.json + weights file(s) + data file. */
int il_library_adapter_fingerprint(const il_library *lib, int i, uint64_t *out);
/* An embedder directory as il_embedder_load reads it: in the directory and in every module
 * subdirectory modules.json names, the files modules.json, config.json,
 * sentence_bert_config.json, tokenizer_config.json, special_tokens_map.json, vocab.txt,
 * tokenizer.json, spiece.model, model.safetensors, pytorch_model.bin, their
 * *.index.json and the shards those list - those present (sizes and contents).
 * Also right for a T5 model directory used as embedder. */
int il_library_embedder_fingerprint(const char *dir, uint64_t *out);

/* ===== the index ===== */

typedef struct {
    int m, dim;
    float *centroids;  /* [m, dim]; row i belongs to adapter i of the library */
    int *n_examples;   /* [m] texts averaged per adapter (0 if a supplied file omits it) */
    int max_examples;  /* the cap the centroids were made with (-1: unknown, supplied file) */
    int n_reused;      /* centroids taken from the cache */
    int n_recomputed;  /* centroids computed now */
    bool supplied;     /* loaded by il_library_index_load (no fingerprint checks) */
    bool fingerprint_matches; /* supplied: the file's embedder fingerprint equals the one
                                 given to il_library_index_load (false if absent) */
    bool written;      /* build: the index file was (re)written */
    char *path;        /* the index file used (written or read) */
} il_library_index;

typedef struct {
    const char *index_path; /* NULL: il_library_default_index_path() */
    bool rebuild;           /* ignore the cache: recompute every centroid */
    bool no_write;          /* do not write the index file (in-memory result only) */
    bool write_optional;    /* a failed write is a warning (log), not an error */
    /* Notes and warnings, one message per call, no trailing newline (e.g. "cache ...:
     * embedder changed, recomputing all"). NULL: warnings go to stderr as
     * "ilora: warning: <msg>", notes are dropped. */
    void (*log)(void *user, bool warning, const char *msg);
    /* Called after each adapter is done (reused or computed): done in 1..m. */
    void (*progress)(void *user, int done, int total, const char *name, bool recomputed);
    void *user;
} il_index_opts;

/* Build or refresh the index of lib with embedder e whose files have fingerprint
 * embedder_fp (il_library_embedder_fingerprint of its directory; for an embedder made
 * with il_embedder_from_t5, that of the model directory). opts may be NULL. On success
 * *out is filled (free with il_library_index_free); on failure *out is zeroed. */
int il_library_index_build(const il_library *lib, il_embedder *e, uint64_t embedder_fp,
                           const il_index_opts *opts, il_library_index *out);

/* Read supplied centroids from path (index format above) for lib; dim = the query
 * embedder's dimension; embedder_fp only sets out->fingerprint_matches (pass 0 if
 * unknown). No fingerprint check (see above). */
int il_library_index_load(const il_library *lib, const char *path, int dim,
                          uint64_t embedder_fp, il_library_index *out);

void il_library_index_free(il_library_index *x); /* zeroes *x; NULL is fine */

#endif
