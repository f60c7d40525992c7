"""Invocation the way the Python worker does it: context, Out[T], thread pool, event loop, timeout, logs."""

import asyncio
import json
import logging
import threading
import time

import azure.functions as func
from blueprints.bp_functions import bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(bp)


@app.route(route="ctx", methods=["GET", "POST"])
def ctx(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    trace, retry = context.trace_context, context.retry_context
    return func.HttpResponse(json.dumps({
        "is_context": isinstance(context, func.Context),
        "invocation_id": context.invocation_id,
        "function_name": context.function_name,
        "function_directory": context.function_directory,
        "trace_parent": trace.trace_parent, "trace_state": trace.trace_state, "attributes": trace.attributes,
        "retry": [retry.retry_count, retry.max_retry_count, retry.rpc_exception],
        "thread_local_invocation_id": context.thread_local_storage.invocation_id,
    }), mimetype="application/json")


@app.route(route="actx")
async def actx(req: func.HttpRequest, context) -> str:
    return context.invocation_id


@app.route(route="out", binding_arg_name="resp")
def out_resp(req: func.HttpRequest, resp: func.Out[func.HttpResponse]) -> None:
    resp.set(func.HttpResponse("set through Out", status_code=201))


@app.route(route="outunset", binding_arg_name="resp")
def out_unset(req: func.HttpRequest, resp: func.Out[func.HttpResponse]) -> None:
    return None


@app.route(route="thread")
def thread_name(req: func.HttpRequest) -> str:
    time.sleep(0.2)
    return threading.current_thread().name


@app.route(route="loop")
async def on_loop(req: func.HttpRequest) -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


@app.route(route="slow/async")
async def slow_async(req: func.HttpRequest) -> str:
    await asyncio.sleep(30)
    return "never"


@app.route(route="slow/sync")
def slow_sync(req: func.HttpRequest) -> str:
    time.sleep(3)
    return "too late"


@app.route(route="logs")
def logs(req: func.HttpRequest) -> str:
    logging.info("user info line")
    logging.getLogger("my.module").warning("user warning line")
    logging.debug("user debug line")
    return "logged"


@app.route(route="quiet")
def quiet(req: func.HttpRequest) -> str:
    logging.info("quiet info line")
    logging.warning("quiet warning line")
    return "quiet"


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=False, use_monitor=False)
def yearly(timer: func.TimerRequest) -> None:
    logging.info("yearly ran: past_due=%s", timer.past_due)


@app.function_name("generic_http")
@app.generic_trigger(arg_name="req", type="httpTrigger", route="generic/{word}", methods=["POST"])
@app.generic_output_binding(arg_name="reply", type="http")
def generic_http(req: func.HttpRequest, reply: func.Out[func.HttpResponse]) -> None:
    reply.set(func.HttpResponse(f"generic {req.route_params['word']} {req.get_body().decode()}", status_code=202))
