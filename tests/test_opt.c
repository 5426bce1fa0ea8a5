/* test_opt.c - the optimisers (src/opt.h): COBYLA against the nevergrad/NLopt goldens,
 * every method on sphere / Rosenbrock / Rastrigin, reproducibility (B27), the box, bad
 * parameters, the ask/tell protocol, non-finite values and freeing mid-run. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "opt.h"
#include "util.h"

#define MAXD 100
#define MAXEVAL 2000

/* ---- objectives ---- */

typedef struct {
    const char *kind; /* "weighted_sq", "sphere", "rosenbrock", "rastrigin" */
    int dim;
    double target[MAXD], coef[MAXD], l1;
    int nan_above; /* nonzero: the value is NaN wherever w[0] > 0.2 */
} objective;

/* The goldens' objective: sum_i coef_i (w_i - target_i)^2 + l1 * mean_i |w_i|. */
static double weighted_sq(const objective *ob, const double *w) {
    double s = 0, a = 0;
    for (int i = 0; i < ob->dim; i++) {
        double e = w[i] - ob->target[i];
        s += ob->coef[i] * e * e;
        a += fabs(w[i]);
    }
    return s + ob->l1 * (a / ob->dim);
}

/* Rosenbrock shifted so that its optimum (1, ..., 1) sits at w = target (inside the box). */
static double rosenbrock(const objective *ob, const double *w) {
    double s = 0;
    for (int i = 0; i + 1 < ob->dim; i++) {
        double zi = w[i] - ob->target[i] + 1, zn = w[i + 1] - ob->target[i + 1] + 1;
        s += 100 * (zn - zi * zi) * (zn - zi * zi) + (1 - zi) * (1 - zi);
    }
    return s;
}

/* Rastrigin with its global optimum at w = target; local minima one unit apart. */
static double rastrigin(const objective *ob, const double *w) {
    double s = 10.0 * ob->dim;
    for (int i = 0; i < ob->dim; i++) {
        double z = w[i] - ob->target[i];
        s += z * z - 10 * cos(2 * M_PI * z);
    }
    return s;
}

static double evaluate(const objective *ob, const double *w) {
    if (ob->nan_above && w[0] > 0.2) return NAN;
    if (strcmp(ob->kind, "rosenbrock") == 0) return rosenbrock(ob, w);
    if (strcmp(ob->kind, "rastrigin") == 0) return rastrigin(ob, w);
    return weighted_sq(ob, w); /* "sphere" has coef 1, l1 0 */
}

static objective make_bench(const char *kind, int dim) {
    objective ob = {.kind = kind, .dim = dim};
    for (int i = 0; i < dim; i++) {
        ob.coef[i] = 1;
        ob.target[i] = 0.8 * sin(1.0 + 2.0 * i); /* in (-0.8, 0.8): inside [-1.5, 1.5] */
    }
    if (strcmp(kind, "rosenbrock") == 0)
        for (int i = 0; i < dim; i++) ob.target[i] = 0.5;
    if (strcmp(kind, "rastrigin") == 0)
        for (int i = 0; i < dim; i++) ob.target[i] = 0.3 * (i % 2 ? 1 : -1);
    return ob;
}

/* ---- a full ask/tell run, recorded ---- */

typedef struct {
    int evals, asks, first_k, max_k, out_of_box, rc;
    double cands[MAXEVAL][MAXD];
    double values[MAXEVAL];
    double best_w[MAXD], best_v;
} run_log;

static run_log logbuf[3]; /* static: too large for the stack */

