/* blink._features: the Python type `Engine` and the module around the feature engine's state
 * machine (blink/_features_engine.h, which describes the design). This is THE feature engine:
 * blink/features.py subclasses `Engine`; serving, training and backtests all run it, and
 * `Engine.run` (arrays, GIL released) equals update() + values() per trade bit for bit. */
#include "_features_engine.h"
#include <structmember.h>
#include <string.h>

/* ------------------------------------------------------------------ Python type */

static int idle(const Engine *e)
{
    if (!e->busy)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "Engine is busy in run() on another thread");
    return 0;
}

static int Engine_init(Engine *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"scale", "min_history_seconds", "min_trades", NULL};
    PyObject *scale_obj = NULL;
    double min_history = 300.0;
    Py_ssize_t min_trades = 30;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|Odn:Engine", kwlist, &scale_obj,
                                     &min_history, &min_trades))
        return -1;
    if (!idle(self))
        return -1;
    double scale = 1.0;
    if (scale_obj) {
        scale = PyFloat_AsDouble(scale_obj);
        if (scale == -1.0 && PyErr_Occurred())
            return -1;
    }
    if (!(scale > 0)) {
        PyErr_Format(PyExc_ValueError, "scale must be positive, got %R", scale_obj);
        return -1;
    }
    Step *ring = self->ring ? self->ring : PyMem_RawMalloc(RING * sizeof(Step));
    if (!ring) {
        PyErr_NoMemory();
        return -1;
    }
    /* __init__ called again: start over from an empty state */
    memset((char *)self + sizeof(PyObject), 0, sizeof(Engine) - sizeof(PyObject));
    self->ring = ring;
    self->scale = scale;
    self->min_history = min_history;
    self->min_trades = min_trades;
    self->level_tau = LEVEL_TAU * scale;
    self->lp = NAN;
    return 0;
}

static void Engine_dealloc(Engine *self)
{
    PyMem_RawFree(self->ring);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Engine_update(Engine *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError,
                     "update() takes 4 positional arguments (ts, price, size, taker_buy), "
                     "got %zd", nargs);
        return NULL;
    }
    double v[3];
    for (int k = 0; k < 3; k++) {
        v[k] = PyFloat_AsDouble(args[k]);
        if (v[k] == -1.0 && PyErr_Occurred())
            return NULL;
    }
    int taker_buy = PyObject_IsTrue(args[3]);
    if (taker_buy < 0 || !idle(self))
        return NULL;
    fold(self, v[0], v[1], v[2], taker_buy);
    Py_RETURN_NONE;
}

static PyObject *Engine_values(Engine *self, PyObject *Py_UNUSED(ignored))
{
    if (!idle(self))
        return NULL;
    double v[N_FEATURES];
    if (self->trades)
        features(self, v);
    else
        for (int k = 0; k < N_FEATURES; k++)
            v[k] = NAN;
    PyObject *out = PyList_New(N_FEATURES);
    if (!out)
        return NULL;
    for (int k = 0; k < N_FEATURES; k++) {
        PyObject *x = PyFloat_FromDouble(v[k]);
        if (!x) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, x);
    }
    return out;
}

static PyObject *Engine_not_ready(Engine *self, PyObject *Py_UNUSED(ignored))
{
    if (!idle(self))
        return NULL;
    if (is_ready(self))
        Py_RETURN_NONE;
    return PyUnicode_FromString("no_features");
}

static PyObject *Engine_run(Engine *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ts", "price", "size", "taker", "out", "rate", NULL};
    static const char *names[] = {"ts", "price", "size", "taker", "out", "rate"};
    PyObject *obj[6] = {NULL, NULL, NULL, NULL, NULL, Py_None};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOO|O:run", kwlist, &obj[0], &obj[1],
                                     &obj[2], &obj[3], &obj[4], &obj[5]))
        return NULL;
    if (!idle(self))
        return NULL;
    Py_buffer view[6];
    int held = 0, nviews = obj[5] == Py_None ? 5 : 6;
    PyObject *result = NULL;
    for (; held < nviews; held++)
        /* C-contiguous; taker 1-byte bools or bytes, the rest float64; out and rate writable */
        if (blink_get_buffer(obj[held], &view[held], names[held], held == 3 ? "b" : "d", -1, -1,
                             -1, held >= 4) < 0)
            goto done;
    Py_ssize_t n = view[0].len / 8;
    const Py_ssize_t need[6] = {n, n, n, n, n * N_FEATURES, n};
    for (int k = 1; k < nviews; k++)
        if (view[k].len / view[k].itemsize != need[k]) {
            PyErr_Format(PyExc_ValueError, "%s holds %zd items; expected %zd (%zd trades%s)",
                         names[k], view[k].len / view[k].itemsize, need[k], n,
                         k == 4 ? " x 8 features" : "");
            goto done;
        }
    const double *ts = view[0].buf, *price = view[1].buf, *size = view[2].buf;
    const unsigned char *taker = view[3].buf;
    double *out = view[4].buf, *rate = nviews == 6 ? view[5].buf : NULL;
    Py_ssize_t ready = 0;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        double *row = out + i * N_FEATURES;
        fold(self, ts[i], price[i], size[i], taker[i] != 0);
        if (is_ready(self)) {
            features(self, row);
            ready++;
        } else {
            for (int k = 0; k < N_FEATURES; k++)
                row[k] = NAN;
        }
        if (rate)
            rate[i] = trade_rate(self);
    }
    Py_END_ALLOW_THREADS
    self->busy = 0;
    result = PyLong_FromSsize_t(ready);
