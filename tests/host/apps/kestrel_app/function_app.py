"""Kestrel's rules at the edges (routePrefix ""): Request.Path, admin routes before a catch-all,
responses Kestrel refuses to send."""

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

RESPONSES = {  # kind -> what `respond` returns
    "control": lambda: func.HttpResponse("x", headers={"X-U": "a\x01b"}),
    "value": lambda: func.HttpResponse("x", headers={"X-U": "caf\u00e9"}),
    "name": lambda: func.HttpResponse("x", headers={"X-\u00e9": "v"}),
    "object": lambda: json.dumps({"body": "x", "headers": {"X-U": "\u2603"}}),
    "length-short": lambda: func.HttpResponse("xyz", headers={"Content-Length": "10"}),
    "length-long": lambda: func.HttpResponse("xyz", headers={"Content-Length": "1"}),
    "length-bad": lambda: func.HttpResponse("xyz", headers={"Content-Length": "three"}),
    "length-ok": lambda: func.HttpResponse("xyz", headers={"Content-Length": "3"}),
    "object-status": lambda: json.dumps({"body": "x", "statusCode": 1000}),
    "ascii": lambda: func.HttpResponse("x", headers={"X-U": "tab\there ~"}),
}


@app.route(route="items/{id}")
def items(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"url": req.url, "id": req.route_params["id"]}),
                             mimetype="application/json")


@app.route(route="respond/{kind}")
def respond(req: func.HttpRequest) -> func.HttpResponse:
    kind = req.route_params["kind"]
    return RESPONSES[kind]() if kind in RESPONSES else func.HttpResponse("x", status_code=int(kind))


@app.route(route="{*rest}")
def zz_catch_all(req: func.HttpRequest) -> str:
    return "catch-all"