/* Runs p to completion on ob with batches of at most max_n; returns log (rc -1 on error). */
static run_log *run(run_log *L, const il_opt_params *p, const objective *ob, int max_n) {
    memset(L, 0, sizeof *L);
    L->rc = -1;
    il_opt *o = il_opt_new(p);
    if (!o) {
        fprintf(stderr, "il_opt_new: %s\n", il_errmsg());
        return L;
    }
    double *cands = calloc((size_t)max_n * p->dim, sizeof(double));
    double *vals = calloc((size_t)max_n, sizeof(double));
    int k;
    while ((k = il_opt_ask(o, cands, max_n)) > 0) {
        if (L->asks++ == 0) L->first_k = k;
        if (k > L->max_k) L->max_k = k;
        for (int j = 0; j < k; j++) {
            const double *w = cands + (size_t)j * p->dim;
            for (int i = 0; i < p->dim; i++) L->out_of_box += !(w[i] >= p->lo && w[i] <= p->hi);
            vals[j] = evaluate(ob, w);
            if (L->evals < MAXEVAL) {
                memcpy(L->cands[L->evals], w, (size_t)p->dim * sizeof(double));
                L->values[L->evals] = vals[j];
            }
            L->evals++;
        }
        if (il_opt_tell(o, vals) != 0) break;
    }
    if (k == 0 && il_opt_best(o, L->best_w, &L->best_v) == 0 &&
        il_opt_evaluations(o) == L->evals)
        L->rc = 0;
    if (L->rc) fprintf(stderr, "run failed: %s\n", il_errmsg());
    free(cands);
    free(vals);
    il_opt_free(o);
    return L;
}

static il_opt_params params(const char *name, int dim, int budget, uint64_t seed) {
    return (il_opt_params){.name = name, .dim = dim, .lo = -1.5, .hi = 1.5, .budget = budget,
                           .seed = seed};
}

/* ---- goldens ---- */

static int json_doubles(const cJSON *arr, double *out, int n) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n) return -1;
    for (int i = 0; i < n; i++) out[i] = cJSON_GetArrayItem(arr, i)->valuedouble;
    return 0;
}

static double max_point_diff(const double *w, const cJSON *pt, int dim) {
    double ref[MAXD], m = 0;
    if (json_doubles(pt, ref, dim) != 0) return INFINITY;
    for (int i = 0; i < dim; i++) m = fmax(m, fabs(w[i] - ref[i]));
    return m;
}

/* LoraHub's setting (box [-1.5, 1.5], start 0, budget 40) on one golden trace: our evaluated
 * weights must be NLopt's for all 40 evaluations, and nevergrad's (scipy's COBYLA) for the
 * first nlopt_identical_prefix ones. */
