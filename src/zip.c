/* zip.c - see zip.h. Layout reference: PKWARE APPNOTE.TXT sections 4.3 and 4.5. */
#include "zip.h"

#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_EOCD64_LOCATOR 0x07064b50u

#define LOCAL_HEADER_SIZE 30
#define CENTRAL_HEADER_SIZE 46
#define EOCD_SIZE 22
#define EOCD64_SIZE 56
#define EOCD64_LOCATOR_SIZE 20
#define MAX_COMMENT 65535
#define ZIP64_EXTRA_ID 0x0001

/* Longest entry name quoted in an error message. */
#define NAME_SHOWN 200

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* True if [off, off+n) lies inside a buffer of len bytes (no overflow). */
static bool in_bounds(uint64_t off, uint64_t n, size_t len) {
    return off <= len && n <= len - off;
}

static int name_shown(const il_zip_entry *e) {
    return (int)(e->name_len < NAME_SHOWN ? e->name_len : NAME_SHOWN);
}

bool il_zip_is_zip(const uint8_t *data, size_t len) {
    return len >= 4 && rd32(data) == SIG_LOCAL;
}

/* Where the central directory is, from the (Zip64) end records. */
typedef struct {
    uint64_t n_entries, cd_size, cd_offset;
} cd_info;

/* The EOCD record sits at the very end, followed only by a comment of up to 64 KiB,
 * so search backwards over that window. */
static long find_eocd(const uint8_t *d, size_t len) {
    if (len < EOCD_SIZE) return -1;
    size_t start = len - EOCD_SIZE;
    size_t stop = start > MAX_COMMENT ? start - MAX_COMMENT : 0;
    for (size_t i = start + 1; i-- > stop;) {
        if (rd32(d + i) != SIG_EOCD) continue;
        if (i + EOCD_SIZE + rd16(d + i + 20) <= len) return (long)i;
    }
    return -1;
}

/* Archives above 4 GiB or 65535 entries keep the real values in a Zip64 EOCD record,
 * located through the locator that immediately precedes the classic EOCD. */
static int read_eocd64(const uint8_t *d, size_t eocd, cd_info *cd) {
    size_t loc = eocd - EOCD64_LOCATOR_SIZE;
    uint64_t off = rd64(d + loc + 8);
    if (!in_bounds(off, EOCD64_SIZE, loc) || rd32(d + off) != SIG_EOCD64) {
        il_seterr("zip: bad Zip64 end of central directory record");
        return -1;
    }
    cd->n_entries = rd64(d + off + 32);
    cd->cd_size = rd64(d + off + 40);
    cd->cd_offset = rd64(d + off + 48);
    return 0;
}

static int read_end_records(const uint8_t *d, size_t len, cd_info *cd) {
    long e = find_eocd(d, len);
    if (e < 0) {
        il_seterr("zip: end of central directory not found (truncated file?)");
        return -1;
    }
    size_t eocd = (size_t)e;
    if (eocd >= EOCD64_LOCATOR_SIZE && rd32(d + eocd - EOCD64_LOCATOR_SIZE) == SIG_EOCD64_LOCATOR)
        return read_eocd64(d, eocd, cd);
    if (rd16(d + eocd + 4) != 0 || rd16(d + eocd + 6) != 0) {
        il_seterr("zip: multi-disk archives are not supported");
        return -1;
    }
    cd->n_entries = rd16(d + eocd + 10);
    cd->cd_size = rd32(d + eocd + 12);
    cd->cd_offset = rd32(d + eocd + 16);
    if (cd->n_entries == 0xFFFF || cd->cd_size == 0xFFFFFFFFu || cd->cd_offset == 0xFFFFFFFFu) {
        il_seterr("zip: Zip64 values without a Zip64 end of central directory locator");
        return -1;
    }
    return 0;
}

/* A field saturated at 0xFFFFFFFF in the central directory is stored in the Zip64 extra
 * field instead; the 64-bit values appear in a fixed order, only for saturated fields. */
static int apply_zip64_extra(il_zip_entry *e, const uint8_t *x, size_t xlen) {
    bool need_size = e->size == 0xFFFFFFFFu, need_comp = e->comp_size == 0xFFFFFFFFu;
    bool need_off = e->local_offset == 0xFFFFFFFFu;
    if (!need_size && !need_comp && !need_off) return 0;
    for (size_t p = 0; p + 4 <= xlen;) {
        uint16_t id = rd16(x + p), sz = rd16(x + p + 2);
        if (sz > xlen - p - 4) break;
        if (id == ZIP64_EXTRA_ID) {
            const uint8_t *f = x + p + 4, *end = f + sz;
            if (need_size) { if (end - f < 8) goto bad; e->size = rd64(f); f += 8; }
            if (need_comp) { if (end - f < 8) goto bad; e->comp_size = rd64(f); f += 8; }
            if (need_off) { if (end - f < 8) goto bad; e->local_offset = rd64(f); }
            return 0;
        }
        p += 4 + (size_t)sz;
    }
bad:
    il_seterr("zip: entry '%.*s': missing or short Zip64 extra field", name_shown(e), e->name);
    return -1;
}

