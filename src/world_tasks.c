/* world_tasks.c - the families and held-out tasks of ilora's world as data (skill, answer
 * format, instruction templates), the template renderer, answer formats in BBH's layouts,
 * and the writer of the task files. See world_tasks.h; the skills are in world_skills.c. */
#include "world_tasks.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"
#include "world_skills.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

enum { F_LETTER, F_YESNO, F_YESNO_OPT, F_YESNO_LOWER, F_TF, F_VALID, F_NUMBER, F_WORD, F_WORDS };
static const char *const FORMAT_NAMES[] = {"letter",     "yes/no",        "yes/no+options", "yes/no-lower", "true/false",
                                           "valid/invalid", "number",     "word",           "words"};

#define MAX_TMPL 3
typedef struct {
    const char *skill;
    int format;
    const char *tmpl[MAX_TMPL]; /* NULL-terminated when fewer */
} part_def;

typedef struct {
    const char *name;
    part_def p;
} family_def;

typedef struct {
    const char *name, *kind, *desc;
    part_def parts[3];
    int n_parts;
} heldout_def;

/* ---- upstream families: 50 ---- */
static const family_def FAMILIES[] = {
    {"num_greater_yesno", {"num_compare", F_YESNO,
        {"Is {a} {rel} than {b}?",
         "Here are two numbers, {a} and {b}. Is the first one {rel} than the second?"}}},
    {"num_greater_tf", {"num_compare", F_TF, {"True or false: {a} is {rel} than {b}."}}},
    {"num_pick_letter", {"num_pick", F_LETTER, {"Which of these numbers is {ext_er}?"}}},
    {"num_pick_number", {"num_pick", F_NUMBER,
        {"Write the {ext_er} of {a} and {b}.", "{a} or {b}: which one is {ext_er}?"}}},
    {"parity_yesno", {"parity", F_YESNO_OPT, {"Is {n} {an_par} number?"}}},
    {"parity_tf", {"parity", F_TF, {"True or false: the number {n} is {par}."}}},
    {"member_yesno", {"member", F_YESNO,
        {"Words: {list}. Is {x} among them?", "Does the list {list} contain {x}?"}}},
    {"member_tf", {"member", F_TF, {"Statement: {x} is one of {list}. True or false?"}}},
    {"count_word_number", {"count_word", F_NUMBER,
        {"How many times does {x} appear in this list: {list_sp}?", "Count the word {x} in: {list_sp}"}}},
    {"count_word_letter", {"count_word", F_LETTER, {"In the sequence {list_sp}, how often do you see {x}?"}}},
    {"last_item_word", {"last_item", F_WORD,
        {"What is the last word in the list {list}?", "Name the final item: {list}."}}},
    {"last_item_letter", {"last_item", F_LETTER, {"Which item comes at the end of the list {list}?"}}},
    {"sort_words", {"sort_words", F_WORDS,
        {"Put these words in alphabetical order: {list_sp}", "Alphabetize: {list_sp}"}}},
    {"reverse_words", {"reverse_words", F_WORDS, {"Reverse the order of these words: {list_sp}"}}},
    {"add_number", {"add", F_NUMBER, {"What is {a} plus {b}?", "{a} + {b} ="}}},
    {"add_letter", {"add", F_LETTER, {"Add {a} and {b}. What is the total?"}}},
    {"sub_number", {"sub", F_NUMBER, {"What is {a} minus {b}?", "{a} - {b} ="}}},
    {"arith_chain_number", {"arith_chain", F_NUMBER, {"Compute {expr}.", "{expr} ="}}},
    {"bool_expr_tf", {"bool_expr", F_TF,
        {"Evaluate the logic expression: {expr}", "What is the value of {expr}?"}}},
    {"negation_yesno", {"negation", F_YESNO, {"{fact} Is it true that {claim}?"}}},
    {"negation_tf", {"negation", F_TF, {"Fact: {fact} Claim: {Claim} Is the claim true or false?"}}},
    {"color_of_word", {"color_of", F_WORD, {"{scene} What color is the {x}?"}}},
    {"color_of_letter", {"color_of", F_LETTER, {"{scene} Which color does the {x} have?"}}},
    {"position_word", {"position", F_WORD, {"From left to right there is {row}. Which object is {side}?"}}},
    {"position_letter", {"position", F_LETTER, {"On a shelf, from left to right: {row}. What is the {side_adj} object?"}}},
    {"antonym_word", {"antonym", F_WORD, {"What is the opposite of {x}?", "Give the antonym of the word {x}."}}},
    {"antonym_letter", {"antonym", F_LETTER, {"Which word means the opposite of {x}?"}}},
    {"synonym_word", {"synonym", F_WORD, {"Give a word that means the same as {x}."}}},
    {"synonym_letter", {"synonym", F_LETTER, {"Which word is closest in meaning to {x}?"}}},
    {"plural_word", {"plural", F_WORD, {"What is the plural of {x}?"}}},
    {"singular_word", {"singular", F_WORD, {"What is the singular form of {x}?"}}},
    {"capital_yesno", {"capital", F_YESNO_LOWER, {"Does the word {x} start with a capital letter?"}}},
    {"increasing_yesno", {"increasing", F_YESNO_OPT, {"Sequence: {seq}. Does every number go up from the one before it?"}}},
    {"increasing_tf", {"increasing", F_TF, {"The numbers {seq} are in increasing order."}}},
    {"tallest_letter", {"tallest", F_LETTER, {"{facts} Who is the {ext_est}?"}}},
    {"deduce_valid", {"deduce", F_VALID, {"{facts} Conclusion: {concl} Does the conclusion follow from the facts?"}}},
    {"list_extreme_number", {"list_extreme", F_NUMBER, {"What is the {ext_est} number in {seq}?"}}},
    {"list_extreme_letter", {"list_extreme", F_LETTER, {"Numbers: {seq}. Which one is the {ext_est}?"}}},
    {"count_objects_number", {"count_objects", F_NUMBER, {"On my shelf there are {things}. What is the total number of items?"}}},
    {"category_pick_letter", {"category_pick", F_LETTER, {"Which of the following is {cat_a}?"}}},
    {"category_check_yesno", {"category_check", F_YESNO, {"Is {x_a} {cat_a}?"}}},
    {"odd_one_out_letter", {"odd_one_out", F_LETTER, {"Which word does not belong with the others?"}}},
    {"day_shift_word", {"day_shift", F_WORD, {"If today is {day}, what day will it be in {k_days}?"}}},
    {"truth_chain_yesno", {"truth_chain", F_YESNO, {"{chain} Is {x} honest?"}}},
    {"steps_yesno", {"steps", F_YESNO_OPT, {"You stand on a line. {moves} Are you back at the place you started?"}}},
    {"swap_letter", {"swap", F_LETTER, {"{start} {swaps} What does {x} have now?"}}},
    {"alpha_first_letter", {"alpha_first", F_LETTER, {"Which word comes first in a dictionary?"}}},
    {"dyck_close_words", {"dyck_close", F_WORDS, {"Close all open brackets in order: {seq}"}}},
    {"dyck_valid", {"dyck_balanced", F_VALID, {"Bracket sequence: {seq}. Is it correctly balanced?"}}},
    {"bigger_animal_letter", {"bigger_animal", F_LETTER, {"Which animal is {ext_er}?"}}},
};

