"""Privacy: direct identifiers in free columns, and k-anonymity over quasi-identifiers.

:func:`check_privacy` is the "anonymise patient records before training" gate. It scans text
columns for e-mail addresses, phone numbers, US social security numbers, payment card numbers
(validated by the Luhn checksum) and IPv4/IPv6 addresses with vectorised pandas string operations,
and measures k-anonymity: the smallest group of rows that share the same values of the declared
quasi-identifiers must hold at least *k* rows. Examples in the result are always masked.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from pytest_mlops.data.dataset import Dataset, frame_of
from pytest_mlops.errors import CheckError, DataError, choices_text, did_you_mean
from pytest_mlops.results import CheckResult, Op

__all__ = [
    "IDENTIFIERS",
    "Identifier",
    "card_number_valid",
    "check_privacy",
    "k_anonymity",
    "luhn_valid",
    "mask",
]

Identifier = Literal["email", "phone", "ssn", "card", "ipv4", "ipv6"]
IDENTIFIERS: tuple[Identifier, ...] = get_args(Identifier)
N_EXAMPLES = 3


@dataclass(frozen=True)
class _Detector:
    """A pattern (kept simple enough for RE2 as well as Python's ``re``) and an exact validator."""

    pattern: str
    valid: Callable[[str], bool]


def luhn_valid(number: str) -> bool:
    """Whether the digits of *number* pass the Luhn checksum (13 to 19 digits, as cards have)."""
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _ssn_valid(text: str) -> bool:
    digits = "".join(c for c in text if c.isdigit())
    if len(digits) != 9:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


#: Issuer ranges of payment cards (leading digits, inclusive) and the lengths they issue.
_ISSUERS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("4", "4", (13, 16, 19)),  # Visa
    ("51", "55", (16,)),  # Mastercard
    ("2221", "2720", (16,)),  # Mastercard 2-series
    ("34", "34", (15,)),  # American Express
    ("37", "37", (15,)),
    ("300", "305", tuple(range(14, 20))),  # Diners Club
    ("36", "36", tuple(range(14, 20))),
    ("38", "39", tuple(range(16, 20))),
    ("6011", "6011", tuple(range(16, 20))),  # Discover
    ("644", "649", tuple(range(16, 20))),
    ("65", "65", tuple(range(16, 20))),
    ("3528", "3589", tuple(range(16, 20))),  # JCB
    ("62", "62", tuple(range(16, 20))),  # UnionPay
    ("2200", "2204", tuple(range(16, 20))),  # Mir
    ("5018", "5018", tuple(range(13, 20))),  # Maestro
    ("5020", "5020", tuple(range(13, 20))),
    ("5038", "5038", tuple(range(13, 20))),
    ("5893", "5893", tuple(range(13, 20))),
    ("6304", "6304", tuple(range(13, 20))),
    ("6759", "6759", tuple(range(13, 20))),
    ("6761", "6763", tuple(range(13, 20))),
)


def card_number_valid(number: str) -> bool:
    """A payment card number: a known issuer's prefix and length, and the Luhn checksum.

    Luhn alone accepts one random number in ten; the issuer ranges cut that to about one in
    fifty, and :func:`scan_identifiers` discounts a column whose card-shaped numbers pass no
    more often than chance (an id column, not cards).
    """
    digits = "".join(c for c in number if c.isdigit())
    issued = any(
        lo <= digits[: len(lo)] <= hi and len(digits) in lengths for lo, hi, lengths in _ISSUERS
    )
    return issued and luhn_valid(digits)


def _card_shaped(number: str) -> bool:
    digits = "".join(c for c in number if c.isdigit())
    return any(
        lo <= digits[: len(lo)] <= hi and len(digits) in lengths for lo, hi, lengths in _ISSUERS
    )


def _ip_valid(version: int) -> Callable[[str], bool]:
    def valid(text: str) -> bool:
        try:
            return ipaddress.ip_address(text).version == version
        except ValueError:
            return False

    return valid


