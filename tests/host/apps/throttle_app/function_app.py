"""For tests/host/test_e2e_throttle.py: a slow function; the limits come from AzureFunctionsJobHost__ variables."""

import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="slow")
def slow(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(float(req.params.get("seconds", "1.5")))
    return func.HttpResponse("done")
