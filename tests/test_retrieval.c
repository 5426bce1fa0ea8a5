/* test_retrieval.c - similarity scores, top-N order (descending, ties by index, N larger
 * than the candidates is an error) and BM25 against hand-computed values. */
#include <math.h>

#include "check.h"
#include "retrieval.h"

static void test_top_n(void) {
    /* Highest first; the tie between 1 and 3 keeps the lower index first. */
    const float s[] = {0.1f, 0.9f, -0.5f, 0.9f, 0.3f};
    int out[5];
    CHECK(il_top_n(s, 5, 5, out) == 0);
    const int want[] = {1, 3, 4, 0, 2};
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(out[i], want[i]);
    CHECK(il_top_n(s, 5, 2, out) == 0);
    CHECK_EQ_INT(out[0], 1);
    CHECK_EQ_INT(out[1], 3);
    /* N larger than the library is an error naming both numbers. */
    CHECK(il_top_n(s, 5, 6, out) == -1);
    CHECK(strstr(il_errmsg(), "N = 6") && strstr(il_errmsg(), "5 candidates"));
    CHECK(il_top_n(s, 5, 0, out) == -1);
    /* NaN ranks last. */
    const float t[] = {NAN, 0.2f, 0.1f};
    CHECK(il_top_n(t, 3, 3, out) == 0);
    CHECK_EQ_INT(out[0], 1);
    CHECK_EQ_INT(out[2], 0);
}

static void test_vectors(void) {
    const float q[] = {1, 0};
    const float lib[] = {0, 1, /* orthogonal */ 2, 0, /* same direction, far */ 0.9f, 0.1f};
    float s[3];
    int out[3];
    il_vector_scores(IL_SIM_COSINE, q, lib, 3, 2, s);
    CHECK_NEAR(s[0], 0.0, 1e-7);
    CHECK_NEAR(s[1], 1.0, 1e-7);
    CHECK_NEAR(s[2], 0.9 / sqrt(0.82), 1e-6);
    CHECK(il_top_n(s, 3, 3, out) == 0);
    CHECK_EQ_INT(out[0], 1); /* cosine ignores length */
    il_vector_scores(IL_SIM_L2, q, lib, 3, 2, s);
    CHECK_NEAR(s[1], -1.0, 1e-7);
    CHECK_NEAR(s[2], -sqrt(0.02), 1e-6);
    CHECK(il_top_n(s, 3, 3, out) == 0);
    CHECK_EQ_INT(out[0], 2); /* L2 prefers the near vector */
    const float zero[] = {0, 0};
    CHECK_NEAR(il_cosine(zero, q, 2), 0.0, 0);
    il_similarity sim;
    CHECK(il_similarity_parse("bm25", &sim) == 0 && sim == IL_SIM_BM25);
    CHECK(il_similarity_parse("dot", &sim) == -1);
    CHECK(strstr(il_errmsg(), "cosine") != NULL);
}

static void test_bm25(void) {
    const char *docs[] = {"the cat sat on the mat", "dogs and cats", "The CAT, the cat!"};
    il_bm25 *b = il_bm25_build(3, docs);
    CHECK(b != NULL);
    if (!b) return;
    float s[3];
    CHECK(il_bm25_scores(b, "cat", s) == 0);
    /* df(cat) = 2 of N = 3: idf = ln(1 + 1.5/2.5); lengths 6, 3, 4 (avg 13/3). */
    double idf = log(1 + 1.5 / 2.5), avg = 13.0 / 3;
    double s0 = idf * 1 * 2.5 / (1 + 1.5 * (0.25 + 0.75 * 6 / avg));
    double s2 = idf * 2 * 2.5 / (2 + 1.5 * (0.25 + 0.75 * 4 / avg));
    CHECK_NEAR(s[0], s0, 1e-5);
    CHECK_NEAR(s[1], 0.0, 0); /* "cats" is a different term */
    CHECK_NEAR(s[2], s2, 1e-5);
    int out[3];
    CHECK(il_top_n(s, 3, 3, out) == 0);
    CHECK_EQ_INT(out[0], 2);
    CHECK(il_bm25_scores(b, "zebra", s) == 0);
    CHECK_NEAR(s[0] + s[1] + s[2], 0.0, 0);
    CHECK(il_bm25_scores(b, "caf\xe9", s) == -1); /* invalid UTF-8 */
    il_bm25_free(b);
    /* Unicode: accents and case fold together ("Éclair" matches "éclair"). */
    const char *d2[] = {"un éclair", "a cake"};
    b = il_bm25_build(2, d2);
    CHECK(b && il_bm25_scores(b, "ÉCLAIR", s) == 0 && s[0] > 0 && s[1] == 0);
    il_bm25_free(b);
}

int main(void) {
    test_top_n();
    test_vectors();
    test_bm25();
    TEST_END();
}
