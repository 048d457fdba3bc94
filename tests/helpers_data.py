"""Where the tests' data lives: the one place a test finds a data set.

Every file ships with the repository (``tests/data/``, see its README.md; Telco is the bundled
``examples/churn.csv``), so a plain clone runs the tests. The small sets are whole; the large
ones are deterministic slices made by ``tests/data/make_slices.py``.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"

#: Telco Customer Churn, all 7,043 rows (byte-identical to the benchmark data set).
TELCO = REPO / "examples" / "churn.csv"

# Whole data sets.
PIMA = DATA / "pima_indians_diabetes.csv"
TITANIC = DATA / "titanic.csv"
PENGUINS = DATA / "palmer_penguins.csv"
CAR = DATA / "car_evaluation.csv"
INSURANCE = DATA / "medical_insurance_charges.csv"
ABALONE = DATA / "abalone.csv.gz"
WINE = DATA / "wine_quality_white.csv.gz"
AMES = DATA / "ames_house_prices.csv.gz"

# The first rows of a larger data set.
BIKES = DATA / "bike_sharing_hourly.csv.gz"  # 2,000 of 17,379 (2011-01-01 to 2011-03-29)
SENTIMENT = DATA / "sentiment_labelled_sentences.csv.gz"  # 1,500 of 3,000
SMS = DATA / "sms_spam_collection.csv.gz"  # 1,500 of 5,574
KDD = DATA / "kddcup99_10pct.csv.gz"  # 20,000 of 494,021

# Samples stratified by the target (or a rare column), in the source's row order.
ADULT = DATA / "adult_census_income.csv.gz"  # 10,000 of 32,561
BANK = DATA / "bank_marketing.csv.gz"  # 4,001 of 41,188, every level of each category
CALIFORNIA = DATA / "california_housing.csv.gz"  # 3,004 of 20,640, all 5 ISLAND rows

# Forecasting: long tables (one row per item and timestamp), whole series.
AIR_PASSENGERS = DATA / "air_passengers.csv"  # one monthly series (MS), 144 months
TOURISM = DATA / "australian_tourism_quarterly.csv.gz"  # 9 quarterly series (QS-JAN), 80 each
M4_HOURLY = DATA / "m4_hourly.csv.gz"  # H1, H2 (748 hours), H170, H171 (1,008 hours)
VICTORIA = DATA / "victoria_electricity_demand.csv.gz"  # one half-hourly series (UTC), 28 days
