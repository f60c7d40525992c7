"""The management API (durable/api.py) and its payloads (durable/status.py), against §5.1 and §6 of
docs/durable-protocol.md: exact status codes, headers and bodies, then the real SDK client over HTTP.

`FakeEngine` is an in-memory stand-in for `Engine` (same exception conventions as the real one), so these
tests exercise only the HTTP layer; end-to-end tests on the real engine live elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import azure.durable_functions as df
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from azure.durable_functions.models.DurableOrchestrationBindings import DurableOrchestrationBindings
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus
from azure.durable_functions.models.utils import http_utils

from funcemu.durable import history as h
from funcemu.durable.api import RPC_PATH, WEBHOOK_PATH, make_durable_app
from funcemu.durable.engine import Engine, UnknownOrchestratorError, validate_instance_id
from funcemu.durable.status import (
    check_status_payload,
    client_binding_json,
    format_status_time,
    parse_json_or_raw,
    render_history,
    render_status,
    to_json,
    url_encode,
)
from funcemu.durable.store.base import InstanceQuery, InstanceState, RuntimeStatus

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
JSON_TYPE = "application/json; charset=utf-8"
UNKNOWN_FN = ("The function 'nope' doesn't exist, is disabled, or is not an orchestrator function. "
              "Additional info: The following are the known orchestrator functions: 'hello_orchestrator', "
              "'Other'.")
S = RuntimeStatus


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class FakeEngine(Engine):
    """In-memory Engine stand-in: records calls, raises what the real engine raises."""

    hub_name = "TestHubName"

    def __init__(self) -> None:
        self.instances: dict[str, InstanceState] = {}
        self.histories: dict[str, list[dict[str, Any]]] = {}
        self.entities: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.queries: list[InstanceQuery] = []
        self.next_token: str | None = None

    def add(self, instance_id: str, status: RuntimeStatus, **fields: Any) -> InstanceState:
        state = InstanceState(instance_id, fields.pop("name", "hello_orchestrator"), "e1", status, T0,
                              at(5.25), **fields)
        self.instances[instance_id] = state
        return state

    def now(self) -> datetime:
        return at(3600)

    def orchestrator_names(self) -> list[str]:
        return ["hello_orchestrator", "Other"]

    async def start_new(self, name: str, instance_id: str | None, input_text: str | None) -> str:
        if name.lower() not in ("hello_orchestrator", "other"):
            raise UnknownOrchestratorError(UNKNOWN_FN.replace("'nope'", f"'{name}'"))
        if instance_id is not None:
            validate_instance_id(instance_id)  # as the real engine does, after the name
        self.calls.append(("start_new", name, instance_id, input_text))
        new_id = instance_id or uuid.uuid4().hex
        self.add(new_id, S.Pending, name=name, input=input_text)
        return new_id

    async def get_instance(self, instance_id: str) -> InstanceState | None:
        return self.instances.get(instance_id)

    async def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        return self.histories.get(instance_id, [])

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceState], str | None]:
        self.queries.append(query)
        prefix = query.instance_id_prefix or ""
        return [s for s in self.instances.values() if s.instance_id.startswith(prefix)
                and (not query.statuses or s.runtime_status in query.statuses)], self.next_token

    async def purge(self, instance_ids: list[str]) -> int:
        self.calls.append(("purge", instance_ids))
        return sum(self.instances.pop(i, None) is not None for i in instance_ids)

    async def raise_event(self, instance_id: str, name: str, input_text: str | None) -> None:
        self.calls.append(("raise_event", instance_id, name, input_text))

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        self.calls.append(("terminate", instance_id, reason))

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        if self.instances[instance_id].runtime_status is S.Suspended:
            raise RuntimeError(f"Cannot suspend orchestration instance '{instance_id}': already suspended.")
        self.calls.append(("suspend", instance_id, reason))

    async def resume(self, instance_id: str, reason: str | None) -> None:
        if self.instances[instance_id].runtime_status is not S.Suspended:
            raise RuntimeError(f"Cannot resume orchestration instance '{instance_id}': not suspended.")
        self.calls.append(("resume", instance_id, reason))

    async def rewind(self, instance_id: str, reason: str | None) -> None:
        if self.instances[instance_id].runtime_status is not S.Failed:
            raise RuntimeError("The rewind operation is only supported on failed orchestration instances.")
        self.calls.append(("rewind", instance_id, reason))

    async def restart(self, instance_id: str, new_instance_id: bool) -> str:
        new_id = "restarted" if new_instance_id else instance_id
        self.calls.append(("restart", instance_id, new_instance_id))
        self.add(new_id, S.Pending, input=self.instances[instance_id].input)
        return new_id

    async def wait_for_completion(self, instance_id: str, timeout: float) -> InstanceState | None:
        self.calls.append(("wait", instance_id, timeout))
        return self.instances.get(instance_id)

    async def signal_entity(self, name: str, key: str, operation: str, input_text: str | None) -> None:
        self.calls.append(("signal", name, key, operation, input_text))

    async def read_entity(self, name: str, key: str) -> str | None:
        return self.entities.get((name, key))


Scenario = Callable[[TestClient, FakeEngine], Awaitable[None]]


@asynccontextmanager
async def serve(engine: FakeEngine, system_key: str | None = None) -> AsyncIterator[TestClient]:
    """Both bases on one test server: the public webhook and the SDK's RPC base."""
    app = web.Application()
    app.add_subapp(WEBHOOK_PATH + "/", make_durable_app(engine, rpc=False, system_key=system_key))
    app.add_subapp(RPC_PATH, make_durable_app(engine, rpc=True, system_key=system_key))
    async with TestClient(TestServer(app)) as client:
        yield client


