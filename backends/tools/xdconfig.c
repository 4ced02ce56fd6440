/* xdconfig - check an xdevice INI file and show the configuration it gives.
 *
 *   xdconfig check FILE.ini     validate; print the effective config as INI
 *   xdconfig json FILE.ini      the effective config as JSON
 *   xdconfig defaults           an INI file holding every key's default
 *   xdconfig markdown           the parameter table for README.md
 *   xdconfig roff               the same keys as man(7) text, for xdevice(7)
 *   xdconfig set FILE.ini KEY=VALUE...
 *                               change keys and rewrite FILE safely (xd_config_save:
 *                               readers see the whole old or new file); a missing
 *                               FILE starts from the defaults; a key given twice
 *                               or a value the file cannot hold is refused, and
 *                               dropped comments are noted
 *   xdconfig tunables           the tuner's search space, one key per line
 *   xdconfig health FILE.ini    whether the directories and devices FILE names
 *                               are fit to run in: JSON on stdout, one line per
 *                               problem on stderr; exit 0 healthy, 1 not, 2 bad usage
 *   xdconfig --help | -h        the usage, on stdout
 *
 * A bad command line is one line and exit 2. Output that cannot be written
 * (stdout on a full disk) is one line and exit 1 (2 for health, whose 1
 * means unhealthy).
 *
 * It uses the same parser and checks as the library and the fio engine, so a
 * file it accepts is a file they accept.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/config.h"
#include "../core/health.h"
#include "../xdevice.h"

/* The commands, their arguments and how many: the usage text, --help
 * and every message about a bad command line come from this table. */
struct command {
    const char *name, *args; /* args as the usage shows them */
    int min, max;             /* how many arguments after the name */
};

static const struct command commands[] = {
    {"check", "FILE.ini", 1, 1},    {"json", "FILE.ini", 1, 1},
    {"health", "FILE.ini", 1, 1},   {"set", "FILE.ini KEY=VALUE...", 2, INT_MAX},
    {"defaults", "", 0, 0},         {"markdown", "", 0, 0},
    {"roff", "", 0, 0},             {"tunables", "", 0, 0},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *out)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "%s xdconfig %s%s%s\n", i ? "      " : "usage:", commands[i].name,
                commands[i].args[0] ? " " : "", commands[i].args);
    fprintf(out, "       xdconfig --help\n");
}

/* A command line naming no known command: one line, exit 2. */
static int unknown_command(const char *what)
{
    fprintf(stderr, "xdconfig: %s; allowed: ", what);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(stderr, "%s, ", commands[i].name);
    fprintf(stderr, "--help\n");
    return 2;
}

/* c given nargs arguments (args): 0 when that is how many it takes, else
 * one line saying which is missing or too many, and 2. */
static int check_nargs(const struct command *c, int nargs, char **args)
{
    char shown[XD_ESCAPE_LEN];
    if (nargs < c->min)
        fprintf(stderr, "xdconfig: %s needs %s%s",
                c->name, nargs ? "KEY=VALUE after " : "", nargs ? "FILE.ini" : c->args);
    else if (nargs > c->max)
        fprintf(stderr, "xdconfig: %s takes %s: \"%s\" is an argument too many", c->name,
                c->max ? "one FILE.ini" : "no argument",
                xd_escape(args[c->max], shown, sizeof(shown)));
    else
        return 0;
    fprintf(stderr, "; allowed: xdconfig %s%s%s\n", c->name, c->args[0] ? " " : "", c->args);
    return 2;
}

/* The first error writing stdout: a flush before the end (health orders
 * its report before its problem lines) must not lose it. */
static int stdout_errno;

static void flush_stdout(void)
{
    if (fflush(stdout) && !stdout_errno)
        stdout_errno = errno;
}

/* What went to stdout must have arrived: a config or report cut short by a
 * full disk or a closed pipe is a failure, not an answer. fail_rc: the
 * command's status for it. */
static int stdout_done(int rc, int fail_rc)
{
    flush_stdout();
    if (!stdout_errno && !ferror(stdout))
        return rc;
    fprintf(stderr, "xdconfig: standard output: cannot write: %s\n",
            strerror(stdout_errno ? stdout_errno : EIO));
    return fail_rc;
}

