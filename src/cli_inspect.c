/* cli_inspect.c - `ilora inspect FILE`: the tensors of a weight file, or why it is rejected. */
#include <stdio.h>

#include "cli.h"
#include "tensors.h"

static const char help[] =
    "usage: ilora inspect FILE\n\n"
    "Validate a safetensors or PyTorch .bin (torch.save zip) file and list its tensors,\n"
    "one per line: name, dtype, shape (tab-separated); then the metadata as\n"
    "'# key<TAB>value' lines. A file that fails validation gives the error and exit 1.\n";

int cmd_inspect(int argc, char **argv) {
    cli_list pos = {0};
    bool want_help;
    int rc = cli_parse(argc, argv, NULL, 0, &pos, &want_help);
    if (rc) goto out;
    if (want_help) { fputs(help, stdout); goto out; }
    if (pos.n != 1) { rc = cli_fail(EXIT_USAGE, "inspect takes exactly one FILE (see --help)"); goto out; }
    il_tensor_file *f = il_tensor_file_open(pos.items[0]);
    if (!f) { rc = cli_fail_lib(); goto out; }
    for (int i = 0; i < f->n_tensors; i++) {
        const il_tensor *t = &f->tensors[i];
        printf("%s\t%s\t[", t->name, il_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) printf(d ? ", %lld" : "%lld", (long long)t->shape[d]);
        printf("]\n");
    }
    for (int i = 0; i < f->n_meta; i++) printf("# %s\t%s\n", f->meta_keys[i], f->meta_values[i]);
    il_tensor_file_free(f);
out:
    cli_list_free(&pos);
    return rc;
}
