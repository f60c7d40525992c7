"""A blueprint in a subfolder: its functions' context.function_directory is this folder."""

import azure.functions as func

bp = func.Blueprint()


@bp.route(route="bp/where")
def bp_where(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(context.function_directory)
