"""Per-endpoint switches for payload enrichments, evaluated through OpenFeature.

An endpoint opts in to an enrichment in its own configuration, e.g.
`{"learning_time": {"enabled": true, "rollout_percent": 25}}`. The decision is
made in process by `EndpointFlagProvider`, so no flag service sits between a
delivery and its endpoint, yet the evaluation goes through the OpenFeature API
and a deployment may swap in another provider for the same domain.

Rollout is keyed by endpoint id and is deterministic: an endpoint lands in a
fixed bucket per flag, so it gets the same answer on every delivery and in
every process, and raising the percentage only ever adds endpoints (25 % is a
subset of 50 %). Anything missing or malformed means off.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

LEARNING_TIME = "learning_time"

DOMAIN = "coursegate.enrichment"
"""The OpenFeature domain of enrichment flags, so that they never meet another provider's flags."""

ENRICHMENTS_ATTRIBUTE = "enrichments"
"""The evaluation-context attribute that carries the endpoint's enrichment configuration."""

BUCKETS = 100

_T = TypeVar("_T")


def rollout_bucket(flag: str, key: str) -> int:
    """A stable bucket in 0..99 for `key` under `flag`: the same on every machine and run.

    The flag is part of the hash so that the endpoints in the first 10 % of one
    enrichment are not the same endpoints as in the first 10 % of the next.
    """
    digest = hashlib.sha256(f"{flag}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def _percent(value: Any) -> float | None:
    """The rollout percentage, or None when it is not a number in 0..100."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value <= 100:
        return None
    return float(value)


class EndpointFlagProvider(AbstractProvider):
    """Boolean flags read from the endpoint's enrichment configuration in the evaluation context.

    The context's targeting key is the endpoint id; its `enrichments`
    attribute is the endpoint's configuration. A flag is on when its entry has
    `"enabled": true` and the endpoint's bucket is below `rollout_percent`
    (100 when absent).
    """

    def get_metadata(self) -> Metadata:
        return Metadata(name="coursegate-endpoint-enrichments")

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        context = evaluation_context or EvaluationContext()
        enrichments = context.attributes.get(ENRICHMENTS_ATTRIBUTE)
        if enrichments is None:
            return FlagResolutionDetails(value=False, reason=Reason.DISABLED, variant="off")
        if not isinstance(enrichments, Mapping):
            return _error(ErrorCode.INVALID_CONTEXT, "enrichments is not an object")
        config = enrichments.get(flag_key)
        if config is None:
            return FlagResolutionDetails(value=False, reason=Reason.DISABLED, variant="off")
        if not isinstance(config, Mapping):
            return _error(ErrorCode.PARSE_ERROR, f"enrichments.{flag_key} is not an object")
        if config.get("enabled") is not True:
            return FlagResolutionDetails(value=False, reason=Reason.DISABLED, variant="off")
        percent = _percent(config.get("rollout_percent", 100))
        if percent is None:
            return _error(
                ErrorCode.PARSE_ERROR,
                f"enrichments.{flag_key}.rollout_percent is not a number in 0..100",
            )
        if not context.targeting_key:
            return _error(ErrorCode.TARGETING_KEY_MISSING, "the endpoint id is missing")
        on = rollout_bucket(flag_key, context.targeting_key) < percent
        return FlagResolutionDetails(
            value=on,
            reason=Reason.TARGETING_MATCH if percent >= 100 else Reason.SPLIT,
            variant="on" if on else "off",
        )

    # Enrichment flags are booleans; any other type is a caller's mistake.

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return _mismatch(default_value)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return _mismatch(default_value)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return _mismatch(default_value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return _mismatch(default_value)


def _error(code: ErrorCode, message: str) -> FlagResolutionDetails[bool]:
    return FlagResolutionDetails(
        value=False, reason=Reason.ERROR, error_code=code, error_message=message
    )


def _mismatch(default_value: _T) -> FlagResolutionDetails[_T]:
    return FlagResolutionDetails(
        value=default_value,
        reason=Reason.ERROR,
        error_code=ErrorCode.TYPE_MISMATCH,
        error_message="enrichment flags are booleans",
    )


class EnrichmentFlags:
    """Asks OpenFeature whether an enrichment is on for one endpoint.

    Construction registers `EndpointFlagProvider` for the enrichment domain
    (and waits for it to be ready, so the first delivery is not evaluated
    against a provider still starting). One already registered there by an
    earlier instance is shared: it holds no state.
    """

    def __init__(self) -> None:
        self._client = api.get_client(DOMAIN)
        if not isinstance(self._client.provider, EndpointFlagProvider):
            api.set_provider_and_wait(EndpointFlagProvider(), domain=DOMAIN)

    def enabled(self, flag: str, endpoint_id: str, enrichments: Mapping[str, Any]) -> bool:
        """Off unless the endpoint's configuration turns `flag` on and its bucket is in the rollout."""
        switch = (enrichments or {}).get(flag)
        if not isinstance(switch, Mapping) or switch.get("enabled") is not True:
            # Off by configuration: every delivery asks, so skip the evaluation
            # (the provider would answer the same).
            return False
        context = EvaluationContext(
            targeting_key=endpoint_id,
            attributes={ENRICHMENTS_ATTRIBUTE: dict(enrichments or {})},
        )
        return self._client.get_boolean_value(flag, False, context) is True
