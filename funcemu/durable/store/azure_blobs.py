"""The `{h}-largemessages` container: gzip blobs for payloads too large for a queue message or a table
column (docs/azure-storage-taskhub.md §2.4). The container is created on the first upload, as the
provider does."""

from __future__ import annotations

import asyncio
import gzip
import json
from urllib.parse import quote, unquote

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobServiceClient


class LargeMessages:
    def __init__(self, service: BlobServiceClient, container: str) -> None:
        self._container = service.get_container_client(container)

    @property
    def url(self) -> str:
        return str(self._container.url).rstrip("/")

    def url_for(self, name: str) -> str:
        """The absolute URL the Instances table stores, each path segment escaped (§2.4)."""
        return self.url + "/" + "/".join(quote(segment, safe="") for segment in name.split("/"))

    def name_in(self, value: str | None) -> str | None:
        """The blob name if `value` is a URL into this container, else None."""
        prefix = self.url + "/"
        if not value or not value.startswith(prefix):
            return None
        return "/".join(unquote(segment) for segment in value[len(prefix):].split("/"))

    async def upload(self, name: str, text: str) -> None:
        data = gzip.compress(text.encode("utf-8"))
        try:
            await self._container.upload_blob(name, data, overwrite=True)
        except ResourceNotFoundError:
            await self._create()
            await self._container.upload_blob(name, data, overwrite=True)

    async def download(self, name: str) -> str:
        stream = await self._container.download_blob(name)
        return gzip.decompress(await stream.readall()).decode("utf-8")

    async def value(self, name: str) -> str | None:
        """A column's value kept in blob `name`. A `...ExecutionStarted.json.gz` blob is a whole queue
        message (a start too large for the queue): the value is its ExecutionStarted input (§2.4)."""
        text = await self.download(name)
        if not name.endswith("ExecutionStarted.json.gz"):
            return text
        value = json.loads(text)["TaskMessage"]["Event"].get("Input")
        return value if isinstance(value, str) else None

    async def delete(self, names: list[str]) -> None:
        await asyncio.gather(*(self._delete(name) for name in names))

    async def delete_prefixes(self, prefixes: list[str]) -> None:
        names: list[str] = []
        try:
            for prefix in prefixes:
                names += [blob.name async for blob in self._container.list_blobs(name_starts_with=prefix)]
        except ResourceNotFoundError:
            return
        await self.delete(names)

    async def delete_container(self) -> None:
        try:
            await self._container.delete_container()
        except ResourceNotFoundError:
            pass

    async def _delete(self, name: str) -> None:
        try:
            await self._container.delete_blob(name)
        except ResourceNotFoundError:
            pass

    async def _create(self) -> None:
        try:
            await self._container.create_container()
        except ResourceExistsError:
            pass
