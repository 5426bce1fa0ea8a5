/* test_eval.c - BBH scoring: normalisation, the seeded split, the tables, and the data
 * quirks of tests/../data/bbh (BBH-QUIRKS.md; case B29). */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "bbh.h"
#include "check.h"
#include "eval.h"

#define BBH TEST_DATA "/../data/bbh/"

static void test_normalize(void) {
    const char *pairs[][2] = {
        {"  Yes. ", "yes"}, {"(A)", "(a)"}, {"\xc2\xa0no\xc2\xa0", "no"}, {"a.b.c", "abc"},
        {"] ]", "] ]"}, {"-39960", "-39960"}, {"Monsters, Inc", "monsters, inc"}, {"", ""},
        {"\t\n", ""}, {"\xc3\x89T\xc3\x89", "\xc3\xa9t\xc3\xa9"} /* Unicode lower() */,
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char *n = il_eval_normalize(pairs[i][0]);
        CHECK_STR(n, pairs[i][1]);
        free(n);
    }
    CHECK(il_eval_match("Valid", "valid"));
    CHECK(!il_eval_match("invalid", "valid")); /* whole-string, never a substring test */
    CHECK(!il_eval_match("]]", "] ]"));        /* spaces in Dyck answers matter */
    CHECK(il_eval_match(" (B).", "(B)"));
    CHECK(il_eval_match("YES", "yes"));
}

static void test_split(void) {
    int shots[5], q[250], nq, shots2[5], q2[250], nq2;
    CHECK(il_eval_split(250, 5, 42, 0, shots, q, &nq) == 0);
    CHECK_EQ_INT(nq, 245);
    int seen[250] = {0};
    for (int i = 0; i < 5; i++) seen[shots[i]]++;
    for (int i = 0; i < nq; i++) seen[q[i]]++;
    int perm = 1;
    for (int i = 0; i < 250; i++) perm &= seen[i] == 1;
    CHECK(perm); /* shots and questions partition the examples */
    CHECK(il_eval_split(250, 5, 42, 0, shots2, q2, &nq2) == 0);
    CHECK(memcmp(shots, shots2, sizeof shots) == 0 && memcmp(q, q2, sizeof(int) * 245) == 0);
    CHECK(il_eval_split(250, 5, 43, 0, shots2, q2, &nq2) == 0);
    CHECK(memcmp(shots, shots2, sizeof shots) != 0);
    CHECK(il_eval_split(250, 5, 42, 10, shots2, q2, &nq2) == 0);
    CHECK_EQ_INT(nq2, 10);
    CHECK(memcmp(q, q2, sizeof(int) * 10) == 0); /* a cap keeps the same first questions */
    CHECK(il_eval_split(5, 5, 1, 0, shots, q, &nq) == -1);
    CHECK(strstr(il_errmsg(), "5 shots from 5 examples") != NULL);
}

static void test_bbh_quirks(void) {
    il_bbh_task t;
    CHECK(il_bbh_load(&t, BBH "causal_judgement.json") == 0);
    CHECK_EQ_INT(t.n, 187);
    /* Items 32/119 and 36/104: the same input with opposite targets. Keyed by index, a
     * perfect predictor scores 187/187 (keyed by input text it could reach only 185). */
    CHECK_STR(t.input[32], t.input[119]);
    CHECK(strcmp(t.target[32], t.target[119]) != 0);
    CHECK_STR(t.input[36], t.input[104]);
    CHECK(strcmp(t.target[36], t.target[104]) != 0);
    int correct = 0;
    for (int i = 0; i < t.n; i++) correct += il_eval_match(t.target[i], t.target[i]);
    CHECK_EQ_INT(correct, 187);
    il_bbh_free(&t);

    CHECK(il_bbh_load(&t, BBH "movie_recommendation.json") == 0);
    CHECK_EQ_INT(t.n, 250);
    int free_text = 0;
    for (int i = 0; i < t.n; i++) free_text += !strcmp(t.target[i], "Monsters, Inc");
    CHECK_EQ_INT(free_text, 1);
    il_bbh_free(&t);

    CHECK(il_bbh_load(&t, BBH "ruin_names.json") == 0);
    CHECK_EQ_INT(t.n, 250);
    int odd = 0;
    for (int i = 0; i < t.n; i++)
        odd += !strcmp(t.target[i], "dearth, wind, & fire") || !strcmp(t.target[i], "rita, sue and bob poo");
    CHECK_EQ_INT(odd, 2);
    il_bbh_free(&t);

    /* All 27 files, 6511 examples; the canary is never an example. */
    const char *files[] = {"boolean_expressions", "causal_judgement", "date_understanding",
        "disambiguation_qa", "dyck_languages", "formal_fallacies", "geometric_shapes", "hyperbaton",
        "logical_deduction_five_objects", "logical_deduction_seven_objects",
        "logical_deduction_three_objects", "movie_recommendation", "multistep_arithmetic_two",
        "navigate", "object_counting", "penguins_in_a_table", "reasoning_about_colored_objects",
        "ruin_names", "salient_translation_error_detection", "snarks", "sports_understanding",
        "temporal_sequences", "tracking_shuffled_objects_five_objects",
        "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects",
        "web_of_lies", "word_sorting"};
    int total = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, BBH "%s.json", files[i]);
        CHECK_MSG(il_bbh_load(&t, path) == 0, "%s: %s", files[i], il_errmsg());
        total += t.n;
        for (int k = 0; k < t.n; k++) CHECK(strstr(t.input[k], "canary GUID") == NULL);
        il_bbh_free(&t);
    }
    CHECK_EQ_INT(total, 6511);
}

