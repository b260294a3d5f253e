"""A small LDAP server on 127.0.0.1 that answers as Active Directory does where OpenLDAP
cannot: large ``member`` attributes in ranges (``member;range=0-1499``), update
sequence numbers (``uSNChanged``, the root DSE's ``highestCommittedUSN``), binary
``objectGUID``, continuation references (referrals) after subtree results.

It speaks LDAPv3 over TCP (BER, written and read here), so the client under test,
``ldap3``, goes through its real network code: simple bind, paged searches (RFC 2696),
base searches for the next range, unbind. It holds its entries in memory; the tests
change them with :meth:`AdServer.modify`, which gives the entry the next USN, as a
domain controller does.

What it does not do: StartTLS, writes over the wire, extensible or substring filters
(a filter it cannot evaluate fails the search with ``unwillingToPerform``).
"""

from __future__ import annotations

import contextlib
import socketserver
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterator, Sequence

PAGED_RESULTS = "1.2.840.113556.1.4.319"

# -- BER, the subset LDAP uses -----------------------------------------------------------


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, *parts: bytes) -> bytes:
    """One BER element: tag, length, the parts as its content."""
    content = b"".join(parts)
    return bytes([tag]) + _length(len(content)) + content


def octets(value: str | bytes, tag: int = 0x04) -> bytes:
    return tlv(tag, value.encode() if isinstance(value, str) else value)


def integer(value: int, tag: int = 0x02) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def read_element(data: bytes, position: int = 0) -> tuple[int, bytes, int]:
    """(tag, content, position after) of the element at ``position``; IndexError when
    ``data`` ends first."""
    tag = data[position]
    first = data[position + 1]
    position += 2
    if first & 0x80:
        count = first & 0x7F
        size = int.from_bytes(data[position : position + count], "big")
        position += count
    else:
        size = first
    end = position + size
    if end > len(data):
        raise IndexError("short element")
    return tag, data[position:end], end


def elements(content: bytes) -> list[tuple[int, bytes]]:
    """The elements of a constructed value's content, in order."""
    found, position = [], 0
    while position < len(content):
        tag, value, position = read_element(content, position)
        found.append((tag, value))
    return found


def _integer(content: bytes) -> int:
    return int.from_bytes(content, "big", signed=True) if content else 0


# -- entries and filters -----------------------------------------------------------------

Entry = dict[str, list[bytes]]


def _values(entry: Entry, name: str) -> list[bytes]:
    lowered = name.lower()
    for attribute, values in entry.items():
        if attribute.lower() == lowered:
            return values
    return []


def _compare(left: bytes, right: bytes) -> int:
    """Integers as integers, the rest without case (as AD's string syntaxes)."""
    try:
        a, b = int(left), int(right)
    except ValueError:
        a_text, b_text = left.decode().lower(), right.decode().lower()
        return (a_text > b_text) - (a_text < b_text)
    return (a > b) - (a < b)


class UnsupportedFilterError(Exception):
    """A filter choice this server does not evaluate."""


def matches(entry: Entry, tag: int, content: bytes) -> bool:
    """Whether ``entry`` matches the BER filter ``(tag, content)``."""
    if tag == 0xA0:  # and
        return all(matches(entry, t, c) for t, c in elements(content))
    if tag == 0xA1:  # or
        return any(matches(entry, t, c) for t, c in elements(content))
    if tag == 0xA2:  # not
        ((inner_tag, inner),) = elements(content)
        return not matches(entry, inner_tag, inner)
    if tag == 0x87:  # present
        return bool(_values(entry, content.decode()))
    if tag in (0xA3, 0xA5, 0xA6):  # equality, greaterOrEqual, lessOrEqual
        (_, name), (_, wanted) = elements(content)
        found = _values(entry, name.decode())
        if tag == 0xA3:
            return any(_compare(value, wanted) == 0 for value in found)
        if tag == 0xA5:
            return any(_compare(value, wanted) >= 0 for value in found)
        return any(_compare(value, wanted) <= 0 for value in found)
    raise UnsupportedFilterError(hex(tag))


def _under(dn: str, base: str) -> bool:
    dn, base = dn.lower().replace(", ", ","), base.lower().replace(", ", ",")
    return not base or dn == base or dn.endswith("," + base)


# -- the server ----------------------------------------------------------------------------


