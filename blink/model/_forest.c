/*
 * blink.model._forest: the IsolationForest walk behind blink/model/forest.py.
 *
 * Why C: walking 100 trees with numpy `take` steps cost ~30 us for one row and 5-8 us per row
 * in batches (slower than sklearn), which bounded ingest, the backtest and retraining.
 *
 * A `Forest` is built once from CompiledForest's flat arrays. They are validated there, once
 * (a corrupt model raises ValueError instead of reading out of bounds or looping forever), and
 * copied into a packed node table the object owns, so a score call only checks its input and
 * nothing seen from Python can change under a walk (which runs without the GIL).
 *
 * Layout (see forest.py): nodes renumbered breadth-first, the two children of an internal node
 * adjacent, right child first: next = base + (x[feature] <= threshold). A leaf points at
 * itself with threshold NaN (the comparison is always false), so a walk can take a fixed number
 * of steps, the tree's height, without a branch on "is this a leaf". Every internal node's
 * children come after it: the heights are computed in one backward pass.
 *
 * Arithmetic is sklearn's, in its order, so scores agree to ~1e-15: inputs are rounded through
 * float32 (its input validation), a NaN goes where the tree sends missing values, the per-tree
 * path lengths are summed in tree order from 0.0 (its `depths += ...`, the same bits) and
 * finished as -(2 ** -(depths / denominator)) with pow(), as numpy computes it; -0.5 when the
 * denominator is 0 (a single training sample: sklearn's division leaves a 1 there).
 * A row scored alone (score_one) and in a batch (score) goes through the same functions,
 * hence the same bits.
 */
#include "../_cbuffer.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_forest_walk.h"

static void forest_dealloc(Forest *self)
{
    PyMem_Free(self->nodes);
    PyMem_Free(self->value);
    PyMem_Free(self->nan_left);
    PyMem_Free(self->roots);
    PyMem_Free(self->steps);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The validated copy of the arrays (buffers already checked for kind and length). */
static PyObject *forest_build(PyTypeObject *type, const Py_buffer *views, Py_ssize_t n_features,
                              double denominator)
{
    const int64_t *feature = views[0].buf, *base = views[2].buf, *roots = views[5].buf;
    const double *threshold = views[1].buf, *value = views[3].buf;
    const uint8_t *nan_left = views[4].buf;
    Py_ssize_t n_nodes = views[0].shape[0], n_trees = views[5].shape[0];
    if (n_nodes < 1 || n_nodes > INT32_MAX - 1) {
        PyErr_Format(PyExc_ValueError, "feature: expected 1 to %d nodes, got %zd",
                     INT32_MAX - 1, n_nodes);
        return NULL;
    }
    if (validate(feature, base, roots, n_nodes, n_trees, n_features) < 0)
        return NULL;

    Forest *self = (Forest *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    /* one more node: a spare leaf (index n_nodes) roots the lanes past the last tree */
    Py_ssize_t n_groups = (n_trees + LANES - 1) / LANES;
    self->nodes = PyMem_Malloc((n_nodes + 1) * sizeof(Node));
    self->value = PyMem_Malloc((n_nodes + 1) * sizeof(double));
    self->nan_left = PyMem_Malloc(n_nodes + 1);
    self->roots = PyMem_Malloc((n_groups ? n_groups * LANES : 1) * sizeof(int32_t));
    self->steps = PyMem_Malloc((n_groups ? n_groups : 1) * sizeof(int32_t));
    int32_t *height = PyMem_Malloc((n_nodes + 1) * sizeof(int32_t));
    if (!self->nodes || !self->value || !self->nan_left || !self->roots || !self->steps ||
        !height) {
        PyMem_Free(height);
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    /* Backwards, so both children (after their node) are done first: height = the longest
     * path down to a leaf, a safe step count even for a malformed (shared-children) forest. */
    for (Py_ssize_t i = n_nodes; i >= 0; i--) {
        Node *n = &self->nodes[i];
        if (i == n_nodes || base[i] == i) { /* a leaf stays put: x <= NaN is false */
            *n = (Node){NAN, 0, (int32_t)i};
            self->nan_left[i] = 0;
            height[i] = 0;
        } else {
            *n = (Node){threshold[i], (int32_t)feature[i], (int32_t)base[i]};
            self->nan_left[i] = nan_left[i] != 0;
            int32_t right = height[base[i]], left = height[base[i] + 1];
            height[i] = 1 + (right > left ? right : left);
        }
    }
    memcpy(self->value, value, n_nodes * sizeof(double));
    self->value[n_nodes] = 0.0;
    for (Py_ssize_t g = 0; g < n_groups; g++) {
        self->steps[g] = 0;
        for (Py_ssize_t l = 0; l < LANES; l++) {
            Py_ssize_t t = g * LANES + l;
            int32_t root = t < n_trees ? (int32_t)roots[t] : (int32_t)n_nodes;
            self->roots[t] = root;
            if (height[root] > self->steps[g])
                self->steps[g] = height[root];
        }
    }
    PyMem_Free(height);
    self->n_nodes = n_nodes;
    self->n_trees = n_trees;
    self->n_groups = n_groups;
    self->n_features = n_features;
    self->denominator = denominator;
    return (PyObject *)self;
}

static PyObject *forest_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"feature", "threshold", "base", "value", "nan_left", "roots",
                             "n_features", "denominator", NULL};
    /* one per node, but roots: one per tree */
    static const char *names[6] = {"feature", "threshold", "base", "value", "nan_left", "roots"};
    static const char *kinds[6] = {"q", "d", "q", "d", "?", "q"};
    PyObject *objs[6], *self = NULL;
    Py_ssize_t n_features;
    double denominator;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOnd:Forest", kwlist, &objs[0],
                                     &objs[1], &objs[2], &objs[3], &objs[4], &objs[5],
                                     &n_features, &denominator))
        return NULL;
    if (n_features < 1 || n_features > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "n_features: expected >= 1, got %zd", n_features);
        return NULL;
    }
    Py_buffer views[6];
    int held = 0;
    for (; held < 6; held++) {
        Py_ssize_t n = (held == 0 || held == 5) ? -1 : views[0].shape[0];
        if (blink_get_buffer(objs[held], &views[held], names[held], kinds[held], 1, n, -1, 0) < 0)
            break;
    }
    if (held == 6)
        self = forest_build(type, views, n_features, denominator);
    while (held > 0)
        PyBuffer_Release(&views[--held]);
    return self;
}

