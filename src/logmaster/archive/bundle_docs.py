"""The texts of an evidence bundle: ``VERIFY.md`` and an attribution's ``report.md``.

Both in Turkish first, then English (the readers are Turkish courts and experts; the commands are
the same in both). Dates as dd.mm.yyyy, times as stated in the archive (the device's offset).
"""
# ruff: noqa: E501 - the openssl commands are kept on one line so they can be copied

from __future__ import annotations

import datetime as dt
from typing import Any


def _d(iso: str | None) -> str:
    if not iso:
        return "-"
    return dt.date.fromisoformat(iso[:10]).strftime("%d.%m.%Y")


def _t(iso: str | None) -> str:
    if not iso:
        return "-"
    return dt.datetime.fromisoformat(iso).strftime("%d.%m.%Y %H:%M:%S %z")


def _what(about: dict[str, Any]) -> tuple[str, str]:
    if about["kind"] == "attribution":
        return (
            f"{about['subject']} adresinin {_t(about['at'])} anındaki kullanıcısına ilişkin atıf "
            "raporu (`report.md`, `report.json`) ve dayandığı günlük kayıtlar",
            f"the attribution report for {about['subject']} at {_t(about['at'])} (`report.md`, "
            "`report.json`) and the archive days it cites",
        )
    query_tr = f", `{about['query']}` sorgusuna uyan satırlar ile" if about.get("query") else ""
    query_en = f", with the lines matching `{about['query']}`" if about.get("query") else ""
    return (
        f"`{about['device']}` cihazının {_d(about['from'])} - {_d(about['to'])} günleri{query_tr}",
        f"the days {_d(about['from'])} to {_d(about['to'])} of device `{about['device']}`"
        f"{query_en}",
    )


