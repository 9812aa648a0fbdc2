"""Classical baselines: the bar a recurrent model has to clear on real data (docs/real_data.md).

One module per kind of problem, numpy and scikit-learn only, so a task can report them beside
the model:

- :mod:`~rnnkit.baselines.forecast`: naive (persistence), seasonal naive, drift, mean and the
  least-squares ARX, from a forecast origin or one step ahead; MASE and RMSE;
- :mod:`~rnnkit.baselines.tagging`: most frequent tag per word, suffix rules for unknown words;
- :mod:`~rnnkit.baselines.text`: naive Bayes and logistic regression on bags of words;
- :mod:`~rnnkit.baselines.nearest`: 1-nearest-neighbour series classification and regression,
  Euclidean and dynamic time warping;
- :mod:`~rnnkit.baselines.word_forms`: copy and suffix-rewrite rules for word-form transduction;
- :mod:`~rnnkit.baselines.formats`: readers of the files these datasets come in.
"""
