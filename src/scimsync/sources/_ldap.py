"""Identity records from an LDAP directory (OpenLDAP, Active Directory, FreeIPA), page by
page, through ``ldap3`` (the ``scimsync[ldap]`` extra). ``ldap3`` is imported here only,
and only when a read starts."""

from __future__ import annotations

import base64
import contextlib
import logging
import math
import os
import socket
import ssl
import warnings
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from .._urls import is_loopback
from ..errors import ConfigurationError, SourceReadError
from ..secrets import Redactor, Secret
from ._delta import ChangeRead
from ._ldap_entries import (
    KEY,
    MARK,
    MEMBERS,
    OTHER,
    Entry,
    EntryReader,
    LeanReceiver,
    Plan,
    as_dict,
    taken,
)
from ._ldap_text import (
    LdapFilter,
    flatten_groups,
    generalized_time,
    guid_text,
    normalize_dn,
    parse_range,
)
from ._records import IssueCode, Record, RecordIssue, RecordKind

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence

    from ._protocol import SourceItem

__all__ = ["LdapSource"]

logger = logging.getLogger("scimsync.sources")

#: The paged results control (RFC 2696).
_PAGED_RESULTS = "1.2.840.113556.1.4.319"

#: Attributes holding bytes: a GUID becomes its canonical text, the others base64.
_GUID_ATTRIBUTES = frozenset({"objectguid", "msexchmailboxguid", "ms-ds-consistencyguid"})
_BINARY_ATTRIBUTES = frozenset(
    {
        "objectsid",
        "jpegphoto",
        "thumbnailphoto",
        "usercertificate",
        "cacertificate",
        "usersmimecertificate",
        "userpkcs12",
        "photo",
        "audio",
        "sidhistory",
        "tokengroups",
    }
)

#: Attributes always read as lists, even with one value.
DEFAULT_MULTI_VALUED = ("objectClass", "memberOf", "proxyAddresses", "mail", "member")

Scope = Literal["subtree", "one", "base"]
DeltaAttribute = Literal["modifyTimestamp", "uSNChanged"]


