/* test_tokenizer.c - the T5 tokenizer (src/sentencepiece.h) against the goldens of
 * tests/golden/t5-tiny/tokenize.json (transformers 4.31 T5Tokenizer + sentencepiece 0.1.97),
 * the T5-TOK / T5-GEN cases B01, B02, B04, a tokenizer.json built from the same model, and
 * hostile spiece.model files. */
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "test_json.h"
#include "sentencepiece.h"
#include "util.h"

#define GOLDEN_DIR TEST_DATA "/golden/t5-tiny"

/* ---- helpers ---- */

static void print_ids(const char *label, const int32_t *ids, int n) {
    fprintf(stderr, "  %s:", label);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* Token strings equal the golden list (byte-exact, NULs included). */
static bool tokens_equal_json(const il_tokens *t, const cJSON *arr) {
    if (cJSON_GetArraySize(arr) != t->n) return false;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        size_t len;
        char *want = test_restore_nul(e->valuestring, &len);
        bool ok = len == t->lens[i] && memcmp(want, t->tokens[i], len) == 0;
        free(want);
        if (!ok) return false;
        i++;
    }
    return true;
}

static int32_t *json_ids(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int32_t *ids = malloc((size_t)(*n ? *n : 1) * sizeof *ids);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) ids[i++] = (int32_t)e->valuedouble;
    return ids;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "(missing)";
}

/* ---- the golden cases ---- */

/* Checks every field of one case; returns the number of mismatching fields. */
static int check_case(const il_tokenizer *tok, const cJSON *c) {
    const char *source = jstr(c, "source");
    size_t len;
    char *text = test_restore_nul(jstr(c, "text"), &len);
    int bad = 0;

    int32_t *ids = NULL;
    int n = 0;
    int rc = il_tokenizer_encode(tok, text, len, &ids, &n);
    const cJSON *hf_ids = cJSON_GetObjectItemCaseSensitive(c, "hf_ids");
    if (rc != 0 || !test_ids_equal_json(ids, n, hf_ids)) {
        bad++;
        fprintf(stderr, "%s: hf_ids differ (%s)\n", source, rc ? il_errmsg() : "");
        print_ids("got", ids, n);
    }

    il_tokens t = {0};
    rc = il_tokenizer_tokenize(tok, text, len, &t);
    if (rc != 0 || !tokens_equal_json(&t, cJSON_GetObjectItemCaseSensitive(c, "hf_tokens"))) {
        bad++;
        fprintf(stderr, "%s: hf_tokens differ\n", source);
    }
    il_tokens_free(&t);

    rc = il_tokenizer_spm_encode(tok, text, len, &t);
    if (rc != 0 || !test_ids_equal_json(t.ids, t.n, cJSON_GetObjectItemCaseSensitive(c, "spm_ids")) ||
        !tokens_equal_json(&t, cJSON_GetObjectItemCaseSensitive(c, "spm_pieces"))) {
        bad++;
        fprintf(stderr, "%s: spm_ids / spm_pieces differ\n", source);
        print_ids("got", t.ids, t.n);
    }
    int n_spm;
    int32_t *spm_ids = json_ids(cJSON_GetObjectItemCaseSensitive(c, "spm_ids"), &n_spm);
    il_tokens_free(&t);

    /* decodes of the golden ids (not ours, so a decode bug is not masked by an encode one) */
    int n_hf;
    int32_t *gold = json_ids(hf_ids, &n_hf);
    struct { const char *key; bool skip, cleanup; } dec[3] = {
        {"decoded", true, true}, {"decoded_keep_special", false, true}, {"decoded_no_cleanup", true, false}};
    for (int k = 0; k < 3; k++) {
        char *s = il_tokenizer_decode(tok, gold, n_hf, dec[k].skip, dec[k].cleanup);
        const char *want = jstr(c, dec[k].key);
        if (!s || strcmp(s, want) != 0) {
            bad++;
            fprintf(stderr, "%s: %s differs:\n  got  [%s]\n  want [%s]\n", source, dec[k].key,
                    s ? s : il_errmsg(), want);
        }
        free(s);
    }
    char *s = il_tokenizer_spm_decode(tok, spm_ids, n_spm);
    if (!s || strcmp(s, jstr(c, "spm_decoded")) != 0) {
        bad++;
        fprintf(stderr, "%s: spm_decoded differs:\n  got  [%s]\n  want [%s]\n", source,
                s ? s : il_errmsg(), jstr(c, "spm_decoded"));
    }
    free(s);
    free(gold);
    free(spm_ids);
    free(ids);
    free(text);
    return bad;
}

static void test_goldens(const il_tokenizer *tok, const cJSON *root) {
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    CHECK_EQ_INT(cJSON_GetArraySize(cases), 273);
    int failed = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) failed += check_case(tok, c) ? 1 : 0;
    CHECK_MSG(failed == 0, "%d of %d golden cases differ", failed, cJSON_GetArraySize(cases));
}

