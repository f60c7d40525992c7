"""Configuration seen from inside the app: PYTHON_SCRIPT_FILE_NAME points here (not function_app.py)."""

import json
import logging
import os

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
NAMES = ["MY_SETTING", "PRESET", "EMPTY_SETTING", "ConnectionStrings:Db", "ConnectionStrings:Typed",
         "AZURE_FUNCTIONS_ENVIRONMENT", "AzureWebJobsScriptRoot", "WEBSITE_HOSTNAME"]


@app.route(route="settings")
def settings(req: func.HttpRequest) -> func.HttpResponse:
    seen = {name: os.environ.get(name) for name in NAMES}
    seen["cwd"] = os.getcwd()
    return func.HttpResponse(json.dumps(seen), mimetype="application/json")


@app.route(route="muted")
def muted(req: func.HttpRequest) -> str:
    logging.error("muted error line")
    return "muted"