def drive(scenario: Scenario, engine: FakeEngine | None = None, system_key: str | None = None) -> FakeEngine:
    engine = engine or FakeEngine()

    async def main() -> None:
        async with serve(engine, system_key) as client:
            await scenario(client, engine)

    asyncio.run(main())
    return engine


def base_of(client: TestClient) -> str:
    return str(client.make_url(WEBHOOK_PATH))


async def expect(response: Any, status: int, body: Any = ..., **headers: str) -> Any:
    """Check status, exact body (`...` = not checked, "" = empty) and headers; return the parsed body."""
    text = await response.text()
    assert response.status == status, text
    for name, value in headers.items():
        assert response.headers.get(name.replace("_", "-")) == value, name
    if text:
        assert response.headers["Content-Type"] == JSON_TYPE
    parsed = json.loads(text) if text else ""
    if body is not ...:
        assert parsed == body
    return parsed


def argument_error(message: str) -> dict[str, Any]:
    return {"Message": "One or more of the arguments submitted is incorrect", "ExceptionMessage": message,
            "ExceptionType": "System.ArgumentException"}


def without_stack(body: dict[str, Any]) -> dict[str, Any]:
    assert "StackTrace" in body
    return {k: v for k, v in body.items() if k != "StackTrace"}


# ---------------------------------------------------------------------------------------------- payloads


def test_to_json_is_compact_newtonsoft_text() -> None:
    assert to_json({"a": [1, "é", None], "b": "x\u2028y\n"}) == '{"a":[1,"é",null],"b":"x\\u2028y\\n"}'


@pytest.mark.parametrize(("text", "value"), [
    (None, None), ("", ""), ("   ", ""), (' {"x": 1} ', {"x": 1}), ('"{\\"x\\": 1}"', '{"x": 1}'),
    ("  not json ", "not json"), ("function 'f' failed: x", "function 'f' failed: x"),
])
def test_parse_json_or_raw_follows_parse_to_jtoken(text: str | None, value: Any) -> None:
    assert parse_json_or_raw(text) == value


def test_status_times_have_no_fraction() -> None:
    naive = datetime(2024, 5, 6, 7, 8, 9, 999999)
    assert format_status_time(naive) == "2024-05-06T07:08:09Z"
    plus_two = timezone(timedelta(hours=2))
    assert format_status_time(datetime(2024, 1, 1, 2, tzinfo=plus_two)) == "2024-01-01T00:00:00Z"


def test_render_status_key_order_and_values() -> None:
    state = InstanceState("abc", "hello_orchestrator", "e1", S.Completed, T0, at(5.25),
                          input='"{\\"x\\": 1}"', output='["Hello Seattle","Hello Tokyo"]')
    payload = render_status(state)
    assert list(payload) == ["name", "instanceId", "runtimeStatus", "input", "customStatus", "output",
                             "createdTime", "lastUpdatedTime"]
    assert payload == {"name": "hello_orchestrator", "instanceId": "abc", "runtimeStatus": "Completed",
                       "input": '{"x": 1}', "customStatus": None, "output": ["Hello Seattle", "Hello Tokyo"],
                       "createdTime": "2024-01-01T00:00:00Z", "lastUpdatedTime": "2024-01-01T00:00:05Z"}
    assert render_status(state, show_input=False)["input"] is None
    assert "historyEvents" in render_status(state, [])


def test_render_status_raw_outputs_and_pending_history() -> None:
    failed = InstanceState("f", "o", "e", S.Failed, T0, T0, output="Orchestrator function 'o' failed: boom",
                           custom_status='{"step": 2}')
    assert render_status(failed)["output"] == "Orchestrator function 'o' failed: boom"
    assert render_status(failed)["customStatus"] == {"step": 2}
    pending = InstanceState("p", "o", "e", S.Pending, T0, T0)
    assert "historyEvents" not in render_status(pending, [h.orchestrator_started(T0)])


def sample_history() -> list[dict[str, Any]]:
    return [
        h.orchestrator_started(at(0)),
        h.execution_started(at(0), "hello_orchestrator", "abc", "e1", '"{\\"x\\": 1}"'),
        h.task_scheduled(at(0), 0, "hello", '"Tokyo"'),
        h.timer_created(at(0), 1, at(30)),
        h.orchestrator_completed(at(0)),
        h.orchestrator_started(at(1)),
        h.task_completed(at(1.2), 0, '"Hello Tokyo"'),
        h.task_scheduled(at(1), 2, "hello", '"Seattle"'),
        h.task_failed(at(2), 2, "boom", "details"),
        h.timer_fired(at(30), 1, at(30)),
        h.event_raised(at(31), "Approval", '"yes"'),
        h.sub_orchestration_created(at(31), 3, "child", "abc:3", "1"),
        h.sub_orchestration_completed(at(32), 3, ' {"a": 1} '),
        h.task_scheduled(at(32), 4, "never_done", '"x"'),
        h.execution_completed(at(33), 5, 1, '["Hello Tokyo"]'),
        h.orchestrator_completed(at(33)),
    ]


