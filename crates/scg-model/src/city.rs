//! A synthetic city-scale community (`scg scenario city`): `members` single dwellings, shops,
//! offices, supermarkets and schools in the proportions of the Italian building stock, rooftop
//! PV on a share of them sized to their roof, and `evs` electric vehicles charging at home and
//! at work through the scenario's EV fleets (`prosumers[i].ev`, typed by `scg-ev`).
//!
//! Everything is drawn from the generator passed in ([`generate`]); the same options and seed
//! give the same bytes ([`city_toml`]). The result is TOML text in the scenario schema, parsed
//! and validated by [`crate::Scenario::from_toml_str`] before it is returned, so the output of
//! the generator is always a scenario this build reads. Community, resource, grid, economics
//! and CER sections are the built-in Bergamo scenario's.
//!
//! The proportions, distributions and their sources are documented on the constants below and
//! in `docs/city.md`. This module never does I/O and never draws unseeded randomness.

use crate::builtin::BERGAMO_TOML;
use crate::error::ModelError;
use crate::{MAX_PROSUMERS, Scenario};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use std::fmt::Write as _;

/// Kinds of members, with their built-in load profile, how many of them per national census
/// count, roof and PV assumptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// A single dwelling (one household).
    Household,
    /// A small shop or restaurant (built-in `quick_service_restaurant` profile).
    Shop,
    /// A small office (`small_office`).
    Office,
    /// A supermarket (`supermarket`).
    Supermarket,
    /// A school (`secondary_school`).
    School,
}

/// All kinds, in the order the generator lists them (and breaks apportionment ties).
pub const MEMBER_KINDS: [MemberKind; 5] = [
    MemberKind::Household,
    MemberKind::Shop,
    MemberKind::Office,
    MemberKind::Supermarket,
    MemberKind::School,
];

/// Italian dwellings occupied by residents, ISTAT census 2011 (23,998,381): the households.
pub const ITALY_OCCUPIED_DWELLINGS: u64 = 23_998_381;
/// Italian commercial buildings: 16.2 % of the 2,264,982 non-residential buildings of the
/// ISTAT 2011 building census (14,452,680 buildings, 12,187,698 residential), less the
/// supermarkets below.
pub const ITALY_SHOPS: u64 = 366_927 - ITALY_SUPERMARKETS;
/// Italian office ("direzionale/terziario") buildings: about 4 % of the non-residential
/// buildings, ISTAT census 2011.
pub const ITALY_OFFICES: u64 = 90_599;
/// Supermarkets, hypermarkets and discount stores in Italy: about 15,000 [our assumption, order
/// of magnitude of the modern grocery network; not from a census].
pub const ITALY_SUPERMARKETS: u64 = 15_000;
/// School buildings in use in Italy: about 40,000 (the order of magnitude of the education
/// ministry's school-building registry, Anagrafe dell'edilizia scolastica) [approximate].
pub const ITALY_SCHOOLS: u64 = 40_000;

/// Mean consumption of one household, kWh/day: ARERA's reference domestic customer uses
/// 2,700 kWh a year (2,700 / 365).
pub const HOUSEHOLD_MEAN_KWH_PER_DAY: f64 = 2_700.0 / 365.0;
/// Spread of household consumption: log-normal with this σ of ln(kWh/day) [our assumption].
pub const HOUSEHOLD_LOG_SIGMA: f64 = 0.45;
/// Household consumption is kept within these kWh/day (0.4 and 5.4 times the mean).
pub const HOUSEHOLD_KWH_PER_DAY_RANGE: (f64, f64) = (3.0, 40.0);
/// Dwellings in the built-in apartment block whose profile shapes every household (the seed
/// paper's midrise apartment).
pub const APARTMENT_BLOCK_DWELLINGS: f64 = 30.0;
/// HOMER variability of the built-in apartment block (the seed paper), percent.
pub const BLOCK_VARIABILITY_PCT: f64 = 7.946;
/// Spread of a non-residential member's energy around its reference building's, σ of the log
/// (mean factor 1) [our assumption].
pub const BUILDING_LOG_SIGMA: f64 = 0.3;

