"""One canonical form per email address, applied before uniqueness checks and at login.

Without it `ａｄａ@school.edu` (full-width), `a\\u200bda@school.edu` (zero-width space) and
`ada@ｓchool.edu` are three more accounts that look exactly like Ada's. The steps:

1. NFKC: compatibility characters (full-width, ligatures, `。`) become their plain forms and
   combining sequences compose, so visually equal input is equal text.
2. Unicode format characters (category Cf: zero-width spaces and joiners, BOM, soft hyphen,
   bidi controls) are removed; they are invisible and never part of a real address.
3. What is left must be printable: control, private-use, unassigned and lone-surrogate code
   points, whitespace, or anything but exactly one `@` are refused (ValueError → 422 `email`).
4. The domain is lower-cased and IDNA-encoded (stdlib `idna` codec, IDNA 2003 with nameprep:
   pure Python, so it runs in Pyodide), stored in its ASCII form (`xn--…`); a trailing root dot
   is dropped. Labels must be host names (letters, digits, inner hyphens; 1-63 octets), the
   domain ≤253 octets, and it needs a dot.
5. The local part is lower-cased too. RFC 5321 lets a server treat it case-sensitively, but the
   providers people use do not, and two accounts that differ only in case are in practice one
   person typing differently (docs/decisions.md).
"""

from __future__ import annotations

import re
import unicodedata

MAX_LOCAL_CHARS = 64
MAX_DOMAIN_CHARS = 253
MAX_EMAIL_CHARS = 254
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
_IDEOGRAPHIC_STOP = "\u3002"  # a label separator in IDNA (RFC 3490 §3.1); NFKC keeps it
_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")  # letters, digits, hyphens


def normalize_email(value: str) -> str:
    text = unicodedata.normalize("NFKC", value.strip())
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in text):
        raise ValueError("not an email address: it holds invisible or control characters")
    local, at, domain = text.partition("@")
    if not at or "@" in domain or not local:
        raise ValueError("not an email address")
    local = local.lower()
    if len(local) > MAX_LOCAL_CHARS:
        raise ValueError(f"not an email address: the part before @ exceeds {MAX_LOCAL_CHARS}")
    email = f"{local}@{_domain(domain)}"
    if len(email) > MAX_EMAIL_CHARS:
        raise ValueError(f"not an email address: longer than {MAX_EMAIL_CHARS} characters")
    return email


def _domain(domain: str) -> str:
    domain = domain.lower().replace(_IDEOGRAPHIC_STOP, ".").removesuffix(".")
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        raise ValueError("not an email address: the domain needs labels separated by dots")
    try:
        # Label by label: the codec's errors then say which label, and empty labels are ours.
        ascii_labels = [label.encode("idna").decode("ascii") for label in labels]
    except UnicodeError as exc:
        raise ValueError("not an email address: the domain is not a valid host name") from exc
    encoded = ".".join(ascii_labels).lower()
    if len(encoded) > MAX_DOMAIN_CHARS or not all(
        _HOST_LABEL.match(label.lower()) for label in ascii_labels
    ):
        raise ValueError("not an email address: the domain is not a valid host name")
    return encoded
