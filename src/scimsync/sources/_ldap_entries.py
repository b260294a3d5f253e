"""Search entries off the wire, for :class:`~scimsync.sources.LdapSource`.

ldap3 decodes every message it receives into a generic BER tree, then into raw *and*
formatted attribute dicts, through its configuration lookups: four fifths of a
directory read's time, for values the source decodes itself. So the source keeps the
entries out of that path: :class:`LeanReceiver` takes the bytes of each
``searchResEntry`` message as ldap3 receives it, and :class:`EntryReader` reads them
in one pass, from the BER straight into a record's attributes. ldap3 still does
everything else (connecting, TLS, binds, sending searches, their results and
controls, references), and decodes any entry not shaped as expected.

No ldap3 import here, but in :func:`as_dict` when an entry needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "KEY",
    "MARK",
    "MEMBERS",
    "OTHER",
    "Entry",
    "EntryReader",
    "LeanReceiver",
    "Plan",
    "as_dict",
    "is_search_entry",
    "taken",
]

#: How an attribute's values are taken: decoded by the function, put in the record
#: under the name (None: not put there), always a list or not, and its role.
Plan = tuple["Callable[[bytes], str]", "str | None", bool, int]
#: The roles of an attribute besides its values: none, the key, the delta watermark,
#: a group's members.
OTHER, KEY, MARK, MEMBERS = range(4)


class Entry:
    """One directory entry, as a record needs it."""

    __slots__ = ("attributes", "bad", "dn", "key", "mark", "members")

    def __init__(self, dn: str) -> None:
        self.dn = dn
        self.key: str | None = None
        #: The record's attributes: ``dn`` and those asked for, decoded.
        self.attributes: dict[str, Any] = {"dn": dn}
        #: The value of the delta attribute (``modifyTimestamp``, ``uSNChanged``), if read.
        self.mark: str | None = None
        #: A group's member values, by attribute name (``member`` or a range of it).
        self.members: list[tuple[str, list[str]]] = []
        #: The attribute holding a value that is not UTF-8 text, if any.
        self.bad: str | None = None


class EntryReader:
    """Turns the entries of one kind's search into :class:`Entry` values.

    An entry comes as the bytes of its LDAP message (the lean receiver's) and is read
    in one pass, from the BER straight into the record's attributes: this loop is
    where a read spends its time. An entry in any other shape (ldap3's decoded
    ``dn`` / ``raw_attributes``) goes through the same plans. ``plan_for`` makes the
    :data:`Plan` of an attribute name (the source's settings), ``plans`` keeps them.
    """

    def __init__(self, plans: dict[bytes | str, Plan], plan_for: Callable[[str], Plan]) -> None:
        # Attribute name (as the server spells it, bytes or text) -> how to take it.
        self.plans = plans
        self.plan_for = plan_for

    def __call__(self, connection: Any, entry: bytes | Mapping[str, Any]) -> Entry:
        if isinstance(entry, bytes):
            found = self.from_message(entry)
            if found is not None:
                return found
            entry = as_dict(connection, entry)
        raw = entry.get("raw_attributes") or {}
        return self.take(
            entry["dn"], [(name, [bytes(v) for v in values]) for name, values in raw.items()]
        )

    def plan(self, name: bytes | str) -> Plan:
        """The plan for an attribute the server named ``name`` (made once per name)."""
        plan = self.plans.get(name)
        if plan is None:
            text = name.decode("utf-8") if isinstance(name, bytes) else name
            plan = self.plans[name] = self.plan_for(text)
        return plan

    def take(self, dn: str, attributes: list[tuple[str, list[bytes]]]) -> Entry:
        """An entry from its attributes' raw values."""
        entry = Entry(dn)
        for name, raw in attributes:
            plan = self.plan(name)
            try:
                values = [plan[0](value) for value in raw]
            except UnicodeDecodeError:
                entry.bad = name
                continue
            self.place(entry, name, values, plan)
        return entry

    @staticmethod
    def place(entry: Entry, name: bytes | str, values: list[str], plan: Plan) -> None:
        """Put the decoded ``values`` of attribute ``name`` in their places."""
        if not values:
            return
        _, out, listed, role = plan
        if out is not None:
            entry.attributes[out] = values if listed or len(values) > 1 else values[0]
        if role == KEY:
            entry.key = values[0]
        elif role == MARK:
            entry.mark = values[0]
        elif role == MEMBERS:
            entry.members.append((name.decode() if isinstance(name, bytes) else name, values))

    def from_message(self, message: bytes) -> Entry | None:
        """An entry from the bytes of its ``searchResEntry`` message; None when they
        are not shaped as RFC 4511 says (ldap3 then decodes them).

        ``LDAPMessage ::= SEQUENCE { messageID INTEGER, [APPLICATION 4] SEQUENCE {
        objectName OCTET STRING, attributes SEQUENCE OF SEQUENCE { type OCTET STRING,
        vals SET OF OCTET STRING } }, controls [0] OPTIONAL }``. Each element is a tag
        byte, a length (one byte below 128, else 0x80 + the count of the bytes that
        follow holding it) and the value. This is the loop a read spends its time in:
        lengths are read inline, and values decoded as they are met, into the record
        (the key and the like through :meth:`place`).
        """
        plans = self.plans
        try:
            # The message's sequence, its messageID, the entry's sequence: their
            # lengths are skipped (what is inside is walked to its end).
            at = 2 if message[1] < 0x80 else 2 + (message[1] & 0x7F)
            at += 2 + message[at + 1]
            if message[0] != 0x30 or message[at] != 0x64:
                return None
            at += 2 if message[at + 1] < 0x80 else 2 + (message[at + 1] & 0x7F)
            if message[at] != 0x04:  # objectName
                return None
            size = message[at + 1]
            if size < 0x80:
                at += 2
            else:
                count = size & 0x7F
                size = int.from_bytes(message[at + 2 : at + 2 + count], "big")
                at += 2 + count
            dn = message[at : at + size].decode("utf-8")
            at += size
            if message[at] != 0x30:  # the attributes
                return None
            size = message[at + 1]
            if size < 0x80:
                at += 2
            else:
                count = size & 0x7F
                size = int.from_bytes(message[at + 2 : at + 2 + count], "big")
                at += 2 + count
            end = at + size
            entry = Entry(dn)
            attributes = entry.attributes
            while at < end:
                if message[at] != 0x30:  # one attribute
                    return None
                at += 2 if message[at + 1] < 0x80 else 2 + (message[at + 1] & 0x7F)
                size = message[at + 1]  # its type: a name is short
                if message[at] != 0x04 or size >= 0x80:
                    return None
                name = message[at + 2 : at + 2 + size]
                at += 2 + size
                if message[at] != 0x31:  # its values
                    return None
                size = message[at + 1]
                if size < 0x80:
                    at += 2
                else:
                    count = size & 0x7F
                    size = int.from_bytes(message[at + 2 : at + 2 + count], "big")
                    at += 2 + count
                stop = at + size
                plan = plans.get(name) or self.plan(name)
                decode, out, listed, role = plan
                values = []
                try:
                    while at < stop:
                        if message[at] != 0x04:
                            return None
                        size = message[at + 1]
                        if size < 0x80:
                            at += 2
                        else:
                            count = size & 0x7F
                            size = int.from_bytes(message[at + 2 : at + 2 + count], "big")
                            at += 2 + count
                        values.append(decode(message[at : at + size]))
                        at += size
                except UnicodeDecodeError:
                    entry.bad = name.decode("utf-8", "replace")
                    at = stop
                    continue
                if at != stop:
                    return None
                if role == OTHER and values:  # most attributes: no more to do
                    if out is not None:
                        attributes[out] = values if listed or len(values) > 1 else values[0]
                else:
                    self.place(entry, name, values, plan)
            if at != end:
                return None
        except (IndexError, UnicodeDecodeError):
            return None
        return entry


class LeanReceiver:
    """Keeps the search entries out of ldap3's decoding: installed on a connection's
    strategy, it keeps the bytes of each ``searchResEntry`` message in
    :attr:`entries` (read by :class:`EntryReader`); every other message (bind and
    search results, references, controls) goes on to ldap3 as before."""

    def __init__(self, receiving: Callable[[], list[bytes]]) -> None:
        self.receiving = receiving
        self.entries: list[bytes] = []

    def __call__(self) -> list[bytes]:
        # ldap3 takes an empty answer for the end of the session: receive until there
        # is a message to pass on (a search ends with its result), or the session ends.
        while True:
            received = self.receiving()
            passed = []
            for message in received:
                if is_search_entry(message):
                    self.entries.append(bytes(message))
                else:
                    passed.append(message)
            if passed or not received:
                return passed

    @classmethod
    def install(cls, connection: Any) -> None:
        strategy = getattr(connection, "strategy", None)
        receiving = getattr(strategy, "receiving", None)
        if strategy is not None and receiving is not None and connection.fast_decoder:
            strategy.receiving = cls(receiving)


def is_search_entry(message: bytes) -> bool:
    """Whether an LDAP message holds a ``searchResEntry`` (its operation's tag, after
    the message ID, is ``[APPLICATION 4]``)."""
    try:
        at = 2 if message[1] < 0x80 else 2 + (message[1] & 0x7F)
        return message[0] == 0x30 and message[at + 2 + message[at + 1]] == 0x64
    except IndexError:
        return False


def taken(connection: Any) -> list[bytes | Mapping[str, Any]]:
    """The entries of the search that just ended: those the lean receiver kept (which
    it forgets), then any ldap3 holds in ``connection.response``."""
    receiver = getattr(getattr(connection, "strategy", None), "receiving", None)
    found: list[bytes | Mapping[str, Any]] = []
    if isinstance(receiver, LeanReceiver):
        found.extend(receiver.entries)
        receiver.entries = []
    found.extend(
        entry for entry in connection.response or () if entry.get("type") == "searchResEntry"
    )
    return found


def as_dict(connection: Any, entry: bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    """An entry as ldap3 decodes it (``dn``, ``raw_attributes``)."""
    if not isinstance(entry, bytes):
        return entry
    from ldap3.utils.asn1 import decode_message_fast

    decoded: Mapping[str, Any] = connection.strategy.decode_response_fast(
        decode_message_fast(entry)
    )
    return decoded
