/* blink.model._tails: the tables and the per-row surprise and score they give
 * (included once by _tails.c, after its includes: see its header comment) */
#ifndef BLINK_TAILS_EVAL_H
#define BLINK_TAILS_EVAL_H

#include "../_cbuffer.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MIN_P 1e-300

typedef struct {
    PyObject_HEAD
    double *body;     /* k rows of n_levels quantiles (finite, nondecreasing) */
    double *survival; /* n_levels: 1 - level */
    double *u, *xi, *sigma;
    uint8_t *two;     /* fold |x| */
    Py_ssize_t k, n_levels;
    double log_tail, log_k, ln10;
} Tails;

/* np.interp(x, xp, fp, left=1.0) for x not NaN, xp finite and nondecreasing, n >= 1. */
static double interp(double x, const double *xp, const double *fp, Py_ssize_t n)
{
    if (x > xp[n - 1])
        return fp[n - 1];
    if (x < xp[0])
        return 1.0;
    Py_ssize_t lo = 0, hi = n; /* j = the last index with xp[j] <= x */
    while (lo < hi) {
        Py_ssize_t mid = lo + ((hi - lo) >> 1);
        if (x >= xp[mid])
            lo = mid + 1;
        else
            hi = mid;
    }
    Py_ssize_t j = lo - 1;
    if (j == n - 1 || xp[j] == x)
        return fp[j];
    double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    double r = slope * (x - xp[j]) + fp[j];
    if (isnan(r)) {
        r = slope * (x - xp[j + 1]) + fp[j + 1];
        if (isnan(r) && fp[j] == fp[j + 1])
            r = fp[j];
    }
    return r;
}

/* S of value a in column j. */
static double term(const Tails *t, Py_ssize_t j, double a)
{
    if (isnan(a))
        return NAN;
    double x = t->two[j] ? fabs(a) : a, u = t->u[j];
    if (x > u) {
        double y = x - u, xi = t->xi[j], sg = t->sigma[j];
        double log_s = xi > 0 ? -log10(1.0 + xi * y / sg) / xi : -y / sg / t->ln10;
        return -(t->log_tail + log_s);
    }
    double p = interp(x, t->body + j * t->n_levels, t->survival, t->n_levels);
    return -log10(p > MIN_P ? p : MIN_P);
}

/* Row r of the input: k values, or k - 1 then -forest[r] (see `score`'s doc). */
typedef struct {
    const double *a;
    const double *forest; /* NULL: the k-th column is in a */
    Py_ssize_t width;     /* columns of a */
} Rows;

static double value(const Rows *in, Py_ssize_t r, Py_ssize_t j)
{
    return j < in->width ? in->a[r * in->width + j] : -in->forest[r];
}

static void surprise_rows(const Tails *t, const Rows *in, Py_ssize_t n, double *out)
{
    for (Py_ssize_t r = 0; r < n; r++)
        for (Py_ssize_t j = 0; j < t->k; j++)
            out[r * t->k + j] = term(t, j, value(in, r, j));
}

static void score_rows(const Tails *t, const Rows *in, Py_ssize_t n, double *out)
{
    for (Py_ssize_t r = 0; r < n; r++) {
        double most = -INFINITY;
        int nan = 0;
        for (Py_ssize_t j = 0; j < t->k; j++) {
            double s = term(t, j, value(in, r, j));
            if (isnan(s))
                nan = 1;
            else if (s > most)
                most = s;
        }
        double raw = t->log_k - most;
        out[r] = nan ? NAN : raw < 0.0 ? raw : 0.0;
    }
}

#endif /* BLINK_TAILS_EVAL_H */
