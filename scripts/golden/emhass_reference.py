"""EMHASS reference for scg-home's appliance scheduler (issue 13).

One day at 30-minute steps (EMHASS's default): a three-band import price, a feed-in price,
the PV of a 3 kWp roof and a household base load (all from closed-form shapes below, so the
day is reproducible), and three deferrable loads run as contiguous constant-power blocks
(EMHASS: semi-continuous + single constant block) within start/end windows.

EMHASS (pinned in emhass_reference.sh) optimises the schedule; this script re-prices EMHASS's
schedule with one formula shared with the Rust test (import at the import price, export at the
feed-in price) and writes the day, the windows, EMHASS's starts and that cost to
crates/scg-home/tests/data/emhass_day.json. The Rust test (crates/scg-home/tests/emhass.rs)
schedules the same loads with scg-home and checks it costs no more.
"""

import asyncio
import json
import logging
import math
import pathlib
import sys

import numpy as np
import pandas as pd

import emhass
from emhass import utils
from emhass.optimization import Optimization

STEPS = 48
DT_H = 0.5
OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/scg-home/tests/data/emhass_day.json"

# (name, power W, run steps, earliest start step, end step exclusive)
LOADS = [
    ("washing_machine", 2000.0, 4, 16, 40),
    ("dishwasher", 1500.0, 3, 36, 48),
    ("dryer", 1000.0, 4, 20, 44),
]


def day():
    hours = [k * DT_H for k in range(STEPS)]
    # Import price, EUR/kWh: F3 night, F2 shoulders, F1 day (Italian bands, weekday).
    price = [0.18 if (h < 7 or h >= 23) else (0.30 if 8 <= h < 19 else 0.24) for h in hours]
    feed_in = [0.08] * STEPS
    # PV, W: 3 kWp, clear-sky sine between 06:30 and 19:30, 85 % performance.
    pv = [
        max(0.0, 3000.0 * 0.85 * math.sin(math.pi * (h + 0.25 - 6.5) / 13.0)) if 6.5 <= h + 0.25 <= 19.5 else 0.0
        for h in hours
    ]
    # Base load, W: 250 W night, morning and evening peaks.
    base = [
        250.0
        + 600.0 * math.exp(-(((h + 0.25) - 7.5) ** 2) / 1.0)
        + 900.0 * math.exp(-(((h + 0.25) - 20.0) ** 2) / 2.0)
        + 200.0 * math.exp(-(((h + 0.25) - 13.0) ** 2) / 2.0)
        for h in hours
    ]
    return price, feed_in, pv, base


def grid_cost_eur(price, feed_in, pv, base, deferrable_w):
    total = 0.0
    for t in range(STEPS):
        net_kw = (base[t] + deferrable_w[t] - pv[t]) / 1000.0
        total += (net_kw * price[t] if net_kw > 0 else net_kw * feed_in[t]) * DT_H
    return total


async def run_emhass(price, feed_in, pv, base):
    logger = logging.getLogger("emhass_reference")
    logging.basicConfig(level=logging.WARNING)
    root = pathlib.Path(emhass.__file__).parent
    emhass_conf = {
        "root_path": root,
        "data_path": pathlib.Path("/tmp"),
        "defaults_path": root / "data/config_defaults.json",
        "associations_path": root / "data/associations.csv",
    }
    config = await utils.build_config(emhass_conf, logger, str(emhass_conf["defaults_path"]))
    config.update(
        {
            "optimization_time_step": 30,
            "costfun": "profit",
            "set_use_battery": False,
            "set_use_pv": True,
            "maximum_power_from_grid": 20000,
            "maximum_power_to_grid": 20000,
            "number_of_deferrable_loads": len(LOADS),
            "nominal_power_of_deferrable_loads": [l[1] for l in LOADS],
            "minimum_power_of_deferrable_loads": [0.0] * len(LOADS),
            "operating_hours_of_each_deferrable_load": [l[2] * DT_H for l in LOADS],
            "start_timesteps_of_each_deferrable_load": [l[3] for l in LOADS],
            "end_timesteps_of_each_deferrable_load": [l[4] for l in LOADS],
            "treat_deferrable_load_as_semi_cont": [True] * len(LOADS),
            "set_deferrable_load_single_constant": [True] * len(LOADS),
            "set_deferrable_startup_penalty": [0.0] * len(LOADS),
            "deferrable_load_max_cost": [0.0] * len(LOADS),
            "set_deferrable_max_startups": [0] * len(LOADS),
            "def_minimum_on_time": [0] * len(LOADS),
            "cost_forecast_per_deferrable_load": [None] * len(LOADS),
            "is_electric_load": [True] * len(LOADS),
            "lp_solver_mip_rel_gap": 0.0,
        }
    )
    _, secrets = await utils.build_secrets(emhass_conf, logger, no_response=True)
    params = await utils.build_params(emhass_conf, secrets, config, logger)
    retrieve_hass_conf, optim_conf, plant_conf = utils.get_yaml_parse(params, logger)
    index = pd.date_range("2025-06-16 00:00", periods=STEPS, freq="30min", tz=retrieve_hass_conf["time_zone"])
    df = pd.DataFrame({"unit_load_cost": price, "unit_prod_price": feed_in}, index=index)
    opt = Optimization(
        retrieve_hass_conf, optim_conf, plant_conf, "unit_load_cost", "unit_prod_price", "profit", emhass_conf, logger
    )
    res = opt.perform_dayahead_forecast_optim(df, pd.Series(pv, index=index), pd.Series(base, index=index))
    return res, opt.optim_status


def main():
    price, feed_in, pv, base = day()
    res, status = asyncio.run(run_emhass(price, feed_in, pv, base))
    starts = []
    deferrable = [0.0] * STEPS
    for i, (name, power, steps, lo, hi) in enumerate(LOADS):
        p = res[f"P_deferrable{i}"].to_numpy()
        on = [t for t in range(STEPS) if p[t] > 1.0]
        assert on, f"EMHASS did not run {name}"
        assert on == list(range(on[0], on[0] + steps)), f"{name}: not one block of {steps}: {on}"
        assert lo <= on[0] and on[-1] < hi, f"{name}: outside its window {lo}..{hi}: {on}"
        starts.append(on[0])
        for t in on:
            deferrable[t] += float(p[t])
    out = {
        "source": f"emhass {emhass.__version__} (pip), scripts/golden/emhass_reference.py",
        "optim_status": str(status),
        "step_hours": DT_H,
        "price_eur_per_kwh": price,
        "feed_in_eur_per_kwh": feed_in,
        "pv_w": pv,
        "base_load_w": base,
        "loads": [
            {"name": n, "power_w": p, "run_steps": s, "earliest_step": lo, "end_step": hi}
            for (n, p, s, lo, hi) in LOADS
        ],
        "emhass_starts": starts,
        "emhass_cost_eur": grid_cost_eur(price, feed_in, pv, base, deferrable),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"EMHASS status {status}, starts {starts}, cost {out['emhass_cost_eur']:.6f} EUR -> {OUT}")


if __name__ == "__main__":
    sys.exit(main())
