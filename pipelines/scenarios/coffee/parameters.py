"""The coffee-and-bakery scenario's planted parameters: personas, habits, products, offers, effects."""

from __future__ import annotations

import numpy as np

from data_contracts.schema import CATEGORIES, PURCHASE_CHANNELS, TIERS


PERSONAS: tuple[str, ...] = (
    "morning_commuter",
    "lunch_crowd",
    "afternoon_snacker",
    "weekend_family",
    "occasional",
    "remote_worker",
)
PERSONA_SHARE = np.array([0.25, 0.17, 0.15, 0.14, 0.21, 0.08])
# Mean visits per day (gamma-distributed per customer around it).
PERSONA_RATE = np.array([0.50, 0.30, 0.26, 0.13, 0.045, 0.34])
RATE_SHAPE = 3.0
# Visit-rate multiplier by weekday (Mon..Sun).
WEEKDAY_FACTOR = np.array(
    [
        [1.28, 1.28, 1.28, 1.28, 1.23, 0.33, 0.32],  # morning_commuter
        [1.32, 1.32, 1.32, 1.32, 1.27, 0.23, 0.22],  # lunch_crowd
        [1.05, 1.05, 1.05, 1.05, 1.10, 0.85, 0.85],  # afternoon_snacker
        [0.45, 0.45, 0.45, 0.45, 0.70, 2.30, 2.20],  # weekend_family
        [0.95, 0.95, 0.95, 0.95, 1.05, 1.10, 1.05],  # occasional
        [1.20, 1.20, 1.20, 1.20, 1.10, 0.55, 0.55],  # remote_worker
    ]
)
# Hour-of-day mixtures per persona: (mean hour, sd, weight) components.
HOUR_MIXTURES: dict[str, list[tuple[float, float, float]]] = {
    "morning_commuter": [(7.9, 0.8, 0.86), (12.5, 1.2, 0.08), (16.5, 1.5, 0.06)],
    "lunch_crowd": [(12.4, 0.8, 0.80), (9.0, 1.2, 0.10), (16.0, 1.5, 0.10)],
    "afternoon_snacker": [(15.5, 1.0, 0.75), (12.5, 1.5, 0.15), (19.0, 1.0, 0.10)],
    "weekend_family": [(10.5, 1.5, 0.50), (13.5, 1.5, 0.35), (16.5, 1.2, 0.15)],
    "occasional": [(11.5, 3.0, 1.0)],
    "remote_worker": [(10.0, 1.5, 0.40), (13.0, 1.5, 0.30), (15.5, 1.5, 0.30)],
}
OPEN_HOUR, CLOSE_HOUR = 6.0, 21.5
# Probability of 1, 2, 3, 4 lines per visit.
BASKET_SIZE = np.array(
    [
        [0.74, 0.21, 0.04, 0.01],
        [0.30, 0.45, 0.20, 0.05],
        [0.50, 0.40, 0.10, 0.00],
        [0.05, 0.25, 0.35, 0.35],
        [0.60, 0.30, 0.10, 0.00],
        [0.55, 0.35, 0.10, 0.00],
    ]
)


def _cat_weights(**weights: float) -> np.ndarray:
    w = np.array([weights.get(c, 0.0) for c in CATEGORIES], dtype=float)
    return w / w.sum()


