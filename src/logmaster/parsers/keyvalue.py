"""Generic ``key=value`` messages: the catch-all for devices without a parser of their own.

Many appliances (Sophos UTM / XG, SonicWall, Zyxel, Cyberoam, WatchGuard, ...) log whitespace
separated ``key=value`` pairs, values bare, ``"double quoted"`` (backslash escapes) or
``'single quoted'``, sometimes after some words (``Accepted connection: src=... dst=...``).
A key starts at the beginning or after whitespace (so ``?a=1&b=2`` in a URL is not a pair).

A message is claimed when it has at least two distinct keys and pairs make up at least a third
of its words, so that prose mentioning one ``a=b`` stays unparsed (this parser is asked last).
Every pair is kept as ``keyvalue.<key>`` (lower case, other characters ``_``), first occurrence
wins; well-known keys also fill ECS fields. An address value may carry a port and interface
(SonicWall ``src=10.0.0.5:51234:X1``); ``proto=tcp/https`` gives transport and protocol.
"""

from __future__ import annotations

import functools
import re

from logmaster.parsers.base import Fields, Parser, Syslog, ip, mac, port, transport

_PAIR = re.compile(r"""(?:^|(?<=\s))([A-Za-z_][\w.\-]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)""")
# Values of "proto" that are IP protocols; others ("dns", "https") name the application.
_TRANSPORTS = {"tcp", "udp", "icmp", "ipv6-icmp", "icmpv6", "gre", "esp", "ah", "sctp", "igmp"}
_ADDR_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})(?::(\S+))?")

# Normalised key (lower case, only letters and digits) -> (ECS field, value kind).
_TABLE: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("src", "srcip", "sourceip", "source", "srcaddr", "srcaddress", "sourceaddress", "saddr"),
        "source.ip",
        "address",
    ),
    (
        # A bare "ip" names the host the record is about, like a bare "mac" does.
        ("ip", "ipaddr", "ipaddress", "clientip", "userip"),
        "source.ip",
        "address",
    ),
    (("sport", "srcport", "sourceport", "spt"), "source.port", "port"),
    (
        ("dst", "dstip", "dest", "destip", "destination", "destinationip"),
        "destination.ip",
        "address",
    ),
    (
        ("dstaddr", "dstaddress", "destaddr", "destinationaddress", "daddr"),
        "destination.ip",
        "address",
    ),
    (("dport", "dstport", "destport", "destinationport", "dpt"), "destination.port", "port"),
    (("proto", "protocol", "ipproto", "protoid"), "network.transport", "transport"),
    (("user", "username", "usr", "uname", "suser"), "user.name", "str"),
    (("mac", "srcmac", "smac", "sourcemac", "macaddr", "macaddress"), "source.mac", "mac"),
    (("dstmac", "dmac", "destmac", "destinationmac"), "destination.mac", "mac"),
    (("action", "act"), "event.action", "action"),
    (("natsrc", "natsrcip", "transrc", "transrcip", "xlatesrc"), "source.nat.ip", "address"),
    (("natsport", "natsrcport", "transrcport", "xlatesport"), "source.nat.port", "port"),
    (("natdst", "natdstip", "trandst", "trandstip", "xlatedst"), "destination.nat.ip", "address"),
    (("natdport", "natdstport", "trandstport", "xlatedport"), "destination.nat.port", "port"),
    (
        ("inif", "inintf", "srcintf", "initf", "ininterface", "iniface", "srcif"),
        "observer.ingress.interface.name",
        "str",
    ),
    (
        ("outif", "outintf", "dstintf", "outitf", "outinterface", "outiface", "dstif"),
        "observer.egress.interface.name",
        "str",
    ),
    (("rule", "rulename", "policy", "policyname", "fwrule"), "rule.name", "str"),
)
_MAP = {key: (field, kind) for keys, field, kind in _TABLE for key in keys}
# The port and interface that an "address:port:interface" value carries, per address field.
_ADDR_EXTRA = {
    "source.ip": ("source.port", "observer.ingress.interface.name"),
    "destination.ip": ("destination.port", "observer.egress.interface.name"),
    "source.nat.ip": ("source.nat.port", None),
    "destination.nat.ip": ("destination.nat.port", None),
}


