"""The fake upctl's command tree as data: Flag and CommandSpec, the global flags, every command and its flags."""

from __future__ import annotations

# The fake upctl starts once per call: no typing/dataclasses at run time (they cost milliseconds to import); the
# annotations are strings (PEP 563), read by type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal, TypeAlias

    FlagKind: TypeAlias = Literal["string", "int", "bool", "toggle", "slice", "array", "duration", "optional"]
    ArgsKind: TypeAlias = Literal["none", "multi", "group"]


class Flag:
    """One flag. `target` lets --enable-x/--disable-x share a value; `bare` is pflag's NoOptDefVal."""

    __slots__ = ("name", "kind", "default", "short", "bare", "target", "help")

    def __init__(
        self,
        name: str,
        kind: FlagKind = "string",
        default: object = None,
        short: str = "",
        bare: str | None = None,
        target: str = "",
        help: str = "",
    ) -> None:
        self.name = name
        self.kind: FlagKind = kind
        self.default = default
        self.short = short
        self.bare = bare
        self.target = target
        self.help = help

    @property
    def key(self) -> str:
        return self.target or self.name

    @property
    def takes_value(self) -> bool:
        return self.bare is None and self.kind not in ("bool", "toggle")

    @property
    def label(self) -> str:
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"


def _toggle(name: str, help_text: str = "", *, default: bool = False, target: str = "") -> Flag:
    return Flag(name, "toggle", default, bare="false" if default else "true", target=target, help=help_text)


GLOBAL_FLAGS: tuple[Flag, ...] = (
    Flag("config", help="Configuration file path."),
    Flag("output", default="human", short="o", help="Output format: human, json or yaml."),
    _toggle("force-colours", "Force coloured output."),
    _toggle("no-colours", "Disable coloured output."),
    Flag("debug", "bool", False, bare="true", help="Print out more verbose debug logs."),
    Flag("client-timeout", "duration", "0s", short="t", help="Client timeout to use in API calls."),
    Flag("help", "bool", False, short="h", bare="true", help="help for this command"),
)


class CommandSpec:
    """One node of the command tree."""

    __slots__ = ("path", "short", "args", "flags", "required", "together", "aliases", "offline", "arg_help")

    def __init__(
        self,
        path: tuple[str, ...],
        short: str,
        args: ArgsKind = "none",
        flags: tuple[Flag, ...] = (),
        required: tuple[str, ...] = (),
        together: tuple[tuple[str, str], ...] = (),
        aliases: tuple[str, ...] = (),
        offline: bool = False,
        arg_help: str = "<UUID/Title/Hostname...>",
    ) -> None:
        self.path = path
        self.short = short
        self.args: ArgsKind = args
        self.flags = flags
        self.required = required
        self.together = together
        self.aliases = aliases
        self.offline = offline
        self.arg_help = arg_help

    @property
    def name(self) -> str:
        return "upctl " + " ".join(self.path) if self.path else "upctl"

    def find_flag(self, name: str) -> Flag | None:
        return next((f for f in (*self.flags, *GLOBAL_FLAGS) if f.name == name), None)

    def find_short(self, short: str) -> Flag | None:
        return next((f for f in (*self.flags, *GLOBAL_FLAGS) if f.short == short), None)


_CREATE_FLAGS: tuple[Flag, ...] = (
    Flag("avoid-host", "int", 0),
    Flag("boot-order", default=""),
    Flag("cores", "int", 0),
    _toggle("create-password", "Create an admin password."),
    _toggle("enable-firewall", "Enable firewall."),
    _toggle("enable-metadata", "Enable metadata service."),
    _toggle("enable-remote-access"),
    Flag("host", "int", 0),
    Flag("hostname", default="", help="Server hostname."),
    Flag("label", "array", (), help="Labels in key=value format, repeatable."),
    Flag("memory", "int", 0),
    Flag("network", "array", ()),
    Flag("os", default="Ubuntu Server 24.04 LTS (Noble Numbat)"),
    Flag("os-storage-size", "int", 0, help="OS storage size in GiB."),
    _toggle("os-storage-encrypt"),
    Flag("password-delivery", default="none"),
    Flag("plan", default="1xCPU-2GB"),
    Flag("remote-access-password", default=""),
    Flag("remote-access-type", default=""),
    Flag("server-group", default=""),
    Flag("simple-backup", default=""),
    Flag("ssh-keys", "slice", (), help="SSH public keys or files with keys."),
    Flag("storage", "array", ()),
    Flag("time-zone", default="UTC"),
    Flag("title", default=""),
    Flag("user-data", default=""),
    Flag("username", default=""),
    Flag("video-model", default="vga"),
    _toggle("wait", "Wait for server to be in started state before returning."),
    Flag("zone", default="", help="Zone where to create the server."),
)


def _enable_disable(name: str) -> tuple[Flag, Flag]:
    return (
        Flag(f"enable-{name}", "toggle", None, bare="true", target=name),
        Flag(f"disable-{name}", "toggle", None, bare="false", target=name),
    )


