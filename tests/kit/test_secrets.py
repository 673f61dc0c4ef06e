"""Secrets resolve from their references, stay encrypted at rest, and never show in errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from coursegate.kit.clock import FrozenClock
from coursegate.kit.secrets import (
    CachedResolver,
    EnvSecretStore,
    FileSecretStore,
    SecretBox,
    SecretRef,
    SecretStores,
    SecretUnavailable,
    check_secret_ref,
    default_stores,
)

VALUE = "s3cr3t-Value-That-Must-Not-Leak"


def stores_with(environ: dict[str, str]) -> SecretStores:
    return SecretStores({"env": EnvSecretStore(environ), "file": FileSecretStore()})


def write(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return f"file:{path}"


# --- env -------------------------------------------------------------------------------


def test_env_store_reads_the_named_variable() -> None:
    assert EnvSecretStore({"CG_KEY_1": VALUE}).resolve("env:CG_KEY_1") == VALUE


def test_env_store_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CG_TEST_SECRET_FROM_OS", VALUE)
    assert EnvSecretStore().resolve("env:CG_TEST_SECRET_FROM_OS") == VALUE
    assert default_stores().resolve("env:CG_TEST_SECRET_FROM_OS") == VALUE


@pytest.mark.parametrize("environ", [{}, {"CG_KEY_1": ""}])
def test_env_store_missing_or_empty_is_unavailable(environ: dict[str, str]) -> None:
    with pytest.raises(SecretUnavailable) as excinfo:
        EnvSecretStore(environ).resolve("env:CG_KEY_1")
    assert excinfo.value.reason == "missing"


def test_env_store_refuses_an_invalid_name() -> None:
    with pytest.raises(SecretUnavailable) as excinfo:
        EnvSecretStore({"1BAD": VALUE}).resolve("env:1BAD")
    assert excinfo.value.reason == "invalid_ref"


# --- file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (VALUE.encode(), VALUE),
        (VALUE.encode() + b"\n", VALUE),
        (VALUE.encode() + b"\r\n", VALUE),
        (VALUE.encode() + b"\n\n", VALUE + "\n"),
        (b"line1\r\nline2\n", "line1\r\nline2"),
        (b"  padded  \n", "  padded  "),
    ],
)
def test_file_store_strips_exactly_one_trailing_newline(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    ref = write(tmp_path / "secret", content)
    assert FileSecretStore().resolve(ref) == expected


def test_file_store_refuses_a_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "secret", VALUE.encode())
    monkeypatch.chdir(tmp_path)  # the relative path exists, and is still refused
    with pytest.raises(SecretUnavailable) as excinfo:
        FileSecretStore().resolve("file:secret")
    assert excinfo.value.reason == "invalid_ref"


def test_file_store_missing_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SecretUnavailable) as excinfo:
        FileSecretStore().resolve(f"file:{tmp_path / 'absent'}")
    assert excinfo.value.reason == "unreadable"


def test_file_store_directory_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SecretUnavailable) as excinfo:
        FileSecretStore().resolve(f"file:{tmp_path}")
    assert excinfo.value.reason == "unreadable"


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n"])
def test_file_store_empty_is_unavailable(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(SecretUnavailable) as excinfo:
        FileSecretStore().resolve(write(tmp_path / "secret", content))
    assert excinfo.value.reason == "missing"


def test_file_store_refuses_an_oversized_file(tmp_path: Path) -> None:
    with pytest.raises(SecretUnavailable) as excinfo:
        FileSecretStore().resolve(write(tmp_path / "big", b"x" * (64 * 1024 + 1)))
    assert excinfo.value.reason == "too_large"


# --- dispatch --------------------------------------------------------------------------


def test_stores_dispatch_by_scheme(tmp_path: Path) -> None:
    stores = stores_with({"CG_KEY_1": "from-env"})
    assert stores.resolve("env:CG_KEY_1") == "from-env"
    assert stores.resolve(write(tmp_path / "secret", b"from-file\n")) == "from-file"


class _VaultStore:
    """Stands in for a cloud secret manager: one more adapter under its own scheme."""

    def resolve(self, ref: str) -> str:
        return {"vault:kv/cg#k1": "from-vault"}[ref]


def test_another_store_registers_under_its_own_scheme() -> None:
    stores = SecretStores({"vault": _VaultStore()})
    assert stores.resolve("vault:kv/cg#k1") == "from-vault"


@pytest.mark.parametrize("ref", ["vault:kv/cg#k1", "CG_KEY_1", "", ":x", "ENV:CG_KEY_1"])
def test_unknown_scheme_is_unavailable(ref: str) -> None:
    with pytest.raises(SecretUnavailable) as excinfo:
        stores_with({"CG_KEY_1": VALUE}).resolve(ref)
    assert excinfo.value.reason == "unknown_scheme"


# --- references in configuration ------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        "env:A",
        "env:_",
        "env:CG_KEY_1",
        "env:" + "A" * 128,
        "file:/run/secrets/cg",
        "file:/" + "a" * 1023,
    ],
)
def test_valid_secret_refs(ref: str) -> None:
    assert check_secret_ref(ref) == ref


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "env:",
        "env:1A",
        "env:A-B",
        "env:A B",
        "env:" + "A" * 129,
        "env:É",
        "file:",
        "file:relative/path",
        "file:./x",
        "file:/" + "a" * 1024,
        "file:/run/se\x00crets",
        "vault:kv/cg",
        "ENV:A",
        VALUE,
    ],
)
def test_invalid_secret_refs(ref: str) -> None:
    with pytest.raises(PydanticCustomError, match="not a secret reference") as excinfo:
        check_secret_ref(ref)
    assert excinfo.value.type == "invalid"


class _KeyConfig(BaseModel):
    secret_ref: SecretRef


def test_secret_ref_type_validates_in_a_model_without_echoing_the_value_in_the_message() -> None:
    assert _KeyConfig(secret_ref="env:CG_KEY_1").secret_ref == "env:CG_KEY_1"
    with pytest.raises(ValidationError) as excinfo:
        _KeyConfig(secret_ref=VALUE)
    [error] = excinfo.value.errors()
    assert error["type"] == "invalid"
    assert VALUE not in error["msg"]


# --- encrypted at rest -----------------------------------------------------------------


def test_secret_box_round_trip_and_ciphertext_hides_the_value() -> None:
    box = SecretBox(Fernet.generate_key())
    token = box.encrypt(VALUE)
    assert VALUE not in token
    assert box.encrypt(VALUE) != token  # fresh IV each time
    assert box.decrypt(token) == VALUE


@pytest.mark.parametrize(
    "token",
    [
        SecretBox(Fernet.generate_key()).encrypt(VALUE),
        "not-a-token",
        "",
        "ñ",
    ],
    ids=["other-master-key", "garbage", "empty", "non-ascii"],
)
def test_secret_box_bad_token_is_undecryptable(token: str) -> None:
    with pytest.raises(SecretUnavailable) as excinfo:
        SecretBox(Fernet.generate_key()).decrypt(token)
    assert excinfo.value.reason == "undecryptable"
    assert excinfo.value.__cause__ is None


def test_secret_box_refuses_a_master_key_that_is_not_fernet() -> None:
    with pytest.raises(ValueError, match="not a Fernet key"):
        SecretBox(b"too-short")


# --- caching ---------------------------------------------------------------------------


def test_cached_resolver_picks_up_a_changed_file_only_after_the_ttl(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 6, 10, 12, tzinfo=UTC))
    path = tmp_path / "secret"
    ref = write(path, b"old\n")
    resolver = CachedResolver(stores_with({}), clock, ttl_s=60)
    assert resolver.resolve(ref) == "old"

    path.write_bytes(b"new\n")
    clock.advance(timedelta(seconds=59))
    assert resolver.resolve(ref) == "old"

    clock.advance(timedelta(seconds=1))
    assert resolver.resolve(ref) == "new"

    path.write_bytes(b"newer\n")
    clock.advance(timedelta(seconds=59))
    assert resolver.resolve(ref) == "new"  # the TTL restarted at the last read


def test_cached_resolver_does_not_cache_failures(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 6, 10, 12, tzinfo=UTC))
    path = tmp_path / "secret"
    ref = f"file:{path}"
    resolver = CachedResolver(stores_with({}), clock, ttl_s=60)
    with pytest.raises(SecretUnavailable):
        resolver.resolve(ref)
    path.write_bytes(b"mounted\n")
    assert resolver.resolve(ref) == "mounted"  # no time passed: the failure was not remembered


def test_cached_resolver_caches_per_ref() -> None:
    clock = FrozenClock(datetime(2026, 6, 10, 12, tzinfo=UTC))
    environ = {"A": "a1", "B": "b1"}
    resolver = CachedResolver(stores_with(environ), clock)
    assert resolver.resolve("env:A") == "a1"
    environ["A"], environ["B"] = "a2", "b2"
    assert resolver.resolve("env:A") == "a1"
    assert resolver.resolve("env:B") == "b2"


# --- no leaks --------------------------------------------------------------------------


def _failures(tmp_path: Path) -> list[SecretUnavailable]:
    failures: list[SecretUnavailable] = []
    attempts: list[Callable[[], str]] = [
        lambda: FileSecretStore().resolve(write(tmp_path / "huge", VALUE.encode() * 3000)),
        lambda: FileSecretStore().resolve(write(tmp_path / "latin1", b"\xff" + VALUE.encode())),
        lambda: EnvSecretStore({"CG": VALUE}).resolve(f"env:{VALUE}"),
        lambda: stores_with({}).resolve(VALUE),
        lambda: stores_with({}).resolve(f"{VALUE}:x"),
        lambda: SecretBox(Fernet.generate_key()).decrypt(VALUE),
    ]
    for attempt in attempts:
        with pytest.raises(SecretUnavailable) as excinfo:
            attempt()
        failures.append(excinfo.value)
    return failures


def test_no_unavailable_message_contains_the_secret_value(tmp_path: Path) -> None:
    failures = _failures(tmp_path)
    assert len(failures) == 6
    for failure in failures:
        assert VALUE not in str(failure)
        assert VALUE not in repr(failure)
        assert failure.__cause__ is None
