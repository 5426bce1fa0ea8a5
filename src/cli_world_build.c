/* cli_world_build.c - `ilora world build --out DIR`: builds (or resumes) ilora's synthetic
 * world (world_build.h). Dispatched from `ilora world` (cli_world.c). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "world_build.h"

int world_build_main(int argc, char **argv);

static const char help[] =
    "usage: ilora world build --out DIR [options]\n\n"
    "Builds ilora's synthetic world from nothing, in the formats of a real Flan-T5 run:\n"
    "  DIR/tasks/      upstream train files, dev splits (unseen inputs), held-out BBH tasks\n"
    "  DIR/base/       Hugging Face T5 v1.1 directory: spiece.model (Debian's spm_train on\n"
    "                  the task texts), a small gated-GELU T5 trained multitask on the\n"
    "                  upstream mixture (model.safetensors, config.json, tokenizer files)\n"
    "  DIR/library/    one PEFT LoRA adapter per upstream family (+ its train.jsonl)\n"
    "  DIR/measurements.json, .md   base and adapters on each family's dev split\n"
    "The embedder is the base model itself (--embedder DIR/base). Each step is skipped when\n"
    "its outputs exist and DIR/stamps/<step>.json matches the settings, so an interrupted\n"
    "build resumes. The same settings and seed give the same files.\n\n"
    "  --seed S            tasks, initialisation, example order (default 42)\n"
    "  --n-train N         train examples per family (default 200)\n"
    "  --n-dev N           dev examples per family (default 50)\n"
    "  --n-heldout N       examples per held-out task (default 100)\n"
    "  --families N        use only the first N families (default 0 = all)\n"
    "  --vocab N           SentencePiece vocabulary size, a soft limit (default 2000)\n"
    "  --spm-train PATH    the spm_train program (default: spm_train on PATH)\n"
    "  --d-model N --d-kv N --heads N --d-ff N --layers N\n"
    "                      base shape, layers on each side (default 128 32 4 512 2)\n"
    "  --base-epochs N     passes over the mixture (default 8)\n"
    "  --base-batch N      examples per AdamW step (default 32)\n"
    "  --base-lr X         peak learning rate, linear decay (default 2e-3)\n"
    "  --base-warmup N     warmup steps (default 200)\n"
    "  --lora-r N --lora-alpha X   adapters on q, v (default 8, 16)\n"
    "  --lora-epochs N --lora-batch N --lora-lr X   (default 4, 8, 1e-2)\n"
    "  --max-new-tokens N  generation limit when measuring (default 32)\n";

int world_build_main(int argc, char **argv) {
    il_world_build_opts o = il_world_build_default_opts();
    const char *out = NULL;
    int seed = (int)o.seed;
    bool h = false;
    const cli_opt opts[] = {
        {"--out", OPT_STRING, &out, 0, 0},
        {"--seed", OPT_INT, &seed, 0, 2147483647},
        {"--n-train", OPT_INT, &o.n_train, 1, 100000},
        {"--n-dev", OPT_INT, &o.n_dev, 1, 10000},
        {"--n-heldout", OPT_INT, &o.n_heldout, 1, 250},
        {"--families", OPT_INT, &o.n_families, 0, 100000},
        {"--vocab", OPT_INT, &o.vocab_size, 50, 1000000},
        {"--spm-train", OPT_STRING, &o.spm_train, 0, 0},
        {"--d-model", OPT_INT, &o.d_model, 8, 65536},
        {"--d-kv", OPT_INT, &o.d_kv, 1, 65536},
        {"--heads", OPT_INT, &o.num_heads, 1, 1024},
        {"--d-ff", OPT_INT, &o.d_ff, 1, 1 << 20},
        {"--layers", OPT_INT, &o.num_layers, 1, 256},
        {"--base-epochs", OPT_INT, &o.base_epochs, 1, 100000},
        {"--base-batch", OPT_INT, &o.base_batch, 1, 100000},
        {"--base-lr", OPT_DOUBLE, &o.base_lr, 0, 0},
        {"--base-warmup", OPT_INT, &o.base_warmup, 0, 100000000},
        {"--lora-r", OPT_INT, &o.lora_r, 1, 65536},
        {"--lora-alpha", OPT_DOUBLE, &o.lora_alpha, 0, 0},
        {"--lora-epochs", OPT_INT, &o.lora_epochs, 1, 100000},
        {"--lora-batch", OPT_INT, &o.lora_batch, 1, 100000},
        {"--lora-lr", OPT_DOUBLE, &o.lora_lr, 0, 0},
        {"--max-new-tokens", OPT_INT, &o.max_new_tokens, 1, 4096},
    };
    cli_list pos = {0};
    int rc = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &pos, &h);
    if (!rc && !h && pos.n)
        rc = cli_fail(EXIT_USAGE, "world build takes no positional arguments (got '%s')",
                      pos.items[0]);
    cli_list_free(&pos);
    if (rc) return rc;
    if (h) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    if (!out || !*out) return cli_fail(EXIT_USAGE, "world build needs --out DIR");
    if (!(o.base_lr > 0) || !(o.lora_lr > 0) || !(o.lora_alpha > 0))
        return cli_fail(EXIT_USAGE, "--base-lr, --lora-lr and --lora-alpha must be positive");
    o.seed = (uint64_t)seed;
    double t0 = il_now();
    if (il_world_build(out, &o)) return cli_fail_lib();
    printf("{\"out\":");
    il_buf b = {0};
    il_buf_json_string(&b, out);
    printf("%s,\"seconds\":%.1f}\n", b.data ? b.data : "\"\"", il_now() - t0);
    il_buf_free(&b);
    return EXIT_OK;
}
