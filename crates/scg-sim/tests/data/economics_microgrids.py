"""Golden component NPCs from the `microgrids` package (Haessig et al., MIT licence), the
closest open HOMER clone, for `tests/economics_microgrids.rs`.

Run by hand (not in CI):
    pip install microgrids==0.3.1
    python3 crates/scg-sim/tests/data/economics_microgrids.py > crates/scg-sim/tests/data/economics_microgrids.csv

Salvage is priced at the replacement cost, as in HOMER (Lambert et al. 2006).
"""

from microgrids.components import Project
from microgrids.economics import CostFactors

CASES = [
    # project_years, discount_rate, lifetime_years, capital, replacement, om_per_year
    (25, 0.05, 20.0, 15000.0, 12000.0, 150.0),
    (25, 0.05, 7.0, 7000.0, 7000.0, 0.0),
    (25, 0.0392156862745098, 10.0, 1000.0, 800.0, 25.0),
    (25, 0.08, 5.0, 500.0, 450.0, 10.0),
    (20, 0.03, 15.0, 20000.0, 18000.0, 400.0),
    (30, 0.06, 12.5, 3000.0, 2500.0, 60.0),
    (10, 0.1, 40.0, 10000.0, 9000.0, 0.0),
    (25, 0.0, 8.0, 1200.0, 1000.0, 30.0),
]

print("project_years,discount_rate,lifetime_years,capital_eur,replacement_eur,om_eur_per_year,"
      "npc_capital_eur,npc_replacement_eur,npc_om_eur,npc_salvage_eur,npc_total_eur")
for n, i, life, cap, rep, om in CASES:
    p = Project(lifetime=n, discount_rate=i)
    c = CostFactors.from_prices(p, quantity=1.0, lifetime=life, investment_price=cap,
                                replacement_price=rep, salvage_price=rep, om_price=om)
    # microgrids reports the salvage as a negative cost; we store it as a positive revenue.
    print(f"{n},{i!r},{life!r},{cap!r},{rep!r},{om!r},"
          f"{c.investment!r},{c.replacement!r},{c.om!r},{-c.salvage!r},{c.total!r}")
