/* test_world_tasks.c - the task universe of the synthetic world (world_tasks.h): counts,
 * held-out templates disjoint from upstream ones, every answer re-derived by an independent
 * checker (from the instance's parameters and, where cheap, from the input text), answer
 * formats in BBH's layouts, budgets, balance, determinism and the files. */
#include <ctype.h>
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "bbh.h"
#include "check.h"
#include "util.h"
#include "world_tasks.h"

#define N_EX 120        /* examples checked per family / held-out task */
#define MAX_IN_WORDS 60 /* the input budget (words as a proxy for tokens) */
#define MAX_OUT_WORDS 5

/* ---------- lexicon helpers (the test's own lookups) ---------- */

static int lex_index(const char *lex, const char *w) {
    int n;
    const char *const *l = il_world_lexicon(lex, &n);
    for (int i = 0; l && i < n; i++)
        if (!strcmp(l[i], w)) return i;
    return -1;
}

/* The other member of w's pair in a flattened pair lexicon; want_side -1 any, 0 w must be
 * first, 1 w must be second. */
static const char *pair_other(const char *lex, const char *w, int want_side) {
    int n;
    const char *const *l = il_world_lexicon(lex, &n);
    for (int i = 0; l && i < n; i++)
        if (!strcmp(l[i], w) && (want_side < 0 || i % 2 == want_side)) return l[i ^ 1];
    return NULL;
}

static int category_of(const char *w) {
    static const char *const cats[] = {"fruits", "vehicles", "animals", "colors"};
    int c = -1;
    for (int k = 0; k < 4; k++)
        if (lex_index(cats[k], w) >= 0) c = c < 0 ? k : 99; /* 99: ambiguous */
    return c;
}

static int in_order(const char *text, const char *const *w, int n) {
    const char *p = text;
    for (int i = 0; i < n; i++) {
        const char *q = strstr(p, w[i]);
        if (!q) return 0;
        p = q + strlen(w[i]);
    }
    return 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static void join_words(char *out, size_t cap, const char *const *w, int n) {
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", i ? " " : "", w[i]);
    }
}

/* Boolean expression by recursive descent over the rendered literals (independent of the
 * library's precedence code): or-expr := and-expr ("or" and-expr)*; and-expr := unary
 * ("and" unary)*; unary := "not" unary | True | False. */
typedef struct { const char **tok; int n, i, bad; } bparse;
static int b_unary(bparse *p) {
    if (p->i >= p->n) { p->bad = 1; return 0; }
    const char *t = p->tok[p->i++];
    if (!strcmp(t, "not")) return !b_unary(p);
    if (!strcmp(t, "True")) return 1;
    if (!strcmp(t, "False")) return 0;
    p->bad = 1;
    return 0;
}
static int b_and(bparse *p) {
    int v = b_unary(p);
    while (p->i < p->n && !strcmp(p->tok[p->i], "and")) { p->i++; int r = b_unary(p); v = v && r; }
    return v;
}
static int b_or(bparse *p) {
    int v = b_and(p);
    while (p->i < p->n && !strcmp(p->tok[p->i], "or")) { p->i++; int r = b_and(p); v = v || r; }
    return v;
}
static int eval_bool_params(const il_world_inst *in, int *bad) {
    const char *tok[16];
    int n = 0;
    for (int i = 0; i < in->n; i++) {
        if (i) tok[n++] = in->v[8 + i - 1] ? "or" : "and";
        if (in->v[4 + i]) tok[n++] = "not";
        tok[n++] = in->v[i] ? "True" : "False";
    }
    bparse p = {tok, n, 0, 0};
    int v = b_or(&p);
    *bad = p.bad || p.i != n;
    return v;
}

/* Height facts "X is taller than Y." / "Y is shorter than X." in the input: the first two
 * give the order (the conclusion of `deduce` comes after them). Returns 0 if unparsable;
 * rank[] maps the names w[0..2] to 0 (tallest) .. 2. */
static int parse_heights(const char *input, const il_world_inst *in, int rank[3]) {
    int hi[2], lo[2], nf = 0;
    for (const char *p = input; nf < 2 && *p; p++) {
        const char *tall = !strncmp(p, " is taller than ", 16) ? p : NULL;
        const char *shrt = !strncmp(p, " is shorter than ", 17) ? p : NULL;
        if (!tall && !shrt) continue;
        const char *a0 = p;
        while (a0 > input && isalpha((unsigned char)a0[-1])) a0--;
        const char *b0 = p + (tall ? 16 : 17), *b1 = b0;
        while (isalpha((unsigned char)*b1)) b1++;
        int ia = -1, ib = -1;
        for (int k = 0; k < 3; k++) {
            size_t l = strlen(in->w[k]);
            if ((size_t)(p - a0) == l && !strncmp(a0, in->w[k], l)) ia = k;
            if ((size_t)(b1 - b0) == l && !strncmp(b0, in->w[k], l)) ib = k;
        }
        if (ia < 0 || ib < 0) return 0;
        hi[nf] = tall ? ia : ib;
        lo[nf] = tall ? ib : ia;
        nf++;
    }
    if (nf != 2) return 0;
    for (int k = 0; k < 3; k++) { /* rank = number of people known to be taller (transitively) */
        int above = 0;
        for (int f = 0; f < 2; f++)
            if (lo[f] == k) {
                above++;
                for (int g = 0; g < 2; g++)
                    if (lo[g] == hi[f]) above++;
            }
        rank[k] = above;
    }
    return rank[0] + rank[1] + rank[2] == 3 && rank[0] != rank[1] && rank[1] != rank[2] && rank[0] != rank[2];
}