/// Share of households with rooftop PV [our assumption for an energy community: nationally
/// about 1.6 million PV plants, most residential, against 24 million households, i.e. ~6 %].
pub const HOUSEHOLD_PV_SHARE: f64 = 0.25;
/// Share of non-residential members with rooftop PV [our assumption].
pub const BUILDING_PV_SHARE: f64 = 0.5;
/// Median roof of a single dwelling, m², log-normal with σ [`HOUSEHOLD_ROOF_LOG_SIGMA`] [our
/// assumption].
pub const HOUSEHOLD_ROOF_MEDIAN_M2: f64 = 70.0;
/// Spread of dwelling roofs (σ of ln m²) [our assumption].
pub const HOUSEHOLD_ROOF_LOG_SIGMA: f64 = 0.35;
/// Household PV is kept within these kWp (the 20 kW ceiling of small residential plants).
pub const HOUSEHOLD_PV_KWP_RANGE: (f64, f64) = (1.5, 20.0);
/// Non-residential PV is kept within these kWp (1 MW: the largest plant an Italian CER
/// incentive accepts).
pub const BUILDING_PV_KWP_RANGE: (f64, f64) = (3.0, 1_000.0);
/// Pitched residential roofs: tilts drawn from these, degrees [our assumption].
pub const HOUSEHOLD_TILTS_DEG: [f64; 5] = [15.0, 20.0, 25.0, 30.0, 35.0];
/// Residential azimuths drawn from these, degrees from south (few distinct orientations keep
/// the sun computable once per orientation).
pub const HOUSEHOLD_AZIMUTHS_DEG: [f64; 7] = [-45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0];
/// Flat commercial roofs: modules at this tilt, facing south.
pub const BUILDING_TILT_DEG: f64 = 10.0;

/// Share of EVs charging at home (the rest at work) [our assumption: most EV charging in
/// Europe happens at home].
pub const HOME_EV_SHARE: f64 = 0.75;
/// At most this many cars per household.
pub const MAX_EVS_PER_HOUSEHOLD: u32 = 3;
/// Home wallbox power, kW (single-phase 16 A; Italian homes mostly have 3-6 kW contracts).
pub const HOME_CHARGE_POINT_KW: f64 = 3.7;
/// Workplace charge point power, kW (three-phase 16 A), one per two commuters.
pub const WORK_CHARGE_POINT_KW: f64 = 11.0;
/// Weight of a school against an office when a commuter's workplace is drawn (staff size)
/// [our assumption].
pub const SCHOOL_STAFF_WEIGHT: u32 = 5;
/// Commuters of one workplace fleet (the fleet limit of `scg_ev::fleet::MAX_VEHICLES`).
pub const MAX_COMMUTERS_PER_WORKPLACE: u32 = 5_000;
/// EV charging policies the generator accepts (`scg_ev::policy::policy_by_name`).
pub const EV_POLICIES: [&str; 6] = ["uncontrolled", "fcfs", "edf", "llf", "round-robin", "mpc"];

impl MemberKind {
    /// Census count of this kind in Italy (the apportionment weight).
    pub fn italy_count(self) -> u64 {
        match self {
            Self::Household => ITALY_OCCUPIED_DWELLINGS,
            Self::Shop => ITALY_SHOPS,
            Self::Office => ITALY_OFFICES,
            Self::Supermarket => ITALY_SUPERMARKETS,
            Self::School => ITALY_SCHOOLS,
        }
    }