_MODIFY_FLAGS: tuple[Flag, ...] = (
    Flag("boot-order", default=""),
    Flag("cores", "int", 0),
    Flag("hostname", default=""),
    *_enable_disable("firewall"),
    Flag("label", "array", ()),
    Flag("memory", "int", 0),
    *_enable_disable("metadata"),
    Flag("plan", default=""),
    Flag("simple-backup", default=""),
    Flag("title", default=""),
    Flag("time-zone", default=""),
    Flag("video-model", default=""),
    *_enable_disable("remote-access"),
    Flag("remote-access-type", default=""),
    Flag("remote-access-password", default=""),
)

_FIREWALL_CREATE_FLAGS: tuple[Flag, ...] = (
    Flag("direction", default=""),
    Flag("action", default=""),
    Flag("family", default=""),
    Flag("position", "int", 0),
    Flag("protocol", default=""),
    Flag("icmp-type", default=""),
    Flag("dest-ipaddress-block", default=""),
    Flag("destination-port-start", default=""),
    Flag("destination-port-end", default=""),
    Flag("src-ipaddress-block", default=""),
    Flag("source-port-start", default=""),
    Flag("source-port-end", default=""),
    Flag("comment", default=""),
)

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec((), "UpCloud command-line interface", "group"),
    CommandSpec(("version",), "Display software information", offline=True),
    CommandSpec(("account",), "Manage account", "group", aliases=("acc",)),
    CommandSpec(("account", "show"), "Show account"),
    CommandSpec(("server",), "Manage servers", "group", aliases=("srv",)),
    CommandSpec(
        ("server", "plans"),
        "List server plans",
        flags=(Flag("prices", default=""), Flag("prices-duration", default="month")),
    ),
    CommandSpec(
        ("server", "list"),
        "List current servers",
        flags=(Flag("show-ip-addresses", "optional", "none", bare="all"),),
    ),
    CommandSpec(("server", "show"), "Show server details", "multi"),
    CommandSpec(("server", "create"), "Create a new server", flags=_CREATE_FLAGS, required=("hostname", "zone")),
    CommandSpec(
        ("server", "stop"),
        "Stop a server",
        "multi",
        flags=(
            Flag("type", default="soft"),
            _toggle("wait", "Wait for server to be in stopped state before returning."),
        ),
    ),
    CommandSpec(
        ("server", "start"),
        "Start a server",
        "multi",
        flags=(Flag("avoid-host", "int", 0), Flag("host", "int", 0)),
    ),
    CommandSpec(
        ("server", "delete"),
        "Delete a server",
        "multi",
        flags=(
            _toggle("delete-storages", "Delete storages that are attached to the server."),
            _toggle("stop", "Stop the server before deleting it."),
        ),
    ),
    CommandSpec(("server", "modify"), "Modify a server", "multi", flags=_MODIFY_FLAGS),
    CommandSpec(("server", "firewall"), "Manage server firewall rules", "group"),
    CommandSpec(
        ("server", "firewall", "create"),
        "Create a new firewall rule",
        "multi",
        flags=_FIREWALL_CREATE_FLAGS,
        required=("action", "direction"),
        together=(
            ("destination-port-start", "destination-port-end"),
            ("source-port-start", "source-port-end"),
        ),
    ),
    CommandSpec(("server", "firewall", "show"), "Show server firewall details", "multi"),
    CommandSpec(
        ("server", "firewall", "delete"),
        "Removes a firewall rule from a server",
        "multi",
        flags=(Flag("position", "int", 0),),
        required=("position",),
    ),
    CommandSpec(("zone",), "Display zone information", "group"),
    CommandSpec(("zone", "list"), "List available zones"),
    CommandSpec(("zone", "devices"), "List available devices for each zone"),
    CommandSpec(
        ("zone", "devices", "show"),
        "Show detailed device availability for the given zone",
        "multi",
        arg_help="<Zone...>",
    ),
    CommandSpec(("storage",), "Manage storages", "group", aliases=("st",)),
    CommandSpec(
        ("storage", "list"),
        "List current storages",
        flags=(
            _toggle("all", "Show all storages."),
            _toggle("private", "Show private storages (default).", default=True),
            _toggle("public", "Show public storages."),
            _toggle("normal", "Show only normal storages."),
            _toggle("backup", "Show only backup storages."),
            _toggle("cdrom", "Show only cdrom storages."),
            _toggle("template", "Show only template storages."),
        ),
    ),
    CommandSpec(("network",), "Manage networks", "group", aliases=("net",)),
    CommandSpec(
        ("network", "create"),
        "Create a network",
        flags=(
            Flag("name", default=""),
            Flag("zone", default=""),
            Flag("router", default=""),
            Flag("ip-network", "array", ()),
        ),
        required=("name", "zone", "ip-network"),
    ),  # fmt: skip
    CommandSpec(
        ("network", "list"),
        "List networks, by default private networks only",
        flags=(
            Flag("zone", default=""),
            _toggle("all", "Show all networks."),
            _toggle("public", "Show public networks instead of private networks."),
            _toggle("utility", "Show utility networks instead of private networks."),
        ),
    ),  # fmt: skip
    CommandSpec(("network", "show"), "Show network details", "multi"),
    CommandSpec(("network", "delete"), "Delete a network", "multi"),
    CommandSpec(("ip-address",), "Manage IP addresses", "group", aliases=("ip",)),
    CommandSpec(("ip-address", "list"), "List IP addresses"),
)