/* batch_padding_example: right padding with pad id 0 to the longest row. */
static void test_batch_padding(const il_tokenizer *tok, const cJSON *root) {
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(root, "batch_padding_example");
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(ex, "texts");
    const cJSON *want_ids = cJSON_GetObjectItemCaseSensitive(ex, "input_ids");
    const cJSON *want_mask = cJSON_GetObjectItemCaseSensitive(ex, "attention_mask");
    int rows = cJSON_GetArraySize(texts);
    CHECK_EQ_INT(rows, 4);
    int32_t *ids[4] = {0};
    int n[4] = {0}, longest = 0;
    for (int r = 0; r < rows && r < 4; r++) {
        const char *s = cJSON_GetArrayItem(texts, r)->valuestring;
        CHECK(il_tokenizer_encode(tok, s, strlen(s), &ids[r], &n[r]) == 0);
        if (n[r] > longest) longest = n[r];
    }
    for (int r = 0; r < rows && r < 4; r++) {
        int32_t row[64], mask[64];
        CHECK(longest <= 64);
        for (int i = 0; i < longest && i < 64; i++) {
            row[i] = i < n[r] ? ids[r][i] : il_tokenizer_pad_id(tok);
            mask[i] = i < n[r];
        }
        CHECK(test_ids_equal_json(row, longest, cJSON_GetArrayItem(want_ids, r)));
        CHECK(test_ids_equal_json(mask, longest, cJSON_GetArrayItem(want_mask, r)));
        free(ids[r]);
    }
}

/* Generation goldens: encode the inputs, decode the generated ids (which include the
 * decoder start <pad>, extra ids and, with adapter single_5, id 2102 beyond the tokenizer). */
static int check_generation(const il_tokenizer *tok, const cJSON *gen, const char *file) {
    int bad = 0, count = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, gen) {
        const cJSON *input = cJSON_GetObjectItemCaseSensitive(g, "input");
        if (cJSON_IsString(input)) {
            int32_t *ids = NULL;
            int n = 0;
            il_tokenizer_encode(tok, input->valuestring, strlen(input->valuestring), &ids, &n);
            if (!test_ids_equal_json(ids, n, cJSON_GetObjectItemCaseSensitive(g, "input_ids"))) {
                bad++;
                fprintf(stderr, "%s: %s: input_ids differ\n", file, jstr(g, "source"));
            }
            free(ids);
        }
        int n;
        int32_t *out = json_ids(cJSON_GetObjectItemCaseSensitive(g, "output_ids"), &n);
        for (int keep = 0; keep < 2; keep++) {
            const char *key = keep ? "decoded_keep_special" : "decoded";
            const cJSON *want = cJSON_GetObjectItemCaseSensitive(g, key);
            if (!cJSON_IsString(want)) continue;
            char *got = il_tokenizer_decode(tok, out, n, !keep, true);
            if (!got || strcmp(got, want->valuestring) != 0) {
                bad++;
                fprintf(stderr, "%s: %s: %s differs:\n  got  [%s]\n  want [%s]\n", file,
                        jstr(g, "source"), key, got ? got : il_errmsg(), want->valuestring);
            }
            free(got);
            count++;
        }
        free(out);
    }
    CHECK_MSG(count > 0, "%s: no generations", file);
    return bad;
}

static void test_generation_goldens(const il_tokenizer *tok) {
    static const char *files[] = {"/golden/t5-tiny/forward.json", "/golden/t5-tiny-bf16/forward.json",
                                  "/golden/t5-tiny-fp16/forward.json",
                                  "/golden/t5-tiny-lora/lora_goldens.json"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", TEST_DATA, files[f]);
        size_t len;
        char *text = il_read_file(path, &len);
        cJSON *root = text ? cJSON_ParseWithLength(text, len) : NULL;
        CHECK_MSG(root != NULL, "cannot read %s", path);
        int bad = 0;
        const cJSON *gen = cJSON_GetObjectItemCaseSensitive(root, "generate");
        if (gen) bad += check_generation(tok, cJSON_GetObjectItemCaseSensitive(gen, "individual"), files[f]);
        const cJSON *res;
        cJSON_ArrayForEach(res, cJSON_GetObjectItemCaseSensitive(root, "results")) {
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(res, "generate");
            if (g) bad += check_generation(tok, g, files[f]);
        }
        CHECK_MSG(bad == 0, "%s: %d generation fields differ", files[f], bad);
        cJSON_Delete(root);
        free(text);
    }
}

/* ---- explicit cases ---- */

static int32_t *enc(const il_tokenizer *tok, const char *s, int *n) {
    int32_t *ids = NULL;
    *n = 0;
    if (il_tokenizer_encode(tok, s, strlen(s), &ids, n) != 0) {
        fprintf(stderr, "encode failed: %s\n", il_errmsg());
        return NULL;
    }
    return ids;
}

static bool same_ids(const il_tokenizer *tok, const char *a, const char *b) {
    int na, nb;
    int32_t *x = enc(tok, a, &na), *y = enc(tok, b, &nb);
    bool ok = x && y && na == nb && memcmp(x, y, (size_t)na * sizeof *x) == 0;
    free(x);
    free(y);
    return ok;
}

static int count_id(const int32_t *ids, int n, int32_t id) {
    int k = 0;
    for (int i = 0; i < n; i++) k += ids[i] == id;
    return k;
}

