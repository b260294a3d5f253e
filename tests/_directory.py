"""A real OpenLDAP ``slapd`` for the tests and benchmarks, started as the current user.

:func:`find_slapd` looks for the binaries (``slapd``, ``slapadd``) on ``PATH`` and then in
the usual places of Debian, Fedora and source builds (``/usr/sbin``,
``/usr/local/sbin``, ``/usr/libexec``), the schema files in ``/etc/ldap/schema`` or
``/etc/openldap/schema``, the modules (``back_mdb``, ``ppolicy``) next to them. When
none is found the caller skips, saying why; ``.ci/run`` installs the ``slapd`` and
``ldap-utils`` Debian packages where it can.

:class:`Slapd` writes a throwaway ``slapd.conf`` (mdb database, loopback listeners on
free ports, plain and TLS, a test schema of Active Directory attributes), loads the
seed entries with ``slapadd`` before the server starts (fast, and operational
attributes such as ``pwdAccountLockedTime`` can be seeded), starts ``slapd -d 0`` in
the foreground, waits for its socket with a bounded poll, and stops it at the end.

TLS uses a throwaway CA made with ``cryptography``: :func:`make_pki` writes the CA,
a server certificate for ``127.0.0.1`` (valid, or expired), and a client certificate
for SASL EXTERNAL.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-secret-pw"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PASSWORD = "reader-secret-pw"
CLIENT_DN = f"cn=scimsync,{SUFFIX}"

_SBIN = ("/usr/sbin", "/usr/local/sbin", "/usr/libexec", "/usr/local/libexec", "/opt/*/sbin")
_SCHEMA = ("/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema")
_MODULES = (
    "/usr/lib/ldap",
    "/usr/lib64/openldap",
    "/usr/lib/openldap",
    "/usr/local/libexec/openldap",
)

# Active Directory attributes, defined on a private test arc so that OpenLDAP can hold
# entries shaped like AD's (a binary objectGUID, userAccountControl, uSNChanged).
AD_SCHEMA = """
attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'objectGUID'
  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.3 NAME 'accountExpires'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.4 NAME 'uSNChanged'
  EQUALITY integerMatch ORDERING integerOrderingMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.5 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'testAdUser' SUP top AUXILIARY
  MAY ( objectGUID $ userAccountControl $ accountExpires $ uSNChanged $ sAMAccountName ) )
"""


@attrs.frozen
class SlapdInstall:
    """Where this machine's OpenLDAP lives."""

    slapd: str
    slapadd: str
    schema_dir: str
    module_dir: str | None
    ldapsearch: str | None


def _first(patterns: Iterable[str]) -> str | None:
    for pattern in patterns:
        for found in sorted(glob.glob(pattern)):
            if os.path.exists(found):
                return found
    return None


def find_slapd() -> SlapdInstall | str:
    """The OpenLDAP install, or why there is none (for a skip message)."""
    slapd = shutil.which("slapd") or _first(f"{d}/slapd" for d in _SBIN)
    slapadd = shutil.which("slapadd") or _first(f"{d}/slapadd" for d in _SBIN)
    if slapd is None or slapadd is None:
        return (
            "OpenLDAP slapd is not installed (Debian: apt-get install slapd ldap-utils; "
            ".ci/run installs it where it can)"
        )
    schema = _first(f"{d}/core.schema" for d in _SCHEMA)
    if schema is None:
        return "the OpenLDAP schema files (core.schema) were not found"
    modules = _first(f"{d}/back_mdb.*" for d in _MODULES)
    return SlapdInstall(
        slapd=slapd,
        slapadd=slapadd,
        schema_dir=os.path.dirname(schema),
        module_dir=os.path.dirname(modules) if modules else None,
        ldapsearch=shutil.which("ldapsearch"),
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- a throwaway PKI ---------------------------------------------------------------------


@attrs.frozen
class Pki:
    """Files of a throwaway PKI: the CA, a server certificate, a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(directory: Path, *, expired: bool = False, name: str = "pki") -> Pki:
    """Write a CA and certificates for ``127.0.0.1`` into ``directory``; the server
    certificate has expired when ``expired`` is given."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    directory.mkdir(parents=True, exist_ok=True)

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scimsync test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(
        subject: x509.Name, usage: x509.ObjectIdentifier, san: bool, valid: bool
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        start, end = (
            (now - dt.timedelta(days=1), now + dt.timedelta(days=10))
            if valid
            else (now - dt.timedelta(days=20), now - dt.timedelta(days=10))
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if san:
            import ipaddress

            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.DNSName("localhost"),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)

    server_cert, server_key = issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
        ExtendedKeyUsageOID.SERVER_AUTH,
        True,
        not expired,
    )
    client_cert, client_key = issue(
        x509.Name(
            [
                x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "org"),
                x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
                x509.NameAttribute(NameOID.COMMON_NAME, "scimsync"),
            ]
        ),
        ExtendedKeyUsageOID.CLIENT_AUTH,
        False,
        True,
    )
    files = Pki(
        ca=directory / f"{name}-ca.pem",
        server_cert=directory / f"{name}-server.pem",
        server_key=directory / f"{name}-server.key",
        client_cert=directory / f"{name}-client.pem",
        client_key=directory / f"{name}-client.key",
    )
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server_cert)
    files.server_key.write_bytes(server_key)
    files.client_cert.write_bytes(client_cert)
    files.client_key.write_bytes(client_key)
    for path in (files.server_key, files.client_key):
        path.chmod(0o600)
    return files


