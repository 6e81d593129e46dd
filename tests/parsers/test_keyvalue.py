"""Generic key=value: each sample line field by field, prose not claimed, no raising."""

from __future__ import annotations

import datetime as dt

from hypothesis import example, given, settings
from hypothesis import strategies as st
from sample_lines import ISTANBUL, RECEIVED, at, event_of, messages, mutations, samples

from logmaster.parsers import parse, read_syslog
from logmaster.parsers.base import Syslog
from logmaster.parsers.keyvalue import KeyValueParser, pairs

NAME = "keyvalue"


def test_every_sample_line_is_keyvalue() -> None:
    """Every line of the samples file is understood, and by this parser."""
    for line in samples(NAME):
        event, understood = parse(line, zone=ISTANBUL, received=RECEIVED)
        assert understood, line
        assert event["event.dataset"] == "keyvalue", line


def test_sophos_utm_packet_filter_quoted_values() -> None:
    """Sophos UTM: quoted values, srcip/dstip/srcport/dstport/srcmac/dstmac, initf, fwrule."""
    line = (
        '<30>2015:06:08-14:35:43 gw-1 ulogd[4736]: id="2001" severity="info" sys="SecureNet" '
        'sub="packetfilter" name="Packet dropped" action="drop" fwrule="60001" initf="eth1" '
        'srcmac="00:1a:8c:f0:3c:2e" dstmac="00:1a:8c:f0:f6:50" srcip="10.10.10.2" '
        'dstip="10.10.10.1" proto="17" length="72" tos="0x00" prec="0x00" ttl="128" '
        'srcport="137" dstport="137"'
    )
    assert event_of(NAME, line) == {
        "@timestamp": RECEIVED,
        "log.syslog.severity.code": 6,
        "event.dataset": "keyvalue",
        "event.action": "drop",
        "rule.name": "60001",
        "observer.ingress.interface.name": "eth1",
        "network.transport": "udp",
        "source.ip": "10.10.10.2",
        "source.port": 137,
        "source.mac": "00:1a:8c:f0:3c:2e",
        "destination.ip": "10.10.10.1",
        "destination.port": 137,
        "destination.mac": "00:1a:8c:f0:f6:50",
        "keyvalue.id": "2001",
        "keyvalue.severity": "info",
        "keyvalue.sys": "SecureNet",
        "keyvalue.sub": "packetfilter",
        "keyvalue.name": "Packet dropped",
        "keyvalue.action": "drop",
        "keyvalue.fwrule": "60001",
        "keyvalue.initf": "eth1",
        "keyvalue.srcmac": "00:1a:8c:f0:3c:2e",
        "keyvalue.dstmac": "00:1a:8c:f0:f6:50",
        "keyvalue.srcip": "10.10.10.2",
        "keyvalue.dstip": "10.10.10.1",
        "keyvalue.proto": "17",
        "keyvalue.length": "72",
        "keyvalue.tos": "0x00",
        "keyvalue.prec": "0x00",
        "keyvalue.ttl": "128",
        "keyvalue.srcport": "137",
        "keyvalue.dstport": "137",
    }


