/* spm_internal.h - the SentencePiece unigram model shared by src/sentencepiece.c and the
 * src/spm_*.c files: pieces, the piece trie, the normaliser (precompiled charsmap) and raw
 * encode/decode. Not part of the public API (see sentencepiece.h).
 *
 * Behaviour follows sentencepiece 0.1.97 (normalizer.cc, unigram_model.cc
 * EncodeOptimized, sentencepiece_processor.cc Encode/Decode). */
#ifndef ILORA_SPM_INTERNAL_H
#define ILORA_SPM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* ModelProto.SentencePiece.Type */
enum { SPM_NORMAL = 1, SPM_UNKNOWN = 2, SPM_CONTROL = 3, SPM_USER_DEFINED = 4, SPM_UNUSED = 5,
       SPM_BYTE = 6 };

/* Byte trie over the pieces that the segmenter may emit (NORMAL, USER_DEFINED, UNUSED),
 * stored as sorted edge lists (CSR) so a step is a short binary search. */
typedef struct {
    int32_t *first;   /* node -> index of its first edge */
    uint16_t *count;  /* node -> number of edges (<= 256) */
    int32_t *id;      /* node -> piece id ending here, or -1 */
    int32_t *child;   /* edge -> child node */
    uint8_t *label;   /* edge -> byte */
    int32_t n_nodes;
} spm_trie;

/* Child of node along byte c, or -1. */
static inline int32_t spm_trie_step(const spm_trie *t, int32_t node, uint8_t c) {
    int32_t lo = t->first[node], end = lo + t->count[node], hi = end;
    while (lo < hi) {
        int32_t mid = (lo + hi) >> 1;
        if (t->label[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return (lo < end && t->label[lo] == c) ? t->child[lo] : -1;
}

/* Precompiled charsmap: a Darts-clone double array mapping byte prefixes to offsets of
 * NUL-terminated replacement strings. */
typedef struct {
    uint8_t *blob;      /* the raw bytes as stored in the model (kept for tokenizer.json export) */
    size_t blob_len;
    uint32_t *units;    /* double-array units, host order */
    size_t n_units;
    char *strings;      /* replacement strings; a NUL is appended so every offset terminates */
    size_t strings_len; /* without that extra NUL */
} spm_charsmap;

typedef struct {
    bool add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    bool treat_whitespace_as_suffix; /* from TrainerSpec */
    spm_charsmap cm;                 /* n_units == 0: no charsmap (identity) */
} spm_normalizer;

typedef struct {
    int n;            /* number of pieces */
    il_buf text;      /* all piece strings, each followed by a NUL */
    uint32_t *off;    /* piece i starts at text.data + off[i] */
    uint32_t *len;
    float *score;
    uint8_t *type;
    int cap;          /* allocated entries while building */

    int32_t *hash;    /* open addressing: piece string -> id (-1 = empty slot) */
    uint32_t hash_mask;
    spm_trie trie;

    float min_score, max_score; /* over NORMAL pieces, as sentencepiece computes them */
    int unk_id;                 /* the UNKNOWN piece */
    bool byte_fallback;
    int32_t byte_id[256];       /* BYTE piece for each byte, or -1 */
    bool has_user_defined;
    char *unk_surface;          /* decode text of <unk>; default " \u2047 " */
    spm_normalizer norm;
} spm_model;

/* One segment of an encoding: norm[off, off+len) of the normalized text. The piece string
 * is spm_piece(id), except for <unk>, whose string is that normalized text. */
typedef struct {
    int32_t id;
    uint32_t off, len;
} spm_seg;

typedef struct {
    spm_seg *v;
    int n, cap;
} spm_segs;
int spm_segs_push(spm_segs *s, int32_t id, size_t off, size_t len);

/* ---- building (spm_model.c) ---- */
void spm_model_init(spm_model *m);
void spm_model_free(spm_model *m);
/* Appends a piece; pieces get ids in call order. */
int spm_model_add_piece(spm_model *m, const char *s, size_t len, float score, int type);
/* Validates the pieces (non-empty, UTF-8, unique, exactly one UNKNOWN, BYTE pieces only with
 * byte_fallback) and builds the lookup structures. what names the source in errors. */
int spm_model_finish(spm_model *m, const char *what);
/* Piece id of s, or -1 when s is not a piece. */
int spm_piece_id(const spm_model *m, const char *s, size_t len);
static inline const char *spm_piece(const spm_model *m, int id) { return m->text.data + m->off[id]; }

/* ---- protobuf (spm_proto.c) ---- */
/* Parses a serialized ModelProto into m (pieces + specs) and finishes it. */
int spm_model_parse_proto(spm_model *m, const uint8_t *data, size_t len, const char *what);

/* ---- normaliser (spm_normalize.c) ---- */
/* Copies and validates a precompiled charsmap blob. */
int spm_charsmap_load(spm_charsmap *cm, const uint8_t *blob, size_t len, const char *what);
void spm_charsmap_free(spm_charsmap *cm);
/* sentencepiece Normalizer::Normalize: charsmap, whitespace handling, U+2581 escaping.
 * Appends to out (which the caller clears). */
int spm_normalize(const spm_model *m, const char *in, size_t len, il_buf *out);

/* ---- segmentation and decoding (spm_model.c) ---- */
/* Raw sentencepiece Encode: normalizes text into *norm and segments it. Unknown runs are
 * merged into one segment; with byte fallback they become byte pieces. Clears norm and
 * segs first. */
int spm_encode(const spm_model *m, const char *text, size_t len, il_buf *norm, spm_segs *segs);
/* One item for spm_decode: a piece string and its PieceToId id. */
typedef struct {
    const char *s;
    size_t len;
    int32_t id;
} spm_item;
/* sentencepiece Decode(pieces): appends the detokenized text to out. */
int spm_decode(const spm_model *m, const spm_item *items, int n, il_buf *out);

/* ---- base64 (spm_json.c) ---- */
/* Decodes standard base64 (padding optional, no whitespace). NULL + error if malformed. */
uint8_t *spm_base64_decode(const char *s, size_t len, size_t *out_len);
/* Builds m from a Hugging Face tokenizer.json (Unigram model). *extra_ids receives the number
 * of trailing <extra_id_N> vocab entries (T5 layout), which are not pieces. */
int spm_model_from_tokenizer_json(spm_model *m, const char *json, size_t len, const char *what,
                                  int *extra_ids);

#endif
