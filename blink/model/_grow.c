/*
 * blink.model._grow: grows an isolation forest straight into CompiledForest's flat arrays
 * (blink/model/forest.py `grow`), written from the paper: Liu, Ting & Zhou, "Isolation Forest",
 * ICDM 2008 (iForest / iTree, Algorithms 1-2, the path length of §4 with c(n)).
 *
 * Why C: a bar backtest refits every 60 rows, up to five forests a retrain; sklearn's fit costs
 * ~90 ms a forest (Python per tree), a numpy builder ~40 ms. This one: under a ms.
 *
 * Per tree t (trees one after the other, one random stream seeded by `seed`):
 *  - its rows: m = min(max_samples, n) rows drawn WITHOUT replacement (a partial Fisher-Yates
 *    shuffle of a row permutation carried from tree to tree);
 *  - its columns: `n_sub` of the k columns without replacement (all when n_sub == k: the
 *    max_features rule of the forest);
 *  - a node of rows R at depth d becomes a LEAF when |R| <= 1, d == max_depth
 *    (ceil(log2(max(m, 2))), the paper's height limit), or every column is constant on R;
 *    otherwise a column q is drawn uniformly among the tree's columns that are not constant
 *    on R, and a split p uniformly in [min, max) of R's values of q: rows with x_q <= p go
 *    left (p == max after rounding is moved to min: both sides non-empty).
 *  - NaN: a column's min/max ignore NaN; a node draws a side for NaN (nan_left, a fair coin),
 *    and rows with NaN in q go there, at training as at scoring (forest.py's walk reads
 *    nan_left). +-inf is refused (as sklearn's input validation does).
 *  - values are rounded through float32 first: the scorer rounds its input the same way, so a
 *    training row takes at scoring the path it took here.
 *  - value[node] = depth + c(|R|): the path length credited when a walk ends there (the
 *    paper's h(x) = e + c(T.size)); the score is -2^(-sum / (n_trees * c(m))).
 *
 * Layout, as forest.py documents it: nodes in breadth-first order tree after tree, the two
 * children of a split adjacent, right child first (base = right, base + 1 = left), a leaf
 * points at itself with threshold NaN.
 */
#include "../_cbuffer.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_grow_tree.h"

/* ------------------------------------------------------------------ the forest */

typedef struct {
    Py_ssize_t n, k, m, n_trees, n_sub, max_depth;
    uint64_t seed;
} Plan;

static int grow_forest(const Plan *pl, const double *X, Py_buffer *out, Py_ssize_t *n_nodes,
                       Py_ssize_t *height)
{
    Py_ssize_t n = pl->n, k = pl->k, m = pl->m, per_tree = 2 * m - 1;
    Py_ssize_t *perm = PyMem_Malloc(n * sizeof(Py_ssize_t));
    Py_ssize_t *work = PyMem_Malloc((2 * m + 3 * per_tree + 2 * k) * sizeof(Py_ssize_t));
    double *cols = PyMem_Malloc(m * k * sizeof(double));
    double *c_of = PyMem_Malloc((m + 1) * sizeof(double));
    double *xc = PyMem_Malloc(n * k * sizeof(double)); /* X rounded, column-major */
    int status = 0;
    if (!perm || !work || !cols || !c_of || !xc) {
        status = -2;
        goto done;
    }
    for (Py_ssize_t i = 0; i <= m; i++)
        c_of[i] = path_c(i);
    int inf = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        for (Py_ssize_t j = 0; j < k; j++) {
            double x = (double)(float)X[i * k + j];
            inf |= fabs(x) == INFINITY;
            xc[j * n + i] = x;
        }
    }
    if (inf) {
        status = -1;
        goto done;
    }
    uint64_t rng = pl->seed;
    Tree t = {.cols = cols, .m = m, .max_depth = pl->max_depth, .n_use = pl->n_sub,
              .rng = &rng, .rows = work, .start = work + m, .stop = work + m + per_tree,
              .depth = work + m + 2 * per_tree, .pick = work + m + 3 * per_tree,
              .feature = out[0].buf, .threshold = out[1].buf, .base = out[2].buf,
              .value = out[3].buf, .nan_left = out[4].buf, .c_of = c_of,
              .spill = work + m + 3 * per_tree + 2 * k};
    Py_ssize_t *colperm = work + m + 3 * per_tree + k; /* the tree's columns: its first n_sub */
    t.use = colperm;
    for (Py_ssize_t i = 0; i < n; i++)
        perm[i] = i;
    for (Py_ssize_t j = 0; j < k; j++)
        colperm[j] = j;
    int64_t *roots = out[5].buf;
    Py_ssize_t total = 0;
    *height = 0;
    for (Py_ssize_t tree = 0; tree < pl->n_trees; tree++) {
        /* the tree's rows: the first m of a partial shuffle */
        for (Py_ssize_t i = 0; i < m; i++) {
            Py_ssize_t r = i + below(&rng, n - i), tmp = perm[i];
            perm[i] = perm[r];
            perm[r] = tmp;
        }
        /* the tree's columns: the first n_sub of a partial shuffle (all of them: no draw) */
        for (Py_ssize_t j = 0; j < pl->n_sub && pl->n_sub < k; j++) {
            Py_ssize_t r = j + below(&rng, k - j), tmp = colperm[j];
            colperm[j] = colperm[r];
            colperm[r] = tmp;
        }
        for (Py_ssize_t j = 0; j < k; j++) {
            const double *src = xc + j * n;
            double *dst = cols + j * m;
            for (Py_ssize_t i = 0; i < m; i++)
                dst[i] = src[perm[i]];
        }
        for (Py_ssize_t i = 0; i < m; i++)
            t.rows[i] = i;
        roots[tree] = total;
        Py_ssize_t h;
        total += grow_tree(&t, total, &h);
        if (h > *height)
            *height = h;
    }
    *n_nodes = total;
