/* config.c - unit test of the schema-driven config: defaults, parsing,
 * range and enum checks, INI errors with file:line, suggestions, conflicts,
 * that the dumps round-trip, and which storage types a key applies to. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "xdevice.h"

static char err[XD_ERRLEN];

static int set(struct xd_config *cfg, const char *key, const char *value)
{
    err[0] = '\0';
    return xd_config_set(cfg, key, value, "test", err, sizeof(err));
}

static char *write_ini(const char *text)
{
    static char path[] = "/tmp/xd-unit-config-XXXXXX";
    strcpy(path, "/tmp/xd-unit-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        exit(1);
    close(fd);
    return path;
}

static int load(struct xd_config *cfg, const char *text)
{
    char *path = write_ini(text);
    err[0] = '\0';
    int rc = xd_config_load(cfg, path, err, sizeof(err));
    unlink(path);
    return rc;
}

static void test_defaults(void)
{
    struct xd_config *cfg = xd_config_new();
    CHECK(cfg);
    CHECK(cfg->storage_type == XD_TYPE_REGULAR);
    CHECK(cfg->async == XD_ASYNC_SYNC);
    CHECK(cfg->mmap_size == 64 * 1024 * 1024);
    CHECK(cfg->file_permissions == 0644);
    CHECK(xd_config_check(cfg, err, sizeof(err)) == 0);
    /* every schema default parses and passes validation as a value */
    for (unsigned k = 0; k < xd_config_key_count(); k++)
        CHECK_MSG(set(cfg, xd_keys[k].name, xd_keys[k].def) == 0, "%s: %s", xd_keys[k].name, err);
    xd_config_free(cfg);
}

static void test_values(void)
{
    struct xd_config *cfg = xd_config_new();
    CHECK(set(cfg, "mmap_size", "128k") == 0 && cfg->mmap_size == 128 * 1024);
    CHECK(set(cfg, "mmap_size", "2GiB") == 0 && cfg->mmap_size == 2LL << 30);
    CHECK(set(cfg, "mmap_size", "12q") == -EINVAL && strstr(err, "mmap_size=12q"));
    CHECK(strstr(err, "allowed: a size"));
    CHECK(set(cfg, "max_events", "0") == -EINVAL && strstr(err, "out of range"));
    CHECK(set(cfg, "max_events", "-5") == -EINVAL);
    CHECK(set(cfg, "max_events", "12x") == -EINVAL);
    CHECK(set(cfg, "async", "io_uring") == 0 && cfg->async == XD_ASYNC_IO_URING);
    CHECK(set(cfg, "async", "posix") == -EINVAL && strstr(err, "one of sync|libaio|io_uring"));
    CHECK(set(cfg, "use_direct_io", "yes") == 0 && cfg->use_direct_io);
    CHECK(set(cfg, "use_direct_io", "maybe") == -EINVAL && strstr(err, "true or false"));
    CHECK(set(cfg, "file_permissions", "0600") == 0 && cfg->file_permissions == 0600);
    CHECK(set(cfg, "file_permissions", "0999") == -EINVAL);
    CHECK(set(cfg, "target_cache_hit_ratio", "0.9") == 0);
    CHECK(set(cfg, "target_cache_hit_ratio", "1.5") == -EINVAL);
    CHECK(set(cfg, "queue_depth", "") == -EINVAL && strstr(err, "empty value"));
    CHECK(set(cfg, "cache_szie", "1m") == -EINVAL && strstr(err, "did you mean 'cache_size'"));
    CHECK(set(cfg, "storage_type", "hybrid") == 0 && cfg->storage_type == XD_TYPE_HYBRID);
    CHECK(set(cfg, "migration_interval_sec", "0.1") == 0 && cfg->migration_interval_sec == 0.1);
    CHECK(set(cfg, "migration_interval_sec", "0.001") == -EINVAL && strstr(err, "migration_interval_sec"));
    CHECK(set(cfg, "storage_type", "sparse") == 0 && cfg->storage_type == XD_TYPE_SPARSE);
    /* a newline would write lines of its own when saved (save refused it;
     * set took it): refused as it is set, the value shown escaped */
    CHECK(set(cfg, "trace", "/x\n[fault]\nenable_fault_injection = true") == -EINVAL &&
          strstr(err, "control character") && !strchr(err, '\n'));
    CHECK(set(cfg, "base_directory", "/tmp/a\tb") == -EINVAL);
    CHECK(set(cfg, "base_directory", "/tmp/a b") == 0);
    /* a key whose feature is not built yet takes only its default (none
     * is pending today; the rule stays for the next one) */
    for (int k = 0; k < XD_KEY_COUNT; k++) {
        if (!(xd_keys[k].flags & XD_K_PENDING) || xd_keys[k].type != XD_T_BOOL)
            continue;
        CHECK(set(cfg, xd_keys[k].name, "true") == -EINVAL && strstr(err, "not built yet"));
        CHECK(set(cfg, xd_keys[k].name, "false") == 0);
    }
    CHECK(set(cfg, "enable_health_check", "true") == 0 && cfg->enable_health_check);
    CHECK(strcmp(xd_config_get(cfg, "async"), "io_uring") == 0);
    CHECK(xd_config_get(cfg, "nope") == NULL);
    xd_config_free(cfg);
}

