"""ArcSight CEF: each sample line field by field, escapes, times, other formats, no raising."""

from __future__ import annotations

import datetime as dt

from hypothesis import example, given, settings
from hypothesis import strategies as st
from sample_lines import ISTANBUL, RECEIVED, at, event_of, messages, mutations, samples

from logmaster.parsers import parse, read_syslog
from logmaster.parsers.base import Syslog
from logmaster.parsers.cef import CefParser, cef_time, extension

NAME = "cef"
UTC = dt.UTC


def cef(line: str) -> dict[str, object]:
    """The event of a CEF sample line."""
    return event_of(NAME, line)


def test_every_sample_line_is_cef() -> None:
    """Every line of the samples file is understood, and by this parser."""
    for line in samples(NAME):
        event, understood = parse(line, zone=ISTANBUL, received=RECEIVED)
        assert understood, line
        assert event["event.dataset"] == "cef.log", line


def test_bare_cef_web_request() -> None:
    """A bare CEF line: header to observer/event fields, standard keys to ECS, all kept raw."""
    line = (
        "CEF:0|Elastic|Vaporware|1.0.0-alpha|18|Web request|low|eventId=3457 requestMethod=POST "
        "slat=38.915 slong=-77.511 proto=TCP sourceServiceName=httpd "
        "requestContext=https://www.google.com src=89.160.20.156 spt=33876 dst=192.168.10.1 "
        "dpt=443 request=https://www.example.com/cart"
    )
    assert cef(line) == {
        "@timestamp": RECEIVED,
        "event.reason": "Web request",
        "event.dataset": "cef.log",
        "cef.version": 0,
        "observer.vendor": "Elastic",
        "observer.product": "Vaporware",
        "observer.version": "1.0.0-alpha",
        "event.code": "18",
        "log.level": "low",
        "http.request.method": "POST",
        "http.request.referrer": "https://www.google.com",
        "network.transport": "tcp",
        "source.ip": "89.160.20.156",
        "source.port": 33876,
        "destination.ip": "192.168.10.1",
        "destination.port": 443,
        "url.original": "https://www.example.com/cart",
        "cef.extensions.eventId": "3457",
        "cef.extensions.requestMethod": "POST",
        "cef.extensions.slat": "38.915",
        "cef.extensions.slong": "-77.511",
        "cef.extensions.proto": "TCP",
        "cef.extensions.sourceServiceName": "httpd",
        "cef.extensions.requestContext": "https://www.google.com",
        "cef.extensions.src": "89.160.20.156",
        "cef.extensions.spt": "33876",
        "cef.extensions.dst": "192.168.10.1",
        "cef.extensions.dpt": "443",
        "cef.extensions.request": "https://www.example.com/cart",
    }


def test_escaped_pipe_in_header_and_bare_pipe_in_extension() -> None:
    """The CEF standard's example: "\\|" in the Name; an unescaped | in a value is kept."""
    line = (
        "Sep 19 08:26:10 host CEF:0|Security|threatmanager|1.0|100|detected a \\| in message|10|"
        "src=10.0.0.1 act=blocked a | dst=1.1.1.1"
    )
    assert cef(line) == {
        "@timestamp": at(2024, 9, 19, 8, 26, 10),
        "host.name": "host",
        "event.reason": "detected a | in message",
        "event.dataset": "cef.log",
        "cef.version": 0,
        "observer.vendor": "Security",
        "observer.product": "threatmanager",
        "observer.version": "1.0",
        "event.code": "100",
        "event.severity": 10,
        "log.level": "very-high",
        "source.ip": "10.0.0.1",
        "destination.ip": "1.1.1.1",
        "event.action": "blocked-a-|",
        "cef.extensions.src": "10.0.0.1",
        "cef.extensions.act": "blocked a |",
        "cef.extensions.dst": "1.1.1.1",
    }


