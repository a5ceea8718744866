/* Buffers and module set-up shared by Blink's C kernels (blink/_features.c and
 * blink/model/_forest.c, _grow.c, _tails.c): one checked way to take an array argument, one
 * way to publish a module's type. Header-only (static functions), plain C99.
 */
#ifndef BLINK_CBUFFER_H
#define BLINK_CBUFFER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The buffer's single struct code, its native or standard byte-order prefix skipped ('@',
 * '=', or the machine's own '<' / '>'); '\0' when the format is anything else. */
static char blink_format_code(const Py_buffer *v)
{
    const char *f = v->format ? v->format : "B";
    if (f[0] == '@' || f[0] == '=' || f[0] == (PY_LITTLE_ENDIAN ? '<' : '>'))
        f++;
    return (f[0] != '\0' && f[1] == '\0') ? f[0] : '\0';
}

/* Whether the buffer holds items of `kind`: 'd' float64, 'f' float32, 'q' int64 ('q' or
 * 'l' of 8 bytes), '?' bool, 'b' bool or byte ('?', 'b', 'B' of 1 byte). */
static int blink_is_kind(const Py_buffer *v, char kind)
{
    char c = blink_format_code(v);
    switch (kind) {
    case 'd': return v->itemsize == 8 && c == 'd';
    case 'f': return v->itemsize == 4 && c == 'f';
    case 'q': return v->itemsize == 8 && (c == 'q' || c == 'l');
    case '?': return v->itemsize == 1 && c == '?';
    case 'b': return v->itemsize == 1 && (c == '?' || c == 'b' || c == 'B');
    default: return 0;
    }
}

static const char *blink_kind_name(char kind)
{
    switch (kind) {
    case 'd': return "float64";
    case 'f': return "float32";
    case 'q': return "int64";
    default: return "bool";
    }
}

/* Take `obj` as a C-contiguous buffer (writable when asked) of one of `kinds` (e.g. "d", "df":
 * float64 or float32), `ndim` dimensions (any when < 0), shape[0] == n0 and, 2-D, shape[1] ==
 * n1 where those are >= 0. Errors name the argument: TypeError "<name>: expected a C-contiguous[ writable]
 * array" / "<name>: expected float64[ or float32], got format '<f>'", ValueError "<name>:
 * expected a 1-D array of <n0> items" / "... a 2-D array[ of shape (n0, n1) | of n1 columns]".
 * On error: exception set, nothing held, -1. */
static int blink_get_buffer(PyObject *obj, Py_buffer *v, const char *name, const char *kinds,
                            int ndim, Py_ssize_t n0, Py_ssize_t n1, int writable)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, v, flags) < 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous%s array", name,
                     writable ? " writable" : "");
        return -1;
    }
    int ok = 0;
    for (const char *k = kinds; *k && !ok; k++)
        ok = blink_is_kind(v, *k);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s: expected %s%s%s, got format '%s'", name,
                     blink_kind_name(kinds[0]), kinds[0] && kinds[1] ? " or " : "",
                     kinds[0] && kinds[1] ? blink_kind_name(kinds[1]) : "",
                     v->format ? v->format : "B");
    } else if (ndim >= 0 && (v->ndim != ndim || (n0 >= 0 && v->shape[0] != n0) ||
                             (ndim == 2 && n1 >= 0 && v->shape[1] != n1))) {
        if (ndim == 1 && n0 >= 0)
            PyErr_Format(PyExc_ValueError, "%s: expected a 1-D array of %zd items", name, n0);
        else if (ndim == 2 && n0 >= 0 && n1 >= 0)
            PyErr_Format(PyExc_ValueError, "%s: expected a 2-D array of shape (%zd, %zd)",
                         name, n0, n1);
        else if (ndim == 2 && n1 >= 0)
            PyErr_Format(PyExc_ValueError, "%s: expected a 2-D array of %zd columns", name, n1);
        else
            PyErr_Format(PyExc_ValueError, "%s: expected a %d-D array", name, ndim);
    } else {
        return 0;
    }
    PyBuffer_Release(v);
    return -1;
}

/* A new module from `def` with `type` (readied here) added as `name`; NULL on error. */
static PyObject *blink_module_with_type(PyModuleDef *def, PyTypeObject *type, const char *name)
{
    if (PyType_Ready(type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(def);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, name, (PyObject *)type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

#endif
