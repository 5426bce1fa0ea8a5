/* torchbin.c - PyTorch .bin reader (the zip archive torch.save writes since torch 1.6).
 *
 * The archive holds <dir>/data.pkl, a pickle of the state dict, and <dir>/data/<key>,
 * the raw bytes of each storage. Pickles can run arbitrary code, so instead of a real
 * unpickler this is a small restricted interpreter: it knows only the opcodes a plain
 * state dict uses, resolves only a handful of allowed globals to built-in behaviour
 * (rebuild a tensor, make an OrderedDict, name a storage dtype) and executes nothing.
 * Objects live in an arena freed in one go; there is no recursion; stack, mark depth
 * and memo are bounded; every read is bounds-checked.
 */
#include "tensors.h"
#include "zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STACK (1u << 22)   /* items on the pickle stack */
#define MAX_MARKS 4096         /* nesting depth of MARKs */
#define MAX_MEMO (1u << 24)    /* memo slots */
#define SHOWN 100              /* longest string quoted in an error */

/* ---- pickle objects ---- */

typedef enum {
    PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT,
    PK_GLOBAL, PK_STORAGE, PK_TENSOR
} pk_type;

static const char *const type_names[] = {
    "None", "bool", "int", "float", "str", "tuple", "list", "dict",
    "global", "storage", "tensor"
};

/* The only globals a pickle may reference. */
typedef enum { G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_ORDERED_DICT, G_STORAGE } pk_global;

typedef struct pk_obj pk_obj;

typedef struct {
    il_dtype dtype;
    const char *key; /* into the pickle bytes */
    size_t key_len;
    int64_t numel;
} pk_storage;

typedef struct {
    const pk_storage *storage;
    int64_t offset; /* in elements */
    int ndim;
    int64_t size[IL_MAX_DIMS], stride[IL_MAX_DIMS];
} pk_tensor;

struct pk_obj {
    pk_type type;
    union {
        int64_t i; /* BOOL, INT */
        double f;
        struct { const char *s; size_t len; } str; /* into the pickle bytes */
        /* TUPLE, LIST; DICT stores key, value, key, value... in insertion order */
        struct { pk_obj **items; size_t n, cap; } seq;
        struct { pk_global which; il_dtype dtype; } global;
        pk_storage storage;
        pk_tensor tensor;
    } u;
};

/* ---- the machine ---- */

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    pk_obj **stack;
    size_t sp, stack_cap;
    size_t marks[MAX_MARKS]; /* stack heights at each MARK */
    size_t n_marks;
    pk_obj **memo;
    size_t memo_cap, memo_count;
    pk_obj **all; /* the arena: every object, freed together */
    size_t n_all, all_cap;
} pk_machine;

/* Make room for n items of elem bytes in p (capacity *cap, doubled as needed); returns
 * the possibly moved array, or NULL + error (p is then still valid). */
static void *grow(void *p, size_t *cap, size_t n, size_t elem) {
    if (n <= *cap) return p;
    size_t c = *cap ? *cap : 16;
    while (c < n) c *= 2;
    void *q = il_realloc(p, c * elem);
    if (q) *cap = c;
    return q;
}

/* Copy s[0..len) into out as printable ASCII (others become '?'), shortened if long. */
static const char *show(char *out, size_t cap, const char *s, size_t len) {
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++) out[i] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
    out[n] = 0;
    return out;
}

static pk_obj *new_obj(pk_machine *m, pk_type type) {
    pk_obj **all = grow(m->all, &m->all_cap, m->n_all + 1, sizeof *all);
    if (!all) return NULL;
    m->all = all;
    pk_obj *o = il_calloc(1, sizeof *o);
    if (!o) return NULL;
    o->type = type;
    m->all[m->n_all++] = o;
    return o;
}

static void machine_free(pk_machine *m) {
    for (size_t i = 0; i < m->n_all; i++) {
        pk_type t = m->all[i]->type;
        if (t == PK_TUPLE || t == PK_LIST || t == PK_DICT) free(m->all[i]->u.seq.items);
        free(m->all[i]);
    }
    free(m->all);
    free(m->stack);
    free(m->memo);
}

static int seq_append(pk_obj *o, pk_obj *item) {
    pk_obj **items = grow(o->u.seq.items, &o->u.seq.cap, o->u.seq.n + 1, sizeof *items);
    if (!items) return -1;
    o->u.seq.items = items;
    items[o->u.seq.n++] = item;
    return 0;
}