static void test_bad_task_files(void) {
    char dir[] = "/tmp/ilora-eval-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *cases[][2] = {
        {"{\"canary\": \"x\", \"examples\": []}", "empty task"},
        {"{\"examples\": [{\"input\": \"a\"}]}", "examples[0]: field 'target': missing"},
        {"{\"examples\": [{\"input\": \"a\", \"target\": 3}]}", "expected a string"},
        {"{\"examples\": [", "not a JSON object"},
        {"[1, 2]", "not a JSON object"},
        {"{\"examples\": [{\"input\": \"caf\xe9\", \"target\": \"x\"}]}", "invalid UTF-8"},
        {"{\"examples\": [{\"input\": \"a\\u0000b\", \"target\": \"x\"}]}", "NUL character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/task%zu.json", dir, i);
        FILE *f = fopen(path, "wb");
        fputs(cases[i][0], f);
        fclose(f);
        il_bbh_task t;
        CHECK(il_bbh_load(&t, path) == -1);
        CHECK_MSG(strstr(il_errmsg(), cases[i][1]) && strstr(il_errmsg(), path), "%s", il_errmsg());
        remove(path);
    }
    rmdir(dir);
}

static void test_tables(void) {
    const char *tasks[] = {"t1", "t2", "t3"}, *methods[] = {"zeroshot", "ilora"};
    il_eval_table t;
    CHECK(il_eval_table_init(&t, 3, tasks, 2, methods) == 0);
    /* t1: 50% vs 75%; t2: 5% vs 8% (every method < 10%); t3: 20% vs 20%. */
    int c[] = {2, 3, 1, 2, 1, 1}, n[] = {4, 4, 20, 25, 5, 5};
    memcpy(t.correct, c, sizeof c);
    memcpy(t.total, n, sizeof n);
    double avg[2], avgf[2];
    int kept;
    il_eval_averages(&t, avg, avgf, &kept);
    CHECK_NEAR(avg[0], (50 + 5 + 20) / 3.0, 1e-9);
    CHECK_NEAR(avg[1], (75 + 8 + 20) / 3.0, 1e-9);
    CHECK_EQ_INT(kept, 2);
    CHECK_NEAR(avgf[0], 35.0, 1e-9);
    CHECK_NEAR(avgf[1], 47.5, 1e-9);
    int w, ti, l;
    il_eval_win_loss(&t, 1, 0, &w, &ti, &l);
    CHECK(w == 2 && ti == 1 && l == 0);
    char *md = il_eval_markdown(&t);
    CHECK(md && strstr(md, "| t1 | 50.0 | 75.0 |") && strstr(md, "| zeroshot | 2 | 1 | 0 |"));
    free(md);
    char dir[] = "/tmp/ilora-eval-XXXXXX", path[600];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/scores.csv", dir);
    CHECK(il_eval_write_csv(&t, path) == 0);
    char *csv = il_read_file(path, NULL);
    CHECK(csv && strstr(csv, "t2,ilora,2,25,8.0000\n"));
    free(csv);
    remove(path);
    snprintf(path, sizeof path, "%s/scores.json", dir);
    CHECK(il_eval_write_json(&t, path, "{\"seed\": 1}") == 0);
    char *js = il_read_file(path, NULL);
    CHECK(js && strstr(js, "\"tasks_kept_for_filtered_average\": 2"));
    free(js);
    remove(path);
    rmdir(dir);
    il_eval_table_free(&t);
}

int main(void) {
    test_normalize();
    test_split();
    test_bbh_quirks();
    test_bad_task_files();
    test_tables();
    TEST_END();
}
