"""A lease in the model registry: one job at a time across machines (retrain, alias moves).

A lease is a registered model named ``<model>.lease.<purpose>.<generation>``, created
with the holder, a token and an expiry as tags. Creating a registered model is the one
write the registry makes atomically for us: its unique name constraint picks exactly one
winner among jobs that try the same generation at once (tags alone cannot: two writers
can each read back their own write). A lease is taken over only once it has expired (or,
on the same host, its holder process is gone) by creating the next generation, so two
jobs that both see it expired again race for one name. The holder renews the expiry from
a background thread and deletes its generation when it ends; the winner of a takeover
deletes the expired one.

Expiry times come from the holders' clocks: keep machines in NTP sync, and
``CHURN_LEASE_SECONDS`` well above any clock skew.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from features.errors import ConflictError
from models.registry import Registry

log = logging.getLogger(__name__)
HOLDER_TAG, HOST_TAG, PID_TAG = "churn.lease.holder", "churn.lease.host", "churn.lease.pid"
TOKEN_TAG, EXPIRES_TAG, PURPOSE_TAG = "churn.lease.token", "churn.lease.expires", "churn.lease"
ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
POLL_SECONDS = 0.5


def process_alive(host: str | None, pid: str | None) -> bool:
    """False only when ``host`` is this machine and no process ``pid`` runs on it."""
    if host != socket.gethostname() or not (pid or "").isdigit():
        return True  # another machine: only the expiry can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Holding:
    """One generation of a lease as the registry shows it."""

    generation: int
    tags: dict[str, str]

    @property
    def holder(self) -> str:
        return self.tags.get(HOLDER_TAG, "an unknown holder")

    @property
    def expires(self) -> float:
        try:
            return float(self.tags.get(EXPIRES_TAG, "0"))
        except ValueError:
            return 0.0

    def over(self, now: float) -> bool:
        """Expired, or its holder process is gone (visible only on the same host)."""
        alive = process_alive(self.tags.get(HOST_TAG), self.tags.get(PID_TAG))
        return self.expires <= now or not alive


@dataclass
class Lease:
    """``with Lease(registry, "churn-model", "retrain", 300).hold(): ...``"""

    registry: Registry
    model: str
    purpose: str
    seconds: float
    holder: str = field(
        default_factory=lambda: f"{socket.gethostname()} pid {os.getpid()}", repr=False
    )
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    generation: int | None = None
    lost: str | None = None  # why the lease was lost, if it was
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def prefix(self) -> str:
        return f"{self.model}.lease.{self.purpose}"

    def name_of(self, generation: int) -> str:
        return f"{self.prefix}.{generation:06d}"

    # --- taking and giving back ------------------------------------------------------------

    @contextlib.contextmanager
    def hold(self, wait: float = 0.0) -> Iterator[Lease]:
        """Acquire (waiting up to ``wait`` seconds for the current holder), renew while the
        block runs, release at the end; ConflictError when another job keeps it."""
        self.acquire(wait)
        renewer = threading.Thread(target=self._renew_loop, name="churn-lease", daemon=True)
        renewer.start()
        try:
            yield self
        finally:
            self._stop.set()
            renewer.join(timeout=5)
            self.release()

    def acquire(self, wait: float = 0.0) -> None:
        deadline = time.monotonic() + wait
        while True:
            current = self.current()
            if current is None or current.over(time.time()):
                generation = (current.generation if current else 0) + 1
                if self._create(generation):
                    self.generation = generation
                    if current is not None:  # tidy the expired one (its holder may lack rights)
                        self._delete(current.generation, quiet=True)
                    log.info("lease %s taken by %s", self.name_of(generation), self.holder)
                    return
                continue  # another job won this generation: look again
            if time.monotonic() >= deadline:
                left = max(0, round(current.expires - time.time()))
                raise ConflictError(
                    f"another job holds the {self.purpose} lease of {self.model} in the registry "
                    f"({current.holder}, for {left} s more unless renewed): try again when it "
                    f"ends (lease {self.name_of(current.generation)})"
                )
            time.sleep(POLL_SECONDS)

    def release(self) -> None:
        """Delete our generation; a failure is logged (the lease then simply expires)."""
        if self.generation is not None and self.lost is None:
            self._delete(self.generation, quiet=True)
        self.generation = None

    def check(self) -> None:
        """Raise ConflictError unless this job still holds the lease (asks the registry)."""
        if self.generation is None:
            raise ConflictError(f"the {self.purpose} lease of {self.model} is not held")
        current = self.current()
        if current is None or current.tags.get(TOKEN_TAG) != self.token:
            holder = current.holder if current else "nobody"
            self.lost = f"the {self.purpose} lease of {self.model} was taken over by {holder}"
        if self.lost:
            raise ConflictError(f"{self.lost}: this job stops without touching the alias")

    # --- the registry ----------------------------------------------------------------------

    def current(self) -> Holding | None:
        """The highest generation of this lease, or None if nobody holds it."""
        found = self.registry.call(
            f"read the {self.purpose} lease of {self.model}",
            self.registry.client.search_registered_models,
            filter_string=f"name LIKE '{self.prefix}.%'",
        )
        holdings = []
        for model in found:
            suffix = model.name.removeprefix(f"{self.prefix}.")
            if model.name.startswith(f"{self.prefix}.") and suffix.isdigit():
                holdings.append(Holding(int(suffix), dict(model.tags or {})))
        return max(holdings, key=lambda h: h.generation, default=None)

    def _tags(self) -> dict[str, str]:
        return {
            PURPOSE_TAG: self.purpose,
            HOLDER_TAG: self.holder,
            HOST_TAG: socket.gethostname(),
            PID_TAG: str(os.getpid()),
            TOKEN_TAG: self.token,
            EXPIRES_TAG: f"{time.time() + self.seconds:.3f}",
        }

    def _create(self, generation: int) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.registry.client.create_registered_model(
                self.name_of(generation),
                tags=self._tags(),
                description=f"Churn lease: {self.purpose} of {self.model} (not a model)",
            )
        except MlflowException as exc:
            if exc.error_code == ALREADY_EXISTS:
                return False
            raise self.registry.failed(f"take the {self.purpose} lease", exc) from None
        except Exception as exc:
            raise self.registry.failed(f"take the {self.purpose} lease", exc) from None
        return True

    def _delete(self, generation: int, quiet: bool) -> None:
        try:
            self.registry.client.delete_registered_model(self.name_of(generation))
        except Exception as exc:
            if not quiet:
                raise self.registry.failed(f"release the {self.purpose} lease", exc) from None
            log.warning("could not delete lease %s: %s", self.name_of(generation), exc)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.check()
                self.registry.client.set_registered_model_tag(
                    self.name_of(self.generation),  # type: ignore[arg-type]
                    EXPIRES_TAG,
                    f"{time.time() + self.seconds:.3f}",
                )
            except ConflictError as exc:
                log.error("%s", exc)
                return
            except Exception as exc:  # the registry is unreachable: the next check() says so
                log.warning("could not renew the %s lease: %s", self.purpose, exc)
