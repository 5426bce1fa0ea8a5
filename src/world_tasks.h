/* world_tasks.h - the task universe of ilora's synthetic "world".
 *
 * No pretrained model can be downloaded where ilora is developed, so ilora builds a small
 * world in which every method means something: upstream task families (a small base T5 is
 * trained on all of them, one LoRA on each) and held-out tasks in BIG-Bench-Hard's JSON
 * format, on which the composition methods are compared. This module generates the tasks.
 *
 * A *skill* is a procedure that draws an instance (numbers and words from small closed
 * lexicons) and knows its exact answer. A *family* is a skill + one or more instruction
 * templates + an answer format (option letters, Yes/No, True/False, valid/invalid, numbers,
 * words, word lists). A *held-out task* is one part (a re-phrasing / re-formatting of an
 * upstream skill, or a skill that combines two upstream skills) or 2-3 parts (a mixture:
 * instances of different skills with different instructions in one task). No held-out
 * template is used by any upstream family (docs/world-tasks.md has the tables).
 *
 * Templates are data: "{name}" is replaced by the instance's slot of that name (a slot value
 * is never re-scanned, so bracket characters in values are safe). Formats with options
 * append BBH's layout: "\nOptions:\n(A) ...", "\nOptions:\n- Yes\n- No",
 * "\nOptions:\n- valid\n- invalid".
 *
 * Determinism: an example depends only on (family or task name, seed, index); the random
 * numbers come from rng.h (xoshiro256**), so a seed gives the same bytes on every platform.
 *
 * Errors follow util.h: -1 / NULL and il_seterr(). Out-of-range indices are errors, not
 * crashes.
 */
#ifndef ILORA_WORLD_TASKS_H
#define ILORA_WORLD_TASKS_H

#include <stdint.h>

/* ---- upstream families ---- */
int il_world_n_families(void);
const char *il_world_family_name(int f);   /* e.g. "num_greater_yesno"; NULL if out of range */
const char *il_world_family_skill(int f);  /* e.g. "num_compare" */
const char *il_world_family_format(int f); /* see il_world_format_name below */
int il_world_family_n_templates(int f);
const char *il_world_family_template(int f, int t);
/* One example: *input and *output are malloc'd (caller frees). 0 or -1. */
int il_world_family_example(int f, uint64_t seed, int index, char **input, char **output);

/* ---- held-out tasks ---- */
int il_world_n_heldout(void);
const char *il_world_heldout_name(int h);        /* e.g. "heldout_mix_compare_sort" */
const char *il_world_heldout_kind(int h);        /* "rephrase", "combine" or "mix" */
const char *il_world_heldout_description(int h); /* one line: what it re-uses or combines */
int il_world_heldout_n_parts(int h);             /* 1, or 2-3 for a mixture */
const char *il_world_heldout_part_skill(int h, int p);
const char *il_world_heldout_part_format(int h, int p);
int il_world_heldout_part_n_templates(int h, int p);
const char *il_world_heldout_part_template(int h, int p, int t);
/* The index-th example of the task (a mixture takes part index % n_parts; boolean labels
 * alternate with the part's draws, so they are balanced). Draws can repeat an input; the
 * file il_world_write_tasks writes redraws such an example slot (same part and label, the
 * next sub-seed) until its input is new, so example i of the file is this draw unless an
 * earlier example had the same input. */
int il_world_heldout_example(int h, uint64_t seed, int index, char **input, char **target);

/* ---- answer formats ---- */
/* "letter" (A)..(F) with an options block; "yes/no" Yes|No; "yes/no+options" Yes|No with
 * "- Yes / - No" options; "yes/no-lower" yes|no; "true/false" True|False; "valid/invalid"
 * with "- valid / - invalid" options; "number" an integer; "word" one word; "words" a
 * space-separated word list. */
int il_world_n_formats(void);
const char *il_world_format_name(int k);

/* ---- skills and instances (for tests: re-derive every answer independently) ---- */
int il_world_n_skills(void);
const char *il_world_skill_name(int s);
const char *il_world_skill_description(int s);
const char *il_world_skill_answer_type(int s); /* "bool", "int", "word" or "words" */

#define IL_WORLD_MAXV 16
#define IL_WORLD_MAXOPT 6
#define IL_WORLD_OPTLEN 32

/* The parameters an example was drawn from. Field use per skill is documented at each
 * skill in world_skills.c ("params:" lines); words point into static lexicons. */
typedef struct {
    int skill;                   /* index for il_world_skill_name */
    int part, tmpl;              /* held-out part (0 for families) and template index */
    int q;                       /* question variant */
    int n;                       /* number of items */
    int v[IL_WORLD_MAXV];        /* integers */
    const char *w[IL_WORLD_MAXV];/* words */
    const char *x, *y;           /* query words */
    char spell[IL_WORLD_OPTLEN]; /* a word as written in the input (capital) */
    int n_dis;                   /* distractor answers for option formats */
    char dis[IL_WORLD_MAXOPT][IL_WORLD_OPTLEN];
} il_world_inst;

int il_world_family_instance(int f, uint64_t seed, int index, il_world_inst *inst);
int il_world_heldout_instance(int h, uint64_t seed, int index, il_world_inst *inst);

/* Lexicons: "names", "colors", "objects", "object_plurals", "fruits", "vehicles",
 * "animals" (category), "animals_by_size" (smallest first), "days", "pool" (the words of
 * list skills), "antonyms", "synonyms", "plurals" (the last three as flattened pairs).
 * Returns NULL (and an error) for an unknown name. */
const char *const *il_world_lexicon(const char *name, int *n);

/* ---- files ----
 * Writes out_dir/upstream/<family>.jsonl (n_train_per_family lines {"input","output"}),
 * out_dir/heldout/<task>.json (BBH format: {"canary", "examples": [{"input","target"}]},
 * n_heldout_examples distinct inputs, see il_world_heldout_example) and out_dir/tasks.json
 * (a manifest: seed, counts, families with skill/format/file, held-out tasks with
 * kind/description/parts/file),
 * each file atomically, the manifest last (its presence means the set is complete).
 * Creates out_dir and its subdirectories as needed. Rule for an existing out_dir: the
 * generator's own files are overwritten (same arguments -> same bytes), other files are
 * left alone, except that a *.jsonl in upstream/ or a *.json in heldout/ that is not one
 * of the current tasks is refused (later steps read those directories, so a stale task
 * from another version must not sit there). Counts: 1..100000 and 1..250 (BBH's largest
 * task; every held-out task has enough distinct inputs for 250 with balanced labels). */
int il_world_write_tasks(const char *out_dir, uint64_t seed, int n_train_per_family,
                         int n_heldout_examples);

#endif
