"""The serve command: the local HTTP API for other mail apps (loopback only, a token from the keyring)."""

from __future__ import annotations

import logging
import os
import sys

import click

from assistant.cli.common import Context, command_options


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True, metavar="ADDR",
              help="Loopback address to listen on: 127.0.0.1, ::1 or localhost; any other is refused.")  # fmt: skip
@click.option("--show-token", is_flag=True, help="Print the API token (made on first use) and exit.")
@click.option("--new-token", is_flag=True, help="Replace the API token (clients need the new one) and exit.")
@command_options
def serve(ctx: Context, port: int, host: str, show_token: bool, new_token: bool) -> None:
    """Serve your voice to other mail apps on this computer: an OpenAI-compatible API on loopback.

    Clients send 'Authorization: Bearer TOKEN' (mailvoice serve --show-token prints it). Endpoints: GET
    /v1/models, POST /v1/chat/completions (model: mailvoice, the base model or an adapter's name; stream: true
    streams), POST /v1/draft, /v1/reply, /v1/refine. Ctrl+C stops it.

    Example: mailvoice serve --port 8765
    """
    from assistant.server.run import NotLoopback, api_token, loopback_address

    try:
        address = loopback_address(host)
    except NotLoopback as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    if show_token or new_token:
        token, made = api_token(renew=new_token)
        ctx.emit({"token": token, "new": made}, token or "")
        return
    _serve(ctx, address, port)


def _serve(ctx: Context, address: str, port: int) -> None:
    from assistant.server.app import create_app
    from assistant.server.engine import Engine
    from assistant.server.run import api_token, base_url, listen
    from assistant.server.run import serve as run

    token, made = api_token()
    engine = Engine(ctx.workspace)
    engine.models()  # a data folder or model that cannot be used fails here, before anything listens
    sock = listen(address, port)
    url = base_url(sock)
    made_text = "A new API token was made; " if made else ""
    ctx.emit({"url": url, "token_new": made, "pid": os.getpid()},
             f"Serving your voice at {url} (Ctrl+C stops). {made_text}mailvoice serve --show-token prints the "
             "token.")  # fmt: skip
    sys.stdout.flush()
    verbose = logging.getLogger().getEffectiveLevel() <= logging.INFO
    run(create_app(engine, token or ""), sock, log_level="info" if verbose else "warning")


COMMANDS = [serve]