def test_cef_with_space_after_colon_and_escaped_equals() -> None:
    """A space in "CEF: 0" after a BSD header (read as tag "CEF"); "\\=" in a value is "="."""
    line = (
        "<134>Mar 14 10:40:01 sensor1 CEF: 0|Security|threatmanager|1.0|100|detected a = in "
        "message|10|src=10.0.0.1 spt=1232 act=blocked a \\= dst=1.1.1.1"
    )
    assert cef(line) == {
        "@timestamp": at(2024, 3, 14, 10, 40, 1),
        "host.name": "sensor1",
        "log.syslog.severity.code": 6,
        "event.reason": "detected a = in message",
        "event.dataset": "cef.log",
        "cef.version": 0,
        "observer.vendor": "Security",
        "observer.product": "threatmanager",
        "observer.version": "1.0",
        "event.code": "100",
        "event.severity": 10,
        "log.level": "very-high",
        "source.ip": "10.0.0.1",
        "source.port": 1232,
        "destination.ip": "1.1.1.1",
        "event.action": "blocked-a-=",
        "cef.extensions.src": "10.0.0.1",
        "cef.extensions.spt": "1232",
        "cef.extensions.act": "blocked a =",
        "cef.extensions.dst": "1.1.1.1",
    }


def test_forcepoint_in_rfc5424_with_spaces_in_values_and_labelled_custom_string() -> None:
    """Values with spaces run to the next key; rt without zone takes the header's (UTC)."""
    line = (
        "<134>1 2024-03-14T07:40:02.000Z ngfw01 FORCEPOINT - - - CEF:0|FORCEPOINT|Firewall|6.6.1|"
        "70018|Connection_Allowed|0|deviceExternalId=Master FW node 1 dvc=10.1.1.40 "
        "dvchost=10.1.1.40 src=10.37.205.252 dst=10.1.1.40 proto=1 deviceOutboundInterface=255 "
        "act=Allow msg=Referred connection: 10.1.1.40 -> 10.37.133.35 frag\\=0x4000 TCP "
        "47413->3020 deviceFacility=Packet Filtering rt=Jan 17 2020 08:52:09 app=Dest. "
        "Unreachable (Host Unreachable) cs1Label=RuleID cs1=2097157.1"
    )
    reason = "Referred connection: 10.1.1.40 -> 10.37.133.35 frag=0x4000 TCP 47413->3020"
    assert cef(line) == {
        "@timestamp": at(2020, 1, 17, 8, 52, 9, tz=UTC),
        "host.name": "ngfw01",
        "log.syslog.severity.code": 6,
        "event.reason": "Connection_Allowed",
        "event.dataset": "cef.log",
        "cef.version": 0,
        "observer.vendor": "FORCEPOINT",
        "observer.product": "Firewall",
        "observer.version": "6.6.1",
        "event.code": "70018",
        "event.severity": 0,
        "log.level": "low",
        "observer.ip": "10.1.1.40",
        "observer.hostname": "10.1.1.40",
        "source.ip": "10.37.205.252",
        "destination.ip": "10.1.1.40",
        "network.transport": "icmp",
        "network.protocol": "dest. unreachable (host unreachable)",
        "observer.egress.interface.name": "255",
        "event.action": "allow",
        "cef.custom.ruleid": "2097157.1",
        "cef.extensions.deviceExternalId": "Master FW node 1",
        "cef.extensions.dvc": "10.1.1.40",
        "cef.extensions.dvchost": "10.1.1.40",
        "cef.extensions.src": "10.37.205.252",
        "cef.extensions.dst": "10.1.1.40",
        "cef.extensions.proto": "1",
        "cef.extensions.deviceOutboundInterface": "255",
        "cef.extensions.act": "Allow",
        "cef.extensions.msg": reason,
        "cef.extensions.deviceFacility": "Packet Filtering",
        "cef.extensions.rt": "Jan 17 2020 08:52:09",
        "cef.extensions.app": "Dest. Unreachable (Host Unreachable)",
        "cef.extensions.cs1Label": "RuleID",
        "cef.extensions.cs1": "2097157.1",
    }


