"""The blob trigger (§5.3): container scans, receipts, and a host queue that runs the functions.

Each blob-triggered function scans its container (`path` is `<container>/<pattern>`, the pattern's
`{name}`-style parameters become binding data). For every blob version (ETag) not seen before, the
receipt blob `azure-webjobs-hosts/blobreceipts/<hostId>/Host.Functions.<name>/"<ETag>"/<container>/<blob>`
decides: completed (no `Incomplete` metadata) => skip; otherwise the receipt is created, a message `{FunctionId, BlobType,
ContainerName, BlobName, ETag}` goes to the host queue `azure-webjobs-blobtrigger-<hostId>`, and the
receipt is marked complete. The host queue is processed like a queue trigger (extensions.queues
options), so a failing function is retried and then lands in `webjobs-blobtrigger-poison`. Thus each
blob version triggers once per function, across restarts.

A trigger with `source="EventGrid"` does not scan (§5.3): Event Grid posts BlobCreated events to
`/runtime/webhooks/blobs?functionName=Host.Functions.<name>`, as in the storage extension every event
becomes a host queue message (no receipt), and the function runs for the blob as it is then (no ETag
check). Locally such events can be posted by hand (see `event_grid_webhook`).

funcemu scans every SCAN_INTERVAL seconds. The host scans every 10 s and also reads storage analytics
logs, which Azurite does not have; scanning more often locally only makes detection quicker. Blobs
written by this host's own output bindings wake the scan at once, as in the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob.aio import BlobClient

from funcemu.app import FunctionSpec
from funcemu.config import is_ip_address
from funcemu.errors import FuncemuError
from funcemu.invoke import HOST_API_REASON
from funcemu.triggers.convert import annotation, decode_input, metadata_datums
from funcemu.triggers.expressions import tokens
from funcemu.triggers.inputs import blob_datum
from funcemu.triggers.polling import QueueListener, QueueOptions, Received, encode_body
from funcemu.triggers.storage import StorageAccount, Watchers

log = logging.getLogger("funcemu.triggers.blob")
SCAN_INTERVAL = 2.0
HOSTS_CONTAINER = "azure-webjobs-hosts"
POISON_QUEUE = "webjobs-blobtrigger-poison"
INCOMPLETE = "Incomplete"   # BlobReceipt: the key's presence marks an incomplete receipt (value = key)


class BlobPathError(FuncemuError):
    def __init__(self, function: str, path: str, problem: str) -> None:
        super().__init__(f"Function '{function}' (blobTrigger): path '{path}' {problem}")


class BlobPattern:
    """`container/prefix-{name}.{ext}`: a literal container and a blob-name pattern, compiled once.

    As the SDK's BindingTemplateSource: a parameter captures any text, even none (`(?<name>.*)`), and
    `{{`/`}}` are literal braces. A path that is only a container matches every blob in it
    (FixedBlobPathSource)."""

    def __init__(self, function: str, path: str) -> None:
        container, _, pattern = path.strip("/").partition("/")
        if not container or "{" in container or "}" in container:
            raise BlobPathError(function, path, "must start with a literal container name ('<container>/...').")
        self.container, self.pattern = container.lower(), pattern
        pieces = tokens(pattern)
        self.prefix = "".join(text for text, _ in itertools.takewhile(lambda piece: not piece[1], pieces))
        self.names: list[str] = []
        body = self._compile(function, path, pieces) if pattern else ".*"
        self.regex = re.compile("^" + body + "$", re.DOTALL)

    def _compile(self, function: str, path: str, pieces: list[tuple[str, bool]]) -> str:
        parts = []
        for text, is_parameter in pieces:
            if not is_parameter:
                parts.append(re.escape(text))
                continue
            name = text.strip()
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) or name.lower() in (n.lower() for n in self.names):
                raise BlobPathError(function, path, f"has an invalid or repeated parameter '{{{name}}}'.")
            self.names.append(name)
            parts.append(f"(?P<{name}>.*)")
        return "".join(parts)

    def match(self, blob_name: str) -> dict[str, str] | None:
        found = self.regex.match(blob_name)
        return found.groupdict() if found else None


def receipt_completed(metadata: dict[str, str]) -> bool:
    """As BlobReceipt.FromMetadata (no `Incomplete` key => complete), plus funcemu's older
    `IsCompleted: false` receipts, which are incomplete."""
    keys = {key.lower(): value for key, value in metadata.items()}
    return INCOMPLETE.lower() not in keys and keys.get("iscompleted", "true").lower() != "false"


def completed_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """BlobReceipt.Complete.ToMetadata: the other metadata stays, the incomplete marks go."""
    return {k: v for k, v in metadata.items() if k.lower() not in (INCOMPLETE.lower(), "iscompleted")}


def host_queue_name(host_id: str) -> str:
    safe = re.sub(r"[^a-z0-9-]", "", host_id.lower())[:37].strip("-") or "funcemu"
    return f"azure-webjobs-blobtrigger-{safe}"


def blob_properties(props: Any) -> dict[str, Any]:
    """BlobProperties as the host's JSON (the library reads ContentLength / Length from it)."""
    settings = props.content_settings
    return {"ContentLength": props.size, "Length": props.size, "ContentType": settings.content_type,
            "ContentEncoding": settings.content_encoding, "ETag": props.etag,
            "LastModified": props.last_modified.isoformat() if props.last_modified else None,
            "CreatedOn": props.creation_time.isoformat() if props.creation_time else None,
            "BlobType": str(getattr(props.blob_type, "value", props.blob_type))}


