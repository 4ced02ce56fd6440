/* health.c - unit test of the health check's reading of a device's
 * figures (layers.LAYER.NAME found by name in stats JSON, whatever comes
 * before it) and of xd_health_json on an open device. Exit 0 pass, 1 fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "health.h"
#include "xdevice.h"

static void test_figures(void)
{
    const char *stats =
        "{\"ops\":{\"read\":{\"lat\":[1,2,{\"x\":\"}\\\"layers\"}]}},\"layers\":"
        "{\"cache\":{\"hits\":5,\"name\":\"a,b}\"},\"mirror\":{\"copies\":2,\"degraded\":1},"
        "\"checksum\":{\"mismatches\":0},\"retry\":{\"retries\":3, \"failed\" : 7}}}";
    double v = -1;
    CHECK(xd_health_figure(stats, "mirror", "degraded", &v) && v == 1);
    CHECK(xd_health_figure(stats, "checksum", "mismatches", &v) && v == 0);
    CHECK(xd_health_figure(stats, "retry", "failed", &v) && v == 7);
    CHECK(!xd_health_figure(stats, "retry", "fail", &v));
    CHECK(!xd_health_figure(stats, "tier", "failed", &v));
    CHECK(!xd_health_figure("{\"layers\":{}}", "mirror", "degraded", &v));
    CHECK(!xd_health_figure("{\"layers\":{\"mirror\":{\"degraded\":", "mirror", "x", &v));
    CHECK(!xd_health_figure("", "mirror", "degraded", &v));
    CHECK(!xd_health_figure("{\"layers\":{\"mirror\":{\"degraded\":\"x\"}}}", "mirror",
                            "degraded", &v));
}

static void test_device(void)
{
    char err[XD_ERRLEN], dir[] = "/tmp/xd-health-XXXXXX";
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    int healthy = -1;
    CHECK(mkdtemp(dir));
    CHECK(!xd_config_set(cfg, "base_directory", dir, "test", err, sizeof(err)));
    CHECK_MSG(!xd_open(&dev, cfg, 4, err, sizeof(err)), "%s", err);
    char *text = dev ? xd_health_json(NULL, dev, &healthy, err, sizeof(err)) : NULL;
    CHECK_MSG(text && healthy == 1, "%s", text ? text : err);
    CHECK(text && strstr(text, "\"healthy\":true") && strstr(text, dir));
    free(text);
    CHECK(!xd_health_json(NULL, NULL, &healthy, err, sizeof(err)) && strstr(err, "no config"));
    xd_close(dev);
    xd_config_free(cfg);
    rmdir(dir);
}

int main(void)
{
    test_figures();
    test_device();
    return check_result();
}