static int push(pk_machine *m, pk_obj *o) {
    if (!o) return -1;
    if (m->sp >= MAX_STACK) {
        il_seterr("pickle: stack deeper than %u items", MAX_STACK);
        return -1;
    }
    pk_obj **stack = grow(m->stack, &m->stack_cap, m->sp + 1, sizeof *stack);
    if (!stack) return -1;
    m->stack = stack;
    m->stack[m->sp++] = o;
    return 0;
}

/* Items above the innermost MARK belong to it, so they cannot be popped as plain items. */
static size_t stack_floor(const pk_machine *m) {
    return m->n_marks ? m->marks[m->n_marks - 1] : 0;
}

static pk_obj *pop(pk_machine *m) {
    if (m->sp <= stack_floor(m)) {
        il_seterr("pickle: stack underflow at offset %zu", m->pos - 1);
        return NULL;
    }
    return m->stack[--m->sp];
}

static pk_obj *top(pk_machine *m) {
    if (m->sp <= stack_floor(m)) {
        il_seterr("pickle: stack underflow at offset %zu", m->pos - 1);
        return NULL;
    }
    return m->stack[m->sp - 1];
}

/* Pop the innermost MARK: *base receives the index of the first item above it. */
static int pop_mark(pk_machine *m, size_t *base) {
    if (!m->n_marks) {
        il_seterr("pickle: no MARK for the opcode at offset %zu", m->pos - 1);
        return -1;
    }
    *base = m->marks[--m->n_marks];
    return 0;
}

/* ---- reading operands ---- */

static const uint8_t *take(pk_machine *m, size_t n) {
    if (m->len - m->pos < n) {
        il_seterr("pickle: truncated at offset %zu", m->pos);
        return NULL;
    }
    const uint8_t *p = m->p + m->pos;
    m->pos += n;
    return p;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Read an n-byte little-endian unsigned operand into *v. */
static int arg_uint(pk_machine *m, int n, uint64_t *v) {
    const uint8_t *p = take(m, (size_t)n);
    if (!p) return -1;
    *v = le(p, n);
    return 0;
}

static pk_obj *new_int(pk_machine *m, int64_t v) {
    pk_obj *o = new_obj(m, PK_INT);
    if (o) o->u.i = v;
    return o;
}

static pk_obj *new_str(pk_machine *m, size_t len) {
    const uint8_t *s = take(m, len);
    if (!s) return NULL;
    pk_obj *o = new_obj(m, PK_STR);
    if (o) { o->u.str.s = (const char *)s; o->u.str.len = len; }
    return o;
}

/* LONG1: a little-endian two's complement integer of n bytes; only int64 fits here. */
static pk_obj *read_long1(pk_machine *m) {
    uint64_t n, v;
    if (arg_uint(m, 1, &n)) return NULL;
    if (n > 8) {
        il_seterr("pickle: integer of %u bytes at offset %zu is too large", (unsigned)n, m->pos);
        return NULL;
    }
    if (n && arg_uint(m, (int)n, &v)) return NULL;
    if (n == 0) v = 0;
    else if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    return new_int(m, (int64_t)v);
}

static pk_obj *read_binfloat(pk_machine *m) {
    const uint8_t *p = take(m, 8);
    if (!p) return NULL;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits = bits << 8 | p[i]; /* big-endian */
    pk_obj *o = new_obj(m, PK_FLOAT);
    if (o) memcpy(&o->u.f, &bits, sizeof bits);
    return o;
}

/* ---- globals ---- */

static const struct {
    const char *module, *name;
    pk_global which;
    il_dtype dtype;
} allowed_globals[] = {
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR, IL_F32},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, IL_F32},
    {"collections", "OrderedDict", G_ORDERED_DICT, IL_F32},
    {"torch", "FloatStorage", G_STORAGE, IL_F32},
    {"torch", "HalfStorage", G_STORAGE, IL_F16},
    {"torch", "BFloat16Storage", G_STORAGE, IL_BF16},
    {"torch", "DoubleStorage", G_STORAGE, IL_F64},
    {"torch", "LongStorage", G_STORAGE, IL_I64},
    {"torch", "IntStorage", G_STORAGE, IL_I32},
    {"torch", "ShortStorage", G_STORAGE, IL_I16},
    {"torch", "CharStorage", G_STORAGE, IL_I8},
    {"torch", "ByteStorage", G_STORAGE, IL_U8},
    {"torch", "BoolStorage", G_STORAGE, IL_BOOL},
};