def verify_markdown(about: dict[str, Any]) -> str:
    """VERIFY.md of a bundle described by ``about`` (the bundle.json body without files)."""
    what_tr, what_en = _what(about)
    stamps = about["stamps"]
    days = about["days"]
    table = "\n".join(
        f"| {d['device']} | {_d(d['date'])} | {d['part']} | {d['lines']} | "
        f"{d['stamp']['tsa']} | {'evet / yes' if d['stamp']['accredited'] else '**HAYIR / NO**'} |"
        for d in days
    )
    warn = ""
    if not stamps["accredited"]:
        warn = (
            "\n> **UYARI:** Bu paketteki zaman damgalarının bir kısmı ya da tamamı "
            f"**akredite bir zaman damgası sağlayıcısından değildir** "
            f"({', '.join(stamps['not_accredited_tsas'])}): {stamps['notice_tr']}.\n>\n"
            "> **WARNING:** some or all timestamps in this bundle are **not from an accredited "
            f"TSA** ({', '.join(stamps['not_accredited_tsas'])}): {stamps['notice']}.\n"
        )
    pending = ""
    if stamps["pending"]:
        pending = (
            "\n> Zaman damgası henüz alınmamış manifestler / manifests whose timestamp is still "
            "pending: " + ", ".join(f"`{p}`" for p in stamps["pending"]) + "\n"
        )
    left = ""
    if about.get("not_included"):
        left = (
            "\n## Pakete alınmayanlar / Not included\n\n"
            + "\n".join(
                f"- {', '.join(f'{k}: {v}' for k, v in item.items())}"
                for item in about["not_included"]
            )
            + "\n"
        )
    proofs = ""
    if about.get("extracted_lines"):
        proofs = f"""
## Seçilen satırlar ve Merkle kanıtları / Extracted lines and Merkle proofs

`extract/lines.txt` seçilen {about["extracted_lines"]} satırı, `extract/index.tsv` her birinin
dosyasını, satır numarasını ve bayt konumunu içerir. Her satırın kanıtı
`extract/proofs/<cihaz>/<gün>/<satır>/` dizinindedir: `line` (satırın baytları, satır sonu
olmadan), `path` (alttan üste kardeş özetler), `manifest`. Tek bir kanıt:

`extract/lines.txt` holds the {about["extracted_lines"]} extracted lines, `extract/index.tsv`
the file, line number and byte offset of each. Each line's proof is in
`extract/proofs/<device>/<day>/<line>/`: `line` (its exact bytes, no line feed), `path` (the
sibling hashes, lowest first), `manifest`. One proof:

    sh verify_proof.sh extract/proofs/<device>/<day>/<line>

By hand / elle (RFC 6962): `leaf = SHA-256(0x00 || line)`, then for each `path` entry
`left H`: `node = SHA-256(0x01 || H || node)`, `right H`: `node = SHA-256(0x01 || node || H)`;
the result must equal the manifest's `merkle_root`:

    {{ printf '\\000'; cat line; }} | openssl dgst -sha256
    {{ printf '\\001'; cat left.bin node.bin; }} | openssl dgst -sha256 -binary > node.bin
"""
    commands = _commands(days + about.get("chain_links", []))
    return f"""# Delil paketi doğrulaması / Evidence bundle verification

Bu paket: {what_tr}. Dışa aktaran: `{about["exported_by"] or "-"}`; ayrıntılar `bundle.json`
dosyasındadır.

This bundle: {what_en}. Exported by `{about["exported_by"] or "-"}`; details in `bundle.json`.
{warn}{pending}
| cihaz / device | gün / day | parça / part | satır / lines | TSA | akredite / accredited |
|---|---|---|---|---|---|
{table}

## Türkçe

Doğrulama için LogMaster gerekmez; yalnızca `sha256sum` ve `openssl` (OpenSSL 1.1.1 ya da
üstü) yeterlidir. Paketi boş bir dizine açın ve çalıştırın:

    sh verify.sh

Betik her gün için `OK` ya da nedenini yazarak `FAIL` basar; bir hata varsa sıfırdan farklı bir
çıkış koduyla biter. Yaptığı denetimler, elle de çalıştırılabilir:

1. Her dosyanın özeti: `sha256sum -c SHA256SUMS`
2. Her manifestin imzası (işletmecinin anahtarı, CMS ayrık imza):
   `openssl cms -verify -binary -inform DER -in <manifest>.p7s -content <manifest> -CAfile certs/operator-chain.pem -purpose any -out /dev/null`
3. Her manifestin zaman damgası (RFC 3161):
   `openssl ts -verify -data <manifest> -in <manifest>.tsr -CAfile certs/tsa-ca.pem -untrusted certs/tsa-untrusted.pem`
   (günlük damga kipinde damga, manifestin özetini içeren `archive/_daily/...list.json`
   dosyasının üzerindedir; liste aynı iki komutla denetlenir).
4. Gün dosyasının SHA-256 özeti manifestteki `sha256` değerine eşit olmalıdır:
   `sha256sum archive/<cihaz>/<yyyy>/<aa>/<gg>.log` ve `grep '^  "sha256"' <manifest>`
5. Günden güne zincir: her manifestin `previous_manifest_sha256` değeri, aynı cihazın bir önceki
   (`sequence` - 1) manifest dosyasının SHA-256 özetidir: `sha256sum <önceki manifest>`.

Sertifikalar: `certs/operator-chain.pem` işletmecinin imza sertifikaları (eski anahtarlar
dahil), `certs/tsa-ca.pem` zaman damgası sağlayıcısının kök sertifikaları. Bir sertifikanın
süresi dolmuşsa imza denetimine `-no_check_time` eklenebilir: imzanın zamanını zaman damgası
kanıtlar.
## English

No LogMaster is needed to verify; `sha256sum` and `openssl` (OpenSSL 1.1.1 or later) suffice.
Unpack the bundle into an empty directory and run:

    sh verify.sh

It prints `OK`, or `FAIL` with the reason, for every day, and exits non-zero when anything
failed. The checks, which can also be run by hand:

1. Every file's digest: `sha256sum -c SHA256SUMS`
2. Each manifest's signature (the operator's key, detached CMS):
   `openssl cms -verify -binary -inform DER -in <manifest>.p7s -content <manifest> -CAfile certs/operator-chain.pem -purpose any -out /dev/null`
3. Each manifest's timestamp (RFC 3161):
   `openssl ts -verify -data <manifest> -in <manifest>.tsr -CAfile certs/tsa-ca.pem -untrusted certs/tsa-untrusted.pem`
   (in daily stamp mode the token is over `archive/_daily/...list.json`, which lists the
   manifest's SHA-256; the list is checked with the same two commands).
4. The day file's SHA-256 must equal the manifest's `sha256`:
   `sha256sum archive/<device>/<yyyy>/<mm>/<dd>.log` and `grep '^  "sha256"' <manifest>`
5. The day-to-day chain: each manifest's `previous_manifest_sha256` is the SHA-256 of the
   device's previous (`sequence` - 1) manifest file: `sha256sum <previous manifest>`.

Certificates: `certs/operator-chain.pem` holds the operator's signing certificates (retired
keys included), `certs/tsa-ca.pem` the TSA root certificates. If a certificate has expired, add
`-no_check_time` to the signature check: the timestamp proves when the signature was made.
{proofs}{left}
## Her gün için komutlar / The commands for each day

{commands}
"""