def test_check_point_nat_with_epoch_milliseconds() -> None:
    """Translated addresses to source.nat; Check Point's 0.0.0.0/0 "no translation" dropped."""
    line = (
        "CEF:0|Check Point|VPN-1 & FireWall-1|Check Point|Log|https|Unknown|act=Accept "
        "destinationTranslatedAddress=0.0.0.0 destinationTranslatedPort=0 deviceDirection=0 "
        "rt=1543270652000 sourceTranslatedAddress=192.168.103.254 sourceTranslatedPort=35398 "
        "spt=49363 dpt=443 cs2Label=Rule Name layer_name=Network ifname=eth0 "
        "originsicname=CN\\=R80,O\\=R80_M..6u6bdo dst=52.173.84.157 proto=6 src=192.168.101.100 "
        "cs5Label=Matched Category cs5=Business / Economy"
    )
    assert cef(line) == {
        "@timestamp": at(2018, 11, 26, 22, 17, 32, tz=UTC),
        "event.reason": "https",
        "event.dataset": "cef.log",
        "cef.version": 0,
        "observer.vendor": "Check Point",
        "observer.product": "VPN-1 & FireWall-1",
        "observer.version": "Check Point",
        "event.code": "Log",
        "log.level": "unknown",
        "event.action": "accept",
        "source.ip": "192.168.101.100",
        "source.port": 49363,
        "source.nat.ip": "192.168.103.254",
        "source.nat.port": 35398,
        "destination.ip": "52.173.84.157",
        "destination.port": 443,
        "network.transport": "tcp",
        "cef.custom.matched_category": "Business / Economy",
        "cef.extensions.act": "Accept",
        "cef.extensions.destinationTranslatedAddress": "0.0.0.0",
        "cef.extensions.destinationTranslatedPort": "0",
        "cef.extensions.deviceDirection": "0",
        "cef.extensions.rt": "1543270652000",
        "cef.extensions.sourceTranslatedAddress": "192.168.103.254",
        "cef.extensions.sourceTranslatedPort": "35398",
        "cef.extensions.spt": "49363",
        "cef.extensions.dpt": "443",
        "cef.extensions.cs2Label": "Rule Name",
        "cef.extensions.layer_name": "Network",
        "cef.extensions.ifname": "eth0",
        "cef.extensions.originsicname": "CN=R80,O=R80_M..6u6bdo",
        "cef.extensions.dst": "52.173.84.157",
        "cef.extensions.proto": "6",
        "cef.extensions.src": "192.168.101.100",
        "cef.extensions.cs5Label": "Matched Category",
        "cef.extensions.cs5": "Business / Economy",
    }


def test_hotspot_login_in_device_local_time() -> None:
    """rt without zone after a BSD header is device-local time; suser is also user.name."""
    line = (
        "<14>Mar 14 10:41:00 hotspot-gw CEF:0|Acme|Captive Portal|2.3|login-ok|User logged in|3|"
        "rt=Mar 14 2024 10:40:59 suser=ayse.yilmaz src=172.16.0.15 smac=B0-E4-5C-27-EF-F2 "
        "deviceInboundInterface=wlan0 cs1Label=SSID cs1=Misafir Wi-Fi cn1Label=Session Timeout "
        "cn1=3600"
    )
    assert cef(line) == {
        "@timestamp": at(2024, 3, 14, 10, 40, 59),
        "host.name": "hotspot-gw",
        "log.syslog.severity.code": 6,
        "event.reason": "User logged in",
        "event.dataset": "cef.log",
        "cef.version": 0,
        "observer.vendor": "Acme",
        "observer.product": "Captive Portal",
        "observer.version": "2.3",
        "event.code": "login-ok",
        "event.severity": 3,
        "log.level": "low",
        "source.user.name": "ayse.yilmaz",
        "user.name": "ayse.yilmaz",
        "source.ip": "172.16.0.15",
        "source.mac": "b0:e4:5c:27:ef:f2",
        "observer.ingress.interface.name": "wlan0",
        "cef.custom.ssid": "Misafir Wi-Fi",
        "cef.custom.session_timeout": "3600",
        "cef.extensions.rt": "Mar 14 2024 10:40:59",
        "cef.extensions.suser": "ayse.yilmaz",
        "cef.extensions.src": "172.16.0.15",
        "cef.extensions.smac": "B0-E4-5C-27-EF-F2",
        "cef.extensions.deviceInboundInterface": "wlan0",
        "cef.extensions.cs1Label": "SSID",
        "cef.extensions.cs1": "Misafir Wi-Fi",
        "cef.extensions.cn1Label": "Session Timeout",
        "cef.extensions.cn1": "3600",
    }