/* ---- held-out tasks: 15. None of their templates is used upstream (the test checks that
 * no four consecutive words of a held-out template occur in an upstream one). ---- */
static const heldout_def HELDOUT[] = {
    /* (a) re-phrasings / re-formattings of one upstream skill */
    {"heldout_parity_letter", "rephrase", "parity as a choice between (A)/(B) even and odd (upstream: yes/no, True/False)",
     {{"parity_name", F_LETTER, {"Classify the number {n}: is it even or odd?"}}}, 1},
    {"heldout_antonym_yesno", "rephrase", "antonyms as a yes/no check of a given pair (upstream: name or pick the antonym)",
     {{"antonym_check", F_YESNO_OPT,
       {"Do {x} and {y} have opposite meanings?", "Would {x} and {y} count as opposites?",
        "{x} versus {y}: are these antonyms?"}}}, 1},
    {"heldout_count_objects_letter", "rephrase", "object counting with numeric options (upstream: a plain number)",
     {{"count_objects", F_LETTER, {"My bag holds {things}. Count every item in the bag."}}}, 1},
    {"heldout_color_yesno", "rephrase", "colour of a described object as a yes/no check (upstream: name or pick the colour)",
     {{"color_check", F_YESNO, {"{scene} Would you say the {x} is {y}?"}}}, 1},
    {"heldout_bool_expr_yesno", "rephrase", "boolean expressions answered Yes/No (upstream: True/False)",
     {{"bool_expr", F_YESNO, {"Does the expression {expr} come out True?", "Work out {expr}. Do you get True?"}}}, 1},
    /* (b) combinations of two upstream skills */
    {"heldout_count_compare", "combine", "count_word + num_compare: does x occur more often than y",
     {{"count_compare", F_YESNO, {"Look at {list_sp}. Does {x} occur more often than {y} there?"}}}, 1},
    {"heldout_sum_parity", "combine", "add + parity: is a + b even (odd)",
     {{"sum_parity", F_TF, {"When you add {a} and {b}, the result is {par}."}}}, 1},
    {"heldout_sort_last", "combine", "sort_words + last_item: the word that comes last alphabetically",
     {{"sort_last", F_WORD, {"If the words {list} were sorted alphabetically, which word would come last?"}}}, 1},
    {"heldout_position_color", "combine", "position + color_of: the colour of the left/middle/right object",
     {{"position_color", F_LETTER, {"Left to right, a table holds {crow}. Tell the color of the {side_adj} thing."}}}, 1},
    {"heldout_sum_compare", "combine", "add + num_compare: is a + b more than c",
     {{"sum_compare", F_YESNO_LOWER, {"Is the sum of {a} and {b} more than {c}?"}}}, 1},
    {"heldout_max_parity", "combine", "list_extreme + parity: is the largest number even (odd)",
     {{"max_parity", F_TF, {"Among {seq}, the biggest value is {an_par} number."}}}, 1},
    /* (c) mixtures: instances of different skills with different instructions */
    {"heldout_mix_compare_sort", "mix", "mixture: num_pick as letters + sort_words as a word list",
     {{"num_pick", F_LETTER, {"Out of {a} and {b}, pick the {ext2} value."}},
      {"sort_words", F_WORDS, {"Reorder from A to Z: {list_sp}"}}}, 2},
    {"heldout_mix_bool_count_color", "mix", "mixture: bool_expr as True/False + count_word as a number + color_of as a word",
     {{"bool_expr", F_TF, {"Decide if this holds: {expr}"}},
      {"count_word", F_NUMBER, {"Tally the copies of {x} here: {list_sp}"}},
      {"color_of", F_WORD, {"{scene} Tell me the {x}'s color."}}}, 3},
    {"heldout_mix_antonym_parity_member", "mix", "mixture: antonym as letters + parity as Yes/No + member as True/False",
     {{"antonym", F_LETTER, {"Find the word with the reverse meaning of {x}."}},
      {"parity", F_YESNO, {"Would you call {n} {an_par} number?"}},
      {"member", F_TF, {"Claim: the group {list} includes {x}."}}}, 3},
    {"heldout_mix_arith_position_plural", "mix", "mixture: sub as a number + position as letters + plural as a word",
     {{"sub", F_NUMBER, {"Take {b} away from {a}. What remains?"}},
      {"position", F_LETTER, {"Picture a row, left to right: {row}. Which thing is {side}?"}},
      {"plural", F_WORD, {"There is one {x}. What do you call {k} of them?"}}}, 3},
};

