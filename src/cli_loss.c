/* cli_loss.c - `ilora loss`: cross-entropy of {"input","output"} examples under a T5 model,
 * per example and as Hugging Face computes a batch's loss. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli_t5.h"

static const char help[] =
    "usage: ilora loss --model DIR --examples FILE.jsonl [--batch-size 5]\n"
    "                  [--lora DIR[=WEIGHT]]... [--compose linear|delta]\n\n"
    "Teacher-forced cross-entropy of each example's \"output\" given its \"input\" (JSONL lines\n"
    "{\"input\": ..., \"output\": ...}). Prints JSON:\n"
    "  per_example      each example's mean token loss (over its output tokens and </s>)\n"
    "  mean_token_loss  Hugging Face's loss with all examples in one batch: the mean over\n"
    "                   every output token of every example\n"
    "  batch_losses     Hugging Face's loss of each batch of --batch-size examples, in order\n"
    "  lorahub_loss     LoraHub's loss: the sum of batch_losses divided by the number of\n"
    "                   examples (DESIGN.md section 1, without the L1 term)\n"
    "Inputs longer than --max-input-tokens (default 2048) are cut, keeping </s>.\n"
    "  --lora DIR[=WEIGHT]  a PEFT LoRA adapter directory (repeatable; WEIGHT default 1).\n"
    "                       One adapter at weight 1 is used as it is; otherwise the adapters\n"
    "                       are composed with their weights by --compose. The adapters are\n"
    "                       applied unmerged (y = x W^T + s (x A^T) B^T), as PEFT does.\n"
    "  --compose RULE       linear (default; LoraHub's: A = sum w_i A_i, B = sum w_i B_i)\n"
    "                       or delta (exactly sum w_i s_i B_i A_i; ranks may differ)\n";

static void put_number(il_buf *b, double x) {
    if (isfinite(x)) il_buf_printf(b, "%.9g", x);
    else il_buf_puts(b, "null");
}

int cmd_loss(int argc, char **argv) {
    const char *model = NULL, *examples = NULL, *compose = NULL;
    int batch_size = 5, max_input = 2048;
    cli_list lora_args = {0};
    cli_loras loras = {0};
    il_lora_rule rule = IL_LORA_LINEAR;
    il_lora *adapter = NULL;
    bool adapter_owned = false;
    il_lora_ctx *ctx = NULL;
    const cli_opt opts[] = {
        {"--lora", OPT_LIST, &lora_args, 0, 0},
        {"--compose", OPT_STRING, &compose, 0, 0},
        {"--model", OPT_STRING, &model, 0, 0},
        {"--examples", OPT_STRING, &examples, 0, 0},
        {"--batch-size", OPT_INT, &batch_size, 1, 100000},
        {"--max-input-tokens", OPT_INT, &max_input, 2, 1000000},
    };
    cli_list pos = {0};
    bool want_help;
    cli_t5 m = {0};
    cli_examples ex = {0};
    cli_ids in = {0}, out = {0};
    float *per_mean = NULL;
    double *sums = NULL;
    int *counts = NULL;
    il_buf b = {0};
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &pos, &want_help);
    if (rc) goto done;
    if (want_help) { fputs(help, stdout); goto done; }
    if (!model || !examples) { rc = cli_fail(EXIT_USAGE, "loss needs --model DIR and --examples FILE.jsonl"); goto done; }
    if (pos.n) { rc = cli_fail(EXIT_USAGE, "loss takes no positional arguments"); goto done; }
    if (compose && !lora_args.n) { rc = cli_fail(EXIT_USAGE, "--compose needs --lora"); goto done; }
    if (compose && (rc = cli_parse_rule(compose, &rule))) goto done;
    if ((rc = cli_loras_parse(&loras, &lora_args, NULL, true))) goto done;
    if (cli_read_examples(examples, true, &ex) || cli_t5_open(&m, model, true) ||
        cli_loras_load(&loras, il_t5_get_config(m.model)) ||
        cli_tokenize_all(&m, (const char *const *)ex.input, ex.n, max_input, &in) ||
        cli_tokenize_all(&m, (const char *const *)ex.output, ex.n, 0, &out)) {
        rc = cli_fail_lib();
        goto done;
    }
    if (loras.n) { /* unmerged, as PEFT runs it */
        if (!(adapter = cli_loras_combine(&loras, rule, &adapter_owned)) ||
            !(ctx = il_lora_ctx_new(m.model)) || il_lora_ctx_set_default(ctx, adapter)) {
            rc = cli_fail_lib();
            goto done;
        }
    }
    per_mean = il_calloc((size_t)ex.n, sizeof *per_mean);
    sums = il_calloc((size_t)ex.n, sizeof *sums);
    counts = il_calloc((size_t)ex.n, sizeof *counts);
    if (!per_mean || !sums || !counts) { rc = cli_fail_lib(); goto done; }
    il_buf_puts(&b, "{\"batch_losses\":[");
    double total = 0, lorahub = 0;
    long total_count = 0;
    for (int s = 0; s < ex.n; s += batch_size) {
        int k = ex.n - s < batch_size ? ex.n - s : batch_size;
        double batch_mean;
        if (il_t5_loss(m.model, k, (const int32_t *const *)in.ids + s, in.lens + s,
                       (const int32_t *const *)out.ids + s, out.lens + s, per_mean + s, sums + s,
                       counts + s, &batch_mean, NULL)) {
            rc = cli_fail_lib();
            goto done;
        }
        if (s) il_buf_puts(&b, ",");
        put_number(&b, batch_mean);
        lorahub += batch_mean; /* NaN if a batch has no counted token */
        for (int i = s; i < s + k; i++) { total += sums[i]; total_count += counts[i]; }
    }
    il_buf_puts(&b, "],\"per_example\":[");
    for (int i = 0; i < ex.n; i++) {
        if (i) il_buf_puts(&b, ",");
        put_number(&b, per_mean[i]);
    }
    il_buf_puts(&b, "],\"mean_token_loss\":");
    put_number(&b, total_count ? total / (double)total_count : NAN);
    il_buf_puts(&b, ",\"lorahub_loss\":");
    put_number(&b, lorahub / ex.n);
    il_buf_printf(&b, ",\"examples\":%d,\"tokens\":%ld}\n", ex.n, total_count);
    if (!b.data) { rc = cli_fail_lib(); goto done; }
    fputs(b.data, stdout);
done:
    il_lora_ctx_free(ctx);
    if (adapter_owned) il_lora_free(adapter);
    cli_loras_free(&loras);
    cli_list_free(&lora_args);
    il_buf_free(&b);
    free(per_mean); free(sums); free(counts);
    cli_ids_free(&in);
    cli_ids_free(&out);
    cli_examples_free(&ex);
    cli_t5_close(&m);
    cli_list_free(&pos);
    return rc;
}
