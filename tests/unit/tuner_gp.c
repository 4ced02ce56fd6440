/* tuner_gp.c - xdtune's model: the GP interpolates what it saw, knows where
 * it has not looked, and expected improvement finds a known 1-D optimum and a
 * 2-D one under noise in few evaluations; the objective ranks targets first;
 * space files parse and refuse bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "xdtune.h"

static double f1(double x) { return -(x - 0.7) * (x - 0.7) + 0.3 * sin(9 * x); }

static double noise(unsigned long *s) /* uniform in [-0.5, 0.5) */
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0 - 0.5;
}

static void test_interpolation(void)
{
    double X[5] = { 0, 0.25, 0.5, 0.75, 1 }, y[5];
    for (int i = 0; i < 5; i++)
        y[i] = f1(X[i]);
    struct xt_gp gp;
    CHECK(xt_gp_fit(&gp, X, y, 5, 1) == 0);
    for (int i = 0; i < 5; i++) {
        double m, sd;
        xt_gp_predict(&gp, &X[i], &m, &sd);
        CHECK_MSG(fabs(m - y[i]) < 0.05, "x=%g mean %g want %g", X[i], m, y[i]);
    }
    double far = 50.0, m, sd, near_sd;
    xt_gp_predict(&gp, &far, &m, &sd);
    xt_gp_predict(&gp, &X[2], &m, &near_sd);
    CHECK_MSG(sd > 3 * near_sd, "sd far %g, at a sample %g", sd, near_sd);
    xt_gp_free(&gp);
    CHECK(xt_gp_ei(1.0, 0.0, 0.5, 0) == 0.5);
    CHECK(xt_gp_ei(0.0, 1.0, 0.0, 0) > 0.39 && xt_gp_ei(0.0, 1.0, 0.0, 0) < 0.4); /* 1/sqrt(2 pi) */
}

/* Bayesian optimisation on a 101-point grid: 3 starting points, 9 more. */
static void test_finds_1d_optimum(void)
{
    double X[12], y[12], grid[101], best_x = 0, true_best = -INFINITY, true_x = 0;
    unsigned n = 0;
    unsigned long seed = 7;
    for (int i = 0; i <= 100; i++) {
        grid[i] = i / 100.0;
        if (f1(grid[i]) > true_best) {
            true_best = f1(grid[i]);
            true_x = grid[i];
        }
    }
    X[n] = 0.1; y[n] = f1(X[n]); n++;
    X[n] = 0.5; y[n] = f1(X[n]); n++;
    X[n] = 0.95; y[n] = f1(X[n]); n++;
    while (n < 12) {
        struct xt_gp gp;
        double top = -1, pick = 0, best = -INFINITY;
        for (unsigned i = 0; i < n; i++)
            best = fmax(best, y[i]);
        CHECK(xt_gp_fit(&gp, X, y, n, 1) == 0);
        for (int i = 0; i <= 100; i++) {
            double m, sd, ei;
            xt_gp_predict(&gp, &grid[i], &m, &sd);
            ei = xt_gp_ei(m, sd, best, 0.01);
            if (ei > top) {
                top = ei;
                pick = grid[i];
            }
        }
        xt_gp_free(&gp);
        X[n] = pick;
        y[n] = f1(pick) + 0.01 * noise(&seed);
        n++;
    }
    double best = -INFINITY;
    for (unsigned i = 0; i < n; i++)
        if (f1(X[i]) > best) {
            best = f1(X[i]);
            best_x = X[i];
        }
    CHECK_MSG(fabs(best_x - true_x) <= 0.03, "found x=%g, optimum at %g", best_x, true_x);
}

static void test_objective(void)
{
    struct xt_goal g = { .iops = 1000 };
    struct xt_figures fast = { .iops = 5000, .p99_us = 900, .cache_hit = -1 };
    struct xt_figures slow = { .iops = 500, .p99_us = 100, .cache_hit = -1 };
    CHECK(xt_gap(&g, &fast) == 0);
    CHECK(fabs(xt_gap(&g, &slow) - 0.5) < 1e-9);
    CHECK(xt_compare(&g, &fast, &slow) < 0);
    g = (struct xt_goal){ .p99_us = 500, .minimize_p99 = 1 };
    CHECK(xt_compare(&g, &slow, &fast) < 0);     /* meets the p99 target */
    g = (struct xt_goal){ .minimize_p99 = 1 };
    CHECK(xt_score(&g, &slow) > xt_score(&g, &fast));
    g = (struct xt_goal){ .cache_hit = 0.8 };
    CHECK(xt_gap(&g, &fast) == 1);               /* no cache: the whole target short */
}

static int space_error(const char *text, const char *want)
{
    char path[] = "/tmp/xdtune-space-XXXXXX", err[XD_ERRLEN] = "";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        return 0;
    close(fd);
    struct xt_space s;
    int rc = xt_space_load(&s, path, err, sizeof(err));
    if (!rc)
        rc = xt_space_check_nonempty(&s, path, err, sizeof(err));
    xt_space_free(&s);
    unlink(path);
    if (!want)
        return rc == 0;
    if (rc == 0 || !strstr(err, want))
        fprintf(stderr, "space \"%s\": rc %d, err \"%s\", wanted \"%s\"\n", text, rc, err, want);
    return rc != 0 && strstr(err, want) != NULL;
}

static void test_space_file(void)
{
    struct xt_space s;
    char path[] = "/tmp/xdtune-space-XXXXXX", err[XD_ERRLEN];
    const char *text = "async = sync|io_uring\nread_ahead_kb = 16..256 x4\n[compression_level]\nlo = 1\nhi = 9\nstep = 4\n";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    CHECK(xt_space_load(&s, path, err, sizeof(err)) == 0);
    unlink(path);
    CHECK(s.n == 3);
    CHECK(s.dim[1].nvals == 3 && !strcmp(s.dim[1].vals[2], "256"));
    CHECK(s.dim[2].nvals == 3 && !strcmp(s.dim[2].vals[1], "5"));
    CHECK(xt_space_size(&s) == 18);
    CHECK(xt_space_width(&s) == 4); /* one-hot async (2) + two ordinals */
    xt_space_free(&s);
    CHECK(space_error("no_such_key = 1..2\n", "unknown parameter \"no_such_key\""));
    CHECK(space_error("read_ahead_kb = 512..16\n", "bad bound"));
    CHECK(space_error("read_ahead_kb = 1..x\n", "bad bound"));
    CHECK(space_error("read_ahead_kb = 1..9 x1\n", "bad step"));
    CHECK(space_error("async = sync|turbo\n", "value turbo is not allowed"));
    CHECK(space_error("async = sync\n", "the space is empty"));
    CHECK(space_error("# nothing\n", "the space is empty"));
}

int main(void)
{
    test_interpolation();
    test_finds_1d_optimum();
    test_objective();
    test_space_file();
    return check_result();
}