/* ---------- the independent checker ---------- */

/* Expected answer of an instance: bool -> "1"/"0", int -> decimal, word(s) -> text. Also
 * checks that the input says what the parameters say where that is cheap; returns 0 and
 * explains in why[] when it finds a problem. */
static int expected_answer(const il_world_inst *in, const char *input, char *out, size_t cap, char *why, size_t wcap) {
    const char *sk = il_world_skill_name(in->skill);
    const int *v = in->v;
    char buf[256];
    long num = 0;
    int b = -1, isnum = 0;
    out[0] = 0;
    why[0] = 0;
#define BAD(...) do { snprintf(why, wcap, __VA_ARGS__); return 0; } while (0)
#define HAS(s) (strstr(input, (s)) != NULL)
    if (!sk) BAD("no skill");
    if (!strcmp(sk, "num_compare")) {
        b = in->q ? v[0] < v[1] : v[0] > v[1];
        if (!(in->q ? (HAS("less") || HAS("smaller")) : (HAS("greater") || HAS("bigger")))) BAD("relation word");
    } else if (!strcmp(sk, "num_pick")) {
        isnum = 1;
        num = in->q ? (v[0] < v[1] ? v[0] : v[1]) : (v[0] > v[1] ? v[0] : v[1]);
        if (!(in->q ? (HAS("smaller") || HAS("lower")) : (HAS("larger") || HAS("higher")))) BAD("relation word");
    } else if (!strcmp(sk, "parity")) {
        b = (v[0] % 2 == 0) ? in->q == 0 : in->q == 1;
        if (!HAS(in->q ? "odd" : "even")) BAD("parity word");
    } else if (!strcmp(sk, "parity_name")) {
        snprintf(out, cap, "%s", v[0] % 2 ? "odd" : "even");
    } else if (!strcmp(sk, "add")) {
        isnum = 1, num = v[0] + v[1];
    } else if (!strcmp(sk, "sub")) {
        isnum = 1, num = v[0] - v[1];
    } else if (!strcmp(sk, "arith_chain")) {
        isnum = 1;
        num = v[0] + (v[3] ? -v[1] : v[1]) + (v[4] ? -v[2] : v[2]);
        snprintf(buf, sizeof buf, "%d %c %d %c %d", v[0], v[3] ? '-' : '+', v[1], v[4] ? '-' : '+', v[2]);
        if (!HAS(buf)) BAD("expression '%.120s' not in the input", buf);
    } else if (!strcmp(sk, "list_extreme") || !strcmp(sk, "max_parity")) {
        int mx = v[0], mn = v[0];
        for (int i = 1; i < in->n; i++) { if (v[i] > mx) mx = v[i]; if (v[i] < mn) mn = v[i]; }
        if (!strcmp(sk, "list_extreme")) {
            isnum = 1, num = in->q ? mn : mx;
            if (!HAS(in->q ? "smallest" : "largest")) BAD("extreme word");
        } else {
            b = (mx % 2 == 0) == (in->q == 0);
            if (!HAS(in->q ? "odd" : "even")) BAD("parity word");
        }
    } else if (!strcmp(sk, "increasing")) {
        b = 1;
        for (int i = 0; i + 1 < in->n; i++) b = b && v[i + 1] > v[i];
    } else if (!strcmp(sk, "sum_parity")) {
        b = ((v[0] + v[1]) % 2 == 0) == (in->q == 0);
        if (!HAS(in->q ? "odd" : "even")) BAD("parity word");
    } else if (!strcmp(sk, "sum_compare")) {
        b = v[0] + v[1] > v[2];
        if (v[0] + v[1] == v[2]) BAD("tie");
    } else if (!strcmp(sk, "member")) {
        b = 0;
        for (int i = 0; i < in->n; i++) b |= !strcmp(in->w[i], in->x);
        if (!in_order(input, in->w, in->n)) BAD("list order");
    } else if (!strcmp(sk, "count_word") || !strcmp(sk, "count_compare")) {
        int cx = 0, cy = 0;
        for (int i = 0; i < in->n; i++) { cx += !strcmp(in->w[i], in->x); cy += in->y && !strcmp(in->w[i], in->y); }
        if (!strcmp(sk, "count_word")) isnum = 1, num = cx;
        else b = cx > cy;
        if (!in_order(input, in->w, in->n)) BAD("list order");
    } else if (!strcmp(sk, "last_item")) {
        snprintf(out, cap, "%s", in->w[in->n - 1]);
        if (!in_order(input, in->w, in->n)) BAD("list order");
    } else if (!strcmp(sk, "sort_words") || !strcmp(sk, "reverse_words") || !strcmp(sk, "sort_last")) {
        const char *w[IL_WORLD_MAXV];
        for (int i = 0; i < in->n; i++) w[i] = in->w[i];
        if (!strcmp(sk, "reverse_words"))
            for (int i = 0; i < in->n; i++) w[i] = in->w[in->n - 1 - i];
        else
            qsort(w, (size_t)in->n, sizeof *w, cmp_str);
        if (!strcmp(sk, "sort_last")) snprintf(out, cap, "%s", w[in->n - 1]);
        else join_words(out, cap, w, in->n);
        if (!in_order(input, in->w, in->n)) BAD("list order");
    } else if (!strcmp(sk, "alpha_first")) {
        snprintf(out, cap, "%s", strcmp(in->w[0], in->w[1]) < 0 ? in->w[0] : in->w[1]);
    } else if (!strcmp(sk, "capital")) {
        b = isupper((unsigned char)in->spell[0]) != 0;
        if (strlen(in->spell) != strlen(in->x) || strcasecmp(in->spell, in->x)) BAD("spelling");
        snprintf(buf, sizeof buf, " %s ", in->spell);
        if (!HAS(buf)) BAD("word not in the input");
    } else if (!strcmp(sk, "bool_expr")) {
        int bad;
        b = eval_bool_params(in, &bad);
        if (bad) BAD("unparsable expression");
    } else if (!strcmp(sk, "negation")) {
        b = in->q ? v[0] != v[1] : v[0] == v[1];
        if (HAS(" not ") != (in->q != 0)) BAD("negation word");
    } else if (!strcmp(sk, "tallest") || !strcmp(sk, "deduce")) {
        int rank[3];
        if (!parse_heights(input, in, rank)) BAD("height facts unparsable");
        if (!strcmp(sk, "tallest")) {
            for (int k = 0; k < 3; k++)
                if (rank[k] == (in->q ? 2 : 0)) snprintf(out, cap, "%s", in->w[k]);
            if (!HAS(in->q ? "shortest" : "tallest")) BAD("extreme word");
        } else {
            int rx = -1, ry = -1;
            for (int k = 0; k < 3; k++) { if (in->x == in->w[k]) rx = rank[k]; if (in->y == in->w[k]) ry = rank[k]; }
            if (rx < 0 || ry < 0 || rx == ry) BAD("conclusion names");
            b = in->q ? rx > ry : rx < ry;
            snprintf(buf, sizeof buf, "%s is %s than %s.", in->x, in->q ? "shorter" : "taller", in->y);
            if (!HAS(buf)) BAD("conclusion '%.120s' not in the input", buf);
        }
    } else if (!strcmp(sk, "truth_chain")) {
        int t = v[0];
        for (int i = 1; i < in->n; i++) t = v[i] ? t : !t;
        b = t;
        snprintf(buf, sizeof buf, "%s is %s.", in->w[0], v[0] ? "honest" : "a liar");
        if (!HAS(buf)) BAD("first statement");
    } else if (!strcmp(sk, "steps")) {
        int s = 0;
        for (int i = 0; i < in->n; i++) {
            if (v[i] == 0 || v[i] < -5 || v[i] > 5) BAD("move %d", v[i]);
            s += v[i];
        }
        b = s == 0;
    } else if (!strcmp(sk, "dyck_close") || !strcmp(sk, "dyck_balanced")) {
        static const char *const br = "([{<)]}>";
        char seq[64] = "";
        int stack[32], sp = 0, ok = 1;
        for (int i = 0; i < in->n; i++) {
            int c = v[i];
            size_t l = strlen(seq);
            snprintf(seq + l, sizeof seq - l, "%s%c", i ? " " : "", br[c]);
            if (c < 4) stack[sp++] = c;
            else if (!sp || stack[--sp] != c - 4) ok = 0;
        }
        if (!HAS(seq)) BAD("brackets '%s' not in the input", seq);
        if (!strcmp(sk, "dyck_balanced")) {
            b = ok && sp == 0;
        } else {
            if (!ok) BAD("closer in an open-only sequence");
            for (int i = sp - 1; i >= 0; i--) {
                size_t l = strlen(out);
                snprintf(out + l, cap - l, "%s%c", i < sp - 1 ? " " : "", br[stack[i] + 4]);
            }
        }
    } else if (!strcmp(sk, "color_of") || !strcmp(sk, "color_check")) {
        /* read the colour from the text: "<object> is <colour>" */
        snprintf(buf, sizeof buf, "%s is ", in->x);
        const char *p = strstr(input, buf);
        if (!p) BAD("object '%s' not described", in->x);
        p += strlen(buf);
        size_t l = 0;
        while (isalpha((unsigned char)p[l])) l++;
        char col[32];
        snprintf(col, sizeof col, "%.*s", (int)l, p);
        if (lex_index("colors", col) < 0) BAD("'%s' is not a colour", col);
        if (!strcmp(sk, "color_of")) snprintf(out, cap, "%s", col);
        else b = !strcmp(col, in->y);
    } else if (!strcmp(sk, "position") || !strcmp(sk, "position_color")) {
        if (!in_order(input, in->w, 3)) BAD("row order");
        if (!strcmp(sk, "position")) {
            snprintf(out, cap, "%s", in->w[in->q]);
        } else {
            snprintf(out, cap, "%s", in->w[3 + in->q]);
            snprintf(buf, sizeof buf, "%s %s", in->w[3 + in->q], in->w[in->q]);
            if (!HAS(buf)) BAD("'%.120s' not in the input", buf);
        }
        static const char *const side[][2] = {{"left", "leftmost"}, {"middle", "middle"}, {"right", "rightmost"}};
        if (!HAS(side[in->q][0]) && !HAS(side[in->q][1])) BAD("side word");
    } else if (!strcmp(sk, "count_objects")) {
        isnum = 1;
        for (int i = 0; i < in->n; i++) {
            if (v[i] < 1 || v[i] > 3) BAD("quantity %d", v[i]);
            num += v[i];
        }
    } else if (!strcmp(sk, "swap")) {
        const char *holds[3] = {in->w[3], in->w[4], in->w[5]};
        for (int k = 0; k < in->n; k++) {
            const char *t = holds[v[2 * k]];
            holds[v[2 * k]] = holds[v[2 * k + 1]];
            holds[v[2 * k + 1]] = t;
        }
        snprintf(out, cap, "%s", holds[in->q]);
        if (in->x != in->w[in->q]) BAD("asked person");
    } else if (!strcmp(sk, "antonym") || !strcmp(sk, "synonym")) {
        const char *o = pair_other(!strcmp(sk, "antonym") ? "antonyms" : "synonyms", in->x, -1);
        if (!o) BAD("'%s' not in the lexicon", in->x);
        snprintf(out, cap, "%s", o);
    } else if (!strcmp(sk, "antonym_check")) {
        const char *o = pair_other("antonyms", in->x, -1);
        b = o && !strcmp(o, in->y);
    } else if (!strcmp(sk, "plural") || !strcmp(sk, "singular")) {
        const char *o = pair_other("plurals", in->x, !strcmp(sk, "plural") ? 0 : 1);
        if (!o) BAD("'%s' not in the lexicon", in->x);
        snprintf(out, cap, "%s", o);
    } else if (!strcmp(sk, "bigger_animal")) {
        int rx = lex_index("animals_by_size", in->x), ry = lex_index("animals_by_size", in->y);
        if (rx < 0 || ry < 0 || rx == ry) BAD("animals");
        snprintf(out, cap, "%s", (rx > ry) != (in->q != 0) ? in->x : in->y);
    } else if (!strcmp(sk, "day_shift")) {
        int nd;
        const char *const *days = il_world_lexicon("days", &nd);
        if (v[1] < 1 || v[1] > 3 || !HAS(days[v[0]])) BAD("day");
        snprintf(out, cap, "%s", days[(v[0] + v[1]) % nd]);
    } else if (!strcmp(sk, "category_pick") || !strcmp(sk, "odd_one_out")) {
        int hits = 0, count[4] = {0};
        for (int i = 0; i < in->n; i++) {
            int c = category_of(in->w[i]);
            if (c < 0 || c > 3) BAD("category of '%s'", in->w[i]);
            count[c]++;
        }
        for (int i = 0; i < in->n; i++) {
            int c = category_of(in->w[i]);
            int hit = !strcmp(sk, "category_pick") ? c == v[0] : count[c] == 1;
            if (hit) { hits++; snprintf(out, cap, "%s", in->w[i]); }
        }
        if (hits != 1) BAD("%d candidate answers", hits);
    } else if (!strcmp(sk, "category_check")) {
        int c = category_of(in->x);
        if (c < 0 || c > 3) BAD("category of '%s'", in->x);
        b = c == v[0];
    } else {
        BAD("no checker for skill '%s'", sk);
    }
    if (b >= 0) snprintf(out, cap, "%d", b);
    if (isnum) snprintf(out, cap, "%ld", num);
    if (!out[0]) BAD("no answer");
    return 1;
#undef BAD
#undef HAS
}

