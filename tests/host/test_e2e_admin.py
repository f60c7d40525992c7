"""The host's own endpoints (docs §4.6) and the console output of `funcemu start` (docs §8).

One host of tests/host/apps/invoke_app serves most tests; `--functions` and `--verbose` start their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from host_support import APPS
from support import HostProcess

from funcemu.console import CI_VARIABLES

APP = APPS / "invoke_app"
HINT = "For detailed output, run func with --verbose flag."
ADMIN_REASON = "This function was programmatically called via the host APIs."
HTTP_FUNCTIONS = {  # name -> (methods, route), as declared in the app
    "actx": ("", "actx"), "bp_where": ("", "bp/where"), "ctx": ("[GET,POST]", "ctx"),
    "generic_http": ("[POST]", "generic/{word}"), "logs": ("", "logs"),
    "on_loop": ("", "loop"), "out_resp": ("", "out"), "out_unset": ("", "outunset"), "quiet": ("", "quiet"),
    "slow_async": ("", "slow/async"), "slow_sync": ("", "slow/sync"), "thread_name": ("", "thread"),
}
NOT_CI = dict.fromkeys(CI_VARIABLES, "")  # a CI environment shows system Information lines, as --verbose


@pytest.fixture(scope="module")
def host() -> Iterator[HostProcess]:
    with HostProcess(APP, env=NOT_CI) as running:
        yield running


@pytest.fixture(scope="module")
def filtered() -> Iterator[HostProcess]:
    """A second host serving two of the functions, with --verbose."""
    with HostProcess(APP, "--functions", "ctx", "yearly", "--verbose") as running:
        yield running


def functions_block(host: HostProcess) -> list[str]:
    """The lines from `Functions:` up to the hint that follows the block (or the first log line)."""
    lines = host.lines
    start = lines.index("Functions:")
    end = next(i for i, line in enumerate(lines[start:], start)
               if line.startswith(("For detailed output", "[", "Listening on")))
    return lines[start - 1:end]


def test_functions_block_lists_http_then_other_functions_in_name_order(host: HostProcess) -> None:
    base = "http://localhost:" + host.url.rsplit(":", 1)[1]
    expected = ["", "Functions:", ""]
    for name, (methods, route) in sorted(HTTP_FUNCTIONS.items(), key=lambda item: item[0].upper()):
        expected += [f"\t{name}: {methods} {base}/api/{route}", ""]
    expected += ["\tyearly: timerTrigger", ""]
    assert functions_block(host) == expected


def test_banner_then_block_then_listening(host: HostProcess) -> None:
    assert host.lines[0] == "" and host.lines[1].startswith("Azure Functions Core Tools")
    assert any(line.startswith("Core Tools Version:") for line in host.lines[:5])
    listening = next(i for i, line in enumerate(host.lines) if line.startswith("Listening on "))
    functions, hint = host.lines.index("Functions:"), host.lines.index(HINT)
    assert functions < hint < listening
    logged = [(i, line.split("] ", 1)[1]) for i, line in enumerate(host.lines[:listening]) if line.startswith("[")]
    # no system noise by default: only the two lines Core Tools always shows, the worker's before the
    # Functions block, the lease's after the hint
    assert [text for _, text in logged] == ["Worker process started and initialized.",
                                            f"Host lock lease acquired by instance ID '{host_id(host)}'."]
    assert logged[0][0] < functions and logged[1][0] > hint


def host_id(host: HostProcess) -> str:
    return str(host.call("GET", "/admin/host/status").json()["id"])


def test_one_executing_executed_pair_per_invocation(host: HostProcess) -> None:
    since = len(host.lines)
    for _ in range(2):
        start = len(host.lines)
        host.call("GET", "/api/loop")
        host.wait_for_log(r"Executed 'Functions\.on_loop' ", since=start)
    pattern = re.compile(r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] (Executing|Executed) 'Functions\.on_loop' "
                         r"\((?:Reason='([^']*)'|Succeeded), Id=([0-9a-f-]{36})(?:, Duration=\d+ms)?\)$")
    found = [m.groups() for line in host.lines[since:] if (m := pattern.match(line))]
    assert [kind for kind, _, _ in found] == ["Executing", "Executed", "Executing", "Executed"]
    assert found[0][1] == ADMIN_REASON and found[0][2] == found[1][2] != found[2][2] == found[3][2]


def test_home_page(host: HostProcess) -> None:
    reply = host.call("GET", "/")
    assert reply.status == 200 and reply.headers["content-type"] == "text/html"
    assert "Your Azure Function App is up and running." in reply.text


def test_host_status_and_ping(host: HostProcess) -> None:
    status = host.call("GET", "/admin/host/status")
    assert status.status == 200 and status.headers["content-type"].startswith("application/json")
    payload = status.json()
    assert payload["state"] == "Running" and payload["version"] and payload["id"]
    assert isinstance(payload["processUptime"], int) and "errors" not in payload
    assert host.call("GET", "/admin/host/ping").status == 200


def test_admin_functions_metadata(host: HostProcess) -> None:
    listed = host.call("GET", "/admin/functions").json()
    assert sorted(f["name"] for f in listed) == sorted([*HTTP_FUNCTIONS, "yearly"])
    ctx = host.call("GET", "/admin/functions/CTX").json()
    assert ctx["name"] == "ctx" and ctx["invoke_url_template"].endswith("/api/ctx")
    assert host.call("GET", "/admin/functions/nope").status == 404


def test_admin_invoke_runs_a_non_http_function(host: HostProcess) -> None:
    since = len(host.lines)
    reply = host.call("POST", "/admin/functions/yearly", {"input": "ignored by timers"})
    assert (reply.status, reply.body) == (202, b"")
    executing = host.wait_for_log(r"Executing 'Functions\.yearly' \(Reason='([^']*)', Id=([0-9a-f-]+)\)",
                                  since=since)
    assert executing.group(1) == ADMIN_REASON
    host.wait_for_log(r"\] yearly ran: past_due=False$", since=since)
    host.wait_for_log(rf"Executed 'Functions\.yearly' \(Succeeded, Id={executing.group(2)}, Duration=\d+ms\)",
                      since=since)


def test_admin_invoke_finds_the_function_ignoring_case(host: HostProcess) -> None:
    since = len(host.lines)
    assert host.call("POST", "/admin/functions/YEARLY", {"input": ""}).status == 202
    host.wait_for_log(r"Executed 'Functions\.yearly' \(Succeeded", since=since)


@pytest.mark.parametrize("name, body, status", [
    ("yearly", None, 400),
    ("yearly", b"not json", 400),
    ("yearly", b"[1, 2]", 400),
    ("nope", b'{"input": ""}', 404),
    ("nope", b"not json", 400),  # the body is checked first, as in the host's controller
])
def test_admin_invoke_errors(host: HostProcess, name: str, body: bytes | None, status: int) -> None:
    reply = host.call("POST", f"/admin/functions/{name}", raw=body)
    assert reply.status == status


def test_functions_option_serves_only_the_named_functions(filtered: HostProcess) -> None:
    base = "http://localhost:" + filtered.url.rsplit(":", 1)[1]
    assert functions_block(filtered) == ["", "Functions:", "", f"\tctx: [GET,POST] {base}/api/ctx", "",
                                         "\tyearly: timerTrigger", ""]
    assert filtered.call("GET", "/api/ctx").status == 200
    assert filtered.call("GET", "/api/loop").status == 404
    assert filtered.call("POST", "/admin/functions/thread_name", {"input": ""}).status == 404


def test_verbose_shows_host_information_records(filtered: HostProcess) -> None:
    assert "For detailed output, run func with --verbose flag." not in filtered.lines
    filtered.wait_for_log(r"\] Mapped function route 'api/ctx' \[get,post\] to 'ctx'$")
    filtered.wait_for_log(r"\] 2 functions loaded$")
    filtered.wait_for_log(r"\] Host started \(\d+ms\)$")