static void test_ini(void)
{
    struct xd_config *cfg = xd_config_new();
    CHECK(load(cfg, "[local]\nstorage_type = direct\nio_alignment = 512\n\n[block]\nqueue_depth=8\n") == 0);
    CHECK(cfg->storage_type == XD_TYPE_DIRECT && cfg->io_alignment == 512 && cfg->queue_depth == 8);
    CHECK(strstr(cfg->origin[XD_KEY_io_alignment], ":3"));
    CHECK(load(cfg, "[local]\n; comment\nmmap_size = huge\n") == -EINVAL);
    CHECK_MSG(strstr(err, ":3: mmap_size=huge"), "%s", err);
    CHECK(load(cfg, "[local]\nread_ahed_kb = 4\n") == -EINVAL && strstr(err, "'read_ahead_kb'"));
    CHECK(load(cfg, "[block]\nmmap_size = 1m\n") == -EINVAL && strstr(err, "belongs in section [local]"));
    CHECK(load(cfg, "[local]\nasync=sync\nasync=libaio\n") == -EINVAL && strstr(err, "set twice"));
    CHECK(load(cfg, "[local]\nthis line is wrong\n") == -EINVAL && strstr(err, ":2:"));
    CHECK(load(cfg, "[local]\nasync=sync\n[block]\nqueue_depth=8\n[local]\n") == -EINVAL);
    CHECK_MSG(strstr(err, ":5: section [local] appears twice") && strstr(err, "line 1"), "%s", err);
    CHECK(load(cfg, "[lokal]\n") == -EINVAL && strstr(err, ":1: unknown section [lokal]") &&
          strstr(err, "[local], "));
    CHECK(load(cfg, "async = sync\n") == -EINVAL && strstr(err, "before any [section]"));
    CHECK(load(cfg, "[local\n") == -EINVAL && strstr(err, "no closing ]"));
    CHECK(xd_config_load(cfg, "/nonexistent/x.ini", err, sizeof(err)) == -ENOENT);
    CHECK(strstr(err, "/nonexistent/x.ini"));
    xd_config_free(cfg);
}