done:
    while (held--)
        PyBuffer_Release(&view[held]);
    return result;
}

static PyObject *Engine_trade_rate(Engine *self, void *Py_UNUSED(closure))
{
    return idle(self) ? PyFloat_FromDouble(trade_rate(self)) : NULL;
}

static PyObject *Engine_last_ts(Engine *self, void *Py_UNUSED(closure))
{
    if (!idle(self))
        return NULL;
    if (!self->trades)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(self->t);
}


static PyMethodDef Engine_methods[] = {
    {"update", (PyCFunction)(void (*)(void))Engine_update, METH_FASTCALL,
     "update(ts, price, size, taker_buy)\n--\n\nFold one trade in (trade-id order; event time "
     "`ts` in epoch seconds). Non-finite input is counted in `rejected` and skipped."},
    {"values", (PyCFunction)Engine_values, METH_NOARGS,
     "values()\n--\n\nThe features after the newest trade, in FEATURE_NAMES order (valid once "
     "ready; NaN before any trade)."},
    {"not_ready", (PyCFunction)Engine_not_ready, METH_NOARGS,
     "not_ready()\n--\n\nNone when ready, else \"no_features\": the longest window must span "
     "`min_history_seconds` of event time and hold `min_trades` trades."},
    {"run", (PyCFunction)(void (*)(void))Engine_run, METH_VARARGS | METH_KEYWORDS,
     "run(ts, price, size, taker, out, rate=None)\n--\n\nupdate() for each trade of the "
     "arrays (n float64 ts/price/size, n bools taker) with the GIL released; row i of `out` "
     "(n x 12 float64) = values() after trade i, or NaN while not ready; `rate` (n float64) = "
     "trade_rate after trade i. Returns the number of ready rows."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Engine_members[] = {
    {"scale", T_DOUBLE, offsetof(Engine, scale), READONLY, "multiplier of every window"},
    {"min_history", T_DOUBLE, offsetof(Engine, min_history), 0,
     "event time needed before ready (besides READY closed steps)"},
    {"min_trades", T_PYSSIZET, offsetof(Engine, min_trades), 0,
     "trades needed before ready"},
    {"rejected", T_PYSSIZET, offsetof(Engine, rejected), 0, "non-finite trades skipped"},
    {"trades", T_PYSSIZET, offsetof(Engine, trades), READONLY, "trades folded in"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Engine_getset[] = {
    {"trade_rate", (getter)Engine_trade_rate, NULL,
     "Trades per second of event time over the flow window (60 steps).", NULL},
    {"last_ts", (getter)Engine_last_ts, NULL, "Newest trade time (None before any trade).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "blink._features.Engine",
    .tp_basicsize = sizeof(Engine),
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Engine(scale=1.0, min_history_seconds=300.0, min_trades=30)\n--\n\n"
              "Incremental features over event-time windows (see blink/features.py).",
    .tp_methods = Engine_methods,
    .tp_members = Engine_members,
    .tp_getset = Engine_getset,
    .tp_init = (initproc)Engine_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------ module */

static PyObject *float_tuple(const double *v, int n)
{
    PyObject *t = PyTuple_New(n);
    for (int k = 0; t && k < n; k++) {
        PyObject *x = PyFloat_FromDouble(v[k]);
        if (!x) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, k, x);
    }
    return t;
}

static int add_float(PyObject *m, const char *name, double v)
{
    PyObject *x = PyFloat_FromDouble(v);
    int rc = x ? PyModule_AddObjectRef(m, name, x) : -1;
    Py_XDECREF(x);
    return rc;
}

static int add_tuple(PyObject *m, const char *name, const double *v, int n)
{
    PyObject *t = float_tuple(v, n);
    int rc = t ? PyModule_AddObjectRef(m, name, t) : -1;
    Py_XDECREF(t);
    return rc;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_features",
    "The rolling feature engine's state machine (blink/features.py wraps it; the constants "
    "here are the engine's, re-exported there).",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__features(void)
{
    PyObject *m = blink_module_with_type(&module, &EngineType, "Engine");
    if (!m)
        return NULL;
    if (add_tuple(m, "HORIZONS", HORIZONS, N_H) < 0 ||
        PyModule_AddIntConstant(m, "BV_HORIZONS", N_BV) < 0 ||
        PyModule_AddIntConstant(m, "H_REF", H_REF) < 0 ||
        PyModule_AddIntConstant(m, "REGIME", REGIME) < 0 ||
        PyModule_AddIntConstant(m, "LAG", LAG) < 0 ||
        add_float(m, "CAP", CAP) < 0 || PyModule_AddIntConstant(m, "CAP_MIN", CAP_MIN) < 0 ||
        PyModule_AddIntConstant(m, "FLOW", FLOW) < 0 ||
        PyModule_AddIntConstant(m, "RECENT", RECENT) < 0 ||
        PyModule_AddIntConstant(m, "READY", READY) < 0 ||
        PyModule_AddIntConstant(m, "RING", RING) < 0 ||
        add_float(m, "EPS_VOLUME", EPS_VOLUME) < 0 || add_float(m, "LEVEL_TAU", LEVEL_TAU) < 0 ||
        PyModule_AddIntConstant(m, "N_FEATURES", N_FEATURES) < 0 ||
        PyModule_AddIntConstant(m, "FORMULAS", FORMULAS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
