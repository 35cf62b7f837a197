"""What the parts of a store share: its root, backend, default interpreter, wheelhouse,
bytecode pool, generations, the catalog that reads them, the operator's policy, and the
environment pool when it has one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from isolator.policy._policy import Policy

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from isolator.store._backends import Backend
    from isolator.store._bytecode import BytecodePool
    from isolator.store._generations import Generations
    from isolator.store._pool import EnvironmentPool
    from isolator.store._queries import Catalog
    from isolator.store._wheelhouse import Wheelhouse


class StoreContext:
    """The shared state of one :class:`PluginStore` (its attributes read and write it)."""

    def __init__(self, root: Path, *, backend: Backend, python: str | os.PathLike[str] | None,
                 wheelhouse: Wheelhouse, bytecode: BytecodePool, generations: Generations,
                 catalog: Catalog, policy: Policy | None,
                 pool: EnvironmentPool | None = None) -> None:
        self.root = root
        self.backend = backend
        self.python = python
        self.wheelhouse = wheelhouse
        self.bytecode = bytecode
        self.generations = generations
        self.catalog = catalog
        self._policy = policy
        self.pool = pool
        """The environment pool package venvs are built in and shared from (None: each
        generation has its own venv)."""

    @property
    def policy(self) -> Policy:
        """The operator's policy (``Policy.load(root)`` on first use)."""
        if self._policy is None:
            self._policy = Policy.load(self.root)
        return self._policy
