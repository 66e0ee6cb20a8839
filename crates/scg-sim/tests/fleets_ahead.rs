//! The EV sites stepped apart from the community (as `year::drive` does from 16 prosumers on,
//! on a thread of their own) give the same bytes as `Community::step`, serially and on rayon;
//! `year::drive`'s threaded loop gives the in-line bytes and stops cleanly on an error.
#![allow(clippy::unwrap_used)]

use scg_ev::fleet::{EvStepPower, Fleet, FleetConfig, FleetTime};
use scg_sim::ComponentError;
use scg_sim::community::{
    Community, CommunitySettings, FleetThreads, FlexibleLoad, Forecast, IntervalInputs,
    ProsumerInterval, Sharing, fleet_signals, step_fleets,
};

use scg_sim::year::{FlowSink, Prices, ProsumerSeries, StepRecord, YearSettings, drive};

const MEMBERS: usize = 20;

fn time() -> FleetTime {
    FleetTime {
        step_minutes: 60,
        steps: 4 * 24,
        start_weekday: 0,
    }
}

/// Sites on 12 of the 20 members: rules and two MPC sites.
fn fleets() -> Vec<Option<Fleet>> {
    (0..MEMBERS)
        .map(|i| {
            let policy = match i % 5 {
                0 => "mpc",
                1 | 3 => "llf",
                2 => "edf",
                _ => return None,
            };
            if i >= 15 && policy == "mpc" {
                return None;
            }
            let text = format!(
                "residents = {}\ncommuters = 2\ncharge_points = 3\ncharge_point_kw = 7.4\n\
                 v2g_share = 0.5\nsite_limit_kw = 15\npolicy = \"{policy}\"\n",
                1 + i % 3
            );
            let cfg: FleetConfig = toml::from_str(&text).unwrap();
            Some(Fleet::new(&cfg, time(), 100 + i as u64).unwrap())
        })
        .collect()
}

struct Year {
    retail: Vec<f64>,
    feed_in: Vec<f64>,
    peaks: Vec<bool>,
    surplus: Vec<f64>,
    members: Vec<Vec<ProsumerInterval>>,
}

fn year() -> Year {
    let steps = time().steps;
    let hour = |t: usize| (t % 24) as f64;
    let members = (0..steps)
        .map(|t| {
            (0..MEMBERS)
                .map(|i| ProsumerInterval {
                    load_kw: 0.4 + 0.1 * (i % 4) as f64 + 0.3 * (hour(t) / 24.0),
                    pv_kw: (3.0 * (1.0 - ((hour(t) - 12.0) / 6.0).powi(2))).max(0.0)
                        * (i % 2) as f64,
                    wind_kw: 0.0,
                })
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    let surplus = members
        .iter()
        .map(|m| {
            m.iter()
                .map(|p| (p.pv_kw + p.wind_kw - p.load_kw).max(0.0))
                .sum()
        })
        .collect();
    Year {
        retail: (0..steps)
            .map(|t| {
                if (17..21).contains(&(t % 24)) {
                    300.0
                } else {
                    90.0 + hour(t)
                }
            })
            .collect(),
        feed_in: vec![60.0; steps],
        peaks: (0..steps).map(|t| (18..20).contains(&(t % 24))).collect(),
        surplus,
        members,
    }
}

fn community(fleets: Vec<Option<Fleet>>) -> Community<'static> {
    let settings = CommunitySettings {
        dt_h: 1.0,
        max_purchase_kw: f64::INFINITY,
        max_sale_kw: f64::INFINITY,
    };
    Community::new(settings, vec![None; MEMBERS], fleets, Sharing::ProRata).unwrap()
}

impl Year {
    fn at(&self, t: usize) -> (IntervalInputs<'_>, Forecast<'_>) {
        let inputs = IntervalInputs {
            step: t,
            prosumers: &self.members[t],
            retail_eur_per_mwh: self.retail[t],
            grid_at_peak: self.peaks[t],
        };
        let forecast = Forecast {
            retail_eur_per_mwh: &self.retail[t..],
            grid_at_peak: &self.peaks[t..],
            community_surplus_kw: &self.surplus[t..],
            surplus_value_eur_per_mwh: &self.feed_in[t..],
        };
        (inputs, forecast)
    }
}

/// Every interval's flows and EV powers, printed (exact: shortest round-trip floats).
fn in_line(year: &Year) -> Vec<String> {
    let mut c = community(fleets());
    (0..time().steps)
        .map(|t| {
            let (inputs, forecast) = year.at(t);
            let out = c.step(&inputs, &forecast).unwrap();
            format!("{:?} {:?}", out.flows, out.ev)
        })
        .collect()
}

fn apart(year: &Year, threads: FleetThreads) -> Vec<String> {
    let mut c = community(fleets());
    let mut sites = c.take_fleets();
    let mut price = Vec::new();
    let out = (0..time().steps)
        .map(|t| {
            let (inputs, forecast) = year.at(t);
            let signals = fleet_signals(&inputs, &forecast, &mut price);
            let mut ev = vec![EvStepPower::default(); MEMBERS];
            step_fleets(&mut sites, &mut ev, t, &signals, threads).unwrap();
            let out = c.step_with_ev(&inputs, &forecast, &mut ev).unwrap();
            format!("{:?} {:?}", out.flows, out.ev)
        })
        .collect();
    c.put_fleets(sites);
    assert!(c.has_fleets());
    out
}

#[test]
fn sites_stepped_apart_give_the_bytes_of_the_community_step() {
    let year = year();
    let reference = in_line(&year);
    assert!(
        reference.iter().any(|s| s.contains("charge_kw: 7.4")),
        "the sites charge"
    );
    assert_eq!(apart(&year, FleetThreads::Serial), reference);
    assert_eq!(apart(&year, FleetThreads::Parallel), reference);
}

#[test]
fn mpc_sites_are_stepped_in_parallel_rule_based_ones_serially() {
    let all = fleets();
    assert_eq!(FleetThreads::for_sites(&all), FleetThreads::Parallel);
    let rules: Vec<_> = fleets()
        .into_iter()
        .map(|f| f.filter(|f| !f.solves_plans()))
        .collect();
    assert_eq!(FleetThreads::for_sites(&rules), FleetThreads::Serial);
}

#[test]
fn powers_for_the_wrong_number_of_members_are_an_error() {
    let year = year();
    let mut c = community(fleets());
    let (inputs, forecast) = year.at(0);
    let mut ev = vec![EvStepPower::default(); MEMBERS - 1];
    let e = c.step_with_ev(&inputs, &forecast, &mut ev).unwrap_err();
    assert!(
        e.to_string().contains("19 EV site powers for 20 prosumers"),
        "{e}"
    );
}

/// Every interval's flows and EV powers as `drive` hands them to its sink.
#[derive(Default)]
struct Printed {
    flows: Vec<String>,
    ev: Vec<String>,
}

impl FlowSink for Printed {
    fn record(&mut self, r: &StepRecord<'_>) -> Result<(), ComponentError> {
        self.flows.push(format!("{:?}", r.flows));
        Ok(())
    }
    fn record_ev(&mut self, _step: usize, ev: &[EvStepPower]) -> Result<(), scg_sim::SimError> {
        self.ev.push(format!("{ev:?}"));
        Ok(())
    }
}

/// The year's inputs as `drive` reads them: one series per member.
struct Series {
    load: Vec<Vec<f64>>,
    pv: Vec<Vec<f64>>,
}

impl Series {
    fn of(year: &Year) -> Self {
        let column = |f: fn(&ProsumerInterval) -> f64| {
            (0..MEMBERS)
                .map(|i| year.members.iter().map(|m| f(&m[i])).collect())
                .collect()
        };
        Self {
            load: column(|p| p.load_kw),
            pv: column(|p| p.pv_kw),
        }
    }
    fn prosumers(&self) -> Vec<ProsumerSeries<'_>> {
        (0..MEMBERS)
            .map(|i| ProsumerSeries {
                load_kw: &self.load[i],
                load_draw: None,
                pv_draw: None,
                pv_kw_per_kwp: &self.pv[i],
                pv_kwp: 1.0,
                wind_kw_per_turbine: &[],
                turbines: 0.0,
                ev_kw: &[],
                v2g_kw: &[],
            })
            .collect()
    }
}