# The first line of a basket (what the visit is for) and the extra lines.
ANCHOR_CATEGORY = np.vstack(
    [
        _cat_weights(coffee=0.93, tea=0.07),
        _cat_weights(lunch=0.85, coffee=0.10, cold_drinks=0.05),
        _cat_weights(snacks=0.45, cold_drinks=0.35, bakery=0.20),
        _cat_weights(bakery=0.35, breakfast=0.25, cold_drinks=0.20, coffee=0.20),
        _cat_weights(coffee=0.50, tea=0.15, bakery=0.15, cold_drinks=0.20),
        _cat_weights(coffee=0.60, tea=0.40),
    ]
)
ADDON_CATEGORY = np.vstack(
    [
        _cat_weights(bakery=0.45, breakfast=0.30, coffee=0.13, cold_drinks=0.05, snacks=0.05, merchandise=0.02),
        _cat_weights(cold_drinks=0.35, snacks=0.25, coffee=0.20, bakery=0.10, tea=0.09, merchandise=0.01),
        _cat_weights(cold_drinks=0.30, coffee=0.25, snacks=0.25, bakery=0.19, merchandise=0.01),
        _cat_weights(bakery=0.25, cold_drinks=0.20, snacks=0.20, coffee=0.15, breakfast=0.10, merchandise=0.05,
                     tea=0.05),
        _cat_weights(coffee=0.2, tea=0.1, cold_drinks=0.15, bakery=0.2, snacks=0.2, breakfast=0.1, merchandise=0.05),
        _cat_weights(bakery=0.30, snacks=0.30, lunch=0.20, coffee=0.10, tea=0.08, merchandise=0.02),
    ]
)
# Channel mix over PURCHASE_CHANNELS (store, app, web, drive_thru).
CHANNEL_MIX = np.array(
    [
        [0.45, 0.35, 0.02, 0.18],
        [0.60, 0.30, 0.10, 0.00],
        [0.60, 0.25, 0.05, 0.10],
        [0.70, 0.10, 0.00, 0.20],
        [0.80, 0.05, 0.05, 0.10],
        [0.40, 0.35, 0.25, 0.00],
    ]
)
if tuple(PURCHASE_CHANNELS) != ("store", "app", "web", "drive_thru"):  # CHANNEL_MIX columns follow this order
    raise ImportError(
        f"coffee scenario: CHANNEL_MIX is written for purchase channels ('store', 'app', 'web', 'drive_thru'), "
        f"but the schema declares {tuple(PURCHASE_CHANNELS)}; update CHANNEL_MIX with the schema"
    )

# Planted offer-redemption affinity (logit shift) by persona x reward category.
AFFINITY = 2.0 * np.array(
    [
        # coffee tea  cold  bakery brkf  lunch snacks merch
        [0.3, -0.6, -0.8, 2.2, 0.8, -1.0, -0.5, -0.8],  # morning_commuter
        [-0.2, -0.4, 0.6, 0.0, -0.6, 1.6, 0.3, -0.8],  # lunch_crowd
        [-0.2, -0.3, 1.2, 0.4, -0.8, -0.4, 1.5, -0.6],  # afternoon_snacker
        [-0.3, -0.5, 0.5, 0.7, 0.6, 0.0, 0.8, 1.0],  # weekend_family
        [0.2, -0.2, -0.2, -0.2, -0.5, -0.5, -0.2, -1.0],  # occasional
        [0.9, 1.2, -0.4, 0.2, -0.3, 0.5, 0.3, 0.2],  # remote_worker
    ]
)
AFFINITY_NOISE_SD = 0.3
REDEEM_BASE = -3.5
OFFER_TYPE_EFFECT = {
    "discount": 0.0,
    "bogo": 0.3,
    "bonus_points": -0.3,
    "free_item": 0.4,
    "tier_boost": -0.2,
    "informational": -1.8,
}
SEND_CHANNEL_EFFECT = {"app": 0.2, "push": 0.1, "email": -0.3, "store": 0.3, "web": -0.2, "drive_thru": 0.1}
RECENCY_WEIGHT = 1.3  # per unit of log1p(visits in last 28 days), centred
VALUE_WEIGHT = 0.45  # per unit of log1p(offer value)
MIN_SPEND_WEIGHT = -0.06  # per currency unit of minimum spend

# Satisfaction (latent, drives NPS and churn): mean per persona.
SATISFACTION_MEAN = np.array([0.3, 0.1, 0.1, 0.3, -0.4, 0.2])
# Churn: baseline hazard per day, multipliers.
CHURN_BASE_HAZARD = 0.00042
CHURN_SATISFACTION_WEIGHT = 0.8  # hazard x exp(-w * satisfaction)
CHURN_PERSONA_LOGHAZARD = np.array([-0.3, 0.0, 0.0, -0.1, 0.6, -0.1])
SHORT_TENURE_DAYS = 180
SHORT_TENURE_FACTOR = 2.5
DISENGAGE_FLOOR = 0.15  # visit-rate multiplier reached at churn

