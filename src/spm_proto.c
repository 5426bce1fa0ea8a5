/* spm_proto.c - a minimal protobuf reader for sentencepiece's ModelProto
 * (sentencepiece_model.proto), enough for a unigram model:
 *
 *   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
 *   SentencePiece   1 piece (string), 2 score (float), 3 type (enum, default NORMAL)
 *   TrainerSpec     3 model_type (UNIGRAM=1), 24 treat_whitespace_as_suffix,
 *                   35 byte_fallback, 44 unk_surface
 *   NormalizerSpec  2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces,
 *                   5 escape_whitespaces (all three default true)
 *
 * Other fields are skipped by wire type. The bytes are untrusted: every length is checked
 * against what is left, and errors read like "<what>: protobuf: piece 17: truncated string". */
#include "spm_internal.h"

#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

typedef struct {
    const uint8_t *p, *end;
} pb_reader;

static int pb_varint(pb_reader *r, uint64_t *v, const char *what) {
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) { il_seterr("truncated %s", what); return -1; }
        uint8_t b = *r->p++;
        if (shift < 64) x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *v = x; return 0; }
    }
    il_seterr("%s: varint longer than 10 bytes", what);
    return -1;
}

static int pb_key(pb_reader *r, uint32_t *field, int *wire) {
    uint64_t key;
    if (pb_varint(r, &key, "field key")) return -1;
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff) {
        il_seterr("invalid field number %llu", (unsigned long long)(key >> 3));
        return -1;
    }
    *field = (uint32_t)(key >> 3);
    *wire = (int)(key & 7);
    return 0;
}

/* A length-delimited field: its bytes become *sub. what names it in errors ("string"). */
static int pb_len(pb_reader *r, pb_reader *sub, const char *what) {
    uint64_t n;
    if (pb_varint(r, &n, what)) return -1;
    if (n > (uint64_t)(r->end - r->p)) {
        il_seterr("truncated %s (%llu bytes declared, %zu left)", what, (unsigned long long)n,
                  (size_t)(r->end - r->p));
        return -1;
    }
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return 0;
}

static int pb_fixed(pb_reader *r, size_t n, uint8_t *out) {
    if ((size_t)(r->end - r->p) < n) { il_seterr("truncated fixed%zu field", 8 * n); return -1; }
    memcpy(out, r->p, n);
    r->p += n;
    return 0;
}

static int pb_skip(pb_reader *r, uint32_t field, int wire) {
    uint64_t v;
    uint8_t tmp[8];
    pb_reader sub;
    switch (wire) {
    case WIRE_VARINT: return pb_varint(r, &v, "varint");
    case WIRE_FIXED64: return pb_fixed(r, 8, tmp);
    case WIRE_LEN: return pb_len(r, &sub, "length-delimited field");
    case WIRE_FIXED32: return pb_fixed(r, 4, tmp);
    default: il_seterr("field %u: unsupported wire type %d", field, wire); return -1;
    }
}

static int expect_wire(uint32_t field, int wire, int want) {
    if (wire == want) return 0;
    il_seterr("field %u: wire type %d, expected %d", field, wire, want);
    return -1;
}

static int read_varint_field(pb_reader *r, uint32_t field, int wire, uint64_t *v) {
    if (expect_wire(field, wire, WIRE_VARINT)) return -1;
    return pb_varint(r, v, "varint");
}

static int parse_piece(pb_reader r, spm_model *m) {
    pb_reader s = {NULL, NULL};
    float score = 0.0f;
    uint64_t type = SPM_NORMAL;
    while (r.p < r.end) {
        uint32_t f;
        int w;
        if (pb_key(&r, &f, &w)) return -1;
        if (f == 1) {
            if (expect_wire(f, w, WIRE_LEN) || pb_len(&r, &s, "string")) return -1;
        } else if (f == 2) {
            uint8_t b[4];
            if (expect_wire(f, w, WIRE_FIXED32) || pb_fixed(&r, 4, b)) return -1;
            uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                         (uint32_t)b[3] << 24;
            memcpy(&score, &u, 4);
        } else if (f == 3) {
            if (read_varint_field(&r, f, w, &type)) return -1;
            if (type < SPM_NORMAL || type > SPM_BYTE) {
                il_seterr("unknown type %llu", (unsigned long long)type);
                return -1;
            }
        } else if (pb_skip(&r, f, w)) {
            return -1;
        }
    }
    return spm_model_add_piece(m, (const char *)s.p, (size_t)(s.end - s.p), score, (int)type);
}