def test_nat_start_and_end_with_zones() -> None:
    """start/end with "UTC" and "GMT+03:00" zones and milliseconds; the header time stays."""
    line = (
        "<14>Mar 14 10:42:00 nat-gw CEF:0|Acme|CGNAT|1.0|nat-start|Translation created|Low|"
        "start=Mar 14 2024 07:41:58.250 UTC end=Mar 14 2024 07:45:00 GMT+03:00 src=100.64.1.20 "
        "spt=40123 sourceTranslatedAddress=203.0.113.40 sourceTranslatedPort=1025 "
        "dst=198.51.100.80 dpt=443 proto=TCP deviceOutboundInterface=ge-0/0/1"
    )
    assert cef(line) == {
        "@timestamp": at(2024, 3, 14, 10, 42),
        "host.name": "nat-gw",
        "log.syslog.severity.code": 6,
        "event.reason": "Translation created",
        "event.dataset": "cef.log",
        "cef.version": 0,
        "observer.vendor": "Acme",
        "observer.product": "CGNAT",
        "observer.version": "1.0",
        "event.code": "nat-start",
        "log.level": "low",
        "event.start": at(2024, 3, 14, 7, 41, 58, 250000, tz=UTC),
        "event.end": at(2024, 3, 14, 7, 45, tz=dt.timezone(dt.timedelta(hours=3))),
        "source.ip": "100.64.1.20",
        "source.port": 40123,
        "source.nat.ip": "203.0.113.40",
        "source.nat.port": 1025,
        "destination.ip": "198.51.100.80",
        "destination.port": 443,
        "network.transport": "tcp",
        "observer.egress.interface.name": "ge-0/0/1",
        "cef.extensions.start": "Mar 14 2024 07:41:58.250 UTC",
        "cef.extensions.end": "Mar 14 2024 07:45:00 GMT+03:00",
        "cef.extensions.src": "100.64.1.20",
        "cef.extensions.spt": "40123",
        "cef.extensions.sourceTranslatedAddress": "203.0.113.40",
        "cef.extensions.sourceTranslatedPort": "1025",
        "cef.extensions.dst": "198.51.100.80",
        "cef.extensions.dpt": "443",
        "cef.extensions.proto": "TCP",
        "cef.extensions.deviceOutboundInterface": "ge-0/0/1",
    }


