"""Models: plain ``nn.Module`` architectures built from layers, and their builders."""

from rnnkit.models.arx import DirectARX, LinearARX
from rnnkit.models.bag_of_ngrams import BagOfNgrams
from rnnkit.models.builders import build_stack
from rnnkit.models.crf import CRF
from rnnkit.models.forecaster import (
    Forecaster,
    NARXForecaster,
    narx_forecaster,
    rnn_forecaster,
    sliding_window_forecaster,
)
from rnnkit.models.language_model import LanguageModel
from rnnkit.models.pooling import Pooling
from rnnkit.models.seq2seq import Seq2Seq, build_seq2seq
from rnnkit.models.sequence_model import SequenceModel
from rnnkit.models.word_features import CharBiLSTM, CharCNN, WordEmbedder

__all__ = [
    "BagOfNgrams",
    "sliding_window_forecaster",
    "rnn_forecaster",
    "narx_forecaster",
    "NARXForecaster",
    "LinearARX",
    "DirectARX",
    "Forecaster",
    "CRF",
    "build_seq2seq",
    "build_stack",
    "LanguageModel",
    "Pooling",
    "Seq2Seq",
    "SequenceModel",
    "CharBiLSTM",
    "CharCNN",
    "WordEmbedder",
]
