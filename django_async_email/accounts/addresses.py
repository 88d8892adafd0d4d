"""One normal form for email addresses, applied before any comparison, lookup or storage.

Invisible characters made two addresses that look alike compare different (and one of
them got past the "already has an account" check, then was delivered to the other): a
zero-width space after the address, a soft hyphen in the domain. So every address the
package is given goes through ``normalise_address`` first: Unicode NFKC, the
default-ignorable code points removed, the domain in its ASCII (IDNA) form.
"""

from __future__ import annotations

import re
import unicodedata

#: Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt): characters
#: that render as nothing. Python's unicodedata does not expose the property.
DEFAULT_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def normalise_address(value: str) -> str:
    """``value`` in the package's normal form (see the module docstring); unchanged where a
    part cannot be normalised (validation then refuses it)."""
    value = DEFAULT_IGNORABLE.sub("", unicodedata.normalize("NFKC", value)).strip()
    local, at, domain = value.rpartition("@")
    if not at:
        return value
    return f"{local}@{ascii_domain(domain)}"


def ascii_domain(domain: str) -> str:
    """The domain's IDNA (ASCII) form, lowercased; as given if it has none."""
    if domain.isascii():
        return domain.lower()
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return domain


def unicode_domain_form(address: str) -> str:
    """``address`` with an IDNA domain shown in Unicode (as a host may have stored it)."""
    local, at, domain = address.rpartition("@")
    if not at or "xn--" not in domain:
        return address
    try:
        return f"{local}@{domain.encode('ascii').decode('idna')}"
    except UnicodeError:
        return address
