"""Tasks: one :class:`rnnkit.engine.TaskModule` per task type; each receives a built model.

They share one recipe (:class:`~rnnkit.tasks.base.Task`: optimizer, metric hooks, data state,
prediction lines) and keep their metrics one way (:class:`~rnnkit.tasks.metrics.StageMetrics`).
"""

from rnnkit.tasks.base import Task
from rnnkit.tasks.classification import ClassificationTask
from rnnkit.tasks.forecasting import ForecastingTask
from rnnkit.tasks.language_model import LanguageModelTask
from rnnkit.tasks.metrics import StageMetrics
from rnnkit.tasks.seq2seq import Seq2SeqTask
from rnnkit.tasks.tagging import TaggingTask

__all__ = [
    "Task",
    "StageMetrics",
    "ForecastingTask",
    "ClassificationTask",
    "LanguageModelTask",
    "Seq2SeqTask",
    "TaggingTask",
]
