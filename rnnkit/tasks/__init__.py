"""Tasks: one LightningModule per task type; each receives an already built model."""

from rnnkit.tasks.classification import ClassificationTask
from rnnkit.tasks.forecasting import ForecastingTask
from rnnkit.tasks.language_model import LanguageModelTask
from rnnkit.tasks.seq2seq import Seq2SeqTask
from rnnkit.tasks.tagging import TaggingTask

__all__ = [
    "ForecastingTask",
    "ClassificationTask",
    "LanguageModelTask",
    "Seq2SeqTask",
    "TaggingTask",
]
