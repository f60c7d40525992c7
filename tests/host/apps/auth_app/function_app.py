"""Auth levels: the app default (function), an anonymous route and an admin route."""

import azure.functions as func

app = func.FunctionApp()


@app.route(route="open", auth_level=func.AuthLevel.ANONYMOUS)
def open_door(req: func.HttpRequest) -> str:
    return "open"


@app.route(route="keyed")
def keyed(req: func.HttpRequest) -> str:
    return "keyed"


@app.route(route="other")
def other(req: func.HttpRequest) -> str:
    return "other"


@app.route(route="manage", auth_level="admin")
def admin_only(req: func.HttpRequest) -> str:
    return "admin"