done:
    PyMem_Free(perm);
    PyMem_Free(work);
    PyMem_Free(cols);
    PyMem_Free(c_of);
    PyMem_Free(xc);
    return status;
}

static PyObject *grow(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kwlist[] = {"X", "feature", "threshold", "base", "value", "nan_left", "roots",
                             "max_samples", "n_sub", "seed", NULL};
    static const char *names[6] = {"feature", "threshold", "base", "value", "nan_left",
                                   "roots"};
    static const char *kinds[6] = {"q", "d", "q", "d", "?", "q"};
    PyObject *xobj, *objs[6];
    Py_ssize_t max_samples, n_sub;
    unsigned long long seed;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOOnnK:grow", kwlist, &xobj, &objs[0],
                                     &objs[1], &objs[2], &objs[3], &objs[4], &objs[5],
                                     &max_samples, &n_sub, &seed))
        return NULL;
    Py_buffer x, out[6];
    if (blink_get_buffer(xobj, &x, "X", "d", 2, -1, -1, 0) < 0)
        return NULL;
    Plan pl = {.n = x.shape[0], .k = x.shape[1], .n_trees = 0, .n_sub = n_sub,
               .seed = (uint64_t)seed};
    int held = 0;
    PyObject *result = NULL;
    for (; held < 6; held++)
        if (blink_get_buffer(objs[held], &out[held], names[held], kinds[held], 1, -1, -1, 1) < 0)
            goto release;
    if (pl.n < 1 || pl.k < 1) {
        PyErr_Format(PyExc_ValueError, "X: expected at least one row and one column, got "
                     "(%zd, %zd)", pl.n, pl.k);
        goto release;
    }
    if (max_samples < 1 || n_sub < 1 || n_sub > pl.k) {
        PyErr_Format(PyExc_ValueError, "max_samples %zd, n_sub %zd: expected >= 1 and n_sub "
                     "<= %zd columns", max_samples, n_sub, pl.k);
        goto release;
    }
    pl.m = max_samples < pl.n ? max_samples : pl.n;
    pl.n_trees = out[5].shape[0];
    Py_ssize_t capacity = pl.n_trees * (2 * pl.m - 1);
    for (int i = 0; i < 5; i++) {
        if (out[i].shape[0] < capacity) {
            PyErr_Format(PyExc_ValueError, "%s: room for %zd nodes needed", names[i], capacity);
            goto release;
        }
    }
    pl.max_depth = 0;
    while (((Py_ssize_t)1 << pl.max_depth) < (pl.m > 2 ? pl.m : 2))
        pl.max_depth++; /* ceil(log2(max(m, 2))) */
    Py_ssize_t n_nodes = 0, height = 0;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = grow_forest(&pl, x.buf, out, &n_nodes, &height);
    Py_END_ALLOW_THREADS
    if (status == -2)
        PyErr_NoMemory();
    else if (status == -1)
        PyErr_SetString(PyExc_ValueError, "X: +-inf (or a value beyond float32) in a row");
    else
        result = Py_BuildValue("nnd", n_nodes, height, (double)pl.n_trees * path_c(pl.m));
release:
    while (held > 0)
        PyBuffer_Release(&out[--held]);
    PyBuffer_Release(&x);
    return result;
}

static PyMethodDef grow_methods[] = {
    {"grow", (PyCFunction)(void (*)(void))grow, METH_VARARGS | METH_KEYWORDS,
     "grow(X, feature, threshold, base, value, nan_left, roots, max_samples, n_sub, seed)\n"
     "-> (n_nodes, height, denominator): an isolation forest of len(roots) trees on X\n"
     "((n, k) float64, C-contiguous) into the node arrays (room for len(roots) * (2 m - 1)\n"
     "nodes, m = min(max_samples, n)). Releases the GIL."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef grow_module = {
    PyModuleDef_HEAD_INIT, "_grow", "Grows an isolation forest in C (see forest.py `grow`).",
    -1, grow_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__grow(void)
{
    return PyModule_Create(&grow_module);
}
