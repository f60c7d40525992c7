"""`funcemu durable <verb>` (the verbs of `func durable`) and `funcemu replay FILE`.

The durable verbs talk to the Durable management API over HTTP, so they work against `funcemu start`
(the default, http://localhost:7071), `func start`, or an app on Azure (`--base-url`, `--key`).
Exit status: 0 done, 1 the host refused or could not be reached (or a replay diverged), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from funcemu.durable.http_client import NO_BODY, ManagementClient, ManagementError, Reply
from funcemu.errors import FuncemuError

DEFAULT_BASE_URL = "http://localhost:7071"
EARLIEST = "0001-01-01T00:00:00Z"
ACTIVE_STATUSES = "Running,Pending,Suspended,ContinuedAsNew"
Verb = Callable[[argparse.Namespace, ManagementClient], int]


class UsageError(FuncemuError):
    """Bad command-line input (exit status 2)."""


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _add_durable(commands)
    _add_replay(commands)


# ---------------------------------------------------------------------------------------------- parser


def _add_durable(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    durable = commands.add_parser("durable", help="manage orchestrations through the Durable HTTP API "
                                  "(the verbs of `func durable`)")
    verbs = durable.add_subparsers(dest="verb", required=True, metavar="VERB")
    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("host")
    group.add_argument("--base-url", default=os.environ.get("FUNCEMU_URL") or DEFAULT_BASE_URL,
                       help=f"the function app (default: $FUNCEMU_URL, else {DEFAULT_BASE_URL})")
    group.add_argument("--key", default=os.environ.get("FUNCEMU_KEY"),
                       help="sent as x-functions-key (an app on Azure: its master key; default: $FUNCEMU_KEY)")
    group.add_argument("--task-hub", "--task-hub-name", dest="task_hub", default=None,
                       help="task hub name (default: the app's own)")

    def verb(name: str, help: str, run: Verb, ids: str = "required") -> argparse.ArgumentParser:
        """`ids`: whether the verb takes an instance ID (positional, or --id): required, optional, none."""
        parser: argparse.ArgumentParser = verbs.add_parser(name, help=help, parents=[connection])
        if ids != "none":
            parser.add_argument("instance_id", nargs="?", metavar="ID", help="the instance id (or --id)")
            parser.add_argument("--id", dest="id_option", default=None, help=argparse.SUPPRESS)
        parser.set_defaults(run=_runner(run, ids))
        return parser

    start = verb("start-new", "start an orchestration", _start_new, ids="none")
    start.add_argument("--function-name", required=True, help="the orchestrator function")
    start.add_argument("--input", default=None, help="input: JSON, text, or @FILE (text that is not JSON is "
                       "sent as a string; text starting with { or [ must be valid JSON)")
    start.add_argument("--id", dest="new_id", default=None, help="instance id (default: a new GUID)")
    status = verb("get-runtime-status", "show an instance's status", _get_status)
    status.add_argument("--show-input", action="store_true", help="include the input")
    status.add_argument("--show-history", action="store_true", help="include the history")
    status.add_argument("--show-output", action="store_true", help="include outputs in the history")
    history = verb("get-history", "show an instance's history as a timeline", _get_history)
    history.add_argument("--json", action="store_true", help="print the management API's JSON instead")
    history.add_argument("--output", "-o", type=Path, default=None,
                         help="write the history to this file, for `funcemu replay`")
    instances = verb("get-instances", "list instances", _get_instances, ids="none")
    _add_filters(instances)
    instances.add_argument("--instance-id-prefix", default=None)
    instances.add_argument("--top", type=int, default=None, help="page size")
    instances.add_argument("--continuation-token", default=None)
    event = verb("raise-event", "send an event to an instance", _raise_event)
    event.add_argument("--event-name", required=True)
    event.add_argument("--event-data", default=None, help="the event's data: JSON, text, or @FILE (text that is "
                       "not JSON is sent as a string; text starting with { or [ must be valid JSON)")
    for name, help in (("terminate", "terminate an instance"), ("suspend", "suspend an instance"),
                       ("resume", "resume a suspended instance"), ("rewind", "rewind a failed instance")):
        verb(name, help, _operation).add_argument("--reason", default=f"{name} by funcemu durable")
    purge = verb("purge-history", "delete instances and their history (one ID, or by filter)", _purge,
                 ids="optional")
    _add_filters(purge)
    verb("delete-task-hub", "terminate every instance and delete them all", _delete_task_hub, ids="none")


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--created-after", default=None, help="ISO 8601 time")
    parser.add_argument("--created-before", default=None, help="ISO 8601 time")
    parser.add_argument("--runtime-status", action="append", default=None,
                        help="Running, Completed, Failed, ... (comma-separated or repeated)")


def _add_replay(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    replay = commands.add_parser("replay", help="replay a recorded history against the current code and "
                                 "report divergence")
    replay.add_argument("file", type=Path, help="a history: `funcemu durable get-history ID --output FILE`, or "
                        "the JSON of GET .../instances/{id}?showHistory=true&showHistoryOutput=true&showInput=true")
    replay.add_argument("--app", type=Path, default=None, help="the function app folder (default: here)")
    replay.add_argument("--orchestrator", default=None, help="fail unless the history is from this orchestrator")
    replay.set_defaults(run=_replay)


def _runner(verb: Verb, ids: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            if ids != "none":
                args.instance_id = args.instance_id or args.id_option
                if ids == "required" and not args.instance_id:
                    raise UsageError("an instance ID is required (ID or --id ID)")
            return verb(args, ManagementClient(args.base_url, key=args.key, task_hub=args.task_hub))
        except FuncemuError as exc:
            print(f"funcemu durable {args.verb}: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, UsageError) else 1

    return run


# ---------------------------------------------------------------------------------------------- verbs


def _start_new(args: argparse.Namespace, client: ManagementClient) -> int:
    path = "orchestrators/" + "/".join(map(_segment, [args.function_name] + ([args.new_id] if args.new_id else [])))
    # As the Python client sends it (JSON text in a JSON string), so that get_input() returns the value
    # whatever its type (durable-protocol.md §0).
    body = json.dumps(_value(args.input, "--input")) if args.input is not None else NO_BODY
    reply = client.call("POST", path, body=body)
    payload = reply.expect(202, what=f"start '{args.function_name}'")
    print(f"Started '{args.function_name}': instance {payload['id']}")
    print(f"Status: {payload.get('statusQueryGetUri')}")
    return 0


def _get_status(args: argparse.Namespace, client: ManagementClient) -> int:
    query = {"showInput": args.show_input, "showHistory": args.show_history, "showHistoryOutput": args.show_output}
    _print_json(client.status(args.instance_id, **query))
    return 0


def _get_history(args: argparse.Namespace, client: ManagementClient) -> int:
    status = client.status(args.instance_id, showInput=True, showHistory=True, showHistoryOutput=True)
    if args.output is not None:
        document, exact = client.export(args.instance_id, status)
        try:
            args.output.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--output {args.output}: {exc.strerror or exc}") from None
        kind = "funcemu export, exact sequence ids" if exact else "management API JSON"
        print(f"Wrote the history of {args.instance_id} ({len(status.get('historyEvents') or [])} events, {kind}) "
              f"to {args.output}")
        return 0
    if args.json:
        _print_json(status)
    else:
        from funcemu.durable.timeline import render_timeline
        print(render_timeline(status))
    return 0


def _get_instances(args: argparse.Namespace, client: ManagementClient) -> int:
    query = {**_filters(args, earliest=None), "instanceIdPrefix": args.instance_id_prefix, "top": args.top}
    headers = {"x-ms-continuation-token": args.continuation_token} if args.continuation_token else {}
    reply = client.call("GET", "instances", query=query, headers=headers)
    _print_json(reply.expect(200, what="list instances"))
    token = reply.headers.get("x-ms-continuation-token")
    if token and token != "null":
        print(f"More instances: --continuation-token {token}", file=sys.stderr)
    return 0


def _raise_event(args: argparse.Namespace, client: ManagementClient) -> int:
    data = _value(args.event_data, "--event-data") if args.event_data is not None else None
    path = f"instances/{_segment(args.instance_id)}/raiseEvent/{_segment(args.event_name)}"
    client.call("POST", path, body=data).expect(202, what=f"raise '{args.event_name}'", instance=args.instance_id)
    print(f"Raised event '{args.event_name}' on instance {args.instance_id}")
    return 0


def _operation(args: argparse.Namespace, client: ManagementClient) -> int:
    reply = client.call("POST", f"instances/{_segment(args.instance_id)}/{args.verb}", query={"reason": args.reason})
    if args.verb == "rewind" and reply.status == 410:  # the host answers 410 for an instance that ended otherwise
        raise ManagementError(f"instance '{args.instance_id}' has ended without failing, so it cannot be rewound: "
                              "only Failed instances can be rewound (410)")
    reply.expect(202, what=args.verb, instance=args.instance_id)
    print(f"{args.verb.capitalize()} requested for instance {args.instance_id} (reason: {args.reason})")
    return 0


def _purge(args: argparse.Namespace, client: ManagementClient) -> int:
    if args.instance_id:
        reply = client.call("DELETE", f"instances/{_segment(args.instance_id)}")
    else:
        reply = client.call("DELETE", "instances", query=_filters(args, earliest=EARLIEST))
    deleted = _deleted(reply)
    print(f"Purged {deleted} instance(s)")
    return 0


def _delete_task_hub(args: argparse.Namespace, client: ManagementClient, timeout: float = 30) -> int:
    """Over HTTP a task hub cannot be dropped, so: terminate what is still active, then purge everything."""
    active = [row["instanceId"] for row in client.all_instances(runtimeStatus=ACTIVE_STATUSES)]
    for instance_id in active:
        if not instance_id.startswith("@"):
            client.call("POST", f"instances/{_segment(instance_id)}/terminate", query={"reason": "task hub deleted"})
    deadline = time.monotonic() + timeout
    while [r for r in client.all_instances(runtimeStatus=ACTIVE_STATUSES) if not r["instanceId"].startswith("@")]:
        if time.monotonic() > deadline:
            raise ManagementError(f"instances still active after {timeout:g}s of terminating them")
        time.sleep(0.05)
    reply = client.call("DELETE", "instances", query={"createdTimeFrom": EARLIEST})
    deleted = _deleted(reply)
    print(f"Deleted the task hub's {deleted} instance(s) (terminated {len(active)} active first)")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from funcemu.config import find_app_root
    from funcemu.durable.replayer import replay_file

    try:
        report = replay_file(find_app_root(args.app or Path.cwd()), args.file, orchestrator=args.orchestrator)
    except FuncemuError as exc:
        print(f"funcemu replay: {exc}", file=sys.stderr)
        return 2
    print(report)
    return 0 if report.ok else 1


# ---------------------------------------------------------------------------------------------- helpers


def _filters(args: argparse.Namespace, earliest: str | None) -> dict[str, Any]:
    statuses = ",".join(s.strip() for value in args.runtime_status or [] for s in value.split(",") if s.strip())
    return {"createdTimeFrom": args.created_after or earliest, "createdTimeTo": args.created_before,
            "runtimeStatus": statuses or None}


def _deleted(reply: Reply) -> int:
    """A purge's `instancesDeleted` (the host answers 404 when nothing matched)."""
    return 0 if reply.status == 404 else int(reply.expect(200, what="purge")["instancesDeleted"])


def _value(text: str, option: str) -> Any:
    """JSON when it parses, else the text itself; `@FILE` reads the file. Text that starts like a JSON
    object or array must parse: `{bad json` is a typo, not a string to send."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{option} {text}: cannot read {text[1:]}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        if text.lstrip().startswith(("{", "[")):
            raise UsageError(f"{option}: not valid JSON ({exc}); plain text is sent as a string, but text "
                             "starting with { or [ must be valid JSON") from None
        return text


def _segment(text: str) -> str:
    return quote(text, safe="")


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