/* ---------- format decoding ---------- */

static int count_words(const char *s) {
    int n = 0, in = 0;
    for (; *s; s++) {
        int sp = *s == ' ' || *s == '\n' || *s == '\t';
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* Checks one example against the expectation; returns 1 if fine, else prints why. */
static int check_example(const char *task, int idx, const char *format, const char *skill_type, const char *input,
                         const char *output, const char *expect, int *letter_hist) {
    char why[256] = "";
    int ok = 1;
#define FAILW(...) do { snprintf(why, sizeof why, __VA_ARGS__); ok = 0; goto done; } while (0)
    if (!il_utf8_valid(input, strlen(input)) || !il_utf8_valid(output, strlen(output))) FAILW("invalid UTF-8");
    if (!*input || isspace((unsigned char)input[0]) || isspace((unsigned char)input[strlen(input) - 1]))
        FAILW("input empty or with outer whitespace");
    if (!*output || isspace((unsigned char)output[0]) || isspace((unsigned char)output[strlen(output) - 1]) ||
        strstr(output, "  ") || strchr(output, '\n'))
        FAILW("output whitespace");
    if (count_words(input) > MAX_IN_WORDS) FAILW("input has %d words", count_words(input));
    if (count_words(output) > MAX_OUT_WORDS) FAILW("output has %d words", count_words(output));
    for (const char *p = strchr(input, '{'); p; p = strchr(p + 1, '{')) { /* no unfilled {slot} */
        const char *e = p + 1;
        while (isalnum((unsigned char)*e) || *e == '_') e++;
        if (*e == '}' && e > p + 1) FAILW("unfilled placeholder");
    }
    const int is_bool = !strcmp(skill_type, "bool");
    if (!strcmp(format, "letter")) {
        const char *o = strstr(input, "\nOptions:\n(A) ");
        if (!o || strstr(o + 1, "\nOptions:")) FAILW("no single options block");
        if (strlen(output) != 3 || output[0] != '(' || output[2] != ')') FAILW("target '%s' is not (X)", output);
        char opts[8][64];
        int no = 0;
        for (const char *p = o + 10; *p && no < 8;) {
            if (p[0] != '(' || p[1] != 'A' + no || p[2] != ')' || p[3] != ' ') FAILW("option %d layout", no);
            const char *e = strchr(p, '\n');
            size_t l = e ? (size_t)(e - p - 4) : strlen(p + 4);
            snprintf(opts[no++], sizeof opts[0], "%.*s", (int)l, p + 4);
            p = e ? e + 1 : p + 4 + l;
        }
        if (no < 2) FAILW("%d options", no);
        int t = output[1] - 'A', hits = 0;
        if (t < 0 || t >= no) FAILW("target %s beyond %d options", output, no);
        for (int i = 0; i < no; i++) {
            hits += !strcmp(opts[i], expect);
            for (int j = 0; j < i; j++)
                if (!strcmp(opts[i], opts[j])) FAILW("duplicate option '%s'", opts[i]);
        }
        if (strcmp(opts[t], expect) || hits != 1) FAILW("option %s is '%s', expected '%s'", output, opts[t], expect);
        letter_hist[t]++;
    } else if (is_bool) {
        static const struct { const char *fmt, *yes, *no, *suffix; } B[] = {
            {"yes/no", "Yes", "No", NULL},
            {"yes/no+options", "Yes", "No", "\nOptions:\n- Yes\n- No"},
            {"yes/no-lower", "yes", "no", NULL},
            {"true/false", "True", "False", NULL},
            {"valid/invalid", "valid", "invalid", "\nOptions:\n- valid\n- invalid"},
        };
        int k = -1;
        for (int i = 0; i < 5; i++)
            if (!strcmp(format, B[i].fmt)) k = i;
        if (k < 0) FAILW("bool skill in format '%s'", format);
        if (B[k].suffix ? !ends_with(input, B[k].suffix) : strstr(input, "Options:") != NULL) FAILW("options block");
        int got = !strcmp(output, B[k].yes) ? 1 : !strcmp(output, B[k].no) ? 0 : -1;
        if (got < 0) FAILW("'%s' is not a %s answer", output, format);
        if (got != (expect[0] == '1')) FAILW("answer %s, expected %s", output, expect[0] == '1' ? B[k].yes : B[k].no);
        letter_hist[8 + got]++; /* [8] no, [9] yes */
    } else {
        if (strstr(input, "Options:")) FAILW("options block in a %s task", format);
        if (!strcmp(format, "number")) {
            char *end;
            strtol(output, &end, 10);
            if (*end || end == output) FAILW("'%s' is not an integer", output);
        } else if (strcmp(format, "word") && strcmp(format, "words")) {
            FAILW("unknown format '%s'", format);
        }
        if (strcmp(output, expect)) FAILW("answer '%s', expected '%s'", output, expect);
    }
done:
    if (!ok) fprintf(stderr, "%s #%d: %s\n  input: %s\n  output: %s\n", task, idx, why, input, output);
    return ok;
#undef FAILW
}

/* ---------- tests ---------- */

static int valid_name(const char *s) {
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

static void test_counts_and_names(void) {
    const int nf = il_world_n_families(), nh = il_world_n_heldout();
    CHECK(nf >= 48);
    CHECK(nh >= 12);
    for (int f = 0; f < nf; f++) {
        CHECK_MSG(valid_name(il_world_family_name(f)), "family %d", f);
        CHECK(il_world_family_n_templates(f) >= 1);
        CHECK(il_world_family_skill(f) && il_world_family_format(f));
        CHECK(strncmp(il_world_family_name(f), "heldout", 7) != 0);
        for (int g = 0; g < f; g++) CHECK(strcmp(il_world_family_name(f), il_world_family_name(g)) != 0);
    }
    int kinds[3] = {0};
    for (int h = 0; h < nh; h++) {
        const char *k = il_world_heldout_kind(h);
        CHECK_MSG(valid_name(il_world_heldout_name(h)) && !strncmp(il_world_heldout_name(h), "heldout_", 8), "held-out %d", h);
        CHECK(il_world_heldout_description(h) && *il_world_heldout_description(h));
        for (int g = 0; g < h; g++) CHECK(strcmp(il_world_heldout_name(h), il_world_heldout_name(g)) != 0);
        int np = il_world_heldout_n_parts(h);
        if (!strcmp(k, "rephrase")) { kinds[0]++; CHECK_EQ_INT(np, 1); }
        else if (!strcmp(k, "combine")) { kinds[1]++; CHECK_EQ_INT(np, 1); }
        else if (!strcmp(k, "mix")) { kinds[2]++; CHECK(np >= 2 && np <= 3); }
        else CHECK_MSG(0, "kind '%s'", k);
        if (!strcmp(k, "mix")) /* a mixture mixes different skills */
            for (int p = 0; p < np; p++)
                for (int q = 0; q < p; q++) CHECK(strcmp(il_world_heldout_part_skill(h, p), il_world_heldout_part_skill(h, q)));
        if (!strcmp(k, "rephrase")) { /* re-phrases a skill that upstream uses (or its named twin) */
            const char *s = il_world_heldout_part_skill(h, 0);
            int used = 0;
            for (int f = 0; f < nf; f++) used |= !strncmp(il_world_family_skill(f), s, strcspn(s, "_")) ;
            CHECK_MSG(used, "%s re-phrases an unused skill", il_world_heldout_name(h));
        }
        if (!strcmp(k, "combine")) { /* a combined skill is not an upstream skill */
            for (int f = 0; f < nf; f++) CHECK(strcmp(il_world_family_skill(f), il_world_heldout_part_skill(h, 0)));
        }
        if (!strcmp(k, "mix")) /* mixtures use upstream skills */
            for (int p = 0; p < np; p++) {
                int used = 0;
                for (int f = 0; f < nf; f++) used |= !strcmp(il_world_family_skill(f), il_world_heldout_part_skill(h, p));
                CHECK_MSG(used, "%s part %d", il_world_heldout_name(h), p);
            }
    }
    CHECK(kinds[0] >= 3 && kinds[1] >= 3 && kinds[2] >= 3);
    /* formats of the upstream families cover BBH's answer kinds */
    const char *need[] = {"letter", "yes/no", "true/false", "valid/invalid", "number", "words"};
    for (int k = 0; k < 6; k++) {
        int found = 0;
        for (int f = 0; f < nf; f++) found |= !strncmp(il_world_family_format(f), need[k], strlen(need[k]));
        CHECK_MSG(found, "no upstream family answers in format '%s'", need[k]);
    }
    int nfmt = il_world_n_formats();
    for (int f = 0; f < nf; f++) {
        int known = 0;
        for (int k = 0; k < nfmt; k++) known |= !strcmp(il_world_format_name(k), il_world_family_format(f));
        CHECK(known);
    }
    /* errors, not crashes */
    CHECK(il_world_family_name(-1) == NULL && strstr(il_errmsg(), "out of range"));
    CHECK(il_world_family_name(nf) == NULL);
    CHECK(il_world_heldout_name(nh) == NULL);
    CHECK(il_world_family_template(0, 99) == NULL);
    CHECK(il_world_heldout_part_skill(0, 7) == NULL);
    CHECK(il_world_skill_name(il_world_n_skills()) == NULL);
    CHECK(il_world_lexicon("nonsense", NULL) == NULL);
    char *in = (char *)"x", *out = (char *)"y";
    CHECK_EQ_INT(il_world_family_example(nf, 1, 0, &in, &out), -1);
    CHECK_EQ_INT(il_world_family_example(0, 1, -1, &in, &out), -1);
    CHECK_EQ_INT(il_world_heldout_example(-1, 1, 0, &in, &out), -1);
}

/* Lower-cased words of a template's fixed text, placeholders as breaks ("|"). */
static int template_words(const char *t, char words[][32], int max) {
    int n = 0;
    char cur[32];
    size_t l = 0;
    for (const char *p = t;; p++) {
        int brk = *p == 0 || *p == '{' || !(isalnum((unsigned char)*p) || *p == '\'');
        if (brk) {
            if (l && n < max) { cur[l] = 0; snprintf(words[n++], 32, "%s", cur); }
            l = 0;
            if (*p == '{') {
                while (*p && *p != '}') p++;
                if (n < max) snprintf(words[n++], 32, "|");
            }
            if (!*p) break;
        } else if (l < sizeof cur - 1) {
            cur[l++] = (char)tolower((unsigned char)*p);
        }
    }
    return n;
}

/* Does the 4-word sequence a[0..4) (no break inside) occur in b? */
static int has_ngram(char a[][32], char b[][32], int nb) {
    for (int j = 0; j + 4 <= nb; j++) {
        int eq = 1;
        for (int k = 0; k < 4 && eq; k++) eq = !strcmp(a[k], b[j + k]);
        if (eq) return 1;
    }
    return 0;
}

static void test_templates_disjoint(void) {
    const int nf = il_world_n_families(), nh = il_world_n_heldout();
    static char up[64][3][64][32];
    int nup[64][3] = {{0}};
    CHECK(nf <= 64);
    for (int f = 0; f < nf && f < 64; f++)
        for (int t = 0; t < il_world_family_n_templates(f) && t < 3; t++) {
            nup[f][t] = template_words(il_world_family_template(f, t), up[f][t], 64);
            for (int g = 0; g < f; g++) /* upstream templates are distinct too */
                for (int u = 0; u < il_world_family_n_templates(g); u++)
                    CHECK(strcmp(il_world_family_template(f, t), il_world_family_template(g, u)));
        }
    int n_checked = 0;
    for (int h = 0; h < nh; h++)
        for (int p = 0; p < il_world_heldout_n_parts(h); p++)
            for (int t = 0; t < il_world_heldout_part_n_templates(h, p); t++) {
                const char *ht = il_world_heldout_part_template(h, p, t);
                char hw[64][32];
                int nhw = template_words(ht, hw, 64), words = 0;
                for (int i = 0; i < nhw; i++) words += strcmp(hw[i], "|") != 0;
                CHECK_MSG(words >= 3, "held-out template \"%s\" has almost no instruction", ht);
                for (int f = 0; f < nf; f++)
                    for (int u = 0; u < il_world_family_n_templates(f); u++) {
                        const char *ut = il_world_family_template(f, u);
                        CHECK_MSG(strcmp(ht, ut) != 0, "held-out template equals %s's", il_world_family_name(f));
                        CHECK_MSG(!strstr(ut, ht), "held-out template \"%s\" occurs in \"%s\"", ht, ut);
                        for (int i = 0; i + 4 <= nhw; i++) {
                            int brk = 0;
                            for (int k = 0; k < 4; k++) brk |= !strcmp(hw[i + k], "|");
                            if (brk) continue;
                            CHECK_MSG(!has_ngram(hw + i, up[f][u], nup[f][u]),
                                      "held-out template \"%s\" shares \"%s %s %s %s\" with %s's \"%s\"", ht, hw[i],
                                      hw[i + 1], hw[i + 2], hw[i + 3], il_world_family_name(f), ut);
                            n_checked++;
                        }
                    }
            }
    CHECK(n_checked > 0);
}

/* Generate N_EX examples of every family and held-out task and check each one. */
static void test_answers(void) {
    const uint64_t seed = 7;
    const int nf = il_world_n_families(), nh = il_world_n_heldout();
    int bad_total = 0;
    for (int task = 0; task < nf + nh; task++) {
        const int fam = task < nf, h = task - nf;
        const char *name = fam ? il_world_family_name(task) : il_world_heldout_name(h);
        int hist[10] = {0}, nbool = 0, nletter = 0, part_count[3] = {0}, bad = 0;
        for (int i = 0; i < N_EX; i++) {
            char *in = NULL, *out = NULL, *in2 = NULL, *out2 = NULL;
            il_world_inst inst;
            int rc = fam ? il_world_family_example(task, seed, i, &in, &out) : il_world_heldout_example(h, seed, i, &in, &out);
            int rc2 = fam ? il_world_family_instance(task, seed, i, &inst) : il_world_heldout_instance(h, seed, i, &inst);
            int rc3 = fam ? il_world_family_example(task, seed, i, &in2, &out2) : il_world_heldout_example(h, seed, i, &in2, &out2);
            if (rc || rc2 || rc3) {
                CHECK_MSG(0, "%s #%d: %s", name, i, il_errmsg());
                bad++;
                goto next;
            }
            CHECK_MSG(!strcmp(in, in2) && !strcmp(out, out2), "%s #%d not deterministic", name, i);
            const int part = fam ? 0 : inst.part;
            part_count[part < 3 ? part : 0]++;
            const char *format = fam ? il_world_family_format(task) : il_world_heldout_part_format(h, part);
            const char *skill = fam ? il_world_family_skill(task) : il_world_heldout_part_skill(h, part);
            CHECK_STR(il_world_skill_name(inst.skill), skill);
            char expect[256], why[256];
            if (!expected_answer(&inst, in, expect, sizeof expect, why, sizeof why)) {
                fprintf(stderr, "%s #%d: checker: %s\n  input: %s\n", name, i, why, in);
                bad++;
            } else if (!check_example(name, i, format, il_world_skill_answer_type(inst.skill), in, out, expect, hist)) {
                bad++;
            }
            if (!strcmp(format, "letter")) nletter++;
            else if (!strcmp(il_world_skill_answer_type(inst.skill), "bool")) nbool++;
        next:
            free(in);
            free(out);
            free(in2);
            free(out2);
        }
        CHECK_MSG(bad == 0, "%s: %d bad examples", name, bad);
        bad_total += bad;
        /* balance: yes/no answers roughly even; the correct letter not always the same */
        if (nbool >= 30) CHECK_MSG(hist[9] >= nbool * 3 / 10 && hist[8] >= nbool * 3 / 10, "%s: %d of %d positive", name, hist[9], nbool);
        if (nletter >= 30) {
            int mx = 0;
            for (int k = 0; k < 8; k++) mx = hist[k] > mx ? hist[k] : mx;
            CHECK_MSG(mx <= nletter * 7 / 10, "%s: one letter is the answer %d of %d times", name, mx, nletter);
        }
        if (!fam)
            for (int p = 0; p < il_world_heldout_n_parts(h); p++)
                CHECK_MSG(part_count[p] >= N_EX / 4, "%s: part %d drawn %d times", name, p, part_count[p]);
    }
    CHECK_EQ_INT(bad_total, 0);
}

static void test_determinism_and_seeds(void) {
    int differ = 0;
    for (int f = 0; f < il_world_n_families(); f++) {
        char *a, *b, *c, *d;
        CHECK(il_world_family_example(f, 1, 5, &a, &b) == 0);
        CHECK(il_world_family_example(f, 2, 5, &c, &d) == 0);
        differ += strcmp(a, c) != 0;
        free(a), free(b), free(c), free(d);
    }
    CHECK(differ > il_world_n_families() / 2); /* the seed matters */
}

/* ---------- files ---------- */

static void rm_tree(const char *dir) {
    static const char *const subs[] = {"upstream", "heldout", ""};
    for (int s = 0; s < 3; s++) {
        char *p = il_sprintf("%s/%s", dir, subs[s]);
        DIR *d = p ? opendir(p) : NULL;
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char *f = il_sprintf("%s/%s", p, e->d_name);
            if (f) unlink(f);
            free(f);
        }
        if (d) closedir(d);
        if (*subs[s]) rmdir(p);
        free(p);
    }
    rmdir(dir);
}

static char *read_all(const char *dir, const char *sub, const char *name, const char *ext, size_t *len) {
    char *p = il_sprintf("%s/%s%s%s%s", dir, sub, *sub ? "/" : "", name, ext);
    char *t = p ? il_read_file(p, len) : NULL;
    free(p);
    return t;
}

static int same_files(const char *a, const char *b) {
    int same = 1;
    for (int t = 0; t < il_world_n_families() + il_world_n_heldout() + 1; t++) {
        const int fam = t < il_world_n_families(), man = t == il_world_n_families() + il_world_n_heldout();
        const char *sub = man ? "" : fam ? "upstream" : "heldout";
        const char *name = man ? "tasks" : fam ? il_world_family_name(t) : il_world_heldout_name(t - il_world_n_families());
        const char *ext = fam ? ".jsonl" : ".json";
        size_t la, lb;
        char *x = read_all(a, sub, name, ext, &la), *y = read_all(b, sub, name, ext, &lb);
        if (!x || !y || la != lb || memcmp(x, y, la)) same = 0;
        free(x);
        free(y);
    }
    return same;
}

static void test_files(void) {
    char d1[] = "/tmp/ilora_world_XXXXXX", d2[] = "/tmp/ilora_world_XXXXXX";
    if (!mkdtemp(d1) || !mkdtemp(d2)) { CHECK_MSG(0, "mkdtemp"); return; }
    char *out1 = il_sprintf("%s/w", d1); /* created by the writer */
    const int n_train = 12, n_held = 40;
    CHECK_MSG(il_world_write_tasks(out1, 3, n_train, n_held) == 0, "%s", il_errmsg());
    CHECK_MSG(il_world_write_tasks(d2, 3, n_train, n_held) == 0, "%s", il_errmsg());
    CHECK_MSG(same_files(out1, d2), "two runs with the same seed differ");
    CHECK_MSG(il_world_write_tasks(d2, 3, n_train, n_held) == 0, "%s", il_errmsg()); /* rewrite in place */
    CHECK_MSG(same_files(out1, d2), "rewriting changed the files");

    /* upstream JSONL: n_train lines of {"input","output"} equal to the API's examples */
    for (int f = 0; f < il_world_n_families(); f++) {
        size_t len;
        char *t = read_all(out1, "upstream", il_world_family_name(f), ".jsonl", &len);
        CHECK_MSG(t != NULL, "%s.jsonl missing", il_world_family_name(f));
        if (!t) continue;
        int lines = 0;
        char *save = NULL;
        for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
            cJSON *o = cJSON_Parse(line);
            cJSON *i = cJSON_GetObjectItemCaseSensitive(o, "input"), *u = cJSON_GetObjectItemCaseSensitive(o, "output");
            CHECK(cJSON_IsString(i) && cJSON_IsString(u) && cJSON_GetArraySize(o) == 2);
            if (lines < 3 && cJSON_IsString(i) && cJSON_IsString(u)) {
                char *in, *out;
                if (il_world_family_example(f, 3, lines, &in, &out) == 0) {
                    CHECK_STR(i->valuestring, in);
                    CHECK_STR(u->valuestring, out);
                    free(in), free(out);
                }
            }
            cJSON_Delete(o);
        }
        CHECK_EQ_INT(lines, n_train);
        free(t);
    }
    /* held-out: BBH format, n distinct inputs, the BBH loader accepts it */
    for (int h = 0; h < il_world_n_heldout(); h++) {
        char *p = il_sprintf("%s/heldout/%s.json", out1, il_world_heldout_name(h));
        il_bbh_task task;
        int rc = p ? il_bbh_load(&task, p) : -1;
        CHECK_MSG(rc == 0, "%s", il_errmsg());
        if (rc == 0) {
            CHECK_EQ_INT(task.n, n_held);
            CHECK_STR(task.name, il_world_heldout_name(h));
            char *in, *tg; /* example 0 is the API's draw 0 */
            if (il_world_heldout_example(h, 3, 0, &in, &tg) == 0) {
                CHECK_STR(task.input[0], in);
                CHECK_STR(task.target[0], tg);
                free(in), free(tg);
            }
            for (int i = 0; i < task.n; i++)
                for (int j = 0; j < i; j++) CHECK(strcmp(task.input[i], task.input[j]) != 0);
            il_bbh_free(&task);
        }
        size_t len;
        char *t = p ? il_read_file(p, &len) : NULL;
        CHECK(t && !strncmp(t, "{\"canary\": \"", 12) && strstr(t, "\"examples\": [{\"input\": "));
        cJSON *o = t ? cJSON_Parse(t) : NULL;
        CHECK(cJSON_GetArraySize(o) == 2);
        cJSON_Delete(o);
        free(t);
        free(p);
    }
    /* manifest */
    size_t len;
    char *m = read_all(out1, "", "tasks", ".json", &len);
    cJSON *man = m ? cJSON_Parse(m) : NULL;
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(man, "families")) == il_world_n_families());
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(man, "heldout")) == il_world_n_heldout());
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(man, "seed")) == 3);
    CHECK_MSG(m && !strstr(m, "/tmp"), "the manifest names files relative to the directory");
    cJSON_Delete(man);
    free(m);

    /* a different seed gives different files */
    char *out3 = il_sprintf("%s/seed4", d1);
    CHECK(il_world_write_tasks(out3, 4, n_train, n_held) == 0);
    CHECK(!same_files(out1, out3));

    /* errors: bad counts, a stale task file, out_dir is a file */
    CHECK_EQ_INT(il_world_write_tasks(out3, 4, 0, n_held), -1);
    CHECK_EQ_INT(il_world_write_tasks(out3, 4, n_train, 251), -1);
    CHECK_EQ_INT(il_world_write_tasks(NULL, 4, n_train, n_held), -1);
    char *stale = il_sprintf("%s/upstream/old_family.jsonl", out3);
    CHECK(stale && il_write_file_atomic(stale, "{}\n", 3) == 0);
    CHECK_EQ_INT(il_world_write_tasks(out3, 4, n_train, n_held), -1);
    CHECK(strstr(il_errmsg(), "old_family.jsonl") != NULL);
    if (stale) unlink(stale);
    CHECK(il_world_write_tasks(out3, 4, n_train, n_held) == 0);
    char *file = il_sprintf("%s/afile", d1);
    CHECK(file && il_write_file_atomic(file, "x", 1) == 0);
    CHECK_EQ_INT(il_world_write_tasks(file, 4, n_train, n_held), -1);
    if (file) unlink(file);

    rm_tree(out3);
    rm_tree(out1);
    rm_tree(d2);
    rmdir(d1);
    free(out1), free(out3), free(stale), free(file);
}

int main(void) {
    test_counts_and_names();
    test_templates_disjoint();
    test_answers();
    test_determinism_and_seeds();
    test_files();
    TEST_END();
}