static void golden_trace(const cJSON *tr) {
    const char *name = cJSON_GetObjectItem(tr, "name")->valuestring;
    const cJSON *obj = cJSON_GetObjectItem(tr, "objective");
    objective ob = {.kind = "weighted_sq", .dim = cJSON_GetObjectItem(tr, "dim")->valueint};
    CHECK(ob.dim >= 1 && ob.dim <= MAXD);
    if (ob.dim < 1 || ob.dim > MAXD) return;
    CHECK(json_doubles(cJSON_GetObjectItem(obj, "target"), ob.target, ob.dim) == 0);
    CHECK(json_doubles(cJSON_GetObjectItem(obj, "coef"), ob.coef, ob.dim) == 0);
    ob.l1 = cJSON_GetObjectItem(obj, "l1")->valuedouble;
    const cJSON *nl_pts = cJSON_GetObjectItem(tr, "nlopt_cobyla_points");
    const cJSON *nl_vals = cJSON_GetObjectItem(tr, "nlopt_cobyla_values");
    const cJSON *ng_pts = cJSON_GetObjectItem(tr, "ngopt_points");
    int prefix = cJSON_GetObjectItem(tr, "nlopt_identical_prefix")->valueint;
    double ng_best = cJSON_GetObjectItem(tr, "ngopt_best_value")->valuedouble;

    il_opt_params p = params(NULL, ob.dim, 40, 0); /* NULL name: the default, cobyla */
    run_log *L = run(&logbuf[0], &p, &ob, 64);
    CHECK_EQ_INT(L->rc, 0);
    CHECK_EQ_INT(L->evals, 40);
    CHECK_EQ_INT(L->max_k, 1); /* COBYLA is sequential, see opt_cobyla.c */
    double nl_diff = 0, ng_diff = 0, val_diff = 0, nl_best = INFINITY;
    int same_as_ng = 0;
    for (int e = 0; e < 40 && e < L->evals; e++) {
        nl_diff = fmax(nl_diff, max_point_diff(L->cands[e], cJSON_GetArrayItem(nl_pts, e), ob.dim));
        double ng = max_point_diff(L->cands[e], cJSON_GetArrayItem(ng_pts, e), ob.dim);
        if (e < prefix) ng_diff = fmax(ng_diff, ng);
        if (ng <= 1e-9 && same_as_ng == e) same_as_ng++;
        double ref = cJSON_GetArrayItem(nl_vals, e)->valuedouble;
        val_diff = fmax(val_diff, fabs(L->values[e] - ref) / fmax(1, fabs(ref)));
        nl_best = fmin(nl_best, ref);
    }
    printf("golden %-10s points vs NLopt max|diff| %.2g, vs nevergrad (first %d) %.2g, "
           "identical to nevergrad for %d evals; best %.10g (NLopt %.10g), nevergrad %.10g "
           "(ours %+.2f%%)\n",
           name, nl_diff, prefix, ng_diff, same_as_ng, L->best_v, nl_best, ng_best,
           100 * (L->best_v - ng_best) / ng_best);
    CHECK_MSG(nl_diff <= 1e-9, "%s: points differ from NLopt's by %g", name, nl_diff);
    CHECK_MSG(ng_diff <= 1e-9, "%s: first %d points differ from nevergrad's by %g", name, prefix,
              ng_diff);
    CHECK_EQ_INT(same_as_ng, prefix); /* and the drift starts right after the prefix */
    CHECK_MSG(val_diff <= 1e-12, "%s: values differ from NLopt's (rel %g)", name, val_diff);
    CHECK_NEAR(L->best_v, nl_best, 1e-12 * fmax(1, fabs(nl_best)));
    /* Observed: +0.13% (sphere20), -1.17% (ill20_l1), -9.2% (sphere5_l1) against nevergrad's
     * best. Assert we are never more than 1% worse than what LoraHub gets. */
    CHECK_MSG(L->best_v <= ng_best * 1.01, "%s: best %g vs nevergrad %g", name, L->best_v, ng_best);
    /* The first evaluation is the start point, as in LoraHub. */
    for (int i = 0; i < ob.dim; i++) CHECK(L->cands[0][i] == 0.0);
}

static void test_goldens(void) {
    char *path = il_path_join(TEST_DATA, "golden/optimizer/ngopt-traces.json");
    size_t len;
    char *text = il_read_file(path, &len);
    CHECK_MSG(text != NULL, "%s", il_errmsg());
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK(root != NULL);
    const cJSON *traces = cJSON_GetObjectItem(root, "traces"), *tr;
    CHECK_EQ_INT(cJSON_GetArraySize(traces), 3);
    cJSON_ArrayForEach(tr, traces) golden_trace(tr);
    cJSON_Delete(root);
    free(text);
    free(path);
}

/* ---- benchmarks ---- */

/* Best values with the defaults, seed 1, box [-1.5, 1.5], start 0 (printed as "bench"):
 * start values sphere20 6.575, rosenbrock5 26, rastrigin10 131.8.
 *                 budget 40                   |   budget 400
 *  method    sphere20  rosen5  rastr10        |   sphere20  rosen5  rastr10
 *  cobyla    0.4389    4.054   19.35          |   9.92e-06  1.756   3.98
 *  cmaes     4.852     13.51   62.99          |   0.1684    1.059   8.717
 *  1+1-es    5.535     7.375   78.51          |   0.007434  1.203   14.27
 *  random    6.575     26      50.73          |   6.575     7.697   46.03
 * At budget 40, COBYLA's coordinate steps beat the population methods by far (CMA-ES gets
 * barely 3 generations of 12 in 20-D). Only "below the start" is asserted: the figures
 * depend on libm's last bits through the PRNG's Gaussian draws. */
