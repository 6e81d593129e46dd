"""pfSense (and OPNsense) ``filterlog`` CSV and captive portal ``logportalauth`` lines.

filterlog (Netgate, "Raw Filter Log Format"; pfSense's ``filterlog`` daemon) writes one CSV line
per logged packet under the TAG ``filterlog``::

    RULE,SUBRULE,ANCHOR,TRACKER,IFACE,REASON,ACTION,DIR,4,TOS,ECN,TTL,ID,OFFSET,FLAGS,PROTOID,
        PROTO,LENGTH,SRC,DST[,PROTO DATA]
    RULE,SUBRULE,ANCHOR,TRACKER,IFACE,REASON,ACTION,DIR,6,CLASS,FLOWLABEL,HOPLIMIT,PROTO,
        PROTOID,LENGTH,SRC,DST[,PROTO DATA]

    TCP:  SPORT,DPORT,DATALEN,FLAGS,SEQ,ACK,WINDOW,URG,OPTIONS
    UDP:  SPORT,DPORT,DATALEN
    ICMP: TYPE[,TYPE DATA]   (request/reply: ID,SEQ; unreachproto: DST,PROTOID;
                              unreachport: DST,PROTO,PORT; needfrag: DST,MTU; ...)
    CARP: TYPE,TTL,VHID,VERSION,ADVSKEW,ADVBASE

ACTION is pass, block, scrub, nat, binat, rdr or synproxy-drop; DIR is in or out; REASON is the
pf reason (``match``, ``state-mismatch``, ...). Trailing fields may be missing (truncated or
unhandled protocols), so every field past DIR is optional. filterlog appends the ICMP payload
length to the last ICMP field without a separator (``request,37728,164`` is id 37728, seq 1,
length 64), so the ICMP sequence number is not kept.

Captive portal (pfSense ``captiveportal_logportalauth``) writes under the TAG
``logportalauth``::

    Zone: ZONE - STATUS: USER, MAC, IP[, MESSAGE]

(older releases without ``Zone: ZONE - ``). STATUS ACCEPT / LOGIN / MACHINE LOGIN / "Voucher
login ..." is a sign-in; FAILURE / ERROR a refused one; LOGOUT, DISCONNECT, TIMEOUT, IDLE TIMEOUT,
SESSION TIMEOUT, QUOTA EXCEEDED and "... TERMINATING OLD SESSION" end a session.
"""

from __future__ import annotations

import re

