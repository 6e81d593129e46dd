"""MikroTik RouterOS: firewall/NAT packet logs, hotspot sign-ins and DHCP leases.

RouterOS writes every log entry as ``TOPICS MESSAGE`` where TOPICS is a comma list ending in a
severity (``firewall,info``, ``hotspot,account,info,debug``; RouterOS manual, "Log"). Over
syslog the topics may be kept or dropped, and the first word of the message may have been taken
as the syslog TAG by the header parser (``srcnat: in:...`` arrives as appname ``srcnat``).
Understood after the optional topics:

- Firewall/NAT ``action=log`` lines (RouterOS manual, "Filter"/"NAT", action ``log``)::

      [PREFIX ]CHAIN: in:IFACE out:IFACE, [connection-state:STATE ][src-mac MAC, ]
      proto PROTO[ (FLAGS | type T, code C)], SRC[:PORT]->DST[:PORT][, NAT ...], len N

  IPv6 endpoints carry ports as ``[addr]:port``; ICMP has none (``10.0.0.1->8.8.8.8``). The NAT
  block is ``NAT (a:b->c:d)->e:f`` for srcnat (c:d is the translated source),
  ``NAT a:b->(c:d->e:f)`` for dstnat (e:f is the translated destination) and
  ``NAT (a:b->c:d)->(e:f->g:h)`` for both. ``out:(unknown 0)`` / ``out:(none)`` mean no
  interface.
- Hotspot (topics ``hotspot,account,info,debug``, sometimes preceded by ``->:``)::

      USER (IP): logged in | logged out: REASON | login failed: REASON | trying to log in by M

- DHCP server, both wordings (v6 ``to``/``from``, v7 ``for``), hostname optional::

      SERVER assigned IP for|to MAC [HOSTNAME]      SERVER deassigned IP for|from MAC

Any other message with a RouterOS topic list (``system,info,account user admin logged in ...``)
is claimed as ``mikrotik.log`` with its topics, so a MikroTik device never counts as unparsed.
"""

from __future__ import annotations

import re

from logmaster.parsers.base import (
    DHCP_ASSIGN,
    DHCP_RELEASE,
    LOGIN,
    LOGIN_ATTEMPT,
    LOGIN_FAILED,
    LOGOUT,
    Fields,
    Parser,
    Syslog,
    integer,
    ip,
    mac,
    port,
    put,
    transport,
)

# A topic list: at least two words joined by commas, then a space ("firewall,info ").
_TOPICS = re.compile(r"([a-z][a-z0-9-]*(?:,[a-z][a-z0-9-]*)+) ")
# The last topic of every RouterOS entry is its severity; the fallback needs one to claim a line.
_SEVERITIES = frozenset({"debug", "info", "warning", "error", "critical"})
# Where "in:" starts a word; the interfaces and body are then cut with str.find, which stays
# linear on hostile input where a regex of lazy groups would backtrack.
_IN = re.compile(r"(?:^| )in:")
_CONN_STATE = re.compile(r"connection-state:(\S+)")
_SRC_MAC = re.compile(r"src-mac ([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})")
_PROTO = re.compile(r"proto ([\w-]{1,32})(?: \(([^()]{0,64})\))?")
_ENDPOINT = r"\[[0-9A-Fa-f:.]{2,45}\](?::\d{1,5})?|[0-9A-Fa-f:.]{2,51}"
# The packet's own pair follows ", " directly; pairs inside the NAT block follow "(" or ")".
_PAIR = re.compile(rf", (?P<src>{_ENDPOINT})->(?P<dst>{_ENDPOINT})(?=,|$)")
_NAT = re.compile(
    r"NAT (?P<left>\([^()]{1,120}\)|[^\s()]{1,60}?)->(?P<right>\([^()]{1,120}\)|[^\s(),]{1,60})"
)
_LEN = re.compile(r"len (\d+)")
_ICMP = re.compile(r"type (\d+), code (\d+)")
_NO_IFACE = frozenset({"(unknown 0)", "(none)", "unknown 0", ""})