static void test_sizes(const il_tokenizer *tok) {
    CHECK_EQ_INT(il_tokenizer_vocab_size(tok), 2100);
    CHECK_EQ_INT(il_tokenizer_piece_count(tok), 2000);
    CHECK_EQ_INT(il_tokenizer_extra_ids(tok), 100);
    CHECK_EQ_INT(il_tokenizer_pad_id(tok), 0);
    CHECK_EQ_INT(il_tokenizer_eos_id(tok), 1);
    CHECK_EQ_INT(il_tokenizer_unk_id(tok), 2);
    CHECK(il_tokenizer_is_special(tok, 0) && il_tokenizer_is_special(tok, 1) &&
          il_tokenizer_is_special(tok, 2));
    CHECK(il_tokenizer_is_special(tok, 2000) && il_tokenizer_is_special(tok, 2099));
    CHECK(!il_tokenizer_is_special(tok, 3) && !il_tokenizer_is_special(tok, 2100));
    CHECK(il_tokenizer_cleanup_default(tok));
    CHECK_STR(il_tokenizer_piece(tok, 8, NULL, NULL), "\xe2\x96\x81");
    CHECK(il_tokenizer_piece(tok, 2000, NULL, NULL) == NULL);
}

/* B01 (T5-TOK): "Users expect runs of spaces, \n and \t to survive tokenization. T5's
 * normalizer (nmt_nfkc plus whitespace collapsing) folds them all into one ▁, and NFKC
 * rewrites compatibility characters." Expected: (a) "Hi there \n  \t   I'm good\n" has the
 * same pieces as "Hi there I'm good"; (b) "︰" (U+FE30) gives ▁ . . which decodes to "..";
 * (c) full-width "２" gives ▁2. */
static void test_b01(const il_tokenizer *tok) {
    CHECK(same_ids(tok, "Hi there \n  \t   I'm good\n", "Hi there I'm good"));
    CHECK(same_ids(tok, "\xef\xbc\x92", "2")); /* U+FF12 */
    il_tokens t = {0};
    CHECK(il_tokenizer_tokenize(tok, "\xef\xb8\xb0", 3, &t) == 0); /* U+FE30 -> ".." */
    CHECK_EQ_INT(t.n, 3);
    if (t.n == 3) {
        CHECK_STR(t.tokens[0], "\xe2\x96\x81");
        CHECK_STR(t.tokens[1], ".");
        CHECK_STR(t.tokens[2], ".");
    }
    char *s = il_tokenizer_decode(tok, t.ids, t.n, true, true);
    CHECK_STR(s, "..");
    free(s);
    il_tokens_free(&t);
}

/* B02 (T5-TOK): "The T5 vocabulary has no {, } or <, no CJK and some accented letters, and
 * no byte fallback. Each run of unknown characters must become a single <unk> (id 2), not
 * bytes and not a crash." Cases: "a < b" -> a ⁇ b; "你好你好吗" -> one <unk> for the whole
 * CJK run, then </s>; HF decode shows <unk></s>.
 * The golden t5-tiny vocabulary differs from real T5 here: it does have "▁<" (id 104), so
 * "a < b" has no <unk>; the same sentence with '@' (out of vocabulary) has exactly one.
 * The CJK run is one <unk> after the dummy-prefix piece "▁" (id 8), as for the golden
 * "中文字符" -> [8, 2, 1]. */
static void test_b02(const il_tokenizer *tok) {
    int n;
    int32_t *ids = enc(tok, "a < b", &n);
    CHECK(ids && count_id(ids, n, 2) == 0 && count_id(ids, n, 104) == 1);
    free(ids);
    ids = enc(tok, "a @ b", &n);
    CHECK(ids && count_id(ids, n, 2) == 1);
    char *s = il_tokenizer_spm_decode(tok, ids, n - 1);
    CHECK_STR(s, "a  \xe2\x81\x87  b"); /* "a" + " " (the piece ▁) + " ⁇ " + " b" */
    free(s);
    free(ids);
    ids = enc(tok, "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xbd\xa0\xe5\xa5\xbd\xe5\x90\x97", &n); /* 你好你好吗 */
    CHECK(ids && n == 3 && ids[0] == 8 && ids[1] == 2 && ids[2] == 1);
    if (ids) {
        s = il_tokenizer_decode(tok, ids, n, false, true);
        CHECK_STR(s, "<unk></s>");
        free(s);
        s = il_tokenizer_decode(tok, ids, n, true, true);
        CHECK_STR(s, "");
        free(s);
    }
    free(ids);
    /* "cost 1-${x}": $ is <unk> here too; { and } exist only as "▁{" / "▁}" or bare. */
    ids = enc(tok, "cost 1-${x}", &n);
    CHECK(ids && count_id(ids, n, 2) >= 1);
    free(ids);
}

/* B04 (T5-GEN): "The output carries the pad and eos ids ... Detokenized text holds no
 * <pad>/</s>, and <unk> decodes to ⁇." Decode [0, x..., 1, 0, 0]. With
 * skip_special_tokens=True transformers also drops <unk> (README item 5); sentencepiece's
 * own decode shows it as " ⁇ ". */
