"""Fan-out/fan-in: POST /api/word-counts counts every document in parallel, then merges the counts."""

from typing import Any

import pytest

from funcemu.testing import DurableClient, Host


def documents(count: int) -> list[dict[str, str]]:
    """Document i holds "alpha" i+1 times, then "Beta gamma." once: i + 3 words."""
    return [
        {"name": f"doc-{index:02}.txt", "text": "alpha " * (index + 1) + "Beta gamma."}
        for index in range(count)
    ]


def test_counts_twenty_documents_in_parallel(durable_client: DurableClient) -> None:
    instance_id = durable_client.start_via("/api/word-counts", json={"documents": documents(20), "top": 3})

    final = durable_client.wait_for_completion(instance_id)

    assert final["runtimeStatus"] == "Completed", final
    assert final["output"] == {
        "documents": 20,
        "totalWords": 250,  # alpha: 1 + 2 + ... + 20 = 210, beta: 20, gamma: 20
        "distinctWords": 3,
        "perDocument": {f"doc-{index:02}.txt": index + 3 for index in range(20)},
        "topWords": [
            {"word": "alpha", "count": 210},
            {"word": "beta", "count": 20},
            {"word": "gamma", "count": 20},
        ],
    }


def test_all_counts_are_scheduled_before_the_merge(durable_client: DurableClient) -> None:
    instance_id = durable_client.start_via("/api/word-counts", json={"documents": documents(8)})

    history = durable_client.wait_for_completion(instance_id)["historyEvents"]

    names = [event["FunctionName"] for event in history if event["EventType"] == "TaskCompleted"]
    assert sorted(names[:-1]) == ["count_words"] * 8
    assert names[-1] == "merge_word_counts"
    counted = sorted(
        event["Result"]["name"] for event in history if event.get("FunctionName") == "count_words"
    )
    assert counted == [f"doc-{index:02}.txt" for index in range(8)]


def test_top_defaults_to_ten_words(durable_client: DurableClient) -> None:
    text = " ".join(f"w{index}" for index in range(15))
    instance_id = durable_client.start_via(
        "/api/word-counts", json={"documents": [{"name": "a", "text": text}]}
    )

    output = durable_client.wait_for_output(instance_id)

    assert [entry["word"] for entry in output["topWords"]] == sorted(f"w{index}" for index in range(15))[:10]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "documents must be a list of 1 to 500 objects, got nothing"),
        ({"documents": []}, "documents must be a list of 1 to 500 objects"),
        (
            {"documents": [{"name": "a", "text": "x"}, {"name": "a", "text": "y"}]},
            "documents[1].name 'a' is used by an earlier document",
        ),
        ({"documents": [{"name": "a", "text": 3}]}, "documents[0].text must be a string"),
        ({"documents": [{"text": "x"}]}, "documents[0].name must be a non-empty string"),
        (
            {"documents": [{"name": "a", "text": "x"}], "top": 0},
            "top must be an integer from 1 to 100, got 0",
        ),
    ],
)
def test_bad_jobs_get_400_with_the_reason(funcemu: Host, body: Any, message: str) -> None:
    response = funcemu.post("/api/word-counts", body)

    assert response.status == 400, response
    assert message in response.json()["error"]
