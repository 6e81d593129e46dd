"""Linux netfilter packet logs: the iptables/ip6tables ``LOG`` target and nftables ``log``.

The kernel's ``nf_log_syslog`` module writes one line per packet (usually relayed by the
syslog daemon under the ``kernel`` tag)::

    [<uptime>] <prefix>IN=<if> OUT=<if> [PHYSIN=..] [MAC=<dst>:<src>:<type>] SRC=<ip> DST=<ip>
        LEN=.. TOS=.. PREC=.. TTL=.. ID=.. [DF] PROTO=<proto> [SPT=.. DPT=.. ...] [MARK=..]

IPv6 writes ``TC= HOPLIMIT= FLOWLBL=`` where IPv4 writes ``TOS= PREC= TTL= ID=``; ICMP writes
``TYPE= CODE=`` (and for errors the offending packet in ``[SRC=... ]``, which must not override
the outer addresses); ``--log-macdecode`` / nft ``flags ether`` write ``MACSRC= MACDST=
MACPROTO=`` instead of ``MAC=``. The prefix is the rule's ``--log-prefix`` / ``log prefix``
text. References: Linux ``net/netfilter/nf_log_syslog.c``, iptables-extensions(8) "LOG",
nft(8) "LOG STATEMENT".
"""

from __future__ import annotations

import re

from logmaster.parsers.base import Fields, Parser, Syslog, integer, ip, mac, port, put, transport

# "IN=" always comes first, right after the prefix (which need not end in a space: a prefix
# "DROP" gives "DROPIN=eth0"); a bridge's "PHYSIN=" is followed by "PHYSOUT=", not "OUT=".
_START = re.compile(r"IN=(\S*) OUT=(\S*)")
_UPTIME = re.compile(r"\s*\[\s*\d+\.\d+\]\s*")
_PORTED = {"tcp", "udp", "udplite", "sctp", "dccp"}
_TCP_FLAGS = {"CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN"}


def _rule_name(prefix: str) -> str:
    """The log prefix without the kernel uptime stamp, brackets or a trailing colon."""
    if (m := _UPTIME.match(prefix)) is not None:
        prefix = prefix[m.end() :]
    name = prefix.strip().rstrip(":").strip()
    if name.startswith("[") and name.endswith("]") and "[" not in name[1:-1]:
        name = name[1:-1].strip()
    return name


class NetfilterParser(Parser):
    name = "netfilter"

    def parse(self, syslog: Syslog) -> Fields | None:
        msg = syslog.message
        if "IN=" not in msg or "SRC=" not in msg:
            return None
        m = _START.search(msg)
        if m is None or any(c in msg[: m.start()] for c in "=|"):
            return None  # IN= quoted inside a key=value or CEF record
        # The packet that caused an ICMP error follows in brackets; only the outer one counts.
        rest = msg[m.end() :].split("[", 1)[0]
        kv: dict[str, str] = {}
        flags: list[str] = []
        for token in rest.split():
            key, eq, value = token.partition("=")
            if eq:
                kv.setdefault(key, value)  # UDP repeats LEN= for its own length
            elif token in _TCP_FLAGS:
                flags.append(token)
        src = ip(kv.get("SRC"))
        if src is None:
            return None
        proto = transport(kv.get("PROTO"))
        if proto == "icmpv6":
            proto = "ipv6-icmp"  # the ECS / IANA keyword
        fields: Fields = {
            "event.dataset": "netfilter.log",
            "source.ip": src,
            "network.type": "ipv6" if ":" in src else "ipv4",
        }
        put(fields, "destination.ip", ip(kv.get("DST")))
        put(fields, "network.transport", proto)
        put(fields, "observer.ingress.interface.name", m[1])
        put(fields, "observer.egress.interface.name", m[2])
        put(fields, "rule.name", _rule_name(msg[: m.start()]))
        octets = kv.get("MAC", "").split(":")
        if len(octets) >= 12:  # destination, source, ethertype (more for VLAN / other links)
            put(fields, "destination.mac", mac(":".join(octets[:6])))
            put(fields, "source.mac", mac(":".join(octets[6:12])))
        put(fields, "source.mac", mac(kv.get("MACSRC")))
        put(fields, "destination.mac", mac(kv.get("MACDST")))
        if proto in _PORTED:
            put(fields, "source.port", port(kv.get("SPT")))
            put(fields, "destination.port", port(kv.get("DPT")))
        if proto in ("icmp", "ipv6-icmp"):
            put(fields, "netfilter.icmp.type", integer(kv.get("TYPE")))
            put(fields, "netfilter.icmp.code", integer(kv.get("CODE")))
        if flags:
            fields["netfilter.tcp.flags"] = flags
        put(fields, "netfilter.length", integer(kv.get("LEN")))
        put(fields, "netfilter.ttl", integer(kv.get("TTL") or kv.get("HOPLIMIT")))
        put(fields, "netfilter.mark", kv.get("MARK"))
        put(fields, "user.id", kv.get("UID"))
        return fields
