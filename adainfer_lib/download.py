"""``adainfer data download``: fill the data folder from the Hugging Face hub (needs internet).

Writes the same layout the registry reads (see ../shared/data/README.md): ``mmlu/{dev,test}/*.csv``
(from ``cais/mmlu``), ``sst2/dev.tsv`` (``stanfordnlp/sst2`` validation), and function-vector
style JSON for AG News (``fancyzhx/ag_news`` test), CommonsenseQA (``tau/commonsense_qa``
validation) and SQuAD (``rajpurkar/squad`` validation). The function-vector rule tasks themselves
come from github.com/ericwtodd/function_vectors (``dataset_files/``): copy that folder to
``<data>/function_vectors``. Offline, every step fails with a message saying what to do instead.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path


def _write_json(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rows, indent=1))
    os.replace(tmp, path)


def _load(name: str, *args, split: str):
    from datasets import load_dataset

    try:
        return load_dataset(name, *args, split=split)
    except Exception as err:  # noqa: BLE001 - the hub raises many types; all mean "not reachable"
        raise FileNotFoundError(f"could not fetch {name!r} from the Hugging Face hub ({type(err).__name__}); "
                                "offline, point ADAINFER_DATA_DIR at a copy of the data instead") from None


def download_all(root: Path) -> None:
    """Fetch every dataset the registry knows into ``root`` (overwrites atomically per file)."""
    mmlu = root / "mmlu"
    for split, folder in (("dev", "dev"), ("test", "test")):
        ds = _load("cais/mmlu", "all", split=split)
        by_subject: dict[str, list] = {}
        for r in ds:
            by_subject.setdefault(r["subject"], []).append(r)
        for subject, rows in by_subject.items():
            path = mmlu / folder / f"{subject}_{folder}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["question", "choice0", "choice1", "choice2", "choice3", "answer"])
                for r in rows:
                    w.writerow([r["question"], *r["choices"], r["answer"]])
    sst = _load("stanfordnlp/sst2", split="validation")
    (root / "sst2").mkdir(parents=True, exist_ok=True)
    with open(root / "sst2" / "dev.tsv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["sentence", "label"])
        for r in sst:
            w.writerow([r["sentence"], r["label"]])
    labels = ["World", "Sports", "Business", "Science"]
    ag = _load("fancyzhx/ag_news", split="test")
    _write_json([{"input": r["text"], "output": labels[r["label"]]} for r in ag],
                root / "function_vectors" / "abstractive" / "ag_news.json")
    cqa = _load("tau/commonsense_qa", split="validation")
    _write_json([{"input": r["question"] + "".join(f"\n{lab.lower()}: {t}" for lab, t in
                                                   zip(r["choices"]["label"], r["choices"]["text"])),
                  "output": r["answerKey"].lower()} for r in cqa],
                root / "function_vectors" / "abstractive" / "commonsense_qa.json")
    sq = _load("rajpurkar/squad", split="validation")
    _write_json([{"input": r["context"] + "\n" + r["question"], "output": r["answers"]["text"][0]}
                 for r in sq if len(set(r["answers"]["text"])) == 1], root / "squad" / "squad_val_fv_format.json")
    print(f"wrote MMLU, SST-2, AG News, CommonsenseQA and SQuAD to {root}")