def test_history_events_transformation() -> None:
    rows = render_history(sample_history())
    tokyo_input, seattle_input = '["\\"Tokyo\\""]', '["\\"Seattle\\""]'
    assert rows == [
        {"EventType": "ExecutionStarted", "Timestamp": "2024-01-01T00:00:00Z", "Input": '"{\\"x\\": 1}"',
         "Correlation": None, "ParentTraceContext": None, "ScheduledStartTime": None, "Generation": 0,
         "FunctionName": "hello_orchestrator"},
        {"EventType": "TimerCreated", "Timestamp": "2024-01-01T00:00:00Z", "FireAt": "2024-01-01T00:00:30Z"},
        {"EventType": "TaskCompleted", "Timestamp": "2024-01-01T00:00:01.2Z",
         "ScheduledTime": "2024-01-01T00:00:00Z", "FunctionName": "hello", "Input": tokyo_input},
        {"EventType": "TaskFailed", "Timestamp": "2024-01-01T00:00:02Z", "Reason": "boom",
         "Details": "details", "FailureDetails": None, "ScheduledTime": "2024-01-01T00:00:01Z",
         "FunctionName": "hello", "Input": seattle_input},
        {"EventType": "TimerFired", "Timestamp": "2024-01-01T00:00:30Z", "FireAt": "2024-01-01T00:00:30Z"},
        {"EventType": "EventRaised", "Timestamp": "2024-01-01T00:00:31Z", "Name": "Approval",
         "Input": '"yes"'},
        {"EventType": "SubOrchestrationInstanceCompleted", "Timestamp": "2024-01-01T00:00:32Z",
         "ScheduledTime": "2024-01-01T00:00:31Z", "FunctionName": "child", "Input": "1"},
        {"EventType": "TaskScheduled", "Timestamp": "2024-01-01T00:00:32Z", "Name": "never_done",
         "Input": '["\\"x\\""]'},
        {"EventType": "ExecutionCompleted", "Timestamp": "2024-01-01T00:00:33Z",
         "OrchestrationStatus": "Completed", "FailureDetails": None},
    ]
    assert list(rows[2]) == ["EventType", "Timestamp", "ScheduledTime", "FunctionName", "Input"]


def test_history_events_with_output_and_without_input() -> None:
    rows = render_history(sample_history(), show_history_output=True, show_input=False)
    assert rows[2] == {"EventType": "TaskCompleted", "Timestamp": "2024-01-01T00:00:01.2Z",
                       "Result": "Hello Tokyo", "ScheduledTime": "2024-01-01T00:00:00Z",
                       "FunctionName": "hello"}
    assert rows[6]["Result"] == {"a": 1}
    assert rows[8]["Result"] == ["Hello Tokyo"]
    assert "Result" not in rows[3]  # TaskFailed never carries one
    assert not any("Input" in row for row in rows)


def test_url_encode_is_webutility_urlencode() -> None:
    assert url_encode("a b+c/d~é!*()-_.") == "a+b%2Bc%2Fd%7E%C3%A9!*()-_."


def test_client_binding_json_without_key() -> None:
    text = client_binding_json(base_url="http://localhost:7071/runtime/webhooks/durabletask/",
                               rpc_base_url="http://127.0.0.1:17071/durabletask", hub_name="TestHubName",
                               system_key=None)
    base = "http://localhost:7071/runtime/webhooks/durabletask"
    suffix = "taskHub=TestHubName&connection=Storage"
    binding = json.loads(text)
    assert " " not in text
    assert list(binding) == ["taskHubName", "connectionName", "creationUrls", "managementUrls", "baseUrl",
                             "requiredQueryStringParameters", "rpcBaseUrl", "httpBaseUrl"]
    assert binding["creationUrls"] == {
        "createNewInstancePostUri": f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]?",
        "createAndWaitOnNewInstancePostUri": f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
        "?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&"}
    assert binding["managementUrls"]["statusQueryGetUri"] == f"{base}/instances/INSTANCEID?{suffix}"
    assert binding["taskHubName"] == "TestHubName" and binding["baseUrl"] == base
    assert binding["connectionName"] is None and binding["httpBaseUrl"] is None
    assert binding["requiredQueryStringParameters"] == ""
    assert binding["rpcBaseUrl"] == "http://127.0.0.1:17071/durabletask/"


def test_client_binding_json_with_system_key_and_the_sdk_reads_it() -> None:
    text = client_binding_json(base_url="http://localhost:7071/runtime/webhooks/durabletask",
                               rpc_base_url="http://127.0.0.1:17071/durabletask/", hub_name="Hub1",
                               system_key="KEY")
    base, suffix = "http://localhost:7071/runtime/webhooks/durabletask/instances/INSTANCEID", \
        "taskHub=Hub1&connection=Storage&code=KEY"
    binding = json.loads(text)
    assert binding["creationUrls"]["createNewInstancePostUri"].endswith("[/{instanceId}]?code=KEY")
    assert binding["creationUrls"]["createAndWaitOnNewInstancePostUri"].endswith(
        "?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&code=KEY")
    assert binding["requiredQueryStringParameters"] == "code=KEY"
    assert binding["managementUrls"] == {
        "id": "INSTANCEID",
        "statusQueryGetUri": f"{base}?{suffix}",
        "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}?{suffix}",
        "terminatePostUri": f"{base}/terminate?reason={{text}}&{suffix}",
        "rewindPostUri": f"{base}/rewind?reason={{text}}&{suffix}",
        "purgeHistoryDeleteUri": f"{base}?{suffix}",
        "restartPostUri": f"{base}/restart?{suffix}",
        "suspendPostUri": f"{base}/suspend?reason={{text}}&{suffix}",
        "resumePostUri": f"{base}/resume?reason={{text}}&{suffix}",
    }
    bindings = DurableOrchestrationBindings.from_json(text)
    assert bindings.rpc_base_url == "http://127.0.0.1:17071/durabletask/"
    payload = df.DurableOrchestrationClient(text).create_http_management_payload("i1")
    assert payload["id"] == "i1"
    assert payload["statusQueryGetUri"] == f"{base}?{suffix}".replace("INSTANCEID", "i1")


