"""host.json / local.settings.json / environment handling (functions-host.md §6, §7)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from funcemu.config import ConfigError, apply_host_environment, find_app_root, load_config, parse_timespan


def write(folder: Path, name: str, content: object) -> Path:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.fixture
def app(tmp_path: Path) -> Path:
    write(tmp_path, "host.json", {"version": "2.0"})
    write(tmp_path, "local.settings.json", {"IsEncrypted": False, "Values": {"FUNCTIONS_WORKER_RUNTIME": "python"}})
    return tmp_path


def test_defaults(app: Path) -> None:
    config = load_config(app, environ={})
    assert (config.port, config.address, config.route_prefix) == (7071, "127.0.0.1", "api")
    assert config.function_timeout == 1800
    assert config.hub_name == "TestHubName"
    assert config.script_file == "function_app.py"


def test_values_become_environment_unless_already_set(app: Path) -> None:
    write(app, "local.settings.json", {"IsEncrypted": False, "Values": {"A": "from-file", "B": "b", "E": ""},
                                       "ConnectionStrings": {"Db": "x"}})
    environ = {"A": "from-env"}
    load_config(app, environ=environ)
    assert environ["A"] == "from-env" and environ["B"] == "b" and environ["E"] == ""
    assert environ["ConnectionStrings:Db"] == "x"


def test_host_section_and_options(app: Path) -> None:
    write(app, "local.settings.json", {"IsEncrypted": False, "Values": {},
                                       "Host": {"LocalHttpPort": 7072, "CORS": "http://a,http://b",
                                                "CORSCredentials": True}})
    config = load_config(app, environ={})
    assert config.port == 7072 and config.cors_origins == ["http://a", "http://b"] and config.cors_credentials
    assert load_config(app, port=9000, cors="*", environ={}).port == 9000


def test_route_prefix_empty_and_env_override(app: Path) -> None:
    write(app, "host.json", {"version": "2.0", "extensions": {"http": {"routePrefix": ""}}})
    assert load_config(app, environ={}).route_prefix == ""
    environ = {"AzureFunctionsJobHost__extensions__http__routePrefix": "v1"}
    assert load_config(app, environ=environ).route_prefix == "v1"


def test_functions_allow_list_from_option(app: Path) -> None:
    environ: dict[str, str] = {}
    assert load_config(app, functions=["a", "b"], environ=environ).functions_allow == ["a", "b"]


@pytest.mark.parametrize("host_json, message", [
    ("{not json", "Unable to parse host configuration file"),
    ({"logging": {}}, "The host.json file is missing the required 'version' property."),
    ({"version": "1.0"}, "'1.0' is an invalid value for host.json 'version' property."),
    ({"version": "2.0", "functionTimeout": "soon"}, "host.json: functionTimeout 'soon' is not a TimeSpan"),
    ({"version": "2.0", "extensions": {"durableTask": {"hubName": "my_hub"}}},
     'host.json: extensions.durableTask.hubName "my_hub" must match ^[A-Za-z][A-Za-z0-9]{2,44}$'),
])
def test_bad_host_json_names_file_and_problem(app: Path, host_json: object, message: str) -> None:
    write(app, "host.json", host_json)
    with pytest.raises(ConfigError) as info:
        load_config(app, environ={})
    assert message in str(info.value) and "host.json" in str(info.value)


def test_missing_host_json(tmp_path: Path) -> None:
    write(tmp_path, "local.settings.json", {"IsEncrypted": False})
    with pytest.raises(ConfigError, match="host.json: not found"):
        load_config(tmp_path, environ={})


@pytest.mark.parametrize("settings, message", [
    ("{oops", "Failed to read app settings file at"),
    ({"IsEncrypted": True, "Values": {"A": "x"}}, "Failed to decrypt settings."),
    ({"Values": {"A": "x"}}, "Failed to decrypt settings."),
    ({"IsEncrypted": False, "Values": {"A": {"nested": 1}}}, "local.settings.json: Values.A must be a string"),
    ({"IsEncrypted": False, "Host": {"LocalHttpPort": "x"}}, "local.settings.json: Host.LocalHttpPort must be"),
])
def test_bad_local_settings(app: Path, settings: object, message: str) -> None:
    write(app, "local.settings.json", settings)
    with pytest.raises(ConfigError) as info:
        load_config(app, environ={})
    assert message in str(info.value)


def test_missing_local_settings_is_fine(app: Path) -> None:
    (app / "local.settings.json").unlink()
    assert load_config(app, environ={}).port == 7071


def test_find_app_root_walks_up(app: Path) -> None:
    nested = app / "a" / "b"
    nested.mkdir(parents=True)
    assert find_app_root(nested) == app.resolve()


@pytest.mark.parametrize("text, seconds", [("00:05:00", 300), ("1.00:00:00", 86400), ("-1", None),
                                           ("00:00:01.5", 1.5)])
def test_parse_timespan(text: str, seconds: float | None) -> None:
    assert parse_timespan(text) == seconds


def test_log_levels_from_host_json_and_overrides(app: Path) -> None:
    write(app, "host.json", {"version": "2.0", "logging": {"logLevel": {"default": "Warning", "Function": "Error",
                                                                        "Function.one": "Information"}}})
    environ = {"AzureFunctionsJobHost__logging__logLevel__Function.two": "None"}
    assert load_config(app, environ=environ).log_levels == {
        "default": logging.WARNING, "function": logging.ERROR, "function.one": logging.INFO,
        "function.two": logging.CRITICAL + 10}


def test_a_bad_log_level_names_the_category(app: Path) -> None:
    write(app, "host.json", {"version": "2.0", "logging": {"logLevel": {"Function.x": "Loud"}}})
    with pytest.raises(ConfigError, match=r"host.json: logging.logLevel.function.x 'Loud' is not a log level"):
        load_config(app, environ={})


def test_host_environment_as_core_tools_sets_it(app: Path) -> None:
    environ = {"AZURE_FUNCTIONS_ENVIRONMENT": "Production"}
    apply_host_environment(load_config(app, environ=environ), 7099, environ)
    assert environ["WEBSITE_HOSTNAME"] == "localhost:7099"
    assert environ["AzureWebJobsScriptRoot"] == str(app)
    assert environ["AZURE_FUNCTIONS_ENVIRONMENT"] == "Development"
    assert environ["PYTHON_ENABLE_DEBUG_LOGGING"] == "1"
    assert environ["AzureFunctionsJobHost__logging__logLevel__Function"] == "Information"


def test_host_environment_keeps_what_is_already_set(app: Path) -> None:
    environ = {"PYTHON_ENABLE_DEBUG_LOGGING": "0", "AzureFunctionsJobHost__logging__logLevel__Function": "Warning"}
    apply_host_environment(load_config(app, environ=environ), 7099, environ)
    assert environ["PYTHON_ENABLE_DEBUG_LOGGING"] == "0"
    assert environ["AzureFunctionsJobHost__logging__logLevel__Function"] == "Warning"


@pytest.mark.parametrize(("site", "hub"), [
    (None, "TestHubName"), ("my-app", "myapp"), ("9lives", "t9lives"), ("a-", "aHub"), ("--", "DefaultTaskHub"),
    ("x" * 60, "x" * 45),
])
def test_default_hub_name_is_the_sanitized_site_name(app: Path, site: str | None, hub: str) -> None:
    """Without host.json's hubName the extension sanitizes WEBSITE_SITE_NAME instead of rejecting it."""
    environ = {"WEBSITE_SITE_NAME": site} if site is not None else {}
    assert load_config(app, environ=environ).hub_name == hub