static const char CANARY[] = "ILORA WORLD HELD-OUT TASK: synthetic evaluation data generated by `ilora world "
                             "tasks` (not BIG-Bench data). Never train on it.";

/* ---- table access ---- */

static int n_tmpl(const part_def *p) {
    int n = 0;
    while (n < MAX_TMPL && p->tmpl[n]) n++;
    return n;
}

static const family_def *family(int f) {
    if (f < 0 || f >= N_OF(FAMILIES)) {
        il_seterr("world: family index %d out of range [0, %d)", f, N_OF(FAMILIES));
        return NULL;
    }
    return &FAMILIES[f];
}

static const heldout_def *heldout(int h) {
    if (h < 0 || h >= N_OF(HELDOUT)) {
        il_seterr("world: held-out task index %d out of range [0, %d)", h, N_OF(HELDOUT));
        return NULL;
    }
    return &HELDOUT[h];
}

static const part_def *heldout_part(int h, int p) {
    const heldout_def *d = heldout(h);
    if (!d) return NULL;
    if (p < 0 || p >= d->n_parts) {
        il_seterr("world: %s: part %d out of range [0, %d)", d->name, p, d->n_parts);
        return NULL;
    }
    return &d->parts[p];
}

int il_world_n_families(void) { return N_OF(FAMILIES); }
const char *il_world_family_name(int f) { const family_def *d = family(f); return d ? d->name : NULL; }
const char *il_world_family_skill(int f) { const family_def *d = family(f); return d ? d->p.skill : NULL; }
const char *il_world_family_format(int f) {
    const family_def *d = family(f);
    return d ? FORMAT_NAMES[d->p.format] : NULL;
}
int il_world_family_n_templates(int f) { const family_def *d = family(f); return d ? n_tmpl(&d->p) : -1; }
const char *il_world_family_template(int f, int t) {
    const family_def *d = family(f);
    if (!d) return NULL;
    if (t < 0 || t >= n_tmpl(&d->p)) { il_seterr("world: %s: template %d out of range", d->name, t); return NULL; }
    return d->p.tmpl[t];
}