fn drive_year(year: &Year, community: &mut Community<'_>) -> Result<Printed, scg_sim::SimError> {
    let series = Series::of(year);
    let settings = YearSettings {
        dt_h: 1.0,
        grid_at_peak: &year.peaks,
        max_purchase_kw: f64::INFINITY,
        max_sale_kw: f64::INFINITY,
    };
    let prices = Prices {
        retail_eur_per_mwh: &year.retail,
        feed_in_eur_per_mwh: &year.feed_in,
        community_surplus_kw: None,
    };
    let mut sink = Printed::default();
    let mut seen = 0;
    drive(
        community,
        &series.prosumers(),
        &settings,
        &prices,
        time().steps,
        &mut sink,
        &mut |t, _| {
            assert_eq!(t, seen);
            seen += 1;
        },
    )?;
    Ok(sink)
}

#[test]
fn the_year_loop_with_sites_ahead_gives_the_in_line_bytes() {
    assert!(scg_sim::community::fleets_ahead(MEMBERS));
    let year = year();
    let mut c = community(fleets());
    let printed = drive_year(&year, &mut c).unwrap();
    // The sites are back in the community at the end.
    assert!(c.has_fleets());
    let reference = in_line(&year);
    assert_eq!(printed.flows.len(), reference.len());
    for (t, r) in reference.iter().enumerate() {
        assert_eq!(
            &format!("{} {}", printed.flows[t], printed.ev[t]),
            r,
            "interval {t}"
        );
    }
}

/// A flexible load that fails at one interval.
struct FailsAt(usize);

impl FlexibleLoad for FailsAt {
    fn adjust_load_kw(
        &mut self,
        prosumer: usize,
        step: usize,
        load_kw: f64,
        _renewable_kw: f64,
        _forecast: &Forecast<'_>,
    ) -> Result<f64, String> {
        if step == self.0 && prosumer == 3 {
            return Err("the planner failed".into());
        }
        Ok(load_kw)
    }
}

#[test]
fn an_error_of_the_community_stops_the_sites_thread_and_is_returned() {
    let year = year();
    // Interval 70 is past the sites' lead of 32 intervals: their thread is blocked on a full
    // channel when the community stops.
    for at in [0, 5, 70] {
        let mut c = community(fleets()).with_flexible_load(Box::new(FailsAt(at)));
        let e = drive_year(&year, &mut c).err().expect("the error");
        assert!(
            e.to_string()
                .contains("prosumers[3].home: the planner failed"),
            "{e}"
        );
        assert!(c.has_fleets(), "the sites are put back after an error");
    }
}
