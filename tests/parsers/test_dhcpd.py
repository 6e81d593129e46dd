"""ISC dhcpd: each sample line field by field, other DHCP servers not claimed, no raising."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from sample_lines import ISTANBUL, RECEIVED, at, event_of, messages, mutations, samples

from logmaster.parsers import parse, read_syslog
from logmaster.parsers.base import DHCP_ASSIGN, DHCP_RELEASE, Syslog
from logmaster.parsers.dhcpd import DhcpdParser

NAME = "dhcpd"


def dhcp1(*when: int, severity: int = 6) -> dict[str, Any]:
    """Header fields of the samples from the server "dhcp1" (facility daemon)."""
    return {"@timestamp": at(*when), "host.name": "dhcp1", "log.syslog.severity.code": severity}


def test_every_sample_line_is_dhcpd() -> None:
    """Every line of the samples file is understood, and by this parser."""
    for line in samples(NAME):
        event, understood = parse(line, zone=ISTANBUL, received=RECEIVED)
        assert understood, line
        assert event["event.dataset"] in ("dhcpd.lease", "dhcpd.log"), line


def test_dhcpack_is_a_lease_assignment() -> None:
    """DHCPACK on: client.ip, client.mac, host.hostname and the interface; dhcp-assign."""
    line = (
        "<190>Jul  4 09:39:41 dhcpd[64305]: DHCPACK on 10.150.60.56 to 4c:55:41:a0:fa:99 "
        "(computer-name) via eth0.60"
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 7, 4, 9, 39, 41),
        "log.syslog.severity.code": 6,
        "event.dataset": "dhcpd.lease",
        "event.action": DHCP_ASSIGN,
        "client.ip": "10.150.60.56",
        "client.mac": "4c:55:41:a0:fa:99",
        "host.hostname": "computer-name",
        "observer.ingress.interface.name": "eth0.60",
    }


def test_dora_exchange() -> None:
    """DISCOVER, OFFER, REQUEST (with server id), ACK: one action each, same client."""
    lines = [
        "<30>Mar 14 10:30:00 dhcp1 dhcpd[1021]: DHCPDISCOVER from 00:0c:29:4a:1b:2c via eth1",
        "<30>Mar 14 10:30:00 dhcp1 dhcpd[1021]: DHCPOFFER on 192.168.10.57 to 00:0c:29:4a:1b:2c "
        "(laptop-ayse) via eth1",
        "<30>Mar 14 10:30:01 dhcp1 dhcpd[1021]: DHCPREQUEST for 192.168.10.57 (192.168.10.1) from "
        "00:0c:29:4a:1b:2c (laptop-ayse) via eth1",
        "<30>Mar 14 10:30:01 dhcp1 dhcpd[1021]: DHCPACK on 192.168.10.57 to 00:0c:29:4a:1b:2c "
        "(laptop-ayse) via eth1",
    ]
    client = {
        "event.dataset": "dhcpd.lease",
        "client.mac": "00:0c:29:4a:1b:2c",
        "observer.ingress.interface.name": "eth1",
    }
    offered = {**client, "client.ip": "192.168.10.57", "host.hostname": "laptop-ayse"}
    assert [event_of(NAME, line) for line in lines] == [
        {**dhcp1(2024, 3, 14, 10, 30), **client, "event.action": "dhcp-discover"},
        {**dhcp1(2024, 3, 14, 10, 30), **offered, "event.action": "dhcp-offer"},
        {
            **dhcp1(2024, 3, 14, 10, 30, 1),
            **offered,
            "event.action": "dhcp-request",
            "server.ip": "192.168.10.1",
        },
        {**dhcp1(2024, 3, 14, 10, 30, 1), **offered, "event.action": DHCP_ASSIGN},
    ]


def test_relayed_request_and_ack_name_the_relay_not_an_interface() -> None:
    """ "via 10.20.30.1" is the relay agent (giaddr): dhcpd.relay.ip, no interface."""
    lines = [
        "<30>Mar 14 11:02:13 dhcp1 dhcpd[1021]: DHCPREQUEST for 10.20.30.44 from "
        "3c:22:fb:01:02:03 (iPhone) via 10.20.30.1",
        "<30>Mar 14 11:02:13 dhcp1 dhcpd[1021]: DHCPACK on 10.20.30.44 to 3c:22:fb:01:02:03 "
        "(iPhone) via 10.20.30.1",
    ]
    relayed = {
        **dhcp1(2024, 3, 14, 11, 2, 13),
        "event.dataset": "dhcpd.lease",
        "client.ip": "10.20.30.44",
        "client.mac": "3c:22:fb:01:02:03",
        "host.hostname": "iPhone",
        "dhcpd.relay.ip": "10.20.30.1",
    }
    assert [event_of(NAME, line) for line in lines] == [
        {**relayed, "event.action": "dhcp-request"},
        {**relayed, "event.action": DHCP_ASSIGN},
    ]


def test_release_found_and_not_found() -> None:
    """DHCPRELEASE is dhcp-release; "(found)" / "(not found)" is the reason."""
    found = (
        "<30>Mar 14 12:00:00 dhcp1 dhcpd[1021]: DHCPRELEASE of 192.168.10.57 from "
        "00:0c:29:4a:1b:2c (laptop-ayse) via eth1 (found)"
    )
    not_found = (
        "<30>Mar 14 12:00:05 dhcp1 dhcpd[1021]: DHCPRELEASE of 192.168.10.99 from "
        "00:0c:29:4a:1b:2d via eth1 (not found)"
    )
    assert event_of(NAME, found) == {
        **dhcp1(2024, 3, 14, 12),
        "event.dataset": "dhcpd.lease",
        "event.action": DHCP_RELEASE,
        "event.reason": "found",
        "client.ip": "192.168.10.57",
        "client.mac": "00:0c:29:4a:1b:2c",
        "host.hostname": "laptop-ayse",
        "observer.ingress.interface.name": "eth1",
    }
    assert event_of(NAME, not_found) == {
        **dhcp1(2024, 3, 14, 12, 0, 5),
        "event.dataset": "dhcpd.lease",
        "event.action": DHCP_RELEASE,
        "event.reason": "not found",
        "client.ip": "192.168.10.99",
        "client.mac": "00:0c:29:4a:1b:2d",
        "observer.ingress.interface.name": "eth1",
    }


def test_wrong_network_request_and_nak() -> None:
    """A refused REQUEST keeps dhcpd's reason; the DHCPNAK that follows is dhcp-nak."""
    request = (
        "<30>Mar 14 12:01:00 dhcp1 dhcpd[1021]: DHCPREQUEST for 172.16.5.20 (172.16.5.1) from "
        "00:0c:29:4a:1b:2e via eth1: wrong network."
    )
    nak = (
        "<30>Mar 14 12:01:00 dhcp1 dhcpd[1021]: DHCPNAK on 172.16.5.20 to 00:0c:29:4a:1b:2e "
        "via eth1"
    )
    refused = {
        **dhcp1(2024, 3, 14, 12, 1),
        "event.dataset": "dhcpd.lease",
        "client.ip": "172.16.5.20",
        "client.mac": "00:0c:29:4a:1b:2e",
        "observer.ingress.interface.name": "eth1",
    }
    assert event_of(NAME, request) == {
        **refused,
        "event.action": "dhcp-request",
        "event.reason": "wrong network.",
        "server.ip": "172.16.5.1",
    }
    assert event_of(NAME, nak) == {**refused, "event.action": "dhcp-nak"}