/* Load and cross-check a file; print the one-line reason and return NULL if bad. */
static struct xd_config *load_checked(const char *path)
{
    char err[XD_ERRLEN];
    struct xd_config *cfg = xd_config_new();
    if (!cfg || xd_config_load(cfg, path, err, sizeof(err)) ||
        xd_config_check(cfg, err, sizeof(err))) {
        fprintf(stderr, "xdconfig: %s\n", cfg ? err : "out of memory");
        xd_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static int print_and_free(char *text)
{
    if (!text) {
        fprintf(stderr, "xdconfig: out of memory\n");
        return 1;
    }
    fputs(text, stdout);
    if (text[0] && text[strlen(text) - 1] != '\n')
        putchar('\n');
    free(text);
    return 0;
}

static const char *type_name(enum xd_key_type t)
{
    static const char *names[] = {"text", "bool", "integer", "size", "enum", "octal mode", "number"};
    return names[t];
}

/* One row per key; "|" inside a cell is escaped for Markdown. */
static void markdown_cell(const char *text)
{
    for (; *text; text++) {
        if (*text == '|')
            fputs("\\|", stdout);
        else
            putchar(*text);
    }
}

static void markdown_range(const struct xd_key_info *k)
{
    if (k->allowed)
        markdown_cell(k->allowed);
    else if (k->type == XD_T_INT || k->type == XD_T_SIZE)
        printf("%.0f to %.0f", k->min, k->max);
    else if (k->type == XD_T_FLOAT)
        printf("%g to %g", k->min, k->max);
    else if (k->type == XD_T_BOOL)
        fputs("true\\|false", stdout);
}

static int print_markdown(void)
{
    puts("| key (INI section) | fio option | type | default | allowed | live | description |");
    puts("|---|---|---|---|---|---|---|");
    for (unsigned i = 0; i < XD_KEY_COUNT; i++) {
        const struct xd_key_info *k = &xd_keys[i];
        printf("| `%s` [%s] | `xd_%s` | %s | `%s` | ", k->name, k->section, k->name,
               type_name(k->type), k->def[0] ? k->def : "\"\"");
        markdown_range(k);
        printf(" | %s | ", (k->flags & XD_K_LIVE) ? "yes" : "");
        if (k->flags & XD_K_PENDING)
            fputs("*Not built yet: only the default is accepted.* ", stdout);
        markdown_cell(k->help);
        puts(" |");
    }
    return 0;
}

/* Text as roff: a backslash is written \e, and a line never starts with a
 * control character because every text line is begun with \&. */
static void roff_text(const char *text)
{
    for (; *text; text++) {
        if (*text == '\\')
            fputs("\\e", stdout);
        else if (*text == '-')
            fputs("\\-", stdout); /* a real minus: copy-paste keeps it ASCII */
        else
            putchar(*text);
    }
}

static void roff_range(const struct xd_key_info *k)
{
    if (k->allowed) { /* "a, b, c": the line breaks between values, never inside one */
        fputs("one of ", stdout);
        for (const char *a = k->allowed; *a; a++) {
            if (*a == '|')
                fputs(", ", stdout);
            else
                roff_text((char[]){*a, 0});
        }
    } else if (k->type == XD_T_INT || k->type == XD_T_SIZE) {
        printf("%.0f to %.0f", k->min, k->max);
    } else if (k->type == XD_T_FLOAT) {
        printf("%g to %g", k->min, k->max);
    } else if (k->type == XD_T_BOOL) {
        fputs("true or false", stdout);
    }
}

/* One .SS per INI section, in schema order, one tagged paragraph per key:
 * the body of xdevice(7)'s CONFIGURATION KEYS (man/xdevice.7.in). */
static int print_roff(void)
{
    const char *section = NULL;
    for (unsigned i = 0; i < XD_KEY_COUNT; i++) {
        const struct xd_key_info *k = &xd_keys[i];
        if (!section || strcmp(section, k->section)) {
            section = k->section;
            printf(".SS [%s]\n", section);
        }
        printf(".TP\n.BR %s \" (fio option \" xd_%s )\n", k->name, k->name);
        printf("\\&%s, default \\fB", type_name(k->type));
        roff_text(k->def[0] ? k->def : "\"\"");
        fputs("\\fR", stdout);
        if (k->allowed || (k->type != XD_T_STR && k->type != XD_T_MODE)) {
            fputs("; ", stdout);
            roff_range(k);
        }
        printf("%s.\n", (k->flags & XD_K_LIVE) ? "; live (xd_reload)" : "");
        if (k->flags & XD_K_PENDING)
            puts("\\fINot built yet: only the default is accepted.\\fR");
        fputs("\\&", stdout);
        roff_text(k->help);
        puts(".");
    }
    return 0;
}

#define SET_HEADER "written by xdconfig set"

/* Whether an INI line (as xd_config_load took it) holds a comment: a line
 * starting with ';' or '#', text after a [section], or a ';' at the start
 * of a value or after white space in it. The header set writes is none. */
static bool ini_has_comment(const char *line)
{
    const char *s = line + (strncmp(line, "\xEF\xBB\xBF", 3) ? 0 : 3); /* a byte order mark */
    s += strspn(s, " \t\r\n\v\f");
    size_t len = strcspn(s, "\r\n");
    if (len == strlen("# " SET_HEADER) && !strncmp(s, "# " SET_HEADER, len))
        return false;
    if (*s == ';' || *s == '#')
        return true;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        return close && close[1 + strspn(close + 1, " \t\r\n\v\f")];
    }
    const char *v = s + strcspn(s, "=:");
    for (const char *p = *v ? v + 1 : v; *p; p++)
        if (*p == ';' && (p == v + 1 || isspace((unsigned char)p[-1])))
            return true;
    return false;
}

/* The comment lines of the file at path, which set does not keep: it
 * writes the keys (xd_config_save), so a note says so rather than losing
 * them without a word. */
static int comments_in(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC); /* as it was loaded */
    FILE *f = fd < 0 ? NULL : fdopen(fd, "r");
    if (!f && fd >= 0)
        close(fd);
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (f && getline(&line, &cap, f) > 0)
        n += ini_has_comment(line);
    free(line);
    if (f)
        fclose(f);
    return n;
}

