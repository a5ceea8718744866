/* blink._features: the rolling feature engine's per-trade state machine, in C.
 *
 * This is THE feature engine (blink/features.py subclasses `Engine` and holds the formulas in
 * its docstring): serving, training and backtests all run this code. It was a pure-Python
 * class costing ~7-10 us per trade, which bounded ingest and the backtest. Every floating-
 * point operation is the one the Python version did, in the same order, with libm's
 * log/exp/sqrt (what Python's math module calls) and no fast-math, so the results are
 * bit-identical to it; tests/test_features.py keeps a brute-force reference as the oracle.
 *
 * State: one history array of trades (grown by doubling, never per trade), pointers into it
 * (as-of prices of the return windows, tails of the summed and Welford windows), compacted in
 * bulk once no pointer is below COMPACT. `Engine.run` folds whole arrays in with the GIL
 * released; it writes what update() + values() would give after each trade.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <string.h>

#define N_FEATURES 12
#define N_RET 4
#define N_Z 2
static const double RETURN_WINDOWS[N_RET] = {1.0, 5.0, 30.0, 300.0};
static const double Z_WINDOWS[N_Z] = {30.0, 300.0};
#define FLOW_WINDOW 60.0  /* vol_60s, intensity, volume, imbalance */
#define BASE_WINDOW 600.0 /* vol_600s and the baseline of the ratios: the longest window */
#define EWMA_TAU 30.0
#define LEVEL_TAU 600.0 /* robust level L used by R() for non-positive series */
#define RATIO_FLOOR 1e-3
#define FLAT 1e-9      /* a window whose std is below FLAT * |mean| is flat: z = 0 */
#define COMPACT 4096   /* history entries dropped in bulk once no window points below this */
#define FIRST_CAP 1024 /* history entries allocated by the first trade */

/* lp is NaN when price <= 0: the Python version's `None` (log of a finite positive double is
 * always finite, so NaN cannot be a real log price) */
typedef struct {
    double ts, price, lp, r2, size, signed_size;
} Entry;

typedef struct { /* running sums over a window: the flow and base windows */
    Py_ssize_t tail, n;
    double s_r2, vol, signed_vol;
} Sums;

typedef struct { /* Welford moments of the price over a z window */
    Py_ssize_t tail, n;
    double mean, m2;
} Moments;

typedef struct {
    PyObject_HEAD
    double scale, min_history;
    Py_ssize_t min_trades, rejected;
    double ret_w[N_RET], z_w[N_Z], flow_w, base_w, ewma_tau, level_tau;
    Entry *hist;
    Py_ssize_t len, cap;
    Py_ssize_t asof[N_RET];
    Sums flow, base;
    Moments z[N_Z];
    double t0, t;
    Py_ssize_t dropped; /* entries compacted away (absolute index = index + dropped) */
    Py_ssize_t changed; /* absolute index of the newest trade whose price differs from the last */
    double p, lp, ewma, level;
    int busy; /* run() is folding with the GIL released: no other call may touch the state */
} Engine;

/* ------------------------------------------------------------------ the state machine */

static double ret(const Engine *e, double p1, double lp1, double p0, double lp0)
{
    if (!isnan(lp1) && !isnan(lp0))
        return lp1 - lp0;
    /* Python's max(level, |p0|, |p1|): the first of equal maxima */
    double d = e->level, a0 = fabs(p0), a1 = fabs(p1);
    if (a0 > d)
        d = a0;
    if (a1 > d)
        d = a1;
    return d > 0 ? (p1 - p0) / d : 0.0;
}

static void slide_sums(Sums *s, const Entry *h, Py_ssize_t last, double cut, double r2,
                       double size, double signed_size)
{
    Py_ssize_t tail = s->tail, n = s->n;
    double s_r2 = s->s_r2, vol = s->vol, signed_vol = s->signed_vol;
    while (tail < last && h[tail].ts <= cut) {
        s_r2 -= h[tail].r2;
        n -= 1;
        vol -= h[tail].size;
        signed_vol -= h[tail].signed_size;
        tail++;
    }
    if (tail == last) { /* window emptied: restart the sums exactly (no drift) */
        s_r2 = 0.0;
        n = 0;
        vol = 0.0;
        signed_vol = 0.0;
    }
    s->tail = tail;
    s->s_r2 = s_r2 + r2;
    s->n = n + 1;
    s->vol = vol + size;
    s->signed_vol = signed_vol + signed_size;
}