def test_sophos_xg_source_nat_and_empty_values() -> None:
    """Sophos XG: tran_src_ip is source.nat.ip; port 0 and empty values mean "none"."""
    line = (
        '<30>device="SFW" date=2024-03-14 time=10:50:00 timezone="+03" device_name="XG125" '
        'device_id=C22XXXXXXX log_id=010101600001 log_type="Firewall" log_component="Firewall '
        'Rule" log_subtype="Allowed" status="Allow" priority=Information duration=0 fw_rule_id=5 '
        'user_name="ayse" in_interface="Port1" out_interface="Port2" src_mac=00:1a:2b:3c:4d:5e '
        "src_ip=172.16.16.10 src_country_code= dst_ip=142.250.187.110 dst_country_code=USA "
        'protocol="TCP" src_port=51234 dst_port=443 tran_src_ip=203.0.113.7 tran_src_port=0 '
        'tran_dst_ip= tran_dst_port=0 connevent="Start" connid="1234567"'
    )
    assert event_of(NAME, line) == {
        "@timestamp": RECEIVED,
        "log.syslog.severity.code": 6,
        "event.dataset": "keyvalue",
        "user.name": "ayse",
        "observer.ingress.interface.name": "Port1",
        "observer.egress.interface.name": "Port2",
        "network.transport": "tcp",
        "source.ip": "172.16.16.10",
        "source.port": 51234,
        "source.mac": "00:1a:2b:3c:4d:5e",
        "source.nat.ip": "203.0.113.7",
        "destination.ip": "142.250.187.110",
        "destination.port": 443,
        "keyvalue.device": "SFW",
        "keyvalue.date": "2024-03-14",
        "keyvalue.time": "10:50:00",
        "keyvalue.timezone": "+03",
        "keyvalue.device_name": "XG125",
        "keyvalue.device_id": "C22XXXXXXX",
        "keyvalue.log_id": "010101600001",
        "keyvalue.log_type": "Firewall",
        "keyvalue.log_component": "Firewall Rule",
        "keyvalue.log_subtype": "Allowed",
        "keyvalue.status": "Allow",
        "keyvalue.priority": "Information",
        "keyvalue.duration": "0",
        "keyvalue.fw_rule_id": "5",
        "keyvalue.user_name": "ayse",
        "keyvalue.in_interface": "Port1",
        "keyvalue.out_interface": "Port2",
        "keyvalue.src_mac": "00:1a:2b:3c:4d:5e",
        "keyvalue.src_ip": "172.16.16.10",
        "keyvalue.dst_ip": "142.250.187.110",
        "keyvalue.dst_country_code": "USA",
        "keyvalue.protocol": "TCP",
        "keyvalue.src_port": "51234",
        "keyvalue.dst_port": "443",
        "keyvalue.tran_src_ip": "203.0.113.7",
        "keyvalue.tran_src_port": "0",
        "keyvalue.tran_dst_port": "0",
        "keyvalue.connevent": "Start",
        "keyvalue.connid": "1234567",
    }


def test_sonicwall_address_port_interface_values() -> None:
    """SonicWall: "ip:port:iface" values, proto "tcp/https", natSrc; natDst equal to dst dropped."""
    line = (
        '<134>id=firewall sn=0017C5A1B2C3 time="2024-03-14 07:50:00 UTC" fw=203.0.113.1 pri=6 '
        'c=1024 m=537 msg="Connection Closed" app=49177 n=123456 src=192.168.1.50:51515:X0 '
        "dst=142.250.74.46:443:X1 srcMac=00:11:22:33:44:55 dstMac=66:77:88:99:aa:bb "
        "proto=tcp/https sent=1416 rcvd=5832 natSrc=203.0.113.1:40001 natDst=142.250.74.46:443 "
        'rule="5 (LAN->WAN)"'
    )
    assert event_of(NAME, line) == {
        "@timestamp": RECEIVED,
        "log.syslog.severity.code": 6,
        "event.dataset": "keyvalue",
        "rule.name": "5 (LAN->WAN)",
        "network.transport": "tcp",
        "network.protocol": "https",
        "source.ip": "192.168.1.50",
        "source.port": 51515,
        "source.mac": "00:11:22:33:44:55",
        "source.nat.ip": "203.0.113.1",
        "source.nat.port": 40001,
        "destination.ip": "142.250.74.46",
        "destination.port": 443,
        "destination.mac": "66:77:88:99:aa:bb",
        "observer.ingress.interface.name": "X0",
        "observer.egress.interface.name": "X1",
        "keyvalue.id": "firewall",
        "keyvalue.sn": "0017C5A1B2C3",
        "keyvalue.time": "2024-03-14 07:50:00 UTC",
        "keyvalue.fw": "203.0.113.1",
        "keyvalue.pri": "6",
        "keyvalue.c": "1024",
        "keyvalue.m": "537",
        "keyvalue.msg": "Connection Closed",
        "keyvalue.app": "49177",
        "keyvalue.n": "123456",
        "keyvalue.src": "192.168.1.50:51515:X0",
        "keyvalue.dst": "142.250.74.46:443:X1",
        "keyvalue.srcmac": "00:11:22:33:44:55",
        "keyvalue.dstmac": "66:77:88:99:aa:bb",
        "keyvalue.proto": "tcp/https",
        "keyvalue.sent": "1416",
        "keyvalue.rcvd": "5832",
        "keyvalue.natsrc": "203.0.113.1:40001",
        "keyvalue.natdst": "142.250.74.46:443",
        "keyvalue.rule": "5 (LAN->WAN)",
    }