static int parse_trainer_spec(pb_reader r, spm_model *m) {
    while (r.p < r.end) {
        uint32_t f;
        int w;
        uint64_t v;
        if (pb_key(&r, &f, &w)) return -1;
        if (f == 3) {
            if (read_varint_field(&r, f, w, &v)) return -1;
            if (v != 1) {
                il_seterr("model_type %llu is not supported (only unigram, 1)", (unsigned long long)v);
                return -1;
            }
        } else if (f == 24) {
            if (read_varint_field(&r, f, w, &v)) return -1;
            m->norm.treat_whitespace_as_suffix = v != 0;
        } else if (f == 35) {
            if (read_varint_field(&r, f, w, &v)) return -1;
            m->byte_fallback = v != 0;
        } else if (f == 44) {
            pb_reader s;
            if (expect_wire(f, w, WIRE_LEN) || pb_len(&r, &s, "unk_surface")) return -1;
            free(m->unk_surface);
            m->unk_surface = il_strndup((const char *)s.p, (size_t)(s.end - s.p));
            if (!m->unk_surface) return -1;
        } else if (pb_skip(&r, f, w)) {
            return -1;
        }
    }
    return 0;
}

static int parse_normalizer_spec(pb_reader r, spm_model *m, pb_reader *charsmap) {
    while (r.p < r.end) {
        uint32_t f;
        int w;
        uint64_t v;
        if (pb_key(&r, &f, &w)) return -1;
        if (f == 2) {
            if (expect_wire(f, w, WIRE_LEN) || pb_len(&r, charsmap, "precompiled_charsmap")) return -1;
        } else if (f >= 3 && f <= 5) {
            if (read_varint_field(&r, f, w, &v)) return -1;
            if (f == 3) m->norm.add_dummy_prefix = v != 0;
            if (f == 4) m->norm.remove_extra_whitespaces = v != 0;
            if (f == 5) m->norm.escape_whitespaces = v != 0;
        } else if (pb_skip(&r, f, w)) {
            return -1;
        }
    }
    return 0;
}

/* seen: bit f set for each of fields 1..3 that occurred. */
static int parse_model(pb_reader r, spm_model *m, pb_reader *charsmap, unsigned *seen) {
    while (r.p < r.end) {
        uint32_t f;
        int w;
        pb_reader sub;
        if (pb_key(&r, &f, &w)) return -1;
        if (f >= 1 && f <= 3) {
            const char *name = f == 1 ? "piece" : f == 2 ? "trainer_spec" : "normalizer_spec";
            int rc = expect_wire(f, w, WIRE_LEN) || pb_len(&r, &sub, "message");
            if (!rc) {
                *seen |= 1u << f;
                rc = f == 1 ? parse_piece(sub, m)
                   : f == 2 ? parse_trainer_spec(sub, m)
                            : parse_normalizer_spec(sub, m, charsmap);
            }
            if (rc) {
                if (f == 1) il_prefixerr("piece %d", m->n);
                else il_prefixerr("%s", name);
                return -1;
            }
        } else if (pb_skip(&r, f, w)) {
            return -1;
        }
    }
    return 0;
}

int spm_model_parse_proto(spm_model *m, const uint8_t *data, size_t len, const char *what) {
    if (len == 0) { il_seterr("%s: empty file", what); return -1; }
    pb_reader r = {data, data + len};
    pb_reader charsmap = {NULL, NULL};
    unsigned seen = 0;
    if (parse_model(r, m, &charsmap, &seen)) {
        il_prefixerr("%s: protobuf", what);
        return -1;
    }
    /* Protobuf cannot tell a file cut at a field boundary from a complete one. spm_train
     * always writes both specs after the pieces, so a missing one means truncation. */
    if (!(seen & (1u << 2)) || !(seen & (1u << 3))) {
        il_seterr("%s: protobuf: no %s (truncated file?)", what,
                  !(seen & (1u << 2)) ? "trainer_spec" : "normalizer_spec");
        return -1;
    }
    if (charsmap.p && charsmap.end > charsmap.p &&
        spm_charsmap_load(&m->norm.cm, charsmap.p, (size_t)(charsmap.end - charsmap.p), what))
        return -1;
    return spm_model_finish(m, what);
}
