"""A real OpenLDAP slapd with its own temporary configuration, for the LDAP tests (tests/api) and
the settings screen's browser test (tests/e2e).

The directory (dc=example,dc=org): alice in group netops, bob in analysts, carol in others (a
group no test maps to a role); the root DN doubles as a service account.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from logmaster.tlscert import self_signed
from support import free_port

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "slapd-test-root-pw"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
USERS = {"alice": "Alice-Pass-1", "bob": "Bob-Pass-22", "carol": "Carol-Pass-333"}

CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {dir}/slapd.pid
TLSCertificateFile {dir}/cert.pem
TLSCertificateKeyFile {dir}/key.pem
modulepath /usr/lib/ldap
moduleload back_mdb
access to attrs=userPassword by anonymous auth by self read by * none
access to * by users read by * none
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root}"
rootpw {rootpw}
directory {dir}/db
"""


def _ldif() -> str:
    out = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Ex\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    for name, pw in USERS.items():
        out.append(
            f"dn: uid={name},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name}\n"
            f"sn: {name}\ndisplayName: {name.title()} Test\nmail: {name}@example.org\n"
            f"userPassword: {pw}\n"
        )
    # groupOfNames needs a member: a placeholder keeps a group valid when a test empties it.
    out.append(
        f"dn: cn=netops,{GROUPS}\nobjectClass: groupOfNames\ncn: netops\n"
        f"member: {ROOT_DN}\nmember: uid=alice,{PEOPLE}\n"
    )
    out.append(
        f"dn: cn=analysts,{GROUPS}\nobjectClass: groupOfNames\ncn: analysts\n"
        f"member: {ROOT_DN}\nmember: uid=bob,{PEOPLE}\n"
    )
    out.append(
        f"dn: cn=others,{GROUPS}\nobjectClass: groupOfNames\ncn: others\n"
        f"member: uid=carol,{PEOPLE}\n"
    )
    return "\n".join(out)


@dataclass
class Slapd:
    url: str
    ldaps_url: str
    ca_file: Path
    proc: subprocess.Popen[bytes]

    def modify(self, ldif: str) -> None:
        subprocess.run(
            ["ldapmodify", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW],
            input=ldif.encode(),
            check=True,
            capture_output=True,
            timeout=30,
        )


@contextlib.contextmanager
def running_slapd(d: Path) -> Iterator[Slapd]:
    """Start slapd with its configuration and data in ``d`` (free ports); stop it at the end."""
    if shutil.which("slapd") is None and not Path("/usr/sbin/slapd").exists():
        raise AssertionError(
            "slapd is required (Debian packages slapd, ldap-utils: scripts/system-deps.sh)"
        )
    (d / "db").mkdir(parents=True)
    self_signed(d / "cert.pem", d / "key.pem")  # SAN 127.0.0.1
    conf = d / "slapd.conf"
    conf.write_text(CONF.format(dir=d, suffix=SUFFIX, root=ROOT_DN, rootpw=ROOT_PW))
    url = f"ldap://127.0.0.1:{free_port()}"
    ldaps_url = f"ldaps://127.0.0.1:{free_port()}"
    # -d 0: stay in the foreground (so the test owns the process) without debug output.
    proc = subprocess.Popen(
        ["/usr/sbin/slapd", "-f", str(conf), "-h", f"{url}/ {ldaps_url}/", "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            probe = subprocess.run(
                [
                    "ldapsearch",
                    "-x",
                    "-H",
                    url,
                    "-D",
                    ROOT_DN,
                    "-w",
                    ROOT_PW,
                    "-b",
                    "",
                    "-s",
                    "base",
                ],
                capture_output=True,
                check=False,
            )
            if probe.returncode in (0, 32):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise AssertionError(f"slapd did not start: {err}")
            time.sleep(0.1)
        subprocess.run(
            ["ldapadd", "-x", "-H", url, "-D", ROOT_DN, "-w", ROOT_PW],
            input=_ldif().encode(),
            check=True,
            capture_output=True,
            timeout=30,
        )
        yield Slapd(url, ldaps_url, d / "cert.pem", proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        if proc.stderr:
            proc.stderr.close()
