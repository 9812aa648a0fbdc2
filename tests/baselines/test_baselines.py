"""The classical baselines against hand computations on excerpts of the real datasets.

Excerpts: tests/data/fixtures/real/ (README there says where each comes from).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnkit.baselines import forecast, nearest, tagging, word_forms
from rnnkit.baselines.formats import read_columns_tagged, read_slash_tagged, read_ts
from rnnkit.errors import DataFormatError
from rnnkit.tasks.spans import get_spans

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "real"


def _nile10() -> np.ndarray:
    lines = (FIXTURES / "nile_head10.csv").read_text().split()[1:]
    return np.asarray([float(line.split(",")[1]) for line in lines])


def test_mase_on_ten_nile_years_by_hand():
    y = _nile10()  # 1120 1160 963 1210 1160 1160 813 1230 | 1370 1140
    assert y.tolist() == [1120, 1160, 963, 1210, 1160, 1160, 813, 1230, 1370, 1140]
    # m = 1: in-sample |diffs| of the 8 training years 40+197+247+50+0+347+417 = 1298 over 7
    assert forecast.mase_scale(y[:8], 1) == pytest.approx(1298 / 7)
    scores = forecast.evaluate(y, n=8, m=1, max_order=1)["origin"]
    # naive holds 1230: errors 140, 90, MAE 115
    assert scores["naive_mase"] == pytest.approx(115 / (1298 / 7))
    # drift: slope 110/7, forecasts 1230 + 110/7, 1230 + 220/7: MAE (870/7 + 850/7) / 2
    assert scores["drift_mase"] == pytest.approx((860 / 7) / (1298 / 7))
    # mean of the 8 years = 8816 / 8 = 1102: errors 268, 38
    assert scores["mean_rmse"] == pytest.approx(np.sqrt((268**2 + 38**2) / 2))
    # m = 2: scale (157+50+197+50+347+70)/6 = 871/6; seasonal naive repeats 813, 1230
    seasonal = forecast.evaluate(y, n=8, m=2, max_order=1)["origin"]
    assert seasonal["seasonal_naive_mase"] == pytest.approx(((557 + 90) / 2) / (871 / 6))


def test_one_step_forecasts_use_the_true_past():
    y = _nile10()
    # persistence one step ahead: 1230 for 1370, then 1370 for 1140: errors 140, 230
    scores = forecast.evaluate(y, n=8, m=1, max_order=1)["one_step"]
    assert scores["naive_mase"] == pytest.approx(185 / (1298 / 7))


def test_mean_mase_averages_per_series_not_pooled_errors():
    small, large = np.array([1.0, 2, 3, 4, 6]), np.array([100.0, 200, 300, 400, 600])
    per_series = [
        forecast.evaluate(s, n=4, m=1, max_order=1)["origin"]["naive_mase"] for s in (small, large)
    ]
    # each: scale 1 (resp. 100), naive error 2 (resp. 200): MASE 2 for both
    assert per_series == pytest.approx([2.0, 2.0])
    assert forecast.mean_mase(per_series) == pytest.approx(2.0)


def test_arx_recovers_an_exact_autoregression():
    y = 3.0 * 0.5 ** np.arange(12) + 1.0  # y_t = 0.5 y_{t-1} + 0.5 exactly
    origin, one_step = forecast.arx_forecasts(y, None, n=9, order=1)
    np.testing.assert_allclose(origin, y[9:], rtol=1e-9)
    np.testing.assert_allclose(one_step, y[9:], rtol=1e-9)


def test_most_frequent_tag_on_three_oanc_sentences():
    words, tags = read_slash_tagged(FIXTURES / "tagged-en-oanc_head3.txt")
    assert words[2] == ["In", "its", "Jan", "."] and tags[2] == ["IN", "PRP$", "NNP", "."]
    model = tagging.MostFrequentTagger().fit(words[:2], tags[:2])
    # 'its' and '.' were seen; 'In' and 'Jan' were not and no capitalised training word ends
    # like them, so they get the most frequent tag of the two sentences, NN (12 of 40 tokens)
    predicted = model.predict(words[2:])
    assert predicted == [["NN", "PRP$", "NN", "."]]
    known = {w for s in words[:2] for w in s}
    scores = tagging.token_accuracy(tags[2:], predicted, known, words[2:])
    assert scores == {
        "accuracy": 0.5,
        "known_accuracy": 1.0,
        "unknown_accuracy": 0.0,
        "unknown_rate": 0.5,
    }
    # suffix rules: 'Jumping' ends like capitalised 'Judging', 'walking' like 'leading'
    assert model.predict([["Jumping", "walking"]]) == [["VBG", "VBG"]]
    without = tagging.MostFrequentTagger(suffix_rules=False).fit(words[:2], tags[:2])
    assert without.predict([["Jumping", "walking"]]) == [["NN", "NN"]]


def test_hironsan_columns_and_spans():
    words, tags = read_columns_tagged(FIXTURES / "hironsan_iob_head3.txt")
    assert len(words) == 3
    assert words[0][:6] == ["2005", "年", "7", "月", "14", "日"]
    assert (0, 5, "DAT") in get_spans(tags[0])


def test_slash_tagged_reader_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("a/DT dog/NN\nbarks\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad.txt:2: token 'barks' is not word/TAG"):
        read_slash_tagged(path)


def test_ts_reader_on_the_unittest_excerpt():
    x, y = read_ts(FIXTURES / "UnitTest_TRAIN_head6.ts")
    assert x.shape == (6, 24, 1) and x[0, 0, 0] == 573.0
    assert set(y.tolist()) <= {"1", "2"}
    x, y = read_ts(FIXTURES / "CardanoSentiment_TRAIN_head3.ts")
    assert x.shape == (3, 24, 2) and y.dtype.kind == "f"


def test_dtw_by_hand():
    a = np.array([0.0, 1, 2])[None, :, None]
    b = np.array([0.0, 2])[None, :, None]
    # costs (a_i - b_j)^2 = [[0, 4], [1, 1], [4, 0]]; D = [[0, 4], [1, 1], [5, 1]]
    assert nearest.dtw_distances(a, b)[0, 0] == pytest.approx(1.0)


def test_dtw_matches_the_textbook_recursion_in_blocks():
    rng = np.random.default_rng(0)
    queries, references = rng.normal(size=(3, 6, 2)), rng.normal(size=(4, 5, 2))

    def reference(p, q):
        d = np.full((len(p) + 1, len(q) + 1), np.inf)
        d[0, 0] = 0.0
        for i in range(1, len(p) + 1):
            for j in range(1, len(q) + 1):
                cost = ((p[i - 1] - q[j - 1]) ** 2).sum()
                d[i, j] = cost + min(d[i - 1, j - 1], d[i - 1, j], d[i, j - 1])
        return d[-1, -1]

    expected = [[reference(p, q) for q in references] for p in queries]
    np.testing.assert_allclose(nearest.dtw_distances(queries, references, max_cells=60), expected)


def test_nearest_neighbour_keeps_the_first_of_ties():
    assert nearest.nearest_neighbour(np.array([[2.0, 1.0, 1.0]]), np.array(["a", "b", "c"])) == [
        "b"
    ]


def test_suffix_rules_by_hand():
    model = word_forms.SuffixRules().fit(
        ["Ablation", "Nation", "Hund", "Maus"], ["Ablationen", "Nationen", "Hunde", "Mäuse"]
    )
    assert word_forms.rule_of("Maus", "Mäuse") == ("aus", "äuse")
    # 'Station' ends in 'ation' like two training words (rule: append 'en'); 'Mund' in 'und'
    assert model.predict(["Station", "Mund", "Laus"]) == ["Stationen", "Munde", "Läuse"]
    assert word_forms.exact_match(["Stationen", "Münder"], ["Stationen", "Munde"]) == 0.5
