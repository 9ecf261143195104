"""Schemas: what the data must look like, inferred once, reviewed by a person, checked every run.

A :class:`Schema` lists each column with its type, nullability, range and quantiles, category set
and uniqueness. :func:`infer_schema` derives one from reference data; :meth:`Schema.save` writes it
as JSON (or YAML) that reads well in a merge request; :func:`check_schema` validates data lazily and lists
**every** violation (column, rule, count, examples and row labels), with tolerances where a rule
may hold only "mostly".

The file format (``schema_version`` 1)::

    {
      "schema_version": 1,
      "target": "income",
      "strict": true,
      "tolerance": {"in_range": 0.999, "in_set": 0.999},
      "columns": {
        "age": {"dtype": "int", "nullable": false, "min": 17, "max": 90,
                "quantiles": {"0.01": 17.0, "0.5": 37.0, "0.99": 74.0}},
        "sex": {"dtype": "str", "nullable": false, "categories": ["Female", "Male"]}
      }
    }

One module per concern: :mod:`~pytest_mlops.data.schema.model` (the schema, its violations and
its document form), :mod:`~pytest_mlops.data.schema.files` (JSON and YAML files),
:mod:`~pytest_mlops.data.schema.infer` (inference) and :mod:`~pytest_mlops.data.schema.validate`
(validation, in steps an engine that counts elsewhere reuses).
"""

from __future__ import annotations

from pytest_mlops.data.schema.infer import (
    QUANTILES,
    infer_schema,
    inferred_tolerance,
    unseen_share,
)
from pytest_mlops.data.schema.model import (
    DTYPES,
    INFERRED_RULES,
    RULES,
    SCHEMA_VERSION,
    TOLERANT_RULES,
    ColumnSchema,
    DType,
    Rule,
    Scalar,
    Schema,
    Violation,
    load_schema,
    parse_tolerance,
)
from pytest_mlops.data.schema.validate import (
    MAX_EXAMPLE_CHARS,
    N_EXAMPLES,
    check_schema,
    column_violations,
    mostly_by_rule,
    schema_result,
    structural_violations,
    with_tolerance,
)

__all__ = [
    "DTYPES",
    "INFERRED_RULES",
    "MAX_EXAMPLE_CHARS",
    "N_EXAMPLES",
    "QUANTILES",
    "RULES",
    "SCHEMA_VERSION",
    "TOLERANT_RULES",
    "ColumnSchema",
    "DType",
    "Rule",
    "Scalar",
    "Schema",
    "Violation",
    "check_schema",
    "column_violations",
    "infer_schema",
    "inferred_tolerance",
    "load_schema",
    "mostly_by_rule",
    "parse_tolerance",
    "schema_result",
    "structural_violations",
    "unseen_share",
    "with_tolerance",
]