def test_version_1_with_newline_and_backslash_escapes() -> None:
    """CEF:1; "\\n" in a value is a newline and "\\\\" one backslash; device MAC normalised."""
    line = (
        "CEF:1|Trend Micro|Deep Discovery Email Inspector|5.1.0.1110|100139|CTP_DETECTION|8|"
        "rt=Mar 09 2015 17:05:21 GMT+00:00 dvc=10.1.144.199 dvcmac=00:0C:29:6E:CB:F9 "
        "dvchost=localhost request=http://www.example.net/?utm_campaign\\=4-21-2014 act=blocked "
        "msg=Line one\\nLine two\\\\ end suser=user2@example.com duser=user1@example.com"
    )
    assert cef(line) == {
        "@timestamp": at(2015, 3, 9, 17, 5, 21, tz=dt.timezone(dt.timedelta(0))),
        "event.reason": "CTP_DETECTION",
        "event.dataset": "cef.log",
        "cef.version": 1,
        "observer.vendor": "Trend Micro",
        "observer.product": "Deep Discovery Email Inspector",
        "observer.version": "5.1.0.1110",
        "event.code": "100139",
        "event.severity": 8,
        "log.level": "high",
        "observer.ip": "10.1.144.199",
        "observer.mac": "00:0c:29:6e:cb:f9",
        "observer.hostname": "localhost",
        "url.original": "http://www.example.net/?utm_campaign=4-21-2014",
        "event.action": "blocked",
        "source.user.name": "user2@example.com",
        "user.name": "user2@example.com",
        "destination.user.name": "user1@example.com",
        "cef.extensions.rt": "Mar 09 2015 17:05:21 GMT+00:00",
        "cef.extensions.dvc": "10.1.144.199",
        "cef.extensions.dvcmac": "00:0C:29:6E:CB:F9",
        "cef.extensions.dvchost": "localhost",
        "cef.extensions.request": "http://www.example.net/?utm_campaign=4-21-2014",
        "cef.extensions.act": "blocked",
        "cef.extensions.msg": "Line one\nLine two\\ end",
        "cef.extensions.suser": "user2@example.com",
        "cef.extensions.duser": "user1@example.com",
    }


def test_proxy_user_agent_bytes_and_macs() -> None:
    """User agent with spaces and ";", a URL with a space, bytes in/out, both MACs."""
    line = (
        "CEF:0|Acme|Proxy|7.1|allow|Access allowed|Medium|requestClientApplication=Mozilla/5.0 "
        "(Windows NT 10.0; Win64; x64) requestMethod=GET request=https://www.example.org/a b.html "
        "src=10.1.1.7 spt=50123 dst=93.184.216.34 dpt=443 app=HTTPS in=512 out=20480 "
        "smac=00:11:22:33:44:55 dmac=66:77:88:99:aa:bb"
    )
    user_agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
    assert cef(line) == {
        "@timestamp": RECEIVED,
        "event.reason": "Access allowed",
        "event.dataset": "cef.log",
        "cef.version": 0,
        "observer.vendor": "Acme",
        "observer.product": "Proxy",
        "observer.version": "7.1",
        "event.code": "allow",
        "log.level": "medium",
        "user_agent.original": user_agent,
        "http.request.method": "GET",
        "url.original": "https://www.example.org/a b.html",
        "source.ip": "10.1.1.7",
        "source.port": 50123,
        "destination.ip": "93.184.216.34",
        "destination.port": 443,
        "network.protocol": "https",
        "source.bytes": 512,
        "destination.bytes": 20480,
        "source.mac": "00:11:22:33:44:55",
        "destination.mac": "66:77:88:99:aa:bb",
        "cef.extensions.requestClientApplication": user_agent,
        "cef.extensions.requestMethod": "GET",
        "cef.extensions.request": "https://www.example.org/a b.html",
        "cef.extensions.src": "10.1.1.7",
        "cef.extensions.spt": "50123",
        "cef.extensions.dst": "93.184.216.34",
        "cef.extensions.dpt": "443",
        "cef.extensions.app": "HTTPS",
        "cef.extensions.in": "512",
        "cef.extensions.out": "20480",
        "cef.extensions.smac": "00:11:22:33:44:55",
        "cef.extensions.dmac": "66:77:88:99:aa:bb",
    }


def test_header_escapes_and_empty_extension() -> None:
    """Escaped "\\\\" and "\\|" in header fields; a trailing pipe with nothing after it."""
    line = "CEF:0|Vendor\\\\Name|Pipe\\|Product|1.0|sig\\|1|Back\\\\slash \\| pipe|Very-High|"
    assert cef(line) == {
        "@timestamp": RECEIVED,
        "event.reason": "Back\\slash | pipe",
        "event.dataset": "cef.log",
        "cef.version": 0,
        "observer.vendor": "Vendor\\Name",
        "observer.product": "Pipe|Product",
        "observer.version": "1.0",
        "event.code": "sig|1",
        "log.level": "very-high",
    }


