/* zip.h - a minimal read-only zip reader over bytes in memory (a file mapping).
 *
 * Just enough for torch.save archives: the central directory (with Zip64) is parsed
 * into a list of entries, and an entry's bytes can be located when it is STORED
 * (method 0), which is how torch.save writes every member. Compressed or encrypted
 * entries are listed but reading them is an error. Every offset and length read from
 * the file is checked against the buffer, so hostile input fails cleanly.
 *
 * Errors follow util.h: messages name the zip entry but not the file; callers prefix
 * the path with il_prefixerr().
 */
#ifndef ILORA_ZIP_H
#define ILORA_ZIP_H

#include "util.h"

typedef struct {
    const char *name; /* points into the buffer; NOT NUL-terminated */
    size_t name_len;
    uint64_t local_offset; /* offset of the local file header */
    uint64_t comp_size, size;
    uint16_t method, flags;
} il_zip_entry;

typedef struct {
    const uint8_t *data;
    size_t len;
    il_zip_entry *entries; /* central directory order */
    size_t n_entries;
} il_zip;

/* True if the buffer starts with a local file header signature "PK\3\4". Only such
 * buffers are treated as zip archives (a signature elsewhere does not count). */
bool il_zip_is_zip(const uint8_t *data, size_t len);

/* Parse the central directory. The buffer must outlive z. 0, or -1 + error. */
int il_zip_open(il_zip *z, const uint8_t *data, size_t len);
void il_zip_close(il_zip *z);

/* Index of the first entry named exactly name[0..name_len), or -1 (no error set). */
long il_zip_find(const il_zip *z, const char *name, size_t name_len);

/* The bytes of a stored entry (via its local header); NULL + error naming the entry
 * if it is compressed, encrypted or out of bounds. *len receives the size. */
const uint8_t *il_zip_entry_data(const il_zip *z, size_t index, size_t *len);

#endif
