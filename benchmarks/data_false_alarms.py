"""False alarms of the schema and integrity gates on data that has nothing wrong with it.

On UCI Adult's training split (32,561 rows), each trial reshuffles the rows with a new seed and
cuts them into two random halves A and B. The schema is inferred on A (with the default inferred
tolerance) and B is checked against it; the integrity gate runs on B with A as the reference
(train/test overlap) and default thresholds. Neither should fire: both halves come from the same
data. Both checks are deterministic given the data (no resampling), so the rate printed is the
share of random splits on which a gate fires, to compare with the design target (a gate that
fires on clean data gets switched off). It also checks that the gates do catch real faults.

    .venv/bin/python benchmarks/data_false_alarms.py [--trials 100] [--half-size 400]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from pytest_mlops import check_integrity, check_schema, infer_schema, load_dataset
from pytest_mlops.data.schema import inferred_tolerance

TRAIN = (
    Path(__file__).resolve().parent.parent / "examples" / "credit_scoring" / "data" / "train.csv.gz"
)


def halves(
    frame: pd.DataFrame, seed: int, size: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = size or len(frame) // 2
    a = frame.iloc[order[:cut]].reset_index(drop=True)
    b = frame.iloc[order[cut : 2 * cut]].reset_index(drop=True)
    return a, b


def trial(frame: pd.DataFrame, seed: int, size: int | None = None) -> dict[str, object]:
    a, b = halves(frame, seed, size)
    schema = infer_schema(load_dataset(a, target="income"))
    s = check_schema(load_dataset(b, name="half_b"), schema)
    i = check_integrity(
        load_dataset(b, target="income", name="half_b"),
        reference=load_dataset(a, target="income", name="half_a"),
        seed=seed,
    )
    tolerated = [r for r in s.tables["violations"] if r["status"] == "tolerated"]
    return {
        "schema_fired": s.failed,
        "integrity_fired": i.failed,
        "tolerated": len(tolerated),
        "tolerated_rules": [f"{r['column']}.{r['rule']}" for r in tolerated],
        # how close a tolerated violation came to its bound: share / allowed share
        "closest": max(
            ((r["fraction"] / (1 - r["mostly"]), f"{r['column']}.{r['rule']}") for r in tolerated),
            default=(0.0, "none"),
        ),
        "schema_message": s.message,
        "integrity_message": i.message,
        "overlap": i.metrics["overlap_share"],
        "power": i.metrics["max_feature_power"],
        "duplicates": i.metrics["duplicate_share"],
        "conflicts": i.metrics["conflicting_share"],
    }


def catches(frame: pd.DataFrame) -> list[tuple[str, bool]]:
    """The gates fire on data with real faults (seed 0 halves)."""
    a, b = halves(frame, 0)
    schema = infer_schema(a, target="income")
    bad = b.copy()
    bad.loc[: len(bad) // 100, "age"] = -1  # 1% impossible ages
    shifted = b.assign(hours_per_week=b["hours_per_week"] * 10)  # unit change
    renamed = b.rename(columns={"sex": "gender"})
    leak = b.assign(approved=np.where(b["income"] == 1, "yes", "no"))
    return [
        ("schema: 1% negative ages", check_schema(bad, schema).failed),
        ("schema: hours_per_week x10", check_schema(shifted, schema).failed),
        ("schema: renamed column", check_schema(renamed, schema).failed),
        (
            "integrity: B contains A's rows",
            check_integrity(pd.concat([b, a.head(2000)]), reference=a, target="income").failed,
        ),
        ("integrity: a leaking feature", check_integrity(leak, target="income").failed),
        ("integrity: duplicated B", check_integrity(pd.concat([b, b]), target="income").failed),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument(
        "--half-size",
        type=int,
        help="rows per half (default: half the data); small halves test the inferred tolerance",
    )
    args = parser.parse_args()
    frame = pd.read_csv(TRAIN)
    start = time.perf_counter()
    rows = [trial(frame, seed, args.half_size) for seed in range(args.trials)]
    elapsed = time.perf_counter() - start
    n = args.trials
    half = args.half_size or len(frame) // 2
    print(
        f"UCI Adult train split: {len(frame)} rows, {n} random splits into two halves of "
        f"{half} rows ({elapsed:.1f} s)"
    )
    print(
        f"inferred tolerance for {half} rows: mostly={inferred_tolerance(half)} (in_range, in_set)"
    )
    for gate in ("schema", "integrity"):
        fired = sum(bool(r[f"{gate}_fired"]) for r in rows)
        ci = stats.binomtest(fired, n).proportion_ci(0.95, method="exact")
        print(
            f"{gate:<10} false alarms: {fired}/{n} = {fired / n:.1%} "
            f"(95% CI {ci.low:.1%} to {ci.high:.1%}); deterministic check, target 0"
        )
        for r in rows:
            if r[f"{gate}_fired"]:
                print(f"    fired: {r[f'{gate}_message']}")
    tolerated = np.array([r["tolerated"] for r in rows])
    rules: dict[str, int] = {}
    for r in rows:
        for key in r["tolerated_rules"]:  # type: ignore[attr-defined]
            rules[key] = rules.get(key, 0) + 1
    closest, where = max(r["closest"] for r in rows)  # type: ignore[type-var]
    print(
        f"schema: tolerated violations per trial mean {tolerated.mean():.2f}, max {tolerated.max()}; "
        f"the closest came to {closest:.0%} of its allowed share ({where})"
    )
    print(
        "    tolerated, by column and rule (trials): "
        + ", ".join(f"{k} {v}" for k, v in sorted(rules.items(), key=lambda kv: -kv[1]))
    )
    for key, bound in (
        ("overlap", 0.01),
        ("power", 0.9),
        ("duplicates", 0.05),
        ("conflicts", 0.01),
    ):
        top = max(float(r[key]) for r in rows)
        margin = f"margin x{bound / top:.1f}" if top > 0 else "never seen"
        print(f"integrity {key:<10}: max over trials {top:.4f} vs bound {bound} ({margin})")
    print("power (caught on real faults):")
    for label, fired in catches(frame):
        print(f"    {'CAUGHT' if fired else 'MISSED'}  {label}")


if __name__ == "__main__":
    main()