def test_check_status_payload_has_no_rewind_uri() -> None:
    payload = check_status_payload("http://h/runtime/webhooks/durabletask", "a b", "Hub", None)
    assert list(payload) == ["id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri",
                             "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"]
    assert payload["id"] == "a b"
    assert payload["sendEventPostUri"] == ("http://h/runtime/webhooks/durabletask/instances/a+b/raiseEvent/"
                                           "{eventName}?taskHub=Hub&connection=Storage")


# ---------------------------------------------------------------------------------------------- start


def test_start_answers_202_check_status() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        url = WEBHOOK_PATH + "/orchestrators/hello_orchestrator/a b+c"
        prefix = f"{base_of(client)}/instances/a+b+c"  # WebUtility.UrlEncode of "a b c"
        suffix = "taskHub=TestHubName&connection=Storage&code=SYS"
        await expect(await client.post(url, data=b'{"x": 1}'), 202, {
            "id": "a b c",  # .NET UrlDecode: "+" in the path is a space
            "statusQueryGetUri": f"{prefix}?{suffix}",
            "sendEventPostUri": f"{prefix}/raiseEvent/{{eventName}}?{suffix}",
            "terminatePostUri": f"{prefix}/terminate?reason={{text}}&{suffix}",
            "purgeHistoryDeleteUri": f"{prefix}?{suffix}",
            "restartPostUri": f"{prefix}/restart?{suffix}",
            "suspendPostUri": f"{prefix}/suspend?reason={{text}}&{suffix}",
            "resumePostUri": f"{prefix}/resume?reason={{text}}&{suffix}",
        }, Location=f"{prefix}?{suffix}", Retry_After="10")
        response = await client.post(WEBHOOK_PATH + "/Orchestrators/Other/x%2By~z")
        body = await expect(response, 202)
        assert body["id"] == "x+y~z"
        assert body["statusQueryGetUri"].startswith(f"{base_of(client)}/instances/x%2By%7Ez?taskHub=")

    engine = drive(scenario, system_key="SYS")
    assert engine.calls == [("start_new", "hello_orchestrator", "a b c", '{"x":1}'),
                            ("start_new", "Other", "x+y~z", None)]


def test_start_stores_the_parsed_body_as_compact_json() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        # the Python client's body: a JSON string holding JSON text (§0)
        await expect(await client.post(WEBHOOK_PATH + "/orchestrators/hello_orchestrator",
                                       json=json.dumps({"x": 1})), 202)
        await expect(await client.post(WEBHOOK_PATH + "/orchestrators/hello_orchestrator", data=b"null"), 202)
        await expect(await client.post(WEBHOOK_PATH + "/orchestrators/hello_orchestrator", data=b" "), 202)
        body = await expect(await client.post(RPC_PATH + "/orchestrators/hello_orchestrator/"), 202)
        assert re.fullmatch(r"[0-9a-f]{32}", body["id"])

    engine = drive(scenario)
    assert [call[3] for call in engine.calls] == ['"{\\"x\\": 1}"', None, None, None]
    assert all(call[2] is None for call in engine.calls)


def test_start_errors() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        url = WEBHOOK_PATH + "/orchestrators/"
        body = await expect(await client.post(url + "hello_orchestrator", data=b"{oops"), 400)
        assert body["Message"] == "Invalid JSON content"
        assert body["ExceptionType"] == "Newtonsoft.Json.JsonReaderException"
        body = await expect(await client.post(url + "nope/@bad"), 400)
        assert without_stack(body) == argument_error(UNKNOWN_FN)
        for instance_id, message in [
            ("@x", "instanceId (Parameter 'Orchestration instance ids must not start with @.')"),
            ("a%23b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or "
                      "control characters.')"),
            ("a%5Cb", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or "
                      "control characters.')"),
            ("a%07b", "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or "
                      "control characters.')"),
            ("x" * 257, "Instance ID lengths must not exceed 256 characters."),
        ]:
            body = await expect(await client.post(url + "hello_orchestrator/" + instance_id), 400)
            assert without_stack(body) == argument_error(message)
        await expect(await client.get(url + "hello_orchestrator"), 404, "")
        await expect(await client.post(url + "hello_orchestrator/a/b"), 404, "")  # %2F-free extra segment
        await expect(await client.post(url + "hello_orchestrator/a%2Fb"), 404, "")  # decoded before matching

    engine = drive(scenario)
    assert engine.calls == []


def test_start_and_wait() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        url = WEBHOOK_PATH + "/orchestrators/hello_orchestrator/{}?Timeout=30&pollingInterval=1"
        engine.add("done", S.Completed, output='{"ok": true}')
        original = engine.start_new

        async def start_keeping_state(name: str, instance_id: str | None, input_text: str | None) -> str:
            state = engine.instances.get(instance_id or "")
            new_id = await original(name, instance_id, input_text)
            if state is not None:
                engine.instances[new_id] = state  # pretend it already finished
            return new_id

        engine.start_new = start_keeping_state  # type: ignore[method-assign]
        await expect(await client.post(url.format("done")), 200, {"ok": True})
        engine.add("failed", S.Failed, output="Orchestrator function 'hello_orchestrator' failed: boom")
        failing = url.format("failed") + "&returnInternalServerErrorOnFailure=true"
        body = await expect(await client.post(failing), 200)  # the wait ignores the flag
        assert body["runtimeStatus"] == "Failed" and body["output"].endswith("failed: boom")
        body = await expect(await client.post(url.format("slow")), 202, Retry_After="10")
        assert body["id"] == "slow"
        body = await expect(await client.post(url.format("x").replace("=30", "=0.5")), 400)
        assert body["ExceptionMessage"] == "Total timeout 0.5 should be bigger than retry timeout 1"
        await expect(await client.post(url.format("y").replace("&pollingInterval=1", "")), 202)

    engine = drive(scenario)
    assert [call for call in engine.calls if call[0] == "wait"] == \
        [("wait", "done", 30.0), ("wait", "failed", 30.0), ("wait", "slow", 30.0)]