class AdServer:
    """Active Directory's read side, on 127.0.0.1: ``url`` to connect to.

    ``entries`` maps DNs to attributes (name → list of bytes); ``accounts`` maps bind
    DNs to passwords; ``max_range`` is how many values of ``member`` one answer holds
    (AD's ``MaxValRange``, 1500); ``referral``: a continuation reference sent after
    every subtree search's entries, as AD sends for its application partitions.
    """

    def __init__(
        self,
        entries: dict[str, Entry],
        accounts: dict[str, str],
        *,
        max_range: int = 1500,
        referral: str | None = None,
    ) -> None:
        self.entries = {dn: {k: list(v) for k, v in attrs.items()} for dn, attrs in entries.items()}
        self.accounts = accounts
        self.max_range = max_range
        self.referral = referral
        self.usn = max(
            (int(v[0]) for e in self.entries.values() if (v := _values(e, "uSNChanged"))),
            default=1000,
        )
        self.lock = threading.Lock()
        #: Every search received: (base, scope, attributes, page size or None).
        self.searches: list[tuple[str, int, tuple[str, ...], int | None]] = []
        #: Entries per searchResDone, for paged searches.
        self.page_lengths: list[int] = []
        #: Called after each page is sent (the tests change entries mid-read with it).
        self.after_page: Callable[[int], None] | None = None
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server._serve(self.request)

        self._tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._tcp.daemon_threads = True
        self._thread = threading.Thread(target=self._tcp.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self._tcp.server_address[1]}"

    def __enter__(self) -> AdServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._tcp.shutdown()
        self._tcp.server_close()
        self._thread.join(timeout=10)

    def modify(self, dn: str, **changes: Sequence[bytes | str]) -> None:
        """Replace attributes of an entry and give it the next USN."""
        with self.lock:
            entry = self.entries[dn]
            for name, values in changes.items():
                for existing in [k for k in entry if k.lower() == name.lower()]:
                    del entry[existing]
                entry[name] = [v.encode() if isinstance(v, str) else v for v in values]
            self.usn += 1
            for existing in [k for k in entry if k.lower() == "usnchanged"]:
                del entry[existing]
            entry["uSNChanged"] = [str(self.usn).encode()]

    # -- the protocol ------------------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        buffer = b""
        bound = False
        with contextlib.suppress(OSError):
            while True:
                try:
                    _, message, used = read_element(buffer)
                except IndexError:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    continue
                buffer = buffer[used:]
                parts = elements(message)
                message_id = _integer(parts[0][1])
                op_tag, op = parts[1]
                controls = parts[2][1] if len(parts) > 2 and parts[2][0] == 0xA0 else b""
                if op_tag == 0x42:  # unbind
                    return
                if op_tag == 0x60:  # bind
                    bound = self._bind(sock, message_id, op)
                elif op_tag == 0x63:  # search
                    if not bound:
                        self._send(sock, message_id, self._done(0x65, 1, "bind first"))
                        continue
                    self._search(sock, message_id, op, controls)
                elif op_tag == 0x50:  # abandon: nothing to answer
                    continue
                else:
                    self._send(sock, message_id, self._done(0x78, 2, "not supported"))

    def _send(self, sock: socket.socket, message_id: int, op: bytes, controls: bytes = b"") -> None:
        sock.sendall(tlv(0x30, integer(message_id), op, controls))

    @staticmethod
    def _done(tag: int, code: int, message: str = "") -> bytes:
        return tlv(tag, integer(code, 0x0A), octets(""), octets(message))

    def _bind(self, sock: socket.socket, message_id: int, op: bytes) -> bool:
        _, (_, name), (auth_tag, password) = elements(op)
        dn = name.decode()
        ok = auth_tag == 0x80 and self.accounts.get(dn) == password.decode() and bool(password)
        # AD's words for a wrong password ("data 52e"), which ldap3 passes on.
        refused = "80090308: LdapErr: DSID-0C09044E, AcceptSecurityContext error, data 52e"
        code, text = (0, "") if ok else (49, refused)
        self._send(sock, message_id, self._done(0x61, code, text))
        return ok

    def _search(self, sock: socket.socket, message_id: int, op: bytes, controls: bytes) -> None:
        parts = elements(op)
        base = parts[0][1].decode()
        scope = _integer(parts[1][1])
        filter_tag, filter_content = parts[6]
        wanted = tuple(value.decode() for _, value in elements(parts[7][1]))
        page_size: int | None = None
        cookie = b""
        for _, control in elements(controls):
            fields = elements(control)
            if fields[0][1].decode() == PAGED_RESULTS:
                size, given = elements(elements(fields[-1][1])[0][1])
                page_size, cookie = _integer(size[1]), given[1]
        with self.lock:
            self.searches.append((base, scope, wanted, page_size))
            try:
                found = self._find(base, scope, filter_tag, filter_content)
            except UnsupportedFilterError as exc:
                self._send(sock, message_id, self._done(0x65, 53, f"filter {exc}"))
                return
            if found is None:
                self._send(sock, message_id, self._done(0x65, 32, "no such object"))
                return
            start = int(cookie or b"0")
            end = len(found) if page_size is None else min(len(found), start + page_size)
            answers = [self._entry(dn, entry, wanted) for dn, entry in found[start:end]]
        for answer in answers:
            self._send(sock, message_id, answer)
        last = end >= len(found)
        if last and scope == 2 and self.referral is not None:
            self._send(sock, message_id, tlv(0x73, octets(self.referral)))
        response_controls = b""
        if page_size is not None:
            next_cookie = b"" if last else str(end).encode()
            value = tlv(0x30, integer(0), octets(next_cookie))
            response_controls = tlv(0xA0, tlv(0x30, octets(PAGED_RESULTS), octets(value)))
            self.page_lengths.append(len(answers))
        self._send(sock, message_id, self._done(0x65, 0), response_controls)
        if page_size is not None and self.after_page is not None:
            self.after_page(len(self.page_lengths))

    def _find(
        self, base: str, scope: int, filter_tag: int, filter_content: bytes
    ) -> list[tuple[str, Entry]] | None:
        if scope == 0:  # base
            if base == "":
                root = {"objectClass": [b"top"], "highestCommittedUSN": [str(self.usn).encode()]}
                return [("", root)] if matches(root, filter_tag, filter_content) else []
            entry = next((e for dn, e in self.entries.items() if dn.lower() == base.lower()), None)
            if entry is None:
                return None
            return [(base, entry)] if matches(entry, filter_tag, filter_content) else []
        return [
            (dn, entry)
            for dn, entry in self.entries.items()
            if _under(dn, base)
            and dn.lower() != base.lower()
            and (scope == 2 or dn.lower().split(",", 1)[-1] == base.lower())
            and matches(entry, filter_tag, filter_content)
        ]

    def _entry(self, dn: str, entry: Entry, wanted: Sequence[str]) -> bytes:
        everything = "*" in wanted
        attributes: list[bytes] = []
        asked = {name.lower() for name in wanted}
        for name, values in entry.items():
            if not (everything or name.lower() in asked):
                continue
            if name.lower() == "member":
                attributes.append(self._range(name, values, 0))
            else:
                attributes.append(tlv(0x30, octets(name), tlv(0x31, *map(octets, values))))
        for name in wanted:  # member;range=<low>-*: the next range
            if name.lower().startswith("member;range="):
                low = int(name.split("=", 1)[1].split("-", 1)[0])
                attributes.append(self._range("member", _values(entry, "member"), low))
        return tlv(0x64, octets(dn), tlv(0x30, *attributes))

    def _range(self, name: str, values: list[bytes], low: int) -> bytes:
        """``member`` from ``low`` on, as AD answers: whole when it fits in one answer
        from the start, else ``member;range=<low>-<high>`` (``*`` for the last)."""
        if low == 0 and len(values) <= self.max_range:
            return tlv(0x30, octets(name), tlv(0x31, *map(octets, values)))
        chunk = values[low : low + self.max_range]
        high = "*" if low + self.max_range >= len(values) else str(low + len(chunk) - 1)
        return tlv(0x30, octets(f"{name};range={low}-{high}"), tlv(0x31, *map(octets, chunk)))


@contextlib.contextmanager
def running_ad(
    entries: dict[str, Entry], accounts: dict[str, str], **settings: Any
) -> Iterator[AdServer]:
    """An :class:`AdServer` serving ``entries``, stopped on exit."""
    with AdServer(entries, accounts, **settings) as server:
        yield server
