/* blink._features: the rolling feature engine's state machine, in C (this header; the
 * Python type and the module around it are blink/_features.c, which includes it once).
 *
 * This is THE feature engine (blink/features.py subclasses `Engine`; docs/features.md has
 * every formula): serving, training and backtests all run this code, and `Engine.run` (arrays,
 * GIL released) equals update() + values() per trade bit for bit.
 *
 * Event-time GRID. Step g = `scale` seconds; a trade at ts belongs to step floor(ts / g). Per
 * closed step the engine keeps one record in a ring (RING steps): the step's closing price
 * (carried through empty steps), its volume, trade count and signed (taker) volume, the squared
 * one-step return, the bipower products |r_h(s)| |r_h(s-h)| for h in BV_HORIZONS, and the logs
 * of the 60-step volume and count at its close. Running sums cover the FLOW window (the last
 * FLOW steps, the open one included) and the REGIME window (s in (k-LAG-REGIME, k-LAG], k the
 * open step: LAGGED, so a move cannot inflate its own yardstick for LAG steps). A bipower
 * product enters the regime window capped at CAP times the window's mean product (once the
 * window holds CAP_MIN): a run of anomalous steps, which bipower alone does not resist, cannot
 * raise the yardstick of the hours after it more than a little. A step whose flow window had
 * no trade (a halt, a hole in a file) enters none of the regime sums. The trade count is
 * measured against the RECENT steps before the flow window instead (a surge against the
 * minutes before it), a window a silence empties. Every trade costs O(1); each step crossed
 * costs O(1) (empty steps included).
 *
 * The features after a trade are read as if its step closed now (so the value after the last
 * trade of a step is that step's grid value): see FEATURE_NAMES in blink/features.py.
 */
#ifndef BLINK_FEATURES_ENGINE_H
#define BLINK_FEATURES_ENGINE_H

#include "_cbuffer.h"
#include <math.h>


#define N_FEATURES 8
/* FORMULAS: bump on ANY change of what a feature means that the constants below do not show
   (a formula, a rule for silences or caps): a model records the engine it was trained on
   (blink/features.py ENGINE) and is not served by another */
#define FORMULAS 1
#define N_H 4
static const double HORIZONS[N_H] = {1.0, 5.0, 30.0, 300.0}; /* return horizons, steps */
#define N_BV 3   /* bipower horizons: the first N_BV of HORIZONS */
#define H_REF 30 /* the horizon whose bipower anchors the others */
#define REGIME 3600 /* steps in the regime window */
#define LAG 300     /* the regime window ends this many steps before the open step */
#define CAP 16.0    /* a bipower product enters the regime capped at CAP x the window's mean */
#define CAP_MIN 600 /* ... once the window holds this many products (= READY) */
#define FLOW 60     /* steps in the flow window: vol ratio, volume, count, imbalance */
#define RECENT 300  /* the count's yardstick: the flow windows ending in the RECENT steps
                       before the open flow window (a surge against the minutes before it) */
#define READY 600   /* closed steps before the features are ready */
#define RING 8192   /* step records kept: > LAG + REGIME + 2 * 300 (power of two) */
#define EPS_VOLUME 1e-8 /* added to a volume before its log (one satoshi) */
#define LEVEL_TAU 600.0 /* robust level L used by R() for non-positive series (steps) */
#define PI_2 1.5707963267948966

typedef struct {
    double price, lp;       /* closing price of the step (carried); lp NaN when price <= 0 */
    double vol, cnt, sv;    /* volume, trades and signed volume in the step */
    double r1sq;            /* squared one-step return */
    double prod[N_BV];      /* bipower products; NaN while the history is too short */
    double lv, ln;          /* log(V_60 + EPS_VOLUME), log(N_60 + 1) at the step's close;
                               NaN when that window had no volume / no trade (a silence) */
} Step;

typedef struct {
    PyObject_HEAD
    double scale, min_history;
    Py_ssize_t min_trades, rejected, trades;
    double level_tau;
    Step *ring;
    long long first, open; /* absolute step numbers: the first trade's, the newest trade's */
    double o_vol, o_cnt, o_sv;               /* the open step so far */
    double f_vol, f_cnt, f_sv, f_r2;         /* closed steps (open - FLOW, open - 1] */
    double g_prod[N_BV], g_lv;              /* closed steps (open-LAG-REGIME, open-LAG] */
    Py_ssize_t g_nprod[N_BV], g_nlv;        /* regime steps with a product / volume */
    double c_ln;                /* closed steps (open-FLOW-RECENT, open-FLOW], from c_from on */
    Py_ssize_t c_nln;           /* ... how many */
    long long c_from;           /* the first step whose flow window is past the last silence
                                   (the first step until one) */
    Py_ssize_t g_pos[N_BV], f_pos; /* positive terms in the sums: none = exactly zero */
    double t0, t, p, lp, p0, lp0, level;
    int busy; /* run() is folding with the GIL released: no other call may touch the state */
} Engine;

