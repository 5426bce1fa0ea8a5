/* cli_main.c - the `ilora` command: dispatches to one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_t5.h" /* cmd_lorahub */

int cmd_index(int argc, char **argv); /* cli_index.c */
int cmd_embed(int argc, char **argv); /* cli_embed.c */
int cmd_eval(int argc, char **argv); /* cli_eval.c */
int cmd_train_lora(int argc, char **argv), cmd_finetune(int argc, char **argv); /* cli_train.c */
int cmd_world(int argc, char **argv); /* cli_world.c */

#define ILORA_VERSION "0.1.0"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"tokenize", cmd_tokenize, "print token ids of texts (T5 SentencePiece or the embedder's)"},
    {"embed", cmd_embed, "sentence embeddings of texts (JSON)"},
    {"index", cmd_index, "build or refresh a LoRA library's centroid index"},
    {"generate", cmd_generate, "greedy generation with a T5 model"},
    {"loss", cmd_loss, "cross-entropy of examples under a T5 model"},
    {"lorahub", cmd_lorahub, "learn LoraHub weights composing LoRA adapters for examples"},
    {"eval", cmd_eval, "evaluate iLoraComp and its baselines on BIG-Bench-Hard tasks"},
    {"train-lora", cmd_train_lora, "train a LoRA adapter (PEFT directory) on JSONL examples"},
    {"finetune", cmd_finetune, "full fine-tuning on JSONL examples (Hugging Face directory)"},
    {"inspect", cmd_inspect, "list the tensors of a safetensors or PyTorch .bin file"},
    {"bench", cmd_bench, "benchmarks on the Flan-T5-Large shape (bench model | lorahub | eval)"},
    {"world", cmd_world, "ilora's synthetic world (world tasks, world build)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: ilora <command> [options]\n\n"
               "Instance-level LoRA composition for T5 models, in C.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'ilora <command> --help' for a command's options.\n"
               "Exit status: 0 ok, 1 runtime error, 2 usage error.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("ilora %s\n", ILORA_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ilora: error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
