"""Provider-neutral data shapes: plans, OS templates, servers, networks, the create request, and our labels.

The ``Provider`` protocol (orchestrator/providers/provider.py) speaks in these types only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.errors import ConfigError, ProviderError

OUR_LABEL: tuple[str, str] = ("managed_by", "orchestrator")
DEPLOYMENT_LABEL_KEY = "orchestrator_deployment"
# Which installation made the server (orchestrator/owner.py): an id kept in $ORCHESTRATOR_HOME, and user@host.
# UpCloud label keys: 2-32 characters of letters, digits, '_' and '-'.
OWNER_LABEL_KEY = "orchestrator_owner"
OWNER_NAME_LABEL_KEY = "orchestrator_owner_name"
# Which server of a fleet (config `replicas` > 1) it is: the 1-based replica index; absent on single servers.
REPLICA_LABEL_KEY = "orchestrator_replica"
RESERVED_LABEL_KEYS = frozenset(
    {OUR_LABEL[0], DEPLOYMENT_LABEL_KEY, OWNER_LABEL_KEY, OWNER_NAME_LABEL_KEY, REPLICA_LABEL_KEY}
)


@dataclass(frozen=True)
class PlanInfo:
    """One server plan as the provider lists it (memory in MiB, storage in GiB; 0 storage for GPU plans)."""

    name: str
    cores: int
    memory_mib: int
    storage_size: int
    gpu_amount: int
    gpu_model: str

    @property
    def is_gpu(self) -> bool:
        return self.gpu_amount > 0 or self.name.startswith("GPU-")


@dataclass(frozen=True)
class TemplateInfo:
    """A public or private OS template that a server's OS disk can be cloned from."""

    uuid: str
    title: str
    template_type: str  # "cloud-init" or "native"


@dataclass(frozen=True)
class ServerInfo:
    """What we need to know about one server; summaries (server list) carry no IP, labels or devices."""

    uuid: str
    hostname: str
    title: str
    state: str  # started | stopped | maintenance | error
    plan: str
    zone: str
    public_ipv4: str | None = None
    # Excluded from the hash so a frozen ServerInfo stays hashable; still compared by ==.
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    gpu_models: tuple[str, ...] = ()
    private_ipv4: str | None = None  # the address on the first private network, when attached to one
    storages: tuple[str, ...] = field(default=(), compare=False)  # storage UUIDs (details only)

    @property
    def deployment(self) -> str | None:
        """The deployment name from our label, if this server carries one."""
        return self.labels.get(DEPLOYMENT_LABEL_KEY)

    @property
    def replica(self) -> int | None:
        """The replica index from our label (a fleet's server), else None."""
        value = self.labels.get(REPLICA_LABEL_KEY, "")
        return int(value) if value.isdigit() else None

    @property
    def is_ours(self) -> bool:
        """Made by an orchestrator: any installation's (see ``owner``), or an older version's (no owner label)."""
        key, value = OUR_LABEL
        return self.labels.get(key) == value

    @property
    def owner(self) -> str | None:
        """The owner id of the installation that created it; None on servers from versions before owner labels."""
        return self.labels.get(OWNER_LABEL_KEY) or None

    @property
    def owner_name(self) -> str:
        """The readable user@host of that installation ("" when not labelled)."""
        return self.labels.get(OWNER_NAME_LABEL_KEY, "")

    def owned_by(self, owner_id: str | None) -> bool:
        """Ours and this installation's: our label and the owner id match."""
        return self.is_ours and owner_id is not None and self.owner == owner_id


@dataclass(frozen=True)
class CreateSpec:
    """Everything `server create` needs. ``os`` is a template UUID or its exact title."""

    hostname: str
    title: str
    zone: str
    plan: str
    os: str
    os_storage_size: int  # GiB; required because GPU plans report storage_size 0
    ssh_keys: tuple[str, ...]  # literal public keys ("ssh-ed25519 AAAA...") or paths to key files
    labels: tuple[tuple[str, str], ...]
    wait: bool = True
    user_data: str | None = None
    # UUIDs of private networks (in ``zone``) to attach besides the default public and utility interfaces.
    private_networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkSpec:
    """A private network to create: one IPv4 range in one zone."""

    name: str
    zone: str
    cidr: str  # e.g. "10.0.0.0/24"
    dhcp: bool = True


@dataclass(frozen=True)
class NetworkInfo:
    """One network as the provider shows it; ``servers`` are the UUIDs of the servers attached to it."""

    uuid: str
    name: str
    zone: str
    network_type: str  # private | public | utility
    cidr: str = ""
    dhcp: bool = False
    servers: tuple[str, ...] = ()


class ServerNotFound(ProviderError):
    """The named server does not exist (the provider could not resolve it, or it is gone)."""

    not_found = True


class NetworkNotFound(ProviderError):
    """The named network does not exist."""

    not_found = True


class NetworkNotEmpty(ProviderError):
    """The network still has servers attached, so it cannot be deleted yet."""


def labels_for(deployment: str, replica: int | None = None) -> tuple[tuple[str, str], ...]:
    """The labels that mark a server as ours and as belonging to ``deployment`` (and, in a fleet, which replica)."""
    if not deployment.strip() or any(c in deployment for c in "=,\n"):
        raise ConfigError(
            f"invalid deployment name {deployment!r} for a server label",
            "use a non-empty name without '=', ',' or newlines",
        )
    ours = (OUR_LABEL, (DEPLOYMENT_LABEL_KEY, deployment))
    return ours if replica is None else (*ours, (REPLICA_LABEL_KEY, str(replica)))


def server_labels(
    deployment: str, owner: tuple[tuple[str, str], ...], extra: dict[str, str], replica: int | None = None
) -> tuple[tuple[str, str], ...]:
    """Every label a new server gets: ours, the owner's, then the config's (which may not reuse our keys)."""
    clash = sorted(RESERVED_LABEL_KEYS & set(extra))
    if clash:
        raise ConfigError(
            f"provider.labels may not set {', '.join(clash)}: orchestrator sets these itself",
            "remove them from provider.labels",
            field="provider.labels",
        )
    return labels_for(deployment, replica) + owner + tuple(sorted(extra.items()))


@dataclass(frozen=True)
class FirewallRule:
    """One UpCloud server firewall rule (the firewall is stateless: return traffic needs rules too)."""

    direction: str  # in | out
    action: str  # accept | drop
    family: str = ""  # IPv4 | IPv6 | "" (catch-all)
    protocol: str = ""  # tcp | udp | icmp | ""
    source: str = ""  # CIDR
    dest_ports: tuple[int, int] | None = None
    source_ports: tuple[int, int] | None = None
    comment: str = ""
