"""Host-side errors drop only the function in error (docs §2.7); the others are served."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="fine")
def fine(req: func.HttpRequest) -> str:
    return "fine"


@app.service_bus_queue_trigger(arg_name="msg", queue_name="orders", connection="ServiceBus")
def from_service_bus(msg: func.ServiceBusMessage) -> None:
    pass


@app.function_name("_hidden")
@app.route(route="hidden")
def hidden(req: func.HttpRequest) -> str:
    return "hidden"


@app.route(route="runtime/mine")
def reserved(req: func.HttpRequest) -> str:
    return "reserved"


@app.route(route="Fine/")
def fine_again(req: func.HttpRequest) -> str:
    return "conflict"


@app.route(route="items/{id:int:bogus}")
def bad_template(req: func.HttpRequest) -> str:
    return "bad template"