def pairs(text: str) -> list[tuple[str, str]]:
    """Every ``key=value`` pair in order, quotes removed and escapes undone."""
    out: list[tuple[str, str]] = []
    for key, raw in _PAIR.findall(text):
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            value = raw[1:-1]
            if raw[0] == '"' and "\\" in value:
                value = re.sub(r"\\(.)", r"\1", value)
        else:
            value = raw.rstrip(",;")  # "src=1.2.3.4, dst=..." separates with commas too
        out.append((key, value))
    return out


def _address(fields: Fields, field: str, value: str) -> None:
    if (addr := ip(value)) is not None:
        fields.setdefault(field, addr)
        return
    m = _ADDR_PORT.fullmatch(value)
    if m is None or (addr := ip(m[1])) is None:
        return
    fields.setdefault(field, addr)
    port_field, iface_field = _ADDR_EXTRA[field]
    if (p := port(m[2])) is not None:
        fields.setdefault(port_field, p)
    if iface_field and m[3]:
        fields.setdefault(iface_field, m[3])


def _ecs(fields: Fields, field: str, kind: str, value: str) -> None:
    """Fill ``field`` from ``value`` unless an earlier key already did."""
    if kind == "address":
        _address(fields, field, value)
        return
    converted: object = value
    if kind == "port":
        converted = port(value)
    elif kind == "mac":
        converted = mac(value)
    elif kind == "action":
        converted = "-".join(value.lower().split())
    elif kind == "transport":
        name, _, application = value.partition("/")  # SonicWall "tcp/https"
        converted = transport(name)
        if converted is not None and not converted.isdigit() and converted not in _TRANSPORTS:
            application, converted = name, None  # Zyxel proto="dns" (its protoID=17)
        if application:
            fields.setdefault("network.protocol", application.lower())
    if converted is not None and converted != "":
        fields.setdefault(field, converted)


def _drop_untranslated(fields: Fields, side: str) -> None:
    """Remove ``<side>.nat.*`` that says "no translation" (port 0, or the real address).

    Devices fill their NAT keys on every record (Sophos ``tran_src_port=0``, SonicWall
    ``natDst`` equal to ``dst``); kept, they would look like translations to the session builder.
    """
    if fields.get(f"{side}.nat.port") == 0:
        del fields[f"{side}.nat.port"]
    nat_ip, nat_port = fields.get(f"{side}.nat.ip"), fields.get(f"{side}.nat.port")
    if nat_ip is not None and nat_ip == fields.get(f"{side}.ip"):
        if nat_port is None or nat_port == fields.get(f"{side}.port"):
            fields.pop(f"{side}.nat.ip")
            fields.pop(f"{side}.nat.port", None)
    elif nat_ip is None and nat_port is not None and nat_port == fields.get(f"{side}.port"):
        fields.pop(f"{side}.nat.port")


@functools.lru_cache(maxsize=4096)
def _key(key: str) -> tuple[str, tuple[str, str] | None]:
    """(``keyvalue.<safe key>``, the ECS mapping of the key or None); keys repeat line after
    line, so the two substitutions are done once per distinct key."""
    lower = key.lower()
    return f"keyvalue.{re.sub(r'[^a-z0-9_]', '_', lower)}", _MAP.get(
        re.sub(r"[^a-z0-9]", "", lower)
    )


class KeyValueParser(Parser):
    name = "keyvalue"

    def parse(self, syslog: Syslog) -> Fields | None:
        msg = syslog.message
        if msg.count("=") < 2:
            return None
        found = pairs(msg)
        if len({key for key, _ in found}) < 2:
            return None
        words = sum(any(c.isalnum() for c in w) for w in _PAIR.sub(" ", msg).split())
        if len(found) * 2 < words:
            return None  # prose with a few "a=b" in it, not a key=value record
        fields: Fields = {"event.dataset": "keyvalue"}
        for key, value in found:
            if not value:
                continue
            safe, known = _key(key)
            fields.setdefault(safe, value)
            if known is not None:
                _ecs(fields, known[0], known[1], value)
        for side in ("source", "destination"):
            _drop_untranslated(fields, side)
        return fields
