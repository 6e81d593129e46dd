"""``logmaster loadgen``: a real syslog sender for tests, benchmarks and deployment checks."""

from __future__ import annotations

import json
import ssl
import sys
from pathlib import Path
from typing import Annotated

import typer

from logmaster.cli.common import fail, out
from logmaster.endpoints import parse_endpoint


def loadgen(
    udp: Annotated[str | None, typer.Option("--udp", help="Send UDP to HOST:PORT.")] = None,
    tcp: Annotated[str | None, typer.Option("--tcp", help="Send TCP to HOST:PORT.")] = None,
    tls: Annotated[str | None, typer.Option("--tls", help="Send TLS to HOST:PORT.")] = None,
    rate: Annotated[int, typer.Option(min=1, help="Messages per second.")] = 1000,
    seconds: Annotated[float, typer.Option(min=0.001, help="How long to send.")] = 10.0,
    size: Annotated[
        int, typer.Option(min=16, max=65000, help="Bytes per generated message.")
    ] = 200,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file", help="Send these lines (in a loop) instead of generated messages."
        ),
    ] = None,
    senders: Annotated[
        int, typer.Option(min=1, help="Distinct source addresses (127.0.1.x on loopback).")
    ] = 1,
    first_sender: Annotated[
        int,
        typer.Option(
            min=0,
            help="Number of the first sender (to split senders across several loadgen processes).",
        ),
    ] = 0,
    framing: Annotated[str, typer.Option(help="TCP/TLS framing: octet or lf.")] = "octet",
    ca: Annotated[Path | None, typer.Option(help="CA file to verify the TLS server.")] = None,
    insecure: Annotated[bool, typer.Option(help="Do not verify the TLS server.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Send syslog at a fixed rate (a real sender, for tests and deployment checks)."""
    from logmaster import loadgen as lg

    chosen = [(t, v) for t, v in (("udp", udp), ("tcp", tcp), ("tls", tls)) if v]
    if len(chosen) != 1:
        raise fail("give exactly one of --udp, --tcp, --tls")
    if framing not in ("octet", "lf"):
        raise fail("--framing: octet or lf")
    transport, spec = chosen[0]
    try:
        target = parse_endpoint(spec)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    ctx = None
    if transport == "tls":
        ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    try:
        result = lg.run(
            transport,
            target,
            rate=rate,
            seconds=seconds,
            size=size,
            senders=senders,
            from_file=from_file,
            framing=framing,
            tls=ctx,
            first_sender=first_sender,
        )
    except (OSError, ValueError) as exc:
        raise fail(f"loadgen: {exc}") from exc
    if as_json:
        sys.stdout.write(json.dumps({**vars(result), "rate": result.rate}) + "\n")
    else:
        out.print(
            f"sent {result.sent:,} messages ({result.bytes:,} bytes) over "
            f"{result.transport} to {result.target} from {result.senders} sender(s) in "
            f"{result.seconds:.2f} s: {result.rate:,.0f} msg/s",
            highlight=False,
        )
