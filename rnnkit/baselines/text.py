"""Bag-of-words baselines for text classification (scikit-learn).

Unigram counts (lowercased, scikit-learn's default tokens of two or more word characters) fitted
on the training texts, then multinomial naive Bayes (Laplace smoothing, alpha = 1) and
L2-regularised logistic regression (C = 1), both at scikit-learn's defaults, untuned; and the
majority class for reference.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import make_pipeline


def bag_of_words_predictions(
    train_texts: Sequence[str], train_labels: Sequence[str], test_texts: Sequence[str]
) -> dict[str, list[str]]:
    """Test predictions of ``majority``, ``naive_bayes`` and ``logistic_regression``."""
    models = {
        "naive_bayes": make_pipeline(CountVectorizer(), MultinomialNB()),
        "logistic_regression": make_pipeline(CountVectorizer(), LogisticRegression(max_iter=2000)),
    }
    majority = min(Counter(train_labels).items(), key=lambda kv: (-kv[1], kv[0]))[0]
    predictions = {"majority": [majority] * len(test_texts)}
    for name, model in models.items():
        predictions[name] = list(
            model.fit(list(train_texts), list(train_labels)).predict(test_texts)
        )
    return predictions


def classification_scores(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-averaged F1."""
    return {
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, average="macro")),
    }
