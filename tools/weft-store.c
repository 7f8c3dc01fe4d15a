/* weft-store: look into a named weft object store from the shell.
 *
 *   weft-store NAME info           capacity, use, objects, clients, and
 *                                  the create/evict/spill/reclaim counts
 *   weft-store NAME list           one line per object
 *   weft-store NAME stat ID        one object (ID: 40 hex digits)
 *   weft-store NAME delete ID      delete a sealed, unreferenced object
 *   weft-store NAME put ID [FILE]  store FILE (default stdin) as ID
 *   weft-store NAME get ID         write the object to stdout
 *   weft-store NAME check          verify the segment's consistency
 *   weft-store NAME unlink         remove the store's name
 *
 * Options (before NAME): -s DIR, the spill directory (needed to get a
 * spilled object back). The store must exist; this tool never creates
 * one, except for put with -c CAPACITY_MIB. Exit status: 0, 1 when the
 * operation failed, 2 on bad usage. Built on <weft.h> only. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

static const char USAGE[] =
    "usage: weft-store [-s SPILL_DIR] [-c CAPACITY_MIB] NAME COMMAND\n"
    "  info           capacity, use, objects, clients, evictions, spills\n"
    "  list           one line per object\n"
    "  stat ID        one object (ID: 40 hex digits)\n"
    "  delete ID      delete a sealed, unreferenced object\n"
    "  put ID [FILE]  store FILE (default stdin) as ID (-c: create the\n"
    "                 store with this capacity if it does not exist)\n"
    "  get ID         write the object to stdout\n"
    "  check          verify the segment's consistency\n"
    "  unlink         remove the store's name\n"
    "  -s DIR         the spill directory (to get spilled objects back)\n";

static int usage(void)
{
    fputs(USAGE, stderr);
    return 2;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "weft-store: %s: %s\n", what, strerror(-rc));
    return 1;
}

static const char *state_name(uint32_t s)
{
    switch (s) {
    case WEFT_STORE_STATE_CREATED: return "created";
    case WEFT_STORE_STATE_SEALED: return "sealed";
    case WEFT_STORE_STATE_SPILLED: return "spilled";
    default: return "?";
    }
}

static void print_info(const weft_store_info *in)
{
    char hex[41];
    weft_store_id_hex(&in->id, hex);
    printf("%s  %-7s  %12llu  refs=%u%s", hex, state_name(in->state),
           (unsigned long long)in->size, in->refs,
           (in->flags & WEFT_STORE_PIN) ? "  pinned" : "");
    if (in->owner_pid)
        printf("  writer=%d", (int)in->owner_pid);
    printf("\n");
}

static int cmd_info(weft_store *st, const char *name)
{
    weft_store_stats s;
    int rc = weft_store_stats_get(st, &s);
    if (rc)
        return fail("stats", rc);
    printf("store      %s\n", name);
    printf("capacity   %llu bytes\n", (unsigned long long)s.capacity);
    printf("used       %llu bytes (%.1f%%)\n", (unsigned long long)s.used,
           s.capacity ? 100.0 * (double)s.used / (double)s.capacity : 0.0);
    printf("objects    %llu in memory (%llu sealed), %llu spilled, "
           "%llu max\n", (unsigned long long)s.objects,
           (unsigned long long)s.sealed, (unsigned long long)s.spilled,
           (unsigned long long)s.max_objects);
    printf("clients    %llu of %llu (this tool included)\n",
           (unsigned long long)s.clients, (unsigned long long)s.max_clients);
    printf("creates    %llu  seals %llu  deletes %llu  aborts %llu\n",
           (unsigned long long)s.creates, (unsigned long long)s.seals,
           (unsigned long long)s.deletes, (unsigned long long)s.aborts);
    printf("evictions  %llu (%llu bytes)\n", (unsigned long long)s.evictions,
           (unsigned long long)s.evicted_bytes);
    printf("spills     %llu (%llu bytes)  restores %llu (%llu bytes)\n",
           (unsigned long long)s.spills, (unsigned long long)s.spilled_bytes,
           (unsigned long long)s.restores,
           (unsigned long long)s.restored_bytes);
    printf("reclaims   %llu dead clients  repairs %llu\n",
           (unsigned long long)s.reclaims, (unsigned long long)s.repairs);
    return 0;
}

static int cmd_list(weft_store *st)
{
    size_t n = 0;
    int rc = weft_store_list(st, NULL, 0, &n);
    if (rc)
        return fail("list", rc);
    size_t cap = n + 64;
    weft_store_info *in = calloc(cap, sizeof *in);
    if (!in)
        return fail("list", -ENOMEM);
    rc = weft_store_list(st, in, cap, &n);
    if (rc == 0)
        for (size_t i = 0; i < n && i < cap; i++)
            print_info(&in[i]);
    free(in);
    return rc ? fail("list", rc) : 0;
}

/* Reads all of f into a malloc'd buffer, -EFBIG once it has more than max
 * bytes (what could never fit: reading /dev/zero, or a file larger than
 * the store, must not take all the memory first). A read error is an
 * error, not the end of the input: storing what came before it (nothing,
 * for a directory) would succeed with the wrong bytes. */