    /// The built-in load profile.
    pub fn profile(self) -> &'static str {
        match self {
            Self::Household => "midrise_apartment",
            Self::Shop => "quick_service_restaurant",
            Self::Office => "small_office",
            Self::Supermarket => "supermarket",
            Self::School => "secondary_school",
        }
    }

    /// Average of the built-in profile, kWh/day (months by their days, weekdays 5/7, weekends
    /// 2/7; a given calendar year's count of weekend days moves it by well under 1 %); checked
    /// against `scg-resource`'s tables by its test `city_profiles`. Non-residential members
    /// scale this by their own factor.
    pub fn profile_kwh_per_day(self) -> f64 {
        match self {
            Self::Household => 614.155,
            Self::Shop => 528.326,
            Self::Office => 236.122,
            Self::Supermarket => 5_532.664,
            Self::School => 7_397.089,
        }
    }

    /// Roof area of the reference building, m²: the DOE commercial reference buildings' floor
    /// area over their floors (Deru et al. 2011, NREL/TP-5500-46861): quick-service restaurant
    /// 232 m², small office 511 m², supermarket 4,181 m² (one floor each), secondary school
    /// 19,592 m² on two floors. Households draw theirs ([`HOUSEHOLD_ROOF_MEDIAN_M2`]).
    pub fn reference_roof_m2(self) -> f64 {
        match self {
            Self::Household => HOUSEHOLD_ROOF_MEDIAN_M2,
            Self::Shop => 232.0,
            Self::Office => 511.0,
            Self::Supermarket => 4_181.0,
            Self::School => 19_592.0 / 2.0,
        }
    }

    fn id_prefix(self) -> &'static str {
        match self {
            Self::Household => "home",
            Self::Shop => "shop",
            Self::Office => "office",
            Self::Supermarket => "supermarket",
            Self::School => "school",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Household => "Household",
            Self::Shop => "Shop",
            Self::Office => "Office",
            Self::Supermarket => "Supermarket",
            Self::School => "School",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct CityOptions {
    /// Members (prosumers), 1..=[`MAX_PROSUMERS`].
    pub members: usize,
    /// Electric vehicles over the whole community.
    pub evs: u64,
    /// Charging policy of every fleet (one of [`EV_POLICIES`]).
    pub ev_policy: String,
}

/// Members of each kind for `members` in total: the census counts apportioned by largest
/// remainder (Hamilton's method, ties to the earlier kind), in [`MEMBER_KINDS`] order.
pub fn apportion(members: usize) -> [usize; 5] {
    let total: u64 = MEMBER_KINDS.iter().map(|k| k.italy_count()).sum();
    let n = members as u128;
    let mut counts = [0usize; 5];
    let mut remainders = [(0u128, 0usize); 5];
    for (i, kind) in MEMBER_KINDS.iter().enumerate() {
        let exact = n * u128::from(kind.italy_count());
        counts[i] = (exact / u128::from(total)) as usize;
        remainders[i] = (exact % u128::from(total), i);
    }
    let left = members - counts.iter().sum::<usize>();
    // Largest remainder first; equal remainders go to the earlier kind.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.iter().take(left) {
        counts[*i] += 1;
    }
    counts
}