def test_zyxel_service_name_in_proto_is_the_application() -> None:
    """Zyxel: proto="dns" is the application, protoID=17 the transport; quoted ip:port."""
    line = (
        'src="192.168.1.33:52314" dst="8.8.8.8:53" msg="Match default rule, DROP" '
        'note="ACCESS BLOCK" user="unknown" devID="bc99112233aa" cat="Security Policy Control" '
        'class="Access Control" ob="0" ob_mac="000000000000" dir="LAN1:WAN" protoID=17 '
        'proto="dns"'
    )
    assert event_of(NAME, line) == {
        "@timestamp": RECEIVED,
        "event.dataset": "keyvalue",
        "user.name": "unknown",
        "network.transport": "udp",
        "network.protocol": "dns",
        "source.ip": "192.168.1.33",
        "source.port": 52314,
        "destination.ip": "8.8.8.8",
        "destination.port": 53,
        "keyvalue.src": "192.168.1.33:52314",
        "keyvalue.dst": "8.8.8.8:53",
        "keyvalue.msg": "Match default rule, DROP",
        "keyvalue.note": "ACCESS BLOCK",
        "keyvalue.user": "unknown",
        "keyvalue.devid": "bc99112233aa",
        "keyvalue.cat": "Security Policy Control",
        "keyvalue.class": "Access Control",
        "keyvalue.ob": "0",
        "keyvalue.ob_mac": "000000000000",
        "keyvalue.dir": "LAN1:WAN",
        "keyvalue.protoid": "17",
        "keyvalue.proto": "dns",
    }


def test_words_before_the_pairs() -> None:
    """A short sentence before the pairs does not stop them being read."""
    line = (
        "<38>Mar 14 11:00:00 vpn01 authd[812]: Accepted connection: src=198.51.100.23 "
        "sport=50212 user=ayse action=allow"
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 3, 14, 11),
        "host.name": "vpn01",
        "log.syslog.severity.code": 6,
        "event.dataset": "keyvalue",
        "event.action": "allow",
        "user.name": "ayse",
        "source.ip": "198.51.100.23",
        "source.port": 50212,
        "keyvalue.src": "198.51.100.23",
        "keyvalue.sport": "50212",
        "keyvalue.user": "ayse",
        "keyvalue.action": "allow",
    }


def test_single_quotes_and_comma_separators() -> None:
    """'single quoted' values separated by ", "; a bare ip and mac describe the subject."""
    line = (
        "<14>Mar 14 11:01:00 radius1 radiusd: Login OK: user='ayse.yilmaz', "
        "mac='B0-E4-5C-27-EF-F2', ip='10.10.0.44', nas='hotspot-1'"
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 3, 14, 11, 1),
        "host.name": "radius1",
        "log.syslog.severity.code": 6,
        "event.dataset": "keyvalue",
        "user.name": "ayse.yilmaz",
        "source.ip": "10.10.0.44",
        "source.mac": "b0:e4:5c:27:ef:f2",
        "keyvalue.user": "ayse.yilmaz",
        "keyvalue.mac": "B0-E4-5C-27-EF-F2",
        "keyvalue.ip": "10.10.0.44",
        "keyvalue.nas": "hotspot-1",
    }


