/* test_wordpiece.c - the BERT tokenizer (src/wordpiece.h) against the 207 goldens of
 * tests/golden/bert-tiny/tokenize.json (transformers 4.31 BertTokenizer), the WP cases B14
 * (basic-tokenizer steps) and B15 (the two [UNK] rules), configuration variants written
 * to temporary directories, and bad inputs. */
#include <cJSON.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "test_json.h"
#include "util.h"
#include "wordpiece.h"

#define BERT_DIR TEST_DATA "/golden/bert-tiny"

/* ---- helpers ---- */

static bool tokens_equal_json(const il_tokens *t, const cJSON *arr) {
    if (cJSON_GetArraySize(arr) != t->n) return false;
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->tokens[i], cJSON_GetArrayItem(arr, i)->valuestring) != 0) return false;
    return true;
}

/* Tokens joined by single spaces (malloc'd). */
static char *join(const il_tokens *t) {
    il_buf b = {0};
    il_buf_append(&b, NULL, 0);
    for (int i = 0; i < t->n; i++) {
        if (i) il_buf_puts(&b, " ");
        il_buf_puts(&b, t->tokens[i]);
    }
    return b.data;
}

static char *tokenize_joined(const il_wordpiece *t, const char *text) {
    il_tokens tk;
    if (il_wordpiece_tokenize(t, text, strlen(text), &tk)) return il_strdup(il_errmsg());
    char *s = join(&tk);
    il_tokens_free(&tk);
    return s;
}

static char *basic_joined(const il_wordpiece *t, const char *text) {
    il_tokens tk;
    if (il_wordpiece_basic_tokenize(t, text, strlen(text), &tk)) return il_strdup(il_errmsg());
    char *s = join(&tk);
    il_tokens_free(&tk);
    return s;
}

/* A scratch directory with the given files (name, content pairs, NULL-terminated). */
static char *make_dir(const char *const *files) {
    const char *tmp = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/ilora_wp_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpl)) return NULL;
    for (int i = 0; files[i]; i += 2) {
        char *p = il_path_join(tmpl, files[i]);
        il_write_file_atomic(p, files[i + 1], strlen(files[i + 1]));
        free(p);
    }
    return il_strdup(tmpl);
}

static void remove_dir(char *dir) {
    if (!dir) return;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char *p = il_path_join(dir, de->d_name);
        unlink(p);
        free(p);
    }
    if (d) closedir(d);
    rmdir(dir);
    free(dir);
}

/* ---- the 207 golden cases ---- */

static void test_goldens(const il_wordpiece *t) {
    cJSON *root = test_load_goldens(BERT_DIR "/tokenize.json");
    CHECK(root != NULL);
    if (!root) return;
    const cJSON *cases = cJSON_GetObjectItem(root, "cases");
    CHECK_EQ_INT(cJSON_GetArraySize(cases), 207);
    int n_ok = 0, n_trunc = 0, idx = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        size_t len;
        char *text = test_restore_nul(cJSON_GetObjectItem(c, "text")->valuestring, &len);
        const cJSON *want_tokens = cJSON_GetObjectItem(c, "tokens");
        const cJSON *want_ids = cJSON_GetObjectItem(c, "ids");
        const char *want_dec = cJSON_GetObjectItem(c, "decoded")->valuestring;
        il_tokens tk;
        int32_t *ids = NULL;
        int n = 0;
        bool ok = il_wordpiece_tokenize(t, text, len, &tk) == 0;
        CHECK_MSG(ok, "case %d: %s", idx, il_errmsg());
        if (ok) {
            CHECK_MSG(tokens_equal_json(&tk, want_tokens), "case %d tokens: [%s]", idx, text);
            /* the token ids are the golden ids without [CLS] / [SEP] */
            bool same = tk.n + 2 == cJSON_GetArraySize(want_ids);
            for (int i = 0; same && i < tk.n; i++)
                same = tk.ids[i] == cJSON_GetArrayItem(want_ids, i + 1)->valueint;
            CHECK_MSG(same, "case %d token ids: [%s]", idx, text);
            int unk = 0;
            for (int i = 0; i < tk.n; i++) unk += tk.ids[i] == il_wordpiece_unk_id(t);
            CHECK_EQ_INT(unk, cJSON_GetObjectItem(c, "unk_count")->valueint);
            il_tokens_free(&tk);
        }
        CHECK(il_wordpiece_encode(t, text, len, 0, &ids, &n) == 0);
        bool ids_ok = test_ids_equal_json(ids, n, want_ids);
        CHECK_MSG(ids_ok, "case %d ids: [%s]", idx, text);
        char *dec = il_wordpiece_decode(t, ids, n, true, il_wordpiece_cleanup_default(t));
        CHECK_STR(dec, want_dec);
        if (ok && ids_ok && dec && !strcmp(dec, want_dec)) n_ok++;
        free(dec);
        free(ids);
        const cJSON *tr = cJSON_GetObjectItem(c, "ids_truncated_128");
        if (tr) {
            n_trunc++;
            CHECK(il_wordpiece_encode(t, text, len, 128, &ids, &n) == 0);
            CHECK_EQ_INT(n, 128);
            CHECK_MSG(test_ids_equal_json(ids, n, tr), "case %d truncated ids", idx);
            CHECK_EQ_INT(ids[n - 1], il_wordpiece_sep_id(t));
            free(ids);
        }
        free(text);
        idx++;
    }
    printf("tokenize.json: %d of %d cases fully equal, %d truncation cases\n", n_ok, idx, n_trunc);
    CHECK_EQ_INT(n_trunc, 19);

    /* pair_example: [CLS] a [SEP] b [SEP] with token types 0 then 1 */
    const cJSON *pair = cJSON_GetObjectItem(root, "pair_example");
    const char *a = cJSON_GetObjectItem(pair, "a")->valuestring;
    const char *b = cJSON_GetObjectItem(pair, "b")->valuestring;
    int32_t *ids = NULL, *types = NULL;
    int n = 0;
    CHECK(il_wordpiece_encode_pair(t, a, strlen(a), b, strlen(b), &ids, &types, &n) == 0);
    CHECK(test_ids_equal_json(ids, n, cJSON_GetObjectItem(pair, "input_ids")));
    CHECK(test_ids_equal_json(types, n, cJSON_GetObjectItem(pair, "token_type_ids")));
    free(ids);
    free(types);
    cJSON_Delete(root);
}

