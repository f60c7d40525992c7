"""Activities of the word-count workflow (fan-out/fan-in)."""

import re
from collections import Counter

import azure.durable_functions as df

bp = df.Blueprint()

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@bp.activity_trigger(input_name="document")
def count_words(document: dict) -> dict:
    words = Counter(WORD.findall(document["text"].lower()))
    return {"name": document["name"], "words": sum(words.values()), "counts": dict(words)}


@bp.activity_trigger(input_name="job")
def merge_word_counts(job: dict) -> dict:
    total: Counter[str] = Counter()
    for result in job["counts"]:
        total.update(result["counts"])
    ranked = sorted(total.items(), key=lambda pair: (-pair[1], pair[0]))[: job["top"]]
    return {
        "documents": len(job["counts"]),
        "totalWords": sum(total.values()),
        "distinctWords": len(total),
        "perDocument": {result["name"]: result["words"] for result in job["counts"]},
        "topWords": [{"word": word, "count": count} for word, count in ranked],
    }