static void test_benchmarks(void) {
    const char *kinds[] = {"sphere", "rosenbrock", "rastrigin"};
    const int dims[] = {20, 5, 10};
    const char *const *names = il_opt_names();
    for (int m = 0; names[m]; m++) {
        for (int b = 0; b < 2; b++) {
            int budget = b ? 400 : 40;
            printf("bench %-7s budget %3d:", names[m], budget);
            for (int f = 0; f < 3; f++) {
                objective ob = make_bench(kinds[f], dims[f]);
                double zero[MAXD] = {0}, start = evaluate(&ob, zero);
                il_opt_params p = params(names[m], dims[f], budget, 1);
                run_log *L = run(&logbuf[0], &p, &ob, 64);
                CHECK_EQ_INT(L->rc, 0);
                CHECK_EQ_INT(L->out_of_box, 0);
                CHECK(L->evals <= budget);
                printf("  %s%d %.4g -> %.4g", kinds[f], dims[f], start, L->best_v);
                /* Uniform samples in a 20-D box essentially never beat a start near the
                 * optimum (nor, in 40 tries, Rosenbrock's start); random search keeps x0 as
                 * its first sample, so only <= is promised. */
                if (strcmp(names[m], "random") == 0)
                    CHECK(L->best_v <= start);
                else
                    CHECK_MSG(L->best_v < start, "%s %s budget %d: %g !< %g", names[m], kinds[f],
                              budget, L->best_v, start);
            }
            printf("\n");
        }
    }
}

/* ---- B27: reproducibility ---- */

static void test_reproducible(void) {
    objective ob = make_bench("sphere", 8);
    const char *const *names = il_opt_names();
    for (int m = 0; names[m]; m++) {
        il_opt_params p42 = params(names[m], 8, 40, 42), p43 = params(names[m], 8, 40, 43);
        run_log *a = run(&logbuf[0], &p42, &ob, 7), *b = run(&logbuf[1], &p42, &ob, 7);
        run_log *c = run(&logbuf[2], &p43, &ob, 7);
        CHECK(a->rc == 0 && b->rc == 0 && c->rc == 0);
        CHECK_EQ_INT(a->evals, b->evals);
        CHECK(memcmp(a->cands, b->cands, sizeof a->cands) == 0);
        CHECK(memcmp(a->values, b->values, sizeof a->values) == 0);
        CHECK(memcmp(a->best_w, b->best_w, sizeof a->best_w) == 0 && a->best_v == b->best_v);
        int differs = memcmp(a->cands, c->cands, sizeof a->cands) != 0;
        /* COBYLA is deterministic by construction: the seed does not change its trajectory,
         * as in nevergrad. Every other method draws from the seeded PRNG. */
        if (strcmp(names[m], "cobyla") == 0)
            CHECK_MSG(!differs, "cobyla must ignore the seed");
        else
            CHECK_MSG(differs, "%s: seed 43 gave seed 42's trajectory", names[m]);
    }
    /* The batch size the caller allows does not change CMA-ES's trajectory. */
    il_opt_params p = params("cmaes", 8, 100, 42);
    run_log *a = run(&logbuf[0], &p, &ob, 1), *b = run(&logbuf[1], &p, &ob, 64);
    CHECK_EQ_INT(a->max_k, 1);
    CHECK_EQ_INT(b->max_k, 4 + (int)floor(3 * log(8.0))); /* lambda = 10 */
    CHECK_EQ_INT(a->evals, 100);
    CHECK(memcmp(a->cands, b->cands, sizeof a->cands) == 0);
}