# ---------------------------------------------------------------------------------------------- status


def test_get_status_codes_and_headers() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        url = WEBHOOK_PATH + "/instances/"
        await expect(await client.get(url + "missing"), 404, "")
        for status in (S.Running, S.Pending, S.ContinuedAsNew, S.Suspended):
            engine.add("i", status)
            location = str(client.make_url(url + "i?showInput=false"))
            response = await client.get(url + "i?showInput=false")
            body = await expect(response, 202, Location=location, Retry_After="5")
            assert body["runtimeStatus"] == status.value
        for status in (S.Completed, S.Terminated, S.Canceled, S.Failed):
            engine.add("i", status)
            response = await client.get(url + "i")
            await expect(response, 200)
            assert "Location" not in response.headers and "Retry-After" not in response.headers
        await expect(await client.get(url + "i?returnInternalServerErrorOnFailure=True"), 500)
        await expect(await client.get(url + "i?RETURNINTERNALSERVERERRORONFAILURE=TRUE"), 500)
        await expect(await client.get(url + "i?returnInternalServerErrorOnFailure=yes"), 200)
        engine.add("i", S.Completed)
        await expect(await client.get(url + "i?returnInternalServerErrorOnFailure=true"), 200)

    drive(scenario)


def test_get_status_flags() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        engine.add("abc", S.Completed, input='"{\\"x\\": 1}"', output='["Hello Tokyo"]')
        engine.histories["abc"] = sample_history()
        url = WEBHOOK_PATH + "/instances/abc"
        plain = await expect(await client.get(url), 200)
        assert plain == {"name": "hello_orchestrator", "instanceId": "abc", "runtimeStatus": "Completed",
                         "input": '{"x": 1}', "customStatus": None, "output": ["Hello Tokyo"],
                         "createdTime": "2024-01-01T00:00:00Z", "lastUpdatedTime": "2024-01-01T00:00:05Z"}
        full = await expect(await client.get(url + "?showHistory=True&showHistoryOutput=True"), 200)
        assert full["historyEvents"] == render_history(sample_history(), show_history_output=True)
        bare = await expect(await client.get(url + "?SHOWHISTORY=true&showinput=False"), 200)
        assert bare["input"] is None
        assert bare["historyEvents"] == render_history(sample_history(), show_input=False)
        engine.add("p", S.Pending)
        pending = await expect(await client.get(WEBHOOK_PATH + "/instances/p?showHistory=true"), 202)
        assert "historyEvents" not in pending

    drive(scenario)


def test_list_instances() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        engine.add("a1", S.Running, input='"in"')
        engine.add("b1", S.Completed)
        engine.next_token = "next-page"
        response = await client.get(
            WEBHOOK_PATH + "/instances?InstanceIdPrefix=a&createdTimeFrom=2024-01-01T00:00:00.000000Z"
            "&createdTimeTo=2024-02-01T00%3A00%3A00&runtimeStatus=Running,Bogus&runtimeStatus=running"
            "&runtimeStatus=1&top=5&showInput=false", headers={"x-ms-continuation-token": "page-2"})
        rows = await expect(response, 200, x_ms_continuation_token="next-page")
        assert [row["instanceId"] for row in rows] == ["a1"] and rows[0]["input"] is None
        assert "historyEvents" not in rows[0]
        query = engine.queries[-1]
        assert query == InstanceQuery(created_from=T0, created_to=datetime(2024, 2, 1, tzinfo=timezone.utc),
                                      statuses=[S.Running, S.Completed], instance_id_prefix="a", top=5,
                                      continuation="page-2")
        engine.next_token = None
        rows = await expect(await client.get(WEBHOOK_PATH + "/instances/?createdTimeFrom=garbage&top=x"), 200,
                            x_ms_continuation_token="")
        assert [row["instanceId"] for row in rows] == ["a1", "b1"] and rows[0]["input"] == "in"
        assert engine.queries[-1] == InstanceQuery(top=100)

    drive(scenario)


def test_purge() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        engine.add("a", S.Completed)
        await expect(await client.delete(WEBHOOK_PATH + "/instances/a"), 200, {"instancesDeleted": 1})
        await expect(await client.delete(WEBHOOK_PATH + "/instances/a"), 404, "")
        await expect(await client.delete(WEBHOOK_PATH + "/instances"), 400,
                     "Please provide value for 'createdTimeFrom' parameter.")
        url = WEBHOOK_PATH + "/instances/?createdTimeFrom=2024-01-01T00:00:00Z&runtimeStatus=Failed"
        await expect(await client.delete(url), 404, "")
        assert engine.queries[-1] == InstanceQuery(created_from=T0, created_to=at(3600), statuses=[S.Failed])
        engine.add("b", S.Failed)
        engine.add("c", S.Failed)
        await expect(await client.delete(url), 200, {"instancesDeleted": 2})
        await expect(await client.post(WEBHOOK_PATH + "/instances"), 404, "")
        await expect(await client.put(WEBHOOK_PATH + "/instances/b"), 404, "")

    drive(scenario)


