"""Function keys for `--enable-auth`: generated once, kept in `<app>/.funcemu/keys.json`.

As with `func start`, keys are not enforced unless auth is enabled. Keys come from the
`x-functions-key` header (preferred) or the `code` query parameter (§4.4).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

LEVELS = {"anonymous": 0, "user": 1, "function": 2, "system": 3, "admin": 4}


def request_key(request: web.Request) -> str | None:
    """The key a request presents, as the host's AuthenticationLevelHandler reads it: the first
    `x-functions-key` value whenever that header is present (so an empty one is no key), else the first
    `code` query value, the name matched ignoring case (ASP.NET's QueryCollection)."""
    key = request.headers.get("x-functions-key")
    if key is not None:
        return key
    return next((value for name, value in request.query.items() if name.lower() == "code"), None)


def _new_key() -> str:
    return secrets.token_urlsafe(40).replace("-", "a").replace("_", "b")


def durable_system_key(data_dir: Path) -> str:
    """The `durabletask_extension` system key for the webhook URLs (`code=`) when auth is off: the host
    creates it anyway (local `func start` keeps it in the azure-webjobs-secrets container) and simply
    does not check it. The saved one when keys.json exists, else a new one for this run (nothing written)."""
    path = data_dir / "keys.json"
    try:
        saved = json.loads(path.read_text()).get("systemKeys", {}).get("durabletask_extension")
    except (OSError, ValueError, AttributeError):
        saved = None
    return saved if isinstance(saved, str) and saved else _new_key()


@dataclass
class Keys:
    master: str
    host: dict[str, str] = field(default_factory=dict)
    system: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, data_dir: Path, function_names: list[str]) -> Keys:
        """Read the keys file, adding keys for new functions, and save it back."""
        path = data_dir / "keys.json"
        data = json.loads(path.read_text()) if path.is_file() else {}
        keys = cls(master=data.get("masterKey") or _new_key(),
                   host=data.get("hostKeys") or {"default": _new_key()},
                   system=data.get("systemKeys") or {"durabletask_extension": _new_key()},
                   functions=data.get("functionKeys") or {}, path=path)
        for name in function_names:
            keys.functions.setdefault(name, _new_key())
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"masterKey": keys.master, "hostKeys": keys.host,
                                    "systemKeys": keys.system, "functionKeys": keys.functions}, indent=2))
        return keys

    @property
    def durable_key(self) -> str:
        return self.system["durabletask_extension"]

    def level_of(self, key: str | None, function_name: str | None = None) -> int:
        """The highest authorization level `key` grants (for `function_name`, if given)."""
        if not key:
            return LEVELS["anonymous"]
        if secrets.compare_digest(key, self.master):
            return LEVELS["admin"]
        if any(secrets.compare_digest(key, k) for k in self.system.values()):
            return LEVELS["system"]
        if any(secrets.compare_digest(key, k) for k in self.host.values()):
            return LEVELS["function"]
        own = self.functions.get(function_name or "")
        if own and secrets.compare_digest(key, own):
            return LEVELS["function"]
        return LEVELS["anonymous"]