/* ---- the box ---- */

static void test_box(void) {
    /* Optimum at (2.5, -2.5, 2.5, -2.5, 2.5), outside [-1.5, 1.5]: CMA-ES must settle on the
     * nearest corner (1.5, -1.5, ...), with every candidate inside the box. */
    objective ob = {.kind = "sphere", .dim = 5};
    for (int i = 0; i < 5; i++) {
        ob.coef[i] = 1;
        ob.target[i] = i % 2 ? -2.5 : 2.5;
    }
    const char *const *names = il_opt_names();
    for (int m = 0; names[m]; m++) {
        il_opt_params p = params(names[m], 5, 600, 7);
        run_log *L = run(&logbuf[0], &p, &ob, 64);
        CHECK_EQ_INT(L->rc, 0);
        CHECK_EQ_INT(L->out_of_box, 0);
        double dist = 0;
        for (int i = 0; i < 5; i++) dist = fmax(dist, fabs(L->best_w[i] - (i % 2 ? -1.5 : 1.5)));
        printf("box %-7s budget 600: best %.6g (optimum on the box 5.0), max |w - corner| %.3g\n",
               names[m], L->best_v, dist);
        if (strcmp(names[m], "cmaes") == 0) {
            /* Observed 1.4e-4 and 5.0006: the mirrored objective has a kink on the
             * boundary, so convergence there is linear but slower than on a smooth optimum. */
            CHECK_MSG(dist < 1e-3, "cmaes ends %g from the corner", dist);
            CHECK_NEAR(L->best_v, 5.0, 2e-3);
        }
    }
    /* An asymmetric box and a start off zero. */
    double x0[3] = {0.9, 0.1, 0.5};
    il_opt_params p = {.name = "cmaes", .dim = 3, .lo = 0.0, .hi = 1.0, .x0 = x0, .budget = 1000,
                       .seed = 3};
    objective ob2 = {.kind = "sphere", .dim = 3, .coef = {1, 1, 1}, .target = {-0.5, 0.25, 3}};
    run_log *L = run(&logbuf[0], &p, &ob2, 64);
    CHECK_EQ_INT(L->out_of_box, 0);
    CHECK_NEAR(L->best_w[0], 0.0, 1e-3);
    CHECK_NEAR(L->best_w[1], 0.25, 1e-3);
    CHECK_NEAR(L->best_w[2], 1.0, 1e-3);
    for (const char *const *n = il_opt_names(); *n; n++) {
        p.name = *n;
        L = run(&logbuf[0], &p, &ob2, 5);
        CHECK_EQ_INT(L->out_of_box, 0);
        CHECK(L->rc == 0);
    }
}

/* ---- bad parameters and protocol ---- */

static void expect_bad(il_opt_params p, const char *field) {
    il_opt *o = il_opt_new(&p);
    CHECK(o == NULL);
    CHECK_MSG(strstr(il_errmsg(), field) != NULL, "error \"%s\" does not name %s", il_errmsg(),
              field);
    il_opt_free(o);
}