# ---------------------------------------------------------------------------------------------- operations


@pytest.mark.parametrize(("operation", "status", "code"), [
    ("terminate", S.Running, 202), ("terminate", S.Suspended, 202), ("terminate", S.Completed, 410),
    ("terminate", S.Failed, 410), ("terminate", S.Canceled, 410), ("terminate", S.Terminated, 410),
    ("suspend", S.Running, 202), ("suspend", S.Pending, 202), ("suspend", S.Completed, 410),
    ("suspend", S.Suspended, 500),
    ("resume", S.Suspended, 202), ("resume", S.Failed, 410), ("resume", S.Running, 500),
    ("rewind", S.Failed, 202), ("rewind", S.Completed, 410), ("rewind", S.Canceled, 410),
    ("rewind", S.Terminated, 410), ("rewind", S.Running, 500), ("rewind", S.Pending, 500),
])
def test_instance_operations(operation: str, status: RuntimeStatus, code: int) -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        await expect(await client.post(f"{WEBHOOK_PATH}/instances/missing/{operation}"), 404, "")
        engine.add("i", status)
        response = await client.post(f"{WEBHOOK_PATH}/instances/i/{operation.upper()}?Reason=why+not")
        body = await expect(response, code, ... if code == 500 else "")
        if code == 500:
            assert body["Message"] == "Something went wrong while processing your request"
            assert body["ExceptionType"] == "System.InvalidOperationException"
            assert body["ExceptionMessage"] and body["StackTrace"]

    engine = drive(scenario)
    assert engine.calls == ([(operation, "i", "why not")] if code == 202 else [])


def test_unknown_operation_and_methods_are_404() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        engine.add("i", S.Running)
        for method, path in [("POST", "/instances/i/bogus"), ("GET", "/instances/i/terminate"),
                             ("POST", "/instances/i"), ("GET", "/instances/i/raiseEvent/E"),
                             ("GET", "/nothing"), ("GET", "/"), ("GET", "/instances/i/raiseEvent/E/x"),
                             ("GET", "/instances//i")]:
            await expect(await client.request(method, WEBHOOK_PATH + path), 404, "")
        await expect(await client.post(WEBHOOK_PATH + "/makeprimary"), 200, "")

    drive(scenario)


def test_restart() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        engine.add("old", S.Completed, input='"in"')
        body = await expect(await client.post(WEBHOOK_PATH + "/instances/old/restart"), 202, Retry_After="10")
        assert body["id"] == "restarted" and "rewindPostUri" not in body
        url = WEBHOOK_PATH + "/instances/old/Restart?restartWithNewInstanceId=False"
        body = await expect(await client.post(url), 202)
        assert body["id"] == "old"
        await expect(await client.post(RPC_PATH + "/instances/old/restart?restartWithNewInstanceId=true"),
                     202, "restarted")
        body = await expect(await client.post(WEBHOOK_PATH + "/instances/gone/restart"), 400, {
            "Message": "InstanceId does not match a valid orchestration instance.",
            "ExceptionMessage": "An orchestrastion with the instanceId gone was not found.",
            "ExceptionType": "System.ArgumentException", "StackTrace": None})
        await expect(await client.post(RPC_PATH + "/instances/gone/restart"), 404, "")

    engine = drive(scenario)
    assert [c for c in engine.calls if c[0] == "restart"] == \
        [("restart", "old", True), ("restart", "old", False), ("restart", "old", True)]


def test_raise_event() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        url = WEBHOOK_PATH + "/instances/{}/raiseEvent/Approval"
        await expect(await client.post(url.format("missing"), json={}), 404, "")
        for status in (S.Completed, S.Failed, S.Canceled, S.Terminated):
            engine.add("done", status)
            await expect(await client.post(url.format("done"), json={}), 410, "")
        engine.add("i", S.Suspended)
        await expect(await client.post(url.format("i"), data=b"{}"), 400,
                     {"Message": "Only application/json request content is supported"})
        json_type = {"Content-Type": "Application/JSON; charset=utf-8"}
        body = await expect(await client.post(url.format("i"), data=b"{x", headers=json_type), 400)
        assert body["Message"] == "Invalid JSON content"
        python_client_body = json.dumps({"ok": True})  # posted with json=, so encoded twice
        await expect(await client.post(url.format("i"), json=python_client_body), 202, "")
        await expect(await client.post(url.format("i"), data=b'{"ok": true}',
                                       headers={"Content-Type": "application/json"}), 202, "")  # curl
        await expect(await client.post(url.format("i"), json=json.dumps(None)), 202, "")

    engine = drive(scenario)
    assert engine.calls == [("raise_event", "i", "Approval", '"{\\"ok\\": true}"'),
                            ("raise_event", "i", "Approval", '{"ok":true}'),
                            ("raise_event", "i", "Approval", '"null"')]


# ---------------------------------------------------------------------------------------------- entities


