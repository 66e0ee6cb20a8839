#!/usr/bin/env python3
"""Regenerate tests/data/pvlib_golden.csv: reference values from pvlib for scg-resource's solar code.

Run by hand from crates/scg-resource (it is not part of the build or of CI):

    pip install pvlib  (or use the venv of scripts/golden/pvlib_reference.sh)
    python3 tools/pvlib_golden.py > tests/data/pvlib_golden.csv

Conventions of the CSV (those of scg, not pvlib):
- time: day of year `doy` (1..365, year 2007) and `clock_h`, decimal hours of local *standard*
  time at `tz_h` hours east of UTC; `lon_deg` east positive.
- surface: `tilt_deg`, `azimuth_deg` with 0 = south, west positive (pvlib: 180 + ours).
- sun azimuth `sun_azimuth_deg` is written in pvlib's convention (0 = north, east positive).
- irradiances in W/m2; G_sc = 1367 W/m2 and extraterrestrial normal irradiance with Spencer's
  (1971) eccentricity series (pvlib method "spencer"); declination and equation of time are
  Spencer's too (`declination_spencer71`, `equation_of_time_spencer71`).
- GHI of each case = kt_target * G_on * cos(zenith), a spread of sky conditions.
- Erbs: pvlib's own clearness index `erbs_kt` (pvlib computes it with its default
  extraterrestrial model) and its diffuse `erbs_dhi`; scg is checked on the fraction given kt.
- Transposition: pvlib `reindl` (the HDKR sky-diffuse model), with DHI = erbs_dhi and
  DNI = (GHI - DHI) / cos(zenith), plus pvlib's isotropic ground term with albedo `albedo`.
- Cell temperature: pvlib `temperature.ross` with NOCT 45 C (HOMER's NOCT model with the
  efficiency term set to zero); PV power: pvlib `pvwatts_dc` (P = P0 G/1000 (1 + gamma (Tc - 25)))
  with P0 = 5 kWp, gamma = -0.4 %/C, times a derating factor of 0.8.
"""

import sys

import numpy as np
import pandas as pd
import pvlib
from pvlib import irradiance, solarposition, temperature

G_SC = 1367.0
NOCT_C = 45.0
P0_KW = 5.0
GAMMA = -0.004
DERATE = 0.8

SITES = [  # lat, lon, tz hours east
    (45.70, 9.67, 1.0),  # Bergamo
    (41.90, 12.50, 1.0),  # Rome
    (-33.90, 18.40, 2.0),  # Cape Town
    (60.17, 24.94, 2.0),  # Helsinki
    (41.98, -87.90, -6.0),  # Chicago O'Hare
]
DAYS = [1, 45, 105, 172, 230, 300, 355]
HOURS = [8.25, 10.5, 12.0, 13.75, 16.5]
SURFACES = [(0.0, 0.0), (30.0, 0.0), (35.0, -45.0), (60.0, 90.0), (90.0, 0.0), (20.0, 180.0)]
KT = [0.15, 0.35, 0.55, 0.72, 0.82]
TEMPS = [-5.0, 10.0, 25.0, 35.0]
ALBEDOS = [0.2, 0.5]


def main():
    rows = []
    i = 0
    for lat, lon, tz in SITES:
        for doy in DAYS:
            for clock_h in HOURS:
                start = pd.Timestamp("2007-01-01") + pd.Timedelta(days=doy - 1, hours=clock_h)
                # a fixed-offset zone ("Etc/GMT-1" is UTC+1): pvlib reads the offset from it
                times = pd.DatetimeIndex([start]).tz_localize(f"Etc/GMT{-int(tz):+d}")
                dec = solarposition.declination_spencer71(doy)
                eot = solarposition.equation_of_time_spencer71(doy)
                ha = solarposition.hour_angle(times, lon, eot)[0]
                zen = solarposition.solar_zenith_analytical(np.radians(lat), np.radians(ha), dec)
                azi = solarposition.solar_azimuth_analytical(np.radians(lat), np.radians(ha), dec, zen)
                zen_deg, azi_deg = float(np.degrees(zen)), float(np.degrees(azi))
                if zen_deg > 85.0:
                    continue
                g_on = float(irradiance.get_extra_radiation(doy, solar_constant=G_SC, method="spencer"))
                for tilt, az in SURFACES:
                    i += 1
                    kt_target = KT[i % len(KT)]
                    t_air = TEMPS[i % len(TEMPS)]
                    albedo = ALBEDOS[i % len(ALBEDOS)]
                    cos_z = np.cos(zen)
                    ghi = kt_target * g_on * cos_z
                    erbs = irradiance.erbs(ghi, zen_deg, doy)
                    dhi = float(erbs["dhi"])
                    kt = float(irradiance.clearness_index(ghi, zen_deg, irradiance.get_extra_radiation(doy)))
                    dni = (ghi - dhi) / cos_z
                    az_pv = (180.0 + az) % 360.0
                    aoi = float(irradiance.aoi(tilt, az_pv, zen_deg, azi_deg))
                    total = irradiance.get_total_irradiance(
                        tilt, az_pv, zen_deg, azi_deg, dni, ghi, dhi,
                        dni_extra=g_on, albedo=albedo, model="reindl",
                    )
                    poa = float(total["poa_global"])
                    t_cell = float(temperature.ross(poa, t_air, noct=NOCT_C))
                    p_kw = DERATE * float(pvlib.pvsystem.pvwatts_dc(poa, t_cell, P0_KW, GAMMA))
                    rows.append({
                        "lat_deg": lat, "lon_deg": lon, "tz_h": tz, "doy": doy, "clock_h": clock_h,
                        "tilt_deg": tilt, "azimuth_deg": az, "albedo": albedo,
                        "ghi_w_m2": ghi, "temp_air_c": t_air,
                        "declination_deg": float(np.degrees(dec)), "eot_min": float(eot),
                        "hour_angle_deg": float(ha), "zenith_deg": zen_deg,
                        "sun_azimuth_deg": azi_deg, "g_on_w_m2": g_on, "aoi_deg": aoi,
                        "erbs_kt": kt, "erbs_dhi_w_m2": dhi, "dni_w_m2": dni,
                        "poa_beam_w_m2": float(total["poa_direct"]),
                        "poa_sky_diffuse_w_m2": float(total["poa_sky_diffuse"]),
                        "poa_ground_diffuse_w_m2": float(total["poa_ground_diffuse"]),
                        "poa_global_w_m2": poa, "temp_cell_c": t_cell, "pv_power_kw": p_kw,
                    })
    df = pd.DataFrame(rows)
    sys.stdout.write(f"# generated by tools/pvlib_golden.py with pvlib {pvlib.__version__}\n")
    df.to_csv(sys.stdout, index=False, float_format="%.10g")


if __name__ == "__main__":
    main()