def test_no_extension_and_no_final_pipe() -> None:
    """Seven header fields without the pipe before an extension still parse."""
    line = "CEF:0|Acme|NoExtension|1.0|1|No extension at all|2"
    assert cef(line) == {
        "@timestamp": RECEIVED,
        "event.reason": "No extension at all",
        "event.dataset": "cef.log",
        "cef.version": 0,
        "observer.vendor": "Acme",
        "observer.product": "NoExtension",
        "observer.version": "1.0",
        "event.code": "1",
        "event.severity": 2,
        "log.level": "low",
    }


def test_extension_value_ends_at_the_next_key() -> None:
    """Spaces inside values, trailing whitespace dropped, first key wins on repeats."""
    assert extension("a=one two  b=x\\=y c=  d=last   a=again") == {
        "a": "one two",
        "b": "x=y",
        "c": "",
        "d": "last",
    }


def test_times_in_every_documented_form() -> None:
    """Epoch ms (and s), with and without year, fraction and zone; unknown zones refused."""
    header = at(2024, 3, 14, 10, 0)
    assert [
        cef_time(text, header)
        for text in (
            "1710400000000",
            "1710400000",
            "Mar 14 2024 10:00:00.5",
            "Mar 14 10:00:00",
            "Mar 14 2024 07:00:00 GMT",
            "Mar  4 2024 10:00:00 +0100",
            "Mar 14 2024 10:00:00 EDT",
            "Foo 14 2024 10:00:00",
            "Feb 30 2024 10:00:00",
        )
    ] == [
        at(2024, 3, 14, 7, 6, 40, tz=UTC),
        at(2024, 3, 14, 7, 6, 40, tz=UTC),
        at(2024, 3, 14, 10, 0, 0, 500000),
        at(2024, 3, 14, 10, 0),
        at(2024, 3, 14, 7, 0, tz=UTC),
        at(2024, 3, 4, 10, 0, tz=dt.timezone(dt.timedelta(hours=1))),
        None,
        None,
        None,
    ]
    assert cef_time("Mar 14 2024 10:00:00", None) is None  # no header: no zone to assume


OTHER_FORMATS = [
    "LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.0\tdst=172.50.123.1",
    'date=2018-12-27 time=11:07:55 logid="0000000013" type="traffic" msg="CEF:0|a|b|c|d|e|f|"',
    "<13>Mar 14 10:00:00 host app: converting the export to CEF:0 format failed",
    "<13>Mar 14 10:00:00 host app: XCEF:0|a|b|c|d|e|5|src=10.0.0.1",
    "CEF:x|a|b|c|d|e|5|src=10.0.0.1",
    "CEF:0|only|four|fields",
    "Apr 29 2013 12:59:50: %ASA-6-305011: Built dynamic TCP translation from "
    "inside:192.168.3.42/4954 to outside:192.168.0.130/10879",
]


def test_other_formats_are_not_claimed() -> None:
    """LEEF, quoted CEF, prose mentioning CEF and broken headers are not claimed."""
    parser = CefParser()
    for line in OTHER_FORMATS:
        assert parser.parse(read_syslog(line, ISTANBUL, RECEIVED)) is None, line


PROPERTY = settings(max_examples=400, deadline=None)


@PROPERTY
# Long digit runs (int() refuses more than 4300 digits) must not raise either.
@example("CEF:" + "9" * 5000 + "|a|b|c|d|e|f|rt=" + "9" * 5000, None)
@example("CEF:0|a|b|c|d|e|" + "9" * 5000 + "|start=Mar 14 " + "9" * 5000 + " 10:00:00", "CEF")
@given(
    st.one_of(st.text(), mutations(messages(NAME)), mutations(samples(NAME))),
    st.sampled_from([None, "CEF"]),
)
def test_property_never_raises(message: str, appname: str | None) -> None:
    """Arbitrary text and damaged sample messages return fields or None, never raise."""
    header = at(2024, 3, 14, 10, 0)
    fields = CefParser().parse(Syslog(message=message, appname=appname, timestamp=header))
    assert fields is None or fields["event.dataset"] == "cef.log"