/* ---- B14: the basic tokenizer's steps ---- */

static void test_b14(const il_wordpiece *t) {
    static const char *const cases[][2] = {
        {"Café crème brûlée in São Paulo, naïve résumé",
         "cafe creme brulee in sao paulo , naive resume"},
        {"The QUICK fox — didn't jump?!", "the quick fox — didn ' t jump ? !"},
        {"Apples是苹果", "apples 是 苹 果"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = basic_joined(t, cases[i][0]);
        CHECK_STR(got, cases[i][1]);
        free(got);
    }
    /* WordPiece then runs on those words: every word maps to the same pieces alone */
    char *whole = tokenize_joined(t, "Café crème brûlée in São Paulo, naïve résumé");
    char *parts = tokenize_joined(t, "cafe creme brulee in sao paulo , naive resume");
    CHECK_STR(whole, parts);
    free(whole);
    free(parts);
    /* the CJK characters of the golden vocabulary are single tokens */
    char *cjk = tokenize_joined(t, "Apples是中文");
    CHECK(cjk && strstr(cjk, " [UNK] 中 文") != NULL);
    free(cjk);
}

/* ---- B15: the [UNK] rules ---- */

static void test_b15(const il_wordpiece *golden) {
    /* (a) an unmatchable remainder turns the whole word into one [UNK] */
    const char *files[] = {"vocab.txt", "[UNK]\nun\n##want\n##ed\nrunn\n##ing\n", NULL};
    char *dir = make_dir(files);
    CHECK(dir != NULL);
    il_wordpiece *toy = dir ? il_wordpiece_load(dir) : NULL;
    CHECK_MSG(toy != NULL, "%s", il_errmsg());
    if (toy) {
        char *s = tokenize_joined(toy, "unwantedX running");
        CHECK_STR(s, "[UNK] runn ##ing");
        free(s);
        s = tokenize_joined(toy, "unwanted running");
        CHECK_STR(s, "un ##want ##ed runn ##ing");
        free(s);
        /* [CLS] / [SEP] are missing from this vocabulary: appended after it */
        CHECK_EQ_INT(il_wordpiece_vocab_size(toy), 6 + 4);
        CHECK(il_wordpiece_cls_id(toy) >= 6 && il_wordpiece_sep_id(toy) >= 6);
        il_wordpiece_free(toy);
    }
    remove_dir(dir);

    /* (b) an emoji is one [UNK]; the next word is unaffected */
    char *got = tokenize_joined(golden, "😃 hello");
    char *hello = tokenize_joined(golden, "hello");
    char *want = il_sprintf("[UNK] %s", hello);
    CHECK_STR(got, want);
    CHECK_STR(hello, "he ##ll ##o");
    free(got);
    free(hello);
    free(want);

    /* (c) the limit is strictly more than 100 characters */
    il_buf b = {0};
    for (int i = 0; i < 26; i++) il_buf_puts(&b, "Hello");
    il_tokens tk;
    CHECK(il_wordpiece_tokenize(golden, b.data, 100, &tk) == 0); /* "Hello" x 20 */
    CHECK(tk.n > 1);
    for (int i = 0; i < tk.n; i++) CHECK(tk.ids[i] != il_wordpiece_unk_id(golden));
    char *dec = il_wordpiece_decode(golden, tk.ids, tk.n, true, true);
    il_buf low = {0};
    for (int i = 0; i < 20; i++) il_buf_puts(&low, "hello");
    CHECK_STR(dec, low.data);
    free(dec);
    il_tokens_free(&tk);
    CHECK(il_wordpiece_tokenize(golden, b.data, 130, &tk) == 0); /* "Hello" x 26 */
    CHECK_EQ_INT(tk.n, 1);
    CHECK_STR(tk.tokens[0], "[UNK]");
    il_tokens_free(&tk);
    CHECK(il_wordpiece_tokenize(golden, b.data, 101, &tk) == 0); /* 101 characters */
    CHECK_EQ_INT(tk.n, 1);
    il_tokens_free(&tk);
    /* the limit counts characters, not bytes: 100 x "é" is 200 bytes but not too long */
    il_buf acc = {0};
    for (int i = 0; i < 100; i++) il_buf_puts(&acc, "é");
    CHECK(il_wordpiece_tokenize(golden, acc.data, acc.len, &tk) == 0);
    CHECK(tk.n > 1);
    il_tokens_free(&tk);
    il_buf_free(&acc);
    il_buf_free(&b);
    il_buf_free(&low);
}

/* ---- configuration variants ---- */

static void test_cased_config(void) {
    /* do_lower_case=false: case and accents stay, NFC composes "e" + U+0301, never_split
     * keeps a word whole (no punctuation split) */
    const char *files[] = {
        "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nHello\nWORLD\nCafé\nKeep.Me\n.\n"
                     "hello\nworld\n##x\n",
        "tokenizer_config.json",
        "{\"do_lower_case\": false, \"never_split\": [\"Keep.Me\"], \"model_max_length\": 64}",
        NULL};
    char *dir = make_dir(files);
    il_wordpiece *t = dir ? il_wordpiece_load(dir) : NULL;
    CHECK_MSG(t != NULL, "%s", il_errmsg());
    if (t) {
        char *s = tokenize_joined(t, "Hello WORLD Cafe\xcc\x81 Keep.Me hello.");
        CHECK_STR(s, "Hello WORLD Café Keep.Me hello .");
        free(s);
        CHECK_EQ_INT(il_wordpiece_model_max_length(t), 64);
        CHECK_EQ_INT(il_wordpiece_token_to_id(t, "Keep.Me"), 8);
        il_wordpiece_free(t);
    }
    remove_dir(dir);

    /* strip_accents=false with lower-casing: accents stay */
    const char *files2[] = {"vocab.txt", "[UNK]\n[CLS]\n[SEP]\ncafé\ncafe\n",
                            "tokenizer_config.json", "{\"strip_accents\": false}", NULL};
    dir = make_dir(files2);
    t = dir ? il_wordpiece_load(dir) : NULL;
    CHECK_MSG(t != NULL, "%s", il_errmsg());
    if (t) {
        char *s = tokenize_joined(t, "CAFÉ");
        CHECK_STR(s, "café");
        free(s);
        il_wordpiece_free(t);
    }
    remove_dir(dir);
}

static void test_py_lower(void) {
    size_t n;
    char *s = il_py_lower("ΟΔΟΣ ΣΑΣ Σ İx ABC", strlen("ΟΔΟΣ ΣΑΣ Σ İx ABC"), &n);
    CHECK_STR(s, "οδος σας σ i\xcc\x87x abc"); /* final sigma, U+0130 -> i + U+0307 */
    CHECK_EQ_INT(n, strlen("οδος σας σ i\xcc\x87x abc"));
    free(s);
    CHECK(il_py_lower("\xff", 1, &n) == NULL);
}

/* ---- bad inputs ---- */

static void test_errors(const il_wordpiece *t) {
    il_tokens tk;
    int32_t *ids = NULL;
    int n = 0;
    CHECK(il_wordpiece_tokenize(t, "ok \xc3\x28 bad", 9, &tk) == -1);
    CHECK(strstr(il_errmsg(), "UTF-8") != NULL);
    CHECK(il_wordpiece_encode(t, "\xed\xa0\x80", 3, 0, &ids, &n) == -1); /* surrogate */
    CHECK(ids == NULL);
    CHECK(il_wordpiece_encode(t, "x", 1, 1, &ids, &n) == -1); /* no room for [CLS] [SEP] */
    int32_t bad[] = {2, -5, 3};
    CHECK(il_wordpiece_decode(t, bad, 3, true, true) == NULL);
    /* out-of-range ids decode as the unk token (kept: it is not a special id) */
    int32_t big[] = {2, 100000, 3};
    char *d = il_wordpiece_decode(t, big, 3, true, true);
    CHECK_STR(d, "[UNK]");
    free(d);

    /* missing vocab.txt */
    const char *none[] = {"tokenizer_config.json", "{}", NULL};
    char *dir = make_dir(none);
    CHECK(il_wordpiece_load(dir) == NULL);
    CHECK(strstr(il_errmsg(), "vocab.txt") != NULL);
    remove_dir(dir);

    /* malformed tokenizer_config.json, wrong field types, vocab without [UNK] */
    static const char *const cases[][4] = {
        {"[UNK]\n[CLS]\n[SEP]\n", "{\"do_lower_case\": tru", "tokenizer_config.json", "malformed"},
        {"[UNK]\n[CLS]\n[SEP]\n", "{\"do_lower_case\": 1}", "do_lower_case", "expected"},
        {"[UNK]\n[CLS]\n[SEP]\n", "{\"never_split\": [1]}", "never_split", "strings"},
        {"[UNK]\n[CLS]\n[SEP]\n", "{\"unk_token\": 5}", "unk_token", "string"},
        {"a\nb\n", "{}", "vocab.txt", "[UNK]"},
        {"[UNK]\n\xff\n", "{}", "vocab.txt", "line 2"},
        {"", "{}", "vocab.txt", "empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *files[] = {"vocab.txt", cases[i][0], "tokenizer_config.json", cases[i][1], NULL};
        dir = make_dir(files);
        il_wordpiece *w = il_wordpiece_load(dir);
        CHECK_MSG(w == NULL, "case %zu loaded", i);
        CHECK_MSG(strstr(il_errmsg(), cases[i][2]) && strstr(il_errmsg(), cases[i][3]),
                  "case %zu: %s", i, il_errmsg());
        il_wordpiece_free(w);
        remove_dir(dir);
    }

    /* vocab.txt with \r\n and \r line ends: ids are line numbers all the same */
    const char *crlf[] = {"vocab.txt", "[UNK]\r\n[CLS]\r[SEP]\nab\r\n##c", NULL};
    dir = make_dir(crlf);
    il_wordpiece *w = il_wordpiece_load(dir);
    CHECK_MSG(w != NULL, "%s", il_errmsg());
    if (w) {
        CHECK_EQ_INT(il_wordpiece_vocab_size(w), 5 + 2); /* + [PAD], [MASK] appended */
        CHECK_EQ_INT(il_wordpiece_token_to_id(w, "##c"), 4);
        char *s = tokenize_joined(w, "ABC");
        CHECK_STR(s, "ab ##c");
        free(s);
        il_wordpiece_free(w);
    }
    remove_dir(dir);
}

int main(void) {
    il_wordpiece *t = il_wordpiece_load(BERT_DIR);
    CHECK_MSG(t != NULL, "%s", il_errmsg());
    if (!t) TEST_END();
    CHECK_EQ_INT(il_wordpiece_vocab_size(t), 1454);
    CHECK_EQ_INT(il_wordpiece_cls_id(t), 2);
    CHECK_EQ_INT(il_wordpiece_sep_id(t), 3);
    CHECK_EQ_INT(il_wordpiece_pad_id(t), 0);
    CHECK_EQ_INT(il_wordpiece_unk_id(t), 1);
    CHECK_EQ_INT(il_wordpiece_model_max_length(t), 128);
    CHECK(il_wordpiece_is_special(t, 4) && !il_wordpiece_is_special(t, 5));
    test_goldens(t);
    test_b14(t);
    test_b15(t);
    test_cased_config();
    test_py_lower();
    test_errors(t);
    il_wordpiece_free(t);
    TEST_END();
}