static bool str_is(const char *s, size_t len, const char *lit) {
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

static pk_obj *make_global(pk_machine *m, const char *mod, size_t mod_len, const char *name,
                           size_t name_len) {
    for (size_t i = 0; i < sizeof allowed_globals / sizeof allowed_globals[0]; i++) {
        if (str_is(mod, mod_len, allowed_globals[i].module) &&
            str_is(name, name_len, allowed_globals[i].name)) {
            pk_obj *o = new_obj(m, PK_GLOBAL);
            if (o) {
                o->u.global.which = allowed_globals[i].which;
                o->u.global.dtype = allowed_globals[i].dtype;
            }
            return o;
        }
    }
    char a[SHOWN], b[SHOWN];
    il_seterr("pickle: global '%s.%s' is not allowed", show(a, sizeof a, mod, mod_len),
              show(b, sizeof b, name, name_len));
    return NULL;
}

/* GLOBAL: "module\nname\n" follows the opcode. */
static pk_obj *read_global(pk_machine *m) {
    const char *line[2];
    size_t n[2];
    for (int k = 0; k < 2; k++) {
        const char *s = (const char *)m->p + m->pos;
        const char *nl = memchr(s, '\n', m->len - m->pos);
        if (!nl) {
            il_seterr("pickle: truncated GLOBAL at offset %zu", m->pos);
            return NULL;
        }
        line[k] = s;
        n[k] = (size_t)(nl - s);
        m->pos += n[k] + 1;
    }
    return make_global(m, line[0], n[0], line[1], n[1]);
}

/* STACK_GLOBAL: module and name are the two strings on top of the stack. */
static pk_obj *stack_global(pk_machine *m) {
    pk_obj *name = pop(m), *mod = name ? pop(m) : NULL;
    if (!mod) return NULL;
    if (mod->type != PK_STR || name->type != PK_STR) {
        il_seterr("pickle: STACK_GLOBAL needs two strings");
        return NULL;
    }
    return make_global(m, mod->u.str.s, mod->u.str.len, name->u.str.s, name->u.str.len);
}

/* ---- containers ---- */

/* A tuple or list of the n items on top of the stack (popped). */
static pk_obj *pop_seq(pk_machine *m, pk_type type, size_t base) {
    pk_obj *o = new_obj(m, type);
    if (!o) return NULL;
    for (size_t i = base; i < m->sp; i++)
        if (seq_append(o, m->stack[i])) return NULL;
    m->sp = base;
    return o;
}

static pk_obj *pop_tuple_n(pk_machine *m, size_t n) {
    if (m->sp - stack_floor(m) < n) {
        il_seterr("pickle: stack underflow at offset %zu", m->pos - 1);
        return NULL;
    }
    return pop_seq(m, PK_TUPLE, m->sp - n);
}

static pk_obj *pop_marked(pk_machine *m, pk_type type) {
    size_t base;
    if (pop_mark(m, &base)) return NULL;
    if (type == PK_DICT && (m->sp - base) % 2) {
        il_seterr("pickle: DICT at offset %zu with an odd number of items", m->pos - 1);
        return NULL;
    }
    return pop_seq(m, type, base);
}

/* Move the items above `base` into the list or dict just below it. */
static int fill(pk_machine *m, pk_type want, size_t base) {
    if (base == 0 || base <= stack_floor(m) || m->stack[base - 1]->type != want) {
        il_seterr("pickle: %s at offset %zu needs a %s", want == PK_DICT ? "SETITEMS" : "APPENDS",
                  m->pos - 1, type_names[want]);
        return -1;
    }
    if (want == PK_DICT && (m->sp - base) % 2) {
        il_seterr("pickle: SETITEMS at offset %zu with an odd number of items", m->pos - 1);
        return -1;
    }
    pk_obj *target = m->stack[base - 1];
    for (size_t i = base; i < m->sp; i++)
        if (seq_append(target, m->stack[i])) return -1;
    m->sp = base;
    return 0;
}

static int fill_marked(pk_machine *m, pk_type want) {
    size_t base;
    return pop_mark(m, &base) ? -1 : fill(m, want, base);
}

/* APPEND / SETITEM: one item (or key-value pair) on top of the target. */
static int fill_n(pk_machine *m, pk_type want, size_t n) {
    if (m->sp - stack_floor(m) < n + 1) {
        il_seterr("pickle: stack underflow at offset %zu", m->pos - 1);
        return -1;
    }
    return fill(m, want, m->sp - n);
}

/* ---- memo ---- */

static int memo_put(pk_machine *m, uint64_t idx) {
    pk_obj *o = top(m);
    if (!o) return -1;
    /* A real pickle numbers memo slots 0, 1, 2...: one per opcode at most. */
    if (idx >= MAX_MEMO || idx >= m->len) {
        il_seterr("pickle: memo index %llu out of range at offset %zu", (unsigned long long)idx,
                  m->pos);
        return -1;
    }
    size_t old = m->memo_cap;
    pk_obj **memo = grow(m->memo, &m->memo_cap, (size_t)idx + 1, sizeof *memo);
    if (!memo) return -1;
    m->memo = memo;
    memset(memo + old, 0, (m->memo_cap - old) * sizeof *memo); /* new slots are unset */
    if (!m->memo[idx]) m->memo_count++;
    m->memo[idx] = o;
    return 0;
}

static int memo_get(pk_machine *m, uint64_t idx) {
    if (idx >= m->memo_cap || !m->memo[idx]) {
        il_seterr("pickle: memo slot %llu is not set (offset %zu)", (unsigned long long)idx,
                  m->pos);
        return -1;
    }
    return push(m, m->memo[idx]);
}

/* ---- persistent ids and REDUCE ---- */

static bool is_int(const pk_obj *o) { return o->type == PK_INT || o->type == PK_BOOL; }

/* BINPERSID: ('storage', torch.<X>Storage, key, location, numel) names a storage whose
 * bytes are the archive entry <dir>/data/<key>. */
static pk_obj *persistent_load(pk_machine *m) {
    pk_obj *pid = pop(m);
    if (!pid) return NULL;
    pk_obj **it = pid->type == PK_TUPLE ? pid->u.seq.items : NULL;
    if (!it || pid->u.seq.n != 5 || it[0]->type != PK_STR ||
        !str_is(it[0]->u.str.s, it[0]->u.str.len, "storage") || it[1]->type != PK_GLOBAL ||
        it[1]->u.global.which != G_STORAGE || it[2]->type != PK_STR || !is_int(it[4]) ||
        it[4]->u.i < 0) {
        il_seterr("pickle: unsupported persistent id at offset %zu (expected ('storage', "
                  "torch.<Type>Storage, key, location, numel))", m->pos - 1);
        return NULL;
    }
    pk_obj *o = new_obj(m, PK_STORAGE);
    if (!o) return NULL;
    o->u.storage.dtype = it[1]->u.global.dtype;
    o->u.storage.key = it[2]->u.str.s;
    o->u.storage.key_len = it[2]->u.str.len;
    o->u.storage.numel = it[4]->u.i;
    return o;
}

/* Read a tuple of non-negative ints (a size or a stride) into out. */
static int int_tuple(const pk_obj *t, int64_t *out, int *n) {
    if (t->type != PK_TUPLE || t->u.seq.n > IL_MAX_DIMS) return -1;
    for (size_t i = 0; i < t->u.seq.n; i++) {
        const pk_obj *v = t->u.seq.items[i];
        if (!is_int(v) || v->u.i < 0) return -1;
        out[i] = v->u.i;
    }
    *n = (int)t->u.seq.n;
    return 0;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]).
 * Only records the view; it is checked against the storage once the name is known. */