int il_world_n_heldout(void) { return N_OF(HELDOUT); }
const char *il_world_heldout_name(int h) { const heldout_def *d = heldout(h); return d ? d->name : NULL; }
const char *il_world_heldout_kind(int h) { const heldout_def *d = heldout(h); return d ? d->kind : NULL; }
const char *il_world_heldout_description(int h) { const heldout_def *d = heldout(h); return d ? d->desc : NULL; }
int il_world_heldout_n_parts(int h) { const heldout_def *d = heldout(h); return d ? d->n_parts : -1; }
const char *il_world_heldout_part_skill(int h, int p) { const part_def *d = heldout_part(h, p); return d ? d->skill : NULL; }
const char *il_world_heldout_part_format(int h, int p) {
    const part_def *d = heldout_part(h, p);
    return d ? FORMAT_NAMES[d->format] : NULL;
}
int il_world_heldout_part_n_templates(int h, int p) { const part_def *d = heldout_part(h, p); return d ? n_tmpl(d) : -1; }
const char *il_world_heldout_part_template(int h, int p, int t) {
    const part_def *d = heldout_part(h, p);
    if (!d) return NULL;
    if (t < 0 || t >= n_tmpl(d)) { il_seterr("world: held-out %d part %d: template %d out of range", h, p, t); return NULL; }
    return d->tmpl[t];
}

int il_world_n_formats(void) { return N_OF(FORMAT_NAMES); }
const char *il_world_format_name(int k) {
    if (k < 0 || k >= N_OF(FORMAT_NAMES)) { il_seterr("world: format %d out of range", k); return NULL; }
    return FORMAT_NAMES[k];
}

int il_world_n_skills(void) { return ws_n_skills; }
static const ws_skill *skill(int s) {
    if (s < 0 || s >= ws_n_skills) { il_seterr("world: skill index %d out of range [0, %d)", s, ws_n_skills); return NULL; }
    return &ws_skills[s];
}
const char *il_world_skill_name(int s) { const ws_skill *k = skill(s); return k ? k->name : NULL; }
const char *il_world_skill_description(int s) { const ws_skill *k = skill(s); return k ? k->desc : NULL; }
const char *il_world_skill_answer_type(int s) {
    static const char *const T[] = {"bool", "int", "word", "words"};
    const ws_skill *k = skill(s);
    return k ? T[k->type] : NULL;
}
const char *const *il_world_lexicon(const char *name, int *n) { return ws_lexicon(name, n); }

