from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_mlops.config import find_config_file, layered, load_config, parse_cli_sets
from pytest_mlops.errors import ConfigError


def gate_params(project, name: str) -> dict[str, Any]:
    gate = project.gate(name)
    assert gate is not None, f"no gate {name!r}"
    return dict(gate.params)


def write(tmp_path: Path, text: str, name: str = "pyproject.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_layered_precedence_marker_over_cli_over_file_over_defaults():
    merged = layered(
        {"a": 1, "b": 1, "c": 1, "d": 1},
        {"b": 2, "c": 2, "d": 2},
        {"c": 3, "d": 3},
        {"d": 4, "e": None},
    )
    assert merged == {"a": 1, "b": 2, "c": 3, "d": 4}


def test_pyproject_table_is_read_and_paths_resolve_against_it(tmp_path):
    path = write(
        tmp_path,
        """
[tool.pytest_mlops]
model = "m.onnx"
reference = "data/train.csv"
target = "y"
sensitive = "sex"
[tool.pytest_mlops.gates]
accuracy = { metric = "roc_auc", min = 0.8 }
auc2 = { kind = "accuracy", metric = "f1", min = 0.5 }
""",
    )
    project = load_config(path)
    assert project.settings.reference == str(tmp_path / "data/train.csv")
    assert project.settings.sensitive == ("sex",)
    assert [(g.name, g.kind) for g in project.gates] == [
        ("accuracy", "accuracy"),
        ("auc2", "accuracy"),
    ]
    assert gate_params(project, "accuracy")["min"] == 0.8
    assert gate_params(project, "accuracy")["dataset"] == "current"  # default filled in


def test_mlops_toml_uses_top_level_keys_and_wins_over_pyproject(tmp_path):
    write(tmp_path, "[tool.pytest_mlops]\ntarget = 'a'\n")
    write(tmp_path, "target = 'b'\n", "mlops.toml")
    path = find_config_file(tmp_path)
    assert path is not None
    assert path.name == "mlops.toml"
    assert load_config(path).settings.target == "b"


def test_no_config_file_means_inert(tmp_path):
    write(tmp_path, "[tool.other]\nx = 1\n")
    assert find_config_file(tmp_path) is None


def test_cli_overrides_file(tmp_path):
    path = write(
        tmp_path,
        "[tool.pytest_mlops]\nseed = 1\n[tool.pytest_mlops.gates]\naccuracy = { min = 0.8 }\n",
    )
    cli = parse_cli_sets(["seed=7", "gates.accuracy.min=0.9"])
    project = load_config(path, cli)
    assert project.settings.seed == 7
    assert gate_params(project, "accuracy")["min"] == 0.9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[tool.pytest_mlops]\ntraget = 'y'\n",
            "unknown setting 'traget' - did you mean 'target'?",
        ),
        (
            "[tool.pytest_mlops.gates]\nacuracy = { min = 0.8 }\n",
            "unknown gate kind 'acuracy' - did you mean 'accuracy'?",
        ),
        (
            "[tool.pytest_mlops.gates]\naccuracy = { min = '0.88' }\n",
            "'min' must be a number, got the string '0.88'",
        ),
        (
            "[tool.pytest_mlops.gates]\naccuracy = { metric = 'roc-auc', min = 0.8 }\n",
            "did you mean 'roc_auc'?",
        ),
        (
            "[tool.pytest_mlops.gates]\naccuracy = { mni = 0.8 }\n",
            "gate 'accuracy': unknown setting 'mni' - did you mean 'min'?",
        ),
        (
            "[tool.pytest_mlops]\ninconclusive = 'ignore'\n",
            "'inconclusive' must be 'fail', 'pass' or 'skip'",
        ),
        ("[tool.pytest_mlops]\nseed = -1\n", "'seed' must be >= 0"),
        ("[tool.pytest_mlops\n", "not valid TOML"),
    ],
)
def test_bad_settings_name_the_setting_and_what_was_expected(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert expected in str(info.value)


def test_bad_error_lists_valid_choices(tmp_path):
    with pytest.raises(ConfigError, match=r"valid kinds are .*'accuracy'.*'schema'"):
        load_config(write(tmp_path, "[tool.pytest_mlops.gates]\nzzz = {}\n"))


def test_cli_set_syntax_errors():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_cli_sets(["seed"])
    with pytest.raises(ConfigError, match=r"gates\.<gate>\.<setting>"):
        parse_cli_sets(["gates.accuracy=1"])


def test_cli_set_for_an_undeclared_gate_says_so(tmp_path):
    path = write(tmp_path, "[tool.pytest_mlops.gates]\naccuracy = { min = 0.8 }\n")
    with pytest.raises(ConfigError, match=r"no gate named 'acuracy'.*did you mean 'accuracy'"):
        load_config(path, parse_cli_sets(["gates.acuracy.min=0.9"]))


def test_cli_values_parse_as_toml():
    assert parse_cli_sets(["a=0.5", "b=true", "c=['x', 'y']", "d=plain"]) == {
        "a": 0.5,
        "b": True,
        "c": ["x", "y"],
        "d": "plain",
    }


def test_explicit_config_that_does_not_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        find_config_file(tmp_path, "nope.toml")