static void slide_moments(Engine *e, Moments *z, Py_ssize_t last, double cut, double price)
{
    const Entry *h = e->hist;
    Py_ssize_t tail = z->tail, n = z->n;
    double mean = z->mean, m2 = z->m2;
    while (tail < last && h[tail].ts <= cut) {
        double x = h[tail].price;
        n -= 1;
        if (n) {
            double old_mean = mean;
            mean -= (x - mean) / (double)n;
            m2 -= (x - mean) * (x - old_mean);
        }
        tail++;
    }
    if (tail == last) {
        n = 0;
        mean = 0.0;
        m2 = 0.0;
    }
    n += 1;
    z->tail = tail;
    z->n = n;
    if (e->changed <= e->dropped + tail) { /* one price throughout: exactly flat */
        z->mean = price;
        z->m2 = 0.0;
        return;
    }
    double d = price - mean;
    mean += d / (double)n;
    z->mean = mean;
    z->m2 = m2 + d * (price - mean);
}

static void compact(Engine *e)
{
    Py_ssize_t cut = e->base.tail;
    if (e->flow.tail < cut)
        cut = e->flow.tail;
    for (int k = 0; k < N_RET; k++)
        if (e->asof[k] < cut)
            cut = e->asof[k];
    for (int k = 0; k < N_Z; k++)
        if (e->z[k].tail < cut)
            cut = e->z[k].tail;
    if (cut <= COMPACT)
        return;
    memmove(e->hist, e->hist + cut, (size_t)(e->len - cut) * sizeof(Entry));
    e->len -= cut;
    e->dropped += cut;
    for (int k = 0; k < N_RET; k++)
        e->asof[k] -= cut;
    e->flow.tail -= cut;
    e->base.tail -= cut;
    for (int k = 0; k < N_Z; k++)
        e->z[k].tail -= cut;
}

/* Raw allocator: run() grows the history with the GIL released. */
static int grow(Engine *e)
{
    Py_ssize_t cap = e->cap ? 2 * e->cap : FIRST_CAP;
    if ((size_t)cap > PY_SSIZE_T_MAX / sizeof(Entry))
        return -1;
    Entry *h = PyMem_RawRealloc(e->hist, (size_t)cap * sizeof(Entry));
    if (!h)
        return -1;
    e->hist = h;
    e->cap = cap;
    return 0;
}

/* Fold one trade in; -1 when the history cannot grow (the state is then unchanged). */
static int fold(Engine *e, double ts, double price, double size, int taker_buy)
{
    if (!(isfinite(ts) && isfinite(price) && isfinite(size))) {
        e->rejected++;
        return 0;
    }
    if (e->len == e->cap && grow(e) < 0)
        return -1;
    double lp = price > 0 ? log(price) : NAN, r;
    if (e->len) {
        if (ts < e->t)
            ts = e->t;
        double dt = ts - e->t;
        if (dt > 0) { /* exact EWMAs of the step path p(t) held since the previous trade */
            e->ewma += (1.0 - exp(-dt / e->ewma_tau)) * (e->p - e->ewma);
            e->level += (1.0 - exp(-dt / e->level_tau)) * (fabs(e->p) - e->level);
        }
        r = ret(e, price, lp, e->p, e->lp);
        if (price != e->p)
            e->changed = e->dropped + e->len;
    } else {
        e->t0 = ts;
        e->ewma = price;
        e->level = fabs(price);
        r = 0.0;
    }
    double r2 = r * r, signed_size = taker_buy ? size : -size;
    Py_ssize_t last = e->len++;
    Entry *h = e->hist;
    h[last] = (Entry){ts, price, lp, r2, size, signed_size};
    e->t = ts;
    e->p = price;
    e->lp = lp;

    for (int k = 0; k < N_RET; k++) {
        double cut = ts - e->ret_w[k];
        Py_ssize_t a = e->asof[k];
        while (a < last && h[a + 1].ts <= cut)
            a++;
        e->asof[k] = a;
    }
    slide_sums(&e->flow, h, last, ts - e->flow_w, r2, size, signed_size);
    slide_sums(&e->base, h, last, ts - e->base_w, r2, size, signed_size);
    for (int k = 0; k < N_Z; k++)
        slide_moments(e, &e->z[k], last, ts - e->z_w[k], price);

    if (e->base.tail > COMPACT)
        compact(e);
    return 0;
}