static void test_bad_params(void) {
    il_opt_params ok = params("cmaes", 4, 40, 1), p;
    p = ok; p.dim = 0; expect_bad(p, "dim");
    p = ok; p.dim = -3; expect_bad(p, "dim");
    p = ok; p.budget = 0; expect_bad(p, "budget");
    p = ok; p.lo = 1; p.hi = 1; expect_bad(p, "lo/hi");
    p = ok; p.lo = 2; expect_bad(p, "lo/hi");
    p = ok; p.hi = INFINITY; expect_bad(p, "lo/hi");
    p = ok; p.lo = NAN; expect_bad(p, "lo/hi");
    p = ok; p.sigma0 = -1; expect_bad(p, "sigma0");
    p = ok; p.rhobeg = NAN; expect_bad(p, "rhobeg");
    double x0[4] = {0, 0, 1.6, 0};
    p = ok; p.x0 = x0; expect_bad(p, "x0[2]");
    x0[2] = NAN; expect_bad(p, "x0[2]");
    p = ok; p.lo = 0.5; expect_bad(p, "x0[0]"); /* NULL x0 = zeros, outside [0.5, 1.5] */
    p = ok; p.name = "ngopt"; expect_bad(p, "name");
    CHECK(strstr(il_errmsg(), "cobyla, cmaes, 1+1-es, random") != NULL);
    CHECK(il_opt_new(NULL) == NULL);
    p = ok; p.name = "CMAES";
    il_opt *o = il_opt_new(&p);
    CHECK(o != NULL);
    CHECK_STR(il_opt_name(o), "cmaes");
    il_opt_free(o);
    CHECK_STR(il_opt_names()[0], "cobyla");

    /* Protocol misuse is an error, not a crash. */
    for (const char *const *n = il_opt_names(); *n; n++) {
        p = ok; p.name = *n;
        o = il_opt_new(&p);
        double c[64 * 4], v[64] = {0};
        CHECK_EQ_INT(il_opt_tell(o, v), -1);    /* nothing asked */
        CHECK_EQ_INT(il_opt_best(o, NULL, NULL), -1);
        CHECK_EQ_INT(il_opt_ask(o, c, 0), -1);  /* max_n 0 */
        CHECK_EQ_INT(il_opt_ask(o, NULL, 4), -1);
        int k = il_opt_ask(o, c, 64);
        CHECK(k >= 1);
        CHECK_EQ_INT(il_opt_ask(o, c, 64), -1); /* previous ask not told */
        CHECK(strstr(il_errmsg(), "not told") != NULL);
        CHECK_EQ_INT(il_opt_tell(o, v), 0);
        CHECK_EQ_INT(il_opt_evaluations(o), k);
        il_opt_free(o);
    }
}

/* ---- budget, NaN, minimize, freeing mid-run ---- */

static int batch_objective(void *user, const double *cands, int k, int dim, double *values) {
    for (int j = 0; j < k; j++) values[j] = evaluate(user, cands + (size_t)j * dim);
    return 0;
}

static int nan_objective(void *user, const double *cands, int k, int dim, double *values) {
    for (int j = 0; j < k; j++) values[j] = NAN;
    return 0;
}

static int failing_objective(void *user, const double *cands, int k, int dim, double *values) {
    il_seterr("model exploded");
    return -1;
}