# Searched, not matched from the start: the user name is whatever precedes it.
_HOTSPOT = re.compile(
    r"\((?P<ip>[0-9A-Fa-f:.]{2,45})\): (?P<what>logged in|logged out|login failed|trying to log in)"
)
_HOTSPOT_ACTIONS = {
    "logged in": (LOGIN, "success"),
    "logged out": (LOGOUT, "success"),
    "login failed": (LOGIN_FAILED, "failure"),
    "trying to log in": (LOGIN_ATTEMPT, "unknown"),
}
_DHCP = re.compile(
    r"(?:(?P<server>\S+) )?(?P<verb>assigned|deassigned) (?P<ip>[0-9A-Fa-f:.]+) "
    r"(?:for|to|from) (?P<mac>[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})(?: (?P<host>.+))?"
)


def _endpoint(text: str) -> tuple[str | None, int | None]:
    """(address, port) of ``1.2.3.4:80``, ``1.2.3.4``, ``[2001:db8::1]:80`` or ``2001:db8::1``."""
    if text.startswith("["):
        addr, _, rest = text[1:].partition("]")
        return ip(addr), port(rest[1:]) if rest.startswith(":") else None
    if text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has two colons or more
        addr, _, p = text.partition(":")
        return ip(addr), port(p)
    return ip(text), None


def _pair(text: str) -> tuple[str, str] | None:
    """The two endpoints of ``a->b`` (parentheses of a NAT group removed)."""
    src, arrow, dst = text.strip("()").partition("->")
    return (src, dst) if arrow else None


def _put_endpoint(fields: Fields, prefix: str, text: str) -> None:
    addr, p = _endpoint(text)
    put(fields, f"{prefix}.ip", addr)
    put(fields, f"{prefix}.port", p)