def test_discover_without_free_leases() -> None:
    """The error after "via eth1:" is the reason, the interface stays eth1."""
    line = (
        "<27>Mar 14 12:02:00 dhcp1 dhcpd[1021]: DHCPDISCOVER from 00:0c:29:4a:1b:2f via eth1: "
        "network 192.168.10.0/24: no free leases"
    )
    assert event_of(NAME, line) == {
        **dhcp1(2024, 3, 14, 12, 2, severity=3),
        "event.dataset": "dhcpd.lease",
        "event.action": "dhcp-discover",
        "event.reason": "network 192.168.10.0/24: no free leases",
        "client.mac": "00:0c:29:4a:1b:2f",
        "observer.ingress.interface.name": "eth1",
    }


def test_decline() -> None:
    """DHCPDECLINE of an address the client found in use: dhcp-decline, outcome as reason."""
    line = (
        "<30>Mar 14 12:03:00 dhcp1 dhcpd[1021]: DHCPDECLINE of 192.168.10.60 from "
        "00:0c:29:4a:1b:30 (printer) via eth1: abandoned"
    )
    assert event_of(NAME, line) == {
        **dhcp1(2024, 3, 14, 12, 3),
        "event.dataset": "dhcpd.lease",
        "event.action": "dhcp-decline",
        "event.reason": "abandoned",
        "client.ip": "192.168.10.60",
        "client.mac": "00:0c:29:4a:1b:30",
        "host.hostname": "printer",
        "observer.ingress.interface.name": "eth1",
    }


