/* world_skills.h - internal to the task universe: the skill table that world_skills.c
 * defines and world_tasks.c drives (templates, formats, files). See world_tasks.h. */
#ifndef ILORA_WORLD_SKILLS_H
#define ILORA_WORLD_SKILLS_H

#include "rng.h"
#include "util.h"
#include "world_tasks.h"

enum { WS_BOOL, WS_INT, WS_WORD, WS_WORDS };

/* A skill's exact answer: b for WS_BOOL, i (and its decimal in s) for WS_INT, s otherwise. */
typedef struct {
    int type;
    int b;
    long i;
    char s[128];
} ws_answer;

#define WS_MAXSLOTS 12
#define WS_SLOTLEN 256
/* Named slot values an instance offers its templates. */
typedef struct {
    int n;
    const char *name[WS_MAXSLOTS];
    char val[WS_MAXSLOTS][WS_SLOTLEN];
} ws_slots;

typedef struct {
    const char *name, *desc;
    int type;
    /* Draw the parameters (and, for option formats, distractors). want: the desired truth
     * value of a WS_BOOL skill (a generator may ignore it; the caller redraws until the
     * answer matches). */
    void (*gen)(il_world_inst *in, il_rng *r, int want);
    void (*solve)(const il_world_inst *in, ws_answer *a);
    void (*slots)(const il_world_inst *in, ws_slots *s);
} ws_skill;

extern const ws_skill ws_skills[];
extern const int ws_n_skills;
int ws_skill_find(const char *name); /* -1 if unknown */
const char *const *ws_lexicon(const char *name, int *n);

#endif
