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

from logmaster.parsers.base import Fields, Parser, Syslog, integer, ip, mac, port, transport

# "IN=" always comes first, right after the prefix (which need not end in a space: a prefix
# "DROP" gives "DROPIN=eth0"); a bridge's "PHYSIN=" is followed by "PHYSOUT=", not "OUT=".
_START = re.compile(r"IN=(\S*) OUT=(\S*)")
_UPTIME = re.compile(r"\s*\[\s*\d+\.\d+\]\s*")
_PORTED = {"tcp", "udp", "udplite", "sctp", "dccp"}
_TCP_FLAGS = {"CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN"}


def _rule_name(prefix: str) -> str:
    """The log prefix without the kernel uptime stamp, brackets or a trailing colon."""
    if "[" in prefix and (m := _UPTIME.match(prefix)) is not None:
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
        if m is None:
            return None
        start = m.start()
        if start:
            prefix = msg[:start]
            if "=" in prefix or "|" in prefix:
                return None  # IN= quoted inside a key=value or CEF record
        else:
            prefix = ""
        # The packet that caused an ICMP error follows in brackets; only the outer one counts.
        rest = msg[m.end() :].split("[", 1)[0]
        kv: dict[str, str] = {}
        flags: list[str] = []
        for token in rest.split():
            key, eq, text = token.partition("=")
            if eq:
                if key not in kv:  # UDP repeats LEN= for its own length
                    kv[key] = text
            elif token in _TCP_FLAGS:
                flags.append(token)
        get = kv.get
        value: str | None
        src = ip(get("SRC"))
        if src is None:
            return None
        # Fields are set inline rather than through put() (measured with the other changes
        # here: 17 -> 15 µs per line). The order of the fields is unchanged.
        proto = transport(get("PROTO"))
        if proto == "icmpv6":
            proto = "ipv6-icmp"  # the ECS / IANA keyword
        fields: Fields = {
            "event.dataset": "netfilter.log",
            "source.ip": src,
            "network.type": "ipv6" if ":" in src else "ipv4",
        }
        if (value := ip(get("DST"))) is not None:
            fields["destination.ip"] = value
        if proto:
            fields["network.transport"] = proto
        interface_in, interface_out = m.groups()
        if interface_in:
            fields["observer.ingress.interface.name"] = interface_in
        if interface_out:
            fields["observer.egress.interface.name"] = interface_out
        if prefix and (rule := _rule_name(prefix)):
            fields["rule.name"] = rule
        if "MAC" in kv:
            # Destination, source, ethertype (more for VLAN / other links): the first six and
            # the next six colon-separated octets.
            header = kv["MAC"]
            if (
                header[17:18] == ":"
                and header[35:36] in (":", "")
                and header.count(":", 0, 17) == 5
                and header.count(":", 18, 35) == 5
            ):  # the kernel's two digits an octet: cut at fixed places, no split and join
                destination, source = header[:17], header[18:35]
            elif len(parts := header.split(":")) >= 12:
                destination, source = ":".join(parts[:6]), ":".join(parts[6:12])
            else:
                destination = source = ""
            if (value := mac(destination)) is not None:
                fields["destination.mac"] = value
            if (value := mac(source)) is not None:
                fields["source.mac"] = value
        if (value := mac(get("MACSRC"))) is not None:
            fields["source.mac"] = value
        if (value := mac(get("MACDST"))) is not None:
            fields["destination.mac"] = value
        if proto in _PORTED:
            if (number := port(get("SPT"))) is not None:
                fields["source.port"] = number
            if (number := port(get("DPT"))) is not None:
                fields["destination.port"] = number
        if proto in ("icmp", "ipv6-icmp"):
            if (number := integer(get("TYPE"))) is not None:
                fields["netfilter.icmp.type"] = number
            if (number := integer(get("CODE"))) is not None:
                fields["netfilter.icmp.code"] = number
        if flags:
            fields["netfilter.tcp.flags"] = flags
        if (number := integer(get("LEN"))) is not None:
            fields["netfilter.length"] = number
        if (number := integer(get("TTL") or get("HOPLIMIT"))) is not None:
            fields["netfilter.ttl"] = number
        if value := get("MARK"):
            fields["netfilter.mark"] = value
        if value := get("UID"):
            fields["user.id"] = value
        return fields