/* Parse one central directory header at *pos (inside [.., end)); advances *pos. */
static int read_central_entry(const uint8_t *d, size_t *pos, size_t end, il_zip_entry *e) {
    size_t p = *pos;
    if (end - p < CENTRAL_HEADER_SIZE || rd32(d + p) != SIG_CENTRAL) {
        il_seterr("zip: bad central directory entry at offset %zu", p);
        return -1;
    }
    const uint8_t *h = d + p;
    size_t name_len = rd16(h + 28), extra_len = rd16(h + 30), comment_len = rd16(h + 32);
    if (end - p - CENTRAL_HEADER_SIZE < name_len + extra_len + comment_len) {
        il_seterr("zip: central directory entry at offset %zu runs past the directory", p);
        return -1;
    }
    e->flags = rd16(h + 8);
    e->method = rd16(h + 10);
    e->comp_size = rd32(h + 20);
    e->size = rd32(h + 24);
    e->local_offset = rd32(h + 42);
    e->name = (const char *)h + CENTRAL_HEADER_SIZE;
    e->name_len = name_len;
    if (apply_zip64_extra(e, h + CENTRAL_HEADER_SIZE + name_len, extra_len) != 0) return -1;
    *pos = p + CENTRAL_HEADER_SIZE + name_len + extra_len + comment_len;
    return 0;
}

int il_zip_open(il_zip *z, const uint8_t *data, size_t len) {
    memset(z, 0, sizeof *z);
    if (!il_zip_is_zip(data, len)) {
        il_seterr("not a zip archive");
        return -1;
    }
    cd_info cd;
    if (read_end_records(data, len, &cd) != 0) return -1;
    if (!in_bounds(cd.cd_offset, cd.cd_size, len)) {
        il_seterr("zip: central directory (offset %llu, %llu bytes) lies outside the file",
                  (unsigned long long)cd.cd_offset, (unsigned long long)cd.cd_size);
        return -1;
    }
    /* Each entry takes at least 46 bytes, which bounds the allocation below. */
    if (cd.n_entries > cd.cd_size / CENTRAL_HEADER_SIZE) {
        il_seterr("zip: %llu entries cannot fit in a %llu-byte central directory",
                  (unsigned long long)cd.n_entries, (unsigned long long)cd.cd_size);
        return -1;
    }
    z->data = data;
    z->len = len;
    z->entries = il_calloc((size_t)cd.n_entries, sizeof *z->entries);
    if (!z->entries) return -1;
    size_t pos = (size_t)cd.cd_offset, end = (size_t)(cd.cd_offset + cd.cd_size);
    for (size_t i = 0; i < cd.n_entries; i++) {
        if (read_central_entry(data, &pos, end, &z->entries[i]) != 0) {
            il_zip_close(z);
            return -1;
        }
        z->n_entries++;
    }
    return 0;
}

void il_zip_close(il_zip *z) {
    free(z->entries);
    memset(z, 0, sizeof *z);
}

long il_zip_find(const il_zip *z, const char *name, size_t name_len) {
    for (size_t i = 0; i < z->n_entries; i++) {
        const il_zip_entry *e = &z->entries[i];
        if (e->name_len == name_len && memcmp(e->name, name, name_len) == 0) return (long)i;
    }
    return -1;
}

const uint8_t *il_zip_entry_data(const il_zip *z, size_t index, size_t *len) {
    const il_zip_entry *e = &z->entries[index];
    int nl = name_shown(e);
    if (e->flags & 1) {
        il_seterr("zip: entry '%.*s' is encrypted", nl, e->name);
        return NULL;
    }
    if (e->method != 0) {
        il_seterr("zip: entry '%.*s' is compressed (method %u); only stored entries are "
                  "supported", nl, e->name, e->method);
        return NULL;
    }
    if (e->comp_size != e->size) {
        il_seterr("zip: entry '%.*s': stored entry with different sizes", nl, e->name);
        return NULL;
    }
    /* The local header's name and extra lengths may differ from the central directory's
     * (torch pads the local extra field to align data), so the data offset comes from it. */
    uint64_t lo = e->local_offset;
    const uint8_t *h = z->data + lo;
    if (!in_bounds(lo, LOCAL_HEADER_SIZE, z->len) || rd32(h) != SIG_LOCAL) {
        il_seterr("zip: entry '%.*s': bad local header offset %llu", nl, e->name,
                  (unsigned long long)lo);
        return NULL;
    }
    if (rd16(h + 8) != 0) {
        il_seterr("zip: entry '%.*s' is compressed (method %u); only stored entries are "
                  "supported", nl, e->name, rd16(h + 8));
        return NULL;
    }
    uint64_t start = lo + LOCAL_HEADER_SIZE + rd16(h + 26) + rd16(h + 28);
    if (!in_bounds(start, e->size, z->len)) {
        il_seterr("zip: entry '%.*s' (%llu bytes) runs past the end of the file", nl, e->name,
                  (unsigned long long)e->size);
        return NULL;
    }
    *len = (size_t)e->size;
    return z->data + start;
}
