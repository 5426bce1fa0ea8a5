/* world_skills.c - the skills of ilora's task universe: small closed lexicons, and for each
 * skill a generator (parameters + distractor answers), an exact solver and the named slots
 * its templates may use. The "params:" line at each skill documents how it fills
 * il_world_inst, so that a test can re-derive every answer on its own. */
#include "world_skills.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- lexicons ---- */

static const char *const NAMES[] = {"Ana", "Ben", "Cara", "Dan", "Eva", "Finn", "Gia", "Hugo", "Ida", "Jack",
                                    "Kim", "Leo", "Mia", "Ned", "Olga", "Paul", "Rosa", "Sam", "Tara", "Vic"};
static const char *const COLORS[] = {"red", "blue", "green", "yellow", "black",
                                     "white", "pink", "purple", "orange", "brown"};
static const char *const OBJECTS[] = {"cup", "book", "ball", "hat", "key", "lamp", "pen", "box",
                                      "shoe", "coin", "bag", "plate", "clock", "sock", "ring", "chair"};
static const char *const OBJECT_PLURALS[] = {"cups", "books", "balls", "hats", "keys", "lamps", "pens", "boxes",
                                             "shoes", "coins", "bags", "plates", "clocks", "socks", "rings", "chairs"};
static const char *const FRUITS[] = {"apple", "pear", "plum", "grape", "lemon", "peach", "mango", "cherry"};
static const char *const VEHICLES[] = {"car", "bus", "train", "bike", "boat", "plane", "truck", "van"};
static const char *const ANIMALS[] = {"ant", "bee", "mouse", "rabbit", "sheep",
                                      "horse", "elephant", "whale", "cat", "owl"};
/* Smallest first; sizes far enough apart that "bigger" is never in doubt. */
static const char *const ANIMALS_BY_SIZE[] = {"ant", "bee", "mouse", "rabbit", "sheep", "horse", "elephant", "whale"};
static const char *const DAYS[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
/* The words of list skills (member, count, sort, ...). */
static const char *const POOL[] = {"cup",   "book", "ball", "hat",   "key",   "lamp",  "pen",   "box",
                                   "shoe",  "coin", "bag",  "plate", "clock", "sock",  "ring",  "chair",
                                   "apple", "pear", "plum", "grape", "lemon", "peach", "mango", "cherry"};
static const char *const ANTONYMS[] = {"hot",   "cold",  "big",    "small",  "fast",  "slow",  "happy",  "sad",
                                       "old",   "young", "early",  "late",   "open",  "closed", "full",  "empty",
                                       "high",  "low",   "hard",   "soft",   "wet",   "dry",   "rich",   "poor",
                                       "loud",  "quiet", "long",   "short",  "thick", "thin",  "strong", "weak",
                                       "clean", "dirty", "near",   "far",    "bright", "dark", "sweet",  "sour",
                                       "heavy", "light", "wide",   "narrow", "deep",  "shallow", "cheap", "expensive",
                                       "smooth", "rough", "tight", "loose",  "alive", "dead",  "awake",  "asleep",
                                       "good",  "bad",   "sharp",  "dull"};
static const char *const SYNONYMS[] = {"big",   "large",   "small", "little",  "fast",  "quick",    "happy", "glad",
                                       "smart", "clever",  "angry", "mad",     "rich",  "wealthy",  "sick",  "ill",
                                       "begin", "start",   "end",   "finish",  "hard",  "difficult", "easy", "simple",
                                       "gift",  "present", "quiet", "silent",  "shut",  "close",    "shout", "yell"};
static const char *const PLURALS[] = {"cat",   "cats",    "dog",   "dogs",    "box",   "boxes",   "bus",   "buses",
                                      "city",  "cities",  "baby",  "babies",  "leaf",  "leaves",  "knife", "knives",
                                      "child", "children", "mouse", "mice",   "foot",  "feet",    "tooth", "teeth",
                                      "man",   "men",     "woman", "women",   "sheep", "sheep",   "fish",  "fish",
                                      "glass", "glasses", "dish",  "dishes",  "story", "stories", "wolf",  "wolves",
                                      "goose", "geese",   "toy",   "toys",    "party", "parties", "wish",  "wishes"};
static const char *const OPEN_BR[] = {"(", "[", "{", "<"};
static const char *const CLOSE_BR[] = {")", "]", "}", ">"};
static const char *const NUMWORDS[] = {"zero", "one", "two", "three", "four", "five",
                                       "six",  "seven", "eight", "nine", "ten"};

/* Categories of category_pick / category_check / odd_one_out: 0 fruit, 1 vehicle, 2 animal, 3 color. */
static const char *const CAT_NAMES[] = {"fruit", "vehicle", "animal", "color"};
static const char *const *const CAT_WORDS[] = {FRUITS, VEHICLES, ANIMALS, COLORS};
static const int CAT_N[] = {N_OF(FRUITS), N_OF(VEHICLES), N_OF(ANIMALS), N_OF(COLORS)};

static const struct {
    const char *name;
    const char *const *w;
    int n;
} LEXICONS[] = {
    {"names", NAMES, N_OF(NAMES)},
    {"colors", COLORS, N_OF(COLORS)},
    {"objects", OBJECTS, N_OF(OBJECTS)},
    {"object_plurals", OBJECT_PLURALS, N_OF(OBJECT_PLURALS)},
    {"fruits", FRUITS, N_OF(FRUITS)},
    {"vehicles", VEHICLES, N_OF(VEHICLES)},
    {"animals", ANIMALS, N_OF(ANIMALS)},
    {"animals_by_size", ANIMALS_BY_SIZE, N_OF(ANIMALS_BY_SIZE)},
    {"days", DAYS, N_OF(DAYS)},
    {"pool", POOL, N_OF(POOL)},
    {"antonyms", ANTONYMS, N_OF(ANTONYMS)},
    {"synonyms", SYNONYMS, N_OF(SYNONYMS)},
    {"plurals", PLURALS, N_OF(PLURALS)},
};

const char *const *ws_lexicon(const char *name, int *n) {
    for (int i = 0; name && i < N_OF(LEXICONS); i++)
        if (!strcmp(LEXICONS[i].name, name)) {
            if (n) *n = LEXICONS[i].n;
            return LEXICONS[i].w;
        }
    il_seterr("world: unknown lexicon '%s'", name ? name : "(null)");
    return NULL;
}

/* ---- helpers ---- */

static int rb(il_rng *r, int n) { return (int)il_rng_below(r, (uint64_t)n); }
static int rrange(il_rng *r, int lo, int hi) { return lo + rb(r, hi - lo + 1); }

/* k distinct values from [0, m) in random order (m <= 64). */
static void pick_distinct(il_rng *r, int m, int k, int *out) {
    int idx[64];
    for (int i = 0; i < m; i++) idx[i] = i;
    for (int i = 0; i < k; i++) {
        int j = i + rb(r, m - i);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        out[i] = idx[i];
    }
}

static void pick_words(il_rng *r, const char *const *lex, int m, int k, const char **out) {
    int idx[IL_WORLD_MAXV];
    pick_distinct(r, m, k, idx);
    for (int i = 0; i < k; i++) out[i] = lex[idx[i]];
}

static int in_list(const char *const *w, int n, const char *x) {
    for (int i = 0; i < n; i++)
        if (!strcmp(w[i], x)) return 1;
    return 0;
}

static const char *article(const char *w) { return strchr("aeiouAEIOU", w[0]) ? "an" : "a"; }

static void slot(ws_slots *s, const char *name, const char *fmt, ...) IL_PRINTF(3, 4);
static void slot(ws_slots *s, const char *name, const char *fmt, ...) {
    if (s->n >= WS_MAXSLOTS) return; /* the template layer reports the missing slot */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->val[s->n], WS_SLOTLEN, fmt, ap);
    va_end(ap);
    s->name[s->n++] = name;
}

/* Append to a fixed buffer, truncating safely. */
static void cat(char *dst, size_t cap, const char *src) {
    size_t n = strlen(dst);
    if (n + 1 < cap) snprintf(dst + n, cap - n, "%s", src);
}

static void join(char *dst, size_t cap, const char *const *w, int n, const char *sep) {
    dst[0] = 0;
    for (int i = 0; i < n; i++) {
        if (i) cat(dst, cap, sep);
        cat(dst, cap, w[i]);
    }
}

