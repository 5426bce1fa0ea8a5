/* eval.h - BIG-Bench-Hard scoring: the shot/question split, the reference answer
 * normalisation, and the result tables (per task, averages, win/loss counts) written as
 * JSON, CSV and Markdown. */
#ifndef ILORA_EVAL_H
#define ILORA_EVAL_H

#include "util.h"

/* Shuffle indices 0..n-1 with seed (Fisher-Yates, src/rng.h); the first k are the shots,
 * the rest the questions, of which at most max_questions (0 = all) are kept, in shuffled
 * order. shots [k], questions [n - k]. Examples are addressed by index, never by input text
 * (BBH has duplicate inputs with different targets). Needs 1 <= k < n. */
int il_eval_split(int n, int k, uint64_t seed, int max_questions, int *shots, int *questions,
                  int *n_questions);

/* The reference normalisation: Python's s.strip().lower().replace(".", ""). malloc'd. */
char *il_eval_normalize(const char *s);
/* Exact match of the normalised strings (so "valid" never matches "invalid"). */
bool il_eval_match(const char *prediction, const char *target);

/* Scores of methods (columns) on tasks (rows). */
typedef struct {
    int n_tasks, n_methods;
    char **tasks, **methods;
    int *correct, *total; /* [task * n_methods + method] */
} il_eval_table;

int il_eval_table_init(il_eval_table *t, int n_tasks, const char *const *tasks, int n_methods,
                       const char *const *methods);
void il_eval_table_free(il_eval_table *t);
double il_eval_accuracy(const il_eval_table *t, int task, int method); /* percent; NaN if no questions */

/* Per-method averages over all tasks, and over the tasks where at least one method reaches
 * 10% (the paper drops tasks on which every method is below 10%). */
void il_eval_averages(const il_eval_table *t, double *avg, double *avg_filtered, int *n_kept);
/* For methods a, b: tasks where a scores higher / equal / lower than b. */
void il_eval_win_loss(const il_eval_table *t, int a, int b, int *wins, int *ties, int *losses);

/* Writers (atomic). Markdown is also what `ilora eval` prints at the end. */
int il_eval_write_json(const il_eval_table *t, const char *path, const char *settings_json);
int il_eval_write_csv(const il_eval_table *t, const char *path);
char *il_eval_markdown(const il_eval_table *t); /* malloc'd */

#endif