static void test_b04(const il_tokenizer *tok) {
    int n;
    int32_t *x = enc(tok, "The answer is (B) yes", &n);
    CHECK(x != NULL);
    if (!x) return;
    int32_t ids[64];
    int m = 0;
    ids[m++] = 0;
    for (int i = 0; i < n - 1 && m < 60; i++) ids[m++] = x[i];
    ids[m++] = 2; /* an <unk> as well */
    ids[m++] = 1;
    ids[m++] = 0;
    ids[m++] = 0;
    char *s = il_tokenizer_decode(tok, ids, m, true, true);
    CHECK_STR(s, "The answer is (B) yes");
    CHECK(s && !strstr(s, "<pad>") && !strstr(s, "</s>"));
    free(s);
    s = il_tokenizer_decode(tok, ids, m, false, true);
    CHECK_STR(s, "<pad> The answer is (B) yes<unk></s><pad><pad>");
    free(s);
    s = il_tokenizer_spm_decode(tok, ids, m);
    CHECK_STR(s, "The answer is (B) yes \xe2\x81\x87 ");
    free(s);
    free(x);
}

/* README "Surprises" 1: ids past the tokenizer size (model vocab 2104) decode to the literal
 * "<extra_id_-3>", which is not special and survives skip_special_tokens; real extra ids
 * (2000..2099) are removed. */
static void test_beyond_vocab(const il_tokenizer *tok) {
    int32_t ids[] = {13, 2102, 2099, 1};
    char *s = il_tokenizer_decode(tok, ids, 4, true, true);
    CHECK_STR(s, "The<extra_id_-3>");
    free(s);
    s = il_tokenizer_decode(tok, ids, 4, false, true);
    CHECK_STR(s, "The<extra_id_-3><extra_id_0></s>");
    free(s);
    int32_t bad[] = {5, -1};
    CHECK(il_tokenizer_decode(tok, bad, 2, true, true) == NULL);
    CHECK(il_tokenizer_spm_decode(tok, ids, 2) == NULL); /* 2102 is no piece */
}

static void test_special_splitting(const il_tokenizer *tok) {
    int n;
    int32_t *ids = enc(tok, "</s>", &n); /* not doubled */
    CHECK(ids && n == 1 && ids[0] == 1);
    free(ids);
    ids = enc(tok, "a</s> </s>", &n);
    CHECK(ids && n == 3 && ids[1] == 1 && ids[2] == 1);
    free(ids);
    /* <extra_id_1> must not match inside <extra_id_10>; <extra_id_100> is no special token */
    ids = enc(tok, "<extra_id_10><extra_id_1>", &n);
    CHECK(ids && n == 3 && ids[0] == 2089 && ids[1] == 2098 && ids[2] == 1);
    free(ids);
    ids = enc(tok, "<extra_id_100>", &n);
    CHECK(ids && n > 3 && count_id(ids, n, 2000) == 0);
    free(ids);
    CHECK(same_ids(tok, "x <pad>\t y", "x<pad>y"));
}

static void test_invalid_utf8(const il_tokenizer *tok) {
    static const char *bad[] = {"abc\xff", "\xc3", "\xed\xa0\x80", "\xc0\xaf", "ok \xe2\x96"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t *ids = NULL;
        int n = 0;
        il_tokens t = {0};
        CHECK(il_tokenizer_encode(tok, bad[i], strlen(bad[i]), &ids, &n) == -1);
        CHECK(strstr(il_errmsg(), "UTF-8") != NULL);
        CHECK(il_tokenizer_tokenize(tok, bad[i], strlen(bad[i]), &t) == -1);
        CHECK(il_tokenizer_spm_encode(tok, bad[i], strlen(bad[i]), &t) == -1);
        CHECK(ids == NULL);
    }
}

/* Speed: the longest golden input (2321 characters) should take well under a millisecond. */
static void test_speed(const il_tokenizer *tok, const cJSON *root) {
    const char *longest = "";
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "cases")) {
        const char *s = jstr(c, "text");
        if (strlen(s) > strlen(longest)) longest = s;
    }
    /* best of 5 batches, so a busy machine does not fail the check */
    double ms = 1e9;
    for (int batch = 0; batch < 5; batch++) {
        const int reps = 40;
        double t0 = il_now();
        for (int r = 0; r < reps; r++) {
            int32_t *ids;
            int n;
            il_tokenizer_encode(tok, longest, strlen(longest), &ids, &n);
            free(ids);
        }
        double t = (il_now() - t0) * 1e3 / reps;
        if (t < ms) ms = t;
    }
    printf("encode of %zu bytes: %.3f ms\n", strlen(longest), ms);
#if !defined(__SANITIZE_ADDRESS__)
    CHECK_MSG(ms < 1.0, "encode took %.3f ms", ms);
#endif
}

/* ---- tokenizer.json ---- */

static char *base64(const uint8_t *p, size_t n) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *o = 0;
    return out;
}

/* Writes dir/tokenizer.json in the layout transformers' T5Converter produces: the pieces of
 * spiece.vocab, then <extra_id_99> .. <extra_id_0>; pad/eos/unk and the extra ids as special
 * added tokens; Precompiled + Replace normalizer; Metaspace pre-tokenizer. The scores come
 * from the loaded spiece.model, because spiece.vocab prints them with 6 digits only and
 * near-ties in the Viterbi search need the exact float32 values. */