# -- entries -------------------------------------------------------------------------------


def ldif(dn: str, *pairs: tuple[str, str | bytes]) -> str:
    """One LDIF entry; bytes and values that need it are written base64."""
    lines = [f"dn: {dn}"]
    for name, value in pairs:
        if isinstance(value, bytes) or not value.isascii() or value[:1] in (" ", ":", "<"):
            raw = value if isinstance(value, bytes) else value.encode()
            lines.append(f"{name}:: {base64.b64encode(raw).decode()}")
        else:
            lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n\n"


def base_entries() -> str:
    """The suffix, the two OUs and the reader account."""
    return (
        ldif(SUFFIX, ("objectClass", "dcObject"), ("objectClass", "organization"),
             ("o", "Example"), ("dc", "example"))
        + ldif(f"ou=People,{SUFFIX}", ("objectClass", "organizationalUnit"), ("ou", "People"))
        + ldif(f"ou=Groups,{SUFFIX}", ("objectClass", "organizationalUnit"), ("ou", "Groups"))
        + ldif(READER_DN, ("objectClass", "person"), ("cn", "reader"), ("sn", "reader"),
               ("userPassword", READER_PASSWORD))
    )  # fmt: skip


def person(
    uid: str,
    *,
    given: str,
    sn: str,
    mail: Sequence[str] = (),
    extra: Sequence[tuple[str, str | bytes]] = (),
    ou: str = "People",
    cn: str | None = None,
) -> str:
    """An inetOrgPerson entry under ``ou``."""
    from ldap3.utils.dn import escape_rdn

    common = cn or f"{given} {sn}"
    pairs: list[tuple[str, str | bytes]] = [
        ("objectClass", "inetOrgPerson"),
        ("uid", uid),
        ("cn", common),
        ("givenName", given),
        ("sn", sn),
    ]
    pairs += [("mail", m) for m in mail]
    pairs += list(extra)
    # Every value of an attribute on consecutive lines, object classes first.
    pairs.sort(key=lambda pair: pair[0].lower() != "objectclass")
    return ldif(f"uid={escape_rdn(uid)},ou={ou},{SUFFIX}", *pairs)


def group(cn: str, members: Sequence[str], ou: str = "Groups") -> str:
    """A groupOfNames entry (it needs one member at least: the suffix stands in)."""
    pairs: list[tuple[str, str | bytes]] = [("objectClass", "groupOfNames"), ("cn", cn)]
    pairs += [("member", m) for m in (members or [SUFFIX])]
    return ldif(f"cn={cn},ou={ou},{SUFFIX}", *pairs)


def people_dn(uid: str) -> str:
    """The DN of a person made by :func:`person`."""
    from ldap3.utils.dn import escape_rdn

    return f"uid={escape_rdn(uid)},ou=People,{SUFFIX}"