static int slurp(FILE *f, size_t max, unsigned char **out, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    errno = 0;
    for (size_t r; b && n <= max && (r = fread(b + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap && n <= max) {
            unsigned char *nb = realloc(b, cap *= 2);
            if (!nb)
                free(b);
            b = nb;
        }
    }
    if (!b)
        return -ENOMEM;
    if (n > max || ferror(f)) {
        int e = n > max ? EFBIG : errno ? errno : EIO;
        free(b);
        return -e;
    }
    *out = b;
    *len = n;
    return 0;
}

static int cmd_put(weft_store *st, const weft_store_id *id, const char *file)
{
    weft_store_stats s;
    int rc = weft_store_stats_get(st, &s);
    if (rc)
        return fail("stats", rc);
    FILE *f = file ? fopen(file, "rb") : stdin;
    if (!f)
        return fail(file, -errno);
    unsigned char *b;
    size_t n;
    rc = slurp(f, s.capacity, &b, &n);
    if (file)
        fclose(f);
    if (rc == -EFBIG) {
        fprintf(stderr, "weft-store: %s: larger than the store (%llu "
                "bytes)\n", file ? file : "stdin",
                (unsigned long long)s.capacity);
        return 1;
    }
    if (rc)
        return fail(file ? file : "reading stdin", rc);
    rc = weft_store_put(st, id, b, n, 0);
    free(b);
    return rc ? fail("put", rc) : 0;
}

static int write_failed(void)
{
    return fail("writing to stdout", -(errno ? errno : EIO));
}

static int cmd_get(weft_store *st, const weft_store_id *id)
{
    weft_store_obj obj;
    int rc = weft_store_get(st, id, 0, &obj);
    if (rc)
        return fail("get", rc);
    errno = 0;
    size_t w = fwrite(obj.data, 1, obj.size, stdout);
    weft_store_release(st, &obj);
    return w == obj.size ? 0 : write_failed();
}

/* The commands, with how many words follow each. */
static const struct command {
    const char *name;
    int min_args, max_args;
    bool id; /* the first word is an object id */
} commands[] = {
    { "info", 0, 0, false },  { "list", 0, 0, false },
    { "check", 0, 0, false }, { "unlink", 0, 0, false },
    { "stat", 1, 1, true },   { "delete", 1, 1, true },
    { "get", 1, 1, true },    { "put", 1, 2, true },
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* A bad command line: what is wrong, then the usage; exit status 2. */
static int bad_usage(const char *what, const char *arg)
{
    fprintf(stderr, "weft-store: %s '%s'\n", what, arg);
    return usage();
}

static int cmd_check(weft_store *st)
{
    char why[256];
    int rc = weft_store_check(st, why, sizeof why);
    if (rc)
        fprintf(stderr, "weft-store: inconsistent: %s\n", why);
    else
        printf("consistent\n");
    return rc ? 1 : 0;
}

static int cmd_stat(weft_store *st, const weft_store_id *id)
{
    weft_store_info in;
    int rc = weft_store_stat(st, id, &in);
    if (rc)
        return fail("stat", rc);
    print_info(&in);
    return 0;
}

static int run(weft_store *st, const char *name, const char *cmd,
               const weft_store_id *id, char **args)
{
    if (strcmp(cmd, "info") == 0)
        return cmd_info(st, name);
    if (strcmp(cmd, "list") == 0)
        return cmd_list(st);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(st);
    if (strcmp(cmd, "stat") == 0)
        return cmd_stat(st, id);
    if (strcmp(cmd, "delete") == 0) {
        int rc = weft_store_delete(st, id);
        return rc ? fail("delete", rc) : 0;
    }
    if (strcmp(cmd, "put") == 0)
        return cmd_put(st, id, args[1]);
    return cmd_get(st, id);
}

/* -c's capacity in bytes; 0 when s is not a count of MiB from 1 to 2^24
 * (strtoull alone takes "-1" for 2^64 - 1). */
static size_t parse_capacity(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long mib = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || errno || mib == 0 ||
        mib > (1ull << 24))
        return 0;
    return (size_t)mib << 20;
}

/* The command line after the options, all checked before the store is
 * opened (or made), so that a bad one is status 2 whatever state the
 * store is in. Returns the command, or NULL after saying what is wrong. */
static const struct command *parse_command(int argc, char **argv,
                                           const weft_store_opts *o,
                                           weft_store_id *id)
{
    const struct command *cmd = find_command(argv[1]);
    int nargs = argc - 2;
    if (!cmd) {
        bad_usage("unknown command", argv[1]);
    } else if (nargs < cmd->min_args || nargs > cmd->max_args) {
        bad_usage(nargs < cmd->min_args ? "missing argument of"
                                        : "too many arguments for",
                  cmd->name);
        cmd = NULL;
    } else if (cmd->id && weft_store_id_parse(argv[2], id) != 0) {
        fprintf(stderr, "weft-store: an id is 40 hex digits, not '%s'\n",
                argv[2]);
        cmd = NULL;
    } else if (!(o->flags & WEFT_STORE_OPEN_EXISTING) &&
               strcmp(cmd->name, "put") != 0) {
        /* info, list... on a store that does not exist must say so, not
         * make one */
        bad_usage("-c makes a store, for put only, not", cmd->name);
        cmd = NULL;
    }
    return cmd;
}

int main(int argc, char **argv)
{
    weft_store_opts o;
    weft_store_opts_default(&o);
    o.flags = WEFT_STORE_OPEN_EXISTING | WEFT_STORE_OPEN_LAZY;
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(USAGE, stdout);
        return 0;
    }
    int c;
    while ((c = getopt(argc, argv, "s:c:")) != -1) {
        if (c == 's') {
            o.spill_dir = optarg;
        } else if (c == 'c') {
            if (!(o.capacity = parse_capacity(optarg))) {
                fprintf(stderr, "weft-store: bad capacity '%s' (MiB, 1 to "
                        "16777216)\n", optarg);
                return 2;
            }
            o.flags &= ~(uint32_t)WEFT_STORE_OPEN_EXISTING;
        } else {
            return usage();
        }
    }
    if (argc - optind < 2)
        return usage();
    const char *name = argv[optind];
    weft_store_id id;
    const struct command *cmd =
        parse_command(argc - optind, argv + optind, &o, &id);
    if (!cmd)
        return 2;
    if (strcmp(cmd->name, "unlink") == 0) {
        int rc = weft_store_unlink(name, o.spill_dir);
        return rc ? fail(name, rc) : 0;
    }
    weft_store *st;
    int rc = weft_store_open(name, &o, &st);
    if (rc == -EPROTO)
        fprintf(stderr, "weft-store: %s: not a weft store (or another "
                "version's)\n", name);
    else if (rc == -EINVAL)
        fprintf(stderr, "weft-store: '%s' is not a store name (1 to %d of "
                "A-Z a-z 0-9 . _ -, not starting with '.')\n", name,
                WEFT_STORE_NAME_MAX);
    else if (rc)
        fail(name, rc);
    if (rc)
        return 1;
    rc = run(st, name, cmd->name, &id, argv + optind + 2);
    weft_store_close(st);
    /* what went through stdio's buffer fails at the flush (a full disk):
     * that must not be status 0 */
    errno = 0;
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
        rc = write_failed();
    return rc;
}