/* ------------------------------------------------------------------ the state machine */

static inline Step *at(const Engine *e, long long k)
{
    return &e->ring[k & (RING - 1)];
}

/* R(a, b): log(a / b) for positive prices, else (a - b) / max(L, |a|, |b|) */
static double ret(const Engine *e, double p1, double lp1, double p0, double lp0)
{
    if (!isnan(lp1) && !isnan(lp0))
        return lp1 - lp0;
    double d = e->level, a0 = fabs(p0), a1 = fabs(p1);
    if (a0 > d)
        d = a0;
    if (a1 > d)
        d = a1;
    return d > 0 ? (p1 - p0) / d : 0.0;
}

/* closing price of step k (k < open), the first trade's before the first step closed */
static void price_at(const Engine *e, long long k, double *p, double *lp)
{
    if (k < e->first) {
        *p = e->p0;
        *lp = e->lp0;
    } else {
        const Step *s = at(e, k);
        *p = s->price;
        *lp = s->lp;
    }
}

static double step_ret(const Engine *e, long long a, long long b)
{
    double pa, la, pb, lb;
    price_at(e, a, &pa, &la);
    price_at(e, b, &pb, &lb);
    return ret(e, pa, la, pb, lb);
}

static void regime_add(Engine *e, Step *s, double sign)
{
    for (int b = 0; b < N_BV; b++)
        if (!isnan(s->prod[b]) && !isnan(s->ln)) { /* the market traded around it */
            if (sign > 0 && e->g_nprod[b] >= CAP_MIN && e->g_prod[b] > 0) {
                double cap = CAP * e->g_prod[b] / (double)e->g_nprod[b];
                if (s->prod[b] > cap)
                    s->prod[b] = cap;
            }
            e->g_prod[b] += sign * s->prod[b];
            e->g_nprod[b] += (Py_ssize_t)sign;
            e->g_pos[b] += s->prod[b] > 0 ? (Py_ssize_t)sign : 0;
            if (!e->g_pos[b]) /* only zero products left: no rounding residue */
                e->g_prod[b] = 0.0;
        }
    if (!isnan(s->lv)) {
        e->g_lv = (e->g_nlv += (Py_ssize_t)sign) ? e->g_lv + sign * s->lv : 0.0;
    }
}

/* Add (sign +1) or drop (-1) a closed step in the count's recent window (never a silent
   one: a silence moves c_from past every window that overlaps it). */
static void recent_add(Engine *e, const Step *s, double sign)
{
    e->c_ln = (e->c_nln += (Py_ssize_t)sign) ? e->c_ln + sign * s->ln : 0.0;
}

/* Close the open step j and open j + 1 (carrying the price). */
static void close_step(Engine *e)
{
    long long j = e->open;
    Step *s = at(e, j);
    s->price = e->p;
    s->lp = e->lp;
    s->vol = e->o_vol;
    s->cnt = e->o_cnt;
    s->sv = e->o_sv;
    double r1 = j > e->first ? step_ret(e, j, j - 1) : 0.0;
    s->r1sq = r1 * r1;
    for (int b = 0; b < N_BV; b++) {
        long long h = (long long)HORIZONS[b];
        s->prod[b] = j - 2 * h >= e->first
                         ? fabs(step_ret(e, j, j - h)) * fabs(step_ret(e, j - h, j - 2 * h))
                         : NAN;
    }
    double v60 = e->f_vol + s->vol, n60 = e->f_cnt + s->cnt;
    s->lv = v60 > 0 ? log(v60 + EPS_VOLUME) : NAN;
    s->ln = n60 > 0.5 ? log(n60 + 1.0) : NAN;
    /* the flow window of step j + 1: add j, drop j + 1 - FLOW */
    e->f_vol += s->vol;
    e->f_cnt += s->cnt;
    e->f_sv += s->sv;
    e->f_r2 += s->r1sq;
    e->f_pos += s->r1sq > 0;
    long long out = j + 1 - FLOW;
    if (out >= e->first) {
        const Step *o = at(e, out);
        e->f_vol -= o->vol;
        e->f_cnt -= o->cnt;
        e->f_sv -= o->sv;
        e->f_r2 -= o->r1sq;
        e->f_pos -= o->r1sq > 0;
    }
    if (!e->f_pos)
        e->f_r2 = 0.0;
    if (e->f_cnt < 0.5) /* no trade in the window: exact zeros, no drift */
        e->f_vol = e->f_cnt = e->f_sv = e->f_r2 = 0.0;
    /* the regime window of step j + 1: add j + 1 - LAG, drop j + 1 - LAG - REGIME */
    long long in = j + 1 - LAG;
    if (in >= e->first)
        regime_add(e, at(e, in), 1.0);
    if (in - REGIME >= e->first)
        regime_add(e, at(e, in - REGIME), -1.0);
    /* the count's recent window of step j + 1: add j + 1 - FLOW, drop j + 1 - FLOW - RECENT;
       a silence (a flow window without a trade) empties it: the windows that overlap it are
       no yardstick of activity (trading resuming after a halt or a hole is not a surge) */
    if (isnan(s->ln)) {
        e->c_ln = 0.0;
        e->c_nln = 0;
        e->c_from = j + FLOW;
    }
    long long c = j + 1 - FLOW;
    if (c >= e->c_from)
        recent_add(e, at(e, c), 1.0);
    if (c - RECENT >= e->c_from)
        recent_add(e, at(e, c - RECENT), -1.0);
    e->open = j + 1;
    e->o_vol = e->o_cnt = e->o_sv = 0.0;
}

