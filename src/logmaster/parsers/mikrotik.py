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
    transport,
)

# A topic list: at least two words joined by commas, then a space ("firewall,info ").
_TOPICS = re.compile(r"([a-z][a-z0-9-]*(?:,[a-z][a-z0-9-]*)+) ")
# The last topic of every RouterOS entry is its severity; the fallback needs one to claim a line.
_SEVERITIES = frozenset({"debug", "info", "warning", "error", "critical"})
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


def _put_endpoint(fields: Fields, ip_key: str, port_key: str, text: str) -> None:
    """Address and port of ``1.2.3.4:80``, ``1.2.3.4``, ``[2001:db8::1]:80`` or ``2001:db8::1``."""
    number: int | None = None
    if text.startswith("["):
        addr, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            number = port(rest[1:])
    else:
        addr, colon, digits = text.partition(":")
        if not colon or ":" in digits:
            addr = text
        elif digits.isascii() and digits.isdigit():  # port()'s answer, without the call
            number = int(digits)
            if number > 65535:
                number = None
        else:
            number = port(digits)
    if (address := ip(addr)) is not None:
        fields[ip_key] = address
    if number is not None:
        fields[port_key] = number


def _pair(text: str) -> tuple[str, str] | None:
    """The two endpoints of ``a->b`` (parentheses of a NAT group removed)."""
    src, arrow, dst = text.strip("()").partition("->")
    return (src, dst) if arrow else None


# Fields are set inline from all groups of a match at once, and each optional part is looked
# for with a substring test before its regex, rather than a helper call per field and a
# search per part (measured: 19 -> 16 µs per firewall line, 2.1 -> 1.3 µs per line of
# another format). The order in which fields are set is unchanged.


class MikroTikParser(Parser):
    name = "mikrotik"

    def parse(self, syslog: Syslog) -> Fields | None:
        text = syslog.message
        appname = syslog.appname
        if appname and appname.startswith("(") and appname.endswith(")"):
            # "Mmm dd hh:mm:ss user1 (10.0.0.5): logged in" sent without a hostname: the header
            # parser read "user1" as the hostname and "(10.0.0.5)" as the TAG. Put it back.
            text = f"{appname}: {text}"
        # A topic list starts with a-z; without one, a line needs what a firewall, hotspot or
        # DHCP entry contains (the same tests _firewall, _hotspot and _dhcp start with).
        if not ("a" <= text[:1] <= "z" or " out:" in text or "): " in text or "assigned " in text):
            return None
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
        # The first "in:" that starts a word; the interfaces and body are cut with str.find,
        # which stays linear on hostile input where a regex of lazy groups would backtrack.
        if text.startswith("in:"):
            head_end, in_at = 0, 3
        else:
            head_end = text.find(" in:")
            if head_end < 0:
                return None
            in_at = head_end + 4
        out_at = text.find(" out:", in_at)
        end_out = text.find(", ", out_at)
        if out_at < 0 or end_out < 0:
            return None
        head = text[:head_end].strip().rstrip(":").strip()
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
            chain = chain.rstrip(":")
            if chain:
                fields["mikrotik.chain"] = chain
            if name := prefix.rstrip(": ") or chain:
                fields["rule.name"] = name
        if (interface := text[in_at:out_at].strip()) not in _NO_IFACE:
            fields["observer.ingress.interface.name"] = interface
        if (interface := text[out_at + 5 : end_out].strip()) not in _NO_IFACE:
            fields["observer.egress.interface.name"] = interface
        if (
            "connection-state:" in body
            and (state := _CONN_STATE.search(body)) is not None
            and (value := state.group(1).rstrip(","))
        ):
            fields["mikrotik.connection_state"] = value
        if (
            "src-mac " in body
            and (src_mac := _SRC_MAC.search(body)) is not None
            and (address := mac(src_mac.group(1))) is not None
        ):
            fields["source.mac"] = address
        if proto is not None:
            name, detail = proto.groups()
            if value := transport(name):
                fields["network.transport"] = value
            if detail:
                if detail.startswith("type ") and (icmp := _ICMP.fullmatch(detail)) is not None:
                    fields["mikrotik.icmp.type"] = int(icmp.group(1))
                    fields["mikrotik.icmp.code"] = int(icmp.group(2))
                else:
                    fields["mikrotik.tcp.flags"] = list(
                        filter(None, map(str.strip, detail.split(",")))
                    )
        if pair is not None:
            src, dst = pair.groups()
            _put_endpoint(fields, "source.ip", "source.port", src)
            _put_endpoint(fields, "destination.ip", "destination.port", dst)
        if "NAT " in body and (nat := _NAT.search(body)) is not None:
            self._nat(fields, *nat.groups())
        if (
            "len " in body
            and (length := _LEN.search(body)) is not None
            and (number := integer(length.group(1))) is not None
        ):
            fields["network.bytes"] = number
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
            _put_endpoint(fields, "source.ip", "source.port", src[0])
            _put_endpoint(fields, "source.nat.ip", "source.nat.port", src[1])
        elif not left.startswith("("):
            _put_endpoint(fields, "source.ip", "source.port", left)
        if right.startswith("(") and (dst := _pair(right)) is not None:
            _put_endpoint(fields, "destination.ip", "destination.port", dst[0])
            _put_endpoint(fields, "destination.nat.ip", "destination.nat.port", dst[1])
        elif not right.startswith("("):
            _put_endpoint(fields, "destination.ip", "destination.port", right)

    @staticmethod
    def _hotspot(text: str, syslog: Syslog) -> Fields | None:
        if "): " not in text:
            return None
        m = _HOTSPOT.search(text)
        if m is None:
            return None
        address = ip(m.group("ip"))
        if address is None:
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
            "source.ip": address,
        }
        if user:
            fields["user.name"] = user
        detail = rest.lstrip(":").strip()
        if action == LOGIN_ATTEMPT:
            if method := detail.removeprefix("by ").strip():
                fields["mikrotik.hotspot.method"] = method
        elif detail:
            fields["event.reason"] = detail
        return fields

    @staticmethod
    def _dhcp(text: str) -> Fields | None:
        if "assigned " not in text:
            return None
        m = _DHCP.fullmatch(text)
        if m is None:
            return None
        server, verb, address, hardware, host = m.groups()
        client = ip(address)
        if client is None:
            return None
        fields: Fields = {
            "event.dataset": "mikrotik.dhcp",
            "event.action": DHCP_ASSIGN if verb == "assigned" else DHCP_RELEASE,
            "client.ip": client,
            "client.mac": mac(hardware),
        }
        if server:
            fields["mikrotik.dhcp.server"] = server
        if host and (host := host.strip()):
            fields["host.hostname"] = host
        return fields