class LdapSource:
    """Reads users and groups from an LDAP directory, page by page (RFC 2696).

    ::

        from scimsync.secrets import Secret
        from scimsync.sources import LdapSource

        source = LdapSource(
            "ldaps://dc1.example.com",
            base_dn="dc=example,dc=com",
            bind_dn="cn=scimsync,ou=Services,dc=example,dc=com",
            password=Secret(os.environ["LDAP_PASSWORD"]),
            user_filter="(&(objectClass=user)(objectCategory=person))",
            group_filter="(objectClass=group)",
            attributes=["sAMAccountName", "givenName", "sn", "mail", "userAccountControl"],
            key="objectGUID",
        )

    **Connecting.** ``url`` is ``ldaps://host[:port]`` (TLS from the start) or
    ``ldap://host[:port]``, with ``start_tls=True`` to upgrade. Certificates are
    verified against the system's CAs, or ``ca_file``; plain ``ldap://`` without
    StartTLS to a host that is not loopback is refused unless ``allow_insecure`` is
    given (the password would cross the network in clear). Bind with ``bind_dn`` and
    ``password`` (a :class:`~scimsync.secrets.Secret`, never printed; a plain string
    is wrapped), anonymously (neither), or with ``sasl_external=True`` (the client
    certificate ``cert_file``/``key_file`` on TLS). Referrals are not followed unless
    ``referrals=True``.

    **Reading.** Users are the entries under ``user_base`` (default ``base_dn``)
    matching ``user_filter``; groups those under ``group_base`` matching
    ``group_filter`` (None: no groups). Filters are LDAP filter text checked for
    balanced parentheses, or :class:`~scimsync.sources.LdapFilter` values built with
    escaping (never paste a value into filter text). ``scope`` is ``"subtree"``,
    ``"one"`` or ``"base"``. ``attributes`` lists what to read (``"*"``: every user
    attribute); each record holds them under the names asked for, with ``dn``. A
    value is a string, or a list of strings when the entry has several, and always a
    list for the names in ``multi_valued``; an attribute an entry lacks is absent
    from its record. ``objectGUID`` becomes its canonical GUID text, other binary
    attributes (``objectSid``, ``jpegPhoto``) base64 text. Pages of ``page_size``
    entries are read one at a time: memory holds a page (and one DN and key per
    user, to name group members), never the whole directory.

    **Keys.** ``key`` names the attribute holding each entry's stable key:
    ``"entryUUID"`` (OpenLDAP, FreeIPA; the default) or ``"objectGUID"`` (Active
    Directory). A DN is no key: it changes when a person is renamed or moved.

    **Groups.** A group's ``member`` values (``member_attribute``) are DNs; they are
    turned into the keys of the users read, and a member that is itself a group
    read here brings its own members (nested groups are flattened; a cycle, A in B
    in A, is read once). Active Directory hands out large ``member`` attributes in
    ranges (``member;range=0-1499``): the rest is fetched range by range. Member DNs
    that are neither a user nor a group of this read are left out, with an
    ``UNKNOWN_MEMBER`` issue for the group saying how many.

    **What goes wrong.** A server that cannot be reached, a refused bind (a wrong
    password), a certificate that fails verification (expired, another name, an
    unknown CA) raise :class:`~scimsync.errors.SourceReadError` before any record.
    A read that fails midway yields a ``READ_INCOMPLETE`` issue (what was read is
    kept): never "everyone left". A value that is not UTF-8 text in a text
    attribute is an ``INVALID_VALUE`` issue naming the entry's DN and key.

    **Delta reads.** With ``delta="modifyTimestamp"`` (OpenLDAP) or
    ``delta="uSNChanged"`` (Active Directory), :meth:`read_changes` reads only the
    users changed since a watermark (and every group: nested memberships change
    without the group's entry changing); see :class:`~scimsync.sources.DeltaSource`.
    """

    def __init__(
        self,
        url: str,
        *,
        base_dn: str,
        bind_dn: str | None = None,
        password: Secret | str | None = None,
        sasl_external: bool = False,
        start_tls: bool = False,
        ca_file: str | os.PathLike[str] | None = None,
        cert_file: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        allow_insecure: bool = False,
        user_filter: LdapFilter | str = "(objectClass=inetOrgPerson)",
        group_filter: LdapFilter | str | None = "(objectClass=groupOfNames)",
        user_base: str | None = None,
        group_base: str | None = None,
        scope: Scope = "subtree",
        attributes: Sequence[str] = ("*",),
        key: str = "entryUUID",
        member_attribute: str = "member",
        multi_valued: Iterable[str] = DEFAULT_MULTI_VALUED,
        page_size: int = 500,
        referrals: bool = False,
        timeout: float = 30.0,
        delta: DeltaAttribute | None = None,
        name: str | None = None,
    ) -> None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise ConfigurationError(
                f"an LDAP URL is ldap://host[:port] or ldaps://..., got {url!r}"
            )
        if parts.username or parts.password:
            raise ConfigurationError("the LDAP URL must not carry credentials; pass bind_dn")
        if parts.path not in ("", "/") or parts.query:
            raise ConfigurationError(
                "give the base DN and filters as settings, not in the LDAP URL"
            )
        self.host = parts.hostname
        self.use_ssl = parts.scheme == "ldaps"
        self.port = parts.port or (636 if self.use_ssl else 389)
        if start_tls and self.use_ssl:
            raise ConfigurationError("start_tls is for ldap:// URLs; ldaps:// is TLS already")
        encrypted = self.use_ssl or start_tls
        if not encrypted and not allow_insecure and not is_loopback(self.host):
            raise ConfigurationError(
                f"{url!r} is plain LDAP to a host that is not loopback; use ldaps://, "
                "start_tls=True, or pass allow_insecure=True if you really mean it"
            )
        if sasl_external and (bind_dn is not None or password is not None):
            raise ConfigurationError("sasl_external binds with the client certificate: no password")
        if sasl_external and not encrypted:
            raise ConfigurationError("sasl_external needs TLS: use ldaps:// or start_tls=True")
        if password is not None and bind_dn is None:
            raise ConfigurationError("a password needs a bind_dn")
        if page_size < 1:
            raise ConfigurationError(f"page_size must be at least 1, got {page_size}")
        if scope not in ("subtree", "one", "base"):
            raise ConfigurationError(f"scope must be 'subtree', 'one' or 'base', got {scope!r}")
        if delta not in (None, "modifyTimestamp", "uSNChanged"):
            raise ConfigurationError(
                f"delta must be 'modifyTimestamp' or 'uSNChanged', got {delta!r}"
            )
        tls_files = (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file))
        for option, path in tls_files:
            if path is not None and not os.path.isfile(path):
                raise ConfigurationError(f"{option} {os.fspath(path)!r} is not a file")
        if key_file is not None and cert_file is None:
            raise ConfigurationError("a key_file needs a cert_file")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.base_dn = base_dn
        self.bind_dn = bind_dn
        self.password = Secret(password) if password is not None else None
        self.sasl_external = sasl_external
        self.start_tls = start_tls
        self.ca_file = os.fspath(ca_file) if ca_file is not None else None
        self.cert_file = os.fspath(cert_file) if cert_file is not None else None
        self.key_file = os.fspath(key_file) if key_file is not None else None
        self.user_filter = _filter(user_filter)
        self.group_filter = _filter(group_filter) if group_filter is not None else None
        self.user_base = user_base if user_base is not None else base_dn
        self.group_base = group_base if group_base is not None else base_dn
        self.scope = scope
        self.attributes = tuple(attributes)
        self.key = key
        self.member_attribute = member_attribute
        self.multi_valued = frozenset(name.lower() for name in multi_valued)
        self._wanted = {n.lower(): n for n in self.attributes if n not in ("*", "+")}
        self._everything = "*" in self.attributes
        self._plans: dict[str, dict[bytes | str, Plan]] = {"user": {}, "group": {}}
        self.page_size = page_size
        self.referrals = referrals
        self.timeout = timeout
        self.delta = delta
        self.name = name if name is not None else self.url
        self._redact = Redactor([self.password] if self.password else [])
        _ldap3()  # the extra is installed: say so now, not at the first cycle

    def __repr__(self) -> str:
        return f"LdapSource({self.url!r}, base_dn={self.base_dn!r}, key={self.key!r})"

    @property
    def source_id(self) -> str:
        """What this source reads: URL, bases, filters, key (for its stored watermark)."""
        return (
            f"ldap {self.url} users={self.user_base}?{self.scope}?{self.user_filter}"
            f" groups={self.group_base}?{self.group_filter} key={self.key} delta={self.delta}"
        )

    # -- reading ----------------------------------------------------------------------

    def read(self) -> Iterator[SourceItem]:
        """Yield a record per user, then per group; an issue where the read stopped."""
        return iter(self.read_changes(None))

    def read_changes(self, since: str | None, previous: Sequence[Record] = ()) -> ChangeRead:
        """Read the users changed since the watermark ``since`` (all when None) and
        every group; see :class:`~scimsync.sources.DeltaSource`.

        Without ``delta`` set, every read is a full one and reports no watermark.
        """
        if since is not None and self.delta is None:
            since = None
        kinds: tuple[RecordKind, ...] = ("group",) if self.group_filter is not None else ()
        return ChangeRead(
            lambda change: self._read(change, since, previous), since=since, full_kinds=kinds
        )

    def _read(
        self, change: ChangeRead, since: str | None, previous: Sequence[Record]
    ) -> Iterator[SourceItem]:
        connection = self._connect()
        try:
            yield from self._read_entries(connection, change, since, previous)
        finally:
            _close(connection)

    def _read_entries(
        self, connection: Any, change: ChangeRead, since: str | None, previous: Sequence[Record]
    ) -> Iterator[SourceItem]:
        ldap3 = _ldap3()
        # A USN taken before the read: what changes while it runs is read next time.
        start_usn = self._highest_usn(connection) if self.delta == "uSNChanged" else None
        user_filter = self.user_filter
        if since is not None:
            user_filter = LdapFilter.all_of(user_filter, self._changed_since(since))
        # Normalised DN -> key of every user known, to name group members.
        user_dns: dict[str, str] = {}
        if since is not None and self.group_filter is not None:
            for record in previous:
                dn = record.attributes.get("dn") if record.kind == "user" else None
                if isinstance(dn, str) and record.key is not None:
                    user_dns[normalize_dn(dn)] = record.key
        newest: str | None = None
        position = 0
        groups = self.group_filter is not None  # users' DNs are kept to name members
        extra = [self.key]
        if self.delta is not None:
            extra.append(self.delta)
        reader = self._reader("user")
        try:
            for raw in self._search(connection, self.user_base, user_filter, extra):
                position += 1
                entry = reader(connection, raw)
                item = self._record(entry, "user", position)
                if groups and entry.key is not None and isinstance(item, Record):
                    user_dns[normalize_dn(entry.dn)] = entry.key
                if entry.mark is not None:
                    newest = _newest(newest, entry.mark, self.delta or "")
                yield item
        except ldap3.core.exceptions.LDAPException as exc:
            yield self._stopped("user", position, exc)
            return
        if self.group_filter is not None:
            stopped = yield from self._read_groups(connection, user_dns)
            if stopped:
                return
        if self.delta == "uSNChanged" and start_usn is not None:
            change.watermark = start_usn
        elif self.delta is not None:
            change.watermark = newest if newest is not None else since

    def _read_groups(
        self, connection: Any, user_dns: dict[str, str]
    ) -> Generator[SourceItem, None, bool]:
        """Read every group, then yield them with their members flattened; True when the
        read stopped early (an issue was yielded)."""
        ldap3 = _ldap3()
        assert self.group_filter is not None
        groups: list[tuple[Record, list[str]]] = []
        group_dns: dict[str, str] = {}
        position = 0
        stopped = False
        reader = self._reader("group")
        try:
            for raw in self._search(
                connection, self.group_base, self.group_filter, [self.key, self.member_attribute]
            ):
                position += 1
                entry = reader(connection, raw)
                item = self._record(entry, "group", position)
                if isinstance(item, RecordIssue) or item.key is None:
                    yield item
                    continue
                member_dns = self._members(connection, entry)
                group_dns[normalize_dn(entry.dn)] = item.key
                groups.append((item, member_dns))
        except ldap3.core.exceptions.LDAPException as exc:
            yield self._stopped("group", position, exc)
            stopped = True
        direct: dict[str, tuple[list[str], list[str]]] = {}
        unknown: dict[str, list[str]] = {}
        for record, member_dns in groups:
            assert record.key is not None
            users, nested, missing = [], [], []
            for dn in member_dns:
                normal = normalize_dn(dn)
                if normal in user_dns:
                    users.append(user_dns[normal])
                elif normal in group_dns:
                    nested.append(group_dns[normal])
                else:
                    missing.append(dn)
            direct[record.key] = (users, nested)
            unknown[record.key] = missing
        flat = flatten_groups(direct)
        for record, _ in groups:
            assert record.key is not None
            missing = unknown[record.key]
            if missing:
                shown = ", ".join(repr(dn) for dn in missing[:3])
                more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
                yield RecordIssue(
                    code=IssueCode.UNKNOWN_MEMBER,
                    reason=f"{len(missing)} member DNs are neither a user nor a group of this "
                    f"read ({shown}{more}): left out",
                    key=record.key,
                    line=record.line,
                    kind="group",
                    origin=record.origin,
                )
            yield Record(
                key=record.key,
                attributes=record.attributes,
                kind="group",
                members=flat[record.key],
                line=record.line,
                origin=record.origin,
            )
        return stopped

    def _changed_since(self, since: str) -> LdapFilter:
        if self.delta == "uSNChanged":
            try:
                return LdapFilter.ge("uSNChanged", str(int(since) + 1))
            except ValueError:
                raise ConfigurationError(f"not a uSNChanged watermark: {since!r}") from None
        return LdapFilter.ge("modifyTimestamp", since)

    def _highest_usn(self, connection: Any) -> str | None:
        connection.search(
            "", "(objectClass=*)", search_scope="BASE", attributes=["highestCommittedUSN"]
        )
        for entry in taken(connection):
            value = _first_text(as_dict(connection, entry), "highestCommittedUSN")
            if value is not None:
                return value
        return None

    # -- ldap3, thinly --------------------------------------------------------------------

    def _connect(self) -> Any:
        ldap3 = _ldap3()
        tls = self._tls(ldap3) if self.use_ssl or self.start_tls else None
        server = ldap3.Server(
            self.host,
            port=self.port,
            use_ssl=self.use_ssl,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=self.timeout,
        )
        if self.sasl_external:
            settings: dict[str, Any] = {
                "authentication": ldap3.SASL,
                "sasl_mechanism": ldap3.EXTERNAL,
                "sasl_credentials": "",  # no authzid: the certificate's identity
            }
        elif self.bind_dn is not None:
            settings = {
                "authentication": ldap3.SIMPLE,
                "user": self.bind_dn,
                "password": self.password.reveal() if self.password is not None else "",
            }
        else:
            settings = {"authentication": ldap3.ANONYMOUS}
        connection = ldap3.Connection(
            server,
            auto_bind=ldap3.AUTO_BIND_NONE,
            auto_referrals=self.referrals,
            auto_range=False,
            raise_exceptions=True,
            read_only=True,
            receive_timeout=max(1, math.ceil(self.timeout)),  # ldap3 packs it as an integer
            return_empty_attributes=False,
            **settings,
        )
        LeanReceiver.install(connection)
        step = "connect to"
        try:
            connection.open()
            if self.start_tls:
                step = "start TLS with"
                connection.start_tls()
            step = "bind to"
            connection.bind()
        except ldap3.core.exceptions.LDAPException as exc:
            _close(connection)
            problem = self._describe(exc)
            if step == "connect to" and not _resolves(self.host):
                problem = f"the host name {self.host!r} does not resolve ({problem})"
            raise SourceReadError(f"{self.name}: cannot {step} the directory: {problem}") from None
        return connection

    def _tls(self, ldap3: Any) -> Any:
        """ldap3's TLS settings, wrapping sockets with the standard library's verified
        context: the chain against the system's CAs (or ``ca_file``) and the host
        name (or IP address) checked by ``ssl`` itself, with SNI."""
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file is not None:
                context.load_cert_chain(self.cert_file, keyfile=self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"{self.name}: cannot load the TLS files: {exc}") from None
        host = self.host

        class VerifiedTls(ldap3.Tls):  # type: ignore[misc]
            def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
                connection.socket = context.wrap_socket(
                    connection.socket,
                    server_side=False,
                    do_handshake_on_connect=do_handshake,
                    server_hostname=host,
                )

        return VerifiedTls(validate=ssl.CERT_REQUIRED)

    def _search(
        self, connection: Any, base: str, search_filter: LdapFilter, extra: Sequence[str]
    ) -> Iterator[bytes | Mapping[str, Any]]:
        """Every entry of a paged search (see :func:`taken`); a failure raises (ldap3's
        exception)."""
        ldap3 = _ldap3()
        scope = {"subtree": ldap3.SUBTREE, "one": ldap3.LEVEL, "base": ldap3.BASE}[self.scope]
        wanted = list(dict.fromkeys([*self.attributes, *extra]))
        cookie: bytes | None = None
        while True:
            connection.search(
                base,
                search_filter.text,
                search_scope=scope,
                attributes=wanted,
                paged_size=self.page_size,
                paged_cookie=cookie,
            )
            yield from taken(connection)
            controls = (connection.result or {}).get("controls") or {}
            cookie = controls.get(_PAGED_RESULTS, {}).get("value", {}).get("cookie")
            if not cookie:
                return

    def _members(self, connection: Any, entry: Entry) -> list[str]:
        """A group's member DNs, every range of them (Active Directory)."""
        members: list[str] = []
        for name, values in entry.members:
            members.extend(values)
            found = parse_range(name)
            if found is not None:
                members.extend(self._more_ranges(connection, entry.dn, found[2]))
        return members

    def _more_ranges(self, connection: Any, dn: str, high: int | None) -> Iterator[str]:
        """The values after ``member;range=0-<high>``, fetched range by range."""
        ldap3 = _ldap3()
        while high is not None:
            name = f"{self.member_attribute};range={high + 1}-*"
            connection.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=[name])
            next_high: int | None = None
            got = False
            for entry in taken(connection):
                raw = as_dict(connection, entry).get("raw_attributes") or {}
                for attribute, values in raw.items():
                    found = parse_range(attribute)
                    if found is None or found[0].lower() != self.member_attribute.lower():
                        continue
                    got = True
                    next_high = found[2]
                    yield from (bytes(v).decode("utf-8", "replace") for v in values)
            if not got:
                return
            high = next_high

    # -- entries into records -----------------------------------------------------------

    def _record(self, entry: Entry, kind: RecordKind, position: int) -> Record | RecordIssue:
        origin = f"{self.name} {entry.dn}"
        if entry.bad is not None:
            return RecordIssue(
                code=IssueCode.INVALID_VALUE,
                reason=f"{entry.bad}: a value is not UTF-8 text",
                key=entry.key,
                line=position,
                kind=kind,
                origin=origin,
            )
        return Record(
            key=entry.key, attributes=entry.attributes, kind=kind, line=position, origin=origin
        )

    def _reader(self, kind: RecordKind) -> EntryReader:
        """What turns the entries of a search for ``kind`` into :class:`Entry` values."""
        return EntryReader(self._plans[kind], lambda name: self._plan(name, kind))

    def _plan(self, name: str, kind: RecordKind) -> Plan:
        """How the values of an attribute the server named ``name`` go into an entry:
        decoded how, under which name in the record (None: not there), always a list
        or not, and what else they are (the key, the delta watermark, members)."""
        lowered = name.lower()
        out = self._wanted.get(lowered, name if self._everything else None)
        member = self.member_attribute.lower()
        role = OTHER
        if lowered == self.key.lower():
            role = KEY
        elif kind == "user" and self.delta is not None and lowered == self.delta.lower():
            role = MARK
        elif kind == "group" and (
            lowered == member or (parse_range(name) or ("",))[0].lower() == member
        ):
            role, out = MEMBERS, None  # members go to Record.members
        return _decoder(name), out, lowered in self.multi_valued, role

    def _stopped(self, kind: RecordKind, position: int, exc: Exception) -> RecordIssue:
        what = "users" if kind == "user" else "groups"
        return RecordIssue(
            code=IssueCode.READ_INCOMPLETE,
            reason=f"the search for {what} failed after {position} entries: {self._describe(exc)}",
            kind=kind,
            origin=self.name,
        )

    def _describe(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        return self._redact(f"{type(exc).__name__}: {text}")


def _resolves(host: str) -> bool:
    """True when ``host`` resolves to an address (asked after a failed connection, to
    say why in words ldap3 does not use)."""
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True


def _close(connection: Any) -> None:
    """Unbind, or at least close the socket of a connection that broke."""
    try:
        connection.unbind()
    except Exception:  # a broken connection: its socket is closed below
        logger.debug("unbinding from the directory failed", exc_info=True)
    sock = getattr(connection, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _filter(value: LdapFilter | str) -> LdapFilter:
    if isinstance(value, LdapFilter):
        return value
    return LdapFilter.parse(value)


def _decoder(name: str) -> Callable[[bytes], str]:
    """How the values of attribute ``name`` become text: GUIDs canonical, binary
    base64, text UTF-8 (UnicodeDecodeError when it is not)."""
    base = name.split(";", 1)[0].lower()
    if base in _GUID_ATTRIBUTES:
        return _guid_or_text
    if base in _BINARY_ATTRIBUTES or ";binary" in name.lower():
        return _base64
    return bytes.decode  # UTF-8, strict


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _guid_or_text(value: bytes) -> str:
    return guid_text(value) if len(value) == 16 else value.decode("utf-8")


def _first_text(entry: Mapping[str, Any], name: str) -> str | None:
    raw: Mapping[str, list[bytes]] = entry.get("raw_attributes") or {}
    values = raw.get(name)  # the server's spelling is most often the one asked for
    if values:
        return bytes(values[0]).decode("utf-8", "replace")
    for attribute, values in raw.items():
        if attribute.lower() == name.lower() and values:
            return bytes(values[0]).decode("utf-8", "replace")
    return None


def _newest(current: str | None, value: str | None, attribute: str) -> str | None:
    """The later of two watermark values (GeneralizedTime or an integer)."""
    if value is None:
        return current
    if current is None:
        return value
    if attribute == "uSNChanged":
        return value if int(value) > int(current) else current
    if len(value) == len(current) == 15 and value[14] == current[14] == "Z":
        return max(value, current)  # YYYYmmddHHMMSSZ, as OpenLDAP writes it: in order as text
    new, old = generalized_time(value), generalized_time(current)
    if new is None or old is None:
        return current
    return value if new > old else current


def _ldap3() -> Any:
    """The ``ldap3`` module, or a ConfigurationError saying how to install it."""
    try:
        with warnings.catch_warnings():
            # ldap3 2.9 imports names newer pyasn1 releases deprecate: not ours to show.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ldap3\.")
            import ldap3
            import ldap3.core.exceptions
    except ImportError:
        raise ConfigurationError(
            "LdapSource needs the ldap3 library: pip install 'scimsync[ldap]'"
        ) from None
    return ldap3
