"""`wait_for_status` rejects a status name that can never match, instead of waiting out its timeout."""

from __future__ import annotations

from typing import Any

import pytest

from funcemu.testing.client import DurableClient


class NoHttp:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError("the host must not be asked")


def client() -> DurableClient:
    return DurableClient(NoHttp(), timeout=30)  # type: ignore[arg-type]


def test_case_mismatch_suggests_the_status() -> None:
    with pytest.raises(ValueError) as caught:
        client().wait_for_status("i1", "completed")
    message = str(caught.value)
    assert "did you mean 'Completed'?" in message
    assert ("Pending, Running, Completed, ContinuedAsNew, Failed, Canceled, Terminated, Suspended") in message


def test_unknown_name_lists_the_statuses() -> None:
    with pytest.raises(ValueError, match="'Done' is not a runtime status; the runtime statuses are Pending") as caught:
        client().wait_for_status("i1", "Done")
    assert "did you mean" not in str(caught.value)


class OneStatus:
    def get(self, path: str, params: Any = None) -> Any:
        class Response:
            status = 200

            def json(self) -> Any:
                return {"runtimeStatus": "Running", "customStatus": "ready"}
        return Response()


def test_names_and_predicates_still_wait() -> None:
    durable = DurableClient(OneStatus(), timeout=1)  # type: ignore[arg-type]
    assert durable.wait_for_status("i1", "Running")["runtimeStatus"] == "Running"
    assert durable.wait_for_status("i1", lambda s: s.get("customStatus") == "ready")["customStatus"] == "ready"
