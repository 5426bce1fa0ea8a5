/* cli_bench.h - what the `ilora bench` subcommands share: the Flan-T5-Large shape, one
 * deterministic random stream and the random LoRA library built on it
 * (src/cli_bench_common.c). `bench lorahub` and `bench eval` build the same adapters, so
 * their figures are measured on the same library. */
#ifndef ILORA_CLI_BENCH_H
#define ILORA_CLI_BENCH_H

#include <stdint.h>

#include "lora.h"
#include "t5.h"

/* Flan-T5-Large (d_model 1024, d_ff 2816, gated-gelu, vocab 32128) with `layers` encoder
 * and decoder layers (24 is Large; fewer for a quick look). */
il_t5_config bench_flan_t5_large(int layers);

/* One process-wide splitmix64 stream: the benches are single commands, and a plain stream
 * keeps a seed's weights the same from release to release. */
void bench_rng_seed(int seed);
uint64_t bench_rnd_u64(void);
float bench_rnd(void);        /* uniform in [-1, 1) */
int bench_rnd_below(int n);   /* 0 .. n-1 */

/* The adapters' adapter_config.json: rank r, lora_alpha 32, on q and v. malloc'd. */
char *bench_lora_config_json(int r);
/* A random adapter "random_<k>" of rank r on q and v of every attention block, drawn from
 * the stream above. NULL with il_errmsg() on failure. */
il_lora *bench_random_adapter(const il_t5_config *c, int k, int r, const char *cfg_json);

/* The subcommands (argv[0] is the bench's name). */
int bench_eval(int argc, char **argv);

#endif