def test_rfc5424_message_with_escaped_quotes_and_mixed_case_keys() -> None:
    """Backslash-escaped quotes inside a value; keys are lower-cased under keyvalue.*."""
    line = (
        '<134>1 2024-03-14T11:02:00+03:00 ap-07 hostapd - - - event="assoc" '
        'sta_mac=aa:bb:cc:11:22:33 ssid="Misafir Wi-Fi" Signal=-61 '
        'reason="station \\"joined\\" the network"'
    )
    assert event_of(NAME, line) == {
        "@timestamp": at(2024, 3, 14, 11, 2, tz=dt.timezone(dt.timedelta(hours=3))),
        "host.name": "ap-07",
        "log.syslog.severity.code": 6,
        "event.dataset": "keyvalue",
        "keyvalue.event": "assoc",
        "keyvalue.sta_mac": "aa:bb:cc:11:22:33",
        "keyvalue.ssid": "Misafir Wi-Fi",
        "keyvalue.signal": "-61",
        "keyvalue.reason": 'station "joined" the network',
    }


def test_pairs_need_a_key_at_a_word_start() -> None:
    """URL query strings are not pairs; the first of a repeated key is kept by the parser."""
    assert pairs("GET /a?x=1&y=2 k=\"v w\" n=1, m='q'") == [("k", "v w"), ("n", "1"), ("m", "q")]


PROSE = [
    "<13>Mar 14 11:02:00 host app: retrying with timeout=30 after the upstream server closed",
    "<13>Mar 14 11:02:00 host app: User changed setting retries=5 and timeout=30 while the "
    "backup job was running on the secondary storage node",
    "<13>Mar 14 11:02:00 host app: a=1 a=2",
    '10.0.0.1 - - [14/Mar/2024:11:02:00 +0300] "GET /index.php?a=1&b=2 HTTP/1.1" 200 512',
    "Apr 29 2013 12:59:50: %ASA-6-305011: Built dynamic TCP translation from "
    "inside:192.168.3.42/4954 to outside:192.168.0.130/10879",
    "<190>Jul  4 09:39:41 dhcpd[64305]: DHCPACK on 10.150.60.56 to 4c:55:41:a0:fa:99 via eth0",
    "<134>Jul  3 19:10:30 filterlog[72237]: 146,,,1535324496,igb1.12,match,block,in,4,0x0,,63",
    "firewall,info forward: in:ether5-LAN out:ether1, src-mac 00:19:e7:90:d4:45, proto TCP "
    "(SYN), 10.0.10.76:61127->40.127.110.237:443, len 52",
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 "
    'iut="3" eventSource="Application" eventID="1011"] An application event log entry...',
]


def test_prose_and_other_formats_are_not_claimed() -> None:
    """Prose with one or two a=b, a single repeated key, access logs and other vendors."""
    parser = KeyValueParser()
    for line in PROSE:
        assert parser.parse(read_syslog(line, ISTANBUL, RECEIVED)) is None, line


PROPERTY = settings(max_examples=400, deadline=None)


@PROPERTY
# Long digit runs (int() refuses more than 4300 digits) must not raise either.
@example("src=" + "9" * 5000 + " sport=" + "9" * 5000 + " proto=" + "9" * 5000, None)
@given(st.one_of(st.text(), mutations(messages(NAME))), st.sampled_from([None, "app"]))
def test_property_never_raises(message: str, appname: str | None) -> None:
    """Arbitrary text and damaged sample messages return fields or None, never raise."""
    fields = KeyValueParser().parse(Syslog(message=message, appname=appname))
    assert fields is None or fields["event.dataset"] == "keyvalue"
