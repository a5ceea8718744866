/* blink.model._grow: the random stream and the growth of one isolation tree
 * (included once by _grow.c, after its includes: see its header comment) */
#ifndef BLINK_GROW_TREE_H
#define BLINK_GROW_TREE_H

#include "../_cbuffer.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ random stream */

/* splitmix64 (Steele, Lea & Flood 2014): small, fast, well mixed; plenty for drawing splits. */
static uint64_t next_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *state) /* [0, 1), 53 bits */
{
    return (double)(next_u64(state) >> 11) * 0x1.0p-53;
}

static Py_ssize_t below(uint64_t *state, Py_ssize_t n) /* uniform in [0, n) */
{
    return (Py_ssize_t)(uniform01(state) * (double)n);
}

/* c(n): the average path length of an unsuccessful search in a binary search tree of n
 * items, 2 H(n - 1) - 2 (n - 1) / n with H(i) ~ ln(i) + Euler's gamma (the paper's eq. 1). */
static double path_c(Py_ssize_t n)
{
    if (n <= 1)
        return 0.0;
    if (n == 2)
        return 1.0;
    double m = (double)n;
    return 2.0 * (log(m - 1.0) + 0.5772156649015329) - 2.0 * (m - 1.0) / m;
}

/* ------------------------------------------------------------------ one tree */

typedef struct {
    /* inputs */
    const double *cols;     /* the tree's sample, column-major: cols[j * m + i] */
    Py_ssize_t m, max_depth;
    const Py_ssize_t *use;  /* the tree's columns (columns of X) */
    Py_ssize_t n_use;
    uint64_t *rng;
    /* work */
    Py_ssize_t *rows;       /* sample positions, grouped by node: a node is rows[a:b] */
    Py_ssize_t *pick;       /* scratch: the columns still to try at a node */
    Py_ssize_t *spill;      /* scratch: the right side of a partition (m) */
    const double *c_of;     /* c(n) for n = 0..m */
    Py_ssize_t *start, *stop, *depth; /* per node of this tree */
    /* outputs, at the forest's node offset */
    int64_t *feature, *base;
    double *threshold, *value;
    uint8_t *nan_left;
} Tree;

/* min and max of column c's non-NaN values over rows[a:b] (branch-free: a NaN compares
 * false and changes neither); 0 when there are none. */
static int span(const Tree *t, Py_ssize_t c, Py_ssize_t a, Py_ssize_t b, double *lo,
                double *hi)
{
    const double *v = t->cols + c * t->m;
    /* two of each: independent chains of min/max (one chain waits on every step) */
    double l0 = INFINITY, h0 = -INFINITY, l1 = INFINITY, h1 = -INFINITY;
    Py_ssize_t i = a;
    for (; i + 1 < b; i += 2) {
        double x0 = v[t->rows[i]], x1 = v[t->rows[i + 1]];
        l0 = x0 < l0 ? x0 : l0;
        h0 = x0 > h0 ? x0 : h0;
        l1 = x1 < l1 ? x1 : l1;
        h1 = x1 > h1 ? x1 : h1;
    }
    if (i < b) {
        double x = v[t->rows[i]];
        l0 = x < l0 ? x : l0;
        h0 = x > h0 ? x : h0;
    }
    *lo = l0 < l1 ? l0 : l1;
    *hi = h0 > h1 ? h0 : h1;
    return *lo <= *hi;
}

/* Grow one tree into the outputs from node `first` on; -> the nodes it has. */
static Py_ssize_t grow_tree(Tree *t, Py_ssize_t first, Py_ssize_t *height)
{
    Py_ssize_t n_nodes = 1;
    t->start[0] = 0;
    t->stop[0] = t->m;
    t->depth[0] = 0;
    *height = 0;
    for (Py_ssize_t s = 0; s < n_nodes; s++) { /* breadth-first: children are appended */
        Py_ssize_t a = t->start[s], b = t->stop[s], d = t->depth[s], node = first + s;
        t->value[node] = (double)d + t->c_of[b - a];
        t->feature[node] = 0;
        t->threshold[node] = NAN;
        t->base[node] = node;
        t->nan_left[node] = 0;
        if (d > *height)
            *height = d;
        if (b - a <= 1 || d >= t->max_depth)
            continue;
        /* a column uniformly among those not constant here: draw without replacement until
         * one is not constant (the first such draw is uniform among them) */
        Py_ssize_t left_to_try = t->n_use, c = -1;
        double lo = 0.0, hi = 0.0;
        for (Py_ssize_t j = 0; j < t->n_use; j++)
            t->pick[j] = j;
        while (left_to_try > 0) {
            Py_ssize_t r = below(t->rng, left_to_try);
            Py_ssize_t j = t->pick[r];
            t->pick[r] = t->pick[--left_to_try];
            if (span(t, t->use[j], a, b, &lo, &hi) && hi > lo) {
                c = j;
                break;
            }
        }
        if (c < 0)
            continue; /* every column constant (or NaN) on these rows: a leaf */
        double p = lo + uniform01(t->rng) * (hi - lo);
        if (p >= hi)
            p = lo;
        int nan_goes_left = uniform01(t->rng) < 0.5;
        /* partition rows[a:b], left (x <= p, or NaN sent left) first, branch-free (the
         * side of a row is a coin flip to the CPU): rights go to scratch, then after */
        const double *v = t->cols + t->use[c] * t->m;
        Py_ssize_t i = a, r = 0;
        for (Py_ssize_t q = a; q < b; q++) {
            Py_ssize_t row = t->rows[q];
            double x = v[row];
            /* NaN compares false: !(x > p) sends it left, x <= p right */
            int left = nan_goes_left ? !(x > p) : x <= p;
            t->rows[i] = row;
            t->spill[r] = row;
            i += left;
            r += !left;
        }
        memcpy(t->rows + i, t->spill, r * sizeof(Py_ssize_t));
        Py_ssize_t right = n_nodes, left = n_nodes + 1;
        n_nodes += 2;
        t->start[left] = a;
        t->stop[left] = i;
        t->start[right] = i;
        t->stop[right] = b;
        t->depth[left] = t->depth[right] = d + 1;
        t->feature[node] = t->use[c];
        t->threshold[node] = p;
        t->base[node] = first + right;
        t->nan_left[node] = (uint8_t)nan_goes_left;
    }
    return n_nodes;
}

#endif /* BLINK_GROW_TREE_H */
