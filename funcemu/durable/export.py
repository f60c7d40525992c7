"""funcemu's history export: an instance's raw history, every sequence id kept, for `funcemu replay`.

The management API's `historyEvents` lose the ids and episode boundaries (durable-protocol.md §6.3),
so the emulator also serves the stored history as is, on an emulator-only route:

    GET /admin/funcemu/instances/{instanceId}/history
    -> {"format": "funcemu-history", "version": 1, "instance": <status payload>, "history": [<SDK events>]}

`funcemu durable get-history ID --output FILE` writes this document when the host is funcemu (and the
management API's JSON otherwise); `recording.py` reads both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from funcemu.durable.recording import EXPORT_FORMAT, EXPORT_VERSION
from funcemu.durable.status import render_status

if TYPE_CHECKING:
    from aiohttp import web

    from funcemu.durable.engine import Engine
    from funcemu.durable.store.base import InstanceState

HISTORY_ROUTE = "/admin/funcemu/instances/{instanceId}/history"


def export_document(state: InstanceState, history: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "instance": render_status(state),
            "history": history}


def history_routes(engine: Engine) -> list[web.RouteDef]:
    from aiohttp import web

    from funcemu.http.admin import json_response

    async def history(request: web.Request) -> web.Response:
        instance_id = request.match_info["instanceId"]
        state = await engine.get_instance(instance_id)
        if state is None:
            return json_response({"Message": f"No instance with ID '{instance_id}' found."}, 404)
        return json_response(export_document(state, await engine.get_history(instance_id)))

    return [web.get(HISTORY_ROUTE, history)]
