"""Direct identifiers in free text, and k-anonymity over quasi-identifiers."""

from __future__ import annotations

import pandas as pd
import pytest

from pytest_mlops import CheckError, DataError, check_privacy
from pytest_mlops.data.privacy import k_anonymity, luhn_valid, mask, scan_identifiers

NOTES = {
    "email": ["write to jane.doe+x@mail.example.org please"],
    "phone": ["call +44 20 7946 0958", "office (415) 555-0132", "415-555-0199"],
    "ssn": ["ssn 123-45-6789"],
    "card": ["paid with 4111 1111 1111 1111", "card 5500-0000-0000-0004"],
    "ipv4": ["from 192.168.10.20"],
    "ipv6": ["from 2001:db8::8a2e:370:7334", "fe80::1"],
}
CLEAN = [
    "nothing to see",
    "invalid ssn 000-12-3456",
    "card 4111 1111 1111 1112",  # fails Luhn
    "version 1.2.3",
    "ip 999.1.1.1",
    "meeting at 10:30",
    "order 12345",
    None,
]


def notes_frame() -> pd.DataFrame:
    text = [t for texts in NOTES.values() for t in texts] + CLEAN
    return pd.DataFrame({"notes": text, "amount": range(len(text))})


@pytest.mark.parametrize("storage", ["str", "object"])
def test_each_identifier_kind_is_found_and_nothing_else(storage):
    frame = notes_frame().astype({"notes": storage})
    found = {row["kind"]: row["rows"] for row in scan_identifiers(frame["notes"], column="notes")}
    assert found == {kind: len(texts) for kind, texts in NOTES.items()}


def test_luhn_against_known_numbers():
    assert luhn_valid("4111 1111 1111 1111")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111 1111 1111 1112")
    assert not luhn_valid("0000 0000 0000 0000")  # a run of one digit is not a card
    assert not luhn_valid("42")


def test_examples_are_masked_never_full():
    result = check_privacy(notes_frame())
    assert result.failed
    assert result.metrics["identifier_cells"] == sum(len(t) for t in NOTES.values())
    shown = " ".join(row["examples"] for row in result.tables["identifiers"]) + result.details
    for secret in (
        "jane.doe",
        "7946 0958",
        "555-0132",
        "123-45-6789",
        "4111 1111 1111 1111",
        "192.168.10.20",
        "8a2e:370:7334",
    ):
        assert secret not in shown + result.message
    assert mask("card", "4111 1111 1111 1111") == "**** **** **** 1111"
    assert mask("email", "jane.doe@mail.example.org") == "j***@m***.org"
    assert mask("ssn", "123-45-6789") == "***-**-**89"
    assert mask("ipv4", "192.168.10.20") == "192.*.*.*"


def test_only_text_columns_are_scanned_by_default_and_kinds_can_be_chosen():
    frame = pd.DataFrame({"phone": [4155550132] * 3, "notes": ["fine"] * 3})
    assert check_privacy(frame).passed
    scanned = check_privacy(frame.assign(notes="a@b.io"), identifiers=["phone"])
    assert scanned.passed
    tolerated = check_privacy(frame.assign(notes="a@b.io"), max_identifier_rows=3)
    assert tolerated.passed


def test_k_anonymity_equals_the_smallest_group(adult_train):
    qi = ["sex", "race"]
    sizes = adult_train.groupby(qi).size()
    result = check_privacy(adult_train, quasi_identifiers=qi, k=int(sizes.min()))
    assert result.passed
    assert result.value == sizes.min()
    assert result.tables["smallest_classes"][0]["rows"] == sizes.min()
    too_strict = check_privacy(adult_train, quasi_identifiers=qi, k=int(sizes.min()) + 1)
    assert too_strict.failed
    assert f"smallest class has {sizes.min()} rows" in too_strict.message


def test_rows_at_risk_and_suppression_allowance(adult_train):
    qi = ["age", "sex", "race", "native_country"]
    sizes = adult_train.groupby(qi, dropna=False).size()
    anon = k_anonymity(adult_train, qi, k=5)
    assert anon["k_anonymity"] == 1
    assert anon["rows_at_risk"] == sizes[sizes < 5].sum()
    assert anon["classes"] == len(sizes)
    share = anon["at_risk_share"]
    assert check_privacy(adult_train, quasi_identifiers=qi, k=5).failed
    assert check_privacy(
        adult_train, quasi_identifiers=qi, k=5, max_at_risk_share=share + 1e-9
    ).passed


def test_missing_values_form_their_own_class():
    frame = pd.DataFrame({"zip": ["0150", "0150", None], "sex": ["F", "F", "M"]})
    assert k_anonymity(frame, ["zip", "sex"])["classes"] == 2
    assert k_anonymity(frame, ["zip", "sex"])["k_anonymity"] == 1