static pk_obj *rebuild_tensor(pk_machine *m, const pk_obj *args) {
    pk_obj **a = args->u.seq.items;
    pk_obj *o = new_obj(m, PK_TENSOR);
    if (!o) return NULL;
    pk_tensor *t = &o->u.tensor;
    int n_stride = -1;
    if ((args->u.seq.n != 6 && args->u.seq.n != 7) || a[0]->type != PK_STORAGE ||
        !is_int(a[1]) || a[1]->u.i < 0 || int_tuple(a[2], t->size, &t->ndim) ||
        int_tuple(a[3], t->stride, &n_stride) || n_stride != t->ndim) {
        il_seterr("pickle: bad _rebuild_tensor_v2 arguments before offset %zu (expected "
                  "storage, offset, size, stride with at most %d dims)", m->pos, IL_MAX_DIMS);
        return NULL;
    }
    t->storage = &a[0]->u.storage;
    t->offset = a[1]->u.i;
    return o;
}

static pk_obj *reduce(pk_machine *m) {
    pk_obj *args = pop(m), *fn = args ? pop(m) : NULL;
    if (!fn) return NULL;
    if (fn->type != PK_GLOBAL || args->type != PK_TUPLE) {
        il_seterr("pickle: REDUCE at offset %zu needs a global and a tuple, got %s and %s",
                  m->pos - 1, type_names[fn->type], type_names[args->type]);
        return NULL;
    }
    size_t n = args->u.seq.n;
    switch (fn->u.global.which) {
    case G_REBUILD_TENSOR:
        return rebuild_tensor(m, args);
    case G_REBUILD_PARAMETER: /* (tensor, requires_grad, hooks): the tensor itself */
        if (n >= 1 && args->u.seq.items[0]->type == PK_TENSOR) return args->u.seq.items[0];
        break;
    case G_ORDERED_DICT: /* OrderedDict(): items arrive later via SETITEMS */
        if (n == 0) return new_obj(m, PK_DICT);
        break;
    case G_STORAGE:
        break;
    }
    il_seterr("pickle: unsupported call at offset %zu", m->pos - 1);
    return NULL;
}

