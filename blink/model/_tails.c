/*
 * blink.model._tails: the calibrated tails' scorer behind blink/model/tails.py.
 *
 * Why C: the numpy version ran ~10 small numpy calls per column for every call, ~100 us for
 * the one row a trade brings (much more with cold caches between trades: the p99 of
 * frame -> score at the live rate), where the forest walk next to it takes ~1.4 us. Here
 * a row is one pass over its columns.
 *
 * A `Tails` is built once from `tails.fit`'s tables. They are validated there (a malformed
 * table raises ValueError: every body has the levels' length, is finite and nondecreasing;
 * sigma > 0; 0 < tail <= 1; levels in [0, 1], nondecreasing) and copied into memory the
 * object owns, so a score call only checks its input.
 *
 * Formulas and arithmetic are tails.py's, operation for operation (tests/unit/
 * test_tails_compiled.py pins them against the numpy ones, tests/support/tails_reference.py,
 * within 1e-9): x = |a| on two-sided columns; above u = body[-1], the GPD tail
 * S = -(log10(tail) + log_s), log_s = -log10(1 + xi y / sigma) / xi (xi > 0) or
 * -y / sigma / ln 10 (xi <= 0), y = x - u; at or below u, S = -log10(max(p, MIN_P)) with p
 * the survival interpolated as np.interp(x, body, 1 - levels, left=1.0) does (the last
 * quantile <= x by bisection, ties included; its value at a quantile or at the right end; the
 * same slope formula and NaN fallbacks); a NaN value gives a NaN S.
 * The score of a row: min(0, log10(k) - max_j S_j), NaN when any S_j is NaN (numpy's max).
 */
#include "../_cbuffer.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_tails_eval.h"

/* ------------------------------------------------------------------ construction */

/* ValueError naming the malformed item (column j < 0: a table shared by the columns). */
static int bad(const char *what, Py_ssize_t j, Py_ssize_t i, double v)
{
    char *text = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (j >= 0)
        PyErr_Format(PyExc_ValueError, "%s (column %zd, item %zd: %s)",
                     what, j, i, text ? text : "?");
    else
        PyErr_Format(PyExc_ValueError, "%s (item %zd: %s)", what, i,
                     text ? text : "?");
    PyMem_Free(text);
    return -1;
}

static int validate(const double *body, const double *levels, const double *xi,
                    const double *sigma, double tail, Py_ssize_t k, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (!(levels[i] >= 0.0 && levels[i] <= 1.0) || (i && !(levels[i] >= levels[i - 1])))
            return bad("levels must be nondecreasing in [0, 1]", -1, i, levels[i]);
    for (Py_ssize_t j = 0; j < k; j++) {
        const double *q = body + j * n;
        for (Py_ssize_t i = 0; i < n; i++)
            if (!isfinite(q[i]) || (i && !(q[i] >= q[i - 1])))
                return bad("a body must be finite and nondecreasing", j, i, q[i]);
        if (!isfinite(xi[j]))
            return bad("xi must be finite", j, 0, xi[j]);
        if (!(isfinite(sigma[j]) && sigma[j] > 0.0))
            return bad("sigma must be finite and > 0", j, 0, sigma[j]);
    }
    if (!(tail > 0.0 && tail <= 1.0))
        return bad("tail must be in (0, 1]", -1, 0, tail);
    return 0;
}