def test_entities() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        engine.entities[("counter", "k1")] = '{"n": 3}'
        engine.entities[("counter", "")] = "7"
        await expect(await client.get(WEBHOOK_PATH + "/entities/Counter/k1"), 200, {"n": 3})
        await expect(await client.get(WEBHOOK_PATH + "/entities/counter/$"), 200, 7)
        await expect(await client.get(WEBHOOK_PATH + "/entities/counter/k2"), 404, "")
        url = WEBHOOK_PATH + "/entities/{}/k1?{}=add"
        await expect(await client.post(url.format("Counter", "op"), json=json.dumps(5)), 202, "")
        await expect(await client.post(url.format("counter", "OP"), data=b"raw text"), 202, "")
        await expect(await client.post(WEBHOOK_PATH + "/entities/counter/k1"), 202, "")
        await expect(await client.delete(WEBHOOK_PATH + "/entities/counter/k1?op=ignored"), 202, "")
        body = await expect(await client.post(WEBHOOK_PATH + "/entities/counter/k1?op=add", data=b"{x",
                                              headers={"Content-Type": "application/json"}), 400)
        assert body["Message"].startswith("Could not parse JSON content: ")
        await expect(await client.post(WEBHOOK_PATH + "/entities"), 400, {
            "Message": "Invalid entity id: entity name must not be a null or empty string. "
                       "(Parameter 'entityName')"})
        await expect(await client.put(WEBHOOK_PATH + "/entities/counter/k1"), 404, "")

    engine = drive(scenario)
    assert engine.calls == [("signal", "counter", "k1", "add", '"5"'),
                            ("signal", "counter", "k1", "add", '"raw text"'),
                            ("signal", "counter", "k1", "", None),
                            ("signal", "counter", "k1", "delete", None)]


def test_list_entities() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        engine.add("@counter@k1", S.Running, output='{"n": 3}')
        engine.add("@counter@deleted", S.Running)
        engine.add("@other@k", S.Running, output="1")
        engine.add("orch", S.Running)
        rows = await expect(await client.get(WEBHOOK_PATH + "/entities/Counter?fetchState=true"), 200,
                            x_ms_continuation_token="")
        assert rows == [{"entityId": {"name": "counter", "key": "k1"},
                         "lastOperationTime": "2024-01-01T00:00:05.25Z", "state": {"n": 3}}]
        assert engine.queries[-1] == InstanceQuery(instance_id_prefix="@counter@", top=100)
        url = WEBHOOK_PATH + "/entities{}?lastOperationTime{}=2024-01-01T00:00:05Z"
        rows = await expect(await client.get(url.format("", "From")), 200)
        assert [(row["entityId"]["name"], row["state"]) for row in rows] == \
            [("counter", None), ("other", None)]
        await expect(await client.get(url.format("/", "To")), 200, [])

    drive(scenario)


# ---------------------------------------------------------------------------------------------- failures


def test_unexpected_engine_failure_is_500() -> None:
    async def scenario(client: TestClient, engine: FakeEngine) -> None:
        async def broken(instance_id: str) -> InstanceState | None:
            raise KeyError("disk on fire")

        engine.get_instance = broken  # type: ignore[method-assign]
        body = await expect(await client.get(WEBHOOK_PATH + "/instances/x"), 500)
        assert without_stack(body) == {"Message": "Something went wrong while processing your request",
                                       "ExceptionMessage": "'disk on fire'", "ExceptionType": "KeyError"}

    drive(scenario)


# ---------------------------------------------------------------------------------------- the real SDK client


def drive_sdk(scenario: Callable[[df.DurableOrchestrationClient, FakeEngine], Awaitable[None]]) -> FakeEngine:
    """Run `scenario` with the SDK's client bound to this server's RPC base (`rpcBaseUrl`)."""

    async def with_client(client: TestClient, engine: FakeEngine) -> None:
        rpc_base_url = str(client.make_url(RPC_PATH + "/"))
        binding = client_binding_json(base_url=base_of(client), rpc_base_url=rpc_base_url,
                                      hub_name=engine.hub_name, system_key="SYS")
        try:
            await scenario(df.DurableOrchestrationClient(binding), engine)
        finally:
            # the SDK shares one module-level session, which must not outlive this event loop
            await http_utils._close_session()

    return drive(with_client)


def test_sdk_start_new() -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: FakeEngine) -> None:
        new_id = await client.start_new("hello_orchestrator", None, {"x": 1})
        assert re.fullmatch(r"[0-9a-f]{32}", new_id)
        assert await client.start_new("Other", "my id") == "my id"
        with pytest.raises(Exception, match=re.escape(UNKNOWN_FN)):
            await client.start_new("nope")
        with pytest.raises(Exception, match=re.escape("must not start with @")):
            await client.start_new("hello_orchestrator", "@x")

    engine = drive_sdk(scenario)
    assert engine.calls[0][3] == '"{\\"x\\": 1}"'  # input is stored as JSON text of the JSON text
    assert engine.calls[1] == ("start_new", "Other", "my id", None)


def test_sdk_get_status() -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: FakeEngine) -> None:
        engine.add("abc", S.Completed, input='"{\\"x\\": 1}"', output='["Hello Tokyo"]',
                   custom_status='{"s": 1}')
        engine.histories["abc"] = sample_history()
        status = await client.get_status("abc")
        assert status.runtime_status is OrchestrationRuntimeStatus.Completed
        assert (status.name, status.instance_id, status.input_, status.output, status.custom_status) == \
            ("hello_orchestrator", "abc", '{"x": 1}', ["Hello Tokyo"], {"s": 1})
        assert status.created_time == T0 and status.last_updated_time == at(5)
        status = await client.get_status("abc", show_history=True, show_history_output=True, show_input=True)
        assert status.historyEvents == render_history(sample_history(), show_history_output=True)
        assert status.historyEvents[2]["Result"] == "Hello Tokyo"
        engine.add("run", S.Running)
        assert (await client.get_status("run")).runtime_status is OrchestrationRuntimeStatus.Running
        failure = "Orchestrator function 'hello_orchestrator' failed: boom"
        engine.add("bad", S.Failed, output=failure)
        assert (await client.get_status("bad")).output == failure
        assert not await client.get_status("missing")

    drive_sdk(scenario)