static void fold(Engine *e, double ts, double price, double size, int taker_buy)
{
    if (!(isfinite(ts) && isfinite(price) && isfinite(size))) {
        e->rejected++;
        return;
    }
    double lp = price > 0 ? log(price) : NAN;
    if (e->trades) {
        if (ts < e->t)
            ts = e->t;
        double dt = ts - e->t;
        if (dt > 0) /* exact EWMA of |p| over the step path held since the previous trade */
            e->level += (1.0 - exp(-dt / e->level_tau)) * (fabs(e->p) - e->level);
        long long k = (long long)floor(ts / e->scale);
        while (e->open < k)
            close_step(e);
    } else {
        e->t0 = ts;
        e->first = e->open = e->c_from = (long long)floor(ts / e->scale);
        e->level = fabs(price);
        e->p0 = price;
        e->lp0 = lp;
    }
    e->t = ts;
    e->p = price;
    e->lp = lp;
    e->o_vol += size;
    e->o_cnt += 1.0;
    e->o_sv += taker_buy ? size : -size;
    e->trades++;
}

static int is_ready(const Engine *e)
{
    return e->trades && e->open - e->first >= READY && !(e->t - e->t0 < e->min_history) &&
           e->trades >= e->min_trades;
}

static double flow_steps(const Engine *e)
{
    long long n = e->open - e->first + 1;
    return (double)(n < FLOW ? n : FLOW);
}

static double trade_rate(const Engine *e)
{
    return e->trades ? (e->f_cnt + e->o_cnt) / (flow_steps(e) * e->scale) : 0.0;
}

/* The features after the newest trade, in FEATURE_NAMES order (needs one trade). */
static void features(const Engine *e, double *out)
{
    long long k = e->open;
    double bv[N_BV];
    for (int b = 0; b < N_BV; b++)
        bv[b] = e->g_nprod[b] > 0 ? PI_2 * e->g_prod[b] / (double)e->g_nprod[b] : 0.0;
    double sig[N_H];
    double ref = bv[2] > 0 ? sqrt(bv[2]) : 0.0; /* H_REF = HORIZONS[2] */
    for (int b = 0; b < N_BV; b++) {
        double floor_ = ref * sqrt(HORIZONS[b] / H_REF), own = bv[b] > 0 ? sqrt(bv[b]) : 0.0;
        sig[b] = own > floor_ ? own : floor_;
    }
    sig[3] = ref * sqrt(HORIZONS[3] / H_REF);
    double r1 = 0.0;
    for (int h = 0; h < N_H; h++) {
        double pb, lb;
        price_at(e, k - (long long)HORIZONS[h], &pb, &lb);
        double r = ret(e, e->p, e->lp, pb, lb);
        if (h == 0)
            r1 = r;
        out[h] = sig[h] > 0 ? r / sig[h] : 0.0;
    }
    double r2 = e->f_r2 + r1 * r1, mean = r2 > 0 ? r2 / flow_steps(e) : 0.0;
    double x = sig[0] > 0 && mean > 0 ? 0.5 * log(mean / (sig[0] * sig[0])) : 0.0;
    out[4] = x > 0 ? x : 0.0;
    double vol = e->f_vol + e->o_vol, cnt = e->f_cnt + e->o_cnt;
    x = e->g_nlv ? log(vol + EPS_VOLUME) - e->g_lv / (double)e->g_nlv : 0.0;
    out[5] = x > 0 ? x : 0.0;
    x = e->c_nln ? log(cnt + 1.0) - e->c_ln / (double)e->c_nln : 0.0;
    out[6] = x > 0 ? x : 0.0;
    out[7] = vol > 0 ? (e->f_sv + e->o_sv) / vol : 0.0;
}

#endif /* BLINK_FEATURES_ENGINE_H */
