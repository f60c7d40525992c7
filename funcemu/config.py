"""host.json, local.settings.json and the environment, read the way Core Tools and the host read them.

Every problem is a `ConfigError` naming the file and the key; nothing is half-applied.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from funcemu.console import parse_level
from funcemu.errors import FuncemuError

log = logging.getLogger("funcemu.config")

HOST_JSON = "host.json"
LOCAL_SETTINGS = "local.settings.json"
ENV_OVERRIDE_PREFIX = "AzureFunctionsJobHost__"
DEFAULT_PORT = 7071
DEFAULT_HUB_NAME = "TestHubName"
HUB_NAME_RULE = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,44}$")
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?$")


class ConfigError(FuncemuError):
    """A configuration problem, worded as `<file>: <key> <problem>`."""

    def __init__(self, file: str | Path, problem: str, key: str | None = None) -> None:
        where = f"{Path(file).name}: {key} " if key else f"{Path(file).name}: "
        super().__init__(f"{where}{problem} ({file})")
        self.file = str(file)
        self.key = key


def find_app_root(start: Path) -> Path:
    """The first folder from `start` upwards holding host.json or local.settings.json (as Core Tools)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / HOST_JSON).is_file() or (folder / LOCAL_SETTINGS).is_file():
            return folder
    raise ConfigError(start / HOST_JSON, "not found: run funcemu in a function app folder or pass --app PATH "
                      "(expected host.json or local.settings.json in the folder or one of its parents)")


def timespan_text(interval: timedelta) -> str:
    """.NET TimeSpan text: `[d.]hh:mm:ss[.fffffff]`."""
    seconds = int(interval.total_seconds())
    text = f"{seconds % 86400 // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if interval.days:
        text = f"{interval.days}.{text}"
    return text + (f".{interval.microseconds:06d}0" if interval.microseconds else "")


def parse_timespan(text: str) -> float | None:
    """A .NET TimeSpan string (`[d.]hh:mm:ss[.fff]`) in seconds; `-1` means unbounded (None)."""
    text = str(text).strip()
    if text == "-1":
        return None
    match = _TIMESPAN.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a TimeSpan (expected [d.]hh:mm:ss)")
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float("0." + fraction) if fraction else 0.0)


class HostJson:
    """host.json as configuration: case-insensitive paths, `AzureFunctionsJobHost__a__b` overrides."""

    def __init__(self, data: dict[str, Any], path: Path, environ: dict[str, str]) -> None:
        self.data = data
        self.path = path
        self._overrides = {
            key[len(ENV_OVERRIDE_PREFIX):].lower().replace("__", ":"): value
            for key, value in environ.items() if key.startswith(ENV_OVERRIDE_PREFIX)
        }

    def get(self, dotted: str, default: Any = None) -> Any:
        """`get("extensions.http.routePrefix")`: the env override, else host.json's value, else default."""
        override = self._overrides.get(dotted.lower().replace(".", ":"))
        if override is not None:
            return override
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict):
                return default
            match = next((k for k in node if k.lower() == part.lower()), None)
            if match is None:
                return default
            node = node[match]
        return node

    def section(self, dotted: str) -> dict[str, Any]:
        """The leaves directly under `dotted`, keys lower-cased, with `<path>__<key>` overrides applied."""
        node = self.get(dotted)
        merged = {str(k).lower(): v for k, v in node.items()} if isinstance(node, dict) else {}
        prefix = dotted.lower().replace(".", ":") + ":"
        merged.update({k[len(prefix):]: v for k, v in self._overrides.items()
                       if k.startswith(prefix) and ":" not in k[len(prefix):]})
        return merged

    def get_list(self, dotted: str) -> list[Any] | None:
        """Arrays may also come as `<path>__0`, `<path>__1`, ... overrides (e.g. `--functions`)."""
        prefix = dotted.lower().replace(".", ":") + ":"
        indexed = sorted((int(k[len(prefix):]), v) for k, v in self._overrides.items()
                         if k.startswith(prefix) and k[len(prefix):].isdigit())
        if indexed:
            return [v for _, v in indexed]
        value = self.get(dotted)
        return list(value) if isinstance(value, list) else None