def group_dn(cn: str) -> str:
    """The DN of a group made by :func:`group`."""
    return f"cn={cn},ou=Groups,{SUFFIX}"


def guid_bytes(text: str) -> bytes:
    """The binary form of a GUID, as Active Directory stores ``objectGUID``."""
    return uuid.UUID(text).bytes_le


# -- the server ------------------------------------------------------------------------------


@attrs.define
class Slapd:
    """A running slapd: ``url`` (plain) and ``ldaps_url`` on 127.0.0.1."""

    install: SlapdInstall
    directory: Path
    pki: Pki | None
    port: int
    tls_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def config(self) -> str:
        schema = self.install.schema_dir
        lines = [
            f"include {schema}/core.schema",
            f"include {schema}/cosine.schema",
            f"include {schema}/inetorgperson.schema",
            f"include {self.directory}/ad-test.schema",
        ]
        if self.install.module_dir:
            lines += [
                f"modulepath {self.install.module_dir}",
                "moduleload back_mdb",
                "moduleload ppolicy",
            ]
        lines += [
            f"pidfile {self.directory}/slapd.pid",
            "sizelimit unlimited",
            "timelimit unlimited",
            # SASL EXTERNAL: the client certificate's subject is the identity.
            "authz-regexp cn=([^,]+),dc=example,dc=org cn=$1,dc=example,dc=org",
        ]
        if self.pki is not None:
            lines += [
                f"TLSCACertificateFile {self.pki.ca}",
                f"TLSCertificateFile {self.pki.server_cert}",
                f"TLSCertificateKeyFile {self.pki.server_key}",
                "TLSVerifyClient try",
            ]
        lines += [
            "database mdb",
            f'suffix "{SUFFIX}"',
            f'rootdn "{ADMIN_DN}"',
            f"rootpw {ADMIN_PASSWORD}",
            f"directory {self.directory}/db",
            "maxsize 1073741824",
            "index objectClass eq",
            "index entryUUID eq",
            "index modifyTimestamp eq",
            "access to attrs=userPassword by anonymous auth by * none",
            "access to * by users read by anonymous auth",
        ]
        if self.install.module_dir:
            lines += ["overlay ppolicy"]
        return "\n".join(lines) + "\n"

    def load(self, entries: str) -> None:
        """Load LDIF entries with ``slapadd`` (the server must not be running)."""
        ldif_path = self.directory / "seed.ldif"
        ldif_path.write_text(entries, encoding="utf-8")
        done = subprocess.run(
            [
                self.install.slapadd,
                "-q",
                "-f",
                str(self.directory / "slapd.conf"),
                "-l",
                str(ldif_path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"slapadd failed: {done.stderr[-2000:]}")
        ldif_path.unlink()

    def start(self) -> None:
        urls = f"ldap://127.0.0.1:{self.port}/"
        if self.pki is not None:
            urls += f" ldaps://127.0.0.1:{self.tls_port}/"
        log = (self.directory / "slapd.log").open("wb")
        self.process = subprocess.Popen(
            [self.install.slapd, "-f", str(self.directory / "slapd.conf"), "-h", urls, "-d", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        # Bounded poll of the socket: no sleeping on a guess.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited: {self.log()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            # The poll's step: waits on the process, so an exit is seen at once.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0.02)
        self.stop()
        raise RuntimeError(f"slapd did not listen within 30 s: {self.log()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        path = self.directory / "slapd.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def running_slapd(
    install: SlapdInstall,
    entries: str,
    *,
    tls: bool = True,
    expired: bool = False,
    directory: Path | None = None,
) -> Iterator[Slapd]:
    """A slapd seeded with ``base_entries()`` and ``entries``, stopped on exit."""
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="slapd-")))
        (directory / "db").mkdir(parents=True, exist_ok=True)
        (directory / "ad-test.schema").write_text(AD_SCHEMA, encoding="utf-8")
        pki = make_pki(directory, expired=expired) if tls else None
        server = Slapd(install, directory, pki, free_port(), free_port())
        (directory / "slapd.conf").write_text(server.config(), encoding="utf-8")
        server.load(base_entries() + entries)
        server.start()
        try:
            yield server
        finally:
            server.stop()
