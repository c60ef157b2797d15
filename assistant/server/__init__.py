"""The local HTTP API (``mailvoice serve``): other mail apps on this computer draft in the user's voice.

OpenAI-compatible ``/v1/models`` and ``/v1/chat/completions`` (streamed or not), and ``/v1/draft``, ``/v1/reply``
and ``/v1/refine`` on the drafting core. Loopback only, a bearer token from the system keyring, no CORS, one
model thread. Headless: nothing here imports Qt. FastAPI and uvicorn are imported by the modules that use them,
so importing this package costs nothing.
"""