/// One member as the generator draws it.
#[derive(Debug, Clone, PartialEq)]
struct Member {
    kind: MemberKind,
    id: String,
    name: String,
    kwh_per_day: f64,
    pv: Option<PvRoof>,
    residents: u32,
    commuters: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct PvRoof {
    kwp: f64,
    tilt_deg: f64,
    azimuth_deg: f64,
}

fn invalid(message: String) -> ModelError {
    ModelError::Invalid {
        source_name: "scg scenario city".into(),
        errors: vec![crate::ValidationError {
            path: "city".into(),
            message,
        }],
    }
}

fn check_options(options: &CityOptions) -> Result<[usize; 5], ModelError> {
    if options.members == 0 || options.members > MAX_PROSUMERS {
        return Err(invalid(format!(
            "--members must be between 1 and {MAX_PROSUMERS}, got {}",
            options.members
        )));
    }
    if !EV_POLICIES.contains(&options.ev_policy.as_str()) {
        return Err(invalid(format!(
            "--ev-policy must be one of {}, got {:?}",
            EV_POLICIES.join(", "),
            options.ev_policy
        )));
    }
    let counts = apportion(options.members);
    let workplaces = (counts[2] + counts[4]) as u64;
    let room = counts[0] as u64 * u64::from(MAX_EVS_PER_HOUSEHOLD)
        + workplaces * u64::from(MAX_COMMUTERS_PER_WORKPLACE);
    if options.evs > room {
        return Err(invalid(format!(
            "--evs {} do not fit {} households ({MAX_EVS_PER_HOUSEHOLD} each) and {workplaces} \
             workplaces ({MAX_COMMUTERS_PER_WORKPLACE} each): at most {room}",
            options.evs, counts[0]
        )));
    }
    Ok(counts)
}

/// Draw the community. Draw order (part of the reproducibility contract): members in
/// [`MEMBER_KINDS`] order, each its energy, then its PV draw (share, roof, orientation); then
/// the EVs (home ones, then workplace ones).
pub fn generate(options: &CityOptions, rng: &mut ChaCha8Rng) -> Result<Scenario, ModelError> {
    let text = generate_toml(options, rng)?;
    Scenario::from_toml_str(&text, "scg scenario city")
}

/// [`generate`] as commented TOML (what `scg scenario city` prints), validated.
pub fn generate_toml(options: &CityOptions, rng: &mut ChaCha8Rng) -> Result<String, ModelError> {
    let counts = check_options(options)?;
    let mut members = draw_members(&counts, rng)?;
    assign_evs(&mut members, options.evs, rng);
    let text = render(options, &counts, &members)?;
    Scenario::from_toml_str(&text, "scg scenario city")?;
    Ok(text)
}

/// The city for a seed: a [`ChaCha8Rng`] seeded with `seed`, then [`generate_toml`].
pub fn city_toml(options: &CityOptions, seed: u64) -> Result<String, ModelError> {
    generate_toml(options, &mut ChaCha8Rng::seed_from_u64(seed))
}

fn lognormal(median: f64, sigma: f64) -> Result<LogNormal<f64>, ModelError> {
    LogNormal::new(median.ln(), sigma)
        .map_err(|e| invalid(format!("log-normal({median}, {sigma}): {e}")))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn draw_members(counts: &[usize; 5], rng: &mut ChaCha8Rng) -> Result<Vec<Member>, ModelError> {
    // Log-normal with the given mean: median = mean · exp(-σ²/2).
    let household_kwh = lognormal(
        HOUSEHOLD_MEAN_KWH_PER_DAY * (-HOUSEHOLD_LOG_SIGMA.powi(2) / 2.0).exp(),
        HOUSEHOLD_LOG_SIGMA,
    )?;
    let building_factor = lognormal(
        (-BUILDING_LOG_SIGMA.powi(2) / 2.0).exp(),
        BUILDING_LOG_SIGMA,
    )?;
    let household_roof = lognormal(HOUSEHOLD_ROOF_MEDIAN_M2, HOUSEHOLD_ROOF_LOG_SIGMA)?;
    let building_roof = lognormal(1.0, BUILDING_LOG_SIGMA)?;
    let mut out = Vec::with_capacity(counts.iter().sum());
    for (kind, &count) in MEMBER_KINDS.iter().zip(counts) {
        let width = count.to_string().len().max(2);
        for k in 1..=count {
            let household = *kind == MemberKind::Household;
            let kwh_per_day = if household {
                let (lo, hi) = HOUSEHOLD_KWH_PER_DAY_RANGE;
                household_kwh.sample(rng).clamp(lo, hi)
            } else {
                kind.profile_kwh_per_day() * building_factor.sample(rng)
            };
            let share = if household {
                HOUSEHOLD_PV_SHARE
            } else {
                BUILDING_PV_SHARE
            };
            let pv = if rng.random_bool(share) {
                let (roof_m2, range, tilt_deg, azimuth_deg) = if household {
                    let tilt = HOUSEHOLD_TILTS_DEG[rng.random_range(0..HOUSEHOLD_TILTS_DEG.len())];
                    let az =
                        HOUSEHOLD_AZIMUTHS_DEG[rng.random_range(0..HOUSEHOLD_AZIMUTHS_DEG.len())];
                    (household_roof.sample(rng), HOUSEHOLD_PV_KWP_RANGE, tilt, az)
                } else {
                    let roof = kind.reference_roof_m2() * building_roof.sample(rng);
                    (roof, BUILDING_PV_KWP_RANGE, BUILDING_TILT_DEG, 0.0)
                };
                let kwp = crate::roof::pv_limit_kwp(roof_m2);
                Some(PvRoof {
                    kwp: round1(kwp.clamp(range.0, range.1)),
                    tilt_deg,
                    azimuth_deg,
                })
            } else {
                None
            };
            out.push(Member {
                kind: *kind,
                id: format!("{}-{k:0width$}", kind.id_prefix()),
                name: format!("{} {k}", kind.label()),
                kwh_per_day: round_energy(kwh_per_day),
                pv,
                residents: 0,
                commuters: 0,
            });
        }
    }
    Ok(out)
}

/// Three significant decimals for small loads, one for large ones: enough, and short TOML.
fn round_energy(kwh_per_day: f64) -> f64 {
    if kwh_per_day < 100.0 {
        (kwh_per_day * 1000.0).round() / 1000.0
    } else {
        round1(kwh_per_day)
    }
}

/// EVs: [`HOME_EV_SHARE`] at home (distinct households first, chosen at random, then second and
/// third cars), the rest commuting to offices and schools (workplace drawn by staff weight);
/// whatever does not fit one side goes to the other.
fn assign_evs(members: &mut [Member], evs: u64, rng: &mut ChaCha8Rng) {
    let households: Vec<usize> = (0..members.len())
        .filter(|&i| members[i].kind == MemberKind::Household)
        .collect();
    let workplaces: Vec<usize> = (0..members.len())
        .filter(|&i| matches!(members[i].kind, MemberKind::Office | MemberKind::School))
        .collect();
    let home_room = households.len() as u64 * u64::from(MAX_EVS_PER_HOUSEHOLD);
    let work_room = workplaces.len() as u64 * u64::from(MAX_COMMUTERS_PER_WORKPLACE);
    let wanted_home = if workplaces.is_empty() {
        evs
    } else {
        (evs as f64 * HOME_EV_SHARE).round() as u64
    };
    // check_options guarantees evs ≤ home_room + work_room.
    let home = wanted_home.clamp(evs.saturating_sub(work_room), home_room.min(evs));
    assign_home(members, &households, home, rng);
    assign_work(members, &workplaces, evs - home, rng);
}

fn assign_home(members: &mut [Member], households: &[usize], evs: u64, rng: &mut ChaCha8Rng) {
    let mut order = households.to_vec();
    let mut left = evs;
    // Each round: a random order of households (partial Fisher-Yates), one more car each.
    while left > 0 {
        let take = left.min(order.len() as u64) as usize;
        for i in 0..take {
            let j = rng.random_range(i..order.len());
            order.swap(i, j);
            members[order[i]].residents += 1;
        }
        left -= take as u64;
    }
}

fn assign_work(members: &mut [Member], workplaces: &[usize], evs: u64, rng: &mut ChaCha8Rng) {
    let weights: Vec<u32> = workplaces
        .iter()
        .map(|&i| match members[i].kind {
            MemberKind::School => SCHOOL_STAFF_WEIGHT,
            _ => 1,
        })
        .collect();
    let total: u32 = weights.iter().sum();
    for _ in 0..evs {
        // Draw by staff weight; a full workplace passes the car to the next one with room.
        let mut pick = rng.random_range(0..total.max(1));
        let mut chosen = None;
        for (&i, &w) in workplaces.iter().zip(&weights) {
            if pick < w {
                chosen = Some(i);
                break;
            }
            pick -= w;
        }
        let full = |m: &Member| m.commuters >= MAX_COMMUTERS_PER_WORKPLACE;
        let target = match chosen {
            Some(i) if !full(&members[i]) => Some(i),
            _ => workplaces.iter().copied().find(|&i| !full(&members[i])),
        };
        if let Some(i) = target {
            members[i].commuters += 1;
        }
    }
}

/// The built-in scenario's community, resource, grid, economics and CER sections (from
/// `[location]` to the prosumers), comments kept.
fn shared_sections() -> Result<&'static str, ModelError> {
    let start = BERGAMO_TOML.find("\n[location]");
    let end = BERGAMO_TOML.find("\n[[prosumers]]");
    match (start, end) {
        (Some(s), Some(e)) if s < e => Ok(BERGAMO_TOML[s + 1..e].trim_end()),
        _ => Err(invalid(
            "the built-in scenario lost its [location] or [[prosumers]] section".into(),
        )),
    }
}

fn render(
    options: &CityOptions,
    counts: &[usize; 5],
    members: &[Member],
) -> Result<String, ModelError> {
    let mut out = String::with_capacity(members.len() * 400 + 8192);
    let _ = writeln!(
        out,
        "# scg scenario: a synthetic city (`scg scenario city --members {} --evs {} \
         --ev-policy {}`):\n\
         # {} households, {} shops, {} offices, {} supermarkets, {} schools in the proportions of\n\
         # the Italian building stock (ISTAT 2011); rooftop PV on {:.0} % of households and {:.0} % of\n\
         # the other buildings, sized to the roof; EVs at home and at work. See docs/city.md.",
        options.members,
        options.evs,
        options.ev_policy,
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        HOUSEHOLD_PV_SHARE * 100.0,
        BUILDING_PV_SHARE * 100.0,
    );
    let _ = writeln!(
        out,
        "schema_version = {}\nname = \"Synthetic city of {} members\"\n\
         description = \"{} households, {} shops, {} offices, {} supermarkets, {} schools; {} EVs.\"\n",
        crate::SCHEMA_VERSION,
        options.members,
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        options.evs
    );
    out.push_str(shared_sections()?);
    out.push_str("\n\n# --- Members ---------------------------------------------------------------------------------\n");
    // Households: one dwelling each, the apartment block's shape at one dwelling's energy; the
    // block's HOMER timestep variability times √30 (independent flats average out in a block).
    let household_step_pct =
        (BLOCK_VARIABILITY_PCT * APARTMENT_BLOCK_DWELLINGS.sqrt() * 1000.0).round() / 1000.0;
    for m in members {
        let step_pct = if m.kind == MemberKind::Household {
            household_step_pct
        } else {
            BLOCK_VARIABILITY_PCT
        };
        let _ = write!(
            out,
            "\n[[prosumers]]\nid = \"{}\"\nname = \"{}\"\n[prosumers.load]\ntype = \"synthetic\"\n\
             profile = \"{}\"\nday_to_day_variability_pct = {BLOCK_VARIABILITY_PCT}\n\
             timestep_variability_pct = {step_pct}\nscaled_average_kwh_per_day = {:?}\n",
            m.id,
            m.name,
            m.kind.profile(),
            m.kwh_per_day
        );
        if let Some(pv) = m.pv {
            let capital = if m.kind == MemberKind::Household {
                1600.0
            } else {
                1100.0
            };
            let _ = write!(
                out,
                "[[prosumers.pv]]\ncapacity_kwp = {:?}\ntilt_deg = {:?}\nazimuth_deg = {:?}\n\
                 costs = {{ capital_eur_per_kw = {capital:?}, replacement_eur_per_kw = 900.0, \
                 om_eur_per_kw_year = 18.0, lifetime_years = 25.0 }}\n",
                pv.kwp, pv.tilt_deg, pv.azimuth_deg
            );
        }
        write_fleet(&mut out, m, &options.ev_policy);
    }
    Ok(out)
}

fn write_fleet(out: &mut String, m: &Member, policy: &str) {
    if m.residents > 0 {
        let _ = write!(
            out,
            "[prosumers.ev]\nresidents = {}\ncharge_points = {}\ncharge_point_kw = {HOME_CHARGE_POINT_KW:?}\npolicy = \"{policy}\"\n",
            m.residents, m.residents
        );
    } else if m.commuters > 0 {
        let _ = write!(
            out,
            "[prosumers.ev]\ncommuters = {}\ncharge_points = {}\ncharge_point_kw = {WORK_CHARGE_POINT_KW:?}\npolicy = \"{policy}\"\n",
            m.commuters,
            m.commuters.div_ceil(2)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(members: usize, evs: u64) -> CityOptions {
        CityOptions {
            members,
            evs,
            ev_policy: "llf".into(),
        }
    }

    #[test]
    fn apportionment_sums_to_members_and_follows_the_census() {
        for n in [1, 2, 10, 99, 1000, 12_345, MAX_PROSUMERS] {
            assert_eq!(apportion(n).iter().sum::<usize>(), n);
        }
        assert_eq!(apportion(1), [1, 0, 0, 0, 0]);
        // 1,000 members: 980 households, 14 shops, 4 offices, no supermarket, 2 schools.
        assert_eq!(apportion(1000), [980, 14, 4, 0, 2]);
        let c = apportion(100_000);
        assert_eq!(c[0], 97_969);
        assert!(c[1] > c[2] && c[2] > c[4] && c[4] > c[3], "{c:?}");
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = city_toml(&options(40, 12), 7).expect("city");
        assert_eq!(a, city_toml(&options(40, 12), 7).expect("city"));
        assert_ne!(a, city_toml(&options(40, 12), 8).expect("city"));
    }

    #[test]
    fn ev_counts_add_up_and_respect_limits() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let counts = check_options(&options(2000, 900)).expect("fits");
        let mut members = draw_members(&counts, &mut rng).expect("members");
        assign_evs(&mut members, 900, &mut rng);
        let home: u64 = members.iter().map(|m| u64::from(m.residents)).sum();
        let work: u64 = members.iter().map(|m| u64::from(m.commuters)).sum();
        assert_eq!(home + work, 900);
        assert_eq!(home, 675);
        assert!(members.iter().all(|m| m.residents <= MAX_EVS_PER_HOUSEHOLD));
        // Too many EVs for the homes and workplaces is an error, not a panic.
        assert!(city_toml(&options(3, 10), 1).is_err());
        assert!(city_toml(&options(0, 0), 1).is_err());
        assert!(city_toml(&options(3, 0), 1).is_ok());
        let bad_policy = CityOptions {
            ev_policy: "fastest".into(),
            ..options(3, 1)
        };
        assert!(city_toml(&bad_policy, 1).is_err());
    }

    #[test]
    fn households_draw_their_energy_around_the_reference_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let members = draw_members(&apportion(4000), &mut rng).expect("members");
        let homes: Vec<f64> = members
            .iter()
            .filter(|m| m.kind == MemberKind::Household)
            .map(|m| m.kwh_per_day)
            .collect();
        let mean = homes.iter().sum::<f64>() / homes.len() as f64;
        assert!((mean - HOUSEHOLD_MEAN_KWH_PER_DAY).abs() < 0.3, "{mean}");
        let with_pv = members.iter().filter(|m| m.pv.is_some()).count() as f64;
        assert!((with_pv / 4000.0 - HOUSEHOLD_PV_SHARE).abs() < 0.03);
    }
}