def load_host_json(app_root: Path, environ: dict[str, str]) -> HostJson:
    path = app_root / HOST_JSON
    if not path.is_file():
        raise ConfigError(path, "not found: a function app needs a host.json with {\"version\": \"2.0\"}")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig") or "{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"Unable to parse host configuration file '{path}'. {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "must be a JSON object")
    if data and "version" not in data:
        raise ConfigError(path, "The host.json file is missing the required 'version' property. "
                          "See https://aka.ms/functions-hostjson for steps to migrate the configuration file.")
    if data and data["version"] != "2.0":
        raise ConfigError(path, f"'{data['version']}' is an invalid value for host.json 'version' property. "
                          "We recommend you set the 'version' property to '2.0'. See "
                          "https://aka.ms/functions-hostjson for steps to migrate the configuration file.",
                          key="version")
    return HostJson(data, path, environ)


@dataclass
class LocalSettings:
    values: dict[str, str] = field(default_factory=dict)
    connection_strings: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    address: str | None = None
    cors: str | None = None
    cors_credentials: bool = False
    path: Path | None = None


def load_local_settings(app_root: Path) -> LocalSettings:
    """A missing file is fine (Core Tools runs without it); a broken one is an error naming the key."""
    path = app_root / LOCAL_SETTINGS
    if not path.is_file():
        log.warning("%s not found in %s: running without app settings.", LOCAL_SETTINGS, app_root)
        return LocalSettings()
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig") or "{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"Failed to read app settings file at '{path}'. "
                          f"Ensure it is a valid JSON file. {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "must be a JSON object")
    values = _string_map(data.get("Values") or {}, path, "Values")
    if data.get("IsEncrypted", True) is not False and any(values.values()):
        raise ConfigError(path, "Failed to decrypt settings. Encrypted settings only be edited through "
                          "'func settings add'. (Set \"IsEncrypted\": false for plain-text settings.)",
                          key="IsEncrypted")
    host = data.get("Host") or {}
    if not isinstance(host, dict):
        raise ConfigError(path, "must be an object", key="Host")
    return LocalSettings(values=values, connection_strings=_connection_strings(data, path),
                         port=_port(host, path), address=_address(host, path),
                         cors=host.get("CORS"), cors_credentials=bool(host.get("CORSCredentials", False)),
                         path=path)


def _string_map(raw: Any, path: Path, key: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError(path, "must be an object of string values", key=key)
    out: dict[str, str] = {}
    for name, value in raw.items():
        if value is None or not name:
            log.warning("Skipping '%s' from %s: it has no value.", name, LOCAL_SETTINGS)
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        if isinstance(value, (dict, list)):
            raise ConfigError(path, f"must be a string, got {type(value).__name__}", key=f"{key}.{name}")
        out[name] = str(value)
    return out


def _connection_strings(data: dict[str, Any], path: Path) -> dict[str, str]:
    raw = data.get("ConnectionStrings") or {}
    if not isinstance(raw, dict):
        raise ConfigError(path, "must be an object", key="ConnectionStrings")
    out = {}
    for name, value in raw.items():
        if isinstance(value, dict):
            value = value.get("ConnectionString")
        if not isinstance(value, str):
            raise ConfigError(path, "must be a string or {\"ConnectionString\": ...}", key=f"ConnectionStrings.{name}")
        out[name] = value
    return out


def _port(host: dict[str, Any], path: Path) -> int | None:
    port = host.get("LocalHttpPort")
    if port is None:
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(path, f"must be a port number (0-65535), got {port!r}", key="Host.LocalHttpPort")
    return port


def _address(host: dict[str, Any], path: Path) -> str | None:
    address = host.get("LocalHttpAddress")
    if address is not None and not is_ip_address(address):
        raise ConfigError(path, f"must be an IP address, got {address!r}", key="Host.LocalHttpAddress")
    return address


def is_ip_address(text: Any) -> bool:
    """`--address` and Host.LocalHttpAddress must be IP addresses, not host names (docs §8)."""
    try:
        ipaddress.ip_address(str(text))
    except ValueError:
        return False
    return True


def apply_settings(settings: LocalSettings, environ: dict[str, str] | os._Environ[str]) -> None:
    """Values become environment variables unless already set and non-empty (as Core Tools)."""
    items = list(settings.values.items())
    items += [(f"ConnectionStrings:{k}", v) for k, v in settings.connection_strings.items()]
    for key, value in items:
        if environ.get(key):
            log.warning("Skipping '%s' from local settings as it's already defined in current "
                        "environment variables.", key)
            continue
        environ[key] = value


def apply_host_environment(config: HostConfig, port: int, environ: Any = None) -> None:
    """The settings Core Tools adds for the host and the worker (docs §7)."""
    environ = os.environ if environ is None else environ
    environ["WEBSITE_HOSTNAME"] = f"localhost:{port}"
    environ["AzureWebJobsScriptRoot"] = str(config.app_root)
    if environ.get("AZURE_FUNCTIONS_ENVIRONMENT", "Development") != "Development":
        log.warning("AZURE_FUNCTIONS_ENVIRONMENT is set to '%s'; func start forces 'Development'.",
                    environ["AZURE_FUNCTIONS_ENVIRONMENT"])
    environ["AZURE_FUNCTIONS_ENVIRONMENT"] = "Development"
    if not environ.get("PYTHON_ENABLE_DEBUG_LOGGING"):  # the worker's root logger at DEBUG; the console filters
        environ["PYTHON_ENABLE_DEBUG_LOGGING"] = "1"
    user_level = "AzureFunctionsJobHost__logging__logLevel__Function"
    if not environ.get(user_level) and config.host_json.get("logging.logLevel.Function") is None:
        environ[user_level] = config.user_log_level  # the CLI's user log level, unless host.json configures one
    # What the host gives its language worker (docs §1.2): the worker's install directory (for funcemu, which
    # is its own worker, the funcemu package) and the app root. The host sets them on the worker's
    # environment, replacing inherited values.
    environ["FUNCTIONS_WORKER_DIRECTORY"] = str(Path(__file__).resolve().parent)
    environ["FUNCTIONS_APPLICATION_DIRECTORY"] = str(config.app_root)


@dataclass
class HostConfig:
    """Everything the host needs, resolved from files, environment and command-line options."""

    app_root: Path
    host_json: HostJson
    settings: LocalSettings
    port: int
    address: str
    route_prefix: str
    function_timeout: float | None
    hub_name: str
    cors_origins: list[str]
    cors_credentials: bool
    functions_allow: list[str] | None
    script_file: str
    log_levels: dict[str, int] = field(default_factory=dict)
    user_log_level: str = "Information"  # .NET name: --user-log-level, else logLevel.default, else Information


def load_config(app_root: Path, *, port: int | None = None, address: str | None = None,
                cors: str | None = None, cors_credentials: bool | None = None,
                functions: list[str] | None = None, user_log_level: str | None = None,
                environ: Any = None) -> HostConfig:
    """Read both files, push settings into the environment, and resolve every host option.

    `user_log_level`: a .NET level name from `--user-log-level` or `FUNCTIONS_USER_LOG_LEVEL`."""
    environ = os.environ if environ is None else environ
    settings = load_local_settings(app_root)
    apply_settings(settings, environ)
    if functions:
        for index, name in enumerate(functions):
            environ[f"{ENV_OVERRIDE_PREFIX}functions__{index}"] = name
    host_json = load_host_json(app_root, dict(environ))
    chosen_port = port if port is not None else settings.port if settings.port is not None else DEFAULT_PORT
    origins = cors if cors is not None else settings.cors
    log_levels = _log_levels(host_json)
    default_level = host_json.section("logging.logLevel").get("default")
    return HostConfig(
        app_root=app_root, host_json=host_json, settings=settings, port=chosen_port,
        address=address or settings.address or "127.0.0.1",
        route_prefix=_route_prefix(host_json), function_timeout=_function_timeout(host_json),
        hub_name=_hub_name(host_json, environ),
        cors_origins=[o for o in (origins or "").split(",") if o],
        cors_credentials=settings.cors_credentials if cors_credentials is None else cors_credentials,
        functions_allow=host_json.get_list("functions"),
        script_file=environ.get("PYTHON_SCRIPT_FILE_NAME") or "function_app.py",
        log_levels=log_levels,
        user_log_level=str(user_log_level or default_level or "Information").strip().capitalize(),
    )


def _log_levels(host_json: HostJson) -> dict[str, int]:
    """`logging.logLevel`: category (or `default`) -> level, with the .NET level names."""
    levels: dict[str, int] = {}
    for category, name in host_json.section("logging.logLevel").items():
        level = parse_level(name)
        if level is None:
            raise ConfigError(host_json.path, f"'{name}' is not a log level (Trace, Debug, Information, "
                              "Warning, Error, Critical, None)", key=f"logging.logLevel.{category}")
        levels[category] = level
    return levels


def _route_prefix(host_json: HostJson) -> str:
    prefix = host_json.get("extensions.http.routePrefix", "api")
    if not isinstance(prefix, str):
        raise ConfigError(host_json.path, f"must be a string, got {prefix!r}", key="extensions.http.routePrefix")
    return prefix.strip("/")


def _function_timeout(host_json: HostJson) -> float | None:
    raw = host_json.get("functionTimeout", "00:30:00")
    try:
        seconds = parse_timespan(raw)
    except ValueError as exc:
        raise ConfigError(host_json.path, str(exc), key="functionTimeout") from None
    if seconds is not None and seconds < 1:
        raise ConfigError(host_json.path, f"'{raw}' must be at least 00:00:01", key="functionTimeout")
    return seconds


def default_hub_name(site_name: str | None) -> str:
    """The extension's default hub: WEBSITE_SITE_NAME sanitized, not validated (letters and digits only,
    `t` before a leading digit, at most 45, padded with `Hub` below 3), else TestHubName
    (azure-storage-taskhub.md §1.3)."""
    if not site_name:
        return DEFAULT_HUB_NAME
    name = "".join(c for c in site_name if c.isascii() and c.isalnum())
    if not name:
        return "DefaultTaskHub"
    if name[0].isdigit():
        name = "t" + name
    name = name[:45]
    return name + "Hub" if len(name) < 3 else name


def _hub_name(host_json: HostJson, environ: Any) -> str:
    configured = host_json.get("extensions.durableTask.hubName")
    if not configured:
        return default_hub_name(environ.get("WEBSITE_SITE_NAME"))
    name = str(configured)
    if name.startswith("%") and name.endswith("%") and len(name) > 2:
        name = environ.get(name[1:-1]) or DEFAULT_HUB_NAME
    if not HUB_NAME_RULE.match(name):
        raise ConfigError(host_json.path, f'"{name}" must match {HUB_NAME_RULE.pattern}',
                          key="extensions.durableTask.hubName")
    return name
