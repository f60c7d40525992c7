"""Connection settings resolved as the host resolves them (§5.4)."""

from __future__ import annotations

import pytest

from funcemu.triggers.storage import Accounts, StorageConnectionError, setting_for

AZURITE = "UseDevelopmentStorage=true"


@pytest.mark.parametrize(("connection", "environ", "setting"), [
    (None, {"AzureWebJobsStorage": AZURITE}, "AzureWebJobsStorage"),
    ("", {"AzureWebJobsStorage": AZURITE}, "AzureWebJobsStorage"),
    ("AzureWebJobsStorage", {"AzureWebJobsStorage": AZURITE}, "AzureWebJobsStorage"),
    ("Orders", {"AzureWebJobsOrders": AZURITE, "Orders": "other"}, "AzureWebJobsOrders"),
    ("Orders", {"Orders": AZURITE}, "Orders"),
    ("Orders", {"ConnectionStrings:AzureWebJobsOrders": AZURITE}, "AzureWebJobsOrders"),
])
def test_prefixed_name_first_then_the_name(connection: str | None, environ: dict[str, str], setting: str) -> None:
    account = Accounts(environ).for_binding("f", {"name": "msg", "connection": connection})
    assert (account.setting, account.connection_string) == (setting, AZURITE)


def test_the_same_setting_shares_one_account() -> None:
    accounts = Accounts({"AzureWebJobsStorage": AZURITE})
    assert accounts.for_binding("f", {"name": "a"}) is accounts.for_binding("g", {"name": "b", "connection": "Storage"})
    assert accounts.default() is accounts.for_binding("f", {"name": "a"})
    assert Accounts({}).default() is None


def test_a_missing_setting_is_the_hosts_message_with_function_and_binding() -> None:
    with pytest.raises(StorageConnectionError) as error:
        Accounts({}).for_binding("ingest", {"name": "msg", "connection": "Orders"})
    assert str(error.value).startswith("Function 'ingest' (binding 'msg'): Storage account connection string "
                                       "'AzureWebJobsOrders' does not exist. Make sure that it is a defined App "
                                       "Setting")


def test_identity_based_settings_are_explained() -> None:
    with pytest.raises(StorageConnectionError, match=r"identity-based settings \(Orders__queueServiceUri\)"):
        Accounts({"Orders__queueServiceUri": "https://x.queue.core.windows.net"}).for_binding(
            "ingest", {"name": "msg", "connection": "Orders"})


def test_setting_for_reports_none_when_unset() -> None:
    assert setting_for("Storage", {}) is None