/* "a, b and c" */
static void join_and(char *dst, size_t cap, const char *const *w, int n) {
    dst[0] = 0;
    for (int i = 0; i < n; i++) {
        if (i) cat(dst, cap, i == n - 1 ? " and " : ", ");
        cat(dst, cap, w[i]);
    }
}

/* Distractor answers (distinct, never the answer). */
static void dis_add(il_world_inst *in, const char *s, const char *ans) {
    if (in->n_dis >= IL_WORLD_MAXOPT - 1 || !strcmp(s, ans) || strlen(s) >= IL_WORLD_OPTLEN) return;
    for (int i = 0; i < in->n_dis; i++)
        if (!strcmp(in->dis[i], s)) return;
    snprintf(in->dis[in->n_dis++], IL_WORLD_OPTLEN, "%s", s);
}

/* Up to k numbers near ans within [lo, hi]. */
static void dis_ints(il_world_inst *in, il_rng *r, long ans, long lo, long hi, int k) {
    static const int off[] = {1, -1, 2, -2, 3, -3, 10, -10};
    int idx[N_OF(off)], added = 0;
    pick_distinct(r, N_OF(off), N_OF(off), idx);
    char a[32], b[32];
    snprintf(a, sizeof a, "%ld", ans);
    for (int i = 0; i < N_OF(off) && added < k; i++) {
        long c = ans + off[idx[i]];
        if (c < lo || c > hi) continue;
        snprintf(b, sizeof b, "%ld", c);
        int before = in->n_dis;
        dis_add(in, b, a);
        added += in->n_dis > before;
    }
}

/* Up to k distractors drawn from a word list. */
static void dis_words(il_world_inst *in, il_rng *r, const char *const *w, int n, const char *ans, int k) {
    int idx[64];
    int m = n < 64 ? n : 64, added = 0;
    pick_distinct(r, m, m, idx);
    for (int i = 0; i < m && added < k; i++) {
        int before = in->n_dis;
        dis_add(in, w[idx[i]], ans);
        added += in->n_dis > before;
    }
}

static void seq_slot(ws_slots *s, const char *name, const int *v, int n) {
    char buf[WS_SLOTLEN] = "", num[16];
    for (int i = 0; i < n; i++) {
        snprintf(num, sizeof num, i ? ", %d" : "%d", v[i]);
        cat(buf, sizeof buf, num);
    }
    slot(s, name, "%s", buf);
}

static void list_slots(const il_world_inst *in, ws_slots *s) {
    char buf[WS_SLOTLEN];
    join(buf, sizeof buf, in->w, in->n, ", ");
    slot(s, "list", "%s", buf);
    join(buf, sizeof buf, in->w, in->n, " ");
    slot(s, "list_sp", "%s", buf);
}

