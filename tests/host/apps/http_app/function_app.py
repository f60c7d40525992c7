"""Routing and HTTP conversion: every route template feature, method rule and response shape."""

import json
import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# One function per inline constraint; each answers with its route values.
CONSTRAINTS = {
    "c_int": "c/int/{v:int}",
    "c_long": "c/long/{v:long}",
    "c_bool": "c/bool/{v:bool}",
    "c_datetime": "c/datetime/{v:datetime}",
    "c_decimal": "c/decimal/{v:decimal}",
    "c_double": "c/double/{v:double}",
    "c_float": "c/float/{v:float}",
    "c_guid": "c/guid/{v:guid}",
    "c_alpha": "c/alpha/{v:alpha}",
    "c_minlength": "c/minlength/{v:minlength(3)}",
    "c_maxlength": "c/maxlength/{v:maxlength(3)}",
    "c_length": "c/length/{v:length(3)}",
    "c_lengthrange": "c/lengthrange/{v:length(2,4)}",
    "c_min": "c/min/{v:min(10)}",
    "c_max": "c/max/{v:max(10)}",
    "c_range": "c/range/{v:range(1,5)}",
    "c_regex": "c/regex/{v:regex(^[a-z]{{2}}\\d+$)}",
    "c_required": "c/required/{v:required}",
    "c_chained": "c/chained/{v:int:min(1)}",
    "opt": "opt/{v?}",
    "opt_typed": "opttyped/{v:int?}",
    "with_default": "def/{v=fallback}",
    "catch_all": "files/{*path}",
    "catch_all2": "files2/{**path}",
    "complex": "complex/{name}.{ext?}",
    "mixed_case": "Mixed/Case",
}


def _route_values(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")


for _name, _route in CONSTRAINTS.items():
    app.function_name(_name)(app.route(route=_route, methods=["GET"])(_route_values))


@app.route(route="echo/{*rest}", methods=["GET", "POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body()
    return func.HttpResponse(json.dumps({
        "method": req.method, "url": req.url, "headers": dict(req.headers), "params": dict(req.params),
        "route_params": dict(req.route_params), "body_type": type(body).__name__, "body": body.hex(),
    }), mimetype="application/json")


@app.route()
def noroute(req: func.HttpRequest) -> str:
    return "default route is the function name"


# First match wins in function-name order: a_first's {x} shadows b_second's literal.
@app.route(route="order/{x}")
def a_first(req: func.HttpRequest) -> str:
    return "a_first"


@app.route(route="order/special")
def b_second(req: func.HttpRequest) -> str:
    return "b_second"


@app.route(route="m/shared", methods=["GET"])
def m_get(req: func.HttpRequest) -> str:
    return "m_get"


@app.route(route="m/shared", methods=["PUT", "DELETE"])
def m_put(req: func.HttpRequest) -> str:
    return "m_put"


@app.route(route="m/post", methods=[func.HttpMethod.POST])
def m_post(req: func.HttpRequest) -> str:
    return "m_post"


@app.route(route="r/text")
def r_text(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("h\u00e9llo")


@app.route(route="r/json")
def r_json(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse('{"a": 1}', mimetype="application/json")


@app.route(route="r/charset")
def r_charset(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("caf\u00e9", mimetype="text/html", charset="latin-1")


@app.route(route="r/bytes")
def r_bytes(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(b"\x00\x01\xff", mimetype="application/octet-stream")


@app.route(route="r/status")
def r_status(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("created", status_code=201, headers={"X-Custom": "yes", "Cache-Control": "no-store"})


@app.route(route="r/cookie")
def r_cookie(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("cookie", headers={"Set-Cookie": "session=abc123; Path=/app; HttpOnly"})


@app.route(route="r/str")
def r_str(req: func.HttpRequest) -> str:
    return "plain string"


@app.route(route="r/strjson")
def r_strjson(req: func.HttpRequest) -> str:
    return '{"a": [1, 2], "b": true}'


@app.route(route="r/strbody")
def r_strbody(req: func.HttpRequest) -> str:
    return json.dumps({"Body": "from body", "statusCode": 202, "headers": {"X-From": "object"}})


@app.route(route="r/strtrue")
def r_strtrue(req: func.HttpRequest) -> str:
    return "true"


@app.route(route="r/dict")
def r_dict(req: func.HttpRequest):
    return {"a": 1}


@app.route(route="r/none")
def r_none(req: func.HttpRequest):
    return None


@app.route(route="r/raise")
def r_raise(req: func.HttpRequest) -> func.HttpResponse:
    logging.info("about to fail")
    raise ValueError("boom from r_raise")
