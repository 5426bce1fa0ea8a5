/* test_api.c - the public header compiles as C on its own and its functions give the
 * golden answers (tests/golden/t5-tiny/forward.json). Includes only ilora.h. */
#include "ilora.h"

#include <stdlib.h>

#include "check.h"

int main(void) {
    CHECK(ilora_model_load(TEST_DATA "/golden/does-not-exist") == NULL);
    CHECK(strstr(ilora_last_error(), "does-not-exist") != NULL);

    ilora_model *m = ilora_model_load(TEST_DATA "/golden/t5-tiny");
    CHECK(m != NULL);
    if (!m) { fprintf(stderr, "%s\n", ilora_last_error()); TEST_END(); }

    int32_t *ids;
    int n;
    CHECK(ilora_tokenize(m, "hello</s>world", &ids, &n) == 0);
    const int32_t want_ids[] = {196, 52, 658, 1, 264, 118, 792, 1};
    CHECK_EQ_INT(n, 8);
    for (int i = 0; i < n && i < 8; i++) CHECK_EQ_INT(ids[i], want_ids[i]);
    ilora_free_ids(ids);

    const char *q[] = {"Is the following sentence plausible? \"Luke Voit was out at first.\"",
                       "((5 + 4 - -1 * -1) + (-6 - -7 + -1 * 6)) ="};
    char *out[2];
    bool trunc[2];
    ilora_gen_params p = ilora_gen_default_params();
    p.max_new_tokens = 24;
    CHECK(ilora_generate_ex(m, 2, q, &p, out, trunc) == 0);
    CHECK_STR(out[0], "Tower error onionischeceptoff either fruits leash");
    CHECK(!trunc[0]);
    ilora_free_string(out[0]);
    ilora_free_string(out[1]);

    const char *in[] = {"Is the following sentence plausible? \"Luke Voit was out at first.\""};
    const char *target[] = {"yes"};
    float per[1];
    double mean;
    CHECK(ilora_loss(m, 1, in, target, per, &mean) == 0);
    CHECK_NEAR(per[0], 11.407636642456055, 1e-4);
    CHECK_NEAR(mean, 11.407636642456055, 1e-4);

    CHECK(ilora_tokenize(m, "\xff\xfe", &ids, &n) == -1);
    CHECK(strstr(ilora_last_error(), "UTF-8") != NULL);
    ilora_model_free(m);
    TEST_END();
}