def test_inform_and_its_ack_are_not_a_lease() -> None:
    """DHCPINFORM gives only the client's own address; "DHCPACK to" answers it, no lease."""
    inform = "<30>Mar 14 12:04:00 dhcp1 dhcpd[1021]: DHCPINFORM from 192.168.10.5 via eth1"
    ack = (
        "<30>Mar 14 12:04:00 dhcp1 dhcpd[1021]: DHCPACK to 192.168.10.5 (00:0c:29:4a:1b:31) via "
        "eth1"
    )
    answered = {
        **dhcp1(2024, 3, 14, 12, 4),
        "event.dataset": "dhcpd.lease",
        "client.ip": "192.168.10.5",
        "observer.ingress.interface.name": "eth1",
    }
    assert event_of(NAME, inform) == {**answered, "event.action": "dhcp-inform"}
    assert event_of(NAME, ack) == {
        **answered,
        "event.action": "dhcp-inform-ack",
        "client.mac": "00:0c:29:4a:1b:31",
    }


def test_unpadded_hardware_address_and_interface_alias() -> None:
    """dhcpd 3 prints "0:c:29:a:b:c"; an alias "eth0:1" keeps its colon."""
    line = "<30>Mar 14 12:05:00 dhcp1 dhcpd: DHCPACK on 192.168.20.15 to 0:c:29:a:b:c via eth0:1"
    assert event_of(NAME, line) == {
        **dhcp1(2024, 3, 14, 12, 5),
        "event.dataset": "dhcpd.lease",
        "event.action": DHCP_ASSIGN,
        "client.ip": "192.168.20.15",
        "client.mac": "00:0c:29:0a:0b:0c",
        "observer.ingress.interface.name": "eth0:1",
    }


def test_packet_from_unknown_network_segment() -> None:
    """dhcpd's generic "<type> from <hw> via <if>: <error>" form still gives mac and reason."""
    line = (
        "<30>Mar 14 12:06:00 dhcp1 dhcpd[1021]: DHCPRELEASE from 00:0c:29:4a:1b:32 via eth3: "
        "unknown network segment"
    )
    assert event_of(NAME, line) == {
        **dhcp1(2024, 3, 14, 12, 6),
        "event.dataset": "dhcpd.lease",
        "event.action": DHCP_RELEASE,
        "event.reason": "unknown network segment",
        "client.mac": "00:0c:29:4a:1b:32",
        "observer.ingress.interface.name": "eth3",
    }


def test_other_dhcpd_lines_are_known_but_carry_no_lease() -> None:
    """Duplicate-uid warnings and lease-file chatter: dhcpd.log, no client fields."""
    lines = [
        "<30>Mar 14 12:07:00 dhcp1 dhcpd[1021]: uid lease 192.168.10.70 for client "
        "00:0c:29:4a:1b:33 is duplicate on 192.168.10.0/24",
        "<30>Mar 14 12:08:00 dhcp1 dhcpd[1021]: Wrote 0 deleted host decls to leases file.",
    ]
    assert [event_of(NAME, line) for line in lines] == [
        {**dhcp1(2024, 3, 14, 12, 7), "event.dataset": "dhcpd.log"},
        {**dhcp1(2024, 3, 14, 12, 8), "event.dataset": "dhcpd.log"},
    ]