def _commands(days: list[dict[str, Any]]) -> str:
    """The exact commands for every manifest of the bundle (what verify.sh runs)."""
    blocks = []
    for d in days:
        m = d["manifest"]
        title = f"### {d['device']} {_d(d['date'])}" + (
            f" (parça / supplement {d['part']})" if d["part"] else ""
        )
        if d["kind"] == "link":
            title += " — yalnızca zincir halkası / chain link only"
        lines = [
            f"openssl cms -verify -binary -inform DER -in {m}.p7s -content {m} "
            "-CAfile certs/operator-chain.pem -purpose any -out /dev/null",
        ]
        if d["stamp"]["state"] == "stamped":
            lines.append(
                f"openssl ts -verify -data {m} -in {m}.tsr -CAfile certs/tsa-ca.pem "
                "-untrusted certs/tsa-untrusted.pem"
            )
        else:
            lines.append("# stamp: see the daily list in archive/_daily/ / günlük listeye bakın")
        if d["file"] and d["kind"] == "day":
            lines.append(f"sha256sum {d['file']}    # = {d['sha256']}")
        lines.append(
            f"sha256sum {m}    # = {d['manifest_sha256']} (next day's previous_manifest_sha256)"
        )
        blocks.append(title + "\n\n" + "\n".join("    " + x for x in lines))
    return "\n\n".join(blocks)


def attribution_markdown(report: dict[str, Any]) -> str:
    """report.md: the attribution answer, each hop citing its archive line."""
    lines = [
        "# Atıf raporu / Attribution report",
        "",
        f"Konu / subject: `{report['subject']}`, an / moment: {_t(report['at'])} "
        f"(±{report['window_s']} s)",
        "",
    ]
    if report["ambiguous"]:
        lines += [
            "**BELİRSİZ / AMBIGUOUS:** birden çok aday uyuyor, hepsi listelenmiştir / several "
            "candidates fit; all are listed.",
            "",
        ]
    if report["stamps"]["notice"]:
        lines += [
            f"> {report['stamps']['notice_tr']}",
            ">",
            f"> {report['stamps']['notice']}",
            "",
        ]
    names = {"nat": "NAT", "dhcp": "DHCP", "hotspot": "Hotspot"}
    for n, chain in enumerate(report["chains"], 1):
        lines += [
            f"## Aday / candidate {n}",
            "",
            f"- iç adres / internal address: `{chain['internal_ip'] or '-'}"
            f"{':' + str(chain['internal_port']) if chain['internal_port'] else ''}`",
            f"- MAC: {', '.join(chain['macs']) or '?'}",
            f"- kullanıcı / user: {', '.join(chain['users']) or '?'}",
            "",
        ]
        hops = ([chain["nat"]] if chain["nat"] else []) + chain["leases"] + chain["logins"]
        for hop in hops:
            if not hop["permitted"]:
                lines += [f"### {names[hop['kind']]}: izin yok / {hop['note']}", ""]
                continue
            lines += [
                f"### {names[hop['kind']]} — {hop['device']}: {_t(hop['start'])} .. "
                f"{_t(hop['end'] or hop['expires'])}",
                "",
                f"{hop['note']}",
                "",
            ]
            for c in hop["evidence"]:
                where = (
                    f"`{c['file']}` satır / line {c['line_number']}, bayt / byte {c['offset']}; "
                    f"kanıt / proof `{c['proof']}`"
                    if c["verifiable"]
                    else f"`{c['file']}` bayt / byte {c['offset']} (mühürlenmemiş / not sealed)"
                )
                lines += [f"- {where}", "", "      " + c["line"], ""]
    if report["missing"]:
        lines += ["## Eksik kayıtlar / Missing logs", ""]
        lines += [f"- {m}" for m in report["missing"]] + [""]
    if report.get("problems"):
        lines += ["## Sorunlar / Problems", ""] + [f"- {p}" for p in report["problems"]] + [""]
    lines += [
        "## Doğrulama / Verification",
        "",
        "Her alıntı satırın gün dosyası, manifesti, imzası ve zaman damgası bu pakettedir: "
        "`sh verify.sh` hepsini ve her satırın Merkle kanıtını denetler (bkz. `VERIFY.md`). "
        "Bir satırı elle görmek için: `tail -c +<bayt+1> <dosya> | head -n 1`.",
        "",
        "Each cited line's day file, manifest, signature and timestamp are in this bundle: "
        "`sh verify.sh` checks them all and each line's Merkle proof (see `VERIFY.md`). To see a "
        "line by hand: `tail -c +<offset+1> <file> | head -n 1`.",
        "",
    ]
    return "\n".join(lines)