static int is_ready(const Engine *e)
{
    return e->len && !(e->t - e->t0 < e->min_history) && !(e->base.n < e->min_trades);
}

/* Event time a window really covers: w, or less while history is shorter (counted from the
 * first trade, and never below min_history: not ready before that). Python's min/max. */
static double span(const Engine *e, double w)
{
    double covered = e->t - e->t0, s = e->min_history > covered ? e->min_history : covered;
    if (s < w)
        w = s > 0 ? s : w;
    return w;
}

static double log_ratio(double rate, double baseline)
{
    if (!(baseline > 0))
        return 0.0;
    double x = rate / baseline;
    return log(RATIO_FLOOR > x ? RATIO_FLOOR : x);
}

static double trade_rate(const Engine *e)
{
    return e->len ? (double)e->flow.n / span(e, e->flow_w) : 0.0;
}

/* The features after the newest trade, in FEATURE_NAMES order (needs one trade). */
static void features(const Engine *e, double *out)
{
    const Entry *h = e->hist;
    double p = e->p, lp = e->lp;
    for (int k = 0; k < N_RET; k++)
        out[k] = ret(e, p, lp, h[e->asof[k]].price, h[e->asof[k]].lp);
    const Sums *f = &e->flow, *b = &e->base;
    double span_f = span(e, e->flow_w), span_b = span(e, e->base_w);
    out[4] = f->s_r2 > 0 ? sqrt(f->s_r2 * e->flow_w / span_f) : 0.0;
    out[5] = b->s_r2 > 0 ? sqrt(b->s_r2 * e->base_w / span_b) : 0.0;
    for (int k = 0; k < N_Z; k++) {
        const Moments *z = &e->z[k];
        double std = z->m2 > 0 ? sqrt(z->m2 / (double)z->n) : 0.0;
        out[6 + k] = std > FLAT * fabs(z->mean) ? (p - z->mean) / std : 0.0;
    }
    out[8] = ret(e, p, lp, e->ewma, !isnan(lp) && e->ewma > 0 ? log(e->ewma) : NAN);
    out[9] = log_ratio((double)f->n / span_f, (double)b->n / span_b);
    out[10] = log_ratio(f->vol / span_f, b->vol / span_b);
    out[11] = f->vol > 0 ? f->signed_vol / f->vol : 0.0;
}

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
    PyMem_RawFree(self->hist); /* __init__ called again: start over from an empty state */
    memset((char *)self + sizeof(PyObject), 0, sizeof(Engine) - sizeof(PyObject));
    self->scale = scale;
    double longest = BASE_WINDOW * scale;
    self->min_history = longest < min_history ? longest : min_history;
    self->min_trades = min_trades;
    for (int k = 0; k < N_RET; k++)
        self->ret_w[k] = RETURN_WINDOWS[k] * scale;
    for (int k = 0; k < N_Z; k++)
        self->z_w[k] = Z_WINDOWS[k] * scale;
    self->flow_w = FLOW_WINDOW * scale;
    self->base_w = BASE_WINDOW * scale;
    self->ewma_tau = EWMA_TAU * scale;
    self->level_tau = LEVEL_TAU * scale;
    self->lp = NAN;
    return 0;
}