static void tails_dealloc(Tails *self)
{
    PyMem_Free(self->body);
    PyMem_Free(self->survival);
    PyMem_Free(self->u);
    PyMem_Free(self->xi);
    PyMem_Free(self->sigma);
    PyMem_Free(self->two);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *tails_build(PyTypeObject *type, const Py_buffer *v, double tail)
{
    Py_ssize_t k = v[0].shape[0], n = v[0].shape[1];
    const double *body = v[0].buf, *levels = v[1].buf, *xi = v[2].buf, *sigma = v[3].buf;
    const uint8_t *two = v[4].buf;
    if (k < 1 || n < 1) {
        PyErr_Format(PyExc_ValueError, "body is (%zd, %zd), expected "
                     "at least one column of at least one quantile", k, n);
        return NULL;
    }
    if (validate(body, levels, xi, sigma, tail, k, n) < 0)
        return NULL;
    Tails *self = (Tails *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->body = PyMem_Malloc(k * n * sizeof(double));
    self->survival = PyMem_Malloc(n * sizeof(double));
    self->u = PyMem_Malloc(k * sizeof(double));
    self->xi = PyMem_Malloc(k * sizeof(double));
    self->sigma = PyMem_Malloc(k * sizeof(double));
    self->two = PyMem_Malloc(k);
    if (!self->body || !self->survival || !self->u || !self->xi || !self->sigma || !self->two) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    memcpy(self->body, body, k * n * sizeof(double));
    for (Py_ssize_t i = 0; i < n; i++)
        self->survival[i] = 1.0 - levels[i];
    for (Py_ssize_t j = 0; j < k; j++) {
        self->u[j] = body[j * n + n - 1];
        self->xi[j] = xi[j];
        self->sigma[j] = sigma[j];
        self->two[j] = two[j] != 0;
    }
    self->k = k;
    self->n_levels = n;
    self->log_tail = log10(tail);
    self->log_k = log10((double)k);
    self->ln10 = log(10.0);
    return (PyObject *)self;
}

static PyObject *tails_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"body", "levels", "xi", "sigma", "two_sided", "tail", NULL};
    static const char *names[5] = {"body", "levels", "xi", "sigma", "two_sided"};
    PyObject *objs[5], *self = NULL;
    double tail;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOd:Tails", kwlist, &objs[0], &objs[1],
                                     &objs[2], &objs[3], &objs[4], &tail))
        return NULL;
    Py_buffer v[5];
    int held = 0;
    for (; held < 5; held++) {
        /* body any (k, n); levels n items; xi, sigma, two_sided k items */
        Py_ssize_t items = held == 0 ? -1 : held == 1 ? v[0].shape[1] : v[0].shape[0];
        if (blink_get_buffer(objs[held], &v[held], names[held], held == 4 ? "?" : "d",
                             held ? 1 : 2, items, -1, 0) < 0)
            break;
    }
    if (held == 5)
        self = tails_build(type, v, tail);
    while (held > 0)
        PyBuffer_Release(&v[--held]);
    return self;
}

/* ------------------------------------------------------------------ scoring */

/* surprise() or score(): (A, out[, forest]) checked, then one pass over the rows. */
static PyObject *run(Tails *self, PyObject *args, int surprise)
{
    PyObject *aobj, *outobj, *fobj = Py_None;
    if (!PyArg_ParseTuple(args, surprise ? "OO|O:surprise" : "OO|O:score", &aobj, &outobj,
                          &fobj))
        return NULL;
    int forest = fobj != Py_None;
    Rows in = {NULL, NULL, forest ? self->k - 1 : self->k};
    Py_buffer a, f, out;
    if (blink_get_buffer(aobj, &a, "A", "d", 2, -1, in.width, 0) < 0)
        return NULL;
    Py_ssize_t n = a.shape[0];
    if (forest && blink_get_buffer(fobj, &f, "forest", "d", 1, n, -1, 0) < 0) {
        PyBuffer_Release(&a);
        return NULL;
    }
    if (blink_get_buffer(outobj, &out, "out", "d", surprise ? 2 : 1, n, self->k, 1) < 0) {
        if (forest)
            PyBuffer_Release(&f);
        PyBuffer_Release(&a);
        return NULL;
    }
    in.a = a.buf;
    in.forest = forest ? f.buf : NULL;
    Py_BEGIN_ALLOW_THREADS
    if (surprise)
        surprise_rows(self, &in, n, out.buf);
    else
        score_rows(self, &in, n, out.buf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    if (forest)
        PyBuffer_Release(&f);
    PyBuffer_Release(&a);
    Py_RETURN_NONE;
}

static PyObject *tails_surprise(Tails *self, PyObject *args)
{
    return run(self, args, 1);
}

static PyObject *tails_score(Tails *self, PyObject *args)
{
    return run(self, args, 0);
}

static PyMethodDef tails_methods[] = {
    {"surprise", (PyCFunction)tails_surprise, METH_VARARGS,
     "surprise(A, out[, forest]): S_j of every row of A ((n, k) float64, C-contiguous) into\n"
     "out ((n, k) float64). With forest ((n,) float64: score_samples), A holds the first\n"
     "k - 1 columns and the k-th is -forest. Releases the GIL."},
    {"score", (PyCFunction)tails_score, METH_VARARGS,
     "score(A, out[, forest]): score_raw = min(0, log10(k) - max_j S_j) of every row into\n"
     "out ((n,) float64); A and forest as in surprise(). Releases the GIL."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TailsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "blink.model._tails.Tails",
    .tp_basicsize = sizeof(Tails),
    .tp_dealloc = (destructor)tails_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tails(body, levels, xi, sigma, two_sided, tail): a validated copy of\n"
              "tails.fit's tables ((k, n) float64 body, n levels, k xi, sigma, bools), scored\n"
              "in C.",
    .tp_methods = tails_methods,
    .tp_new = tails_new,
};

static struct PyModuleDef tails_module = {
    PyModuleDef_HEAD_INIT, "_tails", "The calibrated tails' scorer (see tails.py).", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tails(void)
{
    return blink_module_with_type(&tails_module, &TailsType, "Tails");
}