static void test_budget_nan_minimize(void) {
    objective ob = make_bench("sphere", 6);
    for (const char *const *n = il_opt_names(); *n; n++) {
        /* Budgets that do not divide into batches are met exactly. */
        for (int budget = 1; budget <= 23; budget += 11) {
            il_opt_params p = params(*n, 6, budget, 5);
            run_log *L = run(&logbuf[0], &p, &ob, 3);
            CHECK_EQ_INT(L->evals, budget);
            CHECK(L->max_k <= 3);
        }
        /* NaN wherever w[0] > 0.2: treated as worst, the best stays finite and w[0] <= 0.2. */
        objective nan_ob = ob;
        nan_ob.nan_above = 1;
        il_opt_params p = params(*n, 6, 120, 5);
        run_log *L = run(&logbuf[0], &p, &nan_ob, 16);
        int nans = 0;
        for (int e = 0; e < L->evals; e++) nans += isnan(L->values[e]);
        CHECK_EQ_INT(L->rc, 0);
        CHECK_EQ_INT(L->evals, 120);
        CHECK(isfinite(L->best_v) && L->best_w[0] <= 0.2);
        printf("nan     %-7s %3d NaN values of 120, best %.4g\n", *n, nans, L->best_v);

        /* il_opt_minimize = the manual loop; its trace is the values in order. */
        double trace[40], bw[6], bv;
        p = params(*n, 6, 40, 9);
        CHECK_EQ_INT(il_opt_minimize(&p, batch_objective, &ob, bw, &bv, trace), 0);
        L = run(&logbuf[0], &p, &ob, 40);
        CHECK(memcmp(trace, L->values, sizeof trace) == 0);
        CHECK(bv == L->best_v && memcmp(bw, L->best_w, sizeof bw) == 0);
        CHECK_EQ_INT(il_opt_minimize(&p, failing_objective, NULL, NULL, NULL, NULL), -1);
        CHECK(strstr(il_errmsg(), "model exploded") != NULL);
        /* Nothing but NaN: the run ends, but there is no recommendation. */
        CHECK_EQ_INT(il_opt_minimize(&p, nan_objective, NULL, NULL, NULL, trace), -1);
        CHECK(strstr(il_errmsg(), "no finite value") != NULL);
        p.dim = 0;
        CHECK_EQ_INT(il_opt_minimize(&p, batch_objective, &ob, NULL, NULL, NULL), -1);

        /* Freeing mid-run (LSan checks for leaks; cobyla must end its NLopt thread): after an
         * untold ask, after a tell, and before any ask. */
        p = params(*n, 6, 40, 9);
        for (int stop_at = 0; stop_at < 3; stop_at++) {
            il_opt *o = il_opt_new(&p);
            double c[16 * 6], v[16];
            for (int step = 0; step < 5; step++) {
                int k = il_opt_ask(o, c, 16);
                if (k <= 0 || (stop_at == 1 && step == 3)) break;
                for (int j = 0; j < k; j++) v[j] = evaluate(&ob, c + j * 6);
                il_opt_tell(o, v);
                if (stop_at == 2 && step == 2) break;
            }
            il_opt_free(o);
        }
        il_opt *o = il_opt_new(&p);
        il_opt_free(o);
    }
}

/* LoraHub at full size: 100 adapters, budget 40 < dim + 1, so COBYLA never leaves its
 * initial simplex: evaluation e >= 1 is the best point so far plus rhobeg (0.5) on weight
 * e - 1 alone - a greedy coordinate search, one forward pass at a time. CMA-ES spends the
 * same budget in batches of lambda = 17. */
static void test_lorahub_size(void) {
    objective ob = {.kind = "weighted_sq", .dim = 100, .l1 = 0.05};
    for (int i = 0; i < 100; i++) {
        ob.coef[i] = 1;
        ob.target[i] = 0.6 * sin(3.0 * i);
    }
    il_opt_params p = params("cobyla", 100, 40, 0);
    run_log *L = run(&logbuf[0], &p, &ob, 100);
    CHECK_EQ_INT(L->evals, 40);
    CHECK_EQ_INT(L->max_k, 1);
    double base[MAXD] = {0}, fbase = L->values[0];
    int greedy = 1;
    for (int e = 1; e < 40; e++) {
        for (int i = 0; i < 100; i++)
            greedy &= L->cands[e][i] == base[i] + (i == e - 1 ? 0.5 : 0.0);
        if (L->values[e] < fbase) {
            fbase = L->values[e];
            memcpy(base, L->cands[e], sizeof base);
        }
    }
    CHECK_MSG(greedy, "cobyla's first 40 points are not the greedy coordinate steps");
    CHECK(L->best_v == fbase);
    p.name = "cmaes";
    run_log *C = run(&logbuf[1], &p, &ob, 100);
    CHECK_EQ_INT(C->evals, 40);
    CHECK_EQ_INT(C->max_k, 17);
    printf("lorahub-size d=100 budget 40: start %.4g, cobyla %.4g, cmaes %.4g\n", L->values[0],
           L->best_v, C->best_v);
}

int main(void) {
    test_goldens();
    test_lorahub_size();
    test_benchmarks();
    test_reproducible();
    test_box();
    test_bad_params();
    test_budget_nan_minimize();
    TEST_END();
}