def _phone_valid(text: str) -> bool:
    return 7 <= sum(c.isdigit() for c in text) <= 15


def _always(text: str) -> bool:
    return True


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HEX = r"[0-9A-Fa-f]{1,4}"
DETECTORS: dict[Identifier, _Detector] = {
    # Bounded like the addresses they match (RFC 5321: 64-octet local part, 255-octet domain),
    # so a long run of text without '@' costs linear time, not quadratic.
    "email": _Detector(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,252}\.[A-Za-z]{2,63}", _always),
    # International (+CC ...) or North-American (555) 123-4567 / 555-123-4567 forms.
    "phone": _Detector(
        r"(?:\+[1-9][0-9]{0,2}[ .\-]?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,4}(?:[ .\-]?[0-9]{2,4}){2,4})"
        r"|(?:\(?\b[0-9]{3}\)?[ .\-][0-9]{3}[ .\-][0-9]{4}\b)",
        _phone_valid,
    ),
    "ssn": _Detector(r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b", _ssn_valid),
    "card": _Detector(r"\b(?:[0-9][ \-]?){12,18}[0-9]\b", card_number_valid),
    "ipv4": _Detector(rf"\b{_OCTET}(?:\.{_OCTET}){{3}}\b", _ip_valid(4)),
    "ipv6": _Detector(
        rf"(?:{_HEX}:){{7}}{_HEX}|(?:{_HEX}:){{1,7}}:(?:{_HEX}(?::{_HEX}){{0,6}})?|::(?:{_HEX}:){{0,6}}{_HEX}",
        _ip_valid(6),
    ),
}


#: A column named like this holds social security numbers, written with dashes or not.
_SSN_NAME = re.compile(
    r"(?i)(^|[^a-z])(ssn|social[ _-]?sec(urity)?([ _-]?(no|num|number))?)([^a-z]|$)"
)
_PLAIN_SSN = _Detector(r"^\s*[0-9]{3}[ ]?[0-9]{2}[ ]?[0-9]{4}\s*$", _ssn_valid)
#: kinds that can be written as a bare number (an integer column)
_NUMERIC_KINDS = frozenset({"card", "ssn"})
#: at least this many card-shaped numbers in a column before their pass rate is judged
_CHANCE_MIN = 20


def mask(kind: Identifier, text: str) -> str:
    """Show enough of an identifier to recognise its kind, never the identifier itself."""
    if kind == "email":
        local, _, domain = text.partition("@")
        head, _, tld = domain.rpartition(".")
        return f"{local[:1]}***@{head[:1]}***.{tld}"
    if kind == "ipv4":
        parts = text.split(".")
        return ".".join(parts[:1] + ["*"] * (len(parts) - 1))
    if kind == "ipv6":
        return text.split(":")[0] + ":****:…"
    keep = 4 if kind == "card" else 2
    digits = sum(c.isdigit() for c in text)
    seen = 0
    out = []
    for c in text:
        if c.isdigit():
            seen += 1
            out.append(c if seen > digits - keep else "*")
        else:
            out.append(c)
    return "".join(out)


def check_privacy(
    data: Dataset | pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    identifiers: Sequence[str] = IDENTIFIERS,
    max_identifier_rows: int = 0,
    quasi_identifiers: Sequence[str] = (),
    k: int = 5,
    max_at_risk_share: float = 0.0,
    name: str = "privacy",
) -> CheckResult:
    """Look for direct identifiers and measure k-anonymity.

    Parameters
    ----------
    data:
        A :class:`Dataset` or a DataFrame.
    columns:
        Columns to scan for identifiers; default every text and numeric column (numeric columns
        are read as whole numbers and scanned for card numbers, and for SSNs when named so).
    identifiers:
        Which kinds to look for: ``"email"``, ``"phone"``, ``"ssn"`` (US social security number),
        ``"card"`` (payment card, Luhn-checked), ``"ipv4"``, ``"ipv6"``.
    max_identifier_rows:
        How many (row, column) cells holding an identifier are tolerated; default none. A cell
        holding several kinds counts once.
    quasi_identifiers:
        Columns that together could single a person out (age, sex, ZIP code...); empty skips the
        k-anonymity check.
    k:
        The smallest group of rows sharing the quasi-identifier values must hold at least *k* rows.
    max_at_risk_share:
        Share of rows allowed in groups smaller than *k* (rows a release would suppress); default
        0, strict k-anonymity.

    Returns
    -------
    CheckResult
        Failed when identifiers are found beyond the tolerance or k-anonymity does not hold.
        ``tables["identifiers"]`` has counts and masked examples per column and kind;
        ``tables["smallest_classes"]`` the rarest quasi-identifier combinations.
    """
    frame, label = frame_of(data)
    kinds = _kinds(identifiers)
    _check_limits(k, max_at_risk_share)
    scan = _scan_columns(frame, columns, label)
    _require(frame, quasi_identifiers, "quasi-identifier column", label)
    parts = [_identifier_part(frame, scan, kinds, max_identifier_rows)]
    if quasi_identifiers:
        parts.append(_anonymity_part(frame, quasi_identifiers, k, max_at_risk_share))
    context: dict[str, str | int | float | bool | None] = {
        "n": len(frame),
        "split": label,
        "columns_scanned": len(scan),
    }
    return _result(parts, context, f"{label} (n={len(frame)})", name)


@dataclass(frozen=True)
class _Part:
    """What one half of the check (identifiers, k-anonymity) measured and concluded."""

    problem: str | None
    passed: str
    metric: str
    value: float
    op: Op
    bound: float
    metrics: dict[str, float]
    tables: dict[str, list[dict[str, Any]]]
    context: dict[str, str | int | float | bool | None] = field(default_factory=dict)
    details: str = ""


def _check_limits(k: int, max_at_risk_share: float) -> None:
    if k < 1:
        raise CheckError(f"check_privacy: 'k' must be >= 1, got {k!r}")
    if not 0.0 <= max_at_risk_share <= 1.0:
        raise CheckError(
            f"check_privacy: 'max_at_risk_share' must be in [0, 1], got {max_at_risk_share!r}"
        )


def _identifier_part(
    frame: pd.DataFrame, scan: list[str], kinds: Sequence[Identifier], allowed: int
) -> _Part:
    """Direct identifiers in the scanned columns; a cell holding two kinds counts once."""
    found: list[dict[str, Any]] = []
    cells = 0
    for c in scan:
        rows, hit = _scan(frame[c], kinds, c)
        found += rows
        cells += len(hit)
    problem = None
    if cells > allowed:
        kinds_found = sorted({f"{r['kind']} in {r['column']!r}" for r in found})
        problem = f"{cells} cells hold direct identifiers (allowed {allowed}): " + ", ".join(
            kinds_found[:6]
        )
    return _Part(
        problem=problem,
        passed=f"no direct identifiers in {len(scan)} columns",
        metric="identifier_cells",
        value=float(cells),
        op="<=",
        bound=float(allowed),
        metrics={"identifier_cells": float(cells)},
        tables={"identifiers": found},
        details="\n".join(
            f"{r['column']!r} {r['kind']}: {r['rows']} rows, e.g. {r['examples']}" for r in found
        ),
    )


def _anonymity_part(
    frame: pd.DataFrame, quasi_identifiers: Sequence[str], k: int, max_at_risk_share: float
) -> _Part:
    """k-anonymity over the quasi-identifiers, with the share of rows in classes under *k*."""
    anon = k_anonymity(frame, quasi_identifiers, k=k)
    smallest = anon.pop("smallest_classes")
    problem = None
    if anon["at_risk_share"] > max_at_risk_share:
        problem = (
            f"k-anonymity over {list(quasi_identifiers)} must be >= {k}: smallest class has "
            f"{int(anon['k_anonymity'])} rows; {int(anon['rows_at_risk'])} rows "
            f"({anon['at_risk_share']:.2%}) are in classes under {k} "
            f"(allowed {max_at_risk_share:.2%})"
        )
    return _Part(
        problem=problem,
        passed=f"{int(anon['k_anonymity'])}-anonymous over {list(quasi_identifiers)}",
        metric="k_anonymity",
        value=float(anon["k_anonymity"]),
        op=">=",
        bound=float(k),
        metrics={key: float(v) for key, v in anon.items()},
        tables={"smallest_classes": smallest},
        context={"k": k, "quasi_identifiers": ", ".join(quasi_identifiers)},
    )


def _result(
    parts: list[_Part],
    context: dict[str, str | int | float | bool | None],
    where: str,
    name: str,
) -> CheckResult:
    """One verdict from the parts: the identifiers lead unless they hold none, or are allowed."""
    identifiers = parts[0]
    head = identifiers
    if len(parts) > 1 and (not identifiers.value or identifiers.problem is None):
        head = parts[1]
    problems = [p.problem for p in parts if p.problem is not None]
    if problems:
        message = f"privacy of {where}: " + "; ".join(problems)
    else:
        message = f"{where}: " + ", ".join(p.passed for p in parts)
    return CheckResult(
        name=name,
        kind="privacy",
        status="failed" if problems else "passed",
        message=message,
        metric=head.metric,
        value=head.value,
        op=head.op,
        bound=head.bound,
        details=identifiers.details,
        metrics={key: v for p in parts for key, v in p.metrics.items()},
        context={**context, **{key: v for p in parts for key, v in p.context.items()}},
        tables={key: v for p in parts for key, v in p.tables.items()},
    )


def _kinds(identifiers: Sequence[str]) -> list[Identifier]:
    out: list[Identifier] = []
    for kind in identifiers:
        if kind not in IDENTIFIERS:
            raise CheckError(
                f"check_privacy: unknown identifier kind {kind!r}{did_you_mean(kind, IDENTIFIERS)}; "
                f"valid kinds are {choices_text(IDENTIFIERS)}"
            )
        out.append(kind)
    return out


def _require(frame: pd.DataFrame, columns: Sequence[str], role: str, label: str) -> None:
    present = [str(c) for c in frame.columns]
    for column in columns:
        if column not in present:
            raise DataError(f"{label} has no {role} {column!r}{did_you_mean(column, present)}")


def _scan_columns(frame: pd.DataFrame, columns: Sequence[str] | None, label: str) -> list[str]:
    if columns is not None:
        _require(frame, columns, "column to scan", label)
        return list(columns)
    return [
        str(c)
        for c in frame.columns
        if not (
            pd.api.types.is_bool_dtype(frame[c])
            or pd.api.types.is_datetime64_any_dtype(frame[c])
            or pd.api.types.is_timedelta64_dtype(frame[c])
        )
    ]


def scan_identifiers(
    series: pd.Series, kinds: Sequence[Identifier] = IDENTIFIERS, *, column: str = ""
) -> list[dict[str, Any]]:
    """Rows of *series* holding each kind of identifier, with masked examples.

    The pattern runs vectorised over the column; only the matching cells are validated exactly
    (Luhn and the issuer's prefix and length for cards, the address parser for IPs, the SSN
    area rules). A numeric column is read as whole numbers and scanned for cards and, when its
    name says so (``ssn``, ``social_security_number``...), for SSNs written without dashes.
    A column whose card-shaped numbers pass the Luhn check about as often as chance (one in
    ten) holds ids, not cards: they are not counted.
    """
    return _scan(series, kinds, column or str(series.name))[0]


def _scan(
    series: pd.Series, kinds: Sequence[Identifier], column: str
) -> tuple[list[dict[str, Any]], set[Any]]:
    """The per-kind rows of :func:`scan_identifiers` and the labels of the cells that hit."""
    ssn_named = bool(_SSN_NAME.search(column))
    text, numeric = _as_text(series, ssn_named)
    if text is None:
        return [], set()
    values = text.drop_duplicates()  # a column with few distinct values is scanned once each
    out: list[dict[str, Any]] = []
    cells: set[Any] = set()
    for kind in kinds:
        if numeric and kind not in _NUMERIC_KINDS:
            continue
        detectors = [DETECTORS[kind]] + ([_PLAIN_SSN] if kind == "ssn" and ssn_named else [])
        good = set().union(*(_valid_values(values, d, kind) for d in detectors))
        if not good:
            continue
        matched = text[text.isin(good)]
        cells.update(matched.index)
        shown = list(dict.fromkeys(matched))[:N_EXAMPLES]
        out.append(
            {
                "column": column,
                "kind": kind,
                "rows": len(matched),
                "share": round(len(matched) / max(len(series), 1), 6),
                "examples": ", ".join(mask(kind, _first_valid(v, detectors)) for v in shown),
            }
        )
    return out, cells


def _as_text(series: pd.Series, ssn_named: bool) -> tuple[pd.Series | None, bool]:
    """The non-missing cells as text, and whether the column is numeric.

    Numeric columns are read as whole numbers; the text is ``None`` when the column cannot hold a
    card or SSN (fractions, or numbers too short).
    """
    present = series.dropna()
    if not pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
        return present.astype(str), False
    values = present.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(values).all() or (values != np.floor(values)).any():
        return None, True
    if not ssn_named and not (np.abs(values) >= 1e12).any():  # cards have 13 or more digits
        return None, True
    whole = present if pd.api.types.is_integer_dtype(present) else present.astype("int64")
    text = whole.astype(str)
    return (text.str.zfill(9) if ssn_named else text), True


def _valid_values(values: pd.Series, detector: _Detector, kind: str) -> set[str]:
    if kind == "email":
        values = values[values.str.contains("@", regex=False)]
    hits = values[values.str.contains(detector.pattern, regex=True)].tolist()
    if kind != "card":
        return {v for v in hits if _any_valid(v, detector)}
    shaped = [v for v in hits if any(_card_shaped(c) for c in _candidates(v, detector))]
    good = {v for v in shaped if _any_valid(v, detector)}
    if len(shaped) >= _CHANCE_MIN and len(good) < len(shaped) / 2:
        return set()  # about one in ten passes, as for any numbers: ids, not cards
    return good


def _candidates(text: str, detector: _Detector) -> list[str]:
    return [m.group(0) for m in re.finditer(detector.pattern, text)]


def _any_valid(text: str, detector: _Detector) -> bool:
    return any(detector.valid(c.strip()) for c in _candidates(text, detector))


def _first_valid(text: str, detectors: Sequence[_Detector]) -> str:
    return next(c.strip() for d in detectors for c in _candidates(text, d) if d.valid(c.strip()))


def k_anonymity(
    frame: pd.DataFrame, quasi_identifiers: Sequence[str], *, k: int = 5
) -> dict[str, Any]:
    """The size of the smallest equivalence class over *quasi_identifiers*, and who is at risk.

    Missing values form their own class. Returns ``k_anonymity`` (smallest class), ``classes``,
    ``rows_at_risk`` (rows in classes under *k*), ``at_risk_share`` and ``smallest_classes`` (a
    table of the rarest combinations and their sizes).
    """
    sizes = frame.groupby(list(quasi_identifiers), dropna=False, sort=False).size()
    small = sizes[sizes < k]
    rarest = sizes.sort_values(kind="stable").head(5)
    rows = []
    for key, size in rarest.items():
        values = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **{q: _plain(v) for q, v in zip(quasi_identifiers, values, strict=True)},
                "rows": int(size),
            }
        )
    return {
        "k_anonymity": int(sizes.min()),
        "classes": len(sizes),
        "classes_under_k": len(small),
        "rows_at_risk": int(small.sum()),
        "at_risk_share": float(small.sum() / len(frame)),
        "smallest_classes": rows,
    }


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if not isinstance(value, str | int | float | bool | type(None)):
        return str(value)
    return value