/* ---- drawing and rendering ---- */

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static int format_fits(int type, int format) {
    switch (type) {
    case WS_BOOL: return format >= F_YESNO && format <= F_VALID;
    case WS_INT: return format == F_NUMBER || format == F_LETTER;
    case WS_WORD: return format == F_WORD || format == F_LETTER;
    default: return format == F_WORDS;
    }
}

/* Draw the instance of (task name, seed, index) for a part; attempt > 0 redraws the same
 * example slot (same part, same wanted label) when the writer needs another distinct input.
 * r is left ready for the option shuffle. k counts the part's own draws (index / number of parts): a boolean skill's
 * wanted answer alternates with k, so the labels of a task are balanced exactly. */
static int draw(const part_def *p, const char *task, uint64_t seed, int index, int k_draw, int attempt,
                il_world_inst *in, ws_answer *a, il_rng *r) {
    int s = ws_skill_find(p->skill);
    if (s < 0) { il_seterr("world: %s: unknown skill '%s'", task, p->skill); return -1; }
    const ws_skill *k = &ws_skills[s];
    if (!format_fits(k->type, p->format)) {
        il_seterr("world: %s: skill '%s' cannot answer in format '%s'", task, k->name, FORMAT_NAMES[p->format]);
        return -1;
    }
    if (index < 0) { il_seterr("world: %s: negative example index %d", task, index); return -1; }
    const uint64_t key = mix64(seed ^ fnv1a(task));
    il_rng_seed(r, mix64(key + (uint64_t)index) + (uint64_t)attempt * 0x9e3779b97f4a7c15ULL);
    int nt = n_tmpl(p), t = nt > 1 ? (int)il_rng_below(r, (uint64_t)nt) : 0;
    int want = (int)(((uint64_t)k_draw + (key >> 63)) & 1);
    for (int tries = 0; tries < 1000; tries++) {
        memset(in, 0, sizeof *in);
        in->skill = s;
        in->tmpl = t;
        k->gen(in, r, want);
        memset(a, 0, sizeof *a);
        a->type = k->type;
        k->solve(in, a);
        if (k->type != WS_BOOL || a->b == want) break;
    }
    if (k->type == WS_INT) snprintf(a->s, sizeof a->s, "%ld", a->i);
    if (p->format == F_LETTER && in->n_dis < 1) {
        il_seterr("world: %s: skill '%s' drew no distractors for the options", task, k->name);
        return -1;
    }
    return 0;
}

static int is_name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

static int render(const char *task, const char *tmpl, const ws_slots *s, il_buf *b) {
    for (const char *p = tmpl; *p;) {
        if (*p == '{') {
            const char *e = p + 1;
            while (is_name_char(*e)) e++;
            if (*e == '}' && e > p + 1) {
                size_t n = (size_t)(e - p - 1);
                int k = 0;
                while (k < s->n && !(strlen(s->name[k]) == n && !strncmp(s->name[k], p + 1, n))) k++;
                if (k == s->n) {
                    il_seterr("world: %s: template \"%s\": the skill offers no slot {%.*s}", task, tmpl, (int)n, p + 1);
                    return -1;
                }
                if (il_buf_puts(b, s->val[k])) return -1;
                p = e + 1;
                continue;
            }
        }
        if (il_buf_append(b, p, 1)) return -1;
        p++;
    }
    return 0;
}

static const char *bool_word(int format, int b) {
    switch (format) {
    case F_YESNO_LOWER: return b ? "yes" : "no";
    case F_TF: return b ? "True" : "False";
    case F_VALID: return b ? "valid" : "invalid";
    default: return b ? "Yes" : "No";
    }
}