static void Engine_dealloc(Engine *self)
{
    PyMem_RawFree(self->hist);
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
    if (fold(self, v[0], v[1], v[2], taker_buy) < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *Engine_values(Engine *self, PyObject *Py_UNUSED(ignored))
{
    if (!idle(self))
        return NULL;
    double v[N_FEATURES];
    if (self->len)
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

/* One buffer argument of run(): C-contiguous, 1-byte bools ("?bB") or native doubles ("d").
 * Strides are requested and contiguity checked here so that every error names the argument. */
static int get_buffer(PyObject *obj, const char *name, int doubles, int writable, Py_buffer *view)
{
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a buffer (e.g. a numpy array), not %.100s",
                     name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_STRIDES | PyBUF_FORMAT) < 0)
        return -1;
    const char *fmt = view->format ? view->format : "B";
    if (*fmt == '@' || *fmt == '=' || *fmt == (PY_LITTLE_ENDIAN ? '<' : '>') ||
        (!PY_LITTLE_ENDIAN && *fmt == '!'))
        fmt++;
    int ok = *fmt && !fmt[1] &&
             (doubles ? *fmt == 'd' && view->itemsize == 8
                      : strchr("?bB", *fmt) != NULL && view->itemsize == 1);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s must hold %s, got buffer format '%s'", name,
                     doubles ? "float64 (format 'd')" : "bools or bytes (format '?', 'b' or 'B')",
                     view->format ? view->format : "B");
    } else if (!PyBuffer_IsContiguous(view, 'C')) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous", name);
        ok = 0;
    } else if (writable && view->readonly) {
        PyErr_Format(PyExc_ValueError, "%s must be writable", name);
        ok = 0;
    }
    if (!ok) {
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
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
        if (get_buffer(obj[held], names[held], held != 3, held >= 4, &view[held]) < 0)
            goto done;
    Py_ssize_t n = view[0].len / 8;
    const Py_ssize_t need[6] = {n, n, n, n, n * N_FEATURES, n};
    for (int k = 1; k < nviews; k++)
        if (view[k].len / view[k].itemsize != need[k]) {
            PyErr_Format(PyExc_ValueError, "%s holds %zd items; expected %zd (%zd trades%s)",
                         names[k], view[k].len / view[k].itemsize, need[k], n,
                         k == 4 ? " x 12 features" : "");
            goto done;
        }
    const double *ts = view[0].buf, *price = view[1].buf, *size = view[2].buf;
    const unsigned char *taker = view[3].buf;
    double *out = view[4].buf, *rate = nviews == 6 ? view[5].buf : NULL;
    Py_ssize_t ready = 0;
    int failed = 0;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        double *row = out + i * N_FEATURES;
        if (fold(self, ts[i], price[i], size[i], taker[i] != 0) < 0) {
            failed = 1;
            break;
        }
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
    result = failed ? PyErr_NoMemory() : PyLong_FromSsize_t(ready);
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
    if (!self->len)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(self->t);
}

static PyObject *Engine_held(Engine *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->len);
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
     "event time needed before ready: min(min_history_seconds, the longest window)"},
    {"min_trades", T_PYSSIZET, offsetof(Engine, min_trades), 0,
     "trades the longest window must hold before ready"},
    {"rejected", T_PYSSIZET, offsetof(Engine, rejected), 0, "non-finite trades skipped"},
    {"_dropped", T_PYSSIZET, offsetof(Engine, dropped), READONLY,
     "history entries compacted away (for tests)"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Engine_getset[] = {
    {"trade_rate", (getter)Engine_trade_rate, NULL,
     "Trades per second of event time over the flow window (60 s at scale 1).", NULL},
    {"last_ts", (getter)Engine_last_ts, NULL, "Newest trade time (None before any trade).",
     NULL},
    {"_held", (getter)Engine_held, NULL, "history entries held (for tests)", NULL},
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
    if (PyType_Ready(&EngineType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "Engine", (PyObject *)&EngineType) < 0 ||
        add_tuple(m, "RETURN_WINDOWS", RETURN_WINDOWS, N_RET) < 0 ||
        add_tuple(m, "Z_WINDOWS", Z_WINDOWS, N_Z) < 0 ||
        add_float(m, "FLOW_WINDOW", FLOW_WINDOW) < 0 ||
        add_float(m, "BASE_WINDOW", BASE_WINDOW) < 0 ||
        add_float(m, "EWMA_TAU", EWMA_TAU) < 0 || add_float(m, "LEVEL_TAU", LEVEL_TAU) < 0 ||
        add_float(m, "RATIO_FLOOR", RATIO_FLOOR) < 0 || add_float(m, "FLAT", FLAT) < 0 ||
        PyModule_AddIntConstant(m, "COMPACT", COMPACT) < 0 ||
        PyModule_AddIntConstant(m, "N_FEATURES", N_FEATURES) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