static void par_slots(ws_slots *s, int q) {
    slot(s, "par", "%s", q ? "odd" : "even");
    slot(s, "an_par", "%s", q ? "an odd" : "an even");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* ==== numbers ==== */

/* num_compare (bool). params: v0 = a, v1 = b (distinct, 0..99); q 0: "a greater than b",
 * q 1: "a less than b". */
static void g_num_compare(il_world_inst *in, il_rng *r, int want) {
    in->n = 2;
    in->v[0] = rb(r, 100);
    in->v[1] = rb(r, 99);
    if (in->v[1] >= in->v[0]) in->v[1]++;
    in->q = rb(r, 2);
}
static void s_num_compare(const il_world_inst *in, ws_answer *a) {
    a->b = in->q ? in->v[0] < in->v[1] : in->v[0] > in->v[1];
}
static void l_num_compare(const il_world_inst *in, ws_slots *s) {
    slot(s, "a", "%d", in->v[0]);
    slot(s, "b", "%d", in->v[1]);
    slot(s, "rel", "%s", in->q ? "less" : "greater");
    slot(s, "rel2", "%s", in->q ? "smaller" : "bigger");
}

/* num_pick (int). params: v0 = a, v1 = b (distinct, 0..99); q 0: the larger, 1: the smaller. */
static void s_num_pick(const il_world_inst *in, ws_answer *a) {
    int mx = in->v[0] > in->v[1] ? in->v[0] : in->v[1], mn = in->v[0] + in->v[1] - mx;
    a->i = in->q ? mn : mx;
}
static void g_num_pick(il_world_inst *in, il_rng *r, int want) {
    g_num_compare(in, r, want);
    ws_answer a;
    s_num_pick(in, &a);
    snprintf(in->dis[0], IL_WORLD_OPTLEN, "%d", in->v[0] == a.i ? in->v[1] : in->v[0]);
    in->n_dis = 1;
}
static void l_num_pick(const il_world_inst *in, ws_slots *s) {
    slot(s, "a", "%d", in->v[0]);
    slot(s, "b", "%d", in->v[1]);
    slot(s, "ext_er", "%s", in->q ? "smaller" : "larger");
    slot(s, "ext2", "%s", in->q ? "lower" : "higher");
}

/* parity (bool). params: v0 = n (0..199); q 0: "is n even", 1: "is n odd". */
static void g_parity(il_world_inst *in, il_rng *r, int want) {
    in->n = 1;
    in->v[0] = rb(r, 200);
    in->q = rb(r, 2);
}
static void s_parity(const il_world_inst *in, ws_answer *a) { a->b = (in->v[0] % 2 == 0) == (in->q == 0); }
static void l_parity(const il_world_inst *in, ws_slots *s) {
    slot(s, "n", "%d", in->v[0]);
    par_slots(s, in->q);
}

/* parity_name (word). params: v0 = n (0..199); answer "even" or "odd". */
static void s_parity_name(const il_world_inst *in, ws_answer *a) {
    snprintf(a->s, sizeof a->s, "%s", in->v[0] % 2 ? "odd" : "even");
}
static void g_parity_name(il_world_inst *in, il_rng *r, int want) {
    in->n = 1;
    in->v[0] = rb(r, 200);
    snprintf(in->dis[0], IL_WORLD_OPTLEN, "%s", in->v[0] % 2 ? "even" : "odd");
    in->n_dis = 1;
}
static void l_parity_name(const il_world_inst *in, ws_slots *s) { slot(s, "n", "%d", in->v[0]); }

/* add (int). params: v0 = a, v1 = b (0..20); answer a + b. */
static void s_add(const il_world_inst *in, ws_answer *a) { a->i = in->v[0] + in->v[1]; }
static void g_add(il_world_inst *in, il_rng *r, int want) {
    in->n = 2;
    in->v[0] = rb(r, 21);
    in->v[1] = rb(r, 21);
    dis_ints(in, r, in->v[0] + in->v[1], 0, 40, 3);
}
static void l_ab(const il_world_inst *in, ws_slots *s) {
    slot(s, "a", "%d", in->v[0]);
    slot(s, "b", "%d", in->v[1]);
}

/* sub (int). params: v0 = a, v1 = b (0..20); answer a - b (may be negative). */
static void s_sub(const il_world_inst *in, ws_answer *a) { a->i = in->v[0] - in->v[1]; }
static void g_sub(il_world_inst *in, il_rng *r, int want) {
    in->n = 2;
    in->v[0] = rb(r, 21);
    in->v[1] = rb(r, 21);
    dis_ints(in, r, in->v[0] - in->v[1], -20, 20, 3);
}

/* arith_chain (int). params: v0, v1, v2 (0..9); v3, v4 the operators after v0 and v1
 * (0 '+', 1 '-'); evaluated left to right. */
static void s_arith_chain(const il_world_inst *in, ws_answer *a) {
    long x = in->v[0];
    x = in->v[3] ? x - in->v[1] : x + in->v[1];
    x = in->v[4] ? x - in->v[2] : x + in->v[2];
    a->i = x;
}
static void g_arith_chain(il_world_inst *in, il_rng *r, int want) {
    in->n = 3;
    for (int i = 0; i < 3; i++) in->v[i] = rb(r, 10);
    in->v[3] = rb(r, 2);
    in->v[4] = rb(r, 2);
    ws_answer a;
    s_arith_chain(in, &a);
    dis_ints(in, r, a.i, -18, 27, 3);
}
static void l_arith_chain(const il_world_inst *in, ws_slots *s) {
    slot(s, "expr", "%d %c %d %c %d", in->v[0], in->v[3] ? '-' : '+', in->v[1], in->v[4] ? '-' : '+', in->v[2]);
}

/* list_extreme (int). params: n (3..5) distinct numbers v[0..n) (0..50); q 0: the largest,
 * 1: the smallest. */
static void s_list_extreme(const il_world_inst *in, ws_answer *a) {
    int best = in->v[0];
    for (int i = 1; i < in->n; i++)
        if (in->q ? in->v[i] < best : in->v[i] > best) best = in->v[i];
    a->i = best;
}
static void g_list_extreme(il_world_inst *in, il_rng *r, int want) {
    in->n = rrange(r, 3, 5);
    pick_distinct(r, 51, in->n, in->v);
    in->q = rb(r, 2);
    ws_answer a;
    s_list_extreme(in, &a);
    char num[16], ans[16];
    snprintf(ans, sizeof ans, "%ld", a.i);
    for (int i = 0; i < in->n && in->n_dis < 3; i++) {
        snprintf(num, sizeof num, "%d", in->v[i]);
        dis_add(in, num, ans);
    }
}
static void l_list_extreme(const il_world_inst *in, ws_slots *s) {
    seq_slot(s, "seq", in->v, in->n);
    slot(s, "ext_est", "%s", in->q ? "smallest" : "largest");
}

/* increasing (bool). params: n (3..5) numbers v[0..n) (distinct, 0..40); true if each is
 * larger than the one before. */
static void g_increasing(il_world_inst *in, il_rng *r, int want) {
    in->n = rrange(r, 3, 5);
    pick_distinct(r, 41, in->n, in->v);
    for (int i = 1; i < in->n; i++) /* insertion sort */
        for (int j = i; j > 0 && in->v[j - 1] > in->v[j]; j--) {
            int t = in->v[j];
            in->v[j] = in->v[j - 1];
            in->v[j - 1] = t;
        }
    if (!want) {
        int j = rb(r, in->n - 1), t = in->v[j];
        in->v[j] = in->v[j + 1];
        in->v[j + 1] = t;
    }
}
static void s_increasing(const il_world_inst *in, ws_answer *a) {
    a->b = 1;
    for (int i = 1; i < in->n; i++)
        if (in->v[i] <= in->v[i - 1]) a->b = 0;
}
static void l_seq(const il_world_inst *in, ws_slots *s) { seq_slot(s, "seq", in->v, in->n); }

/* sum_parity (bool). params: v0 = a, v1 = b (0..20); q 0: "a + b is even", 1: "is odd". */
static void g_sum_parity(il_world_inst *in, il_rng *r, int want) {
    in->n = 2;
    in->v[0] = rb(r, 21);
    in->v[1] = rb(r, 21);
    in->q = rb(r, 2);
}
static void s_sum_parity(const il_world_inst *in, ws_answer *a) {
    a->b = ((in->v[0] + in->v[1]) % 2 == 0) == (in->q == 0);
}
static void l_sum_parity(const il_world_inst *in, ws_slots *s) {
    l_ab(in, s);
    par_slots(s, in->q);
}

/* sum_compare (bool). params: v0 = a, v1 = b (0..20), v2 = c (never a + b); true if a + b > c. */
static void g_sum_compare(il_world_inst *in, il_rng *r, int want) {
    in->n = 3;
    in->v[0] = rb(r, 21);
    in->v[1] = rb(r, 21);
    int s = in->v[0] + in->v[1], d = rrange(r, 1, 6);
    in->v[2] = want ? s - d : s + d;
    if (in->v[2] < 0) in->v[2] = s + d; /* the caller redraws if the answer is not wanted */
}
static void s_sum_compare(const il_world_inst *in, ws_answer *a) { a->b = in->v[0] + in->v[1] > in->v[2]; }
static void l_sum_compare(const il_world_inst *in, ws_slots *s) {
    l_ab(in, s);
    slot(s, "c", "%d", in->v[2]);
}

/* max_parity (bool). params: n (3..5) distinct numbers v[0..n) (0..50); q 0: "the largest
 * is even", 1: "is odd". */
static void g_max_parity(il_world_inst *in, il_rng *r, int want) {
    in->n = rrange(r, 3, 5);
    pick_distinct(r, 51, in->n, in->v);
    in->q = rb(r, 2);
}
static void s_max_parity(const il_world_inst *in, ws_answer *a) {
    int mx = in->v[0];
    for (int i = 1; i < in->n; i++)
        if (in->v[i] > mx) mx = in->v[i];
    a->b = (mx % 2 == 0) == (in->q == 0);
}
static void l_max_parity(const il_world_inst *in, ws_slots *s) {
    seq_slot(s, "seq", in->v, in->n);
    par_slots(s, in->q);
}

/* ==== lists of words ==== */

/* member (bool). params: n (3..6) distinct pool words w[0..n), x the query. */
static void g_member(il_world_inst *in, il_rng *r, int want) {
    in->n = rrange(r, 3, 6);
    const char *w[8];
    pick_words(r, POOL, N_OF(POOL), in->n + 1, w);
    for (int i = 0; i < in->n; i++) in->w[i] = w[i];
    in->x = want ? w[rb(r, in->n)] : w[in->n];
}
static void s_member(const il_world_inst *in, ws_answer *a) { a->b = in_list(in->w, in->n, in->x); }
static void l_member(const il_world_inst *in, ws_slots *s) {
    list_slots(in, s);
    slot(s, "x", "%s", in->x);
}

/* count_word (int). params: n (4..8) words w[0..n) drawn from 2-3 pool words, x the query
 * (one of them, or now and then a word that does not occur). Answer: occurrences of x. */
static void s_count_word(const il_world_inst *in, ws_answer *a) {
    a->i = 0;
    for (int i = 0; i < in->n; i++) a->i += !strcmp(in->w[i], in->x);
}
static void g_count_word(il_world_inst *in, il_rng *r, int want) {
    int k = rrange(r, 2, 3);
    const char *voc[4];
    pick_words(r, POOL, N_OF(POOL), k + 1, voc);
    in->n = rrange(r, 4, 8);
    for (int i = 0; i < in->n; i++) in->w[i] = voc[rb(r, k)];
    in->x = rb(r, 10) ? voc[rb(r, k)] : voc[k];
    ws_answer a;
    s_count_word(in, &a);
    dis_ints(in, r, a.i, 0, in->n, 3);
}
static void l_count_word(const il_world_inst *in, ws_slots *s) {
    list_slots(in, s);
    slot(s, "x", "%s", in->x);
}

/* count_compare (bool). params: n (5..8) words w[0..n) drawn from x, y and sometimes a
 * third word; true if x occurs more often than y (a tie is false). */
static void g_count_compare(il_world_inst *in, il_rng *r, int want) {
    const char *voc[3];
    pick_words(r, POOL, N_OF(POOL), 3, voc);
    int k = rrange(r, 2, 3);
    in->n = rrange(r, 5, 8);
    for (int i = 0; i < in->n; i++) in->w[i] = voc[rb(r, k)];
    in->x = voc[0];
    in->y = voc[1];
}
static void s_count_compare(const il_world_inst *in, ws_answer *a) {
    int cx = 0, cy = 0;
    for (int i = 0; i < in->n; i++) {
        cx += !strcmp(in->w[i], in->x);
        cy += !strcmp(in->w[i], in->y);
    }
    a->b = cx > cy;
}
static void l_count_compare(const il_world_inst *in, ws_slots *s) {
    list_slots(in, s);
    slot(s, "x", "%s", in->x);
    slot(s, "y", "%s", in->y);
}

/* last_item (word). params: n (3..5) distinct pool words w[0..n); answer w[n-1]. */
static void g_last_item(il_world_inst *in, il_rng *r, int want) {
    in->n = rrange(r, 3, 5);
    pick_words(r, POOL, N_OF(POOL), in->n, in->w);
    dis_words(in, r, in->w, in->n, in->w[in->n - 1], 3);
}
static void s_last_item(const il_world_inst *in, ws_answer *a) { snprintf(a->s, sizeof a->s, "%s", in->w[in->n - 1]); }

/* sort_words (words). params: n (2..4) distinct pool words w[0..n); answer: sorted (byte
 * order), space-separated. */
static void g_words(il_world_inst *in, il_rng *r, int want) {
    in->n = rrange(r, 2, 4);
    pick_words(r, POOL, N_OF(POOL), in->n, in->w);
}
static void s_sort_words(const il_world_inst *in, ws_answer *a) {
    const char *w[IL_WORLD_MAXV];
    memcpy(w, in->w, sizeof *w * (size_t)in->n);
    qsort(w, (size_t)in->n, sizeof *w, cmp_str);
    join(a->s, sizeof a->s, w, in->n, " ");
}

/* reverse_words (words). params: n (2..4) distinct pool words w[0..n); answer: reversed. */
static void s_reverse_words(const il_world_inst *in, ws_answer *a) {
    const char *w[IL_WORLD_MAXV];
    for (int i = 0; i < in->n; i++) w[i] = in->w[in->n - 1 - i];
    join(a->s, sizeof a->s, w, in->n, " ");
}

/* sort_last (word). params: n (3..4) distinct pool words w[0..n); answer: the one that
 * sorts last. */
static void s_sort_last(const il_world_inst *in, ws_answer *a) {
    const char *m = in->w[0];
    for (int i = 1; i < in->n; i++)
        if (strcmp(in->w[i], m) > 0) m = in->w[i];
    snprintf(a->s, sizeof a->s, "%s", m);
}
static void g_sort_last(il_world_inst *in, il_rng *r, int want) {
    in->n = rrange(r, 3, 4);
    pick_words(r, POOL, N_OF(POOL), in->n, in->w);
    ws_answer a;
    s_sort_last(in, &a);
    dis_words(in, r, in->w, in->n, a.s, 3);
}

/* alpha_first (word). params: w0, w1 distinct pool words; answer: the one that sorts first. */
static void s_alpha_first(const il_world_inst *in, ws_answer *a) {
    snprintf(a->s, sizeof a->s, "%s", strcmp(in->w[0], in->w[1]) < 0 ? in->w[0] : in->w[1]);
}
static void g_alpha_first(il_world_inst *in, il_rng *r, int want) {
    in->n = 2;
    pick_words(r, POOL, N_OF(POOL), 2, in->w);
    ws_answer a;
    s_alpha_first(in, &a);
    dis_words(in, r, in->w, 2, a.s, 1);
}
static void l_alpha_first(const il_world_inst *in, ws_slots *s) {
    slot(s, "a", "%s", in->w[0]);
    slot(s, "b", "%s", in->w[1]);
}

/* capital (bool). params: x a pool word, spell = x as written (capitalised when q = 1);
 * true if spell starts with a capital letter. */
static void g_capital(il_world_inst *in, il_rng *r, int want) {
    in->x = POOL[rb(r, N_OF(POOL))];
    in->q = want ? 1 : 0;
    snprintf(in->spell, sizeof in->spell, "%s", in->x);
    if (in->q) in->spell[0] = (char)toupper((unsigned char)in->spell[0]);
}
static void s_capital(const il_world_inst *in, ws_answer *a) { a->b = isupper((unsigned char)in->spell[0]) != 0; }
static void l_capital(const il_world_inst *in, ws_slots *s) { slot(s, "x", "%s", in->spell); }

/* ==== logic ==== */

/* bool_expr (bool). params: n (2..3) literals: v[i] its value, v[4+i] 1 if negated, v[8+i]
 * the operator after literal i (0 and, 1 or); "not" binds tightest, then "and", then "or". */
static void g_bool_expr(il_world_inst *in, il_rng *r, int want) {
    in->n = rrange(r, 2, 3);
    for (int i = 0; i < in->n; i++) {
        in->v[i] = rb(r, 2);
        in->v[4 + i] = rb(r, 3) == 0;
        in->v[8 + i] = i < in->n - 1 ? rb(r, 2) : 0;
    }
}
static void s_bool_expr(const il_world_inst *in, ws_answer *a) {
    int any = 0, term = in->v[0] ^ in->v[4];
    for (int i = 1; i < in->n; i++) {
        int lit = in->v[i] ^ in->v[4 + i];
        if (in->v[8 + i - 1] == 0) {
            term = term && lit;
        } else {
            any = any || term;
            term = lit;
        }
    }
    a->b = any || term;
}
static void l_bool_expr(const il_world_inst *in, ws_slots *s) {
    char buf[WS_SLOTLEN] = "";
    for (int i = 0; i < in->n; i++) {
        if (i) cat(buf, sizeof buf, in->v[8 + i - 1] ? " or " : " and ");
        if (in->v[4 + i]) cat(buf, sizeof buf, "not ");
        cat(buf, sizeof buf, in->v[i] ? "True" : "False");
    }
    slot(s, "expr", "%s", buf);
}

/* negation (bool). params: x an object, v0 its colour (index into colors), v1 the colour in
 * the claim, q 1 if the claim is negated; true if (v0 == v1) != q. */
static void g_negation(il_world_inst *in, il_rng *r, int want) {
    in->x = OBJECTS[rb(r, N_OF(OBJECTS))];
    in->q = rb(r, 2);
    in->v[0] = rb(r, N_OF(COLORS));
    int same = want ^ in->q;
    in->v[1] = same ? in->v[0] : (in->v[0] + 1 + rb(r, N_OF(COLORS) - 1)) % N_OF(COLORS);
}
static void s_negation(const il_world_inst *in, ws_answer *a) { a->b = (in->v[0] == in->v[1]) != (in->q != 0); }
static void l_negation(const il_world_inst *in, ws_slots *s) {
    slot(s, "fact", "The %s is %s.", in->x, COLORS[in->v[0]]);
    slot(s, "claim", "the %s is %s%s", in->x, in->q ? "not " : "", COLORS[in->v[1]]);
    slot(s, "Claim", "The %s is %s%s.", in->x, in->q ? "not " : "", COLORS[in->v[1]]);
}

/* The three-person height chain of tallest / deduce. params: w0 > w1 > w2 (tallest first),
 * v0 1 if the second fact is stated first, v1 / v2 1 if fact 1 (w0 vs w1) / fact 2 (w1 vs
 * w2) is phrased with "shorter". */
static void g_chain3(il_world_inst *in, il_rng *r) {
    in->n = 3;
    pick_words(r, NAMES, N_OF(NAMES), 3, in->w);
    in->v[0] = rb(r, 2);
    in->v[1] = rb(r, 2);
    in->v[2] = rb(r, 2);
}
static void fact_text(char *buf, size_t cap, const char *hi, const char *lo, int shorter) {
    char t[96];
    if (shorter)
        snprintf(t, sizeof t, "%s is shorter than %s.", lo, hi);
    else
        snprintf(t, sizeof t, "%s is taller than %s.", hi, lo);
    cat(buf, cap, t);
}
static void chain3_slots(const il_world_inst *in, ws_slots *s) {
    char buf[WS_SLOTLEN] = "";
    for (int k = 0; k < 2; k++) {
        int f = in->v[0] ? 1 - k : k; /* which fact goes k-th */
        if (k) cat(buf, sizeof buf, " ");
        fact_text(buf, sizeof buf, in->w[f], in->w[f + 1], in->v[1 + f]);
    }
    slot(s, "facts", "%s", buf);
}

/* tallest (word). params: the chain above; q 0 asks the tallest, 1 the shortest. */
static void s_tallest(const il_world_inst *in, ws_answer *a) { snprintf(a->s, sizeof a->s, "%s", in->w[in->q ? 2 : 0]); }
static void g_tallest(il_world_inst *in, il_rng *r, int want) {
    g_chain3(in, r);
    in->q = rb(r, 2);
    ws_answer a;
    s_tallest(in, &a);
    dis_words(in, r, in->w, 3, a.s, 2);
}
static void l_tallest(const il_world_inst *in, ws_slots *s) {
    chain3_slots(in, s);
    slot(s, "ext_est", "%s", in->q ? "shortest" : "tallest");
}

/* deduce (bool). params: the chain above; x = w[v3], y = w[v4] (v3 != v4); q 0 concludes
 * "x is taller than y", 1 "x is shorter than y". */
static void g_deduce(il_world_inst *in, il_rng *r, int want) {
    g_chain3(in, r);
    int p[2];
    pick_distinct(r, 3, 2, p);
    in->v[3] = p[0];
    in->v[4] = p[1];
    in->x = in->w[p[0]];
    in->y = in->w[p[1]];
    in->q = rb(r, 2);
}
static void s_deduce(const il_world_inst *in, ws_answer *a) { a->b = in->q ? in->v[3] > in->v[4] : in->v[3] < in->v[4]; }
static void l_deduce(const il_world_inst *in, ws_slots *s) {
    chain3_slots(in, s);
    slot(s, "concl", "%s is %s than %s.", in->x, in->q ? "shorter" : "taller", in->y);
}

/* truth_chain (bool). params: n (2..4) people w[0..n); v0 1 if w0 is honest (0: a liar);
 * for i >= 1, v[i] 1 if w[i] claims that w[i-1] is honest (0: a liar); x = w[n-1], the one
 * asked about (honest people's claims are true, liars' are false). */
static void g_truth_chain(il_world_inst *in, il_rng *r, int want) {
    in->n = rrange(r, 2, 4);
    pick_words(r, NAMES, N_OF(NAMES), in->n, in->w);
    for (int i = 0; i < in->n; i++) in->v[i] = rb(r, 2);
    in->x = in->w[in->n - 1];
}
static void s_truth_chain(const il_world_inst *in, ws_answer *a) {
    int t = in->v[0];
    for (int i = 1; i < in->n; i++) t = in->v[i] == t;
    a->b = t;
}
static void l_truth_chain(const il_world_inst *in, ws_slots *s) {
    char buf[WS_SLOTLEN] = "", t[96];
    snprintf(t, sizeof t, "%s is %s.", in->w[0], in->v[0] ? "honest" : "a liar");
    cat(buf, sizeof buf, t);
    for (int i = 1; i < in->n; i++) {
        snprintf(t, sizeof t, " %s claims that %s is %s.", in->w[i], in->w[i - 1], in->v[i] ? "honest" : "a liar");
        cat(buf, sizeof buf, t);
    }
    slot(s, "chain", "%s", buf);
    slot(s, "x", "%s", in->x);
}

/* steps (bool). params: n (2..4) moves v[0..n) (-5..5, never 0; > 0 forward); true if they
 * sum to 0. */
static void g_steps(il_world_inst *in, il_rng *r, int want) {
    in->n = rrange(r, 2, 4);
    int sum = 0;
    for (int i = 0; i < in->n - 1; i++) {
        in->v[i] = rrange(r, 1, 5) * (rb(r, 2) ? 1 : -1);
        sum += in->v[i];
    }
    int last;
    if (want && sum != 0 && sum >= -5 && sum <= 5)
        last = -sum;
    else
        do last = rrange(r, 1, 5) * (rb(r, 2) ? 1 : -1);
        while (last == -sum);
    in->v[in->n - 1] = last;
}
static void s_steps(const il_world_inst *in, ws_answer *a) {
    int sum = 0;
    for (int i = 0; i < in->n; i++) sum += in->v[i];
    a->b = sum == 0;
}
static void l_steps(const il_world_inst *in, ws_slots *s) {
    char buf[WS_SLOTLEN] = "", t[64];
    for (int i = 0; i < in->n; i++) {
        int k = abs(in->v[i]);
        snprintf(t, sizeof t, "%sWalk %d step%s %s.", i ? " " : "", k, k == 1 ? "" : "s",
                 in->v[i] > 0 ? "forward" : "back");
        cat(buf, sizeof buf, t);
    }
    slot(s, "moves", "%s", buf);
}

/* dyck_close (words). params: n (1..4) open brackets v[0..n) (0 '(', 1 '[', 2 '{', 3 '<');
 * answer: the closers in reverse order, space-separated. */
static void g_dyck_close(il_world_inst *in, il_rng *r, int want) {
    in->n = rrange(r, 1, 4);
    for (int i = 0; i < in->n; i++) in->v[i] = rb(r, 4);
}
static void s_dyck_close(const il_world_inst *in, ws_answer *a) {
    const char *w[IL_WORLD_MAXV];
    for (int i = 0; i < in->n; i++) w[i] = CLOSE_BR[in->v[in->n - 1 - i]];
    join(a->s, sizeof a->s, w, in->n, " ");
}
static void l_dyck_close(const il_world_inst *in, ws_slots *s) {
    const char *w[IL_WORLD_MAXV];
    for (int i = 0; i < in->n; i++) w[i] = OPEN_BR[in->v[i]];
    char buf[WS_SLOTLEN];
    join(buf, sizeof buf, w, in->n, " ");
    slot(s, "seq", "%s", buf);
}

/* dyck_balanced (bool). params: n (1..8) bracket tokens v[0..n) (0..3 open, 4..7 the
 * matching closers); true if the sequence is balanced. */
static void g_dyck_balanced(il_world_inst *in, il_rng *r, int want) {
    int pairs = rrange(r, 1, 4), opened = 0, stack[8], sp = 0;
    in->n = 0;
    while (in->n < 2 * pairs) {
        if (opened < pairs && (sp == 0 || rb(r, 2))) {
            stack[sp++] = in->v[in->n++] = rb(r, 4);
            opened++;
        } else {
            in->v[in->n++] = 4 + stack[--sp];
        }
    }
    if (!want) {
        int how = rb(r, 3), i = rb(r, in->n);
        if (how == 0) { /* change the type of one bracket */
            in->v[i] = (in->v[i] / 4) * 4 + (in->v[i] % 4 + 1 + rb(r, 3)) % 4;
        } else if (how == 1) { /* drop one bracket */
            for (int k = i; k < in->n - 1; k++) in->v[k] = in->v[k + 1];
            in->n--;
        } else if (in->n >= 2) { /* swap two neighbours */
            int j = i < in->n - 1 ? i : i - 1, t = in->v[j];
            in->v[j] = in->v[j + 1];
            in->v[j + 1] = t;
        }
    }
}
static void s_dyck_balanced(const il_world_inst *in, ws_answer *a) {
    int stack[IL_WORLD_MAXV], sp = 0, ok = in->n > 0;
    for (int i = 0; i < in->n && ok; i++) {
        if (in->v[i] < 4)
            stack[sp++] = in->v[i];
        else if (sp == 0 || stack[--sp] != in->v[i] - 4)
            ok = 0;
    }
    a->b = ok && sp == 0;
}
static void l_dyck_balanced(const il_world_inst *in, ws_slots *s) {
    const char *w[IL_WORLD_MAXV];
    for (int i = 0; i < in->n; i++) w[i] = in->v[i] < 4 ? OPEN_BR[in->v[i]] : CLOSE_BR[in->v[i] - 4];
    char buf[WS_SLOTLEN];
    join(buf, sizeof buf, w, in->n, " ");
    slot(s, "seq", "%s", buf);
}

/* ==== scenes ==== */

/* The scene of color_of / color_check / position_color: w0..w2 distinct objects, w3..w5
 * their distinct colours; q the object asked about (or its position). */
static void g_scene(il_world_inst *in, il_rng *r) {
    in->n = 3;
    pick_words(r, OBJECTS, N_OF(OBJECTS), 3, in->w);
    pick_words(r, COLORS, N_OF(COLORS), 3, in->w + 3);
    in->q = rb(r, 3);
    in->x = in->w[in->q];
}
static void scene_slots(const il_world_inst *in, ws_slots *s) {
    slot(s, "scene", "The %s is %s, the %s is %s and the %s is %s.", in->w[0], in->w[3], in->w[1], in->w[4],
         in->w[2], in->w[5]);
    slot(s, "x", "%s", in->x);
}
/* Distractor colours: the other scene colours, then one colour not in the scene. */
static void scene_color_dis(il_world_inst *in, il_rng *r, const char *ans) {
    for (int i = 3; i < 6; i++) dis_add(in, in->w[i], ans);
    for (int tries = 0; tries < 64 && in->n_dis < 3; tries++) {
        const char *c = COLORS[rb(r, N_OF(COLORS))];
        if (!in_list(in->w + 3, 3, c)) dis_add(in, c, ans);
    }
}

/* color_of (word). params: the scene; answer w[3+q], the colour of x = w[q]. */
static void s_color_of(const il_world_inst *in, ws_answer *a) { snprintf(a->s, sizeof a->s, "%s", in->w[3 + in->q]); }
static void g_color_of(il_world_inst *in, il_rng *r, int want) {
    g_scene(in, r);
    scene_color_dis(in, r, in->w[3 + in->q]);
}

/* color_check (bool). params: the scene; y a colour; true if x = w[q] has colour y. */
static void g_color_check(il_world_inst *in, il_rng *r, int want) {
    g_scene(in, r);
    if (want)
        in->y = in->w[3 + in->q];
    else if (rb(r, 2))
        in->y = in->w[3 + (in->q + 1 + rb(r, 2)) % 3];
    else
        do in->y = COLORS[rb(r, N_OF(COLORS))];
        while (in_list(in->w + 3, 3, in->y));
}
static void s_color_check(const il_world_inst *in, ws_answer *a) { a->b = !strcmp(in->w[3 + in->q], in->y); }
static void l_color_check(const il_world_inst *in, ws_slots *s) {
    scene_slots(in, s);
    slot(s, "y", "%s", in->y);
}

static void side_slots(ws_slots *s, int q) {
    static const char *const side[] = {"on the far left", "in the middle", "on the far right"};
    static const char *const adj[] = {"leftmost", "middle", "rightmost"};
    slot(s, "side", "%s", side[q]);
    slot(s, "side_adj", "%s", adj[q]);
}

/* position (word). params: w0..w2 distinct objects from left to right; q 0 left, 1 middle,
 * 2 right; answer w[q]. */
static void s_position(const il_world_inst *in, ws_answer *a) { snprintf(a->s, sizeof a->s, "%s", in->w[in->q]); }
static void g_position(il_world_inst *in, il_rng *r, int want) {
    in->n = 3;
    const char *w[4];
    pick_words(r, OBJECTS, N_OF(OBJECTS), 4, w);
    for (int i = 0; i < 3; i++) in->w[i] = w[i];
    in->q = rb(r, 3);
    for (int i = 0; i < 4; i++) dis_add(in, w[i], in->w[in->q]);
}
static void l_position(const il_world_inst *in, ws_slots *s) {
    char t[3][48];
    const char *w[3];
    for (int i = 0; i < 3; i++) {
        snprintf(t[i], sizeof t[i], "%s %s", article(in->w[i]), in->w[i]);
        w[i] = t[i];
    }
    char buf[WS_SLOTLEN];
    join_and(buf, sizeof buf, w, 3);
    slot(s, "row", "%s", buf);
    side_slots(s, in->q);
}

/* position_color (word). params: the scene read from left to right (w0..w2 objects, w3..w5
 * colours); q 0 left, 1 middle, 2 right; answer w[3+q]. */
static void g_position_color(il_world_inst *in, il_rng *r, int want) {
    g_scene(in, r);
    scene_color_dis(in, r, in->w[3 + in->q]);
}
static void l_position_color(const il_world_inst *in, ws_slots *s) {
    char t[3][64];
    const char *w[3];
    for (int i = 0; i < 3; i++) {
        snprintf(t[i], sizeof t[i], "%s %s %s", article(in->w[3 + i]), in->w[3 + i], in->w[i]);
        w[i] = t[i];
    }
    char buf[WS_SLOTLEN];
    join_and(buf, sizeof buf, w, 3);
    slot(s, "crow", "%s", buf);
    side_slots(s, in->q);
}

/* count_objects (int). params: n (2..4) distinct objects, v[8+i] their index into objects
 * (w[i] the singular), v[i] how many (1..3); answer: the sum. */
static void s_count_objects(const il_world_inst *in, ws_answer *a) {
    a->i = 0;
    for (int i = 0; i < in->n; i++) a->i += in->v[i];
}
static void g_count_objects(il_world_inst *in, il_rng *r, int want) {
    in->n = rrange(r, 2, 4);
    pick_distinct(r, N_OF(OBJECTS), in->n, in->v + 8);
    for (int i = 0; i < in->n; i++) {
        in->w[i] = OBJECTS[in->v[8 + i]];
        in->v[i] = rrange(r, 1, 3);
    }
    ws_answer a;
    s_count_objects(in, &a);
    dis_ints(in, r, a.i, 1, 14, 3);
}
static void l_count_objects(const il_world_inst *in, ws_slots *s) {
    char t[IL_WORLD_MAXV][48];
    const char *w[IL_WORLD_MAXV];
    for (int i = 0; i < in->n; i++) {
        if (in->v[i] == 1)
            snprintf(t[i], sizeof t[i], "%s %s", article(in->w[i]), in->w[i]);
        else
            snprintf(t[i], sizeof t[i], "%s %s", NUMWORDS[in->v[i]], OBJECT_PLURALS[in->v[8 + i]]);
        w[i] = t[i];
    }
    char buf[WS_SLOTLEN];
    join_and(buf, sizeof buf, w, in->n);
    slot(s, "things", "%s", buf);
}

/* swap (word). params: w0..w2 people, w3..w5 the objects they start with (w[i] has
 * w[3+i]); n (1..2) swaps, swap k exchanges the objects of people v[2k] and v[2k+1];
 * q the person asked about (x = w[q]). */
static void s_swap(const il_world_inst *in, ws_answer *a) {
    int has[3] = {0, 1, 2};
    for (int k = 0; k < in->n; k++) {
        int i = in->v[2 * k], j = in->v[2 * k + 1], t = has[i];
        has[i] = has[j];
        has[j] = t;
    }
    snprintf(a->s, sizeof a->s, "%s", in->w[3 + has[in->q]]);
}
static void g_swap(il_world_inst *in, il_rng *r, int want) {
    pick_words(r, NAMES, N_OF(NAMES), 3, in->w);
    pick_words(r, OBJECTS, N_OF(OBJECTS), 3, in->w + 3);
    in->n = rrange(r, 1, 2);
    for (int k = 0; k < in->n; k++) pick_distinct(r, 3, 2, in->v + 2 * k);
    in->q = rb(r, 3);
    in->x = in->w[in->q];
    ws_answer a;
    s_swap(in, &a);
    dis_words(in, r, in->w + 3, 3, a.s, 2);
}
static void l_swap(const il_world_inst *in, ws_slots *s) {
    slot(s, "start", "%s has %s %s, %s has %s %s and %s has %s %s.", in->w[0], article(in->w[3]), in->w[3], in->w[1],
         article(in->w[4]), in->w[4], in->w[2], article(in->w[5]), in->w[5]);
    char buf[WS_SLOTLEN] = "", t[96];
    for (int k = 0; k < in->n; k++) {
        snprintf(t, sizeof t, "%s%s trades with %s.", k ? " Then " : "", in->w[in->v[2 * k]], in->w[in->v[2 * k + 1]]);
        cat(buf, sizeof buf, t);
    }
    slot(s, "swaps", "%s", buf);
    slot(s, "x", "%s", in->x);
}

/* ==== lexicon skills ==== */

/* A word of a pair list (antonyms, synonyms, plurals): v0 the pair, v1 the side shown. */
static void g_pair(il_world_inst *in, il_rng *r, const char *const *pairs, int n_pairs, int side) {
    in->n = 1;
    in->v[0] = rb(r, n_pairs);
    in->v[1] = side < 0 ? rb(r, 2) : side;
    in->x = pairs[2 * in->v[0] + in->v[1]];
}
/* Distractors: words of other pairs (a random side, or `side` if >= 0). */
static void pair_dis(il_world_inst *in, il_rng *r, const char *const *pairs, int n_pairs, int side, const char *ans) {
    int idx[64];
    pick_distinct(r, n_pairs, n_pairs, idx);
    for (int i = 0; i < n_pairs && in->n_dis < 3; i++)
        if (idx[i] != in->v[0]) dis_add(in, pairs[2 * idx[i] + (side < 0 ? rb(r, 2) : side)], ans);
}
static void s_pair_other(const il_world_inst *in, ws_answer *a, const char *const *pairs) {
    snprintf(a->s, sizeof a->s, "%s", pairs[2 * in->v[0] + 1 - in->v[1]]);
}
static void l_x(const il_world_inst *in, ws_slots *s) {
    slot(s, "x", "%s", in->x);
    slot(s, "x_a", "%s %s", article(in->x), in->x);
}
static void l_plural(const il_world_inst *in, ws_slots *s) {
    l_x(in, s);
    slot(s, "k", "%s", NUMWORDS[in->v[2]]);
}
static void l_xy(const il_world_inst *in, ws_slots *s) {
    slot(s, "x", "%s", in->x);
    slot(s, "y", "%s", in->y);
}

/* antonym (word). params: v0 an antonym pair, v1 the side shown (x); answer the other. */
static void s_antonym(const il_world_inst *in, ws_answer *a) { s_pair_other(in, a, ANTONYMS); }
static void g_antonym(il_world_inst *in, il_rng *r, int want) {
    g_pair(in, r, ANTONYMS, N_OF(ANTONYMS) / 2, -1);
    pair_dis(in, r, ANTONYMS, N_OF(ANTONYMS) / 2, -1, ANTONYMS[2 * in->v[0] + 1 - in->v[1]]);
}

/* antonym_check (bool). params: x from antonym pair v0 (side v1); y the word offered; true
 * if x and y are an antonym pair. */
static void g_antonym_check(il_world_inst *in, il_rng *r, int want) {
    const int np = N_OF(ANTONYMS) / 2;
    g_pair(in, r, ANTONYMS, np, -1);
    if (want)
        in->y = ANTONYMS[2 * in->v[0] + 1 - in->v[1]];
    else
        in->y = ANTONYMS[2 * ((in->v[0] + 1 + rb(r, np - 1)) % np) + rb(r, 2)];
}
static void s_antonym_check(const il_world_inst *in, ws_answer *a) {
    a->b = 0;
    for (int i = 0; i < N_OF(ANTONYMS); i += 2)
        if ((!strcmp(ANTONYMS[i], in->x) && !strcmp(ANTONYMS[i + 1], in->y)) ||
            (!strcmp(ANTONYMS[i + 1], in->x) && !strcmp(ANTONYMS[i], in->y)))
            a->b = 1;
}

/* synonym (word). params: v0 a synonym pair, v1 the side shown (x); answer the other. */
static void s_synonym(const il_world_inst *in, ws_answer *a) { s_pair_other(in, a, SYNONYMS); }
static void g_synonym(il_world_inst *in, il_rng *r, int want) {
    g_pair(in, r, SYNONYMS, N_OF(SYNONYMS) / 2, -1);
    pair_dis(in, r, SYNONYMS, N_OF(SYNONYMS) / 2, -1, SYNONYMS[2 * in->v[0] + 1 - in->v[1]]);
}

/* plural (word). params: v0 a noun (pair index into plurals), x its singular, v2 a count
 * 2..9 that some templates mention ("{k}"); answer the plural. */
static void s_plural(const il_world_inst *in, ws_answer *a) { snprintf(a->s, sizeof a->s, "%s", PLURALS[2 * in->v[0] + 1]); }
static void g_plural(il_world_inst *in, il_rng *r, int want) {
    g_pair(in, r, PLURALS, N_OF(PLURALS) / 2, 0);
    in->v[2] = rrange(r, 2, 9);
    const char *ans = PLURALS[2 * in->v[0] + 1];
    char t[IL_WORLD_OPTLEN];
    snprintf(t, sizeof t, "%ss", in->x); /* the naive forms */
    dis_add(in, t, ans);
    snprintf(t, sizeof t, "%ses", in->x);
    dis_add(in, t, ans);
    pair_dis(in, r, PLURALS, N_OF(PLURALS) / 2, 1, ans);
}

/* singular (word). params: v0 a noun (pair index into plurals), x its plural; answer the
 * singular. */
static void s_singular(const il_world_inst *in, ws_answer *a) { snprintf(a->s, sizeof a->s, "%s", PLURALS[2 * in->v[0]]); }
static void g_singular(il_world_inst *in, il_rng *r, int want) {
    g_pair(in, r, PLURALS, N_OF(PLURALS) / 2, 1);
    pair_dis(in, r, PLURALS, N_OF(PLURALS) / 2, 0, PLURALS[2 * in->v[0]]);
}

/* bigger_animal (word). params: v0, v1 distinct indices into animals_by_size (x, y the
 * animals); q 0 asks the bigger, 1 the smaller. */
static void s_bigger_animal(const il_world_inst *in, ws_answer *a) {
    int big = in->v[0] > in->v[1];
    const char *ans = (big != (in->q != 0)) ? in->x : in->y;
    snprintf(a->s, sizeof a->s, "%s", ans);
}
static void g_bigger_animal(il_world_inst *in, il_rng *r, int want) {
    in->n = 2;
    pick_distinct(r, N_OF(ANIMALS_BY_SIZE), 2, in->v);
    in->x = ANIMALS_BY_SIZE[in->v[0]];
    in->y = ANIMALS_BY_SIZE[in->v[1]];
    in->q = rb(r, 2);
    ws_answer a;
    s_bigger_animal(in, &a);
    dis_add(in, strcmp(a.s, in->x) ? in->x : in->y, a.s);
}
static void l_bigger_animal(const il_world_inst *in, ws_slots *s) {
    slot(s, "a", "%s", in->x);
    slot(s, "b", "%s", in->y);
    slot(s, "a_a", "%s %s", article(in->x), in->x);
    slot(s, "b_a", "%s %s", article(in->y), in->y);
    slot(s, "ext_er", "%s", in->q ? "smaller" : "bigger");
}

/* day_shift (word). params: v0 the day (0 Monday), v1 k (1..3); answer the day k later. */
static void s_day_shift(const il_world_inst *in, ws_answer *a) {
    snprintf(a->s, sizeof a->s, "%s", DAYS[(in->v[0] + in->v[1]) % 7]);
}
static void g_day_shift(il_world_inst *in, il_rng *r, int want) {
    in->n = 1;
    in->v[0] = rb(r, 7);
    in->v[1] = rrange(r, 1, 3);
    const char *ans = DAYS[(in->v[0] + in->v[1]) % 7];
    dis_add(in, DAYS[(in->v[0] + in->v[1] + 1) % 7], ans);
    dis_add(in, DAYS[(in->v[0] + in->v[1] + 6) % 7], ans);
    dis_add(in, DAYS[in->v[0]], ans);
}
static void l_day_shift(const il_world_inst *in, ws_slots *s) {
    slot(s, "day", "%s", DAYS[in->v[0]]);
    slot(s, "k_days", "%s day%s", NUMWORDS[in->v[1]], in->v[1] == 1 ? "" : "s");
}

/* category_pick (word). params: v0 the category asked (0 fruit, 1 vehicle, 2 animal,
 * 3 color); w0..w3 four words, exactly one of category v0, the others of other
 * categories; answer that one. */
static void s_category_pick(const il_world_inst *in, ws_answer *a) {
    a->s[0] = 0;
    for (int i = 0; i < in->n; i++)
        if (in_list(CAT_WORDS[in->v[0]], CAT_N[in->v[0]], in->w[i])) snprintf(a->s, sizeof a->s, "%s", in->w[i]);
}
static void g_category_pick(il_world_inst *in, il_rng *r, int want) {
    in->n = 4;
    in->v[0] = rb(r, 4);
    int pos = rb(r, 4);
    for (int i = 0; i < 4; i++) {
        int c = in->v[0];
        if (i != pos) c = (in->v[0] + 1 + rb(r, 3)) % 4;
        do in->w[i] = CAT_WORDS[c][rb(r, CAT_N[c])];
        while (in_list(in->w, i, in->w[i]));
    }
    for (int i = 0; i < 4; i++) dis_add(in, in->w[i], in->w[pos]);
}
static void l_category_pick(const il_world_inst *in, ws_slots *s) {
    list_slots(in, s);
    slot(s, "cat", "%s", CAT_NAMES[in->v[0]]);
    slot(s, "cat_a", "%s %s", article(CAT_NAMES[in->v[0]]), CAT_NAMES[in->v[0]]);
}

/* category_check (bool). params: v0 the category asked, x a word of category v1; true if
 * x is in category v0. */
static void g_category_check(il_world_inst *in, il_rng *r, int want) {
    in->n = 1;
    in->v[0] = rb(r, 4);
    in->v[1] = want ? in->v[0] : (in->v[0] + 1 + rb(r, 3)) % 4;
    in->x = CAT_WORDS[in->v[1]][rb(r, CAT_N[in->v[1]])];
}
static void s_category_check(const il_world_inst *in, ws_answer *a) {
    a->b = in_list(CAT_WORDS[in->v[0]], CAT_N[in->v[0]], in->x);
}
static void l_category_check(const il_world_inst *in, ws_slots *s) {
    l_x(in, s);
    slot(s, "cat", "%s", CAT_NAMES[in->v[0]]);
    slot(s, "cat_a", "%s %s", article(CAT_NAMES[in->v[0]]), CAT_NAMES[in->v[0]]);
}

/* odd_one_out (word). params: v0 the main category, v1 the odd one's; w0..w3 three words
 * of v0 and one of v1; answer that one. */
static void s_odd_one_out(const il_world_inst *in, ws_answer *a) {
    a->s[0] = 0;
    for (int i = 0; i < in->n; i++)
        if (!in_list(CAT_WORDS[in->v[0]], CAT_N[in->v[0]], in->w[i])) snprintf(a->s, sizeof a->s, "%s", in->w[i]);
}
static void g_odd_one_out(il_world_inst *in, il_rng *r, int want) {
    in->n = 4;
    in->v[0] = rb(r, 4);
    in->v[1] = (in->v[0] + 1 + rb(r, 3)) % 4;
    int pos = rb(r, 4), m = 0;
    const char *main3[3];
    pick_words(r, CAT_WORDS[in->v[0]], CAT_N[in->v[0]], 3, main3);
    for (int i = 0; i < 4; i++) in->w[i] = i == pos ? CAT_WORDS[in->v[1]][rb(r, CAT_N[in->v[1]])] : main3[m++];
    for (int i = 0; i < 4; i++) dis_add(in, in->w[i], in->w[pos]);
}
static void l_list(const il_world_inst *in, ws_slots *s) { list_slots(in, s); }

/* ---- the table ---- */

#define SKILL(name, type, desc, g, s, l) {#name, desc, type, g, s, l}
const ws_skill ws_skills[] = {
    SKILL(num_compare, WS_BOOL, "is a greater (less) than b, numbers 0-99", g_num_compare, s_num_compare, l_num_compare),
    SKILL(num_pick, WS_INT, "the larger (smaller) of two numbers 0-99", g_num_pick, s_num_pick, l_num_pick),
    SKILL(parity, WS_BOOL, "is n even (odd), n 0-199", g_parity, s_parity, l_parity),
    SKILL(parity_name, WS_WORD, "even or odd, n 0-199", g_parity_name, s_parity_name, l_parity_name),
    SKILL(add, WS_INT, "a + b, 0-20 each", g_add, s_add, l_ab),
    SKILL(sub, WS_INT, "a - b, 0-20 each (may be negative)", g_sub, s_sub, l_ab),
    SKILL(arith_chain, WS_INT, "a +/- b +/- c, digits, left to right", g_arith_chain, s_arith_chain, l_arith_chain),
    SKILL(list_extreme, WS_INT, "largest (smallest) of 3-5 numbers 0-50", g_list_extreme, s_list_extreme, l_list_extreme),
    SKILL(increasing, WS_BOOL, "are 3-5 numbers strictly increasing", g_increasing, s_increasing, l_seq),
    SKILL(sum_parity, WS_BOOL, "is a + b even (odd): add + parity", g_sum_parity, s_sum_parity, l_sum_parity),
    SKILL(sum_compare, WS_BOOL, "is a + b more than c: add + compare", g_sum_compare, s_sum_compare, l_sum_compare),
    SKILL(max_parity, WS_BOOL, "is the largest of 3-5 numbers even (odd): extreme + parity", g_max_parity,
          s_max_parity, l_max_parity),
    SKILL(member, WS_BOOL, "is a word in a list of 3-6", g_member, s_member, l_member),
    SKILL(count_word, WS_INT, "occurrences of a word in a list of 4-8", g_count_word, s_count_word, l_count_word),
    SKILL(count_compare, WS_BOOL, "does x occur more often than y: count + compare", g_count_compare,
          s_count_compare, l_count_compare),
    SKILL(last_item, WS_WORD, "last word of a list of 3-5", g_last_item, s_last_item, l_list),
    SKILL(sort_words, WS_WORDS, "sort 2-4 words alphabetically", g_words, s_sort_words, l_list),
    SKILL(reverse_words, WS_WORDS, "reverse 2-4 words", g_words, s_reverse_words, l_list),
    SKILL(sort_last, WS_WORD, "the word that sorts last of 3-4: sort + last", g_sort_last, s_sort_last, l_list),
    SKILL(alpha_first, WS_WORD, "which of two words sorts first", g_alpha_first, s_alpha_first, l_alpha_first),
    SKILL(capital, WS_BOOL, "does a word start with a capital letter", g_capital, s_capital, l_capital),
    SKILL(bool_expr, WS_BOOL, "2-3 True/False literals with not/and/or", g_bool_expr, s_bool_expr, l_bool_expr),
    SKILL(negation, WS_BOOL, "a (negated) colour claim against a fact", g_negation, s_negation, l_negation),
    SKILL(tallest, WS_WORD, "tallest (shortest) of three people from two comparisons", g_tallest, s_tallest,
          l_tallest),
    SKILL(deduce, WS_BOOL, "does a height conclusion follow from two comparisons", g_deduce, s_deduce, l_deduce),
    SKILL(truth_chain, WS_BOOL, "2-4 honest people or liars, each judging the previous one", g_truth_chain,
          s_truth_chain, l_truth_chain),
    SKILL(steps, WS_BOOL, "do 2-4 forward/back moves return to the start", g_steps, s_steps, l_steps),
    SKILL(dyck_close, WS_WORDS, "the closers of 1-4 open brackets", g_dyck_close, s_dyck_close, l_dyck_close),
    SKILL(dyck_balanced, WS_BOOL, "is a sequence of up to 8 brackets balanced", g_dyck_balanced, s_dyck_balanced,
          l_dyck_balanced),
    SKILL(color_of, WS_WORD, "colour of one of three described objects", g_color_of, s_color_of, scene_slots),
    SKILL(color_check, WS_BOOL, "does an object of a described scene have colour y", g_color_check, s_color_check,
          l_color_check),
    SKILL(position, WS_WORD, "left/middle/right object of a row of three", g_position, s_position, l_position),
    SKILL(position_color, WS_WORD, "colour of the left/middle/right object: position + colour", g_position_color,
          s_color_of, l_position_color),
    SKILL(count_objects, WS_INT, "total count of 2-4 kinds of objects (1-3 each)", g_count_objects,
          s_count_objects, l_count_objects),
    SKILL(swap, WS_WORD, "who holds what after 1-2 swaps among three people", g_swap, s_swap, l_swap),
    SKILL(antonym, WS_WORD, "antonym from a lexicon of 30 pairs", g_antonym, s_antonym, l_x),
    SKILL(antonym_check, WS_BOOL, "are x and y antonyms", g_antonym_check, s_antonym_check, l_xy),
    SKILL(synonym, WS_WORD, "synonym from a lexicon of 16 pairs", g_synonym, s_synonym, l_x),
    SKILL(plural, WS_WORD, "plural of a noun (24, many irregular)", g_plural, s_plural, l_plural),
    SKILL(singular, WS_WORD, "singular of a plural noun", g_singular, s_singular, l_x),
    SKILL(bigger_animal, WS_WORD, "bigger (smaller) of two animals", g_bigger_animal, s_bigger_animal,
          l_bigger_animal),
    SKILL(day_shift, WS_WORD, "weekday 1-3 days after a given day", g_day_shift, s_day_shift, l_day_shift),
    SKILL(category_pick, WS_WORD, "which of four words is a fruit/vehicle/animal/colour", g_category_pick,
          s_category_pick, l_category_pick),
    SKILL(category_check, WS_BOOL, "is a word a fruit/vehicle/animal/colour", g_category_check, s_category_check,
          l_category_check),
    SKILL(odd_one_out, WS_WORD, "the word of another category among four", g_odd_one_out, s_odd_one_out, l_list),
};
const int ws_n_skills = N_OF(ws_skills);

int ws_skill_find(const char *name) {
    for (int i = 0; i < ws_n_skills; i++)
        if (!strcmp(ws_skills[i].name, name)) return i;
    return -1;
}
