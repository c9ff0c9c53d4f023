"""The one owner of the champion alias: every move (first training, ``train --promote``,
retrain, rollback) goes through ``move_champion``.

A move, under the registry lease of the alias (``models.lease``):

1. finishes what a crashed move left behind: a version still tagged ``promoting`` whose
   job is gone becomes ``promoted`` if the alias reached it, else ``interrupted``;
2. re-reads the alias and refuses (ConflictError) unless it still names the version the
   caller judged against: a rollback made while a retrain ran is never overwritten;
3. tags the new version ``promoting`` with the version it replaces and why, moves the
   alias, then tags it ``promoted``. A crash at any point leaves the alias where it was
   and the version visibly ``promoting``, or the alias moved and the tags one step behind
   (repaired by the next move).

Only "no such model or alias" reads as "no champion" (``Registry.alias_version``); any
other registry answer stops the move with a RegistryError before anything changes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from dataclasses import dataclass

from features.errors import ConflictError, ModelError
from models.lease import Lease
from models.registry import Registry

log = logging.getLogger(__name__)
PROMOTION_TAG = "churn.promotion"  # promoting | promoted | interrupted | rolled back to
PROMOTION_BY_TAG = "churn.promotion.by"  # host pid of the job (liveness of a "promoting")
PROMOTION_AT_TAG = "churn.promotion.at"
PROMOTION_REASON_TAG = "churn.promotion.reason"
PREVIOUS_TAG = "previous_champion"  # what `churn rollback` returns to
ROLLED_BACK_TAG = "rolled_back_to"
UNCHANGED = object()  # ``judged`` default: whatever the alias names now


@dataclass(frozen=True)
class Move:
    """What a move did: the alias now names ``version``; ``previous`` is what it named."""

    name: str
    alias: str
    version: str
    previous: str | None


@dataclass(frozen=True)
class AliasOwner:
    """Moves ``name@alias`` in ``registry`` under its lease (``seconds`` long, waited for up
    to ``wait`` seconds)."""

    registry: Registry
    name: str
    alias: str
    seconds: float = 300.0
    wait: float = 30.0

    @classmethod
    def of(cls, settings, registry: Registry | None = None) -> AliasOwner:
        return cls(
            registry or Registry.of(settings),
            settings.model_name,
            settings.champion_alias,
            settings.lease_seconds,
            settings.lease_wait_seconds,
        )

    def lease(self, purpose: str | None = None) -> Lease:
        return Lease(self.registry, self.name, purpose or f"alias-{self.alias}", self.seconds)

    def current(self) -> str | None:
        """The version the alias names now; None only if there is no such alias."""
        return self.registry.alias_version(self.name, self.alias)

    def move(
        self,
        version: str,
        reason: str,
        judged: str | object | None = UNCHANGED,
        rollback: bool = False,
    ) -> Move:
        """Point the alias at ``version`` if it still names ``judged``; see the module doc."""
        version = str(version)
        with self.lease().hold(self.wait) as lease:
            self.repair()
            current = self.current()
            if judged is not UNCHANGED and current != judged:
                raise ConflictError(
                    f"{self.name}@{self.alias} names version {current or 'none'} now, not "
                    f"version {judged or 'none'} that this job judged against: refusing to move "
                    f"it to version {version} (a rollback or another promotion happened meanwhile)"
                )
            if current == version:
                return Move(self.name, self.alias, version, current)
            tags = {
                PROMOTION_TAG: "promoting",
                PROMOTION_BY_TAG: f"{socket.gethostname()} {os.getpid()}",
                PROMOTION_AT_TAG: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                PROMOTION_REASON_TAG: reason[:4000],
            }
            if current is not None and not rollback:
                tags[PREVIOUS_TAG] = current
            self._tag(version, tags)
            lease.check()
            self.registry.call(
                f"move {self.name}@{self.alias} to version {version}",
                self.registry.client.set_registered_model_alias,
                self.name,
                self.alias,
                version,
            )
            self._tag(version, {PROMOTION_TAG: "promoted"})
            if rollback and current is not None:
                self._tag(current, {ROLLED_BACK_TAG: version, PROMOTION_TAG: "rolled back"})
        log.info("%s@%s: version %s -> %s (%s)", self.name, self.alias, current, version, reason)
        return Move(self.name, self.alias, version, current)

    def repair(self) -> list[str]:
        """Settle versions left ``promoting`` by a job that stopped; the versions settled."""
        found = self.registry.call(
            f"read the versions of {self.name}",
            self.registry.client.search_model_versions,
            f"name = '{self.name}' and tags.`{PROMOTION_TAG}` = 'promoting'",
        )
        alias = self.current()
        settled = []
        for version in found:  # "promoting" is written under the lease we hold: its job is gone
            state = "promoted" if str(version.version) == alias else "interrupted"
            self._tag(str(version.version), {PROMOTION_TAG: state})
            settled.append(str(version.version))
            log.warning(
                "%s version %s was left promoting by a job that stopped: now %s",
                self.name,
                version.version,
                state,
            )
        return settled

    def rollback_target(self, to: str | None = None) -> tuple[str, str]:
        """(current, target) for a rollback: ``to``, or the version the current one replaced."""
        current = self.current()
        if current is None:
            raise ModelError(f"model {self.name!r} has no {self.alias!r} alias to roll back")
        found = self.registry.version(self.name, version=current)
        target = to or (found.tags or {}).get(PREVIOUS_TAG)
        if not target:
            raise ModelError(
                f"{self.name} version {current} records no previous {self.alias}; give the "
                "version to return to (--to N)"
            )
        if str(target) == current:
            raise ModelError(f"version {target} already is the {self.alias}")
        return current, str(target)

    def _tag(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.registry.call(
                f"tag {self.name} version {version}",
                self.registry.client.set_model_version_tag,
                self.name,
                version,
                key,
                value,
            )