static bool write_tokenizer_json(const il_tokenizer *tok, const char *path) {
    size_t vlen;
    char *vocab_txt = il_read_file(GOLDEN_DIR "/spiece.vocab", &vlen);
    if (!vocab_txt) return false;
    cJSON *root = cJSON_CreateObject(), *model = cJSON_CreateObject();
    cJSON *vocab = cJSON_CreateArray(), *added = cJSON_CreateArray();
    int id = 0;
    bool ok = true;
    for (char *line = vocab_txt; *line && ok; id++) {
        char *nl = strchr(line, '\n'), *tab = strchr(line, '\t');
        if (!nl || !tab || tab > nl) { ok = false; break; }
        *tab = 0;
        float score;
        const char *piece = il_tokenizer_piece(tok, id, &score, NULL);
        ok = piece && strcmp(piece, line) == 0; /* spiece.vocab lists the same pieces */
        cJSON *e = cJSON_CreateArray();
        cJSON_AddItemToArray(e, cJSON_CreateString(line));
        cJSON_AddItemToArray(e, cJSON_CreateNumber(score));
        cJSON_AddItemToArray(vocab, e);
        line = nl + 1;
    }
    CHECK_EQ_INT(id, 2000);
    for (int k = 99; k >= 0; k--) {
        char s[32];
        snprintf(s, sizeof s, "<extra_id_%d>", k);
        cJSON *e = cJSON_CreateArray();
        cJSON_AddItemToArray(e, cJSON_CreateString(s));
        cJSON_AddItemToArray(e, cJSON_CreateNumber(0.0));
        cJSON_AddItemToArray(vocab, e);
    }
    for (int k = 0; k < 2100; k++) {
        if (k > 2 && k < 2000) continue;
        char s[32];
        snprintf(s, sizeof s, "<extra_id_%d>", 2099 - k);
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", k);
        cJSON_AddStringToObject(a, "content", k < 3 ? il_tokenizer_piece(tok, k, NULL, NULL) : s);
        cJSON_AddBoolToObject(a, "special", true);
        cJSON_AddItemToArray(added, a);
    }
    cJSON_AddItemToObject(root, "added_tokens", added);
    size_t cm_len;
    const uint8_t *cm = il_tokenizer_charsmap(tok, &cm_len);
    char *b64 = base64(cm, cm_len);
    cJSON *norm = cJSON_CreateObject(), *list = cJSON_CreateArray(), *pre = cJSON_CreateObject();
    cJSON *rep = cJSON_CreateObject(), *pat = cJSON_CreateObject();
    cJSON_AddStringToObject(pre, "type", "Precompiled");
    cJSON_AddStringToObject(pre, "precompiled_charsmap", b64);
    cJSON_AddItemToArray(list, pre);
    cJSON_AddStringToObject(rep, "type", "Replace");
    cJSON_AddStringToObject(pat, "Regex", " {2,}");
    cJSON_AddItemToObject(rep, "pattern", pat);
    cJSON_AddStringToObject(rep, "content", " ");
    cJSON_AddItemToArray(list, rep);
    cJSON_AddStringToObject(norm, "type", "Sequence");
    cJSON_AddItemToObject(norm, "normalizers", list);
    cJSON_AddItemToObject(root, "normalizer", norm);
    cJSON *ms = cJSON_CreateObject();
    cJSON_AddStringToObject(ms, "type", "Metaspace");
    cJSON_AddStringToObject(ms, "replacement", "\xe2\x96\x81");
    cJSON_AddBoolToObject(ms, "add_prefix_space", true);
    cJSON_AddItemToObject(root, "pre_tokenizer", ms);
    cJSON_AddStringToObject(model, "type", "Unigram");
    cJSON_AddNumberToObject(model, "unk_id", 2);
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddItemToObject(root, "model", model);
    char *json = cJSON_Print(root);
    ok = ok && json && il_write_file_atomic(path, json, strlen(json)) == 0;
    free(json);
    free(b64);
    cJSON_Delete(root);
    free(vocab_txt);
    return ok;
}

static void test_tokenizer_json(const il_tokenizer *spm, const cJSON *root) {
    char dir[] = "tok_json_XXXXXX"; /* in the working directory (the build tree) */
    if (!mkdtemp(dir)) { CHECK_MSG(0, "mkdtemp failed"); return; }
    char *path = il_path_join(dir, "tokenizer.json");
    CHECK(write_tokenizer_json(spm, path));
    il_tokenizer *tj = il_tokenizer_load(dir);
    CHECK_MSG(tj != NULL, "%s", il_errmsg());
    if (tj) {
        CHECK_EQ_INT(il_tokenizer_vocab_size(tj), 2100);
        CHECK_EQ_INT(il_tokenizer_piece_count(tj), 2000);
        int failed = 0, total = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "cases")) {
            size_t len;
            char *text = test_restore_nul(jstr(c, "text"), &len);
            int32_t *a = NULL, *b = NULL;
            int na = 0, nb = 0;
            il_tokenizer_encode(spm, text, len, &a, &na);
            il_tokenizer_encode(tj, text, len, &b, &nb);
            bool same = a && b && na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0 &&
                        test_ids_equal_json(b, nb, cJSON_GetObjectItemCaseSensitive(c, "hf_ids"));
            if (!same) fprintf(stderr, "tokenizer.json: %s differs\n", jstr(c, "source"));
            failed += !same;
            total++;
            free(a);
            free(b);
            free(text);
        }
        CHECK_MSG(failed == 0, "tokenizer.json: %d of %d cases differ", failed, total);
        il_tokenizer_free(tj);
    }
    remove(path);
    rmdir(dir);
    free(path);
}