PRODUCTS: tuple[tuple[str, str, float], ...] = (
    ("Espresso", "coffee", 2.40),
    ("Americano", "coffee", 2.90),
    ("Latte", "coffee", 3.60),
    ("Cappuccino", "coffee", 3.50),
    ("Flat White", "coffee", 3.70),
    ("Mocha", "coffee", 3.90),
    ("Filter Coffee", "coffee", 2.50),
    ("Oat Latte", "coffee", 3.95),
    ("English Breakfast Tea", "tea", 2.20),
    ("Green Tea", "tea", 2.30),
    ("Chai Latte", "tea", 3.60),
    ("Herbal Tea", "tea", 2.30),
    ("Iced Latte", "cold_drinks", 3.90),
    ("Cold Brew", "cold_drinks", 3.80),
    ("Lemonade", "cold_drinks", 2.90),
    ("Orange Juice", "cold_drinks", 3.20),
    ("Berry Smoothie", "cold_drinks", 4.50),
    ("Sparkling Water", "cold_drinks", 1.90),
    ("Croissant", "bakery", 2.50),
    ("Pain au Chocolat", "bakery", 2.80),
    ("Blueberry Muffin", "bakery", 2.90),
    ("Cinnamon Roll", "bakery", 3.20),
    ("Banana Bread", "bakery", 3.00),
    ("Plain Bagel", "bakery", 2.60),
    ("Fruit Scone", "bakery", 2.70),
    ("Egg Muffin", "breakfast", 4.90),
    ("Porridge", "breakfast", 3.90),
    ("Yogurt Parfait", "breakfast", 4.20),
    ("Avocado Toast", "breakfast", 5.90),
    ("Chicken Wrap", "lunch", 6.90),
    ("Caprese Panini", "lunch", 6.50),
    ("Soup of the Day", "lunch", 5.50),
    ("Salad Bowl", "lunch", 7.50),
    ("Tuna Sandwich", "lunch", 5.90),
    ("Chocolate Cookie", "snacks", 1.90),
    ("Brownie", "snacks", 2.60),
    ("Crisps", "snacks", 1.60),
    ("Fruit Cup", "snacks", 3.00),
    ("Granola Bar", "snacks", 2.00),
    ("Travel Mug", "merchandise", 14.00),
    ("Coffee Beans 250g", "merchandise", 11.00),
    ("Insulated Tumbler", "merchandise", 18.00),
)
N_STORES = 20

