/* blink.model._forest: the packed forest, its walk and the checks that keep a walk in bounds
 * (included once by _forest.c, after its includes: see its header comment) */
#ifndef BLINK_FOREST_WALK_H
#define BLINK_FOREST_WALK_H

#include "../_cbuffer.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    double threshold;
    int32_t feature; /* column of the row */
    int32_t base;    /* right child (left = base + 1); the node itself on a leaf */
} Node;              /* 16 bytes: one cache line holds four nodes */

typedef struct {
    PyObject_HEAD
    Node *nodes;
    double *value;     /* path length credited when a walk ends at the node */
    uint8_t *nan_left; /* a NaN goes to the left child (sklearn's missing_go_to_left) */
    int32_t *roots; /* padded to whole groups of LANES trees with a spare leaf (see below) */
    int32_t *steps; /* per group of trees: the steps that take any row to a leaf in each */
    Py_ssize_t n_nodes, n_trees, n_groups, n_features;
    double denominator;
} Forest;

/* ------------------------------------------------------------------ the walk */

/* A row walks LANES trees in lockstep, as many steps as the highest of them: independent chains
 * of dependent loads that the CPU overlaps (one tree after the other is one chain, and the CPU
 * waits on every load: about twice slower). A block of rows goes through one group of trees
 * after the other, so the group's nodes stay in L1 across the block. */
#define LANES 16 /* also in the unroll pragma below: the lanes' indexes can stay in registers */
#define BLOCK 64

/* The leaf each of the LANES trees rooted at roots[] sends row to (steps: the trees' height). */
static void walk(const Node *nodes, const double *row, const int32_t *roots, int32_t steps,
                 int32_t *leaf)
{
    int32_t i[LANES];
    for (int l = 0; l < LANES; l++)
        i[l] = roots[l];
    for (int32_t s = 0; s < steps; s++) {
#pragma GCC unroll 16
        for (int l = 0; l < LANES; l++) {
            const Node *node = &nodes[i[l]];
            i[l] = node->base + (row[node->feature] <= node->threshold);
        }
    }
    memcpy(leaf, i, sizeof(i));
}

/* walk() for a row holding a NaN: sklearn sends it to the child its tree chose for missing
 * values at training (nan_left), not always right as the comparison would. Kept apart so that
 * the common walk pays nothing for it. */
static void walk_nan(const Node *nodes, const uint8_t *nan_left, const double *row,
                     const int32_t *roots, int32_t steps, int32_t *leaf)
{
    for (int l = 0; l < LANES; l++) {
        int32_t i = roots[l];
        for (int32_t s = 0; s < steps; s++) {
            double v = row[nodes[i].feature];
            i = nodes[i].base + (v <= nodes[i].threshold || (isnan(v) && nan_left[i]));
        }
        leaf[l] = i;
    }
}

/* score_samples of n <= BLOCK rows (x: n rows of n_features, already rounded). Each row sums
 * its trees' path lengths in tree order from 0.0 whatever the block: same bits alone or not. */
static void score_block(const Forest *f, const double *x, Py_ssize_t n, double *out)
{
    Py_ssize_t k = f->n_features;
    double depths[BLOCK];
    uint8_t has_nan[BLOCK];
    for (Py_ssize_t r = 0; r < n; r++) {
        depths[r] = 0.0;
        has_nan[r] = 0;
        for (Py_ssize_t j = 0; j < k; j++)
            if (isnan(x[r * k + j]))
                has_nan[r] = 1;
    }
    for (Py_ssize_t g = 0; g < f->n_groups; g++) {
        const int32_t *roots = f->roots + g * LANES;
        Py_ssize_t trees = f->n_trees - g * LANES < LANES ? f->n_trees - g * LANES : LANES;
        for (Py_ssize_t r = 0; r < n; r++) {
            int32_t leaf[LANES];
            if (has_nan[r])
                walk_nan(f->nodes, f->nan_left, x + r * k, roots, f->steps[g], leaf);
            else
                walk(f->nodes, x + r * k, roots, f->steps[g], leaf);
            for (Py_ssize_t l = 0; l < trees; l++)
                depths[r] += f->value[leaf[l]];
        }
    }
    for (Py_ssize_t r = 0; r < n; r++) {
        /* sklearn divides into ones where the denominator is 0 (a single training sample) */
        double ratio = f->denominator == 0.0 ? 1.0 : depths[r] / f->denominator;
        out[r] = -pow(2.0, -ratio);
    }
}

/* Copy one row rounded through float32 (exactly numpy's astype(float32) then float64). */
static void load_row(const void *src, int is_float32, Py_ssize_t k, double *dst)
{
    if (is_float32) {
        const float *s = src;
        for (Py_ssize_t j = 0; j < k; j++)
            dst[j] = (double)s[j];
    } else {
        const double *s = src;
        for (Py_ssize_t j = 0; j < k; j++)
            dst[j] = (double)(float)s[j];
    }
}

/* ------------------------------------------------------------------ construction */

/* Checks that make every walk stay in bounds and end: an internal node's children follow it
 * (i < base, base + 1 < n_nodes), its feature is a column of the row, roots are nodes. */
static int validate(const int64_t *feature, const int64_t *base, const int64_t *roots,
                    Py_ssize_t n_nodes, Py_ssize_t n_trees, Py_ssize_t n_features)
{
    for (Py_ssize_t i = 0; i < n_nodes; i++) {
        if (base[i] == i)
            continue; /* a leaf */
        if (base[i] <= i || base[i] >= n_nodes - 1) {
            PyErr_Format(PyExc_ValueError,
                         "corrupt forest: base[%zd] = %lld (an internal node's children must "
                         "follow it, within the %zd nodes)", i, (long long)base[i], n_nodes);
            return -1;
        }
        if (feature[i] < 0 || feature[i] >= n_features) {
            PyErr_Format(PyExc_ValueError, "corrupt forest: feature[%zd] = %lld (n_features %zd)",
                         i, (long long)feature[i], n_features);
            return -1;
        }
    }
    for (Py_ssize_t t = 0; t < n_trees; t++) {
        if (roots[t] < 0 || roots[t] >= n_nodes) {
            PyErr_Format(PyExc_ValueError, "corrupt forest: roots[%zd] = %lld (%zd nodes)", t,
                         (long long)roots[t], n_nodes);
            return -1;
        }
    }
    return 0;
}

#endif /* BLINK_FOREST_WALK_H */
