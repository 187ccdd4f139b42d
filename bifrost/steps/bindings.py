"""Which implementation runs each step of each machine in the catalog: the one place where step
names meet step implementations.

Machines are data (``bifrost.machines``) and name their steps; the implementations here are built
from the dependencies the caller has (the Kubernetes port, the store, where blueprints are read,
the renewal policy). ``machine_steps`` answers per machine; ``bind_steps`` gives the runner its
flat map by step name and refuses two machines binding one step name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from bifrost.engine import Step
from bifrost.kube import Kube
from bifrost.machines import provision, rotation, teardown
from bifrost.steps.adoption import Adopt, AdoptForTeardown
from bifrost.steps.certificates import EnsureCertificates
from bifrost.steps.provision import (
    ApplyChildren,
    BlueprintSource,
    ClusterBlueprints,
    Prune,
    WaitReady,
)
from bifrost.steps.rotation import RotationStep, RotationSteps
from bifrost.steps.teardown import DeleteChildrenInOrder, RemoveFinalizer
from bifrost.steps.tls import RenewalTime
from bifrost.store.interface import OperationStore


def machine_steps(
    kube: Kube,
    store: OperationStore,
    *,
    blueprints: BlueprintSource | None = None,
    renewal_time: RenewalTime | None = None,
    recheck: timedelta = timedelta(seconds=0.2),
) -> dict[str, dict[str, Step]]:
    """Machine name → step name → implementation, for every machine of the catalog.
    ``blueprints`` defaults to reading them from the cluster; ``renewal_time`` (the renewal
    policy) to the issuer's ``status.renewalTime``; ``recheck`` is how soon a waiting step looks
    again."""
    source = blueprints or ClusterBlueprints(kube)
    rotate = RotationSteps(kube, store, blueprints=source, renewal_time=renewal_time,
                           recheck=recheck)
    return {
        provision.PROVISION_MACHINE: {
            provision.ADOPT: Adopt(kube, store, blueprints=source, recheck=recheck,
                                   renewal_time=renewal_time),
            provision.ENSURE_CERTIFICATES: EnsureCertificates(
                kube, store, blueprints=source, recheck=recheck, renewal_time=renewal_time),
            provision.APPLY_CHILDREN: ApplyChildren(kube, store, blueprints=source,
                                                    recheck=recheck),
            provision.WAIT_READY: WaitReady(kube, store, blueprints=source, recheck=recheck),
            provision.PRUNE: Prune(kube, store, blueprints=source, recheck=recheck),
        },
        rotation.ROTATION_MACHINE: {
            rotation.CREATE_CERTIFICATE: RotationStep(rotate.create_certificate),
            rotation.AWAIT_ISSUED: RotationStep(rotate.await_issued),
            rotation.ATTACH_NEW: RotationStep(rotate.attach_new),
            rotation.VERIFY_SERVED: RotationStep(rotate.verify_served),
            rotation.DRAIN: RotationStep(rotate.drain),
            rotation.DETACH_OLD: RotationStep(rotate.detach_old),
            rotation.DELETE_OLD: RotationStep(rotate.delete_old),
            rotation.DETACH_NEW: RotationStep(rotate.detach_new),
            rotation.DELETE_NEW: RotationStep(rotate.delete_new),
        },
        teardown.TEARDOWN_MACHINE: {
            teardown.ADOPT_FOR_TEARDOWN: AdoptForTeardown(kube, store, blueprints=source,
                                                          renewal_time=renewal_time),
            teardown.DELETE_CHILDREN: DeleteChildrenInOrder(kube, store, blueprints=source,
                                                            recheck=recheck),
            teardown.REMOVE_FINALIZER: RemoveFinalizer(kube),
        },
    }


def flatten(per_machine: Mapping[str, Mapping[str, Step]]) -> dict[str, Step]:
    """The runner's map by step name; a step name bound by two machines is refused (the runner
    looks implementations up by step name alone)."""
    flat: dict[str, Step] = {}
    owner: dict[str, str] = {}
    for machine, steps in per_machine.items():
        for name, impl in steps.items():
            if name in flat:
                raise ValueError(f"step {name!r} is bound by machines {owner[name]!r} and "
                                 f"{machine!r}; step names must be unique across machines")
            flat[name] = impl
            owner[name] = machine
    return flat


def bind_steps(
    kube: Kube,
    store: OperationStore,
    *,
    blueprints: BlueprintSource | None = None,
    renewal_time: RenewalTime | None = None,
    recheck: timedelta = timedelta(seconds=0.2),
) -> dict[str, Step]:
    """Every step of every machine of the catalog, by step name (what ``Runner`` takes)."""
    return flatten(machine_steps(kube, store, blueprints=blueprints, renewal_time=renewal_time,
                                 recheck=recheck))