def test_bare_offer_with_unprintable_host_name() -> None:
    """A bare message parses too; dhcpd's "Hostname Unsuitable for Printing" is no name."""
    line = (
        "DHCPOFFER on 10.0.0.150 to aa:bb:cc:dd:ee:ff (Hostname Unsuitable for Printing) via vlan20"
    )
    assert event_of(NAME, line) == {
        "@timestamp": RECEIVED,
        "event.dataset": "dhcpd.lease",
        "event.action": "dhcp-offer",
        "client.ip": "10.0.0.150",
        "client.mac": "aa:bb:cc:dd:ee:ff",
        "observer.ingress.interface.name": "vlan20",
    }


def test_client_without_hardware_address() -> None:
    """ "<no identifier>" is not a MAC: the event has no client.mac."""
    fields = DhcpdParser().parse(
        Syslog(message="DHCPDISCOVER from <no identifier> via eth1", appname="dhcpd")
    )
    assert fields == {
        "event.dataset": "dhcpd.lease",
        "event.action": "dhcp-discover",
        "observer.ingress.interface.name": "eth1",
    }


OTHER_FORMATS = [
    "Jun 22 21:40:16 192.168.65.1 dhcp,info dhcp_lan assigned 192.168.65.202 to E8:6F:38:88:92:29",
    "11:42:32 dhcp,info defconf assigned 192.168.88.37 for B0:E4:5C:27:EF:F2 Samsung",
    "<30>Mar 14 10:00:00 gw dnsmasq-dhcp[811]: DHCPACK(eth0) 192.168.1.50 aa:bb:cc:dd:ee:ff laptop",
    "<30>Mar 14 10:00:00 gw kea-dhcp4[900]: INFO  [kea-dhcp4.leases/900.1] DHCP4_LEASE_ALLOC "
    "[hwtype=1 aa:bb:cc:dd:ee:ff], cid=[no info], tid=0x1: lease 192.0.2.5 has been allocated",
    "<30>Mar 14 10:00:00 gw dhclient[512]: DHCPACK of 192.168.1.50 from 192.168.1.1",
    'date=2018-12-27 time=11:07:55 logid="0000000013" type="traffic" srcip=10.1.100.11',
    "Apr 29 2013 12:59:50: %ASA-6-305011: Built dynamic TCP translation from "
    "inside:192.168.3.42/4954 to outside:192.168.0.130/10879",
]


def test_other_formats_are_not_claimed() -> None:
    """MikroTik, dnsmasq, Kea, dhclient and other vendors' lines are left to other parsers."""
    parser = DhcpdParser()
    for line in OTHER_FORMATS:
        assert parser.parse(read_syslog(line, ISTANBUL, RECEIVED)) is None, line


def test_client_side_lines_are_not_leases() -> None:
    """dhclient's own "DHCPACK of <ip> from <server>" and friends are not claimed."""
    parser = DhcpdParser()
    for message in (
        "DHCPACK of 192.168.1.50 from 192.168.1.1",
        "DHCPREQUEST of 192.168.1.50 on eth0 to 255.255.255.255 port 67",
        "DHCPDISCOVER on eth0 to 255.255.255.255 port 67 interval 8",
        "DHCPOFFER of 192.168.1.50 from 192.168.1.1",
    ):
        assert parser.parse(Syslog(message=message, appname="dhclient")) is None, message


def test_damaged_lease_line_from_dhcpd_is_chatter() -> None:
    """A DHCP line from dhcpd that fits no grammar gives no lease action."""
    fields = DhcpdParser().parse(Syslog(message="DHCPACK on", appname="dhcpd"))
    assert fields == {"event.dataset": "dhcpd.log"}


PROPERTY = settings(max_examples=400, deadline=None)


@PROPERTY
# Long digit runs (int() refuses more than 4300 digits) must not raise either.
@example("DHCPACK on " + "9" * 5000 + " to 0:0:0:0:0:0 via eth0", "dhcpd")
@given(st.one_of(st.text(), mutations(messages(NAME))), st.sampled_from([None, "dhcpd"]))
def test_property_never_raises(message: str, appname: str | None) -> None:
    """Arbitrary text and damaged sample messages return fields or None, never raise."""
    fields = DhcpdParser().parse(Syslog(message=message, appname=appname))
    assert fields is None or fields["event.dataset"] in ("dhcpd.lease", "dhcpd.log")