def test_empty_host_json_object_is_the_default_configuration(app: Path) -> None:
    write(app, "host.json", {})
    assert load_config(app, environ={}).route_prefix == "api"


@pytest.mark.parametrize("given, host_json_default, expected", [
    (None, None, "Information"), ("debug", "Warning", "Debug"), (None, "error", "Error"),
])
def test_the_user_log_level_reaches_the_function_category(app: Path, given: str | None,
                                                          host_json_default: str | None, expected: str) -> None:
    """Core Tools sets logLevel.Function to the user level: --user-log-level, else host.json default (§7, §8)."""
    if host_json_default:
        write(app, "host.json", {"version": "2.0", "logging": {"logLevel": {"default": host_json_default}}})
    environ: dict[str, str] = {}
    apply_host_environment(load_config(app, user_log_level=given, environ=environ), 7099, environ)
    assert environ["AzureFunctionsJobHost__logging__logLevel__Function"] == expected


def test_worker_and_application_directories_replace_inherited_values(app: Path) -> None:
    environ = {"FUNCTIONS_APPLICATION_DIRECTORY": "/elsewhere", "FUNCTIONS_WORKER_DIRECTORY": "/old"}
    apply_host_environment(load_config(app, environ=environ), 7099, environ)
    assert environ["FUNCTIONS_APPLICATION_DIRECTORY"] == str(app)
    assert Path(environ["FUNCTIONS_WORKER_DIRECTORY"]) == Path(apply_host_environment.__code__.co_filename).parent


@pytest.mark.parametrize("address, ok", [("0.0.0.0", True), ("::1", True), ("localhost", False), ("my.host", False)])
def test_local_http_address_must_be_an_ip_address(app: Path, address: str, ok: bool) -> None:
    write(app, "local.settings.json", {"IsEncrypted": False, "Host": {"LocalHttpAddress": address}})
    if ok:
        assert load_config(app, environ={}).address == address
    else:
        with pytest.raises(ConfigError, match=rf"local.settings.json: Host.LocalHttpAddress must be an IP address, "
                                              rf"got '{address}'"):
            load_config(app, environ={})
