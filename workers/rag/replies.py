"""What a reply of the rag Worker tells the gateway besides its body."""

from __future__ import annotations

from kernel.contracts.rag import USAGE_HEADER
from kernel.runtime.http import Response


def spent(response: Response, tokens: int) -> Response:
    """What this request cost in model tokens, for the gateway's budget (USAGE_HEADER)."""
    response.headers[USAGE_HEADER] = str(int(tokens))
    return response
