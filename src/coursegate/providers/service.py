"""Providers' rules: keys with referenced or generated secrets, added and retired for rotation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.courses.schemas import ROSTER_KEY
from coursegate.kit.clock import Clock
from coursegate.kit.errors import AlreadyExists, NotFound, ValidationFailed
from coursegate.kit.secrets import SecretBox, SecretStores, SecretUnavailable
from coursegate.kit.signing import generate_hmac_secret, generate_whsec, is_whsec
from coursegate.models import Provider, ProviderKey
from coursegate.programs.repository import ProgramRepository
from coursegate.providers.repository import ProviderRepository

SCHEMES = ("hmac-authorization", "standard-webhooks")


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    secret_ref: str | None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    row: ProviderKey
    secret: str | None
    """The generated secret in clear; only ever returned from the call that made it."""


class ProviderService:
    def __init__(
        self, session: AsyncSession, clock: Clock, box: SecretBox, stores: SecretStores
    ) -> None:
        self.repo = ProviderRepository(session)
        self.programs = ProgramRepository(session)
        self.clock = clock
        self.box = box
        self.stores = stores

    async def create(
        self, tenant_id: str, provider_id: str, program_id: str, scheme: str, keys: Sequence[NewKey]
    ) -> tuple[Provider, list[CreatedKey]]:
        if scheme not in SCHEMES:
            raise ValidationFailed.field("scheme", "invalid", f"one of {', '.join(SCHEMES)}")
        if await self.programs.get(tenant_id, program_id) is None:
            raise ValidationFailed.field("program_id", "invalid", "no such program")
        if provider_id == ROSTER_KEY:
            raise ValidationFailed.field("id", "invalid", f"{ROSTER_KEY} names roster classes")
        ids = [k.key_id for k in keys]
        if len(set(ids)) != len(ids):
            raise ValidationFailed.field("keys", "invalid", "key ids must be distinct")
        if await self.repo.get(tenant_id, provider_id) is not None:
            raise AlreadyExists(f"provider {provider_id} exists")
        provider = Provider(
            tenant_id=tenant_id,
            id=provider_id,
            program_id=program_id,
            scheme=scheme,
            created_at=self.clock.now(),
        )
        try:
            await self.repo.add(provider)
        except IntegrityError:
            # A concurrent request created it between the check and the insert.
            raise AlreadyExists(f"provider {provider_id} exists") from None
        created = [await self._add_key(provider, key, index) for index, key in enumerate(keys)]
        return provider, created

    async def get(self, tenant_id: str, provider_id: str) -> tuple[Provider, Sequence[ProviderKey]]:
        provider = await self.repo.get(tenant_id, provider_id)
        if provider is None:
            raise NotFound()
        return provider, await self.repo.keys(tenant_id, provider_id)

    async def add_key(self, tenant_id: str, provider_id: str, key: NewKey) -> CreatedKey:
        provider, _ = await self.get(tenant_id, provider_id)
        if await self.repo.get_key(tenant_id, provider_id, key.key_id) is not None:
            raise AlreadyExists(f"key {key.key_id} exists (key ids are never reused)")
        try:
            return await self._add_key(provider, key, None)
        except IntegrityError:
            # A concurrent request added it between the check and the insert.
            raise AlreadyExists(f"key {key.key_id} exists (key ids are never reused)") from None

    async def retire_key(self, tenant_id: str, provider_id: str, key_id: str) -> ProviderKey:
        """A retired key stops verifying at once; retiring twice keeps the first time."""
        key = await self.repo.get_key(tenant_id, provider_id, key_id)
        if key is None:
            raise NotFound()
        if key.retired_at is None:
            key.retired_at = self.clock.now()
            await self.repo.flush()
        return key

    async def _add_key(self, provider: Provider, key: NewKey, index: int | None) -> CreatedKey:
        secret: str | None = None
        encrypted: str | None = None
        if key.secret_ref is not None:
            field = "secret_ref" if index is None else f"keys.{index}.secret_ref"
            try:
                resolved = self.stores.resolve(key.secret_ref)
            except SecretUnavailable:
                raise ValidationFailed.field(
                    field, "invalid", "the secret store cannot resolve this reference"
                ) from None
            if provider.scheme == "standard-webhooks" and not is_whsec(resolved):
                raise ValidationFailed.field(
                    field, "invalid", "a Standard Webhooks secret is whsec_ and base64"
                )
        else:
            secret = (
                generate_whsec()
                if provider.scheme == "standard-webhooks"
                else generate_hmac_secret()
            )
            encrypted = self.box.encrypt(secret)
        row = ProviderKey(
            tenant_id=provider.tenant_id,
            provider_id=provider.id,
            key_id=key.key_id,
            secret_ref=key.secret_ref,
            secret_encrypted=encrypted,
            created_at=self.clock.now(),
            retired_at=None,
        )
        await self.repo.add(row)
        return CreatedKey(row=row, secret=secret)