class MikroTikParser(Parser):
    name = "mikrotik"

    def parse(self, syslog: Syslog) -> Fields | None:
        text = syslog.message
        appname = syslog.appname or ""
        if appname.startswith("(") and appname.endswith(")"):
            # "Mmm dd hh:mm:ss user1 (10.0.0.5): logged in" sent without a hostname: the header
            # parser read "user1" as the hostname and "(10.0.0.5)" as the TAG. Put it back.
            text = f"{appname}: {text}"
        topics: list[str] = []
        if (m := _TOPICS.match(text)) is not None:
            topics = m.group(1).split(",")
            text = text[m.end() :]
        if text.startswith("->: "):  # hotspot debug entries repeat the login under "->:"
            text = text[4:]
        fields = self._firewall(text, syslog) or self._hotspot(text, syslog) or self._dhcp(text)
        if fields is None:
            if not _SEVERITIES.intersection(topics):
                return None
            fields = {"event.dataset": "mikrotik.log"}
        if topics:
            fields["mikrotik.topics"] = topics
        return fields

    def _firewall(self, text: str, syslog: Syslog) -> Fields | None:
        if " out:" not in text:  # cheap test before any regex
            return None
        start = _IN.search(text)
        if start is None:
            return None
        in_at = start.end()
        out_at = text.find(" out:", in_at)
        end_out = text.find(", ", out_at)
        if out_at < 0 or end_out < 0:
            return None
        head = text[: start.start()].strip().rstrip(":").strip()
        interfaces = (("ingress", text[in_at:out_at]), ("egress", text[out_at + 5 : end_out]))
        body = text[end_out + 2 :]
        proto = _PROTO.search(body)
        pair = _PAIR.search(body, proto.end() if proto else 0)
        if proto is None and pair is None:
            return None
        fields: Fields = {"event.dataset": "mikrotik.firewall"}
        # The log prefix (optional) precedes the chain; without either in the message the
        # header parser has taken the chain as the syslog TAG.
        if not head and syslog.appname and syslog.appname != "->":
            head = syslog.appname
        if head:
            prefix, _, chain = head.rpartition(" ")
            put(fields, "mikrotik.chain", chain.rstrip(":"))
            put(fields, "rule.name", prefix.rstrip(": ") or chain.rstrip(":"))
        for key, value in interfaces:
            if value.strip() not in _NO_IFACE:
                fields[f"observer.{key}.interface.name"] = value.strip()
        if (state := _CONN_STATE.search(body)) is not None:
            put(fields, "mikrotik.connection_state", state.group(1).rstrip(","))
        if (src_mac := _SRC_MAC.search(body)) is not None:
            put(fields, "source.mac", mac(src_mac.group(1)))
        if proto is not None:
            put(fields, "network.transport", transport(proto.group(1)))
            detail = proto.group(2) or ""
            if (icmp := _ICMP.fullmatch(detail)) is not None:
                fields["mikrotik.icmp.type"] = int(icmp.group(1))
                fields["mikrotik.icmp.code"] = int(icmp.group(2))
            elif detail:
                fields["mikrotik.tcp.flags"] = [f.strip() for f in detail.split(",") if f.strip()]
        if pair is not None:
            _put_endpoint(fields, "source", pair.group("src"))
            _put_endpoint(fields, "destination", pair.group("dst"))
        if (nat := _NAT.search(body)) is not None:
            self._nat(fields, nat.group("left"), nat.group("right"))
        if (length := _LEN.search(body)) is not None:
            put(fields, "network.bytes", integer(length.group(1)))
        if ":" in fields.get("source.ip", "") or ":" in fields.get("destination.ip", ""):
            fields["network.type"] = "ipv6"
        elif "source.ip" in fields:
            fields["network.type"] = "ipv4"
        return fields

    @staticmethod
    def _nat(fields: Fields, left: str, right: str) -> None:
        # The NAT block states the original and translated tuples; it wins over the packet's
        # own pair, which shows whichever side of the translation the logging chain saw.
        if left.startswith("(") and (src := _pair(left)) is not None:
            _put_endpoint(fields, "source", src[0])
            _put_endpoint(fields, "source.nat", src[1])
        elif not left.startswith("("):
            _put_endpoint(fields, "source", left)
        if right.startswith("(") and (dst := _pair(right)) is not None:
            _put_endpoint(fields, "destination", dst[0])
            _put_endpoint(fields, "destination.nat", dst[1])
        elif not right.startswith("("):
            _put_endpoint(fields, "destination", right)

    @staticmethod
    def _hotspot(text: str, syslog: Syslog) -> Fields | None:
        if "): " not in text:
            return None
        m = _HOTSPOT.search(text)
        if m is None or ip(m.group("ip")) is None:
            return None
        rest = text[m.end() :]
        if rest and rest[0] not in ": ":
            return None
        user = text[: m.start()].strip()
        if not user and m.start() > 0:
            return None
        if not user and syslog.format == "rfc3164" and syslog.hostname:
            # "Mmm dd hh:mm:ss user1 (10.0.0.5): logged in" without a hostname in the frame:
            # the header parser read the user name as the hostname.
            user = syslog.hostname
        action, outcome = _HOTSPOT_ACTIONS[m.group("what")]
        fields: Fields = {
            "event.dataset": "mikrotik.hotspot",
            "event.action": action,
            "event.outcome": outcome,
            "source.ip": ip(m.group("ip")),
        }
        put(fields, "user.name", user)
        detail = rest.lstrip(":").strip()
        if action == LOGIN_ATTEMPT:
            put(fields, "mikrotik.hotspot.method", detail.removeprefix("by ").strip())
        else:
            put(fields, "event.reason", detail)
        return fields

    @staticmethod
    def _dhcp(text: str) -> Fields | None:
        if "assigned " not in text:
            return None
        m = _DHCP.fullmatch(text)
        if m is None or ip(m.group("ip")) is None:
            return None
        fields: Fields = {
            "event.dataset": "mikrotik.dhcp",
            "event.action": DHCP_ASSIGN if m.group("verb") == "assigned" else DHCP_RELEASE,
            "client.ip": ip(m.group("ip")),
            "client.mac": mac(m.group("mac")),
        }
        put(fields, "mikrotik.dhcp.server", m.group("server"))
        put(fields, "host.hostname", (m.group("host") or "").strip())
        return fields