/* ---- hostile models ---- */

/* Protobuf writer for hand-made ModelProtos. */
static void pb_varint(il_buf *b, uint64_t v) {
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) c |= 0x80;
        il_buf_append(b, &c, 1);
    } while (v);
}

static void pb_bytes(il_buf *b, int field, const void *p, size_t n) {
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, n);
    il_buf_append(b, p, n);
}

static void pb_piece(il_buf *b, const char *s, size_t n, float score, int type) {
    il_buf p = {0};
    pb_bytes(&p, 1, s, n);
    pb_varint(&p, 2 << 3 | 5);
    il_buf_append(&p, &score, 4); /* little-endian hosts only, like the model files */
    pb_varint(&p, 3 << 3 | 0);
    pb_varint(&p, (uint64_t)type);
    pb_bytes(b, 1, p.data, p.len);
    il_buf_free(&p);
}

/* Options of a hand-made model. */
typedef struct {
    const void *charsmap;
    size_t cm_len;
    const char *bad_piece; /* an extra piece (raw bytes) */
    size_t bad_len;
    int model_type;        /* 0: unigram */
    bool byte_fallback;    /* adds <0x00>..<0xFF> and sets trainer_spec.byte_fallback */
    bool user_defined;     /* adds the USER_DEFINED piece "<sep>" */
} model_opts;

/* A tiny model: <pad> </s> <unk> ▁ a b ab, a trainer_spec and a normalizer_spec with an
 * optional charsmap, in spm_train's field order. */
static void tiny_model(il_buf *b, const model_opts *o) {
    pb_piece(b, "<pad>", 5, 0, 3);
    pb_piece(b, "</s>", 4, 0, 3);
    pb_piece(b, "<unk>", 5, 0, 2);
    pb_piece(b, "\xe2\x96\x81", 3, -1, 1);
    pb_piece(b, "a", 1, -2, 1);
    pb_piece(b, "b", 1, -2, 1);
    pb_piece(b, "ab", 2, -1, 1);
    if (o->bad_piece) pb_piece(b, o->bad_piece, o->bad_len, -3, 1);
    if (o->user_defined) pb_piece(b, "<sep>", 5, 0, 4);
    for (int v = 0; o->byte_fallback && v < 256; v++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", v);
        pb_piece(b, s, 6, 0, 6);
    }
    il_buf ts = {0}, ns = {0};
    pb_varint(&ts, 3 << 3 | 0);
    pb_varint(&ts, o->model_type ? (uint64_t)o->model_type : 1);
    if (o->byte_fallback) {
        pb_varint(&ts, 35 << 3 | 0);
        pb_varint(&ts, 1);
    }
    pb_bytes(b, 2, ts.data, ts.len);
    pb_bytes(&ns, 1, "identity", 8);
    if (o->charsmap) pb_bytes(&ns, 2, o->charsmap, o->cm_len);
    pb_bytes(b, 3, ns.data, ns.len);
    il_buf_free(&ts);
    il_buf_free(&ns);
}

static il_tokenizer *from_buf(const il_buf *b) {
    return il_tokenizer_from_spm(b->data, b->len, "test.model", 0);
}

