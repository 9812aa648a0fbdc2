"""Data: DataModules, file readers, vocabularies and the padding collate."""

from rnnkit.data.base import SequenceDataModule
from rnnkit.data.conll import CoNLLDataModule, TaggingDataModule
from rnnkit.data.pairs import PairsDataModule
from rnnkit.data.sequence_csv import CSVSequenceDataModule
from rnnkit.data.series import TimeSeriesDataModule
from rnnkit.data.spelled_numbers import SpelledNumbersDataModule
from rnnkit.data.synthetic import AddingDataModule, ContextTaggingDataModule
from rnnkit.data.system_id import NARMADataModule
from rnnkit.data.text import TextClassificationDataModule
from rnnkit.data.text_corpus import TextCorpusDataModule
from rnnkit.data.transduction import TransductionDataModule

__all__ = [
    "TimeSeriesDataModule",
    "NARMADataModule",
    "AddingDataModule",
    "ContextTaggingDataModule",
    "CoNLLDataModule",
    "CSVSequenceDataModule",
    "PairsDataModule",
    "SequenceDataModule",
    "SpelledNumbersDataModule",
    "TaggingDataModule",
    "TextClassificationDataModule",
    "TextCorpusDataModule",
    "TransductionDataModule",
]