def test_bad_input_is_named():
    frame = notes_frame()
    with pytest.raises(DataError, match=r"the data has no quasi-identifier column 'ag'"):
        check_privacy(frame, quasi_identifiers=["ag"])
    with pytest.raises(DataError, match=r"no column to scan 'note' - did you mean 'notes'\?"):
        check_privacy(frame, columns=["note"])
    with pytest.raises(
        CheckError, match=r"unknown identifier kind 'mail' - did you mean 'email'\?"
    ):
        check_privacy(frame, identifiers=["mail"])
    with pytest.raises(CheckError, match=r"'k' must be >= 1"):
        check_privacy(frame, quasi_identifiers=["amount"], k=0)


def _random_ids(n: int, seed: int = 0) -> list[int]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [int(x) for x in rng.integers(10**15, 10**16, size=n, dtype=np.int64)]


@pytest.mark.parametrize("as_text", [False, True], ids=["int64", "text"])
def test_random_sixteen_digit_ids_are_not_cards(as_text):
    ids = _random_ids(2000)
    assert sum(luhn_valid(str(i)) for i in ids) > 150  # Luhn alone: about one in ten
    column = [str(i) for i in ids] if as_text else ids
    result = check_privacy(pd.DataFrame({"order_id": column}))
    assert result.passed, result.message
    assert result.metrics["identifier_cells"] == 0


def test_card_numbers_need_an_issuer_prefix_and_length():
    from pytest_mlops.data.privacy import card_number_valid

    assert card_number_valid("4111 1111 1111 1111")
    assert card_number_valid("378282246310005")
    assert card_number_valid("5500-0000-0000-0004")
    assert card_number_valid("6011111111111117")
    assert luhn_valid("1234567812345670")
    assert not card_number_valid("1234567812345670")
    assert card_number_valid("4222222222222")  # Visa, 13 digits
    assert luhn_valid("42222222222226")
    assert not card_number_valid("42222222222226")


def test_integer_ssn_and_card_columns_are_scanned_by_default():
    frame = pd.DataFrame(
        {
            "ssn": [123456789, 78051120, 219099999, None],  # 078-05-1120 lost its zero
            "card": [4111111111111111, 5500000000000004, 6011111111111117, 4012888888881881],
            "age": [34, 51, 29, 40],
        }
    )
    result = check_privacy(frame)
    found = {(r["column"], r["kind"]): r["rows"] for r in result.tables["identifiers"]}
    assert found == {("ssn", "ssn"): 3, ("card", "card"): 4}
    assert result.metrics["identifier_cells"] == 7
    assert "123-45-6789" not in result.details
    assert "4111111111111111" not in result.details


@pytest.mark.parametrize("name", ["ssn", "SSN", "social_security_number", "customer_ssn"])
def test_an_unformatted_ssn_column_is_found_by_its_name(name):
    frame = pd.DataFrame({name: ["123456789", "219-09-9999", "078 05 1120", "000000000"]})
    result = check_privacy(frame)
    assert result.metrics["identifier_cells"] == 3  # 000000000 is not a valid SSN


def test_nine_digit_numbers_in_other_columns_are_not_ssns():
    frame = pd.DataFrame({"zip_plus_4": ["123456789", "219099999"], "lessons": [123456789, 2]})
    assert check_privacy(frame).metrics["identifier_cells"] == 0


def test_a_cell_with_two_identifiers_counts_once():
    frame = pd.DataFrame({"notes": ["mail jane@example.org or call 415-555-0199"] * 2000})
    result = check_privacy(frame)
    assert result.metrics["identifier_cells"] == 2000
    assert {r["kind"]: r["rows"] for r in result.tables["identifiers"]} == {
        "email": 2000,
        "phone": 2000,
    }
    assert result.message.startswith("privacy of the data (n=2000): 2000 cells hold")


def test_long_cells_are_scanned_in_linear_time():
    # The unbounded e-mail pattern is quadratic on a long run of letters under Python's re (which
    # finds the examples in a cell, and scans every cell where pandas has no pyarrow): a million
    # letters before an address took hours. A child process turns a regression into a timeout.
    import subprocess
    import sys

    code = (
        "import pandas as pd\n"
        "from pytest_mlops import check_privacy\n"
        "cells = ['a' * 1_000_000 + ' jane@example.org', 'x@' + 'b' * 1_000_000, '1' * 10**6]\n"
        "print(check_privacy(pd.DataFrame({'notes': cells})).metrics['identifier_cells'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.strip() == "1.0"
