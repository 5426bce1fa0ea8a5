/* check.h - the test harness: CHECK* macros count failures with file:line and
 * test_main() returns a non-zero exit code when any check failed (CTest reads it).
 * Tests find their data under TEST_DATA ("<repo>/tests"). */
#ifndef ILORA_CHECK_H
#define ILORA_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ILORA_TEST_DATA
#define ILORA_TEST_DATA "tests"
#endif
#define TEST_DATA ILORA_TEST_DATA

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond) do { check_count++; if (!(cond)) { check_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)

#define CHECK_MSG(cond, ...) do { check_count++; if (!(cond)) { check_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

#define CHECK_EQ_INT(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); check_count++; \
    if (a_ != b_) { check_failures++; fprintf(stderr, "%s:%d: %s == %s failed: %lld vs %lld\n", \
    __FILE__, __LINE__, #a, #b, a_, b_); } } while (0)

#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); check_count++; \
    if (!a_ || !b_ || strcmp(a_, b_) != 0) { check_failures++; \
    fprintf(stderr, "%s:%d: %s == %s failed:\n  got  [%s]\n  want [%s]\n", __FILE__, __LINE__, \
    #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } } while (0)

#define CHECK_NEAR(a, b, atol) do { double a_ = (a), b_ = (b); check_count++; \
    if (!(fabs(a_ - b_) <= (atol))) { check_failures++; \
    fprintf(stderr, "%s:%d: |%s - %s| <= %g failed: %.9g vs %.9g\n", __FILE__, __LINE__, \
    #a, #b, (double)(atol), a_, b_); } } while (0)

/* Max |a-b| over n floats; checks it against atol and reports the worst index. */
static inline double check_max_abs_diff(const float *a, const float *b, size_t n, size_t *worst) {
    double m = 0; size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) { m = d; w = i; }  /* NaN counts as worst */
        if (d != d) { m = INFINITY; w = i; break; }
    }
    if (worst) *worst = w;
    return m;
}

#define CHECK_ARRAY_NEAR(a, b, n, atol, what) do { size_t w_; \
    double d_ = check_max_abs_diff((a), (b), (n), &w_); check_count++; \
    if (!(d_ <= (atol))) { check_failures++; \
    fprintf(stderr, "%s:%d: %s: max abs diff %.3g > %g at [%zu] (%.9g vs %.9g)\n", __FILE__, \
    __LINE__, (what), d_, (double)(atol), w_, (double)(a)[w_], (double)(b)[w_]); } } while (0)

#define TEST_END() do { \
    if (check_failures) { fprintf(stderr, "%d of %d checks failed\n", check_failures, check_count); \
    return 1; } \
    if (check_count == 0) { fprintf(stderr, "no checks ran\n"); return 1; } \
    printf("%d checks passed\n", check_count); return 0; } while (0)

#endif