/* ------------------------------------------------------------------ scoring */

static PyObject *forest_score(Forest *self, PyObject *args)
{
    PyObject *xobj, *outobj;
    if (!PyArg_ParseTuple(args, "OO:score", &xobj, &outobj))
        return NULL;
    Py_buffer x, out;
    if (blink_get_buffer(xobj, &x, "X", "df", -1, -1, -1, 0) < 0)
        return NULL;
    Py_ssize_t k = self->n_features;
    if (x.ndim != 2 || x.shape[1] != k) {
        PyErr_Format(PyExc_ValueError, "X: expected an (n, %zd) array", k);
        PyBuffer_Release(&x);
        return NULL;
    }
    Py_ssize_t n = x.shape[0];
    if (blink_get_buffer(outobj, &out, "out", "d", 1, n, -1, 1) < 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    double *rows = PyMem_Malloc(BLOCK * k * sizeof(double));
    if (rows == NULL) {
        PyBuffer_Release(&x);
        PyBuffer_Release(&out);
        return PyErr_NoMemory();
    }
    const char *src = x.buf;
    double *dst = out.buf;
    int f32 = blink_is_kind(&x, 'f');
    Py_ssize_t stride = k * x.itemsize;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t m = n - start < BLOCK ? n - start : BLOCK;
        for (Py_ssize_t r = 0; r < m; r++)
            load_row(src + (start + r) * stride, f32, k, rows + r * k);
        score_block(self, rows, m, dst + start);
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(rows);
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* One row: a list or tuple of numbers (what the feature engine hands over: no array to build)
 * or a C-contiguous float64/float32 buffer of n_features items. */
static PyObject *forest_score_one(Forest *self, PyObject *xobj)
{
    Py_ssize_t k = self->n_features;
    double small[64], *row = small;
    if (k > 64 && (row = PyMem_Malloc(k * sizeof(double))) == NULL)
        return PyErr_NoMemory();
    PyObject *result = NULL;
    if (PyList_Check(xobj) || PyTuple_Check(xobj)) {
        /* items converted one by one: __float__ may run Python code, so don't keep the list's
         * item array across calls */
        if (PySequence_Fast_GET_SIZE(xobj) != k) {
            PyErr_Format(PyExc_ValueError, "x: expected %zd features, got %zd", k,
                         PySequence_Fast_GET_SIZE(xobj));
            goto done;
        }
        for (Py_ssize_t j = 0; j < k; j++) {
            PyObject *item = PySequence_Fast_GET_ITEM(xobj, j);
            Py_INCREF(item);
            double v = PyFloat_AsDouble(item);
            Py_DECREF(item);
            if (v == -1.0 && PyErr_Occurred())
                goto done;
            row[j] = (double)(float)v;
            if (PySequence_Fast_GET_SIZE(xobj) != k) { /* a __float__ shrank the list */
                PyErr_SetString(PyExc_RuntimeError, "x: list changed size during scoring");
                goto done;
            }
        }
    } else {
        Py_buffer x;
        if (blink_get_buffer(xobj, &x, "x", "df", -1, -1, -1, 0) < 0)
            goto done;
        Py_ssize_t got = x.len / x.itemsize;
        if (got != k) {
            PyErr_Format(PyExc_ValueError, "x: expected %zd features, got %zd", k, got);
            PyBuffer_Release(&x);
            goto done;
        }
        load_row(x.buf, blink_is_kind(&x, 'f'), k, row);
        PyBuffer_Release(&x);
    }
    double score;
    score_block(self, row, 1, &score);
    result = PyFloat_FromDouble(score);
done:
    if (row != small)
        PyMem_Free(row);
    return result;
}

static PyMethodDef forest_methods[] = {
    {"score", (PyCFunction)forest_score, METH_VARARGS,
     "score(X, out): score_samples of every row of X ((n, n_features) float64 or float32,\n"
     "C-contiguous) into out (float64, n). Releases the GIL."},
    {"score_one", (PyCFunction)forest_score_one, METH_O,
     "score_one(x) -> float: score_samples of one row (list, tuple or float64/float32 array\n"
     "of n_features values), bit-identical to the same row scored by score()."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ForestType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "blink.model._forest.Forest",
    .tp_basicsize = sizeof(Forest),
    .tp_dealloc = (destructor)forest_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Forest(feature, threshold, base, value, roots, n_features, denominator):\n"
              "a validated copy of CompiledForest's arrays, scored in C.",
    .tp_methods = forest_methods,
    .tp_new = forest_new,
};

static struct PyModuleDef forest_module = {
    PyModuleDef_HEAD_INIT, "_forest", "The compiled IsolationForest walk (see forest.py).", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__forest(void)
{
    return blink_module_with_type(&forest_module, &ForestType, "Forest");
}
