"""Emails and passwords as the gateway's models accept them: look-alikes are one address."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.models import Login, RegisterUser

TENANT = "t_" + "a" * 24
PASSWORD = "correct horse battery staple"


def register(email: str = "ada@school.edu", password: str = PASSWORD) -> RegisterUser:
    return RegisterUser(email=email, password=password, name="Ada", role="teacher")


@pytest.mark.parametrize(
    "variant",
    [
        "ada@school.edu",
        "ＡＤＡ@school.edu",  # full-width letters (NFKC folds them)
        "ａｄａ@school.edu",
        "a\u200bda@school.edu",  # zero-width space (a format character)
        "\ufeffada@school.edu",  # byte-order mark
        "a\u00adda@school.edu",  # soft hyphen
        "ada@ｓchool.edu",  # full-width letter in the domain
        "ada@SCHOOL.EDU",
        "ada@school.edu.",  # the root label's dot names the same domain
        " ada@school.edu ",
        "ada@school\u3002edu",  # ideographic full stop separates labels like '.'
    ],
)
def test_look_alike_emails_normalize_to_one_address(variant: str) -> None:
    assert register(variant).email == "ada@school.edu"
    assert Login(email=variant, password="x", tenant_id=TENANT).email == "ada@school.edu"


def test_international_domains_are_stored_in_their_ascii_form() -> None:
    assert register("ada@bücher.de").email == "ada@xn--bcher-kva.de"
    assert register("ada@BÜCHER.de").email == "ada@xn--bcher-kva.de"
    assert register("ada@xn--bcher-kva.de").email == "ada@xn--bcher-kva.de"


def test_local_part_is_lower_cased_and_may_be_unicode() -> None:
    # Decision (docs/decisions.md): local parts are compared case-insensitively, as providers do.
    assert register("Ada.Lovelace@School.edu").email == "ada.lovelace@school.edu"
    assert register("josé@school.edu").email == "josé@school.edu"
    assert register("jose\u0301@school.edu").email == "josé@school.edu"  # NFKC composes


@pytest.mark.parametrize(
    "bad",
    [
        "ada@" + "a" * 64 + ".edu",  # DNS label over 63 octets
        "ada@school..edu",  # empty label
        "ada@.school.edu",
        "ada@\ud800.edu",  # a lone surrogate cannot be encoded
        "a\ud800da@school.edu",
        "ada\ue000@school.edu",  # private use
        "a\x00da@school.edu",
        "ada@sch\x1bool.edu",
        "\u200b@school.edu",  # nothing left of the local part
        "ada@\u200b.edu",
        "ada@school",  # no dot in the domain
        "ada@exa mple.edu",
        "a" * 65 + "@school.edu",
        "ada@@school.edu",
    ],
)
def test_what_cannot_be_normalized_is_refused_naming_the_field(bad: str) -> None:
    for build in (lambda: register(bad), lambda: Login(email=bad, password="x", tenant_id=TENANT)):
        with pytest.raises(ValidationError) as err:
            build()
        assert [e["loc"] for e in err.value.errors()] == [("email",)]


@pytest.mark.parametrize(
    "bad",
    [
        " " * 10,
        " " * 30,
        "\t" * 12,
        "short pass",  # 9 characters besides the space
        "a long passphrase\x00",
        "a long\npassphrase",
        "a long\rpassphrase",
        "a long \x1b[31mpassphrase",
        "a long passphrase\x7f",
        "a long passphrase\x85",
    ],
)
def test_weak_or_control_character_passwords_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        register(password=bad)
    assert [e["loc"] for e in err.value.errors()] == [("password",)]


@pytest.mark.parametrize("good", [PASSWORD, "tenletters", "pässwörter ünd spaß", "  ten chars!!  "])
def test_reasonable_passwords_are_kept_exactly(good: str) -> None:
    assert register(password=good).password == good