/* sets[i] sets a key an earlier KEY=VALUE set: refused, as a key set twice
 * in an INI file is (else the last would silently win). 0, or -EINVAL with
 * one line in err. */
static int set_twice(char **sets, int i, char *err, size_t errlen)
{
    char shown[XD_ESCAPE_LEN], first[XD_ESCAPE_LEN];
    size_t len = strcspn(sets[i], "=");
    for (int j = 0; j < i; j++) {
        if (strcspn(sets[j], "=") != len || strncmp(sets[i], sets[j], len))
            continue;
        snprintf(err, errlen, "command line: %s: key %.*s is set twice (first as %s); allowed: once",
                 xd_escape(sets[i], shown, sizeof(shown)), (int)len, sets[i],
                 xd_escape(sets[j], first, sizeof(first)));
        return -EINVAL;
    }
    return 0;
}

/* One KEY=VALUE of the command line into cfg. 0, or -errno with one line. */
static int set_one(struct xd_config *cfg, char **sets, int i, char *err, size_t errlen)
{
    char shown[XD_ESCAPE_LEN];
    char *eq = strchr(sets[i], '=');
    if (!eq) {
        snprintf(err, errlen, "command line: \"%s\" is not KEY=VALUE; allowed: KEY=VALUE with a key of `xdconfig defaults`",
                 xd_escape(sets[i], shown, sizeof(shown)));
        return -EINVAL;
    }
    *eq = 0;
    int rc = xd_config_set(cfg, sets[i], eq + 1, "command line", err, errlen);
    *eq = '=';
    return rc ? rc : set_twice(sets, i, err, errlen);
}

/* Load FILE (or start from defaults when it does not exist), set each
 * KEY=VALUE, check, and replace FILE atomically; a note on stderr when
 * comments of FILE were not kept. What is at FILE's name is looked at
 * first, and read never through a link: a link another user planted there
 * would have shown root its target's lines in parse errors, and another
 * user's file is not ours to replace. */