from logmaster.parsers.base import (
    LOGIN,
    LOGIN_FAILED,
    LOGOUT,
    TRANSPORTS,
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

_TAG = re.compile(r"(filterlog|logportalauth)(?:\[\d*\])?: ?")
# A bare filterlog line (its TAG lost on the way): the common fields are strict enough.
_BARE_CSV = re.compile(r"\d*,\d*,[^,]*,[^,]*,[^,]+,[\w()-]+,[\w()-]+,(?:in|out|in/out),[46](?:,|$)")
_DIRECTIONS = {"in": "inbound", "out": "outbound"}

# STATUS may hold a MAC ("... WITH DIFFERENT MAC ADDRESS 00:11:..."), never ": ".
_PORTAL = re.compile(r"(?:Zone: (?P<zone>\S*) - )?(?P<status>.+?)(?:: (?P<rest>.*))?")
_PORTAL_ENTRY = re.compile(
    r"(?P<user>.*?), (?P<mac>[0-9A-Fa-f:.-]*), (?P<ip>[0-9A-Fa-f:.]+)(?:, (?P<msg>.*))?"
)
_LOGIN_STATUS = re.compile(r"ACCEPT|LOGIN|MACHINE LOGIN|USER LOGIN|VOUCHER LOGIN.*")
_FAILED_STATUS = re.compile(r"FAILURE|ERROR|.*LOGIN FAILED.*")
_LOGOUT_STATUS = re.compile(
    r"LOGOUT|DISCONNECT.*|.*TIMEOUT|QUOTA EXCEEDED|.*TERMINATING OLD SESSION|RADIUS_DISCONNECT"
)


def _field(cols: list[str], i: int) -> str | None:
    return cols[i] if i < len(cols) and cols[i] != "" else None


class PfSenseParser(Parser):
    name = "pfsense"

    def parse(self, syslog: Syslog) -> Fields | None:
        text = syslog.message
        app = syslog.appname
        if app not in ("filterlog", "logportalauth"):
            if (tag := _TAG.match(text)) is not None:  # bare message that kept its TAG
                app, text = tag.group(1), text[tag.end() :]
            elif _BARE_CSV.match(text) is not None:
                app = "filterlog"
            else:
                return None
        if app == "filterlog":
            return self._filterlog(text)
        return self._portal(text)

    def _filterlog(self, text: str) -> Fields | None:
        cols = text.strip().split(",")
        if len(cols) < 8 or not cols[6] or cols[7] not in ("in", "out", "in/out"):
            return None
        fields: Fields = {
            "event.dataset": "pfsense.firewall",
            "event.action": cols[6],
            "observer.type": "firewall",
        }
        put(fields, "rule.id", _field(cols, 0))
        put(fields, "pfsense.sub_rule", _field(cols, 1))
        put(fields, "pfsense.anchor", _field(cols, 2))
        put(fields, "rule.uuid", _field(cols, 3))
        put(fields, "event.reason", _field(cols, 5))
        put(fields, "network.direction", _DIRECTIONS.get(cols[7]))
        # The real interface is where pf saw the packet: the way in for "in", out for "out".
        side = "egress" if cols[7] == "out" else "ingress"
        put(fields, f"observer.{side}.interface.name", _field(cols, 4))
        version = _field(cols, 8)
        if version == "4":
            fields["network.type"] = "ipv4"
            for i, key in ((9, "tos"), (10, "ecn"), (14, "flags")):
                put(fields, f"pfsense.ip.{key}", _field(cols, i))
            for i, key in ((11, "ttl"), (12, "id"), (13, "offset")):
                put(fields, f"pfsense.ip.{key}", integer(_field(cols, i)))
            proto_id, proto_text, rest = _field(cols, 15), _field(cols, 16), 17
        elif version == "6":
            fields["network.type"] = "ipv6"
            put(fields, "pfsense.ip.tos", _field(cols, 9))  # the traffic class
            put(fields, "pfsense.ip.flow_label", _field(cols, 10))
            put(fields, "pfsense.ip.ttl", integer(_field(cols, 11)))  # the hop limit
            proto_id, proto_text, rest = _field(cols, 13), _field(cols, 12), 14
        else:
            return fields
        if proto_id is not None and proto_id.isascii() and proto_id.isdigit():
            fields["network.iana_number"] = proto_id
        put(fields, "network.transport", TRANSPORTS.get(proto_id or "") or transport(proto_text))
        put(fields, "network.bytes", integer(_field(cols, rest)))
        put(fields, "source.ip", ip(_field(cols, rest + 1)))
        put(fields, "destination.ip", ip(_field(cols, rest + 2)))
        self._protocol(fields, proto_id, cols[rest + 3 :])
        return fields

    @staticmethod
    def _protocol(fields: Fields, proto_id: str | None, data: list[str]) -> None:
        if proto_id in ("6", "17", "132"):  # TCP, UDP, SCTP
            put(fields, "source.port", port(_field(data, 0)))
            put(fields, "destination.port", port(_field(data, 1)))
            name = "tcp" if proto_id == "6" else "udp" if proto_id == "17" else "sctp"
            put(fields, f"pfsense.{name}.length", integer(_field(data, 2)))
        if proto_id == "6":
            put(fields, "pfsense.tcp.flags", _field(data, 3))
            put(fields, "pfsense.tcp.seq", _field(data, 4))  # "seq" or "seq:seq+len"
            put(fields, "pfsense.tcp.ack", integer(_field(data, 5)))
            put(fields, "pfsense.tcp.window", integer(_field(data, 6)))
            put(fields, "pfsense.tcp.urg", integer(_field(data, 7)))
            options = _field(data, 8)
            if options:
                fields["pfsense.tcp.options"] = options.split(";")
        elif proto_id in ("1", "58"):
            kind = _field(data, 0)
            put(fields, "pfsense.icmp.type", kind.strip() if kind else None)
            if kind in ("request", "reply", "tstamp") or (kind or "").startswith("tstampreply"):
                put(fields, "pfsense.icmp.id", integer((_field(data, 1) or "").strip()))
            elif kind in ("unreachproto", "unreachport", "needfrag"):
                put(fields, "pfsense.icmp.destination.ip", ip(_field(data, 1)))
        elif proto_id == "112":  # CARP
            for i, key in (
                (0, "type"),
                (1, "ttl"),
                (2, "vhid"),
                (3, "version"),
                (4, "advskew"),
                (5, "advbase"),
            ):
                value = _field(data, i)
                put(fields, f"pfsense.carp.{key}", value if i == 0 else integer(value))

    @staticmethod
    def _portal(text: str) -> Fields | None:
        m = _PORTAL.fullmatch(text.strip())
        if m is None:
            return None
        fields: Fields = {
            "event.dataset": "pfsense.captiveportal",
        }
        put(fields, "pfsense.captiveportal.zone", m.group("zone"))
        status = m.group("status").strip()
        entry = _PORTAL_ENTRY.fullmatch(m.group("rest") or "")
        if entry is None or ip(entry.group("ip")) is None:
            # A zone message without a client ("Zone: guest - Reconfiguring captive portal").
            return fields if m.group("zone") is not None else None
        fields["pfsense.captiveportal.status"] = status
        upper = status.upper()
        if _LOGIN_STATUS.fullmatch(upper):
            fields["event.action"], fields["event.outcome"] = LOGIN, "success"
        elif _FAILED_STATUS.fullmatch(upper):
            fields["event.action"], fields["event.outcome"] = LOGIN_FAILED, "failure"
        elif _LOGOUT_STATUS.fullmatch(upper):
            fields["event.action"], fields["event.outcome"] = LOGOUT, "success"
            put(fields, "event.reason", status)
        user = entry.group("user").strip()
        put(fields, "user.name", user)
        put(fields, "source.mac", mac(entry.group("mac")))
        put(fields, "source.ip", ip(entry.group("ip")))
        msg = (entry.group("msg") or "").strip()
        if msg:
            fields["event.reason"] = msg
        return fields