/* libinih split lines over 200 bytes and parsed the rest as a new line. */
static void test_ini_long_lines(void)
{
    struct xd_config *cfg = xd_config_new();
    char text[4096], path[1200];
    memset(path, 'p', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = 0;
    snprintf(text, sizeof(text), "; %0*d storage_type = compressed\n[local]\ntrace = %s\n", 300, 0, path);
    CHECK_MSG(load(cfg, text) == 0, "%s", err);
    CHECK(cfg->storage_type == XD_TYPE_REGULAR);
    CHECK(!strcmp(cfg->trace, path));
    snprintf(text, sizeof(text), "[local]\nstorage_type = direct ; %0*d\n", 400, 0);
    CHECK_MSG(load(cfg, text) == 0 && cfg->storage_type == XD_TYPE_DIRECT, "%s", err);
    xd_config_free(cfg);
}

/* A NUL byte is an error, not the end of the value; binary is escaped. */
static void test_ini_binary(void)
{
    struct xd_config *cfg = xd_config_new();
    static const char nul[] = "[local]\nstorage_type = regular\0compressed\n";
    char *path = write_ini("");
    FILE *f = fopen(path, "w");
    CHECK(f && fwrite(nul, 1, sizeof(nul) - 1, f) == sizeof(nul) - 1);
    fclose(f);
    CHECK(xd_config_load(cfg, path, err, sizeof(err)) == -EINVAL);
    CHECK_MSG(strstr(err, ":2: \"storage_type = regular\\x00compressed\" holds a NUL byte"), "%s", err);
    unlink(path);
    CHECK(load(cfg, "[local]\nasync = \x01\x1b[2Jx\\\n") == -EINVAL);
    CHECK_MSG(strstr(err, "async=\\x01\\x1b[2Jx\\\\: not a valid value") && !strchr(err, '\x1b'), "%s", err);
    CHECK(load(cfg, "[local]\nasync = caf\xc3\xa9\xff\n") == -EINVAL);
    CHECK_MSG(strstr(err, "async=caf\xc3\xa9\\xff:"), "%s", err);
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    CHECK(set(cfg, "async", big) == -EINVAL && strstr(err, "xxx...: not a valid value"));
    xd_config_free(cfg);
}

static void test_conflicts(void)
{
    struct xd_config *cfg = xd_config_new();
    CHECK(set(cfg, "use_aio", "false") == 0 && set(cfg, "async", "libaio") == 0);
    CHECK(xd_config_check(cfg, err, sizeof(err)) == -EINVAL);
    CHECK(strstr(err, "async=libaio") && strstr(err, "use_aio=false") && strstr(err, "conflicts"));
    xd_config_free(cfg);
    cfg = xd_config_new();
    CHECK(set(cfg, "use_mmap", "true") == 0);
    CHECK(xd_config_check(cfg, err, sizeof(err)) == -EINVAL && strstr(err, "storage_type=mmap"));
    xd_config_free(cfg);
    cfg = xd_config_new();
    /* a value wrong alone is refused as it is set, naming where: fio parses
     * each xd_ option with xd_config_set, before any job of the file runs */
    CHECK(set(cfg, "io_alignment", "3000") == -EINVAL && strstr(err, "test: io_alignment=3000") &&
          strstr(err, "power of two"));
    CHECK(set(cfg, "sector_size", "1000") == -EINVAL && strstr(err, "sector_size=1000"));
    CHECK(set(cfg, "sector_size", "0") == 0 && set(cfg, "io_alignment", "64k") == 0);
    CHECK(set(cfg, "mmap_size", "5000") == -EINVAL && strstr(err, "page size"));
    xd_config_free(cfg);
    cfg = xd_config_new(); /* checkpoints need a directory, and refuse block (not hybrid) */
    CHECK(set(cfg, "enable_checkpoints", "true") == 0);
    CHECK(xd_config_check(cfg, err, sizeof(err)) == -EINVAL && strstr(err, "needs checkpoint_directory"));
    CHECK(set(cfg, "checkpoint_directory", "/tmp/ck") == 0);
    CHECK(xd_config_check(cfg, err, sizeof(err)) == 0);
    CHECK(set(cfg, "storage_type", "block") == 0);
    CHECK(xd_config_check(cfg, err, sizeof(err)) == -EINVAL && strstr(err, "storage_type=block"));
    CHECK(set(cfg, "storage_type", "hybrid") == 0);
    CHECK(xd_config_check(cfg, err, sizeof(err)) == 0);
    xd_config_free(cfg);
}

static void test_dumps(void)
{
    struct xd_config *cfg = xd_config_new();
    CHECK(set(cfg, "cache_ttl", "0") == 0 && set(cfg, "read_ahead_kb", "512") == 0);
    char *json = xd_config_json(cfg);
    CHECK(json && strstr(json, "\"read_ahead_kb\":512") && strstr(json, "\"storage_type\":\"regular\""));
    /* the INI dump recreates the config it came from */
    char *ini = xd_config_ini(cfg);
    struct xd_config *again = xd_config_new();
    CHECK(ini && load(again, ini) == 0);
    char *json2 = xd_config_json(again);
    CHECK(json2 && json && !strcmp(json, json2));
    free(json);
    free(json2);
    free(ini);
    xd_config_free(again);
    xd_config_free(cfg);
}

/* A text value in another encoding than UTF-8 (a path): the JSON dump
 * stays JSON, a byte that starts no character written as U+FFFD, and
 * well-formed characters as they are. */
static void test_dump_of_bytes_not_utf8(void)
{
    struct xd_config *cfg = xd_config_new();
    CHECK(set(cfg, "trace", "/x/tr\xff\xc3\xa9\xe2\x82\xac\xed\xa0\x80\xc0\xaf.log") == 0);
    char *json = xd_config_json(cfg);
    CHECK(json && strstr(json, "\"trace\":\"/x/tr\\ufffd\xc3\xa9\xe2\x82\xac"
                               "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd.log\""));
    free(json);
    xd_config_free(cfg);
}

/* The types column: which keys a storage type reads (xdtune's one rule). */
static void test_key_applies(void)
{
    CHECK(xd_key_applies(XD_KEY_read_ahead_kb, XD_TYPE_REGULAR));
    CHECK(xd_key_applies(XD_KEY_cache_size, XD_TYPE_HYBRID));
    CHECK(xd_key_applies(XD_KEY_compression_level, XD_TYPE_COMPRESSED));
    CHECK(!xd_key_applies(XD_KEY_compression_level, XD_TYPE_REGULAR));
    CHECK(!xd_key_applies(XD_KEY_compress_chunk_size, XD_TYPE_HYBRID));
    CHECK(xd_key_applies(XD_KEY_hot_cache_size, XD_TYPE_HYBRID));
    CHECK(xd_key_applies(XD_KEY_auto_migration, XD_TYPE_HYBRID));
    CHECK(!xd_key_applies(XD_KEY_tier_extent_size, XD_TYPE_TMPFS));
    CHECK(xd_key_applies(XD_KEY_backup_to_disk, XD_TYPE_TMPFS));
    CHECK(!xd_key_applies(XD_KEY_queue_depth, XD_TYPE_DIRECT));
    CHECK(xd_key_applies(XD_KEY_queue_depth, XD_TYPE_BLOCK));
    /* every [hybrid] key is the hybrid type's, and only its */
    for (int k = 0; k < XD_KEY_COUNT; k++)
        if (!strcmp(xd_keys[k].section, "hybrid"))
            CHECK_MSG(xd_key_applies(k, XD_TYPE_HYBRID) && !xd_key_applies(k, XD_TYPE_REGULAR),
                      "%s", xd_keys[k].name);
}

/* The full listing of every type's config (xdconfig defaults, xdconfig
 * check's output) loads back and passes the checks: it used to set every
 * key, so enable_compression=true was refused on the regular type and
 * use_direct_io=false on the direct type. Keys a type turns on show on. */
static void test_listing_loads_back(void)
{
    static const char *types[] = {"regular", "direct", "mmap", "tmpfs", "sparse", "compressed",
                                  "hybrid", "block"};
    static const char *on[][2] = {{"direct", "\"use_direct_io\":true"},
                                  {"mmap", "\"use_mmap\":true"},
                                  {"sparse", "\"enable_sparse\":true"}};
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        struct xd_config *cfg = xd_config_new(), *again = xd_config_new();
        CHECK(set(cfg, "storage_type", types[t]) == 0);
        if (!strcmp(types[t], "block"))
            CHECK(set(cfg, "block_device", "/dev/loop0") == 0);
        char *ini = xd_config_ini(cfg);
        CHECK_MSG(ini && load(again, ini) == 0, "%s: %s", types[t], err);
        CHECK_MSG(xd_config_check(again, err, sizeof(err)) == 0, "%s: %s", types[t], err);
        char *json = xd_config_json(again);
        for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++)
            if (!strcmp(on[i][0], types[t]))
                CHECK_MSG(json && strstr(json, on[i][1]), "%s: %s", types[t], json);
        free(json);
        free(ini);
        xd_config_free(cfg);
        xd_config_free(again);
    }
    /* the hybrid type over a compressed cold tier reads enable_compression */
    struct xd_config *cfg = xd_config_new();
    CHECK(load(cfg, "[local]\nstorage_type = hybrid\nenable_compression = true\n"
                    "[hybrid]\ncold_storage_type = compressed\n") == 0);
    CHECK_MSG(xd_config_check(cfg, err, sizeof(err)) == 0, "%s", err);
    xd_config_free(cfg);
}

