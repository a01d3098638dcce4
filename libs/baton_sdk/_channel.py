"""One grpc.aio channel per peer, shared by the typed clients.

It adds the call metadata (the bearer token), applies the default deadline,
retries idempotent RPCs through the channel's service config, and turns every
AioRpcError into the matching BatonError.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, Self

import grpc

from baton_core import constants, credential_header, from_rpc_error, insecure_channel

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0

# Retries happen in the channel (grpc's own retry support), only for RPCs the
# client marks idempotent and only for UNAVAILABLE, so a retried call is
# harmless by construction.
_RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def _service_config(idempotent: Sequence[tuple[str, str]]) -> str:
    names = [{"service": service, "method": method} for service, method in idempotent]
    configs = [{"name": names, "retryPolicy": _RETRY_POLICY}] if names else []
    return json.dumps({"methodConfig": configs})


class Connection:
    """A channel to one address plus what every call on it needs.

    Args:
        address: host:port of the peer.
        token: Sent with every call: a JWT as `authorization: Bearer`, an API key
            (`bk_...`) as `x-api-key`; None: BATON_TOKEN when set, "" for none.
        metadata: Extra metadata sent on every call.
        timeout: Default deadline in seconds for unary calls; None for none.
        idempotent: (service, method) pairs that the channel may retry.
    """

    def __init__(self, address: str, *, token: str | None = None,
                 metadata: Sequence[tuple[str, str]] = (), timeout: float | None = DEFAULT_TIMEOUT,
                 idempotent: Sequence[tuple[str, str]] = ()) -> None:
        self.address = address
        self.timeout = timeout
        headers = list(metadata)
        if token is None:
            token = os.environ.get(constants.ENV_TOKEN, "").strip()
        if token:
            headers.append(credential_header(token))
        self.metadata = tuple(headers)
        # A peer that was down is found again within seconds (insecure_channel).
        self.channel = insecure_channel(address, [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.enable_retries", 1),
            ("grpc.service_config", _service_config(idempotent)),
        ])
        self._closed = False

    async def unary(self, rpc: Callable[..., Any], request: Any,
                    timeout: float | None = None, *, bounded: bool = True) -> Any:
        """Calls a unary RPC; `timeout` None means the connection's default, or no
        deadline at all when not `bounded` (the server bounds the call itself)."""
        if timeout is None and bounded:
            timeout = self.timeout
        try:
            return await rpc(request, metadata=self.metadata, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    async def stream(self, rpc: Callable[..., Any], request: Any) -> AsyncGenerator[Any, None]:
        """Iterates a server-streaming RPC (no deadline); leaving the loop cancels it."""
        call = rpc(request, metadata=self.metadata)
        try:
            async for item in call:
                yield item
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.channel.close()


class ClientLifecycle:
    """What every client shares: its Connection, `address`, `close()`, `async with`.

    A client's constructor takes:
        address: host:port of its service.
        token: Sent with every call (a JWT as a bearer token, an API key as
            `x-api-key`); None: BATON_TOKEN when set, "" for none.
        metadata: Extra metadata sent with every call.
        timeout: Default deadline of unary calls in seconds; None for none.
    """

    # The (service, method) pairs the channel may retry on UNAVAILABLE.
    idempotent: Sequence[tuple[str, str]] = ()

    def __init__(self, address: str, *, token: str | None = None,
                 metadata: Sequence[tuple[str, str]] = (),
                 timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self._conn = Connection(address, token=token, metadata=metadata, timeout=timeout,
                                idempotent=self.idempotent)
        self._bind(self._conn.channel)

    def _bind(self, channel: grpc.aio.Channel) -> None:
        """Makes the client's stubs on its channel."""
        raise NotImplementedError

    @property
    def address(self) -> str:
        return self._conn.address

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._conn.close()