static int set_and_save(const char *path, int nsets, char **sets)
{
    char err[XD_ERRLEN];
    struct xd_config *cfg = xd_config_new();
    int rc = cfg ? xd_config_save_check(path, err, sizeof(err)) : -ENOMEM;
    if (!rc)
        rc = xd_config_load_nofollow(cfg, path, err, sizeof(err));
    int comments = rc ? 0 : comments_in(path);
    if (rc == -ENOENT)
        rc = 0;
    for (int i = 0; !rc && i < nsets; i++)
        rc = set_one(cfg, sets, i, err, sizeof(err));
    if (!rc)
        rc = xd_config_check(cfg, err, sizeof(err));
    if (!rc)
        rc = xd_config_save(cfg, path, SET_HEADER, err, sizeof(err));
    if (rc)
        fprintf(stderr, "xdconfig: %s\n", cfg ? err : "out of memory");
    else if (comments)
        fprintf(stderr, "xdconfig: note: %s: %d comment line%s not kept; set writes the keys only\n",
                xd_escape(path, err, sizeof(err)), comments, comments == 1 ? "" : "s");
    xd_config_free(cfg);
    return rc ? 1 : 0;
}

static int print_tunables(void)
{
    static const char *types[] = {"text", "bool", "int", "size", "enum", "mode", "float"};
    for (unsigned i = 0; i < xd_tunable_count(); i++) {
        const struct xd_tunable *t = xd_tunable_get(i);
        printf("%s %s", t->key, types[t->type]);
        if (t->type == XD_T_ENUM)
            printf(" %s", t->choices);
        else
            printf(" %.0f..%.0f %s%g", t->lo, t->hi, t->log_scale ? "x" : "+", t->step);
        printf("%s%s\n", t->live ? " live" : "", t->pending ? " pending" : "");
    }
    return 0;
}

/* The health check of a file's config (xd_health_json): a file that does
 * not load is bad usage (2), a problem makes it unhealthy (1). */
static int health(const char *path)
{
    char err[XD_ERRLEN];
    int healthy = 0;
    struct xd_config *cfg = load_checked(path);
    if (!cfg)
        return 2;
    char *lines = NULL;
    char *text = xd_health_report(cfg, NULL, &healthy, &lines, err, sizeof(err));
    xd_config_free(cfg);
    if (!text) {
        fprintf(stderr, "xdconfig: %s\n", err);
        return 2;
    }
    print_and_free(text);
    flush_stdout(); /* the report, then its problems */
    for (char *line = lines, *nl; line && (nl = strchr(line, '\n')); line = nl + 1)
        fprintf(stderr, "xdconfig: %.*s\n", (int)(nl - line), line);
    free(lines);
    return healthy ? 0 : 1;
}

static int show_defaults(void)
{
    struct xd_config *cfg = xd_config_new();
    int rc = cfg ? print_and_free(xd_config_ini(cfg)) : print_and_free(NULL);
    xd_config_free(cfg);
    return rc;
}

/* check and json: the effective config of a file that loads and checks. */
static int show_config(const char *path, bool json)
{
    struct xd_config *cfg = load_checked(path);
    if (!cfg)
        return 1;
    int rc = print_and_free(json ? xd_config_json(cfg) : xd_config_ini(cfg));
    xd_config_free(cfg);
    return rc;
}

static int run(const struct command *c, char **args, int nargs)
{
    const char *n = c->name;
    return !strcmp(n, "check")      ? show_config(args[0], false)
           : !strcmp(n, "json")     ? show_config(args[0], true)
           : !strcmp(n, "health")   ? health(args[0])
           : !strcmp(n, "set")      ? set_and_save(args[0], nargs - 1, args + 1)
           : !strcmp(n, "defaults") ? show_defaults()
           : !strcmp(n, "markdown") ? print_markdown()
           : !strcmp(n, "roff")     ? print_roff()
                                    : print_tunables();
}

int main(int argc, char **argv)
{
    char what[XD_ESCAPE_LEN + 32], shown[XD_ESCAPE_LEN];
    if (argc < 2)
        return unknown_command("no command");
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        print_usage(stdout);
        return stdout_done(0, 1);
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct command *c = &commands[i];
        if (strcmp(argv[1], c->name))
            continue;
        int rc = check_nargs(c, argc - 2, argv + 2);
        if (rc)
            return rc;
        rc = run(c, argv + 2, argc - 2);
        /* health: 1 means unhealthy, so a report that was not written is 2 */
        return stdout_done(rc, !strcmp(c->name, "health") ? 2 : 1);
    }
    snprintf(what, sizeof(what), "unknown command \"%s\"", xd_escape(argv[1], shown, sizeof(shown)));
    return unknown_command(what);
}
