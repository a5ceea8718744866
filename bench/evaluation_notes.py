"""The diagnosis section of docs/evaluation.md: what the misses of issue 13 were traced to,
what changed, and what did not work (`bench.evaluation_doc.render` puts it after the
targets). Plain text with the figures measured while diagnosing (each with its command);
the tables around it are this run's.
"""

from __future__ import annotations

# measured by this harness on main 860d7fc (see the module docstring); None: not measured
TODAY: dict[str, float | None] = {
    'recall_price_jump': 0.3838,
    'recall_volatility_burst': 0.0202,
    'recall_volume_spike': 0.0,
    'recall_flash_crash': 0.32,
    'fa_stream rate': 0.0,
    'fa_realistic rate': 6.3642,
    'delay_price_jump': 0.1985,
    'delay_flash_crash': 24.179,
    'bars_f1': 0.2719,
    'bars_margin': -0.1297,
    'raw_fa': 12.9651,
}

NOTES = """## What the misses were traced to (this run's changes)

**This run (session 8): a family of real moves, a yardstick with a longer memory,
and activity measured against the minutes before it.**

*Real moves labelled by an objective rule* (§5, `bench/moves.py`). The team is measured on
held-out minute bars whose event windows come from an objective rule, and was told Blink
catches 40–50 % of those events there, about 24 minutes after a window opens, at about one
false alarm a day. The raw days here had no labels at all (every alert counted false), so
nothing in this harness could see that. The new family labels the raw days with a fixed,
detector-blind rule (a close at least 2 % from the high or low of the 30 minutes before it;
the window from that high or low to the last minute that completes such a move): 19 moves
on the 9 days, none on the calm 2016 stretch, 9 on 2017-09-04. A first version opened each
window at the earliest minute from which 2 % was reached within 30 minutes, up to 30 flat
minutes before a sharp move (its unit test showed it): it inflated every delay (1,680 s on
main), and was fixed before the figures below. On main: 8 of 19 caught (0.42), a median
delay of 955 s, 1.3 other alerts a day. Per move (a script printing score_raw ÷ threshold
inside each window): the 2017-09-04 moves after the morning's fall peaked at 0.1–0.6 of
the threshold: within a few hours the morning's turmoil had become the yardstick (the
regime window was 1,800 grid steps: 7.5 h on 1-minute bars, lagged 75 min).

*The regime window doubled* (`blink/_features.c` REGIME 1800 → 3600 steps: 1 h live, 15 h on
bars; twelve times the longest return horizon instead of six), so that an afternoon of swings
is measured against the day it interrupts. Measured with the same seeds, 1800 → 3600 (and
7200, 30 h, for the shape of the trade-off): real moves caught 8 → 9 of 19, other alerts
1.3 → 1.5 a day, median delay 955 → 870 s; bars with injections F1 0.399 → 0.455 (large
0.484 → 0.560 (0.507), small 0.320 → 0.354 (0.367)); raw days 2.4 → 2.9 (3.8) alerts a
day; the demo-rate stream recall 0.860 → 0.868 with false alarms 24.0 → 22.6 a day
(volatility bursts 0.86 → 0.92: that target is now met; volume spikes 0.65 → 0.64, flash
crashes 0.96 → 0.94); realistic rate 0.625 → 0.583 (one volume spike fewer, still no false
alarm) and at its own budget 0.750 → 0.667 (one burst and one spike fewer; false alarms 0.2
→ 0.0 a day); plain series F1 0.445 → 0.448 (a 12-day 5-minute series holds fewer steps than
either window). 7200 overshoots: a wild day is measured against a calmer one for too long
(raw 3.8 a day) and the large copies lose. The cost is the raw-days target: 2.9 alerts a day
against ≤ 2 (1.45 times the budget, within the ×2 promise); about half of them overlap a
real 2 % move, which that target counts as false.

*The trade count against the minutes before it* (`count_surprise_60`; `docs/features.md`).
On seed 1 of the demo-rate stream (a script printing each volume spike's features and
score_raw ÷ threshold), the missed spikes had count surprises of 0.65–1.7 (×1.9–5.5) for a
×6–10 burst in the order rate, at 0.24–0.93 of the threshold; the hits had 2.0–3.3. The
lagged 1-hour regime is the wrong yardstick for activity: the trade rate wanders by e^±0.5
within the hour (the simulation's log-normal rate regime has a 10-minute memory; real
markets' activity clusters alike), so a burst in a quiet spell reads small and a busy half
hour reads as a surge. The count is now measured against the flow windows of the 300 steps
before the current one (5 minutes live), emptied by a silence so that trading resuming
after a halt or a hole is not a surge (the hole test caught that: 2.35 before the reset).
Measured (regime → recent, same seeds): demo rate recall 0.868 → 0.914, volume spikes 0.64
→ 0.81, volatility bursts 0.92 → 0.94, false alarms 22.6 → 21.1 a day; realistic rate
unchanged (0.583, no false alarm; its volume spikes stay at 0 of 7: the threshold there sits
among the crashes and jumps of the calibration day); at its own budget 0.667 → 0.750 (a
burst and a spike more, no false alarm). Bars and series do not use the count: unchanged.

*HST now sees the forest's columns.* `bench/hst.py` fed river's HalfSpaceTrees the whole
feature vector, while the forest uses the input's columns (on bars the price columns and the
volume; the trade count and the imbalance of bars are made up). When the count's definition
changed, HST's bar figures moved although no column it should have used did (raw days 0.8 →
0.4 alerts a day, real moves 7 → 1 of 19): on bars the count had become a constant column
that HST still split on. It is now fed the forest's used columns (`trainer.used_columns`;
`tests/unit/test_bench_evaluation.py`), as the comparison "on equal information" says; the
HST figures in this run's tables are with that fix, the forest's and the baseline's are
unchanged by it.

*What the knob buys* (§5, `moves-knob`): the same moves at `alerts_per_day` = 3 instead of
the default 2: 12 of 19 caught (0.63) with 2.4 other alerts a day and a median delay of
720 s; the raw days then alert 4.3 times a day (bars with injections at 3 a day, measured
once by hand: F1 large 0.612, small 0.396). The default stays 2: it is the issue's own
false-alarm target, and the raw days already alert 1.45 times the budget at it.

*Tried this run and dropped* (each measured with the same seeds, on bars, moves and series):
(1) a fifth return horizon, z_120 (30 minutes on bars), filling the ×10 gap between 30 and
300 steps where a move of ~100 steps is seen at ~0.56 of its matched-horizon size: raw days
2.9 → 2.6 alerts a day and moves 9 of 19 at 1.3 (not 1.5) other alerts a day, but bars with
injections lost (large F1 0.560 → 0.525, small 0.354 → 0.319): the extra term spends the
budget on slow moves that the injected, faster anomalies needed. (2) The budget folding
events as the tracker does (held open by scores past the release level, the level and its
hold solved by fixed-point iteration; a unit test checked its count equals the tracker's
events exactly): the forest's and the baseline's events came out identical on every family
run (bars, raw, moves, series; HST moved by one event): the base level sits above the hold,
where the two foldings agree. The leftover of session 7 ("the budget overcounts what the
tracker emits") is measured to be immaterial; the code was not kept.

**The run before (session 7): continuous stretches, a yardstick a run of large steps cannot
inflate, silences left out of it, and one event per episode.** Four changes, measured one at
a time with the same seeds.

*The bar days are no longer cut apart.* Each of the 9 days was its own segment, so every
day paid the warm-up (the first served model comes ~7 h into a day of 1-minute bars) and
its first hours were never scored. Consecutive days are now one continuous stretch
(2016-10-07..09, 2017-09-03..04, 2017-12-17, 2018-04-04..06), as a live service or a long
file of bars sees them. Same detector, per-day → continuous: bars F1 0.384 → 0.293 (large
copies 0.458 → 0.409, small 0.302 → 0.185), raw days 2.2 → 2.8 alerts a day. The drop is
what the days' first hours add: the 2017-09-04 morning (a 3.5 % fall in an hour) and the
turbulent 2017-12-17 are now scored, with history behind them; they were warm-up before.
The figures below are on the continuous stretches.

*Capped bipower products.* Traced in session 6: σ_h, the bipower mean over the regime
window, resists one jump but not a RUN of large steps; after an injected −5 % crash the
yardstick stayed inflated for the 7.5 h the crash took to leave the window, and a 2 % jump
4 h later had |z_1| 18.8 instead of 409. A median yardstick removed that but made the
yardstick deaf to real rises in volatility (raw days 4.3 alerts a day). Now each product
enters the window capped at 16 times the window's mean product (once it holds 600): out of
reach for normal steps (both returns beyond ~3.2σ), ~100 times below an 8σ run, and a real
doubling of volatility passes under it (`docs/features.md`). On a test crash of 60 steps of
−8σ and back, σ after it is 1.9 times the clean one instead of 9 times. Measured (without
→ with the cap): bars F1 0.293 → 0.368 (large 0.409 → 0.458, small 0.185 → 0.282), raw
days 2.8 → 2.9 alerts a day; the demo-rate stream (anomalies every 10–20 minutes: the
30-minute regime window always holds some) recall 0.810 → 0.85 (volatility bursts 0.69 →
0.85, crashes 0.91 → 0.96, jumps 0.95 → 0.97, volume spikes 0.69 → 0.64) with false
alarms 36.3 → 33.3 a day; realistic rate and plain series unchanged (0.625 with no false
alarm; 0.296). The cap's two constants were checked, not searched: 8 times the mean
trimmed real moves too (raw days 3.4 a day), 50 times left the small copies as they were;
starting the cap at 100 products instead of 600 gave the same continuous figures and 0.1
more alerts a day on the old per-day split. Tried again on the continuous stretches and
dropped: the bars' grid at one step per bar (z_1 close-to-close, no made-up intra-bar
path): raw days 5.8 alerts a day (z_1 leads 23 of 38), large-copy F1 0.200.

*Silences left out of the regime.* Seen on a plot of the raw stretches with their alerts:
the 2018-04 file has a 7-hour hole (04-04 stops at 16:47); the regime window after it was
made of the hole's empty steps, so the first trades read "15-min volume 15,801,452,249× its
usual" (the usual volume of an empty window is log(1e-8)) and the next hour's returns
27–88σ (zero returns had shrunk the yardstick): one alert of two hours and four more, all on
the hole, while the −2.6 % fall at 04-06 06:00 raised none. A regime step whose 60-step
window had no trade now enters none of the regime means (`docs/features.md`). Measured
(before → after, same seeds): bars F1 0.368 → 0.397 (large 0.458 → 0.490, small 0.282 →
0.309); raw days 2.9 → 3.3 alerts a day, all of the change on 2018-04-04..06 (5 → 8): the
hole's five alerts are gone and the stretch's visible moves take their place (04-05 13:43,
+2.9 % in 30 minutes; 04-06 06:01, the −2.6 % fall); the
demo-rate stream 0.858 → 0.855, realistic rate and series unchanged.

*One episode, one event (hysteresis).* The plots also showed one episode alerted many
times: `event_gap_seconds` (120 s) is two bars on 1-minute bars, and the 2017-09-04 morning
fall (4,570 → 4,400 in two hours) was 11 events, its scores hovering around the threshold.
An open event is now held by scores past the release level, half-way from the calibration
scores' median to the threshold (on the tails' log10 probabilities: half the threshold, the
square root of its probability), when they come within the gap (`blink/detect/events.py`,
`ServedModel.release`; the budget still counts events by the gap alone, so at a threshold
the tracker emits at most what the budget counted). Measured (before → after): raw days
3.3 → 2.4 alerts a day (2017-09-03..04: 12 → 5), bars F1 0.397 → 0.399 (large 0.490 →
0.484, small 0.309 → 0.320), the demo-rate stream's false alarms 33.3 → 24.0 a day at the
same recall (0.86), realistic rate and series unchanged. Tried before it, and not shipped:
the gap itself in grid steps like every other window (120 steps: 30 min on bars): raw 2.9
→ 2.5 a day with bars F1 unchanged, but 10 h on the 5-minute series, where events merged
across labelled anomalies 8–16 h apart (up to 25 h long, 5 of 25 events covering two
windows: recall that is not detection); a gap of the flow window (15 min on bars, 5 h on
series): raw 3.3 → 2.9, bars large F1 0.490 → 0.440, series events still covering two
windows; a gap of 5 rows: bars F1 0.337.

Still missed (continuous stretches): bars F1 0.399 (target 0.7; the baseline, on the same
features' yardstick, 0.337); raw days 2.4 alerts a day (target ≤ 2): 5.3 a day on
2017-12-17 and 2.9 on 2017-09-03..04 and on 2018-04-04..06, 0.7 on the calm 2016 stretch.
The budget is calibrated on the last day, so a market turning wild is alerted on above the
budget until its calibration window holds the turmoil; whether those alerts are false is
what a labelled real family would tell.

Also tried this session and dropped: combining the terms' surprises (the largest plus every
other term's excess over its 1 % tail, a truncated-product rule for joint evidence): raw
days 2.2 → 4.2 alerts a day on the per-day split (3.7 with the 10 % tail), series recall
0.296 → 0.259: the budget holds worse on the heavier-tailed sum. The bars without z_1 (the
quarter-bar move along the made-up intra-bar path), on the continuous stretches: small F1
0.309 → 0.363, large unchanged, raw days 3.3 → 3.8 a day.

**The run before (session 5): a second trim pass.** Traced on one bar day (2016-10-08,
large copy; a script
printing every fit's tail tables and thresholds): after the −5 % crash injected at 16:00,
pass 1 of the trim trimmed 1 % of the rows, because it scores the rows it learned from and
the crash's rows WERE its tails (z_1: base level u = 13.3, σ = 29.7; z_30: u = 80); the
final tails kept them, and the 2 % jump at 20:00 (z_1 = 18) scored S = 3.1. Now the model
refitted without pass 1's events re-scores every training row and trims what IT would alert
on (`TRIM_PASSES` = 2; an event too long for the cap loses its most extreme rows instead of
being skipped whole): on that day z_1's tail after the crash became u = 8, σ = 2.7. Measured
with `--family` (same seeds; before → after): plain series recall 0.167 → 0.296 (level
shifts 8 → 11 of 18, spikes 1 → 5 of 20), realistic-rate synthetic 0.583 → 0.625 with no
false alarm, bars F1 0.384 → 0.384, raw real days 2.1 → 2.2 alerts a day; this full run
adds the demo-rate stream: recall 0.802 → 0.810 (flash crashes 0.90 → 0.91, jumps 0.93 →
0.95), false alarms unchanged (36.3 a day at its budget of 100). The cost: one more forest
and walk per retrain.

**Traced in session 6 (no rule changed then; figures on the per-day split).** On the bars' large
copies, 8 of the 9 first anomalies of a day are caught and 3 of the 17 later ones, whose
lowest scores are tiny (a 2 % jump 4 h after a −5 % crash: −1.96 against a threshold of
−10.6). Two causes. (1) *The yardstick remembers the earlier anomaly for hours*: σ_h is a
bipower MEAN over the regime window (1,800 steps lagged 300: 9 h of the bars' 15-s grid),
robust to one jump but not to a move over many steps, and σ_30's floor carries that to σ_1
and σ_5. Max |z_1| inside the later window with every injection vs with the earlier ones
undone: 18.8 vs 409 (jump after crash, 2016-10-09), 18.3 vs 293 (2016-10-08), 1.1 vs 15.8 (a
×5 burst after a jump). A median yardstick (σ_h = median |r_h| over the window / 0.6745)
removes it (513 vs 577, 452 vs 503, 32.8 vs 37.5) but was not shipped: alone it moved bars
F1 large 0.458 → 0.429 and small 0.302 → 0.328, and raw real days 2.2 → 4.3 alerts a day
(real turmoil no longer damps the yardstick after it). (2) *With clean features the scores
stay low* (that jump: |z_1| 513, score −3.0 against −14.4): the trim drops most of the
earlier crash (48 of its 52 grid rows at every later fit; a script spying on
`budget.alert_trim`), but tails fitted on a handful of episodes take in what is left: at
that day's last fit z_30's tail rests on 2 episodes with σ = 37.7 above u = 7.7, and z_1's on
24 with ξ = 0.43 (the bars' made-up intra-bar path gives z_1 heavy tails), so |z_1| = 18.8 is
a 2·10^−4 tail, and with ξ near the 0.5 clip a tail probability falls only as a power of
the value. Both together (the median yardstick, and pass 1 of the trim reading an
exponential tail through each column's median and 90th percentile): bars F1 large 0.441,
small 0.308, raw days 4.9 a day: no better. Also tried: the bars' grid at one step per bar
(z_1 close-to-close): 4× the warm-up, 16 windows scored, forest recall 0.125 (large)
against the baseline's 0.375.

Still missed on that day, and why: the threshold in force at 20:00 was −16.6, because the
calibration rows hold the crash (S ≈ 62) and the budget's GPD on ~24 event peaks took
ξ = 0.5. Tried and dropped, each measured on bars, raw days, the realistic rate and
series: (1) the budget's GPD with outliers removed by a generalised-ESD test on the event
peaks (α = 0.01): thresholds after the crash fell to −4…−7, realistic-rate recall 0.583 →
0.75 but 1.5 false alarms a day, raw days 2.1 → 2.6 (with the trim below 3.4), bars F1
0.384 → 0.343; at α = 0.001 bars were unchanged; (2) the budget's tail as an exponential
with a median-based scale (ξ = 0, robust σ): raw days 5.3 a day; (3) hysteresis extents for
the trim (an event's rows down to the one-an-hour level): bars F1 0.402, raw days 2.6;
(4) a contamination-proof first look for the trim (the exponential tail through each
column's median and 90 % quantile, which an anomaly under a tenth of the window cannot
move): series recall 0.333, raw days 2.9. Each trims or alerts more, and on unseen raw
days the tails that forgot the normal extremes alert more: the budget's promise (2.1 → 2.2)
was kept instead.

Misses that are the data's, not the rule's (session 5, per-day split, per-window scores): on
2017-09-03 (a wild day) the −5 % flash crash over 5 minutes is a 5σ move at the 5-minute
horizon and scored −2.8 against a threshold of −5.9; the ×5 volatility burst scored −1.9:
that day's `volratio_60` has its 99th percentile at 1.49 (15-minute volatility 4.4× the
lagged regime's, from the day itself), so ×5 is within the day's range. Small copies (a
0.5 % jump) are 2–4σ moves on 1-minute bars of 2016–2018, as common as ordinary wicks
(z_1 of 15σ happen without injection): no threshold finds them at ≤ 2 alerts a day.

**The previous run** (session of 2026-12-06):
Net effect against the previous run of this harness (main fbda331, same seeds), with this
run's forest built by Blink's own isolation-tree builder (`blink/model/_grow.c`; it replaced
sklearn's fit: the same algorithm, other random trees): plain series recall 0 → 0.167 (level
shifts 0 → 8 of 18); real bars with injections F1 0.246 → 0.384 (baseline 0.302); raw real
days 2.1 → 2.1 alerts a day for a budget of 2 (×1.04; with sklearn's trees and the same
rules, 2.6); synthetic demo rate recall 0.777 → 0.802; realistic rate recall 0.667 → 0.583
at the default budget (one price jump and one volatility burst fewer, one false alarm) and
0.750 with 0.2 false alarms a day at a budget of its own rate. Still missed, listed above.

Figures in this section were measured while diagnosing, with `python -m bench.evaluation
--family NAME` (one family of this harness, same seeds) and the scripts' numbers quoted; the
tables below are this run's.

**Plain series, recall 0 of 54 (was).** Not readiness: the regime window does grow from what
exists (300 steps at READY = 600), and σ_1 at a series' first ready step was within 10 % of its
value later on (seed 1: 0.0337 at step 679, 0.030–0.036 to the end). Two rules in the model
were the cause, both visible in every fit of seed 1:

- *The thresholds sat at −22 to −126* (score_raw of the anomalies: −1 to −2.4). The budget
  reads out-of-fold calibration scores, and a half-model scored the other half's
  `volratio_60` of 0.61 at S = 35: its tail above u = 0.14 was fitted on a few episodes of
  a feature with a point mass at 0, σ = 0.006, and the exponential tail (ξ clipped to 0)
  turned a value a little past the training range into a probability of 10^−35. Fix
  (`blink/model/tails.py`): the GPD scale is floored at (u − median) / ln 50, the
  exponential tail the body's own spread implies. Thresholds on seed 1 became −3.9 to −9.1.
- *Nothing was ever trimmed* (`trimmed_fraction` 0.0 in every series fit): each event was
  dropped with 300 grid steps after it, and the loop stopped at the first event that did not
  fit the cap (5 % of a 2,000-row window = 100 rows < 300). The z_1 tail was then fitted on
  the series' own past anomalies (one every 8–16 h, ~1 % of the rows: the whole tail), and
  a new 9σ level shift scored S ≈ 3, as common. Fix (`blink/model/budget.py`,
  `trainer.py`): the guard after an event is the event gap, and an event too long for what
  is left of the cap is skipped, not the end of the loop. With both, the next level shifts
  after fits at steps 1,500 and 2,500 scored −5.0 to −7.7 against thresholds of −3.9 and
  −5.2 (spikes −1.1 to −2.0: below them, see the yardstick).

Left as found: the yardstick is a number of grid steps (1,800, lagged 300), so on 5-minute
samples it spans 6.25 days ending 25 h ago. The generated metric's noise is additive while
level shifts and drifts multiply the level (×4–6 by day 12), so late spikes (6–12 noise sd)
are only 1.7–3 σ_1 of the stale yardstick: the spike misses at the end of each series are
the feature's, not the score's. Drifts (25–50 % over 3–6 h) are missed by every detector.

**Real bars with injections.** Per missed window (large copies, days 1–4): the model was
ready and promoted at every window (17–18 fits a day, all promoted); missed jumps had a
feature far from extreme against its tail (a 2 % jump at 20:00 on 2016-10-08: z_1 = 18.3,
S = 3.1, because that window's z_1 tail, ξ 0.24 and σ 3.0, had been fitted on the −5 %
crash injected at 16:00 the same day (z_1 −165); trim's cap was spent before reaching it),
and the threshold sat above them (−16.9: the calibration window held that crash, S = 62,
and the budget's GPD on 14 event peaks took ξ = 0.5). Each bar day is its own segment with
three anomalies in its ~17 scored hours: more anomalies than the budget of 2 a day allows,
so by the budget's definition (events a day in the calibration window, every event
counting) the threshold must sit among them.

**Synthetic volume spikes at the realistic rate (0 or 1 of 7).** The feature sees them
(`volume_surprise_60` 3.1–3.2, ×21–25 the regime's volume; its 99th percentile 1.6–2.2), but
S ≈ 3.6 and score_raw ≈ −2.7, while thresholds were −10 to −16: the calibration day holds
flash crashes (S ≈ 50) and jumps. The "realistic" spacing of 3–6 h is 4–8 anomalies a day,
above the default budget of 2 a day: the same contradiction as on bars, and the reason the
≥ 0.9 recall with ≤ 1 false alarm a day cannot be met by a budget of 2 a day here.

**Which events the trim drops.** With the trim working, the old level (events above the
window's one-event-an-hour level, 12 times the default budget) trimmed ordinary rare moves
too: the tails forgot them, and unseen raw real days alerted 4.8 times a day for a budget of
2 (`--family bars`: bars F1 large 0.445, small 0.317; series recall 0.315). Shipped: the
trim drops what pass 1 would ALERT on (its own budget threshold): raw days 2.6 a day, series
recall 0.167, bars F1 0.467 large and 0.287 small with sklearn's trees (`--family`); this
run's tables, with Blink's builder: 2.1 a day, 0.167, 0.467 and 0.293. The budget's
promise is the one to keep on data nobody labelled.

**Bars' volume.** Before these changes 7 of 13 false alarms on raw days were led by
`volume_surprise_60` (volumes real, untouched by the injections); after them it leads
none of 16 (z_5 5, volratio_60 4, z_1 3, z_30 2, z_300 2). Its weight was left equal: the
false alarms it led went with the tail floor and the trim, without weighting it down, and
on real data with an objective event rule a volume surge may well be an event.

**Tried and dropped** (measured, not shipped): scoring pass 1 of the trim out of fold (a
half-model per half, as the calibration does) so that an anomaly cannot hide behind the
tails it shaped. On bars it cut F1 (large copies 0.445 → 0.286, small 0.317 → 0.258) and
on series recall (0.315 → 0.074): half-models flag the drift of a nonstationary window
(novelty), and the cap is spent on it instead of the anomalies. Raw days improved
(4.8 → 2.9 a day). The same with the alert-level trim: bars large F1 0.391, raw days
2.7 a day."""