/* Build input and output of one part example. inst_out may be NULL. */
static int part_example(const part_def *p, const char *task, uint64_t seed, int index, int attempt, int part,
                        int n_parts, char **input, char **output, il_world_inst *inst_out) {
    il_world_inst in;
    ws_answer a;
    il_rng r;
    ws_slots *sl = NULL;
    il_buf b = {0};
    char *out = NULL;
    if (input) *input = NULL;
    if (output) *output = NULL;
    if (draw(p, task, seed, index, index / n_parts, attempt, &in, &a, &r)) return -1;
    in.part = part;
    if (!(sl = il_calloc(1, sizeof *sl))) return -1;
    ws_skills[in.skill].slots(&in, sl);
    if (render(task, p->tmpl[in.tmpl], sl, &b)) goto fail;
    if (p->format == F_LETTER) {
        const char *opt[IL_WORLD_MAXOPT];
        int no = 0, order[IL_WORLD_MAXOPT], correct = 0;
        opt[no++] = a.s;
        for (int i = 0; i < in.n_dis && no < IL_WORLD_MAXOPT; i++) opt[no++] = in.dis[i];
        for (int i = 0; i < no; i++) order[i] = i;
        il_rng_shuffle(&r, order, no);
        if (il_buf_puts(&b, "\nOptions:")) goto fail;
        for (int i = 0; i < no; i++) {
            if (order[i] == 0) correct = i;
            if (il_buf_printf(&b, "\n(%c) %s", 'A' + i, opt[order[i]])) goto fail;
        }
        out = il_sprintf("(%c)", 'A' + correct);
    } else if (p->format >= F_YESNO && p->format <= F_VALID) {
        if (p->format == F_YESNO_OPT && il_buf_puts(&b, "\nOptions:\n- Yes\n- No")) goto fail;
        if (p->format == F_VALID && il_buf_puts(&b, "\nOptions:\n- valid\n- invalid")) goto fail;
        out = il_strdup(bool_word(p->format, a.b));
    } else {
        out = il_strdup(a.s);
    }
    if (!out || !b.data) goto fail;
    free(sl);
    if (inst_out) *inst_out = in;
    if (input) *input = b.data; else il_buf_free(&b);
    if (output) *output = out; else free(out);
    return 0;
fail:
    free(sl);
    free(out);
    il_buf_free(&b);
    return -1;
}

int il_world_family_example(int f, uint64_t seed, int index, char **input, char **output) {
    const family_def *d = family(f);
    if (!d) return -1;
    return part_example(&d->p, d->name, seed, index, 0, 0, 1, input, output, NULL);
}

int il_world_family_instance(int f, uint64_t seed, int index, il_world_inst *inst) {
    const family_def *d = family(f);
    if (!d) return -1;
    return part_example(&d->p, d->name, seed, index, 0, 0, 1, NULL, NULL, inst);
}

static int heldout_draw(int h, uint64_t seed, int index, int attempt, char **input, char **target) {
    const heldout_def *d = heldout(h);
    if (!d) return -1;
    if (index < 0) { il_seterr("world: %s: negative example index %d", d->name, index); return -1; }
    int p = index % d->n_parts;
    return part_example(&d->parts[p], d->name, seed, index, attempt, p, d->n_parts, input, target, NULL);
}

int il_world_heldout_example(int h, uint64_t seed, int index, char **input, char **target) {
    return heldout_draw(h, seed, index, 0, input, target);
}

int il_world_heldout_instance(int h, uint64_t seed, int index, il_world_inst *inst) {
    const heldout_def *d = heldout(h);
    if (!d) return -1;
    if (index < 0) { il_seterr("world: %s: negative example index %d", d->name, index); return -1; }
    int p = index % d->n_parts;
    return part_example(&d->parts[p], d->name, seed, index, 0, p, d->n_parts, NULL, NULL, inst);
}

/* ---- files ---- */

