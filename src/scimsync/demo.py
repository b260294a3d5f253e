"""The bundled demo: 500 people in 20 groups, and the mapping that provisions them.

``scimsync demo`` (or ``python -m scimsync demo``) syncs this sample into an embedded
:class:`~scimsync.testing.ScimTestServer` over loopback HTTP. The pieces are here for
code and configuration files to reuse: :data:`MAPPING` is what a mapping for an HR
export usually looks like, and ``mapping = "scimsync.demo:MAPPING"`` names it in a
``scimsync.toml``::

    >>> from scimsync.demo import MAPPING, source
    >>> result = MAPPING.map(source())
    >>> (len(result.desired.users), len(result.desired.groups), result.complete)
    (500, 20, True)
    >>> ana = result.desired.users[0].user
    >>> (ana.user_name, ana.display_name, ana.enterprise.department)
    ('ana.andersson@example.com', 'Ana Andersson', 'Engineering')

The CSV's columns: ``employee_id`` (the key), ``email``, ``given_name``,
``family_name``, ``title``, ``department``, ``manager_id``, ``phone``, ``status``
(``active`` or ``inactive``) and ``groups`` (group names separated by ``;``).
``manager_id`` names the manager by *employee key*; :func:`~scimsync.mapping.ref`
turns it into the manager's id on the target (managers are created first).
"""

from __future__ import annotations

from pathlib import Path

from .mapping import Mapping, boolean, lower, ref, split, template
from .sources import CsvSource

__all__ = ["DATA_FILE", "ENTERPRISE", "KEY", "MAPPING", "source"]

#: The bundled sample: 500 people, one row each, in 20 groups.
DATA_FILE: Path = Path(__file__).parent / "_data" / "demo_users.csv"

#: The column holding each person's stable key.
KEY = "employee_id"

#: The enterprise extension's schema URN (RFC 7643 §4.3).
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

#: How a row of the sample becomes a SCIM user, and how its ``groups`` column becomes
#: group memberships (groups are created with the name as ``displayName``).
MAPPING = Mapping(
    users={
        "userName": lower("email"),
        "name.givenName": "given_name",
        "name.familyName": "family_name",
        "displayName": template("{given_name} {family_name}"),
        "title": "title",
        f"{ENTERPRISE}:department": "department",
        f"{ENTERPRISE}:employeeNumber": KEY,
        f"{ENTERPRISE}:manager.value": ref("manager_id"),
        'emails[type eq "work"].value': lower("email"),
        'emails[type eq "work"].primary': True,
        'phoneNumbers[type eq "work"].value': "phone",
        "active": boolean("status", true=["active"], false=["inactive"]),
    },
    member_of=split("groups", ";"),
)


def source() -> CsvSource:
    """The bundled sample as a :class:`~scimsync.sources.CsvSource`, keyed by employee id."""
    return CsvSource(DATA_FILE, key=KEY)