static void test_hostile(void) {
    /* a hand-made model works */
    il_buf b = {0};
    tiny_model(&b, &(model_opts){0});
    il_tokenizer *t = from_buf(&b);
    CHECK_MSG(t != NULL, "%s", il_errmsg());
    if (t) {
        int n;
        int32_t *ids = enc(t, "ab a", &n);
        CHECK(ids && n == 5 && ids[0] == 3 && ids[1] == 6 && ids[2] == 3 && ids[3] == 4 && ids[4] == 1);
        free(ids);
        il_tokenizer_free(t);
    }
    il_buf_free(&b);

    /* a piece with invalid UTF-8 */
    tiny_model(&b, &(model_opts){.bad_piece = "x\xff", .bad_len = 2});
    CHECK(from_buf(&b) == NULL);
    CHECK(strstr(il_errmsg(), "test.model") && strstr(il_errmsg(), "UTF-8"));
    il_buf_free(&b);

    /* a charsmap whose trie-size field exceeds the blob, or is not a multiple of 4 */
    uint8_t cm[12] = {0xf0, 0xff, 0xff, 0x0f};
    tiny_model(&b, &(model_opts){.charsmap = cm, .cm_len = sizeof cm});
    CHECK(from_buf(&b) == NULL);
    CHECK(strstr(il_errmsg(), "precompiled_charsmap") != NULL);
    il_buf_free(&b);
    uint8_t cm2[12] = {6, 0, 0, 0};
    tiny_model(&b, &(model_opts){.charsmap = cm2, .cm_len = sizeof cm2});
    CHECK(from_buf(&b) == NULL);
    il_buf_free(&b);
    /* a charsmap whose trie points anywhere: must not read out of bounds */
    uint8_t cm3[4 + 8 + 4] = {8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x61, 0x01, 0x00, 0x80, 'x', 0, 'y', 0};
    tiny_model(&b, &(model_opts){.charsmap = cm3, .cm_len = sizeof cm3});
    t = from_buf(&b);
    if (t) {
        int32_t *ids;
        int n;
        il_tokenizer_encode(t, "aab\xc3\xa9", 5, &ids, &n); /* may fail, must not crash */
        free(ids);
        il_tokenizer_free(t);
    }
    il_buf_free(&b);

    /* truncated files: every prefix of a small model, and prefixes of the real one */
    tiny_model(&b, &(model_opts){0});
    for (size_t cut = 0; cut < b.len; cut++) {
        il_tokenizer *x = il_tokenizer_from_spm(b.data, cut, "test.model", 0);
        CHECK_MSG(x == NULL, "prefix of %zu bytes loaded", cut);
        il_tokenizer_free(x);
    }
    il_buf_free(&b);
    size_t len;
    char *real = il_read_file(GOLDEN_DIR "/spiece.model", &len);
    CHECK(real != NULL);
    if (!real) return;
    int loaded = 0;
    for (size_t cut = 0; cut < len; cut += 1009) {
        il_tokenizer *x = il_tokenizer_from_spm(real, cut, "spiece.model", 100);
        loaded += x != NULL;
        il_tokenizer_free(x);
    }
    CHECK_EQ_INT(loaded, 0);
    CHECK(strstr(il_errmsg(), "spiece.model") != NULL);

    /* garbage bytes, and the real model with random bytes overwritten: errors or a working
     * tokenizer, never a crash (ASan/UBSan builds check the memory safety) */
    uint32_t seed = 12345;
    char *junk = malloc(4096);
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 4096; i++) {
            seed = seed * 1664525u + 1013904223u;
            junk[i] = (char)(seed >> 24);
        }
        il_tokenizer *x = il_tokenizer_from_spm(junk, 64 + (size_t)round * 20, "junk", 0);
        il_tokenizer_free(x);
    }
    free(junk);
    char *copy = malloc(len);
    for (int round = 0; round < 60; round++) {
        memcpy(copy, real, len);
        for (int k = 0; k < 8; k++) {
            seed = seed * 1664525u + 1013904223u;
            size_t pos = (seed >> 8) % len;
            seed = seed * 1664525u + 1013904223u;
            copy[pos] = (char)(seed >> 24);
        }
        il_tokenizer *x = il_tokenizer_from_spm(copy, len, "spiece.model", 100);
        if (x) {
            const char *s = "Hello, world! Ｆｕｌｌ naïve 中文 <extra_id_3> end";
            int32_t *ids = NULL;
            int n = 0;
            if (il_tokenizer_encode(x, s, strlen(s), &ids, &n) == 0) {
                char *d = il_tokenizer_decode(x, ids, n, false, true);
                free(d);
            }
            free(ids);
            il_tokenizer_free(x);
        }
    }
    free(copy);
    free(real);

    /* missing files, bad directories */
    CHECK(il_tokenizer_load(TEST_DATA "/golden") == NULL);
    CHECK(strstr(il_errmsg(), "no spiece.model or tokenizer.json") != NULL);
    CHECK(il_tokenizer_load(TEST_DATA "/golden/nonexistent") == NULL);
}

/* Model features the golden model does not use: byte fallback, user-defined pieces, and a
 * non-unigram model (rejected). */
static void test_model_features(void) {
    il_buf b = {0};
    tiny_model(&b, &(model_opts){.model_type = 2});
    CHECK(from_buf(&b) == NULL);
    CHECK(strstr(il_errmsg(), "model_type") != NULL);
    il_buf_free(&b);

    tiny_model(&b, &(model_opts){.byte_fallback = true});
    il_tokenizer *t = from_buf(&b);
    CHECK_MSG(t != NULL, "%s", il_errmsg());
    if (t) {
        il_tokens tk = {0};
        CHECK(il_tokenizer_spm_encode(t, "a\xc3\xa9", 3, &tk) == 0); /* "aé" */
        int32_t want[] = {3, 4, 7 + 0xc3, 7 + 0xa9};
        CHECK(tk.n == 4 && memcmp(tk.ids, want, sizeof want) == 0);
        if (tk.n == 4) CHECK_STR(tk.tokens[2], "<0xC3>");
        char *d = il_tokenizer_spm_decode(t, tk.ids, tk.n);
        CHECK_STR(d, "a\xc3\xa9");
        free(d);
        d = il_tokenizer_decode(t, tk.ids, tk.n, true, true);
        CHECK_STR(d, "a\xc3\xa9");
        free(d);
        int32_t lone[] = {4, 7 + 0xc3, 5}; /* a malformed byte decodes to U+FFFD */
        d = il_tokenizer_spm_decode(t, lone, 3);
        CHECK_STR(d, "a\xef\xbf\xbd" "b");
        free(d);
        il_tokens_free(&tk);
        il_tokenizer_free(t);
    }
    il_buf_free(&b);

    tiny_model(&b, &(model_opts){.user_defined = true});
    t = from_buf(&b);
    CHECK_MSG(t != NULL, "%s", il_errmsg());
    if (t) {
        il_tokens tk = {0};
        CHECK(il_tokenizer_spm_encode(t, "a<sep>b", 7, &tk) == 0);
        int32_t want[] = {3, 4, 7, 5};
        CHECK(tk.n == 4 && memcmp(tk.ids, want, sizeof want) == 0);
        il_tokens_free(&tk);
        CHECK(il_tokenizer_spm_encode(t, "a<se>b", 6, &tk) == 0); /* unknown run: one <unk> */
        CHECK(tk.n == 4 && tk.ids[2] == 2 && tk.lens[2] == 4);
        il_tokens_free(&tk);
        il_tokenizer_free(t);
    }
    il_buf_free(&b);
}

