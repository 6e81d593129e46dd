"""The collector: network bytes in, archive lines out.

``framing`` splits TCP/TLS byte streams into messages (RFC 6587), ``udp`` and ``tcp`` own the
sockets, ``devices`` maps a sender to its device, ``ingest`` hands messages to the archive writer
thread, ``service`` starts all of it (and the receiver processes of ``--workers N``). No parsing
happens here beyond framing and, for hostname-routed devices, the header's hostname.
"""
