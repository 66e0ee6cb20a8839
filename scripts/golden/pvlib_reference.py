#!/usr/bin/env python3
"""pvlib's hourly PV for a real EPW year with scg's model chain: the golden data of
crates/scg-resource/tests/pvlib_epw.rs. Run through pvlib_reference.sh (pinned versions).

    python3 pvlib_reference.py FILE.epw[.gz] > pvlib_chicago_hourly.csv

The chain (the same parameters as the Rust test):
- array: 10 kWp, tilt 35 deg, azimuth -20 deg in scg's convention (0 = south, west positive,
  so -20 = 20 deg east of south) = 160 deg in pvlib's (0 = north, 90 = east, 180 = south);
  ground reflectance 0.2; HOMER NOCT cell temperature with NOCT 45 C, efficiency 20 %,
  temperature coefficient -0.4 %/C, tau-alpha 0.9; derating 0.8.
- clock: EPW hours are hour-ending local standard time (UTC-6 for Chicago); each hour is
  evaluated at its midpoint (hour - 30 min) in the year 2007 (scg's "homer" year, 1 Jan =
  Monday, 365 days); 29 February does not occur.
- sun: pvlib.solarposition.get_solarposition(method='nrel_numpy') = NREL SPA; the geometric
  (unrefracted) `zenith` is used, as scg has no refraction.
- extraterrestrial: get_extra_radiation(method='spencer', solar_constant=1367).
- path "measured": the EPW's DNI, DHI and GHI as they are.
- path "decompose": pvlib.irradiance.erbs(GHI, zenith, doy) -> DNI, DHI (its defaults:
  min_cos_zenith=0.065, max_zenith=87).
- transposition: get_total_irradiance(model='reindl') (HDKR) with albedo 0.2.
- cell temperature: HOMER's NOCT energy balance (pvlib has no HOMER model; the closed form of
  Duffie & Beckman / HOMER is written below, the same equation scg uses).
- power: P = Y f (G_T/1000) (1 + alpha (T_c - 25)), clipped at zero (HOMER; = pvwatts_dc x f).
"""

import gzip
import sys

import numpy as np
import pandas as pd
import pvlib
from pvlib import irradiance, solarposition

CAPACITY_KW = 10.0
TILT_DEG = 35.0
AZIMUTH_SCG_DEG = -20.0
AZIMUTH_PVLIB_DEG = 180.0 + AZIMUTH_SCG_DEG
ALBEDO = 0.2
NOCT_C = 45.0
EFFICIENCY = 0.20
ALPHA_PER_C = -0.004
TAU_ALPHA = 0.9
DERATE = 0.8
SOLAR_CONSTANT = 1367.0
YEAR = 2007


def read_epw(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        lines = f.read().splitlines()
    loc = lines[0].split(",")
    lat, lon, tz = float(loc[6]), float(loc[7]), float(loc[8])
    rows = []
    for line in lines[8:]:
        if not line.strip():
            continue
        x = line.split(",")
        month, day, hour = int(x[1]), int(x[2]), int(x[3])
        if month == 2 and day == 29:
            continue
        rows.append((month, day, hour, float(x[6]), float(x[13]), float(x[14]), float(x[15])))
    df = pd.DataFrame(rows, columns=["month", "day", "hour", "temp_air", "ghi", "dni", "dhi"])
    return lat, lon, tz, df


def homer_cell_temperature(poa, temp_air):
    k = (NOCT_C - 20.0) * poa / 800.0
    return (temp_air + k * (1.0 - EFFICIENCY * (1.0 - ALPHA_PER_C * 25.0) / TAU_ALPHA)) / (
        1.0 + k * ALPHA_PER_C * EFFICIENCY / TAU_ALPHA
    )


def power_kw(poa, temp_air):
    t_cell = homer_cell_temperature(poa, temp_air)
    p = CAPACITY_KW * DERATE * poa / 1000.0 * (1.0 + ALPHA_PER_C * (t_cell - 25.0))
    return np.maximum(p, 0.0)


def chain(times, solpos, dni, ghi, dhi, dni_extra):
    total = irradiance.get_total_irradiance(
        TILT_DEG, AZIMUTH_PVLIB_DEG, solpos["zenith"], solpos["azimuth"],
        dni, ghi, dhi, dni_extra=dni_extra, albedo=ALBEDO, model="reindl",
    )
    return total["poa_global"].fillna(0.0).clip(lower=0.0)


def main():
    lat, lon, tz, df = read_epw(sys.argv[1])
    start = pd.Timestamp(f"{YEAR}-01-01")
    local = [
        start + pd.Timedelta(days=pd.Timestamp(YEAR, m, d).dayofyear - 1, hours=h) - pd.Timedelta(minutes=30)
        for m, d, h in zip(df.month, df.day, df.hour)
    ]
    times = pd.DatetimeIndex(local).tz_localize(f"Etc/GMT{-int(tz):+d}")
    solpos = solarposition.get_solarposition(times, lat, lon, method="nrel_numpy")
    dni_extra = irradiance.get_extra_radiation(times, solar_constant=SOLAR_CONSTANT, method="spencer")
    ghi = pd.Series(df.ghi.values, index=times)
    dni = pd.Series(df.dni.values, index=times)
    dhi = pd.Series(df.dhi.values, index=times)
    temp = pd.Series(df.temp_air.values, index=times)

    poa_measured = chain(times, solpos, dni, ghi, dhi, dni_extra)
    erbs = irradiance.erbs(ghi, solpos["zenith"], times)
    poa_decomposed = chain(times, solpos, erbs["dni"], ghi, erbs["dhi"], dni_extra)

    out = pd.DataFrame({
        "hour": np.arange(len(df)),
        "zenith_deg": solpos["zenith"].values,
        "eot_min": solpos["equation_of_time"].values,
        "ghi_w_m2": df.ghi.values,
        "poa_measured_w_m2": poa_measured.values,
        "pv_measured_kw": power_kw(poa_measured.values, temp.values),
        "poa_decomposed_w_m2": poa_decomposed.values,
        "pv_decomposed_kw": power_kw(poa_decomposed.values, temp.values),
    })
    sys.stdout.write(
        f"# pvlib {pvlib.__version__}, pandas {pd.__version__}: scripts/golden/pvlib_reference.py "
        f"on {sys.argv[1].split('/')[-1]} (lat {lat}, lon {lon}, tz {tz})\n"
    )
    out.to_csv(sys.stdout, index=False, float_format="%.6g")


if __name__ == "__main__":
    main()
