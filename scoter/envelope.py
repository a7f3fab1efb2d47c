"""How an app's messages, results and checkpoints are stored: encoded by its serializer and,
with `secret_keys`, signed, then checked before a byte is decoded (docs/security.md)."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from scoter.exceptions import DecodeError, TooLarge
from scoter.retry import Budget
from scoter.serializers import (
    RESULT,
    Decided,
    JSONSerializer,
    PickleSerializer,
    Serializer,
    Signer,
    is_signed,
    seal,
    unseal,
    unsigned,
)
from scoter.storage.base import Lease
from scoter.task import Message

log = logging.getLogger("scoter")


class Decoded(NamedTuple):
    """A claimed task's payload, decoded."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    headers: dict[str, str]
    expires: float | None
    """Not started by then (seconds since the epoch), it ends dead `expired`."""
    flow: Any
    """What comes after it in a pipeline or chord (see scoter.flows); None for most."""
    eta: float | None
    """The eta its producer signed (None: none, or no signing)."""
    budget: Budget | None = None
    """The message's own retries, retry delays and time limit (None: its task's)."""


class Envelopes:
    """The encoding half of the app (a mixin of `Scoter`)."""

    name: str
    serializer: Serializer
    signer: Signer | None
    _empty: tuple[Serializer | None, bytes]
    """The encoded payload of a call without arguments, for the serializer it is cached for."""
    _warned_signed: bool

    def encode_message(self, message: Message) -> bytes:
        """The arguments of `message` as its payload holds them (before any signature)."""
        return self._encode(
            message.args, message.kwargs, message.headers, message.expires, budget=message.budget
        )

    def _encode(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        headers: dict[str, str] | None,
        expires: float | None = None,
        flow: dict[str, Any] | None = None,
        *,
        budget: Budget | None = None,
    ) -> bytes:
        if not (args or kwargs or headers or budget) and expires is None and flow is None:
            return self._empty_payload()
        body: dict[str, Any] = {"args": list(args), "kwargs": kwargs}
        if headers:
            body["headers"] = headers
        if expires is not None:
            body["expires"] = expires
        if flow is not None:
            body["flow"] = flow
        if budget:
            body["budget"] = budget.encoded()
        return self.serializer.dumps(body)

    def _empty_payload(self) -> bytes:
        """The arguments of a call without any, encoded once per serializer (a built-in
        serializer's: a custom one need not give the same bytes every time)."""
        cached = self._empty
        if cached[0] is self.serializer:
            return cached[1]
        data = self.serializer.dumps({"args": [], "kwargs": {}})
        if type(self.serializer) in (JSONSerializer, PickleSerializer):
            self._empty = (self.serializer, data)
        return data

    def decode_message(self, payload: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """(args, kwargs) of a stored payload; raises DecodeError when it cannot be trusted
        (with signing on: its signature is bad; see `decode_claimed` for a claimed task)."""
        if self.signer is None:
            return self._arguments(self._strip(payload))
        return self._arguments(self.signer.verify_task(payload)[1])

    def decode_stored(self, payload: bytes) -> Decoded:
        """All a stored payload holds (for inspection: its eta is not checked against the
        record); raises DecodeError as `decode_message` does."""
        if self.signer is None:
            return self._body(self._strip(payload))
        decided, data = self.signer.verify_task(payload)
        return self._body(data)._replace(eta=decided.eta)

    def decode_claimed(self, lease: Lease) -> Decoded:
        """The arguments, headers and expiry of a claimed task and the eta its producer signed
        (None: no eta, or no signing). Raises DecodeError, before decoding anything, when the
        payload cannot be trusted: with signing on, a bad signature, or signed fields that
        differ from the record the claim returned (another id, name, queue, priority or
        max_crashes)."""
        if self.signer is None:
            return self._body(self._strip(lease.payload))
        decided, data = self.signer.verify_task(lease.payload)
        _check_claimed(decided, lease)
        return self._body(data)._replace(eta=decided.eta)

    def _strip(self, payload: bytes) -> bytes:
        """A payload's arguments, for an app without keys: a signature it cannot check is
        dropped (it trusts its storage), once with a warning."""
        if not is_signed(payload):
            return payload
        if not self._warned_signed:
            self._warned_signed = True
            log.warning(
                "app %r has no secret_keys but reads signed tasks: their signatures are not "
                "checked; give it the producers' keys",
                self.name,
            )
        return unsigned(payload).partition(b"\n")[2]

    def _arguments(self, data: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
        args, kwargs, *_ = self._body(data)
        return args, kwargs

    def _body(self, data: bytes) -> Decoded:
        """A payload's arguments, keyword arguments, headers, expiry (None: none), flow
        (None: none) and budget (None: none); its eta is left to the signature."""
        body = self.serializer.loads(data)
        if not isinstance(body, dict) or not isinstance(body.get("args"), list):
            raise DecodeError("payload is not a scoter message (no args list)")
        kwargs = body.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise DecodeError("payload kwargs is not a mapping")
        headers = body.get("headers") or {}
        if not isinstance(headers, dict):
            raise DecodeError("payload headers is not a mapping")
        expires = body.get("expires")
        if expires is not None and (
            isinstance(expires, bool) or not isinstance(expires, (int, float))
        ):
            raise DecodeError(f"payload expires is {expires!r}, not a time")
        budget = _budget(body.get("budget"))
        return Decoded(
            tuple(body["args"]), kwargs, headers, expires, body.get("flow"), None, budget
        )

    def encode_result(self, value: Any, task_id: str) -> bytes:
        """The stored form of task `task_id`'s return value (signed with signing on)."""
        return self.encode_value(value, RESULT, task_id)

    def decode_result(self, data: bytes, task_id: str) -> Any:
        """Task `task_id`'s return value; with signing on, raises DecodeError unless it was
        signed as this task's result."""
        return self.decode_value(data, RESULT, task_id)

    def encode_value(self, value: Any, kind: bytes, task_id: str) -> bytes:
        """A result or checkpoint (`kind`) of task `task_id`, as it is stored."""
        return seal(self.serializer, self.signer, value, kind, task_id)

    def decode_value(self, data: bytes, kind: bytes, task_id: str) -> Any:
        """Undo `encode_value`; with signing on, raises DecodeError unless the value was
        signed as this task's `kind`, before the serializer reads a byte."""
        return unseal(self.serializer, self.signer, data, kind, task_id)


def _budget(stored: object) -> Budget | None:
    """A payload's own budget (None: none); DecodeError when it is not a budget."""
    if stored is None:
        return None
    try:
        return Budget.decoded(stored)
    except (TypeError, ValueError) as exc:
        raise DecodeError(str(exc)) from exc


def _check_claimed(decided: Decided, lease: Lease) -> None:
    """Raise DecodeError when what the producer signed differs from the claimed record."""
    claimed = Decided(
        lease.id, lease.name, lease.queue, lease.priority, decided.eta, lease.max_crashes
    )
    if claimed == decided:
        return
    wrong = [
        f"{field} {getattr(claimed, field)!r} (signed: {getattr(decided, field)!r})"
        for field in ("id", "name", "queue", "priority", "max_crashes")
        if getattr(claimed, field) != getattr(decided, field)
    ]
    raise DecodeError(
        f"the stored record differs from what its producer signed: {', '.join(wrong)}; it was "
        "changed after it was enqueued (or its payload copied to another task), so it does not run"
    )


def check_size(data: bytes, limit: int | None, what: str, option: str) -> None:
    """Raise TooLarge when `data` (`what`: "the message of task 'x'") is over `limit` bytes,
    the app's `option`."""
    if limit is not None and len(data) > limit:
        raise TooLarge(
            f"{what} is {len(data):,} bytes, over the limit of {limit:,} ({option}): pass large "
            f"data by reference (a path, a URL, an object-store key), or raise the limit: "
            f"Scoter(..., {option}=...)"
        )