def test_sdk_queries() -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: FakeEngine) -> None:
        engine.add("a", S.Running)
        engine.add("b", S.Pending)
        engine.add("c", S.Completed)
        assert [s.instance_id for s in await client.get_status_all()] == ["a", "b", "c"]
        assert engine.queries[-1] == InstanceQuery(top=100)
        statuses = await client.get_status_by(
            created_time_from=datetime(2024, 1, 1), created_time_to=datetime(2024, 1, 2, 3, 4, 5, 600000),
            runtime_status=[OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Pending],
            instance_id_prefix="a")
        assert [s.instance_id for s in statuses] == ["a"]
        assert engine.queries[-1] == InstanceQuery(
            created_from=T0, created_to=datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=timezone.utc),
            statuses=[S.Running, S.Pending], instance_id_prefix="a", top=100)

    drive_sdk(scenario)


def test_sdk_purge() -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: FakeEngine) -> None:
        engine.add("a", S.Completed)
        assert (await client.purge_instance_history("a")).instances_deleted == 1
        assert (await client.purge_instance_history("a")).instances_deleted == 0
        engine.add("b", S.Failed)
        engine.add("c", S.Completed)
        result = await client.purge_instance_history_by(
            created_time_from=datetime(2023, 1, 1), runtime_status=[OrchestrationRuntimeStatus.Failed])
        assert result.instances_deleted == 1
        everything = await client.purge_instance_history_by(created_time_from=datetime(2023, 1, 1))
        assert everything.instances_deleted == 1
        nothing = await client.purge_instance_history_by(created_time_from=datetime(2023, 1, 1))
        assert nothing.instances_deleted == 0  # the host's 404

    drive_sdk(scenario)


def test_sdk_raise_event() -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: FakeEngine) -> None:
        engine.add("i", S.Running)
        await client.raise_event("i", "Approval", {"ok": True})
        await client.raise_event("i", "Approval")
        with pytest.raises(Exception, match="^No instance with ID missing found.$"):
            await client.raise_event("missing", "Approval", 1)
        engine.add("done", S.Completed)
        with pytest.raises(Exception, match="^Instance with ID done is gone: either completed or failed$"):
            await client.raise_event("done", "Approval", 1)

    engine = drive_sdk(scenario)
    # EventRaised.Input holds the JSON text as a JSON string: the orchestrator sees '{"ok": true}' (§0)
    assert engine.calls == [("raise_event", "i", "Approval", '"{\\"ok\\": true}"'),
                            ("raise_event", "i", "Approval", '"null"')]


def test_sdk_terminate_suspend_resume() -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: FakeEngine) -> None:
        engine.add("i", S.Running)
        await client.suspend("i", "a pause")
        engine.add("s", S.Suspended)
        await client.resume("s", "go on")
        await client.terminate("i", "stop it & go")
        engine.add("done", S.Completed)
        await client.terminate("done", "already over")  # 410 is fine for the SDK
        for call in (client.terminate, client.suspend, client.resume):
            with pytest.raises(Exception, match="^No instance with ID 'missing' found.$"):
                await call("missing", "r")
        with pytest.raises(Exception, match="unexpected status code 500"):
            await client.suspend("s", "twice")

    engine = drive_sdk(scenario)
    assert engine.calls == [("suspend", "i", "a pause"), ("resume", "s", "go on"),
                            ("terminate", "i", "stop it & go")]


def test_sdk_rewind_and_restart() -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: FakeEngine) -> None:
        engine.add("f", S.Failed)
        await client.rewind("f", "retry it")
        engine.add("r", S.Running)
        with pytest.raises(Exception, match="Received unexpected payload from the durable-extension"):
            await client.rewind("r", "no")
        engine.add("c", S.Completed)
        with pytest.raises(Exception, match="only supported on failed orchestration instances"):
            await client.rewind("c", "no")
        with pytest.raises(Exception, match="^No instance with ID nope found.$"):
            await client.rewind("nope", "no")
        assert await client.restart("c") == "restarted"
        assert await client.restart("c", restart_with_new_instance_id=False) == "c"
        with pytest.raises(Exception, match="^No instance with ID 'nope' found.$"):
            await client.restart("nope")

    engine = drive_sdk(scenario)
    assert [c for c in engine.calls if c[0] in ("rewind", "restart")] == \
        [("rewind", "f", "retry it"), ("restart", "c", True), ("restart", "c", False)]


def test_sdk_entities() -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: FakeEngine) -> None:
        await client.signal_entity(df.EntityId("Counter", "k1"), "add", {"n": 2})
        await client.signal_entity(df.EntityId("Counter", "k1"), "reset", 0)  # falsy input: no body
        engine.entities[("counter", "k1")] = '{"n": 2}'
        state = await client.read_entity_state(df.EntityId("Counter", "k1"))
        assert state.entity_exists and state.entity_state == {"n": 2}
        assert not (await client.read_entity_state(df.EntityId("Counter", "k2"))).entity_exists

    engine = drive_sdk(scenario)
    assert engine.calls == [("signal", "counter", "k1", "add", '"{\\"n\\": 2}"'),
                            ("signal", "counter", "k1", "reset", None)]
