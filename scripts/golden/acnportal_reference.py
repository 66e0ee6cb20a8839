"""Golden data for scg-ev's charging site: ACN-Sim (acnportal) on a Caltech week.

Reads the session fixture `crates/scg-ev/tests/data/caltech_2019-09-01_14.csv` (ACN-Data
export, Caltech), keeps the sessions arriving 2019-09-02 00:00 to 2019-09-09 00:00 local time,
and runs ACN-Sim with uncontrolled charging, EDF and LLF on 5-minute periods, recomputing every
period, for several site limits. Writes the delivered-energy percentages to
`crates/scg-ev/tests/data/acnportal_golden.json`.

Rounding is ACN-Sim's own (`acndata_events._datetime_to_timestamp`): arrival and departure are
floored to the period. Each session gets its own EVSE (0..32 A at 208 V = 6.656 kW) and an ideal
battery whose capacity is the energy the session really took (ACN-Sim's default battery for
ACN-Data), so requested energy = delivered energy of the data. The site limit is one aggregate
current constraint over every EVSE (limit kW / 208 V). scg-ev replays the same sessions with
`Knowledge::Actual` (ACN-Sim's policies see the true departure and energy).

Run through acnportal_reference.sh (pinned versions in a venv).
"""

import csv
import json
import sys
from datetime import datetime
from pathlib import Path

import warnings

import numpy as np
from acnportal import acnsim
from acnportal.algorithms import (
    SortedSchedulingAlgo,
    UncontrolledCharging,
    earliest_deadline_first,
    least_laxity_first,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "crates/scg-ev/tests/data/caltech_2019-09-01_14.csv"
OUT = ROOT / "crates/scg-ev/tests/data/acnportal_golden.json"
PERIOD_MIN = 5
VOLTAGE_V = 208.0
MAX_RATE_A = 32.0
MAX_POWER_KW = MAX_RATE_A * VOLTAGE_V / 1000.0
FROM, TO = "2019-09-02", "2019-09-09"
LIMITS_KW = [None, 50.0, 25.0]


def local_minute(dt):
    """Minutes since 1970-01-01 00:00 on the local wall clock (as scg-ev's ACN parser)."""
    naive = dt.replace(tzinfo=None)
    return int((naive - datetime(1970, 1, 1)).total_seconds() // 60)


def sessions():
    a = local_minute(datetime.fromisoformat(FROM))
    b = local_minute(datetime.fromisoformat(TO))
    out = []
    with open(FIXTURE, newline="") as f:
        for row in csv.DictReader(f):
            arr = datetime.fromisoformat(row["arrival"])
            dep = datetime.fromisoformat(row["departure"])
            arr_min = local_minute(arr)
            # The stay comes from the absolute instants (DST-safe), as in scg-ev.
            dep_min = arr_min + int((dep - arr).total_seconds() // 60)
            if a <= arr_min < b:
                out.append((row["session_id"], arr_min, dep_min, float(row["delivered_energy (kWh)"])))
    return out


def run(policy, limit_kw, sess):
    k0 = min(s[1] // PERIOD_MIN for s in sess)
    network = acnsim.ChargingNetwork()
    evs = []
    ids = []
    for i, (sid, arr_min, dep_min, kwh) in enumerate(sess):
        arrival = arr_min // PERIOD_MIN - k0
        departure = dep_min // PERIOD_MIN - k0
        if departure <= arrival:
            continue  # leaves before charging; counted as requested, nothing delivered
        station = f"S{i:04d}"
        ids.append(station)
        network.register_evse(acnsim.EVSE(station, max_rate=MAX_RATE_A), VOLTAGE_V, 0)
        batt = acnsim.Battery(kwh, 0, MAX_POWER_KW)
        evs.append(acnsim.EV(arrival, departure, kwh, station, sid, batt))
    # ACN-Sim needs at least one constraint; "no limit" is one that never binds.
    limit_a = 1e9 if limit_kw is None else limit_kw * 1000.0 / VOLTAGE_V
    network.add_constraint(acnsim.Current(ids), limit_a, name="site")
    if policy == "uncontrolled":
        algo = UncontrolledCharging()
    elif policy == "edf":
        algo = SortedSchedulingAlgo(earliest_deadline_first)
    else:
        algo = SortedSchedulingAlgo(least_laxity_first)
    algo.max_recompute = 1
    events = acnsim.EventQueue([acnsim.PluginEvent(ev.arrival, ev) for ev in evs])
    start = datetime(2019, 9, 2)
    sim = acnsim.Simulator(network, algo, events, start, period=PERIOD_MIN, verbose=False)
    sim.run()
    requested = sum(s[3] for s in sess)
    delivered = sum(ev.energy_delivered for ev in sim.ev_history.values())
    return requested, delivered


def main():
    # Uncontrolled charging ignores the site limit by design; ACN-Sim warns at every step.
    warnings.filterwarnings("ignore", message="Invalid schedule")
    sess = sessions()
    results = []
    for limit in LIMITS_KW:
        for policy in ["uncontrolled", "edf", "llf"]:
            req, dlv = run(policy, limit, sess)
            results.append(
                {
                    "policy": policy,
                    "site_limit_kw": limit,
                    "energy_requested_kwh": round(req, 6),
                    "energy_delivered_kwh": round(dlv, 6),
                    "energy_delivered_pct": round(100.0 * dlv / req, 6),
                }
            )
            print(results[-1], file=sys.stderr)
    import acnportal

    OUT.write_text(
        json.dumps(
            {
                "source": "acnportal " + getattr(acnportal, "__version__", "0.3.3") + ", numpy " + np.__version__,
                "fixture": FIXTURE.name,
                "from": FROM,
                "to": TO,
                "period_min": PERIOD_MIN,
                "voltage_v": VOLTAGE_V,
                "max_rate_a": MAX_RATE_A,
                "sessions": len(sess),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