/* Error lines are one line whatever they quote: control bytes, C1
 * controls (NEL), line and paragraph separators, bidirectional overrides
 * and bytes outside valid UTF-8 as \\xHH; valid printable UTF-8 as it is. */
static void test_error_lines_escape_what_breaks_a_line(void)
{
    char err[128];
    const struct {
        const char *in, *want;
    } cases[] = {
        {"a\nb", "a\\x0ab"},
        {"a\x1b[31mb", "a\\x1b[31mb"},
        {"a\xc2\x85" "b", "a\\xc2\\x85" "b"},         /* NEL */
        {"a\xe2\x80\xa8" "b", "a\\xe2\\x80\\xa8" "b"}, /* line separator */
        {"a\xe2\x80\xae" "b", "a\\xe2\\x80\\xae" "b"}, /* right-to-left override */
        {"caf\xc3\xa9 \xe2\x86\x92 x", "caf\xc3\xa9 \xe2\x86\x92 x"}, /* kept */
        {"caf\xe9", "caf\\xe9"},                     /* Latin-1, not UTF-8 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xd_errf(err, sizeof(err), "%s", cases[i].in);
        CHECK_MSG(!strcmp(err, cases[i].want), "case %zu: got \"%s\", want \"%s\"", i, err,
                  cases[i].want);
    }
    xd_errf(err, 6, "%s", "abcdefgh"); /* cut, always terminated */
    CHECK(!strcmp(err, "abcde"));
    xd_errf(err, 6, "%s", "ab\ncd"); /* no room for a whole escape: cut before it */
    CHECK(!strcmp(err, "ab\\x0a") || !strcmp(err, "ab"));
}

int main(void)
{
    test_defaults();
    test_values();
    test_ini();
    test_ini_long_lines();
    test_ini_binary();
    test_conflicts();
    test_dumps();
    test_dump_of_bytes_not_utf8();
    test_listing_loads_back();
    test_key_applies();
    test_error_lines_escape_what_breaks_a_line();
    return check_result();
}