/* BUILD sets an object's state; torch.save(model.state_dict()) uses it to attach
 * `_metadata` to the OrderedDict. That state is irrelevant here, so it is dropped. */
static int build(pk_machine *m) {
    pk_obj *state = pop(m), *target = state ? top(m) : NULL;
    if (!target) return -1;
    if (target->type != PK_DICT) {
        il_seterr("pickle: BUILD at offset %zu on a %s is not supported", m->pos - 1,
                  type_names[target->type]);
        return -1;
    }
    return 0;
}

/* ---- the interpreter loop ---- */

/* Execute one opcode; 1 on STOP, 0 to continue, -1 on error. */
static int step(pk_machine *m) {
    size_t at = m->pos;
    uint8_t op = m->p[m->pos++];
    uint64_t v;
    switch (op) {
    case 0x80: /* PROTO */
        if (arg_uint(m, 1, &v)) return -1;
        if (v > 5) { il_seterr("pickle: unsupported protocol %u", (unsigned)v); return -1; }
        return 0;
    case 0x95: return take(m, 8) ? 0 : -1;                      /* FRAME: a size hint */
    case '.': return 1;                                         /* STOP */
    case '(':                                                   /* MARK */
        if (m->n_marks >= MAX_MARKS) { il_seterr("pickle: MARKs nested too deep"); return -1; }
        m->marks[m->n_marks++] = m->sp;
        return 0;
    case '}': return push(m, new_obj(m, PK_DICT));              /* EMPTY_DICT */
    case ']': return push(m, new_obj(m, PK_LIST));              /* EMPTY_LIST */
    case ')': return push(m, new_obj(m, PK_TUPLE));             /* EMPTY_TUPLE */
    case 'd': return push(m, pop_marked(m, PK_DICT));           /* DICT */
    case 'l': return push(m, pop_marked(m, PK_LIST));           /* LIST */
    case 't': return push(m, pop_marked(m, PK_TUPLE));          /* TUPLE */
    case 0x85: return push(m, pop_tuple_n(m, 1));               /* TUPLE1 */
    case 0x86: return push(m, pop_tuple_n(m, 2));               /* TUPLE2 */
    case 0x87: return push(m, pop_tuple_n(m, 3));               /* TUPLE3 */
    case 'a': return fill_n(m, PK_LIST, 1);                     /* APPEND */
    case 'e': return fill_marked(m, PK_LIST);                   /* APPENDS */
    case 's': return fill_n(m, PK_DICT, 2);                     /* SETITEM */
    case 'u': return fill_marked(m, PK_DICT);                   /* SETITEMS */
    case 'N': return push(m, new_obj(m, PK_NONE));              /* NONE */
    case 0x88: case 0x89: {                                     /* NEWTRUE, NEWFALSE */
        pk_obj *o = new_obj(m, PK_BOOL);
        if (o) o->u.i = op == 0x88;
        return push(m, o);
    }
    case 'J':                                                   /* BININT */
        return arg_uint(m, 4, &v) ? -1 : push(m, new_int(m, (int32_t)(uint32_t)v));
    case 'K': return arg_uint(m, 1, &v) ? -1 : push(m, new_int(m, (int64_t)v)); /* BININT1 */
    case 'M': return arg_uint(m, 2, &v) ? -1 : push(m, new_int(m, (int64_t)v)); /* BININT2 */
    case 0x8a: return push(m, read_long1(m));                   /* LONG1 */
    case 'G': return push(m, read_binfloat(m));                 /* BINFLOAT */
    case 0x8c: return arg_uint(m, 1, &v) ? -1 : push(m, new_str(m, v)); /* SHORT_BINUNICODE */
    case 'X': return arg_uint(m, 4, &v) ? -1 : push(m, new_str(m, v));  /* BINUNICODE */
    case 0x8d:                                                  /* BINUNICODE8 */
        return arg_uint(m, 8, &v) ? -1 : push(m, new_str(m, v > SIZE_MAX ? SIZE_MAX : v));
    case 'c': return push(m, read_global(m));                   /* GLOBAL */
    case 0x93: return push(m, stack_global(m));                 /* STACK_GLOBAL */
    case 'Q': return push(m, persistent_load(m));               /* BINPERSID */
    case 'R': return push(m, reduce(m));                        /* REDUCE */
    case 'b': return build(m);                                  /* BUILD */
    case 'q': return arg_uint(m, 1, &v) ? -1 : memo_put(m, v);  /* BINPUT */
    case 'r': return arg_uint(m, 4, &v) ? -1 : memo_put(m, v);  /* LONG_BINPUT */
    case 0x94: return memo_put(m, m->memo_count);               /* MEMOIZE */
    case 'h': return arg_uint(m, 1, &v) ? -1 : memo_get(m, v);  /* BINGET */
    case 'j': return arg_uint(m, 4, &v) ? -1 : memo_get(m, v);  /* LONG_BINGET */
    default:
        il_seterr("pickle: unsupported opcode 0x%02x at offset %zu", op, at);
        return -1;
    }
}

