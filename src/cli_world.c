/* cli_world.c - `ilora world`: ilora's synthetic world (world_tasks.h). Each sub-subcommand
 * is one row of world_commands[]: `world tasks` writes the task universe (upstream families
 * and held-out tasks); further steps of the world (e.g. `world build`) add a row. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "world_tasks.h"

int cmd_world(int argc, char **argv);
int world_build_main(int argc, char **argv); /* cli_world_build.c */

static const char help_tasks[] =
    "usage: ilora world tasks --out DIR [--seed S] [--train-per-family N] [--heldout-examples N]\n"
    "       ilora world tasks --list\n\n"
    "Write the task universe of ilora's synthetic world:\n"
    "  DIR/upstream/<family>.jsonl  one file per upstream task family, {\"input\",\"output\"} lines\n"
    "                               (the training data of the base model and of one LoRA each)\n"
    "  DIR/heldout/<task>.json      held-out tasks in BIG-Bench-Hard's format, {\"canary\",\n"
    "                               \"examples\": [{\"input\",\"target\"}]}, distinct inputs\n"
    "  DIR/tasks.json               manifest: seed, counts, families (skill, format, file) and\n"
    "                               held-out tasks (kind, description, parts, file); written last\n"
    "The same arguments always give byte-identical files. DIR is created if needed; the\n"
    "generator's own files in it are overwritten, other files are left alone, and a task file\n"
    "in DIR/upstream or DIR/heldout that is not a current task is refused (stale data).\n"
    "docs/world-tasks.md describes every family and held-out task.\n\n"
    "options:\n"
    "  --out DIR               output directory\n"
    "  --seed S                seed of every draw (default 42)\n"
    "  --train-per-family N    examples per upstream family, 1..100000 (default 400)\n"
    "  --heldout-examples N    examples per held-out task, 1..250 (default 100)\n"
    "  --list                  print the families and held-out tasks (TSV) instead\n";

static void list_tasks(void) {
    printf("# family\tskill\tformat\ttemplates (\" | \" between)\n");
    for (int f = 0; f < il_world_n_families(); f++) {
        printf("%s\t%s\t%s\t", il_world_family_name(f), il_world_family_skill(f), il_world_family_format(f));
        for (int t = 0; t < il_world_family_n_templates(f); t++) printf("%s%s", t ? " | " : "", il_world_family_template(f, t));
        putchar('\n');
    }
    printf("# held-out task\tkind\tparts (skill/format: template)\tdescription\n");
    for (int h = 0; h < il_world_n_heldout(); h++) {
        printf("%s\t%s\t", il_world_heldout_name(h), il_world_heldout_kind(h));
        for (int p = 0; p < il_world_heldout_n_parts(h); p++) {
            printf("%s%s/%s: ", p ? " || " : "", il_world_heldout_part_skill(h, p), il_world_heldout_part_format(h, p));
            for (int t = 0; t < il_world_heldout_part_n_templates(h, p); t++)
                printf("%s%s", t ? " | " : "", il_world_heldout_part_template(h, p, t));
        }
        printf("\t%s\n", il_world_heldout_description(h));
    }
}

static int world_tasks(int argc, char **argv) {
    const char *out = NULL;
    int seed = 42, n_train = 400, n_heldout = 100;
    bool list = false;
    const cli_opt opts[] = {
        {"--out", OPT_STRING, &out, 0, 0},
        {"--seed", OPT_INT, &seed, 0, 2147483647},
        {"--train-per-family", OPT_INT, &n_train, 1, 100000},
        {"--heldout-examples", OPT_INT, &n_heldout, 1, 250},
        {"--list", OPT_FLAG, &list, 0, 0},
    };
    cli_list pos = {0};
    bool want_help;
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &pos, &want_help);
    if (rc) goto out;
    if (want_help) { fputs(help_tasks, stdout); goto out; }
    if (pos.n) { rc = cli_fail(EXIT_USAGE, "world tasks takes no positional arguments, got '%s'", pos.items[0]); goto out; }
    if (list) {
        if (out) { rc = cli_fail(EXIT_USAGE, "give either --list or --out DIR, not both"); goto out; }
        list_tasks();
        if (fflush(stdout)) rc = cli_fail(EXIT_RUNTIME, "cannot write the output");
        goto out;
    }
    if (!out || !*out) { rc = cli_fail(EXIT_USAGE, "world tasks needs --out DIR (see --help)"); goto out; }
    if (il_world_write_tasks(out, (uint64_t)seed, n_train, n_heldout)) { rc = cli_fail_lib(); goto out; }
    printf("wrote %d upstream families (%d examples each) and %d held-out tasks (%d examples each) to %s\n",
           il_world_n_families(), n_train, il_world_n_heldout(), n_heldout, out);
    if (fflush(stdout)) rc = cli_fail(EXIT_RUNTIME, "cannot write the output");
out:
    cli_list_free(&pos);
    return rc;
}

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} world_commands[] = {
    {"tasks", world_tasks, "write the upstream task families and the held-out tasks"},
    {"build", world_build_main, "build the world: tokenizer, base model, LoRA library, measurements"},
};

static void world_usage(FILE *f) {
    fprintf(f, "usage: ilora world <command> [options]\n\nilora's synthetic world (docs/world-tasks.md).\n\ncommands:\n");
    for (size_t i = 0; i < sizeof world_commands / sizeof world_commands[0]; i++)
        fprintf(f, "  %-8s %s\n", world_commands[i].name, world_commands[i].summary);
    fprintf(f, "\nRun 'ilora world <command> --help' for a command's options.\n");
}

int cmd_world(int argc, char **argv) {
    if (argc < 2) {
        fputs("ilora: error: world needs a command\n", stderr);
        world_usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        world_usage(stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof world_commands / sizeof world_commands[0]; i++)
        if (!strcmp(argv[1], world_commands[i].name)) return world_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ilora: error: unknown world command '%s'\n", argv[1]);
    world_usage(stderr);
    return EXIT_USAGE;
}