/* tokenizer_config.json / special_tokens_map.json: extra_ids, AddedToken objects, the
 * clean-up default; the map overrides the config as in transformers. */
static void test_config_files(void) {
    char dir[] = "tok_cfg_XXXXXX";
    if (!mkdtemp(dir)) { CHECK_MSG(0, "mkdtemp failed"); return; }
    char *model = il_path_join(dir, "spiece.model");
    char *cfg = il_path_join(dir, "tokenizer_config.json");
    char *map = il_path_join(dir, "special_tokens_map.json");
    size_t len;
    char *data = il_read_file(GOLDEN_DIR "/spiece.model", &len);
    CHECK(data && il_write_file_atomic(model, data, len) == 0);
    free(data);
    const char *cfg_json = "{\"extra_ids\": 3, \"clean_up_tokenization_spaces\": false,"
                           " \"eos_token\": \"<pad>\"}";
    const char *map_json = "{\"eos_token\": {\"content\": \"</s>\", \"lstrip\": false,"
                           " \"rstrip\": false, \"normalized\": false, \"single_word\": false},"
                           " \"additional_special_tokens\": [\"<extra_id_0>\", \"<extra_id_1>\","
                           " {\"content\": \"<extra_id_2>\"}]}";
    CHECK(il_write_file_atomic(cfg, cfg_json, strlen(cfg_json)) == 0);
    CHECK(il_write_file_atomic(map, map_json, strlen(map_json)) == 0);
    il_tokenizer *t = il_tokenizer_load(dir);
    CHECK_MSG(t != NULL, "%s", il_errmsg());
    if (t) {
        CHECK_EQ_INT(il_tokenizer_vocab_size(t), 2003);
        CHECK_EQ_INT(il_tokenizer_eos_id(t), 1);
        CHECK(!il_tokenizer_cleanup_default(t));
        int n;
        int32_t *ids = enc(t, "a</s>b<extra_id_0><extra_id_2>", &n);
        CHECK(ids && n == 6 && ids[1] == 1 && ids[3] == 2002 && ids[4] == 2000 && ids[5] == 1);
        free(ids);
        ids = enc(t, "<extra_id_3>", &n); /* only 3 extra ids: ordinary text */
        CHECK(ids && n > 2);
        free(ids);
        il_tokenizer_free(t);
    }
    const char *bad_map = "{\"eos_token\": {\"lstrip\": true}}";
    CHECK(il_write_file_atomic(map, bad_map, strlen(bad_map)) == 0);
    CHECK(il_tokenizer_load(dir) == NULL);
    CHECK(strstr(il_errmsg(), "special_tokens_map.json: eos_token") != NULL);
    const char *added = "{\"additional_special_tokens\": [\"<new_token>\"]}";
    CHECK(il_write_file_atomic(map, added, strlen(added)) == 0);
    CHECK(il_tokenizer_load(dir) == NULL); /* would be an added token: unsupported */
    CHECK(strstr(il_errmsg(), "<new_token>") != NULL);
    remove(model);
    remove(cfg);
    remove(map);
    rmdir(dir);
    free(model);
    free(cfg);
    free(map);
}

/* Broken tokenizer.json files fail with a message naming the file. */
static void test_bad_tokenizer_json(void) {
    static const char *bad[] = {
        "{",
        "[]",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}",
        "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 5, \"vocab\": [[\"<unk>\", 0]]}}",
        "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\"]]}}",
        "{\"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"!!\"},"
        " \"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\", 0]]}}",
    };
    char dir[] = "tok_bad_XXXXXX";
    if (!mkdtemp(dir)) { CHECK_MSG(0, "mkdtemp failed"); return; }
    char *path = il_path_join(dir, "tokenizer.json");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(il_write_file_atomic(path, bad[i], strlen(bad[i])) == 0);
        il_tokenizer *t = il_tokenizer_load(dir);
        CHECK_MSG(t == NULL, "case %zu loaded", i);
        CHECK_MSG(strstr(il_errmsg(), "tokenizer.json") != NULL, "case %zu: %s", i, il_errmsg());
        il_tokenizer_free(t);
    }
    remove(path);
    rmdir(dir);
    free(path);
}

int main(void) {
    il_tokenizer *tok = il_tokenizer_load(GOLDEN_DIR);
    CHECK_MSG(tok != NULL, "%s", il_errmsg());
    cJSON *root = test_load_goldens(GOLDEN_DIR "/tokenize.json");
    CHECK_MSG(root != NULL, "cannot read tokenize.json");
    if (!tok || !root) TEST_END();

    test_sizes(tok);
    test_goldens(tok, root);
    test_batch_padding(tok, root);
    test_generation_goldens(tok);
    test_b01(tok);
    test_b02(tok);
    test_b04(tok);
    test_beyond_vocab(tok);
    test_special_splitting(tok);
    test_invalid_utf8(tok);
    test_speed(tok, root);
    test_tokenizer_json(tok, root);
    test_hostile();
    test_model_features();
    test_bad_tokenizer_json();
    test_config_files();

    cJSON_Delete(root);
    il_tokenizer_free(tok);
    TEST_END();
}