/* Run the pickle to its STOP; returns the unpickled object (owned by m) or NULL. */
static pk_obj *run(pk_machine *m) {
    while (m->pos < m->len) {
        int rc = step(m);
        if (rc < 0) return NULL;
        if (rc == 1) {
            if (m->sp == 0) { il_seterr("pickle: STOP with an empty stack"); return NULL; }
            return m->stack[m->sp - 1];
        }
    }
    il_seterr("pickle: truncated (no STOP opcode)");
    return NULL;
}

/* ---- from pickle objects to tensors ---- */

static bool all_tensors(const pk_obj *d) {
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2)
        if (d->u.seq.items[i]->type != PK_STR || d->u.seq.items[i + 1]->type != PK_TENSOR)
            return false;
    return true;
}

/* The top-level dict of name -> tensor, unwrapping {"state_dict": {...}} or {"model": ...}. */
static const pk_obj *find_state_dict(const pk_obj *top) {
    if (top->type != PK_DICT) {
        il_seterr("pickle: top-level object has type %s, not a dict of tensors",
                  type_names[top->type]);
        return NULL;
    }
    if (all_tensors(top)) return top;
    for (size_t i = 0; i + 1 < top->u.seq.n; i += 2) {
        const pk_obj *k = top->u.seq.items[i], *v = top->u.seq.items[i + 1];
        if (k->type == PK_STR && (str_is(k->u.str.s, k->u.str.len, "state_dict") ||
                                  str_is(k->u.str.s, k->u.str.len, "model")) &&
            v->type == PK_DICT && all_tensors(v))
            return v;
    }
    for (size_t i = 0; i + 1 < top->u.seq.n; i += 2) {
        const pk_obj *k = top->u.seq.items[i], *v = top->u.seq.items[i + 1];
        char a[SHOWN];
        if (k->type != PK_STR) {
            il_seterr("pickle: a key of the top-level dict has type %s, not str",
                      type_names[k->type]);
            return NULL;
        }
        if (v->type != PK_TENSOR) {
            il_seterr("pickle: value of '%s' has type %s, not tensor",
                      show(a, sizeof a, k->u.str.s, k->u.str.len), type_names[v->type]);
            return NULL;
        }
    }
    il_seterr("pickle: not a dict of tensors"); /* not reached: all_tensors() was false */
    return NULL;
}

/* The archive and its folder prefix ("archive/"), for looking up storages. */
typedef struct {
    const il_zip *zip;
    const char *prefix;
    size_t prefix_len;
} archive;

/* The bytes of <prefix>data/<key>; NULL + error naming the key and tensor if absent. */
static const uint8_t *storage_bytes(const archive *ar, const pk_storage *s, const char *tensor,
                                    size_t *len) {
    char key[SHOWN];
    show(key, sizeof key, s->key, s->key_len);
    size_t n = ar->prefix_len + 5 + s->key_len;
    char *name = il_malloc(n);
    if (!name) return NULL;
    memcpy(name, ar->prefix, ar->prefix_len);
    memcpy(name + ar->prefix_len, "data/", 5);
    memcpy(name + ar->prefix_len + 5, s->key, s->key_len);
    long idx = il_zip_find(ar->zip, name, n);
    free(name);
    if (idx < 0) {
        il_seterr("tensor '%s': storage '%s' not found (no entry %.*sdata/%s)", tensor, key,
                  (int)ar->prefix_len, ar->prefix, key);
        return NULL;
    }
    const uint8_t *p = il_zip_entry_data(ar->zip, (size_t)idx, len);
    if (!p) il_prefixerr("tensor '%s'", tensor);
    return p;
}

