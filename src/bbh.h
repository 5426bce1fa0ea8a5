/* bbh.h - BIG-Bench-Hard task files: {"canary": "...", "examples": [{"input", "target"}]}.
 * Examples are kept in file order and addressed by index (inputs can repeat, BBH-QUIRKS 7);
 * targets are free strings (three targets are option text, not a letter). */
#ifndef ILORA_BBH_H
#define ILORA_BBH_H

#include "util.h"

typedef struct {
    char *name;     /* file name without directory and ".json" */
    char **input;   /* [n] */
    char **target;  /* [n] */
    int n;
} il_bbh_task;

/* Load and validate a task file; errors name the file and the example index / field. */
int il_bbh_load(il_bbh_task *t, const char *path);
void il_bbh_free(il_bbh_task *t);

#endif