class BlobTrigger:
    """One blob-triggered function: its container scan and how it runs for one blob."""

    def __init__(self, host: Any, spec: FunctionSpec, pattern: BlobPattern, account: StorageAccount,
                 processor: BlobQueueProcessor, watchers: Watchers) -> None:
        self.host, self.spec, self.pattern, self.account = host, spec, pattern, account
        self.host_account, self.processor = processor.account, processor
        self.function_id = f"Host.Functions.{spec.name}"
        self.event_grid = str(spec.trigger.get("source", "")).lower() == "eventgrid"
        self.source = "EventGrid" if self.event_grid else "LogsAndContainerScan"
        self.receipt_prefix = f"blobreceipts/{host.host_id}/{self.function_id}"
        self._wakeup = watchers.subscribe(account.key("blob", pattern.container))
        self._seen: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if not self.event_grid:  # EventGrid triggers only run for posted events
            self._task = asyncio.create_task(self._run(), name=f"blob scan {self.spec.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                await self.scan()
            except Exception as exc:  # storage went away: keep scanning, as the host's listener does
                log.error("Scanning container '%s' for function '%s' failed: %s: %s", self.pattern.container,
                          self.spec.name, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            try:
                await asyncio.wait_for(self._wakeup.wait(), SCAN_INTERVAL)
            except asyncio.TimeoutError:
                pass

    async def scan(self) -> int:
        """Enqueue every new blob version; returns how many were enqueued."""
        container = self.account.container(self.pattern.container)
        enqueued = 0
        try:
            async for blob in container.list_blobs(name_starts_with=self.pattern.prefix or None):
                etag = '"' + str(blob.etag).strip('"') + '"'   # as the header gives it (BlobProperties.ETag)
                if self._seen.get(blob.name) == etag or self.pattern.match(blob.name) is None:
                    continue
                if await self._claim(blob.name, etag):
                    enqueued += 1
                self._seen[blob.name] = etag
        except ResourceNotFoundError:  # no container yet: nothing to trigger on
            return enqueued
        return enqueued

    def _receipt(self, blob_name: str, etag: str) -> BlobClient:
        path = f"{self.receipt_prefix}/{etag}/{self.pattern.container}/{blob_name}"
        return self.host_account.container(HOSTS_CONTAINER).get_blob_client(path)

    async def _receipt_metadata(self, receipt: BlobClient) -> dict[str, str] | None:
        """The receipt's metadata; None when there is no receipt."""
        try:
            props = await receipt.get_blob_properties()
        except ResourceNotFoundError:
            return None
        return dict(props.metadata or {})

    async def _claim(self, blob_name: str, etag: str) -> bool:
        """The receipt protocol (BlobTriggerExecutor): skip completed receipts; otherwise create an
        incomplete one, enqueue, then mark it complete. The receipt name keeps the ETag as the
        storage SDK reports it, quotes included; funcemu's older receipts (ETag without quotes,
        metadata `IsCompleted`) still count, and an incomplete one is the receipt marked complete."""
        receipt = self._receipt(blob_name, etag)
        metadata = await self._receipt_metadata(receipt)
        if metadata is None and etag.startswith('"'):
            older = self._receipt(blob_name, etag.strip('"'))
            metadata = await self._receipt_metadata(older)
            if metadata is not None:
                receipt = older
        if metadata is not None and receipt_completed(metadata):
            return False
        if metadata is None:
            await self.host_account.ensure_container(HOSTS_CONTAINER)
            metadata = {INCOMPLETE: INCOMPLETE}
            try:
                await receipt.upload_blob(b"", metadata=metadata, overwrite=False)
            except ResourceExistsError:
                pass  # another scan just created it: enqueue anyway (at least once)
        await self.processor.enqueue(queue_message(self.function_id, self.pattern.container, blob_name, etag))
        with contextlib.suppress(ResourceNotFoundError):  # the receipt was deleted meanwhile: nothing to mark
            await receipt.set_blob_metadata(completed_metadata(metadata))
        return True

    async def run_for(self, blob_name: str, etag: str | None, reason: str) -> bool:
        """Invoke for one blob version; a deleted or since-changed blob is done (its new version has
        its own receipt)."""
        blob = self.account.container(self.pattern.container).get_blob_client(blob_name)
        try:
            props = await blob.get_blob_properties()
            if etag is not None and str(props.etag).strip('"') != etag.strip('"'):
                return True
            stream = await blob.download_blob(etag=props.etag, match_condition=MatchConditions.IfNotModified)
            content = await stream.readall()
        except ResourceModifiedError:
            return True                      # changed while we looked: the new version has its own receipt
        except ResourceNotFoundError:
            log.warning("Blob '%s/%s' no longer exists; function '%s' is not run.", self.pattern.container,
                        blob_name, self.spec.name)
            return True
        try:
            value, data = self.trigger_value(blob, props, content, blob_name)
            result = await self.host.call(self.spec, self.spec.trigger["name"], value, data, reason=reason)
        except Exception as exc:  # an input binding or conversion failed: the attempt counts as failed
            log.error("Function '%s' could not be invoked: %s: %s", self.spec.name, type(exc).__name__, exc)
            return False
        return bool(result.ok)

    def trigger_value(self, blob: BlobClient, props: Any, content: bytes,
                      blob_name: str) -> tuple[Any, dict[str, Any]]:
        """(the function's value, binding data): path captures plus BlobTrigger, Uri, Properties, Metadata."""
        system = {"BlobTrigger": f"{self.pattern.container}/{blob_name}", "Uri": blob.url,
                  "Properties": blob_properties(props), "Metadata": dict(props.metadata or {})}
        trigger_metadata = metadata_datums(system)
        datum = blob_datum(content, self.spec.trigger, annotation(self.spec, self.spec.trigger["name"]))
        value = decode_input(self.spec, self.spec.trigger, datum, trigger_metadata)
        return value, {**(self.pattern.match(blob_name) or {}), **system}

    async def invoke_by_admin(self, raw_input: str | None) -> None:
        """`POST /admin/functions/<name>` with `container/blob` (or just the blob name) as input."""
        text = (raw_input or "").strip("/")
        prefix = self.pattern.container + "/"
        blob_name = text[len(prefix):] if text.lower().startswith(prefix) else text
        await self.run_for(blob_name, None, HOST_API_REASON)


class BlobQueueProcessor:
    """The host queue: scanners enqueue, one listener runs the messages of every blob-triggered function."""

    def __init__(self, account: StorageAccount, queue_name: str, options: QueueOptions, watchers: Watchers) -> None:
        self.account, self.queue_name, self.options, self.watchers = account, queue_name, options, watchers
        self.triggers: dict[str, BlobTrigger] = {}
        self.listener = QueueListener(queue_name, account.queue(queue_name), options, self.handle,
                                      lambda: account.ensure_queue(POISON_QUEUE),
                                      watchers.subscribe(account.key("queue", queue_name)))
        self._started = False

    def start(self) -> None:
        """Start listening on the host queue; later calls (from further blob triggers) do nothing."""
        if not self._started:
            self.listener.start()
            self._started = True

    def add(self, trigger: BlobTrigger) -> None:
        self.triggers[trigger.function_id] = trigger

    async def enqueue(self, message: dict[str, Any]) -> None:
        queue = await self.account.ensure_queue(self.queue_name)
        await queue.send_message(encode_body(json.dumps(message).encode("utf-8"), self.options.message_encoding))
        self.watchers.notify(self.account.key("queue", self.queue_name))

    async def handle(self, received: Received) -> bool:
        try:
            message = json.loads(received.body)
            trigger = self.triggers[message["FunctionId"]]
        except (ValueError, KeyError, TypeError):
            log.warning("Ignoring an unexpected message on the blob trigger queue: %r", received.body[:200])
            return True
        path = f"{message['ContainerName']}/{message['BlobName']}"
        if trigger.event_grid and (str(message["ContainerName"]).lower() != trigger.pattern.container
                                   or trigger.pattern.match(str(message["BlobName"])) is None):
            log.warning("Blob '%s' does not match the path '%s' of function '%s'; it is not run.", path,
                        trigger.spec.trigger.get("path"), trigger.spec.name)
            return True
        return await trigger.run_for(message["BlobName"], None if trigger.event_grid else message.get("ETag"),
                                     f"New blob detected({trigger.source}): {path}")


async def event_grid_webhook(host: Any, request: web.Request) -> web.StreamResponse:
    """`POST /runtime/webhooks/blobs?functionName=Host.Functions.<name>`, as the storage extension.

    Header `aeg-event-type`: `SubscriptionValidation` => 200 `{"validationResponse": <data.validationCode>}`;
    `Notification` => each event (an array, or one object) is queued for the function: 202, empty body;
    `Unsubscribe` => 202; anything else => 400. A body it cannot read is a 500 (the extension throws).
    """
    processor = getattr(host, "blob_queue", None)  # set by triggers/startup.py
    if processor is None:
        return web.Response(status=503)  # the blob triggers have not started yet
    function_id = request.query.get("functionName", "")
    kind = request.headers.get("aeg-event-type", "").lower()
    if kind not in ("subscriptionvalidation", "notification"):
        return web.Response(status=202 if kind == "unsubscribe" else 400)
    try:
        body = json.loads(await request.read())
        if kind == "subscriptionvalidation":
            data = body[0]["data"] if isinstance(body, list) else json.loads(str(body["data"]))
            log.info("perform handshake with eventGrid for function: %s", function_id)
            return web.Response(text=json.dumps({"validationResponse": str(data["validationCode"])}))
        events = body if isinstance(body, list) else [body]
        messages = [blob_created_message(event, function_id) for event in events]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        log.error("The Event Grid request for '%s' cannot be read: %s: %s", function_id, type(exc).__name__, exc)
        return web.Response(status=500)
    for message in messages:
        await processor.enqueue(message)
    return web.Response(status=202)


def blob_created_message(event: dict[str, Any], function_id: str) -> dict[str, Any]:
    """The host queue message for one event: the blob from `data.url`, `data.eTag`, `data.blobType`."""
    data = event["data"]
    url = urlsplit(str(data["url"]))
    parts = [unquote(p) for p in url.path.lstrip("/").split("/")]
    if _path_style(url.hostname or "", url.port):
        parts = parts[1:]  # http://127.0.0.1:10000/<account>/<container>/<blob> (Azurite)
    if len(parts) < 2 or not parts[0] or not parts[-1]:
        raise ValueError(f"data.url '{data['url']}' does not name a blob")
    return queue_message(function_id, parts[0], "/".join(parts[1:]), str(data.get("eTag") or "").strip('"'),
                         str(data.get("blobType") or "BlockBlob"))


def queue_message(function_id: str, container: str, blob_name: str, etag: str,
                  blob_type: str = "BlockBlob") -> dict[str, Any]:
    """The host queue's BlobTriggerMessage for one blob version."""
    return {"Type": "BlobTrigger", "FunctionId": function_id, "BlobType": blob_type,
            "ContainerName": container, "BlobName": blob_name, "ETag": etag}


def _path_style(hostname: str, port: int | None) -> bool:
    """As the SDK's BlobUriBuilder: an IP address (or a local emulator port) puts the account in the path."""
    return is_ip_address(hostname) or hostname == "localhost" or (port is not None and 10000 <= port <= 10009)