static bool mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    if (a && b > UINT64_MAX / a) return false;
    *out = a * b;
    return true;
}

static bool add_ok(uint64_t a, uint64_t b, uint64_t *out) {
    if (b > UINT64_MAX - a) return false;
    *out = a + b;
    return true;
}

/* numel and the last element index the view touches (offset + sum (size-1)*stride). */
static bool view_extent(const pk_tensor *t, uint64_t *numel, uint64_t *last) {
    uint64_t n = 1, end = (uint64_t)t->offset;
    for (int d = 0; d < t->ndim; d++) {
        uint64_t span;
        if (!mul_ok(n, (uint64_t)t->size[d], &n)) return false;
        if (t->size[d] == 0) continue;
        if (!mul_ok((uint64_t)t->size[d] - 1, (uint64_t)t->stride[d], &span) ||
            !add_ok(end, span, &end))
            return false;
    }
    *numel = n;
    *last = end;
    return n <= INT64_MAX;
}

/* Row-major strides, ignoring size-1 dims (whose stride is arbitrary), like torch. */
static bool is_contiguous(const pk_tensor *t) {
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->size[d] == 1) continue;
        if (t->stride[d] != expect) return false;
        expect *= t->size[d];
    }
    return true;
}

/* Copy a strided view into a contiguous buffer, walking the index like an odometer. */
static void gather(uint8_t *dst, const uint8_t *base, const pk_tensor *t, size_t numel,
                   size_t elsz) {
    int64_t idx[IL_MAX_DIMS] = {0};
    for (size_t k = 0; k < numel; k++) {
        size_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += (size_t)(idx[d] * t->stride[d]);
        memcpy(dst + k * elsz, base + off * elsz, elsz);
        for (int d = t->ndim - 1; d >= 0 && ++idx[d] == t->size[d]; d--) idx[d] = 0;
    }
}

/* Fill out (already named) from the recorded view, checking it against its storage. */
static int make_tensor(il_tensor_file *f, const archive *ar, const pk_tensor *t,
                       il_tensor *out) {
    const pk_storage *s = t->storage;
    size_t elsz = il_dtype_size(s->dtype), avail;
    const uint8_t *bytes = storage_bytes(ar, s, out->name, &avail);
    if (!bytes) return -1;
    uint64_t need, numel, last, nbytes;
    if (!mul_ok((uint64_t)s->numel, elsz, &need) || need > avail) {
        il_seterr("tensor '%s': storage of %lld %s elements needs more than its %zu bytes",
                  out->name, (long long)s->numel, il_dtype_name(s->dtype), avail);
        return -1;
    }
    if (!view_extent(t, &numel, &last) || !mul_ok(numel, elsz, &nbytes) ||
        (numel > 0 && last >= (uint64_t)s->numel)) {
        il_seterr("tensor '%s': size and stride (offset %lld) reach beyond its storage of "
                  "%lld elements", out->name, (long long)t->offset, (long long)s->numel);
        return -1;
    }
    out->dtype = s->dtype;
    out->ndim = t->ndim;
    memcpy(out->shape, t->size, sizeof t->size);
    out->nbytes = (size_t)nbytes;
    if (numel == 0) return 0;
    const uint8_t *base = bytes + (size_t)t->offset * elsz;
    if (is_contiguous(t)) { /* zero copy: point into the mapping */
        out->data = base;
        return 0;
    }
    /* Overlapping views (stride 0) could expand a small storage into a huge copy. */
    if (out->nbytes > avail) {
        il_seterr("tensor '%s': overlapping strided view is not supported", out->name);
        return -1;
    }
    uint8_t *copy = il_malloc(out->nbytes);
    if (!copy) return -1;
    gather(copy, base, t, (size_t)numel, elsz);
    if (il_tensor_file_own(f, copy)) { free(copy); return -1; }
    out->data = copy;
    return 0;
}

/* A tensor name as a C string: it must be UTF-8 without NUL bytes. */
static char *tensor_name(const pk_obj *key) {
    char a[SHOWN];
    if (memchr(key->u.str.s, 0, key->u.str.len) || !il_utf8_valid(key->u.str.s, key->u.str.len)) {
        il_seterr("invalid tensor name '%s'", show(a, sizeof a, key->u.str.s, key->u.str.len));
        return NULL;
    }
    return il_strndup(key->u.str.s, key->u.str.len);
}

