"""Open a city-layout output directory with pandas (docs/summary.md "The output files and the
two layouts"): read members.parquet and community.csv, print their first rows, and check that
the members' yearly sums are the community's and summary.json's (60-minute steps: kW = kWh per
step). Run by scripts/city_outputs.sh; the Rust tests never run Python."""

import json
import sys

import pandas as pd

out = sys.argv[1]
members = pd.read_parquet(f"{out}/members.parquet")
community = pd.read_csv(f"{out}/community.csv")
summary = json.load(open(f"{out}/summary.json"))
print(members.head())
print(members.dtypes)
print(community.head())
steps_per_hour = 60 / summary["scenario"]["step_minutes"]
flows = ["pv_kw", "grid_import_kw", "grid_export_kw"]
for flow, key in zip(flows, ["pv_energy_kwh", "grid_import_kwh", "grid_export_kwh"]):
    from_members = members[flow].sum() / steps_per_hour
    from_community = community[flow].sum() / steps_per_hour
    from_summary = summary["community"][key]
    print(f"{flow}: members {from_members:.3f} kWh, community.csv {from_community:.3f} kWh, summary {from_summary:.3f} kWh")
    assert abs(from_members - from_summary) <= 1e-6 * max(1.0, abs(from_summary))
    assert abs(from_community - from_summary) <= 1e-6 * max(1.0, abs(from_summary))
print(f"{members['member'].nunique()} members, {len(members)} rows: OK")