# Offer templates: name, reward_category, offer_type, value, cost_per_redemption, min_spend,
# eligible_tiers, channels, kind ("evergreen" | "launch" | "limited").
_ALL = list(TIERS)
OFFER_TEMPLATES: tuple[tuple, ...] = (
    ("Free croissant with any coffee", "bakery", "free_item", 2.5, 0.9, 2.5, _ALL, ["app", "push", "store"], "evergreen"),
    ("20% off pastries", "bakery", "discount", 0.6, 0.6, 0.0, _ALL, ["app", "email"], "evergreen"),
    ("Pastry two-for-one", "bakery", "bogo", 2.8, 1.1, 0.0, _ALL, ["app", "push"], "launch"),
    ("Double points on bakery", "bakery", "bonus_points", 0.5, 0.3, 3.0, ["silver", "gold", "platinum"], ["app", "email"], "limited"),
    ("1.00 off any coffee", "coffee", "discount", 1.0, 1.0, 0.0, _ALL, ["app", "push", "email"], "evergreen"),
    ("Free size upgrade", "coffee", "free_item", 0.6, 0.25, 2.5, _ALL, ["app", "store", "drive_thru"], "evergreen"),
    ("Coffee buy one get one", "coffee", "bogo", 3.5, 1.3, 0.0, ["gold", "platinum"], ["app", "push"], "limited"),
    ("Triple points on coffee", "coffee", "bonus_points", 0.8, 0.5, 0.0, _ALL, ["app", "email", "web"], "launch"),
    ("Tea time 0.80 off", "tea", "discount", 0.8, 0.8, 0.0, _ALL, ["app", "email"], "evergreen"),
    ("Free chai upgrade", "tea", "free_item", 0.7, 0.3, 2.0, _ALL, ["app", "store"], "launch"),
    ("1.50 off iced drinks", "cold_drinks", "discount", 1.5, 1.5, 0.0, _ALL, ["app", "push"], "evergreen"),
    ("Summer smoothie two-for-one", "cold_drinks", "bogo", 4.5, 1.6, 0.0, _ALL, ["app", "push", "email"], "limited"),
    ("Free lemonade with lunch", "cold_drinks", "free_item", 2.9, 0.8, 6.0, _ALL, ["app", "store"], "launch"),
    ("Breakfast combo 2.00 off", "breakfast", "discount", 2.0, 2.0, 6.0, _ALL, ["app", "email", "push"], "evergreen"),
    ("Free porridge topping", "breakfast", "free_item", 0.8, 0.2, 0.0, _ALL, ["app", "store"], "launch"),
    ("Lunch deal 2.50 off", "lunch", "discount", 2.5, 2.5, 7.0, _ALL, ["app", "push", "email"], "evergreen"),
    ("Free drink with any lunch", "lunch", "free_item", 2.9, 0.9, 5.5, _ALL, ["app", "push", "store"], "launch"),
    ("Soup two-for-one", "lunch", "bogo", 5.5, 2.0, 0.0, ["gold", "platinum"], ["email", "app"], "limited"),
    ("Cookie for 1.00", "snacks", "discount", 0.9, 0.9, 0.0, _ALL, ["app", "push", "store"], "evergreen"),
    ("Bonus points on snacks", "snacks", "bonus_points", 0.4, 0.2, 0.0, _ALL, ["app", "email"], "launch"),
    ("Free brownie treat", "snacks", "free_item", 2.6, 0.8, 4.0, ["silver", "gold", "platinum"], ["app", "push"], "evergreen"),
    ("5.00 off a travel mug", "merchandise", "discount", 5.0, 5.0, 10.0, _ALL, ["email", "web", "store"], "evergreen"),
    ("Double points on coffee beans", "merchandise", "bonus_points", 1.1, 0.6, 0.0, _ALL, ["email", "web"], "launch"),
    ("Fast track to gold", "coffee", "tier_boost", 3.0, 1.0, 0.0, ["bronze", "silver"], ["app", "email"], "evergreen"),
    ("New seasonal bakes", "bakery", "informational", 0.0, 0.0, 0.0, _ALL, ["app", "email", "web"], "limited"),
    ("Holiday opening hours", "merchandise", "informational", 0.0, 0.0, 0.0, _ALL, ["email", "web"], "limited"),
    ("Weekend family breakfast 3.00 off", "breakfast", "discount", 3.0, 3.0, 12.0, _ALL, ["app", "email"], "evergreen"),
    ("Afternoon pick-me-up 1.00 off", "cold_drinks", "discount", 1.0, 1.0, 0.0, _ALL, ["app", "push"], "launch"),
)

TIER_SPEND_THRESHOLDS = (120.0, 400.0, 1000.0)  # annual spend for silver, gold, platinum
TIER_POINTS_MULTIPLIER = np.array([1.0, 1.1, 1.25, 1.5])
MAIN_CHANNEL_SHARE = 0.7
CAMPAIGN_TARGET_FRACTION = 0.35
CONTROL_FRACTION = 0.10
ACTIVE_LOOKBACK_DAYS = 120
REFUND_RATE = 0.003

COMMENTS = {
    "detractor": ("Queue was far too long.", "My order was wrong again.", "Prices keep going up.",
                  "App kept crashing at checkout.", "Coffee was lukewarm."),
    "passive": ("Decent coffee, nothing special.", "Fine, but the store is often busy.", "Okay value."),
    "promoter": ("Love the morning croissants!", "Friendly baristas, great coffee.", "The app makes it so easy.",
                 "Best flat white in town."),
}