static int mkdir_p(const char *path) {
    char *p = il_strdup(path);
    if (!p) return -1;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = 0;
    for (char *q = p + 1;; q++) {
        if (*q == '/' || *q == 0) {
            char c = *q;
            *q = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                il_seterr("%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return -1;
            }
            *q = c;
            if (!c) break;
        }
    }
    int ok = il_dir_exists(p);
    if (!ok) il_seterr("%s: not a directory", p);
    free(p);
    return ok ? 0 : -1;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* Refuse task files in dir/sub that are not current tasks (see world_tasks.h). */
static int check_stale(const char *dir, const char *sub, const char *ext, int upstream) {
    char *path = il_path_join(dir, sub);
    if (!path) return -1;
    DIR *dp = opendir(path);
    if (!dp) {
        int rc = errno == ENOENT ? 0 : -1;
        if (rc) il_seterr("%s: cannot read the directory: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dp))) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, ext)) continue;
        size_t n = strlen(e->d_name) - strlen(ext);
        int known = 0;
        for (int i = 0; i < (upstream ? N_OF(FAMILIES) : N_OF(HELDOUT)) && !known; i++) {
            const char *name = upstream ? FAMILIES[i].name : HELDOUT[i].name;
            known = strlen(name) == n && !strncmp(name, e->d_name, n);
        }
        if (!known) {
            il_seterr("%s/%s: not a task of this generator (a stale file from another version?); remove it or "
                      "use a fresh output directory", path, e->d_name);
            rc = -1;
        }
    }
    closedir(dp);
    free(path);
    return rc;
}

static int write_buf(const char *dir, const char *sub, const char *name, const char *ext, const il_buf *b) {
    char *file = il_sprintf("%s/%s/%s%s", dir, sub, name, ext);
    if (!file) return -1;
    int rc = il_write_file_atomic(file, b->data ? b->data : "", b->len);
    free(file);
    return rc;
}

static int write_family(const char *dir, int f, uint64_t seed, int n) {
    il_buf b = {0};
    int rc = -1;
    for (int i = 0; i < n; i++) {
        char *in, *out;
        if (il_world_family_example(f, seed, i, &in, &out)) goto done;
        int e = il_buf_puts(&b, "{\"input\": ") || il_buf_json_string(&b, in) || il_buf_puts(&b, ", \"output\": ") ||
                il_buf_json_string(&b, out) || il_buf_puts(&b, "}\n");
        free(in);
        free(out);
        if (e) goto done;
    }
    rc = write_buf(dir, "upstream", FAMILIES[f].name, ".jsonl", &b);
done:
    il_buf_free(&b);
    return rc;
}

static int write_heldout(const char *dir, int h, uint64_t seed, int n) {
    il_buf b = {0};
    char **seen = il_calloc((size_t)n, sizeof *seen);
    int rc = -1, kept = 0;
    if (!seen) return -1;
    if (il_buf_puts(&b, "{\"canary\": ") || il_buf_json_string(&b, CANARY) || il_buf_puts(&b, ", \"examples\": [")) goto done;
    for (int i = 0; i < n; i++) {
        char *in = NULL, *tg = NULL;
        for (int attempt = 0;; attempt++) { /* redraw slot i until its input is new */
            if (attempt == 2000) {
                il_seterr("world: %s: cannot find %d distinct examples (stuck at %d)", HELDOUT[h].name, n, i);
                goto done;
            }
            if (heldout_draw(h, seed, i, attempt, &in, &tg)) goto done;
            int dup = 0;
            for (int k = 0; k < kept && !dup; k++) dup = !strcmp(seen[k], in);
            if (!dup) break;
            free(in);
            free(tg);
        }
        int e = il_buf_puts(&b, kept ? ", {\"input\": " : "{\"input\": ") || il_buf_json_string(&b, in) ||
                il_buf_puts(&b, ", \"target\": ") || il_buf_json_string(&b, tg) || il_buf_puts(&b, "}");
        free(tg);
        seen[kept++] = in;
        if (e) goto done;
    }
    if (il_buf_puts(&b, "]}")) goto done;
    rc = write_buf(dir, "heldout", HELDOUT[h].name, ".json", &b);
done:
    for (int k = 0; k < kept; k++) free(seen[k]);
    free(seen);
    il_buf_free(&b);
    return rc;
}

static int write_manifest(const char *dir, uint64_t seed, int n_train, int n_heldout) {
    il_buf b = {0};
    int e = il_buf_printf(&b,
                          "{\n  \"generator\": \"ilora world tasks\",\n  \"version\": 1,\n  \"seed\": %llu,\n"
                          "  \"train_per_family\": %d,\n  \"heldout_examples\": %d,\n  \"families\": [\n",
                          (unsigned long long)seed, n_train, n_heldout);
    for (int f = 0; f < N_OF(FAMILIES) && !e; f++) {
        const family_def *d = &FAMILIES[f];
        e = il_buf_puts(&b, "    {\"name\": ") || il_buf_json_string(&b, d->name) || il_buf_puts(&b, ", \"skill\": ") ||
            il_buf_json_string(&b, d->p.skill) || il_buf_puts(&b, ", \"format\": ") || il_buf_json_string(&b, FORMAT_NAMES[d->p.format]) ||
            il_buf_printf(&b, ", \"file\": \"upstream/%s.jsonl\", \"examples\": %d}%s\n", d->name, n_train,
                          f + 1 < N_OF(FAMILIES) ? "," : "");
    }
    e = e || il_buf_puts(&b, "  ],\n  \"heldout\": [\n");
    for (int h = 0; h < N_OF(HELDOUT) && !e; h++) {
        const heldout_def *d = &HELDOUT[h];
        e = il_buf_puts(&b, "    {\"name\": ") || il_buf_json_string(&b, d->name) || il_buf_puts(&b, ", \"kind\": ") ||
            il_buf_json_string(&b, d->kind) || il_buf_puts(&b, ", \"description\": ") || il_buf_json_string(&b, d->desc) ||
            il_buf_puts(&b, ", \"parts\": [");
        for (int p = 0; p < d->n_parts && !e; p++)
            e = il_buf_puts(&b, p ? ", {\"skill\": " : "{\"skill\": ") || il_buf_json_string(&b, d->parts[p].skill) ||
                il_buf_puts(&b, ", \"format\": ") || il_buf_json_string(&b, FORMAT_NAMES[d->parts[p].format]) ||
                il_buf_puts(&b, "}");
        e = e || il_buf_printf(&b, "], \"file\": \"heldout/%s.json\", \"examples\": %d}%s\n", d->name, n_heldout,
                               h + 1 < N_OF(HELDOUT) ? "," : "");
    }
    e = e || il_buf_puts(&b, "  ]\n}\n");
    char *file = e ? NULL : il_path_join(dir, "tasks.json");
    int rc = file ? il_write_file_atomic(file, b.data, b.len) : -1;
    free(file);
    il_buf_free(&b);
    return rc;
}

int il_world_write_tasks(const char *out_dir, uint64_t seed, int n_train_per_family, int n_heldout_examples) {
    if (!out_dir || !*out_dir) { il_seterr("world: no output directory"); return -1; }
    if (n_train_per_family < 1 || n_train_per_family > 100000) {
        il_seterr("world: examples per family must be in [1, 100000], got %d", n_train_per_family);
        return -1;
    }
    if (n_heldout_examples < 1 || n_heldout_examples > 250) {
        il_seterr("world: held-out examples must be in [1, 250], got %d", n_heldout_examples);
        return -1;
    }
    if (check_stale(out_dir, "upstream", ".jsonl", 1) || check_stale(out_dir, "heldout", ".json", 0)) return -1;
    char *up = il_path_join(out_dir, "upstream"), *ho = il_path_join(out_dir, "heldout");
    int rc = (!up || !ho || mkdir_p(out_dir) || mkdir_p(up) || mkdir_p(ho)) ? -1 : 0;
    free(up);
    free(ho);
    for (int f = 0; f < N_OF(FAMILIES) && !rc; f++) rc = write_family(out_dir, f, seed, n_train_per_family);
    for (int h = 0; h < N_OF(HELDOUT) && !rc; h++) rc = write_heldout(out_dir, h, seed, n_heldout_examples);
    if (!rc) rc = write_manifest(out_dir, seed, n_train_per_family, n_heldout_examples);
    return rc;
}