static int build_tensors(il_tensor_file *f, const archive *ar, const pk_obj *dict) {
    size_t n = dict->u.seq.n / 2;
    if (n > INT32_MAX) { il_seterr("too many tensors"); return -1; }
    f->tensors = il_calloc(n, sizeof *f->tensors);
    if (!f->tensors) return -1;
    for (size_t i = 0; i < n; i++) {
        il_tensor *t = &f->tensors[i];
        if (!(t->name = tensor_name(dict->u.seq.items[2 * i]))) return -1;
        f->n_tensors++; /* from here on il_tensor_file_free releases the name */
        if (make_tensor(f, ar, &dict->u.seq.items[2 * i + 1]->u.tensor, t)) return -1;
    }
    return 0;
}

/* ---- the archive ---- */

static int not_zip_error(const uint8_t *d, size_t len) {
    /* Before 1.6, torch.save wrote a bare pickle stream (PROTO 2, then a magic number). */
    if (len >= 2 && d[0] == 0x80 && d[1] >= 1 && d[1] <= 5)
        il_seterr("legacy (non-zip) torch format is not supported; re-save with torch>=1.6");
    else
        il_seterr("not a zip archive (a torch.save file starts with \"PK\\3\\4\")");
    return -1;
}

/* The single entry "<dir>/data.pkl" (any one-level <dir>); sets the prefix "<dir>/". */
static long find_data_pkl(const il_zip *z, archive *ar) {
    long found = -1;
    for (size_t i = 0; i < z->n_entries; i++) {
        const il_zip_entry *e = &z->entries[i];
        size_t dir_len = e->name_len > 9 ? e->name_len - 9 : 0;
        if (!dir_len || memcmp(e->name + dir_len, "/data.pkl", 9) != 0 ||
            memchr(e->name, '/', dir_len))
            continue;
        if (found >= 0) {
            il_seterr("several '*/data.pkl' entries in the archive");
            return -1;
        }
        found = (long)i;
        ar->prefix = e->name;
        ar->prefix_len = dir_len + 1;
    }
    if (found < 0) il_seterr("no '<dir>/data.pkl' entry: not a torch.save archive");
    return found;
}

/* Newer torch records the byte order; the data is used as-is, so it must be little. */
static int check_byteorder(const archive *ar) {
    char name[300];
    if (ar->prefix_len > 200) return 0;
    int n = snprintf(name, sizeof name, "%.*sbyteorder", (int)ar->prefix_len, ar->prefix);
    long idx = il_zip_find(ar->zip, name, (size_t)n);
    if (idx < 0) return 0; /* older torch: always little-endian */
    size_t len;
    const uint8_t *p = il_zip_entry_data(ar->zip, (size_t)idx, &len);
    if (!p) return -1;
    if (len != 6 || memcmp(p, "little", 6) != 0) {
        il_seterr("%s: only little-endian archives are supported", name);
        return -1;
    }
    return 0;
}

static int load(il_tensor_file *f) {
    const uint8_t *d = f->map.data;
    size_t len = f->map.len, pkl_len;
    if (!il_zip_is_zip(d, len)) return not_zip_error(d, len);
    il_zip z;
    if (il_zip_open(&z, d, len)) return -1;
    archive ar = {&z, NULL, 0};
    pk_machine m;
    memset(&m, 0, sizeof m);
    int rc = -1;
    long pkl = find_data_pkl(&z, &ar);
    if (pkl < 0 || check_byteorder(&ar)) goto done;
    if (!(m.p = il_zip_entry_data(&z, (size_t)pkl, &pkl_len))) goto done;
    m.len = pkl_len;
    const pk_obj *top = run(&m), *dict = top ? find_state_dict(top) : NULL;
    if (dict) rc = build_tensors(f, &ar, dict);
done:
    machine_free(&m);
    il_zip_close(&z);
    return rc;
}

il_tensor_file *il_torchbin_open(const char *path) {
    il_tensor_file *f = il_calloc(1, sizeof *f);
    if (!f) return NULL;
    if (!(f->path = il_strdup(path)) || il_mmap_open(&f->map, path)) {
        il_tensor_file_free(f);
        return NULL;
    }
    if (load(f)) {
        il_prefixerr("%s", path);
        il_tensor_file_free(f);
        return NULL;
    }
    if (il_tensor_file_build_index(f)) { /* its message already names the path */
        il_tensor_file_free(f);
        return NULL;
    }
    return f;
}
