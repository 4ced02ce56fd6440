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
 *                               FILE starts from the defaults
 *   xdconfig tunables           the tuner's search space, one key per line
 *   xdconfig health FILE.ini    whether the directories and devices FILE names
 *                               are fit to run in: JSON on stdout, one line per
 *                               problem on stderr; exit 0 healthy, 1 not, 2 bad usage
 *
 * It uses the same parser and checks as the library and the fio engine, so a
 * file it accepts is a file they accept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/config.h"
#include "../core/health.h"
#include "../xdevice.h"

static int usage(void)
{
    fprintf(stderr, "usage: xdconfig check FILE.ini | json FILE.ini | health FILE.ini | defaults | markdown | roff | tunables\n"
                    "       xdconfig set FILE.ini KEY=VALUE...\n");
    return 2;
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
    if (!text)
        return 1;
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

/* Load FILE (or start from defaults when it does not exist), set each
 * KEY=VALUE, check, and replace FILE atomically. */
static int set_and_save(const char *path, int nsets, char **sets)
{
    char err[XD_ERRLEN];
    struct xd_config *cfg = xd_config_new();
    int rc = cfg ? xd_config_load(cfg, path, err, sizeof(err)) : -ENOMEM;
    if (rc == -ENOENT)
        rc = 0;
    for (int i = 0; !rc && i < nsets; i++) {
        char *eq = strchr(sets[i], '=');
        if (!eq) {
            char shown[XD_ESCAPE_LEN];
            snprintf(err, sizeof(err), "command line: \"%s\" is not KEY=VALUE; allowed: KEY=VALUE with a key of `xdconfig defaults`",
                     xd_escape(sets[i], shown, sizeof(shown)));
            rc = -EINVAL;
            break;
        }
        *eq = 0;
        rc = xd_config_set(cfg, sets[i], eq + 1, "command line", err, sizeof(err));
        *eq = '=';
    }
    if (!rc)
        rc = xd_config_check(cfg, err, sizeof(err));
    if (!rc)
        rc = xd_config_save(cfg, path, "written by xdconfig set", err, sizeof(err));
    if (rc)
        fprintf(stderr, "xdconfig: %s\n", cfg ? err : "out of memory");
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
    fflush(stdout);
    for (char *line = lines, *nl; line && (nl = strchr(line, '\n')); line = nl + 1)
        fprintf(stderr, "xdconfig: %.*s\n", (int)(nl - line), line);
    free(lines);
    return healthy ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "set"))
        return set_and_save(argv[2], argc - 3, argv + 3);
    if (argc == 2 && !strcmp(argv[1], "tunables"))
        return print_tunables();
    if (argc == 2 && !strcmp(argv[1], "markdown"))
        return print_markdown();
    if (argc == 2 && !strcmp(argv[1], "roff"))
        return print_roff();
    if (argc == 2 && !strcmp(argv[1], "defaults")) {
        struct xd_config *cfg = xd_config_new();
        int rc = cfg ? print_and_free(xd_config_ini(cfg)) : 1;
        xd_config_free(cfg);
        return rc;
    }
    if (argc < 2)
        return usage();
    if (!strcmp(argv[1], "health")) {
        if (argc == 3)
            return health(argv[2]);
        fprintf(stderr, "xdconfig: health needs FILE.ini; allowed: xdconfig health FILE.ini\n");
        return 2;
    }
    if (strcmp(argv[1], "check") && strcmp(argv[1], "json") && strcmp(argv[1], "set")) {
        char shown[XD_ESCAPE_LEN];
        fprintf(stderr, "xdconfig: unknown command \"%s\"; allowed: check, json, health, defaults, markdown, tunables, set\n",
                xd_escape(argv[1], shown, sizeof(shown)));
        return 2;
    }
    if (argc != 3) {
        fprintf(stderr, "xdconfig: %s needs FILE.ini%s; allowed: xdconfig %s FILE.ini%s\n", argv[1],
                strcmp(argv[1], "set") ? "" : " and KEY=VALUE", argv[1],
                strcmp(argv[1], "set") ? "" : " KEY=VALUE...");
        return 2;
    }
    struct xd_config *cfg = load_checked(argv[2]);
    if (!cfg)
        return 1;
    int rc = print_and_free(!strcmp(argv[1], "json") ? xd_config_json(cfg) : xd_config_ini(cfg));
    xd_config_free(cfg);
    return rc;
}
